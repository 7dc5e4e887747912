//! Copy QA through the binary against the emulator: the emulator paints
//! the quoted copy of each prompt into its images (misspelled with a set
//! probability, or always for the `EMULATE_MISSPELL` trigger word), its
//! reader models read it back (misread with a set probability), and adloc
//! must never mark a misspelled asset done.

use adloc_emulator::Faults;

use crate::common::*;

/// A one-locale campaign, hero variant on Gemini, rows of (id, scene,
/// headline), with `[qa]` set by `qa` (TOML lines) and fast retries.
fn qa_campaign(ws: &Workspace, rows: &[(&str, &str, &str)], mode: &str, qa: &str) {
    let dir = ws.campaign();
    let mut csv = String::from("id,scene,headline\n");
    for (id, scene, headline) in rows {
        csv.push_str(&format!("{id},{scene},{headline}\n"));
    }
    std::fs::write(dir.join("rows.csv"), csv).unwrap();
    std::fs::write(
        dir.join("campaign.toml"),
        format!(
            "name = \"example\"\nrows = \"rows.csv\"\nlocales = [\"en-US\"]\nmodel = \"gemini-3.1-flash-image\"\nmode = \"{mode}\"\n\n\
             [[variants]]\nname = \"hero\"\ntemplate = \"hero.hbs\"\naspect_ratio = \"16:9\"\n\n\
             [qa]\nreader = \"gemini-3.1-flash-lite\"\nexpect = [\"headline\"]\n{qa}\n\
             [rate_limit]\nrpm = 60000\n\n[retry]\nbase_delay_ms = 1\nmax_delay_ms = 5\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("templates/hero.hbs"),
        "A hero banner. Scene: {{row.scene}}. Headline, exactly: \"{{row.headline}}\"",
    )
    .unwrap();
}

fn rows(n: usize) -> Vec<(String, String, String)> {
    (0..n)
        .map(|i| {
            (
                format!("r{i:02}"),
                format!("mountain scene {i}"),
                format!("Own the ridge {i}."),
            )
        })
        .collect()
}

fn borrowed(rows: &[(String, String, String)]) -> Vec<(&str, &str, &str)> {
    rows.iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect()
}

fn run(ws: &Workspace, emu: &Emu, extra: &[&str]) -> std::process::Output {
    let mut env = emu.env();
    env.push(("ADLOC_BATCH_POLL_MS", "40".to_string()));
    let mut args = vec!["run", "campaigns/example"];
    args.extend_from_slice(extra);
    ws.adloc_with(&env, &args)
}

/// Every done asset carries exactly its expected copy (as the emulator
/// painted it); every QA failure is `text_mismatch`. Returns (done, failed).
fn assert_no_misspelled_asset_is_done(ws: &Workspace, emu: &Emu) -> (usize, usize) {
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let assets = m["assets"].as_array().unwrap();
    for a in assets {
        let bytes = std::fs::read(ws.out().join(a["path"].as_str().unwrap())).unwrap();
        let painted = emu
            .handle
            .as_ref()
            .unwrap()
            .painted(&bytes)
            .expect("an emulator image carries what it painted");
        let qa = &a["qa"];
        assert_eq!(qa["verdict"], "pass", "{a}");
        let expected = qa["strings"][0]["expected"].as_str().unwrap();
        assert!(
            painted.iter().any(|p| p == expected),
            "asset {} marked done but painted {painted:?}, expected {expected:?}",
            a["path"]
        );
        assert_eq!(qa["strings"][0]["cer"], 0.0, "{a}");
    }
    let failures = m["failures"].as_array().unwrap();
    for f in failures {
        assert_eq!(f["reason"], "text_mismatch", "{f}");
    }
    (assets.len(), failures.len())
}

/// 20 rows with a fifth of the images painted misspelled, up to 3
/// regenerations, run in `mode`; checks no misspelled asset is done and
/// the exit code matches the failures.
fn run_fifth_misspelled(mode: &str) -> (Emu, Workspace, std::process::Output) {
    let emu = Emu::start(Faults {
        misspell_rate: 0.2,
        ..Faults::default()
    });
    let ws = Workspace::new();
    let r = rows(20);
    qa_campaign(&ws, &borrowed(&r), mode, "max_regenerations = 3\n");
    let o = run(&ws, &emu, &[]);
    let (done, failed) = assert_no_misspelled_asset_is_done(&ws, &emu);
    assert_eq!(done + failed, 20);
    assert_eq!(code(&o), if failed > 0 { 3 } else { 0 }, "{}", stderr(&o));
    (emu, ws, o)
}

/// The sum of a `qa` counter over every asset and failure of the manifest.
fn qa_sum(m: &serde_json::Value, field: &str) -> u64 {
    m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .chain(m["failures"].as_array().unwrap())
        .map(|a| a["qa"][field].as_u64().unwrap())
        .sum()
}

#[test]
fn with_a_fifth_of_images_misspelled_no_misspelled_asset_is_marked_done_in_realtime() {
    let (emu, ws, o) = run_fifth_misspelled("realtime");
    let t = &ws.manifest()["totals"];
    let s = emu.stats();
    assert!(s.misspelled > 0, "the fault never fired: {s:?}");
    assert!(
        t["qa_regenerated"].as_u64().unwrap() > 0,
        "misspelled images were never regenerated: {t}"
    );
    // Every image bought is one first image or one regeneration.
    let regenerations = qa_sum(&ws.manifest(), "regenerations");
    assert_eq!(s.billed_images, 20 + regenerations, "{s:?}");
    assert!(t["qa_cost_usd"].as_f64().unwrap() > 0.0, "{t}");
    assert!(stdout(&o).contains("copy QA:"), "{}", stdout(&o));
}

#[test]
fn with_a_fifth_of_images_misspelled_no_misspelled_asset_is_marked_done_in_batch() {
    let (emu, ws, _o) = run_fifth_misspelled("batch");
    let s = emu.stats();
    assert!(s.misspelled > 0, "{s:?}");
    // Images, first and regenerated, are bought in batches, and so are
    // the reads.
    assert_eq!(s.realtime_billed_images, 0, "{s:?}");
    assert!(
        s.batches_created >= 3,
        "regenerations or reads were not batched: {s:?}"
    );
    assert_eq!(s.read_calls, 0, "a read went realtime: {s:?}");
    let m = ws.manifest();
    assert_eq!(s.reads_billed, qa_sum(&m, "reads"), "{s:?}");
}

#[test]
fn readers_that_deprecated_temperature_read_every_image_in_realtime_and_batch() {
    // The changelog of 2026-07-21 deprecates `temperature`, `top_p` and
    // `top_k` for these two readers; the emulator refuses them with 400.
    for reader in ["gemini-3.6-flash", "gemini-3.5-flash-lite"] {
        for mode in ["realtime", "batch"] {
            let emu = Emu::start(Faults::default());
            let ws = Workspace::new();
            let r = rows(3);
            qa_campaign(&ws, &borrowed(&r), mode, "");
            let toml = ws.campaign().join("campaign.toml");
            let text = std::fs::read_to_string(&toml).unwrap();
            std::fs::write(
                &toml,
                text.replace(
                    "reader = \"gemini-3.1-flash-lite\"",
                    &format!("reader = \"{reader}\""),
                ),
            )
            .unwrap();
            let o = run(&ws, &emu, &[]);
            assert_eq!(code(&o), 0, "{reader} {mode}: {}", stderr(&o));
            let (done, failed) = assert_no_misspelled_asset_is_done(&ws, &emu);
            assert_eq!((done, failed), (r.len(), 0), "{reader} {mode}");
            let m = ws.manifest();
            for a in m["assets"].as_array().unwrap() {
                assert_eq!(a["qa"]["reader"], reader, "{a}");
            }
            assert_eq!(emu.stats().reads_billed, r.len() as u64, "{reader} {mode}");
        }
    }
}

#[test]
fn batched_reads_cost_half_of_realtime_reads() {
    let cost = |mode: &str| {
        let emu = Emu::start(Faults::default());
        let ws = Workspace::new();
        let r = rows(4);
        qa_campaign(&ws, &borrowed(&r), mode, "");
        let o = run(&ws, &emu, &[]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let t = ws.manifest()["totals"].clone();
        assert_eq!(t["qa_pass"], 4, "{t}");
        t["qa_cost_usd"].as_f64().unwrap()
    };
    let (realtime, batch) = (cost("realtime"), cost("batch"));
    assert!(realtime > 0.0);
    assert!(
        // Both are rounded to the micro-dollar in the manifest.
        (batch * 2.0 - realtime).abs() <= 1e-5,
        "batch reads ${batch}, realtime ${realtime}"
    );
}

#[test]
fn a_kill_mid_qa_in_batch_mode_pays_for_no_read_and_no_regeneration_twice() {
    // Read batch created but not recorded; killed while applying a read
    // batch's results; regeneration batch created but not recorded.
    for crash in [
        "read-batch-after-create:1",
        "read-batch-ingest-item:3",
        "batch-after-create:2",
    ] {
        let emu = Emu::start(Faults::default());
        let ws = Workspace::new();
        qa_campaign(
            &ws,
            &[
                ("a", "a lake", "Hello lake."),
                ("b", "a ridge EMULATE_MISSPELL", "Own the ridge."),
                ("c", "a forest", "Into the woods."),
                ("d", "a peak EMULATE_MISSPELL", "Reach the top."),
                ("e", "a river", "Follow the river."),
            ],
            "batch",
            "max_regenerations = 1\n",
        );
        let mut env = emu.env();
        env.push(("ADLOC_BATCH_POLL_MS", "40".to_string()));
        env.push(("ADLOC_CRASH_AT", crash.to_string()));
        let o = ws.adloc_with(&env, &["run", "campaigns/example"]);
        assert_ne!(code(&o), 0, "{crash} did not fire: {}", stderr(&o));
        assert_ne!(code(&o), 3, "{crash} did not fire: {}", stderr(&o));
        let o = run(&ws, &emu, &[]);
        assert_eq!(code(&o), 3, "{crash}: {}", stderr(&o));
        let (done, failed) = assert_no_misspelled_asset_is_done(&ws, &emu);
        assert_eq!((done, failed), (3, 2), "{crash}");
        let m = ws.manifest();
        let s = emu.stats();
        assert_eq!(
            s.billed_images,
            5 + qa_sum(&m, "regenerations"),
            "{crash}: {s:?}"
        );
        assert_eq!(s.reads_billed, qa_sum(&m, "reads"), "{crash}: {s:?}");
        assert_eq!(s.read_calls, 0, "{crash}: {s:?}");
    }
}

#[test]
fn a_misread_is_caught_by_the_second_read_and_causes_no_regeneration() {
    let emu = Emu::start(Faults {
        misread_rate: 0.2,
        ..Faults::default()
    });
    let ws = Workspace::new();
    let r = rows(12);
    qa_campaign(&ws, &borrowed(&r), "realtime", "");
    let o = run(&ws, &emu, &["--concurrency", "1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (done, failed) = assert_no_misspelled_asset_is_done(&ws, &emu);
    assert_eq!((done, failed), (12, 0));
    let s = emu.stats();
    assert!(s.misread > 0, "the misread fault never fired: {s:?}");
    let m = ws.manifest();
    let reread = m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["qa"]["reads"] == 2 && a["qa"]["regenerations"] == 0)
        .count();
    assert!(reread > 0, "no asset was read twice");
    // Nothing was misspelled: an image is bought again only after two
    // misreads in a row (the first is caught by the second read), never
    // after one.
    let regenerations = qa_sum(&m, "regenerations");
    assert_eq!(s.billed_images, 12 + regenerations, "{s:?}");
    assert!(
        regenerations * 2 <= s.misread,
        "{regenerations} regenerations for {} misreads",
        s.misread
    );
}

#[test]
fn regenerations_stop_at_the_limit_and_the_job_fails_with_text_mismatch() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    qa_campaign(
        &ws,
        &[
            ("good", "a calm lake", "Hello lake."),
            ("bad", "a ridge EMULATE_MISSPELL", "Own the ridge."),
        ],
        "realtime",
        "max_regenerations = 2\n",
    );
    let o = run(&ws, &emu, &[]);
    assert_eq!(
        code(&o),
        3,
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let f = &m["failures"][0];
    assert_eq!(f["row_id"], "bad");
    assert_eq!(f["reason"], "text_mismatch");
    assert_eq!(f["qa"]["regenerations"], 2, "{f}");
    // Two reads per image (the second confirms), three images.
    assert_eq!(f["qa"]["reads"], 6, "{f}");
    assert!(
        f["detail"].as_str().unwrap().contains("Own the ridge."),
        "{f}"
    );
    assert_eq!(m["totals"]["qa_failed"], 1);
    assert_eq!(emu.stats().billed_images, 1 + 3);
    // A rerun pays for nothing: the failure stands until `adloc retry`.
    let before = emu.stats();
    let o = run(&ws, &emu, &[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let after = emu.stats();
    assert_eq!(after.billed_images, before.billed_images);
    assert_eq!(after.reads, before.reads);
}

#[test]
fn on_mismatch_fail_fails_at_once_and_keep_keeps_the_image_with_its_verdict() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    qa_campaign(
        &ws,
        &[("bad", "a ridge EMULATE_MISSPELL", "Own the ridge.")],
        "realtime",
        "on_mismatch = \"fail\"\n",
    );
    let o = run(&ws, &emu, &[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let f = &ws.manifest()["failures"][0];
    assert_eq!(f["reason"], "text_mismatch");
    assert_eq!(f["qa"]["regenerations"], 0);
    assert_eq!(f["qa"]["reads"], 2);
    assert_eq!(emu.stats().billed_images, 1);

    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    qa_campaign(
        &ws,
        &[("bad", "a ridge EMULATE_MISSPELL", "Own the ridge.")],
        "realtime",
        "on_mismatch = \"keep\"\n",
    );
    let o = run(&ws, &emu, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let a = &ws.manifest()["assets"][0];
    assert_eq!(a["qa"]["verdict"], "kept", "{a}");
    assert!(a["qa"]["strings"][0]["cer"].as_f64().unwrap() > 0.0, "{a}");
}

#[test]
fn the_local_renderer_skips_qa_and_records_skipped() {
    let ws = Workspace::new();
    let r = rows(3);
    qa_campaign(&ws, &borrowed(&r), "realtime", "");
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let m = ws.manifest();
    assert_manifest_valid(&m);
    for a in m["assets"].as_array().unwrap() {
        assert_eq!(a["provider"], "local");
        assert_eq!(a["qa"]["verdict"], "skipped", "{a}");
        assert_eq!(a["qa"]["reads"], 0);
    }
}

#[test]
fn a_rerun_after_qa_buys_and_reads_nothing() {
    let emu = Emu::start(Faults {
        misspell_rate: 0.3,
        ..Faults::default()
    });
    let ws = Workspace::new();
    let r = rows(8);
    qa_campaign(&ws, &borrowed(&r), "realtime", "max_regenerations = 4\n");
    let o = run(&ws, &emu, &[]);
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    let before = emu.stats();
    let o = run(&ws, &emu, &[]);
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    let after = emu.stats();
    assert_eq!(after.billed_images, before.billed_images);
    assert_eq!(after.reads, before.reads);
}

#[test]
fn a_kill_mid_qa_resumes_where_the_reads_stopped_and_buys_no_image_twice() {
    let emu = Emu::start(Faults {
        misspell_rate: 0.3,
        ..Faults::default()
    });
    let ws = Workspace::new();
    let r = rows(6);
    qa_campaign(&ws, &borrowed(&r), "realtime", "max_regenerations = 4\n");
    let mut env = emu.env();
    env.push(("ADLOC_CRASH_AT", "read-after-call:4".to_string()));
    let o = ws.adloc_with(&env, &["run", "campaigns/example", "--concurrency", "1"]);
    assert_ne!(code(&o), 0, "the crash point did not fire: {}", stderr(&o));
    let o = run(&ws, &emu, &["--concurrency", "1"]);
    assert!(matches!(code(&o), 0 | 3), "{}", stderr(&o));
    assert_no_misspelled_asset_is_done(&ws, &emu);
    let m = ws.manifest();
    let regenerations = qa_sum(&m, "regenerations");
    let reads = qa_sum(&m, "reads");
    let s = emu.stats();
    // No image is bought twice: one per job plus its recorded
    // regenerations, and at most the one image call that was in flight in
    // the image pool (`--concurrency 1`) when the read pool's kill came:
    // the documented realtime exception ("What a crash can and cannot do").
    let bought = 6 + regenerations;
    assert!(
        (bought..=bought + 1).contains(&s.billed_images),
        "{} images billed, {bought} recorded: {s:?}",
        s.billed_images
    );
    // Only the read in flight at the kill is paid again.
    assert!(
        s.reads_billed <= reads + 1,
        "{} reads paid, {reads} recorded",
        s.reads_billed
    );
}

/// `qa_campaign` plus a headline text box (the overlay fallback) and a
/// template that leaves the copy out of the copy-free art.
fn qa_campaign_with_boxes(ws: &Workspace, rows: &[(&str, &str, &str)], mode: &str, qa: &str) {
    qa_campaign(ws, rows, mode, qa);
    let dir = ws.campaign();
    let toml = std::fs::read_to_string(dir.join("campaign.toml")).unwrap();
    let boxes = "[[variants.text_boxes]]\ncolumn = \"headline\"\nx = 0.05\ny = 0.1\nwidth = 0.6\nheight = 0.4\nmin_size = 18\nmax_size = 60\n\n[qa]";
    std::fs::write(dir.join("campaign.toml"), toml.replacen("[qa]", boxes, 1)).unwrap();
    std::fs::write(
        dir.join("templates/hero.hbs"),
        "A hero banner. Scene: {{row.scene}}.{{#if (eq variant.text \"model\")}} Headline, exactly: \"{{row.headline}}\"{{/if}}",
    )
    .unwrap();
}

/// Every asset that fell back to overlay: a composite of the headline on
/// copy-free art (the emulator painted nothing on it), verdict `fail`.
fn assert_fell_back(ws: &Workspace, emu: &Emu, row: &str) {
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let a = m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["row_id"] == row)
        .unwrap_or_else(|| panic!("no asset for {row}: {m}"));
    assert_eq!(a["qa"]["verdict"], "fail", "{a}");
    assert_eq!(a["qa"]["fell_back_to_overlay"], true, "{a}");
    let bytes = std::fs::read(ws.out().join(a["path"].as_str().unwrap())).unwrap();
    let img = image::load_from_memory(&bytes).expect("the composite decodes");
    assert_eq!(
        (img.width(), img.height()),
        (
            a["width"].as_u64().unwrap() as u32,
            a["height"].as_u64().unwrap() as u32
        )
    );
    // The art was asked without the copy, so the model painted none; the
    // headline on it is adloc's typesetting.
    let painted = emu.handle.as_ref().unwrap().painted(&bytes);
    assert!(
        painted.as_ref().is_none_or(|p| p.is_empty()),
        "the fallback art carries model-painted copy {painted:?}"
    );
}

#[test]
fn after_the_last_regeneration_a_variant_with_text_boxes_falls_back_to_typeset_copy() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    qa_campaign_with_boxes(
        &ws,
        &[
            ("good", "a calm lake", "Hello lake."),
            ("bad", "a ridge EMULATE_MISSPELL", "Own the ridge."),
        ],
        "realtime",
        "max_regenerations = 1\n",
    );
    let o = run(&ws, &emu, &[]);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    assert_fell_back(&ws, &emu, "bad");
    let m = ws.manifest();
    let t = &m["totals"];
    assert_eq!(t["qa_fell_back_to_overlay"], 1, "{t}");
    assert_eq!(t["qa_pass"], 1, "{t}");
    assert_eq!(t["qa_failed"], 0, "{t}");
    assert!(m["failures"].as_array().unwrap().is_empty(), "{m}");
    // good: 1 image; bad: the first, one regeneration, then the art.
    assert_eq!(emu.stats().billed_images, 1 + 3);
    // The typeset asset is exact: it is not read again, and a rerun buys
    // and reads nothing.
    let before = emu.stats();
    let o = run(&ws, &emu, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let after = emu.stats();
    assert_eq!(
        (after.billed_images, after.reads),
        (before.billed_images, before.reads)
    );
}

#[test]
fn on_mismatch_overlay_typesets_the_copy_after_the_confirming_read_in_batch_mode_too() {
    for mode in ["realtime", "batch"] {
        let emu = Emu::start(Faults::default());
        let ws = Workspace::new();
        qa_campaign_with_boxes(
            &ws,
            &[("bad", "a ridge EMULATE_MISSPELL", "Own the ridge.")],
            mode,
            "on_mismatch = \"overlay\"\n",
        );
        let o = run(&ws, &emu, &[]);
        assert_eq!(code(&o), 0, "{mode}: {}", stderr(&o));
        assert_fell_back(&ws, &emu, "bad");
        let a = &ws.manifest()["assets"][0];
        assert_eq!(a["qa"]["regenerations"], 0, "{a}");
        assert_eq!(a["qa"]["reads"], 2, "{a}");
        let s = emu.stats();
        assert_eq!(s.billed_images, 2, "{mode}: {s:?}");
        if mode == "batch" {
            assert_eq!(s.realtime_billed_images, 0, "{s:?}");
        }
    }
}

#[test]
fn a_fallback_template_that_needs_the_copy_is_refused_at_load_naming_the_template() {
    let ws = Workspace::new();
    qa_campaign_with_boxes(&ws, &[("r1", "a lake", "Hello.")], "realtime", "");
    // The unguarded template quotes the copy, which copy-free art never gets.
    std::fs::write(
        ws.campaign().join("templates/hero.hbs"),
        "A hero banner. Headline: \"{{row.headline}}\"",
    )
    .unwrap();
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("hero.hbs:1:"), "{e}");
    assert!(e.contains("copy-free art"), "{e}");
    assert!(!ws.out().join("manifest.json").exists());
}

#[test]
fn turning_qa_on_for_images_already_made_reads_them_and_buys_nothing_but_regenerations() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    qa_campaign(
        &ws,
        &[
            ("good", "a calm lake", "Hello lake."),
            ("bad", "a ridge EMULATE_MISSPELL", "Own the ridge."),
        ],
        "realtime",
        "max_regenerations = 1\n",
    );
    // First without QA: both images are done, one of them misspelled.
    let toml_path = ws.campaign().join("campaign.toml");
    let with_qa = std::fs::read_to_string(&toml_path).unwrap();
    let start = with_qa.find("[qa]").unwrap();
    let end = with_qa.find("[rate_limit]").unwrap();
    let without = format!("{}{}", &with_qa[..start], &with_qa[end..]);
    std::fs::write(&toml_path, without).unwrap();
    let o = run(&ws, &emu, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(emu.stats().billed_images, 2);
    assert_eq!(emu.stats().reads, 0);
    // Then with QA: both are read; the misspelled one is regenerated (and
    // fails after its one regeneration); the good one is not bought again.
    std::fs::write(&toml_path, with_qa).unwrap();
    let o = run(&ws, &emu, &[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let m = ws.manifest();
    assert_eq!(m["assets"][0]["row_id"], "good");
    assert_eq!(m["assets"][0]["qa"]["verdict"], "pass", "{m}");
    assert_eq!(m["failures"][0]["reason"], "text_mismatch", "{m}");
    let s = emu.stats();
    assert_eq!(s.billed_images, 2 + 1, "{s:?}");
    // A third run reads nothing again.
    let o = run(&ws, &emu, &[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(emu.stats().reads, s.reads);
}

#[test]
fn copy_qa_reads_each_edited_locale_of_a_text_edit_variant() {
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    qa_campaign(&ws, &[("r1", "a ridge", "Own the ridge.")], "realtime", "");
    let dir = ws.campaign();
    std::fs::write(
        dir.join("rows.csv"),
        "id,scene,headline,headline.de-DE\nr1,a ridge,Own the ridge.,Erobere den Grat.\n",
    )
    .unwrap();
    let toml = std::fs::read_to_string(dir.join("campaign.toml")).unwrap();
    let toml = toml
        .replace(
            "locales = [\"en-US\"]",
            "locales = [\"en-US\", \"de-DE\"]\nbase_locale = \"en-US\"",
        )
        .replace(
            "template = \"hero.hbs\"",
            "template = \"hero.hbs\"\ntext = \"edit\"",
        );
    std::fs::write(dir.join("campaign.toml"), toml).unwrap();
    let o = run(&ws, &emu, &["--provider", "gemini"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let s = emu.stats();
    assert_eq!(s.edits.len(), 1);
    assert!(s.edits[0].instruction.contains("with 'Erobere den Grat.'"));
    let m = ws.manifest();
    assert_manifest_valid(&m);
    for a in m["assets"].as_array().unwrap() {
        let qa = &a["qa"];
        assert_eq!(qa["verdict"], "pass", "{a}");
        assert!(qa["reads"].as_u64().unwrap() >= 1);
        let want = a["copy"]["headline"].as_str().unwrap();
        assert_eq!(qa["strings"][0]["expected"], want);
    }
    let de = m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["locale"] == "de-DE")
        .unwrap();
    assert_eq!(de["copy"]["headline"], "Erobere den Grat.");
    assert_eq!(
        emu.handle
            .as_ref()
            .unwrap()
            .painted(&std::fs::read(ws.out().join(de["path"].as_str().unwrap())).unwrap()),
        Some(vec!["Erobere den Grat.".to_string()]),
        "the edited image shows the locale's copy"
    );
}

/// The issue-21 case: a template that quotes the product name as well as
/// the headline, `expect = ["headline"]` only, and a fifth of images
/// misspelled. The product name is guarded as a quoted string: no asset
/// is done with any quoted string painted wrong.
#[test]
fn a_misspelled_quoted_string_outside_expect_is_never_marked_done() {
    let emu = Emu::start(Faults {
        misspell_rate: 0.3,
        ..Faults::default()
    });
    let ws = Workspace::new();
    let r = rows(30);
    qa_campaign(&ws, &borrowed(&r), "realtime", "max_regenerations = 4\n");
    let dir = ws.campaign();
    let mut csv = String::from("id,product,scene,headline\n");
    for (i, (id, scene, headline)) in r.iter().enumerate() {
        csv.push_str(&format!("{id},Trail Cub {i},{scene},{headline}\n"));
    }
    std::fs::write(dir.join("rows.csv"), csv).unwrap();
    std::fs::write(
        dir.join("templates/hero.hbs"),
        "Ad for \"{{row.product}}\" in {{row.scene}}, headline \"{{row.headline}}\"",
    )
    .unwrap();
    let o = run(&ws, &emu, &[]);
    let s = emu.stats();
    assert!(s.misspelled > 0, "the fault never fired: {s:?}");
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let mut guarded = 0;
    for a in m["assets"].as_array().unwrap() {
        let row = a["row_id"].as_str().unwrap();
        let i: usize = row[1..].parse().unwrap();
        let bytes = std::fs::read(ws.out().join(a["path"].as_str().unwrap())).unwrap();
        let painted = emu.handle.as_ref().unwrap().painted(&bytes).unwrap();
        assert_eq!(
            painted,
            vec![format!("Trail Cub {i}"), format!("Own the ridge {i}.")],
            "asset {} is done with a quoted string painted wrong",
            a["path"]
        );
        let strings = a["qa"]["strings"].as_array().unwrap();
        let product = strings
            .iter()
            .find(|c| c["source"] == "prompt")
            .unwrap_or_else(|| panic!("the product name was not checked: {a}"));
        assert_eq!(product["column"], "product", "{product}");
        assert_eq!(product["expected"], format!("Trail Cub {i}"));
        assert_eq!(strings[0]["source"], "column");
        assert_eq!(strings[0]["column"], "headline");
        guarded += 1;
    }
    assert!(guarded > 0);
    // Every image that was bought again or failed was one the reads
    // caught; some of them only on the product name.
    assert!(
        qa_sum(&m, "regenerations") > 0,
        "nothing was regenerated: {}",
        stderr(&o)
    );
    let failures = m["failures"].as_array().unwrap();
    assert!(failures.iter().all(|f| f["reason"] == "text_mismatch"));
    assert_eq!(
        code(&o),
        if failures.is_empty() { 0 } else { 3 },
        "{}",
        stderr(&o)
    );
}

/// `quoted = false` checks only the `expect` columns, as before; by
/// default the template's own quoted text is checked too, with no column.
#[test]
fn quoted_false_checks_only_the_expect_columns() {
    let emu = Emu::start(Faults::default());
    for (quoted, want) in [("quoted = false\n", 1), ("", 2)] {
        let ws = Workspace::new();
        qa_campaign(
            &ws,
            &[("r1", "a ridge", "Own the ridge.")],
            "realtime",
            quoted,
        );
        std::fs::write(
            ws.campaign().join("templates/hero.hbs"),
            "Ad for \"Trail Cub\" in {{row.scene}}, headline \"{{row.headline}}\"",
        )
        .unwrap();
        let o = run(&ws, &emu, &[]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let m = ws.manifest();
        assert_manifest_valid(&m);
        let strings = m["assets"][0]["qa"]["strings"].as_array().unwrap().clone();
        assert_eq!(strings.len(), want, "{quoted:?}: {strings:?}");
        assert_eq!(strings[0]["column"], "headline");
        if want == 2 {
            assert_eq!(strings[1]["source"], "prompt");
            assert_eq!(strings[1]["expected"], "Trail Cub");
            assert!(strings[1]["column"].is_null(), "{strings:?}");
        }
    }
}

#[test]
fn gpt_image_images_are_read_by_a_gemini_reader_and_every_job_ends() {
    // The reader is another vendor's model than the painter: reads must
    // go to the reader's vendor, not the image's.
    let emu = Emu::start(Faults::default());
    let ws = Workspace::new();
    let r = rows(4);
    qa_campaign(&ws, &borrowed(&r), "realtime", "");
    ws.edit(
        "campaign.toml",
        "model = \"gemini-3.1-flash-image\"",
        "model = \"gpt-image-2.6-sunburst\"",
    );
    // Without a Gemini key nothing can read: stopped before buying.
    let o = ws.adloc_with(&emu.openai_env(), &["run", "campaigns/example"]);
    assert_eq!(code(&o), 4, "{}\n{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("no Gemini key"), "{}", stderr(&o));
    assert_eq!(emu.stats().billed_images, 0);
    let o = ws.adloc_with(&emu.both_env(), &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    let m = ws.manifest();
    assert_eq!(m["totals"]["qa_pass"].as_u64(), Some(4), "{}", m["totals"]);
    assert!(emu.stats().read_calls >= 4, "{:?}", emu.stats());
}

#[test]
fn a_reader_is_sent_exactly_the_copy_the_stored_image_gives_at_both_vendors() {
    // The reader's copy is made from the pixels the provider decoded when
    // the answer came in, not from the stored file: it must be the same
    // bytes the stored file gives, or QA would read an image nobody ships.
    for model in ["gemini-3.1-flash-image", "gpt-image-2.6-sunburst"] {
        let emu = Emu::start(Faults::default());
        let ws = Workspace::new();
        let r = rows(4);
        qa_campaign(&ws, &borrowed(&r), "realtime", "");
        ws.edit(
            "campaign.toml",
            "model = \"gemini-3.1-flash-image\"",
            &format!("model = \"{model}\""),
        );
        let o = ws.adloc_with(&emu.both_env(), &["run", "campaigns/example"]);
        assert_eq!(code(&o), 0, "{model}: {}\n{}", stdout(&o), stderr(&o));
        let m = ws.manifest();
        let s = emu.stats();
        let assets = m["assets"].as_array().unwrap();
        assert_eq!(assets.len(), 4, "{model}");
        for a in assets {
            let bytes = std::fs::read(ws.out().join(a["path"].as_str().unwrap())).unwrap();
            let small = adloc::bench::for_reading(&bytes, adloc::bench::READ_MAX_SIDE_PX).unwrap();
            assert!(
                small.size.0.max(small.size.1) == adloc::bench::READ_MAX_SIDE_PX,
                "{model}: the master was not larger than a read: {:?}",
                small.size
            );
            let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&small.bytes));
            assert!(
                s.read_images.contains(&sha),
                "{model}: {} was read as another image than its stored file gives",
                a["path"]
            );
        }
        assert_eq!(s.read_images.len(), 4, "{model}: {s:?}");
    }
}
