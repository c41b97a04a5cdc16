//! Read replicas through Litestream's VFS (feature `litestream-vfs`): loading the extension once
//! per process, opening a replica connection, and reading where the replica is.
//!
//! Litestream's VFS takes its replica from the variable `LITESTREAM_REPLICA_URL` of the
//! environment the process **started** with: the extension is a Go library, and Go's runtime
//! copies the environment from the process's start-up block, so a variable set later by the
//! process (`std::env::set_var`) is not seen (checked on this machine with 0.5.17). So litepool
//! does not set it: it reads the start-up environment (`/proc/self/environ`) and refuses to load
//! the extension unless the variable there equals the configured `replica_url`. One replica per
//! process follows (settings refuse two different `replica_url`s).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::{Error, Result};
use crate::staleness::{Sample, HEARTBEAT_TABLE};
use crate::sys::vfs::LoadedVfs;
use crate::sys::Db;

/// The name Litestream registers its VFS under.
pub(crate) const VFS: &str = "litestream";

/// The variable Litestream's VFS reads its replica URL from.
pub const REPLICA_URL_VAR: &str = "LITESTREAM_REPLICA_URL";

/// The extension as loaded in this process: from which file, for which replica.
#[derive(Debug, Clone)]
struct Loaded {
    vfs: PathBuf,
    url: String,
    loaded: LoadedVfs,
}

static LOADED: Mutex<Option<Loaded>> = Mutex::new(None);

/// What the environment the process started with says of `var` (`None`: not set). On Linux
/// from `/proc/self/environ`, which setting a variable later does not change; elsewhere from
/// the current environment.
pub fn startup_var(var: &str) -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        let block = std::fs::read("/proc/self/environ").ok()?;
        let prefix = format!("{var}=");
        block
            .split(|b| *b == 0)
            .find_map(|entry| entry.strip_prefix(prefix.as_bytes()))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::env::var(var).ok()
    }
}

fn setup(database: &str, message: String) -> Error {
    Error::ReplicaSetup {
        database: database.to_owned(),
        message,
    }
}

/// Loads Litestream's VFS for read replica `database` of `url`, once per process; a later call
/// must name the same extension and replica.
pub(crate) fn load(database: &str, url: &str, vfs: Option<&Path>) -> Result<LoadedVfs> {
    let vfs = vfs.ok_or_else(|| {
        setup(
            database,
            "litestream.vfs is not set: give the path of Litestream's VFS extension (litestream-vfs.so, from Litestream's releases or the Python package litestream-vfs) under [litestream] vfs, or in LITEPOOL__LITESTREAM__VFS".into(),
        )
    })?;
    // One file reached by two names is one extension.
    let vfs = &match std::fs::canonicalize(vfs) {
        Ok(real) if real.is_file() => real,
        Ok(real) if real.is_dir() => {
            return Err(setup(
                database,
                format!(
                    "litestream.vfs {} is a directory: expected the file of Litestream's VFS extension (litestream-vfs.so)",
                    vfs.display()
                ),
            ))
        }
        Ok(_) => {
            return Err(setup(
                database,
                format!(
                    "litestream.vfs {} is not a file: expected Litestream's VFS extension (litestream-vfs.so)",
                    vfs.display()
                ),
            ))
        }
        Err(e) => {
            return Err(setup(
                database,
                format!(
                    "litestream.vfs {}: {e} (expected Litestream's VFS extension, litestream-vfs.so)",
                    vfs.display()
                ),
            ))
        }
    };
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(l) = &*loaded {
        if l.url != url || l.vfs != *vfs {
            return Err(setup(
                database,
                format!(
                    "this process already loaded Litestream's VFS {} for replica {:?}; it reads one replica per process, so {url:?} (through {}) needs a process of its own",
                    l.vfs.display(),
                    l.url,
                    vfs.display()
                ),
            ));
        }
        return Ok(l.loaded);
    }
    match startup_var(REPLICA_URL_VAR) {
        Some(v) if v == url => {}
        Some(v) => {
            return Err(setup(
                database,
                format!("{REPLICA_URL_VAR} is {v:?} in the environment this process started with, but replica_url is {url:?}: Litestream's VFS would read the other replica; make them the same"),
            ))
        }
        None => {
            return Err(setup(
                database,
                format!("{REPLICA_URL_VAR} is not in the environment this process started with: Litestream's VFS reads the replica URL only from there (a variable the process sets itself is not seen); start the process with {REPLICA_URL_VAR}={url}"),
            ))
        }
    }
    let l = crate::sys::vfs::load_litestream_vfs(vfs).map_err(|m| setup(database, m))?;
    tracing::info!(database, vfs = %vfs.display(), url, "loaded Litestream's VFS");
    *loaded = Some(Loaded {
        vfs: vfs.to_owned(),
        url: url.to_owned(),
        loaded: l,
    });
    Ok(l)
}

/// Opens a read-only connection of read replica `database` through the VFS (loaded by
/// [`load`]), registered with Litestream, with its functions checked.
pub(crate) fn open(pool: &str, database: &str) -> Result<Connection> {
    let loaded = LOADED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(|l| l.loaded)
        .ok_or_else(|| setup(database, "Litestream's VFS is not loaded".into()))?;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let sqlite = |source| Error::Sqlite {
        database: pool.to_owned(),
        source,
    };
    let conn = Connection::open_with_flags_and_vfs(format!("{database}.db"), flags, VFS)
        .map_err(sqlite)?;
    loaded.register(Db::of(&conn));
    position(&conn).map_err(|e| {
        setup(
            database,
            format!("the connection opened through Litestream's VFS but its functions do not answer ({e})"),
        )
    })?;
    Ok(conn)
}

/// Reads what Litestream's VFS tells of `conn`'s position (the primary's heartbeat is left
/// unread).
fn position(conn: &Connection) -> rusqlite::Result<Sample> {
    conn.query_row("SELECT litestream_txid(), litestream_lag()", [], |r| {
        let lag: i64 = r.get(1)?;
        Ok(Sample {
            txid: r.get(0)?,
            poll_age_seconds: u64::try_from(lag).ok(),
            heartbeat_unix_ms: None,
        })
    })
}

/// Reads `conn`'s position and the newest heartbeat of the primary it holds (none when the
/// primary writes none: no table).
pub(crate) fn sample(conn: &Connection) -> rusqlite::Result<Sample> {
    let mut s = position(conn)?;
    let table: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [HEARTBEAT_TABLE],
            |r| r.get(0),
        )
        .optional()?;
    if table.is_some() {
        s.heartbeat_unix_ms = conn
            .query_row(
                &format!("SELECT unix_ms FROM {HEARTBEAT_TABLE} WHERE id = 1"),
                [],
                |r| r.get(0),
            )
            .optional()?;
    }
    Ok(s)
}
