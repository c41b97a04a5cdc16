//! The optional `PRAGMA optimize` thread of a split database's writer.

use std::sync::Arc;

use super::NamedPool;
use crate::error::{Error, Result};

/// Runs `PRAGMA optimize` on a writer every interval, only when the writer is free
/// (`try_get`, so it never makes a checkout wait), until the pools are dropped.
#[derive(Debug)]
pub(super) struct Optimizer {
    pub(super) stop: Arc<std::sync::atomic::AtomicBool>,
    pub(super) thread: std::thread::JoinHandle<()>,
}

impl Optimizer {
    pub(super) fn start(pool: &NamedPool, interval: std::time::Duration) -> Result<Optimizer> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let pool = pool.clone();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("litepool-optimize-{}", pool.name()))
            .spawn(move || loop {
                std::thread::park_timeout(interval);
                if flag.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let live = pool.live();
                let s = &live.shared;
                let Some(conn) = live.pool.try_get() else {
                    tracing::debug!(pool = %s.name, "writer busy: PRAGMA optimize skipped");
                    continue;
                };
                match conn.execute_batch("PRAGMA optimize") {
                    Ok(()) => s.counters.count_optimize(),
                    Err(e) => tracing::warn!(pool = %s.name, error = %e, "PRAGMA optimize failed"),
                }
            })
            .map_err(|source| Error::Io {
                path: "optimizer thread".into(),
                source,
            })?;
        Ok(Optimizer { stop, thread })
    }
}
