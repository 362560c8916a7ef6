//! Charts drawn with plotters: shared plumbing (fonts, output format from the file name,
//! binary-unit axis labels). Each chart lives in its own file and draws onto any plotters
//! backend, so one function makes both the SVG and the PNG.

pub mod growth;
pub mod sensitivity;

use std::path::Path;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// Font family name the charts ask plotters for.
pub const FONT: &str = "sans-serif";

/// TrueType files tried in order: DejaVu is on Debian and Ubuntu (fonts-dejavu-core), the
/// others on Fedora and macOS. `DELTASCOPE_FONT` names another.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Registers a TrueType font with plotters once per process. Plotters measures text for
/// every layout, SVG included, so no chart can be drawn without one.
pub fn ensure_font() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let mut tried: Vec<String> = Vec::new();
        let env = std::env::var("DELTASCOPE_FONT").ok();
        for p in env.iter().map(String::as_str).chain(FONT_PATHS.iter().copied()) {
            tried.push(p.to_string());
            if let Ok(bytes) = std::fs::read(p) {
                // plotters keeps fonts for the life of the process.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                for style in [plotters::style::FontStyle::Normal, plotters::style::FontStyle::Bold] {
                    plotters::style::register_font(FONT, style, bytes)
                        .map_err(|_| format!("{p} is not a TrueType font"))?;
                }
                return Ok(());
            }
        }
        Err(format!(
            "charts need a TrueType font and none was found (tried {}); install fonts-dejavu-core or set DELTASCOPE_FONT",
            tried.join(", ")
        ))
    })
    .clone()
    .map_err(Error::Other)
}

/// Output kind, from the file name's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Scalable vector graphics (the default).
    Svg,
    /// A PNG bitmap.
    Png,
}

impl Output {
    /// The kind `path` asks for; `.svg` and `.png` only.
    pub fn for_path(path: &Path) -> Result<Output> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("svg") => Ok(Output::Svg),
            Some("png") => Ok(Output::Png),
            _ => Err(Error::Usage(format!(
                "{}: a chart file must end in .svg or .png",
                path.display()
            ))),
        }
    }
}

/// Chart size in pixels.
pub const SIZE: (u32, u32) = (1200, 700);

/// Calls the generic drawing function `$draw(&root, args...)` on an SVG or PNG backend for
/// `$path`, as its extension says, in memory, and writes the result by the rule of every
/// output file ([`crate::outfile`]). `$draw` is generic over `DrawingBackend`, so one function
/// serves both; errors become [`Error::Other`](crate::error::Error) naming the file.
macro_rules! draw_to_file {
    ($path:expr, $draw:path $(, $arg:expr)* $(,)?) => {{
        use plotters::prelude::*;
        let path: &std::path::Path = $path;
        $crate::chart::ensure_font()?;
        let fail = |e: String| $crate::error::Error::Other(format!("{}: cannot draw the chart: {e}", path.display()));
        let bytes: Vec<u8> = match $crate::chart::Output::for_path(path)? {
            $crate::chart::Output::Svg => {
                let mut s = String::new();
                {
                    let root = SVGBackend::with_string(&mut s, $crate::chart::SIZE).into_drawing_area();
                    $draw(&root $(, $arg)*).map_err(|e| fail(e.to_string()))?;
                    root.present().map_err(|e| fail(e.to_string()))?;
                }
                s.into_bytes()
            }
            $crate::chart::Output::Png => {
                let mut rgb = vec![0u8; $crate::chart::SIZE.0 as usize * $crate::chart::SIZE.1 as usize * 3];
                {
                    let root = BitMapBackend::with_buffer(&mut rgb, $crate::chart::SIZE).into_drawing_area();
                    $draw(&root $(, $arg)*).map_err(|e| fail(e.to_string()))?;
                    root.present().map_err(|e| fail(e.to_string()))?;
                }
                $crate::chart::encode_png(&rgb, $crate::chart::SIZE).map_err(|e| fail(e.to_string()))?
            }
        };
        $crate::outfile::write(path, |w| w.write_all(&bytes))
    }};
}

pub(crate) use draw_to_file;

/// Encodes an RGB buffer of `size` pixels as PNG.
pub fn encode_png(
    rgb: &[u8],
    size: (u32, u32),
) -> std::result::Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, size.0, size.1);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        // What plotters' own encoder (the image crate) chose: small files, quickly.
        enc.set_compression(png::Compression::Fast);
        enc.set_filter(png::FilterType::Sub);
        enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let mut w = enc.write_header()?;
        w.write_image_data(rgb)?;
        w.finish()?;
    }
    Ok(out)
}

/// The binary unit that keeps `max` bytes below 1024 of it: (bytes per unit, name). Axes are
/// drawn in that unit so that plotters picks round ticks (1, 2, 5 MiB, not 4.8 MiB).
pub fn binary_unit(max: f64) -> (f64, &'static str) {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut scale = 1.0;
    let mut i = 0;
    while i + 1 < UNITS.len() && max / scale >= 1024.0 {
        scale *= 1024.0;
        i += 1;
    }
    (scale, UNITS[i])
}

/// A tick value as people write it: at most four decimals, trailing zeros dropped, so that
/// the float error of a step (`0.6000000000000001`) never reaches the axis (issue 17).
pub fn tick(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

/// An axis label in binary units for a byte count.
pub fn bytes_label(v: f64) -> String {
    crate::units::format_size(v.max(0.0) as u64)
}

/// The plotters SVG backend drawing into a `String`, as the HTML report inlines its charts.
pub type SvgArea<'a> =
    plotters::drawing::DrawingArea<plotters::backend::SVGBackend<'a>, plotters::coord::Shift>;

/// Draws a chart into an SVG document held in memory (for inlining in the HTML report),
/// with the same drawing code the `.svg`/`.png` files use.
pub fn svg_string(
    what: &str,
    draw: impl FnOnce(
        &SvgArea<'_>,
    ) -> std::result::Result<
        (),
        plotters::drawing::DrawingAreaErrorKind<std::io::Error>,
    >,
) -> Result<String> {
    use plotters::prelude::IntoDrawingArea;
    ensure_font()?;
    let fail = |e: String| Error::Other(format!("{what}: cannot draw the chart: {e}"));
    let mut s = String::new();
    {
        let root = plotters::backend::SVGBackend::with_string(&mut s, SIZE).into_drawing_area();
        draw(&root).map_err(|e| fail(e.to_string()))?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_carry_no_float_error() {
        assert_eq!(tick(0.1 + 0.2 + 0.3), "0.6");
        assert_eq!(tick(0.30000000000000004), "0.3");
        assert_eq!(tick(120.0), "120");
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(-0.00001), "0");
        assert_eq!(tick(2.5), "2.5");
        assert_eq!(tick(0.0125), "0.0125");
    }
}
