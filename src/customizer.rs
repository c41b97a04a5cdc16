//! [`PragmaCustomizer`]: when a profile runs. r2d2 calls it once per new physical connection.

#[cfg(feature = "sqlite")]
use std::sync::Arc;
use std::sync::{Mutex, PoisonError};
use std::time::{Instant, SystemTime};

#[cfg(feature = "sqlite")]
use r2d2::CustomizeConnection;
#[cfg(feature = "sqlite")]
use rusqlite::Connection;

use crate::connection::PragmaConnection;
use crate::error::{Error, Result};
use crate::profile::Profile;

pub use crate::error::{LastError, LastErrorHandle};

/// Applies a [`Profile`] to every new connection of an r2d2 pool, and reads it back.
///
/// The first connection (or [`PragmaCustomizer::bootstrap`], which `Pools` calls before
/// building the pool) switches `journal_mode` and sets the file-level pragmas of a new database,
/// under a lock, so that pooled connections never race to switch it. Later connections set the
/// per-connection pragmas and verify the rest. Any pragma that does not read back as asked fails
/// the connection with [`Error::Mismatch`], logged with `tracing` and kept for
/// [`PragmaCustomizer::last_error`].
///
/// ```no_run
/// use litepool::{PragmaCustomizer, PragmaSet, Profile};
/// use litepool::pragma::JournalMode;
/// use r2d2_sqlite::SqliteConnectionManager;
///
/// let mut pragmas = PragmaSet::default();
/// pragmas.busy_timeout = Some("5s".parse()?);
/// pragmas.journal_mode = Some(JournalMode::Wal);
/// pragmas.cache_size = Some("64MiB".parse()?);
/// let profile = Profile::new("jobs", pragmas)?;
///
/// let pool = r2d2::Pool::builder()
///     .connection_customizer(Box::new(PragmaCustomizer::new("jobs", profile)))
///     .build(SqliteConnectionManager::file("data/jobs.db"))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PragmaCustomizer {
    database: String,
    profile: Profile,
    /// What the guard knows of this customizer's connections.
    #[cfg(feature = "sqlite")]
    guard: Arc<crate::guard::Context>,
    bootstrapped: Mutex<bool>,
    last_error: LastErrorHandle,
}

impl PragmaCustomizer {
    /// A customizer for the database called `database` (used in messages and logs).
    pub fn new(database: impl Into<String>, profile: Profile) -> Self {
        let database = database.into();
        PragmaCustomizer {
            #[cfg(feature = "sqlite")]
            guard: crate::guard::Context::new(&database, profile.clone()),
            database,
            profile,
            bootstrapped: Mutex::new(false),
            last_error: LastErrorHandle::default(),
        }
    }

    /// This customizer for the reader pool of split database `database`, whose connections
    /// cannot write: the guard refuses a checkpoint on them.
    #[cfg(feature = "sqlite")]
    pub(crate) fn for_reader(mut self, database: &str) -> Self {
        self.guard = crate::guard::Context::reader(&self.database, self.profile.clone(), database);
        self
    }

    /// What the guard keeps with each of this customizer's connections.
    #[cfg(feature = "sqlite")]
    pub(crate) fn guard(&self) -> &Arc<crate::guard::Context> {
        &self.guard
    }

    /// The profile.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Keeps its last error in `handle` (a reloaded pool's customizer keeps its predecessor's).
    #[cfg(feature = "sqlite")]
    pub(crate) fn with_last_error(mut self, handle: LastErrorHandle) -> Self {
        self.last_error = handle;
        self
    }

    /// A handle to the last error, which stays readable after the customizer moves into a pool.
    pub fn last_error(&self) -> LastErrorHandle {
        self.last_error.clone()
    }

    /// Marks the database as bootstrapped by another customizer (a split database's writer), so
    /// that this one's connections only set per-connection pragmas and verify.
    pub fn skip_bootstrap(&self) {
        *self
            .bootstrapped
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
    }

    /// Applies the whole profile on a dedicated connection, including the `journal_mode` switch
    /// and the file-level pragmas of a new database, and verifies it. Pooled connections opened
    /// afterwards only set per-connection pragmas and verify.
    pub fn bootstrap<C: PragmaConnection + ?Sized>(&self, conn: &mut C) -> Result<()> {
        let mut done = self
            .bootstrapped
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.run(conn, true)?;
        *done = true;
        Ok(())
    }

    fn run<C: PragmaConnection + ?Sized>(&self, conn: &mut C, first: bool) -> Result<()> {
        let span = tracing::debug_span!(
            "litepool.on_acquire",
            database = %self.database,
            profile = %self.profile.name(),
            first
        );
        let _guard = span.enter();
        let start = Instant::now();
        let result = self
            .profile
            .apply(conn, &self.database, first)
            .and_then(|()| self.profile.verify(conn, &self.database));
        match &result {
            Ok(readings) => tracing::debug!(
                pragmas = readings.len(),
                elapsed_us = start.elapsed().as_micros() as u64,
                "profile applied and verified"
            ),
            Err(e) => {
                let message = describe(e);
                tracing::warn!(database = %self.database, error = %message, "connection refused: profile did not take effect");
                record(&self.last_error, message, e.is_mismatch());
            }
        }
        result.map(drop)
    }
}

impl PragmaCustomizer {
    /// What `on_acquire` does for any connection type: the first connection of a database not
    /// yet bootstrapped switches `journal_mode` and sets file-level pragmas (under the lock, so
    /// that no two connections race to switch); every connection sets its per-connection
    /// pragmas and reads the whole profile back. Errors are logged and kept as the last error.
    pub fn customize<C: PragmaConnection + ?Sized>(&self, conn: &mut C) -> Result<()> {
        let mut done = self
            .bootstrapped
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *done {
            drop(done);
            self.run(conn, false)
        } else {
            let r = self.run(conn, true);
            *done = r.is_ok();
            r
        }
    }
}

#[cfg(feature = "sqlite")]
impl PragmaCustomizer {
    /// [`PragmaCustomizer::customize`] for a rusqlite connection, then the pragma guard
    /// ([`crate::guard`]): an authorizer that refuses what would outlive a checkout, and lets
    /// startup SQL that restates this customizer's profile run (its refusals name this
    /// customizer's database and profile). Called again on the same connection, the guard
    /// judges by the customizer called last. For
    /// hand-built r2d2 pools; litepool's own pools of every kind do this when they open a
    /// connection, and also check connections in ([`crate::Pools`]).
    pub fn customize_guarded(&self, conn: &mut Connection) -> Result<()> {
        self.customize(conn)?;
        crate::guard::install(crate::sys::Db::of(conn), &self.guard).map_err(|code| Error::Sqlite {
            database: self.database.clone(),
            source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
        })
    }
}

#[cfg(feature = "sqlite")]
impl CustomizeConnection<Connection, rusqlite::Error> for PragmaCustomizer {
    fn on_acquire(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        let result = self.customize_guarded(conn);
        // rusqlite has no general "other" variant; this one displays our error as is and keeps
        // it as `source()`, so it can be downcast to `litepool::Error`.
        result.map_err(|e: Error| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
    }
}

/// An error of the customizer in words: with the cause behind SQLite's "unable to open database
/// file" when there is one.
#[cfg(feature = "sqlite")]
fn describe(e: &Error) -> String {
    match e {
        Error::Pragma {
            source: crate::error::PragmaError::Sqlite(source),
            ..
        }
        | Error::Sqlite { source, .. } => explain_cant_open(e.to_string(), source),
        other => other.to_string(),
    }
}

/// An error of the customizer in words.
#[cfg(not(feature = "sqlite"))]
fn describe(e: &Error) -> String {
    e.to_string()
}

/// Keeps `message` as the last error of a pool.
pub(crate) fn record(handle: &LastErrorHandle, message: String, profile: bool) {
    *handle.lock().unwrap_or_else(PoisonError::into_inner) = Some(LastError {
        message,
        at: SystemTime::now(),
        profile,
    });
}

/// True when `error` is a customizer's own (already recorded) error.
#[cfg(feature = "sqlite")]
pub(crate) fn from_customizer(error: &rusqlite::Error) -> bool {
    std::error::Error::source(error).is_some_and(|s| s.downcast_ref::<Error>().is_some())
}

/// A connection error in words, with the cause SQLite's "unable to open database file" hides
/// when the process has run out of file descriptors.
#[cfg(feature = "sqlite")]
pub(crate) fn describe_connect_error(error: &rusqlite::Error) -> String {
    explain_cant_open(error.to_string(), error)
}

/// `message`, with the cause named when `error` is SQLITE_CANTOPEN because the process is out of
/// file descriptors.
#[cfg(feature = "sqlite")]
fn explain_cant_open(message: String, error: &rusqlite::Error) -> String {
    let cant_open = error.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen);
    if cant_open {
        if let Err(e) = std::fs::File::open(std::env::current_dir().unwrap_or_default()) {
            if e.raw_os_error() == Some(EMFILE) {
                return format!(
                    "{message}: the process is out of file descriptors (EMFILE, too many open \
                     files): raise the limit (ulimit -n) or lower max_size"
                );
            }
        }
    }
    message
}

#[cfg(all(feature = "sqlite", unix))]
const EMFILE: i32 = 24;
#[cfg(all(feature = "sqlite", not(unix)))]
const EMFILE: i32 = -1;

/// An r2d2 error handler that only keeps the last connection error, for pools without
/// statistics: a timeout can then say why no connection could be opened.
#[cfg(feature = "sqlite")]
#[derive(Debug, Clone)]
pub struct ErrorRecorder(pub LastErrorHandle);

#[cfg(feature = "sqlite")]
impl r2d2::HandleError<rusqlite::Error> for ErrorRecorder {
    fn handle_error(&self, error: rusqlite::Error) {
        if !from_customizer(&error) {
            let message = describe_connect_error(&error);
            tracing::warn!(error = %message, "connection error");
            record(&self.0, message, false);
        }
    }
}

#[cfg(feature = "sqlite")]
pub use crate::guard::ASSIGNABLE_PRAGMAS;
