//! The check of litepool's own pools (feature `sqlite`): build each, take all of its connections
//! at once, and read every pragma back on each. On an existing file nothing stored in the file
//! changes unless asked (`--apply`): see [`check_with`].

use rusqlite::{Connection, OpenFlags};

use crate::budget::Budget;
use crate::check::{check_connections, CheckOptions, CheckReport, DatabaseReport, Outcome, Row};
use crate::connection::{PragmaConnection, Raw};
use crate::error::{Error, Result};
use crate::file::FileState;
use crate::pools::{preflight, NamedPool};
use crate::pragma::JournalMode;
use crate::profile::{Profile, Scope};
use crate::settings::{DatabaseSettings, PoolSpec, Settings};

/// Runs the check with the default [`CheckOptions`]: an existing file's settings are read, never
/// switched. See [`check_with`].
pub fn check(settings: &Settings, progress: &mut dyn FnMut(&str)) -> Result<CheckReport> {
    check_with(settings, CheckOptions::default(), progress)
}

/// Runs the check. `Err` is a configuration or file error found before any database was touched
/// (exit code 2); a setting that did not take effect is reported in the [`CheckReport`].
///
/// The check verifies the configuration on fresh connections of its own, not what a running
/// application has in force. On an existing file it changes nothing stored in the file: a
/// `journal_mode` the file has differently is reported as [`Outcome::WouldChange`], and no
/// `PRAGMA optimize` runs; with [`CheckOptions::apply`] the journal mode is switched on a
/// connection of its own, only if no other connection holds the database ([`Error::Held`]
/// otherwise, nothing changed). A new or empty file is created and set up as `Pools::new` does.
/// A database's pools stay open until all of them are checked and close in reverse order, so
/// that the writer closes last and removes the `-wal` and `-shm` files.
pub fn check_with(
    settings: &Settings,
    options: CheckOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<CheckReport> {
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
    let mut databases = Vec::new();
    for (db, file) in settings.databases.values().zip(files) {
        // The file's journal mode, when it differs from the configured one.
        let change = journal_change(db, &file);
        let mut applied = None;
        // A LiteFS replica's file is LiteFS's to write: never switched here.
        let replica = matches!(crate::pools::litefs_primary(db), Ok(Some(_)));
        if let (Some((from, to)), true, false) = (&change, options.apply, replica) {
            progress(&format!(
                "{}: switching journal_mode {from} -> {to} in {} (--apply)",
                db.name,
                db.path.display()
            ));
            applied = Some(switch_journal(db, from, *to));
        }
        let keep_journal = change.is_some() && !matches!(applied, Some(Ok(_)));
        // A read replica: Litestream's VFS first (nothing opens without it).
        if let Some(replica) = &db.replica {
            if let Err(e) = crate::pools::load_replica(db, replica, settings) {
                for spec in db.pools() {
                    let mut r = not_opened(db, &spec, file);
                    r.error = Some(e.to_string());
                    r.file_error = true;
                    databases.push(r);
                }
                continue;
            }
        }
        // Every pool stays open until the last is checked; they close in reverse order below.
        let mut open = Vec::new();
        for spec in db.pools() {
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
                    databases.push(r);
                    continue;
                }
                Ok(Some(primary)) if spec.role.writes() => {
                    // Pools::new opens no writer on a LiteFS replica; neither does check.
                    let mut r = not_opened(db, &spec, file);
                    r.replication = Some(format!(
                        "litefs: this node is a replica (the primary is {primary}): the writer is not opened here"
                    ));
                    r.verified = true;
                    databases.push(r);
                    continue;
                }
                _ => {
                    let (report, pool) = check_one(db, &spec, file, keep_journal);
                    open.extend(pool);
                    report
                }
            };
            if let Some((from, to)) = change.as_ref().filter(|_| keep_journal) {
                would_change(&mut report, &spec, from, *to);
            }
            // The switch is said once, on the database's first pool.
            match applied.take() {
                Some(Ok(done)) => report.applied = Some(done),
                Some(Err(e)) => {
                    report.error = Some(e.to_string());
                    report.file_error |= !e.is_mismatch();
                }
                None => {}
            }
            report.verified = report.error.is_none() && report.pragmas.iter().all(Row::ok);
            report.replication = replication_of(db, &spec).or(report.replication.take());
            databases.push(report);
        }
        // Readers close before the writer: the last connection to close on a WAL database
        // checkpoints and removes `-wal` and `-shm`, which a read-only one cannot.
        while let Some(pool) = open.pop() {
            pool.close();
        }
    }
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

/// How long `--apply` waits for exclusive access before it reports the database held.
const APPLY_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// The journal mode of an existing database file and the configured one, when switching
/// between them changes the file: into or out of WAL. (The rollback modes are per connection.)
fn journal_change(db: &DatabaseSettings, file: &FileState) -> Option<(&'static str, JournalMode)> {
    let FileState::Database { wal, .. } = *file else {
        return None;
    };
    let wanted = db.profile.pragmas().journal_mode?;
    (wal != (wanted == JournalMode::Wal)).then_some((if wal { "wal" } else { "delete" }, wanted))
}

/// Switches the journal mode of `db`'s existing file on a connection of its own, first taking
/// an exclusive lock (`BEGIN EXCLUSIVE`, then the switch itself, which needs the database to
/// itself), each waiting at most [`APPLY_WAIT`]. [`Error::Held`] when another connection holds
/// the database: SQLite changed nothing then.
fn switch_journal(db: &DatabaseSettings, from: &str, to: JournalMode) -> Result<String> {
    let change = format!("journal_mode {from} -> {to}");
    let sqlite = |source| Error::Sqlite {
        database: db.name.clone(),
        source,
    };
    let held = |source: rusqlite::Error| {
        if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) {
            Error::Held {
                database: db.name.clone(),
                path: db.path.clone(),
                change: change.clone(),
                cause: source.to_string(),
            }
        } else {
            sqlite(source)
        }
    };
    let conn = Connection::open_with_flags(
        &db.path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    conn.busy_timeout(APPLY_WAIT).map_err(sqlite)?;
    conn.execute_batch("BEGIN EXCLUSIVE; COMMIT")
        .map_err(held)?;
    let now: String = conn
        .pragma_update_and_check(None, "journal_mode", to.as_str(), |r| r.get(0))
        .map_err(held)?;
    if !now.eq_ignore_ascii_case(to.as_str()) {
        return Err(Error::Mismatch {
            database: db.name.clone(),
            pragma: "journal_mode",
            wanted: to.to_string(),
            actual: now,
        });
    }
    tracing::info!(database = %db.name, path = %db.path.display(), %change, "check --apply");
    Ok(change)
}

/// Adds the `journal_mode` row of a file left as it is, where the profile has it.
fn would_change(report: &mut DatabaseReport, spec: &PoolSpec, from: &str, to: JournalMode) {
    let at = spec
        .profile
        .settings()
        .iter()
        .position(|s| s.pragma == "journal_mode")
        .unwrap_or(0)
        .min(report.pragmas.len());
    let row = Row {
        pragma: "journal_mode",
        configured: to.to_string(),
        wanted: Raw::Text(to.as_str().to_owned()),
        sqlite: Raw::Text(from.to_owned()),
        scope: Scope::File,
        connections_ok: 0,
        connections: report.connections,
        outcome: Outcome::WouldChange,
    };
    report.pragmas.insert(at, row);
}

/// The profile check's connections get on an existing file: without `PRAGMA optimize` (it may
/// write statistics) and, when `keep_journal`, without `journal_mode`, which would switch the
/// file.
fn for_existing(profile: &Profile, keep_journal: bool) -> Result<Profile> {
    let mut set = profile.pragmas().clone();
    set.optimize_on_open = None;
    if keep_journal {
        set.journal_mode = None;
    }
    Profile::new(profile.name(), set)
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
        applied: None,
        replication: None,
        file_error: false,
        verified: false,
    }
}

/// Checks one pool: opens it (on an existing file with the profile of [`for_existing`]), takes
/// all of its connections at once and reads every pragma back. Returns the pool, for the caller
/// to close in order.
fn check_one(
    db: &DatabaseSettings,
    spec: &PoolSpec,
    file_before: FileState,
    keep_journal: bool,
) -> (DatabaseReport, Option<NamedPool>) {
    let mut report = not_opened(db, spec, file_before);
    let mut spec = spec.clone();
    if let FileState::Database { .. } = file_before {
        match for_existing(&spec.profile, keep_journal) {
            Ok(p) => spec.profile = p,
            Err(e) => {
                report.error = Some(e.to_string());
                return (report, None);
            }
        }
    }
    let spec = &spec;
    let mut kept = None;
    let checked = match NamedPool::open(db, spec) {
        Ok(pool) => {
            let conns: Result<Vec<_>, _> = (0..spec.pool.max_size).map(|_| pool.get()).collect();
            let checked = match conns {
                Ok(mut conns) => {
                    if let (Some(replica), Some(conn)) = (&db.replica, conns.first()) {
                        report.replication = Some(replica_position(&pool, &replica.url, conn));
                    }
                    Some(check_connections(
                        &spec.profile,
                        &spec.name,
                        conns.iter_mut().map(|c| &mut **c),
                    ))
                }
                Err(e) => {
                    report.file_error |= !e.is_mismatch();
                    report.error = Some(e.to_string());
                    None
                }
            };
            report.pool = Some(pool.stats());
            kept = Some(pool);
            checked
        }
        Err(e) => {
            report.file_error = !e.is_mismatch();
            report.error = Some(e.to_string());
            if db.replica.is_some() {
                return (report, None);
            }
            // Show what SQLite reports on a plain connection with the profile applied, up to
            // the first failure (which is the error above, said once).
            report.pragmas = diagnose(db, spec);
            report.connections = u32::from(!report.pragmas.is_empty());
            None
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
    (report, kept)
}

/// A read replica's position, as its connection `conn` reads it: Litestream's transaction, the
/// VFS's last poll, and how far behind the primary it is by the primary's heartbeat.
/// The sample is recorded in the pool's statistics too, so that the report's pool says the same.
fn replica_position(pool: &NamedPool, url: &str, conn: &rusqlite::Connection) -> String {
    #[cfg(feature = "litestream-vfs")]
    {
        let sample = match crate::replica::sample(conn) {
            Ok(s) => s,
            Err(e) => {
                return format!("read replica of {url}: its position could not be read ({e})")
            }
        };
        let Some(replica) = &pool.shared().replica else {
            return format!("read replica of {url}");
        };
        replica
            .counters
            .record(sample, std::time::SystemTime::now());
        format!(
            "read {}",
            replica.counters.snapshot().to_string().trim_start()
        )
    }
    #[cfg(not(feature = "litestream-vfs"))]
    {
        let _ = (pool, conn);
        format!("read replica of {url}")
    }
}

/// The profile set and read back pragma by pragma on a plain connection, as on a pooled one
/// that is not the first: the pragmas up to the first failure read back, the failing one
/// [`Outcome::Failed`], the rest [`Outcome::NotChecked`]. Nothing when the file cannot be opened.
fn diagnose(db: &DatabaseSettings, spec: &PoolSpec) -> Vec<Row> {
    let flags = if spec.role.writes() {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    };
    let Ok(mut conn) = Connection::open_with_flags(&db.path, flags) else {
        return Vec::new();
    };
    let mut failed = false;
    let mut rows = Vec::new();
    for s in spec.profile.settings() {
        let mut row = Row {
            pragma: s.pragma,
            configured: s.configured.clone(),
            wanted: s.expect.clone(),
            sqlite: Raw::Text(String::new()),
            scope: s.scope,
            connections_ok: 0,
            connections: 1,
            outcome: Outcome::NotChecked,
        };
        if !failed {
            let set = match s.pragma {
                "page_size" | "auto_vacuum" => false,
                "journal_mode" => s.scope == Scope::Connection,
                _ => true,
            };
            let read = if set {
                conn.set_pragma(s.pragma, &s.set)
            } else {
                Ok(())
            }
            .and_then(|()| conn.get_pragma(s.pragma));
            match read {
                Ok(actual) => {
                    row.connections_ok = u32::from(actual == s.expect);
                    row.sqlite = actual;
                    row.outcome = Outcome::Read;
                }
                Err(_) => {
                    row.outcome = Outcome::Failed;
                    failed = true;
                }
            }
        }
        rows.push(row);
    }
    rows
}
