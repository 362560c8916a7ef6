//! The corrupt-image corpus: for every format (hosted sparse, streamOptimized, COWD, SESparse,
//! flat, descriptors), small images built here byte by byte, then broken one way each. Every
//! broken image must make `info`, `map` and `scan` exit 1 with a message naming the file, the
//! structure and its offset, without a panic, inside a 1 GiB address-space limit (so no
//! allocation is sized by a count the file has not been checked to hold). hostile.rs holds
//! the cases made from qemu images; this module needs no qemu.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

const S: usize = 512;

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Pads `b` with zeros to a whole number of sectors.
fn pad(mut b: Vec<u8>) -> Vec<u8> {
    b.resize(b.len().div_ceil(S) * S, 0);
    b
}

fn descriptor(cid: u32, parent: Option<(&str, u32)>, create_type: &str, extents: &str) -> String {
    let (hint, pcid) = match parent {
        Some((h, c)) => (format!("parentFileNameHint=\"{h}\"\n"), format!("{c:08x}")),
        None => (String::new(), "ffffffff".into()),
    };
    format!(
        "# Disk DescriptorFile\nversion=1\nCID={cid:08x}\nparentCID={pcid}\ncreateType=\"{create_type}\"\n{hint}{extents}"
    )
}

/// Field offsets of the KDMV header (FORMATS.md 2.1).
mod kdmv_at {
    pub const VERSION: usize = 4;
    pub const CAPACITY: usize = 12;
    pub const GRAIN: usize = 20;
    pub const GTES: usize = 44;
    pub const GD: usize = 56;
}

fn kdmv_header(version: u32, flags: u32, gd: u64, overhead: u64, compress: u16) -> Vec<u8> {
    let mut h = vec![0u8; S];
    h[..4].copy_from_slice(b"KDMV");
    put32(&mut h, 4, version);
    put32(&mut h, 8, flags);
    put64(&mut h, 12, 2048); // capacity: 1 MiB
    put64(&mut h, 20, 8); // 4 KiB grains
    put64(&mut h, 28, 1); // descriptor at sector 1
    put64(&mut h, 36, 2); // two sectors long
    put32(&mut h, 44, 64); // 64 entries per table: 256 KiB per table, 4 tables
    put64(&mut h, 56, gd);
    put64(&mut h, 64, overhead);
    h[73..77].copy_from_slice(b"\n \r\n");
    h[77..79].copy_from_slice(&compress.to_le_bytes());
    h
}

/// A 1 MiB monolithicSparse disk, by sector: 0 header, 1-2 descriptor, 3 grain directory
/// (tables at 4 and 5), 4 table 0 (grain at 6, a zeroed grain, grain at 14), 5 table 2
/// (its entry 1 at 22), grains from 6 (overHead) to the end at 30.
fn kdmv(cid: u32, parent: Option<(&str, u32)>) -> Vec<u8> {
    let mut f = kdmv_header(2, 0x7, 3, 6, 0);
    let d = descriptor(
        cid,
        parent,
        "monolithicSparse",
        "RW 2048 SPARSE \"x.vmdk\"\n",
    );
    let mut d = d.into_bytes();
    d.resize(2 * S, 0);
    f.extend_from_slice(&d);
    let mut gd = vec![0u8; S];
    put32(&mut gd, 0, 4);
    put32(&mut gd, 8, 5);
    f.extend_from_slice(&gd);
    let mut gt0 = vec![0u8; S];
    put32(&mut gt0, 0, 6);
    put32(&mut gt0, 4, 1);
    put32(&mut gt0, 8, 14);
    f.extend_from_slice(&gt0);
    let mut gt2 = vec![0u8; S];
    put32(&mut gt2, 4, 22);
    f.extend_from_slice(&gt2);
    for b in [0x11u8, 0x22, 0x33] {
        f.extend_from_slice(&[b; 4096]);
    }
    assert_eq!(f.len(), 30 * S);
    f
}

/// A 1 MiB streamOptimized disk: header (GD at the end), descriptor, three compressed grains
/// with markers, two grain tables, the grain directory, footer and end-of-stream markers.
/// Returns the file and the sector of the footer copy of the header.
fn stream() -> (Vec<u8>, usize) {
    let mut f = kdmv_header(3, 0x3_0001, u64::MAX, 3, 1);
    let d = descriptor(0x51, None, "streamOptimized", "RW 2048 SPARSE \"x.vmdk\"\n");
    let mut d = d.into_bytes();
    d.resize(2 * S, 0);
    f.extend_from_slice(&d);
    let mut entries = std::collections::BTreeMap::new();
    for (g, byte) in [(0u64, 0x44u8), (1, 0x55), (130, 0x66)] {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&[byte; 4096]).expect("deflate");
        let z = z.finish().expect("deflate");
        entries.insert(g, (f.len() / S) as u32);
        let mut m = Vec::new();
        m.extend_from_slice(&(g * 8).to_le_bytes());
        m.extend_from_slice(&(z.len() as u32).to_le_bytes());
        m.extend_from_slice(&z);
        f.extend_from_slice(&pad(m));
    }
    let marker = |ty: u32, sectors: u64| {
        let mut m = vec![0u8; S];
        put64(&mut m, 0, sectors);
        put32(&mut m, 12, ty);
        m
    };
    let mut gts = [0u32; 4];
    for t in [0u64, 2] {
        f.extend_from_slice(&marker(1, 1));
        gts[t as usize] = (f.len() / S) as u32;
        let mut gt = vec![0u8; S];
        for i in 0..64u64 {
            if let Some(&s) = entries.get(&(t * 64 + i)) {
                put32(&mut gt, i as usize * 4, s);
            }
        }
        f.extend_from_slice(&gt);
    }
    f.extend_from_slice(&marker(2, 1));
    let gd_sector = f.len() / S;
    let mut gd = vec![0u8; S];
    for (i, s) in gts.iter().enumerate() {
        put32(&mut gd, i * 4, *s);
    }
    f.extend_from_slice(&gd);
    f.extend_from_slice(&marker(3, 1));
    let footer = f.len() / S;
    f.extend_from_slice(&kdmv_header(3, 0x3_0001, gd_sector as u64, 3, 1));
    f.extend_from_slice(&marker(0, 0));
    (f, footer)
}

/// A 4 MiB COWD redo log: header, grain directory at sector 4 (two entries, table 0 at 5),
/// table 0 (32 sectors: a grain at 37, a GTE of 1, a grain at 38), two grains.
fn cowd() -> Vec<u8> {
    let mut f = vec![0u8; 2048];
    f[..4].copy_from_slice(b"COWD");
    for (i, v) in [1u32, 3, 8192, 1, 4, 2, 0].into_iter().enumerate() {
        put32(&mut f, 4 + 4 * i, v);
    }
    let mut gd = vec![0u8; S];
    put32(&mut gd, 0, 5);
    f.extend_from_slice(&gd);
    let mut gt = vec![0u8; 4096 * 4];
    put32(&mut gt, 0, 37);
    put32(&mut gt, 4, 1);
    put32(&mut gt, 8, 38);
    f.extend_from_slice(&gt);
    f.extend_from_slice(&[0x77; S]);
    f.extend_from_slice(&[0x88; S]);
    f
}

/// A 4 MiB SESparse extent: constant header, volatile header at sector 1, grain directory at
/// 2, one grain table at 3 (64 sectors: data, zero, unmapped, data), grains area at 67.
fn sesparse() -> Vec<u8> {
    let mut h = [0u64; 64];
    h[..5].copy_from_slice(&[0xCAFE_BABE, 0x2_0000_0001, 8192, 8, 64]);
    (h[10], h[11], h[16], h[17], h[18], h[19], h[24], h[25]) = (1, 1, 2, 1, 3, 64, 67, 16);
    let mut f: Vec<u8> = h.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut v = vec![0u8; S];
    put64(&mut v, 0, 0xCAFE_CAFE);
    f.extend_from_slice(&v);
    let mut gd = vec![0u8; S];
    put64(&mut gd, 0, 0x1000_0000_0000_0000);
    f.extend_from_slice(&gd);
    let mut gt = vec![0u8; 64 * S];
    for (i, e) in [3u64 << 60, 2 << 60, 1 << 60, (3 << 60) | (1 << 48)]
        .into_iter()
        .enumerate()
    {
        put64(&mut gt, i * 8, e);
    }
    f.extend_from_slice(&gt);
    f.extend_from_slice(&[0x5a; 4096]);
    f.extend_from_slice(&[0xa5; 4096]);
    f
}

/// An empty base layer (a ZERO extent) with CID `cid`.
fn zero_base(cid: u32) -> String {
    descriptor(cid, None, "custom", "RW 8192 ZERO\n")
}

/// One case: files to write into a fresh directory, the file to open, the commands that
/// must fail and what their message must hold.
struct Case {
    name: &'static str,
    files: Vec<(&'static str, Vec<u8>)>,
    open: &'static str,
    commands: &'static [&'static str],
    want: Vec<String>,
}

const ALL: &[&str] = &["info", "map", "scan"];
/// Damage inside grain tables or grains shows only once they are read.
const READERS: &[&str] = &["map", "scan"];
/// Grains sharing bytes are found by `map`, which sees every grain's offset at once; `scan`
/// reads each grain on its own and does not look (docs/RELIABILITY.md).
const MAPS: &[&str] = &["map"];

fn case(
    name: &'static str,
    files: Vec<(&'static str, Vec<u8>)>,
    commands: &'static [&'static str],
    want: &[&str],
) -> Case {
    Case {
        name,
        open: files[0].0,
        files,
        commands,
        want: want.iter().map(|s| s.to_string()).collect(),
    }
}

fn patched(mut f: Vec<u8>, at: usize, bytes: &[u8]) -> Vec<u8> {
    f[at..at + bytes.len()].copy_from_slice(bytes);
    f
}

fn cut(mut f: Vec<u8>, len: usize) -> Vec<u8> {
    f.truncate(len);
    f
}

/// Runs deltascope under a 1 GiB address-space limit.
fn limited(args: &[&OsStr]) -> std::process::Output {
    Command::new("prlimit")
        .arg(format!("--as={}", 1u64 << 30))
        .arg(bin())
        .args(args)
        .output()
        .expect("run prlimit")
}

fn check(dir: &Path, c: &Case) {
    let cdir = dir.join(c.name);
    std::fs::create_dir(&cdir).expect("case dir");
    for (name, data) in &c.files {
        std::fs::write(cdir.join(name), data).expect("write case file");
    }
    let path: PathBuf = cdir.join(c.open);
    // Mapped files are borrowed, `--no-mmap` reads into buffers: both must refuse alike.
    for mode in ["--mmap-default", "--no-mmap"] {
        for cmd in c.commands {
            let mut args = vec![OsStr::new(cmd), path.as_os_str()];
            if mode == "--no-mmap" {
                args.push(OsStr::new(mode));
            }
            let out = limited(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{} {cmd} {mode}: expected exit 1\n{stderr}",
                c.name
            );
            assert!(
                !stderr.contains("panicked"),
                "{} {cmd} {mode}: panic\n{stderr}",
                c.name
            );
            for w in &c.want {
                assert!(
                    stderr.contains(w.as_str()),
                    "{} {cmd} {mode}: message lacks {w:?}:\n{stderr}",
                    c.name
                );
            }
        }
    }
}

fn run_cases(cases: &[Case]) {
    require("prlimit");
    let d = tempdir();
    for c in cases {
        check(d.path(), c);
    }
}

#[test]
fn the_images_are_good_before_they_are_broken() {
    // Each builder must make an image deltascope (and qemu, where it reads the format)
    // accepts, or the corruptions below would prove nothing.
    let d = tempdir();
    std::fs::write(d.path().join("k.vmdk"), kdmv(1, None)).expect("write");
    std::fs::write(d.path().join("s.vmdk"), stream().0).expect("write");
    std::fs::write(d.path().join("base.vmdk"), zero_base(7)).expect("write");
    std::fs::write(d.path().join("c-delta.vmdk"), cowd()).expect("write");
    std::fs::write(
        d.path().join("c.vmdk"),
        descriptor(
            8,
            Some(("base.vmdk", 7)),
            "vmfsSparse",
            "RW 8192 VMFSSPARSE \"c-delta.vmdk\"\n",
        ),
    )
    .expect("write");
    std::fs::write(d.path().join("e-sesparse.vmdk"), sesparse()).expect("write");
    std::fs::write(
        d.path().join("e.vmdk"),
        descriptor(
            9,
            Some(("base.vmdk", 7)),
            "seSparse",
            "RW 8192 SESPARSE \"e-sesparse.vmdk\"\n",
        ),
    )
    .expect("write");
    for (name, data_runs) in [("k.vmdk", 4), ("s.vmdk", 2), ("c.vmdk", 3), ("e.vmdk", 3)] {
        let p = d.path().join(name);
        let v: serde_json::Value =
            serde_json::from_str(&ok([OsStr::new("map"), p.as_os_str()])).expect("map JSON");
        let present = v
            .as_array()
            .expect("array")
            .iter()
            .filter(|e| e["present"] == true)
            .count();
        assert_eq!(present, data_runs, "{name}: {v}");
        ok([OsStr::new("scan"), p.as_os_str()]);
    }
}

#[test]
fn hosted_sparse() {
    let good = kdmv(1, None);
    let k = |f: Vec<u8>| vec![("k.vmdk", f)];
    let gt0 = 4 * S;
    run_cases(&[
        case(
            "truncated-header",
            k(cut(good.clone(), 40)),
            ALL,
            &[
                "k.vmdk: KDMV header at 0x0: 0x8 bytes at 0x24 reach past the end of the file (0x28 bytes)",
            ],
        ),
        case(
            "truncated-grain-table",
            k(cut(good.clone(), 5 * S + 100)),
            ALL,
            &[
                "k.vmdk: grain table 2 at 0xa00: 0x100 bytes at 0xa00 reach past the end of the file (0xa64 bytes)",
            ],
        ),
        case(
            "grain-directory-past-eof",
            k(patched(
                good.clone(),
                kdmv_at::GD,
                &0x10_0000u64.to_le_bytes(),
            )),
            ALL,
            &[
                "k.vmdk: grain directory at 0x20000000: 0x10 bytes at 0x20000000 reach past the end of the file",
            ],
        ),
        case(
            "grain-table-past-eof",
            k(patched(good.clone(), 3 * S + 8, &0xffffu32.to_le_bytes())),
            ALL,
            &["k.vmdk: grain table 2 at 0x1fffe00: 0x100 bytes at 0x1fffe00 reach past the end"],
        ),
        case(
            "grain-past-eof",
            k(patched(
                good.clone(),
                gt0 + 8,
                &0x7fff_ffffu32.to_le_bytes(),
            )),
            READERS,
            &[
                "k.vmdk: grain table 0 at 0x808: grain table entry is 0x7fffffff, expected a grain inside the file",
            ],
        ),
        case(
            "grain-in-metadata",
            k(patched(good.clone(), gt0 + 8, &3u32.to_le_bytes())),
            READERS,
            &[
                "k.vmdk: grain table 0 at 0x808: grain table entry is 0x3, expected a grain after the metadata, which ends at 0xc00",
            ],
        ),
        case(
            "overlapping-grains",
            k(patched(good.clone(), gt0 + 8, &6u32.to_le_bytes())),
            MAPS,
            &[
                "k.vmdk: extent data at 0xc00: the grains at virtual bytes 0x0 and 0x2000 share the file bytes from 0xc00",
            ],
        ),
        case(
            "grain-in-a-table-with-overhead-0",
            k(patched(
                patched(good.clone(), 64, &0u64.to_le_bytes()),
                gt0,
                &5u32.to_le_bytes(),
            )),
            MAPS,
            &[
                "k.vmdk: grain table 2 at 0xa00: the grain at virtual byte 0x0 stores its data inside the grain table 2",
            ],
        ),
        case(
            "table-count-2^32",
            k(patched(
                good.clone(),
                kdmv_at::GTES,
                &u32::MAX.to_le_bytes(),
            )),
            ALL,
            &["k.vmdk: KDMV header at 0x2c: numGTEsPerGT is 0xffffffff, expected 1 to 512"],
        ),
        case(
            "zero-grain-size",
            k(patched(good.clone(), kdmv_at::GRAIN, &0u64.to_le_bytes())),
            ALL,
            &["k.vmdk: KDMV header at 0x14: grainSize is 0x0"],
        ),
        case(
            "huge-grain-size",
            k(patched(
                good.clone(),
                kdmv_at::GRAIN,
                &(1u64 << 40).to_le_bytes(),
            )),
            ALL,
            &[
                "k.vmdk: KDMV header at 0x14: grainSize is 0x10000000000, expected a power of two from 1 to 0x200000 sectors",
            ],
        ),
        case(
            "huge-capacity",
            k(patched(
                good.clone(),
                kdmv_at::CAPACITY,
                &(1u64 << 61).to_le_bytes(),
            )),
            ALL,
            &["k.vmdk: KDMV header at 0xc: capacity is 0x2000000000000000"],
        ),
        case(
            "bad-magic",
            k(patched(good.clone(), 0, b"KDMW")),
            ALL,
            &[
                "k.vmdk: descriptor at 0x0: not a VMDK file: it looks like binary data of an unknown kind",
            ],
        ),
        case(
            "bad-version",
            k(patched(good.clone(), kdmv_at::VERSION, &4u32.to_le_bytes())),
            ALL,
            &["k.vmdk: KDMV header at 0x4: version is 0x4, expected 1, 2 or 3"],
        ),
        case(
            "text-mode-damage",
            k(patched(good.clone(), 73, b"\n\n\n\n")),
            ALL,
            &["k.vmdk: KDMV header at 0x49: newline-check bytes"],
        ),
        case(
            "embedded-descriptor-garbage",
            k(patched(
                good.clone(),
                S,
                b"\x01\x02garbage without an equals sign\n",
            )),
            ALL,
            &["k.vmdk: descriptor line 1 at 0x200: expected key=value or an extent line"],
        ),
    ]);
}

#[test]
fn stream_optimized() {
    let (good, footer) = stream();
    let s = |f: Vec<u8>| vec![("s.vmdk", f)];
    let len = good.len();
    let first_marker = 3 * S;
    run_cases(&[
        case(
            "truncated-footer",
            s(cut(good.clone(), len - 100)),
            ALL,
            &["s.vmdk: streamOptimized marker at"],
        ),
        case(
            "footer-bad-magic",
            s(patched(good.clone(), footer * S, b"XDMV")),
            ALL,
            &[&format!(
                "s.vmdk: streamOptimized footer at {:#x}: magic is",
                footer * S
            )],
        ),
        case(
            "footer-grain-directory-past-eof",
            s(patched(
                good.clone(),
                footer * S + kdmv_at::GD,
                &0x10_0000u64.to_le_bytes(),
            )),
            ALL,
            &["s.vmdk: grain directory at 0x20000000: 0x10 bytes at 0x20000000 reach past the end"],
        ),
        case(
            "footer-huge-grain",
            s(patched(
                good.clone(),
                footer * S + kdmv_at::GRAIN,
                &0x20_0000u64.to_le_bytes(),
            )),
            ALL,
            &[&format!(
                "s.vmdk: streamOptimized footer at {:#x}: grainSize is 0x200000, expected a compressed grain that fits in the file",
                footer * S + 20
            )],
        ),
        case(
            "marker-size-zero",
            s(patched(good.clone(), first_marker + 8, &0u32.to_le_bytes())),
            &["scan"],
            &["s.vmdk: compressed grain 0 at 0x608: grain marker size is 0x0"],
        ),
        case(
            "marker-size-huge",
            s(patched(
                good.clone(),
                first_marker + 8,
                &u32::MAX.to_le_bytes(),
            )),
            &["scan"],
            &["s.vmdk: compressed grain 0 at 0x608: grain marker size is 0xffffffff"],
        ),
        case(
            "marker-wrong-lba",
            s(patched(good.clone(), first_marker, &77u64.to_le_bytes())),
            &["scan"],
            &["s.vmdk: compressed grain 0 at 0x600: grain marker lba is 0x4d, expected 0x0"],
        ),
        case(
            "grain-not-deflate",
            s(patched(good.clone(), first_marker + 12, b"not zlib")),
            &["scan"],
            &["s.vmdk: compressed grain 0 at 0x600: does not inflate"],
        ),
        case(
            "grain-marker-in-metadata",
            s(patched(good.clone(), len - 6 * S, &1u32.to_le_bytes())),
            READERS,
            &["expected a grain after the metadata"],
        ),
    ]);
}

#[test]
fn cowd_redo_logs() {
    let good = cowd();
    let files = |f: Vec<u8>| {
        vec![
            (
                "c.vmdk",
                descriptor(
                    8,
                    Some(("base.vmdk", 7)),
                    "vmfsSparse",
                    "RW 8192 VMFSSPARSE \"c-delta.vmdk\"\n",
                )
                .into_bytes(),
            ),
            ("c-delta.vmdk", f),
            ("base.vmdk", zero_base(7).into_bytes()),
        ]
    };
    run_cases(&[
        case(
            "truncated-header",
            files(cut(good.clone(), 20)),
            ALL,
            &[
                "c-delta.vmdk: COWD header at 0x0: 0x4 bytes at 0x14 reach past the end of the file (0x14 bytes)",
            ],
        ),
        case(
            "truncated-grain-table",
            files(cut(good.clone(), 6 * S)),
            ALL,
            &[
                "c-delta.vmdk: grain table 0 at 0xa00: 0x4000 bytes at 0xa00 reach past the end of the file (0xc00 bytes)",
            ],
        ),
        case(
            "grain-directory-past-eof",
            files(patched(good.clone(), 20, &0x00ff_ffffu32.to_le_bytes())),
            ALL,
            &["c-delta.vmdk: grain directory at 0x1fffffe00:"],
        ),
        case(
            "grain-directory-count-2^32",
            files(patched(good.clone(), 24, &u32::MAX.to_le_bytes())),
            ALL,
            &[
                "c-delta.vmdk: grain directory at 0x800: 0x3fffffffc bytes at 0x800 reach past the end",
            ],
        ),
        case(
            "grain-past-eof",
            files(patched(good.clone(), 5 * S, &0x00ff_ffffu32.to_le_bytes())),
            READERS,
            &[
                "c-delta.vmdk: grain table 0 at 0xa00: grain table entry is 0xffffff, expected a grain inside the file",
            ],
        ),
        case(
            "grain-in-header",
            files(patched(good.clone(), 5 * S, &2u32.to_le_bytes())),
            READERS,
            &[
                "c-delta.vmdk: grain table 0 at 0xa00: grain table entry is 0x2, expected a grain after the metadata, which ends at 0x808",
            ],
        ),
        case(
            "overlapping-grains",
            files(patched(good.clone(), 5 * S + 8, &37u32.to_le_bytes())),
            MAPS,
            &[
                "c-delta.vmdk: extent data at 0x4a00: the grains at virtual bytes 0x0 and 0x400 share the file bytes from 0x4a00",
            ],
        ),
        case(
            "grain-in-a-table",
            files(patched(good.clone(), 5 * S, &6u32.to_le_bytes())),
            MAPS,
            &[
                "c-delta.vmdk: grain table 0 at 0xc00: the grain at virtual byte 0x0 stores its data inside the grain table 0",
            ],
        ),
        case(
            "zero-grain-size",
            files(patched(good.clone(), 16, &0u32.to_le_bytes())),
            ALL,
            &["c-delta.vmdk: COWD header at 0x10: grainSize is 0x0"],
        ),
        case(
            "huge-grain-size",
            files(patched(good.clone(), 16, &(1u32 << 31).to_le_bytes())),
            ALL,
            &["c-delta.vmdk: COWD header at 0x10: grainSize is 0x80000000"],
        ),
        case(
            "bad-magic",
            files(patched(good.clone(), 0, b"CODW")),
            ALL,
            &["c-delta.vmdk: extent data at 0x0: not a VMDK file"],
        ),
        case(
            "bad-version",
            files(patched(good.clone(), 4, &2u32.to_le_bytes())),
            ALL,
            &["c-delta.vmdk: COWD header at 0x4: version is 0x2, expected 1"],
        ),
    ]);
}

#[test]
fn sesparse_extents() {
    let good = sesparse();
    let files = |f: Vec<u8>| {
        vec![
            (
                "e.vmdk",
                descriptor(
                    9,
                    Some(("base.vmdk", 7)),
                    "seSparse",
                    "RW 8192 SESPARSE \"e-sesparse.vmdk\"\n",
                )
                .into_bytes(),
            ),
            ("e-sesparse.vmdk", f),
            ("base.vmdk", zero_base(7).into_bytes()),
        ]
    };
    let q = |i: usize| i * 8;
    run_cases(&[
        case(
            "truncated-header",
            files(cut(good.clone(), 100)),
            ALL,
            &[
                "e-sesparse.vmdk: SESparse constant header at 0x0: 0x8 bytes at 0x60 reach past the end of the file (0x64 bytes)",
            ],
        ),
        case(
            "truncated-grain-table",
            files(cut(good.clone(), 10 * S)),
            ALL,
            &[
                "e-sesparse.vmdk: grain table 0 at 0x600: 0x8000 bytes at 0x600 reach past the end of the file (0x1400 bytes)",
            ],
        ),
        case(
            "grain-directory-past-eof",
            files(patched(good.clone(), q(16), &0xffff_ffffu64.to_le_bytes())),
            ALL,
            &["e-sesparse.vmdk: grain directory at 0x1fffffffe00:"],
        ),
        case(
            "volatile-header-past-eof",
            files(patched(good.clone(), q(10), &0xffff_ffffu64.to_le_bytes())),
            ALL,
            &["e-sesparse.vmdk: SESparse volatile header at 0x1fffffffe00:"],
        ),
        case(
            "table-index-2^32",
            files(patched(
                good.clone(),
                2 * S,
                &0x1000_0000_ffff_ffffu64.to_le_bytes(),
            )),
            ALL,
            &[
                "e-sesparse.vmdk: grain directory at 0x400: grain table index is 0xffffffff, expected below 1",
            ],
        ),
        case(
            "grain-past-eof",
            files(patched(
                good.clone(),
                3 * S,
                &((3u64 << 60) | 0xffff_ffff).to_le_bytes(),
            )),
            READERS,
            &[
                "e-sesparse.vmdk: grain table 0 at 0x600: grain table entry is 0x30000000ffffffff, expected a grain inside the file",
            ],
        ),
        case(
            "overlapping-grains",
            files(patched(
                good.clone(),
                3 * S + 24,
                &(3u64 << 60).to_le_bytes(),
            )),
            MAPS,
            &[
                "e-sesparse.vmdk: extent data at 0x8600: the grains at virtual bytes 0x0 and 0x3000 share the file bytes from 0x8600",
            ],
        ),
        case(
            "bad-entry-type",
            files(patched(good.clone(), 3 * S, &(7u64 << 60).to_le_bytes())),
            READERS,
            &["e-sesparse.vmdk: grain table 0 at 0x600: grain table entry is 0x7000000000000000"],
        ),
        case(
            "zero-grain-size",
            files(patched(good.clone(), q(3), &0u64.to_le_bytes())),
            ALL,
            &[
                "e-sesparse.vmdk: SESparse constant header at 0x18: grainSize is 0x0, expected 8 sectors",
            ],
        ),
        case(
            "huge-grain-table-size",
            files(patched(good.clone(), q(4), &(1u64 << 32).to_le_bytes())),
            ALL,
            &["e-sesparse.vmdk: SESparse constant header at 0x20: grainTableSize is 0x100000000"],
        ),
        case(
            "bad-magic",
            files(patched(good.clone(), 0, &0xCAFE_BABFu64.to_le_bytes())),
            ALL,
            &["e-sesparse.vmdk: extent data at 0x0: not a VMDK file"],
        ),
        case(
            "bad-version",
            files(patched(good.clone(), q(1), &0x3_0000_0001u64.to_le_bytes())),
            ALL,
            &["e-sesparse.vmdk: SESparse constant header at 0x8: version is 0x300000001"],
        ),
        case(
            "bad-volatile-magic",
            files(patched(good.clone(), S, &0u64.to_le_bytes())),
            ALL,
            &[
                "e-sesparse.vmdk: SESparse volatile header at 0x200: magic is 0x0, expected 0xcafecafe",
            ],
        ),
    ]);
}

#[test]
fn descriptors_and_extents() {
    let hdr = |extents: &str| descriptor(5, None, "custom", extents).into_bytes();
    run_cases(&[
        case(
            "binary-garbage-after-a-header",
            vec![(
                "d.vmdk",
                [&hdr("")[..], b"\xff\xfe\x01 nonsense\n"].concat(),
            )],
            ALL,
            &["d.vmdk: descriptor line 6 at 0x54: expected key=value or an extent line"],
        ),
        case(
            "extent-size-overflows",
            vec![("d.vmdk", hdr("RW 36028797018963968 ZERO\n"))],
            ALL,
            &["d.vmdk: extent 0 at 0x0: extent sectors overflows 64-bit arithmetic"],
        ),
        case(
            "virtual-size-past-the-cap",
            vec![("d.vmdk", hdr("RW 18014398509481983 ZERO\n"))],
            ALL,
            &[
                "d.vmdk: extent 0 at 0x0: virtual size in bytes is 9223372036854775296, more than the 140737488355328 allowed here",
            ],
        ),
        case(
            "many-extents-past-the-cap",
            vec![("d.vmdk", hdr(&"RW 68719476736 ZERO\n".repeat(5)))],
            ALL,
            &["d.vmdk: extent 4 at 0x0: virtual size in bytes is 175921860444160"],
        ),
        case(
            "missing-extent",
            vec![("d.vmdk", hdr("RW 2048 FLAT \"gone-flat.vmdk\" 0\n"))],
            ALL,
            &[
                "d.vmdk: open extent: descriptor line 6 names extent",
                "gone-flat.vmdk, which does not exist",
            ],
        ),
        case(
            "sparse-extent-that-is-text",
            vec![
                ("d.vmdk", hdr("RW 2048 SPARSE \"t.vmdk\"\n")),
                ("t.vmdk", b"hello".to_vec()),
            ],
            ALL,
            &[
                "t.vmdk: extent data at 0x0: not a VMDK file: it looks like text that is not a VMDK descriptor; expected \"KDMV\", \"COWD\" or 0xcafebabe",
            ],
        ),
        case(
            "one-sparse-file-named-twice",
            vec![
                (
                    "d.vmdk",
                    hdr("RW 2048 SPARSE \"k.vmdk\"\nRW 2048 SPARSE \"./k.vmdk\"\n"),
                ),
                ("k.vmdk", kdmv(1, None)),
            ],
            ALL,
            &[
                "d.vmdk: descriptor line 7 at 0x6c: the sparse extent file",
                "k.vmdk is already the extent of line 6",
            ],
        ),
        case(
            "descriptor-over-1-mib",
            vec![(
                "d.vmdk",
                [hdr("RW 2048 ZERO\n"), vec![b'#'; 1 << 20]].concat(),
            )],
            ALL,
            &[
                "d.vmdk: descriptor at 0x0: descriptor size is 1048673, more than the 1048576 allowed here",
            ],
        ),
    ]);
}

#[test]
fn extents_of_the_wrong_size_warn_and_strict_refuses() {
    // A flat extent shorter than its line is what a half-copied disk looks like; qemu reads
    // the missing part as zeros, so deltascope does too, says so, and --strict refuses.
    // A sparse extent whose header disagrees with its line is read by its header, as qemu.
    let d = tempdir();
    std::fs::write(
        d.path().join("f.vmdk"),
        descriptor(
            3,
            None,
            "monolithicFlat",
            "RW 2048 FLAT \"f-flat.vmdk\" 0\n",
        ),
    )
    .expect("write");
    std::fs::write(d.path().join("f-flat.vmdk"), [0x42u8; 4096]).expect("write");
    std::fs::write(d.path().join("base.vmdk"), zero_base(7)).expect("write");
    std::fs::write(d.path().join("e-sesparse.vmdk"), sesparse()).expect("write");
    std::fs::write(
        d.path().join("e.vmdk"),
        descriptor(
            9,
            Some(("base.vmdk", 7)),
            "seSparse",
            "RW 4096 SESPARSE \"e-sesparse.vmdk\"\n",
        ),
    )
    .expect("write");
    for (name, want) in [
        (
            "f.vmdk",
            "f-flat.vmdk: flat extent needs 1048576 bytes from offset 0 but the file has 4096",
        ),
        (
            "e.vmdk",
            "e.vmdk: descriptor line 7 says 4096 sectors, the extent header says 8192",
        ),
    ] {
        let p = d.path().join(name);
        let out = run([OsStr::new("scan"), p.as_os_str()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        assert!(stderr.contains(want), "{name}: {stderr}");
        let e = fails(
            1,
            [OsStr::new("scan"), OsStr::new("--strict"), p.as_os_str()],
        );
        assert!(e.contains(want) && e.contains("--strict"), "{name}: {e}");
    }
}

#[test]
fn broken_chains_of_every_format() {
    let d = tempdir();
    let dir = d.path();
    // A -> B -> A where both are COWD deltas, and a delta that names itself.
    for (name, parent, extent) in [
        ("a", "b.vmdk", "a-delta.vmdk"),
        ("b", "a.vmdk", "b-delta.vmdk"),
    ] {
        std::fs::write(dir.join(extent), cowd()).expect("write");
        std::fs::write(
            dir.join(format!("{name}.vmdk")),
            descriptor(
                1,
                Some((parent, 1)),
                "vmfsSparse",
                &format!("RW 8192 VMFSSPARSE \"{extent}\"\n"),
            ),
        )
        .expect("write");
    }
    let e = fails(1, [OsStr::new("info"), dir.join("a.vmdk").as_os_str()]);
    assert!(
        e.contains("parent loop:") && e.contains("a.vmdk -> ") && e.contains("b.vmdk -> "),
        "{e}"
    );
    std::fs::write(dir.join("self.vmdk"), kdmv(1, Some(("./self.vmdk", 1)))).expect("write");
    let e = fails(1, [OsStr::new("scan"), dir.join("self.vmdk").as_os_str()]);
    assert!(
        e.contains("parent loop:") && e.contains("self.vmdk -> "),
        "{e}"
    );
    // A loop through a symbolic link is the same file under two names.
    std::os::unix::fs::symlink(dir.join("l1.vmdk"), dir.join("l2.vmdk")).expect("symlink");
    std::fs::write(dir.join("l1.vmdk"), kdmv(1, Some(("l2.vmdk", 1)))).expect("write");
    let e = fails(1, [OsStr::new("map"), dir.join("l1.vmdk").as_os_str()]);
    assert!(e.contains("parent loop:"), "{e}");

    // 300 hosted sparse deltas: refused at the default depth, read with --max-depth 300.
    std::fs::write(dir.join("h0.vmdk"), kdmv(100, None)).expect("write");
    for i in 1..300u32 {
        let parent = format!("h{}.vmdk", i - 1);
        std::fs::write(
            dir.join(format!("h{i}.vmdk")),
            kdmv(100 + i, Some((&parent, 100 + i - 1))),
        )
        .expect("write");
    }
    let top = dir.join("h299.vmdk");
    let e = fails(1, [OsStr::new("info"), top.as_os_str()]);
    assert!(
        e.contains("chain is deeper than 256 layers (reached 257)"),
        "{e}"
    );
    let v = json(&[
        OsStr::new("info"),
        OsStr::new("--json"),
        OsStr::new("--max-depth"),
        OsStr::new("300"),
        top.as_os_str(),
    ]);
    assert_eq!(v["chain"].as_array().map(Vec::len), Some(300));

    // A CID mismatch under an SESparse delta: a warning, an error under --strict.
    std::fs::write(dir.join("base.vmdk"), zero_base(7)).expect("write");
    std::fs::write(dir.join("m-sesparse.vmdk"), sesparse()).expect("write");
    std::fs::write(
        dir.join("m.vmdk"),
        descriptor(
            2,
            Some(("base.vmdk", 0xdead)),
            "seSparse",
            "RW 8192 SESPARSE \"m-sesparse.vmdk\"\n",
        ),
    )
    .expect("write");
    let m = dir.join("m.vmdk");
    let out = run([OsStr::new("scan"), m.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("m.vmdk: parentCID is 0000dead but the parent's CID is 00000007"),
        "{stderr}"
    );
    let e = fails(
        1,
        [OsStr::new("scan"), OsStr::new("--strict"), m.as_os_str()],
    );
    assert!(e.contains("m.vmdk: parentCID is 0000dead"), "{e}");
}

#[test]
fn a_fifo_named_as_parent_or_extent_does_not_hang() {
    let d = tempdir();
    let fifo = d.path().join("pipe.vmdk");
    sh(Command::new("mkfifo").arg(&fifo));
    std::fs::write(d.path().join("child.vmdk"), kdmv(1, Some(("pipe.vmdk", 1)))).expect("write");
    std::fs::write(
        d.path().join("flat.vmdk"),
        descriptor(2, None, "custom", "RW 2048 FLAT \"pipe.vmdk\" 0\n"),
    )
    .expect("write");
    for (top, cmd) in [
        ("child.vmdk", "info"),
        ("flat.vmdk", "scan"),
        ("pipe.vmdk", "map"),
    ] {
        let e = fails(1, [OsStr::new(cmd), d.path().join(top).as_os_str()]);
        assert!(
            e.contains("pipe.vmdk: cannot be read: a FIFO or socket, not a disk image"),
            "{top}: {e}"
        );
    }
}
