//! One backoff policy and one retry budget for every retried call.
//!
//! The schedule is backon's exponential builder (capped); on top of it we
//! apply *full* jitter (a uniform draw in `[0, d]`, which spreads a herd of
//! retries best) and never go below a delay the server asked for. Retries are
//! not slept in-process: the job goes back to the queue with `not_before`,
//! so other jobs keep flowing and a crash loses nothing.

use std::sync::Mutex;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::domain::RetrySettings;

/// Backoff schedule plus jitter.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    settings: RetrySettings,
}

impl RetryPolicy {
    /// Policy from campaign settings.
    pub fn new(settings: RetrySettings) -> Self {
        RetryPolicy { settings }
    }

    /// Attempts allowed per job.
    pub fn max_attempts(&self) -> u32 {
        self.settings.max_attempts
    }

    /// The capped exponential delay before retry number `retry` (1-based),
    /// before jitter.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let mut schedule = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(self.settings.base_delay_ms))
            .with_max_delay(Duration::from_millis(self.settings.max_delay_ms))
            .with_factor(2.0)
            .with_max_times(retry.max(1) as usize)
            .build();
        schedule
            .nth(retry.max(1) as usize - 1)
            .unwrap_or(Duration::from_millis(self.settings.max_delay_ms))
    }

    /// Delay before retry number `retry`: full jitter under the ceiling, but
    /// never less than the server's own `retry_after`.
    pub fn delay(&self, retry: u32, server: Option<Duration>, unit_draw: f64) -> Duration {
        let jittered = self.ceiling(retry).mul_f64(unit_draw.clamp(0.0, 1.0));
        match server {
            Some(s) => s.max(jittered),
            None => jittered,
        }
    }
}

/// A per-run retry budget: retries may not exceed `ratio` × first attempts,
/// once past `floor`, so an outage does not turn into a retry storm.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    floor: u32,
    counts: Mutex<(u64, u64)>,
}

impl RetryBudget {
    /// Budget from campaign settings.
    pub fn new(settings: &RetrySettings) -> Self {
        RetryBudget {
            ratio: settings.budget_ratio,
            floor: settings.budget_floor,
            counts: Mutex::new((0, 0)),
        }
    }

    /// Count a first attempt.
    pub fn first_attempt(&self) {
        if let Ok(mut c) = self.counts.lock() {
            c.0 += 1;
        }
    }

    /// Ask to spend one retry; false when the budget is spent.
    pub fn try_retry(&self) -> bool {
        let Ok(mut c) = self.counts.lock() else {
            return false;
        };
        let allowed = (c.0 as f64 * self.ratio).max(self.floor as f64);
        if (c.1 as f64) < allowed {
            c.1 += 1;
            true
        } else {
            false
        }
    }

    /// (first attempts, retries) so far.
    pub fn counts(&self) -> (u64, u64) {
        self.counts.lock().map(|c| *c).unwrap_or((0, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::new(RetrySettings {
            max_attempts: 5,
            base_delay_ms: 500,
            max_delay_ms: 4_000,
            budget_ratio: 0.2,
            budget_floor: 3,
        })
    }

    #[test]
    fn ceiling_doubles_and_is_capped() {
        let p = policy();
        assert_eq!(p.ceiling(1), Duration::from_millis(500));
        assert_eq!(p.ceiling(2), Duration::from_millis(1000));
        assert_eq!(p.ceiling(3), Duration::from_millis(2000));
        assert_eq!(p.ceiling(4), Duration::from_millis(4000));
        assert_eq!(p.ceiling(9), Duration::from_millis(4000));
    }

    #[test]
    fn full_jitter_stays_under_the_ceiling_but_never_below_the_server_delay() {
        let p = policy();
        assert_eq!(p.delay(2, None, 0.0), Duration::ZERO);
        assert_eq!(p.delay(2, None, 0.5), Duration::from_millis(500));
        assert_eq!(p.delay(2, None, 1.0), Duration::from_millis(1000));
        let server = Duration::from_millis(43_230);
        for draw in [0.0, 0.3, 1.0] {
            assert_eq!(p.delay(1, Some(server), draw), server);
        }
        assert_eq!(
            p.delay(4, Some(Duration::from_millis(100)), 1.0),
            Duration::from_millis(4000)
        );
    }

    #[test]
    fn budget_allows_the_floor_then_a_ratio_of_first_attempts() {
        let b = RetryBudget::new(&policy().settings);
        for _ in 0..3 {
            assert!(b.try_retry());
        }
        assert!(!b.try_retry());
        for _ in 0..20 {
            b.first_attempt();
        }
        assert!(b.try_retry());
        assert!(!b.try_retry());
    }
}
