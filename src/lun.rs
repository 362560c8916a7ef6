//! The LUN model: how often delta growth takes a VMFS metadata lock, what share of the time
//! that keeps a LUN reserved, and how many VMs a LUN can take before locking or capacity runs
//! out. Pure arithmetic, no I/O: `docs/MODEL.md` writes every formula down with its
//! assumptions (A1-A10, stated with their reasons in docs/SOURCES.md), and the unit tests below
//! check them against the hand calculations there.
//!
//! Every VM contributes `ceil(G / I)` lock events over its window `T` (A1); the LUN sees them
//! as one Poisson stream of rate `lambda` = the sum of the VMs' rates (A4). Under SCSI-2 each
//! event reserves the whole LUN for the hold time `h`, so `rho = lambda * h` and the chance
//! that an event finds the LUN reserved is `1 - exp(-lambda * h)` (A5). Under ATS the lock is
//! a sector, and the LUN-wide figures are zero (A6).

use serde::Serialize;

/// How VMFS takes its metadata locks on this LUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Locking {
    /// SCSI-2 reservations: every lock reserves the whole LUN for every host.
    Scsi2,
    /// ATS (VAAI compare-and-write): a lock is one sector; other VMs are not held up.
    Ats,
}

impl Locking {
    /// The name used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Locking::Scsi2 => "scsi2",
            Locking::Ats => "ats",
        }
    }
}

/// The default increment of a vmfsSparse delta: 16 MiB (docs/SOURCES.md A2, sources S1 and S11).
pub const VMFS_SPARSE_INCREMENT: u64 = 16 << 20;
/// The default increment of an SESparse delta: 1 MiB, a guess from the VMFS6 small file block
/// (docs/SOURCES.md A2: unsourced).
pub const SESPARSE_INCREMENT: u64 = 1 << 20;
/// The default SCSI-2 hold time per lock: 300 us (docs/SOURCES.md A3: unsourced, ours).
pub const DEFAULT_HOLD_SECONDS: f64 = 300e-6;
/// The default busy-fraction target: 1 % of the time reserved (docs/SOURCES.md A7, our choice).
pub const DEFAULT_MAX_BUSY: f64 = 0.01;
/// The default capacity headroom: 20 % of the LUN kept free (docs/SOURCES.md A8).
pub const DEFAULT_HEADROOM: f64 = 0.2;

/// The VMFS growth increment of a delta of this data format (`Layer::format`), or `None` for
/// formats whose growth takes no VMFS lock (hosted sparse lives on a host file system).
pub fn default_increment(format: &str) -> Option<u64> {
    match format {
        "vmfsSparse" => Some(VMFS_SPARSE_INCREMENT),
        "seSparse" => Some(SESPARSE_INCREMENT),
        _ => None,
    }
}

/// Lock events of one VM that grows `growth` bytes in increments of `increment` (A1).
pub fn events_per_vm(growth: u64, increment: u64) -> u64 {
    if increment == 0 {
        0
    } else {
        growth.div_ceil(increment)
    }
}

/// The lock load of a LUN: how many VMs, how many lock events they take, at what rate.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Load {
    /// VMs on the LUN.
    pub vms: u64,
    /// Lock events over each VM's window, summed.
    pub events: u64,
    /// LUN-wide lock events per second (`lambda`).
    pub rate: f64,
}

impl Load {
    /// `vms` VMs that each grow `growth` bytes within `window` seconds.
    pub fn uniform(vms: u64, growth: u64, window: f64, increment: u64) -> Load {
        let per_vm = events_per_vm(growth, increment);
        let events = vms.saturating_mul(per_vm);
        Load {
            vms,
            events,
            rate: if window > 0.0 {
                events as f64 / window
            } else {
                0.0
            },
        }
    }

    /// Adds one VM that took `events` lock events within `window` seconds.
    pub fn add_vm(&mut self, events: u64, window: f64) {
        self.vms += 1;
        self.events = self.events.saturating_add(events);
        if window > 0.0 {
            self.rate += events as f64 / window;
        }
    }

    /// Adds a VM whose growth is not known: it counts on the LUN but adds no lock events.
    pub fn add_idle_vm(&mut self) {
        self.vms += 1;
    }

    /// Adds one VM whose growth is spread over several files (a linked clone's OS delta and
    /// its disposable disk each take their own locks): `(events, window)` per file. A VM with
    /// no such file counts as idle.
    pub fn add_machine(&mut self, parts: &[(u64, f64)]) {
        self.vms += 1;
        for &(events, window) in parts {
            self.events = self.events.saturating_add(events);
            if window > 0.0 {
                self.rate += events as f64 / window;
            }
        }
    }
}

/// What the model assumes besides the load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Hold time of one lock, seconds (A3).
    pub hold: f64,
    /// SCSI-2 or ATS.
    pub locking: Locking,
    /// Busy-fraction target for the lock limit (A7).
    pub max_busy: f64,
    /// LUN size in bytes, when known.
    pub lun_size: Option<u64>,
    /// Share of the LUN kept free (A8).
    pub headroom: f64,
    /// Bytes one VM's delta reaches at its ceiling (A9), when known.
    pub ceiling_per_vm: Option<u64>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            hold: DEFAULT_HOLD_SECONDS,
            locking: Locking::Scsi2,
            max_busy: DEFAULT_MAX_BUSY,
            lun_size: None,
            headroom: DEFAULT_HEADROOM,
            ceiling_per_vm: None,
        }
    }
}

/// Which limit decides the recommended VMs per LUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Binding {
    /// Locking: the busy-fraction target is reached first.
    Lock,
    /// Capacity: the LUN fills first.
    Capacity,
}

impl Binding {
    /// The name used in JSON, CSV and tables.
    pub fn name(self) -> &'static str {
        match self {
            Binding::Lock => "lock",
            Binding::Capacity => "capacity",
        }
    }
}

/// The recommended VMs per LUN from the two limits: the smaller one, and which it is (capacity
/// when they tie); `None` when neither is known.
pub fn recommend(lock: Option<u64>, capacity: Option<u64>) -> (Option<u64>, Option<Binding>) {
    match (lock, capacity) {
        (Some(l), Some(c)) if l < c => (Some(l), Some(Binding::Lock)),
        (Some(_), Some(c)) => (Some(c), Some(Binding::Capacity)),
        (Some(l), None) => (Some(l), Some(Binding::Lock)),
        (None, Some(c)) => (Some(c), Some(Binding::Capacity)),
        (None, None) => (None, None),
    }
}

/// VMs per LUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VmsPerLun {
    /// The largest N whose busy fraction stays at or under the target; `null` when locking
    /// sets no limit (ATS, or no growth).
    pub lock_limit: Option<u64>,
    /// floor(LUN size x (1 - headroom) / ceiling per VM); `null` without a LUN size or ceiling.
    pub capacity_limit: Option<u64>,
    /// The smaller of the two; `null` when neither is known.
    pub recommended: Option<u64>,
    /// `lock` or `capacity`: which one gives `recommended`.
    pub binding: Option<Binding>,
}

/// The model's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// Lock events of all VMs over their windows.
    pub lock_events: u64,
    /// LUN-wide lock events per hour (lambda x 3600).
    pub lock_events_per_hour: f64,
    /// Share of time the LUN is reserved by growth locks (rho = lambda x h); above 1 the LUN
    /// is saturated by locking alone. 0 under ATS.
    pub busy_fraction: f64,
    /// Chance that a lock event finds the LUN already reserved: 1 - exp(-lambda x h).
    pub conflict_probability: f64,
    /// Mean wait per lock request as an M/D/1 queue, seconds (A10); `null` when saturated.
    pub mean_wait_seconds: Option<f64>,
    /// VMs per LUN.
    pub vms_per_lun: VmsPerLun,
    /// Why figures are what they are (ATS, saturation, missing inputs).
    pub notes: Vec<String>,
}

/// Busy fraction of `vms` VMs that each take locks at `rate_per_vm` per second.
pub fn busy_fraction(vms: u64, rate_per_vm: f64, hold: f64) -> f64 {
    vms as f64 * rate_per_vm * hold
}

/// Relative slack for comparisons against a target, so that a product that is exactly the
/// target on paper (0.01 x 120 s / (128 x 300 us) = 31.25) is not lost to rounding.
const SLACK: f64 = 1e-12;

/// The largest N with `N x rate_per_vm x hold <= max_busy`; `None` when no N reaches it.
pub fn lock_limit(rate_per_vm: f64, hold: f64, max_busy: f64) -> Option<u64> {
    let per_vm = rate_per_vm * hold;
    if per_vm <= 0.0 || !per_vm.is_finite() {
        return None;
    }
    let fits = |n: u64| n as f64 * per_vm <= max_busy * (1.0 + SLACK);
    let mut n = (max_busy / per_vm)
        .floor()
        .clamp(0.0, u64::MAX as f64 / 2.0) as u64;
    while fits(n + 1) {
        n += 1;
    }
    while n > 0 && !fits(n) {
        n -= 1;
    }
    Some(n)
}

/// floor(lun_size x (1 - headroom) / ceiling); `None` when the ceiling is 0.
pub fn capacity_limit(lun_size: u64, headroom: f64, ceiling: u64) -> Option<u64> {
    if ceiling == 0 {
        return None;
    }
    let usable = lun_size as f64 * (1.0 - headroom).max(0.0);
    let fits = |n: u64| n as f64 * ceiling as f64 <= usable * (1.0 + SLACK);
    let mut n = (usable / ceiling as f64).floor().max(0.0) as u64;
    while fits(n + 1) {
        n += 1;
    }
    while n > 0 && !fits(n) {
        n -= 1;
    }
    Some(n)
}

/// Runs the model on a LUN's load.
pub fn evaluate(load: &Load, p: &Params) -> Outcome {
    let mut notes = Vec::new();
    let rate = load.rate;
    let (busy, conflict, wait) = match p.locking {
        Locking::Ats => {
            notes.push(
                "ATS: VMFS locks one sector per lock (compare-and-write), not the LUN, so growth locks of different VMs do not hold each other up; LUN-wide busy fraction and conflict probability are 0 (docs/SOURCES.md A6)".to_string(),
            );
            (0.0, 0.0, Some(0.0))
        }
        Locking::Scsi2 => {
            let rho = rate * p.hold;
            let wait = (rho < 1.0).then(|| rho * p.hold / (2.0 * (1.0 - rho)));
            if rho >= 1.0 {
                notes.push(format!(
                    "saturated: growth locks alone would keep the LUN reserved {:.0} % of the time",
                    rho * 100.0
                ));
            }
            (rho, 1.0 - (-rho).exp(), wait)
        }
    };
    let lock = match p.locking {
        Locking::Ats => None,
        Locking::Scsi2 if load.vms == 0 || rate <= 0.0 => {
            notes.push("no growth: locking sets no limit".to_string());
            None
        }
        Locking::Scsi2 => lock_limit(rate / load.vms as f64, p.hold, p.max_busy),
    };
    let capacity = match (p.lun_size, p.ceiling_per_vm) {
        (Some(size), Some(ceiling)) => capacity_limit(size, p.headroom, ceiling),
        (None, _) => {
            notes.push("no LUN size (--lun-size): no capacity limit".to_string());
            None
        }
        (_, None) => {
            notes.push(
                "no ceiling per VM (--ceiling-per-vm or a scan): no capacity limit".to_string(),
            );
            None
        }
    };
    let (recommended, binding) = recommend(lock, capacity);
    Outcome {
        lock_events: load.events,
        lock_events_per_hour: rate * 3600.0,
        busy_fraction: busy,
        conflict_probability: conflict,
        mean_wait_seconds: wait,
        vms_per_lun: VmsPerLun {
            lock_limit: lock,
            capacity_limit: capacity,
            recommended,
            binding,
        },
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// docs/SOURCES.md worked example 1: 64 VMs, 2 GiB each in 2 minutes, 16 MiB, 300 us.
    #[test]
    fn burst_example_matches_the_hand_calculation() {
        let load = Load::uniform(64, 2 * GIB, 120.0, 16 * MIB);
        assert_eq!(load.events, 8192);
        let o = evaluate(&load, &Params::default());
        assert_eq!(o.lock_events, 8192);
        // lambda = 8192 / 120 = 68.2667/s; rho = 68.2667 x 0.0003 = 0.02048.
        assert!(close(o.lock_events_per_hour, 8192.0 * 30.0, 1e-6));
        assert!(close(o.busy_fraction, 0.02048, 1e-12));
        assert!(close(
            o.conflict_probability,
            1.0 - (-0.02048f64).exp(),
            1e-12
        ));
        assert!(close(o.conflict_probability, 0.020272, 1e-6));
        // N <= 0.01 x 120 / (128 x 0.0003) = 31.25.
        assert_eq!(o.vms_per_lun.lock_limit, Some(31));
        assert_eq!(o.vms_per_lun.capacity_limit, None);
        assert_eq!(o.vms_per_lun.recommended, Some(31));
        assert_eq!(o.vms_per_lun.binding, Some(Binding::Lock));
        // M/D/1: W = rho h / (2 (1 - rho)) = 0.02048 x 300 us / 1.95904.
        assert!(close(
            o.mean_wait_seconds.unwrap(),
            0.02048 * 3e-4 / 1.95904,
            1e-15
        ));
    }

    /// docs/SOURCES.md's sensitivity table, lock limits column by column.
    #[test]
    fn sensitivity_table_lock_limits() {
        let cases = [
            (MIB, 100e-6, 5),
            (MIB, 300e-6, 1),
            (MIB, 1e-3, 0),
            (8 * MIB, 100e-6, 46),
            (8 * MIB, 300e-6, 15),
            (8 * MIB, 1e-3, 4),
            (16 * MIB, 100e-6, 93),
            (16 * MIB, 300e-6, 31),
            (16 * MIB, 1e-3, 9),
            (64 * MIB, 100e-6, 375),
            (64 * MIB, 300e-6, 125),
            (64 * MIB, 1e-3, 37),
        ];
        for (inc, hold, want) in cases {
            let load = Load::uniform(64, 2 * GIB, 120.0, inc);
            let p = Params {
                hold,
                ..Params::default()
            };
            assert_eq!(
                evaluate(&load, &p).vms_per_lun.lock_limit,
                Some(want),
                "increment {inc}, hold {hold}"
            );
        }
        // rho at 1 MiB and 1 ms: 2048 x 64 / 120 x 0.001 = 1.0923: saturated.
        let o = evaluate(
            &Load::uniform(64, 2 * GIB, 120.0, MIB),
            &Params {
                hold: 1e-3,
                ..Params::default()
            },
        );
        assert!(close(o.busy_fraction, 2048.0 * 64.0 / 120.0 * 1e-3, 1e-12));
        assert_eq!(o.mean_wait_seconds, None);
        assert!(o.notes.iter().any(|n| n.starts_with("saturated")));
    }

    /// A limit exactly on the target counts as within it.
    #[test]
    fn exact_target_is_within() {
        // 1 event/s per VM, h = 1 ms, target 0.01: N = 10 exactly.
        assert_eq!(lock_limit(1.0, 1e-3, 0.01), Some(10));
        // 0.1 + 0.2 style rounding: 3 VMs at 0.1/s, h = 1 s, target 0.3.
        assert_eq!(lock_limit(0.1, 1.0, 0.3), Some(3));
        assert_eq!(lock_limit(0.0, 1e-3, 0.01), None);
        // One VM alone already over the target.
        assert_eq!(lock_limit(100.0, 1e-3, 0.01), Some(0));
    }

    /// docs/SOURCES.md capacity example: 2 TiB, headroom 0.2, 10.5 GiB per VM: 156.
    #[test]
    fn capacity_example() {
        assert_eq!(capacity_limit(2 << 40, 0.2, 10 * GIB + GIB / 2), Some(156));
        // Exactly divisible: 100 GiB x 0.8 / 8 GiB = 10.
        assert_eq!(capacity_limit(100 * GIB, 0.2, 8 * GIB), Some(10));
        assert_eq!(capacity_limit(100 * GIB, 0.2, 0), None);
        assert_eq!(capacity_limit(GIB, 0.2, 2 * GIB), Some(0));
    }

    /// Under SCSI-2 the lock limit (31) binds; under ATS capacity (156) does.
    #[test]
    fn binding_limit_follows_locking_mode() {
        let load = Load::uniform(64, 2 * GIB, 120.0, 16 * MIB);
        let mut p = Params {
            lun_size: Some(2 << 40),
            ceiling_per_vm: Some(10 * GIB + GIB / 2),
            ..Params::default()
        };
        let o = evaluate(&load, &p);
        assert_eq!(o.vms_per_lun.recommended, Some(31));
        assert_eq!(o.vms_per_lun.binding, Some(Binding::Lock));
        p.locking = Locking::Ats;
        let o = evaluate(&load, &p);
        assert_eq!(o.busy_fraction, 0.0);
        assert_eq!(o.conflict_probability, 0.0);
        assert_eq!(o.lock_events, 8192, "ATS still counts the events");
        assert_eq!(o.vms_per_lun.lock_limit, None);
        assert_eq!(o.vms_per_lun.recommended, Some(156));
        assert_eq!(o.vms_per_lun.binding, Some(Binding::Capacity));
        assert!(o.notes.iter().any(|n| n.starts_with("ATS")));
    }

    /// docs/SOURCES.md worked example 2: a steady month is harmless.
    #[test]
    fn steady_month_example() {
        let load = Load::uniform(100, 10 * GIB, 4.0 * 7.0 * 86_400.0, 16 * MIB);
        assert_eq!(load.events, 64_000);
        let o = evaluate(&load, &Params::default());
        // lambda = 640 x 100 / 2,419,200 s = 0.026455/s; rho = 7.94e-6.
        assert!(close(o.busy_fraction, 64_000.0 / 2_419_200.0 * 3e-4, 1e-15));
        assert!(o.busy_fraction < 8e-6 && o.busy_fraction > 7.9e-6);
    }

    /// VMs with different growth and windows add their rates.
    #[test]
    fn mixed_vms_add_rates() {
        let mut load = Load::default();
        // 100 MiB in an hour at 16 MiB: 7 events; 1 GiB in a day at 1 MiB: 1024 events.
        load.add_vm(events_per_vm(100 * MIB, 16 * MIB), 3600.0);
        load.add_vm(events_per_vm(GIB, MIB), 86_400.0);
        load.add_idle_vm();
        assert_eq!(load.vms, 3);
        assert_eq!(load.events, 7 + 1024);
        let rate = 7.0 / 3600.0 + 1024.0 / 86_400.0;
        let o = evaluate(&load, &Params::default());
        assert!(close(o.lock_events_per_hour, rate * 3600.0, 1e-9));
        assert!(close(o.busy_fraction, rate * 3e-4, 1e-15));
        // Mean rate per VM = rate / 3; N <= 0.01 / (rate / 3 x 3e-4).
        let want = (0.01 / (rate / 3.0 * 3e-4)).floor() as u64;
        assert_eq!(o.vms_per_lun.lock_limit, Some(want));
    }

    #[test]
    fn increments_round_up_and_hosted_takes_no_lock() {
        assert_eq!(events_per_vm(1, 16 * MIB), 1);
        assert_eq!(events_per_vm(16 * MIB, 16 * MIB), 1);
        assert_eq!(events_per_vm(16 * MIB + 1, 16 * MIB), 2);
        assert_eq!(events_per_vm(0, 16 * MIB), 0);
        assert_eq!(default_increment("vmfsSparse"), Some(16 * MIB));
        assert_eq!(default_increment("seSparse"), Some(MIB));
        assert_eq!(default_increment("hostedSparse"), None);
    }
}
