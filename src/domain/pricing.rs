//! Prices: per-image price estimates (shared/protocols/gemini.md §6), token
//! based actual costs from `usageMetadata`, and budget checks.
//!
//! Batch is exactly half of realtime, for tokens and per-image prices alike.
//! Campaigns may override per-image prices under `[pricing]`, because price
//! pages change faster than releases.

use super::model::{BillingMode, ImageSize, ModelId};
use super::request::Usage;

/// A price override from `[pricing]`: USD per image for a model and size.
#[derive(Debug, Clone, PartialEq)]
pub struct PricingOverride {
    /// Model id.
    pub model: String,
    /// Size tier.
    pub image_size: ImageSize,
    /// USD per realtime image.
    pub realtime: Option<f64>,
    /// USD per batch image.
    pub batch: Option<f64>,
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
        self.overrides
            .iter()
            .find(|o| o.model == model.as_str() && o.image_size == size)
    }

    /// Estimated USD for one output image.
    pub fn per_image(&self, model: &ModelId, size: ImageSize, mode: BillingMode) -> f64 {
        let documented = model.family().image_price_realtime(size);
        let o = self.override_for(model, size);
        match mode {
            BillingMode::Realtime => o.and_then(|o| o.realtime).unwrap_or(documented),
            BillingMode::Batch => o
                .and_then(|o| o.batch)
                .or_else(|| o.and_then(|o| o.realtime).map(|r| r / 2.0))
                .unwrap_or(documented / 2.0),
        }
    }

    /// Estimated USD for one output image of a request: the per-image table
    /// (or override) for Gemini; for GPT Image the output tokens of the
    /// request's real frame and quality at the image-token rate.
    pub fn estimate(&self, req: &super::request::ImageRequest, mode: BillingMode) -> f64 {
        let family = req.model.family();
        match req.quality {
            Some(q) if self.override_for(&req.model, req.image_size).is_none() => {
                let tokens = family.gpt_output_tokens(req.aspect_ratio.as_str(), req.image_size, q);
                let factor = match mode {
                    BillingMode::Realtime => 1.0,
                    BillingMode::Batch => 0.5,
                };
                tokens as f64 * family.token_rates().output_image / 1e6 * factor
            }
            _ => self.per_image(&req.model, req.image_size, mode),
        }
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
        let factor = match mode {
            BillingMode::Realtime => 1.0,
            BillingMode::Batch => 0.5,
        };
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
        let t = PriceTable::new(vec![PricingOverride {
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
}
