//! Group commit on the writer of a split database: [`crate::Handle::write`].
//!
//! Callers hand a closure to a committer thread. The committer takes the writer connection, opens
//! one `BEGIN IMMEDIATE` transaction, runs every queued closure in its own `SAVEPOINT` (a closure
//! that fails rolls back its own savepoint only), commits once, and only then returns to each
//! caller: a write is acknowledged exactly when the transaction holding it has committed, so its
//! durability is that of `synchronous` for one commit. Closures that arrive while a batch runs
//! form the next batch. A failed `COMMIT` (disk full, I/O error) fails every caller of that batch
//! and commits none of it; what committed before is untouched.
//!
//! The queue is bounded (`queue_size`: a caller waits up to the writer's `connection_timeout`
//! for room), and so is a batch (`max_batch` closures, `max_batch_time` spent running them).
//! The committer takes the writer connection per batch and gives it back, so `pools.writer()`
//! callers keep their turn.
//!
//! Written by hand (a `Mutex<VecDeque>` and two `Condvar`s): std's `sync_channel` has no send
//! with a timeout, and the batching needs "everything queued now, up to N" under one lock.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::histogram::{Histogram, Summary};
use crate::pools::NamedPool;

/// The outcome of a batch's COMMIT, shared by its callers.
type Outcome = std::result::Result<(), String>;
/// Sends a caller its result once the batch's outcome is known.
type Finish = Box<dyn FnOnce(Outcome) + Send>;
/// A caller's closure, run in its savepoint: whether it succeeded, and how to finish.
type Run = Box<dyn FnOnce(&Connection) -> (bool, Finish) + Send>;

struct Job {
    enqueued: Instant,
    run: Run,
    /// Gives the caller an error without running its closure (the batch could not start).
    fail: Box<dyn FnOnce(String) + Send>,
}

struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

/// Group-commit settings of a split database's writer (`[databases.<name>.writer]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GroupCommitSettings {
    /// Closures that may wait for the committer. Default: 1024. 1 to 65536.
    pub queue_size: usize,
    /// Closures in one transaction. Default: 256. 1 to 10000.
    pub max_batch: usize,
    /// Stop adding closures to a batch after running it this long. Default: 10ms.
    pub max_batch_time: Duration,
}

impl Default for GroupCommitSettings {
    fn default() -> Self {
        GroupCommitSettings {
            queue_size: 1024,
            max_batch: 256,
            max_batch_time: Duration::from_millis(10),
        }
    }
}

/// What the committer did: an eventually consistent snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct GroupCommitStats {
    /// Transactions committed (or failed).
    pub batches: u64,
    /// Closures acknowledged as committed.
    pub writes: u64,
    /// Closures that returned an error (their savepoint rolled back).
    pub failed_writes: u64,
    /// Batches whose BEGIN or COMMIT failed (every caller got the error).
    pub failed_batches: u64,
    /// The largest batch.
    pub max_batch: u64,
    /// Mean closures per batch.
    pub mean_batch: f64,
    /// Time from `write()` to the committer starting the closure.
    pub queue_wait: Summary,
    /// Time from `write()` to the acknowledgement.
    pub latency: Summary,
    /// Checkpoints the committer ran between batches (`checkpoint = "background"`), after
    /// acknowledging the batch before.
    pub checkpoints: u64,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    closures: AtomicU64,
    writes: AtomicU64,
    failed_writes: AtomicU64,
    failed_batches: AtomicU64,
    max_batch: AtomicU64,
    checkpoints: AtomicU64,
    queue_wait: Histogram,
    latency: Histogram,
}

struct Shared {
    database: String,
    /// Set by the background checkpointer when the WAL passed its size: the committer
    /// checkpoints between batches, after acknowledging the last one.
    checkpoint_wanted: Arc<std::sync::atomic::AtomicBool>,
    queue: Mutex<Queue>,
    not_empty: Condvar,
    not_full: Condvar,
    settings: GroupCommitSettings,
    wait: Duration,
    counters: Counters,
}

/// The committer of one split database.
pub(crate) struct GroupCommit {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("database", &self.shared.database)
            .finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Starts the committer thread for `writer`.
    pub(crate) fn start(
        database: &str,
        writer: NamedPool,
        settings: GroupCommitSettings,
        wait: Duration,
    ) -> Result<GroupCommit> {
        let shared = Arc::new(Shared {
            database: database.to_owned(),
            checkpoint_wanted: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                closed: false,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            settings,
            wait,
            counters: Counters::default(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("litepool-commit-{database}"))
            .spawn(move || committer(&s, &writer))
            .map_err(|source| Error::Io {
                path: "group commit thread".into(),
                source,
            })?;
        Ok(GroupCommit {
            shared,
            thread: Some(thread),
        })
    }

    /// Runs `f` in the next batch and returns once that batch committed.
    pub(crate) fn write<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let database = self.shared.database.clone();
        let (tx, rx) = mpsc::sync_channel::<Result<T>>(1);
        let db = database.clone();
        let (fail_tx, fail_db) = (tx.clone(), database.clone());
        let fail = Box::new(move |message: String| {
            let _ = fail_tx.send(Err(Error::Commit {
                database: fail_db,
                message,
            }));
        });
        let run: Run = Box::new(move |conn: &Connection| {
            let result = f(conn);
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |outcome: Outcome| {
                let out = match (result, outcome) {
                    (Err(source), _) => Err(Error::Sqlite {
                        database: db,
                        source,
                    }),
                    (Ok(v), Ok(())) => Ok(v),
                    (Ok(_), Err(message)) => Err(Error::Commit {
                        database: db,
                        message,
                    }),
                };
                let _ = tx.send(out);
            });
            (ok, finish)
        });
        let start = Instant::now();
        {
            let s = &self.shared;
            let mut q = s.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let deadline = start + s.wait;
            while q.jobs.len() >= s.settings.queue_size && !q.closed {
                let now = Instant::now();
                if now >= deadline {
                    return Err(Error::QueueFull {
                        database,
                        queue_size: s.settings.queue_size,
                        waited: s.wait,
                    });
                }
                q = s
                    .not_full
                    .wait_timeout(q, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            if q.closed {
                return Err(Error::Commit {
                    database,
                    message: "the pools are shutting down".into(),
                });
            }
            q.jobs.push_back(Job {
                enqueued: start,
                run,
                fail,
            });
            s.not_empty.notify_one();
        }
        let out = rx.recv().unwrap_or_else(|_| {
            Err(Error::Commit {
                database: self.shared.database.clone(),
                message: "the write closure panicked; its savepoint was rolled back".into(),
            })
        });
        self.shared.counters.latency.record(start.elapsed());
        out
    }

    /// The flag the background checkpointer sets to ask for a checkpoint between batches.
    pub(crate) fn checkpoint_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.shared.checkpoint_wanted.clone()
    }

    /// A snapshot of the committer's statistics.
    pub(crate) fn stats(&self) -> GroupCommitStats {
        let c = &self.shared.counters;
        let batches = c.batches.load(Relaxed);
        GroupCommitStats {
            batches,
            writes: c.writes.load(Relaxed),
            failed_writes: c.failed_writes.load(Relaxed),
            failed_batches: c.failed_batches.load(Relaxed),
            max_batch: c.max_batch.load(Relaxed),
            mean_batch: if batches == 0 {
                0.0
            } else {
                c.closures.load(Relaxed) as f64 / batches as f64
            },
            queue_wait: c.queue_wait.summary(),
            latency: c.latency.summary(),
            checkpoints: c.checkpoints.load(Relaxed),
        }
    }
}

impl Drop for GroupCommit {
    /// Lets the committer finish what is queued, then stops it.
    fn drop(&mut self) {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.shared.not_empty.notify_all();
        self.shared.not_full.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Takes what is queued, up to `max_batch`; waits for the first. `None` once closed and empty.
fn next_batch(s: &Shared) -> Option<Vec<Job>> {
    let mut q = s.queue.lock().unwrap_or_else(PoisonError::into_inner);
    while q.jobs.is_empty() {
        if q.closed {
            return None;
        }
        q = s.not_empty.wait(q).unwrap_or_else(PoisonError::into_inner);
    }
    let n = q.jobs.len().min(s.settings.max_batch);
    let batch: Vec<Job> = q.jobs.drain(..n).collect();
    s.not_full.notify_all();
    Some(batch)
}

fn committer(s: &Shared, writer: &NamedPool) {
    while let Some(batch) = next_batch(s) {
        run_batch(s, writer, batch);
    }
}

fn run_batch(s: &Shared, writer: &NamedPool, batch: Vec<Job>) {
    let c = &s.counters;
    let fail_all = |jobs: Vec<Job>, message: String| {
        c.batches.fetch_add(1, Relaxed);
        c.failed_batches.fetch_add(1, Relaxed);
        c.failed_writes.fetch_add(jobs.len() as u64, Relaxed);
        tracing::warn!(database = %s.database, error = %message, writes = jobs.len(), "group commit could not start a batch");
        for job in jobs {
            (job.fail)(message.clone());
        }
    };
    let conn = match writer.get() {
        Ok(conn) => conn,
        Err(e) => return fail_all(batch, e.to_string()),
    };
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return fail_all(batch, e.to_string());
    }
    let started = Instant::now();
    let mut finishers: Vec<(bool, Finish)> = Vec::with_capacity(batch.len());
    let mut rest = batch.into_iter();
    for job in rest.by_ref() {
        c.queue_wait.record(job.enqueued.elapsed());
        if let Err(e) = conn.execute_batch("SAVEPOINT litepool_write") {
            (job.fail)(e.to_string());
            c.failed_writes.fetch_add(1, Relaxed);
            continue;
        }
        let run = job.run;
        match catch_unwind(AssertUnwindSafe(|| run(&conn))) {
            Ok((ok, finish)) => {
                let end = if ok {
                    "RELEASE litepool_write"
                } else {
                    "ROLLBACK TO litepool_write; RELEASE litepool_write"
                };
                if let Err(e) = conn.execute_batch(end) {
                    tracing::warn!(database = %s.database, error = %e, "ending a savepoint failed");
                }
                finishers.push((ok, finish));
            }
            Err(_panic) => {
                // The closure panicked: its caller sees its channel close.
                let _ = conn.execute_batch("ROLLBACK TO litepool_write; RELEASE litepool_write");
                c.failed_writes.fetch_add(1, Relaxed);
            }
        }
        if started.elapsed() >= s.settings.max_batch_time {
            break;
        }
    }
    // Closures not started within max_batch_time go back to the front of the queue.
    let left: Vec<Job> = rest.collect();
    if !left.is_empty() {
        let mut q = s.queue.lock().unwrap_or_else(PoisonError::into_inner);
        for job in left.into_iter().rev() {
            q.jobs.push_front(job);
        }
        s.not_empty.notify_one();
    }
    let ran = finishers.len() as u64;
    c.batches.fetch_add(1, Relaxed);
    c.closures.fetch_add(ran, Relaxed);
    c.max_batch.fetch_max(ran, Relaxed);
    let outcome: Outcome = conn.execute_batch("COMMIT").map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        e.to_string()
    });
    if outcome.is_err() {
        c.failed_batches.fetch_add(1, Relaxed);
        tracing::warn!(database = %s.database, error = ?outcome, writes = ran, "group commit failed");
    }
    for (ok, finish) in finishers {
        match (&outcome, ok) {
            (Ok(()), true) => c.writes.fetch_add(1, Relaxed),
            _ => c.failed_writes.fetch_add(1, Relaxed),
        };
        finish(outcome.clone());
    }
    // Acknowledged; now, if the WAL is large, checkpoint it while no write is in flight, so that
    // the next batch starts it over. PASSIVE: it waits for nobody.
    if s.checkpoint_wanted.swap(false, Relaxed) {
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0)) {
            Ok(_) => c.checkpoints.fetch_add(1, Relaxed),
            Err(e) => {
                tracing::debug!(database = %s.database, error = %e, "checkpoint between batches failed");
                0
            }
        };
    }
    drop(conn);
}
