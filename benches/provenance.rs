//! Provenance cost (issue 24): writing a delivered 1K JPEG signed (IPTC
//! XMP + a C2PA manifest with an ES256 signature, a master as the parent
//! ingredient) against writing it unsigned (IPTC XMP only), both through
//! the same provenance step and atomic write, in the same process and run.
//! Goal: signed ≤ 1.3 × unsigned per asset.
//!
//! The signer's certificate is made at start with the emulator's test PKI
//! (no committed key). Rounds alternate the order (unsigned first, then
//! signed first, …) to cancel drift; prints per-round times, the medians
//! and the ratio.
//!
//! Run: `cargo bench --bench provenance` (`ADLOC_BENCH_ROUNDS` sets the
//! rounds, default 5; `ADLOC_BENCH_FILES` the files per round, default 40).

use std::time::{Duration, Instant};

use adloc::bench::provenance::{Action, Signer, Step, encode_jpeg, finalize_with, write_atomic};

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// A 1K (1376×768) JPEG with some texture, as a rendition would be.
fn jpeg_1k() -> Vec<u8> {
    let img = image::RgbImage::from_fn(1376, 768, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x * y) % 239) as u8])
    });
    encode_jpeg(&image::DynamicImage::ImageRgb8(img), 85).unwrap()
}

fn round(
    dir: &std::path::Path,
    bytes: &[u8],
    parent: &[u8],
    files: usize,
    signer: Option<&Signer>,
) -> Duration {
    let start = Instant::now();
    for i in 0..files {
        let step = Step::derived(Action::Resized).with_parent(parent);
        let out = finalize_with(bytes, &step, signer).unwrap();
        write_atomic(&dir.join(format!("f{i}.jpg")), &out).unwrap();
    }
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rounds = env_usize("ADLOC_BENCH_ROUNDS", 5);
    let files = env_usize("ADLOC_BENCH_FILES", 40);
    let pki = adloc_emulator::pki::issue("bench CA", "bench signer", Default::default()).unwrap();
    let signer = Signer::from_pem(
        "bench.pem",
        pki.chain_pem.as_bytes(),
        "bench.key",
        pki.key_pem.as_bytes(),
    )
    .unwrap();
    let jpeg = jpeg_1k();
    // The parent: the master, signed as adloc would have delivered it.
    let parent = finalize_with(
        &jpeg,
        &Step::generated("gemini-3.1-flash-image", false),
        Some(&signer),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut unsigned, mut signed) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let order: [bool; 2] = if r % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for sign in order {
            let t = round(dir.path(), &jpeg, &parent, files, sign.then_some(&signer));
            println!(
                "round {r} {}: {:.1} ms ({:.2} ms/file)",
                if sign { "signed  " } else { "unsigned" },
                t.as_secs_f64() * 1e3,
                t.as_secs_f64() * 1e3 / files as f64
            );
            if sign {
                signed.push(t)
            } else {
                unsigned.push(t)
            }
        }
    }
    let (u, s) = (median(unsigned), median(signed));
    println!(
        "1K JPEG ({} bytes), {files} files/round: unsigned {:.2} ms/file, signed {:.2} ms/file, ratio {:.2}x (goal <= 1.3x)",
        jpeg.len(),
        u.as_secs_f64() * 1e3 / files as f64,
        s.as_secs_f64() * 1e3 / files as f64,
        s.as_secs_f64() / u.as_secs_f64()
    );
}
