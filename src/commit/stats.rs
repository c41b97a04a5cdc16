//! What group commit counts: [`GroupCommitStats`] and the live counters behind it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::histogram::{Histogram, Summary};

/// What the writes did: an eventually consistent snapshot. Every call of `write` on a split
/// database is counted once, in `writes` (answered `Ok`) or in `failed_writes` (answered `Err`);
/// so is every `write_async` future once first polled (`failed_writes` also counts a future
/// dropped before its closure started, `cancelled`; one dropped later counts as its batch went).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct GroupCommitStats {
    /// Transactions that ran at least one closure (committed or not).
    pub batches: u64,
    /// Writes answered `Ok`: committed.
    pub writes: u64,
    /// Writes answered `Err`: nothing of them committed (includes the next four).
    pub failed_writes: u64,
    /// Writes whose closure succeeded but whose transaction was rolled back by another closure
    /// of the batch or by SQLite ([`Error::RolledBack`]).
    pub rolled_back: u64,
    /// Writes that could not start within the writer's `connection_timeout`
    /// ([`Error::WriteTimeout`], [`Error::QueueFull`]).
    pub timeouts: u64,
    /// Writes refused because they were called from inside a closure ([`Error::Reentrant`]).
    pub reentrant: u64,
    /// `write_async` futures dropped before their closure started: the closure never ran
    /// (counted in `failed_writes`, though nobody was answered).
    pub cancelled: u64,
    /// Batches whose BEGIN or COMMIT failed (every caller of it got the error).
    pub failed_batches: u64,
    /// The most closures run in one batch.
    pub max_batch: u64,
    /// Mean closures run per batch.
    pub mean_batch: f64,
    /// Closures run in all batches (the sum behind `mean_batch`).
    pub closures: u64,
    /// Time from `write()` to its closure starting: the write path's wait (the writer pool's
    /// own checkout wait is only the committer's).
    pub queue_wait: Summary,
    /// Time from `write()` to its answer, after the COMMIT.
    pub latency: Summary,
    /// Checkpoints run between batches (`checkpoint = "background"`), after the batch before
    /// was answered.
    pub checkpoints: u64,
    /// Writes waiting now for their closure to start.
    pub queued: u64,
}

pub(super) struct Counters {
    pub(super) batches: AtomicU64,
    pub(super) closures: AtomicU64,
    pub(super) writes: AtomicU64,
    pub(super) failed_writes: AtomicU64,
    pub(super) rolled_back: AtomicU64,
    pub(super) timeouts: AtomicU64,
    pub(super) reentrant: AtomicU64,
    pub(super) cancelled: AtomicU64,
    pub(super) failed_batches: AtomicU64,
    pub(super) max_batch: AtomicU64,
    pub(super) checkpoints: AtomicU64,
    pub(super) queue_wait: Histogram,
    pub(super) latency: Histogram,
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::WriteMetrics,
}

impl Counters {
    pub(super) fn new(_database: &str) -> Counters {
        let zero = || AtomicU64::new(0);
        Counters {
            batches: zero(),
            closures: zero(),
            writes: zero(),
            failed_writes: zero(),
            rolled_back: zero(),
            timeouts: zero(),
            reentrant: zero(),
            cancelled: zero(),
            failed_batches: zero(),
            max_batch: zero(),
            checkpoints: zero(),
            queue_wait: Histogram::default(),
            latency: Histogram::default(),
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::WriteMetrics::new(_database),
        }
    }

    pub(super) fn record_queue_wait(&self, d: Duration) {
        self.queue_wait.record(d);
        #[cfg(feature = "metrics")]
        self.metrics.queue_wait(d);
    }

    pub(super) fn record_latency(&self, d: Duration) {
        self.latency.record(d);
        #[cfg(feature = "metrics")]
        self.metrics.latency(d);
    }

    /// Counts a batch that ran `ran` closures.
    pub(super) fn record_batch(&self, ran: u64) {
        self.batches.fetch_add(1, Relaxed);
        self.closures.fetch_add(ran, Relaxed);
        self.max_batch.fetch_max(ran, Relaxed);
        #[cfg(feature = "metrics")]
        self.metrics.batch(ran);
    }

    /// Zeroes the counters and histograms (not atomic with writes recorded meanwhile).
    pub(super) fn reset(&self) {
        for c in [
            &self.batches,
            &self.closures,
            &self.writes,
            &self.failed_writes,
            &self.rolled_back,
            &self.timeouts,
            &self.reentrant,
            &self.cancelled,
            &self.failed_batches,
            &self.max_batch,
            &self.checkpoints,
        ] {
            c.store(0, Relaxed);
        }
        self.queue_wait.reset();
        self.latency.reset();
    }

    pub(super) fn answered(&self, result: &Result<()>) {
        match result {
            Ok(()) => self.writes.fetch_add(1, Relaxed),
            Err(e) => {
                if matches!(e, Error::RolledBack { .. }) {
                    self.rolled_back.fetch_add(1, Relaxed);
                }
                if matches!(e, Error::WriteTimeout { .. }) {
                    self.timeouts.fetch_add(1, Relaxed);
                }
                self.failed_writes.fetch_add(1, Relaxed)
            }
        };
    }

    /// The snapshot, with `queued` writes waiting now.
    pub(super) fn snapshot(&self, queued: u64) -> GroupCommitStats {
        let batches = self.batches.load(Relaxed);
        let closures = self.closures.load(Relaxed);
        GroupCommitStats {
            batches,
            writes: self.writes.load(Relaxed),
            failed_writes: self.failed_writes.load(Relaxed),
            rolled_back: self.rolled_back.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            reentrant: self.reentrant.load(Relaxed),
            cancelled: self.cancelled.load(Relaxed),
            failed_batches: self.failed_batches.load(Relaxed),
            max_batch: self.max_batch.load(Relaxed),
            mean_batch: if batches == 0 {
                0.0
            } else {
                closures as f64 / batches as f64
            },
            closures,
            queue_wait: self.queue_wait.summary(),
            latency: self.latency.summary(),
            checkpoints: self.checkpoints.load(Relaxed),
            queued,
        }
    }
}
