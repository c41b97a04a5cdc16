//! [`WriteConn`]: the connection a write closure gets.
//!
//! Inside [`crate::Handle::write`] the transaction belongs to litepool's batch, so `BEGIN` would
//! fail ("cannot start a transaction within a transaction") and a `COMMIT` would end the other
//! callers' work. Code written against rusqlite opens its own transaction all the same
//! (`let tx = conn.transaction()?; …; tx.commit()?`). `WriteConn` gives that code a
//! **savepoint** instead: the same calls compile unchanged and nest inside the batch, where
//! `commit()` releases the savepoint (the work commits with the batch) and `rollback()` or a drop
//! undoes only that work. Everything else is the writer's [`rusqlite::Connection`], through
//! `Deref`.

use std::ops::Deref;

use rusqlite::{Connection, Savepoint, TransactionBehavior};

/// The writer connection inside a write closure: a [`rusqlite::Connection`] (through `Deref`)
/// whose `transaction()` opens a savepoint nested in litepool's transaction.
///
/// ```no_run
/// # fn demo(pools: litepool::Pools) -> litepool::Result<()> {
/// let id = pools.write("jobs", |conn| {
///     // Code written for a plain connection: here a savepoint, committed with the batch.
///     let tx = conn.transaction()?;
///     tx.execute("INSERT INTO jobs (kind) VALUES ('mail')", [])?;
///     let id = tx.last_insert_rowid();
///     tx.commit()?;
///     Ok(id)
/// })?;
/// # let _ = id; Ok(()) }
/// ```
///
/// A function written for `&Connection` takes a `&mut WriteConn` as is (deref coercion). One
/// written for `&mut Connection` that calls `transaction()` on it would send `BEGIN`, which the
/// guard refuses inside a write; give it `&mut WriteConn` (or call `savepoint()`, which nests).
pub struct WriteConn<'a> {
    conn: &'a mut Connection,
}

impl<'a> WriteConn<'a> {
    pub(crate) fn new(conn: &'a mut Connection) -> Self {
        WriteConn { conn }
    }

    /// A savepoint nested in litepool's transaction, in place of a transaction of its own:
    /// `commit()` keeps its work for the batch's COMMIT, `rollback()` or a drop undoes it alone.
    pub fn transaction(&mut self) -> rusqlite::Result<Savepoint<'_>> {
        self.conn.savepoint()
    }

    /// [`WriteConn::transaction`]: litepool's transaction already holds the write lock
    /// (`BEGIN IMMEDIATE`), so the behaviour asked for changes nothing.
    pub fn transaction_with_behavior(
        &mut self,
        _behavior: TransactionBehavior,
    ) -> rusqlite::Result<Savepoint<'_>> {
        self.conn.savepoint()
    }

    /// A savepoint nested in litepool's transaction (rusqlite's `Connection::savepoint`).
    pub fn savepoint(&mut self) -> rusqlite::Result<Savepoint<'_>> {
        self.conn.savepoint()
    }

    /// A named savepoint nested in litepool's transaction. litepool's own savepoint name is
    /// refused by the guard.
    pub fn savepoint_with_name<T: Into<String>>(
        &mut self,
        name: T,
    ) -> rusqlite::Result<Savepoint<'_>> {
        self.conn.savepoint_with_name(name)
    }
}

impl WriteConn<'_> {
    crate::guard::function_methods!(conn);

    /// Refused: group commit's commit hook refuses every commit while a closure runs, which is
    /// what keeps each caller's answer true.
    pub fn commit_hook<F>(&self, _hook: Option<F>) -> rusqlite::Result<()> {
        Err(crate::guard::kept(
            "inside a write closure the commit hook is group commit's (it keeps every caller's \
             answer true); it cannot be replaced",
        ))
    }

    /// Refused: group commit's rollback hook tells it that the transaction ended.
    pub fn rollback_hook<F>(&self, _hook: Option<F>) -> rusqlite::Result<()> {
        Err(crate::guard::kept(
            "inside a write closure the rollback hook is group commit's (it tells which \
             callers' work was rolled back); it cannot be replaced",
        ))
    }

    /// Refused: the authorizer is litepool's pragma guard.
    pub fn authorizer<F>(&self, _hook: Option<F>) -> rusqlite::Result<()> {
        Err(crate::guard::kept(
            "the authorizer of a pooled connection is litepool's pragma guard; replacing it \
             would leave this and every later borrower unguarded",
        ))
    }
}

impl Deref for WriteConn<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl std::fmt::Debug for WriteConn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteConn")
            .field("path", &self.conn.path())
            .finish()
    }
}
