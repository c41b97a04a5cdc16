//! Fixed-bucket histograms of durations, written per thread without atomic read-modify-write.
//!
//! Buckets are log-linear: each power of two of nanoseconds is split into 4, so a bucket is a
//! quarter of its lower edge wide and a quantile, reported as the upper edge of its bucket
//! (capped by the maximum), is at most 25% above the true value and never below it.
//! Memory is constant per thread that records into a pool; a thread's counts are folded into a
//! shared total when it exits, so threads that come and go do not grow it.
//!
//! Each recording thread owns a slot and updates it with plain loads and stores (it is the
//! only writer), which costs a few nanoseconds instead of one locked instruction per counter.
//! Readers sum all slots; what they see is eventually consistent.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use serde::Serialize;

const SUB: u32 = 4; // sub-buckets per power of two
const BUCKETS: usize = 64 * SUB as usize;

fn bucket(ns: u64) -> usize {
    if ns < u64::from(SUB) {
        return ns as usize;
    }
    let log = 63 - ns.leading_zeros(); // >= 2
    let sub = (ns >> (log - 2)) & u64::from(SUB - 1);
    ((log - 1) * SUB + sub as u32) as usize
}

fn upper_edge(index: usize) -> u64 {
    if index < SUB as usize {
        return index as u64;
    }
    let log = index as u32 / SUB + 1;
    let sub = u64::from(index as u32 % SUB);
    let width = 1u64 << (log - 2);
    (1u64 << log).saturating_add((sub + 1) * width - 1)
}

/// Summary of a histogram: count, total, maximum and quantiles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// How many durations were recorded.
    pub count: u64,
    /// Their sum (JSON: `total_seconds`).
    #[serde(rename = "total_seconds", serialize_with = "seconds")]
    pub total: Duration,
    /// The largest (JSON: `max_seconds`).
    #[serde(rename = "max_seconds", serialize_with = "seconds")]
    pub max: Duration,
    /// Median (JSON: `p50_seconds`).
    #[serde(rename = "p50_seconds", serialize_with = "seconds")]
    pub p50: Duration,
    /// 90th percentile (JSON: `p90_seconds`).
    #[serde(rename = "p90_seconds", serialize_with = "seconds")]
    pub p90: Duration,
    /// 99th percentile (JSON: `p99_seconds`).
    #[serde(rename = "p99_seconds", serialize_with = "seconds")]
    pub p99: Duration,
}

/// Durations serialise as seconds (a float) under a name ending in `_seconds`, e.g.
/// `"p99_seconds": 0.0018`: the unit of the Prometheus output and of the `metrics` histograms.
pub fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

pub use crate::units::duration as human;

/// Plain totals: the sum of slots, or a baseline.
#[derive(Debug, Clone)]
struct Totals {
    buckets: Vec<u64>,
    sum: u64,
    max: u64,
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            buckets: vec![0; BUCKETS],
            sum: 0,
            max: 0,
        }
    }
}

impl Totals {
    fn add(&mut self, slot: &Slot, epoch: u64) {
        for (t, b) in self.buckets.iter_mut().zip(slot.buckets.iter()) {
            *t += b.load(Relaxed);
        }
        self.sum = self.sum.wrapping_add(slot.sum.load(Relaxed));
        if slot.max_epoch.load(Relaxed) == epoch {
            self.max = self.max.max(slot.max.load(Relaxed));
        }
    }

    fn summary(&self, base: &Totals) -> Summary {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .zip(&base.buckets)
            .map(|(c, b)| c.saturating_sub(*b))
            .collect();
        let n: u64 = counts.iter().sum();
        let max = self.max;
        let quantile = |q: f64| {
            if n == 0 {
                return Duration::ZERO;
            }
            let rank = ((q * n as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return Duration::from_nanos(upper_edge(i).min(max));
                }
            }
            Duration::from_nanos(max)
        };
        Summary {
            count: n,
            total: Duration::from_nanos(self.sum.wrapping_sub(base.sum)),
            max: Duration::from_nanos(max),
            p50: quantile(0.50),
            p90: quantile(0.90),
            p99: quantile(0.99),
        }
    }
}

/// One thread's histogram. Only the owning thread writes it.
#[derive(Debug)]
struct Slot {
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    max: AtomicU64,
    max_epoch: AtomicU64,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
            max_epoch: AtomicU64::new(0),
        }
    }

    /// Called by the owning thread only: a load and a store, no locked instruction.
    #[inline]
    fn record(&self, ns: u64, epoch: u64) {
        let b = &self.buckets[bucket(ns)];
        b.store(b.load(Relaxed) + 1, Relaxed);
        self.sum
            .store(self.sum.load(Relaxed).wrapping_add(ns), Relaxed);
        if self.max_epoch.load(Relaxed) != epoch {
            self.max.store(ns, Relaxed);
            self.max_epoch.store(epoch, Relaxed);
        } else if ns > self.max.load(Relaxed) {
            self.max.store(ns, Relaxed);
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    /// Slots of live threads.
    live: Vec<Arc<Slot>>,
    /// Counts of threads that have exited.
    retired: Totals,
    /// Counts at the last reset, subtracted from every summary.
    baseline: Totals,
}

/// A histogram of durations that many threads record into.
#[derive(Debug)]
pub struct Histogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: usize,
    epoch: AtomicU64,
    shared: Mutex<Shared>,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn retire(&self, slot: &Arc<Slot>) {
        let epoch = self.epoch.load(Relaxed);
        let mut s = self.lock();
        s.live.retain(|l| !Arc::ptr_eq(l, slot));
        s.retired.add(slot, epoch);
    }
}

/// A thread's slot in one histogram; folded into the retired totals when the thread exits.
struct Held {
    id: usize,
    slot: Arc<Slot>,
    owner: Weak<Inner>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.upgrade() {
            owner.retire(&self.slot);
        }
    }
}

thread_local! {
    static SLOTS: RefCell<Vec<Held>> = const { RefCell::new(Vec::new()) };
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Relaxed),
                epoch: AtomicU64::new(0),
                shared: Mutex::new(Shared::default()),
            }),
        }
    }
}

impl Histogram {
    /// Records one duration into this thread's slot.
    pub fn record(&self, d: Duration) {
        let ns = d
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(d.subsec_nanos()));
        let epoch = self.inner.epoch.load(Relaxed);
        let recorded = SLOTS.try_with(|slots| {
            let mut slots = slots.borrow_mut();
            match slots.iter().find(|h| h.id == self.inner.id) {
                Some(h) => h.slot.record(ns, epoch),
                None => self.first_record(&mut slots, ns, epoch),
            }
        });
        if recorded.is_err() {
            // The thread is exiting and its slots are gone: record straight into the totals.
            let one = Slot::new();
            one.record(ns, epoch);
            self.inner.lock().retired.add(&one, epoch);
        }
    }

    #[cold]
    fn first_record(&self, slots: &mut Vec<Held>, ns: u64, epoch: u64) {
        slots.retain(|h| h.owner.strong_count() > 0);
        let slot = Arc::new(Slot::new());
        slot.record(ns, epoch);
        self.inner.lock().live.push(slot.clone());
        slots.push(Held {
            id: self.inner.id,
            slot,
            owner: Arc::downgrade(&self.inner),
        });
    }

    /// Starts counting from zero: later summaries subtract today's counts, and the maximum
    /// restarts. Recording threads are never blocked or overwritten.
    pub fn reset(&self) {
        let mut s = self.inner.lock();
        let epoch = self.inner.epoch.fetch_add(1, Relaxed) + 1;
        let mut now = s.retired.clone();
        for slot in &s.live {
            now.add(slot, epoch);
        }
        now.max = 0;
        s.baseline = now;
        s.retired.max = 0;
    }

    /// Reads a summary. Records made meanwhile may be partly included.
    pub fn summary(&self) -> Summary {
        let epoch = self.inner.epoch.load(Relaxed);
        let s = self.inner.lock();
        let mut total = s.retired.clone();
        for slot in &s.live {
            total.add(slot, epoch);
        }
        total.summary(&s.baseline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_their_values() {
        for ns in [
            0u64,
            1,
            3,
            4,
            5,
            7,
            8,
            100,
            1000,
            123_456,
            1 << 40,
            u64::MAX,
        ] {
            let i = bucket(ns);
            assert!(
                upper_edge(i) >= ns,
                "{ns} in bucket {i} with edge {}",
                upper_edge(i)
            );
            if i > 0 {
                assert!(upper_edge(i - 1) < ns, "{ns}");
            }
        }
    }

    #[test]
    fn quantiles_are_within_a_bucket() {
        let h = Histogram::default();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        assert_eq!(s.max, Duration::from_micros(1000));
        assert_eq!(s.total, Duration::from_micros(500_500));
        for (got, want) in [(s.p50, 500.0), (s.p90, 900.0), (s.p99, 990.0)] {
            let got = got.as_nanos() as f64 / 1000.0;
            assert!(got >= want && got <= want * 1.19, "{got} vs {want}");
        }
        h.reset();
        assert_eq!(h.summary(), Summary::default());
        h.record(Duration::from_micros(7));
        let s = h.summary();
        assert_eq!(
            (s.count, s.max, s.total),
            (1, Duration::from_micros(7), Duration::from_micros(7))
        );
    }

    #[test]
    fn threads_that_exit_keep_their_counts() {
        let h = Arc::new(Histogram::default());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        h.record(Duration::from_micros(10 + t));
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let s = h.summary();
        assert_eq!(s.count, 1000);
        assert_eq!(s.max, Duration::from_micros(13));
        assert_eq!(s.total, Duration::from_micros(250 * (10 + 11 + 12 + 13)));
        assert!(
            h.inner.lock().live.is_empty(),
            "exited threads are folded in"
        );
    }
}
