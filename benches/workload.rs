//! Workloads through pools of 8, one connection per operation, under each profile of
//! `config/default.toml` side by side: SQLite's defaults, the original team's settings as run
//! (cache -500 = 500KiB) and as meant (500MiB), and litepool's `recommended`, alone and with the
//! writer/readers split (`recommended+split`).
//! Run: `cargo bench --bench workload`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

// The command line's benchmark runner, compiled in as it is into the binary.
#[allow(dead_code)]
#[path = "../src/bin/litepool/bench.rs"]
mod bench;
#[allow(dead_code)]
#[path = "../src/bin/litepool/datagen.rs"]
mod datagen;
#[allow(dead_code)]
#[path = "../src/bin/litepool/measure.rs"]
mod measure;
#[allow(dead_code)]
#[path = "../src/bin/litepool/scratch.rs"]
mod scratch;

use bench::{prepare_sources, Sources, Target, Workload, DEFAULT_PROFILES};
use criterion::{criterion_group, criterion_main, Criterion};
use datagen::Rng;
use litepool::Settings;

fn workloads(c: &mut Criterion) {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let settings = Settings::loader()
        .dir(config)
        .env("development")
        .vars(Default::default())
        .load()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("sources");
    std::fs::create_dir(&src).unwrap();
    let sources = prepare_sources(&src, &Sources::default(), 1, 1).unwrap();
    let mut targets: Vec<(&str, Target)> = DEFAULT_PROFILES
        .iter()
        .map(|name| {
            let profile = &settings.profiles[*name];
            (
                *name,
                Target::open(&tmp.path().join(name), &sources, profile, false).unwrap(),
            )
        })
        .collect();
    // The same recommended profile with one writer and 8 readers per database.
    let split = Target::open(
        &tmp.path().join("split"),
        &sources,
        &settings.profiles["recommended"],
        true,
    );
    targets.push(("recommended+split", split.unwrap()));

    for workload in [
        Workload::PointRead,
        Workload::AssignedBatches,
        Workload::AuditInsert,
        Workload::JobUpdate,
    ] {
        let mut g = c.benchmark_group(format!("workload/{workload}"));
        if workload == Workload::PointRead {
            // The ceiling: one bare rusqlite connection, cached statement, no pool.
            let conn =
                rusqlite::Connection::open(tmp.path().join("recommended/prod_customer_data.db"))
                    .unwrap();
            let mut rng = Rng::new(1);
            g.bench_function("ceiling: bare connection, cached statement", |b| {
                b.iter(|| {
                    let id = rng.below(15_000) as i64 + 1;
                    conn.prepare_cached(
                        "SELECT name, email, status, batch_id FROM customers WHERE id = ?1",
                    )
                    .unwrap()
                    .query_row([id], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    })
                    .unwrap()
                })
            });
        }
        for (name, target) in &targets {
            let mut rng = Rng::new(2);
            g.bench_function(*name, |b| b.iter(|| target.op(workload, &mut rng).unwrap()));
        }
        g.finish();
    }

    // 8 threads, 80% reads and 20% writes over the three databases. An iteration is one
    // *completed* operation: one that fails with SQLITE_BUSY is retried (the time it took counts)
    // until it completes, so a profile that fails often is not flattered. The failures are
    // printed per profile.
    let mut g = c.benchmark_group("workload/mixed_8_threads");
    for (name, target) in &targets {
        let busy = AtomicU64::new(0);
        let total = AtomicU64::new(0);
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let per_thread = iters.div_ceil(8);
                let start = Instant::now();
                std::thread::scope(|s| {
                    for t in 0..8u64 {
                        let (busy, target) = (&busy, target);
                        s.spawn(move || {
                            let mut rng = Rng::new(100 + t);
                            let mut done = 0;
                            while done < per_thread {
                                match target.op(Workload::Mixed, &mut rng) {
                                    Ok(()) => done += 1,
                                    Err(e) => {
                                        assert!(e.is_busy(), "{e}");
                                        busy.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                            }
                        });
                    }
                });
                total.fetch_add(per_thread * 8, Ordering::Relaxed);
                start.elapsed()
            })
        });
        eprintln!(
            "workload/mixed_8_threads/{name}: {} attempts failed with SQLITE_BUSY and were retried, for {} completed operations",
            busy.load(Ordering::Relaxed),
            total.load(Ordering::Relaxed)
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = workloads
}
criterion_main!(benches);
