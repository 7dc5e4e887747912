//! Localization: overlay text on composed assets (RTL and CJK on pixels),
//! CLDR copy fallback at the campaign level, ICU currency formatting
//! through a template, overflow reporting, and what overlay mode bills
//! (counted at the Gemini emulator).

use std::path::{Path, PathBuf};

use adloc_emulator::{EmulatorConfig, spawn};

use crate::common::*;

/// Write a campaign `name` into the workspace: campaign.toml, rows.csv and
/// templates. Returns its folder (relative paths work from the workspace).
fn campaign(ws: &Workspace, name: &str, toml: &str, csv: &str, templates: &[(&str, &str)]) {
    let dir = ws.path().join("campaigns").join(name);
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(dir.join("campaign.toml"), toml).unwrap();
    std::fs::write(dir.join("rows.csv"), csv).unwrap();
    for (file, text) in templates {
        std::fs::write(dir.join("templates").join(file), text).unwrap();
    }
}

fn out(ws: &Workspace, name: &str) -> PathBuf {
    ws.path().join("out").join(name)
}

fn manifest(ws: &Workspace, name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(out(ws, name).join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn assets(m: &serde_json::Value) -> &Vec<serde_json::Value> {
    m["assets"].as_array().unwrap()
}

fn asset<'a>(
    m: &'a serde_json::Value,
    row: &str,
    locale: &str,
    variant: &str,
) -> &'a serde_json::Value {
    assets(m)
        .iter()
        .find(|a| a["row_id"] == row && a["locale"] == locale && a["variant"] == variant)
        .unwrap_or_else(|| panic!("no asset {row}/{locale}/{variant} in {m:#}"))
}

fn rgba(path: &Path) -> image::RgbaImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgba8()
}

/// Bounding box `(x0, y0, x1, y1)`, inclusive, of the pixels where the
/// composite differs from its art inside the rectangle `(x, y, w, h)`:
/// the ink adloc added.
fn added_ink(
    art: &image::RgbaImage,
    composite: &image::RgbaImage,
    (x, y, w, h): (u32, u32, u32, u32),
) -> Option<(u32, u32, u32, u32)> {
    let mut bb: Option<(u32, u32, u32, u32)> = None;
    for py in y..y + h {
        for px in x..x + w {
            let a = art.get_pixel(px, py).0;
            let c = composite.get_pixel(px, py).0;
            if a.iter().zip(c).any(|(a, c)| a.abs_diff(c) > 48) {
                bb = Some(match bb {
                    None => (px, py, px, py),
                    Some((x0, y0, x1, y1)) => (x0.min(px), y0.min(py), x1.max(px), y1.max(py)),
                });
            }
        }
    }
    bb
}

const PIXEL_TOML: &str = r##"name = "pixels"
rows = "rows.csv"
locales = ["ar-SA", "ja-JP"]
model = "gemini-2.5-flash-image"   # PNG output: composite and art compare exactly
mode = "realtime"

[[variants]]
name = "wide"
template = "art.hbs"
aspect_ratio = "16:9"
text = "overlay"
mirror_rtl = false                 # the box stays put: this checks start alignment inside it
[[variants.text_boxes]]
column = "headline"
x = 0.05
y = 0.10
width = 0.6
height = 0.5
align = "start"
min_size = 48
max_size = 64
color = "#101820"            # dark ink on the light proof art

[[variants]]
name = "kinsoku"
template = "art.hbs"
aspect_ratio = "16:9"
text = "overlay"
[[variants.text_boxes]]
column = "headline"
x = 0
y = 0
width = 0.3125                     # 420 px of 1344: 10.5 em at 40 px
height = 0.3
min_size = 40
max_size = 40
line_height = 1.5
color = "#101820"            # dark ink on the light proof art
"##;

#[test]
fn composed_assets_put_arabic_ink_flush_right_and_start_no_japanese_line_with_closing_punctuation()
{
    let ws = Workspace::new();
    campaign(
        &ws,
        "pixels",
        PIXEL_TOML,
        "id,scene,headline,headline.ar-SA,headline.ja-JP\n\
         r1,a calm sea,Spring sale,تخفيضات الربيع,あいうえおかきくけこ。さしすせそ\n",
        &[("art.hbs", "Copy-free art: {{row.scene}}.")],
    );
    let o = ws.adloc(&["run", "campaigns/pixels"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let m = manifest(&ws, "pixels");
    assert_manifest_valid(&m);
    assert_manifest_matches_files(&out(&ws, "pixels"), &m);
    assert_eq!(assets(&m).len(), 4);

    // Arabic, start-aligned: the ink ends at the box's right edge.
    let ar = asset(&m, "r1", "ar-SA", "wide");
    let art = rgba(&out(&ws, "pixels").join(ar["overlay"]["art_path"].as_str().unwrap()));
    let composite = rgba(&out(&ws, "pixels").join(ar["path"].as_str().unwrap()));
    assert_eq!(art.dimensions(), (1344, 768));
    // 0.05, 0.10, 0.6, 0.5 of 1344 × 768.
    let bx = (67, 77, 806, 384);
    let (x0, _, x1, _) = added_ink(&art, &composite, bx).expect("no Arabic ink in the box");
    let right_gap = bx.0 + bx.2 - 1 - x1;
    assert!(
        right_gap <= 8,
        "Arabic ink ends {right_gap}px left of the box's right edge"
    );
    assert!(
        x0 - bx.0 > 200,
        "Arabic ink starts {}px from the left edge",
        x0 - bx.0
    );

    // Japanese at a fixed 40 px in a 10.5 em box: a naive break would start
    // line 2 with `。`. Line 2's first cell must hold a kana, whose ink
    // crosses the middle of the line; `。` sits below the middle.
    let ja = asset(&m, "r1", "ja-JP", "kinsoku");
    assert_eq!(ja["overlay"]["boxes"][0]["lines"], 2, "{ja:#}");
    let composite = rgba(&out(&ws, "pixels").join(ja["path"].as_str().unwrap()));
    let art = rgba(&out(&ws, "pixels").join(ja["overlay"]["art_path"].as_str().unwrap()));
    let line2 = (0, 60, 40, 60);
    let (x0, y0, _, y1) =
        added_ink(&art, &composite, line2).expect("line 2 has no ink at its start");
    let mid = 60 + 30;
    assert!(
        x0 < 12,
        "line 2 starts at x {x0}, not at the box's left edge"
    );
    assert!(
        y0 < mid && y1 > mid,
        "line 2's first glyph is inked at y {y0}..{y1}, all on one side of {mid}: closing punctuation?"
    );
}

const FALLBACK_TOML: &str = r##"name = "fallback"
rows = "rows.csv"
locales = ["es-MX", "pt-PT", "pt-BR", "en-US"]
base_locale = "en-US"
model = "gemini-3.1-flash-image"
mode = "realtime"

[[variants]]
name = "square"
template = "square.hbs"
aspect_ratio = "1:1"

[[variants]]
name = "banner"
template = "art.hbs"
aspect_ratio = "16:9"
text = "overlay"
[[variants.text_boxes]]
column = "headline"
x = 0.05
y = 0.1
width = 0.6
height = 0.5
"##;

#[test]
fn es_419_copy_serves_es_mx_and_pt_pt_never_gets_brazilian_pt_in_either_text_mode() {
    let ws = Workspace::new();
    campaign(
        &ws,
        "fallback",
        FALLBACK_TOML,
        "id,scene,headline,headline.es-419,headline.pt\n\
         r1,a beach,Summer sale,Ofertas de verano,Liquidação de verão\n",
        &[
            ("square.hbs", "A square ad. Headline: \"{{row.headline}}\""),
            ("art.hbs", "Copy-free art: {{row.scene}}."),
        ],
    );
    let o = ws.adloc(&["plan", "campaigns/fallback"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let plan = stdout(&o);
    let warnings: Vec<&str> = plan
        .lines()
        .filter(|l| l.contains("warning:") && l.contains("falls back"))
        .collect();
    // One warning per row × locale × column, not one per variant.
    assert_eq!(warnings.len(), 3, "{plan}");
    assert!(
        plan.contains("row r1 column `headline` for es-MX falls back to es-419"),
        "{plan}"
    );
    assert!(
        plan.contains("row r1 column `headline` for pt-BR falls back to pt "),
        "{plan}"
    );
    assert!(
        plan.contains("row r1 column `headline` for pt-PT falls back to the base column"),
        "{plan}"
    );

    let o = ws.adloc(&["run", "campaigns/fallback"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let m = manifest(&ws, "fallback");
    assert_manifest_valid(&m);
    for variant in ["square", "banner"] {
        let es = asset(&m, "r1", "es-MX", variant);
        assert_eq!(es["resolved_locale"], "es-419", "{variant}");
        assert_eq!(es["copy_resolution"]["headline"], "es-419", "{variant}");
        let pt_pt = asset(&m, "r1", "pt-PT", variant);
        assert_eq!(pt_pt["resolved_locale"], "en-US", "{variant}");
        assert_eq!(pt_pt["copy_resolution"]["headline"], "en-US", "{variant}");
        let pt_br = asset(&m, "r1", "pt-BR", variant);
        assert_eq!(pt_br["copy_resolution"]["headline"], "pt", "{variant}");
    }
    let prompt = |l: &str| {
        asset(&m, "r1", l, "square")["prompt"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(prompt("es-MX").contains("\"Ofertas de verano\""));
    assert!(prompt("pt-BR").contains("\"Liquidação de verão\""));
    assert!(prompt("pt-PT").contains("\"Summer sale\""));
    assert!(!prompt("pt-PT").contains("Liquidação"));
    // The banner's art prompt holds no copy at all, in any language.
    let art_prompt = asset(&m, "r1", "es-MX", "banner")["prompt"]
        .as_str()
        .unwrap();
    assert_eq!(art_prompt, "Copy-free art: a beach.");
}

#[test]
fn currency_helper_formats_the_same_price_per_locale_in_the_prompt() {
    let ws = Workspace::new();
    campaign(
        &ws,
        "prices",
        r#"name = "prices"
rows = "rows.csv"
locales = ["de-DE", "en-US", "ja-JP"]
model = "gemini-3.1-flash-image"
mode = "realtime"
[[variants]]
name = "square"
template = "price.hbs"
aspect_ratio = "1:1"
"#,
        "id,headline,price\nr1,Sale,1299\n",
        &[(
            "price.hbs",
            "Headline: {{row.headline}}\nPrice: {{currency row.price \"EUR\"}}",
        )],
    );
    let o = ws.adloc(&["run", "campaigns/prices"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let m = manifest(&ws, "prices");
    let price = |l: &str| {
        asset(&m, "r1", l, "square")["prompt"]
            .as_str()
            .unwrap()
            .lines()
            .find_map(|line| line.strip_prefix("Price: "))
            .unwrap()
            .to_string()
    };
    // The no-break space is kept in the prompt (see prompt_helpers docs).
    assert_eq!(price("de-DE"), "1.299,00\u{a0}€");
    assert_eq!(price("en-US"), "€1,299.00");
    assert!(price("ja-JP").contains("1,299.00"), "{}", price("ja-JP"));
}

const OVERFLOW_TOML: &str = r##"name = "overflow"
rows = "rows.csv"
locales = ["en-US", "de-DE"]
model = "gemini-3.1-flash-image"
mode = "realtime"

[[variants]]
name = "banner"
template = "art.hbs"
aspect_ratio = "16:9"
text = "overlay"
[[variants.text_boxes]]
column = "headline"
x = 0.05
y = 0.1
width = 0.25
height = 0.1
max_lines = 1
min_size = 40
max_size = 48
"##;

#[test]
fn copy_that_cannot_fit_is_listed_by_plan_and_fails_only_its_locale_with_text_overflow_and_exit_3()
{
    let ws = Workspace::new();
    campaign(
        &ws,
        "overflow",
        OVERFLOW_TOML,
        "id,scene,headline,headline.de-DE\n\
         r1,a shop,Big sale,Großer Sommerschlussverkauf mit Rabatten auf alles\n",
        &[("art.hbs", "Copy-free art: {{row.scene}}.")],
    );
    let o = ws.adloc(&["plan", "campaigns/overflow"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let plan = stdout(&o);
    let overflows: Vec<&str> = plan
        .lines()
        .filter(|l| l.trim_start().starts_with("overflow:"))
        .collect();
    assert_eq!(overflows.len(), 1, "{plan}");
    assert!(
        overflows[0].contains("row r1 de-DE banner: box `headline`"),
        "{plan}"
    );
    assert!(
        overflows[0].contains("Großer Sommerschlussverkauf"),
        "{plan}"
    );
    assert!(!ws.path().join(".adloc").exists(), "plan wrote state");

    let o = ws.adloc(&["run", "campaigns/overflow"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let m = manifest(&ws, "overflow");
    assert_manifest_valid(&m);
    assert_eq!(m["totals"]["done"], 1);
    assert_eq!(m["totals"]["failed"], 1);
    asset(&m, "r1", "en-US", "banner");
    let failures = m["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{m:#}");
    let f = &failures[0];
    assert_eq!(f["locale"], "de-DE");
    assert_eq!(f["variant"], "banner");
    assert_eq!(f["reason"], "text_overflow");
    let detail = f["detail"].as_str().unwrap();
    assert!(
        detail.contains("Großer Sommerschlussverkauf mit Rabatten auf alles"),
        "{detail}"
    );
    assert!(
        !out(&ws, "overflow").join("de-DE/banner").exists(),
        "an overflowing composite was written"
    );
}

const BILLING_TOML: &str = r##"name = "billing"
rows = "rows.csv"
locales = ["en-US", "de-DE", "ja-JP", "ko-KR", "zh-Hans-CN", "ar-SA"]
model = "gemini-3.1-flash-image"
mode = "realtime"

[[variants]]
name = "banner"
template = "art.hbs"
aspect_ratio = "16:9"
text = "overlay"
[[variants.text_boxes]]
column = "headline"
x = 0.05
y = 0.1
width = 0.5
height = 0.4
min_size = 20

[[variants]]
name = "square"
template = "art.hbs"
aspect_ratio = "1:1"
text = "overlay"
[[variants.text_boxes]]
column = "headline"
x = 0.1
y = 0.1
width = 0.8
height = 0.3
min_size = 20
"##;

const BILLING_CSV: &str = "id,scene,headline,headline.de-DE,headline.ja-JP,headline.ko-KR,headline.zh-Hans-CN,headline.ar-SA\n\
r1,a beach,Summer sale,Sommerschlussverkauf,夏のセール,여름 세일,夏季特卖,تخفيضات الصيف\n\
r2,a parcel,Free shipping,Kostenloser Versand,送料無料,무료 배송,免运费,شحن مجاني\n\
r3,a phone,Get the app,Hol dir die App,アプリを入手,앱 받기,下载应用,حمّل التطبيق\n";

#[tokio::test(flavor = "multi_thread")]
async fn overlay_mode_bills_rows_times_variants_at_the_emulator_and_copy_edits_recompose_for_free()
{
    let ws = Workspace::new();
    campaign(
        &ws,
        "billing",
        BILLING_TOML,
        BILLING_CSV,
        &[("art.hbs", "Copy-free art: {{row.scene}}. No text.")],
    );
    // The estimate pays for 3 rows × 2 variants, not × 6 locales.
    let o = ws.adloc(&["plan", "campaigns/billing"]);
    let plan = stdout(&o);
    assert!(plan.contains("= 36 assets from 6 generations"), "{plan}");
    assert!(plan.contains("images to pay for: 6"), "{plan}");
    // 6 × $0.067 realtime, half in batch.
    assert!(plan.contains("$0.4020 realtime, $0.2010 batch"), "{plan}");

    let handle = spawn(
        EmulatorConfig {
            seed: 7,
            api_key: Some("k".into()),
            faults: Default::default(),
        },
        0,
    )
    .await
    .unwrap();
    let base = handle.base_url();
    let env = [
        ("GEMINI_API_KEY", "k"),
        ("GOOGLE_GEMINI_BASE_URL", base.as_str()),
    ];
    let args = [
        "run",
        "campaigns/billing",
        "--provider",
        "gemini",
        "--mode",
        "realtime",
    ];
    let o = ws.adloc_env(&args, &env);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(handle.stats().billed_images, 3 * 2);
    let m = manifest(&ws, "billing");
    assert_manifest_valid(&m);
    assert_manifest_matches_files(&out(&ws, "billing"), &m);
    assert_eq!(assets(&m).len(), 3 * 6 * 2);
    assert_eq!(m["art"].as_array().unwrap().len(), 3 * 2);
    let art_cost: f64 = m["art"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["cost_usd"].as_f64().unwrap())
        .sum();
    assert!(art_cost > 0.0);
    let shares: f64 = assets(&m)
        .iter()
        .map(|a| a["cost_usd"].as_f64().unwrap())
        .sum();
    assert!(
        (shares - art_cost).abs() < 1e-4,
        "shares {shares} vs art {art_cost}"
    );
    assert!((m["totals"]["cost_usd"].as_f64().unwrap() - art_cost).abs() < 1e-6);
    for a in assets(&m) {
        assert_eq!(a["provider"], "gemini");
        assert_eq!(a["mode"], "realtime");
    }

    // A copy edit re-typesets that locale only, and buys nothing.
    let before: Vec<(String, String)> = assets(&m)
        .iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap().into(),
                a["sha256"].as_str().unwrap().into(),
            )
        })
        .collect();
    ws_edit(
        &ws,
        "billing",
        "rows.csv",
        "Kostenloser Versand",
        "Gratis Versand",
    );
    let o = ws.adloc_env(&args, &env);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("0 new, 0 changed, 6 unchanged"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        handle.stats().billed_images,
        3 * 2,
        "a copy edit paid for art"
    );
    let m = manifest(&ws, "billing");
    let changed: Vec<&String> = assets(&m)
        .iter()
        .filter(|a| {
            !before
                .iter()
                .any(|(p, s)| a["path"] == p.as_str() && a["sha256"] == s.as_str())
        })
        .map(|a| {
            &before
                .iter()
                .find(|(p, _)| a["path"] == p.as_str())
                .unwrap()
                .0
        })
        .collect();
    assert_eq!(changed.len(), 2, "{changed:?}");
    assert!(
        changed
            .iter()
            .all(|p| p.starts_with("de-DE/") && p.contains("/r2."))
    );
    handle.shutdown().await;
}

fn ws_edit(ws: &Workspace, campaign: &str, file: &str, from: &str, to: &str) {
    let p = ws.path().join("campaigns").join(campaign).join(file);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{file} does not contain {from:?}");
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn an_art_template_that_uses_copy_or_locale_is_an_input_error_naming_the_template() {
    for (template, used) in [
        (
            "Art for {{row.scene}}.\nWith the words {{row.headline}}",
            "row.headline",
        ),
        (
            "Art for {{row.scene}}.\nIn {{locale.english_name}}",
            "locale.english_name",
        ),
    ] {
        let ws = Workspace::new();
        campaign(
            &ws,
            "fallback",
            FALLBACK_TOML,
            "id,scene,headline\nr1,a beach,Summer sale\n",
            &[
                ("square.hbs", "Headline: {{row.headline}}"),
                ("art.hbs", template),
            ],
        );
        for cmd in ["plan", "run"] {
            let o = ws.adloc(&[cmd, "campaigns/fallback"]);
            let err = stderr(&o);
            assert_eq!(code(&o), 2, "{cmd}: {err}");
            assert!(err.contains("art.hbs:2"), "{cmd}: {err}");
            assert!(err.contains(used), "{cmd}: {err}");
            assert!(err.contains("no `locale` and no copy"), "{cmd}: {err}");
        }
        assert!(!ws.path().join(".adloc").exists());
    }
}

#[test]
fn a_text_box_for_a_column_the_csv_lacks_is_rejected_at_its_line() {
    let ws = Workspace::new();
    campaign(
        &ws,
        "fallback",
        &FALLBACK_TOML.replace("column = \"headline\"", "column = \"tagline\""),
        "id,scene,headline\nr1,a beach,Summer sale\n",
        &[
            ("square.hbs", "Headline: {{row.headline}}"),
            ("art.hbs", "Art."),
        ],
    );
    let o = ws.adloc(&["plan", "campaigns/fallback"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("campaign.toml:19:10"), "{}", stderr(&o));
    assert!(stderr(&o).contains("column `tagline`"), "{}", stderr(&o));
}

/// `locale/variant/row` → asset, from a manifest.
fn by_key(m: &serde_json::Value) -> std::collections::BTreeMap<String, serde_json::Value> {
    assets(m)
        .iter()
        .map(|a| {
            let p = a["path"].as_str().unwrap();
            (p.rsplit_once('.').unwrap().0.to_string(), a.clone())
        })
        .collect()
}

#[test]
fn text_edit_pays_one_image_per_row_and_variant_in_the_base_locale_and_one_edit_per_other_locale() {
    let emu = Emu::start(adloc_emulator::Faults::default());
    let ws = Workspace::new();
    let toml = ws.campaign().join("campaign.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let text = text
        .replace(
            "template = \"hero.hbs\"",
            "template = \"hero.hbs\"\ntext = \"edit\"",
        )
        .replace(
            "template = \"square.hbs\"",
            "template = \"square.hbs\"\ntext = \"edit\"",
        )
        .replace(
            "template = \"story.hbs\"",
            "template = \"story.hbs\"\ntext = \"edit\"",
        );
    std::fs::write(&toml, text).unwrap();
    let mut env = emu.env();
    env.push(("ADLOC_BATCH_POLL_MS", "40".to_string()));
    let o = ws.adloc_with(&env, &["run", "campaigns/example", "--provider", "gemini"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let ex = example();
    let rows = ex.rows;
    let locales = ex.locales;
    let variants = 3;
    let stats = emu.stats();
    let edits = rows * variants * (locales - 1);
    assert_eq!(
        stats.edits.len() as u64,
        edits,
        "one edit per row, variant and other locale"
    );
    assert_eq!(
        stats.billed_images,
        rows * variants + edits + rows,
        "base images, edits and the banner art, nothing else"
    );
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let all = by_key(&m);
    for e in &stats.edits {
        assert_eq!(
            e.thought_signature, None,
            "each edit is one unsigned user turn: the base image's signature belongs to the \
             base job's conversation"
        );
    }
    for (k, a) in &all {
        if !a["overlay"].is_null() || k.starts_with("en-US/") {
            continue;
        }
        let (_, rest) = k.split_once('/').unwrap();
        let base = &all[&format!("en-US/{rest}")];
        let want = format!("with '{}'", a["copy"]["headline"].as_str().unwrap());
        let edit = stats
            .edits
            .iter()
            .find(|e| {
                e.image_sha256 == base["sha256"].as_str().unwrap() && e.instruction.contains(&want)
            })
            .unwrap_or_else(|| panic!("no edit of the base image put the headline of {k}"));
        assert!(
            edit.instruction.contains(&format!(
                "the headline '{}'",
                base["copy"]["headline"].as_str().unwrap()
            )),
            "{}",
            edit.instruction
        );
        let img = image::open(ws.out().join(a["path"].as_str().unwrap())).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            (
                a["width"].as_u64().unwrap() as u32,
                a["height"].as_u64().unwrap() as u32
            )
        );
    }

    // An unchanged rerun buys nothing.
    let o = ws.adloc_with(&env, &["run", "campaigns/example", "--provider", "gemini"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert_eq!(emu.stats().billed_images, stats.billed_images);

    // A change to the base image (a revision) re-edits its locales.
    let o = ws.adloc(&[
        "reject",
        "example",
        "en-US/hero/spring-sale",
        "--note",
        "Brighter tulips",
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
            "gemini",
            "--mode",
            "realtime",
        ],
    );
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let after = emu.stats();
    assert_eq!(after.edits.len() as u64, edits + 1 + (locales - 1));
    let m = ws.manifest();
    let now = by_key(&m);
    let new_base = now["en-US/hero/spring-sale"]["sha256"].as_str().unwrap();
    assert_eq!(now["en-US/hero/spring-sale"]["revision"], 2);
    for e in &after.edits[edits as usize + 1..] {
        assert_eq!(
            e.image_sha256, new_base,
            "the locales are edited from the new base"
        );
    }
    assert_ne!(
        now["de-DE/hero/spring-sale"]["sha256"],
        all["de-DE/hero/spring-sale"]["sha256"]
    );
}
