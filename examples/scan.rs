//! Scans a chain through the library and prints what each layer's bytes are: the smallest
//! program built on deltascope as a crate. It needs only the engine, so it also builds with
//! `--no-default-features`.
//!
//!     cargo run --example scan -- testdata/demo/win10-clone-000002.vmdk

use std::process::ExitCode;

use deltascope::{Chain, ChainOptions, NoProgress, ScanOptions, scan_chain, scan_report};

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: scan TOP.vmdk");
        return ExitCode::from(2);
    };
    match run(path.as_ref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The message may quote names from the image: escape what could act on a
            // terminal, as the deltascope binary does.
            eprintln!("scan: {}", e.to_string().escape_debug());
            ExitCode::FAILURE
        }
    }
}

fn run(path: &std::path::Path) -> deltascope::Result<()> {
    let chain = Chain::open(path, &ChainOptions::default())?;
    for w in chain.all_warnings() {
        eprintln!("warning: {}", w.to_string().escape_debug());
    }
    // Classification runs on rayon's global pool here; the binary builds its own for
    // --threads. No layer cache: every layer is classified afresh.
    let report = scan_report(&scan_chain(
        &chain,
        &ScanOptions::full(false),
        &NoProgress,
        None,
    )?);
    println!(
        "{:<3} {:>14} {:>14} {:>14} {:>14} {:>14}  layer",
        "#", "allocated", "fresh", "overwritten", "identical", "zeroed"
    );
    for (i, l) in report.chain.iter().enumerate() {
        let c = &l.classes;
        println!(
            "{i:<3} {:>14} {:>14} {:>14} {:>14} {:>14}  {}",
            l.allocated_bytes,
            c.fresh,
            c.overwritten,
            c.identical,
            c.zeroed,
            l.path.escape_debug()
        );
    }
    if let Some(c) = &report.ceiling {
        println!(
            "top layer ceilings: hard {} bytes, expected {} bytes",
            c.hard_bytes, c.expected_bytes
        );
    }
    Ok(())
}
