//! The results of classification: bytes and 4 KiB blocks per [`GrainClass`] for one layer
//! ([`LayerStats`]). These types are a contract: `scan --json` prints them and the layer cache
//! stores them, so fields are added, never renamed. Workers count into their own
//! [`LayerStats`] and the totals are summed with `AddAssign`, so results are integers
//! independent of thread count and order.

use std::ops::{Add, AddAssign};

/// Number of slices of the allocation-order profile.
pub const PROFILE_SLICES: usize = 10;

/// The class of a grain or block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrainClass {
    /// Growth into space that reads zero in the parent view.
    Fresh,
    /// Replaced parent data with different data.
    Overwritten,
    /// Rewrote exactly what the parent view holds.
    Identical,
    /// All zero.
    Zeroed,
}

/// Bytes (or block counts) per class.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClassCounts {
    /// Into space that was zero in the parent view.
    pub fresh: u64,
    /// Over parent data.
    pub overwritten: u64,
    /// Equal to the parent view.
    pub identical: u64,
    /// All zero.
    pub zeroed: u64,
}

impl ClassCounts {
    /// Adds `n` to `class`.
    #[inline]
    pub fn count(&mut self, class: GrainClass, n: u64) {
        match class {
            GrainClass::Fresh => self.fresh += n,
            GrainClass::Overwritten => self.overwritten += n,
            GrainClass::Identical => self.identical += n,
            GrainClass::Zeroed => self.zeroed += n,
        }
    }

    /// Sum over the classes.
    pub fn total(&self) -> u64 {
        self.fresh + self.overwritten + self.identical + self.zeroed
    }
}

impl AddAssign for ClassCounts {
    fn add_assign(&mut self, o: Self) {
        self.fresh += o.fresh;
        self.overwritten += o.overwritten;
        self.identical += o.identical;
        self.zeroed += o.zeroed;
    }
}

impl Add for ClassCounts {
    type Output = Self;
    fn add(mut self, o: Self) -> Self {
        self += o;
        self
    }
}

/// What classifying one layer found.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerStats {
    /// Bytes per class; sums to `allocated_bytes`.
    pub classes: ClassCounts,
    /// 4 KiB blocks per class.
    pub blocks_4k: ClassCounts,
    /// Bytes of virtual space the layer's tables map (zero entries included).
    pub allocated_bytes: u64,
    /// Bytes of grain data stored in the files (compressed size for compressed grains).
    pub stored_bytes: u64,
    /// Bytes mapped by zero entries (KDMV zeroed-grain GTE, COWD GTE 1, SESparse type 2).
    pub zero_entry_bytes: u64,
    /// Bytes mapped by SESparse unmapped entries (type 1).
    pub unmapped_bytes: u64,
    /// Allocated grains (pieces).
    pub grains: u64,
    /// Bytes the layer holds (pieces cut at 4 KiB boundaries) where its parent view is zero.
    pub parent_zero_bytes: u64,
    /// Bytes the layer holds in 4 KiB blocks whose whole parent block is zero (equal to
    /// `parent_zero_bytes` where grains are whole blocks; the ceiling counts by blocks).
    #[serde(default)]
    pub parent_block_zero_bytes: u64,
    /// Bytes the layer holds whose own content is zero.
    pub content_zero_bytes: u64,
    /// Class bytes by position of the grain in its file, in tenths of the data area: the
    /// order in which a sparse delta grew. Zero and unmapped entries are not in it.
    pub profile: [ClassCounts; PROFILE_SLICES],
}

impl AddAssign for LayerStats {
    fn add_assign(&mut self, o: Self) {
        self.classes += o.classes;
        self.blocks_4k += o.blocks_4k;
        self.allocated_bytes += o.allocated_bytes;
        self.stored_bytes += o.stored_bytes;
        self.zero_entry_bytes += o.zero_entry_bytes;
        self.unmapped_bytes += o.unmapped_bytes;
        self.grains += o.grains;
        self.parent_zero_bytes += o.parent_zero_bytes;
        self.parent_block_zero_bytes += o.parent_block_zero_bytes;
        self.content_zero_bytes += o.content_zero_bytes;
        for (a, b) in self.profile.iter_mut().zip(o.profile) {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add() {
        let mut a = ClassCounts {
            fresh: 1,
            overwritten: 2,
            identical: 3,
            zeroed: 4,
        };
        a += a;
        assert_eq!(a.total(), 20);
        assert_eq!(a.identical, 6);
    }
}
