//! The memory budget: how much page cache the pools may take, worst case.
//!
//! `cache_size` is per connection, so a pool's worst case is `max_size × cache_size`. A cache
//! never holds more pages than the file has, so the current file sizes give a tighter bound for
//! today. Memory-mapped pages (`mmap_size`) live in the OS page cache and are not counted.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::file::FileState;
use crate::pragma::ByteSize;
use crate::settings::{PoolSpec, Settings};

/// SQLite's default `cache_size`: 2000 KiB.
pub const SQLITE_DEFAULT_CACHE: u64 = 2000 * 1024;
/// SQLite's default page size.
pub const SQLITE_DEFAULT_PAGE_SIZE: u32 = 4096;

/// The page-cache memory of one pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolMemory {
    /// The database name.
    pub database: String,
    /// Connections in the pool at most.
    pub max_size: u32,
    /// Cache per connection, bytes.
    pub cache_per_connection: u64,
    /// `max_size × cache_per_connection`.
    pub worst_case: u64,
    /// `max_size × min(cache_per_connection, file size)`: the most the cache can hold today.
    pub bound_by_file: u64,
}

/// The memory of every pool against `limits.memory_budget`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// Per pool.
    pub pools: Vec<PoolMemory>,
    /// Sum of the worst cases.
    pub worst_case: u64,
    /// Sum of the bounds by file size.
    pub bound_by_file: u64,
    /// `limits.memory_budget`, bytes.
    pub budget: Option<u64>,
    /// Databases whose profile sets `enforce_budget = true`.
    pub enforced_by: Vec<String>,
}

impl Budget {
    /// Computes the budget from settings and the state of each file (same order as
    /// `settings.databases`).
    pub fn new(settings: &Settings, files: &[FileState]) -> Budget {
        let pools: Vec<PoolMemory> = settings
            .databases
            .values()
            .zip(files)
            .flat_map(|(db, file)| {
                db.pools()
                    .into_iter()
                    .map(move |spec| pool_memory(&spec, file))
            })
            .collect();
        Budget {
            // Saturating: settings can describe more than 2^64 bytes in all.
            worst_case: pools
                .iter()
                .fold(0u64, |a, p| a.saturating_add(p.worst_case)),
            bound_by_file: pools
                .iter()
                .fold(0u64, |a, p| a.saturating_add(p.bound_by_file)),
            pools,
            budget: settings.memory_budget.map(ByteSize::bytes),
            enforced_by: settings
                .databases
                .values()
                .filter(|d| d.profile.pragmas().enforce_budget == Some(true))
                .map(|d| d.name.clone())
                .collect(),
        }
    }

    /// The budget from settings alone, as if every file were new: `bound_by_file` is 0. For an
    /// application that lints its settings without litepool's pools ([`crate::lint::lint`]);
    /// the worst case does not depend on the files.
    pub fn without_files(settings: &Settings) -> Budget {
        Budget::new(
            settings,
            &vec![FileState::Missing; settings.databases.len()],
        )
    }

    /// True when the worst case is over the budget.
    pub fn over(&self) -> bool {
        self.budget.is_some_and(|b| self.worst_case > b)
    }

    /// An error when over budget and enforced, else `Ok`.
    pub fn enforce(&self) -> Result<()> {
        match self.budget {
            Some(b) if self.over() && !self.enforced_by.is_empty() => Err(Error::OverBudget {
                worst: ByteSize(self.worst_case).to_string(),
                budget: ByteSize(b).to_string(),
                enforced_by: self.enforced_by.clone(),
            }),
            _ => Ok(()),
        }
    }
}

fn pool_memory(spec: &PoolSpec, file: &FileState) -> PoolMemory {
    let set = spec.profile.pragmas();
    let page_size = file
        .page_size()
        .or(set.page_size.map(|p| p.bytes()))
        .unwrap_or(SQLITE_DEFAULT_PAGE_SIZE);
    let per_conn = set
        .cache_size
        .map_or(SQLITE_DEFAULT_CACHE, |c| c.bytes_per_connection(page_size));
    let n = u64::from(spec.pool.max_size);
    PoolMemory {
        database: spec.name.clone(),
        max_size: spec.pool.max_size,
        cache_per_connection: per_conn,
        worst_case: n.saturating_mul(per_conn),
        bound_by_file: n.saturating_mul(per_conn.min(file.bytes())),
    }
}

pub use crate::units::bytes as human;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_files_counts_every_pool_at_its_worst() {
        let settings = Settings::from_toml(
            r#"
            [limits]
            memory_budget = "100MiB"
            [profiles.big]
            cache_size = "64MiB"
            [databases.jobs]
            path = "jobs.db"
            profile = "big"
            [databases.jobs.pool]
            max_size = 2
            "#,
        )
        .unwrap();
        let b = Budget::without_files(&settings);
        assert_eq!(b.pools.len(), 1);
        assert_eq!(b.worst_case, 128 << 20);
        assert_eq!(b.bound_by_file, 0);
        assert!(b.over());
    }
}
