//! `litepool tune`: starting from a database's configured profile, measures candidate profiles
//! with the configured workloads on private copies (the `bench` runner: [`Session`]), and
//! proposes the best one as a `[profiles.tuned]` snippet, confirmed by repeated runs.
//!
//! The search, one dimension after another, each from the best so far:
//! 1. `cache_size`, from SQLite's default doubling up to the file size (and never over the memory
//!    budget), measured with `mmap_size = 0` so that every page goes through the cache; it stops
//!    growing when misses per operation stop falling, then tries the midpoint below.
//! 2. `mmap_size`: 0 or the file size. 3. `temp_store`: default or memory.
//! 4. `journal_size_limit`: 4MiB or 64MiB.
//!
//! `synchronous`, `journal_mode` and the database's `durability` are never candidates: they are
//! the user's decision, and every run is measured at the configured ones. Each run gets an equal
//! share of what is left of `--time-budget`; the run's first 30% warms the cache and is not
//! counted. A difference inside the spread of repeated runs is never called a win.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use litepool::pragma::{ByteSize, CacheSize, MmapSize, TempStore};
use litepool::settings::{DatabaseSettings, Durability, Workload};
use litepool::{PragmaSet, Profile, Settings};

use crate::tune_out::{Confirmation, Dimension, Point, Tuned};
use crate::userbench::{Mode, Session};

/// SQLite's default page cache, 2000 KiB: where the cache search starts.
const DEFAULT_CACHE: u64 = 2000 * 1024;
/// Runs of the leader, the runner-up and the configured profile at the end.
pub const REPEATS: usize = 3;
/// Below this a run measures its own start, not the workload: the search stops.
const MIN_RUN: Duration = Duration::from_millis(100);
/// Share of each run that warms the cache and is not counted.
const WARM: f64 = 0.3;
/// A cache step must cut misses per operation by this share, and by [`MISS_FLOOR`], to count.
const MISS_FALL: f64 = 0.10;
const MISS_FLOOR: f64 = 0.01;

/// `litepool tune`'s arguments.
#[derive(clap::Args)]
pub struct TuneArgs {
    #[command(flatten)]
    source: crate::Source,
    /// The database to tune [default: the one database the workloads use].
    #[arg(long, value_name = "NAME")]
    database: Option<String>,
    /// Measure only these configured workloads, comma-separated [default: every workload on
    /// the database].
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// How long the whole run may take, 5s to 24h (e.g. 90s, 5m).
    #[arg(long, default_value = "5m", value_parser = time_budget)]
    time_budget: Duration,
    /// Also write a self-contained HTML report: each dimension's measured curve, the chosen
    /// point, the final comparison. Checked before anything is measured.
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
    /// Threads of the mixed run, 1 to 256.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
    /// Seed for the workloads' random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// `--time-budget`: a duration from 5s to 24h.
fn time_budget(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{e}; expected e.g. 90s or 5m"))?;
    if d < Duration::from_secs(5) || d > Duration::from_secs(24 * 3600) {
        return Err(format!("{text} is not in 5s..=24h"));
    }
    Ok(d)
}

/// The database to tune and the workloads that run on it.
fn choose(
    settings: &Settings,
    args: &TuneArgs,
) -> anyhow::Result<(DatabaseSettings, Vec<Workload>)> {
    let names = |it: &mut dyn Iterator<Item = &String>| {
        it.map(String::as_str).collect::<Vec<_>>().join(", ")
    };
    let db = match &args.database {
        Some(n) => settings.databases.get(n).ok_or_else(|| {
            anyhow!(
                "unknown database {n:?} in --database: configured databases are {}",
                names(&mut settings.databases.keys())
            )
        })?,
        None => {
            let used: std::collections::BTreeSet<&String> =
                settings.workloads.values().map(|w| &w.database).collect();
            match used.len() {
                0 => bail!("no workload configured: tune measures your [bench.workloads.<name>]; see docs/bench.md"),
                1 => &settings.databases[*used.iter().next().unwrap_or(&&String::new())],
                _ => bail!(
                    "--database is required: the workloads run on {}; tune tunes one database at a time",
                    names(&mut used.into_iter())
                ),
            }
        }
    };
    let workloads: Vec<Workload> = if args.workloads.is_empty() {
        settings
            .workloads
            .values()
            .filter(|w| w.database == db.name)
            .cloned()
            .collect()
    } else {
        args.workloads
            .iter()
            .map(|n| {
                let w = settings.workloads.get(n).ok_or_else(|| {
                    anyhow!(
                        "unknown workload {n:?} in --workloads: configured workloads are {}",
                        names(&mut settings.workloads.keys())
                    )
                })?;
                if w.database != db.name {
                    bail!("workload {n:?} in --workloads runs on database {:?}, not on {:?}: tune measures one database's workloads", w.database, db.name);
                }
                Ok(w.clone())
            })
            .collect::<anyhow::Result<_>>()?
    };
    if workloads.is_empty() {
        bail!("no workload configured on database {:?}: tune measures your [bench.workloads.<name>] on it; see docs/bench.md", db.name);
    }
    Ok((db.clone(), workloads))
}

/// The search's state: the session, the clock and what was measured.
struct Tuner<'a> {
    session: Session<'a>,
    threads: usize,
    seed: u64,
    deadline: Instant,
    /// Wall time each run took beyond its measured seconds (copies, pools), a running average.
    overhead: Duration,
    points: Vec<Point>,
    bar: ProgressBar,
}

impl Tuner<'_> {
    /// An equal share of the time left for `runs_left` runs, or `None` when too little is left.
    fn slice(&self, runs_left: usize) -> Option<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let per = (left / runs_left.max(1) as u32).saturating_sub(self.overhead);
        (per >= MIN_RUN).then_some(per)
    }

    /// One run of `set` for `run` (warm-up included); `None` when the time is up.
    fn run(
        &mut self,
        dimension: &str,
        value: String,
        set: &PragmaSet,
        run: Duration,
    ) -> anyhow::Result<Point> {
        let t0 = Instant::now();
        self.bar.set_message(format!("{dimension} = {value}"));
        let profile = Profile::new(format!("{dimension}={value}"), set.clone())?;
        let c = self
            .session
            .candidate(&profile, Mode::Plain, self.threads)?;
        let warm = run.mul_f64(WARM);
        c.mixed(&self.session, self.threads, warm, self.seed)?;
        c.all.reset_stats();
        let row = c.mixed(
            &self.session,
            self.threads,
            run - warm,
            self.seed.wrapping_add(1),
        )?;
        let (hit, miss) = c
            .all
            .stats()
            .0
            .values()
            .fold((0, 0), |(h, m), p| (h + p.cache.hit, m + p.cache.miss));
        drop(c);
        let spent = t0.elapsed().saturating_sub(run);
        self.overhead = if self.points.is_empty() {
            spent
        } else {
            (self.overhead + spent) / 2
        };
        let point = Point::new(dimension, value, set.clone(), row, hit, miss);
        self.bar.inc(1);
        Ok(point)
    }

    /// Measures and keeps one point of the search; `None` when the time is up.
    fn explore(
        &mut self,
        dimension: &str,
        value: String,
        set: &PragmaSet,
        runs_left: usize,
    ) -> anyhow::Result<Option<usize>> {
        let Some(run) = self.slice(runs_left + 3 * REPEATS) else {
            return Ok(None);
        };
        let p = self.run(dimension, value, set, run)?;
        self.points.push(p);
        crate::scratch::on_interrupt(self.interrupted_text());
        Ok(Some(self.points.len() - 1))
    }

    /// What SIGINT prints: the best point so far, unconfirmed.
    fn interrupted_text(&self) -> String {
        let best = self
            .points
            .iter()
            .max_by(|a, b| a.row.ops_per_sec.total_cmp(&b.row.ops_per_sec));
        best.map_or_else(String::new, |p| {
            format!(
                "# litepool tune: interrupted; best so far ({:.0} ops/s, not confirmed by repeated runs)\n{}",
                p.row.ops_per_sec,
                crate::tune_out::snippet(&p.set)
            )
        })
    }
}

/// `litepool tune`.
pub fn run(args: TuneArgs) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    if let Some(path) = &args.report {
        crate::output::check_report_path(path)?;
    }
    let settings = crate::replica_env::without_replicas(&args.source.load()?, "tune")?;
    crate::prep::preflight_copies(&settings)?;
    let (db, workloads) = choose(&settings, &args)?;
    let session = Session::new(&settings, &workloads)?.with_durability(&settings);
    let copy = session
        .copy_of(&db.name)
        .ok_or_else(|| anyhow!("no copy of {:?}", db.name))?;
    let file_bytes = std::fs::metadata(copy)?.len();
    let page_size: i64 =
        rusqlite::Connection::open(copy)?.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let page_size = page_size as u64;
    let configured = db.profile.pragmas().clone();
    let conns: u64 = db.pools().iter().map(|p| u64::from(p.pool.max_size)).sum();
    // The budget left for this database's pools: the others keep what they have.
    let mut others = settings.clone();
    others.databases.remove(&db.name);
    let cap = settings.memory_budget.map(|b| {
        let rest = litepool::budget::Budget::without_files(&others).worst_case;
        b.bytes().saturating_sub(rest) / conns.max(1)
    });
    let bar = ProgressBar::new(0).with_style(ProgressStyle::with_template(
        "tune: {msg:40} {pos} runs {elapsed}/{prefix}",
    )?);
    bar.set_prefix(humantime::format_duration(args.time_budget).to_string());
    // The output, a report and removing the copies take a moment: the runs end a little early.
    let deadline = start + args.time_budget.mul_f64(0.92);
    let mut t = Tuner {
        session,
        threads: usize::from(args.threads),
        seed: args.seed,
        deadline,
        overhead: Duration::ZERO,
        points: Vec::new(),
        bar,
    };
    let mut dims = Vec::new();
    // Steps of the cache search, in KiB: SQLite's default doubling up to the file, under the cap.
    let kib = |b: u64| b.div_ceil(1024).max(1);
    let mut steps = Vec::new();
    let mut v = DEFAULT_CACHE / 1024;
    while v * 1024 < file_bytes {
        steps.push(v);
        v *= 2;
    }
    steps.push(kib(file_bytes).max(DEFAULT_CACHE / 1024));
    if let Some(cap) = cap {
        steps.retain(|s| s * 1024 <= cap);
        if steps.is_empty() && cap >= 1024 {
            steps.push(cap / 1024);
        }
    }
    let exploring = steps.len() + 5;
    let base = t.explore(
        "configured",
        db.profile.name().to_owned(),
        &configured,
        exploring,
    )?;
    let Some(base) = base else {
        bail!(
            "--time-budget {} leaves no time to measure even the configured profile",
            humantime::format_duration(args.time_budget)
        );
    };
    let with_cache = |set: &PragmaSet, k: u64| {
        let mut s = set.clone();
        s.cache_size = Some(CacheSize::Bytes(ByteSize(k * 1024)));
        s.mmap_size = "0".parse::<MmapSize>().ok();
        s
    };
    let cache_label = |k: u64| ByteSize(k * 1024).to_string();
    // 1. cache_size.
    let mut chosen: Option<(usize, u64)> = None;
    let mut prev: Option<(usize, u64)> = None;
    for (i, &k) in steps.iter().enumerate() {
        let Some(p) = t.explore(
            "cache_size",
            cache_label(k),
            &with_cache(&configured, k),
            exploring - i,
        )?
        else {
            break;
        };
        if let Some((pp, pk)) = prev {
            let (before, now) = (t.points[pp].misses_per_op(), t.points[p].misses_per_op());
            if before - now < (before * MISS_FALL).max(MISS_FLOOR) {
                chosen = Some((pp, pk));
                break;
            }
        }
        prev = Some((p, k));
    }
    let mut chosen = chosen.or(prev);
    // Refine: the midpoint below the chosen step, kept if it misses no more.
    if let Some((cp, ck)) = chosen {
        let lower = steps.iter().rev().find(|&&s| s < ck).copied();
        if let Some(lo) = lower {
            let mid = (lo + ck) / 2;
            if let Some(p) = t.explore(
                "cache_size",
                cache_label(mid),
                &with_cache(&configured, mid),
                4,
            )? {
                let (c, m) = (t.points[cp].misses_per_op(), t.points[p].misses_per_op());
                if m - c < (c * MISS_FALL).max(MISS_FLOOR) {
                    chosen = Some((p, mid));
                }
            }
        }
    }
    let mut current = chosen.map_or(base, |(p, _)| p);
    let reason = match (steps.len(), chosen) {
        (1, _) => format!("the file ({}) fits in the first step; grown no further", litepool::budget::human(file_bytes)),
        (_, Some((p, _))) => format!(
            "grown from SQLite's default (2000KiB) by doubling{}, measured with mmap_size = 0 so every page goes through the cache; chosen where misses stopped falling (hit ratio {})",
            cap.map_or(String::new(), |c| format!(", at most {} per connection ({} connections under limits.memory_budget)", litepool::budget::human(c), conns)),
            t.points[p].hit_ratio().map_or("-".into(), |h| format!("{:.1}%", h * 100.0))
        ),
        _ => "not measured: the time budget ran out".into(),
    };
    dims.push(Dimension::new("cache_size", reason, chosen.map(|(p, _)| p)));
    // 2.-4. One value at a time against the best so far.
    let mmap_file: MmapSize = format!("{}MiB", file_bytes.div_ceil(1 << 20).clamp(1, 2047))
        .parse()
        .map_err(|e| anyhow!("{e}"))?;
    let zero: MmapSize = "0".parse().map_err(|e| anyhow!("{e}"))?;
    type Edit = Box<dyn Fn(&mut PragmaSet)>;
    /// A dimension: its name, its values (each a label and an edit of the best so far), why.
    type Search = (&'static str, Vec<(String, Edit)>, &'static str);
    let options: [Search; 3] = [
        (
            "mmap_size",
            vec![
                ("0".into(), Box::new(move |s| s.mmap_size = Some(zero))),
                (mmap_file.to_string(), Box::new(move |s| s.mmap_size = Some(mmap_file))),
            ],
            "reads through memory-mapped I/O need no read() call per page, up to the file size; notice: an I/O error on a mapped page raises SIGBUS, which kills the process, instead of returning an error (https://sqlite.org/mmap.html)",
        ),
        (
            "temp_store",
            [TempStore::Default, TempStore::Memory]
                .into_iter()
                .map(|v| (v.to_string(), Box::new(move |s: &mut PragmaSet| s.temp_store = Some(v)) as Edit))
                .collect(),
            "sorts and temporary tables in memory instead of temporary files",
        ),
        (
            "journal_size_limit",
            [4u64 << 20, 64 << 20]
                .into_iter()
                .map(|v| (ByteSize(v).to_string(), Box::new(move |s: &mut PragmaSet| s.journal_size_limit = Some(ByteSize(v))) as Edit))
                .collect(),
            "the WAL or journal kept after a checkpoint is truncated to this size (disk use, not speed, on most workloads)",
        ),
    ];
    for (round, (name, values, why)) in options.into_iter().enumerate() {
        let from = t.points[current].set.clone();
        let mut best = None;
        for (label, edit) in values {
            let mut set = from.clone();
            edit(&mut set);
            if set == from {
                continue;
            }
            let Some(p) = t.explore(name, label, &set, 3 - round)? else {
                break;
            };
            if t.points[p].row.ops_per_sec > t.points[current].row.ops_per_sec * 1.02 {
                best = Some(p);
                current = p;
            }
        }
        dims.push(Dimension::new(name, why.to_string(), best));
    }
    // Confirmation: the configured profile, the leader and the runner-up, each run REPEATS times.
    let leader = t.points[current].set.clone();
    let runner_up = t
        .points
        .iter()
        .filter(|p| p.set != leader && p.set != configured)
        .max_by(|a, b| a.row.ops_per_sec.total_cmp(&b.row.ops_per_sec))
        .map(|p| p.set.clone());
    let mut contenders = vec![
        ("configured", configured.clone()),
        ("tuned", leader.clone()),
    ];
    if let Some(r) = runner_up {
        contenders.push(("runner-up", r));
    }
    if leader == configured {
        contenders.remove(1);
    }
    let runs = contenders.len() * REPEATS;
    let slice = t.slice(runs).unwrap_or(MIN_RUN);
    let mut confirm = Vec::new();
    for (name, set) in &contenders {
        let mut c = Confirmation::new(name, set.clone());
        for _ in 0..REPEATS {
            c.push(t.run(name, String::new(), set, slice)?);
        }
        confirm.push(c);
    }
    t.bar.finish_and_clear();
    crate::scratch::on_interrupt(String::new());
    let tuned = Tuned::new(TunedFrom {
        db: &db,
        workloads: &workloads,
        page_size,
        file_bytes,
        threads: t.threads,
        budget: args.time_budget,
        elapsed: start.elapsed(),
        points: t.points,
        dims,
        confirm,
        configured,
        leader,
    });
    let mut out = std::io::stdout().lock();
    use std::io::Write as _;
    if args.json {
        serde_json::to_writer_pretty(&mut out, &tuned)?;
        writeln!(out)?;
    } else {
        write!(out, "{tuned}")?;
    }
    out.flush()?;
    if let Some(path) = &args.report {
        crate::output::write_report(
            path,
            &crate::tune_out::html(&tuned, &crate::output::config_text(&settings)),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What the output is made of.
pub struct TunedFrom<'a> {
    pub db: &'a DatabaseSettings,
    pub workloads: &'a [Workload],
    pub page_size: u64,
    pub file_bytes: u64,
    pub threads: usize,
    pub budget: Duration,
    pub elapsed: Duration,
    pub points: Vec<Point>,
    pub dims: Vec<Dimension>,
    pub confirm: Vec<Confirmation>,
    pub configured: PragmaSet,
    pub leader: PragmaSet,
}

/// The durability every run was measured at, as configured.
pub fn durability_text(db: &DatabaseSettings) -> (String, String) {
    let sync = db.profile.pragmas().synchronous.map_or_else(
        || "SQLite's default (full; not set by the profile)".to_owned(),
        |s| s.to_string(),
    );
    let d = match db.durability {
        Durability::Strict => "strict",
        _ => "normal",
    };
    (sync, d.to_owned())
}
