//! `adloc compare` (issue 25): two models' samples of the example, one per
//! vendor at the emulators, in realtime, kept in the state (a rerun buys
//! nothing), side by side in `adloc review serve` (/compare/), with votes
//! recorded and the summary per variant naming the winner.

use serde_json::json;

use crate::common::*;
use crate::review_serve::{Browser, LOCAL_REVIEWER, meta, raw, serve};

const MODELS: &str = "gemini-3-pro-image,gpt-image-2";
const ROWS: usize = 2;

fn sample_manifest(ws: &Workspace, model: &str) -> serde_json::Value {
    let p = ws.path().join(format!(
        "out/example--compare--{}/manifest.json",
        model.replace('.', "-")
    ));
    serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

#[test]
fn two_models_sample_the_example_at_both_vendors_and_a_rerun_buys_nothing_and_votes_pick_the_winner()
 {
    let emu = Emu::start(adloc_emulator::Faults::default());
    let ws = Workspace::new();
    let env = emu.both_env();
    let args = [
        "compare",
        "campaigns/example",
        "--models",
        MODELS,
        "--rows",
        &ROWS.to_string(),
    ];
    let o = ws.adloc_with(&env, &args);
    assert_eq!(
        code(&o),
        0,
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    let first = emu.stats();
    assert!(first.realtime_billed_images > 0, "Gemini made its sample");
    assert!(
        first.openai.realtime_billed_images > 0,
        "OpenAI made its sample"
    );
    assert_eq!(
        first.batch_billed_images + first.openai.batch_billed_images,
        0,
        "realtime only"
    );
    let variants = example().model_variants + example().overlay_variants;
    for model in MODELS.split(',') {
        let m = sample_manifest(&ws, model);
        assert_manifest_valid(&m);
        let assets = m["assets"].as_array().unwrap();
        assert_eq!(assets.len() as u64, ROWS as u64 * variants, "{model}");
        for a in assets {
            assert_eq!(a["locale"], "en-US", "the base locale only");
            assert_eq!(a["model"], model);
        }
    }
    // The real campaign is untouched.
    assert!(!ws.out().join("manifest.json").exists());

    // Again: nothing bought, same images.
    let before = sample_manifest(&ws, "gpt-image-2");
    let o = ws.adloc_with(&env, &args);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let again = emu.stats();
    assert_eq!(again.billed_images, first.billed_images);
    assert_eq!(again.openai.billed_images, first.openai.billed_images);
    assert_eq!(again.generate_calls, first.generate_calls);
    assert_eq!(again.openai.generate_calls, first.openai.generate_calls);
    assert_eq!(
        sample_manifest(&ws, "gpt-image-2")["assets"],
        before["assets"]
    );
    assert!(stdout(&o).contains("0 image(s) to buy"), "{}", stdout(&o));

    // Side by side in the review server; a vote for GPT Image's hero.
    let srv = serve(&ws, "127.0.0.1:0", &[]);
    let page = raw(&srv.base, "GET", "/compare/", &[], b"");
    assert_eq!(page.status, 200);
    let html = page.text();
    let cookie = page
        .headers
        .iter()
        .find(|(k, _)| k == "set-cookie")
        .and_then(|(_, v)| v.split(';').next())
        .unwrap()
        .to_string();
    let gpt = sample_manifest(&ws, "gpt-image-2");
    let hero = gpt["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["variant"] == "hero")
        .unwrap()
        .clone();
    let path = hero["path"].as_str().unwrap();
    let key = path.rsplit_once('.').unwrap().0;
    for model in MODELS.split(',') {
        assert!(
            html.contains(&format!("data-asset=\"{key}\" data-model=\"{model}\"")),
            "{model} side by side"
        );
    }
    let img = raw(
        &srv.base,
        "GET",
        &format!("/compare/gpt-image-2/{path}"),
        &[],
        b"",
    );
    assert_eq!(img.status, 200);
    assert_eq!(
        img.body,
        std::fs::read(
            ws.path()
                .join("out/example--compare--gpt-image-2")
                .join(path)
        )
        .unwrap()
    );
    assert_eq!(
        raw(
            &srv.base,
            "GET",
            "/compare/gpt-image-2/../../.adloc/state.db",
            &[],
            b""
        )
        .status,
        404
    );
    let csrf = meta(&html, "csrf-token");
    let vote =
        json!({ "asset": key, "model": "gpt-image-2", "sha256": hero["sha256"] }).to_string();
    let headers = [
        ("Content-Type", "application/json"),
        ("Cookie", cookie.as_str()),
        ("Origin", srv.base.as_str()),
        ("X-CSRF-Token", csrf.as_str()),
    ];
    let cross = [
        headers[0],
        headers[1],
        ("Origin", "http://evil.example"),
        headers[3],
    ];
    assert_eq!(
        raw(&srv.base, "POST", "/api/vote", &cross, vote.as_bytes()).status,
        403
    );
    assert!(ws.sql_rows("SELECT id FROM compare_votes").is_empty());
    let r = raw(&srv.base, "POST", "/api/vote", &headers, vote.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        ws.sql_rows("SELECT model, voter, variant FROM compare_votes"),
        vec![vec![
            "gpt-image-2".to_string(),
            LOCAL_REVIEWER.to_string(),
            "hero".to_string()
        ]]
    );
    // And in Chromium: a vote for Gemini's square, by clicking.
    let square = sample_manifest(&ws, "gemini-3-pro-image")["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["variant"] == "square")
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .rsplit_once('.')
        .unwrap()
        .0
        .to_string();
    let cell = format!("td.cell[data-asset=\"{square}\"][data-model=\"gemini-3-pro-image\"]");
    let b = Browser::start();
    b.goto(&format!("{}/compare/", srv.base));
    b.wait_for(
        "both models side by side",
        &format!(
            "return document.querySelectorAll('td.cell[data-model]').length === {}",
            2 * ROWS as u64 * variants
        ),
    );
    b.wait_for(
        "every image loaded",
        "return Array.prototype.every.call(document.images, function (i) { return i.complete && i.naturalWidth > 0; })",
    );
    b.click(&format!("{cell} button[data-action=\"vote\"]"));
    b.wait_for(
        "the vote shown",
        &format!("var c = document.querySelector('{cell} li.votes'); return !!c && c.textContent === '1 vote';"),
    );
    assert_eq!(ws.sql_rows("SELECT COUNT(*) FROM compare_votes")[0][0], "2");
    drop(b);
    drop(srv);

    // The summary names the winner and the line to use; still nothing bought.
    let o = ws.adloc_with(&env, &args);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("variant hero: gpt-image-2 won"), "{out}");
    assert!(
        out.contains("variant square: gemini-3-pro-image won"),
        "{out}"
    );
    assert!(
        out.contains("model = [\"gpt-image-2\", \"gemini-3-pro-image\"]"),
        "{out}"
    );
    assert_eq!(emu.stats().openai.billed_images, first.openai.billed_images);
}

#[test]
fn each_models_sample_is_copy_checked_when_the_campaign_has_qa_on() {
    let emu = Emu::start(adloc_emulator::Faults::default());
    let ws = Workspace::new();
    ws.small_campaign(&[("a", "a ridge"), ("b", "a lake"), ("c", "a dune")]);
    ws.append_toml("\n[qa]\nreader = \"gemini-3.1-flash-lite\"\nexpect = [\"headline\"]\n");
    // Two Gemini models: a GPT Image job's read never runs in realtime (it
    // stays `checking`, with a plain `adloc run` too; see the report of
    // issue 25), which is no part of what compare changes.
    let models = "gemini-3-pro-image,gemini-3.1-flash-image";
    let o = ws.adloc_with(
        &emu.env(),
        &[
            "compare",
            "campaigns/example",
            "--models",
            models,
            "--rows",
            "2",
        ],
    );
    assert_eq!(
        code(&o),
        0,
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    assert!(emu.stats().reads > 0, "the reader was asked");
    for model in models.split(',') {
        let m = sample_manifest(&ws, model);
        let assets = m["assets"].as_array().unwrap();
        assert_eq!(assets.len(), 2, "{model}: the first two rows only");
        for a in assets {
            assert_eq!(a["qa"]["verdict"], "pass", "{model}: {a}");
        }
    }
    let out = stdout(&o);
    assert!(out.contains("model = ["), "{out}");
}
