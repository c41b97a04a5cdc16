//! The `litepool` command line: parses arguments, calls the library, prints.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use litepool::check::{check_with, CheckOptions};
use litepool::settings::LitestreamVersion;
use litepool::{Pools, Settings};

mod bench;
mod bench_text;
#[cfg(unix)]
mod client;
mod datagen;
mod litestream;
mod measure;
mod output;
mod prep;
mod render;
mod replica_env;
mod report;
mod scratch;
mod tune;
mod tune_args;
mod tune_chart;
mod tune_out;
mod tune_refine;
mod tune_report;
mod tune_search;
mod userbench;
mod workload;

/// Verified SQLite pragma profiles for r2d2 pools.
#[derive(Parser)]
#[command(
    name = "litepool",
    version,
    about,
    after_help = "Exit status, for every command:\n  \
      0    success (check: every pragma verified)\n  \
      1    a setting is not in force: a pragma did not take effect, or (check) an existing\n       \
      file stores a setting differently, left as it is (check --strict: also a lint warning);\n       \
      reload: the application refused the reload (its configuration in force is unchanged)\n  \
      2    bad arguments, configuration or database file, or (check --apply) a database another\n       \
      connection holds (nothing was changed)\n  \
      130  interrupted by SIGINT, 143 by SIGTERM (scratch copies removed)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build every pool, check out all connections at once and read every pragma back.
    ///
    /// It verifies the configuration on fresh connections of its own, not what a running
    /// application has in force (that application's own statistics show that). On an existing
    /// file, a journal_mode the file stores differently is reported ("would change wal ->
    /// delete") and left as it is, unless --apply.
    ///
    /// Exit status: 0 all verified, 1 something is not in force (a pragma did not take effect,
    /// a file setting left as it is, or a lint warning with --strict), 2 configuration or file
    /// error (with --apply: another connection holds the database; nothing was changed).
    Check {
        #[command(flatten)]
        source: Source,
        /// Switch an existing file's journal_mode to the configured one, under an exclusive
        /// lock; refused, nothing changed, while another connection holds the database.
        #[arg(long)]
        apply: bool,
        /// Print one JSON document instead of tables.
        #[arg(long)]
        json: bool,
        /// Exit 1 when the lint finds a warning (unsafe or surprising setting).
        #[arg(long)]
        strict: bool,
    },
    /// Measure your own queries ([bench.workloads.<name>]) under each profile, on private copies
    /// of your databases: each workload alone on one thread, then all of them as a weighted mix.
    /// ops/s, p50/p99/max latency and errors, with the ratio to the first profile. The originals
    /// are never written. litepool's demo workloads run only with --builtin (or when no workload
    /// is configured and the copies hold the demo schema).
    Bench {
        #[command(flatten)]
        source: Source,
        /// Profiles to compare, comma-separated; append +split to run one with a writer and
        /// readers, +group for a writer and readers with group commit (your own workloads)
        /// [default: sqlite_defaults, original_as_run, original_intent, recommended — those
        /// that exist]
        #[arg(long, value_delimiter = ',')]
        profiles: Vec<String>,
        /// Seconds each run (workload × profile) lasts: a statement still running then is
        /// interrupted and counted as interrupted, not as an error.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Multiply the row counts of generated data (for databases that do not exist), 1 to 1000.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
        scale: u32,
        /// Seed for generated data and the workloads' random choices.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print one JSON document instead of a table.
        #[arg(long)]
        json: bool,
        /// Run only these configured workloads, comma-separated.
        #[arg(long, value_delimiter = ',')]
        workloads: Vec<String>,
        /// Threads of the mixed run, 1 to 256.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: u16,
        /// Run litepool's demo workloads (prod_customer_data, jobs, audit) on copies of those
        /// databases, generating the demo tables the copies lack.
        #[arg(long, conflicts_with = "workloads")]
        builtin: bool,
        /// Also write a self-contained HTML report (charts, table, command, configuration),
        /// after the results are printed. Its directory must exist and be writable; the file is
        /// replaced (a symbolic link too, never written through).
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
    },
    /// Search for a faster profile for one database: measure candidates (cache_size, mmap_size,
    /// temp_store, journal_size_limit) with your workloads on private copies, within
    /// --time-budget, and print the best as a [profiles.tuned] snippet with its measured ratio to
    /// the configured profile. Never changes synchronous or durability. See docs/bench.md.
    Tune(tune_args::TuneArgs),
    /// Fill the configured demo databases (prod_customer_data, jobs, audit) with litepool's demo
    /// data, to try `litepool bench --env demo` on. Only new or empty files are filled.
    DemoData {
        #[command(flatten)]
        source: Source,
        /// Multiply the row counts, 1 to 1000.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
        scale: u32,
        /// Seed of the generated data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Print a litestream.yml for the databases with replication = "litestream" (Litestream
    /// 0.5) or "litestream-0.3".
    ///
    /// One replica per database, in a subdirectory (or URL path) named after it; absolute
    /// paths. Check it with `litestream databases -config FILE`.
    Litestream {
        #[command(flatten)]
        source: Source,
        /// Where the replicas go: a directory, or a URL without a query or fragment (0.5: s3://,
        /// gs://, abs://, sftp://, file://, webdav://, webdavs://, oss://; 0.3: s3://, gcs://,
        /// abs://, sftp://, file://).
        #[arg(long, value_name = "URL|PATH")]
        replica: String,
        /// The Litestream release to write for, 0.5 or 0.3 [default: the release the databases
        /// are marked for: replication = "litestream" is 0.5, "litestream-0.3" is 0.3]. A
        /// database marked for the other release is refused.
        #[arg(long, value_name = "VERSION")]
        format: Option<LitestreamVersion>,
        /// How often Litestream copies new WAL frames to the replica (10ms to 1h).
        #[arg(long, default_value = "1s", value_parser = litestream::sync_interval)]
        sync_interval: Duration,
    },
    /// Build the pools, optionally run a short read/write workload, and print pool statistics.
    ///
    /// The workload runs on private copies of the databases (0600 files in a 0700 temporary
    /// directory, removed at the end and on SIGINT/SIGTERM): it never writes to your files, and
    /// the statistics printed are those of the pools on the copies.
    Stats {
        #[command(flatten)]
        source: Source,
        /// Print one JSON document instead of a table (the same as --format json).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// Output format: text, json, or prometheus (the text exposition format, for a node
        /// exporter's textfile collector).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Run the built-in workload (80% point reads, 20% updates) for this many seconds.
        #[arg(long, value_name = "SECONDS")]
        workload: Option<f64>,
        /// Threads for the workload, 1 to 256.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: u16,
        /// Ask a running application, through its admin socket, instead of building pools.
        #[arg(long, value_name = "PATH", conflicts_with = "workload")]
        socket: Option<PathBuf>,
        /// With --socket: redraw the pool table every INTERVAL (100ms to 1h, default 2s), with
        /// rates per second, until interrupted.
        #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "2s",
              requires = "socket", value_parser = client::interval)]
        watch: Option<Duration>,
    },
    /// Ask a running application, through its admin socket, to reload its configuration; prints
    /// what changed (key: old -> new). Exit status 1 when the application refused the reload
    /// (it keeps the configuration in force), 2 when the socket cannot be reached.
    Reload {
        /// The application's admin socket.
        #[arg(long, value_name = "PATH")]
        socket: PathBuf,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
    Prometheus,
}

#[derive(Args)]
struct Source {
    /// Configuration directory [default: $LITEPOOL_CONFIG_DIR, else config]
    #[arg(long, value_name = "DIR")]
    config: Option<PathBuf>,
    /// Environment name [default: $LITEPOOL_ENV, else development]
    #[arg(long, value_name = "NAME")]
    env: Option<String>,
}

impl Source {
    fn load(&self) -> litepool::Result<Settings> {
        let mut loader = Settings::loader();
        if let Some(dir) = &self.config {
            loader = loader.dir(dir);
        }
        if let Some(env) = &self.env {
            loader = loader.env(env);
        }
        loader.load()
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("litepool: {}", output::causes(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The exit status of a failed command (the table in `--help` and the README): 1 when a profile
/// did not take effect, 2 for everything else (arguments, configuration, files, connections).
fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<litepool::Error>() {
        Some(e) if e.is_mismatch() => 1,
        _ => 2,
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Reload { socket } => client::reload(&socket),
        Command::Tune(args) => tune::run(args),
        Command::Check {
            source,
            apply,
            json,
            strict,
        } => {
            let settings = source.load()?;
            replica_env::ensure(&settings)?;
            let options = CheckOptions::default().apply(apply);
            let report = check_with(&settings, options, &mut |step| {
                eprintln!("litepool: {step}")
            })?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{}", render::Text(&report))?;
            }
            Ok(ExitCode::from(report.exit_code(strict)))
        }
        Command::DemoData {
            source,
            scale,
            seed,
        } => {
            let settings = source.load()?;
            let demo: Vec<_> = settings
                .databases
                .values()
                // A read replica's data is its primary's: never generated here.
                .filter(|db| db.replica.is_none())
                .filter_map(|db| datagen::Dataset::of(&db.name).map(|d| (db, d)))
                .collect();
            if demo.is_empty() {
                anyhow::bail!("no demo database configured: demo-data fills databases named prod_customer_data, jobs or audit");
            }
            // Nothing is lost: a file that holds anything is refused before any is written.
            for (db, _) in &demo {
                if std::fs::metadata(&db.path).is_ok_and(|m| m.len() > 0) {
                    anyhow::bail!(
                        "database {:?}: {} exists and is not empty; demo-data only fills new or empty files",
                        db.name,
                        db.path.display()
                    );
                }
            }
            let pools = Pools::new(&settings)?;
            for (db, dataset) in demo {
                let mut conn = pools.writer(&db.name)?;
                let rows =
                    datagen::generate(&mut conn, dataset, seed, scale).map_err(|source| {
                        litepool::Error::Sqlite {
                            database: db.name.clone(),
                            source,
                        }
                    })?;
                eprintln!(
                    "litepool: {}: {rows} demo rows in {}",
                    db.name,
                    db.path.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Litestream {
            source,
            replica,
            format,
            sync_interval,
        } => {
            let settings = source.load()?;
            let chosen = litestream::format_of(&settings, format);
            // A bad --replica is reported first, against the release chosen (or asked for).
            let replica = litestream::Replica::parse(
                &replica,
                chosen
                    .as_ref()
                    .ok()
                    .copied()
                    .or(format)
                    .unwrap_or(LitestreamVersion::V05),
            )?;
            let format = chosen?;
            let text = litestream::config(&settings, &replica, sync_interval, format)?;
            std::io::stdout().lock().write_all(text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            source,
            profiles,
            seconds,
            scale,
            seed,
            json,
            workloads,
            threads,
            builtin,
            report,
        } => {
            // Below 10 ms a run measures the timer, not the queries (5e-324 was accepted).
            if !(0.01..=600.0).contains(&seconds) {
                anyhow::bail!("invalid --seconds {seconds:?}: expected 0.01 to 600");
            }
            if let Some(path) = &report {
                // Refused before anything is measured.
                output::check_report_path(path)?;
            }
            let settings = replica_env::without_replicas(&source.load()?, "bench")?;
            if let Some(path) = &report {
                output::refuse_user_files(path, &settings)?;
            }
            // The configured files are only read (copied), but a bad one is refused as by every
            // other command.
            prep::preflight_copies(&settings)?;
            let names: Vec<String> = if profiles.is_empty() {
                bench::DEFAULT_PROFILES
                    .iter()
                    .filter(|p| settings.profiles.contains_key(**p))
                    .map(|p| p.to_string())
                    .collect()
            } else {
                profiles
            };
            let chosen = names
                .iter()
                .map(|n| {
                    use userbench::Mode;
                    let (base, mode) = if let Some(b) = n.strip_suffix(bench::SPLIT_SUFFIX) {
                        (b, Mode::Split)
                    } else if let Some(b) = n.strip_suffix(userbench::GROUP_SUFFIX) {
                        (b, Mode::Group)
                    } else {
                        (n.as_str(), Mode::Plain)
                    };
                    settings
                        .profiles
                        .get(base)
                        .cloned()
                        .map(|p| (p, mode))
                        .ok_or_else(|| {
                            let known: Vec<_> =
                                settings.profiles.keys().map(String::as_str).collect();
                            anyhow::anyhow!(
                                "unknown profile {n:?} in --profiles: configured profiles are {}",
                                known.join(", ")
                            )
                        })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            if chosen.is_empty() {
                anyhow::bail!("no profiles to compare: name some with --profiles");
            }
            let bar = ProgressBar::new(1).with_style(
                ProgressStyle::with_template("{msg:40} [{bar:30}] {pos}/{len} {elapsed}")?
                    .progress_chars("=> "),
            );
            let mut progress = |step: usize, steps: usize, what: &str| {
                bar.set_length(steps as u64);
                bar.set_position(step as u64);
                bar.set_message(what.to_owned());
            };
            let result = if builtin || settings.workloads.is_empty() {
                if chosen.iter().any(|(_, m)| *m == userbench::Mode::Group) {
                    anyhow::bail!(
                        "+group (group commit) applies to your own workloads, not to --builtin"
                    );
                }
                let chosen: Vec<_> = chosen
                    .iter()
                    .map(|(p, m)| (p.clone(), *m == userbench::Mode::Split))
                    .collect();
                prep::builtin_bench(
                    &settings,
                    &chosen,
                    seconds,
                    scale,
                    seed,
                    builtin,
                    &mut progress,
                )?
            } else {
                let selected: Vec<litepool::settings::Workload> = if workloads.is_empty() {
                    settings.workloads.values().cloned().collect()
                } else {
                    workloads
                        .iter()
                        .map(|w| {
                            settings.workloads.get(w).cloned().ok_or_else(|| {
                                let known: Vec<_> =
                                    settings.workloads.keys().map(String::as_str).collect();
                                anyhow::anyhow!(
                                    "unknown workload {w:?} in --workloads: configured workloads are {}",
                                    known.join(", ")
                                )
                            })
                        })
                        .collect::<anyhow::Result<_>>()?
                };
                userbench::run(
                    &settings,
                    &selected,
                    &chosen,
                    seconds,
                    usize::from(threads),
                    seed,
                    &mut progress,
                )?
            };
            bar.finish_and_clear();
            // The results first: a report that cannot be written loses nothing measured.
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &result)?;
                writeln!(out)?;
            } else {
                write!(out, "{result}")?;
            }
            out.flush()?;
            if let Some(path) = &report {
                output::write_report(
                    path,
                    &report::html(&result, &output::config_text(&settings)),
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats {
            source,
            json,
            format,
            workload,
            threads,
            socket,
            watch,
        } => {
            let format = if json { Format::Json } else { format };
            if let Some(path) = &socket {
                return match (watch, format) {
                    (Some(every), _) => client::watch(path, every),
                    (None, Format::Json) => client::stats(path, "stats json"),
                    (None, Format::Prometheus) => client::stats(path, "stats prometheus"),
                    (None, Format::Text) => client::stats(path, "pools"),
                };
            }
            if let Some(secs) = workload.filter(|s| !(0.01..=3600.0).contains(s)) {
                anyhow::bail!("invalid --workload {secs:?}: expected 0.01 to 3600 seconds");
            }
            let settings = match workload {
                None => {
                    let settings = source.load()?;
                    replica_env::ensure(&settings)?;
                    settings
                }
                Some(_) => replica_env::without_replicas(&source.load()?, "stats --workload")?,
            };
            // The workload runs on private copies; `scratch` must outlive the pools on them.
            let (settings, _scratch) = match workload {
                Some(_) => {
                    prep::preflight_copies(&settings)?;
                    let scratch = scratch::Scratch::new()?;
                    let copies = workload::on_copies(&settings, &scratch)?;
                    (copies, Some(scratch))
                }
                None => (settings, None),
            };
            eprintln!("litepool: building {} pool(s)", settings.databases.len());
            let pools = Pools::new(&settings)?;
            let report = match workload {
                Some(secs) => {
                    let bar = ProgressBar::new(1000).with_style(
                        ProgressStyle::with_template("{msg} [{bar:40}] {elapsed}/{duration}")?
                            .progress_chars("=> "),
                    );
                    bar.set_message(format!("workload, {threads} threads"));
                    let seconds = Duration::from_secs_f64(secs);
                    let report = workload::run(&pools, seconds, usize::from(threads), &|f| {
                        bar.set_position((f * 1000.0) as u64)
                    })?;
                    bar.finish_and_clear();
                    Some(report)
                }
                None => None,
            };
            let stats = pools.stats();
            let databases = pools.database_stats();
            let mut out = std::io::stdout().lock();
            if format == Format::Prometheus {
                write!(out, "{}", litepool::admin::prometheus(&stats, &databases))?;
            } else if format == Format::Json {
                let mut doc = litepool::admin::stats_document(
                    &settings,
                    &databases,
                    &stats,
                    &Default::default(),
                );
                doc["workload"] = serde_json::to_value(&report)?;
                serde_json::to_writer_pretty(&mut out, &doc)?;
                writeln!(out)?;
            } else {
                if let Some(r) = &report {
                    writeln!(
                        out,
                        "workload: {:.1}s on {} threads: {} reads, {} writes ({:.0} ops/s), {} busy, {} errors",
                        r.seconds,
                        r.threads,
                        r.reads,
                        r.writes,
                        (r.reads + r.writes) as f64 / r.seconds.max(1e-9),
                        r.busy,
                        r.errors
                    )?;
                    for s in &r.skipped {
                        writeln!(out, "  skipped: {s}")?;
                    }
                }
                writeln!(
                    out,
                    "env {} ({})",
                    settings.env,
                    settings.sources.join(" + ")
                )?;
                for d in databases.values() {
                    writeln!(out, "\n{d}")?;
                    for name in &d.pools {
                        if let Some(p) = stats.0.get(name) {
                            writeln!(out, "{p}")?;
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
