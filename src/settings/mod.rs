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
use std::path::PathBuf;
use std::time::Duration;

use config::{Config, ConfigError, Environment, File, FileFormat};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pragma::{ByteSize, Lifetime, Timeout, TransactionMode};
use crate::profile::{PragmaSet, Profile};

mod spec;
pub use spec::{PoolSpec, Role};

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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseLayer {
    path: Option<PathBuf>,
    profile: Option<String>,
    create_if_missing: Option<bool>,
    file_mode: Option<FileMode>,
    durability: Option<Durability>,
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
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolLayer {
    max_size: Option<u32>,
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
    /// machine, a warm checkout took 970ns with it and 269ns without, against 2.2µs for
    /// checkout plus a point read by primary key.
    pub test_on_check_out: bool,
    /// Collect [`crate::PoolStats`]: an r2d2 event and error handler, and page-cache sampling
    /// at check-in. Default: true. Costs about 30ns per checkout (see the README).
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
    /// The profile, merged with the database's own `pragmas`.
    pub profile: Profile,
    /// The pool settings.
    pub pool: PoolSettings,
    /// Permissions of a file litepool creates. Default: 0600.
    pub file_mode: FileMode,
    /// How much commits must survive, for the lint. Default: normal.
    pub durability: Durability,
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
            profile,
            pool: PoolSettings::default(),
            file_mode: FileMode(0o600),
            durability: Durability::Normal,
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

/// Builds [`Settings`] from layered sources.
#[derive(Debug, Default, Clone)]
pub struct Loader {
    dir: Option<PathBuf>,
    env: Option<String>,
    vars: Option<HashMap<String, String>>,
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

    fn var(&self, name: &str) -> Option<String> {
        match &self.vars {
            Some(v) => v.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
    }

    /// Reads, layers and validates every source.
    pub fn load(self) -> Result<Settings> {
        let env = self
            .env
            .clone()
            .or_else(|| self.var("LITEPOOL_ENV"))
            .unwrap_or_else(|| "development".to_owned());
        if env.is_empty()
            || !env
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(Error::Config {
                origin: "environment name".into(),
                key: None,
                message: format!(
                    "invalid environment name {env:?}: expected letters, digits, '-' or '_'"
                ),
            });
        }
        let dir = self
            .dir
            .clone()
            .or_else(|| self.var("LITEPOOL_CONFIG_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("config"));

        let default = dir.join("default.toml");
        if !default.is_file() {
            return Err(Error::Config {
                origin: default.display().to_string(),
                key: None,
                message:
                    "file not found: default.toml is required (set --config or LITEPOOL_CONFIG_DIR)"
                        .into(),
            });
        }
        let mut layers: Vec<(String, Config)> = Vec::new();
        for path in [default, dir.join(format!("{env}.toml"))] {
            if !path.is_file() {
                continue;
            }
            let origin = path.display().to_string();
            let source = File::from(path.as_path()).format(FileFormat::Toml);
            layers.push((
                origin,
                build(
                    Config::builder().add_source(source),
                    &path.display().to_string(),
                )?,
            ));
        }
        let mut vars: Vec<(String, String)> = match &self.vars {
            Some(v) => v.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            None => std::env::vars().collect(),
        };
        vars.retain(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}{SEP}")));
        vars.sort();
        for (name, value) in vars {
            let origin = format!("environment variable {name}");
            let one = HashMap::from([(name, value)]);
            layers.push((
                origin.clone(),
                build(Config::builder().add_source(environment(one)), &origin)?,
            ));
        }

        // Each layer alone: unknown keys and bad values name their own file or variable.
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
            .clone()
            .try_deserialize()
            .map_err(|e| config_error(e, "merged configuration"))?;
        let sources = layers.iter().map(|(o, _)| o.clone()).collect();
        Resolver { layers: &layers }.resolve(raw, env, dir, sources)
    }
}

fn environment(vars: HashMap<String, String>) -> Environment {
    Environment::with_prefix(ENV_PREFIX)
        .prefix_separator(SEP)
        .separator(SEP)
        .try_parsing(true)
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
            ConfigError::FileParse { cause, .. } => cause.to_string().trim().to_owned(),
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
                    profile,
                    pool,
                    file_mode: db.file_mode.unwrap_or(FileMode(0o600)),
                    durability: db.durability.unwrap_or(Durability::Normal),
                    split,
                },
            );
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
        })
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

fn sources_list(sources: &[String]) -> String {
    sources.join(", ")
}
