//! The 4 KiB block accumulator: pieces of a layer (grains, or parts of one) are cut at 4 KiB
//! boundaries of the virtual disk, and each block gets the class of all its pieces together
//! (`Flags`, first match wins), counted in `blocks_4k`. When a caller asks, the blocks'
//! allocated ranges are recorded with their class ([`BlockRun`]): what `blame` attributes to
//! guest files and `scan` splits by the parent's NTFS volume.

use super::stats::{GrainClass, LayerStats};

/// Size of the blocks counted in `blocks_4k`.
pub const BLOCK: u64 = 4096;

/// Three facts about a range, AND-combined over pieces.
#[derive(Debug, Clone, Copy)]
pub(super) struct Flags {
    /// The layer's bytes are all zero.
    pub content_zero: bool,
    /// They equal the parent view's.
    pub equal: bool,
    /// The parent view's are all zero.
    pub parent_zero: bool,
}

impl Flags {
    /// Nothing seen yet: every fact still holds.
    pub const ALL: Flags = Flags {
        content_zero: true,
        equal: true,
        parent_zero: true,
    };

    /// Facts of a range made of two parts.
    #[inline]
    pub fn and(self, o: Flags) -> Flags {
        Flags {
            content_zero: self.content_zero && o.content_zero,
            equal: self.equal && o.equal,
            parent_zero: self.parent_zero && o.parent_zero,
        }
    }

    /// First match wins: zeroed, identical, fresh, overwritten.
    #[inline]
    pub fn class(self) -> GrainClass {
        if self.content_zero {
            GrainClass::Zeroed
        } else if self.equal {
            GrainClass::Identical
        } else if self.parent_zero {
            GrainClass::Fresh
        } else {
            GrainClass::Overwritten
        }
    }
}

/// An allocated byte range of blocks of one class, with that class: what `blame` attributes
/// to guest files. Runs never overlap, and a block's bytes are all in runs of its class (its
/// runs sum to the bytes the layer allocates in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRun {
    /// First byte on the virtual disk.
    pub virt: u64,
    /// Length in bytes (whole blocks, or the allocated part of a block at its ends).
    pub len: u64,
    /// The class of each block the run covers.
    pub class: GrainClass,
}

/// Collects [`BlockRun`]s when a caller asks for them: all of them (blame), or the blocks of
/// one class only (scan's NTFS split of `overwritten`, so memory follows that class alone).
#[derive(Debug, Default)]
struct Recorder {
    /// Keep only blocks of this class.
    only: Option<GrainClass>,
    /// Ranges of the open block, merged when contiguous.
    pending: Vec<(u64, u64)>,
    runs: Vec<BlockRun>,
}

/// The 4 KiB block being accumulated (blocks can span grains smaller than 4 KiB).
#[derive(Debug)]
struct BlockAcc {
    index: u64,
    flags: Flags,
}

/// One worker's open block, and its recorder when runs are wanted.
#[derive(Debug, Default)]
pub(super) struct Blocks {
    open: Option<BlockAcc>,
    rec: Option<Recorder>,
}

impl Blocks {
    /// An accumulator; `record` asks for the block runs (of class `only`, if given).
    pub fn new(record: Option<Option<GrainClass>>) -> Self {
        Blocks {
            open: None,
            rec: record.map(|only| Recorder {
                only,
                ..Recorder::default()
            }),
        }
    }

    /// Counts the open block, if any, and hands its ranges to the recorder.
    #[inline]
    pub fn close(&mut self, stats: &mut LayerStats) {
        if let Some(done) = self.open.take() {
            let class = done.flags.class();
            stats.blocks_4k.count(class, 1);
            if let Some(r) = &mut self.rec {
                let Recorder {
                    only,
                    pending,
                    runs,
                } = r;
                if only.is_none_or(|o| o == class) {
                    for (virt, len) in pending.drain(..) {
                        // Neighbouring blocks of one class make one run: a run per extent
                        // of a file rather than per 4 KiB, whatever the delta's size.
                        match runs.last_mut() {
                            Some(r) if r.class == class && r.virt + r.len == virt => r.len += len,
                            _ => runs.push(BlockRun { virt, len, class }),
                        }
                    }
                } else {
                    pending.clear();
                }
            }
        }
    }

    /// Adds a piece's flags (and, when recording, its range) to the 4 KiB block it belongs
    /// to, closing the previous block.
    #[inline]
    pub fn piece(&mut self, stats: &mut LayerStats, virt: u64, len: u64, f: Flags) {
        let index = virt / BLOCK;
        match &mut self.open {
            Some(b) if b.index == index => b.flags = b.flags.and(f),
            _ => {
                self.close(stats);
                self.open = Some(BlockAcc { index, flags: f });
            }
        }
        if let Some(r) = &mut self.rec {
            match r.pending.last_mut() {
                Some((v, l)) if *v + *l == virt => *l += len,
                _ => r.pending.push((virt, len)),
            }
        }
    }

    /// Closes the open block and returns the runs recorded (none when not recording).
    pub fn finish(mut self, stats: &mut LayerStats) -> Vec<BlockRun> {
        self.close(stats);
        self.rec.map(|r| r.runs).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_match_wins() {
        let f = |c, e, p| {
            Flags {
                content_zero: c,
                equal: e,
                parent_zero: p,
            }
            .class()
        };
        assert_eq!(f(true, true, true), GrainClass::Zeroed);
        assert_eq!(f(true, false, false), GrainClass::Zeroed);
        assert_eq!(f(false, true, false), GrainClass::Identical);
        assert_eq!(f(false, false, true), GrainClass::Fresh);
        assert_eq!(f(false, false, false), GrainClass::Overwritten);
    }
}
