//! The module graph, kept honest: every `crate::` path in `src/` (outside comments) is an
//! edge from the module whose file it is in to the module it names, and an edge may only go
//! down the floors below. A new module must be given a floor here; a new edge that goes up or
//! sideways fails with the file and line that made it. docs/ARCHITECTURE.md draws the same
//! floors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Floors, bottom first. A module may import modules on lower floors only; modules on one
/// floor know nothing of each other.
const FLOORS: &[(&str, &[&str])] = &[
    // Words: escaping for terminals, sizes and times, the progress callback.
    ("words", &["sanitize", "units", "progress"]),
    // Pure models: numbers in, numbers out.
    ("models", &["lun"]),
    ("errors", &["error"]),
    ("checked reads", &["bytes"]),
    // Files: read-only maps and reads, the one output rule; the history store (a time series
    // of numbers).
    ("files", &["source", "outfile", "history"]),
    // The evidence tree: which folders a scan may read, and what a file is.
    ("evidence tree", &["files"]),
    // Pure readers of on-disk structures: bytes in, validated maps out, no paths.
    ("formats", &["format"]),
    ("layers", &["layer"]),
    ("chains", &["chain"]),
    ("views", &["view"]),
    // What a view is made of: classes per grain and block, the guest's file systems, the
    // allocation map.
    ("analysis", &["classify", "guest", "map"]),
    ("derived", &["ceiling", "blame", "cache"]),
    // Whole jobs: one chain or many scanned, a datastore found, two observations of one disk
    // compared (`diff`: documents and history points in, changes out).
    ("runs", &["scan", "datastore", "diff"]),
    // What a single-disk scan's figures mean: the verdict, the remedies, the base audit.
    ("judgements", &["verdict"]),
    ("reports", &["report"]),
    ("renderers", &["render", "chart"]),
    ("command line", &["cli"]),
    ("commands", &["cmd"]),
    ("entry points", &["fuzzing"]),
];

/// Modules of the engine (what `--no-default-features` builds) that must not name a crate of
/// the command line. The history store's databases live in the engine's `history` module
/// behind the `store` feature, so `history` is checked for everything but [`STORE_CRATES`].
const CLI_CRATES: &[&str] = &[
    "clap",
    "clap_complete",
    "clap_mangen",
    "plotters",
    "indicatif",
];
const CLI_MODULES: &[&str] = &["cli", "cmd", "render", "chart"];
/// The store's crates (feature `store`): SQLite, the PostgreSQL client and its TLS, and the
/// login name a URL without a user connects as. Only `history` may name them, in any module, so the
/// commands and renderers never see SQL either.
const STORE_CRATES: &[&str] = &[
    "rusqlite",
    "postgres",
    "whoami",
    "rustls",
    "rustls_native_certs",
    "tokio_postgres_rustls",
    "percent_encoding",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file under `src/` belongs to (`None` for lib.rs and main.rs).
fn module_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => None,
        Some(m) => Some(m.to_string()),
        None => Some(first),
    }
}

/// Every module named after `crate::` in `code` with the byte offset where it is named:
/// `use crate::a::b`, `crate::c::f()`, and the top-level members of `use crate::{a, b::{c}}`,
/// which rustfmt may spread over several lines.
fn named_modules(code: &str) -> Vec<(usize, String)> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = code[at..].find("crate::") {
        at += i + "crate::".len();
        if code[at..].starts_with('{') {
            // Members at depth 1 of the group: each starts after `{` or a `,` at depth 1.
            let mut depth = 0;
            let mut member_start = true;
            for (j, c) in code[at..].char_indices() {
                match c {
                    '{' => {
                        depth += 1;
                        member_start = depth == 1;
                        continue;
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        member_start = true;
                        continue;
                    }
                    c if c.is_whitespace() => continue,
                    _ => {}
                }
                if member_start && depth == 1 {
                    out.push((at + j, ident(&code[at + j..])));
                }
                member_start = false;
            }
        } else {
            out.push((at, ident(&code[at..])));
        }
    }
    out
}

/// A file's text with line comments (and so doc comments) blanked, line breaks kept. A
/// string literal that holds `//` is cut too, which can only hide an edge inside a literal.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

struct Edge {
    from: String,
    to: String,
    file: PathBuf,
    line: usize,
}

fn edges() -> Vec<Edge> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let Some(from) = module_of(&f) else { continue };
        let code = code_of(&std::fs::read_to_string(&f).unwrap());
        for (at, to) in named_modules(&code) {
            // Items of the crate root (VERSION) and the module's own paths are no edges.
            if to == from || to.is_empty() || to.starts_with(char::is_uppercase) {
                continue;
            }
            out.push(Edge {
                from: from.clone(),
                to,
                file: f.clone(),
                line: code[..at].matches('\n').count() + 1,
            });
        }
    }
    out
}

fn floor_of() -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for (i, (_, mods)) in FLOORS.iter().enumerate() {
        for &name in *mods {
            assert!(m.insert(name, i).is_none(), "{name} is on two floors");
        }
    }
    m
}

#[test]
fn every_module_has_a_floor() {
    let floors = floor_of();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(f)).collect();
    let missing: Vec<_> = modules
        .iter()
        .filter(|m| !floors.contains_key(m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a floor in tests/it/architecture.rs: {missing:?}"
    );
    let gone: Vec<_> = floors.keys().filter(|m| !modules.contains(**m)).collect();
    assert!(
        gone.is_empty(),
        "floors name modules that do not exist: {gone:?}"
    );
}

#[test]
fn imports_only_go_down() {
    let floors = floor_of();
    let es = edges();
    // The parser must see the graph at all: scan reads chains, classify reads views.
    assert!(es.iter().any(|e| e.from == "scan" && e.to == "chain"));
    assert!(es.iter().any(|e| e.from == "classify" && e.to == "view"));
    let mut bad = Vec::new();
    for e in &es {
        let (Some(&a), Some(&b)) = (floors.get(e.from.as_str()), floors.get(e.to.as_str())) else {
            bad.push(format!(
                "{}:{}: {} -> {}: a module without a floor",
                e.file.display(),
                e.line,
                e.from,
                e.to
            ));
            continue;
        };
        if b >= a {
            bad.push(format!(
                "{}:{}: {} (floor \"{}\") imports {} (floor \"{}\")",
                e.file.display(),
                e.line,
                e.from,
                FLOORS[a].0,
                e.to,
                FLOORS[b].0
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "imports that go up or sideways:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_import_cycle() {
    // Implied when every edge goes down; checked on the edges alone, so a cycle is named even
    // while the floor table is being edited.
    let es = edges();
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in &es {
        graph.entry(&e.from).or_default().insert(&e.to);
    }
    // Depth-first search for a cycle, independent of the floor numbers.
    fn visit<'a>(
        n: &'a str,
        g: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        match state.get(n) {
            Some(1) => {
                let i = path.iter().position(|p| *p == n).unwrap();
                let mut c = path[i..].to_vec();
                c.push(n);
                return Some(c);
            }
            Some(2) => return None,
            _ => {}
        }
        state.insert(n, 1);
        path.push(n);
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n, 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if let Some(c) = visit(n, &graph, &mut state, &mut Vec::new()) {
            panic!("an import cycle: {}", c.join(" -> "));
        }
    }
    assert!(
        graph.len() > 20,
        "only {} modules import others",
        graph.len()
    );
}

/// Every line of code (comments blanked) of every source file: file, module, line number
/// (from 1), text.
fn code_lines() -> Vec<(PathBuf, Option<String>, usize, String)> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut out = Vec::new();
    for f in files {
        let m = module_of(&f);
        let text = code_of(&std::fs::read_to_string(&f).unwrap());
        for (i, code) in text.lines().enumerate() {
            out.push((f.clone(), m.clone(), i + 1, code.to_string()));
        }
    }
    out
}

#[test]
fn the_engine_names_no_crate_of_the_command_line() {
    let mut bad = Vec::new();
    let mut checked = BTreeSet::new();
    for (f, m, line, code) in code_lines() {
        let Some(m) = m else { continue };
        if CLI_MODULES.contains(&m.as_str()) {
            continue;
        }
        checked.insert(f.clone());
        for krate in CLI_CRATES {
            let named = code
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|w| w == *krate);
            if named && (code.contains(&format!("{krate}::")) || code.contains("derive")) {
                bad.push(format!("{}:{line}: {}", f.display(), code.trim()));
            }
        }
        if m != "history" && code.contains("rusqlite") {
            bad.push(format!("{}:{line}: {}", f.display(), code.trim()));
        }
    }
    let checked = checked.len();
    assert!(checked > 40, "only {checked} engine files found");
    assert!(
        bad.is_empty(),
        "the engine names the command line's crates:\n{}",
        bad.join("\n")
    );
}

#[test]
fn only_history_names_the_store_crates() {
    let mut bad = Vec::new();
    let mut named_in_history = BTreeSet::new();
    for (f, m, line, code) in code_lines() {
        for krate in STORE_CRATES {
            if !code.contains(&format!("{krate}::")) {
                continue;
            }
            if m.as_deref() == Some("history") {
                named_in_history.insert(*krate);
            } else {
                bad.push(format!("{}:{line}: {}", f.display(), code.trim()));
            }
        }
    }
    // The check must see the crates where they are used.
    assert_eq!(
        named_in_history.len(),
        STORE_CRATES.len(),
        "{named_in_history:?}"
    );
    assert!(
        bad.is_empty(),
        "the store's crates named outside history:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_parser_reads_use_groups() {
    let names =
        |code: &str| -> Vec<String> { named_modules(code).into_iter().map(|(_, n)| n).collect() };
    assert_eq!(
        names("use crate::{chain::Chain, error::Result};"),
        ["chain", "error"]
    );
    assert_eq!(
        names("use crate::{\n    chain::{Chain, open},\n    view::ComposedView,\n};"),
        ["chain", "view"]
    );
    assert_eq!(
        names("let x = crate::scan::scan_chain(&c, crate::units::KIB);"),
        ["scan", "units"]
    );
    assert!(names("let s = \"no edge\";").is_empty());
    assert!(
        code_of("/// [`crate::cmd`]\nfn f() {} // crate::cli")
            .lines()
            .all(|l| !l.contains("crate::"))
    );
}
