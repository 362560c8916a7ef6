//! `deltascope map` against `qemu-img map --output=json` of each layer alone, grain for grain.

use std::ffi::OsStr;

use serde_json::Value;

use crate::util::*;

pub fn check_layer_maps(dir: &std::path::Path) {
    for (name, layers) in chains_in(dir) {
        let top = layers.last().expect("layers");
        for (i, layer) in layers.iter().enumerate() {
            let ours: Vec<Value> = serde_json::from_str(&ok([
                OsStr::new("map"),
                top.as_os_str(),
                OsStr::new("--layer"),
                OsStr::new(&i.to_string()),
            ]))
            .expect("map JSON");
            let qemu = qemu_map_layer(layer);
            assert_eq!(
                ours,
                qemu,
                "{name}: map of layer {i} ({}) differs from qemu-img map",
                layer.display()
            );
            // The layer opened on its own maps the same (default layer: the top).
            let alone: Vec<Value> =
                serde_json::from_str(&ok([OsStr::new("map"), layer.as_os_str()]))
                    .expect("map JSON");
            assert_eq!(
                alone,
                qemu,
                "{name}: map of {} opened as top",
                layer.display()
            );
        }
    }
}

#[test]
fn map_equals_qemu_img_map_on_qemu_made_chains() {
    check_layer_maps(chains_dir());
}
