//! The report of `blame`: the JSON contract (docs/JSON.md, "blame"); its text and CSV
//! renderings are in `render/blame.rs`. Groups' `bytes` sum to `allocated_bytes`.

use serde::Serialize;

use crate::blame::Blame;
use crate::classify::ClassCounts;

pub use crate::blame::OverwriteSplit;

/// Whose parent data a group's overwritten bytes replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParentShare {
    /// Group kind in the parent view (`file`, `free_now` for free clusters, `metadata`, ...).
    pub kind: String,
    /// Path in the parent view (empty for `free_now` and `unpartitioned`).
    pub path: String,
    /// Bytes.
    pub bytes: u64,
}

/// One group: a file (or directory, or extension), or one of the other kinds.
#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    /// `file`, `free_now`, `metadata`, `unpartitioned` or `other_fs`.
    pub kind: String,
    /// The file's path in the top view (a directory or `*.ext` when grouped so; empty for
    /// `free_now` and `unpartitioned`).
    pub path: String,
    /// Bytes of the layer in this group (sum of `classes`).
    pub bytes: u64,
    /// Bytes per class (classes of whole 4 KiB blocks, as `scan` counts blocks).
    pub classes: ClassCounts,
    /// `classes.overwritten`, split by what the parent view held.
    pub overwritten_split: OverwriteSplit,
    /// Whose parent data the overwritten bytes replaced, most first.
    pub overwrote: Vec<ParentShare>,
}

/// One partition of the top view.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeReport {
    /// Partition number.
    pub partition: u32,
    /// `mbr:0x07`, `gpt:<type GUID>` or `whole-disk`.
    pub partition_kind: String,
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub bytes: u64,
    /// `ntfs` or `unknown`.
    pub file_system: String,
    /// NTFS cluster size.
    pub cluster_bytes: Option<u64>,
    /// NTFS file records that could not be read.
    pub unreadable_records: Option<u64>,
}

/// `blame --json`.
#[derive(Debug, Clone, Serialize)]
pub struct BlameReport {
    /// The version that wrote this.
    pub deltascope_version: String,
    /// The top layer's file.
    pub layer: String,
    /// Virtual disk size.
    pub disk_bytes: u64,
    /// Bytes the layer's tables map; the groups' bytes sum to it.
    pub allocated_bytes: u64,
    /// The layer's bytes per class of their 4 KiB block (`scan`'s `blocks_4k`, in bytes; the
    /// groups' classes sum to it).
    pub classes: ClassCounts,
    /// `file`, `dir` or `ext`.
    pub group_by: String,
    /// The partitions found in the top view.
    pub volumes: Vec<VolumeReport>,
    /// Why overwritten bytes could not be looked up in the parent, if so.
    pub parent_note: Option<String>,
    /// Every group, most bytes first.
    pub groups: Vec<GroupReport>,
}

/// The report of a blame.
pub fn blame_report(b: &Blame) -> BlameReport {
    BlameReport {
        deltascope_version: crate::VERSION.into(),
        layer: b.layer.display().to_string(),
        disk_bytes: b.disk_bytes,
        allocated_bytes: b.allocated_bytes,
        classes: b.classes,
        group_by: b.group_by.name().into(),
        volumes: b
            .volumes
            .iter()
            .map(|v| VolumeReport {
                partition: v.partition.number,
                partition_kind: v.partition.kind.clone(),
                start: v.partition.start,
                bytes: v.partition.len,
                file_system: if v.cluster_bytes.is_some() {
                    "ntfs"
                } else {
                    "unknown"
                }
                .into(),
                cluster_bytes: v.cluster_bytes,
                unreadable_records: v.unreadable_records,
            })
            .collect(),
        parent_note: b.parent_note.clone(),
        groups: b
            .groups
            .iter()
            .map(|g| GroupReport {
                kind: g.kind.to_string(),
                path: g.path.clone(),
                bytes: g.classes.total(),
                classes: g.classes,
                overwritten_split: g.overwritten_split,
                overwrote: g
                    .overwrote
                    .iter()
                    .map(|(kind, path, bytes)| ParentShare {
                        kind: kind.to_string(),
                        path: path.clone(),
                        bytes: *bytes,
                    })
                    .collect(),
            })
            .collect(),
    }
}
