//! The real Gemini client (shared/protocols/gemini.md): realtime
//! `generateContent`, the Files API resumable upload and download, and the
//! Batch API, behind the [`Provider`](crate::provider::Provider) and
//! [`BatchApi`](crate::provider::BatchApi) traits.
//!
//! Layout: [`wire`] holds the serde types; [`classify`] is the single
//! classifier every failure goes through; `client` does realtime calls,
//! `files` uploads and downloads, `batch` implements the batch lifecycle;
//! [`config`] holds the knobs.
//!
//! The API key travels only in the `x-goog-api-key` header (never in a URL,
//! a log line, an error or a `Debug` string).

mod batch;
pub mod classify;
mod client;
pub mod config;
mod files;
mod response;
pub mod wire;

pub use batch::{parse_results_line, stream_results_from_reader};
pub use client::GeminiProvider;
pub use config::{GeminiConfig, PollPolicy};

#[cfg(test)]
mod http_tests;

/// Build the Gemini provider for a campaign: the key from the environment
/// (`GOOGLE_API_KEY` wins over `GEMINI_API_KEY`), the base URL from
/// `GOOGLE_GEMINI_BASE_URL`, else the campaign's `base_url`, else Google's;
/// the API version from `GEMINI_API_VERSION`, else `[gemini] api_version`
/// (default `v1beta`); timeouts and inline batches from the campaign.
pub fn provider_for(
    campaign: &crate::campaign::Campaign,
) -> crate::error::Result<std::sync::Arc<dyn crate::provider::Provider>> {
    use crate::error::Error;
    let key = GeminiConfig::api_key_from_env().ok_or_else(|| {
        Error::RunTerminal(
            "unauthenticated: no API key; set GEMINI_API_KEY or GOOGLE_API_KEY, or use --provider local"
                .into(),
        )
    })?;
    let mut config = GeminiConfig::new(key);
    let env_base = std::env::var("GOOGLE_GEMINI_BASE_URL")
        .ok()
        .filter(|s| !s.trim().is_empty());
    if env_base.is_none()
        && let Some(base) = &campaign.base_url
    {
        config.base_url = base.clone();
    }
    if let Some(v) = &campaign.gemini.api_version {
        config.api_version = v.clone();
    }
    if let Ok(v) = std::env::var("GEMINI_API_VERSION")
        && !v.trim().is_empty()
    {
        config.api_version = v.trim().to_string();
    }
    if let Some(t) = campaign.gemini.connect_timeout {
        config.connect_timeout = t;
    }
    if let Some(t) = campaign.gemini.request_timeout {
        config.request_timeout = t;
    }
    config.inline_batch_max_bytes = campaign.batch.inline_max_bytes;
    let provider = GeminiProvider::new(config).map_err(|e| Error::RunTerminal(e.to_string()))?;
    Ok(std::sync::Arc::new(provider))
}
