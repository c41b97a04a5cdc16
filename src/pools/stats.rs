//! What [`Pools`] reports: every pool's [`PoolStats`] ([`Snapshot`]) and every database's
//! [`DatabaseStats`] (its file and profile, the WAL's size, group commit and checkpoints), and
//! their export to the `metrics` recorder (feature `metrics`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::{Handle, NamedPool, Pools};
use crate::checkpoint::CheckpointStats;
use crate::commit::GroupCommitStats;
use crate::error::Result;
use crate::settings::DatabaseSettings;
use crate::stats::PoolStats;

/// Statistics of every pool, by name. Serialises as a map; displays as a compact table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Snapshot(pub BTreeMap<String, PoolStats>);

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in self.0.values() {
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

/// A database's file and profile, and since when its statistics run.
#[derive(Debug)]
pub(super) struct Origin {
    path: PathBuf,
    /// Replaced by a reload that changes it.
    profile: Mutex<String>,
    since: Mutex<(SystemTime, Instant)>,
}

impl Origin {
    /// Names the profile a reload put in force.
    pub(super) fn set_profile(&self, profile: &str) {
        profile.clone_into(&mut self.profile.lock().unwrap_or_else(PoisonError::into_inner));
    }

    pub(super) fn new(db: &DatabaseSettings) -> Origin {
        Origin {
            path: db.path.clone(),
            profile: Mutex::new(db.profile.name().to_owned()),
            since: Mutex::new((SystemTime::now(), Instant::now())),
        }
    }
}

/// One database as a whole: its file, its profile, the WAL beside it, and what its write path
/// and background checkpoints did. Eventually consistent, like [`PoolStats`]; its pools'
/// figures are in [`Pools::stats`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct DatabaseStats {
    /// The database's name.
    pub database: String,
    /// The database's profile (a split database's pools add their role's keys to it).
    pub profile: String,
    /// The database file.
    pub path: PathBuf,
    /// True for a writer/readers split (group commit).
    pub split: bool,
    /// Its pools' names, as in [`Pools::stats`].
    pub pools: Vec<String>,
    /// Since when `write` and `checkpoint` count: the pools' start or the last
    /// [`Pools::reset_stats`] (JSON: RFC 3339, UTC).
    #[serde(serialize_with = "crate::units::rfc3339")]
    pub since: SystemTime,
    /// How long ago `since` was (JSON: `elapsed_seconds`).
    #[serde(
        rename = "elapsed_seconds",
        serialize_with = "crate::histogram::seconds"
    )]
    pub elapsed: Duration,
    /// The size of the `-wal` file now, in bytes; `None` when there is none (not in WAL mode,
    /// or the last connection removed it). JSON: `wal_bytes`.
    #[serde(rename = "wal_bytes")]
    pub wal: Option<u64>,
    /// Group commit, on a split database: the write path's wait (`queue_wait`) and latency.
    /// `None` without a split: writes there are plain checkouts of the database's one pool.
    pub write: Option<GroupCommitStats>,
    /// The background checkpointer (`checkpoint = "background"`); `None` otherwise, when
    /// SQLite checkpoints on its own (`wal_autocheckpoint`).
    pub checkpoint: Option<CheckpointStats>,
}

impl DatabaseStats {
    /// Checkpoints by kind, in one order: restart, truncate, backlog, at_checkin and those group
    /// commit ran between batches (`write.checkpoints`).
    pub fn checkpoints_by_kind(&self) -> [(&'static str, u64); 5] {
        let c = self.checkpoint.unwrap_or_default();
        let between = self.write.as_ref().map_or(0, |w| w.checkpoints);
        [
            ("restart", c.restart),
            ("truncate", c.truncate),
            ("backlog", c.backlog),
            ("at_checkin", c.at_checkin),
            ("between_batches", between),
        ]
    }
}

impl fmt::Display for DatabaseStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::units::{bytes, duration};
        let wal = self.wal.map_or("none".to_owned(), bytes);
        write!(
            f,
            "{}: {} (profile {}{}); wal {wal}; counters since {:.1}s ago",
            self.database,
            self.path.display(),
            self.profile,
            if self.split { ", split" } else { "" },
            self.elapsed.as_secs_f64()
        )?;
        match &self.write {
            Some(w) => write!(
                f,
                "\n  write (group commit): {} committed, {} failed ({} timeouts, {} cancelled) in {} batches (mean {:.1}, max {}), {} queued\n  write queue wait p50 {} p99 {} max {}  latency p50 {} p99 {} max {}  (the writer pool's checkout wait below is the committer's)",
                w.writes,
                w.failed_writes,
                w.timeouts,
                w.cancelled,
                w.batches,
                w.mean_batch,
                w.max_batch,
                w.queued,
                duration(w.queue_wait.p50),
                duration(w.queue_wait.p99),
                duration(w.queue_wait.max),
                duration(w.latency.p50),
                duration(w.latency.p99),
                duration(w.latency.max),
            )?,
            None => write!(f, "\n  write: no split, no group commit (writes check out the pool below)")?,
        }
        if let Some(c) = &self.checkpoint {
            let kinds: Vec<String> = self
                .checkpoints_by_kind()
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            write!(
                f,
                "\n  checkpoints: {}; busy {}; wal peak {} pending peak {}",
                kinds.join(", "),
                c.busy,
                bytes(c.wal_peak),
                bytes(c.pending_peak)
            )?;
        }
        Ok(())
    }
}

impl Handle {
    /// The database's own statistics: file, profile, WAL size, group commit and checkpoints.
    pub fn database_stats(&self) -> DatabaseStats {
        let (since, started) = *self
            .origin
            .since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut wal = self.origin.path.clone().into_os_string();
        wal.push("-wal");
        let mut pools = vec![self.reader.name().to_owned()];
        if let Ok(w) = &self.writer {
            if w.name() != self.reader.name() {
                pools.insert(0, w.name().to_owned());
            }
        }
        DatabaseStats {
            database: self.database.clone(),
            profile: self
                .origin
                .profile
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            path: self.origin.path.clone(),
            split: self.split,
            pools,
            since,
            elapsed: started.elapsed(),
            wal: std::fs::metadata(wal).ok().map(|m| m.len()),
            write: self.write_stats(),
            checkpoint: self.checkpoint_stats(),
        }
    }

    /// Zeroes the database's group-commit and checkpoint counters (not its pools').
    fn reset_database_stats(&self) {
        if let Some(c) = &self.commit {
            c.reset_stats();
        }
        if let Some(c) = &self.checkpointer {
            c.reset_stats();
        }
        *self
            .origin
            .since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = (SystemTime::now(), Instant::now());
    }
}

impl Pools {
    /// A snapshot of one concrete pool (see [`Pools::named`]).
    pub fn stats_for(&self, name: &str) -> Result<PoolStats> {
        Ok(self.named(name)?.stats())
    }

    /// A snapshot of every concrete pool.
    pub fn stats(&self) -> Snapshot {
        Snapshot(
            self.inner
                .pools
                .iter()
                .map(|(n, p)| (n.clone(), p.stats()))
                .collect(),
        )
    }

    /// Every database's own statistics ([`DatabaseStats`]), by name.
    pub fn database_stats(&self) -> BTreeMap<String, DatabaseStats> {
        self.inner
            .databases
            .iter()
            .map(|(n, h)| (n.clone(), h.database_stats()))
            .collect()
    }

    /// Zeroes the counters and histograms of every pool, group commit and checkpointer, and
    /// starts their window (`since`) now. Gauges stay. Taking a snapshot and then resetting
    /// gives figures "since the last read" for one reader; several readers should instead
    /// subtract two snapshots' counters (quantiles cannot be subtracted).
    pub fn reset_stats(&self) {
        self.inner.pools.values().for_each(NamedPool::reset_stats);
        self.inner
            .databases
            .values()
            .for_each(Handle::reset_database_stats);
    }

    /// Publishes every pool's gauges and page-cache counters, and every database's write,
    /// checkpoint and WAL figures, to the `metrics` recorder now (the watcher thread does it
    /// every [`super::WATCH_INTERVAL`]). Feature `metrics`.
    #[cfg(feature = "metrics")]
    pub fn publish_metrics(&self) {
        for p in self.inner.pools.values() {
            let live = p.live();
            live.shared.counters.publish(&live.pool);
        }
        for h in self.inner.databases.values() {
            DatabaseMetrics::new(h).publish(&h.database_stats());
        }
    }
}

/// Each watcher tick publishes the pool's gauges to the `metrics` recorder, and, on the pool
/// that serves a database's reads, the database's figures (feature `metrics`).
pub(super) fn metrics_tick(
    _pool: &NamedPool,
    _databases: &BTreeMap<String, Handle>,
) -> Option<Box<dyn Fn() + Send>> {
    #[cfg(feature = "metrics")]
    {
        let pool = _pool.clone();
        let database = _databases
            .values()
            .find(|h| h.reader.name() == pool.name())
            .map(|h| (h.clone(), DatabaseMetrics::new(h)));
        Some(Box::new(move || {
            let live = pool.live();
            live.shared.counters.publish(&live.pool);
            if let Some((h, m)) = &database {
                m.publish(&h.database_stats());
            }
        }))
    }
    #[cfg(not(feature = "metrics"))]
    None
}

/// The registered handles of one database's counters and gauges: only those that apply to it,
/// as `litepool stats --format prometheus` prints only those (write figures on a split
/// database, checkpoint counts with group commit or the background checkpointer, its busy
/// count and peaks with the checkpointer, the WAL's size always).
#[cfg(feature = "metrics")]
struct DatabaseMetrics {
    write: Option<[metrics::Counter; 3]>,
    queued: Option<metrics::Gauge>,
    checkpoints: Option<[metrics::Counter; 5]>,
    checkpointer: Option<(metrics::Counter, [metrics::Gauge; 2])>,
    wal: metrics::Gauge,
}

#[cfg(feature = "metrics")]
impl DatabaseMetrics {
    fn new(h: &Handle) -> DatabaseMetrics {
        use crate::metrics::{database_labels, names};
        let l = || database_labels(&h.database);
        let kind = |k: &'static str| {
            let mut l = l();
            l.push(metrics::Label::new(names::CHECKPOINT_KIND, k));
            metrics::counter!(names::CHECKPOINTS, l)
        };
        let split = h.commit.is_some();
        DatabaseMetrics {
            write: split.then(|| {
                [names::WRITES, names::WRITE_FAILURES, names::WRITE_CANCELLED]
                    .map(|n| metrics::counter!(n, l()))
            }),
            queued: split.then(|| metrics::gauge!(names::WRITE_QUEUED, l())),
            checkpoints: (split || h.checkpointer.is_some()).then(|| {
                [
                    "restart",
                    "truncate",
                    "backlog",
                    "at_checkin",
                    "between_batches",
                ]
                .map(kind)
            }),
            checkpointer: h.checkpointer.is_some().then(|| {
                (
                    metrics::counter!(names::CHECKPOINT_BUSY, l()),
                    [names::WAL_PEAK, names::WAL_PENDING_PEAK].map(|n| metrics::gauge!(n, l())),
                )
            }),
            wal: metrics::gauge!(names::WAL_SIZE, l()),
        }
    }

    fn publish(&self, s: &DatabaseStats) {
        if let (Some([writes, failures, cancelled]), Some(queued), Some(w)) =
            (&self.write, &self.queued, &s.write)
        {
            writes.absolute(w.writes);
            failures.absolute(w.failed_writes);
            cancelled.absolute(w.cancelled);
            queued.set(w.queued as f64);
        }
        if let Some(counters) = &self.checkpoints {
            for (c, (_, n)) in counters.iter().zip(s.checkpoints_by_kind()) {
                c.absolute(n);
            }
        }
        if let (Some((busy, [peak, pending])), Some(c)) = (&self.checkpointer, &s.checkpoint) {
            busy.absolute(c.busy);
            peak.set(c.wal_peak as f64);
            pending.set(c.pending_peak as f64);
        }
        self.wal.set(s.wal.unwrap_or(0) as f64);
    }
}
