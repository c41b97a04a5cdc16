//! The command's start-up environment for a read replica. Litestream's VFS reads
//! `LITESTREAM_REPLICA_URL` only from the environment a process starts with (see
//! `litepool::replica`), so a command whose configuration has a read replica and that did not
//! start with the variable re-executes itself once, with the variable set to the configured
//! `replica_url`, the same arguments and otherwise the same environment (so the same settings
//! load). The VFS logs to standard output unless `LITESTREAM_LOG_FILE` names a file: the
//! re-executed command sends it to standard error, so that its output (JSON, Prometheus text)
//! stays its own.

use std::os::unix::process::CommandExt;

use litepool::replica::{startup_var, REPLICA_URL_VAR};
use litepool::Settings;

/// Set in the re-executed command, so that it never re-executes again.
const MARK: &str = "LITEPOOL_REPLICA_REEXEC";

/// Returns when the process can open `settings`' read replica (or has none); otherwise
/// re-executes the command (never returns) or says why it cannot.
pub fn ensure(settings: &Settings) -> anyhow::Result<()> {
    let Some((name, url)) = settings
        .databases
        .values()
        .find_map(|d| d.replica.as_ref().map(|r| (d.name.clone(), r.url.clone())))
    else {
        return Ok(());
    };
    match startup_var(REPLICA_URL_VAR) {
        Some(v) if v == url => return Ok(()),
        Some(v) => anyhow::bail!(
            "{REPLICA_URL_VAR} is {v:?} in this command's environment, but databases.{name}.replica_url is {url:?}: Litestream's VFS would read the other replica; unset the variable or make them the same"
        ),
        None => {}
    }
    if std::env::var_os(MARK).is_some() {
        anyhow::bail!(
            "{REPLICA_URL_VAR} is still missing from the environment after re-executing with it"
        );
    }
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(std::env::args_os().skip(1))
        .env(REPLICA_URL_VAR, &url)
        .env(MARK, "1");
    if startup_var("LITESTREAM_LOG_FILE").is_none() {
        cmd.env("LITESTREAM_LOG_FILE", "/dev/stderr");
    }
    let e = cmd.exec();
    anyhow::bail!(
        "re-executing {} with {REPLICA_URL_VAR} set failed: {e}",
        exe.display()
    )
}

/// `settings` without its read replicas, for the commands that work on private copies of local
/// files (`bench`, `stats --workload`): a replica has no file to copy. A workload that reads a
/// replica is refused; a replica no workload reads is left out, and said so.
pub fn without_replicas(settings: &Settings, command: &str) -> anyhow::Result<Settings> {
    if let Some(w) = settings.workloads.values().find(|w| {
        settings
            .databases
            .get(&w.database)
            .is_some_and(|d| d.replica.is_some())
    }) {
        anyhow::bail!(
            "bench.workloads.{}: database {:?} is a read replica, which {command} cannot copy (it has no local file); measure its primary instead",
            w.name,
            w.database
        );
    }
    let mut local = settings.clone();
    local.databases.retain(|name, d| {
        if d.replica.is_some() {
            eprintln!(
                "litepool: {command}: read replica {name:?} left out (no local file to copy)"
            );
        }
        d.replica.is_none()
    });
    Ok(local)
}
