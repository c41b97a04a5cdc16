//! `write_async` on a database without a split: [`Alone`], a few worker threads that run
//! `write_alone` for async callers.
//!
//! Such a database has a pool of read-write connections and no group commit; a write is
//! `BEGIN IMMEDIATE; f; COMMIT` on one of them. An async caller must not block its executor on
//! the checkout, the lock or the closure, so its job goes to a worker: workers start with the
//! first `write_async`, one more whenever a job is queued and none is idle, never more than the
//! pool's `max_size` (more could only wait for a connection). The wait is bounded as for
//! `write`: the job's wait in this queue counts against the pool's `connection_timeout`, and the
//! checkout waits only what is left. Workers stop when the database's last handle is dropped,
//! after running every job queued.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
    idle: usize,
    threads: Vec<JoinHandle<()>>,
    stop: bool,
}

pub(super) struct AloneShared {
    pub(super) database: String,
    pub(super) pool: NamedPool,
    workers: Mutex<Workers>,
    work: Condvar,
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
                    threads: Vec::new(),
                    stop: false,
                }),
                work: Condvar::new(),
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
    fn drop(&mut self) {
        let s = &self.shared;
        let threads = {
            let mut w = lock(&s.workers);
            w.stop = true;
            std::mem::take(&mut w.threads)
        };
        s.work.notify_all();
        let me = std::thread::current().id();
        for t in threads {
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
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
        let max = self.pool.pool().max_size() as usize;
        if w.idle == 0 && w.threads.len() < max {
            let me = self.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("litepool-write-{}", self.database))
                .spawn(move || me.work());
            match spawned {
                Ok(t) => w.threads.push(t),
                Err(e) if w.threads.is_empty() => {
                    w.jobs.pop_back();
                    return Err(Some(Error::Commit {
                        database: self.database.clone(),
                        message: format!("no write thread could start ({e}); nothing ran"),
                        code: None,
                    }));
                }
                // The workers already running take the job.
                Err(_) => {}
            }
        } else {
            self.work.notify_one();
        }
        Ok(())
    }

    /// A future dropped before its job started: the job is taken out, its closure never runs.
    pub(super) fn cancel(&self, ticket: &Arc<Ticket>) {
        if ticket.status.load(Acquire) != QUEUED {
            return;
        }
        let mut w = lock(&self.workers);
        if ticket.status.load(Acquire) == QUEUED {
            if let Some(at) = w.jobs.iter().position(|j| Arc::ptr_eq(&j.ticket, ticket)) {
                w.jobs.remove(at);
            }
        }
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
            drop(w);
            let wait = job.deadline.saturating_duration_since(Instant::now());
            let result = (job.run)(&self.database, &self.pool, wait);
            job.ticket.answer(result);
            w = lock(&self.workers);
        }
    }
}
