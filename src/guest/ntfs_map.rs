//! Who owns each cluster of an NTFS volume: a map from disk bytes to files, built from the
//! MFT with the `ntfs` crate reading through a [`ViewReader`] over one partition of a
//! composed view. Every in-use file record (base and extension records alike, so attribute
//! lists need no special case) gives its non-resident attributes' data runs; extension
//! records credit their base record. Paths come from `$FILE_NAME` parent references (the
//! Win32 name over the DOS 8.3 one). Records 0-23 and everything under `/$Extend` are NTFS
//! metadata. `$Bitmap` says which clusters are allocated, so clusters nobody owns can be told
//! apart: free (the "free now" of blame) or allocated without a known owner.

use std::collections::HashMap;
use std::io::Read;

use ::ntfs::attribute_value::NtfsAttributeValue;
use ::ntfs::structured_values::{NtfsFileName, NtfsFileNamespace};
use ::ntfs::{Ntfs, NtfsAttributeType, NtfsFileFlags};

use super::partition::Partition;
use super::reader::ViewReader;
use crate::view::ComposedView;

/// File records read before giving up (a hostile MFT length must not mean an endless walk).
const MAX_RECORDS: u64 = 1 << 26;
/// First record number of ordinary files; the ones below are reserved for NTFS metadata.
const FIRST_USER_RECORD: u64 = 24;
/// Parent directories followed up to the root before calling a path broken (a loop guard).
const MAX_DEPTH: usize = 256;
/// The root directory's record number.
const ROOT: u64 = 5;

/// One owner of clusters: a file (or directory, or stream) by its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Path inside the volume, `/` separated; a named stream or index is suffixed
    /// (`/dir/file:stream`, `/dir:$I30`).
    pub path: String,
    /// NTFS metadata ($MFT, $LogFile, ..., and /$Extend).
    pub metadata: bool,
}

/// A run of bytes on the disk that one owner holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    start: u64,
    end: u64,
    owner: u32,
}

/// What owns a byte range of the volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// `owners[i]`.
    Owner(u32),
    /// A cluster `$Bitmap` marks free.
    Free,
    /// A cluster `$Bitmap` marks allocated but no file record claims.
    Unclaimed,
    /// The partition's tail past the volume's last cluster (the backup boot sector).
    Tail,
}

/// The cluster owners of one NTFS volume, in disk byte offsets.
#[derive(Debug)]
pub struct Volume {
    /// The partition the volume fills.
    pub partition: Partition,
    /// Bytes per cluster.
    pub cluster: u64,
    /// Clusters in the volume.
    pub clusters: u64,
    /// Owners, indexed by [`Holder::Owner`].
    pub owners: Vec<Owner>,
    /// In-use file records that could not be read (their clusters count as unclaimed).
    pub unreadable_records: u64,
    runs: Vec<Run>,
    bitmap: Vec<u8>,
}

fn err(p: &Partition, what: &str, e: impl std::fmt::Display) -> String {
    format!(
        "NTFS volume in partition {} (byte {}): {what}: {e}",
        p.number, p.start
    )
}

impl Volume {
    /// Reads the volume in `part` of the disk `view` shows. `Ok(None)`: the partition does
    /// not hold NTFS. A volume whose MFT or `$Bitmap` cannot be read is an error; a single
    /// unreadable file record is counted, not fatal.
    pub fn read(view: ComposedView<'_>, part: &Partition) -> Result<Option<Volume>, String> {
        let mut r = ViewReader::new(view, part.start, part.len);
        let mut boot = [0u8; 512];
        if part.len < 512 || r.read_exact_at(0, &mut boot).is_err() {
            return Ok(None);
        }
        if !super::partition::is_ntfs_boot(&boot) {
            return Ok(None);
        }
        // The ntfs crate checks its input, but it indexes slices in places: a panic on a
        // hostile volume becomes this volume's error instead of taking the process down.
        let part2 = part.clone();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            Self::walk(&mut r, &part2)
        }))
        .unwrap_or_else(|_| {
            Err(err(
                part,
                "file system",
                "the NTFS reader failed on this volume",
            ))
        })
        .map(Some)
    }

    fn walk(r: &mut ViewReader<'_>, part: &Partition) -> Result<Volume, String> {
        let ntfs = Ntfs::new(r).map_err(|e| err(part, "boot sector", e))?;
        let cluster = u64::from(ntfs.cluster_size());
        if ntfs.size() > part.len {
            return Err(err(
                part,
                "boot sector",
                format!(
                    "the volume ({} bytes) is larger than its partition ({} bytes)",
                    ntfs.size(),
                    part.len
                ),
            ));
        }
        let clusters = ntfs.size() / cluster;
        let record_size = u64::from(ntfs.file_record_size());
        let mft = ntfs.file(r, 0).map_err(|e| err(part, "$MFT record 0", e))?;
        let mft_len = match mft.data(r, "") {
            Some(Ok(item)) => item
                .to_attribute()
                .map_err(|e| err(part, "$MFT $DATA", e))?
                .value_length(),
            Some(Err(e)) => return Err(err(part, "$MFT $DATA", e)),
            None => return Err(err(part, "$MFT", "no $DATA attribute")),
        };
        // The MFT cannot be larger than the volume: a hostile length must not mean millions of
        // failing reads.
        let records = (mft_len.min(part.len) / record_size).min(MAX_RECORDS);

        let bitmap = {
            let f = ntfs
                .file(r, 6)
                .map_err(|e| err(part, "$Bitmap record 6", e))?;
            let item = f
                .data(r, "")
                .ok_or_else(|| err(part, "$Bitmap", "no $DATA attribute"))?
                .map_err(|e| err(part, "$Bitmap $DATA", e))?;
            let attr = item
                .to_attribute()
                .map_err(|e| err(part, "$Bitmap $DATA", e))?;
            let len = attr.value_length();
            // NTFS rounds $Bitmap up to 8 bytes; anything far larger is not this volume's.
            if len < clusters.div_ceil(8) || len > clusters.div_ceil(8) + (1 << 20) {
                return Err(err(
                    part,
                    "$Bitmap",
                    format!("{len} bytes cannot map {clusters} clusters"),
                ));
            }
            let value = attr.value(r).map_err(|e| err(part, "$Bitmap $DATA", e))?;
            let mut buf = Vec::new();
            value
                .attach(r)
                .take(len)
                .read_to_end(&mut buf)
                .map_err(|e| err(part, "$Bitmap $DATA", e))?;
            if (buf.len() as u64) < clusters.div_ceil(8) {
                return Err(err(part, "$Bitmap $DATA", "shorter than its length says"));
            }
            buf
        };

        // record -> (parent, name, namespace rank); runs keyed by (record, suffix).
        let mut names: HashMap<u64, (u64, String, u8)> = HashMap::new();
        let mut raw_runs: Vec<(u64, u64, u64, String)> = Vec::new();
        let mut unreadable = 0u64;
        let mut hdr = [0u8; 8];
        for n in 0..records {
            let file = match ntfs.file(r, n) {
                Ok(f) => f,
                // Never-used records have no FILE signature: not an error.
                Err(::ntfs::NtfsError::InvalidFileSignature { .. }) => continue,
                // Anything else (a broken update sequence, a record the crate cannot seek to,
                // as in an MFT that needs its own attribute list) is counted: its clusters
                // end "allocated, no file record".
                Err(_) => {
                    unreadable += 1;
                    continue;
                }
            };
            if !file.flags().contains(NtfsFileFlags::IN_USE) {
                continue;
            }
            // The base record reference (offset 0x20 of the header): the crate keeps it
            // private, and extension records must credit their base record.
            let base = match file.position().value() {
                Some(pos) if r.read_exact_at(pos.get() + 0x20, &mut hdr).is_ok() => {
                    u64::from_le_bytes(hdr) & 0xFFFF_FFFF_FFFF
                }
                _ => {
                    unreadable += 1;
                    continue;
                }
            };
            let owner = if base == 0 { n } else { base };
            for attr in file.attributes_raw() {
                let Ok(attr) = attr else {
                    unreadable += 1;
                    break;
                };
                let Ok(ty) = attr.ty() else { continue };
                if ty == NtfsAttributeType::FileName {
                    if let Ok(fname) = attr.structured_value::<_, NtfsFileName>(r) {
                        let rank = match fname.namespace() {
                            NtfsFileNamespace::Win32 | NtfsFileNamespace::Win32AndDos => 2,
                            NtfsFileNamespace::Posix => 1,
                            NtfsFileNamespace::Dos => 0,
                        };
                        let entry = (
                            fname.parent_directory_reference().file_record_number(),
                            fname.name().to_string_lossy(),
                            rank,
                        );
                        match names.get(&owner) {
                            Some(old) if old.2 >= rank => {}
                            _ => {
                                names.insert(owner, entry);
                            }
                        }
                    }
                    continue;
                }
                if attr.is_resident() {
                    continue;
                }
                let suffix = stream_suffix(ty, attr.name().map(|s| s.to_string_lossy()).ok());
                let Ok(NtfsAttributeValue::NonResident(v)) = attr.value(r) else {
                    continue;
                };
                for run in v.data_runs() {
                    let Ok(run) = run else {
                        unreadable += 1;
                        break;
                    };
                    // Sparse runs have no position: nothing on disk.
                    let Some(pos) = run.data_position().value() else {
                        continue;
                    };
                    let start = pos.get();
                    let Some(end) = start.checked_add(run.allocated_size()) else {
                        continue;
                    };
                    // A run past the volume is hostile or broken: clip it to the partition.
                    let end = end.min(part.len);
                    if start < end {
                        raw_runs.push((start, end, owner, suffix.clone()));
                    }
                }
            }
        }

        // $Boot's data run starts at cluster 0, a position the crate cannot express (its
        // positions are non-zero): credit the boot clusters to record 7 here.
        let boot_len = 8192u64.div_ceil(cluster) * cluster;
        if !raw_runs.iter().any(|x| x.0 == 0) {
            raw_runs.push((0, boot_len.min(part.len), 7, String::new()));
        }

        // One owner per (record, suffix), with its resolved path.
        let mut owners = Vec::new();
        let mut index: HashMap<(u64, String), u32> = HashMap::new();
        let mut paths: HashMap<u64, String> = HashMap::new();
        let mut runs = Vec::with_capacity(raw_runs.len());
        for (start, end, rec, suffix) in raw_runs {
            let key = (rec, suffix);
            let id = match index.get(&key) {
                Some(&id) => id,
                None => {
                    let path = path_of(rec, &names, &mut paths);
                    let metadata = rec < FIRST_USER_RECORD || path.starts_with("/$Extend/");
                    let id = owners.len() as u32;
                    owners.push(Owner {
                        path: format!("{path}{}", key.1),
                        metadata,
                    });
                    index.insert(key, id);
                    id
                }
            };
            runs.push(Run {
                start: part.start + start,
                end: part.start + end,
                owner: id,
            });
        }
        // Cross-linked clusters (a broken or hostile volume): the first claim wins, so runs
        // never overlap and a lookup is one binary search.
        runs.sort_by_key(|x| (x.start, x.end));
        let mut clean: Vec<Run> = Vec::with_capacity(runs.len());
        for mut x in runs {
            if let Some(last) = clean.last() {
                x.start = x.start.max(last.end);
            }
            if x.start < x.end {
                clean.push(x);
            }
        }
        Ok(Volume {
            partition: part.clone(),
            cluster,
            clusters,
            owners,
            unreadable_records: unreadable,
            runs: clean,
            bitmap,
        })
    }

    /// Whether `$Bitmap` marks the cluster allocated.
    fn allocated(&self, cluster: u64) -> bool {
        self.bitmap
            .get((cluster / 8) as usize)
            .is_some_and(|b| b >> (cluster % 8) & 1 == 1)
    }

    /// The clusters `$Bitmap` marks free, as disk byte ranges (neighbours merged), in order.
    pub fn free_runs(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        let mut c = 0;
        while c < self.clusters {
            // Whole bytes of allocated clusters are skipped at once.
            if c % 8 == 0
                && c + 8 <= self.clusters
                && self.bitmap.get((c / 8) as usize) == Some(&0xff)
            {
                c += 8;
                continue;
            }
            if !self.allocated(c) {
                let start = self.partition.start + c * self.cluster;
                match out.last_mut() {
                    Some((_, end)) if *end == start => *end += self.cluster,
                    _ => out.push((start, start + self.cluster)),
                }
            }
            c += 1;
        }
        out
    }

    /// Calls `f` for each piece of `[start, start + len)` (disk bytes, inside the partition)
    /// with what holds it.
    pub fn holders(&self, start: u64, len: u64, mut f: impl FnMut(u64, u64, Holder)) {
        let end = start + len;
        let mut pos = start;
        while pos < end {
            let i = self.runs.partition_point(|x| x.start <= pos);
            if i > 0 && self.runs[i - 1].end > pos {
                let x = self.runs[i - 1];
                let n = x.end.min(end) - pos;
                f(pos, n, Holder::Owner(x.owner));
                pos += n;
                continue;
            }
            // Not in a run: up to the next run or cluster boundary, by the bitmap.
            let next_run = self.runs.get(i).map_or(end, |x| x.start.min(end));
            let rel = pos - self.partition.start;
            let c = rel / self.cluster;
            let cluster_end = self.partition.start + (c + 1) * self.cluster;
            let n = next_run.min(cluster_end).min(end) - pos;
            let h = if c >= self.clusters {
                Holder::Tail
            } else if self.allocated(c) {
                Holder::Unclaimed
            } else {
                Holder::Free
            };
            f(pos, n, h);
            pos += n;
        }
    }
}

/// The suffix that names a non-resident attribute other than a file's unnamed `$DATA`.
fn stream_suffix(ty: NtfsAttributeType, name: Option<String>) -> String {
    let name = name.unwrap_or_default();
    match ty {
        NtfsAttributeType::Data if name.is_empty() => String::new(),
        NtfsAttributeType::Data => format!(":{name}"),
        _ if name.is_empty() => format!(":{ty:?}"),
        _ => format!(":{name}"),
    }
}

/// The path of record `rec`, following parent references up to the root (memoized).
fn path_of(
    rec: u64,
    names: &HashMap<u64, (u64, String, u8)>,
    memo: &mut HashMap<u64, String>,
) -> String {
    if rec == ROOT {
        return "/".into();
    }
    if let Some(p) = memo.get(&rec) {
        return p.clone();
    }
    let mut parts = Vec::new();
    let mut cur = rec;
    let mut prefix = String::new();
    for _ in 0..MAX_DEPTH {
        if cur == ROOT {
            break;
        }
        if let Some(p) = memo.get(&cur) {
            prefix = p.clone();
            break;
        }
        match names.get(&cur) {
            Some((parent, name, _)) => {
                // Names come from the image: no separator passes (NTFS names hold none, a
                // damaged record might). Control characters stay: JSON and CSV carry the real
                // name, and the text renderer escapes it for the terminal.
                parts.push(name.replace('/', "\u{2215}"));
                cur = *parent;
            }
            None => {
                prefix = format!("/<record {cur}>");
                break;
            }
        }
    }
    let mut path = prefix;
    for p in parts.iter().rev() {
        path.push('/');
        path.push_str(p);
    }
    if path.is_empty() {
        path = format!("/<record {rec}>");
    }
    memo.insert(rec, path.clone());
    path
}
