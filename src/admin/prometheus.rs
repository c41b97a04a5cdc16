//! The Prometheus text exposition format of the statistics: every metric of
//! [`crate::metrics::METRICS`], with its `# HELP` and `# TYPE`, under the names the `metrics`
//! exporter registers. `litepool stats --format prometheus` and the admin socket's
//! `stats prometheus` print it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::histogram::Summary;
use crate::metrics::{names, MetricDesc, Scope, METRICS};
use crate::pools::{DatabaseStats, Snapshot};
use crate::stats::PoolStats;

/// One series: its extra labels and its value.
enum Value {
    Number(f64),
    /// A histogram as a summary; `quantiles` false when only its sum and count are known.
    Summary {
        s: Summary,
        quantiles: bool,
    },
    /// A summary of plain numbers (sum and count only).
    Totals {
        sum: f64,
        count: u64,
    },
}

/// The text exposition format of `pools` and `databases`. Durations in seconds, sizes in
/// bytes. Pool series carry `db_client_connection_pool_name`, database series `db_namespace`.
/// `db_client_connection_pending_requests` is 0 (this text is rendered from snapshots, which do
/// not count waiting checkouts; the admin socket's `pools` table shows them).
pub fn prometheus(pools: &Snapshot, databases: &BTreeMap<String, DatabaseStats>) -> String {
    let mut out = String::new();
    for d in METRICS {
        let _ = writeln!(out, "# HELP {} {}", d.name, d.help);
        let _ = writeln!(out, "# TYPE {} {}", d.name, d.kind.prometheus_type());
        let rows: Vec<(String, Value)> = match d.scope {
            Scope::Pool => pools
                .0
                .values()
                .flat_map(|p| {
                    pool_rows(d, p)
                        .into_iter()
                        .map(|(extra, v)| (label(names::POOL, &p.database) + &extra, v))
                })
                .collect(),
            Scope::Database => databases
                .values()
                .flat_map(|s| {
                    database_rows(d, s)
                        .into_iter()
                        .map(|(extra, v)| (label(names::DATABASE, &s.database) + &extra, v))
                })
                .collect(),
        };
        for (labels, value) in rows {
            let labels = format!("{labels},{}", label(names::SYSTEM, "sqlite"));
            write_value(&mut out, d.name, &labels, value);
        }
    }
    out
}

fn write_value(out: &mut String, name: &str, labels: &str, value: Value) {
    match value {
        Value::Number(v) => {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
        Value::Summary { s, quantiles } => {
            if quantiles {
                for (q, d) in [("0.5", s.p50), ("0.9", s.p90), ("0.99", s.p99)] {
                    let _ = writeln!(
                        out,
                        "{name}{{{labels},quantile=\"{q}\"}} {}",
                        d.as_secs_f64()
                    );
                }
            }
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", s.total.as_secs_f64());
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", s.count);
        }
        Value::Totals { sum, count } => {
            let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
        }
    }
}

/// `key="value"`, with the key's dots as underscores and the value escaped.
fn label(key: &str, value: &str) -> String {
    format!("{}=\"{}\"", key.replace('.', "_"), escape(value))
}

fn number(v: impl Into<f64>) -> Vec<(String, Value)> {
    vec![(String::new(), Value::Number(v.into()))]
}

fn summary(s: Summary) -> Vec<(String, Value)> {
    vec![(String::new(), Value::Summary { s, quantiles: true })]
}

fn pool_rows(d: &MetricDesc, p: &PoolStats) -> Vec<(String, Value)> {
    match d.name {
        names::COUNT => [("idle", p.idle), ("used", p.in_use)]
            .into_iter()
            .map(|(state, v)| {
                (
                    format!(",{}", label(names::STATE, state)),
                    Value::Number(v.into()),
                )
            })
            .collect(),
        names::MAX => number(p.max_size),
        names::IDLE_MIN => number(p.min_idle),
        names::PENDING => number(0u32),
        names::TIMEOUTS => number(p.timeouts as f64),
        names::CREATE_TIME => summary(p.create),
        names::WAIT_TIME => summary(p.wait),
        names::USE_TIME => summary(p.hold),
        names::CACHE_HIT => number(p.cache.hit as f64),
        names::CACHE_MISS => number(p.cache.miss as f64),
        names::CACHE_WRITE => number(p.cache.write as f64),
        names::CACHE_SPILL => number(p.cache.spill as f64),
        names::CACHE_USED => number(p.cache.used_bytes as f64),
        names::REPLICA_TXID => p
            .replica
            .as_ref()
            .and_then(|r| r.txid.as_deref())
            .and_then(|t| u64::from_str_radix(t, 16).ok())
            .map_or_else(Vec::new, |t| number(t as f64)),
        names::REPLICA_POLL_AGE => p
            .replica
            .as_ref()
            .and_then(|r| r.poll_age_seconds)
            .map_or_else(Vec::new, |a| number(a as f64)),
        names::REPLICA_STALENESS => p
            .replica
            .as_ref()
            .and_then(|r| r.staleness)
            .map_or_else(Vec::new, |s| number(s.as_secs_f64())),
        _ => Vec::new(),
    }
}

fn database_rows(d: &MetricDesc, s: &DatabaseStats) -> Vec<(String, Value)> {
    if d.name == names::WAL_SIZE {
        return number(s.wal.unwrap_or(0) as f64);
    }
    if d.name == names::CHECKPOINTS {
        if s.checkpoint.is_none() && s.write.is_none() {
            return Vec::new();
        }
        return s
            .checkpoints_by_kind()
            .into_iter()
            .map(|(k, n)| {
                (
                    format!(",{}", label(names::CHECKPOINT_KIND, k)),
                    Value::Number(n as f64),
                )
            })
            .collect();
    }
    if let Some(c) = &s.checkpoint {
        match d.name {
            names::CHECKPOINT_BUSY => return number(c.busy as f64),
            names::WAL_PEAK => return number(c.wal_peak as f64),
            names::WAL_PENDING_PEAK => return number(c.pending_peak as f64),
            _ => {}
        }
    }
    let Some(w) = &s.write else {
        return Vec::new();
    };
    match d.name {
        names::WRITE_QUEUE_WAIT => summary(w.queue_wait),
        names::WRITE_LATENCY => summary(w.latency),
        names::WRITE_BATCH_SIZE => vec![(
            String::new(),
            Value::Totals {
                sum: w.closures as f64,
                count: w.batches,
            },
        )],
        names::WRITES => number(w.writes as f64),
        names::WRITE_FAILURES => number(w.failed_writes as f64),
        names::WRITE_CANCELLED => number(w.cancelled as f64),
        names::WRITE_QUEUED => number(w.queued as f64),
        _ => Vec::new(),
    }
}

/// A label value with `\`, `"` and newlines escaped, as the text format requires.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
