//! The `deltascope` binary: parse the command line, run it, map the outcome to an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use deltascope::cli::Cli;
use deltascope::error::Error;
use deltascope::render::text::Terminal;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return parse_error(&e),
    };
    match deltascope::cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit_for(&e),
    }
}

/// A flag value our value parsers refused is a usage error in deltascope's words (`deltascope:
/// --budget: size "2G" is ambiguous: ...`, exit 2); everything else (unknown arguments,
/// `--help`, `--version`) clap prints and exits with itself.
fn parse_error(e: &clap::Error) -> ExitCode {
    match deltascope::cli::bad_value_line(e) {
        Some(line) => {
            let mut err = Terminal::new(std::io::stderr().lock());
            let _ = writeln!(err, "{line}").and_then(|()| err.flush());
            ExitCode::from(2)
        }
        None => e.exit(),
    }
}

/// 0 ok (a closed pipe on stdout included), 1 bad input or analysis error, 2 usage.
fn exit_for(e: &Error) -> ExitCode {
    if let Error::Io { source, .. } = e
        && source.kind() == std::io::ErrorKind::BrokenPipe
    {
        return ExitCode::SUCCESS;
    }
    // Through the terminal writer: messages quote names from images and imports. A stderr
    // that cannot be written changes nothing about the exit code (eprintln! would panic).
    let mut err = Terminal::new(std::io::stderr().lock());
    let _ = writeln!(err, "deltascope: {e}").and_then(|()| err.flush());
    ExitCode::from(deltascope::cmd::exit_code(e))
}
