//! Computes `DELTASCOPE_CODE_ID`: a hash of the sources whose change can change what a layer
//! classifies to. The layer cache (src/cache.rs) puts it in every key, so a build whose
//! classification code differs never reuses entries another build wrote, while rebuilds that
//! touch only output code (commands, reports, charts, history) keep them. New files count
//! unless listed below: a file forgotten here costs cache hits, never a stale result.

use std::path::{Path, PathBuf};

/// Sources that cannot change a layer's classification: the command line, renderers, the
/// history store, the models, and analyses of the top layer only (never cached).
const OUTPUT_ONLY: &[&str] = &[
    "src/blame.rs",
    "src/ceiling.rs",
    "src/chart/",
    "src/cli.rs",
    "src/cmd/",
    "src/datastore/",
    "src/fuzzing.rs",
    "src/guest/",
    "src/history/",
    "src/lun.rs",
    "src/main.rs",
    "src/map.rs",
    "src/outfile.rs",
    "src/progress.rs",
    "src/render/",
    "src/report/",
    "src/sanitize.rs",
    "src/verdict.rs",
];

/// Sources that can change what a base's guest free space reads as (with the classification
/// code above: views and zero tests): the cache keys its free-space entries by both.
const GUEST: &[&str] = &["src/blame.rs", "src/guest/"];

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=build.rs");
    let mut files = Vec::new();
    walk(Path::new("src"), &mut files);
    files.sort();
    // FNV-1a, 64 bits: stable across toolchains, enough to tell builds apart.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for f in &files {
        let name = f.to_string_lossy().replace('\\', "/");
        if OUTPUT_ONLY.iter().any(|o| name.starts_with(o)) {
            continue;
        }
        let text = std::fs::read(f).unwrap_or_default();
        eat(name.as_bytes());
        eat(&(text.len() as u64).to_le_bytes());
        eat(&text);
    }
    println!("cargo:rustc-env=DELTASCOPE_CODE_ID={h:016x}");
    // The code that reads a guest's free space (a base's audit, cached beside the base's
    // classes): its own id, over the guest readers and blame.
    let mut g: u64 = 0xcbf2_9ce4_8422_2325;
    for f in &files {
        let name = f.to_string_lossy().replace('\\', "/");
        if !GUEST.iter().any(|o| name.starts_with(o)) {
            continue;
        }
        let text = std::fs::read(f).unwrap_or_default();
        for b in name
            .as_bytes()
            .iter()
            .chain(&(text.len() as u64).to_le_bytes())
            .chain(&text)
        {
            g = (g ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    println!("cargo:rustc-env=DELTASCOPE_GUEST_CODE_ID={g:016x}");
}
