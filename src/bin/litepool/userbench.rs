//! `litepool bench` on the user's own queries (`[bench.workloads.<name>]`), on private copies of
//! the user's databases: each workload alone on one thread, then all of them as a weighted mix.
//!
//! Nothing here names a database or a table: the databases are the ones the workloads name, and
//! the statements are the user's, prepared with placeholders; parameter values come only from the
//! configured generators (samples are drawn from the copy once, before timing).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use litepool::histogram::Summary;
use litepool::settings::{
    BenchTransaction, Checkpoint, DatabaseSettings, Durability, ParamGen, PoolSettings, Split,
    Workload,
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

/// How a candidate's pools are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// One pool, a split, or a split with group commit.
    pub mode: Mode,
    /// Connections of a single pool, and the readers of a split unless `readers` says.
    pub threads: usize,
    /// A split's readers (`max_size`).
    pub readers: Option<u32>,
    /// `checkpoint = "background"`.
    pub background: bool,
}

impl Layout {
    /// `mode` on `threads` connections, SQLite's checkpoints.
    pub fn new(mode: Mode, threads: usize) -> Layout {
        Layout {
            mode,
            threads,
            readers: None,
            background: false,
        }
    }
}

/// Opens pools laid out as `layout` on each copy, at the given durability (default: normal).
fn open(
    copies: &BTreeMap<String, PathBuf>,
    profile: &Profile,
    layout: Layout,
    durability: &BTreeMap<String, Durability>,
) -> anyhow::Result<(BTreeMap<String, Pools>, litepool::Pools)> {
    let Layout {
        mode,
        threads,
        readers,
        background,
    } = layout;
    let mut dbs = Vec::new();
    for (name, path) in copies {
        let mut db = DatabaseSettings::new(name, path, profile.clone());
        db.create_if_missing = false;
        if let Some(d) = durability.get(name) {
            db.durability = *d;
        }
        if background {
            db.checkpoint = Checkpoint::Background;
        }
        let mut pool = PoolSettings::default();
        pool.max_size = threads as u32;
        if mode != Mode::Plain {
            let mut split = Split::new(&pool);
            if let Some(n) = readers {
                split.readers.max_size = n;
            }
            db.split = Some(split);
        }
        db.pool = pool;
        dbs.push(db);
    }
    let all = litepool::Pools::new(&Settings::from_databases(dbs, None)?)?;
    let pools = copies
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
        .collect::<anyhow::Result<_>>()?;
    Ok((pools, all))
}

/// Checks every workload against the copies (the statement prepares, its parameter count matches
/// its generators) and draws its samples. An error names the workload.
fn prepare<'a>(
    workloads: &'a [Workload],
    copies: &BTreeMap<String, PathBuf>,
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

/// What `bench` and `tune` share: one private copy of each database the workloads use, and the
/// workloads checked against it, with their samples drawn. Each measured profile gets copies of
/// these copies ([`Session::candidate`]); the originals are read once, never opened with SQLite.
pub struct Session<'a> {
    scratch: Scratch,
    copies: BTreeMap<String, PathBuf>,
    /// Each database and what its copy holds: "your data (PATH, N bytes)".
    pub data: BTreeMap<String, String>,
    ready: Vec<Ready<'a>>,
    candidates: usize,
    /// Each database's configured durability; empty: SQLite's (bench compares profiles as given).
    durability: BTreeMap<String, Durability>,
}

impl<'a> Session<'a> {
    /// Copies the databases `workloads` use into a new scratch directory and checks the
    /// workloads against the copies.
    pub fn new(settings: &Settings, workloads: &'a [Workload]) -> anyhow::Result<Session<'a>> {
        let scratch = Scratch::new()?;
        let sources = scratch.path().join("sources");
        std::fs::create_dir(&sources)?;
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
        Ok(Session {
            scratch,
            copies,
            data,
            ready,
            candidates: 0,
            durability: BTreeMap::new(),
        })
    }

    /// Opens every candidate with each database's configured `durability` (what `tune` does:
    /// durability is the user's decision, never a candidate's).
    pub fn with_durability(mut self, settings: &Settings) -> Self {
        self.durability = self
            .copies
            .keys()
            .map(|n| (n.clone(), settings.databases[n].durability))
            .collect();
        self
    }

    /// True when a workload on `database` writes (it runs on the writer of a split database).
    pub fn writes(&self, database: &str) -> bool {
        self.ready
            .iter()
            .any(|r| !r.reads && r.w.database == database)
    }

    /// The private copy of `database` every candidate starts from.
    pub fn copy_of(&self, database: &str) -> Option<&Path> {
        self.copies.get(database).map(PathBuf::as_path)
    }

    /// Fresh copies of the session's copies, with pools laid out as `layout` under `profile` on
    /// them. The copies are removed when the candidate is dropped.
    pub fn candidate(&mut self, profile: &Profile, layout: Layout) -> anyhow::Result<Candidate> {
        let dir = self.scratch.path().join(self.candidates.to_string());
        self.candidates += 1;
        std::fs::create_dir(&dir)?;
        let mut run_copies = BTreeMap::new();
        for (name, src) in &self.copies {
            let dest = dir.join(Path::new(src).file_name().unwrap_or_default());
            copy_database(src, &dest, name)?;
            run_copies.insert(name.clone(), dest);
        }
        let (pools, all) = open(&run_copies, profile, layout, &self.durability)?;
        Ok(Candidate {
            label: format!("{}{}", profile.name(), layout.mode.suffix()),
            pools,
            all,
            dir,
        })
    }
}

/// One profile's pools on its own copies; the copies are removed when it is dropped.
pub struct Candidate {
    label: String,
    pools: BTreeMap<String, Pools>,
    /// Every pool, for their statistics.
    pub all: litepool::Pools,
    dir: PathBuf,
}

impl Drop for Candidate {
    fn drop(&mut self) {
        self.pools.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Candidate {
    /// The workload `r` alone on one thread.
    fn alone(&self, r: &Ready<'_>, duration: Duration, seed: u64) -> anyhow::Result<Row> {
        let p = &self.pools[&r.w.database];
        measure(&r.w.name, &self.label, 1, duration, seed, &|rng, bound| {
            op(r, p, rng, bound)
        })
    }

    /// Every workload of `session` as a weighted mix on `threads` threads.
    pub fn mixed(
        &self,
        session: &Session<'_>,
        threads: usize,
        duration: Duration,
        seed: u64,
    ) -> anyhow::Result<Row> {
        let ready = &session.ready;
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
            op(r, &self.pools[&r.w.database], rng, bound)
        };
        measure("mixed", &self.label, threads, duration, seed, &pick)
    }
}

/// Runs the user's `workloads` under each of `profiles`.
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
    let mut session = Session::new(settings, workloads)?;
    let duration = Duration::from_secs_f64(seconds);
    let steps = profiles.len() * (session.ready.len() + 1);
    let mut step = 0;
    let mut results = Vec::new();
    for (profile, mode) in profiles {
        let candidate = session.candidate(profile, Layout::new(*mode, threads.max(2)))?;
        for r in &session.ready {
            progress(step, steps, &format!("{} / {}", candidate.label, r.w.name));
            step += 1;
            results.push(candidate.alone(r, duration, seed)?);
        }
        progress(step, steps, &format!("{} / mixed", candidate.label));
        step += 1;
        results.push(candidate.mixed(&session, threads, duration, seed)?);
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
        data: session.data.clone(),
        results,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        sources: settings.sources.clone(),
    })
}
