//! The `litepool` command line: parses arguments, calls the library, prints.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use litepool::check::check;
use litepool::{workload, Pools, Settings};

/// Verified SQLite pragma profiles for r2d2 pools.
#[derive(Parser)]
#[command(name = "litepool", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build every pool, check out all connections at once and read every pragma back.
    ///
    /// Exit status: 0 all verified, 1 something did not take effect, 2 configuration error.
    Check {
        #[command(flatten)]
        source: Source,
        /// Print one JSON document instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Build the pools, optionally run a short read/write workload, and print pool statistics.
    ///
    /// The workload uses its own table, litepool_workload, dropped at the end.
    Stats {
        #[command(flatten)]
        source: Source,
        /// Print one JSON document instead of a table.
        #[arg(long)]
        json: bool,
        /// Run the built-in workload (80% point reads, 20% updates) for this many seconds.
        #[arg(long, value_name = "SECONDS")]
        workload: Option<f64>,
        /// Threads for the workload.
        #[arg(long, default_value_t = 4)]
        threads: usize,
    },
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
            eprintln!("litepool: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { source, json } => {
            let settings = source.load()?;
            let report = check(&settings, &mut |step| eprintln!("litepool: {step}"))?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{report}")?;
            }
            Ok(ExitCode::from(report.exit_code()))
        }
        Command::Stats {
            source,
            json,
            workload,
            threads,
        } => {
            if let Some(secs) = workload.filter(|s| !(*s > 0.0 && *s <= 3600.0)) {
                anyhow::bail!("invalid --workload {secs}: expected seconds above 0, at most 3600");
            }
            let settings = source.load()?;
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
                    let report = workload::run(&pools, seconds, threads.max(1), &|f| {
                        bar.set_position((f * 1000.0) as u64)
                    })?;
                    bar.finish_and_clear();
                    Some(report)
                }
                None => None,
            };
            let stats = pools.stats();
            let mut out = std::io::stdout().lock();
            if json {
                let doc = serde_json::json!({ "pools": stats, "workload": report });
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
                writeln!(out, "{stats}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
