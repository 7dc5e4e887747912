//! Review (issue 13): approvals through the binary (bulk decisions, reruns,
//! copy changes) and the review page in a real headless browser.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// `locale/variant/row`: an asset path without its extension, as
/// selectors and the page's cells name it.
fn key_of(path: &str) -> String {
    path.rsplit_once('.')
        .map_or(path, |(stem, _)| stem)
        .to_string()
}

/// Asset key → approval state, from a manifest.
fn approvals(m: &serde_json::Value) -> BTreeMap<String, String> {
    m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                key_of(a["path"].as_str().unwrap()),
                a["approval"]["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn approved_manifest(ws: &Workspace) -> serde_json::Value {
    let text = std::fs::read_to_string(ws.out().join("manifest.approved.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn count(states: &BTreeMap<String, String>, state: &str) -> usize {
    states.values().filter(|s| *s == state).count()
}

#[test]
fn bulk_decisions_survive_an_unchanged_rerun_and_reset_when_a_rows_copy_changes() {
    let ws = Workspace::new();
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let states = approvals(&m);
    let total = states.len();
    assert_eq!(total as u64, example().assets());
    assert_eq!(
        count(&states, "pending"),
        total,
        "a new asset starts pending"
    );
    for a in m["assets"].as_array().unwrap() {
        assert_eq!(a["revision"], 1);
        assert!(a["parent_sha256"].is_null());
        assert!(a["approval"]["by"].is_null());
    }
    let approved = approved_manifest(&ws);
    assert_manifest_valid(&approved);
    assert_eq!(approved["approved_only"], true);
    assert!(approved["assets"].as_array().unwrap().is_empty());

    // A file with bad rows applies nothing and names every bad line.
    let keys: Vec<String> = states.keys().cloned().collect();
    std::fs::write(
        ws.path().join("bad.csv"),
        format!(
            "asset,decision,note,by\n{},approve,,ana\n{},maybe,,ana\n{},reject,,ana\nxx-XX/hero/nothing,approve,,ana\n",
            keys[0], keys[1], keys[2]
        ),
    )
    .unwrap();
    let o = ws.adloc(&["review", "import", "campaigns/example", "bad.csv"]);
    assert_eq!(code(&o), 2, "stdout: {}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("bad.csv:3:") && err.contains("maybe"), "{err}");
    assert!(err.contains("bad.csv:4:") && err.contains("note"), "{err}");
    assert!(
        err.contains("bad.csv:5:") && err.contains("names no asset"),
        "{err}"
    );
    assert!(!err.contains("bad.csv:2:"), "{err}");
    assert_eq!(ws.sql_rows("SELECT COUNT(*) FROM decisions")[0][0], "0");
    assert_eq!(count(&approvals(&ws.manifest()), "pending"), total);

    // Approve 80 %, including every asset of the row whose copy changes
    // below, and reject 3 with notes; the rest stay pending.
    let changing: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("de-DE/") && k.ends_with("/spring-sale"))
        .collect();
    assert_eq!(changing.len() as u64, example().assets_per_row_locale());
    let mut to_approve: Vec<&String> = changing.clone();
    to_approve.extend(
        keys.iter()
            .filter(|k| !changing.contains(k))
            .take(total * 8 / 10 - changing.len()),
    );
    let to_reject: Vec<&String> = keys
        .iter()
        .filter(|k| !to_approve.contains(k))
        .take(3)
        .collect();
    let mut csv = String::from("asset,decision,note,by\n");
    for k in &to_approve {
        csv.push_str(&format!("{k},approve,,\n"));
    }
    for (i, k) in to_reject.iter().enumerate() {
        csv.push_str(&format!(
            "{k},reject,\"Logo <cut off>, \"\"see\"\" brief #{i}\",ben\n"
        ));
    }
    std::fs::write(ws.path().join("decisions.csv"), csv).unwrap();
    let o = ws.adloc(&[
        "review",
        "import",
        "campaigns/example",
        "decisions.csv",
        "--by",
        "ana",
    ]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let states = approvals(&m);
    assert_eq!(count(&states, "approved"), total * 8 / 10);
    assert_eq!(count(&states, "rejected"), 3);
    assert_eq!(count(&states, "pending"), total - total * 8 / 10 - 3);
    for a in m["assets"].as_array().unwrap() {
        let ap = &a["approval"];
        match ap["state"].as_str().unwrap() {
            "approved" => assert_eq!(ap["by"], "ana"),
            "rejected" => {
                assert_eq!(ap["by"], "ben");
                assert!(
                    ap["note"]
                        .as_str()
                        .unwrap()
                        .starts_with("Logo <cut off>, \"see\"")
                );
                assert!(ap["at"].as_str().unwrap().ends_with('Z'));
            }
            _ => assert!(ap["by"].is_null()),
        }
    }
    // Downstream sees only what was approved, without a rerun.
    let approved = approved_manifest(&ws);
    assert_manifest_valid(&approved);
    let listed: BTreeSet<String> = approved["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| key_of(a["path"].as_str().unwrap()))
        .collect();
    let want: BTreeSet<String> = to_approve.iter().map(|k| k.to_string()).collect();
    assert_eq!(listed, want);
    assert_eq!(approved["totals"]["done"], want.len());

    // Importing the same file again records nothing new.
    let o = ws.adloc(&[
        "review",
        "import",
        "campaigns/example",
        "decisions.csv",
        "--by",
        "ana",
    ]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let recorded = ws.sql_rows("SELECT COUNT(*) FROM decisions")[0][0].clone();
    assert_eq!(recorded, (want.len() + 3).to_string());

    // The next run revises the three rejected assets (revision 2, awaiting
    // a decision again) and keeps every other decision.
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let revised = approvals(&ws.manifest());
    for (k, s) in &revised {
        if to_reject.contains(&k) {
            assert_eq!(s, "pending", "{k} was revised and awaits a decision");
        } else {
            assert_eq!(s, &states[k], "{k} lost its decision");
        }
    }
    let states = revised;
    // An unchanged rerun keeps every decision.
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert_eq!(approvals(&ws.manifest()), states);

    // A row's copy changes: its assets are new, pending again; every other
    // decision stays, and the old ones stay in the history.
    ws.edit(
        "rows.csv",
        "Frühlingsangebot: 30 % auf alles",
        "Frühlingsangebot: 40 % auf alles",
    );
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let after = approvals(&m);
    for (k, s) in &after {
        if changing.contains(&k) {
            assert_eq!(s, "pending", "{k} changed copy but kept its approval");
        } else {
            assert_eq!(s, &states[k], "{k} lost its decision");
        }
    }
    let copy_of = |key: &str| {
        m["assets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| key_of(a["path"].as_str().unwrap()) == key)
            .map(|a| a["copy"]["headline"].clone())
            .unwrap()
    };
    assert_eq!(
        copy_of("de-DE/hero/spring-sale"),
        "Frühlingsangebot: 40 % auf alles"
    );
    assert_eq!(
        ws.sql_rows("SELECT COUNT(*) FROM decisions")[0][0],
        recorded
    );
    assert!(
        !approved_manifest(&ws)["assets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| key_of(a["path"].as_str().unwrap()) == "de-DE/hero/spring-sale"),
        "a changed asset is not approved"
    );

    // Command-line decisions by glob, by campaign name.
    let o = ws.adloc(&["approve", "example", "de-DE/*/spring-sale", "--by", "cleo"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let o = ws.adloc(&[
        "reject",
        "example",
        "*/hero/spring-sale",
        "--note",
        "wrong season",
        "--by",
        "cleo",
    ]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let after = approvals(&ws.manifest());
    assert_eq!(after["de-DE/square/spring-sale"], "approved");
    assert_eq!(after["de-DE/hero/spring-sale"], "rejected");
    assert_eq!(after["ja-JP/hero/spring-sale"], "rejected");
    let o = ws.adloc(&["reject", "example", "de-DE/hero/spring-sale"]);
    assert_eq!(code(&o), 2, "a rejection without --note is refused");
    let o = ws.adloc(&["approve", "example", "fr-FR/*/*"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("names no asset"), "{}", stderr(&o));
}

// ---------------------------------------------------------------------
// The page in a real browser.

/// The Chromium binary. Missing is a failure, not a skip: `.ci/run`
/// installs it, and a review page nobody rendered is untested.
fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM").map(PathBuf::from).or_else(|| {
        ["chromium", "chromium-browser"]
            .into_iter()
            .find_map(|name| {
                std::env::var_os("PATH").and_then(|paths| {
                    std::env::split_paths(&paths)
                        .map(|d| d.join(name))
                        .find(|p| p.is_file())
                })
            })
    });
    path.unwrap_or_else(|| {
        panic!(
            "chromium is not installed: the review page tests need a real headless browser \
             (apt-get install -y --no-install-recommends chromium; .ci/run does this)"
        )
    })
}

/// Run headless Chromium on `url` with extra arguments; returns stdout.
fn browse(profile: &Path, url: &str, args: &[&str]) -> String {
    let o = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium starts");
    assert!(
        o.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The attributes of every review cell in a DOM dump, in page order.
fn cells(dom: &str) -> Vec<HashMap<String, String>> {
    let mut out = Vec::new();
    let mut rest = dom;
    while let Some(i) = rest.find("<td class=\"cell") {
        let tag = &rest[i + 3..];
        let end = tag.find('>').unwrap();
        let mut attrs = HashMap::new();
        let mut t = &tag[..end];
        while let Some(eq) = t.find("=\"") {
            let name = t[..eq].rsplit(' ').next().unwrap().to_string();
            let after = &t[eq + 2..];
            let close = after.find('"').unwrap();
            attrs.insert(name, after[..close].to_string());
            t = &after[close + 1..];
        }
        out.push(attrs);
        rest = &tag[end..];
    }
    out
}

/// Keys of the cells a DOM dump shows (not hidden).
fn shown(dom: &str) -> BTreeSet<String> {
    cells(dom)
        .into_iter()
        .filter(|c| !c.contains_key("hidden"))
        .map(|c| c["data-key"].clone())
        .collect()
}

#[test]
fn the_review_page_in_a_headless_browser_shows_every_asset_and_failure_and_its_filters_work() {
    let emu = Emu::start(adloc_emulator::Faults::default());
    let ws = Workspace::new();
    ws.append_toml("\n[rate_limit]\nrpm = 60000\n");
    // One message's pictures are blocked by the model's safety filter.
    ws.edit(
        "rows.csv",
        "A cheerful delivery scene",
        "EMULATE_IMAGE_SAFETY A cheerful delivery scene",
    );
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example", "--mode", "realtime"]);
    assert_eq!(
        code(&o),
        3,
        "partial failure expected; stderr: {}",
        stderr(&o)
    );
    let o = ws.adloc(&["approve", "campaigns/example", "en-US/*/*", "--by", "ana"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let o = ws.adloc(&[
        "reject",
        "campaigns/example",
        "ja-JP/hero/spring-sale",
        "--note",
        "<b>too dark</b> & \"flat\"",
    ]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    // `adloc review` rebuilds the page from the state alone.
    std::fs::remove_dir_all(ws.out().join("review")).unwrap();
    let o = ws.adloc(&["review", "example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let page = ws.out().join("review/index.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains(KEY), "an API key reached the review page");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page loads nothing from a network"
    );
    assert!(
        !html.contains("<b>too dark</b>"),
        "a note reached the page unescaped"
    );

    let m = ws.manifest();
    let mut expected: BTreeMap<String, String> = approvals(&m);
    let failures = m["failures"].as_array().unwrap();
    assert!(!failures.is_empty());
    for f in failures {
        let k = format!(
            "{}/{}/{}",
            f["locale"].as_str().unwrap(),
            f["variant"].as_str().unwrap(),
            f["row_id"].as_str().unwrap()
        );
        expected.insert(k, f["state"].as_str().unwrap().to_string());
    }
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.display());

    // Every asset and every failure is a cell with its state; thumbnails
    // are small files made for the page, never the masters.
    let dom = browse(profile.path(), &url, &["--dump-dom"]);
    let all = cells(&dom);
    let seen: BTreeMap<String, String> = all
        .iter()
        .map(|c| (c["data-key"].clone(), c["data-state"].clone()))
        .collect();
    assert_eq!(seen, expected);
    assert!(all.iter().all(|c| !c.contains_key("hidden")));
    for a in m["assets"].as_array().unwrap() {
        let thumb = ws
            .out()
            .join("review/thumbs")
            .join(format!("{}.jpg", a["sha256"].as_str().unwrap()));
        let len = std::fs::metadata(&thumb).unwrap().len();
        assert!(
            len < a["bytes"].as_u64().unwrap(),
            "{} is no thumbnail",
            thumb.display()
        );
    }
    for f in failures {
        assert!(dom.contains(f["reason"].as_str().unwrap()));
    }
    assert!(
        dom.contains("&lt;b&gt;too dark&lt;/b&gt; &amp; \"flat\""),
        "the note is shown as text"
    );
    // Right-to-left copy reads right to left.
    assert!(dom.contains("<dl class=\"copy\" lang=\"ar-SA\" dir=\"rtl\">"));
    assert!(dom.contains("<dl class=\"copy\" lang=\"de-DE\" dir=\"ltr\">"));

    // The filters, applied by the page's script from the URL fragment.
    let only = |want: &dyn Fn(&str, &str) -> bool| -> BTreeSet<String> {
        expected
            .iter()
            .filter(|(k, s)| want(k, s))
            .map(|(k, _)| k.clone())
            .collect()
    };
    let dom = browse(
        profile.path(),
        &format!("{url}#state=failed"),
        &["--dump-dom"],
    );
    assert_eq!(shown(&dom), only(&|_, s| s == "failed" || s == "blocked"));
    let dom = browse(
        profile.path(),
        &format!("{url}#state=approved&variant=hero"),
        &["--dump-dom"],
    );
    assert_eq!(
        shown(&dom),
        only(&|k, s| s == "approved" && k.split('/').nth(1) == Some("hero"))
    );
    let dom = browse(
        profile.path(),
        &format!("{url}#state=rejected"),
        &["--dump-dom"],
    );
    assert_eq!(
        shown(&dom),
        BTreeSet::from(["ja-JP/hero/spring-sale".to_string()])
    );
    let dom = browse(
        profile.path(),
        &format!("{url}#locale=de-DE&state=pending"),
        &["--dump-dom"],
    );
    assert_eq!(
        shown(&dom),
        only(&|k, s| s == "pending" && k.starts_with("de-DE/"))
    );

    // A screenshot of the page is a picture, not a blank.
    let shot = profile.path().join("review.png");
    browse(
        profile.path(),
        &url,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,1000",
        ],
    );
    let img = image::open(&shot).unwrap().to_rgb8();
    assert_eq!((img.width(), img.height()), (1400, 1000));
    let colours: BTreeSet<[u8; 3]> = img.pixels().step_by(7).map(|p| p.0).collect();
    assert!(
        colours.len() > 500,
        "screenshot looks blank: {} colours",
        colours.len()
    );
    // `ADLOC_REVIEW_SCREENSHOT=docs/review.png` keeps it (the README's picture).
    if let Some(keep) = std::env::var_os("ADLOC_REVIEW_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}

// ---------------------------------------------------------------------
// Revise by editing.

/// The assets of a manifest by key (`locale/variant/row`).
fn assets_by_key(m: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (key_of(a["path"].as_str().unwrap()), a.clone()))
        .collect()
}

/// Decode a file as an image: real bytes, not just a checksum.
fn decoded(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

fn with_poll(mut env: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    env.push(("ADLOC_BATCH_POLL_MS", "40".to_string()));
    env
}

#[test]
fn three_rejections_make_exactly_three_gemini_edits_that_carry_the_image_its_signature_and_the_note()
 {
    let emu = Emu::start(adloc_emulator::Faults::default());
    let ws = Workspace::new();
    let env = with_poll(emu.env());
    // First run in batch mode (the example's): signatures come from batch results.
    let o = ws.adloc_with(&env, &["run", "campaigns/example", "--provider", "gemini"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let m = ws.manifest();
    let first = assets_by_key(&m);
    let total = first.len();
    let stored: Vec<Vec<String>> =
        ws.sql_rows("SELECT COUNT(*) FROM jobs WHERE sha256 IS NOT NULL AND thought_signature IS NULL AND locale != 'und'");
    assert_eq!(
        stored[0][0], "0",
        "every painted image keeps its thought signature"
    );

    // Approve 80 %, reject 3 model-painted assets with notes.
    let painted: Vec<&String> = first
        .iter()
        .filter(|(_, a)| a["overlay"].is_null())
        .map(|(k, _)| k)
        .collect();
    let to_reject: Vec<&String> = painted.iter().step_by(7).take(3).copied().collect();
    let to_approve: Vec<&String> = first
        .keys()
        .filter(|k| !to_reject.contains(k))
        .take(total * 8 / 10)
        .collect();
    let note = |i: usize| format!("Make the headline bigger, variant {i}");
    let mut csv = String::from("asset,decision,note,by\n");
    for k in &to_approve {
        csv.push_str(&format!("{k},approve,,ana\n"));
    }
    for (i, k) in to_reject.iter().enumerate() {
        csv.push_str(&format!("{k},reject,\"{}\",ben\n", note(i)));
    }
    std::fs::write(ws.path().join("decisions.csv"), csv).unwrap();
    let o = ws.adloc(&["review", "import", "campaigns/example", "decisions.csv"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let before = emu.stats();
    assert!(before.edits.is_empty());

    // Second run, realtime: exactly three edits, nothing else bought.
    let o = ws.adloc_with(
        &env,
        &[
            "run",
            "campaigns/example",
            "--provider",
            "gemini",
            "--mode",
            "realtime",
        ],
    );
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let after = emu.stats();
    assert_eq!(after.edits.len(), 3, "{:?}", after.edits);
    assert_eq!(after.billed_images - before.billed_images, 3);
    assert_eq!(after.generate_calls - before.generate_calls, 3);
    let signatures: HashMap<String, String> = ws
        .sql_rows("SELECT sha256, thought_signature FROM revisions")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    assert_eq!(signatures.len(), 3);
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let second = assets_by_key(&m);
    let states = approvals(&m);
    for (i, k) in to_reject.iter().enumerate() {
        let old = &first[*k];
        let new = &second[*k];
        let old_sha = old["sha256"].as_str().unwrap();
        let edit = after
            .edits
            .iter()
            .find(|e| e.image_sha256 == old_sha)
            .unwrap_or_else(|| panic!("no edit sent the image of {k}"));
        assert_eq!(edit.surface, "gemini");
        assert_eq!(edit.instruction, note(i), "the note is the instruction");
        assert_eq!(
            edit.thought_signature.as_deref(),
            Some(signatures[old_sha].as_str()),
            "the signature stored with the image is sent back"
        );
        assert!(
            edit.signature_issued,
            "the signature is the one the model gave"
        );
        // The revision replaces the asset at its path; the old one is kept.
        assert_eq!(new["path"], old["path"]);
        assert_ne!(new["sha256"], old["sha256"]);
        assert_eq!(new["revision"], 2);
        assert_eq!(new["parent_sha256"], old["sha256"]);
        assert_eq!(states[*k], "pending", "a revision waits for a new decision");
        let history = new["history"].as_array().unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0]["revision"], 1);
        assert_eq!(history[0]["sha256"], old["sha256"]);
        assert_eq!(history[0]["note"], note(i));
        let kept = history[0]["path"].as_str().unwrap();
        let path = old["path"].as_str().unwrap();
        let (stem, ext) = path.rsplit_once('.').unwrap();
        assert_eq!(kept, format!("{stem}.r1.{ext}"));
        assert_eq!(sha256_file(&ws.out().join(kept)), old_sha);
        assert_eq!(
            sha256_file(&ws.out().join(path)),
            new["sha256"].as_str().unwrap()
        );
        assert_eq!(
            decoded(&ws.out().join(path)),
            decoded(&ws.out().join(kept)),
            "the edit keeps the frame"
        );
    }
    for k in &to_approve {
        assert_eq!(states[*k], "approved", "{k}");
        assert_eq!(second[*k]["revision"], 1);
        assert!(second[*k].get("history").is_none());
    }

    // An unchanged rerun edits nothing and keeps every decision.
    let o = ws.adloc_with(&env, &["run", "campaigns/example", "--provider", "gemini"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert_eq!(emu.stats().edits.len(), 3);
    assert_eq!(emu.stats().billed_images, after.billed_images);
    assert_eq!(approvals(&ws.manifest()), states);

    // Rejecting revision 2 makes revision 3, in batch mode this time.
    let k = to_reject[0];
    let o = ws.adloc(&[
        "reject",
        "example",
        k,
        "--note",
        "Warmer light",
        "--by",
        "ben",
    ]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let o = ws.adloc_with(&env, &["run", "campaigns/example", "--provider", "gemini"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let stats = emu.stats();
    assert_eq!(stats.edits.len(), 4);
    let last = &stats.edits[3];
    assert!(last.batch);
    assert_eq!(last.image_sha256, second[k]["sha256"].as_str().unwrap());
    assert_eq!(last.instruction, "Warmer light");
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let third = &assets_by_key(&m)[k];
    assert_eq!(third["revision"], 3);
    assert_eq!(third["parent_sha256"], second[k]["sha256"]);
    let history = third["history"].as_array().unwrap();
    assert_eq!(
        history
            .iter()
            .map(|h| h["revision"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    for h in history {
        assert_eq!(
            sha256_file(&ws.out().join(h["path"].as_str().unwrap())),
            h["sha256"].as_str().unwrap()
        );
    }
}

#[test]
fn a_rejected_gpt_image_asset_is_revised_through_images_edits_with_its_image_in_a_batch_line() {
    let emu = Emu::start(adloc_emulator::Faults::default());
    let ws = Workspace::new();
    ws.small_campaign(&[("a", "a ridge"), ("b", "a lake")]);
    let p = ws.campaign().join("campaign.toml");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("gemini-3.1-flash-image", "gpt-image-2.6-sunburst");
    std::fs::write(&p, text).unwrap();
    let env = with_poll(emu.openai_env());
    let o = ws.adloc_with(&env, &["run", "campaigns/example", "--provider", "openai"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let first = assets_by_key(&ws.manifest());
    let edits_before = emu.stats().openai.edit_calls;
    let o = ws.adloc(&[
        "reject",
        "example",
        "en-US/hero/a",
        "--note",
        "Add a sunset",
        "--by",
        "ben",
    ]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
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
    let stats = emu.stats();
    assert_eq!(stats.openai.edit_calls, edits_before, "no realtime edit");
    assert_eq!(stats.edits.len(), 1, "{:?}", stats.edits);
    let e = &stats.edits[0];
    assert_eq!((e.surface.as_str(), e.batch), ("openai", true));
    assert_eq!(
        e.image_sha256,
        first["en-US/hero/a"]["sha256"].as_str().unwrap()
    );
    assert_eq!(e.instruction, "Add a sunset");
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let now = assets_by_key(&m);
    assert_eq!(now["en-US/hero/a"]["revision"], 2);
    assert_eq!(
        now["en-US/hero/a"]["parent_sha256"],
        first["en-US/hero/a"]["sha256"]
    );
    assert_eq!(now["en-US/hero/b"], first["en-US/hero/b"]);
    decoded(&ws.out().join(now["en-US/hero/a"]["path"].as_str().unwrap()));
}

/// A GPT Image batch file targets one endpoint: a `text = "edit"` locale
/// (sent to `/v1/images/edits`) and a new row's generation pending in the
/// same run go in two batches, never one the service would refuse.
#[test]
fn a_gpt_image_locale_edit_and_a_new_generation_in_one_batch_run_go_in_separate_batches() {
    let emu = Emu::start(adloc_emulator::Faults::default());
    let ws = Workspace::new();
    ws.small_campaign(&[("a", "a ridge")]);
    let p = ws.campaign().join("campaign.toml");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("gemini-3.1-flash-image", "gpt-image-2.6-sunburst")
        .replace(
            "locales = [\"en-US\"]",
            "locales = [\"en-US\", \"de-DE\"]\nbase_locale = \"en-US\"",
        )
        .replace(
            "template = \"hero.hbs\"",
            "template = \"hero.hbs\"\ntext = \"edit\"",
        )
        .replace("mode = \"realtime\"", "mode = \"batch\"");
    std::fs::write(&p, text).unwrap();
    let rows = ws.campaign().join("rows.csv");
    std::fs::write(
        &rows,
        "id,scene,headline,headline.de-DE\na,a ridge,Hello,Hallo\n",
    )
    .unwrap();
    let env = with_poll(emu.openai_env());
    let o = ws.adloc_with(&env, &["run", "campaigns/example", "--provider", "openai"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    // Row a's German copy changes (a locale edit is due) and row b is new
    // (its base locale is a generation): both are pending in one pass.
    std::fs::write(
        &rows,
        "id,scene,headline,headline.de-DE\na,a ridge,Hello,Servus\nb,a lake,Hi,Gruess dich\n",
    )
    .unwrap();
    let o = ws.adloc_with(&env, &["run", "campaigns/example", "--provider", "openai"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let now = assets_by_key(&m);
    for key in [
        "en-US/hero/a",
        "de-DE/hero/a",
        "en-US/hero/b",
        "de-DE/hero/b",
    ] {
        assert_eq!(now[key]["mode"], "batch", "{key}: {}", now[key]);
        decoded(&ws.out().join(now[key]["path"].as_str().unwrap()));
    }
    assert!(emu.stats().edits.iter().all(|e| e.batch));
}

#[test]
fn a_gpt_image_batch_edit_asks_a_json_edit_size_and_quality_and_is_stored_at_its_exact_frame() {
    let emu = Emu::start(adloc_emulator::Faults::default());
    let ws = Workspace::new();
    ws.small_campaign(&[("a", "a ridge")]);
    // 16:9 at 1K is 1376x768, which only the multipart form takes; xhigh is
    // not in the JSON edit body's quality set either.
    ws.edit(
        "campaign.toml",
        "aspect_ratio = \"16:9\"\n",
        "aspect_ratio = \"16:9\"\nmodel = \"gpt-image-2.5-sunburst\"\nquality = \"xhigh\"\n",
    );
    let env = with_poll(emu.openai_env());
    let o = ws.adloc_with(&env, &["run", "campaigns/example", "--provider", "openai"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let first = assets_by_key(&ws.manifest());
    let o = ws.adloc(&[
        "reject",
        "example",
        "en-US/hero/a",
        "--note",
        "Add a sunset",
        "--by",
        "ben",
    ]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let args = [
        "run",
        "campaigns/example",
        "--provider",
        "openai",
        "--mode",
        "batch",
    ];
    let o = ws.adloc_with(&env, &args);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let stats = emu.stats();
    assert_eq!(stats.edits.len(), 1, "{:?}", stats.edits);
    let e = &stats.edits[0];
    assert_eq!((e.surface.as_str(), e.batch), ("openai", true));
    assert_eq!(e.size.as_deref(), Some("1536x1024"), "{e:?}");
    assert_eq!(e.quality.as_deref(), Some("high"), "{e:?}");
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let now = assets_by_key(&m);
    let a = &now["en-US/hero/a"];
    assert_eq!(a["revision"], 2, "{a}");
    assert_eq!(a["parent_sha256"], first["en-US/hero/a"]["sha256"]);
    assert_eq!(
        (a["width"].as_u64(), a["height"].as_u64()),
        (Some(1376), Some(768))
    );
    assert_eq!(
        decoded(&ws.out().join(a["path"].as_str().unwrap())),
        (1376, 768)
    );
    assert_eq!(assert_manifest_matches_files(&ws.out(), &m), 1);
}

#[test]
fn a_kill_during_an_edit_never_buys_the_edit_batch_twice_and_a_resent_edit_sends_the_kept_image() {
    let emu = Emu::start(adloc_emulator::Faults::default());
    let ws = Workspace::new();
    ws.small_campaign(&[("a", "a ridge"), ("b", "a lake"), ("c", "a forest")]);
    let env = with_poll(emu.env());
    let o = ws.adloc_with(&env, &["run", "campaigns/example", "--provider", "gemini"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let first = assets_by_key(&ws.manifest());
    for k in ["en-US/hero/a", "en-US/hero/b"] {
        let o = ws.adloc(&["reject", "example", k, "--note", "Less fog", "--by", "ben"]);
        assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    }

    // Killed right after the edit batch was created remotely: the rerun
    // finds it by its name and ingests it, it does not create another.
    let mut crash = env.clone();
    crash.push(("ADLOC_CRASH_AT", "batch-after-create".to_string()));
    let args = [
        "run",
        "campaigns/example",
        "--provider",
        "gemini",
        "--mode",
        "batch",
    ];
    let o = ws.adloc_with(&crash, &args);
    assert_ne!(code(&o), 0, "the crash point aborts the run");
    let o = ws.adloc_with(&env, &args);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let stats = emu.stats();
    assert_eq!(stats.batches_created, 1, "{:?}", stats.batch_display_names);
    assert_eq!(stats.batch_billed_images, 2);
    assert_eq!(stats.edits.len(), 2);
    let second = assets_by_key(&ws.manifest());
    for k in ["en-US/hero/a", "en-US/hero/b"] {
        assert_eq!(second[k]["revision"], 2, "{k}");
    }
    assert_eq!(second["en-US/hero/c"]["revision"], 1);

    // Killed after the edited image replaced the asset but before it was
    // recorded: the rerun sends the edit again, of the kept image (the
    // asset path already holds the unrecorded new one).
    let o = ws.adloc(&[
        "reject",
        "example",
        "en-US/hero/c",
        "--note",
        "More trees",
        "--by",
        "ben",
    ]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let mut crash = env.clone();
    crash.push(("ADLOC_CRASH_AT", "after-asset-rename".to_string()));
    let args = [
        "run",
        "campaigns/example",
        "--provider",
        "gemini",
        "--mode",
        "realtime",
    ];
    let o = ws.adloc_with(&crash, &args);
    assert_ne!(code(&o), 0);
    let o = ws.adloc_with(&env, &args);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let stats = emu.stats();
    let c_sha = first["en-US/hero/c"]["sha256"].as_str().unwrap();
    let sent: Vec<&str> = stats.edits[2..]
        .iter()
        .map(|e| e.image_sha256.as_str())
        .collect();
    assert_eq!(
        sent,
        vec![c_sha, c_sha],
        "both calls edit the original image"
    );
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let c = &assets_by_key(&m)["en-US/hero/c"];
    assert_eq!(c["revision"], 2);
    assert_eq!(c["parent_sha256"], c_sha);
    assert_eq!(c["history"].as_array().unwrap().len(), 1);
    assert_eq!(
        sha256_file(&ws.out().join(c["path"].as_str().unwrap())),
        c["sha256"].as_str().unwrap()
    );
}

#[test]
fn revision_three_sends_prompt_turn_one_note_one_turn_two_note_two_with_every_signature_as_issued_in_realtime_and_batch()
 {
    let rows: Vec<(String, String)> = (0..8)
        .map(|i| (format!("r{i}"), format!("a ridge at dawn {i}")))
        .collect();
    let scenes: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut leading_texts = 0;
    for mode in ["realtime", "batch"] {
        let emu = Emu::start(adloc_emulator::Faults::default());
        let ws = Workspace::new();
        ws.small_campaign(&scenes);
        let env = with_poll(emu.env());
        let run = |ws: &Workspace| {
            let o = ws.adloc_with(
                &env,
                &[
                    "run",
                    "campaigns/example",
                    "--provider",
                    "gemini",
                    "--mode",
                    mode,
                ],
            );
            assert_eq!(code(&o), 0, "{mode}: {}", stderr(&o));
        };
        let reject_all = |ws: &Workspace, note: &str| {
            for (id, _) in &scenes {
                let k = format!("en-US/hero/{id}");
                let o = ws.adloc(&["reject", "example", &k, "--note", note, "--by", "ben"]);
                assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
            }
        };
        run(&ws);
        reject_all(&ws, "Bigger logo");
        run(&ws);
        reject_all(&ws, "Warmer light");
        let before = emu.stats().conversations.len();
        run(&ws);
        let stats = emu.stats();
        let third = &stats.conversations[before..];
        assert_eq!(third.len(), scenes.len(), "{mode}: one edit per asset");
        let m = ws.manifest();
        assert_manifest_valid(&m);
        let assets = assets_by_key(&m);
        let stored: Vec<Vec<String>> =
            ws.sql_rows("SELECT COUNT(*) FROM revisions WHERE model_turn IS NULL");
        assert_eq!(
            stored[0][0], "0",
            "every replaced image keeps its model turn"
        );
        for (id, scene) in &scenes {
            let a = &assets[&format!("en-US/hero/{id}")];
            assert_eq!(a["revision"], 3, "{mode} {id}");
            let history = a["history"].as_array().unwrap();
            let (r1, r2) = (
                history[0]["sha256"].as_str().unwrap(),
                history[1]["sha256"].as_str().unwrap(),
            );
            let image_of = |t: &adloc_emulator::TurnSeen| {
                t.parts
                    .iter()
                    .find_map(|p| p.image_sha256.clone())
                    .unwrap_or_default()
            };
            let conv = third
                .iter()
                .find(|c| c.turns.len() > 1 && image_of(&c.turns[1]) == r1)
                .unwrap_or_else(|| panic!("{mode}: no edit replayed revision 1 of {id}"));
            assert_eq!(conv.batch, mode == "batch");
            let roles: Vec<&str> = conv.turns.iter().map(|t| t.role.as_str()).collect();
            assert_eq!(
                roles,
                ["user", "model", "user", "model", "user"],
                "{mode} {id}"
            );
            let text = |t: &adloc_emulator::TurnSeen| {
                t.parts
                    .iter()
                    .filter_map(|p| p.text.clone())
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            assert!(
                text(&conv.turns[0]).contains(scene),
                "the prompt comes first"
            );
            assert_eq!(text(&conv.turns[2]), "Bigger logo");
            assert_eq!(text(&conv.turns[4]), "Warmer light");
            assert_eq!(
                image_of(&conv.turns[3]),
                r2,
                "model turn 2 carries revision 2"
            );
            for t in [&conv.turns[1], &conv.turns[3]] {
                for p in &t.parts {
                    if p.image_sha256.is_some() {
                        assert!(p.thought_signature.is_some(), "every image part is signed");
                    }
                    if p.thought_signature.is_some() {
                        assert!(p.signature_issued, "{mode} {id}: a signature as issued");
                    }
                }
                if t.parts[0].text.is_some() {
                    assert!(t.parts[0].thought_signature.is_some());
                    leading_texts += 1;
                }
            }
        }
    }
    assert!(
        leading_texts > 0,
        "some model turn leads with a signed text part"
    );
}

/// The small campaign with en-US and de-DE, its hero variant
/// `text = "edit"` (de-DE is an edit of the en-US image), and `rows` as
/// its rows CSV.
fn text_edit_campaign(ws: &Workspace, rows: &str) {
    ws.small_campaign(&[]);
    std::fs::write(ws.campaign().join("rows.csv"), rows).unwrap();
    let p = ws.campaign().join("campaign.toml");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace(
            "locales = [\"en-US\"]",
            "locales = [\"en-US\", \"de-DE\"]\nbase_locale = \"en-US\"",
        )
        .replace(
            "template = \"hero.hbs\"",
            "template = \"hero.hbs\"\ntext = \"edit\"",
        );
    std::fs::write(&p, text).unwrap();
}

#[test]
fn a_text_edit_locale_is_one_unsigned_user_turn_with_the_base_image_and_the_instruction() {
    for mode in ["realtime", "batch"] {
        let emu = Emu::start(adloc_emulator::Faults::default());
        let ws = Workspace::new();
        text_edit_campaign(
            &ws,
            "id,scene,headline,headline.de-DE\na,a ridge,Own the ridge.,Erobere den Grat.\n\
             b,a lake,Calm water.,Stilles Wasser.\n",
        );
        let env = with_poll(emu.env());
        let o = ws.adloc_with(
            &env,
            &[
                "run",
                "campaigns/example",
                "--provider",
                "gemini",
                "--mode",
                mode,
            ],
        );
        assert_eq!(code(&o), 0, "{mode}: {}", stderr(&o));
        let stats = emu.stats();
        let m = ws.manifest();
        assert_manifest_valid(&m);
        let assets = assets_by_key(&m);
        assert_eq!(stats.edits.len(), 2, "{mode}: {:?}", stats.edits);
        assert_eq!(stats.conversations.len(), 2);
        for (id, de) in [("a", "Erobere den Grat."), ("b", "Stilles Wasser.")] {
            let base = assets[&format!("en-US/hero/{id}")]["sha256"]
                .as_str()
                .unwrap()
                .to_string();
            let i = stats
                .edits
                .iter()
                .position(|e| e.image_sha256 == base)
                .unwrap_or_else(|| panic!("{mode}: no edit of the base image of {id}"));
            let e = &stats.edits[i];
            assert_eq!(e.batch, mode == "batch");
            assert_eq!(
                e.thought_signature, None,
                "no signature out of its conversation"
            );
            assert!(
                e.instruction.contains(&format!("with '{de}'")),
                "{}",
                e.instruction
            );
            let conv = &stats.conversations[i];
            assert_eq!(conv.turns.len(), 1, "{mode}: one user turn: {conv:?}");
            let turn = &conv.turns[0];
            assert_eq!(turn.role, "user");
            assert_eq!(turn.parts.len(), 2);
            assert_eq!(turn.parts[0].image_sha256.as_deref(), Some(base.as_str()));
            assert_eq!(turn.parts[1].text.as_deref(), Some(e.instruction.as_str()));
            assert!(turn.parts.iter().all(|p| p.thought_signature.is_none()));
            // The emulator painted the base image's copy with the swap.
            let de_asset = &assets[&format!("de-DE/hero/{id}")];
            let bytes = std::fs::read(ws.out().join(de_asset["path"].as_str().unwrap())).unwrap();
            let painted = emu.handle.as_ref().unwrap().painted(&bytes).unwrap();
            assert_eq!(painted, vec![de.to_string()], "{mode} {id}");
        }
    }
}

/// A `text = "edit"` locale's own image answered one user turn (the base
/// image and the copy instruction), not the locale's prompt: revising it
/// after a rejection is a single unsigned user turn too, its image and the
/// reviewer's note, never its turn replayed after a prompt it never saw.
#[test]
fn revising_a_text_edit_locale_is_one_unsigned_user_turn_with_its_image_and_the_note() {
    let emu = Emu::start(adloc_emulator::Faults::default());
    let ws = Workspace::new();
    text_edit_campaign(
        &ws,
        "id,scene,headline,headline.de-DE\na,a ridge,Own the ridge.,Erobere den Grat.\n",
    );
    let env = with_poll(emu.env());
    let run = || ws.adloc_with(&env, &["run", "campaigns/example", "--provider", "gemini"]);
    let o = run();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let de = assets_by_key(&ws.manifest())["de-DE/hero/a"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let o = ws.adloc(&[
        "reject",
        "example",
        "de-DE/hero/a",
        "--note",
        "Warmer light",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let before = emu.stats().conversations.len();
    let o = run();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let stats = emu.stats();
    assert_eq!(stats.conversations.len(), before + 1, "{:?}", stats.edits);
    let conv = stats.conversations.last().unwrap();
    assert_eq!(conv.turns.len(), 1, "one user turn: {conv:?}");
    let turn = &conv.turns[0];
    assert_eq!(turn.role, "user");
    assert_eq!(turn.parts[0].image_sha256.as_deref(), Some(de.as_str()));
    assert_eq!(turn.parts[1].text.as_deref(), Some("Warmer light"));
    assert!(turn.parts.iter().all(|p| p.thought_signature.is_none()));
    assert_eq!(assets_by_key(&ws.manifest())["de-DE/hero/a"]["revision"], 2);
}
