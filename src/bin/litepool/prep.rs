//! What `bench` and `stats --workload` do before measuring: refuse bad originals without opening
//! them, and run litepool's demo workloads on copies.

use litepool::Settings;

use crate::{bench, userbench};

/// Refuses bad database files as every command does, without opening the originals with SQLite
/// (which would leave `-wal`/`-shm` files beside a WAL database): `quick_check` runs on each
/// private copy instead (see `scratch::copy_database`). A database that does not exist is no
/// error here: nothing is created beside the originals (`stats` creates it in the scratch
/// directory, `bench` generates its data there).
pub fn preflight_copies(settings: &Settings) -> litepool::Result<()> {
    let mut existing = settings.clone();
    existing
        .databases
        .retain(|_, db| std::fs::symlink_metadata(&db.path).is_ok());
    for db in existing.databases.values_mut() {
        db.check_integrity = false;
    }
    litepool::pools::preflight(&existing).map(drop)
}

/// litepool's demo workloads on copies of the three demo databases. Unless `asked`, every copy
/// must already hold the demo schema (so that nothing is silently substituted for the user's
/// data); otherwise there is nothing to run and the error says how to configure workloads.
pub fn builtin_bench(
    settings: &Settings,
    profiles: &[(litepool::Profile, bool)],
    seconds: f64,
    scale: u32,
    seed: u64,
    asked: bool,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> anyhow::Result<userbench::Report> {
    let path = |name: &str| settings.databases.get(name).map(|d| d.path.clone());
    let from = bench::Sources {
        customers: path("prod_customer_data"),
        jobs: path("jobs"),
        audit: path("audit"),
    };
    let comparison =
        bench::Comparison::run(profiles, &from, seconds, scale, seed, !asked, progress)?;
    Ok(userbench::Report::from_builtin(comparison, settings))
}
