use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use litepool::{Error, Pools};

use crate::common::*;

fn open(profile: &str, pool: &str) -> (Fixture, Pools) {
    let f = Fixture::new(&one_db(profile, pool));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    (f, pools)
}

#[test]
fn n_gets_are_n_checkouts_and_n_checkins() {
    let (_f, pools) = open("journal_mode = \"wal\"", "max_size = 2");
    for i in 0..10 {
        let c = pools.get("main").unwrap();
        c.query_row("SELECT ?1", [i], |r| r.get::<_, i64>(0))
            .unwrap();
    }
    let s = pools.stats_for("main").unwrap();
    assert_eq!((s.checkouts, s.checkins, s.timeouts), (10, 10, 0));
    assert_eq!((s.wait.count, s.hold.count), (10, 10));
    assert_eq!((s.connections, s.idle, s.in_use, s.max_size), (2, 2, 0, 2));
    assert_eq!(s.connections_created, 2);
    assert_eq!(
        (
            s.connections_closed,
            s.customizer_failures,
            s.connection_errors
        ),
        (0, 0, 0)
    );
    assert!(s.hold.max >= s.hold.p50 && s.hold.total >= s.hold.max);
    // A connection checked out counts as in use until it is back.
    let held = pools.get("main").unwrap();
    let s = pools.stats_for("main").unwrap();
    assert_eq!((s.checkouts, s.checkins, s.in_use), (11, 10, 1));
    drop(held);
    pools.reset_stats();
    let s = pools.stats_for("main").unwrap();
    assert_eq!(
        (s.checkouts, s.checkins, s.hold.max),
        (0, 0, Duration::ZERO)
    );
    drop(pools.get("main").unwrap());
    assert_eq!(pools.stats_for("main").unwrap().checkouts, 1);
}

#[test]
fn an_exhausted_pool_counts_timeouts_and_the_wait_histogram_moves() {
    let (_f, pools) = open("", "max_size = 1\nconnection_timeout = \"150ms\"");
    let held = pools.get("main").unwrap();
    let before = pools.stats_for("main").unwrap();
    assert!(
        before.wait.max < Duration::from_millis(100),
        "{:?}",
        before.wait
    );
    let err = pools.get("main").unwrap_err();
    assert!(matches!(err, Error::Timeout { cause: None, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "pool \"main\": no connection within 150ms: all 1 connection(s) were in use"
    );
    let s = pools.stats_for("main").unwrap();
    assert_eq!((s.timeouts, s.checkouts, s.waited), (1, 1, 1));
    assert_eq!(s.wait.count, 2);
    assert!(s.wait.max >= Duration::from_millis(150), "{:?}", s.wait);
    assert!(s.wait.p99 >= Duration::from_millis(150), "{:?}", s.wait);
    drop(held);
}

#[test]
fn customizer_failures_are_counted_and_the_last_error_names_the_pragma() {
    // Exclusive locking: the first connection keeps the lock after its first read, so the next
    // new connection cannot read its pragmas back.
    let (_f, pools) = open(
        "allow_unsafe = true\nlocking_mode = \"exclusive\"\njournal_mode = \"wal\"\nbusy_timeout = \"20ms\"",
        "max_size = 2\nmin_idle = 1\nconnection_timeout = \"600ms\"",
    );
    let first = pools.get("main").unwrap();
    first
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap();
    assert!(pools.get("main").is_err());
    let s = pools.stats_for("main").unwrap();
    assert!(s.customizer_failures >= 1, "{s:?}");
    assert_eq!(s.timeouts, 1);
    let last = s.last_customizer_error.clone().expect("last error kept");
    assert!(
        last.message
            .starts_with("database \"main\": pragma journal_mode: database is locked"),
        "{}",
        last.message
    );
    assert!(last.at.elapsed().unwrap() < Duration::from_secs(10));
    let shown = s.to_string();
    assert!(shown.contains("last customizer error"), "{shown}");
}

fn scan(pools: &Pools) -> i64 {
    let c = pools.get("main").unwrap();
    c.query_row("SELECT sum(length(payload)) FROM big", [], |r| r.get(0))
        .unwrap()
}

fn fill(pools: &Pools) {
    let c = pools.get("main").unwrap();
    c.execute_batch(
        "CREATE TABLE big(id INTEGER PRIMARY KEY, payload TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
         INSERT INTO big SELECT i, printf('%.400c', 'x') FROM n;",
    )
    .unwrap();
}

/// Runs in a process of its own: the bundled SQLite is built with
/// SQLITE_ENABLE_MEMORY_MANAGEMENT, so every connection's page cache is one global LRU whose
/// limit is the sum of all connections' cache_size; while another test of this process holds
/// large caches, a 16-page cache keeps the whole table and the misses this test counts on do not
/// happen.
#[test]
fn cache_hits_and_misses_move_when_a_table_larger_than_the_cache_is_scanned_twice() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "stats::cache_scan_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "helper: run alone in a child process by cache_hits_and_misses_move_when_a_table_larger_than_the_cache_is_scanned_twice"]
fn cache_scan_helper() {
    // ~2000 rows x 400 bytes: about 200 pages of 4KiB, against a cache of 16 pages.
    let (_f, pools) = open("cache_size = { pages = 16 }", "max_size = 1");
    fill(&pools);
    pools.reset_stats();
    assert_eq!(scan(&pools), 800_000);
    let first = pools.stats_for("main").unwrap().cache;
    assert!(first.miss >= 150, "{first:?}");
    assert_eq!(scan(&pools), 800_000);
    let second = pools.stats_for("main").unwrap().cache;
    assert!(
        second.miss >= first.miss + 150,
        "the cache is too small to keep the table: {second:?}"
    );
    assert!(second.hit > first.hit, "{second:?}");
    assert!(
        second.used_bytes > 0 && second.used_bytes < 1 << 20,
        "{second:?}"
    );

    // The same scans with a cache that holds the table: the second one is served from it.
    let (_f, pools) = open("cache_size = \"8MiB\"", "max_size = 1");
    fill(&pools);
    scan(&pools);
    pools.reset_stats();
    scan(&pools);
    let warm = pools.stats_for("main").unwrap().cache;
    assert!(warm.miss < 5 && warm.hit >= 200, "{warm:?}");
    assert!(warm.hit_ratio.unwrap() > 0.97, "{warm:?}");
    assert!(warm.used_bytes > 800_000, "{warm:?}");
}

#[test]
fn stats_stay_consistent_under_eight_threads() {
    let (_f, pools) = open(
        "journal_mode = \"wal\"\nbusy_timeout = \"5s\"",
        "max_size = 4",
    );
    pools
        .get("main")
        .unwrap()
        .execute_batch("CREATE TABLE t(x)")
        .unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let monitor = s.spawn(|| {
            let mut last = pools.stats_for("main").unwrap();
            let mut snapshots = 0;
            while !done.load(Ordering::Relaxed) {
                let now = pools.stats_for("main").unwrap();
                for (a, b, what) in [
                    (last.checkouts, now.checkouts, "checkouts"),
                    (last.checkins, now.checkins, "checkins"),
                    (last.wait.count, now.wait.count, "wait count"),
                    (last.hold.count, now.hold.count, "hold count"),
                    (last.cache.hit, now.cache.hit, "cache hits"),
                    (last.connections_created, now.connections_created, "created"),
                ] {
                    assert!(b >= a, "{what} went backwards: {a} -> {b}");
                }
                assert!(now.in_use <= now.max_size);
                last = now;
                snapshots += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            snapshots
        });
        let workers: Vec<_> = (0..8)
            .map(|t| {
                let pools = &pools;
                s.spawn(move || {
                    for i in 0..500 {
                        let c = pools.get("main").unwrap();
                        if i % 10 == 0 {
                            c.execute("INSERT INTO t VALUES (?1)", [t * 1000 + i])
                                .unwrap();
                        } else {
                            c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                                .unwrap();
                        }
                    }
                })
            })
            .collect();
        workers.into_iter().for_each(|w| w.join().unwrap());
        done.store(true, Ordering::Relaxed);
        assert!(monitor.join().unwrap() > 0);
    });
    let s = pools.stats_for("main").unwrap();
    assert_eq!(s.checkouts, 4001, "{s:?}");
    assert_eq!(s.checkins, s.checkouts);
    assert_eq!((s.in_use, s.timeouts), (0, 0));
    let rows: i64 = pools
        .get("main")
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 8 * 50);
}

#[test]
fn snapshot_serialises_and_displays() {
    let (_f, pools) = open("", "max_size = 1");
    drop(pools.get("main").unwrap());
    let json = serde_json::to_value(pools.stats()).unwrap();
    let main = &json["main"];
    for key in [
        "checkouts",
        "waited",
        "timeouts",
        "connections_created",
        "customizer_failures",
    ] {
        assert!(main[key].is_u64(), "{key}: {main}");
    }
    // Every duration says its unit in its name; the window and the origin are there.
    for key in [
        "count",
        "total_seconds",
        "max_seconds",
        "p50_seconds",
        "p90_seconds",
        "p99_seconds",
    ] {
        assert!(main["wait"][key].is_number(), "{key}: {main}");
    }
    assert!(main["elapsed_seconds"].as_f64().unwrap() >= 0.0, "{main}");
    let since = main["since"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(since).is_ok(), "{since}");
    assert_eq!(main["profile"], "p", "{main}");
    assert!(
        main["path"].as_str().unwrap().ends_with("main.db"),
        "{main}"
    );
    assert!(main["cache"]["hit_ratio"].is_null() || main["cache"]["hit_ratio"].is_f64());
    assert_eq!(main["checkouts"], 1);
    let text = pools.stats().to_string();
    assert!(
        text.starts_with(
            "main: 1 of 1 connections open, 1 idle, 0 in use (profile p; counters since "
        ) && text.contains("ago)\n  checkouts 1 (waited "),
        "{text}"
    );
    assert!(text.contains("page cache: hits"), "{text}");
}

#[test]
fn stats_can_be_turned_off_per_pool() {
    let (_f, pools) = open("", "max_size = 1\nstats = false");
    for _ in 0..3 {
        let c = pools.get("main").unwrap();
        c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).unwrap();
    }
    let s = pools.stats_for("main").unwrap();
    assert_eq!(
        (s.checkouts, s.checkins, s.cache.hit + s.cache.miss),
        (0, 0, 0)
    );
    assert_eq!(
        (s.connections, s.max_size),
        (1, 1),
        "r2d2's state is still there"
    );
}
