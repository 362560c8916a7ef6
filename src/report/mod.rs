//! Report types: the data every output is rendered from, built from what the engine found
//! ([`scan_report`] from a [`ChainScan`], [`layer_infos`] from a chain, `blame::blame_report`,
//! `datastore::datastore_report`). `scan --json` serializes [`ScanReport`] as it is; its field
//! names are a contract documented in `docs/JSON.md` (add fields freely, never rename).
//! The renderers (`render/`) compute nothing.

pub mod blame;
pub mod datastore;

use serde::Serialize;

use crate::chain::Chain;
use crate::classify::ClassCounts;
use crate::error::Warning;
use crate::format::Format;
use crate::scan::ChainScan;
use crate::verdict::{BaseAudit, DisposableRules, Judgement, Remedy, Verdict, judge};

pub use crate::VERSION;

/// A warning as it appears in reports: a stable kind and a message for people.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WarningReport {
    /// `cid_mismatch`, `dirty_journal`, `unclean_shutdown`, `reader_dependent`,
    /// `parent_remapped`, `outside_tree`, `guest_unreadable`, `note`; for a datastore also
    /// `extent_is_a_disk`, `depth_limit`, ...
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
            Warning::GuestUnreadable { .. } => "guest_unreadable",
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
    pub format: Format,
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
    pub kind: Format,
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
    pub format: Format,
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
    /// The time this observation stands for (RFC 3339, UTC): the `--at` a recorded scan
    /// gives, else when the scan started; null from the library without one.
    pub scanned_at: Option<String>,
    /// Base first, top last.
    pub chain: Vec<LayerReport>,
    /// The top layer's ceilings (hard, and expected if fresh-first allocation continues).
    pub ceiling: Option<crate::ceiling::Ceiling>,
    /// When the top's parent view holds an NTFS volume: the top's overwritten bytes split by
    /// the parent's `$Bitmap` (live data, or free space that was not zero); else null.
    pub ntfs_overwritten: Option<blame::OverwriteSplit>,
    /// What the figures mean, in one paragraph, and the growth pattern they show.
    pub verdict: Verdict,
    /// What each remedy gives back now (refresh, zero_free_and_shrink, disposable_disk,
    /// reuse_instead_of_fresh).
    pub remedies: Vec<Remedy>,
    /// The chain's base (layer 0) as its clones see it; null when the guest was not read.
    pub base_audit: Option<BaseAudit>,
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
            format: l.format(),
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
                    file: e.file().map(|s| s.path().display().to_string()),
                    kind: e.format(),
                    virtual_offset: e.virt_start,
                    length: e.len(),
                    grain_size: e.grain_bytes(),
                })
                .collect(),
        })
        .collect()
}

/// The report of a scan (the layers base first), judged with the default disposable-disk
/// rules and no history.
pub fn scan_report(scan: &ChainScan) -> ScanReport {
    scan_report_judged(scan, judge(scan, &DisposableRules::default(), None), None)
}

/// The report of a scan with its verdict, remedies and base audit (`verdict::judge`), and
/// the time it stands for.
pub fn scan_report_judged(
    scan: &ChainScan,
    judged: Judgement,
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> ScanReport {
    let layers = scan
        .layers
        .iter()
        .map(|l| {
            let s = &l.stats;
            LayerReport {
                path: l.path.display().to_string(),
                format: l.format,
                create_type: l.create_type.clone(),
                virtual_size: l.virtual_size,
                grain_size: l.grain_size,
                allocated_bytes: s.allocated_bytes,
                classes: s.classes,
                blocks_4k: s.blocks_4k,
                warnings: l.warnings.iter().map(WarningReport::from).collect(),
                cid: hex(l.cid),
                parent_cid: hex(l.parent_cid),
                file_size: l.file_size,
                stored_bytes: s.stored_bytes,
                zero_entry_bytes: s.zero_entry_bytes,
                unmapped_bytes: s.unmapped_bytes,
                grains: s.grains,
                allocation_profile: s.profile.to_vec(),
            }
        })
        .collect();
    ScanReport {
        deltascope_version: VERSION.to_string(),
        scanned_at: at.map(|t| crate::history::format_time(&t)),
        chain: layers,
        ceiling: scan.ceiling,
        ntfs_overwritten: scan.ntfs_overwritten,
        verdict: judged.verdict,
        remedies: judged.remedies,
        base_audit: judged.base_audit,
    }
}
