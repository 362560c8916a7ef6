//! The text descriptor (FORMATS.md section 1): header keys, extent lines and `ddb.*` entries.
//!
//! Parsing is lenient where readers are (comments, blank lines, CRLF, spaces around `=`,
//! either key order) and strict where a wrong guess would mislead: every extent line must
//! parse, CIDs must be hex, and at most [`MAX_DESCRIPTOR_BYTES`] are read. Resolving the
//! file names is the caller's job.

use crate::error::{Corrupt, Structure};

/// The largest separate descriptor read; qemu reads at most 1 MiB (FORMATS.md 1.1).
pub const MAX_DESCRIPTOR_BYTES: u64 = 1 << 20;

/// Access mode of an extent line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Access {
    /// `RW`
    ReadWrite,
    /// `RDONLY`
    ReadOnly,
    /// `NOACCESS`
    NoAccess,
}

/// The type word of an extent line (FORMATS.md 1.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtentType {
    /// `SPARSE`: a KDMV file (or a COWD file for old hosted redo logs).
    Sparse,
    /// `FLAT`: raw data at an offset of a file.
    Flat,
    /// `ZERO`: no file, reads as zeros.
    Zero,
    /// `VMFS`: raw data (ESXi thick disk).
    Vmfs,
    /// `VMFSSPARSE`: a COWD redo log.
    VmfsSparse,
    /// `SESPARSE`: an SESparse extent.
    SeSparse,
    /// `VMFSRDM` / `VMFSRAW`: a raw device mapping, not readable from a file copy.
    RawDevice(String),
    /// Anything else, as written.
    Other(String),
}

/// One extent line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtentLine {
    /// 1-based line number in the descriptor.
    pub line: usize,
    /// Absolute offset of the line in the descriptor's file, for error messages.
    pub at: u64,
    /// Access mode.
    pub access: Access,
    /// Size in sectors, as the line says.
    pub sectors: u64,
    /// Type word.
    pub kind: ExtentType,
    /// File name, as written (relative to the descriptor's directory unless absolute).
    pub file: Option<String>,
    /// Offset in sectors into the file where the extent starts (FLAT/VMFS).
    pub offset: u64,
}

/// A parsed descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Descriptor {
    /// `version=`
    pub version: Option<u32>,
    /// `CID=`
    pub cid: Option<u32>,
    /// `parentCID=`; `ffffffff` means no parent.
    pub parent_cid: Option<u32>,
    /// `createType=`, unquoted.
    pub create_type: Option<String>,
    /// `parentFileNameHint=`, unquoted.
    pub parent_hint: Option<String>,
    /// `encoding=`
    pub encoding: Option<String>,
    /// Extent lines in disk order.
    pub extents: Vec<ExtentLine>,
    /// `ddb.*` entries in file order.
    pub ddb: Vec<(String, String)>,
}

/// `parentCID` value meaning "no parent".
pub const NO_PARENT_CID: u32 = 0xffff_ffff;

impl Descriptor {
    /// The parent hint, when the descriptor names a parent.
    pub fn parent(&self) -> Option<&str> {
        self.parent_hint.as_deref().filter(|h| !h.is_empty())
    }

    /// A `ddb.` value by key (with the `ddb.` prefix).
    pub fn ddb(&self, key: &str) -> Option<&str> {
        self.ddb
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// Whether `data` looks like a text descriptor: no NUL before the first line break that
/// matters, and a `createType` key or an extent line somewhere in the text.
pub fn looks_like_descriptor(data: &[u8]) -> bool {
    let head = &data[..data.len().min(64 * 1024)];
    let text_end = head.iter().position(|&b| b == 0).unwrap_or(head.len());
    let Ok(text) = std::str::from_utf8(&head[..text_end]) else {
        // Non-UTF-8 descriptors exist (windows-1252); judge them by their ASCII keys.
        let lossy = String::from_utf8_lossy(&head[..text_end]);
        return lossy.contains("createType") || lossy.contains("# Disk DescriptorFile");
    };
    text.lines().any(|l| {
        let l = l.trim();
        l.starts_with("createType") || l.starts_with("# Disk DescriptorFile") || is_extent_line(l)
    })
}

fn is_extent_line(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or("");
    matches!(
        first.to_ascii_uppercase().as_str(),
        "RW" | "RDONLY" | "NOACCESS"
    ) && line
        .split_whitespace()
        .nth(1)
        .is_some_and(|s| s.chars().all(|c| c.is_ascii_digit()))
}

/// Parses descriptor text. `base` is the absolute offset of the text in its file (for the
/// embedded descriptor of a KDMV file), so errors point at the right bytes.
pub fn parse_descriptor(data: &[u8], base: u64) -> Result<Descriptor, Corrupt> {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let text = String::from_utf8_lossy(&data[..end]);
    let mut d = Descriptor::default();
    let mut offset = base;
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line_offset = offset;
        offset = offset.saturating_add(raw.len() as u64 + 1);
        let line = raw.trim_end_matches('\r').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let here = Structure::Descriptor { line: line_no };
        if is_extent_line(line) || starts_with_access(line) {
            d.extents
                .push(parse_extent_line(line, line_no, line_offset)?);
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(Corrupt::syntax(
                here,
                line_offset,
                format!("expected key=value or an extent line, found {line:?}"),
            ));
        };
        let key = key.trim();
        let value = unquote(value.trim());
        if key.len() > 4 && key.get(..4).is_some_and(|k| k.eq_ignore_ascii_case("ddb.")) {
            d.ddb.push((key.to_string(), value.to_string()));
            continue;
        }
        match key.to_ascii_lowercase().as_str() {
            "version" => {
                d.version = Some(value.parse().map_err(|_| {
                    Corrupt::syntax(
                        here.clone(),
                        line_offset,
                        format!("version {value:?} is not a number"),
                    )
                })?)
            }
            "cid" => d.cid = Some(parse_cid(value, &here, line_offset, "CID")?),
            "parentcid" => d.parent_cid = Some(parse_cid(value, &here, line_offset, "parentCID")?),
            "createtype" => d.create_type = Some(value.to_string()),
            "parentfilenamehint" => d.parent_hint = Some(value.to_string()),
            "encoding" => d.encoding = Some(value.to_string()),
            // Other header keys (isNativeSnapshot, changeTrackPath, ...) are informational.
            _ => {}
        }
    }
    Ok(d)
}

fn starts_with_access(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or("");
    matches!(
        first.to_ascii_uppercase().as_str(),
        "RW" | "RDONLY" | "NOACCESS"
    ) && !line.contains('=')
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
}

fn parse_cid(value: &str, here: &Structure, offset: u64, field: &str) -> Result<u32, Corrupt> {
    u32::from_str_radix(value, 16).map_err(|_| {
        Corrupt::syntax(
            here.clone(),
            offset,
            format!("{field} {value:?} is not a 32-bit hexadecimal number"),
        )
    })
}

fn parse_extent_line(line: &str, line_no: usize, offset: u64) -> Result<ExtentLine, Corrupt> {
    let here = Structure::Descriptor { line: line_no };
    let err = |msg: String| Corrupt::syntax(here.clone(), offset, msg);
    // ACCESS SECTORS TYPE ["FILENAME" [OFFSET ...]]; the file name may contain spaces.
    let (head, quoted, tail) = match line.find('"') {
        Some(q1) => {
            let rest = &line[q1 + 1..];
            let q2 = rest
                .find('"')
                .ok_or_else(|| err(format!("unterminated file name in extent line {line:?}")))?;
            (&line[..q1], Some(&rest[..q2]), &rest[q2 + 1..])
        }
        None => (line, None, ""),
    };
    let mut words = head.split_whitespace();
    let access = match words.next().map(|w| w.to_ascii_uppercase()).as_deref() {
        Some("RW") => Access::ReadWrite,
        Some("RDONLY") => Access::ReadOnly,
        Some("NOACCESS") => Access::NoAccess,
        _ => {
            return Err(err(format!(
                "extent line {line:?} must start with RW, RDONLY or NOACCESS"
            )));
        }
    };
    let sectors_word = words
        .next()
        .ok_or_else(|| err(format!("extent line {line:?} has no size in sectors")))?;
    let sectors: u64 = sectors_word.parse().map_err(|_| {
        err(format!(
            "extent size {sectors_word:?} is not a number of sectors"
        ))
    })?;
    let type_word = words
        .next()
        .ok_or_else(|| err(format!("extent line {line:?} has no extent type")))?;
    let kind = match type_word.to_ascii_uppercase().as_str() {
        "SPARSE" => ExtentType::Sparse,
        "FLAT" => ExtentType::Flat,
        "ZERO" => ExtentType::Zero,
        "VMFS" => ExtentType::Vmfs,
        "VMFSSPARSE" => ExtentType::VmfsSparse,
        "SESPARSE" => ExtentType::SeSparse,
        "VMFSRDM" | "VMFSRAW" => ExtentType::RawDevice(type_word.to_string()),
        _ => ExtentType::Other(type_word.to_string()),
    };
    if let Some(extra) = words.next() {
        return Err(err(format!(
            "unexpected {extra:?} before the file name in extent line {line:?}"
        )));
    }
    let mut tail_words = tail.split_whitespace();
    let file_offset = match tail_words.next() {
        Some(w) => w
            .parse()
            .map_err(|_| err(format!("extent offset {w:?} is not a number of sectors")))?,
        None => 0,
    };
    if kind != ExtentType::Zero && quoted.is_none() {
        return Err(err(format!("extent line {line:?} names no file")));
    }
    Ok(ExtentLine {
        line: line_no,
        at: offset,
        access,
        sectors,
        kind,
        file: quoted.map(str::to_string),
        offset: file_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ESXI_DELTA: &str = "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=8f67ca74\nparentCID=0172e8a4\nisNativeSnapshot=\"no\"\ncreateType=\"vmfsSparse\"\nparentFileNameHint=\"vmfs_thick.vmdk\"\n# Extent description\nRW 4096 VMFSSPARSE \"vmfs_thick-000001-delta.vmdk\"\n\n# The Disk Data Base \n#DDB\n\nddb.longContentID = \"3b7f4c5b3e3f3c1a8f67ca74\"\n";

    #[test]
    fn parses_an_esxi_snapshot_descriptor() {
        let d = parse_descriptor(ESXI_DELTA.as_bytes(), 0).unwrap();
        assert_eq!(d.version, Some(1));
        assert_eq!(d.cid, Some(0x8f67ca74));
        assert_eq!(d.parent_cid, Some(0x0172e8a4));
        assert_eq!(d.create_type.as_deref(), Some("vmfsSparse"));
        assert_eq!(d.parent(), Some("vmfs_thick.vmdk"));
        assert_eq!(d.extents.len(), 1);
        assert_eq!(d.extents[0].kind, ExtentType::VmfsSparse);
        assert_eq!(d.extents[0].sectors, 4096);
        assert_eq!(
            d.extents[0].file.as_deref(),
            Some("vmfs_thick-000001-delta.vmdk")
        );
        assert_eq!(d.ddb("ddb.longContentID"), Some("3b7f4c5b3e3f3c1a8f67ca74"));
        assert!(looks_like_descriptor(ESXI_DELTA.as_bytes()));
    }

    #[test]
    fn accepts_crlf_spaces_and_zero_extents_and_names_with_spaces() {
        let text = "version = 1\r\nCID = fffffffe\r\nparentCID=ffffffff\r\ncreateType = \"custom\"\r\nRDONLY 2048 FLAT \"my disk-flat.vmdk\" 0\r\nRW 2048 ZERO\r\nNOACCESS 8 FLAT \"x\" 16\r\n";
        let d = parse_descriptor(text.as_bytes(), 0).unwrap();
        assert_eq!(d.cid, Some(0xfffffffe));
        assert_eq!(d.parent(), None);
        assert_eq!(d.extents.len(), 3);
        assert_eq!(d.extents[0].file.as_deref(), Some("my disk-flat.vmdk"));
        assert_eq!(d.extents[1].kind, ExtentType::Zero);
        assert_eq!(d.extents[2].access, Access::NoAccess);
        assert_eq!(d.extents[2].offset, 16);
    }

    #[test]
    fn text_stops_at_the_first_nul() {
        let mut data = b"createType=\"monolithicSparse\"\nRW 128 SPARSE \"a.vmdk\"\n".to_vec();
        data.extend_from_slice(&[0, b'g', b'a', b'r', b'b']);
        let d = parse_descriptor(&data, 512).unwrap();
        assert_eq!(d.extents.len(), 1);
    }

    #[test]
    fn garbage_lines_are_errors_with_line_and_offset() {
        let text = "version=1\nthis is not a descriptor line\n";
        let e = parse_descriptor(text.as_bytes(), 0x200).unwrap_err();
        assert_eq!(e.structure, Structure::Descriptor { line: 2 });
        assert_eq!(e.offset, 0x20a);
        let e = parse_descriptor(b"CID=xyz\n", 0).unwrap_err();
        assert!(e.to_string().contains("not a 32-bit hexadecimal"), "{e}");
        let e = parse_descriptor(b"RW 12 FLAT \"unterminated\n", 0).unwrap_err();
        assert!(e.to_string().contains("unterminated"), "{e}");
        let e = parse_descriptor(b"RW 99999999999999999999999 FLAT \"a\" 0\n", 0).unwrap_err();
        assert!(e.to_string().contains("not a number of sectors"), "{e}");
        let e = parse_descriptor(b"RW 12 FLAT\n", 0).unwrap_err();
        assert!(e.to_string().contains("names no file"), "{e}");
    }

    #[test]
    fn binary_is_not_a_descriptor() {
        assert!(!looks_like_descriptor(&[
            0x4b, 0x44, 0x4d, 0x56, 0, 0, 0, 1
        ]));
        assert!(!looks_like_descriptor(b"hello world\n"));
    }
}
