//! `adloc compare`: each model's sample of a campaign ([`crate::expand::compare`]),
//! estimated first, then made in realtime through the ordinary run (budget,
//! copy QA, state: a rerun finds it done and buys nothing), then judged
//! from the reviewers' votes ([`crate::review::compare`]).

use tokio_util::sync::CancellationToken;

use super::{RunOptions, RunSummary, estimate, run_loaded};
use crate::campaign::{Campaign, RunMode};
use crate::domain::{BillingMode, Error, ExitCode, ModelId, Result};
use crate::expand::compare::{SampleSpec, sample};
use crate::review::compare::{Verdict, sides, verdicts};
use crate::store::Store;

/// What one model's sample costs before it is made.
#[derive(Debug, Clone)]
pub struct Estimate {
    /// The model.
    pub model: String,
    /// Its sample's campaign name.
    pub campaign: String,
    /// Jobs in the sample.
    pub jobs: usize,
    /// Images still to buy.
    pub to_buy: usize,
    /// Estimated USD, realtime.
    pub usd: f64,
}

/// What `adloc compare` did.
#[derive(Debug)]
pub struct Compared {
    /// Per model, before anything was bought.
    pub estimates: Vec<Estimate>,
    /// Per model, the run that made its sample.
    pub runs: Vec<RunSummary>,
    /// Per variant, from the votes so far.
    pub verdicts: Vec<Verdict>,
    /// 0 when every sample was made, else the first run's non-zero code.
    pub exit: ExitCode,
}

/// Make every model's sample of the campaign in `opts.campaign_dir`.
/// Nothing is bought when the estimates together exceed `--max-spend`.
pub async fn compare(
    mut opts: RunOptions,
    models: &[ModelId],
    spec: &SampleSpec,
    cancel: CancellationToken,
) -> Result<Compared> {
    if models.len() < 2 {
        return Err(Error::Usage(
            "--models needs at least two models to compare".into(),
        ));
    }
    let campaign = Campaign::load(&opts.campaign_dir)?;
    let mut samples = Vec::new();
    for m in models {
        let s = sample(&campaign, m, spec).map_err(Error::Usage)?;
        let specs = crate::expand::expand(&s).map_err(Error::Input)?;
        samples.push((m.as_str().to_string(), s, specs));
    }
    let store = Store::open(&opts.state).await?;
    let mut estimates = Vec::new();
    for (model, s, specs) in &samples {
        let planned = store.preview(&s.name, specs).await?;
        estimates.push(Estimate {
            model: model.clone(),
            campaign: s.name.clone(),
            jobs: specs.len(),
            to_buy: planned.generate.iter().filter(|g| **g).count(),
            usd: estimate(s, specs, &planned.generate, &[], BillingMode::Realtime),
        });
    }
    let total: f64 = estimates.iter().map(|e| e.usd).sum();
    if let Some(max) = opts.max_spend
        && total > max
    {
        store.close().await;
        return Err(Error::OverBudget {
            estimate: total,
            budget: max,
            source_of_budget: "--max-spend (all models together)".into(),
        });
    }
    let cap = opts.max_spend;
    opts.mode = Some(RunMode::Realtime);
    let mut runs = Vec::new();
    let mut spent = 0.0;
    for (_, s, specs) in samples {
        opts.max_spend = cap.map(|m| (m - spent).max(0.0));
        let r = run_loaded(&opts, cancel.clone(), &s, specs).await?;
        spent += r.spent_usd;
        runs.push(r);
    }
    let wanted: Vec<&str> = models.iter().map(ModelId::as_str).collect();
    let mut all = sides(&store, &campaign.name).await?;
    all.retain(|s| wanted.contains(&s.model.as_str()));
    let votes = store.votes(&campaign.name).await?;
    store.close().await;
    let exit = runs
        .iter()
        .map(|r| r.exit)
        .find(|e| *e != ExitCode::Success)
        .unwrap_or(ExitCode::Success);
    Ok(Compared {
        estimates,
        runs,
        verdicts: verdicts(&all, &votes),
        exit,
    })
}
