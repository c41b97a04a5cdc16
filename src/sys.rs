//! The one FFI call litepool makes: `sqlite3_db_status`, which rusqlite does not wrap.
//!
//! See <https://sqlite.org/c3ref/db_status.html>.
#![allow(unsafe_code)]

use std::os::raw::c_int;

use rusqlite::{ffi, Connection};

/// Page-cache counters of one connection since the last call (hits, misses, writes, spills), and
/// the bytes its cache holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheSample {
    /// Pages found in the cache (`SQLITE_DBSTATUS_CACHE_HIT`).
    pub hit: u64,
    /// Pages read from the file (`SQLITE_DBSTATUS_CACHE_MISS`).
    pub miss: u64,
    /// Pages written to the file (`SQLITE_DBSTATUS_CACHE_WRITE`).
    pub write: u64,
    /// Dirty pages written mid-transaction because the cache was full (`SQLITE_DBSTATUS_CACHE_SPILL`).
    pub spill: u64,
    /// Bytes the cache holds now (`SQLITE_DBSTATUS_CACHE_USED`); not reset.
    pub used: u64,
}

fn status(conn: &Connection, op: c_int, reset: bool) -> u64 {
    let (mut cur, mut high): (c_int, c_int) = (0, 0);
    // SAFETY: `conn.handle()` is the open `sqlite3*` owned by `conn`, which stays borrowed (and so
    // open) for the whole call; `sqlite3_db_status` only reads or resets counters of that handle
    // and writes two ints through pointers to the locals above, which outlive the call. `op` is
    // one of SQLite's SQLITE_DBSTATUS_* constants.
    let rc = unsafe {
        ffi::sqlite3_db_status(conn.handle(), op, &mut cur, &mut high, c_int::from(reset))
    };
    if rc == ffi::SQLITE_OK {
        u64::try_from(cur).unwrap_or(0)
    } else {
        0
    }
}

/// Reads the page-cache counters of `conn` and resets them, so that each sample is a delta;
/// `used` is left 0 (see [`cache_used`]): the bytes the cache holds only change when pages are
/// read into it or written, so a check-in that saw neither skips that call.
pub fn take_cache_counters(conn: &Connection) -> CacheSample {
    CacheSample {
        hit: status(conn, ffi::SQLITE_DBSTATUS_CACHE_HIT, true),
        miss: status(conn, ffi::SQLITE_DBSTATUS_CACHE_MISS, true),
        write: status(conn, ffi::SQLITE_DBSTATUS_CACHE_WRITE, true),
        spill: status(conn, ffi::SQLITE_DBSTATUS_CACHE_SPILL, true),
        used: 0,
    }
}

/// Bytes the page cache of `conn` holds now (`SQLITE_DBSTATUS_CACHE_USED`).
pub fn cache_used(conn: &Connection) -> u64 {
    status(conn, ffi::SQLITE_DBSTATUS_CACHE_USED, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_deltas() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
            .unwrap();
        take_cache_counters(&conn);
        for _ in 0..3 {
            conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                .unwrap();
        }
        let first = take_cache_counters(&conn);
        assert!(first.hit >= 3, "{first:?}");
        let used = cache_used(&conn);
        assert!(used > 0);
        let again = take_cache_counters(&conn);
        assert_eq!((again.hit, again.miss), (0, 0));
        assert_eq!(
            cache_used(&conn),
            used,
            "reading hits did not change the cache"
        );
    }
}
