//! Batch results ingestion: generate a results file of about 2 GB (JSONL,
//! one `GenerateContentResponse` per line with a real base64 JPEG), then
//! stream it through the same parser the batch download uses
//! (`stream_results_from_reader`: lines read in order, parsed on every
//! core, each image decoded and checked), against a baseline in the same
//! run that parses one line at a time on one thread (how ingest worked
//! before it used every core). Prints MB/s of both, their ratio (goal
//! >= 1.8 on 2 cores) and the process's peak RSS (VmHWM).
//!
//! Run: `cargo bench --bench batch_ingest` (`ADLOC_BENCH_MB` sets the size).

use std::io::Write as _;
use std::time::Instant;

use base64::Engine as _;
use futures_util::StreamExt;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let target_mb: u64 = std::env::var("ADLOC_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    // A noisy 1376x768 JPEG (what a 16:9 1K image is), so the base64 is large
    // and the decode is real work.
    let mut rng = fastrand::Rng::with_seed(1);
    let img = image::RgbImage::from_fn(1376, 768, |_, _| {
        image::Rgb([rng.u8(..), rng.u8(..), rng.u8(..)])
    });
    let mut jpeg = std::io::Cursor::new(Vec::new());
    img.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(jpeg.get_ref());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut lines = 0u64;
    let mut written = 0u64;
    while written < target_mb * 1024 * 1024 {
        let line = format!(
            "{{\"key\":\"{lines}|bench/en-US/hero/r{lines}\",\"response\":{{\"candidates\":[{{\"content\":{{\"role\":\"model\",\"parts\":[{{\"text\":\"Here you go\"}},{{\"inlineData\":{{\"mimeType\":\"image/jpeg\",\"data\":\"{b64}\"}},\"thoughtSignature\":\"c2ln\"}}]}},\"finishReason\":\"STOP\",\"index\":0}}],\"usageMetadata\":{{\"promptTokenCount\":40,\"candidatesTokenCount\":1120,\"totalTokenCount\":1160,\"candidatesTokensDetails\":[{{\"modality\":\"IMAGE\",\"tokenCount\":1120}}]}},\"modelVersion\":\"gemini-3.1-flash-image\"}}}}\n"
        );
        f.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
        lines += 1;
    }
    f.flush().unwrap();
    drop(f);
    let rss_before = peak_rss_mb();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Baseline: one line at a time, parsed where it is read.
    let t = Instant::now();
    let base_ok = rt.block_on(async {
        use tokio::io::AsyncBufReadExt as _;
        let file = tokio::fs::File::open(&path).await.unwrap();
        let mut reader = tokio::io::BufReader::with_capacity(1 << 20, file);
        let mut buf = Vec::new();
        let mut ok = 0u64;
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf).await.unwrap() == 0 {
                break;
            }
            let o = adloc::bench::parse_results_line(&buf).unwrap();
            assert!(!o.result.unwrap().bytes.is_empty());
            ok += 1;
        }
        ok
    });
    let base_secs = t.elapsed().as_secs_f64();
    assert_eq!(base_ok, lines);
    let rss_base = peak_rss_mb();

    let t = Instant::now();
    let (ok, failed) = rt.block_on(async {
        let file = tokio::fs::File::open(&path).await.unwrap();
        let reader = tokio::io::BufReader::with_capacity(1 << 20, file);
        let mut stream = adloc::bench::stream_results_from_reader(reader);
        let (mut ok, mut failed) = (0u64, 0u64);
        while let Some(item) = stream.next().await {
            match item.map(|o| o.result) {
                Ok(Ok(g)) => {
                    assert!(!g.bytes.is_empty());
                    ok += 1;
                }
                _ => failed += 1,
            }
        }
        (ok, failed)
    });
    let secs = t.elapsed().as_secs_f64();
    let mb = written as f64 / (1024.0 * 1024.0);
    assert_eq!(ok, lines, "{failed} lines failed");
    println!("batch ingest: {lines} lines, {mb:.0} MiB results file");
    println!(
        "  baseline, one line at a time: {base_secs:.1} s, {:.1} MiB/s, {:.1} images/s (peak RSS {rss_base:.1} MiB)",
        mb / base_secs,
        lines as f64 / base_secs
    );
    println!(
        "  parsed on every core: {secs:.1} s, {:.1} MiB/s, {:.1} images/s",
        mb / secs,
        lines as f64 / secs
    );
    println!(
        "  throughput ratio: {:.2}x (goal >= 1.8x on 2 cores)",
        base_secs / secs
    );
    println!(
        "  peak RSS {:.1} MiB (after generating the file: {rss_before:.1} MiB; target < 100 MB)",
        peak_rss_mb()
    );
}
