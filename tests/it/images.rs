//! Images for real ad slots: reference images (checked, hashed, counted),
//! validated masters, exact renditions and contact sheets, through the CLI
//! on the local renderer.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use crate::common::*;

/// A smaller campaign (3 rows × 2 locales × 2 variants = 12 jobs) in the
/// workspace, with `extra_hero` appended to the hero variant and `extra`
/// at the end of campaign.toml.
fn small_campaign(ws: &Workspace, model: &str, extra_hero: &str, extra: &str) {
    let toml = format!(
        r#"name = "example"
rows = "rows.csv"
locales = ["en-US", "de-DE"]
model = "{model}"
mode = "realtime"

[[variants]]
name = "hero"
template = "hero.hbs"
aspect_ratio = "16:9"
{extra_hero}

[[variants]]
name = "square"
template = "square.hbs"
aspect_ratio = "1:1"

{extra}
"#
    );
    std::fs::write(ws.campaign().join("campaign.toml"), toml).unwrap();
    let rows = std::fs::read_to_string(ws.campaign().join("rows.csv")).unwrap();
    let kept: Vec<&str> = rows.lines().take(4).collect();
    std::fs::write(ws.campaign().join("rows.csv"), kept.join("\n") + "\n").unwrap();
}

/// Append a `product_shot` column to rows.csv with one value per data row.
fn add_product_shot_column(ws: &Workspace, values: &[&str]) {
    let p = ws.campaign().join("rows.csv");
    let rows = std::fs::read_to_string(&p).unwrap();
    let mut out = String::new();
    for (i, line) in rows.lines().enumerate() {
        let cell = if i == 0 {
            "product_shot"
        } else {
            values[i - 1]
        };
        out.push_str(&format!("{line},{cell}\n"));
    }
    std::fs::write(p, out).unwrap();
}

fn write_png(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(w, h, image::Rgb(rgb))
        .save_with_format(path, image::ImageFormat::Png)
        .unwrap();
}

fn assets(ws: &Workspace) -> Vec<serde_json::Value> {
    ws.manifest()["assets"].as_array().unwrap().clone()
}

fn master_mtimes(ws: &Workspace) -> BTreeMap<String, SystemTime> {
    assets(ws)
        .iter()
        .map(|a| {
            let p = a["path"].as_str().unwrap().to_string();
            let t = std::fs::metadata(ws.out().join(&p))
                .unwrap()
                .modified()
                .unwrap();
            (p, t)
        })
        .collect()
}

fn total_attempts(ws: &Workspace) -> u64 {
    assets(ws)
        .iter()
        .map(|a| a["attempts"].as_u64().unwrap())
        .sum()
}

/// Every rendition listed exists with the listed checksum, size, pixel
/// dimensions and format. Returns how many were checked.
fn assert_renditions_match_files(ws: &Workspace) -> usize {
    let mut n = 0;
    for a in assets(ws) {
        for r in a["renditions"].as_array().unwrap() {
            let path = ws.out().join(r["path"].as_str().unwrap());
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(sha256_file(&path), r["sha256"], "{}", path.display());
            assert_eq!(bytes.len() as u64, r["bytes"].as_u64().unwrap());
            let format = image::guess_format(&bytes).unwrap();
            let mime = match format {
                image::ImageFormat::Png => "image/png",
                image::ImageFormat::Jpeg => "image/jpeg",
                image::ImageFormat::WebP => "image/webp",
                other => panic!("unexpected format {other:?}"),
            };
            assert_eq!(r["mime_type"], mime, "{}", path.display());
            let img = image::load_from_memory(&bytes).unwrap();
            assert_eq!(img.width() as u64, r["width"].as_u64().unwrap());
            assert_eq!(img.height() as u64, r["height"].as_u64().unwrap());
            n += 1;
        }
    }
    n
}

const THREE_RENDITIONS: &str = r##"
[[variants.renditions]]
size = "1200x628"
format = "jpeg"
quality = 85
focal = [0.5, 0.4]

[[variants.renditions]]
size = "300x250"
format = "png"
fit = "contain"
pad = "#ff00ff"

[[variants.renditions]]
width = 1080
height = 1080
format = "webp"
"##;

#[test]
fn renditions_have_exact_sizes_formats_and_checksums_listed_in_a_schema_valid_manifest() {
    let ws = Workspace::new();
    small_campaign(&ws, "gemini-3.1-flash-image", THREE_RENDITIONS, "");
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert!(
        stdout(&o).contains("renditions: 18 written"),
        "{}",
        stdout(&o)
    );
    let m = ws.manifest();
    assert_manifest_valid(&m);
    assert_manifest_matches_files(&ws.out(), &m);
    assert_eq!(assert_renditions_match_files(&ws), 6 * 3);
    for a in assets(&ws) {
        assert_eq!(a["aspect_ratio_ok"], true, "{a}");
        let r = a["renditions"].as_array().unwrap();
        if a["variant"] == "square" {
            assert!(r.is_empty(), "square declares no renditions: {a}");
            continue;
        }
        let sizes: Vec<(u64, u64, &str, &str)> = r
            .iter()
            .map(|r| {
                (
                    r["width"].as_u64().unwrap(),
                    r["height"].as_u64().unwrap(),
                    r["mime_type"].as_str().unwrap(),
                    r["fit"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            sizes,
            vec![
                (1080, 1080, "image/webp", "cover"),
                (1200, 628, "image/jpeg", "cover"),
                (300, 250, "image/png", "contain"),
            ],
            "{a}"
        );
        let row = a["row_id"].as_str().unwrap();
        let dir = format!("{}/hero/", a["locale"].as_str().unwrap());
        assert_eq!(r[1]["path"], format!("{dir}{row}@1200x628.jpg"));
        // The 1376x768 master contained in 300x250 is 300x167 at y = 41:
        // the bands above and below are the pad colour.
        let pad = image::open(ws.out().join(r[2]["path"].as_str().unwrap()))
            .unwrap()
            .to_rgb8();
        assert_eq!(pad.get_pixel(150, 5).0, [255, 0, 255]);
        assert_eq!(pad.get_pixel(10, 245).0, [255, 0, 255]);
        assert_ne!(pad.get_pixel(150, 125).0, [255, 0, 255]);
        // A 1376x768 master into 1080x1080 must be enlarged.
        assert_eq!(r[0]["upscaled"], true);
        assert_eq!(r[1]["upscaled"], false);
    }
    assert!(temporaries(ws.path()).is_empty());
}

#[test]
fn changing_rendition_settings_rewrites_renditions_without_calling_the_provider() {
    let ws = Workspace::new();
    small_campaign(&ws, "gemini-3.1-flash-image", THREE_RENDITIONS, "");
    assert_eq!(code(&ws.adloc(&["run", "campaigns/example"])), 0);
    let masters = master_mtimes(&ws);
    let attempts = total_attempts(&ws);
    let jpg = |ws: &Workspace| {
        let a = assets(ws)
            .into_iter()
            .find(|a| a["variant"] == "hero")
            .unwrap();
        a["renditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["width"] == 1200)
            .cloned()
            .unwrap()
    };
    let jpg_before = jpg(&ws);

    // Quality changes (same file, new bytes), 300x250 is dropped, 320x50 is added.
    ws.edit("campaign.toml", "quality = 85", "quality = 60");
    ws.edit("campaign.toml", "size = \"300x250\"", "size = \"320x50\"");
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert!(
        stdout(&o).contains("0 new, 0 changed, 12 unchanged"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("renditions: 12 written, 6 up to date, 6 removed"),
        "{}",
        stdout(&o)
    );
    assert_eq!(master_mtimes(&ws), masters, "a master was rewritten");
    assert_eq!(total_attempts(&ws), attempts, "the provider was called");

    let jpg_after = jpg(&ws);
    assert_eq!(jpg_after["path"], jpg_before["path"]);
    assert_ne!(jpg_after["sha256"], jpg_before["sha256"]);
    assert!(jpg_after["bytes"].as_u64() < jpg_before["bytes"].as_u64());
    for a in assets(&ws).iter().filter(|a| a["variant"] == "hero") {
        let paths: Vec<&str> = a["renditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["path"].as_str().unwrap())
            .collect();
        assert!(
            paths.iter().any(|p| p.ends_with("@320x50.png")),
            "{paths:?}"
        );
        assert!(!paths.iter().any(|p| p.contains("@300x250")), "{paths:?}");
        let old = ws
            .out()
            .join(a["path"].as_str().unwrap().replace(".jpg", "@300x250.png"));
        assert!(!old.exists(), "{} was not deleted", old.display());
    }
    assert_manifest_valid(&ws.manifest());
    assert_eq!(assert_renditions_match_files(&ws), 18);

    // Settled: the next run writes nothing.
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert!(
        stdout(&o).contains("renditions: 0 written, 18 up to date, 0 removed"),
        "{}",
        stdout(&o)
    );
    // A deleted rendition file is noticed and produced again.
    let gone = ws.out().join(jpg_after["path"].as_str().unwrap());
    std::fs::remove_file(&gone).unwrap();
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert!(
        stdout(&o).contains("renditions: 1 written"),
        "{}",
        stdout(&o)
    );
    assert_eq!(sha256_file(&gone), jpg_after["sha256"]);
    assert_eq!(total_attempts(&ws), attempts);
}

#[test]
fn replacing_a_reference_image_regenerates_exactly_the_jobs_that_use_it() {
    let ws = Workspace::new();
    small_campaign(
        &ws,
        "gemini-3.1-flash-image",
        "",
        "[references]\nfiles = [\"assets/logo.png\"]\ncolumns = [\"product_shot\"]\n",
    );
    add_product_shot_column(&ws, &["assets/shoe.png", "", "assets/bag.jpg"]);
    write_png(&ws.campaign().join("assets/logo.png"), 64, 64, [0, 0, 0]);
    write_png(
        &ws.campaign().join("assets/shoe.png"),
        300,
        200,
        [200, 0, 0],
    );
    std::fs::create_dir_all(ws.campaign().join("assets")).unwrap();
    image::RgbImage::from_pixel(80, 80, image::Rgb([0, 90, 0]))
        .save_with_format(
            ws.campaign().join("assets/bag.jpg"),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let before = master_mtimes(&ws);

    // Same pixels size, new content: only the row that names shoe.png changes.
    write_png(
        &ws.campaign().join("assets/shoe.png"),
        300,
        200,
        [0, 0, 200],
    );
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert!(
        stdout(&o).contains("0 new, 4 changed, 8 unchanged"),
        "{}",
        stdout(&o)
    );
    let after = master_mtimes(&ws);
    let changed: Vec<&String> = after.keys().filter(|k| after[*k] != before[*k]).collect();
    assert_eq!(changed.len(), 4, "{changed:?}");
    for p in &changed {
        assert!(p.contains("/spring-sale."), "unexpected change {p}");
    }
    let m = ws.manifest();
    assert_manifest_valid(&m);

    // The campaign-wide logo is in every request.
    write_png(
        &ws.campaign().join("assets/logo.png"),
        64,
        64,
        [255, 255, 255],
    );
    let o = ws.adloc(&["plan", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert!(
        stdout(&o).contains("new 0, changed 12, unchanged 0"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_reference_over_the_file_size_limit_is_refused_naming_the_file_and_its_line() {
    let ws = Workspace::new();
    small_campaign(
        &ws,
        "gemini-3.1-flash-image",
        "",
        "[references]\nfiles = [\"assets/logo.png\"]\nmax_file_bytes = 100\n",
    );
    write_png(&ws.campaign().join("assets/logo.png"), 300, 300, [9, 9, 9]);
    let o = ws.adloc(&["plan", "campaigns/example"]);
    assert_eq!(code(&o), 2, "stdout: {}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("campaign.toml:19:10:"), "{err}");
    assert!(err.contains("assets/logo.png"), "{err}");
    assert!(err.contains("over the limit of 100 bytes"), "{err}");
    assert!(!ws.out().exists(), "plan wrote output");
}

#[test]
fn more_references_than_the_model_accepts_is_an_input_error_at_the_row() {
    let ws = Workspace::new();
    // gemini-2.5-flash-image: at most 3 reference images per request.
    small_campaign(
        &ws,
        "gemini-2.5-flash-image",
        "",
        "[references]\nfiles = [\"assets/a.png\", \"assets/b.png\", \"assets/c.png\"]\ncolumns = [\"product_shot\"]\n",
    );
    add_product_shot_column(&ws, &["", "assets/d.png", ""]);
    for f in ["a", "b", "c", "d"] {
        write_png(
            &ws.campaign().join(format!("assets/{f}.png")),
            8,
            8,
            [1, 2, 3],
        );
    }
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 2, "stdout: {}", stdout(&o));
    let err = stderr(&o);
    // Row 2 is on line 3; product_shot is the 21st column.
    assert!(err.contains("rows.csv:3:21:"), "{err}");
    assert!(err.contains("uses 4 reference images"), "{err}");
    assert!(err.contains("at most 3"), "{err}");
    assert!(!ws.out().exists(), "an input error wrote output");
}

#[test]
fn a_corrupt_or_missing_reference_in_a_csv_cell_is_reported_at_its_line_and_column() {
    let ws = Workspace::new();
    small_campaign(
        &ws,
        "gemini-3.1-flash-image",
        "",
        "[references]\ncolumns = [\"product_shot\"]\n",
    );
    add_product_shot_column(
        &ws,
        &["assets/ok.png", "assets/broken.png", "assets/nope.png"],
    );
    write_png(&ws.campaign().join("assets/ok.png"), 8, 8, [1, 2, 3]);
    std::fs::write(
        ws.campaign().join("assets/broken.png"),
        b"\x89PNG\r\n\x1a\nnot really",
    )
    .unwrap();
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 2, "stdout: {}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("rows.csv:3:21: reference image `assets/broken.png` (column `product_shot`, row `free-shipping`)"),
        "{err}"
    );
    assert!(err.contains("does not decode"), "{err}");
    assert!(
        err.contains("rows.csv:4:21: reference image `assets/nope.png`"),
        "{err}"
    );
    assert!(err.contains("cannot read"), "{err}");
    assert!(!ws.out().exists(), "an input error wrote output");
}

#[test]
fn bad_rendition_settings_are_input_errors_at_their_line_and_column() {
    let ws = Workspace::new();
    small_campaign(
        &ws,
        "gemini-3.1-flash-image",
        "[[variants.renditions]]\nsize = \"1200x628\"\nformat = \"gif\"\n",
        "",
    );
    let o = ws.adloc(&["plan", "campaigns/example"]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(
        err.contains("campaign.toml:13:10: unknown rendition format `gif`"),
        "{err}"
    );
}

#[test]
fn contact_sheet_flag_writes_one_sheet_per_locale_with_a_cell_per_job() {
    let ws = Workspace::new();
    small_campaign(&ws, "gemini-3.1-flash-image", "", "");
    let o = ws.adloc(&["run", "campaigns/example", "--contact-sheet"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    for locale in ["en-US", "de-DE"] {
        let p = ws.out().join(format!("contact-sheets/{locale}.png"));
        assert!(stdout(&o).contains(&format!("contact-sheets/{locale}.png")));
        let img = image::open(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .to_rgb8();
        // 3 rows × 2 variants: one line of 6 cells.
        assert!(img.width() >= 6 * 240, "{}x{}", img.width(), img.height());
        assert!(img.height() < 2 * 300, "{}x{}", img.width(), img.height());
    }
    // Without the flag no sheet is written or rewritten.
    let ws2 = Workspace::new();
    small_campaign(&ws2, "gemini-3.1-flash-image", "", "");
    assert_eq!(code(&ws2.adloc(&["run", "campaigns/example"])), 0);
    assert!(!ws2.out().join("contact-sheets").exists());
}

#[test]
fn a_rendition_that_cannot_be_made_is_a_manifest_failure_and_the_run_exits_3() {
    let ws = Workspace::new();
    small_campaign(&ws, "gemini-3.1-flash-image", THREE_RENDITIONS, "");
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    // Someone edits a master on disk and removes one of its renditions: the
    // next run must not derive a rendition from bytes it did not record.
    let first = assets(&ws)
        .into_iter()
        .find(|a| a["variant"] == "hero")
        .unwrap();
    let master = ws.out().join(first["path"].as_str().unwrap());
    let rendition = first["renditions"][0]["path"].as_str().unwrap().to_string();
    write_png(&master, 64, 36, [1, 2, 3]);
    std::fs::remove_file(ws.out().join(&rendition)).unwrap();
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(
        code(&o),
        3,
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let failures = m["failures"].as_array().unwrap();
    let f = failures
        .iter()
        .find(|f| f["rendition"] == rendition.as_str())
        .unwrap_or_else(|| panic!("no failure for {rendition}: {failures:?}"));
    assert_eq!(f["reason"], "rendition_failed");
    assert!(
        f["detail"].as_str().unwrap().contains("changed on disk"),
        "{f}"
    );
    assert_eq!(m["totals"]["renditions_failed"], 1);
}

/// The example campaign (with its overlay `banner`) plus `[references]`:
/// a campaign-wide logo and a `product_shot` column whose German override
/// differs from the base value.
fn overlay_campaign_with_references(ws: &Workspace) {
    ws.append_toml("\n[references]\nfiles = [\"assets/logo.png\"]\ncolumns = [\"product_shot\"]\n");
    let p = ws.campaign().join("rows.csv");
    let rows = std::fs::read_to_string(&p).unwrap();
    let mut out = String::new();
    for (i, line) in rows.lines().enumerate() {
        let cells = match i {
            0 => "product_shot,product_shot.de-DE",
            1 => "assets/shoe.png,assets/shoe-de.png",
            _ => ",",
        };
        out.push_str(&format!("{line},{cells}\n"));
    }
    std::fs::write(p, out).unwrap();
    write_png(&ws.campaign().join("assets/logo.png"), 64, 64, [0, 0, 0]);
    write_png(&ws.campaign().join("assets/shoe.png"), 30, 20, [200, 0, 0]);
    write_png(
        &ws.campaign().join("assets/shoe-de.png"),
        30,
        20,
        [0, 200, 0],
    );
}

/// The art request hash of every overlay art master, by row, from the
/// manifest (a run on the local renderer).
fn art_hashes(ws: &Workspace) -> BTreeMap<String, String> {
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    ws.manifest()["art"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["row_id"].as_str().unwrap().to_string(),
                a["request_sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn overlay_art_requests_carry_campaign_references_and_the_rows_unlocalized_reference_column() {
    let ws = Workspace::new();
    overlay_campaign_with_references(&ws);
    ws.edit(
        "campaign.toml",
        "locales = [\"en-US\", \"de-DE\", \"ja-JP\", \"ko-KR\", \"zh-Hans-CN\", \"ar-SA\"]",
        "locales = [\"en-US\", \"de-DE\"]",
    );
    let before = art_hashes(&ws);
    assert_eq!(before.len(), 5, "{before:?}");
    // A per-locale override never reaches the art (it is shared by every locale).
    write_png(&ws.campaign().join("assets/shoe-de.png"), 30, 20, [0, 0, 9]);
    assert_eq!(art_hashes(&ws), before);
    // The row's base column does, for that row only.
    write_png(&ws.campaign().join("assets/shoe.png"), 30, 20, [9, 9, 9]);
    let after_shoe = art_hashes(&ws);
    for (row, hash) in &after_shoe {
        assert_eq!(hash != &before[row], row == "spring-sale", "art of {row}");
    }
    // A campaign-wide file reaches every art job.
    write_png(
        &ws.campaign().join("assets/logo.png"),
        64,
        64,
        [255, 255, 255],
    );
    for (row, hash) in &art_hashes(&ws) {
        assert_ne!(hash, &after_shoe[row], "art of {row} kept its hash");
    }
}

#[test]
fn overlay_art_over_the_models_reference_limit_is_an_input_error() {
    let ws = Workspace::new();
    overlay_campaign_with_references(&ws);
    // gemini-2.5-flash-image takes at most 3: three campaign files are fine
    // for German jobs (their override repeats one), but the art also gets
    // the base `product_shot`, a fourth image.
    ws.edit(
        "campaign.toml",
        "gemini-3.1-flash-image",
        "gemini-2.5-flash-image",
    );
    ws.edit(
        "campaign.toml",
        "locales = [\"en-US\", \"de-DE\", \"ja-JP\", \"ko-KR\", \"zh-Hans-CN\", \"ar-SA\"]",
        "locales = [\"de-DE\"]",
    );
    ws.edit(
        "campaign.toml",
        "files = [\"assets/logo.png\"]",
        "files = [\"assets/logo.png\", \"assets/l2.png\", \"assets/shoe-de.png\"]",
    );
    write_png(&ws.campaign().join("assets/l2.png"), 8, 8, [1, 2, 3]);
    let o = ws.adloc(&["plan", "campaigns/example"]);
    let err = stderr(&o);
    assert_eq!(code(&o), 2, "{err}");
    // spring-sale is on line 2; product_shot is the 21st column.
    assert!(err.contains("rows.csv:2:21:"), "{err}");
    assert!(err.contains("uses 4 reference images"), "{err}");
    assert!(err.contains("art"), "{err}");
    assert!(!ws.path().join(".adloc").exists());
}

#[test]
fn a_short_hex_pad_colour_loads_and_pads_with_that_colour() {
    let ws = Workspace::new();
    small_campaign(
        &ws,
        "gemini-3.1-flash-image",
        "[[variants.renditions]]\nsize = \"300x250\"\nformat = \"png\"\nfit = \"contain\"\npad = \"#fff\"\n",
        "",
    );
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let hero = assets(&ws)
        .into_iter()
        .find(|a| a["variant"] == "hero")
        .unwrap();
    let r = hero["renditions"].as_array().unwrap();
    assert_eq!(r.len(), 1, "{hero}");
    let img = image::open(ws.out().join(r[0]["path"].as_str().unwrap()))
        .unwrap()
        .to_rgba8();
    // A 1376x768 master in 300x250 is 300x167 at y = 41: white bands.
    assert_eq!(img.get_pixel(150, 5).0, [255, 255, 255, 255]);
    assert_eq!(img.get_pixel(10, 245).0, [255, 255, 255, 255]);
}
