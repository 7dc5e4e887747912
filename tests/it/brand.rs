//! The brand kit through the binary: logos (SVG, and a PNG with alpha as
//! a per-locale override) found in their box and mirrored for ar-SA, the
//! CTA on a button in the palette's colour, nothing recomposed or bought on
//! an unchanged rerun, a replaced logo recomposing every overlay asset
//! without buying anything, an image layer from a CSV column per locale,
//! the brand font for Latin copy with Noto for the scripts it lacks, the
//! brand files' hashes in the manifest, and bad brand input refused at its
//! line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use crate::common::*;

/// 16:9 at gemini-2.5-flash-image: PNG art, so composites compare exactly.
const W: u32 = 1344;
const H: u32 = 768;
const PRIMARY: [u8; 3] = [0xe4, 0x00, 0x2b];
const LOGO_GREEN: [u8; 3] = [0, 255, 0];
const LOGO_BLUE: [u8; 3] = [0, 0, 255];

const TOML: &str = r##"name = "brandkit"
rows = "rows.csv"
locales = ["en-US", "ar-SA", "ja-JP", "ko-KR"]
model = "gemini-2.5-flash-image"
mode = "realtime"

[brand]
fonts = ["brand/Brand-Regular.ttf"]
palette = { primary = "#e4002b", ink = "#ffffff", night = "#101828" }
logo = { default = "brand/logo.svg", ar-SA = "brand/logo-ar.png" }

[[variants]]
name = "banner"
template = "art.hbs"
aspect_ratio = "16:9"
text = "overlay"

[[variants.text_boxes]]
column = "headline"
x = 0.05
y = 0.30
width = 0.50
height = 0.30
color = "night"

[[variants.layers]]
kind = "logo"
x = 0.04
y = 0.04
width = 0.18
height = 0.08
align = "start"

[[variants.layers]]
kind = "button"
column = "cta"
x = 0.06
y = 0.78
width = 0.34
height = 0.10
fill = "primary"
color = "ink"
radius = 0.5

[[variants]]
name = "plain"
template = "art.hbs"
aspect_ratio = "16:9"
text = "overlay"

[[variants.text_boxes]]
column = "headline"
x = 0.05
y = 0.30
width = 0.50
height = 0.30
color = "#101828"

[[variants.layers]]
kind = "image"
column = "badge"
x = 0.80
y = 0.70
width = 0.15
height = 0.20
align = "end"
"##;

const CSV: &str = "id,scene,headline,headline.ar-SA,headline.ja-JP,headline.ko-KR,cta,cta.ar-SA,cta.ja-JP,cta.ko-KR,badge,badge.ar-SA\n\
r1,a calm sea,Spring sale,تخفيضات الربيع,春のセール,봄 세일,Shop now,تسوّق الآن,今すぐ購入,지금 쇼핑,brand/badge.png,brand/badge-ar.png\n";
const BADGE: [u8; 3] = [255, 200, 0];
const BADGE_AR: [u8; 3] = [0, 200, 255];
const LOCALES: usize = 4;
const VARIANTS: usize = 2;

/// A 2:1 SVG logo, solid green.
const LOGO_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100"><rect width="200" height="100" fill="#00ff00"/></svg>"##;

fn dir(ws: &Workspace) -> PathBuf {
    ws.path().join("campaigns/brandkit")
}

fn out(ws: &Workspace) -> PathBuf {
    ws.path().join("out/brandkit")
}

fn manifest(ws: &Workspace) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out(ws).join("manifest.json")).unwrap()).unwrap()
}

/// A 2:1 PNG logo: left half opaque `rgb`, right half fully transparent.
fn write_png_logo(path: &Path, rgb: [u8; 3]) {
    let img = image::RgbaImage::from_fn(100, 50, |x, _| {
        if x < 50 {
            image::Rgba([rgb[0], rgb[1], rgb[2], 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    });
    img.save_with_format(path, image::ImageFormat::Png).unwrap();
}

/// The brand campaign with its kit: an SVG logo, a PNG logo with alpha for
/// ar-SA, and a brand font (a shipped Noto face under another name: it has
/// no Arabic, so Arabic falls back to Noto Sans Arabic).
fn brand_campaign(ws: &Workspace, toml: &str) {
    let d = dir(ws);
    std::fs::create_dir_all(d.join("templates")).unwrap();
    std::fs::create_dir_all(d.join("brand")).unwrap();
    std::fs::write(d.join("campaign.toml"), toml).unwrap();
    std::fs::write(d.join("rows.csv"), CSV).unwrap();
    std::fs::write(d.join("templates/art.hbs"), "Copy-free art: {{row.scene}}.").unwrap();
    std::fs::write(d.join("brand/logo.svg"), LOGO_SVG).unwrap();
    write_png_logo(&d.join("brand/logo-ar.png"), LOGO_BLUE);
    write_png_logo(&d.join("brand/badge.png"), BADGE);
    write_png_logo(&d.join("brand/badge-ar.png"), BADGE_AR);
    std::fs::copy(
        repo().join("assets/fonts/NotoSans-Regular.ttf"),
        d.join("brand/Brand-Regular.ttf"),
    )
    .unwrap();
}

fn asset<'a>(m: &'a serde_json::Value, locale: &str, variant: &str) -> &'a serde_json::Value {
    m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["locale"] == locale && a["variant"] == variant)
        .unwrap_or_else(|| panic!("no asset {locale}/{variant} in {m:#}"))
}

fn rgba(path: &Path) -> image::RgbaImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgba8()
}

fn rgb_at(img: &image::RgbaImage, x: u32, y: u32) -> [u8; 3] {
    let p = img.get_pixel(x, y).0;
    [p[0], p[1], p[2]]
}

/// Pixels of colour `rgb` (within 8 per channel) in `(x, y, w, h)`.
fn count(img: &image::RgbaImage, rgb: [u8; 3], (x, y, w, h): (u32, u32, u32, u32)) -> usize {
    let mut n = 0;
    for py in y..y + h {
        for px in x..x + w {
            let p = img.get_pixel(px, py).0;
            if p.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 8) {
                n += 1;
            }
        }
    }
    n
}

/// Path → sha256 of every composite in the manifest.
fn composites(m: &serde_json::Value) -> BTreeMap<String, String> {
    m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap().to_string(),
                a["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Path → compose_sha256 of every composite in the manifest.
fn compose_hashes(m: &serde_json::Value) -> BTreeMap<String, String> {
    m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap().to_string(),
                a["overlay"]["compose_sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Frame pixels of a fractional box, rounded like adloc rounds them.
fn px_box(x: f32, y: f32, w: f32, h: f32) -> (u32, u32, u32, u32) {
    let r = |f: f32, t: u32| (f * t as f32).round() as u32;
    (r(x, W), r(y, H), r(w, W), r(h, H))
}

#[test]
fn the_logo_sits_in_its_box_mirrored_for_arabic_and_the_cta_is_on_a_primary_button() {
    let ws = Workspace::new();
    brand_campaign(&ws, TOML);
    let o = ws.adloc(&["run", "campaigns/brandkit"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let m = manifest(&ws);
    assert_manifest_valid(&m);
    assert_manifest_matches_files(&out(&ws), &m);

    let en = rgba(&out(&ws).join(asset(&m, "en-US", "banner")["path"].as_str().unwrap()));
    let ar = rgba(&out(&ws).join(asset(&m, "ar-SA", "banner")["path"].as_str().unwrap()));
    let art = rgba(
        &out(&ws).join(
            asset(&m, "en-US", "banner")["overlay"]["art_path"]
                .as_str()
                .unwrap(),
        ),
    );
    assert_eq!(en.dimensions(), (W, H));

    // The 2:1 logo in a 242 × 61 box: 122 × 61, at the start edge.
    let logo = px_box(0.04, 0.04, 0.18, 0.08);
    let logo_ar = px_box(1.0 - 0.04 - 0.18, 0.04, 0.18, 0.08);
    let (lw, lh) = (logo.3 * 2, logo.3);
    assert_eq!(count(&art, LOGO_GREEN, (0, 0, W, H)), 0, "the art is green");
    let green = count(&en, LOGO_GREEN, logo);
    assert!(
        green as f64 > 0.9 * f64::from(lw * lh),
        "{green} green pixels in the logo box, expected about {}",
        lw * lh
    );
    assert_eq!(
        count(
            &en,
            LOGO_GREEN,
            (logo.0 + lw + 2, logo.1, logo.2 - lw - 2, logo.3)
        ),
        0,
        "the logo is stretched past its aspect ratio"
    );
    assert_eq!(count(&en, LOGO_GREEN, logo_ar), 0);
    // ar-SA: the box mirrored and the logo at its right (start) edge; the
    // PNG's left half is opaque blue and its right half transparent.
    assert_eq!(
        count(&ar, LOGO_GREEN, (0, 0, W, H)),
        0,
        "ar-SA got the default logo"
    );
    let right = logo_ar.0 + logo_ar.2;
    let png_left = (right - lw, logo_ar.1, lw / 2 - 2, lh);
    let blue = count(&ar, LOGO_BLUE, png_left);
    assert!(
        blue as f64 > 0.9 * f64::from(png_left.2 * lh),
        "{blue} blue pixels where the ar-SA logo's opaque half should be"
    );
    for x in (right - lw / 2 + 2..right).step_by(7) {
        let y = logo_ar.1 + lh / 2;
        assert_eq!(
            rgb_at(&ar, x, y),
            rgb_at(&art, x, y),
            "the transparent half of the PNG logo covered the art at {x},{y}"
        );
    }
    assert_eq!(count(&ar, LOGO_BLUE, logo), 0, "ar-SA logo not mirrored");

    // The button: the palette's primary behind the CTA, white ink on it,
    // pill corners left as art; mirrored for ar-SA.
    let button = px_box(0.06, 0.78, 0.34, 0.10);
    let button_ar = px_box(1.0 - 0.06 - 0.34, 0.78, 0.34, 0.10);
    for (img, b, other) in [(&en, button, button_ar), (&ar, button_ar, button)] {
        let fill = count(img, PRIMARY, b);
        assert!(
            fill as f64 > 0.6 * f64::from(b.2 * b.3),
            "{fill} primary pixels in the button {b:?}"
        );
        assert!(
            count(img, [255, 255, 255], b) > 50,
            "no white CTA ink on the button {b:?}"
        );
        assert_eq!(
            rgb_at(img, b.0, b.1),
            rgb_at(&art, b.0, b.1),
            "square corner"
        );
        assert_eq!(count(img, PRIMARY, other), 0, "button not where it belongs");
    }

    // The variant with only an image layer carries no logo and no button,
    // and its image comes from the CSV column, per locale, at the box's
    // end edge (the left in ar-SA, whose box is mirrored).
    let badge = px_box(0.80, 0.70, 0.15, 0.20);
    let badge_ar = px_box(1.0 - 0.80 - 0.15, 0.70, 0.15, 0.20);
    let plain = rgba(&out(&ws).join(asset(&m, "en-US", "plain")["path"].as_str().unwrap()));
    assert_eq!(count(&plain, LOGO_GREEN, (0, 0, W, H)), 0);
    assert_eq!(count(&plain, PRIMARY, (0, 0, W, H)), 0);
    // 2:1 in a 202 × 154 box: 202 × 101, its opaque half at the left.
    assert!(count(&plain, BADGE, (badge.0, badge.1, badge.2 / 2 - 2, badge.3)) > 5000);
    assert_eq!(
        count(
            &plain,
            BADGE,
            (badge.0 + badge.2 / 2 + 2, badge.1, badge.2 / 2 - 2, badge.3)
        ),
        0
    );
    let plain_ar = rgba(&out(&ws).join(asset(&m, "ar-SA", "plain")["path"].as_str().unwrap()));
    assert_eq!(
        count(&plain_ar, BADGE, (0, 0, W, H)),
        0,
        "ar-SA got the base badge"
    );
    assert!(count(&plain_ar, BADGE_AR, badge_ar) > 5000);

    // Latin copy is set in the brand face; Arabic, Japanese and Korean,
    // which it has no glyphs for, in the shipped Noto face of their script.
    let font = |locale: &str, variant: &str, column: &str| -> String {
        let a = asset(&m, locale, variant);
        a["overlay"]["boxes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["column"] == column)
            .unwrap_or_else(|| panic!("no {column} box in {a:#}"))["font"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for (locale, family) in [
        ("en-US", "Noto Sans [brand]"),
        ("ar-SA", "Noto Sans Arabic"),
        ("ja-JP", "Noto Sans CJK JP"),
        ("ko-KR", "Noto Sans CJK KR"),
    ] {
        assert_eq!(font(locale, "banner", "headline"), family);
        assert_eq!(font(locale, "banner", "cta"), family, "button copy");
        assert_eq!(font(locale, "plain", "headline"), family);
    }

    // The button's copy is recorded like a text box's.
    let en_banner = asset(&m, "en-US", "banner");
    assert_eq!(en_banner["copy"]["cta"], "Shop now", "{en_banner:#}");
    assert_eq!(asset(&m, "ar-SA", "banner")["copy"]["cta"], "تسوّق الآن");

    // The manifest records every brand file's sha256 under each composite.
    for a in m["assets"].as_array().unwrap() {
        let brand = &a["overlay"]["brand"];
        for f in [
            "brand/logo.svg",
            "brand/logo-ar.png",
            "brand/Brand-Regular.ttf",
        ] {
            assert_eq!(
                brand[f].as_str(),
                Some(sha256_file(&dir(&ws).join(f)).as_str()),
                "{f} in {a:#}"
            );
        }
    }
}

#[test]
fn an_unchanged_rerun_recomposes_nothing_and_a_new_logo_recomposes_every_overlay_asset_buying_nothing()
 {
    let ws = Workspace::new();
    brand_campaign(&ws, TOML);
    let o = ws.adloc(&["run", "campaigns/brandkit"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let m = manifest(&ws);
    let first = composites(&m);
    let first_hashes = compose_hashes(&m);
    assert_eq!(first.len(), LOCALES * VARIANTS);
    let art: Vec<String> = m["art"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["sha256"].as_str().unwrap().to_string())
        .collect();
    let mtimes = |paths: &BTreeMap<String, String>| -> Vec<std::time::SystemTime> {
        paths
            .keys()
            .map(|p| {
                std::fs::metadata(out(&ws).join(p))
                    .unwrap()
                    .modified()
                    .unwrap()
            })
            .collect()
    };
    let before = mtimes(&first);

    let o = ws.adloc(&["run", "campaigns/brandkit"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("0 new, 0 changed"), "{}", stdout(&o));
    assert_eq!(composites(&manifest(&ws)), first);
    assert_eq!(compose_hashes(&manifest(&ws)), first_hashes);
    assert_eq!(
        mtimes(&first),
        before,
        "an unchanged rerun rewrote a composite"
    );

    // A new logo (same file name, new bytes): every overlay asset is
    // recomposed, the art is not bought again.
    std::fs::write(
        dir(&ws).join("brand/logo.svg"),
        LOGO_SVG.replace("#00ff00", "#ff00ff"),
    )
    .unwrap();
    write_png_logo(&dir(&ws).join("brand/logo-ar.png"), [255, 0, 255]);
    let o = ws.adloc(&["run", "campaigns/brandkit"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("0 new, 0 changed"), "{}", stdout(&o));
    let m = manifest(&ws);
    let after: Vec<String> = m["art"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["sha256"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(after, art, "the art was bought again");
    let second = compose_hashes(&m);
    assert_eq!(second.len(), LOCALES * VARIANTS);
    for (path, hash) in &second {
        assert_ne!(hash, &first_hashes[path], "{path} was not recomposed");
    }
    // The recomposed files are the ones listed (the logo-free variant's
    // pixels do not change, the banner's do).
    for (path, sha) in composites(&m) {
        assert_eq!(sha256_file(&out(&ws).join(&path)), sha);
        if path.contains("/banner/") {
            assert_ne!(sha, first[&path], "{path} still has the old logo");
        }
    }
    let en = rgba(&out(&ws).join(asset(&m, "en-US", "banner")["path"].as_str().unwrap()));
    assert!(count(&en, [255, 0, 255], px_box(0.04, 0.04, 0.18, 0.08)) > 1000);
    assert_eq!(
        count(&en, LOGO_GREEN, (0, 0, W, H)),
        0,
        "the old logo is still there"
    );

    // Changing one variant's layer recomposes only that variant.
    let edited = std::fs::read_to_string(dir(&ws).join("campaign.toml"))
        .unwrap()
        .replacen("radius = 0.5", "radius = 0.2", 1);
    std::fs::write(dir(&ws).join("campaign.toml"), edited).unwrap();
    let o = ws.adloc(&["run", "campaigns/brandkit"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("0 new, 0 changed"), "{}", stdout(&o));
    let third = compose_hashes(&manifest(&ws));
    for (path, sha) in &third {
        if path.contains("/banner/") {
            assert_ne!(sha, &second[path], "{path} kept the old button");
        } else {
            assert_eq!(
                sha, &second[path],
                "{path} recomposed for another variant's layer"
            );
        }
    }
}

/// Run `plan` on the brand campaign with `toml` and return its stderr,
/// asserting the input-error exit and that nothing was written.
fn refused(ws: &Workspace, toml: &str) -> String {
    brand_campaign(ws, toml);
    let o = ws.adloc(&["plan", "campaigns/brandkit"]);
    assert_eq!(
        code(&o),
        2,
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    assert!(!out(ws).exists(), "an input error wrote output");
    stderr(&o)
}

/// 1-based line of the first occurrence of `needle` in `toml`.
fn line_of(toml: &str, needle: &str) -> usize {
    toml.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the toml"))
        + 1
}

#[test]
fn bad_brand_input_is_refused_at_its_line_with_nothing_written() {
    let cases: Vec<(String, &str, &str)> = vec![
        (
            TOML.replace("brand/logo.svg", "brand/missing.svg"),
            "logo = {",
            "missing.svg",
        ),
        (
            TOML.replace(
                "fonts = [\"brand/Brand-Regular.ttf\"]",
                "fonts = [\"brand/logo.svg\"]",
            ),
            "fonts = [",
            "not a font",
        ),
        (
            TOML.replace("fill = \"primary\"", "fill = \"secondary\""),
            "fill = \"secondary\"",
            "unknown palette name `secondary`",
        ),
        (
            TOML.replace("color = \"night\"", "color = \"dusk\""),
            "color = \"dusk\"",
            "unknown palette name `dusk`",
        ),
        (
            TOML.replace("width = 0.18", "width = 0.98"),
            "width = 0.98",
            "runs past the right edge",
        ),
        (
            TOML.replace("column = \"cta\"\n", ""),
            "kind = \"button\"",
            "has no column",
        ),
        (
            // A logo in the 10 % a placement keeps clear at the top.
            TOML.replacen(
                "text = \"overlay\"\n",
                "text = \"overlay\"\nplacements = [\"partner-rail\"]\n",
                1,
            ) + "\n[placements.partner-rail]\nsize = \"640x360\"\nmax_kb = 80\nformats = [\"jpeg\"]\nsafe_area = { top = 0.10, bottom = 0.05, left = 0.0, right = 0.0 }\n",
            "kind = \"logo\"",
            "the logo layer is not inside placement partner-rail's safe area",
        ),
        (
            // Clear of a right-hand interface in en-US, under it in ar-SA.
            TOML.replacen(
                "text = \"overlay\"\n",
                "text = \"overlay\"\nplacements = [\"partner-rail\"]\n",
                1,
            ) + "\n[placements.partner-rail]\nsize = \"640x360\"\nmax_kb = 80\nformats = [\"jpeg\"]\nsafe_area = { top = 0.0, bottom = 0.0, left = 0.0, right = 0.20 }\n",
            "kind = \"logo\"",
            "the logo layer, mirrored for right-to-left locales, is not inside placement partner-rail's safe area",
        ),
        (
            // A locale edit would inherit its base's layers painted in.
            TOML.replacen("text = \"overlay\"\n", "text = \"edit\"\n", 1).replacen(
                "\n[[variants.text_boxes]]\ncolumn = \"headline\"\nx = 0.05\ny = 0.30\nwidth = 0.50\nheight = 0.30\ncolor = \"night\"\n",
                "\n",
                1,
            ),
            "kind = \"logo\"",
            "text = \"edit\" variants cannot carry brand layers",
        ),
    ];
    for (toml, at, message) in cases {
        let ws = Workspace::new();
        let err = refused(&ws, &toml);
        let line = line_of(&toml, at);
        assert!(
            err.contains(&format!("campaign.toml:{line}:")) && err.contains(message),
            "expected `{message}` at line {line}:\n{err}"
        );
    }

    // A logo that is neither an image nor an SVG.
    let ws = Workspace::new();
    brand_campaign(&ws, TOML);
    std::fs::write(dir(&ws).join("brand/logo.svg"), "not a picture").unwrap();
    let o = ws.adloc(&["plan", "campaigns/brandkit"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let line = line_of(TOML, "logo = {");
    assert!(
        stderr(&o).contains(&format!("campaign.toml:{line}:"))
            && stderr(&o).contains("neither a PNG"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_cta_too_long_for_its_button_is_listed_by_plan_and_fails_its_locale_with_text_overflow() {
    let ws = Workspace::new();
    brand_campaign(&ws, TOML);
    let long = "Shop the whole spring collection now while every size is still in stock";
    std::fs::write(dir(&ws).join("rows.csv"), CSV.replace("Shop now", long)).unwrap();
    let o = ws.adloc(&["plan", "campaigns/brandkit"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("row r1 en-US banner: box `cta`") && stdout(&o).contains(long),
        "{}",
        stdout(&o)
    );
    let o = ws.adloc(&["run", "campaigns/brandkit"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let m = manifest(&ws);
    let failure = m["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["locale"] == "en-US" && f["variant"] == "banner")
        .unwrap_or_else(|| panic!("no en-US banner failure in {m:#}"));
    assert_eq!(failure["reason"], "text_overflow", "{failure:#}");
    assert!(failure["detail"].as_str().unwrap().contains(long));
    // The other locales' buttons fit and ship.
    asset(&m, "ar-SA", "banner");
}

/// A model-text variant (the model paints the copy) carrying the logo and
/// the CTA button, on Gemini through the emulator.
const MODEL_TOML: &str = r##"name = "brandkit"
rows = "rows.csv"
locales = ["en-US", "ar-SA"]
model = "gemini-2.5-flash-image"
mode = "realtime"

[brand]
fonts = ["brand/Brand-Regular.ttf"]
palette = { primary = "#e4002b", ink = "#ffffff", night = "#101828" }
logo = { default = "brand/logo.svg", ar-SA = "brand/logo-ar.png" }

[[variants]]
name = "hero"
template = "hero.hbs"
aspect_ratio = "16:9"

[[variants.layers]]
kind = "logo"
x = 0.04
y = 0.04
width = 0.18
height = 0.08
align = "start"

[[variants.layers]]
kind = "button"
column = "cta"
x = 0.06
y = 0.78
width = 0.34
height = 0.10
fill = "primary"
color = "ink"
radius = 0.5

[rate_limit]
rpm = 60000

[retry]
base_delay_ms = 1
max_delay_ms = 5
"##;

const MODEL_LOCALES: [&str; 2] = ["en-US", "ar-SA"];

/// Copy QA on the model-text variant (reads what the model painted).
const QA: &str = "\n[qa]\nreader = \"gemini-3.1-flash-lite\"\nexpect = [\"headline\"]\n";

fn model_text_campaign(ws: &Workspace) {
    brand_campaign(ws, MODEL_TOML);
    std::fs::write(
        dir(ws).join("templates/hero.hbs"),
        "A hero banner. Scene: {{row.scene}}. Headline, exactly: \"{{row.headline}}\"",
    )
    .unwrap();
}

fn run_gemini(ws: &Workspace, emu: &Emu) -> std::process::Output {
    ws.adloc_gemini(emu, &["run", "campaigns/brandkit"])
}

/// Image generations the emulator received (reads are counted apart).
fn image_calls(emu: &Emu) -> u64 {
    let s = emu.stats();
    s.generate_calls - s.read_calls
}

#[test]
fn a_model_text_image_ships_with_the_real_logo_and_button_while_copy_qa_reads_the_model_image() {
    let emu = Emu::start(adloc_emulator::Faults::default());
    let ws = Workspace::new();
    model_text_campaign(&ws);
    let o = run_gemini(&ws, &emu);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(image_calls(&emu), MODEL_LOCALES.len() as u64);
    let m = manifest(&ws);
    assert_manifest_valid(&m);
    assert_manifest_matches_files(&out(&ws), &m);
    assert_eq!(m["assets"].as_array().unwrap().len(), MODEL_LOCALES.len());

    let logo = px_box(0.04, 0.04, 0.18, 0.08);
    let logo_ar = px_box(1.0 - 0.04 - 0.18, 0.04, 0.18, 0.08);
    let button = px_box(0.06, 0.78, 0.34, 0.10);
    let button_ar = px_box(1.0 - 0.06 - 0.34, 0.78, 0.34, 0.10);
    let (lw, lh) = (logo.3 * 2, logo.3);
    for locale in MODEL_LOCALES {
        let a = asset(&m, locale, "hero");
        // The layered file is delivered at the asset path; the model's own
        // image is kept apart, un-layered, and recorded with its checksum.
        let path = a["path"].as_str().unwrap();
        assert_eq!(path, format!("{locale}/hero/r1.png"), "{a:#}");
        let model_path = a["overlay"]["art_path"].as_str().unwrap();
        assert_eq!(model_path, format!("_unlayered/{locale}/hero/r1.png"));
        assert_eq!(
            sha256_file(&out(&ws).join(model_path)),
            a["overlay"]["art_sha256"].as_str().unwrap()
        );
        assert_ne!(a["sha256"], a["overlay"]["art_sha256"]);
        for f in [
            "brand/logo.svg",
            "brand/logo-ar.png",
            "brand/Brand-Regular.ttf",
        ] {
            assert_eq!(
                a["overlay"]["brand"][f].as_str(),
                Some(sha256_file(&dir(&ws).join(f)).as_str()),
                "{f} in {a:#}"
            );
        }
        assert!(a["copy"]["headline"].as_str().is_some(), "{a:#}");
        let shipped = rgba(&out(&ws).join(path));
        let model = rgba(&out(&ws).join(model_path));
        assert_eq!(shipped.dimensions(), (W, H));
        let (b, other_b) = if locale == "ar-SA" {
            (button_ar, button)
        } else {
            (button, button_ar)
        };
        let fill = count(&shipped, PRIMARY, b);
        assert!(
            fill as f64 > 0.6 * f64::from(b.2 * b.3),
            "{locale}: {fill} primary pixels in the button {b:?}"
        );
        assert!(
            count(&shipped, [255, 255, 255], b) > 50,
            "{locale}: no CTA ink"
        );
        assert_eq!(
            count(&shipped, PRIMARY, other_b),
            0,
            "{locale}: button not mirrored"
        );
        assert!(
            (count(&model, PRIMARY, b) as f64) < 0.1 * f64::from(b.2 * b.3),
            "{locale}: the kept model image has the button drawn on"
        );
        if locale == "ar-SA" {
            // Mirrored: the PNG logo's opaque half at the box's right edge.
            let right = logo_ar.0 + logo_ar.2;
            let png_left = (right - lw, logo_ar.1, lw / 2 - 2, lh);
            let blue = count(&shipped, LOGO_BLUE, png_left);
            assert!(
                blue as f64 > 0.9 * f64::from(png_left.2 * lh),
                "{blue} blue pixels where the ar-SA logo should be"
            );
            assert_eq!(
                count(&shipped, LOGO_BLUE, logo),
                0,
                "ar-SA logo not mirrored"
            );
            assert_eq!(count(&shipped, LOGO_GREEN, (0, 0, W, H)), 0);
        } else {
            let green = count(&shipped, LOGO_GREEN, logo);
            assert!(
                green as f64 > 0.9 * f64::from(lw * lh),
                "{green} green pixels in the logo box, expected about {}",
                lw * lh
            );
            assert_eq!(count(&shipped, LOGO_GREEN, logo_ar), 0);
            assert!(
                (count(&model, LOGO_GREEN, logo) as f64) < 0.1 * f64::from(lw * lh),
                "the kept model image has the logo drawn on"
            );
        }
    }

    // The review page shows the file that ships: its thumbnail is made of
    // the layered file (the logo's green in its corner) and links to it.
    let en = asset(&m, "en-US", "hero");
    let page = std::fs::read_to_string(out(&ws).join("review/index.html")).unwrap();
    let shipped_sha = en["sha256"].as_str().unwrap();
    let model_sha = en["overlay"]["art_sha256"].as_str().unwrap();
    assert!(
        page.contains(&format!("thumbs/{shipped_sha}.jpg")),
        "the review page does not show the layered file"
    );
    assert!(
        !page.contains(&format!("thumbs/{model_sha}.jpg")),
        "the review page shows the un-layered model image"
    );
    assert!(page.contains("href=\"../en-US/hero/r1.png\""));
    let thumb = rgba(&out(&ws).join(format!("review/thumbs/{shipped_sha}.jpg")));
    let (tw, th) = thumb.dimensions();
    let r = |f: f32, t: u32| (f * t as f32).round() as u32;
    let tbox = (r(0.05, tw), r(0.05, th), r(0.08, tw), r(0.06, th));
    let green = (tbox.0..tbox.0 + tbox.2)
        .flat_map(|x| (tbox.1..tbox.1 + tbox.3).map(move |y| (x, y)))
        .filter(|&(x, y)| {
            let p = thumb.get_pixel(x, y).0;
            p[1] > 200 && p[0] < 60 && p[2] < 60
        })
        .count();
    assert!(green > 0, "no logo in the review thumbnail");

    let shipped: BTreeMap<String, String> = composites(&m);
    let model_images: BTreeMap<String, String> = m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap().to_string(),
                a["overlay"]["art_sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // What a reader is sent of a file: adloc downscales it first.
    let as_read = |rel: &str| -> String {
        let bytes = std::fs::read(out(&ws).join(rel)).unwrap();
        let small = adloc::bench::for_reading(&bytes, adloc::bench::READ_MAX_SIDE_PX).unwrap();
        hex::encode(sha2::Sha256::digest(&small.bytes))
    };
    let read_of_model: BTreeMap<String, String> = m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let path = a["path"].as_str().unwrap();
            (
                path.to_string(),
                as_read(a["overlay"]["art_path"].as_str().unwrap()),
            )
        })
        .collect();
    let read_of_shipped: Vec<String> = shipped.keys().map(|p| as_read(p)).collect();
    let mtime = |p: &str| {
        std::fs::metadata(out(&ws).join(p))
            .unwrap()
            .modified()
            .unwrap()
    };
    let before: Vec<_> = shipped.keys().map(|p| mtime(p)).collect();

    // Copy QA turned on for the images already made: it reads back what
    // the model painted, never the layered file, and buys nothing.
    let mut toml = MODEL_TOML.to_string();
    toml.push_str(QA);
    std::fs::write(dir(&ws).join("campaign.toml"), &toml).unwrap();
    let o = run_gemini(&ws, &emu);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let s = emu.stats();
    assert_eq!(
        image_calls(&emu),
        MODEL_LOCALES.len() as u64,
        "an image was bought"
    );
    assert!(!s.read_images.is_empty(), "copy QA read nothing: {s:?}");
    for sha in &s.read_images {
        assert!(
            !read_of_shipped.contains(sha),
            "copy QA read a layered file ({sha})"
        );
        assert!(
            read_of_model.values().any(|m| m == sha),
            "copy QA read {sha}, not one of the model's images {read_of_model:?}"
        );
    }
    for sha in read_of_model.values() {
        assert!(
            s.read_images.contains(sha),
            "the model's image {sha} was not read"
        );
    }
    let m = manifest(&ws);
    for locale in MODEL_LOCALES {
        assert_eq!(asset(&m, locale, "hero")["qa"]["verdict"], "pass");
    }
    assert_eq!(composites(&m), shipped);
    assert_eq!(
        shipped.keys().map(|p| mtime(p)).collect::<Vec<_>>(),
        before,
        "reading the copy recomposed"
    );

    // An unchanged rerun: nothing bought, read or recomposed.
    let reads = emu.stats().read_calls;
    let o = run_gemini(&ws, &emu);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(image_calls(&emu), MODEL_LOCALES.len() as u64);
    assert_eq!(emu.stats().read_calls, reads);
    assert_eq!(composites(&manifest(&ws)), shipped);
    assert_eq!(
        shipped.keys().map(|p| mtime(p)).collect::<Vec<_>>(),
        before,
        "an unchanged rerun recomposed"
    );

    // A new logo: every layered asset is recomposed from the model's kept
    // image (which does not change), nothing is bought.
    std::fs::write(
        dir(&ws).join("brand/logo.svg"),
        LOGO_SVG.replace("#00ff00", "#ff00ff"),
    )
    .unwrap();
    write_png_logo(&dir(&ws).join("brand/logo-ar.png"), [255, 0, 255]);
    let o = run_gemini(&ws, &emu);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        image_calls(&emu),
        MODEL_LOCALES.len() as u64,
        "an image was bought"
    );
    let m = manifest(&ws);
    assert_manifest_matches_files(&out(&ws), &m);
    for (path, sha) in composites(&m) {
        assert_ne!(sha, shipped[&path], "{path} still has the old logo");
        assert_eq!(sha256_file(&out(&ws).join(&path)), sha);
    }
    for a in m["assets"].as_array().unwrap() {
        let path = a["path"].as_str().unwrap();
        assert_eq!(
            a["overlay"]["art_sha256"].as_str().unwrap(),
            model_images[path],
            "the model's image changed"
        );
    }
    let en = rgba(&out(&ws).join("en-US/hero/r1.png"));
    assert!(
        count(&en, [255, 0, 255], logo) > 1000,
        "the new logo is not drawn"
    );
    assert_eq!(
        count(&en, LOGO_GREEN, (0, 0, W, H)),
        0,
        "the old logo is still there (drawn twice?)"
    );
}

#[test]
fn a_rejected_layered_model_text_asset_is_edited_from_the_model_image_and_layered_again() {
    revise_a_layered_model_text_asset(Workspace::new());
}

#[test]
fn a_rejected_layered_model_text_asset_is_edited_from_the_model_image_on_postgres() {
    revise_a_layered_model_text_asset(Workspace::on_postgres());
}

fn revise_a_layered_model_text_asset(ws: Workspace) {
    let emu = Emu::start(adloc_emulator::Faults::default());
    model_text_campaign(&ws);
    let o = run_gemini(&ws, &emu);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Copy QA turned on afterwards reads the images again (the job is
    // settled anew; its layered file stays the one reviewed).
    let mut toml = MODEL_TOML.to_string();
    toml.push_str(QA);
    std::fs::write(dir(&ws).join("campaign.toml"), &toml).unwrap();
    let o = run_gemini(&ws, &emu);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(emu.stats().reads > 0);
    let first = manifest(&ws);
    let old = asset(&first, "en-US", "hero").clone();
    let old_model_sha = old["overlay"]["art_sha256"].as_str().unwrap().to_string();

    // The reviewer rejects the file that ships (the layered one).
    let o = ws.adloc(&[
        "reject",
        "brandkit",
        "en-US/hero/r1",
        "--note",
        "make the sea calmer",
        "--by",
        "ana",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        asset(&manifest(&ws), "en-US", "hero")["approval"]["state"],
        "rejected"
    );

    let o = run_gemini(&ws, &emu);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let s = emu.stats();
    assert_eq!(s.edits.len(), 1, "{:?}", s.edits);
    assert_eq!(
        s.edits[0].image_sha256, old_model_sha,
        "the edit did not start from the model's un-layered image (layered: {})",
        old["sha256"]
    );
    assert_eq!(s.edits[0].instruction, "make the sea calmer");
    assert_eq!(image_calls(&emu), MODEL_LOCALES.len() as u64 + 1);

    let m = manifest(&ws);
    assert_manifest_valid(&m);
    assert_manifest_matches_files(&out(&ws), &m);
    let new = asset(&m, "en-US", "hero");
    assert_eq!(new["revision"], 2);
    assert_eq!(new["path"], old["path"]);
    assert_eq!(new["approval"]["state"], "pending");
    let new_model = new["overlay"]["art_path"].as_str().unwrap();
    let new_model_sha = new["overlay"]["art_sha256"].as_str().unwrap();
    assert_ne!(new_model_sha, old_model_sha, "the edit was not kept");
    assert_eq!(sha256_file(&out(&ws).join(new_model)), new_model_sha);
    // The edit is layered again, once.
    let shipped = rgba(&out(&ws).join(new["path"].as_str().unwrap()));
    let logo = px_box(0.04, 0.04, 0.18, 0.08);
    assert!(
        count(&shipped, LOGO_GREEN, logo) > 1000,
        "the revision has no logo"
    );
    let model = rgba(&out(&ws).join(new_model));
    assert!(
        count(&model, LOGO_GREEN, logo) < 100,
        "the kept edit has the logo drawn on"
    );

    // An unchanged rerun edits nothing more.
    let o = run_gemini(&ws, &emu);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(emu.stats().edits.len(), 1);
    assert_eq!(image_calls(&emu), MODEL_LOCALES.len() as u64 + 1);
}

#[test]
fn dropping_a_model_text_variants_layers_delivers_the_model_image_again_buying_nothing() {
    let emu = Emu::start(adloc_emulator::Faults::default());
    let ws = Workspace::new();
    model_text_campaign(&ws);
    let o = run_gemini(&ws, &emu);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let before = manifest(&ws);

    let bare = MODEL_TOML
        .split_once("\n[[variants.layers]]")
        .map(|(head, _)| head.to_string())
        .unwrap()
        + "\n\n[rate_limit]\nrpm = 60000\n";
    std::fs::write(dir(&ws).join("campaign.toml"), bare).unwrap();
    let o = run_gemini(&ws, &emu);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        image_calls(&emu),
        MODEL_LOCALES.len() as u64,
        "an image was bought"
    );
    let m = manifest(&ws);
    assert_manifest_valid(&m);
    assert_manifest_matches_files(&out(&ws), &m);
    for locale in MODEL_LOCALES {
        let was = asset(&before, locale, "hero");
        let now = asset(&m, locale, "hero");
        assert_eq!(now["path"], was["path"]);
        assert_eq!(now["sha256"], was["overlay"]["art_sha256"], "{now:#}");
        assert!(now.get("overlay").is_none(), "{now:#}");
    }
}
