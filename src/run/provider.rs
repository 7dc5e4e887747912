//! Building the provider a run uses, from the campaign's settings and what
//! the command line resolved from the environment.

use std::sync::Arc;

use secrecy::SecretString;

use crate::campaign::Campaign;
use crate::domain::{Error, ProviderKind, Reason, Result};
use crate::provider::Provider;
use crate::provider::gemini::{GeminiConfig, GeminiProvider};
use crate::provider::local::LocalProvider;

/// Which provider to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderChoice {
    /// The local proof renderer.
    Local,
    /// Google Gemini.
    Gemini,
}

impl ProviderChoice {
    /// The provider it makes.
    pub fn kind(self) -> ProviderKind {
        match self {
            ProviderChoice::Local => ProviderKind::Local,
            ProviderChoice::Gemini => ProviderKind::Gemini,
        }
    }
}

/// Gemini settings from the environment, read once by the command line.
#[derive(Debug, Clone, Default)]
pub struct GeminiEnv {
    /// `GOOGLE_API_KEY` (wins) or `GEMINI_API_KEY`.
    pub api_key: Option<SecretString>,
    /// `GOOGLE_GEMINI_BASE_URL`: wins over the campaign's `base_url`.
    pub base_url: Option<String>,
    /// `GEMINI_API_VERSION`: wins over `[gemini] api_version`.
    pub api_version: Option<String>,
}

/// Build the provider for a choice. Gemini: the key from the environment,
/// the base URL from `GOOGLE_GEMINI_BASE_URL`, else the campaign's
/// `base_url`, else Google's; the API version from `GEMINI_API_VERSION`,
/// else `[gemini] api_version` (default `v1beta`); timeouts and inline
/// batches from the campaign.
pub(crate) fn make_provider(
    choice: ProviderChoice,
    campaign: &Campaign,
    env: &GeminiEnv,
) -> Result<Arc<dyn Provider>> {
    match choice {
        ProviderChoice::Local => Ok(Arc::new(LocalProvider::new())),
        ProviderChoice::Gemini => {
            let key = env.api_key.clone().ok_or_else(|| {
                Error::run_terminal(
                    Reason::Unauthenticated,
                    "no API key; set GEMINI_API_KEY or GOOGLE_API_KEY, or use --provider local",
                )
            })?;
            let mut config = GeminiConfig::new(key);
            if let Some(base) = env.base_url.as_ref().or(campaign.base_url.as_ref()) {
                config.base_url = base.clone();
            }
            if let Some(v) = env
                .api_version
                .as_ref()
                .or(campaign.gemini.api_version.as_ref())
            {
                config.api_version = v.clone();
            }
            if let Some(t) = campaign.gemini.connect_timeout {
                config.connect_timeout = t;
            }
            if let Some(t) = campaign.gemini.request_timeout {
                config.request_timeout = t;
            }
            config.inline_batch_max_bytes = campaign.batch.inline_max_bytes;
            let provider =
                GeminiProvider::new(config).map_err(|e| Error::run_terminal(e.reason, e.detail))?;
            Ok(Arc::new(provider))
        }
    }
}
