//! The composed view: the disk that layers `0..upto` of a chain show together, read without
//! building it. Under layer `i` it is that layer's parent view; with `upto` = every layer it
//! is the top's own view (what the guest sees).
//!
//! A read walks down the layers piece by piece: a layer's allocated data is read from its
//! file, its zero grains read as zeros, and unallocated ranges fall through to the layer
//! below; below the base everything is zero, and so is a hole of a flat extent's sparse
//! file, known without reading it. The common case (the whole range backed by one
//! grain of one layer, or unallocated everywhere) is answered without copying: a borrowed
//! slice of the map, or "zero" without reading anything.

use std::path::Path;

use crate::error::Result;
use crate::format::{ExtentMap, GrainState};
use crate::layer::{Backing, Layer};
use crate::source::Source;

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
    /// The last stretch of a view found to come from one place, so that the next lookups
    /// inside it (the following grains of a delta, in virtual order) skip the walk down the
    /// layers: on a COWD delta over a flat base that walk was a quarter of a scan's time.
    run: Option<Run>,
}

/// A stretch `[start, end)` of the view of `layers[..upto]` that reads as zeros, or as
/// consecutive bytes of one extent's file.
#[derive(Debug, Clone, Copy)]
struct Run {
    view: (usize, usize),
    start: u64,
    end: u64,
    outcome: Outcome,
}

/// What the view holds over a range.
#[derive(Debug, Clone, Copy)]
pub enum ViewBytes<'a> {
    /// All zero, known from metadata: nothing was read.
    Zero,
    /// The bytes.
    Bytes(&'a [u8]),
}

/// Where the view's bytes over a range come from.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// All zero.
    Zero,
    /// One data grain of one layer holds the whole range.
    Data {
        layer: usize,
        extent: usize,
        file_offset: u64,
    },
    /// Several pieces (or a compressed grain) of `layers[..0]`: assemble them.
    Assemble(usize),
}

/// The composed disk of `layers[..upto]`.
#[derive(Debug, Clone, Copy)]
pub struct ComposedView<'c> {
    layers: &'c [Layer],
    upto: usize,
}

impl<'c> ComposedView<'c> {
    /// The view that `layers[..upto]` compose: the parent view of layer `upto`, or with
    /// `upto == layers.len()` the top's own view. `upto == 0` is an all-zero disk.
    pub fn new(layers: &'c [Layer], upto: usize) -> Self {
        ComposedView {
            layers,
            upto: upto.min(layers.len()),
        }
    }

    /// How many layers the view composes.
    pub fn upto(&self) -> usize {
        self.upto
    }

    /// Where the view's bytes over `[virt, virt + len)` come from (metadata only).
    fn outcome(&self, virt: u64, len: usize, s: &mut Scratch) -> Result<Outcome> {
        let end = virt + len as u64;
        let view = (self.layers.as_ptr() as usize, self.upto);
        if let Some(r) = s.run
            && r.view == view
            && r.start <= virt
            && end <= r.end
        {
            return Ok(match r.outcome {
                Outcome::Data {
                    layer,
                    extent,
                    file_offset,
                } => Outcome::Data {
                    layer,
                    extent,
                    file_offset: file_offset + (virt - r.start),
                },
                o => o,
            });
        }
        // How far from `virt` the answer stays the same: the shortest piece met on the way
        // down (each layer above the one that answers is unallocated that far).
        let mut run_end = u64::MAX;
        let mut top = self.upto;
        let outcome = loop {
            if top == 0 {
                break Outcome::Zero;
            }
            let layer = &self.layers[top - 1];
            let Some((ei, p)) = layer.lookup(virt, &mut s.gte)? else {
                break Outcome::Zero;
            };
            if p.virt + p.len < end {
                return Ok(Outcome::Assemble(top));
            }
            run_end = run_end.min(p.virt + p.len);
            match p.state {
                GrainState::Unallocated => top -= 1,
                GrainState::Zero | GrainState::Unmapped => break Outcome::Zero,
                GrainState::Data { file_offset } => {
                    // A hole of a flat extent's file reads as zeros: nothing to read. The
                    // answer holds as far as the hole (or the data) goes.
                    let (hole, span_end) = layer.extents[ei].span_at(file_offset);
                    let span = span_end.saturating_sub(file_offset);
                    if hole && len > 0 && span >= len as u64 {
                        run_end = run_end.min(virt.saturating_add(span));
                        break Outcome::Zero;
                    }
                    let outcome = Outcome::Data {
                        layer: top - 1,
                        extent: ei,
                        file_offset,
                    };
                    if hole {
                        // Part hole, part data: read it, and remember nothing.
                        return Ok(outcome);
                    }
                    run_end = run_end.min(virt.saturating_add(span));
                    break outcome;
                }
                GrainState::Compressed { .. } => return Ok(Outcome::Assemble(top)),
            }
        };
        s.run = Some(Run {
            view,
            start: virt,
            end: run_end,
            outcome,
        });
        Ok(outcome)
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
    ) -> Result<ViewBytes<'a>>
    where
        'c: 'a,
    {
        let outcome = self.outcome(virt, len, s)?;
        match outcome {
            Outcome::Zero => Ok(ViewBytes::Zero),
            Outcome::Data {
                layer,
                extent,
                file_offset,
            } => match self.layers[layer].extents[extent].file() {
                Some(src) => Ok(ViewBytes::Bytes(src.read_at(
                    file_offset,
                    len,
                    buf,
                    &crate::error::Structure::ExtentData,
                )?)),
                // Only a file holds data; a ZERO extent reads as zeros.
                None => Ok(ViewBytes::Zero),
            },
            Outcome::Assemble(top) => {
                let named = self.layers.last().map_or(Path::new(""), |l| &l.path);
                crate::source::grow(buf, len, named)?;
                let out = &mut buf[..len];
                if self.fill_below(top, virt, out, s)? {
                    Ok(ViewBytes::Zero)
                } else {
                    Ok(ViewBytes::Bytes(out))
                }
            }
        }
    }

    /// Reads the view at `virt` into `out`; returns whether the bytes are known to be zero
    /// without having been read.
    pub fn fill(&self, virt: u64, out: &mut [u8], s: &mut Scratch) -> Result<bool> {
        self.fill_below(self.upto, virt, out, s)
    }

    /// [`ComposedView::fill`] of the view of `layers[..top]`.
    fn fill_below(&self, top: usize, virt: u64, out: &mut [u8], s: &mut Scratch) -> Result<bool> {
        if top == 0 {
            out.fill(0);
            return Ok(true);
        }
        let layer = &self.layers[top - 1];
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
                GrainState::Unallocated => known_zero &= self.fill_below(top - 1, v, piece, s)?,
                GrainState::Zero | GrainState::Unmapped => piece.fill(0),
                GrainState::Data { file_offset }
                    if layer.extents[ei].is_hole(file_offset, n as u64) =>
                {
                    piece.fill(0)
                }
                GrainState::Data { file_offset } => match layer.extents[ei].file() {
                    Some(src) => {
                        src.read_into(file_offset, piece, &crate::error::Structure::ExtentData)?;
                        known_zero = false;
                    }
                    // Only a file holds data; a ZERO extent reads as zeros.
                    None => piece.fill(0),
                },
                GrainState::Compressed { marker, grain } => {
                    let e = &layer.extents[ei];
                    match &e.backing {
                        Backing::File { map, source } => {
                            let key = (top - 1, ei);
                            let grain_data = inflate(key, map, source, marker, grain, s)?;
                            let at = (v - e.virt_start - grain * map.grain_bytes()) as usize;
                            piece.copy_from_slice(&grain_data[at..at + n]);
                            known_zero = false;
                        }
                        // Only a file holds compressed grains; a ZERO extent reads as zeros.
                        Backing::Zero { .. } => piece.fill(0),
                    }
                }
            }
            pos += n;
        }
        Ok(known_zero)
    }
}

/// Inflates compressed grain `grain` (its marker at `marker`) of `map`, the map of extent
/// `key.1` of layer `key.0`, into `s.inflated`, where it is kept until another grain is
/// needed, and returns it.
pub fn inflate<'s>(
    key: (usize, usize),
    map: &ExtentMap,
    src: &Source,
    marker: u64,
    grain: u64,
    s: &'s mut Scratch,
) -> Result<&'s [u8]> {
    let len = map.grain_len(grain) as usize;
    let key = (key.0, key.1, grain);
    if s.inflated_key != Some(key) {
        crate::source::grow(&mut s.inflated, len, src.path())?;
        s.inflated_key = None;
        map.inflate(src, marker, grain, &mut s.inflated[..len], &mut s.zdata)
            .map_err(|e| e.in_file(src.path()))?;
        s.inflated_key = Some(key);
    }
    Ok(&s.inflated[..len])
}
