//! The workload both halves of the migration guide run: publishers storing events, each in a
//! transaction of its own, and subscribers reading the latest events of a kind, for a fixed
//! time; a monitor samples the WAL file's size. Then every acknowledged event is looked up by
//! id on disk with a connection of its own.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// One event a publisher stores.
pub struct Event {
    pub id: i64,
    pub kind: i64,
    pub content: String,
}

pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS event(id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, content TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS event_kind ON event(kind, id);
CREATE TABLE IF NOT EXISTS tag(event_id INTEGER NOT NULL REFERENCES event(id), name TEXT NOT NULL);";

/// The subscribers' read, the same before and after: the latest 20 events of a kind.
pub fn latest(conn: &rusqlite::Connection, kind: i64) -> rusqlite::Result<usize> {
    let mut s = conn.prepare_cached(
        "SELECT id, content FROM event WHERE kind = ?1 ORDER BY id DESC LIMIT 20",
    )?;
    let rows = s.query_map([kind], |r| r.get::<_, i64>(0))?;
    Ok(rows.count())
}

/// The application's startup SQL: run by the "before" on every connection (`with_init`), and
/// kept by the "after", where it restates the profile, so the guard lets it run.
pub const STARTUP_SQL: &str = "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
    PRAGMA journal_mode = WAL; PRAGMA cache_size = -8000; PRAGMA temp_store = MEMORY; \
    PRAGMA mmap_size = 268435456; PRAGMA journal_size_limit = 33554432; \
    PRAGMA busy_timeout = 5000;";

/// What a run measured.
pub struct Report {
    pub acknowledged: u64,
    pub failed: u64,
    pub reads: u64,
    pub wal_max: u64,
    pub wal_end: u64,
    /// Acknowledged events found on disk, looked up one by one.
    pub on_disk: u64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "events acknowledged {} (failed {}), of them on disk {}; reads {}; WAL max {:.1} MiB, at end {:.1} MiB",
            self.acknowledged,
            self.failed,
            self.on_disk,
            self.reads,
            self.wal_max as f64 / 1048576.0,
            self.wal_end as f64 / 1048576.0
        )
    }
}

/// Runs `publishers` threads calling `write` and `subscribers` threads calling `read` for
/// `seconds`, sampling the size of `db`'s WAL every 20 ms.
pub fn run(
    db: &Path,
    seconds: f64,
    (publishers, subscribers): (i64, i64),
    write: impl Fn(Event) -> Result<(), String> + Sync,
    read: impl Fn(i64) -> Result<usize, String> + Sync,
) -> Report {
    let stop = AtomicBool::new(false);
    let (failed, reads, wal_max) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let acknowledged = std::sync::Mutex::new(Vec::new());
    let wal = db.with_extension("db-wal");
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    std::thread::scope(|s| {
        for p in 0..publishers {
            let (write, stop, acknowledged, failed) = (&write, &stop, &acknowledged, &failed);
            s.spawn(move || {
                let mut n = 0;
                let mut mine = Vec::new();
                while !stop.load(Relaxed) {
                    let event = Event {
                        id: p * 1_000_000_000 + n,
                        kind: n % 7,
                        content: format!("{:0>400}", n),
                    };
                    n += 1;
                    let id = event.id;
                    match write(event) {
                        Ok(()) => mine.push(id),
                        Err(_) => drop(failed.fetch_add(1, Relaxed)),
                    };
                }
                acknowledged.lock().unwrap().extend(mine);
            });
        }
        for r in 0..subscribers {
            let (read, stop, reads) = (&read, &stop, &reads);
            s.spawn(move || {
                let mut kind = r;
                while !stop.load(Relaxed) {
                    if read(kind % 7).is_ok() {
                        reads.fetch_add(1, Relaxed);
                    }
                    kind += 1;
                }
            });
        }
        while Instant::now() < end {
            let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
            wal_max.fetch_max(size, Relaxed);
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Relaxed);
    });
    let wal_end = std::fs::metadata(&wal).map_or(0, |m| m.len());
    let acknowledged = acknowledged.into_inner().unwrap();
    let c = rusqlite::Connection::open(db).expect("open the database");
    let mut found = c.prepare("SELECT 1 FROM event WHERE id = ?1").unwrap();
    let on_disk = acknowledged
        .iter()
        .filter(|id| found.exists([**id]).unwrap_or(false))
        .count() as u64;
    Report {
        acknowledged: acknowledged.len() as u64,
        failed: failed.into_inner(),
        reads: reads.into_inner(),
        wal_max: wal_max.into_inner().max(wal_end),
        wal_end,
        on_disk,
    }
}

/// The seconds to run, from the first argument (default 3).
pub fn seconds() -> f64 {
    std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3.0)
}
