//! Gemini Batch mode through the real binary and the real client against
//! the emulator: submission, resume after a crash around the create call,
//! failed/expired batches, per-item errors, deadlines, cancel, --no-wait.

use adloc_emulator::{BatchFaults, Faults};

use crate::common::*;

const POLL: (&str, &str) = ("ADLOC_BATCH_POLL_MS", "50");

fn batch_faults(b: BatchFaults) -> Faults {
    Faults {
        batch: b,
        ..Faults::default()
    }
}

fn run_batch(
    ws: &Workspace,
    emu: &Emu,
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut e = emu.env();
    e.push((POLL.0, POLL.1.to_string()));
    for (k, v) in env {
        e.push((k, v.to_string()));
    }
    let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut args = vec!["run", "campaigns/example", "--provider", "gemini"];
    args.extend(extra);
    ws.adloc_env(&args, &e)
}

fn assert_all_done_once(ws: &Workspace, emu: &Emu, mode: &str) {
    let m = ws.manifest();
    assert_manifest_valid(&m);
    // Model-text assets + overlay banners typeset on the art images.
    assert_eq!(
        assert_manifest_matches_files(&ws.out(), &m) as u64,
        example().assets()
    );
    let stats = emu.stats();
    assert_eq!(
        stats.billed_images,
        example().generations(),
        "paid for an image twice: {stats:?}"
    );
    assert!(stats.prompts_billed.values().all(|n| *n == 1), "{stats:?}");
    for a in m["assets"].as_array().unwrap() {
        assert_eq!(a["mode"], mode, "{a}");
    }
    assert!(temporaries(ws.path()).is_empty());
}

#[test]
fn example_in_batch_mode_buys_every_image_once_at_half_price() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    let o = run_batch(&ws, &emu, &[], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_all_done_once(&ws, &emu, "batch");
    let stats = emu.stats();
    assert_eq!(stats.batches_created, 1);
    assert_eq!(stats.files_uploaded, 1, "file input is the default");
    assert_eq!(stats.realtime_billed_images, 0);
    for a in ws.manifest()["assets"].as_array().unwrap() {
        // Half of realtime: 1120 image tokens at $30/M, plus input/thinking.
        // An overlay banner carries its locale's share of its art's cost.
        let share = if a["overlay"].is_null() {
            1.0
        } else {
            example().locales as f64
        };
        let cost = a["cost_usd"].as_f64().unwrap() * share;
        assert!((0.0336..0.0375).contains(&cost), "batch cost {cost}");
    }
    let o = run_batch(&ws, &emu, &[], &[]);
    assert_eq!(code(&o), 0);
    assert_eq!(
        emu.stats().batches_created,
        1,
        "an unchanged rerun created a batch"
    );
}

#[test]
fn a_crash_right_after_the_create_call_never_creates_a_second_remote_batch() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    let o = run_batch(&ws, &emu, &[], &[("ADLOC_CRASH_AT", "batch-after-create")]);
    assert_ne!(code(&o), 0, "the crash point should have killed the run");
    assert_eq!(emu.stats().batches_created, 1);
    let o = run_batch(&ws, &emu, &[], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let stats = emu.stats();
    assert_eq!(
        stats.batches_created, 1,
        "resume created the batch again: {stats:?}"
    );
    assert!(
        stats.batch_display_names.values().all(|n| *n == 1),
        "{stats:?}"
    );
    assert_all_done_once(&ws, &emu, "batch");
}

#[test]
fn a_crash_before_the_create_call_resubmits_once_after_looking_it_up() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    let o = run_batch(&ws, &emu, &[], &[("ADLOC_CRASH_AT", "batch-before-create")]);
    assert_ne!(code(&o), 0);
    assert_eq!(emu.stats().batches_created, 0);
    let o = run_batch(&ws, &emu, &[], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(emu.stats().batches_created, 1);
    assert_all_done_once(&ws, &emu, "batch");
}

#[test]
fn a_429_on_create_is_retried_without_creating_twice() {
    let emu = Emu::start(batch_faults(BatchFaults {
        create_429_first: 2,
        ..BatchFaults::default()
    }));
    let ws = Workspace::new();
    ws.append_toml("\n[retry]\nbase_delay_ms = 10\nmax_delay_ms = 50\n");
    let o = run_batch(&ws, &emu, &[], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(emu.stats().batches_created, 1);
    assert_all_done_once(&ws, &emu, "batch");
}

#[test]
fn failed_and_expired_batches_are_resubmitted() {
    for faults in [
        BatchFaults {
            fail_batches: 1,
            ..BatchFaults::default()
        },
        BatchFaults {
            expire_batches: 1,
            ..BatchFaults::default()
        },
    ] {
        let emu = Emu::start(batch_faults(faults.clone()));
        let ws = Workspace::new();
        let o = run_batch(&ws, &emu, &[], &[]);
        assert_eq!(code(&o), 0, "{faults:?}: {}", stderr(&o));
        assert_eq!(emu.stats().batches_created, 2, "{faults:?}");
        assert_all_done_once(&ws, &emu, "batch");
    }
}

#[test]
fn per_item_errors_truncated_downloads_and_late_output_still_end_with_every_asset() {
    let emu = Emu::start(batch_faults(BatchFaults {
        item_error_rate: 0.1,
        truncate_download_first: 1,
        succeeded_before_output_polls: 2,
        ..BatchFaults::default()
    }));
    let ws = Workspace::new();
    ws.append_toml("\n[retry]\nbase_delay_ms = 10\nmax_delay_ms = 50\n");
    let o = run_batch(&ws, &emu, &[], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        emu.stats().batches_created >= 2,
        "item errors are resubmitted"
    );
    assert_all_done_once(&ws, &emu, "batch");
}

#[test]
fn blocked_items_in_a_batch_are_recorded_with_their_reason() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    ws.small_campaign(&[
        ("fine", "a green field"),
        ("blocked", "EMULATE_IMAGE_SAFETY"),
        ("refused", "EMULATE_BLOCK_PROMPT"),
    ]);
    let o = run_batch(&ws, &emu, &["--mode", "batch"], &[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let m = ws.manifest();
    assert_eq!(m["assets"].as_array().unwrap().len(), 1);
    let reasons: Vec<(String, String)> = m["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["reason"].as_str().unwrap().into(),
                f["block_reason"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert!(
        reasons.contains(&("blocked_image".into(), "IMAGE_SAFETY".into())),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("blocked_prompt".into(), "PROHIBITED_CONTENT".into())),
        "{reasons:?}"
    );
}

#[test]
fn no_wait_submits_and_exits_then_a_later_run_ingests_without_resubmitting() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    let o = run_batch(&ws, &emu, &["--no-wait"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("batch submitted: batches/"),
        "{}",
        stdout(&o)
    );
    // Model-text jobs + banners waiting for their art jobs.
    assert_eq!(ws.manifest()["totals"]["pending"], example().assets());
    let o = ws.adloc(&["status", "example"]);
    assert!(
        stdout(&o).contains(&format!("batch_submitted {}", example().generations())),
        "{}",
        stdout(&o)
    );
    let o = run_batch(&ws, &emu, &[], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(emu.stats().batches_created, 1);
    assert_all_done_once(&ws, &emu, "batch");
}

#[test]
fn cancel_cancels_remote_batches_and_returns_their_jobs_to_pending() {
    let emu = Emu::start(batch_faults(BatchFaults {
        polls_until_done: 1000,
        ..BatchFaults::default()
    }));
    let ws = Workspace::new();
    let o = run_batch(&ws, &emu, &["--no-wait"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = ws.adloc_emu(&emu, &["cancel", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("1 batch(es) cancelled"),
        "{}",
        stdout(&o)
    );
    let o = ws.adloc(&["status", "example"]);
    assert!(
        stdout(&o).contains(&format!("pending {}", example().generations())),
        "{}",
        stdout(&o)
    );
    assert_eq!(emu.stats().billed_images, 0);
}

#[test]
fn at_the_deadline_unfinished_batches_are_cancelled_and_finished_in_realtime() {
    let emu = Emu::start(batch_faults(BatchFaults {
        polls_until_done: 100_000,
        ..BatchFaults::default()
    }));
    let ws = Workspace::new();
    ws.append_toml("\n[rate_limit]\nrpm = 60000\n");
    let deadline = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2)).to_string();
    let o = run_batch(
        &ws,
        &emu,
        &[
            "--mode",
            "auto",
            "--deadline",
            &deadline,
            "--deadline-margin-min",
            "0",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let stats = emu.stats();
    assert_eq!(stats.batches_created, 1);
    assert_eq!(
        stats.batch_billed_images, 0,
        "the cancelled batch billed nothing"
    );
    assert_all_done_once(&ws, &emu, "realtime");
}

#[test]
fn auto_mode_sends_a_small_remainder_in_realtime() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    ws.small_campaign(&[("a", "one"), ("b", "two"), ("c", "three")]);
    let o = run_batch(&ws, &emu, &["--mode", "auto"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(emu.stats().batches_created, 0);
    assert_eq!(emu.stats().realtime_billed_images, 3);
}

#[test]
fn a_failed_batch_can_be_finished_in_realtime_when_configured() {
    let emu = Emu::start(batch_faults(BatchFaults {
        fail_batches: 1,
        ..BatchFaults::default()
    }));
    let ws = Workspace::new();
    ws.append_toml("\n[rate_limit]\nrpm = 60000\n\n[batch]\non_failure = \"realtime\"\n");
    let o = run_batch(&ws, &emu, &["--mode", "batch"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let stats = emu.stats();
    assert_eq!(stats.batches_created, 1, "{stats:?}");
    assert_eq!(stats.batch_billed_images, 0);
    assert_eq!(stats.realtime_billed_images, example().generations());
}

#[test]
fn inline_batch_input_is_used_only_when_asked_for() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    ws.small_campaign(&[("a", "one"), ("b", "two")]);
    ws.append_toml("\n[batch]\ninline_max_bytes = 1000000\n");
    let o = run_batch(&ws, &emu, &["--mode", "batch"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let stats = emu.stats();
    assert_eq!(stats.batches_created, 1);
    assert_eq!(stats.files_uploaded, 0, "inline input uploads no file");
    assert_eq!(stats.batch_billed_images, 2);
}

#[test]
fn many_retryable_item_errors_stay_within_the_retry_budget_of_a_large_batch() {
    // A quarter of the 95 items fail retryably (about 32 retries in all): more
    // than the floor of 10, within 50 % of the first attempts, so the run
    // must finish.
    let emu = Emu::start(batch_faults(BatchFaults {
        item_error_rate: 0.25,
        ..BatchFaults::default()
    }));
    let ws = Workspace::new();
    ws.append_toml(
        "\n[retry]\nbase_delay_ms = 10\nmax_delay_ms = 50\nbudget_ratio = 0.5\nmax_attempts = 8\n",
    );
    let o = run_batch(&ws, &emu, &["--mode", "batch"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(emu.stats().batches_created >= 2);
    assert_all_done_once(&ws, &emu, "batch");
}

#[test]
fn status_on_a_campaign_folder_polls_and_ingests_finished_batches_without_submitting() {
    let emu = Emu::start(batch_faults(BatchFaults {
        polls_until_done: 2,
        ..BatchFaults::default()
    }));
    let ws = Workspace::new();
    let o = run_batch(&ws, &emu, &["--no-wait"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // A name only reports; a folder polls (the first poll finds it running).
    let ex = example();
    let o = ws.adloc_emu(&emu, &["status", "example"]);
    assert!(
        stdout(&o).contains(&format!("batch_submitted {}", ex.generations())),
        "{}",
        stdout(&o)
    );
    let o = ws.adloc_emu(&emu, &["status", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("0 done, {} pending", ex.assets())),
        "{}",
        stdout(&o)
    );
    let o = ws.adloc_emu(&emu, &["status", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("{} done, 0 pending", ex.assets())),
        "{}",
        stdout(&o)
    );
    assert_all_done_once(&ws, &emu, "batch");
    assert_eq!(emu.stats().batches_created, 1);
}
