//! The pragma guard: what application code may do on a pooled connection, decided when SQLite
//! prepares each statement (an authorizer, <https://sqlite.org/c3ref/set_authorizer.html>).
//!
//! One guard for every pool kind (rusqlite, diesel, deadpool), installed when a connection is
//! opened (`crate::open`). Three outcomes:
//! - **refused**: a pragma assignment outside [`ASSIGNABLE_PRAGMAS`] (an allowlist, so that a
//!   pragma SQLite adds later is refused too), `ATTACH`/`DETACH`, and inside a write closure
//!   `BEGIN`/`COMMIT`/`ROLLBACK` and litepool's savepoint. SQLite reports "not authorized";
//!   litepool logs the statement and keeps it for the write path's error ([`take_refusal`]).
//! - **allowed, connection replaced**: creating a temporary table, index, view, trigger or
//!   virtual table. Temporary objects live as long as the connection and a temporary table or
//!   trigger would change what the next borrower's statements do (a `temp.orders` shadows
//!   `main.orders`), so the connection is closed at check-in instead of going back (`take_dirty`).
//! - **allowed**: everything else.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use rusqlite::ffi;

use crate::error::Error;
use crate::sys::Db;

/// Pragmas a borrower may run with a value or an argument (`PRAGMA name = v`, `PRAGMA name(v)`):
/// those that leave nothing on the connection for its next borrower. Queries that take a table
/// or schema name; actions (`wal_checkpoint`, `incremental_vacuum`, `optimize`,
/// `shrink_memory`); `defer_foreign_keys` inside a transaction (SQLite switches it off at every
/// COMMIT and ROLLBACK, and litepool rolls back a transaction left open at check-in; outside a
/// transaction it is refused, as it would stay on for the next borrower); and `user_version` /
/// `application_id`, which are data stored in the file, not connection settings. Every other
/// pragma with a value is refused. Reading any pragma stays allowed.
pub const ASSIGNABLE_PRAGMAS: [&str; 17] = [
    "application_id",
    "defer_foreign_keys",
    "foreign_key_check",
    "foreign_key_list",
    "incremental_vacuum",
    "index_info",
    "index_list",
    "index_xinfo",
    "integrity_check",
    "optimize",
    "quick_check",
    "shrink_memory",
    "table_info",
    "table_list",
    "table_xinfo",
    "user_version",
    "wal_checkpoint",
];

thread_local! {
    /// The last statement the guard refused on this thread, in words.
    static REFUSED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Connections that created a temporary object, by handle; `DIRTY_COUNT` lets a check-in skip
/// the lock when there are none (the common case).
static DIRTY: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static DIRTY_COUNT: AtomicUsize = AtomicUsize::new(0);

/// The statement the guard last refused on this thread (`PRAGMA foreign_keys = 0`,
/// `ATTACH 'x.db'`), taken: SQLite's own message for it is only "not authorized".
pub fn take_refusal() -> Option<String> {
    REFUSED.with(|r| r.borrow_mut().take())
}

/// True (once) when the connection created a temporary object since its last check-in: it must
/// be closed, not handed to the next borrower.
pub(crate) fn take_dirty(db: Db) -> bool {
    if DIRTY_COUNT.load(Ordering::Acquire) == 0 {
        return false;
    }
    let mut dirty = DIRTY.lock().unwrap_or_else(PoisonError::into_inner);
    match dirty.iter().position(|&d| d == db.addr()) {
        Some(i) => {
            dirty.swap_remove(i);
            DIRTY_COUNT.fetch_sub(1, Ordering::AcqRel);
            true
        }
        None => false,
    }
}

/// Marks a connection to be closed at its next check-in.
pub(crate) fn mark_dirty(db: Db) {
    let mut dirty = DIRTY.lock().unwrap_or_else(PoisonError::into_inner);
    if !dirty.contains(&db.addr()) {
        dirty.push(db.addr());
        DIRTY_COUNT.fetch_add(1, Ordering::AcqRel);
    }
}

fn refuse(statement: String, why: &str) -> bool {
    tracing::warn!(statement = %statement, "litepool refused a statement on a pooled connection: {why}");
    REFUSED.with(|r| *r.borrow_mut() = Some(format!("{statement} ({why})")));
    false
}

/// Installs the guard on a connection.
pub(crate) fn install(db: Db) -> Result<(), i32> {
    crate::sys::install_guard(db, authorize, &ACTIONS)
}

/// The actions [`authorize`] decides; every other one is allowed.
const ACTIONS: [i32; 10] = [
    ffi::SQLITE_PRAGMA,
    ffi::SQLITE_ATTACH,
    ffi::SQLITE_DETACH,
    ffi::SQLITE_TRANSACTION,
    ffi::SQLITE_SAVEPOINT,
    ffi::SQLITE_CREATE_TEMP_INDEX,
    ffi::SQLITE_CREATE_TEMP_TABLE,
    ffi::SQLITE_CREATE_TEMP_TRIGGER,
    ffi::SQLITE_CREATE_TEMP_VIEW,
    ffi::SQLITE_CREATE_VTABLE,
];

/// The decision for one action SQLite is preparing on connection `db`: true to allow.
fn authorize(
    db: Db,
    action: i32,
    arg1: Option<&str>,
    arg2: Option<&str>,
    schema: Option<&str>,
) -> bool {
    match action {
        ffi::SQLITE_PRAGMA => {
            let name = arg1.unwrap_or("");
            let Some(value) = arg2 else {
                return true; // reading a pragma
            };
            let assignable = ASSIGNABLE_PRAGMAS
                .iter()
                .any(|m| m.eq_ignore_ascii_case(name));
            if name.eq_ignore_ascii_case("defer_foreign_keys") && crate::sys::is_autocommit(db) {
                return refuse(
                    format!("PRAGMA {name} = {value}"),
                    "outside a transaction it would stay on for the connection's next borrower; \
                     set it after BEGIN",
                );
            }
            assignable
                || refuse(
                    format!("PRAGMA {name} = {value}"),
                    "a pragma assignment would stay on the connection for its next borrower; \
                     set it in the profile (litepool::guard::ASSIGNABLE_PRAGMAS lists those \
                     allowed)",
                )
        }
        ffi::SQLITE_ATTACH => refuse(
            format!("ATTACH {}", arg1.unwrap_or("")),
            "an attached database would stay on the connection for its next borrower",
        ),
        ffi::SQLITE_DETACH => refuse(
            format!("DETACH {}", arg1.unwrap_or("")),
            "DETACH is refused on pooled connections",
        ),
        // Inside a write closure the transaction belongs to litepool's batch: BEGIN, COMMIT,
        // ROLLBACK and its savepoint would end or split the other callers' work.
        ffi::SQLITE_TRANSACTION if crate::reentry::inside_any() => refuse(
            arg1.unwrap_or("transaction").to_owned(),
            "inside a write closure the transaction is litepool's: conn.transaction() or \
             conn.savepoint() nests a savepoint in it; return Err to roll back this write",
        ),
        ffi::SQLITE_SAVEPOINT
            if crate::reentry::inside_any()
                && arg2.is_some_and(|n| n.eq_ignore_ascii_case(crate::reentry::SAVEPOINT)) =>
        {
            refuse(
                format!("SAVEPOINT {}", crate::reentry::SAVEPOINT),
                "litepool's own savepoint",
            )
        }
        ffi::SQLITE_CREATE_TEMP_INDEX
        | ffi::SQLITE_CREATE_TEMP_TABLE
        | ffi::SQLITE_CREATE_TEMP_TRIGGER
        | ffi::SQLITE_CREATE_TEMP_VIEW => {
            mark_dirty(db);
            true
        }
        ffi::SQLITE_CREATE_VTABLE if schema.is_some_and(|s| s.eq_ignore_ascii_case("temp")) => {
            mark_dirty(db);
            true
        }
        _ => true,
    }
}

/// An SQLite error of application code on `database`: [`Error::Refused`] when it is the
/// guard's refusal made on this thread, naming the statement; [`Error::Sqlite`] otherwise.
pub fn error(database: impl Into<String>, source: rusqlite::Error) -> Error {
    let denied =
        source.sqlite_error_code() == Some(rusqlite::ErrorCode::AuthorizationForStatementDenied);
    match denied.then(take_refusal).flatten() {
        Some(statement) => Error::Refused {
            database: database.into(),
            statement,
            source,
        },
        None => Error::Sqlite {
            database: database.into(),
            source,
        },
    }
}
