//! Adaptive pacing of realtime calls: one pacer per vendor, learning the
//! rate the service allows instead of assuming one.
//!
//! Decisions recorded here:
//!
//! - **A token-interval pacer with a mutable rate**, not a fixed quota
//!   (governor's GCRA quota cannot change once built). The next call may
//!   start one interval (`60 s / rate`, at the rate of that moment) after
//!   the previous one, so the pace does not depend on how many calls are in
//!   flight: the pool's concurrency bounds those, the pacer bounds how fast
//!   they start. Nothing is reserved ahead: waiting calls queue in order
//!   and the first takes its turn when it is due, so a new rate, a hold or
//!   a learned limit applies to the very next start (a queue of slots
//!   reserved at a default of 20 a minute would keep eight workers asleep
//!   for 24 s after the service said 600). No burst is granted after
//!   idling: a smooth stream of starts is what a server-side limiter
//!   (quantized to the second, see below) accepts best.
//! - **AIMD, like TCP congestion control.** Until the first refusal the
//!   rate grows fast (slow start: ×[`PROBE_GROWTH`] per paced success, and
//!   at most ×[`PROBE_PER_SECOND`] a second); the first 429 halves it
//!   (slow start overshoots by up to that much), later ones multiply it by
//!   [`BACKOFF`]; afterwards it grows gently (×[`CLIMB_GROWTH`] per paced
//!   success, at most ×[`CLIMB_PER_SECOND`] a second), probing the limit
//!   again without hammering it. The growth is bounded in time as well as
//!   per call because a service's limiter holds some credit (a second's
//!   worth, or a minute's): it refuses only once that is spent, so the
//!   feedback comes late, and growth per call alone would be exponential
//!   in time at high rates. Only a success that had to wait for its turn
//!   counts ("paced"): when concurrency, not the pacer, holds the calls
//!   back, the rate stays where it is instead of growing without bound
//!   (RFC 7661's rule for an application-limited sender).
//! - **One decrease per round.** A 429 decreases the rate only if its call
//!   started after the last decrease: the calls already in flight at the
//!   old rate come back refused together, and they are one signal, not
//!   several (TCP reduces once per round trip for the same reason).
//! - **The server's word wins.** A 429's retry delay (`RetryInfo`,
//!   `retry-after-ms`, `Retry-After`) holds every call to the vendor until
//!   it has passed. OpenAI's `x-ratelimit-*-requests` headers (sent on
//!   successes too, https://platform.openai.com/docs/guides/rate-limits
//!   "Rate limits in headers") state the limit: it becomes the learned rate
//!   and a ceiling, and `remaining: 0` holds calls until the `reset` time.
//!   Gemini sends no such headers: it is paced on 429s alone.
//! - **The user's `[rate_limit] rpm` is a ceiling**, and the starting rate
//!   (it names the tier the user pays for); without it the pacer starts
//!   from the model family's published default and has no ceiling but what
//!   the service states.
//!
//! The decisions are a pure state machine ([`PaceState`]) over an injected
//! clock, so tests check them without sleeping; [`Pacer`] wraps it for the
//! workers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Generated, ProviderError, Reason};
use crate::domain::Vendor;

/// The rate after a 429 (but the first): this fraction of the rate the
/// refused call was paced at. The rate then saws between it and the limit,
/// averaging about 0.9 of the limit (TCP's 0.5 would average 0.75, under
/// the 0.8 we aim for).
pub const BACKOFF: f64 = 0.8;
/// The rate after the first 429, which ends the slow start: halved, as
/// TCP does, since the slow start may have overshot by about that much.
pub const PROBE_BACKOFF: f64 = 0.5;
/// Slow start: growth per paced success before the first refusal (×1.1).
pub const PROBE_GROWTH: f64 = 0.1;
/// Slow start: growth per second at most (doubling).
pub const PROBE_PER_SECOND: f64 = 2.0;
/// Growth per paced success after a refusal (×1.01): back from a backoff
/// to the old rate in about 22 calls.
pub const CLIMB_GROWTH: f64 = 0.01;
/// Growth per second at most after a refusal (×1.1).
pub const CLIMB_PER_SECOND: f64 = 1.1;
/// The learned rate starts this far under a limit the service states, so
/// timing noise between client and server does not empty its bucket.
pub const STATED_HEADROOM: f64 = 0.95;
/// Never slower than one request per minute (a stuck pacer would look like
/// a hung run).
pub const MIN_RPM: f64 = 1.0;

/// What OpenAI's `x-ratelimit-*-requests` headers say (every field
/// optional: the headers are sometimes absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestLimits {
    /// `x-ratelimit-limit-requests`: requests allowed per minute.
    pub limit: Option<u32>,
    /// `x-ratelimit-remaining-requests`: requests left before the limit.
    pub remaining: Option<u32>,
    /// `x-ratelimit-reset-requests`: time until the limit is back to its
    /// initial state.
    pub reset: Option<Duration>,
}

impl RequestLimits {
    /// True when no header was there.
    pub fn is_empty(&self) -> bool {
        self.limit.is_none() && self.remaining.is_none() && self.reset.is_none()
    }
}

/// A granted start: the pacer's decreases so far when it was granted, and
/// whether the call had to wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// Decreases so far when the start was granted.
    epoch: u64,
    /// The call had to wait (the pacer, not concurrency, was what held it
    /// back).
    paced: bool,
}

/// The pacer's decisions, over an injected clock.
#[derive(Debug, Clone)]
pub struct PaceState {
    rate: f64,
    ceiling: Option<f64>,
    stated: Option<f64>,
    probing: bool,
    /// When the rate last grew (growth is bounded per second).
    grown_at: Option<Instant>,
    /// When the last call was let start.
    last_start: Option<Instant>,
    hold_until: Option<Instant>,
    epoch: u64,
}

impl PaceState {
    /// A pacer starting at `start_rpm`, never above `ceiling_rpm` (the
    /// user's `[rate_limit] rpm`) when set.
    pub fn new(start_rpm: u32, ceiling_rpm: Option<u32>) -> Self {
        let ceiling = ceiling_rpm.map(|c| f64::from(c).max(MIN_RPM));
        let mut s = PaceState {
            rate: f64::from(start_rpm).max(MIN_RPM),
            ceiling,
            stated: None,
            probing: true,
            grown_at: None,
            last_start: None,
            hold_until: None,
            epoch: 0,
        };
        s.rate = s.capped(s.rate);
        s
    }

    /// The current rate, requests per minute.
    pub fn rate_rpm(&self) -> f64 {
        self.rate
    }

    /// No call starts before this (a server's retry delay or reset).
    #[cfg(test)]
    pub fn hold_until(&self) -> Option<Instant> {
        self.hold_until
    }

    fn interval(&self) -> Duration {
        Duration::from_secs_f64(60.0 / self.rate)
    }

    fn capped(&self, rate: f64) -> f64 {
        let mut r = rate.max(MIN_RPM);
        if let Some(c) = self.ceiling {
            r = r.min(c);
        }
        if let Some(s) = self.stated {
            r = r.min(s);
        }
        r
    }

    /// When the next call may start: an interval at the current rate after
    /// the last, and not before a hold ends. `None`: at once.
    pub fn due(&self) -> Option<Instant> {
        let after_last = self.last_start.map(|l| l + self.interval());
        match (after_last, self.hold_until) {
            (Some(a), Some(h)) => Some(a.max(h)),
            (a, h) => a.or(h),
        }
    }

    /// Let a call start at `now` if it is due, else say when it will be.
    /// `waited`: the caller already waited for its turn.
    pub fn take(&mut self, now: Instant, waited: bool) -> Result<Ticket, Instant> {
        let due = self.due();
        if let Some(d) = due
            && now < d
        {
            return Err(d);
        }
        // A caller woken a little late keeps the schedule (the lateness is
        // not lost throughput); after an idle spell the schedule restarts
        // from now, so idling buys no burst.
        self.last_start = Some(match due {
            Some(d) if now.saturating_duration_since(d) < self.interval() => d,
            _ => now,
        });
        Ok(Ticket {
            epoch: self.epoch,
            paced: waited,
        })
    }

    fn hold(&mut self, now: Instant, wait: Duration) {
        let until = now + wait;
        if self.hold_until.is_none_or(|h| h < until) {
            self.hold_until = Some(until);
        }
    }

    /// One decrease per round: only for a call paced after the last one.
    fn back_off(&mut self, ticket: &Ticket) {
        if ticket.epoch == self.epoch {
            let factor = if self.probing { PROBE_BACKOFF } else { BACKOFF };
            self.rate = self.capped(self.rate * factor);
            self.epoch += 1;
            self.probing = false;
        }
    }

    fn learn(&mut self, limits: &RequestLimits) {
        if let Some(limit) = limits.limit.filter(|l| *l > 0) {
            let stated = f64::from(limit);
            if self.stated != Some(stated) {
                // A new statement of the limit: start just under it (or
                // under the user's ceiling), then climb gently.
                self.stated = Some(stated);
                self.rate = self.capped(stated * STATED_HEADROOM);
                self.probing = false;
            }
        }
    }

    /// A call answered normally (with the headers it carried, if any).
    pub fn on_success(&mut self, ticket: &Ticket, limits: Option<&RequestLimits>, now: Instant) {
        if let Some(l) = limits {
            self.learn(l);
            if l.remaining == Some(0) {
                // Nothing left until the reset: the next call would be
                // refused. Wait it out, and slow down as for a refusal.
                let wait = l.reset.unwrap_or_else(|| self.interval());
                self.back_off(ticket);
                self.hold(now, wait);
                return;
            }
        }
        if ticket.paced {
            let (per_call, per_second) = if self.probing {
                (PROBE_GROWTH, PROBE_PER_SECOND)
            } else {
                (CLIMB_GROWTH, CLIMB_PER_SECOND)
            };
            let mut factor = 1.0 + per_call;
            if let Some(t) = self.grown_at {
                let dt = now.saturating_duration_since(t).as_secs_f64();
                factor = factor.min(per_second.powf(dt));
            }
            self.rate = self.capped(self.rate * factor);
            self.grown_at = Some(now);
        }
    }

    /// A call refused for its rate (a 429 that is not a daily quota):
    /// decrease the rate and hold every call for the server's delay.
    pub fn on_throttled(
        &mut self,
        ticket: &Ticket,
        retry_after: Option<Duration>,
        limits: Option<&RequestLimits>,
        now: Instant,
    ) {
        if let Some(l) = limits {
            self.learn(l);
        }
        self.back_off(ticket);
        let wait = retry_after
            .or_else(|| limits.and_then(|l| l.reset))
            .unwrap_or_else(|| self.interval());
        self.hold(now, wait);
    }

    /// Any other failure: only what its headers say.
    pub fn on_other(&mut self, limits: Option<&RequestLimits>) {
        if let Some(l) = limits {
            self.learn(l);
        }
    }
}

/// A vendor's pacer, shared by the workers of its pool.
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<PaceState>,
    /// Waiting calls queue here in order (tokio's mutex is fair); only the
    /// first of them watches the clock.
    turn: tokio::sync::Mutex<()>,
    /// Wakes the waiting call when an answer changed the pace.
    changed: tokio::sync::Notify,
}

impl Pacer {
    /// A pacer starting at `start_rpm`, capped by `ceiling_rpm` when set.
    pub fn new(start_rpm: u32, ceiling_rpm: Option<u32>) -> Self {
        Pacer {
            state: Mutex::new(PaceState::new(start_rpm, ceiling_rpm)),
            turn: tokio::sync::Mutex::new(()),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut PaceState) -> R) -> R {
        // A panic elsewhere while holding the lock leaves a usable state:
        // every update is a few assignments.
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// The current rate, requests per minute.
    #[cfg(test)]
    pub fn rate_rpm(&self) -> f64 {
        self.with(|s| s.rate_rpm())
    }

    /// Wait for this call's turn to start; the ticket goes back with the
    /// call's outcome ([`Self::observe`]).
    pub async fn acquire(&self) -> Ticket {
        let (_turn, mut waited) = match self.turn.try_lock() {
            Ok(g) => (g, false),
            Err(_) => (self.turn.lock().await, true),
        };
        loop {
            let changed = self.changed.notified();
            match self.with(|s| s.take(Instant::now(), waited)) {
                Ok(ticket) => return ticket,
                Err(due) => {
                    waited = true;
                    // A faster pace learned meanwhile makes it due sooner.
                    tokio::select! {
                        _ = tokio::time::sleep_until(tokio::time::Instant::from_std(due)) => {}
                        _ = changed => {}
                    }
                }
            }
        }
    }

    /// Learn from a realtime call's outcome.
    pub fn observe(&self, ticket: &Ticket, result: &Result<Generated, ProviderError>) {
        let now = Instant::now();
        self.with(|s| match result {
            Ok(g) => s.on_success(ticket, g.limits.as_ref(), now),
            Err(e) if e.reason == Reason::RateLimited && e.is_retryable() => {
                s.on_throttled(ticket, e.retry_after(), e.limits.as_ref(), now);
                tracing::debug!(rpm = s.rate_rpm(), "rate limited: pacing slower");
            }
            Err(e) => s.on_other(e.limits.as_ref()),
        });
        self.changed.notify_waiters();
    }
}

/// The run's pacers, one per vendor, made on first use so what one learned
/// carries over to the run's later dispatch rounds.
#[derive(Debug, Default)]
pub struct Pacers {
    by_vendor: Mutex<HashMap<Vendor, Arc<Pacer>>>,
}

impl Pacers {
    /// The vendor's pacer, made with `start_rpm` and `ceiling_rpm` if new.
    pub fn get_or_make(
        &self,
        vendor: Vendor,
        start_rpm: u32,
        ceiling_rpm: Option<u32>,
    ) -> Arc<Pacer> {
        let mut g = self.by_vendor.lock().unwrap_or_else(|p| p.into_inner());
        g.entry(vendor)
            .or_insert_with(|| Arc::new(Pacer::new(start_rpm, ceiling_rpm)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A call arriving at `now` that waits for its turn as
    /// [`Pacer::acquire`] does: when it starts, and its ticket.
    fn start(p: &mut PaceState, mut now: Instant) -> (Instant, Ticket) {
        let mut waited = false;
        loop {
            match p.take(now, waited) {
                Ok(t) => return (now, t),
                Err(due) => {
                    assert!(due > now, "a due time in the past");
                    now = due;
                    waited = true;
                }
            }
        }
    }

    #[test]
    fn starts_are_spaced_by_the_rate_without_an_idle_burst() {
        let t0 = Instant::now();
        let mut p = PaceState::new(600, None);
        let (a, ta) = start(&mut p, t0);
        let (b, tb) = start(&mut p, t0);
        let (c, _) = start(&mut p, t0);
        assert_eq!(a, t0);
        assert!(!ta.paced, "the first call does not wait");
        assert_eq!(b - a, ms(100));
        assert_eq!(c - b, ms(100));
        assert!(tb.paced);
        // After a long idle spell the next call starts at once, and the one
        // after it an interval later: idling buys no burst.
        let later = t0 + Duration::from_secs(60);
        let (d, _) = start(&mut p, later);
        let (e, _) = start(&mut p, later);
        assert_eq!(d, later);
        assert_eq!(e - d, ms(100));
    }

    #[test]
    fn the_users_rpm_is_a_ceiling_the_rate_never_passes() {
        let t0 = Instant::now();
        let mut p = PaceState::new(100, Some(120));
        assert_eq!(p.rate_rpm(), 100.0);
        let mut now = t0;
        let mut last = None;
        for _ in 0..500 {
            let (at, t) = start(&mut p, now);
            if let Some(prev) = last {
                // Never closer than 60 s / 120 = 500 ms.
                assert!(at - prev >= ms(500), "{:?}", at - prev);
            }
            last = Some(at);
            now = at;
            p.on_success(&t, None, now);
        }
        assert_eq!(p.rate_rpm(), 120.0);
        // A server stating a higher limit does not lift it either.
        let (_, t) = start(&mut p, now);
        p.on_success(
            &t,
            Some(&RequestLimits {
                limit: Some(10_000),
                remaining: Some(9_999),
                reset: Some(ms(6)),
            }),
            now,
        );
        assert_eq!(p.rate_rpm(), 120.0);
        // And a start rate above the ceiling is brought down to it.
        assert_eq!(PaceState::new(500, Some(50)).rate_rpm(), 50.0);
    }

    #[test]
    fn without_a_ceiling_paced_successes_climb_past_the_default() {
        let t0 = Instant::now();
        let mut p = PaceState::new(20, None);
        let mut now = t0;
        for _ in 0..60 {
            let (at, t) = start(&mut p, now);
            now = at;
            p.on_success(&t, None, now);
        }
        assert!(p.rate_rpm() > 600.0, "{}", p.rate_rpm());
    }

    #[test]
    fn growth_is_bounded_per_second_as_well_as_per_call() {
        // Paced successes every 10 ms: ×1.1 each would be ×14,000 a second.
        let t0 = Instant::now();
        let mut p = PaceState::new(6_000, None);
        let mut now = t0;
        let (_, t) = start(&mut p, now);
        p.on_success(&t, None, now);
        for _ in 0..100 {
            let (at, t) = start(&mut p, now);
            now = at.max(now + ms(10));
            p.on_success(&t, None, now);
        }
        let secs = (now - t0).as_secs_f64();
        let most = 6_000.0 * (1.0 + PROBE_GROWTH) * PROBE_PER_SECOND.powf(secs);
        assert!(
            p.rate_rpm() <= most * 1.000_001,
            "{} > {most}",
            p.rate_rpm()
        );
        assert!(p.rate_rpm() > 6_000.0);
    }

    #[test]
    fn successes_that_did_not_wait_do_not_raise_the_rate() {
        // Concurrency-bound: every call arrives after its slot.
        let t0 = Instant::now();
        let mut p = PaceState::new(60, None);
        let mut now = t0;
        for _ in 0..50 {
            let (_, t) = start(&mut p, now);
            assert!(!t.paced);
            p.on_success(&t, None, now);
            now += Duration::from_secs(2);
        }
        assert_eq!(p.rate_rpm(), 60.0);
    }

    #[test]
    fn a_429_backs_off_once_per_round_and_holds_for_the_servers_delay() {
        let t0 = Instant::now();
        let mut p = PaceState::new(600, None);
        let tickets: Vec<(Instant, Ticket)> = (0..4).map(|_| start(&mut p, t0)).collect();
        // Four calls in flight at the old pace all come back refused.
        let now = t0 + ms(350);
        for (_, t) in &tickets {
            p.on_throttled(t, Some(ms(2_000)), None, now);
        }
        assert_eq!(
            p.rate_rpm(),
            600.0 * PROBE_BACKOFF,
            "one decrease, not four"
        );
        assert_eq!(p.hold_until(), Some(now + ms(2_000)));
        // The next call waits out the hold.
        let (at, t) = start(&mut p, now);
        assert_eq!(at, now + ms(2_000));
        // The hold never shrinks: a shorter delay does not cut it.
        let (_, stale) = tickets[0];
        p.on_throttled(&stale, Some(ms(10)), None, now + ms(5));
        assert_eq!(p.hold_until(), Some(now + ms(2_000)));
        assert_eq!(p.rate_rpm(), 600.0 * PROBE_BACKOFF);
        // A refusal of a call paced after the decrease decreases again,
        // by less now that the slow start is over.
        p.on_throttled(&t, Some(ms(10)), None, at + ms(5));
        assert_eq!(p.rate_rpm(), 600.0 * PROBE_BACKOFF * BACKOFF);
        assert_eq!(p.hold_until(), Some(at + ms(15)));
    }

    #[test]
    fn after_a_429_the_climb_is_gentle_and_never_below_the_floor() {
        let t0 = Instant::now();
        let mut p = PaceState::new(100, None);
        let (_, t) = start(&mut p, t0);
        p.on_throttled(&t, None, None, t0);
        let backed = p.rate_rpm();
        let (at, t) = start(&mut p, t0);
        p.on_success(&t, None, at);
        assert!((p.rate_rpm() - backed * (1.0 + CLIMB_GROWTH)).abs() < 1e-9);
        // Refusals without end never take the rate under MIN_RPM.
        let mut now = at;
        for _ in 0..200 {
            let (at, t) = start(&mut p, now);
            now = at;
            p.on_throttled(&t, Some(ms(1)), None, now);
        }
        assert_eq!(p.rate_rpm(), MIN_RPM);
    }

    #[test]
    fn a_stated_limit_sets_the_rate_and_caps_the_climb() {
        let t0 = Instant::now();
        let mut p = PaceState::new(20, None);
        let (at, t) = start(&mut p, t0);
        let limits = RequestLimits {
            limit: Some(600),
            remaining: Some(9),
            reset: Some(ms(100)),
        };
        p.on_success(&t, Some(&limits), at);
        assert_eq!(p.rate_rpm(), 600.0 * STATED_HEADROOM);
        let mut now = at;
        for _ in 0..500 {
            let (at, t) = start(&mut p, now);
            now = at;
            p.on_success(&t, Some(&limits), now);
        }
        assert_eq!(p.rate_rpm(), 600.0);
        // Under a user's ceiling the stated limit only lowers it.
        let mut q = PaceState::new(100, Some(100));
        let (at, t) = start(&mut q, t0);
        q.on_success(&t, Some(&limits), at);
        assert_eq!(q.rate_rpm(), 100.0);
    }

    #[test]
    fn a_faster_pace_learned_while_calls_wait_applies_to_the_next_start() {
        // At 20 a minute the second call is due 3 s after the first; the
        // first answer states 600, and the second is due 105 ms after the
        // first instead (at 570, the stated limit less the headroom).
        let t0 = Instant::now();
        let mut p = PaceState::new(20, None);
        let (_, t) = start(&mut p, t0);
        assert_eq!(p.due(), Some(t0 + Duration::from_secs(3)));
        p.on_success(
            &t,
            Some(&RequestLimits {
                limit: Some(600),
                remaining: Some(9),
                reset: Some(ms(100)),
            }),
            t0 + ms(50),
        );
        let (at, _) = start(&mut p, t0 + ms(50));
        assert_eq!(at, t0 + Duration::from_secs_f64(60.0 / 570.0));
    }

    #[test]
    fn nothing_remaining_holds_calls_until_the_reset() {
        let t0 = Instant::now();
        let mut p = PaceState::new(600, None);
        let (_, t1) = start(&mut p, t0);
        let now = t0 + ms(50);
        p.on_success(
            &t1,
            Some(&RequestLimits {
                limit: Some(600),
                remaining: Some(0),
                reset: Some(Duration::from_secs(1)),
            }),
            now,
        );
        assert_eq!(p.hold_until(), Some(now + Duration::from_secs(1)));
        let (at, _) = start(&mut p, now);
        assert_eq!(at, now + Duration::from_secs(1));
    }

    #[test]
    fn other_failures_neither_hold_nor_slow_down() {
        let t0 = Instant::now();
        let mut p = PaceState::new(300, None);
        start(&mut p, t0);
        p.on_other(None);
        assert_eq!(p.rate_rpm(), 300.0);
        assert_eq!(p.hold_until(), None);
        assert_eq!(p.due(), Some(t0 + ms(200)));
    }

    #[test]
    fn pacers_are_one_per_vendor_and_keep_what_they_learned() {
        let pacers = Pacers::default();
        let a = pacers.get_or_make(Vendor::OpenAi, 20, None);
        let t0 = Instant::now();
        a.with(|s| {
            let (_, t) = start(s, t0);
            s.on_throttled(&t, None, None, t0);
        });
        let again = pacers.get_or_make(Vendor::OpenAi, 20, None);
        assert_eq!(again.rate_rpm(), 20.0 * PROBE_BACKOFF);
        let g = pacers.get_or_make(Vendor::Gemini, 500, None);
        assert_eq!(g.rate_rpm(), 500.0);
    }
}
