//! Checkouts waiting now, and since when, counted only while an admin socket is served
//! ([`COUNT_WAITING`]): the `waiting` and `longest wait` columns of its pool table.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Set while an admin socket is served (`litepool::admin`): checkouts then count themselves.
/// Off, a checkout pays one relaxed load of it.
pub static COUNT_WAITING: AtomicUsize = AtomicUsize::new(0);

/// How many waiting checkouts per pool have their start time kept (more are counted, and the
/// longest wait is that of the oldest kept).
const SLOTS: usize = 32;

/// The waiting checkouts of one pool.
#[derive(Debug)]
pub(crate) struct Waiting {
    count: AtomicU64,
    /// Each waiting checkout's start, in nanoseconds since [`epoch`] plus one; 0 when free.
    starts: [AtomicU64; SLOTS],
}

impl Default for Waiting {
    fn default() -> Self {
        Waiting {
            count: AtomicU64::new(0),
            starts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

thread_local! {
    /// Where this thread starts looking for a free slot, spread across threads.
    static FIRST: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// One checkout counted as waiting until dropped.
pub(crate) struct Entry<'a> {
    waiting: &'a Waiting,
    slot: Option<usize>,
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            self.waiting.starts[i].store(0, Relaxed);
        }
        self.waiting.count.fetch_sub(1, Relaxed);
    }
}

impl Waiting {
    /// Counts a checkout as waiting, if an admin socket is served.
    #[inline]
    pub(crate) fn enter(&self) -> Option<Entry<'_>> {
        if COUNT_WAITING.load(Relaxed) == 0 {
            return None;
        }
        self.count.fetch_add(1, Relaxed);
        let start = u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1;
        let first = FIRST.with(|f| {
            if f.get() == usize::MAX {
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                f.set(NEXT.fetch_add(1, Relaxed));
            }
            f.get()
        });
        let slot = (0..SLOTS).map(|k| (first + k) % SLOTS).find(|&i| {
            self.starts[i]
                .compare_exchange(0, start, Relaxed, Relaxed)
                .is_ok()
        });
        Some(Entry {
            waiting: self,
            slot,
        })
    }

    /// Checkouts waiting now, and the longest of their waits so far (`None` without any).
    pub(crate) fn now(&self) -> (u64, Option<Duration>) {
        let now = u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX);
        let oldest = self
            .starts
            .iter()
            .map(|s| s.load(Relaxed))
            .filter(|&s| s != 0)
            .min();
        (
            self.count.load(Relaxed),
            oldest.map(|s| Duration::from_nanos(now.saturating_sub(s - 1))),
        )
    }
}
