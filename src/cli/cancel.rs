//! `adloc cancel`: cancel a campaign's remote batches.

use crate::domain::{Error, ExitCode};
use crate::run;
use crate::run::ProviderChoice;

use super::{CancelArgs, env, open_state};

pub(super) async fn cancel(a: CancelArgs) -> Result<ExitCode, Error> {
    let campaign = crate::campaign::Campaign::load(&a.campaign_dir)?;
    let q = open_state(&a.state).await?;
    let providers = run::make_providers(ProviderChoice::ByModel, &campaign, &env::providers())?;
    let names = run::batch::cancel_all(&q, &providers, &campaign.name).await?;
    for n in &names {
        println!("cancelled {n}");
    }
    println!(
        "{} batch(es) cancelled; their jobs are pending again",
        names.len()
    );
    Ok(ExitCode::Success)
}
