//! The service side of the model catalogue: which ids the emulated service
//! serves, their aspect ratios, sizes, output pixel sizes, MIME types, token
//! counts and request limits, from `shared/protocols/gemini.md` §1.3, §1.4.
//!
//! This is deliberately the emulator's own table, not the client's: the
//! emulator stands in for the real service and must not inherit the client's
//! mistakes (the client keeps its table in `adloc::domain`, with prices).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A model family: the thing that decides ratios, sizes and prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelFamily {
    /// `gemini-2.5-flash-image` (Nano Banana).
    Flash25,
    /// `gemini-3.1-flash-image` (Nano Banana 2).
    Flash31,
    /// `gemini-3.1-flash-lite-image` (Nano Banana 2 Lite).
    FlashLite31,
    /// `gemini-3-pro-image` (Nano Banana Pro).
    Pro3,
}

/// A model id as sent on the wire, with its family.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelId {
    id: String,
    family: ModelFamily,
}

/// Every id the emulated service serves, with its family. The `-preview`
/// ids of 3.1 Flash Image and 3 Pro Image are not here: the real service
/// shut them down on 2026-06-25 (Gemini API deprecations page,
/// https://ai.google.dev/gemini-api/docs/deprecations) and answers them 404
/// `NOT_FOUND` like any unknown id.
const KNOWN_MODELS: &[(&str, ModelFamily)] = &[
    ("gemini-2.5-flash-image", ModelFamily::Flash25),
    ("gemini-3.1-flash-image", ModelFamily::Flash31),
    ("gemini-3.1-flash-lite-image", ModelFamily::FlashLite31),
    ("gemini-3-pro-image", ModelFamily::Pro3),
];

/// The error for an id that is not in the table.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown model `{0}`; known models: {known}", known = known_model_list())]
pub struct UnknownModel(pub String);

fn known_model_list() -> String {
    KNOWN_MODELS
        .iter()
        .map(|(id, _)| *id)
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for ModelId {
    type Err = UnknownModel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bare = s.strip_prefix("models/").unwrap_or(s);
        KNOWN_MODELS
            .iter()
            .find(|(id, _)| *id == bare)
            .map(|(id, family)| ModelId {
                id: (*id).to_string(),
                family: *family,
            })
            .ok_or_else(|| UnknownModel(s.to_string()))
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl Serialize for ModelId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.id)
    }
}

impl<'de> Deserialize<'de> for ModelId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Output image size tier (`imageSize` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImageSize {
    /// 512 px tier (3.1 Flash Image only), spelled `"512"` on the wire.
    S512,
    /// `"1K"`.
    K1,
    /// `"2K"`.
    K2,
    /// `"4K"`.
    K4,
}

impl ImageSize {
    /// The wire spelling. The K must be uppercase: the service rejects `"1k"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageSize::S512 => "512",
            ImageSize::K1 => "1K",
            ImageSize::K2 => "2K",
            ImageSize::K4 => "4K",
        }
    }
}

impl FromStr for ImageSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "512" | "0.5K" => Ok(ImageSize::S512),
            "1K" => Ok(ImageSize::K1),
            "2K" => Ok(ImageSize::K2),
            "4K" => Ok(ImageSize::K4),
            other => Err(format!(
                "unknown image size `{other}` (expected 512, 1K, 2K or 4K; the K is uppercase)"
            )),
        }
    }
}

impl fmt::Display for ImageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ImageSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ImageSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

const RATIOS_10: &[&str] = &[
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
];
const RATIOS_14: &[&str] = &[
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "1:4", "4:1", "1:8",
    "8:1",
];

impl ModelFamily {
    /// Aspect ratios the model accepts.
    pub fn aspect_ratios(self) -> &'static [&'static str] {
        match self {
            ModelFamily::Flash31 => RATIOS_14,
            // Lite's ratios are unconfirmed; the ten shared ones are the safe set.
            ModelFamily::Flash25 | ModelFamily::Pro3 | ModelFamily::FlashLite31 => RATIOS_10,
        }
    }

    /// Image sizes the model accepts.
    pub fn image_sizes(self) -> &'static [ImageSize] {
        match self {
            ModelFamily::Flash25 | ModelFamily::FlashLite31 => &[ImageSize::K1],
            ModelFamily::Pro3 => &[ImageSize::K1, ImageSize::K2, ImageSize::K4],
            ModelFamily::Flash31 => &[ImageSize::S512, ImageSize::K1, ImageSize::K2, ImageSize::K4],
        }
    }

    /// Whether Google Search grounding is available.
    pub fn supports_grounding(self) -> bool {
        matches!(self, ModelFamily::Pro3 | ModelFamily::Flash31)
    }

    /// Hard cap on reference images per request (shared/protocols §1.3).
    pub fn max_reference_images(self) -> usize {
        match self {
            // "works best with up to 3"; the hard cap is unconfirmed, so we
            // hold users to the documented recommendation.
            ModelFamily::Flash25 => 3,
            ModelFamily::Pro3 | ModelFamily::Flash31 | ModelFamily::FlashLite31 => 14,
        }
    }

    /// The MIME type the real service returns for this family.
    pub fn output_mime(self) -> &'static str {
        match self {
            ModelFamily::Flash25 => "image/png",
            ModelFamily::Pro3 | ModelFamily::Flash31 | ModelFamily::FlashLite31 => "image/jpeg",
        }
    }

    /// Documented output pixel size for a ratio and size tier. `None` when the
    /// combination is not supported. Real outputs may differ: callers record
    /// the dimensions decoded from the bytes, never these.
    pub fn pixel_size(self, ratio: &str, size: ImageSize) -> Option<(u32, u32)> {
        if !self.aspect_ratios().contains(&ratio) || !self.image_sizes().contains(&size) {
            return None;
        }
        if self == ModelFamily::Flash25 {
            return Some(match ratio {
                "1:1" => (1024, 1024),
                "2:3" => (832, 1248),
                "3:2" => (1248, 832),
                "3:4" => (864, 1184),
                "4:3" => (1184, 864),
                "4:5" => (896, 1152),
                "5:4" => (1152, 896),
                "9:16" => (768, 1344),
                "16:9" => (1344, 768),
                "21:9" => (1536, 672),
                _ => return None,
            });
        }
        let k1 = match ratio {
            "1:1" => (1024, 1024),
            "2:3" => (848, 1264),
            "3:2" => (1264, 848),
            "3:4" => (896, 1200),
            "4:3" => (1200, 896),
            "4:5" => (928, 1152),
            "5:4" => (1152, 928),
            "9:16" => (768, 1376),
            "16:9" => (1376, 768),
            "21:9" => (1584, 672),
            "1:4" => (512, 2048),
            "4:1" => (2048, 512),
            "1:8" => (384, 3072),
            "8:1" => (3072, 384),
            _ => return None,
        };
        Some(match size {
            // The doc prints 792x168 for 21:9 at 512, almost certainly a typo
            // for half of 1584x672; we use the half.
            ImageSize::S512 => match ratio {
                "1:4" => (256, 1024),
                "4:1" => (1024, 256),
                "1:8" => (192, 1536),
                "8:1" => (1536, 192),
                "2:3" => (424, 632),
                "3:2" => (632, 424),
                "3:4" => (448, 600),
                "4:3" => (600, 448),
                "4:5" => (464, 576),
                "5:4" => (576, 464),
                "9:16" => (384, 688),
                "16:9" => (688, 384),
                _ => (k1.0 / 2, k1.1 / 2),
            },
            ImageSize::K1 => k1,
            ImageSize::K2 => (k1.0 * 2, k1.1 * 2),
            ImageSize::K4 => (k1.0 * 4, k1.1 * 4),
        })
    }

    /// Output image tokens billed per image at a size tier.
    pub fn image_tokens(self, size: ImageSize) -> u64 {
        match (self, size) {
            (ModelFamily::Flash25, _) => 1290,
            (ModelFamily::Pro3, ImageSize::K4) => 2000,
            (ModelFamily::Pro3, _) => 1120,
            (ModelFamily::Flash31, ImageSize::S512) => 747,
            (ModelFamily::Flash31, ImageSize::K1) => 1120,
            (ModelFamily::Flash31, ImageSize::K2) => 1680,
            (ModelFamily::Flash31, ImageSize::K4) => 2520,
            (ModelFamily::FlashLite31, _) => 1120,
        }
    }
}

impl ModelId {
    /// The id exactly as sent in the URL path.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The capability family.
    pub fn family(&self) -> ModelFamily {
        self.family
    }
}

/// Parse `W:H` into integers.
pub fn parse_ratio(ratio: &str) -> Option<(u32, u32)> {
    let (w, h) = ratio.split_once(':')?;
    let w: u32 = w.parse().ok()?;
    let h: u32 = h.parse().ok()?;
    (w > 0 && h > 0).then_some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shut_down_preview_ids_are_not_served() {
        for id in [
            "gemini-3.1-flash-image-preview",
            "gemini-3-pro-image-preview",
        ] {
            assert!(id.parse::<ModelId>().is_err(), "{id}");
        }
        let m: ModelId = "gemini-3-pro-image".parse().unwrap();
        assert_eq!(m.family(), ModelFamily::Pro3);
        assert!("gemini-9-image".parse::<ModelId>().is_err());
    }

    #[test]
    fn pixel_sizes_follow_the_documented_tables() {
        let f = ModelFamily::Flash31;
        assert_eq!(f.pixel_size("16:9", ImageSize::K1), Some((1376, 768)));
        assert_eq!(f.pixel_size("16:9", ImageSize::K2), Some((2752, 1536)));
        assert_eq!(f.pixel_size("9:16", ImageSize::S512), Some((384, 688)));
        assert_eq!(f.pixel_size("21:9", ImageSize::S512), Some((792, 336)));
        assert_eq!(f.pixel_size("8:1", ImageSize::K4), Some((12288, 1536)));
        assert_eq!(
            ModelFamily::Flash25.pixel_size("16:9", ImageSize::K1),
            Some((1344, 768))
        );
        assert_eq!(ModelFamily::Flash25.pixel_size("16:9", ImageSize::K2), None);
        assert_eq!(ModelFamily::Pro3.pixel_size("1:4", ImageSize::K1), None);
    }

    #[test]
    fn image_size_wire_spelling_is_uppercase() {
        assert_eq!("2K".parse::<ImageSize>().unwrap().as_str(), "2K");
        assert!("2k".parse::<ImageSize>().is_err());
    }
}
