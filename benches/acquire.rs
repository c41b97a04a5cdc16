//! Checkout cost on a warm pool: r2d2's default `test_on_check_out(true)` against litepool's
//! default `false`, a bare r2d2_sqlite pool against litepool's `Pools`, and a point read for
//! scale. Run: `cargo bench --bench acquire`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use litepool::{Pools, Settings};
use r2d2_sqlite::SqliteConnectionManager;

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = wal;
         CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT, email TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
         INSERT INTO customers SELECT i, 'name ' || i, 'user' || i || '@example.com' FROM n;",
    )
    .unwrap();
    (dir, path)
}

fn bare(path: &std::path::Path, test_on_check_out: bool) -> r2d2::Pool<SqliteConnectionManager> {
    r2d2::Pool::builder()
        .max_size(4)
        .test_on_check_out(test_on_check_out)
        .build(SqliteConnectionManager::file(path))
        .unwrap()
}

fn litepool_pools(dir: &std::path::Path, path: &std::path::Path) -> Pools {
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("default.toml"),
        format!(
            "[databases.bench]\npath = {:?}\n[databases.bench.pragmas]\njournal_mode = \"wal\"\nbusy_timeout = \"5s\"\n[databases.bench.pool]\nmax_size = 4\n",
            path.display().to_string()
        ),
    )
    .unwrap();
    let settings = Settings::loader()
        .dir(config)
        .vars(Default::default())
        .load()
        .unwrap();
    Pools::new(&settings).unwrap()
}

fn point_read(conn: &rusqlite::Connection, id: i64) -> String {
    conn.prepare_cached("SELECT email FROM customers WHERE id = ?1")
        .unwrap()
        .query_row([id], |r| r.get(0))
        .unwrap()
}

fn acquire(c: &mut Criterion) {
    let (dir, path) = setup();
    let r2d2_default = bare(&path, true);
    let r2d2_no_test = bare(&path, false);
    let pools = litepool_pools(dir.path(), &path);
    let lite = pools.pool("bench").unwrap();

    let mut g = c.benchmark_group("checkout");
    g.bench_function("r2d2_sqlite, test_on_check_out=true (r2d2 default)", |b| {
        b.iter(|| drop(r2d2_default.get().unwrap()))
    });
    g.bench_function("r2d2_sqlite, test_on_check_out=false", |b| {
        b.iter(|| drop(r2d2_no_test.get().unwrap()))
    });
    let named = pools.named("bench").unwrap();
    g.bench_function(
        "litepool NamedPool::get, stats on (events + cache sampling)",
        |b| b.iter(|| drop(named.get().unwrap())),
    );
    g.bench_function("litepool pool via r2d2 get, event handler only", |b| {
        b.iter(|| drop(lite.get().unwrap()))
    });
    g.finish();

    let mut g = c.benchmark_group("checkout+point_read");
    let mut id = 0i64;
    g.bench_function("r2d2_sqlite, test_on_check_out=true (r2d2 default)", |b| {
        b.iter(|| {
            id = id % 10_000 + 1;
            point_read(&r2d2_default.get().unwrap(), id)
        })
    });
    g.bench_function(
        "r2d2_sqlite, test_on_check_out=false (no event handler)",
        |b| {
            b.iter(|| {
                id = id % 10_000 + 1;
                point_read(&r2d2_no_test.get().unwrap(), id)
            })
        },
    );
    g.bench_function(
        "litepool NamedPool::get, stats on (events + cache sampling)",
        |b| {
            b.iter(|| {
                id = id % 10_000 + 1;
                point_read(&named.get().unwrap(), id)
            })
        },
    );
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = acquire
}
criterion_main!(benches);
