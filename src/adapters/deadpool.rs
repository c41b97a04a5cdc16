//! deadpool: the same verified profiles and guarantees for async code.
//!
//! [`Pools`] builds one deadpool pool per configured database (a writer and readers for a split
//! one) through litepool's one open and check-in path, as [`crate::Pools`] does: the same file
//! checks, bootstrap, profile and read-back, the pragma guard ([`crate::guard`]), readers opened
//! read-only (`SQLITE_OPEN_READ_ONLY`, plus `query_only`), moved-file detection and statistics.
//! Its [`Manager`] opens connections with litepool's opener on deadpool's blocking threads
//! (SQLite calls block) and recycles them through litepool's check-in.
//!
//! A connection ([`Conn`]) is checked in as it is dropped: a transaction left open is rolled
//! back then, so that its locks do not outlive the borrow (deadpool itself only recycles a
//! connection when it hands it out again). When the connection is busy at that moment (an
//! `interact` still running after its future was dropped), the rollback happens when deadpool
//! next hands it out, before the borrower sees it.
//!
//! [`post_create`] remains for hand-built `deadpool_sqlite` pools: it applies and verifies a
//! profile and installs the guard on each new connection (no check-in: that needs [`Pools`]).

use std::sync::Arc;
use std::time::Instant;

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use deadpool::Runtime;
use deadpool_sqlite::{Hook, HookError};
use deadpool_sync::SyncWrapper;

use crate::adapter_databases::{Databases, Named};
use crate::checkin::{check_in, CheckIn};
use crate::customizer::PragmaCustomizer;
use crate::driver::Rusqlite;
use crate::error::{Error, Result};
use crate::open::{Opener, Shared};
use crate::settings::{DatabaseSettings, PoolSpec, Settings};
use crate::stats::PoolStats;

/// A deadpool `post_create` hook for a hand-built `deadpool_sqlite` pool: applies
/// `customizer`'s profile to each new connection, reads it back and installs the pragma guard;
/// a connection whose profile does not take effect is refused with the error's message (the
/// customizer logs it and keeps it as its last error).
pub fn post_create(customizer: Arc<PragmaCustomizer>) -> Hook {
    Hook::async_fn(move |conn, _metrics| {
        let customizer = customizer.clone();
        Box::pin(async move {
            conn.interact(move |c| customizer.customize_guarded(c))
                .await
                .map_err(|e| HookError::message(format!("interact failed: {e}")))?
                .map_err(|e| HookError::message(e.to_string()))
        })
    })
}

/// litepool's deadpool manager: creates connections with litepool's opener (driver, profile,
/// guard) and recycles them through litepool's check-in.
pub struct Manager {
    opener: Arc<Opener<Rusqlite>>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("deadpool::Manager")
            .field("pool", &self.opener.shared().name)
            .finish()
    }
}

impl managed::Manager for Manager {
    type Type = SyncWrapper<rusqlite::Connection>;
    type Error = Error;

    async fn create(&self) -> Result<Self::Type> {
        let opener = self.opener.clone();
        let conn = SyncWrapper::new(Runtime::Tokio1, move || opener.connect()).await?;
        self.opener.shared().counters.count_created();
        Ok(conn)
    }

    async fn recycle(&self, conn: &mut Self::Type, _: &Metrics) -> RecycleResult<Error> {
        if conn.is_mutex_poisoned() {
            return Err(RecycleError::message(
                "a closure run with interact panicked: the connection is closed",
            ));
        }
        let shared = self.opener.shared().clone();
        let verdict = conn
            .interact(move |c| check_in::<Rusqlite>(c, &shared, true))
            .await
            .map_err(|e| RecycleError::message(format!("interact failed: {e}")))?;
        if verdict.discard() {
            return Err(RecycleError::message(
                "the connection was left in a state the next borrower must not see",
            ));
        }
        Ok(())
    }
}

/// A deadpool pool built by litepool.
pub type Pool = managed::Pool<Manager>;

/// deadpool's object of a [`Pool`]: `interact` runs a closure on the connection.
pub type Object = managed::Object<Manager>;

/// A connection checked out of a litepool deadpool pool: derefs to [`Object`] (use
/// `conn.interact(|c| …).await`). Dropping it checks the connection in: a transaction left open
/// is rolled back at once, a connection that created temporary objects is closed, and the time
/// it was held is recorded.
pub struct Conn {
    object: Option<Object>,
    shared: Arc<Shared>,
    since: Instant,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("deadpool::Conn")
            .field("pool", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for Conn {
    type Target = Object;
    fn deref(&self) -> &Object {
        self.object.as_ref().expect("present until drop")
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Object {
        self.object.as_mut().expect("present until drop")
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.shared.counters.record_checkin(self.since.elapsed());
        let Some(object) = self.object.take() else {
            return;
        };
        // A rollback takes microseconds; the lock is free unless an `interact` whose future
        // was dropped still runs, in which case `recycle` checks the connection in before it is
        // handed out again.
        let verdict = match object.try_lock() {
            Ok(mut guard) => check_in::<Rusqlite>(&mut guard, &self.shared, false),
            Err(_) => CheckIn::Clean,
        };
        if verdict.discard() {
            // Out of the pool: the connection closes here instead of going back.
            drop(Object::take(object));
        }
    }
}

/// A deadpool pool for `spec`, one of `db.pools()`: validates the pool settings, creates the file
/// as [`crate::Pools`] does, bootstraps the database on a dedicated connection (a split
/// database's writer before its readers), and builds the pool with litepool's [`Manager`]. Call
/// [`crate::pools::preflight`] first, as [`Pools::new`] does. Must be called inside a tokio
/// runtime.
pub fn pool(db: &DatabaseSettings, spec: &PoolSpec) -> Result<Pool> {
    build(db, spec).map(|named| named.pool)
}

fn build(db: &DatabaseSettings, spec: &PoolSpec) -> Result<DeadpoolNamed> {
    let prepared = crate::open::prepare(Rusqlite, db, spec)?;
    let p = &spec.pool;
    let manager = Manager {
        opener: Arc::new(prepared.opener),
    };
    let pool = Pool::builder(manager)
        .max_size(p.max_size as usize)
        .wait_timeout(Some(p.connection_timeout))
        .create_timeout(Some(p.connection_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| Error::Build {
            pool: spec.name.clone(),
            cause: Some(crate::customizer::LastError::connection(e.to_string())),
        })?;
    Ok(DeadpoolNamed {
        pool,
        shared: prepared.shared,
    })
}

/// One pool and its shared state.
#[derive(Clone)]
struct DeadpoolNamed {
    pool: Pool,
    shared: Arc<Shared>,
}

impl DeadpoolNamed {
    /// Statistics in litepool's shape: checkouts, waits, timeouts and hold times (counted
    /// here), connections opened and refused (counted by the opener), page-cache counters
    /// (sampled by the check-in at recycle), deadpool's size and idle count.
    fn stats(&self) -> PoolStats {
        let s = self.pool.status();
        let max = s.max_size as u32;
        self.shared
            .counters
            .snapshot_of(max, 0, s.size as u32, s.available as u32)
    }

    async fn get(&self) -> Result<Conn> {
        self.shared.check_moved()?;
        let start = Instant::now();
        let got = self.pool.get().await;
        let counters = &self.shared.counters;
        match got {
            Ok(object) => {
                counters.record_checkout(start.elapsed());
                Ok(Conn {
                    object: Some(object),
                    shared: self.shared.clone(),
                    since: Instant::now(),
                })
            }
            Err(managed::PoolError::Timeout(_)) => {
                counters.record_timeout(start.elapsed());
                Err(self
                    .shared
                    .timeout_error(self.shared.timeout, self.pool.status().size as u32))
            }
            Err(managed::PoolError::Backend(e)) => Err(e),
            Err(other) => Err(Error::Build {
                pool: self.shared.name.clone(),
                cause: Some(self.shared.last_cause().unwrap_or_else(|| {
                    crate::customizer::LastError::connection(other.to_string())
                })),
            }),
        }
    }
}

impl Named for DeadpoolNamed {
    fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

/// One deadpool pool per configured database (a writer and readers for a split one), from the
/// same [`Settings`] as [`crate::Pools`]. Cheap to clone, `'static`.
///
/// As with deadpool's own pools, build and drop it inside a tokio runtime: its connections
/// close on the runtime's blocking threads.
#[derive(Clone, Debug)]
pub struct Pools {
    databases: Arc<Databases<DeadpoolNamed>>,
}

impl Pools {
    /// Checks every file, then bootstraps each database and builds its pools. Must be called
    /// inside a tokio runtime.
    pub fn new(settings: &Settings) -> Result<Pools> {
        Ok(Pools {
            databases: Arc::new(Databases::open(settings, build)?),
        })
    }

    /// A connection of a database without a split (a split one refuses: use `writer`/`reader`).
    pub async fn get(&self, name: &str) -> Result<Conn> {
        self.databases.single(name)?.get().await
    }

    /// The writer of a split database, or a connection of its one pool.
    pub async fn writer(&self, name: &str) -> Result<Conn> {
        self.databases.get(name)?.writer.get().await
    }

    /// A read-only connection (`SQLITE_OPEN_READ_ONLY`, `query_only`) of a split database, or a
    /// connection of its one pool.
    pub async fn reader(&self, name: &str) -> Result<Conn> {
        self.databases.get(name)?.reader.get().await
    }

    /// Statistics of a concrete pool (`jobs`, `jobs.writer`, `jobs.readers`), in the shape of
    /// [`crate::Pools::stats_for`]: checkouts, waits, timeouts, hold times, connections opened,
    /// customizer failures and the last error, page-cache counters (sampled as connections are
    /// recycled), deadpool's size and idle connections.
    pub fn stats_for(&self, name: &str) -> Result<PoolStats> {
        self.databases.named(name).map(DeadpoolNamed::stats)
    }

    /// The deadpool pool of a database's writer (or its one pool), e.g. for `status()`.
    pub fn pool(&self, name: &str) -> Result<&Pool> {
        Ok(&self.databases.get(name)?.writer.pool)
    }
}
