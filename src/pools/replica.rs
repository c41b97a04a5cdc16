//! What a read replica changes in [`super::Pools`]: Litestream's VFS loaded before its readers
//! open, and no writer.

use super::NamedPool;
use crate::error::{Error, Result};
use crate::settings::{DatabaseSettings, Settings};

/// Why a database has no writer in this process.
#[derive(Debug, Clone)]
pub(super) enum NoWriter {
    /// A LiteFS replica node: the primary's host name.
    Litefs(String),
    /// A read replica (`replica_url`): its URL.
    ReadReplica(String),
}

impl NoWriter {
    pub(super) fn error(&self, database: &str) -> Error {
        match self {
            NoWriter::Litefs(primary) => Error::NotPrimary {
                database: database.to_owned(),
                primary: primary.clone(),
            },
            NoWriter::ReadReplica(url) => Error::ReadReplica {
                database: database.to_owned(),
                url: url.clone(),
            },
        }
    }
}

/// Loads Litestream's VFS for read replica `db` (once per process).
pub(crate) fn load_replica(
    db: &DatabaseSettings,
    replica: &crate::settings::ReadReplica,
    settings: &Settings,
) -> Result<()> {
    #[cfg(feature = "litestream-vfs")]
    {
        crate::replica::load(&db.name, &replica.url, settings.litestream_vfs.as_deref())?;
        // One connection first, so that a replica with nothing to read is said by name: a
        // damaged one fails at once; on an empty or missing one, Litestream's VFS waits until
        // files appear (`waitForRestorePlan` in its vfs.go), so the wait is bounded by the
        // readers' connection_timeout (the thread that waits is left to the VFS).
        let timeout = db
            .split
            .as_ref()
            .map_or(db.pool.connection_timeout, |s| s.readers.connection_timeout);
        let (tx, rx) = std::sync::mpsc::channel();
        let name = db.name.clone();
        std::thread::Builder::new()
            .name(format!("litepool-replica-probe-{}", db.name))
            .spawn(move || {
                let _ = tx.send(crate::replica::open(&name, &name).map(drop));
            })
            .map_err(|source| Error::Io {
                path: "replica probe thread".into(),
                source,
            })?;
        let opened = rx.recv_timeout(timeout).map_err(|_| Error::ReplicaSetup {
            database: db.name.clone(),
            message: format!(
                "nothing to read at {} after {timeout:?} (the readers' connection_timeout): Litestream's VFS waits until the replica holds a snapshot of the primary; is litestream replicate running on the primary with this replica, and is the URL the one it writes?",
                replica.url
            ),
        })?;
        opened.map_err(|e| Error::ReplicaSetup {
                database: db.name.clone(),
                message: format!(
                    "cannot read the replica at {} through Litestream's VFS ({}); is Litestream replicating the primary there? An empty, missing or damaged replica has nothing to read",
                    replica.url,
                    match &e {
                        Error::ReplicaSetup { message, .. } => message.clone(),
                        other => other.to_string(),
                    }
                ),
            })
    }
    #[cfg(not(feature = "litestream-vfs"))]
    {
        let _ = (replica, settings);
        Err(Error::ReplicaSetup {
            database: db.name.clone(),
            message:
                "litepool was built without its feature `litestream-vfs`, which read replicas need"
                    .into(),
        })
    }
}

/// The thread that samples a read replica pool's position and staleness every
/// [`crate::pools::WATCH_INTERVAL`], on a connection of its own (opened at the first sample,
/// reopened after a failure), so that the pool's counters and connections are not touched and
/// the figures stay fresh while the application is idle. A thread of its own, not the watcher's:
/// a call into Litestream's VFS that stalls (its storage gone) stalls only this. Dropping it
/// stops the thread without waiting for it (it holds no pool, only the statistics).
#[derive(Debug)]
pub(super) struct Sampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::Thread,
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.unpark();
    }
}

impl Sampler {
    /// Takes a first sample now (so that the statistics have a position as soon as the pools
    /// are built), then starts the thread. `None` for other pools.
    pub(super) fn start(pool: &NamedPool) -> Result<Option<Sampler>> {
        #[cfg(feature = "litestream-vfs")]
        {
            let shared = pool.shared().clone();
            if shared.replica.is_none() {
                return Ok(None);
            }
            let mut conn = None::<rusqlite::Connection>;
            #[cfg(feature = "metrics")]
            let gauges = crate::metrics::ReplicaMetrics::new(&shared.name);
            let mut sample = move || {
                let Some(replica) = &shared.replica else {
                    return;
                };
                if conn.is_none() {
                    match crate::replica::open(&shared.name, &replica.database) {
                        Ok(c) => conn = Some(c),
                        Err(e) => return replica.counters.record_error(e.to_string()),
                    }
                }
                let Some(c) = conn.as_ref() else { return };
                match crate::replica::sample(c) {
                    Ok(s) => {
                        replica.counters.record(s, std::time::SystemTime::now());
                        #[cfg(feature = "metrics")]
                        gauges.publish(&replica.counters.snapshot());
                    }
                    Err(e) => {
                        replica.counters.record_error(e.to_string());
                        // A busy or locked replica is tried again on the same connection
                        // (reopening would wait for the storage to hold a snapshot again).
                        let busy = matches!(
                            e.sqlite_error_code(),
                            Some(
                                rusqlite::ErrorCode::DatabaseBusy
                                    | rusqlite::ErrorCode::DatabaseLocked
                            )
                        );
                        if !busy {
                            conn = None;
                        }
                    }
                }
            };
            sample();
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("litepool-replica-{}", pool.name()))
                .spawn(move || loop {
                    std::thread::park_timeout(crate::watch::WATCH_INTERVAL);
                    if flag.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    sample();
                })
                .map_err(|source| Error::Io {
                    path: "replica sampler thread".into(),
                    source,
                })?;
            Ok(Some(Sampler {
                stop,
                thread: thread.thread().clone(),
            }))
        }
        #[cfg(not(feature = "litestream-vfs"))]
        {
            let _ = pool;
            Ok(None)
        }
    }
}
