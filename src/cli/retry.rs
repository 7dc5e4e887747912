//! `adloc retry`: requeue failed and/or blocked jobs.

use crate::domain::{Error, ExitCode};

use super::{RetryArgs, open_state};

pub(super) async fn retry(a: RetryArgs) -> Result<ExitCode, Error> {
    if !a.failed && !a.blocked {
        return Err(Error::Usage(
            "say which jobs to requeue: --failed, --blocked, or both".into(),
        ));
    }
    let q = open_state(&a.state).await?;
    let n = q.requeue(&a.campaign, a.failed, a.blocked).await?;
    println!("{n} job(s) requeued; run the campaign to generate them");
    Ok(ExitCode::Success)
}
