//! Group commit on the writer of a split database: [`crate::Handle::write`].
//!
//! **Leader and followers.** A caller that finds nobody writing leads: it takes the writer
//! connection, opens `BEGIN IMMEDIATE`, runs its own closure on its own thread, then every closure
//! that queued meanwhile, commits once and answers each caller. A caller that arrives while a
//! batch runs queues and waits; when the leader is done it hands the lead to the first one
//! queued, whose batch holds everything that queued behind it. An uncontended write is therefore
//! `BEGIN IMMEDIATE; f; COMMIT` on the caller's thread with no hand-off, and batches form only
//! when writers overlap.
//!
//! **Async callers** ([`crate::Handle::write_async`]) queue in the same queue and run in the
//! same batches, but never lead: leading blocks, and their thread is an executor's. The first
//! `write_async` starts the database's committer thread (`committer.rs`), which leads whenever
//! an async job is queued and nobody leads, and takes the lead when a leader resigns with an
//! async job first in line; a thread caller is handed the lead only by a leader that finds it
//! first; a clock thread times out async callers (a parked thread caller times itself out). A
//! ticket's waiter is a thread to unpark or a task's waker (`queue.rs`); the future is
//! `future.rs`. A future dropped before its closure started takes its job out of the queue.
//!
//! **Every answer is true.** `Ok` means the closure's work committed; `Err` means none of it
//! did; [`GroupCommitStats`] counts exactly those answers. Each closure after the first of a
//! transaction runs in a `SAVEPOINT`: a closure that fails rolls back its own work only. After
//! every closure the leader checks, with SQLite's rollback hook and `sqlite3_get_autocommit`,
//! that the transaction is still open: a statement that ends the whole transaction (`INSERT OR
//! ROLLBACK`, a trigger's `RAISE(ROLLBACK)`, SQLite's own rollback on `SQLITE_FULL`, `IOERR`,
//! `NOMEM`) takes the earlier closures' work with it, so their callers get
//! [`Error::RolledBack`] (nothing committed, safe to retry), and the closures after it run in a
//! new transaction. While a closure runs, the commit hook refuses every commit on the writer, so
//! nothing a closure does after such a rollback (or a `COMMIT` of its own) commits outside the
//! batch; the pragma guard also refuses `BEGIN`, `COMMIT`, `ROLLBACK` and litepool's savepoint
//! inside a closure ("not authorized"). A failing `RELEASE` or `ROLLBACK TO` is an error for its
//! closure; if a closure's work cannot be undone alone, the whole transaction is rolled back and
//! every caller of it told so.
//!
//! **Bounded.** A caller waits at most the writer's `connection_timeout` for its closure to
//! start (for room in the queue of `queue_size`, for the leader, for the writer connection, for
//! another connection's write lock: `BEGIN IMMEDIATE` runs with `busy_timeout` shortened to what
//! is left);
//! then it gets [`Error::WriteTimeout`] naming what held the path (a closure running for so
//! long, a `pools.writer()` caller holding the connection), logged as a warning. Once its
//! closure has run, a caller waits for its batch's COMMIT, which waits for the closures already
//! started in that batch. A batch takes at most `max_batch` closures and stops taking more after
//! `max_batch_time`. `write`, `writer()` or a checkout of the writer from inside a closure fails
//! at once with [`Error::Reentrant`].
//!
//! Waiting callers park their thread; the leader answers a batch with one `unpark`, and each
//! answered caller unparks the next (a wake-up call per caller on the leader's path cost a third
//! of the CPU in context switches, measured with `perf`).
//!
//! Written by hand (a `Mutex<VecDeque>`, `std::thread::park`): no crate offers a queue whose
//! waiters can time out, leave it, or be handed the lead.

use std::sync::atomic::{
    AtomicU64, AtomicU8,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::pool::NamedPool;
use crate::reentry;
pub use crate::settings::GroupCommitSettings;

mod alone;
mod clock;
mod committer;
mod conn;
mod future;
mod queue;
mod stats;
mod tx;

pub(crate) use self::alone::Alone;
pub use self::conn::WriteConn;
pub(crate) use self::future::WriteFuture;
use self::queue::{lock, Job, Queue, Ticket, DONE, LEAD, QUEUED, RUNNING};
use self::stats::Counters;
pub use self::stats::GroupCommitStats;
pub(crate) use tx::write_alone;
use tx::Tx;

/// The most batches one caller leads before it hands the lead on: its own answer waits for them.
const LEAD_BATCHES: u32 = 4;

/// How long the leader's checkpoint waits for readers to leave the WAL (see
/// `checkpoint_if_wanted`).
const LEADER_RESTART_WAIT: Duration = Duration::from_millis(10);

/// What the write path is doing, for the message of a timeout.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Phase {
    Idle = 0,
    Connecting = 1,
    Running = 2,
    Committing = 3,
    Checkpointing = 4,
    /// `BEGIN IMMEDIATE` waits for another connection's write lock.
    Locking = 5,
}

struct Shared {
    database: String,
    writer: NamedPool,
    settings: GroupCommitSettings,
    /// How long a caller may wait for its closure to start: the writer's `connection_timeout`.
    wait: Duration,
    queue: Mutex<Queue>,
    not_full: Condvar,
    /// The committer thread waits here (with the queue's lock) to lead.
    wake_committer: Condvar,
    /// The clock thread waits here (with the queue's lock) to time out an async caller.
    wake_clock: Condvar,
    /// With `checkpoint = "background"`: the `-shm` file, read after every batch, and the
    /// threshold in bytes of frames not yet checkpointed.
    wal_index: Option<crate::checkpoint::Trigger>,
    /// Incremented by the writer's rollback hook while a batch runs.
    rollbacks: Arc<AtomicU64>,
    phase: AtomicU8,
    /// Nanoseconds from `epoch` to when `phase` began.
    phase_since: AtomicU64,
    epoch: Instant,
    counters: Counters,
}

/// The group commit of one split database. Dropping it (with the database's last handle)
/// stops its committer thread, once every job queued has been run or has timed out.
pub(crate) struct GroupCommit {
    core: Core,
    /// The committer and the clock, started by the first `write_async`.
    committer: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// What a leader works with; cheap to clone (the committer thread and async callers hold one).
#[derive(Clone)]
struct Core {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("database", &self.core.shared.database)
            .finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// The group commit of `writer`; callers wait at most `wait` for their closure to start.
    /// With `checkpoint`, the database file and `checkpoint_wal_size`: background checkpoints.
    pub(crate) fn new(
        database: &str,
        writer: NamedPool,
        settings: GroupCommitSettings,
        wait: Duration,
        checkpoint: Option<(&std::path::Path, u64)>,
    ) -> GroupCommit {
        let core = Core {
            shared: Arc::new(Shared {
                database: database.to_owned(),
                writer,
                settings,
                wait,
                queue: Mutex::new(Queue::new()),
                not_full: Condvar::new(),
                wake_committer: Condvar::new(),
                wake_clock: Condvar::new(),
                wal_index: checkpoint
                    .map(|(path, bytes)| crate::checkpoint::Trigger::of(path, bytes)),
                rollbacks: Arc::new(AtomicU64::new(0)),
                phase: AtomicU8::new(Phase::Idle as u8),
                phase_since: AtomicU64::new(0),
                epoch: Instant::now(),
                counters: Counters::new(database),
            }),
        };
        GroupCommit {
            core,
            committer: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` in the next batch and returns once that batch committed (or failed).
    pub(crate) fn write<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut WriteConn<'_>) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.core.write(f)
    }

    /// A snapshot of the statistics.
    pub(crate) fn stats(&self) -> GroupCommitStats {
        self.core.stats()
    }

    /// Zeroes the counters and histograms of [`GroupCommit::stats`].
    pub(crate) fn reset_stats(&self) {
        self.core.shared.counters.reset();
    }
}

impl Core {
    /// Runs `f` in the next batch and returns once that batch committed (or failed).
    pub(crate) fn write<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut WriteConn<'_>) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let s = &self.shared;
        let start = Instant::now();
        if reentry::inside(s.writer.id()) {
            s.counters.reentrant.fetch_add(1, Relaxed);
            s.counters.failed_writes.fetch_add(1, Relaxed);
            return Err(Error::Reentrant {
                database: s.database.clone(),
                call: "write",
            });
        }
        let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
        let ticket = Ticket::thread();
        let out = slot.clone();
        let job = Job {
            enqueued: start,
            deadline: start + s.wait,
            ticket: ticket.clone(),
            run: Box::new(move |conn| {
                let value = f(conn)?;
                *lock(&out) = Some(value);
                Ok(())
            }),
        };
        let answer = self.submit(job, &ticket);
        s.counters.record_latency(start.elapsed());
        answer?;
        let value = lock(&slot).take();
        value.ok_or_else(|| Error::Commit {
            database: s.database.clone(),
            message: "the write committed but its closure's value was lost (a litepool bug)".into(),
            code: None,
        })
    }

    /// Queues `job` (or leads at once) and waits for its answer.
    fn submit(&self, job: Job, ticket: &Arc<Ticket>) -> Result<()> {
        let s = &self.shared;
        let deadline = job.deadline;
        let mut q = lock(&s.queue);
        if !q.leading {
            q.leading = true;
            drop(q);
            return self.lead(job, Some(ticket));
        }
        while q.jobs.len() >= s.settings.queue_size {
            let now = Instant::now();
            if now >= deadline {
                drop(q);
                return Err(self.timed_out(Error::QueueFull {
                    database: s.database.clone(),
                    queue_size: s.settings.queue_size,
                    waited: s.wait,
                }));
            }
            q = s
                .not_full
                .wait_timeout(q, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if !q.leading {
            q.leading = true;
            drop(q);
            return self.lead(job, Some(ticket));
        }
        q.jobs.push_back(job);
        drop(q);
        loop {
            match ticket.status.load(Acquire) {
                DONE => {
                    if let Some(next) = lock(&ticket.next).take() {
                        next.wake();
                    }
                    break;
                }
                LEAD => {
                    let Some(job) = lock(&s.queue).remove(ticket) else {
                        break; // cannot happen: a ticket handed the lead is still queued
                    };
                    return self.lead(job, Some(ticket));
                }
                QUEUED => {
                    let now = Instant::now();
                    if now < deadline {
                        std::thread::park_timeout(deadline - now);
                        continue;
                    }
                    let mut q = lock(&s.queue);
                    if ticket.status.load(Acquire) != QUEUED {
                        continue; // taken into a batch, or handed the lead, just now
                    }
                    let job = q.remove(ticket);
                    s.not_full.notify_one();
                    let room = q.take_room();
                    let ahead = q.jobs.len();
                    drop(q);
                    // The closure is dropped without the lock: it may hold the database's last
                    // handle, whose drop takes it.
                    drop(job);
                    queue::wake_all(room);
                    let cause = self.holding(ahead);
                    return Err(self.timed_out(Error::WriteTimeout {
                        database: s.database.clone(),
                        waited: now.saturating_duration_since(deadline - s.wait),
                        cause,
                    }));
                }
                _ => std::thread::park(),
            }
        }
        lock(&ticket.end).take().unwrap_or_else(|| {
            Err(Error::Commit {
                database: s.database.clone(),
                message: "the write was answered without an outcome (a litepool bug)".into(),
                code: None,
            })
        })
    }

    /// Counts and logs a write that never started.
    fn timed_out(&self, e: Error) -> Error {
        let c = &self.shared.counters;
        c.timeouts.fetch_add(1, Relaxed);
        c.failed_writes.fetch_add(1, Relaxed);
        tracing::warn!(database = %self.shared.database, error = %e, "write timed out before it started");
        e
    }

    /// What holds the write path now, in words.
    fn holding(&self, queued: usize) -> String {
        let s = &self.shared;
        let since = Duration::from_nanos(s.phase_since.load(Relaxed));
        let for_ = humantime::format_duration(Duration::from_millis(
            s.epoch
                .elapsed()
                .saturating_sub(since)
                .as_millis()
                .try_into()
                .unwrap_or(u64::MAX),
        ));
        let what = match s.phase.load(Relaxed) {
            x if x == Phase::Connecting as u8 => format!(
                "the writer connection has been in use elsewhere for {for_} (a pools.writer() caller holds it)"
            ),
            x if x == Phase::Running as u8 => {
                format!("a write closure has been running for {for_}")
            }
            x if x == Phase::Committing as u8 => format!("a COMMIT has been running for {for_}"),
            x if x == Phase::Checkpointing as u8 => {
                format!("a checkpoint has been running for {for_}")
            }
            x if x == Phase::Locking as u8 => format!(
                "the batch before has waited {for_} for the database's write lock, held by another connection"
            ),
            _ => "the write path was handing over between batches".to_owned(),
        };
        format!("{what}; {queued} other write(s) queued")
    }

    fn set_phase(&self, phase: Phase) {
        let s = &self.shared;
        let nanos = s.epoch.elapsed().as_nanos().try_into().unwrap_or(u64::MAX);
        s.phase_since.store(nanos, Relaxed);
        s.phase.store(phase as u8, Relaxed);
    }

    /// Leads one batch, starting with `first`, answers every caller of it, hands the lead on,
    /// and returns the answer of `own` (the leading caller's job, which is `first`); the
    /// committer thread leads with `own = None` and every caller is answered through its ticket.
    fn lead(&self, first: Job, own: Option<&Arc<Ticket>>) -> Result<()> {
        let s = &self.shared;
        let c = &s.counters;
        self.set_phase(Phase::Connecting);
        let wait = first.deadline.saturating_duration_since(Instant::now());
        let mut conn = match s.writer.get_timeout(wait) {
            // The leader checkpoints between batches itself, not again at check-in.
            // The closures reach the connection through `WriteConn`, not `Conn`: reset it all.
            Ok(conn) => {
                conn.reset_at_checkin();
                conn.without_checkpoint()
            }
            Err(e) => {
                let e = match e {
                    Error::Timeout { .. } => self.timed_out(Error::WriteTimeout {
                        database: s.database.clone(),
                        waited: first.enqueued.elapsed(),
                        cause: self.holding(lock(&s.queue).jobs.len()),
                    }),
                    e => {
                        c.failed_writes.fetch_add(1, Relaxed);
                        e
                    }
                };
                return self.fail_first(first, own, e);
            }
        };
        let rollbacks = s.rollbacks.clone();
        let id = s.writer.id();
        let hooks = conn
            .rollback_hook(Some(move || {
                rollbacks.fetch_add(1, Relaxed);
            }))
            .and_then(|()| {
                let addr = crate::sys::Db::of(&conn).addr();
                conn.commit_hook(Some(move || reentry::writing(addr)))
            });
        if let Err(e) = hooks {
            c.failed_writes.fetch_add(1, Relaxed);
            drop(conn);
            let e = Error::Sqlite {
                database: s.database.clone(),
                source: e,
            };
            return self.fail_first(first, own, e);
        }
        let began = Instant::now();
        let mut led = 0;
        let mut mine = None;
        let mut next = Some(first);
        // Batches, while callers queue behind them: the leader keeps leading for up to
        // LEAD_BATCHES batches and `max_batch_time` in all (a hand-off to another thread would
        // put a wake-up on the critical path of every batch), then hands the lead on.
        while next.is_some() {
            let mut tx = Tx::new(
                &s.database,
                &mut conn,
                id,
                &s.rollbacks,
                s.writer.busy_timeout(),
            );
            let started = Instant::now();
            while let Some(job) = next.take() {
                c.record_queue_wait(job.enqueued.elapsed());
                let phase = |p| self.set_phase(p);
                tx.run(job.ticket, (job.enqueued, job.deadline), &phase, job.run);
                if tx.ran >= s.settings.max_batch || started.elapsed() >= s.settings.max_batch_time
                {
                    break;
                }
                next = self.pop();
            }
            self.set_phase(Phase::Committing);
            let ran = tx.ran as u64;
            if tx.commit() {
                c.failed_batches.fetch_add(1, Relaxed);
            }
            let Tx { done, .. } = tx;
            c.record_batch(ran);
            // Answer everyone but the leader, who answers itself on return: each caller's
            // answer and the next caller to wake, then its status; one wake-up starts the chain.
            let mut first: Option<Arc<Ticket>> = None;
            let mut answered: Vec<Arc<Ticket>> = Vec::with_capacity(done.len());
            for (ticket, result) in done {
                c.answered(&result);
                if own.is_some_and(|own| Arc::ptr_eq(&ticket, own)) {
                    mine = Some(result);
                    continue;
                }
                if ticket.is_task() {
                    ticket.answer(result);
                    continue;
                }
                *lock(&ticket.end) = Some(result);
                answered.push(ticket);
            }
            for ticket in answered.into_iter().rev() {
                *lock(&ticket.next) = first.take();
                ticket.status.store(DONE, Release);
                first = Some(ticket);
            }
            if let Some(ticket) = first {
                ticket.wake();
            }
            self.checkpoint_if_wanted(&conn);
            led += 1;
            if led < LEAD_BATCHES && began.elapsed() < s.settings.max_batch_time {
                next = self.pop();
            }
        }
        let _ = conn.commit_hook(None::<fn() -> bool>);
        let _ = conn.rollback_hook(None::<fn()>);
        // A closure may have changed the busy timeout through rusqlite (`busy_timeout`,
        // `busy_handler`): the next borrower gets the profile's.
        let _ = conn.busy_timeout(s.writer.busy_timeout());
        drop(conn);
        self.resign();
        if own.is_none() {
            return Ok(());
        }
        mine.unwrap_or_else(|| {
            Err(Error::Commit {
                database: s.database.clone(),
                message: "the leader's own write got no outcome (a litepool bug)".into(),
                code: None,
            })
        })
    }

    /// The next queued job, marked running.
    fn pop(&self) -> Option<Job> {
        let s = &self.shared;
        let mut q = lock(&s.queue);
        let full = q.jobs.len() >= s.settings.queue_size;
        let job = q.jobs.pop_front()?;
        job.ticket.status.store(RUNNING, Relaxed);
        if full {
            s.not_full.notify_all();
            let room = q.take_room();
            drop(q);
            queue::wake_all(room);
        }
        Some(job)
    }

    /// The first job could not start (no writer connection): answers it, hands the lead on.
    fn fail_first(&self, first: Job, own: Option<&Arc<Ticket>>, e: Error) -> Result<()> {
        self.resign();
        match own {
            Some(_) => Err(e),
            None => {
                first.ticket.answer(Err(e));
                Ok(())
            }
        }
    }

    /// After a batch was answered: if the WAL holds `checkpoint_wal_size` of frames not yet
    /// checkpointed, checkpoint it now, while no write is in flight, so that the next batch
    /// starts the WAL over. PASSIVE: it waits for no reader.
    fn checkpoint_if_wanted(&self, conn: &Connection) {
        let s = &self.shared;
        let Some(trigger) = &s.wal_index else {
            return;
        };
        let pending = trigger.pending();
        // A backlog left by a long reader is the checkpointer thread's: copying it here would
        // hold every writer for as long as it takes.
        if !trigger.due_at(pending) || trigger.is_backlog(pending) {
            return;
        }
        self.set_phase(Phase::Checkpointing);
        // RESTART, not PASSIVE: with readers always overlapping, a PASSIVE checkpoint copied
        // every frame but a reader that began while it ran still held a read mark when the next
        // batch wrote, so the WAL never started over and its file grew without bound (158 MiB
        // in 3 s under 4 writers and 4 readers: examples/migrate_after.rs). RESTART then waits
        // until every reader reads the database file alone (readers that start meanwhile do),
        // so the next batch starts the WAL over; a reader holding an old snapshot for longer
        // than LEADER_RESTART_WAIT delays it no more than that.
        match crate::checkpoint::restart_within(conn, LEADER_RESTART_WAIT) {
            Ok(_) => {
                s.counters.checkpoints.fetch_add(1, Relaxed);
            }
            Err(e) => {
                tracing::debug!(database = %s.database, error = %e, "checkpoint between batches failed")
            }
        }
        trigger.checkpointed();
    }

    /// Hands the lead to the first queued caller if it is a thread, to the committer thread
    /// if it is an async caller (which must not block its executor), or leaves it free.
    fn resign(&self) {
        let s = &self.shared;
        self.set_phase(Phase::Idle);
        let mut q = lock(&s.queue);
        match q.jobs.front() {
            Some(job) if !job.ticket.is_task() => {
                job.ticket.status.store(LEAD, Release);
                job.ticket.wake();
            }
            Some(_) => {
                q.committer_leads = true;
                s.wake_committer.notify_one();
            }
            None => q.leading = false,
        }
    }

    /// A snapshot of the statistics.
    pub(crate) fn stats(&self) -> GroupCommitStats {
        let queued = lock(&self.shared.queue).jobs.len() as u64;
        self.shared.counters.snapshot(queued)
    }
}
