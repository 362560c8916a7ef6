//! Subcommands, stage two of the command line: the only place where CLI types meet engine
//! types. `cli.rs` has parsed and typed every value; each subcommand here turns its values
//! into the engine's options (chain options with `--map` rules checked against the file
//! system, a local rayon pool of `--threads`, the layer cache, the LUN model's parameters,
//! times read in `--tz`), refuses combinations clap cannot express, runs the engine, builds
//! a report and hands it to a renderer in the `--format` asked for ([`print`]). Warnings
//! reach stderr from here, never from the library.

mod bar;
mod blame;
mod chart;
mod datastore;
mod db;
mod diff;
mod history;
mod info;
mod lun;
mod man;
mod map;
mod report;
mod scan;

use std::io::{IsTerminal, Write};
use std::path::Path;

use crate::chain::{Chain, ChainOptions};
use crate::cli::{Cli, Command, GlobalArgs};
use crate::error::{Error, Result};
use crate::files::PathRules;
use crate::render::text::Terminal;
use crate::render::{Format, Printable};
use crate::source::ReadMode;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let g = &cli.options();
    match &cli.command {
        Command::Info(a) => info::run(g, a),
        Command::Map(a) => map::run(g, a),
        Command::Scan(a) => scan::run(g, a),
        Command::Blame(a) => blame::run(g, a),
        Command::History(a) => history::list(g, a),
        Command::Import(a) => history::import(g, a),
        Command::Forecast(a) => history::forecast(a),
        Command::Chart(a) => chart::run(a),
        Command::Diff(a) => diff::run(g, a),
        Command::Lun(a) => lun::run(g, a),
        Command::Report(a) => report::run(g, a),
        Command::Db(a) => db::run(a),
        Command::Completions(a) => {
            // clap_complete panics when its writer fails: it writes into memory, and the
            // script reaches stdout through `to_stdout`, whose errors are errors (exit 1 on
            // a full disk, a quiet end on a closed pipe).
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(a.shell, &mut cmd, "deltascope", &mut script);
            to_stdout(|w| w.write_all(&script))
        }
        Command::Man(a) => man::run(a.subcommand.as_deref()),
    }
}

/// How to open chains: read mode, depth, strictness, `--map` rules and the folders being
/// scanned (`roots`, where missing absolute parent hints are looked for).
fn chain_options(g: &GlobalArgs, roots: &[&Path]) -> Result<ChainOptions> {
    let mut maps = Vec::new();
    for m in &g.map {
        if !m.map.dir.is_dir() {
            return Err(Error::Usage(format!(
                "--map {:?}: {} is not a folder",
                m.spec,
                m.map.dir.display()
            )));
        }
        maps.push(m.map.clone());
    }
    Ok(ChainOptions {
        mode: if g.no_mmap {
            ReadMode::Read
        } else {
            ReadMode::Mmap
        },
        max_depth: g.max_depth,
        strict: g.strict,
        paths: PathRules {
            maps,
            roots: roots.iter().map(|r| r.to_path_buf()).collect(),
        },
        confine: g.confine,
    })
}

/// Opens the chain and prints its warnings to stderr.
fn open_chain(g: &GlobalArgs, path: &Path) -> Result<Chain> {
    let chain = Chain::open(path, &chain_options(g, &[])?)?;
    for w in chain.all_warnings() {
        note(format_args!("warning: {w}"));
    }
    Ok(chain)
}

/// One line on stderr, `deltascope: MESSAGE`, with every control character of the message
/// escaped (a folder name cannot clear the screen or fake a line). A stderr that cannot be
/// written is ignored: the line is a courtesy, and `eprintln!` would panic.
pub fn note(message: impl std::fmt::Display) {
    let line = crate::sanitize::sanitize(&message.to_string());
    let _ = writeln!(std::io::stderr().lock(), "deltascope: {line}");
}

/// A hint when the chain is one layer: a base (a replica, a template, a disk without
/// snapshots) given where a delta was probably meant. Its grains are classified against an
/// empty disk, so everything reads as fresh; a new user took that for growth (issue 17).
fn hint_if_base(chain: &Chain) {
    let [only] = chain.layers.as_slice() else {
        return;
    };
    let name = only.path.file_name().map_or_else(
        || only.path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    note(format_args!(
        "note: {name} has no parent: it is a base (or a disk without snapshots), so its \
         grains are compared with an empty disk; for what a clone or snapshot added, give its \
         delta, the top of its chain (a snapshot's NAME-000001.vmdk, a linked clone's own \
         .vmdk); `deltascope scan FOLDER` lists every disk of a folder with its role"
    ));
}

/// The cache of layers below the top, unless `--no-cache`, `--strict` (evidence mode: every
/// figure computed from the files of this run) or `DELTASCOPE_NO_CACHE` is set.
fn layer_cache(g: &GlobalArgs) -> Option<crate::cache::LayerCache> {
    if g.no_cache || g.strict || std::env::var_os("DELTASCOPE_NO_CACHE").is_some() {
        return None;
    }
    crate::cache::default_dir().map(crate::cache::LayerCache::new)
}

/// The disposable-disk rules: the file `--disposable-rules` names, or the built-in ones. A
/// file that cannot be read or holds a bad rule is a usage error naming it.
fn disposable_rules(file: Option<&Path>) -> Result<crate::verdict::DisposableRules> {
    let Some(file) = file else {
        return Ok(crate::verdict::DisposableRules::default());
    };
    let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, "read", e))?;
    crate::verdict::DisposableRules::parse(&text)
        .map_err(|e| Error::Usage(format!("--disposable-rules {}: {e}", file.display())))
}

/// A rayon pool of `--threads` workers (default: the cores).
fn pool(g: &GlobalArgs) -> Result<rayon::ThreadPool> {
    if g.threads == Some(0) {
        return Err(Error::Usage("--threads must be at least 1".into()));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(g.threads.unwrap_or(0))
        .build()
        .map_err(|e| Error::Other(format!("cannot start worker threads: {e}")))
}

/// Whether to draw progress bars.
fn show_progress(g: &GlobalArgs) -> bool {
    !g.quiet && std::io::stderr().is_terminal()
}

/// Prints a result to stdout in `format`: tables through the terminal writer, JSON and CSV
/// as they are. The one place where `--format` is looked at.
fn print(format: Format, result: &dyn Printable) -> Result<()> {
    match format {
        Format::Table => to_terminal(|w| result.table(w)),
        Format::Json => to_stdout(|w| result.json(w)),
        Format::Csv => to_stdout(|w| result.csv(w)),
    }
}

/// Writes text for people to stdout through `f`, through the sanitizing terminal writer
/// ([`Terminal`]): every table, list and forecast goes this way.
fn to_terminal(f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let colour = crate::render::text::colour_wanted(std::io::stdout().is_terminal());
    to_stdout(|w| {
        let mut t = Terminal::with_colour(w, colour);
        f(&mut t)?;
        t.flush()
    })
}

/// Writes data (JSON, CSV, scripts, roff) to stdout through `f`, unchanged; write errors (a
/// broken pipe included) become `Error::Io`.
fn to_stdout(f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let stdout = std::io::stdout();
    let mut lock = std::io::BufWriter::new(stdout.lock());
    f(&mut lock)
        .and_then(|_| lock.flush())
        .map_err(|e| Error::io(Path::new("<stdout>"), "write", e))
}

/// The exit code for an error: 2 for usage errors, 1 for everything else.
pub fn exit_code(e: &Error) -> u8 {
    if e.is_usage() { 2 } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_documented_table() {
        assert_eq!(exit_code(&Error::Usage("x".into())), 2);
        assert_eq!(exit_code(&Error::Other("x".into())), 1);
        let io = Error::io(Path::new("a"), "open", std::io::Error::other("no"));
        assert_eq!(exit_code(&io), 1);
    }
}
