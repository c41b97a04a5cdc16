//! [`PragmaConnection`]: what litepool needs of a connection to apply and verify a profile.
//!
//! Applying a profile is three operations: assign a pragma, read a pragma back, run one fixed
//! statement. The order, the bootstrap of file-level pragmas and the read-back live once, in
//! [`crate::Profile`] and [`crate::PragmaCustomizer`]; each connection type only says how to run
//! those operations. Implemented for `rusqlite::Connection` (feature `sqlite`) and, behind
//! features, for diesel's `SqliteConnection` (`litepool::diesel`, feature `diesel`). An
//! application on another rusqlite implements it on a newtype around its own connection (see
//! the README, "Using litepool's profiles with the rusqlite you already have").

#[cfg(feature = "sqlite")]
use rusqlite::types::{ToSqlOutput, Value};
#[cfg(feature = "sqlite")]
use rusqlite::ToSql;
use serde::Serialize;

use crate::pragma::TransactionMode;

pub use crate::error::PragmaError;

/// A value as SQLite takes or reports it: an integer or (lowercase) text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Raw {
    /// An integer.
    Int(i64),
    /// Text, lowercase.
    Text(String),
}

impl Raw {
    /// This value in words next to `other`: as [`Display`](std::fmt::Display) does, with the type
    /// added when both would print alike but differ (`"1" (text)` against `1 (integer)`).
    pub fn shown_against(&self, other: &Raw) -> String {
        if self != other && self.to_string() == other.to_string() {
            match self {
                Raw::Int(i) => format!("{i} (integer)"),
                Raw::Text(t) => format!("{t:?} (text)"),
            }
        } else {
            self.to_string()
        }
    }
}

impl std::fmt::Display for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Raw::Int(i) => i.fmt(f),
            Raw::Text(s) => s.fmt(f),
        }
    }
}

#[cfg(feature = "sqlite")]
impl ToSql for Raw {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Raw::Int(i) => i.to_sql(),
            Raw::Text(s) => s.to_sql(),
        }
    }
}

/// A connection a [`crate::Profile`] can be applied to and read back from.
///
/// `pragma` is always a name from litepool's fixed list and `value` a typed value, so an
/// implementation may put them into SQL text; nothing a user typed reaches it unvalidated.
pub trait PragmaConnection {
    /// `PRAGMA <pragma> = <value>`.
    fn set_pragma(&mut self, pragma: &'static str, value: &Raw) -> Result<(), PragmaError>;
    /// `PRAGMA <pragma>`: the first column of its first row, integers as [`Raw::Int`] and text
    /// lowercased as [`Raw::Text`].
    fn get_pragma(&mut self, pragma: &'static str) -> Result<Raw, PragmaError>;
    /// Runs one fixed statement, e.g. `PRAGMA optimize=0x10002`.
    fn execute_fixed(&mut self, sql: &'static str) -> Result<(), PragmaError>;
    /// Sets the connection's default transaction behaviour, for drivers that have one
    /// (rusqlite's `Connection::transaction()`). Default: nothing.
    fn set_transaction_mode(&mut self, _mode: TransactionMode) {}
}

/// A connection borrowed from a pool (or a `Vec`) is one as well.
impl<C: PragmaConnection + ?Sized> PragmaConnection for &mut C {
    fn set_pragma(&mut self, pragma: &'static str, value: &Raw) -> Result<(), PragmaError> {
        (**self).set_pragma(pragma, value)
    }

    fn get_pragma(&mut self, pragma: &'static str) -> Result<Raw, PragmaError> {
        (**self).get_pragma(pragma)
    }

    fn execute_fixed(&mut self, sql: &'static str) -> Result<(), PragmaError> {
        (**self).execute_fixed(sql)
    }

    fn set_transaction_mode(&mut self, mode: TransactionMode) {
        (**self).set_transaction_mode(mode)
    }
}

/// SQLite's value as litepool compares it.
#[cfg(feature = "sqlite")]
pub(crate) fn raw(value: Value) -> Raw {
    match value {
        Value::Integer(i) => Raw::Int(i),
        Value::Text(t) => Raw::Text(t.to_lowercase()),
        other => Raw::Text(format!("{other:?}")),
    }
}

#[cfg(feature = "sqlite")]
impl PragmaConnection for rusqlite::Connection {
    fn set_pragma(&mut self, pragma: &'static str, value: &Raw) -> Result<(), PragmaError> {
        Ok(self.pragma_update(None, pragma, value)?)
    }

    fn get_pragma(&mut self, pragma: &'static str) -> Result<Raw, PragmaError> {
        Ok(raw(self.pragma_query_value(None, pragma, |r| {
            r.get::<_, Value>(0)
        })?))
    }

    fn execute_fixed(&mut self, sql: &'static str) -> Result<(), PragmaError> {
        Ok(self.execute_batch(sql)?)
    }

    fn set_transaction_mode(&mut self, mode: TransactionMode) {
        self.set_transaction_behavior(mode.into());
    }
}
