//! The queue of the write path and a caller's place in it: [`Ticket`], [`Job`], [`Queue`].
//!
//! A ticket's waiter is either a thread (a caller of `write`, which parks) or a task's
//! [`Waker`] (a caller of `write_async`, which awaits). Both kinds sit in the one queue and run in
//! the same batches; only the way each is woken differs. The lead is handed only to a thread
//! ticket: an async caller cannot lead (that would block its executor), so when the first job
//! queued is async the lead goes to the database's committer thread instead
//! ([`Queue::committer_leads`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering::Release};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::thread::Thread;
use std::time::Instant;

use super::WriteConn;
use crate::error::Result;

pub(super) const QUEUED: u8 = 0;
pub(super) const RUNNING: u8 = 1;
/// Only ever set on a thread ticket.
pub(super) const LEAD: u8 = 2;
pub(super) const DONE: u8 = 3;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Who waits for a ticket's answer.
pub(super) enum Waiter {
    /// A caller of `write`: it parks while it waits and is unparked when its status changes.
    Thread(Thread),
    /// A caller of `write_async`: the waker of its latest poll (taken when woken).
    Task(Mutex<Option<Waker>>),
}

/// One caller's place in the queue. `status` changes under the queue's lock, except
/// RUNNING → DONE, which the leader stores (Release) after `end` (and `next`) are set.
pub(super) struct Ticket {
    pub(super) status: AtomicU8,
    pub(super) waiter: Waiter,
    pub(super) end: Mutex<Option<Result<()>>>,
    /// The next thread ticket of the same batch to wake: each answered thread wakes the next,
    /// so the leader makes one wake-up call per batch instead of one per caller. Task tickets
    /// are woken by the leader directly (a dropped future could not pass the chain on).
    pub(super) next: Mutex<Option<Arc<Ticket>>>,
}

impl Ticket {
    /// A ticket for the calling thread.
    pub(super) fn thread() -> Arc<Ticket> {
        Ticket::new(Waiter::Thread(std::thread::current()))
    }

    /// A ticket for an async task; its waker is registered by each poll.
    pub(super) fn task() -> Arc<Ticket> {
        Ticket::new(Waiter::Task(Mutex::new(None)))
    }

    fn new(waiter: Waiter) -> Arc<Ticket> {
        Arc::new(Ticket {
            status: AtomicU8::new(QUEUED),
            waiter,
            end: Mutex::new(None),
            next: Mutex::new(None),
        })
    }

    pub(super) fn is_task(&self) -> bool {
        matches!(self.waiter, Waiter::Task(_))
    }

    /// Wakes whoever waits: unparks the thread, or wakes the task (once per registration).
    /// Called with no lock held: an executor may poll the task inside `wake`.
    pub(super) fn wake(&self) {
        match &self.waiter {
            Waiter::Thread(t) => t.unpark(),
            Waiter::Task(w) => {
                let waker = lock(w).take();
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
        }
    }

    /// Registers the waker of a poll. The poll checks the status after this, so an answer
    /// stored meanwhile is seen either by that check or through this waker.
    pub(super) fn register(&self, waker: &Waker) {
        if let Waiter::Task(w) = &self.waiter {
            let mut w = lock(w);
            if !w.as_ref().is_some_and(|old| old.will_wake(waker)) {
                *w = Some(waker.clone());
            }
        }
    }

    /// Stores the answer, marks the ticket done and wakes its waiter.
    pub(super) fn answer(&self, result: Result<()>) {
        *lock(&self.end) = Some(result);
        self.status.store(DONE, Release);
        self.wake();
    }
}

/// A caller's closure, type-erased: it stores its value in the caller's slot itself.
pub(super) type Run = Box<dyn FnOnce(&mut WriteConn<'_>) -> rusqlite::Result<()> + Send>;

pub(super) struct Job {
    pub(super) enqueued: Instant,
    pub(super) deadline: Instant,
    pub(super) ticket: Arc<Ticket>,
    pub(super) run: Run,
}

pub(super) struct Queue {
    pub(super) jobs: VecDeque<Job>,
    /// Someone leads (or has been handed the lead and is waking up).
    pub(super) leading: bool,
    /// The lead was handed to the committer thread (the first job queued was async).
    pub(super) committer_leads: bool,
    /// Async callers waiting for room in a full queue, with their deadline.
    pub(super) room: Vec<(Instant, Arc<Ticket>)>,
    /// When the committer thread wakes by itself next (to time out an async caller); `None`
    /// while it sleeps until told.
    pub(super) timer: Option<Instant>,
    /// The database's last handle was dropped: nothing more is queued, the committer finishes
    /// what is and stops.
    pub(super) stop: bool,
}

/// Wakes each ticket's waiter (call with the queue's lock released).
pub(super) fn wake_all(tickets: Vec<Arc<Ticket>>) {
    for t in tickets {
        t.wake();
    }
}

impl Queue {
    pub(super) fn new() -> Queue {
        Queue {
            jobs: VecDeque::new(),
            leading: false,
            committer_leads: false,
            room: Vec::new(),
            timer: None,
            stop: false,
        }
    }

    /// Removes `ticket`'s job, if it is still queued.
    pub(super) fn remove(&mut self, ticket: &Arc<Ticket>) -> Option<Job> {
        let at = self
            .jobs
            .iter()
            .position(|j| Arc::ptr_eq(&j.ticket, ticket))?;
        self.jobs.remove(at)
    }

    /// Room was made: the async callers waiting for it, to wake (with the lock released) so
    /// that they try again.
    pub(super) fn take_room(&mut self) -> Vec<Arc<Ticket>> {
        self.room.drain(..).map(|(_, t)| t).collect()
    }

    /// The earliest moment an async caller's wait ends (queued, or waiting for room).
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let queued = self.jobs.iter().find(|j| j.ticket.is_task());
        let room = self.room.iter().map(|(d, _)| *d).min();
        match (queued.map(|j| j.deadline), room) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
