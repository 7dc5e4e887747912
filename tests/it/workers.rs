//! `adloc enqueue`, `adloc worker` and `adloc manifest` through the binary:
//! enqueue sends nothing, workers finish what was queued (from the
//! campaign's files kept in the state, not the folder), several workers
//! killed at random moments do every job once and create no batch twice,
//! and the manifest can be rebuilt from the state alone.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use adloc_emulator::{BatchFaults, Faults};

use crate::common::*;
use crate::crash::{assert_consistent, duplicates, paid_jobs, wait_bounded};

const CONCURRENCY: usize = 4;

/// A worker on the workspace's state (its database, or the default file).
fn worker(ws: &Workspace, emu: &Emu) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_adloc"));
    ws.state_env(&mut cmd);
    cmd.current_dir(ws.path())
        .args(["worker", "--until-idle", "--provider", "gemini"])
        .args(["--concurrency", &CONCURRENCY.to_string()])
        .args(["--poll-ms", "100"])
        .env_remove("GOOGLE_API_KEY")
        .env("ADLOC_LOG", "warn")
        .env("ADLOC_BATCH_POLL_MS", "40")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in emu.env() {
        cmd.env(k, v);
    }
    cmd
}

/// Every live job that is done has exactly one successful attempt.
fn assert_each_job_done_once(ws: &Workspace) {
    let twice = ws.sql_rows(
        "SELECT j.id, COUNT(a.id) FROM jobs j LEFT JOIN attempts a
           ON a.job_id = j.id AND a.outcome = 'ok'
         WHERE j.state NOT IN ('superseded', 'retired')
         GROUP BY j.id HAVING COUNT(a.id) <> 1",
    );
    assert!(twice.is_empty(), "jobs not done exactly once: {twice:?}");
    let open = ws.sql_rows("SELECT COUNT(*) FROM jobs WHERE state <> 'done'");
    assert_eq!(open, vec![vec!["0".to_string()]], "jobs left undone");
}

#[test]
fn enqueue_sends_nothing_and_a_worker_finishes_the_campaign_from_the_state() {
    enqueue_then_work(Workspace::new);
}

#[test]
fn on_postgres_enqueue_sends_nothing_and_a_worker_finishes_the_campaign_from_the_state() {
    enqueue_then_work(Workspace::on_postgres);
}

fn enqueue_then_work(workspace: fn() -> Workspace) {
    let emu = Emu::start(Faults::default());
    let ws = workspace();
    ws.append_toml("\n[rate_limit]\nrpm = 600000\n");
    let out = ws.adloc_gemini(
        &emu,
        &["enqueue", "campaigns/example", "--mode", "realtime"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("queued {} job(s)", paid_jobs())),
        "{}",
        stdout(&out)
    );
    assert_eq!(emu.stats().generate_calls, 0, "enqueue sent a request");
    assert!(!ws.out().join("manifest.json").exists());

    // The worker loads the campaign as enqueued: a later edit of the folder
    // changes nothing until it is enqueued again.
    ws.edit("rows.csv", "Spring", "Autumn");
    let out = wait_bounded(worker(&ws, &emu).spawn().unwrap(), "worker");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_consistent(&ws);
    assert_each_job_done_once(&ws);
    assert_eq!(emu.stats().billed_images, paid_jobs());
    assert_eq!(duplicates(&emu), 0);

    // An idle worker with nothing queued exits at once and buys nothing.
    let out = wait_bounded(worker(&ws, &emu).spawn().unwrap(), "idle worker");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(emu.stats().billed_images, paid_jobs());
}

#[test]
fn enqueue_of_a_broken_campaign_names_the_file_and_writes_no_state() {
    let ws = Workspace::new();
    ws.edit("campaign.toml", "[[variants]]", "[[variants]\n");
    let out = ws.adloc(&["enqueue", "campaigns/example"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("campaign.toml:"), "{}", stderr(&out));
    assert!(!ws.state().exists(), "a state file was written");
}

#[test]
fn a_reference_outside_the_campaign_folder_is_refused_at_enqueue() {
    let ws = Workspace::new();
    let png = ws.path().join("logo.png");
    image::RgbImage::from_pixel(8, 8, image::Rgb([200, 10, 10]))
        .save(&png)
        .unwrap();
    ws.append_toml("\n[references]\nfiles = [\"../../logo.png\"]\n");
    let out = ws.adloc(&["enqueue", "campaigns/example"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("outside the campaign folder"),
        "{}",
        stderr(&out)
    );
    // `run` in one process still works with it.
    let out = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn a_brand_file_outside_the_folder_or_a_hidden_reference_is_refused_at_enqueue_by_name() {
    // Enqueue proves the kept files are the ones the load read, without
    // expanding the campaign again: each file that would not travel is
    // named, and nothing is queued.
    let ws = Workspace::new();
    let png = ws.path().join("logo.png");
    image::RgbaImage::from_pixel(16, 8, image::Rgba([200, 10, 10, 255]))
        .save(&png)
        .unwrap();
    ws.append_toml("\n[brand]\nlogo = \"../../logo.png\"\n");
    let out = ws.adloc(&["enqueue", "campaigns/example"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("logo.png") && stderr(&out).contains("outside its folder"),
        "{}",
        stderr(&out)
    );
    assert!(!ws.state().exists(), "a state file was written");

    let ws = Workspace::new();
    let hidden = ws.campaign().join(".private");
    std::fs::create_dir_all(&hidden).unwrap();
    image::RgbImage::from_pixel(8, 8, image::Rgb([10, 200, 10]))
        .save(hidden.join("ref.png"))
        .unwrap();
    ws.append_toml("\n[references]\nfiles = [\".private/ref.png\"]\n");
    let out = ws.adloc(&["enqueue", "campaigns/example"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ref.png") && stderr(&out).contains("not kept with it"),
        "{}",
        stderr(&out)
    );
    assert!(!ws.state().exists(), "a state file was written");
}

#[test]
fn the_manifest_is_rebuilt_from_the_state_alone() {
    let ws = Workspace::new();
    let out = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let before = ws.manifest();
    std::fs::remove_dir_all(ws.campaign()).unwrap();
    std::fs::remove_dir_all(ws.path().join("templates")).unwrap();
    std::fs::remove_file(ws.out().join("manifest.json")).unwrap();
    std::fs::remove_file(ws.out().join("manifest.approved.json")).unwrap();

    let out = ws.adloc(&["manifest", "example"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut after = ws.manifest();
    assert_manifest_valid(&after);
    assert!(ws.out().join("manifest.approved.json").is_file());
    let mut before = before;
    for m in [&mut before, &mut after] {
        m.as_object_mut().unwrap().remove("generated_at");
    }
    assert_eq!(before, after, "the rebuilt manifest differs");
    assert_consistent(&ws);

    let out = ws.adloc(&["manifest", "nope"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("`nope`"), "{}", stderr(&out));
}

fn kill(child: &mut Child) -> bool {
    let running = matches!(child.try_wait(), Ok(None));
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    running
}

/// Four workers on one queued campaign, SIGKILLed at seeded random moments
/// and restarted; then they run until idle.
fn four_workers_with_kills(ws: &Workspace, emu: &Emu, seed: u64) -> u64 {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut workers: Vec<Child> = (0..4).map(|_| worker(ws, emu).spawn().unwrap()).collect();
    let mut kills = 0u64;
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(rng.u64(100..500)));
        let i = rng.usize(..workers.len());
        if kill(&mut workers[i]) {
            kills += 1;
        }
        workers[i] = worker(ws, emu).spawn().unwrap();
    }
    for (i, w) in workers.into_iter().enumerate() {
        let out = wait_bounded(w, "worker");
        assert_eq!(
            out.status.code(),
            Some(0),
            "worker {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Whatever a killed worker held last is taken back by the next pass.
    let out = wait_bounded(worker(ws, emu).spawn().unwrap(), "final worker");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    kills
}

#[test]
fn four_workers_killed_at_random_moments_do_every_realtime_job_once() {
    realtime_kills(Workspace::new);
}

#[test]
fn four_workers_on_postgres_killed_at_random_moments_do_every_realtime_job_once() {
    realtime_kills(Workspace::on_postgres);
}

fn realtime_kills(workspace: fn() -> Workspace) {
    let emu = Emu::start(Faults {
        latency_ms: 60,
        latency_jitter_ms: 60,
        ..Faults::default()
    });
    let ws = workspace();
    ws.append_toml("\n[rate_limit]\nrpm = 600000\n");
    let out = ws.adloc_gemini(
        &emu,
        &["enqueue", "campaigns/example", "--mode", "realtime"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let kills = four_workers_with_kills(&ws, &emu, 0x4000);
    assert!(kills >= 3, "too few kills landed mid-run ({kills})");
    assert_consistent(&ws);
    assert_each_job_done_once(&ws);
    let dup = duplicates(&emu);
    eprintln!("4 workers, realtime: {kills} kills, {dup} images paid twice");
    // Only the calls in flight in a killed worker can be paid twice.
    assert!(dup <= kills * CONCURRENCY as u64, "{dup} for {kills} kills");
}

#[test]
fn four_workers_killed_at_random_moments_never_create_a_batch_twice() {
    batch_kills(Workspace::new);
}

#[test]
fn four_workers_on_postgres_killed_at_random_moments_never_create_a_batch_twice() {
    batch_kills(Workspace::on_postgres);
}

fn batch_kills(workspace: fn() -> Workspace) {
    let emu = Emu::start(Faults {
        latency_ms: 20,
        batch: BatchFaults {
            polls_until_done: 3,
            ..BatchFaults::default()
        },
        ..Faults::default()
    });
    let ws = workspace();
    ws.append_toml("\n[rate_limit]\nrpm = 600000\n\n[batch]\nmax_requests = 10\n");
    let out = ws.adloc_gemini(&emu, &["enqueue", "campaigns/example", "--mode", "batch"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let kills = four_workers_with_kills(&ws, &emu, 0xBA7C_4000);
    assert_consistent(&ws);
    assert_each_job_done_once(&ws);
    let stats = emu.stats();
    eprintln!(
        "4 workers, batch: {kills} kills, {} batches",
        stats.batches_created
    );
    assert!(
        stats.batch_display_names.values().all(|n| *n == 1),
        "a batch was created twice: {stats:?}"
    );
    assert_eq!(
        stats.billed_images,
        paid_jobs(),
        "batch paid twice: {stats:?}"
    );
}

/// Workers' stdout: one line per campaign they served.
fn worker_stdout(ws: &Workspace, emu: &Emu, env: &[(&str, &str)]) -> Child {
    let mut cmd = worker(ws, emu);
    cmd.stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

#[test]
fn of_three_workers_ending_together_only_the_last_writes_the_manifest() {
    let emu = Emu::start(Faults {
        latency_ms: 300,
        ..Faults::default()
    });
    let ws = Workspace::new();
    ws.append_toml("\n[rate_limit]\nrpm = 600000\n");
    let out = ws.adloc_gemini(
        &emu,
        &["enqueue", "campaigns/example", "--mode", "realtime"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let workers: Vec<Child> = (0..3).map(|_| worker_stdout(&ws, &emu, &[])).collect();
    let mut written = 0;
    let mut served = 0;
    for (i, w) in workers.into_iter().enumerate() {
        let out = wait_bounded(w, "worker");
        assert_eq!(
            out.status.code(),
            Some(0),
            "worker {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if line.starts_with("example:") {
                served += 1;
                if !line.contains("written by the runner that ended last") {
                    written += 1;
                }
            }
        }
    }
    assert_eq!(served, 3, "each worker made a pass over the campaign");
    assert_eq!(written, 1, "the manifest was written by exactly one pass");
    assert_consistent(&ws);
    assert_each_job_done_once(&ws);
}

#[test]
fn a_worker_publishes_a_finished_campaign_whose_elected_writer_died_before_the_manifest() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    ws.append_toml("\n[rate_limit]\nrpm = 600000\n");
    let out = ws.adloc_gemini(
        &emu,
        &["enqueue", "campaigns/example", "--mode", "realtime"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The only runner is elected to write the manifest and dies (abort,
    // like kill -9) right then: every job is done, nothing is published.
    let out = wait_bounded(
        worker_stdout(&ws, &emu, &[("ADLOC_CRASH_AT", "elected-before-manifest")]),
        "crashing worker",
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(!ws.out().join("manifest.json").exists());
    let open = ws.sql_rows("SELECT COUNT(*) FROM jobs WHERE state <> 'done'");
    assert_eq!(open, vec![vec!["0".to_string()]]);
    let billed = emu.stats().billed_images;

    // An idle worker sees the campaign out of date with nobody left to
    // write it, writes it, and buys nothing.
    let out = wait_bounded(worker_stdout(&ws, &emu, &[]), "worker");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("example: 1 pass(es)"), "{text}");
    assert_consistent(&ws);
    assert_eq!(emu.stats().billed_images, billed);
    // Then it is current: the next idle worker makes no pass.
    let out = wait_bounded(worker_stdout(&ws, &emu, &[]), "idle worker");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("example:"),
        "a pass over a published campaign"
    );
}
