//! Placements: the ad platforms' slots a variant is delivered to, each with
//! its exact frame, file-weight limit, accepted formats and the safe area
//! its interface leaves clear. The built-in registry is data with the
//! source and date of every figure; a campaign adds its own under
//! `[placements.<id>]` with the same keys.

use std::fmt;

/// 1 KB: every placement weight is in units of 1,024 bytes.
pub const KB: u64 = 1024;

/// The lowest JPEG quality the weight search goes down to by default.
pub const DEFAULT_MIN_QUALITY: u8 = 60;

/// The JPEG quality a placement starts from (as renditions do).
pub const START_QUALITY: u8 = 85;

/// A placement id: lowercase letters, digits and `-`, starting with a
/// letter (so it never reads as a `WxH` rendition size in a file name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlacementId(String);

impl PlacementId {
    /// Validate an id.
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = s.len() <= 64
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(format!(
                "placement id `{s}` must be lowercase letters, digits and '-', starting with a letter (at most 64 characters)"
            ))
        }
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PlacementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A file format a platform accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlacementFormat {
    /// JPEG (what adloc writes when a platform takes it).
    Jpeg,
    /// PNG.
    Png,
    /// GIF (accepted by some platforms; adloc does not write it).
    Gif,
}

impl PlacementFormat {
    /// Stable lowercase name, as in `formats = [...]`.
    pub fn as_str(self) -> &'static str {
        match self {
            PlacementFormat::Jpeg => "jpeg",
            PlacementFormat::Png => "png",
            PlacementFormat::Gif => "gif",
        }
    }
    /// Parse a name (`jpg` is `jpeg`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => Some(PlacementFormat::Jpeg),
            "png" => Some(PlacementFormat::Png),
            "gif" => Some(PlacementFormat::Gif),
            _ => None,
        }
    }
    /// Whether adloc can write this format.
    pub fn writable(self) -> bool {
        !matches!(self, PlacementFormat::Gif)
    }
}

/// The margins a platform's interface covers, as fractions of the frame:
/// copy and logos must stay inside the rest.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SafeArea {
    /// Fraction of the height kept clear at the top.
    pub top: f64,
    /// Fraction of the height kept clear at the bottom.
    pub bottom: f64,
    /// Fraction of the width kept clear on the left.
    pub left: f64,
    /// Fraction of the width kept clear on the right.
    pub right: f64,
}

impl SafeArea {
    /// True when nothing is kept clear.
    pub fn is_empty(&self) -> bool {
        self.top == 0.0 && self.bottom == 0.0 && self.left == 0.0 && self.right == 0.0
    }
}

/// A box in fractions of a frame: `x`, `y` of its top-left corner, its
/// width and height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FracBox {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

/// Which edge of a safe area a box crosses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The top margin (or the box is cropped away above).
    Top,
    /// The bottom margin.
    Bottom,
    /// The left margin.
    Left,
    /// The right margin.
    Right,
}

impl Edge {
    /// `top`, `bottom`, `left` or `right`.
    pub fn as_str(self) -> &'static str {
        match self {
            Edge::Top => "top",
            Edge::Bottom => "bottom",
            Edge::Left => "left",
            Edge::Right => "right",
        }
    }
}

/// The part of a master of aspect ratio `master_ratio` (width / height)
/// that a cover crop to `placement_ratio` keeps, centred on `focal` and
/// pushed back inside the master: `(left, top, width, height)` in fractions
/// of the master. The same geometry as the pixel crop, without pixels.
pub fn crop_fractions(master_ratio: f64, placement_ratio: f64, focal: (f64, f64)) -> FracBox {
    let (w, h) = if placement_ratio < master_ratio {
        (placement_ratio / master_ratio, 1.0)
    } else {
        (1.0, master_ratio / placement_ratio)
    };
    FracBox {
        x: (focal.0 - w / 2.0).clamp(0.0, 1.0 - w),
        y: (focal.1 - h / 2.0).clamp(0.0, 1.0 - h),
        w,
        h,
    }
}

/// Where `b` (fractions of the master) lands in a placement whose crop is
/// `crop` (fractions of the master), in fractions of the placement.
pub fn into_crop(b: FracBox, crop: FracBox) -> FracBox {
    FracBox {
        x: (b.x - crop.x) / crop.w,
        y: (b.y - crop.y) / crop.h,
        w: b.w / crop.w,
        h: b.h / crop.h,
    }
}

/// The first edge of `safe` that box `b` (fractions of the placement)
/// crosses, if any. A small epsilon forgives float rounding of boxes that
/// sit exactly on the line.
pub fn crossed_edge(b: FracBox, safe: &SafeArea) -> Option<Edge> {
    const EPS: f64 = 1e-9;
    if b.y < safe.top - EPS {
        Some(Edge::Top)
    } else if b.y + b.h > 1.0 - safe.bottom + EPS {
        Some(Edge::Bottom)
    } else if b.x < safe.left - EPS {
        Some(Edge::Left)
    } else if b.x + b.w > 1.0 - safe.right + EPS {
        Some(Edge::Right)
    } else {
        None
    }
}

/// Everything that decides a placement file and its checks.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementSpec {
    /// The id (`google-display-300x250`, or a campaign's own).
    pub id: PlacementId,
    /// Exact output width in pixels.
    pub width: u32,
    /// Exact output height in pixels.
    pub height: u32,
    /// The file-weight limit in bytes.
    pub max_bytes: u64,
    /// Formats the platform accepts, in the order adloc prefers them.
    pub formats: Vec<PlacementFormat>,
    /// How far the frame's ratio may be from the nominal one (a fraction),
    /// where the platform states a tolerance.
    pub aspect_tolerance: Option<f64>,
    /// The smallest frame the platform accepts, where it states one.
    pub min_size: Option<(u32, u32)>,
    /// What the platform's interface covers.
    pub safe_area: SafeArea,
    /// The floor of the JPEG quality search.
    pub min_quality: u8,
}

impl PlacementSpec {
    /// The format adloc writes: the first accepted one it can write.
    pub fn format(&self) -> Option<PlacementFormat> {
        self.formats.iter().copied().find(|f| f.writable())
    }
    /// `width / height`.
    pub fn ratio(&self) -> f64 {
        f64::from(self.width) / f64::from(self.height)
    }
}

/// One row of the built-in registry, with where its figures come from.
#[derive(Debug, Clone, Copy)]
pub struct BuiltIn {
    /// The id.
    pub id: &'static str,
    /// Exact frame.
    pub width: u32,
    /// Exact frame.
    pub height: u32,
    /// Weight limit in KB (1,024 bytes).
    pub max_kb: u64,
    /// Accepted formats, preferred first.
    pub formats: &'static [PlacementFormat],
    /// Ratio tolerance, where stated.
    pub aspect_tolerance: Option<f64>,
    /// Minimum frame, where stated.
    pub min_size: Option<(u32, u32)>,
    /// Safe area (top, bottom, left, right fractions).
    pub safe_area: (f64, f64, f64, f64),
    /// The platform page the figures come from.
    pub source: &'static str,
    /// When that page was read (ISO date).
    pub checked: &'static str,
    /// Where a figure is not the platform's own hard limit, why it is used.
    pub note: &'static str,
}

impl BuiltIn {
    /// The spec a campaign gets when it names this id.
    pub fn spec(&self) -> PlacementSpec {
        let (top, bottom, left, right) = self.safe_area;
        PlacementSpec {
            id: PlacementId(self.id.to_string()),
            width: self.width,
            height: self.height,
            max_bytes: self.max_kb * KB,
            formats: self.formats.to_vec(),
            aspect_tolerance: self.aspect_tolerance,
            min_size: self.min_size,
            safe_area: SafeArea {
                top,
                bottom,
                left,
                right,
            },
            min_quality: DEFAULT_MIN_QUALITY,
        }
    }
}

use PlacementFormat::{Gif, Jpeg, Png};

const GOOGLE_UPLOADED: &str = "https://support.google.com/google-ads/answer/1722096";
const GOOGLE_RDA: &str = "https://support.google.com/google-ads/answer/17090561";
const GOOGLE_DEMAND_GEN: &str = "https://support.google.com/google-ads/answer/13704860";
const META_FEED: &str = "https://www.facebook.com/business/ads-guide/image/facebook-feed";
const META_STORY: &str =
    "https://www.facebook.com/business/ads-guide/update/image/facebook-story/outcome-awareness";
const TIKTOK: &str = "https://ads.tiktok.com/help/article?aid=6701253237862825989";
const LINKEDIN: &str = "https://www.linkedin.com/help/lms/answer/a426534";
const CHECKED: &str = "2026-12-07";

const fn display(id: &'static str, width: u32, height: u32) -> BuiltIn {
    BuiltIn {
        id,
        width,
        height,
        max_kb: 150,
        formats: &[Jpeg, Png, Gif],
        aspect_tolerance: None,
        min_size: None,
        safe_area: (0.0, 0.0, 0.0, 0.0),
        source: GOOGLE_UPLOADED,
        checked: CHECKED,
        note: "",
    }
}

/// The built-in placements, in the README's order.
pub const BUILT_IN: &[BuiltIn] = &[
    display("google-display-300x250", 300, 250),
    display("google-display-728x90", 728, 90),
    display("google-display-160x600", 160, 600),
    display("google-display-300x600", 300, 600),
    display("google-display-320x50", 320, 50),
    display("google-display-970x250", 970, 250),
    BuiltIn {
        id: "google-rda-landscape",
        width: 1200,
        height: 628,
        max_kb: 5120,
        formats: &[Jpeg, Png, Gif],
        aspect_tolerance: Some(0.01),
        min_size: Some((600, 314)),
        safe_area: (0.0, 0.0, 0.0, 0.0),
        source: GOOGLE_RDA,
        checked: CHECKED,
        note: "5,120 KB is Google's figure for the same landscape marketing image (Performance Max asset requirements); the RDA page states none",
    },
    BuiltIn {
        id: "google-rda-square",
        width: 1200,
        height: 1200,
        max_kb: 5120,
        formats: &[Jpeg, Png, Gif],
        aspect_tolerance: Some(0.01),
        min_size: Some((300, 300)),
        safe_area: (0.0, 0.0, 0.0, 0.0),
        source: GOOGLE_RDA,
        checked: CHECKED,
        note: "the RDA page recommends 600×600; 1200×1200 (Performance Max, Demand Gen) meets its 300×300 minimum and 1:1 ± 1 %",
    },
    BuiltIn {
        id: "google-demandgen-portrait",
        width: 960,
        height: 1200,
        max_kb: 5120,
        formats: &[Jpeg, Png],
        aspect_tolerance: Some(0.01),
        min_size: Some((480, 600)),
        safe_area: (0.0, 0.0, 0.0, 0.0),
        source: GOOGLE_DEMAND_GEN,
        checked: CHECKED,
        note: "",
    },
    BuiltIn {
        id: "google-demandgen-vertical",
        width: 1080,
        height: 1920,
        max_kb: 5120,
        formats: &[Jpeg, Png],
        aspect_tolerance: Some(0.01),
        min_size: Some((600, 1067)),
        safe_area: (0.0, 0.0, 0.0, 0.0),
        source: GOOGLE_DEMAND_GEN,
        checked: CHECKED,
        note: "Google points 9:16 images to its video safe zones without numbers: none enforced",
    },
    BuiltIn {
        id: "meta-feed-square",
        width: 1440,
        height: 1440,
        max_kb: 30 * 1024,
        formats: &[Jpeg, Png],
        aspect_tolerance: Some(0.03),
        min_size: Some((600, 600)),
        safe_area: (0.0, 0.0, 0.0, 0.0),
        source: META_FEED,
        checked: CHECKED,
        note: "Meta asks for at least 1080×1080; 1440 is the sharper frame its current guides recommend",
    },
    BuiltIn {
        id: "meta-feed-portrait",
        width: 1440,
        height: 1800,
        max_kb: 30 * 1024,
        formats: &[Jpeg, Png],
        aspect_tolerance: Some(0.03),
        min_size: Some((600, 750)),
        safe_area: (0.0, 0.0, 0.0, 0.0),
        source: META_FEED,
        checked: CHECKED,
        note: "",
    },
    BuiltIn {
        id: "meta-story",
        width: 1440,
        height: 2560,
        max_kb: 30 * 1024,
        formats: &[Jpeg, Png],
        aspect_tolerance: Some(0.01),
        min_size: None,
        safe_area: (0.14, 0.35, 0.06, 0.06),
        source: META_STORY,
        checked: CHECKED,
        note: "the Stories page keeps 14 % top and 20 % bottom clear; a 9:16 image also runs in Reels, where Meta keeps 14 % top, 35 % bottom and 6 % each side: the Reels figures, the stricter of the two",
    },
    BuiltIn {
        id: "tiktok-vertical",
        width: 1080,
        height: 1920,
        max_kb: 500,
        formats: &[Jpeg, Png],
        aspect_tolerance: None,
        min_size: None,
        safe_area: (0.08, 0.35, 0.05, 0.15),
        source: TIKTOK,
        checked: CHECKED,
        note: "TikTok calls 500 KB its suggested image size (its hard limit is far higher) and publishes its in-feed safe zone as template files: the margins are the envelope of readings of those templates, unverified",
    },
    BuiltIn {
        id: "linkedin-landscape",
        width: 1200,
        height: 628,
        max_kb: 5 * 1024,
        formats: &[Jpeg, Png, Gif],
        aspect_tolerance: None,
        min_size: Some((640, 360)),
        safe_area: (0.0, 0.0, 0.0, 0.0),
        source: LINKEDIN,
        checked: CHECKED,
        note: "",
    },
    BuiltIn {
        id: "linkedin-square",
        width: 1200,
        height: 1200,
        max_kb: 5 * 1024,
        formats: &[Jpeg, Png, Gif],
        aspect_tolerance: None,
        min_size: Some((360, 360)),
        safe_area: (0.0, 0.0, 0.0, 0.0),
        source: LINKEDIN,
        checked: CHECKED,
        note: "",
    },
];

/// The built-in placement with this id.
pub fn built_in(id: &str) -> Option<&'static BuiltIn> {
    BUILT_IN.iter().find(|b| b.id == id)
}

#[cfg(test)]
fn pct(f: f64) -> String {
    let p = f * 100.0;
    if (p - p.round()).abs() < 0.05 {
        format!("{} %", p.round())
    } else {
        format!("{p:.1} %")
    }
}

/// The README's table of built-in placements, one markdown row each (a
/// test keeps the README equal to it).
#[cfg(test)]
fn readme_table() -> String {
    let mut out = String::from(
        "| id | frame | max weight | formats | tolerance / minimum | safe area (top, bottom, left, right) | source (read) | note |\n|---|---|---|---|---|---|---|---|\n",
    );
    for b in BUILT_IN {
        let weight = if b.max_kb % 1024 == 0 {
            format!("{} MB ({} KB)", b.max_kb / 1024, b.max_kb)
        } else {
            format!("{} KB", b.max_kb)
        };
        let formats: Vec<&str> = b.formats.iter().map(|f| f.as_str()).collect();
        let tol = match (b.aspect_tolerance, b.min_size) {
            (None, None) => "exact".to_string(),
            (t, m) => {
                let mut parts = Vec::new();
                if let Some(t) = t {
                    parts.push(format!("ratio ± {}", pct(t)));
                }
                if let Some((w, h)) = m {
                    parts.push(format!("min {w}×{h}"));
                }
                parts.join(", ")
            }
        };
        let (t, bo, l, r) = b.safe_area;
        let safe = if t + bo + l + r == 0.0 {
            "none".to_string()
        } else {
            format!("{}, {}, {}, {}", pct(t), pct(bo), pct(l), pct(r))
        };
        out.push_str(&format!(
            "| `{}` | {}×{} | {} | {} | {} | {} | {} ({}) | {} |\n",
            b.id,
            b.width,
            b.height,
            weight,
            formats.join(", "),
            tol,
            safe,
            b.source,
            b.checked,
            b.note
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_id_is_valid_unique_and_writable() {
        let mut seen = std::collections::HashSet::new();
        for b in BUILT_IN {
            assert!(PlacementId::parse(b.id).is_ok(), "{}", b.id);
            assert!(seen.insert(b.id), "duplicate {}", b.id);
            assert!(
                b.spec().format().is_some(),
                "{} has no writable format",
                b.id
            );
            let (t, bo, l, r) = b.safe_area;
            assert!(
                t + bo < 1.0 && l + r < 1.0,
                "{} safe area leaves nothing",
                b.id
            );
        }
    }

    #[test]
    fn the_readme_placement_table_is_the_registry() {
        let readme = include_str!("../../README.md");
        let start = readme.find("<!-- placements:start -->\n").unwrap() + 26;
        let end = readme.find("<!-- placements:end -->").unwrap();
        let table = readme_table();
        assert_eq!(
            &readme[start..end],
            table,
            "paste this between the README's placements markers:\n{table}"
        );
    }

    #[test]
    fn ids_that_would_read_as_rendition_sizes_are_refused() {
        assert!(PlacementId::parse("300x250").is_err());
        assert!(PlacementId::parse("Partner").is_err());
        assert!(PlacementId::parse("partner-rail").is_ok());
    }

    #[test]
    fn a_narrower_placement_keeps_the_middle_columns_around_the_focal_point() {
        // A 16:9 master cropped to 1:1: 9/16 of the width, centred.
        let c = crop_fractions(16.0 / 9.0, 1.0, (0.5, 0.5));
        assert!((c.w - 0.5625).abs() < 1e-12 && c.h == 1.0);
        assert!((c.x - 0.21875).abs() < 1e-12 && c.y == 0.0);
        // A focal point near the edge pushes the crop back inside.
        let c = crop_fractions(16.0 / 9.0, 1.0, (0.05, 0.5));
        assert_eq!(c.x, 0.0);
        // A wider placement keeps the middle rows.
        let c = crop_fractions(1.0, 1.91, (0.5, 0.5));
        assert!((c.h - 1.0 / 1.91).abs() < 1e-12 && c.w == 1.0);
    }

    #[test]
    fn a_box_in_metas_top_fourteen_percent_crosses_the_top_edge() {
        let story = built_in("meta-story").unwrap().spec();
        let crop = crop_fractions(9.0 / 16.0, story.ratio(), (0.5, 0.5));
        let inside = into_crop(
            FracBox {
                x: 0.1,
                y: 0.2,
                w: 0.8,
                h: 0.2,
            },
            crop,
        );
        assert_eq!(crossed_edge(inside, &story.safe_area), None);
        let high = into_crop(
            FracBox {
                x: 0.1,
                y: 0.05,
                w: 0.8,
                h: 0.1,
            },
            crop,
        );
        assert_eq!(crossed_edge(high, &story.safe_area), Some(Edge::Top));
        let low = into_crop(
            FracBox {
                x: 0.1,
                y: 0.6,
                w: 0.8,
                h: 0.1,
            },
            crop,
        );
        assert_eq!(crossed_edge(low, &story.safe_area), Some(Edge::Bottom));
        let side = into_crop(
            FracBox {
                x: 0.02,
                y: 0.3,
                w: 0.5,
                h: 0.1,
            },
            crop,
        );
        assert_eq!(crossed_edge(side, &story.safe_area), Some(Edge::Left));
    }
}
