//! Publishing a campaign's review state: `manifest.json` (every asset with
//! its approval), `manifest.approved.json` (only what was approved) and
//! `review/index.html`, rebuilt from the state database alone: the manifest
//! the latest run built, the decisions made since, and the spend. A run
//! publishes when it ends; a decision publishes at once, so downstream
//! systems see it without a rerun.

use std::path::{Path, PathBuf};

use crate::domain::{Error, InputErrors, Result};
use crate::manifest::{self, Manifest};
use crate::review::{self, Request, Sheet};
use crate::store::{RunId, Store};

/// What was written.
#[derive(Debug, Clone)]
pub struct Published {
    /// The manifest with approvals.
    pub manifest: Manifest,
    /// `manifest.json`.
    pub manifest_path: PathBuf,
    /// `review/index.html`.
    pub page_path: PathBuf,
}

/// What a batch of decisions did.
#[derive(Debug, Clone)]
pub struct Decided {
    /// Assets the selectors named (one per asset and request).
    pub matched: usize,
    /// Decisions recorded (the rest were already on record).
    pub recorded: usize,
    /// What was rewritten.
    pub published: Published,
}

fn parse(json: &str) -> Result<Manifest> {
    serde_json::from_str(json).map_err(|e| Error::Internal(format!("stored manifest: {e}")))
}

/// Keep the manifest run `run` built from the state read at `read_at_ms`,
/// for later decisions and the next run's comparison.
pub(crate) async fn snapshot(
    store: &Store,
    run: RunId,
    m: &Manifest,
    read_at_ms: i64,
) -> Result<()> {
    let json = serde_json::to_string(m).map_err(|e| Error::Internal(e.to_string()))?;
    store
        .save_snapshot(run, &m.campaign, &json, read_at_ms)
        .await
}

/// The latest stored manifest of `campaign` and the one before, or a usage
/// error when the campaign never ran against this state file.
async fn latest(store: &Store, campaign: &str) -> Result<(Manifest, Option<Manifest>, f64)> {
    let snaps = store.snapshots(campaign).await?;
    let Some(last) = snaps.first() else {
        return Err(Error::Usage(format!(
            "campaign `{campaign}` has no finished run in {} (run it first, with the same --state)",
            store.location()
        )));
    };
    let previous = snaps.get(1).map(|s| parse(&s.json)).transpose()?;
    Ok((parse(&last.json)?, previous, last.spent_usd))
}

/// Rewrite the manifests and the review page of `campaign` under
/// `campaign_out` from the store.
pub async fn publish(store: &Store, campaign: &str, campaign_out: &Path) -> Result<Published> {
    let (mut m, previous, spent_this_run) = latest(store, campaign).await?;
    let decisions = store.decisions(campaign).await?;
    manifest::apply_decisions(&mut m, &decisions);
    // The document is written now, with the decisions as they are now.
    m.generated_at = jiff::Timestamp::now().to_string();
    std::fs::create_dir_all(campaign_out).map_err(|e| Error::io(campaign_out, e))?;
    let manifest_path = manifest::write(campaign_out, &m)?;
    let page = review::build(&Sheet {
        manifest: &m,
        previous: previous.as_ref(),
        decisions: &decisions,
        spent_this_run,
        spent_total: store.spent_usd(campaign).await?,
    });
    let page_path = review::write(campaign_out, &page)?;
    Ok(Published {
        manifest: m,
        manifest_path,
        page_path,
    })
}

/// Resolve `requests` against the latest manifest's assets and record
/// them, all or none; then publish. A selector naming no asset is an input
/// error, and so is any of the `prior` problems (bad rows of the file the
/// requests came from): then nothing is recorded.
pub async fn decide(
    store: &Store,
    campaign: &str,
    campaign_out: &Path,
    requests: &[Request],
    prior: InputErrors,
) -> Result<Decided> {
    let (m, _, _) = latest(store, campaign).await?;
    let decisions = review::resolve(&m, requests, prior).map_err(Error::Input)?;
    if decisions.is_empty() {
        return Err(Error::Usage("no decision to record".into()));
    }
    let recorded = store.record_decisions(campaign, &decisions).await?;
    let published = publish(store, campaign, campaign_out).await?;
    Ok(Decided {
        matched: decisions.len(),
        recorded,
        published,
    })
}
