//! The check of litepool's own pools (feature `sqlite`): build each, take all of its connections
//! at once, and read every pragma back on each.

use rusqlite::{Connection, OpenFlags};

use crate::budget::Budget;
use crate::check::{check_connections, CheckReport, ConnectionsReport, DatabaseReport, Row};
use crate::error::{Error, Result};
use crate::file::FileState;
use crate::pools::{preflight, NamedPool};
use crate::settings::{DatabaseSettings, PoolSpec, Settings};

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

    let checked = match NamedPool::open(db, spec) {
        Ok(pool) => {
            let conns: Result<Vec<_>, _> = (0..spec.pool.max_size).map(|_| pool.get()).collect();
            let checked = match conns {
                Ok(mut conns) => Some(check_connections(
                    &spec.profile,
                    &spec.name,
                    conns.iter_mut().map(|c| &mut **c),
                )),
                Err(e) => {
                    report.file_error = !e.is_mismatch();
                    report.error = Some(e.to_string());
                    None
                }
            };
            report.pool = Some(pool.stats());
            checked
        }
        Err(e) => {
            report.file_error = !e.is_mismatch();
            report.error = Some(e.to_string());
            // Show what SQLite reports on a plain connection with the profile applied.
            diagnose(db, spec).ok().filter(|c| c.error.is_none())
        }
    };
    if let Some(checked) = checked {
        report.connections = checked.connections;
        report.pragmas = checked.pragmas;
        if let Some(e) = checked.error {
            report.error = Some(e.to_string());
        }
    }
    // The header only: quick_check ran before anything was written (file_before).
    let mut header_only = db.clone();
    header_only.check_integrity = false;
    report.file_after = crate::file::inspect(&header_only).ok();
    report.verified = report.error.is_none() && report.pragmas.iter().all(Row::ok);
    report
}

fn diagnose(db: &DatabaseSettings, spec: &PoolSpec) -> Result<ConnectionsReport> {
    let mut conn = Connection::open_with_flags(&db.path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|source| Error::Sqlite {
            database: spec.name.clone(),
            source,
        })?;
    let _ = spec.profile.apply(&mut conn, &spec.name, false);
    Ok(check_connections(&spec.profile, &spec.name, [&mut conn]))
}
