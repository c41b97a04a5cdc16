//! `litepool tune`'s search: one run of a candidate on fresh private copies, the time each run
//! gets, the cache and readers searches guided by the counters, the refinement around the best
//! and the interleaved confirmation.

use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use litepool::pragma::{ByteSize, CacheSize, MmapSize};
use litepool::Profile;

use crate::tune_out::{Cand, Confirmation, Point};
use crate::userbench::{Layout, Mode, Session};

/// SQLite's default page cache, 2000 KiB: where the cache search starts.
pub const DEFAULT_CACHE: u64 = 2000 * 1024;
/// Runs of the configured profile, the leader and the runner-up at the end, each.
pub const REPEATS: usize = 3;
/// Below this a run measures its own start, not the workload: the search stops.
const MIN_RUN: Duration = Duration::from_millis(100);
/// Share of each run that warms the cache and is not counted.
const WARM: f64 = 0.3;
/// A cache step must cut misses per operation by this share, and by [`MISS_FLOOR`], to count.
const MISS_FALL: f64 = 0.10;
const MISS_FLOOR: f64 = 0.01;
/// The hit ratio at which a cache that misses no less than the next step holds the working set.
const HELD: f64 = 0.95;

/// The search's state: the session, the clock and what was measured.
pub struct Tuner<'a> {
    pub session: Session<'a>,
    /// A split database: every run has its writer and readers.
    pub split: bool,
    pub threads: usize,
    pub seed: u64,
    pub deadline: Instant,
    /// Wall time each run took beyond its measured seconds (copies, pools), a running average.
    pub overhead: Duration,
    pub points: Vec<Point>,
    pub bar: ProgressBar,
    pub database: String,
    pub configured: Cand,
    /// Exploring runs planned: each run gets an equal share of the time left over the runs
    /// still planned and the confirmation.
    pub plan: usize,
    /// Exploring runs done.
    pub explored: usize,
    /// A value is adopted only when it beats the best so far by this factor.
    pub margin: f64,
    /// What `limits.memory_budget` leaves for this database's connections, if set.
    pub budget_left: Option<u64>,
    /// The database's connections as configured, its readers' among them.
    pub conns: u64,
    pub page_size: u64,
    /// Values each dimension wanted to compare, and compared (measured, or measured before),
    /// by the dimension's first word ("refine cache_size" counts as "refine").
    pub tried: std::collections::BTreeMap<String, (usize, usize)>,
    /// Keys the database's own `pragmas` set over its profile (see [`crate::tune_out::snippet`]).
    pub overridden: Vec<String>,
    /// Pages in the database file.
    pub file_pages: u64,
}

impl Tuner<'_> {
    /// An equal share of the time left for `runs_left` runs, or `None` when too little is left.
    fn slice(&self, runs_left: usize) -> Option<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let per = (left / runs_left.max(1) as u32).saturating_sub(self.overhead);
        (per >= MIN_RUN).then_some(per)
    }

    /// One run of `cand` for `run` (warm-up included).
    fn run(
        &mut self,
        dimension: &str,
        value: String,
        cand: &Cand,
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
        let profile = Profile::new(format!("{dimension}={value}"), cand.set.clone())?;
        let mode = match (self.split, cand.group_commit) {
            (false, _) => Mode::Plain,
            (true, false) => Mode::Split,
            (true, true) => Mode::Group,
        };
        let layout = Layout {
            mode,
            threads: self.threads,
            readers: cand.readers,
            background: cand.background_checkpoints,
        };
        let c = self.session.candidate(&profile, layout)?;
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
        drop(c);
        let mut point = Point::new(dimension, value, cand, row);
        for (name, p) in &stats.0 {
            point.cache_hit += p.cache.hit;
            point.cache_miss += p.cache.miss;
            point.waited += p.waited;
            point.wait_p99_seconds = point.wait_p99_seconds.max(p.wait.p99.as_secs_f64());
            if name.ends_with(".readers") {
                point.readers_waited += p.waited;
            }
        }
        let spent = t0.elapsed().saturating_sub(run);
        self.overhead = if self.points.is_empty() {
            spent
        } else {
            (self.overhead + spent) / 2
        };
        self.bar.inc(1);
        Ok(point)
    }

    /// Measures and keeps one point of the search; `None` when the time is up.
    pub fn explore(
        &mut self,
        dimension: &str,
        value: String,
        cand: &Cand,
    ) -> anyhow::Result<Option<usize>> {
        let planned = self.plan.saturating_sub(self.explored).max(1);
        let key = dimension.split(' ').next().unwrap_or(dimension).to_owned();
        self.tried.entry(key.clone()).or_default().0 += 1;
        let Some(run) = self.slice(planned + 3 * REPEATS) else {
            return Ok(None);
        };
        let p = self.run(dimension, value, cand, run)?;
        self.tried.entry(key).or_default().1 += 1;
        self.points.push(p);
        self.explored += 1;
        crate::scratch::on_interrupt(self.interrupted_text());
        Ok(Some(self.points.len() - 1))
    }

    /// The point that measured `cand` already, outside the configured profile's own runs.
    pub fn seen(&self, cand: &Cand) -> Option<usize> {
        self.points
            .iter()
            .position(|p| p.dimension != "configured" && p.cand() == *cand)
    }

    /// Measures `cand` (or takes its earlier run) and makes it the best so far when it beats
    /// `current` by more than the noise. `None` when the time is up.
    pub fn try_value(
        &mut self,
        dimension: &str,
        value: String,
        cand: &Cand,
        current: &mut usize,
    ) -> anyhow::Result<Option<bool>> {
        if !self.fits(cand) {
            // Over limits.memory_budget: neither measured nor proposed.
            return Ok(Some(false));
        }
        let p = match self.seen(cand) {
            Some(p) => {
                let key = dimension.split(' ').next().unwrap_or(dimension).to_owned();
                let t = self.tried.entry(key).or_default();
                (t.0, t.1) = (t.0 + 1, t.1 + 1);
                p
            }
            None => match self.explore(dimension, value, cand)? {
                Some(p) => p,
                None => return Ok(None),
            },
        };
        let better = self.beats(p, *current);
        if better {
            *current = p;
        }
        Ok(Some(better))
    }

    /// True when run `p` beat run `current` by more than the noise without failing more of its
    /// operations.
    pub fn beats(&self, p: usize, current: usize) -> bool {
        self.ops(p) > self.ops(current) * self.margin && !self.fails_more(p, current)
    }

    /// True when run `p` failed a larger share of its operations than run `than` (beyond a
    /// little noise): a candidate that changes what the workload's operations answer (group
    /// commit failing a batch-mate's writes along with a failing one) is no gain.
    pub fn fails_more(&self, p: usize, than: usize) -> bool {
        let share = |p: usize| {
            let r = &self.points[p].row;
            r.errors as f64 / (r.ops + r.errors).max(1) as f64
        };
        share(p) > share(than) * 1.5 + 0.005
    }

    /// Connections a run of `cand` opens: `threads` on a single pool; the writer and the
    /// readers on a split database.
    pub fn connections(&self, cand: &Cand) -> u64 {
        match (self.split, cand.readers) {
            (false, _) => self.threads as u64,
            (true, r) => 1 + u64::from(r.unwrap_or(self.threads as u32)),
        }
    }

    /// True when `cand`'s cache on every connection it would have (the configured pools, with
    /// its readers), and on every connection of its run, stays within what the memory budget
    /// leaves, or no budget is set.
    pub fn fits(&self, cand: &Cand) -> bool {
        let per = cand.set.cache_size.map_or(DEFAULT_CACHE, |c| {
            c.bytes_per_connection(self.page_size as u32)
        });
        // The proposal's connections (the configured pools, with its readers), or the run's.
        let conns = (self.conns - u64::from(self.configured.readers.unwrap_or(0))
            + u64::from(cand.readers.unwrap_or(0)))
        .max(self.connections(cand));
        self.budget_left
            .map_or(true, |b| per.saturating_mul(conns) <= b)
    }

    pub fn ops(&self, p: usize) -> f64 {
        self.points[p].row.ops_per_sec
    }

    /// `cache_size` from SQLite's default, doubling through `steps` (KiB) while misses per
    /// operation fall, then bisecting below the chosen step (up to 3 times) for the smallest size
    /// that misses no more. Every run with `mmap_size = 0`: mapped pages bypass the cache and its
    /// counters. The chosen point and why.
    pub fn search_cache(
        &mut self,
        steps: &[u64],
        from: usize,
    ) -> anyhow::Result<(Option<usize>, String)> {
        let configured = self.points[from].cand();
        let with_cache = |k: u64| {
            let mut c = configured.clone();
            c.set.cache_size = Some(CacheSize::Bytes(ByteSize(k * 1024)));
            c.set.mmap_size = "0".parse::<MmapSize>().ok();
            c
        };
        let label = |k: u64| ByteSize(k * 1024).to_string();
        // Misses per operation beyond what filling each connection's cache once explains: a
        // short run (or a busy machine) leaves caches cold after the warm-up, and those misses,
        // divided by however many operations the run got, are not the working set's.
        let (page, file_pages) = (self.page_size.max(512), self.file_pages);
        let conns = self.connections(&configured) as f64;
        let steady = |t: &Self, p: usize, kib: u64| {
            let fill = conns * (kib * 1024 / page).min(file_pages) as f64;
            let p = &t.points[p];
            (p.cache_miss as f64 - fill).max(0.0) / p.row.ops.max(1) as f64
        };
        // True when the run `less` (a larger cache) missed clearly less than `more`.
        let fell = |t: &Self, (more, mk): (usize, u64), (less, lk): (usize, u64)| {
            let (more, less) = (steady(t, more, mk), steady(t, less, lk));
            more - less >= (more * MISS_FALL).max(MISS_FLOOR)
        };
        let mut chosen: Option<(usize, u64)> = None;
        let mut prev: Option<(usize, u64)> = None;
        for &k in steps {
            let Some(p) = self.explore("cache_size", label(k), &with_cache(k))? else {
                break;
            };
            if let Some((pp, pk)) = prev {
                // Misses stopped falling, and the step before already hit (at least 95%): it
                // holds the working set. Below that, two steps both far under the working set
                // can miss alike (random reads over a large table): the doubling goes on.
                let held = self.points[pp].hit_ratio().is_some_and(|h| h >= HELD);
                if !fell(self, (pp, pk), (p, k)) && held {
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
        for _ in 0..3 {
            let Some(l) = lo.filter(|l| hi - l >= 64) else {
                break;
            };
            let mid = (l + hi) / 2;
            let Some(p) = self.explore("cache_size", label(mid), &with_cache(mid))? else {
                break;
            };
            if !fell(self, (p, mid), (cp, hi)) {
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
            format!("grown from SQLite's default (2000KiB) by doubling up to the file size, then bisected below the step chosen, measured with mmap_size = 0 so every page goes through the cache; the smallest size past which misses stopped falling (misses beyond filling each connection's cache once, per operation; hit ratio {hit})"),
        ))
    }

    /// A split database's readers, growing through `sizes` while the readers' checkouts waited
    /// (a pool that no checkout waited for cannot gain from more connections); the smallest
    /// pool within the noise of the fastest. `None`: the size in force stays.
    pub fn search_readers(
        &mut self,
        sizes: &[u32],
        current: usize,
    ) -> anyhow::Result<(Option<usize>, String)> {
        let cand = self.points[current].cand();
        let mut measured = vec![current];
        let mut stopped = None;
        for &n in sizes {
            if Some(n) == cand.readers {
                continue;
            }
            // The largest pool measured so far had no waiting checkout: larger ones only idle.
            let largest = measured
                .iter()
                .copied()
                .filter(|&p| self.points[p].readers < Some(n))
                .max_by_key(|&p| self.points[p].readers);
            if let Some(p) = largest.filter(|&p| self.points[p].readers_waited == 0) {
                stopped = self.points[p].readers;
                break;
            }
            let c = Cand {
                readers: Some(n),
                ..cand.clone()
            };
            match self.explore("readers.max_size", n.to_string(), &c)? {
                Some(p) => measured.push(p),
                None => break,
            }
        }
        let fastest = measured.iter().map(|&p| self.ops(p)).fold(0.0, f64::max);
        let pick = measured
            .iter()
            .copied()
            .filter(|&p| self.ops(p) * self.margin >= fastest)
            .filter(|&p| !self.fails_more(p, current))
            .min_by_key(|&p| self.points[p].readers);
        let why = format!(
            "readers serve concurrent reads until they wait for the CPUs ({} here) or the disk: grown from 1 while the readers' checkouts waited{}; the smallest pool within the noise of the fastest",
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            stopped.map_or(String::new(), |n| format!(
                " (no readers' checkout waited with {n}: larger pools not measured; the table's waited column counts every pool's, the writer's too)"
            )),
        );
        Ok((pick.filter(|&p| p != current), why))
    }

    /// Runs the configured profile, the leader and the runner-up [`REPEATS`] times each, in
    /// turn (a drift of the machine during the confirmation touches each alike), with equal
    /// shares of the time left.
    pub fn confirm(&mut self, leader: &Cand) -> anyhow::Result<Vec<Confirmation>> {
        let base = self.configured.clone();
        let runner_up = self
            .points
            .iter()
            .filter(|p| {
                let c = p.cand();
                c != *leader && c != base
            })
            .max_by(|a, b| a.row.ops_per_sec.total_cmp(&b.row.ops_per_sec))
            .map(Point::cand);
        let mut confirm = vec![Confirmation::new("configured", base.clone())];
        if *leader != base {
            confirm.push(Confirmation::new("tuned", leader.clone()));
        }
        confirm.extend(runner_up.map(|r| Confirmation::new("runner-up", r)));
        let mut left = confirm.len() * REPEATS;
        for _ in 0..REPEATS {
            for c in &mut confirm {
                let slice = self.slice(left).unwrap_or(MIN_RUN);
                let (name, cand) = (c.name.clone(), c.cand.clone());
                c.push(self.run(&name, String::new(), &cand, slice)?);
                left -= 1;
            }
        }
        Ok(confirm)
    }

    /// What SIGINT prints: the best point so far, unconfirmed.
    pub fn interrupted_text(&self) -> String {
        let best = self
            .points
            .iter()
            .max_by(|a, b| a.row.ops_per_sec.total_cmp(&b.row.ops_per_sec));
        best.map_or_else(String::new, |p| {
            format!(
                "# litepool tune: interrupted; best so far ({:.0} ops/s, not confirmed by repeated runs)\n{}",
                p.row.ops_per_sec,
                crate::tune_out::snippet(&self.database, &p.cand(), &self.configured, &self.overridden)
            )
        })
    }
}
