//! What the diesel and deadpool `Pools` share: each configured database's writer and reader
//! pools, opened after the same file checks, watched for a moved file, and looked up by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::open::Shared;
use crate::settings::{DatabaseSettings, PoolSpec, Settings};
use crate::watch::{Watched, Watcher};

/// Refuses what only litepool's own pools ([`crate::Pools`]) do, rather than ignore it: the
/// background checkpointer, the periodic `PRAGMA optimize` of a split writer, and a LiteFS
/// replica (where litepool's own pools open the readers only).
fn refuse_unsupported(db: &DatabaseSettings) -> Result<()> {
    let refuse = |key: &str, message: &str| {
        Err(Error::Config {
            origin: format!("database {:?}", db.name),
            key: Some(key.to_owned()),
            message: format!(
                "{message}: only litepool's own pools (litepool::Pools) do it; diesel and \
                 deadpool pools would silently go without, so they refuse it"
            ),
        })
    };
    if db.checkpoint == crate::settings::Checkpoint::Background {
        return refuse(
            "checkpoint",
            "\"background\" needs litepool's checkpointer thread and check-in checkpoints",
        );
    }
    if db
        .split
        .as_ref()
        .is_some_and(|s| s.optimize_interval.is_some())
    {
        return refuse(
            "writer.optimize_interval",
            "a periodic PRAGMA optimize needs litepool's optimizer thread",
        );
    }
    if let Some(primary) = crate::pools::litefs_primary(db)? {
        return Err(Error::NotPrimary {
            database: db.name.clone(),
            primary,
        });
    }
    Ok(())
}

/// One database's pools: the writer and readers of a split database, or its one pool for both.
#[derive(Clone)]
pub(crate) struct Database<N> {
    pub(crate) writer: N,
    pub(crate) reader: N,
    pub(crate) split: bool,
}

/// Every database's pools, by name.
pub(crate) struct Databases<N> {
    map: BTreeMap<String, Database<N>>,
    /// Stops the pools whose file was deleted, renamed or replaced; joined on drop.
    _watcher: Watcher,
}

impl<N> std::fmt::Debug for Databases<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.map.keys()).finish()
    }
}

/// A concrete pool and its shared state (its name: `jobs`, `jobs.writer`, `jobs.readers`).
pub(crate) trait Named {
    fn shared(&self) -> &Arc<Shared>;
    fn name(&self) -> &str {
        &self.shared().name
    }
}

impl<N: Named + Clone> Databases<N> {
    /// Checks every file ([`crate::pools::preflight`]), then opens each database's pools with
    /// `open`, in `pools()` order (a split database's writer before its readers).
    pub(crate) fn open(
        settings: &Settings,
        open: impl Fn(&DatabaseSettings, &PoolSpec) -> Result<N>,
    ) -> Result<Databases<N>> {
        crate::pools::preflight(settings)?;
        let mut map = BTreeMap::new();
        for db in settings.databases.values() {
            refuse_unsupported(db)?;
            let opened = db
                .pools()
                .iter()
                .map(|spec| Ok((spec.role, open(db, spec)?)))
                .collect::<Result<Vec<_>>>()?;
            let (writer, reader, split) =
                crate::settings::writer_and_reader(&opened).ok_or_else(|| Error::Config {
                    origin: db.name.clone(),
                    key: None,
                    message: "no pool to open".into(),
                })?;
            map.insert(
                db.name.clone(),
                Database {
                    writer,
                    reader,
                    split,
                },
            );
        }
        let mut watched: Vec<Watched> = Vec::new();
        for d in map.values() {
            for n in [&d.writer, &d.reader] {
                if !watched.iter().any(|w| Arc::ptr_eq(&w.shared, n.shared())) {
                    watched.push(Watched {
                        shared: n.shared().clone(),
                        tick: None,
                    });
                }
            }
        }
        Ok(Databases {
            map,
            _watcher: Watcher::start(watched)?,
        })
    }

    /// A database by name; an unknown name lists the configured ones.
    pub(crate) fn get(&self, name: &str) -> Result<&Database<N>> {
        self.map.get(name).ok_or_else(|| Error::UnknownDatabase {
            name: name.to_owned(),
            known: self.map.keys().cloned().collect(),
        })
    }

    /// The writer of a database without a split; a split one refuses.
    pub(crate) fn single(&self, name: &str) -> Result<&N> {
        let db = self.get(name)?;
        if db.split {
            return Err(Error::SplitDatabase {
                name: name.to_owned(),
            });
        }
        Ok(&db.writer)
    }

    /// A concrete pool by its own name; an unknown name lists them all.
    pub(crate) fn named(&self, name: &str) -> Result<&N> {
        let all = || self.map.values().flat_map(|d| [&d.writer, &d.reader]);
        all().find(|n| n.name() == name).ok_or_else(|| {
            let mut known: Vec<String> = all().map(|n| n.name().to_owned()).collect();
            known.dedup();
            Error::UnknownDatabase {
                name: name.to_owned(),
                known,
            }
        })
    }
}
