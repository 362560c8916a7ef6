//! Reports of the LUN model: `lun --json` on parameters alone ([`LunModel`]), and the scan
//! of a datastore ([`DatastoreReport`]: per disk, per LUN with its [`LunModel`], per VM, the
//! orphans and the datastore's warnings). Field names are a contract documented in
//! `docs/JSON.md`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{VERSION, WarningReport};
use crate::ceiling::Ceiling;
use crate::classify::ClassCounts;
use crate::datastore::{self, Found, OrphanReason, Plan, Role, RoleFacts};
use crate::format::Format;
use crate::history::fill::{self, Occupant};
use crate::history::forecast::{Projection, Sample};
use crate::lun::{self, Load, Locking, Outcome, Params};
use crate::scan::{ChainScan, DiskScan, ScannedLayer};

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
    /// Recorded sizes of each disk by name, oldest first, for the forecasts behind a LUN's
    /// time to full and a disk's refresh interval (empty without a store, or when neither
    /// `--lun-size` nor `--budget` asks for them).
    pub series: HashMap<String, Vec<Sample>>,
    /// `--budget`: the size a refresh interval keeps each delta under.
    pub budget: Option<u64>,
    /// When this scan is being recorded (`scan --record`): its sizes join each disk's
    /// series at that time, as the store will hold them.
    pub recorded_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When this scan ran (`recorded_at` when recording, else the clock's time): a date
    /// to full before it is said to be past.
    pub scanned_at: chrono::DateTime<chrono::Utc>,
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

/// Whether a disk's scan succeeded, as the JSON writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// `ok`: scanned.
    Ok,
    /// `error`: the scan failed (`error` says why).
    Error,
}

impl Status {
    /// The name, as the JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One disk of a datastore scan (`vms` in the JSON, for history: one entry per disk).
#[derive(Debug, Clone, Serialize)]
pub struct VmReport {
    /// The LUN's name.
    pub lun: String,
    /// The top layer.
    pub path: String,
    /// The `displayName` of the VM whose `.vmx` uses this disk, or `null`.
    pub vm: Option<String>,
    /// What the disk is for: `os_delta`, `replica`, `disposable`, `persistent`, `internal`,
    /// `snapshot`, `base` or `unknown` (see [`crate::datastore::role`]).
    pub role: &'static str,
    /// `ok` or `error`.
    pub status: Status,
    /// Why the scan failed: file, structure, offset, what was expected.
    pub error: Option<String>,
    /// Layers in the chain.
    pub layers: Option<usize>,
    /// Data format of the top layer.
    pub format: Option<Format>,
    /// createType of the top layer.
    pub create_type: Option<String>,
    /// Virtual size.
    pub virtual_size: Option<u64>,
    /// Whether the top is a delta (has a parent, or is a redo-log format).
    pub is_delta: bool,
    /// The top layer's allocated bytes.
    pub delta_bytes: Option<u64>,
    /// Allocated bytes of every delta layer of the chain (every layer above the base, and
    /// a base that is a redo log).
    pub chain_delta_bytes: Option<u64>,
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
    /// Days between refreshes that keep the delta under `--budget`: the time its forecast
    /// takes to grow from empty to the budget (`null` without `--budget` or a forecast, or
    /// when the forecast never reaches the budget).
    pub refresh_every_days: Option<f64>,
    /// Warnings from every layer of the chain.
    pub warnings: Vec<WarningReport>,
    /// The delta's forecast from its recorded history, when it has one.
    #[serde(skip)]
    pub projection: Option<Projection>,
}

/// One LUN of a datastore scan.
#[derive(Debug, Clone, Serialize)]
pub struct LunReport {
    /// Its name (`--lun NAME=DIR`, or the folder's name).
    pub name: String,
    /// Its folder.
    pub path: String,
    /// Disks found (top layers, and disks a `.vmx` names), failed ones included.
    pub vms_found: usize,
    /// Disks whose scan failed.
    pub vms_failed: usize,
    /// VMs found: `.vmx` files in the LUN's tree.
    pub machines_found: usize,
    /// Allocated bytes of the deltas' top layers now.
    pub delta_bytes: u64,
    /// Allocated bytes of every delta file on the LUN, each file once: every delta layer of
    /// every disk scanned (snapshot layers, copies and orphans included) whose file lies
    /// under the LUN's folder.
    pub all_delta_bytes: u64,
    /// File bytes of the deltas now.
    pub delta_file_bytes: u64,
    /// Sum of the deltas' expected ceilings: the deltas' total if fresh-first growth goes on.
    pub projected_ceiling_bytes: u64,
    /// When the deltas' forecasts together reach `lun_size x (1 - headroom)` (RFC 3339,
    /// UTC; `null` without `--lun-size`, without any forecast, or beyond ten years).
    pub full_at: Option<String>,
    /// The same in the worst case: no delta slows down before its expected ceiling, and a
    /// delta without a forecast is at its expected ceiling already.
    pub full_at_worst: Option<String>,
    /// Extent data files nobody names.
    pub unclaimed_files: Vec<String>,
    /// The lock and capacity model for this LUN as it stands.
    pub model: LunModel,
    /// Per-VM growth (for the sensitivity charts).
    #[serde(skip)]
    pub growths: Vec<Growth>,
}

/// One VM: a `.vmx` and its disks.
#[derive(Debug, Clone, Serialize)]
pub struct MachineReport {
    /// `displayName` (or the `.vmx` file name).
    pub name: String,
    /// The `.vmx`.
    pub vmx: String,
    /// The LUN the `.vmx` is on.
    pub lun: String,
    /// Its disks (top layers, as in `vms[].path`).
    pub disks: Vec<String>,
    /// Allocated bytes of every delta layer of its disks, each file once.
    pub delta_bytes: u64,
    /// Snapshots its `.vmsd` lists.
    pub snapshots: usize,
    /// The snapshots themselves, in `.vmsd` order.
    pub snapshot_tree: Vec<SnapshotReport>,
}

/// One snapshot of a `.vmsd`.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotReport {
    /// `uid`.
    pub uid: Option<String>,
    /// `displayName`.
    pub name: Option<String>,
    /// The uid of the snapshot it was taken on.
    pub parent: Option<String>,
    /// When it was taken (RFC 3339, UTC).
    pub created: Option<String>,
    /// The layers that were its disks then (and are read-only since).
    pub disks: Vec<String>,
    /// Whether the VM runs on it (`snapshot.current`).
    pub current: bool,
}

/// A file no `.vmx`, `.vmsd` or other disk uses, a file one names that does not exist, or
/// an entry that could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct OrphanReport {
    /// The file or folder.
    pub path: String,
    /// `not_referenced`, `missing` or `unreadable`.
    pub reason: &'static str,
    /// The error (`missing`, `unreadable`), or null.
    pub error: Option<String>,
    /// The LUN it was found on.
    pub lun: String,
    /// What it is, for people.
    pub detail: String,
}

/// The scan of a datastore.
#[derive(Debug, Clone, Serialize)]
pub struct DatastoreReport {
    /// deltascope's version.
    pub deltascope_version: String,
    /// The time the scan stands for (RFC 3339, UTC): the `--at` a recorded scan gives,
    /// else when it started.
    pub scanned_at: String,
    /// One per LUN.
    pub luns: Vec<LunReport>,
    /// One per disk, LUN by LUN.
    pub vms: Vec<VmReport>,
    /// One per `.vmx`.
    pub machines: Vec<MachineReport>,
    /// Unused deltas, missing files, unreadable entries.
    pub orphans: Vec<OrphanReport>,
    /// Datastore-level warnings (`extent_is_a_disk`, `depth_limit`, ...).
    pub warnings: Vec<WarningReport>,
    /// `--budget`, which each disk's `refresh_every_days` keeps it under.
    pub budget_bytes: Option<u64>,
    /// `--strict` was given: datastore warnings make the run fail.
    #[serde(skip)]
    pub strict: bool,
}

impl DatastoreReport {
    /// Whether any disk failed.
    pub fn any_failed(&self) -> bool {
        self.luns.iter().any(|l| l.vms_failed > 0)
    }

    /// Entries that could not be read.
    pub fn unreadable(&self) -> usize {
        self.orphans
            .iter()
            .filter(|o| o.reason == OrphanReason::Unreadable.name())
            .count()
    }
}

/// Whether layer `i` of a scanned chain is a delta: any layer above the base, and a base
/// that is a redo log (a vmfsSparse or SESparse file read without its parent).
pub fn is_delta_layer(i: usize, l: &ScannedLayer) -> bool {
    i > 0 || l.format.is_redo_log()
}

/// The delta layers of a scanned disk: (canonical file, allocated bytes).
fn delta_layers(scan: &DiskScan) -> Vec<(&Path, u64)> {
    let Ok(r) = &scan.result else {
        return Vec::new();
    };
    r.layers
        .iter()
        .enumerate()
        .zip(&scan.layer_files)
        .filter(|((i, l), _)| is_delta_layer(*i, l))
        .map(|((_, l), f)| (f.as_path(), l.stats.allocated_bytes))
        .collect()
}

/// What the `.vmx` files say about one disk.
#[derive(Debug, Clone, Copy, Default)]
struct DiskContext<'a> {
    vm: Option<&'a str>,
    vmx_mode: Option<&'a str>,
    vm_has_snapshots: bool,
    has_children: bool,
}

fn vm_report(lun: &str, scan: &DiskScan, ctx: &DiskContext, s: &ModelSettings) -> VmReport {
    // The history store's name for the disk: the path, with bytes that are not UTF-8
    // escaped so that two such paths stay two disks (and growth is looked up by it).
    let path = crate::history::disk_name(&scan.path);
    let facts = RoleFacts {
        vmx_mode: ctx.vmx_mode,
        vm_has_snapshots: ctx.vm_has_snapshots,
        has_children: ctx.has_children,
        ..RoleFacts::default()
    };
    let r: &ChainScan = match &scan.result {
        Ok(r) => r,
        Err(e) => {
            return VmReport {
                lun: lun.to_string(),
                path,
                vm: ctx.vm.map(str::to_string),
                role: datastore::role(&scan.path, &facts).name(),
                status: Status::Error,
                error: Some(e.clone()),
                layers: None,
                format: None,
                create_type: None,
                virtual_size: None,
                is_delta: false,
                delta_bytes: None,
                chain_delta_bytes: None,
                delta_file_bytes: None,
                classes: None,
                ceiling: None,
                growth: None,
                increment_bytes: None,
                lock_events: None,
                lock_events_per_hour: None,
                refresh_every_days: None,
                warnings: Vec::new(),
                projection: None,
            };
        }
    };
    let top = r.top();
    let format = top.map(|t| t.format);
    let is_delta = r.layers.len() > 1 || format.is_some_and(Format::is_redo_log);
    let delta_bytes = top.map(|t| t.stats.allocated_bytes);
    let (growth, increment) = if is_delta {
        (
            s.growth.growth_of(&path, delta_bytes.unwrap_or(0)),
            s.increment
                .or_else(|| format.and_then(|f| lun::default_increment(f.as_str()))),
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
    let role = datastore::role(
        &scan.path,
        &RoleFacts {
            is_delta: Some(is_delta),
            layers: Some(r.layers.len()),
            ..facts
        },
    );
    let chain_delta: u64 = r
        .layers
        .iter()
        .enumerate()
        .filter(|(i, l)| is_delta_layer(*i, l))
        .map(|(_, l)| l.stats.allocated_bytes)
        .sum();
    let projection = if is_delta {
        projection_of(&path, delta_bytes.unwrap_or(0), r.ceiling, s)
    } else {
        None
    };
    VmReport {
        lun: lun.to_string(),
        path,
        vm: ctx.vm.map(str::to_string),
        role: role.name(),
        status: Status::Ok,
        error: None,
        layers: Some(r.layers.len()),
        format,
        create_type: top.map(|t| t.create_type.clone()),
        virtual_size: top.map(|t| t.virtual_size),
        is_delta,
        delta_bytes: is_delta.then_some(delta_bytes).flatten(),
        chain_delta_bytes: Some(chain_delta),
        delta_file_bytes: if is_delta {
            top.map(|t| t.file_size)
        } else {
            None
        },
        classes: top.map(|t| t.stats.classes),
        ceiling: if is_delta { r.ceiling } else { None },
        growth,
        increment_bytes: increment,
        lock_events: events,
        lock_events_per_hour: per_hour,
        refresh_every_days: projection
            .as_ref()
            .zip(s.budget)
            .and_then(|(p, b)| fill::refresh_every_days(p, b)),
        warnings: r
            .layers
            .iter()
            .flat_map(|l| l.warnings.iter().map(WarningReport::from))
            .collect(),
        projection,
    }
}

/// The forecast of the delta recorded as `disk`, from its series; a scan being recorded
/// (`recorded_at`) joins it as its last point, in a new segment if the delta shrank.
fn projection_of(
    disk: &str,
    bytes: u64,
    ceiling: Option<Ceiling>,
    s: &ModelSettings,
) -> Option<Projection> {
    let mut points = s.series.get(disk).cloned().unwrap_or_default();
    if let Some(at) = s.recorded_at {
        let last = points.last().copied();
        if last.is_none_or(|l| l.at < at) {
            let segment = match last {
                Some(l) if bytes < l.bytes => l.segment + 1,
                Some(l) => l.segment,
                None => 0,
            };
            points.push(Sample {
                at,
                segment,
                bytes,
                expected_ceiling: ceiling.map(|c| c.expected_bytes),
                hard_ceiling: ceiling.map(|c| c.hard_bytes),
            });
        }
    }
    Projection::of(&points)
}

/// Who a disk counts for in the LUN model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    /// A VM (by global machine index): its disks' growth adds up.
    Machine(usize),
    /// A disk no `.vmx` names: a VM of its own, as before `.vmx` files were read.
    Disk(usize),
}

/// One LUN's disks, with what the model needs to know about each.
struct LunDisks<'a> {
    vms: &'a [VmReport],
    /// The unit of each disk; `None`: not counted (an unused delta).
    units: Vec<Option<Unit>>,
    all_delta_bytes: u64,
    machines_found: usize,
}

fn lun_report(name: &str, dir: &Path, found: &Found, d: &LunDisks, s: &ModelSettings) -> LunReport {
    let vms = d.vms;
    let ok: Vec<&VmReport> = vms.iter().filter(|v| v.status == Status::Ok).collect();
    let deltas: Vec<&&VmReport> = ok.iter().filter(|v| v.is_delta).collect();
    let mut units: BTreeMap<Unit, Vec<&VmReport>> = BTreeMap::new();
    let mut orphans_left_out = 0;
    for (v, u) in vms.iter().zip(&d.units) {
        if v.status != Status::Ok {
            continue;
        }
        match u {
            Some(u) => units.entry(*u).or_default().push(v),
            None => orphans_left_out += 1,
        }
    }
    let mut load = Load::default();
    let mut growths = Vec::new();
    let mut ceilings: Vec<u64> = Vec::new();
    let mut replicas_left_out = 0;
    for disks in units.values() {
        // A replica VM is read-only: it takes no growth locks and holds no clone's data.
        if disks.iter().all(|v| v.role == Role::Replica.name()) {
            replicas_left_out += 1;
            continue;
        }
        let parts: Vec<(u64, f64)> = disks
            .iter()
            .filter_map(|v| match (v.growth, v.lock_events) {
                (Some(g), Some(e)) => {
                    growths.push(g);
                    Some((e, g.window_seconds))
                }
                _ => None,
            })
            .collect();
        if parts.is_empty() {
            load.add_idle_vm();
        } else {
            load.add_machine(&parts);
        }
        let c: Vec<u64> = disks
            .iter()
            .filter(|v| v.is_delta)
            .filter_map(|v| v.ceiling.map(|c| c.expected_bytes))
            .collect();
        if !c.is_empty() {
            ceilings.push(c.iter().sum());
        }
    }
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
    if d.machines_found > 0 {
        outcome.notes.push(
            "VMs are counted by .vmx (a VM's disks add up), and disks no .vmx names one each"
                .to_string(),
        );
    }
    if orphans_left_out > 0 {
        outcome.notes.push(format!(
            "{orphans_left_out} unused delta(s) (orphans) are not counted as VMs: nothing writes to them"
        ));
    }
    if replicas_left_out > 0 {
        outcome.notes.push(format!(
            "{replicas_left_out} replica VM(s) are not counted: a replica is read-only and does not grow"
        ));
    }
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
    let full = params
        .lun_size
        .map(|size| {
            time_to_full(
                &deltas,
                size,
                params.headroom,
                s.scanned_at,
                &mut outcome.notes,
            )
        })
        .unwrap_or_default();
    LunReport {
        name: name.to_string(),
        path: dir.display().to_string(),
        vms_found: vms.len(),
        vms_failed: vms.len() - ok.len(),
        machines_found: d.machines_found,
        delta_bytes: deltas.iter().filter_map(|v| v.delta_bytes).sum(),
        all_delta_bytes: d.all_delta_bytes,
        delta_file_bytes: deltas.iter().filter_map(|v| v.delta_file_bytes).sum(),
        projected_ceiling_bytes: deltas
            .iter()
            .filter_map(|v| v.ceiling.map(|c| c.expected_bytes))
            .sum(),
        full_at: full.full_at.map(|t| crate::history::format_time(&t)),
        full_at_worst: full.full_at_worst.map(|t| crate::history::format_time(&t)),
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

/// When the LUN's deltas fill `lun_size x (1 - headroom)`, with a note where a date is
/// missing, rests on deltas without a forecast, or lies before the scan (`now`).
fn time_to_full(
    deltas: &[&&VmReport],
    lun_size: u64,
    headroom: f64,
    now: chrono::DateTime<chrono::Utc>,
    notes: &mut Vec<String>,
) -> fill::Fill {
    let occupants: Vec<Occupant> = deltas
        .iter()
        .map(|v| {
            let ceiling = v.ceiling.map(|c| c.expected_bytes);
            match &v.projection {
                Some(p) => Occupant::Projected(p, ceiling),
                None => Occupant::Fixed(v.delta_bytes.unwrap_or(0), ceiling),
            }
        })
        .collect();
    let usable = lun_size as f64 * (1.0 - headroom).max(0.0);
    let f = fill::time_to_full(&occupants, usable);
    let forecast = deltas.iter().filter(|v| v.projection.is_some()).count();
    if forecast == 0 && !deltas.is_empty() {
        notes.push(
            "no time to full: no delta has two recorded points in its latest segment (record scans over time with scan DIR --record)".to_string(),
        );
    } else if forecast < deltas.len() {
        notes.push(format!(
            "time to full: {} of {} deltas have no forecast (fewer than two recorded points): they stay at their size now (worst case: at their expected ceiling)",
            deltas.len() - forecast,
            deltas.len()
        ));
    }
    if forecast > 0 && f.full_at.is_none() {
        notes.push("the deltas' forecasts do not fill the LUN within ten years".to_string());
    }
    // The model counts from the latest recorded point; an old history can put the date
    // before today, which is a statement about the forecast, not about the LUN.
    let past = [
        ("as forecast", f.full_at),
        ("in the worst case", f.full_at_worst),
    ]
    .into_iter()
    .filter_map(|(how, at)| at.filter(|t| *t < now).map(|t| (how, t)))
    .map(|(how, t)| format!("{how} on {}", t.format("%Y-%m-%d")))
    .collect::<Vec<_>>();
    if !past.is_empty() {
        let last = deltas
            .iter()
            .filter_map(|v| v.projection.as_ref().map(|p| p.last_at()))
            .max();
        notes.push(format!(
            "time to full is in the past ({}): the forecast starts from the latest recorded point{}, not from this scan; record this scan (--record) so it starts from today's sizes",
            past.join(", "),
            last.map(|t| format!(" ({})", t.format("%Y-%m-%d")))
                .unwrap_or_default()
        ));
    }
    f
}

fn rfc3339_micros(micros: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_micros(micros).map(|t| crate::history::format_time(&t))
}

/// Builds the datastore report from the LUNs (name, folder, what was found there), the plan
/// over all of them, and the scans of their disks.
pub fn datastore_report(
    luns: &[(String, PathBuf, Found)],
    plan: &Plan,
    scans: &[DiskScan],
    s: &ModelSettings,
) -> DatastoreReport {
    // Global machine index -> (LUN, index in that LUN's Found).
    let mut machine_ids: Vec<(usize, usize)> = Vec::new();
    for (l, (_, _, f)) in luns.iter().enumerate() {
        machine_ids.extend((0..f.machines.len()).map(|k| (l, k)));
    }
    let ids: HashMap<(usize, usize), usize> = machine_ids
        .iter()
        .enumerate()
        .map(|(id, lk)| (*lk, id))
        .collect();
    let machine_id = |lk: (usize, usize)| ids.get(&lk).copied();
    let scan_of: HashMap<&Path, &DiskScan> = scans.iter().map(|s| (s.path.as_path(), s)).collect();
    let machine = |id: usize| {
        let (l, k) = machine_ids[id];
        &luns[l].2.machines[k]
    };
    let has_children = |p: &Path| {
        luns.iter()
            .any(|(_, _, f)| f.layers.get(p).is_some_and(|x| x.has_children))
    };
    let unused: HashSet<&Path> = luns
        .iter()
        .flat_map(|(_, _, f)| &f.orphans)
        .filter(|o| o.reason == OrphanReason::NotReferenced)
        .map(|o| o.path.as_path())
        .collect();

    let mut all_vms = Vec::new();
    let mut reports = Vec::new();
    for (i, (name, dir, found)) in luns.iter().enumerate() {
        let mine: Vec<&DiskScan> = scans.iter().filter(|d| d.lun == i).collect();
        let mut units = Vec::new();
        let vms: Vec<VmReport> = mine
            .iter()
            .enumerate()
            .map(|(k, d)| {
                let id = plan.vm_of.get(&d.path).and_then(|lk| machine_id(*lk));
                let m = id.map(machine);
                let ctx = DiskContext {
                    vm: m.map(|m| m.name.as_str()),
                    vmx_mode: m.and_then(|m| {
                        m.disks
                            .iter()
                            .find(|x| x.path == d.path)
                            .and_then(|x| x.mode.as_deref())
                    }),
                    vm_has_snapshots: m.is_some_and(|m| !m.snapshots.is_empty()),
                    has_children: has_children(&d.path),
                };
                units.push(if unused.contains(d.path.as_path()) {
                    None
                } else {
                    Some(id.map_or(Unit::Disk(k), Unit::Machine))
                });
                vm_report(name, d, &ctx, s)
            })
            .collect();
        let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        let mut seen: HashSet<&Path> = HashSet::new();
        let all_delta_bytes = mine
            .iter()
            .flat_map(|d| delta_layers(d))
            .filter(|(f, _)| f.starts_with(&root) && seen.insert(f))
            .map(|(_, b)| b)
            .sum();
        let lun_disks = LunDisks {
            vms: &vms,
            units,
            all_delta_bytes,
            machines_found: found.machines.len(),
        };
        reports.push(lun_report(name, dir, found, &lun_disks, s));
        all_vms.extend(vms);
    }

    let machines = machine_ids
        .iter()
        .map(|&(l, k)| {
            let m = &luns[l].2.machines[k];
            let disks: Vec<&DiskScan> = m
                .disks
                .iter()
                .filter_map(|d| scan_of.get(d.path.as_path()).copied())
                .collect();
            let mut seen: HashSet<&Path> = HashSet::new();
            let delta_bytes = disks
                .iter()
                .flat_map(|d| delta_layers(d))
                .filter(|(f, _)| seen.insert(f))
                .map(|(_, b)| b)
                .sum();
            MachineReport {
                name: m.name.clone(),
                vmx: m.vmx.display().to_string(),
                lun: luns[l].0.clone(),
                disks: m
                    .disks
                    .iter()
                    .map(|d| d.path.display().to_string())
                    .collect(),
                delta_bytes,
                snapshots: m.snapshots.len(),
                snapshot_tree: m
                    .snapshots
                    .iter()
                    .map(|x| SnapshotReport {
                        uid: x.uid.clone(),
                        name: x.name.clone(),
                        parent: x.parent.clone(),
                        created: x.created_micros.and_then(rfc3339_micros),
                        disks: x.disks.iter().map(|d| d.display().to_string()).collect(),
                        current: x.current,
                    })
                    .collect(),
            }
        })
        .collect();
    let orphans = luns
        .iter()
        .flat_map(|(name, _, f)| {
            f.orphans.iter().map(move |o| OrphanReport {
                path: o.path.display().to_string(),
                reason: o.reason.name(),
                error: o.error.clone(),
                lun: name.clone(),
                detail: o.detail.clone(),
            })
        })
        .collect();
    let warnings = luns
        .iter()
        .flat_map(|(_, _, f)| &f.warnings)
        .map(|w| WarningReport {
            kind: w.kind.to_string(),
            message: w.message.clone(),
        })
        .collect();
    DatastoreReport {
        deltascope_version: VERSION.to_string(),
        scanned_at: crate::history::format_time(&s.scanned_at),
        luns: reports,
        vms: all_vms,
        machines,
        orphans,
        warnings,
        budget_bytes: s.budget,
        strict: false,
    }
}
