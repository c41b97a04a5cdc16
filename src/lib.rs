#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod budget;
pub mod check;
pub mod customizer;
pub mod error;
pub mod file;
pub mod pools;
pub mod pragma;
pub mod profile;
pub mod settings;

pub use customizer::PragmaCustomizer;
pub use error::{Error, ParseValueError, Result};
pub use pools::{PoolStats, Pools};
pub use profile::{PragmaSet, Profile};
pub use r2d2;
pub use r2d2_sqlite;
pub use rusqlite;
pub use settings::{DatabaseSettings, PoolSettings, Settings};
