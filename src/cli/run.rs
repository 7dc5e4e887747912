//! `adloc run`: generate what is missing or changed, then summarize.

use std::io::IsTerminal;

use tokio_util::sync::CancellationToken;

use crate::campaign::RunMode;
use crate::domain::{Error, ExitCode, Reason};
use crate::run::{self, RunOptions};

use super::{LogFormat, ModeArg, ProviderArg, RunArgs, env};
use crate::run::ProviderChoice;

pub(super) async fn run_cmd(a: RunArgs, log_format: LogFormat) -> Result<ExitCode, Error> {
    let out = super::output_target(&a.out)?;
    let mut opts = RunOptions::new(&a.campaign_dir);
    env::apply(&mut opts);
    opts.provider = provider_choice(a.provider, &opts.env);
    opts.mode = a.mode.map(run_mode);
    opts.out = out;
    opts.state = a.state;
    opts.concurrency = a.concurrency as usize;
    opts.max_spend = max_spend(a.max_spend)?;
    opts.no_wait = a.no_wait;
    opts.deadline = a.deadline.as_deref().map(parse_deadline).transpose()?;
    opts.deadline_margin = std::time::Duration::from_secs(a.deadline_margin_min * 60);
    opts.progress_bar = log_format == LogFormat::Text && std::io::stderr().is_terminal();
    opts.contact_sheet = a.contact_sheet;

    let cancel = cancel_on_signals(
        "interrupt: stopping dispatch, finishing calls in flight, writing the manifest",
    );
    let s = run::run(opts, cancel).await?;
    let t = &s.totals;
    println!(
        "{}: {} done, {} failed, {} blocked, {} pending ({} provider, {} mode); spent ${:.4}; manifest {}",
        s.campaign,
        t.done,
        t.failed,
        t.blocked,
        t.pending,
        s.provider,
        s.mode,
        s.spent_usd,
        s.manifest_location
    );
    if !s.manifest_written {
        println!(
            "  manifest not written by this run: another runner is still at work on the campaign, and the last to end writes it"
        );
    }
    if let Some(p) = &s.published {
        println!(
            "  bucket: {} object(s) uploaded and read back, {} unchanged, {} deleted; manifest {}",
            p.uploaded, p.unchanged, p.deleted, p.manifest_url
        );
    }
    println!(
        "  this run: {} new, {} changed, {} unchanged, {} retired",
        s.planned.new, s.planned.changed, s.planned.unchanged, s.planned.retired
    );
    if t.qa_pass + t.qa_regenerated + t.qa_fell_back_to_overlay + t.qa_failed > 0 {
        println!(
            "  copy QA: {} passed first time, {} regenerated, {} fell back to overlay, {} failed (text_mismatch); reading cost ${:.4}, regenerations ${:.4}",
            t.qa_pass,
            t.qa_regenerated,
            t.qa_fell_back_to_overlay,
            t.qa_failed,
            t.qa_cost_usd,
            t.qa_regeneration_cost_usd
        );
    }
    for b in &s.batches_left {
        println!("  batch submitted: {b}");
    }
    let r = &s.renditions;
    if r.produced + r.kept + r.removed + r.failed > 0 {
        println!(
            "  renditions: {} written, {} up to date, {} removed, {} masters unusable",
            r.produced, r.kept, r.removed, r.failed
        );
    }
    let p = &s.placements;
    if p.produced + p.kept + p.removed + p.failed > 0 {
        println!(
            "  placements: {} written ({} re-encoded to fit their weight limit), {} up to date, {} removed, {} failed",
            p.produced, p.reencoded, p.kept, p.removed, p.failed
        );
    }
    for p in &s.contact_sheets {
        println!("  contact sheet: {}", p.display());
    }
    if s.stopped.is_none() && s.exit == ExitCode::RunRefused {
        eprintln!(
            "{} job(s) are still pending; run again to finish them",
            t.pending
        );
    }
    if let Some(stop) = &s.stopped {
        eprintln!("stopped: {stop}");
        if stop.reason() == Reason::DailyQuotaExhausted {
            eprintln!(
                "the per-day quota is used up: retrying today is pointless; jobs stay pending for tomorrow's run"
            );
        }
    }
    Ok(s.exit)
}

/// The provider a command uses: the flag, else each variant's model decides
/// among the vendors with a key (local when no key is set, with a notice).
pub(super) fn provider_choice(
    flag: Option<ProviderArg>,
    env: &crate::run::ProviderEnv,
) -> ProviderChoice {
    match flag {
        Some(ProviderArg::Local) => ProviderChoice::Local,
        Some(ProviderArg::Gemini) => ProviderChoice::Gemini,
        Some(ProviderArg::Openai) => ProviderChoice::OpenAi,
        None => {
            let c = env::default_provider(env);
            if c == ProviderChoice::Local {
                eprintln!(
                    "notice: no GEMINI_API_KEY, GOOGLE_API_KEY or OPENAI_API_KEY set; using the local proof renderer (no network, no cost)"
                );
            }
            c
        }
    }
}

pub(super) fn run_mode(m: ModeArg) -> RunMode {
    match m {
        ModeArg::Realtime => RunMode::Realtime,
        ModeArg::Batch => RunMode::Batch,
        ModeArg::Auto => RunMode::Auto,
    }
}

/// A token cancelled by Ctrl-C (printing `notice`) or SIGTERM: both drain.
pub(super) fn cancel_on_signals(notice: &'static str) -> CancellationToken {
    let cancel = CancellationToken::new();
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("{notice}");
                cancel.cancel();
            }
        });
    }
    #[cfg(unix)]
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if let Ok(mut s) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                s.recv().await;
                cancel.cancel();
            }
        });
    }
    cancel
}

/// Check `--max-spend`.
pub(super) fn max_spend(m: Option<f64>) -> Result<Option<f64>, Error> {
    if let Some(m) = m
        && !(m.is_finite() && m >= 0.0)
    {
        return Err(Error::Usage(format!(
            "--max-spend must be a non-negative number, got {m}"
        )));
    }
    Ok(m)
}

/// Parse a deadline: RFC 3339, or `HH:MM` local time today (tomorrow if past).
fn parse_deadline(s: &str) -> Result<jiff::Timestamp, Error> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let bad = || {
        Error::Usage(format!(
            "--deadline `{s}`: expected RFC 3339 (2026-11-28T06:00:00Z) or local HH:MM"
        ))
    };
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let now = jiff::ZonedDateTime::now();
    let today = now
        .date()
        .at(h, m, 0, 0)
        .to_zoned_datetime(now.time_zone().clone())
        .map_err(|_| bad())?;
    let t = if today.timestamp() <= now.timestamp() {
        today
            .checked_add(jiff::Span::new().days(1))
            .map_err(|_| bad())?
    } else {
        today
    };
    Ok(t.timestamp())
}
