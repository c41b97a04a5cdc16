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
        Ok(())
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

/// Samples read replica `pool`'s position and staleness on each watcher tick, on a connection of
/// its own (opened at the first tick, reopened after a failure), so that the pool's counters
/// and connections are not touched and the figures stay fresh while the application is idle.
/// `None` for other pools.
pub(super) fn sampler(pool: &NamedPool) -> Option<Box<dyn Fn() + Send>> {
    #[cfg(feature = "litestream-vfs")]
    {
        let shared = pool.shared().clone();
        shared.replica.as_ref()?;
        let conn = std::cell::RefCell::new(None::<rusqlite::Connection>);
        #[cfg(feature = "metrics")]
        let gauges = crate::metrics::ReplicaMetrics::new(&shared.name);
        Some(Box::new(move || {
            let Some(replica) = &shared.replica else {
                return;
            };
            let mut conn = conn.borrow_mut();
            if conn.is_none() {
                match crate::replica::open(&shared.name, &replica.database) {
                    Ok(c) => *conn = Some(c),
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
                    *conn = None;
                }
            }
        }))
    }
    #[cfg(not(feature = "litestream-vfs"))]
    {
        let _ = pool;
        None
    }
}

/// Both ticks, in order.
pub(super) fn both(
    a: Option<Box<dyn Fn() + Send>>,
    b: Option<Box<dyn Fn() + Send>>,
) -> Option<Box<dyn Fn() + Send>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(Box::new(move || {
            a();
            b();
        })),
        (a, b) => a.or(b),
    }
}
