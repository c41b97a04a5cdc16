//! Checkpoints off the commit path (`checkpoint = "background"`), triggered by WAL frames.
//!
//! SQLite's automatic checkpoint runs inside the COMMIT of whichever caller pushes the WAL past
//! `wal_autocheckpoint` pages, so that caller (and, with group commit, every caller of its batch)
//! pays for copying the WAL into the database. With `checkpoint = "background"`, every connection
//! gets `wal_autocheckpoint = 0`, and checkpoints are decided from the WAL-index header in the
//! `-shm` file (<https://sqlite.org/walformat.html>: `mxFrame`, the last valid frame, and
//! `nBackfill`, the frames already checkpointed): when the frames written since the last
//! checkpoint (`mxFrame - nBackfill`, times the frame size) reach `checkpoint_wal_size`,
//!
//! - group commit ([`crate::commit`]) checks after every batch it answers, and its leader runs a
//!   RESTART checkpoint on the writer before the next batch, waiting at most 10ms for readers:
//!   no write is in flight, so it copies every frame, and once no reader holds a mark in the WAL
//!   the next batch starts it over. (A PASSIVE checkpoint from another connection under a steady
//!   write load never catches up: new frames arrive while it copies. A PASSIVE one between
//!   batches copied everything, but with readers always overlapping one of them still held a
//!   mark when the next batch wrote, so the WAL never started over: 158 MiB in 3 s.)
//! - a writing connection outside group commit checks as it is checked in (`WalWatch`).
//! - this module's thread reads the header every 10ms for the statistics, runs RESTART itself
//!   when frames are pending but none has been added for 100ms (no writer is active to do it),
//!   and TRUNCATE after a second without a new frame, to give the disk space back. It never
//!   competes with active writers for the checkpoint lock. (A polling thread as the trigger fell
//!   behind: 8 busy writers on 2 cores starved it, 3.4 MiB pending over a 1 MiB threshold under
//!   group commit, 58 MiB through `pools.writer()`, measured.)
//!
//! The trigger counts frames not yet checkpointed, not the file's size: a checkpoint restarts
//! the WAL but does not shrink its file, so a size trigger fires after every batch once the file
//! has grown.

use std::path::{Path, PathBuf};
use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::error::{Error, Result};

/// How often the checkpointer looks at the WAL.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(10);
/// With frames pending past the threshold and none added for this long, the thread runs
/// RESTART itself (no writer is active to do it).
const IDLE_RESTART: Duration = Duration::from_millis(100);

/// Frames pending at this many times the threshold are a backlog (a reader held an old snapshot
/// while writes went on): the thread copies it with a PASSIVE checkpoint of its own, which
/// writers do not wait for, rather than group commit's leader between two batches (copying
/// 138 MB there held the write path for 350 ms, measured).
pub const BACKLOG: u64 = 4;
/// With no frame added for this long, the thread truncates the WAL.
const IDLE_TRUNCATE: Duration = Duration::from_secs(1);

/// What the checkpointer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CheckpointStats {
    /// RESTART checkpoints run because the WAL passed `checkpoint_wal_size`.
    pub restart: u64,
    /// Checkpoints run by a writing connection as it was checked in (`pools.writer()`, or a
    /// database without a split), when the pending frames had reached the threshold.
    pub at_checkin: u64,
    /// Checkpoints that gave up on a busy database (tried again 10ms later).
    pub busy: u64,
    /// TRUNCATE checkpoints run on an idle WAL.
    pub truncate: u64,
    /// PASSIVE checkpoints the thread ran to copy a backlog (at least [`BACKLOG`] times the
    /// threshold, left by a reader that held an old snapshot) while writes went on, instead of
    /// group commit's leader copying it between two batches.
    pub backlog: u64,
    /// The largest WAL file seen, in bytes (JSON: `wal_peak_bytes`).
    #[serde(rename = "wal_peak_bytes")]
    pub wal_peak: u64,
    /// The most bytes of WAL frames seen not yet checkpointed (what the trigger compares with
    /// `checkpoint_wal_size`; JSON: `pending_peak_bytes`).
    #[serde(rename = "pending_peak_bytes")]
    pub pending_peak: u64,
}

#[derive(Debug, Default)]
struct Counters {
    restart: AtomicU64,
    at_checkin: AtomicU64,
    busy: AtomicU64,
    truncate: AtomicU64,
    backlog: AtomicU64,
    wal_peak: AtomicU64,
    pending_peak: AtomicU64,
}

/// The background checkpointer of one database.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    path: PathBuf,
    threshold: u64,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn wal_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

fn shm_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push("-shm");
    PathBuf::from(s)
}

/// What the WAL-index header says (<https://sqlite.org/walformat.html#the_wal_index_file_format>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WalIndex {
    /// `mxFrame`: the last valid frame of the WAL.
    pub max_frame: u64,
    /// `nBackfill`: frames already copied into the database.
    pub backfilled: u64,
    /// The database page size.
    pub page_size: u64,
}

impl WalIndex {
    /// Parses the first 104 bytes of a `-shm` file: two copies of the 48-byte header (native
    /// byte order), then the checkpoint information, whose first field is `nBackfill`. `None`
    /// while the copies differ (a writer is updating them) or the index is not initialized.
    pub(crate) fn parse(bytes: &[u8; 104]) -> Option<WalIndex> {
        let u32_at = |i: usize| {
            u64::from(u32::from_ne_bytes([
                bytes[i],
                bytes[i + 1],
                bytes[i + 2],
                bytes[i + 3],
            ]))
        };
        if bytes[..48] != bytes[48..96] || bytes[12] == 0 {
            return None;
        }
        let page_size = match u16::from_ne_bytes([bytes[14], bytes[15]]) {
            1 => 65_536,
            n => u64::from(n),
        };
        Some(WalIndex {
            max_frame: u32_at(16),
            backfilled: u32_at(96),
            page_size,
        })
    }

    /// Bytes of frames written since the last checkpoint (a frame is a page and 24 bytes).
    pub(crate) fn pending_bytes(&self) -> u64 {
        self.max_frame.saturating_sub(self.backfilled) * (self.page_size + 24)
    }
}

/// When a checkpoint is due: the frames not yet checkpointed reach the threshold above what the
/// last checkpoint could not copy. A reader holding an old snapshot keeps frames from being
/// checkpointed; without that floor every batch would run a checkpoint that copies nothing
/// (2,943 checkpoints against 760 in one 4 s run with such a reader, measured).
#[derive(Debug)]
pub(crate) struct Trigger {
    shm: std::sync::Mutex<Shm>,
    threshold: u64,
    floor: AtomicU64,
}

impl Trigger {
    /// The trigger of the database at `db`, at `threshold` bytes of frames.
    pub(crate) fn of(db: &Path, threshold: u64) -> Trigger {
        Trigger {
            shm: std::sync::Mutex::new(Shm::of(db)),
            threshold,
            floor: AtomicU64::new(0),
        }
    }

    /// The WAL-index header now.
    pub(crate) fn index(&self) -> Option<WalIndex> {
        self.shm
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .header()
    }

    /// Bytes of frames not yet checkpointed, read from the WAL-index header.
    pub(crate) fn pending(&self) -> u64 {
        self.index().map_or(0, |h| h.pending_bytes())
    }

    /// True when a checkpoint is due.
    pub(crate) fn due(&self) -> bool {
        self.due_at(self.pending())
    }

    /// True when `pending` bytes are a backlog the checkpointer thread copies ([`BACKLOG`]).
    pub(crate) fn is_backlog(&self, pending: u64) -> bool {
        pending >= self.threshold.saturating_mul(BACKLOG)
    }

    /// True when a checkpoint is due with `pending` bytes of frames not yet checkpointed.
    pub(crate) fn due_at(&self, pending: u64) -> bool {
        let mut floor = self.floor.load(Relaxed);
        if pending < floor {
            // The WAL started over (or was checkpointed by someone else).
            floor = 0;
            self.floor.store(0, Relaxed);
        }
        pending >= floor.saturating_add(self.threshold)
    }

    /// After a checkpoint: what it left is the new floor.
    pub(crate) fn checkpointed(&self) {
        self.floor.store(self.pending(), Relaxed);
    }
}

/// Checkpoints at check-in: a writing connection that is not group commit's (`pools.writer()`,
/// a database without a split) that changed rows reads the WAL-index header as it goes back to
/// the pool (one that only read skips it: no syscall on a reader's check-in) and, past
/// the threshold, checkpoints on the spot. A polling thread alone fell behind: starved by 8 busy
/// writers on 2 cores, it let the WAL reach 58 MiB against a 1 MiB threshold (measured).
#[derive(Debug)]
pub(crate) struct WalWatch {
    trigger: Trigger,
    exclusive: bool,
    /// One connection checkpoints at a time; the others go on.
    busy: AtomicBool,
    /// Closed while a pool of writers checkpoints: checkouts of that pool wait for it (see
    /// [`WalWatch::pass`]).
    closed: AtomicBool,
    gate: std::sync::Mutex<()>,
    opened: std::sync::Condvar,
    counters: Arc<Counters>,
}

/// How long a pool of writers' RESTART checkpoint waits for the transactions in flight.
const RESTART_WAIT: Duration = Duration::from_millis(100);

impl WalWatch {
    /// Runs after a writing connection's work is done (no transaction open). The split's writer
    /// runs PASSIVE: nothing else writes, so it copies every frame and the next write starts the
    /// WAL over. A pool of writers closes the pool's gate (new checkouts wait), then runs
    /// RESTART, which waits up to 100ms for the transactions in flight: without the gate the
    /// other writers kept taking SQLite's write lock first, the checkpoint fell back to PASSIVE,
    /// and the WAL reached 18 MiB against a 1 MiB threshold (measured).
    pub(crate) fn after_write(&self, conn: &Connection) {
        if self.busy.swap(true, Relaxed) {
            return;
        }
        if conn.is_autocommit() && self.trigger.due() {
            let done = if self.exclusive {
                conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0))
            } else {
                self.closed.store(true, Release);
                let done = restart_within(conn, RESTART_WAIT);
                let _gate = self
                    .gate
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                self.closed.store(false, Release);
                self.opened.notify_all();
                done
            };
            self.trigger.checkpointed();
            match done {
                Ok(0) => drop(self.counters.at_checkin.fetch_add(1, Relaxed)),
                Ok(_) => drop(self.counters.busy.fetch_add(1, Relaxed)),
                Err(e) => {
                    tracing::debug!(error = %e, "checkpoint at check-in skipped");
                    self.counters.busy.fetch_add(1, Relaxed);
                }
            }
        }
        self.busy.store(false, Relaxed);
    }

    /// Called before a checkout: while a pool of writers checkpoints, waits for it to finish
    /// (at most until `deadline`; the RESTART itself gives up after 100ms, then copies what it
    /// can). One atomic load when no checkpoint runs.
    #[inline]
    pub(crate) fn pass(&self, deadline: std::time::Instant) {
        if !self.closed.load(Acquire) {
            return;
        }
        let mut gate = self
            .gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while self.closed.load(Acquire) {
            let now = std::time::Instant::now();
            if now >= deadline {
                return;
            }
            gate = self
                .opened
                .wait_timeout(gate, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }
}

/// `PRAGMA wal_checkpoint(RESTART)` on `conn`, its busy timeout shortened to `wait` for it.
pub(crate) fn restart_within(conn: &Connection, wait: Duration) -> rusqlite::Result<i64> {
    let configured: i64 = conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?;
    conn.busy_timeout(wait)?;
    let r = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0));
    conn.busy_timeout(Duration::from_millis(configured.max(0).unsigned_abs()))?;
    r
}

/// The `-shm` file, opened read-only once it exists. Read with one positioned read: SQLite
/// maps the same pages, and a torn read only shows as two header copies that differ.
#[derive(Debug)]
struct Shm {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl Shm {
    /// The `-shm` file of the database at `db`.
    fn of(db: &Path) -> Shm {
        Shm {
            path: shm_of(db),
            file: None,
        }
    }

    /// The WAL-index header now, when it can be read and its two copies agree.
    fn header(&mut self) -> Option<WalIndex> {
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        let file = self.file.as_ref()?;
        // A writer that commits updates the two copies one after the other: read again until
        // they agree (a few microseconds at most), rather than miss a check under a busy pool.
        let mut buf = [0u8; 104];
        for _ in 0..64 {
            read_at(file, &mut buf).ok()?;
            if let Some(index) = WalIndex::parse(&buf) {
                return Some(index);
            }
            std::thread::yield_now();
        }
        None
    }
}

#[cfg(unix)]
fn read_at(file: &std::fs::File, buf: &mut [u8]) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, 0)
}

#[cfg(not(unix))]
fn read_at(mut file: &std::fs::File, buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::{Read, Seek};
    file.seek(std::io::SeekFrom::Start(0))?;
    file.read_exact(buf)
}

impl Checkpointer {
    /// Opens its own connection to `path` and starts watching its WAL.
    pub(crate) fn start(database: &str, path: &Path, threshold: u64) -> Result<Checkpointer> {
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
        let (flag, c, wal, name, db) = (
            stop.clone(),
            counters.clone(),
            wal_of(path),
            database.to_owned(),
            path.to_owned(),
        );
        let thread = std::thread::Builder::new()
            .name(format!("litepool-checkpoint-{database}"))
            .spawn(move || {
                // Writes that bypass litepool's connections (the r2d2 pool itself) are not
                // checkpointed at check-in: past twice the threshold the thread steps in even
                // while they go on.
                let backstop = Trigger::of(&db, threshold.saturating_mul(2));
                // A backlog is copied once per threshold of new frames at most: while the reader
                // that left it still holds its snapshot, a PASSIVE checkpoint copies nothing.
                let backlog = Trigger::of(&db, threshold);
                // The last mxFrame seen, and when it changed.
                let mut last = (0u64, Instant::now());
                // The check-in checkpoints counted, and when that count last moved: while
                // litepool's own connections checkpoint, the backstop stays out of their way
                // (competing for the lock, both fell back to PASSIVE and the WAL grew).
                let mut checkins = (0u64, Instant::now());
                loop {
                    std::thread::park_timeout(CHECK_INTERVAL);
                    if flag.load(Relaxed) {
                        break;
                    }
                    let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
                    c.wal_peak.fetch_max(size, Relaxed);
                    let Some(h) = backstop.index() else { continue };
                    c.pending_peak.fetch_max(h.pending_bytes(), Relaxed);
                    if h.max_frame != last.0 {
                        last = (h.max_frame, Instant::now());
                    }
                    // Writers checkpoint as they go (after a batch, at check-in); the thread
                    // steps in only once no frame has been added for a while, so that it never
                    // competes with them for the checkpoint lock.
                    let idle = last.1.elapsed();
                    let over = h.pending_bytes() >= threshold;
                    let done_at_checkin = c.at_checkin.load(Relaxed);
                    if done_at_checkin != checkins.0 {
                        checkins = (done_at_checkin, Instant::now());
                    }
                    let backstop_due = checkins.1.elapsed() >= IDLE_RESTART
                        && backstop.due_at(h.pending_bytes());
                    let pending = h.pending_bytes();
                    let mode = if (over && idle >= IDLE_RESTART) || backstop_due {
                        "RESTART"
                    } else if backlog.is_backlog(pending) && backlog.due_at(pending) {
                        "PASSIVE"
                    } else if size > 0 && idle >= IDLE_TRUNCATE {
                        "TRUNCATE"
                    } else {
                        continue;
                    };
                    let sql = format!("PRAGMA wal_checkpoint({mode})"); // a fixed word
                    // The first column is 1 when the checkpoint could not finish (SQLITE_BUSY).
                    let done = conn.query_row(&sql, [], |r| r.get::<_, i64>(0));
                    backstop.checkpointed();
                    backlog.checkpointed();
                    match done {
                        Ok(0) if mode == "RESTART" => c.restart.fetch_add(1, Relaxed),
                        Ok(0) if mode == "PASSIVE" => c.backlog.fetch_add(1, Relaxed),
                        Ok(0) => {
                            last.1 = Instant::now();
                            c.truncate.fetch_add(1, Relaxed)
                        }
                        Ok(_) => {
                            last.1 = Instant::now(); // try again after another idle spell
                            c.busy.fetch_add(1, Relaxed)
                        }
                        Err(e) => {
                            last.1 = Instant::now();
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
            path: path.to_owned(),
            threshold,
            thread: Some(thread),
        })
    }

    /// The check a writing connection of this database runs as it is checked in. `exclusive`:
    /// the split's one writer (no other writer can be in flight).
    pub(crate) fn watch(&self, exclusive: bool) -> Arc<WalWatch> {
        Arc::new(WalWatch {
            trigger: Trigger::of(&self.path, self.threshold),
            exclusive,
            busy: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            gate: std::sync::Mutex::new(()),
            opened: std::sync::Condvar::new(),
            counters: self.counters.clone(),
        })
    }

    /// A snapshot of what it did.
    pub(crate) fn stats(&self) -> CheckpointStats {
        CheckpointStats {
            restart: self.counters.restart.load(Relaxed),
            at_checkin: self.counters.at_checkin.load(Relaxed),
            busy: self.counters.busy.load(Relaxed),
            truncate: self.counters.truncate.load(Relaxed),
            backlog: self.counters.backlog.load(Relaxed),
            wal_peak: self.counters.wal_peak.load(Relaxed),
            pending_peak: self.counters.pending_peak.load(Relaxed),
        }
    }

    /// Zeroes the counters and the peaks of [`Checkpointer::stats`].
    pub(crate) fn reset_stats(&self) {
        let c = &self.counters;
        for a in [
            &c.restart,
            &c.at_checkin,
            &c.busy,
            &c.truncate,
            &c.backlog,
            &c.wal_peak,
            &c.pending_peak,
        ] {
            a.store(0, Relaxed);
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
