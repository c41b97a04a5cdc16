//! [`Pools`]: one named r2d2 pool per configured database, with statistics.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, PoisonError};

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::budget::Budget;
use crate::customizer::{LastErrorHandle, PragmaCustomizer};
use crate::error::{Error, Result};
use crate::file::{self, FileState};
use crate::settings::{DatabaseSettings, Settings};
use crate::stats::{PoolCounters, PoolStats, StatsHandler};

/// A connection checked out of a litepool pool. Derefs to [`rusqlite::Connection`]; on drop it
/// samples SQLite's page-cache counters into the pool's statistics and goes back to the pool.
///
/// It borrows the pool (no reference count to bump on the checkout path). Where a `'static`
/// connection is needed, take one from [`NamedPool::pool`]: it is counted by the event handler,
/// but its page-cache counters are sampled only when a later `Conn` checks that connection in.
pub struct Conn<'a> {
    inner: PooledConnection<SqliteConnectionManager>,
    counters: Option<&'a Arc<PoolCounters>>,
    /// Set on first use: a connection checked out and back unused has nothing to sample.
    used: Cell<bool>,
}

impl Deref for Conn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.used.set(true);
        &self.inner
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.used.set(true);
        &mut self.inner
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(counters) = self.counters.filter(|_| self.used.get()) {
            counters.sample_cache(&mut self.inner);
        }
    }
}

impl fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

/// One database's pool: the r2d2 pool, its customizer's last error and its counters.
pub struct NamedPool {
    name: String,
    pool: Pool<SqliteConnectionManager>,
    last_error: LastErrorHandle,
    counters: Arc<PoolCounters>,
    stats: bool,
}

impl fmt::Debug for NamedPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedPool")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl NamedPool {
    /// Bootstraps one database (journal switch, file-level pragmas on a new file, verification on
    /// a dedicated connection) and builds its pool with statistics. [`Pools::new`] runs
    /// [`preflight`] first; call it yourself when using this alone.
    pub fn open(db: &DatabaseSettings) -> Result<NamedPool> {
        let customizer = PragmaCustomizer::new(&db.name, db.profile.clone());
        if db.create_if_missing && !db.path.exists() {
            create_file(db)?;
        }
        // The file exists now: no connection ever creates it.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        {
            let mut conn =
                Connection::open_with_flags(&db.path, flags).map_err(|source| Error::Sqlite {
                    database: db.name.clone(),
                    source,
                })?;
            tracing::info!(database = %db.name, path = %db.path.display(), "bootstrapping");
            customizer.bootstrap(&mut conn)?;
        }
        let last_error = customizer.last_error();
        let counters = Arc::new(PoolCounters::new(
            &db.name,
            db.pool.max_lifetime,
            last_error.clone(),
        ));
        let p = &db.pool;
        let manager = SqliteConnectionManager::file(&db.path).with_flags(flags);
        let mut builder = Pool::builder()
            .max_size(p.max_size)
            .min_idle(p.min_idle)
            .connection_timeout(p.connection_timeout)
            .idle_timeout(p.idle_timeout)
            .max_lifetime(p.max_lifetime)
            .test_on_check_out(p.test_on_check_out)
            .connection_customizer(Box::new(customizer));
        if p.stats {
            builder = builder
                .event_handler(Box::new(StatsHandler(counters.clone())))
                .error_handler(Box::new(StatsHandler(counters.clone())));
        }
        let pool = builder
            .build(manager)
            .map_err(|source| pool_error(&db.name, source, &last_error))?;
        tracing::info!(database = %db.name, max_size = p.max_size, "pool ready");
        Ok(NamedPool {
            name: db.name.clone(),
            pool,
            last_error,
            counters,
            stats: p.stats,
        })
    }

    /// A connection. A timeout carries the customizer's last error.
    pub fn get(&self) -> Result<Conn<'_>> {
        match self.pool.get() {
            Ok(inner) => Ok(Conn {
                inner,
                counters: self.stats.then_some(&self.counters),
                used: Cell::new(false),
            }),
            Err(source) => Err(pool_error(&self.name, source, &self.last_error)),
        }
    }

    /// The r2d2 pool. Connections taken from it directly are counted by the event handler, but
    /// their page-cache counters are sampled only when a [`Conn`] checks them in.
    pub fn pool(&self) -> &Pool<SqliteConnectionManager> {
        &self.pool
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> PoolStats {
        self.counters.snapshot(&self.pool)
    }

    /// Zeroes the counters and histograms.
    pub fn reset_stats(&self) {
        self.counters.reset()
    }
}

/// Creates an empty database file with `db.file_mode`; SQLite gives its `-wal` and `-shm` files
/// the same permissions.
fn create_file(db: &DatabaseSettings) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |source| Error::Io {
        path: db.path.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(db.file_mode.0)
        .open(&db.path)
        .map_err(io)?;
    // The umask may have narrowed the mode; set exactly what was configured.
    file.set_permissions(std::fs::Permissions::from_mode(db.file_mode.0))
        .map_err(io)
}

fn pool_error(database: &str, source: r2d2::Error, last_error: &LastErrorHandle) -> Error {
    Error::Pool {
        database: database.to_owned(),
        source,
        cause: last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|e| e.message.clone()),
    }
}

/// Checks every configured file before any is touched: see [`file::inspect`] and the enforced
/// memory budget. Returns each file's state, in `settings.databases` order.
pub fn preflight(settings: &Settings) -> Result<Vec<FileState>> {
    let files = settings
        .databases
        .values()
        .map(file::inspect)
        .collect::<Result<Vec<_>>>()?;
    Budget::new(settings, &files).enforce()?;
    Ok(files)
}

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

/// One r2d2 pool per configured database, each with a [`PragmaCustomizer`] and statistics; a
/// database with a writer/readers split has two (`<name>.writer` and `<name>.readers`).
#[derive(Debug)]
pub struct Pools {
    /// Every concrete pool, by its name (`jobs`, or `jobs.writer` and `jobs.readers`).
    pools: BTreeMap<String, NamedPool>,
    /// The configured databases, and whether each is split.
    databases: BTreeMap<String, bool>,
    optimizers: Vec<Optimizer>,
}

/// Runs `PRAGMA optimize` on a writer every interval, only when the writer is free
/// (`try_get`, so it never makes a checkout wait), until the pools are dropped.
#[derive(Debug)]
struct Optimizer {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Optimizer {
    fn start(pool: &NamedPool, interval: std::time::Duration) -> Optimizer {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (r2d2_pool, counters, name) =
            (pool.pool.clone(), pool.counters.clone(), pool.name.clone());
        let flag = stop.clone();
        let thread = std::thread::spawn(move || loop {
            std::thread::park_timeout(interval);
            if flag.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let Some(conn) = r2d2_pool.try_get() else {
                tracing::debug!(pool = %name, "writer busy: PRAGMA optimize skipped");
                continue;
            };
            match conn.execute_batch("PRAGMA optimize") {
                Ok(()) => counters.count_optimize(),
                Err(e) => tracing::warn!(pool = %name, error = %e, "PRAGMA optimize failed"),
            }
        });
        Optimizer { stop, thread }
    }
}

impl Drop for Pools {
    fn drop(&mut self) {
        for o in &self.optimizers {
            o.stop.store(true, std::sync::atomic::Ordering::Relaxed);
            o.thread.thread().unpark();
        }
    }
}

impl Pools {
    /// Checks every database file ([`preflight`]), then bootstraps and builds each pool.
    pub fn new(settings: &Settings) -> Result<Pools> {
        preflight(settings)?;
        let mut pools = BTreeMap::new();
        let mut databases = BTreeMap::new();
        let mut optimizers = Vec::new();
        for db in settings.databases.values() {
            for spec in db.pools() {
                pools.insert(spec.name.clone(), NamedPool::open(&spec)?);
            }
            databases.insert(db.name.clone(), db.split.is_some());
            if let Some(interval) = db.split.as_ref().and_then(|s| s.optimize_interval) {
                optimizers.push(Optimizer::start(
                    &pools[&format!("{}.writer", db.name)],
                    interval,
                ));
            }
        }
        Ok(Pools {
            pools,
            databases,
            optimizers,
        })
    }

    /// A concrete pool with its statistics: a database's name, or `<name>.writer` and
    /// `<name>.readers` for a split database.
    pub fn named(&self, name: &str) -> Result<&NamedPool> {
        self.pools.get(name).ok_or_else(|| Error::UnknownDatabase {
            name: name.to_owned(),
            known: self.pools.keys().cloned().collect(),
        })
    }

    fn role(&self, name: &str, role: &str) -> Result<&NamedPool> {
        match self.databases.get(name) {
            Some(true) => self.named(&format!("{name}.{role}")),
            Some(false) => self.named(name),
            None => Err(Error::UnknownDatabase {
                name: name.to_owned(),
                known: self.databases.keys().cloned().collect(),
            }),
        }
    }

    /// A connection from the named database. A split database refuses: use [`Pools::writer`] or
    /// [`Pools::reader`]. A timeout carries the customizer's last error.
    pub fn get(&self, name: &str) -> Result<Conn<'_>> {
        if self.databases.get(name) == Some(&true) {
            return Err(Error::SplitDatabase {
                name: name.to_owned(),
            });
        }
        self.named(name)?.get()
    }

    /// The one writer connection of a split database (immediate transactions), waiting for it if
    /// another caller has it; for a database without a split, a connection from its pool.
    pub fn writer(&self, name: &str) -> Result<Conn<'_>> {
        self.role(name, "writer")?.get()
    }

    /// A read-only connection (`query_only`) of a split database; for a database without a
    /// split, a connection from its pool. A write on it fails with SQLite's
    /// "attempt to write a readonly database".
    pub fn reader(&self, name: &str) -> Result<Conn<'_>> {
        self.role(name, "readers")?.get()
    }

    /// The r2d2 pool of [`Pools::named`].
    pub fn pool(&self, name: &str) -> Result<&Pool<SqliteConnectionManager>> {
        Ok(self.named(name)?.pool())
    }

    /// The configured database names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.databases.keys().map(String::as_str)
    }

    /// A snapshot of one concrete pool (see [`Pools::named`]).
    pub fn stats_for(&self, name: &str) -> Result<PoolStats> {
        Ok(self.named(name)?.stats())
    }

    /// A snapshot of every concrete pool.
    pub fn stats(&self) -> Snapshot {
        Snapshot(
            self.pools
                .iter()
                .map(|(n, p)| (n.clone(), p.stats()))
                .collect(),
        )
    }

    /// Zeroes the counters and histograms of every pool.
    pub fn reset_stats(&self) {
        self.pools.values().for_each(NamedPool::reset_stats)
    }
}
