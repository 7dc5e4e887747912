//! The brand kit: `[brand]` (fonts, palette, logos) and each variant's
//! `[[variants.layers]]` (logo, image, button and shape layers).
//!
//! ```toml
//! [brand]
//! fonts = ["brand/Inter-Bold.ttf", "brand/Inter-Regular.ttf"]
//! palette = { primary = "#e4002b", ink = "#ffffff", night = "#101828" }
//! logo = "brand/logo.svg"                  # or { default = "…", ar-SA = "…" }
//! logo_dark = "brand/logo-white.svg"       # chosen over dark art
//!
//! [[variants.layers]]
//! kind = "button"                          # logo | image | button | shape
//! column = "cta"
//! x = 0.06
//! y = 0.78
//! width = 0.34
//! height = 0.10
//! fill = "primary"
//! color = "ink"
//! radius = 0.5
//! ```
//!
//! Settings are validated while campaign.toml is parsed (palette names,
//! boxes inside the frame, a button's column); files are read and checked
//! once while the campaign loads, like reference images (a missing or
//! undecodable logo, a font file that is not a font), every problem at the
//! value that names the file. `logo` may be a table of per-locale logos
//! keyed by BCP-47 tag (`default` for every other locale), chosen along the
//! locale's CLDR fallback chain like copy columns. (A bare `logo = "…"` and
//! dotted `logo.ar-SA = "…"` cannot both be written in TOML, hence the
//! table.)
//!
//! A layer declared before the variant's first text box is drawn under the
//! copy; one declared after it, over the copy (in declaration order).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::rows::Rows;
use super::span::{at, line_col};
use super::text_boxes::{DEFAULT_LINE_HEIGHT, Num};
use crate::domain::{InputErrors, InputProblem, Locale};
use crate::imaging::text::Align;
use crate::imaging::{FracBox, Picture, TextBoxSpec, VAlign, check_picture, parse_color};

/// The raw `[brand]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBrand {
    #[serde(default)]
    fonts: Vec<Spanned<String>>,
    #[serde(default)]
    palette: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    logo: Option<Spanned<toml::Value>>,
    #[serde(default)]
    logo_dark: Option<Spanned<String>>,
}

/// One `[[variants.layers]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLayer {
    kind: Spanned<String>,
    x: Spanned<Num>,
    y: Spanned<Num>,
    width: Spanned<Num>,
    height: Spanned<Num>,
    #[serde(default)]
    align: Option<Spanned<String>>,
    #[serde(default)]
    column: Option<Spanned<String>>,
    #[serde(default)]
    fill: Option<Spanned<String>>,
    #[serde(default)]
    color: Option<Spanned<String>>,
    #[serde(default)]
    radius: Option<Spanned<Num>>,
    #[serde(default)]
    bold: Option<bool>,
    #[serde(default)]
    min_size: Option<Spanned<Num>>,
    #[serde(default)]
    max_size: Option<Spanned<Num>>,
    #[serde(default)]
    padding: Option<Spanned<Num>>,
}

impl RawLayer {
    /// Where `kind` is written: the line a layer's problems point at.
    pub(crate) fn kind_span(&self) -> std::ops::Range<usize> {
        self.kind.span()
    }
}

/// Named colours of `[brand] palette`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Palette(BTreeMap<String, [u8; 4]>);

impl Palette {
    /// A palette name or a `#rrggbb[aa]` colour, as straight RGBA.
    pub fn color(&self, s: &str) -> Result<[u8; 4], String> {
        if s.starts_with('#') {
            return parse_color(s);
        }
        self.0.get(s).copied().ok_or_else(|| {
            let names: Vec<&str> = self.0.keys().map(String::as_str).collect();
            format!(
                "unknown palette name `{s}`: colour `{s}` must be a name from the [brand] palette ({}) or written as \"#rrggbb\"",
                if names.is_empty() {
                    "it has none".to_string()
                } else {
                    names.join(", ")
                }
            )
        })
    }
}

/// A file `[brand]` names, before it is read.
#[derive(Debug, Clone)]
pub(crate) struct NamedFile {
    rel: String,
    line: u64,
    col: u64,
}

/// `[brand]` validated, its files not yet read.
#[derive(Debug, Clone, Default)]
pub(crate) struct BrandSettings {
    /// Named colours.
    pub palette: Palette,
    fonts: Vec<NamedFile>,
    /// `(locale tag or None for the default, file)`.
    logos: Vec<(Option<String>, NamedFile)>,
    logo_dark: Option<NamedFile>,
}

impl BrandSettings {
    /// True when a logo is declared (a logo layer needs one).
    pub fn has_logo(&self) -> bool {
        !self.logos.is_empty()
    }
}

/// What a layer draws.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerKind {
    /// The brand logo (per locale, light or dark by the art under it).
    Logo,
    /// A picture whose path is in a CSV column (per-locale fallback).
    Image {
        /// The base column holding the path.
        column: String,
    },
    /// A filled rounded box with a copy column set in it.
    Button {
        /// The copy, fitted like a text box (centred both ways).
        text: TextBoxSpec,
        /// Background, straight RGBA.
        fill: [u8; 4],
        /// Corner radius as a fraction of the height.
        radius: f32,
    },
    /// A filled rounded box.
    Shape {
        /// Straight RGBA.
        fill: [u8; 4],
        /// Corner radius as a fraction of the height.
        radius: f32,
    },
}

/// One `[[variants.layers]]` entry, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSpec {
    /// What is drawn.
    pub kind: LayerKind,
    /// Where, in fractions of the frame (before any mirroring).
    pub frame: FracBox,
    /// Horizontal placement of a picture in its box.
    pub align: Align,
    /// Drawn before the text boxes (declared before the first of them).
    pub under_text: bool,
    /// Line of `kind` in campaign.toml.
    pub line: u64,
    /// Column of `kind` in campaign.toml.
    pub col: u64,
}

impl LayerKind {
    /// `logo`, `image`, `button` or `shape`.
    pub fn name(&self) -> &'static str {
        match self {
            LayerKind::Logo => "logo",
            LayerKind::Image { .. } => "image",
            LayerKind::Button { .. } => "button",
            LayerKind::Shape { .. } => "shape",
        }
    }
}

impl LayerSpec {
    /// Canonical JSON of every setting that changes the pixels.
    pub fn settings_json(&self) -> serde_json::Value {
        let kind = match &self.kind {
            LayerKind::Logo => json!({"kind": "logo"}),
            LayerKind::Image { column } => json!({"kind": "image", "column": column}),
            LayerKind::Button { text, fill, radius } => json!({
                "kind": "button", "text": text.settings_json(),
                "fill": hex::encode(fill), "radius": radius,
            }),
            LayerKind::Shape { fill, radius } => {
                json!({"kind": "shape", "fill": hex::encode(fill), "radius": radius})
            }
        };
        json!({
            "draw": kind,
            "x": self.frame.x, "y": self.frame.y,
            "width": self.frame.width, "height": self.frame.height,
            "align": format!("{:?}", self.align),
            "under_text": self.under_text,
        })
    }

    /// The copy column a button sets.
    pub fn column(&self) -> Option<&str> {
        match &self.kind {
            LayerKind::Button { text, .. } => Some(&text.column),
            LayerKind::Image { column } => Some(column),
            _ => None,
        }
    }
}

/// A brand file read and hashed.
#[derive(Debug, Clone, PartialEq)]
pub struct BrandFile {
    /// The path as written in campaign.toml (relative to the campaign folder).
    pub rel: String,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// The bytes.
    pub bytes: Arc<Vec<u8>>,
}

/// A brand picture (logo or image-layer file), checked.
#[derive(Debug, Clone, PartialEq)]
pub struct BrandPicture {
    /// The file.
    pub file: BrandFile,
    /// How it is drawn.
    pub picture: Picture,
}

/// The loaded brand kit.
#[derive(Debug, Clone, Default)]
pub struct Brand {
    /// Brand fonts in the order listed, with their family names.
    pub fonts: Vec<(BrandFile, String)>,
    /// The default logo.
    pub logo: Option<BrandPicture>,
    /// Per-locale logos, by BCP-47 tag.
    pub logo_locales: BTreeMap<String, BrandPicture>,
    /// The logo for dark art.
    pub logo_dark: Option<BrandPicture>,
    /// Image-layer files, by path as written in the CSV.
    pub images: HashMap<String, BrandPicture>,
}

impl Brand {
    /// The logo for `locale`: the first per-locale logo along its CLDR
    /// fallback chain, else the default.
    pub fn logo_for(&self, locale: &Locale) -> Option<&BrandPicture> {
        locale
            .fallback_chain()
            .iter()
            .find_map(|t| self.logo_locales.get(t))
            .or(self.logo.as_ref())
    }

    /// Every file the brand kit read: fonts, logos and image-layer files.
    pub(crate) fn files(&self) -> impl Iterator<Item = &BrandFile> {
        self.fonts
            .iter()
            .map(|(f, _)| f)
            .chain(self.logo.iter().map(|p| &p.file))
            .chain(self.logo_locales.values().map(|p| &p.file))
            .chain(self.logo_dark.iter().map(|p| &p.file))
            .chain(self.images.values().map(|p| &p.file))
    }

    /// SHA-256 of every `[brand]` file (fonts and logos), by path: part of
    /// every overlay composite's compose hash and its manifest entry.
    pub fn hashes(&self) -> BTreeMap<String, String> {
        self.fonts
            .iter()
            .map(|(f, _)| f)
            .chain(self.logo.iter().map(|p| &p.file))
            .chain(self.logo_locales.values().map(|p| &p.file))
            .chain(self.logo_dark.iter().map(|p| &p.file))
            .map(|f| (f.rel.clone(), f.sha256.clone()))
            .collect()
    }
}

/// Validate `[brand]` (its palette, and the shape of its file keys).
pub(crate) fn parse_settings(
    path: &Path,
    src: &str,
    raw: Option<Spanned<RawBrand>>,
    errors: &mut InputErrors,
) -> BrandSettings {
    let Some(raw) = raw else {
        return BrandSettings::default();
    };
    let at = |span: std::ops::Range<usize>, msg: String| at(path, src, span, msg);
    let raw = raw.into_inner();
    let named = |s: &Spanned<String>| {
        let (line, col) = line_col(src, s.span().start);
        NamedFile {
            rel: s.get_ref().clone(),
            line,
            col,
        }
    };
    let mut palette = BTreeMap::new();
    for (name, value) in &raw.palette {
        if name.starts_with('#') {
            errors.push(at(
                value.span(),
                format!("palette name `{name}` must not start with `#` (that is how colours are written)"),
            ));
            continue;
        }
        match parse_color(value.get_ref()) {
            Ok(c) => {
                palette.insert(name.clone(), c);
            }
            Err(e) => errors.push(at(value.span(), format!("[brand] palette `{name}`: {e}"))),
        }
    }
    let mut logos = Vec::new();
    if let Some(logo) = &raw.logo {
        let (line, col) = line_col(src, logo.span().start);
        match logo.get_ref() {
            toml::Value::String(s) => logos.push((
                None,
                NamedFile {
                    rel: s.clone(),
                    line,
                    col,
                },
            )),
            toml::Value::Table(t) if !t.is_empty() => {
                for (key, v) in t {
                    let Some(file) = v.as_str() else {
                        errors.push(at(
                            logo.span(),
                            format!("[brand] logo `{key}` must be a file path"),
                        ));
                        continue;
                    };
                    let tag = if key == "default" {
                        None
                    } else {
                        match Locale::parse(key) {
                            Ok(l) => Some(l.tag().to_string()),
                            Err(e) => {
                                errors.push(at(logo.span(), format!("[brand] logo: {e}")));
                                continue;
                            }
                        }
                    };
                    logos.push((
                        tag,
                        NamedFile {
                            rel: file.to_string(),
                            line,
                            col,
                        },
                    ));
                }
            }
            _ => errors.push(at(
                logo.span(),
                "[brand] logo must be a file path, or a table of them by locale (`default` for the rest)".into(),
            )),
        }
    }
    BrandSettings {
        palette: Palette(palette),
        fonts: raw.fonts.iter().map(named).collect(),
        logos,
        logo_dark: raw.logo_dark.as_ref().map(named),
    }
}

/// Validate one variant's `[[variants.layers]]`. `first_box` is where its
/// first text box starts in campaign.toml (layers declared before it are
/// drawn under the copy).
pub(crate) fn parse_layers(
    path: &Path,
    src: &str,
    variant: &str,
    brand: &BrandSettings,
    layers: Vec<Spanned<RawLayer>>,
    first_box: Option<usize>,
    errors: &mut InputErrors,
) -> Vec<LayerSpec> {
    let at = |span: std::ops::Range<usize>, msg: String| at(path, src, span, msg);
    let mut out = Vec::new();
    for spanned in layers {
        let start = spanned.span().start;
        let l = spanned.into_inner();
        let kind_name = l.kind.get_ref().clone();
        let what = format!("variant `{variant}` {kind_name} layer");
        let mut ok = true;
        let mut fraction = |n: &Spanned<Num>, key: &str, positive: bool| -> f32 {
            let v = n.get_ref().get();
            if !(v.is_finite() && (0.0..=1.0).contains(&v) && (!positive || v > 0.0)) {
                ok = false;
                errors.push(at(
                    n.span(),
                    format!(
                        "{what}: {key} = {v} must be a fraction of the frame between 0 and 1{}",
                        if positive { " (and above 0)" } else { "" }
                    ),
                ));
            }
            v as f32
        };
        let frame = FracBox {
            x: fraction(&l.x, "x", false),
            y: fraction(&l.y, "y", false),
            width: fraction(&l.width, "width", true),
            height: fraction(&l.height, "height", true),
        };
        if frame.x + frame.width > 1.0001 {
            ok = false;
            errors.push(at(
                l.width.span(),
                format!(
                    "{what}: x + width = {} runs past the right edge of the frame",
                    frame.x + frame.width
                ),
            ));
        }
        if frame.y + frame.height > 1.0001 {
            ok = false;
            errors.push(at(
                l.height.span(),
                format!(
                    "{what}: y + height = {} runs past the bottom edge of the frame",
                    frame.y + frame.height
                ),
            ));
        }
        let align = match &l.align {
            None if kind_name == "button" => Align::Center,
            None => Align::Start,
            Some(a) => match a.get_ref().as_str() {
                "start" => Align::Start,
                "center" | "centre" => Align::Center,
                "end" => Align::End,
                other => {
                    ok = false;
                    errors.push(at(
                        a.span(),
                        format!("{what}: unknown align `{other}` (expected start, center or end; start is left in left-to-right locales, right in right-to-left ones)"),
                    ));
                    Align::Start
                }
            },
        };
        let mut colour = |c: &Option<Spanned<String>>, key: &str, default: [u8; 4]| match c {
            None => default,
            Some(c) => match brand.palette.color(c.get_ref()) {
                Ok(v) => v,
                Err(e) => {
                    ok = false;
                    errors.push(at(c.span(), format!("{what}: {key}: {e}")));
                    default
                }
            },
        };
        let fill = colour(&l.fill, "fill", [0, 0, 0, 255]);
        let color = colour(&l.color, "color", [255, 255, 255, 255]);
        let radius = match &l.radius {
            None => 0.0,
            Some(r) => {
                let v = r.get_ref().get();
                if v.is_finite() && (0.0..=0.5).contains(&v) {
                    v as f32
                } else {
                    ok = false;
                    errors.push(at(
                        r.span(),
                        format!("{what}: radius = {v} must be between 0 and 0.5 (a fraction of the height; 0.5 is a pill)"),
                    ));
                    0.0
                }
            }
        };
        let column = |ok: &mut bool, errors: &mut InputErrors| -> Option<String> {
            match &l.column {
                Some(c) => {
                    let name = c.get_ref().trim().to_string();
                    if name.is_empty() || name.contains('.') || name == "id" {
                        *ok = false;
                        errors.push(at(
                            c.span(),
                            format!("{what}: column `{name}` must name a base column such as `cta` (per-locale columns like `cta.de-DE` are picked automatically)"),
                        ));
                    }
                    Some(name)
                }
                None => {
                    *ok = false;
                    errors.push(at(
                        l.kind.span(),
                        format!(
                            "{what} has no column: say which {} column it shows (column = \"…\")",
                            if kind_name == "button" {
                                "copy"
                            } else {
                                "CSV path"
                            }
                        ),
                    ));
                    None
                }
            }
        };
        let (line, col) = line_col(src, l.kind.span().start);
        let kind = match kind_name.as_str() {
            "logo" => {
                if !brand.has_logo() {
                    ok = false;
                    errors.push(at(
                        l.kind.span(),
                        format!("{what}: [brand] has no logo (add logo = \"brand/logo.svg\")"),
                    ));
                }
                Some(LayerKind::Logo)
            }
            "image" => column(&mut ok, errors).map(|column| LayerKind::Image { column }),
            "shape" => Some(LayerKind::Shape { fill, radius }),
            "button" => column(&mut ok, errors).map(|column| {
                let size = |n: &Option<Spanned<Num>>, d: f32| {
                    n.as_ref().map_or(d, |n| n.get_ref().get() as f32)
                };
                let padding = l.padding.as_ref().map_or(8.0, |n| n.get_ref().get() as f32);
                LayerKind::Button {
                    text: TextBoxSpec {
                        column,
                        x: frame.x,
                        y: frame.y,
                        width: frame.width,
                        height: frame.height,
                        align,
                        valign: VAlign::Middle,
                        padding: padding.clamp(0.0, 2000.0),
                        max_lines: Some(1),
                        min_size: size(&l.min_size, super::text_boxes::DEFAULT_MIN_SIZE)
                            .clamp(1.0, 2000.0),
                        max_size: size(&l.max_size, super::text_boxes::DEFAULT_MAX_SIZE)
                            .clamp(1.0, 2000.0),
                        line_height: DEFAULT_LINE_HEIGHT,
                        color,
                        scrim: None,
                        bold: l.bold.unwrap_or(true),
                        line,
                        col,
                    },
                    fill,
                    radius,
                }
            }),
            other => {
                ok = false;
                errors.push(at(
                    l.kind.span(),
                    format!("{what}: unknown layer kind `{other}` (expected logo, image, button or shape)"),
                ));
                None
            }
        };
        if let (true, Some(kind)) = (ok, kind) {
            out.push(LayerSpec {
                kind,
                frame,
                align,
                under_text: first_box.is_some_and(|b| start < b),
                line,
                col,
            });
        }
    }
    out
}

/// Read `rel` (relative to `dir`), with a problem at `at` when it cannot be.
fn read(
    dir: &Path,
    rel: &str,
    problem: &dyn Fn(String) -> InputProblem,
    errors: &mut InputErrors,
) -> Option<BrandFile> {
    let full: PathBuf = dir.join(rel);
    match std::fs::read(&full) {
        Ok(bytes) => Some(BrandFile {
            rel: rel.to_string(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            bytes: Arc::new(bytes),
        }),
        Err(e) => {
            errors.push(problem(format!("cannot read {}: {e}", full.display())));
            None
        }
    }
}

/// Read and check a picture file.
fn picture(
    dir: &Path,
    rel: &str,
    problem: &dyn Fn(String) -> InputProblem,
    errors: &mut InputErrors,
) -> Option<BrandPicture> {
    let file = read(dir, rel, problem, errors)?;
    match check_picture(file.bytes.clone()) {
        Ok(picture) => Some(BrandPicture { file, picture }),
        Err(e) => {
            errors.push(problem(format!("{rel}: {e}")));
            None
        }
    }
}

/// Read and check every brand file: fonts, logos and the image-layer files
/// the rows name (for every locale, along its fallback chain).
pub(crate) fn load(
    dir: &Path,
    config_path: &Path,
    settings: &BrandSettings,
    image_columns: &[String],
    rows: Option<&Rows>,
    locales: &[Locale],
    errors: &mut InputErrors,
) -> Brand {
    let mut brand = Brand::default();
    let at_file = |f: &NamedFile| {
        let (line, col) = (f.line, f.col);
        move |msg: String| InputProblem::at(config_path, line, Some(col), msg)
    };
    for f in &settings.fonts {
        let problem = at_file(f);
        let Some(file) = read(dir, &f.rel, &problem, errors) else {
            continue;
        };
        match crate::imaging::text::check_font(file.bytes.clone()) {
            Ok(family) => brand.fonts.push((file, family)),
            Err(e) => errors.push(problem(format!("[brand] font {}: {e}", f.rel))),
        }
    }
    for (tag, f) in &settings.logos {
        let problem = at_file(f);
        let Some(p) = picture(dir, &f.rel, &problem, errors) else {
            continue;
        };
        match tag {
            None => brand.logo = Some(p),
            Some(t) => {
                brand.logo_locales.insert(t.clone(), p);
            }
        }
    }
    if let Some(f) = &settings.logo_dark {
        brand.logo_dark = picture(dir, &f.rel, &at_file(f), errors);
    }
    if let Some(rows) = rows {
        for row in &rows.rows {
            for locale in locales {
                let resolved = rows.resolve(row, locale);
                for column in image_columns {
                    let Some(r) = resolved.get(column) else {
                        continue;
                    };
                    let rel = r.value.trim();
                    if rel.is_empty() || brand.images.contains_key(rel) {
                        continue;
                    }
                    let problem = |msg: String| {
                        InputProblem::at(
                            &rows.path,
                            row.line,
                            None,
                            format!("row `{}`, image layer column `{column}`: {msg}", row.id),
                        )
                    };
                    if let Some(p) = picture(dir, rel, &problem, errors) {
                        brand.images.insert(rel.to_string(), p);
                    }
                }
            }
        }
    }
    brand
}

/// Check that every button and image layer names a column the rows CSV has
/// (as a base column or a per-locale override), at the layer's line.
pub(crate) fn check_columns(
    variants: &[super::Variant],
    rows: &Rows,
    config_path: &Path,
    errors: &mut InputErrors,
) {
    for v in variants {
        for l in &v.layers {
            let Some(column) = l.column() else { continue };
            let known = rows.kinds.iter().any(|k| match k {
                super::rows::ColumnKind::Base(n) => n == column,
                super::rows::ColumnKind::Override { base, .. } => base == column,
                super::rows::ColumnKind::Id => false,
            });
            if !known {
                errors.push(InputProblem::at(
                    config_path,
                    l.line,
                    Some(l.col),
                    format!(
                        "layer of variant `{}` names column `{column}`, which {} does not have",
                        v.name,
                        rows.path.display()
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Snippet {
        #[serde(default)]
        text_boxes: Vec<Spanned<toml::Value>>,
        layers: Vec<Spanned<RawLayer>>,
    }

    fn layers(src: &str) -> (Vec<LayerSpec>, Vec<String>) {
        let snip: Snippet = toml::from_str(src).expect("toml");
        let mut errors = InputErrors::default();
        let mut palette = BTreeMap::new();
        palette.insert("primary".to_string(), [228, 0, 43, 255]);
        let settings = BrandSettings {
            palette: Palette(palette),
            ..BrandSettings::default()
        };
        let first_box = snip.text_boxes.first().map(|b| b.span().start);
        let out = parse_layers(
            Path::new("campaign.toml"),
            src,
            "banner",
            &settings,
            snip.layers,
            first_box,
            &mut errors,
        );
        (out, errors.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn layers_declared_before_the_first_text_box_go_under_the_copy_and_the_rest_over_it() {
        let (out, errors) = layers(
            "[[layers]]\nkind = \"shape\"\nfill = \"#00000080\"\nx = 0\ny = 0.5\nwidth = 1\nheight = 0.5\n\
             [[text_boxes]]\ncolumn = \"headline\"\n\
             [[layers]]\nkind = \"button\"\ncolumn = \"cta\"\nfill = \"primary\"\nx = 0.1\ny = 0.8\nwidth = 0.3\nheight = 0.1\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(out.len(), 2);
        assert!(out[0].under_text, "the shape is declared before the box");
        assert!(!out[1].under_text, "the button is declared after it");
        match &out[1].kind {
            LayerKind::Button { fill, text, .. } => {
                assert_eq!(*fill, [228, 0, 43, 255]);
                assert_eq!(text.column, "cta");
                assert_eq!(text.align, Align::Center);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_logo_layer_without_a_brand_logo_and_an_unknown_kind_are_refused_at_their_kind() {
        let (out, errors) = layers(
            "[[layers]]\nkind = \"logo\"\nx = 0\ny = 0\nwidth = 0.2\nheight = 0.1\n\
             [[layers]]\nkind = \"sticker\"\nx = 0\ny = 0\nwidth = 0.2\nheight = 0.1\n",
        );
        assert!(out.is_empty());
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("campaign.toml:2:8") && e.contains("[brand] has no logo")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.starts_with("campaign.toml:8:8")
                && e.contains("unknown layer kind `sticker`")),
            "{errors:?}"
        );
    }
}
