//! Raw data extents (`FLAT`, `VMFS`; FORMATS.md 1.5): byte `v` of the extent is byte
//! `data_offset + v` of its file. They have no grains and no tables; walks cut them into
//! [`FLAT_GRAIN`] pieces, [`FLAT_GRAINS_PER_TABLE`] to a walk unit.

use super::{GrainState, Piece};

/// Virtual grain size used to walk flat extents, which have no grains of their own.
pub const FLAT_GRAIN: u64 = 64 * 1024;
/// Grains per walk unit of a flat extent (32 MiB, as one KDMV grain table at 64 KiB).
pub const FLAT_GRAINS_PER_TABLE: u64 = 512;

/// A raw data extent (`FLAT`, `VMFS`): byte `v` is at `data_offset + v` of its file.
#[derive(Debug, Clone)]
pub struct FlatExtent {
    /// File offset of the extent's first byte.
    pub data_offset: u64,
    /// Extent length in bytes.
    pub capacity: u64,
    /// Length of the file.
    pub file_len: u64,
}

impl FlatExtent {
    /// Bytes of the extent that the file really holds (qemu reads the rest as zeros).
    pub fn available(&self) -> u64 {
        self.file_len
            .saturating_sub(self.data_offset)
            .min(self.capacity)
    }

    /// Virtual bytes one walk unit covers.
    pub fn table_span(&self) -> u64 {
        FLAT_GRAIN * FLAT_GRAINS_PER_TABLE
    }

    fn piece(&self, virt: u64, end: u64) -> Piece {
        let avail = self.available();
        if virt >= avail {
            Piece {
                virt,
                len: end - virt,
                state: GrainState::Zero,
            }
        } else {
            Piece {
                virt,
                len: end.min(avail) - virt,
                state: GrainState::Data {
                    file_offset: self.data_offset + virt,
                },
            }
        }
    }

    /// Calls `f` for every piece of walk unit `t`: one per [`FLAT_GRAIN`] the file holds, and
    /// one for the rest of the unit past the end of the file.
    pub fn walk_table<E>(
        &self,
        t: u64,
        f: &mut dyn FnMut(Piece) -> Result<(), E>,
    ) -> Result<(), E> {
        let span = self.table_span();
        let start = t.saturating_mul(span);
        let end = start.saturating_add(span).min(self.capacity);
        let mut v = start;
        // Past the end of the file there is nothing to read: one piece per table, so that a
        // line claiming petabytes of a tiny file costs one call per table.
        let avail = self.available();
        while v < end {
            let grain_end = if v >= avail {
                end
            } else {
                (v + FLAT_GRAIN).min(end)
            };
            let p = self.piece(v, grain_end);
            v += p.len;
            f(p)?;
        }
        Ok(())
    }

    /// What backs extent byte `virt`: the file up to its end, zeros after.
    pub fn lookup(&self, virt: u64) -> Piece {
        let avail = self.available();
        self.piece(virt, if virt < avail { avail } else { self.capacity })
    }
}
