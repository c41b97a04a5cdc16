//! The one timing loop of both `litepool bench` runners, and what keeps `--seconds` a bound: a
//! statement still running when the run's time is up is interrupted
//! ([`sqlite3_interrupt`](https://sqlite.org/c3ref/interrupt.html)) and counted apart, neither as
//! a completed operation nor as an error.
//!
//! Each measuring thread has a [`Bound`]: while one of its statements runs, the bound holds that
//! connection's interrupt handle. A timer thread waits for the deadline, then interrupts every
//! connection held by a bound, and again every [`TICK`] until all threads have stopped (SQLite
//! ignores an interrupt that arrives just before a statement starts, so one call is not enough).
//! Only the user's statement is ever interrupted, never the `BEGIN`, `COMMIT` or `ROLLBACK`
//! around it: an interrupted statement fails, its transaction is rolled back, and nothing of it
//! is written (and the bench runs on private copies anyway).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, InterruptHandle};

use crate::datagen::Rng;
use litepool::histogram::{Histogram, Summary};
use litepool::{Error, Result};

/// How often the timer interrupts again, after the deadline, until every thread has stopped.
pub const TICK: Duration = Duration::from_millis(10);

/// One measuring thread's hold on the statement it is running, for the deadline to interrupt.
/// Cheap to clone: a write that runs on group commit's thread takes a clone along.
/// A statement asked to start after the deadline does not start: a thread that waited past it
/// for a connection (hundreds of threads behind one writer) stops at once instead of one timer
/// tick each.
#[derive(Clone)]
pub struct Bound(Arc<Mutex<Option<InterruptHandle>>>, Instant);

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("running", &self.slot().is_some())
            .finish()
    }
}

impl Bound {
    /// A bound for statements of a run that ends at `deadline`.
    pub fn until(deadline: Instant) -> Bound {
        Bound(Arc::default(), deadline)
    }

    fn slot(&self) -> MutexGuard<'_, Option<InterruptHandle>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on `conn` so that the deadline can interrupt it (it then fails with
    /// `SQLITE_INTERRUPT`). Wrap only the statement, not the `BEGIN`/`COMMIT` around it.
    pub fn run<T>(
        &self,
        conn: &Connection,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        if Instant::now() >= self.1 {
            // What an interrupt at the deadline answers: counted as interrupted, not an error.
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERRUPT),
                Some("the run's time is up".into()),
            ));
        }
        *self.slot() = Some(conn.get_interrupt_handle());
        let out = f(conn);
        // An interrupt that lands after `f` returned finds no running statement; SQLite clears
        // it when the next statement on this connection starts.
        *self.slot() = None;
        out
    }

    fn interrupt(&self) {
        if let Some(h) = &*self.slot() {
            h.interrupt();
        }
    }
}

/// True when `e` is the deadline's doing: a statement interrupted by it, or (after the deadline)
/// a group-commit write rolled back with a batch whose statement was interrupted.
fn interrupted(e: &Error, deadline: Instant) -> bool {
    e.sqlite_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
        || (matches!(e, Error::RolledBack { .. }) && Instant::now() >= deadline)
}

/// What `threads` threads calling one operation in a loop for a while did.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Completed operations.
    pub ops: u64,
    /// Operations interrupted because the run's time was up.
    pub interrupted: u64,
    /// Attempts that failed with SQLITE_BUSY.
    pub busy: u64,
    /// Attempts that failed otherwise.
    pub errors: u64,
    /// The first such failure.
    pub first_error: Option<String>,
    /// Seconds the run really took, from its start until every thread stopped.
    pub seconds: f64,
    /// Latency of completed operations.
    pub latency: Summary,
}

/// Per thread: completed, interrupted, busy, other errors, the first error.
type Counts = (u64, u64, u64, u64, Option<String>);

/// Runs `op` on `threads` threads until `duration` has passed, then interrupts what still runs
/// (see the module docs); each thread gets its own random stream from `seed` and its own
/// [`Bound`]. A thread that cannot be created is an error; one that panics counts as an error.
pub fn measure(
    threads: usize,
    duration: Duration,
    seed: u64,
    op: &(dyn Fn(&mut Rng, &Bound) -> Result<()> + Sync),
) -> Result<Tally> {
    let latency = Histogram::default();
    let stopped = AtomicBool::new(false);
    let start = Instant::now();
    let deadline = start + duration;
    let bounds: Vec<Bound> = (0..threads).map(|_| Bound::until(deadline)).collect();
    let counts: std::io::Result<Vec<Counts>> = std::thread::scope(|s| {
        let (bounds, stopped) = (&bounds, &stopped);
        let timer = std::thread::Builder::new().spawn_scoped(s, move || {
            while !stopped.load(Ordering::Acquire) {
                let now = Instant::now();
                if now >= deadline {
                    bounds.iter().for_each(Bound::interrupt);
                    std::thread::sleep(TICK);
                } else {
                    std::thread::sleep(TICK.min(deadline - now));
                }
            }
        })?;
        let spawned: Vec<_> = bounds
            .iter()
            .enumerate()
            .map(|(t, bound)| {
                let latency = &latency;
                std::thread::Builder::new().spawn_scoped(s, move || {
                    let mut rng = Rng::new(seed.wrapping_add(t as u64));
                    let mut c: Counts = (0, 0, 0, 0, None);
                    while Instant::now() < deadline {
                        let t0 = Instant::now();
                        match op(&mut rng, bound) {
                            Ok(()) => {
                                latency.record(t0.elapsed());
                                c.0 += 1;
                            }
                            Err(e) if interrupted(&e, deadline) => c.1 += 1,
                            Err(e) if e.is_busy() => c.2 += 1,
                            Err(e) => {
                                c.3 += 1;
                                c.4.get_or_insert_with(|| e.to_string());
                            }
                        }
                    }
                    c
                })
            })
            .collect();
        // Those that started stop at the deadline; then the timer stops too.
        let mut out = Vec::new();
        let mut failed = None;
        for h in spawned {
            match h {
                Ok(h) => out.push(h.join().unwrap_or((
                    0,
                    0,
                    0,
                    1,
                    Some("a benchmark thread panicked".into()),
                ))),
                Err(e) => failed = Some(e),
            }
        }
        stopped.store(true, Ordering::Release);
        let _ = timer.join();
        failed.map_or(Ok(out), Err)
    });
    let seconds = start.elapsed().as_secs_f64();
    let counts = counts.map_err(|source| Error::Io {
        path: "benchmark threads".into(),
        source,
    })?;
    Ok(Tally {
        ops: counts.iter().map(|c| c.0).sum(),
        interrupted: counts.iter().map(|c| c.1).sum(),
        busy: counts.iter().map(|c| c.2).sum(),
        errors: counts.iter().map(|c| c.3).sum(),
        first_error: counts.into_iter().find_map(|c| c.4),
        seconds,
        latency: latency.summary(),
    })
}
