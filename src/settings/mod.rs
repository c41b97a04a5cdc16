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
mod spec;
use crate::strict;
pub use bench::{BenchTransaction, ParamGen, Workload};
pub use spec::{writer_and_reader, GroupCommitSettings, PoolSpec, Role};

const ENV_PREFIX: &str = "LITEPOOL";
const SEP: &str = "__";

/// The raw shape of one configuration layer: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    #[serde(default)]
    profiles: BTreeMap<String, PragmaSet>,
    #[serde(default)]
    databases: BTreeMap<String, DatabaseLayer>,
    #[serde(default)]
    limits: LimitsLayer,
    #[serde(default)]
    bench: bench::BenchLayer,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseLayer {
    #[serde(default, deserialize_with = "strict::path")]
    path: Option<PathBuf>,
    #[serde(default, deserialize_with = "strict::string")]
    profile: Option<String>,
    create_if_missing: Option<bool>,
    check_integrity: Option<bool>,
    file_mode: Option<FileMode>,
    durability: Option<Durability>,
    replication: Option<Replication>,
    checkpoint: Option<Checkpoint>,
    checkpoint_wal_size: Option<ByteSize>,
    #[serde(default)]
    pragmas: PragmaSet,
    #[serde(default)]
    pool: PoolLayer,
    writer: Option<WriterLayer>,
    readers: Option<PoolLayer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WriterLayer {
    connection_timeout: Option<Timeout>,
    transaction_behavior: Option<TransactionMode>,
    optimize_interval: Option<Lifetime>,
    #[serde(default, deserialize_with = "strict::count")]
    queue_size: Option<u32>,
    #[serde(default, deserialize_with = "strict::count")]
    max_batch: Option<u32>,
    max_batch_time: Option<Timeout>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolLayer {
    #[serde(default, deserialize_with = "strict::count")]
    max_size: Option<u32>,
    #[serde(default, deserialize_with = "strict::count")]
    min_idle: Option<u32>,
    connection_timeout: Option<Timeout>,
    idle_timeout: Option<Lifetime>,
    max_lifetime: Option<Lifetime>,
    test_on_check_out: Option<bool>,
    stats: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsLayer {
    memory_budget: Option<ByteSize>,
}

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
        /// Litestream copies the WAL to a replica (<https://litestream.io/tips/>).
        Litestream = ("litestream", 1),
        /// The file lives on a LiteFS mount (<https://fly.io/docs/litefs/>): only the primary
        /// node writes.
        Litefs = ("litefs", 2),
    }
}

crate::pragma::pragma_enum! {
    /// Who checkpoints the WAL. Default: sqlite.
    Checkpoint, what = "checkpoint", {
        /// SQLite, inside the commit that passes `wal_autocheckpoint`.
        Sqlite = ("sqlite", 0),
        /// A litepool thread, off the commit path ([`crate::checkpoint`]).
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
    /// Group commit on the writer ([`crate::Handle::write`]).
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
    /// The writer/readers split, if `[databases.<name>.writer]` or `.readers` is present.
    pub split: Option<Split>,
}

impl DatabaseSettings {
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

/// What identifies a file: its device and inode when it exists, else its canonical path.
#[derive(Debug, PartialEq, Eq)]
enum FileId {
    #[cfg(unix)]
    Inode(u64, u64),
    Path(PathBuf),
}

/// `path` with symbolic links in its last component followed, even when they dangle (at most
/// 40, as the kernel allows).
fn follow_links(path: &Path) -> PathBuf {
    let mut p = path.to_owned();
    for _ in 0..40 {
        match std::fs::read_link(&p) {
            Ok(target) if target.is_absolute() => p = target,
            Ok(target) => p = p.parent().unwrap_or(Path::new("")).join(target),
            Err(_) => break,
        }
    }
    p
}

fn file_id(path: &Path) -> FileId {
    #[cfg(unix)]
    if let Ok(m) = std::fs::metadata(path) {
        use std::os::unix::fs::MetadataExt;
        return FileId::Inode(m.dev(), m.ino());
    }
    if let Ok(p) = std::fs::canonicalize(path) {
        return FileId::Path(p);
    }
    // A file still to be created (or a link to one): its directory, resolved, and its name.
    let path = follow_links(path);
    let path = path.as_path();
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = parent.map_or_else(
        || std::env::current_dir().unwrap_or_default(),
        |p| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned()),
    );
    FileId::Path(dir.join(path.file_name().unwrap_or_default()))
}

/// Refuses two databases on one file (the same path, a path through `..` or a symbolic link, a
/// hard link): one file is one database with one profile. Reads metadata only.
fn distinct_files(databases: &BTreeMap<String, DatabaseSettings>) -> Result<()> {
    let ids: Vec<(&DatabaseSettings, FileId)> = databases
        .values()
        .map(|db| (db, file_id(&db.path)))
        .collect();
    for (i, (a, id_a)) in ids.iter().enumerate() {
        if let Some((b, _)) = ids[i + 1..].iter().find(|(_, id_b)| id_b == id_a) {
            return Err(Error::SameFile {
                first: a.name.clone(),
                second: b.name.clone(),
                path: b.path.clone(),
            });
        }
    }
    Ok(())
}

impl Settings {
    /// Settings built in code: `databases` with their profiles, validated as strictly as a
    /// file (pool settings, two databases on one file). `profiles` lists named profiles for
    /// `litepool bench`-style lookups; it may be empty.
    pub fn from_databases(
        databases: impl IntoIterator<Item = DatabaseSettings>,
        memory_budget: Option<ByteSize>,
    ) -> Result<Settings> {
        let databases: BTreeMap<String, DatabaseSettings> =
            databases.into_iter().map(|d| (d.name.clone(), d)).collect();
        if databases.is_empty() {
            return Err(config_err("code", "no databases: expected at least one"));
        }
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

/// Limits on configuration input, checked before it is parsed: a key is at most
/// [`MAX_KEY_DEPTH`] levels deep, an environment variable's name at most [`MAX_NAME_BYTES`]
/// bytes and its value at most [`MAX_VALUE_BYTES`], a file at most [`MAX_FILE_BYTES`].
pub const MAX_KEY_DEPTH: usize = 6;
/// See [`MAX_KEY_DEPTH`].
pub const MAX_NAME_BYTES: usize = 256;
/// See [`MAX_KEY_DEPTH`].
pub const MAX_VALUE_BYTES: usize = 65_536;
/// See [`MAX_KEY_DEPTH`].
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Builds [`Settings`] from layered sources.
#[derive(Debug, Default, Clone)]
pub struct Loader {
    dir: Option<PathBuf>,
    env: Option<String>,
    vars: Option<HashMap<String, String>>,
}

fn config_err(origin: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Config {
        origin: origin.into(),
        key: None,
        message: message.into(),
    }
}

impl Loader {
    /// The configuration directory. Default: `LITEPOOL_CONFIG_DIR`, else `config`.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// The environment name. Default: `LITEPOOL_ENV`, else `development`.
    pub fn env(mut self, env: impl Into<String>) -> Self {
        self.env = Some(env.into());
        self
    }

    /// Use these variables instead of the process environment (for tests).
    pub fn vars(mut self, vars: HashMap<String, String>) -> Self {
        self.vars = Some(vars);
        self
    }

    /// One variable, as text. A variable that is not UTF-8 is an error naming it.
    fn var(&self, name: &str) -> Result<Option<String>> {
        match &self.vars {
            Some(v) => Ok(v.get(name).cloned()),
            None => match std::env::var_os(name) {
                None => Ok(None),
                Some(os) => os.into_string().map(Some).map_err(|_| {
                    config_err(
                        format!("environment variable {name}"),
                        "the value is not valid UTF-8",
                    )
                }),
            },
        }
    }

    /// The `LITEPOOL__…` variables, sorted. Other variables are not read at all, whatever
    /// bytes they hold; a `LITEPOOL__…` one that is not UTF-8, too long or too deep is an error
    /// naming it.
    fn litepool_vars(&self) -> Result<Vec<(String, String)>> {
        let prefix = format!("{ENV_PREFIX}{SEP}");
        let mut out = Vec::new();
        let mut take = |name: String, value: String| -> Result<()> {
            let origin = || format!("environment variable {name}");
            if name.len() > MAX_NAME_BYTES {
                return Err(config_err(
                    format!("environment variable {}…", &name[..40]),
                    format!(
                        "the name is {} bytes long; at most {MAX_NAME_BYTES} are allowed",
                        name.len()
                    ),
                ));
            }
            let depth = name[prefix.len()..].split(SEP).count();
            if depth > MAX_KEY_DEPTH {
                return Err(config_err(
                    origin(),
                    format!("the key is {depth} levels deep; at most {MAX_KEY_DEPTH} are allowed (e.g. LITEPOOL__DATABASES__JOBS__POOL__MAX_SIZE)"),
                ));
            }
            if value.len() > MAX_VALUE_BYTES {
                return Err(config_err(
                    origin(),
                    format!(
                        "the value is {} bytes long; at most {MAX_VALUE_BYTES} are allowed",
                        value.len()
                    ),
                ));
            }
            out.push((name, value));
            Ok(())
        };
        match &self.vars {
            Some(v) => {
                for (k, v) in v.iter().filter(|(k, _)| k.starts_with(&prefix)) {
                    take(k.clone(), v.clone())?;
                }
            }
            None => {
                for (k, v) in std::env::vars_os() {
                    if !k.as_encoded_bytes().starts_with(prefix.as_bytes()) {
                        continue;
                    }
                    let name = k.into_string().map_err(|k| {
                        config_err(
                            format!("environment variable {}", k.to_string_lossy()),
                            "the name is not valid UTF-8",
                        )
                    })?;
                    let value = v.into_string().map_err(|_| {
                        config_err(
                            format!("environment variable {name}"),
                            "the value is not valid UTF-8",
                        )
                    })?;
                    take(name, value)?;
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Reads, layers and validates every source.
    pub fn load(self) -> Result<Settings> {
        let (env, explicit) = match self
            .env
            .clone()
            .map(Some)
            .unwrap_or(self.var("LITEPOOL_ENV")?)
        {
            Some(env) => (env, true),
            None => ("development".to_owned(), false),
        };
        if env.is_empty()
            || env.len() > 64
            || !env
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(config_err(
                "environment name",
                format!("invalid environment name {env:?}: expected 1 to 64 letters, digits, '-' or '_'"),
            ));
        }
        let dir = match &self.dir {
            Some(d) => d.clone(),
            None => match &self.vars {
                Some(v) => v.get("LITEPOOL_CONFIG_DIR").map(PathBuf::from),
                None => std::env::var_os("LITEPOOL_CONFIG_DIR").map(PathBuf::from),
            }
            .unwrap_or_else(|| PathBuf::from("config")),
        };

        let default = dir.join("default.toml");
        let mut layers: Vec<(String, Config)> = Vec::new();
        match read_config_file(&default)? {
            Some(text) => layers.push(file_layer(&default, &text)?),
            None => return Err(config_err(
                default.display().to_string(),
                "file not found: default.toml is required (set --config or LITEPOOL_CONFIG_DIR)",
            )),
        }
        let env_file = dir.join(format!("{env}.toml"));
        match read_config_file(&env_file)? {
            Some(text) => layers.push(file_layer(&env_file, &text)?),
            None if explicit => {
                let known = environments(&dir);
                return Err(config_err(
                    env_file.display().to_string(),
                    format!(
                        "file not found: environment {env:?} has no {env}.toml; environments in {}: {}",
                        dir.display(),
                        if known.is_empty() { "(none)".to_owned() } else { known.join(", ") }
                    ),
                ));
            }
            None => {}
        }
        for (name, value) in self.litepool_vars()? {
            let origin = format!("environment variable {name}");
            let one = HashMap::from([(name, value)]);
            layers.push((
                origin.clone(),
                build(Config::builder().add_source(environment(one)), &origin)?,
            ));
        }
        load_layers(layers, env, dir)
    }
}

/// Settings from one TOML document, without files or environment variables: for defaults
/// embedded in an application, and for tests. Errors name the origin `TOML string`.
impl Settings {
    /// Parses, validates and resolves `text` as the only configuration source.
    pub fn from_toml(text: &str) -> Result<Settings> {
        let origin = "TOML string";
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(config_err(
                origin,
                format!(
                    "the text is {} bytes long; at most {MAX_FILE_BYTES} are allowed",
                    text.len()
                ),
            ));
        }
        let layer = build(
            Config::builder().add_source(File::from_str(text, FileFormat::Toml)),
            origin,
        )?;
        load_layers(
            vec![(origin.to_owned(), layer)],
            "none".into(),
            PathBuf::new(),
        )
    }
}

/// Reads a configuration file: `None` when there is nothing at `path`; an error naming it when it
/// is not a regular file (a directory, a FIFO, a device, a dangling symlink), is unreadable, too
/// large or not UTF-8. Nothing is opened before its type is known, so a FIFO cannot block.
fn read_config_file(path: &Path) -> Result<Option<String>> {
    let origin = || path.display().to_string();
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(config_err(origin(), format!("cannot read it: {e}"))),
        Ok(_) => {}
    }
    let meta = std::fs::metadata(path).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            "it is a symbolic link to a file that does not exist".to_owned()
        } else {
            format!("cannot read it: {e}")
        };
        config_err(origin(), why)
    })?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "a special file (FIFO, socket or device)"
        };
        return Err(config_err(
            origin(),
            format!("not a regular file: it is {what}; expected a TOML file"),
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(config_err(
            origin(),
            format!(
                "the file is {} bytes long; at most {MAX_FILE_BYTES} are allowed",
                meta.len()
            ),
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| config_err(origin(), format!("cannot read it: {e}")))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| config_err(origin(), "the file is not valid UTF-8"))
}

fn file_layer(path: &Path, text: &str) -> Result<(String, Config)> {
    let origin = path.display().to_string();
    let config = build(
        Config::builder().add_source(File::from_str(text, FileFormat::Toml)),
        &origin,
    )?;
    Ok((origin, config))
}

/// The environments of a configuration directory: its `*.toml` files but `default.toml`.
fn environments(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".toml")?;
            (stem != "default").then(|| stem.to_owned())
        })
        .collect();
    out.sort();
    out
}

/// Deserializes each layer alone (so that errors name their own file or variable), merges them
/// and resolves the result.
fn load_layers(layers: Vec<(String, Config)>, env: String, dir: PathBuf) -> Result<Settings> {
    for (origin, layer) in &layers {
        layer
            .clone()
            .try_deserialize::<Layer>()
            .map_err(|e| config_error(e, origin))?;
    }
    let mut merged = Config::builder();
    for (_, layer) in &layers {
        merged = merged.add_source(layer.clone());
    }
    let merged = build(merged, "merged configuration")?;
    let raw: Layer = merged
        .try_deserialize()
        .map_err(|e| config_error(e, "merged configuration"))?;
    let sources = layers.iter().map(|(o, _)| o.clone()).collect();
    Resolver { layers: &layers }.resolve(raw, env, dir, sources)
}

fn environment(vars: HashMap<String, String>) -> Environment {
    // No parsing: a value stays the exact text it was ("007" is not 7); the strict
    // deserializers turn the text of a number key into a number.
    Environment::with_prefix(ENV_PREFIX)
        .prefix_separator(SEP)
        .separator(SEP)
        .try_parsing(false)
        .source(Some(vars.into_iter().collect()))
}

fn build(
    builder: config::ConfigBuilder<config::builder::DefaultState>,
    origin: &str,
) -> Result<Config> {
    builder.build().map_err(|e| config_error(e, origin))
}

/// Turns the config crate's error into ours, keeping the key and naming the origin.
fn config_error(e: ConfigError, origin: &str) -> Error {
    fn message(e: &ConfigError) -> String {
        match e {
            ConfigError::Type {
                unexpected,
                expected,
                ..
            } => {
                format!("invalid type: {unexpected}, expected {expected}")
            }
            ConfigError::At { error, .. } => message(error),
            ConfigError::NotFound(_) => "missing".into(),
            ConfigError::FileParse { cause, .. } => clip(cause.to_string().trim()),
            other => other.to_string(),
        }
    }
    let key = match &e {
        ConfigError::Type { key, .. } | ConfigError::At { key, .. } => key.clone(),
        ConfigError::NotFound(key) => Some(key.clone()),
        _ => None,
    };
    Error::Config {
        origin: origin.to_owned(),
        key,
        message: message(&e),
    }
}

struct Resolver<'a> {
    layers: &'a [(String, Config)],
}

impl Resolver<'_> {
    /// The file or variable that set `key` last, for errors found after merging.
    fn origin(&self, key: &str) -> String {
        self.layers
            .iter()
            .rev()
            .find(|(_, layer)| layer.get::<config::Value>(key).is_ok())
            .map_or_else(|| "configuration".to_owned(), |(origin, _)| origin.clone())
    }

    /// A typed error from a lower layer, with the file or variable and the key that caused it.
    fn wrap(&self, key: String, source: Error) -> Error {
        Error::At {
            origin: self.origin(&key),
            key,
            source: Box::new(source),
        }
    }

    fn error(&self, key: String, message: String) -> Error {
        Error::Config {
            origin: self.origin(&key),
            key: Some(key),
            message,
        }
    }

    fn resolve(
        &self,
        raw: Layer,
        env: String,
        dir: PathBuf,
        sources: Vec<String>,
    ) -> Result<Settings> {
        let mut profiles = BTreeMap::new();
        for (name, set) in &raw.profiles {
            let profile = Profile::new(name, set.clone()).map_err(|e| match e {
                Error::Unsafe { pragma, .. } => self.wrap(format!("profiles.{name}.{pragma}"), e),
                other => other,
            })?;
            profiles.insert(name.clone(), profile);
        }
        let mut databases = BTreeMap::new();
        let mut ignored = Vec::new();
        for (name, db) in raw.databases {
            let key = |k: &str| format!("databases.{name}.{k}");
            let path = db.path.ok_or_else(|| Error::Config {
                origin: sources_list(&sources),
                key: Some(key("path")),
                message: "missing: every database needs a path".into(),
            })?;
            if path.as_os_str().is_empty() {
                return Err(self.error(
                    key("path"),
                    "invalid path \"\": expected a file path".into(),
                ));
            }
            let base = match &db.profile {
                Some(p) => raw.profiles.get(p).cloned().ok_or_else(|| {
                    let known: Vec<_> = raw.profiles.keys().map(String::as_str).collect();
                    self.error(
                        key("profile"),
                        format!(
                            "unknown profile {p:?}: expected one of {}",
                            if known.is_empty() {
                                "(no profiles defined)".into()
                            } else {
                                known.join(", ")
                            }
                        ),
                    )
                })?,
                None => PragmaSet::default(),
            };
            let profile_name = db.profile.clone().unwrap_or_else(|| name.clone());
            let profile =
                Profile::new(profile_name, base.overlay(&db.pragmas)).map_err(|e| match e {
                    Error::Unsafe { pragma, .. } => {
                        // The database's own key, unless only its profile sets the value.
                        let in_db = db.pragmas.sets(pragma);
                        let k = match (&db.profile, in_db) {
                            (Some(p), false) => format!("profiles.{p}.{pragma}"),
                            _ => key(&format!("pragmas.{pragma}")),
                        };
                        self.wrap(k, e)
                    }
                    other => other,
                })?;
            let readers_layer = db.readers;
            if let (true, Some(r)) = (
                db.writer.is_some() || readers_layer.is_some(),
                &readers_layer,
            ) {
                self.ignored_by_split(&name, &db.pool, db.writer.as_ref(), r, &mut ignored);
            }
            if db.writer.is_some() || readers_layer.is_some() {
                // The writer takes [writer] transaction_behavior, the readers deferred: a
                // profile value that differs from the writer's is shadowed.
                let writer_mode = db
                    .writer
                    .as_ref()
                    .and_then(|w| w.transaction_behavior)
                    .unwrap_or(TransactionMode::Immediate);
                if let Some(mode) = profile
                    .pragmas()
                    .transaction_behavior
                    .filter(|m| *m != writer_mode)
                {
                    let k = match (&db.profile, db.pragmas.transaction_behavior.is_some()) {
                        (Some(p), false) => format!("profiles.{p}.transaction_behavior"),
                        _ => key("pragmas.transaction_behavior"),
                    };
                    ignored.push(Ignored {
                        origin: self.origin(&k),
                        key: k,
                        reason: format!(
                            "transaction_behavior = \"{mode}\" has no effect on split database {name:?}: its writer uses [databases.{name}.writer] transaction_behavior = \"{writer_mode}\" and its readers deferred transactions"
                        ),
                    });
                }
            }
            let split = match (db.writer, readers_layer.is_some()) {
                (None, false) => None,
                (writer, _) => {
                    let writer = writer.unwrap_or_default();
                    let base = self.pool_layer(&name, "pool", &db.pool, None)?;
                    let readers = match &readers_layer {
                        Some(r) => self.pool_layer(&name, "readers", r, Some(&base))?,
                        None => base.clone(),
                    };
                    Some(Split {
                        writer_connection_timeout: writer
                            .connection_timeout
                            .map_or(base.connection_timeout, |t| t.0),
                        writer_transaction_behavior: writer
                            .transaction_behavior
                            .unwrap_or(TransactionMode::Immediate),
                        optimize_interval: writer.optimize_interval.and_then(|l| l.0),
                        readers,
                        group_commit: self.group_commit(&name, &writer)?,
                    })
                }
            };
            let pool = self.pool_layer(&name, "pool", &db.pool, None)?;
            databases.insert(
                name.clone(),
                DatabaseSettings {
                    name,
                    path,
                    create_if_missing: db.create_if_missing.unwrap_or(true),
                    check_integrity: db.check_integrity.unwrap_or(true),
                    profile,
                    pool,
                    file_mode: db.file_mode.unwrap_or(FileMode(0o600)),
                    durability: db.durability.unwrap_or(Durability::Normal),
                    replication: db.replication.unwrap_or(Replication::None),
                    checkpoint: db.checkpoint.unwrap_or(Checkpoint::Sqlite),
                    checkpoint_wal_size: db.checkpoint_wal_size.unwrap_or(ByteSize(4 << 20)),
                    split,
                },
            );
        }
        if let Err(e) = distinct_files(&databases) {
            let k = match &e {
                Error::SameFile { second, .. } => format!("databases.{second}.path"),
                _ => "databases".into(),
            };
            return Err(self.wrap(k, e));
        }
        if raw.limits.memory_budget.is_none() {
            for (name, set) in &raw.profiles {
                if set.enforce_budget == Some(true) {
                    let k = format!("profiles.{name}.enforce_budget");
                    ignored.push(Ignored {
                        origin: self.origin(&k),
                        key: k,
                        reason: "enforce_budget = true has no effect without limits.memory_budget"
                            .into(),
                    });
                }
            }
        }
        let names: Vec<&String> = databases.keys().collect();
        let mut workloads = BTreeMap::new();
        for (name, w) in raw.bench.workloads {
            let workload = w.resolve(&name, &names).map_err(|(k, message)| {
                self.error(format!("bench.workloads.{name}.{k}"), message)
            })?;
            workloads.insert(name, workload);
        }
        if databases.is_empty() {
            return Err(Error::Config {
                origin: sources_list(&sources),
                key: Some("databases".into()),
                message: "no databases configured: expected at least one [databases.<name>] table"
                    .into(),
            });
        }
        Ok(Settings {
            env,
            dir,
            sources,
            profiles,
            databases,
            memory_budget: raw.limits.memory_budget,
            ignored,
            workloads,
        })
    }

    /// `[databases.<name>.writer]` queue_size (1..=65536), max_batch (1..=10000),
    /// max_batch_time (above 0, at most 10s).
    fn group_commit(&self, name: &str, w: &WriterLayer) -> Result<GroupCommitSettings> {
        let d = GroupCommitSettings::default();
        let key = |k: &str| format!("databases.{name}.writer.{k}");
        let bounded = |k: &str, v: Option<u32>, max: u32, default: usize| match v {
            None => Ok(default),
            Some(n) if (1..=max).contains(&n) => Ok(n as usize),
            Some(n) => Err(self.error(key(k), format!("invalid {k} {n}: expected 1 to {max}"))),
        };
        let max_batch_time = match w.max_batch_time {
            None => d.max_batch_time,
            Some(t) if t.0 <= Duration::from_secs(10) => t.0,
            Some(t) => {
                return Err(self.error(
                    key("max_batch_time"),
                    format!("invalid max_batch_time {t}: expected at most 10s"),
                ))
            }
        };
        Ok(GroupCommitSettings {
            queue_size: bounded("queue_size", w.queue_size, 65_536, d.queue_size)?,
            max_batch: bounded("max_batch", w.max_batch, 10_000, d.max_batch)?,
            max_batch_time,
        })
    }

    /// The `[pool]` keys of a split database that neither its writer nor its readers use.
    fn ignored_by_split(
        &self,
        name: &str,
        pool: &PoolLayer,
        writer: Option<&WriterLayer>,
        readers: &PoolLayer,
        out: &mut Vec<Ignored>,
    ) {
        let mut push = |k: &str, why: &str| {
            let key = format!("databases.{name}.pool.{k}");
            out.push(Ignored {
                origin: self.origin(&key),
                key,
                reason: format!("{k} has no effect on split database {name:?}: {why}"),
            });
        };
        if pool.max_size.is_some() && readers.max_size.is_some() {
            push(
                "max_size",
                "the writer has one connection and [readers] sets its own max_size",
            );
        }
        if pool.min_idle.is_some() && (readers.min_idle.is_some() || readers.max_size.is_some()) {
            push(
                "min_idle",
                "the writer has one connection and [readers] sets its own pool size",
            );
        }
        let writer_timeout = writer.is_some_and(|w| w.connection_timeout.is_some());
        if pool.connection_timeout.is_some()
            && writer_timeout
            && readers.connection_timeout.is_some()
        {
            push(
                "connection_timeout",
                "[writer] and [readers] both set their own",
            );
        }
    }

    fn pool_layer(
        &self,
        name: &str,
        table: &str,
        p: &PoolLayer,
        base: Option<&PoolSettings>,
    ) -> Result<PoolSettings> {
        let d = base.cloned().unwrap_or_default();
        let key = |k: &str| format!("databases.{name}.{table}.{k}");
        let max_size = p.max_size.unwrap_or(d.max_size);
        let settings = PoolSettings {
            max_size,
            min_idle: p.min_idle.or(if base.is_some() && p.max_size.is_none() {
                d.min_idle
            } else {
                None
            }),
            connection_timeout: p.connection_timeout.map_or(d.connection_timeout, |t| t.0),
            idle_timeout: p.idle_timeout.map_or(d.idle_timeout, |l| l.0),
            max_lifetime: p.max_lifetime.map_or(d.max_lifetime, |l| l.0),
            test_on_check_out: p.test_on_check_out.unwrap_or(d.test_on_check_out),
            stats: p.stats.unwrap_or(d.stats),
        };
        settings.validate().map_err(|e| match e {
            Error::PoolSetting { key: k, .. } => self.wrap(key(k), e),
            other => other,
        })?;
        Ok(settings)
    }
}

/// `text` with every line cut to 200 characters: a parse error quotes the offending line, which
/// may be megabytes long.
fn clip(text: &str) -> String {
    text.lines()
        .map(|l| match l.char_indices().nth(200) {
            Some((at, _)) => format!("{}…", &l[..at]),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn sources_list(sources: &[String]) -> String {
    sources.join(", ")
}
