//! Checkpoints off the commit path (`checkpoint = "background"`).
//!
//! SQLite's automatic checkpoint runs inside the COMMIT of whichever caller pushes the WAL past
//! `wal_autocheckpoint` pages, so that caller pays for copying the WAL into the database. With
//! `checkpoint = "background"`, every connection gets `wal_autocheckpoint = 0`, and one thread
//! per database watches the WAL file every 10ms. Past `checkpoint_wal_size`:
//!
//! - on a split database, it asks the group committer ([`crate::commit`]), which runs a PASSIVE
//!   checkpoint on the writer *after* acknowledging its batch and before starting the next: no
//!   write is in flight, so the checkpoint copies the whole WAL and the next batch starts the WAL
//!   over. (A PASSIVE checkpoint from another connection under a steady write load never catches
//!   up: new frames arrive while it copies, and the WAL grew to 600 MB in 10 s, measured.)
//! - when the committer does not take the request within 50ms (no group-commit writes), the
//!   thread runs a RESTART checkpoint itself on its own connection (busy timeout 100ms: past
//!   it the checkpoint gives up and tries again).
//!
//! When the WAL has not grown for a second, a TRUNCATE checkpoint gives the disk space back. No
//! caller's COMMIT runs a checkpoint; the batch after a checkpoint waits for it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::error::{Error, Result};

/// How often the checkpointer looks at the WAL.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// What the checkpointer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckpointStats {
    /// RESTART checkpoints run because the WAL passed `checkpoint_wal_size`.
    pub restart: u64,
    /// Checkpoints that gave up on a busy database (tried again 10ms later).
    pub busy: u64,
    /// TRUNCATE checkpoints run on an idle WAL.
    pub truncate: u64,
    /// The largest WAL file seen, in bytes.
    pub wal_peak: u64,
}

#[derive(Debug, Default)]
struct Counters {
    restart: AtomicU64,
    busy: AtomicU64,
    truncate: AtomicU64,
    wal_peak: AtomicU64,
}

/// The background checkpointer of one database.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn wal_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

impl Checkpointer {
    /// Opens its own connection to `path` and starts watching its WAL.
    /// With `committer`, the flag of the database's group commit: past the threshold the
    /// committer is asked first (it checkpoints between batches, with no writer in the way); the
    /// thread checkpoints itself only when the request is not taken within 50ms.
    pub(crate) fn start(
        database: &str,
        path: &Path,
        threshold: u64,
        committer: Option<Arc<AtomicBool>>,
    ) -> Result<Checkpointer> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| {
            // Give up quickly rather than make a writer wait behind a checkpoint.
            c.busy_timeout(Duration::from_millis(100))?;
            c.pragma_update(None, "wal_autocheckpoint", 0)?;
            Ok(c)
        })
        .map_err(|source| Error::Sqlite {
            database: database.to_owned(),
            source,
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (flag, c, wal, name) = (
            stop.clone(),
            counters.clone(),
            wal_of(path),
            database.to_owned(),
        );
        let thread = std::thread::Builder::new()
            .name(format!("litepool-checkpoint-{database}"))
            .spawn(move || {
                let mut last = (0u64, Instant::now());
                let mut asked: Option<Instant> = None;
                loop {
                    std::thread::park_timeout(CHECK_INTERVAL);
                    if flag.load(Relaxed) {
                        break;
                    }
                    let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
                    c.wal_peak.fetch_max(size, Relaxed);
                    if size != last.0 {
                        last = (size, Instant::now());
                    }
                    if let Some(flag) = committer.as_ref().filter(|_| size > threshold) {
                        if !flag.swap(true, Relaxed) {
                            asked = Some(Instant::now());
                            continue;
                        }
                        if asked.is_some_and(|t| t.elapsed() < Duration::from_millis(50)) {
                            continue; // the committer will take it after its batch
                        }
                        flag.store(false, Relaxed); // not taken: the committer is idle
                    }
                    let mode = if size > threshold {
                        "RESTART"
                    } else if size > 0 && last.1.elapsed() >= Duration::from_secs(1) {
                        "TRUNCATE"
                    } else {
                        continue;
                    };
                    let sql = format!("PRAGMA wal_checkpoint({mode})"); // a fixed word
                    // The first column is 1 when the checkpoint could not finish (SQLITE_BUSY).
                    match conn.query_row(&sql, [], |r| r.get::<_, i64>(0)) {
                        Ok(0) if mode == "RESTART" => c.restart.fetch_add(1, Relaxed),
                        Ok(0) => {
                            last = (0, Instant::now());
                            c.truncate.fetch_add(1, Relaxed)
                        }
                        Ok(_) => c.busy.fetch_add(1, Relaxed),
                        Err(e) => {
                            tracing::debug!(database = %name, error = %e, mode, "checkpoint skipped");
                            c.busy.fetch_add(1, Relaxed)
                        }
                    };
                }
            })
            .map_err(|source| Error::Io {
                path: "checkpoint thread".into(),
                source,
            })?;
        Ok(Checkpointer {
            stop,
            counters,
            thread: Some(thread),
        })
    }

    /// A snapshot of what it did.
    pub(crate) fn stats(&self) -> CheckpointStats {
        CheckpointStats {
            restart: self.counters.restart.load(Relaxed),
            busy: self.counters.busy.load(Relaxed),
            truncate: self.counters.truncate.load(Relaxed),
            wal_peak: self.counters.wal_peak.load(Relaxed),
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
