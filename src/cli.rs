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
