//! A server-side requests-per-minute limit the client is not told about
//! (`rpm_limit` for Gemini `generateContent`, `[openai] rpm_limit` for the
//! image endpoints), per model, as the services limit per project and model.
//!
//! The limit is a token bucket refilled at `rpm / 60` requests a second
//! holding one second's worth (at least one request): OpenAI enforces a
//! per-minute limit quantized to shorter periods ("60,000 requests/minute
//! may be enforced as 1,000 requests/second",
//! https://platform.openai.com/docs/guides/rate-limits), so a client that
//! bursts a minute's quota at once is refused even under the per-minute
//! total. A refused request takes no token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Admission {
    /// Served: what is left of the bucket, and the time until it is full.
    Admitted { remaining: u32, reset: Duration },
    /// Refused: the time until one request is allowed, and until full.
    Refused {
        retry_after: Duration,
        reset: Duration,
    },
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets by key (surface and model).
#[derive(Default)]
pub(crate) struct RpmLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Capacity of the bucket of a limit: one second's worth, at least one.
pub(crate) fn capacity(rpm: u32) -> f64 {
    (f64::from(rpm) / 60.0).ceil().max(1.0)
}

impl RpmLimiter {
    /// Admit or refuse one request under `rpm` for `key` at `now`.
    pub(crate) fn admit(&self, key: &str, rpm: u32, now: Instant) -> Admission {
        let rate = f64::from(rpm.max(1)) / 60.0;
        let cap = capacity(rpm);
        let mut g = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = g.entry(key.to_string()).or_insert(Bucket {
            tokens: cap,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(cap);
        b.at = now.max(b.at);
        let until_full = |tokens: f64| Duration::from_secs_f64(((cap - tokens) / rate).max(0.0));
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Admission::Admitted {
                remaining: b.tokens.floor() as u32,
                reset: until_full(b.tokens),
            }
        } else {
            Admission::Refused {
                retry_after: Duration::from_secs_f64((1.0 - b.tokens) / rate),
                reset: until_full(b.tokens),
            }
        }
    }
}

/// A duration as Go prints it, the way OpenAI writes
/// `x-ratelimit-reset-requests` ("1s", "6m0s", "20ms").
pub(crate) fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs_f64();
    let m = (secs / 60.0).floor() as u64;
    let s = secs - (m * 60) as f64;
    let s = format!("{s:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_holds_one_seconds_worth_and_refills_at_the_rate() {
        let l = RpmLimiter::default();
        let t0 = Instant::now();
        // 600 rpm: 10 a second, 10 at once.
        for i in 0..10 {
            match l.admit("m", 600, t0) {
                Admission::Admitted { remaining, .. } => assert_eq!(remaining, 9 - i),
                other => panic!("call {i}: {other:?}"),
            }
        }
        match l.admit("m", 600, t0) {
            Admission::Refused { retry_after, reset } => {
                assert_eq!(retry_after, Duration::from_millis(100));
                assert_eq!(reset, Duration::from_secs(1));
            }
            other => panic!("{other:?}"),
        }
        // A refused request took nothing: 100 ms later one is allowed.
        assert!(matches!(
            l.admit("m", 600, t0 + Duration::from_millis(100)),
            Admission::Admitted { remaining: 0, .. }
        ));
        // Another model has its own bucket.
        assert!(matches!(
            l.admit("other", 600, t0),
            Admission::Admitted { remaining: 9, .. }
        ));
    }

    #[test]
    fn a_steady_stream_under_the_limit_is_never_refused() {
        let l = RpmLimiter::default();
        let t0 = Instant::now();
        // 60 rpm = one a second, a bucket of one: calls 1.01 s apart pass.
        for i in 0..100u64 {
            let at = t0 + Duration::from_millis(1010 * i);
            assert!(
                matches!(l.admit("m", 60, at), Admission::Admitted { .. }),
                "call {i}"
            );
        }
        assert!(matches!(
            l.admit("m", 60, t0 + Duration::from_millis(1010 * 99 + 500)),
            Admission::Refused { .. }
        ));
    }

    #[test]
    fn reset_times_print_like_go_durations() {
        assert_eq!(go_duration(Duration::from_millis(20)), "20ms");
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(360)), "6m0s");
    }
}
