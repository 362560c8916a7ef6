//! The `deltascope` binary: parse the command line, run it, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use deltascope::cli::Cli;
use deltascope::error::Error;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match deltascope::cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit_for(&e),
    }
}

/// 0 ok (a closed pipe on stdout included), 1 bad input or analysis error, 2 usage.
fn exit_for(e: &Error) -> ExitCode {
    if let Error::Io { source, .. } = e
        && source.kind() == std::io::ErrorKind::BrokenPipe
    {
        return ExitCode::SUCCESS;
    }
    eprintln!("deltascope: {e}");
    ExitCode::from(deltascope::cmd::exit_code(e))
}
