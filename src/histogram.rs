//! A fixed-bucket, lock-free histogram of durations: constant memory, one atomic add per record.
//!
//! Buckets are log-linear: each power of two of nanoseconds is split into 4, so a quantile is
//! reported within 19% of the true value (the upper edge of its bucket, capped by the maximum).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::Serialize;

const SUB: u32 = 4; // sub-buckets per power of two
const BUCKETS: usize = 64 * SUB as usize;

/// Counts (per bucket), sum and maximum of recorded durations.
#[derive(Debug)]
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }
}

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
    (1u64 << log)
        .checked_add((sub + 1) * width - 1)
        .unwrap_or(u64::MAX)
}

/// Summary of a histogram: total, maximum and quantiles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// How many durations were recorded.
    pub count: u64,
    /// Their sum.
    #[serde(serialize_with = "micros")]
    pub total: Duration,
    /// The largest.
    #[serde(serialize_with = "micros")]
    pub max: Duration,
    /// Median.
    #[serde(serialize_with = "micros")]
    pub p50: Duration,
    /// 90th percentile.
    #[serde(serialize_with = "micros")]
    pub p90: Duration,
    /// 99th percentile.
    #[serde(serialize_with = "micros")]
    pub p99: Duration,
}

/// Durations serialise as microseconds (a float), e.g. `"p99": 12.5`.
fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_nanos() as f64 / 1000.0)
}

impl Histogram {
    /// Records one duration.
    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket(ns)].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
        if ns > self.max_ns.load(Relaxed) {
            self.max_ns.fetch_max(ns, Relaxed);
        }
    }

    /// Zeroes everything.
    pub fn reset(&self) {
        for b in self.buckets.iter() {
            b.store(0, Relaxed);
        }
        self.sum_ns.store(0, Relaxed);
        self.max_ns.store(0, Relaxed);
    }

    /// Reads a summary. Concurrent records may be partly included.
    pub fn summary(&self) -> Summary {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let n: u64 = counts.iter().sum();
        let max = self.max_ns.load(Relaxed);
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
            total: Duration::from_nanos(self.sum_ns.load(Relaxed)),
            max: Duration::from_nanos(max),
            p50: quantile(0.50),
            p90: quantile(0.90),
            p99: quantile(0.99),
        }
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
    }
}
