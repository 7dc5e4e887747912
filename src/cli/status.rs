//! `adloc status`: jobs by state, open batches and spend; with a campaign
//! folder (and a key) it also polls and ingests finished batches.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::domain::{Error, ExitCode};
use crate::run::{self, ProviderChoice, RunOptions};

use super::{StatusArgs, env, open_state};

pub(super) async fn status(a: StatusArgs) -> Result<ExitCode, Error> {
    let mut name = a.campaign.clone();
    if let Some(dir) = a.campaign.as_deref().map(Path::new)
        && dir.join("campaign.toml").is_file()
    {
        let campaign = crate::campaign::Campaign::load(dir)?;
        name = Some(campaign.name.clone());
        if env::default_provider(&env::providers()) == ProviderChoice::ByModel && a.state.exists() {
            let mut opts = RunOptions::new(dir);
            env::apply(&mut opts);
            opts.provider = ProviderChoice::ByModel;
            opts.out = super::output_target(&a.out)?;
            opts.state = a.state.clone();
            opts.ingest_only = true;
            let s = run::run(opts, CancellationToken::new()).await?;
            println!(
                "ingested what was ready: {} done, {} pending; manifest {}",
                s.totals.done, s.totals.pending, s.manifest_location
            );
        }
    }
    let q = open_state(&a.state).await?;
    let campaigns = match &name {
        Some(c) => vec![c.clone()],
        None => q.campaigns().await?,
    };
    for c in campaigns {
        let s = q.status(Some(&c)).await?;
        let states: Vec<String> = s.by_state.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("{c}: {}", states.join(", "));
        for (display, remote, state) in &s.open_batches {
            println!(
                "  batch {} ({}) {state}",
                remote.as_deref().unwrap_or("-"),
                display
            );
        }
        println!("  spent so far: ${:.4}", s.spent_usd);
    }
    Ok(ExitCode::Success)
}
