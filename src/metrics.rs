//! Pool statistics through the [`metrics`](https://docs.rs/metrics) facade, under the
//! OpenTelemetry semantic conventions for database client connection pools
//! (<https://opentelemetry.io/docs/specs/semconv/database/database-metrics/>). Feature `metrics`.
//!
//! Every metric carries `db.client.connection.pool.name` (`jobs`, `jobs.writer`, …) and
//! `db.system.name = "sqlite"`. Durations are histograms in seconds, recorded as r2d2 reports
//! each event (handles are registered once per pool, so recording allocates nothing); the
//! gauges and the page-cache counters are published by [`crate::Pools`]' watcher thread every
//! [`crate::pools::WATCH_INTERVAL`]. Install the recorder before building the pools.
//!
//! | name | kind | what |
//! |---|---|---|
//! | `db.client.connection.count` | gauge, `db.client.connection.state` = `idle` \| `used` | connections open |
//! | `db.client.connection.max` | gauge | `max_size` |
//! | `db.client.connection.idle.min` | gauge | `min_idle` (r2d2's default: `max_size`) |
//! | `db.client.connection.pending_requests` | gauge | callers waiting in `get()` |
//! | `db.client.connection.timeouts` | counter | `get()` calls that timed out |
//! | `db.client.connection.create_time` | histogram, s | opening a connection |
//! | `db.client.connection.wait_time` | histogram, s | waiting in `get()` |
//! | `db.client.connection.use_time` | histogram, s | from checkout to check-in |
//! | `litepool.cache.hit`, `.miss`, `.write`, `.spill` | counters | SQLite page-cache pages |
//! | `litepool.cache.used` | gauge, bytes | page-cache memory held |

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Label};

use crate::stats::PoolStats;

/// The names above, for tests and the Prometheus output.
pub mod names {
    /// Connections open, by state.
    pub const COUNT: &str = "db.client.connection.count";
    /// The pool's `max_size`.
    pub const MAX: &str = "db.client.connection.max";
    /// The pool's `min_idle`.
    pub const IDLE_MIN: &str = "db.client.connection.idle.min";
    /// Callers waiting for a connection.
    pub const PENDING: &str = "db.client.connection.pending_requests";
    /// Timed-out checkouts.
    pub const TIMEOUTS: &str = "db.client.connection.timeouts";
    /// Opening a connection, seconds.
    pub const CREATE_TIME: &str = "db.client.connection.create_time";
    /// Waiting for a connection, seconds.
    pub const WAIT_TIME: &str = "db.client.connection.wait_time";
    /// Holding a connection, seconds.
    pub const USE_TIME: &str = "db.client.connection.use_time";
    /// The state attribute of [`COUNT`].
    pub const STATE: &str = "db.client.connection.state";
    /// The pool attribute of every metric.
    pub const POOL: &str = "db.client.connection.pool.name";
    /// The system attribute of every metric.
    pub const SYSTEM: &str = "db.system.name";
}

/// The registered handles of one pool.
#[derive(Debug)]
pub(crate) struct PoolMetrics {
    create: Histogram,
    wait: Histogram,
    used: Histogram,
    timeouts: Counter,
    pending: Gauge,
    waiting: AtomicI64,
    idle: Gauge,
    in_use: Gauge,
    max: Gauge,
    idle_min: Gauge,
    cache: [Counter; 4],
    cache_used: Gauge,
}

impl PoolMetrics {
    pub(crate) fn new(pool: &str) -> PoolMetrics {
        let labels = || {
            vec![
                Label::new(names::POOL, pool.to_owned()),
                Label::new(names::SYSTEM, "sqlite"),
            ]
        };
        let with_state = |state: &'static str| {
            let mut l = labels();
            l.push(Label::new(names::STATE, state));
            l
        };
        let cache =
            |what: &'static str| metrics::counter!(format!("litepool.cache.{what}"), labels());
        PoolMetrics {
            create: metrics::histogram!(names::CREATE_TIME, labels()),
            wait: metrics::histogram!(names::WAIT_TIME, labels()),
            used: metrics::histogram!(names::USE_TIME, labels()),
            timeouts: metrics::counter!(names::TIMEOUTS, labels()),
            pending: metrics::gauge!(names::PENDING, labels()),
            waiting: AtomicI64::new(0),
            idle: metrics::gauge!(names::COUNT, with_state("idle")),
            in_use: metrics::gauge!(names::COUNT, with_state("used")),
            max: metrics::gauge!(names::MAX, labels()),
            idle_min: metrics::gauge!(names::IDLE_MIN, labels()),
            cache: [cache("hit"), cache("miss"), cache("write"), cache("spill")],
            cache_used: metrics::gauge!("litepool.cache.used", labels()),
        }
    }

    pub(crate) fn create(&self, d: Duration) {
        self.create.record(d.as_secs_f64());
    }

    pub(crate) fn wait(&self, d: Duration) {
        self.wait.record(d.as_secs_f64());
    }

    pub(crate) fn used(&self, d: Duration) {
        self.used.record(d.as_secs_f64());
    }

    pub(crate) fn timeout(&self) {
        self.timeouts.increment(1);
    }

    /// A caller starts (`+1`) or stops (`-1`) waiting in `get()`.
    pub(crate) fn pending(&self, delta: i64) {
        let now = self.waiting.fetch_add(delta, Relaxed) + delta;
        self.pending.set(now.max(0) as f64);
    }

    /// Publishes the gauges and the page-cache counters of a snapshot.
    pub(crate) fn publish(&self, s: &PoolStats, min_idle: u32) {
        self.idle.set(f64::from(s.idle));
        self.in_use.set(f64::from(s.in_use));
        self.max.set(f64::from(s.max_size));
        self.idle_min.set(f64::from(min_idle));
        for (c, v) in
            self.cache
                .iter()
                .zip([s.cache.hit, s.cache.miss, s.cache.write, s.cache.spill])
        {
            c.absolute(v);
        }
        self.cache_used.set(s.cache.used_bytes as f64);
    }
}
