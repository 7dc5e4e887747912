//! Job states and their legal transitions, in one place.
//!
//! ```text
//! pending ──claim(lease)──► in_flight ──► done | blocked | failed
//!    ▲                          │ retryable error (not_before = t + backoff)
//!    └──────────────────────────┘
//! pending ──assign──► batch_submitting ──create ok──► batch_submitted
//!                         │ (resume: not found remotely)     │ results line
//!                         ▼                                   ▼
//!                      pending                    done | blocked | failed | pending
//! any live state ──(request hash changed)──► superseded;  row removed ──► retired
//! blocked | failed ──(adloc retry)──► pending
//! ```

use std::fmt;
use std::str::FromStr;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting to be claimed (possibly not before some time).
    Pending,
    /// Claimed by a runner for a realtime call, under a lease.
    InFlight,
    /// Assigned to a batch whose remote creation is not confirmed yet.
    BatchSubmitting,
    /// Part of a batch created remotely.
    BatchSubmitted,
    /// The asset exists and its checksum is recorded.
    Done,
    /// The provider refused (safety, policy): terminal until `adloc retry --blocked`.
    Blocked,
    /// Failed terminally: terminal until `adloc retry --failed`.
    Failed,
    /// Its request changed; a newer job for the same identity replaced it.
    Superseded,
    /// Its row, locale or variant left the campaign.
    Retired,
}

impl JobState {
    /// Every state, for status listings.
    pub const ALL: [JobState; 9] = [
        JobState::Pending,
        JobState::InFlight,
        JobState::BatchSubmitting,
        JobState::BatchSubmitted,
        JobState::Done,
        JobState::Blocked,
        JobState::Failed,
        JobState::Superseded,
        JobState::Retired,
    ];

    /// Stable name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::InFlight => "in_flight",
            JobState::BatchSubmitting => "batch_submitting",
            JobState::BatchSubmitted => "batch_submitted",
            JobState::Done => "done",
            JobState::Blocked => "blocked",
            JobState::Failed => "failed",
            JobState::Superseded => "superseded",
            JobState::Retired => "retired",
        }
    }

    /// True for states nothing will move without a user's request.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Done
                | JobState::Blocked
                | JobState::Failed
                | JobState::Superseded
                | JobState::Retired
        )
    }

    /// The states a job may move to `to` from. The store writes every
    /// transition as `UPDATE … WHERE state IN (from_states(to))`, so an
    /// illegal transition changes no row and is reported, never applied.
    pub fn from_states(to: JobState) -> &'static [JobState] {
        use JobState::*;
        match to {
            Pending => &[InFlight, BatchSubmitting, BatchSubmitted, Blocked, Failed],
            InFlight => &[Pending],
            BatchSubmitting => &[Pending],
            BatchSubmitted => &[BatchSubmitting],
            Done | Blocked | Failed => &[InFlight, BatchSubmitted],
            Superseded | Retired => &[
                Pending,
                InFlight,
                BatchSubmitting,
                BatchSubmitted,
                Done,
                Blocked,
                Failed,
            ],
        }
    }

    /// Is `self → to` legal?
    pub fn can_transition(self, to: JobState) -> bool {
        JobState::from_states(to).contains(&self)
    }

    /// SQL list literal of the states `to` may come from, e.g. `('pending')`.
    pub(crate) fn from_states_sql(to: JobState) -> String {
        let names: Vec<String> = JobState::from_states(to)
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        format!("({})", names.join(", "))
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        JobState::ALL
            .iter()
            .copied()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown job state `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::JobState::*;

    #[test]
    fn done_jobs_only_leave_done_by_supersession_or_retirement() {
        for to in super::JobState::ALL {
            let legal = Done.can_transition(to);
            assert_eq!(legal, matches!(to, Superseded | Retired), "done -> {to}");
        }
    }

    #[test]
    fn a_claim_requires_pending_and_results_require_a_claim_or_a_batch() {
        assert!(Pending.can_transition(InFlight));
        assert!(!Done.can_transition(InFlight));
        assert!(!BatchSubmitted.can_transition(InFlight));
        assert!(!Pending.can_transition(Done));
        assert!(InFlight.can_transition(Done));
        assert!(BatchSubmitted.can_transition(Failed));
        assert!(!BatchSubmitting.can_transition(Done));
    }
}
