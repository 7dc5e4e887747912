//! Settling a finished call: the outcome (an image stored, or a classified
//! failure) becomes a [`Settlement`] by a pure decision, which the store
//! applies in one transaction with the attempt.

use crate::assets;
use crate::domain::{
    AssetRecord, AttemptOutcome, BillingMode, Error, ImageSize, JobKey, ModelId, Reason, Result,
    now_ms,
};
use crate::provider::{ErrorClass, Generated, ProviderError};
use crate::store::{AttemptRecord, ImageQa, JobId, Settlement};

use super::{Ctx, JobOutcome, StopReason, crash_point};

/// What happened to one job in one attempt, before the retry budget.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    Done,
    Retry {
        retry_after: Option<std::time::Duration>,
    },
    GiveUp,
    Terminal,
    RunStop,
}

fn verdict(
    result: &std::result::Result<(AssetRecord, Option<crate::domain::Usage>), ProviderError>,
    attempts: u32,
    max_attempts: u32,
) -> Verdict {
    match result {
        Ok(_) => Verdict::Done,
        Err(e) => match e.class {
            ErrorClass::Retryable { .. } if attempts >= max_attempts => Verdict::GiveUp,
            ErrorClass::Retryable { retry_after } => Verdict::Retry { retry_after },
            ErrorClass::JobTerminal => Verdict::Terminal,
            ErrorClass::RunTerminal => Verdict::RunStop,
        },
    }
}

/// Everything the decision needs besides the result.
pub(super) struct Facts {
    pub attempts: u32,
    pub mode: BillingMode,
    pub started: i64,
    pub returned: i64,
    /// What the image cost (0 for failures).
    pub cost_usd: f64,
    /// `Some(allowed)` when the retry budget was asked (only for retries).
    pub budget_ok: Option<bool>,
    /// The backoff before the next attempt, for retries.
    pub delay_ms: i64,
}

/// The decision: outcome → settlement, attempt record, and what the
/// dispatcher should do next. Pure.
fn decide(
    provider: crate::domain::ProviderKind,
    qa: ImageQa,
    result: std::result::Result<(AssetRecord, Option<crate::domain::Usage>), ProviderError>,
    v: Verdict,
    f: &Facts,
) -> (Settlement, AttemptRecord, JobOutcome) {
    let attempt = |outcome: AttemptOutcome, e: Option<&ProviderError>, cost: f64| AttemptRecord {
        mode: f.mode,
        started_at: f.started,
        finished_at: f.returned,
        outcome,
        reason: e.map(|e| e.reason),
        http_status: e.and_then(|e| e.http_status),
        detail: e.map(|e| e.detail.clone()),
        cost_usd: cost,
        read: false,
    };
    match result {
        Ok((asset, usage)) => (
            Settlement::Done {
                qa,
                provider,
                asset,
                cost_usd: f.cost_usd,
                usage_json: usage.and_then(|u| serde_json::to_string(&u).ok()),
                // Filled in by `settle`, which holds the response.
                model_turn: None,
                replaced: None,
            },
            attempt(AttemptOutcome::Ok, None, f.cost_usd),
            JobOutcome::Done,
        ),
        Err(e) => match v {
            Verdict::GiveUp => (
                Settlement::Fail {
                    blocked: false,
                    reason: e.reason,
                    detail: format!(
                        "gave up after {} attempts; last error: {}",
                        f.attempts, e.detail
                    ),
                    block_reason: None,
                },
                attempt(AttemptOutcome::JobTerminal, Some(&e), 0.0),
                JobOutcome::Terminal,
            ),
            Verdict::Retry { .. } if f.budget_ok == Some(false) => (
                Settlement::Retry {
                    not_before: None,
                    reason: e.reason,
                    detail: e.detail.clone(),
                },
                attempt(AttemptOutcome::Retry, Some(&e), 0.0),
                JobOutcome::BudgetSpent,
            ),
            Verdict::Retry { .. } => (
                Settlement::Retry {
                    not_before: Some(f.returned + f.delay_ms),
                    reason: e.reason,
                    detail: e.detail.clone(),
                },
                attempt(AttemptOutcome::Retry, Some(&e), 0.0),
                JobOutcome::Retry,
            ),
            Verdict::Terminal => (
                Settlement::Fail {
                    blocked: matches!(e.reason, Reason::BlockedPrompt | Reason::BlockedImage),
                    reason: e.reason,
                    detail: e.detail.clone(),
                    block_reason: e.block_reason.clone(),
                },
                attempt(AttemptOutcome::JobTerminal, Some(&e), 0.0),
                JobOutcome::Terminal,
            ),
            // Not the job's fault: it stays pending, and this call does not
            // count against its attempts.
            Verdict::RunStop | Verdict::Done => (
                Settlement::Requeue,
                attempt(AttemptOutcome::RunTerminal, Some(&e), 0.0),
                JobOutcome::Stop(StopReason::Provider(e.reason, e.detail.clone())),
            ),
        },
    }
}

/// What `settle` needs to know about a job.
pub(crate) struct JobInfo<'a> {
    pub key: &'a JobKey,
    pub model: &'a ModelId,
    pub size: ImageSize,
    /// Who made (or failed to make) the image.
    pub provider: crate::domain::ProviderKind,
    /// Whether its copy is read back before it is done.
    pub qa: ImageQa,
    /// Copy QA fell back to overlay: the image is copy-free art, typeset
    /// onto to make the asset.
    pub overlay: Option<OverlayArt<'a>>,
    /// For an edit: where the image it replaces is kept.
    pub replaced: Option<String>,
}

/// How a job that fell back to overlay typesets its copy.
#[derive(Clone, Copy)]
pub(crate) struct OverlayArt<'a> {
    /// (box, copy) in box order.
    pub boxes: &'a [(crate::imaging::TextBoxSpec, String)],
    /// The model's documented frame width (box sizes are pixels at it).
    pub nominal_width: Option<u32>,
}

/// Record the result of one generation (realtime or one batch line): store
/// the asset, decide, and apply the decision in one transaction.
pub(crate) async fn settle(
    ctx: &Ctx,
    job: JobId,
    attempts: u32,
    spec: &JobInfo<'_>,
    result: std::result::Result<Generated, ProviderError>,
    mode: BillingMode,
    started: i64,
) -> Result<JobOutcome> {
    let returned = now_ms();
    let key = spec.key.to_string();
    let mut turn = None;
    // A realtime answer that came back after this run's lease expired
    // (a stall longer than the lease) may belong to a job another runner
    // claimed since: its file must not replace what that runner stores.
    // Checked again, atomically, by the settle below; the window left is
    // the file write itself.
    let ours = mode != BillingMode::Realtime || ctx.store.holds_lease(job, ctx.run).await?;
    let stored = match result {
        Ok(generated) if !ours => {
            let Generated {
                bytes,
                mime_type,
                usage,
                verified_dims,
                ..
            } = generated;
            let step =
                assets::provenance::Step::generated(spec.model.as_str(), spec.replaced.is_some());
            match assets::describe_master(spec.key, &bytes, &mime_type, verified_dims, &step) {
                Ok(asset) => Ok((asset, usage)),
                Err(e) => Err(ProviderError::retryable(
                    Reason::UndecodableImage,
                    e.to_string(),
                    None,
                )),
            }
        }
        Ok(generated) => {
            let out = ctx.campaign_out.clone();
            let k = spec.key.clone();
            let Generated {
                bytes,
                mime_type,
                usage,
                verified_dims,
                preview_jpeg,
                read_copy,
                model_turn,
                ..
            } = generated;
            turn = model_turn;
            let overlay = spec.overlay.map(|o| (o.boxes.to_vec(), o.nominal_width));
            let (model, edited) = (spec.model.as_str().to_string(), spec.replaced.is_some());
            let res = tokio::task::spawn_blocking(move || {
                // A composite is not the image the provider returned: its
                // thumbnail comes from the composite itself.
                let (stored, preview) = match overlay {
                    Some((boxes, nominal_width)) => (
                        assets::store_composite(
                            &out,
                            &k,
                            &bytes,
                            &mime_type,
                            &boxes,
                            nominal_width,
                        ),
                        None,
                    ),
                    None => (
                        assets::store_master(
                            &out,
                            &k,
                            &bytes,
                            &mime_type,
                            verified_dims,
                            &assets::provenance::Step::generated(&model, edited),
                        ),
                        preview_jpeg,
                    ),
                };
                // The review page's thumbnail, made now while the run
                // waits on the network rather than all at its end.
                if let Ok(asset) = &stored {
                    crate::review::prepare_thumbnail(&out, &asset.path, &asset.sha256, preview);
                }
                stored
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
            crash_point("after-asset-rename");
            if let (Ok(asset), Some(copy), None) = (&res, read_copy, spec.overlay) {
                ctx.read_copies.keep(&asset.sha256, copy);
            }
            match res {
                Ok(asset) => Ok((asset, usage)),
                Err(
                    e @ (assets::AssetError::Io { .. }
                    | assets::AssetError::Provenance(assets::provenance::ProvenanceError::Sign(
                        _,
                    ))),
                ) => {
                    // The disk or the signer (its TSA), not the vendor:
                    // stop rather than buy the image again.
                    return Err(e.into());
                }
                // Copy that does not fit its box will not fit next time
                // either: terminal, with the reason the overlay uses.
                Err(assets::AssetError::Compose(f)) => {
                    Err(ProviderError::job_terminal(f.reason, f.detail))
                }
                Err(e) => Err(ProviderError::retryable(
                    Reason::UndecodableImage,
                    e.to_string(),
                    None,
                )),
            }
        }
        Err(e) => Err(e),
    };
    let v = verdict(&stored, attempts, ctx.policy.max_attempts());
    let cost_usd = match &stored {
        Ok(_) if spec.provider == crate::domain::ProviderKind::Local => 0.0,
        Ok((_, Some(u))) => ctx.prices.cost_of_usage(spec.model, spec.size, mode, u),
        Ok((_, None)) => ctx.prices.per_image(spec.model, spec.size, mode),
        Err(_) => 0.0,
    };
    let (budget_ok, delay_ms) = match v {
        Verdict::Retry { retry_after } => (
            Some(ctx.budget(spec.model).try_retry()),
            ctx.policy
                .delay(attempts, retry_after, fastrand::f64())
                .as_millis() as i64,
        ),
        _ => (None, 0),
    };
    if let Err(e) = &stored {
        tracing::debug!(job = key, reason = e.reason.code(), detail = %e.detail, "attempt failed");
    }
    let facts = Facts {
        attempts,
        mode,
        started,
        returned,
        cost_usd,
        budget_ok,
        delay_ms,
    };
    let (mut settlement, attempt, outcome) = decide(spec.provider, spec.qa, stored, v, &facts);
    if let Settlement::Done {
        model_turn,
        replaced,
        ..
    } = &mut settlement
    {
        *model_turn = turn;
        replaced.clone_from(&spec.replaced);
    }
    if matches!(outcome, JobOutcome::Done) {
        crash_point("before-job-update");
    }
    if let Settlement::Retry {
        not_before: Some(_),
        reason,
        ..
    } = &settlement
    {
        tracing::info!(
            job = key,
            reason = reason.code(),
            retry_in_ms = delay_ms,
            "will retry"
        );
    }
    let applied = ctx
        .store
        .settle(job, Some(ctx.run), &settlement, Some(&attempt))
        .await?;
    // An edit that came back in another format than the image it replaced
    // wrote a new master beside the old one: the old goes now that the new
    // is recorded (a kill before this leaves it to the next run's sweep).
    if applied
        && ours
        && let Settlement::Done { asset, .. } = &settlement
    {
        let (out, k, kept) = (
            ctx.campaign_out.clone(),
            spec.key.clone(),
            asset.path.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let stale = assets::stale_masters(&out, &k, &kept);
            if stale.is_empty() {
                return Ok(());
            }
            crash_point("before-stale-master-removal");
            assets::remove_files(&stale)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    }
    match &outcome {
        JobOutcome::Done => {
            ctx.add_spend(cost_usd);
            if !applied && !ours {
                tracing::warn!(
                    job = key,
                    "this run's lease on the job expired while its image was generated and another runner holds it; the image was not stored (its cost is recorded)"
                );
            } else if !applied {
                tracing::warn!(
                    job = key,
                    "job changed while its image was generated; result kept on disk, not recorded"
                );
            }
            if spec.qa == ImageQa::Check {
                tracing::debug!(job = key, "image stored; its copy is read back next");
            } else {
                ctx.progress.finished_one("done", &key);
            }
            if let Some(cap) = ctx.spend_cap
                && ctx.spent() >= cap
            {
                return Ok(JobOutcome::Stop(StopReason::SpendCap(ctx.spent())));
            }
        }
        JobOutcome::Terminal => {
            ctx.progress
                .finished_one(settlement.target_state().as_str(), &key);
        }
        JobOutcome::BudgetSpent => {
            let (first, retries) = ctx.budget(spec.model).counts();
            return Ok(JobOutcome::Stop(StopReason::RetryBudget(first, retries)));
        }
        JobOutcome::Retry | JobOutcome::Stop(_) => {}
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ProviderKind;

    fn facts(attempts: u32, budget_ok: Option<bool>) -> Facts {
        Facts {
            attempts,
            mode: BillingMode::Realtime,
            started: 1_000,
            returned: 2_000,
            cost_usd: 0.0,
            budget_ok,
            delay_ms: 500,
        }
    }

    fn err(
        e: ProviderError,
    ) -> std::result::Result<(AssetRecord, Option<crate::domain::Usage>), ProviderError> {
        Err(e)
    }

    #[test]
    fn a_retryable_error_requeues_after_the_delay_until_the_attempt_limit() {
        let e = ProviderError::retryable(Reason::ServerError, "503", None);
        let r = err(e.clone());
        let v = verdict(&r, 2, 5);
        let (s, a, o) = decide(
            ProviderKind::Gemini,
            ImageQa::Off,
            r,
            v,
            &facts(2, Some(true)),
        );
        assert_eq!(
            s,
            Settlement::Retry {
                not_before: Some(2_500),
                reason: Reason::ServerError,
                detail: "503".into()
            }
        );
        assert_eq!(a.outcome, AttemptOutcome::Retry);
        assert!(matches!(o, JobOutcome::Retry));

        let r = err(e);
        let v = verdict(&r, 5, 5);
        let (s, _, o) = decide(ProviderKind::Gemini, ImageQa::Off, r, v, &facts(5, None));
        assert!(matches!(
            s,
            Settlement::Fail {
                blocked: false,
                reason: Reason::ServerError,
                ..
            }
        ));
        assert!(matches!(o, JobOutcome::Terminal));
    }

    #[test]
    fn blocks_are_blocked_run_errors_requeue_and_a_spent_budget_stops() {
        let r = err(ProviderError::job_terminal(
            Reason::BlockedImage,
            "IMAGE_SAFETY",
        ));
        let v = verdict(&r, 1, 5);
        let (s, _, _) = decide(ProviderKind::Gemini, ImageQa::Off, r, v, &facts(1, None));
        assert_eq!(s.target_state(), crate::domain::JobState::Blocked);

        let r = err(ProviderError::run_terminal(
            Reason::Unauthenticated,
            "bad key",
        ));
        let v = verdict(&r, 1, 5);
        let (s, a, o) = decide(ProviderKind::Gemini, ImageQa::Off, r, v, &facts(1, None));
        assert_eq!(s, Settlement::Requeue);
        assert_eq!(a.outcome, AttemptOutcome::RunTerminal);
        assert!(matches!(
            o,
            JobOutcome::Stop(StopReason::Provider(Reason::Unauthenticated, _))
        ));

        let r = err(ProviderError::retryable(Reason::RateLimited, "429", None));
        let v = verdict(&r, 1, 5);
        let (s, _, o) = decide(
            ProviderKind::Gemini,
            ImageQa::Off,
            r,
            v,
            &facts(1, Some(false)),
        );
        assert!(matches!(
            s,
            Settlement::Retry {
                not_before: None,
                ..
            }
        ));
        assert!(matches!(o, JobOutcome::BudgetSpent));
    }
}
