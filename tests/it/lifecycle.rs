//! A job's life across runs: no job waits forever, edits are in the
//! estimate, an edit that changes the format leaves no stale master, and a
//! late result never overwrites a newer claim's.

use std::collections::BTreeMap;

use adloc_emulator::Faults;

use crate::common::*;

/// A two-locale (`en-US` base, `de-DE`) campaign whose one variant is
/// `text = "edit"`, with the given rows `(id, scene)` and extra TOML.
fn edit_campaign(ws: &Workspace, rows: &[(&str, &str)], extra: &str) {
    let mut csv = String::from("id,scene,headline,headline.de-DE\n");
    for (id, scene) in rows {
        csv.push_str(&format!("{id},{scene},Hello,Hallo\n"));
    }
    std::fs::write(ws.campaign().join("rows.csv"), csv).unwrap();
    std::fs::write(
        ws.campaign().join("campaign.toml"),
        format!(
            "name = \"example\"\nrows = \"rows.csv\"\nlocales = [\"en-US\", \"de-DE\"]\n\
             model = \"gemini-3.1-flash-image\"\nmode = \"realtime\"\n\n\
             [[variants]]\nname = \"hero\"\ntemplate = \"hero.hbs\"\naspect_ratio = \"16:9\"\ntext = \"edit\"\n\n\
             [rate_limit]\nrpm = 60000\n\n\
             [retry]\nmax_attempts = 2\nbase_delay_ms = 10\nmax_delay_ms = 20\n{extra}"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(ws.campaign().join("templates")).unwrap();
    std::fs::write(
        ws.campaign().join("templates/hero.hbs"),
        "A hero banner. Scene: {{row.scene}}. Headline: \"{{row.headline}}\"",
    )
    .unwrap();
}

/// `locale/variant/row` → failure, from a manifest.
fn failures(m: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    m["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                format!(
                    "{}/{}/{}",
                    f["locale"].as_str().unwrap(),
                    f["variant"].as_str().unwrap(),
                    f["row_id"].as_str().unwrap()
                ),
                f.clone(),
            )
        })
        .collect()
}

#[test]
fn a_text_edit_locale_whose_base_was_blocked_fails_with_base_failed_and_the_run_exits_3() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    edit_campaign(
        &ws,
        &[("r1", "EMULATE_BLOCK_PROMPT a beach"), ("r2", "a forest")],
        "",
    );
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example"]);
    assert_eq!(
        code(&o),
        3,
        "a locale without a base image is a failure, not pending work: {}",
        stderr(&o)
    );
    let m = ws.manifest();
    assert_manifest_valid(&m);
    assert_eq!(m["totals"]["pending"], 0);
    let f = failures(&m);
    assert_eq!(f["en-US/hero/r1"]["state"], "blocked");
    let lost = &f["de-DE/hero/r1"];
    assert_eq!(lost["state"], "failed");
    assert_eq!(lost["reason"], "base_failed");
    let detail = lost["detail"].as_str().unwrap();
    assert!(
        detail.contains("(en-US/hero/r1)") && detail.contains("blocked"),
        "the detail names the base job: {detail}"
    );
    assert!(!f.contains_key("de-DE/hero/r2"), "{f:?}");
    assert_eq!(emu.stats().edits.len(), 1, "only r2's locale was edited");

    // An unchanged rerun has nothing to do and says the same.
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(failures(&ws.manifest()).len(), 2);
}

#[test]
fn a_text_edit_locale_failed_for_its_base_is_edited_once_a_retried_base_is_made() {
    // The base's two attempts meet two 500s: it fails (gives up).
    let emu = Emu::start(Faults {
        first_500: 2,
        ..Faults::default()
    });
    let ws = Workspace::new();
    edit_campaign(&ws, &[("r1", "a beach")], "");
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let f = failures(&ws.manifest());
    assert_eq!(f["en-US/hero/r1"]["state"], "failed");
    assert_eq!(f["en-US/hero/r1"]["reason"], "server_error");
    assert_eq!(f["de-DE/hero/r1"]["reason"], "base_failed");
    assert!(emu.stats().edits.is_empty());

    // The outage is over: retrying the failed jobs queues the base, and
    // the locale waits for it again (it is not generated on its own).
    let o = ws.adloc(&["retry", "example", "--failed"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let states = ws.sql_rows("SELECT locale, state FROM jobs ORDER BY locale");
    assert_eq!(
        states,
        vec![
            vec!["de-DE".to_string(), "waiting".to_string()],
            vec!["en-US".to_string(), "pending".to_string()],
        ]
    );
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let m = ws.manifest();
    assert_manifest_valid(&m);
    assert!(failures(&m).is_empty());
    assert_eq!(m["totals"]["done"], 2);
    let edits = emu.stats().edits;
    assert_eq!(
        edits.len(),
        1,
        "the locale is an edit of the new base image"
    );
    assert!(edits[0].instruction.contains("'Hallo'"), "{edits:?}");
}

#[test]
fn a_locale_failed_for_its_base_waits_again_when_a_later_run_queues_the_base() {
    // As above, but the base comes back without `adloc retry` for the
    // locale: only the base is retried (as `--blocked` would, say), and the
    // run's sync puts its locale back to waiting.
    let emu = Emu::start(Faults {
        first_500: 2,
        ..Faults::default()
    });
    let ws = Workspace::new();
    edit_campaign(&ws, &[("r1", "a beach")], "");
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    ws.sql_rows(
        "UPDATE jobs SET state = 'pending', attempts = 0, error_code = NULL, error_detail = NULL
         WHERE locale = 'en-US' RETURNING id",
    );
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(failures(&ws.manifest()).is_empty());
    assert_eq!(emu.stats().edits.len(), 1);
}

/// `adloc run` of the workspace's campaign against the emulator, with a
/// lease of `lease_ms`, as a child process.
fn run_child(ws: &Workspace, emu: &Emu, lease_ms: u64) -> std::process::Child {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_adloc"));
    cmd.current_dir(ws.path())
        .args(["run", "campaigns/example", "--provider", "gemini"])
        .env_remove("GOOGLE_API_KEY")
        .env("ADLOC_LOG", "warn")
        .env("ADLOC_LEASE_MS", lease_ms.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    ws.state_env(&mut cmd);
    for (k, v) in emu.env() {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Poll the state (a SQLite file a child process is creating) until `sql`
/// returns an integer, bounded so a bug cannot stall the suite.
fn wait_for_row(ws: &Workspace, sql: &str, what: &str) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = format!("sqlite://{}?mode=ro", ws.state().display());
    for _ in 0..1500 {
        let found = rt.block_on(async {
            let pool = sqlx::SqlitePool::connect(&url).await.ok()?;
            let row: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_optional(&pool)
                .await
                .ok()
                .flatten();
            pool.close().await;
            row
        });
        if let Some((v,)) = found {
            return vec![v.to_string()];
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("{what} never happened");
}

fn signal(child: &std::process::Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill {sig}");
}

#[test]
fn a_stalled_runners_late_result_neither_replaces_the_file_nor_the_job_of_the_runner_that_took_it_over()
 {
    // Every image takes 2 s; each image with copy has its own bytes.
    let emu = Emu::start(Faults {
        latency_ms: 2000,
        ..Faults::default()
    });
    let ws = Workspace::new();
    ws.small_campaign(&[("r1", "a beach")]);
    const LEASE_MS: u64 = 600;
    // Runner A claims the job and asks for its image, then stalls (SIGSTOP:
    // no heartbeat) for longer than its lease.
    let a = run_child(&ws, &emu, LEASE_MS);
    let a_run = wait_for_row(
        &ws,
        "SELECT lease_run FROM jobs WHERE state = 'in_flight'",
        "runner A's claim",
    );
    while emu.stats().generate_calls == 0 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    signal(&a, "-STOP");
    std::thread::sleep(std::time::Duration::from_millis(3 * LEASE_MS));
    // Runner B takes the job over (A's lease ran out) and asks again.
    let b = run_child(&ws, &emu, 120_000);
    let b_run = wait_for_row(
        &ws,
        &format!(
            "SELECT lease_run FROM jobs WHERE state = 'in_flight' AND lease_run <> {}",
            a_run[0]
        ),
        "runner B's claim",
    );
    // A wakes up while B waits for its image; A's answer is late.
    signal(&a, "-CONT");
    let out_a = crate::crash::wait_bounded(a, "runner A");
    let out_b = crate::crash::wait_bounded(b, "runner B");
    assert_eq!(
        out_b.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out_b.stderr)
    );
    assert_eq!(
        out_a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out_a.stderr)
    );
    assert_eq!(
        emu.stats().billed_images,
        2,
        "both runners paid for an image"
    );
    // The job is B's: its file, its record, the manifest's entry agree.
    let m = ws.manifest();
    assert_eq!(assert_manifest_matches_files(&ws.out(), &m), 1);
    // Both paid calls are in the ledger, each under its own run.
    let attempts = ws.sql_rows("SELECT run_id, outcome FROM attempts ORDER BY run_id");
    assert_eq!(
        attempts,
        vec![
            vec![a_run[0].clone(), "ok".to_string()],
            vec![b_run[0].clone(), "ok".to_string()],
        ]
    );
    let cost = ws.sql_rows("SELECT COUNT(*) FROM attempts WHERE cost_usd > 0");
    assert_eq!(cost[0][0], "2", "the late call's cost is recorded");
    assert!(
        String::from_utf8_lossy(&out_a.stderr).contains("lease"),
        "A says why its image was not stored: {}",
        String::from_utf8_lossy(&out_a.stderr)
    );
}

/// Image files under `<out>/en-US/hero/`, relative to the campaign output.
fn hero_files(ws: &Workspace) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(ws.out().join("en-US/hero"))
        .unwrap()
        .map(|e| format!("en-US/hero/{}", e.unwrap().file_name().to_string_lossy()))
        .collect()
}

/// Every file the manifest names under `en-US/hero/`: assets and the
/// images their edits replaced.
fn manifest_hero_files(m: &serde_json::Value) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for a in m["assets"].as_array().unwrap() {
        out.insert(a["path"].as_str().unwrap().to_string());
        for h in a["history"].as_array().into_iter().flatten() {
            out.insert(h["path"].as_str().unwrap().to_string());
        }
    }
    out.retain(|p| p.starts_with("en-US/hero/"));
    out
}

fn reject(ws: &Workspace, note: &str) {
    let o = ws.adloc(&[
        "reject",
        "example",
        "en-US/hero/r1",
        "--note",
        note,
        "--by",
        "ben",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn an_edit_that_changes_the_format_removes_the_old_master_and_a_kill_before_that_is_swept_next_run()
{
    let png = Faults {
        image_mime: Some("image/png".into()),
        ..Faults::default()
    };
    let emu = Emu::start(png.clone());
    let ws = Workspace::new();
    ws.small_campaign(&[("r1", "a beach")]);
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(ws.manifest()["assets"][0]["path"], "en-US/hero/r1.png");

    // The edit comes back as JPEG: the PNG master goes, its kept copy stays.
    reject(&ws, "Bigger headline");
    emu.set_faults(Faults::default());
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let m = ws.manifest();
    assert_eq!(m["assets"][0]["path"], "en-US/hero/r1.jpg");
    assert_eq!(m["assets"][0]["revision"], 2);
    assert_eq!(assert_manifest_matches_files(&ws.out(), &m), 1);
    assert_eq!(
        hero_files(&ws),
        ["en-US/hero/r1.jpg", "en-US/hero/r1.r1.png"]
            .map(String::from)
            .into(),
        "the old master is gone, the revision kept"
    );
    assert_eq!(hero_files(&ws), manifest_hero_files(&m));

    // The next edit comes back as PNG, and the run is killed after the new
    // master is recorded, before the old one is removed.
    reject(&ws, "Warmer light");
    emu.set_faults(png);
    let mut env = emu.env();
    env.push(("ADLOC_CRASH_AT", "before-stale-master-removal".to_string()));
    let o = ws.adloc_with(&env, &["run", "campaigns/example", "--provider", "gemini"]);
    assert_ne!(code(&o), 0, "the crash point fired: {}", stderr(&o));
    let recorded = ws.sql_rows("SELECT state, asset_path FROM jobs WHERE state <> 'superseded'");
    assert_eq!(
        recorded,
        vec![vec!["done".to_string(), "en-US/hero/r1.png".to_string()]]
    );
    assert!(
        ws.out().join("en-US/hero/r1.jpg").exists(),
        "left by the kill"
    );

    // The next run removes it without buying anything.
    let billed = emu.stats().billed_images;
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(emu.stats().billed_images, billed);
    let m = ws.manifest();
    assert_eq!(m["assets"][0]["path"], "en-US/hero/r1.png");
    assert_eq!(m["assets"][0]["revision"], 3);
    assert_eq!(assert_manifest_matches_files(&ws.out(), &m), 1);
    assert_eq!(
        hero_files(&ws),
        [
            "en-US/hero/r1.png",
            "en-US/hero/r1.r1.png",
            "en-US/hero/r1.r2.jpg"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(hero_files(&ws), manifest_hero_files(&m));
}

#[test]
fn plan_and_the_budget_count_revisions_and_locale_edits_at_the_edit_price() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    edit_campaign(&ws, &[("r1", "a beach")], "");
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // The base image is rejected: it is revised, and the locale made from
    // it is edited again. Nothing is new, yet two edits are due.
    let o = ws.adloc(&[
        "reject",
        "example",
        "en-US/hero/r1",
        "--note",
        "Warmer light",
        "--by",
        "ben",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = ws.adloc(&["plan", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("edits to pay for: 2 (1 locale edit(s) of a base image, 1 revision(s) of rejected images)"),
        "{out}"
    );
    // Each edit: the 1K image at $0.067 plus 560 input image tokens at
    // $0.50/M (3.1 Flash Image), half in batch.
    assert!(
        out.contains("estimated cost: $0.1346 realtime, $0.0673 batch"),
        "{out}"
    );

    // A cap below that refuses before anything is sent.
    let calls = emu.stats().generate_calls;
    let o = ws.adloc_gemini(
        &emu,
        &[
            "run",
            "campaigns/example",
            "--max-spend",
            "0.1",
            "--log-format",
            "json",
        ],
    );
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("\"code\":\"over_budget\""),
        "{}",
        stderr(&o)
    );
    assert_eq!(emu.stats().generate_calls, calls, "nothing was sent");
    assert!(
        emu.stats().edits.len() == 1,
        "only the first run's locale edit"
    );

    // A cap above it buys exactly the two edits.
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example", "--max-spend", "0.2"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(emu.stats().edits.len(), 3);
}
