//! The local proof renderer: what adloc draws when there is no API key, so a
//! new user sees the whole pipeline (expand, queue, validate, write,
//! manifest) work end to end without spending money.
//!
//! A proof is an image of exactly the size the real model would return, in
//! the MIME type it would return, showing a calm background derived from the
//! prompt, the localized copy typeset with the real text engine (shaped,
//! wrapped, auto-fitted, aligned by direction), and a footer that says it is
//! a local proof. Rendering is deterministic: the same request gives the
//! same bytes on every machine, because fonts are embedded and nothing reads
//! the clock or a random source.

use std::io::Cursor;

use async_trait::async_trait;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, Rgba, RgbaImage};
use sha2::{Digest, Sha256};

use super::{BatchApi, Generated, ImageRequest, Provider, ProviderError, Reason};
use crate::domain::ImageSize;
use crate::imaging::text::{self, Align, TextBox, TextError, TextStyle};

/// Reported as the model version of every local generation. Bump it when
/// the rendered pixels change, so proofs from different renderers can be
/// told apart in a manifest.
pub const RENDERER_VERSION: &str = "adloc-local-proof-1";

/// JPEG quality for the families that return JPEG.
const JPEG_QUALITY: u8 = 85;

/// The offline provider that renders proofs locally.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalProvider {
    _private: (),
}

impl LocalProvider {
    /// A local renderer. It holds no state: fonts are process-wide.
    pub fn new() -> Self {
        LocalProvider { _private: () }
    }
}

#[async_trait]
impl Provider for LocalProvider {
    fn kind(&self) -> crate::domain::ProviderKind {
        crate::domain::ProviderKind::Local
    }

    async fn generate(&self, req: &ImageRequest) -> Result<Generated, ProviderError> {
        let family = req.model.family();
        let (width, height) = family
            .pixel_size(req.aspect_ratio.as_str(), req.image_size)
            .ok_or_else(|| {
                ProviderError::job_terminal(
                    Reason::InvalidArgument,
                    format!(
                        "{} does not support aspect ratio {} at image size {}",
                        req.model, req.aspect_ratio, req.image_size
                    ),
                )
            })?;
        let mime = family.output_mime();
        let spec = ProofSpec {
            width,
            height,
            jpeg: mime == "image/jpeg",
            // An edit is a new proof: the instruction changes the seed (and
            // so the colours), as a revision changes the real image.
            seed: match &req.edit {
                None => Sha256::digest(req.prompt.as_bytes()).into(),
                Some(e) => Sha256::digest(format!("{}\n{}", req.prompt, e.instruction)).into(),
            },
            locale: req.proof.locale.clone(),
            variant: req.proof.variant.clone(),
            lines: req.proof.lines.clone(),
            model: req.model.to_string(),
            aspect_ratio: req.aspect_ratio.to_string(),
            image_size: req.image_size,
        };
        // Shaping and encoding are CPU work of tens of milliseconds: keep
        // them off the async workers.
        let bytes = tokio::task::spawn_blocking(move || render(&spec))
            .await
            .map_err(|e| {
                ProviderError::job_terminal(
                    Reason::Other,
                    format!("local renderer task failed: {e}"),
                )
            })??;
        Ok(Generated {
            bytes,
            mime_type: mime.to_string(),
            usage: None,
            model_version: Some(RENDERER_VERSION.to_string()),
            verified_dims: None,
            preview_jpeg: None,
            read_copy: None,
            model_turn: None,
            limits: None,
        })
    }

    fn batch(&self) -> Option<&dyn BatchApi> {
        None
    }
}

/// Everything a proof depends on, owned so it can move to a blocking thread.
#[derive(Debug, Clone)]
struct ProofSpec {
    width: u32,
    height: u32,
    jpeg: bool,
    /// SHA-256 of the prompt: picks the palette and the decoration.
    seed: [u8; 32],
    locale: String,
    variant: String,
    lines: Vec<String>,
    model: String,
    aspect_ratio: String,
    image_size: ImageSize,
}

/// Colours of one proof.
#[derive(Debug, Clone, Copy)]
struct Palette {
    top: [f32; 3],
    bottom: [f32; 3],
    accent: [f32; 3],
    text: [u8; 4],
    body_text: [u8; 4],
    footer_text: [u8; 4],
    /// What the footer band is darkened (or lightened) towards.
    footer_tint: [f32; 3],
}

/// HSL (degrees, 0–1, 0–1) to linear-ish 0–255 RGB floats.
fn hsl(h: f32, s: f32, l: f32) -> [f32; 3] {
    let h = h.rem_euclid(360.0) / 60.0;
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    [(r + m) * 255.0, (g + m) * 255.0, (b + m) * 255.0]
}

fn palette(seed: &[u8; 32]) -> Palette {
    let hue = f32::from(u16::from_be_bytes([seed[0], seed[1]])) / 65536.0 * 360.0;
    // Three proofs in four are dark with light text; the rest light with
    // dark text, so a contact sheet of proofs does not look uniform.
    if !seed[2].is_multiple_of(4) {
        Palette {
            top: hsl(hue, 0.32, 0.26),
            bottom: hsl(hue + 30.0, 0.38, 0.13),
            accent: hsl(hue + 160.0, 0.45, 0.55),
            text: [250, 249, 246, 255],
            body_text: [250, 249, 246, 225],
            footer_text: [250, 249, 246, 200],
            footer_tint: [0.0, 0.0, 0.0],
        }
    } else {
        Palette {
            top: hsl(hue, 0.30, 0.93),
            bottom: hsl(hue + 30.0, 0.34, 0.80),
            accent: hsl(hue + 160.0, 0.40, 0.45),
            text: [24, 26, 30, 255],
            body_text: [24, 26, 30, 220],
            footer_text: [24, 26, 30, 200],
            footer_tint: [255.0, 255.0, 255.0],
        }
    }
}

/// Fill the background: a vertical gradient with one large, faint disc
/// placed by the seed, and the footer band tinted. Rows are filled flat and
/// only the disc's chord on each row is blended per pixel, which keeps this
/// cheap even for 4K proofs in debug builds.
fn paint_background(img: &mut RgbaImage, seed: &[u8; 32], pal: &Palette, footer_top: u32) {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let cx = w * (0.25 + 0.5 * f32::from(seed[3]) / 255.0);
    let cy = h * (0.15 + 0.5 * f32::from(seed[4]) / 255.0);
    let radius = w.min(h) * (0.45 + 0.3 * f32::from(seed[5]) / 255.0);
    // A soft edge of ~1.5 % of the radius instead of a jagged one.
    let (r2_in, r2_out) = ((radius * 0.985).powi(2), radius.powi(2));
    const DISC_ALPHA: f32 = 0.10;
    const FOOTER_ALPHA: f32 = 0.35;
    let mix = |a: [f32; 3], b: [f32; 3], t: f32| [0, 1, 2].map(|i| a[i] + (b[i] - a[i]) * t);
    let to_px = |c: [f32; 3]| [c[0] as u8, c[1] as u8, c[2] as u8, 255];
    let max_x = img.width().saturating_sub(1) as f32;
    let stride = img.width() as usize * 4;
    if stride == 0 {
        return;
    }
    for (y, row) in img.chunks_exact_mut(stride).enumerate() {
        let t = y as f32 / (h - 1.0).max(1.0);
        let in_footer = y as u32 >= footer_top;
        let finish = |c: [f32; 3]| {
            if in_footer {
                mix(c, pal.footer_tint, FOOTER_ALPHA)
            } else {
                c
            }
        };
        let base = mix(pal.top, pal.bottom, t);
        let flat = to_px(finish(base));
        for px in row.chunks_exact_mut(4) {
            px.copy_from_slice(&flat);
        }
        let dy2 = (y as f32 - cy).powi(2);
        if dy2 >= r2_out {
            continue;
        }
        let half = (r2_out - dy2).sqrt();
        let x0 = (cx - half).floor().clamp(0.0, max_x) as usize;
        let x1 = (cx + half).ceil().clamp(0.0, max_x) as usize;
        let chord = row
            .chunks_exact_mut(4)
            .enumerate()
            .skip(x0)
            .take(x1 + 1 - x0);
        // Inside the soft edge the disc is one colour per row.
        let inner = to_px(finish(mix(base, pal.accent, DISC_ALPHA)));
        for (x, px) in chord {
            let d2 = (x as f32 - cx).powi(2) + dy2;
            if d2 <= r2_in {
                px.copy_from_slice(&inner);
                continue;
            }
            let cover = if d2 >= r2_out {
                0.0
            } else {
                (r2_out - d2) / (r2_out - r2_in)
            };
            px.copy_from_slice(&to_px(finish(mix(base, pal.accent, DISC_ALPHA * cover))));
        }
    }
}

fn fill_rect(img: &mut RgbaImage, x: u32, y: u32, w: u32, h: u32, color: [f32; 3]) {
    let px = Rgba([color[0] as u8, color[1] as u8, color[2] as u8, 255]);
    for yy in y..(y + h).min(img.height()) {
        for xx in x..(x + w).min(img.width()) {
            img.put_pixel(xx, yy, px);
        }
    }
}

fn overflow_error(e: TextError) -> ProviderError {
    match e {
        TextError::Overflow { .. } => {
            ProviderError::job_terminal(Reason::TextOverflow, e.to_string())
        }
        other => ProviderError::job_terminal(Reason::Other, format!("local renderer: {other}")),
    }
}

/// Render and encode one proof.
fn render(spec: &ProofSpec) -> Result<Vec<u8>, ProviderError> {
    let (w, h) = (spec.width, spec.height);
    let short = w.min(h) as f32;
    let margin = (short * 0.07).round().max(8.0) as u32;
    let band = (short * 0.055).round().max(18.0) as u32;
    let footer_top = h.saturating_sub(band);
    let pal = palette(&spec.seed);

    let mut img = RgbaImage::new(w, h);
    paint_background(&mut img, &spec.seed, &pal, footer_top);

    let rtl = text::is_rtl_locale(&spec.locale);
    let area = TextBox {
        x: margin,
        y: margin,
        width: w.saturating_sub(2 * margin).max(1),
        height: footer_top.saturating_sub(margin + margin / 2).max(1),
    };
    // No copy lines: copy-free art for an overlay variant.
    if !spec.lines.is_empty() {
        draw_copy(&mut img, spec, &pal, area, rtl, margin)?;
    }
    draw_footer(&mut img, spec, &pal, margin, footer_top, band)?;
    encode(img, spec.jpeg)
}

/// The headline (first copy line, bold) and the body (the other lines, one
/// paragraph each), fitted separately and centred as a block in `area`.
fn draw_copy(
    img: &mut RgbaImage,
    spec: &ProofSpec,
    pal: &Palette,
    area: TextBox,
    rtl: bool,
    margin: u32,
) -> Result<(), ProviderError> {
    let (headline, body) = match spec.lines.split_first() {
        Some((first, rest)) => (first.clone(), rest.join("\n")),
        None => ("(no copy)".to_string(), String::new()),
    };
    let has_body = !body.trim().is_empty();
    let area_h = area.height as f32;
    // The floor follows the short side of the copy area: on a 1:8 strip a
    // height-based floor would force long words to break mid-word.
    let min_px = (area.width.min(area.height) as f32 * 0.04).max(9.0);
    // The headline gets most of the height when there is a body. Its start
    // size is bounded by the width too, so wide banners do not get giant
    // one-word lines.
    let head_h = if has_body {
        (area_h * 0.58) as u32
    } else {
        area.height
    };
    let head_style = TextStyle {
        size_px: (area_h * if has_body { 0.2 } else { 0.28 })
            .min(area.width as f32 * 0.14)
            .max(min_px),
        min_size_px: min_px,
        max_lines: None,
        color: pal.text,
        align: Align::Start,
        line_height: 1.2,
        bold: true,
        brand_family: None,
    };
    let head = text::fit_text(
        area.width,
        head_h.max(1),
        &headline,
        &spec.locale,
        &head_style,
    )
    .map_err(overflow_error)?;
    let head_block = head.block_height(&head_style).ceil() as u32;

    let gap = if has_body {
        (head.size_px * 0.6) as u32
    } else {
        0
    };
    let (body_style, body_fit) = if has_body {
        let body_h = area.height.saturating_sub(head_block + gap).max(1);
        // The body stays clearly smaller than the headline.
        let size = (head.size_px * 0.55).max(min_px);
        let style = TextStyle {
            size_px: size,
            min_size_px: min_px.min(size),
            max_lines: None,
            color: pal.body_text,
            align: Align::Start,
            line_height: 1.3,
            bold: false,
            brand_family: None,
        };
        let fit = text::fit_text(area.width, body_h, &body, &spec.locale, &style)
            .map_err(overflow_error)?;
        (Some(style), Some(fit))
    } else {
        (None, None)
    };
    let body_block = match (&body_style, &body_fit) {
        (Some(s), Some(f)) => f.block_height(s).ceil() as u32,
        _ => 0,
    };

    let total = head_block + gap + body_block;
    let top = area.y + area.height.saturating_sub(total) / 2;
    // Draw at the fitted sizes so the draw cannot pick a different fit.
    let pinned = |s: &TextStyle, size: f32| TextStyle {
        size_px: size,
        min_size_px: size,
        ..s.clone()
    };
    let head_box = TextBox {
        x: area.x,
        y: top,
        width: area.width,
        height: head_block + 1,
    };
    text::draw_text(
        img,
        head_box,
        &headline,
        &spec.locale,
        &pinned(&head_style, head.size_px),
    )
    .map_err(overflow_error)?;

    // An accent bar on the reading-start side marks the text direction.
    let bar_w = (margin / 6).max(3);
    let bar_x = if rtl {
        area.x + area.width + margin / 2 - bar_w / 2
    } else {
        (margin / 2).saturating_sub(bar_w / 2)
    };
    fill_rect(img, bar_x, top, bar_w, head_block, pal.accent);

    if let (Some(style), Some(fit)) = (body_style, body_fit) {
        let body_box = TextBox {
            x: area.x,
            y: top + head_block + gap,
            width: area.width,
            height: body_block + 1,
        };
        text::draw_text(
            img,
            body_box,
            &body,
            &spec.locale,
            &pinned(&style, fit.size_px),
        )
        .map_err(overflow_error)?;
    }
    Ok(())
}

/// The footer: what this is, for whom, and that it is not a real generation.
fn draw_footer(
    img: &mut RgbaImage,
    spec: &ProofSpec,
    pal: &Palette,
    margin: u32,
    footer_top: u32,
    band: u32,
) -> Result<(), ProviderError> {
    let (w, h) = (img.width(), img.height());
    let full = format!(
        "{} · {} · {} · {} ({}×{}) · {} · adloc local proof",
        spec.variant, spec.locale, spec.aspect_ratio, spec.image_size, w, h, spec.model
    );
    let short = format!(
        "{} · {} · adloc local proof",
        spec.locale, spec.aspect_ratio
    );
    let style = TextStyle {
        size_px: (band as f32 * 0.5).max(7.0),
        min_size_px: 7.0,
        max_lines: Some(1),
        color: pal.footer_text,
        align: Align::Start,
        line_height: 1.2,
        bold: false,
        brand_family: None,
    };
    let bx_w = w.saturating_sub(2 * margin).max(1);
    // Narrow images (1:8 strips) cannot hold the full line: fall back to
    // shorter ones rather than fail the job over a label.
    for label in [full.as_str(), short.as_str(), "adloc local proof"] {
        // The footer is written in Latin whatever the copy locale is.
        let Ok(fit) = text::fit_text(bx_w, band, label, "en", &style) else {
            continue;
        };
        let block = fit.block_height(&style).ceil() as u32;
        let bx = TextBox {
            x: margin,
            y: footer_top + band.saturating_sub(block) / 2,
            width: bx_w,
            height: (block + 1).min(h - footer_top).max(1),
        };
        let pinned = TextStyle {
            size_px: fit.size_px,
            min_size_px: fit.size_px,
            ..style.clone()
        };
        if text::draw_text(img, bx, label, "en", &pinned).is_ok() {
            return Ok(());
        }
    }
    Ok(())
}

fn encode(img: RgbaImage, jpeg: bool) -> Result<Vec<u8>, ProviderError> {
    let failed = |e: String| {
        ProviderError::job_terminal(
            Reason::Other,
            format!("local renderer could not encode: {e}"),
        )
    };
    // Proofs are opaque; the real service returns RGB too.
    let rgb = image::DynamicImage::ImageRgba8(img).into_rgb8();
    if jpeg {
        // The JPEG writer every other file goes through: image's own
        // encoder was about half of a no-key example run's CPU (perf,
        // 2026-12-07).
        return crate::imaging::encode_jpeg(&image::DynamicImage::ImageRgb8(rgb), JPEG_QUALITY)
            .map_err(failed);
    }
    let (w, h) = rgb.dimensions();
    let mut out = Cursor::new(Vec::with_capacity(rgb.len() / 8));
    PngEncoder::new(&mut out)
        .write_image(rgb.as_raw(), w, h, ExtendedColorType::Rgb8)
        .map_err(|e| failed(e.to_string()))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ProofText;

    fn request(
        model: &str,
        ratio: &str,
        size: ImageSize,
        locale: &str,
        lines: &[&str],
    ) -> ImageRequest {
        ImageRequest {
            model: model.parse().expect("known model"),
            prompt: format!("A sunny beach product shot for {locale}"),
            aspect_ratio: ratio.parse().unwrap(),
            image_size: size,
            quality: None,
            references: Vec::new(),
            grounding: false,
            proof: ProofText {
                locale: locale.to_string(),
                variant: "hero".to_string(),
                lines: lines.iter().map(|l| l.to_string()).collect(),
                rtl: text::is_rtl_locale(locale),
            },
            edit: None,
            read_copy_side: None,
        }
    }

    fn sample(locale: &str) -> &'static [&'static str] {
        match locale {
            "ja-JP" => &[
                "夏のセール開催中！",
                "全品50%オフ。「今だけ」の特別価格です。",
            ],
            "ko-KR" => &["여름 세일!", "전 품목 50% 할인 — 오늘 단 하루."],
            "zh-Hans-CN" => &["夏季特卖", "全场五折，仅限今天！「立即购买」"],
            "ar-SA" => &["تخفيضات الصيف", "Acme: خصم ٥٠٪ على كل شيء — اليوم فقط!"],
            "de-DE" => &["Sommerschlussverkauf", "50 % Rabatt auf alles – nur heute!"],
            _ => &["Summer Sale", "50% off everything — today only!"],
        }
    }

    async fn generate(req: &ImageRequest) -> Generated {
        LocalProvider::new().generate(req).await.expect("renders")
    }

    #[test]
    fn name_is_local_and_there_is_no_batch_api() {
        let p = LocalProvider::new();
        assert_eq!(p.kind().as_str(), "local");
        assert!(p.batch().is_none());
    }

    #[tokio::test]
    async fn output_decodes_at_the_exact_model_pixel_size() {
        let cases = [
            ("gemini-2.5-flash-image", "16:9", ImageSize::K1, (1344, 768)),
            ("gemini-3.1-flash-image", "16:9", ImageSize::K1, (1376, 768)),
            (
                "gemini-3.1-flash-image",
                "1:8",
                ImageSize::S512,
                (192, 1536),
            ),
            (
                "gemini-3.1-flash-image",
                "4:1",
                ImageSize::S512,
                (1024, 256),
            ),
            (
                "gemini-3.1-flash-lite-image",
                "1:1",
                ImageSize::K1,
                (1024, 1024),
            ),
            ("gemini-3-pro-image", "9:16", ImageSize::K2, (1536, 2752)),
        ];
        for (model, ratio, size, (w, h)) in cases {
            let req = request(model, ratio, size, "en-US", sample("en-US"));
            let out = generate(&req).await;
            let img = image::load_from_memory(&out.bytes).expect("decodes");
            assert_eq!(
                (img.width(), img.height()),
                (w, h),
                "{model} {ratio} {size}"
            );
            assert!(out.usage.is_none());
            assert_eq!(out.model_version.as_deref(), Some(RENDERER_VERSION));
        }
    }

    #[tokio::test]
    async fn mime_type_and_bytes_follow_the_model_family() {
        for (model, mime, format) in [
            (
                "gemini-2.5-flash-image",
                "image/png",
                image::ImageFormat::Png,
            ),
            (
                "gemini-3.1-flash-image",
                "image/jpeg",
                image::ImageFormat::Jpeg,
            ),
            (
                "gemini-3.1-flash-lite-image",
                "image/jpeg",
                image::ImageFormat::Jpeg,
            ),
            ("gemini-3-pro-image", "image/jpeg", image::ImageFormat::Jpeg),
        ] {
            let out = generate(&request(
                model,
                "1:1",
                ImageSize::K1,
                "de-DE",
                sample("de-DE"),
            ))
            .await;
            assert_eq!(out.mime_type, mime, "{model}");
            assert_eq!(
                image::guess_format(&out.bytes).expect("known format"),
                format,
                "{model}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn same_request_gives_the_same_bytes_even_in_parallel() {
        let req = request(
            "gemini-3.1-flash-image",
            "16:9",
            ImageSize::K1,
            "ja-JP",
            sample("ja-JP"),
        );
        let first = generate(&req).await.bytes;
        let p = LocalProvider::new();
        let (a, b, c) = tokio::join!(p.generate(&req), p.generate(&req), p.generate(&req));
        for other in [a, b, c] {
            assert!(other.expect("renders").bytes == first);
        }
        let png = request(
            "gemini-2.5-flash-image",
            "16:9",
            ImageSize::K1,
            "ar-SA",
            sample("ar-SA"),
        );
        assert!(generate(&png).await.bytes == generate(&png).await.bytes);
    }

    #[tokio::test]
    async fn different_prompts_give_different_backgrounds() {
        let a = request("gemini-2.5-flash-image", "1:1", ImageSize::K1, "en-US", &[]);
        let mut b = a.clone();
        b.prompt.push_str(" at sunset");
        let (ia, ib) = (
            image::load_from_memory(&generate(&a).await.bytes)
                .expect("decodes")
                .to_rgb8(),
            image::load_from_memory(&generate(&b).await.bytes)
                .expect("decodes")
                .to_rgb8(),
        );
        assert_ne!(ia.get_pixel(5, 5), ib.get_pixel(5, 5));
    }

    #[tokio::test]
    async fn unsupported_ratio_or_size_is_a_job_terminal_invalid_argument() {
        for (model, ratio, size) in [
            ("gemini-2.5-flash-image", "1:8", ImageSize::K1),
            ("gemini-2.5-flash-image", "16:9", ImageSize::K2),
            ("gemini-3-pro-image", "16:9", ImageSize::S512),
        ] {
            let err = LocalProvider::new()
                .generate(&request(model, ratio, size, "en-US", &["x"]))
                .await
                .expect_err("unsupported");
            assert_eq!(
                err.reason,
                Reason::InvalidArgument,
                "{model} {ratio} {size}"
            );
            assert_eq!(err.class, crate::provider::ErrorClass::JobTerminal);
        }
    }

    #[tokio::test]
    async fn copy_that_cannot_fit_is_a_text_overflow() {
        let long = "Unbelievable savings on absolutely everything in store. ".repeat(400);
        let req = request(
            "gemini-3.1-flash-image",
            "4:1",
            ImageSize::S512,
            "en-US",
            &[long.as_str()],
        );
        let err = LocalProvider::new()
            .generate(&req)
            .await
            .expect_err("overflows");
        assert_eq!(err.reason, Reason::TextOverflow);
        assert_eq!(err.class, crate::provider::ErrorClass::JobTerminal);
    }

    /// Bounding box of pixels that differ between two renders.
    fn diff_bbox(a: &image::RgbImage, b: &image::RgbImage) -> Option<(u32, u32, u32, u32)> {
        let mut bbox: Option<(u32, u32, u32, u32)> = None;
        for (x, y, pa) in a.enumerate_pixels() {
            let pb = b.get_pixel(x, y);
            let d =
                pa.0.iter()
                    .zip(pb.0)
                    .map(|(p, q)| p.abs_diff(q))
                    .max()
                    .unwrap_or(0);
            if d > 40 {
                bbox = Some(match bbox {
                    None => (x, y, x, y),
                    Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
                });
            }
        }
        bbox
    }

    #[tokio::test]
    async fn copy_hugs_the_reading_start_margin() {
        // PNG (lossless) so the difference between the proof with copy and
        // the same proof without copy is exactly the copy and accent bar.
        for (locale, rtl) in [("ar-SA", true), ("en-US", false)] {
            let with = request(
                "gemini-2.5-flash-image",
                "16:9",
                ImageSize::K1,
                locale,
                &["أهلا", "بكم"],
            );
            let with = if rtl {
                with
            } else {
                request(
                    "gemini-2.5-flash-image",
                    "16:9",
                    ImageSize::K1,
                    locale,
                    &["Hi", "there"],
                )
            };
            let mut without = with.clone();
            without.proof.lines = vec![" ".to_string()];
            let a = image::load_from_memory(&generate(&with).await.bytes)
                .expect("decodes")
                .to_rgb8();
            let b = image::load_from_memory(&generate(&without).await.bytes)
                .expect("decodes")
                .to_rgb8();
            let (x0, _, x1, _) = diff_bbox(&a, &b).expect("copy drawn");
            let w = a.width();
            if rtl {
                assert!(
                    x0 > w / 2 && x1 > w - 120,
                    "{locale}: copy spans x {x0}..{x1} of {w}"
                );
            } else {
                assert!(
                    x1 < w / 2 && x0 < 120,
                    "{locale}: copy spans x {x0}..{x1} of {w}"
                );
            }
        }
    }

    /// Writes sample proofs for a human to look at:
    /// `cargo test --lib provider::local -- --ignored --nocapture`.
    #[tokio::test]
    #[ignore = "writes files for manual review"]
    async fn write_sample_proofs_for_review() {
        let dir = std::env::temp_dir().join("adloc-local-samples");
        std::fs::create_dir_all(&dir).expect("mkdir");
        for locale in ["en-US", "de-DE", "ja-JP", "ko-KR", "zh-Hans-CN", "ar-SA"] {
            for (model, ratio, size) in [
                ("gemini-2.5-flash-image", "16:9", ImageSize::K1),
                ("gemini-3.1-flash-image", "9:16", ImageSize::K1),
                ("gemini-3.1-flash-image", "1:8", ImageSize::S512),
                ("gemini-3.1-flash-image", "8:1", ImageSize::K1),
            ] {
                let out = generate(&request(model, ratio, size, locale, sample(locale))).await;
                let ext = if out.mime_type == "image/png" {
                    "png"
                } else {
                    "jpg"
                };
                let path = dir.join(format!("{locale}-{}.{ext}", ratio.replace(':', "x")));
                std::fs::write(&path, &out.bytes).expect("write");
                println!("{}", path.display());
                if ext == "jpg" {
                    // Also as PNG, for viewers that only show PNG.
                    let decoded = image::load_from_memory(&out.bytes).expect("decodes");
                    decoded
                        .save(path.with_extension("jpg.png"))
                        .expect("write png");
                }
            }
        }
    }

    /// Release-build timing: `cargo test --release --lib provider::local -- --ignored --nocapture time_`.
    #[tokio::test]
    #[ignore = "timing, run in release"]
    async fn time_per_1376x768_proof() {
        let p = LocalProvider::new();
        for (model, label) in [
            ("gemini-3.1-flash-image", "jpeg"),
            ("gemini-2.5-flash-image", "png 1344x768"),
        ] {
            for locale in ["en-US", "ja-JP", "ar-SA"] {
                let req = request(model, "16:9", ImageSize::K1, locale, sample(locale));
                p.generate(&req).await.expect("warm-up");
                let n = 20;
                let start = std::time::Instant::now();
                for _ in 0..n {
                    p.generate(&req).await.expect("renders");
                }
                println!(
                    "{label} {locale}: {:.1} ms/image",
                    start.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
                );
            }
        }
    }
}
