//! The raw layers: the shape of one configuration source (a file or the environment), every
//! key optional and unknown keys refused, deserialized on its own before layers are merged.

#[allow(unused_imports)]
use super::*;

/// The raw shape of one configuration layer: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Layer {
    #[serde(default)]
    pub(super) profiles: BTreeMap<String, PragmaSet>,
    #[serde(default)]
    pub(super) databases: BTreeMap<String, DatabaseLayer>,
    #[serde(default)]
    pub(super) limits: LimitsLayer,
    #[serde(default)]
    pub(super) bench: bench::BenchLayer,
    #[serde(default)]
    pub(super) admin: AdminLayer,
    #[serde(default)]
    pub(super) litestream: LitestreamLayer,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LitestreamLayer {
    #[serde(default, deserialize_with = "strict::path")]
    pub(super) vfs: Option<PathBuf>,
}

/// `[admin]`: the admin socket (feature `admin`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdminLayer {
    pub(super) socket: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DatabaseLayer {
    #[serde(default, deserialize_with = "strict::path")]
    pub(super) path: Option<PathBuf>,
    #[serde(default, deserialize_with = "strict::string")]
    pub(super) profile: Option<String>,
    pub(super) create_if_missing: Option<bool>,
    pub(super) check_integrity: Option<bool>,
    pub(super) file_mode: Option<FileMode>,
    pub(super) durability: Option<Durability>,
    pub(super) replication: Option<Replication>,
    pub(super) checkpoint: Option<Checkpoint>,
    pub(super) checkpoint_wal_size: Option<ByteSize>,
    #[serde(default, deserialize_with = "strict::string")]
    pub(super) replica_url: Option<String>,
    pub(super) heartbeat: Option<Timeout>,
    #[serde(default)]
    pub(super) pragmas: PragmaSet,
    #[serde(default)]
    pub(super) pool: PoolLayer,
    pub(super) writer: Option<WriterLayer>,
    pub(super) readers: Option<PoolLayer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WriterLayer {
    pub(super) connection_timeout: Option<Timeout>,
    pub(super) transaction_behavior: Option<TransactionMode>,
    pub(super) optimize_interval: Option<Lifetime>,
    #[serde(default, deserialize_with = "strict::count")]
    pub(super) queue_size: Option<u32>,
    #[serde(default, deserialize_with = "strict::count")]
    pub(super) max_batch: Option<u32>,
    pub(super) max_batch_time: Option<Timeout>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PoolLayer {
    #[serde(default, deserialize_with = "strict::count")]
    pub(super) max_size: Option<u32>,
    #[serde(default, deserialize_with = "strict::count")]
    pub(super) min_idle: Option<u32>,
    pub(super) connection_timeout: Option<Timeout>,
    pub(super) idle_timeout: Option<Lifetime>,
    pub(super) max_lifetime: Option<Lifetime>,
    pub(super) test_on_check_out: Option<bool>,
    pub(super) stats: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LimitsLayer {
    pub(super) memory_budget: Option<ByteSize>,
}
