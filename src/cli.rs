//! The command line, stage one of two: clap derive types whose values arrive typed. Sizes,
//! durations, times, zones, fractions, `NAME=DIR` and `PREFIX=DIR` go through the value
//! parsers below, so a bad value is a usage error naming its flag (exit 2) before anything
//! runs; the choices of the engine (`--by`, `--locking`, `--date-order`) are CLI-side enums
//! mapped onto the engine's, which knows nothing of clap; every subcommand that prints takes
//! one `--format` (with `--json` and `--csv` kept as its short forms).
//!
//! Stage two is `cmd/`: it turns these values into the engine's options (chain options, a
//! thread pool, the LUN model's parameters, times read in `--tz`), checks what depends on
//! the file system or on other flags, runs, and hands the result to a renderer.

use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::builder::{ArgPredicate, OsStringValueParser, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::{Error, Result};
use crate::files::PathMap;
use crate::history::StoreSpec;
use crate::history::time::{DateOrder, Written, Zone};
use crate::render::Format;

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
    /// Options given before the subcommand (`deltascope --no-cache scan ...`): they apply
    /// to every subcommand that uses them.
    #[command(flatten)]
    pub global: TopArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How chains are opened and read, for every subcommand that reads disks.
///
/// These used to be clap `global` options, repeated in the help of every subcommand (the
/// history store's and `man`'s included, issue 17): now each subcommand flattens the groups
/// that apply to it, under one heading, and the top level takes them all so that
/// `deltascope --no-cache scan ...` still works.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Reading disks")]
pub struct ChainArgs {
    /// Read files with positioned reads instead of memory maps
    ///
    /// Same results; a file truncated during the run gives an I/O error instead of a SIGBUS
    #[arg(long)]
    pub no_mmap: bool,
    /// Evidence mode: warnings are errors; no layer cache
    ///
    /// Warnings (parentCID mismatch, dirty SESparse journal, unclean shutdown, redundant grain
    /// directory mismatch) are errors, and every figure is computed from the files of this run
    /// (the layer cache is neither read nor written)
    #[arg(long)]
    pub strict: bool,
    /// Most layers followed down a chain before giving up [default: 256]
    #[arg(long, value_name = "N")]
    pub max_depth: Option<usize>,
    /// Refuse any file of a chain outside the evidence tree
    ///
    /// The evidence tree is the top's folder, or the scanned folders; a file outside it (an
    /// absolute or `..` extent, a parent hint pointing elsewhere) is refused before it is
    /// opened. Without it such files are read with an `outside_tree` warning
    #[arg(long)]
    pub confine: bool,
    /// Read names beginning with PREFIX under DIR (ESXi paths; repeatable)
    ///
    /// Parent hints, extent names and .vmx disk names written on the ESXi host, e.g. --map
    /// /vmfs/volumes/5f3a1c2e-8a7b9c0d-1e2f-001122334455=/mnt/ds1 (repeat for several
    /// datastores). Without it, an absolute hint that does not exist here is looked for by
    /// its file name beside the child, then by its last two components under the folders
    /// scanned, with a parent_remapped warning
    #[arg(long, value_name = "PREFIX=DIR", value_parser = path_map)]
    pub map: Vec<MapArg>,
}

/// How the classification runs, for the subcommands that classify grains.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Reading disks")]
pub struct WorkArgs {
    /// Worker threads for classification [default: the number of cores]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Do not use or fill the cache of layers below the top
    ///
    /// Every layer is classified afresh. The cache is kept in $DELTASCOPE_CACHE,
    /// $XDG_CACHE_HOME/deltascope or ~/.cache/deltascope, keyed by the classification code,
    /// each file's path, device, inode, size and times, and each layer's metadata. --strict
    /// implies it
    #[arg(long)]
    pub no_cache: bool,
    /// Never draw a progress bar (one is drawn only when stderr is a terminal anyway)
    #[arg(long)]
    pub quiet: bool,
}

/// `--tz`, for the subcommands that read times.
#[derive(Debug, Args, Clone, Default)]
pub struct TzArgs {
    /// Zone of times written without one: UTC, local or +HH:MM [default: UTC]
    ///
    /// For `--at`, `--since` and imported CSV times: UTC, local (this machine's zone, from TZ)
    /// or an offset such as +01:00
    #[arg(long, value_name = "ZONE", allow_hyphen_values = true, value_parser = zone)]
    pub tz: Option<Zone>,
}

/// The options the top level takes before a subcommand: every group.
#[derive(Debug, Args, Clone, Default)]
pub struct TopArgs {
    /// Times (first: it has no heading of its own, so it stays under "Options").
    #[command(flatten)]
    pub tz: TzArgs,
    /// Opening chains.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Classifying.
    #[command(flatten)]
    pub work: WorkArgs,
}

/// The options in effect for a run: those given before the subcommand, overridden (values)
/// or added to (switches, `--map` rules) by those given after it.
#[derive(Debug, Clone)]
pub struct GlobalArgs {
    /// `--threads`.
    pub threads: Option<usize>,
    /// `--no-mmap`.
    pub no_mmap: bool,
    /// `--strict`.
    pub strict: bool,
    /// `--max-depth`, or its default.
    pub max_depth: usize,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--confine`.
    pub confine: bool,
    /// `--quiet`.
    pub quiet: bool,
    /// `--map` rules, those before the subcommand first.
    pub map: Vec<MapArg>,
    /// `--tz`.
    pub tz: Option<Zone>,
}

impl Cli {
    /// The options in effect for this run (see [`GlobalArgs`]).
    pub fn options(&self) -> GlobalArgs {
        let (chain, work, tz) = self.command.option_groups();
        let top = &self.global;
        let chain = chain.unwrap_or(&top.chain);
        let work = work.unwrap_or(&top.work);
        let tz = tz.unwrap_or(&top.tz);
        // A group the subcommand has is merged with the top level's; one it lacks is the
        // top level's alone (parsed, and unused by that subcommand).
        let mut map = top.chain.map.clone();
        if !std::ptr::eq(chain, &top.chain) {
            map.extend(chain.map.iter().cloned());
        }
        GlobalArgs {
            threads: work.threads.or(top.work.threads),
            no_mmap: chain.no_mmap || top.chain.no_mmap,
            strict: chain.strict || top.chain.strict,
            max_depth: chain
                .max_depth
                .or(top.chain.max_depth)
                .unwrap_or(crate::chain::DEFAULT_MAX_DEPTH),
            no_cache: work.no_cache || top.work.no_cache,
            confine: chain.confine || top.chain.confine,
            quiet: work.quiet || top.work.quiet,
            map,
            tz: tz.tz.or(top.tz.tz),
        }
    }
}

impl Command {
    /// The option groups this subcommand takes after its name.
    fn option_groups(&self) -> (Option<&ChainArgs>, Option<&WorkArgs>, Option<&TzArgs>) {
        match self {
            Command::Info(a) => (Some(&a.chain), None, None),
            Command::Map(a) => (Some(&a.chain), None, None),
            Command::Scan(a) => (Some(&a.chain), Some(&a.work), Some(&a.tz)),
            Command::Blame(a) => (Some(&a.chain), Some(&a.work), None),
            Command::Lun(a) => (Some(&a.chain), Some(&a.work), Some(&a.tz)),
            Command::Report(a) => (Some(&a.chain), Some(&a.work), Some(&a.tz)),
            Command::History(a) => (None, None, Some(&a.tz)),
            Command::Import(a) => (None, None, Some(&a.tz)),
            Command::Forecast(_)
            | Command::Chart(_)
            | Command::Db(_)
            | Command::Diff(_)
            | Command::Completions(_)
            | Command::Man(_) => (None, None, None),
        }
    }
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
        after_help = "Examples:\n  deltascope scan testdata/demo/win10-clone-000002.vmdk\n  deltascope scan --json testdata/demo/win10-clone-000002.vmdk > scan.json\n  deltascope scan --lun ds1=/vmfs/volumes/ds1 --lun ds2=/vmfs/volumes/ds2 --since 2026-11-01\n  deltascope scan /vmfs/volumes/ds1 --quiet --metrics /var/lib/node_exporter/deltascope-ds1.prom > /dev/null"
    )]
    Scan(ScanArgs),
    /// Attribute every byte the top delta holds to the guest file that owns it (NTFS): per
    /// file (or directory, or extension), bytes per class; written-then-deleted clusters are
    /// "free now", NTFS metadata its own group.
    #[command(
        after_help = "Examples:\n  gunzip -k testdata/ntfs/blame/base.vmdk.gz testdata/ntfs/blame/delta.vmdk.gz\n  deltascope blame testdata/ntfs/blame/delta.vmdk\n  deltascope blame --by ext --top 10 clone-000001.vmdk\n  deltascope blame --json clone-000001.vmdk > blame.json\n\nGroups' bytes sum to the layer's allocated bytes (see docs/JSON.md, \"blame\")."
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
    /// Compare two observations of one disk: two `scan --json` or `blame --json` files, or
    /// two points of its history; bytes grown per layer and class, per file (blame), per week.
    #[command(
        after_help = "Examples:\n  deltascope diff monday.json friday.json\n  deltascope diff old-blame.json new-blame.json --at 2026-11-02T08:00:00Z --at 2026-11-09T08:00:00Z\n  deltascope diff --disk vdi-01 --at 2026-11-02T08:00:00Z --at 2026-11-09T08:00:00Z --json\n\nWithout --at, the files' modification times are the times of the two scans."
    )]
    Diff(DiffArgs),
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
    /// Set up and check the history store, for the operator of a shared one: `db migrate`
    /// creates or upgrades its schema, `db check` says whether it is ready.
    #[command(
        after_help = "Examples:\n  deltascope db migrate --db postgresql://deltascope@db.example.net/estate\n  deltascope db check --db postgresql://deltascope@db.example.net/estate\n  deltascope db check --json\n\nExit codes of db check: 0 the store is ready (reachable, schema up to date); 1 it is not\n(cannot be reached or read, no store yet, migrations pending, or a newer schema); 2 usage.\nThe password comes from the URL, PGPASSWORD, or ~/.pgpass (PGPASSFILE) as for psql."
    )]
    Db(DbCommand),
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
    /// The site the disk's default name carries.
    #[command(flatten)]
    pub site: SiteArgs,
    /// Weeks of projection in the growth section
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub weeks: u32,
    /// Blame groups listed (the rest are summed in one row)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,
    /// Path rules of the disposable-disk remedy, one a line, instead of the built-in ones
    /// (as for scan)
    #[arg(long, value_name = "FILE")]
    pub disposable_rules: Option<PathBuf>,
    /// Reading times.
    #[command(flatten)]
    pub tz: TzArgs,
    /// The LUN model, for a datastore folder.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Opening chains.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Classifying.
    #[command(flatten)]
    pub work: WorkArgs,
}

/// Where the history store is.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// History store: a SQLite file or a postgresql:// URL
    ///
    /// A PostgreSQL database is postgresql://USER@HOST:PORT/DBNAME (the port may be left
    /// out; the password is best kept in ~/.pgpass or PGPASSWORD) [default: $DELTASCOPE_DB, else
    /// $XDG_DATA_HOME/deltascope/history.sqlite, else ~/.local/share/deltascope/history.sqlite]
    #[arg(long, value_name = "PATH|URL", value_parser = OsStringValueParser::new().try_map(store))]
    pub db: Option<StoreSpec>,
}

/// Which site's disks, in a store several hosts share.
#[derive(Debug, Args)]
pub struct SiteArgs {
    /// Prefix disk names with SITE: in a store several hosts share
    ///
    /// Names become SITE:/path/to/top.vmdk (for an import SITE:VM/snapshot), and recorded
    /// growth is read under those names, so that two hosts' identical paths stay two disks in
    /// a shared store. Letters, digits, '.', '_'
    /// and '-'; --disk names are taken as given [default: $DELTASCOPE_SITE, else no prefix]
    #[arg(long, value_name = "SITE", value_parser = site)]
    pub site: Option<String>,
}

/// `db` arguments.
#[derive(Debug, Args)]
pub struct DbCommand {
    /// What to do.
    #[command(subcommand)]
    pub action: DbAction,
}

/// `db` subcommands.
#[derive(Debug, Subcommand)]
pub enum DbAction {
    /// Create the store's schema, or bring it up to date (idempotent; one transaction; safe
    /// while scanners run)
    #[command(
        after_help = "Example:\n  deltascope db migrate --db postgresql://deltascope@db.example.net/estate\n\nA PostgreSQL database must exist (its owner creates it); a SQLite file is created."
    )]
    Migrate(DbMigrateArgs),
    /// Say whether the store is ready: reachable, schema version, points and disks, and what
    /// `db migrate` would do. Never creates or changes the store
    #[command(
        after_help = "Examples:\n  deltascope db check --db postgresql://deltascope@db.example.net/estate\n  deltascope db check --json\n\nExit codes: 0 ready; 1 not ready (cannot be reached or read, no store yet, migrations\npending, a newer schema); 2 usage error."
    )]
    Check(DbCheckArgs),
}

/// `db migrate` arguments.
#[derive(Debug, Args)]
pub struct DbMigrateArgs {
    /// The history store.
    #[command(flatten)]
    pub db: DbArgs,
}

/// `db check` arguments.
#[derive(Debug, Args)]
pub struct DbCheckArgs {
    /// The history store.
    #[command(flatten)]
    pub db: DbArgs,
    /// How to print what was found: a table or JSON (docs/JSON.md)
    #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = formats(TABLE_JSON),
        default_value_ifs = JSON_FLAG, conflicts_with = "json")]
    pub format: Format,
    /// Print JSON (docs/JSON.md; --format json)
    #[arg(long)]
    pub json: bool,
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
    /// How to print the points: a table, JSON or CSV
    #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = formats(TABLE_JSON_CSV),
        default_value_ifs = FORMAT_FLAGS, conflicts_with_all = ["json", "csv"])]
    pub format: Format,
    /// Print JSON (--format json)
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (--format csv)
    #[arg(long)]
    pub csv: bool,
    /// Delete the point of --disk at --at (one transaction; the disk's points are printed
    /// before and after)
    #[arg(long, requires_all = ["disk", "at"], conflicts_with_all = ["json", "csv", "format"])]
    pub delete: bool,
    /// The time of the point to delete, as `history` prints it
    #[arg(long, value_name = "TIME", requires = "delete", value_parser = time)]
    pub at: Option<TimeArg>,
    /// Give every point of disk OLD to disk NEW (one transaction; printed before and after).
    /// NEW may have points already, at other times: the two series are merged
    #[arg(
        long,
        num_args = 2,
        value_names = ["OLD", "NEW"],
        conflicts_with_all = ["delete", "disk", "json", "csv", "format"]
    )]
    pub rename: Option<Vec<String>>,
    /// Reading times.
    #[command(flatten)]
    pub tz: TzArgs,
}

/// `import` arguments.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CSV file
    pub file: PathBuf,
    /// The history store.
    #[command(flatten)]
    pub db: DbArgs,
    /// The site every imported disk name is prefixed with.
    #[command(flatten)]
    pub site: SiteArgs,
    /// When the export was taken (RVTools, PowerCLI) [default: the file's modification time]
    #[arg(long, value_name = "TIME", value_parser = time)]
    pub at: Option<TimeArg>,
    /// Whether dates written 1/11/2026 are day first (dmy: 1 November) or month first (mdy:
    /// 11 January) [default: the order a date in the file proves; refused when every date
    /// could be read both ways]
    #[arg(long, value_enum, value_name = "ORDER")]
    pub date_order: Option<DateOrderArg>,
    /// Reading times.
    #[command(flatten)]
    pub tz: TzArgs,
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
    #[arg(long, value_name = "BYTES", value_parser = size)]
    pub budget: Option<u64>,
    /// How to print the projections: a table or JSON (docs/JSON.md)
    #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = formats(TABLE_JSON),
        default_value_ifs = JSON_FLAG, conflicts_with = "json")]
    pub format: Format,
    /// Print JSON (--format json)
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
    #[arg(long, value_name = "BYTES", value_parser = size)]
    pub budget: Option<u64>,
}

/// `diff` arguments.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The older observation: a `scan --json` (one disk) or `blame --json` file
    #[arg(value_name = "OLD", required_unless_present = "disk", requires = "new")]
    pub old: Option<PathBuf>,
    /// The newer observation, of the same disk
    #[arg(value_name = "NEW")]
    pub new: Option<PathBuf>,
    /// Compare two points of this disk's history instead (with two --at)
    #[arg(long, conflicts_with_all = ["old", "new"], requires = "at")]
    pub disk: Option<String>,
    /// The times of OLD and NEW, older first (give it twice); with --disk, the two points
    /// [default for files: their modification times]
    #[arg(long, value_name = "TIME", value_parser = time)]
    pub at: Vec<TimeArg>,
    /// The history store (with --disk).
    #[command(flatten)]
    pub db: DbArgs,
    /// How to print the changes: a table or JSON (docs/JSON.md)
    #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = formats(TABLE_JSON),
        default_value_ifs = JSON_FLAG, conflicts_with = "json")]
    pub format: Format,
    /// Print JSON (--format json)
    #[arg(long)]
    pub json: bool,
}

/// `info` arguments.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The top layer's .vmdk (descriptor or monolithic sparse file)
    pub path: PathBuf,
    /// How to print the layers: a table or JSON
    #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = formats(TABLE_JSON),
        default_value_ifs = JSON_FLAG, conflicts_with = "json")]
    pub format: Format,
    /// Print JSON instead of text (--format json)
    #[arg(long)]
    pub json: bool,
    /// Opening chains.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// `map` arguments.
#[derive(Debug, Args)]
pub struct MapArgs {
    /// The top layer's .vmdk
    pub path: PathBuf,
    /// Which layer, counted from the base (0) as `info` numbers them [default: the top]
    #[arg(long, value_name = "N")]
    pub layer: Option<usize>,
    /// Opening chains.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// `blame` arguments.
#[derive(Debug, Args)]
pub struct BlameArgs {
    /// The top layer's .vmdk (its parents are followed as for scan)
    pub path: PathBuf,
    /// How to print the groups: a table (the top ones), JSON or CSV (every group)
    #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = formats(TABLE_JSON_CSV),
        default_value_ifs = FORMAT_FLAGS, conflicts_with_all = ["json", "csv"])]
    pub format: Format,
    /// Print JSON (every group; --format json)
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (every group, one row each; --format csv)
    #[arg(long)]
    pub csv: bool,
    /// Groups shown in the text table (the rest are summed in one line)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,
    /// Group by file, by directory or by file name extension
    #[arg(long, value_enum, default_value_t = GroupByArg::File)]
    pub by: GroupByArg,
    /// Opening chains.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Classifying.
    #[command(flatten)]
    pub work: WorkArgs,
}

/// `scan` arguments.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The top layer's .vmdk, or datastore folders (one LUN each)
    ///
    /// A datastore folder is scanned as one LUN: every disk in its tree, in parallel
    #[arg(required_unless_present = "lun", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// A LUN as NAME=DIR, for a datastore scan (repeat for several)
    #[arg(long, value_name = "NAME=DIR", value_parser = lun_spec)]
    pub lun: Vec<LunSpec>,
    /// How to print: tables, JSON or CSV
    ///
    /// JSON is the contract in docs/JSON.md; CSV is one row per disk (datastore scans only)
    #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = formats(TABLE_JSON_CSV),
        default_value_ifs = FORMAT_FLAGS, conflicts_with_all = ["json", "csv"])]
    pub format: Format,
    /// Print JSON (the contract in docs/JSON.md) instead of tables (--format json)
    #[arg(long)]
    pub json: bool,
    /// Print CSV: one row per disk (datastore scans only; --format csv)
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Also write Prometheus metrics to FILE (datastore scans)
    ///
    /// The text format node_exporter's textfile collector reads (e.g. FILE.prom in its
    /// folder), written to a temporary file and renamed, so the collector never reads half of
    /// one; docs/JSON.md lists the metrics
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Save this scan's summary in the history store (every disk's, for a datastore)
    #[arg(long)]
    pub record: bool,
    /// The time to record the scan at [default: now]
    ///
    /// For back-filled scans, e.g. 2026-11-01T08:00:00Z; not in the future
    #[arg(long, value_name = "TIME", requires = "record", value_parser = time)]
    pub at: Option<TimeArg>,
    /// The disk's name in the history [default: the top's canonical path]
    ///
    /// The name to record it under and to read its growth rate for the verdict
    #[arg(long)]
    pub disk: Option<String>,
    /// The history store (read for the verdict's weeks to the ceiling when it exists; written
    /// with --record).
    #[command(flatten)]
    pub db: DbArgs,
    /// The site recorded disk names carry.
    #[command(flatten)]
    pub site: SiteArgs,
    /// Path rules of the disposable-disk remedy instead of the built-in ones
    ///
    /// One rule a line. The built-in ones take page, hibernation and swap files, temporary
    /// folders and browser caches (docs/GUIDE.md)
    #[arg(long, value_name = "FILE")]
    pub disposable_rules: Option<PathBuf>,
    /// Do not read the guest's files (NTFS)
    ///
    /// No causes by file, no base free space, and the remedies that need them are null
    /// (docs/PERFORMANCE.md gives the cost)
    #[arg(long)]
    pub no_guest: bool,
    /// Reading times.
    #[command(flatten)]
    pub tz: TzArgs,
    /// The LUN model, for datastore scans.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Opening chains.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Classifying.
    #[command(flatten)]
    pub work: WorkArgs,
}

/// Assumptions of the LUN model (docs/MODEL.md); every default is adjustable.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "LUN model (docs/MODEL.md)")]
pub struct ModelArgs {
    /// Growth of each VM's delta within --window (a burst)
    ///
    /// A burst such as a boot storm or an AV definition update (2GiB is 2 x 2^30 bytes, 2GB
    /// 2 x 10^9; a bare 2G is refused)
    #[arg(long, value_name = "BYTES", requires = "window", value_parser = size)]
    pub growth_per_vm: Option<u64>,
    /// The window of --growth-per-vm (e.g. 2m, 8h, 4w)
    #[arg(long, value_name = "DURATION", requires = "growth_per_vm", value_parser = duration)]
    pub window: Option<f64>,
    /// When the deltas were created or refreshed: growth since then
    ///
    /// Growth is each delta's size now over the time since (datastore scans)
    #[arg(long, value_name = "TIME", conflicts_with = "growth_per_vm", value_parser = time)]
    pub since: Option<TimeArg>,
    /// VMFS growth increment of a delta file [default: per format]
    ///
    /// Per format by default: vmfsSparse 16MiB, SESparse 1MiB; 16MiB for `lun` on
    /// parameters alone
    #[arg(long, value_name = "BYTES", value_parser = nonzero_size)]
    pub increment: Option<u64>,
    /// How long one lock holds the LUN under SCSI-2
    ///
    /// An assumption: there is no public figure
    #[arg(long, value_name = "DURATION", default_value = "300us", value_parser = duration)]
    pub hold: f64,
    /// How VMFS locks: scsi2 or ats
    ///
    /// scsi2: reservations hold the whole LUN; ats: VAAI, per sector
    #[arg(long, value_enum, default_value = "scsi2")]
    pub locking: LockingArg,
    /// Busy-fraction target for the lock limit
    ///
    /// The share of time the LUN may be reserved
    #[arg(long, value_name = "FRACTION", default_value_t = crate::lun::DEFAULT_MAX_BUSY,
        value_parser = busy_fraction)]
    pub max_busy: f64,
    /// LUN size, for the capacity limit (e.g. 2TiB)
    #[arg(long, value_name = "BYTES", value_parser = size)]
    pub lun_size: Option<u64>,
    /// Share of the LUN kept free, for the capacity limit
    #[arg(long, value_name = "FRACTION", default_value_t = crate::lun::DEFAULT_HEADROOM,
        value_parser = headroom)]
    pub headroom: f64,
    /// Bytes one VM's delta reaches at its ceiling [default: from the scan]
    ///
    /// By default the mean expected ceiling of the deltas scanned
    #[arg(long, value_name = "BYTES", value_parser = nonzero_size)]
    pub ceiling_per_vm: Option<u64>,
    /// Size each delta should stay under: refresh intervals
    ///
    /// Each disk's refresh interval comes from its forecast (history; 20GiB is 20 x 2^30
    /// bytes, 20GB 20 x 10^9)
    #[arg(long, value_name = "BYTES", value_parser = nonzero_size)]
    pub budget: Option<u64>,
}

/// `lun` arguments.
#[derive(Debug, Args)]
pub struct LunArgs {
    /// Datastore folders, each scanned as one LUN [default: none: the model runs on the
    /// parameters alone]
    #[arg(value_name = "DIR", conflicts_with = "vms")]
    pub dirs: Vec<PathBuf>,
    /// A LUN as NAME=DIR (repeat for several)
    #[arg(long, value_name = "NAME=DIR", conflicts_with = "vms", value_parser = lun_spec)]
    pub lun: Vec<LunSpec>,
    /// VMs on the LUN (parameters alone; a datastore scan counts them)
    #[arg(long, value_name = "N")]
    pub vms: Option<u64>,
    /// Reading times.
    #[command(flatten)]
    pub tz: TzArgs,
    /// The model's assumptions.
    #[command(flatten)]
    pub model: ModelArgs,
    /// The history store, for growth measured over time.
    #[command(flatten)]
    pub db: DbArgs,
    /// The site whose recorded growth to read.
    #[command(flatten)]
    pub site: SiteArgs,
    /// How to print the model: a table, JSON (docs/JSON.md) or CSV (one row per LUN)
    #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = formats(TABLE_JSON_CSV),
        default_value_ifs = FORMAT_FLAGS, conflicts_with_all = ["json", "csv"])]
    pub format: Format,
    /// Print JSON (docs/JSON.md; --format json)
    #[arg(long)]
    pub json: bool,
    /// Print CSV: one row per LUN (--format csv)
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Draw busy fraction against VMs per LUN for increments of 1, 8, 16 and 64 MiB (.svg or
    /// .png; one file per LUN, named FILE-LUN, when there are several)
    #[arg(long, value_name = "FILE")]
    pub chart: Option<PathBuf>,
    /// Draw busy fraction against VMs per LUN under SCSI-2 and under ATS (.svg or .png)
    #[arg(long, value_name = "FILE")]
    pub chart_locking: Option<PathBuf>,
    /// Opening chains.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Classifying.
    #[command(flatten)]
    pub work: WorkArgs,
}

// ---- output formats ------------------------------------------------------------------------

/// The formats of subcommands that print tables, JSON and CSV.
const TABLE_JSON_CSV: &[&str] = &["table", "json", "csv"];
/// The formats of subcommands without a CSV form.
const TABLE_JSON: &[&str] = &["table", "json"];

/// `--json` and `--csv` are short for `--format json` and `--format csv`: given, they choose
/// the default of `--format` (and conflict with an explicit one).
const FORMAT_FLAGS: [(&str, ArgPredicate, Option<&str>); 2] = [
    ("json", ArgPredicate::IsPresent, Some("json")),
    ("csv", ArgPredicate::IsPresent, Some("csv")),
];
/// The same for subcommands without a CSV form: `--json` only.
const JSON_FLAG: [(&str, ArgPredicate, Option<&str>); 1] =
    [("json", ArgPredicate::IsPresent, Some("json"))];

/// `--format`, offering `names` (a subset of table, json, csv).
fn formats(names: &'static [&'static str]) -> impl TypedValueParser<Value = Format> {
    PossibleValuesParser::new(names).map(|name| match name.as_str() {
        "json" => Format::Json,
        "csv" => Format::Csv,
        _ => Format::Table,
    })
}

// ---- CLI-side enums, mapped onto the engine's -----------------------------------------------

/// `blame --by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupByArg {
    /// One group per file (or stream, or directory index).
    File,
    /// One group per directory holding the files.
    Dir,
    /// One group per file name extension.
    Ext,
}

impl From<GroupByArg> for crate::blame::GroupBy {
    fn from(a: GroupByArg) -> Self {
        match a {
            GroupByArg::File => crate::blame::GroupBy::File,
            GroupByArg::Dir => crate::blame::GroupBy::Dir,
            GroupByArg::Ext => crate::blame::GroupBy::Ext,
        }
    }
}

/// `--locking`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LockingArg {
    /// SCSI-2 reservations: every lock reserves the whole LUN for every host.
    Scsi2,
    /// ATS (VAAI compare-and-write): a lock is one sector; other VMs are not held up.
    Ats,
}

impl From<LockingArg> for crate::lun::Locking {
    fn from(a: LockingArg) -> Self {
        match a {
            LockingArg::Scsi2 => crate::lun::Locking::Scsi2,
            LockingArg::Ats => crate::lun::Locking::Ats,
        }
    }
}

/// `import --date-order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DateOrderArg {
    /// Day, month, year: `1/11/2026` is 1 November 2026.
    Dmy,
    /// Month, day, year (US): `1/11/2026` is 11 January 2026.
    Mdy,
}

impl From<DateOrderArg> for DateOrder {
    fn from(a: DateOrderArg) -> Self {
        match a {
            DateOrderArg::Dmy => DateOrder::Dmy,
            DateOrderArg::Mdy => DateOrder::Mdy,
        }
    }
}

// ---- value parsers ------------------------------------------------------------------------

/// A flag value that does not parse. `main` prints it as `deltascope: FLAG` followed by
/// [`BadValue::tail`], the way every usage error of deltascope reads, and exits 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue {
    /// What separates the flag from the message (`": "` or `" "`).
    sep: &'static str,
    /// What is wrong, without the flag.
    message: String,
}

impl BadValue {
    fn new(sep: &'static str, message: impl Into<String>) -> BadValue {
        BadValue {
            sep,
            message: message.into(),
        }
    }

    /// The error line after the flag's name, e.g. `: size "2G" is ambiguous: ...`.
    pub fn tail(&self) -> String {
        format!("{}{}", self.sep, self.message)
    }
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BadValue {}

/// A size such as `2GiB` or `2GB` in bytes (a bare `2G` is refused: it could be either).
fn size(text: &str) -> std::result::Result<u64, BadValue> {
    crate::units::parse_size(text).map_err(|e| BadValue::new(": ", e))
}

/// A size of at least one byte.
fn nonzero_size(text: &str) -> std::result::Result<u64, BadValue> {
    match size(text)? {
        0 => Err(BadValue::new(" ", "must be more than 0")),
        n => Ok(n),
    }
}

/// A duration such as `300us`, `2m` or `4w`, longer than zero, in seconds.
fn duration(text: &str) -> std::result::Result<f64, BadValue> {
    let s = crate::units::parse_duration(text).map_err(|e| BadValue::new(": ", e))?;
    if s <= 0.0 {
        return Err(BadValue::new(" ", "must be longer than 0"));
    }
    Ok(s)
}

/// `--max-busy`: above 0, at most 1.
fn busy_fraction(text: &str) -> std::result::Result<f64, BadValue> {
    match text.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(BadValue::new(
            " ",
            format!("{text}: expected a fraction above 0 and at most 1 (0.01 = 1 % of the time)"),
        )),
    }
}

/// `--headroom`: from 0 up to, not including, 1.
fn headroom(text: &str) -> std::result::Result<f64, BadValue> {
    match text.trim().parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(BadValue::new(
            " ",
            format!("{text}: expected a fraction from 0 up to (not including) 1"),
        )),
    }
}

/// `--tz`: UTC, local or a fixed offset.
fn zone(text: &str) -> std::result::Result<Zone, BadValue> {
    Zone::parse(text).map_err(|e| BadValue::new(": ", e))
}

/// A time as typed: RFC 3339, or a date and time without a zone, which stage two reads in
/// `--tz` ([`TimeArg::resolve`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeArg {
    /// The text as typed, for messages.
    pub text: String,
    written: Written,
}

impl TimeArg {
    /// The instant, reading a time without a zone in `zone`; `flag` names the flag in the
    /// error of a local time that does not exist (or exists twice) in that zone.
    pub fn resolve(&self, flag: &str, zone: Zone) -> Result<DateTime<Utc>> {
        self.written
            .resolve(DateOrder::Dmy, zone)
            .map_err(|e| Error::Usage(format!("{flag} {e}")))
    }
}

/// A time flag's value. Slash dates are refused: on the command line nothing tells their
/// order (the message is `history::time::parse_arg`'s).
fn time(text: &str) -> std::result::Result<TimeArg, BadValue> {
    match Written::parse(text) {
        Some(Written::Slash { .. }) | None => Err(BadValue::new(
            " ",
            crate::history::time::parse_arg(text, Zone::Utc)
                .err()
                .unwrap_or_default(),
        )),
        Some(written) => Ok(TimeArg {
            text: text.to_string(),
            written,
        }),
    }
}

/// `--db`: a SQLite file, or a PostgreSQL URL read for its syntax (a malformed one is quoted
/// without its password); stage two fills in a URL's defaults from the environment.
fn store(text: std::ffi::OsString) -> std::result::Result<StoreSpec, BadValue> {
    StoreSpec::parse(&text).map_err(|e| BadValue::new(": ", e))
}

/// `--site`: letters, digits, '.', '_' and '-' ([`crate::history::check_site`]).
fn site(text: &str) -> std::result::Result<String, BadValue> {
    crate::history::check_site(text)
        .map(|()| text.to_string())
        .map_err(|e| BadValue::new(" ", e))
}

/// `--lun NAME=DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LunSpec {
    /// The LUN's name.
    pub name: String,
    /// Its folder.
    pub dir: PathBuf,
}

fn lun_spec(text: &str) -> std::result::Result<LunSpec, BadValue> {
    match text
        .split_once('=')
        .filter(|(n, d)| !n.is_empty() && !d.is_empty())
    {
        Some((name, dir)) => Ok(LunSpec {
            name: name.to_string(),
            dir: PathBuf::from(dir),
        }),
        None => Err(BadValue::new(
            " ",
            format!("{text:?}: expected NAME=DIR, such as ds1=/vmfs/volumes/ds1"),
        )),
    }
}

/// `--map PREFIX=DIR`, parsed; whether DIR is a folder is checked when a chain is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapArg {
    /// The text as typed, for messages.
    pub spec: String,
    /// The rule.
    pub map: PathMap,
}

fn path_map(text: &str) -> std::result::Result<MapArg, BadValue> {
    PathMap::parse(text)
        .map(|map| MapArg {
            spec: text.to_string(),
            map,
        })
        .map_err(|e| BadValue::new(" ", e))
}

/// The line `main` prints for a clap error caused by one of the value parsers above
/// (`deltascope: --budget: size "2G" is ambiguous: ...`); `None` for clap's own errors,
/// which clap prints itself.
pub fn bad_value_line(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let bad = std::error::Error::source(e)?.downcast_ref::<BadValue>()?;
    let flag = match e.get(ContextKind::InvalidArg)? {
        ContextValue::String(s) => s.split(' ').next().unwrap_or(s).to_string(),
        _ => return None,
    };
    Some(format!("deltascope: {flag}{}", bad.tail()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> std::result::Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("deltascope").chain(args.iter().copied()))
    }

    fn format_of(args: &[&str]) -> Format {
        match parse(args).expect("parses").command {
            Command::Scan(a) => a.format,
            Command::Info(a) => a.format,
            Command::Db(DbCommand {
                action: DbAction::Check(a),
            }) => a.format,
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn options_before_and_after_the_subcommand_merge() {
        let o = parse(&[
            "--map",
            "/a=/x",
            "--threads",
            "2",
            "scan",
            "--map",
            "/b=/y",
            "--threads",
            "3",
            "--max-depth",
            "9",
            "--strict",
            "x.vmdk",
        ])
        .expect("parses")
        .options();
        assert_eq!(o.map.len(), 2);
        assert_eq!((o.threads, o.max_depth, o.strict), (Some(3), 9, true));
        assert!(!o.no_mmap && !o.quiet && !o.no_cache && !o.confine);
        let o = parse(&["--strict", "--tz", "+01:00", "history"])
            .expect("parses")
            .options();
        assert!(o.strict && o.tz.is_some());
        let o = parse(&["info", "--no-mmap", "x.vmdk"])
            .expect("parses")
            .options();
        assert_eq!(o.max_depth, crate::chain::DEFAULT_MAX_DEPTH);
        assert!(o.no_mmap && o.threads.is_none());
        assert!(parse(&["man", "--quiet"]).is_err());
        assert!(parse(&["import", "--tz", "local", "f.csv"]).is_ok());
    }

    #[test]
    fn json_and_csv_are_short_for_format() {
        assert_eq!(format_of(&["scan", "x.vmdk"]), Format::Table);
        assert_eq!(format_of(&["scan", "--json", "x.vmdk"]), Format::Json);
        assert_eq!(format_of(&["scan", "--csv", "d"]), Format::Csv);
        assert_eq!(format_of(&["scan", "--format", "csv", "d"]), Format::Csv);
        assert_eq!(format_of(&["info", "--json", "x.vmdk"]), Format::Json);
        assert_eq!(format_of(&["db", "check"]), Format::Table);
        assert_eq!(format_of(&["db", "check", "--json"]), Format::Json);
        assert!(parse(&["db", "check", "--format", "csv"]).is_err());
        assert!(parse(&["scan", "--json", "--format", "table", "x.vmdk"]).is_err());
        assert!(parse(&["scan", "--json", "--csv", "x.vmdk"]).is_err());
        // A subcommand refuses a format it cannot print.
        assert!(parse(&["info", "--format", "csv", "x.vmdk"]).is_err());
        assert!(parse(&["info", "--csv", "x.vmdk"]).is_err());
    }

    #[test]
    fn bad_values_are_usage_errors_naming_the_flag() {
        for (args, line) in [
            (
                &["forecast", "--budget", "2G"][..],
                "deltascope: --budget: size \"2G\" is ambiguous: write 2GiB for 2 x 2^30 bytes or 2GB for 2 x 10^9 bytes",
            ),
            (
                &[
                    "lun",
                    "--vms",
                    "1",
                    "--growth-per-vm",
                    "1GiB",
                    "--window",
                    "1h",
                    "--increment",
                    "0",
                ][..],
                "deltascope: --increment must be more than 0",
            ),
            (
                &[
                    "lun",
                    "--vms",
                    "1",
                    "--growth-per-vm",
                    "1GiB",
                    "--window",
                    "0s",
                ][..],
                "deltascope: --window must be longer than 0",
            ),
            (
                &["lun", "--vms", "1", "--max-busy", "2"][..],
                "deltascope: --max-busy 2: expected a fraction above 0 and at most 1 (0.01 = 1 % of the time)",
            ),
            (
                &["scan", "--lun", "nodir"][..],
                "deltascope: --lun \"nodir\": expected NAME=DIR, such as ds1=/vmfs/volumes/ds1",
            ),
        ] {
            let e = parse(args).expect_err("refused");
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert_eq!(bad_value_line(&e).as_deref(), Some(line), "{args:?}");
        }
        // A site that could be part of a path, and a URL that does not parse (quoted
        // without its password).
        let e = parse(&["scan", "--site", "paris/2", "x.vmdk"]).expect_err("refused");
        assert_eq!(
            bad_value_line(&e).as_deref(),
            Some(
                "deltascope: --site \"paris/2\": a site is named with letters, digits, '.', '_' and '-' (such as paris or dc-2)"
            )
        );
        let e =
            parse(&["history", "--db", "postgresql://u:s3cret@db:port/x"]).expect_err("refused");
        let line = bad_value_line(&e).expect("ours");
        assert!(
            line.starts_with(
                "deltascope: --db: postgresql://u:***@db:port/x: not a PostgreSQL URL"
            ),
            "{line}"
        );
        assert!(!line.contains("s3cret"), "{line}");
        let e = parse(&["scan", "--at", "1/2/2026", "--record", "x.vmdk"]).expect_err("refused");
        let line = bad_value_line(&e).expect("ours");
        assert!(
            line.starts_with("deltascope: --at \"1/2/2026\": expected a time"),
            "{line}"
        );
        // clap's own errors stay clap's.
        let e = parse(&["scan", "--threads", "lots", "x.vmdk"]).expect_err("refused");
        assert_eq!(bad_value_line(&e), None);
    }

    #[test]
    fn engine_choices_map_one_to_one() {
        use crate::blame::GroupBy;
        use crate::lun::Locking;
        assert_eq!(GroupBy::from(GroupByArg::Dir), GroupBy::Dir);
        assert_eq!(Locking::from(LockingArg::Ats), Locking::Ats);
        assert_eq!(DateOrder::from(DateOrderArg::Mdy), DateOrder::Mdy);
        for (a, e) in [
            (LockingArg::Scsi2, Locking::Scsi2),
            (LockingArg::Ats, Locking::Ats),
        ] {
            let name = a
                .to_possible_value()
                .expect("visible")
                .get_name()
                .to_string();
            assert_eq!(name, e.name());
        }
    }
}
