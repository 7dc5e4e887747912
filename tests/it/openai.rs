//! GPT Image through OpenAI's API, through the binary against the emulator's
//! OpenAI surface: a variant on GPT Image, references through edits, a
//! Gemini outage failing over to GPT Image, refusals and key hygiene.

use adloc_emulator::Faults;

use crate::common::*;

/// A one-locale campaign with `rows` and a hero variant on `model` (a TOML
/// value: a string or a chain), realtime, fast retries, no client pacing.
fn gpt_campaign(ws: &Workspace, rows: &[(&str, &str)], model: &str, extra: &str) {
    ws.small_campaign(rows);
    let p = ws.campaign().join("campaign.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    let text = text.replace(
        "aspect_ratio = \"16:9\"\n",
        &format!("aspect_ratio = \"16:9\"\nmodel = {model}\n"),
    );
    std::fs::write(
        &p,
        format!("{text}\n[retry]\nbase_delay_ms = 1\nmax_delay_ms = 5\n{extra}"),
    )
    .unwrap();
}

/// A chain: Nano Banana 2 first, GPT Image if not.
const CHAIN: &str = "[\"gemini-3.1-flash-image\", \"gpt-image-2.6-sunburst\"]";

/// An emulator whose every Gemini batch create answers 503.
fn gemini_batch_outage() -> Emu {
    Emu::start(Faults {
        batch: adloc_emulator::BatchFaults {
            rate_503: 1.0,
            ..Default::default()
        },
        ..Faults::default()
    })
}

/// Both vendors' keys and endpoints, and a fast batch poll.
fn batch_env(emu: &Emu) -> Vec<(&'static str, String)> {
    let mut env = emu.both_env();
    env.push(("ADLOC_BATCH_POLL_MS", "40".to_string()));
    env
}

fn assets(ws: &Workspace) -> Vec<serde_json::Value> {
    ws.manifest()["assets"].as_array().unwrap().clone()
}

#[test]
fn a_variant_on_gpt_image_is_bought_from_openai_with_its_exact_size_and_usage_cost() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[("a", "a ridge"), ("b", "a lake"), ("c", "a forest")],
        "\"gpt-image-2.6-sunburst\"\nquality = \"high\"",
        "",
    );
    let o = ws.adloc_with(&emu.openai_env(), &["run", "campaigns/example"]);
    assert_eq!(
        code(&o),
        0,
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    let m = ws.manifest();
    assert_manifest_valid(&m);
    assert_eq!(assert_manifest_matches_files(&ws.out(), &m), 3);
    for a in assets(&ws) {
        assert_eq!(a["provider"], "openai", "{a}");
        assert_eq!(a["model"], "gpt-image-2.6-sunburst");
        assert_eq!(
            (a["width"].as_u64(), a["height"].as_u64()),
            (Some(1376), Some(768))
        );
        assert_eq!(a["mime_type"], "image/png");
        assert!(a["cost_usd"].as_f64().unwrap() > 0.0, "{a}");
    }
    let s = emu.stats();
    assert_eq!(s.openai.realtime_billed_images, 3);
    assert_eq!(s.generate_calls, 0, "Gemini was asked");
    // A rerun pays for nothing.
    let o = ws.adloc_with(&emu.openai_env(), &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(emu.stats().openai.realtime_billed_images, 3);
}

#[test]
fn reference_images_go_through_the_edits_endpoint() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[("a", "a ridge"), ("b", "a lake")],
        "\"gpt-image-2.6-sunburst\"",
        "\n[references]\nfiles = [\"logo.png\"]\n",
    );
    image::RgbImage::from_pixel(32, 32, image::Rgb([200, 10, 10]))
        .save(ws.campaign().join("logo.png"))
        .unwrap();
    let o = ws.adloc_with(&emu.openai_env(), &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let s = emu.stats().openai;
    assert_eq!(s.edit_calls, 2, "{s:?}");
    assert_eq!(s.edit_images_received, 2, "{s:?}");
    assert_eq!(s.generate_calls, 0, "{s:?}");
}

#[test]
fn a_gemini_outage_fails_over_to_gpt_image_and_the_run_exits_0() {
    let emu = Emu::start(Faults {
        rate_503: 1.0,
        ..Faults::default()
    });
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[("a", "a ridge"), ("b", "a lake"), ("c", "a forest")],
        CHAIN,
        "max_attempts = 50\n",
    );
    let o = ws.adloc_with(&emu.both_env(), &["run", "campaigns/example"]);
    assert_eq!(
        code(&o),
        0,
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    let m = ws.manifest();
    assert_manifest_valid(&m);
    assert_eq!(assert_manifest_matches_files(&ws.out(), &m), 3);
    for a in assets(&ws) {
        assert_eq!(a["provider"], "openai", "{a}");
        assert_eq!(a["model"], "gpt-image-2.6-sunburst");
        assert_eq!(a["fallback_from"], "gemini-3.1-flash-image", "{a}");
        assert_eq!(a["fallback_reason"], "retry_budget_exhausted", "{a}");
    }
    assert!(emu.stats().generate_calls > 0, "Gemini was never tried");
    assert_eq!(emu.stats().openai.realtime_billed_images, 3);
    // Gemini recovers; the fallback's images stay: nothing is bought again.
    emu.set_faults(Faults::default());
    let before = emu.stats();
    let o = ws.adloc_with(&emu.both_env(), &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let after = emu.stats();
    assert_eq!(after.billed_images, before.billed_images);
    assert_eq!(after.openai.billed_images, before.openai.billed_images);
    // Unless asked: `retry --fallbacks` brings the primary back.
    let o = ws.adloc(&["retry", "example", "--fallbacks"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = ws.adloc_with(&emu.both_env(), &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for a in assets(&ws) {
        assert_eq!(a["model"], "gemini-3.1-flash-image", "{a}");
        assert!(a.get("fallback_from").is_none(), "{a}");
    }
}

#[test]
fn a_shut_down_model_is_refused_at_load_naming_its_replacement() {
    let ws = Workspace::new();
    gpt_campaign(&ws, &[("a", "a ridge")], "\"gpt-image-1\"", "");
    let o = ws.adloc(&["plan", "campaigns/example"]);
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{err}");
    assert!(err.contains("campaign.toml:"), "{err}");
    assert!(err.contains("shut down on 2026-10-23"), "{err}");
    assert!(err.contains("gpt-image-2.6-sunburst"), "{err}");
    assert!(!ws.path().join(".adloc").exists());
}

#[test]
fn plan_shows_the_chain_and_the_budget_uses_the_worst_case() {
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[("a", "a ridge"), ("b", "a lake")],
        "[\"gemini-3.1-flash-lite-image\", \"gpt-image-2.6-sunburst\"]\nquality = \"high\"",
        "",
    );
    let o = ws.adloc(&["plan", "campaigns/example"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        out.contains("variant hero: gemini-3.1-flash-lite-image → gpt-image-2.6-sunburst (quality high); falls back on outage, quota, model_unavailable"),
        "{out}"
    );
    assert!(out.contains("worst case if every job fell back"), "{out}");
    // A budget above the primary's estimate but below the worst case refuses.
    let emu = Emu::start(Faults::default());
    ws.append_toml("\n[budget]\nmax_usd = 0.1\n");
    let o = ws.adloc_with(&emu.both_env(), &["run", "campaigns/example"]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(stderr(&o).contains("exceeds the budget"), "{}", stderr(&o));
    assert_eq!(
        emu.stats().openai.generate_calls + emu.stats().generate_calls,
        0
    );
}

#[test]
fn a_moderation_block_is_blocked_with_its_reason() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[("a", "a ridge"), ("b", "EMULATE_MODERATION")],
        "\"gpt-image-2.6-sunburst\"",
        "",
    );
    let o = ws.adloc_with(&emu.openai_env(), &["run", "campaigns/example"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let m = ws.manifest();
    let f = &m["failures"][0];
    assert_eq!(f["row_id"], "b");
    assert_eq!(f["state"], "blocked");
    assert_eq!(f["reason"], "blocked_prompt");
    assert_eq!(assets(&ws).len(), 1);
}

#[test]
fn insufficient_quota_stops_the_run_with_exit_4_and_leaves_jobs_pending() {
    let emu = Emu::start(Faults::default());
    let mut f = Faults::default();
    f.openai.insufficient_quota_after = Some(1);
    emu.set_faults(f);
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[("a", "a ridge"), ("b", "a lake"), ("c", "a forest")],
        "\"gpt-image-2.6-sunburst\"",
        "",
    );
    let o = ws.adloc_with(
        &emu.openai_env(),
        &["run", "campaigns/example", "--concurrency", "1"],
    );
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(stderr(&o).contains("credit_exhausted"), "{}", stderr(&o));
    let m = ws.manifest();
    assert_eq!(m["totals"]["done"], 1);
    assert_eq!(m["totals"]["pending"], 2);
}

#[test]
fn the_openai_key_appears_only_in_the_authorization_header() {
    let emu = Emu::start(Faults {
        ..Faults::default()
    });
    let mut f = Faults::default();
    f.openai.rate_503 = 0.3;
    f.openai.rate_429 = 0.2;
    f.openai.retry_after_ms = 5;
    emu.set_faults(f);
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[
            ("a", "one"),
            ("b", "two"),
            ("c", "EMULATE_INVALID_ARGUMENT"),
        ],
        "\"gpt-image-2.6-sunburst\"",
        "",
    );
    let o = ws.adloc_with(
        &emu.openai_env(),
        &["--log-format", "json", "run", "campaigns/example"],
    );
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    assert!(!stdout(&o).contains(OPENAI_KEY) && !stderr(&o).contains(OPENAI_KEY));
    for (path, bytes) in ws.all_bytes() {
        assert!(
            !bytes
                .windows(OPENAI_KEY.len())
                .any(|w| w == OPENAI_KEY.as_bytes()),
            "key found in {}",
            path.display()
        );
    }
}

/// Run with extra environment on top of the OpenAI key and endpoint.
fn run_openai(
    ws: &Workspace,
    emu: &Emu,
    extra: &[(&'static str, &str)],
    args: &[&str],
) -> std::process::Output {
    let mut env = emu.openai_env();
    env.push(("ADLOC_BATCH_POLL_MS", "40".to_string()));
    for (k, v) in extra {
        env.push((k, v.to_string()));
    }
    let mut all = vec!["run", "campaigns/example"];
    all.extend_from_slice(args);
    ws.adloc_with(&env, &all)
}

#[test]
fn an_openai_batch_is_bought_at_half_price_and_never_created_twice_across_crashes() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[
            ("a", "a ridge"),
            ("b", "a lake"),
            ("c", "a forest"),
            ("d", "a dune"),
        ],
        "\"gpt-image-2.6-sunburst\"",
        "",
    );
    // Killed right after the create call returned, before it was recorded:
    // the rerun must find the batch by its tag instead of creating another.
    let o = run_openai(
        &ws,
        &emu,
        &[("ADLOC_CRASH_AT", "batch-after-create")],
        &["--mode", "batch"],
    );
    assert_ne!(code(&o), 0, "the crash point did not fire");
    assert_eq!(emu.stats().openai.batches_created, 1);
    let o = run_openai(&ws, &emu, &[], &["--mode", "batch"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let s = emu.stats().openai;
    assert_eq!(s.batches_created, 1, "a batch was created twice: {s:?}");
    assert!(s.batch_metadata.values().all(|n| *n == 1), "{s:?}");
    assert_eq!(s.batch_billed_images, 4);
    assert_eq!(s.realtime_billed_images, 0);
    let m = ws.manifest();
    assert_manifest_valid(&m);
    assert_eq!(assert_manifest_matches_files(&ws.out(), &m), 4);
    for a in m["assets"].as_array().unwrap() {
        assert_eq!(a["mode"], "batch", "{a}");
        assert_eq!(a["provider"], "openai", "{a}");
    }
    // Half the realtime price for the same images.
    let batch_cost = m["totals"]["cost_usd"].as_f64().unwrap();
    let rt = Workspace::new();
    gpt_campaign(
        &rt,
        &[
            ("a", "a ridge"),
            ("b", "a lake"),
            ("c", "a forest"),
            ("d", "a dune"),
        ],
        "\"gpt-image-2.6-sunburst\"",
        "",
    );
    let o = run_openai(&rt, &emu, &[], &["--mode", "realtime"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let rt_cost = rt.manifest()["totals"]["cost_usd"].as_f64().unwrap();
    assert!(
        (batch_cost * 2.0 - rt_cost).abs() < 1e-5,
        "batch {batch_cost} vs realtime {rt_cost}"
    );
}

#[test]
fn a_crash_before_the_batch_create_resubmits_exactly_once() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[("a", "a ridge"), ("b", "a lake")],
        "\"gpt-image-2.6-sunburst\"",
        "",
    );
    let o = run_openai(
        &ws,
        &emu,
        &[("ADLOC_CRASH_AT", "batch-before-create")],
        &["--mode", "batch"],
    );
    assert_ne!(code(&o), 0, "the crash point did not fire");
    assert_eq!(emu.stats().openai.batches_created, 0);
    let o = run_openai(&ws, &emu, &[], &["--mode", "batch"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert_eq!(emu.stats().openai.batches_created, 1);
    assert_eq!(emu.stats().openai.batch_billed_images, 2);
}

#[test]
fn a_realtime_crash_after_the_file_is_written_pays_for_nothing_twice_but_that_call() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[("a", "a ridge"), ("b", "a lake"), ("c", "a forest")],
        "\"gpt-image-2.6-sunburst\"",
        "",
    );
    let o = run_openai(
        &ws,
        &emu,
        &[("ADLOC_CRASH_AT", "before-job-update")],
        &["--mode", "realtime", "--concurrency", "1"],
    );
    assert_ne!(code(&o), 0, "the crash point did not fire");
    let o = run_openai(&ws, &emu, &[], &["--mode", "realtime"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let m = ws.manifest();
    assert_eq!(assert_manifest_matches_files(&ws.out(), &m), 3);
    assert!(temporaries(ws.path()).is_empty());
    // The one call in flight at the kill is paid again; nothing else.
    let twice: u64 = emu
        .stats()
        .openai
        .prompts_billed
        .values()
        .map(|n| n.saturating_sub(1))
        .sum();
    assert!(twice <= 1, "{twice} images paid twice");
}

#[test]
fn a_gemini_batch_outage_fails_over_to_gpt_image_batches_and_the_run_exits_0() {
    let emu = gemini_batch_outage();
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[("a", "a ridge"), ("b", "a lake"), ("c", "a forest")],
        CHAIN,
        "max_attempts = 50\n",
    );
    let env = batch_env(&emu);
    let o = ws.adloc_with(&env, &["run", "campaigns/example", "--mode", "batch"]);
    assert_eq!(
        code(&o),
        0,
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    let s = emu.stats();
    assert_eq!(
        s.batches_created, 0,
        "no Gemini batch can be created: {s:?}"
    );
    assert!(
        s.faults_injected > 0,
        "Gemini's batch create was never tried"
    );
    assert_eq!(s.openai.batches_created, 1, "{:?}", s.openai);
    assert_eq!(s.openai.batch_billed_images, 3);
    assert_eq!(s.openai.realtime_billed_images, 0);
    let m = ws.manifest();
    assert_manifest_valid(&m);
    assert_eq!(assert_manifest_matches_files(&ws.out(), &m), 3);
    for a in assets(&ws) {
        assert_eq!(a["provider"], "openai", "{a}");
        assert_eq!(a["mode"], "batch", "{a}");
        assert_eq!(a["fallback_from"], "gemini-3.1-flash-image", "{a}");
        assert_eq!(a["fallback_reason"], "retry_budget_exhausted", "{a}");
    }
}

#[test]
fn a_batch_vendor_failure_with_no_fallback_left_stops_with_exit_4_and_jobs_pending() {
    let emu = gemini_batch_outage();
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[("a", "a ridge"), ("b", "a lake")],
        "\"gemini-3.1-flash-image\"",
        "max_attempts = 50\n",
    );
    let env = batch_env(&emu);
    let o = ws.adloc_with(&env, &["run", "campaigns/example", "--mode", "batch"]);
    assert_eq!(
        code(&o),
        4,
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(ws.manifest()["totals"]["pending"], 2);
    assert_eq!(emu.stats().openai.billed_images, 0);
}

/// Six rows, hero and square on Gemini (12 jobs) and story on GPT Image
/// (6 jobs), auto mode with small remainders below 10 going realtime.
fn two_vendor_campaign(ws: &Workspace) {
    let rows: Vec<(String, String)> = (0..6)
        .map(|i| (format!("r{i}"), format!("scene {i}")))
        .collect();
    let rows: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    ws.small_campaign(&rows);
    let dir = ws.campaign();
    let mut text = std::fs::read_to_string(dir.join("campaign.toml")).unwrap();
    text.push_str(
        "\n[[variants]]\nname = \"square\"\ntemplate = \"hero.hbs\"\naspect_ratio = \"1:1\"\n\
         \n[[variants]]\nname = \"story\"\ntemplate = \"hero.hbs\"\naspect_ratio = \"9:16\"\nmodel = \"gpt-image-2.6-sunburst\"\n\
         \n[batch]\nauto_realtime_below = 10\n",
    );
    std::fs::write(dir.join("campaign.toml"), text).unwrap();
}

#[test]
fn auto_mode_decides_per_vendor_a_small_remainder_goes_realtime_the_rest_batches() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    two_vendor_campaign(&ws);
    let env = batch_env(&emu);
    let o = ws.adloc_with(&env, &["run", "campaigns/example", "--mode", "auto"]);
    assert_eq!(
        code(&o),
        0,
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    let s = emu.stats();
    assert_eq!(s.batch_billed_images, 12, "{s:?}");
    assert_eq!(s.realtime_billed_images, 0);
    assert_eq!(s.openai.realtime_billed_images, 6, "{:?}", s.openai);
    assert_eq!(s.openai.batches_created, 0);
    for a in assets(&ws) {
        let want = if a["provider"] == "openai" {
            "realtime"
        } else {
            "batch"
        };
        assert_eq!(a["mode"], want, "{a}");
    }
}

#[test]
fn a_run_killed_after_failing_over_resumes_on_the_fallback_and_pays_nothing_twice() {
    let emu = Emu::start(Faults {
        rate_503: 1.0,
        ..Faults::default()
    });
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[
            ("a", "a ridge"),
            ("b", "a lake"),
            ("c", "a forest"),
            ("d", "a dune"),
        ],
        CHAIN,
        "max_attempts = 50\n",
    );
    // Killed like `kill -9` while the second fallback image is being recorded.
    let mut env = emu.both_env();
    env.push(("ADLOC_CRASH_AT", "before-job-update:2".to_string()));
    let o = ws.adloc_with(
        &env,
        &[
            "run",
            "campaigns/example",
            "--mode",
            "realtime",
            "--concurrency",
            "1",
        ],
    );
    assert_ne!(code(&o), 0, "the crash point did not fire: {}", stderr(&o));
    let gemini_calls = emu.stats().generate_calls;
    assert!(gemini_calls > 0);
    let o = ws.adloc_with(
        &emu.both_env(),
        &["run", "campaigns/example", "--mode", "realtime"],
    );
    assert_eq!(
        code(&o),
        0,
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    let m = ws.manifest();
    assert_manifest_valid(&m);
    assert_eq!(assert_manifest_matches_files(&ws.out(), &m), 4);
    for a in assets(&ws) {
        assert_eq!(a["provider"], "openai", "{a}");
        assert_eq!(a["fallback_from"], "gemini-3.1-flash-image", "{a}");
    }
    let s = emu.stats();
    // Jobs that had moved stay moved: the rerun asks OpenAI for them at once.
    assert_eq!(
        s.generate_calls, gemini_calls,
        "the rerun asked Gemini again"
    );
    // Only the call in flight at the kill is paid twice.
    let twice: u64 = s
        .openai
        .prompts_billed
        .values()
        .map(|n| n.saturating_sub(1))
        .sum();
    assert!(twice <= 1, "{twice} images paid twice: {:?}", s.openai);
    assert!(temporaries(ws.path()).is_empty());
}

#[test]
fn a_batch_run_killed_after_failing_over_finds_its_openai_batch_instead_of_creating_another() {
    let emu = gemini_batch_outage();
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[("a", "a ridge"), ("b", "a lake"), ("c", "a forest")],
        CHAIN,
        "max_attempts = 50\n",
    );
    let env = batch_env(&emu);
    let mut crash = env.clone();
    crash.push(("ADLOC_CRASH_AT", "batch-after-create".to_string()));
    let o = ws.adloc_with(&crash, &["run", "campaigns/example", "--mode", "batch"]);
    assert_ne!(code(&o), 0, "the crash point did not fire: {}", stderr(&o));
    assert_eq!(emu.stats().openai.batches_created, 1);
    let o = ws.adloc_with(&env, &["run", "campaigns/example", "--mode", "batch"]);
    assert_eq!(
        code(&o),
        0,
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    let s = emu.stats();
    assert_eq!(
        s.openai.batches_created, 1,
        "a batch was created twice: {:?}",
        s.openai
    );
    assert_eq!(s.openai.batch_billed_images, 3);
    assert_eq!(s.batches_created, 0);
    assert_eq!(assert_manifest_matches_files(&ws.out(), &ws.manifest()), 3);
}

#[test]
fn each_vendor_has_its_own_retry_budget_so_the_fallback_may_retry_after_an_outage() {
    let emu = Emu::start(Faults {
        rate_503: 1.0,
        openai: adloc_emulator::OpenAiFaults {
            first_503: 2,
            ..Default::default()
        },
        ..Faults::default()
    });
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[("a", "a ridge"), ("b", "a lake"), ("c", "a forest")],
        CHAIN,
        "max_attempts = 50\n",
    );
    let o = ws.adloc_with(
        &emu.both_env(),
        &["run", "campaigns/example", "--concurrency", "1"],
    );
    // Gemini spent its budget; OpenAI's two 503s are retried from its own.
    assert_eq!(
        code(&o),
        0,
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    let s = emu.stats().openai;
    assert_eq!(s.faults_injected, 2, "{s:?}");
    assert_eq!(s.realtime_billed_images, 3);
}

/// The campaign.toml line holding `needle` (1-based), for error positions.
fn toml_line(ws: &Workspace, needle: &str) -> usize {
    let text = std::fs::read_to_string(ws.campaign().join("campaign.toml")).unwrap();
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn the_512_tier_on_a_gpt_model_is_refused_at_load_naming_the_smallest_tier() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[("a", "a ridge")],
        "\"gpt-image-2.6-sunburst\"\nimage_size = \"512\"",
        "",
    );
    let o = ws.adloc_with(&emu.openai_env(), &["run", "campaigns/example"]);
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{err}");
    let line = toml_line(&ws, "image_size = \"512\"");
    assert!(err.contains(&format!("campaign.toml:{line}:")), "{err}");
    assert!(err.contains("655360 pixels"), "{err}");
    assert!(err.contains("the smallest tier it draws is 1K"), "{err}");
    assert_eq!(emu.stats().openai.generate_calls, 0);
    assert!(!ws.path().join(".adloc").exists());
}

#[test]
fn a_512_variant_whose_chain_falls_back_to_gpt_image_is_refused_at_load() {
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[("a", "a ridge")],
        &format!("{CHAIN}\nimage_size = \"512\""),
        "",
    );
    let o = ws.adloc(&["plan", "campaigns/example"]);
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{err}");
    let line = toml_line(&ws, "image_size = \"512\"");
    assert!(err.contains(&format!("campaign.toml:{line}:")), "{err}");
    assert!(err.contains("gpt-image-2.6-sunburst"), "{err}");
    assert!(err.contains("smallest tier it draws is 1K"), "{err}");
    // Nano Banana 2 alone draws 512.
    ws.edit("campaign.toml", CHAIN, "\"gemini-3.1-flash-image\"");
    let o = ws.adloc(&["plan", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn a_square_4k_gpt_frame_is_2880_square_under_the_pixel_ceiling() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[("a", "a ridge")],
        "\"gpt-image-2\"\nimage_size = \"4K\"",
        "",
    );
    ws.edit(
        "campaign.toml",
        "aspect_ratio = \"16:9\"",
        "aspect_ratio = \"1:1\"",
    );
    let o = ws.adloc_with(&emu.openai_env(), &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let a = &assets(&ws)[0];
    assert_eq!(
        (a["width"].as_u64(), a["height"].as_u64()),
        (Some(2880), Some(2880)),
        "{a}"
    );
}

#[test]
fn reference_images_on_a_gpt_generation_in_a_batch_go_as_json_edits_cropped_to_the_frame() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[("a", "a ridge"), ("b", "a lake")],
        "\"gpt-image-2\"",
        "\n[references]\nfiles = [\"logo.png\"]\n",
    );
    image::RgbImage::from_pixel(32, 32, image::Rgb([200, 10, 10]))
        .save(ws.campaign().join("logo.png"))
        .unwrap();
    let o = ws.adloc_with(
        &batch_env(&emu),
        &[
            "run",
            "campaigns/example",
            "--provider",
            "openai",
            "--mode",
            "batch",
        ],
    );
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let s = emu.stats();
    assert_eq!(s.openai.edit_calls, 0, "no realtime edit");
    assert_eq!(s.edits.len(), 2, "{:?}", s.edits);
    for e in &s.edits {
        assert!(e.batch, "{e:?}");
        assert_eq!(e.size.as_deref(), Some("1536x1024"), "{e:?}");
    }
    let m = ws.manifest();
    assert_manifest_valid(&m);
    assert_eq!(assert_manifest_matches_files(&ws.out(), &m), 2);
    for a in assets(&ws) {
        assert_eq!(
            (a["width"].as_u64(), a["height"].as_u64()),
            (Some(1376), Some(768)),
            "{a}"
        );
        let img = image::open(ws.out().join(a["path"].as_str().unwrap())).unwrap();
        assert_eq!((img.width(), img.height()), (1376, 768));
    }
}

/// A JPEG that decodes to a small image but whose file is `bytes` long:
/// APP15 segments (skipped by every decoder) after the start marker.
fn padded_jpeg(bytes: usize) -> Vec<u8> {
    let mut small = Vec::new();
    image::RgbImage::from_pixel(64, 64, image::Rgb([10, 120, 200]))
        .write_to(
            &mut std::io::Cursor::new(&mut small),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let mut out = small[..2].to_vec();
    let segment = 65_533usize;
    while out.len() + small.len() < bytes {
        out.extend_from_slice(&[0xFF, 0xEF]);
        out.extend_from_slice(&((segment + 2) as u16).to_be_bytes());
        out.extend(std::iter::repeat_n(0u8, segment));
    }
    out.extend_from_slice(&small[2..]);
    out
}

#[test]
fn a_reference_too_large_for_a_data_url_is_refused_at_load_for_a_gpt_variant() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    gpt_campaign(
        &ws,
        &[("a", "a ridge")],
        "\"gpt-image-2\"",
        "\n[references]\nfiles = [\"packshot.jpg\"]\n",
    );
    // 16.4 MB: under [references] max_file_bytes (20 MB), but as base64 in
    // a data URL it is over 20,971,520 characters.
    let jpeg = padded_jpeg(16_400_000);
    image::load_from_memory(&jpeg).expect("the padded JPEG decodes");
    std::fs::write(ws.campaign().join("packshot.jpg"), &jpeg).unwrap();
    let o = ws.adloc_with(
        &batch_env(&emu),
        &["run", "campaigns/example", "--mode", "batch"],
    );
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{err}");
    let line = toml_line(&ws, "files = [\"packshot.jpg\"]");
    assert!(err.contains(&format!("campaign.toml:{line}:")), "{err}");
    assert!(err.contains("20971520 characters"), "{err}");
    assert!(err.contains("gpt-image-2"), "{err}");
    assert_eq!(emu.stats().openai.files_uploaded, 0);
    assert!(!ws.path().join(".adloc").exists());
    // On a Gemini-only campaign the same file is fine (inline data).
    ws.edit("campaign.toml", "model = \"gpt-image-2\"\n", "");
    let o = ws.adloc(&["plan", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn batch_input_files_are_split_by_bytes_to_stay_under_the_file_limit() {
    // The emulator's 200 MB limit lowered to 1,400 bytes, and the run told
    // the same: eight generation lines (about 230 bytes each) do not fit
    // one file.
    let emu = Emu::start(Faults {
        openai: adloc_emulator::OpenAiFaults {
            max_batch_file_bytes: Some(1_400),
            ..Default::default()
        },
        ..Faults::default()
    });
    let ws = Workspace::new();
    let rows: Vec<(String, String)> = (0..8)
        .map(|i| (format!("r{i}"), format!("a ridge {i}")))
        .collect();
    let rows: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    gpt_campaign(&ws, &rows, "\"gpt-image-2\"", "");
    let mut env = batch_env(&emu);
    env.push(("ADLOC_BATCH_MAX_INPUT_BYTES", "1400".to_string()));
    let o = ws.adloc_with(
        &env,
        &[
            "run",
            "campaigns/example",
            "--provider",
            "openai",
            "--mode",
            "batch",
        ],
    );
    assert_eq!(
        code(&o),
        0,
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    let s = emu.stats().openai;
    assert_eq!(s.batch_billed_images, 8, "{s:?}");
    assert!(s.batches_created >= 2, "{s:?}");
    assert_eq!(s.files_uploaded, s.batches_created, "{s:?}");
    let m = ws.manifest();
    assert_manifest_valid(&m);
    assert_eq!(assert_manifest_matches_files(&ws.out(), &m), 8);
}

/// The image an edit revises is attached to its batch line when the batch
/// is made; the byte split counts it. Three rejected images, each as a
/// data URL nearly filling the (lowered) file limit, go in three files.
#[test]
fn batch_edits_are_split_by_the_bytes_of_the_images_they_carry() {
    let ws = Workspace::new();
    let rows = [("a", "a ridge"), ("b", "a lake"), ("c", "a glacier")];
    gpt_campaign(&ws, &rows, "\"gpt-image-2\"", "");
    let made = Emu::start(Faults::default());
    let o = ws.adloc_with(
        &made.both_env(),
        &["run", "campaigns/example", "--provider", "openai"],
    );
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let largest = assets(&ws)
        .iter()
        .map(|a| a["bytes"].as_u64().unwrap())
        .max()
        .unwrap();
    for (id, _) in rows {
        let target = format!("en-US/hero/{id}");
        let o = ws.adloc(&["reject", "example", &target, "--note", "Add a sunset"]);
        assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    }
    // One edit line fits the limit; two do not.
    let limit = 4 * largest.div_ceil(3) + 1_500;
    let emu = Emu::start(Faults {
        openai: adloc_emulator::OpenAiFaults {
            max_batch_file_bytes: Some(limit),
            ..Default::default()
        },
        ..Faults::default()
    });
    let mut env = batch_env(&emu);
    env.push(("ADLOC_BATCH_MAX_INPUT_BYTES", limit.to_string()));
    let o = ws.adloc_with(
        &env,
        &[
            "run",
            "campaigns/example",
            "--provider",
            "openai",
            "--mode",
            "batch",
        ],
    );
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let s = emu.stats();
    assert_eq!(s.edits.len(), 3, "{:?}", s.edits);
    assert_eq!(s.openai.batches_created, 3, "{:?}", s.openai);
    let m = ws.manifest();
    assert_manifest_valid(&m);
    assert!(
        m["assets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["revision"] == 2)
    );
}
