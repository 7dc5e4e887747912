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

/// The C2PA signer from `ADLOC_C2PA_CERT` and `ADLOC_C2PA_KEY` (PEM
/// paths) and the optional `ADLOC_C2PA_TSA_URL`, checked (chain, expiry,
/// signing usage, key matches, a time stamp had and verified): `Ok(None)`
/// when none is set, a usage error (exit 2, before anything is bought)
/// when only one of the pair is, or the TSA alone, or when any is
/// unusable. A key file others can read is a warning. The key's
/// bytes go into the signer and nowhere else.
pub(super) fn c2pa_signer()
-> Result<Option<crate::assets::provenance::Signer>, crate::domain::Error> {
    use crate::domain::Error;
    let (cert, key) = match (var("ADLOC_C2PA_CERT"), var("ADLOC_C2PA_KEY")) {
        (None, None) if var("ADLOC_C2PA_TSA_URL").is_some() => {
            return Err(Error::Usage(
                "ADLOC_C2PA_TSA_URL is set but there is nothing to time-stamp: set ADLOC_C2PA_CERT and ADLOC_C2PA_KEY to sign, or unset it".into(),
            ));
        }
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        (Some(_), None) => {
            return Err(Error::Usage(
                "ADLOC_C2PA_CERT is set but ADLOC_C2PA_KEY is not: set both to sign, or neither"
                    .into(),
            ));
        }
        (None, Some(_)) => {
            return Err(Error::Usage(
                "ADLOC_C2PA_KEY is set but ADLOC_C2PA_CERT is not: set both to sign, or neither"
                    .into(),
            ));
        }
    };
    // The time-stamp authority's URL may carry an account's credentials:
    // from here on it is shown without them.
    let tsa = match var("ADLOC_C2PA_TSA_URL") {
        None => None,
        Some(url) => Some(
            crate::assets::provenance::TimeStampAuthority::new(&url)
                .map_err(|e| Error::Usage(format!("ADLOC_C2PA_TSA_URL: {e}")))?,
        ),
    };
    let cert_pem =
        std::fs::read(&cert).map_err(|e| Error::Usage(format!("ADLOC_C2PA_CERT {cert}: {e}")))?;
    let key_pem = secrecy::SecretBox::new(Box::new(
        std::fs::read(&key).map_err(|e| Error::Usage(format!("ADLOC_C2PA_KEY {key}: {e}")))?,
    ));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(&key)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                key = %key,
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the C2PA private key file can be read by others; chmod 600 it"
            );
        }
    }
    use secrecy::ExposeSecret;
    crate::assets::provenance::Signer::from_pem(
        &cert,
        &cert_pem,
        &key,
        key_pem.expose_secret(),
        tsa,
    )
    .map(Some)
    .map_err(|e| Error::Usage(e.to_string()))
}

/// The PEM trust anchors `adloc verify` checks signers against.
pub(super) fn c2pa_trust_anchors() -> Result<Option<String>, crate::domain::Error> {
    match var("ADLOC_C2PA_TRUST_ANCHORS") {
        None => Ok(None),
        Some(p) => std::fs::read_to_string(&p)
            .map(Some)
            .map_err(|e| crate::domain::Error::Usage(format!("ADLOC_C2PA_TRUST_ANCHORS {p}: {e}"))),
    }
}
