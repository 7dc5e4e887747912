//! `adloc approve` and `adloc reject`: decisions about assets named by
//! path or glob, recorded in the state and published at once (manifests
//! and review page), so downstream systems see them without a rerun.

use crate::domain::{Decision, Error, ExitCode, InputErrors};
use crate::review;
use crate::run;

use super::{ApproveArgs, RejectArgs, StateOut, campaign_name, env, open_state};

pub(super) async fn approve(a: ApproveArgs) -> Result<ExitCode, Error> {
    let by = a.by.unwrap_or_else(env::reviewer);
    decide(
        &a.campaign,
        &a.selectors,
        Decision::Approve,
        &by,
        a.note.as_deref(),
        &a.at,
    )
    .await
}

pub(super) async fn reject(a: RejectArgs) -> Result<ExitCode, Error> {
    let by = a.by.unwrap_or_else(env::reviewer);
    decide(
        &a.campaign,
        &a.selectors,
        Decision::Reject,
        &by,
        Some(&a.note),
        &a.at,
    )
    .await
}

async fn decide(
    campaign: &str,
    selectors: &[String],
    decision: Decision,
    by: &str,
    note: Option<&str>,
    at: &StateOut,
) -> Result<ExitCode, Error> {
    let name = campaign_name(campaign)?;
    let requests = review::from_args(selectors, decision, by, note).map_err(Error::Usage)?;
    let store = open_state(&at.state).await?;
    let d = run::decide(
        &store,
        &name,
        &at.out.join(&name),
        &requests,
        InputErrors::default(),
    )
    .await?;
    store.close().await;
    print_decided(&d, decision.as_str());
    Ok(ExitCode::Success)
}

/// The one-line report of a batch of decisions.
pub(super) fn print_decided(d: &run::Decided, what: &str) {
    println!(
        "{what}: {} asset(s), {} decision(s) recorded ({} already on record); manifest {}; review page {}",
        d.matched,
        d.recorded,
        d.matched - d.recorded,
        d.published.manifest_path.display(),
        d.published.page_path.display()
    );
}
