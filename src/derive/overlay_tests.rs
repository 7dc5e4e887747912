//! Overlay unit tests: configuration, composing on pixels, hashes.

use std::collections::BTreeMap;

use image::{Rgba, RgbaImage};
use serde::Deserialize;
use toml::Spanned;

use crate::campaign::TextMode;
use crate::campaign::text_boxes::{DEFAULT_MIN_SIZE, RawTextBox, parse_text_mode};
use crate::domain::{InputErrors, Locale, Reason};
use crate::expand::ComposeSpec;
use crate::imaging::compose::{ComposeFailure, Composed};
use crate::imaging::text::Align;
use crate::imaging::{BoxLayout, TextBoxSpec, VAlign};

fn compose_image(
    img: &mut RgbaImage,
    s: &ComposeSpec,
    nominal: Option<u32>,
) -> Result<Vec<BoxLayout>, ComposeFailure> {
    crate::imaging::compose::compose_image(img, &s.boxes, s.locale.tag(), nominal)
}

fn compose_bytes(
    art: &[u8],
    s: &ComposeSpec,
    nominal: Option<u32>,
) -> Result<Composed, ComposeFailure> {
    crate::imaging::compose_bytes(art, &s.boxes, s.locale.tag(), nominal)
}

#[derive(Deserialize)]
struct Snippet {
    text: Option<Spanned<String>>,
    #[serde(default)]
    text_boxes: Vec<Spanned<RawTextBox>>,
}

fn parse(src: &str) -> (TextMode, Vec<String>) {
    let snip: Snippet = toml::from_str(src).expect("toml");
    let mut errors = InputErrors::default();
    let mode = parse_text_mode(
        std::path::Path::new("campaign.toml"),
        src,
        "banner",
        0..1,
        snip.text.as_ref(),
        snip.text_boxes,
        &Default::default(),
        &mut errors,
    );
    (mode, errors.0.iter().map(|p| p.to_string()).collect())
}

fn bx(column: &str, x: f32, y: f32, w: f32, h: f32) -> TextBoxSpec {
    TextBoxSpec {
        column: column.into(),
        x,
        y,
        width: w,
        height: h,
        align: Align::Start,
        valign: VAlign::Top,
        padding: 0.0,
        max_lines: None,
        min_size: 20.0,
        max_size: 40.0,
        line_height: 1.2,
        color: [255, 255, 255, 255],
        scrim: None,
        bold: false,
        line: 1,
        col: 1,
    }
}

fn spec(locale: &str, boxes: Vec<(TextBoxSpec, &str)>) -> ComposeSpec {
    ComposeSpec {
        row_id: crate::domain::RowId::parse("r1").expect("row id"),
        row_line: 2,
        locale: Locale::parse(locale).expect("locale"),
        variant: "banner".into(),
        aspect_ratio: "16:9".parse().expect("ratio"),
        boxes: boxes.into_iter().map(|(b, t)| (b, t.to_string())).collect(),
        resolution: BTreeMap::new(),
        resolved_locale: locale.into(),
        settings_hash: "s".into(),
        under: Vec::new(),
        over: Vec::new(),
        brand: BTreeMap::new(),
        on_model_image: false,
    }
}

const BG: [u8; 4] = [40, 60, 90, 255];

fn art(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_pixel(w, h, Rgba(BG))
}

/// Bounding box `(x0, y0, x1, y1)` (inclusive) of pixels that differ from
/// the background inside `region`.
fn ink_bbox(
    img: &RgbaImage,
    region: crate::imaging::text::TextBox,
) -> Option<(u32, u32, u32, u32)> {
    let mut bb: Option<(u32, u32, u32, u32)> = None;
    for y in region.y..region.y + region.height {
        for x in region.x..region.x + region.width {
            let p = img.get_pixel(x, y).0;
            let differs = p.iter().zip(BG).any(|(a, b)| a.abs_diff(b) > 40);
            if differs {
                bb = Some(match bb {
                    None => (x, y, x, y),
                    Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
                });
            }
        }
    }
    bb
}

#[test]
fn overlay_mode_parses_boxes_with_defaults_and_integers() {
    let (mode, errors) = parse(
        "text = \"overlay\"\n[[text_boxes]]\ncolumn = \"headline\"\nx = 0\ny = 0.1\nwidth = 0.5\nheight = 0.3\nmax_size = 72\n",
    );
    assert!(errors.is_empty(), "{errors:?}");
    let boxes = mode.boxes().expect("overlay");
    assert_eq!(boxes.len(), 1);
    let b = &boxes[0];
    assert_eq!((b.x, b.y, b.width, b.height), (0.0, 0.1, 0.5, 0.3));
    assert_eq!((b.min_size, b.max_size), (DEFAULT_MIN_SIZE, 72.0));
    assert_eq!(b.align, Align::Start);
    assert_eq!(b.color, [255, 255, 255, 255]);
    assert_eq!((b.line, b.col), (3, 10));
    assert_eq!(parse("").0, TextMode::Model);
    assert_eq!(parse("text = \"model\"").0, TextMode::Model);
    assert_eq!(parse("text = \"edit\"").0, TextMode::Edit);
    let (_, errors) = parse(
        "text = \"edit\"\n[[text_boxes]]\ncolumn = \"headline\"\nx = 0.0\ny = 0.1\nwidth = 0.5\nheight = 0.3\n",
    );
    assert!(
        errors.iter().any(|e| e.contains("text mode is \"edit\"")),
        "{errors:?}"
    );
}

#[test]
fn bad_overlay_settings_are_each_reported_at_their_line_and_column() {
    let (_, errors) = parse(
        "text = \"overlay\"\n[[text_boxes]]\ncolumn = \"headline\"\nx = 0.7\ny = 1.5\nwidth = 0.5\nheight = 0.3\nalign = \"left\"\nmin_size = 50\nmax_size = 30\ncolor = \"white\"\nmax_lines = 0\n",
    );
    let all = errors.join("\n");
    for (loc, what) in [
        ("campaign.toml:5:5", "y = 1.5"),
        ("campaign.toml:6:9", "runs past the right edge"),
        ("campaign.toml:8:9", "unknown align `left`"),
        (
            "campaign.toml:9:12",
            "min_size 50 is larger than max_size 30",
        ),
        ("campaign.toml:11:9", "colour `white`"),
        ("campaign.toml:12:13", "max_lines must be 1 or more"),
    ] {
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(loc) && e.contains(what)),
            "no {what:?} at {loc} in:\n{all}"
        );
    }
    let (_, errors) = parse("text = \"overlay\"\n");
    assert!(
        errors[0].contains("no [[variants.text_boxes]]"),
        "{errors:?}"
    );
    let (_, errors) = parse("text = \"painted\"\n");
    assert!(
        errors[0].contains("unknown text mode `painted`"),
        "{errors:?}"
    );
    let (_, errors) =
        parse("[[text_boxes]]\ncolumn = \"headline\"\nx = 0\ny = 0\nwidth = 0.5\nheight = 0.3\n");
    assert!(errors[0].contains("text mode is \"model\""), "{errors:?}");
}

#[test]
fn arabic_start_aligned_copy_inks_the_right_side_of_its_box() {
    let mut img = art(1000, 400);
    let b = bx("headline", 0.05, 0.1, 0.6, 0.5);
    let s = spec("ar-SA", vec![(b.clone(), "تخفيضات الربيع")]);
    compose_image(&mut img, &s, None).expect("fits");
    let region = b.pixel_box(1000, 400);
    let (x0, _, x1, _) = ink_bbox(&img, region).expect("ink");
    let right_gap = region.x + region.width - 1 - x1;
    let left_gap = x0 - region.x;
    assert!(right_gap <= 6, "ink ends {right_gap}px from the right edge");
    assert!(
        left_gap > 150,
        "ink starts only {left_gap}px from the left edge"
    );
}

#[test]
fn japanese_composite_wraps_without_closing_punctuation_at_a_line_start() {
    // 40 px, fixed; the box holds 10 full-width characters a line, so a
    // naive break would put `。` (the 11th) first on line 2. Kinsoku moves
    // `こ` down with it: line 2's first cell holds a kana, whose ink reaches
    // the top half of the cell; `。` sits in the bottom half only.
    let size = 40.0;
    let mut b = bx("headline", 0.0, 0.0, 0.5, 0.5);
    b.min_size = size;
    b.max_size = size;
    b.line_height = 1.5;
    let text = "あいうえおかきくけこ。さしすせそ";
    // 10.5 em wide, 3 lines tall.
    let (w, h) = (840, 360);
    let mut img = art(w, h);
    let s = spec("ja-JP", vec![(b.clone(), text)]);
    let layout = compose_image(&mut img, &s, None).expect("fits");
    assert_eq!(layout[0].lines, 2, "{layout:?}");
    let line_h = (size * 1.5) as u32;
    let cell = crate::imaging::text::TextBox {
        x: 0,
        y: line_h,
        width: size as u32,
        height: line_h,
    };
    let (_, y0, _, y1) = ink_bbox(&img, cell).expect("line 2 starts with ink at the left");
    let glyph_mid = line_h + (line_h - size as u32) / 2 + size as u32 / 2;
    assert!(
        y0 < glyph_mid && y1 > glyph_mid,
        "line 2's first glyph is inked {y0}..{y1} around mid {glyph_mid}: looks like punctuation"
    );
    // Control: the same check does tell `。` at a line start apart.
    let mut control = art(w, h);
    let c = spec("ja-JP", vec![(b, "あ\n。あ")]);
    compose_image(&mut control, &c, None).expect("fits");
    let (_, y0, _, _) = ink_bbox(&control, cell).expect("ink");
    assert!(
        y0 > glyph_mid,
        "`。` inked from {y0}, above mid {glyph_mid}"
    );
}

#[test]
fn overflow_fails_with_text_overflow_naming_every_box_and_its_copy() {
    let mut img = art(400, 200);
    let mut small = bx("headline", 0.0, 0.0, 0.2, 0.1);
    small.min_size = 30.0;
    small.max_size = 30.0;
    let mut cta = bx("cta", 0.0, 0.5, 0.2, 0.1);
    cta.min_size = 30.0;
    cta.max_size = 30.0;
    let s = spec(
        "de-DE",
        vec![
            (small, "Kostenloser Versand für jede Bestellung"),
            (cta, "Jetzt einkaufen und sparen"),
        ],
    );
    let before = img.clone();
    let err = compose_image(&mut img, &s, None).expect_err("overflows");
    assert_eq!(err.reason, Reason::TextOverflow);
    assert!(err.detail.contains("box `headline`"), "{}", err.detail);
    assert!(
        err.detail
            .contains("\"Kostenloser Versand für jede Bestellung\""),
        "{}",
        err.detail
    );
    assert!(err.detail.contains("box `cta`"), "{}", err.detail);
    assert!(err.detail.contains("30 px"), "{}", err.detail);
    // Nothing was drawn for the overflowing boxes.
    assert_eq!(img, before);
}

#[test]
fn scrim_fills_exactly_its_box_and_blends_with_the_art() {
    let mut img = art(200, 100);
    let mut b = bx("headline", 0.1, 0.2, 0.5, 0.5);
    b.scrim = Some([0, 0, 0, 128]);
    b.color = [255, 255, 255, 0]; // invisible text: only the scrim shows
    let s = spec("en-US", vec![(b.clone(), "Hi")]);
    compose_image(&mut img, &s, None).expect("fits");
    let r = b.pixel_box(200, 100);
    assert_eq!((r.x, r.y, r.width, r.height), (20, 20, 100, 50));
    assert_eq!(img.get_pixel(20, 20).0, [20, 30, 45, 255]);
    assert_eq!(img.get_pixel(119, 69).0, [20, 30, 45, 255]);
    assert_eq!(img.get_pixel(19, 20).0, BG);
    assert_eq!(img.get_pixel(120, 69).0, BG);
    assert_eq!(img.get_pixel(20, 70).0, BG);
}

#[test]
fn middle_valign_centres_the_block_and_padding_insets_it() {
    let mut img = art(400, 200);
    let mut b = bx("cta", 0.0, 0.0, 1.0, 1.0);
    b.valign = VAlign::Middle;
    b.padding = 30.0;
    b.align = Align::Center;
    let s = spec("en-US", vec![(b.clone(), "Shop")]);
    compose_image(&mut img, &s, None).expect("fits");
    let (x0, y0, x1, y1) = ink_bbox(&img, b.pixel_box(400, 200)).expect("ink");
    let (cx, cy) = ((x0 + x1) / 2, (y0 + y1) / 2);
    assert!(cx.abs_diff(200) <= 6, "ink centre x {cx}");
    assert!(cy.abs_diff(100) <= 12, "ink centre y {cy} ({y0}..{y1})");
    let mut top = art(400, 200);
    b.valign = VAlign::Top;
    compose_image(&mut top, &spec("en-US", vec![(b.clone(), "Shop")]), None).expect("fits");
    let (_, ty0, _, _) = ink_bbox(&top, b.pixel_box(400, 200)).expect("ink");
    assert!(ty0 >= 30 && ty0 < y0, "top-aligned ink starts at {ty0}");
}

#[test]
fn sizes_scale_with_the_art_width_relative_to_the_documented_size() {
    let b = bx("headline", 0.0, 0.0, 1.0, 1.0);
    let s = spec("en-US", vec![(b, "Sale")]);
    let mut small = art(400, 200);
    let at_1x = compose_image(&mut small, &s, Some(400)).expect("fits");
    let mut big = art(800, 400);
    let at_2x = compose_image(&mut big, &s, Some(400)).expect("fits");
    assert_eq!(at_1x[0].size_px, 40.0);
    assert_eq!(at_2x[0].size_px, 80.0);
}

#[test]
fn composites_keep_the_art_format_and_size() {
    let b = bx("headline", 0.0, 0.0, 1.0, 1.0);
    let s = spec("en-US", vec![(b, "Sale")]);
    for format in [image::ImageFormat::Png, image::ImageFormat::Jpeg] {
        let mut bytes = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgba8(art(320, 180))
            .to_rgb8()
            .write_to(&mut bytes, format)
            .expect("encode");
        let c = compose_bytes(bytes.get_ref(), &s, None).expect("composes");
        assert_eq!(c.format, format);
        let back = image::load_from_memory(&c.bytes).expect("decodes");
        assert_eq!((back.width(), back.height()), (320, 180));
    }
    let err = compose_bytes(b"not an image", &s, None).expect_err("bad art");
    assert_eq!(err.reason, Reason::UndecodableImage);
}

#[test]
fn compose_hash_changes_with_art_and_settings_but_not_otherwise() {
    let a = spec("en-US", vec![(bx("headline", 0.0, 0.0, 1.0, 1.0), "Sale")]);
    assert_eq!(a.compose_hash("art1"), a.compose_hash("art1"));
    assert_ne!(a.compose_hash("art1"), a.compose_hash("art2"));
    let mut b = a.clone();
    b.settings_hash = "other".into();
    assert_ne!(a.compose_hash("art1"), b.compose_hash("art1"));
}

#[test]
fn pixel_boxes_stay_inside_the_image() {
    let b = bx("headline", 0.9, 0.9, 0.1, 0.1);
    let r = b.pixel_box(1376, 768);
    assert!(r.x + r.width <= 1376 && r.y + r.height <= 768, "{r:?}");
    let tiny = bx("headline", 0.999, 0.999, 0.001, 0.001).pixel_box(10, 10);
    assert!(tiny.width >= 1 && tiny.x + tiny.width <= 10, "{tiny:?}");
}

/// Writes composites in every example locale for a human to look at:
/// `cargo test --lib overlay::tests::write_sample -- --ignored`.
#[test]
#[ignore = "writes files for manual review"]
fn write_sample_composites_for_review() {
    let mut head = bx("headline", 0.05, 0.1, 0.46, 0.46);
    head.max_size = 84.0;
    head.min_size = 28.0;
    head.max_lines = Some(3);
    head.bold = true;
    head.scrim = Some([0, 0, 0, 115]);
    head.padding = 24.0;
    let mut cta = bx("cta", 0.05, 0.66, 0.3, 0.13);
    cta.align = Align::Center;
    cta.max_lines = Some(1);
    cta.max_size = 44.0;
    cta.scrim = Some([217, 72, 15, 255]);
    cta.valign = VAlign::Middle;
    cta.padding = 10.0;
    for (locale, h, c) in [
        ("en-US", "Free shipping on every order", "Start shopping"),
        (
            "de-DE",
            "Kostenloser Versand für jede Bestellung",
            "Jetzt einkaufen",
        ),
        (
            "ja-JP",
            "全品送料無料、今だけ。「特別価格」です",
            "ショッピングを始める",
        ),
        ("ar-SA", "شحن مجاني لجميع الطلبات", "ابدأ التسوق"),
    ] {
        let mut img = art(1376, 768);
        let s = spec(locale, vec![(head.clone(), h), (cta.clone(), c)]);
        compose_image(&mut img, &s, Some(1376)).expect("fits");
        let path = std::env::temp_dir().join(format!("adloc-overlay-{locale}.png"));
        img.save(&path).expect("write");
        println!("{}", path.display());
    }
}
