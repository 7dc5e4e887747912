//! Worker scaling: realtime throughput of 1, 2 and 4 `adloc worker`
//! processes sharing one queue against the emulator at 300 ms latency.
//!
//! Each round enqueues a fresh campaign of `ADLOC_BENCH_JOBS` images
//! (default 480: 80 rows × 6 locales, 512 px so the emulator's painting and
//! adloc's checks stay small next to the latency on a 2-core machine),
//! starts N workers (`--concurrency 4` each, `--until-idle`) and times
//! until the last exits. Throughput is jobs / wall; the figure is the
//! ratio to N × the one-worker throughput measured in the same run (goal
//! >= 0.9).
//!
//! The queue is the state named by `ADLOC_BENCH_STATE`: `sqlite` (default)
//! or a `postgres://` URL of a server you started (each round is a campaign
//! of its own in it).
//!
//! Run: `cargo bench --bench workers`.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LOCALES: [&str; 6] = ["en-US", "de-DE", "fr-FR", "ja-JP", "ko-KR", "es-MX"];
const KEY: &str = "bench-key-workers";
const PER_WORKER: usize = 4;

fn write_campaign(dir: &std::path::Path, name: &str, rows: usize) {
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    let locales: Vec<String> = LOCALES.iter().map(|l| format!("\"{l}\"")).collect();
    let toml = format!(
        "name = \"{name}\"\nrows = \"rows.csv\"\nmodel = \"gemini-3.1-flash-image\"\nmode = \"realtime\"\nlocales = [{}]\n\n[[variants]]\nname = \"square\"\ntemplate = \"square.hbs\"\naspect_ratio = \"1:1\"\nimage_size = \"512\"\n\n[rate_limit]\nrpm = 600000\n",
        locales.join(", "),
    );
    std::fs::write(dir.join("campaign.toml"), toml).unwrap();
    std::fs::write(
        dir.join("templates/square.hbs"),
        "A square ad. Scene: {{row.scene}}. Headline: \"{{row.headline}}\"",
    )
    .unwrap();
    let mut csv = String::from("id,scene,headline");
    for l in &LOCALES[1..] {
        let _ = write!(csv, ",headline.{l}");
    }
    csv.push('\n');
    for r in 0..rows {
        let _ = write!(csv, "row-{r:04},A product shot number {r},Headline {r}");
        for l in &LOCALES[1..] {
            let _ = write!(csv, ",Headline {r} {l}");
        }
        csv.push('\n');
    }
    std::fs::write(dir.join("rows.csv"), csv).unwrap();
}

fn adloc(ws: &std::path::Path, base_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_adloc"));
    cmd.current_dir(ws)
        .env("GEMINI_API_KEY", KEY)
        .env("GOOGLE_GEMINI_BASE_URL", base_url)
        .env_remove("GOOGLE_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env("ADLOC_LOG", "warn")
        .stdout(Stdio::null());
    cmd
}

/// One round: enqueue, then `n` workers until idle. Returns the wall time
/// of the workers.
fn round(base_url: &str, state: &str, n: usize, rows: usize) -> Duration {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path();
    // Each round is a campaign of its own, so rounds can share one database.
    let name = format!("scale-{n}");
    write_campaign(&ws.join("campaigns").join(&name), &name, rows);
    let state = if state == "sqlite" {
        ws.join(".adloc/state.db").display().to_string()
    } else {
        state.to_string()
    };
    let out = adloc(ws, base_url)
        .args([
            "enqueue",
            &format!("campaigns/{name}"),
            "--provider",
            "gemini",
        ])
        .args(["--state", &state])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = Instant::now();
    let workers: Vec<_> = (0..n)
        .map(|_| {
            adloc(ws, base_url)
                .args(["worker", "--until-idle", "--provider", "gemini"])
                .args(["--concurrency", &PER_WORKER.to_string()])
                .args(["--state", &state])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for w in workers {
        let o = w.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let wall = t.elapsed();
    let files = walk(&ws.join("out").join(&name))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
        .count();
    assert_eq!(files, rows * LOCALES.len(), "not every image was written");
    wall
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if e.file_name() != "review" {
                    stack.push(e.path());
                }
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

fn main() {
    let jobs: usize = std::env::var("ADLOC_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(480);
    let rows = jobs.div_ceil(LOCALES.len());
    let state = std::env::var("ADLOC_BENCH_STATE").unwrap_or_else(|_| "sqlite".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let handle = rt
        .block_on(adloc_emulator::spawn(
            adloc_emulator::EmulatorConfig {
                seed: 7,
                api_key: Some(KEY.into()),
                faults: adloc_emulator::Faults {
                    latency_ms: 300,
                    ..adloc_emulator::Faults::default()
                },
            },
            0,
        ))
        .unwrap();
    let base_url = handle.base_url();
    let backend = if state == "sqlite" {
        "SQLite"
    } else {
        "Postgres"
    };
    println!(
        "{} jobs per round, 300 ms latency, {PER_WORKER} calls in flight per worker, {backend} queue",
        rows * LOCALES.len()
    );
    let mut single = None;
    for n in [1usize, 2, 4] {
        let wall = round(&base_url, &state, n, rows);
        let rate = (rows * LOCALES.len()) as f64 / wall.as_secs_f64();
        let one = *single.get_or_insert(rate);
        println!(
            "{n} worker(s): {:>7.2} s  {:>7.1} jobs/s  {:.2}x of linear (goal >= 0.90)",
            wall.as_secs_f64(),
            rate,
            rate / (one * n as f64)
        );
    }
    rt.block_on(handle.shutdown());
}
