//! What changed between two observations of one disk (`deltascope diff`): bytes grown per
//! layer and per class, per file when both observations carry blame groups, and the growth
//! rate per week between their times.
//!
//! An observation ([`Snapshot`]) is read from a `scan --json` document of one disk (its
//! layers and their classes), a `blame --json` document (the top layer, its classes and one
//! group per file), or a point of the history store (the top's bytes and classes, and each
//! layer's when the point was recorded by a scan). The documents are read with types of their
//! own, written from docs/JSON.md, not with the report types that print them: the contract is
//! what is read. Reading the files and the store, and the clock, are the caller's.
//!
//! Layers are matched by path; observations of one disk share at least one layer file (a
//! snapshot adds a layer on top, a refresh empties the top, a recompose changes the base).
//! Two observations that share no layer are of two disks, unless their tops have the same
//! file name (the same disk seen through another folder or mount: compared, with a note).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::history::Point;

/// Bytes per class of one layer (`T = u64`), or their change (`T = i64`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classes<T> {
    /// Written where the parent reads as zero.
    pub fresh: T,
    /// Written over different, non-zero parent data.
    pub overwritten: T,
    /// Written with what the parent already holds.
    pub identical: T,
    /// Zeros written over non-zero parent data.
    pub zeroed: T,
}

/// One layer as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBytes {
    /// The layer's file.
    pub path: String,
    /// Its allocated bytes.
    pub allocated_bytes: u64,
    /// Its classes, when the observation has them.
    pub classes: Option<Classes<u64>>,
}

/// One blame group as observed (a file, a directory or an extension).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GroupBytes {
    /// `file`, `dir`, `ext`, or one of blame's kinds for what is not a file.
    pub kind: String,
    /// The group's path or name.
    pub path: String,
    /// The top layer's bytes in it.
    pub bytes: u64,
}

/// One observation of a disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Where it came from, for people: the file, or `DISK at TIME` of the history.
    pub source: String,
    /// The layers observed, base first, top last (a blame document or an imported point:
    /// the top only).
    pub layers: Vec<LayerBytes>,
    /// Blame's groups, and what they group by, when the observation carries them.
    pub groups: Option<(String, Vec<GroupBytes>)>,
    /// When the disk was observed, when known.
    pub at: Option<DateTime<Utc>>,
    /// The disk's name in the history, for a point of it: two points of one name are of
    /// one disk, and their tops are compared even when one was imported (no layer paths).
    pub disk: Option<String>,
}

/// `scan --json` of one disk, as docs/JSON.md writes it (the fields read).
#[derive(Deserialize)]
struct ScanDoc {
    chain: Vec<ScanLayer>,
    /// Absent from documents of deltascope before 0.1's `scanned_at`.
    #[serde(default)]
    scanned_at: Option<String>,
}

#[derive(Deserialize)]
struct ScanLayer {
    path: String,
    allocated_bytes: u64,
    classes: Classes<u64>,
}

/// `blame --json`, as docs/JSON.md writes it (the fields read).
#[derive(Deserialize)]
struct BlameDoc {
    layer: String,
    allocated_bytes: u64,
    classes: Classes<u64>,
    group_by: String,
    groups: Vec<GroupBytes>,
}

/// One layer of a history point's `layers` (recorded by `scan --record`).
#[derive(Deserialize)]
struct PointLayer {
    path: String,
    allocated_bytes: u64,
    classes: Option<Classes<u64>>,
}

/// What the documents `diff` reads are, for errors.
const EXPECTED: &str = "expected the JSON of `scan --json` on one disk (an object with \"chain\") or of `blame --json` (an object with \"groups\")";

impl Snapshot {
    /// Reads a `scan --json` (one disk) or `blame --json` document; `file` names it in
    /// errors, which say what was expected.
    pub fn from_json(file: &Path, text: &[u8]) -> Result<Snapshot> {
        let bad = |why: String| Error::Unreadable {
            path: file.to_path_buf(),
            why,
        };
        let value: serde_json::Value =
            serde_json::from_slice(text).map_err(|e| bad(format!("not JSON ({e}): {EXPECTED}")))?;
        let source = file.display().to_string();
        let Some(obj) = value.as_object() else {
            return Err(bad(format!("the document is not an object: {EXPECTED}")));
        };
        if obj.contains_key("chain") {
            let doc: ScanDoc = serde_json::from_value(value)
                .map_err(|e| bad(format!("a scan document, but {e}: {EXPECTED}")))?;
            if doc.chain.is_empty() {
                return Err(bad("a scan document with no layer in \"chain\"".into()));
            }
            let at = match &doc.scanned_at {
                Some(t) => Some(
                    DateTime::parse_from_rfc3339(t)
                        .map_err(|e| {
                            bad(format!("scanned_at {t:?} is not an RFC 3339 time ({e})"))
                        })?
                        .with_timezone(&Utc),
                ),
                None => None,
            };
            return Ok(Snapshot {
                source,
                layers: doc
                    .chain
                    .into_iter()
                    .map(|l| LayerBytes {
                        path: l.path,
                        allocated_bytes: l.allocated_bytes,
                        classes: Some(l.classes),
                    })
                    .collect(),
                groups: None,
                at,
                disk: None,
            });
        }
        if obj.contains_key("groups") {
            let doc: BlameDoc = serde_json::from_value(value)
                .map_err(|e| bad(format!("a blame document, but {e}: {EXPECTED}")))?;
            return Ok(Snapshot {
                source,
                layers: vec![LayerBytes {
                    path: doc.layer,
                    allocated_bytes: doc.allocated_bytes,
                    classes: Some(doc.classes),
                }],
                groups: Some((doc.group_by, doc.groups)),
                at: None,
                disk: None,
            });
        }
        if obj.contains_key("luns") {
            return Err(bad(format!(
                "a datastore scan (`scan DIR --json`), not a scan of one disk: {EXPECTED}"
            )));
        }
        Err(bad(format!("neither \"chain\" nor \"groups\": {EXPECTED}")))
    }

    /// A point of the history store: the top's bytes and classes, and every layer's when a
    /// scan recorded it.
    pub fn from_point(p: &Point) -> Snapshot {
        let classes = p
            .classes
            .map(|[fresh, overwritten, identical, zeroed]| Classes {
                fresh,
                overwritten,
                identical,
                zeroed,
            });
        let layers: Option<Vec<PointLayer>> = p
            .layers
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .filter(|l: &Vec<PointLayer>| !l.is_empty());
        let layers = match layers {
            Some(l) => l
                .into_iter()
                .map(|l| LayerBytes {
                    path: l.path,
                    allocated_bytes: l.allocated_bytes,
                    classes: l.classes,
                })
                .collect(),
            // An imported point: the disk's name stands for its top layer.
            None => vec![LayerBytes {
                path: p.disk.clone(),
                allocated_bytes: p.bytes,
                classes,
            }],
        };
        Snapshot {
            source: format!("{} at {}", p.disk, crate::history::format_time(&p.at)),
            layers,
            groups: None,
            at: Some(p.at),
            disk: Some(p.disk.clone()),
        }
    }

    fn top(&self) -> &LayerBytes {
        // OK to index: every constructor gives at least one layer.
        &self.layers[self.layers.len() - 1]
    }
}

/// The change of one layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerChange {
    /// The layer's file (as NEW names it, else as OLD does).
    pub path: String,
    /// Whether it is NEW's top layer.
    pub top: bool,
    /// Allocated bytes in OLD (null: not a layer of OLD).
    pub old_bytes: Option<u64>,
    /// Allocated bytes in NEW (null: not a layer of NEW).
    pub new_bytes: Option<u64>,
    /// NEW minus OLD (a missing side counts 0).
    pub grown_bytes: i64,
    /// NEW minus OLD per class (null when either side lacks classes).
    pub classes_grown: Option<Classes<i64>>,
}

/// The change of one blame group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupChange {
    /// Blame's kind of group.
    pub kind: String,
    /// The group's path or name.
    pub path: String,
    /// The top's bytes in it in OLD (0: not there).
    pub old_bytes: u64,
    /// In NEW.
    pub new_bytes: u64,
    /// NEW minus OLD.
    pub grown_bytes: i64,
}

/// One side of a diff, as the report names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    /// The file, or `DISK at TIME`.
    pub source: String,
    /// Its top layer.
    pub top: String,
    /// When it was observed (RFC 3339), when known.
    pub at: Option<String>,
}

/// What changed between OLD and NEW.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diff {
    /// deltascope's version.
    pub deltascope_version: String,
    /// The older observation.
    pub old: Side,
    /// The newer one.
    pub new: Side,
    /// Where the times come from: `history`, `given` (`--at`), `scanned_at` (the scan
    /// documents' own times), `file_modified` (the documents' modification times) or null
    /// (no times).
    pub time_source: Option<&'static str>,
    /// Seconds from OLD to NEW (null without times).
    pub interval_seconds: Option<f64>,
    /// Every layer of either side: NEW's from the base up, then those only OLD has.
    pub layers: Vec<LayerChange>,
    /// NEW's top layer minus the same file in OLD.
    pub top_grown_bytes: i64,
    /// Every layer's growth added up (the disk's delta layers and base together).
    pub chain_grown_bytes: i64,
    /// `top_grown_bytes` per week (null without an interval).
    pub top_per_week_bytes: Option<f64>,
    /// `chain_grown_bytes` per week.
    pub chain_per_week_bytes: Option<f64>,
    /// What the groups are (`file`, `dir`, `ext`), when both sides carry blame groups.
    pub group_by: Option<String>,
    /// Each group that changed, largest growth first (null when either side has no groups).
    pub groups: Option<Vec<GroupChange>>,
    /// Why figures are what they are (no groups, a snapshot taken, a refresh).
    pub notes: Vec<String>,
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn minus(new: u64, old: u64) -> i64 {
    signed(new).saturating_sub(signed(old))
}

fn file_name(p: &str) -> &str {
    p.rsplit(['/', '\\']).next().unwrap_or(p)
}

/// Compares two observations of one disk. `time_source` says where their times came from.
/// Fails, naming both, when they share no layer file and their tops' file names differ.
pub fn diff(old: &Snapshot, new: &Snapshot, time_source: Option<&'static str>) -> Result<Diff> {
    let mut notes = Vec::new();
    // A point imported from another tool knows its top's size only: the other side's
    // layers below the top are then unknown on this one, not new; the tops are compared.
    let imported = |s: &Snapshot| s.disk.is_some() && s.layers.len() == 1;
    let tops_only = |s: &Snapshot| Snapshot {
        layers: vec![s.top().clone()],
        ..s.clone()
    };
    let (old, new) = if old.disk.is_some()
        && old.disk == new.disk
        && (imported(old) || imported(new))
    {
        if old.layers.len() > 1 || new.layers.len() > 1 {
            notes.push(
                "one point knows only its top layer's size (an import): the top layers are compared".to_string(),
            );
        }
        (&tops_only(old), &tops_only(new))
    } else {
        (old, new)
    };
    let shares = new
        .layers
        .iter()
        .any(|n| old.layers.iter().any(|o| o.path == n.path));
    // Layers are matched by path; with none in common but the same top file name, by file
    // name (the same disk through another folder).
    let one_disk = old.disk.is_some() && old.disk == new.disk;
    let by_name = !shares && !one_disk && file_name(&old.top().path) == file_name(&new.top().path);
    if !shares && !by_name && !one_disk {
        return Err(Error::Other(format!(
            "{} and {} are not of one disk: {} has top layer {} and {} has {}, and they share no layer file",
            old.source,
            new.source,
            old.source,
            old.top().path,
            new.source,
            new.top().path
        )));
    }
    let key = |p: &str| -> String {
        if by_name {
            file_name(p).to_string()
        } else {
            p.to_string()
        }
    };
    if by_name {
        notes.push(format!(
            "the two share no layer path: layers are matched by file name ({} and {} taken for one disk)",
            old.top().path,
            new.top().path
        ));
    }
    let new_keys: Vec<String> = new.layers.iter().map(|l| key(&l.path)).collect();
    // Two points of one disk in the history: OLD's top, when NEW has no layer of its path
    // (an imported point is named by the disk), is NEW's top.
    let old_last = old.layers.len() - 1;
    let old_key = |i: usize, l: &LayerBytes| -> String {
        let k = key(&l.path);
        if one_disk && i == old_last && !new_keys.contains(&k) {
            new_keys[new_keys.len() - 1].clone()
        } else {
            k
        }
    };
    let old_by: BTreeMap<String, &LayerBytes> = old
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| (old_key(i, l), l))
        .collect();
    let change = |o: Option<&LayerBytes>, n: Option<&LayerBytes>, top: bool| {
        let path = n.or(o).map(|l| l.path.clone()).unwrap_or_default();
        let ob = o.map(|l| l.allocated_bytes);
        let nb = n.map(|l| l.allocated_bytes);
        let zero = Some(Classes::<u64>::default());
        let oc = o.map_or(zero, |l| l.classes);
        let nc = n.map_or(zero, |l| l.classes);
        LayerChange {
            path,
            top,
            old_bytes: ob,
            new_bytes: nb,
            grown_bytes: minus(nb.unwrap_or(0), ob.unwrap_or(0)),
            classes_grown: oc.zip(nc).map(|(o, n)| Classes {
                fresh: minus(n.fresh, o.fresh),
                overwritten: minus(n.overwritten, o.overwritten),
                identical: minus(n.identical, o.identical),
                zeroed: minus(n.zeroed, o.zeroed),
            }),
        }
    };
    let last = new.layers.len() - 1;
    let mut layers: Vec<LayerChange> = new
        .layers
        .iter()
        .zip(&new_keys)
        .enumerate()
        .map(|(i, (n, k))| change(old_by.get(k).copied(), Some(n), i == last))
        .collect();
    for (i, o) in old.layers.iter().enumerate() {
        if !new_keys.contains(&old_key(i, o)) {
            layers.push(change(Some(o), None, false));
        }
    }
    let top = &layers[last];
    let top_grown = top.grown_bytes;
    if top.old_bytes.is_none() {
        notes.push(format!(
            "{} is a new layer (a snapshot was taken, or the disk was re-created): all of its bytes count as grown",
            top.path
        ));
    }
    if top_grown < 0 {
        notes.push(
            "the top layer shrank: the disk was refreshed, recomposed or shrunk between the two; its growth since then is at most its size in NEW".to_string(),
        );
    }
    if layers.iter().any(|l| l.new_bytes.is_none()) {
        notes.push(
            "a layer of OLD is not in NEW (consolidated, deleted or recomposed onto another base)"
                .to_string(),
        );
    }
    if layers.iter().any(|l| l.classes_grown.is_none()) {
        notes.push(
            "classes are not known on one side (an imported history point, or a point recorded before per-layer summaries): no change per class there".to_string(),
        );
    }
    let chain_grown = layers
        .iter()
        .fold(0i64, |s, l| s.saturating_add(l.grown_bytes));
    let interval = old
        .at
        .zip(new.at)
        .map(|(o, n)| (n - o).num_milliseconds() as f64 / 1000.0);
    let per_week = |b: i64| {
        interval
            .filter(|s| *s > 0.0)
            .map(|s| b as f64 / (s / (7.0 * 86400.0)))
    };
    match interval {
        None => {
            notes.push("no times: no growth rate (give --at OLD_TIME --at NEW_TIME)".to_string())
        }
        Some(s) if s <= 0.0 => notes.push(
            "NEW is not later than OLD: no growth rate (give them in time order)".to_string(),
        ),
        Some(_) => {}
    }
    let groups = match (&old.groups, &new.groups) {
        (Some((ob, og)), Some((nb, ng))) if ob == nb => Some(group_changes(og, ng)),
        (Some((ob, _)), Some((nb, _))) => {
            notes.push(format!(
                "blame groups by {ob} in OLD and by {nb} in NEW: not compared (run blame with the same --by)"
            ));
            None
        }
        _ => {
            notes.push(
                "no change per file: only `blame --json` documents carry groups, on both sides (a scan's JSON and a history point do not)".to_string(),
            );
            None
        }
    };
    let time = |s: &Snapshot| s.at.map(|t| crate::history::format_time(&t));
    Ok(Diff {
        deltascope_version: crate::VERSION.to_string(),
        old: Side {
            source: old.source.clone(),
            top: old.top().path.clone(),
            at: time(old),
        },
        new: Side {
            source: new.source.clone(),
            top: new.top().path.clone(),
            at: time(new),
        },
        time_source: interval.and(time_source),
        interval_seconds: interval,
        top_grown_bytes: top_grown,
        chain_grown_bytes: chain_grown,
        top_per_week_bytes: per_week(top_grown),
        chain_per_week_bytes: per_week(chain_grown),
        layers,
        group_by: groups
            .as_ref()
            .and(new.groups.as_ref().map(|(b, _)| b.clone())),
        groups,
        notes,
    })
}

/// Each group whose bytes changed, largest growth first (then by path).
fn group_changes(old: &[GroupBytes], new: &[GroupBytes]) -> Vec<GroupChange> {
    let mut by: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
    for g in old {
        by.entry((&g.kind, &g.path)).or_default().0 += g.bytes;
    }
    for g in new {
        by.entry((&g.kind, &g.path)).or_default().1 += g.bytes;
    }
    let mut out: Vec<GroupChange> = by
        .into_iter()
        .filter(|(_, (o, n))| o != n)
        .map(|((kind, path), (o, n))| GroupChange {
            kind: kind.to_string(),
            path: path.to_string(),
            old_bytes: o,
            new_bytes: n,
            grown_bytes: minus(n, o),
        })
        .collect();
    out.sort_by(|a, b| {
        b.grown_bytes
            .cmp(&a.grown_bytes)
            .then_with(|| a.path.cmp(&b.path))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(path: &str, bytes: u64, fresh: u64) -> LayerBytes {
        LayerBytes {
            path: path.into(),
            allocated_bytes: bytes,
            classes: Some(Classes {
                fresh,
                overwritten: bytes - fresh,
                identical: 0,
                zeroed: 0,
            }),
        }
    }

    fn snap(layers: Vec<LayerBytes>, day: i64) -> Snapshot {
        Snapshot {
            source: format!("day {day}"),
            layers,
            groups: None,
            at: Some(
                DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
                    .expect("t")
                    .with_timezone(&Utc)
                    + chrono::Duration::days(day),
            ),
            disk: None,
        }
    }

    #[test]
    fn growth_per_layer_class_and_week() {
        // The top grew from 10 (6 fresh) to 24 (20 fresh) in 14 days: +14, +14 fresh, +0
        // overwritten; 7 per week.
        let old = snap(vec![layer("b", 100, 0), layer("t", 10, 6)], 0);
        let new = snap(vec![layer("b", 100, 0), layer("t", 24, 20)], 14);
        let d = diff(&old, &new, Some("given")).expect("diff");
        assert_eq!(d.top_grown_bytes, 14);
        assert_eq!(d.chain_grown_bytes, 14);
        assert_eq!(
            d.layers[1].classes_grown.map(|c| (c.fresh, c.overwritten)),
            Some((14, 0))
        );
        assert_eq!(d.top_per_week_bytes, Some(7.0));
        assert_eq!(d.interval_seconds, Some(14.0 * 86400.0));
    }

    #[test]
    fn a_snapshot_adds_a_layer_and_other_disks_are_refused() {
        // A snapshot on t: NEW's top s is new, t unchanged: all of s grew.
        let old = snap(vec![layer("b", 100, 0), layer("t", 10, 6)], 0);
        let new = snap(
            vec![layer("b", 100, 0), layer("t", 10, 6), layer("s", 5, 5)],
            7,
        );
        let d = diff(&old, &new, None).expect("diff");
        assert_eq!((d.top_grown_bytes, d.chain_grown_bytes), (5, 5));
        assert!(d.notes.iter().any(|n| n.contains("new layer")));
        // Nothing in common: two disks, both named.
        let other = snap(vec![layer("c", 1, 1), layer("u", 2, 2)], 7);
        let e = diff(&old, &other, None).expect_err("two disks").to_string();
        assert!(
            e.contains("day 0") && e.contains("day 7") && e.contains("not of one disk"),
            "{e}"
        );
        // Same top file name in another folder: matched by name, with a note.
        let moved = snap(vec![layer("/mnt/b", 100, 0), layer("/mnt/t", 12, 8)], 7);
        let d = diff(
            &snap(vec![layer("/x/b", 100, 0), layer("/x/t", 10, 6)], 0),
            &moved,
            None,
        )
        .expect("diff");
        assert_eq!(d.top_grown_bytes, 2);
        assert!(d.notes.iter().any(|n| n.contains("file name")));
    }

    #[test]
    fn groups_are_compared_when_both_sides_have_them() {
        let g = |path: &str, bytes| GroupBytes {
            kind: "file".into(),
            path: path.into(),
            bytes,
        };
        let mut old = snap(vec![layer("t", 10, 10)], 0);
        let mut new = snap(vec![layer("t", 20, 20)], 7);
        old.groups = Some(("file".into(), vec![g("a", 4), g("b", 6)]));
        new.groups = Some(("file".into(), vec![g("a", 4), g("b", 9), g("c", 7)]));
        let d = diff(&old, &new, None).expect("diff");
        let got: Vec<(&str, i64)> = d
            .groups
            .as_ref()
            .expect("groups")
            .iter()
            .map(|c| (c.path.as_str(), c.grown_bytes))
            .collect();
        assert_eq!(got, [("c", 7), ("b", 3)]);
    }

    #[test]
    fn malformed_documents_name_the_file_and_what_was_expected() {
        let f = Path::new("old.json");
        for (text, want) in [
            (&b"{"[..], "not JSON"),
            (b"[]", "not an object"),
            (b"{\"luns\": []}", "datastore scan"),
            (b"{\"chain\": [{\"path\": 1}]}", "a scan document, but"),
            (b"{\"x\": 1}", "neither"),
        ] {
            let e = Snapshot::from_json(f, text).expect_err("bad").to_string();
            assert!(e.starts_with("old.json: ") && e.contains(want), "{e}");
        }
    }
}
