//! Copy QA: read each stored model-text image back with its variant's
//! reader, compare what was read with the copy that was meant, and decide
//! (pure: [`decide_read`]) whether the job is done, is read again, is
//! bought again, or fails with `text_mismatch`.

use std::collections::{HashMap, VecDeque};

use crate::campaign::OnMismatch;
use crate::domain::readback::Readback;
use crate::domain::{
    AttemptOutcome, BillingMode, ModelId, ProviderKind, ReadRequest, Reason, Result, Transcript,
    Vendor, now_ms,
};
use crate::expand::{JobSpec, QaPlan};
use crate::imaging::Downscaled;
use crate::provider::{ErrorClass, ProviderError};
use crate::store::{AttemptRecord, ClaimedRead, ImageQa, ReadSettlement};

use super::settle::OverlayArt;
use super::{Attempted, Ctx, JobOutcome, Slot, StopReason, crash_point};

/// The longer side of the image a reader is sent, in pixels.
pub(crate) const READ_MAX_SIDE: u32 = crate::domain::READ_MAX_SIDE_PX;

/// Readers' copies that providers made from the pixels they decoded to
/// check an answer ([`crate::provider::Generated::read_copy`]), by the
/// sha256 of the image as stored, until its read takes them: a read then
/// costs no decode, resize and encode of the stored file. Bounded: a copy
/// whose read never comes (a cancelled run) is dropped oldest first, and a
/// read that finds none prepares the stored file as before.
#[derive(Default)]
pub(crate) struct ReadCopies(std::sync::Mutex<ReadCopiesInner>);

#[derive(Default)]
struct ReadCopiesInner {
    by_sha: HashMap<String, Downscaled>,
    order: VecDeque<String>,
}

/// Copies kept at most (each is a JPEG of at most [`READ_MAX_SIDE`] px,
/// about 100–200 KB: a few tens of MB at most).
const READ_COPIES_KEPT: usize = 128;

impl ReadCopies {
    /// Keep `copy` for the stored image whose sha256 is `sha256`.
    pub(crate) fn keep(&self, sha256: &str, copy: Downscaled) {
        let mut g = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.by_sha.insert(sha256.to_string(), copy).is_none() {
            g.order.push_back(sha256.to_string());
        }
        while g.order.len() > READ_COPIES_KEPT {
            if let Some(old) = g.order.pop_front() {
                g.by_sha.remove(&old);
            }
        }
    }

    /// The copy of the stored image `sha256`, if one is kept.
    fn take(&self, sha256: &str) -> Option<Downscaled> {
        let mut g = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let copy = g.by_sha.remove(sha256)?;
        g.order.retain(|s| s != sha256);
        Some(copy)
    }
}

/// What a stored image of `spec` goes through, made by `provider`
/// (`overlay`: the job fell back to typeset copy, exact by construction).
pub(crate) fn image_qa(spec: &JobSpec, provider: ProviderKind, overlay: bool) -> ImageQa {
    match (&spec.qa, provider) {
        (None, _) => ImageQa::Off,
        (Some(_), _) if overlay => ImageQa::Off,
        // The local renderer paints the copy exactly: nothing to read.
        (Some(_), ProviderKind::Local) => ImageQa::Skipped,
        (Some(_), _) => ImageQa::Check,
    }
}

/// How a job that fell back to overlay (`overlay`) typesets its copy onto
/// the art `model` makes; `None` for every other job.
pub(crate) fn overlay_art<'a>(
    spec: &'a JobSpec,
    model: &ModelId,
    overlay: bool,
) -> Option<OverlayArt<'a>> {
    let fallback = spec.qa.as_ref()?.fallback.as_ref()?;
    overlay.then(|| OverlayArt {
        boxes: &fallback.boxes,
        nominal_width: model
            .family()
            .pixel_size(spec.request.aspect_ratio.as_str(), spec.request.image_size)
            .map(|(w, _)| w),
    })
}

/// What a read's outcome means for its job. Pure.
pub(crate) fn decide_read(
    plan: &QaPlan,
    job: &ClaimedRead,
    result: std::result::Result<&Transcript, &ProviderError>,
    retry_at: Option<i64>,
) -> ReadSettlement {
    let transcript = match result {
        Ok(t) => t,
        Err(e) => {
            return match e.class {
                ErrorClass::Retryable { .. } => ReadSettlement::Again {
                    not_before: retry_at,
                    checks: None,
                },
                ErrorClass::JobTerminal => ReadSettlement::Mismatch {
                    checks: Vec::new(),
                    detail: format!(
                        "the reader {} refused to read the image: {}",
                        plan.reader.as_str(),
                        e.detail
                    ),
                },
                ErrorClass::RunTerminal => ReadSettlement::Requeue,
            };
        }
    };
    let check = Readback::check(&plan.expected, &transcript.texts, plan.tolerance);
    if check.pass() {
        return ReadSettlement::Pass {
            checks: check.checks,
        };
    }
    // A first mismatch may be the reader's: a second read costs a fraction
    // of a cent, a regeneration costs an image.
    if job.image_reads == 0 {
        return ReadSettlement::Again {
            not_before: None,
            checks: Some(check.checks),
        };
    }
    let detail = mismatch_detail(&check, job.regenerations);
    match plan.on_mismatch {
        OnMismatch::Keep => ReadSettlement::Kept {
            checks: check.checks,
        },
        OnMismatch::Fail => ReadSettlement::Mismatch {
            checks: check.checks,
            detail,
        },
        OnMismatch::Regenerate if job.regenerations < plan.max_regenerations => {
            ReadSettlement::Regenerate {
                checks: check.checks,
            }
        }
        // After the last regeneration (or at once): typeset the copy when
        // the variant has text boxes, else fail.
        OnMismatch::Regenerate | OnMismatch::Overlay if plan.fallback.is_some() => {
            ReadSettlement::Overlay {
                checks: check.checks,
            }
        }
        OnMismatch::Regenerate | OnMismatch::Overlay => ReadSettlement::Mismatch {
            checks: check.checks,
            detail,
        },
    }
}

fn mismatch_detail(check: &Readback, regenerations: u32) -> String {
    let wrong: Vec<String> = check
        .failures()
        .map(|c| match &c.read {
            Some(r) => format!("{}: expected {:?}, read {:?}", c.label(), c.expected, r),
            None => format!("{}: expected {:?}, not found", c.label(), c.expected),
        })
        .collect();
    format!(
        "painted copy does not match after {} regeneration(s): {}",
        regenerations,
        wrong.join("; ")
    )
}

/// One realtime read of a claimed job's image.
pub(crate) async fn read_one(ctx: &Ctx, job: ClaimedRead, slot: Slot) -> Result<Attempted> {
    let Some(spec) = ctx.specs.get(&job.id).cloned() else {
        // Not a job this process expanded: hand it back untouched.
        settle(ctx, &job, None, &ReadSettlement::Requeue, None).await?;
        return Ok((None, JobOutcome::Retry));
    };
    let Some(plan) = spec.qa.as_ref() else {
        // QA was turned off since the image was stored: it is done as is.
        let s = ReadSettlement::Kept { checks: Vec::new() };
        settle(ctx, &job, None, &s, None).await?;
        return Ok((None, JobOutcome::Done));
    };
    let Some(reader) = ctx
        .providers
        .vendor(Vendor::Gemini)
        .and_then(|p| p.reader())
    else {
        settle(ctx, &job, Some(plan), &ReadSettlement::Requeue, None).await?;
        return Ok((Some(Vendor::Gemini), JobOutcome::Retry));
    };
    let request = prepare_read(ctx, &job, plan).await?;
    let started = now_ms();
    let result = reader.read(&request).await;
    let returned = now_ms();
    crash_point("read-after-call");
    let outcome = apply_read(
        ctx,
        &job,
        plan,
        result,
        BillingMode::Realtime,
        (started, returned),
    )
    .await?;
    drop(slot);
    Ok((Some(Vendor::Gemini), outcome))
}

/// Decide what a read's result (realtime, or one line of a read batch)
/// means for its job, and record it with its attempt and cost.
pub(crate) async fn apply_read(
    ctx: &Ctx,
    job: &ClaimedRead,
    plan: &QaPlan,
    result: std::result::Result<Transcript, ProviderError>,
    mode: BillingMode,
    (started, returned): (i64, i64),
) -> Result<JobOutcome> {
    let (retry_at, budget_ok) = match &result {
        Err(e) if e.is_retryable() => {
            let ok = ctx.budget_of(Vendor::Gemini).try_retry();
            let delay = ctx
                .policy
                .delay(1, e.retry_after(), fastrand::f64())
                .as_millis() as i64;
            (Some(returned + delay), ok)
        }
        Ok(_) => {
            // A read that answered is a first attempt for the retry budget
            // (reads that failed ask the budget for their retry instead).
            ctx.budget_of(Vendor::Gemini).first_attempt();
            (None, true)
        }
        Err(_) => (None, true),
    };
    let settlement = decide_read(plan, job, result.as_ref(), retry_at);
    let cost = match &result {
        Ok(Transcript { usage: Some(u), .. }) => ctx.prices.cost_of_read(plan.reader, mode, u),
        // No usage reported: the estimate, rather than nothing.
        Ok(_) => ctx.prices.estimate_read(plan.reader, mode),
        Err(_) => 0.0,
    };
    let attempt = AttemptRecord {
        mode,
        started_at: started,
        finished_at: returned,
        outcome: match &result {
            Ok(_) => AttemptOutcome::Ok,
            Err(e) => match e.class {
                ErrorClass::Retryable { .. } => AttemptOutcome::Retry,
                ErrorClass::JobTerminal => AttemptOutcome::JobTerminal,
                ErrorClass::RunTerminal => AttemptOutcome::RunTerminal,
            },
        },
        reason: result.as_ref().err().map(|e| e.reason),
        http_status: result.as_ref().err().and_then(|e| e.http_status),
        detail: result.as_ref().err().map(|e| e.detail.clone()),
        cost_usd: cost,
        read: true,
    };
    ctx.add_spend(cost);
    settle(ctx, job, Some(plan), &settlement, Some(&attempt)).await?;
    let key = job.key.to_string();
    let outcome = match (&settlement, &result) {
        (ReadSettlement::Requeue, Err(e)) => {
            JobOutcome::Stop(StopReason::Provider(e.reason, e.detail.clone()))
        }
        (ReadSettlement::Again { .. }, Err(_)) if !budget_ok => {
            let (f, r) = ctx.budget_of(Vendor::Gemini).counts();
            JobOutcome::Stop(StopReason::RetryBudget(f, r))
        }
        (ReadSettlement::Pass { .. } | ReadSettlement::Kept { .. }, _) => {
            ctx.progress.finished_one("done", &key);
            JobOutcome::Done
        }
        (ReadSettlement::Mismatch { .. }, _) => {
            tracing::warn!(job = %key, reason = Reason::TextMismatch.code(), "painted copy does not match");
            ctx.progress.finished_one("failed", &key);
            JobOutcome::Terminal
        }
        (ReadSettlement::Regenerate { .. }, _) => {
            tracing::info!(job = %key, "painted copy does not match; buying the image again");
            JobOutcome::Retry
        }
        (ReadSettlement::Overlay { .. }, _) => {
            tracing::info!(job = %key, "painted copy does not match; typesetting it onto copy-free art instead");
            JobOutcome::Retry
        }
        _ => JobOutcome::Retry,
    };
    Ok(outcome)
}

/// The image a reader is sent for `job`: its stored file, downscaled.
pub(crate) async fn prepare_read(
    ctx: &Ctx,
    job: &ClaimedRead,
    plan: &QaPlan,
) -> Result<ReadRequest> {
    if let Some(copy) = ctx.read_copies.take(&job.sha256) {
        return Ok(ReadRequest {
            reader: plan.reader,
            image: copy.bytes,
            mime_type: copy.mime_type,
        });
    }
    let path = ctx.campaign_out.join(&job.asset_path);
    let image = tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(&path).map_err(|e| crate::domain::Error::io(&path, e))?;
        crate::imaging::for_reading(&bytes, READ_MAX_SIDE).map_err(|e| {
            crate::domain::Error::Internal(format!(
                "{}: cannot prepare it for reading: {e}",
                path.display()
            ))
        })
    })
    .await
    .map_err(|e| crate::domain::Error::Internal(e.to_string()))??;
    Ok(ReadRequest {
        reader: plan.reader,
        image: image.bytes,
        mime_type: image.mime_type,
    })
}

async fn settle(
    ctx: &Ctx,
    job: &ClaimedRead,
    plan: Option<&QaPlan>,
    s: &ReadSettlement,
    attempt: Option<&AttemptRecord>,
) -> Result<bool> {
    let reader = plan.map(|p| p.reader);
    ctx.store
        .settle_read(job.id, reader, s, attempt, Some(ctx.run))
        .await
}
