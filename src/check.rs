//! `litepool check`: build every pool, take all of its connections at once, and read every pragma
//! back on each. The verification the original team never had.

use std::path::PathBuf;

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::file::FileState;
use crate::pools::{preflight, NamedPool};
use crate::profile::{Raw, Reading, Scope};
use crate::settings::{DatabaseSettings, PoolSpec, Settings};
use crate::stats::PoolStats;

/// One pragma of one database, over all its connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The pragma.
    pub pragma: &'static str,
    /// The value in the user's units.
    pub configured: String,
    /// What SQLite must report.
    pub wanted: Raw,
    /// What SQLite reported: the first differing value, else the common one.
    pub sqlite: Raw,
    /// Where SQLite keeps it.
    pub scope: Scope,
    /// Connections that reported `wanted`.
    pub connections_ok: u32,
    /// Connections read.
    pub connections: u32,
}

impl Row {
    /// True when every connection reported `wanted`.
    pub fn ok(&self) -> bool {
        self.connections > 0 && self.connections_ok == self.connections
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
    /// Why verification failed, if it did.
    pub error: Option<String>,
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
    /// 0 when everything verified, 1 when something did not take effect or the lint has an
    /// error (with `strict`, also a warning), 2 when a database file could not be used.
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

/// Runs the check. `Err` is a configuration or file error found before any database was touched
/// (exit code 2); a setting that did not take effect is reported in the [`CheckReport`].
pub fn check(settings: &Settings, progress: &mut dyn FnMut(&str)) -> Result<CheckReport> {
    let files = preflight(settings)?;
    let memory = Budget::new(settings, &files);
    let mut warnings = Vec::new();
    if memory.over() {
        warnings.push(format!(
            "memory budget exceeded: worst case {} (max_size x cache_size over all pools) is over limits.memory_budget = {}; set enforce_budget = true in a profile to make this an error",
            crate::budget::human(memory.worst_case),
            crate::budget::human(memory.budget.unwrap_or(0)),
        ));
    }
    let lint = crate::lint::lint(settings, &memory);
    let replication_of = |db: &DatabaseSettings, spec: &PoolSpec| {
        if db.replication == crate::settings::Replication::None || !spec.role.writes() {
            return None;
        }
        let codes: Vec<_> = lint
            .iter()
            .filter(|f| {
                f.database == spec.name
                    && (f.code.starts_with("replication") || f.code.starts_with("litefs"))
            })
            .filter(|f| f.level != crate::lint::Level::Notice)
            .map(|f| format!("{:?} {}", f.level, f.code).to_lowercase())
            .collect();
        Some(if codes.is_empty() {
            format!("{}: settings fit", db.replication)
        } else {
            format!(
                "{}: settings do not fit ({})",
                db.replication,
                codes.join(", ")
            )
        })
    };
    let databases: Vec<DatabaseReport> = settings
        .databases
        .values()
        .zip(files)
        .flat_map(|(db, file)| db.pools().into_iter().map(move |spec| (db, spec, file)))
        .map(|(db, spec, file)| {
            progress(&format!(
                "{}: opening {} connection(s) and verifying every pragma",
                spec.name, spec.pool.max_size
            ));
            let mut report = match crate::pools::litefs_primary(db) {
                Err(e) => {
                    // A `.primary` that says nothing clear: nothing is opened.
                    let mut r = not_opened(db, &spec, file);
                    r.error = Some(e.to_string());
                    r.file_error = true;
                    return r;
                }
                Ok(Some(primary)) if spec.role.writes() => {
                    // Pools::new opens no writer on a LiteFS replica; neither does check.
                    let mut r = not_opened(db, &spec, file);
                    r.replication = Some(format!(
                        "litefs: this node is a replica (the primary is {primary}): the writer is not opened here"
                    ));
                    r.verified = true;
                    return r;
                }
                _ => check_one(db, &spec, file),
            };
            report.replication = replication_of(db, &spec);
            report
        })
        .collect();
    Ok(CheckReport {
        env: settings.env.clone(),
        sources: settings.sources.clone(),
        verified: databases.iter().all(|d| d.verified),
        databases,
        memory,
        warnings,
        lint,
    })
}

/// The report of a pool that is not opened.
fn not_opened(db: &DatabaseSettings, spec: &PoolSpec, file_before: FileState) -> DatabaseReport {
    DatabaseReport {
        name: spec.name.clone(),
        path: db.path.clone(),
        profile: spec.profile.name().to_owned(),
        file_before,
        file_after: None,
        connections: 0,
        pragmas: Vec::new(),
        pool: None,
        error: None,
        replication: None,
        file_error: false,
        verified: false,
    }
}

fn check_one(db: &DatabaseSettings, spec: &PoolSpec, file_before: FileState) -> DatabaseReport {
    let mut report = not_opened(db, spec, file_before);

    let mut readings: Vec<Vec<Reading>> = Vec::new();
    match NamedPool::open(db, spec) {
        Ok(pool) => {
            let conns: Result<Vec<_>, _> = (0..spec.pool.max_size).map(|_| pool.get()).collect();
            match conns {
                Ok(mut conns) => {
                    for c in &mut conns {
                        match spec.profile.read_back(&mut **c, &spec.name) {
                            Ok(r) => readings.push(r),
                            Err(e) => report.error = Some(e.to_string()),
                        }
                    }
                    report.connections = conns.len() as u32;
                }
                Err(e) => {
                    report.file_error = !e.is_mismatch();
                    report.error = Some(e.to_string());
                }
            }
            report.pool = Some(pool.stats());
        }
        Err(e) => {
            report.file_error = !e.is_mismatch();
            report.error = Some(e.to_string());
            // Show what SQLite reports on a plain connection with the profile applied.
            if let Ok(r) = diagnose(db, spec) {
                report.connections = 1;
                readings.push(r);
            }
        }
    }
    // The header only: quick_check ran before anything was written (file_before).
    let mut header_only = db.clone();
    header_only.check_integrity = false;
    report.file_after = crate::file::inspect(&header_only).ok();
    report.pragmas = aggregate(&readings);
    report.verified = report.error.is_none() && report.pragmas.iter().all(Row::ok);
    report
}

fn diagnose(db: &DatabaseSettings, spec: &PoolSpec) -> Result<Vec<Reading>> {
    let mut conn = Connection::open_with_flags(&db.path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|source| Error::Sqlite {
            database: spec.name.clone(),
            source,
        })?;
    let _ = spec.profile.apply(&mut conn, &spec.name, false);
    spec.profile.read_back(&mut conn, &spec.name)
}

fn aggregate(readings: &[Vec<Reading>]) -> Vec<Row> {
    let Some(first) = readings.first() else {
        return Vec::new();
    };
    first
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let all = readings.iter().map(|c| &c[i]);
            let bad = all.clone().find(|x| !x.ok());
            Row {
                pragma: r.pragma,
                configured: r.configured.clone(),
                wanted: r.wanted.clone(),
                sqlite: bad.unwrap_or(r).actual.clone(),
                scope: r.scope,
                connections_ok: all.filter(|x| x.ok()).count() as u32,
                connections: readings.len() as u32,
            }
        })
        .collect()
}
