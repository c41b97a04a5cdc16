//! [`Pools`]: one named r2d2 pool per configured database, with statistics.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, PoisonError};

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;

use crate::manager::Manager;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::budget::Budget;
use crate::customizer::{ErrorRecorder, LastErrorHandle, PragmaCustomizer};
use crate::error::{Error, Result};
use crate::file::{self, FileState};
use crate::settings::{DatabaseSettings, PoolSpec, Role, Settings};
use crate::stats::{PoolCounters, PoolStats, StatsHandler};

/// A connection checked out of a litepool pool. Derefs to [`rusqlite::Connection`]; on drop it
/// samples SQLite's page-cache counters into the pool's statistics and goes back to the pool.
///
/// It is `'static` and `Send`, like r2d2's `PooledConnection`: it borrows nothing, so it can be
/// moved into a spawned thread or held across an `.await`.
pub struct Conn {
    inner: PooledConnection<Manager>,
    counters: Option<Arc<PoolCounters>>,
    /// With `checkpoint = "background"` on a writing pool: checkpoints at check-in, and the
    /// connection's `total_changes` at checkout (a borrower that changed no row skips the check).
    wal: Option<(Arc<crate::checkpoint::WalWatch>, u64)>,
    /// Set on first use: a connection checked out and back unused has nothing to sample.
    used: Cell<bool>,
}

impl Deref for Conn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.used.set(true);
        &self.inner
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Connection {
        self.used.set(true);
        &mut self.inner
    }
}

impl Drop for Conn {
    #[inline]
    fn drop(&mut self) {
        if !self.used.get() {
            return;
        }
        // A transaction left open (BEGIN without COMMIT, a panic mid-transaction) must not
        // reach the next borrower. `is_autocommit` reads a flag; no query runs when it is set.
        if !self.inner.is_autocommit() {
            if let Err(e) = self.inner.execute_batch("ROLLBACK") {
                tracing::warn!(error = %e, "rolling back a transaction left open failed");
            }
        }
        if let Some(counters) = &self.counters {
            counters.sample_cache(&mut self.inner);
        }
        if let Some((wal, changes)) = &self.wal {
            if self.inner.total_changes() != *changes {
                wal.after_write(&self.inner);
            }
        }
    }
}

impl Conn {
    /// This connection runs no checkpoint at check-in (group commit's leader checkpoints
    /// between batches).
    pub(crate) fn without_checkpoint(mut self) -> Conn {
        self.wal = None;
        self
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

/// One concrete pool: the r2d2 pool, its customizer's last error and its counters. Cheap to
/// clone (one reference count), `Send + Sync + 'static`.
#[derive(Clone)]
pub struct NamedPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    name: String,
    path: std::path::PathBuf,
    /// Set by the watcher of [`Pools`] when the file at `path` is no longer the one opened.
    moved: std::sync::atomic::AtomicBool,
    pool: Pool<Manager>,
    last_error: LastErrorHandle,
    counters: Arc<PoolCounters>,
    stats: bool,
    max_size: u32,
    timeout: std::time::Duration,
    /// A split database's one writer: a checkout from inside one of its write closures would
    /// wait for itself.
    exclusive: bool,
    /// Set by [`Pools`] on writing pools of a `checkpoint = "background"` database.
    wal: std::sync::OnceLock<Arc<crate::checkpoint::WalWatch>>,
    /// The profile's `busy_timeout` (zero when unset: SQLite's default). The guard refuses
    /// assignments to it, so every connection of the pool has it.
    busy_timeout: std::time::Duration,
}

impl fmt::Debug for NamedPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedPool")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl NamedPool {
    /// Bootstraps one pool of `db` (journal switch, file-level pragmas on a new file,
    /// verification, on a dedicated connection) and builds it with statistics. `spec` is one of
    /// `db.pools()`; a split database's writer must be opened before its readers.
    /// [`Pools::new`] runs [`preflight`] first; call it yourself when using this alone.
    ///
    /// Bad pool settings built in code (`max_size = 0`, a zero timeout, `min_idle > max_size`)
    /// are an [`Error::PoolSetting`], never a panic.
    pub fn open(db: &DatabaseSettings, spec: &PoolSpec) -> Result<NamedPool> {
        let p = &spec.pool;
        p.validate()?;
        let customizer = PragmaCustomizer::new(&spec.name, spec.profile.clone());
        if db.create_if_missing && spec.role.writes() && !db.path.exists() {
            create_file(db)?;
        }
        // The file exists now: no connection ever creates it. Readers cannot write at all.
        let flags = if spec.role.writes() {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if spec.role.writes() {
            let mut conn = Connection::open_with_flags(&db.path, flags).map_err(|source| {
                let described = crate::customizer::describe_connect_error(&source);
                if described != source.to_string() {
                    // Out of file descriptors: say so, not "unable to open database file".
                    return Error::Io {
                        path: db.path.clone(),
                        source: std::io::Error::other(described),
                    };
                }
                Error::Sqlite {
                    database: spec.name.clone(),
                    source,
                }
            })?;
            tracing::info!(pool = %spec.name, path = %db.path.display(), "bootstrapping");
            customizer.bootstrap(&mut conn)?;
        } else {
            // The writer bootstrapped the file; readers only set and verify.
            customizer.skip_bootstrap();
        }
        let last_error = customizer.last_error();
        let counters = Arc::new(PoolCounters::new(
            &spec.name,
            p.max_lifetime,
            last_error.clone(),
        ));
        let manager = Manager::new(
            SqliteConnectionManager::file(&db.path).with_flags(flags),
            counters.clone(),
        );
        let mut builder = Pool::builder()
            .max_size(p.max_size)
            .min_idle(p.min_idle)
            .connection_timeout(p.connection_timeout)
            .idle_timeout(p.idle_timeout)
            .max_lifetime(p.max_lifetime)
            .test_on_check_out(p.test_on_check_out)
            .connection_customizer(Box::new(customizer));
        builder = if p.stats {
            builder
                .event_handler(Box::new(StatsHandler(counters.clone())))
                .error_handler(Box::new(StatsHandler(counters.clone())))
        } else {
            builder.error_handler(Box::new(ErrorRecorder(last_error.clone())))
        };
        let pool = builder.build(manager).map_err(|_| Error::Build {
            pool: spec.name.clone(),
            cause: last_cause(&last_error),
        })?;
        tracing::info!(pool = %spec.name, max_size = p.max_size, "pool ready");
        Ok(NamedPool {
            inner: Arc::new(PoolInner {
                name: spec.name.clone(),
                path: db.path.clone(),
                moved: std::sync::atomic::AtomicBool::new(false),
                pool,
                last_error,
                counters,
                stats: p.stats,
                max_size: p.max_size,
                timeout: p.connection_timeout,
                exclusive: spec.role == Role::Writer,
                wal: std::sync::OnceLock::new(),
                busy_timeout: spec
                    .profile
                    .pragmas()
                    .busy_timeout
                    .map_or(std::time::Duration::ZERO, |t| t.duration()),
            }),
        })
    }

    /// The pool's name: `jobs`, or `jobs.writer` / `jobs.readers`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// A connection, waiting up to the pool's `connection_timeout`. A timeout says whether
    /// every connection was in use or new connections failed, and why ([`Error::Timeout`]).
    /// The writer of a split database refuses at once from inside one of its own write closures
    /// ([`Error::Reentrant`]).
    #[inline]
    pub fn get(&self) -> Result<Conn> {
        self.get_timeout(self.inner.timeout)
    }

    /// [`NamedPool::get`], waiting up to `timeout` instead.
    #[inline]
    pub fn get_timeout(&self, timeout: std::time::Duration) -> Result<Conn> {
        let p = &self.inner;
        if p.moved.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(Error::Moved {
                pool: p.name.clone(),
                path: p.path.clone(),
            });
        }
        if p.exclusive && crate::reentry::inside(self.id()) {
            return Err(Error::Reentrant {
                database: p.name.clone(),
                call: "writer()",
            });
        }
        let wal = p.wal.get();
        if let Some(wal) = wal {
            wal.pass(std::time::Instant::now() + timeout);
        }
        #[cfg(feature = "metrics")]
        p.counters.pending(1);
        let got = p.pool.get_timeout(timeout);
        #[cfg(feature = "metrics")]
        p.counters.pending(-1);
        match got {
            Ok(inner) => Ok(Conn {
                wal: wal.map(|w| (w.clone(), inner.total_changes())),
                inner,
                counters: p.stats.then(|| p.counters.clone()),
                used: Cell::new(false),
            }),
            Err(_) => Err(self.timeout_error(timeout)),
        }
    }

    /// The pool's `connection_timeout`.
    pub(crate) fn timeout(&self) -> std::time::Duration {
        self.inner.timeout
    }

    /// The `busy_timeout` every connection of this pool has.
    pub(crate) fn busy_timeout(&self) -> std::time::Duration {
        self.inner.busy_timeout
    }

    /// Identifies this pool (all its clones) among the others of the process.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    fn timeout_error(&self, timeout: std::time::Duration) -> Error {
        let p = &self.inner;
        // Below max_size, the pool could have opened a connection: it failed, say why.
        let full = p.pool.state().connections >= p.max_size;
        Error::Timeout {
            pool: p.name.clone(),
            max_size: p.max_size,
            timeout,
            cause: if full {
                None
            } else {
                last_cause(&p.last_error)
            },
        }
    }

    /// The r2d2 pool. Connections taken from it directly are counted by the event handler, but
    /// their page-cache counters are sampled only when a [`Conn`] checks them in, and they run
    /// no checkpoint at check-in (`checkpoint = "background"`: the background thread steps in at
    /// twice `checkpoint_wal_size`).
    pub fn pool(&self) -> &Pool<Manager> {
        &self.inner.pool
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> PoolStats {
        self.inner.counters.snapshot(&self.inner.pool)
    }

    /// Zeroes the counters and histograms.
    pub fn reset_stats(&self) {
        self.inner.counters.reset()
    }
}

fn last_cause(last_error: &LastErrorHandle) -> Option<crate::customizer::LastError> {
    last_error
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Creates an empty database file. Elsewhere than on unix, `file_mode` does not apply and the
/// file gets the platform's default permissions.
#[cfg(not(unix))]
pub(crate) fn create_file(db: &DatabaseSettings) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&db.path)
        .map(drop)
        .map_err(|source| Error::Io {
            path: db.path.clone(),
            source,
        })
}

/// Creates an empty database file with `db.file_mode`; SQLite gives its `-wal` and `-shm` files
/// the same permissions.
#[cfg(unix)]
pub(crate) fn create_file(db: &DatabaseSettings) -> Result<()> {
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

/// For a `replication = "litefs"` database on a node that is not the LiteFS primary, the
/// primary's host name: LiteFS puts a `.primary` file in its mount directory on replicas only
/// (<https://fly.io/docs/litefs/primary/>). `None` on the primary and for other databases.
pub fn litefs_primary(db: &DatabaseSettings) -> Option<String> {
    if db.replication != crate::settings::Replication::Litefs {
        return None;
    }
    let dir = db
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let text = std::fs::read_to_string(dir.join(".primary")).ok()?;
    Some(text.trim().to_owned())
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

/// One database's pools, resolved once: [`Pools::handle`] gives it to code that checks out
/// often, so that a checkout skips the lookup by name. Cheap to clone, `'static`.
#[derive(Debug, Clone)]
pub struct Handle {
    database: String,
    /// `Err(primary)` on a LiteFS replica: no writer here.
    writer: std::result::Result<NamedPool, String>,
    reader: NamedPool,
    split: bool,
    /// The group commit of a split database's writer.
    commit: Option<Arc<crate::commit::GroupCommit>>,
    /// The background checkpointer (`checkpoint = "background"`).
    checkpointer: Option<Arc<crate::checkpoint::Checkpointer>>,
}

impl Handle {
    /// The database's name.
    pub fn name(&self) -> &str {
        &self.database
    }

    /// A connection of a database without a split; a split database refuses with
    /// [`Error::SplitDatabase`]: use [`Handle::writer`] or [`Handle::reader`].
    pub fn get(&self) -> Result<Conn> {
        if self.split {
            return Err(Error::SplitDatabase {
                name: self.database.clone(),
            });
        }
        self.writer()
    }

    /// The one writer connection of a split database (immediate transactions), waiting for it if
    /// another caller has it; for a database without a split, a connection from its pool.
    pub fn writer(&self) -> Result<Conn> {
        match &self.writer {
            // Inside a write closure of this database a second writing connection would wait
            // for the closure's own transaction (busy_timeout): refuse at once. (The writer of
            // a split database refuses in `NamedPool::get`.)
            Ok(pool) if !self.split && crate::reentry::inside(pool.id()) => Err(Error::Reentrant {
                database: self.database.clone(),
                call: "writer()",
            }),
            Ok(pool) => pool.get(),
            Err(primary) => Err(Error::NotPrimary {
                database: self.database.clone(),
                primary: primary.clone(),
            }),
        }
    }

    /// Runs `f` in a transaction and returns once it committed: `Ok` means `f`'s work
    /// committed, `Err` means none of it did. On a split database, `f` joins the writer's group
    /// commit: it runs in a transaction shared with the writes that overlap it (on the thread of
    /// whichever caller leads the batch), and the call returns after that transaction's COMMIT
    /// (see [`crate::commit`] and the README's table of errors). Elsewhere it runs alone in
    /// `BEGIN IMMEDIATE … COMMIT` on a pool connection, with the same checks. Inside `f`,
    /// `BEGIN`/`COMMIT`/`ROLLBACK` are refused ("not authorized"), nothing commits, and `write` or
    /// `writer()` on the same database fail at once with [`Error::Reentrant`]. A caller waits at
    /// most the writer's `connection_timeout` for `f` to start ([`Error::WriteTimeout`]).
    pub fn write<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        if let Some(commit) = &self.commit {
            return commit.write(f);
        }
        let pool = match &self.writer {
            Ok(pool) => pool,
            Err(primary) => {
                return Err(Error::NotPrimary {
                    database: self.database.clone(),
                    primary: primary.clone(),
                })
            }
        };
        crate::commit::write_alone(&self.database, pool, f)
    }

    /// What the background checkpointer did (`checkpoint = "background"`).
    pub fn checkpoint_stats(&self) -> Option<crate::checkpoint::CheckpointStats> {
        self.checkpointer.as_ref().map(|c| c.stats())
    }

    /// The group commit's statistics, for a split database.
    pub fn write_stats(&self) -> Option<crate::commit::GroupCommitStats> {
        self.commit.as_ref().map(|c| c.stats())
    }

    /// A read-only connection of a split database (opened with `SQLITE_OPEN_READ_ONLY`,
    /// `query_only`, deferred transactions); for a database without a split, a connection from
    /// its pool. A write on it fails with "attempt to write a readonly database".
    pub fn reader(&self) -> Result<Conn> {
        self.reader.get()
    }
}

/// One r2d2 pool per configured database, each with a [`PragmaCustomizer`] and statistics; a
/// database with a writer/readers split has two (`<name>.writer` and `<name>.readers`).
///
/// Cheap to clone (one reference count) and `Send + Sync + 'static`: keep it in an
/// application's state. The optimizer threads stop when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Pools {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Every concrete pool, by its name (`jobs`, or `jobs.writer` and `jobs.readers`).
    pools: BTreeMap<String, NamedPool>,
    /// Every database, by its name.
    databases: BTreeMap<String, Handle>,
    optimizers: Vec<Optimizer>,
    watcher: Option<Watcher>,
}

/// Runs `PRAGMA optimize` on a writer every interval, only when the writer is free
/// (`try_get`, so it never makes a checkout wait), until the pools are dropped.
#[derive(Debug)]
struct Optimizer {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Optimizer {
    fn start(pool: &NamedPool, interval: std::time::Duration) -> Result<Optimizer> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let pool = pool.clone();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("litepool-optimize-{}", pool.name()))
            .spawn(move || loop {
                std::thread::park_timeout(interval);
                if flag.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let p = &pool.inner;
                let Some(conn) = p.pool.try_get() else {
                    tracing::debug!(pool = %p.name, "writer busy: PRAGMA optimize skipped");
                    continue;
                };
                match conn.execute_batch("PRAGMA optimize") {
                    Ok(()) => p.counters.count_optimize(),
                    Err(e) => tracing::warn!(pool = %p.name, error = %e, "PRAGMA optimize failed"),
                }
            })
            .map_err(|source| Error::Io {
                path: "optimizer thread".into(),
                source,
            })?;
        Ok(Optimizer { stop, thread })
    }
}

/// Every [`WATCH_INTERVAL`], compares the file at each pool's path with the file its pool opened
/// (device and inode, as SQLite's `SQLITE_FCNTL_HAS_MOVED` does) and stops a pool whose file was
/// deleted, renamed or replaced. Checking in the background costs the checkout path one relaxed
/// atomic load; a `stat` per checkout would cost more (see `benches/acquire.rs`).
#[derive(Debug)]
struct Watcher {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

/// How often [`Pools`] checks that each database file is still the one it opened.
pub const WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

#[cfg(unix)]
fn file_identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_identity(path: &std::path::Path) -> Option<(u64, u64)> {
    // Without inodes, only a deleted file is seen.
    std::fs::metadata(path).ok().map(|_| (0, 0))
}

impl Watcher {
    fn start(pools: Vec<NamedPool>) -> Result<Watcher> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let watched: Vec<(NamedPool, Option<(u64, u64)>)> = pools
            .into_iter()
            .map(|p| {
                let id = file_identity(&p.inner.path);
                (p, id)
            })
            .collect();
        let thread = std::thread::Builder::new()
            .name("litepool-watch".into())
            .spawn(move || loop {
                std::thread::park_timeout(WATCH_INTERVAL);
                if flag.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                for (pool, opened) in &watched {
                    let p = &pool.inner;
                    #[cfg(feature = "metrics")]
                    p.counters.publish(&p.pool);
                    if p.moved.load(std::sync::atomic::Ordering::Relaxed) {
                        continue;
                    }
                    if file_identity(&p.path) != *opened {
                        p.moved.store(true, std::sync::atomic::Ordering::Relaxed);
                        tracing::error!(pool = %p.name, path = %p.path.display(), "database file deleted, renamed or replaced: the pool hands out no more connections");
                    }
                }
            })
            .map_err(|source| Error::Io {
                path: "watcher thread".into(),
                source,
            })?;
        Ok(Watcher { stop, thread })
    }
}

impl Drop for Inner {
    /// Stops the background threads and waits for them: they hold clones of the pools, so once
    /// they are gone, dropping the last `Pools` closes every connection before it returns (the
    /// last connection to a WAL database checkpoints it as it closes).
    fn drop(&mut self) {
        let threads = self
            .optimizers
            .drain(..)
            .map(|o| (o.stop, o.thread))
            .chain(self.watcher.take().map(|w| (w.stop, w.thread)));
        for (stop, thread) in threads {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            thread.thread().unpark();
            let _ = thread.join();
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
            let primary = litefs_primary(db);
            if let (Some(primary), None) = (&primary, &db.split) {
                return Err(Error::NotPrimary {
                    database: db.name.clone(),
                    primary: primary.clone(),
                });
            }
            let mut opened: Vec<(PoolSpec, NamedPool)> = Vec::new();
            for spec in db.pools() {
                // On a LiteFS replica only the readers open; the writer lives on the primary.
                if primary.is_some() && spec.role == Role::Writer {
                    continue;
                }
                let pool = NamedPool::open(db, &spec)?;
                pools.insert(spec.name.clone(), pool.clone());
                opened.push((spec, pool));
            }
            let by_role = |role: Role| {
                opened
                    .iter()
                    .find(|(s, _)| s.role == role)
                    .map(|(_, p)| p.clone())
            };
            let handle = match (by_role(Role::Writer), by_role(Role::Readers)) {
                (Some(writer), Some(reader)) => {
                    let background = (db.checkpoint == crate::settings::Checkpoint::Background)
                        .then(|| (db.path.as_path(), db.checkpoint_wal_size.bytes()));
                    let commit = db.split.as_ref().map(|s| {
                        Arc::new(crate::commit::GroupCommit::new(
                            &db.name,
                            writer.clone(),
                            s.group_commit,
                            s.writer_connection_timeout,
                            background,
                        ))
                    });
                    Handle {
                        database: db.name.clone(),
                        writer: Ok(writer),
                        reader,
                        split: true,
                        commit,
                        checkpointer: None,
                    }
                }
                (None, Some(reader)) => Handle {
                    database: db.name.clone(),
                    writer: Err(primary.clone().unwrap_or_default()),
                    reader,
                    split: true,
                    commit: None,
                    checkpointer: None,
                },
                _ => {
                    let single = opened[0].1.clone();
                    Handle {
                        database: db.name.clone(),
                        writer: Ok(single.clone()),
                        reader: single,
                        split: false,
                        commit: None,
                        checkpointer: None,
                    }
                }
            };
            let mut handle = handle;
            if db.checkpoint == crate::settings::Checkpoint::Background && primary.is_none() {
                let checkpointer = crate::checkpoint::Checkpointer::start(
                    &db.name,
                    &db.path,
                    db.checkpoint_wal_size.bytes(),
                )?;
                if let Ok(writer) = &handle.writer {
                    let _ = writer.inner.wal.set(checkpointer.watch(handle.split));
                }
                handle.checkpointer = Some(Arc::new(checkpointer));
            }
            if let (Some(interval), Ok(writer)) = (
                db.split.as_ref().and_then(|s| s.optimize_interval),
                &handle.writer,
            ) {
                optimizers.push(Optimizer::start(writer, interval)?);
            }
            databases.insert(db.name.clone(), handle);
        }
        let watcher = Some(Watcher::start(pools.values().cloned().collect())?);
        Ok(Pools {
            inner: Arc::new(Inner {
                pools,
                databases,
                optimizers,
                watcher,
            }),
        })
    }

    /// A concrete pool with its statistics: a database's name, or `<name>.writer` and
    /// `<name>.readers` for a split database.
    pub fn named(&self, name: &str) -> Result<&NamedPool> {
        self.inner
            .pools
            .get(name)
            .ok_or_else(|| Error::UnknownDatabase {
                name: name.to_owned(),
                known: self.inner.pools.keys().cloned().collect(),
            })
    }

    fn database(&self, name: &str) -> Result<&Handle> {
        self.inner
            .databases
            .get(name)
            .ok_or_else(|| Error::UnknownDatabase {
                name: name.to_owned(),
                known: self.inner.databases.keys().cloned().collect(),
            })
    }

    /// The database's pools, resolved once: `handle.get()`, `writer()` and `reader()` skip the
    /// lookup by name that [`Pools::get`] does on every call. Cheap to clone, `'static`.
    pub fn handle(&self, name: &str) -> Result<Handle> {
        self.database(name).cloned()
    }

    /// A connection from the named database. A split database refuses: use [`Pools::writer`] or
    /// [`Pools::reader`]. A timeout says why ([`Error::Timeout`]).
    pub fn get(&self, name: &str) -> Result<Conn> {
        self.database(name)?.get()
    }

    /// The one writer connection of a split database (immediate transactions), waiting for it if
    /// another caller has it; for a database without a split, a connection from its pool.
    pub fn writer(&self, name: &str) -> Result<Conn> {
        self.database(name)?.writer()
    }

    /// A read-only connection of a split database; for a database without a split, a connection
    /// from its pool. A write on it fails with SQLite's "attempt to write a readonly database".
    pub fn reader(&self, name: &str) -> Result<Conn> {
        self.database(name)?.reader()
    }

    /// [`Handle::write`] on the named database: group commit on a split database.
    pub fn write<T, F>(&self, name: &str, f: F) -> Result<T>
    where
        F: FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.database(name)?.write(f)
    }

    /// The r2d2 pool of [`Pools::named`].
    pub fn pool(&self, name: &str) -> Result<&Pool<Manager>> {
        Ok(self.named(name)?.pool())
    }

    /// The configured database names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.inner.databases.keys().map(String::as_str)
    }

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

    /// Zeroes the counters and histograms of every pool.
    pub fn reset_stats(&self) {
        self.inner.pools.values().for_each(NamedPool::reset_stats)
    }

    /// Publishes every pool's gauges and page-cache counters to the `metrics` recorder now (the
    /// watcher thread does it every [`WATCH_INTERVAL`]). Feature `metrics`.
    #[cfg(feature = "metrics")]
    pub fn publish_metrics(&self) {
        for p in self.inner.pools.values() {
            p.inner.counters.publish(&p.inner.pool);
        }
    }
}
