//! `adloc plan`: validate, compare with the state, estimate, report.

use crate::domain::{BillingMode, Error, ExitCode};
use crate::run;
use crate::store::Store;

use super::PlanArgs;

pub(super) async fn plan(a: PlanArgs) -> Result<ExitCode, Error> {
    let (campaign, specs) = run::load_and_expand(&a.campaign_dir)?;
    let store = Store::open_existing(&a.state).await?;
    let planned = match &store {
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
    // Edits of images made earlier (revisions of rejected images, and
    // `text = "edit"` locales re-edited after their base changes) are paid
    // for like any image, plus the image sent.
    let edits = match &store {
        Some(q) => {
            q.planned_edits(&campaign.name, &specs, &planned.generate)
                .await?
        }
        None => vec![false; specs.len()],
    };
    let g = &planned.generate;
    let rt = run::estimate(&campaign, &specs, g, &edits, BillingMode::Realtime);
    let bt = run::estimate(&campaign, &specs, g, &edits, BillingMode::Batch);
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
    let buys = |i: usize| g[i] || edits[i];
    let locale_edits = (0..specs.len())
        .filter(|&i| buys(i) && specs[i].copy_edit.is_some())
        .count();
    let revisions = (0..specs.len())
        .filter(|&i| edits[i] && specs[i].copy_edit.is_none())
        .count();
    if locale_edits + revisions > 0 {
        println!(
            "  edits to pay for: {} ({locale_edits} locale edit(s) of a base image, {revisions} revision(s) of rejected images), in the estimate at the edit price (the image out plus the image sent)",
            locale_edits + revisions
        );
    }
    println!("  estimated cost: ${rt:.4} realtime, ${bt:.4} batch");
    let wrt = run::estimate_worst(&campaign, &specs, g, &edits, BillingMode::Realtime);
    let wbt = run::estimate_worst(&campaign, &specs, g, &edits, BillingMode::Batch);
    if wrt > rt || wbt > bt {
        println!(
            "  worst case if every job fell back to the dearest model of its chain: ${wrt:.4} realtime, ${wbt:.4} batch (the budget check uses this)"
        );
    }
    let today = jiff::Timestamp::now().to_string();
    let today = today.get(..10).unwrap_or("");
    // Copy QA's reads next to the image cost; nothing without [qa].
    for line in crate::expand::report::qa_report(&campaign, &specs, &planned.generate, today) {
        println!("{line}");
    }
    for v in &campaign.variants {
        let chain: Vec<String> = v
            .models
            .iter()
            .map(|m| match v.quality_for(m) {
                Some(q) => format!("{m} (quality {q})"),
                None => m.to_string(),
            })
            .collect();
        let line = if v.models.len() > 1 {
            let on: Vec<&str> = v.fallback_on.iter().map(|t| t.as_str()).collect();
            format!("{}; falls back on {}", chain.join(" → "), on.join(", "))
        } else {
            chain.join("")
        };
        println!("  variant {}: {line}", v.name);
    }
    let mut warned = Vec::new();
    for m in campaign.variants.iter().flat_map(|v| &v.models) {
        if warned.contains(&m) {
            continue;
        }
        warned.push(m);
        if let Some((on, replacement)) = crate::domain::shutdown_within(m.as_str(), today, 30) {
            println!("  warning: {m} shuts down on {on}, within 30 days; switch to {replacement}");
        }
        if let Some((on, replacement)) = crate::domain::shutdown_overdue(m.as_str(), today) {
            println!(
                "  warning: {m} is past its earliest announced shutdown date ({on}) and may stop being served at any time; switch to {replacement}"
            );
        }
    }
    if let Some(b) = campaign.budget_usd {
        println!("  budget: ${b:.2}");
    }
    // Once per plan: the EU AI Act's marking is met by the IPTC XMP alone,
    // but platforms that show Content Credentials need the signed manifest.
    match crate::assets::provenance::installed() {
        None => println!(
            "  warning: assets will be delivered unsigned (IPTC AI marking only, no C2PA Content Credentials); set ADLOC_C2PA_CERT and ADLOC_C2PA_KEY to sign them"
        ),
        Some(signer) => match &signer.time_stamps {
            Some(tsa) => println!(
                "  signing: C2PA Content Credentials as {}, time-stamped by {tsa}",
                signer.subject
            ),
            None => println!(
                "  signing: C2PA Content Credentials as {} (no trusted time stamp: set ADLOC_C2PA_TSA_URL for one)",
                signer.subject
            ),
        },
    }
    // Overlay savings, every copy fallback (once per row × locale × column)
    // and the overlay fit check.
    for line in crate::expand::report::report(&campaign, &specs) {
        println!("{line}");
    }
    Ok(ExitCode::Success)
}
