//! Escapes text that came from an image or the file system (descriptor lines, parent hints,
//! file and folder names, imported VM names) before it reaches a terminal, so that hostile
//! text cannot move the cursor, rewrite the screen or hide itself.
//!
//! Two tools, one rule: [`sanitize`] escapes a value (newlines included, so a name cannot fake
//! a line of its own), and [`Terminal`] is the writer every text output and every stderr line
//! goes through, escaping whatever a renderer let through except the line breaks and tabs it
//! writes itself. JSON and CSV carry the real text and never pass through either.

use std::io::{self, Write};

/// Replaces control, bidi-override and zero-width characters by `\u{..}` escapes.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_dangerous(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// A writer for terminals: passes text through with every dangerous character escaped as
/// [`sanitize`] does, except `\n` and `\t`. Bytes that are not UTF-8 become `\x..` escapes; a
/// character split across two writes is held until its last byte arrives.
#[derive(Debug)]
pub struct Terminal<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> Terminal<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Terminal {
            inner,
            pending: Vec::new(),
        }
    }

    fn emit(&mut self, text: &str) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in text.char_indices() {
            if c != '\n' && c != '\t' && is_dangerous(c) {
                self.inner.write_all(&text.as_bytes()[start..i])?;
                write!(self.inner, "{}", c.escape_unicode())?;
                start = i + c.len_utf8();
            }
        }
        self.inner.write_all(&text.as_bytes()[start..])
    }
}

impl<W: Write> Write for Terminal<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        let data = std::mem::take(&mut self.pending);
        let mut rest: &[u8] = &data;
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    self.emit(text)?;
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    // `valid_up_to` bytes are UTF-8: the conversion cannot fail.
                    self.emit(std::str::from_utf8(good).unwrap_or_default())?;
                    match e.error_len() {
                        // An incomplete character at the end: wait for its last bytes.
                        None => {
                            rest = bad;
                            break;
                        }
                        Some(n) => {
                            for b in &bad[..n] {
                                write!(self.inner, "\\x{b:02x}")?;
                            }
                            rest = &bad[n..];
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let bytes = std::mem::take(&mut self.pending);
            for b in bytes {
                write!(self.inner, "\\x{b:02x}")?;
            }
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_controls_and_bidi() {
        assert_eq!(sanitize("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(sanitize("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(sanitize("plain name.vmdk"), "plain name.vmdk");
        assert_eq!(sanitize("a\nb"), "a\\u{a}b");
    }

    #[test]
    fn the_terminal_writer_keeps_lines_and_escapes_the_rest() {
        let mut t = Terminal::new(Vec::new());
        t.write_all("vm\x1b]0;owned\x07\tok\n".as_bytes()).unwrap();
        // A character split across writes, then a byte that is not UTF-8.
        let e = "é".as_bytes();
        t.write_all(&e[..1]).unwrap();
        t.write_all(&e[1..]).unwrap();
        t.write_all(b"\xff\n").unwrap();
        t.flush().unwrap();
        assert_eq!(
            String::from_utf8(t.inner).unwrap(),
            "vm\\u{1b}]0;owned\\u{7}\tok\né\\xff\n"
        );
    }
}
