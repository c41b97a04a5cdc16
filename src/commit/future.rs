//! [`WriteFuture`]: what `write_async` returns. Written by hand over [`std::task::Waker`], so
//! that it runs on any executor and litepool depends on no runtime; a `Mutex<Option<Waker>>` in
//! the ticket is all the waker storage it needs (the `atomic-waker` crate would save one
//! uncontended lock per wake-up, not worth a dependency).
//!
//! The future does nothing until first polled. Its first poll starts the clock (the wait is
//! bounded by the writer's `connection_timeout` from then) and queues the job; later polls
//! register the task's waker and read the answer. The closure never runs on the polling thread:
//! on a split database the batch's leader runs it (a thread caller of `write`, or the committer
//! thread), elsewhere a worker of [`super::Alone`].
//!
//! **Dropped before its closure started** (queued, or waiting for room in a full queue): the
//! job is taken out of the queue under its lock, so the closure never runs; group commit counts
//! it in `failed_writes` and `cancelled`, also when its wait for room had run out but it was not
//! polled again (its `QueueFull` was never given). **Dropped after its closure started**: the closure's
//! work commits or not with its batch, exactly as if the future had been kept, and is counted
//! so (`writes` when it committed); nobody can be told.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use super::alone::{AloneRun, AloneShared};
use super::queue::{lock, Job, Run, Ticket, DONE, QUEUED};
use super::{Core, WriteConn};
use crate::error::{Error, Result};
use crate::reentry;

/// Where the job goes.
pub(super) enum Target {
    /// A split database's group commit.
    Group(Core),
    /// A database without a split: its workers.
    Alone(Arc<AloneShared>),
}

enum Work {
    Group(Run),
    Alone(AloneRun),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not polled yet.
    New,
    /// Polled; not queued yet (the queue was full).
    Room,
    /// Queued or running: waiting for the answer.
    Queued,
    /// Answered.
    Finished,
}

/// The future of `write_async`: resolves to `Ok` once the closure's work committed, to `Err`
/// when none of it did.
#[must_use = "a write_async future does nothing unless awaited"]
pub struct WriteFuture<T> {
    target: Option<Target>,
    ticket: Arc<Ticket>,
    work: Option<Work>,
    slot: Arc<Mutex<Option<T>>>,
    start: Instant,
    deadline: Instant,
    state: State,
    /// An answer known without queueing (an error at the call).
    ready: Option<Result<T>>,
}

// Never pinned structurally: every field is moved or reached through `&mut`.
impl<T> Unpin for WriteFuture<T> {}

impl<T> std::fmt::Debug for WriteFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteFuture").finish_non_exhaustive()
    }
}

impl<T: Send + 'static> WriteFuture<T> {
    /// A future that resolves to `result` at its first poll.
    pub(crate) fn ready(result: Result<T>) -> Self {
        let now = Instant::now();
        WriteFuture {
            target: None,
            ticket: Ticket::task(),
            work: None,
            slot: Arc::new(Mutex::new(None)),
            start: now,
            deadline: now,
            state: State::New,
            ready: Some(result),
        }
    }

    pub(super) fn new<F>(target: Target, f: F) -> Self
    where
        F: FnOnce(&mut WriteConn<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
        let out = slot.clone();
        let work = match &target {
            Target::Group(_) => Work::Group(Box::new(move |conn| {
                let value = f(conn)?;
                *lock(&out) = Some(value);
                Ok(())
            })),
            Target::Alone(_) => Work::Alone(Box::new(move |database, pool, wait| {
                let value = super::tx::write_alone(database, pool, f, wait)?;
                *lock(&out) = Some(value);
                Ok(())
            })),
        };
        let now = Instant::now();
        WriteFuture {
            target: Some(target),
            ticket: Ticket::task(),
            work: Some(work),
            slot,
            start: now,
            deadline: now,
            state: State::New,
            ready: None,
        }
    }
}

impl<T> WriteFuture<T> {
    fn database(&self) -> String {
        match &self.target {
            Some(Target::Group(core)) => core.shared.database.clone(),
            Some(Target::Alone(a)) => a.database.clone(),
            None => String::new(),
        }
    }

    /// First poll: the clock starts, and a call from inside a write closure of the same
    /// database (which would wait for itself) is refused.
    fn begin(&mut self) -> Option<Error> {
        let (id, wait) = match self.target.as_ref()? {
            Target::Group(core) => (core.shared.writer.id(), core.shared.wait),
            Target::Alone(a) => (a.pool.id(), a.pool.timeout()),
        };
        self.start = Instant::now();
        self.deadline = self.start + wait;
        if !reentry::inside(id) {
            return None;
        }
        if let Some(Target::Group(core)) = &self.target {
            let c = &core.shared.counters;
            c.reentrant.fetch_add(1, Relaxed);
            c.failed_writes.fetch_add(1, Relaxed);
        }
        Some(Error::Reentrant {
            database: self.database(),
            call: "write_async",
        })
    }

    /// Queues the job, or says why not yet (`Pending`: no room) or not at all.
    fn enqueue(&mut self, cx: &Context<'_>) -> Poll<Result<()>> {
        let Some(target) = &self.target else {
            return Poll::Ready(Ok(()));
        };
        match target {
            Target::Group(core) => {
                let s = &core.shared;
                let mut q = lock(&s.queue);
                if q.stop {
                    drop(q);
                    s.counters.failed_writes.fetch_add(1, Relaxed);
                    return Poll::Ready(Err(stopped(s.database.clone())));
                }
                let ticket = &self.ticket;
                let now = Instant::now();
                // Past its deadline here only after waiting for room (the first poll sets the
                // deadline ahead): its wait went on a full queue, even if room came just now.
                if q.jobs.len() >= s.settings.queue_size || now >= self.deadline {
                    if now >= self.deadline {
                        q.room.retain(|(_, t)| !Arc::ptr_eq(t, ticket));
                        drop(q);
                        return Poll::Ready(Err(core.timed_out(Error::QueueFull {
                            database: s.database.clone(),
                            queue_size: s.settings.queue_size,
                            waited: now - self.start,
                        })));
                    }
                    ticket.register(cx.waker());
                    if !q.room.iter().any(|(_, t)| Arc::ptr_eq(t, ticket)) {
                        q.room.push((self.deadline, ticket.clone()));
                    }
                    if q.timer.map_or(true, |t| self.deadline < t) {
                        q.timer = Some(self.deadline);
                        s.wake_clock.notify_one();
                    }
                    return Poll::Pending;
                }
                q.room.retain(|(_, t)| !Arc::ptr_eq(t, ticket));
                let Some(Work::Group(run)) = self.work.take() else {
                    return Poll::Ready(Ok(())); // cannot happen: queued once
                };
                ticket.register(cx.waker());
                q.jobs.push_back(Job {
                    enqueued: self.start,
                    deadline: self.deadline,
                    ticket: ticket.clone(),
                    run,
                });
                if !q.leading {
                    // Nobody leads: the committer does (this task must not block).
                    q.leading = true;
                    q.committer_leads = true;
                    s.wake_committer.notify_one();
                }
                if q.timer.map_or(true, |t| self.deadline < t) {
                    // The clock times this job out if its wait ends before it starts.
                    q.timer = Some(self.deadline);
                    s.wake_clock.notify_one();
                }
            }
            Target::Alone(a) => {
                let Some(Work::Alone(run)) = self.work.take() else {
                    return Poll::Ready(Ok(()));
                };
                self.ticket.register(cx.waker());
                if let Err(e) = a.submit(self.ticket.clone(), self.deadline, run) {
                    return Poll::Ready(Err(e.unwrap_or_else(|| stopped(a.database.clone()))));
                }
            }
        }
        Poll::Pending
    }

    /// Takes a DONE ticket's answer and the closure's value.
    fn answer(&mut self) -> Result<T> {
        let end = lock(&self.ticket.end).take();
        if let Some(Target::Group(core)) = &self.target {
            core.shared.counters.record_latency(self.start.elapsed());
        }
        let database = self.database();
        let end = end.unwrap_or_else(|| {
            Err(Error::Commit {
                database: database.clone(),
                message: "the write was answered without an outcome (a litepool bug)".into(),
                code: None,
            })
        });
        end?;
        let value = lock(&self.slot).take();
        value.ok_or_else(|| Error::Commit {
            database,
            message: "the write committed but its closure's value was lost (a litepool bug)".into(),
            code: None,
        })
    }
}

/// The answer of a future first polled after the database's last handle was dropped.
fn stopped(database: String) -> Error {
    Error::Commit {
        database,
        message:
            "the database's pools were dropped before this write was queued; nothing of it ran"
                .into(),
        code: None,
    }
}

impl<T> Future for WriteFuture<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.get_mut();
        loop {
            match this.state {
                State::New => {
                    if let Some(r) = this.ready.take() {
                        this.state = State::Finished;
                        return Poll::Ready(r);
                    }
                    if let Some(e) = this.begin() {
                        this.state = State::Finished;
                        return Poll::Ready(Err(e));
                    }
                    this.state = State::Room;
                }
                State::Room => match this.enqueue(cx) {
                    Poll::Pending if this.work.is_some() => return Poll::Pending,
                    Poll::Pending => this.state = State::Queued,
                    Poll::Ready(Ok(())) => this.state = State::Queued,
                    Poll::Ready(Err(e)) => {
                        this.state = State::Finished;
                        return Poll::Ready(Err(e));
                    }
                },
                State::Queued => {
                    this.ticket.register(cx.waker());
                    if this.ticket.status.load(Acquire) != DONE {
                        return Poll::Pending;
                    }
                    this.state = State::Finished;
                    return Poll::Ready(this.answer());
                }
                State::Finished => {
                    return Poll::Ready(Err(Error::Commit {
                        database: this.database(),
                        message: "a write_async future was polled after it completed".into(),
                        code: None,
                    }))
                }
            }
        }
    }
}

impl<T> Drop for WriteFuture<T> {
    /// A job not started yet is taken out of its queue: its closure never runs. Whatever is
    /// taken out is dropped with the lock released: a closure may hold the database's last
    /// handle, whose drop takes that lock.
    fn drop(&mut self) {
        let ticket = &self.ticket;
        match (&self.target, self.state) {
            (Some(Target::Group(core)), State::Room | State::Queued) => {
                let s = &core.shared;
                if ticket.status.load(Acquire) == DONE {
                    return;
                }
                let mut q = lock(&s.queue);
                q.room.retain(|(_, t)| !Arc::ptr_eq(t, ticket));
                // Waiting for room (even once that wait ran out, before the poll that would have
                // answered QueueFull): never queued, never answered, so cancelled.
                let job = match self.state {
                    State::Queued if ticket.status.load(Acquire) == QUEUED => q.remove(ticket),
                    _ => None,
                };
                if self.state == State::Room || job.is_some() {
                    s.not_full.notify_one();
                    let room = q.take_room();
                    drop(q);
                    super::queue::wake_all(room);
                    s.counters.cancelled.fetch_add(1, Relaxed);
                    s.counters.failed_writes.fetch_add(1, Relaxed);
                }
                drop(job);
            }
            (Some(Target::Alone(a)), State::Queued) => drop(a.cancel(ticket)),
            _ => {}
        }
    }
}
