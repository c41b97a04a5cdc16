//! The clock: a thread that sleeps until the earliest deadline of an async caller still waiting
//! for its closure to start, and times out those whose wait is over, as a parked thread caller
//! times itself out. One loop for group commit's queue (`committer.rs`) and for the workers'
//! queue of a database without a split (`alone.rs`).
//!
//! What is due is taken out under the queue's lock and acted on with it released: answers and
//! wake-ups (an executor may poll inside `wake`), and the closures of timed-out jobs, which are
//! dropped there: a closure may hold the database's last handle, whose drop takes this lock.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Instant;

use super::queue::lock;

/// Takes out of the queue what is due at the instant given.
pub(super) type Expire<'a, S, D> = Box<dyn FnMut(&mut S, Instant) -> Option<D> + 'a>;
/// Reads (and may update) the queue.
pub(super) type Look<'a, S, R> = Box<dyn FnMut(&mut S) -> Option<R> + 'a>;

/// What a clock does with its queue `S` (under the queue's lock), and with what is due `D`
/// (without it).
pub(super) struct Clock<'a, S, D> {
    /// Takes out what is due at the instant given (`None`: nothing is).
    pub(super) expire: Expire<'a, S, D>,
    /// The earliest deadline still waiting (`None`: sleep until told).
    pub(super) next: Look<'a, S, Instant>,
    /// Asked to stop and nothing left to time out: what is left to act on; the clock stops.
    pub(super) finished: Look<'a, S, D>,
    /// Answers, wakes, drops (with the lock released).
    pub(super) act: Box<dyn FnMut(D) + 'a>,
}

/// Runs `clock` over `state` until it is finished; `wake` is notified when a nearer deadline is
/// set or the clock must stop.
pub(super) fn run<S, D>(state: &Mutex<S>, wake: &Condvar, mut clock: Clock<'_, S, D>) {
    let mut s = lock(state);
    loop {
        let now = Instant::now();
        if let Some(due) = (clock.expire)(&mut s, now) {
            drop(s);
            (clock.act)(due);
            s = lock(state);
            continue;
        }
        if let Some(last) = (clock.finished)(&mut s) {
            drop(s);
            (clock.act)(last);
            return;
        }
        s = match (clock.next)(&mut s) {
            Some(at) => {
                wake.wait_timeout(s, at.saturating_duration_since(now))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => wake.wait(s).unwrap_or_else(PoisonError::into_inner),
        };
    }
}

/// Joins `threads` (the database's last handle was dropped and they were told to stop), unless
/// the dropping thread is one of them (a closure it ran or timed out held that handle): a thread
/// cannot join itself, and the others may be waiting for it; then they are left to finish what
/// is queued and exit on their own.
pub(super) fn join_unless_inside(threads: Vec<std::thread::JoinHandle<()>>) {
    let me = std::thread::current().id();
    if threads.iter().any(|t| t.thread().id() == me) {
        return;
    }
    for t in threads {
        let _ = t.join();
    }
}
