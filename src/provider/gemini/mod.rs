//! Gemini provider (being merged).
use std::sync::Arc;
use crate::campaign::Campaign;
use crate::error::{Error, Result};
use crate::provider::Provider;
/// Build the Gemini provider for a campaign.
pub fn provider_for(_campaign: &Campaign) -> Result<Arc<dyn Provider>> {
    Err(Error::Internal("gemini provider not merged yet".into()))
}
