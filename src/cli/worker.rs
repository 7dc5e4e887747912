//! `adloc enqueue`, `adloc worker` and `adloc manifest`: the commands for
//! many processes (and hosts) sharing one state.

use std::time::Duration;

use crate::domain::{Error, ExitCode};
use crate::run::{self, RunOptions, WorkerOptions};

use super::run::{cancel_on_signals, max_spend, provider_choice, run_mode};
use super::{EnqueueArgs, ManifestArgs, WorkerArgs, env};

pub(super) async fn enqueue(a: EnqueueArgs) -> Result<ExitCode, Error> {
    let mut opts = RunOptions::new(&a.campaign_dir);
    env::apply(&mut opts);
    opts.provider = provider_choice(a.provider, &opts.env);
    opts.mode = a.mode.map(run_mode);
    opts.state = a.state;
    opts.max_spend = max_spend(a.max_spend)?;
    let q = run::enqueue(&opts).await?;
    let p = &q.planned;
    println!(
        "{}: queued {} job(s) for workers ({} mode, estimate ${:.4}); {} new, {} changed, {} unchanged, {} retired, {} already done",
        q.campaign,
        p.to_generate,
        q.mode.as_str(),
        q.estimate_usd,
        p.new,
        p.changed,
        p.unchanged,
        p.retired,
        p.already_done
    );
    Ok(ExitCode::Success)
}

pub(super) async fn worker(a: WorkerArgs) -> Result<ExitCode, Error> {
    let out = super::output_target(&a.out)?;
    let mut opts = RunOptions::new(".");
    env::apply(&mut opts);
    opts.provider = provider_choice(a.provider, &opts.env);
    opts.out = out;
    opts.concurrency = a.concurrency as usize;
    opts.max_spend = max_spend(a.max_spend)?;
    let cache_dir = run::default_cache_dir(&a.state);
    opts.state = a.state;
    let cancel = cancel_on_signals(
        "interrupt: the worker stops claiming, finishes calls in flight and writes the manifests",
    );
    let summary = run::work(
        WorkerOptions {
            run: opts,
            campaigns: a.campaign,
            until_idle: a.until_idle,
            poll: Duration::from_millis(a.poll_ms),
            cache_dir,
        },
        cancel,
    )
    .await?;
    for (name, s) in &summary.last {
        let t = &s.totals;
        println!(
            "{name}: {} pass(es); {} done, {} failed, {} blocked, {} pending; manifest {}{}",
            summary.passes.get(name).copied().unwrap_or(0),
            t.done,
            t.failed,
            t.blocked,
            t.pending,
            s.manifest_location,
            if s.manifest_written {
                ""
            } else {
                " (written by the runner that ended last)"
            }
        );
    }
    Ok(summary.exit)
}

pub(super) async fn manifest(a: ManifestArgs) -> Result<ExitCode, Error> {
    let out = super::output_target(&a.out)?;
    let name = super::campaign_name(&a.campaign)?;
    let mut opts = RunOptions::new(".");
    env::apply(&mut opts);
    opts.out = out;
    let cache_dir = run::default_cache_dir(&a.state);
    opts.state = a.state;
    let r = run::rebuild_manifest(&opts, &name, &cache_dir).await?;
    let t = &r.totals;
    println!(
        "{name}: {} done, {} failed, {} blocked, {} pending; manifest {}",
        t.done, t.failed, t.blocked, t.pending, r.manifest_location
    );
    Ok(if t.has_failures() {
        ExitCode::PartialFailure
    } else {
        ExitCode::Success
    })
}
