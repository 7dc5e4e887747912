//! Pacing learned from the service: realtime runs through the real binary
//! against an emulator that limits each model to `L` requests per minute
//! (a token bucket of one second's worth) without telling the campaign.
//!
//! Three runs of the same jobs, each on a fresh emulator:
//!
//! - **gemini, learned**: Nano Banana 2 from its default of 100 rpm, no
//!   `[rate_limit]`, and Gemini states no limit: paced on its 429s alone;
//! - **openai, learned**: GPT Image from its default of 20 rpm, no
//!   `[rate_limit]`; the limit comes from `x-ratelimit-limit-requests`;
//! - **baseline**: Gemini with `[rate_limit] rpm = L`, the user stating the
//!   exact limit: what the run achieves when nothing has to be learned.
//!
//! Throughput is measured at the service: from the first call the emulator
//! received to the moment the last image was billed (stats polled every
//! 20 ms), so process start-up and the manifest do not count; the wall time
//! of the whole run is printed too. The goal: at least 0.8 × L, with at
//! most 15 % of calls answered 429.
//!
//! Run: `cargo bench --bench pacing` (`ADLOC_BENCH_JOBS`, `ADLOC_BENCH_RPM`
//! to change the defaults of 300 jobs and L = 600).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// What one run measured.
struct Measured {
    wall: f64,
    service: f64,
    calls: u64,
    refused: u64,
}

fn main() {
    let jobs: usize = env_or("ADLOC_BENCH_JOBS", 300);
    let limit: u32 = env_or("ADLOC_BENCH_RPM", 600);
    let latency_ms = 50;
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!(
        "pacing: {jobs} jobs per run, server-side limit L = {limit} rpm ({:.1}/s), \
         {latency_ms} ms latency, --concurrency 8",
        f64::from(limit) / 60.0
    );
    let runs = [
        ("gemini, learned from 429s", "gemini-3.1-flash-image", ""),
        ("openai, learned from headers", "gpt-image-2.6-sunburst", ""),
        (
            "baseline: rpm = L stated",
            "gemini-3.1-flash-image",
            "stated",
        ),
    ];
    for (label, model, stated) in runs {
        let m = run(&rt, jobs, limit, latency_ms, model, !stated.is_empty());
        let per_s = f64::from(limit) / 60.0;
        let service_rate = (jobs as f64 - 1.0) / m.service;
        println!(
            "  {label:<30} service {service_rate:5.2}/s = {:.3} × L; wall {:.1} s ({:.3} × L); \
             429s {}/{} = {:.1} %",
            service_rate / per_s,
            m.wall,
            jobs as f64 / m.wall / per_s,
            m.refused,
            m.calls,
            100.0 * m.refused as f64 / m.calls.max(1) as f64
        );
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(
    rt: &tokio::runtime::Runtime,
    jobs: usize,
    limit: u32,
    latency_ms: u64,
    model: &str,
    stated: bool,
) -> Measured {
    let openai = model.starts_with("gpt-");
    let faults = adloc_emulator::Faults {
        latency_ms,
        rpm_limit: Some(limit),
        openai: adloc_emulator::OpenAiFaults {
            latency_ms,
            rpm_limit: Some(limit),
            ..Default::default()
        },
        ..Default::default()
    };
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

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("campaigns/pace");
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    let rate_limit = if stated {
        format!("\n[rate_limit]\nrpm = {limit}\n")
    } else {
        String::new()
    };
    std::fs::write(
        dir.join("campaign.toml"),
        format!(
            "name = \"pace\"\nrows = \"rows.csv\"\nlocales = [\"en-US\"]\nmodel = \"{model}\"\nmode = \"realtime\"\n\n[[variants]]\nname = \"hero\"\ntemplate = \"hero.hbs\"\naspect_ratio = \"16:9\"\n{rate_limit}"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("templates/hero.hbs"), "Hero ad: {{row.headline}}").unwrap();
    let mut csv = String::from("id,headline\n");
    for i in 0..jobs {
        let _ = writeln!(csv, "r{i:05},Headline number {i}");
    }
    std::fs::write(dir.join("rows.csv"), csv).unwrap();

    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_adloc"));
    cmd.current_dir(tmp.path())
        .args(["run", "campaigns/pace", "--concurrency", "8"])
        .env("ADLOC_LOG", "warn")
        .stdout(std::process::Stdio::null())
        // A file, not a pipe: nobody reads a pipe while the run goes on.
        .stderr(std::fs::File::create(tmp.path().join("stderr.log")).unwrap());
    if openai {
        cmd.env("OPENAI_API_KEY", "bench-key")
            .env("OPENAI_BASE_URL", emu.openai_base_url());
    } else {
        cmd.args(["--provider", "gemini"])
            .env("GEMINI_API_KEY", "bench-key")
            .env("GOOGLE_GEMINI_BASE_URL", emu.base_url());
    }
    let counts = |s: &adloc_emulator::EmulatorStats| {
        if openai {
            (
                s.openai.generate_calls,
                s.openai.rate_limited,
                s.openai.realtime_billed_images,
            )
        } else {
            (s.generate_calls, s.rate_limited, s.realtime_billed_images)
        }
    };
    let t0 = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let (mut first, mut last) = (None, None);
    let status = loop {
        let (calls, _, billed) = counts(&emu.stats());
        if first.is_none() && calls > 0 {
            first = Some(Instant::now());
        }
        if last.is_none() && billed as usize >= jobs {
            last = Some(Instant::now());
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = t0.elapsed().as_secs_f64();
    let err = std::fs::read_to_string(tmp.path().join("stderr.log")).unwrap_or_default();
    assert!(status.success(), "{err}");
    let (calls, refused, billed) = counts(&emu.stats());
    assert_eq!(billed as usize, jobs);
    let service = match (first, last) {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        _ => wall,
    };
    rt.block_on(emu.shutdown());
    Measured {
        wall,
        service,
        calls,
        refused,
    }
}
