//! Group commit in criterion: 8 threads inserting one audit row per call, a plain pool of 8
//! (`BEGIN IMMEDIATE` per caller) against the writer/readers split with group commit
//! (`pools.write`), with `synchronous = "full"` and `"normal"`. An iteration is one acknowledged
//! insert. Run: `cargo bench --bench write_path`.

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

fn insert(pools: &Pools, group: bool) {
    let body = |c: &rusqlite::Connection| {
        c.prepare_cached("INSERT INTO audit(details) VALUES ('login from 10.0.0.1')")?
            .execute([])
            .map(drop)
    };
    if group {
        pools.write("w", body).unwrap();
    } else {
        let mut c = pools.writer("w").unwrap();
        let tx = c.transaction().unwrap();
        body(&tx).unwrap();
        tx.commit().unwrap();
    }
}

fn write_path(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    for sync in ["full", "normal"] {
        let mut g = c.benchmark_group(format!("audit_insert_8_threads/synchronous={sync}"));
        for (name, group) in [("plain pool", false), ("group commit", true)] {
            let file = format!("{sync}-{}", name.replace(' ', "_"));
            let pools = pools(dir.path(), &file, sync, group);
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let per_thread = iters.div_ceil(8);
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for _ in 0..8 {
                            let pools = &pools;
                            s.spawn(move || {
                                for _ in 0..per_thread {
                                    insert(pools, group);
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
