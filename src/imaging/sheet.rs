//! Contact-sheet drawing: one image per campaign and locale with every row × variant
//! as a labelled thumbnail, for a quick human look
//! (`adloc run … --contact-sheet` writes `<out>/<campaign>/contact-sheets/<locale>.png`).
//!
//! Cells follow the campaign's order: one line per row (several rows per
//! line when there are few variants), one cell per variant. A job without
//! an image (pending, failed, blocked) gets a grey cell saying why. Labels
//! are set with [`crate::imaging::text::draw_text`].

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, Rgba, RgbaImage};

use super::resize::contain_layout;
use super::text::{Align, TextBox, TextStyle, draw_text};

const BACKGROUND: Rgba<u8> = Rgba([242, 242, 240, 255]);
const CELL: Rgba<u8> = Rgba([255, 255, 255, 255]);
const MISSING: Rgba<u8> = Rgba([214, 214, 210, 255]);
const INK: [u8; 4] = [40, 40, 40, 255];
const WARN: [u8; 4] = [176, 32, 32, 255];
/// Largest sheet we draw, in pixels; thumbnails shrink to stay under it.
const MAX_SHEET_PIXELS: f64 = 48_000_000.0;

/// One thumbnail cell.
#[derive(Debug, Clone)]
pub struct Cell {
    /// First label line (row id and variant).
    pub label: String,
    /// Second label line (size, or why there is no image).
    pub detail: String,
    /// Draw the detail in a warning colour.
    pub warn: bool,
    /// The master's bytes, or why they could not be read; `None` when the
    /// job has no image.
    pub image: Option<Result<Vec<u8>, String>>,
}

/// Sheet geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Cells per line.
    pub columns: u32,
    /// Thumbnail box side.
    pub thumb: u32,
}

const MARGIN: u32 = 12;
const LABEL_H: u32 = 40;
const TITLE_H: u32 = 48;

impl Layout {
    /// Cells per line: whole rows of `variants` cells, about six cells a line.
    pub fn for_cells(cells: usize, variants: usize) -> Layout {
        let variants = variants.max(1) as u32;
        let columns = variants * (6 / variants).max(1);
        let lines = (cells as u32).div_ceil(columns).max(1);
        let mut thumb: u32 = 240;
        let area = |t: u32| {
            let (w, h) = Layout { columns, thumb: t }.sheet_size(lines);
            f64::from(w) * f64::from(h)
        };
        let total = area(thumb);
        if total > MAX_SHEET_PIXELS {
            thumb = ((f64::from(thumb) * (MAX_SHEET_PIXELS / total).sqrt()) as u32).max(48);
        }
        Layout { columns, thumb }
    }

    fn cell_w(&self) -> u32 {
        self.thumb + MARGIN
    }

    fn cell_h(&self) -> u32 {
        self.thumb + LABEL_H + MARGIN
    }

    /// Pixel size of a sheet with `lines` lines of cells.
    pub fn sheet_size(&self, lines: u32) -> (u32, u32) {
        (
            MARGIN + self.columns * self.cell_w(),
            TITLE_H + MARGIN + lines * self.cell_h(),
        )
    }
}

/// Draw a sheet. A master that cannot be read or decoded shows as a grey
/// cell saying so; a label that does not fit is left out. Never fails.
pub fn render_sheet(title: &str, cells: &[Cell], layout: Layout) -> RgbaImage {
    let lines = (cells.len() as u32).div_ceil(layout.columns).max(1);
    let (w, h) = layout.sheet_size(lines);
    let mut img = RgbaImage::from_pixel(w, h, BACKGROUND);
    let title_style = TextStyle {
        size_px: 22.0,
        min_size_px: 10.0,
        max_lines: Some(1),
        color: INK,
        align: Align::Start,
        line_height: 1.2,
        bold: true,
        brand_family: None,
    };
    let _ = draw_text(
        &mut img,
        TextBox {
            x: MARGIN,
            y: MARGIN,
            width: w.saturating_sub(2 * MARGIN).max(1),
            height: TITLE_H - MARGIN,
        },
        title,
        "en-US",
        &title_style,
    );
    let mut resizer = Resizer::new();
    for (i, cell) in cells.iter().enumerate() {
        let i = i as u32;
        let x = MARGIN + (i % layout.columns) * layout.cell_w();
        let y = TITLE_H + MARGIN + (i / layout.columns) * layout.cell_h();
        let mut detail = cell.detail.clone();
        let mut warn = cell.warn;
        let thumb =
            cell.image
                .as_ref()
                .and_then(|p| match thumbnail(p, layout.thumb, &mut resizer) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        detail = e;
                        warn = true;
                        None
                    }
                });
        fill(
            &mut img,
            x,
            y,
            layout.thumb,
            layout.thumb,
            if thumb.is_some() { CELL } else { MISSING },
        );
        if let Some(t) = thumb {
            let ox = x + (layout.thumb - t.width()) / 2;
            let oy = y + (layout.thumb - t.height()) / 2;
            image::imageops::replace(&mut img, &t, i64::from(ox), i64::from(oy));
        }
        let style = |color| TextStyle {
            size_px: 13.0,
            min_size_px: 7.0,
            max_lines: Some(1),
            color,
            align: Align::Start,
            line_height: 1.2,
            bold: false,
            brand_family: None,
        };
        let half = LABEL_H / 2;
        let _ = draw_text(
            &mut img,
            TextBox {
                x,
                y: y + layout.thumb + 2,
                width: layout.thumb,
                height: half,
            },
            &cell.label,
            "en-US",
            &style(INK),
        );
        let _ = draw_text(
            &mut img,
            TextBox {
                x,
                y: y + layout.thumb + 2 + half - 2,
                width: layout.thumb,
                height: half,
            },
            &detail,
            "en-US",
            &style(if warn { WARN } else { INK }),
        );
    }
    img
}

fn fill(img: &mut RgbaImage, x: u32, y: u32, w: u32, h: u32, c: Rgba<u8>) {
    for yy in y..(y + h).min(img.height()) {
        for xx in x..(x + w).min(img.width()) {
            img.put_pixel(xx, yy, c);
        }
    }
}

fn thumbnail(
    bytes: &Result<Vec<u8>, String>,
    side: u32,
    resizer: &mut Resizer,
) -> Result<RgbaImage, String> {
    let bytes = bytes.as_ref().map_err(Clone::clone)?;
    let img = image::load_from_memory(bytes).map_err(|_| "does not decode".to_string())?;
    let src = DynamicImage::ImageRgba8(img.to_rgba8());
    let (w, h, _, _) = contain_layout(src.width(), src.height(), side, side);
    let mut dst = DynamicImage::new_rgba8(w, h);
    resizer
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
        )
        .map_err(|e| e.to_string())?;
    Ok(dst.to_rgba8())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_keeps_rows_whole_and_shrinks_huge_sheets() {
        let l = Layout::for_cells(15, 3);
        assert_eq!(l.columns, 6);
        assert_eq!(l.thumb, 240);
        let huge = Layout::for_cells(30_000, 3);
        let lines = 30_000u32.div_ceil(huge.columns);
        let (w, h) = huge.sheet_size(lines);
        assert!(
            f64::from(w) * f64::from(h) <= MAX_SHEET_PIXELS * 1.05 || huge.thumb == 48,
            "{w}x{h}"
        );
    }

    #[test]
    fn sheet_draws_thumbnails_and_grey_cells_for_missing_images() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.png");
        RgbaImage::from_pixel(160, 90, Rgba([0, 0, 255, 255]))
            .save(&path)
            .unwrap();
        let master = std::fs::read(&path).unwrap();
        let cells = vec![
            Cell {
                label: "row · hero".into(),
                detail: "160x90".into(),
                warn: false,
                image: Some(Ok(master)),
            },
            Cell {
                label: "row · square".into(),
                detail: "failed".into(),
                warn: true,
                image: None,
            },
        ];
        let layout = Layout::for_cells(cells.len(), 2);
        let img = render_sheet("t", &cells, layout);
        let (x0, y0) = (MARGIN, TITLE_H + MARGIN);
        // Centre of the first thumbnail is the master's blue.
        let c = img.get_pixel(x0 + layout.thumb / 2, y0 + layout.thumb / 2);
        assert_eq!(c.0, [0, 0, 255, 255]);
        // The second cell is grey.
        let x1 = x0 + layout.cell_w();
        assert_eq!(img.get_pixel(x1 + 3, y0 + 3).0, MISSING.0);
    }
}
