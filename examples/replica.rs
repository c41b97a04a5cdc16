//! Read replicas through Litestream 0.5's VFS, measured (the README's figures):
//!
//! 1. **Staleness under a steady write load**: the primary (this process) commits rows at a
//!    steady rate from four threads through group commit, with `heartbeat = "100ms"`, under
//!    `litestream replicate` (sync-interval 100ms, monitor-interval left at Litestream's 1 s, as
//!    `litepool litestream` writes them); a replica process (this example again, started with `LITESTREAM_REPLICA_URL`)
//!    reads its replica pool's staleness every 100 ms, and the time each acknowledged row takes
//!    to appear there.
//! 2. **Read throughput on a caught-up replica**: once writes stop and the replica holds every
//!    row, point reads by random id from 2 threads, in alternating 1 s rounds: the replica pool,
//!    a plain r2d2 pool (`test_on_check_out(false)`, the same `cache_size`) on a local copy of
//!    the same file, and litepool's own readers on that copy.
//!
//! `cargo run --release --example replica -- [seconds of load, default 20] [rounds, default 6]`
//! Litestream 0.5.17 comes from `.tools/litestream-0.5.17/` (`python3
//! tools/fetch_litestream_05.py`, run here when missing).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use litepool::{Pools, Settings};

const INTERVAL_MS: u64 = 100;
const CACHE: &str = "64MiB";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn tools() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join(".tools/litestream-0.5.17");
    if !dir.join("litestream-vfs.so").is_file() || !dir.join("litestream").is_file() {
        let ok = Command::new("python3")
            .arg(root.join("tools/fetch_litestream_05.py"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "could not fetch Litestream 0.5.17: run python3 tools/fetch_litestream_05.py"
        );
    }
    dir
}

fn pct(v: &mut [u64], q: f64) -> u64 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("replica") {
        return replica(Path::new(&args[1]), Path::new(&args[2]), &args[3]);
    }
    let seconds: u64 = args.first().map_or(20, |s| s.parse().unwrap());
    let rounds: u32 = args.get(1).map_or(6, |s| s.parse().unwrap());
    let tools = tools();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db");
    let settings = Settings::from_toml(&format!(
        "[profiles.p]\njournal_mode = \"wal\"\nsynchronous = \"normal\"\nbusy_timeout = \"5s\"\ncache_size = \"{CACHE}\"\n\n[databases.jobs]\npath = {:?}\nprofile = \"p\"\nreplication = \"litestream\"\nheartbeat = \"{INTERVAL_MS}ms\"\n[databases.jobs.writer]\n[databases.jobs.readers]\nmax_size = 2\n",
        db.display().to_string()
    ))
    .unwrap();
    let pools = Pools::new(&settings).unwrap();
    let jobs = pools.handle("jobs").unwrap();
    jobs.write(|c| c.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)"))
        .unwrap();
    let replica = dir.path().join("replica/jobs");
    let yml = dir.path().join("litestream.yml");
    std::fs::write(
        &yml,
        format!("dbs:\n  - path: {:?}\n    replica:\n      type: file\n      path: {:?}\n      sync-interval: {INTERVAL_MS}ms\n", db.display().to_string(), replica.display().to_string()),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("litestream.log")).unwrap();
    let mut ls = Command::new(tools.join("litestream"))
        .args(["replicate", "-config"])
        .arg(&yml)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    while !replica.join("ltx").is_dir() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("file://{}", replica.display());
    let copy = dir.path().join("copy.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("replica")
        .arg(tools.join("litestream-vfs.so"))
        .arg(&copy)
        .arg(&url)
        .env("LITESTREAM_REPLICA_URL", &url)
        .env("LITESTREAM_LOG_FILE", dir.path().join("vfs.log"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_child = child.stdin.take().unwrap();
    // Read as the child writes (a full pipe would stall its sampling thread and the delays).
    let from_child = {
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        rx
    };

    // 1. A steady load: 4 threads, one write every 4 ms each (about 1,000 writes/s).
    println!("load: {seconds} s, 4 threads x 1 write / 4 ms, heartbeat and Litestream intervals {INTERVAL_MS} ms");
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(1));
    let (tx, rx) = std::sync::mpsc::channel::<(i64, u64)>();
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (jobs, stop, next, tx) = (jobs.clone(), stop.clone(), next.clone(), tx.clone());
            std::thread::spawn(move || {
                while !stop.load(Relaxed) {
                    let id = next.fetch_add(1, Relaxed) as i64;
                    jobs.write(move |c| {
                        c.execute("INSERT INTO t(id, v) VALUES (?1, randomblob(200))", [id])
                    })
                    .unwrap();
                    let _ = tx.send((id, now_ms()));
                    std::thread::sleep(Duration::from_millis(4));
                }
            })
        })
        .collect();
    drop(tx);
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked: Vec<(i64, u64)> = rx.iter().collect();
    let last = acked.iter().map(|(id, _)| *id).max().unwrap();
    // A copy of the primary's database, for the local pools of part 2 (SQLite's backup: the
    // WAL's content too).
    rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
        .backup(rusqlite::MAIN_DB, &copy, None)
        .unwrap();
    writeln!(to_child, "{last}").unwrap();
    let mut seen = std::collections::HashMap::new();
    let mut staleness = Vec::new();
    for line in from_child.iter() {
        let mut w = line.split(' ');
        match w.next() {
            Some("seen") => {
                let id: i64 = w.next().unwrap().parse().unwrap();
                seen.insert(id, w.next().unwrap().parse::<u64>().unwrap());
            }
            Some("staleness") => staleness.push(w.next().unwrap().parse::<u64>().unwrap()),
            Some("caught-up") => break,
            _ => println!("{line}"),
        }
    }
    let mut delays: Vec<u64> = acked
        .iter()
        .map(|(id, at)| {
            seen.get(id)
                .expect("an acknowledged row never appeared")
                .saturating_sub(*at)
        })
        .collect();
    println!(
        "{} writes acknowledged, every one seen on the replica; visibility delay p50 {} ms, p99 {} ms, max {} ms",
        acked.len(),
        pct(&mut delays, 0.5),
        pct(&mut delays, 0.99),
        pct(&mut delays, 1.0)
    );
    println!(
        "replica staleness from the heartbeat ({} samples of the pool statistics, one per 500 ms, during the load): p50 {} ms, p99 {} ms, max {} ms (bound: monitor-interval 1 s + sync-interval + the VFS's 1 s poll = {} ms)",
        staleness.len(),
        pct(&mut staleness, 0.5),
        pct(&mut staleness, 0.99),
        pct(&mut staleness, 1.0),
        1000 + INTERVAL_MS + 1000
    );
    writeln!(to_child, "{rounds}").unwrap();
    drop(jobs);
    drop(pools);
    for line in from_child.iter() {
        println!("{line}");
    }
    child.wait().unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &ls.id().to_string()])
        .status();
    let _ = ls.wait();
}

/// A connection of some pool, read through `Deref`.
type AnyConn = Box<dyn std::ops::Deref<Target = rusqlite::Connection>>;
/// How a variant checks a connection out.
type Checkout<'a> = Box<dyn Fn() -> AnyConn + Sync + 'a>;

/// The replica machine's process.
fn replica(vfs: &Path, copy: &Path, url: &str) {
    let settings = Settings::from_toml(&format!(
        "[litestream]\nvfs = {:?}\n\n[profiles.p]\nbusy_timeout = \"5s\"\ncache_size = \"{CACHE}\"\n\n[databases.jobs]\nreplica_url = {url:?}\nprofile = \"p\"\n[databases.jobs.readers]\nmax_size = 2\n",
        vfs.display().to_string()
    ))
    .unwrap();
    let pools = Pools::new(&settings).unwrap();
    let mut input = std::io::stdin().lines();
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    // During the load: every 100 ms, new rows, and each new staleness sample of the statistics.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (pools, stop, out) = (pools.clone(), stop.clone(), out.clone());
        std::thread::spawn(move || {
            let mut last = 0i64;
            let mut samples = 0u64;
            while !stop.load(Relaxed) {
                let r = pools.stats().0["jobs.readers"].replica.clone().unwrap();
                let conn = pools.reader("jobs").unwrap();
                let ids: Vec<i64> = conn
                    .prepare("SELECT id FROM t WHERE id > ?1")
                    .and_then(|mut s| s.query_map([last], |r| r.get(0))?.collect())
                    .unwrap();
                let at = now_ms();
                let mut o = out.lock().unwrap();
                for id in ids {
                    last = last.max(id);
                    writeln!(o, "seen {id} {at}").unwrap();
                }
                if let (Some(s), true) = (r.staleness, r.samples > samples) {
                    samples = r.samples;
                    writeln!(o, "staleness {}", s.as_millis()).unwrap();
                }
                drop(o);
                std::thread::sleep(Duration::from_millis(100));
            }
            last
        })
    };
    let target: i64 = input.next().unwrap().unwrap().parse().unwrap();
    // The load is over: wait for the last row, then stop sampling.
    loop {
        let max: i64 = pools
            .reader("jobs")
            .unwrap()
            .query_row("SELECT max(id) FROM t", [], |r| r.get(0))
            .unwrap();
        if max >= target {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(150));
    stop.store(true, Relaxed);
    watcher.join().unwrap();
    writeln!(out.lock().unwrap(), "caught-up").unwrap();
    let rounds: u32 = input.next().unwrap().unwrap().parse().unwrap();

    // 2. Reads on a caught-up replica against the same file, local.
    let plain = r2d2::Pool::builder()
        .max_size(2)
        .test_on_check_out(false)
        .build(
            r2d2_sqlite::SqliteConnectionManager::file(copy)
                .with_flags(rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .with_init(|c| c.execute_batch(&format!("PRAGMA cache_size = -{}", 64 * 1024))),
        )
        .unwrap();
    let local = Pools::new(
        &Settings::from_toml(&format!(
            "[profiles.p]\nbusy_timeout = \"5s\"\ncache_size = \"{CACHE}\"\n\n[databases.copy]\npath = {:?}\nprofile = \"p\"\n[databases.copy.writer]\n[databases.copy.readers]\nmax_size = 2\n",
            copy.display().to_string()
        ))
        .unwrap(),
    )
    .unwrap();
    let max = target as u64;
    let read = |get: &(dyn Fn() -> AnyConn + Sync)| {
        let ops = AtomicU64::new(0);
        let end = Instant::now() + Duration::from_secs(1);
        std::thread::scope(|s| {
            for t in 0..2u64 {
                let ops = &ops;
                s.spawn(move || {
                    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                    let mut n = 0;
                    while Instant::now() < end {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let id = (1 + x % max) as i64;
                        let conn = get();
                        let _: Vec<u8> = conn
                            .prepare_cached("SELECT v FROM t WHERE id = ?1")
                            .unwrap()
                            .query_row([id], |r| r.get(0))
                            .unwrap();
                        n += 1;
                    }
                    ops.fetch_add(n, Relaxed);
                });
            }
        });
        ops.load(Relaxed) as f64
    };
    let variants: [(&str, Checkout); 3] = [
        (
            "replica pool (VFS)",
            Box::new(|| Box::new(pools.reader("jobs").unwrap())),
        ),
        (
            "plain r2d2 pool, local copy",
            Box::new(|| Box::new(plain.get().unwrap())),
        ),
        (
            "litepool readers, local copy",
            Box::new(|| Box::new(local.reader("copy").unwrap())),
        ),
    ];
    // Warm every cache once, then alternate.
    for (_, get) in &variants {
        read(get.as_ref());
    }
    let mut results = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        for (i, (_, get)) in variants.iter().enumerate() {
            results[i].push(read(get.as_ref()));
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let mut o = out.lock().unwrap();
    writeln!(o, "point reads by random id over {max} rows, 2 threads, {rounds} alternating 1 s rounds (median ops/s):").unwrap();
    let plain_ops = median(&results[1]);
    for (i, (name, _)) in variants.iter().enumerate() {
        let m = median(&results[i]);
        writeln!(
            o,
            "  {name:<30} {m:>10.0} ops/s  ({:.2}x the plain pool)",
            m / plain_ops
        )
        .unwrap();
    }
}
