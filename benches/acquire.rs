//! Checkout and connection-creation costs. Run: `cargo bench --bench acquire`.
//!
//! - `checkout`: `get()`+drop on a warm pool of 4: r2d2_sqlite with r2d2's defaults
//!   (`test_on_check_out(true)`), the same with `test_on_check_out(false)`, and litepool's pool
//!   (test off) with statistics on and off.
//! - `checkout+point_read`: the same with a point read by primary key, for scale.
//! - `connect/<profile>`: opening one connection and applying the profile, with and without
//!   reading every pragma back.

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
/// The shipped profiles compared (as `litepool bench` compares them by default).
const DEFAULT_PROFILES: [&str; 4] = [
    "sqlite_defaults",
    "original_as_run",
    "original_intent",
    "recommended",
];
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

fn bare(path: &Path, test_on_check_out: bool) -> r2d2::Pool<SqliteConnectionManager> {
    r2d2::Pool::builder()
        .max_size(4)
        .test_on_check_out(test_on_check_out)
        .build(SqliteConnectionManager::file(path))
        .unwrap()
}

fn litepool_pools(dir: &Path, path: &Path, stats: bool) -> Pools {
    let config = dir.join(format!("config-{stats}"));
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("default.toml"),
        format!(
            "[databases.bench]\npath = {:?}\n[databases.bench.pragmas]\njournal_mode = \"wal\"\nbusy_timeout = \"5s\"\n[databases.bench.pool]\nmax_size = 4\nstats = {stats}\n",
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
    let with_stats = litepool_pools(dir.path(), &path, true);
    let without_stats = litepool_pools(dir.path(), &path, false);
    let named = with_stats.named("bench").unwrap();
    let named_off = without_stats.named("bench").unwrap();

    let mut g = c.benchmark_group("checkout");
    g.bench_function("r2d2_sqlite, test_on_check_out=true (r2d2 default)", |b| {
        b.iter(|| drop(r2d2_default.get().unwrap()))
    });
    g.bench_function("r2d2_sqlite, test_on_check_out=false", |b| {
        b.iter(|| drop(r2d2_no_test.get().unwrap()))
    });
    g.bench_function("litepool, stats off", |b| {
        b.iter(|| drop(named_off.get().unwrap()))
    });
    g.bench_function("litepool, stats on", |b| {
        b.iter(|| drop(named.get().unwrap()))
    });
    g.finish();

    let mut g = c.benchmark_group("checkout+point_read");
    let mut id = 0i64;
    let mut next = || {
        id = id % 10_000 + 1;
        id
    };
    g.bench_function("r2d2_sqlite, test_on_check_out=true (r2d2 default)", |b| {
        b.iter(|| point_read(&r2d2_default.get().unwrap(), next()))
    });
    g.bench_function("r2d2_sqlite, test_on_check_out=false", |b| {
        b.iter(|| point_read(&r2d2_no_test.get().unwrap(), next()))
    });
    g.bench_function("litepool, stats off", |b| {
        b.iter(|| point_read(&named_off.get().unwrap(), next()))
    });
    g.bench_function("litepool, stats on", |b| {
        b.iter(|| point_read(&named.get().unwrap(), next()))
    });
    g.finish();

    // Looking a database up by name on every checkout, against a handle resolved once.
    let handle = with_stats.handle("bench").unwrap();
    let mut g = c.benchmark_group("lookup");
    g.bench_function("pools.get(name)", |b| {
        b.iter(|| drop(with_stats.get("bench").unwrap()))
    });
    g.bench_function("handle.get()", |b| b.iter(|| drop(handle.get().unwrap())));
    g.finish();

    // What the guards against leaks and moved files cost, or would cost on the checkout path.
    let mut g = c.benchmark_group("guards");
    // The pragma guard (an authorizer) runs when a statement is prepared, not from the cache.
    g.bench_function("prepare, bare r2d2_sqlite connection", |b| {
        let conn = r2d2_no_test.get().unwrap();
        b.iter(|| {
            conn.prepare("SELECT email FROM customers WHERE id = ?1")
                .unwrap()
                .query_row([7], |r| r.get::<_, String>(0))
                .unwrap()
        })
    });
    g.bench_function("prepare, litepool connection (pragma guard)", |b| {
        let conn = named_off.get().unwrap();
        b.iter(|| {
            conn.prepare("SELECT email FROM customers WHERE id = ?1")
                .unwrap()
                .query_row([7], |r| r.get::<_, String>(0))
                .unwrap()
        })
    });
    // A moved-file check at every checkout would cost a stat of the path; litepool's watcher
    // thread does it every 500ms instead and the checkout reads one flag.
    g.bench_function("stat of the database path", |b| {
        b.iter(|| std::fs::metadata(&path).unwrap().len())
    });
    g.finish();

    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let settings = Settings::loader()
        .dir(config)
        .env("development")
        .vars(Default::default())
        .load()
        .unwrap();
    let mut g = c.benchmark_group("connect");
    for name in DEFAULT_PROFILES {
        let profile = &settings.profiles[name];
        // Bootstrap once, so that every measured connection is a pooled one (journal verified).
        let mut first = rusqlite::Connection::open(&path).unwrap();
        profile.apply(&mut first, "bench", true).unwrap();
        drop(first);
        g.bench_function(format!("{name}: open + apply"), |b| {
            b.iter(|| {
                let mut conn = rusqlite::Connection::open(&path).unwrap();
                profile.apply(&mut conn, "bench", false).unwrap();
                conn
            })
        });
        g.bench_function(format!("{name}: open + apply + read back"), |b| {
            b.iter(|| {
                let mut conn = rusqlite::Connection::open(&path).unwrap();
                profile.apply(&mut conn, "bench", false).unwrap();
                profile.verify(&mut conn, "bench").unwrap();
                conn
            })
        });
    }
    g.finish();
}

/// The adapters' checkout against the same driver's pool without litepool, side by side
/// (`cargo bench --bench acquire --features diesel,deadpool`).
#[cfg(any(feature = "diesel", feature = "deadpool"))]
fn adapters(c: &mut Criterion) {
    let (dir, path) = setup();
    let toml = |name: &str, file: &Path| {
        format!(
            "[profiles.p]\nbusy_timeout = \"5s\"\njournal_mode = \"wal\"\n\
             [databases.{name}]\npath = {:?}\nprofile = \"p\"\n[databases.{name}.pool]\nmax_size = 4\n",
            file.display().to_string()
        )
    };
    let mut g = c.benchmark_group("adapters");
    #[cfg(feature = "diesel")]
    {
        use diesel::r2d2::ConnectionManager;
        use diesel::sqlite::SqliteConnection;
        let bare: r2d2::Pool<ConnectionManager<SqliteConnection>> = r2d2::Pool::builder()
            .max_size(4)
            .test_on_check_out(false)
            .build(ConnectionManager::new(path.display().to_string()))
            .unwrap();
        let copy = dir.path().join("diesel.db");
        std::fs::copy(&path, &copy).unwrap();
        let settings = Settings::from_toml(&toml("d", &copy)).unwrap();
        let pools = litepool::diesel::Pools::new(&settings).unwrap();
        g.bench_function("diesel r2d2, test_on_check_out=false: get()+drop", |b| {
            b.iter(|| drop(bare.get().unwrap()))
        });
        g.bench_function("litepool::diesel::Pools: get()+drop", |b| {
            b.iter(|| drop(pools.get("d").unwrap()))
        });
    }
    #[cfg(feature = "deadpool")]
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // deadpool-sqlite closes its connections on the runtime: the pools drop inside it.
        let _inside = rt.enter();
        let copy = dir.path().join("deadpool.db");
        std::fs::copy(&path, &copy).unwrap();
        let (bare, pools) = rt.block_on(async {
            let bare = deadpool_sqlite::Config::new(&path)
                .builder(deadpool_sqlite::Runtime::Tokio1)
                .unwrap()
                .max_size(4)
                .build()
                .unwrap();
            let settings = Settings::from_toml(&toml("a", &copy)).unwrap();
            (bare, litepool::deadpool::Pools::new(&settings).unwrap())
        });
        g.bench_function("deadpool-sqlite: get().await+drop", |b| {
            b.iter(|| rt.block_on(async { drop(bare.get().await.unwrap()) }))
        });
        g.bench_function("litepool::deadpool::Pools: get().await+drop", |b| {
            b.iter(|| rt.block_on(async { drop(pools.get("a").await.unwrap()) }))
        });
    }
    g.finish();
}

#[cfg(not(any(feature = "diesel", feature = "deadpool")))]
fn adapters(_: &mut Criterion) {}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = acquire, adapters
}
criterion_main!(benches);
