//! The `litepool` command line: parses arguments, calls the library, prints.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use litepool::check::check;
use litepool::Settings;

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
    }
}
