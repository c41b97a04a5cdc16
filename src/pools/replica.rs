//! What a read replica changes in [`super::Pools`]: Litestream's VFS loaded before its readers
//! open, and no writer.

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
pub(super) fn load_replica(
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
