//! Group commit in criterion: 8 threads (and 1) inserting one audit row per call, a stock r2d2
//! pool of 8 (`r2d2_sqlite`, `test_on_check_out(false)`, the same pragmas as plain SQL, `BEGIN
//! IMMEDIATE` per caller) against the writer/readers split with group commit (`pools.write`),
//! with `synchronous = "full"` and `"normal"`. An iteration is one acknowledged insert. Run:
//! `cargo bench --bench write_path`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use litepool::{Pools, Settings};

fn pools(dir: &std::path::Path, name: &str, synchronous: &str, split: bool) -> Pools {
    let toml = format!(
        "[profiles.p]\nbusy_timeout = \"5s\"\njournal_mode = \"wal\"\nsynchronous = \"{synchronous}\"\ntransaction_behavior = \"immediate\"\n\
         [databases.w]\npath = {:?}\nprofile = \"p\"\n[databases.w.pool]\nmax_size = 8\n{}",
        dir.join(format!("{name}.db")).display().to_string(),
        if split { "[databases.w.writer]\n[databases.w.readers]\nmax_size = 8\n" } else { "" }
    );
    let pools = Pools::new(&Settings::from_toml(&toml).unwrap()).unwrap();
    pools
        .writer("w")
        .unwrap()
        .execute_batch("CREATE TABLE audit(id INTEGER PRIMARY KEY, details TEXT)")
        .unwrap();
    pools
}

enum Target {
    Stock(r2d2::Pool<r2d2_sqlite::SqliteConnectionManager>),
    Group(Pools),
}

fn stock(dir: &std::path::Path, name: &str, synchronous: &str) -> Target {
    let init = format!(
        "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = wal; PRAGMA synchronous = {synchronous};"
    );
    let manager = r2d2_sqlite::SqliteConnectionManager::file(dir.join(format!("{name}.db")))
        .with_init(move |c| c.execute_batch(&init));
    let pool = r2d2::Pool::builder()
        .max_size(8)
        .test_on_check_out(false)
        .build(manager)
        .unwrap();
    pool.get()
        .unwrap()
        .execute_batch("CREATE TABLE audit(id INTEGER PRIMARY KEY, details TEXT)")
        .unwrap();
    Target::Stock(pool)
}

fn insert(target: &Target) {
    let body = |c: &rusqlite::Connection| {
        c.prepare_cached("INSERT INTO audit(details) VALUES ('login from 10.0.0.1')")?
            .execute([])
            .map(drop)
    };
    match target {
        Target::Group(pools) => pools.write("w", move |c| body(c)).unwrap(),
        Target::Stock(pool) => {
            let mut c = pool.get().unwrap();
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .unwrap();
            body(&tx).unwrap();
            tx.commit().unwrap();
        }
    }
}

fn write_path(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    for (sync, threads) in [("full", 8u64), ("normal", 8), ("normal", 1)] {
        let mut g = c.benchmark_group(format!("audit_insert_{threads}_threads/synchronous={sync}"));
        for name in ["stock pool", "group commit"] {
            let file = format!("{sync}-{threads}-{}", name.replace(' ', "_"));
            let target = if name == "stock pool" {
                stock(dir.path(), &file, sync)
            } else {
                Target::Group(pools(dir.path(), &file, sync, true))
            };
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let per_thread = iters.div_ceil(threads);
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for _ in 0..threads {
                            let target = &target;
                            s.spawn(move || {
                                for _ in 0..per_thread {
                                    insert(target);
                                }
                            });
                        }
                    });
                    start.elapsed()
                })
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    targets = write_path
}
criterion_main!(benches);
