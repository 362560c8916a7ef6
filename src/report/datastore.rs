//! Reports of the LUN model: `lun --json` on parameters alone ([`LunModel`]), and the scan
//! of a datastore ([`DatastoreReport`]: per VM, per LUN, each LUN with its [`LunModel`]).
//! Field names are a contract documented in `docs/JSON.md`.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use super::{ScanReport, VERSION, WarningReport};
use crate::ceiling::Ceiling;
use crate::classify::ClassCounts;
use crate::datastore::Found;
use crate::lun::{self, Load, Locking, Outcome, Params};
use crate::scan::DiskScan;

/// Growth of one VM's delta over a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Growth {
    /// Bytes the delta grew.
    pub bytes: u64,
    /// Over this many seconds.
    pub window_seconds: f64,
    /// Where the figure came from: `given` (--growth-per-vm/--window), `since` (the delta's
    /// size now over the time since --since), `history` (the history store).
    pub source: &'static str,
}

/// How each VM's growth is known.
#[derive(Debug, Clone)]
pub enum GrowthSource {
    /// The same burst for every VM (`--growth-per-vm`, `--window`).
    Given {
        /// Bytes per VM.
        bytes: u64,
        /// Window, seconds.
        window: f64,
    },
    /// The delta's current allocated bytes, grown over `window` seconds (`--since`).
    Since {
        /// Seconds since the deltas were created or refreshed.
        window: f64,
    },
    /// From recorded history, by disk name (the top layer's canonical path).
    History(HashMap<String, (u64, f64)>),
    /// Not known.
    Unknown,
}

impl GrowthSource {
    fn name(&self) -> &'static str {
        match self {
            GrowthSource::Given { .. } => "given",
            GrowthSource::Since { .. } => "since",
            GrowthSource::History(_) => "history",
            GrowthSource::Unknown => "none",
        }
    }

    /// The growth of the VM whose top layer is `disk`, with `delta_bytes` allocated now.
    pub fn growth_of(&self, disk: &str, delta_bytes: u64) -> Option<Growth> {
        match self {
            GrowthSource::Given { bytes, window } => Some(Growth {
                bytes: *bytes,
                window_seconds: *window,
                source: "given",
            }),
            GrowthSource::Since { window } => Some(Growth {
                bytes: delta_bytes,
                window_seconds: *window,
                source: "since",
            }),
            GrowthSource::History(m) => m.get(disk).map(|&(bytes, w)| Growth {
                bytes,
                window_seconds: w,
                source: "history",
            }),
            GrowthSource::Unknown => None,
        }
    }
}

/// The model's settings besides the growth.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    /// Hold time, locking, target, LUN size, headroom, and a ceiling per VM if given.
    pub params: Params,
    /// `--increment`, overriding the per-format default for every VM.
    pub increment: Option<u64>,
    /// Where growth comes from.
    pub growth: GrowthSource,
}

/// What the model was given (`inputs` in the JSON).
#[derive(Debug, Clone, Serialize)]
pub struct ModelInputs {
    /// VMs on the LUN.
    pub vms: u64,
    /// Growth per VM in bytes (the mean over VMs whose growth is known, for a scan).
    pub growth_per_vm_bytes: Option<u64>,
    /// Window in seconds (`null` when VMs have different windows).
    pub window_seconds: Option<f64>,
    /// `given`, `since`, `history` or `none`.
    pub growth_source: &'static str,
    /// VMFS growth increment in bytes (`null` when it follows each delta's format).
    pub increment_bytes: Option<u64>,
    /// `given` or `format` (16 MiB vmfsSparse, 1 MiB SESparse, none for hosted).
    pub increment_source: &'static str,
    /// Hold time of one lock, seconds.
    pub hold_seconds: f64,
    /// `scsi2` or `ats`.
    pub locking: Locking,
    /// Busy-fraction target of the lock limit.
    pub max_busy: f64,
    /// LUN size in bytes.
    pub lun_size_bytes: Option<u64>,
    /// Share of the LUN kept free.
    pub headroom: f64,
    /// Ceiling per VM in bytes.
    pub ceiling_per_vm_bytes: Option<u64>,
    /// `given` or `scan` (the mean expected ceiling of the VMs scanned).
    pub ceiling_source: Option<&'static str>,
}

/// The model's JSON: its inputs and its outcome side by side.
#[derive(Debug, Clone, Serialize)]
pub struct LunModel {
    /// What it was given.
    pub inputs: ModelInputs,
    /// What it found.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The model on parameters alone: `vms` VMs, each growing `growth` bytes within `window`.
pub fn model_from_parameters(
    vms: u64,
    growth: u64,
    window: f64,
    increment: u64,
    params: &Params,
) -> LunModel {
    let load = Load::uniform(vms, growth, window, increment);
    LunModel {
        inputs: ModelInputs {
            vms,
            growth_per_vm_bytes: Some(growth),
            window_seconds: Some(window),
            growth_source: "given",
            increment_bytes: Some(increment),
            increment_source: "given",
            hold_seconds: params.hold,
            locking: params.locking,
            max_busy: params.max_busy,
            lun_size_bytes: params.lun_size,
            headroom: params.headroom,
            ceiling_per_vm_bytes: params.ceiling_per_vm,
            ceiling_source: params.ceiling_per_vm.map(|_| "given"),
        },
        outcome: lun::evaluate(&load, params),
    }
}

/// One disk (VM) of a datastore scan.
#[derive(Debug, Clone, Serialize)]
pub struct VmReport {
    /// The LUN's name.
    pub lun: String,
    /// The top layer.
    pub path: String,
    /// `ok` or `error`.
    pub status: &'static str,
    /// Why the scan failed: file, structure, offset, what was expected.
    pub error: Option<String>,
    /// Layers in the chain.
    pub layers: Option<usize>,
    /// Data format of the top layer.
    pub format: Option<String>,
    /// createType of the top layer.
    pub create_type: Option<String>,
    /// Virtual size.
    pub virtual_size: Option<u64>,
    /// Whether the top is a delta (has a parent, or is a redo-log format).
    pub is_delta: bool,
    /// The top layer's allocated bytes.
    pub delta_bytes: Option<u64>,
    /// The top layer's file bytes.
    pub delta_file_bytes: Option<u64>,
    /// The top layer's classes.
    pub classes: Option<ClassCounts>,
    /// The top layer's ceilings.
    pub ceiling: Option<Ceiling>,
    /// Growth used by the lock model.
    pub growth: Option<Growth>,
    /// VMFS growth increment of this delta, bytes (`null`: its growth takes no VMFS lock).
    pub increment_bytes: Option<u64>,
    /// Lock events over the growth window.
    pub lock_events: Option<u64>,
    /// Lock events per hour at that growth rate.
    pub lock_events_per_hour: Option<f64>,
    /// Warnings from every layer of the chain.
    pub warnings: Vec<WarningReport>,
}

/// One LUN of a datastore scan.
#[derive(Debug, Clone, Serialize)]
pub struct LunReport {
    /// Its name (`--lun NAME=DIR`, or the folder's name).
    pub name: String,
    /// Its folder.
    pub path: String,
    /// Disks found (top layers).
    pub vms_found: usize,
    /// Disks whose scan failed.
    pub vms_failed: usize,
    /// Allocated bytes of the deltas now.
    pub delta_bytes: u64,
    /// File bytes of the deltas now.
    pub delta_file_bytes: u64,
    /// Sum of the deltas' expected ceilings: the deltas' total if fresh-first growth goes on.
    pub projected_ceiling_bytes: u64,
    /// Extent data files nobody names.
    pub unclaimed_files: Vec<String>,
    /// The lock and capacity model for this LUN as it stands.
    pub model: LunModel,
    /// Per-VM growth (for the sensitivity charts).
    #[serde(skip)]
    pub growths: Vec<Growth>,
}

/// The scan of a datastore.
#[derive(Debug, Clone, Serialize)]
pub struct DatastoreReport {
    /// deltascope's version.
    pub deltascope_version: String,
    /// One per LUN.
    pub luns: Vec<LunReport>,
    /// One per disk, LUN by LUN.
    pub vms: Vec<VmReport>,
}

impl DatastoreReport {
    /// Whether any disk failed.
    pub fn any_failed(&self) -> bool {
        self.luns.iter().any(|l| l.vms_failed > 0)
    }
}

fn vm_report(lun: &str, scan: &DiskScan, s: &ModelSettings) -> VmReport {
    // The history store's name for the disk: the path, with bytes that are not UTF-8
    // escaped so that two such paths stay two disks (and growth is looked up by it).
    let path = crate::history::disk_name(&scan.path);
    let r: &ScanReport = match &scan.result {
        Ok(r) => r,
        Err(e) => {
            return VmReport {
                lun: lun.to_string(),
                path,
                status: "error",
                error: Some(e.clone()),
                layers: None,
                format: None,
                create_type: None,
                virtual_size: None,
                is_delta: false,
                delta_bytes: None,
                delta_file_bytes: None,
                classes: None,
                ceiling: None,
                growth: None,
                increment_bytes: None,
                lock_events: None,
                lock_events_per_hour: None,
                warnings: Vec::new(),
            };
        }
    };
    let top = r.chain.last();
    let format = top.map(|t| t.format.clone());
    let is_delta =
        r.chain.len() > 1 || matches!(format.as_deref(), Some("vmfsSparse" | "seSparse"));
    let delta_bytes = top.map(|t| t.allocated_bytes);
    let (growth, increment) = if is_delta {
        (
            s.growth.growth_of(&path, delta_bytes.unwrap_or(0)),
            s.increment
                .or_else(|| format.as_deref().and_then(lun::default_increment)),
        )
    } else {
        (None, None)
    };
    let events = match (growth, increment) {
        (Some(g), Some(i)) => Some(lun::events_per_vm(g.bytes, i)),
        (Some(_), None) => Some(0),
        _ => None,
    };
    let per_hour = match (growth, events) {
        (Some(g), Some(e)) if g.window_seconds > 0.0 => Some(e as f64 * 3600.0 / g.window_seconds),
        (Some(_), Some(_)) => Some(0.0),
        _ => None,
    };
    VmReport {
        lun: lun.to_string(),
        path,
        status: "ok",
        error: None,
        layers: Some(r.chain.len()),
        format,
        create_type: top.map(|t| t.create_type.clone()),
        virtual_size: top.map(|t| t.virtual_size),
        is_delta,
        delta_bytes: is_delta.then_some(delta_bytes).flatten(),
        delta_file_bytes: if is_delta {
            top.map(|t| t.file_size)
        } else {
            None
        },
        classes: top.map(|t| t.classes),
        ceiling: if is_delta { r.ceiling } else { None },
        growth,
        increment_bytes: increment,
        lock_events: events,
        lock_events_per_hour: per_hour,
        warnings: r
            .chain
            .iter()
            .flat_map(|l| l.warnings.iter().cloned())
            .collect(),
    }
}

fn lun_report(
    name: &str,
    dir: &std::path::Path,
    found: &Found,
    vms: &[VmReport],
    s: &ModelSettings,
) -> LunReport {
    let ok: Vec<&VmReport> = vms.iter().filter(|v| v.status == "ok").collect();
    let deltas: Vec<&&VmReport> = ok.iter().filter(|v| v.is_delta).collect();
    let mut load = Load::default();
    let mut growths = Vec::new();
    for v in &ok {
        match (v.growth, v.lock_events) {
            (Some(g), Some(e)) => {
                load.add_vm(e, g.window_seconds);
                growths.push(g);
            }
            _ => load.add_idle_vm(),
        }
    }
    let ceilings: Vec<u64> = deltas
        .iter()
        .filter_map(|v| v.ceiling.map(|c| c.expected_bytes))
        .collect();
    let (ceiling, ceiling_source) = match s.params.ceiling_per_vm {
        Some(c) => (Some(c), Some("given")),
        None if !ceilings.is_empty() => (
            Some(ceilings.iter().sum::<u64>().div_ceil(ceilings.len() as u64)),
            Some("scan"),
        ),
        None => (None, None),
    };
    let params = Params {
        ceiling_per_vm: ceiling,
        ..s.params
    };
    let mut outcome = lun::evaluate(&load, &params);
    if growths.is_empty() && !deltas.is_empty() {
        outcome.notes.push(
            "growth of the deltas is not known: give --growth-per-vm and --window (a burst), --since DATE (the deltas' age), or record scans over time (scan DIR --record) and pass --db".to_string(),
        );
    }
    let increments: Vec<Option<u64>> = ok
        .iter()
        .filter(|v| v.is_delta)
        .map(|v| v.increment_bytes)
        .collect();
    if s.increment.is_none() && increments.contains(&None) {
        outcome.notes.push(
            "hosted sparse deltas live on a host file system: their growth takes no VMFS lock"
                .to_string(),
        );
    }
    let same_window = growths
        .first()
        .map(|g| g.window_seconds)
        .filter(|w| growths.iter().all(|g| g.window_seconds == *w));
    let mean_growth = (!growths.is_empty())
        .then(|| growths.iter().map(|g| g.bytes).sum::<u64>() / growths.len() as u64);
    LunReport {
        name: name.to_string(),
        path: dir.display().to_string(),
        vms_found: vms.len(),
        vms_failed: vms.len() - ok.len(),
        delta_bytes: deltas.iter().filter_map(|v| v.delta_bytes).sum(),
        delta_file_bytes: deltas.iter().filter_map(|v| v.delta_file_bytes).sum(),
        projected_ceiling_bytes: ceilings.iter().sum(),
        unclaimed_files: found
            .unclaimed
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        model: LunModel {
            inputs: ModelInputs {
                vms: load.vms,
                growth_per_vm_bytes: mean_growth,
                window_seconds: same_window,
                growth_source: s.growth.name(),
                increment_bytes: s.increment.or_else(|| {
                    let first = increments.first().copied().flatten();
                    increments
                        .iter()
                        .all(|i| *i == first)
                        .then_some(first)
                        .flatten()
                }),
                increment_source: if s.increment.is_some() {
                    "given"
                } else {
                    "format"
                },
                hold_seconds: params.hold,
                locking: params.locking,
                max_busy: params.max_busy,
                lun_size_bytes: params.lun_size,
                headroom: params.headroom,
                ceiling_per_vm_bytes: ceiling,
                ceiling_source,
            },
            outcome,
        },
        growths,
    }
}

/// Builds the datastore report from the LUNs (name, folder, what was found there) and the
/// scans of their disks.
pub fn datastore_report(
    luns: &[(String, PathBuf, Found)],
    scans: &[DiskScan],
    s: &ModelSettings,
) -> DatastoreReport {
    let mut all_vms = Vec::new();
    let mut reports = Vec::new();
    for (i, (name, dir, found)) in luns.iter().enumerate() {
        let vms: Vec<VmReport> = scans
            .iter()
            .filter(|d| d.lun == i)
            .map(|d| vm_report(name, d, s))
            .collect();
        reports.push(lun_report(name, dir, found, &vms, s));
        all_vms.extend(vms);
    }
    DatastoreReport {
        deltascope_version: VERSION.to_string(),
        luns: reports,
        vms: all_vms,
    }
}
