//! [`Conn`]: a connection checked out of a litepool pool.

use std::cell::Cell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use r2d2::PooledConnection;
use rusqlite::Connection;

use crate::manager::Manager;
use crate::open::Shared;

/// A connection checked out of a litepool pool. Derefs to [`rusqlite::Connection`]; on drop it
/// goes through litepool's check-in (a transaction left open is rolled back; a connection that
/// created temporary objects is closed), samples SQLite's page-cache counters into the pool's
/// statistics and goes back to the pool.
///
/// It is `'static` and `Send`, like r2d2's `PooledConnection`: it borrows nothing, so it can be
/// moved into a spawned thread or held across an `.await`.
pub struct Conn {
    pub(crate) inner: PooledConnection<Manager>,
    /// The pool's shared state: its statistics and the state its connections are opened in.
    pub(crate) shared: Arc<Shared>,
    /// With `checkpoint = "background"` on a writing pool: checkpoints at check-in, and the
    /// connection's `total_changes` at checkout (a borrower that changed no row skips the check).
    pub(crate) wal: Option<(Arc<crate::checkpoint::WalWatch>, u64)>,
    /// Set on first use: a connection checked out and back unused has nothing to sample.
    pub(crate) used: Cell<bool>,
    /// Set by a call that changes the connection without SQL (`crate::pool::api`): its
    /// check-in puts back or compares what such calls change.
    pub(crate) reset: Cell<bool>,
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
        // A transaction left open (BEGIN without COMMIT, a panic mid-transaction) is rolled back
        // by the manager's check-in as r2d2 takes the connection back; the checkpoint below must
        // not run inside it, so roll it back first. `is_autocommit` reads a flag.
        if !self.inner.is_autocommit() {
            if let Err(e) = self.inner.execute_batch("ROLLBACK") {
                tracing::warn!(error = %e, "rolling back a transaction left open failed");
            } else {
                tracing::warn!("a transaction was left open on a connection: rolled back at check-in (nothing of it committed)");
            }
        }
        let db = crate::sys::Db::of(&self.inner);
        if self.reset.get()
            && crate::checkin::reset_api_state::<crate::driver::Rusqlite>(
                &mut self.inner,
                db,
                &self.shared,
            )
        {
            // Closed by the check-in that follows, like a connection with temporary objects.
            crate::guard::mark_dirty(crate::sys::Db::of(&self.inner));
        }
        if self.shared.stats {
            self.shared.counters.sample_cache(&mut self.inner);
        }
        if let Some((wal, changes)) = &self.wal {
            if self.inner.total_changes() != *changes {
                wal.after_write(&self.inner);
            }
        }
    }
}

impl Conn {
    crate::guard::function_methods!(inner);

    /// Refused: the authorizer of a pooled connection is litepool's pragma guard, and
    /// replacing it (rusqlite's `Connection::authorizer`) would leave every later borrower of
    /// this connection unguarded. Hooks (`commit_hook`, `update_hook`, …) are allowed: they are
    /// removed when the connection is checked in.
    pub fn authorizer<F>(&self, _hook: Option<F>) -> rusqlite::Result<()> {
        Err(crate::guard::kept(
            "the authorizer of a pooled connection is litepool's pragma guard; replacing it \
             would leave this and every later borrower unguarded",
        ))
    }

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
