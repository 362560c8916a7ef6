//! Issue 14: a copy of a Horizon pod's datastores, as `testdata/make-horizon.sh` builds it
//! (absolute `/vmfs/volumes/UUID/...` parent hints, persistent disks on a second datastore,
//! .vmx and .vmsd files, a snapshot chain, an orphaned delta, a renamed copy, a decoy, an
//! empty and an unreadable folder). Every point of the issue is checked with `--map` and
//! without (the fallbacks), each disk against a scan of that disk alone, and each LUN's sums
//! against single-disk scans and against qemu's map of every delta file.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

use crate::util::*;

const UUID1: &str = "/vmfs/volumes/5f3a1c2e-8a7b9c0d-1e2f-001122334455";
const UUID2: &str = "/vmfs/volumes/6a7b8c9d-01234567-89ab-001122334466";
const REPLICA_HINT: &str =
    "/vmfs/volumes/5f3a1c2e-8a7b9c0d-1e2f-001122334455/replica-0a1b/replica-0a1b.vmdk";

/// The pod, built once per test run (canonical path).
fn pod() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        require("qemu-img");
        require("qemu-io");
        let dir = process_dir("horizon");
        sh(Command::new("bash")
            .arg(root().join("testdata/make-horizon.sh"))
            .arg(&dir));
        dir.canonicalize().unwrap()
    })
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// deltascope as a user whom mode 000 keeps out: as root, with CAP_DAC_OVERRIDE and
/// CAP_DAC_READ_SEARCH dropped (root still owns the generated files, so it reads the rest).
fn deltascope_as_user(args: &[OsString]) -> Output {
    let mut cmd = if is_root() {
        require("setpriv");
        let mut c = Command::new("setpriv");
        c.args(["--bounding-set", "-dac_override,-dac_read_search"])
            .arg(bin());
        c
    } else {
        Command::new(bin())
    };
    cmd.args(args)
        .env("DELTASCOPE_CACHE", cache_dir())
        .output()
        .expect("run deltascope")
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn maps(pod: &Path) -> Vec<OsString> {
    vec![
        "--map".into(),
        format!("{UUID1}={}", pod.join("ds1").display()).into(),
        "--map".into(),
        format!("{UUID2}={}", pod.join("ds2").display()).into(),
    ]
}

fn luns(pod: &Path) -> Vec<OsString> {
    vec![
        "--lun".into(),
        format!("ds1={}", pod.join("ds1").display()).into(),
        "--lun".into(),
        format!("ds2={}", pod.join("ds2").display()).into(),
    ]
}

fn rel(p: &str) -> String {
    Path::new(p)
        .strip_prefix(pod())
        .unwrap_or(Path::new(p))
        .display()
        .to_string()
}

/// (vm, role, layers) of every live disk, by path under the pod.
fn expected_disks() -> BTreeMap<&'static str, (Option<&'static str>, &'static str, u64)> {
    BTreeMap::from([
        ("ds1/decoy/decoy.vmdk", (None, "base", 1)),
        (
            "ds1/replica-0a1b/replica-0a1b.vmdk",
            (Some("replica-0a1b"), "replica", 1),
        ),
        (
            "ds1/vdi-01/vdi-01-vdm-disposable-3c4d.vmdk",
            (Some("vdi-01"), "disposable", 1),
        ),
        (
            "ds1/vdi-01/vdi-01-vdm-internal-5e6f.vmdk",
            (Some("vdi-01"), "internal", 1),
        ),
        ("ds1/vdi-01/vdi-01.vmdk", (Some("vdi-01"), "os_delta", 2)),
        (
            "ds1/vdi-02/vdi-02-vdm-disposable-7a8b.vmdk",
            (Some("vdi-02"), "disposable", 1),
        ),
        ("ds1/vdi-02/vdi-02.vmdk", (Some("vdi-02"), "os_delta", 2)),
        (
            "ds1/vdi-03/vdi-03-000002.vmdk",
            (Some("vdi-03"), "snapshot", 4),
        ),
        ("ds1/vdi-03/vdi-03-000003.vmdk", (None, "os_delta", 5)),
        ("ds1/ws-vm/ws-vm-000001-copy.vmdk", (None, "os_delta", 2)),
        (
            "ds1/ws-vm/ws-vm-000001.vmdk",
            (Some("ws-vm"), "snapshot", 2),
        ),
        (
            "ds2/vdi-01/vdi-01-vdm-user-disk-D-1f2e.vmdk",
            (Some("vdi-01"), "persistent", 1),
        ),
        (
            "ds2/vdi-02/vdi-02-vdm-user-disk-D-9c0d.vmdk",
            (Some("vdi-02"), "persistent", 1),
        ),
    ])
}

/// Every delta file of ds1, by construction of the pod.
const DS1_DELTAS: [&str; 8] = [
    "ds1/vdi-01/vdi-01.vmdk",
    "ds1/vdi-02/vdi-02.vmdk",
    "ds1/vdi-03/vdi-03.vmdk",
    "ds1/vdi-03/vdi-03-000001.vmdk",
    "ds1/vdi-03/vdi-03-000002.vmdk",
    "ds1/vdi-03/vdi-03-000003.vmdk",
    "ds1/ws-vm/ws-vm-000001.vmdk",
    "ds1/ws-vm/ws-vm-000001-copy.vmdk",
];

/// Bytes qemu says one layer alone maps (present ranges, data or zero): an oracle for
/// `allocated_bytes` that does not come from deltascope.
fn qemu_present_bytes(layer: &Path) -> u64 {
    qemu_map_layer(layer)
        .iter()
        .filter(|e| e["present"] == Value::Bool(true))
        .map(|e| e["length"].as_u64().unwrap())
        .sum()
}

fn kinds(warnings: &Value) -> Vec<String> {
    warnings
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap().to_string())
        .collect()
}

/// The datastore scan of both LUNs, with or without `--map`.
fn datastore_scan(with_map: bool) -> Value {
    let p = pod();
    let mut args = os(&["scan", "--json"]);
    args.extend(luns(p));
    if with_map {
        args.extend(maps(p));
    }
    let out = deltascope_as_user(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The locked folder could not be read: exit 1 after the report, and it says why.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("1 file(s) or folder(s) could not be read"),
        "{stderr}"
    );
    assert!(!stderr.contains("could not be scanned"), "{stderr}");
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// One disk scanned alone, as `scan --json PATH` (with the same `--map`, if any).
fn single_scan(path: &str, with_map: bool) -> Value {
    let mut args = os(&["scan", "--json", path]);
    if with_map {
        args.extend(maps(pod()));
    }
    serde_json::from_str(&ok(&args)).expect("JSON")
}

fn is_delta_layer(i: usize, l: &Value) -> bool {
    i > 0 || l["format"] == "vmfsSparse" || l["format"] == "seSparse"
}

fn check_pod_scan(with_map: bool) {
    let p = pod();
    let r = datastore_scan(with_map);
    let vms = r["vms"].as_array().unwrap();

    // Every live disk, ok, with its VM and role; the locked folder's disk is not among them.
    let got: BTreeMap<String, (Option<String>, String, u64)> = vms
        .iter()
        .map(|v| {
            assert_eq!(v["status"], "ok", "{v}");
            (
                rel(v["path"].as_str().unwrap()),
                (
                    v["vm"].as_str().map(str::to_string),
                    v["role"].as_str().unwrap().to_string(),
                    v["layers"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    let want: BTreeMap<String, (Option<String>, String, u64)> = expected_disks()
        .into_iter()
        .map(|(k, (vm, role, n))| (k.to_string(), (vm.map(str::to_string), role.to_string(), n)))
        .collect();
    assert_eq!(got, want, "map mode: {with_map}");

    // parent_remapped on the clones exactly when --map is not given, naming hint and file.
    for v in vms {
        let path = v["path"].as_str().unwrap();
        let w = kinds(&v["warnings"]);
        let clone = ["vdi-01.vmdk", "vdi-02.vmdk", "vdi-03-00000"]
            .iter()
            .any(|c| path.contains(c));
        if clone && !with_map {
            assert!(w.contains(&"parent_remapped".to_string()), "{path}: {w:?}");
            let m = v["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["kind"] == "parent_remapped")
                .unwrap()["message"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(
                m.contains(&format!("\"{REPLICA_HINT}\""))
                    && m.contains(
                        &p.join("ds1/replica-0a1b/replica-0a1b.vmdk")
                            .display()
                            .to_string()
                    ),
                "{m}"
            );
        } else {
            assert!(!w.contains(&"parent_remapped".to_string()), "{path}: {w:?}");
        }
    }

    // Each disk's figures are those of a scan of that disk alone.
    let mut layer_bytes: BTreeMap<PathBuf, u64> = BTreeMap::new();
    for v in vms {
        let path = v["path"].as_str().unwrap();
        let alone = single_scan(path, with_map);
        let chain = alone["chain"].as_array().unwrap();
        let top = chain.last().unwrap();
        assert_eq!(v["layers"], chain.len(), "{path}");
        assert_eq!(v["format"], top["format"], "{path}");
        assert_eq!(v["classes"], top["classes"], "{path}");
        if v["is_delta"] == true {
            assert_eq!(v["delta_bytes"], top["allocated_bytes"], "{path}");
            assert_eq!(v["delta_file_bytes"], top["file_size"], "{path}");
            assert_eq!(v["ceiling"], alone["ceiling"], "{path}");
        }
        let mut chain_delta = 0;
        for (i, l) in chain.iter().enumerate() {
            if is_delta_layer(i, l) {
                let f = Path::new(l["path"].as_str().unwrap())
                    .canonicalize()
                    .unwrap();
                let b = l["allocated_bytes"].as_u64().unwrap();
                chain_delta += b;
                assert_eq!(*layer_bytes.entry(f).or_insert(b), b);
            }
        }
        assert_eq!(v["chain_delta_bytes"], chain_delta, "{path}");
        // The evidence tree differs: a disk scanned alone has its own folder as its tree, in
        // the datastore scan the whole datastore (and the --map targets) is. So `outside_tree`
        // is left out of the comparison: inside the datastore nothing lies outside it, while
        // alone a clone's replica or the decoy's extents lie in other folders.
        let mine: Vec<String> = kinds(&v["warnings"]);
        let theirs: Vec<String> = chain
            .iter()
            .flat_map(|l| kinds(&l["warnings"]))
            .filter(|k| k != "outside_tree")
            .collect();
        assert!(
            !mine.contains(&"outside_tree".to_string()),
            "{path}: {mine:?}"
        );
        assert_eq!(mine, theirs, "{path}");
    }
    // An oracle outside deltascope: qemu's map of each delta file alone.
    for d in DS1_DELTAS {
        let f = p.join(d);
        assert_eq!(
            layer_bytes.get(&f).copied(),
            Some(qemu_present_bytes(&f)),
            "{d}: allocated bytes against qemu-img map"
        );
    }
    assert_eq!(
        layer_bytes.len(),
        DS1_DELTAS.len(),
        "the delta files of the pod are exactly the delta layers of its disks"
    );

    // `lun --json` counts the same disks and machines as `scan DIR --json`.
    let mut args = os(&["lun", "--json", "--since", "2026-11-01"]);
    args.extend(luns(p));
    if with_map {
        args.extend(maps(p));
    }
    let out = deltascope_as_user(&args);
    let model: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    for (a, b) in r["luns"]
        .as_array()
        .unwrap()
        .iter()
        .zip(model["luns"].as_array().unwrap())
    {
        assert_eq!(a["name"], b["lun"]);
        for k in ["vms_found", "vms_failed", "machines_found"] {
            assert_eq!(a[k], b[k], "{k} of {}", a["name"]);
        }
    }

    // Per LUN: sums of single-disk figures, each delta file once.
    let luns = r["luns"].as_array().unwrap();
    assert_eq!(luns.len(), 2);
    for lun in luns {
        let name = lun["name"].as_str().unwrap();
        let root = p.join(name);
        let mine: Vec<&Value> = vms.iter().filter(|v| v["lun"] == name).collect();
        assert_eq!(lun["vms_found"], mine.len());
        assert_eq!(lun["vms_failed"], 0);
        let tops: u64 = mine.iter().filter_map(|v| v["delta_bytes"].as_u64()).sum();
        assert_eq!(lun["delta_bytes"], tops, "{name}");
        let all: u64 = layer_bytes
            .iter()
            .filter(|(f, _)| f.starts_with(&root))
            .map(|(_, b)| b)
            .sum();
        assert_eq!(lun["all_delta_bytes"], all, "{name}");
        if name == "ds1" {
            let qemu: u64 = DS1_DELTAS
                .iter()
                .map(|d| qemu_present_bytes(&p.join(d)))
                .sum();
            assert_eq!(lun["all_delta_bytes"], qemu);
            // The per-LUN "delta" of old counted top layers only: vdi-03's snapshot layers
            // are in all_delta_bytes, not in delta_bytes.
            assert!(lun["all_delta_bytes"].as_u64().unwrap() > tops);
            assert_eq!(lun["machines_found"], 5);
            assert_eq!(lun["vms_found"], 11);
            // The model counts VMs by .vmx: vdi-01..03 and ws-vm, the decoy on its own; the
            // replica VM and the two unused deltas are left out.
            assert_eq!(lun["model"]["inputs"]["vms"], 5);
        } else {
            assert_eq!(lun["machines_found"], 0);
            assert_eq!(lun["all_delta_bytes"], 0);
        }
    }

    // Machines: their disks (on both LUNs), snapshots and delta bytes (each file once).
    let machines = r["machines"].as_array().unwrap();
    let by_name: BTreeMap<&str, &Value> = machines
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m))
        .collect();
    assert_eq!(
        by_name.keys().copied().collect::<Vec<_>>(),
        ["replica-0a1b", "vdi-01", "vdi-02", "vdi-03", "ws-vm"]
    );
    for (name, m) in &by_name {
        let disks: BTreeSet<String> = m["disks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| rel(d.as_str().unwrap()))
            .collect();
        let want: BTreeSet<String> = expected_disks()
            .iter()
            .filter(|(_, (vm, _, _))| *vm == Some(*name))
            .map(|(k, _)| k.to_string())
            .collect();
        assert_eq!(disks, want, "{name}");
        let mut files = BTreeSet::new();
        let mut bytes = 0;
        for d in m["disks"].as_array().unwrap() {
            let alone = single_scan(d.as_str().unwrap(), with_map);
            for (i, l) in alone["chain"].as_array().unwrap().iter().enumerate() {
                let f = Path::new(l["path"].as_str().unwrap())
                    .canonicalize()
                    .unwrap();
                if is_delta_layer(i, l) && files.insert(f) {
                    bytes += l["allocated_bytes"].as_u64().unwrap();
                }
            }
        }
        assert_eq!(m["delta_bytes"], bytes, "{name}");
        assert_eq!(m["lun"], "ds1");
        assert_eq!(
            m["snapshots"],
            match *name {
                "vdi-03" => 2,
                "ws-vm" => 1,
                _ => 0,
            },
            "{name}"
        );
    }
    let tree = by_name["vdi-03"]["snapshot_tree"].as_array().unwrap();
    assert_eq!(tree[0]["name"], "before \"patch Tuesday\"");
    assert_eq!(tree[1]["parent"], "1");
    assert_eq!(tree[1]["current"], true);
    assert_eq!(
        rel(tree[1]["disks"][0].as_str().unwrap()),
        "ds1/vdi-03/vdi-03-000001.vmdk"
    );

    // Orphans: the left-over delta and the copy (nothing uses them), the internal disk
    // vdi-02.vmx names but that is missing, the locked folder.
    let orphans: BTreeSet<(String, String)> = r["orphans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["reason"].as_str().unwrap().to_string(),
                rel(o["path"].as_str().unwrap()),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("not_referenced", "ds1/vdi-03/vdi-03-000003.vmdk"),
        ("not_referenced", "ds1/ws-vm/ws-vm-000001-copy.vmdk"),
        ("missing", "ds1/vdi-02/vdi-02-vdm-internal-9e9e.vmdk"),
        ("unreadable", "ds1/locked"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(orphans, want);
    for o in r["orphans"].as_array().unwrap() {
        assert_eq!(o["error"].is_null(), o["reason"] == "not_referenced", "{o}");
    }

    // Datastore warnings: the decoy names two disks (they stay disks) and shares an extent;
    // the copy's embedded descriptor names the original.
    let w = r["warnings"].as_array().unwrap();
    let of = |kind: &str| -> Vec<String> {
        w.iter()
            .filter(|x| x["kind"] == kind)
            .map(|x| x["message"].as_str().unwrap().to_string())
            .collect()
    };
    let disk_claims = of("extent_is_a_disk");
    assert_eq!(disk_claims.len(), 2, "{w:?}");
    for (m, named) in disk_claims
        .iter()
        .zip(["vdi-01/vdi-01.vmdk", "ws-vm/ws-vm-000001.vmdk"])
    {
        assert!(m.contains("decoy/decoy.vmdk") && m.contains(named), "{m}");
    }
    let shared = of("extent_shared");
    assert!(
        shared.len() == 1 && shared[0].contains("vdi-02-sesparse.vmdk"),
        "{shared:?}"
    );
    let copy = of("renamed_copy");
    assert!(
        copy.len() == 1 && copy[0].contains("ws-vm-000001-copy.vmdk"),
        "{copy:?}"
    );
    // The persistent disks' absolute names: found on ds2 by their last two components.
    assert_eq!(
        of("path_remapped").len(),
        if with_map { 0 } else { 2 },
        "{w:?}"
    );
}

#[test]
fn issue_14_pod_with_map() {
    check_pod_scan(true);
}

#[test]
fn issue_14_pod_without_map_falls_back() {
    check_pod_scan(false);
}

/// The report for people and for spreadsheets says which figure is which.
#[test]
fn issue_14_tables_csv_and_page_label_the_figures() {
    let p = pod();
    let mut args = os(&["scan"]);
    args.extend(luns(p));
    args.extend(maps(p));
    let out = deltascope_as_user(&args);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "top delta",
        "chain delta",
        "all deltas",
        "machines",
        "machine (VM)",
        "vdi-03-000002.vmdk",
        "snapshot",
        "not_referenced",
        "unreadable",
        "datastore warning (extent_is_a_disk)",
        "datastore warning (renamed_copy)",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    let mut args = os(&["scan", "--csv"]);
    args.extend(luns(p));
    args.extend(maps(p));
    let out = deltascope_as_user(&args);
    let csv = String::from_utf8(out.stdout).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with(
            ",lock_events_per_hour,vm,role,chain_delta_bytes,refresh_every_days,lun_full_at,lun_full_at_worst,error"
        ),
        "{header}"
    );
    assert_eq!(csv.lines().count(), 1 + expected_disks().len());
    assert!(
        csv.lines()
            .any(|l| l.contains("vdi-03-000002.vmdk") && l.contains(",vdi-03,snapshot,"))
    );

    // ds1 alone: vdi-01's persistent disk on ds2 is named by its VM, not scanned as a disk
    // of ds1.
    let mut args = os(&["scan", "--json"]);
    args.push(p.join("ds1").into());
    args.extend(maps(p));
    let r: Value = serde_json::from_slice(&deltascope_as_user(&args).stdout).unwrap();
    let persistent = p.join("ds2/vdi-01/vdi-01-vdm-user-disk-D-1f2e.vmdk");
    assert!(
        r["vms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| !v["path"].as_str().unwrap().contains("/ds2/")),
        "a disk outside the folder scanned was scanned"
    );
    let vdi01 = r["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "vdi-01")
        .unwrap();
    assert!(
        vdi01["disks"]
            .as_array()
            .unwrap()
            .contains(&Value::from(persistent.display().to_string())),
        "{vdi01}"
    );

    let t = tempdir();
    let page = t.path().join("pod.html");
    let mut args = os(&["report"]);
    args.push(p.join("ds1").into());
    args.extend(maps(p));
    args.extend(os(&["-o"]));
    args.push(page.clone().into());
    let out = deltascope_as_user(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    for want in [
        "Top delta",
        "Chain delta",
        "All deltas",
        "Machines (VMs by .vmx)",
        "Orphans",
        "Datastore warnings",
        "extent_is_a_disk",
    ] {
        assert!(html.contains(want), "{want} missing from the page");
    }
}

/// Issue 14: `scan emptydir` exited 0 with an empty table.
#[test]
fn issue_14_an_empty_folder_is_an_error() {
    let e = fails(1, [OsStr::new("scan"), pod().join("ds1/empty").as_os_str()]);
    assert!(e.contains("no VMDK files under"), "{e}");
    let t = tempdir();
    std::fs::write(t.path().join("notes.txt"), "no disk here").unwrap();
    let e = fails(
        1,
        [
            OsStr::new("lun"),
            t.path().as_os_str(),
            OsStr::new("--since"),
            OsStr::new("2026-01-01"),
        ],
    );
    assert!(e.contains("no VMDK files under"), "{e}");
}

/// Issue 14: folders deeper than the walk's limit were skipped without a word.
#[test]
fn issue_14_depth_past_the_limit_is_a_warning() {
    let t = tempdir();
    let flat = "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"custom\"\nRW 2048 ZERO\n";
    std::fs::write(t.path().join("top.vmdk"), flat).unwrap();
    let mut deep = t.path().to_path_buf();
    for i in 0..40 {
        deep.push(format!("d{i}"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("deep.vmdk"), flat).unwrap();
    let r: Value = serde_json::from_str(&ok([
        OsStr::new("scan"),
        OsStr::new("--json"),
        t.path().as_os_str(),
    ]))
    .unwrap();
    assert_eq!(r["vms"].as_array().unwrap().len(), 1);
    let w = r["warnings"].as_array().unwrap();
    assert!(
        w.iter()
            .any(|x| x["kind"] == "depth_limit"
                && x["message"].as_str().unwrap().contains("d31/d32")),
        "{w:?}"
    );
    // --strict makes a datastore warning fail the run (the report is still printed).
    let out = run([
        OsStr::new("scan"),
        OsStr::new("--strict"),
        t.path().as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--strict"));
}

/// Issue 14: a renamed copy of a monolithicSparse delta hid the live disk, and a decoy that
/// names other disks' files as extents hid them all (exit 0, no warning). Reproduced on their
/// own, without .vmx files.
#[test]
fn issue_14_claims_do_not_hide_disks() {
    let p = pod();
    let t = tempdir();
    let vm = t.path().join("vm");
    std::fs::create_dir(&vm).unwrap();
    for f in ["ws-vm.vmdk", "ws-vm-000001.vmdk"] {
        std::fs::copy(p.join("ds1/ws-vm").join(f), vm.join(f)).unwrap();
    }
    std::fs::copy(
        p.join("ds1/ws-vm/ws-vm-000001.vmdk"),
        vm.join("ws-vm-000001-copy.vmdk"),
    )
    .unwrap();
    std::fs::write(
        t.path().join("decoy.vmdk"),
        "# Disk DescriptorFile\nversion=1\nCID=0badc0de\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 1 FLAT \"vm/ws-vm-000001.vmdk\" 0\nRW 1 FLAT \"vm/ws-vm-000001-copy.vmdk\" 0\n",
    )
    .unwrap();
    let r: Value = serde_json::from_str(&ok([
        OsStr::new("scan"),
        OsStr::new("--json"),
        t.path().as_os_str(),
    ]))
    .unwrap();
    let tops: Vec<String> = r["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            Path::new(v["path"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        tops,
        ["decoy.vmdk", "ws-vm-000001-copy.vmdk", "ws-vm-000001.vmdk"]
    );
    let k = kinds(&r["warnings"]);
    assert_eq!(
        k.iter().filter(|k| *k == "extent_is_a_disk").count(),
        2,
        "{k:?}"
    );
    assert!(k.contains(&"renamed_copy".to_string()), "{k:?}");
    // Without .vmx files nothing can be called unused.
    assert_eq!(r["orphans"].as_array().unwrap().len(), 0);
    assert_eq!(r["machines"].as_array().unwrap().len(), 0);

    // A descriptor in another folder that names the live delta as its parent takes it out
    // of the list of disks (it becomes a layer of that chain): a parent_claim warning says so.
    let thief = t.path().join("thief");
    std::fs::create_dir(&thief).unwrap();
    std::fs::write(
        thief.join("thief.vmdk"),
        "# Disk DescriptorFile\nversion=1\nCID=0badc0de\nparentCID=12345678\ncreateType=\"custom\"\nparentFileNameHint=\"../vm/ws-vm-000001.vmdk\"\nRW 32768 ZERO\n",
    )
    .unwrap();
    let out = run([
        OsStr::new("scan"),
        OsStr::new("--json"),
        t.path().as_os_str(),
    ]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let claims: Vec<&Value> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["kind"] == "parent_claim")
        .collect();
    assert_eq!(claims.len(), 1, "{r}");
    let m = claims[0]["message"].as_str().unwrap();
    assert!(
        m.contains("thief/thief.vmdk")
            && m.contains("vm/ws-vm-000001.vmdk")
            && m.contains("parentCID 12345678"),
        "{m}"
    );
    std::fs::remove_dir_all(&thief).unwrap();

    // qemu's split extents reserve an empty descriptor area: extent data, not disks.
    let split = tempdir();
    sh(Command::new("qemu-img")
        .args([
            "create",
            "-q",
            "-f",
            "vmdk",
            "-o",
            "subformat=twoGbMaxExtentSparse",
        ])
        .arg(split.path().join("d.vmdk"))
        .arg("2100M"));
    let r: Value = serde_json::from_str(&ok([
        OsStr::new("scan"),
        OsStr::new("--json"),
        split.path().as_os_str(),
    ]))
    .unwrap();
    let vms = r["vms"].as_array().unwrap();
    assert_eq!(vms.len(), 1, "{vms:?}");
    assert!(vms[0]["path"].as_str().unwrap().ends_with("/d.vmdk"));
    assert_eq!(r["warnings"].as_array().unwrap().len(), 0, "{r}");
}

/// Single-disk commands: the fallback warns, `--map` does not, a wrong `--map` and a hint
/// found nowhere are errors that quote the hint and say where they looked, and two
/// candidates are an error that asks for `--map`.
#[test]
fn issue_14_parent_errors_quote_the_hint_and_where_they_looked() {
    let p = pod();
    let clone = p.join("ds1/vdi-01/vdi-01.vmdk");
    let replica = p.join("ds1/replica-0a1b/replica-0a1b.vmdk");
    let out = run([OsStr::new("info"), OsStr::new("--json"), clone.as_os_str()]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning:") && stderr.contains(&format!("\"{REPLICA_HINT}\"")),
        "{stderr}"
    );
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["chain"][0]["path"], replica.display().to_string());
    assert_eq!(info["chain"][1]["parent_hint"], REPLICA_HINT);
    assert_eq!(kinds(&info["chain"][1]["warnings"]), ["parent_remapped"]);
    // --strict refuses the guess.
    let e = fails(
        1,
        [
            OsStr::new("info"),
            OsStr::new("--strict"),
            clone.as_os_str(),
        ],
    );
    assert!(e.contains("--strict"), "{e}");

    let mut args = os(&["info"]);
    args.push(clone.clone().into());
    args.extend(maps(p));
    let out = run(&args);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));

    let t = tempdir();
    let wrong = t.path().join("wrong");
    std::fs::create_dir(&wrong).unwrap();
    let e = fails(
        1,
        [
            OsStr::new("info"),
            clone.as_os_str(),
            OsStr::new("--map"),
            OsString::from(format!("{UUID1}={}", wrong.display())).as_os_str(),
        ],
    );
    assert!(
        e.contains(&format!("parentFileNameHint names \"{REPLICA_HINT}\""))
            && e.contains(
                &wrong
                    .join("replica-0a1b/replica-0a1b.vmdk")
                    .display()
                    .to_string()
            ),
        "{e}"
    );
    let e = fails(
        2,
        [
            OsStr::new("info"),
            clone.as_os_str(),
            OsStr::new("--map"),
            OsStr::new("relative=/tmp"),
        ],
    );
    assert!(e.contains("--map"), "{e}");

    // The clone alone in a folder of its own: found nowhere; every place looked is named.
    let lone = t.path().join("a/b");
    std::fs::create_dir_all(&lone).unwrap();
    for f in ["vdi-01.vmdk", "vdi-01-delta.vmdk"] {
        std::fs::copy(p.join("ds1/vdi-01").join(f), lone.join(f)).unwrap();
    }
    let e = fails(
        1,
        [OsStr::new("scan"), lone.join("vdi-01.vmdk").as_os_str()],
    );
    for want in [
        format!("parentFileNameHint names \"{REPLICA_HINT}\""),
        REPLICA_HINT.to_string(),
        lone.join("replica-0a1b.vmdk").display().to_string(),
        t.path()
            .join("a/replica-0a1b/replica-0a1b.vmdk")
            .display()
            .to_string(),
        "--map".to_string(),
    ] {
        assert!(e.contains(&want), "{want} missing: {e}");
    }

    // Two datastores hold a replica of that name: an error listing both, asking for --map.
    let x = t.path().join("x");
    let y = t.path().join("y");
    for root in [&x, &y] {
        std::fs::create_dir_all(root.join("replica-0a1b")).unwrap();
        for f in ["replica-0a1b.vmdk", "replica-0a1b-flat.vmdk"] {
            std::fs::copy(
                p.join("ds1/replica-0a1b").join(f),
                root.join("replica-0a1b").join(f),
            )
            .unwrap();
        }
    }
    std::fs::create_dir_all(x.join("vdi-01")).unwrap();
    for f in ["vdi-01.vmdk", "vdi-01-delta.vmdk"] {
        std::fs::copy(p.join("ds1/vdi-01").join(f), x.join("vdi-01").join(f)).unwrap();
    }
    let out = run([
        OsStr::new("scan"),
        OsStr::new("--json"),
        OsStr::new("--lun"),
        OsString::from(format!("x={}", x.display())).as_os_str(),
        OsStr::new("--lun"),
        OsString::from(format!("y={}", y.display())).as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&Value> = r["vms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["status"] == "error")
        .collect();
    assert_eq!(failed.len(), 1);
    let e = failed[0]["error"].as_str().unwrap();
    assert!(
        e.contains("2 files could be it")
            && e.contains(
                &x.canonicalize()
                    .unwrap()
                    .join("replica-0a1b/replica-0a1b.vmdk")
                    .display()
                    .to_string()
            )
            && e.contains(
                &y.canonicalize()
                    .unwrap()
                    .join("replica-0a1b/replica-0a1b.vmdk")
                    .display()
                    .to_string()
            )
            && e.contains("--map"),
        "{e}"
    );
}
