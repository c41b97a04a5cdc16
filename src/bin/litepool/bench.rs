//! The benchmark workloads, shared by `benches/workload.rs` and `litepool bench`.
//!
//! Every operation takes one connection from a pool and gives it back, as a web handler would.
//! Writes go through `Connection::transaction()`, so a profile's `transaction_behavior` decides
//! between `BEGIN DEFERRED` and `BEGIN IMMEDIATE`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, MAIN_DB};
use serde::Serialize;

use crate::datagen::{self, assignee, Dataset, Rng, ASSIGNEES};
use crate::measure::measure;
use crate::scratch::{copy_database, private_file, Scratch};
use litepool::histogram::Summary;
use litepool::settings::{DatabaseSettings, PoolSettings, Split};
use litepool::NamedPool;
use litepool::Profile;
use litepool::{Error, ParseValueError, Result};

/// One benchmark workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// A customer by primary key.
    PointRead,
    /// The batches of one assignee with their customer counts (an indexed join).
    AssignedBatches,
    /// One audit row inserted per transaction.
    AuditInsert,
    /// Read one job's status, then update it, in one transaction.
    JobUpdate,
    /// 8 threads: 40% point reads, 40% assigned batches, 10% audit inserts, 10% job updates.
    Mixed,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 5] = [
        Workload::PointRead,
        Workload::AssignedBatches,
        Workload::AuditInsert,
        Workload::JobUpdate,
        Workload::Mixed,
    ];

    /// The name used in tables and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Workload::PointRead => "point_read",
            Workload::AssignedBatches => "assigned_batches",
            Workload::AuditInsert => "audit_insert",
            Workload::JobUpdate => "job_update",
            Workload::Mixed => "mixed",
        }
    }

    /// Threads this workload runs on.
    pub fn threads(self) -> usize {
        if self == Workload::Mixed {
            8
        } else {
            1
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Workload {
    type Err = ParseValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Workload::ALL
            .into_iter()
            .find(|w| w.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let names: Vec<_> = Workload::ALL.iter().map(|w| w.as_str()).collect();
                ParseValueError::new("workload", s, format!("one of {}", names.join(", ")))
            })
    }
}

/// Where the three databases come from: an existing file to copy, or generated data.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `prod_customer_data`.
    pub customers: Option<PathBuf>,
    /// `jobs`.
    pub jobs: Option<PathBuf>,
    /// `audit`.
    pub audit: Option<PathBuf>,
}

const NAMES: [(&str, Dataset); 3] = [
    ("prod_customer_data", Dataset::Customers),
    ("jobs", Dataset::Jobs),
    ("audit", Dataset::Audit),
];

/// Makes the three source databases in `dir`: a private copy ([`copy_database`]: the original is
/// never opened with SQLite) of each existing source, else an empty 0600 file; then fills missing
/// tables with generated data. Originals are never written.
#[allow(dead_code)] // the benchmarks and the tests use it; the binary uses labelled_sources
pub fn prepare_sources(dir: &Path, from: &Sources, seed: u64, scale: u32) -> Result<[PathBuf; 3]> {
    labelled_sources(dir, from, seed, scale).map(|(paths, _)| paths)
}

/// The three source databases and, by name, what each copy holds.
pub type Labelled = ([PathBuf; 3], Vec<(String, String)>);

/// [`prepare_sources`], and for each database what its copy holds: "your data", "your file
/// with N generated demo rows" or "generated (N rows)", by name.
pub fn labelled_sources(dir: &Path, from: &Sources, seed: u64, scale: u32) -> Result<Labelled> {
    let originals = [&from.customers, &from.jobs, &from.audit];
    let mut out = Vec::new();
    let mut labels = Vec::new();
    for ((name, dataset), original) in NAMES.into_iter().zip(originals) {
        let dest = dir.join(format!("{name}.db"));
        let sql = |source| Error::Sqlite {
            database: name.to_owned(),
            source,
        };
        let copied = match original.as_ref().filter(|p| p.exists()) {
            Some(src) => {
                copy_database(src, &dest, name)?;
                true
            }
            None => {
                drop(private_file(&dest)?);
                false
            }
        };
        let mut conn = Connection::open(&dest).map_err(sql)?;
        let rows = datagen::generate(&mut conn, dataset, seed, scale).map_err(sql)?;
        labels.push((
            name.to_owned(),
            match (copied, rows) {
                (true, 0) => "your data".to_owned(),
                (true, n) => format!("your file, with {n} generated demo rows"),
                (false, n) => format!("generated ({n} rows)"),
            },
        ));
        out.push(dest);
    }
    let paths: [PathBuf; 3] = out.try_into().map_err(|_| Error::Io {
        path: dir.to_owned(),
        source: std::io::Error::other("expected three databases"),
    })?;
    Ok((paths, labels))
}

/// Copies a prepared source database for one run (SQLite backup API).
fn copy(src: &Path, dest: &Path, name: &str) -> Result<()> {
    let sql = |source| Error::Sqlite {
        database: name.to_owned(),
        source,
    };
    private_file(dest)?;
    let src = Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql)?;
    src.backup(MAIN_DB, dest, None).map_err(sql)
}

/// The three databases behind pools with one profile.
#[derive(Debug)]
pub struct Target {
    customers: Db,
    jobs: Db,
    audit: Db,
    max_customer: i64,
    max_job: i64,
}

/// One database's pools: a single pool, or a writer and readers.
#[derive(Debug)]
struct Db {
    writer: NamedPool,
    readers: Option<NamedPool>,
}

impl Db {
    fn read(&self) -> &NamedPool {
        self.readers.as_ref().unwrap_or(&self.writer)
    }
}

/// The suffix of a profile name that asks for the writer/readers split in a comparison.
pub const SPLIT_SUFFIX: &str = "+split";

/// Pools of this size, as the web app uses.
pub const POOL_SIZE: u32 = 8;

impl Target {
    /// Copies the prepared `sources` into `dir` and opens a pool of [`POOL_SIZE`] on each copy
    /// with `profile`; with `split`, one writer and [`POOL_SIZE`] readers instead.
    pub fn open(
        dir: &Path,
        sources: &[PathBuf; 3],
        profile: &Profile,
        split: bool,
    ) -> Result<Target> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_owned(),
            source,
        })?;
        let mut pools = Vec::new();
        for ((name, _), src) in NAMES.into_iter().zip(sources) {
            let path = dir.join(format!("{name}.db"));
            copy(src, &path, name)?;
            let mut db = DatabaseSettings::new(name, path, profile.clone());
            db.create_if_missing = false;
            let mut pool = PoolSettings::default();
            pool.max_size = POOL_SIZE;
            if split {
                db.split = Some(Split::new(&pool));
            }
            db.pool = pool;
            litepool::file::inspect(&db)?;
            let mut opened = db
                .pools()
                .iter()
                .map(|spec| NamedPool::open(&db, spec))
                .collect::<Result<Vec<_>>>()?
                .into_iter();
            let writer = opened.next().expect("a writer or single pool");
            pools.push(Db {
                writer,
                readers: opened.next(),
            });
        }
        let [customers, jobs, audit]: [Db; 3] = pools.try_into().expect("three databases");
        let max = |p: &NamedPool, table: &str| -> Result<i64> {
            let conn = p.get()?;
            // `table` is a fixed name.
            conn.query_row(&format!("SELECT max(id) FROM {table}"), [], |r| r.get(0))
                .map_err(|source| Error::Sqlite {
                    database: table.to_owned(),
                    source,
                })
        };
        Ok(Target {
            max_customer: max(customers.read(), "customers")?,
            max_job: max(jobs.read(), "jobs")?,
            customers,
            jobs,
            audit,
        })
    }

    /// Runs one operation of `workload` (for `Mixed`, one drawn at random).
    pub fn op(&self, workload: Workload, rng: &mut Rng) -> Result<()> {
        let w = match workload {
            Workload::Mixed => match rng.below(10) {
                0..=3 => Workload::PointRead,
                4..=7 => Workload::AssignedBatches,
                8 => Workload::AuditInsert,
                _ => Workload::JobUpdate,
            },
            other => other,
        };
        let sql = |database: &str| {
            let database = database.to_owned();
            move |source| Error::Sqlite { database, source }
        };
        match w {
            Workload::PointRead => {
                let conn = self.customers.read().get()?;
                let id = rng.below(self.max_customer as u64) as i64 + 1;
                conn.prepare_cached(
                    "SELECT name, email, status, batch_id FROM customers WHERE id = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([id], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    })
                })
                .map(drop)
                .map_err(sql("prod_customer_data"))
            }
            Workload::AssignedBatches => {
                let conn = self.customers.read().get()?;
                let who = assignee(rng.below(ASSIGNEES));
                conn.prepare_cached(
                    "SELECT b.id, b.status, count(c.id) FROM batches b
                     LEFT JOIN customers c ON c.batch_id = b.id
                     WHERE b.assigned_to = ?1 GROUP BY b.id",
                )
                .and_then(|mut s| {
                    s.query_map([who], |r| r.get::<_, i64>(2))?
                        .sum::<rusqlite::Result<i64>>()
                })
                .map(drop)
                .map_err(sql("prod_customer_data"))
            }
            Workload::AuditInsert => {
                let mut conn = self.audit.writer.get()?;
                let details = rng.text(300);
                let actor = assignee(rng.below(ASSIGNEES));
                (|| {
                    let tx = conn.transaction()?;
                    tx.prepare_cached("INSERT INTO audit_log(at, actor, action, details) VALUES (?1, ?2, 'update', ?3)")?
                        .execute(params![1_800_000_000i64, actor, details])?;
                    tx.commit()
                })()
                .map_err(sql("audit"))
            }
            Workload::JobUpdate => {
                let mut conn = self.jobs.writer.get()?;
                let id = rng.below(self.max_job as u64) as i64 + 1;
                let next = ["new", "active", "paused", "done"][rng.below(4) as usize];
                (|| {
                    let tx = conn.transaction()?;
                    let status: String = tx
                        .prepare_cached("SELECT status FROM jobs WHERE id = ?1")?
                        .query_row([id], |r| r.get(0))?;
                    if status != next {
                        tx.prepare_cached(
                            "UPDATE jobs SET status = ?1, updated_at = ?2 WHERE id = ?3",
                        )?
                        .execute(params![next, 1_800_000_000i64, id])?;
                    }
                    tx.commit()
                })()
                .map_err(sql("jobs"))
            }
            Workload::Mixed => unreachable!("drawn above"),
        }
    }
}

/// What one workload did under one profile.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// The workload.
    pub workload: Workload,
    /// The profile's name.
    pub profile: String,
    /// Threads.
    pub threads: usize,
    /// Successful operations.
    pub ops: u64,
    /// Operations interrupted because the run's time was up.
    pub interrupted: u64,
    /// Seconds the run really took.
    pub seconds: f64,
    /// Successful operations per second.
    pub ops_per_sec: f64,
    /// Latency of successful operations.
    pub latency: Summary,
    /// Operations that failed with SQLITE_BUSY.
    pub busy: u64,
    /// Operations that failed otherwise.
    pub errors: u64,
}

/// Runs `workload` on its threads for `duration`.
pub fn run(
    target: &Target,
    profile: &str,
    workload: Workload,
    duration: Duration,
    seed: u64,
) -> Result<Measured> {
    let threads = workload.threads();
    // litepool's own statements take microseconds: they are not worth interrupting.
    let t = measure(threads, duration, seed, &|rng, _| target.op(workload, rng))?;
    if let Some(e) = &t.first_error {
        tracing::warn!(error = %e, "benchmark operation failed");
    }
    Ok(Measured {
        workload,
        profile: profile.to_owned(),
        threads,
        ops: t.ops,
        interrupted: t.interrupted,
        seconds: t.seconds,
        ops_per_sec: t.ops as f64 / t.seconds,
        latency: t.latency,
        busy: t.busy,
        errors: t.errors,
    })
}

/// The profiles `litepool bench` compares when none are named.
pub const DEFAULT_PROFILES: [&str; 4] = [
    "sqlite_defaults",
    "original_as_run",
    "original_intent",
    "recommended",
];

/// A whole comparison: every workload under every profile, on copies in a temporary directory.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Each database and what its copy held ("your data", "generated (N rows)", …).
    pub data: Vec<(String, String)>,
    /// Seconds per workload and profile.
    pub seconds: f64,
    /// Row-count multiplier for generated data.
    pub scale: u32,
    /// Logical CPUs of this machine.
    pub cpus: usize,
    /// The profiles, in order; ratios are against the first.
    pub profiles: Vec<String>,
    /// One entry per workload and profile.
    pub results: Vec<Measured>,
}

impl Comparison {
    /// Runs the comparison of `profiles` (each with or without the writer/readers split).
    /// `progress(step, steps, what)` reports each step.
    /// With `require_demo`, the copies must already hold the demo schema: nothing is generated
    /// in place of the user's data (an error, before anything is measured, instead).
    pub fn run(
        profiles: &[(Profile, bool)],
        from: &Sources,
        seconds: f64,
        scale: u32,
        seed: u64,
        require_demo: bool,
        progress: &mut dyn FnMut(usize, usize, &str),
    ) -> Result<Comparison> {
        let tmp = Scratch::new()?;
        let src_dir = tmp.path().join("sources");
        std::fs::create_dir(&src_dir).map_err(|source| Error::Io {
            path: src_dir.clone(),
            source,
        })?;
        let steps = 1 + profiles.len() * Workload::ALL.len();
        progress(0, steps, "copying or generating the databases");
        let (sources, data) = labelled_sources(&src_dir, from, seed, scale)?;
        if require_demo && data.iter().any(|(_, what)| what != "your data") {
            return Err(Error::Config {
                origin: "litepool bench".into(),
                key: None,
                message: "no workloads to run: configure your own queries under [bench.workloads.<name>] (see the README, \"Benchmark your own queries\"), or pass --builtin for litepool's demo workloads on generated data".into(),
            });
        }
        let mut results = Vec::new();
        let mut step = 1;
        for (i, (profile, split)) in profiles.iter().enumerate() {
            let name = format!(
                "{}{}",
                profile.name(),
                if *split { SPLIT_SUFFIX } else { "" }
            );
            let target = Target::open(&tmp.path().join(i.to_string()), &sources, profile, *split)?;
            for workload in Workload::ALL {
                progress(step, steps, &format!("{name} / {workload}"));
                results.push(run(
                    &target,
                    &name,
                    workload,
                    Duration::from_secs_f64(seconds),
                    seed,
                )?);
                step += 1;
            }
        }
        progress(steps, steps, "done");
        Ok(Comparison {
            data,
            seconds,
            scale,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            profiles: profiles
                .iter()
                .map(|(p, split)| format!("{}{}", p.name(), if *split { SPLIT_SUFFIX } else { "" }))
                .collect(),
            results,
        })
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.profiles.first().map_or("", String::as_str);
        writeln!(
            f,
            "litepool bench: {}s per run, scale {}, {} cpus, pools of {POOL_SIZE}; ratio = ops/s against {first}",
            self.seconds, self.scale, self.cpus
        )?;
        writeln!(
            f,
            "{:<17} {:<18} {:>7} {:>10} {:>9} {:>9} {:>7} {:>6}",
            "workload", "profile", "threads", "ops/s", "p50", "p99", "ratio", "busy"
        )?;
        for w in Workload::ALL {
            let rows: Vec<_> = self.results.iter().filter(|m| m.workload == w).collect();
            let base = rows
                .iter()
                .find(|m| m.profile == first)
                .map(|m| m.ops_per_sec);
            for m in rows {
                let ratio = base
                    .filter(|b| *b > 0.0)
                    .map_or("-".to_owned(), |b| format!("{:.2}x", m.ops_per_sec / b));
                writeln!(
                    f,
                    "{:<17} {:<18} {:>7} {:>10.0} {:>9} {:>9} {:>7} {:>6}",
                    w.as_str(),
                    m.profile,
                    m.threads,
                    m.ops_per_sec,
                    litepool::histogram::human(m.latency.p50),
                    litepool::histogram::human(m.latency.p99),
                    ratio,
                    m.busy
                )?;
            }
        }
        Ok(())
    }
}
