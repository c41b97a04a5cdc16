//! State a borrower sets through rusqlite's API rather than SQL (the pragma guard never sees
//! it) does not reach the next borrower: the busy timeout is restored at check-in, and a
//! connection whose `db_config` flags or limits changed is closed (issue 23).

use std::time::Duration;

use litepool::rusqlite::config::DbConfig;
use litepool::rusqlite::limits::Limit;
use litepool::Pools;

use crate::common::*;

/// One connection, so the next checkout gets the same one unless it was closed.
fn pools(f: &Fixture) -> Pools {
    Pools::new(&f.load().unwrap()).unwrap()
}

fn fixture() -> Fixture {
    Fixture::new(&one_db(
        "busy_timeout = \"2s\"\nforeign_keys = true",
        "max_size = 1",
    ))
}

fn busy(conn: &rusqlite::Connection) -> i64 {
    conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_busy_timeout_set_through_rusqlite_is_restored_for_the_next_borrower() {
    let f = fixture();
    let pools = pools(&f);
    {
        let conn = pools.get("main").unwrap();
        assert_eq!(busy(&conn), 2000);
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(busy(&conn), 10_000);
    }
    {
        let conn = pools.get("main").unwrap();
        assert_eq!(busy(&conn), 2000, "the profile's busy_timeout");
        // A busy handler replaces the timeout; it is removed the same way.
        conn.busy_handler(Some(|_| false)).unwrap();
        assert_eq!(busy(&conn), 0);
    }
    let conn = pools.get("main").unwrap();
    assert_eq!(busy(&conn), 2000);
    drop(conn);
    let stats = pools.stats_for("main").unwrap();
    assert_eq!(
        stats.connections_created, 1,
        "restored, not replaced: {stats:?}"
    );
    assert_eq!(stats.connections_closed, 0, "{stats:?}");
}

#[test]
fn foreign_keys_switched_off_through_db_config_never_reach_the_next_borrower() {
    let f = fixture();
    let pools = pools(&f);
    {
        let conn = pools.get("main").unwrap();
        let was = conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_FKEY, false)
            .unwrap();
        assert!(!was, "set_db_config returns the new value");
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 0, "the borrower did switch them off");
    }
    let conn = pools.get("main").unwrap();
    let fk: i64 = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1, "the profile's foreign_keys");
    drop(conn);
    let stats = pools.stats_for("main").unwrap();
    assert_eq!(
        stats.connections_created, 2,
        "the changed one was closed: {stats:?}"
    );
}

#[test]
fn a_limit_lowered_through_rusqlite_never_reaches_the_next_borrower() {
    let f = fixture();
    let pools = pools(&f);
    let default = {
        let conn = pools.get("main").unwrap();
        let default = conn.limit(Limit::SQLITE_LIMIT_LENGTH).unwrap();
        conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, 100).unwrap();
        let long: rusqlite::Result<String> =
            conn.query_row("SELECT printf('%200s', 'x')", [], |r| r.get(0));
        assert!(long.unwrap_err().to_string().contains("too big"));
        default
    };
    let conn = pools.get("main").unwrap();
    assert_eq!(conn.limit(Limit::SQLITE_LIMIT_LENGTH).unwrap(), default);
    let long: String = conn
        .query_row("SELECT printf('%200s', 'x')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(long.len(), 200);
    drop(conn);
    assert_eq!(pools.stats_for("main").unwrap().connections_created, 2);
}

#[test]
fn in_memory_databases_and_uris_are_refused_before_anything_is_created() {
    for path in [
        ":memory:",
        "file::memory:?cache=shared",
        "file:orders.db?mode=rwc",
    ] {
        let f = Fixture::new(&format!(
            "[profiles.p]\n[databases.main]\npath = {path:?}\nprofile = \"p\"\n"
        ));
        let e = Pools::new(&f.load().unwrap()).unwrap_err();
        assert!(
            matches!(e, litepool::Error::NotAFilePath { .. }),
            "{path}: {e:?}"
        );
        let text = e.to_string();
        assert!(
            text.contains(&format!("path {path:?} is not a file path")),
            "{text}"
        );
        if path == ":memory:" {
            assert!(
                text.contains("separate, empty in-memory database for each pooled connection"),
                "{text}"
            );
        } else {
            assert!(text.contains("as a URI"), "{text}");
        }
        // Nothing with that literal name appeared where SQLite would have created it.
        assert!(!std::path::Path::new(path).exists(), "{path} was created");
        assert!(!f.path(path).exists(), "{path} was created in the fixture");
    }
}

#[test]
fn a_function_registered_inside_a_write_closure_never_reaches_the_next_borrower() {
    let f = Fixture::new(
        "[profiles.p]\njournal_mode = \"wal\"\n[databases.main]\npath = \"{data}/main.db\"\nprofile = \"p\"\n[databases.main.writer]\n[databases.main.readers]\nmax_size = 1\n",
    );
    let pools = pools(&f);
    let inside: String = pools
        .write("main", |c| {
            c.create_scalar_function(
                "lower",
                1,
                litepool::rusqlite::functions::FunctionFlags::SQLITE_UTF8,
                |_| Ok("overridden".to_owned()),
            )?;
            c.query_row("SELECT lower('A')", [], |r| r.get(0))
        })
        .unwrap();
    assert_eq!(inside, "overridden", "the closure itself uses its function");
    let next: String = pools
        .write("main", |c| {
            c.query_row("SELECT lower('A')", [], |r| r.get(0))
        })
        .unwrap();
    assert_eq!(next, "a", "SQLite's own lower() for the next write");
    let writer: String = pools
        .writer("main")
        .unwrap()
        .query_row("SELECT lower('A')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(writer, "a");
    let stats = pools.stats_for("main.writer").unwrap();
    assert_eq!(
        stats.connections_created, 2,
        "the writer was replaced: {stats:?}"
    );
}
