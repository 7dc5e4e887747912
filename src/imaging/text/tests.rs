//! Tests for the text engine, on pixels and on layout lines.

use image::{Rgba, RgbaImage};

use super::fonts::{self, family_for_locale};
use super::*;

/// Sample copy per example locale, realistic ad length.
const SAMPLES: &[(&str, &str)] = &[
    ("en-US", "Summer Sale: 50% off everything — today only!"),
    (
        "de-DE",
        "Sommerschlussverkauf: 50 % Rabatt auf alles – nur heute! Größe, Straße",
    ),
    (
        "ja-JP",
        "夏のセール開催中！全品50%オフ。「今だけ」の特別価格です。",
    ),
    ("ko-KR", "여름 세일! 전 품목 50% 할인 — 오늘 단 하루."),
    ("zh-Hans-CN", "夏季特卖：全场五折，仅限今天！「立即购买」"),
    ("zh-Hant-TW", "夏季特賣：全場五折，僅限今天！「立即購買」"),
    ("zh-HK", "夏季特賣：全場半價，只限今日！"),
    ("ar-SA", "تخفيضات الصيف: خصم ٥٠٪ على كل شيء — اليوم فقط!"),
    ("he-IL", "מבצע קיץ: 50% הנחה על הכל — היום בלבד!"),
    ("th-TH", "ลดราคาฤดูร้อน ลด 50% ทุกชิ้น วันนี้เท่านั้น!"),
    ("hi-IN", "गर्मियों की सेल: हर चीज़ पर 50% छूट — सिर्फ़ आज!"),
    (
        "ru-RU",
        "Летняя распродажа: скидка 50% на всё — только сегодня!",
    ),
    ("el-GR", "Καλοκαιρινές εκπτώσεις: 50% σε όλα — μόνο σήμερα!"),
    (
        "uk-UA",
        "Літній розпродаж: знижка 50% на все — лише сьогодні! Ґ",
    ),
];

fn blank(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_pixel(w, h, Rgba([0, 0, 0, 0]))
}

fn style(size: f32, min: f32) -> TextStyle {
    TextStyle {
        size_px: size,
        min_size_px: min,
        ..TextStyle::default()
    }
}

#[test]
fn every_mapped_family_exists_in_the_embedded_fonts() {
    let mut pooled = fonts::PooledFontSystem::checkout();
    let db = pooled.get().db();
    for family in fonts::ALL_FAMILIES {
        let found = db
            .faces()
            .any(|face| face.families.iter().any(|(name, _)| name == family));
        assert!(found, "family {family:?} missing from the embedded fonts");
    }
}

#[test]
fn locale_picks_the_regional_cjk_face() {
    assert_eq!(family_for_locale("ja-JP"), fonts::CJK_JP);
    assert_eq!(family_for_locale("ko-KR"), fonts::CJK_KR);
    assert_eq!(family_for_locale("zh-Hans-CN"), fonts::CJK_SC);
    assert_eq!(family_for_locale("zh-CN"), fonts::CJK_SC);
    assert_eq!(family_for_locale("zh"), fonts::CJK_SC);
    assert_eq!(family_for_locale("zh-Hant-TW"), fonts::CJK_TC);
    assert_eq!(family_for_locale("zh-TW"), fonts::CJK_TC);
    assert_eq!(family_for_locale("zh_Hant"), fonts::CJK_TC);
    assert_eq!(family_for_locale("zh-HK"), fonts::CJK_HK);
    assert_eq!(family_for_locale("zh-Hant-HK"), fonts::CJK_HK);
    assert_eq!(family_for_locale("ar-SA"), fonts::ARABIC);
    assert_eq!(family_for_locale("he-IL"), fonts::HEBREW);
    assert_eq!(family_for_locale("th-TH"), fonts::THAI);
    assert_eq!(family_for_locale("hi-IN"), fonts::DEVANAGARI);
    assert_eq!(family_for_locale("en-US"), fonts::SANS);
    assert_eq!(family_for_locale("sr-Latn-RS"), fonts::SANS);
}

#[test]
fn han_characters_are_drawn_with_the_face_of_the_locale() {
    // Han unification: 直 and 骨 have regional shapes. The face must follow
    // the locale, not whichever CJK face happens to come first.
    for (locale, family) in [
        ("ja-JP", fonts::CJK_JP),
        ("ko-KR", fonts::CJK_KR),
        ("zh-Hans-CN", fonts::CJK_SC),
        ("zh-Hant-TW", fonts::CJK_TC),
        ("zh-HK", fonts::CJK_HK),
    ] {
        let glyphs = shape_line("直骨", locale);
        assert!(
            glyphs.iter().all(|g| g.family == family),
            "{locale}: {:?}",
            glyphs.iter().map(|g| &g.family).collect::<Vec<_>>()
        );
    }
    // Fallback picks the right script face in other locales.
    let families = |text: &str, locale: &str| -> Vec<String> {
        // The direction mark added to an opposite-direction paragraph is
        // drawn (invisibly) by whichever face has it; skip it.
        shape_line(text, locale)
            .into_iter()
            .filter(|g| !is_invisible_format(g.first_char))
            .map(|g| g.family)
            .collect()
    };
    assert!(
        families("مرحبا", "en-US")
            .iter()
            .all(|f| f == fonts::ARABIC)
    );
    assert!(families("Acme", "ar-SA").iter().all(|f| f == fonts::SANS));
    assert!(families("한국", "en-US").iter().all(|f| f == fonts::CJK_KR));
    assert!(families("かな", "en-US").iter().all(|f| f == fonts::CJK_JP));
    assert!(families("שלום", "en-US").iter().all(|f| f == fonts::HEBREW));
}

#[test]
fn direction_marks_draw_no_ink() {
    let mut img = blank(200, 100);
    let bx = TextBox {
        x: 0,
        y: 0,
        width: 200,
        height: 100,
    };
    for locale in ["en-US", "ar-SA"] {
        let fitted =
            draw_text(&mut img, bx, "\u{200F}\u{200E}", locale, &style(40.0, 40.0)).expect("fits");
        assert_eq!(fitted.ink_bbox, None, "{locale}");
    }
}

#[test]
fn rtl_locales_are_detected_by_language_and_script() {
    for tag in [
        "ar",
        "ar-SA",
        "he-IL",
        "fa-IR",
        "ur-PK",
        "ps",
        "yi",
        "az-Arab",
        "pa_Arab_PK",
        "ckb",
    ] {
        assert!(is_rtl_locale(tag), "{tag} should be RTL");
    }
    for tag in [
        "en-US",
        "de-DE",
        "ja-JP",
        "zh-Hans-CN",
        "az-Latn",
        "ku",
        "",
        "tr",
    ] {
        assert!(!is_rtl_locale(tag), "{tag} should be LTR");
    }
}

#[test]
fn arabic_start_aligned_ink_ends_flush_with_the_box_right_edge() {
    let bx = TextBox {
        x: 40,
        y: 30,
        width: 700,
        height: 200,
    };
    // The second one starts with a Latin brand name: without forcing the
    // base direction it would become an LTR paragraph aligned left.
    for text in ["مرحبا بالعالم", "Acme: خصم ٥٠٪ اليوم"] {
        let mut img = blank(800, 300);
        let fitted = draw_text(&mut img, bx, text, "ar-SA", &style(48.0, 12.0)).expect("fits");
        let (x, _, w, _) = fitted.ink_bbox.expect("ink");
        let right = x + w;
        let box_right = bx.x + bx.width;
        assert!(
            right <= box_right + 2 && right + 6 >= box_right,
            "{text}: ink right edge {right} not flush with box right {box_right}"
        );
        assert!(
            x > bx.x + 200,
            "{text}: ink starts at {x}, so it is not right-aligned"
        );
    }
}

#[test]
fn arabic_end_aligned_ink_starts_flush_with_the_box_left_edge() {
    let bx = TextBox {
        x: 40,
        y: 30,
        width: 700,
        height: 200,
    };
    let mut img = blank(800, 300);
    let st = TextStyle {
        align: Align::End,
        ..style(48.0, 12.0)
    };
    let fitted = draw_text(&mut img, bx, "مرحبا بالعالم", "ar", &st).expect("fits");
    let (x, _, w, _) = fitted.ink_bbox.expect("ink");
    assert!(
        x + 6 >= bx.x && x <= bx.x + 6,
        "ink starts at {x}, box at {}",
        bx.x
    );
    assert!(x + w < bx.x + bx.width - 200);
}

#[test]
fn latin_start_aligned_ink_starts_at_the_left_and_centre_is_centred() {
    let bx = TextBox {
        x: 40,
        y: 30,
        width: 700,
        height: 200,
    };
    let mut img = blank(800, 300);
    let fitted = draw_text(&mut img, bx, "Hello world", "en-US", &style(48.0, 12.0)).expect("fits");
    let (x, _, w, _) = fitted.ink_bbox.expect("ink");
    assert!(x <= bx.x + 6, "ink starts at {x}");
    assert!(x + w < bx.x + 500);

    let mut img = blank(800, 300);
    let st = TextStyle {
        align: Align::Center,
        ..style(48.0, 12.0)
    };
    let fitted = draw_text(&mut img, bx, "Hello world", "en-US", &st).expect("fits");
    let (x, _, w, _) = fitted.ink_bbox.expect("ink");
    let (left, right) = (x - bx.x, bx.x + bx.width - (x + w));
    assert!(
        left.abs_diff(right) <= 8,
        "left margin {left}, right margin {right}"
    );
}

#[test]
fn arabic_letters_are_shaped_into_joined_forms() {
    // Three beh: initial, medial and final forms are three different glyphs.
    // An unshaped renderer would draw the same isolated glyph three times.
    let ids: Vec<u16> = shape_line("ببب", "ar").iter().map(|g| g.id).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
    assert!(ids.iter().all(|&id| id != 0));
}

#[test]
fn rtl_copy_starting_with_latin_keeps_an_rtl_base_direction() {
    // In an RTL paragraph the brand name that starts the copy is read first,
    // so it sits at the right; with an LTR base it would sit at the left.
    let glyphs = shape_line("Acme خصم كبير", "ar-SA");
    let x_of = |c: char| glyphs.iter().find(|g| g.first_char == c).map(|g| g.x);
    let (Some(latin), Some(arabic)) = (x_of('A'), x_of('خ')) else {
        panic!("glyphs not found");
    };
    assert!(
        latin > arabic,
        "A at {latin}, خ at {arabic}: base direction is LTR"
    );
    // And the same line in an LTR locale keeps the brand at the left.
    let glyphs = shape_line("Acme خصم كبير", "en-US");
    let x_of = |c: char| glyphs.iter().find(|g| g.first_char == c).map(|g| g.x);
    assert!(x_of('A') < x_of('خ'));
}

/// Characters that may never start a line in Japanese or Chinese.
const NO_LINE_START: &[char] = &[
    '。', '、', '」', '』', '）', '】', '〕', '！', '？', '，', '．', '：', '；', '〉', '》',
];

fn assert_no_line_starts_with_closing_punctuation(text: &str, locale: &str) {
    let mut multi_line_layouts = 0;
    for width in (90..=420).step_by(7) {
        let (fitted, lines) =
            layout_lines(width, 4000, text, locale, &style(24.0, 24.0)).expect("fits");
        assert_eq!(fitted.lines, lines.len());
        if lines.len() > 1 {
            multi_line_layouts += 1;
        }
        for line in &lines[1..] {
            let first = line.chars().next();
            assert!(
                !first.is_some_and(|c| NO_LINE_START.contains(&c)),
                "width {width}: line starts with closing punctuation: {line:?} in {lines:?}"
            );
        }
    }
    assert!(multi_line_layouts > 20, "the text never wrapped");
}

#[test]
fn japanese_lines_never_start_with_closing_punctuation() {
    let text = "夏のセール開催中。「今だけ」の特別価格です。全品五十パーセントオフ、送料無料（一部地域を除く）。お見逃しなく！ご来店をお待ちしております。";
    assert_no_line_starts_with_closing_punctuation(text, "ja-JP");
}

#[test]
fn chinese_lines_never_start_with_closing_punctuation() {
    let text = "夏季特卖开始了，全场五折。「限时优惠」，仅限今天！欢迎光临（部分商品除外）。数量有限，先到先得。";
    assert_no_line_starts_with_closing_punctuation(text, "zh-Hans-CN");
}

#[test]
fn sample_copy_in_every_example_locale_has_no_missing_glyphs() {
    for (locale, text) in SAMPLES {
        let missing = unsupported_chars(text, locale);
        assert!(missing.is_empty(), "{locale}: no glyph for {missing:?}");
    }
}

#[test]
fn missing_glyph_check_reports_characters_no_font_has() {
    // No emoji font is embedded, so this must be reported, which proves the
    // check above can fail.
    assert_eq!(
        unsupported_chars("Sale \u{1F525}", "en-US"),
        vec!['\u{1F525}']
    );
}

#[test]
fn cjk_korean_arabic_hebrew_text_renders_ink() {
    for (locale, text) in SAMPLES {
        let mut img = blank(900, 300);
        let bx = TextBox {
            x: 10,
            y: 10,
            width: 880,
            height: 280,
        };
        let fitted = draw_text(&mut img, bx, text, locale, &style(40.0, 10.0)).expect("fits");
        let (_, _, w, h) = fitted.ink_bbox.expect("ink");
        let inked = img.pixels().filter(|p| p.0[3] > 128).count();
        assert!(
            w > 100 && h > 20 && inked > 1000,
            "{locale}: too little ink ({w}x{h}, {inked} px)"
        );
    }
}

#[test]
fn overflow_returns_the_text() {
    let text = "This copy is far too long to ever fit into a tiny box at a legible size";
    let err = fit_text(120, 40, text, "en-US", &style(40.0, 18.0)).expect_err("must overflow");
    assert_eq!(
        err,
        TextError::Overflow {
            text: text.to_string(),
            min_size_px: 18.0
        }
    );
    let mut img = blank(200, 100);
    let before = img.clone();
    let bx = TextBox {
        x: 0,
        y: 0,
        width: 120,
        height: 40,
    };
    assert!(matches!(
        draw_text(&mut img, bx, text, "en-US", &style(40.0, 18.0)),
        Err(TextError::Overflow { .. })
    ));
    assert_eq!(img, before, "nothing is drawn on overflow");
}

#[test]
fn text_shrinks_before_it_overflows() {
    let text = "Summer Sale: fifty percent off everything, today only";
    let st = style(80.0, 10.0);
    let fitted = fit_text(400, 120, text, "en-US", &st).expect("fits when shrunk");
    assert!(
        fitted.size_px < 80.0 && fitted.size_px >= 10.0,
        "{fitted:?}"
    );
    assert!(fitted.block_height(&st) <= 120.5);
    // It picked (nearly) the largest size that fits: a point bigger does not.
    let bigger = TextStyle {
        size_px: fitted.size_px + 1.0,
        min_size_px: fitted.size_px + 1.0,
        ..st.clone()
    };
    assert!(fit_text(400, 120, text, "en-US", &bigger).is_err());
    // And at the preferred size it really did not fit.
    let at_max = TextStyle {
        min_size_px: 80.0,
        ..st
    };
    assert!(fit_text(400, 120, text, "en-US", &at_max).is_err());
}

#[test]
fn max_lines_forces_shrinking() {
    let text = "One two three four five six seven eight nine ten";
    let free = fit_text(300, 1000, text, "en-US", &style(40.0, 8.0)).expect("fits");
    assert!(free.lines > 2, "{free:?}");
    let st = TextStyle {
        max_lines: Some(2),
        ..style(40.0, 8.0)
    };
    let capped = fit_text(300, 1000, text, "en-US", &st).expect("fits");
    assert!(
        capped.lines <= 2 && capped.size_px < free.size_px,
        "{capped:?}"
    );
}

#[test]
fn long_words_shrink_before_being_broken() {
    // One long German compound: word wrap alone cannot fit it at 60 px in
    // 300 px, so the size drops until the word fits whole on a line.
    let (fitted, lines) = layout_lines(
        300,
        400,
        "Donaudampfschifffahrtsgesellschaft",
        "de-DE",
        &style(60.0, 8.0),
    )
    .expect("fits");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(fitted.size_px < 60.0);
}

#[test]
fn draw_and_fit_agree() {
    for (locale, text) in SAMPLES {
        let st = style(64.0, 8.0);
        let fitted = fit_text(500, 180, text, locale, &st).expect("fits");
        let mut img = blank(520, 200);
        let bx = TextBox {
            x: 10,
            y: 10,
            width: 500,
            height: 180,
        };
        let drawn = draw_text(&mut img, bx, text, locale, &st).expect("fits");
        assert_eq!(
            (fitted.size_px, fitted.lines),
            (drawn.size_px, drawn.lines),
            "{locale}"
        );
        assert!(fitted.ink_bbox.is_none());
    }
}

#[test]
fn blank_text_draws_nothing() {
    let mut img = blank(100, 100);
    let bx = TextBox {
        x: 0,
        y: 0,
        width: 100,
        height: 100,
    };
    let fitted = draw_text(&mut img, bx, "  \n ", "en", &TextStyle::default()).expect("ok");
    assert_eq!(fitted.lines, 0);
    assert_eq!(fitted.ink_bbox, None);
    assert!(img.pixels().all(|p| p.0 == [0, 0, 0, 0]));
}

#[test]
fn empty_boxes_and_bad_styles_are_errors() {
    assert!(matches!(
        fit_text(0, 10, "x", "en", &TextStyle::default()),
        Err(TextError::EmptyBox { .. })
    ));
    for bad in [
        style(10.0, 20.0),
        style(f32::NAN, 1.0),
        style(10.0, 0.0),
        TextStyle {
            line_height: 0.0,
            ..TextStyle::default()
        },
        TextStyle {
            max_lines: Some(0),
            ..TextStyle::default()
        },
    ] {
        assert!(
            matches!(
                fit_text(100, 100, "x", "en", &bad),
                Err(TextError::InvalidStyle(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn glyphs_outside_the_image_are_clipped_not_a_panic() {
    let mut img = blank(50, 30);
    let bx = TextBox {
        x: 30,
        y: 10,
        width: 400,
        height: 200,
    };
    let fitted = draw_text(&mut img, bx, "Clipped text", "en", &style(40.0, 40.0)).expect("fits");
    let (x, y, w, h) = fitted.ink_bbox.expect("some ink inside");
    assert!(x + w <= 50 && y + h <= 30);
}

#[test]
fn drawing_is_deterministic_across_threads() {
    let render = || {
        let mut img = blank(600, 200);
        let bx = TextBox {
            x: 0,
            y: 0,
            width: 600,
            height: 200,
        };
        for (locale, text) in SAMPLES.iter().take(8) {
            draw_text(&mut img, bx, text, locale, &style(30.0, 6.0)).expect("fits");
        }
        img
    };
    let here = render();
    let handles: Vec<_> = (0..4).map(|_| std::thread::spawn(render)).collect();
    for handle in handles {
        assert!(handle.join().expect("thread") == here);
    }
}

#[test]
fn translucent_colour_blends_over_the_background() {
    let mut img = RgbaImage::from_pixel(200, 80, Rgba([0, 0, 255, 255]));
    let bx = TextBox {
        x: 0,
        y: 0,
        width: 200,
        height: 80,
    };
    let st = TextStyle {
        color: [255, 0, 0, 128],
        ..style(60.0, 60.0)
    };
    draw_text(&mut img, bx, "HH", "en", &st).expect("fits");
    // Solid stem pixels are half red, half blue, and stay opaque.
    let stem = img.pixels().find(|p| p.0[0] > 100).expect("some red");
    assert!(
        stem.0[0] <= 129 && stem.0[2] >= 126 && stem.0[3] == 255,
        "{stem:?}"
    );
}

/// Writes every sample locale onto one sheet for a human to look at:
/// `cargo test --lib text::tests::write_sample_sheet -- --ignored`.
#[test]
#[ignore = "writes a file for manual review"]
fn write_sample_sheet_for_review() {
    let row_h = 70;
    let mut img = RgbaImage::from_pixel(
        1000,
        row_h * SAMPLES.len() as u32,
        Rgba([250, 250, 245, 255]),
    );
    for (i, (locale, text)) in SAMPLES.iter().enumerate() {
        let st = TextStyle {
            color: [20, 20, 30, 255],
            ..style(34.0, 8.0)
        };
        let bx = TextBox {
            x: 20,
            y: i as u32 * row_h + 8,
            width: 960,
            height: row_h - 12,
        };
        draw_text(&mut img, bx, text, locale, &st).expect("fits");
    }
    let path = std::env::temp_dir().join("adloc-text-samples.png");
    img.save(&path).expect("write");
    println!("{}", path.display());
}

#[test]
fn the_brand_family_travels_in_the_style_to_any_thread_with_noto_for_scripts_it_lacks() {
    let noto = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/fonts/NotoSans-Regular.ttf"
    ));
    let brand = register_brand_fonts(&[std::sync::Arc::new(noto.to_vec())]).expect("a font");
    assert!(brand.ends_with("[brand]"), "{brand}");
    let style = TextStyle {
        brand_family: Some(brand),
        ..TextStyle::default()
    };
    let family = |text: &str, locale: &str, style: &TextStyle| {
        fit_text(600, 120, text, locale, style)
            .expect("fits")
            .family
    };
    assert_eq!(family("Spring sale", "en-US", &style), brand);
    assert_eq!(
        family("تخفيضات الربيع", "ar-SA", &style),
        family_for_locale("ar-SA"),
        "the brand face has no Arabic"
    );
    assert_eq!(
        family("Spring sale", "en-US", &TextStyle::default()),
        family_for_locale("en-US")
    );
    // No scope to enter: a style sent to another thread sets the same face.
    let elsewhere = std::thread::spawn(move || family("Spring sale", "en-US", &style))
        .join()
        .expect("thread");
    assert_eq!(elsewhere, brand);
}
