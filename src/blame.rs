//! Blame: which guest files the top delta's blocks belong to. Every allocated range of the
//! top layer (with its 4 KiB block's class, from [`classify_layer_blocks`], so classes match
//! `scan`) is split by partition and, inside an NTFS volume, by the cluster owners of the top
//! view ([`Volume`]); overwritten bytes are also looked up in the parent view's volume, to say
//! whose data they replaced and whether that was live data or free space that was not zero.
//! Bytes are aggregated into groups (by file, directory or extension) whose totals sum to the
//! layer's allocated bytes.

use std::collections::HashMap;

use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;

use crate::bytes::is_zero;
use crate::chain::Chain;
use crate::classify::{
    BLOCK, BlockRun, ClassCounts, GrainClass, LayerStats, classify_layer_blocks,
};
use crate::error::{Error, Result};
use crate::format::GrainState;
use crate::guest::ntfs_map::{Holder, Volume};
use crate::guest::partition::{Partition, partitions};
use crate::guest::reader::ViewReader;
use crate::progress::Progress;
use crate::view::{ComposedView, Scratch, ViewBytes};

/// Overwritten bytes, by what the parent view held there.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OverwriteSplit {
    /// Replaced a file's (or NTFS metadata's) data that was live in the parent.
    pub live_parent_data: u64,
    /// Written into clusters the parent's `$Bitmap` marks free but which were not zero (old
    /// deleted data): growth into free space, like `fresh`.
    pub parent_free_space: u64,
    /// The parent view has no readable NTFS volume there.
    pub unknown: u64,
}

/// One group of the top layer's bytes: a file (or directory, or extension), or one of the
/// other [`kind`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// One of [`kind`].
    pub kind: &'static str,
    /// The file's path in the top view (a directory or `*.ext` when grouped so; empty for
    /// `free_now` and `unpartitioned`).
    pub path: String,
    /// Bytes per class (classes of whole 4 KiB blocks, as `scan` counts blocks).
    pub classes: ClassCounts,
    /// `classes.overwritten`, split by what the parent view held.
    pub overwritten_split: OverwriteSplit,
    /// Whose parent data the overwritten bytes replaced, most first: (kind in the parent
    /// view, path there, bytes).
    pub overwrote: Vec<(&'static str, String, u64)>,
}

/// One partition of the top view, and its NTFS volume if it holds one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlamedVolume {
    /// The partition.
    pub partition: Partition,
    /// NTFS cluster size, when the partition holds NTFS.
    pub cluster_bytes: Option<u64>,
    /// NTFS file records that could not be read, when the partition holds NTFS.
    pub unreadable_records: Option<u64>,
}

/// What blaming the top layer found: `report::blame` builds the JSON from it.
#[derive(Debug, Clone)]
pub struct Blame {
    /// The top layer's file.
    pub layer: PathBuf,
    /// Virtual disk size.
    pub disk_bytes: u64,
    /// Bytes the layer's tables map; the groups' bytes sum to it.
    pub allocated_bytes: u64,
    /// The layer's bytes per class of their 4 KiB block; the groups' classes sum to it.
    pub classes: ClassCounts,
    /// How groups are keyed.
    pub group_by: GroupBy,
    /// The partitions found in the top view.
    pub volumes: Vec<BlamedVolume>,
    /// Why overwritten bytes could not be looked up in the parent, if so.
    pub parent_note: Option<String>,
    /// Every group, most bytes first.
    pub groups: Vec<Group>,
}

/// How groups are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupBy {
    /// One group per file (or stream, or directory index).
    #[default]
    File,
    /// One group per directory holding the files.
    Dir,
    /// One group per file name extension.
    Ext,
}

impl GroupBy {
    /// The name, as the JSON writes it: `file`, `dir` or `ext`.
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::File => "file",
            GroupBy::Dir => "dir",
            GroupBy::Ext => "ext",
        }
    }
}

/// Group kinds, as written in JSON.
pub mod kind {
    /// A file of the top view.
    pub const FILE: &str = "file";
    /// Clusters the top view's `$Bitmap` marks free: written, then deleted.
    pub const FREE_NOW: &str = "free_now";
    /// NTFS metadata, and allocated clusters no file record claims.
    pub const METADATA: &str = "metadata";
    /// Outside every partition (the partition table itself, gaps, the disk's tail).
    pub const UNPARTITIONED: &str = "unpartitioned";
    /// In a partition that holds no NTFS volume.
    pub const OTHER_FS: &str = "other_fs";
}

/// The partitions and NTFS volumes of one view.
struct Guest {
    parts: Vec<Partition>,
    /// One per partition: its NTFS volume, if it holds one.
    volumes: Vec<Option<Volume>>,
}

/// The partitions and NTFS volumes of the disk that `chain.layers[..upto]` compose.
fn guest(chain: &Chain, upto: usize, disk: u64) -> std::result::Result<Guest, String> {
    let view = ComposedView::new(&chain.layers, upto);
    let parts = partitions(&mut ViewReader::new(view, 0, disk))?;
    volumes(view, parts)
}

/// Reads the NTFS volume of each partition; one that holds NTFS but cannot be read is an
/// error.
fn volumes(view: ComposedView<'_>, parts: Vec<Partition>) -> std::result::Result<Guest, String> {
    let volumes = parts
        .iter()
        .map(|p| Volume::read(view, p))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Guest { parts, volumes })
}

/// Who holds a byte range in one view, as a group key.
fn locate(g: &Guest, pos: u64, end: u64, f: &mut dyn FnMut(u64, u64, &'static str, String)) {
    let mut pos = pos;
    while pos < end {
        let Some(i) = g
            .parts
            .iter()
            .position(|p| p.start <= pos && pos < p.start + p.len)
        else {
            let next = g
                .parts
                .iter()
                .map(|p| p.start)
                .filter(|&s| s > pos)
                .min()
                .unwrap_or(end)
                .min(end);
            f(pos, next - pos, kind::UNPARTITIONED, String::new());
            pos = next;
            continue;
        };
        let p = &g.parts[i];
        let stop = end.min(p.start + p.len);
        match &g.volumes[i] {
            None => f(
                pos,
                stop - pos,
                kind::OTHER_FS,
                format!("partition {} ({})", p.number, p.kind),
            ),
            Some(v) => v.holders(pos, stop - pos, |at, n, h| match h {
                Holder::Owner(o) => {
                    let o = &v.owners[o as usize];
                    let k = if o.metadata {
                        kind::METADATA
                    } else {
                        kind::FILE
                    };
                    f(at, n, k, o.path.clone());
                }
                Holder::Free => f(at, n, kind::FREE_NOW, String::new()),
                Holder::Unclaimed => f(at, n, kind::METADATA, "(allocated, no file record)".into()),
                Holder::Tail => f(at, n, kind::METADATA, "(backup boot sector)".into()),
            }),
        }
        pos = stop;
    }
}

/// The group path for `path` under `by`.
fn group_path(by: GroupBy, k: &str, path: String) -> String {
    if k != kind::FILE {
        return path;
    }
    match by {
        GroupBy::File => path,
        GroupBy::Dir => match path.rfind('/') {
            Some(0) | None => "/".into(),
            Some(i) => path[..i].to_string(),
        },
        GroupBy::Ext => {
            let name = path.rsplit('/').next().unwrap_or("");
            match name.rfind('.') {
                Some(i) if i > 0 => format!("*{}", name[i..].to_lowercase()),
                _ => "(no extension)".into(),
            }
        }
    }
}

/// Merges neighbouring runs of one class (sorted input), so that owners are looked up once
/// per extent of a file rather than once per 4 KiB block.
fn coalesce(runs: Vec<BlockRun>) -> Vec<BlockRun> {
    let mut out: Vec<BlockRun> = Vec::with_capacity(runs.len());
    for r in runs {
        match out.last_mut() {
            Some(p) if p.class == r.class && p.virt + p.len == r.virt => p.len += r.len,
            _ => out.push(r),
        }
    }
    out
}

#[derive(Debug, Default)]
struct Acc {
    classes: ClassCounts,
    split: OverwriteSplit,
    parent: HashMap<(&'static str, String), u64>,
}

/// The NTFS volumes of one view of a chain (the top's, its parent's or the base's), read
/// once: what `scan` asks of the guest.
pub struct ViewNtfs {
    guest: Guest,
    /// How many layers the view composes.
    upto: usize,
}

impl std::fmt::Debug for ViewNtfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ViewNtfs(layers ..{}, {} partitions)",
            self.upto,
            self.guest.parts.len()
        )
    }
}

/// The NTFS volumes of the view `chain.layers[..upto]` compose: `Ok(None)` when it has none
/// (no layer, no partition table that can be read, no NTFS boot sector), an error naming the
/// volume when a partition holds NTFS that cannot be read.
pub fn view_ntfs(chain: &Chain, upto: usize) -> std::result::Result<Option<ViewNtfs>, String> {
    if upto == 0 {
        return Ok(None);
    }
    let view = ComposedView::new(&chain.layers, upto);
    let Ok(parts) = partitions(&mut ViewReader::new(view, 0, chain.top().virtual_size)) else {
        return Ok(None);
    };
    let guest = volumes(view, parts)?;
    Ok(guest
        .volumes
        .iter()
        .any(Option::is_some)
        .then_some(ViewNtfs { guest, upto }))
}

/// The NTFS volumes of the top layer's parent view (see [`view_ntfs`]); none for a base
/// alone. What `scan` needs to split the top's `overwritten` bytes.
pub fn parent_ntfs(chain: &Chain) -> std::result::Result<Option<ViewNtfs>, String> {
    match chain.layers.len() {
        0 | 1 => Ok(None),
        n => view_ntfs(chain, n - 1),
    }
}

/// Splits the overwritten block runs of the top layer by what the parent's volume holds.
pub fn split_overwritten(parent: &ViewNtfs, runs: Vec<BlockRun>) -> OverwriteSplit {
    let mut split = OverwriteSplit::default();
    for r in coalesce(runs)
        .into_iter()
        .filter(|r| r.class == GrainClass::Overwritten)
    {
        locate(
            &parent.guest,
            r.virt,
            r.virt + r.len,
            &mut |_, b, k, _| match k {
                kind::FREE_NOW => split.parent_free_space += b,
                kind::FILE | kind::METADATA => split.live_parent_data += b,
                _ => split.unknown += b,
            },
        );
    }
    split
}

/// Blames every allocated byte of the top layer of `chain`, on rayon's current pool.
pub fn blame_chain(chain: &Chain, by: GroupBy, progress: &dyn Progress) -> Result<Blame> {
    let n = chain.layers.len();
    let top = chain.top();
    let disk = top.virtual_size;
    let top_path = top.path.clone();
    let in_top = |e: String| Error::Other(format!("{}: top view: {e}", top_path.display()));
    let g = guest(chain, n, disk).map_err(in_top)?;
    if !g.volumes.iter().any(Option::is_some) {
        let found = if g.parts.is_empty() {
            "no partition table and no NTFS boot sector".to_string()
        } else {
            g.parts
                .iter()
                .map(|p| format!("partition {} ({})", p.number, p.kind))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Error::Unsupported {
            path: top_path,
            what: format!(
                "blame reads NTFS volumes, and this disk has none ({found}); `scan` still \
                 classifies its grains"
            ),
        });
    }
    // The parent view: what overwritten bytes replaced. A parent whose tables cannot be read
    // leaves the split "unknown" rather than failing the blame of the top.
    let (parent, parent_note) = if n >= 2 {
        match guest(chain, n - 1, disk) {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(format!("parent view: {e}"))),
        }
    } else {
        (None, None)
    };
    let (stats, runs) = classify_layer_blocks(chain, n - 1, progress, None)?;
    let runs = coalesce(runs);
    let mut b = attribute(chain, &g, parent.as_ref(), &runs, by);
    b.allocated_bytes = stats.allocated_bytes;
    b.parent_note = parent_note;
    Ok(b)
}

/// Attributes the top layer's block runs (sorted, coalesced) to the groups of `by`, reading
/// owners in the top view `g` and, for overwritten bytes, in the parent view.
fn attribute(
    chain: &Chain,
    g: &Guest,
    parent: Option<&Guest>,
    runs: &[BlockRun],
    by: GroupBy,
) -> Blame {
    let top = chain.top();
    let mut groups: HashMap<(&'static str, String), Acc> = HashMap::new();
    for &BlockRun { virt, len, class } in runs {
        locate(g, virt, virt + len, &mut |at, bytes, k, path| {
            let acc = groups.entry((k, group_path(by, k, path))).or_default();
            acc.classes.count(class, bytes);
            if class != GrainClass::Overwritten {
                return;
            }
            match parent {
                None => acc.split.unknown += bytes,
                Some(pg) => locate(pg, at, at + bytes, &mut |_, b, pk, pp| {
                    match pk {
                        kind::FREE_NOW => acc.split.parent_free_space += b,
                        kind::FILE | kind::METADATA => acc.split.live_parent_data += b,
                        _ => acc.split.unknown += b,
                    }
                    *acc.parent.entry((pk, pp)).or_default() += b;
                }),
            }
        });
    }

    // Block classes in bytes: what the groups add up to (grain classes can differ when a
    // grain mixes blocks of several classes).
    let classes = groups
        .values()
        .fold(ClassCounts::default(), |a, g| a + g.classes);
    let mut out: Vec<Group> = groups
        .into_iter()
        .map(|((kind, path), a)| {
            let mut overwrote: Vec<(&'static str, String, u64)> = a
                .parent
                .into_iter()
                .map(|((kind, path), bytes)| (kind, path, bytes))
                .collect();
            overwrote.sort_by(|x, y| y.2.cmp(&x.2).then_with(|| x.1.cmp(&y.1)));
            Group {
                kind,
                path,
                classes: a.classes,
                overwritten_split: a.split,
                overwrote,
            }
        })
        .collect();
    out.sort_by(|x, y| {
        y.classes
            .total()
            .cmp(&x.classes.total())
            .then_with(|| x.kind.cmp(y.kind))
            .then_with(|| x.path.cmp(&y.path))
    });
    let volumes = g
        .parts
        .iter()
        .zip(&g.volumes)
        .map(|(partition, v)| BlamedVolume {
            partition: partition.clone(),
            cluster_bytes: v.as_ref().map(|v| v.cluster),
            unreadable_records: v.as_ref().map(|v| v.unreadable_records),
        })
        .collect();
    Blame {
        layer: top.path.clone(),
        disk_bytes: top.virtual_size,
        allocated_bytes: classes.total(),
        classes,
        group_by: by,
        volumes,
        parent_note: None,
        groups: out,
    }
}

/// What zeroing the guest's free space and then shrinking the top layer returns, counted
/// at grain granularity: a grain is returned only when every byte the layer holds in it is
/// free in the top view's NTFS volume (`$Bitmap`) or reads as zero (its 4 KiB block is
/// zero). Grains that are zero entries already hold no data and return nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shrink {
    /// Stored grains returned.
    pub grains: u64,
    /// Their bytes: what the delta's data shrinks by.
    pub bytes: u64,
}

/// What `scan` learns from the top view's guest: blame's groups (one per file) and what
/// zeroing the free space and shrinking would return.
#[derive(Debug, Clone)]
pub struct TopGuest {
    /// Blame of the top layer, grouped by file.
    pub blame: Blame,
    /// Zeroing free space, then shrinking.
    pub shrink: Shrink,
}

/// Blames the top layer of `chain` from its classification (`stats`, and every block run,
/// sorted as [`classify_layer_blocks`] gives them), with the top view's volumes `top` and the
/// parent view's `parent`, and counts what zeroing free space and shrinking returns.
pub fn top_guest(
    chain: &Chain,
    top: &ViewNtfs,
    parent: Option<&ViewNtfs>,
    stats: &LayerStats,
    runs: Vec<BlockRun>,
) -> Result<TopGuest> {
    let runs = coalesce(runs);
    let mut blame = attribute(
        chain,
        &top.guest,
        parent.map(|p| &p.guest),
        &runs,
        GroupBy::File,
    );
    blame.allocated_bytes = stats.allocated_bytes;
    let shrink = shrink(chain, &top.guest, &runs)?;
    Ok(TopGuest { blame, shrink })
}

/// [`Shrink`] of the top layer, from its block runs (sorted, coalesced).
fn shrink(chain: &Chain, g: &Guest, runs: &[BlockRun]) -> Result<Shrink> {
    let top = chain.top();
    let mut out = Shrink::default();
    let mut gte = Vec::new();
    // The grain being looked at: its virtual range, and whether it is returned so far.
    let mut open: Option<(u64, u64, bool)> = None;
    let mut close = |open: Option<(u64, u64, bool)>, out: &mut Shrink| -> Result<()> {
        let Some((start, end, true)) = open else {
            return Ok(());
        };
        if let Some((_, p)) = top.lookup(start, &mut gte)?
            && matches!(
                p.state,
                GrainState::Data { .. } | GrainState::Compressed { .. }
            )
        {
            out.grains += 1;
            out.bytes += end - start;
        }
        Ok(())
    };
    for &BlockRun { virt, len, class } in runs {
        let mut pos = virt;
        let end = virt + len;
        while pos < end {
            let (gstart, gend) = match top.extent_at(pos) {
                Some(ei) => {
                    let e = &top.extents[ei];
                    let gb = e.grain_bytes().max(1);
                    let s = e.virt_start + (pos - e.virt_start) / gb * gb;
                    (s, (s + gb).min(e.virt_start + e.len()))
                }
                None => (pos, end),
            };
            let stop = end.min(gend);
            if open.is_none_or(|(s, _, _)| s != gstart) {
                close(open.take(), &mut out)?;
                open = Some((gstart, gend, true));
            }
            if let Some((_, _, ok)) = &mut open
                && *ok
                && class != GrainClass::Zeroed
            {
                locate(g, pos, stop, &mut |_, _, k, _| *ok &= k == kind::FREE_NOW);
            }
            pos = stop;
        }
    }
    close(open, &mut out)?;
    Ok(out)
}

/// The free space of the base's guest: clusters the base view's NTFS `$Bitmap` marks free,
/// and how many of those bytes do not read as zero (each 4 KiB block's part tested).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FreeSpace {
    /// Bytes in free clusters.
    pub free_bytes: u64,
    /// Of those, bytes whose 4 KiB block (the part of it in the free run) is not all zero:
    /// old deleted data that every thin copy of this base carries.
    pub dirty_bytes: u64,
}

/// Most bytes read at once while testing free space for zeros.
const FREE_CHUNK: u64 = 1 << 20;

/// Reads the free space of the volumes of `view` (on rayon's current pool), a grain of the
/// view's top layer at a time (at most 1 MiB): a grain the layers do not hold reads as zero
/// without a read or a buffer to clear.
pub fn free_space(chain: &Chain, view: &ViewNtfs) -> Result<FreeSpace> {
    let chunk = chain.layers[view.upto - 1]
        .grain_size()
        .next_power_of_two()
        .clamp(BLOCK, FREE_CHUNK);
    let runs: Vec<(u64, u64)> = view
        .guest
        .volumes
        .iter()
        .flatten()
        .flat_map(|v| v.free_runs())
        .collect();
    let free_bytes = runs.iter().map(|(s, e)| e - s).sum();
    // Chunks that end on 4 KiB boundaries (inside a run), so blocks are never split.
    let chunks: Vec<(u64, u64)> = runs
        .iter()
        .flat_map(|&(s, e)| {
            let mut out = Vec::new();
            let mut pos = s;
            while pos < e {
                let next = ((pos / chunk) + 1) * chunk;
                let stop = next.min(e);
                out.push((pos, stop));
                pos = stop;
            }
            out
        })
        .collect();
    let cv = ComposedView::new(&chain.layers, view.upto);
    let dirty_bytes = chunks
        .par_iter()
        .map_init(
            || (Vec::new(), Scratch::default()),
            |(buf, scratch), &(s, e)| -> Result<u64> {
                let len = (e - s) as usize;
                let bytes = match cv.resolve(s, len, buf, scratch)? {
                    ViewBytes::Zero => return Ok(0),
                    ViewBytes::Bytes(b) => b,
                };
                let mut dirty = 0;
                let mut pos = s;
                while pos < e {
                    let stop = ((pos / BLOCK) + 1) * BLOCK;
                    let stop = stop.min(e);
                    let i = (pos - s) as usize;
                    let j = (stop - s) as usize;
                    if !is_zero(&bytes[i..j]) {
                        dirty += stop - pos;
                    }
                    pos = stop;
                }
                Ok(dirty)
            },
        )
        .try_reduce(|| 0, |a, b| Ok(a + b))?;
    Ok(FreeSpace {
        free_bytes,
        dirty_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalescing_keeps_classes_apart() {
        let r = |virt, len, class| BlockRun { virt, len, class };
        let out = coalesce(vec![
            r(0, 4096, GrainClass::Fresh),
            r(4096, 4096, GrainClass::Fresh),
            r(8192, 4096, GrainClass::Zeroed),
            r(16384, 4096, GrainClass::Zeroed),
        ]);
        assert_eq!(
            out,
            vec![
                r(0, 8192, GrainClass::Fresh),
                r(8192, 4096, GrainClass::Zeroed),
                r(16384, 4096, GrainClass::Zeroed),
            ]
        );
    }

    #[test]
    fn group_paths() {
        let f = |by, p: &str| group_path(by, kind::FILE, p.to_string());
        assert_eq!(f(GroupBy::File, "/a/b.TXT"), "/a/b.TXT");
        assert_eq!(f(GroupBy::Dir, "/a/b.TXT"), "/a");
        assert_eq!(f(GroupBy::Dir, "/b.txt"), "/");
        assert_eq!(f(GroupBy::Ext, "/a/b.TXT"), "*.txt");
        assert_eq!(f(GroupBy::Ext, "/a/.profile"), "(no extension)");
        assert_eq!(f(GroupBy::Ext, "/a.d/readme"), "(no extension)");
        assert_eq!(group_path(GroupBy::Dir, kind::FREE_NOW, String::new()), "");
    }
}
