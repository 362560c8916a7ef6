//! `deltascope info`: metadata of every layer, no data read.

use crate::cli::{GlobalArgs, InfoArgs};
use crate::error::Result;
use crate::render::text;
use crate::report::layer_infos;

pub(super) fn run(g: &GlobalArgs, a: &InfoArgs) -> Result<()> {
    let chain = super::open_chain(g, &a.path)?;
    let infos = layer_infos(&chain);
    // Metadata read from a file that changed meanwhile is not to be trusted either.
    chain.check_unchanged()?;
    if a.json {
        super::json_to_stdout(&serde_json::json!({
            "deltascope_version": crate::report::VERSION,
            "chain": infos,
            "warnings": chain.all_warnings().map(crate::report::WarningReport::from).collect::<Vec<_>>(),
        }))
    } else {
        super::to_terminal(|w| text::render_info(w, &infos))
    }
}
