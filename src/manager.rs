//! [`Manager`]: r2d2_sqlite's connection manager, timing how long opening a connection takes
//! (`create_time` in the statistics and, with the `metrics` feature, in
//! `db.client.connection.create_time`). Only `connect` is timed; checkouts pass straight through.

use std::sync::Arc;
use std::time::Instant;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use crate::stats::PoolCounters;

/// The connection manager of litepool's pools: [`SqliteConnectionManager`] plus a timer on
/// `connect`.
#[derive(Debug)]
pub struct Manager {
    inner: SqliteConnectionManager,
    counters: Arc<PoolCounters>,
}

impl Manager {
    pub(crate) fn new(inner: SqliteConnectionManager, counters: Arc<PoolCounters>) -> Self {
        Manager { inner, counters }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> Result<Connection, rusqlite::Error> {
        let start = Instant::now();
        let conn = self.inner.connect();
        self.counters.record_create(start.elapsed());
        conn
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        self.inner.is_valid(conn)
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        self.inner.has_broken(conn)
    }
}
