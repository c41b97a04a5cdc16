//! The pragma guard: what application code may do on a pooled connection, decided when SQLite
//! prepares each statement (an authorizer, <https://sqlite.org/c3ref/set_authorizer.html>).
//!
//! One guard for every pool kind (rusqlite, diesel, deadpool, and an application's own r2d2 pool
//! through [`crate::PragmaCustomizer::customize_guarded`]), installed when a connection is
//! opened (`crate::open`) together with what the guard knows of the connection: its pool, its
//! profile, and whether it is a read-only reader. SQLite keeps that with the connection and
//! frees it when the connection closes, so a later connection at the same address never sees it.
//! Four outcomes:
//! - **refused**: a pragma assignment outside [`ASSIGNABLE_PRAGMAS`] (an allowlist, so that a
//!   pragma SQLite adds later is refused too) unless it restates the profile (below);
//!   `ATTACH`/`DETACH`; `wal_checkpoint` on a reader connection of a split database, or any
//!   read-only connection (it cannot checkpoint: SQLite would report a misleading "disk I/O
//!   error"; the refusal names the writer to use); and inside a write closure
//!   `BEGIN`/`COMMIT`/`ROLLBACK` and litepool's savepoint.
//! - **restating the profile: allowed, changes nothing**: an assignment of the value the
//!   connection's profile already sets (`PRAGMA synchronous = NORMAL` under `synchronous =
//!   "normal"`), spelled any way SQLite reads as that value (`1`, `normal`, `main.synchronous`,
//!   `synchronous(1)`; see `crate::pragma::as_sqlite_takes`), so that an application's startup
//!   SQL runs unchanged. `auto_vacuum` (which would open a write transaction, impossible on a
//!   reader) and `synchronous` inside a transaction (which SQLite refuses even for its own
//!   value) are skipped instead of run: the statement succeeds and does nothing. A different
//!   value is refused naming the profile's value and the profile key to change; a pragma the
//!   profile does not set is refused saying to add it.
//! - **allowed, connection replaced**: creating a temporary table, index, view, trigger or
//!   virtual table. Temporary objects live as long as the connection and a temporary table or
//!   trigger would change what the next borrower's statements do (a `temp.orders` shadows
//!   `main.orders`), so the connection is closed at check-in instead of going back (`take_dirty`).
//! - **allowed**: everything else.
//!
//! ## What a refusal looks like
//! SQLite lets an authorizer deny a statement but not word the error: the error of the call that
//! prepared it (rusqlite's `conn.execute`, diesel's `sql_query`) is SQLite's bare
//! "not authorized" (`ErrorCode::AuthorizationForStatementDenied`). litepool names the statement
//! and the reason in two places:
//! - a `tracing` warning, at the moment of the refusal;
//! - [`Error::Refused`], which a rusqlite error becomes through `?` in a function returning
//!   [`crate::Result`] (`From<rusqlite::Error> for Error`), through [`error`], and on the write
//!   path. The refusal is kept per thread until the next error conversion on that thread (or the
//!   next refusal) takes it, so convert the error on the thread that ran the statement (inside a
//!   deadpool `interact` closure, not after it).
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::ffi;

use crate::error::Error;
use crate::profile::{Profile, MANAGED};
use crate::sys::{Db, Verdict};

/// Pragmas a borrower may run with a value or an argument (`PRAGMA name = v`, `PRAGMA name(v)`):
/// those that leave nothing on the connection for its next borrower. Queries that take a table
/// or schema name; actions (`wal_checkpoint`, `incremental_vacuum`, `optimize`,
/// `shrink_memory`); `defer_foreign_keys` inside a transaction (SQLite switches it off at every
/// COMMIT and ROLLBACK, and litepool rolls back a transaction left open at check-in; outside a
/// transaction it is refused, as it would stay on for the next borrower); and `user_version` /
/// `application_id`, which are data stored in the file, not connection settings. Every other
/// pragma with a value is refused unless it restates the connection's profile (see the module
/// docs). Reading any pragma stays allowed.
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

/// What the guard knows of one connection, kept with it by SQLite (`crate::sys::attach`) from
/// the guard's installation until the connection closes. One per pool, shared by its
/// connections.
#[derive(Debug)]
pub(crate) struct Context {
    /// The pool (or the application's database) name, as errors name it.
    pool: String,
    /// The profile its connections get.
    profile: Profile,
    /// For a reader of a split database (a pool that does not write), the database's name.
    reader_of: Option<String>,
}

impl Context {
    /// The context of a writing pool (or an application's own pool) called `pool`.
    pub(crate) fn new(pool: impl Into<String>, profile: Profile) -> Arc<Context> {
        Arc::new(Context {
            pool: pool.into(),
            profile,
            reader_of: None,
        })
    }

    /// The context of a reader pool of database `database`, which does not write.
    pub(crate) fn reader(pool: impl Into<String>, profile: Profile, database: &str) -> Arc<Self> {
        Arc::new(Context {
            pool: pool.into(),
            profile,
            reader_of: Some(database.to_owned()),
        })
    }
}

/// A statement the guard refused: on which pool, and the statement with the reason.
struct Refusal {
    pool: String,
    statement: String,
}

thread_local! {
    /// The last statement the guard refused on this thread, until an error conversion takes it.
    static REFUSED: RefCell<Option<Refusal>> = const { RefCell::new(None) };
}

/// Connections that created a temporary object, by handle; `DIRTY_COUNT` lets a check-in skip
/// the lock when there are none (the common case).
static DIRTY: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static DIRTY_COUNT: AtomicUsize = AtomicUsize::new(0);

/// The statement the guard last refused on this thread (`PRAGMA foreign_keys = 0`,
/// `ATTACH 'x.db'`), taken: SQLite's own message for it is only "not authorized".
/// A later refusal replaces it, and any conversion of an error into [`Error`] on this thread
/// takes it, denied or not, so that it never names an unrelated later error.
pub fn take_refusal() -> Option<String> {
    take().map(|r| r.statement)
}

fn take() -> Option<Refusal> {
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

fn refuse(db: Db, statement: String, why: &str) -> Verdict {
    // The context is always there: `install` attaches it before the guard can run.
    let pool = crate::sys::attached::<Context>(db).map_or_else(String::new, |c| c.pool.clone());
    tracing::warn!(pool = %pool, statement = %statement, "litepool refused a statement on a pooled connection: {why}");
    REFUSED.with(|r| {
        *r.borrow_mut() = Some(Refusal {
            pool,
            statement: format!("{statement} ({why})"),
        })
    });
    Verdict::Deny
}

/// Installs the guard on a connection, with what it knows of it (replacing what an earlier
/// installation on the same connection kept).
pub(crate) fn install(db: Db, context: &Arc<Context>) -> Result<(), i32> {
    let context: Arc<dyn std::any::Any + Send + Sync> = context.clone();
    crate::sys::attach(db, context)?;
    crate::sys::install_guard(db, authorize, &ACTIONS)
}

/// The actions [`authorize`] decides; every other one is allowed.
const ACTIONS: [i32; 11] = [
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
    ffi::SQLITE_FUNCTION,
];

/// The decision for one action SQLite is preparing on connection `db`.
fn authorize(
    db: Db,
    action: i32,
    arg1: Option<&str>,
    arg2: Option<&str>,
    schema: Option<&str>,
) -> Verdict {
    match action {
        ffi::SQLITE_PRAGMA => pragma(db, arg1.unwrap_or(""), arg2, schema),
        ffi::SQLITE_ATTACH => refuse(
            db,
            format!("ATTACH {}", arg1.unwrap_or("")),
            "an attached database would stay on the connection for its next borrower",
        ),
        ffi::SQLITE_DETACH => refuse(
            db,
            format!("DETACH {}", arg1.unwrap_or("")),
            "DETACH is refused on pooled connections",
        ),
        // Inside a write closure the transaction belongs to litepool's batch: BEGIN, COMMIT,
        // ROLLBACK and its savepoint would end or split the other callers' work.
        ffi::SQLITE_TRANSACTION if crate::reentry::writing(db.addr()) => refuse(
            db,
            arg1.unwrap_or("transaction").to_owned(),
            "inside a write closure the transaction is litepool's: conn.transaction() or \
             conn.savepoint() nests a savepoint in it; return Err to roll back this write",
        ),
        ffi::SQLITE_SAVEPOINT
            if arg2.is_some_and(|n| n.eq_ignore_ascii_case(&crate::reentry::SAVEPOINT))
                && crate::reentry::writing(db.addr()) =>
        {
            refuse(
                db,
                format!("SAVEPOINT {}", *crate::reentry::SAVEPOINT),
                "litepool's own savepoint",
            )
        }
        ffi::SQLITE_CREATE_TEMP_INDEX
        | ffi::SQLITE_CREATE_TEMP_TABLE
        | ffi::SQLITE_CREATE_TEMP_TRIGGER
        | ffi::SQLITE_CREATE_TEMP_VIEW => {
            mark_dirty(db);
            Verdict::Allow
        }
        ffi::SQLITE_CREATE_VTABLE if schema.is_some_and(|s| s.eq_ignore_ascii_case("temp")) => {
            mark_dirty(db);
            Verdict::Allow
        }
        // Litestream's VFS keeps a connection's time-travel view until it is set back: on a
        // pooled connection, the next borrower would read the past.
        ffi::SQLITE_FUNCTION
            if arg2.is_some_and(|f| f.eq_ignore_ascii_case("litestream_set_time")) =>
        {
            refuse(
                db,
                "litestream_set_time()".into(),
                "time travel would stay on the pooled connection for its next borrower; \
                 open a connection of your own through the litestream VFS for it",
            )
        }
        _ => Verdict::Allow,
    }
}

/// `PRAGMA [schema.]name [= value]` on connection `db`.
fn pragma(db: Db, name: &str, value: Option<&str>, schema: Option<&str>) -> Verdict {
    let prefix = schema
        .filter(|s| !s.eq_ignore_ascii_case("main"))
        .map(|s| format!("{s}."))
        .unwrap_or_default();
    if name.eq_ignore_ascii_case("wal_checkpoint") {
        let context = crate::sys::attached::<Context>(db);
        let reader_of = context.as_ref().and_then(|c| c.reader_of.as_deref());
        // A split database's reader names its writer; any other read-only connection (an
        // application's own pool opened read-only) gets the reason alone.
        let why = match reader_of {
            Some(database) => Some(format!(
                "a reader connection is read-only and cannot checkpoint (SQLite would report a \
                 disk I/O error); a checkpoint needs the writer: run it on \
                 pools.writer({database:?}) or inside pools.write({database:?}, …), or set \
                 checkpoint = \"background\" for database {database:?}"
            )),
            None if crate::sys::is_read_only(db) => Some(
                "a read-only connection cannot checkpoint (SQLite would report a disk I/O \
                 error): run it on a connection that writes"
                    .to_owned(),
            ),
            None => None,
        };
        if let Some(why) = why {
            let statement = match value {
                Some(v) => format!("PRAGMA {prefix}{name}({v})"),
                None => format!("PRAGMA {prefix}{name}"),
            };
            return refuse(db, statement, &why);
        }
    }
    let Some(value) = value else {
        return Verdict::Allow; // reading a pragma
    };
    let statement = format!("PRAGMA {prefix}{name} = {value}");
    if name.eq_ignore_ascii_case("defer_foreign_keys") && crate::sys::is_autocommit(db) {
        return refuse(
            db,
            statement,
            "outside a transaction it would stay on for the connection's next borrower; \
             set it after BEGIN",
        );
    }
    if ASSIGNABLE_PRAGMAS
        .iter()
        .any(|m| m.eq_ignore_ascii_case(name))
    {
        return Verdict::Allow;
    }
    let pragma = name.to_ascii_lowercase();
    let main = schema.map_or(true, |s| s.eq_ignore_ascii_case("main"));
    match crate::sys::attached::<Context>(db) {
        Some(context) if main && MANAGED.contains(&pragma.as_str()) => {
            restate(db, &context.profile, &pragma, value, statement)
        }
        _ => refuse(
            db,
            statement,
            "a pragma assignment would stay on the connection for its next borrower; set it in \
             the profile (litepool::guard::ASSIGNABLE_PRAGMAS lists those allowed)",
        ),
    }
}

/// An assignment of a pragma profiles manage: allowed when it restates `profile`'s value.
fn restate(db: Db, profile: &Profile, pragma: &str, value: &str, statement: String) -> Verdict {
    let name = profile.name();
    let Some(setting) = profile.settings().iter().find(|s| s.pragma == pragma) else {
        return refuse(
            db,
            statement,
            &format!(
                "profile {name:?} does not set {pragma}, and a pragma assignment would stay on \
                 the connection for its next borrower: add pragmas.{pragma} to profile {name:?}"
            ),
        );
    };
    let asked = crate::pragma::as_sqlite_takes(pragma, value);
    if asked.as_ref() == Some(&setting.expect) {
        // Restated: nothing to change. Skip what running it would break.
        let skip =
            pragma == "auto_vacuum" || (pragma == "synchronous" && !crate::sys::is_autocommit(db));
        return if skip {
            Verdict::Ignore
        } else {
            Verdict::Allow
        };
    }
    let sets = if setting.configured == setting.expect.to_string() {
        setting.configured.clone()
    } else {
        format!("{} ({})", setting.configured, setting.expect)
    };
    let not = match asked {
        Some(_) => format!("not {value}"),
        None => format!("and litepool cannot tell which value SQLite takes from {value}"),
    };
    refuse(
        db,
        statement,
        &format!(
            "profile {name:?} sets {pragma} = {sets}, {not}; a pooled connection would keep it \
             for its next borrower: to change it, set pragmas.{pragma} in profile {name:?}"
        ),
    )
}

/// An SQLite error of application code on `database`: [`Error::Refused`] when it is the
/// guard's refusal made on this thread, naming the statement; [`Error::Sqlite`] otherwise.
pub fn error(database: impl Into<String>, source: rusqlite::Error) -> Error {
    match refusal(&source) {
        Some(r) => Error::Refused {
            database: database.into(),
            statement: r.statement,
            source,
        },
        None => Error::Sqlite {
            database: database.into(),
            source,
        },
    }
}

/// The refusal recorded on this thread, taken in any case, when `source` is SQLite's denial.
fn refusal(source: &rusqlite::Error) -> Option<Refusal> {
    let refusal = take();
    let denied =
        source.sqlite_error_code() == Some(rusqlite::ErrorCode::AuthorizationForStatementDenied);
    refusal.filter(|_| denied)
}

/// `?` on a rusqlite error in a function returning [`crate::Result`]: the guard's refusal made
/// on this thread becomes [`Error::Refused`], naming the pool, the statement and the reason
/// (rusqlite's own error says only "not authorized"); any other error is [`Error::Rusqlite`].
impl From<rusqlite::Error> for Error {
    fn from(source: rusqlite::Error) -> Error {
        match refusal(&source) {
            Some(Refusal { pool, statement }) => Error::Refused {
                database: pool,
                statement,
                source,
            },
            None => Error::Rusqlite { source },
        }
    }
}

/// The error of an API call litepool keeps for itself on a connection (its guard, its hooks).
pub(crate) fn kept(what: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISUSE),
        Some(format!("litepool: {what}")),
    )
}

/// The function-registering methods of [`crate::Conn`] and [`crate::WriteConn`], in front of
/// rusqlite's: each marks the connection to be closed at check-in, since a function (or an
/// override of a built-in such as `lower`) would stay registered for the next borrower. `$conn`
/// is the field holding the connection.
macro_rules! function_methods {
    ($conn:ident) => {
        /// rusqlite's `Connection::create_scalar_function`; the connection is then closed at
        /// check-in instead of going back: the function (or an override of a built-in such as
        /// `lower`) would stay registered for the next borrower. Register what every borrower
        /// needs in code run on each checkout.
        pub fn create_scalar_function<F, N, T>(
            &self,
            fn_name: N,
            n_arg: std::os::raw::c_int,
            flags: rusqlite::functions::FunctionFlags,
            x_func: F,
        ) -> rusqlite::Result<()>
        where
            N: rusqlite::Name,
            F: Fn(&rusqlite::functions::Context<'_>) -> rusqlite::Result<T> + Send + 'static,
            T: rusqlite::functions::SqlFnOutput,
        {
            $crate::guard::mark_dirty($crate::sys::Db::of(&self.$conn));
            self.$conn
                .create_scalar_function(fn_name, n_arg, flags, x_func)
        }

        /// rusqlite's `Connection::create_aggregate_function`; the connection is then closed
        /// at check-in (see `create_scalar_function`).
        pub fn create_aggregate_function<A, D, N, T>(
            &self,
            fn_name: N,
            n_arg: std::os::raw::c_int,
            flags: rusqlite::functions::FunctionFlags,
            aggr: D,
        ) -> rusqlite::Result<()>
        where
            A: std::panic::RefUnwindSafe + std::panic::UnwindSafe,
            D: rusqlite::functions::Aggregate<A, T> + 'static,
            N: rusqlite::Name,
            T: rusqlite::functions::SqlFnOutput,
        {
            $crate::guard::mark_dirty($crate::sys::Db::of(&self.$conn));
            self.$conn
                .create_aggregate_function(fn_name, n_arg, flags, aggr)
        }

        /// rusqlite's `Connection::remove_function`; the connection is then closed at
        /// check-in (a built-in it removed would be missing for the next borrower).
        pub fn remove_function<N: rusqlite::Name>(
            &self,
            fn_name: N,
            n_arg: std::os::raw::c_int,
        ) -> rusqlite::Result<()> {
            $crate::guard::mark_dirty($crate::sys::Db::of(&self.$conn));
            self.$conn.remove_function(fn_name, n_arg)
        }
    };
}
pub(crate) use function_methods;
