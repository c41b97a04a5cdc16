//! What `check_integrity` costs `Pools::new` on a large file: builds a database of about the given
//! size in MB (a table with an index of random 400-byte blobs) in a temp directory, then times
//! `litepool::pools::preflight` with `check_integrity` on and off, three times each, alternating.
//! The file is in the OS cache after it is written; from a cold disk, read speed bounds it.
//!
//! Run: `cargo run --release --example quick_check -- 400`

use std::time::Instant;

use litepool::{DatabaseSettings, PragmaSet, Profile, Settings};

fn main() {
    let mb: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(400);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    // About 1 KB per row once the blob sits in both the table and the index.
    let rows = mb * 1000;
    conn.execute_batch(&format!(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB); CREATE INDEX t_v ON t(v);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
         INSERT INTO t(v) SELECT randomblob(400) FROM n;"
    ))
    .unwrap();
    drop(conn);
    let bytes = std::fs::metadata(&path).unwrap().len();
    let settings = |check: bool| {
        let profile = Profile::new("p", PragmaSet::default()).unwrap();
        let mut db = DatabaseSettings::new("big", &path, profile);
        db.check_integrity = check;
        Settings::from_databases([db], None).unwrap()
    };
    let (on, off) = (settings(true), settings(false));
    for round in 1..=3 {
        let t = Instant::now();
        litepool::pools::preflight(&on).unwrap();
        let with = t.elapsed();
        let t = Instant::now();
        litepool::pools::preflight(&off).unwrap();
        let without = t.elapsed();
        println!(
            "round {round}: {:.0} MB file: preflight with quick_check {:.3} s, without {:.6} s",
            bytes as f64 / 1e6,
            with.as_secs_f64(),
            without.as_secs_f64()
        );
    }
}
