//! Writes (and reads) from async code, side by side in one process, stacks alternating within
//! each round, on one split database (the shipped `recommended` profile, group commit):
//!
//! - **write_async**: N tokio tasks, each `handle.write_async(insert).await` in a loop;
//! - **spawn_blocking**: N tokio tasks, each `spawn_blocking(move || handle.write(insert)).await`
//!   (what an application without `write_async` does: two thread hand-offs per write);
//! - **threads**: N threads, each `handle.write(insert)` in a loop (no async at all).
//!
//! and, for reads (a point query on a reader): N tasks with `spawn_blocking(|| reader query)`
//! against N tasks that check out and query on the executor thread itself (a short blocking
//! call), against N threads; with `--features deadpool`, also N tasks using litepool's deadpool
//! pools (`reader().await`, then `interact`).
//!
//! Prints per stack: median operations per second over the rounds, p50/p99 latency over all
//! rounds, and the process's threads at the end of a run (the most over the rounds). The runtime has 4 worker
//! threads. Run: `cargo run --release --example async_write --features deadpool -- 3 2 8,64`
//! (rounds, seconds per run, the values of N).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use litepool::histogram::{human, Histogram};
use litepool::{Handle, Pools, Settings};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Stack {
    WriteAsync,
    SpawnBlockingWrite,
    ThreadsWrite,
    SpawnBlockingRead,
    InTaskRead,
    ThreadsRead,
    DeadpoolRead,
}

/// litepool's deadpool pools on the same file (feature `deadpool`).
#[cfg(feature = "deadpool")]
type Dp = litepool::deadpool::Pools;
#[cfg(not(feature = "deadpool"))]
type Dp = ();

impl Stack {
    fn label(self) -> &'static str {
        match self {
            Stack::WriteAsync => "write: write_async from tasks",
            Stack::SpawnBlockingWrite => "write: spawn_blocking(write) from tasks",
            Stack::ThreadsWrite => "write: write from threads",
            Stack::SpawnBlockingRead => "read: spawn_blocking(reader) from tasks",
            Stack::InTaskRead => "read: reader() inside the task",
            Stack::ThreadsRead => "read: reader() from threads",
            Stack::DeadpoolRead => "read: deadpool reader().await + interact",
        }
    }
}

const WRITES: [Stack; 3] = [
    Stack::WriteAsync,
    Stack::SpawnBlockingWrite,
    Stack::ThreadsWrite,
];
fn reads() -> Vec<Stack> {
    let mut v = vec![
        Stack::SpawnBlockingRead,
        Stack::InTaskRead,
        Stack::ThreadsRead,
    ];
    if cfg!(feature = "deadpool") {
        v.push(Stack::DeadpoolRead);
    }
    v
}

fn next_id() -> i64 {
    (NEXT.fetch_add(1, Relaxed) % 1000 + 1) as i64
}

fn profiles() -> String {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml"),
    )
    .unwrap();
    text[..text.find("[databases.").unwrap()].to_owned()
}

static NEXT: AtomicU64 = AtomicU64::new(0);

fn insert(c: &mut litepool::WriteConn<'_>) -> rusqlite::Result<()> {
    let n = NEXT.fetch_add(1, Relaxed);
    c.execute(
        "INSERT INTO audit(at, details) VALUES (?1, 'async write benchmark')",
        [n as i64],
    )
    .map(drop)
}

const POINT: &str = "SELECT at FROM audit WHERE id = ?1";

fn query(c: &rusqlite::Connection, n: i64) -> Option<i64> {
    c.prepare_cached(POINT)
        .unwrap()
        .query_row([n], |r| r.get(0))
        .ok()
}

fn read(h: &Handle) {
    query(&h.reader().unwrap(), next_id());
}

#[cfg(feature = "deadpool")]
async fn read_deadpool(dp: &Dp) {
    let n = next_id();
    let c = dp.reader("w").await.unwrap();
    c.interact(move |c| query(c, n)).await.unwrap();
}

#[cfg(not(feature = "deadpool"))]
async fn read_deadpool(_: &Dp) {}

fn threads_now() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().parse().ok()))?
        })
        .unwrap_or(0)
}

/// One run: `n` callers of `stack` for `secs`; returns operations done and threads seen.
fn run(
    rt: &tokio::runtime::Runtime,
    h: &Handle,
    dp: &Dp,
    stack: Stack,
    n: usize,
    secs: f64,
    lat: &Arc<Histogram>,
) -> (u64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let threaded = matches!(stack, Stack::ThreadsWrite | Stack::ThreadsRead);
    let mut threads = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (h, stop, ops, lat) = (h.clone(), stop.clone(), ops.clone(), lat.clone());
        #[allow(clippy::let_unit_value, clippy::clone_on_copy, clippy::unit_arg)]
        let dp = dp.clone();
        if threaded {
            threads.push(std::thread::spawn(move || {
                while !stop.load(Relaxed) {
                    let t = Instant::now();
                    if stack == Stack::ThreadsWrite {
                        h.write(insert).unwrap();
                    } else {
                        read(&h);
                    }
                    lat.record(t.elapsed());
                    ops.fetch_add(1, Relaxed);
                }
            }));
            continue;
        }
        tasks.push(rt.spawn(async move {
            while !stop.load(Relaxed) {
                let t = Instant::now();
                match stack {
                    Stack::WriteAsync => h.write_async(insert).await.unwrap(),
                    Stack::SpawnBlockingWrite => {
                        let h = h.clone();
                        tokio::task::spawn_blocking(move || h.write(insert))
                            .await
                            .unwrap()
                            .unwrap()
                    }
                    Stack::SpawnBlockingRead => {
                        let h = h.clone();
                        tokio::task::spawn_blocking(move || read(&h)).await.unwrap()
                    }
                    Stack::DeadpoolRead => read_deadpool(&dp).await,
                    Stack::InTaskRead => {
                        read(&h);
                        // Let the other tasks of this worker run between reads.
                        tokio::task::yield_now().await
                    }
                    _ => unreachable!(),
                }
                lat.record(t.elapsed());
                ops.fetch_add(1, Relaxed);
            }
        }));
    }
    std::thread::sleep(Duration::from_secs_f64(secs));
    let seen = threads_now();
    stop.store(true, Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    rt.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
    (ops.load(Relaxed), seen)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.first().map_or(3, |a| a.parse().unwrap());
    let secs: f64 = args.get(1).map_or(2.0, |a| a.parse().unwrap());
    let ns: Vec<usize> = args.get(2).map_or(vec![8, 64], |a| {
        a.split(',').map(|n| n.parse().unwrap()).collect()
    });
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "{}\n[databases.w]\npath = {:?}\nprofile = \"recommended\"\n[databases.w.writer]\n[databases.w.readers]\nmax_size = 8\n",
        profiles(),
        dir.path().join("w.db").display().to_string(),
    );
    let pools = Pools::new(&Settings::from_toml(&toml).unwrap()).unwrap();
    pools
        .writer("w")
        .unwrap()
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS audit(id INTEGER PRIMARY KEY, at INTEGER, details TEXT);",
        )
        .unwrap();
    let h = pools.handle("w").unwrap();
    #[cfg(feature = "deadpool")]
    let dp: Dp = litepool::deadpool::Pools::new(&Settings::from_toml(&toml).unwrap()).unwrap();
    #[cfg(not(feature = "deadpool"))]
    let dp: Dp = ();
    for _ in 0..1000 {
        h.write(insert).unwrap();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        // Idle blocking threads leave soon, so that each run's thread count is its own.
        .thread_keep_alive(Duration::from_millis(100))
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{} cores; {rounds} rounds of {secs} s per stack; tokio multi-thread runtime, 4 workers",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for n in ns {
        for (kind, stacks) in [("writes", WRITES.to_vec()), ("reads", reads())] {
            println!("\nN = {n}, {kind}");
            println!(
                "{:<42} {:>10} {:>10} {:>10} {:>8}",
                "stack", "ops/s", "p50", "p99", "threads"
            );
            let lats: Vec<Arc<Histogram>> = stacks.iter().map(|_| Arc::default()).collect();
            let mut rates = vec![Vec::new(); stacks.len()];
            let mut seen = vec![0; stacks.len()];
            for round in 0..rounds {
                for k in 0..stacks.len() {
                    // Alternate the order so that no stack always runs first.
                    let i = (k + round) % stacks.len();
                    std::thread::sleep(Duration::from_millis(300));
                    let (ops, threads) = run(&rt, &h, &dp, stacks[i], n, secs, &lats[i]);
                    rates[i].push(ops as f64 / secs);
                    seen[i] = seen[i].max(threads);
                }
            }
            for (i, stack) in stacks.iter().enumerate() {
                let s = lats[i].summary();
                println!(
                    "{:<42} {:>10.0} {:>10} {:>10} {:>8}",
                    stack.label(),
                    median(rates[i].clone()),
                    human(s.p50),
                    human(s.p99),
                    seen[i]
                );
            }
        }
    }
    // deadpool-sync's objects are closed through `spawn_blocking`: drop them in the runtime.
    #[cfg(feature = "deadpool")]
    {
        let _in_runtime = rt.enter();
        drop(dp);
    }
    let stats = h.write_stats().unwrap();
    println!(
        "\ngroup commit over the whole run: {} writes, {} batches, mean batch {:.1}, failed {}",
        stats.writes, stats.batches, stats.mean_batch, stats.failed_writes
    );
}
