//! `litepool check`: build every pool, take all of its connections at once, and read every pragma
//! back on each. The verification the original team never had.
//!
//! [`check_connections`] does the reading for any [`crate::PragmaConnection`], so an application
//! gets the same rows for connections of its own pool; `check` (feature `sqlite`) builds
//! litepool's pools from settings and reads them through it.

use std::path::PathBuf;

use serde::Serialize;

use crate::budget::Budget;
use crate::file::FileState;
use crate::profile::{Raw, Scope};
use crate::stats::PoolStats;

mod connections;
#[cfg(feature = "sqlite")]
mod run;

pub use connections::{check_connections, ConnectionsReport};
#[cfg(feature = "sqlite")]
pub use run::{check, check_with};

/// How `check` treats an existing database file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckOptions {
    /// Switch an existing file's `journal_mode` to the configured one (`litepool check
    /// --apply`), under an exclusive lock: refused, nothing changed, when another connection
    /// holds the database. Default: false, the file's settings are only read and a difference is
    /// reported as [`Outcome::WouldChange`].
    pub apply: bool,
}

impl CheckOptions {
    /// Sets [`CheckOptions::apply`].
    pub fn apply(mut self, apply: bool) -> Self {
        self.apply = apply;
        self
    }
}

/// What became of one pragma in a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Set and read back on every connection: see [`Row::connections_ok`].
    Read,
    /// A setting stored in an existing file that differs from the configuration, left as it is
    /// (`check` without `--apply`): [`Row::sqlite`] is the file's value, [`Row::wanted`] what
    /// `--apply` would switch it to.
    WouldChange,
    /// Setting or reading it failed: the database's `error` says why, once.
    Failed,
    /// Not checked, because a pragma before it failed.
    NotChecked,
}

/// One pragma of one database, over all its connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The pragma.
    pub pragma: &'static str,
    /// The value in the user's units.
    pub configured: String,
    /// What SQLite must report.
    pub wanted: Raw,
    /// What SQLite reported: the first differing value, else the common one (empty text when
    /// nothing was read: [`Outcome::Failed`], [`Outcome::NotChecked`]).
    pub sqlite: Raw,
    /// Where SQLite keeps it.
    pub scope: Scope,
    /// Connections that reported `wanted`.
    pub connections_ok: u32,
    /// Connections read.
    pub connections: u32,
    /// What became of it.
    pub outcome: Outcome,
}

impl Row {
    /// True when it was read back and every connection reported `wanted`.
    pub fn ok(&self) -> bool {
        self.outcome == Outcome::Read
            && self.connections > 0
            && self.connections_ok == self.connections
    }
}

/// The check of one database.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseReport {
    /// The name.
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// The profile name.
    pub profile: String,
    /// The file as found before the check.
    pub file_before: FileState,
    /// The file after the check: the settings SQLite stores in it.
    pub file_after: Option<FileState>,
    /// Connections checked out at once and verified.
    pub connections: u32,
    /// Per pragma.
    pub pragmas: Vec<Row>,
    /// The pool after the check, if it was built.
    pub pool: Option<PoolStats>,
    /// Why verification failed, if it did: said once, here, not per pragma.
    pub error: Option<String>,
    /// What `check --apply` changed in the file, e.g. `journal_mode wal -> delete`.
    pub applied: Option<String>,
    /// For a replicated database's writing pool: whether the settings fit its replication
    /// (`"litestream: settings fit"`, or the lint codes that say why not).
    pub replication: Option<String>,
    /// True when `error` is a file or connection problem (exit 2), not a pragma that did not
    /// take effect (exit 1).
    pub file_error: bool,
    /// True when every pragma read back as asked on every connection.
    pub verified: bool,
}

/// The whole check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The environment name.
    pub env: String,
    /// The configuration sources read.
    pub sources: Vec<String>,
    /// Per database, by name.
    pub databases: Vec<DatabaseReport>,
    /// Page-cache memory against `limits.memory_budget`.
    pub memory: Budget,
    /// Warnings, e.g. over budget when not enforced.
    pub warnings: Vec<String>,
    /// The profile lint: unsafe or surprising settings.
    pub lint: Vec<crate::lint::Finding>,
    /// True when every database verified.
    pub verified: bool,
}

impl CheckReport {
    /// 0 when everything verified, 1 when something is not in force (a pragma did not take
    /// effect, or an existing file stores a setting differently: [`Outcome::WouldChange`]) or the
    /// lint has an error (with `strict`, also a warning), 2 when a database file could not be
    /// used (including `--apply` refused because another connection holds the database).
    pub fn exit_code(&self, strict: bool) -> u8 {
        if self.databases.iter().any(|d| d.file_error) {
            return 2;
        }
        use crate::lint::Level;
        let lint_fails = self
            .lint
            .iter()
            .any(|f| f.level == Level::Error || (strict && f.level == Level::Warning));
        if self.verified && !lint_fails {
            0
        } else {
            1
        }
    }
}
