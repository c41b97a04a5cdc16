//! The guide: litepool's reference, one topic per page. Each page is a file under `docs/`
//! (readable on its own), included here so that its examples compile and run as doctests.

#[doc = include_str!("../docs/adapters.md")]
pub mod adapters {}

#[doc = include_str!("../docs/configuration.md")]
pub mod configuration {}

#[doc = include_str!("../docs/check.md")]
pub mod check {}

#[doc = include_str!("../docs/statistics.md")]
pub mod statistics {}

#[doc = include_str!("../docs/write-path.md")]
pub mod write_path {}

#[doc = include_str!("../docs/errors.md")]
pub mod errors {}

#[doc = include_str!("../docs/replication.md")]
pub mod replication {}

#[doc = include_str!("../docs/read-replicas.md")]
pub mod read_replicas {}

#[doc = include_str!("../docs/safety.md")]
pub mod safety {}

#[doc = include_str!("../docs/bench.md")]
pub mod bench {}

#[doc = include_str!("../docs/performance.md")]
pub mod performance {}

#[doc = include_str!("../docs/migrating.md")]
pub mod migrating {}

#[doc = include_str!("../docs/layout.md")]
pub mod layout {}

#[cfg(all(feature = "admin", unix))]
#[doc = include_str!("../docs/admin.md")]
pub mod admin {}
