//! The `key = "value"` dictionary VMware writes for `.vmx` and `.vmsd` files: pure parsing
//! from bytes, bounded against hostile input. Interpreting the keys is `vmx.rs`'s and
//! `vmsd.rs`'s job; reading the files is `mod.rs`'s.
//!
//! One entry a line; `#` starts a comment; a value is quoted (`"..."`) or bare. Inside a
//! value VMware escapes `"`, `|` and control characters as `|` and two hex digits (`|22` is
//! `"`, `|7C` is `|`), as libvirt's VMX reader also decodes them. Keys are compared without
//! regard to case (`fileName` and `filename` both occur). Text that is not UTF-8 (an older
//! `.encoding = "windows-1252"` file) is read byte for byte as Latin-1, so that no entry is lost.

use std::fmt;

/// The largest file read: real `.vmx` files are a few KiB, a `.vmsd` grows by ~1 KiB per
/// snapshot; 1 MiB is the cap qemu uses for a descriptor.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;
/// The most lines read.
pub const MAX_LINES: usize = 65_536;
/// The longest key kept (real keys are under 64 bytes).
pub const MAX_KEY_BYTES: usize = 256;

/// Why a dictionary was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line, 0 for the whole file.
    pub line: usize,
    /// What was wrong, in words.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", crate::sanitize::sanitize(&self.message))
        } else {
            write!(
                f,
                "line {}: {}",
                self.line,
                crate::sanitize::sanitize(&self.message)
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// One `key = value` line: the key in lower case, the value un-escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number.
    pub line: usize,
    /// The key, lower-cased.
    pub key: String,
    /// The value, quotes removed and `|XX` escapes decoded.
    pub value: String,
}

/// Parses a dictionary. Lines without `=` are skipped (VMware ignores what it does not
/// understand, and one stray line must not hide a VM's disks); a file larger than
/// [`MAX_CONFIG_BYTES`], with more than [`MAX_LINES`] lines or a NUL byte (not a text
/// file) is refused.
pub fn parse_dictionary(data: &[u8]) -> Result<Vec<Entry>, ConfigError> {
    let whole = |message: String| ConfigError { line: 0, message };
    if data.len() > MAX_CONFIG_BYTES {
        return Err(whole(format!(
            "{} bytes, more than the {MAX_CONFIG_BYTES} a VMware configuration file can need",
            data.len()
        )));
    }
    if let Some(at) = data.iter().position(|&b| b == 0) {
        return Err(whole(format!(
            "a NUL byte at offset {at:#x}: not a text file"
        )));
    }
    let text = decode(data);
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if line > MAX_LINES {
            return Err(whole(format!("more than {MAX_LINES} lines")));
        }
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let Some((key, value)) = l.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            continue;
        }
        out.push(Entry {
            line,
            key: key.to_ascii_lowercase(),
            value: unescape(unquote(value.trim())),
        });
    }
    Ok(out)
}

/// UTF-8 when it is; else each byte as the Latin-1 character of that value.
fn decode(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(s) => s.to_string(),
        Err(_) => data.iter().map(|&b| char::from(b)).collect(),
    }
}

/// The text between the first pair of double quotes; a value without a closing quote runs
/// to the end of the line; a bare value is taken as it is.
fn unquote(v: &str) -> &str {
    match v.strip_prefix('"') {
        Some(rest) => rest.split('"').next().unwrap_or(rest),
        None => v,
    }
}

/// Decodes `|XX` escapes (two hex digits); a `|` not followed by two hex digits stays.
pub fn unescape(v: &str) -> String {
    unescape_with(v, b'|')
}

/// Decodes `%XX` escapes of `/`, `\` and `%` only: vSphere writes inventory names (a VM's
/// `displayName`) so; any other `%` is text.
pub fn unescape_percent(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let code = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], code) {
            (b'%', Some(c @ (b'/' | b'\\' | b'%'))) => {
                out.push(c);
                i += 3;
            }
            (x, _) => {
                out.push(x);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn unescape_with(v: &str, escape: u8) -> String {
    let b = v.as_bytes();
    if !b.contains(&escape) {
        return v.to_string();
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let code = b
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match code {
            Some(c) if b[i] == escape => {
                out.push(c);
                i += 3;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_unquoted_and_unescaped() {
        let e = parse_dictionary(
            b".encoding = \"UTF-8\"\r\n# a comment\n\ndisplayName = \"say |22hi|22 |7C x|2\"\nnumvcpus=2\nno equals sign here\nscsi0:0.FileName = \"a b.vmdk\" trailing\nopen = \"unterminated\n",
        )
        .unwrap();
        let kv: Vec<(&str, &str)> = e
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            kv,
            [
                (".encoding", "UTF-8"),
                ("displayname", "say \"hi\" | x|2"),
                ("numvcpus", "2"),
                ("scsi0:0.filename", "a b.vmdk"),
                ("open", "unterminated"),
            ]
        );
        assert_eq!(e[1].line, 4);
    }

    #[test]
    fn percent_escapes_of_slashes_only() {
        assert_eq!(unescape_percent("a%2fb%5Cc%25d 50%off"), "a/b\\c%d 50%off");
    }

    #[test]
    fn hostile_input_is_bounded() {
        assert!(parse_dictionary(&vec![b'a'; MAX_CONFIG_BYTES + 1]).is_err());
        assert!(parse_dictionary(&b"\n".repeat(MAX_LINES + 1)).is_err());
        assert!(parse_dictionary(b"a = \"b\0\"").is_err());
        // Latin-1 text keeps its entries.
        let e = parse_dictionary(b"displayName = \"caf\xe9\"").unwrap();
        assert_eq!(e[0].value, "caf\u{e9}");
    }
}
