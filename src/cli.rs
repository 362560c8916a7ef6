//! The command line, as clap derive types. No logic lives here: `cmd/` turns these into
//! configurations and runs them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Exit codes, shown in `--help` and README.
pub const EXIT_CODES: &str = "Exit codes:
  0  success
  1  bad input or analysis error (corrupt or unsupported image, missing file, broken chain,
     a warning under --strict, any chain failing in a datastore scan)
  2  usage error";

/// deltascope: where did a VMware delta disk's growth go?
///
/// Reads VMDK chains (linked clones, snapshots) read-only and classifies every grain a delta
/// holds: fresh (growth into space that was zero in its parent), overwritten (replaced parent
/// data), identical (rewrote what the parent has) or zeroed.
#[derive(Debug, Parser)]
#[command(name = "deltascope", version, after_help = EXIT_CODES, help_expected = true)]
pub struct Cli {
    /// Options every subcommand takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by all subcommands.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Worker threads for classification [default: the number of cores]
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// Read input files with positioned reads instead of memory maps (same results; a file
    /// truncated during the run gives an I/O error instead of a SIGBUS)
    #[arg(long, global = true)]
    pub no_mmap: bool,
    /// Evidence mode: treat warnings (parentCID mismatch, dirty SESparse journal, unclean
    /// shutdown, redundant grain directory mismatch) as errors, and compute every figure from
    /// the files of this run (the layer cache is neither read nor written)
    #[arg(long, global = true)]
    pub strict: bool,
    /// Most layers followed down a chain before giving up
    #[arg(long, global = true, value_name = "N", default_value_t = crate::chain::DEFAULT_MAX_DEPTH)]
    pub max_depth: usize,
    /// Classify every layer afresh: do not use or fill the cache of layers below the top
    /// (kept in $DELTASCOPE_CACHE, $XDG_CACHE_HOME/deltascope or ~/.cache/deltascope, keyed
    /// by the classification code, each file's path, device, inode, size and times, and each
    /// layer's metadata; --strict implies it)
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Refuse, before opening it, any file of a chain outside the evidence tree (the top's
    /// folder, or the scanned folders): an absolute or `..` extent, a parent hint pointing
    /// elsewhere. Without it such files are read with an `outside_tree` warning
    #[arg(long, global = true)]
    pub confine: bool,
    /// Never draw a progress bar (one is drawn only when stderr is a terminal anyway)
    #[arg(long, global = true)]
    pub quiet: bool,
    /// Read names beginning with PREFIX under DIR: parent hints, extent names and .vmx disk
    /// names written on the ESXi host, e.g. --map
    /// /vmfs/volumes/5f3a1c2e-8a7b9c0d-1e2f-001122334455=/mnt/ds1 (repeat for several
    /// datastores). Without it, an absolute hint that does not exist here is looked for by
    /// its file name beside the child, then by its last two components under the folders
    /// scanned, with a parent_remapped warning
    #[arg(long, global = true, value_name = "PREFIX=DIR")]
    pub map: Vec<String>,
    /// How to read times written without a zone (`--at`, `--since`, imported CSV times):
    /// UTC, local (this machine's zone, from TZ) or an offset such as +01:00 [default: UTC]
    #[arg(long, global = true, value_name = "ZONE", allow_hyphen_values = true)]
    pub tz: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show each layer of a chain: format, createType, sizes, grain size, CIDs, extents.
    #[command(after_help = "Example:\n  deltascope info testdata/demo/win10-clone-000002.vmdk")]
    Info(InfoArgs),
    /// Print one layer's allocation as JSON ranges, with the meaning of
    /// `qemu-img map --output=json` of that layer alone.
    #[command(
        after_help = "Example:\n  deltascope map testdata/demo/win10-clone-000002.vmdk --layer 1"
    )]
    Map(MapArgs),
    /// Classify every grain (and 4 KiB block) each layer holds: fresh, overwritten,
    /// identical, zeroed. Given folders, scan every disk of a datastore, with a per-LUN model.
    #[command(
        after_help = "Examples:\n  deltascope scan testdata/demo/win10-clone-000002.vmdk\n  deltascope scan --json testdata/demo/win10-clone-000002.vmdk > scan.json\n  deltascope scan --lun ds1=/vmfs/volumes/ds1 --lun ds2=/vmfs/volumes/ds2 --since 2026-11-01"
    )]
    Scan(ScanArgs),
    /// Attribute every byte the top delta holds to the guest file that owns it (NTFS): per
    /// file (or directory, or extension), bytes per class; written-then-deleted clusters are
    /// "free now", NTFS metadata its own group.
    #[command(
        after_help = "Examples:\n  deltascope blame testdata/ntfs/blame/delta.vmdk\n  deltascope blame --by ext --top 10 clone-000001.vmdk\n  deltascope blame --json clone-000001.vmdk > blame.json\n\nGroups' bytes sum to the layer's allocated bytes (see docs/JSON.md, \"blame\")."
    )]
    Blame(BlameArgs),
    /// List the recorded history of one disk or all (scans saved with `scan --record`, imports).
    #[command(
        after_help = "Examples:\n  deltascope history --disk vdi-01\n  deltascope history --csv > history.csv\n  deltascope history --delete --disk vdi-01 --at 2026-10-12T08:00:00Z\n  deltascope history --rename /vmfs/volumes/ds1/vdi-01/vdi-01-000001.vmdk vdi-01"
    )]
    History(HistoryArgs),
    /// Import snapshot-size histories from CSV: RVTools vSnapshot, PowerCLI Get-Snapshot
    /// exports, or plain `timestamp,disk,bytes`.
    #[command(
        after_help = "Example:\n  deltascope import vSnapshot.csv --at 2026-11-20T08:00:00Z --date-order dmy --tz +01:00\n\nAccepted columns (header names, any case and spacing):\n  plain     timestamp, disk, bytes\n  PowerCLI  VM, Name, Created, SizeGB or SizeMB  (Get-VM | Get-Snapshot | Export-Csv)\n  RVTools   VM, Name, Date / time, Size MiB (total)  (vSnapshot sheet saved as CSV)"
    )]
    Import(ImportArgs),
    /// Project each disk's growth: linear and saturating fits, weekly projections with a band,
    /// and when it crosses 50 %, 80 %, 100 % of its ceiling and the budget.
    #[command(
        after_help = "Example:\n  deltascope forecast --disk vdi-01 --weeks 8 --budget 20GiB"
    )]
    Forecast(ForecastArgs),
    /// Chart a disk's growth: size over time with the projection, weekly growth by class.
    #[command(after_help = "Example:\n  deltascope chart --disk vdi-01 -o growth.png")]
    Chart(ChartArgs),
    /// Model VMFS metadata locking and capacity: lock events, busy fraction, conflict
    /// probability and VMs per LUN, on parameters alone or on scanned datastore folders.
    #[command(
        after_help = "Examples:\n  deltascope lun --vms 64 --growth-per-vm 2GiB --window 2m --increment 16MiB --hold 300us\n  deltascope lun /vmfs/volumes/ds1 --since 2026-11-01 --lun-size 2TiB --chart lun.png\n\nThe model and its assumptions: docs/MODEL.md."
    )]
    Lun(LunArgs),
    /// Write one self-contained HTML page to share: the chain and its classes, 4 KiB
    /// amplification, allocation order, growth history and forecast, blame's top files; for a
    /// datastore folder the disks, the per-LUN model and its sensitivity chart.
    #[command(
        after_help = "Examples:\n  deltascope report testdata/demo/win10-clone-000002.vmdk -o report.html\n  deltascope report clone-000001.vmdk --db history.sqlite --disk vdi-01 -o vdi-01.html\n  deltascope report /vmfs/volumes/ds1 --since 2026-11-01 --lun-size 2TiB -o ds1.html\n\nThe page needs no network: styles, the table-sorting script and the charts are inline.\nFor a folder, the page is written even when some disks cannot be scanned (they are listed),\nand the exit code is then 1."
    )]
    Report(ReportArgs),
    /// Print a shell completion script for bash, zsh, fish or powershell.
    #[command(
        after_help = "Examples:\n  deltascope completions bash > ~/.local/share/bash-completion/completions/deltascope\n  deltascope completions zsh > ~/.zfunc/_deltascope\n  deltascope completions fish > ~/.config/fish/completions/deltascope.fish"
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff) of deltascope or of one subcommand, generated from these
    /// definitions.
    #[command(
        after_help = "Examples:\n  deltascope man > deltascope.1 && man ./deltascope.1\n  deltascope man scan > deltascope-scan.1"
    )]
    Man(ManArgs),
}

/// `man` arguments.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (deltascope-SUBCOMMAND(1)) [default: deltascope(1)]
    #[arg(value_name = "SUBCOMMAND")]
    pub subcommand: Option<String>,
}

/// `completions` arguments.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `report` arguments.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The top layer's .vmdk, or a datastore folder (every disk in the tree, as one LUN)
    #[arg(value_name = "PATH|DIR")]
    pub path: PathBuf,
    /// The HTML file to write
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// The disk's name in the history store, for the growth section [default: the top
    /// layer's canonical path, as `scan --record` names it]
    #[arg(long)]
    pub disk: Option<String>,
    /// The history store (read only; the growth section is left out when it lacks the disk).
    #[command(flatten)]
    pub db: DbArgs,
    /// Weeks of projection in the growth section
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub weeks: u32,
    /// Blame groups listed (the rest are summed in one row)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,
    /// The LUN model, for a datastore folder.
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Where the history store is.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// History file [default: $DELTASCOPE_DB, else $XDG_DATA_HOME/deltascope/history.sqlite,
    /// else ~/.local/share/deltascope/history.sqlite]
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

/// `history` arguments.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The history store.
    #[command(flatten)]
    pub db: DbArgs,
    /// Only this disk [default: all]
    #[arg(long)]
    pub disk: Option<String>,
    /// Print JSON
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV
    #[arg(long)]
    pub csv: bool,
    /// Delete the point of --disk at --at (one transaction; the disk's points are printed
    /// before and after)
    #[arg(long, requires_all = ["disk", "at"], conflicts_with_all = ["json", "csv"])]
    pub delete: bool,
    /// The time of the point to delete, as `history` prints it
    #[arg(long, value_name = "TIME", requires = "delete")]
    pub at: Option<String>,
    /// Give every point of disk OLD to disk NEW (one transaction; printed before and after).
    /// NEW may have points already, at other times: the two series are merged
    #[arg(
        long,
        num_args = 2,
        value_names = ["OLD", "NEW"],
        conflicts_with_all = ["delete", "disk", "json", "csv"]
    )]
    pub rename: Option<Vec<String>>,
}

/// `import` arguments.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CSV file
    pub file: PathBuf,
    /// The history store.
    #[command(flatten)]
    pub db: DbArgs,
    /// When the export was taken (RVTools, PowerCLI) [default: the file's modification time]
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Whether dates written 1/11/2026 are day first (dmy: 1 November) or month first (mdy:
    /// 11 January) [default: the order a date in the file proves; refused when every date
    /// could be read both ways]
    #[arg(long, value_enum, value_name = "ORDER")]
    pub date_order: Option<crate::history::time::DateOrder>,
}

/// `forecast` arguments.
#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// The history store.
    #[command(flatten)]
    pub db: DbArgs,
    /// Only this disk [default: all]
    #[arg(long)]
    pub disk: Option<String>,
    /// Weeks to project past the last point
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub weeks: u32,
    /// A size budget to report the crossing of (20GiB is 20 x 2^30 bytes, 20GB 20 x 10^9;
    /// a bare 20G is refused)
    #[arg(long, value_name = "BYTES")]
    pub budget: Option<String>,
    /// Print JSON (docs/JSON.md)
    #[arg(long)]
    pub json: bool,
}

/// `chart` arguments.
#[derive(Debug, Args)]
pub struct ChartArgs {
    /// The history store.
    #[command(flatten)]
    pub db: DbArgs,
    /// The disk [default: the only one recorded]
    #[arg(long)]
    pub disk: Option<String>,
    /// Output file, .svg or .png
    #[arg(short, long, default_value = "growth.svg", value_name = "FILE")]
    pub output: PathBuf,
    /// Weeks of projection to draw
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub weeks: u32,
    /// A budget line (20GiB is 20 x 2^30 bytes, 20GB 20 x 10^9; a bare 20G is refused)
    #[arg(long, value_name = "BYTES")]
    pub budget: Option<String>,
}

/// `info` arguments.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The top layer's .vmdk (descriptor or monolithic sparse file)
    pub path: PathBuf,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// `map` arguments.
#[derive(Debug, Args)]
pub struct MapArgs {
    /// The top layer's .vmdk
    pub path: PathBuf,
    /// Which layer, counted from the base (0) as `info` numbers them [default: the top]
    #[arg(long, value_name = "N")]
    pub layer: Option<usize>,
}

/// `blame` arguments.
#[derive(Debug, Args)]
pub struct BlameArgs {
    /// The top layer's .vmdk (its parents are followed as for scan)
    pub path: PathBuf,
    /// Print JSON (every group)
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (every group, one row each)
    #[arg(long)]
    pub csv: bool,
    /// Groups shown in the text table (the rest are summed in one line)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,
    /// Group by file, by directory or by file name extension
    #[arg(long, value_enum, default_value_t = crate::blame::GroupBy::File)]
    pub by: crate::blame::GroupBy,
}

/// `scan` arguments.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The top layer's .vmdk; or datastore folders, each scanned as one LUN (every disk in
    /// the tree, in parallel)
    #[arg(required_unless_present = "lun", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// A LUN as NAME=DIR, for a datastore scan (repeat for several)
    #[arg(long, value_name = "NAME=DIR")]
    pub lun: Vec<String>,
    /// Print JSON (the contract in docs/JSON.md) instead of tables
    #[arg(long)]
    pub json: bool,
    /// Print CSV: one row per disk (datastore scans only)
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Save this scan's summary in the history store (every disk's, for a datastore)
    #[arg(long)]
    pub record: bool,
    /// The time to record the scan at, for back-filled scans (e.g. 2026-11-01T08:00:00Z; not
    /// in the future) [default: now]
    #[arg(long, value_name = "TIME", requires = "record")]
    pub at: Option<String>,
    /// The disk's name in the history [default: the top layer's canonical path]
    #[arg(long, requires = "record")]
    pub disk: Option<String>,
    /// The history store.
    #[command(flatten)]
    pub db: DbArgs,
    /// The LUN model, for datastore scans.
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Assumptions of the LUN model (docs/MODEL.md); every default is adjustable.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "LUN model (docs/MODEL.md)")]
pub struct ModelArgs {
    /// Growth of each VM's delta within --window: a burst such as a boot storm or an AV
    /// definition update (2GiB is 2 x 2^30 bytes, 2GB 2 x 10^9; a bare 2G is refused)
    #[arg(long, value_name = "BYTES", requires = "window")]
    pub growth_per_vm: Option<String>,
    /// The window of --growth-per-vm (e.g. 2m, 8h, 4w)
    #[arg(long, value_name = "DURATION", requires = "growth_per_vm")]
    pub window: Option<String>,
    /// The deltas were created (or refreshed) at this time: growth is their size now over
    /// the time since (datastore scans)
    #[arg(long, value_name = "TIME", conflicts_with = "growth_per_vm")]
    pub since: Option<String>,
    /// VMFS growth increment of a delta file [default: per format: vmfsSparse 16MiB,
    /// SESparse 1MiB; 16MiB for `lun` on parameters alone]
    #[arg(long, value_name = "BYTES")]
    pub increment: Option<String>,
    /// How long one lock holds the LUN under SCSI-2 (an assumption: no public figure)
    #[arg(long, value_name = "DURATION", default_value = "300us")]
    pub hold: String,
    /// How VMFS locks: scsi2 (reservations hold the whole LUN) or ats (VAAI, per sector)
    #[arg(long, value_enum, default_value = "scsi2")]
    pub locking: crate::lun::Locking,
    /// Busy-fraction target for the lock limit (share of time the LUN may be reserved)
    #[arg(long, value_name = "FRACTION", default_value_t = crate::lun::DEFAULT_MAX_BUSY)]
    pub max_busy: f64,
    /// LUN size, for the capacity limit (e.g. 2TiB)
    #[arg(long, value_name = "BYTES")]
    pub lun_size: Option<String>,
    /// Share of the LUN kept free, for the capacity limit
    #[arg(long, value_name = "FRACTION", default_value_t = crate::lun::DEFAULT_HEADROOM)]
    pub headroom: f64,
    /// Bytes one VM's delta reaches at its ceiling [default: the mean expected ceiling of
    /// the deltas scanned]
    #[arg(long, value_name = "BYTES")]
    pub ceiling_per_vm: Option<String>,
}

/// `lun` arguments.
#[derive(Debug, Args)]
pub struct LunArgs {
    /// Datastore folders, each scanned as one LUN [default: none: the model runs on the
    /// parameters alone]
    #[arg(value_name = "DIR", conflicts_with = "vms")]
    pub dirs: Vec<PathBuf>,
    /// A LUN as NAME=DIR (repeat for several)
    #[arg(long, value_name = "NAME=DIR", conflicts_with = "vms")]
    pub lun: Vec<String>,
    /// VMs on the LUN (parameters alone; a datastore scan counts them)
    #[arg(long, value_name = "N")]
    pub vms: Option<u64>,
    /// The model's assumptions.
    #[command(flatten)]
    pub model: ModelArgs,
    /// The history store, for growth measured over time.
    #[command(flatten)]
    pub db: DbArgs,
    /// Print JSON (docs/JSON.md)
    #[arg(long)]
    pub json: bool,
    /// Print CSV: one row per LUN
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Draw busy fraction against VMs per LUN for increments of 1, 8, 16 and 64 MiB (.svg or
    /// .png; one file per LUN, named FILE-LUN, when there are several)
    #[arg(long, value_name = "FILE")]
    pub chart: Option<PathBuf>,
    /// Draw busy fraction against VMs per LUN under SCSI-2 and under ATS (.svg or .png)
    #[arg(long, value_name = "FILE")]
    pub chart_locking: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
