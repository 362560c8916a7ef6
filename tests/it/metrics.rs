//! `scan DIR --metrics FILE`: the Prometheus text format node_exporter's textfile collector
//! reads. The oracle is the Prometheus project's own Python client (Debian's
//! `python3-prometheus-client`, its `text_string_to_metric_families` parser), run on the file
//! one scan wrote; every value it reads must equal the same figure of that scan's `--json`,
//! every figure the JSON has must be there, and names from disks and `--lun` that hold `"`,
//! `\` and line feeds must come back exactly (the format's escaping). The dashboard in
//! docs/grafana/ may only chart metrics a scan writes.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{fails, require, root, run, sh, tempdir};

/// The Python that has Debian's packages (a `python3` first on PATH may be another one).
const PYTHON: &str = "/usr/bin/python3";

/// Reads a metrics file with prometheus_client's parser: one JSON object per sample.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1], encoding="utf-8").read()
out = []
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        out.append({"family": fam.name, "type": fam.type, "help": fam.documentation,
                    "name": s.name, "labels": s.labels, "value": s.value,
                    "timestamp": s.timestamp})
print(json.dumps(out))
"#;

/// The eight metrics, as the issue names them.
const NAMES: [&str; 8] = [
    "deltascope_delta_allocated_bytes",
    "deltascope_delta_class_bytes",
    "deltascope_delta_expected_ceiling_bytes",
    "deltascope_lun_delta_bytes",
    "deltascope_lun_busy_fraction",
    "deltascope_lun_recommended_vms",
    "deltascope_scan_timestamp_seconds",
    "deltascope_scan_failed_disks",
];

/// A series: the metric's name and its labels, sorted.
type Series = (String, Vec<(String, String)>);

fn parse_metrics(file: &Path) -> Vec<Value> {
    let has_parser = Command::new(PYTHON)
        .args(["-c", "import prometheus_client.parser"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        has_parser,
        "{PYTHON} with prometheus_client is required by this test: install python3-prometheus-client (apt-get install python3-prometheus-client)"
    );
    let out = sh(Command::new(PYTHON).arg("-c").arg(PARSE).arg(file));
    match serde_json::from_str(&out).expect("the parser's JSON") {
        Value::Array(a) => a,
        v => panic!("{v}"),
    }
}

fn series(name: &str, labels: &[(&str, &str)]) -> Series {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    (name.to_string(), l)
}

/// Every figure of `scan DIR --json` that a metric carries, by the series that carries it
/// (all but the scan's time, which the JSON does not hold).
fn expected_from_json(scan: &Value) -> BTreeMap<Series, f64> {
    let mut want = BTreeMap::new();
    let num = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("a number: {v}"));
    for v in scan["vms"].as_array().expect("vms") {
        if v["delta_bytes"].is_null() {
            continue;
        }
        let lun = v["lun"].as_str().unwrap();
        let disk = v["path"].as_str().unwrap();
        let vm = v["vm"].as_str().unwrap_or("");
        let l = [("lun", lun), ("disk", disk), ("vm", vm)];
        want.insert(
            series("deltascope_delta_allocated_bytes", &l),
            num(&v["delta_bytes"]),
        );
        for class in ["fresh", "overwritten", "identical", "zeroed"] {
            let lc = [l[0], l[1], l[2], ("class", class)];
            want.insert(
                series("deltascope_delta_class_bytes", &lc),
                num(&v["classes"][class]),
            );
        }
        if !v["ceiling"].is_null() {
            want.insert(
                series("deltascope_delta_expected_ceiling_bytes", &l),
                num(&v["ceiling"]["expected_bytes"]),
            );
        }
    }
    for l in scan["luns"].as_array().expect("luns") {
        let lun = [("lun", l["name"].as_str().unwrap())];
        want.insert(
            series("deltascope_lun_delta_bytes", &lun),
            num(&l["delta_bytes"]),
        );
        want.insert(
            series("deltascope_scan_failed_disks", &lun),
            num(&l["vms_failed"]),
        );
        let model = &l["model"];
        if model["inputs"]["growth_source"] != "none" {
            want.insert(
                series("deltascope_lun_busy_fraction", &lun),
                num(&model["busy_fraction"]),
            );
        }
        let rec = &model["vms_per_lun"]["recommended"];
        if !rec.is_null() {
            want.insert(series("deltascope_lun_recommended_vms", &lun), num(rec));
        }
    }
    want
}

/// Runs `scan --json --metrics FILE ARGS`, expecting `code`; returns the JSON, the parsed
/// samples and the Unix times before and after the run.
fn scan_with_metrics(args: &[&OsStr], file: &Path, code: i32) -> (Value, Vec<Value>, i64, i64) {
    let mut all: Vec<&OsStr> = vec![
        OsStr::new("scan"),
        OsStr::new("--json"),
        OsStr::new("--quiet"),
        OsStr::new("--metrics"),
        file.as_os_str(),
    ];
    all.extend_from_slice(args);
    let before = chrono::Utc::now().timestamp();
    let out = run(&all);
    let after = chrono::Utc::now().timestamp();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{all:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let json = serde_json::from_slice(&out.stdout).expect("scan JSON");
    (json, parse_metrics(file), before, after)
}

/// Checks every sample against the JSON: the same series, the same values, gauges with help
/// text, and the scan's time within the run. Returns the samples by series.
fn check_against_json(
    json: &Value,
    samples: &[Value],
    before: i64,
    after: i64,
) -> BTreeMap<Series, f64> {
    let mut got = BTreeMap::new();
    for s in samples {
        let name = s["name"].as_str().unwrap();
        assert!(NAMES.contains(&name), "an unknown metric {name}");
        assert_eq!(s["family"], name, "{s}");
        assert_eq!(s["type"], "gauge", "{s}");
        assert!(!s["help"].as_str().unwrap().is_empty(), "{s}");
        assert!(s["timestamp"].is_null(), "a sample with a timestamp: {s}");
        let labels: Vec<(&str, &str)> = s["labels"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        let key = series(name, &labels);
        let value = s["value"].as_f64().unwrap();
        assert!(got.insert(key.clone(), value).is_none(), "twice: {key:?}");
    }
    // The scan's time: one per LUN, within the run.
    let luns: Vec<&str> = json["luns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    for lun in &luns {
        let at = got
            .remove(&series(
                "deltascope_scan_timestamp_seconds",
                &[("lun", lun)],
            ))
            .unwrap_or_else(|| panic!("no scan time for LUN {lun:?}"));
        assert!(
            (before as f64..=after as f64).contains(&at),
            "scan time {at} outside {before}..{after}"
        );
    }
    let want = expected_from_json(json);
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing: {missing:?}\nnot in the JSON: {extra:?}"
    );
    for (k, v) in &want {
        assert_eq!(got[k], *v, "{k:?}");
    }
    got
}

/// The datastore tree of `make-datastore.sh`, with one SESparse clone copied into a folder
/// whose name holds a double quote, a backslash and a line feed, used by a VM whose
/// displayName (written with the `.vmx` file's `|XX` escapes) holds the same.
fn hostile_datastore(dir: &Path) -> (PathBuf, PathBuf) {
    require("qemu-img");
    require("qemu-io");
    sh(Command::new("bash")
        .arg(root().join("testdata/make-datastore.sh"))
        .arg(dir));
    let lun2 = dir.join("lun2");
    let odd = lun2.join("se \"q\" \\ x\ny");
    std::fs::create_dir(&odd).unwrap();
    for e in std::fs::read_dir(lun2.join("se1")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, odd.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        odd.join("odd.vmx"),
        ".encoding = \"UTF-8\"\ndisplayName = \"vdi |22seven|22 |5C|0Aend\"\nscsi0:0.present = \"TRUE\"\nscsi0:0.fileName = \"se1.vmdk\"\n",
    )
    .unwrap();
    (dir.join("lun1"), lun2)
}

#[test]
fn metrics_parse_and_every_value_equals_the_json() {
    let d = tempdir();
    let (lun1, lun2) = hostile_datastore(&d.path().join("ds"));
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let prom = out.join("deltascope.prom");
    // An older file is replaced whole.
    std::fs::write(&prom, "stale 1\n").unwrap();
    let lun_odd = "ds \"1\" \\ a\nb";
    let spec1 = {
        let mut s = std::ffi::OsString::from(format!("{lun_odd}="));
        s.push(lun1.as_os_str());
        s
    };
    let spec2 = {
        let mut s = std::ffi::OsString::from("lun2=");
        s.push(lun2.as_os_str());
        s
    };
    // The growth of every delta known (--since), a LUN size: every metric has samples. The
    // broken chain of lun1 fails (exit 1) and is counted.
    let (json, samples, before, after) = scan_with_metrics(
        &[
            OsStr::new("--lun"),
            &spec1,
            OsStr::new("--lun"),
            &spec2,
            OsStr::new("--since"),
            OsStr::new("2026-01-01T00:00:00Z"),
            OsStr::new("--lun-size"),
            OsStr::new("2TiB"),
        ],
        &prom,
        1,
    );
    let got = check_against_json(&json, &samples, before, after);
    for name in NAMES {
        assert!(
            samples.iter().any(|s| s["name"] == name),
            "no sample of {name}"
        );
    }
    // The names came back exactly, escapes undone.
    assert_eq!(
        got[&series("deltascope_scan_failed_disks", &[("lun", lun_odd)])],
        1.0
    );
    let odd_disk = samples
        .iter()
        .find(|s| s["labels"]["vm"] == "vdi \"seven\" \\\nend")
        .expect("the odd VM's disk");
    let disk = odd_disk["labels"]["disk"].as_str().unwrap();
    assert!(disk.ends_with("/se \"q\" \\\\ x\ny/se1.vmdk"), "{disk:?}");
    // In the file itself: escaped, one sample per line.
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(text.contains("lun=\"ds \\\"1\\\" \\\\ a\\nb\""), "{text}");
    assert!(
        text.contains("vm=\"vdi \\\"seven\\\" \\\\\\nend\""),
        "{text}"
    );
    assert!(!text.contains("stale"));
    for line in text.lines() {
        assert!(
            line.starts_with("# HELP deltascope_")
                || line.starts_with("# TYPE deltascope_")
                || line.starts_with("deltascope_"),
            "{line:?}"
        );
    }
    // Written through a temporary file renamed into place: nothing else is left.
    let names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["deltascope.prom"]);

    // Without growth or a LUN size, the model gives no busy fraction and no recommendation:
    // those series are left out, as the JSON leaves them null or "none".
    let lun2_only = out.join("lun2.prom");
    let (json, samples, before, after) = scan_with_metrics(&[lun2.as_os_str()], &lun2_only, 0);
    check_against_json(&json, &samples, before, after);
    assert_eq!(json["luns"][0]["model"]["inputs"]["growth_source"], "none");
    assert!(
        !samples
            .iter()
            .any(|s| s["name"] == "deltascope_lun_busy_fraction"),
        "a busy fraction without growth"
    );
}

#[test]
fn metrics_only_where_they_can_be_written() {
    let d = tempdir();
    let demo = root().join("testdata/demo/win10-clone-000002.vmdk");
    // One chain has no datastore figures.
    let e = fails(
        2,
        [
            OsStr::new("scan"),
            demo.as_os_str(),
            OsStr::new("--metrics"),
            d.path().join("one.prom").as_os_str(),
        ],
    );
    assert!(e.contains("--metrics is for datastore scans"), "{e}");
    // A folder as the metrics file is refused before the scan (and before any output).
    let out = run([
        OsStr::new("scan"),
        root().join("testdata/demo").as_os_str(),
        OsStr::new("--metrics"),
        d.path().as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is a directory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The dashboard is Grafana JSON whose every query charts a metric deltascope writes.
#[test]
fn the_grafana_dashboard_charts_only_written_metrics() {
    let path = root().join("docs/grafana/deltascope.json");
    let dash: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the dashboard")).unwrap();
    assert!(dash["title"].as_str().is_some_and(|t| !t.is_empty()));
    let mut exprs = Vec::new();
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("expr" | "query", Value::String(s)) => out.push(s),
                        _ => walk(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(&dash, &mut exprs);
    assert!(exprs.len() >= 6, "{exprs:?}");
    let mut charted = std::collections::BTreeSet::new();
    for e in &exprs {
        let mut rest = *e;
        while let Some(i) = rest.find("deltascope_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(NAMES.contains(&name.as_str()), "{name} in {e:?}");
            charted.insert(name.clone());
            rest = &rest[i + name.len()..];
        }
    }
    assert_eq!(charted.len(), NAMES.len(), "charted: {charted:?}");
}
