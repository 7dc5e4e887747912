//! `adloc cancel`: cancel a campaign's remote batches.

use crate::domain::{Error, ExitCode};
use crate::run::{self, ProviderChoice};

use super::{CancelArgs, env, open_state};

pub(super) async fn cancel(a: CancelArgs) -> Result<ExitCode, Error> {
    let campaign = crate::campaign::Campaign::load(&a.campaign_dir)?;
    let q = open_state(&a.state).await?;
    let provider = run::make_provider(ProviderChoice::Gemini, &campaign, &env::gemini())?;
    let api = provider
        .batch()
        .ok_or_else(|| Error::Internal("gemini provider has no batch API".into()))?;
    let names = run::batch::cancel_all(&q, api, &campaign.name).await?;
    for n in &names {
        println!("cancelled {n}");
    }
    println!(
        "{} batch(es) cancelled; their jobs are pending again",
        names.len()
    );
    Ok(ExitCode::Success)
}
