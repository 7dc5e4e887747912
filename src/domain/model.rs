//! Model ids and their capability profiles: aspect ratios, sizes, output
//! pixel sizes, output MIME type and prices.
//!
//! Every number here comes from `shared/protocols/gemini.md` §1.3, §1.4 and §6.
//! The `-preview` ids of 3.1 Flash Image and 3 Pro Image were shut down on
//! 2026-06-25 and are input errors naming their GA ids ([`LIFECYCLE`]).

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
    /// `gpt-image-2` (and its dated snapshot).
    GptImage2,
    /// `gpt-image-2.5-sunburst` / `-flare` (and dated snapshots): adds the
    /// `xhigh` and `max` qualities.
    GptImage25,
    /// `gpt-image-2.6-sunburst` / `-flare`, the newest.
    GptImage26,
}

/// Who serves a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vendor {
    /// Google's Gemini API (Nano Banana).
    Gemini,
    /// OpenAI's Image API (GPT Image).
    OpenAi,
}

impl Vendor {
    /// Stable lowercase name, as in `--provider`.
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Gemini => "gemini",
            Vendor::OpenAi => "openai",
        }
    }
}

/// GPT Image render quality (`quality` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Quality {
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high`.
    High,
    /// `xhigh` (gpt-image-2.5 only).
    XHigh,
    /// `max` (gpt-image-2.5 only).
    Max,
}

impl Quality {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Low => "low",
            Quality::Medium => "medium",
            Quality::High => "high",
            Quality::XHigh => "xhigh",
            Quality::Max => "max",
        }
    }

    /// Output image tokens per 1024x1024 image (shared/protocols/openai.md
    /// §1.4 for low/medium/high; xhigh and max are UNCONFIRMED: 2x and 4x
    /// high, which the campaign's `[pricing]` can override).
    pub fn tokens_per_megapixel(self) -> u64 {
        match self {
            Quality::Low => 272,
            Quality::Medium => 1056,
            Quality::High => 4160,
            Quality::XHigh => 8320,
            Quality::Max => 16640,
        }
    }
}

impl FromStr for Quality {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "low" => Ok(Quality::Low),
            "medium" => Ok(Quality::Medium),
            "high" => Ok(Quality::High),
            "xhigh" => Ok(Quality::XHigh),
            "max" => Ok(Quality::Max),
            other => Err(format!(
                "unknown quality `{other}` (expected low, medium or high; xhigh and max on gpt-image-2.5)"
            )),
        }
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A model that the vendor no longer serves, with its replacement.
pub(super) struct Retired {
    pub(super) id: &'static str,
    pub(super) shut_down: &'static str,
    pub(super) replacement: &'static str,
}

/// Models whose shutdown date has been announced (shared/protocols/openai.md,
/// "model lifecycle"; the Gemini API deprecations page,
/// https://ai.google.dev/gemini-api/docs/deprecations). A model here is an
/// input error from its date on.
const LIFECYCLE: &[Retired] = &[
    // Gemini API deprecations page ("Preview models": shutdown June 25,
    // 2026, replacement the GA id) and the Gemini API changelog of
    // 2026-05-28 ("deprecated and will be shut down on June 25, 2026").
    Retired {
        id: "gemini-3-pro-image-preview",
        shut_down: "2026-06-25",
        replacement: "gemini-3-pro-image",
    },
    Retired {
        id: "gemini-3.1-flash-image-preview",
        shut_down: "2026-06-25",
        replacement: "gemini-3.1-flash-image",
    },
    Retired {
        id: "gpt-image-1",
        shut_down: "2026-10-23",
        replacement: "gpt-image-2.6-sunburst",
    },
    Retired {
        id: "gpt-image-1.5",
        shut_down: "2026-12-01",
        replacement: "gpt-image-2.6-sunburst",
    },
    Retired {
        id: "gpt-image-1.5-2025-12-16",
        shut_down: "2026-12-01",
        replacement: "gpt-image-2.6-sunburst",
    },
    Retired {
        id: "gpt-image-1-mini",
        shut_down: "2026-12-01",
        replacement: "gpt-image-2.6-flare",
    },
    Retired {
        id: "chatgpt-image-latest",
        shut_down: "2026-12-01",
        replacement: "gpt-image-2.6-sunburst",
    },
    Retired {
        id: "dall-e-2",
        shut_down: "2026-05-12",
        replacement: "gpt-image-2.6-flare",
    },
    Retired {
        id: "dall-e-3",
        shut_down: "2026-05-12",
        replacement: "gpt-image-2.6-sunburst",
    },
];

/// Models whose vendor lists only an *earliest possible* shutdown date
/// ("The shutdown dates listed in the table indicate the earliest possible
/// dates on which a model might be retired. We will communicate the exact
/// shutdown date ... with advance notice"): still served and accepted, but
/// `plan` warns from 30 days before that date on, and after it.
const EARLIEST_SHUTDOWN: &[Retired] = &[
    // Gemini API deprecations page: gemini-2.5-flash-image, released
    // October 2, 2025, shutdown date October 2, 2026 (earliest possible).
    // No shutdown was announced on the changelog by 2026-12-07, so the id
    // stays accepted; the replacement is the GA Nano Banana 2.
    Retired {
        id: "gemini-2.5-flash-image",
        shut_down: "2026-10-02",
        replacement: "gemini-3.1-flash-image",
    },
];

/// A model id as sent on the wire, with its family.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelId {
    id: String,
    family: ModelFamily,
}

/// Every id adloc accepts, with its family. GA ids first.
const KNOWN_MODELS: &[(&str, ModelFamily)] = &[
    ("gemini-2.5-flash-image", ModelFamily::Flash25),
    ("gemini-3.1-flash-image", ModelFamily::Flash31),
    ("gemini-3.1-flash-lite-image", ModelFamily::FlashLite31),
    ("gemini-3-pro-image", ModelFamily::Pro3),
    ("gpt-image-2", ModelFamily::GptImage2),
    ("gpt-image-2-2026-04-21", ModelFamily::GptImage2),
    ("gpt-image-2.5-sunburst", ModelFamily::GptImage25),
    ("gpt-image-2.5-flare", ModelFamily::GptImage25),
    ("gpt-image-2.5-sunburst-2026-09-08", ModelFamily::GptImage25),
    ("gpt-image-2.5-flare-2026-09-08", ModelFamily::GptImage25),
    ("gpt-image-2.6-sunburst", ModelFamily::GptImage26),
    ("gpt-image-2.6-flare", ModelFamily::GptImage26),
];

/// Shut-down ids with the family they were served as: never accepted from a
/// campaign, but a state written before the shutdown still holds them
/// (a retired job, a batch submitted then), and reading that state back
/// must not fail ([`ModelId::from_stored`]).
const SHUT_DOWN_FAMILIES: &[(&str, ModelFamily)] = &[
    ("gemini-3.1-flash-image-preview", ModelFamily::Flash31),
    ("gemini-3-pro-image-preview", ModelFamily::Pro3),
];

/// Why a model id was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UnknownModel {
    /// Not in the table.
    #[error("unknown model `{0}`; known models: {known}", known = known_model_list())]
    Unknown(String),
    /// Shut down by its vendor.
    #[error("model `{id}` was shut down on {on}; use `{replacement}` instead")]
    ShutDown {
        /// The id as written.
        id: String,
        /// The shutdown date.
        on: &'static str,
        /// What the vendor recommends.
        replacement: &'static str,
    },
}

/// A model whose announced shutdown is within `days` of `today`
/// (`YYYY-MM-DD`): `(shutdown date, replacement)`, for `plan` warnings.
/// Image models and copy-QA readers alike (their ids never overlap).
pub fn shutdown_within(id: &str, today: &str, days: i64) -> Option<(&'static str, &'static str)> {
    let today: jiff::civil::Date = today.parse().ok()?;
    let id = id.strip_prefix("models/").unwrap_or(id);
    LIFECYCLE
        .iter()
        .chain(super::reader::READER_LIFECYCLE)
        .chain(EARLIEST_SHUTDOWN)
        .find(|r| r.id == id)
        .and_then(|r| {
            let on: jiff::civil::Date = r.shut_down.parse().ok()?;
            let left = today.until(on).ok()?.get_days();
            (left > 0 && i64::from(left) <= days).then_some((r.shut_down, r.replacement))
        })
}

/// A model still accepted whose earliest possible shutdown date is on or
/// before `today` (`YYYY-MM-DD`): `(that date, replacement)`, for a `plan`
/// warning that it may stop being served at any time.
pub fn shutdown_overdue(id: &str, today: &str) -> Option<(&'static str, &'static str)> {
    let id = id.strip_prefix("models/").unwrap_or(id);
    EARLIEST_SHUTDOWN
        .iter()
        .find(|r| r.id == id && r.shut_down <= today)
        .map(|r| (r.shut_down, r.replacement))
}

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
        // UTC date, `YYYY-MM-DD`: shutdown dates are announced as dates.
        let now = jiff::Timestamp::now().to_string();
        let today = now.get(..10).unwrap_or("");
        if let Some(r) = LIFECYCLE
            .iter()
            .find(|r| r.id == bare && r.shut_down <= today)
        {
            return Err(UnknownModel::ShutDown {
                id: bare.to_string(),
                on: r.shut_down,
                replacement: r.replacement,
            });
        }
        KNOWN_MODELS
            .iter()
            .find(|(id, _)| *id == bare)
            .map(|(id, family)| ModelId {
                id: (*id).to_string(),
                family: *family,
            })
            .ok_or_else(|| UnknownModel::Unknown(s.to_string()))
    }
}

impl ModelId {
    /// A model id read back from the state: any id adloc accepted when it
    /// was stored, a shut-down one included. The lifecycle check is for
    /// what a campaign asks for now; a retired job or a batch submitted
    /// before the shutdown keeps its id, and an upgrade must not make the
    /// state unreadable (its batch could then not be ingested or cancelled).
    pub fn from_stored(s: &str) -> Result<ModelId, UnknownModel> {
        let bare = s.strip_prefix("models/").unwrap_or(s);
        KNOWN_MODELS
            .iter()
            .chain(SHUT_DOWN_FAMILIES)
            .find(|(id, _)| *id == bare)
            .map(|(id, family)| ModelId {
                id: (*id).to_string(),
                family: *family,
            })
            .ok_or_else(|| UnknownModel::Unknown(s.to_string()))
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

impl ImageSize {
    /// Pixel area relative to the 1K tier.
    fn area_factor(self) -> f64 {
        match self {
            ImageSize::S512 => 0.25,
            ImageSize::K1 => 1.0,
            ImageSize::K2 => 4.0,
            ImageSize::K4 => 16.0,
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

/// How a job is bought: realtime calls or the half-price Batch API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BillingMode {
    /// `generateContent`, full price.
    Realtime,
    /// `batchGenerateContent`, 50 % of realtime.
    Batch,
}

impl BillingMode {
    /// Stable lowercase name, as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            BillingMode::Realtime => "realtime",
            BillingMode::Batch => "batch",
        }
    }
}

impl FromStr for BillingMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "realtime" => Ok(BillingMode::Realtime),
            "batch" => Ok(BillingMode::Batch),
            other => Err(format!("unknown billing mode `{other}`")),
        }
    }
}

const RATIOS_10: &[&str] = &[
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
];
const RATIOS_14: &[&str] = &[
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "1:4", "4:1", "1:8",
    "8:1",
];

/// Per-million-token rates in USD for the realtime (standard) tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenRates {
    /// Input text/image tokens.
    pub input: f64,
    /// Output text and thinking tokens.
    pub output_text: f64,
    /// Output image tokens.
    pub output_image: f64,
}

/// GPT Image `size` rules for gpt-image-2 and later (OpenAI image-generation
/// guide, "Size constraints", https://developers.openai.com/api/docs/guides/image-generation;
/// shared/protocols/openai.md §1.3): both edges multiples of 16, the longest
/// edge at most 3840, the long:short ratio at most 3:1, and between 655,360
/// and 8,294,400 pixels in all.
pub const GPT_EDGE_MULTIPLE: u32 = 16;
/// Longest edge GPT Image draws.
pub const GPT_MAX_EDGE: u32 = 3840;
/// Fewest pixels per GPT Image image (so no 512-class sizes).
pub const GPT_MIN_PIXELS: u64 = 655_360;
/// Most pixels per GPT Image image (3840x2160, or 2880x2880 square).
pub const GPT_MAX_PIXELS: u64 = 8_294_400;
/// Widest long:short ratio GPT Image draws.
pub const GPT_MAX_RATIO: u32 = 3;

/// Whether `w`x`h` obeys every GPT Image size rule ([`GPT_MIN_PIXELS`] and
/// the constants beside it).
pub fn gpt_size_is_legal(w: u32, h: u32) -> bool {
    let (long, short) = (w.max(h), w.min(h));
    let px = u64::from(w) * u64::from(h);
    short > 0
        && w.is_multiple_of(GPT_EDGE_MULTIPLE)
        && h.is_multiple_of(GPT_EDGE_MULTIPLE)
        && long <= GPT_MAX_EDGE
        && u64::from(long) <= u64::from(GPT_MAX_RATIO) * u64::from(short)
        && (GPT_MIN_PIXELS..=GPT_MAX_PIXELS).contains(&px)
}

/// Most characters an `image_url` of a JSON edit body (and so of a batch
/// line) may have: `ImageRefParam.image_url` `maxLength` in
/// openai/openai-openapi `openapi.yaml`.
pub const GPT_MAX_DATA_URL_CHARS: u64 = 20_971_520;

/// The length of `bytes` bytes of `mime` as a `data:<mime>;base64,…` URL:
/// `"data:<mime>;base64,".len() + 4 * ceil(bytes / 3)`.
pub fn data_url_len(mime: &str, bytes: u64) -> u64 {
    ("data:;base64,".len() + mime.len()) as u64 + 4 * bytes.div_ceil(3)
}

/// The most requests and bytes one batch input file of a vendor may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInputLimits {
    /// Requests (lines) per file.
    pub max_requests: usize,
    /// Bytes per file.
    pub max_bytes: u64,
}

impl Vendor {
    /// Batch input file limits. OpenAI: at most 50,000 requests and 200 MB
    /// per file (openai/openai-openapi `openapi.yaml`, `CreateBatchRequest.
    /// input_file_id`; shared/protocols/openai.md §4.8), held at 200,000,000
    /// bytes so either reading of "MB" holds. Gemini: the 2 GB file limit
    /// with a margin, and no request count of its own.
    pub fn batch_input_limits(self) -> BatchInputLimits {
        match self {
            Vendor::OpenAi => BatchInputLimits {
                max_requests: 50_000,
                max_bytes: 200_000_000,
            },
            Vendor::Gemini => BatchInputLimits {
                max_requests: usize::MAX,
                max_bytes: 1_900_000_000,
            },
        }
    }
}

/// The standard sizes the JSON edit body takes (`EditImageBodyJsonParam.size`
/// in openai/openai-openapi `openapi.yaml`: `auto`, `1024x1024`,
/// `1536x1024`, `1024x1536`); only the multipart form takes any legal `WxH`.
pub const GPT_JSON_EDIT_SIZES: [(u32, u32); 3] = [(1024, 1024), (1536, 1024), (1024, 1536)];

/// The JSON-edit size nearest a frame's ratio (by log ratio, so 16:9 maps
/// to 1536x1024 and 9:16 to 1024x1536). The image that comes back is
/// cropped to fill the frame locally.
pub fn gpt_json_edit_size(w: u32, h: u32) -> (u32, u32) {
    let want = (f64::from(w.max(1)) / f64::from(h.max(1))).ln();
    let mut best = GPT_JSON_EDIT_SIZES[0];
    for s in GPT_JSON_EDIT_SIZES {
        let d = |(a, b): (u32, u32)| ((f64::from(a) / f64::from(b)).ln() - want).abs();
        if d(s) < d(best) {
            best = s;
        }
    }
    best
}

impl ModelFamily {
    /// Who serves the model.
    pub fn vendor(self) -> Vendor {
        if self.is_gpt() {
            Vendor::OpenAi
        } else {
            Vendor::Gemini
        }
    }

    fn is_gpt(self) -> bool {
        matches!(
            self,
            ModelFamily::GptImage2 | ModelFamily::GptImage25 | ModelFamily::GptImage26
        )
    }

    /// Qualities the model accepts (empty: the model has no quality knob).
    pub fn qualities(self) -> &'static [Quality] {
        match self {
            ModelFamily::GptImage25 => &[
                Quality::Low,
                Quality::Medium,
                Quality::High,
                Quality::XHigh,
                Quality::Max,
            ],
            ModelFamily::GptImage2 | ModelFamily::GptImage26 => {
                &[Quality::Low, Quality::Medium, Quality::High]
            }
            _ => &[],
        }
    }

    /// Aspect ratios the model accepts.
    pub fn aspect_ratios(self) -> &'static [&'static str] {
        match self {
            ModelFamily::Flash31 => RATIOS_14,
            // Lite's ratios are unconfirmed; the ten shared ones are the safe
            // set. GPT Image takes 1:3..3:1, which is exactly these ten.
            ModelFamily::Flash25
            | ModelFamily::Pro3
            | ModelFamily::FlashLite31
            | ModelFamily::GptImage2
            | ModelFamily::GptImage25
            | ModelFamily::GptImage26 => RATIOS_10,
        }
    }

    /// Image sizes the model accepts.
    pub fn image_sizes(self) -> &'static [ImageSize] {
        match self {
            ModelFamily::Flash25 | ModelFamily::FlashLite31 => &[ImageSize::K1],
            ModelFamily::Pro3 => &[ImageSize::K1, ImageSize::K2, ImageSize::K4],
            ModelFamily::Flash31 => &[ImageSize::S512, ImageSize::K1, ImageSize::K2, ImageSize::K4],
            // Every 512-tier frame is under GPT Image's 655,360-pixel floor
            // (see [`gpt_size_is_legal`]): 1K is the smallest tier it draws.
            ModelFamily::GptImage2 | ModelFamily::GptImage25 | ModelFamily::GptImage26 => {
                &[ImageSize::K1, ImageSize::K2, ImageSize::K4]
            }
        }
    }

    /// Whether `imageSize` may be sent at all. 2.5 Flash Image and Lite are
    /// 1K only and the field is not settable there.
    pub fn sends_image_size(self) -> bool {
        matches!(self, ModelFamily::Pro3 | ModelFamily::Flash31)
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
            // `/v1/images/edits` takes up to 16 images.
            ModelFamily::GptImage2 | ModelFamily::GptImage25 | ModelFamily::GptImage26 => 16,
        }
    }

    /// The MIME type the real service returns for this family.
    pub fn output_mime(self) -> &'static str {
        match self {
            ModelFamily::Flash25
            | ModelFamily::GptImage2
            | ModelFamily::GptImage25
            | ModelFamily::GptImage26 => "image/png",
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
        if self.is_gpt() {
            return gpt_size(ratio, size);
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
            // Without a ratio or quality: a square image at high quality,
            // the upper bound (used for batch enqueued-token caps).
            (ModelFamily::GptImage2 | ModelFamily::GptImage25 | ModelFamily::GptImage26, _) => {
                self.gpt_output_tokens("1:1", size, Quality::High)
            }
        }
    }

    /// GPT Image output tokens for one image: the §1.4 per-quality count for
    /// 1024x1024, scaled by pixel area (the documented counts grow with
    /// area: 272 tokens at 1024² vs 408 at 1024x1536, low quality).
    pub fn gpt_output_tokens(self, ratio: &str, size: ImageSize, quality: Quality) -> u64 {
        let (w, h) = gpt_size(ratio, size).unwrap_or((1024, 1024));
        let area = f64::from(w) * f64::from(h) / (1024.0 * 1024.0);
        (quality.tokens_per_megapixel() as f64 * area).round() as u64
    }

    /// Realtime token rates (USD per 1M tokens). Batch is exactly half.
    pub fn token_rates(self) -> TokenRates {
        match self {
            ModelFamily::Flash25 => TokenRates {
                input: 0.30,
                output_text: 2.50,
                output_image: 30.0,
            },
            ModelFamily::Pro3 => TokenRates {
                input: 2.00,
                output_text: 12.0,
                output_image: 120.0,
            },
            ModelFamily::Flash31 => TokenRates {
                input: 0.50,
                output_text: 3.0,
                output_image: 60.0,
            },
            // Lite's token rates are unconfirmed; the per-image price
            // ($0.0336 = 1120 tok x $30/M) implies $30/M for images.
            ModelFamily::FlashLite31 => TokenRates {
                input: 0.25,
                output_text: 1.50,
                output_image: 30.0,
            },
            // gpt-image-2.6-sunburst per its model page; 2.5 and 2 the same
            // per third-party listings (shared/protocols/openai.md §5.1).
            // Input images cost $8/M (`input_image`); text output $10/M.
            ModelFamily::GptImage2 | ModelFamily::GptImage25 | ModelFamily::GptImage26 => {
                TokenRates {
                    input: 5.0,
                    output_text: 10.0,
                    output_image: 30.0,
                }
            }
        }
    }

    /// USD per 1M input image tokens (edits and references): GPT Image
    /// bills them apart from text; Gemini bills all input at one rate.
    pub fn input_image_rate(self) -> f64 {
        if self.is_gpt() {
            8.0
        } else {
            self.token_rates().input
        }
    }

    /// Documented realtime price of one output image at a size tier, in USD.
    pub fn image_price_realtime(self, size: ImageSize) -> f64 {
        match (self, size) {
            (ModelFamily::Flash25, _) => 0.039,
            (ModelFamily::Pro3, ImageSize::K4) => 0.24,
            (ModelFamily::Pro3, _) => 0.134,
            (ModelFamily::Flash31, ImageSize::S512) => 0.045,
            (ModelFamily::Flash31, ImageSize::K1) => 0.067,
            (ModelFamily::Flash31, ImageSize::K2) => 0.101,
            (ModelFamily::Flash31, ImageSize::K4) => 0.151,
            (ModelFamily::FlashLite31, _) => 0.0336,
            // Square, medium quality: see [`Self::gpt_output_tokens`] for
            // the real shape of a job.
            (ModelFamily::GptImage2 | ModelFamily::GptImage25 | ModelFamily::GptImage26, _) => {
                self.gpt_output_tokens("1:1", size, Quality::Medium) as f64 * 30.0 / 1e6
            }
        }
    }

    /// Default client-side pacing: requests per minute (shared/protocols §5,
    /// Tier 1 where published, conservative guesses where not).
    pub fn default_rpm(self) -> u32 {
        match self {
            ModelFamily::Flash25 => 500,
            ModelFamily::Pro3 => 20,
            // Unpublished; Tier-1-like defaults, overridable per campaign.
            ModelFamily::Flash31 => 100,
            ModelFamily::FlashLite31 => 100,
            // UNCONFIRMED (third-party copies say 5–250 images per minute by
            // tier); set `[rate_limit] rpm` to your tier's limit.
            ModelFamily::GptImage2 | ModelFamily::GptImage25 | ModelFamily::GptImage26 => 20,
        }
    }

    /// Default cap of enqueued batch tokens per model (Tier 1).
    pub fn default_batch_enqueued_tokens(self) -> u64 {
        match self {
            ModelFamily::Flash25 => 3_000_000,
            ModelFamily::Pro3 => 2_000_000,
            ModelFamily::Flash31 | ModelFamily::FlashLite31 => 2_000_000,
            // UNCONFIRMED for image models (shared/protocols/openai.md §4.8).
            ModelFamily::GptImage2 | ModelFamily::GptImage25 | ModelFamily::GptImage26 => 2_000_000,
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

    /// Who serves it.
    pub fn vendor(&self) -> Vendor {
        self.family.vendor()
    }
}

/// An aspect ratio as written in campaign.toml and sent on the wire
/// (`16:9`): two positive integers. Whether a model supports it is a
/// separate question ([`ModelFamily::aspect_ratios`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AspectRatio(String);

impl AspectRatio {
    /// `1:1`.
    pub fn square() -> AspectRatio {
        AspectRatio("1:1".to_string())
    }

    /// The `W:H` text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `(W, H)`.
    pub fn parts(&self) -> (u32, u32) {
        parse_ratio(&self.0).unwrap_or((1, 1))
    }
}

impl FromStr for AspectRatio {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match parse_ratio(s.trim()) {
            Some((w, h)) => Ok(AspectRatio(format!("{w}:{h}"))),
            None => Err(format!(
                "aspect ratio `{s}` must be two positive whole numbers such as `16:9`"
            )),
        }
    }
}

impl fmt::Display for AspectRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The GPT Image `size` for a ratio and size tier: the Gemini 3.1 Flash
/// pixel size for the same ratio and tier where it already obeys every rule
/// of [`gpt_size_is_legal`] (so one variant gives the same frame from either
/// vendor); otherwise (4K) scaled down to fit the longest edge and the pixel
/// ceiling, the shorter side rounded to a multiple of 16 and the longer side
/// set from it at the requested ratio. `None` outside 1:3..3:1 and for a
/// tier whose frame would be under the pixel floor (512).
pub fn gpt_size(ratio: &str, size: ImageSize) -> Option<(u32, u32)> {
    let (rw, rh) = parse_ratio(ratio)?;
    let r = f64::from(rw) / f64::from(rh);
    if !(1.0 / 3.0..=3.0).contains(&r) {
        return None;
    }
    let (w, h) = ModelFamily::Flash31.pixel_size(ratio, size).or_else(|| {
        // A ratio Gemini does not list: the 1K tier's area at this ratio.
        let area = 1024.0 * 1024.0 * size.area_factor();
        let h = (area / r).sqrt();
        Some(((h * r) as u32, h as u32))
    })?;
    if gpt_size_is_legal(w, h) {
        return Some((w, h));
    }
    // Never scale up: a frame under the floor is a tier GPT Image lacks.
    if u64::from(w) * u64::from(h) < GPT_MIN_PIXELS {
        return None;
    }
    let (long, short) = (w.max(h), w.min(h));
    let area = f64::from(long) * f64::from(short);
    let scale = (f64::from(GPT_MAX_EDGE) / f64::from(long))
        .min((GPT_MAX_PIXELS as f64 / area).sqrt())
        .min(1.0);
    let ratio = f64::from(rw.max(rh)) / f64::from(rw.min(rh));
    let round16 = |v: f64| ((v / 16.0).round() as u32).max(1) * 16;
    let mut short = round16(f64::from(short) * scale);
    let mut long = round16(f64::from(short) * ratio);
    let fits = |long: u32, short: u32| {
        long <= GPT_MAX_EDGE && u64::from(long) * u64::from(short) <= GPT_MAX_PIXELS
    };
    while !fits(long, short) && short > 16 {
        short -= 16;
        long = round16(f64::from(short) * ratio);
    }
    let (w, h) = if rw >= rh {
        (long, short)
    } else {
        (short, long)
    };
    gpt_size_is_legal(w, h).then_some((w, h))
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
    fn a_shut_down_id_in_the_state_still_reads_back_with_its_family() {
        let m = ModelId::from_stored("gemini-3-pro-image-preview").unwrap();
        assert_eq!(m.family(), ModelFamily::Pro3);
        assert_eq!(m.as_str(), "gemini-3-pro-image-preview");
        assert!("gemini-3-pro-image-preview".parse::<ModelId>().is_err());
        assert!(ModelId::from_stored("gemini-9-image").is_err());
        for (id, _) in SHUT_DOWN_FAMILIES {
            assert!(LIFECYCLE.iter().any(|r| r.id == *id), "{id}");
        }
    }

    #[test]
    fn shut_down_gemini_preview_ids_are_refused_naming_the_ga_id() {
        for (id, ga) in [
            ("gemini-3-pro-image-preview", "gemini-3-pro-image"),
            ("gemini-3.1-flash-image-preview", "gemini-3.1-flash-image"),
            ("models/gemini-3-pro-image-preview", "gemini-3-pro-image"),
        ] {
            let e = id.parse::<ModelId>().unwrap_err().to_string();
            assert!(
                e.contains("shut down on 2026-06-25") && e.contains(&format!("`{ga}`")),
                "{e}"
            );
            let m: ModelId = ga.parse().unwrap();
            assert_eq!(m.as_str(), ga);
        }
        assert!(!known_model_list().contains("preview"));
        assert!("gemini-9-image".parse::<ModelId>().is_err());
        // 2.5 Flash Image: an earliest date only, so accepted, with a warning.
        let m: ModelId = "gemini-2.5-flash-image".parse().unwrap();
        assert_eq!(m.family(), ModelFamily::Flash25);
        assert_eq!(
            shutdown_within("gemini-2.5-flash-image", "2026-09-20", 30),
            Some(("2026-10-02", "gemini-3.1-flash-image"))
        );
        assert_eq!(
            shutdown_overdue("gemini-2.5-flash-image", "2026-12-07"),
            Some(("2026-10-02", "gemini-3.1-flash-image"))
        );
        assert_eq!(
            shutdown_overdue("gemini-2.5-flash-image", "2026-09-20"),
            None
        );
        assert_eq!(shutdown_overdue("gemini-3-pro-image", "2026-12-07"), None);
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
    fn every_gpt_size_the_table_can_produce_obeys_all_five_rules() {
        let tiers = ModelFamily::GptImage2.image_sizes();
        assert!(!tiers.contains(&ImageSize::S512), "512 is under the floor");
        for fam in [
            ModelFamily::GptImage2,
            ModelFamily::GptImage25,
            ModelFamily::GptImage26,
        ] {
            assert_eq!(fam.image_sizes(), tiers);
            assert_eq!(fam.aspect_ratios(), RATIOS_10);
        }
        for ratio in RATIOS_10 {
            for &size in tiers {
                let (w, h) = gpt_size(ratio, size).unwrap();
                let px = u64::from(w) * u64::from(h);
                // 1. both edges multiples of 16
                assert_eq!((w % 16, h % 16), (0, 0), "{ratio} {size}: {w}x{h}");
                // 2. longest edge at most 3840
                assert!(w.max(h) <= 3840, "{ratio} {size}: {w}x{h}");
                // 3. ratio at most 3:1
                assert!(w.max(h) <= 3 * w.min(h), "{ratio} {size}: {w}x{h}");
                // 4. at least 655,360 pixels; 5. at most 8,294,400
                assert!(
                    (655_360..=8_294_400).contains(&px),
                    "{ratio} {size}: {w}x{h}"
                );
                assert!(gpt_size_is_legal(w, h));
                let (rw, rh) = parse_ratio(ratio).unwrap();
                let want = f64::from(rw) / f64::from(rh);
                let got = f64::from(w) / f64::from(h);
                assert!((got / want - 1.0).abs() < 0.02, "{ratio} {size}: {w}x{h}");
            }
            assert_eq!(gpt_size(ratio, ImageSize::S512), None, "{ratio}");
        }
        assert_eq!(gpt_size("16:9", ImageSize::K1), Some((1376, 768)));
        assert_eq!(gpt_size("1:1", ImageSize::K1), Some((1024, 1024)));
        assert_eq!(gpt_size("16:9", ImageSize::K4), Some((3808, 2144)));
        // The pixel ceiling, not a 2160 short side, bounds a square 4K frame.
        assert_eq!(gpt_size("1:1", ImageSize::K4), Some((2880, 2880)));
        assert_eq!(gpt_size("4:1", ImageSize::K1), None);
        for (w, h) in [
            (512, 512),
            (784, 336),
            (3856, 2160),
            (2896, 2896),
            (1600, 512),
        ] {
            assert!(!gpt_size_is_legal(w, h), "{w}x{h}");
        }
        assert!(gpt_size_is_legal(3840, 2160) && gpt_size_is_legal(1024, 640));
    }

    #[test]
    fn json_edits_ask_the_standard_size_nearest_the_frame() {
        assert_eq!(gpt_json_edit_size(1376, 768), (1536, 1024));
        assert_eq!(gpt_json_edit_size(768, 1376), (1024, 1536));
        // 5:4 is nearer 3:2 than 1:1 by ratio (log 0.22 from 1:1, 0.19 from 3:2).
        assert_eq!(gpt_json_edit_size(1152, 928), (1536, 1024));
        assert_eq!(gpt_json_edit_size(928, 1152), (1024, 1536));
        assert_eq!(gpt_json_edit_size(1024, 1024), (1024, 1024));
        assert_eq!(gpt_json_edit_size(2880, 2880), (1024, 1024));
        assert_eq!(gpt_json_edit_size(1584, 672), (1536, 1024));
    }

    #[test]
    fn the_readme_size_table_is_what_the_code_sends() {
        let readme = include_str!("../../README.md");
        let start = readme.find("<!-- gpt-sizes:start -->").unwrap();
        let end = readme.find("<!-- gpt-sizes:end -->").unwrap();
        let sizes = ModelFamily::GptImage2.image_sizes();
        let mut rows = 0;
        for line in readme[start..end]
            .lines()
            .filter(|l| l.starts_with("| ") && l.contains('x'))
        {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), sizes.len() + 1, "{line}");
            for (size, cell) in sizes.iter().zip(&cells[1..]) {
                let (w, h) = gpt_size(cells[0], *size).unwrap();
                assert_eq!(*cell, format!("{w}x{h}"), "{} {size}", cells[0]);
            }
            rows += 1;
        }
        assert_eq!(rows, RATIOS_10.len());
    }

    #[test]
    fn shut_down_models_are_refused_naming_their_replacement() {
        let e = "gpt-image-1".parse::<ModelId>().unwrap_err().to_string();
        assert!(
            e.contains("shut down on 2026-10-23") && e.contains("gpt-image-2.6-sunburst"),
            "{e}"
        );
        assert!("gpt-image-1.5".parse::<ModelId>().is_err());
        let m: ModelId = "gpt-image-2.6-sunburst".parse().unwrap();
        assert_eq!(m.vendor(), Vendor::OpenAi);
        assert_eq!(
            shutdown_within("gpt-image-1.5", "2026-11-15", 30),
            Some(("2026-12-01", "gpt-image-2.6-sunburst"))
        );
        assert_eq!(shutdown_within("gpt-image-1.5", "2026-10-01", 30), None);
    }

    #[test]
    fn image_size_wire_spelling_is_uppercase() {
        assert_eq!("2K".parse::<ImageSize>().unwrap().as_str(), "2K");
        assert!("2k".parse::<ImageSize>().is_err());
    }
}
