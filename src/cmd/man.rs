//! `deltascope man`: the man page of deltascope or of one subcommand, from the clap
//! definitions (clap_mangen renders the title, synopsis, description and options) and from
//! what clap cannot say: exit status, examples kept line by line, the environment variables
//! a user may set and the files deltascope keeps.
//!
//! clap_mangen puts `after_help` in an EXTRA section as filled text, which reflows the
//! exit-code table and the examples into broken lines (issue 17); here each block of
//! `after_help` becomes its own section (EXAMPLES, EXIT STATUS, NOTES) in no-fill mode.

use crate::cli::{Cli, EXIT_CODES};
use crate::error::{Error, Result};

/// Environment variables a user may set, as the man page lists them (test-only hooks and
/// build-time values are left out).
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "DELTASCOPE_DB",
        "The history store when --db is not given: a SQLite file or a postgresql:// URL.",
    ),
    (
        "DELTASCOPE_SITE",
        "The site prefix of disk names when --site is not given (letters, digits, '.', '_', '-').",
    ),
    (
        "DELTASCOPE_CACHE",
        "The folder of the layer cache (instead of $XDG_CACHE_HOME/deltascope or ~/.cache/deltascope).",
    ),
    (
        "DELTASCOPE_NO_CACHE",
        "Set to anything: neither read nor write the layer cache, as --no-cache.",
    ),
    (
        "DELTASCOPE_FONT",
        "A TrueType font file for charts, tried before DejaVu Sans and Liberation Sans.",
    ),
    (
        "NO_COLOR",
        "Set and not empty: no colour in tables, even on a terminal (output that is not a terminal, or with TERM=dumb, has none anyway).",
    ),
    (
        "XDG_DATA_HOME, XDG_CACHE_HOME, HOME",
        "Where the default history store and the layer cache live (see FILES).",
    ),
    ("TZ", "The zone --tz local reads times in."),
    (
        "PGPASSWORD, PGPASSFILE, PGUSER, PGHOST, PGPORT, PGDATABASE, PGSSLMODE, PGSSLROOTCERT, PGSSLCERT, PGSSLKEY",
        "What a postgresql:// URL leaves out, read as libpq reads them (TLS: sslmode disable, allow, prefer (the default), require, verify-ca, verify-full; sslrootcert FILE or system; sslcert and sslkey, a client certificate and its unencrypted key).",
    ),
];

/// Files deltascope reads or writes besides its inputs and outputs.
pub const FILES: &[(&str, &str)] = &[
    (
        "$XDG_DATA_HOME/deltascope/history.sqlite, else ~/.local/share/deltascope/history.sqlite",
        "The history store, unless --db or DELTASCOPE_DB names another.",
    ),
    (
        "$XDG_CACHE_HOME/deltascope/, else ~/.cache/deltascope/",
        "The layer cache (mode 0700): classifications of layers below the top, keyed by each file's identity and metadata; never used under --strict or --no-cache.",
    ),
    (
        "~/.pgpass (or PGPASSFILE)",
        "Passwords of PostgreSQL stores, as for psql.",
    ),
    (
        "~/.postgresql/root.crt",
        "Trusted roots for a PostgreSQL server's certificate when the URL and PGSSLROOTCERT name none.",
    ),
    (
        "~/.postgresql/postgresql.crt, ~/.postgresql/postgresql.key",
        "The client certificate and its key (mode 0600) presented to a PostgreSQL server that asks for one, when the URL and PGSSLCERT name none.",
    ),
];

/// Prints the page of deltascope, or of the subcommand `sub` as deltascope-SUB(1).
pub(super) fn run(sub: Option<&str>) -> Result<()> {
    let top = <Cli as clap::CommandFactory>::command();
    let page = match sub {
        None => page(
            top.about("where did a VMware delta disk's growth go?"),
            true,
        ),
        Some(name) => {
            let Some(c) = top.find_subcommand(name) else {
                let names: Vec<&str> = top.get_subcommands().map(|c| c.get_name()).collect();
                return Err(Error::Usage(format!(
                    "no subcommand {name:?}; there are: {}",
                    names.join(", ")
                )));
            };
            // Version and the name as the top page's SUBCOMMANDS section refers to it; NAME
            // is one line, the about's first sentence (DESCRIPTION has all of it).
            let about = c.get_about().map(|a| first_sentence(&a.to_string()));
            let long = c.get_long_about().or(c.get_about()).cloned();
            let mut c = c
                .clone()
                .name(format!("deltascope-{name}"))
                .version(crate::report::VERSION);
            if let Some(l) = long {
                c = c.long_about(l);
            }
            if let Some(a) = about {
                c = c.about(a);
            }
            page(c, false)
        }
    };
    super::to_stdout(|w| w.write_all(page.as_bytes()))
}

/// The whole page in roff.
fn page(cmd: clap::Command, top: bool) -> String {
    let after = cmd
        .get_after_long_help()
        .or(cmd.get_after_help())
        .map(|a| a.to_string())
        .unwrap_or_default();
    let cmd = cmd.after_help(None::<&str>).after_long_help(None::<&str>);
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out: Vec<u8> = Vec::new();
    // Writing into memory cannot fail.
    let _ = man.render_title(&mut out);
    // No hyphenation, ragged right: names, paths and flags stay whole (as git's pages do).
    out.extend_from_slice(b".nh\n.ad l\n");
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        let _ = man.render_options_section(&mut out);
    }
    if cmd.has_subcommands() {
        let _ = man.render_subcommands_section(&mut out);
    }
    let mut s = String::from_utf8_lossy(&out).into_owned();
    let (mut examples, mut exit, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    for block in after.split("\n\n") {
        let head = block.lines().next().unwrap_or("");
        if head.starts_with("Example") {
            examples.push(block_body(block));
        } else if head == "Exit codes:" {
            exit.push(block_body(block));
        } else if head.starts_with("Exit codes") {
            exit.push(block.to_string());
        } else if !block.trim().is_empty() {
            notes.push(block.to_string());
        }
    }
    if exit.is_empty() {
        exit.push(block_body(EXIT_CODES));
    }
    // The order of man-pages(7).
    section(&mut s, "EXIT STATUS", &exit);
    if top {
        list(&mut s, "ENVIRONMENT", ENVIRONMENT);
        list(&mut s, "FILES", FILES);
    }
    section(&mut s, "NOTES", &notes);
    section(&mut s, "EXAMPLES", &examples);
    if !top {
        s.push_str(".SH \"SEE ALSO\"\n");
        text_line(
            &mut s,
            "deltascope(1), for the environment variables and files.",
        );
    }
    s.push_str(".SH VERSION\n");
    text_line(&mut s, &format!("deltascope {}", crate::report::VERSION));
    s
}

/// The lines of a block after its heading line ("Examples:"), unindented by two.
fn block_body(block: &str) -> String {
    block
        .lines()
        .skip(1)
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A section of blocks kept line by line (no filling, no hyphenation), indented.
fn section(s: &mut String, title: &str, blocks: &[String]) {
    if blocks.is_empty() {
        return;
    }
    s.push_str(&format!(".SH \"{title}\"\n"));
    for (i, b) in blocks.iter().enumerate() {
        if i > 0 {
            s.push_str(".PP\n");
        }
        s.push_str(".RS 2\n.nf\n");
        for line in b.lines() {
            text_line(s, line);
        }
        s.push_str(".fi\n.RE\n");
    }
}

/// A section of tagged paragraphs: the name in bold, what it is below.
fn list(s: &mut String, title: &str, items: &[(&str, &str)]) {
    s.push_str(&format!(".SH {title}\n"));
    for (name, what) in items {
        s.push_str(".TP\n");
        s.push_str(&format!("\\fB{}\\fR\n", escape(name)));
        text_line(s, what);
    }
}

/// One line of text, escaped for roff.
fn text_line(s: &mut String, line: &str) {
    let e = escape(line);
    // A line starting with '.' or '\'' would be read as a request.
    if e.starts_with('.') || e.starts_with('\'') {
        s.push_str("\\&");
    }
    s.push_str(&e);
    s.push('\n');
}

/// Backslashes and hyphen-minus escaped (a plain '-' may print as a hyphen, which breaks
/// commands copied from the page).
fn escape(t: &str) -> String {
    t.replace('\\', "\\e").replace('-', "\\-")
}

/// Up to the end of the first sentence (". " or the end), without its final period.
fn first_sentence(text: &str) -> String {
    let one = text.split(". ").next().unwrap_or(text);
    one.trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_keep_their_lines_and_escape_roff() {
        let mut s = String::new();
        section(
            &mut s,
            "EXAMPLES",
            &[block_body(
                "Examples:\n  deltascope scan a-000001.vmdk\n  .hidden \\x",
            )],
        );
        assert_eq!(
            s,
            ".SH \"EXAMPLES\"\n.RS 2\n.nf\ndeltascope scan a\\-000001.vmdk\n\\&.hidden \\ex\n.fi\n.RE\n"
        );
    }

    #[test]
    fn the_first_sentence_names_the_page() {
        assert_eq!(
            first_sentence("Classify every grain. Given folders, scan them."),
            "Classify every grain"
        );
        assert_eq!(first_sentence("Show each layer."), "Show each layer");
    }
}
