//! `litepool bench` on the user's own queries (`[bench.workloads.<name>]`), on private copies of
//! the user's databases: each workload alone on one thread, then all of them as a weighted mix.
//!
//! Nothing here names a database or a table: the databases are the ones the workloads name, and
//! the statements are the user's, prepared with placeholders; parameter values come only from the
//! configured generators (samples are drawn from the copy once, before timing).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use litepool::histogram::Summary;
use litepool::settings::{
    BenchTransaction, DatabaseSettings, ParamGen, PoolSettings, Split, Workload,
};
use litepool::{Profile, Settings};
use rusqlite::types::Value;
use rusqlite::TransactionBehavior;
use serde::Serialize;

use crate::datagen::Rng;
use crate::measure::Bound;
use crate::scratch::{copy_database, Scratch};

/// One measured row: a workload (or `mixed`) under one profile.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The workload's name, or `mixed`.
    pub workload: String,
    /// The profile's name (`+split` for the writer/readers split).
    pub profile: String,
    /// Threads.
    pub threads: usize,
    /// Completed operations.
    pub ops: u64,
    /// Operations whose statement was still running when the run's time was up, and was
    /// interrupted (neither completed nor an error).
    pub interrupted: u64,
    /// Seconds the run really took (its `--seconds` bound, plus the moment the last thread
    /// took to stop).
    pub seconds: f64,
    /// Completed operations per second.
    pub ops_per_sec: f64,
    /// Latency of completed operations.
    pub latency: Summary,
    /// Attempts that failed with SQLITE_BUSY.
    pub busy: u64,
    /// Attempts that failed otherwise.
    pub errors: u64,
    /// The first error, if any.
    pub first_error: Option<String>,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What ran: "your queries" or "built-in".
    pub kind: &'static str,
    /// The `--seconds` bound of each run; each row's `seconds` is what the run really took.
    pub requested_seconds: f64,
    /// Threads of the mixed run.
    pub threads: usize,
    /// Logical CPUs.
    pub cpus: usize,
    /// The profiles, in order; ratios are against the first.
    pub profiles: Vec<String>,
    /// The workloads, as configured.
    pub workloads: Vec<Workload>,
    /// Each database and what its copy holds: "your data (PATH, N bytes)".
    pub data: BTreeMap<String, String>,
    /// The rows.
    pub results: Vec<Row>,
    /// The command line.
    pub command: String,
    /// The configuration sources.
    pub sources: Vec<String>,
}

/// A workload ready to run: its statement checked against the copy and its samples drawn.
struct Ready<'a> {
    w: &'a Workload,
    /// Runs on the readers of a split database (a read-only statement outside a write
    /// transaction).
    reads: bool,
    samples: Vec<Vec<Value>>,
}

/// One database's pools for one profile: its handle, and whether writes go through group
/// commit (`+group`).
struct Pools {
    handle: litepool::Handle,
    group: bool,
    /// Keeps the pools (and their committer) alive.
    _all: litepool::Pools,
}

/// Runs `sql` once with `params`, reading every row it returns.
fn statement(c: &rusqlite::Connection, sql: &str, params: &[Value]) -> rusqlite::Result<()> {
    let mut st = c.prepare_cached(sql)?;
    if st.column_count() > 0 {
        let mut rows = st.query(rusqlite::params_from_iter(params))?;
        while rows.next()?.is_some() {}
    } else {
        st.execute(rusqlite::params_from_iter(params))?;
    }
    Ok(())
}

fn value(gen: &ParamGen, sample: &[Value], rng: &mut Rng) -> Value {
    match gen {
        ParamGen::Int([lo, hi]) => {
            let span = (*hi as i128 - *lo as i128 + 1) as u128;
            Value::Integer((*lo as i128 + (rng.next_u64() as u128 % span) as i128) as i64)
        }
        ParamGen::Text(n) => Value::Text(rng.text(*n as usize)),
        ParamGen::Sample(_) => sample[rng.below(sample.len() as u64) as usize].clone(),
    }
}

/// One operation of `ready`; its statement (not the `BEGIN`/`COMMIT` around it) runs under
/// `bound`, so that the run's deadline interrupts it.
fn op(ready: &Ready<'_>, pools: &Pools, rng: &mut Rng, bound: &Bound) -> litepool::Result<()> {
    let w = ready.w;
    let params: Vec<Value> = w
        .params
        .iter()
        .zip(&ready.samples)
        .map(|(g, s)| value(g, s, rng))
        .collect();
    if pools.group && !ready.reads {
        // Group commit: the statement runs in its own savepoint of the writer's next batch.
        let sql = w.sql.clone();
        let bound = bound.clone();
        return pools
            .handle
            .write(move |c| bound.run(c, |c| statement(c, &sql, &params)));
    }
    let mut conn = if ready.reads {
        pools.handle.reader()?
    } else {
        pools.handle.writer()?
    };
    let sql = |source| litepool::Error::Sqlite {
        database: w.database.clone(),
        source,
    };
    let run = |c: &rusqlite::Connection| bound.run(c, |c| statement(c, &w.sql, &params));
    let behavior = match w.transaction {
        BenchTransaction::None => return run(&conn).map_err(sql),
        BenchTransaction::Deferred => TransactionBehavior::Deferred,
        BenchTransaction::Immediate => TransactionBehavior::Immediate,
    };
    let tx = conn.transaction_with_behavior(behavior).map_err(sql)?;
    run(&tx).map_err(sql)?;
    tx.commit().map_err(sql)
}

/// One row: `pick` on `threads` threads for `duration` ([`crate::measure::measure`]).
fn measure(
    name: &str,
    profile: &str,
    threads: usize,
    duration: Duration,
    seed: u64,
    pick: &(dyn Fn(&mut Rng, &Bound) -> litepool::Result<()> + Sync),
) -> anyhow::Result<Row> {
    let t = crate::measure::measure(threads, duration, seed, pick)?;
    Ok(Row {
        workload: name.to_owned(),
        profile: profile.to_owned(),
        threads,
        ops: t.ops,
        interrupted: t.interrupted,
        seconds: t.seconds,
        ops_per_sec: t.ops as f64 / t.seconds,
        latency: t.latency,
        busy: t.busy,
        errors: t.errors,
        first_error: t.first_error,
    })
}

/// How a profile's pools are laid out in a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One pool.
    Plain,
    /// A writer and readers, a transaction per operation on the writer.
    Split,
    /// A writer and readers, writes through group commit.
    Group,
}

impl Mode {
    /// The suffix a profile name takes on the command line and in the output.
    pub fn suffix(self) -> &'static str {
        match self {
            Mode::Plain => "",
            Mode::Split => crate::bench::SPLIT_SUFFIX,
            Mode::Group => GROUP_SUFFIX,
        }
    }
}

/// The suffix of a profile name that asks for the split with group commit.
pub const GROUP_SUFFIX: &str = "+group";

/// Opens pools of `threads` connections (a writer and readers unless `Plain`) on each copy.
fn open(
    copies: &BTreeMap<String, std::path::PathBuf>,
    profile: &Profile,
    mode: Mode,
    threads: usize,
) -> anyhow::Result<BTreeMap<String, Pools>> {
    let mut dbs = Vec::new();
    for (name, path) in copies {
        let mut db = DatabaseSettings::new(name, path, profile.clone());
        db.create_if_missing = false;
        let mut pool = PoolSettings::default();
        pool.max_size = threads as u32;
        if mode != Mode::Plain {
            db.split = Some(Split::new(&pool));
        }
        db.pool = pool;
        dbs.push(db);
    }
    let all = litepool::Pools::new(&Settings::from_databases(dbs, None)?)?;
    copies
        .keys()
        .map(|name| {
            Ok((
                name.clone(),
                Pools {
                    handle: all.handle(name)?,
                    group: mode == Mode::Group,
                    _all: all.clone(),
                },
            ))
        })
        .collect()
}

/// Checks every workload against the copies (the statement prepares, its parameter count matches
/// its generators) and draws its samples. An error names the workload.
fn prepare<'a>(
    workloads: &'a [Workload],
    copies: &BTreeMap<String, std::path::PathBuf>,
) -> anyhow::Result<Vec<Ready<'a>>> {
    workloads
        .iter()
        .map(|w| {
            let conn = rusqlite::Connection::open(&copies[&w.database])?;
            let fail = |what: String| {
                anyhow::anyhow!("workload {:?} (database {:?}): {what}", w.name, w.database)
            };
            let st = conn.prepare(&w.sql).map_err(|e| {
                fail(format!(
                    "the statement does not prepare against a copy of the database: {e}"
                ))
            })?;
            if st.parameter_count() != w.params.len() {
                return Err(fail(format!(
                    "the statement has {} parameter(s) but params lists {} generator(s)",
                    st.parameter_count(),
                    w.params.len()
                )));
            }
            let reads = st.readonly() && w.transaction != BenchTransaction::Immediate;
            let mut samples = Vec::new();
            for p in &w.params {
                let values = match p {
                    ParamGen::Sample(q) => {
                        let mut sq = conn.prepare(q).map_err(|e| {
                            fail(format!("sample query {q:?} does not prepare: {e}"))
                        })?;
                        if !sq.readonly() || sq.column_count() == 0 {
                            return Err(fail(format!(
                                "sample query {q:?} must be a read-only query that returns rows"
                            )));
                        }
                        let v: Vec<Value> = sq
                            .query_map([], |r| r.get::<_, Value>(0))?
                            .take(100_000)
                            .collect::<rusqlite::Result<_>>()?;
                        if v.is_empty() {
                            return Err(fail(format!("sample query {q:?} returned no rows")));
                        }
                        v
                    }
                    _ => Vec::new(),
                };
                samples.push(values);
            }
            Ok(Ready { w, reads, samples })
        })
        .collect()
}

/// Runs the user's `workloads` under each of `profiles` (`true`: with the split).
#[allow(clippy::too_many_arguments)]
pub fn run(
    settings: &Settings,
    workloads: &[Workload],
    profiles: &[(Profile, Mode)],
    seconds: f64,
    threads: usize,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> anyhow::Result<Report> {
    let scratch = Scratch::new()?;
    let sources = scratch.path().join("sources");
    std::fs::create_dir(&sources)?;
    // One private copy of each database the workloads use; each profile copies that copy.
    let mut data = BTreeMap::new();
    let mut copies = BTreeMap::new();
    for (i, name) in workloads
        .iter()
        .map(|w| &w.database)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .enumerate()
    {
        let db = &settings.databases[name];
        if !db.path.exists() {
            bail!(
                "database {name:?}: {} does not exist: litepool bench measures your data; create it, or pass --builtin for litepool's demo workloads on generated data",
                db.path.display()
            );
        }
        let dest = sources.join(format!("{i}.db"));
        copy_database(&db.path, &dest, name)?;
        data.insert(
            name.clone(),
            format!(
                "your data ({}, {} bytes)",
                db.path.display(),
                std::fs::metadata(&db.path)?.len()
            ),
        );
        copies.insert(name.clone(), dest);
    }
    let ready = prepare(workloads, &copies)?;
    let duration = Duration::from_secs_f64(seconds);
    let steps = profiles.len() * (ready.len() + 1);
    let mut step = 0;
    let mut results = Vec::new();
    for (pi, (profile, mode)) in profiles.iter().enumerate() {
        let label = format!("{}{}", profile.name(), mode.suffix());
        let dir = scratch.path().join(pi.to_string());
        std::fs::create_dir(&dir)?;
        let mut run_copies = BTreeMap::new();
        for (name, src) in &copies {
            let dest = dir.join(Path::new(src).file_name().unwrap_or_default());
            copy_database(src, &dest, name)?;
            run_copies.insert(name.clone(), dest);
        }
        let pools = open(&run_copies, profile, *mode, threads.max(2))?;
        for r in &ready {
            progress(step, steps, &format!("{label} / {}", r.w.name));
            step += 1;
            let p = &pools[&r.w.database];
            results.push(measure(
                &r.w.name,
                &label,
                1,
                duration,
                seed,
                &|rng, bound| op(r, p, rng, bound),
            )?);
        }
        progress(step, steps, &format!("{label} / mixed"));
        step += 1;
        let total: u64 = ready.iter().map(|r| u64::from(r.w.weight)).sum();
        let pick = |rng: &mut Rng, bound: &Bound| {
            let mut x = rng.below(total);
            let r = ready
                .iter()
                .find(|r| {
                    let w = u64::from(r.w.weight);
                    if x < w {
                        true
                    } else {
                        x -= w;
                        false
                    }
                })
                .unwrap_or(&ready[0]);
            op(r, &pools[&r.w.database], rng, bound)
        };
        results.push(measure("mixed", &label, threads, duration, seed, &pick)?);
    }
    progress(steps, steps, "done");
    Ok(Report {
        kind: "your queries",
        requested_seconds: seconds,
        threads,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        profiles: profiles
            .iter()
            .map(|(p, m)| format!("{}{}", p.name(), m.suffix()))
            .collect(),
        workloads: workloads.to_vec(),
        data,
        results,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        sources: settings.sources.clone(),
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first = self.profiles.first().map_or("", String::as_str);
        writeln!(
            f,
            "litepool bench ({}): runs of {}, mixed on {} threads, {} cpus; ratio = ops/s against {first}",
            self.kind, self.took(), self.threads, self.cpus
        )?;
        for (db, what) in &self.data {
            writeln!(f, "  {db}: {what}")?;
        }
        writeln!(
            f,
            "{:<20} {:<22} {:>7} {:>7} {:>10} {:>9} {:>9} {:>9} {:>7} {:>6} {:>6} {:>11}",
            "workload",
            "profile",
            "threads",
            "seconds",
            "ops/s",
            "p50",
            "p99",
            "max",
            "ratio",
            "busy",
            "errors",
            "interrupted"
        )?;
        let mut names: Vec<&str> = Vec::new();
        for r in &self.results {
            if !names.contains(&r.workload.as_str()) {
                names.push(&r.workload);
            }
        }
        for name in names {
            let rows: Vec<_> = self.results.iter().filter(|r| r.workload == name).collect();
            let base = rows
                .iter()
                .find(|r| r.profile == first)
                .map(|r| r.ops_per_sec);
            for r in rows {
                let ratio = base
                    .filter(|b| *b > 0.0)
                    .map_or("-".to_owned(), |b| format!("{:.2}x", r.ops_per_sec / b));
                writeln!(
                    f,
                    "{:<20} {:<22} {:>7} {:>7.2} {:>10.0} {:>9} {:>9} {:>9} {:>7} {:>6} {:>6} {:>11}",
                    r.workload,
                    r.profile,
                    r.threads,
                    r.seconds,
                    r.ops_per_sec,
                    latency(r, r.latency.p50),
                    latency(r, r.latency.p99),
                    latency(r, r.latency.max),
                    ratio,
                    r.busy,
                    r.errors,
                    r.interrupted
                )?;
                if let Some(e) = &r.first_error {
                    writeln!(f, "  first error: {e}")?;
                }
            }
        }
        Ok(())
    }
}

/// A latency of `r` for the table: `-` when no operation completed (there is none to show).
fn latency(r: &Row, d: std::time::Duration) -> String {
    if r.ops == 0 {
        "-".to_owned()
    } else {
        litepool::histogram::human(d)
    }
}

impl Report {
    /// The runs' length for a header: the `--seconds` bound and what the runs really took,
    /// e.g. "0.3s (took 0.30-0.31s)".
    pub fn took(&self) -> String {
        let secs = self.results.iter().map(|r| r.seconds);
        let (lo, hi) = (
            secs.clone().fold(f64::INFINITY, f64::min),
            secs.fold(0.0, f64::max),
        );
        if self.results.is_empty() {
            format!("{}s", self.requested_seconds)
        } else {
            format!("{}s (took {lo:.2}-{hi:.2}s)", self.requested_seconds)
        }
    }

    /// The built-in comparison as a report, with what each copy held.
    pub fn from_builtin(c: crate::bench::Comparison, settings: &Settings) -> Report {
        let threads = c.results.iter().map(|m| m.threads).max().unwrap_or(1);
        Report {
            kind: "built-in demo workloads",
            requested_seconds: c.seconds,
            threads,
            cpus: c.cpus,
            profiles: c.profiles,
            workloads: Vec::new(),
            data: c.data.into_iter().collect(),
            results: c
                .results
                .into_iter()
                .map(|m| Row {
                    workload: m.workload.to_string(),
                    profile: m.profile,
                    threads: m.threads,
                    ops: m.ops,
                    interrupted: m.interrupted,
                    seconds: m.seconds,
                    ops_per_sec: m.ops_per_sec,
                    latency: m.latency,
                    busy: m.busy,
                    errors: m.errors,
                    first_error: None,
                })
                .collect(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            sources: settings.sources.clone(),
        }
    }
}
