//! The migration guide's "after" (docs/migrating.md): the same application on litepool. The
//! startup SQL became a profile (and still runs: it restates it), the writer mutex and the retry
//! loop became `pools.write` (group commit), the checkpoint task `checkpoint = "background"`, the
//! statistics logger `pools.stats()`. `cargo run --release --example migrate_after -- 3`.

use litepool::{Pools, Settings, WriteConn};

#[path = "migrate/workload.rs"]
mod workload;
use workload::Event;

const SETTINGS: &str = r#"
[profiles.relay]
busy_timeout = "5s"
journal_mode = "wal"
synchronous = "normal"
foreign_keys = true
cache_size = "8000KiB"
temp_store = "memory"
mmap_size = "256MiB"
journal_size_limit = "32MiB"

[databases.events]
path = "{dir}/events.db"
profile = "relay"
checkpoint = "background"

[databases.events.writer]
[databases.events.readers]
max_size = 8
"#;

/// The same write function: only the parameter's type changed. Its `transaction()` is now a
/// savepoint inside litepool's group commit.
fn write_event(conn: &mut WriteConn<'_>, e: &Event) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO event(id, kind, content) VALUES (?1, ?2, ?3)",
        (e.id, e.kind, &e.content),
    )?;
    tx.execute("INSERT INTO tag(event_id, name) VALUES (?1, 'p')", [e.id])?;
    tx.commit()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let text = SETTINGS.replace("{dir}", &dir.path().display().to_string());
    let pools = Pools::new(&Settings::from_toml(&text)?)?;
    pools.writer("events")?.execute_batch(workload::SCHEMA)?;
    // The application's startup SQL, on both pools: accepted, it changes nothing.
    pools
        .writer("events")?
        .execute_batch(workload::STARTUP_SQL)?;
    pools
        .reader("events")?
        .execute_batch(workload::STARTUP_SQL)?;
    let events = pools.handle("events")?;
    let report = workload::run(
        &dir.path().join("events.db"),
        workload::seconds(),
        (4, 4),
        |e| {
            events
                .write(move |conn| write_event(conn, &e))
                .map_err(|e| e.to_string())
        },
        |kind| {
            let conn = events.reader().map_err(|e| e.to_string())?;
            workload::latest(&conn, kind).map_err(|e| e.to_string())
        },
    );
    println!("after: {report}");
    println!("{}", pools.stats());
    if let Some(c) = events.checkpoint_stats() {
        println!("checkpoints: {c:?}");
    }
    if let Some(w) = events.write_stats() {
        println!("group commit: {w:?}");
    }
    Ok(())
}
