//! The verdict, the remedies and the base audit of `scan` (issue 17), on the committed NTFS
//! chains of `testdata/make-ntfs.sh` (`churn/` is the walkthrough's chain, docs/WALKTHROUGH.md;
//! `desktop/` holds a page file, temporary files and browser caches).
//! Oracles: `blame --json`'s groups summed by this test (byte for byte), the generator's
//! oracle.json, and real runs of the remedies with other tools: `ntfswipe` zeroes a copy's
//! free space and `qemu-img convert` shrinks it; the returned grains are counted by
//! `qemu-img map`; zero blocks are counted in `qemu-img convert -O raw` output.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::*;

const CHAINS: [&str; 4] = ["blame", "churn", "dirty", "desktop"];
const GRAIN: u64 = 65536;

/// Decompresses one committed chain into `dir/chain`; returns the delta.
fn unpack(chain: &str, dir: &Path) -> PathBuf {
    unpack_ntfs(chain, &dir.join(chain))
}

fn scan(path: &Path, extra: &[&OsStr]) -> Value {
    let mut args: Vec<&OsStr> = vec![OsStr::new("scan"), OsStr::new("--json")];
    args.extend_from_slice(extra);
    args.push(path.as_os_str());
    json(&args)
}

fn remedy<'a>(scan: &'a Value, name: &str) -> &'a Value {
    scan["remedies"]
        .as_array()
        .expect("remedies")
        .iter()
        .find(|r| r["remedy"] == name)
        .unwrap_or_else(|| panic!("no remedy {name}: {scan:#}"))
}

fn part(remedy: &Value, name: &str) -> u64 {
    remedy["parts"]
        .as_array()
        .expect("parts")
        .iter()
        .find(|p| p["part"] == name)
        .and_then(|p| p["bytes"].as_u64())
        .unwrap_or_else(|| panic!("no part {name}: {remedy:#}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not a byte count: {v}"))
}

/// The test's own reading of its rules file: `/new/*.bin` and `/docs`.
fn disposable_by_test(path: &str) -> Option<&'static str> {
    if let Some(rest) = path.strip_prefix("/new/")
        && rest.ends_with(".bin")
        && !rest.contains('/')
    {
        return Some("/new/*.bin");
    }
    (path == "/docs" || path.starts_with("/docs/") || path.starts_with("/docs:")).then_some("/docs")
}

#[test]
fn verdict_and_remedies_agree_with_blames_groups_byte_for_byte() {
    let dir = tempdir();
    let rules = dir.path().join("rules.txt");
    std::fs::write(&rules, "# the test's rules\n/new/*.bin\n\\docs\n").unwrap();
    let o: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("testdata/ntfs/oracle.json")).unwrap(),
    )
    .unwrap();
    for chain in CHAINS {
        let delta = unpack(chain, dir.path());
        let s = scan(
            &delta,
            &[OsStr::new("--disposable-rules"), rules.as_os_str()],
        );
        let b = json(&[OsStr::new("blame"), OsStr::new("--json"), delta.as_os_str()]);
        let groups = b["groups"].as_array().expect("groups");
        let top = s["chain"].as_array().unwrap().last().unwrap();
        let a = u(&top["allocated_bytes"]);

        // refresh: every byte the top holds, what blame's groups sum to.
        assert_eq!(u(&remedy(&s, "refresh")["bytes"]), a, "{chain}");
        assert_eq!(u(&b["allocated_bytes"]), a, "{chain}");
        assert_eq!(
            groups.iter().map(|g| u(&g["bytes"])).sum::<u64>(),
            a,
            "{chain}"
        );

        // zero_free_and_shrink: its parts are blame's free_now group and zero blocks; the
        // grains it returns are a whole number of grains within them.
        let free_now: u64 = groups
            .iter()
            .filter(|g| g["kind"] == "free_now")
            .map(|g| u(&g["bytes"]))
            .sum();
        let zeroed: u64 = groups.iter().map(|g| u(&g["classes"]["zeroed"])).sum();
        let z = remedy(&s, "zero_free_and_shrink");
        assert_eq!(part(z, "free_now"), free_now, "{chain}");
        assert_eq!(part(z, "zeroed"), zeroed, "{chain}");
        let zb = u(&z["bytes"]);
        assert_eq!(zb % GRAIN, 0, "{chain}: whole grains");
        assert!(
            zb <= free_now + zeroed + GRAIN,
            "{chain}: {zb} > {free_now} + {zeroed}"
        );

        // disposable_disk: the files the rules match, per rule.
        let d = remedy(&s, "disposable_disk");
        let mut want: std::collections::BTreeMap<&str, u64> = Default::default();
        for g in groups.iter().filter(|g| g["kind"] == "file") {
            if let Some(rule) = disposable_by_test(g["path"].as_str().unwrap()) {
                *want.entry(rule).or_default() += u(&g["bytes"]);
            }
        }
        assert_eq!(u(&d["bytes"]), want.values().sum::<u64>(), "{chain}");
        for (rule, bytes) in &want {
            assert_eq!(part(d, rule), *bytes, "{chain}: {rule}");
        }
        assert_eq!(d["parts"].as_array().unwrap().len(), want.len(), "{chain}");

        // reuse_instead_of_fresh: min(live growth into free space, free_now).
        let live: u64 = groups
            .iter()
            .filter(|g| g["kind"] != "free_now")
            .map(|g| u(&g["classes"]["fresh"]) + u(&g["overwritten_split"]["parent_free_space"]))
            .sum();
        let r = remedy(&s, "reuse_instead_of_fresh");
        assert_eq!(part(r, "live_growth"), live, "{chain}");
        assert_eq!(part(r, "free_now"), free_now, "{chain}");
        assert_eq!(u(&r["bytes"]), live.min(free_now), "{chain}");

        // The verdict names the largest group with its bytes, and the pattern of the classes.
        let v = &s["verdict"];
        let text = v["text"].as_str().unwrap();
        let first = &groups[0];
        let name = match first["kind"].as_str().unwrap() {
            "free_now" => "files written then deleted".to_string(),
            "metadata" => format!("NTFS metadata {}", first["path"].as_str().unwrap()),
            _ => first["path"].as_str().unwrap().to_string(),
        };
        assert!(
            text.contains(&format!("Largest causes: {name} ")),
            "{chain}: {text}"
        );
        let c = &top["classes"];
        let pattern = if u(&c["fresh"]) * 10 >= a * 6 {
            "fresh_first"
        } else if u(&c["overwritten"]) * 10 >= a * 6 {
            "reuse"
        } else {
            "mixed"
        };
        assert_eq!(v["growth_pattern"], pattern, "{chain}");
        assert_eq!(v["weeks_to_ceiling"], Value::Null, "{chain}: no history");
        assert!(text.contains("record scans over time"), "{chain}: {text}");

        // The base audit: the deleted file the dirty chain's base still holds in its free
        // space (oracle.json), nothing in the others.
        let dirty = if chain == "dirty" {
            u(&o["dirty"]["base_deleted_files"]["/old/junk.bin"])
        } else {
            0
        };
        assert_eq!(u(&s["base_audit"]["dirty_free_bytes"]), dirty, "{chain}");
    }
}

/// The built-in rules on a delta holding what a desktop writes: the page and hibernation
/// files, system and user temporary files, Chrome's and Firefox's caches. Each rule's part is
/// the bytes the generator wrote for its files (oracle.json), and blame's group of each file
/// agrees byte for byte; a document and a folder named `Temp2` stay out. A rules file
/// replaces the built-in rules.
#[test]
fn the_built_in_rules_take_a_desktops_page_file_temporary_files_and_caches() {
    let dir = tempdir();
    let o: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("testdata/ntfs/oracle.json")).unwrap(),
    )
    .unwrap();
    let files = |key: &str| -> Vec<(String, u64)> {
        o["desktop"][key]
            .as_object()
            .expect("oracle files")
            .iter()
            .map(|(k, v)| (k.clone(), u(v)))
            .collect()
    };
    let (taken, kept) = (files("disposable_files"), files("kept_files"));
    let delta = unpack("desktop", dir.path());
    let s = scan(&delta, &[]);
    let b = json(&[OsStr::new("blame"), OsStr::new("--json"), delta.as_os_str()]);
    let group = |path: &str| -> u64 {
        b["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .find(|g| g["path"] == path)
            .map(|g| u(&g["bytes"]))
            .unwrap_or_else(|| panic!("no blame group {path}"))
    };
    // The rule each file falls under, as the docs list them.
    let rule_of = |path: &str| -> &str {
        [
            ("/pagefile.sys", "/pagefile.sys"),
            ("/hiberfil.sys", "/hiberfil.sys"),
            ("/Windows/Temp/", "/Windows/Temp"),
            (
                "/Users/ann/AppData/Local/Temp/",
                "/Users/*/AppData/Local/Temp",
            ),
            (
                "/Users/ann/AppData/Local/Google/Chrome/User Data/Default/Cache/",
                "/Users/*/AppData/Local/Google/Chrome/User Data/*/Cache",
            ),
            (
                "/Users/ann/AppData/Local/Mozilla/Firefox/Profiles/x1y2z3.default/cache2/",
                "/Users/*/AppData/Local/Mozilla/Firefox/Profiles/*/cache2",
            ),
        ]
        .into_iter()
        .find(|(prefix, _)| path.starts_with(prefix))
        .map(|(_, rule)| rule)
        .unwrap_or_else(|| panic!("no rule for {path}"))
    };
    let d = remedy(&s, "disposable_disk");
    let mut want: std::collections::BTreeMap<&str, u64> = Default::default();
    for (path, bytes) in &taken {
        assert_eq!(group(path), *bytes, "blame's group of {path}");
        *want.entry(rule_of(path)).or_default() += bytes;
    }
    for (rule, bytes) in &want {
        assert_eq!(part(d, rule), *bytes, "{rule}");
    }
    assert_eq!(d["parts"].as_array().unwrap().len(), want.len(), "{d:#}");
    let total: u64 = taken.iter().map(|(_, b)| b).sum();
    assert_eq!(u(&d["bytes"]), total, "{d:#}");
    // The files no rule matches are in the delta, and not in the remedy.
    for (path, bytes) in &kept {
        assert_eq!(group(path), *bytes, "blame's group of {path}");
    }
    assert!(!d.to_string().contains("Temp2"), "{d:#}");
    let text = s["verdict"]["text"].as_str().unwrap();
    assert!(
        text.contains(
            "A disposable disk for page file, temporary files and caches would return 4.5 MiB"
        ),
        "{text}"
    );
    // A rules file replaces the built-in rules: `Temp*` takes Temp2 as well, and nothing else.
    let rules = dir.path().join("rules.txt");
    std::fs::write(&rules, "\\Users\\*\\AppData\\Local\\Temp*\n").unwrap();
    let s = scan(
        &delta,
        &[OsStr::new("--disposable-rules"), rules.as_os_str()],
    );
    let d = remedy(&s, "disposable_disk");
    assert_eq!(
        u(&d["bytes"]),
        group("/Users/ann/AppData/Local/Temp/install.tmp")
            + group("/Users/ann/AppData/Local/Temp2/keep.bin"),
        "{d:#}"
    );
}

#[test]
fn the_walkthrough_chain_is_the_blogs_pattern() {
    // docs/WALKTHROUGH.md: ten rounds of a 4 MiB file created and deleted. Everything fresh
    // is free now: no live growth that reused space could have saved, and zeroing the free
    // space returns the rounds' 4 MiB (64 grains).
    let dir = tempdir();
    let s = scan(&unpack("churn", dir.path()), &[]);
    assert_eq!(s["verdict"]["growth_pattern"], "fresh_first");
    assert_eq!(u(&remedy(&s, "reuse_instead_of_fresh")["bytes"]), 0);
    assert_eq!(u(&remedy(&s, "zero_free_and_shrink")["bytes"]), 64 * GRAIN);
    assert_eq!(u(&remedy(&s, "disposable_disk")["bytes"]), 0);
    let text = s["verdict"]["text"].as_str().unwrap();
    assert!(
        text.contains("Largest causes: files written then deleted 4.1 MiB"),
        "{text}"
    );
    assert!(
        text.contains("Zeroing free space and shrinking would return 4.0 MiB now"),
        "{text}"
    );
}

/// Partition 1 of the MBR of `disk` (a raw image): first byte and length.
fn partition(disk: &Path) -> (u64, u64) {
    let mut mbr = [0u8; 512];
    std::fs::File::open(disk)
        .and_then(|mut f| f.read_exact(&mut mbr))
        .expect("read MBR");
    let le = |at: usize| u64::from(u32::from_le_bytes(mbr[at..at + 4].try_into().unwrap()));
    (le(454) * 512, le(458) * 512)
}

/// Zeroes the free clusters of the NTFS volume of raw disk `disk` in place, with `ntfswipe`
/// on a copy of the partition written back.
fn wipe_free_space(disk: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let (start, len) = partition(disk);
    let part = disk.with_extension("part");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(disk)
        .expect("open raw");
    f.seek(SeekFrom::Start(start)).unwrap();
    let mut data = vec![0u8; len as usize];
    f.read_exact(&mut data).unwrap();
    std::fs::write(&part, &data).unwrap();
    sh(Command::new("ntfswipe")
        .args(["--unused", "--force", "--quiet"])
        .arg(&part));
    let wiped = std::fs::read(&part).unwrap();
    f.seek(SeekFrom::Start(start)).unwrap();
    f.write_all(&wiped).unwrap();
}

/// The grains `qemu-img map` says layer `vmdk` alone stores data for (not zero entries).
fn data_grains(vmdk: &Path) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    for e in qemu_map_layer(vmdk) {
        if e["present"] == true && e["data"] == true {
            let (s, l) = (u(&e["start"]), u(&e["length"]));
            out.extend((s..s + l).step_by(GRAIN as usize));
        }
    }
    out
}

#[test]
fn zero_free_and_shrink_is_what_a_real_zeroing_and_shrink_returns() {
    require("qemu-img");
    require("ntfswipe");
    let dir = tempdir();
    for chain in CHAINS {
        let delta = unpack(chain, dir.path());
        let d = delta.parent().unwrap();
        let predicted = u(&remedy(&scan(&delta, &[]), "zero_free_and_shrink")["bytes"]);
        // The guest zeroes its free space: on the disk the chain shows, ntfswipe writes zeros
        // over every cluster $Bitmap marks free. The delta (a copy) takes the changed
        // clusters: a qcow2 overlay of the zeroed disk rebased (safe mode) onto the copy holds
        // exactly them, and `commit` writes them into it.
        let copy = d.join("copy.vmdk");
        std::fs::copy(&delta, &copy).unwrap();
        let raw = d.join("zeroed.raw");
        sh(Command::new("qemu-img")
            .args(["convert", "-O", "raw"])
            .arg(&delta)
            .arg(&raw));
        wipe_free_space(&raw);
        let wip = d.join("wip.qcow2");
        sh(Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(&raw)
            .arg(&wip));
        sh(Command::new("qemu-img")
            .args(["rebase", "-q", "-f", "qcow2", "-F", "vmdk", "-b"])
            .arg(&copy)
            .arg(&wip));
        sh(Command::new("qemu-img").args(["commit", "-q"]).arg(&wip));
        // Shrink: convert the delta over its base, turning whole zero grains into zero
        // entries (zeroed_grain) that hold no data.
        let shrunk = d.join("shrunk.vmdk");
        sh(Command::new("qemu-img")
            .args([
                "convert",
                "-O",
                "vmdk",
                "-o",
                "zeroed_grain=on",
                "-F",
                "vmdk",
                "-B",
            ])
            .arg(d.join("base.vmdk"))
            .arg(&copy)
            .arg(&shrunk));
        // The shrunk delta shows the zeroed disk.
        sh(Command::new("qemu-img")
            .args(["compare", "-q", "-f", "raw", "-F", "vmdk"])
            .arg(&raw)
            .arg(&shrunk));
        let before = data_grains(&delta);
        let after = data_grains(&shrunk);
        let returned = before.difference(&after).count() as u64 * GRAIN;
        assert_eq!(
            returned, predicted,
            "{chain}: qemu-img returned {returned} bytes, scan predicted {predicted}"
        );
        assert!(
            after.is_subset(&before),
            "{chain}: zeroing allocated new data grains"
        );
    }
}

/// Bytes of whole zero 4 KiB blocks in a raw image.
fn zero_blocks(raw: &Path) -> u64 {
    let data = std::fs::read(raw).unwrap();
    data.chunks(4096)
        .filter(|b| b.iter().all(|&x| x == 0))
        .map(|b| b.len() as u64)
        .sum()
}

#[test]
fn the_base_audit_is_what_a_wipe_and_a_new_clone_show() {
    require("qemu-img");
    require("ntfswipe");
    let dir = tempdir();
    for chain in ["blame", "dirty"] {
        let delta = unpack(chain, dir.path());
        let d = delta.parent().unwrap();
        let base = d.join("base.vmdk");
        let audit = scan(&delta, &[])["base_audit"].clone();
        // Scanning the base alone audits the same base; a base is no delta.
        let alone = scan(&base, &[]);
        assert_eq!(alone["base_audit"], audit, "{chain}");
        assert_eq!(alone["verdict"]["growth_pattern"], "none");
        for r in alone["remedies"].as_array().unwrap() {
            assert_eq!(r["bytes"], Value::Null, "{chain}: {r}");
        }
        // Never used: the zero 4 KiB blocks of the base, and what a new, empty clone of it
        // can grow into (its expected ceiling).
        let raw = d.join("base.raw");
        sh(Command::new("qemu-img")
            .args(["convert", "-O", "raw"])
            .arg(&base)
            .arg(&raw));
        assert_eq!(u(&audit["never_used_bytes"]), zero_blocks(&raw), "{chain}");
        let clone = d.join("clone.vmdk");
        sh(Command::new("qemu-img")
            .args(["create", "-q", "-f", "vmdk", "-F", "vmdk", "-b"])
            .arg(&base)
            .arg(&clone));
        let c = scan(&clone, &[]);
        assert_eq!(
            u(&c["ceiling"]["expected_bytes"]),
            u(&audit["never_used_bytes"]),
            "{chain}"
        );
        // Dirty free space: the bytes ntfswipe changes when it zeroes the free clusters.
        let before = std::fs::read(&raw).unwrap();
        wipe_free_space(&raw);
        let after = std::fs::read(&raw).unwrap();
        let changed: u64 = before
            .chunks(4096)
            .zip(after.chunks(4096))
            .filter(|(x, y)| x != y)
            .map(|(x, _)| x.len() as u64)
            .sum();
        assert_eq!(u(&audit["dirty_free_bytes"]), changed, "{chain}");
        assert!(u(&audit["free_bytes"]) >= changed);
    }
}

#[test]
fn weeks_to_the_ceiling_follow_the_recorded_rate() {
    let dir = tempdir();
    let delta = unpack("blame", dir.path());
    let db = dir.path().join("history.sqlite");
    // Scanning with a store that does not exist reads nothing and creates nothing.
    let s = scan(&delta, &[OsStr::new("--db"), db.as_os_str()]);
    assert_eq!(s["verdict"]["bytes_per_week"], Value::Null);
    assert!(!db.exists(), "a scan created the history store");
    // 1, 2, 3 MiB a week apart: 1 MiB per week.
    let csv = dir.path().join("points.csv");
    std::fs::write(
        &csv,
        "timestamp,disk,bytes\n\
         2026-10-05T08:00:00Z,vdi-07,1048576\n\
         2026-10-12T08:00:00Z,vdi-07,2097152\n\
         2026-10-19T08:00:00Z,vdi-07,3145728\n",
    )
    .unwrap();
    ok([
        OsStr::new("import"),
        csv.as_os_str(),
        OsStr::new("--db"),
        db.as_os_str(),
    ]);
    let s = scan(
        &delta,
        &[
            OsStr::new("--db"),
            db.as_os_str(),
            OsStr::new("--disk"),
            OsStr::new("vdi-07"),
        ],
    );
    let v = &s["verdict"];
    assert_eq!(v["bytes_per_week"].as_f64(), Some(1048576.0));
    // (expected ceiling - allocated) / 1 MiB: (47603712 - 7798784) / 1048576 = 37.96 weeks,
    // 38.0 to one decimal.
    assert_eq!(u(&s["ceiling"]["expected_bytes"]), 47603712);
    assert_eq!(
        u(&s["chain"].as_array().unwrap().last().unwrap()["allocated_bytes"]),
        7798784
    );
    assert_eq!(v["weeks_to_ceiling"].as_f64(), Some(38.0));
    let text = v["text"].as_str().unwrap();
    assert!(
        text.contains("at 1.0 MiB/week, its recorded rate: about 38 weeks."),
        "{text}"
    );
}

#[test]
fn rules_files_and_no_guest() {
    let dir = tempdir();
    let delta = unpack("blame", dir.path());
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "/pagefile.sys\n/a/../b\n").unwrap();
    let e = fails(
        2,
        [
            OsStr::new("scan"),
            OsStr::new("--disposable-rules"),
            bad.as_os_str(),
            delta.as_os_str(),
        ],
    );
    assert!(e.contains("bad.txt") && e.contains("line 2"), "{e}");
    let missing = dir.path().join("missing.txt");
    let e = fails(
        1,
        [
            OsStr::new("scan"),
            OsStr::new("--disposable-rules"),
            missing.as_os_str(),
            delta.as_os_str(),
        ],
    );
    assert!(e.contains("missing.txt"), "{e}");
    // The rules are for one disk's remedies: a datastore scan refuses them.
    let e = fails(
        2,
        [
            OsStr::new("scan"),
            OsStr::new("--disposable-rules"),
            bad.as_os_str(),
            delta.parent().unwrap().as_os_str(),
        ],
    );
    assert!(e.contains("--disposable-rules is for"), "{e}");
    // Without the guest: the classes are the same, the guest's remedies are null and say why.
    let with = scan(&delta, &[]);
    let without = scan(&delta, &[OsStr::new("--no-guest")]);
    assert_eq!(with["chain"], without["chain"]);
    assert_eq!(with["ntfs_overwritten"], without["ntfs_overwritten"]);
    assert_eq!(without["base_audit"], Value::Null);
    assert_eq!(
        u(&remedy(&without, "refresh")["bytes"]),
        u(&remedy(&with, "refresh")["bytes"])
    );
    for name in [
        "zero_free_and_shrink",
        "disposable_disk",
        "reuse_instead_of_fresh",
    ] {
        let r = remedy(&without, name);
        assert_eq!(r["bytes"], Value::Null, "{name}");
        assert!(r["basis"].as_str().unwrap().contains("not read"), "{r}");
    }
}
