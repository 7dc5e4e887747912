//! `adloc compare`: one sample per model, estimated, made and summarized.

use crate::domain::{Error, ExitCode, ModelId};
use crate::expand::compare::SampleSpec;
use crate::run::{self, RunOptions};

use super::{CompareArgs, env};

pub(super) async fn compare(a: CompareArgs) -> Result<ExitCode, Error> {
    let out = super::output_target(&a.out)?;
    let mut models = Vec::new();
    for m in &a.models {
        let id: ModelId = m
            .trim()
            .parse()
            .map_err(|e| Error::Usage(format!("--models: {e}")))?;
        if !models.contains(&id) {
            models.push(id);
        }
    }
    let mut opts = RunOptions::new(&a.campaign_dir);
    env::apply(&mut opts);
    opts.provider = super::run::provider_choice(None, &opts.env);
    opts.out = out;
    opts.state = a.state;
    opts.concurrency = a.concurrency as usize;
    opts.max_spend = super::run::max_spend(a.max_spend)?;
    let spec = SampleSpec {
        rows: a.rows as usize,
        locales: a.locales,
        variants: a.variants,
    };
    let cancel = super::run::cancel_on_signals(
        "interrupt: stopping dispatch, finishing calls in flight, writing the manifests",
    );
    let c = run::compare::compare(opts, &models, &spec, cancel).await?;
    for e in &c.estimates {
        println!(
            "{} ({}): {} job(s), {} image(s) to buy, estimated ${:.4} (realtime)",
            e.model, e.campaign, e.jobs, e.to_buy, e.usd
        );
    }
    for r in &c.runs {
        println!(
            "{}: {} done, {} failed, {} blocked; spent ${:.4}; manifest {}",
            r.campaign,
            r.totals.done,
            r.totals.failed,
            r.totals.blocked,
            r.spent_usd,
            r.manifest_location
        );
    }
    for v in &c.verdicts {
        println!(
            "variant {}: {}",
            v.variant,
            v.winner.as_deref().map_or(
                "no winner yet (vote in adloc review serve, /compare/)".to_string(),
                |w| { format!("{w} won") }
            )
        );
        for s in &v.scores {
            println!(
                "  {}: {} vote(s), {} image(s), ${:.4} per image{}",
                s.model,
                s.votes,
                s.images,
                s.cost_per_image,
                s.latency_ms
                    .map_or(String::new(), |l| format!(", {l:.0} ms per call"))
            );
        }
        println!("  {}", v.model_line);
    }
    Ok(c.exit)
}
