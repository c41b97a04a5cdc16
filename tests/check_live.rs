//! `litepool check` on a database another connection is using (issue 22, items 5 and 6): it
//! changes nothing stored in an existing file unless `--apply`, which refuses while the database
//! is held; one failure is reported once; the writer closes last, so no `-wal`/`-shm` is left.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use litepool::check::{check, Outcome};
use rusqlite::Connection;

use crate::common::*;

fn litepool(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_litepool"))
        .args(args)
        .current_dir(cwd)
        .env_remove("LITEPOOL_ENV")
        .env_remove("LITEPOOL_CONFIG_DIR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// sha256 of the database file and its `-wal`.
fn bytes(path: &Path) -> (String, String) {
    (sha256(path), sha256(&beside(path, "-wal")))
}

/// A WAL database with committed frames still in its `-wal`, and the connection that keeps it
/// open (so that nothing checkpoints it).
fn live_wal_db(f: &Fixture) -> (PathBuf, Connection) {
    let path = f.path("data/main.db");
    make_db(&path);
    let app = Connection::open(&path).unwrap();
    let mode: String = app
        .pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    app.execute_batch("INSERT INTO customers(name) VALUES ('edsger');")
        .unwrap();
    assert!(std::fs::metadata(beside(&path, "-wal")).unwrap().len() > 0);
    (path, app)
}

/// The application's profile was changed to `delete` while the file is in WAL.
fn delete_config() -> String {
    one_db(
        "journal_mode = \"delete\"\nbusy_timeout = \"100ms\"\nsynchronous = \"normal\"\ncache_size = \"4MiB\"",
        "max_size = 2",
    )
}

fn header_says_wal(path: &Path) -> bool {
    let header = std::fs::read(path).unwrap();
    (header[18], header[19]) == (2, 2)
}

#[test]
fn check_on_a_live_database_changes_nothing_and_says_what_it_would_change() {
    let f = Fixture::new(&delete_config());
    let (path, app) = live_wal_db(&f);
    // Both ways the application may hold it: a read transaction, and the write lock.
    for hold in ["BEGIN; SELECT count(*) FROM customers;", "BEGIN EXCLUSIVE;"] {
        app.execute_batch(hold).unwrap();
        let before = bytes(&path);
        let out = litepool(f.dir.path(), &["check", "--json"]);
        assert_eq!(out.status.code(), Some(1), "{hold}: {}", text(&out));
        let json: serde_json::Value = serde_json::from_str(&text(&out)).unwrap();
        let db = &json["databases"][0];
        assert_eq!(db["error"], serde_json::Value::Null, "{hold}");
        assert_eq!(db["verified"], false);
        let rows = db["pragmas"].as_array().unwrap();
        let journal = rows.iter().find(|r| r["pragma"] == "journal_mode").unwrap();
        assert_eq!(
            (
                &journal["outcome"],
                &journal["sqlite"],
                &journal["wanted"],
                &journal["scope"]
            ),
            (
                &"would_change".into(),
                &"wal".into(),
                &"delete".into(),
                &"file".into()
            )
        );
        // The connection-level pragmas were applied to check's own connections and read back.
        for r in rows.iter().filter(|r| r["pragma"] != "journal_mode") {
            assert_eq!(r["outcome"], "read", "{r}");
            assert_eq!(
                (r["connections_ok"].as_u64(), r["connections"].as_u64()),
                (Some(2), Some(2)),
                "{r}"
            );
        }
        let out = litepool(f.dir.path(), &["check"]);
        assert_eq!(out.status.code(), Some(1));
        let t = text(&out);
        assert!(
            t.contains("journal_mode         delete       wal          file        would change wal -> delete (left as it is; check --apply switches it while nothing else holds the database)"),
            "{t}"
        );
        assert!(!t.contains("error:") && !t.contains("NOT APPLIED"), "{t}");
        assert_eq!(bytes(&path), before, "{hold}: check changed the file");
        assert!(header_says_wal(&path));
        app.execute_batch("COMMIT").unwrap();
    }
    drop(app);
}

#[test]
fn apply_refuses_a_held_database_once_and_switches_a_free_one() {
    let f = Fixture::new(&delete_config());
    let (path, app) = live_wal_db(&f);
    app.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    let before = bytes(&path);
    let out = litepool(f.dir.path(), &["check", "--apply"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    // One failure, said once: no cascade of NOT APPLIED rows with SQLite's defaults.
    assert_eq!(t.matches("error:").count(), 1, "{t}");
    assert!(
        t.contains(&format!(
            "error: database \"main\": cannot switch journal_mode wal -> delete in {}: another connection holds the database (database is locked); nothing was changed",
            path.display()
        )),
        "{t}"
    );
    assert!(
        !t.contains("NOT APPLIED") && !t.contains("not checked"),
        "{t}"
    );
    assert!(t.contains("would change wal -> delete"), "{t}");
    assert!(
        t.contains("cache_size           4MiB         -4096        connection  ok 2/2"),
        "{t}"
    );
    assert_eq!(bytes(&path), before, "a refused --apply changed the file");
    assert!(header_says_wal(&path));
    app.execute_batch("COMMIT").unwrap();

    // Still open but idle: a WAL connection keeps a shared lock on the file, so the switch out
    // of WAL is refused all the same.
    let out = litepool(f.dir.path(), &["check", "--apply"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("another connection holds the database"));
    assert!(header_says_wal(&path));

    // The application stopped: switched, reported, verified.
    drop(app);
    let out = litepool(f.dir.path(), &["check", "--apply", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_str(&text(&out)).unwrap();
    let db = &json["databases"][0];
    assert_eq!(db["applied"], "journal_mode wal -> delete");
    assert_eq!(db["verified"], true);
    assert!(!header_says_wal(&path));
    assert!(!beside(&path, "-wal").exists());
    let conn = Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM customers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 4, "the committed rows of the WAL are in the file");
    // Nothing left to change: a plain check now verifies.
    drop(conn);
    let out = litepool(f.dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_lock_that_fails_the_pool_is_one_error_not_a_cascade() {
    // A rollback-journal file locked by another connection: check's first read waits its
    // busy_timeout and fails. That failure is said once; the pragmas after it are "not checked".
    // quick_check off: it would meet the lock first and refuse the file before any pool opens.
    let f = Fixture::new(&delete_config().replace(
        "profile = \"p\"\n",
        "profile = \"p\"\ncheck_integrity = false\n",
    ));
    let path = f.path("data/main.db");
    make_db(&path);
    let app = Connection::open(&path).unwrap();
    app.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    let before = sha256(&path);
    let settings = f.load().unwrap();
    let report = check(&settings, &mut |_| {}).unwrap();
    assert_eq!(report.exit_code(false), 2);
    let db = &report.databases[0];
    let error = db.error.as_deref().unwrap();
    assert!(error.contains("database is locked"), "{error}");
    let outcomes: Vec<_> = db.pragmas.iter().map(|r| (r.pragma, r.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            ("busy_timeout", Outcome::Read),
            ("journal_mode", Outcome::Failed),
            ("synchronous", Outcome::NotChecked),
            ("cache_size", Outcome::NotChecked),
        ]
    );
    let t = crate::render::Text(&report).to_string();
    assert_eq!(t.matches("error:").count(), 1, "{t}");
    assert!(!t.contains("NOT APPLIED"), "{t}");
    assert!(
        t.contains("synchronous          normal       -            connection  not checked (after the failure above)"),
        "{t}"
    );
    app.execute_batch("COMMIT").unwrap();
    assert_eq!(sha256(&path), before);
}

fn split_config() -> String {
    "[profiles.p]\njournal_mode = \"wal\"\n\n[databases.main]\npath = \"{data}/main.db\"\nprofile = \"p\"\n[databases.main.writer]\n[databases.main.readers]\nmax_size = 2\n".to_owned()
}

fn assert_no_wal_files(path: &Path) {
    for suffix in ["-wal", "-shm"] {
        assert!(
            !beside(path, suffix).exists(),
            "{} left behind",
            beside(path, suffix).display()
        );
    }
}

#[test]
fn check_on_a_split_database_closes_the_writer_last() {
    let f = Fixture::new(&split_config());
    let path = f.path("data/main.db");
    let settings = f.load().unwrap();
    // A new file, then the existing one.
    for _ in 0..2 {
        let report = check(&settings, &mut |_| {}).unwrap();
        assert!(report.verified, "{}", crate::render::Text(&report));
        let names: Vec<_> = report.databases.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["main.writer", "main.readers"]);
        assert!(header_says_wal(&path));
        assert_no_wal_files(&path);
    }
}

#[test]
fn dropping_pools_closes_the_writer_last() {
    let f = Fixture::new(&split_config());
    let path = f.path("data/main.db");
    let pools = litepool::Pools::new(&f.load().unwrap()).unwrap();
    let jobs = pools.handle("main").unwrap();
    jobs.write(|c| c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);"))
        .unwrap();
    let n: i64 = jobs
        .reader()
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
    assert!(beside(&path, "-wal").exists());
    drop(jobs);
    drop(pools);
    assert_no_wal_files(&path);
    let conn = Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
}

#[test]
fn dropping_pools_right_after_opening_closes_the_writer_last() {
    // Just opened, r2d2's threads may still hold a pool that they filled: the readers must be
    // closed before the writer all the same. Repeated, since that moment is short.
    let f = Fixture::new(&split_config());
    let path = f.path("data/main.db");
    let settings = f.load().unwrap();
    for _ in 0..20 {
        let pools = litepool::Pools::new(&settings).unwrap();
        let n: i64 = pools
            .reader("main")
            .unwrap()
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        drop(pools);
        assert_no_wal_files(&path);
    }
}

#[test]
fn check_does_not_switch_a_rollback_file_into_wal() {
    // The other direction, with no other connection at all: still only reported.
    let f = Fixture::new(&one_db(
        "journal_mode = \"wal\"\nsynchronous = \"normal\"",
        "max_size = 2",
    ));
    let path = f.path("data/main.db");
    make_db(&path);
    let before = sha256(&path);
    let report = check(&f.load().unwrap(), &mut |_| {}).unwrap();
    assert_eq!(report.exit_code(false), 1);
    let db = &report.databases[0];
    assert_eq!(db.error, None);
    let journal = db
        .pragmas
        .iter()
        .find(|r| r.pragma == "journal_mode")
        .unwrap();
    assert_eq!(journal.outcome, Outcome::WouldChange);
    assert_eq!(
        (journal.sqlite.to_string(), journal.wanted.to_string()),
        ("delete".to_owned(), "wal".to_owned())
    );
    let sync = db
        .pragmas
        .iter()
        .find(|r| r.pragma == "synchronous")
        .unwrap();
    assert!(sync.ok(), "{sync:?}");
    assert_eq!(sha256(&path), before);
    assert!(!header_says_wal(&path));
    assert_no_wal_files(&path);
}
