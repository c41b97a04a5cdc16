//! The one check-in path of every pool kind: what happens to a connection as it goes back.
//!
//! r2d2 calls `ManageConnection::has_broken` at every check-in (litepool's own pools and diesel's
//! go through [`crate::manager::Manager`]); deadpool recycles a connection as it is handed out
//! again, and litepool's deadpool connection rolls back as it is returned. All of them call
//! [`check_in`].

use crate::connection::PragmaConnection;
use crate::driver::Driver;
use crate::open::Shared;

/// What [`check_in`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckIn {
    /// Nothing left behind: the connection goes back.
    Clean,
    /// A transaction was left open and is now rolled back; the connection goes back.
    RolledBack,
    /// The connection must be closed: it created temporary objects, its rollback failed, or its
    /// state cannot be known.
    Discard,
}

impl CheckIn {
    /// True when the connection must not be handed out again.
    pub(crate) fn discard(self) -> bool {
        self == CheckIn::Discard
    }
}

/// Rolls back a transaction the borrower left open (`BEGIN` without `COMMIT`, a panic
/// mid-transaction), so that it never reaches the next borrower and its locks are released now;
/// tells the caller to close the connection when it created temporary objects (see
/// [`crate::guard`]) or cannot be put back clean. With `sample` (a pool kind without litepool's
/// `Conn`, which does both itself when it was used), restores what a borrower changed through
/// SQLite's API ([`reset_api_state`]) and adds the connection's page-cache counters to the
/// pool's statistics. Costs one flag read on a clean connection.
pub(crate) fn check_in<D: Driver>(
    conn: &mut D::Connection,
    shared: &Shared,
    sample: bool,
) -> CheckIn {
    let Some(db) = D::db(conn) else {
        tracing::warn!(pool = %shared.name, "a connection's handle is unknown (its diesel instrumentation was replaced): closing it at check-in");
        return CheckIn::Discard;
    };
    let mut verdict = CheckIn::Clean;
    if !crate::sys::is_autocommit(db) {
        verdict = match conn.execute_fixed("ROLLBACK") {
            Ok(()) => {
                tracing::warn!(pool = %shared.name, "a transaction was left open on a connection: rolled back at check-in (nothing of it committed)");
                if D::REUSE_AFTER_ROLLBACK {
                    CheckIn::RolledBack
                } else {
                    CheckIn::Discard
                }
            }
            Err(e) => {
                tracing::warn!(pool = %shared.name, error = %e, "rolling back a transaction left open failed: closing the connection");
                CheckIn::Discard
            }
        };
        if !crate::sys::is_autocommit(db) {
            verdict = CheckIn::Discard;
        }
    }
    // A litepool `Conn` did this as it dropped, only if it was used.
    if sample && reset_api_state::<D>(conn, db, shared) {
        verdict = CheckIn::Discard;
    }
    if crate::guard::take_dirty(db) {
        tracing::debug!(pool = %shared.name, "the connection created temporary objects: closed at check-in");
        verdict = CheckIn::Discard;
    }
    if sample && shared.stats {
        shared
            .counters
            .add_cache(crate::sys::take_cache_counters(db));
    }
    verdict
}

/// Puts back what a borrower may have changed through the driver's API rather than SQL (so the
/// guard never saw it): the busy timeout (`busy_timeout`, `busy_handler`), the transaction
/// behaviour (`set_transaction_behavior`), the hooks and progress handler ([`Driver::clear_hooks`]);
/// and tells whether it changed what cannot be put back that way (`set_db_config` flags,
/// `set_limit` limits), in which case the connection must be closed. About 40 calls that each
/// read or store one field (~0.2 µs), so it runs only for a connection that was used.
pub(crate) fn reset_api_state<D: Driver>(
    conn: &mut D::Connection,
    db: crate::sys::Db,
    shared: &Shared,
) -> bool {
    let Some((opened, busy_ms)) = shared.opened.get() else {
        return false;
    };
    crate::sys::set_busy_timeout(db, *busy_ms);
    conn.set_transaction_mode(shared.transaction_mode);
    D::clear_hooks(conn);
    let now = crate::sys::api_state(db);
    if now == *opened {
        return false;
    }
    tracing::warn!(pool = %shared.name, changed = %now.changes_since(opened).join(", "), "a borrower changed the connection through SQLite's API (set_db_config, set_limit): closed at check-in");
    true
}
