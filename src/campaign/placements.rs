//! `[placements.<id>]` tables and a variant's `placements = [...]` and
//! `focal = [x, y]`: the raw shapes, their validation into
//! [`PlacementSpec`]s, and the safe-area check of every overlay text box
//! against every placement of its variant, each problem at its line and
//! column in campaign.toml.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::span::at;
use super::text_boxes::Num;
use crate::domain::placement::{
    BUILT_IN, DEFAULT_MIN_QUALITY, FracBox, KB, PlacementFormat, PlacementId, PlacementSpec,
    START_QUALITY, SafeArea, built_in, crop_fractions, crossed_edge, into_crop,
};
use crate::domain::{InputErrors, InputProblem};
use crate::imaging::MAX_SIDE;

/// The fractions a safe area keeps clear.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSafeArea {
    #[serde(default)]
    top: Option<Num>,
    #[serde(default)]
    bottom: Option<Num>,
    #[serde(default)]
    left: Option<Num>,
    #[serde(default)]
    right: Option<Num>,
}

/// One `[placements.<id>]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlacement {
    #[serde(default)]
    size: Option<Spanned<String>>,
    #[serde(default)]
    max_kb: Option<Spanned<i64>>,
    #[serde(default)]
    formats: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    safe_area: Option<Spanned<RawSafeArea>>,
    #[serde(default)]
    min_quality: Option<Spanned<i64>>,
}

/// The campaign's placement tables, by id: its own placements, and the
/// built-ins whose `min_quality` it changes.
pub(crate) type OwnPlacements = BTreeMap<String, PlacementSpec>;

/// Validate the `[placements.*]` tables.
pub(crate) fn parse_tables(
    path: &Path,
    text: &str,
    raw: BTreeMap<String, Spanned<RawPlacement>>,
    errors: &mut InputErrors,
) -> OwnPlacements {
    let at = |span: Range<usize>, msg: String| at(path, text, span, msg);
    let mut out = OwnPlacements::new();
    for (name, table) in raw {
        let span = table.span();
        let r = table.into_inner();
        let id = match PlacementId::parse(&name) {
            Ok(id) => id,
            Err(msg) => {
                errors.push(at(span, msg));
                continue;
            }
        };
        let before = errors.0.len();
        let min_quality = match &r.min_quality {
            None => DEFAULT_MIN_QUALITY,
            Some(q) => {
                let n = *q.get_ref();
                if (1..=i64::from(START_QUALITY)).contains(&n) {
                    n as u8
                } else {
                    errors.push(at(
                        q.span(),
                        format!(
                            "placement `{name}`: min_quality must be between 1 and {START_QUALITY} (the quality the weight search starts from), got {n}"
                        ),
                    ));
                    DEFAULT_MIN_QUALITY
                }
            }
        };
        if let Some(b) = built_in(&name) {
            // A built-in's figures are the platform's; only the search
            // floor is the campaign's to change.
            let mut spec = b.spec();
            spec.min_quality = min_quality;
            let fixed = [
                r.size.as_ref().map(Spanned::span),
                r.max_kb.as_ref().map(Spanned::span),
                r.formats.as_ref().map(Spanned::span),
                r.safe_area.as_ref().map(Spanned::span),
            ];
            for s in fixed.into_iter().flatten() {
                errors.push(at(
                    s,
                    format!(
                        "`{name}` is a built-in placement: its frame, weight, formats and safe area are the platform's (see the README); only min_quality can be set here. Name your own placement to use other figures"
                    ),
                ));
            }
            if errors.0.len() == before {
                out.insert(name, spec);
            }
            continue;
        }
        let Some(size) = &r.size else {
            errors.push(at(
                span,
                format!("placement `{name}` needs size = \"WxH\" (its exact frame in pixels)"),
            ));
            continue;
        };
        let (width, height) = match super::renditions::parse_size(size.get_ref()) {
            Ok(d) => d,
            Err(msg) => {
                errors.push(at(size.span(), format!("placement `{name}`: {msg}")));
                (1, 1)
            }
        };
        let max_bytes = match &r.max_kb {
            None => {
                errors.push(at(
                    span.clone(),
                    format!(
                        "placement `{name}` needs max_kb (its weight limit, 1 KB = 1,024 bytes)"
                    ),
                ));
                0
            }
            Some(k) if *k.get_ref() >= 1 => *k.get_ref() as u64 * KB,
            Some(k) => {
                errors.push(at(
                    k.span(),
                    format!(
                        "placement `{name}`: max_kb must be a positive number of KB, got {}",
                        k.get_ref()
                    ),
                ));
                0
            }
        };
        let formats = match &r.formats {
            None => vec![PlacementFormat::Jpeg],
            Some(list) => parse_formats(&name, list, &at, errors),
        };
        let safe_area = match &r.safe_area {
            None => SafeArea::default(),
            Some(s) => parse_safe_area(&name, s, &at, errors),
        };
        if errors.0.len() == before && width <= MAX_SIDE && height <= MAX_SIDE {
            out.insert(
                name,
                PlacementSpec {
                    id,
                    width,
                    height,
                    max_bytes,
                    formats,
                    aspect_tolerance: None,
                    min_size: None,
                    safe_area,
                    min_quality,
                },
            );
        }
    }
    out
}

fn parse_formats(
    name: &str,
    list: &Spanned<Vec<Spanned<String>>>,
    at: &dyn Fn(Range<usize>, String) -> InputProblem,
    errors: &mut InputErrors,
) -> Vec<PlacementFormat> {
    let mut out = Vec::new();
    for f in list.get_ref() {
        match PlacementFormat::parse(f.get_ref()) {
            Some(p) if !out.contains(&p) => out.push(p),
            Some(_) => {}
            None => errors.push(at(
                f.span(),
                format!(
                    "placement `{name}`: unknown format `{}` (expected jpeg, png or gif)",
                    f.get_ref()
                ),
            )),
        }
    }
    if !out.iter().any(|f| f.writable()) {
        errors.push(at(
            list.span(),
            format!(
                "placement `{name}`: formats must include jpeg or png (adloc does not write gif)"
            ),
        ));
    }
    out
}

fn parse_safe_area(
    name: &str,
    raw: &Spanned<RawSafeArea>,
    at: &dyn Fn(Range<usize>, String) -> InputProblem,
    errors: &mut InputErrors,
) -> SafeArea {
    let r = raw.get_ref();
    let mut bad = Vec::new();
    let mut get = |v: &Option<Num>, what: &'static str| -> f64 {
        let x = v.map_or(0.0, Num::get);
        if (0.0..0.5).contains(&x) {
            x
        } else {
            bad.push(format!("{what} = {x}"));
            0.0
        }
    };
    let s = SafeArea {
        top: get(&r.top, "top"),
        bottom: get(&r.bottom, "bottom"),
        left: get(&r.left, "left"),
        right: get(&r.right, "right"),
    };
    if !bad.is_empty() {
        errors.push(at(
            raw.span(),
            format!(
                "placement `{name}`: safe_area margins are fractions of the frame from 0 up to (not including) 0.5; got {}",
                bad.join(", ")
            ),
        ));
    }
    s
}

/// A variant's `placements = [...]`, each id resolved against the
/// campaign's own tables and then the built-in registry.
pub(crate) fn resolve(
    path: &Path,
    text: &str,
    variant: &str,
    names: Option<Spanned<Vec<Spanned<String>>>>,
    own: &OwnPlacements,
    errors: &mut InputErrors,
) -> Vec<PlacementSpec> {
    let Some(names) = names else {
        return Vec::new();
    };
    let mut out: Vec<PlacementSpec> = Vec::new();
    for n in names.into_inner() {
        let name = n.get_ref();
        let spec = own
            .get(name.as_str())
            .cloned()
            .or_else(|| built_in(name).map(|b| b.spec()));
        match spec {
            Some(_) if out.iter().any(|s| s.id.as_str() == name) => errors.push(at(
                path,
                text,
                n.span(),
                format!("variant `{variant}` names placement `{name}` twice"),
            )),
            Some(s) => out.push(s),
            None => {
                let known: Vec<&str> = BUILT_IN.iter().map(|b| b.id).collect();
                errors.push(at(
                    path,
                    text,
                    n.span(),
                    format!(
                        "variant `{variant}`: unknown placement `{name}`; declare it under [placements.{name}] or use a built-in one: {}",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    out
}

/// A variant's `focal = [x, y]`: the point of the master the placements'
/// crops keep, in fractions of its width and height (default the centre).
pub(crate) fn parse_focal(
    path: &Path,
    text: &str,
    raw: Option<&Spanned<Vec<f64>>>,
    errors: &mut InputErrors,
) -> (f64, f64) {
    match raw.map(|f| (f, f.get_ref().as_slice())) {
        None => (0.5, 0.5),
        Some((_, [x, y])) if (0.0..=1.0).contains(x) && (0.0..=1.0).contains(y) => (*x, *y),
        Some((f, _)) => {
            errors.push(at(
                path,
                text,
                f.span(),
                "focal must be [x, y] with both between 0.0 and 1.0 (fractions of the master's width and height)".into(),
            ));
            (0.5, 0.5)
        }
    }
}

/// Every box of `boxes` (with the span of its table) must lie inside the
/// safe area of every placement after that placement's crop of a master
/// of ratio `master_ratio`; a box that does not is refused at its table.
pub(crate) fn check_safe_areas(
    at: &dyn Fn(Range<usize>, String) -> InputProblem,
    variant: &str,
    master_ratio: f64,
    focal: (f64, f64),
    boxes: &[(Range<usize>, String, crate::imaging::FracBox)],
    placements: &[PlacementSpec],
    errors: &mut InputErrors,
) {
    for (span, what, b) in boxes {
        let frac = FracBox {
            x: f64::from(b.x),
            y: f64::from(b.y),
            w: f64::from(b.width),
            h: f64::from(b.height),
        };
        for p in placements {
            let crop = crop_fractions(master_ratio, p.ratio(), focal);
            let inside = into_crop(frac, crop);
            let Some(edge) = crossed_edge(inside, &p.safe_area) else {
                continue;
            };
            let margin = match edge {
                crate::domain::placement::Edge::Top => p.safe_area.top,
                crate::domain::placement::Edge::Bottom => p.safe_area.bottom,
                crate::domain::placement::Edge::Left => p.safe_area.left,
                crate::domain::placement::Edge::Right => p.safe_area.right,
            };
            let why = if margin == 0.0 {
                format!("{} crops it away past its {} edge", p.id, edge.as_str())
            } else {
                format!(
                    "it crosses the {} edge of {}'s safe area ({:.0} % of the frame kept clear at the {} after its {}x{} crop)",
                    edge.as_str(),
                    p.id,
                    margin * 100.0,
                    edge.as_str(),
                    p.width,
                    p.height
                )
            };
            errors.push(at(
                span.clone(),
                format!(
                    "variant `{variant}`: {what} is not inside placement {}'s safe area: {why}; move or shrink the box",
                    p.id
                ),
            ));
            break;
        }
    }
}
