//! Pool statistics: counters fed by r2d2's [`HandleEvent`] and [`HandleError`], page-cache
//! counters sampled from SQLite at check-in, and [`PoolStats`] snapshots.
//!
//! Everything is atomic: recording takes no lock on the checkout path, and a snapshot is
//! **eventually consistent** (counters read one by one while the pool keeps running).

mod display;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use r2d2::event::{AcquireEvent, CheckinEvent, CheckoutEvent, ReleaseEvent, TimeoutEvent};
use r2d2::{HandleError, HandleEvent};
use serde::Serialize;

use crate::error::{LastError, LastErrorHandle};
use crate::histogram::{Histogram, Summary};

/// A checkout that took at least this long counts as having waited. An idle connection is handed
/// out in well under a microsecond; opening one, or waiting for a check-in, takes far longer.
pub const WAIT_THRESHOLD: Duration = Duration::from_micros(50);

/// The live counters of one pool. Shared by its event handler, error handler and connections.
#[derive(Debug)]
pub struct PoolCounters {
    database: String,
    /// The profile's name; replaced by a reload that changes it.
    profile: Mutex<String>,
    path: PathBuf,
    /// Since when the counters run: the pool's start or the last reset.
    since: Mutex<(SystemTime, Instant)>,
    max_lifetime: Option<Duration>,
    last_error: LastErrorHandle,
    waited: AtomicU64,
    timeouts: AtomicU64,
    created: AtomicU64,
    closed: AtomicU64,
    closed_max_lifetime: AtomicU64,
    errors: AtomicU64,
    customizer_failures: AtomicU64,
    optimize_runs: AtomicU64,
    wait: Histogram,
    hold: Histogram,
    create: Histogram,
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::PoolMetrics,
    cache_hit: AtomicU64,
    cache_miss: AtomicU64,
    cache_write: AtomicU64,
    cache_spill: AtomicU64,
    cache_used: AtomicI64,
}

/// The bytes one connection's cache held at its last sample; removes them from the pool's sum
/// when r2d2 drops the connection (its extensions drop with it).
#[cfg(feature = "sqlite")]
struct CacheUsed {
    bytes: i64,
    counters: Arc<PoolCounters>,
}

#[cfg(feature = "sqlite")]
impl Drop for CacheUsed {
    fn drop(&mut self) {
        self.counters.cache_used.fetch_sub(self.bytes, Relaxed);
    }
}

impl PoolCounters {
    /// Counters for the pool of `database`. `max_lifetime` classifies closed connections;
    /// `last_error` is the customizer's.
    pub fn new(
        database: impl Into<String>,
        max_lifetime: Option<Duration>,
        last_error: LastErrorHandle,
    ) -> Self {
        let zero = || AtomicU64::new(0);
        let database = database.into();
        PoolCounters {
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::PoolMetrics::new(&database),
            database,
            profile: Mutex::new(String::new()),
            path: PathBuf::new(),
            since: Mutex::new((SystemTime::now(), Instant::now())),
            max_lifetime,
            last_error,
            waited: zero(),
            timeouts: zero(),
            created: zero(),
            closed: zero(),
            closed_max_lifetime: zero(),
            errors: zero(),
            customizer_failures: zero(),
            optimize_runs: zero(),
            wait: Histogram::default(),
            hold: Histogram::default(),
            create: Histogram::default(),
            cache_hit: zero(),
            cache_miss: zero(),
            cache_write: zero(),
            cache_spill: zero(),
            cache_used: AtomicI64::new(0),
        }
    }

    /// Names the profile and the file the pool's connections use, for its snapshots.
    pub fn with_origin(mut self, profile: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        self.profile = Mutex::new(profile.into());
        self.path = path.into();
        self
    }

    /// Adds one connection's page-cache counters since its last sample.
    #[cfg(feature = "sqlite")]
    pub(crate) fn add_cache(&self, s: crate::sys::CacheSample) {
        // Shared counters: touched only when there is something to add (a reader that hit
        // its cache adds to one of them).
        for (counter, n) in [
            (&self.cache_hit, s.hit),
            (&self.cache_miss, s.miss),
            (&self.cache_write, s.write),
            (&self.cache_spill, s.spill),
        ] {
            if n > 0 {
                counter.fetch_add(n, Relaxed);
            }
        }
    }

    /// Adds the page-cache counters of `conn` since its last sample (they are reset by reading)
    /// and updates the bytes its cache holds. Called as a used connection is checked in.
    #[cfg(feature = "sqlite")]
    pub(crate) fn sample_cache(
        self: &Arc<Self>,
        conn: &mut r2d2::PooledConnection<crate::manager::Manager>,
    ) {
        let db = crate::sys::Db::of(conn);
        let s = crate::sys::take_cache_counters(db);
        self.add_cache(s);
        if s.miss == 0 && s.write == 0 {
            // Nothing entered the cache: the bytes it holds are as last sampled (a connection
            // whose pages all come from the memory map never grows its cache).
            return;
        }
        let used = i64::try_from(crate::sys::cache_used(db)).unwrap_or(i64::MAX);
        let ext = r2d2::PooledConnection::extensions_mut(conn);
        match ext.get_mut::<CacheUsed>() {
            Some(prev) => {
                self.cache_used.fetch_add(used - prev.bytes, Relaxed);
                prev.bytes = used;
            }
            None => {
                self.cache_used.fetch_add(used, Relaxed);
                ext.insert(CacheUsed {
                    bytes: used,
                    counters: self.clone(),
                });
            }
        }
    }

    /// Counts a periodic `PRAGMA optimize` run on this (writer) pool.
    #[cfg(feature = "sqlite")]
    pub(crate) fn count_optimize(&self) {
        self.optimize_runs.fetch_add(1, Relaxed);
        tracing::debug!(pool = %self.database, "PRAGMA optimize");
    }

    /// Names the profile of a pool that replaced this one's (`Pools::reload`).
    #[cfg(feature = "sqlite")]
    pub(crate) fn set_profile(&self, profile: &str) {
        profile.clone_into(&mut self.profile.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Zeroes the counters and histograms. Gauges (connections, cache bytes) are not counters and
    /// stay. Not atomic with respect to events recorded meanwhile.
    pub fn reset(&self) {
        for c in [
            &self.waited,
            &self.timeouts,
            &self.created,
            &self.closed,
            &self.closed_max_lifetime,
            &self.errors,
            &self.customizer_failures,
            &self.optimize_runs,
            &self.cache_hit,
            &self.cache_miss,
            &self.cache_write,
            &self.cache_spill,
        ] {
            c.store(0, Relaxed);
        }
        self.wait.reset();
        self.create.reset();
        self.hold.reset();
        *self.since.lock().unwrap_or_else(PoisonError::into_inner) =
            (SystemTime::now(), Instant::now());
    }

    /// Records a checkout that waited `d` (for pools without r2d2's event handler).
    #[cfg(feature = "deadpool")]
    pub(crate) fn record_checkout(&self, d: Duration) {
        self.wait.record(d);
        if d >= WAIT_THRESHOLD {
            self.waited.fetch_add(1, Relaxed);
        }
    }

    /// Records a checkout that timed out after `d` (for pools without r2d2's event handler).
    #[cfg(feature = "deadpool")]
    pub(crate) fn record_timeout(&self, d: Duration) {
        self.wait.record(d);
        self.timeouts.fetch_add(1, Relaxed);
        self.waited.fetch_add(1, Relaxed);
    }

    /// Counts a connection opened and customized (for pools without r2d2's event handler).
    #[cfg(feature = "deadpool")]
    pub(crate) fn count_created(&self) {
        self.created.fetch_add(1, Relaxed);
    }

    /// Records how long a connection was held (for pools without r2d2's event handler).
    #[cfg(feature = "deadpool")]
    pub(crate) fn record_checkin(&self, d: Duration) {
        self.hold.record(d);
        #[cfg(feature = "metrics")]
        self.metrics.used(d);
    }

    /// Records how long opening a connection took.
    #[cfg(feature = "sqlite")]
    pub(crate) fn record_create(&self, d: Duration) {
        self.create.record(d);
        #[cfg(feature = "metrics")]
        self.metrics.create(d);
    }

    /// A caller starts (`+1`) or stops (`-1`) waiting for a connection (metrics only).
    #[cfg(feature = "metrics")]
    pub(crate) fn pending(&self, delta: i64) {
        self.metrics.pending(delta);
    }

    /// Publishes this pool's gauges and page-cache counters to the `metrics` recorder.
    #[cfg(feature = "metrics")]
    pub(crate) fn publish<M: r2d2::ManageConnection>(&self, pool: &r2d2::Pool<M>) {
        let snapshot = self.snapshot(pool);
        let min_idle = pool.min_idle().unwrap_or(pool.max_size());
        self.metrics.publish(&snapshot, min_idle);
    }

    /// Counts a connection the customizer refused (it has logged and kept the error).
    #[cfg(feature = "sqlite")]
    pub(crate) fn count_customizer_failure(&self) {
        self.customizer_failures.fetch_add(1, Relaxed);
    }

    /// Counts a connection that could not be opened, logs it and keeps it as the last error.
    #[cfg(feature = "sqlite")]
    pub(crate) fn count_connection_error(&self, message: &str) {
        self.errors.fetch_add(1, Relaxed);
        tracing::warn!(pool = %self.database, error = %message, "connection error");
        crate::customizer::record(&self.last_error, message.to_owned(), false);
    }

    /// The customizer's or the connection's last error.
    pub fn last_error(&self) -> Option<LastError> {
        self.last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A snapshot, with r2d2's state of `pool`.
    pub fn snapshot<M: r2d2::ManageConnection>(&self, pool: &r2d2::Pool<M>) -> PoolStats {
        let state = pool.state();
        self.snapshot_of(
            pool.max_size(),
            pool.min_idle().unwrap_or(pool.max_size()),
            state.connections,
            state.idle_connections,
        )
    }

    /// A snapshot with a pool's state given as numbers (for pools that are not r2d2's).
    pub(crate) fn snapshot_of(
        &self,
        max_size: u32,
        min_idle: u32,
        connections: u32,
        idle: u32,
    ) -> PoolStats {
        struct State {
            connections: u32,
            idle_connections: u32,
        }
        let state = State {
            connections,
            idle_connections: idle.min(connections),
        };
        // Timeouts are recorded in the wait histogram too; checkouts and check-ins are its counts.
        let timeouts = self.timeouts.load(Relaxed);
        let (wait, hold, create) = (
            self.wait.summary(),
            self.hold.summary(),
            self.create.summary(),
        );
        let (hit, miss) = (self.cache_hit.load(Relaxed), self.cache_miss.load(Relaxed));
        let closed = self.closed.load(Relaxed);
        let closed_max_lifetime = self.closed_max_lifetime.load(Relaxed);
        let (since, started) = *self.since.lock().unwrap_or_else(PoisonError::into_inner);
        PoolStats {
            database: self.database.clone(),
            profile: self
                .profile
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            path: self.path.clone(),
            since,
            elapsed: started.elapsed(),
            max_size,
            min_idle,
            connections: state.connections,
            idle: state.idle_connections,
            in_use: state.connections - state.idle_connections,
            checkouts: wait.count.saturating_sub(timeouts),
            checkins: hold.count,
            waited: self.waited.load(Relaxed),
            timeouts,
            wait,
            hold,
            create,
            connections_created: self.created.load(Relaxed),
            connections_closed: closed,
            closed_max_lifetime,
            closed_idle_timeout_or_broken: closed.saturating_sub(closed_max_lifetime),
            connection_errors: self.errors.load(Relaxed),
            customizer_failures: self.customizer_failures.load(Relaxed),
            optimize_runs: self.optimize_runs.load(Relaxed),
            last_customizer_error: self
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            cache: CacheStats {
                hit,
                miss,
                write: self.cache_write.load(Relaxed),
                spill: self.cache_spill.load(Relaxed),
                used_bytes: self.cache_used.load(Relaxed).max(0) as u64,
                hit_ratio: (hit + miss > 0).then(|| hit as f64 / (hit + miss) as f64),
            },
            replica: None,
        }
    }
}

/// Feeds a pool's [`PoolCounters`] from r2d2's events and errors, and emits each with `tracing`.
#[derive(Debug, Clone)]
pub struct StatsHandler(pub Arc<PoolCounters>);

impl HandleEvent for StatsHandler {
    fn handle_acquire(&self, e: AcquireEvent) {
        self.0.created.fetch_add(1, Relaxed);
        tracing::debug!(pool = %self.0.database, connection_id = e.connection_id(), "connection opened");
    }

    fn handle_release(&self, e: ReleaseEvent) {
        let c = &self.0;
        c.closed.fetch_add(1, Relaxed);
        let by_lifetime = c.max_lifetime.is_some_and(|l| e.age() >= l);
        if by_lifetime {
            c.closed_max_lifetime.fetch_add(1, Relaxed);
        }
        tracing::debug!(
            pool = %c.database,
            connection_id = e.connection_id(),
            age_ms = e.age().as_millis() as u64,
            reason = if by_lifetime { "max_lifetime" } else { "idle_timeout or broken" },
            "connection closed"
        );
    }

    fn handle_checkout(&self, e: CheckoutEvent) {
        let c = &self.0;
        c.wait.record(e.duration());
        #[cfg(feature = "metrics")]
        c.metrics.wait(e.duration());
        if e.duration() >= WAIT_THRESHOLD {
            c.waited.fetch_add(1, Relaxed);
        }
        tracing::trace!(pool = %c.database, connection_id = e.connection_id(), wait_us = e.duration().as_micros() as u64, "checkout");
    }

    fn handle_timeout(&self, e: TimeoutEvent) {
        let c = &self.0;
        // Recorded before it is counted: a snapshot reads the count first, so checkouts
        // (wait count minus timeouts) never go below zero.
        c.wait.record(e.timeout());
        c.timeouts.fetch_add(1, Relaxed);
        c.waited.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        {
            c.metrics.wait(e.timeout());
            c.metrics.timeout();
        }
        let cause = c
            .last_error
            .lock()
            .ok()
            .and_then(|l| l.as_ref().map(|l| l.message.clone()));
        tracing::warn!(
            pool = %c.database,
            timeout_ms = e.timeout().as_millis() as u64,
            cause = cause.as_deref().unwrap_or("all connections in use"),
            "timed out waiting for a connection"
        );
    }

    fn handle_checkin(&self, e: CheckinEvent) {
        let c = &self.0;
        c.hold.record(e.duration());
        #[cfg(feature = "metrics")]
        c.metrics.used(e.duration());
        tracing::trace!(pool = %c.database, connection_id = e.connection_id(), held_us = e.duration().as_micros() as u64, "checkin");
    }
}

/// litepool's own managers count and keep their errors as they happen (`crate::open`); r2d2
/// passes them here as well, where they are only traced.
impl HandleError<crate::Error> for StatsHandler {
    fn handle_error(&self, error: crate::Error) {
        tracing::debug!(pool = %self.0.database, error = %error, "connection not opened");
    }
}

#[cfg(feature = "sqlite")]
impl HandleError<rusqlite::Error> for StatsHandler {
    fn handle_error(&self, error: rusqlite::Error) {
        if crate::customizer::from_customizer(&error) {
            // The customizer has logged it and kept it as the last error.
            self.0.count_customizer_failure();
        } else {
            self.0
                .count_connection_error(&crate::customizer::describe_connect_error(&error));
        }
    }
}

/// Page-cache counters summed over a pool's connections, from `sqlite3_db_status`.
///
/// Sampled as each connection is checked in through `Pools::get`, so a connection still
/// checked out is not counted yet. Pages read through memory-mapped I/O (`mmap_size`) do not go
/// through the page cache and are counted neither as hits nor as misses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CacheStats {
    /// Pages found in the cache.
    pub hit: u64,
    /// Pages read from the file (or the OS cache).
    pub miss: u64,
    /// Pages written.
    pub write: u64,
    /// Dirty pages written early because a transaction outgrew the cache.
    pub spill: u64,
    /// Bytes held by the caches of the pool's open connections, at their last check-in.
    pub used_bytes: u64,
    /// `hit / (hit + miss)`, if any page was looked up.
    pub hit_ratio: Option<f64>,
}

/// A snapshot of one pool. Eventually consistent: read field by field while the pool runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PoolStats {
    /// The pool's name: the database's, or `<name>.writer` / `<name>.readers` on a split
    /// database.
    pub database: String,
    /// The profile its connections get.
    pub profile: String,
    /// The database file.
    pub path: PathBuf,
    /// Since when the counters and histograms run: the pool's start or the last
    /// `reset_stats()` (JSON: RFC 3339, UTC). Gauges (connections, cache bytes) are "now".
    #[serde(serialize_with = "crate::units::rfc3339")]
    pub since: SystemTime,
    /// How long ago `since` was (JSON: `elapsed_seconds`).
    #[serde(
        rename = "elapsed_seconds",
        serialize_with = "crate::histogram::seconds"
    )]
    pub elapsed: Duration,
    /// The configured maximum.
    pub max_size: u32,
    /// Idle connections the pool keeps ready (r2d2's default: `max_size`).
    pub min_idle: u32,
    /// Connections open (idle and in use), from r2d2's `State`.
    pub connections: u32,
    /// Connections idle.
    pub idle: u32,
    /// Connections checked out.
    pub in_use: u32,
    /// Successful checkouts.
    pub checkouts: u64,
    /// Check-ins.
    pub checkins: u64,
    /// Checkouts that waited at least [`WAIT_THRESHOLD`], and timeouts.
    pub waited: u64,
    /// `get()` calls that timed out.
    pub timeouts: u64,
    /// Time to get a connection (timeouts count with their full timeout).
    pub wait: Summary,
    /// Time from checkout to check-in.
    pub hold: Summary,
    /// Time to open a connection (its count is the connections opened, including failures).
    pub create: Summary,
    /// Physical connections opened and customized.
    pub connections_created: u64,
    /// Physical connections closed by the pool.
    pub connections_closed: u64,
    /// Closed because they reached `max_lifetime`.
    pub closed_max_lifetime: u64,
    /// Closed for being idle past `idle_timeout`, or broken (r2d2 does not say which; with
    /// `test_on_check_out` off, r2d2_sqlite never reports a connection broken).
    pub closed_idle_timeout_or_broken: u64,
    /// Connections that failed to open, or failed r2d2's checkout test.
    pub connection_errors: u64,
    /// Connections refused by the [`crate::PragmaCustomizer`].
    pub customizer_failures: u64,
    /// Periodic `PRAGMA optimize` runs (a split database's writer with `optimize_interval`).
    pub optimize_runs: u64,
    /// The customizer's last error, with its time: the real cause behind a timeout.
    pub last_customizer_error: Option<LastError>,
    /// SQLite page-cache counters.
    pub cache: CacheStats,
    /// A read replica's position and staleness; `None` for other pools.
    pub replica: Option<crate::staleness::ReplicaStats>,
}
