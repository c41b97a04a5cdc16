//! The one error type of litepool, and its `Result` alias.
//!
//! Messages are lowercase and name what went wrong: the file (or environment variable), the key,
//! the value and what is allowed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

/// `Result` with litepool's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A value that could not be parsed: what it was meant to be, the text, and what is allowed.
///
/// Returned by every `FromStr` in [`crate::pragma`]; the settings loader adds the file and key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: expected {allowed}")]
pub struct ParseValueError {
    /// What was being parsed, e.g. `journal_mode` or `size`.
    pub what: &'static str,
    /// The text as given.
    pub value: String,
    /// What is allowed, in words.
    pub allowed: String,
}

impl ParseValueError {
    /// A parse error: what was parsed, the text, what is allowed.
    pub fn new(what: &'static str, value: impl Into<String>, allowed: impl Into<String>) -> Self {
        Self {
            what,
            value: value.into(),
            allowed: allowed.into(),
        }
    }
}

/// Everything that can go wrong in litepool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration source (file or environment variable) is invalid.
    ///
    /// `origin` is the file path or the environment variable; `key` the dotted key, if known.
    #[error("{origin}: {}{message}", key.as_ref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
    Config {
        /// The file or environment variable the bad value came from.
        origin: String,
        /// The dotted key, e.g. `databases.jobs.pragmas.journal_mode`.
        key: Option<String>,
        /// What is wrong, with the value and what is allowed.
        message: String,
    },

    /// A value failed to parse outside of a configuration file (e.g. from code or the CLI).
    #[error(transparent)]
    Parse(#[from] ParseValueError),

    /// `pools.get(name)` with a name that is not configured.
    #[error("unknown database {name:?}: configured databases are {}", known.join(", "))]
    UnknownDatabase {
        /// The name asked for.
        name: String,
        /// The configured names.
        known: Vec<String>,
    },

    /// `pools.get(name)` on a database split into a writer and readers.
    #[error("database {name:?} is split into a writer and readers: use pools.writer({name:?}) or pools.reader({name:?})")]
    SplitDatabase {
        /// The name asked for.
        name: String,
    },

    /// The path points at something that is not an SQLite database; nothing was written to it.
    #[error("database {database:?}: {path} is not an sqlite database ({reason}); the file was not modified")]
    NotADatabase {
        /// The configured database name.
        database: String,
        /// The path.
        path: PathBuf,
        /// Why: a directory, a bad header, ...
        reason: String,
    },

    /// The path names no file: `:memory:` or an SQLite URI (`file:…`), which SQLite would open
    /// as an in-memory database per connection or with URI parameters litepool does not check.
    #[error("database {database:?}: path {path:?} is not a file path: {reason}")]
    NotAFilePath {
        /// The database.
        database: String,
        /// The path as configured.
        path: std::path::PathBuf,
        /// Why, and what to write instead.
        reason: String,
    },

    /// The file does not exist and `create_if_missing` is false, or its directory is missing.
    #[error("database {database:?}: {path}: {reason}")]
    Missing {
        /// The configured database name.
        database: String,
        /// The path.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },

    /// `PRAGMA quick_check` found damage in an existing file; litepool did not write to it.
    #[error("database {database:?}: {path} is damaged: PRAGMA quick_check reports {report:?}; litepool did not write to it (restore it from a backup, or set check_integrity = false to open it anyway)")]
    Corrupt {
        /// The configured database name.
        database: String,
        /// The path.
        path: PathBuf,
        /// What `quick_check` reported (its first lines).
        report: String,
    },

    /// A `-wal` or `-journal` file without its database file (or beside an empty one): it may hold
    /// the only copy of commits. Nothing was written or removed.
    #[error("database {database:?}: {orphan} exists but {path} is missing or empty: it may hold the only copy of committed data, and opening the database would discard it; restore the database file, or move the orphan away if it is not needed (nothing was changed)")]
    Orphan {
        /// The configured database name.
        database: String,
        /// The database path.
        path: PathBuf,
        /// The `-wal` or `-journal` file.
        orphan: PathBuf,
    },

    /// The database file was deleted, renamed or replaced while its pool was open: new
    /// connections would reach another file, and writes on open ones would be lost.
    #[error("pool {pool:?}: the database file {path} was deleted, renamed or replaced while the pool was open; the pool hands out no more connections (rebuild the pools to open the file now at that path)")]
    Moved {
        /// The pool's name.
        pool: String,
        /// The path.
        path: PathBuf,
    },

    /// A LiteFS mount's `.primary` file that does not hold one host name: litepool cannot tell
    /// whether this node is the primary, so it opens nothing.
    #[error("{}: {problem} (it holds {holds}); LiteFS writes one host name there on a replica and removes the file on the primary (https://fly.io/docs/litefs/primary/)", path.display())]
    LitefsState {
        /// The `.primary` file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// What it holds, escaped and clipped: `"…"`, `N bytes that are not UTF-8`, `a directory`.
        holds: String,
    },

    /// A LiteFS database on a node that is not the primary: it does not write here.
    #[error("database {database:?} is on a LiteFS replica (the primary is {primary}): this node opens no writer; send writes to the primary (https://fly.io/docs/litefs/primary/)")]
    NotPrimary {
        /// The configured database name.
        database: String,
        /// The primary's host name, from the mount's `.primary` file.
        primary: String,
    },

    /// A write, or a writer, asked of a read replica (`replica_url`): it has readers only.
    #[error("database {database:?} is a read replica of {url} (through Litestream's VFS): it has readers only; send writes to the primary, the database Litestream replicates to {url}")]
    ReadReplica {
        /// The configured database name.
        database: String,
        /// Its replica URL.
        url: String,
    },

    /// A read replica could not be set up: Litestream's VFS extension is not configured, not
    /// loadable, or would read another replica than the configured one.
    #[error("read replica {database:?}: {message}")]
    ReplicaSetup {
        /// The configured database name.
        database: String,
        /// What is wrong.
        message: String,
    },

    /// A write was not committed: its transaction's BEGIN or COMMIT failed (disk full, I/O
    /// error, a busy database) and nothing of it committed. `code` keeps SQLite's error code
    /// ([`Error::sqlite_code`], [`Error::is_busy`]).
    #[cfg(feature = "sqlite")]
    #[error("database {database:?}: the write was not committed: {message}")]
    Commit {
        /// The configured database name.
        database: String,
        /// Why.
        message: String,
        /// SQLite's error code, when SQLite gave one.
        code: Option<rusqlite::ffi::Error>,
    },

    /// A write's closure ran, but the transaction it shared was rolled back afterwards by
    /// another closure of its batch (`INSERT OR ROLLBACK`, a trigger's `RAISE(ROLLBACK)`, SQLite's
    /// own rollback after a disk-full or I/O error) or by its own statement: nothing of it
    /// committed, and running it again is safe.
    #[error("database {database:?}: the write was not committed: {cause} rolled back the transaction it was part of; nothing of this write committed and it is safe to retry")]
    RolledBack {
        /// The configured database name.
        database: String,
        /// What rolled the transaction back.
        cause: String,
    },

    /// No batch could start within the writer's `connection_timeout`; the write's closure never
    /// ran and nothing of it committed.
    #[error("database {database:?}: the write did not start within {} ({cause}); nothing of it ran", humantime::format_duration(*waited))]
    WriteTimeout {
        /// The configured database name.
        database: String,
        /// How long the caller waited.
        waited: std::time::Duration,
        /// What held the write path, e.g. "a write closure has been running for 2.9s".
        cause: String,
    },

    /// `write`, `writer()` or a checkout of the writer from inside a write closure of the same
    /// database: it would wait for itself. Nothing ran.
    #[error("database {database:?}: {call} was called from inside a write closure of the same database, which would wait for itself; do the work in the closure's connection, or after write() returns")]
    Reentrant {
        /// The configured database (or pool) name.
        database: String,
        /// `write` or `writer()`.
        call: &'static str,
    },

    /// A write closure panicked: its work was rolled back, nothing of it committed; the other
    /// writes of its batch are unaffected.
    #[error("database {database:?}: the write closure panicked ({message}); its work was rolled back and nothing of it committed")]
    Panicked {
        /// The configured database name.
        database: String,
        /// The panic's message, when it was a string.
        message: String,
    },

    /// The group-commit queue stayed full for the writer's `connection_timeout`.
    #[error("database {database:?}: the write queue stayed full ({queue_size} writes waiting) for {}; raise queue_size under [databases.{database}.writer] or write less at once", humantime::format_duration(*waited))]
    QueueFull {
        /// The configured database name.
        database: String,
        /// The queue's size.
        queue_size: usize,
        /// How long the caller waited.
        waited: std::time::Duration,
    },

    /// Two configured databases name one file.
    #[error("databases {first:?} and {second:?} are the same file ({path}): one file is one database with one profile; for two pools on one file use [databases.{first}.writer] and [databases.{first}.readers]")]
    SameFile {
        /// The first database, by name order.
        first: String,
        /// The second.
        second: String,
        /// The second's path.
        path: PathBuf,
    },

    /// A file-level pragma (`page_size`, `auto_vacuum`) differs from the existing file.
    #[error(
        "database {database:?}: {pragma} is {actual} in the existing file {path} but the profile \
         wants {wanted}; {pragma} of an existing database only changes with a VACUUM \
         (see https://sqlite.org/pragma.html#pragma_{pragma}); the file was not modified"
    )]
    NeedsVacuum {
        /// The configured database name.
        database: String,
        /// The path.
        path: PathBuf,
        /// `page_size` or `auto_vacuum`.
        pragma: &'static str,
        /// The profile's value.
        wanted: String,
        /// The file's value.
        actual: String,
    },

    /// Another connection held the database file locked for longer than the profile's
    /// `busy_timeout` while litepool read it before opening any pool (the integrity check,
    /// `check_integrity`). Nothing was changed.
    #[error("database {database:?}: {} is locked by another connection: {during} waited the profile's busy_timeout in vain; nothing was changed (retry once it is released, or set check_integrity = false to skip the integrity check)", path.display())]
    Locked {
        /// The configured database name.
        database: String,
        /// The path.
        path: PathBuf,
        /// What waited, e.g. `PRAGMA quick_check`.
        during: &'static str,
    },

    /// `litepool check --apply` could not get exclusive access to switch a setting stored in
    /// an existing file (`journal_mode`): another connection holds the database. Nothing was
    /// changed.
    #[error("database {database:?}: cannot switch {change} in {path}: another connection holds the database ({cause}); nothing was changed (stop the application, then run litepool check --apply again)")]
    Held {
        /// The configured database name.
        database: String,
        /// The path.
        path: PathBuf,
        /// The switch asked for, e.g. `journal_mode wal -> delete`.
        change: String,
        /// SQLite's error.
        cause: String,
    },

    /// A pragma read back a different value than was set: it did not take effect.
    #[error("database {database:?}: pragma {pragma} did not take effect: wanted {wanted}, sqlite reports {actual}")]
    Mismatch {
        /// The configured database name.
        database: String,
        /// The pragma.
        pragma: &'static str,
        /// The value asked for, as SQLite would report it.
        wanted: String,
        /// The value SQLite reports.
        actual: String,
    },

    /// Setting or reading a pragma failed with an SQLite error.
    #[error("database {database:?}: pragma {pragma}: {source}")]
    Pragma {
        /// The configured database name.
        database: String,
        /// The pragma.
        pragma: &'static str,
        /// The driver's error.
        #[source]
        source: PragmaError,
    },

    /// The configured worst-case page-cache memory is over `limits.memory_budget` and a profile
    /// sets `enforce_budget = true`.
    #[error("memory budget exceeded: worst case {worst} (max_size x cache_size over all pools) is over limits.memory_budget = {budget}; enforced by {}", enforced_by.join(", "))]
    OverBudget {
        /// Worst case, formatted.
        worst: String,
        /// The budget, formatted.
        budget: String,
        /// Databases whose profile sets `enforce_budget`.
        enforced_by: Vec<String>,
    },

    /// No connection within the pool's `connection_timeout`. r2d2 itself reports only "timed out
    /// waiting for connection"; this says which pool, how long, and why: every connection was in
    /// use, or new connections failed (`cause`: the customizer's or the connection's last error).
    #[error("pool {pool:?}: no connection within {}: {}", humantime::format_duration(*timeout), match cause {
        Some(c) => format!("opening a connection failed: {}", c.message),
        None => format!("all {max_size} connection(s) were in use"),
    })]
    Timeout {
        /// The pool's name (`jobs`, or `jobs.writer` / `jobs.readers` for a split database).
        pool: String,
        /// The pool's `max_size`.
        max_size: u32,
        /// How long the caller waited.
        timeout: std::time::Duration,
        /// Why no connection could be opened, when one could not.
        cause: Option<LastError>,
    },

    /// r2d2 could not build a pool: its first connections failed.
    #[error("pool {pool:?}: could not open its connections: {}", cause.as_ref().map_or("r2d2 gave no cause", |c| c.message.as_str()))]
    Build {
        /// The pool's name.
        pool: String,
        /// The customizer's or the connection's last error.
        cause: Option<LastError>,
    },

    /// A profile sets a value that can corrupt or lock out the database without `allow_unsafe`.
    #[error("{pragma} = {value:?} is unsafe (a crash can corrupt or lock out the database); set allow_unsafe = true in the same profile to use it")]
    Unsafe {
        /// The pragma.
        pragma: &'static str,
        /// The value, as configured.
        value: String,
    },

    /// A pool setting is out of range (r2d2 would panic on it).
    #[error("invalid {key} {value}: expected {allowed}")]
    PoolSetting {
        /// The key, e.g. `max_size`.
        key: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        allowed: String,
    },

    /// An error found in one configuration source, with the file or variable and the key.
    #[error("{origin}: key `{key}`: {source}")]
    At {
        /// The file or environment variable.
        origin: String,
        /// The dotted key.
        key: String,
        /// What is wrong.
        #[source]
        source: Box<Error>,
    },

    /// litepool's guard refused a statement of application code on a pooled connection
    /// (SQLite says only "not authorized"): a pragma assignment that would outlive the checkout
    /// (a value other than the profile's, or a pragma the profile does not set), `ATTACH`, a
    /// checkpoint on a read-only reader, or a transaction statement inside a write closure.
    /// `statement` names the statement and the reason. A rusqlite error becomes this through
    /// `?` on the thread that ran the statement. See [`crate::guard`].
    #[cfg(feature = "sqlite")]
    #[error("database {database:?}: not authorized by litepool's guard: {statement}")]
    Refused {
        /// The configured database name.
        database: String,
        /// The statement and why it was refused.
        statement: String,
        /// SQLite's error (SQLITE_AUTH).
        #[source]
        source: rusqlite::Error,
    },

    /// An SQLite error outside of a pragma.
    #[cfg(feature = "sqlite")]
    #[error("database {database:?}: {source}")]
    Sqlite {
        /// The configured database name.
        database: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },

    /// An SQLite error of application code converted with `?` (`From<rusqlite::Error>`), which
    /// carries no database name; [`crate::guard::error`] adds one ([`Error::Sqlite`]). A
    /// refusal of litepool's guard converts to [`Error::Refused`] instead. Feature `sqlite`.
    #[cfg(feature = "sqlite")]
    #[error("sqlite: {source}")]
    Rusqlite {
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },

    /// `Pools::reload`: a change that cannot apply to a running application (a file-level
    /// pragma, a path, the split, a database added or removed, …). Nothing was applied.
    #[error("reload refused: key `{key}` changed ({old} -> {new}), which cannot apply to a running application: restart it to apply the change (the configuration in force is unchanged)")]
    RestartRequired {
        /// The dotted key, e.g. `databases.jobs.pragmas.journal_mode`.
        key: String,
        /// Its value in force.
        old: String,
        /// Its value in the new configuration.
        new: String,
    },
    /// The admin socket (feature `admin`): a path refused, or a request that failed.
    #[error("admin socket {}: {problem}", path.display())]
    Admin {
        /// The socket's path.
        path: PathBuf,
        /// What is wrong, and what is allowed.
        problem: String,
    },
    /// A file system error.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True when a profile did not take effect: a pragma read back differently, or connections
    /// were refused for that reason. False for configuration, file and connection errors.
    pub fn is_mismatch(&self) -> bool {
        match self {
            Error::Mismatch { .. } => true,
            Error::Build { cause, .. } | Error::Timeout { cause, .. } => {
                cause.as_ref().is_some_and(|c| c.profile)
            }
            Error::At { source, .. } => source.is_mismatch(),
            _ => false,
        }
    }

    /// True for SQLite's "database is locked" (SQLITE_BUSY), including a COMMIT that failed
    /// with it.
    pub fn is_busy(&self) -> bool {
        match self {
            Error::Pragma { source, .. } => source.is_busy(),
            #[cfg(feature = "sqlite")]
            _ => self.sqlite_code() == Some(rusqlite::ErrorCode::DatabaseBusy),
            #[cfg(not(feature = "sqlite"))]
            _ => false,
        }
    }

    /// SQLite's error code behind this error, if SQLite gave one: `DiskFull`, `SystemIoFailure`,
    /// `DatabaseBusy`, `ConstraintViolation`, ... Feature `sqlite`.
    #[cfg(feature = "sqlite")]
    pub fn sqlite_code(&self) -> Option<rusqlite::ErrorCode> {
        match self {
            Error::Sqlite { source, .. }
            | Error::Refused { source, .. }
            | Error::Rusqlite { source } => source.sqlite_error_code(),
            Error::Commit { code, .. } => code.map(|c| c.code),
            Error::At { source, .. } => source.sqlite_code(),
            _ => None,
        }
    }

    /// True when nothing of the write committed and running it again is safe: it was rolled
    /// back with its batch ([`Error::RolledBack`]), never started ([`Error::WriteTimeout`],
    /// [`Error::QueueFull`]) or its transaction could not start or commit on a busy database.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::RolledBack { .. } | Error::WriteTimeout { .. } | Error::QueueFull { .. }
        ) || self.is_busy()
    }
}

/// Why a pragma could not be set or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PragmaError {
    /// From rusqlite (a deadpool-sqlite or r2d2_sqlite connection).
    #[cfg(feature = "sqlite")]
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// From another driver (diesel, or an application's own rusqlite), as its message.
    #[error("{message}")]
    Driver {
        /// The driver's message.
        message: String,
        /// True for SQLite's "database is locked" (SQLITE_BUSY).
        busy: bool,
    },
}

impl PragmaError {
    /// True for SQLite's "database is locked" (SQLITE_BUSY).
    pub fn is_busy(&self) -> bool {
        match self {
            #[cfg(feature = "sqlite")]
            PragmaError::Sqlite(e) => {
                e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
            }
            PragmaError::Driver { busy, .. } => *busy,
        }
    }
}

/// The last error of a customizer, kept because r2d2 reports a failed `on_acquire` to the caller
/// of `get()` only as "timed out waiting for connection".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LastError {
    /// The error message, naming the database and pragma.
    pub message: String,
    /// When it happened (JSON: RFC 3339, UTC).
    #[serde(serialize_with = "crate::units::rfc3339")]
    pub at: SystemTime,
    /// True when a pragma did not take effect ([`Error::Mismatch`]); false when applying the
    /// profile failed with an error (a lock, a read-only file) or the connection could not be
    /// opened.
    pub profile: bool,
}

impl LastError {
    /// A connection error (not a profile mismatch), now.
    pub fn connection(message: impl Into<String>) -> LastError {
        LastError {
            message: message.into(),
            at: SystemTime::now(),
            profile: false,
        }
    }
}

/// A shared handle to a customizer's last error.
pub type LastErrorHandle = Arc<Mutex<Option<LastError>>>;
