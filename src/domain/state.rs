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
//! copy QA on: an image stored from in_flight or batch_submitted goes to
//!   checking ──claim──► read_in_flight ──► done (pass, kept) | failed (text_mismatch)
//!      ▲   ──assign──► read_batch_submitting ──► read_batch_submitted ──► (same)
//!      └── read again (first mismatch, retryable error)     regenerate ──► pending
//! any live state ──(request hash changed)──► superseded;  row removed ──► retired
//! blocked | failed ──(adloc retry)──► pending
//! done ──(its image rejected with a note: revise by editing)──► pending
//! text = "edit": waiting ──(its base locale's image is done)──► pending
//!   done ──(the base image changed: edit again)──► pending
//!   waiting ──(its base failed, was blocked or fell back to overlay)──► failed (base_failed)
//!   failed (base_failed) ──(its base is queued or made again)──► waiting
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
    /// Copy QA: the image is stored; its read-back is due.
    Checking,
    /// Copy QA: claimed by a runner for a realtime read, under a lease.
    ReadInFlight,
    /// Copy QA: assigned to a read batch not yet confirmed remotely.
    ReadBatchSubmitting,
    /// Copy QA: part of a read batch created remotely.
    ReadBatchSubmitted,
    /// `text = "edit"`: a locale's image is an edit of the base locale's,
    /// which is not made yet.
    Waiting,
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
    pub const ALL: [JobState; 14] = [
        JobState::Pending,
        JobState::InFlight,
        JobState::BatchSubmitting,
        JobState::BatchSubmitted,
        JobState::Checking,
        JobState::ReadInFlight,
        JobState::ReadBatchSubmitting,
        JobState::ReadBatchSubmitted,
        JobState::Waiting,
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
            JobState::Checking => "checking",
            JobState::ReadInFlight => "read_in_flight",
            JobState::ReadBatchSubmitting => "read_batch_submitting",
            JobState::ReadBatchSubmitted => "read_batch_submitted",
            JobState::Waiting => "waiting",
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
            // A regeneration after a confirmed copy mismatch comes from a read;
            // a waiting edit is released when its base image is done.
            Pending => &[
                Waiting,
                InFlight,
                BatchSubmitting,
                BatchSubmitted,
                Blocked,
                Failed,
                ReadInFlight,
                ReadBatchSubmitted,
            ],
            InFlight => &[Pending],
            BatchSubmitting => &[Pending],
            BatchSubmitted => &[BatchSubmitting],
            // From done: copy QA was turned on after the image was made.
            Checking => &[
                InFlight,
                BatchSubmitted,
                Done,
                ReadInFlight,
                ReadBatchSubmitting,
                ReadBatchSubmitted,
            ],
            ReadInFlight | ReadBatchSubmitting => &[Checking],
            ReadBatchSubmitted => &[ReadBatchSubmitting],
            Done | Failed => &[InFlight, BatchSubmitted, ReadInFlight, ReadBatchSubmitted],
            Blocked => &[InFlight, BatchSubmitted],
            // Inserted by a sync; entered again only by the base statements
            // ([`JobState::BASE_LOST_FROM`], [`JobState::REWAIT_FROM`]).
            Waiting => &[],
            Superseded | Retired => &[
                Waiting,
                Pending,
                InFlight,
                BatchSubmitting,
                BatchSubmitted,
                Checking,
                ReadInFlight,
                ReadBatchSubmitting,
                ReadBatchSubmitted,
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

    /// The states a job whose image a reviewer rejected is queued again
    /// from, as an edit of that image. Kept apart from
    /// [`JobState::from_states`]`(Pending)`: only the revise statement may
    /// take a done job back to pending, never a late settle of a stale
    /// runner (which writes `WHERE state IN from_states(Pending)`). The
    /// same transition re-edits a `text = "edit"` locale whose base image
    /// changed.
    pub const REVISE_FROM: [JobState; 1] = [JobState::Done];

    /// `text = "edit"`: the states a locale edit is failed from
    /// (`base_failed`) when its base locale's job ended without an image it
    /// can be edited from (failed, blocked, or a copy-QA overlay
    /// fallback). Kept apart from [`JobState::from_states`]`(Failed)`: a
    /// waiting job was never claimed, so no settle may fail it; only the
    /// base statement does, and a waiting edit never waits forever.
    pub const BASE_LOST_FROM: [JobState; 1] = [JobState::Waiting];

    /// `text = "edit"`: the states a locale edit failed with `base_failed`
    /// waits again from, once its base job is queued or made again (`adloc
    /// retry`, a later run). Kept apart from
    /// [`JobState::from_states`]`(Waiting)`, which is empty: nothing else
    /// ever makes a job wait.
    pub const REWAIT_FROM: [JobState; 1] = [JobState::Failed];
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

/// A string-backed enum with `as_str`, `Display`, `FromStr` and `ALL`.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// Stable name, as stored and printed.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| format!(concat!("unknown ", stringify!($name), " `{}`"), s))
            }
        }
    };
}

named_enum! {
    /// Where a remote batch stands in the local ledger. The order of writes
    /// is the guard against paying twice: `submitting` is recorded before the
    /// create call, `submitted` after it.
    BatchState {
        /// Recorded locally; the remote create may or may not have happened.
        Submitting => "submitting",
        /// Created remotely; its remote name is known.
        Submitted => "submitted",
        /// Finished remotely (kept for old state files).
        Succeeded => "succeeded",
        /// Ended FAILED remotely.
        Failed => "failed",
        /// Ended EXPIRED remotely.
        Expired => "expired",
        /// Cancelled.
        Cancelled => "cancelled",
        /// Its results were read.
        Ingested => "ingested",
        /// Never created remotely (found absent on resume, or refused).
        Abandoned => "abandoned",
    }
}

impl BatchState {
    /// States of a batch that may still produce results.
    pub const OPEN: [BatchState; 2] = [BatchState::Submitting, BatchState::Submitted];
}

named_enum! {
    /// Where an overlay composite stands.
    CompositeState {
        /// Written and recorded.
        Done => "done",
        /// Could not be made (overflow, unreadable art).
        Failed => "failed",
        /// A newer composite of the same identity replaced it.
        Superseded => "superseded",
        /// Its row, locale or variant left the campaign.
        Retired => "retired",
    }
}

named_enum! {
    /// What one call did, for the attempts ledger.
    AttemptOutcome {
        /// An image came back and was stored.
        Ok => "ok",
        /// A retryable failure: the job went back to pending.
        Retry => "retry",
        /// The job failed or was blocked for good.
        JobTerminal => "job_terminal",
        /// Nothing in the run can succeed: the job stayed pending.
        RunTerminal => "run_terminal",
    }
}

named_enum! {
    /// How a run ended, in the `runs` table.
    RunOutcome {
        /// Every job it could do was done.
        Finished => "finished",
        /// Ctrl-C or SIGTERM.
        Interrupted => "interrupted",
        /// Stopped early for a run-level reason.
        Stopped => "stopped",
    }
}

named_enum! {
    /// What moves a job to the next model of its variant's chain.
    FallbackTrigger {
        /// The vendor is down: its retry budget ran out on server errors.
        Outage => "outage",
        /// The vendor's quota or credit is used up for this run.
        Quota => "quota",
        /// The model is unknown to the vendor, shut down, or the key has no access.
        ModelUnavailable => "model_unavailable",
        /// The vendor refused the prompt or the image (safety, policy).
        Blocked => "blocked",
    }
}

impl FallbackTrigger {
    /// The default `fallback_on`: everything but blocks.
    pub const DEFAULT: [FallbackTrigger; 3] = [
        FallbackTrigger::Outage,
        FallbackTrigger::Quota,
        FallbackTrigger::ModelUnavailable,
    ];
}

named_enum! {
    /// Who made an image.
    ProviderKind {
        /// The local proof renderer (no network, no cost).
        Local => "local",
        /// Google's Gemini API.
        Gemini => "gemini",
        /// OpenAI's Image API (GPT Image).
        OpenAi => "openai",
    }
}

#[cfg(test)]
mod tests {
    use super::JobState::*;

    #[test]
    fn done_jobs_leave_done_only_by_supersession_retirement_or_a_late_copy_check() {
        for to in super::JobState::ALL {
            let legal = Done.can_transition(to);
            assert_eq!(
                legal,
                matches!(to, Superseded | Retired | Checking),
                "done -> {to}"
            );
        }
    }

    #[test]
    fn only_the_revise_statement_takes_a_done_job_back_to_pending() {
        assert!(
            !Done.can_transition(Pending),
            "a stale settle must not reopen a done job"
        );
        assert_eq!(super::JobState::REVISE_FROM, [Done]);
    }

    #[test]
    fn only_the_base_statements_fail_a_waiting_edit_and_make_it_wait_again() {
        assert!(
            !Waiting.can_transition(Failed),
            "no settle may fail a job that was never claimed"
        );
        assert!(super::JobState::from_states(Waiting).is_empty());
        assert_eq!(super::JobState::BASE_LOST_FROM, [Waiting]);
        assert_eq!(super::JobState::REWAIT_FROM, [Failed]);
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
