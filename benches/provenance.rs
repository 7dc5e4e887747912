//! Provenance cost (issue 24): writing a delivered 1K JPEG signed (IPTC
//! XMP + a C2PA manifest with an ES256 signature, a master as the parent
//! ingredient) against writing it unsigned (IPTC XMP only), in the same
//! process and run. Goal: signed ≤ 1.3 × unsigned per asset.
//!
//! Two measures, both printed:
//! - **rendition**: what a delivered rendition costs, from the decoded 2K
//!   master: resize, encode, the provenance step, atomic write.
//! - **step only**: the provenance step and atomic write of bytes already
//!   encoded (the strictest baseline: the file's own cost left out).
//!
//! A third column signs with an RFC 3161 time stamp from the emulator's
//! test TSA on loopback (`ADLOC_C2PA_TSA_URL`): what the TSA's round trip
//! and token check add, without a network's latency (a real TSA's round
//! trip comes on top, per file).
//!
//! The signer's certificate is made at start with the emulator's test PKI
//! (no committed key). Rounds alternate the order (unsigned first, then
//! signed first, …) to cancel drift; prints per-round times, the medians
//! and the ratio.
//!
//! Run: `cargo bench --bench provenance` (`ADLOC_BENCH_ROUNDS` sets the
//! rounds, default 5; `ADLOC_BENCH_FILES` the files per round, default 40).

use std::time::{Duration, Instant};

use adloc::bench::provenance::{
    Action, Signer, Step, TimeStampAuthority, encode_jpeg, finalize_with, write_atomic,
};
use adloc::bench::{Fit, OutputFormat, RenditionSpec, render};

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// A textured image of `w`×`h`, as a master or rendition would be.
fn textured(w: u32, h: u32) -> image::DynamicImage {
    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x * y) % 239) as u8])
    }))
}

/// The 1K rendition of a 16:9 master.
const SPEC: RenditionSpec = RenditionSpec {
    width: 1376,
    height: 768,
    format: OutputFormat::Jpeg,
    quality: 85,
    fit: Fit::Cover { focal: (0.5, 0.5) },
};

/// What one round writes each file from.
enum Source<'a> {
    /// Bytes already encoded: the provenance step and the write only.
    Encoded(&'a [u8]),
    /// The decoded master: resize and encode first, as a rendition is.
    Master(&'a image::DynamicImage),
}

fn round(
    dir: &std::path::Path,
    source: &Source<'_>,
    parent: &[u8],
    files: usize,
    signer: Option<&Signer>,
) -> Duration {
    let mut resizer = fast_image_resize::Resizer::new();
    let start = Instant::now();
    for i in 0..files {
        let rendered;
        let bytes = match source {
            Source::Encoded(b) => *b,
            Source::Master(m) => {
                rendered = render(m, &SPEC, &mut resizer).unwrap().bytes;
                &rendered[..]
            }
        };
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
        None,
    )
    .unwrap();
    // The emulator (its test TSA at /tsa) on its own runtime.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt
        .block_on(adloc_emulator::spawn(Default::default(), 0))
        .unwrap();
    let tsa = TimeStampAuthority::new(&format!("{}/tsa", emu.base_url())).unwrap();
    let stamped = Signer::from_pem(
        "bench.pem",
        pki.chain_pem.as_bytes(),
        "bench.key",
        pki.key_pem.as_bytes(),
        Some(tsa),
    )
    .unwrap();
    let master = textured(2752, 1536);
    // The parent: the master, signed as adloc would have delivered it.
    let parent = finalize_with(
        &encode_jpeg(&master, 90).unwrap(),
        &Step::generated("gemini-3.1-flash-image", false),
        Some(&signer),
    )
    .unwrap();
    let jpeg = encode_jpeg(&textured(SPEC.width, SPEC.height), SPEC.quality).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, source) in [
        ("rendition", Source::Master(&master)),
        ("step only", Source::Encoded(&jpeg)),
    ] {
        let signers: [(&str, Option<&Signer>); 3] = [
            ("unsigned", None),
            ("signed", Some(&signer)),
            ("signed+tsa", Some(&stamped)),
        ];
        let mut times: [Vec<Duration>; 3] = Default::default();
        for r in 0..rounds {
            // Rotate the order to cancel drift.
            for k in 0..signers.len() {
                let i = (k + r) % signers.len();
                let (label, who) = signers[i];
                let t = round(dir.path(), &source, &parent, files, who);
                println!(
                    "{name} round {r} {label:<10}: {:.1} ms ({:.2} ms/file)",
                    t.as_secs_f64() * 1e3,
                    t.as_secs_f64() * 1e3 / files as f64
                );
                times[i].push(t);
            }
        }
        let [u, s, ts] = times.map(median);
        let per_file = |d: Duration| d.as_secs_f64() * 1e3 / files as f64;
        println!(
            "{name}: 1K JPEG ({} bytes), {files} files/round: unsigned {:.2} ms/file, signed {:.2} ms/file, ratio {:.2}x (goal <= 1.3x); signed with a loopback TSA time stamp {:.2} ms/file, {:.2}x",
            jpeg.len(),
            per_file(u),
            per_file(s),
            s.as_secs_f64() / u.as_secs_f64(),
            per_file(ts),
            ts.as_secs_f64() / u.as_secs_f64()
        );
    }
}
