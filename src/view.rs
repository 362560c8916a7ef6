//! The parent view: the composed disk of all layers below a layer, read without building it.
//!
//! A read walks down the chain piece by piece: a layer's allocated data is read from its
//! file, its zero grains read as zeros, and unallocated ranges fall through to the layer
//! below; below the base everything is zero. The common case (the whole range backed by one
//! grain of one layer, or unallocated everywhere) is answered without copying: a borrowed
//! slice of the map, or "zero" without reading anything.

use crate::chain::Chain;
use crate::error::{Error, Result};
use crate::format::{ExtentMap, GrainState};

/// Reusable buffers of one worker thread, so reads allocate nothing per grain.
#[derive(Debug, Default)]
pub struct Scratch {
    /// Grain-table entries read with `pread`.
    pub gte: Vec<u8>,
    /// Compressed bytes of a grain.
    pub zdata: Vec<u8>,
    /// The last inflated grain, and which one it is (layer, extent, grain).
    pub inflated: Vec<u8>,
    inflated_key: Option<(usize, usize, u64)>,
}

/// What the parent view holds over a range.
#[derive(Debug, Clone, Copy)]
pub enum ParentBytes<'a> {
    /// All zero, known from metadata: nothing was read.
    Zero,
    /// The bytes.
    Bytes(&'a [u8]),
}

/// Where the view's bytes over a range come from.
enum Outcome {
    /// All zero.
    Zero,
    /// One data grain of one layer holds the whole range.
    Data {
        layer: usize,
        extent: usize,
        file_offset: u64,
    },
    /// Several pieces (or a compressed grain) below `.0`: assemble them.
    Assemble(usize),
}

/// The composed disk of `chain.layers[..below]`.
#[derive(Debug, Clone, Copy)]
pub struct ParentView<'c> {
    chain: &'c Chain,
    below: usize,
}

impl<'c> ParentView<'c> {
    /// The view under layer `index` (for the base: an all-zero disk).
    pub fn new(chain: &'c Chain, index: usize) -> Self {
        ParentView {
            chain,
            below: index,
        }
    }

    /// Where the view's bytes over `[virt, virt + len)` come from (metadata only).
    fn outcome(&self, virt: u64, len: usize, s: &mut Scratch) -> Result<Outcome> {
        let end = virt + len as u64;
        let mut top = self.below;
        loop {
            if top == 0 {
                return Ok(Outcome::Zero);
            }
            let layer = &self.chain.layers[top - 1];
            let Some((ei, p)) = layer.lookup(virt, &mut s.gte)? else {
                return Ok(Outcome::Zero);
            };
            if p.virt + p.len < end {
                return Ok(Outcome::Assemble(top));
            }
            match p.state {
                GrainState::Unallocated => top -= 1,
                GrainState::Zero | GrainState::Unmapped => return Ok(Outcome::Zero),
                GrainState::Data { file_offset } => {
                    return Ok(Outcome::Data {
                        layer: top - 1,
                        extent: ei,
                        file_offset,
                    });
                }
                GrainState::Compressed { .. } => return Ok(Outcome::Assemble(top)),
            }
        }
    }

    /// The layer, extent and file offset holding the view's bytes over `[virt, virt + len)`
    /// when one data grain holds them all (for read-ahead hints); `None` otherwise.
    pub fn locate(
        &self,
        virt: u64,
        len: usize,
        s: &mut Scratch,
    ) -> Result<Option<(usize, usize, u64)>> {
        Ok(match self.outcome(virt, len, s)? {
            Outcome::Data {
                layer,
                extent,
                file_offset,
            } => Some((layer, extent, file_offset)),
            _ => None,
        })
    }

    /// The view's bytes over `[virt, virt + len)`: borrowed when one grain of one layer holds
    /// them all, otherwise assembled in `buf`.
    pub fn resolve<'a>(
        &'a self,
        virt: u64,
        len: usize,
        buf: &'a mut Vec<u8>,
        s: &mut Scratch,
    ) -> Result<ParentBytes<'a>>
    where
        'c: 'a,
    {
        let outcome = self.outcome(virt, len, s)?;
        match outcome {
            Outcome::Zero => Ok(ParentBytes::Zero),
            Outcome::Data {
                layer,
                extent,
                file_offset,
            } => {
                let src = self.chain.layers[layer].extents[extent]
                    .src()
                    .ok_or_else(|| Error::Other("data extent without a file".into()))?;
                Ok(ParentBytes::Bytes(src.read_at(
                    file_offset,
                    len,
                    buf,
                    &crate::error::Structure::ExtentData,
                )?))
            }
            Outcome::Assemble(top) => {
                crate::source::grow(buf, len, &self.chain.top().path)?;
                let out = &mut buf[..len];
                if self.fill(top, virt, out, s)? {
                    Ok(ParentBytes::Zero)
                } else {
                    Ok(ParentBytes::Bytes(out))
                }
            }
        }
    }

    /// Reads the view of `layers[..top]` at `virt` into `out`; returns whether the bytes are
    /// known to be zero without having been read.
    pub fn fill(&self, top: usize, virt: u64, out: &mut [u8], s: &mut Scratch) -> Result<bool> {
        if top == 0 {
            out.fill(0);
            return Ok(true);
        }
        let layer = &self.chain.layers[top - 1];
        let mut known_zero = true;
        let mut pos = 0usize;
        while pos < out.len() {
            let v = virt + pos as u64;
            let Some((ei, p)) = layer.lookup(v, &mut s.gte)? else {
                out[pos..].fill(0);
                break;
            };
            let n = (p.len.min((out.len() - pos) as u64)) as usize;
            let piece = &mut out[pos..pos + n];
            match p.state {
                GrainState::Unallocated => known_zero &= self.fill(top - 1, v, piece, s)?,
                GrainState::Zero | GrainState::Unmapped => piece.fill(0),
                GrainState::Data { file_offset } => {
                    let src = layer.extents[ei]
                        .src()
                        .ok_or_else(|| Error::Other("data extent without a file".into()))?;
                    src.read_into(file_offset, piece, &crate::error::Structure::ExtentData)?;
                    known_zero = false;
                }
                GrainState::Compressed { marker, grain } => {
                    let grain_data = inflate(self.chain, top - 1, ei, marker, grain, s)?;
                    let e = &layer.extents[ei];
                    let ExtentMap::Hosted(h) = &e.map else {
                        return Err(Error::Other(
                            "compressed grain outside a hosted extent".into(),
                        ));
                    };
                    let at = (v - e.virt_start - grain * h.grain_bytes) as usize;
                    piece.copy_from_slice(&grain_data[at..at + n]);
                    known_zero = false;
                }
            }
            pos += n;
        }
        Ok(known_zero)
    }
}

/// Inflates compressed grain `grain` of extent `ei` of layer `li` into `s.inflated` (kept
/// until another grain is needed) and returns it.
pub fn inflate<'s>(
    chain: &Chain,
    li: usize,
    ei: usize,
    marker: u64,
    grain: u64,
    s: &'s mut Scratch,
) -> Result<&'s [u8]> {
    let e = &chain.layers[li].extents[ei];
    let ExtentMap::Hosted(h) = &e.map else {
        return Err(Error::Other(
            "compressed grain outside a hosted extent".into(),
        ));
    };
    let len = h.grain_bytes.min(h.capacity - grain * h.grain_bytes) as usize;
    if s.inflated_key != Some((li, ei, grain)) {
        let src = e
            .src()
            .ok_or_else(|| Error::Other("compressed extent without a file".into()))?;
        crate::source::grow(&mut s.inflated, len, src.path())?;
        s.inflated_key = None;
        h.read_compressed(src, marker, grain, &mut s.inflated[..len], &mut s.zdata)?;
        s.inflated_key = Some((li, ei, grain));
    }
    Ok(&s.inflated[..len])
}
