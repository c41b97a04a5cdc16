//! The migration guide's "before" (docs/migrating.md): SQLite pooled by hand with r2d2_sqlite, as
//! nostr-rs-relay 0.9 does it: startup SQL in `with_init`, `test_on_check_out(true)`, a mutex
//! that serializes writers, a retry loop on "database is locked", a checkpoint task every 60 s
//! and pool statistics logged by a thread. `cargo run --release --example migrate_before -- 3`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;

#[path = "migrate/workload.rs"]
mod workload;
use workload::Event;

type Conn = PooledConnection<SqliteConnectionManager>;

/// The application's write function, written against the pooled connection.
fn write_event(conn: &mut Conn, e: &Event) -> rusqlite::Result<()> {
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
    let path = dir.path().join("events.db");
    let manager = || {
        SqliteConnectionManager::file(&path).with_init(|c| c.execute_batch(workload::STARTUP_SQL))
    };
    // One writer, and a mutex in front of it so that writers queue in the application.
    let writer = Pool::builder()
        .max_size(1)
        .test_on_check_out(true)
        .build(manager())?;
    let readers = Pool::builder()
        .max_size(8)
        .test_on_check_out(true)
        .build(manager())?;
    writer.get()?.execute_batch(workload::SCHEMA)?;
    let lock = Arc::new(Mutex::new(()));
    // The checkpoint task and the statistics logger.
    let (w, r) = (writer.clone(), readers.clone());
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(60));
        if let Ok(c) = w.get() {
            let _ = c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
        }
    });
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(1));
        eprintln!("readers: {:?}", r.state());
    });
    let report = workload::run(
        &path,
        workload::seconds(),
        (4, 4),
        |e| {
            // Retry up to 10 times on "database is locked".
            for _ in 0..10 {
                let _guard = lock.lock().unwrap();
                let mut conn = writer.get().map_err(|e| e.to_string())?;
                match write_event(&mut conn, &e) {
                    Ok(()) => return Ok(()),
                    Err(err) if err.to_string().contains("locked") => continue,
                    Err(err) => return Err(err.to_string()),
                }
            }
            Err("database is locked, 10 times".into())
        },
        |kind| {
            let conn = readers.get().map_err(|e| e.to_string())?;
            workload::latest(&conn, kind).map_err(|e| e.to_string())
        },
    );
    println!("before: {report}");
    Ok(())
}
