//! Pacing learned from the service: the emulator limits requests per minute
//! per model at a rate the campaign does not state (or states wrongly), and
//! the run must make every image while few calls are refused. Refusals are
//! counted by the emulator, not by adloc. No timing is asserted: a pacer
//! that ignores the service shows up as 429s and spent retry budgets.

use adloc_emulator::{Faults, OpenAiFaults};

use crate::common::*;

/// At most this fraction of the calls the emulator received may be 429s.
const MAX_REFUSED: f64 = 0.15;

/// `n` rows on `model`; `rate_limit` replaces the helper's own
/// `[rate_limit]` section (empty: none, the family's default applies).
fn campaign(ws: &Workspace, n: usize, model: &str, rate_limit: &str) {
    let rows: Vec<(String, String)> = (0..n)
        .map(|i| (format!("r{i:03}"), format!("scene number {i}")))
        .collect();
    let rows: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    ws.small_campaign(&rows);
    let p = ws.campaign().join("campaign.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains("\n[rate_limit]\nrpm = 60000\n"), "{text}");
    let text = text
        .replace("\n[rate_limit]\nrpm = 60000\n", rate_limit)
        .replace(
            "model = \"gemini-3.1-flash-image\"",
            &format!("model = \"{model}\""),
        );
    std::fs::write(&p, text).unwrap();
}

fn assert_ok(o: &std::process::Output) {
    assert_eq!(code(o), 0, "stdout: {}\nstderr: {}", stdout(o), stderr(o));
}

fn assert_few_refused(refused: u64, calls: u64) {
    assert!(
        (refused as f64) <= MAX_REFUSED * calls as f64,
        "{refused} of {calls} calls refused (at most {:.0} % allowed)",
        MAX_REFUSED * 100.0
    );
}

#[test]
fn gemini_paced_by_its_429s_alone_makes_every_image_with_few_refused() {
    // 2.5 Flash Image starts at its default of 500 requests per minute; the
    // service allows 240 and says so only by refusing (Gemini sends no
    // limit headers). A fixed pace of 500 has about half its calls refused
    // and runs out of retry budget.
    const JOBS: usize = 48;
    let emu = Emu::start(Faults {
        rpm_limit: Some(240),
        ..Faults::default()
    });
    let ws = Workspace::new();
    campaign(&ws, JOBS, "gemini-2.5-flash-image", "");
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example"]);
    assert_ok(&o);
    let s = emu.stats();
    assert_eq!(s.realtime_billed_images, JOBS as u64);
    assert!(s.rate_limited > 0, "the limit was never reached: {s:?}");
    assert_few_refused(s.rate_limited, s.generate_calls);
}

#[test]
fn a_user_rpm_above_the_openai_limit_is_a_ceiling_and_the_headers_set_the_pace() {
    // The campaign claims 60,000 a minute; the service allows 300 and says
    // so in x-ratelimit-limit-requests. Paced at the claim, nearly every
    // call would be refused.
    const JOBS: usize = 48;
    let emu = Emu::start(Faults {
        openai: OpenAiFaults {
            rpm_limit: Some(300),
            ..OpenAiFaults::default()
        },
        ..Faults::default()
    });
    let ws = Workspace::new();
    campaign(
        &ws,
        JOBS,
        "gpt-image-2.6-sunburst",
        "\n[rate_limit]\nrpm = 60000\n",
    );
    let o = ws.adloc_with(&emu.openai_env(), &["run", "campaigns/example"]);
    assert_ok(&o);
    let s = emu.stats().openai;
    assert_eq!(s.realtime_billed_images, JOBS as u64);
    assert_few_refused(s.rate_limited, s.generate_calls);
}

#[test]
fn a_user_rpm_under_the_services_limit_is_kept_without_a_single_refusal() {
    // The user's 120 a minute is half what the service allows: calls start
    // 500 ms apart where 250 ms would do, so none is refused, however the
    // run's timing wobbles. A fixed limiter's opening burst (a tenth of a
    // minute's quota at once) would be.
    const JOBS: usize = 10;
    let emu = Emu::start(Faults {
        rpm_limit: Some(240),
        ..Faults::default()
    });
    let ws = Workspace::new();
    campaign(
        &ws,
        JOBS,
        "gemini-2.5-flash-image",
        "\n[rate_limit]\nrpm = 120\n",
    );
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example"]);
    assert_ok(&o);
    let s = emu.stats();
    assert_eq!(s.realtime_billed_images, JOBS as u64);
    assert_eq!(s.rate_limited, 0, "{s:?}");
}

#[test]
fn after_a_429_no_call_goes_to_the_vendor_before_the_servers_delay_and_ctrl_c_returns_the_waiting_job()
 {
    // The first call is refused with a ten-minute retry delay; one call in
    // flight at a time. The next job must wait for the delay rather than be
    // sent at once, and Ctrl-C while it waits ends the run with both jobs
    // pending and nothing more sent.
    let emu = Emu::start(Faults {
        first_429: 1,
        retry_delay_s: 600.0,
        ..Faults::default()
    });
    let ws = Workspace::new();
    campaign(
        &ws,
        2,
        "gemini-2.5-flash-image",
        "\n[rate_limit]\nrpm = 60000\n",
    );
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_adloc"));
    cmd.current_dir(ws.path())
        .args([
            "run",
            "campaigns/example",
            "--provider",
            "gemini",
            "--concurrency",
            "1",
        ])
        .env_remove("GOOGLE_API_KEY")
        .env("ADLOC_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    ws.state_env(&mut cmd);
    for (k, v) in emu.env() {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    // Bounded: a bug must not stall the suite.
    for _ in 0..1500 {
        if emu.stats().faults_injected > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(emu.stats().faults_injected, 1, "the 429 never came");
    // Give the run time to claim the second job and (wrongly) send it.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let ok = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = crate::crash::wait_bounded(child, "the interrupted run");
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = emu.stats();
    assert_eq!(
        s.generate_calls, 1,
        "a call went out during the hold: {s:?}"
    );
    let states = ws.sql_rows("SELECT state FROM jobs ORDER BY id");
    assert_eq!(states, vec![vec!["pending".to_string()]; 2]);
}
