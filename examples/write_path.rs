//! The write path side by side, in one run: a plain pool of 8 (the shipped `recommended`
//! profile, `BEGIN IMMEDIATE`, one transaction per caller), the writer/readers split without
//! group commit (`pools.writer()`, one transaction per caller) and with it (`pools.write`),
//! 8 threads each, on fresh files:
//!
//! - audit inserts (one row per call), with `synchronous = "full"` and `"normal"`;
//! - job read-then-update (read a row, write it back changed, in one transaction);
//! - mixed: 80% point reads, 20% job updates.
//!
//! Prints completed operations per second, p50/p99/max latency, SQLITE_BUSY failures and the
//! largest WAL seen. Run: `cargo run --release --example write_path -- 3` (seconds per run).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use litepool::histogram::Histogram;
use litepool::{Pools, Settings};

const THREADS: u64 = 8;

fn pools(dir: &std::path::Path, name: &str, synchronous: &str, split: bool) -> Pools {
    let path = dir.join(format!("{name}.db"));
    let profiles = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml"),
    )
    .unwrap();
    let profiles = &profiles[..profiles.find("[databases.").unwrap()];
    let toml = format!(
        "{profiles}\n[databases.w]\npath = {:?}\nprofile = \"recommended\"\n[databases.w.pragmas]\nsynchronous = \"{synchronous}\"\n[databases.w.pool]\nmax_size = 8\n{}",
        path.display().to_string(),
        if split { "[databases.w.writer]\n[databases.w.readers]\nmax_size = 8\n" } else { "" }
    );
    let pools = Pools::new(&Settings::from_toml(&toml).unwrap()).unwrap();
    pools
        .writer("w")
        .unwrap()
        .execute_batch(
            "CREATE TABLE audit(id INTEGER PRIMARY KEY, at INTEGER, details TEXT);
             CREATE TABLE jobs(id INTEGER PRIMARY KEY, status INTEGER NOT NULL);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
             INSERT INTO jobs SELECT i, 0 FROM n;",
        )
        .unwrap();
    pools
}

#[derive(Clone, Copy)]
enum Work {
    Insert,
    ReadThenUpdate,
    Mixed,
}

#[derive(Clone, Copy, PartialEq)]
enum Stack {
    /// One pool of 8, a transaction per caller.
    Plain,
    /// Writer and readers, a transaction per caller on the one writer.
    Split,
    /// Writer and readers, group commit.
    GroupCommit,
}

/// One operation, through `stack`.
fn op(pools: &Pools, work: Work, stack: Stack, n: u64) -> litepool::Result<()> {
    let kind = match work {
        Work::Mixed if n % 5 != 0 => 0, // a point read
        Work::Insert => 1,
        _ => 2,
    };
    let id = (n % 200 + 1) as i64;
    if kind == 0 {
        let c = pools.reader("w")?;
        c.prepare_cached("SELECT status FROM jobs WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |r| r.get::<_, i64>(0)))
            .map_err(|source| litepool::Error::Sqlite {
                database: "w".into(),
                source,
            })?;
        return Ok(());
    }
    let body = move |c: &rusqlite::Connection| -> rusqlite::Result<()> {
        if kind == 1 {
            c.prepare_cached("INSERT INTO audit(at, details) VALUES (?1, 'login from 10.0.0.1')")?
                .execute([n as i64])?;
        } else {
            let s: i64 = c
                .prepare_cached("SELECT status FROM jobs WHERE id = ?1")?
                .query_row([id], |r| r.get(0))?;
            c.prepare_cached("UPDATE jobs SET status = ?1 WHERE id = ?2")?
                .execute([s + 1, id])?;
        }
        Ok(())
    };
    if stack != Stack::GroupCommit {
        let mut c = pools.writer("w")?;
        let tx = c.transaction().map_err(|source| litepool::Error::Sqlite {
            database: "w".into(),
            source,
        })?;
        body(&tx).map_err(|source| litepool::Error::Sqlite {
            database: "w".into(),
            source,
        })?;
        tx.commit().map_err(|source| litepool::Error::Sqlite {
            database: "w".into(),
            source,
        })
    } else {
        pools.write("w", body)
    }
}

fn run(dir: &std::path::Path, label: &str, work: Work, synchronous: &str, stack: Stack, secs: f64) {
    let file: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let pools = pools(dir, &file, synchronous, stack != Stack::Plain);
    let latency = Histogram::default();
    let (ok, busy) = (AtomicU64::new(0), AtomicU64::new(0));
    let wal = dir.join(format!("{file}.db-wal"));
    let stop = AtomicBool::new(false);
    let mut wal_peak = 0;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (pools, latency, ok, busy) = (&pools, &latency, &ok, &busy);
            s.spawn(move || {
                let mut n = t;
                while Instant::now() < deadline {
                    n += THREADS;
                    let t0 = Instant::now();
                    match op(pools, work, stack, n) {
                        Ok(()) => {
                            latency.record(t0.elapsed());
                            ok.fetch_add(1, Relaxed);
                        }
                        Err(e) if e.is_busy() => drop(busy.fetch_add(1, Relaxed)),
                        Err(e) => panic!("{e}"),
                    }
                }
            });
        }
        while Instant::now() < deadline && !stop.load(Relaxed) {
            wal_peak = wal_peak.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Relaxed);
    });
    let secs = start.elapsed().as_secs_f64();
    let l = latency.summary();
    println!(
        "{label:<50} {:>8.0} ops/s  p50 {:>9}  p99 {:>9}  max {:>9}  busy {:>5}  WAL peak {:>6.1} MiB",
        ok.load(Relaxed) as f64 / secs,
        litepool::histogram::human(l.p50),
        litepool::histogram::human(l.p99),
        litepool::histogram::human(l.max),
        busy.load(Relaxed),
        wal_peak as f64 / (1 << 20) as f64
    );
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3.0);
    let dir = tempfile::tempdir().unwrap();
    println!("8 threads, {secs}s per run, pools of 8, the shipped recommended profile");
    for (work, sync, name) in [
        (Work::Insert, "full", "audit insert, synchronous=full"),
        (Work::Insert, "normal", "audit insert, synchronous=normal"),
        (Work::ReadThenUpdate, "normal", "job read-then-update"),
        (Work::Mixed, "normal", "mixed 80/20"),
    ] {
        for (stack, how) in [
            (Stack::Plain, "plain pool"),
            (Stack::Split, "split"),
            (Stack::GroupCommit, "group commit"),
        ] {
            run(
                dir.path(),
                &format!("{name}: {how}"),
                work,
                sync,
                stack,
                secs,
            );
        }
    }
}
