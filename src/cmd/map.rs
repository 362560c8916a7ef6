//! `deltascope map`: one layer's allocation, as `qemu-img map --output=json` of that layer.

use crate::cli::{GlobalArgs, MapArgs};
use crate::error::{Error, Result};
use crate::map::layer_map;
use crate::render::json::render_map;

pub(super) fn run(g: &GlobalArgs, a: &MapArgs) -> Result<()> {
    let chain = super::open_chain(g, &a.path)?;
    let n = chain.layers.len();
    let index = a.layer.unwrap_or(n - 1);
    if index >= n {
        return Err(Error::Usage(format!(
            "--layer {index}: the chain has {n} layer(s), numbered 0 (base) to {} (top)",
            n - 1
        )));
    }
    let entries = layer_map(&chain.layers[index])?;
    chain.check_unchanged()?;
    super::to_stdout(|w| render_map(w, &entries))
}
