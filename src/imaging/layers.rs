//! Brand layers drawn with the copy: logos and images (SVG rendered with
//! resvg, PNG/JPEG/WebP composited with their alpha), buttons and shapes
//! (rounded rectangles), each fitted into a box given as fractions of the
//! frame. Pure: decoded pixels in, pixels out.
//!
//! Pictures are fitted into their box without distortion (the larger side
//! touches the box), centred vertically and placed horizontally by `align`,
//! which is logical: `start` is the left edge in a left-to-right locale and
//! the right edge in a right-to-left one. Mirroring a whole layout for
//! right-to-left markets is the caller's choice ([`FracBox::mirrored`]).

use std::sync::Arc;

use image::RgbaImage;
use resvg::{tiny_skia, usvg};

use super::text::{Align, TextBox, is_rtl_locale};

/// A box in fractions of the frame (like a text box).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FracBox {
    /// Left edge, fraction of the width.
    pub x: f32,
    /// Top edge, fraction of the height.
    pub y: f32,
    /// Width, fraction of the width.
    pub width: f32,
    /// Height, fraction of the height.
    pub height: f32,
}

impl FracBox {
    /// The same box reflected about the vertical centre line (right-to-left
    /// layouts).
    pub fn mirrored(self) -> FracBox {
        FracBox {
            x: (1.0 - self.x - self.width).max(0.0),
            ..self
        }
    }

    /// The box in pixels on a `w` × `h` image, clamped to it, never empty.
    pub fn pixels(self, w: u32, h: u32) -> TextBox {
        let px = |f: f32, total: u32| ((f * total as f32).round().max(0.0) as u32).min(total);
        let x = px(self.x, w).min(w.saturating_sub(1));
        let y = px(self.y, h).min(h.saturating_sub(1));
        TextBox {
            x,
            y,
            width: px(self.width, w).min(w - x).max(1),
            height: px(self.height, h).min(h - y).max(1),
        }
    }
}

/// What a picture file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureKind {
    /// SVG, rendered with resvg at the size of its box.
    Svg,
    /// PNG, JPEG or WebP, composited with its alpha.
    Raster,
}

/// A logo or image file's bytes, checked to decode (shared, never copied).
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    /// The file's bytes.
    pub bytes: Arc<Vec<u8>>,
    /// How to draw them.
    pub kind: PictureKind,
}

/// Check that `bytes` are a picture adloc can draw: a raster image that
/// decodes completely, or an SVG resvg parses.
pub fn check_picture(bytes: Arc<Vec<u8>>) -> Result<Picture, String> {
    if let Ok(format) = image::guess_format(&bytes) {
        image::load_from_memory_with_format(&bytes, format)
            .map_err(|e| format!("the image does not decode: {e}"))?;
        return Ok(Picture {
            bytes,
            kind: PictureKind::Raster,
        });
    }
    usvg::Tree::from_data(&bytes, &usvg::Options::default()).map_err(|e| {
        format!("it is neither a PNG, JPEG or WebP image nor an SVG resvg can read: {e}")
    })?;
    Ok(Picture {
        bytes,
        kind: PictureKind::Svg,
    })
}

/// How one layer is drawn (its box is [`Layer::frame`]).
#[derive(Debug, Clone, PartialEq)]
pub enum LayerDraw {
    /// A logo or image fitted into the box. `dark`, when present, replaces
    /// `picture` over dark art (a white logo on a night sky).
    Picture {
        /// The picture for light backgrounds (or every background).
        picture: Picture,
        /// The picture for dark backgrounds.
        dark: Option<Picture>,
        /// Horizontal placement in the box (logical: start is right in RTL).
        align: Align,
    },
    /// A filled rounded rectangle: a shape, or a button's background.
    Fill {
        /// Straight RGBA.
        color: [u8; 4],
        /// Corner radius as a fraction of the box height (0.5: a pill).
        radius: f32,
    },
}

/// One layer of a composite, resolved for its locale.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Where it goes.
    pub frame: FracBox,
    /// What is drawn there.
    pub draw: LayerDraw,
}

/// Why a layer could not be drawn.
pub type LayerError = String;

/// Draw `layer` onto `img` for `locale` (the direction `align` follows).
pub fn draw_layer(img: &mut RgbaImage, layer: &Layer, locale: &str) -> Result<(), LayerError> {
    let bx = layer.frame.pixels(img.width(), img.height());
    match &layer.draw {
        LayerDraw::Fill { color, radius } => {
            fill_rounded(img, bx, *color, radius * bx.height as f32);
            Ok(())
        }
        LayerDraw::Picture {
            picture,
            dark,
            align,
        } => {
            let chosen = match dark {
                Some(d) if is_dark(img, bx) => d,
                _ => picture,
            };
            let rtl = is_rtl_locale(locale);
            draw_picture(img, bx, chosen, *align, rtl)
        }
    }
}

/// Mean luminance (Rec. 709) of the art under `bx` below half scale.
fn is_dark(img: &RgbaImage, bx: TextBox) -> bool {
    let (mut sum, mut n) = (0.0f64, 0u64);
    // Every fourth pixel each way is plenty for a mean.
    for y in (bx.y..(bx.y + bx.height).min(img.height())).step_by(4) {
        for x in (bx.x..(bx.x + bx.width).min(img.width())).step_by(4) {
            let p = img.get_pixel(x, y).0;
            sum += 0.2126 * f64::from(p[0]) + 0.7152 * f64::from(p[1]) + 0.0722 * f64::from(p[2]);
            n += 1;
        }
    }
    n > 0 && sum / (n as f64) < 127.5
}

/// Alpha-blend one straight-RGBA source pixel with `coverage` over `dst`.
fn blend(dst: &mut image::Rgba<u8>, src: [u8; 4], coverage: f32) {
    let a = f32::from(src[3]) / 255.0 * coverage;
    if a <= 0.0 {
        return;
    }
    for (d, s) in dst.0.iter_mut().zip(src).take(3) {
        *d = (f32::from(s) * a + f32::from(*d) * (1.0 - a)).round() as u8;
    }
    dst.0[3] = (255.0 * a + f32::from(dst.0[3]) * (1.0 - a)).round() as u8;
}

/// Fill `bx` with `color`, corners rounded to `radius` pixels, with one
/// pixel of anti-aliasing on the curves.
pub(crate) fn fill_rounded(img: &mut RgbaImage, bx: TextBox, color: [u8; 4], radius: f32) {
    let (x0, y0) = (bx.x as f32, bx.y as f32);
    let (x1, y1) = (x0 + bx.width as f32, y0 + bx.height as f32);
    let r = radius.clamp(0.0, (bx.width.min(bx.height) as f32) / 2.0);
    let x_end = (bx.x + bx.width).min(img.width());
    let y_end = (bx.y + bx.height).min(img.height());
    for y in bx.y..y_end {
        for x in bx.x..x_end {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            // Distance past the corner circle's centre, per axis.
            let dx = (x0 + r - px).max(px - (x1 - r)).max(0.0);
            let dy = (y0 + r - py).max(py - (y1 - r)).max(0.0);
            let coverage = if dx > 0.0 && dy > 0.0 {
                (r - (dx * dx + dy * dy).sqrt() + 0.5).clamp(0.0, 1.0)
            } else {
                1.0
            };
            blend(img.get_pixel_mut(x, y), color, coverage);
        }
    }
}

/// The largest `w` × `h` that fits `pw` × `ph` into `bw` × `bh` without
/// distortion.
fn fit_size(pw: f32, ph: f32, bw: u32, bh: u32) -> (u32, u32) {
    let scale = (bw as f32 / pw).min(bh as f32 / ph);
    (
        ((pw * scale).round() as u32).clamp(1, bw),
        ((ph * scale).round() as u32).clamp(1, bh),
    )
}

/// Render `picture` at its fitted size (straight RGBA) and blend it into `bx`.
fn draw_picture(
    img: &mut RgbaImage,
    bx: TextBox,
    picture: &Picture,
    align: Align,
    rtl: bool,
) -> Result<(), LayerError> {
    let pixels = match picture.kind {
        PictureKind::Raster => {
            let src = image::load_from_memory(&picture.bytes)
                .map_err(|e| format!("the image does not decode: {e}"))?
                .to_rgba8();
            let (w, h) = fit_size(src.width() as f32, src.height() as f32, bx.width, bx.height);
            image::imageops::resize(&src, w, h, image::imageops::FilterType::Triangle)
        }
        PictureKind::Svg => render_svg(&picture.bytes, bx.width, bx.height)?,
    };
    let (w, h) = pixels.dimensions();
    let slack = bx.width - w;
    let left = match (align, rtl) {
        (Align::Center, _) => slack / 2,
        (Align::Start, false) | (Align::End, true) => 0,
        (Align::Start, true) | (Align::End, false) => slack,
    };
    let (ox, oy) = (bx.x + left, bx.y + (bx.height - h) / 2);
    for (x, y, p) in pixels.enumerate_pixels() {
        let (tx, ty) = (ox + x, oy + y);
        if tx < img.width() && ty < img.height() {
            blend(img.get_pixel_mut(tx, ty), p.0, 1.0);
        }
    }
    Ok(())
}

/// Rasterise an SVG fitted into `bw` × `bh`, as straight RGBA.
fn render_svg(bytes: &[u8], bw: u32, bh: u32) -> Result<RgbaImage, LayerError> {
    let tree = usvg::Tree::from_data(bytes, &usvg::Options::default())
        .map_err(|e| format!("the SVG does not parse: {e}"))?;
    let size = tree.size();
    let (w, h) = fit_size(size.width(), size.height(), bw, bh);
    let mut pixmap =
        tiny_skia::Pixmap::new(w, h).ok_or_else(|| format!("cannot render {w}×{h} px"))?;
    let transform =
        tiny_skia::Transform::from_scale(w as f32 / size.width(), h as f32 / size.height());
    resvg::render(&tree, transform, &mut pixmap.as_mut());
    let mut out = RgbaImage::new(w, h);
    for (dst, src) in out.pixels_mut().zip(pixmap.pixels()) {
        let c = src.demultiply();
        dst.0 = [c.red(), c.green(), c.blue(), c.alpha()];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVG: &[u8] = br##"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20" fill="#00ff00"/></svg>"##;

    #[test]
    fn an_svg_logo_is_fitted_without_distortion_at_the_start_edge_of_its_direction() {
        let pic = check_picture(Arc::new(SVG.to_vec())).expect("svg");
        assert_eq!(pic.kind, PictureKind::Svg);
        let layer = Layer {
            frame: FracBox {
                x: 0.0,
                y: 0.0,
                width: 1.0,
                height: 0.5,
            },
            draw: LayerDraw::Picture {
                picture: pic,
                dark: None,
                align: Align::Start,
            },
        };
        // 100 × 100 art: the box is 100 × 50, the 2:1 logo fills it exactly.
        let mut ltr = RgbaImage::from_pixel(100, 100, image::Rgba([0, 0, 0, 255]));
        draw_layer(&mut ltr, &layer, "en-US").expect("draws");
        assert_eq!(ltr.get_pixel(50, 25).0, [0, 255, 0, 255]);
        assert_eq!(ltr.get_pixel(50, 75).0, [0, 0, 0, 255]);
        // A box twice as wide: the logo keeps 2:1 and sits at the start edge.
        let wide = Layer {
            frame: FracBox {
                x: 0.0,
                y: 0.0,
                width: 1.0,
                height: 0.25,
            },
            ..layer
        };
        let mut ltr = RgbaImage::from_pixel(100, 100, image::Rgba([0, 0, 0, 255]));
        draw_layer(&mut ltr, &wide, "en-US").expect("draws");
        assert_eq!(ltr.get_pixel(10, 12).0, [0, 255, 0, 255]);
        assert_eq!(ltr.get_pixel(90, 12).0, [0, 0, 0, 255]);
        let mut rtl = RgbaImage::from_pixel(100, 100, image::Rgba([0, 0, 0, 255]));
        draw_layer(&mut rtl, &wide, "ar-SA").expect("draws");
        assert_eq!(rtl.get_pixel(90, 12).0, [0, 255, 0, 255]);
        assert_eq!(rtl.get_pixel(10, 12).0, [0, 0, 0, 255]);
    }

    #[test]
    fn a_pill_button_background_leaves_its_corners_unpainted() {
        let mut img = RgbaImage::from_pixel(100, 40, image::Rgba([0, 0, 0, 255]));
        fill_rounded(
            &mut img,
            TextBox {
                x: 0,
                y: 0,
                width: 100,
                height: 40,
            },
            [255, 0, 0, 255],
            20.0,
        );
        assert_eq!(img.get_pixel(50, 20).0, [255, 0, 0, 255]);
        assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0, 255]);
    }

    #[test]
    fn the_dark_logo_is_chosen_over_dark_art_only() {
        let svg = |fill: &str| {
            check_picture(Arc::new(
                format!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="{fill}"/></svg>"#)
                    .into_bytes(),
            ))
            .expect("svg")
        };
        let layer = Layer {
            frame: FracBox {
                x: 0.0,
                y: 0.0,
                width: 0.5,
                height: 0.5,
            },
            draw: LayerDraw::Picture {
                picture: svg("#ff0000"),
                dark: Some(svg("#ffffff")),
                align: Align::Center,
            },
        };
        let mut night = RgbaImage::from_pixel(40, 40, image::Rgba([16, 24, 40, 255]));
        draw_layer(&mut night, &layer, "en-US").expect("draws");
        assert_eq!(night.get_pixel(10, 10).0, [255, 255, 255, 255]);
        let mut day = RgbaImage::from_pixel(40, 40, image::Rgba([240, 240, 230, 255]));
        draw_layer(&mut day, &layer, "en-US").expect("draws");
        assert_eq!(day.get_pixel(10, 10).0, [255, 0, 0, 255]);
    }

    #[test]
    fn text_that_is_not_a_picture_is_refused() {
        assert!(check_picture(Arc::new(b"hello".to_vec())).is_err());
    }
}
