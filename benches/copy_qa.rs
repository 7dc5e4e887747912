//! Copy QA: 1,000 model-text images (one Gemini variant) with 10 % of the
//! images painted misspelled by the emulator, 300 ms latency on every call
//! (images and reads), `--concurrency 16`, realtime, through the real
//! binary. Prints
//! - the cost of QA (reads) plus regenerations as a share of the image
//!   spend (goal <= 15 %), from the run's manifest;
//! - the wall time of the run with QA against the same run without `[qa]`
//!   measured first, in the same process (goal <= 1.2x);
//! - the CPU each side used (adloc, and the emulator painting and reading
//!   in this process), against the cores' capacity over the wall time:
//!   when the two together fill the cores, the run is bound by this
//!   machine's CPU, not by the 300 ms latency.
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
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = |label: &str, wall: f64, used: Cpu| {
        println!(
            "  {label} CPU: adloc {:.2} s, emulator {:.2} s = {:.0}% of {cores} cores over the wall",
            used.adloc,
            used.emulator,
            100.0 * (used.adloc + used.emulator) / (wall * cores as f64)
        )
    };
    let (base_secs, base, base_cpu) = run(&emu, jobs, concurrency, false);
    println!(
        "  without QA: wall {base_secs:.2} s, image spend ${:.4}",
        base["totals"]["cost_usd"].as_f64().unwrap()
    );
    cpu("without QA", base_secs, base_cpu);
    let (qa_secs, m, qa_cpu) = run(&emu, jobs, concurrency, true);
    cpu("with QA", qa_secs, qa_cpu);
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

/// CPU seconds used during one run.
#[derive(Clone, Copy)]
struct Cpu {
    /// The adloc process (a waited-for child).
    adloc: f64,
    /// This process: the emulator's painting, reading and serving.
    emulator: f64,
}

/// `(own, waited-for children)` CPU seconds so far, from `/proc/self/stat`
/// (utime + stime, cutime + cstime; proc(5)); zeros where there is none.
fn cpu_now(tick: f64) -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // rest[0] is field 3 (state): utime is field 14, cstime field 17.
    let at = |field: usize| f.get(field - 3).copied().unwrap_or(0.0) / tick;
    (at(14) + at(15), at(16) + at(17))
}

/// Clock ticks per second, as `getconf CLK_TCK` says (100 on Linux).
fn clock_tick() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// One fresh campaign through the binary; returns wall seconds, the
/// manifest and the CPU both sides used.
fn run(
    emu: &adloc_emulator::EmulatorHandle,
    jobs: usize,
    concurrency: usize,
    qa: bool,
) -> (f64, serde_json::Value, Cpu) {
    let tick = clock_tick();
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
    let (own0, child0) = cpu_now(tick);
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
    let (own1, child1) = cpu_now(tick);
    let used = Cpu {
        adloc: child1 - child0,
        emulator: own1 - own0,
    };
    // Exit 3 is a QA failure after the regenerations allowed: still measured.
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(tmp.path().join("out/qa/manifest.json")).unwrap();
    (secs, serde_json::from_str(&text).unwrap(), used)
}
