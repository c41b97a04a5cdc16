//! The pools' periodic threads: `PRAGMA optimize` on a split database's writer
//! (`optimize_interval`), and a primary's heartbeat for its read replicas (`heartbeat`).

use std::sync::Arc;

use super::{Handle, NamedPool};
use crate::error::{Error, Result};

/// A thread that runs a job every interval until the pools are dropped (stopped and joined
/// first, as it holds clones of the pools).
#[derive(Debug)]
pub(super) struct Optimizer {
    pub(super) stop: Arc<std::sync::atomic::AtomicBool>,
    pub(super) thread: std::thread::JoinHandle<()>,
}

impl Optimizer {
    fn every(
        name: String,
        interval: std::time::Duration,
        mut job: impl FnMut() + Send + 'static,
    ) -> Result<Optimizer> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || loop {
                std::thread::park_timeout(interval);
                if flag.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                job();
            })
            .map_err(|source| Error::Io {
                path: "litepool thread".into(),
                source,
            })?;
        Ok(Optimizer { stop, thread })
    }

    /// Runs `PRAGMA optimize` on a writer every interval, only when the writer is free
    /// (`try_get`, so it never makes a checkout wait).
    pub(super) fn start(pool: &NamedPool, interval: std::time::Duration) -> Result<Optimizer> {
        let pool = pool.clone();
        Self::every(
            format!("litepool-optimize-{}", pool.name()),
            interval,
            move || {
                let live = pool.live();
                let s = &live.shared;
                let Some(conn) = live.pool.try_get() else {
                    tracing::debug!(pool = %s.name, "writer busy: PRAGMA optimize skipped");
                    return;
                };
                match conn.execute_batch("PRAGMA optimize") {
                    Ok(()) => s.counters.count_optimize(),
                    Err(e) => tracing::warn!(pool = %s.name, error = %e, "PRAGMA optimize failed"),
                }
            },
        )
    }

    /// Writes the primary's time into [`crate::staleness::HEARTBEAT_TABLE`] every interval,
    /// through the database's write path (so it counts among its writes), for its read replicas
    /// to tell how far behind they are.
    pub(super) fn heartbeat(handle: &Handle, interval: std::time::Duration) -> Result<Optimizer> {
        let handle = handle.clone();
        let mut failing = false;
        Self::every(
            format!("litepool-heartbeat-{}", handle.name()),
            interval,
            move || {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                let table = crate::staleness::HEARTBEAT_TABLE;
                let written = handle.write(move |c| {
                    c.execute_batch(&format!(
                        "CREATE TABLE IF NOT EXISTS {table}(id INTEGER PRIMARY KEY CHECK (id = 1), unix_ms INTEGER NOT NULL)"
                    ))?;
                    c.execute(
                        &format!("INSERT INTO {table}(id, unix_ms) VALUES (1, ?1) ON CONFLICT(id) DO UPDATE SET unix_ms = excluded.unix_ms"),
                        [now],
                    )
                });
                match written {
                    Ok(_) if failing => {
                        failing = false;
                        tracing::info!(database = %handle.name(), "heartbeat written again");
                    }
                    Ok(_) => {}
                    // Said once per failure streak, not every interval.
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(database = %handle.name(), error = %e, "heartbeat not written: read replicas cannot tell how far behind they are");
                    }
                    Err(_) => {}
                }
            },
        )
    }
}
