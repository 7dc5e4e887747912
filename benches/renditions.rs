//! Renditions benchmark: 2K masters (2752x1536 JPEG, what Gemini returns
//! for 16:9 at 2K) into three ad-slot sizes (1200x628, 1080x1080, 300x250),
//! cover-cropped and encoded as JPEG quality 85.
//!
//! Reports, on this machine:
//! 1. end to end on one thread: decode the master once, then resize and
//!    encode its three renditions (what one reconcile task does per job);
//! 2. the same on every core (one master per thread, as `reconcile` runs);
//! 3. the parts: decode, resize only, encode only.
//!
//! Run: `cargo bench --bench renditions` (set `ADLOC_BENCH_MASTERS` to
//! change how many masters each measurement processes; default 12).

use std::io::Cursor;
use std::time::{Duration, Instant};

use adloc::bench::{Fit, OutputFormat, RenditionSpec, decode_master, render};
use fast_image_resize::Resizer;
use image::{DynamicImage, ImageEncoder, RgbImage};

const W: u32 = 2752;
const H: u32 = 1536;

/// A photo-like master: smooth gradients, a few shapes and fine noise, so
/// the JPEG has realistic entropy (a flat image would flatter the decoder).
fn master_jpeg(seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 24) as i32 - 12
    };
    let img = RgbImage::from_fn(W, H, |x, y| {
        let cx = x as i32 - (W as i32 * (2 + seed as i32 % 3)) / 6;
        let cy = y as i32 - H as i32 / 2;
        let disc = if cx * cx + cy * cy < 360_000 { 70 } else { 0 };
        let r = (x * 200 / W) as i32 + disc + noise();
        let g = (y * 180 / H) as i32 + noise();
        let b = ((x + y) * 150 / (W + H)) as i32 + 60 - disc / 2 + noise();
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

fn specs() -> Vec<RenditionSpec> {
    [(1200, 628), (1080, 1080), (300, 250)]
        .into_iter()
        .map(|(width, height)| RenditionSpec {
            width,
            height,
            format: OutputFormat::Jpeg,
            quality: 85,
            fit: Fit::Cover { focal: (0.5, 0.4) },
        })
        .collect()
}

fn one_master(bytes: &[u8], specs: &[RenditionSpec], resizer: &mut Resizer) -> usize {
    let master = decode_master(bytes).expect("decode master");
    let mut total = 0;
    for s in specs {
        total += render(&master, s, resizer).expect("render").bytes.len();
    }
    total
}

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    let n: usize = std::env::var("ADLOC_BENCH_MASTERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
        .max(1);
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let masters: Vec<Vec<u8>> = (0..4).map(master_jpeg).collect();
    let specs = specs();
    println!(
        "renditions bench: {n} masters of {W}x{H} JPEG ({} KB each), 3 renditions each (1200x628, 1080x1080, 300x250; cover, JPEG q85); {cores} core(s)",
        masters[0].len() / 1024
    );

    // Warm up (page in code, size the resizer buffers).
    let mut resizer = Resizer::new();
    one_master(&masters[0], &specs, &mut resizer);

    // 1. End to end, one thread.
    let t = Instant::now();
    let mut sink = 0;
    for i in 0..n {
        sink += one_master(&masters[i % masters.len()], &specs, &mut resizer);
    }
    let single = t.elapsed();
    println!(
        "  one thread:  {:7.1} renditions/s  ({:6.1} ms per master incl. decode)",
        per_sec(3 * n, single),
        single.as_secs_f64() * 1e3 / n as f64
    );

    // 2. End to end, every core (one master per task, like reconcile).
    let t = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..cores {
            scope.spawn(|| {
                let mut resizer = Resizer::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    one_master(&masters[i % masters.len()], &specs, &mut resizer);
                }
            });
        }
    });
    let multi = t.elapsed();
    println!(
        "  {cores} thread(s): {:7.1} renditions/s",
        per_sec(3 * n, multi)
    );

    // 3. The parts, one thread.
    let t = Instant::now();
    let decoded: Vec<DynamicImage> = (0..n)
        .map(|i| decode_master(&masters[i % masters.len()]).expect("decode"))
        .collect();
    let decode = t.elapsed();
    let t = Instant::now();
    let mut outs = Vec::new();
    for m in decoded.iter().take(4) {
        for s in &specs {
            let (l, tp, w, h) = adloc::bench::cover_crop(W, H, s.width, s.height, (0.5, 0.4));
            let mut dst = DynamicImage::new_rgb8(s.width, s.height);
            resizer
                .resize(
                    m,
                    &mut dst,
                    &fast_image_resize::ResizeOptions::new().crop(l, tp, w, h),
                )
                .expect("resize");
            outs.push(dst);
        }
    }
    let resize = t.elapsed();
    let resized = outs.len();
    let t = Instant::now();
    for o in &outs {
        let mut buf = Cursor::new(Vec::new());
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 85)
            .write_image(
                o.as_bytes(),
                o.width(),
                o.height(),
                image::ExtendedColorType::Rgb8,
            )
            .expect("encode");
        sink += buf.into_inner().len();
    }
    let encode = t.elapsed();
    println!(
        "  parts:       decode {:.1} ms/master, resize {:.1} ms/rendition ({:.0}/s), encode {:.1} ms/rendition",
        decode.as_secs_f64() * 1e3 / n as f64,
        resize.as_secs_f64() * 1e3 / resized as f64,
        per_sec(resized, resize),
        encode.as_secs_f64() * 1e3 / resized as f64
    );
    std::hint::black_box(sink);
}
