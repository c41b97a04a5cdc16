//! litepool's metrics, described once in [`METRICS`]: the `metrics` facade exporter (feature
//! `metrics`) and `litepool stats --format prometheus` both take their names, kinds, units and
//! help texts from it, so a dashboard written for one reads the other.
//!
//! The names are those of the OpenTelemetry semantic conventions for database client connection
//! pools (<https://opentelemetry.io/docs/specs/semconv/database/database-metrics/>) as
//! OpenTelemetry's Prometheus exporter writes them: dots as underscores, `_total` on counters,
//! the unit (`_seconds`, `_bytes`) on durations and sizes. litepool registers them under these
//! names already, because `metrics-exporter-prometheus` only replaces dots and appends nothing
//! (keep its `set_enable_unit_suffix` off, its default). Each entry also gives the OpenTelemetry
//! name it stands for.
//!
//! Pool metrics carry `db.client.connection.pool.name` (`jobs`, `jobs.writer`, …) and
//! `db.system.name = "sqlite"`; database metrics (the write path and checkpoints) carry
//! `db.namespace` (the database's name) and `db.system.name`. Durations are histograms in
//! seconds, recorded as each event happens (handles are registered once per pool, so recording
//! allocates nothing); gauges and the counters read from snapshots are published by
//! `Pools`' watcher thread every `WATCH_INTERVAL` (500 ms). Install the recorder
//! before building the pools: they describe every metric (unit and help) and register their
//! handles then.
//!
//! On a split database the writer pool's own checkout wait is the group commit's committer
//! taking the writer, well under a microsecond: the write path's wait is
//! `litepool_write_queue_wait_seconds` and its latency `litepool_write_latency_seconds`.

/// What kind of metric an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// Only goes up (until the statistics are reset).
    Counter,
    /// A value now.
    Gauge,
    /// A distribution of values; the Prometheus text output renders it as a summary.
    Histogram,
}

impl Kind {
    /// The word Prometheus' `# TYPE` line uses for it in litepool's output (`summary` for a
    /// histogram, as `metrics-exporter-prometheus` renders one by default).
    pub fn prometheus_type(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "summary",
        }
    }
}

/// The unit of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unit {
    /// Seconds (`s`).
    Seconds,
    /// Bytes (`By`).
    Bytes,
    /// A count of things (connections, pages, writes).
    Count,
}

impl Unit {
    /// The UCUM symbol OpenTelemetry uses: `s`, `By`, `1`.
    pub fn ucum(self) -> &'static str {
        match self {
            Unit::Seconds => "s",
            Unit::Bytes => "By",
            Unit::Count => "1",
        }
    }

    /// The `metrics` crate's unit.
    #[cfg(feature = "metrics")]
    pub fn to_metrics(self) -> metrics::Unit {
        match self {
            Unit::Seconds => metrics::Unit::Seconds,
            Unit::Bytes => metrics::Unit::Bytes,
            Unit::Count => metrics::Unit::Count,
        }
    }
}

/// Which labels a metric carries besides `db.system.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `db.client.connection.pool.name`: one series per pool.
    Pool,
    /// `db.namespace`: one series per database.
    Database,
}

/// One metric: its name (as exported), kind, unit, help text and scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricDesc {
    /// The name both outputs use, e.g. `db_client_connection_wait_time_seconds`.
    pub name: &'static str,
    /// The OpenTelemetry name it stands for, e.g. `db.client.connection.wait_time`.
    pub otel: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Its unit.
    pub unit: Unit,
    /// One sentence for `# HELP` and `describe_*`.
    pub help: &'static str,
    /// Per pool or per database.
    pub scope: Scope,
    /// An extra label, if the metric has one (`db.client.connection.state`, `litepool.checkpoint.kind`).
    pub label: Option<&'static str>,
}

const fn m(
    name: &'static str,
    otel: &'static str,
    kind: Kind,
    unit: Unit,
    scope: Scope,
    label: Option<&'static str>,
    help: &'static str,
) -> MetricDesc {
    MetricDesc {
        name,
        otel,
        kind,
        unit,
        help,
        scope,
        label,
    }
}

use Kind::{Counter as C, Gauge as G, Histogram as H};
use Scope::{Database as D, Pool as P};
use Unit::{Bytes as B, Count as N, Seconds as S};

#[rustfmt::skip]
/// Every metric litepool exports, in the order `litepool stats --format prometheus` prints them.
pub const METRICS: &[MetricDesc] = &[
    m(names::COUNT, "db.client.connection.count", G, N, P, Some(names::STATE), "Connections open, by state (idle, used)."),
    m(names::MAX, "db.client.connection.max", G, N, P, None, "The pool's max_size."),
    m(names::IDLE_MIN, "db.client.connection.idle.min", G, N, P, None, "The pool's min_idle (r2d2's default: max_size)."),
    m(names::PENDING, "db.client.connection.pending_requests", G, N, P, None, "Callers waiting for a connection now."),
    m(names::TIMEOUTS, "db.client.connection.timeouts", C, N, P, None, "Checkouts that timed out."),
    m(names::CREATE_TIME, "db.client.connection.create_time", H, S, P, None, "Time to open a connection and apply its profile."),
    m(names::WAIT_TIME, "db.client.connection.wait_time", H, S, P, None, "Time to get a connection from the pool (on a split database's writer: the committer's)."),
    m(names::USE_TIME, "db.client.connection.use_time", H, S, P, None, "Time from checkout to check-in."),
    m(names::CACHE_HIT, "litepool.cache.hit", C, N, P, None, "SQLite page-cache hits."),
    m(names::CACHE_MISS, "litepool.cache.miss", C, N, P, None, "SQLite page-cache misses."),
    m(names::CACHE_WRITE, "litepool.cache.write", C, N, P, None, "Pages written by SQLite."),
    m(names::CACHE_SPILL, "litepool.cache.spill", C, N, P, None, "Dirty pages written early because a transaction outgrew the cache."),
    m(names::CACHE_USED, "litepool.cache.used", G, B, P, None, "Page-cache memory held by the pool's connections."),
    m(names::REPLICA_STALENESS, "litepool.replica.staleness", G, S, P, None, "How far behind its primary a read replica was at the last sample, at most (the time since the primary's newest heartbeat it holds)."),
    m(names::REPLICA_TXID, "litepool.replica.txid", G, N, P, None, "The last Litestream transaction a read replica applied."),
    m(names::REPLICA_POLL_AGE, "litepool.replica.poll_age", G, S, P, None, "Whole seconds since Litestream's VFS last polled a read replica's storage."),
    m(names::WRITE_QUEUE_WAIT, "litepool.write.queue_wait", H, S, D, None, "Time from write() to its closure starting (group commit): the write path's wait."),
    m(names::WRITE_LATENCY, "litepool.write.latency", H, S, D, None, "Time from write() to its answer, after COMMIT (group commit)."),
    m(names::WRITE_BATCH_SIZE, "litepool.write.batch_size", H, N, D, None, "Closures run per group-commit transaction."),
    m(names::WRITES, "litepool.writes", C, N, D, None, "Writes committed (answered Ok) by group commit."),
    m(names::WRITE_FAILURES, "litepool.write.failures", C, N, D, None, "Writes answered Err by group commit: nothing of them committed."),
    m(names::WRITE_CANCELLED, "litepool.write.cancelled", C, N, D, None, "write_async futures dropped before their closure started."),
    m(names::WRITE_QUEUED, "litepool.write.queued", G, N, D, None, "Writes waiting now for their closure to start."),
    m(names::CHECKPOINTS, "litepool.checkpoints", C, N, D, Some(names::CHECKPOINT_KIND), "Checkpoints run, by kind (restart, truncate, backlog, at_checkin, between_batches)."),
    m(names::CHECKPOINT_BUSY, "litepool.checkpoint.busy", C, N, D, None, "Background checkpoints that gave up on a busy database."),
    m(names::WAL_SIZE, "litepool.wal.size", G, B, D, None, "The WAL file's size now."),
    m(names::WAL_PEAK, "litepool.wal.peak", G, B, D, None, "The largest WAL file the checkpointer saw."),
    m(names::WAL_PENDING_PEAK, "litepool.wal.pending_peak", G, B, D, None, "The most WAL bytes the checkpointer saw not yet checkpointed."),
];

/// Registers the unit and help text of every metric in [`METRICS`] with the current recorder
/// (`describe_counter!` and friends). Every pool calls it as it registers its handles (through
/// `Pools::new` or an adapter's), so whichever recorder receives a pool's metrics has their
/// descriptions; describing again is harmless (a per-process "once" would miss a recorder
/// installed later or set with `metrics::with_local_recorder`).
#[cfg(feature = "metrics")]
pub fn describe() {
    for d in METRICS {
        let (name, unit, help) = (d.name, d.unit.to_metrics(), d.help);
        match d.kind {
            Kind::Counter => metrics::describe_counter!(name, unit, help),
            Kind::Gauge => metrics::describe_gauge!(name, unit, help),
            Kind::Histogram => metrics::describe_histogram!(name, unit, help),
        }
    }
}

/// The names in [`METRICS`], for code and tests.
pub mod names {
    /// Connections open, by state.
    pub const COUNT: &str = "db_client_connection_count";
    /// The pool's `max_size`.
    pub const MAX: &str = "db_client_connection_max";
    /// The pool's `min_idle`.
    pub const IDLE_MIN: &str = "db_client_connection_idle_min";
    /// Callers waiting for a connection.
    pub const PENDING: &str = "db_client_connection_pending_requests";
    /// Timed-out checkouts.
    pub const TIMEOUTS: &str = "db_client_connection_timeouts_total";
    /// Opening a connection, seconds.
    pub const CREATE_TIME: &str = "db_client_connection_create_time_seconds";
    /// Waiting for a connection, seconds.
    pub const WAIT_TIME: &str = "db_client_connection_wait_time_seconds";
    /// Holding a connection, seconds.
    pub const USE_TIME: &str = "db_client_connection_use_time_seconds";
    /// Page-cache hits.
    pub const CACHE_HIT: &str = "litepool_cache_hit_total";
    /// Page-cache misses.
    pub const CACHE_MISS: &str = "litepool_cache_miss_total";
    /// Pages written.
    pub const CACHE_WRITE: &str = "litepool_cache_write_total";
    /// Pages spilled.
    pub const CACHE_SPILL: &str = "litepool_cache_spill_total";
    /// Page-cache bytes held.
    pub const CACHE_USED: &str = "litepool_cache_used_bytes";
    /// A read replica's staleness at its last sample, at most, seconds.
    pub const REPLICA_STALENESS: &str = "litepool_replica_staleness_seconds";
    /// A read replica's last Litestream transaction.
    pub const REPLICA_TXID: &str = "litepool_replica_txid";
    /// Seconds since Litestream's VFS last polled a read replica.
    pub const REPLICA_POLL_AGE: &str = "litepool_replica_poll_age_seconds";
    /// Group commit: from `write()` to the closure starting, seconds.
    pub const WRITE_QUEUE_WAIT: &str = "litepool_write_queue_wait_seconds";
    /// Group commit: from `write()` to the answer, seconds.
    pub const WRITE_LATENCY: &str = "litepool_write_latency_seconds";
    /// Group commit: closures per batch.
    pub const WRITE_BATCH_SIZE: &str = "litepool_write_batch_size";
    /// Group commit: writes committed.
    pub const WRITES: &str = "litepool_writes_total";
    /// Group commit: writes answered `Err`.
    pub const WRITE_FAILURES: &str = "litepool_write_failures_total";
    /// Group commit: `write_async` futures dropped before their closure started.
    pub const WRITE_CANCELLED: &str = "litepool_write_cancelled_total";
    /// Group commit: writes waiting now.
    pub const WRITE_QUEUED: &str = "litepool_write_queued";
    /// Checkpoints run, by kind.
    pub const CHECKPOINTS: &str = "litepool_checkpoints_total";
    /// Background checkpoints that found the database busy.
    pub const CHECKPOINT_BUSY: &str = "litepool_checkpoint_busy_total";
    /// The WAL's size now, bytes.
    pub const WAL_SIZE: &str = "litepool_wal_size_bytes";
    /// The largest WAL seen, bytes.
    pub const WAL_PEAK: &str = "litepool_wal_peak_bytes";
    /// The most WAL bytes pending seen.
    pub const WAL_PENDING_PEAK: &str = "litepool_wal_pending_peak_bytes";
    /// The state attribute of [`COUNT`].
    pub const STATE: &str = "db.client.connection.state";
    /// The kind attribute of [`CHECKPOINTS`].
    pub const CHECKPOINT_KIND: &str = "litepool.checkpoint.kind";
    /// The pool attribute of every pool metric.
    pub const POOL: &str = "db.client.connection.pool.name";
    /// The database attribute of every database metric.
    pub const DATABASE: &str = "db.namespace";
    /// The system attribute of every metric.
    pub const SYSTEM: &str = "db.system.name";
}

#[cfg(feature = "metrics")]
pub(crate) use recorder::{database_labels, PoolMetrics, ReplicaMetrics, WriteMetrics};

#[cfg(feature = "metrics")]
mod recorder {
    use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
    use std::time::Duration;

    use metrics::{Counter, Gauge, Histogram, Label};

    use super::names;
    use crate::stats::PoolStats;

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
            super::describe();
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
                cache: [
                    names::CACHE_HIT,
                    names::CACHE_MISS,
                    names::CACHE_WRITE,
                    names::CACHE_SPILL,
                ]
                .map(|name| metrics::counter!(name, labels())),
                cache_used: metrics::gauge!(names::CACHE_USED, labels()),
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

    /// The labels of a database metric.
    pub(crate) fn database_labels(database: &str) -> Vec<Label> {
        vec![
            Label::new(names::DATABASE, database.to_owned()),
            Label::new(names::SYSTEM, "sqlite"),
        ]
    }

    /// The group commit's histograms of one database, recorded as each write and batch happens.
    #[derive(Debug)]
    pub(crate) struct WriteMetrics {
        queue_wait: Histogram,
        latency: Histogram,
        batch_size: Histogram,
    }

    impl WriteMetrics {
        /// After the database's pools, which have described every metric.
        pub(crate) fn new(database: &str) -> WriteMetrics {
            WriteMetrics {
                queue_wait: metrics::histogram!(names::WRITE_QUEUE_WAIT, database_labels(database)),
                latency: metrics::histogram!(names::WRITE_LATENCY, database_labels(database)),
                batch_size: metrics::histogram!(names::WRITE_BATCH_SIZE, database_labels(database)),
            }
        }

        pub(crate) fn queue_wait(&self, d: Duration) {
            self.queue_wait.record(d.as_secs_f64());
        }

        pub(crate) fn latency(&self, d: Duration) {
            self.latency.record(d.as_secs_f64());
        }

        pub(crate) fn batch(&self, closures: u64) {
            self.batch_size.record(closures as f64);
        }
    }

    /// A read replica's gauges, set at each sample (staleness only once known).
    #[derive(Debug)]
    pub(crate) struct ReplicaMetrics {
        pool: String,
        txid: Gauge,
        poll_age: Gauge,
    }

    impl ReplicaMetrics {
        pub(crate) fn new(pool: &str) -> ReplicaMetrics {
            super::describe();
            let labels = pool_labels(pool);
            ReplicaMetrics {
                pool: pool.to_owned(),
                txid: metrics::gauge!(names::REPLICA_TXID, labels.clone()),
                poll_age: metrics::gauge!(names::REPLICA_POLL_AGE, labels),
            }
        }

        pub(crate) fn publish(&self, s: &crate::staleness::ReplicaStats) {
            if let Some(txid) = s
                .txid
                .as_deref()
                .and_then(|t| u64::from_str_radix(t, 16).ok())
            {
                self.txid.set(txid as f64);
            }
            if let Some(age) = s.poll_age_seconds {
                self.poll_age.set(age as f64);
            }
            if let Some(d) = s.staleness {
                metrics::gauge!(names::REPLICA_STALENESS, pool_labels(&self.pool))
                    .set(d.as_secs_f64());
            }
        }
    }

    fn pool_labels(pool: &str) -> Vec<Label> {
        vec![
            Label::new(names::POOL, pool.to_owned()),
            Label::new(names::SYSTEM, "sqlite"),
        ]
    }
}
