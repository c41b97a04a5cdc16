//! Settings: where they come from. Layered TOML, per environment, with environment overrides.
//!
//! 1. `{dir}/default.toml` (required),
//! 2. `{dir}/{env}.toml` (optional),
//! 3. environment variables `LITEPOOL__…`, `__` separating keys:
//!    `LITEPOOL__DATABASES__JOBS__POOL__MAX_SIZE=4`.
//!
//! `env` comes from [`Loader::env`], else `LITEPOOL_ENV`, else `development`; `dir` from
//! [`Loader::dir`], else `LITEPOOL_CONFIG_DIR`, else `config`.
//!
//! Each source is first deserialized on its own, so an unknown key or a bad value is reported with
//! the one file or variable it came from; then the layers are merged and cross-checked (profile
//! names, pool sizes, unsafe values). All validation happens here: nothing touches a database
//! file until settings have loaded.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, ConfigError, Environment, File, FileFormat};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pragma::{ByteSize, Lifetime, Timeout, TransactionMode};
use crate::profile::{PragmaSet, Profile};

mod bench;
mod identity;
mod layers;
mod names;
mod replica;
mod resolve;
mod sources;
mod spec;
use crate::strict;
pub use bench::{BenchTransaction, ParamGen, Workload};
use identity::*;
use layers::*;
use names::*;
pub use names::{invalid_name, DATABASE_NAME_RULE, MAX_DATABASE_NAME};
pub use replica::{for_replica, ReadReplica, NOT_ON_A_REPLICA, REPLICA_SCHEMES};
pub use resolve::MAX_SOCKET_PATH;
use resolve::*;
use sources::*;
pub use sources::{Loader, MAX_FILE_BYTES, MAX_KEY_DEPTH, MAX_NAME_BYTES, MAX_VALUE_BYTES};
pub use spec::{writer_and_reader, GroupCommitSettings, PoolSpec, Role};

const ENV_PREFIX: &str = "LITEPOOL";
const SEP: &str = "__";

/// r2d2 settings of one pool. Defaults suit local SQLite files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PoolSettings {
    /// Most connections the pool holds. Default: 10 (r2d2's). From 1.
    pub max_size: u32,
    /// Idle connections the pool keeps ready. Default: none, i.e. `max_size` (r2d2's).
    pub min_idle: Option<u32>,
    /// How long `get()` waits for a connection. Default: 30s (r2d2's).
    pub connection_timeout: Duration,
    /// Close connections idle this long. Default: 10m (r2d2's); `"off"` disables.
    pub idle_timeout: Option<Duration>,
    /// Close connections this old. Default: 30m (r2d2's); `"off"` disables.
    pub max_lifetime: Option<Duration>,
    /// Run a query on every checkout to test the connection. Default: **false** (r2d2's is true).
    /// A local SQLite connection does not go stale the way a network connection does, and the
    /// test (`SELECT 1`) is paid on every checkout: measured in `benches/acquire.rs` on a 2-core
    /// machine, a warm checkout took 1290ns with it and 262ns without, against 4.05µs for
    /// checkout plus a point read by primary key.
    pub test_on_check_out: bool,
    /// Collect [`crate::PoolStats`]: an r2d2 event and error handler, and page-cache sampling
    /// at check-in. Default: true. Costs about 50ns per checkout (see the README).
    pub stats: bool,
}

/// The most connections one pool may hold: each is an open file and a page cache.
pub const MAX_POOL_SIZE: u32 = 1000;

/// The longest `connection_timeout`: a day (r2d2 adds it to `Instant::now()`).
pub const MAX_CONNECTION_TIMEOUT: Duration = Duration::from_secs(86_400);

impl PoolSettings {
    /// Checks the values r2d2's builder would panic on, and the bounds litepool sets:
    /// `max_size` 1 to [`MAX_POOL_SIZE`], `min_idle` at most `max_size`, `connection_timeout`
    /// above 0 and at most [`MAX_CONNECTION_TIMEOUT`], `idle_timeout` and `max_lifetime` above 0.
    pub fn validate(&self) -> Result<()> {
        let bad = |key, value: String, allowed: &str| {
            Err(Error::PoolSetting {
                key,
                value,
                allowed: allowed.to_owned(),
            })
        };
        if !(1..=MAX_POOL_SIZE).contains(&self.max_size) {
            return bad("max_size", self.max_size.to_string(), "1 to 1000");
        }
        if let Some(min) = self.min_idle.filter(|&m| m > self.max_size) {
            return bad(
                "min_idle",
                min.to_string(),
                &format!("at most max_size ({})", self.max_size),
            );
        }
        let t = self.connection_timeout;
        if t.is_zero() || t > MAX_CONNECTION_TIMEOUT {
            return bad(
                "connection_timeout",
                format!("{t:?}"),
                "above 0 and at most 1 day",
            );
        }
        if self.idle_timeout.is_some_and(|d| d.is_zero()) {
            return bad("idle_timeout", "0s".into(), "above 0, or \"off\"");
        }
        if self.max_lifetime.is_some_and(|d| d.is_zero()) {
            return bad("max_lifetime", "0s".into(), "above 0, or \"off\"");
        }
        Ok(())
    }
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_size: 10,
            min_idle: None,
            connection_timeout: Duration::from_secs(30),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            test_on_check_out: false,
            stats: true,
        }
    }
}

crate::pragma::pragma_enum! {
    /// How much a database's commits must survive, for `litepool check`'s lint. Default: normal.
    Durability, what = "durability", {
        /// Losing the last commits on a power failure is acceptable.
        Normal = ("normal", 0),
        /// Every commit must survive a power failure (e.g. an audit log): synchronous FULL.
        Strict = ("strict", 1),
    }
}

crate::pragma::pragma_enum! {
    /// How a database is replicated, for `litepool check`'s lint and `litepool litestream`.
    /// Default: none.
    Replication, what = "replication", {
        /// Not replicated.
        None = ("none", 0),
        /// Litestream 0.5 (the current release) copies the WAL to a replica
        /// (<https://litestream.io/tips/>) and checkpoints the database itself.
        Litestream = ("litestream", 1),
        /// The file lives on a LiteFS mount (<https://fly.io/docs/litefs/>): only the primary
        /// node writes.
        Litefs = ("litefs", 2),
        /// Litestream 0.3 (`litestream-0.3`), whose configuration and checkpoint advice differ
        /// from 0.5's.
        Litestream03 = ("litestream-0.3", 3),
    }
}

impl Replication {
    /// The Litestream release the database is replicated by, if any.
    pub fn litestream(self) -> Option<LitestreamVersion> {
        match self {
            Replication::Litestream => Some(LitestreamVersion::V05),
            Replication::Litestream03 => Some(LitestreamVersion::V03),
            Replication::None | Replication::Litefs => None,
        }
    }
}

/// A Litestream release whose configuration format and rules litepool follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum LitestreamVersion {
    /// Litestream 0.3 (`replication = "litestream-0.3"`).
    V03,
    /// Litestream 0.5 (`replication = "litestream"`).
    V05,
}

impl LitestreamVersion {
    /// `"0.3"` or `"0.5"`.
    pub fn as_str(self) -> &'static str {
        match self {
            LitestreamVersion::V03 => "0.3",
            LitestreamVersion::V05 => "0.5",
        }
    }

    /// Characters this release misreads in a database path, because it opens the database
    /// through a connection string it builds without escaping: 0.3.13 appends
    /// `?_busy_timeout=…` to the path (its driver ends the path at the first `?`); 0.5 opens
    /// `file:<path>?_pragma=…` (a URI: `?` and `#` end the path, `%41` is `A`). Either then opens
    /// another file or none (seen with the real binaries; `replication-path` in the lint).
    pub fn misread_path_chars(self) -> &'static [char] {
        match self {
            LitestreamVersion::V03 => &['?'],
            LitestreamVersion::V05 => &['?', '#', '%'],
        }
    }

    /// The `replication` value that means this release.
    pub fn replication(self) -> Replication {
        match self {
            LitestreamVersion::V03 => Replication::Litestream03,
            LitestreamVersion::V05 => Replication::Litestream,
        }
    }
}

impl std::fmt::Display for LitestreamVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LitestreamVersion {
    type Err = crate::error::ParseValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "0.3" => Ok(LitestreamVersion::V03),
            "0.5" => Ok(LitestreamVersion::V05),
            _ => Err(crate::error::ParseValueError::new(
                "litestream format",
                s,
                "one of 0.3, 0.5",
            )),
        }
    }
}

crate::pragma::pragma_enum! {
    /// Who checkpoints the WAL. Default: sqlite.
    Checkpoint, what = "checkpoint", {
        /// SQLite, inside the commit that passes `wal_autocheckpoint`.
        Sqlite = ("sqlite", 0),
        /// A litepool thread, off the commit path (`litepool::checkpoint`).
        Background = ("background", 1),
    }
}

/// Unix permissions for a database file litepool creates, in octal (`"0600"`). Default: 0600.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(pub u32);

impl std::str::FromStr for FileMode {
    type Err = crate::error::ParseValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        u32::from_str_radix(t.strip_prefix("0o").unwrap_or(t), 8)
            .ok()
            .filter(|m| *m <= 0o777 && !t.is_empty())
            .map(FileMode)
            .ok_or_else(|| {
                crate::error::ParseValueError::new(
                    "file_mode",
                    s,
                    "octal permissions from 0000 to 0777, e.g. \"0600\"",
                )
            })
    }
}

impl std::fmt::Display for FileMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

crate::pragma::deserialize_from_str!(FileMode, "octal permissions such as \"0600\"");

/// A database split into one writer connection and a pool of read-only readers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Split {
    /// How long a writer waits for the one writer connection. Default: the pool's.
    pub writer_connection_timeout: Duration,
    /// The writer's transaction behaviour. Default: immediate.
    pub writer_transaction_behavior: TransactionMode,
    /// Run `PRAGMA optimize` on the writer this often, when it is free. Default: off.
    pub optimize_interval: Option<Duration>,
    /// The readers' pool (`query_only = true`). Default: the database's `pool` settings.
    pub readers: PoolSettings,
    /// Group commit on the writer (`Handle::write`).
    pub group_commit: GroupCommitSettings,
}

impl Split {
    /// A split with the defaults: the writer waits as long as `pool` does, immediate
    /// transactions, no periodic optimize, readers with `pool`'s settings.
    pub fn new(pool: &PoolSettings) -> Split {
        Split {
            writer_connection_timeout: pool.connection_timeout,
            writer_transaction_behavior: TransactionMode::Immediate,
            optimize_interval: None,
            readers: pool.clone(),
            group_commit: GroupCommitSettings::default(),
        }
    }
}

/// One configured database, fully resolved and validated.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DatabaseSettings {
    /// The name, the key under `[databases]`.
    pub name: String,
    /// The file. Relative paths resolve against the working directory.
    pub path: PathBuf,
    /// Create the file when it does not exist. Default: true.
    pub create_if_missing: bool,
    /// Run `PRAGMA quick_check` on an existing file before litepool first writes to it (the
    /// journal switch, file-level pragmas), and refuse a damaged file. Default: true. It reads
    /// the whole file: 0.23–0.33 s for a 396 MB file in the OS cache (`cargo run --release
    /// --example quick_check -- 400`), bounded by read speed from a cold disk; set false to skip
    /// it on very large files.
    pub check_integrity: bool,
    /// The profile, merged with the database's own `pragmas`.
    pub profile: Profile,
    /// The pool settings.
    pub pool: PoolSettings,
    /// Permissions of a file litepool creates. Default: 0600.
    pub file_mode: FileMode,
    /// How much commits must survive, for the lint. Default: normal.
    pub durability: Durability,
    /// How the database is replicated. Default: none.
    pub replication: Replication,
    /// Who checkpoints the WAL. Default: sqlite.
    pub checkpoint: Checkpoint,
    /// With `checkpoint = "background"`, the WAL size past which a PASSIVE checkpoint runs.
    /// Default: 4MiB.
    pub checkpoint_wal_size: ByteSize,
    /// The writer/readers split, if `[databases.<name>.writer]` or `.readers` is present. A
    /// read replica has one, without a writer.
    pub split: Option<Split>,
    /// Set for a read replica (`replica_url`): readers only, through Litestream's VFS; `path`
    /// then holds the URL, and no local file is opened. Default: none.
    pub replica: Option<ReadReplica>,
    /// On a replicated primary: write the time into table `litepool_heartbeat` this often
    /// (100ms to 1h), through the write path, so that read replicas can tell how far behind
    /// they are ([`crate::staleness`]). Default: off.
    pub heartbeat: Option<Duration>,
}

impl DatabaseSettings {
    /// A read replica: readers only, reading the Litestream replica at `replica` through
    /// Litestream's VFS (see [`ReadReplica`]). [`Settings::from_databases`] refuses a profile
    /// that sets a key of [`NOT_ON_A_REPLICA`].
    pub fn read_replica(name: impl Into<String>, replica: ReadReplica, profile: Profile) -> Self {
        let mut db = DatabaseSettings::new(name, PathBuf::from(&replica.url), profile);
        db.split = Some(Split::new(&db.pool));
        db.replica = Some(replica);
        db
    }

    /// A plain database: the given profile, default pool, no split.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>, profile: Profile) -> Self {
        DatabaseSettings {
            name: name.into(),
            path: path.into(),
            create_if_missing: true,
            check_integrity: true,
            profile,
            pool: PoolSettings::default(),
            file_mode: FileMode(0o600),
            durability: Durability::Normal,
            replication: Replication::None,
            checkpoint: Checkpoint::Sqlite,
            checkpoint_wal_size: ByteSize(4 << 20),
            split: None,
            replica: None,
            heartbeat: None,
        }
    }
}

/// Loaded, validated settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// The environment name, e.g. `development`.
    pub env: String,
    /// The configuration directory.
    pub dir: PathBuf,
    /// The sources that were read, in order.
    pub sources: Vec<String>,
    /// The named profiles of `[profiles.<name>]`, each validated on its own.
    pub profiles: BTreeMap<String, Profile>,
    /// The databases, by name.
    pub databases: BTreeMap<String, DatabaseSettings>,
    /// `limits.memory_budget`: the most page-cache memory all pools may take. Default: none.
    pub memory_budget: Option<ByteSize>,
    /// Configured keys that have no effect (shadowed or ignored), for `litepool check`.
    pub ignored: Vec<Ignored>,
    /// `[bench.workloads.<name>]`: the user's own queries for `litepool bench`, by name.
    pub workloads: BTreeMap<String, Workload>,
    /// `litestream.vfs`: the file of Litestream's VFS extension (`litestream-vfs.so`), loaded
    /// once per process for the read replicas. Default: none.
    pub litestream_vfs: Option<PathBuf>,
    /// `[admin] socket`: where `Pools::serve_configured_admin` serves the admin socket
    /// (feature `admin`). Default: none.
    pub admin_socket: Option<PathBuf>,
}

/// A configured key that has no effect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Ignored {
    /// The dotted key.
    pub key: String,
    /// The file or environment variable that set it.
    pub origin: String,
    /// Why it has no effect.
    pub reason: String,
}

impl Settings {
    /// Settings built in code: `databases` with their profiles, validated as strictly as a
    /// file (pool settings, two databases on one file). `profiles` lists named profiles for
    /// `litepool bench`-style lookups; it may be empty.
    pub fn from_databases(
        databases: impl IntoIterator<Item = DatabaseSettings>,
        memory_budget: Option<ByteSize>,
    ) -> Result<Settings> {
        let mut map = BTreeMap::new();
        for db in databases {
            let name = db.name.clone();
            if map.insert(name.clone(), db).is_some() {
                return Err(Error::Config {
                    origin: "code".into(),
                    key: Some(name_key(&name)),
                    message: format!("database {name:?} is given twice: names must be distinct"),
                });
            }
        }
        let mut databases = map;
        if databases.is_empty() {
            return Err(config_err("code", "no databases: expected at least one"));
        }
        let mut url: Option<(String, String)> = None;
        for db in databases.values_mut() {
            let key = |k: &str| Some(format!("databases.{}.{k}", db.name));
            if let Some(t) = db.heartbeat.filter(|t| {
                *t < Duration::from_millis(100)
                    || *t > Duration::from_secs(3600)
                    || db.replication != Replication::Litestream
                    || db.replica.is_some()
            }) {
                return Err(Error::Config {
                    origin: "code".into(),
                    key: key("heartbeat"),
                    message: format!("invalid heartbeat {t:?}: expected 100ms to 1h, on a database Litestream 0.5 replicates (replication = \"litestream\")"),
                });
            }
            let Some(replica) = &db.replica else { continue };
            if let Some((first, u)) = url.as_ref().filter(|(_, u)| *u != replica.url) {
                return Err(Error::Config {
                    origin: "code".into(),
                    key: key("replica_url"),
                    message: format!("replica_url {:?} differs from databases.{first}.replica_url {u:?}: Litestream's VFS reads one replica per process", replica.url),
                });
            }
            url.get_or_insert_with(|| (db.name.clone(), replica.url.clone()));
            if let Some((pragma, why)) = NOT_ON_A_REPLICA
                .iter()
                .find(|(k, _)| db.profile.pragmas().sets(k))
            {
                return Err(Error::Config {
                    origin: "code".into(),
                    key: key(&format!("pragmas.{pragma}")),
                    message: format!("{pragma} cannot apply to read replica {:?}: {why}", db.name),
                });
            }
            db.path = PathBuf::from(&replica.url);
            db.split.get_or_insert_with(|| Split::new(&db.pool));
            db.replication = Replication::None;
            db.checkpoint = Checkpoint::Sqlite;
        }
        check_names(&databases).map_err(|(name, message)| Error::Config {
            origin: "code".into(),
            key: Some(name_key(&name)),
            message,
        })?;
        for db in databases.values() {
            for spec in db.pools() {
                spec.pool.validate().map_err(|e| Error::At {
                    origin: "code".into(),
                    key: format!("databases.{}.pool", spec.name),
                    source: Box::new(e),
                })?;
            }
        }
        distinct_files(&databases)?;
        let profiles = databases
            .values()
            .map(|d| (d.profile.name().to_owned(), d.profile.clone()))
            .collect();
        Ok(Settings {
            env: "none".into(),
            dir: PathBuf::new(),
            sources: vec!["code".into()],
            profiles,
            databases,
            memory_budget,
            ignored: Vec::new(),
            workloads: BTreeMap::new(),
            litestream_vfs: None,
            admin_socket: None,
        })
    }
}

impl Settings {
    /// Loads with the defaults described in the module docs.
    pub fn load() -> Result<Settings> {
        Loader::default().load()
    }

    /// A loader to set the directory, environment name or environment variables.
    pub fn loader() -> Loader {
        Loader::default()
    }
}

#[cfg(test)]
mod tests {
    use super::{LitestreamVersion, Replication};

    #[test]
    fn litestream_releases_round_trip_and_map_to_replication() -> Result<(), String> {
        for v in [LitestreamVersion::V03, LitestreamVersion::V05] {
            let parsed: LitestreamVersion = v.as_str().parse().map_err(|e| format!("{e}"))?;
            assert_eq!(parsed, v);
            assert_eq!(v.replication().litestream(), Some(v));
        }
        assert_eq!(
            "litestream"
                .parse::<Replication>()
                .map_err(|e| format!("{e}"))?,
            Replication::Litestream
        );
        assert_eq!(
            "litestream-0.3"
                .parse::<Replication>()
                .map_err(|e| format!("{e}"))?
                .litestream(),
            Some(LitestreamVersion::V03)
        );
        assert_eq!(Replication::Litefs.litestream(), None);
        assert_eq!(Replication::None.litestream(), None);
        assert_eq!(
            "0.4".parse::<LitestreamVersion>().unwrap_err().to_string(),
            "invalid litestream format \"0.4\": expected one of 0.3, 0.5"
        );
        assert_eq!(LitestreamVersion::V03.misread_path_chars(), &['?']);
        assert_eq!(
            LitestreamVersion::V05.misread_path_chars(),
            &['?', '#', '%']
        );
        Ok(())
    }
}
