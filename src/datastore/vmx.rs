//! A virtual machine's `.vmx`: its name and the disks it uses. Pure: bytes in, [`Vmx`] out;
//! `mod.rs` reads the file and resolves the disk names.
//!
//! Disks are `scsiX:Y`, `sataX:Y`, `nvmeX:Y` and `ideX:Y` devices whose `fileName` ends in
//! `.vmdk` (CD-ROM images and host devices are not disks). Their names are relative to the
//! `.vmx` folder or absolute datastore paths. `mode = "independent-persistent"` marks a disk
//! that snapshots and refreshes leave alone (Horizon's persistent disk).

use std::collections::BTreeMap;

use super::dict::{ConfigError, parse_dictionary, unescape_percent};

/// What a `.vmx` says about the VM's disks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vmx {
    /// `displayName`, un-escaped.
    pub display_name: Option<String>,
    /// Disk devices, in node order (`ide0:0`, ..., `scsi0:0`, `scsi0:1`, ...).
    pub disks: Vec<VmxDisk>,
}

/// One disk device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmxDisk {
    /// The device node, e.g. `scsi0:1`.
    pub node: String,
    /// `fileName` as written (un-escaped).
    pub file_name: String,
    /// `mode` (`persistent`, `independent-persistent`, `independent-nonpersistent`, ...).
    pub mode: Option<String>,
    /// `present`: false only when the file says `FALSE` (the device is configured but not
    /// attached).
    pub present: bool,
}

/// The bus names whose devices can hold a disk.
const BUSES: [&str; 4] = ["scsi", "sata", "nvme", "ide"];

/// Splits `scsi0:1.filename` into (`scsi0:1`, `filename`) when the node is a disk bus with
/// small decimal numbers.
fn device_key(key: &str) -> Option<(&str, &str)> {
    let (node, field) = key.split_once('.')?;
    let bus = BUSES.iter().find(|b| node.starts_with(**b))?;
    let (ctrl, unit) = node.get(bus.len()..)?.split_once(':')?;
    let small = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    (small(ctrl) && small(unit)).then_some((node, field))
}

/// Parses a `.vmx`.
pub fn parse_vmx(data: &[u8]) -> Result<Vmx, ConfigError> {
    #[derive(Default)]
    struct Dev {
        file: Option<String>,
        mode: Option<String>,
        device_type: Option<String>,
        present: Option<String>,
    }
    let mut vmx = Vmx::default();
    let mut devs: BTreeMap<String, Dev> = BTreeMap::new();
    for e in parse_dictionary(data)? {
        if e.key == "displayname" {
            vmx.display_name = Some(unescape_percent(&e.value));
            continue;
        }
        let Some((node, field)) = device_key(&e.key) else {
            continue;
        };
        let d = devs.entry(node.to_string()).or_default();
        match field {
            "filename" => d.file = Some(e.value),
            "mode" => d.mode = Some(e.value),
            "devicetype" => d.device_type = Some(e.value),
            "present" => d.present = Some(e.value),
            _ => {}
        }
    }
    for (node, d) in devs {
        let Some(file) = d.file else { continue };
        let cdrom = d
            .device_type
            .as_deref()
            .is_some_and(|t| t.to_ascii_lowercase().contains("cdrom"));
        if cdrom || !file.to_ascii_lowercase().ends_with(".vmdk") {
            continue;
        }
        vmx.disks.push(VmxDisk {
            node,
            file_name: file,
            mode: d.mode,
            present: !d.present.is_some_and(|p| p.eq_ignore_ascii_case("false")),
        });
    }
    Ok(vmx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks_of_a_horizon_linked_clone() {
        let text = br#".encoding = "UTF-8"
config.version = "8"
displayName = "vdi-01 |22pool A|22 %2f floor 2"
scsi0.present = "TRUE"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "vdi-01.vmdk"
scsi0:1.present = "TRUE"
scsi0:1.fileName = "/vmfs/volumes/6a7b8c9d-01234567-89ab-001122334466/vdi-01/vdi-01-vdm-user-disk-D-5a1e.vmdk"
scsi0:1.mode = "independent-persistent"
SCSI0:2.FILENAME = "vdi-01-vdm-disposable-7c2d.vmdk"
ide1:0.deviceType = "cdrom-image"
ide1:0.fileName = "/vmfs/volumes/iso/win10.iso"
sata0:0.deviceType = "cdrom-raw"
sata0:0.fileName = "weird.vmdk"
nvme0:3.fileName = "old.vmdk"
nvme0:3.present = "FALSE"
ethernet0.fileName = "not-a-disk.vmdk"
scsi0:1.fileName.extra = "x"
"#;
        let v = parse_vmx(text).unwrap();
        assert_eq!(
            v.display_name.as_deref(),
            Some("vdi-01 \"pool A\" / floor 2")
        );
        let disks: Vec<(&str, &str, Option<&str>, bool)> = v
            .disks
            .iter()
            .map(|d| {
                (
                    d.node.as_str(),
                    d.file_name.as_str(),
                    d.mode.as_deref(),
                    d.present,
                )
            })
            .collect();
        assert_eq!(
            disks,
            [
                ("nvme0:3", "old.vmdk", None, false),
                ("scsi0:0", "vdi-01.vmdk", None, true),
                (
                    "scsi0:1",
                    "/vmfs/volumes/6a7b8c9d-01234567-89ab-001122334466/vdi-01/vdi-01-vdm-user-disk-D-5a1e.vmdk",
                    Some("independent-persistent"),
                    true
                ),
                ("scsi0:2", "vdi-01-vdm-disposable-7c2d.vmdk", None, true),
            ]
        );
    }

    #[test]
    fn nothing_to_find_is_not_an_error() {
        assert_eq!(parse_vmx(b"").unwrap(), Vmx::default());
        assert_eq!(
            parse_vmx(b"garbage without equals\n= x\n").unwrap(),
            Vmx::default()
        );
        assert_eq!(device_key("scsi1234:0.filename"), None);
        assert_eq!(
            device_key("scsi0:0.filename"),
            Some(("scsi0:0", "filename"))
        );
    }
}
