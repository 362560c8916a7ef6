//! `chart`: the growth chart of one recorded disk, with its projection.

use crate::chart::growth::{GrowthChart, draw};
use crate::cli::ChartArgs;
use crate::error::{Error, Result};

pub(super) fn run(a: &ChartArgs) -> Result<()> {
    crate::chart::Output::for_path(&a.output)?;
    crate::outfile::check(&a.output)?;
    let store = super::history::open_store(&a.db)?;
    let disk = match &a.disk {
        Some(d) => d.clone(),
        None => {
            let disks = store.disks()?;
            match disks.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(Error::Other(format!(
                        "{}: no points recorded yet (scan --record or import)",
                        store.location()
                    )));
                }
                many => {
                    return Err(Error::Usage(format!(
                        "several disks are recorded; choose one with --disk: {}",
                        many.join(", ")
                    )));
                }
            }
        }
    };
    let all = super::history::forecasts(&store, Some(&disk), a.weeks, a.budget)?;
    let Some((points, forecast)) = all.into_iter().next() else {
        return Err(Error::Other(format!("no points for {disk}")));
    };
    let chart = GrowthChart {
        disk: &disk,
        points: &points,
        forecast: forecast.as_ref(),
    };
    crate::chart::draw_to_file!(&a.output, draw, &chart)?;
    super::note(format_args!("wrote {}", a.output.display()));
    Ok(())
}
