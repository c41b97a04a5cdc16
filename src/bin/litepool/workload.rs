//! A short built-in read/write workload through the pools, for `litepool stats --workload`.
//!
//! It runs on private copies of the configured databases ([`on_copies`]), never on the files
//! themselves, with its own table `litepool_workload` in each copy: 80% point reads, 20% single-row updates through `Pools::write`
//! (`BEGIN IMMEDIATE`; on a split database, the writer's group commit). A split database reads
//! from its readers. Databases that refuse the table (e.g. `query_only`) are left
//! out and reported.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::datagen::Rng;
use crate::scratch::{copy_database, Scratch};
use litepool::Pools;
use litepool::Settings;
use litepool::{Error, Result};

const TABLE_ROWS: i64 = 1000;

/// What the workload did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct WorkloadReport {
    /// Seconds it ran (`elapsed_seconds` in JSON: every duration's name says its unit).
    #[serde(rename = "elapsed_seconds")]
    pub seconds: f64,
    /// Threads.
    pub threads: usize,
    /// Point reads done.
    pub reads: u64,
    /// Update transactions committed.
    pub writes: u64,
    /// Operations that failed with SQLITE_BUSY ("database is locked").
    pub busy: u64,
    /// Operations that failed otherwise.
    pub errors: u64,
    /// Databases left out, with the reason.
    pub skipped: Vec<String>,
}

/// Creates the workload's table in a copy (replacing a table of that name: the copy is ours).
fn setup(pools: &Pools, name: &str) -> Result<()> {
    let conn = pools.writer(name)?;
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS litepool_workload;
         CREATE TABLE litepool_workload(id INTEGER PRIMARY KEY, payload BLOB);
         INSERT OR IGNORE INTO litepool_workload(id, payload)
           WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {TABLE_ROWS})
           SELECT i, randomblob(200) FROM n;"
    ))
    .map_err(|source| Error::Sqlite {
        database: name.to_owned(),
        source,
    })
}

/// `settings` with every database moved to a private copy in `scratch`: an existing file is
/// copied ([`copy_database`]), a missing one will be created there.
pub fn on_copies(settings: &Settings, scratch: &Scratch) -> Result<Settings> {
    let mut copies = settings.clone();
    for (i, db) in copies.databases.values_mut().enumerate() {
        // Numbered: a database name may hold characters a file name cannot.
        let dest = scratch.path().join(format!("{i}.db"));
        if db.path.exists() {
            copy_database(&db.path, &dest, &db.name)?;
        }
        db.path = dest;
    }
    Ok(copies)
}

/// Runs the workload for `duration` on `threads` threads; `progress` gets the fraction done.
pub fn run(
    pools: &Pools,
    duration: Duration,
    threads: usize,
    progress: &(dyn Fn(f64) + Sync),
) -> Result<WorkloadReport> {
    let mut report = WorkloadReport {
        threads,
        ..Default::default()
    };
    let mut names = Vec::new();
    for name in pools.names() {
        match setup(pools, name) {
            Ok(()) => names.push(name),
            Err(e) => report.skipped.push(e.to_string()),
        }
    }
    if names.is_empty() {
        return Ok(report);
    }
    let start = Instant::now();
    let deadline = start + duration;
    // Builder::spawn_scoped: a thread that cannot be created is an error, not a panic; those
    // already running stop at the deadline.
    let results: std::io::Result<Vec<[u64; 4]>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let names = &names;
                std::thread::Builder::new().spawn_scoped(s, move || {
                    let mut rng = Rng::new(t as u64 + 1);
                    let mut counts = [0u64; 4]; // reads, writes, busy, errors
                    let mut i = 0usize;
                    while Instant::now() < deadline {
                        let name = names[(t + i) % names.len()];
                        i += 1;
                        let id = (rng.next_u64() % TABLE_ROWS as u64) as i64 + 1;
                        let write = rng.next_u64() % 10 < 2;
                        let result = if write {
                            // Through the write path: group commit on a split database, so its
                            // queue wait and latency are measured.
                            pools.write(name, move |c| {
                                c.execute(
                                    "UPDATE litepool_workload SET payload = randomblob(200) WHERE id = ?1",
                                    [id],
                                )
                                .map(drop)
                            })
                        } else {
                            pools.reader(name).and_then(|conn| {
                                conn.prepare_cached("SELECT length(payload) FROM litepool_workload WHERE id = ?1")
                                    .and_then(|mut st| st.query_row([id], |r| r.get::<_, i64>(0)))
                                    .map(drop)
                                    .map_err(|source| Error::Sqlite {
                                        database: name.to_owned(),
                                        source,
                                    })
                            })
                        };
                        match result {
                            Ok(()) => counts[usize::from(write)] += 1,
                            Err(e) if e.is_busy() => counts[2] += 1,
                            Err(_) => counts[3] += 1,
                        }
                        if t == 0 && i % 64 == 0 {
                            progress((start.elapsed().as_secs_f64() / duration.as_secs_f64()).min(1.0));
                        }
                    }
                    counts
                })
            })
            .collect::<std::io::Result<_>>()?;
        // A thread that panicked counts as one error.
        Ok(handles
            .into_iter()
            .map(|h: std::thread::ScopedJoinHandle<'_, [u64; 4]>| h.join().unwrap_or([0, 0, 0, 1]))
            .collect())
    });
    let results = results.map_err(|source| Error::Io {
        path: "workload threads".into(),
        source,
    })?;
    progress(1.0);
    report.seconds = start.elapsed().as_secs_f64();
    for c in results {
        report.reads += c[0];
        report.writes += c[1];
        report.busy += c[2];
        report.errors += c[3];
    }
    Ok(report)
}
