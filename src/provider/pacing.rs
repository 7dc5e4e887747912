//! Adaptive pacing of realtime calls: one pacer per vendor, learning the
//! rate the service allows instead of assuming one.
//!
//! Decisions recorded here:
//!
//! - **A token-interval pacer with a mutable rate**, not a fixed quota
//!   (governor's GCRA quota cannot change once built). Each call reserves
//!   the next start time (`interval = 60 s / rate` after the previous one),
//!   so the pace does not depend on how many calls are in flight: the
//!   pool's concurrency bounds those, the pacer bounds how fast they start.
//!   No burst is granted after idling: a smooth stream of starts is what a
//!   server-side limiter (quantized to the second, see below) accepts best.
//! - **AIMD, like TCP congestion control.** Until the first refusal the
//!   rate grows by [`PROBE_GROWTH`] per paced success (slow start: from a
//!   default of 20 to 600 requests per minute in about 36 paced calls); a 429
//!   multiplies it by [`BACKOFF`]; afterwards it grows by [`CLIMB_GROWTH`]
//!   per paced success, so it probes the limit again without hammering it.
//!   Only a success that had to wait for its slot counts ("paced"): when
//!   concurrency, not the pacer, holds the calls back, the rate stays where
//!   it is instead of growing without bound (RFC 7661's rule for an
//!   application-limited sender).
//! - **One decrease per round.** A 429 decreases the rate only if its call
//!   started after the last decrease: the calls already in flight at the
//!   old rate come back refused together, and they are one signal, not
//!   several (TCP reduces once per round trip for the same reason).
//! - **The server's word wins.** A 429's retry delay (`RetryInfo`,
//!   `retry-after-ms`, `Retry-After`) holds every call to the vendor until
//!   it has passed, and start slots reserved before the hold are given up
//!   and taken again. OpenAI's `x-ratelimit-*-requests` headers (sent on
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

/// The rate after a 429: this fraction of the rate the refused call was
/// paced at. The rate then saws between it and the limit, averaging about
/// 0.9 of the limit (TCP's 0.5 would average 0.75, under the 0.8 we aim
/// for).
pub const BACKOFF: f64 = 0.8;
/// Slow start: growth of the rate per paced success before the first
/// refusal (×1.1; doubles in about 7 calls).
pub const PROBE_GROWTH: f64 = 0.1;
/// Growth per paced success after a refusal (×1.01): back from a backoff
/// to the old rate in about 22 calls.
pub const CLIMB_GROWTH: f64 = 0.01;
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

/// A reserved start slot: when it was reserved relative to the pacer's
/// decreases and holds, and whether the pacer made the call wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// Decreases so far when the slot was reserved.
    epoch: u64,
    /// Decreases and holds so far: a slot reserved before one is stale.
    generation: u64,
    /// The call had to wait for its slot (the pacer, not concurrency, was
    /// what held it back).
    paced: bool,
}

/// The pacer's decisions, over an injected clock.
#[derive(Debug, Clone)]
pub struct PaceState {
    rate: f64,
    ceiling: Option<f64>,
    stated: Option<f64>,
    probing: bool,
    next: Option<Instant>,
    hold_until: Option<Instant>,
    epoch: u64,
    generation: u64,
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
            next: None,
            hold_until: None,
            epoch: 0,
            generation: 0,
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

    /// Reserve the next start slot at `now`: the call waits until the
    /// returned instant, then checks [`Self::is_current`].
    pub fn reserve(&mut self, now: Instant) -> (Instant, Ticket) {
        let mut start = now;
        if let Some(n) = self.next {
            start = start.max(n);
        }
        if let Some(h) = self.hold_until {
            start = start.max(h);
        }
        self.next = Some(start + self.interval());
        let ticket = Ticket {
            epoch: self.epoch,
            generation: self.generation,
            paced: start > now,
        };
        (start, ticket)
    }

    /// Whether a slot reserved with `ticket` still stands: no decrease or
    /// hold came since (else the call reserves again, at the new pace).
    pub fn is_current(&self, ticket: &Ticket) -> bool {
        ticket.generation == self.generation
    }

    /// Give up every slot reserved so far: the next one is an interval
    /// (at the current rate) from now, and after any hold.
    fn restart(&mut self, now: Instant) {
        self.generation += 1;
        let mut next = now + self.interval();
        if let Some(h) = self.hold_until {
            next = next.max(h);
        }
        self.next = Some(next);
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
            self.rate = self.capped(self.rate * BACKOFF);
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
                self.restart(now);
                return;
            }
        }
        if ticket.paced {
            let growth = if self.probing {
                PROBE_GROWTH
            } else {
                CLIMB_GROWTH
            };
            self.rate = self.capped(self.rate * (1.0 + growth));
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
        self.restart(now);
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
}

impl Pacer {
    /// A pacer starting at `start_rpm`, capped by `ceiling_rpm` when set.
    pub fn new(start_rpm: u32, ceiling_rpm: Option<u32>) -> Self {
        Pacer {
            state: Mutex::new(PaceState::new(start_rpm, ceiling_rpm)),
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

    /// Wait for a start slot; the ticket goes back with the call's outcome.
    pub async fn acquire(&self) -> Ticket {
        loop {
            let (at, ticket) = self.with(|s| s.reserve(Instant::now()));
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            // A refusal while we slept (a hold, a slower rate): the slot
            // was reserved under rules that no longer hold; take another.
            if self.with(|s| s.is_current(&ticket)) {
                return ticket;
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

    /// Reserve and "start" a call at `now`; returns the slot and ticket.
    fn start(p: &mut PaceState, now: Instant) -> (Instant, Ticket) {
        p.reserve(now)
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
        for _ in 0..40 {
            let (at, t) = start(&mut p, now);
            now = at;
            p.on_success(&t, None, now);
        }
        assert!(p.rate_rpm() > 600.0, "{}", p.rate_rpm());
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
        assert_eq!(p.rate_rpm(), 600.0 * BACKOFF, "one decrease, not four");
        assert_eq!(p.hold_until(), Some(now + ms(2_000)));
        // A slot reserved before the refusal is stale; a new one waits out
        // the hold.
        assert!(!p.is_current(&tickets[3].1));
        let (at, t) = start(&mut p, now);
        assert!(at >= now + ms(2_000));
        assert!(p.is_current(&t));
        // The hold never shrinks: a shorter delay does not cut it.
        let (_, stale) = tickets[0];
        p.on_throttled(&stale, Some(ms(10)), None, now + ms(5));
        assert_eq!(p.hold_until(), Some(now + ms(2_000)));
        assert_eq!(p.rate_rpm(), 600.0 * BACKOFF);
        // A refusal of a call paced after the decrease decreases again.
        p.on_throttled(&t, Some(ms(10)), None, at + ms(5));
        assert_eq!(p.rate_rpm(), 600.0 * BACKOFF * BACKOFF);
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
    fn nothing_remaining_holds_calls_until_the_reset() {
        let t0 = Instant::now();
        let mut p = PaceState::new(600, None);
        let (_, t1) = start(&mut p, t0);
        let (_, t2) = start(&mut p, t0);
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
        assert!(!p.is_current(&t2));
        let (at, _) = start(&mut p, now);
        assert!(at >= now + Duration::from_secs(1));
    }

    #[test]
    fn other_failures_neither_hold_nor_slow_down() {
        let t0 = Instant::now();
        let mut p = PaceState::new(300, None);
        let (_, t) = start(&mut p, t0);
        p.on_other(None);
        assert_eq!(p.rate_rpm(), 300.0);
        assert_eq!(p.hold_until(), None);
        assert!(p.is_current(&t));
    }

    #[test]
    fn pacers_are_one_per_vendor_and_keep_what_they_learned() {
        let pacers = Pacers::default();
        let a = pacers.get_or_make(Vendor::OpenAi, 20, None);
        let t0 = Instant::now();
        a.with(|s| {
            let (_, t) = s.reserve(t0);
            s.on_throttled(&t, None, None, t0);
        });
        let again = pacers.get_or_make(Vendor::OpenAi, 20, None);
        assert_eq!(again.rate_rpm(), 20.0 * BACKOFF);
        let g = pacers.get_or_make(Vendor::Gemini, 500, None);
        assert_eq!(g.rate_rpm(), 500.0);
    }
}
