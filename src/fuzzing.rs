//! Entry points of the fuzz targets (`fuzz/fuzz_targets/`), kept in the library so that
//! `cargo test` replays the regression corpus (`tests/fuzz_regressions/`) through exactly the
//! code the fuzzer ran. Each takes arbitrary bytes, drives one parser as far as the bytes
//! allow, and returns how far it got; the only failure is a panic, a hang or unbounded memory.
//! See docs/FUZZING.md.

use std::path::{Path, PathBuf};

use crate::chain::{Chain, ChainOptions};
use crate::error::ReadError;
use crate::files::Memory;
use crate::format::{ExtentMap, GrainState, WalkError, cowd, descriptor, detect, hosted, sesparse};
use crate::layer::Layer;
use crate::progress::NoProgress;
use crate::scan::ScanOptions;
use crate::source::{ReadMode, Source};

/// The fuzz targets, by the name of their directory under `fuzz/fuzz_targets` and
/// `tests/fuzz_regressions`.
pub const TARGETS: [&str; 9] = [
    "descriptor",
    "kdmv",
    "stream",
    "cowd",
    "sesparse",
    "chain",
    "vmx",
    "vmsd",
    "import",
];

/// Runs target `name` on `data`; `None` for an unknown name.
pub fn run(name: &str, data: &[u8]) -> Option<Outcome> {
    Some(match name {
        "descriptor" => descriptor_text(data),
        "kdmv" => kdmv(data),
        "stream" => stream(data),
        "cowd" => cowd_extent(data),
        "sesparse" => sesparse_extent(data),
        "chain" => chain(data),
        "vmx" => vmx_file(data),
        "vmsd" => vmsd_file(data),
        "import" => import_csv(data),
        _ => return None,
    })
}

/// How far an input got: parsed, or refused with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything the target does succeeded.
    Accepted,
    /// Refused, with the message the command line would print.
    Refused(String),
}

impl<E: std::fmt::Display> From<std::result::Result<(), E>> for Outcome {
    fn from(r: std::result::Result<(), E>) -> Self {
        match r {
            Ok(()) => Outcome::Accepted,
            Err(e) => Outcome::Refused(e.to_string()),
        }
    }
}

const DISK: &str = "/fuzz/disk.vmdk";

/// Largest layer the `chain` target scans (open and map run on any size).
pub const SCAN_LIMIT: u64 = 1 << 30;

/// Descriptor text: detection and parsing.
pub fn descriptor_text(data: &[u8]) -> Outcome {
    let _ = detect(data);
    let _ = descriptor::looks_like_descriptor(data);
    descriptor::parse_descriptor(data, 0x200)
        .map(|d| {
            let _ = d.parent();
            let _ = d.ddb("ddb.adapterType");
        })
        .into()
}

/// A `KDMV` file: header, footer, grain directories and tables, then every table walked,
/// every piece looked up, compressed grains inflated, and the file opened as a layer (which
/// adds the embedded descriptor).
pub fn kdmv(data: &[u8]) -> Outcome {
    let src = Source::from_bytes(Path::new(DISK), data.to_vec());
    let r = hosted::HostedExtent::open(&src)
        .and_then(|h| exercise(&ExtentMap::Hosted(h), &src))
        .map_err(|e| e.in_file(src.path()));
    let mut files = Memory::new();
    files.insert(DISK, data.to_vec());
    let layer = Layer::open_in(&files, Path::new(DISK), ReadMode::Read).map(|_| ());
    r.and(layer).into()
}

/// A streamOptimized file: the header is forced to say "compressed, with markers, grain
/// directory at the end", so every input reaches the footer and marker checks.
pub fn stream(data: &[u8]) -> Outcome {
    let mut d = data.to_vec();
    if d.len() >= 79 {
        let flags = u32::from_le_bytes([d[8], d[9], d[10], d[11]])
            | hosted::FLAG_COMPRESSED
            | hosted::FLAG_MARKERS;
        d[8..12].copy_from_slice(&flags.to_le_bytes());
        d[56..64].copy_from_slice(&hosted::GD_AT_END.to_le_bytes());
        d[77..79].copy_from_slice(&1u16.to_le_bytes());
    }
    kdmv(&d)
}

/// A `COWD` extent on its own.
pub fn cowd_extent(data: &[u8]) -> Outcome {
    let src = Source::from_bytes(Path::new(DISK), data.to_vec());
    cowd::CowdExtent::open(&src)
        .and_then(|c| {
            c.count_gte1(&src)?;
            exercise(&ExtentMap::Cowd(c), &src)
        })
        .map_err(|e| e.in_file(src.path()))
        .into()
}

/// An SESparse extent on its own.
pub fn sesparse_extent(data: &[u8]) -> Outcome {
    let src = Source::from_bytes(Path::new(DISK), data.to_vec());
    sesparse::SeSparseExtent::open(&src)
        .and_then(|s| exercise(&ExtentMap::SeSparse(s), &src))
        .map_err(|e| e.in_file(src.path()))
        .into()
}

/// Walks every table of `map`, looks up the start and the last byte of every piece, and
/// inflates every compressed grain.
fn exercise(map: &ExtentMap, src: &Source) -> std::result::Result<(), ReadError> {
    let mut scratch = Vec::new();
    let mut pieces = Vec::new();
    for t in 0..map.table_count() {
        map.walk_table(src, t, &mut scratch, &mut |p| {
            pieces.push(p);
            Ok::<(), ReadError>(())
        })
        .map_err(|e| match e {
            WalkError::Read(e) | WalkError::Visit(e) => e,
        })?;
    }
    let mut out = Vec::new();
    let mut zdata = Vec::new();
    for p in pieces {
        map.lookup(src, p.virt, &mut scratch)?;
        if p.len > 1 {
            map.lookup(src, p.virt + p.len - 1, &mut scratch)?;
        }
        if let GrainState::Compressed { marker, grain } = p.state {
            map.compressed_len(src, marker, grain, &mut scratch)?;
            out.resize(map.grain_len(grain) as usize, 0);
            map.inflate(src, marker, grain, &mut out, &mut zdata)?;
        }
    }
    Ok(())
}

/// A `.vmx`: the dictionary (size and line caps, quotes, `|XX` escapes), the disk devices
/// and the role each disk's name gives it.
pub fn vmx_file(data: &[u8]) -> Outcome {
    crate::datastore::vmx::parse_vmx(data)
        .map(|v| {
            for d in &v.disks {
                let _ = crate::datastore::role(
                    Path::new(&d.file_name),
                    &crate::datastore::RoleFacts {
                        vmx_mode: d.mode.as_deref(),
                        ..Default::default()
                    },
                );
            }
        })
        .into()
}

/// A `.vmsd`: the dictionary and the snapshot tree (indexes, creation times, disks).
pub fn vmsd_file(data: &[u8]) -> Outcome {
    crate::datastore::vmsd::parse_vmsd(data)
        .map(|v| {
            let _ = v.snapshots.iter().map(|s| s.disks.len()).sum::<usize>();
        })
        .into()
}

/// Splits a chain input into files: each file is its name, a NUL, a little-endian u32
/// length and that many bytes (fewer at the end of the input). The first file is the top
/// layer. Names are relative to `/fuzz/`.
pub fn split_files(data: &[u8]) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() && out.len() < 64 {
        let Some(nul) = rest.iter().position(|&b| b == 0) else {
            break;
        };
        let name = String::from_utf8_lossy(&rest[..nul]).into_owned();
        rest = &rest[nul + 1..];
        let Some(len) = rest.get(..4) else { break };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        rest = &rest[4..];
        let body = &rest[..len.min(rest.len())];
        rest = &rest[body.len()..];
        out.push((Path::new("/fuzz").join(name), body.to_vec()));
    }
    out
}

/// Joins files into a chain input (the inverse of [`split_files`]), for seeds and tests.
pub fn join_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, body) in files {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
    }
    out
}

/// A whole chain from in-memory files: open (descriptors, extents, parents with `--map` and
/// the fallbacks for absolute hints, CIDs), `info`,
/// `map` of every layer and a full `scan`.
pub fn chain(data: &[u8]) -> Outcome {
    let files = split_files(data);
    let Some(top) = files.first().map(|(p, _)| p.clone()) else {
        return Outcome::Refused("no file".into());
    };
    let mut set = Memory::new();
    for (p, d) in files {
        set.insert(p, d);
    }
    let opts = ChainOptions {
        mode: ReadMode::Read,
        // Small, so that deep-chain inputs stay fast; the cap itself is what is exercised.
        max_depth: 16,
        strict: false,
        // Roots and a map, so that the fallbacks for absolute hints run too.
        paths: crate::files::PathRules {
            maps: vec![crate::files::PathMap {
                prefix: "/vmfs/volumes/fuzz".into(),
                dir: PathBuf::from("/fuzz"),
            }],
            roots: vec![PathBuf::from("/fuzz")],
        },
        ..ChainOptions::default()
    };
    let r = Chain::open_in(&set, &top, &opts).and_then(|c| {
        let _ = crate::report::layer_infos(&c);
        for l in &c.layers {
            crate::map::layer_map(l)?;
        }
        // A scan visits every 4 KiB block of every allocated zero range, so its time grows
        // with the virtual size a few bytes of descriptor can claim (up to the 128 TiB cap);
        // that is bounded, but not by a fuzzer's timeout.
        if c.layers.iter().all(|l| l.virtual_size <= SCAN_LIMIT) {
            let scan = crate::scan::scan_chain(&c, &ScanOptions::full(false), &NoProgress, None)?;
            let _ = crate::report::scan_report(&scan);
        }
        Ok(())
    });
    r.into()
}

/// The time `import_csv` takes as the export's (2026-11-20T00:00:00Z).
pub const IMPORT_EXPORT_AT: i64 = 1_795_132_800;

/// A CSV export as `import` reads it. The first byte picks the options: its value modulo 3
/// the date order (none, dmy, mdy), bit 2 the zone (UTC, or +05:30); the rest is the file.
/// Whatever is accepted must be storable: at least one point, every size within the
/// store's range, every disk named, no snapshot point after the export time.
pub fn import_csv(data: &[u8]) -> Outcome {
    use crate::history::MAX_BYTES;
    use crate::history::import::{Layout, Options, parse};
    use crate::history::time::{DateOrder, Zone};
    let Some((&opt, body)) = data.split_first() else {
        return Outcome::Refused("no options byte".into());
    };
    let order = match opt % 3 {
        0 => None,
        1 => Some(DateOrder::Dmy),
        _ => Some(DateOrder::Mdy),
    };
    let zone = if opt & 4 != 0 {
        // 19800 s (5:30) is well inside FixedOffset's range of a day.
        Zone::Fixed(chrono::FixedOffset::east_opt(19_800).expect("+05:30 is an offset"))
    } else {
        Zone::Utc
    };
    let export_at = chrono::DateTime::from_timestamp(IMPORT_EXPORT_AT, 0).unwrap_or_default();
    let opts = Options {
        export_at,
        order,
        zone,
    };
    match parse(body, &opts) {
        Ok(import) => {
            assert!(!import.points.is_empty(), "accepted with no points");
            for p in &import.points {
                assert!(p.bytes <= MAX_BYTES, "{} bytes accepted", p.bytes);
                assert!(!p.disk.is_empty(), "a point without a disk");
                assert!(
                    import.layout == Layout::Plain || p.at <= export_at,
                    "a snapshot point after the export"
                );
            }
            Outcome::Accepted
        }
        Err(e) => Outcome::Refused(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_and_short_input_is_kept() {
        let joined = join_files([("a.vmdk", &b"abc"[..]), ("b", &b""[..])]);
        let files = split_files(&joined);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0], (PathBuf::from("/fuzz/a.vmdk"), b"abc".to_vec()));
        assert_eq!(files[1].1, b"");
        let cut = split_files(&joined[..joined.len() - 7]);
        assert_eq!(cut[0].1, b"ab");
    }

    #[test]
    fn absolute_hints_reach_the_map_and_the_fallbacks() {
        let base = b"# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"custom\"\nRW 2048 ZERO\n";
        for (hint, at) in [
            ("/vmfs/volumes/fuzz/base.vmdk", "base.vmdk"),
            ("/vmfs/volumes/5f3a/replica/base.vmdk", "replica/base.vmdk"),
        ] {
            let top = format!(
                "# Disk DescriptorFile\nversion=1\nCID=2\nparentCID=00000001\ncreateType=\"custom\"\nparentFileNameHint=\"{hint}\"\nRW 2048 ZERO\n"
            );
            assert_eq!(
                chain(&join_files([("top.vmdk", top.as_bytes()), (at, &base[..])])),
                Outcome::Accepted,
                "{hint}"
            );
        }
    }

    #[test]
    fn a_zero_layer_chain_is_accepted() {
        let text = b"# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"custom\"\nRW 2048 ZERO\n";
        assert_eq!(
            chain(&join_files([("z.vmdk", &text[..])])),
            Outcome::Accepted
        );
        assert!(matches!(
            run("kdmv", b"KDMV"),
            Some(Outcome::Refused(m)) if m.contains("KDMV header")
        ));
        assert_eq!(run("nope", b""), None);
        assert_eq!(
            run("vmx", b"scsi0:0.fileName = \"a.vmdk\""),
            Some(Outcome::Accepted)
        );
        assert!(
            matches!(run("vmsd", b"a = \"\0\""), Some(Outcome::Refused(m)) if m.contains("NUL"))
        );
    }

    #[test]
    fn import_inputs_pick_their_options() {
        let csv = b"VM,Name,Date / time,Size MiB (total)\nv,s,1/11/2026 06:00,1\n";
        let with = |opt: u8| {
            let mut d = vec![opt];
            d.extend_from_slice(csv);
            import_csv(&d)
        };
        assert!(matches!(with(0), Outcome::Refused(m) if m.contains("--date-order")));
        assert_eq!(with(1), Outcome::Accepted);
        assert_eq!(with(2), Outcome::Accepted);
        assert_eq!(with(5), Outcome::Accepted);
        assert!(matches!(import_csv(b""), Outcome::Refused(_)));
    }
}
