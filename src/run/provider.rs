//! The providers a run uses, one per vendor, built from the campaign's
//! settings and what the command line resolved from the environment, and
//! the routing of each job to the provider of the model it asks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use secrecy::SecretString;

use crate::campaign::Campaign;
use crate::domain::{Error, FallbackTrigger, ModelId, ProviderKind, Reason, Result, Vendor};
use crate::provider::Provider;
use crate::provider::gemini::{GeminiConfig, GeminiProvider};
use crate::provider::local::LocalProvider;
use crate::provider::openai::{OpenAiConfig, OpenAiProvider};

/// Which providers a run may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderChoice {
    /// The local proof renderer, for every job.
    Local,
    /// Google Gemini only (`--provider gemini`).
    Gemini,
    /// OpenAI only (`--provider openai`).
    OpenAi,
    /// Each job's model decides, among the vendors that have a key.
    ByModel,
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

/// OpenAI settings from the environment, as OpenAI's SDKs read them.
#[derive(Debug, Clone, Default)]
pub struct OpenAiEnv {
    /// `OPENAI_API_KEY`.
    pub api_key: Option<SecretString>,
    /// `OPENAI_BASE_URL` (includes `/v1`).
    pub base_url: Option<String>,
    /// `OPENAI_ORG_ID`.
    pub organization: Option<String>,
    /// `OPENAI_PROJECT_ID`.
    pub project: Option<String>,
}

/// Everything the command line read from the environment about vendors.
#[derive(Debug, Clone, Default)]
pub struct ProviderEnv {
    /// Gemini.
    pub gemini: GeminiEnv,
    /// OpenAI.
    pub openai: OpenAiEnv,
}

impl ProviderEnv {
    /// True when the vendor's key is set.
    pub fn has_key(&self, v: Vendor) -> bool {
        match v {
            Vendor::Gemini => self.gemini.api_key.is_some(),
            Vendor::OpenAi => self.openai.api_key.is_some(),
        }
    }
}

/// The run's providers, and which vendors have become unusable.
pub(crate) struct Providers {
    local: Option<Arc<dyn Provider>>,
    vendors: HashMap<Vendor, Arc<dyn Provider>>,
    /// Vendors that stopped working in this run, with why.
    down: Mutex<HashMap<Vendor, Reason>>,
}

impl Providers {
    /// The provider for a job asking `model`; `None` when its vendor has no
    /// key in this run or went down.
    pub(crate) fn for_model(&self, model: &ModelId) -> Option<Arc<dyn Provider>> {
        if let Some(l) = &self.local {
            return Some(l.clone());
        }
        let v = model.vendor();
        if self.down.lock().is_ok_and(|d| d.contains_key(&v)) {
            return None;
        }
        self.vendors.get(&v).cloned()
    }

    /// The one provider every job goes to (local), if so.
    pub(crate) fn local(&self) -> Option<&Arc<dyn Provider>> {
        self.local.as_ref()
    }

    /// The provider of a vendor, down or not (batches already submitted to
    /// it are still polled and ingested).
    pub(crate) fn vendor(&self, v: Vendor) -> Option<&Arc<dyn Provider>> {
        self.vendors.get(&v)
    }

    /// Any vendor's provider (the first one built).
    pub(crate) fn any(&self) -> Option<Arc<dyn Provider>> {
        [Vendor::Gemini, Vendor::OpenAi]
            .iter()
            .find_map(|v| self.vendors.get(v).cloned())
    }

    /// `local`, `gemini`, `openai` or `gemini+openai`: what the run uses.
    pub(crate) fn names(&self) -> String {
        if self.local.is_some() {
            return ProviderKind::Local.as_str().to_string();
        }
        let names: Vec<&str> = [Vendor::Gemini, Vendor::OpenAi]
            .iter()
            .filter(|v| self.vendors.contains_key(v))
            .map(|v| v.as_str())
            .collect();
        names.join("+")
    }

    /// Stop sending new work to a vendor for the rest of the run; the first
    /// reason is kept.
    pub(crate) fn mark_down(&self, v: Vendor, reason: Reason) {
        if let Ok(mut d) = self.down.lock() {
            d.entry(v).or_insert(reason);
        }
    }

    /// Why a vendor cannot take work in this run: it went down, or it has no
    /// provider (no key, or another vendor was forced). `None` when usable.
    pub(crate) fn unusable(&self, v: Vendor) -> Option<Reason> {
        if self.local.is_some() {
            return None;
        }
        if let Some(r) = self.down.lock().ok().and_then(|d| d.get(&v).copied()) {
            return Some(r);
        }
        (!self.vendors.contains_key(&v)).then_some(Reason::Unauthenticated)
    }
}

/// Which fallback trigger a run-stopping failure of a vendor is.
pub(crate) fn trigger_for(reason: Reason) -> FallbackTrigger {
    match reason {
        Reason::CreditExhausted | Reason::DailyQuotaExhausted => FallbackTrigger::Quota,
        Reason::Unauthenticated | Reason::ModelNotFound => FallbackTrigger::ModelUnavailable,
        _ => FallbackTrigger::Outage,
    }
}

/// Build the providers for a choice.
pub(crate) fn make_providers(
    choice: ProviderChoice,
    campaign: &Campaign,
    env: &ProviderEnv,
) -> Result<Providers> {
    let mut p = Providers {
        local: None,
        vendors: HashMap::new(),
        down: Mutex::new(HashMap::new()),
    };
    let wanted: Vec<Vendor> = match choice {
        ProviderChoice::Local => {
            p.local = Some(Arc::new(LocalProvider::new()));
            return Ok(p);
        }
        ProviderChoice::Gemini => vec![Vendor::Gemini],
        ProviderChoice::OpenAi => vec![Vendor::OpenAi],
        ProviderChoice::ByModel => {
            let mut v: Vec<Vendor> = Vec::new();
            for m in campaign.variants.iter().flat_map(|v| &v.models) {
                if !v.contains(&m.vendor()) && env.has_key(m.vendor()) {
                    v.push(m.vendor());
                }
            }
            v
        }
    };
    let mut wanted = wanted;
    // Copy QA's readers are Gemini models whatever model paints: a
    // campaign whose images all come from GPT Image still needs Gemini
    // for its reads, or its images would wait unread for ever.
    if let Some(qa) = campaign.variants.iter().find_map(|v| v.qa.as_ref())
        && !wanted.contains(&Vendor::Gemini)
    {
        if !env.has_key(Vendor::Gemini) {
            return Err(Error::run_terminal(
                Reason::Unauthenticated,
                format!(
                    "copy QA reads images with {}, a Gemini model, and no Gemini key is set; set GEMINI_API_KEY / GOOGLE_API_KEY, or turn [qa] off",
                    qa.reader
                ),
            ));
        }
        wanted.push(Vendor::Gemini);
    }
    for v in wanted {
        let provider = make_provider(v, campaign, env)?;
        p.vendors.insert(v, provider);
    }
    if p.vendors.is_empty() {
        return Err(Error::run_terminal(
            Reason::Unauthenticated,
            "no API key for any model of the campaign; set GEMINI_API_KEY / GOOGLE_API_KEY or OPENAI_API_KEY, or use --provider local",
        ));
    }
    Ok(p)
}

/// Build one vendor's provider. Gemini: the key from the environment, the
/// base URL from `GOOGLE_GEMINI_BASE_URL`, else the campaign's `base_url`,
/// else Google's; the API version from `GEMINI_API_VERSION`, else
/// `[gemini] api_version` (default `v1beta`); timeouts and inline batches
/// from the campaign. OpenAI: `OPENAI_API_KEY`, `OPENAI_BASE_URL` (with
/// `/v1`), `OPENAI_ORG_ID`, `OPENAI_PROJECT_ID`.
fn make_provider(
    vendor: Vendor,
    campaign: &Campaign,
    env: &ProviderEnv,
) -> Result<Arc<dyn Provider>> {
    match vendor {
        Vendor::Gemini => {
            let key = env.gemini.api_key.clone().ok_or_else(|| {
                Error::run_terminal(
                    Reason::Unauthenticated,
                    "no API key; set GEMINI_API_KEY or GOOGLE_API_KEY, or use --provider local",
                )
            })?;
            let mut config = GeminiConfig::new(key);
            if let Some(base) = env.gemini.base_url.as_ref().or(campaign.base_url.as_ref()) {
                config.base_url = base.clone();
            }
            if let Some(v) = env
                .gemini
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
        Vendor::OpenAi => {
            let key = env.openai.api_key.clone().ok_or_else(|| {
                Error::run_terminal(
                    Reason::Unauthenticated,
                    "no API key; set OPENAI_API_KEY, or use --provider local",
                )
            })?;
            let mut config = OpenAiConfig::new(key);
            if let Some(base) = &env.openai.base_url {
                config.base_url = base.clone();
            }
            config.organization = env.openai.organization.clone();
            config.project = env.openai.project.clone();
            let provider =
                OpenAiProvider::new(config).map_err(|e| Error::run_terminal(e.reason, e.detail))?;
            Ok(Arc::new(provider))
        }
    }
}
