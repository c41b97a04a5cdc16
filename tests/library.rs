//! The library as an application holds it: `'static`, cheap-to-clone handles, settings from code
//! or a TOML string, and no panic from values built in code.

use std::sync::OnceLock;
use std::time::Duration;

use litepool::pools::Handle;
use litepool::settings::Split;
use litepool::{Conn, DatabaseSettings, Error, NamedPool, Pools, PragmaSet, Profile, Settings};

/// What a web framework's state needs.
fn app_state<T: Clone + Send + Sync + 'static>() {}
fn movable<T: Send + 'static>() {}

/// An application's state: the pools, created once, kept for the life of the process.
static STATE: OnceLock<(tempfile::TempDir, Pools)> = OnceLock::new();

fn state() -> &'static Pools {
    &STATE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let toml = format!(
                "[profiles.app]\nbusy_timeout = \"5s\"\njournal_mode = \"wal\"\n\
                 [databases.jobs]\npath = \"{}/jobs.db\"\nprofile = \"app\"\n\
                 [databases.jobs.pool]\nmax_size = 2\n",
                dir.path().display()
            );
            let pools = Pools::new(&Settings::from_toml(&toml).unwrap()).unwrap();
            (dir, pools)
        })
        .1
}

#[test]
fn pools_live_in_static_state_and_connections_move_into_threads() {
    app_state::<Pools>();
    app_state::<Handle>();
    app_state::<NamedPool>();
    movable::<Conn>();
    let pools = state();
    let handle = pools.handle("jobs").unwrap();
    handle
        .get()
        .unwrap()
        .execute_batch("CREATE TABLE IF NOT EXISTS jobs(id INTEGER PRIMARY KEY)")
        .unwrap();
    // A connection checked out here, used and returned by another thread.
    let conn = handle.get().unwrap();
    let worker = std::thread::spawn(move || {
        conn.execute("INSERT INTO jobs DEFAULT VALUES", []).unwrap();
        conn.query_row("SELECT count(*) FROM jobs", [], |r| r.get::<_, i64>(0))
            .unwrap()
    });
    assert!(worker.join().unwrap() >= 1);
    // A clone is the same pools: what one counts, the other sees.
    let clone = pools.clone();
    let before = clone.stats_for("jobs").unwrap().checkouts;
    drop(pools.get("jobs").unwrap());
    assert_eq!(clone.stats_for("jobs").unwrap().checkouts, before + 1);
}

fn db_in(dir: &tempfile::TempDir) -> DatabaseSettings {
    let mut set = PragmaSet::default();
    set.busy_timeout = Some("1s".parse().unwrap());
    let profile = Profile::new("p", set).unwrap();
    DatabaseSettings::new("main", dir.path().join("main.db"), profile)
}

#[test]
fn pool_settings_built_in_code_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    type Break = fn(&mut DatabaseSettings);
    let cases: [(&str, Break); 8] = [
        ("max_size", |d| d.pool.max_size = 0),
        ("max_size", |d| d.pool.max_size = 1_000_000),
        ("min_idle", |d| d.pool.min_idle = Some(d.pool.max_size + 1)),
        ("connection_timeout", |d| {
            d.pool.connection_timeout = Duration::ZERO
        }),
        ("connection_timeout", |d| {
            d.pool.connection_timeout = Duration::MAX
        }),
        ("idle_timeout", |d| {
            d.pool.idle_timeout = Some(Duration::ZERO)
        }),
        ("max_lifetime", |d| {
            d.pool.max_lifetime = Some(Duration::ZERO)
        }),
        ("max_size", |d| {
            let mut split = Split::new(&d.pool);
            split.readers.max_size = 0;
            d.split = Some(split);
        }),
    ];
    for (key, break_it) in cases {
        let mut db = db_in(&dir);
        break_it(&mut db);
        let spec = db.pools().pop().unwrap();
        let e = NamedPool::open(&db, &spec).unwrap_err();
        assert!(
            matches!(e, Error::PoolSetting { key: k, .. } if k == key),
            "{key}: {e:?}"
        );
        let e = Settings::from_databases([db], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("invalid {key}")), "{e}");
    }
    assert!(
        !dir.path().join("main.db").exists(),
        "refused before any file was made"
    );
}

#[test]
fn settings_from_code_and_from_a_toml_string() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::from_databases([db_in(&dir)], None).unwrap();
    let pools = Pools::new(&settings).unwrap();
    let t: i64 = pools
        .get("main")
        .unwrap()
        .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
        .unwrap();
    assert_eq!(t, 1000);
    // Two databases on one file are refused in code as in a file.
    let mut other = db_in(&dir);
    other.name = "other".into();
    let e = Settings::from_databases([db_in(&dir), other], None).unwrap_err();
    assert!(matches!(e, Error::SameFile { .. }), "{e:?}");
    let e = Settings::from_toml("[databases.main]\npath = \"x.db\"\nprofile = \"nope\"\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "TOML string: key `databases.main.profile`: unknown profile \"nope\": expected one of (no profiles defined)"
    );
    let e = Settings::from_toml(
        "[profiles.p]\nsynchronous = \"off\"\n[databases.main]\npath = \"x.db\"\nprofile = \"p\"\n",
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::At { key, source, .. } if key == "profiles.p.synchronous" && matches!(**source, Error::Unsafe { pragma: "synchronous", .. })),
        "a typed error, decorated with the key: {e:?}"
    );
}
