//! [`Pools`]: one named r2d2 pool per configured database.

use std::collections::BTreeMap;
use std::sync::PoisonError;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::budget::Budget;
use crate::customizer::{LastErrorHandle, PragmaCustomizer};
use crate::error::{Error, Result};
use crate::file::{self, FileState};
use crate::settings::{DatabaseSettings, Settings};

/// A connection checked out of a litepool pool.
pub type Conn = PooledConnection<SqliteConnectionManager>;

/// A point-in-time view of one pool: eventually consistent, as r2d2's `State` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PoolStats {
    /// The configured maximum.
    pub max_size: u32,
    /// Connections open (idle and in use).
    pub connections: u32,
    /// Connections idle.
    pub idle: u32,
    /// Connections checked out.
    pub in_use: u32,
}

impl PoolStats {
    /// A snapshot of any r2d2 pool.
    pub fn of<M: r2d2::ManageConnection>(pool: &Pool<M>) -> PoolStats {
        let s = pool.state();
        PoolStats {
            max_size: pool.max_size(),
            connections: s.connections,
            idle: s.idle_connections,
            in_use: s.connections - s.idle_connections,
        }
    }
}

struct Entry {
    pool: Pool<SqliteConnectionManager>,
    last_error: LastErrorHandle,
}

/// One r2d2 pool per configured database, each with a [`PragmaCustomizer`].
pub struct Pools {
    pools: BTreeMap<String, Entry>,
}

impl std::fmt::Debug for Pools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pools")
            .field("names", &self.pools.keys().collect::<Vec<_>>())
            .finish()
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

/// Bootstraps one database (journal switch, file-level pragmas on a new file, verification on a
/// dedicated connection) and builds its pool. [`Pools::new`] runs [`preflight`] first.
pub fn open_pool(
    db: &DatabaseSettings,
) -> Result<(Pool<SqliteConnectionManager>, LastErrorHandle)> {
    let customizer = PragmaCustomizer::new(&db.name, db.profile.clone());
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if db.create_if_missing {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let sqlite_err = |source| Error::Sqlite {
        database: db.name.clone(),
        source,
    };
    {
        let mut conn = Connection::open_with_flags(&db.path, flags).map_err(sqlite_err)?;
        tracing::info!(database = %db.name, path = %db.path.display(), "bootstrapping");
        customizer.bootstrap(&mut conn)?;
    }
    let last_error = customizer.last_error();
    let p = &db.pool;
    // The file exists now: pooled connections never create it again.
    let manager = SqliteConnectionManager::file(&db.path)
        .with_flags(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX);
    let pool = Pool::builder()
        .max_size(p.max_size)
        .min_idle(p.min_idle)
        .connection_timeout(p.connection_timeout)
        .idle_timeout(p.idle_timeout)
        .max_lifetime(p.max_lifetime)
        .test_on_check_out(p.test_on_check_out)
        .connection_customizer(Box::new(customizer))
        .build(manager)
        .map_err(|source| pool_error(&db.name, source, &last_error))?;
    tracing::info!(database = %db.name, max_size = p.max_size, "pool ready");
    Ok((pool, last_error))
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

impl Pools {
    /// Checks every database file ([`preflight`]), then bootstraps and builds each pool.
    pub fn new(settings: &Settings) -> Result<Pools> {
        preflight(settings)?;
        let mut pools = BTreeMap::new();
        for db in settings.databases.values() {
            let (pool, last_error) = open_pool(db)?;
            pools.insert(db.name.clone(), Entry { pool, last_error });
        }
        Ok(Pools { pools })
    }

    fn entry(&self, name: &str) -> Result<&Entry> {
        self.pools.get(name).ok_or_else(|| Error::UnknownDatabase {
            name: name.to_owned(),
            known: self.pools.keys().cloned().collect(),
        })
    }

    /// A connection from the named pool. A timeout carries the customizer's last error.
    pub fn get(&self, name: &str) -> Result<Conn> {
        let e = self.entry(name)?;
        e.pool
            .get()
            .map_err(|source| pool_error(name, source, &e.last_error))
    }

    /// The named r2d2 pool.
    pub fn pool(&self, name: &str) -> Result<&Pool<SqliteConnectionManager>> {
        Ok(&self.entry(name)?.pool)
    }

    /// The configured names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pools.keys().map(String::as_str)
    }

    /// A snapshot of the named pool.
    pub fn stats_for(&self, name: &str) -> Result<PoolStats> {
        Ok(PoolStats::of(&self.entry(name)?.pool))
    }

    /// A snapshot of every pool, by name.
    pub fn stats(&self) -> BTreeMap<String, PoolStats> {
        self.names()
            .map(|n| (n.to_owned(), self.stats_for(n).expect("name from names()")))
            .collect()
    }
}
