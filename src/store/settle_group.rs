//! Group commit for [`Store::settle`] and [`Store::settle_read`]:
//! settlements (of images and of copy QA's reads alike) that arrive while
//! another commit is under way wait for it and then share one transaction,
//! so a run storing many results at once pays one durable commit (one
//! fsync of the SQLite WAL, or one PostgreSQL commit under the write lock)
//! per group rather than per job. Each caller still returns only once its
//! own settlement is committed: what a crash can lose is unchanged.

use std::sync::Mutex;

use tokio::sync::oneshot;

use super::{AttemptRecord, JobId, ReadSettlement, RunId, Settlement, Store};
use crate::domain::{ReaderModel, Result};

/// What a waiting settlement does to its job.
pub(super) enum Outcome {
    /// An image call's result ([`Store::settle`]).
    Image(Settlement),
    /// A read's result ([`Store::settle_read`]).
    Read {
        reader: Option<ReaderModel>,
        settlement: ReadSettlement,
    },
}

/// The settlements waiting and the right to commit them.
#[derive(Default)]
pub(super) struct SettleGroup {
    waiting: Mutex<Vec<Waiting>>,
    /// Held by the caller committing a group; the others queue behind it.
    committing: tokio::sync::Mutex<()>,
}

struct Waiting {
    job: JobId,
    run: Option<RunId>,
    outcome: Outcome,
    attempt: Option<AttemptRecord>,
    reply: oneshot::Sender<Result<bool>>,
}

/// A group's size limit: a transaction stays short for other writers.
const MAX_GROUP: usize = 64;

impl Store {
    /// Apply a settlement to a job and record its attempt, in one
    /// transaction (shared with settlements of other jobs arriving at the
    /// same time). Returns false when the job was no longer ours to settle
    /// (superseded, or reclaimed after our lease expired): nothing changes.
    pub async fn settle(
        &self,
        job: JobId,
        run: Option<RunId>,
        settlement: &Settlement,
        attempt: Option<&AttemptRecord>,
    ) -> Result<bool> {
        let what = Outcome::Image(settlement.clone());
        self.settle_grouped(job, run, what, attempt).await
    }

    /// Queue `outcome` for the next group commit and wait for its answer.
    pub(super) async fn settle_grouped(
        &self,
        job: JobId,
        run: Option<RunId>,
        outcome: Outcome,
        attempt: Option<&AttemptRecord>,
    ) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        self.settles
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Waiting {
                job,
                run,
                outcome,
                attempt: attempt.cloned(),
                reply,
            });
        {
            // Whoever holds the right commits every settlement waiting,
            // this one included unless an earlier holder already took it:
            // its answer is then sent before the right is handed on.
            let _right = self.settles.committing.lock().await;
            loop {
                let group: Vec<Waiting> = {
                    let mut waiting = self
                        .settles
                        .waiting
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let n = waiting.len().min(MAX_GROUP);
                    waiting.drain(..n).collect()
                };
                if group.is_empty() {
                    break;
                }
                // In a task of its own: a caller cancelled mid-commit
                // (its run stopping) must not take the others' answers
                // with it.
                let store = self.clone();
                let _ = tokio::spawn(async move { store.commit_group(group).await }).await;
            }
        }
        answer.await.unwrap_or_else(|_| {
            Err(crate::domain::Error::Internal(
                "a settlement was dropped before its commit".into(),
            ))
        })
    }

    /// Commit `group` in one transaction; if that fails, each alone, so
    /// every caller gets its own outcome (and error).
    async fn commit_group(&self, group: Vec<Waiting>) {
        if group.len() > 1 {
            match self.settle_all(&group).await {
                Ok(settled) => {
                    for (w, s) in group.into_iter().zip(settled) {
                        let _ = w.reply.send(Ok(s));
                    }
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, jobs = group.len(), "group commit failed; settling one by one");
                }
            }
        }
        for w in group {
            let one = self.settle_all(std::slice::from_ref(&w)).await;
            let _ = w
                .reply
                .send(one.map(|s| s.first().copied().unwrap_or(false)));
        }
    }

    async fn settle_all(&self, group: &[Waiting]) -> Result<Vec<bool>> {
        let mut tx = self.write_tx().await?;
        let mut settled = Vec::with_capacity(group.len());
        for w in group {
            let attempt = w.attempt.as_ref();
            settled.push(match &w.outcome {
                Outcome::Image(s) => self.settle_in(&mut tx, w.job, w.run, s, attempt).await?,
                Outcome::Read { reader, settlement } => {
                    self.settle_read_in(&mut tx, w.job, *reader, settlement, attempt, w.run)
                        .await?
                }
            });
        }
        tx.commit().await.map_err(self.err())?;
        Ok(settled)
    }
}
