//! An application pinned to an older rusqlite uses litepool's settings, profiles, checks and
//! lint on its own r2d2 pool. Real database files in a temporary directory.

use adopt::{check, pool, Pragmas, Sqlite};
use litepool::budget::Budget;
use litepool::check::check_connections;
use litepool::connection::Raw;
use litepool::lint::{lint, Level};
use litepool::{PragmaCustomizer, Settings};
use r2d2_sqlite::SqliteConnectionManager;

/// The application's configuration, read through litepool's loader.
fn settings(dir: &std::path::Path) -> Settings {
    let text = format!(
        r#"
        [profiles.fast]
        busy_timeout = "2s"
        journal_mode = "wal"
        synchronous = "normal"
        cache_size = "64MiB"
        foreign_keys = true

        [databases.jobs]
        path = "{}"
        profile = "fast"
        durability = "strict"
        [databases.jobs.pool]
        max_size = 4
        "#,
        dir.join("jobs.db").display()
    );
    Settings::from_toml(&text).unwrap()
}

#[test]
fn the_applications_pool_verifies_on_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    let jobs = &settings.databases["jobs"];
    let pool = pool(jobs).unwrap();
    let report = check(&pool, &jobs.profile, "jobs").unwrap();
    println!("{report}");
    assert!(report.verified(), "{report}");
    assert_eq!(report.connections, 4);
    let row = |p| report.row(p).unwrap();
    assert_eq!(row("journal_mode").sqlite, Raw::Text("wal".into()));
    assert_eq!(row("synchronous").sqlite, Raw::Int(1));
    assert_eq!(row("busy_timeout").sqlite, Raw::Int(2000));
    assert_eq!(row("foreign_keys").sqlite, Raw::Int(1));
    let cache = row("cache_size");
    assert_eq!(cache.configured, "64MiB");
    assert_eq!(cache.sqlite, Raw::Int(-65536));
    assert_eq!((cache.connections_ok, cache.connections), (4, 4));
    assert!(report
        .to_string()
        .contains("cache_size    64MiB       -65536  -65536  4/4\n"));
    // The file is in WAL: litepool's bootstrap switched it once.
    assert!(dir.path().join("jobs.db-wal").exists());
}

#[test]
fn a_pool_without_the_profile_is_not_verified_and_the_rows_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    let jobs = &settings.databases["jobs"];
    // The application's pool as it was before it took litepool's customizer.
    let pool = r2d2::Pool::builder()
        .max_size(2)
        .build(SqliteConnectionManager::file(&jobs.path))
        .unwrap();
    let report = check(&pool, &jobs.profile, "jobs").unwrap();
    assert!(!report.verified());
    // Not foreign_keys: libsqlite3-sys's bundled SQLite turns it on by default.
    let failed: Vec<_> = report.failed().map(|r| r.pragma).collect();
    assert_eq!(
        failed,
        ["busy_timeout", "journal_mode", "synchronous", "cache_size"]
    );
    let cache = report.row("cache_size").unwrap();
    assert_eq!(
        (cache.wanted.clone(), cache.sqlite.clone()),
        (Raw::Int(-65536), Raw::Int(-2000))
    );
    assert_eq!((cache.connections_ok, cache.connections), (0, 2));
    let journal = report.row("journal_mode").unwrap();
    assert_eq!(journal.sqlite, Raw::Text("delete".into()));
    assert!(
        report
            .to_string()
            .contains("journal_mode  wal         wal     delete  0/2  <- did not take effect\n"),
        "{report}"
    );
}

#[test]
fn a_value_the_file_cannot_take_refuses_the_connection_and_names_the_pragma() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    // An existing database with SQLite's default 4 KiB pages; only a VACUUM changes them.
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch("CREATE TABLE t(x)").unwrap();
    drop(old);
    let text = format!(
        "[databases.old]\npath = \"{}\"\npragmas.page_size = \"8KiB\"\n",
        path.display()
    );
    let settings = Settings::from_toml(&text).unwrap();
    let db = &settings.databases["old"];
    let customizer = PragmaCustomizer::new("old", db.profile.clone());
    let last_error = customizer.last_error();
    let built = r2d2::Pool::builder()
        .max_size(1)
        .connection_timeout(std::time::Duration::from_millis(500))
        .connection_customizer(Box::new(Pragmas(customizer)))
        .build(SqliteConnectionManager::file(&db.path));
    assert!(built.is_err());
    let last = last_error.lock().unwrap().clone().unwrap();
    assert_eq!(
        last.message,
        "database \"old\": pragma page_size did not take effect: wanted 8192, sqlite reports 4096"
    );
    assert!(last.profile);
    // The check of a plain connection names the same row.
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    let report = check_connections(&db.profile, "old", [Sqlite(&mut conn)]);
    assert!(!report.verified());
    let row = report.row("page_size").unwrap();
    assert_eq!(
        (row.wanted.clone(), row.sqlite.clone()),
        (Raw::Int(8192), Raw::Int(4096))
    );
}

#[test]
fn the_lint_reads_the_applications_settings() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    let findings = lint(&settings, &Budget::without_files(&settings));
    let strict: Vec<_> = findings
        .iter()
        .filter(|f| f.code == "strict-durability")
        .collect();
    assert_eq!(strict.len(), 1, "{findings:?}");
    assert_eq!(strict[0].level, Level::Warning);
    assert_eq!(strict[0].database, "jobs");
    assert_eq!(
        strict[0].message,
        "durability = \"strict\" but synchronous is normal: the last commits can be lost on power loss; set synchronous = \"full\""
    );
}

#[test]
fn the_readme_shows_this_code() {
    let source = include_str!("adopt.rs");
    let readme = include_str!("../../README.md");
    let code = source
        .split("// README: begin\n")
        .nth(1)
        .and_then(|s| s.split("// README: end\n").next())
        .unwrap();
    assert!(
        readme.contains(code),
        "README.md's section on the rusqlite you already have differs from compat/shared/adopt.rs"
    );
}
