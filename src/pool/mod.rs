//! [`NamedPool`]: one concrete r2d2 pool of rusqlite connections, opened through litepool's one
//! open path ([`crate::open`]), and [`Conn`] (`conn.rs`), a connection checked out of it.

mod api;
mod conn;
mod waiting;

use std::cell::Cell;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use r2d2::Pool;

pub use self::conn::Conn;
use self::waiting::Waiting;
pub(crate) use self::waiting::COUNT_WAITING;
use crate::driver::Rusqlite;
use crate::error::{Error, Result};
use crate::manager::Manager;
use crate::open::Shared;
use crate::settings::{DatabaseSettings, PoolSpec, Role};
use crate::stats::{PoolStats, StatsHandler};

/// One concrete pool: the r2d2 pool, its customizer's last error and its counters. Cheap to
/// clone (one reference count), `Send + Sync + 'static`.
#[derive(Clone)]
pub struct NamedPool {
    pub(crate) inner: Arc<PoolInner>,
}

pub(crate) struct PoolInner {
    /// The r2d2 pool and its shared state, replaced as a whole by `Pools::reload`: every clone
    /// of this `NamedPool` (handles, group commit, the optimizer) sees the new pool at its next
    /// checkout. `ArcSwap` makes the checkout's load a read of thread-local state, not a shared
    /// lock or reference count.
    live: ArcSwap<Live>,
    /// A split database's one writer: a checkout from inside one of its write closures would
    /// wait for itself.
    exclusive: bool,
    /// The pool's name, the same in every generation.
    name: String,
    /// Checkouts waiting now, counted while an admin socket is served.
    waiting: Waiting,
    /// Set by [`crate::Pools`] on writing pools of a `checkpoint = "background"` database.
    pub(crate) wal: OnceLock<Arc<crate::checkpoint::WalWatch>>,
}

/// One generation of a pool: the r2d2 pool and the state its connections share.
pub(crate) struct Live {
    pub(crate) shared: Arc<Shared>,
    pub(crate) pool: Pool<Manager>,
}

impl fmt::Debug for NamedPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedPool")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

/// An r2d2 builder with a pool's settings and litepool's statistics handlers: the one place the
/// r2d2 pool kinds (litepool's and diesel's) are built.
pub(crate) fn build<D>(
    spec: &PoolSpec,
    shared: &Arc<Shared>,
    manager: Manager<D>,
) -> Result<Pool<Manager<D>>>
where
    D: crate::driver::Driver + fmt::Debug,
{
    let p = &spec.pool;
    let mut builder = Pool::builder()
        .max_size(p.max_size)
        .min_idle(p.min_idle)
        .connection_timeout(p.connection_timeout)
        .idle_timeout(p.idle_timeout)
        .max_lifetime(p.max_lifetime)
        .test_on_check_out(p.test_on_check_out)
        .error_handler(Box::new(StatsHandler(shared.counters.clone())));
    if p.stats {
        builder = builder.event_handler(Box::new(StatsHandler(shared.counters.clone())));
    }
    let pool = builder.build(manager).map_err(|_| Error::Build {
        pool: spec.name.clone(),
        cause: shared.last_cause(),
    })?;
    tracing::info!(pool = %spec.name, max_size = p.max_size, "pool ready");
    Ok(pool)
}

impl Live {
    /// Prepares and builds one generation of the pool `spec` of `db`; `previous` is the shared
    /// state of the generation it replaces (its statistics run on). On a reload the writer of
    /// a split database is built with no idle connection: its one connection opens at the
    /// first checkout after the old one was taken out (`Pools::reload`).
    pub(crate) fn open(
        db: &DatabaseSettings,
        spec: &PoolSpec,
        previous: Option<&Shared>,
    ) -> Result<Live> {
        let prepared = crate::open::prepare_with(Rusqlite, db, spec, previous)?;
        // Every generation keeps its idle connections (r2d2's min_idle): when a reload retires
        // it, a connection it re-establishes is what wakes a checkout waiting in it (r2d2 has no
        // other way), which then moves on to the pool in force. A writer generation built with
        // none left such a checkout (a group commit leader) waiting its whole timeout.
        let spec = std::borrow::Cow::Borrowed(spec);
        // Conn samples the page cache itself (only after a checkout that used the connection).
        let pool = build(
            &spec,
            &prepared.shared,
            Manager::new(prepared.opener, false),
        )?;
        Ok(Live {
            shared: prepared.shared,
            pool,
        })
    }
}

impl NamedPool {
    /// Bootstraps one pool of `db` (journal switch, file-level pragmas on a new file,
    /// verification, on a dedicated connection) and builds it with statistics. `spec` is one of
    /// `db.pools()`; a split database's writer must be opened before its readers.
    /// [`crate::Pools::new`] runs [`crate::pools::preflight`] first; call it yourself when using this
    /// alone.
    ///
    /// Bad pool settings built in code (`max_size = 0`, a zero timeout, `min_idle > max_size`)
    /// are an [`Error::PoolSetting`], never a panic.
    pub fn open(db: &DatabaseSettings, spec: &PoolSpec) -> Result<NamedPool> {
        let live = Live::open(db, spec, None)?;
        Ok(NamedPool {
            inner: Arc::new(PoolInner {
                live: ArcSwap::from_pointee(live),
                exclusive: spec.role == Role::Writer,
                name: spec.name.clone(),
                waiting: Waiting::default(),
                wal: OnceLock::new(),
            }),
        })
    }

    /// The pool in force now.
    #[inline]
    pub(crate) fn live(&self) -> arc_swap::Guard<Arc<Live>> {
        self.inner.live.load()
    }

    /// Puts `next` in force and retires the pool it replaces: its idle connections close now,
    /// those checked out close when they come back, and checkouts waiting in it move on to
    /// `next` (see [`NamedPool::get_timeout`]).
    pub(crate) fn replace(&self, next: Live) {
        let old = self.inner.live.swap(Arc::new(next));
        old.shared
            .retired
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let idle: Vec<_> = std::iter::from_fn(|| old.pool.try_get()).collect();
        drop(idle);
    }

    /// Drops this handle; if it is the pool's last, first closes every idle connection on this
    /// thread (taken out and checked back in, which discards it and opens no other). Dropping
    /// the r2d2 pool alone may leave the closing to one of r2d2's threads, after this returns:
    /// a split database's readers must be closed before its writer, which alone can remove the
    /// `-wal` and `-shm` files as it closes.
    pub(crate) fn close(self) {
        if Arc::strong_count(&self.inner) == 1 {
            let live = self.live();
            live.shared
                .closing
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let idle: Vec<_> = std::iter::from_fn(|| live.pool.try_get()).collect();
            drop(idle);
        }
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
        self.checkout(None)
    }

    /// [`NamedPool::get`], waiting up to `timeout` instead.
    #[inline]
    pub fn get_timeout(&self, timeout: Duration) -> Result<Conn> {
        self.checkout(Some(timeout))
    }

    /// A checkout waiting up to `timeout`, or the pool's `connection_timeout`: the pool in
    /// force is loaded once per attempt.
    #[inline]
    fn checkout(&self, timeout: Option<Duration>) -> Result<Conn> {
        let p = &self.inner;
        loop {
            let live = p.live.load();
            let s = &live.shared;
            let timeout = timeout.unwrap_or(s.timeout);
            s.check_moved()?;
            if p.exclusive && crate::reentry::inside(self.id()) {
                return Err(Error::Reentrant {
                    database: s.name.clone(),
                    call: "writer()",
                });
            }
            let wal = p.wal.get();
            if let Some(wal) = wal {
                wal.pass(std::time::Instant::now() + timeout);
            }
            #[cfg(feature = "metrics")]
            s.counters.pending(1);
            let waiting = p.waiting.enter();
            let got = live.pool.get_timeout(timeout);
            drop(waiting);
            #[cfg(feature = "metrics")]
            s.counters.pending(-1);
            // A reload replaced this pool while the checkout waited in it: the connection (old
            // profile) closes as it goes back, and the checkout moves on to the new pool.
            if s.retired.load(std::sync::atomic::Ordering::Acquire) {
                continue;
            }
            return match got {
                Ok(inner) => Ok(Conn {
                    wal: wal.map(|w| (w.clone(), inner.total_changes())),
                    inner,
                    shared: s.clone(),
                    used: Cell::new(false),
                    reset: Cell::new(false),
                }),
                Err(_) => Err(s.timeout_error(timeout, live.pool.state().connections)),
            };
        }
    }

    /// The pool's `connection_timeout`.
    pub(crate) fn timeout(&self) -> Duration {
        self.live().shared.timeout
    }

    /// The `busy_timeout` every connection of this pool has.
    pub(crate) fn busy_timeout(&self) -> Duration {
        self.live().shared.busy_timeout
    }

    /// Identifies this pool (all its clones) among the others of the process.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// The shared state the watcher and statistics read (of the pool in force now).
    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.live().shared.clone()
    }

    /// The r2d2 pool. Connections taken from it directly go through the same check-in (rollback
    /// of a transaction left open, the guard) and are counted by the event handler, but their
    /// page-cache counters are sampled only when a [`Conn`] checks them in, and they run no
    /// checkpoint at check-in (`checkpoint = "background"`: the background thread steps in at
    /// twice `checkpoint_wal_size`).
    ///
    /// After a [`crate::Pools::reload`] that changed this pool, the pool returned earlier is
    /// retired: take it again.
    pub fn pool(&self) -> Pool<Manager> {
        self.live().pool.clone()
    }

    /// A snapshot of the statistics (they run on across a reload).
    pub fn stats(&self) -> PoolStats {
        let live = self.live();
        let mut stats = live.shared.counters.snapshot(&live.pool);
        stats.replica = live.shared.replica.as_ref().map(|r| r.counters.snapshot());
        stats
    }

    /// Checkouts waiting for a connection of this pool now, and the longest of their waits so
    /// far; counted only while an admin socket is served (otherwise `(0, None)`).
    pub fn waiting(&self) -> (u64, Option<Duration>) {
        self.inner.waiting.now()
    }

    /// Zeroes the counters and histograms.
    pub fn reset_stats(&self) {
        let live = self.live();
        live.shared.counters.reset();
        if let Some(r) = &live.shared.replica {
            r.counters.reset();
        }
    }
}
