//! A virtual machine's `.vmsd`: its snapshot tree. Pure: bytes in, [`Vmsd`] out.
//!
//! Each snapshot `N` has `snapshotN.uid`, `.parent` (the uid of the snapshot below it),
//! `.displayName`, `.createTimeHigh`/`.createTimeLow` (microseconds since 1970, split in two
//! 32-bit halves, the low half written signed) and, for each disk `M`,
//! `snapshotN.diskM.fileName`: the layer that was the disk's top when the snapshot was taken,
//! and became read-only then. `snapshot.current` is the uid the VM runs on. VMware keeps an
//! empty `.vmsd` beside every VM; that is a VM without snapshots.

use std::collections::BTreeMap;

use super::dict::{ConfigError, parse_dictionary, unescape_percent};

/// The snapshot tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vmsd {
    /// `snapshot.current`: the uid of the snapshot the VM runs on.
    pub current: Option<String>,
    /// Snapshots in index order (`snapshot0`, `snapshot1`, ...).
    pub snapshots: Vec<Snapshot>,
}

/// One snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// `N` of `snapshotN`.
    pub index: u32,
    /// `uid`.
    pub uid: Option<String>,
    /// `parent`: the uid of the snapshot it was taken on.
    pub parent: Option<String>,
    /// `displayName`.
    pub display_name: Option<String>,
    /// `createTimeHigh`/`createTimeLow` as microseconds since 1970-01-01 UTC.
    pub created_micros: Option<i64>,
    /// The disks' layers at the time of the snapshot, in disk order.
    pub disks: Vec<SnapshotDisk>,
}

/// One disk of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotDisk {
    /// `diskM.fileName`.
    pub file_name: String,
    /// `diskM.node`, e.g. `scsi0:0`.
    pub node: Option<String>,
}

/// `N` of a `snapshotN.` key, and the rest after the dot.
fn indexed<'a>(key: &'a str, prefix: &str) -> Option<(u32, &'a str)> {
    let rest = key.strip_prefix(prefix)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 6 {
        return None;
    }
    let n = rest.get(..digits)?.parse().ok()?;
    Some((n, rest.get(digits..)?.strip_prefix('.')?))
}

/// Parses a `.vmsd`.
pub fn parse_vmsd(data: &[u8]) -> Result<Vmsd, ConfigError> {
    #[derive(Default)]
    struct Snap {
        s: Snapshot,
        high: Option<i64>,
        low: Option<i64>,
        disks: BTreeMap<u32, (Option<String>, Option<String>)>,
    }
    let mut out = Vmsd::default();
    let mut snaps: BTreeMap<u32, Snap> = BTreeMap::new();
    for e in parse_dictionary(data)? {
        if e.key == "snapshot.current" {
            out.current = Some(e.value);
            continue;
        }
        let Some((n, field)) = indexed(&e.key, "snapshot") else {
            continue;
        };
        let snap = snaps.entry(n).or_default();
        snap.s.index = n;
        match field {
            "uid" => snap.s.uid = Some(e.value),
            "parent" => snap.s.parent = Some(e.value).filter(|p| !p.is_empty()),
            "displayname" => snap.s.display_name = Some(unescape_percent(&e.value)),
            "createtimehigh" => snap.high = e.value.trim().parse().ok(),
            "createtimelow" => snap.low = e.value.trim().parse().ok(),
            _ => {
                if let Some((m, what)) = indexed(field, "disk") {
                    let d = snap.disks.entry(m).or_default();
                    match what {
                        "filename" => d.0 = Some(e.value),
                        "node" => d.1 = Some(e.value),
                        _ => {}
                    }
                }
            }
        }
    }
    for (_, mut snap) in snaps {
        snap.s.created_micros = match (snap.high, snap.low) {
            // The low half is written as a signed 32-bit number.
            (Some(h), Some(l)) => h
                .checked_mul(1 << 32)
                .and_then(|h| h.checked_add(i64::from(l as u32))),
            _ => None,
        };
        snap.s.disks = snap
            .disks
            .into_values()
            .filter_map(|(file, node)| file.map(|file_name| SnapshotDisk { file_name, node }))
            .collect();
        out.snapshots.push(snap.s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_two_snapshot_tree() {
        let text = br#".encoding = "UTF-8"
snapshot.lastUID = "2"
snapshot.current = "2"
snapshot0.uid = "1"
snapshot0.filename = "vdi-03-Snapshot1.vmsn"
snapshot0.displayName = "before |22patch|22"
snapshot0.createTimeHigh = "416404"
snapshot0.createTimeLow = "-814770620"
snapshot0.numDisks = "1"
snapshot0.disk0.fileName = "vdi-03.vmdk"
snapshot0.disk0.node = "scsi0:0"
snapshot.numSnapshots = "2"
snapshot.mru0.uid = "2"
snapshot1.uid = "2"
snapshot1.parent = "1"
snapshot1.displayName = "after"
snapshot1.disk0.fileName = "vdi-03-000001.vmdk"
"#;
        let v = parse_vmsd(text).unwrap();
        assert_eq!(v.current.as_deref(), Some("2"));
        assert_eq!(v.snapshots.len(), 2);
        let s0 = &v.snapshots[0];
        assert_eq!(s0.display_name.as_deref(), Some("before \"patch\""));
        // 416404 x 2^32 + (-814770620 as u32 = 3480196676) microseconds.
        assert_eq!(s0.created_micros, Some(416404 * (1 << 32) + 3_480_196_676));
        assert_eq!(
            s0.disks,
            [SnapshotDisk {
                file_name: "vdi-03.vmdk".into(),
                node: Some("scsi0:0".into())
            }]
        );
        assert_eq!(v.snapshots[1].parent.as_deref(), Some("1"));
        assert_eq!(v.snapshots[1].created_micros, None);
    }

    #[test]
    fn an_empty_vmsd_has_no_snapshots() {
        assert_eq!(parse_vmsd(b"").unwrap(), Vmsd::default());
        assert_eq!(indexed("snapshot9999999.uid", "snapshot"), None);
        let v = parse_vmsd(
            b"snapshot0.createTimeHigh = \"9223372036854775807\"\nsnapshot0.createTimeLow = \"1\"",
        )
        .unwrap();
        assert_eq!(v.snapshots[0].created_micros, None);
    }
}
