//! Each database as its list of pools: the one description that [`crate::Pools`], the memory
//! budget, the lint, `litepool check` and `litepool bench` all read.

use serde::Serialize;

use crate::pragma::TransactionMode;
use crate::profile::{PragmaSet, Profile};

use super::{DatabaseSettings, PoolSettings};

/// What a pool is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The one pool of a database without a split: reads and writes.
    Single,
    /// The one writer connection of a split database (`BEGIN IMMEDIATE` by default).
    Writer,
    /// The read-only connections of a split database: opened with `SQLITE_OPEN_READ_ONLY`,
    /// `query_only = ON`, deferred transactions.
    Readers,
}

impl Role {
    /// `writer` or `readers`: the suffix of a split pool's name; `None` for a single pool.
    pub fn suffix(self) -> Option<&'static str> {
        match self {
            Role::Single => None,
            Role::Writer => Some("writer"),
            Role::Readers => Some("readers"),
        }
    }

    /// True for connections that may write.
    pub fn writes(self) -> bool {
        self != Role::Readers
    }
}

/// Group-commit settings of a split database's writer (`[databases.<name>.writer]`), read by
/// `litepool::commit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GroupCommitSettings {
    /// Writes that may wait for a batch. Default: 1024. 1 to 65536.
    pub queue_size: usize,
    /// Closures in one transaction. Default: 256. 1 to 10000.
    pub max_batch: usize,
    /// Stop adding closures to a batch after running it this long; a caller leads batches for
    /// at most this long before handing the lead on. Default: 10ms.
    pub max_batch_time: std::time::Duration,
}

impl Default for GroupCommitSettings {
    fn default() -> Self {
        GroupCommitSettings {
            queue_size: 1024,
            max_batch: 256,
            max_batch_time: std::time::Duration::from_millis(10),
        }
    }
}

/// One concrete pool of a database: its name, role, profile and r2d2 settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolSpec {
    /// `jobs` for a single pool, `jobs.writer` / `jobs.readers` for a split database.
    pub name: String,
    /// The database's name.
    pub database: String,
    /// What the pool is for.
    pub role: Role,
    /// The profile its connections get: the database's, plus the role's own keys.
    pub profile: Profile,
    /// The r2d2 settings.
    pub pool: PoolSettings,
}

impl DatabaseSettings {
    /// True when `checkpoint = "background"` takes effect: the profile's journal mode is WAL or
    /// left as the file has it (checkpoints exist only in WAL mode; the lint says so otherwise).
    pub fn background_checkpoints(&self) -> bool {
        self.checkpoint == super::Checkpoint::Background
            && self
                .profile
                .pragmas()
                .journal_mode
                .map_or(true, |m| m == crate::pragma::JournalMode::Wal)
    }

    /// The concrete pools of this database: one pool, or for a split database the writer
    /// (`<name>.writer`: max_size 1, the split's `transaction_behavior`) and the readers
    /// (`<name>.readers`: read-only, `query_only = true`, deferred transactions), in that order.
    pub fn pools(&self) -> Vec<PoolSpec> {
        // Background checkpoints: no connection checkpoints inside a commit.
        let base = match self.checkpoint {
            super::Checkpoint::Background if self.background_checkpoints() => {
                self.profile.with_role(
                    "background checkpoints",
                    &PragmaSet {
                        wal_autocheckpoint: Some(0),
                        ..PragmaSet::default()
                    },
                )
            }
            _ => self.profile.clone(),
        };
        let Some(split) = &self.split else {
            return vec![PoolSpec {
                name: self.name.clone(),
                database: self.name.clone(),
                role: Role::Single,
                profile: base,
                pool: self.pool.clone(),
            }];
        };
        let spec = |role: Role, keys: PragmaSet, pool: PoolSettings| {
            let suffix = role.suffix().unwrap_or_default();
            PoolSpec {
                name: format!("{}.{suffix}", self.name),
                database: self.name.clone(),
                role,
                profile: base.with_role(suffix, &keys),
                pool,
            }
        };
        let writer = PragmaSet {
            transaction_behavior: Some(split.writer_transaction_behavior),
            ..PragmaSet::default()
        };
        // A reader's transaction only reads: `BEGIN IMMEDIATE` would fail on a read-only
        // connection, whatever the profile says for writers.
        // `PRAGMA optimize` may write (ANALYZE): the writer runs it.
        let readers = PragmaSet {
            query_only: Some(true),
            transaction_behavior: Some(TransactionMode::Deferred),
            optimize_on_open: Some(false),
            ..PragmaSet::default()
        };
        let writer_pool = PoolSettings {
            max_size: 1,
            min_idle: None,
            connection_timeout: split.writer_connection_timeout,
            ..self.pool.clone()
        };
        let readers = spec(Role::Readers, readers, split.readers.clone());
        if self.replica.is_some() {
            // A read replica opens no writer: writes go to the primary.
            return vec![readers];
        }
        vec![spec(Role::Writer, writer, writer_pool), readers]
    }
}

/// A database's writer and reader among its opened pools (`role`, pool), in `pools()` order: the
/// writer and the readers of a split database (`true`), or its one pool for both (`false`).
/// `None` when nothing was opened.
pub fn writer_and_reader<P: Clone>(opened: &[(Role, P)]) -> Option<(P, P, bool)> {
    let find = |role| {
        opened
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, p)| p.clone())
    };
    match (find(Role::Writer), find(Role::Readers)) {
        (Some(writer), Some(reader)) => Some((writer, reader, true)),
        _ => opened.first().map(|(_, p)| (p.clone(), p.clone(), false)),
    }
}
