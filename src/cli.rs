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
    /// Treat warnings (parentCID mismatch, dirty SESparse journal, unclean shutdown,
    /// redundant grain directory mismatch) as errors
    #[arg(long, global = true)]
    pub strict: bool,
    /// Most layers followed down a chain before giving up
    #[arg(long, global = true, value_name = "N", default_value_t = crate::chain::DEFAULT_MAX_DEPTH)]
    pub max_depth: usize,
    /// Never draw a progress bar (one is drawn only when stderr is a terminal anyway)
    #[arg(long, global = true)]
    pub quiet: bool,
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
    /// identical, zeroed.
    #[command(
        after_help = "Example:\n  deltascope scan testdata/demo/win10-clone-000002.vmdk\n  deltascope scan --json testdata/demo/win10-clone-000002.vmdk > scan.json"
    )]
    Scan(ScanArgs),
    /// List the recorded history of one disk or all (scans saved with `scan --record`, imports).
    #[command(
        after_help = "Example:\n  deltascope history --disk vdi-01\n  deltascope history --csv > history.csv"
    )]
    History(HistoryArgs),
    /// Import snapshot-size histories from CSV: RVTools vSnapshot, PowerCLI Get-Snapshot
    /// exports, or plain `timestamp,disk,bytes`.
    #[command(
        after_help = "Example:\n  deltascope import vSnapshot.csv --at 2026-11-20T08:00:00Z\n\nAccepted columns (header names, any case and spacing):\n  plain     timestamp, disk, bytes\n  PowerCLI  VM, Name, Created, SizeGB or SizeMB  (Get-VM | Get-Snapshot | Export-Csv)\n  RVTools   VM, Name, Date / time, Size MiB (total)  (vSnapshot sheet saved as CSV)"
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
    /// A size budget to report the crossing of (e.g. 20GiB)
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
    /// A budget line (e.g. 20GiB)
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

/// `scan` arguments.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The top layer's .vmdk
    pub path: PathBuf,
    /// Print JSON (the contract in docs/JSON.md) instead of tables
    #[arg(long)]
    pub json: bool,
    /// Save this scan's summary in the history store
    #[arg(long)]
    pub record: bool,
    /// The time to record the scan at, for back-filled scans (e.g. 2026-11-01T08:00:00Z)
    /// [default: now]
    #[arg(long, value_name = "TIME", requires = "record")]
    pub at: Option<String>,
    /// The disk's name in the history [default: the top layer's canonical path]
    #[arg(long, requires = "record")]
    pub disk: Option<String>,
    /// The history store.
    #[command(flatten)]
    pub db: DbArgs,
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
