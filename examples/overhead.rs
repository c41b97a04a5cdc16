//! The cost of litepool's statistics on the checkout path, two ways that hold up on a noisy,
//! shared machine:
//!
//! - `overhead VARIANT N` runs one variant N times, for counting instructions under callgrind
//!   (`benches/overhead.sh` runs each variant twice and takes the difference, so setup cancels);
//! - `overhead compare ROUNDS` times a bare r2d2_sqlite pool (no event handler) and litepool's
//!   `NamedPool::get` with statistics on and off, in alternating blocks in one process, and prints
//!   the median time per operation of each and the ratios, for `get()+drop` and
//!   `get()+point read+drop`.

use litepool::{Pools, Settings};
use r2d2_sqlite::SqliteConnectionManager;

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (variant, n): (&str, u64) = (&args[1], args[2].parse().unwrap());
    if variant == "compare" {
        return compare(n);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    setup_db(&path);
    let read = |c: &rusqlite::Connection, i: u64| {
        c.prepare_cached("SELECT email FROM customers WHERE id = ?1")
            .unwrap()
            .query_row([(i % 1000 + 1) as i64], |r| r.get::<_, String>(0))
            .unwrap()
    };
    match variant {
        "bare" | "bare-read" => {
            let pool = r2d2::Pool::builder()
                .max_size(4)
                .test_on_check_out(false)
                .build(SqliteConnectionManager::file(&path))
                .unwrap();
            for i in 0..n {
                let c = pool.get().unwrap();
                if variant == "bare-read" {
                    read(&c, i);
                }
            }
        }
        "litepool" | "litepool-read" | "litepool-off" => {
            let pools = litepool_pools(dir.path(), &path);
            let pool = pools
                .named(if variant == "litepool-off" {
                    "off"
                } else {
                    "on"
                })
                .unwrap();
            for i in 0..n {
                let c = pool.get().unwrap();
                if variant == "litepool-read" {
                    read(&c, i);
                }
            }
        }
        other => panic!("unknown variant {other}"),
    }
}

/// Two litepool pools of 4: `on` with statistics on `path`, `off` without on a copy of it (one
/// file is one database).
fn litepool_pools(dir: &std::path::Path, path: &std::path::Path) -> Pools {
    let config = dir.join("config");
    std::fs::create_dir(&config).unwrap();
    let copy = dir.join("copy.db");
    std::fs::copy(path, &copy).unwrap();
    let toml = format!(
        "[databases.on]\npath = {p:?}\n[databases.on.pool]\nmax_size = 4\n\
         [databases.off]\npath = {c:?}\n[databases.off.pool]\nmax_size = 4\nstats = false\n",
        p = path.display().to_string(),
        c = copy.display().to_string()
    );
    std::fs::write(config.join("default.toml"), toml).unwrap();
    let settings = Settings::loader()
        .dir(config)
        .vars(Default::default())
        .load()
        .unwrap();
    Pools::new(&settings).unwrap()
}

fn setup_db(path: &std::path::Path) {
    let setup = rusqlite::Connection::open(path).unwrap();
    setup
        .execute_batch(
            "PRAGMA journal_mode = wal;
             CREATE TABLE customers(id INTEGER PRIMARY KEY, email TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
             INSERT INTO customers SELECT i, 'user' || i || '@example.com' FROM n;",
        )
        .unwrap();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn compare(rounds: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    setup_db(&path);
    let bare = r2d2::Pool::builder()
        .max_size(4)
        .test_on_check_out(false)
        .build(SqliteConnectionManager::file(&path))
        .unwrap();
    let pools = litepool_pools(dir.path(), &path);
    let on = pools.named("on").unwrap();
    let off = pools.named("off").unwrap();
    let read = |c: &rusqlite::Connection, i: u64| {
        c.prepare_cached("SELECT email FROM customers WHERE id = ?1")
            .unwrap()
            .query_row([(i % 1000 + 1) as i64], |r| r.get::<_, String>(0))
            .unwrap()
    };
    const BLOCK: u64 = 20_000;
    for with_read in [false, true] {
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        let per_op = |t: Instant, n: u64| t.elapsed().as_nanos() as f64 / n as f64;
        for _ in 0..rounds {
            let t = Instant::now();
            for i in 0..BLOCK {
                let conn = bare.get().unwrap();
                if with_read {
                    read(&conn, i);
                }
            }
            a.push(per_op(t, BLOCK));
            for (pool, times) in [(on, &mut b), (off, &mut c)] {
                let t = Instant::now();
                for i in 0..BLOCK {
                    let conn = pool.get().unwrap();
                    if with_read {
                        read(&conn, i);
                    }
                }
                times.push(per_op(t, BLOCK));
            }
        }
        let (a, b, c) = (median(a), median(b), median(c));
        let what = if with_read {
            "get()+point read+drop"
        } else {
            "get()+drop"
        };
        println!(
            "{what:<22} bare {a:7.1} ns/op | litepool stats on {b:7.1} ns/op, ratio {:.3} | stats off {c:7.1} ns/op, ratio {:.3}",
            b / a,
            c / a
        );
    }
}
