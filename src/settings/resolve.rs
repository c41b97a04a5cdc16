//! Resolving the layers into [`Settings`]: merging, cross-checks (profile names, pool sizes,
//! unsafe values) and the error messages that name where each value came from.

#[allow(unused_imports)]
use super::*;
use crate::error::ParseValueError;

pub(super) struct Resolver<'a> {
    pub(super) layers: &'a [(String, Config)],
}

/// The most bytes of a Unix socket's path (`sun_path` holds 108 with its NUL on Linux, 104
/// on macOS).
pub const MAX_SOCKET_PATH: usize = 100;

/// `[admin] socket`: a non-empty path of at most [`MAX_SOCKET_PATH`] bytes, without NUL,
/// naming a file (not ending in `/`). Relative paths resolve against the working directory.
fn admin_socket(path: &str) -> std::result::Result<PathBuf, String> {
    let allowed = format!(
        "expected the path of a socket file, 1 to {MAX_SOCKET_PATH} bytes, without NUL, not \
         ending in '/'"
    );
    if path.is_empty()
        || path.len() > MAX_SOCKET_PATH
        || path.contains('\0')
        || path.ends_with('/')
        || path.ends_with("/.")
        || path.ends_with("/..")
        || path == "."
        || path == ".."
    {
        let shown: String = path.chars().take(120).collect();
        return Err(format!("invalid value {shown:?}: {allowed}"));
    }
    Ok(PathBuf::from(path))
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

    pub(super) fn resolve(
        &self,
        raw: Layer,
        env: String,
        dir: PathBuf,
        sources: Vec<String>,
    ) -> Result<Settings> {
        let mut profiles = BTreeMap::new();
        for (name, set) in &raw.profiles {
            let profile = Profile::new(name, set.clone()).map_err(|e| match e {
                Error::Unsafe { pragma, .. }
                | Error::Parse(ParseValueError { what: pragma, .. }) => {
                    self.wrap(format!("profiles.{name}.{pragma}"), e)
                }
                other => other,
            })?;
            profiles.insert(name.clone(), profile);
        }
        let mut databases = BTreeMap::new();
        let mut ignored = Vec::new();
        for (name, mut db) in raw.databases {
            let key = |k: &str| format!("databases.{name}.{k}");
            let replica = match &db.replica_url {
                Some(url) => {
                    Some(ReadReplica::new(url).map_err(|m| self.error(key("replica_url"), m))?)
                }
                None => None,
            };
            if let Some(t) = db
                .heartbeat
                .filter(|t| t.0 < Duration::from_millis(100) || t.0 > Duration::from_secs(3600))
            {
                return Err(self.error(
                    key("heartbeat"),
                    format!("invalid heartbeat {:?}: expected 100ms to 1h", t.0),
                ));
            }
            if db.heartbeat.is_some()
                && replica.is_none()
                && db.replication != Some(Replication::Litestream)
            {
                return Err(self.error(
                    key("heartbeat"),
                    "heartbeat is for a database Litestream 0.5 replicates (replication = \"litestream\"), whose read replicas read it; without one it would only write a table nobody reads".into(),
                ));
            }
            if let Some(replica) = &replica {
                self.replica_conflicts(&name, &db)?;
                if db.writer.is_none() && db.readers.is_none() {
                    // A replica has readers only: its pool is their pool.
                    db.readers = Some(PoolLayer::default());
                }
                db.path = Some(PathBuf::from(&replica.url));
            }
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
            let mut set = base.overlay(&db.pragmas);
            if replica.is_some() {
                let (kept, dropped) = super::for_replica(&set);
                for (pragma, why) in dropped {
                    let k = match (&db.profile, db.pragmas.sets(pragma)) {
                        (Some(p), false) => format!("profiles.{p}.{pragma}"),
                        _ => key(&format!("pragmas.{pragma}")),
                    };
                    ignored.push(Ignored {
                        origin: self.origin(&k),
                        key: k,
                        reason: format!("{pragma} has no effect on read replica {name:?}: {why}"),
                    });
                }
                set = kept;
            }
            let profile = Profile::new(profile_name, set).map_err(|e| match e {
                Error::Unsafe { pragma, .. }
                | Error::Parse(ParseValueError { what: pragma, .. }) => {
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
                    replica,
                    heartbeat: db.heartbeat.map(|t| t.0),
                },
            );
        }
        if let Err((name, message)) = check_names(&databases) {
            let origin = self
                .layers
                .iter()
                .rev()
                .find(|(_, layer)| {
                    layer
                        .get_table("databases")
                        .is_ok_and(|t| t.contains_key(&name))
                })
                .map_or_else(|| sources_list(&sources), |(origin, _)| origin.clone());
            return Err(Error::Config {
                origin,
                key: Some(name_key(&name)),
                message,
            });
        }
        // Litestream's VFS reads one replica URL per process.
        let mut replicas = databases
            .values()
            .filter_map(|d| d.replica.as_ref().map(|r| (&d.name, &r.url)));
        if let Some((first, url)) = replicas.next() {
            if let Some((second, other)) = replicas.find(|(_, u)| u != &url) {
                return Err(self.error(
                    format!("databases.{second}.replica_url"),
                    format!("replica_url {other:?} differs from databases.{first}.replica_url {url:?}: Litestream's VFS reads one replica per process (LITESTREAM_REPLICA_URL); serve the other replica from another process"),
                ));
            }
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
            // Names appear in table rows, JSON and the report: the database name rule, and not
            // `mixed`, the row of all workloads together.
            if super::names::invalid_name(&name).is_some() {
                return Err(self.error(
                    format!("bench.workloads.{}", name.escape_debug()),
                    format!("invalid workload name {name:?}: expected 1 to 64 ASCII letters, digits, '_' or '-', not starting with '-'"),
                ));
            }
            if name == "mixed" {
                return Err(self.error(
                    "bench.workloads.mixed".to_owned(),
                    "the workload name \"mixed\" is taken by the run of all workloads together; choose another".into(),
                ));
            }
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
        let admin_socket = match &raw.admin.socket {
            None => None,
            Some(path) => {
                Some(admin_socket(path).map_err(|m| self.error("admin.socket".into(), m))?)
            }
        };
        Ok(Settings {
            env,
            dir,
            sources,
            profiles,
            databases,
            memory_budget: raw.limits.memory_budget,
            admin_socket,
            ignored,
            workloads,
            litestream_vfs: match raw.litestream.vfs {
                Some(p) if p.as_os_str().is_empty() => {
                    return Err(self.error(
                        "litestream.vfs".into(),
                        "invalid path \"\": expected the file of Litestream's VFS extension (litestream-vfs.so)".into(),
                    ))
                }
                other => other,
            },
        })
    }

    /// The keys a read replica (`replica_url`) cannot have: its own file, a writer, replication
    /// of its own, background checkpoints.
    fn replica_conflicts(&self, name: &str, db: &DatabaseLayer) -> Result<()> {
        let conflict = |k: &str, why: &str| {
            Err(self.error(
                format!("databases.{name}.{k}"),
                format!("database {name:?} is a read replica (replica_url): {why}"),
            ))
        };
        if db.path.is_some() {
            return conflict(
                "path",
                "it has no local file; remove path (or replica_url, for a local database)",
            );
        }
        if db.writer.is_some() {
            return conflict("writer", "it has readers only; writes go to the primary, whose database Litestream replicates");
        }
        if db.replication.is_some_and(|r| r != Replication::None) {
            return conflict(
                "replication",
                "it is the replica; replication is set on the primary",
            );
        }
        if db.checkpoint == Some(Checkpoint::Background) {
            return conflict(
                "checkpoint",
                "a replica does not checkpoint; the primary does",
            );
        }
        if db.heartbeat.is_some() {
            return conflict("heartbeat", "a replica reads the heartbeat; the primary writes it (set heartbeat on the primary's database)");
        }
        Ok(())
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
pub(super) fn clip(text: &str) -> String {
    text.lines()
        .map(|l| match l.char_indices().nth(200) {
            Some((at, _)) => format!("{}…", &l[..at]),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn sources_list(sources: &[String]) -> String {
    sources.join(", ")
}
