//! One transaction of the write path: runs closures (the first bare, the others in a savepoint),
//! checks after each that the transaction is still open, and decides every caller's answer.
//! Shared by group commit's batches and by a database without a split ([`write_alone`]).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{Phase, WriteConn};
use crate::error::{Error, Result};
use crate::pool::NamedPool;
use crate::reentry::{self, SAVEPOINT};

/// `f` alone in `BEGIN IMMEDIATE … COMMIT` on a connection of `pool` (a database without a
/// split), with the same guarantees as a batch: `Ok` only if its work committed. Refused at once
/// from inside a write closure of the same pool, before any checkout (a pool of one would wait
/// for the closure's own connection). Waits at most `wait` for a connection and the write lock
/// (the pool's `connection_timeout` for `write`, what is left of it for `write_async`).
pub(crate) fn write_alone<T, F>(database: &str, pool: &NamedPool, f: F, wait: Duration) -> Result<T>
where
    F: FnOnce(&mut WriteConn<'_>) -> rusqlite::Result<T>,
{
    let id = pool.id();
    if reentry::inside(id) {
        return Err(Error::Reentrant {
            database: database.to_owned(),
            call: "write",
        });
    }
    let start = Instant::now();
    let mut conn = pool
        .get_timeout(wait)
        .map_err(|e| checkout_timeout(database, pool, e))?;
    // The closure reaches the connection through `WriteConn`, not `Conn`: reset it all.
    conn.reset_at_checkin();
    let conn: &mut Connection = &mut conn;
    let rollbacks = Arc::new(AtomicU64::new(0));
    let counted = rollbacks.clone();
    conn.rollback_hook(Some(move || {
        counted.fetch_add(1, Relaxed);
    }))
    .and_then(|()| {
        let addr = crate::sys::Db::of(conn).addr();
        conn.commit_hook(Some(move || reentry::writing(addr)))
    })
    .map_err(|source| Error::Sqlite {
        database: database.to_owned(),
        source,
    })?;
    let mut value = None;
    let mut tx = Tx::new(database, conn, id, &rollbacks, pool.busy_timeout());
    tx.run(
        (),
        (start, start + wait),
        &|_| (),
        |c: &mut WriteConn<'_>| {
            value = Some(f(c)?);
            Ok(())
        },
    );
    tx.commit();
    let Tx { mut done, .. } = tx;
    let _ = conn.commit_hook(None::<fn() -> bool>);
    let _ = conn.rollback_hook(None::<fn()>);
    let _ = conn.busy_timeout(pool.busy_timeout());
    let result = done.pop().map_or_else(
        || {
            Err(Error::Commit {
                database: database.to_owned(),
                message: "the write got no outcome (a litepool bug)".into(),
                code: None,
            })
        },
        |(_, r)| r,
    );
    result.and_then(|()| {
        value.ok_or_else(|| Error::Commit {
            database: database.to_owned(),
            message: "the write committed but its value was lost (a litepool bug)".into(),
            code: None,
        })
    })
}

/// A checkout of a pool connection that timed out (every connection held, none could be
/// opened for lack of room) means the write never started: [`Error::WriteTimeout`], retryable,
/// as on a split database. A pool that could not open a connection keeps its error.
fn checkout_timeout(database: &str, pool: &NamedPool, e: Error) -> Error {
    match e {
        Error::Timeout {
            max_size,
            timeout,
            cause: None,
            ..
        } => {
            let idle = pool.pool().state().idle_connections;
            let e = Error::WriteTimeout {
                database: database.to_owned(),
                waited: pool.timeout().max(timeout),
                cause: format!(
                    "all {max_size} connection(s) of the pool were in use ({idle} idle now): held by other writes or pools.get() callers"
                ),
            };
            tracing::warn!(database, error = %e, "write timed out before it started");
            e
        }
        e => e,
    }
}

/// One transaction of a batch: runs closures, keeps track of which committed work is pending,
/// and decides every caller's answer. `K` says whose answer it is.
pub(super) struct Tx<'a, K> {
    database: &'a str,
    conn: &'a mut Connection,
    id: usize,
    rollbacks: &'a AtomicU64,
    /// The connection's `busy_timeout` (the profile's).
    busy_timeout: Duration,
    /// A transaction is open.
    open: bool,
    /// Callers whose closure succeeded in the open transaction: they commit with it.
    pending: Vec<K>,
    /// Callers whose answer is known.
    pub(super) done: Vec<(K, Result<()>)>,
    /// Closures run.
    pub(super) ran: usize,
}

impl<'a, K> Tx<'a, K> {
    pub(super) fn new(
        database: &'a str,
        conn: &'a mut Connection,
        id: usize,
        rollbacks: &'a AtomicU64,
        busy_timeout: Duration,
    ) -> Self {
        Tx {
            database,
            conn,
            id,
            rollbacks,
            busy_timeout,
            open: false,
            pending: Vec::new(),
            done: Vec::new(),
            ran: 0,
        }
    }

    fn sqlite(&self, source: rusqlite::Error) -> Error {
        crate::guard::error(self.database, source)
    }

    /// `BEGIN IMMEDIATE`, waiting for another connection's write lock no later than
    /// `deadline` (the connection's `busy_timeout` is shortened for it, then restored).
    fn begin(&self, since: Instant, deadline: Instant) -> Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        let configured = self.busy_timeout;
        let shortened = left < configured;
        let begun = if shortened {
            self.conn
                .busy_timeout(left)
                .and_then(|()| self.exec("BEGIN IMMEDIATE"))
        } else {
            self.exec("BEGIN IMMEDIATE")
        };
        if shortened {
            if let Err(e) = self.conn.busy_timeout(configured) {
                tracing::error!(database = %self.database, error = %e, "restoring busy_timeout failed");
            }
        }
        match begun {
            Ok(()) => Ok(()),
            Err(e) if shortened && e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                Err(Error::WriteTimeout {
                    database: self.database.to_owned(),
                    waited: since.elapsed(),
                    cause: "another connection held the database's write lock (BEGIN IMMEDIATE got SQLITE_BUSY)".into(),
                })
            }
            Err(e) => Err(commit_error(self.database, "BEGIN IMMEDIATE failed", e)),
        }
    }

    fn exec(&self, sql: &str) -> rusqlite::Result<()> {
        // Cached: these few statements are prepared once per connection.
        self.conn.prepare_cached(sql)?.execute([]).map(drop)
    }

    /// Runs one closure: in the transaction's first place without a savepoint, later in
    /// litepool's savepoint (`crate::reentry::SAVEPOINT`).
    /// `since` is when the caller called, `deadline` when it stops waiting for its closure to
    /// start; `phase` is told what runs.
    pub(super) fn run(
        &mut self,
        key: K,
        (since, deadline): (Instant, Instant),
        phase: &dyn Fn(Phase),
        run: impl FnOnce(&mut WriteConn<'_>) -> rusqlite::Result<()>,
    ) {
        if !self.open {
            phase(Phase::Locking);
            if let Err(e) = self.begin(since, deadline) {
                self.done.push((key, Err(e)));
                return;
            }
            self.open = true;
        }
        phase(Phase::Running);
        let first = self.pending.is_empty();
        if !first {
            if let Err(e) = self.exec(&format!("SAVEPOINT {}", *SAVEPOINT)) {
                let e = self.sqlite(e);
                self.done.push((key, Err(e)));
                self.check_open("starting a savepoint failed and");
                return;
            }
        }
        self.ran += 1;
        let before = self.rollbacks.load(Relaxed);
        let result = {
            let _scope = reentry::Scope::enter(self.id);
            let _writing = reentry::Writing::enter(crate::sys::Db::of(self.conn).addr());
            catch_unwind(AssertUnwindSafe(|| run(&mut WriteConn::new(self.conn))))
        };
        let own: Result<()> = match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.sqlite(e)),
            Err(panic) => {
                let message = panic_message(&*panic);
                // The payload is leaked, not dropped: a payload whose Drop panics would
                // otherwise unwind through the leader and leave its batch unanswered.
                std::mem::forget(panic);
                Err(Error::Panicked {
                    database: self.database.to_owned(),
                    message,
                })
            }
        };
        if self.rollbacks.load(Relaxed) != before || self.conn.is_autocommit() {
            // The transaction was rolled back while this closure ran. Whatever the closure did
            // afterwards could not commit (the commit hook refused); a transaction it opened
            // since is rolled back here.
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            self.open = false;
            let cause = match &own {
                Err(e) => format!("another write of its batch ({e})"),
                Ok(()) => "another write of its batch".to_owned(),
            };
            self.lose_pending(&cause);
            let own = own.and_then(|()| {
                Err(Error::RolledBack {
                    database: self.database.to_owned(),
                    cause: "a statement of this write (or SQLite itself, after a disk-full or I/O error)".into(),
                })
            });
            self.done.push((key, own));
            return;
        }
        let own = match own {
            Ok(()) if first => Ok(()),
            Ok(()) => self
                .exec(&format!("RELEASE {}", *SAVEPOINT))
                .map_err(|e| self.sqlite(e)),
            Err(e) => Err(e),
        };
        match own {
            Ok(()) => self.pending.push(key),
            Err(e) => {
                self.undo(first);
                self.done.push((key, Err(e)));
            }
        }
    }

    /// Removes the work of the closure that just ran from the transaction.
    fn undo(&mut self, first: bool) {
        if first {
            // Nothing else is pending in this transaction: roll it all back.
            if !self.conn.is_autocommit() {
                if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                    tracing::error!(database = %self.database, error = %e, "ROLLBACK failed");
                }
            }
            self.open = false;
            return;
        }
        let undone = self
            .exec(&format!("ROLLBACK TO {}", *SAVEPOINT))
            .and_then(|()| self.exec(&format!("RELEASE {}", *SAVEPOINT)));
        if let Err(e) = undone {
            // The failed closure's work cannot be separated from the others': roll back all.
            let cause = format!("undoing a failed write of its batch failed ({e}) and");
            let _ = self.conn.execute_batch("ROLLBACK");
            self.open = false;
            self.lose_pending(&cause);
        }
    }

    /// After a failed statement of litepool's own: if the transaction ended, its pending work
    /// is lost.
    fn check_open(&mut self, what: &str) {
        if self.conn.is_autocommit() {
            self.open = false;
            self.lose_pending(what);
        }
    }

    fn lose_pending(&mut self, cause: &str) {
        for key in self.pending.drain(..) {
            self.done.push((
                key,
                Err(Error::RolledBack {
                    database: self.database.to_owned(),
                    cause: cause.to_owned(),
                }),
            ));
        }
    }

    /// Commits the open transaction; true when the COMMIT failed.
    pub(super) fn commit(&mut self) -> bool {
        if !self.open {
            return false;
        }
        self.open = false;
        match self.exec("COMMIT") {
            Ok(()) => {
                for key in self.pending.drain(..) {
                    self.done.push((key, Ok(())));
                }
                false
            }
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                tracing::warn!(database = %self.database, error = %e, writes = self.pending.len(), "COMMIT failed; nothing of the batch committed");
                for key in self.pending.drain(..) {
                    let e = commit_error(self.database, "COMMIT failed", clone_error(&e));
                    self.done.push((key, Err(e)));
                }
                true
            }
        }
    }
}

/// [`Error::Commit`] from SQLite's error, keeping its code.
fn commit_error(database: &str, what: &str, e: rusqlite::Error) -> Error {
    Error::Commit {
        database: database.to_owned(),
        message: format!("{what}: {e}"),
        code: e.sqlite_error().copied(),
    }
}

/// rusqlite's error is not `Clone`; a batch's COMMIT error goes to every caller of it.
fn clone_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}
