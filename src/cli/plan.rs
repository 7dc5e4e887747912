//! `adloc plan`: validate, compare with the state, estimate, report.

use crate::domain::{BillingMode, Error, ExitCode};
use crate::run;
use crate::store::Store;

use super::PlanArgs;

pub(super) async fn plan(a: PlanArgs) -> Result<ExitCode, Error> {
    let (campaign, specs) = run::load_and_expand(&a.campaign_dir)?;
    let planned = match Store::open_existing(&a.state).await? {
        Some(q) => q.preview(&campaign.name, &specs).await?,
        None => crate::store::Planned {
            report: crate::store::SyncReport {
                new: specs.len(),
                to_generate: specs.len(),
                ..Default::default()
            },
            generate: vec![true; specs.len()],
        },
    };
    let r = &planned.report;
    let rt = run::estimate(&campaign, &specs, &planned.generate, BillingMode::Realtime);
    let bt = run::estimate(&campaign, &specs, &planned.generate, BillingMode::Batch);
    let assets = campaign.rows.rows.len() * campaign.locales.len() * campaign.variants.len();
    println!(
        "campaign {}: {} rows × {} locales × {} variants = {assets} assets from {} generations ({})",
        campaign.name,
        campaign.rows.rows.len(),
        campaign.locales.len(),
        campaign.variants.len(),
        specs.len(),
        campaign.model
    );
    println!(
        "  new {}, changed {}, unchanged {} ({} done), retired {}",
        r.new, r.changed, r.unchanged, r.already_done, r.retired
    );
    if r.in_batch > 0 {
        println!("  in remote batches already: {}", r.in_batch);
    }
    println!("  images to pay for: {}", r.to_generate);
    println!("  estimated cost: ${rt:.4} realtime, ${bt:.4} batch");
    if let Some(b) = campaign.budget_usd {
        println!("  budget: ${b:.2}");
    }
    // Overlay savings, every copy fallback (once per row × locale × column)
    // and the overlay fit check.
    for line in crate::expand::report::report(&campaign, &specs) {
        println!("{line}");
    }
    Ok(ExitCode::Success)
}
