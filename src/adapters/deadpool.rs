//! deadpool-sqlite: the same verified profiles for async code.
//!
//! [`post_create`] is a deadpool hook that applies and verifies a profile on every new
//! connection inside `interact` (SQLite calls block, so they run on deadpool's blocking
//! threads), with the customizer's bootstrap, errors and last error. [`pool`] builds a
//! `deadpool_sqlite::Pool` for one pool of a configured database after the same file checks and
//! bootstrap as [`crate::Pools`]; [`Pools`] builds them all from [`Settings`].
//!
//! deadpool-sqlite opens every connection read-write; a split database's readers are read-only
//! through `query_only = ON`, which the pragma guard keeps on (application code cannot assign it).

use std::sync::Arc;

use deadpool_sqlite::{Config, Hook, HookError, Object, Pool, PoolError, Runtime};
use rusqlite::{Connection, OpenFlags};

use crate::adapter_databases::{Databases, Named};
use crate::customizer::{LastErrorHandle, PragmaCustomizer};
use crate::error::{Error, Result};
use crate::settings::{DatabaseSettings, PoolSpec, Settings};
use crate::stats::{PoolCounters, PoolStats};

/// A deadpool `post_create` hook that applies `customizer`'s profile to each new connection and
/// reads it back; a connection whose profile does not take effect is refused with the error's
/// message (the customizer logs it and keeps it as its last error).
pub fn post_create(customizer: Arc<PragmaCustomizer>) -> Hook {
    counted_post_create(customizer, None)
}

/// [`post_create`], counting opened connections and customizer failures into `counters`.
fn counted_post_create(
    customizer: Arc<PragmaCustomizer>,
    counters: Option<Arc<PoolCounters>>,
) -> Hook {
    Hook::async_fn(move |conn, _metrics| {
        let customizer = customizer.clone();
        let counters = counters.clone();
        Box::pin(async move {
            let start = std::time::Instant::now();
            let applied = conn
                .interact(move |c| customizer.customize_guarded(c))
                .await
                .map_err(|e| HookError::message(format!("interact failed: {e}")))?;
            if let Some(c) = &counters {
                match &applied {
                    Ok(()) => {
                        c.count_created();
                        c.record_create(start.elapsed());
                    }
                    Err(_) => c.count_customizer_failure(),
                }
            }
            applied.map_err(|e| HookError::message(e.to_string()))
        })
    })
}

/// A deadpool-sqlite pool for `spec`, one of `db.pools()`: validates the pool settings,
/// creates the file as [`crate::Pools`] does, bootstraps the database on a dedicated connection
/// (a split database's writer before its readers), and attaches [`post_create`]. Call
/// [`crate::pools::preflight`] first, as [`Pools::new`] does.
pub fn pool(db: &DatabaseSettings, spec: &PoolSpec) -> Result<Pool> {
    build(db, spec).map(|(pool, _, _)| pool)
}

fn build(
    db: &DatabaseSettings,
    spec: &PoolSpec,
) -> Result<(Pool, LastErrorHandle, Arc<PoolCounters>)> {
    let p = &spec.pool;
    p.validate()?;
    let customizer = PragmaCustomizer::new(&spec.name, spec.profile.clone());
    if db.create_if_missing && spec.role.writes() && !db.path.exists() {
        crate::pools::create_file(db)?;
    }
    if spec.role.writes() {
        let mut conn = Connection::open_with_flags(&db.path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|source| Error::Sqlite {
                database: spec.name.clone(),
                source,
            })?;
        customizer.bootstrap(&mut conn)?;
    } else {
        customizer.skip_bootstrap();
    }
    let last_error = customizer.last_error();
    let counters = Arc::new(PoolCounters::new(
        &spec.name,
        p.max_lifetime,
        last_error.clone(),
    ));
    let config = Config::new(&db.path);
    let pool = config
        .builder(Runtime::Tokio1)
        .map_err(|e| Error::Build {
            pool: spec.name.clone(),
            cause: Some(crate::customizer::LastError::connection(e.to_string())),
        })?
        .max_size(p.max_size as usize)
        .wait_timeout(Some(p.connection_timeout))
        .create_timeout(Some(p.connection_timeout))
        .post_create(counted_post_create(
            Arc::new(customizer),
            Some(counters.clone()),
        ))
        .build()
        .map_err(|e| Error::Build {
            pool: spec.name.clone(),
            cause: Some(crate::customizer::LastError::connection(e.to_string())),
        })?;
    Ok((pool, last_error, counters))
}

/// One pool, with its customizer's last error for the errors of a checkout.
#[derive(Clone)]
struct DeadpoolNamed {
    pool: Pool,
    last_error: LastErrorHandle,
    counters: Arc<PoolCounters>,
    name: String,
    timeout: std::time::Duration,
}

impl DeadpoolNamed {
    /// Statistics in litepool's shape: checkouts, waits and timeouts (counted here),
    /// connections opened and refused (counted by the hook), deadpool's size and idle count.
    /// Hold times are not known: deadpool does not report a check-in.
    fn stats(&self) -> PoolStats {
        let s = self.pool.status();
        let max = s.max_size as u32;
        self.counters
            .snapshot_of(max, 0, s.size as u32, s.available as u32)
    }

    async fn get(&self) -> Result<Object> {
        let start = std::time::Instant::now();
        let got = self.pool.get().await;
        match &got {
            Ok(_) => self.counters.record_checkout(start.elapsed()),
            Err(PoolError::Timeout(_)) => self.counters.record_timeout(start.elapsed()),
            Err(_) => {}
        }
        got.map_err(|e| {
            let last = self
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            match e {
                PoolError::Timeout(_) => Error::Timeout {
                    pool: self.name.clone(),
                    max_size: self.pool.status().max_size as u32,
                    timeout: self.timeout,
                    cause: last.filter(|_| self.pool.status().size < self.pool.status().max_size),
                },
                other => Error::Build {
                    pool: self.name.clone(),
                    cause: Some(last.unwrap_or_else(|| {
                        crate::customizer::LastError::connection(other.to_string())
                    })),
                },
            }
        })
    }
}

impl Named for DeadpoolNamed {
    fn name(&self) -> &str {
        &self.name
    }
}

/// One deadpool-sqlite pool per configured database (a writer and readers for a split one),
/// from the same [`Settings`] as [`crate::Pools`]. Cheap to clone, `'static`.
///
/// As with deadpool-sqlite's own pools, build and drop it inside a tokio runtime: its
/// connections close on the runtime's blocking threads, and deadpool panics when the last
/// clone is dropped outside one.
#[derive(Clone)]
pub struct Pools {
    databases: Arc<Databases<DeadpoolNamed>>,
}

impl std::fmt::Debug for Pools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("deadpool::Pools")
            .field("databases", &self.databases.names())
            .finish()
    }
}

impl Pools {
    /// Checks every file, then bootstraps each database and builds its pools. Must be called
    /// inside a tokio runtime.
    pub fn new(settings: &Settings) -> Result<Pools> {
        let open = |db: &DatabaseSettings, spec: &PoolSpec| {
            let (pool, last_error, counters) = build(db, spec)?;
            Ok(DeadpoolNamed {
                pool,
                last_error,
                counters,
                name: spec.name.clone(),
                timeout: spec.pool.connection_timeout,
            })
        };
        Ok(Pools {
            databases: Arc::new(Databases::open(settings, open)?),
        })
    }

    /// A connection of a database without a split (a split one refuses: use `writer`/`reader`).
    pub async fn get(&self, name: &str) -> Result<Object> {
        self.databases.single(name)?.get().await
    }

    /// The writer of a split database, or a connection of its one pool.
    pub async fn writer(&self, name: &str) -> Result<Object> {
        self.databases.get(name)?.writer.get().await
    }

    /// A `query_only` connection of a split database, or a connection of its one pool.
    pub async fn reader(&self, name: &str) -> Result<Object> {
        self.databases.get(name)?.reader.get().await
    }

    /// Statistics of a concrete pool (`jobs`, `jobs.writer`, `jobs.readers`), in the shape of
    /// [`crate::Pools::stats_for`]: checkouts, waits, timeouts, connections opened, customizer
    /// failures and the last error, deadpool's size and idle connections. Hold times and
    /// page-cache counters are not collected for deadpool pools.
    pub fn stats_for(&self, name: &str) -> Result<PoolStats> {
        self.databases.named(name).map(DeadpoolNamed::stats)
    }

    /// The deadpool pool of a database's writer (or its one pool), e.g. for `status()`.
    pub fn pool(&self, name: &str) -> Result<&Pool> {
        Ok(&self.databases.get(name)?.writer.pool)
    }
}
