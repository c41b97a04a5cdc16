//! `write_async` on a database without a split: [`Alone`], a few worker threads that run
//! `write_alone` for async callers.
//!
//! Such a database has a pool of read-write connections and no group commit; a write is
//! `BEGIN IMMEDIATE; f; COMMIT` on one of them. An async caller must not block its executor on
//! the checkout, the lock or the closure, so its job goes to a worker: workers start with the
//! first `write_async`, one more whenever a job is queued and none is idle, never more than the
//! pool's `max_size` (more could only wait for a connection). The wait is bounded as for
//! `write`: the job's wait in this queue counts against the pool's `connection_timeout`, and the
//! checkout waits only what is left, and a checkout that times out is `Error::WriteTimeout`. A job
//! still queued at its deadline (every worker busy) is answered `WriteTimeout` then by a clock
//! thread (the loop of `clock.rs`, as on a split database), not when a worker frees up. Workers
//! and the clock stop when the database's last handle is dropped, after every job queued has run
//! or timed out.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::clock::{self, join_unless_inside, Clock};
use super::future::{Target, WriteFuture};
use super::queue::{lock, Ticket, QUEUED, RUNNING};
use super::WriteConn;
use crate::error::{Error, Result};
use crate::pool::NamedPool;

/// What a worker runs: `write_alone` on `pool` with the wait that is left.
pub(super) type AloneRun = Box<dyn FnOnce(&str, &NamedPool, Duration) -> Result<()> + Send>;

struct AloneJob {
    ticket: Arc<Ticket>,
    deadline: Instant,
    run: AloneRun,
}

struct Workers {
    jobs: VecDeque<AloneJob>,
    /// Workers waiting for a job.
    idle: usize,
    /// Workers running a job.
    busy: usize,
    threads: Vec<JoinHandle<()>>,
    /// The clock that times out the jobs still queued at their deadline (started with the
    /// first worker).
    clock: Option<JoinHandle<()>>,
    /// When the clock wakes by itself next; `None` while it sleeps until told.
    timer: Option<Instant>,
    stop: bool,
}

pub(super) struct AloneShared {
    pub(super) database: String,
    pub(super) pool: NamedPool,
    workers: Mutex<Workers>,
    work: Condvar,
    /// The clock waits here (with the workers' lock).
    tick: Condvar,
}

/// The async writers of a database without a split. Dropping it (with the database's last
/// handle) stops its workers once every job queued has run.
pub(crate) struct Alone {
    shared: Arc<AloneShared>,
}

impl std::fmt::Debug for Alone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alone")
            .field("database", &self.shared.database)
            .finish_non_exhaustive()
    }
}

impl Alone {
    /// No thread starts until the first `write_async`.
    pub(crate) fn new(database: &str, pool: NamedPool) -> Alone {
        Alone {
            shared: Arc::new(AloneShared {
                database: database.to_owned(),
                pool,
                workers: Mutex::new(Workers {
                    jobs: VecDeque::new(),
                    idle: 0,
                    busy: 0,
                    threads: Vec::new(),
                    clock: None,
                    timer: None,
                    stop: false,
                }),
                work: Condvar::new(),
                tick: Condvar::new(),
            }),
        }
    }

    /// `write_alone(f)` on a worker; the future resolves with its answer.
    pub(crate) fn write_async<T, F>(&self, f: F) -> WriteFuture<T>
    where
        F: FnOnce(&mut WriteConn<'_>) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        WriteFuture::new(Target::Alone(self.shared.clone()), f)
    }
}

impl Drop for Alone {
    /// Stops the workers and the clock once every job queued has run or timed out, and waits
    /// for them; not from one of them (a closure it ran or timed out held the database's last
    /// handle): then they finish on their own.
    fn drop(&mut self) {
        let s = &self.shared;
        let threads = {
            let mut w = lock(&s.workers);
            w.stop = true;
            let mut threads = std::mem::take(&mut w.threads);
            threads.extend(w.clock.take());
            threads
        };
        s.work.notify_all();
        s.tick.notify_all();
        join_unless_inside(threads);
    }
}

impl AloneShared {
    /// Queues a job, starting a worker if none is idle and fewer than `max_size` run.
    /// `Err(None)`: the database's handles are gone.
    pub(super) fn submit(
        self: &Arc<Self>,
        ticket: Arc<Ticket>,
        deadline: Instant,
        run: AloneRun,
    ) -> std::result::Result<(), Option<Error>> {
        let mut w = lock(&self.workers);
        if w.stop {
            return Err(None);
        }
        w.jobs.push_back(AloneJob {
            ticket,
            deadline,
            run,
        });
        if w.timer.map_or(true, |t| deadline < t) {
            w.timer = Some(deadline);
            self.tick.notify_one();
        }
        let max = self.pool.pool().max_size() as usize;
        if w.idle == 0 && w.threads.len() < max {
            let me = self.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("litepool-write-{}", self.database))
                .spawn(move || me.work());
            let spawned = spawned.and_then(|worker| {
                w.threads.push(worker);
                if w.clock.is_some() {
                    return Ok(());
                }
                let me = self.clone();
                let clock = std::thread::Builder::new()
                    .name(format!("litepool-clock-{}", self.database))
                    .spawn(move || me.clock())?;
                w.clock = Some(clock);
                Ok(())
            });
            match spawned {
                Ok(()) => {}
                Err(e) if w.threads.is_empty() => {
                    let job = w.jobs.pop_back();
                    drop(w);
                    drop(job); // without the lock: it may hold the database's last handle
                    return Err(Some(Error::Commit {
                        database: self.database.clone(),
                        message: format!("no write thread could start ({e}); nothing ran"),
                        code: None,
                    }));
                }
                // The workers already running take the job (without a clock if it could not
                // start: then it waits for a worker, which times out its checkout).
                Err(_) => {}
            }
        } else {
            self.work.notify_one();
        }
        Ok(())
    }

    /// A future dropped before its job started: the job is taken out, its closure never runs.
    /// The caller drops it with the lock released (it may hold the database's last handle).
    #[must_use]
    pub(super) fn cancel(&self, ticket: &Arc<Ticket>) -> Option<impl Sized> {
        if ticket.status.load(Acquire) != QUEUED {
            return None;
        }
        let mut w = lock(&self.workers);
        if ticket.status.load(Acquire) != QUEUED {
            return None;
        }
        let at = w.jobs.iter().position(|j| Arc::ptr_eq(&j.ticket, ticket))?;
        w.jobs.remove(at)
    }

    /// The clock: answers [`Error::WriteTimeout`] to the jobs still queued at their deadline
    /// (every worker was busy and the pool's `max_size` reached), as group commit's clock does.
    fn clock(self: Arc<Self>) {
        let timeout = self.pool.timeout();
        let clock = Clock {
            expire: Box::new(|w: &mut Workers, now| {
                w.timer = None;
                let mut due = Vec::new();
                let mut i = 0;
                while i < w.jobs.len() {
                    if w.jobs[i].deadline > now {
                        i += 1;
                        continue;
                    }
                    let Some(job) = w.jobs.remove(i) else { break };
                    let cause = format!(
                        "{} write(s) held the pool's connections (max_size {}); {} other write(s) queued",
                        w.busy,
                        self.pool.pool().max_size(),
                        w.jobs.len()
                    );
                    let queued_at = job.deadline.checked_sub(timeout).unwrap_or(job.deadline);
                    let waited = now.saturating_duration_since(queued_at);
                    due.push((job, waited, cause));
                }
                (!due.is_empty()).then_some(due)
            }),
            next: Box::new(|w: &mut Workers| {
                w.timer = w.jobs.iter().map(|j| j.deadline).min();
                w.timer
            }),
            finished: Box::new(|w: &mut Workers| (w.stop && w.jobs.is_empty()).then(Vec::new)),
            act: Box::new(|due: Vec<(AloneJob, Duration, String)>| {
                let mut closures = Vec::with_capacity(due.len());
                for (job, waited, cause) in due {
                    let e = Error::WriteTimeout {
                        database: self.database.clone(),
                        waited,
                        cause,
                    };
                    tracing::warn!(database = %self.database, error = %e, "write timed out before it started");
                    job.ticket.answer(Err(e));
                    closures.push(job.run);
                }
                drop(closures); // without the lock: a closure may hold the last handle
            }),
        };
        clock::run(&self.workers, &self.tick, clock);
    }

    /// A worker: runs jobs until stopped and none is left.
    fn work(self: Arc<Self>) {
        let mut w = lock(&self.workers);
        loop {
            let Some(job) = w.jobs.pop_front() else {
                if w.stop {
                    return;
                }
                w.idle += 1;
                w = self.work.wait(w).unwrap_or_else(PoisonError::into_inner);
                w.idle -= 1;
                continue;
            };
            job.ticket.status.store(RUNNING, Relaxed);
            w.busy += 1;
            drop(w);
            let wait = job.deadline.saturating_duration_since(Instant::now());
            let result = (job.run)(&self.database, &self.pool, wait);
            job.ticket.answer(result);
            w = lock(&self.workers);
            w.busy -= 1;
        }
    }
}
