//! [`Pools`]: one named r2d2 pool per configured database, with statistics.
//!
//! [`NamedPool`] is one concrete pool and [`Conn`] a connection checked out of it (both in the
//! pool core, `src/pool/`, below the write path); `optimizer.rs` is the optional `PRAGMA
//! optimize` thread. The file watcher is shared with the adapters (`src/watch.rs`).

mod optimizer;
mod replica;
pub(crate) use replica::load_replica;
use replica::NoWriter;
pub mod reload;
mod stats;

use std::collections::BTreeMap;
use std::sync::Arc;

use r2d2::Pool;

use self::optimizer::Optimizer;
pub use self::reload::{Change, ReloadReport};
pub use self::stats::{DatabaseStats, Snapshot};
use crate::budget::Budget;
use crate::error::{Error, Result};
use crate::file::{self, FileState};
use crate::manager::Manager;
pub use crate::pool::{Conn, NamedPool};
use crate::settings::{DatabaseSettings, PoolSpec, Role, Settings};
pub use crate::watch::WATCH_INTERVAL;
use crate::watch::{Watched, Watcher};

/// For a `replication = "litefs"` database on a node that is not the LiteFS primary, the
/// primary's host name: LiteFS puts a `.primary` file in its mount directory on replicas only
/// (<https://fly.io/docs/litefs/primary/>). `None` on the primary (no such file) and for other
/// databases. A `.primary` that is not one line of printable text (empty, several lines, control
/// characters, not UTF-8, longer than a host name, a directory, unreadable) is
/// [`Error::LitefsState`], naming the file and what it holds.
pub fn litefs_primary(db: &DatabaseSettings) -> Result<Option<String>> {
    /// The longest DNS name; LiteFS's `hostname` is one.
    const MAX_HOST: usize = 253;
    if db.replication != crate::settings::Replication::Litefs {
        return Ok(None);
    }
    let dir = db
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let path = dir.join(".primary");
    let state = |problem: &str, holds: String| Error::LitefsState {
        path: path.clone(),
        problem: problem.to_owned(),
        holds,
    };
    // The type first, without opening: a FIFO would block the open, `/dev/zero` never ends.
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(state("cannot be read", format!("unknown contents: {e}"))),
        Ok(_) => {}
    }
    let meta = std::fs::metadata(&path).map_err(|e| {
        state(
            "a symbolic link that leads nowhere",
            format!("unknown contents: {e}"),
        )
    })?;
    if meta.is_dir() {
        return Err(state("not a file", "a directory".into()));
    }
    if !meta.is_file() {
        return Err(state(
            "not a regular file",
            "a FIFO, socket or device".into(),
        ));
    }
    let mut bytes = Vec::new();
    {
        use std::io::Read as _;
        let file = std::fs::File::open(&path)
            .map_err(|e| state("cannot be read", format!("unknown contents: {e}")))?;
        // At most one byte more than a host name and its newline: enough to tell it is too long.
        file.take(MAX_HOST as u64 + 2)
            .read_to_end(&mut bytes)
            .map_err(|e| state("cannot be read", format!("unknown contents: {e}")))?;
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        state(
            "not text",
            format!("{} bytes that are not UTF-8", e.as_bytes().len()),
        )
    })?;
    let shown = || {
        let clipped: String = text.chars().take(80).collect();
        format!(
            "{clipped:?}{}",
            if clipped.len() < text.len() {
                "…"
            } else {
                ""
            }
        )
    };
    let host = text.strip_suffix('\n').unwrap_or(&text).trim();
    if host.is_empty() {
        return Err(state("empty: expected the primary's host name", shown()));
    }
    if host.chars().any(char::is_control) {
        return Err(state(
            "not one line of text: expected the primary's host name alone",
            shown(),
        ));
    }
    if !host.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(state(
            "not a host name: expected ASCII letters, digits and punctuation, without spaces",
            shown(),
        ));
    }
    if host.len() > MAX_HOST {
        return Err(state(
            "too long for a host name (at most 253 bytes)",
            shown(),
        ));
    }
    Ok(Some(host.to_owned()))
}

/// Checks the database names ([`Settings::check_names`]), then every configured file before any
/// is touched: see [`file::inspect`] and the enforced memory budget. Returns each file's state, in `settings.databases` order.
pub fn preflight(settings: &Settings) -> Result<Vec<FileState>> {
    settings.check_names()?;
    let files = settings
        .databases
        .values()
        .map(file::inspect)
        .collect::<Result<Vec<_>>>()?;
    Budget::new(settings, &files).enforce()?;
    Ok(files)
}

/// One database's pools, resolved once: [`Pools::handle`] gives it to code that checks out
/// often, so that a checkout skips the lookup by name. Cheap to clone, `'static`.
#[derive(Debug, Clone)]
pub struct Handle {
    database: String,
    /// Before the writer, so that it is dropped first (see `Inner`'s `Drop`).
    reader: NamedPool,
    /// `Err` on a LiteFS replica or a read replica: no writer here.
    writer: std::result::Result<NamedPool, NoWriter>,
    split: bool,
    /// The group commit of a split database's writer.
    commit: Option<Arc<crate::commit::GroupCommit>>,
    /// The background checkpointer (`checkpoint = "background"`).
    checkpointer: Option<Arc<crate::checkpoint::Checkpointer>>,
    /// `write_async`'s workers, for a database without a split.
    alone: Option<Arc<crate::commit::Alone>>,
    /// Its file, profile, and since when its statistics run.
    origin: Arc<stats::Origin>,
}

impl Handle {
    /// The database's name.
    pub fn name(&self) -> &str {
        &self.database
    }

    /// A connection of a database without a split; a split database refuses with
    /// [`Error::SplitDatabase`]: use [`Handle::writer`] or [`Handle::reader`]. On a read replica
    /// (`replica_url`), a reader.
    pub fn get(&self) -> Result<Conn> {
        // A read replica has nothing but readers: `get()` is `reader()`.
        if let Err(NoWriter::ReadReplica(_)) = &self.writer {
            return self.reader.get();
        }
        if self.split {
            return Err(Error::SplitDatabase {
                name: self.database.clone(),
            });
        }
        self.writer()
    }

    /// The one writer connection of a split database (immediate transactions), waiting for it if
    /// another caller has it; for a database without a split, a connection from its pool.
    pub fn writer(&self) -> Result<Conn> {
        match &self.writer {
            // Inside a write closure of this database a second writing connection would wait
            // for the closure's own transaction (busy_timeout): refuse at once. (The writer of
            // a split database refuses in `NamedPool::get`.)
            Ok(pool) if !self.split && crate::reentry::inside(pool.id()) => Err(Error::Reentrant {
                database: self.database.clone(),
                call: "writer()",
            }),
            Ok(pool) => pool.get(),
            Err(no) => Err(no.error(&self.database)),
        }
    }

    /// Runs `f` in a transaction and returns once it committed: `Ok` means `f`'s work
    /// committed, `Err` means none of it did. On a split database, `f` joins the writer's group
    /// commit: it runs in a transaction shared with the writes that overlap it (on the thread of
    /// whichever caller leads the batch, or of the committer thread that leads for
    /// [`Handle::write_async`]), and the call returns after that transaction's COMMIT
    /// (see [`crate::commit`] and the README's table of errors). Elsewhere it runs alone in
    /// `BEGIN IMMEDIATE … COMMIT` on a pool connection, with the same checks. Inside `f`,
    /// `BEGIN`/`COMMIT`/`ROLLBACK` are refused ("not authorized"), nothing commits, and `write` or
    /// `writer()` on the same database fail at once with [`Error::Reentrant`]. A caller waits at
    /// most the writer's `connection_timeout` for `f` to start ([`Error::WriteTimeout`]).
    pub fn write<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut crate::commit::WriteConn<'_>) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        if let Some(commit) = &self.commit {
            return commit.write(f);
        }
        let pool = match &self.writer {
            Ok(pool) => pool,
            Err(no) => return Err(no.error(&self.database)),
        };
        crate::commit::write_alone(&self.database, pool, f, pool.timeout())
    }

    /// [`Handle::write`] for async code: the same closure, run on a thread of litepool's (never
    /// the task's), with the same answers, awaited instead of waited for. No runtime is needed:
    /// the future works on any executor and never blocks the thread that polls it.
    ///
    /// On a split database the job joins the writer's group commit like any `write`: it runs in
    /// the batch of whichever thread caller leads, or of the database's committer thread, which
    /// leads whenever async jobs are queued and no thread caller leads (it and a clock thread,
    /// which times out async callers, start with the first `write_async` and stop when the
    /// database's last handle is dropped, after the jobs already queued). Elsewhere it runs
    /// `BEGIN IMMEDIATE; f; COMMIT` on a worker thread (at most the pool's `max_size` of them,
    /// started as needed). `write_stats()` counts it like a `write`.
    ///
    /// The future does nothing until first polled; from then on it waits at most the writer's
    /// `connection_timeout` for `f` to start ([`Error::WriteTimeout`], [`Error::QueueFull`]).
    /// Polled from inside a write closure of the same database, it fails at once with
    /// [`Error::Reentrant`]; on a LiteFS replica, [`Error::NotPrimary`].
    ///
    /// **Dropping the future** before `f` started (while it is queued or waiting for room)
    /// takes the job out: `f` never runs and nothing of it commits (counted in `failed_writes`
    /// and `cancelled`). Dropped once `f` started, the work goes on: it commits with its batch
    /// if the batch commits (counted in `writes`), and nobody can be told. Code that must know
    /// (a request handler whose client may go away) should not drop the future: spawn it as a
    /// task of its own and await that.
    pub fn write_async<T, F>(
        &self,
        f: F,
    ) -> impl std::future::Future<Output = Result<T>> + Send + 'static
    where
        F: FnOnce(&mut crate::commit::WriteConn<'_>) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.write_future(f)
    }

    fn write_future<T, F>(&self, f: F) -> crate::commit::WriteFuture<T>
    where
        F: FnOnce(&mut crate::commit::WriteConn<'_>) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        if let Some(commit) = &self.commit {
            return commit.write_async(f);
        }
        match (&self.writer, &self.alone) {
            (Ok(_), Some(alone)) => alone.write_async(f),
            (Err(no), _) => crate::commit::WriteFuture::ready(Err(no.error(&self.database))),
            (Ok(_), None) => crate::commit::WriteFuture::ready(Err(Error::SplitDatabase {
                name: self.database.clone(),
            })),
        }
    }

    /// What the background checkpointer did (`checkpoint = "background"`).
    pub fn checkpoint_stats(&self) -> Option<crate::checkpoint::CheckpointStats> {
        self.checkpointer.as_ref().map(|c| c.stats())
    }

    /// The group commit's statistics, for a split database.
    pub fn write_stats(&self) -> Option<crate::commit::GroupCommitStats> {
        self.commit.as_ref().map(|c| c.stats())
    }

    /// A read-only connection of a split database (opened with `SQLITE_OPEN_READ_ONLY`,
    /// `query_only`, deferred transactions); for a database without a split, a connection from
    /// its pool. A write on it fails with "attempt to write a readonly database".
    pub fn reader(&self) -> Result<Conn> {
        self.reader.get()
    }
}

/// One r2d2 pool per configured database, each with a [`crate::PragmaCustomizer`] and statistics; a
/// database with a writer/readers split has two (`<name>.writer` and `<name>.readers`).
///
/// Cheap to clone (one reference count) and `Send + Sync + 'static`: keep it in an
/// application's state. The optimizer threads stop when the last clone is dropped.
/// [`Pools::reload`] puts a new configuration in force under every clone and every [`Handle`].
#[derive(Debug, Clone)]
pub struct Pools {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Every concrete pool, by its name (`jobs`, or `jobs.writer` and `jobs.readers`).
    pools: BTreeMap<String, NamedPool>,
    /// Every database, by its name.
    databases: BTreeMap<String, Handle>,
    optimizers: Vec<Optimizer>,
    /// Read replicas' samplers: stopped, not waited for, on drop.
    samplers: Vec<replica::Sampler>,
    watcher: Option<Watcher>,
    /// The settings in force (`Pools::settings`), replaced by `Pools::reload`.
    settings: std::sync::Mutex<Arc<Settings>>,
    /// Held by a reload: they run one at a time.
    reload: std::sync::Mutex<()>,
}

impl Drop for Inner {
    /// Stops the background threads and waits for them: they hold clones of the pools, so once
    /// they are gone, dropping the last `Pools` closes every connection before it returns (the
    /// last connection to a WAL database checkpoints it and removes `-wal` and `-shm` as it
    /// closes, which a read-only reader cannot: so readers close first, on this thread).
    fn drop(&mut self) {
        drop(std::mem::take(&mut self.samplers));
        let threads = self.optimizers.drain(..).map(|o| (o.stop, o.thread));
        drop(self.watcher.take());
        for (stop, thread) in threads {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            thread.thread().unpark();
            let _ = thread.join();
        }
        drop(std::mem::take(&mut self.databases));
        let (writers, readers): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pools)
            .into_values()
            .partition(|p| p.shared().writes);
        readers
            .into_iter()
            .chain(writers)
            .for_each(NamedPool::close);
    }
}

impl Pools {
    /// Checks every database file ([`preflight`]), then bootstraps and builds each pool.
    pub fn new(settings: &Settings) -> Result<Pools> {
        let files = preflight(settings)?;
        let mut pools = BTreeMap::new();
        let mut databases = BTreeMap::new();
        let mut optimizers = Vec::new();
        for (db, file) in settings.databases.values().zip(&files) {
            let background = background_checkpoints(db, file);
            let primary = litefs_primary(db)?;
            if let (Some(primary), None) = (&primary, &db.split) {
                return Err(Error::NotPrimary {
                    database: db.name.clone(),
                    primary: primary.clone(),
                });
            }
            if let Some(replica) = &db.replica {
                load_replica(db, replica, settings)?;
            }
            let mut opened: Vec<(PoolSpec, NamedPool)> = Vec::new();
            for spec in db.pools() {
                // On a LiteFS replica only the readers open; the writer lives on the primary.
                if primary.is_some() && spec.role == Role::Writer {
                    continue;
                }
                let pool = NamedPool::open(db, &spec)?;
                pools.insert(spec.name.clone(), pool.clone());
                opened.push((spec, pool));
            }
            let by_role = |role: Role| {
                opened
                    .iter()
                    .find(|(s, _)| s.role == role)
                    .map(|(_, p)| p.clone())
            };
            let origin = Arc::new(stats::Origin::new(db));
            let handle = match (by_role(Role::Writer), by_role(Role::Readers)) {
                (Some(writer), Some(reader)) => {
                    let background =
                        background.then(|| (db.path.as_path(), db.checkpoint_wal_size.bytes()));
                    let commit = db.split.as_ref().map(|s| {
                        Arc::new(crate::commit::GroupCommit::new(
                            &db.name,
                            writer.clone(),
                            s.group_commit,
                            s.writer_connection_timeout,
                            background,
                        ))
                    });
                    Handle {
                        database: db.name.clone(),
                        writer: Ok(writer),
                        reader,
                        split: true,
                        commit,
                        checkpointer: None,
                        alone: None,
                        origin: origin.clone(),
                    }
                }
                (None, Some(reader)) => Handle {
                    database: db.name.clone(),
                    writer: Err(match &db.replica {
                        Some(r) => NoWriter::ReadReplica(r.url.clone()),
                        None => NoWriter::Litefs(primary.clone().unwrap_or_default()),
                    }),
                    reader,
                    split: true,
                    commit: None,
                    checkpointer: None,
                    alone: None,
                    origin: origin.clone(),
                },
                _ => {
                    let single = opened[0].1.clone();
                    Handle {
                        database: db.name.clone(),
                        writer: Ok(single.clone()),
                        alone: Some(Arc::new(crate::commit::Alone::new(
                            &db.name,
                            single.clone(),
                        ))),
                        reader: single,
                        split: false,
                        commit: None,
                        checkpointer: None,
                        origin,
                    }
                }
            };
            let mut handle = handle;
            if background && primary.is_none() {
                let checkpointer = crate::checkpoint::Checkpointer::start(
                    &db.name,
                    &db.path,
                    db.checkpoint_wal_size.bytes(),
                )?;
                if let Ok(writer) = &handle.writer {
                    let _ = writer.inner.wal.set(checkpointer.watch(handle.split));
                }
                handle.checkpointer = Some(Arc::new(checkpointer));
            }
            if let (Some(interval), None) = (db.heartbeat, &db.replica) {
                optimizers.push(Optimizer::heartbeat(&handle, interval)?);
            }
            if let (Some(interval), Ok(writer)) = (
                db.split.as_ref().and_then(|s| s.optimize_interval),
                &handle.writer,
            ) {
                optimizers.push(Optimizer::start(writer, interval)?);
            }
            databases.insert(db.name.clone(), handle);
        }
        let samplers = pools
            .values()
            .filter_map(|p| replica::Sampler::start(p).transpose())
            .collect::<Result<Vec<_>>>()?;
        let watcher = Some(Watcher::start(
            pools
                .values()
                .map(|p: &NamedPool| Watched {
                    shared: p.shared().clone(),
                    tick: stats::metrics_tick(p, &databases),
                })
                .collect(),
        )?);
        Ok(Pools {
            inner: Arc::new(Inner {
                pools,
                databases,
                optimizers,
                samplers,
                watcher,
                settings: std::sync::Mutex::new(Arc::new(settings.clone())),
                reload: std::sync::Mutex::new(()),
            }),
        })
    }

    /// A concrete pool with its statistics: a database's name, or `<name>.writer` and
    /// `<name>.readers` for a split database.
    pub fn named(&self, name: &str) -> Result<&NamedPool> {
        self.inner
            .pools
            .get(name)
            .ok_or_else(|| Error::UnknownDatabase {
                name: name.to_owned(),
                known: self.inner.pools.keys().cloned().collect(),
            })
    }

    fn database(&self, name: &str) -> Result<&Handle> {
        self.inner
            .databases
            .get(name)
            .ok_or_else(|| Error::UnknownDatabase {
                name: name.to_owned(),
                known: self.inner.databases.keys().cloned().collect(),
            })
    }

    /// The database's pools, resolved once: `handle.get()`, `writer()` and `reader()` skip the
    /// lookup by name that [`Pools::get`] does on every call. Cheap to clone, `'static`.
    pub fn handle(&self, name: &str) -> Result<Handle> {
        self.database(name).cloned()
    }

    /// A connection from the named database. A split database refuses: use [`Pools::writer`] or
    /// [`Pools::reader`]. A timeout says why ([`Error::Timeout`]).
    pub fn get(&self, name: &str) -> Result<Conn> {
        self.database(name)?.get()
    }

    /// The one writer connection of a split database (immediate transactions), waiting for it if
    /// another caller has it; for a database without a split, a connection from its pool.
    pub fn writer(&self, name: &str) -> Result<Conn> {
        self.database(name)?.writer()
    }

    /// A read-only connection of a split database; for a database without a split, a connection
    /// from its pool. A write on it fails with SQLite's "attempt to write a readonly database".
    pub fn reader(&self, name: &str) -> Result<Conn> {
        self.database(name)?.reader()
    }

    /// [`Handle::write`] on the named database: group commit on a split database.
    pub fn write<T, F>(&self, name: &str, f: F) -> Result<T>
    where
        F: FnOnce(&mut crate::commit::WriteConn<'_>) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.database(name)?.write(f)
    }

    /// [`Handle::write_async`] on the named database: an unknown name resolves to
    /// [`Error::UnknownDatabase`] at the first poll.
    pub fn write_async<T, F>(
        &self,
        name: &str,
        f: F,
    ) -> impl std::future::Future<Output = Result<T>> + Send + 'static
    where
        F: FnOnce(&mut crate::commit::WriteConn<'_>) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        match self.database(name) {
            Ok(handle) => handle.write_future(f),
            Err(e) => crate::commit::WriteFuture::ready(Err(e)),
        }
    }

    /// The r2d2 pool of [`Pools::named`].
    pub fn pool(&self, name: &str) -> Result<Pool<Manager>> {
        Ok(self.named(name)?.pool())
    }

    /// The configured database names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.inner.databases.keys().map(String::as_str)
    }
}

/// True when `checkpoint = "background"` can do anything for `db`: the profile asks for WAL, or
/// leaves the journal mode as the file has it and the file is in WAL mode. Otherwise (a new file
/// or a rollback-journal file, with `journal_mode` unset) there is no WAL to checkpoint: no
/// checkpointer starts, `checkpoint_stats()` is `None`, and a warning says so.
fn background_checkpoints(db: &DatabaseSettings, file: &FileState) -> bool {
    if !db.background_checkpoints() {
        return false;
    }
    if db.profile.pragmas().journal_mode.is_some() {
        return true; // WAL, by `background_checkpoints()`
    }
    let wal = matches!(file, FileState::Database { wal: true, .. });
    if !wal {
        tracing::warn!(database = %db.name, "checkpoint = \"background\" has no effect: journal_mode is not set and the file is not in WAL mode (set journal_mode = \"wal\")");
    }
    wal
}
