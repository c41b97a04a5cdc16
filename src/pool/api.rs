//! rusqlite's calls that change a connection without SQL (so the pragma guard never sees them),
//! in front of rusqlite's on [`Conn`]: each does what rusqlite's does and marks the connection,
//! so that its check-in puts back what the borrower changed (busy timeout, transaction
//! behaviour, hooks, progress handler) or closes it (`set_db_config`, `set_limit`, functions).
//! An unmarked connection's check-in costs nothing more. Code that reaches the
//! `rusqlite::Connection` itself (`(*conn).busy_timeout(…)`) goes around these; other pool kinds
//! (diesel, deadpool), whose connections litepool does not wrap, compare and reset on every
//! check-in instead.

use std::os::raw::c_int;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::hooks::{Action, Wal};
use rusqlite::limits::Limit;
use rusqlite::TransactionBehavior;

use super::Conn;

impl Conn {
    /// rusqlite's `busy_timeout`, for this checkout: the profile's is back at check-in.
    pub fn busy_timeout(&self, timeout: Duration) -> rusqlite::Result<()> {
        self.mark();
        self.inner.busy_timeout(timeout)
    }

    /// rusqlite's `busy_handler`, for this checkout: removed at check-in (the profile's busy
    /// timeout is back).
    pub fn busy_handler(&self, callback: Option<fn(i32) -> bool>) -> rusqlite::Result<()> {
        self.mark();
        self.inner.busy_handler(callback)
    }

    /// rusqlite's `set_transaction_behavior`, for this checkout: the profile's
    /// `transaction_behavior` is back at check-in.
    pub fn set_transaction_behavior(&mut self, behavior: TransactionBehavior) {
        self.mark();
        self.inner.set_transaction_behavior(behavior)
    }

    /// rusqlite's `commit_hook`, for this checkout: removed at check-in.
    pub fn commit_hook<F>(&self, hook: Option<F>) -> rusqlite::Result<()>
    where
        F: FnMut() -> bool + Send + 'static,
    {
        self.mark();
        self.inner.commit_hook(hook)
    }

    /// rusqlite's `rollback_hook`, for this checkout: removed at check-in.
    pub fn rollback_hook<F>(&self, hook: Option<F>) -> rusqlite::Result<()>
    where
        F: FnMut() + Send + 'static,
    {
        self.mark();
        self.inner.rollback_hook(hook)
    }

    /// rusqlite's `update_hook`, for this checkout: removed at check-in.
    pub fn update_hook<F>(&self, hook: Option<F>) -> rusqlite::Result<()>
    where
        F: FnMut(Action, &str, &str, i64) + Send + 'static,
    {
        self.mark();
        self.inner.update_hook(hook)
    }

    /// rusqlite's `wal_hook`, for this checkout: removed at check-in.
    pub fn wal_hook(&self, hook: Option<fn(&Wal, c_int) -> rusqlite::Result<()>>) {
        self.mark();
        self.inner.wal_hook(hook)
    }

    /// rusqlite's `progress_handler`, for this checkout: removed at check-in.
    pub fn progress_handler<F>(&self, num_ops: c_int, handler: Option<F>) -> rusqlite::Result<()>
    where
        F: FnMut() -> bool + Send + 'static,
    {
        self.mark();
        self.inner.progress_handler(num_ops, handler)
    }

    /// rusqlite's `set_db_config`; a connection whose flags then differ from when it opened is
    /// closed at check-in instead of going back.
    pub fn set_db_config(&self, config: DbConfig, new_val: bool) -> rusqlite::Result<bool> {
        self.mark();
        self.inner.set_db_config(config, new_val)
    }

    /// rusqlite's `set_limit`; a connection whose limits then differ from when it opened is
    /// closed at check-in instead of going back.
    pub fn set_limit(&self, limit: Limit, new_val: i32) -> rusqlite::Result<i32> {
        self.mark();
        self.inner.set_limit(limit, new_val)
    }

    /// Marks the connection for the full reset at check-in: for connections handed to code
    /// litepool does not see through `Conn` (group commit's closures get the writer through
    /// `WriteConn`).
    pub(crate) fn reset_at_checkin(&self) {
        self.mark();
    }

    fn mark(&self) {
        self.used.set(true);
        self.reset.set(true);
    }
}
