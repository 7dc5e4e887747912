//! The environment, read in one place. Everything below the command line
//! gets these values passed in.

use std::time::Duration;

use secrecy::SecretString;

use crate::provider::gemini::GeminiConfig;
use crate::run::{GeminiEnv, OpenAiEnv, ProviderChoice, ProviderEnv, RunOptions};

fn var(k: &str) -> Option<String> {
    std::env::var(k)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `NO_COLOR` set to anything non-empty (no-color.org).
pub(super) fn no_color() -> bool {
    var("NO_COLOR").is_some()
}

/// Gemini's key, endpoint and version as Google's SDKs read them.
pub(super) fn gemini() -> GeminiEnv {
    GeminiEnv {
        api_key: GeminiConfig::api_key_from(var("GOOGLE_API_KEY"), var("GEMINI_API_KEY")),
        base_url: var("GOOGLE_GEMINI_BASE_URL"),
        api_version: var("GEMINI_API_VERSION"),
    }
}

/// OpenAI's key, endpoint (with `/v1`) and optional headers, as OpenAI's
/// SDKs read them.
pub(super) fn openai() -> OpenAiEnv {
    OpenAiEnv {
        api_key: var("OPENAI_API_KEY").map(SecretString::from),
        base_url: var("OPENAI_BASE_URL"),
        organization: var("OPENAI_ORG_ID"),
        project: var("OPENAI_PROJECT_ID"),
    }
}

/// Both vendors' settings.
pub(super) fn providers() -> ProviderEnv {
    ProviderEnv {
        gemini: gemini(),
        openai: openai(),
    }
}

/// The provider when none is given: each job's model decides when any
/// vendor key is set, else the local renderer.
pub(super) fn default_provider(env: &ProviderEnv) -> ProviderChoice {
    if env.gemini.api_key.is_some() || env.openai.api_key.is_some() {
        ProviderChoice::ByModel
    } else {
        ProviderChoice::Local
    }
}

/// A secret variable by name (the webhook's `[notify] secret_env`), read
/// only when a campaign names one. Not trimmed: a secret is what it is.
fn secret_var(k: &str) -> Option<SecretString> {
    std::env::var(k)
        .ok()
        .filter(|v| !v.is_empty())
        .map(SecretString::from)
}

/// The variables the object store reads for `--out s3://…` / `gs://…`:
/// `AWS_*` (credentials, region, `AWS_ENDPOINT_URL`) and `GOOGLE_*`
/// (service account), every value held as a secret.
pub(super) fn object_store_env() -> crate::assets::StoreEnv {
    let mut vars: Vec<(String, SecretString)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, v)| (k.starts_with("AWS_") || k.starts_with("GOOGLE_")) && !v.is_empty())
        .map(|(k, v)| (k, SecretString::from(v)))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    crate::assets::StoreEnv(vars)
}

/// Fill in what a run takes from the environment: the Gemini settings, the
/// webhook secret's reader, the
/// batch poll override for rehearsals (`ADLOC_BATCH_POLL_MS`,
/// `ADLOC_BATCH_POLL_MAX_MS`), a lower batch input byte limit for them
/// (`ADLOC_BATCH_MAX_INPUT_BYTES`), the lease (`ADLOC_LEASE_MS`) and the
/// kill tests' crash points
/// (`ADLOC_CRASH_AT`).
pub(super) fn apply(opts: &mut RunOptions) {
    opts.env = providers();
    opts.secret_lookup = secret_var;
    opts.store_env = object_store_env();
    let ms = |k: &str| {
        var(k)
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis)
    };
    opts.poll_override = (ms("ADLOC_BATCH_POLL_MS"), ms("ADLOC_BATCH_POLL_MAX_MS"));
    opts.batch_max_input_bytes =
        var("ADLOC_BATCH_MAX_INPUT_BYTES").and_then(|v| v.parse::<u64>().ok());
    // Rehearsals of a stalled runner (the late-result tests): a lease of
    // milliseconds instead of two minutes.
    if let Some(lease) = ms("ADLOC_LEASE_MS") {
        opts.lease = lease.max(Duration::from_millis(1));
    }
    if let Some(spec) = var("ADLOC_CRASH_AT") {
        crate::run::arm_crash_point(spec);
    }
}

/// Where the review server's reviewer tokens come from.
pub(super) enum ReviewTokens {
    /// `ADLOC_REVIEW_TOKENS`: a file of `token = "name"` lines.
    File(std::path::PathBuf),
    /// `ADLOC_REVIEW_TOKEN`: one token.
    One(SecretString),
}

/// The review server's tokens: the file wins over the single token.
pub(super) fn review_tokens() -> Option<ReviewTokens> {
    var("ADLOC_REVIEW_TOKENS")
        .map(|p| ReviewTokens::File(p.into()))
        .or_else(|| var("ADLOC_REVIEW_TOKEN").map(|t| ReviewTokens::One(SecretString::from(t))))
}

/// The reviewer when `--by` is not given: `ADLOC_REVIEWER`, else the login
/// name (`USER`, `LOGNAME`, `USERNAME`), else `unknown`.
pub(super) fn reviewer() -> String {
    ["ADLOC_REVIEWER", "USER", "LOGNAME", "USERNAME"]
        .into_iter()
        .find_map(var)
        .unwrap_or_else(|| "unknown".to_string())
}
