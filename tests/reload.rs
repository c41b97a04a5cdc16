//! `Pools::reload`: a new configuration under load, refused changes, invalid settings.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use litepool::{Error, Pools};

use crate::common::*;

fn config(cache: &str, max_size: u32, split: bool) -> String {
    let split = if split {
        format!("\n[databases.main.readers]\nmax_size = {max_size}\nconnection_timeout = \"20s\"\n[databases.main.writer]\nconnection_timeout = \"20s\"\n")
    } else {
        String::new()
    };
    format!(
        "[profiles.p]\njournal_mode = \"wal\"\nbusy_timeout = \"20s\"\ncache_size = \"{cache}\"\n\n\
         [databases.main]\npath = \"{{data}}/main.db\"\nprofile = \"p\"\n\n\
         [databases.main.pool]\nmax_size = {max_size}\nconnection_timeout = \"20s\"\n{split}"
    )
}

fn cache_size(conn: &rusqlite::Connection) -> i64 {
    conn.query_row("PRAGMA cache_size", [], |r| r.get(0))
        .unwrap()
}

/// What the load threads saw.
#[derive(Default)]
struct Load {
    stop: AtomicBool,
    reloaded: AtomicBool,
    checkouts: AtomicU64,
    after: AtomicU64,
    failed: AtomicU64,
    stale: AtomicU64,
}

/// 8 threads check out and write for the whole test; the pool grows from 4 to 6 and
/// cache_size changes from 2MiB to 3MiB under them.
#[test]
fn reload_under_load_fails_no_checkout_and_every_later_checkout_has_the_new_values() {
    let f = Fixture::new(&config("2MiB", 4, false));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    pools
        .get("main")
        .unwrap()
        .execute_batch("CREATE TABLE t(x INTEGER)")
        .unwrap();
    let load = Arc::new(Load::default());
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (pools, load) = (pools.clone(), load.clone());
            let handle = pools.handle("main").unwrap();
            std::thread::spawn(move || {
                while !load.stop.load(Ordering::SeqCst) {
                    // Read before the checkout starts: a checkout that starts after the reload
                    // returned must see the new values.
                    let after = load.reloaded.load(Ordering::SeqCst);
                    match handle.get() {
                        Ok(conn) => {
                            load.checkouts.fetch_add(1, Ordering::SeqCst);
                            if after {
                                if cache_size(&conn) != -3072 {
                                    load.stale.fetch_add(1, Ordering::SeqCst);
                                }
                                load.after.fetch_add(1, Ordering::SeqCst);
                            }
                            if conn.execute("INSERT INTO t VALUES (1)", []).is_err() {
                                load.failed.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Err(e) => {
                            eprintln!("checkout failed: {e}");
                            load.failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            })
        })
        .collect();
    while load.checkouts.load(Ordering::SeqCst) < 500 {
        std::thread::yield_now();
    }
    assert_eq!(pools.stats_for("main").unwrap().max_size, 4);
    let before = pools.stats_for("main").unwrap().checkouts;
    f.config("default.toml", &config("3MiB", 6, false));
    let report = pools.reload(&f.load().unwrap()).unwrap();
    load.reloaded.store(true, Ordering::SeqCst);
    let keys: Vec<_> = report.changes.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "databases.main.pragmas.cache_size",
            "databases.main.pool.max_size"
        ]
    );
    assert_eq!(report.changes[0].old, "2MiB");
    assert_eq!(report.changes[0].new, "3MiB");
    assert_eq!(report.rebuilt, ["main"]);
    while load.after.load(Ordering::SeqCst) < 2000 {
        std::thread::yield_now();
    }
    load.stop.store(true, Ordering::SeqCst);
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(load.failed.load(Ordering::SeqCst), 0);
    assert_eq!(load.stale.load(Ordering::SeqCst), 0);
    let stats = pools.stats_for("main").unwrap();
    assert_eq!(stats.max_size, 6);
    // Counters ran on across the reload.
    assert!(
        stats.checkouts >= before + 2000,
        "{} < {before} + 2000",
        stats.checkouts
    );
    // A handle taken before the reload sees the new pool.
    let conn = pools.handle("main").unwrap().get().unwrap();
    assert_eq!(cache_size(&conn), -3072);
    assert_eq!(pools.settings().databases["main"].pool.max_size, 6);
}

/// A split database: group-commit writes and readers run through the reload; the writer and
/// the readers both get the new cache_size, the readers' pool grows.
#[test]
fn reload_of_a_split_database_keeps_one_writer_and_fails_no_write() {
    let f = Fixture::new(&config("2MiB", 3, true));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    pools
        .write("main", |c| c.execute_batch("CREATE TABLE t(x INTEGER)"))
        .unwrap();
    let load = Arc::new(Load::default());
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (pools, load) = (pools.clone(), load.clone());
            std::thread::spawn(move || {
                while !load.stop.load(Ordering::SeqCst) {
                    let after = load.reloaded.load(Ordering::SeqCst);
                    let seen = if i % 2 == 0 {
                        pools.write("main", |c| {
                            c.execute("INSERT INTO t VALUES (1)", [])?;
                            c.query_row("PRAGMA cache_size", [], |r| r.get::<_, i64>(0))
                        })
                    } else {
                        pools.reader("main").map(|c| cache_size(&c))
                    };
                    match seen {
                        Ok(cache) => {
                            load.checkouts.fetch_add(1, Ordering::SeqCst);
                            if after {
                                load.after.fetch_add(1, Ordering::SeqCst);
                                if cache != -3072 {
                                    load.stale.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                        }
                        Err(e) => {
                            eprintln!("failed: {e}");
                            load.failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            })
        })
        .collect();
    while load.checkouts.load(Ordering::SeqCst) < 300 {
        std::thread::yield_now();
    }
    f.config("default.toml", &config("3MiB", 5, true));
    let report = pools.reload(&f.load().unwrap()).unwrap();
    load.reloaded.store(true, Ordering::SeqCst);
    assert_eq!(report.rebuilt, ["main.writer", "main.readers"]);
    while load.after.load(Ordering::SeqCst) < 1000 {
        std::thread::yield_now();
    }
    load.stop.store(true, Ordering::SeqCst);
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(load.failed.load(Ordering::SeqCst), 0);
    assert_eq!(load.stale.load(Ordering::SeqCst), 0);
    assert_eq!(pools.stats_for("main.readers").unwrap().max_size, 5);
    assert_eq!(pools.stats_for("main.writer").unwrap().max_size, 1);
    let rows: i64 = pools
        .reader("main")
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    let writes = pools.database_stats()["main"]
        .write
        .as_ref()
        .unwrap()
        .writes;
    // Every acknowledged write is there (the CREATE TABLE was a write too).
    assert_eq!(rows as u64, writes - 1);
}

#[test]
fn a_change_that_needs_a_restart_is_refused_naming_the_key_and_nothing_changes() {
    let f = Fixture::new(&config("2MiB", 4, false));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    let text = config("3MiB", 6, false).replace("\"wal\"", "\"delete\"");
    f.config("default.toml", &text);
    let err = pools.reload(&f.load().unwrap()).unwrap_err();
    match &err {
        Error::RestartRequired { key, old, new } => {
            assert_eq!(key, "databases.main.pragmas.journal_mode");
            assert_eq!((old.as_str(), new.as_str()), ("wal", "delete"));
        }
        other => panic!("expected RestartRequired, got {other:?}"),
    }
    assert!(err.to_string().contains("restart"), "{err}");
    let text = config("2MiB", 4, false).replace("main.db", "other.db");
    f.config("default.toml", &text);
    match pools.reload(&f.load().unwrap()).unwrap_err() {
        Error::RestartRequired { key, .. } => assert_eq!(key, "databases.main.path"),
        other => panic!("expected RestartRequired, got {other:?}"),
    }
    let text = config("2MiB", 4, true);
    f.config("default.toml", &text);
    match pools.reload(&f.load().unwrap()).unwrap_err() {
        Error::RestartRequired { key, old, new } => {
            assert_eq!(
                (key.as_str(), old.as_str(), new.as_str()),
                ("databases.main.split", "off", "on")
            )
        }
        other => panic!("expected RestartRequired, got {other:?}"),
    }
    assert_eq!(cache_size(&pools.get("main").unwrap()), -2048);
    assert_eq!(pools.stats_for("main").unwrap().max_size, 4);
}

#[test]
fn a_reload_that_fails_validation_leaves_everything_as_it_was() {
    let f = Fixture::new(&config("2MiB", 4, false));
    let settings = f.load().unwrap();
    let pools = Pools::new(&settings).unwrap();
    // An invalid file is refused when it loads: there is nothing to reload.
    f.config(
        "default.toml",
        &(config("3MiB", 6, false) + "\nbogus = 1\n"),
    );
    let err = f.load().unwrap_err().to_string();
    assert!(err.contains("bogus"), "{err}");
    // A budget the new pools would exceed (enforced): refused by the reload, nothing applied.
    let text = config("300MiB", 6, false).replace(
        "cache_size = \"300MiB\"",
        "cache_size = \"300MiB\"\nenforce_budget = true",
    ) + "\n[limits]\nmemory_budget = \"1GiB\"\n";
    f.config("default.toml", &text);
    let err = pools.reload(&f.load().unwrap()).unwrap_err();
    assert!(matches!(err, Error::OverBudget { .. }), "{err:?}");
    assert_eq!(cache_size(&pools.get("main").unwrap()), -2048);
    assert_eq!(pools.stats_for("main").unwrap().max_size, 4);
    assert_eq!(pools.settings().databases["main"].pool.max_size, 4);
    // The same reload as before then works.
    f.config("default.toml", &config("3MiB", 6, false));
    pools.reload(&f.load().unwrap()).unwrap();
    assert_eq!(cache_size(&pools.get("main").unwrap()), -3072);
}

#[test]
fn a_reload_that_changes_the_profile_names_it_in_the_statistics() {
    let f = Fixture::new(&config("2MiB", 2, false));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    drop(pools.get("main").unwrap());
    let before = pools.stats_for("main").unwrap().checkouts;
    let text = config("3MiB", 2, false)
        .replace("[profiles.p]", "[profiles.q]")
        .replace("profile = \"p\"", "profile = \"q\"");
    f.config("default.toml", &text);
    let report = pools.reload(&f.load().unwrap()).unwrap();
    let profile = report
        .changes
        .iter()
        .find(|c| c.key == "databases.main.profile")
        .unwrap();
    assert_eq!((profile.old.as_str(), profile.new.as_str()), ("p", "q"));
    assert_eq!(pools.stats_for("main").unwrap().profile, "q");
    assert_eq!(pools.database_stats()["main"].profile, "q");
    drop(pools.get("main").unwrap());
    assert_eq!(pools.stats_for("main").unwrap().checkouts, before + 1);
}

/// A reload of a split database waits for the write under way: it takes the old writer out
/// before the new one is in force, so two writer connections are never handed out at once.
#[test]
fn a_reload_waits_for_the_writer_in_use_before_the_new_writer_is_in_force() {
    let f = Fixture::new(&config("2MiB", 2, true));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    // Checkouts count themselves as waiting while an admin socket is served.
    let dir = f.path("run");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let _admin = pools.serve_admin(dir.join("a.sock")).unwrap();
    let writer = pools.writer("main").unwrap();
    assert_eq!(cache_size(&writer), -2048);
    f.config("default.toml", &config("3MiB", 2, true));
    let settings = f.load().unwrap();
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let reload = {
        let (pools, events) = (pools.clone(), events.clone());
        std::thread::spawn(move || {
            let report = pools.reload(&settings);
            events.lock().unwrap().push("reloaded");
            report
        })
    };
    // The reload waits for the writer held here.
    let named = pools.named("main.writer").unwrap();
    while named.waiting().0 != 1 {
        std::thread::yield_now();
    }
    events.lock().unwrap().push("released");
    drop(writer);
    let report = reload.join().unwrap().unwrap();
    assert_eq!(*events.lock().unwrap(), ["released", "reloaded"]);
    assert_eq!(report.rebuilt, ["main.writer", "main.readers"]);
    let writer = pools.writer("main").unwrap();
    assert_eq!(cache_size(&writer), -3072);
    assert!(pools.stats_for("main.writer").unwrap().connections <= 1);
}
