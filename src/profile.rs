//! [`PragmaSet`], the pragma keys of a TOML profile, and [`Profile`], the validated, ordered plan
//! that is applied to a connection and read back.
//!
//! # Apply order
//! 1. `busy_timeout`: first, so that every later pragma waits for locks instead of failing.
//! 2. `locking_mode`: before `journal_mode`; WAL entered under `exclusive` skips the shared-memory
//!    file and cannot return to `normal` until WAL is left.
//! 3. `page_size`, `auto_vacuum`: only on a new, empty database, before anything writes its header.
//! 4. `journal_mode`: switched once per database, on the first (bootstrap) connection. `wal` is
//!    stored in the file, so later connections only verify it; the other modes are per connection
//!    and are set on each.
//! 5. `synchronous`: after the journal mode it depends on.
//! 6. The per-connection rest: `foreign_keys`, `temp_store`, `cache_size`, `mmap_size`,
//!    `wal_autocheckpoint`, `journal_size_limit`, `trusted_schema`, `secure_delete`,
//!    `cell_size_check`, `analysis_limit`.
//! 7. `query_only`: last, so that nothing before it is refused as a write.
//!
//! None of these run inside a transaction (`foreign_keys` and `synchronous` cannot change there).
//! Every pragma is then read back: a misspelled or refused pragma is silent in SQLite.

use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::{Connection, ToSql};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pragma::*;

/// The pragma keys of a `[profiles.<name>]` or `[databases.<name>.pragmas]` table.
///
/// Every key is optional: `None` leaves SQLite's default in force. Unknown keys are an error.
/// Each field's type documents its default and links to sqlite.org.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PragmaSet {
    /// Allow `journal_mode` `memory`/`off`, `synchronous = "off"` and
    /// `locking_mode = "exclusive"`. Default: false.
    pub allow_unsafe: Option<bool>,
    /// Make `litepool check` and [`crate::Pools::new`] fail when the worst-case page-cache memory
    /// is over `limits.memory_budget`. Default: false (a warning).
    pub enforce_budget: Option<bool>,
    /// The default behaviour of rusqlite's `Connection::transaction()`. Default: deferred.
    pub transaction_behavior: Option<TransactionMode>,
    /// Run `PRAGMA optimize=0x10002` when a connection opens, as
    /// <https://sqlite.org/pragma.html#pragma_optimize> advises for long-lived connections
    /// (before `query_only`, since it may run ANALYZE). Not read back. Default: false.
    pub optimize_on_open: Option<bool>,
    /// See [`BusyTimeout`]. Default: rusqlite's 5s.
    pub busy_timeout: Option<BusyTimeout>,
    /// See [`LockingMode`]. Default: normal.
    pub locking_mode: Option<LockingMode>,
    /// See [`PageSize`]. Default: 4096, only for a new file.
    pub page_size: Option<PageSize>,
    /// See [`AutoVacuum`]. Default: none, only for a new file.
    pub auto_vacuum: Option<AutoVacuum>,
    /// See [`JournalMode`]. Default: delete.
    pub journal_mode: Option<JournalMode>,
    /// See [`Synchronous`]. Default: full.
    pub synchronous: Option<Synchronous>,
    /// Enforce foreign key constraints (<https://sqlite.org/pragma.html#pragma_foreign_keys>).
    /// Default: false.
    pub foreign_keys: Option<bool>,
    /// See [`TempStore`]. Default: default.
    pub temp_store: Option<TempStore>,
    /// See [`CacheSize`]. Default: 2000KiB per connection.
    pub cache_size: Option<CacheSize>,
    /// See [`MmapSize`]. Default: 0 (off).
    pub mmap_size: Option<MmapSize>,
    /// Pages in the WAL before an automatic checkpoint
    /// (<https://sqlite.org/pragma.html#pragma_wal_autocheckpoint>). Default: 1000; 0 disables.
    pub wal_autocheckpoint: Option<u32>,
    /// Size the WAL or journal is truncated to after use
    /// (<https://sqlite.org/pragma.html#pragma_journal_size_limit>). Default: no limit.
    pub journal_size_limit: Option<ByteSize>,
    /// Let schema-defined SQL functions run (<https://sqlite.org/pragma.html#pragma_trusted_schema>).
    /// Default: true in the bundled build.
    pub trusted_schema: Option<bool>,
    /// Refuse every write (<https://sqlite.org/pragma.html#pragma_query_only>). Default: false.
    pub query_only: Option<bool>,
    /// See [`SecureDelete`]. Default: off.
    pub secure_delete: Option<SecureDelete>,
    /// Extra b-tree cell checks (<https://sqlite.org/pragma.html#pragma_cell_size_check>).
    /// Default: false.
    pub cell_size_check: Option<bool>,
    /// Rows `ANALYZE` looks at per index (<https://sqlite.org/pragma.html#pragma_analysis_limit>).
    /// Default: 0 (all).
    pub analysis_limit: Option<u32>,
}

impl PragmaSet {
    /// Every key of `over` that is set replaces the same key of `self`.
    pub fn overlay(&self, over: &PragmaSet) -> PragmaSet {
        macro_rules! pick {
            ($($f:ident),+) => { PragmaSet { $($f: over.$f.or(self.$f)),+ } };
        }
        pick!(
            allow_unsafe,
            enforce_budget,
            transaction_behavior,
            optimize_on_open,
            busy_timeout,
            locking_mode,
            page_size,
            auto_vacuum,
            journal_mode,
            synchronous,
            foreign_keys,
            temp_store,
            cache_size,
            mmap_size,
            wal_autocheckpoint,
            journal_size_limit,
            trusted_schema,
            query_only,
            secure_delete,
            cell_size_check,
            analysis_limit
        )
    }
}

/// A value as SQLite takes or reports it: an integer or (lowercase) text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Raw {
    /// An integer.
    Int(i64),
    /// Text, lowercase.
    Text(String),
}

impl std::fmt::Display for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Raw::Int(i) => i.fmt(f),
            Raw::Text(s) => s.fmt(f),
        }
    }
}

impl ToSql for Raw {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Raw::Int(i) => i.to_sql(),
            Raw::Text(s) => s.to_sql(),
        }
    }
}

/// Where SQLite keeps a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Stored in the database file: set once, seen by every connection.
    File,
    /// Held by each connection: set on every new connection.
    Connection,
}

/// One pragma of a profile: what to set and what reading it back must give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// The pragma name, from a fixed list.
    pub pragma: &'static str,
    /// The value in the user's units, e.g. `500MiB`.
    pub configured: String,
    /// The value given to SQLite.
    pub set: Raw,
    /// The value SQLite must report when read back.
    pub expect: Raw,
    /// Where SQLite keeps it.
    pub scope: Scope,
}

/// One pragma read back from a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reading {
    /// The pragma name.
    pub pragma: &'static str,
    /// The value in the user's units.
    pub configured: String,
    /// What SQLite must report.
    pub wanted: Raw,
    /// What SQLite reported.
    pub actual: Raw,
    /// Where SQLite keeps it.
    pub scope: Scope,
}

impl Reading {
    /// True when SQLite reports what was asked.
    pub fn ok(&self) -> bool {
        self.wanted == self.actual
    }
}

/// A validated pragma profile: a [`PragmaSet`] whose unsafe values are allowed, in apply order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    name: String,
    set: PragmaSet,
    settings: Vec<Setting>,
}

fn text(s: &str) -> Raw {
    Raw::Text(s.to_owned())
}

fn flag(b: bool) -> Raw {
    Raw::Int(b.into())
}

impl Profile {
    /// Validates `set`: `journal_mode` memory/off, `synchronous` off and `locking_mode` exclusive
    /// need `allow_unsafe = true`. The error names the pragma and the value.
    pub fn new(name: impl Into<String>, set: PragmaSet) -> Result<Self> {
        let name = name.into();
        if !set.allow_unsafe.unwrap_or(false) {
            let unsafe_value = [
                set.journal_mode
                    .filter(|m| m.is_unsafe())
                    .map(|m| ("journal_mode", m.to_string())),
                set.synchronous
                    .filter(|m| m.is_unsafe())
                    .map(|m| ("synchronous", m.to_string())),
                set.locking_mode
                    .filter(|m| m.is_unsafe())
                    .map(|m| ("locking_mode", m.to_string())),
            ];
            if let Some((pragma, value)) = unsafe_value.into_iter().flatten().next() {
                return Err(Error::Config {
                    origin: format!("profile {name:?}"),
                    key: Some(pragma.to_owned()),
                    message: format!(
                        "{pragma} = {value:?} is unsafe (a crash can corrupt or lock out the \
                         database); set allow_unsafe = true in the same profile to use it"
                    ),
                });
            }
        }
        let settings = Self::plan(&set);
        Ok(Profile {
            name,
            set,
            settings,
        })
    }

    fn plan(s: &PragmaSet) -> Vec<Setting> {
        let mut out = Vec::new();
        let mut push = |pragma, configured: String, set: Raw, expect: Raw, scope| {
            out.push(Setting {
                pragma,
                configured,
                set,
                expect,
                scope,
            })
        };
        use Scope::{Connection as C, File as F};
        if let Some(v) = s.busy_timeout {
            push(
                "busy_timeout",
                v.to_string(),
                Raw::Int(v.millis()),
                Raw::Int(v.millis()),
                C,
            );
        }
        if let Some(v) = s.locking_mode {
            push(
                "locking_mode",
                v.to_string(),
                text(v.as_str()),
                text(v.as_str()),
                C,
            );
        }
        if let Some(v) = s.page_size {
            let n = i64::from(v.bytes());
            push("page_size", v.to_string(), Raw::Int(n), Raw::Int(n), F);
        }
        if let Some(v) = s.auto_vacuum {
            push(
                "auto_vacuum",
                v.to_string(),
                text(v.as_str()),
                Raw::Int(v.code()),
                F,
            );
        }
        if let Some(v) = s.journal_mode {
            let scope = if v == JournalMode::Wal { F } else { C };
            push(
                "journal_mode",
                v.to_string(),
                text(v.as_str()),
                text(v.as_str()),
                scope,
            );
        }
        if let Some(v) = s.synchronous {
            push(
                "synchronous",
                v.to_string(),
                text(v.as_str()),
                Raw::Int(v.code()),
                C,
            );
        }
        if let Some(v) = s.foreign_keys {
            push("foreign_keys", v.to_string(), flag(v), flag(v), C);
        }
        if let Some(v) = s.temp_store {
            push(
                "temp_store",
                v.to_string(),
                text(v.as_str()),
                Raw::Int(v.code()),
                C,
            );
        }
        if let Some(v) = s.cache_size {
            let n = v.pragma_value();
            push("cache_size", v.to_string(), Raw::Int(n), Raw::Int(n), C);
        }
        if let Some(v) = s.mmap_size {
            let n = v.bytes() as i64;
            push("mmap_size", v.to_string(), Raw::Int(n), Raw::Int(n), C);
        }
        if let Some(v) = s.wal_autocheckpoint {
            let n = i64::from(v);
            push(
                "wal_autocheckpoint",
                v.to_string(),
                Raw::Int(n),
                Raw::Int(n),
                C,
            );
        }
        if let Some(v) = s.journal_size_limit {
            let n = i64::try_from(v.bytes()).unwrap_or(i64::MAX);
            push(
                "journal_size_limit",
                v.to_string(),
                Raw::Int(n),
                Raw::Int(n),
                C,
            );
        }
        if let Some(v) = s.trusted_schema {
            push("trusted_schema", v.to_string(), flag(v), flag(v), C);
        }
        if let Some(v) = s.secure_delete {
            push(
                "secure_delete",
                v.to_string(),
                text(v.as_str()),
                Raw::Int(v.code()),
                C,
            );
        }
        if let Some(v) = s.cell_size_check {
            push("cell_size_check", v.to_string(), flag(v), flag(v), C);
        }
        if let Some(v) = s.analysis_limit {
            let n = i64::from(v);
            push("analysis_limit", v.to_string(), Raw::Int(n), Raw::Int(n), C);
        }
        if let Some(v) = s.query_only {
            push("query_only", v.to_string(), flag(v), flag(v), C);
        }
        out
    }

    /// The profile's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pragma keys as configured.
    pub fn pragmas(&self) -> &PragmaSet {
        &self.set
    }

    /// The settings in apply order.
    pub fn settings(&self) -> &[Setting] {
        &self.settings
    }

    /// Applies the profile to a connection, in the documented order, without reading back.
    ///
    /// With `first = true` (the bootstrap connection of a database) this also switches
    /// `journal_mode` and, if the database is still empty, sets `page_size` and `auto_vacuum` and
    /// writes the header so that they are fixed. Otherwise file-level settings are left to be
    /// verified.
    pub fn apply(&self, conn: &mut Connection, database: &str, first: bool) -> Result<()> {
        let err = |pragma: &'static str| {
            move |source| Error::Pragma {
                database: database.to_owned(),
                pragma,
                source,
            }
        };
        let new_file = first
            && conn
                .pragma_query_value(None, "page_count", |r| r.get::<_, i64>(0))
                .map_err(err("page_count"))?
                == 0;
        // Done after every other setting but before `query_only`, which would refuse them.
        let finish = || -> Result<()> {
            if new_file {
                // Write the header now, so page_size and auto_vacuum are fixed for every connection.
                conn.pragma_update(None, "user_version", 0)
                    .map_err(err("user_version"))?;
            }
            if self.set.optimize_on_open == Some(true) {
                conn.execute_batch("PRAGMA optimize=0x10002")
                    .map_err(err("optimize"))?;
            }
            Ok(())
        };
        let mut finished = false;
        for s in &self.settings {
            if s.pragma == "query_only" {
                finish()?;
                finished = true;
            }
            let run = match s.pragma {
                "page_size" | "auto_vacuum" => new_file,
                "journal_mode" => first || s.scope == Scope::Connection,
                _ => true,
            };
            if run {
                conn.pragma_update(None, s.pragma, &s.set)
                    .map_err(err(s.pragma))?;
            }
        }
        if !finished {
            finish()?;
        }
        if let Some(t) = self.set.transaction_behavior {
            conn.set_transaction_behavior(t.into());
        }
        Ok(())
    }

    /// Reads every pragma of the profile back from `conn`.
    pub fn read_back(&self, conn: &Connection, database: &str) -> Result<Vec<Reading>> {
        self.settings
            .iter()
            .map(|s| {
                let actual = conn
                    .pragma_query_value(None, s.pragma, |r| r.get::<_, Value>(0))
                    .map_err(|source| Error::Pragma {
                        database: database.to_owned(),
                        pragma: s.pragma,
                        source,
                    })?;
                let actual = match actual {
                    Value::Integer(i) => Raw::Int(i),
                    Value::Text(t) => Raw::Text(t.to_lowercase()),
                    other => Raw::Text(format!("{other:?}")),
                };
                Ok(Reading {
                    pragma: s.pragma,
                    configured: s.configured.clone(),
                    wanted: s.expect.clone(),
                    actual,
                    scope: s.scope,
                })
            })
            .collect()
    }

    /// Reads every pragma back and fails on the first that differs from what was asked.
    pub fn verify(&self, conn: &Connection, database: &str) -> Result<Vec<Reading>> {
        let readings = self.read_back(conn, database)?;
        if let Some(r) = readings.iter().find(|r| !r.ok()) {
            return Err(Error::Mismatch {
                database: database.to_owned(),
                pragma: r.pragma,
                wanted: r.wanted.to_string(),
                actual: r.actual.to_string(),
            });
        }
        Ok(readings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(f: impl FnOnce(&mut PragmaSet)) -> PragmaSet {
        let mut s = PragmaSet::default();
        f(&mut s);
        s
    }

    #[test]
    fn unsafe_values_need_allow_unsafe() {
        let off = set(|s| s.synchronous = Some(Synchronous::Off));
        let e = Profile::new("p", off.clone()).unwrap_err().to_string();
        assert!(e.contains("synchronous = \"off\" is unsafe"), "{e}");
        assert!(Profile::new("p", off.overlay(&set(|s| s.allow_unsafe = Some(true)))).is_ok());
    }

    #[test]
    fn busy_timeout_first_and_query_only_last() {
        let p = Profile::new(
            "p",
            set(|s| {
                s.query_only = Some(true);
                s.journal_mode = Some(JournalMode::Wal);
                s.busy_timeout = Some("1s".parse().unwrap());
                s.synchronous = Some(Synchronous::Normal);
            }),
        )
        .unwrap();
        let order: Vec<_> = p.settings().iter().map(|s| s.pragma).collect();
        assert_eq!(
            order,
            ["busy_timeout", "journal_mode", "synchronous", "query_only"]
        );
    }

    #[test]
    fn applies_and_reads_back_in_memory() -> Result<()> {
        let p = Profile::new(
            "p",
            set(|s| {
                s.cache_size = Some("500MiB".parse().unwrap());
                s.synchronous = Some(Synchronous::Normal);
                s.temp_store = Some(TempStore::Memory);
                s.secure_delete = Some(SecureDelete::Fast);
            }),
        )?;
        let mut conn = Connection::open_in_memory().unwrap();
        p.apply(&mut conn, "mem", true)?;
        let r = p.verify(&conn, "mem")?;
        assert_eq!(r[0].actual, Raw::Int(1)); // synchronous normal
        assert_eq!(r[2].actual, Raw::Int(-512_000));
        assert_eq!(r[3].actual, Raw::Int(2)); // secure_delete fast
        Ok(())
    }

    #[test]
    fn journal_mode_wal_on_memory_is_a_mismatch() {
        let p = Profile::new("p", set(|s| s.journal_mode = Some(JournalMode::Wal))).unwrap();
        let mut conn = Connection::open_in_memory().unwrap();
        p.apply(&mut conn, "mem", true).unwrap();
        let e = p.verify(&conn, "mem").unwrap_err().to_string();
        assert_eq!(
            e,
            "database \"mem\": pragma journal_mode did not take effect: wanted wal, sqlite reports memory"
        );
    }
}
