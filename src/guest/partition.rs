//! Partition tables of a guest disk: MBR (primary entries and the logical partitions of an
//! extended one) and GPT, read through a [`ViewReader`] over the whole composed disk. Every
//! entry is checked against the disk's size; a broken table is an error naming the structure
//! and its byte offset, never a panic. A disk whose sector 0 is itself an NTFS boot sector
//! (no table) is one whole-disk partition.

use super::reader::ViewReader;

const SECTOR: u64 = 512;
/// Logical partitions followed down an extended partition before giving up (a loop guard).
const MAX_LOGICAL: usize = 128;
/// Most GPT entries read (the specification's usual array is 128).
const MAX_GPT_ENTRIES: u32 = 1024;

/// One partition of the guest disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// 1-based number as a guest would count it (MBR: 1-4 primary, 5+ logical; GPT: entry + 1).
    pub number: u32,
    /// First byte on the disk.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// The table's type: `mbr:0x07`, `gpt:<type GUID>` or `whole-disk`.
    pub kind: String,
}

/// A structure of a partition table that was broken, where, and why.
fn bad(what: &str, offset: u64, why: impl std::fmt::Display) -> String {
    format!("{what} at byte {offset}: {why}")
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Reads one sector at byte `at`, naming `what` if the disk is too short.
fn sector(r: &mut ViewReader<'_>, at: u64, what: &str) -> Result<[u8; 512], String> {
    if at.checked_add(SECTOR).is_none_or(|end| end > r.len()) {
        return Err(bad(
            what,
            at,
            format!("past the end of the {}-byte disk", r.len()),
        ));
    }
    let mut s = [0u8; 512];
    r.read_exact_at(at, &mut s).map_err(|e| bad(what, at, e))?;
    Ok(s)
}

/// Checks a partition's sector range against the disk and turns it into bytes.
fn range(first: u64, count: u64, disk: u64, what: &str, at: u64) -> Result<(u64, u64), String> {
    let start = first.checked_mul(SECTOR);
    let len = count.checked_mul(SECTOR);
    match (start, len) {
        (Some(s), Some(l)) if s.checked_add(l).is_some_and(|e| e <= disk) => Ok((s, l)),
        _ => Err(bad(
            what,
            at,
            format!("sectors {first}+{count} do not fit in the {disk}-byte disk"),
        )),
    }
}

/// Whether a boot sector is NTFS's.
pub fn is_ntfs_boot(s: &[u8]) -> bool {
    s.len() >= 11 && &s[3..11] == b"NTFS    "
}

/// The partitions of the disk `r` reads (sorted by start). An empty list means no table.
pub fn partitions(r: &mut ViewReader<'_>) -> Result<Vec<Partition>, String> {
    let disk = r.len();
    if disk < SECTOR {
        return Ok(Vec::new());
    }
    let mbr = sector(r, 0, "MBR")?;
    if is_ntfs_boot(&mbr) {
        return Ok(vec![Partition {
            number: 1,
            start: 0,
            len: disk,
            kind: "whole-disk".into(),
        }]);
    }
    if mbr[510..512] != [0x55, 0xAA] {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut extended = None;
    for i in 0..4 {
        let at = 446 + i * 16;
        let e = &mbr[at..at + 16];
        let ty = e[4];
        let (first, count) = (u64::from(le32(e, 8)), u64::from(le32(e, 12)));
        let what = format!("MBR partition entry {}", i + 1);
        if ty == 0 || count == 0 {
            continue;
        }
        if ty == 0xEE {
            return gpt(r);
        }
        let (start, len) = range(first, count, disk, &what, at as u64)?;
        if matches!(ty, 0x05 | 0x0F | 0x85) {
            extended = Some((first, start, len));
            continue;
        }
        out.push(Partition {
            number: i as u32 + 1,
            start,
            len,
            kind: format!("mbr:{ty:#04x}"),
        });
    }
    if let Some((ext_first, ext_start, ext_len)) = extended {
        logical(r, ext_first, ext_start + ext_len, &mut out)?;
    }
    out.sort_by_key(|p| p.start);
    check_overlap(&out)?;
    Ok(out)
}

/// Follows the chain of extended boot records from the extended partition at sector
/// `ext_first`; every EBR's link is relative to that first sector.
fn logical(
    r: &mut ViewReader<'_>,
    ext_first: u64,
    ext_end: u64,
    out: &mut Vec<Partition>,
) -> Result<(), String> {
    let disk = r.len();
    let mut ebr_sector = ext_first;
    for n in 0..MAX_LOGICAL {
        let at = ebr_sector * SECTOR;
        let what = format!("extended boot record {}", n + 1);
        let ebr = sector(r, at, &what)?;
        if ebr[510..512] != [0x55, 0xAA] {
            return Err(bad(&what, at + 510, "no 0x55AA signature"));
        }
        let (ty, first, count) = (ebr[446 + 4], le32(&ebr, 446 + 8), le32(&ebr, 446 + 12));
        if ty != 0 && count != 0 {
            let (start, len) = range(
                ebr_sector + u64::from(first),
                u64::from(count),
                disk,
                &what,
                at + 446,
            )?;
            if start + len > ext_end {
                return Err(bad(
                    &what,
                    at + 446,
                    "logical partition ends past its extended partition",
                ));
            }
            out.push(Partition {
                number: 5 + n as u32,
                start,
                len,
                kind: format!("mbr:{ty:#04x}"),
            });
        }
        let next = le32(&ebr, 462 + 8);
        if ebr[462 + 4] == 0 || next == 0 {
            return Ok(());
        }
        ebr_sector = ext_first + u64::from(next);
    }
    Err(format!(
        "extended partition: more than {MAX_LOGICAL} logical partitions (a loop in the EBR chain?)"
    ))
}

/// The GPT at LBA 1 (the protective MBR said so).
fn gpt(r: &mut ViewReader<'_>) -> Result<Vec<Partition>, String> {
    let disk = r.len();
    let h = sector(r, SECTOR, "GPT header")?;
    if &h[0..8] != b"EFI PART" {
        return Err(bad(
            "GPT header",
            SECTOR,
            "no \"EFI PART\" signature after a protective MBR",
        ));
    }
    let entries_lba = le64(&h, 72);
    let count = le32(&h, 80);
    let size = le32(&h, 84);
    if count > MAX_GPT_ENTRIES || !(128..=4096).contains(&size) || !size.is_multiple_of(8) {
        return Err(bad(
            "GPT header",
            SECTOR + 80,
            format!("{count} entries of {size} bytes is not a table this reads"),
        ));
    }
    let table_at = entries_lba
        .checked_mul(SECTOR)
        .filter(|a| {
            a.checked_add(u64::from(count) * u64::from(size))
                .is_some_and(|e| e <= disk)
        })
        .ok_or_else(|| {
            bad(
                "GPT header",
                SECTOR + 72,
                "the entry array lies outside the disk",
            )
        })?;
    let mut table = vec![0u8; count as usize * size as usize];
    r.read_exact_at(table_at, &mut table)
        .map_err(|e| bad("GPT entry array", table_at, e))?;
    let mut out = Vec::new();
    for (i, e) in table.chunks_exact(size as usize).enumerate() {
        if e[0..16].iter().all(|&b| b == 0) {
            continue;
        }
        let at = table_at + (i as u64) * u64::from(size);
        let what = format!("GPT entry {}", i + 1);
        let (first, last) = (le64(e, 32), le64(e, 40));
        if last < first {
            return Err(bad(
                &what,
                at + 32,
                format!("last LBA {last} before first LBA {first}"),
            ));
        }
        let (start, len) = range(first, last - first + 1, disk, &what, at + 32)?;
        out.push(Partition {
            number: i as u32 + 1,
            start,
            len,
            kind: format!("gpt:{}", guid(&e[0..16])),
        });
    }
    out.sort_by_key(|p| p.start);
    check_overlap(&out)?;
    Ok(out)
}

/// A GUID in its usual text form (the first three fields are little-endian).
fn guid(b: &[u8]) -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{}",
        le32(b, 0),
        u16::from_le_bytes([b[4], b[5]]),
        u16::from_le_bytes([b[6], b[7]]),
        b[8],
        b[9],
        b[10..16]
            .iter()
            .map(|x| format!("{x:02X}"))
            .collect::<String>()
    )
}

/// Overlapping partitions would make one byte belong to two volumes.
fn check_overlap(sorted: &[Partition]) -> Result<(), String> {
    for w in sorted.windows(2) {
        if w[0].start + w[0].len > w[1].start {
            return Err(format!(
                "partition table: partitions {} and {} overlap at byte {}",
                w[0].number, w[1].number, w[1].start
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_text_form() {
        // The Microsoft basic data partition type, as stored on disk.
        let b = [
            0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44, 0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26,
            0x99, 0xC7,
        ];
        assert_eq!(guid(&b), "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7");
    }

    #[test]
    fn ranges_are_checked() {
        assert_eq!(range(2048, 2048, 2 << 20, "x", 0), Ok((1 << 20, 1 << 20)));
        assert!(range(2048, 2049, 2 << 20, "x", 0).is_err());
        assert!(range(u64::MAX, 1, u64::MAX, "x", 0).is_err());
    }
}
