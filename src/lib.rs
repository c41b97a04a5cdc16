#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(any(feature = "diesel", feature = "deadpool"))]
#[path = "adapters/databases.rs"]
mod adapter_databases;
pub mod budget;
pub mod check;
mod checkin;
pub mod checkpoint;
pub mod commit;
pub mod connection;
pub mod customizer;
#[cfg(feature = "deadpool")]
#[path = "adapters/deadpool.rs"]
pub mod deadpool;
#[cfg(feature = "diesel")]
#[path = "adapters/diesel.rs"]
pub mod diesel;
mod driver;
pub mod error;
pub mod file;
pub mod guard;
pub mod guide;
pub mod histogram;
pub mod lint;
pub mod manager;
#[cfg(feature = "metrics")]
pub mod metrics;
mod open;
mod pool;
pub mod pools;
pub mod pragma;
pub mod profile;
mod reentry;
pub mod settings;
pub mod stats;
mod strict;
mod sys;
pub mod units;
mod watch;

pub use commit::WriteConn;
pub use connection::PragmaConnection;
pub use customizer::PragmaCustomizer;
pub use error::{Error, ParseValueError, Result};
pub use pools::{Conn, Handle, NamedPool, Pools, Snapshot};
pub use profile::{PragmaSet, Profile};
pub use r2d2;
pub use r2d2_sqlite;
pub use rusqlite;
pub use settings::{DatabaseSettings, PoolSettings, PoolSpec, Role, Settings};
pub use stats::PoolStats;
