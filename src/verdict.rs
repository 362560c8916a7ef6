//! The verdict and the remedies of a single-disk scan: what its figures mean in one short
//! paragraph, what each remedy would give back now in bytes, and what the base offers its
//! clones. Figures in (a [`ChainScan`] read with guest files, the disposable-disk rules, the
//! disk's weekly growth from its history), words and numbers out; no I/O, no clock. The
//! report carries the result as it is (`verdict`, `remedies`, `base_audit` in `scan --json`,
//! docs/JSON.md), and every number in a sentence is one of those fields or one of the scan's.
//!
//! Byte figures that come from the guest (`free_now`, files by rule, live growth) are blame's
//! groups summed, at 4 KiB blocks as blame counts them; the shrink figure is counted at grain
//! granularity by `blame::Shrink`.

use serde::Serialize;

use crate::blame::{Group, kind};
use crate::scan::ChainScan;
use crate::units::{format_size, percent};

/// The rules of the disposable disk, one path pattern a line (docs/GUIDE.md and docs/JSON.md
/// list them): what redirecting the page file, hibernation and swap files, temporary folders
/// and browser caches to a disposable disk keeps out of a delta.
pub const DEFAULT_DISPOSABLE_RULES: &str = "\
# Page, hibernation and swap files (at a volume's root)
/pagefile.sys
/hiberfil.sys
/swapfile.sys
# Temporary folders
/Windows/Temp
/Users/*/AppData/Local/Temp
# Browser caches: Internet Explorer and Edge legacy, Chrome, Edge, Firefox
/Users/*/AppData/Local/Microsoft/Windows/INetCache
/Users/*/AppData/Local/Google/Chrome/User Data/*/Cache
/Users/*/AppData/Local/Google/Chrome/User Data/*/Code Cache
/Users/*/AppData/Local/Google/Chrome/User Data/*/GPUCache
/Users/*/AppData/Local/Microsoft/Edge/User Data/*/Cache
/Users/*/AppData/Local/Microsoft/Edge/User Data/*/Code Cache
/Users/*/AppData/Local/Microsoft/Edge/User Data/*/GPUCache
/Users/*/AppData/Local/Mozilla/Firefox/Profiles/*/cache2
";

/// Share of the top's bytes one class must hold for the growth to be called by its name.
const DOMINANT: f64 = 0.6;
/// A top holding at most this share of the virtual size holds "almost no change".
const NEGLIGIBLE: f64 = 0.001;
/// Causes named in the verdict, at most, and the least share of the top each must hold.
const CAUSES: usize = 3;
const CAUSE_SHARE: f64 = 0.01;

/// One rule: a path pattern from a volume's root, matching that path and everything below.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// As written (backslashes turned into slashes).
    text: String,
    /// Its components, lowercased (NTFS names compare without case).
    parts: Vec<String>,
}

/// The rules of the disposable-disk remedy: path patterns from a volume's root (`/` or `\`
/// between components, any case), where `*` matches any run of characters within one
/// component, `?` one character, and a component `**` any number of components. A rule
/// matches a file at that path or anywhere below it; a named stream (`file:stream`) counts as
/// its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisposableRules {
    rules: Vec<Rule>,
}

impl Default for DisposableRules {
    fn default() -> Self {
        // The built-in text parses: a unit test proves it.
        Self::parse(DEFAULT_DISPOSABLE_RULES).unwrap_or(DisposableRules { rules: Vec::new() })
    }
}

impl DisposableRules {
    /// Reads rules from text: one pattern a line; blank lines and lines starting with `#`
    /// are skipped. An error names the line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let text = line.replace('\\', "/");
            let parts: Vec<String> = text
                .split('/')
                .filter(|c| !c.is_empty())
                .map(str::to_lowercase)
                .collect();
            if parts.is_empty() {
                return Err(format!(
                    "line {}: {line:?} names no path (a rule is a path from a volume's root, such as /pagefile.sys)",
                    i + 1
                ));
            }
            if let Some(bad) = parts.iter().find(|c| *c == "." || *c == "..") {
                return Err(format!(
                    "line {}: {line:?}: {bad:?} is not a name (rules are paths from a volume's root)",
                    i + 1
                ));
            }
            rules.push(Rule { text, parts });
        }
        if rules.is_empty() {
            return Err("no rule in the file (one path pattern a line, # starts a comment)".into());
        }
        Ok(DisposableRules { rules })
    }

    /// The rules as written, in order.
    pub fn rules(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.text.as_str())
    }

    /// The first rule matching a guest path (blame's `/`-separated path of a file), by index.
    pub fn matching(&self, path: &str) -> Option<usize> {
        let comps: Vec<String> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .map(|c| {
                // A named stream or index counts as its file or directory.
                c.split(':').next().unwrap_or(c).to_lowercase()
            })
            .collect();
        self.rules
            .iter()
            .position(|r| prefix_match(&r.parts, &comps))
    }
}

/// Whether the pattern components match the first components of `path` (the rule names the
/// path or a directory above it).
fn prefix_match(pat: &[String], path: &[String]) -> bool {
    match pat.split_first() {
        None => true,
        Some((p, rest)) if p == "**" => (0..=path.len()).any(|i| prefix_match(rest, &path[i..])),
        Some((p, rest)) => match path.split_first() {
            Some((c, more)) => glob(p.as_bytes(), c.as_bytes()) && prefix_match(rest, more),
            None => false,
        },
    }
}

/// `*` and `?` within one component (bytes: the names are lowercased UTF-8, and `?` matches
/// one byte of a multi-byte character only as part of a `*`-free pattern, which rules avoid).
fn glob(p: &[u8], s: &[u8]) -> bool {
    // Iterative matching with one backtrack point for the last `*`.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The growth pattern the verdict names (`verdict.growth_pattern`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrowthPattern {
    /// Most bytes went into space that reads zero below (fresh-first allocation).
    FreshFirst,
    /// Most bytes replaced data below (the guest reused space the layers below had used).
    Reuse,
    /// Most bytes rewrote exactly what the layers below hold.
    Rewrite,
    /// Most bytes are zeros.
    Zeros,
    /// No class holds most of the bytes.
    Mixed,
    /// No growth to speak of: a base, or a delta holding almost nothing.
    None,
}

/// `verdict` of `scan --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// One short paragraph for people.
    pub text: String,
    /// What the growth mostly is.
    pub growth_pattern: GrowthPattern,
    /// Weeks until the top reaches its expected ceiling at its recorded growth rate (one
    /// decimal); null without history, or when it does not grow.
    pub weeks_to_ceiling: Option<f64>,
    /// The recorded growth rate (bytes per week, the latest segment's least-squares slope);
    /// null without two points of history.
    pub bytes_per_week: Option<f64>,
}

/// One figure a remedy's bytes are made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemedyPart {
    /// What it is (a rule, `free_now`, `zeroed`, `live_growth`).
    pub part: String,
    /// Bytes.
    pub bytes: u64,
}

/// One entry of `remedies`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Remedy {
    /// `refresh`, `zero_free_and_shrink`, `disposable_disk` or `reuse_instead_of_fresh`.
    pub remedy: &'static str,
    /// Bytes of the top layer it gives back now; null when it cannot be judged.
    pub bytes: Option<u64>,
    /// How the bytes were counted, or why they cannot be.
    pub basis: String,
    /// The figures behind `bytes` (empty when it has none).
    pub parts: Vec<RemedyPart>,
}

/// `base_audit` of `scan --json`: the chain's base (layer 0) as its clones see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BaseAudit {
    /// Bytes of the base guest's free clusters (NTFS `$Bitmap`) that are not zero: old
    /// deleted data every thin copy carries, and what zeroing the free space before taking
    /// the replica saves in each. Null without a readable NTFS volume.
    pub dirty_free_bytes: Option<u64>,
    /// Bytes of the base that read as zero (4 KiB blocks): what a new clone can grow into
    /// before it overwrites anything, its expected ceiling.
    pub never_used_bytes: u64,
    /// Bytes of the base guest's free clusters; null without a readable NTFS volume.
    pub free_bytes: Option<u64>,
}

/// What [`judge`] concludes.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// The verdict.
    pub verdict: Verdict,
    /// The four remedies, in a fixed order.
    pub remedies: Vec<Remedy>,
    /// The base audit, when the scan read the guest.
    pub base_audit: Option<BaseAudit>,
}

/// Remedy names, as JSON writes them.
pub mod remedy {
    /// Revert the delta to its base (Horizon refresh or recompose).
    pub const REFRESH: &str = "refresh";
    /// Zero the guest's free space, then shrink the delta.
    pub const ZERO_FREE_AND_SHRINK: &str = "zero_free_and_shrink";
    /// Page file, temporary folders and caches on a disposable disk.
    pub const DISPOSABLE_DISK: &str = "disposable_disk";
    /// What reusing freed clusters instead of fresh ones would have saved (an upper bound).
    pub const REUSE_INSTEAD_OF_FRESH: &str = "reuse_instead_of_fresh";
}

/// Guest figures the remedies and the verdict use, from blame's groups.
#[derive(Debug, Default, Clone)]
struct Guest {
    /// Bytes of the `free_now` group.
    free_now: u64,
    /// Zero 4 KiB blocks, every group.
    zeroed: u64,
    /// Fresh bytes and overwrites of parent free space outside `free_now`: growth into free
    /// space that is still live.
    live_growth: u64,
    /// Bytes per rule (index into the rules), files only.
    by_rule: Vec<u64>,
}

fn guest_figures(groups: &[Group], rules: &DisposableRules) -> Guest {
    let mut g = Guest {
        by_rule: vec![0; rules.rules.len()],
        ..Guest::default()
    };
    for x in groups {
        g.zeroed += x.classes.zeroed;
        if x.kind == kind::FREE_NOW {
            g.free_now += x.classes.total();
            continue;
        }
        g.live_growth += x.classes.fresh + x.overwritten_split.parent_free_space;
        if x.kind == kind::FILE
            && let Some(i) = rules.matching(&x.path)
        {
            g.by_rule[i] += x.classes.total();
        }
    }
    g
}

/// Concludes from a scan (guest files read, see `ScanOptions::guest_files`), the rules of the
/// disposable disk, and the disk's growth in bytes per week from its history, if known.
pub fn judge(scan: &ChainScan, rules: &DisposableRules, bytes_per_week: Option<f64>) -> Judgement {
    let guest = scan
        .guest
        .as_ref()
        .map(|t| guest_figures(&t.blame.groups, rules));
    let remedies = remedies(scan, rules, guest.as_ref());
    let base_audit = scan.base.map(|b| BaseAudit {
        dirty_free_bytes: b.free.map(|f| f.dirty_bytes),
        never_used_bytes: b.never_used_bytes,
        free_bytes: b.free.map(|f| f.free_bytes),
    });
    // Whole bytes: the rate is a fit, and JSON should not print its float noise.
    let bytes_per_week = bytes_per_week.map(f64::round);
    let verdict = verdict(scan, &remedies, base_audit.as_ref(), bytes_per_week);
    Judgement {
        verdict,
        remedies,
        base_audit,
    }
}

fn remedies(scan: &ChainScan, rules: &DisposableRules, guest: Option<&Guest>) -> Vec<Remedy> {
    let r = |remedy, bytes, basis: String, parts| Remedy {
        remedy,
        bytes,
        basis,
        parts,
    };
    let part = |part: &str, bytes| RemedyPart {
        part: part.to_string(),
        bytes,
    };
    let names = [
        remedy::REFRESH,
        remedy::ZERO_FREE_AND_SHRINK,
        remedy::DISPOSABLE_DISK,
        remedy::REUSE_INSTEAD_OF_FRESH,
    ];
    let (Some(top), true) = (scan.top(), scan.layers.len() >= 2) else {
        return names
            .into_iter()
            .map(|n| {
                r(
                    n,
                    None,
                    "a base alone is no delta: its remedies are in base_audit".into(),
                    Vec::new(),
                )
            })
            .collect();
    };
    let a = top.stats.allocated_bytes;
    let refresh = r(
        remedy::REFRESH,
        Some(a),
        format!(
            "every byte the top holds; refresh or recompose deletes its file ({} with metadata)",
            format_size(top.file_size)
        ),
        Vec::new(),
    );
    let why = scan
        .guest_note
        .clone()
        .unwrap_or_else(|| "they were not read".into());
    let Some(g) = guest else {
        let zero_grains = top
            .stats
            .classes
            .zeroed
            .saturating_sub(top.stats.zero_entry_bytes + top.stats.unmapped_bytes);
        return vec![
            refresh,
            r(
                remedy::ZERO_FREE_AND_SHRINK,
                None,
                format!(
                    "needs the guest's free space, and {why}; grains that are all zero hold {}",
                    format_size(zero_grains)
                ),
                vec![part("zeroed_grains", zero_grains)],
            ),
            r(
                remedy::DISPOSABLE_DISK,
                None,
                format!("needs the guest's file names, and {why}"),
                Vec::new(),
            ),
            r(
                remedy::REUSE_INSTEAD_OF_FRESH,
                None,
                format!("needs the guest's free space, and {why}"),
                Vec::new(),
            ),
        ];
    };
    let shrink = scan.guest.as_ref().map(|t| t.shrink).unwrap_or_default();
    let mut rule_parts: Vec<RemedyPart> = rules
        .rules
        .iter()
        .zip(&g.by_rule)
        .filter(|(_, b)| **b > 0)
        .map(|(rule, b)| part(&rule.text, *b))
        .collect();
    rule_parts.sort_by(|x, y| y.bytes.cmp(&x.bytes).then_with(|| x.part.cmp(&y.part)));
    let disposable: u64 = g.by_rule.iter().sum();
    let reuse = g.live_growth.min(g.free_now);
    vec![
        refresh,
        r(
            remedy::ZERO_FREE_AND_SHRINK,
            Some(shrink.bytes),
            format!(
                "{} grains of {} wholly free in the guest or zero (free now {}, zero blocks {}); \
                 sdelete -z, then vmkfstools -K, vmware-vdiskmanager -k or an SESparse shrink",
                shrink.grains,
                format_size(top.grain_size),
                format_size(g.free_now),
                format_size(g.zeroed)
            ),
            vec![part("free_now", g.free_now), part("zeroed", g.zeroed)],
        ),
        r(
            remedy::DISPOSABLE_DISK,
            Some(disposable),
            if disposable == 0 {
                format!(
                    "no file matches the {} rules (page, hibernation and swap files, temporary \
                     folders, browser caches)",
                    rules.rules.len()
                )
            } else {
                format!(
                    "files the rules match: {}",
                    rule_parts
                        .iter()
                        .take(3)
                        .map(|p| format!("{} {}", p.part, format_size(p.bytes)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            rule_parts,
        ),
        r(
            remedy::REUSE_INSTEAD_OF_FRESH,
            Some(reuse),
            format!(
                "upper bound: the smaller of the live growth into free space ({}) and the space \
                 this delta wrote and the guest freed ({})",
                format_size(g.live_growth),
                format_size(g.free_now)
            ),
            vec![
                part("live_growth", g.live_growth),
                part("free_now", g.free_now),
            ],
        ),
    ]
}

/// The name of a group for people.
fn cause(g: &Group) -> String {
    match g.kind {
        kind::FREE_NOW => "files written then deleted".into(),
        kind::METADATA => format!("NTFS metadata {}", g.path),
        kind::UNPARTITIONED => "space outside the partitions".into(),
        _ => g.path.clone(),
    }
}

fn verdict(
    scan: &ChainScan,
    remedies: &[Remedy],
    base: Option<&BaseAudit>,
    bytes_per_week: Option<f64>,
) -> Verdict {
    let mut text = Vec::new();
    let Some(top) = scan.top() else {
        return Verdict {
            text: "The chain has no layer.".into(),
            growth_pattern: GrowthPattern::None,
            weeks_to_ceiling: None,
            bytes_per_week,
        };
    };
    let s = &top.stats;
    let a = s.allocated_bytes;
    if scan.layers.len() < 2 {
        text.push(format!(
            "This disk has no parent: it is a base (or replica) holding {}, and nothing in it is a delta's growth.",
            format_size(a)
        ));
        if let Some(b) = base {
            text.push(format!(
                "Each new clone of it can grow into {} that reads as zero (its expected ceiling).",
                format_size(b.never_used_bytes)
            ));
            text.push(match b.dirty_free_bytes {
                Some(d) if d > 0 => format!(
                    "Its free space holds {} that is not zero: zeroing it before taking the replica saves that much in every thin copy.",
                    format_size(d)
                ),
                Some(_) => "Its free space is all zero already.".into(),
                None => "Its free space cannot be read (no NTFS volume).".into(),
            });
        }
        text.push(
            "For what a clone or snapshot added, scan its delta, the top of its chain; `deltascope scan FOLDER` gives every disk's role."
                .into(),
        );
        return Verdict {
            text: text.join(" "),
            growth_pattern: GrowthPattern::None,
            weeks_to_ceiling: None,
            bytes_per_week,
        };
    }
    let c = &s.classes;
    let share = |v: u64| if a == 0 { 0.0 } else { v as f64 / a as f64 };
    let pattern = if (a as f64) <= top.virtual_size as f64 * NEGLIGIBLE {
        GrowthPattern::None
    } else if share(c.fresh) >= DOMINANT {
        GrowthPattern::FreshFirst
    } else if share(c.overwritten) >= DOMINANT {
        GrowthPattern::Reuse
    } else if share(c.identical) >= DOMINANT {
        GrowthPattern::Rewrite
    } else if share(c.zeroed) >= DOMINANT {
        GrowthPattern::Zeros
    } else {
        GrowthPattern::Mixed
    };
    let of = |v: u64| {
        format!(
            "{} ({} of {})",
            percent(v, a),
            format_size(v),
            format_size(a)
        )
    };
    text.push(match pattern {
        GrowthPattern::None => format!(
            "This snapshot holds almost no change: {} on a {} disk.",
            format_size(a),
            format_size(top.virtual_size)
        ),
        GrowthPattern::FreshFirst => format!(
            "{} of this delta went into space that was never used below it (fresh-first allocation, the linked-clone growth pattern).",
            of(c.fresh)
        ),
        GrowthPattern::Reuse => {
            let mut t = format!(
                "{} of this delta replaced data below it (overwritten): the guest reused space the layers below had used",
                of(c.overwritten)
            );
            if let Some(sp) = &scan.ntfs_overwritten {
                t.push_str(&format!(
                    "; by the parent's NTFS, {} of it replaced live files and {} went into free space that still held old data",
                    format_size(sp.live_parent_data),
                    format_size(sp.parent_free_space)
                ));
            }
            t.push('.');
            t
        }
        GrowthPattern::Rewrite => format!(
            "{} of this delta rewrote exactly what the layers below hold (identical rewrites: copies, defragmentation, scans that write back).",
            of(c.identical)
        ),
        GrowthPattern::Zeros => format!(
            "{} of this delta is zeros written over space (zeroing tools, preallocated files): shrinking the delta returns whole zero grains.",
            of(c.zeroed)
        ),
        GrowthPattern::Mixed => {
            let mut parts = [
                (c.fresh, "fresh"),
                (c.overwritten, "overwritten"),
                (c.identical, "identical"),
                (c.zeroed, "zeros"),
            ];
            parts.sort_by_key(|p| std::cmp::Reverse(p.0));
            format!(
                "This delta's growth is mixed: {}.",
                parts
                    .iter()
                    .filter(|(v, _)| *v > 0)
                    .map(|(v, n)| format!("{} {n} ({})", format_size(*v), percent(*v, a)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    });
    let mut weeks = None;
    if let Some(ceiling) = &scan.ceiling {
        let e = ceiling.expected_bytes;
        if a >= e {
            // There already: no weeks to go, once a history says how fast it grows.
            weeks = bytes_per_week.map(|_| 0.0);
            text.push(format!(
                "It holds {}, at its expected ceiling of {}: from here it grows only by overwriting used space (hard ceiling {}).",
                format_size(a),
                format_size(e),
                format_size(ceiling.hard_bytes)
            ));
        } else {
            let head = format!(
                "It holds {} and can reach {} (expected ceiling, if fresh-first allocation goes on)",
                format_size(a),
                format_size(e)
            );
            text.push(match bytes_per_week {
                Some(r) if r > 0.0 => {
                    let w = (e - a) as f64 / r;
                    let w = (w * 10.0).round() / 10.0;
                    weeks = Some(w);
                    format!(
                        "{head} at {}/week, its recorded rate: {}.",
                        format_size(r as u64),
                        if w < 2.0 {
                            format!("{w} weeks")
                        } else {
                            format!("about {} weeks", w.round())
                        }
                    )
                }
                Some(_) => format!("{head}; its recorded history shows no growth."),
                None => format!(
                    "{head}; record scans over time (scan --record) to learn how fast it gets there."
                ),
            });
        }
    }
    match &scan.guest {
        Some(t) => {
            let causes: Vec<String> = t
                .blame
                .groups
                .iter()
                .filter(|g| g.classes.total() as f64 >= a as f64 * CAUSE_SHARE)
                .take(CAUSES)
                .map(|g| format!("{} {}", cause(g), format_size(g.classes.total())))
                .collect();
            if !causes.is_empty() {
                text.push(format!("Largest causes: {}.", causes.join(", ")));
            }
        }
        None => text.push(match &scan.guest_note {
            Some(n) => format!(
                "The guest's files cannot be read ({n}), so the causes and the remedies that need them are not judged."
            ),
            None => "The guest's files were not read, so the causes and the remedies that need them are not judged.".into(),
        }),
    }
    // The remedy that returns the most, refresh aside.
    if pattern != GrowthPattern::None
        && let Some(best) = remedies
            .iter()
            .filter(|r| r.remedy != remedy::REFRESH && r.remedy != remedy::REUSE_INSTEAD_OF_FRESH)
            .filter_map(|r| r.bytes.map(|b| (b, r.remedy)))
            .max_by_key(|(b, _)| *b)
    {
        let words = match best.1 {
            remedy::ZERO_FREE_AND_SHRINK => "Zeroing free space and shrinking",
            _ => "A disposable disk for page file, temporary files and caches",
        };
        text.push(if best.0 == 0 {
            format!(
                "Short of a refresh (all {}), no remedy returns anything now.",
                format_size(a)
            )
        } else {
            format!(
                "{words} would return {} now ({}); a refresh returns all {}.",
                format_size(best.0),
                percent(best.0, a),
                format_size(a)
            )
        });
    }
    Verdict {
        text: text.join(" "),
        growth_pattern: pattern,
        weeks_to_ceiling: weeks,
        bytes_per_week,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceiling::Ceiling;
    use crate::classify::{ClassCounts, LayerStats};
    use crate::scan::ScannedLayer;

    const MIB: u64 = 1 << 20;

    fn layer(classes: ClassCounts) -> ScannedLayer {
        ScannedLayer {
            path: "/vm/x.vmdk".into(),
            format: crate::format::Format::HostedSparse,
            create_type: "monolithicSparse".into(),
            virtual_size: 1024 * MIB,
            grain_size: 65536,
            cid: None,
            parent_cid: None,
            file_size: classes.total() + MIB,
            warnings: Vec::new(),
            stats: LayerStats {
                classes,
                allocated_bytes: classes.total(),
                ..LayerStats::default()
            },
        }
    }

    /// A chain of a base and a top with these classes (bytes), no guest read.
    fn chain(fresh: u64, overwritten: u64, identical: u64, zeroed: u64) -> ChainScan {
        let top = ClassCounts {
            fresh,
            overwritten,
            identical,
            zeroed,
        };
        ChainScan {
            layers: vec![
                layer(ClassCounts {
                    fresh: 100 * MIB,
                    ..ClassCounts::default()
                }),
                layer(top),
            ],
            ceiling: Some(Ceiling {
                hard_bytes: 1025 * MIB,
                expected_bytes: top.total() + 100 * MIB,
                parent_zero_unwritten_bytes: 100 * MIB,
            }),
            ntfs_overwritten: None,
            guest: None,
            guest_note: Some("the top view holds no NTFS volume".into()),
            base: None,
        }
    }

    fn judged(c: &ChainScan, rate: Option<f64>) -> Verdict {
        judge(c, &DisposableRules::default(), rate).verdict
    }

    #[test]
    fn the_pattern_and_its_words_follow_the_classes() {
        let cases = [
            (
                chain(7 * MIB, MIB, MIB, MIB),
                GrowthPattern::FreshFirst,
                "never used below it",
            ),
            (
                chain(MIB, 7 * MIB, MIB, MIB),
                GrowthPattern::Reuse,
                "replaced data below it",
            ),
            (
                chain(MIB, MIB, 7 * MIB, MIB),
                GrowthPattern::Rewrite,
                "rewrote exactly",
            ),
            (
                chain(MIB, MIB, MIB, 7 * MIB),
                GrowthPattern::Zeros,
                "is zeros written",
            ),
            (
                chain(4 * MIB, 3 * MIB, 2 * MIB, MIB),
                GrowthPattern::Mixed,
                "mixed: 4.0 MiB fresh (40.0%), 3.0 MiB overwritten (30.0%), 2.0 MiB identical (20.0%), 1.0 MiB zeros (10.0%)",
            ),
            // 1 MiB of a 1 GiB disk is 0.1 %: almost no change.
            (chain(MIB, 0, 0, 0), GrowthPattern::None, "almost no change"),
        ];
        for (c, pattern, words) in cases {
            let v = judged(&c, None);
            assert_eq!(v.growth_pattern, pattern, "{}", v.text);
            assert!(v.text.contains(words), "{pattern:?}: {}", v.text);
            assert!(
                v.text
                    .contains("cannot be read (the top view holds no NTFS volume)")
            );
            assert_eq!(v.weeks_to_ceiling, None);
        }
    }

    #[test]
    fn weeks_to_the_ceiling_come_from_the_rate() {
        // 10 MiB held, 100 MiB more to the expected ceiling, at 8 MiB a week: 12.5 weeks.
        let c = chain(7 * MIB, MIB, MIB, MIB);
        let v = judged(&c, Some(8.0 * MIB as f64));
        assert_eq!(v.weeks_to_ceiling, Some(12.5));
        assert_eq!(v.bytes_per_week, Some(8.0 * MIB as f64));
        assert!(
            v.text
                .contains("at 8.0 MiB/week, its recorded rate: about 13 weeks."),
            "{}",
            v.text
        );
        // No growth recorded, and a top at its ceiling.
        let v = judged(&c, Some(0.0));
        assert_eq!(v.weeks_to_ceiling, None);
        assert!(v.text.contains("shows no growth"), "{}", v.text);
        let mut full = c.clone();
        full.ceiling = Some(Ceiling {
            expected_bytes: 10 * MIB,
            ..full.ceiling.unwrap()
        });
        let v = judged(&full, Some(MIB as f64));
        assert!(v.text.contains("at its expected ceiling"), "{}", v.text);
        assert_eq!(v.weeks_to_ceiling, Some(0.0));
        assert_eq!(judged(&full, None).weeks_to_ceiling, None);
    }

    #[test]
    fn without_the_guest_only_a_refresh_is_judged_and_a_base_is_no_delta() {
        let c = chain(7 * MIB, MIB, MIB, MIB);
        let j = judge(&c, &DisposableRules::default(), None);
        let names: Vec<_> = j.remedies.iter().map(|r| r.remedy).collect();
        assert_eq!(
            names,
            [
                remedy::REFRESH,
                remedy::ZERO_FREE_AND_SHRINK,
                remedy::DISPOSABLE_DISK,
                remedy::REUSE_INSTEAD_OF_FRESH
            ]
        );
        assert_eq!(j.remedies[0].bytes, Some(10 * MIB));
        assert!(j.remedies[1..].iter().all(|r| r.bytes.is_none()));
        // The top's 1 MiB of zeroed grains, all stored: what shrinking alone returns.
        assert_eq!(j.remedies[1].parts[0].bytes, MIB);
        let mut base = c.clone();
        base.layers.truncate(1);
        let j = judge(&base, &DisposableRules::default(), None);
        assert_eq!(j.verdict.growth_pattern, GrowthPattern::None);
        assert!(j.verdict.text.starts_with("This disk has no parent"));
        assert!(j.remedies.iter().all(|r| r.bytes.is_none()));
    }

    #[test]
    fn the_default_rules_parse_and_match_windows_paths() {
        let r = DisposableRules::default();
        assert_eq!(r.rules().count(), 13);
        assert_eq!(r.matching("/pagefile.sys"), Some(0));
        assert_eq!(r.matching("/PageFile.SYS"), Some(0));
        assert_eq!(r.matching("/data/pagefile.sys"), None);
        assert_eq!(r.matching("/Windows/Temp/a/b.tmp"), Some(3));
        assert_eq!(r.matching("/Windows/Temp:$I30"), Some(3));
        assert_eq!(r.matching("/Windows/Temporary"), None);
        assert_eq!(r.matching("/Users/alice/AppData/Local/Temp/x.log"), Some(4));
        assert_eq!(
            r.matching(
                "/Users/bob/AppData/Local/Google/Chrome/User Data/Profile 1/Cache/Cache_Data/f_0001"
            ),
            Some(6)
        );
        assert_eq!(r.matching("/Users/bob/Documents/Cache/x"), None);
    }

    #[test]
    fn rules_read_globs_and_report_bad_lines() {
        let r = DisposableRules::parse("# mine\n\n\\tmp\\*.bin\n/**/cache\n/a?c").unwrap();
        assert_eq!(
            r.rules().collect::<Vec<_>>(),
            ["/tmp/*.bin", "/**/cache", "/a?c"]
        );
        assert_eq!(r.matching("/tmp/gone.bin"), Some(0));
        assert_eq!(r.matching("/tmp/gone.txt"), None);
        assert_eq!(r.matching("/x/y/Cache/z"), Some(1));
        assert_eq!(r.matching("/cache"), Some(1));
        assert_eq!(r.matching("/abc/d"), Some(2));
        assert_eq!(r.matching("/abbc"), None);
        let e = DisposableRules::parse("/ok\n/\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = DisposableRules::parse("/a/../b").unwrap_err();
        assert!(e.contains("\"..\""), "{e}");
        assert!(DisposableRules::parse("# nothing\n").is_err());
    }

    #[test]
    fn globs() {
        let g = |p: &str, s: &str| glob(p.as_bytes(), s.as_bytes());
        assert!(g("*", ""));
        assert!(g("a*b*c", "aXXbYYc"));
        assert!(g("a*b*c", "abcbc"));
        assert!(!g("a*b*c", "abcb"));
        assert!(g("*.sys", "pagefile.sys"));
        assert!(!g("?", ""));
    }
}
