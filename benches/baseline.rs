//! The speed limit deltascope is measured against (docs/PERFORMANCE.md): the least a program
//! can do to classify every 4 KiB block of a two-layer chain. It maps (or preads) the delta's
//! and the parent's data files, walks the delta's grain tables, and compares each block the
//! delta holds with zero and with the parent's bytes at that offset: no descriptors, no chain
//! checks, no reports. Formats: delta KDMV, COWD or SESparse; parent KDMV or flat.
//!
//!   baseline [--pread] [--threads N] DELTA_EXTENT PARENT_EXTENT
//!
//! Blocks are 4 KiB, or the grain where grains are smaller (COWD: 512 bytes). Prints bytes per
//! class (fresh overwritten identical zeroed), which equal `deltascope scan --json`'s
//! `blocks_4k` x 4096 for hosted deltas and its `classes` for COWD and SESparse, so each run
//! also checks the other. Written for benchmarks: it trusts its input.
#![allow(missing_docs, clippy::unwrap_used)]

use std::fs::File;
use std::os::unix::fs::FileExt;

use rayon::prelude::*;

const BLOCK: usize = 4096;
const SECTOR: u64 = 512;

enum Data {
    Map(memmap2::Mmap),
    Read(File),
}

impl Data {
    /// `len` bytes at `off` into `buf` (pread), or borrowed from the map.
    fn get<'a>(&'a self, off: u64, len: usize, buf: &'a mut Vec<u8>) -> &'a [u8] {
        match self {
            Data::Map(m) => &m[off as usize..off as usize + len],
            Data::Read(f) => {
                buf.resize(len, 0);
                f.read_exact_at(buf, off).unwrap();
                buf
            }
        }
    }
}

/// Where a virtual grain lives.
#[derive(Clone, Copy)]
enum Grain {
    Absent,
    Zero,
    At(u64),
}

/// A grain-table format reduced to what classification needs.
struct Layer {
    data: Data,
    head: Vec<u8>,
    kind: Kind,
    grain: u64,
    /// Virtual bytes one grain table covers.
    table_span: u64,
    tables: Vec<u64>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Kdmv,
    Cowd,
    SeSparse { gt_base: u64, grains: u64 },
    Flat,
}

fn u32_at(b: &[u8], o: usize) -> u64 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as u64
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

impl Layer {
    fn open(path: &str, pread: bool) -> Layer {
        let f = File::open(path).unwrap();
        let mut head = vec![0u8; 2048];
        let _ = f.read_at(&mut head, 0).unwrap();
        let data = if pread {
            Data::Read(f.try_clone().unwrap())
        } else {
            // SAFETY: a read-only map of a file opened read-only; the benchmark's files are not
            // written while it runs.
            #[allow(unsafe_code)]
            let m = unsafe { memmap2::Mmap::map(&f).unwrap() };
            Data::Map(m)
        };
        let mut buf = Vec::new();
        let (kind, grain, table_span, tables) = match &head[..4] {
            b"KDMV" => {
                let grain = u64_at(&head, 20) * SECTOR;
                let per_gt = u32_at(&head, 44);
                let gd_off = u64_at(&head, 56) * SECTOR;
                let cap = u64_at(&head, 12) * SECTOR;
                let n = cap.div_ceil(grain * per_gt);
                let gd = data.get(gd_off, n as usize * 4, &mut buf).to_vec();
                let t = (0..n as usize)
                    .map(|i| u32_at(&gd, i * 4) * SECTOR)
                    .collect();
                (Kind::Kdmv, grain, grain * per_gt, t)
            }
            b"COWD" => {
                let grain = u32_at(&head, 16) * SECTOR;
                let gd_off = u32_at(&head, 20) * SECTOR;
                let n = u32_at(&head, 24);
                let gd = data.get(gd_off, n as usize * 4, &mut buf).to_vec();
                let t = (0..n as usize)
                    .map(|i| u32_at(&gd, i * 4) * SECTOR)
                    .collect();
                (Kind::Cowd, grain, grain * 4096, t)
            }
            [0xbe, 0xba, 0xfe, 0xca] => {
                let h: Vec<u64> = (0..26).map(|i| u64_at(&head, i * 8)).collect();
                let grain = h[3] * SECTOR;
                let per_gt = h[4] * SECTOR / 8;
                let n = (h[2] * SECTOR).div_ceil(grain * per_gt);
                let gd = data.get(h[16] * SECTOR, n as usize * 8, &mut buf).to_vec();
                let gt_base = h[18] * SECTOR;
                let t = (0..n as usize)
                    .map(|i| {
                        let e = u64_at(&gd, i * 8);
                        if e >> 60 == 1 {
                            gt_base + (e & 0x0FFF_FFFF_FFFF_FFFF) * per_gt * 8
                        } else {
                            0
                        }
                    })
                    .collect();
                let kind = Kind::SeSparse {
                    gt_base,
                    grains: h[24] * SECTOR,
                };
                (kind, grain, grain * per_gt, t)
            }
            _ => (Kind::Flat, 65536, 0, Vec::new()),
        };
        Layer {
            data,
            head,
            kind,
            grain,
            table_span,
            tables,
        }
    }

    fn entries_per_table(&self) -> usize {
        (self.table_span / self.grain) as usize
    }

    /// Every grain of table `t`: (virtual offset, where).
    fn table(&self, t: usize, buf: &mut Vec<u8>) -> Vec<(u64, Grain)> {
        let off = self.tables[t];
        if off == 0 {
            return Vec::new();
        }
        let n = self.entries_per_table();
        let wide = matches!(self.kind, Kind::SeSparse { .. });
        let raw = self.data.get(off, n * if wide { 8 } else { 4 }, buf);
        let zero_ok = self.kind == Kind::Kdmv && u32_at(&self.head, 8) & 4 != 0;
        let base = t as u64 * self.table_span;
        let mut out = Vec::new();
        for i in 0..n {
            let v = base + i as u64 * self.grain;
            let g = match self.kind {
                Kind::SeSparse { grains, .. } => {
                    let e = u64_at(raw, i * 8);
                    match e >> 60 {
                        1 | 2 => Grain::Zero,
                        3 => {
                            let idx = ((e & 0xFFFF_FFFF_FFFF) << 12) | ((e >> 48) & 0xFFF);
                            Grain::At(grains + idx * self.grain)
                        }
                        _ => Grain::Absent,
                    }
                }
                _ => match u32_at(raw, i * 4) {
                    0 => Grain::Absent,
                    1 if zero_ok || self.kind == Kind::Cowd => Grain::Zero,
                    s => Grain::At(s * SECTOR),
                },
            };
            if !matches!(g, Grain::Absent) {
                out.push((v, g));
            }
        }
        out
    }
}

/// Zero test that stops at the first non-zero 64-byte line, as a C program comparing against
/// a zero page with memcmp would.
fn is_zero(b: &[u8]) -> bool {
    let lines = b.chunks_exact(64);
    let rest = lines.remainder();
    for line in lines {
        let acc = line
            .chunks_exact(8)
            .fold(0u64, |a, w| a | u64::from_ne_bytes(w.try_into().unwrap()));
        if acc != 0 {
            return false;
        }
    }
    rest.iter().all(|&x| x == 0)
}

/// The parent's grain table last looked up: delta grains come in virtual order, so one read
/// of each parent table serves all of its grains.
#[derive(Default)]
struct ParentCache {
    table: Option<usize>,
    entries: Vec<u64>,
    buf: Vec<u8>,
}

impl Layer {
    fn locate_cached(&self, v: u64, c: &mut ParentCache) -> Option<u64> {
        if self.kind == Kind::Flat {
            return Some(v);
        }
        let t = (v / self.table_span) as usize;
        if c.table != Some(t) {
            c.table = Some(t);
            c.entries.clear();
            let off = self.tables.get(t).copied().unwrap_or(0);
            if off != 0 {
                let n = self.entries_per_table();
                let raw = self.data.get(off, n * 4, &mut c.buf);
                c.entries.extend((0..n).map(|i| u32_at(raw, i * 4)));
            }
        }
        let e = *c
            .entries
            .get(((v % self.table_span) / self.grain) as usize)?;
        (e > 1).then(|| e * SECTOR + v % self.grain)
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let pread = if let Some(i) = args.iter().position(|a| a == "--pread") {
        args.remove(i);
        true
    } else {
        false
    };
    let threads = if let Some(i) = args.iter().position(|a| a == "--threads") {
        let n = args[i + 1].parse().unwrap();
        args.drain(i..i + 2);
        n
    } else {
        2
    };
    let [delta, parent] = &args[..] else {
        eprintln!("usage: baseline [--pread] [--threads N] DELTA_EXTENT PARENT_EXTENT");
        std::process::exit(2);
    };
    let d = Layer::open(delta, pread);
    let p = Layer::open(parent, pread);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let counts = pool.install(|| {
        (0..d.tables.len())
            .into_par_iter()
            .with_max_len(1)
            .map_init(
                || (Vec::new(), Vec::new(), Vec::new(), ParentCache::default()),
                |(tb, gb, pb, cache), t| {
                    let mut c = [0u64; 4];
                    for (v, g) in d.table(t, tb) {
                        let Grain::At(off) = g else {
                            c[3] += d.grain;
                            continue;
                        };
                        let data = d.data.get(off, d.grain as usize, gb);
                        for (k, block) in data.chunks(BLOCK).enumerate() {
                            let n = block.len() as u64;
                            if is_zero(block) {
                                c[3] += n;
                                continue;
                            }
                            match p.locate_cached(v + (k * BLOCK) as u64, cache) {
                                None => c[0] += n,
                                Some(po) => {
                                    let pdata = p.data.get(po, block.len(), pb);
                                    if pdata == block {
                                        c[2] += n;
                                    } else if is_zero(pdata) {
                                        c[0] += n;
                                    } else {
                                        c[1] += n;
                                    }
                                }
                            }
                        }
                    }
                    c
                },
            )
            .reduce(|| [0; 4], |a, b| std::array::from_fn(|i| a[i] + b[i]))
    });
    println!(
        "fresh {} overwritten {} identical {} zeroed {}",
        counts[0], counts[1], counts[2], counts[3]
    );
}
