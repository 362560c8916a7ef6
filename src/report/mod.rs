//! Report types: the data every output is rendered from. `scan --json` serializes
//! [`ScanReport`] as it is; its field names are a contract documented in `docs/JSON.md`
//! (add fields freely, never rename). The renderers (`render/`) compute nothing.

pub mod blame;
pub mod datastore;

use serde::Serialize;

use crate::chain::Chain;
use crate::classify::{ClassCounts, LayerStats};
use crate::error::Warning;

/// Version string written into every JSON report.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A warning as it appears in reports: a stable kind and a message for people.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WarningReport {
    /// `cid_mismatch`, `dirty_journal`, `unclean_shutdown`, `reader_dependent`,
    /// `parent_remapped`, `outside_tree`, `note`; for a datastore also `extent_is_a_disk`,
    /// `depth_limit`, ...
    pub kind: String,
    /// What it means.
    pub message: String,
}

impl From<&Warning> for WarningReport {
    fn from(w: &Warning) -> Self {
        let kind = match w {
            Warning::CidMismatch { .. } => "cid_mismatch",
            Warning::DirtyJournal { .. } => "dirty_journal",
            Warning::UncleanShutdown { .. } => "unclean_shutdown",
            Warning::ReaderDependent { .. } => "reader_dependent",
            Warning::ParentRemapped { .. } => "parent_remapped",
            Warning::Note { .. } => "note",
            Warning::OutsideTree { .. } => "outside_tree",
        };
        WarningReport {
            kind: kind.to_string(),
            message: w.to_string(),
        }
    }
}

/// What `info` knows of a layer (metadata only).
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    /// The layer's file, as opened.
    pub path: String,
    /// Data format: hostedSparse, streamOptimized, vmfsSparse, seSparse, flat, zero, mixed.
    pub format: String,
    /// The descriptor's createType.
    pub create_type: String,
    /// Virtual size in bytes.
    pub virtual_size: u64,
    /// Grain size in bytes (64 KiB for layers without grains).
    pub grain_size: u64,
    /// CID, 8 hex digits.
    pub cid: Option<String>,
    /// parentCID, 8 hex digits (`ffffffff`: none).
    pub parent_cid: Option<String>,
    /// The parent hint, as written.
    pub parent_hint: Option<String>,
    /// Sum of the layer's file lengths.
    pub file_size: u64,
    /// One line per extent.
    pub extents: Vec<ExtentInfo>,
    /// What opening this layer found suspicious (same kinds as in `scan`).
    pub warnings: Vec<WarningReport>,
}

/// One extent in `info`.
#[derive(Debug, Clone, Serialize)]
pub struct ExtentInfo {
    /// Extent file (none for ZERO).
    pub file: Option<String>,
    /// Format of the extent.
    pub kind: String,
    /// First virtual byte.
    pub virtual_offset: u64,
    /// Length in bytes.
    pub length: u64,
    /// Grain size in bytes (64 KiB for flat and zero).
    pub grain_size: u64,
}

/// One layer in a scan.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// The layer's file, as opened.
    pub path: String,
    /// Data format.
    pub format: String,
    /// The descriptor's createType.
    pub create_type: String,
    /// Virtual size in bytes.
    pub virtual_size: u64,
    /// Grain size in bytes.
    pub grain_size: u64,
    /// Bytes the layer's tables map, zero entries included; the classes sum to this.
    pub allocated_bytes: u64,
    /// Bytes per class.
    pub classes: ClassCounts,
    /// 4 KiB blocks per class.
    pub blocks_4k: ClassCounts,
    /// Warnings about this layer.
    pub warnings: Vec<WarningReport>,
    /// CID.
    pub cid: Option<String>,
    /// parentCID.
    pub parent_cid: Option<String>,
    /// Sum of the layer's file lengths.
    pub file_size: u64,
    /// Bytes of grain data stored in the files (compressed size for compressed grains).
    pub stored_bytes: u64,
    /// Bytes mapped by zero entries.
    pub zero_entry_bytes: u64,
    /// Bytes mapped by SESparse unmapped entries.
    pub unmapped_bytes: u64,
    /// Allocated grains.
    pub grains: u64,
    /// Class bytes per tenth of the layer's data area, in file order.
    pub allocation_profile: Vec<ClassCounts>,
}

/// The result of `scan` on one chain.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    /// deltascope's version.
    pub deltascope_version: String,
    /// Base first, top last.
    pub chain: Vec<LayerReport>,
    /// The top layer's ceilings (hard, and expected if fresh-first allocation continues).
    pub ceiling: Option<crate::ceiling::Ceiling>,
    /// When the top's parent view holds an NTFS volume: the top's overwritten bytes split by
    /// the parent's `$Bitmap` (live data, or free space that was not zero); else null.
    pub ntfs_overwritten: Option<blame::OverwriteSplit>,
}

fn hex(v: Option<u32>) -> Option<String> {
    v.map(|c| format!("{c:08x}"))
}

/// Metadata of every layer, base first.
pub fn layer_infos(chain: &Chain) -> Vec<LayerInfo> {
    chain
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| LayerInfo {
            warnings: chain
                .layer_warnings(i)
                .iter()
                .map(WarningReport::from)
                .collect(),
            path: l.path.display().to_string(),
            format: l.format().to_string(),
            create_type: l.create_type().to_string(),
            virtual_size: l.virtual_size,
            grain_size: l.grain_size(),
            cid: hex(l.descriptor.cid),
            parent_cid: hex(l.descriptor.parent_cid),
            parent_hint: l.descriptor.parent_hint.clone(),
            file_size: l.file_size(),
            extents: l
                .extents
                .iter()
                .map(|e| ExtentInfo {
                    file: e.src().map(|s| s.path().display().to_string()),
                    kind: match &e.map {
                        crate::format::ExtentMap::Hosted(h) if h.compressed => "streamOptimized",
                        crate::format::ExtentMap::Hosted(_) => "hostedSparse",
                        crate::format::ExtentMap::Cowd(_) => "vmfsSparse",
                        crate::format::ExtentMap::SeSparse(_) => "seSparse",
                        crate::format::ExtentMap::Flat(_) => "flat",
                        crate::format::ExtentMap::Zero { .. } => "zero",
                    }
                    .to_string(),
                    virtual_offset: e.virt_start,
                    length: e.len(),
                    grain_size: e.map.grain_bytes(),
                })
                .collect(),
        })
        .collect()
}

/// Builds the scan report from a chain and the stats of each of its layers (base first).
pub fn scan_report(chain: &Chain, stats: &[LayerStats]) -> ScanReport {
    let layers = chain
        .layers
        .iter()
        .zip(stats)
        .enumerate()
        .map(|(i, (l, s))| LayerReport {
            path: l.path.display().to_string(),
            format: l.format().to_string(),
            create_type: l.create_type().to_string(),
            virtual_size: l.virtual_size,
            grain_size: l.grain_size(),
            allocated_bytes: s.allocated_bytes,
            classes: s.classes,
            blocks_4k: s.blocks_4k,
            warnings: chain
                .layer_warnings(i)
                .iter()
                .map(WarningReport::from)
                .collect(),
            cid: hex(l.descriptor.cid),
            parent_cid: hex(l.descriptor.parent_cid),
            file_size: l.file_size(),
            stored_bytes: s.stored_bytes,
            zero_entry_bytes: s.zero_entry_bytes,
            unmapped_bytes: s.unmapped_bytes,
            grains: s.grains,
            allocation_profile: s.profile.to_vec(),
        })
        .collect();
    ScanReport {
        deltascope_version: VERSION.to_string(),
        chain: layers,
        ceiling: None,
        ntfs_overwritten: None,
    }
}
