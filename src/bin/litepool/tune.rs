//! `litepool tune`: starting from a database's configured profile, measures candidate profiles
//! with the configured workloads on private copies (the `bench` runner: [`Session`]), and
//! proposes the best one as a `[profiles.tuned]` snippet, confirmed by repeated runs.
//!
//! The search ([`Tuner`]), coarse first, one dimension after another from the best so far:
//! 1. With writes: on a split database, group commit; in WAL mode (not replicated), background
//!    checkpoints (one run each, first: on a workload that writes, the largest effect).
//! 2. `cache_size`, from SQLite's default doubling up to the file size (and never over the memory
//!    budget), measured with `mmap_size = 0` so that every page goes through the cache; it stops
//!    growing when misses per operation stop falling, then bisects below.
//! 3. `mmap_size`: 0 or twice the file size. 4. `temp_store`. 5. `journal_size_limit`.
//! 6. On a split database: the readers' `max_size`, grown while checkouts wait.
//!
//! Then it refines around the best: each change measured without it (what it contributes), and
//! the values next to the ones chosen, while the planned runs last. `synchronous`,
//! `journal_mode` and the database's `durability` are never candidates: they are the user's
//! decision, and every run is measured at the configured ones. Each run gets an equal share of
//! the time left over the runs still planned (about one per [`RUN`] of the budget); its first
//! 30% warms the cache and is not counted. A difference inside the spread of repeated runs is
//! never called a win.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use litepool::pragma::{JournalMode, MmapSize};
use litepool::settings::{DatabaseSettings, Durability, Replication, Workload};
use litepool::PragmaSet;

use crate::tune_args::{options, readers_sizes, TuneArgs};
use crate::tune_out::{Cand, Confirmation, Dimension, Point, Tuned};
use crate::tune_search::{Tuner, DEFAULT_CACHE, REPEATS};
use crate::userbench::Session;

/// About one exploring run per this much of the budget (between [`PLAN`]'s bounds).
const RUN: Duration = Duration::from_secs(6);
/// The least noise assumed: two runs of one profile often differ by less than later runs will.
const MIN_NOISE: f64 = 0.05;
/// Fewest and most exploring runs planned.
const PLAN: (usize, usize) = (6, 60);

/// `litepool tune`.
pub fn run(args: TuneArgs) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    if let Some(path) = &args.report {
        crate::output::check_report_path(path)?;
    }
    let settings = crate::replica_env::without_replicas(&args.source.load()?, "tune")?;
    if let Some(path) = &args.report {
        crate::output::refuse_user_files(path, &settings)?;
    }
    crate::prep::preflight_copies(&settings)?;
    let (db, workloads) = crate::tune_args::choose(&settings, &args)?;
    let session = Session::new(&settings, &workloads)?.with_durability(&settings);
    let copy = session
        .copy_of(&db.name)
        .ok_or_else(|| anyhow!("no copy of {:?}", db.name))?;
    let file_bytes = std::fs::metadata(copy)?.len();
    let (page_size, file_mode): (i64, String) = {
        let c = rusqlite::Connection::open(copy)?;
        (
            c.query_row("PRAGMA page_size", [], |r| r.get(0))?,
            c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
        )
    };
    let page_size = page_size as u64;
    let writes = session.writes(&db.name);
    let configured = Cand {
        set: db.profile.pragmas().clone(),
        readers: db.split.as_ref().map(|s| s.readers.max_size),
        group_commit: false,
        background_checkpoints: db.background_checkpoints(),
    };
    let wal = match configured.set.journal_mode {
        Some(m) => m == JournalMode::Wal,
        None => file_mode.eq_ignore_ascii_case("wal"),
    };
    let conns: u64 = db.pools().iter().map(|p| u64::from(p.pool.max_size)).sum();
    // The budget left for this database's pools: the others keep what they have.
    let mut others = settings.clone();
    others.databases.remove(&db.name);
    let rest = litepool::budget::Budget::without_files(&others).worst_case;
    // The runs open `--threads` connections (a split: the writer and the readers), the proposal
    // the configured pools': the budget holds for both.
    let run_conns = match &db.split {
        Some(split) => 1 + u64::from(split.readers.max_size),
        None => u64::from(args.threads),
    };
    let cap = settings
        .memory_budget
        .map(|b| b.bytes().saturating_sub(rest) / conns.max(run_conns).max(1));
    let bar = ProgressBar::new(0).with_style(ProgressStyle::with_template(
        "tune: {msg:40} {pos} runs {elapsed}/{prefix}",
    )?);
    bar.set_prefix(humantime::format_duration(args.time_budget).to_string());
    // The output, a report and removing the copies take a moment: the runs end a little early.
    let usable = args.time_budget.mul_f64(0.92);
    let plan = ((usable.as_secs_f64() / RUN.as_secs_f64()) as usize)
        .saturating_sub(3 * REPEATS)
        .clamp(PLAN.0, PLAN.1);
    let mut t = Tuner {
        session,
        split: db.split.is_some(),
        threads: usize::from(args.threads),
        seed: args.seed,
        deadline: start + usable,
        overhead: Duration::ZERO,
        points: Vec::new(),
        bar,
        database: db.name.clone(),
        configured: configured.clone(),
        plan,
        explored: 0,
        margin: 1.02,
        budget_left: settings
            .memory_budget
            .map(|b| b.bytes().saturating_sub(rest)),
        conns,
        page_size,
        file_pages: file_bytes / page_size.max(512),
        tried: Default::default(),
        overridden: overridden(&settings, &db),
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
    let name = db.profile.name().to_owned();
    let Some(base) = t.explore("configured", name.clone(), &configured)? else {
        bail!(
            "--time-budget {} leaves no time to measure even the configured profile",
            humantime::format_duration(args.time_budget)
        );
    };
    // A workload that fails every time measures nothing: said, not searched.
    let row = &t.points[base].row;
    if row.ops == 0 && row.errors > 0 {
        bail!(
            "every operation of the configured profile's run of workloads {} failed ({} errors), so there is nothing to measure: {}",
            workloads.iter().map(|w| w.name.as_str()).collect::<Vec<_>>().join(", "),
            row.errors,
            row.first_error.as_deref().unwrap_or("no message")
        );
    }
    // The noise: the configured profile once more. A value is adopted only if it beats the
    // best so far by more than this (at least 5%); the confirmation decides in the end.
    let again = t.explore("configured", name, &configured)?;
    let noise = again.map_or(0.0, |a| {
        let (x, y) = (t.ops(base), t.ops(a));
        (x - y).abs() / x.max(y).max(f64::MIN_POSITIVE)
    });
    t.margin = 1.0 + noise.max(MIN_NOISE);
    let noise_text = match again {
        Some(_) => format!(
            "a value is kept only when it beats the best so far by more than the noise ({:.1}%: two runs of the configured profile, at least {:.0}%)",
            (t.margin - 1.0) * 100.0,
            MIN_NOISE * 100.0
        ),
        None => format!(
            "a value is kept only when it beats the best so far by more than {:.0}% (the noise was not measured: the time budget allowed one run of the configured profile)",
            MIN_NOISE * 100.0
        ),
    };
    let mut dims = Vec::new();
    let mut current = base;
    // The write path first: one run each, and on a workload that writes the largest effect.
    if writes && t.split {
        let c = Cand {
            group_commit: true,
            ..t.points[current].cand()
        };
        let best = t
            .try_value("writes", "group commit".into(), &c, &mut current)?
            .filter(|b| *b)
            .map(|_| current);
        dims.push(Dimension::new("writes", format!("group commit runs the writes of many callers in one transaction on the writer (one commit, and at synchronous = full one fsync, for the batch) instead of a transaction each; it needs your code to write through Handle::write or write_async; {noise_text}"), best));
    }
    if writes && wal && db.replication == Replication::None {
        let c = Cand {
            background_checkpoints: !configured.background_checkpoints,
            ..t.points[current].cand()
        };
        let value = if c.background_checkpoints {
            "background"
        } else {
            "sqlite"
        };
        let best = t
            .try_value("checkpoint", value.into(), &c, &mut current)?
            .filter(|b| *b)
            .map(|_| current);
        dims.push(Dimension::new("checkpoint", format!("checkpoint = \"background\": a thread of litepool's checkpoints the WAL (PASSIVE, past checkpoint_wal_size) off the committing callers' path; \"sqlite\": the connection whose commit crosses wal_autocheckpoint does it; {noise_text}"), best));
    }
    // litepool's `recommended` values of the searched keys, when the configuration has that
    // profile: the proposal is then never slower than them beyond the noise. Only those keys:
    // the profile's others (foreign_keys, busy_timeout, …) are the application's semantics.
    if let Some(rec) = settings
        .profiles
        .get("recommended")
        .filter(|_| db.profile.name() != "recommended")
    {
        let r = rec.pragmas();
        let mut c = t.points[current].cand();
        c.set.cache_size = r.cache_size;
        c.set.mmap_size = r.mmap_size;
        c.set.temp_store = r.temp_store;
        c.set.journal_size_limit = r.journal_size_limit;
        if c != t.points[current].cand() && t.fits(&c) {
            let best = t
                .try_value(
                    "recommended",
                    "cache, mmap, temp_store, journal_size_limit".into(),
                    &c,
                    &mut current,
                )?
                .filter(|b| *b)
                .map(|_| current);
            dims.push(Dimension::new("recommended", format!("the `recommended` profile's cache_size, mmap_size, temp_store and journal_size_limit (its other keys are your application's: not taken); {noise_text}"), best));
        }
    }
    // The mmap_size in force before the cache search (which measures with mmap_size = 0).
    let mmap_before = t.points[current].set.mmap_size;
    let in_force = t.points[current]
        .set
        .cache_size
        .map_or(DEFAULT_CACHE, |c| c.bytes_per_connection(page_size as u32));
    // A cache in force that holds the whole file (within the budget) is never grown: a larger
    // one holds nothing more. Only smaller sizes are searched, for the smallest that misses no
    // more (memory, not speed); there may be none.
    if in_force >= file_bytes && cap.map_or(true, |c| in_force <= c) {
        steps.retain(|k| k * 1024 < in_force);
    }
    let (chosen, reason) = if steps.is_empty() {
        (
            None,
            format!(
                "not measured: the cache_size in force ({}) already holds the whole file ({}), and no smaller step to try",
                litepool::budget::human(in_force),
                litepool::budget::human(file_bytes)
            ),
        )
    } else {
        t.search_cache(&steps, current)?
    };
    let reason = match (steps.len(), chosen) {
        (_, None) => reason,
        (1, Some(_)) => format!("the file ({}) fits in the first step, SQLite's default or the budget's cap; grown no further", litepool::budget::human(file_bytes)),
        (_, Some(_)) => format!(
            "{reason}{}",
            cap.map_or(String::new(), |c| format!("; at most {} per connection ({} connections under limits.memory_budget: the configured pools' or the runs', the more)", litepool::budget::human(c), conns.max(run_conns)))
        ),
    };
    dims.push(Dimension::new("cache_size", reason, chosen));
    current = chosen.unwrap_or(current);
    // mmap_size = 0 was how the cache was measured, not a proposal: the mmap dimension starts
    // from the mmap_size in force before it, with the chosen cache.
    if chosen.is_some() && mmap_before.map_or(0, MmapSize::bytes) == 0 {
        // The same as SQLite's default: proposed as it was (unset stays unset).
        t.points[current].set.mmap_size = mmap_before;
    } else if chosen.is_some() {
        let mut c = t.points[current].cand();
        c.set.mmap_size = mmap_before;
        let label = mmap_before.map_or_else(String::new, |m| m.to_string());
        let measured = if t.fits(&c) {
            t.explore("mmap_size", label, &c)?
        } else {
            None
        };
        if let Some(p) = measured {
            // The value in force stays unless mmap_size = 0 beat it by more than the noise.
            if t.ops(current) <= t.ops(p) * t.margin && !t.fails_more(p, current) {
                current = p;
            }
        }
    }
    // Twice the file, rounded up to a power of two: room to grow (past the file's end nothing
    // is mapped, so a larger size costs nothing now).
    let mmap_file = mmap_of(file_bytes.saturating_mul(2).next_power_of_two())?;
    for (name, values, why) in options(mmap_file)? {
        let from = t.points[current].cand();
        let mut best = None;
        for (label, edit) in values {
            let mut c = from.clone();
            edit(&mut c.set);
            let mmap = |s: &PragmaSet| s.mmap_size.map_or(0, MmapSize::bytes);
            if c == from || (name == "mmap_size" && mmap(&c.set) == mmap(&from.set)) {
                continue;
            }
            match t.try_value(name, label, &c, &mut current)? {
                None => break,
                Some(true) => best = Some(current),
                Some(false) => {}
            }
        }
        dims.push(Dimension::new(name, format!("{why}; {noise_text}"), best));
    }
    if configured.readers.is_some() {
        let (best, why) = readers(&mut t, &settings, &others, current, page_size)?;
        dims.push(Dimension::new("readers.max_size", why, best).from(current));
        current = best.unwrap_or(current);
    }
    let refine = crate::tune_refine::refine(&mut t, &mut current, (mmap_file, cap, page_size))?;
    dims.push(refine);
    crate::tune_refine::contributions(&t, &mut dims, current);
    crate::tune_refine::unmeasured(&t, &mut dims);
    let leader = t.points[current].cand();
    let confirm = t.confirm(&leader)?;
    let overridden = std::mem::take(&mut t.overridden);
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
        overridden: &overridden,
    });
    // The report first: it keeps the results even when standard output is gone (a closed pipe).
    if let Some(path) = &args.report {
        crate::output::write_report(
            path,
            &crate::tune_report::html(&tuned, &crate::output::config_text(&settings)),
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

/// `bytes` as an `mmap_size`, rounded up to whole MiB (1MiB to 2047MiB).
pub fn mmap_of(bytes: u64) -> anyhow::Result<MmapSize> {
    format!("{}MiB", bytes.div_ceil(1 << 20).clamp(1, 2047))
        .parse()
        .map_err(|e| anyhow!("{e}"))
}

/// The readers' pool of a split database: its cache times its size stays in the budget.
fn readers(
    t: &mut Tuner<'_>,
    settings: &litepool::Settings,
    others: &litepool::Settings,
    current: usize,
    page_size: u64,
) -> anyhow::Result<(Option<usize>, String)> {
    let per_conn = t.points[current]
        .set
        .cache_size
        .map_or(DEFAULT_CACHE, |c| c.bytes_per_connection(page_size as u32));
    let budget_readers = settings.memory_budget.map(|b| {
        let rest = litepool::budget::Budget::without_files(others).worst_case;
        // One connection of the budget is the writer's.
        (b.bytes().saturating_sub(rest) / per_conn.max(1)).saturating_sub(1)
    });
    let mut sizes = readers_sizes(t.configured.readers, t.threads);
    sizes.retain(|&n| budget_readers.map_or(true, |b| u64::from(n) <= b));
    let (best, why) = t.search_readers(&sizes, current)?;
    let why = if budget_readers.is_some() {
        format!("{why}; never over limits.memory_budget with the chosen cache_size")
    } else {
        why
    };
    Ok((best, why))
}

/// The keys a database's own `pragmas` (or its role's) set over its named profile: a pasted
/// profile does not change them.
fn overridden(settings: &litepool::Settings, db: &DatabaseSettings) -> Vec<String> {
    let keys = |set: &PragmaSet| match serde_json::to_value(set) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => Default::default(),
    };
    let Some(named) = settings.profiles.get(db.profile.name()) else {
        return Vec::new();
    };
    let (named, merged) = (keys(named.pragmas()), keys(db.profile.pragmas()));
    merged
        .iter()
        .filter(|(k, v)| !v.is_null() && named.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect()
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
    pub configured: Cand,
    pub leader: Cand,
    /// Keys the database's own `pragmas` set over its profile.
    pub overridden: &'a [String],
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
