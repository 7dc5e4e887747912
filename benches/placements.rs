//! Placements benchmark: 2K masters (2752x1536 JPEG, Gemini's 16:9 at 2K)
//! made to ad-platform slots with the weight search and the platform check,
//! against plain renditions of the same frames (cover crop, JPEG q85) in
//! the same run, on the same masters.
//!
//! Per frame, a plain rendition is crop + resize + encode + sha256; a
//! placement is crop + resize + the weight search (one encode when the
//! plain file fits) + the header check of the result + sha256. Decoding the
//! master is shared by both and left out. File writes are left out of both
//! (they are the same bytes to the disk either way, and fsync noise would
//! hide the CPU).
//!
//! Two kinds of master: photo-like (smooth gradients and fine grain: most
//! placements fit on the first encode) and busy (random 5-pixel cells plus
//! grain, texture at the scale the small slots sample a 2K master: the
//! 150 KB Google display slots need the search). The figure the goal names is the average over a mix of
//! three photo-like masters to one busy one.
//!
//! Run: `cargo bench --bench placements` (`ADLOC_BENCH_MASTERS` sets how
//! many masters of each kind; default 6).

use std::io::Cursor;
use std::time::{Duration, Instant};

use adloc::bench::{
    Fit, OutputFormat, PlacementSpec, RenditionSpec, built_in, check_placement, decode_master,
    encode_placement, render, render_pixels,
};
use fast_image_resize::Resizer;
use image::{DynamicImage, ImageEncoder, RgbImage};
use sha2::{Digest, Sha256};

const W: u32 = 2752;
const H: u32 = 1536;

const PLACEMENTS: &[&str] = &[
    "google-display-300x250",
    "google-display-728x90",
    "google-display-300x600",
    "google-display-970x250",
    "google-rda-landscape",
    "linkedin-landscape",
    "meta-feed-square",
];

fn master_jpeg(seed: u32, busy: bool) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let img = RgbImage::from_fn(W, H, |x, y| {
        if busy {
            // Texture at the scale the small slots sample it (5-pixel
            // cells, what foliage or fabric is at 2K), plus grain.
            let cell = (x / 5).wrapping_mul(0x9E37_79B9) ^ (y / 5).wrapping_mul(0x85EB_CA6B) ^ seed;
            let c = cell.wrapping_mul(0x2C1B_3C6D) ^ (cell >> 15);
            let g = rnd();
            return image::Rgb([
                (c as u8).wrapping_add(g as u8 % 48),
                ((c >> 8) as u8).wrapping_add((g >> 8) as u8 % 48),
                ((c >> 16) as u8).wrapping_add((g >> 16) as u8 % 48),
            ]);
        }
        let cx = x as i32 - (W as i32 * (2 + seed as i32 % 3)) / 6;
        let cy = y as i32 - H as i32 / 2;
        let disc = if cx * cx + cy * cy < 360_000 { 70 } else { 0 };
        let mut n = || (rnd() % 24) as i32 - 12;
        let r = (x * 200 / W) as i32 + disc + n();
        let g = (y * 180 / H) as i32 + n();
        let b = ((x + y) * 150 / (W + H)) as i32 + 60 - disc / 2 + n();
        image::Rgb([
            r.clamp(0, 255) as u8,
            g.clamp(0, 255) as u8,
            b.clamp(0, 255) as u8,
        ])
    });
    let mut buf = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 90)
        .write_image(img.as_raw(), W, H, image::ExtendedColorType::Rgb8)
        .expect("encode master");
    buf.into_inner()
}

fn frame(p: &PlacementSpec) -> RenditionSpec {
    RenditionSpec {
        width: p.width,
        height: p.height,
        format: OutputFormat::Jpeg,
        quality: 85,
        fit: Fit::Cover { focal: (0.5, 0.5) },
    }
}

/// Plain renditions of every frame; returns bytes made (kept live).
fn plain(master: &DynamicImage, specs: &[PlacementSpec], r: &mut Resizer) -> usize {
    let mut total = 0;
    for p in specs {
        let out = render(master, &frame(p), r).expect("render");
        total += out.bytes.len() + Sha256::digest(&out.bytes)[0] as usize;
    }
    total
}

/// Placements of every frame; returns bytes made and how many searched.
fn placed(
    master: &DynamicImage,
    specs: &[PlacementSpec],
    r: &mut Resizer,
) -> (usize, usize, usize) {
    let (mut total, mut searched, mut over) = (0, 0, 0);
    for p in specs {
        let (px, _) = render_pixels(master, &frame(p), r).expect("render");
        match encode_placement(&px, p) {
            Ok(w) => {
                check_placement(&w.bytes, p).expect("a placement that passes its check");
                if w.encodes > 1 {
                    searched += 1;
                }
                total += w.bytes.len() + Sha256::digest(&w.bytes)[0] as usize;
            }
            Err(_) => over += 1,
        }
    }
    (total, searched, over)
}

fn time<F: FnMut() -> usize>(mut f: F) -> (Duration, usize) {
    let t = Instant::now();
    let sink = f();
    (t.elapsed(), sink)
}

fn main() {
    let n: usize = std::env::var("ADLOC_BENCH_MASTERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6)
        .max(1);
    let specs: Vec<PlacementSpec> = PLACEMENTS
        .iter()
        .map(|id| built_in(id).expect("a built-in placement").spec())
        .collect();
    println!(
        "placements bench: {n} photo-like and {n} busy masters of {W}x{H} JPEG, {} frames each ({}), one thread",
        specs.len(),
        PLACEMENTS.join(", ")
    );
    let mut resizer = Resizer::new();
    let mut per_kind = Vec::new();
    for busy in [false, true] {
        let masters: Vec<DynamicImage> = (0..n as u32)
            .map(|i| decode_master(&master_jpeg(i + 1, busy)).expect("decode"))
            .collect();
        // Warm up.
        plain(&masters[0], &specs, &mut resizer);
        // Interleave the two per master so drift on a shared machine hits both.
        let (mut t_plain, mut t_placed) = (Duration::ZERO, Duration::ZERO);
        let (mut searched, mut over, mut sink) = (0, 0, 0);
        for m in &masters {
            let (d, s) = time(|| plain(m, &specs, &mut resizer));
            t_plain += d;
            sink += s;
            let mut res = (0, 0, 0);
            let (d, s) = time(|| {
                res = placed(m, &specs, &mut resizer);
                res.0
            });
            t_placed += d;
            sink += s;
            searched += res.1;
            over += res.2;
        }
        let count = (masters.len() * specs.len()) as f64;
        let kind = if busy { "busy" } else { "photo-like" };
        println!(
            "  {kind:10}: plain renditions {:6.1}/s ({:5.1} ms each), placements {:6.1}/s ({:5.1} ms each): {:.2}x; {searched} of {} searched, {over} over weight  [sink {sink}]",
            count / t_plain.as_secs_f64(),
            t_plain.as_secs_f64() * 1e3 / count,
            count / t_placed.as_secs_f64(),
            t_placed.as_secs_f64() * 1e3 / count,
            t_placed.as_secs_f64() / t_plain.as_secs_f64(),
            count as usize
        );
        per_kind.push((t_plain, t_placed));
    }
    let (pp, pl) = per_kind[0];
    let (bp, bl) = per_kind[1];
    let mix =
        (3.0 * pl.as_secs_f64() + bl.as_secs_f64()) / (3.0 * pp.as_secs_f64() + bp.as_secs_f64());
    println!(
        "  mix (3 photo-like : 1 busy): placements cost {mix:.2}x a plain rendition (goal <= 1.5x)"
    );
}
