//! `deltascope info`: metadata of every layer, no data read.

use crate::cli::{GlobalArgs, InfoArgs};
use crate::error::Result;
use crate::render::Info;
use crate::report::{WarningReport, layer_infos};

pub(super) fn run(g: &GlobalArgs, a: &InfoArgs) -> Result<()> {
    let chain = super::open_chain(g, &a.path)?;
    let infos = layer_infos(&chain);
    // Metadata read from a file that changed meanwhile is not to be trusted either.
    chain.check_unchanged()?;
    let warnings: Vec<WarningReport> = chain.all_warnings().map(WarningReport::from).collect();
    super::print(
        a.format,
        &Info {
            layers: &infos,
            warnings: &warnings,
        },
    )
}
