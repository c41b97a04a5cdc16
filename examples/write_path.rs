//! The write path side by side, in one process, stacks alternating within each round:
//!
//! - **stock**: a bare r2d2 pool of 8 (`r2d2_sqlite`, `test_on_check_out(false)`) whose
//!   connections run the shipped `recommended` profile's pragmas as plain SQL; every operation
//!   its own `BEGIN IMMEDIATE` transaction (a read is a plain query);
//! - **litepool pool**: litepool's pool of 8 without a split, `pools.writer()` + a transaction;
//! - **split**: the writer/readers split, a transaction per caller on the one writer;
//! - **group**: the split with group commit (`pools.write`); reads from the readers.
//!
//! Workloads: audit inserts on 8 threads with `synchronous = "full"` and `"normal"`; a job
//! read-then-update (read a row, write it back changed, one transaction) on 8 threads; 80% point
//! reads / 20% inserts on 8 threads; inserts on 1 thread; point reads on 1 and 8 threads (a read
//! is a checkout and one cached query; the split and group commit read from the readers); and, for 10 s each, group commit on 8
//! threads with and without `checkpoint = "background"` (`checkpoint_wal_size` 4MiB, the
//! default, and 1MiB).
//!
//! Prints, per workload and stack: median completed operations per second over the rounds,
//! p50/p99/max latency over all rounds, SQLITE_BUSY failures, the largest WAL file seen, and the
//! median of the per-round ratios against stock. Run:
//! `cargo run --release --example write_path -- 3 2` (rounds, seconds per run; a third argument
//! keeps only the workloads whose name contains it, a fourth only the stacks whose label does).
//! `EX_MMAP=0` sets `mmap_size` to 0 bytes in every stack (it is 256 MiB in `recommended`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use litepool::histogram::{human, Histogram};
use litepool::{Pools, Settings};
use r2d2_sqlite::SqliteConnectionManager;

type Stock = r2d2::Pool<SqliteConnectionManager>;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Stack {
    Stock,
    Pool,
    Split,
    Group,
}

#[derive(Clone, Copy, PartialEq)]
enum Work {
    Read,
    Insert,
    ReadThenUpdate,
    Mixed,
}

const SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS audit(id INTEGER PRIMARY KEY, at INTEGER, details TEXT);
     CREATE TABLE IF NOT EXISTS jobs(id INTEGER PRIMARY KEY, status INTEGER NOT NULL);
     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
     INSERT OR IGNORE INTO jobs SELECT i, 0 FROM n;";

fn profiles() -> String {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml"),
    )
    .unwrap();
    text[..text.find("[databases.").unwrap()].to_owned()
}

/// The recommended profile's pragmas, as a stock application would write them.
fn stock_init(synchronous: &str) -> String {
    let mmap = std::env::var("EX_MMAP").unwrap_or_else(|_| "268435456".into());
    format!(
        "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = wal; PRAGMA synchronous = {synchronous};
         PRAGMA foreign_keys = ON; PRAGMA temp_store = memory; PRAGMA cache_size = -8192;
         PRAGMA mmap_size = {mmap}; PRAGMA journal_size_limit = 67108864;"
    )
}

enum Target {
    Stock(Stock),
    Litepool(Pools),
}

fn open(
    path: &std::path::Path,
    stack: Stack,
    synchronous: &str,
    checkpoint: Option<&str>,
) -> Target {
    if stack == Stack::Stock {
        let init = stock_init(synchronous);
        let manager =
            SqliteConnectionManager::file(path).with_init(move |c| c.execute_batch(&init));
        let pool = r2d2::Pool::builder()
            .max_size(8)
            .test_on_check_out(false)
            .build(manager)
            .unwrap();
        pool.get().unwrap().execute_batch(SCHEMA).unwrap();
        return Target::Stock(pool);
    }
    let split = stack != Stack::Pool;
    let toml = format!(
        "{}\n[databases.w]\npath = {:?}\nprofile = \"recommended\"\n{}[databases.w.pragmas]\nsynchronous = \"{synchronous}\"\n{}[databases.w.pool]\nmax_size = 8\n{}",
        profiles(),
        path.display().to_string(),
        checkpoint.map_or(String::new(), |size| format!("checkpoint = \"background\"\ncheckpoint_wal_size = \"{size}\"\n")),
        std::env::var("EX_MMAP").map_or(String::new(), |m| format!("mmap_size = \"{m}B\"\n")),
        if split { "[databases.w.writer]\n[databases.w.readers]\nmax_size = 8\n" } else { "" }
    );
    let pools = Pools::new(&Settings::from_toml(&toml).unwrap()).unwrap();
    pools.writer("w").unwrap().execute_batch(SCHEMA).unwrap();
    Target::Litepool(pools)
}

fn body(c: &rusqlite::Connection, write: bool, n: u64) -> rusqlite::Result<()> {
    if write {
        c.prepare_cached("INSERT INTO audit(at, details) VALUES (?1, 'login from 10.0.0.1')")?
            .execute([n as i64])?;
    } else {
        let id = (n % 200 + 1) as i64;
        let s: i64 = c
            .prepare_cached("SELECT status FROM jobs WHERE id = ?1")?
            .query_row([id], |r| r.get(0))?;
        c.prepare_cached("UPDATE jobs SET status = ?1 WHERE id = ?2")?
            .execute([s + 1, id])?;
    }
    Ok(())
}

fn read(c: &rusqlite::Connection, n: u64) -> rusqlite::Result<()> {
    c.prepare_cached("SELECT status FROM jobs WHERE id = ?1")?
        .query_row([(n % 200 + 1) as i64], |r| r.get::<_, i64>(0))
        .map(drop)
}

fn err(source: rusqlite::Error) -> litepool::Error {
    litepool::Error::Sqlite {
        database: "w".into(),
        source,
    }
}

/// One operation.
fn op(t: &Target, stack: Stack, work: Work, n: u64) -> litepool::Result<()> {
    let (is_read, write) = match work {
        Work::Read => (true, false),
        Work::Mixed => (n % 5 != 0, true),
        Work::Insert => (false, true),
        Work::ReadThenUpdate => (false, false),
    };
    match t {
        Target::Stock(pool) => {
            let mut c = pool.get().map_err(|e| litepool::Error::Io {
                path: "stock".into(),
                source: std::io::Error::other(e),
            })?;
            if is_read {
                return read(&c, n).map_err(err);
            }
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(err)?;
            body(&tx, write, n).map_err(err)?;
            tx.commit().map_err(err)
        }
        Target::Litepool(pools) => {
            if is_read {
                let c = pools.reader("w")?;
                return read(&c, n).map_err(err);
            }
            if stack == Stack::Group {
                return pools.write("w", move |c| body(c, write, n));
            }
            let mut c = pools.writer("w")?;
            let tx = c.transaction().map_err(err)?;
            body(&tx, write, n).map_err(err)?;
            tx.commit().map_err(err)
        }
    }
}

struct Run {
    ops_per_s: f64,
    busy: u64,
    wal_peak: u64,
}

#[allow(clippy::too_many_arguments)]
fn run(
    dir: &std::path::Path,
    file: &str,
    stack: Stack,
    work: Work,
    synchronous: &str,
    threads: u64,
    secs: f64,
    checkpoint: Option<&str>,
    latency: &Histogram,
) -> Run {
    let path = dir.join(format!("{file}.db"));
    let target = open(&path, stack, synchronous, checkpoint);
    let (ok, busy) = (AtomicU64::new(0), AtomicU64::new(0));
    let wal = dir.join(format!("{file}.db-wal"));
    let stop = AtomicBool::new(false);
    let mut wal_peak = 0;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (target, ok, busy) = (&target, &ok, &busy);
            s.spawn(move || {
                let mut n = t;
                while Instant::now() < deadline {
                    n += threads;
                    let t0 = Instant::now();
                    match op(target, stack, work, n) {
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
    if let Target::Litepool(pools) = &target {
        let h = pools.handle("w").unwrap();
        if let Some(c) = h.checkpoint_stats() {
            let w = h.write_stats().unwrap();
            println!(
                "    background checkpoints: {} between batches, {} RESTART, {} busy, pending peak {:.1} MiB, WAL peak {:.1} MiB",
                w.checkpoints,
                c.restart,
                c.busy,
                c.pending_peak as f64 / (1 << 20) as f64,
                c.wal_peak as f64 / (1 << 20) as f64
            );
        }
    }
    drop(target);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("{file}.db{suffix}")));
    }
    Run {
        ops_per_s: ok.load(Relaxed) as f64 / secs,
        busy: busy.load(Relaxed),
        wal_peak,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[allow(clippy::too_many_arguments)]
fn compare(
    dir: &std::path::Path,
    name: &str,
    work: Work,
    synchronous: &str,
    threads: u64,
    stacks: &[(Stack, Option<&str>, &str)],
    rounds: usize,
    secs: f64,
) {
    let hist: Vec<Histogram> = stacks.iter().map(|_| Histogram::default()).collect();
    let mut per_round: Vec<Vec<Run>> = stacks.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        // Alternate the order between rounds so that no stack always runs first.
        let order: Vec<usize> = if round % 2 == 0 {
            (0..stacks.len()).collect()
        } else {
            (0..stacks.len()).rev().collect()
        };
        for i in order {
            let (stack, checkpoint, _) = stacks[i];
            let r = run(
                dir,
                &format!("{name}-{i}-{round}").replace([' ', '/', '='], "_"),
                stack,
                work,
                synchronous,
                threads,
                secs,
                checkpoint,
                &hist[i],
            );
            per_round[i].push(r);
        }
    }
    for (i, (_, _, label)) in stacks.iter().enumerate() {
        let runs = &per_round[i];
        let ratio = median(
            (0..rounds)
                .map(|r| runs[r].ops_per_s / per_round[0][r].ops_per_s)
                .collect(),
        );
        let l = hist[i].summary();
        println!(
            "{:<34} {:<16} {:>8.0} ops/s {:>6.2}x  p50 {:>8}  p99 {:>8}  max {:>8}  busy {:>4}  WAL peak {:>6.1} MiB",
            name,
            label,
            median(runs.iter().map(|r| r.ops_per_s).collect()),
            ratio,
            human(l.p50),
            human(l.p99),
            human(l.max),
            runs.iter().map(|r| r.busy).sum::<u64>(),
            runs.iter().map(|r| r.wal_peak).max().unwrap_or(0) as f64 / (1 << 20) as f64,
        );
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let secs: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2.0);
    // A third argument runs only the workloads whose name contains it.
    let only = args.next().unwrap_or_default();
    // A fourth argument keeps only the stacks whose label contains it (for profiling).
    let stack_filter = args.next().unwrap_or_default();
    let dir = tempfile::tempdir().unwrap();
    println!(
        "{rounds} rounds x {secs}s per run, stacks alternating; ratio = median over rounds of ops/s against stock (r2d2 pool of 8, test_on_check_out(false), same pragmas)"
    );
    let all = [
        (Stack::Stock, None, "stock"),
        (Stack::Pool, None, "litepool pool"),
        (Stack::Split, None, "split"),
        (Stack::Group, None, "group commit"),
    ];
    for (name, work, sync, threads) in [
        ("insert, 8 threads, sync=full", Work::Insert, "full", 8),
        ("insert, 8 threads, sync=normal", Work::Insert, "normal", 8),
        (
            "read-then-update, 8 threads",
            Work::ReadThenUpdate,
            "normal",
            8,
        ),
        ("80% reads/20% inserts, 8 threads", Work::Mixed, "normal", 8),
        ("80% reads/20% inserts, 2 threads", Work::Mixed, "normal", 2),
        ("insert, 2 threads, sync=normal", Work::Insert, "normal", 2),
        ("insert, 1 thread, sync=normal", Work::Insert, "normal", 1),
        ("point reads, 1 thread", Work::Read, "normal", 1),
        ("point reads, 8 threads", Work::Read, "normal", 8),
    ] {
        let all: Vec<_> = all
            .iter()
            .copied()
            .filter(|(_, _, label)| label.contains(&stack_filter))
            .collect();
        if name.contains(&only) && !all.is_empty() {
            compare(dir.path(), name, work, sync, threads, &all, rounds, secs);
        }
    }
    if !"insert, 8 threads, 10s, sync=normal".contains(&only) {
        return;
    }
    compare(
        dir.path(),
        "insert, 8 threads, 10s, sync=normal",
        Work::Insert,
        "normal",
        8,
        &[
            (Stack::Group, None, "group commit"),
            (Stack::Group, Some("4MiB"), "+background 4MiB"),
            (Stack::Group, Some("1MiB"), "+background 1MiB"),
        ],
        1,
        10.0,
    );
}
