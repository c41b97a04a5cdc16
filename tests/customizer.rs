use std::time::Duration;

use litepool::pragma::JournalMode;
use litepool::{Error, Pools, PragmaCustomizer, PragmaSet, Profile};
use r2d2_sqlite::SqliteConnectionManager;

use crate::common::*;

#[test]
fn customizer_alone_on_a_plain_r2d2_sqlite_pool() {
    let dir = tempfile::tempdir().unwrap();
    let mut set = PragmaSet::default();
    set.busy_timeout = Some("2s".parse().unwrap());
    set.journal_mode = Some(JournalMode::Wal);
    set.cache_size = Some("8MiB".parse().unwrap());
    let profile = Profile::new("jobs", set).unwrap();
    let pool = r2d2::Pool::builder()
        .max_size(3)
        .connection_customizer(Box::new(PragmaCustomizer::new("jobs", profile)))
        .build(SqliteConnectionManager::file(dir.path().join("jobs.db")))
        .unwrap();
    let conns: Vec<_> = (0..3).map(|_| pool.get().unwrap()).collect();
    for c in &conns {
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let cache: i64 = c.query_row("PRAGMA cache_size", [], |r| r.get(0)).unwrap();
        assert_eq!((mode.as_str(), cache), ("wal", -8192));
    }
}

#[test]
fn a_pragma_that_does_not_take_effect_fails_the_connection_and_keeps_the_cause() {
    // An in-memory database answers `memory` to journal_mode = wal, without an error.
    let mut set = PragmaSet::default();
    set.journal_mode = Some(JournalMode::Wal);
    let customizer = PragmaCustomizer::new("jobs", Profile::new("p", set).unwrap());
    let last = customizer.last_error();
    let err = r2d2::Pool::builder()
        .max_size(1)
        .connection_timeout(Duration::from_millis(300))
        .connection_customizer(Box::new(customizer))
        .build(SqliteConnectionManager::memory())
        .unwrap_err();
    let want = "database \"jobs\": pragma journal_mode did not take effect: wanted wal, sqlite reports memory";
    assert_eq!(last.lock().unwrap().as_ref().unwrap().message, want);
    // r2d2's own error says only "timed out" plus, once, the message.
    assert!(
        err.to_string()
            .starts_with("timed out waiting for connection"),
        "{err}"
    );
}

#[test]
fn pools_get_reports_the_customizer_cause_not_just_a_timeout() {
    // exclusive locking: the first pooled connection keeps the lock, so the second cannot even
    // read its pragmas back: the pool cannot fill, and the error says why.
    let f = Fixture::new(&one_db(
        "allow_unsafe = true\nlocking_mode = \"exclusive\"\njournal_mode = \"wal\"\nbusy_timeout = \"50ms\"",
        "max_size = 2\nmin_idle = 1\nconnection_timeout = \"1s\"",
    ));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    let first = pools.get("main").unwrap();
    first
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap();
    let err = pools.get("main").map(drop).unwrap_err();
    assert!(
        matches!(err, Error::Timeout { cause: Some(_), .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with("pool \"main\": no connection within 1s: opening a connection failed: database \"main\": pragma"),
        "{msg}"
    );
    assert!(!msg.contains("timed out waiting for connection"), "{msg}");
    assert!(msg.contains("database is locked"), "{msg}");
}
