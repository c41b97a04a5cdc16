#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![warn(missing_docs)]
// Without the feature `sqlite` the pools, the write path and the guard are not built; the docs of
// what remains name them as text, not as links.

#[cfg(any(feature = "diesel", feature = "deadpool"))]
#[path = "adapters/databases.rs"]
mod adapter_databases;
#[cfg(all(feature = "admin", unix))]
pub mod admin;
pub mod budget;
pub mod check;
#[cfg(feature = "sqlite")]
mod checkin;
#[cfg(feature = "sqlite")]
pub mod checkpoint;
#[cfg(feature = "sqlite")]
pub mod commit;
pub mod connection;
pub mod customizer;
#[cfg(feature = "deadpool")]
#[path = "adapters/deadpool.rs"]
pub mod deadpool;
#[cfg(feature = "diesel")]
#[path = "adapters/diesel.rs"]
pub mod diesel;
#[cfg(feature = "sqlite")]
mod driver;
pub mod error;
pub mod file;
#[cfg(feature = "sqlite")]
pub mod guard;
pub mod guide;
pub mod histogram;
pub mod lint;
#[cfg(feature = "sqlite")]
pub mod manager;
pub mod metrics;
#[cfg(feature = "sqlite")]
mod open;
#[cfg(feature = "sqlite")]
mod pool;
#[cfg(feature = "sqlite")]
pub mod pools;
pub mod pragma;
pub mod profile;
#[cfg(feature = "sqlite")]
mod reentry;
#[cfg(feature = "litestream-vfs")]
pub mod replica;
pub mod settings;
pub mod staleness;
pub mod stats;
mod strict;
#[cfg(feature = "sqlite")]
mod sys;
pub mod units;
#[cfg(feature = "sqlite")]
mod watch;

#[cfg(feature = "sqlite")]
pub use commit::WriteConn;
pub use connection::PragmaConnection;
pub use customizer::PragmaCustomizer;
pub use error::{Error, ParseValueError, Result};
#[cfg(feature = "sqlite")]
pub use pools::{Conn, DatabaseStats, Handle, NamedPool, Pools, ReloadReport, Snapshot};
pub use profile::{PragmaSet, Profile};
pub use r2d2;
#[cfg(feature = "sqlite")]
pub use r2d2_sqlite;
#[cfg(feature = "sqlite")]
pub use rusqlite;
pub use settings::{DatabaseSettings, PoolSettings, PoolSpec, Role, Settings};
pub use stats::PoolStats;
