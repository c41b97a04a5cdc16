//! The committer thread of a split database: it leads for async callers.
//!
//! A caller of `write` leads on its own thread; a caller of `write_async` must not (leading
//! blocks: the writer connection, `BEGIN IMMEDIATE`, every closure, the COMMIT). The first
//! `write_async` of a database starts one committer thread for it. When an async job is queued
//! and nobody leads, or when a leader resigns and the first job queued is async, the lead goes
//! to the committer ([`Queue::committer_leads`]); it runs the same batches through the same
//! `lead` as a thread caller, with no job of its own. Thread callers keep leading as before, and
//! the lead is never handed to an async caller.
//!
//! A second thread, the clock, is the async callers' timer: it sleeps until the earliest
//! deadline of an async job still queued (or of an async caller waiting for room) and then
//! times those out, as a parked thread caller times itself out. It is not the committer: a
//! closure running long on the committer would hold the timeouts of the writes queued behind it
//! (with a thread caller's closure holding the batch, a single thread did time them out on
//! time; with an async caller's, it did not). Both stop when the database's last handle is
//! dropped, after every job queued has been run or has timed out; async callers that had not
//! queued yet are then answered with an error (nothing of them ran). The last handle may be
//! dropped on the committer or the clock (a closure held it): then neither is joined.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use super::clock::{self, join_unless_inside, Clock};
use super::future::{Target, WriteFuture};
use super::queue::{lock, wake_all, Job, Queue, Ticket, RUNNING};
use super::{Core, GroupCommit, WriteConn};
use crate::error::{Error, Result};

impl GroupCommit {
    /// [`GroupCommit::write`] for an async caller: the future queues `f` when first polled and
    /// resolves with its answer; the committer thread leads when no thread caller does.
    pub(crate) fn write_async<T, F>(&self, f: F) -> WriteFuture<T>
    where
        F: FnOnce(&mut WriteConn<'_>) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        if let Err(e) = self.start_threads() {
            return WriteFuture::ready(Err(e));
        }
        WriteFuture::new(Target::Group(self.core.clone()), f)
    }

    /// Starts the clock, then the committer, once each (the committer, which runs async jobs,
    /// never runs without the clock that times them out).
    fn start_threads(&self) -> Result<()> {
        let mut threads = lock(&self.committer);
        if threads.len() == 2 {
            return Ok(());
        }
        let spawn = |role: &str, body: fn(Core)| {
            let core = self.core.clone();
            std::thread::Builder::new()
                .name(format!("litepool-{role}-{}", core.shared.database))
                .spawn(move || body(core))
                .map_err(|e| Error::Commit {
                    database: self.core.shared.database.clone(),
                    message: format!("the {role} thread could not start: {e}"),
                    code: None,
                })
        };
        if threads.is_empty() {
            threads.push(spawn("clock", Core::clock_loop)?);
        }
        threads.push(spawn("commit", Core::commit_loop)?);
        Ok(())
    }
}

impl Drop for GroupCommit {
    /// Stops the committer and the clock and waits until they have run or timed out every job
    /// queued, so that no acknowledged write is lost and the writer connection closes with the
    /// pools. Not from one of them (a closure it ran or timed out held the database's last
    /// handle): then they are told to stop and finish on their own.
    fn drop(&mut self) {
        let s = &self.core.shared;
        lock(&s.queue).stop = true;
        s.wake_committer.notify_all();
        s.wake_clock.notify_all();
        let threads = std::mem::take(
            self.committer
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
        );
        join_unless_inside(threads);
    }
}

/// Asked to stop and nothing left to run.
fn finished(q: &Queue) -> bool {
    q.stop && q.jobs.is_empty() && !q.leading
}

impl Core {
    /// The committer thread's loop: lead when handed the lead; stop once asked to and nothing
    /// is queued.
    fn commit_loop(self) {
        let s = &self.shared;
        let mut q = lock(&s.queue);
        loop {
            if q.committer_leads {
                q.committer_leads = false;
                let full = q.jobs.len() >= s.settings.queue_size;
                match q.jobs.pop_front() {
                    Some(job) => {
                        job.ticket.status.store(RUNNING, Relaxed);
                        let room = if full { q.take_room() } else { Vec::new() };
                        if full {
                            s.not_full.notify_all();
                        }
                        drop(q);
                        wake_all(room);
                        let _ = self.lead(job, None);
                        q = lock(&s.queue);
                    }
                    // Cannot happen (the lead is handed over only with a job queued), but the
                    // lead must not stay taken by nobody.
                    None => q.leading = false,
                }
                continue;
            }
            if finished(&q) {
                drop(q);
                s.wake_clock.notify_all();
                return;
            }
            q = s
                .wake_committer
                .wait(q)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The clock thread's loop: sleep until the earliest deadline of an async caller, time out
    /// those whose wait is over; stop with the committer. A thread of its own, not the
    /// committer's: a closure that runs long on the committer must not delay the timeouts of
    /// the writes queued behind it.
    fn clock_loop(self) {
        let s = &self.shared;
        let clock = Clock {
            expire: Box::new(|q: &mut Queue, now| {
                // Woken (by a deadline or a notification): the timer is set again below.
                q.timer = None;
                let due = self.expire(q, now);
                let nothing = due.expired.is_empty() && due.room.is_empty();
                (!nothing).then_some(due)
            }),
            next: Box::new(|q: &mut Queue| {
                q.timer = q.next_deadline();
                q.timer
            }),
            finished: Box::new(|q: &mut Queue| {
                finished(q).then(|| Due {
                    expired: Vec::new(),
                    room: q.take_room(),
                })
            }),
            act: Box::new(|due: Due| {
                wake_all(due.room);
                let mut closures = Vec::with_capacity(due.expired.len());
                for (job, e) in due.expired {
                    job.ticket.answer(Err(self.timed_out(e)));
                    closures.push(job.run);
                }
                // Dropped here, with the queue's lock released: a closure may hold the
                // database's last handle, whose drop takes that lock.
                drop(closures);
            }),
        };
        clock::run(&s.queue, &s.wake_clock, clock);
    }

    /// Removes the async jobs whose wait is over (their answer: [`Error::WriteTimeout`]; their
    /// closures are dropped by the caller, without the lock) and returns the async callers to wake: those whose wait for room is over (they answer
    /// themselves [`Error::QueueFull`]) and, if room was made, all those waiting for it.
    fn expire(&self, q: &mut Queue, now: Instant) -> Due {
        let s = &self.shared;
        let mut out = Vec::new();
        let mut i = 0;
        while i < q.jobs.len() {
            let job = &q.jobs[i];
            if !(job.ticket.is_task() && job.deadline <= now) {
                i += 1;
                continue;
            }
            let Some(job) = q.jobs.remove(i) else { break };
            let e = Error::WriteTimeout {
                database: s.database.clone(),
                waited: now.saturating_duration_since(job.enqueued),
                cause: self.holding(q.jobs.len()),
            };
            out.push((job, e));
        }
        if !out.is_empty() {
            s.not_full.notify_all();
            let room = q.take_room();
            return Due { expired: out, room };
        }
        let mut room = Vec::new();
        let mut j = 0;
        while j < q.room.len() {
            if q.room[j].0 <= now {
                room.push(q.room.swap_remove(j).1);
            } else {
                j += 1;
            }
        }
        Due { expired: out, room }
    }
}

/// What the clock found due: async jobs whose wait is over (taken out of the queue, with the
/// answer to give them) and async callers waiting for room to wake.
struct Due {
    expired: Vec<(Job, Error)>,
    room: Vec<Arc<Ticket>>,
}
