//! `litepool tune`'s arguments, the database and workloads they choose, and the values the
//! search tries.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail};
use litepool::pragma::{ByteSize, MmapSize, TempStore};
use litepool::settings::{DatabaseSettings, Workload};
use litepool::{PragmaSet, Settings};

/// `litepool tune`'s arguments.
#[derive(clap::Args)]
pub struct TuneArgs {
    #[command(flatten)]
    pub source: crate::Source,
    /// The database to tune [default: the one database the workloads (those named by
    /// --workloads, if given) run on].
    #[arg(long, value_name = "NAME")]
    pub database: Option<String>,
    /// Measure only these configured workloads, comma-separated [default: every workload on
    /// the database].
    #[arg(long, value_delimiter = ',')]
    pub workloads: Vec<String>,
    /// How long the whole run may take, 5s to 24h (e.g. 90s, 5m).
    #[arg(long, default_value = "5m", value_parser = time_budget, allow_hyphen_values = true)]
    pub time_budget: Duration,
    /// Also write a self-contained HTML report: each dimension's measured curve, the chosen
    /// point, the final comparison. Checked before anything is measured.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Threads of the mixed run, 1 to 256.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256), allow_hyphen_values = true)]
    pub threads: u16,
    /// Seed for the workloads' random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
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
pub fn choose(
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
            // The databases the workloads run on (the named ones, with --workloads).
            let used: std::collections::BTreeSet<&String> = settings
                .workloads
                .values()
                .filter(|w| args.workloads.is_empty() || args.workloads.contains(&w.name))
                .map(|w| &w.database)
                .collect();
            let mut each = used.iter();
            match (each.next(), each.next()) {
                (Some(one), None) => &settings.databases[*one],
                (None, _) if !args.workloads.is_empty() => bail!(
                    "unknown workload {:?} in --workloads: configured workloads are {}",
                    args.workloads[0],
                    names(&mut settings.workloads.keys())
                ),
                (None, _) => bail!("no workload configured: tune measures your [bench.workloads.<name>]; see docs/bench.md"),
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

/// The readers' pool sizes to try on a split database: 1 to 4 × the CPUs, and the configured.
pub fn readers_sizes(configured: Option<u32>, threads: usize) -> Vec<u32> {
    let Some(configured) = configured else {
        return Vec::new();
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let mut v = vec![1, cpus, 2 * cpus, 4 * cpus, configured];
    v.retain(|&n| n >= 1 && n as usize <= threads.max(1) * 4);
    v.sort_unstable();
    v.dedup();
    v
}

pub type Edit = Box<dyn Fn(&mut PragmaSet)>;
/// A dimension: its name, its values (each a label and an edit of the best so far), why.
pub type Search = (&'static str, Vec<(String, Edit)>, &'static str);

/// The dimensions searched one value at a time against the best so far.
pub fn options(mmap_file: MmapSize) -> anyhow::Result<[Search; 3]> {
    let zero: MmapSize = "0".parse().map_err(|e| anyhow!("{e}"))?;
    Ok([
        (
            "mmap_size",
            vec![
                ("0".into(), Box::new(move |s| s.mmap_size = Some(zero))),
                (mmap_file.to_string(), Box::new(move |s| s.mmap_size = Some(mmap_file))),
            ],
            "reads through memory-mapped I/O need no read() call per page: 0, or twice the file size rounded up to a power of two (room to grow; past the end of the file nothing is mapped); notice: an I/O error on a mapped page raises SIGBUS, which kills the process, instead of returning an error (https://sqlite.org/mmap.html)",
        ),
        (
            "temp_store",
            [TempStore::Default, TempStore::File, TempStore::Memory]
                .into_iter()
                .map(|v| (v.to_string(), Box::new(move |s: &mut PragmaSet| s.temp_store = Some(v)) as Edit))
                .collect(),
            "where sorts, temporary indexes and temporary tables live: in memory, or in temporary files (default: files, unless SQLite was built otherwise)",
        ),
        (
            "journal_size_limit",
            [4u64 << 20, 16 << 20, 64 << 20]
                .into_iter()
                .map(|v| (ByteSize(v).to_string(), Box::new(move |s: &mut PragmaSet| s.journal_size_limit = Some(ByteSize(v))) as Edit))
                .collect(),
            "the WAL or journal kept after a checkpoint is truncated to this size (disk use, not speed, on most workloads)",
        ),
    ])
}
