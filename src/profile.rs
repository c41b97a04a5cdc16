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

use crate::connection::PragmaConnection;
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
    /// Make `litepool check` and `Pools::new` fail when the worst-case page-cache memory
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
    #[serde(default, deserialize_with = "crate::strict::count")]
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
    #[serde(default, deserialize_with = "crate::strict::count")]
    pub analysis_limit: Option<u32>,
}

impl PragmaSet {
    /// True when this set gives `pragma` a value.
    pub fn sets(&self, pragma: &str) -> bool {
        PLAN.iter()
            .any(|step| step.pragma == pragma && (step.value)(self).is_some())
    }

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

pub use crate::connection::Raw;

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

/// How one pragma of a [`PragmaSet`] becomes a [`Setting`]: its value in the user's units, the
/// value given to SQLite and the value SQLite must read back, or `None` when the key is unset.
type Extract = fn(&PragmaSet) -> Option<(String, Raw, Raw)>;

/// One row of the apply plan.
struct Step {
    pragma: &'static str,
    scope: Scope,
    value: Extract,
}

fn same<T: ToString>(v: T, raw: Raw) -> (String, Raw, Raw) {
    (v.to_string(), raw.clone(), raw)
}

fn int(n: impl Into<i64>) -> Raw {
    Raw::Int(n.into())
}

use Scope::{Connection as C, File as F};

/// The apply plan: every pragma a profile can set, in the order of the module docs. A
/// `journal_mode` other than `wal` is held per connection (see [`Profile::plan`]).
const PLAN: &[Step] = &[
    Step {
        pragma: "busy_timeout",
        scope: C,
        value: |s| s.busy_timeout.map(|v| same(v, int(v.millis()))),
    },
    Step {
        pragma: "locking_mode",
        scope: C,
        value: |s| s.locking_mode.map(|v| same(v, text(v.as_str()))),
    },
    Step {
        pragma: "page_size",
        scope: F,
        value: |s| s.page_size.map(|v| same(v, int(v.bytes()))),
    },
    Step {
        pragma: "auto_vacuum",
        scope: F,
        value: |s| {
            s.auto_vacuum
                .map(|v| (v.to_string(), text(v.as_str()), int(v.code())))
        },
    },
    Step {
        pragma: "journal_mode",
        scope: F,
        value: |s| s.journal_mode.map(|v| same(v, text(v.as_str()))),
    },
    Step {
        pragma: "synchronous",
        scope: C,
        value: |s| {
            s.synchronous
                .map(|v| (v.to_string(), text(v.as_str()), int(v.code())))
        },
    },
    Step {
        pragma: "foreign_keys",
        scope: C,
        value: |s| s.foreign_keys.map(|v| same(v, flag(v))),
    },
    Step {
        pragma: "temp_store",
        scope: C,
        value: |s| {
            s.temp_store
                .map(|v| (v.to_string(), text(v.as_str()), int(v.code())))
        },
    },
    Step {
        pragma: "cache_size",
        scope: C,
        value: |s| s.cache_size.map(|v| same(v, int(v.pragma_value()))),
    },
    Step {
        pragma: "mmap_size",
        scope: C,
        value: |s| s.mmap_size.map(|v| same(v, int(v.bytes() as i64))),
    },
    Step {
        pragma: "wal_autocheckpoint",
        scope: C,
        value: |s| s.wal_autocheckpoint.map(|v| same(v, int(v))),
    },
    Step {
        pragma: "journal_size_limit",
        scope: C,
        value: |s| {
            s.journal_size_limit
                .map(|v| same(v, int(i64::try_from(v.bytes()).unwrap_or(i64::MAX))))
        },
    },
    Step {
        pragma: "trusted_schema",
        scope: C,
        value: |s| s.trusted_schema.map(|v| same(v, flag(v))),
    },
    Step {
        pragma: "secure_delete",
        scope: C,
        value: |s| {
            s.secure_delete
                .map(|v| (v.to_string(), text(v.as_str()), int(v.code())))
        },
    },
    Step {
        pragma: "cell_size_check",
        scope: C,
        value: |s| s.cell_size_check.map(|v| same(v, flag(v))),
    },
    Step {
        pragma: "analysis_limit",
        scope: C,
        value: |s| s.analysis_limit.map(|v| same(v, int(v))),
    },
    Step {
        pragma: "query_only",
        scope: C,
        value: |s| s.query_only.map(|v| same(v, flag(v))),
    },
];

/// Every pragma a profile manages. Application code may read them but not assign them on a
/// pooled connection: the change would stay on the connection for its next borrower.
pub const MANAGED: [&str; 17] = {
    let mut names = [""; 17];
    let mut i = 0;
    while i < PLAN.len() {
        names[i] = PLAN[i].pragma;
        i += 1;
    }
    names
};

impl Profile {
    /// Validates `set`: `journal_mode` memory/off, `synchronous` off and `locking_mode` exclusive
    /// need `allow_unsafe = true`, else [`Error::Unsafe`] names the pragma and the value.
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
                return Err(Error::Unsafe { pragma, value });
            }
        }
        // SQLite keeps these in a 32-bit int: a larger value reads back as something else
        // (0, or the maximum) and no connection would ever verify.
        for (pragma, value) in [
            ("wal_autocheckpoint", set.wal_autocheckpoint),
            ("analysis_limit", set.analysis_limit),
        ] {
            if let Some(v) = value.filter(|v| i32::try_from(*v).is_err()) {
                return Err(Error::Parse(crate::error::ParseValueError::new(
                    pragma,
                    v.to_string(),
                    "0 to 2147483647 (SQLite keeps it in a 32-bit integer)",
                )));
            }
        }
        Ok(Self::unchecked(name, set))
    }

    fn unchecked(name: String, set: PragmaSet) -> Self {
        let settings = Self::plan(&set);
        Profile {
            name,
            set,
            settings,
        }
    }

    /// This profile with a pool role's own keys on top (`query_only`, `transaction_behavior`),
    /// named `"<profile> (<role>)"`. Those keys add nothing unsafe.
    pub(crate) fn with_role(&self, role: &str, keys: &PragmaSet) -> Profile {
        Self::unchecked(format!("{} ({role})", self.name), self.set.overlay(keys))
    }

    /// The settings of `set`, in [`PLAN`] order.
    fn plan(set: &PragmaSet) -> Vec<Setting> {
        PLAN.iter()
            .filter_map(|step| {
                let (configured, value, expect) = (step.value)(set)?;
                let per_connection = step.pragma == "journal_mode" && configured != "wal";
                Some(Setting {
                    pragma: step.pragma,
                    configured,
                    set: value,
                    expect,
                    scope: if per_connection { C } else { step.scope },
                })
            })
            .collect()
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
    pub fn apply<C: PragmaConnection + ?Sized>(
        &self,
        conn: &mut C,
        database: &str,
        first: bool,
    ) -> Result<()> {
        let err = |pragma: &'static str| {
            move |source| Error::Pragma {
                database: database.to_owned(),
                pragma,
                source,
            }
        };
        // busy_timeout first, before anything that may meet a lock (page_count included).
        if let Some(t) = self.set.busy_timeout {
            conn.set_pragma("busy_timeout", &Raw::Int(t.millis()))
                .map_err(err("busy_timeout"))?;
        }
        let new_file =
            first && conn.get_pragma("page_count").map_err(err("page_count"))? == Raw::Int(0);
        // Done after every other setting but before `query_only`, which would refuse them.
        let finish = |conn: &mut C| -> Result<()> {
            if new_file {
                // Write the header now, so page_size and auto_vacuum are fixed for every connection.
                conn.set_pragma("user_version", &Raw::Int(0))
                    .map_err(err("user_version"))?;
            }
            if self.set.optimize_on_open == Some(true) {
                conn.execute_fixed("PRAGMA optimize=0x10002")
                    .map_err(err("optimize"))?;
            }
            Ok(())
        };
        let mut finished = false;
        for s in &self.settings {
            if s.pragma == "query_only" {
                finish(conn)?;
                finished = true;
            }
            let run = match s.pragma {
                "page_size" | "auto_vacuum" => new_file,
                "journal_mode" => first || s.scope == Scope::Connection,
                _ => true,
            };
            if run {
                conn.set_pragma(s.pragma, &s.set).map_err(err(s.pragma))?;
            }
        }
        if !finished {
            finish(conn)?;
        }
        if let Some(t) = self.set.transaction_behavior {
            conn.set_transaction_mode(t);
        }
        Ok(())
    }

    /// Reads every pragma of the profile back from `conn`.
    pub fn read_back<C: PragmaConnection + ?Sized>(
        &self,
        conn: &mut C,
        database: &str,
    ) -> Result<Vec<Reading>> {
        self.settings
            .iter()
            .map(|s| {
                let actual = conn.get_pragma(s.pragma).map_err(|source| Error::Pragma {
                    database: database.to_owned(),
                    pragma: s.pragma,
                    source,
                })?;
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
    pub fn verify<C: PragmaConnection + ?Sized>(
        &self,
        conn: &mut C,
        database: &str,
    ) -> Result<Vec<Reading>> {
        let readings = self.read_back(conn, database)?;
        if let Some(r) = readings.iter().find(|r| !r.ok()) {
            return Err(Error::Mismatch {
                database: database.to_owned(),
                pragma: r.pragma,
                wanted: r.wanted.shown_against(&r.actual),
                actual: r.actual.shown_against(&r.wanted),
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

    #[cfg(feature = "sqlite")]
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
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        p.apply(&mut conn, "mem", true)?;
        let r = p.verify(&mut conn, "mem")?;
        assert_eq!(r[0].actual, Raw::Int(1)); // synchronous normal
        assert_eq!(r[2].actual, Raw::Int(-512_000));
        assert_eq!(r[3].actual, Raw::Int(2)); // secure_delete fast
        Ok(())
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn journal_mode_wal_on_memory_is_a_mismatch() {
        let p = Profile::new("p", set(|s| s.journal_mode = Some(JournalMode::Wal))).unwrap();
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        p.apply(&mut conn, "mem", true).unwrap();
        let e = p.verify(&mut conn, "mem").unwrap_err().to_string();
        assert_eq!(
            e,
            "database \"mem\": pragma journal_mode did not take effect: wanted wal, sqlite reports memory"
        );
    }
}
