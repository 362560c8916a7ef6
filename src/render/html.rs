//! The HTML report (`deltascope report`): one self-contained page rendered from the same
//! report structs the JSON comes from ([`ScanReport`], [`DatastoreReport`], [`BlameReport`],
//! the history's points and [`DiskForecast`]). Like the text renderer it computes nothing:
//! it lays out figures, proportions for bars and charts drawn elsewhere (`chart/`).
//!
//! Self-contained means no network at all: CSS and the table-sorting script are inline,
//! charts are inline SVG, there are no fonts, images or external links to fetch. Every string
//! that came from a disk (file names, descriptor text, guest file names) or the command line
//! goes through [`esc`].

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::classify::ClassCounts;
use crate::history::Point;
use crate::history::forecast::DiskForecast;
use crate::report::blame::{BlameReport, GroupReport};
use crate::report::datastore::{DatastoreReport, Status};
use crate::report::{LayerReport, ScanReport};
use crate::units::format_size;

/// A section shown, or left out with the reason (shown in its place).
#[derive(Debug, Clone)]
pub enum Section<T> {
    /// The section's data.
    Shown(T),
    /// Why the section is not there.
    Skipped(String),
}

/// The growth history of the scanned disk, as `history` and `forecast` give it.
#[derive(Debug, Clone)]
pub struct HistoryView {
    /// The disk's name in the store.
    pub disk: String,
    /// Every recorded point, oldest first.
    pub points: Vec<Point>,
    /// The projection, when the latest segment has two points or more.
    pub forecast: Option<DiskForecast>,
    /// The growth chart (`chart/growth.rs`) as an SVG document.
    pub chart_svg: String,
}

/// A sensitivity chart of one LUN (`chart/sensitivity.rs`), or why there is none.
#[derive(Debug, Clone)]
pub struct LunChart {
    /// The LUN's name.
    pub lun: String,
    /// The SVG document.
    pub svg: Section<String>,
}

/// Everything one page shows.
#[derive(Debug, Clone)]
pub struct Page {
    /// deltascope's version.
    pub version: String,
    /// The command line that made the page, as typed (arguments joined by spaces).
    pub command_line: String,
    /// When the scan started, RFC 3339 UTC.
    pub scanned_at: String,
    /// The PATH or DIR given.
    pub target: String,
    /// The scan of one chain (`scan --json`).
    pub chain: Option<ScanReport>,
    /// The datastore scan (`scan DIR --json`).
    pub datastore: Option<DatastoreReport>,
    /// The sensitivity chart of each LUN of the datastore scan.
    pub sensitivity: Vec<LunChart>,
    /// Growth history of the scanned disk.
    pub history: Section<HistoryView>,
    /// Blame of the top layer (`blame --json`).
    pub blame: Section<BlameReport>,
    /// Blame groups shown (the rest are summed in one row).
    pub blame_top: usize,
}

/// The section ids every page has, in order (the browser test checks them).
pub const SECTIONS_CHAIN: &[&str] = &[
    "verdict",
    "summary",
    "chain",
    "classes",
    "amplification",
    "profile",
    "history",
    "blame",
];
/// The section ids of a datastore page.
pub const SECTIONS_DATASTORE: &[&str] = &["summary", "luns", "chain", "sensitivity", "blame"];

/// Class colours, the same order as [`ClassCounts`] fields: fresh, overwritten, identical,
/// zeroed.
const COLORS: [&str; 4] = ["#ca0020", "#f4a582", "#92c5de", "#bababa"];
const CLASS_NAMES: [&str; 4] = ["fresh", "overwritten", "identical", "zeroed"];

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters from a hostile descriptor would make the page invalid.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A byte count in binary units, exact bytes on hover; `data-v` lets the tables sort by it.
fn bytes(v: u64) -> String {
    format!(
        "<span class=\"b\" title=\"{v} bytes\" data-v=\"{v}\">{}</span>",
        format_size(v)
    )
}

/// A table cell holding a byte count (sorted by the exact value).
fn bytes_td(v: u64) -> String {
    format!("<td data-v=\"{v}\">{}</td>", bytes(v))
}

fn opt_bytes_td(v: Option<u64>) -> String {
    v.map_or_else(|| "<td data-v=\"-1\">–</td>".to_string(), bytes_td)
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "–".into();
    }
    format!("{:.1} %", part as f64 * 100.0 / whole as f64)
}

fn counts(c: &ClassCounts) -> [u64; 4] {
    [c.fresh, c.overwritten, c.identical, c.zeroed]
}

/// A horizontal stacked bar of the four classes, as an inline SVG with a title per part.
fn stacked_bar(c: &ClassCounts, unit: &str) -> String {
    let v = counts(c);
    let total: u64 = v.iter().sum();
    let mut s = String::from(
        "<svg class=\"bar\" width=\"400\" height=\"18\" viewBox=\"0 0 400 18\" preserveAspectRatio=\"none\" role=\"img\">",
    );
    if total == 0 {
        s.push_str("<rect width=\"400\" height=\"18\" fill=\"#eee\"/></svg>");
        return s;
    }
    let mut x = 0.0;
    for (k, n) in v.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        let w = *n as f64 * 400.0 / total as f64;
        let _ = write!(
            s,
            "<rect x=\"{x:.2}\" width=\"{w:.2}\" height=\"18\" fill=\"{}\"><title>{}: {} {unit} ({})</title></rect>",
            COLORS[k],
            CLASS_NAMES[k],
            n,
            pct(*n, total)
        );
        x += w;
    }
    s.push_str("</svg>");
    s
}

/// The allocation-order profile: one stacked column per tenth of the file.
fn profile_chart(top: &LayerReport) -> String {
    let (w, h, pad) = (600.0, 250.0, 34.0);
    let max = top
        .allocation_profile
        .iter()
        .map(ClassCounts::total)
        .max()
        .unwrap_or(0);
    let mut s = format!(
        "<svg class=\"profile\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\"><rect width=\"{w}\" height=\"{h}\" fill=\"#fff\"/>"
    );
    let n = top.allocation_profile.len().max(1) as f64;
    let col = (w - pad) / n;
    for (i, c) in top.allocation_profile.iter().enumerate() {
        let x = pad + i as f64 * col + 4.0;
        let mut y = h - pad;
        for (k, v) in counts(c).iter().enumerate() {
            if *v == 0 || max == 0 {
                continue;
            }
            let bh = *v as f64 * (h - 2.0 * pad) / max as f64;
            y -= bh;
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{}\"><title>tenth {}: {} {} ({v} bytes)</title></rect>",
                col - 8.0,
                COLORS[k],
                i + 1,
                format_size(*v),
                CLASS_NAMES[k]
            );
        }
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
            x + (col - 8.0) / 2.0,
            h - pad + 16.0,
            i + 1
        );
    }
    let _ = write!(
        s,
        "<text x=\"4\" y=\"16\" font-size=\"12\">{} per tenth at most</text></svg>",
        format_size(max)
    );
    s
}

fn legend() -> String {
    let mut s = String::from("<p class=\"legend\">");
    for k in 0..4 {
        let _ = write!(
            s,
            "<span><i style=\"background:{}\"></i>{}</span> ",
            COLORS[k], CLASS_NAMES[k]
        );
    }
    s.push_str("</p>");
    s
}

fn skipped(why: &str) -> String {
    format!("<p class=\"note\">Not shown: {}</p>", esc(why))
}

fn class_tds(c: &ClassCounts) -> String {
    counts(c).iter().map(|v| bytes_td(*v)).collect()
}

/// Writes the page.
pub fn render(out: &mut dyn Write, p: &Page) -> io::Result<()> {
    let mut h = String::new();
    head(&mut h, p);
    if let Some(r) = &p.chain {
        chain_sections(&mut h, r);
    }
    if let Some(d) = &p.datastore {
        datastore_sections(&mut h, d, &p.sensitivity);
    }
    if p.chain.is_some() {
        history_section(&mut h, &p.history);
    }
    blame_section(&mut h, &p.blame, p.blame_top);
    h.push_str("</main>\n<script>\n");
    h.push_str(SCRIPT);
    h.push_str("</script>\n</body>\n</html>\n");
    out.write_all(h.as_bytes())
}

fn head(h: &mut String, p: &Page) {
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>deltascope report: {t}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <h1>deltascope report</h1>\n{verdict}<section id=\"summary\">\n<table class=\"kv\">\n\
         <tr><th>Scanned</th><td><code>{t}</code></td></tr>\n\
         <tr><th>Time of the scan</th><td>{at}</td></tr>\n\
         <tr><th>Command line</th><td><code>{cmd}</code></td></tr>\n\
         <tr><th>deltascope</th><td>{v}</td></tr>\n</table>\n",
        t = esc(&p.target),
        at = esc(&p.scanned_at),
        cmd = esc(&p.command_line),
        v = esc(&p.version),
        verdict = p.chain.as_ref().map(verdict_section).unwrap_or_default(),
    );
    if let Some(r) = &p.chain
        && let Some(top) = r.chain.last()
    {
        let c = &top.classes;
        let _ = writeln!(
            h,
            "<p class=\"lead\">The top layer holds {}: {} fresh (growth into space that was zero below), {} overwritten, {} identical, {} zeroed.</p>",
            bytes(top.allocated_bytes),
            bytes(c.fresh),
            bytes(c.overwritten),
            bytes(c.identical),
            bytes(c.zeroed)
        );
    }
    if let Some(d) = &p.datastore {
        let ok = d.vms.iter().filter(|v| v.status == Status::Ok).count();
        let _ = writeln!(
            h,
            "<p class=\"lead\">{} disk(s) on {} LUN(s); {} scanned, {} failed; {} VM(s) by .vmx; {} orphan(s); {} datastore warning(s).</p>",
            d.vms.len(),
            d.luns.len(),
            ok,
            d.vms.len() - ok,
            d.machines.len(),
            d.orphans.len(),
            d.warnings.len()
        );
    }
    h.push_str("</section>\n");
}

fn chain_sections(h: &mut String, r: &ScanReport) {
    h.push_str(
        "<section id=\"chain\">\n<h2>The chain</h2>\n<p>Base first, top last.</p>\n\
         <div class=\"scroll\"><table class=\"sortable\">\n<thead><tr><th>#</th><th class=\"l\">File</th><th>Format</th><th>createType</th>\
         <th>Virtual size</th><th>Grain</th><th>Allocated</th><th>File size</th><th>CID</th><th>parentCID</th></tr></thead>\n<tbody>\n",
    );
    for (i, l) in r.chain.iter().enumerate() {
        let _ = writeln!(
            h,
            "<tr><td data-v=\"{i}\">{i}</td><td><code>{}</code></td><td>{}</td><td>{}</td>{}{}{}{}<td>{}</td><td>{}</td></tr>",
            esc(&l.path),
            esc(l.format.as_str()),
            esc(&l.create_type),
            bytes_td(l.virtual_size),
            bytes_td(l.grain_size),
            bytes_td(l.allocated_bytes),
            bytes_td(l.file_size),
            esc(l.cid.as_deref().unwrap_or("–")),
            esc(l.parent_cid.as_deref().unwrap_or("–")),
        );
    }
    h.push_str("</tbody></table></div>\n");
    let warnings: Vec<_> = r.chain.iter().flat_map(|l| l.warnings.iter()).collect();
    for w in warnings {
        let _ = writeln!(
            h,
            "<p class=\"warn\">warning ({}): {}</p>",
            esc(&w.kind),
            esc(&w.message)
        );
    }
    if let (Some(c), Some(top)) = (&r.ceiling, r.chain.last()) {
        let _ = writeln!(
            h,
            "<p>Ceilings of the top layer: hard (virtual size + metadata) {}, now {} ({}); expected if fresh-first allocation continues {} ({} more).</p>",
            bytes(c.hard_bytes),
            bytes(top.allocated_bytes),
            pct(top.allocated_bytes, c.hard_bytes),
            bytes(c.expected_bytes),
            bytes(c.parent_zero_unwritten_bytes)
        );
    }
    h.push_str("</section>\n");

    h.push_str(
        "<section id=\"classes\">\n<h2>What each layer holds</h2>\n\
         <p>Each grain a layer holds, against the layers below it.</p>\n",
    );
    h.push_str(&legend());
    h.push_str(
        "<div class=\"scroll\"><table class=\"sortable\">\n<thead><tr><th>#</th><th class=\"l\">Layer</th><th class=\"l\">Classes</th><th>Allocated</th>\
         <th>Fresh</th><th>Overwritten</th><th>Identical</th><th>Zeroed</th></tr></thead>\n<tbody>\n",
    );
    for (i, l) in r.chain.iter().enumerate() {
        let _ = writeln!(
            h,
            "<tr><td data-v=\"{i}\">{i}</td><td><code>{}</code></td><td>{}</td>{}{}</tr>",
            esc(short(&l.path)),
            stacked_bar(&l.classes, "bytes"),
            bytes_td(l.allocated_bytes),
            class_tds(&l.classes)
        );
    }
    h.push_str("</tbody></table></div>\n");
    if let Some(s) = &r.ntfs_overwritten {
        let _ = writeln!(
            h,
            "<p>NTFS in the parent: of the overwritten bytes, {} replaced live data and {} went into free space that was not zero; {} outside NTFS.</p>",
            bytes(s.live_parent_data),
            bytes(s.parent_free_space),
            bytes(s.unknown)
        );
    }
    h.push_str("</section>\n");

    h.push_str(
        "<section id=\"amplification\">\n<h2>4 KiB amplification</h2>\n\
         <p>The same rule applied to each 4 KiB block: grains that are overwritten as a whole may hold \
         blocks that are identical or zero. The difference is copy-on-write amplification.</p>\n\
         <div class=\"scroll\"><table class=\"sortable\">\n<thead><tr><th>#</th><th>Grain</th><th>Allocated</th><th>Differs at 4 KiB</th>\
         <th>Amplification</th><th class=\"l\">4 KiB blocks</th><th>Fresh</th><th>Overwritten</th><th>Identical</th><th>Zeroed</th></tr></thead>\n<tbody>\n",
    );
    for (i, l) in r.chain.iter().enumerate() {
        let b = &l.blocks_4k;
        let changed = (b.fresh + b.overwritten) * 4096;
        let amp = if changed > 0 {
            format!("{:.2}x", l.allocated_bytes as f64 / changed as f64)
        } else {
            "–".into()
        };
        let _ = writeln!(
            h,
            "<tr><td data-v=\"{i}\">{i}</td>{}{}{}<td>{amp}</td><td>{}</td>{}</tr>",
            bytes_td(l.grain_size),
            bytes_td(l.allocated_bytes),
            bytes_td(changed),
            stacked_bar(b, "blocks"),
            counts(b)
                .iter()
                .map(|v| format!("<td data-v=\"{v}\">{v}</td>"))
                .collect::<String>()
        );
    }
    h.push_str("</tbody></table></div>\n</section>\n");

    h.push_str(
        "<section id=\"profile\">\n<h2>Allocation order</h2>\n\
         <p>The top layer's grains in file order, in tenths of its data area: grains are appended \
         as the guest writes, so the tenths replay the delta's growth, oldest first.</p>\n",
    );
    match r.chain.last() {
        Some(top) if top.allocation_profile.iter().any(|c| c.total() > 0) => {
            h.push_str(&legend());
            h.push_str(&profile_chart(top));
        }
        _ => h.push_str(&skipped("the top layer holds no grain data")),
    }
    h.push_str("</section>\n");
}

/// A remedy's name for people.
fn remedy_label(name: &str) -> &str {
    match name {
        "refresh" => "Refresh (revert to the base)",
        "zero_free_and_shrink" => "Zero free space, then shrink",
        "disposable_disk" => "Disposable disk for page file, temp, caches",
        "reuse_instead_of_fresh" => "Reuse of freed space (at most)",
        other => other,
    }
}

/// The verdict at the top of a chain's page: the paragraph, the remedies, the base audit.
fn verdict_section(r: &ScanReport) -> String {
    let mut h = String::from("<section id=\"verdict\">\n<h2>Verdict</h2>\n");
    let _ = writeln!(h, "<p class=\"lead\">{}</p>", esc(&r.verdict.text));
    let top = r.chain.last().map_or(0, |t| t.allocated_bytes);
    h.push_str(
        "<h3>Remedies, and what each returns now</h3>\n\
         <div class=\"scroll\"><table class=\"sortable remedies\">\n<thead><tr><th class=\"l\">Remedy</th>\
         <th>Returns</th><th>Share of the top</th><th class=\"l\">How it is counted</th></tr></thead>\n<tbody>\n",
    );
    for m in &r.remedies {
        let _ = writeln!(
            h,
            "<tr><td>{}</td>{}<td>{}</td><td class=\"l w\">{}</td></tr>",
            esc(remedy_label(m.remedy)),
            opt_bytes_td(m.bytes),
            m.bytes.map_or_else(|| "–".to_string(), |b| pct(b, top)),
            esc(&m.basis)
        );
    }
    h.push_str("</tbody></table></div>\n");
    if let (Some(b), Some(base)) = (&r.base_audit, r.chain.first()) {
        let free = match (b.dirty_free_bytes, b.free_bytes) {
            (Some(d), Some(f)) => format!(
                "Its guest's free space is {}, of which {} is not zero: what zeroing it before taking the replica saves in every thin copy.",
                bytes(f),
                bytes(d)
            ),
            _ => "Its guest's free space is not known (no readable NTFS volume).".into(),
        };
        let _ = writeln!(
            h,
            "<p>Base <code>{}</code>: {} reads as zero, what a new clone can grow into (its expected ceiling). {free}</p>",
            esc(short(&base.path)),
            bytes(b.never_used_bytes)
        );
    }
    h.push_str("</section>\n");
    h
}

/// The file name of a path, for narrow columns (the full path is in the chain table).
fn short(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

fn history_section(h: &mut String, s: &Section<HistoryView>) {
    h.push_str("<section id=\"history\">\n<h2>Growth history and forecast</h2>\n");
    match s {
        Section::Skipped(why) => h.push_str(&skipped(why)),
        Section::Shown(v) => {
            let _ = writeln!(
                h,
                "<p>{} point(s) recorded for <code>{}</code>.</p>",
                v.points.len(),
                esc(&v.disk)
            );
            h.push_str("<div class=\"chart\">");
            h.push_str(&v.chart_svg);
            h.push_str("</div>\n");
            match &v.forecast {
                None => h.push_str(&skipped(
                    "a forecast needs two points or more in the latest segment",
                )),
                Some(f) => {
                    let day = |t: &Option<chrono::DateTime<chrono::Utc>>| {
                        t.map_or("not within the projection".to_string(), |t| {
                            t.format("%Y-%m-%d").to_string()
                        })
                    };
                    let _ = writeln!(
                        h,
                        "<p>Model: {} ({}). Ceiling {}; hard ceiling {}.</p>",
                        match f.model {
                            crate::history::forecast::Model::Linear => "linear",
                            crate::history::forecast::Model::Saturating => "saturating",
                        },
                        esc(&f.model_reason),
                        f.ceiling_bytes.map_or("unknown".into(), bytes),
                        f.hard_ceiling_bytes.map_or("unknown".into(), bytes),
                    );
                    let _ = writeln!(
                        h,
                        "<table class=\"kv\"><tr><th>50 % of the ceiling</th><td>{}</td></tr>\
                         <tr><th>80 % of the ceiling</th><td>{}</td></tr>\
                         <tr><th>The ceiling</th><td>{}</td></tr></table>",
                        day(&f.crossings.ceiling_50),
                        day(&f.crossings.ceiling_80),
                        day(&f.crossings.ceiling_100)
                    );
                    h.push_str(
                        "<div class=\"scroll\"><table class=\"sortable\"><thead><tr><th>Week of</th><th>Projected</th><th>Low</th><th>High</th></tr></thead><tbody>\n",
                    );
                    for w in &f.forecast {
                        let _ = writeln!(
                            h,
                            "<tr><td>{}</td>{}{}{}</tr>",
                            w.at.format("%Y-%m-%d"),
                            bytes_td(w.bytes),
                            bytes_td(w.low),
                            bytes_td(w.high)
                        );
                    }
                    h.push_str("</tbody></table></div>\n");
                }
            }
        }
    }
    h.push_str("</section>\n");
}

fn group_label(g: &GroupReport) -> String {
    match g.kind.as_str() {
        "file" => g.path.clone(),
        "free_now" => "(free now: written, then deleted)".into(),
        "unpartitioned" => "(outside any partition)".into(),
        k => format!("({k}) {}", g.path),
    }
}

fn blame_section(h: &mut String, s: &Section<BlameReport>, top: usize) {
    h.push_str("<section id=\"blame\">\n<h2>Blame: the guest files that grew the delta</h2>\n");
    match s {
        Section::Skipped(why) => h.push_str(&skipped(why)),
        Section::Shown(r) => {
            let _ = writeln!(
                h,
                "<p>Top layer <code>{}</code>, {} allocated, grouped by {}.</p>",
                esc(&r.layer),
                bytes(r.allocated_bytes),
                esc(&r.group_by)
            );
            for v in &r.volumes {
                let _ = writeln!(
                    h,
                    "<p>Partition {} ({}) at byte {}: {}.</p>",
                    v.partition,
                    esc(&v.partition_kind),
                    v.start,
                    esc(&v.file_system)
                );
            }
            if let Some(n) = &r.parent_note {
                let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(n));
            }
            h.push_str(&legend());
            h.push_str(
                "<div class=\"scroll\"><table class=\"sortable\">\n<thead><tr><th class=\"l\">Group</th><th class=\"l\">Classes</th><th>Bytes</th><th>Share</th>\
                 <th>Fresh</th><th>Overwritten</th><th>Identical</th><th>Zeroed</th></tr></thead>\n<tbody>\n",
            );
            let row = |h: &mut String, name: &str, c: &ClassCounts| {
                let _ = writeln!(
                    h,
                    "<tr><td><code>{}</code></td><td>{}</td>{}<td>{}</td>{}</tr>",
                    esc(name),
                    stacked_bar(c, "bytes"),
                    bytes_td(c.total()),
                    pct(c.total(), r.allocated_bytes),
                    class_tds(c)
                );
            };
            for g in r.groups.iter().take(top) {
                row(h, &group_label(g), &g.classes);
            }
            if r.groups.len() > top {
                let rest = r.groups[top..]
                    .iter()
                    .fold(ClassCounts::default(), |a, g| a + g.classes);
                row(h, &format!("({} more groups)", r.groups.len() - top), &rest);
            }
            h.push_str("</tbody></table></div>\n");
        }
    }
    h.push_str("</section>\n");
}

/// The folder every absolute path of a datastore page lies under (ending in `/`), shown once
/// above the tables so that the columns hold what tells disks apart; empty when there is none.
fn common_dir<'a>(paths: impl Iterator<Item = &'a str>) -> String {
    let mut common: Option<&str> = None;
    for p in paths.filter(|p| p.starts_with('/')) {
        let dir = &p[..p.rfind('/').map_or(0, |i| i + 1)];
        common = Some(match common {
            None => dir,
            Some(c) => {
                let same = c
                    .char_indices()
                    .zip(dir.chars())
                    .take_while(|((_, a), b)| a == b)
                    .filter(|((_, a), _)| *a == '/')
                    .last()
                    .map_or(0, |((i, _), _)| i + 1);
                &c[..same]
            }
        });
    }
    match common {
        Some(c) if c.len() > 1 => c.to_string(),
        _ => String::new(),
    }
}

/// A path as a `<code>` element, relative to `under` when it lies there (the full path on
/// hover), with break opportunities after each `/` only, so a narrow column wraps it between
/// folders, never inside a name.
fn path_code(path: &str, under: &str) -> String {
    let rel = if under.is_empty() {
        path
    } else {
        path.strip_prefix(under).unwrap_or(path)
    };
    // Each name between slashes stays whole: a break at its '-' would split the
    // `-000001` that tells a snapshot from its parent.
    let parts: Vec<String> = rel
        .split('/')
        .map(|p| format!("<span class=\"nw\">{}</span>", esc(p)))
        .collect();
    format!(
        "<code class=\"p\" title=\"{}\">{}</code>",
        esc(path),
        parts.join("/<wbr>")
    )
}

fn datastore_sections(h: &mut String, d: &DatastoreReport, charts: &[LunChart]) {
    let under = common_dir(d.vms.iter().map(|v| v.path.as_str()));
    luns_section(h, d);
    h.push_str(
        "<section id=\"chain\">\n<h2>The disks</h2>\n<p>Every disk found, with the classes of its top delta. \
         <em>Top delta</em> is the top layer's allocated bytes; <em>chain delta</em> those of every delta layer of the disk's chain (snapshots included).",
    );
    if !under.is_empty() {
        let _ = write!(
            h,
            " Paths are under <code>{}</code> (the full path shows on hover).",
            esc(&under)
        );
    }
    h.push_str("</p>\n");
    h.push_str(&legend());
    // One LUN: its name, as long as a datastore's name may be, would repeat on every row.
    let lun_column = d.luns.len() > 1;
    let lun_cell = |v: &str| {
        if lun_column {
            format!("<td class=\"n\">{}</td>", esc(v))
        } else {
            String::new()
        }
    };
    h.push_str("<div class=\"scroll\"><table class=\"sortable\">\n<thead><tr>");
    h.push_str(&lun_cell("LUN").replace("td", "th"));
    h.push_str(
        "<th class=\"l\">Disk</th><th class=\"l\">VM</th><th class=\"l\">Role</th><th>Status</th><th>Format</th><th>Layers</th>\
         <th>Virtual size</th><th>Top delta</th><th>Chain delta</th><th class=\"l\">Classes</th><th>Expected ceiling</th><th>Lock events/h</th></tr></thead>\n<tbody>\n",
    );
    for v in &d.vms {
        // The error goes in a list under the table, at full width: in a cell it wraps into
        // a column of its own.
        let status = match v.status {
            Status::Ok => v.status.to_string(),
            Status::Error => format!("<span class=\"warn\">{}</span> (below)", v.status),
        };
        let _ = writeln!(
            h,
            "<tr>{}<td>{}</td><td class=\"l n\">{}</td><td class=\"l\">{}</td><td>{status}</td><td>{}</td><td>{}</td>{}{}{}<td>{}</td>{}<td>{}</td></tr>",
            lun_cell(&v.lun),
            path_code(&v.path, &under),
            esc(v.vm.as_deref().unwrap_or("–")),
            esc(v.role),
            esc(v.format.map_or("–", |f| f.as_str())),
            v.layers.map_or("–".into(), |n| n.to_string()),
            opt_bytes_td(v.virtual_size),
            opt_bytes_td(v.delta_bytes),
            opt_bytes_td(v.chain_delta_bytes.filter(|_| v.is_delta)),
            v.classes
                .map_or(String::new(), |c| stacked_bar(&c, "bytes")),
            opt_bytes_td(v.ceiling.map(|c| c.expected_bytes)),
            v.lock_events_per_hour
                .map_or("–".into(), |r| format!("{r:.1}")),
        );
    }
    h.push_str("</tbody></table></div>\n");
    let failed: Vec<_> = d.vms.iter().filter(|v| v.status != Status::Ok).collect();
    if !failed.is_empty() {
        let _ = writeln!(
            h,
            "<h3>Disks that could not be scanned</h3>\n<ul class=\"errors\">"
        );
        for v in failed {
            // The error names the file (and the structure and offset) itself.
            let _ = writeln!(
                h,
                "<li class=\"warn\">{}</li>",
                esc(v.error.as_deref().unwrap_or("?"))
            );
        }
        h.push_str("</ul>\n");
    }
    inventory_parts(h, d, &under);
    h.push_str("</section>\n");

    h.push_str(
        "<section id=\"sensitivity\">\n<h2>Sensitivity: busy fraction against VMs per LUN</h2>\n",
    );
    for c in charts {
        let _ = writeln!(h, "<h3>{}</h3>", esc(&c.lun));
        match &c.svg {
            Section::Shown(svg) => {
                h.push_str("<div class=\"chart\">");
                h.push_str(svg);
                h.push_str("</div>\n");
            }
            Section::Skipped(why) => h.push_str(&skipped(why)),
        }
    }
    h.push_str("</section>\n");
}

/// When each LUN fills (with a LUN size) and each delta's refresh interval (with a
/// budget), under the LUN table.
fn fill_parts(h: &mut String, d: &DatastoreReport) {
    let day = |t: Option<&str>| esc(t.and_then(|t| t.get(..10)).unwrap_or("–"));
    // Without any forecast the LUN's notes say why there is no date.
    let forecasts = d.vms.iter().any(|v| v.projection.is_some());
    if forecasts
        && d.luns
            .iter()
            .any(|l| l.model.inputs.lun_size_bytes.is_some())
    {
        h.push_str(
            "<h3>When the LUNs fill</h3>\n<p>The date the deltas hold the LUN size less the headroom: as their forecasts go \
             (<em>forecast</em>), and if no delta slows down before its expected ceiling and those without a forecast are at it already \
             (<em>worst case</em>). From the history store; docs/JSON.md defines both.</p>\n\
             <table class=\"sortable\">\n<thead><tr><th>LUN</th><th>LUN size</th><th>Full (forecast)</th><th>Full (worst case)</th></tr></thead>\n<tbody>\n",
        );
        for l in &d.luns {
            let _ = writeln!(
                h,
                "<tr><td>{}</td>{}<td>{}</td><td>{}</td></tr>",
                esc(&l.name),
                opt_bytes_td(l.model.inputs.lun_size_bytes),
                day(l.full_at.as_deref()),
                day(l.full_at_worst.as_deref()),
            );
        }
        h.push_str("</tbody></table>\n");
    } else if d
        .luns
        .iter()
        .any(|l| l.model.inputs.lun_size_bytes.is_some())
    {
        h.push_str(&skipped(
            "When the LUNs fill: no delta has two recorded points in its latest segment (record scans over time with scan DIR --record)",
        ));
    }
    if let Some(budget) = d.budget_bytes {
        let _ = writeln!(
            h,
            "<h3>Refresh intervals</h3>\n<p>How often each delta must be refreshed to stay under {}: the time its forecast takes to grow from empty to that size.</p>\n\
             <table class=\"sortable\">\n<thead><tr><th class=\"l\">Disk</th><th>Refresh every (days)</th></tr></thead>\n<tbody>",
            bytes(budget)
        );
        for v in d
            .vms
            .iter()
            .filter(|v| v.is_delta && v.status == Status::Ok)
        {
            let every = match (v.refresh_every_days, &v.projection) {
                (Some(x), _) => format!("<td data-v=\"{x}\">{:.1}</td>", x),
                (None, Some(_)) => "<td>never reaches it</td>".to_string(),
                (None, None) => "<td>no forecast</td>".to_string(),
            };
            let _ = writeln!(h, "<tr><td><code>{}</code></td>{every}</tr>", esc(&v.path));
        }
        h.push_str("</tbody></table>\n");
    }
}

/// The LUN model's answer first (one sentence per LUN, then the limits), and what it was
/// computed from in a second table: one table of seventeen columns does not fit a screen.
fn luns_section(h: &mut String, d: &DatastoreReport) {
    h.push_str("<section id=\"luns\">\n<h2>LUNs: VMs per LUN</h2>\n<ul class=\"answer\">\n");
    let count = |v: Option<u64>| v.map_or("–".to_string(), |n| n.to_string());
    for l in &d.luns {
        let i = &l.model.inputs;
        let v = &l.model.outcome.vms_per_lun;
        let answer = match (v.recommended, v.binding) {
            (Some(n), Some(b)) => format!(
                "at most <b>{n} VMs</b> (the {} limit binds; lock limit {}, capacity limit {})",
                b.name(),
                count(v.lock_limit),
                count(v.capacity_limit)
            ),
            _ => "no recommendation: neither a lock limit nor a capacity limit is known".into(),
        };
        let _ = writeln!(
            h,
            "<li>LUN <b>{}</b>: {answer}; {} VM(s) on it now.</li>",
            esc(&l.name),
            i.vms
        );
    }
    h.push_str("</ul>\n");
    h.push_str(
        "<p>The VMFS model of docs/MODEL.md, on the disks found. <em>VMs (model)</em> is what the lock model counts; \
         <em>busy</em> is the share of time the LUN is reserved by growth locks, <em>conflict</em> the chance that a lock finds it reserved. \
         The lock limit keeps busy at or under the target; the capacity limit keeps every delta at its ceiling within the LUN size less the headroom.</p>\n\
         <div class=\"scroll\"><table class=\"sortable\">\n<thead><tr><th>LUN</th><th>VMs (model)</th><th>Recommended VMs per LUN</th><th>Binds</th>\
         <th>Lock limit</th><th>Capacity limit</th><th>Busy</th><th>Conflict</th><th>Lock events/h</th></tr></thead>\n<tbody>\n",
    );
    for l in &d.luns {
        let i = &l.model.inputs;
        let o = &l.model.outcome;
        let v = &o.vms_per_lun;
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td></tr>",
            esc(&l.name),
            i.vms,
            count(v.recommended),
            v.binding.map_or("–", |b| b.name()),
            count(v.lock_limit),
            count(v.capacity_limit),
            super::lun_text::percent(o.busy_fraction),
            super::lun_text::percent(o.conflict_probability),
            o.lock_events_per_hour,
        );
    }
    h.push_str("</tbody></table></div>\n");
    h.push_str(
        "<p>What the model was given. <em>Disks</em> were scanned (failed ones apart); <em>machines</em> are VMs by .vmx; \
         <em>top deltas</em> sum the disks' top layers, <em>all deltas</em> every delta file on the LUN once (snapshot layers, copies and orphans included).</p>\n\
         <div class=\"scroll\"><table class=\"sortable\">\n<thead><tr><th>LUN</th><th>Disks</th><th>Failed</th><th>Machines</th><th>Top deltas</th><th>All deltas</th><th>Projected at ceilings</th>\
         <th>Growth per VM</th><th>Increment</th><th>Locking</th><th>LUN size</th></tr></thead>\n<tbody>\n",
    );
    for l in &d.luns {
        let i = &l.model.inputs;
        let growth = match (i.growth_per_vm_bytes, i.window_seconds) {
            (Some(g), Some(w)) => format!(
                "{} in {} ({})",
                bytes(g),
                esc(&crate::units::format_duration(w)),
                i.growth_source
            ),
            _ => format!("unknown ({})", i.growth_source),
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{}{}{}<td>{growth}</td>{}<td>{}</td>{}</tr>",
            esc(&l.name),
            l.vms_found - l.vms_failed,
            l.vms_failed,
            l.machines_found,
            bytes_td(l.delta_bytes),
            bytes_td(l.all_delta_bytes),
            bytes_td(l.projected_ceiling_bytes),
            opt_bytes_td(i.increment_bytes),
            i.locking.name(),
            opt_bytes_td(i.lun_size_bytes),
        );
    }
    h.push_str("</tbody></table></div>\n");
    fill_parts(h, d);
    h.push_str("</section>\n");
}

/// The VMs, the orphans and the datastore's warnings, under the disks.
fn inventory_parts(h: &mut String, d: &DatastoreReport, under: &str) {
    if !d.machines.is_empty() {
        h.push_str(
            "<h3>Machines (VMs by .vmx)</h3>\n<p><em>Deltas</em>: every delta layer of the VM's disks, each file once.</p>\n\
             <div class=\"scroll\"><table class=\"sortable\">\n<thead><tr><th class=\"l\">Machine</th><th>LUN</th><th>Disks</th><th>Deltas</th><th>Snapshots</th><th class=\"l\">.vmx</th></tr></thead>\n<tbody>\n",
        );
        for m in &d.machines {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td>{}<td>{}</td><td>{}</td></tr>",
                esc(&m.name),
                esc(&m.lun),
                m.disks.len(),
                bytes_td(m.delta_bytes),
                m.snapshots,
                path_code(&m.vmx, under)
            );
        }
        h.push_str("</tbody></table></div>\n");
    }
    if !d.orphans.is_empty() {
        h.push_str(
            "<h3>Orphans</h3>\n<p>Deltas no .vmx, .vmsd or other disk uses (<em>not_referenced</em>), files a .vmx or .vmsd names that do not exist (<em>missing</em>), and entries that could not be read (<em>unreadable</em>).</p>\n\
             <div class=\"scroll\"><table class=\"sortable\">\n<thead><tr><th>Reason</th><th class=\"l\">Path</th><th class=\"l\">Error</th><th class=\"l\">What</th></tr></thead>\n<tbody>\n",
        );
        for o in &d.orphans {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"w l\">{}</td><td class=\"w l\">{}</td></tr>",
                esc(o.reason),
                path_code(&o.path, under),
                esc(o.error.as_deref().unwrap_or("–")),
                esc(&o.detail)
            );
        }
        h.push_str("</tbody></table></div>\n");
    }
    if !d.warnings.is_empty() {
        h.push_str("<h3>Datastore warnings</h3>\n<ul>\n");
        for w in &d.warnings {
            let _ = writeln!(
                h,
                "<li class=\"warn\"><b>{}</b>: {}</li>",
                esc(&w.kind),
                esc(&w.message)
            );
        }
        h.push_str("</ul>\n");
    }
}

const STYLE: &str = r#"body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f6f4;color:#222}
main{max-width:1600px;margin:0 auto;padding:1em 2em 3em}
h1{margin:.4em 0}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em 1.2em 1em;margin:1em 0}
table{border-collapse:collapse;margin:.6em 0;font-size:14px}
th,td{padding:3px 6px;white-space:nowrap;border-bottom:1px solid #e4e4e4;text-align:right;vertical-align:middle}
th:first-child,td:first-child,td:has(code){text-align:left}
.sortable th{cursor:pointer;background:#f0f0ee;user-select:none;white-space:normal;vertical-align:bottom}
.sortable th[aria-sort=ascending]::after{content:" \25B2"}
.sortable th[aria-sort=descending]::after{content:" \25BC"}
.kv th,th.l,td.l{text-align:left}
.kv th{background:none}
.kv td{text-align:left}
code{font-size:13px;word-break:break-all}
code.p{word-break:normal;overflow-wrap:break-word}
.nw{white-space:nowrap}
td:has(code),td.w{white-space:normal;min-width:14em}
td:has(code.p){min-width:12em}
td.n{white-space:normal}
.scroll{overflow-x:auto}
svg.bar{width:100px;height:18px}
ul.answer{font-size:1.1em;padding-left:1.2em}
.b{border-bottom:1px dotted #888;cursor:help}
.note{color:#665;font-style:italic}
.warn{color:#a40}
.lead{font-size:1.1em}
.legend span{margin-right:1.2em}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
.chart svg{max-width:100%;height:auto}
"#;

/// Sorts a table by the clicked column: numbers by their `data-v` (exact bytes), text as text.
const SCRIPT: &str = r#""use strict";
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.querySelectorAll("thead th");
  heads.forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (o) { o.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[col];
        if (!cell) { return ""; }
        var v = cell.getAttribute("data-v");
        return v === null ? cell.textContent : parseFloat(v);
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var c = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_control_characters() {
        assert_eq!(
            esc("<script>\"a\" & 'b'\u{1b}"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;\u{fffd}"
        );
    }

    fn page(chain: Option<ScanReport>) -> Page {
        Page {
            version: "0.0.0".into(),
            command_line: "deltascope report <x> -o y".into(),
            scanned_at: "2026-11-30T00:00:00Z".into(),
            target: "a<b>".into(),
            chain,
            datastore: None,
            sensitivity: Vec::new(),
            history: Section::Skipped("no <history>".into()),
            blame: Section::Skipped("no NTFS".into()),
            blame_top: 20,
        }
    }

    fn render_string(p: &Page) -> String {
        let mut out = Vec::new();
        render(&mut out, p).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_empty_chain_renders_every_section_with_notes() {
        let r = ScanReport {
            deltascope_version: "0.0.0".into(),
            scanned_at: None,
            chain: Vec::new(),
            ceiling: None,
            ntfs_overwritten: None,
            verdict: crate::verdict::Verdict {
                text: "All <fine>.".into(),
                growth_pattern: crate::verdict::GrowthPattern::None,
                weeks_to_ceiling: None,
                bytes_per_week: None,
            },
            remedies: Vec::new(),
            base_audit: None,
        };
        let html = render_string(&page(Some(r)));
        assert!(html.contains("All &lt;fine&gt;."));
        for id in SECTIONS_CHAIN {
            assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
        }
        assert!(html.contains("Not shown: no &lt;history&gt;"));
        assert!(html.contains("<code>a&lt;b&gt;</code>"));
        assert!(html.contains("report &lt;x&gt; -o y"));
        assert!(html.ends_with("</html>\n"));
    }

    #[test]
    fn bars_of_nothing_are_grey_not_divided_by_zero() {
        let bar = stacked_bar(&ClassCounts::default(), "bytes");
        assert!(bar.contains("fill=\"#eee\""), "{bar}");
        assert!(!bar.contains("NaN"));
        let c = ClassCounts {
            fresh: 3,
            overwritten: 1,
            identical: 0,
            zeroed: 0,
        };
        let bar = stacked_bar(&c, "bytes");
        assert!(bar.contains("width=\"300.00\""), "{bar}");
        assert!(
            bar.contains("<title>overwritten: 1 bytes (25.0 %)</title>"),
            "{bar}"
        );
    }

    #[test]
    fn bytes_show_binary_units_with_exact_bytes_on_hover() {
        let b = bytes(1_572_864);
        assert!(b.contains("title=\"1572864 bytes\""), "{b}");
        assert!(b.contains("1.5 MiB"), "{b}");
    }
}
