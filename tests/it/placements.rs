//! Placements through the binary: every file at its platform's exact frame
//! and under its weight limit (measured here, from the files, not from
//! adloc's record), busy masters re-encoded to fit, impossible limits
//! reported as `over_weight` with exit 3, and text boxes under a
//! platform's interface refused at load.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::common::*;

/// The platforms' figures, written out independently of adloc's registry:
/// exact frame and weight limit in bytes (1 KB = 1,024 bytes).
fn platform_rule(id: &str) -> (u32, u32, u64) {
    match id {
        "google-display-300x250" => (300, 250, 150 * 1024),
        "google-display-728x90" => (728, 90, 150 * 1024),
        "google-display-970x250" => (970, 250, 150 * 1024),
        "google-rda-landscape" => (1200, 628, 5120 * 1024),
        "google-rda-square" => (1200, 1200, 5120 * 1024),
        "meta-feed-square" => (1440, 1440, 30 * 1024 * 1024),
        "meta-story" => (1440, 2560, 30 * 1024 * 1024),
        "tiktok-vertical" => (1080, 1920, 500 * 1024),
        "linkedin-landscape" => (1200, 628, 5 * 1024 * 1024),
        "partner-rail" => (640, 360, 80 * 1024),
        other => panic!("no rule written for {other}"),
    }
}

/// The example campaign cut to two rows in en-US and ar-SA, with
/// placements from every platform on each variant.
fn example_with_placements(ws: &Workspace) {
    let rows = std::fs::read_to_string(ws.campaign().join("rows.csv")).unwrap();
    let mut records = csv::Reader::from_reader(rows.as_bytes());
    let headers = records.headers().unwrap().clone();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&headers).unwrap();
    for r in records.records().take(2) {
        w.write_record(&r.unwrap()).unwrap();
    }
    std::fs::write(ws.campaign().join("rows.csv"), w.into_inner().unwrap()).unwrap();
    ws.edit(
        "campaign.toml",
        r#"locales = ["en-US", "de-DE", "ja-JP", "ko-KR", "zh-Hans-CN", "ar-SA"]"#,
        r#"locales = ["en-US", "ar-SA"]"#,
    );
    ws.edit(
        "campaign.toml",
        "aspect_ratio = \"16:9\"\nimage_size = \"1K\"\n",
        "aspect_ratio = \"16:9\"\nimage_size = \"1K\"\nplacements = [\"google-rda-landscape\", \"linkedin-landscape\", \"google-display-728x90\"]\n",
    );
    ws.edit(
        "campaign.toml",
        "aspect_ratio = \"1:1\"\nimage_size = \"1K\"\n",
        "aspect_ratio = \"1:1\"\nimage_size = \"1K\"\nplacements = [\"google-display-300x250\", \"google-rda-square\", \"meta-feed-square\", \"partner-rail\"]\n",
    );
    ws.edit(
        "campaign.toml",
        "aspect_ratio = \"9:16\"\nimage_size = \"1K\"\n",
        "aspect_ratio = \"9:16\"\nimage_size = \"1K\"\nplacements = [\"meta-story\", \"tiktok-vertical\"]\n",
    );
    ws.edit(
        "campaign.toml",
        "text = \"overlay\"\n",
        "text = \"overlay\"\nplacements = [\"google-rda-landscape\", \"linkedin-landscape\"]\n",
    );
    ws.append_toml(
        "\n[placements.partner-rail]\nsize = \"640x360\"\nmax_kb = 80\nformats = [\"jpeg\"]\nsafe_area = { top = 0.05, bottom = 0.10, left = 0.05, right = 0.05 }\n",
    );
}

/// Every placement file listed in the manifest, checked from its bytes
/// against the platform's rule. Returns path → mtime.
fn assert_placements_meet_their_platforms(ws: &Workspace) -> BTreeMap<String, SystemTime> {
    let m = ws.manifest();
    let mut seen = BTreeMap::new();
    for a in m["assets"].as_array().unwrap() {
        for p in a["placements"].as_array().into_iter().flatten() {
            let id = p["placement"].as_str().unwrap();
            let rel = p["path"].as_str().unwrap();
            let (w, h, max) = platform_rule(id);
            let file = ws.out().join(rel);
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                bytes.len() as u64 <= max,
                "{rel}: {} bytes over {max}",
                bytes.len()
            );
            assert_eq!(
                image::guess_format(&bytes).unwrap(),
                image::ImageFormat::Jpeg
            );
            let img = image::load_from_memory(&bytes).unwrap();
            assert_eq!((img.width(), img.height()), (w, h), "{rel}");
            assert!(!img.color().has_alpha(), "{rel}");
            assert_eq!(sha256_file(&file), p["sha256"], "{rel}");
            assert_eq!(p["checks_passed"], true);
            let expected_rel = format!(
                "{}/{}/{}@{id}.jpg",
                a["locale"].as_str().unwrap(),
                a["variant"].as_str().unwrap(),
                a["row_id"].as_str().unwrap()
            );
            assert_eq!(rel, expected_rel);
            seen.insert(
                rel.to_string(),
                std::fs::metadata(&file).unwrap().modified().unwrap(),
            );
        }
    }
    seen
}

#[test]
fn every_placement_file_has_its_platforms_exact_frame_and_weight_and_an_unchanged_rerun_remakes_none()
 {
    let ws = Workspace::new();
    example_with_placements(&ws);

    let plan = ws.adloc(&["plan", "campaigns/example"]);
    assert_eq!(code(&plan), 0, "{}", stderr(&plan));
    let said = stdout(&plan);
    assert!(
        said.contains("placement meta-story (1440x2560) needs upscaling")
            && said.contains("image_size = \"2K\" would avoid it"),
        "{said}"
    );
    assert!(
        said.contains("placement google-display-728x90 (728x90) crops away"),
        "{said}"
    );

    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let m = ws.manifest();
    assert_manifest_valid(&m);
    assert_manifest_matches_files(&ws.out(), &m);
    let files = assert_placements_meet_their_platforms(&ws);
    // 2 rows × 2 locales × (3 hero + 4 square + 2 story + 2 banner).
    assert_eq!(files.len(), 2 * 2 * 11, "{files:?}");
    assert_eq!(m["totals"]["placements"], 44);
    // A story master at 1K is smaller than Meta's frame: recorded as upscaled.
    let story = m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["variant"] == "story")
        .unwrap();
    assert!(
        story["placements"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["upscaled"] == true)
    );
    // The banner's placements are made from the composite, copy included:
    // the same file for en-US and ar-SA would mean the copy was missing.
    let banner: Vec<&serde_json::Value> = m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["variant"] == "banner" && a["row_id"] == "spring-sale")
        .collect();
    assert_eq!(banner.len(), 2);
    assert_ne!(
        banner[0]["placements"][0]["sha256"],
        banner[1]["placements"][0]["sha256"]
    );

    // The review page shows each placement as it ships, Meta's story with
    // its safe area drawn (top 14 %, bottom 35 %), behind a switch.
    let page = std::fs::read_to_string(ws.out().join("review/index.html")).unwrap();
    assert!(page.contains("id=\"f-safe\""), "no safe-area switch");
    let story_fig = page
        .split("<figure class=\"placement\" data-placement=\"meta-story\">")
        .nth(1)
        .expect("a meta-story placement preview");
    let story_fig = &story_fig[..story_fig.find("</figure>").unwrap()];
    assert!(
        story_fig.contains("class=\"safe\"")
            && story_fig.contains("top:14.00%;bottom:35.00%;left:6.00%;right:6.00%"),
        "{story_fig}"
    );

    let again = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&again), 0, "stderr: {}", stderr(&again));
    assert!(
        stdout(&again).contains(
            "placements: 0 written (0 re-encoded to fit their weight limit), 44 up to date"
        ),
        "{}",
        stdout(&again)
    );
    assert_eq!(assert_placements_meet_their_platforms(&ws), files);

    // Dropping a placement removes its files and nothing else.
    ws.edit("campaign.toml", ", \"google-display-728x90\"]", "]");
    let fewer = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&fewer), 0, "stderr: {}", stderr(&fewer));
    assert!(stdout(&fewer).contains("4 removed"), "{}", stdout(&fewer));
    let left = assert_placements_meet_their_platforms(&ws);
    assert_eq!(left.len(), 40);
    assert!(!left.keys().any(|k| k.contains("728x90")));
    assert!(
        !ws.out()
            .join("en-US/hero/spring-sale@google-display-728x90.jpg")
            .exists()
    );
}

#[test]
fn a_busy_master_is_reencoded_under_150_kb_and_an_impossible_limit_fails_over_weight_with_exit_3() {
    let emu = Emu::start(Default::default());
    let ws = Workspace::new();
    ws.small_campaign(&[("busy", "EMULATE_BUSY_PHOTO grain and foliage")]);
    ws.edit(
        "campaign.toml",
        "aspect_ratio = \"16:9\"\n",
        "aspect_ratio = \"16:9\"\nplacements = [\"google-display-970x250\", \"google-display-300x250\", \"tiny\"]\n",
    );
    ws.append_toml("\n[placements.tiny]\nsize = \"300x250\"\nmax_kb = 3\n");
    let o = ws.adloc_gemini(&emu, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 3, "stderr: {}", stderr(&o));
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let asset = &m["assets"][0];
    let placed = asset["placements"].as_array().unwrap();
    assert_eq!(placed.len(), 2, "{asset}");
    let wide = placed
        .iter()
        .find(|p| p["placement"] == "google-display-970x250")
        .unwrap();
    // The plain encode of this busy frame is over Google's 150 KB: the
    // file shipped at a lower quality found by the search.
    let q = wide["quality"].as_u64().unwrap();
    assert!((60..85).contains(&q), "quality {q}: {wide}");
    let bytes = std::fs::read(ws.out().join(wide["path"].as_str().unwrap())).unwrap();
    assert!(bytes.len() <= 150 * 1024, "{} bytes", bytes.len());
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!((img.width(), img.height()), (970, 250));

    let failures = m["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let f = &failures[0];
    assert_eq!(f["reason"], "over_weight");
    assert_eq!(f["placement"], "tiny");
    let detail = f["detail"].as_str().unwrap();
    assert!(
        detail.contains("over the limit of 3072 bytes") && detail.contains("quality 60"),
        "{detail}"
    );
    assert_eq!(m["totals"]["placements_failed"], 1);
    assert!(
        !ws.out()
            .join(f["placement_path"].as_str().unwrap())
            .exists()
    );
    // Nothing else was lost: the master and the other placements are there.
    assert_manifest_matches_files(&ws.out(), &m);
    // The failure stands on the next run (same file, same settings), which
    // buys nothing.
    let calls = emu.stats().generate_calls;
    let again = ws.adloc_gemini(&emu, &["run", "campaigns/example"]);
    assert_eq!(code(&again), 3, "stderr: {}", stderr(&again));
    assert_eq!(emu.stats().generate_calls, calls);
}

#[test]
fn a_text_box_in_metas_top_fourteen_percent_is_refused_at_load_naming_the_placement_and_edge() {
    let ws = Workspace::new();
    ws.append_toml(
        r##"
[[variants]]
name = "vertical"
template = "banner-art.hbs"
aspect_ratio = "9:16"
text = "overlay"
placements = ["meta-story"]

[[variants.text_boxes]]
column = "headline"
x = 0.10
y = 0.20
width = 0.80
height = 0.20

[[variants.text_boxes]]
column = "cta"
x = 0.10
y = 0.05
width = 0.80
height = 0.06
"##,
    );
    let toml = std::fs::read_to_string(ws.campaign().join("campaign.toml")).unwrap();
    let line = toml
        .lines()
        .collect::<Vec<_>>()
        .iter()
        .rposition(|l| *l == "column = \"cta\"")
        .unwrap(); // 0-based index of the key = 1-based line of the table header
    for cmd in ["plan", "run"] {
        let o = ws.adloc(&[cmd, "campaigns/example"]);
        assert_eq!(code(&o), 2, "{cmd}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("campaign.toml:{line}:"))
                && err.contains("meta-story")
                && err.contains("top edge")
                && err.contains("`cta`"),
            "{err}"
        );
        // The headline box, inside the safe area, is not named.
        assert!(!err.contains("`headline`"), "{err}");
    }
    assert!(!ws.out().exists(), "nothing may be written");
}
