//! Brand kit benchmark: composites per second with two brand layers (an
//! SVG logo rendered with resvg and a pill button with the CTA set on it)
//! against text-only composites (the same headline, and the CTA in a
//! scrim box) in the same run, on the same art.
//!
//! Each composite is decode + draw + encode, as `derive::overlay` does it
//! (the file write is left out: the same bytes reach the disk either way).
//! The art is a 1376x768 JPEG (Gemini's 16:9 at 1K), so composites are
//! JPEG at quality 90.
//!
//! Run: `cargo bench --bench brand` (`ADLOC_BENCH_COMPOSITES` sets how many
//! of each kind; default 40).

use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adloc::bench::{
    Align, FracBox, Layer, LayerDraw, Step, TextBoxSpec, VAlign, check_picture, compose_bytes,
    compose_steps_bytes,
};
use image::{ImageEncoder, RgbImage};

const W: u32 = 1376;
const H: u32 = 768;

const LOGO: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="240" height="80" viewBox="0 0 240 80">
<rect x="2" y="2" width="236" height="76" rx="16" fill="#101828"/>
<circle cx="40" cy="40" r="24" fill="#e4002b"/>
<path d="M80 20 h40 v40 h-40 z M130 20 l20 40 l20 -40 z M180 20 h40 v10 h-30 v10 h20 v10 h-20 v10 h30 v10 h-40 z" fill="#ffffff"/>
</svg>"##;

fn art(seed: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(W, H, |x, y| {
        let v = (x.wrapping_mul(7) ^ y.wrapping_mul(13) ^ seed) % 40;
        image::Rgb([
            (120 + x * 100 / W + v) as u8,
            (110 + y * 90 / H + v) as u8,
            (100 + v) as u8,
        ])
    });
    let mut buf = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 90)
        .write_image(img.as_raw(), W, H, image::ExtendedColorType::Rgb8)
        .expect("encode art");
    buf.into_inner()
}

fn text_box(column: &str, frame: FracBox, scrim: Option<[u8; 4]>, max: f32) -> TextBoxSpec {
    TextBoxSpec {
        column: column.into(),
        x: frame.x,
        y: frame.y,
        width: frame.width,
        height: frame.height,
        align: Align::Center,
        valign: VAlign::Middle,
        padding: 8.0,
        max_lines: Some(2),
        min_size: 16.0,
        max_size: max,
        line_height: 1.2,
        color: [255, 255, 255, 255],
        scrim,
        bold: true,
        line: 1,
        col: 1,
    }
}

fn time<F: FnMut() -> usize>(mut f: F) -> (Duration, usize) {
    let t = Instant::now();
    let sink = f();
    (t.elapsed(), sink)
}

fn main() {
    let n: usize = std::env::var("ADLOC_BENCH_COMPOSITES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
        .max(1);
    let arts: Vec<Vec<u8>> = (0..4).map(art).collect();
    let headline_frame = FracBox {
        x: 0.05,
        y: 0.25,
        width: 0.5,
        height: 0.4,
    };
    let cta_frame = FracBox {
        x: 0.06,
        y: 0.78,
        width: 0.34,
        height: 0.10,
    };
    let headline = text_box("headline", headline_frame, None, 84.0);
    let cta_scrim = text_box("cta", cta_frame, Some([228, 0, 43, 255]), 44.0);
    let cta_button = TextBoxSpec {
        max_lines: Some(1),
        ..text_box("cta", cta_frame, None, 44.0)
    };
    let logo = Layer {
        frame: FracBox {
            x: 0.04,
            y: 0.04,
            width: 0.18,
            height: 0.08,
        },
        draw: LayerDraw::Picture {
            picture: check_picture(Arc::new(LOGO.as_bytes().to_vec())).expect("logo"),
            dark: None,
            align: Align::Start,
        },
    };
    let button = Layer {
        frame: cta_frame,
        draw: LayerDraw::Fill {
            color: [228, 0, 43, 255],
            radius: 0.5,
        },
    };
    let copy = [
        ("Spring Sale: 30% off everything", "Shop now"),
        ("Free shipping on every order", "Start shopping"),
    ];
    println!(
        "brand bench: {n} text-only and {n} two-layer composites of {W}x{H} JPEG art, en-US, one thread"
    );

    let text_only = || {
        let mut sink = 0;
        for i in 0..n {
            let (h, c) = copy[i % copy.len()];
            let boxes = [
                (headline.clone(), h.to_string()),
                (cta_scrim.clone(), c.to_string()),
            ];
            let out =
                compose_bytes(&arts[i % arts.len()], &boxes, "en-US", Some(W)).expect("composes");
            sink += out.bytes.len();
        }
        sink
    };
    let branded = || {
        let mut sink = 0;
        for i in 0..n {
            let (h, c) = copy[i % copy.len()];
            let steps = [
                Step::Text(&headline, h),
                Step::Layer(&logo),
                Step::Layer(&button),
                Step::Text(&cta_button, c),
            ];
            let out = compose_steps_bytes(&arts[i % arts.len()], &steps, "en-US", Some(W), None)
                .expect("composes");
            sink += out.bytes.len();
        }
        sink
    };
    // Warm the font pool and caches once for both.
    let _ = text_only();
    let (t_text, s1) = time(text_only);
    let (t_brand, s2) = time(branded);
    let rate = |t: Duration| n as f64 / t.as_secs_f64();
    println!(
        "  text only : {:>7.1} composites/s ({:.2} s, {} KiB made)",
        rate(t_text),
        t_text.as_secs_f64(),
        s1 / 1024
    );
    println!(
        "  two layers: {:>7.1} composites/s ({:.2} s, {} KiB made)",
        rate(t_brand),
        t_brand.as_secs_f64(),
        s2 / 1024
    );
    println!(
        "  two layers / text only: {:.2} of the text-only rate",
        rate(t_brand) / rate(t_text)
    );
}
