//! [`Driver`]: what a pool kind adds to litepool's one open and check-in path: how to open a
//! connection, and where its SQLite handle is. Everything else (validation, file creation,
//! bootstrap, the profile, the guard, rollback at check-in, statistics) is done once, in
//! [`crate::open`] and [`crate::checkin`], for every kind.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::connection::PragmaConnection;
use crate::error::{Error, Result};
use crate::sys::Db;

/// A pool kind's connection driver. Implemented by litepool for rusqlite ([`Rusqlite`]), diesel
/// and deadpool; not meant to be implemented outside litepool.
pub trait Driver: Send + Sync + 'static {
    /// The connection a pool of this kind hands out.
    type Connection: PragmaConnection + Send + 'static;

    /// Opens a connection to an existing file: read-write, or read-only (`writes == false`).
    /// `pool` names the pool in errors.
    fn open(&self, pool: &str, path: &Path, writes: bool) -> Result<Self::Connection>;

    /// Opens a read-only connection of read replica `database` through Litestream's VFS.
    /// Default: refused; litepool's own pools ([`crate::Pools`]) open read replicas.
    fn open_replica(&self, pool: &str, database: &str) -> Result<Self::Connection> {
        let _ = pool;
        Err(Error::ReplicaSetup {
            database: database.to_owned(),
            message: "read replicas open in litepool's own pools (litepool::Pools) only".into(),
        })
    }

    /// The SQLite handle of `conn`, while it is borrowed; `None` when the driver lost track of
    /// it (the connection is then closed at check-in rather than trusted).
    fn db(conn: &mut Self::Connection) -> Option<Db>;

    /// Removes what a borrower installed on `conn` through the driver's API that would act for
    /// the next borrower (rusqlite's commit, rollback, update and WAL hooks and progress
    /// handler). Default: nothing.
    fn clear_hooks(_conn: &mut Self::Connection) {}

    /// True when a connection whose transaction litepool rolled back at check-in may be reused
    /// (false for drivers that track transactions themselves and would be out of step).
    const REUSE_AFTER_ROLLBACK: bool = true;
}

/// rusqlite's [`Connection`], as litepool's own pools and deadpool open it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rusqlite;

impl Driver for Rusqlite {
    type Connection = Connection;

    fn open(&self, pool: &str, path: &Path, writes: bool) -> Result<Connection> {
        // The file exists: no connection ever creates it. Readers cannot write at all.
        let flags = if writes {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Connection::open_with_flags(path, flags).map_err(|source| {
            let described = crate::customizer::describe_connect_error(&source);
            if described != source.to_string() {
                // Out of file descriptors: say so, not "unable to open database file".
                return Error::Io {
                    path: path.to_owned(),
                    source: std::io::Error::other(described),
                };
            }
            Error::Sqlite {
                database: pool.to_owned(),
                source,
            }
        })
    }

    #[cfg(feature = "litestream-vfs")]
    fn open_replica(&self, pool: &str, database: &str) -> Result<Connection> {
        crate::replica::open(pool, database)
    }

    #[inline]
    fn clear_hooks(conn: &mut Connection) {
        // Each is one store in the connection (and frees the closure installed): litepool's own
        // hooks (group commit's) are set and removed around each batch, never left in place.
        let _ = conn.commit_hook(None::<fn() -> bool>);
        let _ = conn.rollback_hook(None::<fn()>);
        let _ = conn.update_hook(None::<fn(rusqlite::hooks::Action, &str, &str, i64)>);
        let _ = conn.progress_handler(0, None::<fn() -> bool>);
        conn.wal_hook(None);
    }

    fn db(conn: &mut Connection) -> Option<Db> {
        Some(Db::of(conn))
    }
}
