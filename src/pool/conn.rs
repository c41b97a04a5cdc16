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
        if crate::checkin::reset_api_state::<crate::driver::Rusqlite>(
            &mut self.inner,
            db,
            &self.shared,
        ) {
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
    /// rusqlite's `Connection::create_scalar_function`, and the connection is closed at
    /// check-in instead of going back: a function (or an override of a built-in such as
    /// `lower`) would stay registered for the next borrower. Register functions that every
    /// borrower needs once per connection instead (an r2d2 customizer of your own on
    /// [`crate::NamedPool`], or in code run on each checkout).
    pub fn create_scalar_function<F, N, T>(
        &self,
        fn_name: N,
        n_arg: std::os::raw::c_int,
        flags: rusqlite::functions::FunctionFlags,
        x_func: F,
    ) -> rusqlite::Result<()>
    where
        N: rusqlite::Name,
        F: Fn(&rusqlite::functions::Context<'_>) -> rusqlite::Result<T> + Send + 'static,
        T: rusqlite::functions::SqlFnOutput,
    {
        crate::guard::mark_dirty(crate::sys::Db::of(&self.inner));
        self.inner
            .create_scalar_function(fn_name, n_arg, flags, x_func)
    }

    /// rusqlite's `Connection::create_aggregate_function`; the connection is then closed at
    /// check-in (see [`Conn::create_scalar_function`]).
    pub fn create_aggregate_function<A, D, N, T>(
        &self,
        fn_name: N,
        n_arg: std::os::raw::c_int,
        flags: rusqlite::functions::FunctionFlags,
        aggr: D,
    ) -> rusqlite::Result<()>
    where
        A: std::panic::RefUnwindSafe + std::panic::UnwindSafe,
        D: rusqlite::functions::Aggregate<A, T> + 'static,
        N: rusqlite::Name,
        T: rusqlite::functions::SqlFnOutput,
    {
        crate::guard::mark_dirty(crate::sys::Db::of(&self.inner));
        self.inner
            .create_aggregate_function(fn_name, n_arg, flags, aggr)
    }

    /// rusqlite's `Connection::remove_function`; the connection is then closed at check-in (a
    /// built-in it removed would be missing for the next borrower).
    pub fn remove_function<N: rusqlite::Name>(
        &self,
        fn_name: N,
        n_arg: std::os::raw::c_int,
    ) -> rusqlite::Result<()> {
        crate::guard::mark_dirty(crate::sys::Db::of(&self.inner));
        self.inner.remove_function(fn_name, n_arg)
    }

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
