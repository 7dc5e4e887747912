//! `adloc retry`: requeue failed and/or blocked jobs, or redo fallbacks.

use crate::domain::{Error, ExitCode};

use super::{RetryArgs, open_state};

pub(super) async fn retry(a: RetryArgs) -> Result<ExitCode, Error> {
    if !a.failed && !a.blocked && !a.fallbacks {
        return Err(Error::Usage(
            "say which jobs to requeue: --failed, --blocked, --fallbacks, or several".into(),
        ));
    }
    let q = open_state(&a.state).await?;
    if a.fallbacks {
        let n = q.retry_fallbacks(&a.campaign).await?;
        println!(
            "{n} job(s) made by a fallback model will be asked of their primary model on the next run"
        );
    }
    if a.failed || a.blocked {
        let n = q.requeue(&a.campaign, a.failed, a.blocked).await?;
        println!("{n} job(s) requeued; run the campaign to generate them");
    }
    Ok(ExitCode::Success)
}
