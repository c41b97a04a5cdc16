//! A read replica's statistics: where it is and how far behind its primary, next to the usual
//! pool counters ([`crate::PoolStats::replica`]).
//!
//! What Litestream's VFS tells (0.5.17, `docs/VFS.md`): the last transaction it applied
//! (`litestream_txid()`) and the whole seconds since it last polled the replica
//! (`litestream_lag()`), nothing about the primary. How far behind the primary a replica is
//! comes from a marker the primary writes: with `heartbeat = "1s"` on the primary's database
//! (see `litepool::pools`), its time goes into table `litepool_heartbeat` every interval, and
//! the replica's staleness is the time since the newest heartbeat it can read. That is an upper
//! bound (every commit before the heartbeat is visible; later ones may be too), as exact as the
//! two machines' clocks agree. Without a heartbeat, staleness is unknown and says so (`None`).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::histogram::{Histogram, Summary};

/// The table a primary's heartbeat goes into: one row, `unix_ms` the primary's clock.
pub const HEARTBEAT_TABLE: &str = "litepool_heartbeat";

/// A replica's position and staleness, as last sampled (every 500 ms, `litepool::pools::WATCH_INTERVAL`,
/// on a connection of litepool's own, not one of the pool's).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ReplicaStats {
    /// The replica's URL.
    pub url: String,
    /// The last transaction the replica applied, as Litestream numbers them (16 hex digits);
    /// `None` before the first sample.
    pub txid: Option<String>,
    /// Whole seconds since the VFS last polled the replica successfully (as it said at the last
    /// sample, plus the time since); `None` before its first poll.
    pub poll_age_seconds: Option<u64>,
    /// The newest heartbeat of the primary the replica holds (JSON: RFC 3339, UTC); `None`
    /// without one (the primary has no `heartbeat`, or none replicated yet).
    #[serde(serialize_with = "optional_rfc3339")]
    pub heartbeat: Option<SystemTime>,
    /// How far behind the primary the replica is, at most: the time from `heartbeat` to now
    /// (JSON: `staleness_seconds`). `None` without a heartbeat.
    #[serde(rename = "staleness_seconds", serialize_with = "optional_seconds")]
    pub staleness: Option<Duration>,
    /// Staleness over every sample since the counters started (p50, p99, max).
    #[serde(rename = "staleness_summary")]
    pub staleness_summary: Summary,
    /// Samples taken.
    pub samples: u64,
    /// Samples that failed, and the last failure.
    pub sample_errors: u64,
    /// The last failed sample's error.
    pub last_sample_error: Option<String>,
}

fn optional_rfc3339<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => crate::units::rfc3339(t, s),
        None => s.serialize_none(),
    }
}

fn optional_seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// What one sample read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// `litestream_txid()`.
    pub txid: String,
    /// `litestream_lag()`, `None` when negative (no poll yet).
    pub poll_age_seconds: Option<u64>,
    /// The primary's newest heartbeat, milliseconds since the Unix epoch.
    pub heartbeat_unix_ms: Option<i64>,
}

/// The live counters of one replica pool.
#[derive(Debug)]
pub struct ReplicaCounters {
    last: Mutex<ReplicaStats>,
    /// When the last successful sample was taken.
    sampled: Mutex<Option<SystemTime>>,
    staleness: Histogram,
}

impl ReplicaCounters {
    /// Counters for the replica at `url`.
    pub fn new(url: &str) -> Self {
        ReplicaCounters {
            last: Mutex::new(ReplicaStats {
                url: url.to_owned(),
                ..ReplicaStats::default()
            }),
            sampled: Mutex::new(None),
            staleness: Histogram::default(),
        }
    }

    /// Records a sample taken `at`.
    pub fn record(&self, sample: Sample, at: SystemTime) {
        let heartbeat = sample
            .heartbeat_unix_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
        // A heartbeat ahead of this clock (clocks apart) counts as no staleness, not negative.
        let staleness = heartbeat.map(|h| at.duration_since(h).unwrap_or(Duration::ZERO));
        if let Some(s) = staleness {
            self.staleness.record(s);
        }
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.txid = Some(sample.txid);
        last.poll_age_seconds = sample.poll_age_seconds;
        last.heartbeat = heartbeat;
        last.staleness = staleness;
        last.samples += 1;
        *self
            .sampled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(at);
    }

    /// Records a failed sample.
    pub fn record_error(&self, error: String) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.sample_errors += 1;
        last.last_sample_error = Some(error);
    }

    /// The statistics now: staleness and poll age as of now, not of the last sample, so that
    /// they keep growing when samples stop coming (a stalled storage).
    pub fn snapshot(&self) -> ReplicaStats {
        self.snapshot_at(SystemTime::now())
    }

    fn snapshot_at(&self, now: SystemTime) -> ReplicaStats {
        let mut s = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let sampled = *self
            .sampled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let since = |t: SystemTime| now.duration_since(t).unwrap_or(Duration::ZERO);
        if let Some(h) = s.heartbeat {
            s.staleness = Some(since(h));
        }
        if let (Some(age), Some(at)) = (s.poll_age_seconds, sampled) {
            s.poll_age_seconds = Some(age + since(at).as_secs());
        }
        s.staleness_summary = self.staleness.summary();
        s
    }

    /// Restarts the staleness summary (the last position stays).
    pub fn reset(&self) {
        self.staleness.reset();
    }
}

impl std::fmt::Display for ReplicaStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let human = crate::units::duration;
        write!(f, "  replica {}: ", self.url)?;
        match &self.txid {
            Some(txid) => write!(f, "txid {txid}")?,
            None => write!(f, "no position yet")?,
        }
        if let Some(age) = self.poll_age_seconds {
            write!(f, ", polled {age}s ago")?;
        }
        match self.staleness {
            Some(s) => write!(
                f,
                ", behind the primary at most {} (p50 {} p99 {} max {} over {} samples)",
                human(s),
                human(self.staleness_summary.p50),
                human(self.staleness_summary.p99),
                human(self.staleness_summary.max),
                self.staleness_summary.count
            )?,
            None => write!(
                f,
                ", staleness unknown (no heartbeat from the primary: set heartbeat on its database)"
            )?,
        }
        if let Some(e) = &self.last_sample_error {
            write!(f, "; last sample failed: {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness_is_the_time_since_the_heartbeat_and_never_negative() {
        let c = ReplicaCounters::new("file:///r/jobs");
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(10_000);
        c.record(
            Sample {
                txid: "00000000000000a1".into(),
                poll_age_seconds: Some(0),
                heartbeat_unix_ms: Some(9_250),
            },
            at,
        );
        let s = c.snapshot_at(at);
        assert_eq!(s.staleness, Some(Duration::from_millis(750)));
        // No sample for 5 s more: staleness and poll age grow with the time.
        let later = c.snapshot_at(at + Duration::from_secs(5));
        assert_eq!(later.staleness, Some(Duration::from_millis(5750)));
        assert_eq!(later.poll_age_seconds, Some(5));
        assert_eq!(s.txid.as_deref(), Some("00000000000000a1"));
        assert_eq!(s.samples, 1);
        assert_eq!(s.staleness_summary.count, 1);
        c.record(
            Sample {
                txid: "00000000000000a2".into(),
                poll_age_seconds: None,
                heartbeat_unix_ms: Some(11_000),
            },
            at,
        );
        assert_eq!(c.snapshot_at(at).staleness, Some(Duration::ZERO));
        c.record(
            Sample {
                txid: "00000000000000a2".into(),
                poll_age_seconds: None,
                heartbeat_unix_ms: None,
            },
            at,
        );
        let s = c.snapshot_at(at);
        assert_eq!(s.staleness, None);
        assert!(s.to_string().contains("staleness unknown"), "{s}");
    }
}
