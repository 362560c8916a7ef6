//! Text for people: the [`Terminal`] writer every table and every stderr line goes through,
//! and the tables of `info` and `scan` ([`LayerInfo`], [`ScanReport`]) written into any
//! `Write`. Binary units here only; exact bytes stay in JSON and CSV.

use std::io::{self, Write};
use std::path::Path;

use crate::classify::ClassCounts;
use crate::report::{LayerInfo, LayerReport, ScanReport};
use crate::sanitize::sanitize;
use crate::units::{format_size, percent};

/// What a piece of a table is, for colour on a terminal ([`paint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The fresh class (red, as in the HTML page and the charts).
    Fresh,
    /// The overwritten class (yellow).
    Overwritten,
    /// The identical class (cyan).
    Identical,
    /// The zeroed class (grey).
    Zeroed,
    /// A row or word that says something failed (bold red).
    Failed,
}

impl Style {
    const ALL: [Style; 5] = [
        Style::Fresh,
        Style::Overwritten,
        Style::Identical,
        Style::Zeroed,
        Style::Failed,
    ];

    /// The style of class `k` in the order fresh, overwritten, identical, zeroed.
    pub fn class(k: usize) -> Style {
        Style::ALL[k.min(3)]
    }

    /// Its ANSI SGR parameters.
    fn sgr(self) -> &'static str {
        match self {
            Style::Fresh => "31",
            Style::Overwritten => "33",
            Style::Identical => "36",
            Style::Zeroed => "90",
            Style::Failed => "1;31",
        }
    }

    /// The marker that opens it: a Unicode noncharacter (U+FDD0 ...), which no text from an
    /// image can carry past [`sanitize`].
    fn marker(self) -> char {
        let i = Style::ALL.iter().position(|s| *s == self).unwrap_or(0);
        // OK to unwrap: U+FDD0 + 0..5 are characters (noncharacters, not surrogates).
        char::from_u32(STYLE_FIRST + i as u32).unwrap_or('\u{fdd0}')
    }
}

/// The first style marker; U+FDDF closes a styled piece.
const STYLE_FIRST: u32 = 0xfdd0;
const STYLE_END: char = '\u{fddf}';

/// `text` marked as `style`: the [`Terminal`] writer colours it when colour is on and drops
/// the marks otherwise, so piped output and golden files are plain text. Pad before painting
/// (`paint(s, &format!("{x:>10}"))`): the marks count as characters in a width.
pub fn paint(style: Style, text: &str) -> String {
    format!("{}{text}{STYLE_END}", style.marker())
}

/// The four class headings, right-aligned in `widths` and each painted in its class's
/// colour, joined by single spaces (as the rows below them are).
pub fn class_heads(names: [&str; 4], widths: [usize; 4]) -> String {
    names
        .iter()
        .zip(widths)
        .enumerate()
        .map(|(k, (n, w))| paint(Style::class(k), &format!("{n:>w$}")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The class names in the order of [`ClassCounts`]' fields.
pub const CLASS_NAMES: [&str; 4] = ["fresh", "overwritten", "identical", "zeroed"];

/// Whether text for people on stdout gets colour: stdout is a terminal, `NO_COLOR` is unset
/// or empty (no-color.org) and `TERM` is not `dumb`.
pub fn colour_wanted(stdout_is_terminal: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var_os("TERM").is_some_and(|v| v == "dumb");
    stdout_is_terminal && !no_color && !dumb
}

/// A writer for terminals: passes text through with every dangerous character escaped as
/// [`sanitize`] does, except `\n` and `\t`. Bytes that are not UTF-8 become `\x..` escapes; a
/// character split across two writes is held until its last byte arrives. The marks of
/// [`paint`] become colour (ANSI SGR) when colour is on, and vanish otherwise: this is the one
/// place colour is written.
#[derive(Debug)]
pub struct Terminal<W: Write> {
    inner: W,
    pending: Vec<u8>,
    colour: bool,
}

impl<W: Write> Terminal<W> {
    /// Wraps `inner`, without colour.
    pub fn new(inner: W) -> Self {
        Terminal {
            inner,
            pending: Vec::new(),
            colour: false,
        }
    }

    /// Wraps `inner`, colouring painted text when `colour` is set ([`colour_wanted`]).
    pub fn with_colour(inner: W, colour: bool) -> Self {
        Terminal {
            colour,
            ..Terminal::new(inner)
        }
    }

    fn emit(&mut self, text: &str) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in text.char_indices() {
            let style = Style::ALL.iter().find(|s| s.marker() == c);
            if style.is_some() || c == STYLE_END {
                self.inner.write_all(&text.as_bytes()[start..i])?;
                if self.colour {
                    match style {
                        Some(s) => write!(self.inner, "\x1b[{}m", s.sgr())?,
                        None => self.inner.write_all(b"\x1b[0m")?,
                    }
                }
                start = i + c.len_utf8();
            } else if c != '\n' && c != '\t' && crate::sanitize::is_dangerous(c) {
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

fn name(path: &str) -> String {
    let n = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string());
    sanitize(&n)
}

/// Renders `info`.
pub fn render_info(out: &mut dyn Write, layers: &[LayerInfo]) -> io::Result<()> {
    writeln!(out, "chain of {} layer(s), base first:", layers.len())?;
    for (i, l) in layers.iter().enumerate() {
        writeln!(out)?;
        writeln!(out, "[{i}] {}", sanitize(&l.path))?;
        writeln!(
            out,
            "    format        {} (createType {})",
            l.format,
            sanitize(&l.create_type)
        )?;
        writeln!(
            out,
            "    virtual size  {} ({} bytes)",
            format_size(l.virtual_size),
            l.virtual_size
        )?;
        writeln!(
            out,
            "    grain size    {} ({} bytes)",
            format_size(l.grain_size),
            l.grain_size
        )?;
        writeln!(
            out,
            "    CID           {}   parentCID {}",
            l.cid.as_deref().unwrap_or("-"),
            l.parent_cid.as_deref().unwrap_or("-")
        )?;
        if let Some(h) = &l.parent_hint {
            writeln!(out, "    parent hint   {}", sanitize(h))?;
        }
        writeln!(
            out,
            "    file size     {} ({} bytes)",
            format_size(l.file_size),
            l.file_size
        )?;
        for e in &l.extents {
            writeln!(
                out,
                "    extent        {:<16} at {:>10} len {:>10}  {}",
                e.kind,
                format_size(e.virtual_offset),
                format_size(e.length),
                e.file
                    .as_deref()
                    .map(name)
                    .unwrap_or_else(|| "(no file)".into())
            )?;
        }
    }
    Ok(())
}

fn class_cells(c: &ClassCounts, total: u64, fmt: &dyn Fn(u64) -> String) -> [String; 4] {
    [c.fresh, c.overwritten, c.identical, c.zeroed]
        .map(|v| format!("{} {:>6}", fmt(v), percent(v, total)))
}

/// Width of wrapped prose (the verdict, the remedies' bases).
const PROSE: usize = 100;

/// Words of `text` in lines of at most `width` characters (a longer word gets its own line),
/// each line after the first starting with `indent` spaces.
fn wrap(text: &str, width: usize, indent: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let room = if lines.is_empty() {
            width
        } else {
            width - indent
        };
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > room {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    for l in lines.iter_mut().skip(1) {
        *l = format!("{}{l}", " ".repeat(indent));
    }
    lines
}

/// A remedy's name for people.
fn remedy_label(name: &str) -> &str {
    match name {
        "refresh" => "refresh",
        "zero_free_and_shrink" => "zero free + shrink",
        "disposable_disk" => "disposable disk",
        "reuse_instead_of_fresh" => "reuse, not fresh (at most)",
        other => other,
    }
}

/// The verdict paragraph and the remedies table.
fn verdict(out: &mut dyn Write, r: &ScanReport) -> io::Result<()> {
    writeln!(out, "Verdict:")?;
    for l in wrap(&sanitize(&r.verdict.text), PROSE - 2, 0) {
        writeln!(out, "  {l}")?;
    }
    let top = r.chain.last().map_or(0, |t| t.allocated_bytes);
    if r.remedies.iter().any(|m| m.bytes.is_some()) || r.chain.len() > 1 {
        writeln!(out)?;
        writeln!(out, "Remedies, and what each returns now:")?;
        writeln!(
            out,
            "  {:<26} {:>10} {:>7}  how it is counted",
            "remedy", "returns", "share"
        )?;
        for m in &r.remedies {
            let (b, share) = match m.bytes {
                Some(b) => (format_size(b), percent(b, top)),
                None => ("-".to_string(), "-".to_string()),
            };
            let head = format!("  {:<26} {:>10} {:>7}  ", remedy_label(m.remedy), b, share);
            let indent = head.chars().count();
            let lines = wrap(&sanitize(&m.basis), PROSE.max(indent + 40) - indent, 0);
            for (i, l) in lines.iter().enumerate() {
                if i == 0 {
                    writeln!(out, "{head}{l}")?;
                } else {
                    writeln!(out, "{}{l}", " ".repeat(indent))?;
                }
            }
        }
    }
    writeln!(out)?;
    Ok(())
}

/// Renders `scan`.
pub fn render_scan(out: &mut dyn Write, r: &ScanReport) -> io::Result<()> {
    writeln!(
        out,
        "deltascope {}: chain of {} layer(s), base first",
        r.deltascope_version,
        r.chain.len()
    )?;
    writeln!(out)?;
    verdict(out, r)?;
    writeln!(
        out,
        "{:<3} {:<32} {:<16} {:>10} {:>9} {:>11} {:>11}",
        "#", "layer", "format", "virtual", "grain", "allocated", "file size"
    )?;
    for (i, l) in r.chain.iter().enumerate() {
        writeln!(
            out,
            "{:<3} {:<32} {:<16} {:>10} {:>9} {:>11} {:>11}",
            i,
            fit(&name(&l.path), 32),
            l.format,
            format_size(l.virtual_size),
            format_size(l.grain_size),
            format_size(l.allocated_bytes),
            format_size(l.file_size)
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "What each layer's grains hold, against the layers below it (bytes):"
    )?;
    writeln!(out, "{:<3} {}", "#", class_heads(CLASS_NAMES, [19; 4]))?;
    for (i, l) in r.chain.iter().enumerate() {
        let c = class_cells(&l.classes, l.allocated_bytes, &|v| {
            format!("{:>10}", format_size(v))
        });
        writeln!(
            out,
            "{:<3} {:>19} {:>19} {:>19} {:>19}",
            i, c[0], c[1], c[2], c[3]
        )?;
    }
    writeln!(out)?;
    writeln!(out, "The same at 4 KiB (blocks):")?;
    writeln!(out, "{:<3} {}", "#", class_heads(CLASS_NAMES, [19; 4]))?;
    for (i, l) in r.chain.iter().enumerate() {
        let total = l.blocks_4k.total();
        let c = class_cells(&l.blocks_4k, total, &|v| format!("{v:>10}"));
        writeln!(
            out,
            "{:<3} {:>19} {:>19} {:>19} {:>19}",
            i, c[0], c[1], c[2], c[3]
        )?;
    }
    if let Some(top) = r.chain.last().filter(|_| r.chain.len() > 1) {
        writeln!(out)?;
        summary(out, top)?;
        if let Some(s) = &r.ntfs_overwritten {
            writeln!(
                out,
                "  NTFS in the parent: of the overwritten bytes, {} replaced live data and {} went into free space that was not zero (growth, like fresh){}.",
                format_size(s.live_parent_data),
                format_size(s.parent_free_space),
                if s.unknown > 0 {
                    format!("; {} outside NTFS", format_size(s.unknown))
                } else {
                    String::new()
                }
            )?;
        }
        profile(out, top)?;
    }
    if let (Some(c), Some(top)) = (&r.ceiling, r.chain.last()) {
        writeln!(out)?;
        writeln!(out, "Ceilings of {}:", name(&top.path))?;
        writeln!(
            out,
            "  hard (virtual size + metadata): {}; now {} ({}).",
            format_size(c.hard_bytes),
            format_size(top.allocated_bytes),
            percent(top.allocated_bytes, c.hard_bytes)
        )?;
        writeln!(
            out,
            "  expected if fresh-first allocation continues: {} ({} more: space that reads as zero below and is not yet written).",
            format_size(c.expected_bytes),
            format_size(c.parent_zero_unwritten_bytes)
        )?;
    }
    if let (Some(b), Some(base)) = (&r.base_audit, r.chain.first()) {
        writeln!(out)?;
        writeln!(out, "Base {} as its clones see it:", name(&base.path))?;
        writeln!(
            out,
            "  {} reads as zero: what a new clone can grow into (its expected ceiling).",
            format_size(b.never_used_bytes)
        )?;
        match (b.dirty_free_bytes, b.free_bytes) {
            (Some(d), Some(f)) => writeln!(
                out,
                "  Its guest's free space is {}, of which {} is not zero: what zeroing it before taking the replica saves in every thin copy.",
                format_size(f),
                format_size(d)
            )?,
            _ => writeln!(
                out,
                "  Its guest's free space is not known (no readable NTFS volume)."
            )?,
        }
    }
    let warnings: Vec<_> = r.chain.iter().flat_map(|l| l.warnings.iter()).collect();
    if !warnings.is_empty() {
        writeln!(out)?;
        for w in warnings {
            writeln!(out, "warning: {}", w.message)?;
        }
    }
    Ok(())
}

fn summary(out: &mut dyn Write, top: &LayerReport) -> io::Result<()> {
    let c = &top.classes;
    let changed_4k = (top.blocks_4k.fresh + top.blocks_4k.overwritten) * 4096;
    writeln!(out, "Top delta {}:", name(&top.path))?;
    writeln!(
        out,
        "  {} allocated; {} ({}) went into space that was zero below it (fresh), {} ({}) replaced data below it (overwritten).",
        format_size(top.allocated_bytes),
        format_size(c.fresh),
        percent(c.fresh, top.allocated_bytes),
        format_size(c.overwritten),
        percent(c.overwritten, top.allocated_bytes)
    )?;
    if top.grain_size > 4096 && changed_4k > 0 {
        writeln!(
            out,
            "  At 4 KiB, {} of it differs from below: copy-on-write amplification {:.2}x ({} grains).",
            format_size(changed_4k),
            top.allocated_bytes as f64 / changed_4k as f64,
            format_size(top.grain_size)
        )?;
    }
    Ok(())
}

/// The allocation-order profile: grains in file order replay the delta's growth.
fn profile(out: &mut dyn Write, top: &LayerReport) -> io::Result<()> {
    let total: u64 = top.allocation_profile.iter().map(|c| c.total()).sum();
    if total == 0 {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(
        out,
        "  In allocation order (tenths of the file, oldest first), share of each tenth:"
    )?;
    writeln!(
        out,
        "  {:<8} {}",
        "tenth",
        class_heads(CLASS_NAMES, [8, 12, 10, 8])
    )?;
    for (i, c) in top.allocation_profile.iter().enumerate() {
        let t = c.total();
        // An empty tenth is a row of its own: skipping it made 3 and 5 look adjacent.
        if t == 0 {
            writeln!(
                out,
                "  {:<8} {:>8} {:>12} {:>10} {:>8}",
                i + 1,
                "-",
                "-",
                "-",
                "-"
            )?;
            continue;
        }
        writeln!(
            out,
            "  {:<8} {:>8} {:>12} {:>10} {:>8}",
            format!("{}", i + 1),
            percent(c.fresh, t),
            percent(c.overwritten, t),
            percent(c.identical, t),
            percent(c.zeroed, t)
        )?;
    }
    Ok(())
}

/// Fits a name into `n` characters for a table column, cutting in the middle: the end of a
/// disk's name is what tells it apart (`-000001.vmdk`), the start names the VM. Every table
/// that bounds a column of names uses this (issue 17: names cut at the end lost their
/// `-000001`).
pub fn fit(s: &str, n: usize) -> String {
    let len = s.chars().count();
    if len <= n || n < 3 {
        return s.to_string();
    }
    let head = (n - 1) / 2;
    let tail = n - 1 - head;
    let start: String = s.chars().take(head).collect();
    let end: String = s.chars().skip(len - tail).collect();
    format!("{start}…{end}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_wraps_on_words_with_a_hanging_indent() {
        assert_eq!(wrap("a bb ccc dddd", 6, 2), ["a bb", "  ccc", "  dddd"]);
        assert_eq!(wrap("", 10, 0), [""]);
        assert_eq!(
            wrap("longerthanthewidth x", 5, 0),
            ["longerthanthewidth", "x"]
        );
    }

    #[test]
    fn painted_text_is_coloured_on_a_terminal_and_plain_otherwise() {
        let line = format!(
            "{} ok {}\n",
            paint(Style::Fresh, "fresh"),
            paint(Style::Failed, "FAILED")
        );
        let mut plain = Terminal::new(Vec::new());
        plain.write_all(line.as_bytes()).unwrap();
        plain.flush().unwrap();
        assert_eq!(String::from_utf8(plain.inner).unwrap(), "fresh ok FAILED\n");
        let mut colour = Terminal::with_colour(Vec::new(), true);
        colour.write_all(line.as_bytes()).unwrap();
        colour.flush().unwrap();
        assert_eq!(
            String::from_utf8(colour.inner).unwrap(),
            "\x1b[31mfresh\x1b[0m ok \x1b[1;31mFAILED\x1b[0m\n"
        );
        // A name carrying a marker cannot colour the table once sanitized, as every name is.
        let hostile = sanitize(&format!("a{}b", Style::Fresh.marker()));
        let mut t = Terminal::with_colour(Vec::new(), true);
        t.write_all(hostile.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(t.inner).unwrap(), "a\\u{fdd0}b");
    }

    #[test]
    fn names_are_cut_in_the_middle_keeping_the_end() {
        assert_eq!(fit("short.vmdk", 32), "short.vmdk");
        let long = "win10-finance-pool-clone-0017-000001.vmdk";
        let cut = fit(long, 32);
        assert_eq!(cut.chars().count(), 32);
        assert_eq!(cut, "win10-finance-p…0017-000001.vmdk");
        assert!(cut.ends_with("-000001.vmdk"), "{cut}");
        assert!(cut.starts_with("win10-"), "{cut}");
        assert_eq!(fit("abcdef", 5), "ab…ef");
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
