//! `[[variants.renditions]]` in campaign.toml: the raw shape and its
//! validation into [`RenditionSpec`]s, with the line and column of every bad
//! value.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::span::at;
use crate::domain::InputErrors;
use crate::imaging::{Fit, MAX_SIDE, OutputFormat, RenditionSpec, ext_of, parse_color};

/// The raw TOML shape of one `[[variants.renditions]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRendition {
    #[serde(default)]
    size: Option<Spanned<String>>,
    #[serde(default)]
    width: Option<Spanned<i64>>,
    #[serde(default)]
    height: Option<Spanned<i64>>,
    #[serde(default)]
    format: Option<Spanned<String>>,
    #[serde(default)]
    quality: Option<Spanned<i64>>,
    #[serde(default)]
    fit: Option<Spanned<String>>,
    #[serde(default)]
    focal: Option<Spanned<Vec<f64>>>,
    #[serde(default)]
    pad: Option<Spanned<String>>,
}

/// Validate a variant's renditions; every problem goes to `errors` with the
/// line and column of the offending value in `path` (whose text is `text`).
pub(crate) fn parse_specs(
    path: &Path,
    text: &str,
    variant: &str,
    raws: Vec<Spanned<RawRendition>>,
    errors: &mut InputErrors,
) -> Vec<RenditionSpec> {
    let at = |span: std::ops::Range<usize>, msg: String| at(path, text, span, msg);
    let mut out: Vec<RenditionSpec> = Vec::new();
    let mut paths: HashMap<(u32, u32, &'static str), usize> = HashMap::new();
    for raw in raws {
        let table_span = raw.span();
        let r = raw.into_inner();
        let before = errors.0.len();
        let side = |v: &Spanned<i64>, what: &str, errors: &mut InputErrors| -> Option<u32> {
            let n = *v.get_ref();
            if (1..=i64::from(MAX_SIDE)).contains(&n) {
                Some(n as u32)
            } else {
                errors.push(at(
                    v.span(),
                    format!("rendition {what} must be between 1 and {MAX_SIDE}, got {n}"),
                ));
                None
            }
        };
        let dims = match (&r.size, &r.width, &r.height) {
            (Some(s), None, None) => match parse_size(s.get_ref()) {
                Ok(d) => Some(d),
                Err(msg) => {
                    errors.push(at(s.span(), msg));
                    None
                }
            },
            (None, Some(w), Some(h)) => match (side(w, "width", errors), side(h, "height", errors))
            {
                (Some(w), Some(h)) => Some((w, h)),
                _ => None,
            },
            (Some(s), _, _) => {
                errors.push(at(
                    s.span(),
                    "give either size = \"WxH\" or width and height, not both".into(),
                ));
                None
            }
            _ => {
                errors.push(at(
                    table_span.clone(),
                    format!(
                        "a rendition of variant `{variant}` needs size = \"WxH\" (or width and height)"
                    ),
                ));
                None
            }
        };
        let format = match &r.format {
            None => OutputFormat::Jpeg,
            Some(f) => match f.get_ref().to_ascii_lowercase().as_str() {
                "png" => OutputFormat::Png,
                "jpeg" | "jpg" => OutputFormat::Jpeg,
                "webp" => OutputFormat::Webp,
                other => {
                    errors.push(at(
                        f.span(),
                        format!("unknown rendition format `{other}` (expected png, jpeg or webp)"),
                    ));
                    OutputFormat::Jpeg
                }
            },
        };
        let quality = match &r.quality {
            None => 85,
            Some(q) if format != OutputFormat::Jpeg => {
                errors.push(at(
                    q.span(),
                    format!(
                        "quality applies to jpeg only; {} renditions are lossless",
                        format.as_str()
                    ),
                ));
                85
            }
            Some(q) => {
                let n = *q.get_ref();
                if (1..=100).contains(&n) {
                    n as u8
                } else {
                    errors.push(at(
                        q.span(),
                        format!("jpeg quality must be between 1 and 100, got {n}"),
                    ));
                    85
                }
            }
        };
        let fit_name = r
            .fit
            .as_ref()
            .map_or("cover".to_string(), |f| f.get_ref().clone());
        let fit = match fit_name.as_str() {
            "cover" => {
                if let Some(p) = &r.pad {
                    errors.push(at(
                        p.span(),
                        "pad applies to fit = \"contain\" only (cover fills the whole box)".into(),
                    ));
                }
                let focal = match &r.focal {
                    None => (0.5, 0.5),
                    Some(f) => match f.get_ref().as_slice() {
                        [x, y] if (0.0..=1.0).contains(x) && (0.0..=1.0).contains(y) => (*x, *y),
                        _ => {
                            errors.push(at(
                                f.span(),
                                "focal must be [x, y] with both between 0.0 and 1.0 (fractions of the master's width and height)".into(),
                            ));
                            (0.5, 0.5)
                        }
                    },
                };
                Fit::Cover { focal }
            }
            "contain" => {
                if let Some(f) = &r.focal {
                    errors.push(at(
                        f.span(),
                        "focal applies to fit = \"cover\" only (contain keeps the whole master)"
                            .into(),
                    ));
                }
                let pad = match &r.pad {
                    None => [255, 255, 255, 255],
                    Some(p) => match parse_color(p.get_ref()) {
                        Ok(c) if c[3] < 255 && format == OutputFormat::Jpeg => {
                            errors.push(at(
                                p.span(),
                                "jpeg has no transparency: use an opaque pad colour (#rrggbb) or format png/webp".into(),
                            ));
                            c
                        }
                        Ok(c) => c,
                        Err(e) => {
                            errors.push(at(p.span(), format!("rendition pad: {e}")));
                            [255, 255, 255, 255]
                        }
                    },
                };
                Fit::Contain { pad }
            }
            other => {
                let span = r.fit.as_ref().map_or(table_span.clone(), |f| f.span());
                errors.push(at(
                    span,
                    format!("unknown fit `{other}` (expected cover or contain)"),
                ));
                Fit::Cover { focal: (0.5, 0.5) }
            }
        };
        let Some((width, height)) = dims else {
            continue;
        };
        let ext = ext_of(format.image_format());
        if let Some(first) = paths.insert((width, height, ext), out.len()) {
            let _ = first;
            errors.push(at(
                table_span,
                format!(
                    "variant `{variant}` declares two {width}x{height} {} renditions; they would write the same file",
                    format.as_str()
                ),
            ));
            continue;
        }
        if errors.0.len() == before {
            out.push(RenditionSpec {
                width,
                height,
                format,
                quality,
                fit,
            });
        }
    }
    out
}

/// Parse `"1200x628"` (an `×` also works).
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad =
        || format!("rendition size `{s}` must look like \"1200x628\" (width x height in pixels)");
    let (w, h) = s.trim().split_once(['x', 'X', '×']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(format!(
            "rendition size `{s}`: each side must be between 1 and {MAX_SIDE}"
        ));
    }
    Ok((w, h))
}
