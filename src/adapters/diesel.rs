//! diesel: the same verified profiles for `::diesel::r2d2::ConnectionManager<SqliteConnection>`.
//!
//! [`PragmaCustomizer`] is diesel's `CustomizeConnection` too, so a hand-built diesel pool takes it
//! as it is. [`Pools`] builds one named diesel pool per configured database (writer and readers
//! for a split database) from the same settings through litepool's one open and check-in path,
//! as [`crate::Pools`] does: the same file checks, bootstrap, profile and read-back, the same
//! pragma guard ([`crate::guard`]), a transaction left open rolled back at check-in, readers
//! opened read-only (`mode=ro`), moved-file detection and the same statistics, page-cache
//! counters included. The driver ([`Diesel`]) only says how diesel opens a connection.
//!
//! diesel has no default transaction behaviour: [`Pools::transaction`] and [`transaction`] map a
//! profile's `transaction_behavior = "immediate"` to `SqliteConnection::immediate_transaction`
//! (and `exclusive` to `exclusive_transaction`).
//!
//! diesel keeps its SQLite handle private; litepool learns it as diesel opens the connection
//! (an SQLite automatic extension, on the opening thread) and keeps it in the connection's
//! instrumentation slot, wrapping diesel's default instrumentation so that events still reach
//! it. A connection whose instrumentation the application replaces (`set_instrumentation`) can
//! no longer be checked, and is closed at check-in instead of going back. A connection whose
//! transaction litepool rolled back at check-in is closed too (diesel's own transaction manager
//! would be out of step with it).

use std::sync::Arc;

use ::diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use ::diesel::deserialize::{self, QueryableByName};
use ::diesel::r2d2::{CustomizeConnection, Pool, PooledConnection};
use ::diesel::row::{NamedRow, Row};
use ::diesel::sql_types::Text;
use ::diesel::sqlite::{Sqlite, SqliteConnection};
use ::diesel::{Connection, RunQueryDsl};

use crate::adapter_databases::{Databases, Named};
use crate::connection::{PragmaConnection, PragmaError};
use crate::customizer::PragmaCustomizer;
use crate::driver::Driver;
use crate::error::{Error, Result};
use crate::manager::Manager;
use crate::open::Shared;
use crate::pragma::TransactionMode;
use crate::profile::Raw;
use crate::settings::{DatabaseSettings, PoolSpec, Settings};
use crate::stats::{PoolStats, StatsHandler};
use crate::sys::Db;

/// A diesel r2d2 pool of SQLite connections, as [`Pools`] builds it.
pub type DieselPool = Pool<Manager<Diesel>>;

/// A connection checked out of a [`DieselPool`]; a diesel `Connection`.
pub type DieselConnection = PooledConnection<Manager<Diesel>>;

/// diesel's [`SqliteConnection`] as a litepool pool kind ([`crate::manager::Manager`]'s driver).
#[derive(Debug, Clone, Copy, Default)]
pub struct Diesel;

/// diesel's instrumentation slot of a litepool connection: the connection's SQLite handle, and
/// the application's default instrumentation (diesel's `set_default_instrumentation`), which
/// still receives every event.
struct Handle {
    db: usize,
    inner: Option<Box<dyn Instrumentation>>,
}

impl Instrumentation for Handle {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let Some(inner) = &mut self.inner {
            inner.on_connection_event(event);
        }
    }
}

impl Driver for Diesel {
    type Connection = SqliteConnection;

    fn open(&self, pool: &str, path: &std::path::Path, writes: bool) -> Result<SqliteConnection> {
        let url = uri(path, writes);
        let (conn, db) = crate::sys::capture_open(|| SqliteConnection::establish(&url));
        let mut conn = conn.map_err(|e| Error::Io {
            path: path.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let db = db.ok_or_else(|| Error::Build {
            pool: pool.to_owned(),
            cause: Some(crate::customizer::LastError::connection(
                "diesel opened a connection litepool could not see (its SQLite handle)",
            )),
        })?;
        conn.set_instrumentation(Handle {
            db: db.addr(),
            inner: ::diesel::connection::get_default_instrumentation(),
        });
        Ok(conn)
    }

    fn db(conn: &mut SqliteConnection) -> Option<Db> {
        use ::diesel::Connection as _;
        conn.instrumentation()
            .downcast_ref::<Handle>()
            .map(|h| Db::from_addr(h.db))
    }

    const REUSE_AFTER_ROLLBACK: bool = false;
}

/// The first column of a `PRAGMA` result, as text (SQLite converts integers).
struct First(String);

impl QueryableByName<Sqlite> for First {
    fn build<'a>(row: &impl NamedRow<'a, Sqlite>) -> deserialize::Result<Self> {
        Row::get_value::<Text, String, usize>(row, 0).map(First)
    }
}

fn driver_error(e: ::diesel::result::Error) -> PragmaError {
    let message = e.to_string();
    PragmaError::Driver {
        busy: message.contains("database is locked"),
        message,
    }
}

/// A typed value as an SQL literal. Text values come from litepool's fixed lists (`wal`,
/// `normal`, …); they are quoted all the same.
fn literal(value: &Raw) -> String {
    match value {
        Raw::Int(i) => i.to_string(),
        Raw::Text(t) => format!("'{}'", t.replace('\'', "''")),
    }
}

impl PragmaConnection for SqliteConnection {
    fn set_pragma(&mut self, pragma: &'static str, value: &Raw) -> Result<(), PragmaError> {
        self.batch_execute(&format!("PRAGMA {pragma} = {}", literal(value)))
            .map_err(driver_error)
    }

    fn get_pragma(&mut self, pragma: &'static str) -> Result<Raw, PragmaError> {
        let First(text) = ::diesel::sql_query(format!("PRAGMA {pragma}"))
            .get_result::<First>(self)
            .map_err(driver_error)?;
        Ok(match text.parse::<i64>() {
            Ok(i) => Raw::Int(i),
            Err(_) => Raw::Text(text.to_lowercase()),
        })
    }

    fn execute_fixed(&mut self, sql: &'static str) -> Result<(), PragmaError> {
        self.batch_execute(sql).map_err(driver_error)
    }
}

impl CustomizeConnection<SqliteConnection, ::diesel::r2d2::Error> for PragmaCustomizer {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), ::diesel::r2d2::Error> {
        self.customize(conn).map_err(|e| {
            ::diesel::r2d2::Error::QueryError(::diesel::result::Error::QueryBuilderError(Box::new(
                e,
            )))
        })
    }
}

impl r2d2::HandleError<::diesel::r2d2::Error> for StatsHandler {
    fn handle_error(&self, error: ::diesel::r2d2::Error) {
        match &error {
            // The customizer's own error: it has logged it and kept it as the last error.
            ::diesel::r2d2::Error::QueryError(::diesel::result::Error::QueryBuilderError(e))
                if e.downcast_ref::<Error>().is_some() =>
            {
                self.0.count_customizer_failure()
            }
            _ => self.0.count_connection_error(&error.to_string()),
        }
    }
}

/// Runs `f` in a transaction of the given behaviour: `immediate` takes the write lock at BEGIN
/// (`immediate_transaction`), `exclusive` likewise (`exclusive_transaction`), deferred or none
/// is diesel's `transaction`.
pub fn transaction<T, E, F>(
    conn: &mut SqliteConnection,
    mode: Option<TransactionMode>,
    f: F,
) -> std::result::Result<T, E>
where
    F: FnOnce(&mut SqliteConnection) -> std::result::Result<T, E>,
    E: From<::diesel::result::Error>,
{
    match mode {
        Some(TransactionMode::Immediate) => conn.immediate_transaction(f),
        Some(TransactionMode::Exclusive) => conn.exclusive_transaction(f),
        _ => conn.transaction(f),
    }
}

/// The URI diesel opens: `file:` with the path percent-encoded, `mode=ro` for readers.
fn uri(path: &std::path::Path, writes: bool) -> String {
    let path = path.to_string_lossy();
    let mut out = String::from("file:");
    for b in path.bytes() {
        match b {
            b'%' | b'?' | b'#' | b' ' | 0..=0x1f | 0x7f.. => out.push_str(&format!("%{b:02X}")),
            _ => out.push(b as char),
        }
    }
    if !writes {
        out.push_str("?mode=ro");
    }
    out
}

/// One diesel pool with its statistics and transaction behaviour.
#[derive(Clone)]
struct DieselNamed {
    pool: DieselPool,
    shared: std::sync::Arc<Shared>,
    mode: Option<TransactionMode>,
}

impl DieselNamed {
    fn open(db: &DatabaseSettings, spec: &PoolSpec) -> Result<DieselNamed> {
        let prepared = crate::open::prepare(Diesel, db, spec)?;
        let manager = Manager::new(prepared.opener, true);
        Ok(DieselNamed {
            pool: crate::pool::build(spec, &prepared.shared, manager)?,
            shared: prepared.shared,
            mode: spec.profile.pragmas().transaction_behavior,
        })
    }

    fn get(&self) -> Result<DieselConnection> {
        self.shared.check_moved()?;
        self.pool.get().map_err(|_| {
            self.shared
                .timeout_error(self.shared.timeout, self.pool.state().connections)
        })
    }
}

impl Named for DieselNamed {
    fn shared(&self) -> &std::sync::Arc<Shared> {
        &self.shared
    }
}

/// One named diesel pool per configured database (`<name>.writer` and `<name>.readers` for a
/// split one), from the same [`Settings`] as [`crate::Pools`]. Cheap to clone, `'static`.
///
/// ```no_run
/// use ::diesel::RunQueryDsl;
/// let settings = litepool::Settings::load()?;
/// let pools = litepool::diesel::Pools::new(&settings)?;
/// let mut conn = pools.get("jobs")?;
/// ::diesel::sql_query("CREATE TABLE IF NOT EXISTS t(x)").execute(&mut conn)?;
/// // BEGIN IMMEDIATE when the profile says transaction_behavior = "immediate".
/// pools.transaction("jobs", |conn| {
///     ::diesel::sql_query("INSERT INTO t VALUES (1)").execute(conn)
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Pools {
    databases: Arc<Databases<DieselNamed>>,
}

impl Pools {
    /// Checks every file ([`crate::pools::preflight`]), then bootstraps and builds each pool.
    pub fn new(settings: &Settings) -> Result<Pools> {
        Ok(Pools {
            databases: Arc::new(Databases::open(settings, DieselNamed::open)?),
        })
    }

    /// A connection of a database without a split (a split one refuses: use `writer`/`reader`).
    pub fn get(&self, name: &str) -> Result<DieselConnection> {
        self.databases.single(name)?.get()
    }

    /// The writer of a split database, or a connection of its one pool.
    pub fn writer(&self, name: &str) -> Result<DieselConnection> {
        self.databases.get(name)?.writer.get()
    }

    /// A read-only connection (`mode=ro`, `query_only`) of a split database, or a connection of
    /// its one pool.
    pub fn reader(&self, name: &str) -> Result<DieselConnection> {
        self.databases.get(name)?.reader.get()
    }

    /// The r2d2 pool behind a concrete pool name (`jobs`, `jobs.writer`, `jobs.readers`).
    pub fn pool(&self, name: &str) -> Result<&DieselPool> {
        self.databases.named(name).map(|n| &n.pool)
    }

    /// Statistics of a concrete pool (checkouts, waits, timeouts, connections, errors).
    pub fn stats_for(&self, name: &str) -> Result<PoolStats> {
        let n = self.databases.named(name)?;
        Ok(n.shared.counters.snapshot(&n.pool))
    }

    /// Runs `f` in a transaction on the writer (or the one pool) of `name`, with the profile's
    /// `transaction_behavior` (see [`transaction`]). The outer `Result` is the checkout's, the
    /// inner one the transaction's.
    pub fn transaction<T, E, F>(&self, name: &str, f: F) -> Result<std::result::Result<T, E>>
    where
        F: FnOnce(&mut SqliteConnection) -> std::result::Result<T, E>,
        E: From<::diesel::result::Error>,
    {
        let db = self.databases.get(name)?;
        let mut conn = db.writer.get()?;
        Ok(transaction(&mut conn, db.writer.mode, f))
    }
}
