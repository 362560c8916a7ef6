//! `docs/GUIDE.md` as a test: every ```sh block runs, in order, from the repository root,
//! with `deltascope` on PATH and `$OUT` a scratch directory, so the guide cannot rot. A block
//! that fails names itself; the files the guide promises are checked afterwards, and the
//! default history store must stay untouched (every command of the guide names `--db`). The
//! shared-store section's `$STORE` is a database on the test PostgreSQL server
//! (`stores.rs`), its password in `$PGPASSWORD` as the guide advises.

use std::path::Path;
use std::process::Command;

use crate::util::{bin, require, root, tempdir};

/// The ```sh blocks of a Markdown text, with the line each starts on.
fn sh_blocks(md: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in md.lines().enumerate() {
        match &mut current {
            None if line.trim_end() == "```sh" => current = Some((i + 1, String::new())),
            Some(_) if line.trim_end() == "```" => out.extend(current.take()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```sh block");
    out
}

fn listing(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            all.push(p);
        }
    }
    all.sort();
    all
}

#[test]
fn every_command_of_the_guide_runs() {
    require("qemu-io");
    require("qemu-img");
    let md = std::fs::read_to_string(root().join("docs/GUIDE.md")).unwrap();
    let blocks = sh_blocks(&md);
    assert!(blocks.len() >= 15, "only {} sh blocks", blocks.len());
    for cmd in [
        "deltascope scan",
        "deltascope info",
        "--record",
        "deltascope forecast",
        "deltascope chart",
        "deltascope lun",
        "deltascope blame",
        "deltascope report",
        "deltascope completions",
        "deltascope man",
        "deltascope db migrate",
        "deltascope db check",
        "--metrics",
    ] {
        assert!(
            blocks.iter().any(|(_, b)| b.contains(cmd)),
            "the guide never runs {cmd}"
        );
    }
    let dir = tempdir();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let default_db = dir.path().join("default-history.sqlite");
    let bin_dir = bin().parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let testdata = listing(&root().join("testdata"));
    let pg = crate::stores::server();
    let store = pg.url_without_password(&pg.create_db("guide"));
    for (line, block) in &blocks {
        let o = Command::new("bash")
            .arg("-euo")
            .arg("pipefail")
            .arg("-c")
            .arg(block)
            .current_dir(root())
            .env("OUT", &out)
            .env("PATH", &path)
            .env("DELTASCOPE_DB", &default_db)
            .env("STORE", &store)
            .env("PGPASSWORD", crate::stores::PASSWORD)
            .env_remove("PGPASSFILE")
            .env_remove("DELTASCOPE_SITE")
            .output()
            .expect("run bash");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success(),
            "docs/GUIDE.md line {line}: the block failed ({:?}):\n{block}\nstdout:\n{}\nstderr:\n{stderr}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
        );
        assert!(!stderr.contains("panicked"), "line {line}: {stderr}");
        assert!(
            !stderr.contains("warning:"),
            "line {line}: a warning:\n{stderr}"
        );
    }
    assert!(
        !default_db.exists(),
        "a guide command used the default history store: name --db"
    );
    assert_eq!(
        listing(&root().join("testdata")),
        testdata,
        "the guide wrote into testdata/"
    );
    // What the guide says it makes.
    for f in [
        "scan.json",
        "map.json",
        "history.sqlite",
        "history.csv",
        "forecast.json",
        "growth.svg",
        "growth.png",
        "lun.svg",
        "lun-locking.svg",
        "lun.json",
        "blame.csv",
        "vdi-01.html",
        "blame.html",
        "datastore.html",
        "deltascope.bash",
        "deltascope.1",
        "db-check.json",
        "deltascope.prom",
    ] {
        let p = out.join(f);
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "the guide should have made {f}");
    }
    let vdi = std::fs::read_to_string(out.join("vdi-01.html")).unwrap();
    assert!(vdi.contains("6 point(s) recorded for <code>vdi-01</code>"));
    assert!(
        vdi.contains("<th>Week of</th>"),
        "no forecast in the report"
    );
    let blame = std::fs::read_to_string(out.join("blame.html")).unwrap();
    assert!(blame.contains("/new/three.bin"), "no blame in the report");
    let forecast: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("forecast.json")).unwrap()).unwrap();
    assert_eq!(forecast["disks"][0]["points"].as_array().unwrap().len(), 6);
    // The metrics of the pod: a busy fraction for the LUN whose deltas take VMFS locks.
    let prom = std::fs::read_to_string(out.join("deltascope.prom")).unwrap();
    assert!(
        prom.contains("deltascope_lun_busy_fraction{lun=\"ds1\"} "),
        "{prom}"
    );
    // The shared store holds the two sites' disks apart.
    let check: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("db-check.json")).unwrap()).unwrap();
    assert_eq!(check["status"], "ok");
    assert_eq!(check["backend"], "postgresql");
    assert_eq!(
        (check["points"].as_u64(), check["disks"].as_u64()),
        (Some(2), Some(2))
    );
}
