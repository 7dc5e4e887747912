//! Prices: per-image price estimates (shared/protocols/gemini.md §6), token
//! based actual costs from `usageMetadata`, and budget checks.
//!
//! Batch is exactly half of realtime, for tokens and per-image prices alike.
//! Campaigns may override per-image prices and copy-QA reader token rates
//! under `[pricing]`, because price pages change faster than releases.

use super::model::{BillingMode, ImageSize, ModelId};
use super::reader::{ReaderModel, ReaderRates};
use super::request::Usage;

/// A price override from `[pricing]`.
#[derive(Debug, Clone, PartialEq)]
pub enum PricingOverride {
    /// `[pricing."<image model>"."<size>"]`: USD per image for a model and size.
    Image {
        /// Model id.
        model: String,
        /// Size tier.
        image_size: ImageSize,
        /// USD per realtime image.
        realtime: Option<f64>,
        /// USD per batch image.
        batch: Option<f64>,
    },
    /// `[pricing."<reader>".tokens]`: USD per 1M realtime tokens for a
    /// copy-QA reader (batch is half). A rate left out keeps the table's.
    Reader {
        /// The reader.
        reader: ReaderModel,
        /// USD per 1M input tokens.
        input: Option<f64>,
        /// USD per 1M output tokens.
        output: Option<f64>,
    },
}

/// Tokens one read is assumed to cost, for estimates before any read has
/// been made (actual costs come from `usageMetadata`, [`PriceTable::cost_of_read`]).
///
/// The image is downscaled to at most [`READ_MAX_SIDE_PX`] on its longer
/// side before it is sent. shared/protocols/gemini.md §6 gives the Gemini
/// image rule: 258 tokens when both sides are ≤ 384 px, else one 258-token
/// tile per 768×768 crop. At ≤ 1,024 px that is at most 2 × 2 tiles =
/// 1,032 tokens (a square; 16:9 is 2 × 1 = 516). Gemini 3 counts depend on
/// `mediaResolution` and are UNCONFIRMED (§6 reports 258 and 560), so the
/// estimate rounds the worst tiling up to 1,100. The instruction is about
/// 150 tokens (≈ 600 characters at chars/4). The answer is a JSON list of
/// the strings on an ad, about 100 tokens; this assumes the reader is asked
/// not to think (thoughts are billed as output tokens, §7b).
pub const READ_MAX_SIDE_PX: u32 = 1024;
/// Input tokens of the downscaled image (see [`READ_MAX_SIDE_PX`]).
pub const READ_IMAGE_TOKENS: u64 = 1_100;
/// Input tokens of the transcription instruction.
pub const READ_INSTRUCTION_TOKENS: u64 = 150;
/// Output tokens of a transcription.
pub const READ_OUTPUT_TOKENS: u64 = 100;

fn mode_factor(mode: BillingMode) -> f64 {
    match mode {
        BillingMode::Realtime => 1.0,
        BillingMode::Batch => 0.5,
    }
}

/// The price table with a campaign's overrides applied.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    overrides: Vec<PricingOverride>,
}

impl PriceTable {
    /// Table with overrides.
    pub fn new(overrides: Vec<PricingOverride>) -> Self {
        PriceTable { overrides }
    }

    fn override_for(&self, model: &ModelId, size: ImageSize) -> Option<&PricingOverride> {
        self.overrides.iter().find(|o| {
            matches!(o, PricingOverride::Image { model: m, image_size, .. }
                if m == model.as_str() && *image_size == size)
        })
    }

    /// `(realtime, batch)` USD per image from an image override.
    fn override_prices(&self, model: &ModelId, size: ImageSize) -> (Option<f64>, Option<f64>) {
        match self.override_for(model, size) {
            Some(PricingOverride::Image {
                realtime, batch, ..
            }) => (*realtime, *batch),
            _ => (None, None),
        }
    }

    /// Estimated USD for one output image.
    pub fn per_image(&self, model: &ModelId, size: ImageSize, mode: BillingMode) -> f64 {
        let documented = model.family().image_price_realtime(size);
        let (realtime, batch) = self.override_prices(model, size);
        match mode {
            BillingMode::Realtime => realtime.unwrap_or(documented),
            BillingMode::Batch => batch
                .or_else(|| realtime.map(|r| r / 2.0))
                .unwrap_or(documented / 2.0),
        }
    }

    /// A reader's realtime token rates with the campaign's overrides. The
    /// price stays `unconfirmed` unless the campaign sets both rates.
    pub fn reader_rates(&self, reader: ReaderModel) -> ReaderRates {
        let table = reader.rates();
        let found = self.overrides.iter().find_map(|o| match o {
            PricingOverride::Reader {
                reader: r,
                input,
                output,
            } if *r == reader => Some((*input, *output)),
            _ => None,
        });
        match found {
            None => table,
            Some((input, output)) => ReaderRates {
                input: input.unwrap_or(table.input),
                output: output.unwrap_or(table.output),
                unconfirmed: input.is_none() || output.is_none(),
            },
        }
    }

    /// Actual USD for one read from its token usage: every prompt token
    /// (image and instruction) at the input rate, transcription and thought
    /// tokens at the output rate; Batch Mode half.
    pub fn cost_of_read(&self, reader: ReaderModel, mode: BillingMode, usage: &Usage) -> f64 {
        let rates = self.reader_rates(reader);
        let cost = (usage.prompt_tokens as f64 * rates.input
            + (usage.text_tokens + usage.thought_tokens) as f64 * rates.output)
            / 1e6
            * mode_factor(mode);
        round_micro(cost)
    }

    /// Estimated USD for one read, before any has been made, from the
    /// assumed token counts of [`READ_MAX_SIDE_PX`]. Not rounded, so a
    /// total over many reads is.
    pub fn estimate_read(&self, reader: ReaderModel, mode: BillingMode) -> f64 {
        let rates = self.reader_rates(reader);
        ((READ_IMAGE_TOKENS + READ_INSTRUCTION_TOKENS) as f64 * rates.input
            + READ_OUTPUT_TOKENS as f64 * rates.output)
            / 1e6
            * mode_factor(mode)
    }

    /// Estimated USD for one output image of a request: the per-image table
    /// (or override) for Gemini; for GPT Image the output tokens of the
    /// request's real frame and quality at the image-token rate.
    pub fn estimate(&self, req: &super::request::ImageRequest, mode: BillingMode) -> f64 {
        let family = req.model.family();
        match req.quality {
            Some(q) if self.override_for(&req.model, req.image_size).is_none() => {
                let tokens = family.gpt_output_tokens(req.aspect_ratio.as_str(), req.image_size, q);
                tokens as f64 * family.token_rates().output_image / 1e6 * mode_factor(mode)
            }
            _ => self.per_image(&req.model, req.image_size, mode),
        }
    }

    /// Estimated USD for one edit of an image made earlier (a revision of a
    /// rejected image, or a `text = "edit"` locale made from its base
    /// locale's image): the output image as [`PriceTable::estimate`] prices
    /// it, plus the image sent, priced by [`PriceTable::cost_of_usage`] (the
    /// function that prices an edit once bought) from the input image
    /// tokens [`edit_input_image_tokens`] expects.
    pub fn estimate_edit(&self, req: &super::request::ImageRequest, mode: BillingMode) -> f64 {
        let tokens = edit_input_image_tokens(req);
        let input = Usage {
            prompt_tokens: tokens,
            input_image_tokens: tokens,
            image_tokens: 0,
            text_tokens: 0,
            thought_tokens: 0,
        };
        self.estimate(req, mode) + self.cost_of_usage(&req.model, req.image_size, mode, &input)
    }

    /// Actual USD for a generation from its token usage. When the campaign
    /// overrides the per-image price, the override is what the user pays for
    /// the image tokens; input and text tokens are priced from the table.
    pub fn cost_of_usage(
        &self,
        model: &ModelId,
        size: ImageSize,
        mode: BillingMode,
        usage: &Usage,
    ) -> f64 {
        let rates = model.family().token_rates();
        let factor = mode_factor(mode);
        let image_cost = if usage.image_tokens == 0 {
            0.0
        } else if self.override_for(model, size).is_some() {
            self.per_image(model, size, mode)
        } else {
            usage.image_tokens as f64 * rates.output_image / 1e6 * factor
        };
        let family = model.family();
        let other = ((usage.prompt_tokens - usage.input_image_tokens.min(usage.prompt_tokens))
            as f64
            * rates.input
            + usage.input_image_tokens.min(usage.prompt_tokens) as f64 * family.input_image_rate()
            + (usage.text_tokens + usage.thought_tokens) as f64 * rates.output_text)
            / 1e6
            * factor;
        round_micro(image_cost + other)
    }
}

/// Input image tokens an edit is expected to send: the image it edits, at
/// the frame its request asks for (an edit keeps the frame).
///
/// - Gemini 2.5 Flash Image: 258 tokens when both sides are ≤ 384 px,
///   otherwise 258 per 768×768 tile (Google's image-understanding page,
///   https://ai.google.dev/gemini-api/docs/image-understanding, "Technical
///   details"; shared/protocols/gemini.md §6).
/// - Gemini 3 image models: 560 tokens per input image, as the pricing page
///   fixes it for 3 Pro Image (https://ai.google.dev/gemini-api/docs/pricing;
///   gemini.md §6 notes one response that counted 258: UNCONFIRMED which
///   applies when, so the estimate takes the larger).
/// - GPT Image: 85 + 170 per 512×512 tile. OpenAI does not document the
///   count for image inputs of edits (shared/protocols/openai.md §1.4,
///   UNCONFIRMED); this is the vision tiling at full size, an upper bound of
///   the scaled tiling (https://platform.openai.com/docs/guides/images-vision,
///   "Calculating costs"), and what the emulator bills.
pub fn edit_input_image_tokens(req: &super::request::ImageRequest) -> u64 {
    let family = req.model.family();
    let (w, h) = family
        .pixel_size(req.aspect_ratio.as_str(), req.image_size)
        .unwrap_or((1024, 1024));
    if family.vendor() == super::model::Vendor::OpenAi {
        85 + 170 * u64::from(w.div_ceil(512)) * u64::from(h.div_ceil(512))
    } else if family == super::model::ModelFamily::Flash25 {
        if w <= 384 && h <= 384 {
            258
        } else {
            258 * u64::from(w.div_ceil(768)) * u64::from(h.div_ceil(768))
        }
    } else {
        560
    }
}

/// Round to a millionth of a dollar so sums are stable across platforms.
/// Adding 0.0 turns the -0.0 an empty float sum starts from into 0.0, so a
/// free plan never prints "$-0.0000".
pub fn round_micro(usd: f64) -> f64 {
    (usd * 1e6).round() / 1e6 + 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_is_half_of_realtime_and_overrides_win() {
        let m: ModelId = "gemini-3.1-flash-image".parse().unwrap();
        let t = PriceTable::default();
        assert_eq!(t.per_image(&m, ImageSize::K1, BillingMode::Realtime), 0.067);
        assert_eq!(t.per_image(&m, ImageSize::K1, BillingMode::Batch), 0.0335);
        let t = PriceTable::new(vec![PricingOverride::Image {
            model: m.as_str().into(),
            image_size: ImageSize::K1,
            realtime: Some(0.05),
            batch: None,
        }]);
        assert_eq!(t.per_image(&m, ImageSize::K1, BillingMode::Realtime), 0.05);
        assert_eq!(t.per_image(&m, ImageSize::K1, BillingMode::Batch), 0.025);
    }

    #[test]
    fn usage_cost_matches_the_documented_per_image_price() {
        let m: ModelId = "gemini-2.5-flash-image".parse().unwrap();
        let u = Usage {
            prompt_tokens: 0,
            input_image_tokens: 0,
            image_tokens: 1290,
            text_tokens: 0,
            thought_tokens: 0,
        };
        let t = PriceTable::default();
        assert_eq!(
            t.cost_of_usage(&m, ImageSize::K1, BillingMode::Realtime, &u),
            0.0387
        );
        assert_eq!(
            t.cost_of_usage(&m, ImageSize::K1, BillingMode::Batch, &u),
            0.01935
        );
    }

    fn read_usage(prompt: u64, text: u64, thought: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            input_image_tokens: 0,
            image_tokens: 0,
            text_tokens: text,
            thought_tokens: thought,
        }
    }

    fn edit_of(model: &str) -> crate::domain::ImageRequest {
        crate::domain::ImageRequest {
            model: model.parse().unwrap(),
            prompt: "x".into(),
            aspect_ratio: "16:9".parse().unwrap(),
            image_size: ImageSize::K1,
            quality: None,
            references: Vec::new(),
            grounding: false,
            proof: Default::default(),
            edit: None,
            read_copy_side: None,
        }
    }

    #[test]
    fn an_edit_costs_its_output_image_plus_the_image_sent_at_the_bought_price() {
        let t = PriceTable::default();
        // 3.1 Flash Image: the 1K image ($0.067) + 560 input tokens at $0.50/M.
        let req = edit_of("gemini-3.1-flash-image");
        assert_eq!(edit_input_image_tokens(&req), 560);
        let rt = t.estimate_edit(&req, BillingMode::Realtime);
        assert!((rt - (0.067 + 560.0 * 0.5 / 1e6)).abs() < 1e-9, "{rt}");
        let bt = t.estimate_edit(&req, BillingMode::Batch);
        assert!((bt - rt / 2.0).abs() < 1e-9, "{bt}");
        // 2.5 Flash Image at 16:9 (1344×768): 2 × 1 tiles of 258.
        assert_eq!(
            edit_input_image_tokens(&edit_of("gemini-2.5-flash-image")),
            516
        );
        // The same tokens, bought, cost what the estimate added.
        let bought = Usage {
            prompt_tokens: 560,
            input_image_tokens: 560,
            image_tokens: 0,
            text_tokens: 0,
            thought_tokens: 0,
        };
        let input = t.cost_of_usage(&req.model, req.image_size, BillingMode::Realtime, &bought);
        assert!((rt - t.estimate(&req, BillingMode::Realtime) - input).abs() < 1e-12);
    }

    #[test]
    fn a_read_costs_its_tokens_and_batch_halves_it() {
        let t = PriceTable::default();
        let r = ReaderModel::Flash31Lite;
        // 1M in at $0.25 + 1M out at $1.50.
        let u = read_usage(1_000_000, 600_000, 400_000);
        assert_eq!(t.cost_of_read(r, BillingMode::Realtime, &u), 1.75);
        assert_eq!(t.cost_of_read(r, BillingMode::Batch, &u), 0.875);
    }

    #[test]
    fn a_read_estimate_uses_the_documented_token_assumptions() {
        let t = PriceTable::default();
        // 1,250 in × $0.25/M + 100 out × $1.50/M = $0.0003125 + $0.00015.
        let rt = t.estimate_read(ReaderModel::Flash31Lite, BillingMode::Realtime);
        assert!((rt - 0.000_462_5).abs() < 1e-12, "{rt}");
        let bt = t.estimate_read(ReaderModel::Flash31Lite, BillingMode::Batch);
        assert!((bt - rt / 2.0).abs() < 1e-12, "{bt}");
    }

    #[test]
    fn reader_overrides_replace_the_rates_they_name_and_confirm_only_when_complete() {
        let r = ReaderModel::Flash36;
        let t = PriceTable::new(vec![PricingOverride::Reader {
            reader: r,
            input: Some(0.5),
            output: None,
        }]);
        let rates = t.reader_rates(r);
        assert_eq!((rates.input, rates.output), (0.5, 7.5));
        assert!(rates.unconfirmed);
        let t = PriceTable::new(vec![PricingOverride::Reader {
            reader: r,
            input: Some(0.5),
            output: Some(3.0),
        }]);
        assert!(!t.reader_rates(r).unconfirmed);
        let u = read_usage(1_000_000, 1_000_000, 0);
        assert_eq!(t.cost_of_read(r, BillingMode::Realtime, &u), 3.5);
        // Other readers keep the table.
        assert_eq!(
            t.reader_rates(ReaderModel::Flash37),
            ReaderModel::Flash37.rates()
        );
    }
}
