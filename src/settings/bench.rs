//! `[bench.workloads.<name>]`: a user's own queries for `litepool bench`, validated when the
//! settings load (the statement itself is prepared against a copy of the database when the bench
//! runs).
//!
//! ```toml
//! [bench.workloads.open_tasks]
//! database = "jobs"
//! sql = "SELECT id, title FROM tasks WHERE owner = ?1 AND done = 0"
//! params = [{ sample = "SELECT DISTINCT owner FROM tasks" }]   # or { int = [1, 15000] }, { text = 32 }
//! weight = 8                      # share in the mixed run; default 1
//! transaction = "none"            # "immediate", "deferred" or "none" (default)
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a parameter's values come from. Values never come from anywhere else, and statements
/// are prepared with placeholders: no text is ever formatted into SQL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum ParamGen {
    /// Values drawn at random from the rows of this query (its first column), run once on the
    /// copy before timing.
    Sample(String),
    /// A random integer between the two bounds, both included.
    Int([i64; 2]),
    /// Random letters, this many.
    Text(u32),
}

crate::pragma::pragma_enum! {
    /// How a workload's statement runs. Default: none.
    BenchTransaction, what = "transaction", {
        /// On its own (autocommit).
        None = ("none", 0),
        /// In `BEGIN DEFERRED … COMMIT`.
        Deferred = ("deferred", 1),
        /// In `BEGIN IMMEDIATE … COMMIT`.
        Immediate = ("immediate", 2),
    }
}

/// The raw shape of one workload.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkloadLayer {
    #[serde(default, deserialize_with = "super::strict::string")]
    database: Option<String>,
    #[serde(default, deserialize_with = "super::strict::string")]
    sql: Option<String>,
    #[serde(default)]
    params: Option<Vec<ParamGen>>,
    #[serde(default, deserialize_with = "super::strict::count")]
    weight: Option<u32>,
    transaction: Option<BenchTransaction>,
}

/// The raw shape of `[bench]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BenchLayer {
    #[serde(default)]
    pub(crate) workloads: BTreeMap<String, WorkloadLayer>,
}

/// One user-defined workload, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Workload {
    /// The name, the key under `[bench.workloads]`.
    pub name: String,
    /// The configured database it runs on.
    pub database: String,
    /// The statement, with `?1`, `?2`, … placeholders.
    pub sql: String,
    /// One generator per placeholder.
    pub params: Vec<ParamGen>,
    /// Its share of the mixed run. Default: 1.
    pub weight: u32,
    /// How it runs. Default: none.
    pub transaction: BenchTransaction,
}

/// The most a workload's SQL may hold, in bytes.
pub const MAX_SQL_BYTES: usize = 65_536;
/// The longest `{ text = N }`.
pub const MAX_TEXT: u32 = 65_536;

impl WorkloadLayer {
    /// Validates one workload; `Err((key, message))` names the key under the workload.
    pub(crate) fn resolve(
        self,
        name: &str,
        databases: &[&String],
    ) -> Result<Workload, (&'static str, String)> {
        let database = self.database.ok_or((
            "database",
            "missing: every workload names a database".to_owned(),
        ))?;
        if !databases.contains(&&database) {
            let known: Vec<&str> = databases.iter().map(|d| d.as_str()).collect();
            return Err((
                "database",
                format!(
                    "unknown database {database:?}: expected one of {}",
                    known.join(", ")
                ),
            ));
        }
        let sql = self
            .sql
            .ok_or(("sql", "missing: every workload has a statement".to_owned()))?;
        if sql.trim().is_empty() || sql.len() > MAX_SQL_BYTES {
            return Err((
                "sql",
                format!("expected a statement of 1 to {MAX_SQL_BYTES} bytes"),
            ));
        }
        let params = self.params.unwrap_or_default();
        for p in &params {
            match p {
                ParamGen::Int([lo, hi]) if lo > hi => {
                    return Err((
                        "params",
                        format!("invalid int range [{lo}, {hi}]: expected the low bound first"),
                    ))
                }
                ParamGen::Text(n) if *n == 0 || *n > MAX_TEXT => {
                    return Err((
                        "params",
                        format!("invalid text length {n}: expected 1 to {MAX_TEXT}"),
                    ))
                }
                ParamGen::Sample(q) if q.trim().is_empty() || q.len() > MAX_SQL_BYTES => {
                    return Err((
                        "params",
                        format!("invalid sample query: expected 1 to {MAX_SQL_BYTES} bytes"),
                    ))
                }
                _ => {}
            }
        }
        let weight = self.weight.unwrap_or(1);
        if !(1..=1000).contains(&weight) {
            return Err((
                "weight",
                format!("invalid weight {weight}: expected 1 to 1000"),
            ));
        }
        Ok(Workload {
            name: name.to_owned(),
            database,
            sql,
            params,
            weight,
            transaction: self.transaction.unwrap_or(BenchTransaction::None),
        })
    }
}
