//! litepool's FFI calls, each one rusqlite (or diesel, for its connections) does not wrap:
//! `sqlite3_db_status` (page-cache counters), `sqlite3_db_config`/`sqlite3_limit` read back and
//! `sqlite3_busy_timeout` set on connections of any driver at check-in, `sqlite3_set_authorizer` with a plain C callback
//! (rusqlite's closure-based `authorizer` cannot be installed on a connection litepool does not
//! own, such as diesel's), `sqlite3_get_autocommit` and `sqlite3_db_readonly` on such a connection, and an automatic
//! extension that hands litepool the handle of the connection diesel is opening on this thread
//! (diesel keeps its handle private), and client data that SQLite keeps with a connection and
//! frees when it closes (the guard's knowledge of the connection's profile).
//!
//! See <https://sqlite.org/c3ref/db_status.html>, <https://sqlite.org/c3ref/set_authorizer.html>,
//! <https://sqlite.org/c3ref/get_autocommit.html>, <https://sqlite.org/c3ref/auto_extension.html>,
//! <https://sqlite.org/c3ref/get_clientdata.html>.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::sync::Arc;

use rusqlite::{ffi, Connection};

#[cfg(feature = "litestream-vfs")]
pub mod vfs;

/// The handle of an open connection, taken from a connection the caller holds borrowed and used
/// only during that borrow. Crate-private: every function of this module that takes one relies
/// on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Db(*mut ffi::sqlite3);

// SAFETY: a `Db` is only an address; it is dereferenced (by SQLite) only while the connection it
// came from is borrowed by the caller, which serialises the use (connections are opened with
// SQLITE_OPEN_NO_MUTEX or by drivers that do not share them between threads).
unsafe impl Send for Db {}
unsafe impl Sync for Db {}

impl Db {
    /// The handle of `conn`.
    pub fn of(conn: &Connection) -> Db {
        // SAFETY: reading the handle has no effect; it stays valid while `conn` lives.
        Db(unsafe { conn.handle() })
    }

    /// The handle as a number (a key in the guard's registry of connections to discard).
    pub fn addr(self) -> usize {
        self.0 as usize
    }

    /// A handle kept by a driver from [`capture_open`], for the connection it belongs to.
    pub fn from_addr(addr: usize) -> Db {
        Db(addr as *mut ffi::sqlite3)
    }
}

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

fn status(db: Db, op: c_int, reset: bool) -> u64 {
    let (mut cur, mut high): (c_int, c_int) = (0, 0);
    // SAFETY: `db` is the open `sqlite3*` of a connection the caller holds borrowed (and so open)
    // for the whole call; `sqlite3_db_status` only reads or resets counters of that handle and
    // writes two ints through pointers to the locals above, which outlive the call. `op` is one
    // of SQLite's SQLITE_DBSTATUS_* constants.
    let rc = unsafe { ffi::sqlite3_db_status(db.0, op, &mut cur, &mut high, c_int::from(reset)) };
    if rc == ffi::SQLITE_OK {
        u64::try_from(cur).unwrap_or(0)
    } else {
        0
    }
}

/// Reads the page-cache counters of `conn` and resets them, so that each sample is a delta;
/// `used` is left 0 (see [`cache_used`]): the bytes the cache holds only change when pages are
/// read into it or written, so a check-in that saw neither skips that call.
pub fn take_cache_counters(conn: Db) -> CacheSample {
    CacheSample {
        hit: status(conn, ffi::SQLITE_DBSTATUS_CACHE_HIT, true),
        miss: status(conn, ffi::SQLITE_DBSTATUS_CACHE_MISS, true),
        write: status(conn, ffi::SQLITE_DBSTATUS_CACHE_WRITE, true),
        spill: status(conn, ffi::SQLITE_DBSTATUS_CACHE_SPILL, true),
        used: 0,
    }
}

/// Bytes the page cache of `conn` holds now (`SQLITE_DBSTATUS_CACHE_USED`).
pub fn cache_used(conn: Db) -> u64 {
    status(conn, ffi::SQLITE_DBSTATUS_CACHE_USED, false)
}

/// True when the connection has no transaction open (`sqlite3_get_autocommit`).
pub fn is_autocommit(db: Db) -> bool {
    // SAFETY: `db` is the open handle of a connection the caller holds borrowed; the call only
    // reads a flag of it.
    unsafe { ffi::sqlite3_get_autocommit(db.0) != 0 }
}

/// Every boolean `sqlite3_db_config` option of the bundled SQLite: flags an application can
/// switch through rusqlite's API
/// (`Connection::set_db_config`) without a statement the guard would see, by name.
const FLAGS: [(c_int, &str); 21] = [
    (ffi::SQLITE_DBCONFIG_ENABLE_FKEY, "foreign keys"),
    (ffi::SQLITE_DBCONFIG_ENABLE_TRIGGER, "triggers"),
    (ffi::SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, "fts3_tokenizer"),
    (
        ffi::SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION,
        "extension loading",
    ),
    (
        ffi::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        "no checkpoint on close",
    ),
    (ffi::SQLITE_DBCONFIG_ENABLE_QPSG, "query planner stability"),
    (
        ffi::SQLITE_DBCONFIG_TRIGGER_EQP,
        "trigger EXPLAIN QUERY PLAN",
    ),
    (ffi::SQLITE_DBCONFIG_RESET_DATABASE, "reset database"),
    (ffi::SQLITE_DBCONFIG_DEFENSIVE, "defensive"),
    (ffi::SQLITE_DBCONFIG_WRITABLE_SCHEMA, "writable schema"),
    (
        ffi::SQLITE_DBCONFIG_LEGACY_ALTER_TABLE,
        "legacy ALTER TABLE",
    ),
    (ffi::SQLITE_DBCONFIG_DQS_DML, "double-quoted strings in DML"),
    (ffi::SQLITE_DBCONFIG_DQS_DDL, "double-quoted strings in DDL"),
    (ffi::SQLITE_DBCONFIG_ENABLE_VIEW, "views"),
    (
        ffi::SQLITE_DBCONFIG_LEGACY_FILE_FORMAT,
        "legacy file format",
    ),
    (ffi::SQLITE_DBCONFIG_TRUSTED_SCHEMA, "trusted schema"),
    (
        ffi::SQLITE_DBCONFIG_STMT_SCANSTATUS,
        "statement scan status",
    ),
    (ffi::SQLITE_DBCONFIG_REVERSE_SCANORDER, "reverse scan order"),
    (
        ffi::SQLITE_DBCONFIG_ENABLE_ATTACH_CREATE,
        "ATTACH creating files",
    ),
    (ffi::SQLITE_DBCONFIG_ENABLE_ATTACH_WRITE, "ATTACH writing"),
    (ffi::SQLITE_DBCONFIG_ENABLE_COMMENTS, "SQL comments"),
];

/// Run-time limits (`sqlite3_limit`, rusqlite's `Connection::set_limit`), by name.
const LIMITS: [(c_int, &str); 13] = [
    (ffi::SQLITE_LIMIT_LENGTH, "length"),
    (ffi::SQLITE_LIMIT_SQL_LENGTH, "SQL length"),
    (ffi::SQLITE_LIMIT_COLUMN, "columns"),
    (ffi::SQLITE_LIMIT_EXPR_DEPTH, "expression depth"),
    (ffi::SQLITE_LIMIT_COMPOUND_SELECT, "compound SELECT terms"),
    (ffi::SQLITE_LIMIT_VDBE_OP, "VDBE operations"),
    (ffi::SQLITE_LIMIT_FUNCTION_ARG, "function arguments"),
    (ffi::SQLITE_LIMIT_ATTACHED, "attached databases"),
    (ffi::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, "LIKE pattern length"),
    (ffi::SQLITE_LIMIT_VARIABLE_NUMBER, "host parameters"),
    (ffi::SQLITE_LIMIT_TRIGGER_DEPTH, "trigger depth"),
    (ffi::SQLITE_LIMIT_WORKER_THREADS, "worker threads"),
    (ffi::SQLITE_LIMIT_PARSER_DEPTH, "parser depth"),
];

/// A connection's state that an application can change through SQLite's C API (rusqlite's
/// `set_db_config`, `set_limit`) rather than SQL, which the guard never sees: compared at
/// check-in with the state the connection was opened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiState {
    flags: u32,
    limits: [c_int; LIMITS.len()],
}

impl ApiState {
    /// What differs from `opened`, in words (empty when nothing does).
    pub fn changes_since(&self, opened: &ApiState) -> Vec<String> {
        let mut out = Vec::new();
        for (i, (_, name)) in FLAGS.iter().enumerate() {
            let (was, is) = (opened.flags >> i & 1, self.flags >> i & 1);
            if was != is {
                out.push(format!("db_config {name} {was} -> {is}"));
            }
        }
        for (i, (_, name)) in LIMITS.iter().enumerate() {
            if opened.limits[i] != self.limits[i] {
                out.push(format!(
                    "limit {name} {} -> {}",
                    opened.limits[i], self.limits[i]
                ));
            }
        }
        out
    }
}

/// The connection's [`ApiState`] now: 34 calls that only read a field each.
pub fn api_state(db: Db) -> ApiState {
    let mut flags = 0u32;
    for (i, (op, _)) in FLAGS.iter().enumerate() {
        let mut on: c_int = 0;
        // SAFETY: `db` is an open handle the caller holds borrowed; for these boolean options
        // SQLite takes an int (-1: leave unchanged) and a pointer to an int it writes the current
        // value to (https://sqlite.org/c3ref/c_dbconfig_defensive.html).
        let rc = unsafe { ffi::sqlite3_db_config(db.0, *op, -1 as c_int, &mut on as *mut c_int) };
        if rc == ffi::SQLITE_OK && on != 0 {
            flags |= 1 << i;
        }
    }
    let mut limits = [0; LIMITS.len()];
    for (slot, (id, _)) in limits.iter_mut().zip(LIMITS.iter()) {
        // SAFETY: as above; a negative new value only reads the limit.
        *slot = unsafe { ffi::sqlite3_limit(db.0, *id, -1) };
    }
    ApiState { flags, limits }
}

/// Sets the connection's busy timeout (`sqlite3_busy_timeout`), which also removes a busy
/// handler an application installed: the way back to the profile's after a borrower changed it
/// through rusqlite's `busy_timeout` or `busy_handler`.
pub fn set_busy_timeout(db: Db, ms: c_int) {
    // SAFETY: `db` is an open handle the caller holds borrowed; the call only stores the value.
    unsafe { ffi::sqlite3_busy_timeout(db.0, ms) };
}

/// True when the connection opened its main database read-only (`sqlite3_db_readonly`).
pub fn is_read_only(db: Db) -> bool {
    // SAFETY: `db` is the open handle of a connection the caller holds borrowed; the name is a
    // static NUL-terminated string; the call only reads a flag of the connection.
    unsafe { ffi::sqlite3_db_readonly(db.0, c"main".as_ptr()) == 1 }
}

/// An authorizer's answer for one action (<https://sqlite.org/c3ref/c_deny.html>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Prepare it as written (`SQLITE_OK`).
    Allow,
    /// Fail the statement with "not authorized" (`SQLITE_DENY`).
    Deny,
    /// Prepare the statement without this action (`SQLITE_IGNORE`): for a pragma, the statement
    /// does nothing and succeeds.
    Ignore,
}

/// An authorizer's decision for one action being prepared on a connection: its handle, SQLite's
/// action code, its two arguments and the schema name.
pub type Decide = fn(Db, c_int, Option<&str>, Option<&str>, Option<&str>) -> Verdict;

/// The one authorizer of the process (litepool's guard) and the action codes it decides; set by
/// the first [`install_guard`]. Every other action (reading a column, a function call…) is
/// allowed without converting its arguments: most of a prepare's callbacks are those.
static DECIDE: std::sync::OnceLock<(Decide, &'static [c_int])> = std::sync::OnceLock::new();

/// Installs `decide` (litepool's pragma guard), asked about `actions` only, as the connection's
/// authorizer. A later `Connection::authorizer` call of the application replaces it.
pub fn install_guard(db: Db, decide: Decide, actions: &'static [c_int]) -> Result<(), c_int> {
    DECIDE.get_or_init(|| (decide, actions));
    // SAFETY: `db` is the open handle of a connection the caller holds borrowed. `authorize`
    // is a plain function that lives for the whole program; its user data is the handle itself,
    // which SQLite passes back only while the connection is open (it is never dereferenced by
    // litepool, only compared and passed to `sqlite3_get_autocommit` during a prepare on it).
    let rc = unsafe { ffi::sqlite3_set_authorizer(db.0, Some(authorize), db.0.cast::<c_void>()) };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rc)
    }
}

/// What litepool keeps with a connection: any shared value, downcast by its reader.
type Attached = Arc<dyn std::any::Any + Send + Sync>;

/// The name of litepool's client data on a connection.
const ATTACHED: &CStr = c"litepool";

/// Frees litepool's client data: SQLite calls it when the connection closes or the data is
/// replaced.
unsafe extern "C" fn drop_attached(p: *mut c_void) {
    // SAFETY: `p` is the `Box<Attached>` that `attach` leaked, handed back exactly once.
    drop(unsafe { Box::from_raw(p.cast::<Attached>()) });
}

/// Keeps `value` with the connection until it closes (or the next `attach` replaces it); SQLite
/// frees it then, so a handle address reused by a later connection never finds it.
pub fn attach(db: Db, value: Attached) -> Result<(), c_int> {
    let p = Box::into_raw(Box::new(value));
    // SAFETY: `db` is the open handle of a connection the caller holds borrowed; the name is a
    // static NUL-terminated string; `p` is a valid leaked box that SQLite hands to
    // `drop_attached` exactly once (on replacement, on close, or at once when it fails).
    let rc = unsafe {
        ffi::sqlite3_set_clientdata(db.0, ATTACHED.as_ptr(), p.cast(), Some(drop_attached))
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rc)
    }
}

/// The value [`attach`]ed to the connection, if it is a `T`.
pub fn attached<T: Send + Sync + 'static>(db: Db) -> Option<Arc<T>> {
    // SAFETY: `db` is the open handle of a connection the caller holds borrowed (the guard asks
    // during a prepare on it); the data, if any, is an `Attached` that stays alive until it is
    // replaced or the connection closes, neither of which can happen during this borrow; it is
    // cloned before the borrow ends.
    let value: Attached = unsafe {
        let p = ffi::sqlite3_get_clientdata(db.0, ATTACHED.as_ptr());
        if p.is_null() {
            return None;
        }
        (*p.cast::<Attached>()).clone()
    };
    value.downcast::<T>().ok()
}

/// SQLite's authorizer callback: converts the arguments and asks the installed [`Decide`].
/// A panic never crosses into C: it denies the statement.
unsafe extern "C" fn authorize(
    user: *mut c_void,
    action: c_int,
    arg1: *const c_char,
    arg2: *const c_char,
    schema: *const c_char,
    _trigger: *const c_char,
) -> c_int {
    let text = |p: *const c_char| {
        if p.is_null() {
            None
        } else {
            // SAFETY: SQLite passes NUL-terminated strings (or NULL, handled above) that stay
            // valid for the duration of the callback; nothing keeps them longer.
            Some(unsafe { CStr::from_ptr(p) }.to_string_lossy())
        }
    };
    let db = Db(user.cast::<ffi::sqlite3>());
    let Some((decide, actions)) = DECIDE.get() else {
        return ffi::SQLITE_DENY;
    };
    if !actions.contains(&action) {
        return ffi::SQLITE_OK;
    }
    let allowed = std::panic::catch_unwind(|| {
        decide(
            db,
            action,
            text(arg1).as_deref(),
            text(arg2).as_deref(),
            text(schema).as_deref(),
        )
    });
    match allowed.unwrap_or(Verdict::Deny) {
        Verdict::Allow => ffi::SQLITE_OK,
        Verdict::Deny => ffi::SQLITE_DENY,
        Verdict::Ignore => ffi::SQLITE_IGNORE,
    }
}

thread_local! {
    /// `Some` while [`capture_open`] runs on this thread: the handle of the first connection
    /// opened meanwhile (0 until then).
    static CAPTURE: Cell<Option<usize>> = const { Cell::new(None) };
}

#[cfg_attr(not(feature = "diesel"), allow(dead_code))]
/// The automatic extension: SQLite calls it for every connection opened in the process, on the
/// opening thread; it only records the handle when [`capture_open`] asked for it on that thread.
unsafe extern "C" fn on_open(
    db: *mut ffi::sqlite3,
    _err: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    CAPTURE.with(|c| {
        if c.get() == Some(0) {
            c.set(Some(db as usize));
        }
    });
    ffi::SQLITE_OK
}

#[cfg_attr(not(feature = "diesel"), allow(dead_code))]
/// Runs `open` (a driver opening one connection, e.g. diesel's `establish`) and returns what it
/// returned with the handle of the connection it opened, for drivers that keep the handle
/// private. The handle is only valid while that connection is open.
pub fn capture_open<T>(open: impl FnOnce() -> T) -> (T, Option<Db>) {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        // SAFETY: `on_open` has the signature SQLite expects, opens no connection, closes none
        // and does not touch the list of automatic extensions; it lives for the whole program.
        if let Err(e) = unsafe { rusqlite::auto_extension::register_auto_extension(on_open) } {
            tracing::error!(error = %e, "registering litepool's automatic extension failed");
        }
    });
    CAPTURE.with(|c| c.set(Some(0)));
    let out = open();
    let handle = CAPTURE.with(|c| c.replace(None));
    (out, handle.filter(|&h| h != 0).map(Db::from_addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_deltas() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
            .unwrap();
        let db = Db::of(&conn);
        take_cache_counters(db);
        for _ in 0..3 {
            conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                .unwrap();
        }
        let first = take_cache_counters(db);
        assert!(first.hit >= 3, "{first:?}");
        let used = cache_used(db);
        assert!(used > 0);
        let again = take_cache_counters(db);
        assert_eq!((again.hit, again.miss), (0, 0));
        assert_eq!(
            cache_used(db),
            used,
            "reading hits did not change the cache"
        );
    }
}
