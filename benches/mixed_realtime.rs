//! Mixed-vendor realtime throughput: 2,000 jobs split across two vendors
//! (one variant on Gemini, one on GPT Image), 300 ms of latency per call on
//! both emulated services, `--concurrency 16` (per vendor pool), through the
//! real binary. The ideal is the two pools together: 2 × 16 / 0.3 s ≈ 106.7
//! jobs/s.
//!
//! Each vendor's pool alone, with the same jobs, is measured first as a
//! baseline in the same run.
//!
//! Run: `cargo bench --bench mixed_realtime` (`ADLOC_BENCH_JOBS` for a smaller run).

use std::fmt::Write as _;
use std::time::Instant;

fn main() {
    let jobs: usize = std::env::var("ADLOC_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rows = jobs / 2;
    let concurrency = 16usize;
    let latency = 0.3f64;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut faults = adloc_emulator::Faults {
        latency_ms: (latency * 1000.0) as u64,
        ..Default::default()
    };
    faults.openai.latency_ms = (latency * 1000.0) as u64;
    let emu = rt
        .block_on(adloc_emulator::spawn(
            adloc_emulator::EmulatorConfig {
                seed: 7,
                api_key: Some("bench-key".into()),
                faults,
            },
            0,
        ))
        .unwrap();

    let ideal_pool = concurrency as f64 / latency;
    println!(
        "mixed realtime: {} jobs ({rows} gemini + {rows} openai), concurrency {concurrency} per vendor, {latency} s latency",
        2 * rows
    );
    // Baselines in the same run: each vendor's pool alone, same jobs.
    for (name, variants) in [("gemini alone", "gemini"), ("openai alone", "openai")] {
        let before = emu.stats();
        let secs = run(&emu, rows, variants, concurrency);
        let after = emu.stats();
        let billed = (after.billed_images - before.billed_images)
            + (after.openai.billed_images - before.openai.billed_images);
        assert_eq!(billed as usize, rows, "{name}");
        let rate = rows as f64 / secs;
        println!(
            "  {name}: wall {secs:.2} s, {rate:.1} jobs/s; ideal {ideal_pool:.1}; ratio {:.3}",
            rate / ideal_pool
        );
    }
    let before = emu.stats();
    let secs = run(&emu, rows, "both", concurrency);
    let stats = emu.stats();
    assert_eq!((stats.billed_images - before.billed_images) as usize, rows);
    assert_eq!(
        (stats.openai.billed_images - before.openai.billed_images) as usize,
        rows
    );
    let rate = (2 * rows) as f64 / secs;
    let ideal = 2.0 * ideal_pool;
    println!(
        "  both pools: wall {secs:.2} s, {rate:.1} jobs/s; ideal {ideal:.1} jobs/s; ratio {:.3} (target >= 0.9)",
        rate / ideal
    );
    rt.block_on(emu.shutdown());
}

/// One run of a fresh campaign through the binary: `rows` rows, on Gemini
/// (`gemini`), GPT Image (`openai`) or one variant on each (`both`).
/// Returns the wall time in seconds.
fn run(
    emu: &adloc_emulator::EmulatorHandle,
    rows: usize,
    vendors: &str,
    concurrency: usize,
) -> f64 {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("campaigns/mx");
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    let hero =
        "[[variants]]\nname = \"hero\"\ntemplate = \"hero.hbs\"\naspect_ratio = \"16:9\"\n\n";
    let square = "[[variants]]\nname = \"square\"\ntemplate = \"hero.hbs\"\naspect_ratio = \"1:1\"\nmodel = \"gpt-image-2.6-sunburst\"\nquality = \"low\"\n\n";
    let variants = match vendors {
        "gemini" => hero.to_string(),
        "openai" => square.to_string(),
        _ => format!("{hero}{square}"),
    };
    // The same prompts would hit the emulator's per-prompt billing twice
    // across runs; a per-run tag keeps them distinct.
    std::fs::write(
        dir.join("campaign.toml"),
        format!(
            "name = \"mx\"\nrows = \"rows.csv\"\nlocales = [\"en-US\"]\nmodel = \"gemini-3.1-flash-image\"\nmode = \"realtime\"\n\n{variants}[rate_limit]\nrpm = 1000000\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("templates/hero.hbs"),
        format!("Ad ({vendors}): {{{{row.headline}}}}"),
    )
    .unwrap();
    let mut csv = String::from("id,headline\n");
    for i in 0..rows {
        let _ = writeln!(csv, "r{i:05},Headline number {i}");
    }
    std::fs::write(dir.join("rows.csv"), csv).unwrap();

    let t = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_adloc"))
        .current_dir(tmp.path())
        .args(["run", "campaigns/mx", "--concurrency"])
        .arg(concurrency.to_string())
        .env("GEMINI_API_KEY", "bench-key")
        .env("GOOGLE_GEMINI_BASE_URL", emu.base_url())
        .env("OPENAI_API_KEY", "bench-key")
        .env("OPENAI_BASE_URL", emu.openai_base_url())
        .env("ADLOC_LOG", "warn")
        .output()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    secs
}
