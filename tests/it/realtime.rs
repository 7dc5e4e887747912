//! Gemini realtime: the real client over loopback HTTP against the
//! emulator — faults, blocks, auth, quotas, retry delays and secrecy.

use adloc_emulator::Faults;

use crate::common::*;

const FAST: &str =
    "\n[rate_limit]\nrpm = 60000\n\n[retry]\nbase_delay_ms = 20\nmax_delay_ms = 200\n";

#[test]
fn example_in_realtime_with_15_percent_injected_faults_completes_with_every_asset_paid_once() {
    let emu = Emu::start(Faults {
        rate_429: 0.04,
        retry_delay_s: 0.05,
        rate_500: 0.03,
        rate_503: 0.04,
        rate_504: 0.02,
        rate_reset: 0.02,
        ..Faults::default()
    });
    let ws = Workspace::new();
    ws.append_toml(&FAST.replace("[retry]", "[retry]\nbudget_ratio = 0.5"));
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example", "--mode", "realtime"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let m = ws.manifest();
    assert_manifest_valid(&m);
    // Model-text assets + overlay banners typeset on the art images.
    let ex = example();
    assert_eq!(
        assert_manifest_matches_files(&ws.out(), &m) as u64,
        ex.assets()
    );
    let stats = emu.stats();
    assert!(
        stats.faults_injected > 0,
        "no faults were injected: {stats:?}"
    );
    assert!(
        stats.generate_calls > ex.generations(),
        "faults should have caused retries: {stats:?}"
    );
    // A failed call is not billed, so every image was bought exactly once.
    assert_eq!(stats.billed_images, ex.generations(), "{stats:?}");
    assert!(stats.prompts_billed.values().all(|n| *n == 1));
    let retried = m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["attempts"].as_u64().unwrap() > 1)
        .count();
    assert!(retried > 0);
    for a in m["assets"].as_array().unwrap() {
        assert_eq!(a["provider"], "gemini");
        assert_eq!(a["mode"], "realtime");
        assert_eq!(a["mime_type"], "image/jpeg");
        // 1120 image tokens at $60/M, plus input and thinking tokens.
        // An overlay banner carries its locale's share of its art's cost.
        let share = if a["overlay"].is_null() {
            1.0
        } else {
            ex.locales as f64
        };
        let cost = a["cost_usd"].as_f64().unwrap() * share;
        assert!((0.0672..0.075).contains(&cost), "cost {cost}");
    }
    // A rerun makes zero provider calls.
    let calls = emu.stats().generate_calls;
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example", "--mode", "realtime"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        emu.stats().generate_calls,
        calls,
        "an unchanged rerun called the provider"
    );
}

#[test]
fn each_outcome_class_ends_in_the_right_state_after_the_right_number_of_attempts() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    ws.small_campaign(&[
        ("ok", "a calm lake"),
        ("prompt-block", "EMULATE_BLOCK_PROMPT"),
        ("image-safety", "EMULATE_IMAGE_SAFETY"),
        ("text-only", "EMULATE_TEXT_ONLY"),
        ("no-image", "EMULATE_NO_IMAGE"),
        ("bad-image", "EMULATE_BAD_IMAGE"),
        ("invalid", "EMULATE_INVALID_ARGUMENT"),
    ]);
    ws.append_toml("\n[retry]\nmax_attempts = 3\nbase_delay_ms = 10\nmax_delay_ms = 50\n");
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 3, "partial failure is exit 3: {}", stderr(&o));
    let m = ws.manifest();
    assert_manifest_valid(&m);
    assert_eq!(m["assets"].as_array().unwrap().len(), 1);
    let failure = |id: &str| {
        m["failures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["row_id"] == id)
            .unwrap_or_else(|| panic!("no failure for {id}: {m}"))
            .clone()
    };
    let expect = [
        (
            "prompt-block",
            "blocked",
            "blocked_prompt",
            Some("PROHIBITED_CONTENT"),
            1,
        ),
        (
            "image-safety",
            "blocked",
            "blocked_image",
            Some("IMAGE_SAFETY"),
            1,
        ),
        ("text-only", "failed", "no_image", None, 1),
        ("no-image", "failed", "no_image", Some("NO_IMAGE"), 1),
        ("bad-image", "failed", "undecodable_image", None, 3),
        ("invalid", "failed", "invalid_argument", None, 1),
    ];
    for (id, state, reason, block, attempts) in expect {
        let f = failure(id);
        assert_eq!(f["state"], state, "{id}: {f}");
        assert_eq!(f["reason"], reason, "{id}: {f}");
        assert_eq!(f["attempts"], attempts, "{id}: {f}");
        if let Some(b) = block {
            assert_eq!(f["block_reason"], b, "{id}: {f}");
        }
        assert!(!f["detail"].as_str().unwrap().is_empty(), "{id}: {f}");
    }
    assert!(
        failure("invalid")["detail"].as_str().unwrap().len() > 10,
        "Google's message is kept"
    );
}

#[test]
fn transient_server_errors_are_retried_until_done() {
    for (faults, what) in [
        (
            Faults {
                first_503: 2,
                ..Faults::default()
            },
            "503",
        ),
        (
            Faults {
                first_500: 2,
                ..Faults::default()
            },
            "500",
        ),
        (
            Faults {
                first_504: 2,
                ..Faults::default()
            },
            "504",
        ),
        (
            Faults {
                first_reset: 2,
                ..Faults::default()
            },
            "reset",
        ),
        (
            Faults {
                first_429: 2,
                retry_delay_s: 0.01,
                ..Faults::default()
            },
            "429",
        ),
    ] {
        let emu = Emu::start(faults);
        let ws = Workspace::new();
        ws.small_campaign(&[("one", "a quiet forest")]);
        ws.append_toml("\n[retry]\nbase_delay_ms = 10\nmax_delay_ms = 50\n");
        let o = ws.adloc_gemini(&emu, &["run", "campaigns/example"]);
        assert_eq!(code(&o), 0, "{what}: {}", stderr(&o));
        let m = ws.manifest();
        assert_eq!(m["assets"][0]["attempts"], 3, "{what}: {m}");
        assert_eq!(emu.stats().generate_calls, 3, "{what}");
        assert_eq!(emu.stats().billed_images, 1, "{what}");
    }
}

#[test]
fn a_bad_key_stops_the_run_with_exit_4_and_leaves_every_job_pending() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    ws.append_toml(FAST);
    let wrong = "AIzaWRONG-key-that-must-never-leak-93b1";
    let o = ws.adloc_env(
        &[
            "run",
            "campaigns/example",
            "--provider",
            "gemini",
            "--mode",
            "realtime",
        ],
        &[
            ("GEMINI_API_KEY", wrong),
            ("GOOGLE_GEMINI_BASE_URL", &emu.base_url()),
        ],
    );
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(stderr(&o).contains("unauthenticated"), "{}", stderr(&o));
    let m = ws.manifest();
    // Model-text jobs + banners waiting for their art jobs.
    assert_eq!(
        m["totals"]["pending"],
        example().assets(),
        "{}",
        m["totals"]
    );
    assert_eq!(m["totals"]["failed"], 0);
    assert_eq!(emu.stats().billed_images, 0);
    // The run stopped at once instead of trying every job.
    assert!(emu.stats().generate_calls <= 8, "{:?}", emu.stats());
    assert_key_absent(&ws, &o, wrong);
    // And a missing key entirely is the same run-level refusal.
    let o = ws.adloc(&["run", "campaigns/example", "--provider", "gemini"]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(stderr(&o).contains("GEMINI_API_KEY"), "{}", stderr(&o));
}

fn assert_key_absent(ws: &Workspace, o: &std::process::Output, key: &str) {
    assert!(!stdout(o).contains(key), "key in stdout");
    assert!(!stderr(o).contains(key), "key in stderr");
    for (path, bytes) in ws.all_bytes() {
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
            "key found in {}",
            path.display()
        );
    }
}

#[test]
fn the_api_key_appears_in_no_output_log_database_or_manifest() {
    let emu = Emu::start(Faults {
        rate_503: 0.3,
        rate_429: 0.2,
        retry_delay_s: 0.01,
        ..Faults::default()
    });
    let ws = Workspace::new();
    ws.small_campaign(&[
        ("a", "one"),
        ("b", "two"),
        ("c", "EMULATE_INVALID_ARGUMENT"),
    ]);
    ws.append_toml("\n[retry]\nbase_delay_ms = 10\nmax_delay_ms = 50\nbudget_floor = 50\n");
    let env = emu.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut env_json = env.clone();
    env_json.push(("ADLOC_LOG", "debug"));
    let o = ws.adloc_env(
        &[
            "--log-format",
            "json",
            "run",
            "campaigns/example",
            "--provider",
            "gemini",
        ],
        &env_json,
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("\"level\""),
        "json logs expected: {}",
        stderr(&o)
    );
    assert_key_absent(&ws, &o, KEY);
    let o = ws.adloc_env(&["status", "example"], &env);
    assert_key_absent(&ws, &o, KEY);
}

#[test]
fn the_server_retry_delay_is_honored_before_the_next_attempt() {
    let emu = Emu::start(Faults {
        first_429: 1,
        retry_delay_s: 1.2,
        ..Faults::default()
    });
    let ws = Workspace::new();
    ws.small_campaign(&[("one", "a red kite")]);
    // Our own backoff would retry after at most 20 ms; only the server's
    // RetryInfo can make the gap 1.2 s.
    ws.append_toml("\n[retry]\nbase_delay_ms = 10\nmax_delay_ms = 20\n");
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let rows =
        ws.sql_rows("SELECT started_at, finished_at, outcome, reason FROM attempts ORDER BY id");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0][2], "retry");
    assert_eq!(rows[0][3], "rate_limited");
    let gap = rows[1][0].parse::<i64>().unwrap() - rows[0][1].parse::<i64>().unwrap();
    assert!(
        gap >= 1200,
        "second attempt {gap} ms after the 429, RetryInfo said 1.2 s"
    );
}

#[test]
fn a_per_day_quota_stops_the_run_and_says_retrying_today_is_pointless() {
    let emu = Emu::start(Faults {
        daily_quota_after: Some(3),
        ..Faults::default()
    });
    let ws = Workspace::new();
    ws.append_toml(FAST);
    let o = ws.adloc_gemini(
        &emu,
        &[
            "run",
            "campaigns/example",
            "--mode",
            "realtime",
            "--concurrency",
            "1",
        ],
    );
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("daily_quota_exhausted"), "{err}");
    assert!(err.contains("PerDay"), "the quota is named: {err}");
    assert!(err.contains("pointless"), "{err}");
    let m = ws.manifest();
    assert_eq!(m["totals"]["done"], 3);
    // Every asset (model text and overlay banners) but the 3 done.
    assert_eq!(m["totals"]["pending"], example().assets() - 3);
    assert_eq!(m["totals"]["failed"], 0);
}

#[test]
fn an_outage_spends_the_retry_budget_and_stops_instead_of_storming() {
    let emu = Emu::start(Faults {
        rate_503: 1.0,
        ..Faults::default()
    });
    let ws = Workspace::new();
    ws.append_toml("\n[rate_limit]\nrpm = 60000\n\n[retry]\nbase_delay_ms = 5\nmax_delay_ms = 10\nbudget_floor = 10\nbudget_ratio = 0.2\n");
    let o = ws.adloc_gemini(
        &emu,
        &[
            "run",
            "campaigns/example",
            "--mode",
            "realtime",
            "--concurrency",
            "4",
        ],
    );
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(stderr(&o).contains("retry budget spent"), "{}", stderr(&o));
    let calls = emu.stats().generate_calls;
    // Every first attempt at most, plus the floor and 20 % of them, plus
    // the calls in flight.
    let first = example().generations();
    assert!(
        calls <= first + 10 + first / 5 + 4,
        "retry storm: {calls} calls"
    );
    let m = ws.manifest();
    assert_eq!(m["totals"]["done"], 0);
    assert_eq!(m["totals"]["failed"], 0, "an outage is not the jobs' fault");
}

#[test]
fn the_request_timeout_is_configurable_and_a_timeout_is_retried_then_reported() {
    let emu = Emu::start(Faults {
        latency_ms: 1500,
        ..Faults::default()
    });
    let ws = Workspace::new();
    ws.small_campaign(&[("slow", "a slow sunset")]);
    ws.append_toml("\n[gemini]\nrequest_timeout_s = 0.3\n\n[retry]\nmax_attempts = 2\nbase_delay_ms = 10\nmax_delay_ms = 20\n");
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let f = &ws.manifest()["failures"][0];
    assert_eq!(f["reason"], "timeout", "{f}");
    assert_eq!(f["attempts"], 2, "{f}");
}

#[test]
fn failed_jobs_stay_failed_on_rerun_until_retry_requeues_them() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    ws.small_campaign(&[("ok", "a calm lake"), ("bad", "EMULATE_INVALID_ARGUMENT")]);
    assert_eq!(
        code(&ws.adloc_gemini(&emu, &["run", "campaigns/example"])),
        3
    );
    let calls = emu.stats().generate_calls;
    assert_eq!(
        code(&ws.adloc_gemini(&emu, &["run", "campaigns/example"])),
        3
    );
    assert_eq!(
        emu.stats().generate_calls,
        calls,
        "a rerun retried a failed job"
    );
    let o = ws.adloc(&["retry", "example", "--failed"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("1 job(s) requeued"), "{}", stdout(&o));
    assert_eq!(
        code(&ws.adloc_gemini(&emu, &["run", "campaigns/example"])),
        3
    );
    assert_eq!(
        emu.stats().generate_calls,
        calls + 1,
        "retry requeued exactly the failed job"
    );
}
