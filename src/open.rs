//! The one path by which every pool kind (rusqlite, diesel, deadpool) opens a pool and its
//! connections: validate the pool settings, create the file, bootstrap the database on a
//! dedicated connection, then for each pooled connection open it, apply and verify the
//! profile, install the guard and time it. A pool kind adds only its [`Driver`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::connection::PragmaConnection;
use crate::customizer::{LastError, LastErrorHandle, PragmaCustomizer};
use crate::driver::Driver;
use crate::error::{Error, Result};
use crate::pragma::TransactionMode;
use crate::settings::{DatabaseSettings, PoolSpec};
use crate::staleness::ReplicaCounters;
use crate::stats::PoolCounters;
use crate::sys::ApiState;

/// A read replica pool's database and statistics.
#[derive(Debug)]
pub(crate) struct Replica {
    pub(crate) database: String,
    pub(crate) counters: Arc<ReplicaCounters>,
}

/// What every pool of any kind shares: its name and file, the moved flag the watcher sets, its
/// statistics and last error, and how a checkout waits. Cheap to share (`Arc`).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    pub(crate) writes: bool,
    /// A read replica's pool: connections open through Litestream's VFS. Shared by the pools
    /// that replace this one on a reload, as the counters are.
    pub(crate) replica: Option<Arc<Replica>>,
    /// Set by the watcher when the file at `path` is no longer the one opened. Shared by the
    /// pools that replace this one on a reload (`Pools::reload`): the watcher keeps the first.
    pub(crate) moved: Arc<AtomicBool>,
    pub(crate) counters: Arc<PoolCounters>,
    pub(crate) last_error: LastErrorHandle,
    pub(crate) max_size: u32,
    pub(crate) timeout: Duration,
    pub(crate) stats: bool,
    /// The profile's `busy_timeout` (zero when unset). The guard refuses assignments of any
    /// other value to it.
    pub(crate) busy_timeout: Duration,
    /// The state a connection is opened in that a borrower can change through SQLite's C API
    /// rather than SQL (see [`crate::sys::ApiState`]) and the busy timeout in milliseconds,
    /// taken from the pool's first connection: check-in restores the busy timeout and closes a
    /// connection whose state differs.
    pub(crate) opened: OnceLock<(ApiState, i32)>,
    /// The profile's transaction behaviour (rusqlite's `Connection::transaction()`), put back at
    /// check-in.
    pub(crate) transaction_mode: TransactionMode,
    /// Set by [`crate::pool::NamedPool::close`]: a connection checked in is closed, and no new
    /// one opens.
    pub(crate) closing: AtomicBool,
    /// Set by `Pools::reload` on a pool it replaced: a connection checked in is closed (it has
    /// the old profile), and a checkout that still got one moves on to the pool's successor.
    /// Unlike `closing`, connections may still open, for the checkouts that were waiting in it.
    pub(crate) retired: AtomicBool,
}

impl Shared {
    /// Refuses a checkout from a pool whose file was deleted, renamed or replaced.
    #[inline]
    pub(crate) fn check_moved(&self) -> Result<()> {
        if self.moved.load(Ordering::Relaxed) {
            return Err(Error::Moved {
                pool: self.name.clone(),
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// The customizer's or a connection's last error.
    pub(crate) fn last_cause(&self) -> Option<LastError> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A checkout that waited `timeout` in vain: below `max_size` the pool could have opened a
    /// connection and failed, so the last error says why.
    pub(crate) fn timeout_error(&self, timeout: Duration, connections: u32) -> Error {
        Error::Timeout {
            pool: self.name.clone(),
            max_size: self.max_size,
            timeout,
            cause: if connections >= self.max_size {
                None
            } else {
                self.last_cause()
            },
        }
    }
}

/// One pool, prepared: the database bootstrapped, its customizer and shared state ready for the
/// pool kind to build its pool around [`Opener`].
pub(crate) struct Prepared<D: Driver> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) opener: Opener<D>,
}

/// Opens the connections of one pool: the driver, the profile and the guard.
pub struct Opener<D: Driver> {
    driver: D,
    shared: Arc<Shared>,
    customizer: PragmaCustomizer,
}

impl<D: Driver + std::fmt::Debug> std::fmt::Debug for Opener<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("driver", &self.driver)
            .field("pool", &self.shared.name)
            .finish_non_exhaustive()
    }
}

/// Validates `spec`'s pool settings, creates the file of `db` if it may (a writing pool of a
/// `create_if_missing` database), and on a writing pool bootstraps the database on a dedicated
/// connection (journal switch, file-level pragmas of a new file, verification). A split
/// database's writer is prepared before its readers, which only set and verify.
#[cfg_attr(not(any(feature = "diesel", feature = "deadpool")), allow(dead_code))]
pub(crate) fn prepare<D: Driver>(
    driver: D,
    db: &DatabaseSettings,
    spec: &PoolSpec,
) -> Result<Prepared<D>> {
    prepare_with(driver, db, spec, None)
}

/// [`prepare`] for a pool that replaces `previous` on a reload: it keeps the statistics, the
/// last error and the moved flag of the pool it replaces, so counters run on across a reload.
pub(crate) fn prepare_with<D: Driver>(
    driver: D,
    db: &DatabaseSettings,
    spec: &PoolSpec,
    previous: Option<&Shared>,
) -> Result<Prepared<D>> {
    let p = &spec.pool;
    p.validate()?;
    let writes = spec.role.writes();
    let customizer = PragmaCustomizer::new(&spec.name, spec.profile.clone());
    let customizer = if writes {
        customizer
    } else {
        customizer.for_reader(&spec.database)
    };
    let customizer = match previous {
        Some(prev) => customizer.with_last_error(prev.last_error.clone()),
        None => customizer,
    };
    if db.create_if_missing && writes && !db.path.exists() {
        crate::file::create(db)?;
    }
    if writes {
        let mut conn = driver.open(&spec.name, &db.path, true)?;
        tracing::info!(pool = %spec.name, path = %db.path.display(), "bootstrapping");
        customizer.bootstrap(&mut conn)?;
    } else {
        customizer.skip_bootstrap();
    }
    let replica = match previous {
        Some(prev) => prev.replica.clone(),
        None => db.replica.as_ref().map(|r| {
            Arc::new(Replica {
                database: db.name.clone(),
                counters: Arc::new(ReplicaCounters::new(&r.url)),
            })
        }),
    };
    let (last_error, counters, moved) = match previous {
        Some(prev) => (
            {
                prev.counters.set_profile(spec.profile.name());
                prev.last_error.clone()
            },
            prev.counters.clone(),
            prev.moved.clone(),
        ),
        None => {
            let last_error = customizer.last_error();
            let counters = Arc::new(
                PoolCounters::new(&spec.name, p.max_lifetime, last_error.clone())
                    .with_origin(spec.profile.name(), &db.path),
            );
            (last_error, counters, Arc::new(AtomicBool::new(false)))
        }
    };
    let shared = Arc::new(Shared {
        name: spec.name.clone(),
        path: db.path.clone(),
        writes,
        replica,
        moved,
        counters,
        last_error,
        max_size: p.max_size,
        timeout: p.connection_timeout,
        stats: p.stats,
        busy_timeout: spec
            .profile
            .pragmas()
            .busy_timeout
            .map_or(Duration::ZERO, |t| t.duration()),
        opened: OnceLock::new(),
        closing: AtomicBool::new(false),
        retired: AtomicBool::new(false),
        transaction_mode: spec
            .profile
            .pragmas()
            .transaction_behavior
            .unwrap_or(TransactionMode::Deferred),
    });
    Ok(Prepared {
        opener: Opener {
            driver,
            shared: shared.clone(),
            customizer,
        },
        shared,
    })
}

impl<D: Driver> Opener<D> {
    /// Opens one pooled connection: the driver's open, the profile applied and read back, the
    /// guard installed; the time it took is recorded. A failure is counted (a connection error,
    /// or a customizer failure when the profile did not take effect) and kept as the last error.
    pub fn connect(&self) -> Result<D::Connection> {
        let s = &self.shared;
        if s.closing.load(Ordering::Relaxed) {
            // r2d2 replaces the connections a closing pool discards; none opens.
            return Err(Error::Build {
                pool: s.name.clone(),
                cause: Some(LastError::connection("the pool is closing".to_owned())),
            });
        }
        let start = Instant::now();
        let opened = if let Some(replica) = &s.replica {
            self.driver.open_replica(&s.name, &replica.database)
        } else {
            self.driver.open(&s.name, &s.path, s.writes)
        };
        let mut conn = match opened {
            Ok(conn) => conn,
            Err(e) => {
                s.counters.count_connection_error(&e.to_string());
                return Err(e);
            }
        };
        // The customizer logs its own error and keeps it as the last error.
        if let Err(e) = self.customizer.customize(&mut conn) {
            s.counters.count_customizer_failure();
            return Err(e);
        }
        // The state a borrower may change through the API, taken once per pool (from its first
        // connection, right after the profile was applied): one SQL read, not one per connect.
        let busy_ms = match s.opened.get() {
            Some(_) => None,
            None => match conn.get_pragma("busy_timeout") {
                Ok(crate::connection::Raw::Int(ms)) => Some(i32::try_from(ms).unwrap_or(i32::MAX)),
                Ok(other) => {
                    return Err(self.fail(format!("PRAGMA busy_timeout read back {other:?}")))
                }
                Err(e) => return Err(self.fail(format!("reading PRAGMA busy_timeout failed: {e}"))),
            },
        };
        let guarded = match D::db(&mut conn) {
            Some(db) => crate::guard::install(db, self.customizer.guard())
                .map(|()| {
                    if let Some(ms) = busy_ms {
                        s.opened.get_or_init(|| (crate::sys::api_state(db), ms));
                    }
                })
                .map_err(|code| {
                    format!("installing the pragma guard failed (SQLite error code {code})")
                }),
            None => Err("the driver did not give the connection's handle".to_owned()),
        };
        if let Err(message) = guarded {
            return Err(self.fail(message));
        }
        s.counters.record_create(start.elapsed());
        Ok(conn)
    }

    /// A connection that opened but could not be set up: counted and returned as the error.
    fn fail(&self, message: String) -> Error {
        let s = &self.shared;
        let e = Error::Build {
            pool: s.name.clone(),
            cause: Some(LastError::connection(message)),
        };
        s.counters.count_connection_error(&e.to_string());
        e
    }

    /// The pool's shared state.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}
