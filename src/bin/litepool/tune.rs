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

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use litepool::pragma::{ByteSize, CacheSize, MmapSize};
use litepool::settings::{DatabaseSettings, Durability, Workload};
use litepool::{PragmaSet, Profile};

use crate::tune_args::{choose, options, readers_sizes, TuneArgs};
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

/// The search's state: the session, the clock and what was measured.
struct Tuner<'a> {
    session: Session<'a>,
    /// `Split` on a split database: every run has its writer and readers.
    mode: Mode,
    threads: usize,
    seed: u64,
    deadline: Instant,
    /// Wall time each run took beyond its measured seconds (copies, pools), a running average.
    overhead: Duration,
    points: Vec<Point>,
    bar: ProgressBar,
    database: String,
    configured_readers: Option<u32>,
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
        (set, readers): (&PragmaSet, Option<u32>),
        run: Duration,
    ) -> anyhow::Result<Point> {
        let t0 = Instant::now();
        let what = format!("{dimension} = {value}");
        if self.bar.is_hidden() {
            // stderr is not a terminal: one line per run instead of the bar.
            let left = self.deadline.saturating_duration_since(Instant::now());
            eprintln!(
                "litepool: tune: run {}: {what} ({:.1}s; {:.0}s left)",
                self.bar.position() + 1,
                run.as_secs_f64(),
                left.as_secs_f64()
            );
        }
        self.bar.set_message(what);
        let profile = Profile::new(format!("{dimension}={value}"), set.clone())?;
        let c = self
            .session
            .candidate(&profile, self.mode, self.threads, readers)?;
        let warm = run.mul_f64(WARM);
        c.mixed(&self.session, self.threads, warm, self.seed)?;
        c.all.reset_stats();
        let row = c.mixed(
            &self.session,
            self.threads,
            run - warm,
            self.seed.wrapping_add(1),
        )?;
        let stats = c.all.stats();
        let (hit, miss) = stats
            .0
            .values()
            .fold((0, 0), |(h, m), p| (h + p.cache.hit, m + p.cache.miss));
        let waited = stats.0.values().map(|p| p.waited).sum();
        let wait_p99 = stats
            .0
            .values()
            .map(|p| p.wait.p99)
            .max()
            .unwrap_or_default();
        drop(c);
        let spent = t0.elapsed().saturating_sub(run);
        self.overhead = if self.points.is_empty() {
            spent
        } else {
            (self.overhead + spent) / 2
        };
        let mut point = Point::new(dimension, value, set.clone(), row, hit, miss);
        point.readers = readers;
        point.waited = waited;
        point.wait_p99_seconds = wait_p99.as_secs_f64();
        self.bar.inc(1);
        Ok(point)
    }

    /// Measures and keeps one point of the search; `None` when the time is up.
    fn explore(
        &mut self,
        dimension: &str,
        value: String,
        set: (&PragmaSet, Option<u32>),
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

    /// `cache_size` from SQLite's default, doubling through `steps` (KiB) while misses per
    /// operation fall, then bisecting below the chosen step (up to 3 times) for the smallest size
    /// that misses no more. Every run with `mmap_size = 0`: mapped pages bypass the cache and its
    /// counters. The chosen point and why.
    fn search_cache(
        &mut self,
        configured: &PragmaSet,
        steps: &[u64],
        exploring: usize,
    ) -> anyhow::Result<(Option<usize>, String)> {
        let readers = self.configured_readers;
        let with_cache = |k: u64| {
            let mut s = configured.clone();
            s.cache_size = Some(CacheSize::Bytes(ByteSize(k * 1024)));
            s.mmap_size = "0".parse::<MmapSize>().ok();
            s
        };
        let label = |k: u64| ByteSize(k * 1024).to_string();
        // True when the run `less` (a larger cache) missed clearly less than `more`.
        let fell = |t: &Self, more: usize, less: usize| {
            let (more, less) = (
                t.points[more].misses_per_op(),
                t.points[less].misses_per_op(),
            );
            more - less >= (more * MISS_FALL).max(MISS_FLOOR)
        };
        let mut chosen: Option<(usize, u64)> = None;
        let mut prev: Option<(usize, u64)> = None;
        for (i, &k) in steps.iter().enumerate() {
            let Some(p) = self.explore(
                "cache_size",
                label(k),
                (&with_cache(k), readers),
                exploring - i,
            )?
            else {
                break;
            };
            if let Some((pp, pk)) = prev {
                // Misses stopped falling: the step before is the working set.
                if !fell(self, pp, p) {
                    chosen = Some((pp, pk));
                    break;
                }
            }
            prev = Some((p, k));
        }
        let Some((mut cp, mut hi)) = chosen.or(prev) else {
            return Ok((None, "not measured: the time budget ran out".into()));
        };
        let mut lo = steps.iter().rev().find(|&&s| s < hi).copied();
        for round in 0..3 {
            let Some(l) = lo.filter(|l| hi - l >= 64) else {
                break;
            };
            let mid = (l + hi) / 2;
            let Some(p) = self.explore(
                "cache_size",
                label(mid),
                (&with_cache(mid), readers),
                8 - round,
            )?
            else {
                break;
            };
            if !fell(self, p, cp) {
                (cp, hi) = (p, mid);
            } else {
                lo = Some(mid);
            }
        }
        let hit = self.points[cp]
            .hit_ratio()
            .map_or("-".into(), |h| format!("{:.1}%", h * 100.0));
        Ok((
            Some(cp),
            format!("grown from SQLite's default (2000KiB) by doubling up to the file size, then bisected below the step chosen, measured with mmap_size = 0 so every page goes through the cache; the smallest size past which misses stopped falling (hit ratio {hit})"),
        ))
    }

    /// Runs the configured profile, the leader and the runner-up [`REPEATS`] times each, with
    /// equal shares of the time left.
    fn confirm(
        &mut self,
        configured: &PragmaSet,
        configured_readers: Option<u32>,
        leader: &(PragmaSet, Option<u32>),
    ) -> anyhow::Result<Vec<Confirmation>> {
        let base = (configured.clone(), configured_readers);
        let runner_up = self
            .points
            .iter()
            .filter(|p| {
                (&p.set, p.readers) != (&leader.0, leader.1)
                    && (&p.set, p.readers) != (&base.0, base.1)
            })
            .max_by(|a, b| a.row.ops_per_sec.total_cmp(&b.row.ops_per_sec))
            .map(|p| (p.set.clone(), p.readers));
        let mut contenders = vec![("configured", base.clone())];
        if *leader != base {
            contenders.push(("tuned", leader.clone()));
        }
        contenders.extend(runner_up.map(|r| ("runner-up", r)));
        let slice = self.slice(contenders.len() * REPEATS).unwrap_or(MIN_RUN);
        let mut confirm = Vec::new();
        for (name, (set, readers)) in contenders {
            let mut c = Confirmation::new(name, set.clone(), readers);
            for _ in 0..REPEATS {
                c.push(self.run(name, String::new(), (&set, readers), slice)?);
            }
            confirm.push(c);
        }
        Ok(confirm)
    }

    /// The `[databases.<name>.readers]` table a point needs, when it changes the readers.
    fn readers_key(&self, p: &Point) -> Option<(String, u32)> {
        p.readers
            .filter(|r| Some(*r) != self.configured_readers)
            .map(|r| (self.database.clone(), r))
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
                crate::tune_out::snippet(&p.set, self.readers_key(p).as_ref())
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
    let configured_readers = db.split.as_ref().map(|s| s.readers.max_size);
    let mut t = Tuner {
        session,
        mode: if db.split.is_some() {
            Mode::Split
        } else {
            Mode::Plain
        },
        threads: usize::from(args.threads),
        seed: args.seed,
        deadline,
        overhead: Duration::ZERO,
        points: Vec::new(),
        bar,
        database: db.name.clone(),
        configured_readers,
    };
    // Steps of the cache search, in KiB: SQLite's default doubling up to the file, under the cap.
    let mut steps = Vec::new();
    let mut v = DEFAULT_CACHE / 1024;
    while v * 1024 < file_bytes {
        steps.push(v);
        v *= 2;
    }
    steps.push(file_bytes.div_ceil(1024).max(DEFAULT_CACHE / 1024));
    if let Some(cap) = cap {
        steps.retain(|s| s * 1024 <= cap);
        if steps.is_empty() && cap >= 1024 {
            steps.push(cap / 1024);
        }
    }
    let readers_sizes = readers_sizes(configured_readers, t.threads);
    let exploring = steps.len() + 3 + 5 + readers_sizes.len();
    let base = t.explore(
        "configured",
        db.profile.name().to_owned(),
        (&configured, configured_readers),
        exploring,
    )?;
    let Some(base) = base else {
        bail!(
            "--time-budget {} leaves no time to measure even the configured profile",
            humantime::format_duration(args.time_budget)
        );
    };
    // The noise: the configured profile once more. A value is adopted only if it beats the
    // best so far by more than this (at least 2%); the confirmation decides in the end.
    let again = t.explore(
        "configured",
        db.profile.name().to_owned(),
        (&configured, configured_readers),
        exploring,
    )?;
    let noise = again.map_or(0.0, |a| {
        let (x, y) = (t.points[base].row.ops_per_sec, t.points[a].row.ops_per_sec);
        (x - y).abs() / x.max(y).max(f64::MIN_POSITIVE)
    });
    let margin = 1.0 + noise.max(0.02);
    let mut dims = Vec::new();
    let (chosen, reason) = t.search_cache(&configured, &steps, exploring)?;
    let reason = match (steps.len(), chosen) {
        (1, Some(_)) => format!("the file ({}) fits in the first step, SQLite's default or the budget's cap; grown no further", litepool::budget::human(file_bytes)),
        (_, Some(_)) => format!(
            "{reason}{}",
            cap.map_or(String::new(), |c| format!("; at most {} per connection ({conns} connections under limits.memory_budget)", litepool::budget::human(c)))
        ),
        _ => reason,
    };
    dims.push(Dimension::new("cache_size", reason, chosen));
    let mut current = chosen.unwrap_or(base);
    // mmap_size = 0 was how the cache was measured, not a proposal: the mmap dimension starts
    // from the configured mmap_size, with the chosen cache.
    let configured_mmap = configured.mmap_size.map_or(0, MmapSize::bytes);
    if chosen.is_some() && configured_mmap == 0 {
        // The same as SQLite's default: proposed as configured (unset stays unset).
        t.points[current].set.mmap_size = configured.mmap_size;
    } else if chosen.is_some() {
        let mut set = t.points[current].set.clone();
        set.mmap_size = configured.mmap_size;
        let readers = t.points[current].readers;
        let label = configured
            .mmap_size
            .map_or_else(String::new, |m| m.to_string());
        if let Some(p) = t.explore("mmap_size", label, (&set, readers), 4 + readers_sizes.len())? {
            // The configured value stays unless mmap_size = 0 beat it by more than the noise.
            if t.points[current].row.ops_per_sec <= t.points[p].row.ops_per_sec * margin {
                current = p;
            }
        }
    }
    let mmap_file: MmapSize = format!("{}MiB", file_bytes.div_ceil(1 << 20).clamp(1, 2047))
        .parse()
        .map_err(|e| anyhow!("{e}"))?;
    for (round, (name, values, why)) in options(mmap_file)?.into_iter().enumerate() {
        let from = t.points[current].set.clone();
        let mut best = None;
        for (label, edit) in values {
            let mut set = from.clone();
            edit(&mut set);
            let readers = t.points[current].readers;
            let mmap = |s: &PragmaSet| s.mmap_size.map_or(0, MmapSize::bytes);
            if set == from || (name == "mmap_size" && mmap(&set) == mmap(&from)) {
                continue;
            }
            // Measured already (mmap_size = 0 in the cache search): compared, not run again.
            let seen = t
                .points
                .iter()
                .position(|p| p.set == set && p.readers == readers && p.dimension != "configured");
            let measured = match seen {
                Some(p) => Some(p),
                None => t.explore(
                    name,
                    label,
                    (&set, readers),
                    3 + readers_sizes.len() - round,
                )?,
            };
            let Some(p) = measured else { break };
            if t.points[p].row.ops_per_sec > t.points[current].row.ops_per_sec * margin {
                best = Some(p);
                current = p;
            }
        }
        let why = format!(
            "{why}; a value is kept only when it beats the best so far by more than the noise ({:.1}%, two runs of the configured profile)",
            (margin - 1.0) * 100.0
        );
        dims.push(Dimension::new(name, why, best));
    }
    if configured_readers.is_some() {
        // The readers' pool of a split database: its cache times its size stays in the budget.
        let per_conn = t.points[current]
            .set
            .cache_size
            .map_or(DEFAULT_CACHE, |c| c.bytes_per_connection(page_size as u32));
        let budget_readers = settings.memory_budget.map(|b| {
            let rest = litepool::budget::Budget::without_files(&others).worst_case;
            (b.bytes().saturating_sub(rest) / per_conn.max(1)).saturating_sub(1)
        });
        let set = t.points[current].set.clone();
        let mut measured: Vec<usize> = vec![current];
        for (i, &n) in readers_sizes.iter().enumerate() {
            if Some(n) == t.points[current].readers
                || budget_readers.is_some_and(|b| u64::from(n) > b)
            {
                continue;
            }
            match t.explore(
                "readers.max_size",
                n.to_string(),
                (&set, Some(n)),
                readers_sizes.len() - i,
            )? {
                Some(p) => measured.push(p),
                None => break,
            }
        }
        // The smallest pool within the noise of the fastest: more readers than that only wait.
        let fastest = measured
            .iter()
            .map(|&p| t.points[p].row.ops_per_sec)
            .fold(0.0, f64::max);
        let pick = measured
            .iter()
            .copied()
            .filter(|&p| t.points[p].row.ops_per_sec * margin >= fastest)
            .min_by_key(|&p| t.points[p].readers);
        let best = pick.filter(|&p| p != current);
        if let Some(p) = best {
            current = p;
        }
        dims.push(Dimension::new(
            "readers.max_size",
            format!(
                "readers serve concurrent reads until they wait for the CPUs ({} here) or the disk; the smallest pool within the noise of the fastest, guided by checkout waits (the table's waited column){}",
                std::thread::available_parallelism().map_or(1, |n| n.get()),
                if budget_readers.is_some() { "; never over limits.memory_budget with the chosen cache_size" } else { "" }
            ),
            best,
        ));
    }
    let leader = (t.points[current].set.clone(), t.points[current].readers);
    let confirm = t.confirm(&configured, configured_readers, &leader)?;
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
        configured_readers,
        leader,
    });
    // The report first: it keeps the results even when standard output is gone (a closed pipe).
    if let Some(path) = &args.report {
        crate::output::write_report(
            path,
            &crate::tune_out::html(&tuned, &crate::output::config_text(&settings)),
        )?;
    }
    let mut out = std::io::stdout().lock();
    use std::io::Write as _;
    let printed = if args.json {
        serde_json::to_writer_pretty(&mut out, &tuned)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        write!(out, "{tuned}")
    }
    .and_then(|()| out.flush());
    match printed {
        // Nobody reads the output any more (`| head`): the work is done and the copies are
        // removed; that is no error of the run.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        other => other.map(|()| ExitCode::SUCCESS).map_err(Into::into),
    }
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
    pub configured_readers: Option<u32>,
    pub leader: (PragmaSet, Option<u32>),
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
