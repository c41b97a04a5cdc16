//! What a client reading the admin socket costs the application's checkouts.
//!
//! `cargo run --release --example admin_overhead --features admin -- [ROUNDS] [CHECKOUTS]`
//!
//! One pool (4 connections, a WAL file in a temporary directory) served on an admin socket.
//! Rounds alternate, in one process on the same pool: a round of `CHECKOUTS` checkouts
//! (`get()` + a point read by primary key + drop) on one thread with no client, then the same
//! with a client that sends `stats json` back to back for the whole round ("hammer"), then the
//! same with a client that sends it a thousand times a second, then ten times a second (what
//! `litepool stats --watch 100ms` does). Prints the median time per checkout of each and the ratios to "none".

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use litepool::{Pools, Settings};

/// A client reading `stats json` until `stop`, every `pause` (none: back to back).
fn client(path: &Path, stop: &AtomicBool, pause: Option<Duration>, requests: &AtomicU64) {
    let stream = UnixStream::connect(path).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut line = String::new();
    while !stop.load(Ordering::Relaxed) {
        writer.write_all(b"stats json\n").unwrap();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == ".\n" {
                break;
            }
        }
        requests.fetch_add(1, Ordering::Relaxed);
        if let Some(p) = pause {
            std::thread::sleep(p);
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).map_or(15, |a| a.parse().unwrap());
    let checkouts: u64 = args.get(2).map_or(100_000, |a| a.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let toml = format!(
        "[profiles.p]\njournal_mode = \"wal\"\nsynchronous = \"normal\"\n\n\
         [databases.main]\npath = \"{}/main.db\"\nprofile = \"p\"\n\n\
         [databases.main.pool]\nmax_size = 4\n",
        dir.path().display()
    );
    let pools = Pools::new(&Settings::from_toml(&toml).unwrap()).unwrap();
    {
        let c = pools.get("main").unwrap();
        c.execute_batch(
            "CREATE TABLE customers(id INTEGER PRIMARY KEY, email TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
             INSERT INTO customers SELECT i, 'user' || i || '@example.com' FROM n;",
        )
        .unwrap();
    }
    let socket = dir.path().join("admin.sock");
    let _server = pools.serve_admin(&socket).unwrap();
    let pool = pools.handle("main").unwrap();
    let run = || {
        let start = Instant::now();
        for i in 0..checkouts {
            let c = pool.get().unwrap();
            let _: String = c
                .prepare_cached("SELECT email FROM customers WHERE id = ?1")
                .unwrap()
                .query_row([(i % 1000 + 1) as i64], |r| r.get(0))
                .unwrap();
        }
        start.elapsed().as_nanos() as f64 / checkouts as f64
    };
    run(); // warm-up
    let kinds = [
        ("none", None),
        ("hammer", Some(None)),
        ("1000/s", Some(Some(Duration::from_millis(1)))),
        ("10/s", Some(Some(Duration::from_millis(100)))),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let requests: Vec<AtomicU64> = kinds.iter().map(|_| AtomicU64::new(0)).collect();
    for _ in 0..rounds {
        for (k, (_, pause)) in kinds.iter().enumerate() {
            let stop = Arc::new(AtomicBool::new(false));
            std::thread::scope(|s| {
                if let Some(pause) = pause {
                    let (stop, socket, requests) = (stop.clone(), &socket, &requests[k]);
                    s.spawn(move || client(socket, &stop, *pause, requests));
                }
                times[k].push(run());
                stop.store(true, Ordering::Relaxed);
            });
        }
    }
    let none = median(&mut times[0].clone());
    println!(
        "{rounds} rounds of {checkouts} checkouts (get + point read + drop), alternating, one pool of 4"
    );
    for (k, (name, _)) in kinds.iter().enumerate() {
        let m = median(&mut times[k]);
        println!(
            "client {name:<7} median {m:>7.1} ns/checkout  ratio {:.3}  ({} stats json answered)",
            m / none,
            requests[k].load(Ordering::Relaxed)
        );
    }
}
