//! An application's startup SQL that restates its profile runs unchanged on every pool kind
//! (nostr-rs-relay runs the script below on every connection, and `auto_vacuum = FULL` before
//! every write); a different value, or a pragma the profile does not set, is refused naming the
//! pragma, both values and the profile key to change; a reader cannot checkpoint.

use litepool::rusqlite::{self, Connection, OpenFlags};
use litepool::{Error, Pools, PragmaCustomizer};
use r2d2_sqlite::SqliteConnectionManager;

use crate::common::*;
use crate::guarantees::{Kind, Own, Role, Step};

/// The profile the relay's startup SQL restates.
const RELAY: &str = r#"
[profiles.relay]
busy_timeout = "5s"
journal_mode = "wal"
synchronous = "normal"
foreign_keys = true
temp_store = "memory"
cache_size = "8000KiB"
mmap_size = 2147418112
journal_size_limit = "32KiB"
auto_vacuum = "full"
"#;

/// nostr-rs-relay's startup SQL, as it runs it on every connection. Its `mmap_size` is above
/// SQLite's cap, so SQLite takes the cap: the value of the profile.
const STARTUP: &str = "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
    PRAGMA synchronous = NORMAL; PRAGMA journal_mode = WAL; PRAGMA cache_size = -8000; \
    PRAGMA temp_store = 2; PRAGMA mmap_size = 17179869184; PRAGMA journal_size_limit = 32768; \
    PRAGMA auto_vacuum = FULL;";

/// The pragmas of the profile and the values SQLite reports for them.
const EXPECTED: [(&str, &str); 9] = [
    ("busy_timeout", "5000"),
    ("foreign_keys", "1"),
    ("synchronous", "1"),
    ("journal_mode", "wal"),
    ("cache_size", "-8000"),
    ("temp_store", "2"),
    // SQLite's cap: the relay's 17179869184 is taken as this.
    ("mmap_size", "2147418112"),
    ("journal_size_limit", "32768"),
    ("auto_vacuum", "1"),
];

/// `app`: one pool of one connection; `split`: a writer and one reader; both under `relay`.
fn fixture(profile: &str) -> Fixture {
    Fixture::new(&format!(
        "{RELAY}
[profiles.strict]
synchronous = \"full\"
journal_mode = \"wal\"

[databases.app]
path = \"{{data}}/app.db\"
profile = \"{profile}\"
[databases.app.pool]
max_size = 1
connection_timeout = \"5s\"

[databases.split]
path = \"{{data}}/split.db\"
profile = \"{profile}\"
[databases.split.writer]
connection_timeout = \"5s\"
[databases.split.readers]
max_size = 1
connection_timeout = \"5s\"
"
    ))
}

fn exec(sql: &str) -> Step {
    Step::Exec(sql.to_owned())
}

/// The startup script, then every pragma read back, on one checkout.
fn startup_then_read(kind: &dyn Kind, db: &str, role: Role) {
    let mut steps = vec![exec(STARTUP)];
    steps.extend(
        EXPECTED
            .iter()
            .map(|(p, _)| Step::Query(format!("PRAGMA {p}"))),
    );
    let out = kind.session(db, role, &steps).unwrap();
    let k = kind.label();
    assert_eq!(
        out[0],
        Ok(vec![]),
        "{k} {db} {role:?}: the startup SQL failed"
    );
    for ((pragma, want), got) in EXPECTED.iter().zip(&out[1..]) {
        assert_eq!(
            got,
            &Ok(vec![want.to_string()]),
            "{k} {db} {role:?}: {pragma}"
        );
    }
}

/// Every pool kind of this build over the `relay` fixture.
fn each_kind(test: impl Fn(&dyn Kind)) {
    {
        let f = fixture("relay");
        test(&Own(Pools::new(&f.load().unwrap()).unwrap()));
    }
    #[cfg(feature = "diesel")]
    {
        let f = fixture("relay");
        let pools = litepool::diesel::Pools::new(&f.load().unwrap()).unwrap();
        test(&crate::guarantees::diesel_kind::Diesel(pools));
    }
    #[cfg(feature = "deadpool")]
    {
        let f = fixture("relay");
        test(&crate::guarantees::deadpool_kind::Deadpool::new(
            &f.load().unwrap(),
        ));
    }
}

#[test]
fn startup_sql_restating_the_profile_runs_on_every_pool_kind_and_changes_nothing() {
    each_kind(|kind| {
        for (db, role) in [
            ("app", Role::Get),
            ("split", Role::Writer),
            ("split", Role::Reader),
        ] {
            startup_then_read(kind, db, role);
            // Again on the connection that ran it: still the profile's values.
            startup_then_read(kind, db, role);
        }
    });
}

#[test]
fn startup_sql_runs_inside_write_closures_and_before_every_write() {
    let f = fixture("relay");
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    pools
        .write("split", |c| {
            c.execute_batch("CREATE TABLE event(id INTEGER)")
        })
        .unwrap();
    for i in 0..3 {
        pools
            .write("split", move |c| {
                c.execute_batch(STARTUP)?;
                c.execute_batch("PRAGMA auto_vacuum = FULL")?;
                c.execute("INSERT INTO event VALUES (?1)", [i])
            })
            .unwrap();
    }
    let c = pools.reader("split").unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM event", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3);
    let sync: i64 = pools
        .writer("split")
        .unwrap()
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 1);
}

#[test]
fn startup_sql_runs_on_an_applications_own_r2d2_pool_with_the_customizer() {
    let f = fixture("relay");
    let settings = f.load().unwrap();
    let profile = settings.profiles.get("relay").unwrap().clone();
    let pool = r2d2::Pool::builder()
        .max_size(2)
        .connection_customizer(Box::new(PragmaCustomizer::new("relay-db", profile)))
        .build(SqliteConnectionManager::file(f.path("own.db")))
        .unwrap();
    for _ in 0..3 {
        let c = pool.get().unwrap();
        let out = crate::guarantees::run_rusqlite(&c, &[exec(STARTUP)]);
        assert_eq!(out, [Ok(vec![])]);
        for (pragma, want) in EXPECTED {
            let got: rusqlite::types::Value = c
                .query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
                .unwrap();
            let got = match got {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            };
            assert_eq!(got, want, "{pragma}");
        }
        // A different value is refused there too, naming the application's database.
        let e = c.execute_batch("PRAGMA synchronous = FULL").unwrap_err();
        let e = Error::from(e).to_string();
        assert!(
            e.starts_with("database \"relay-db\": not authorized by litepool's guard: PRAGMA synchronous = FULL (profile \"relay\" sets synchronous = normal (1), not FULL"),
            "{e}"
        );
    }
}

/// One connection of the `app` pool of a fixture under `profile`.
fn app(profile: &str) -> (Fixture, Pools) {
    let f = fixture(profile);
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    (f, pools)
}

fn read(c: &Connection, pragma: &str) -> String {
    let v: rusqlite::types::Value = c
        .query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
        .unwrap();
    match v {
        rusqlite::types::Value::Integer(i) => i.to_string(),
        rusqlite::types::Value::Text(t) => t,
        other => format!("{other:?}"),
    }
}

#[test]
fn equivalent_spellings_of_the_profiles_values_are_accepted() {
    let (_f, pools) = app("relay");
    let c = pools.get("app").unwrap();
    for sql in [
        "PRAGMA foreign_keys = ON",
        "PRAGMA foreign_keys = 1",
        "PRAGMA foreign_keys = true",
        "PRAGMA FOREIGN_KEYS = yes",
        "PRAGMA foreign_keys(on)",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA synchronous = 1",
        "PRAGMA synchronous = 'normal'",
        "PRAGMA main.synchronous = normal",
        "PRAGMA synchronous(1)",
        "PRAGMA Synchronous = Normal",
        "PRAGMA journal_mode = 'wal'",
        "PRAGMA journal_mode = WAL",
        "PRAGMA journal_mode = \"Wal\"",
        "PRAGMA main.journal_mode = wal",
        "PRAGMA temp_store = MEMORY",
        "PRAGMA temp_store = 2",
        "PRAGMA cache_size = -8000",
        "PRAGMA cache_size = '-8000'",
        "PRAGMA auto_vacuum = full",
        "PRAGMA auto_vacuum = 1",
        "PRAGMA busy_timeout = 5000",
        "PRAGMA journal_size_limit(32768)",
    ] {
        c.execute_batch(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}: {:?}", litepool::guard::take_refusal()));
    }
    for (pragma, want) in EXPECTED {
        assert_eq!(read(&c, pragma), want, "{pragma}");
    }
}

#[test]
fn a_different_value_is_refused_naming_the_pragma_both_values_and_the_profile_key() {
    let (_f, pools) = app("relay");
    let c = pools.get("app").unwrap();
    for (sql, pragma, sets, asked) in [
        (
            "PRAGMA synchronous = FULL",
            "synchronous",
            "normal (1)",
            "FULL",
        ),
        ("PRAGMA synchronous(0)", "synchronous", "normal (1)", "0"),
        (
            "PRAGMA foreign_keys = OFF",
            "foreign_keys",
            "true (1)",
            "OFF",
        ),
        (
            "PRAGMA journal_mode = DELETE",
            "journal_mode",
            "wal",
            "DELETE",
        ),
        (
            "PRAGMA temp_store = FILE",
            "temp_store",
            "memory (2)",
            "FILE",
        ),
        (
            "PRAGMA cache_size = -2000",
            "cache_size",
            "(-8000)",
            "-2000",
        ),
        (
            "PRAGMA main.mmap_size = 0",
            "mmap_size",
            "(2147418112)",
            "0",
        ),
        ("PRAGMA busy_timeout = 100", "busy_timeout", "(5000)", "100"),
        (
            "PRAGMA auto_vacuum = NONE",
            "auto_vacuum",
            "full (1)",
            "NONE",
        ),
    ] {
        let before = read(&c, pragma);
        let e = c.execute_batch(sql).unwrap_err();
        assert_eq!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::AuthorizationForStatementDenied),
            "{sql}: {e}"
        );
        let e = Error::from(e).to_string();
        assert!(
            e.contains(&format!("profile \"relay\" sets {pragma} = ")),
            "{sql}: {e}"
        );
        assert!(e.contains(sets), "{sql}: {e}");
        assert!(e.contains(&format!("not {asked};")), "{sql}: {e}");
        assert!(
            e.contains(&format!("set pragmas.{pragma} in profile \"relay\"")),
            "{sql}: {e}"
        );
        assert_eq!(read(&c, pragma), before, "{sql} changed {pragma}");
    }
    // A spelling litepool cannot judge is refused, not guessed.
    let e = Error::from(c.execute_batch("PRAGMA journal_mode = w").unwrap_err()).to_string();
    assert!(
        e.contains("litepool cannot tell which value SQLite takes from w"),
        "{e}"
    );
}

#[test]
fn a_pragma_the_profile_does_not_set_is_refused_saying_to_add_it() {
    let (_f, pools) = app("relay");
    let c = pools.get("app").unwrap();
    let before = read(&c, "wal_autocheckpoint");
    let e = Error::from(
        c.execute_batch("PRAGMA wal_autocheckpoint = 1000")
            .unwrap_err(),
    );
    assert_eq!(
        e.to_string(),
        "database \"app\": not authorized by litepool's guard: PRAGMA wal_autocheckpoint = 1000 \
         (profile \"relay\" does not set wal_autocheckpoint, and a pragma assignment would stay \
         on the connection for its next borrower: add pragmas.wal_autocheckpoint to profile \
         \"relay\")"
    );
    assert_eq!(read(&c, "wal_autocheckpoint"), before);
}

/// A function of the application returning litepool's `Result`.
fn configure(c: &Connection, sql: &str) -> litepool::Result<()> {
    c.execute_batch(sql)?;
    Ok(())
}

#[test]
fn a_refusal_reaches_litepool_error_through_question_mark_and_never_goes_stale() {
    let (_f, pools) = app("relay");
    let c = pools.get("app").unwrap();
    match configure(&c, "PRAGMA synchronous = FULL") {
        Err(Error::Refused {
            database,
            statement,
            source,
        }) => {
            assert_eq!(database, "app");
            assert!(
                statement.starts_with("PRAGMA synchronous = FULL (profile \"relay\" sets"),
                "{statement}"
            );
            assert_eq!(source.to_string(), "not authorized");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        litepool::guard::take_refusal(),
        None,
        "taken by the conversion"
    );
    // A refusal the application did not convert does not name a later, unrelated error.
    assert!(c.execute_batch("PRAGMA synchronous = FULL").is_err());
    match configure(&c, "SELECT * FROM missing") {
        Err(Error::Rusqlite { source }) => {
            assert!(source.to_string().contains("no such table"), "{source}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(litepool::guard::take_refusal(), None, "taken, not kept");
    // An authorizer denial that is not the guard's stays SQLite's own error.
    let plain = Connection::open_in_memory().unwrap();
    let _ = plain.authorizer(Some(|_: rusqlite::hooks::AuthContext<'_>| {
        rusqlite::hooks::Authorization::Deny
    }));
    match configure(&plain, "SELECT 1") {
        Err(Error::Rusqlite { source }) => assert_eq!(source.to_string(), "not authorized"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_reader_without_the_guard_fails_a_checkpoint_with_a_disk_io_error() {
    // What the guard stops: a read-only connection's checkpoint fails misleadingly.
    let (f, pools) = app("relay");
    pools
        .write("split", |c| {
            c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
        })
        .unwrap();
    let path = f.path("data/split.db");
    let reader = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    for sql in ["PRAGMA wal_checkpoint", "PRAGMA wal_checkpoint(TRUNCATE)"] {
        let e = reader.execute_batch(sql).unwrap_err();
        assert_eq!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::SystemIoFailure),
            "{sql}: {e}"
        );
        assert!(e.to_string().contains("disk I/O error"), "{sql}: {e}");
    }
}

#[test]
fn a_checkpoint_on_a_reader_is_refused_naming_the_writer_and_works_on_the_writer() {
    let (f, pools) = app("relay");
    pools
        .write("split", |c| {
            c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
        })
        .unwrap();
    let c = pools.reader("split").unwrap();
    for (sql, statement) in [
        ("PRAGMA wal_checkpoint", "PRAGMA wal_checkpoint"),
        (
            "PRAGMA wal_checkpoint(TRUNCATE)",
            "PRAGMA wal_checkpoint(TRUNCATE)",
        ),
        (
            "PRAGMA wal_checkpoint = passive",
            "PRAGMA wal_checkpoint(passive)",
        ),
        (
            "PRAGMA main.wal_checkpoint(FULL)",
            "PRAGMA wal_checkpoint(FULL)",
        ),
    ] {
        let e = configure(&c, sql).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "database \"split.readers\": not authorized by litepool's guard: {statement} (a \
                 reader connection is read-only and cannot checkpoint (SQLite would report a \
                 disk I/O error); a checkpoint needs the writer: run it on \
                 pools.writer(\"split\") or inside pools.write(\"split\", …), or set checkpoint \
                 = \"background\" for database \"split\")"
            )
        );
    }
    drop(c);
    let w = pools.writer("split").unwrap();
    let (busy, _, _): (i64, i64, i64) = w
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(busy, 0);
    drop(w);
    // An application's own pool opened read-only: refused with the reason alone.
    let pool = r2d2::Pool::builder()
        .max_size(1)
        .connection_customizer(Box::new(PragmaCustomizer::new(
            "own-reader",
            litepool::Profile::new("none", litepool::PragmaSet::default()).unwrap(),
        )))
        .build(
            SqliteConnectionManager::file(f.path("data/split.db"))
                .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY),
        )
        .unwrap();
    let e = configure(&pool.get().unwrap(), "PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "database \"own-reader\": not authorized by litepool's guard: PRAGMA \
         wal_checkpoint(TRUNCATE) (a read-only connection cannot checkpoint (SQLite would report \
         a disk I/O error): run it on a connection that writes)"
    );
    // (Inside a write closure SQLite itself refuses it: "database table is locked", as a
    // checkpoint cannot run inside a transaction.)
}

#[test]
fn connections_are_judged_by_their_own_profile_after_others_closed() {
    // Open and close pools under one profile, then under another, on this thread: handle
    // addresses of closed connections are reused, and nothing of the first profile remains.
    for _ in 0..3 {
        {
            let (_f, pools) = app("relay");
            let c = pools.get("app").unwrap();
            c.execute_batch("PRAGMA synchronous = NORMAL").unwrap();
            assert!(c.execute_batch("PRAGMA synchronous = FULL").is_err());
        }
        let (_f, pools) = app("strict");
        let c = pools.get("app").unwrap();
        c.execute_batch("PRAGMA synchronous = FULL").unwrap();
        let e = configure(&c, "PRAGMA synchronous = NORMAL")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("profile \"strict\" sets synchronous = full (2), not NORMAL"),
            "{e}"
        );
        let e = configure(&c, "PRAGMA foreign_keys = ON")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("profile \"strict\" does not set foreign_keys"),
            "{e}"
        );
    }
    // The guard installed again on one connection judges by what was installed last (here the
    // same values under another name: a connection cannot be customized to other values once
    // its guard is on).
    let f = fixture("relay");
    let settings = f.load().unwrap();
    let relay = settings.profiles.get("relay").unwrap().clone();
    let copy = litepool::Profile::new("copy", relay.pragmas().clone()).unwrap();
    let mut c = Connection::open(f.path("again.db")).unwrap();
    PragmaCustomizer::new("first", relay)
        .customize_guarded(&mut c)
        .unwrap();
    let e = configure(&c, "PRAGMA synchronous = FULL")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("database \"first\""), "{e}");
    assert!(e.contains("profile \"relay\" sets"), "{e}");
    PragmaCustomizer::new("second", copy)
        .customize_guarded(&mut c)
        .unwrap();
    c.execute_batch(STARTUP).unwrap();
    let e = configure(&c, "PRAGMA synchronous = FULL")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("database \"second\""), "{e}");
    assert!(e.contains("profile \"copy\" sets"), "{e}");
}

#[test]
fn without_the_guard_restating_auto_vacuum_on_a_reader_or_synchronous_in_a_transaction_fails() {
    // Why the guard skips these two restatements instead of running them.
    let (f, pools) = app("relay");
    pools
        .write("split", |c| c.execute_batch("CREATE TABLE t(x)"))
        .unwrap();
    let path = f.path("data/split.db");
    let reader = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let e = reader
        .execute_batch("PRAGMA auto_vacuum = FULL")
        .unwrap_err();
    assert!(e.to_string().contains("readonly"), "{e}");
    let writer = Connection::open(&path).unwrap();
    let e = writer
        .execute_batch("BEGIN; PRAGMA synchronous = FULL")
        .unwrap_err();
    assert!(e.to_string().contains("inside a transaction"), "{e}");
}
