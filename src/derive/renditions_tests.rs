use std::path::Path;

use fast_image_resize::Resizer;
use image::{DynamicImage, ImageFormat};
use serde::Deserialize;
use toml::Spanned;

use crate::campaign::renditions::{RawRendition, parse_specs};
use crate::domain::InputErrors;
use crate::imaging::parse_color;
use crate::imaging::resize::*;

fn spec(w: u32, h: u32, format: OutputFormat, fit: Fit) -> RenditionSpec {
    RenditionSpec {
        width: w,
        height: h,
        format,
        quality: 90,
        fit,
    }
}

/// A 400x100 master: left half red, right half blue, with a 20 px green
/// square centred at (300, 50).
fn master() -> DynamicImage {
    let img = image::RgbImage::from_fn(400, 100, |x, y| {
        if (290..310).contains(&x) && (40..60).contains(&y) {
            image::Rgb([0, 255, 0])
        } else if x < 200 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    });
    DynamicImage::ImageRgb8(img)
}

fn decode(bytes: &[u8]) -> image::RgbaImage {
    image::load_from_memory(bytes).unwrap().to_rgba8()
}

fn close(a: [u8; 4], b: [u8; 4]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 12)
}

#[test]
fn cover_crop_centres_on_the_focal_point_and_stays_inside_the_master() {
    // A 100x100 crop of a 400x100 master around x = 0.75: columns 250..350.
    assert_eq!(
        cover_crop(400, 100, 100, 100, (0.75, 0.5)),
        (250.0, 0.0, 100.0, 100.0)
    );
    // Focal at the far right edge: pushed back inside.
    assert_eq!(
        cover_crop(400, 100, 100, 100, (1.0, 0.5)),
        (300.0, 0.0, 100.0, 100.0)
    );
    // Default centre.
    assert_eq!(
        cover_crop(400, 100, 100, 100, (0.5, 0.5)),
        (150.0, 0.0, 100.0, 100.0)
    );
}

#[test]
fn cover_rendition_keeps_the_focal_subject_in_the_centre() {
    let m = master();
    let mut r = Resizer::new();
    let s = spec(50, 50, OutputFormat::Png, Fit::Cover { focal: (0.75, 0.5) });
    let out = render(&m, &s, &mut r).unwrap();
    let img = decode(&out.bytes);
    assert_eq!((img.width(), img.height()), (50, 50));
    // The green square (the focal subject) is in the middle, blue around it.
    assert!(
        close(img.get_pixel(25, 25).0, [0, 255, 0, 255]),
        "{:?}",
        img.get_pixel(25, 25)
    );
    assert!(
        close(img.get_pixel(2, 2).0, [0, 0, 255, 255]),
        "{:?}",
        img.get_pixel(2, 2)
    );
    // With the focal point on the left, the same crop is all red.
    let left = render(
        &m,
        &spec(50, 50, OutputFormat::Png, Fit::Cover { focal: (0.1, 0.5) }),
        &mut r,
    )
    .unwrap();
    let img = decode(&left.bytes);
    assert!(close(img.get_pixel(25, 25).0, [255, 0, 0, 255]));
    assert!(!out.upscaled && !left.upscaled);
}

#[test]
fn contain_rendition_pads_with_the_colour_and_keeps_the_whole_master() {
    let m = master();
    let mut r = Resizer::new();
    let s = spec(
        200,
        200,
        OutputFormat::Png,
        Fit::Contain {
            pad: [10, 20, 30, 255],
        },
    );
    let img = decode(&render(&m, &s, &mut r).unwrap().bytes);
    assert_eq!((img.width(), img.height()), (200, 200));
    // 400x100 fits as 200x50 centred: rows 75..125 are the master.
    assert_eq!(img.get_pixel(100, 10).0, [10, 20, 30, 255]);
    assert_eq!(img.get_pixel(5, 190).0, [10, 20, 30, 255]);
    assert!(close(img.get_pixel(20, 100).0, [255, 0, 0, 255]));
    assert!(close(img.get_pixel(180, 100).0, [0, 0, 255, 255]));
    // Transparent padding survives in PNG.
    let t = spec(
        200,
        200,
        OutputFormat::Png,
        Fit::Contain { pad: [0, 0, 0, 0] },
    );
    let img = decode(&render(&m, &t, &mut r).unwrap().bytes);
    assert_eq!(img.get_pixel(100, 10).0[3], 0);
}

#[test]
fn every_format_encodes_at_the_exact_size_and_is_deterministic() {
    let m = master();
    let mut r = Resizer::new();
    for (format, mime) in [
        (OutputFormat::Png, ImageFormat::Png),
        (OutputFormat::Jpeg, ImageFormat::Jpeg),
        (OutputFormat::Webp, ImageFormat::WebP),
    ] {
        let s = spec(300, 250, format, Fit::Cover { focal: (0.5, 0.5) });
        let a = render(&m, &s, &mut r).unwrap();
        let b = render(&m, &s, &mut Resizer::new()).unwrap();
        assert_eq!(a.bytes, b.bytes, "{format:?} is not deterministic");
        assert_eq!(image::guess_format(&a.bytes).unwrap(), mime);
        let img = decode(&a.bytes);
        assert_eq!((img.width(), img.height()), (300, 250));
        assert!(
            a.upscaled,
            "300x250 from a 100-pixel-high master is an upscale"
        );
    }
}

#[test]
fn settings_hash_changes_with_every_output_setting_and_ignores_quality_for_png() {
    let base = spec(
        1200,
        628,
        OutputFormat::Jpeg,
        Fit::Cover { focal: (0.5, 0.5) },
    );
    let h = base.settings_hash();
    let mut q = base.clone();
    q.quality = 70;
    assert_ne!(q.settings_hash(), h);
    let mut f = base.clone();
    f.fit = Fit::Cover { focal: (0.5, 0.4) };
    assert_ne!(f.settings_hash(), h);
    let mut c = base.clone();
    c.fit = Fit::Contain { pad: [255; 4] };
    assert_ne!(c.settings_hash(), h);
    let mut p1 = base.clone();
    p1.format = OutputFormat::Png;
    let mut p2 = p1.clone();
    p2.quality = 10;
    assert_eq!(p1.settings_hash(), p2.settings_hash());
}

#[test]
fn aspect_check_flags_masters_outside_two_percent() {
    assert_eq!(aspect_check(1376, 768, "16:9"), (1.7917, true));
    // Third parties report 2816x1536 for 16:9 at 2K: 3.1% wide, flagged.
    assert!(!aspect_check(2816, 1536, "16:9").1);
    assert!(aspect_check(2752, 1536, "16:9").1);
    assert!(aspect_check(1024, 1024, "1:1").1);
    assert!(!aspect_check(1024, 1024, "16:9").1);
    assert!(!aspect_check(1100, 1000, "1:1").1);
    assert!(aspect_check(1020, 1000, "1:1").1);
    assert!(!aspect_check(10, 10, "bogus").1);
}

fn parse(toml_text: &str) -> (Vec<RenditionSpec>, InputErrors) {
    #[derive(Deserialize)]
    struct Wrap {
        renditions: Vec<Spanned<RawRendition>>,
    }
    let w: Wrap = toml::from_str(toml_text).unwrap();
    let mut errors = InputErrors::default();
    let specs = parse_specs(
        Path::new("campaign.toml"),
        toml_text,
        "hero",
        w.renditions,
        &mut errors,
    );
    (specs, errors)
}

#[test]
fn rendition_settings_parse_with_defaults() {
    let (specs, errors) = parse(
        r##"
[[renditions]]
size = "1200x628"

[[renditions]]
width = 300
height = 250
format = "webp"
fit = "contain"
pad = "#00000000"

[[renditions]]
size = "1080x1080"
format = "jpg"
quality = 70
focal = [0.5, 0.4]
"##,
    );
    assert!(errors.is_empty(), "{errors}");
    assert_eq!(specs.len(), 3);
    assert_eq!(
        specs[0],
        spec(
            1200,
            628,
            OutputFormat::Jpeg,
            Fit::Cover { focal: (0.5, 0.5) }
        )
        .with_quality(85)
    );
    assert_eq!(specs[1].fit, Fit::Contain { pad: [0, 0, 0, 0] });
    assert_eq!(specs[1].format, OutputFormat::Webp);
    assert_eq!(specs[2].quality, 70);
    assert_eq!(specs[2].fit, Fit::Cover { focal: (0.5, 0.4) });
}

impl RenditionSpec {
    fn with_quality(mut self, q: u8) -> Self {
        self.quality = q;
        self
    }
}

#[test]
fn bad_rendition_settings_are_reported_at_their_line_and_column() {
    let text = r##"
[[renditions]]
size = "1200by628"

[[renditions]]
size = "300x250"
format = "gif"

[[renditions]]
size = "300x300"
format = "png"
quality = 80

[[renditions]]
size = "10x10"
fit = "cover"
focal = [1.5, 0.2]

[[renditions]]
size = "20x20"
fit = "contain"
pad = "white"

[[renditions]]
size = "20x20"
fit = "stretch"

[[renditions]]
size = "0x20"
"##;
    let (specs, errors) = parse(text);
    assert!(specs.is_empty(), "{specs:?}");
    let got: Vec<(Option<u64>, Option<u64>, &str)> = errors
        .0
        .iter()
        .map(|p| (p.line, p.column, p.message.as_str()))
        .collect();
    let expect_at = |line: u64, col: u64, needle: &str| {
        assert!(
            got.iter()
                .any(|(l, c, m)| *l == Some(line) && *c == Some(col) && m.contains(needle)),
            "no error at {line}:{col} containing {needle:?} in {got:#?}"
        );
    };
    expect_at(3, 8, "must look like");
    expect_at(7, 10, "unknown rendition format `gif`");
    expect_at(12, 11, "quality applies to jpeg only");
    expect_at(17, 9, "focal must be");
    expect_at(22, 7, "must be #rrggbb or #rrggbbaa");
    expect_at(26, 7, "unknown fit `stretch`");
    expect_at(29, 8, "between 1 and");
}

#[test]
fn two_renditions_writing_the_same_file_are_an_error() {
    let (_, errors) = parse(
        r##"
[[renditions]]
size = "300x250"

[[renditions]]
size = "300x250"
fit = "contain"
"##,
    );
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert!(errors.0[0].message.contains("same file"));
    assert_eq!(errors.0[0].line, Some(5));
}

#[test]
fn pad_colours_take_every_form_text_boxes_take() {
    for (pad, expect) in [
        ("#fff", [255, 255, 255, 255]),
        ("#0008", [0, 0, 0, 136]),
        ("#ff00ff", [255, 0, 255, 255]),
        ("#00000080", [0, 0, 0, 128]),
    ] {
        let (specs, errors) = parse(&format!(
            "[[renditions]]\nsize = \"20x20\"\nformat = \"png\"\nfit = \"contain\"\npad = \"{pad}\"\n"
        ));
        assert!(errors.is_empty(), "{pad}: {errors}");
        assert_eq!(specs[0].fit, Fit::Contain { pad: expect }, "{pad}");
    }
    let (_, errors) =
        parse("[[renditions]]\nsize = \"20x20\"\nfit = \"contain\"\npad = \"#ffff0\"\n");
    assert_eq!(
        errors.0[0].message,
        format!("rendition pad: {}", parse_color("#ffff0").unwrap_err())
    );
}
