//! Reports for people: the table form of `litepool check`.

use std::fmt;

use litepool::check::{CheckReport, Outcome};
use litepool::file::FileState;
use litepool::profile::Scope;

/// A [`CheckReport`] as text tables.
pub struct Text<'a>(pub &'a CheckReport);

impl std::ops::Deref for Text<'_> {
    type Target = CheckReport;
    fn deref(&self) -> &CheckReport {
        self.0
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use litepool::budget::human;
        writeln!(
            f,
            "litepool check: env {} ({})",
            self.env,
            self.sources.join(" + ")
        )?;
        for d in &self.databases {
            writeln!(f)?;
            let file = match d.file_before {
                FileState::Missing | FileState::Empty => "new file".to_owned(),
                FileState::Database { bytes, .. } => format!("existing file, {}", human(bytes)),
            };
            writeln!(
                f,
                "{}  {}  ({file}; profile {}; {} connection(s) verified at once)",
                d.name,
                d.path.display(),
                d.profile,
                d.connections
            )?;
            // Said once, above the rows it explains.
            if let Some(e) = &d.error {
                writeln!(f, "  error: {e}")?;
            }
            if let Some(a) = &d.applied {
                writeln!(f, "  applied (--apply, under an exclusive lock): {a}")?;
            }
            writeln!(
                f,
                "  {:<20} {:<12} {:<12} {:<11} status",
                "pragma", "configured", "sqlite", "stored in"
            )?;
            for r in &d.pragmas {
                let status = match r.outcome {
                    Outcome::Read if r.ok() => format!("ok {}/{}", r.connections_ok, r.connections),
                    Outcome::Read => format!(
                        "NOT APPLIED: wanted {} ({}/{} ok)",
                        r.wanted, r.connections_ok, r.connections
                    ),
                    Outcome::WouldChange => format!(
                        "would change {} -> {} (left as it is; check --apply switches it while nothing else holds the database)",
                        r.sqlite, r.wanted
                    ),
                    Outcome::Failed => "FAILED (the error above)".to_owned(),
                    Outcome::NotChecked => "not checked (after the failure above)".to_owned(),
                };
                let scope = match r.scope {
                    Scope::File => "file",
                    Scope::Connection => "connection",
                };
                let sqlite = r.sqlite.to_string();
                writeln!(
                    f,
                    "  {:<20} {:<12} {:<12} {:<11} {status}",
                    r.pragma,
                    r.configured,
                    if sqlite.is_empty() { "-" } else { &sqlite },
                    scope
                )?;
            }
            if let Some(FileState::Database {
                page_size,
                auto_vacuum,
                wal,
                ..
            }) = d.file_after
            {
                let journal = if wal {
                    "wal"
                } else {
                    "rollback (delete, truncate or persist, per connection)"
                };
                let checked = match d.file_before {
                    FileState::Database {
                        quick_check: true, ..
                    } => "; quick_check ok before any write",
                    _ => "",
                };
                writeln!(f, "  stored in the file: journal {journal}, page_size {page_size}, auto_vacuum {auto_vacuum}{checked}")?;
            }
            if let Some(p) = &d.pool {
                for (i, line) in p.to_string().lines().enumerate() {
                    writeln!(f, "  {}{line}", if i == 0 { "pool " } else { "" })?;
                }
            }
            if let Some(r) = &d.replication {
                writeln!(f, "  replication: {r}")?;
            }
            writeln!(
                f,
                "  {}",
                if d.verified {
                    "verified"
                } else {
                    "NOT VERIFIED"
                }
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "memory budget (page cache; cache_size is per connection, mmap is not counted)"
        )?;
        writeln!(
            f,
            "  {:<20} {:>8} {:>12} {:>12} {:>14}",
            "database", "max_size", "cache/conn", "worst case", "bound by file"
        )?;
        for p in &self.memory.pools {
            writeln!(
                f,
                "  {:<20} {:>8} {:>12} {:>12} {:>14}",
                p.database,
                p.max_size,
                human(p.cache_per_connection),
                human(p.worst_case),
                human(p.bound_by_file)
            )?;
        }
        let budget = self.memory.budget.map_or("none".to_owned(), human);
        writeln!(
            f,
            "  {:<20} {:>8} {:>12} {:>12} {:>14}  budget {budget}{}",
            "total",
            "",
            "",
            human(self.memory.worst_case),
            human(self.memory.bound_by_file),
            if self.memory.over() { " EXCEEDED" } else { "" }
        )?;
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        if !self.lint.is_empty() {
            writeln!(f)?;
            writeln!(f, "lint")?;
            for l in &self.lint {
                let level = match l.level {
                    litepool::lint::Level::Error => "error",
                    litepool::lint::Level::Warning => "warning",
                    litepool::lint::Level::Notice => "notice",
                };
                writeln!(
                    f,
                    "  {level} [{}] {}: {} ({})",
                    l.code, l.database, l.message, l.link
                )?;
            }
        }
        writeln!(f)?;
        write!(
            f,
            "{}",
            if self.verified {
                "all settings verified"
            } else if self.databases.iter().any(|d| d.file_error) {
                "a database could not be used (see its error above)"
            } else if self.databases.iter().all(|d| {
                d.error.is_none()
                    && d.pragmas
                        .iter()
                        .all(|r| r.ok() || r.outcome == Outcome::WouldChange)
            }) {
                "the files store settings that differ from the configuration and were left as they are (would change, above); litepool check --apply switches them, when no other process has the database open"
            } else {
                "some settings did NOT take effect"
            }
        )
    }
}

/// One metric family: name, help text, and its value for a pool.
type Family<T> = (&'static str, &'static str, fn(&litepool::PoolStats) -> T);

/// Pool statistics in the Prometheus text exposition format, under the OpenTelemetry names of
/// `litepool::metrics` with dots as underscores and Prometheus' suffixes (`_total` on counters,
/// `_seconds` and `_bytes` on units). Durations are summaries (p50, p90, p99, sum, count).
/// `pending_requests` is left out: a snapshot taken after the pools were used has none waiting,
/// and r2d2 does not report waiters.
pub fn prometheus(stats: &litepool::Snapshot) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: &mut dyn FnMut(&mut String)| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        rows(&mut out);
    };
    let labels = |pool: &str, extra: &str| {
        format!(
            "db_client_connection_pool_name=\"{}\",db_system_name=\"sqlite\"{extra}",
            escape(pool)
        )
    };
    let pools: Vec<&litepool::PoolStats> = stats.0.values().collect();
    family(
        "db_client_connection_count",
        "gauge",
        "Connections open, by state.",
        &mut |o| {
            for p in &pools {
                for (state, v) in [("idle", p.idle), ("used", p.in_use)] {
                    let l = labels(
                        &p.database,
                        &format!(",db_client_connection_state=\"{state}\""),
                    );
                    let _ = writeln!(o, "db_client_connection_count{{{l}}} {v}");
                }
            }
        },
    );
    let gauges: [Family<f64>; 3] = [
        ("db_client_connection_max", "The pool's max_size.", |p| {
            f64::from(p.max_size)
        }),
        (
            "db_client_connection_idle_min",
            "The pool's min_idle.",
            |p| f64::from(p.min_idle),
        ),
        (
            "litepool_cache_used_bytes",
            "Page-cache memory held.",
            |p| p.cache.used_bytes as f64,
        ),
    ];
    for (name, help, get) in gauges {
        family(name, "gauge", help, &mut |o| {
            for p in &pools {
                let _ = writeln!(o, "{name}{{{}}} {}", labels(&p.database, ""), get(p));
            }
        });
    }
    let counters: [Family<u64>; 5] = [
        (
            "db_client_connection_timeouts_total",
            "get() calls that timed out.",
            |p| p.timeouts,
        ),
        ("litepool_cache_hit_total", "Page-cache hits.", |p| {
            p.cache.hit
        }),
        ("litepool_cache_miss_total", "Page-cache misses.", |p| {
            p.cache.miss
        }),
        ("litepool_cache_write_total", "Pages written.", |p| {
            p.cache.write
        }),
        (
            "litepool_cache_spill_total",
            "Pages spilled mid-transaction.",
            |p| p.cache.spill,
        ),
    ];
    for (name, help, get) in counters {
        family(name, "counter", help, &mut |o| {
            for p in &pools {
                let _ = writeln!(o, "{name}{{{}}} {}", labels(&p.database, ""), get(p));
            }
        });
    }
    let summaries: [Family<litepool::histogram::Summary>; 3] = [
        (
            "db_client_connection_create_time_seconds",
            "Opening a connection.",
            |p| p.create,
        ),
        (
            "db_client_connection_wait_time_seconds",
            "Waiting for a connection.",
            |p| p.wait,
        ),
        (
            "db_client_connection_use_time_seconds",
            "From checkout to check-in.",
            |p| p.hold,
        ),
    ];
    for (name, help, get) in summaries {
        family(name, "summary", help, &mut |o| {
            for p in &pools {
                let s = get(p);
                for (q, d) in [("0.5", s.p50), ("0.9", s.p90), ("0.99", s.p99)] {
                    let l = labels(&p.database, &format!(",quantile=\"{q}\""));
                    let _ = writeln!(o, "{name}{{{l}}} {}", d.as_secs_f64());
                }
                let l = labels(&p.database, "");
                let _ = writeln!(o, "{name}_sum{{{l}}} {}", s.total.as_secs_f64());
                let _ = writeln!(o, "{name}_count{{{l}}} {}", s.count);
            }
        });
    }
    out
}

/// A label value with `\`, `"` and newlines escaped, as the text format requires.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
