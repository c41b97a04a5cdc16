//! The file watcher of every pool kind: every [`WATCH_INTERVAL`] it compares the file at each
//! pool's path with the file the pool opened (device and inode, as SQLite's
//! `SQLITE_FCNTL_HAS_MOVED` does) and stops a pool whose file was deleted, renamed or replaced.
//! Checking in the background costs the checkout path one relaxed atomic load; a `stat` per
//! checkout would cost more (see `benches/acquire.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::open::Shared;

/// How often the pools check that each database file is still the one they opened.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// One watched pool, and what else to do on each tick (publish its gauges to `metrics`).
pub(crate) struct Watched {
    pub(crate) shared: Arc<Shared>,
    pub(crate) tick: Option<Box<dyn Fn() + Send>>,
}

/// The watcher thread; stopped and joined on drop.
#[derive(Debug)]
pub(crate) struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[cfg(unix)]
fn file_identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_identity(path: &std::path::Path) -> Option<(u64, u64)> {
    // Without inodes, only a deleted file is seen.
    std::fs::metadata(path).ok().map(|_| (0, 0))
}

impl Watcher {
    pub(crate) fn start(pools: Vec<Watched>) -> Result<Watcher> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let watched: Vec<(Watched, Option<(u64, u64)>)> = pools
            .into_iter()
            .map(|w| {
                let id = file_identity(&w.shared.path);
                (w, id)
            })
            .collect();
        let thread = std::thread::Builder::new()
            .name("litepool-watch".into())
            .spawn(move || loop {
                std::thread::park_timeout(WATCH_INTERVAL);
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                for (w, opened) in &watched {
                    if let Some(tick) = &w.tick {
                        tick();
                    }
                    let s = &w.shared;
                    if s.moved.load(Ordering::Relaxed) {
                        continue;
                    }
                    if file_identity(&s.path) != *opened {
                        s.moved.store(true, Ordering::Relaxed);
                        tracing::error!(pool = %s.name, path = %s.path.display(), "database file deleted, renamed or replaced: the pool hands out no more connections");
                    }
                }
            })
            .map_err(|source| Error::Io {
                path: "watcher thread".into(),
                source,
            })?;
        Ok(Watcher {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
