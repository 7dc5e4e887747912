//! Copy QA: 1,000 model-text images (one Gemini variant) with 10 % of the
//! images painted misspelled by the emulator, 300 ms latency on every call
//! (images and reads), `--concurrency 16`, realtime, through the real
//! binary. Prints
//! - the cost of QA (reads) plus regenerations as a share of the image
//!   spend (goal <= 15 %), from the run's manifest;
//! - the wall time of the run with QA against the same run without `[qa]`
//!   measured first, in the same process (goal <= 1.2x).
//!
//! Run: `cargo bench --bench copy_qa` (`ADLOC_BENCH_JOBS` for a smaller run).

use std::fmt::Write as _;
use std::time::Instant;

fn main() {
    let jobs: usize = std::env::var("ADLOC_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let concurrency = 16usize;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt
        .block_on(adloc_emulator::spawn(
            adloc_emulator::EmulatorConfig {
                seed: 11,
                api_key: Some("bench-key".into()),
                faults: adloc_emulator::Faults {
                    latency_ms: 300,
                    misspell_rate: 0.10,
                    ..Default::default()
                },
            },
            0,
        ))
        .unwrap();
    println!(
        "copy QA: {jobs} images, 10% misspelled, 300 ms latency, concurrency {concurrency}, realtime"
    );
    let (base_secs, base) = run(&emu, jobs, concurrency, false);
    println!(
        "  without QA: wall {base_secs:.2} s, image spend ${:.4}",
        base["totals"]["cost_usd"].as_f64().unwrap()
    );
    let (qa_secs, m) = run(&emu, jobs, concurrency, true);
    let t = &m["totals"];
    let image = t["cost_usd"].as_f64().unwrap();
    let reads = t["qa_cost_usd"].as_f64().unwrap();
    let regen = t["qa_regeneration_cost_usd"].as_f64().unwrap();
    println!(
        "  with QA: wall {qa_secs:.2} s; {} passed first time, {} regenerated, {} failed; image spend ${image:.4}, reads ${reads:.4}, regenerations ${regen:.4}",
        t["qa_pass"], t["qa_regenerated"], t["qa_failed"]
    );
    println!(
        "  QA + regenerations / image spend: {:.1}% (goal <= 15%)",
        100.0 * (reads + regen) / image
    );
    println!(
        "  wall with QA / without: {:.3}x (goal <= 1.2x)",
        qa_secs / base_secs
    );
    rt.block_on(emu.shutdown());
}

/// One fresh campaign through the binary; returns wall seconds and the manifest.
fn run(
    emu: &adloc_emulator::EmulatorHandle,
    jobs: usize,
    concurrency: usize,
    qa: bool,
) -> (f64, serde_json::Value) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("campaigns/qa");
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    let qa_table = if qa {
        "[qa]\nreader = \"gemini-3.1-flash-lite\"\nexpect = [\"headline\"]\nmax_regenerations = 3\n\n"
    } else {
        ""
    };
    std::fs::write(
        dir.join("campaign.toml"),
        format!(
            "name = \"qa\"\nrows = \"rows.csv\"\nlocales = [\"en-US\"]\nmodel = \"gemini-3.1-flash-image\"\nmode = \"realtime\"\n\n\
             [[variants]]\nname = \"hero\"\ntemplate = \"hero.hbs\"\naspect_ratio = \"16:9\"\n\n\
             {qa_table}[rate_limit]\nrpm = 1000000\n"
        ),
    )
    .unwrap();
    // A per-run tag keeps the prompts of the two runs distinct.
    std::fs::write(
        dir.join("templates/hero.hbs"),
        format!(
            "Ad {}: headline \"{{{{row.headline}}}}\"",
            if qa { "q" } else { "b" }
        ),
    )
    .unwrap();
    let mut csv = String::from("id,headline\n");
    for i in 0..jobs {
        let _ = writeln!(csv, "r{i:05},Own the ridge {i}.");
    }
    std::fs::write(dir.join("rows.csv"), csv).unwrap();
    let t = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_adloc"))
        .current_dir(tmp.path())
        .args(["run", "campaigns/qa", "--concurrency"])
        .arg(concurrency.to_string())
        .env("GEMINI_API_KEY", "bench-key")
        .env("GOOGLE_GEMINI_BASE_URL", emu.base_url())
        .env_remove("OPENAI_API_KEY")
        .env("ADLOC_LOG", "warn")
        .output()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    // Exit 3 is a QA failure after the regenerations allowed: still measured.
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(tmp.path().join("out/qa/manifest.json")).unwrap();
    (secs, serde_json::from_str(&text).unwrap())
}
