//! The guest's view of a disk: partition tables ([`partition`]) and NTFS cluster owners
//! ([`ntfs_map`]), both read through [`reader::ViewReader`] over a composed view of a chain,
//! never through a copy.

pub mod ntfs_map;
pub mod partition;
pub mod reader;
