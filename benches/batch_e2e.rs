//! End-to-end batch: a 504-image campaign (84 rows × 6 locales × 1 variant,
//! 1K 16:9, `gemini-3.1-flash-image`, `mode = "batch"`, one batch) run by
//! the real `adloc` binary against the in-crate emulator, next to a
//! baseline in the same process and run: a short reqwest "script" that
//! sends the same 504 requests (JSONL built, uploaded through the resumable
//! Files API, `batchGenerateContent`, polled), downloads the results file
//! and, per line, parses the JSON, base64-decodes the image and writes it
//! with `std::fs::write`, nothing more (no database, no fsync, no hashing,
//! no manifest). Issue 14's goal: adloc no slower than that baseline.
//!
//! Both sides poll at the same fixed cadence (`POLL_MS`, adloc through
//! `ADLOC_BATCH_POLL_MS`/`ADLOC_BATCH_POLL_MAX_MS`) and get a fresh emulator
//! with the same seed, so the emulator's work and the waits are the same
//! on both sides. The prompts come from adloc's own expansion of the
//! campaign (computed before the baseline's clock starts), so the emulator
//! sees byte-identical requests. The copy in the prompts is not quoted:
//! the emulator then serves cached encodes instead of painting every
//! image, so its share of the wall time (common to both sides) stays
//! small and the ratio is about the clients' work.
//!
//! Rounds alternate the order (adloc first, then baseline first, …) to
//! cancel drift. Prints per-round times, medians, the wall-time ratio
//! (goal <= 1.0x), images per second, and adloc's peak RSS (VmHWM of the
//! child, sampled from /proc every 10 ms while it runs, so a lower bound).
//!
//! Run: `cargo bench --bench batch_e2e` (`ADLOC_BENCH_ROUNDS` sets the
//! number of rounds, default 3).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::StreamExt as _;

const ROWS: usize = 84;
const LOCALES: [&str; 6] = ["en-US", "de-DE", "fr-FR", "ja-JP", "ko-KR", "ar-SA"];
const IMAGES: usize = ROWS * LOCALES.len();
const MODEL: &str = "gemini-3.1-flash-image";
const KEY: &str = "bench-key";
const SEED: u64 = 14;
/// Poll cadence of both sides (first and every later poll).
const POLL_MS: u64 = 100;

fn write_campaign(dir: &Path) {
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    let locales = LOCALES
        .iter()
        .map(|l| format!("\"{l}\""))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        dir.join("campaign.toml"),
        format!(
            "name = \"e2e\"\nrows = \"rows.csv\"\nmodel = \"{MODEL}\"\nmode = \"batch\"\nlocales = [{locales}]\n\n\
             [[variants]]\nname = \"hero\"\ntemplate = \"hero.hbs\"\naspect_ratio = \"16:9\"\nimage_size = \"1K\"\n\n\
             [batch]\nmax_requests = 1000\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("templates/hero.hbs"),
        "A 16:9 hero ad. Scene: {{row.scene}}.\nHeadline in {{locale.english_name}}: {{row.headline}}\nButton: {{row.cta}}\n",
    )
    .unwrap();
    let mut csv = String::from("id,scene,headline,cta");
    for l in &LOCALES[1..] {
        let _ = write!(csv, ",headline.{l},cta.{l}");
    }
    csv.push('\n');
    for r in 0..ROWS {
        let _ = write!(
            csv,
            "row-{r:03},\"A product shot number {r}, studio light\",Headline {r},Buy now"
        );
        for l in &LOCALES[1..] {
            let _ = write!(csv, ",Headline {r} in {l},CTA {l}");
        }
        csv.push('\n');
    }
    std::fs::write(dir.join("rows.csv"), csv).unwrap();
}

/// One request of the baseline: a file-safe key and its prompt.
struct Req {
    key: String,
    prompt: String,
    aspect_ratio: String,
    image_size: String,
}

fn requests(campaign_dir: &Path) -> Vec<Req> {
    let (_, specs) = adloc::load_and_expand(campaign_dir).unwrap();
    specs
        .iter()
        .map(|s| Req {
            key: format!("{}_{}_{}", s.key.row.as_str(), s.key.target, s.key.variant),
            prompt: s.request.prompt.clone(),
            aspect_ratio: s.request.aspect_ratio.as_str().to_string(),
            image_size: s.request.image_size.as_str().to_string(),
        })
        .collect()
}

/// A fresh emulator (same seed and faults every time): batches are
/// terminal on their second poll once their results exist.
fn start_emulator(rt: &tokio::runtime::Runtime) -> adloc_emulator::EmulatorHandle {
    let faults = adloc_emulator::Faults {
        batch: adloc_emulator::BatchFaults {
            polls_until_done: 2,
            ..Default::default()
        },
        ..Default::default()
    };
    rt.block_on(adloc_emulator::spawn(
        adloc_emulator::EmulatorConfig {
            seed: SEED,
            api_key: Some(KEY.into()),
            faults,
        },
        0,
    ))
    .unwrap()
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn image_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            // adloc's review page keeps a thumbnail of every image: not a master.
            if e.file_name() != "review" {
                image_files(&p, out);
            }
        } else if matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("jpg" | "jpeg" | "png" | "webp")
        ) {
            out.push(p);
        }
    }
}

/// Decode the first and last of the files: they are real images.
fn check_images(files: &[PathBuf]) {
    assert_eq!(files.len(), IMAGES, "images written: {:?}…", files.first());
    for p in [&files[0], &files[files.len() - 1]] {
        let img = image::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(
            img.width() >= 1000 && img.height() >= 500,
            "{}",
            p.display()
        );
    }
}

struct AdlocRun {
    secs: f64,
    peak_rss_mib: f64,
}

/// `adloc run` as a child process, wall clock from spawn to exit.
fn run_adloc(work: &Path, base_url: &str) -> AdlocRun {
    let out_dir = work.join("out");
    let t = Instant::now();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_adloc"))
        .current_dir(work)
        .args(["run", "campaigns/e2e", "--provider", "gemini", "--state"])
        .arg(work.join("state/state.db"))
        .arg("--out")
        .arg(&out_dir)
        .env_remove("GOOGLE_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env("GEMINI_API_KEY", KEY)
        .env("GOOGLE_GEMINI_BASE_URL", base_url)
        .env("ADLOC_BATCH_POLL_MS", POLL_MS.to_string())
        .env("ADLOC_BATCH_POLL_MAX_MS", POLL_MS.to_string())
        .env("ADLOC_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0u64;
        // VmHWM only grows; the last read before exit is the peak so far.
        while let Some(kib) = vm_hwm_kib(pid) {
            peak = peak.max(kib);
            std::thread::sleep(Duration::from_millis(10));
        }
        peak
    });
    let out = child.wait_with_output().unwrap();
    let secs = t.elapsed().as_secs_f64();
    let peak = sampler.join().unwrap();
    assert!(
        out.status.success(),
        "adloc failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files = Vec::new();
    image_files(&out_dir.join("e2e"), &mut files);
    files.sort();
    check_images(&files);
    AdlocRun {
        secs,
        peak_rss_mib: peak as f64 / 1024.0,
    }
}

#[derive(serde::Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    key: &'a str,
    #[serde(borrow)]
    response: Response<'a>,
}
#[derive(serde::Deserialize)]
struct Response<'a> {
    #[serde(borrow)]
    candidates: Vec<Candidate<'a>>,
}
#[derive(serde::Deserialize)]
struct Candidate<'a> {
    #[serde(borrow)]
    content: Content<'a>,
}
#[derive(serde::Deserialize)]
struct Content<'a> {
    #[serde(borrow)]
    parts: Vec<Part<'a>>,
}
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(borrow)]
    inline_data: Option<InlineData<'a>>,
}
#[derive(serde::Deserialize)]
struct InlineData<'a> {
    #[serde(borrow)]
    data: &'a str,
}

/// One results line: parse, decode the image, write it.
fn write_line(line: &[u8], out: &Path) -> usize {
    if line.iter().all(u8::is_ascii_whitespace) {
        return 0;
    }
    let l: Line<'_> = serde_json::from_slice(line).unwrap();
    let data = l.response.candidates[0]
        .content
        .parts
        .iter()
        .find_map(|p| p.inline_data.as_ref())
        .unwrap()
        .data;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    std::fs::write(out.join(format!("{}.jpg", l.key)), bytes).unwrap();
    1
}

struct BaselineRun {
    secs: f64,
    submit: f64,
    wait: f64,
    fetch: f64,
}

/// The short script: build the JSONL, upload, create, poll, download, write.
fn run_baseline(work: &Path, base: &str, reqs: &[Req]) -> BaselineRun {
    let out = work.join("out");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let t = Instant::now();
    let (submit, wait, written) = rt.block_on(async {
        std::fs::create_dir_all(&out).unwrap();
        let mut jsonl = Vec::new();
        for r in reqs {
            let line = serde_json::json!({
                "key": r.key,
                "request": {
                    "contents": [{"role": "user", "parts": [{"text": r.prompt}]}],
                    "generationConfig": {
                        "responseModalities": ["TEXT", "IMAGE"],
                        "imageConfig": {"aspectRatio": r.aspect_ratio, "imageSize": r.image_size},
                    },
                },
            });
            serde_json::to_writer(&mut jsonl, &line).unwrap();
            jsonl.push(b'\n');
        }
        // Resumable upload: start, then one "upload, finalize" chunk.
        let start = http
            .post(format!("{base}/upload/v1beta/files"))
            .header("x-goog-api-key", KEY)
            .header("X-Goog-Upload-Protocol", "resumable")
            .header("X-Goog-Upload-Command", "start")
            .header("X-Goog-Upload-Header-Content-Length", jsonl.len().to_string())
            .header("X-Goog-Upload-Header-Content-Type", "application/jsonl")
            .json(&serde_json::json!({"file": {"display_name": "baseline", "mime_type": "application/jsonl", "size_bytes": jsonl.len()}}))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
        let session = start.headers()["x-goog-upload-url"].to_str().unwrap();
        let session = reqwest::Url::parse(session).unwrap();
        let session = format!(
            "{base}{}?{}",
            session.path(),
            session.query().unwrap_or_default()
        );
        let file: serde_json::Value = http
            .post(session)
            .header("X-Goog-Upload-Command", "upload, finalize")
            .header("X-Goog-Upload-Offset", "0")
            .body(jsonl)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        let file_name = file["file"]["name"].as_str().unwrap().to_string();
        let op: serde_json::Value = http
            .post(format!(
                "{base}/v1beta/models/{MODEL}:batchGenerateContent"
            ))
            .header("x-goog-api-key", KEY)
            .json(&serde_json::json!({"batch": {"displayName": "baseline", "inputConfig": {"fileName": file_name}}}))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        let batch = op["name"].as_str().unwrap().to_string();
        let submit = t.elapsed().as_secs_f64();
        // Poll at adloc's cadence: at once, then every POLL_MS.
        let results = loop {
            let op: serde_json::Value = http
                .get(format!("{base}/v1beta/{batch}"))
                .header("x-goog-api-key", KEY)
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap()
                .json()
                .await
                .unwrap();
            let state = op["metadata"]["state"].as_str().unwrap_or_default();
            if let Some(f) = op["metadata"]["output"]["responsesFile"].as_str() {
                break f.to_string();
            }
            assert!(
                !matches!(
                    state,
                    "BATCH_STATE_FAILED" | "BATCH_STATE_CANCELLED" | "BATCH_STATE_EXPIRED"
                ),
                "{op}"
            );
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        };
        let wait = t.elapsed().as_secs_f64() - submit;
        // Download, and handle each line as it arrives.
        let resp = http
            .get(format!("{base}/v1beta/{results}:download"))
            .query(&[("alt", "media")])
            .header("x-goog-api-key", KEY)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
        let mut body = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut written = 0usize;
        while let Some(chunk) = body.next().await {
            buf.extend_from_slice(&chunk.unwrap());
            let mut start = 0;
            while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
                written += write_line(&buf[start..start + nl], &out);
                start += nl + 1;
            }
            buf.drain(..start);
        }
        written += write_line(&buf, &out);
        (submit, wait, written)
    });
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(written, IMAGES);
    let mut files = Vec::new();
    image_files(&out, &mut files);
    files.sort();
    check_images(&files);
    BaselineRun {
        secs,
        submit,
        wait,
        fetch: secs - submit - wait,
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let rounds: usize = std::env::var("ADLOC_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    // The emulator is served by its own runtime, as in the tests.
    let emu_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("template/campaigns/e2e");
    write_campaign(&template);
    let reqs = requests(&template);
    assert_eq!(reqs.len(), IMAGES);

    println!(
        "batch e2e: {IMAGES} images ({ROWS} rows × {} locales × 1 variant, 1K 16:9, {MODEL}), one batch, poll every {POLL_MS} ms, {rounds} rounds",
        LOCALES.len()
    );
    let mut adloc_secs = Vec::new();
    let mut base_secs = Vec::new();
    let mut rss = Vec::new();
    for round in 0..rounds {
        let mut line = format!("  round {}:", round + 1);
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_adloc in order {
            let emu = start_emulator(&emu_rt);
            let work = tmp.path().join(format!(
                "r{round}-{}",
                if is_adloc { "adloc" } else { "base" }
            ));
            if is_adloc {
                write_campaign(&work.join("campaigns/e2e"));
                let r = run_adloc(&work, &emu.base_url());
                let _ = write!(
                    line,
                    "  adloc {:.2} s (peak RSS {:.1} MiB)",
                    r.secs, r.peak_rss_mib
                );
                adloc_secs.push(r.secs);
                rss.push(r.peak_rss_mib);
            } else {
                let r = run_baseline(&work, &emu.base_url(), &reqs);
                let _ = write!(
                    line,
                    "  baseline {:.2} s (submit {:.2} + wait {:.2} + download/write {:.2})",
                    r.secs, r.submit, r.wait, r.fetch
                );
                base_secs.push(r.secs);
            }
            let stats = emu.stats();
            assert_eq!(stats.batch_billed_images as usize, IMAGES);
            assert_eq!(stats.batches_created, 1);
            emu_rt.block_on(emu.shutdown());
            std::fs::remove_dir_all(&work).unwrap();
        }
        println!("{line}");
    }
    let (a, b) = (median(&adloc_secs), median(&base_secs));
    println!(
        "  median adloc:    {a:.2} s  {:>6.1} images/s",
        IMAGES as f64 / a
    );
    println!(
        "  median baseline: {b:.2} s  {:>6.1} images/s",
        IMAGES as f64 / b
    );
    println!(
        "  adloc / baseline wall ratio: {:.2}x (goal <= 1.0x)",
        a / b
    );
    println!(
        "  adloc peak RSS (sampled VmHWM of the child): median {:.1} MiB, max {:.1} MiB",
        median(&rss),
        rss.iter().copied().fold(0.0, f64::max)
    );
}
