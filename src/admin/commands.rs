//! The admin commands: each renders its answer in memory from a snapshot. The pool table is
//! rendered from the `stats json` document, so that `litepool stats --socket --watch` draws the
//! same table (with rates between two documents) from what it received.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use super::Source;
use crate::pools::{DatabaseStats, Pools, Snapshot};
use crate::settings::{PoolSettings, Settings};

/// The commands the socket answers, with what each gives.
pub const COMMANDS: &[(&str, &str)] = &[
    ("pools", "the pool table"),
    (
        "stats json",
        "every statistic, as `litepool stats --json` prints it",
    ),
    (
        "stats prometheus",
        "every metric, in the Prometheus text format",
    ),
    (
        "settings",
        "the settings in force: environment, sources, key = value",
    ),
    (
        "reload",
        "re-read the configuration and apply it; prints key: old -> new",
    ),
    ("help", "these commands"),
];

/// The document of `litepool stats --json` and of the socket's `stats json`: `env`, `sources`,
/// `databases`, `pools`; with a non-empty `waiting` (the admin socket's), also `waiting`
/// (checkouts waiting now per pool) and `longest_wait_seconds` (per pool, the longest wait of
/// those so far, or null), both counted while an admin socket is served.
pub fn stats_document(
    settings: &Settings,
    databases: &BTreeMap<String, DatabaseStats>,
    pools: &Snapshot,
    waiting: &BTreeMap<String, (u64, Option<Duration>)>,
) -> Value {
    let count: BTreeMap<_, _> = waiting.iter().map(|(k, (n, _))| (k, n)).collect();
    let longest: BTreeMap<_, _> = waiting
        .iter()
        .map(|(k, (_, d))| (k, d.map(|d| d.as_secs_f64())))
        .collect();
    let mut doc = json!({
        "env": settings.env,
        "sources": settings.sources,
        "databases": databases,
        "pools": pools,
    });
    if !waiting.is_empty() {
        doc["waiting"] = json!(count);
        doc["longest_wait_seconds"] = json!(longest);
    }
    doc
}

fn document(pools: &Pools) -> Value {
    let stats = pools.stats();
    let waiting = stats
        .0
        .keys()
        .filter_map(|n| Some((n.clone(), pools.named(n).ok()?.waiting())))
        .collect();
    stats_document(&pools.settings(), &pools.database_stats(), &stats, &waiting)
}

/// The answer to one request line.
pub(super) fn run(line: &str, pools: &Pools, source: &Source) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["pools"] => table(&document(pools), None),
        ["stats", "json"] => {
            serde_json::to_string_pretty(&document(pools)).unwrap_or_else(|e| format!("error: {e}"))
        }
        ["stats", "prometheus"] => super::prometheus(&pools.stats(), &pools.database_stats()),
        ["settings"] => settings_text(&pools.settings()),
        ["reload"] => match source.load(pools).and_then(|s| pools.reload(&s)) {
            Ok(report) => format!("ok\n{report}\n"),
            Err(e) => format!("error: {e}\n"),
        },
        ["help"] => COMMANDS
            .iter()
            .map(|(c, what)| format!("{c:<17} {what}\n"))
            .collect(),
        _ => {
            let shown: String = line.chars().take(80).collect();
            let allowed: Vec<&str> = COMMANDS.iter().map(|(c, _)| *c).collect();
            format!(
                "error: unknown command {shown:?}: allowed commands are {}\n",
                allowed.join(", ")
            )
        }
    }
}

/// The settings as `key = value` lines, after the environment and the sources.
pub(super) fn settings_text(s: &Settings) -> String {
    let mut out = format!("env = {}\nsources = {}\n", s.env, s.sources.join(" + "));
    let mut line = |k: String, v: String| {
        let _ = writeln!(out, "{k} = {v}");
    };
    for (name, db) in &s.databases {
        let at = format!("databases.{name}");
        line(format!("{at}.path"), db.path.display().to_string());
        line(format!("{at}.profile"), db.profile.name().to_owned());
        for setting in db.profile.settings() {
            line(
                format!("{at}.pragmas.{}", setting.pragma),
                setting.configured.clone(),
            );
        }
        pool_lines(&mut line, &format!("{at}.pool"), &db.pool);
        if let Some(split) = &db.split {
            line(
                format!("{at}.writer.connection_timeout"),
                humantime::format_duration(split.writer_connection_timeout).to_string(),
            );
            pool_lines(&mut line, &format!("{at}.readers"), &split.readers);
        }
    }
    if let Some(b) = s.memory_budget {
        line("limits.memory_budget".into(), format!("{b:?}"));
    }
    if let Some(p) = &s.admin_socket {
        line("admin.socket".into(), p.display().to_string());
    }
    out
}

fn pool_lines(line: &mut impl FnMut(String, String), at: &str, p: &PoolSettings) {
    let d = |d: Option<Duration>| {
        d.map_or("off".to_owned(), |d| {
            humantime::format_duration(d).to_string()
        })
    };
    line(format!("{at}.max_size"), p.max_size.to_string());
    line(
        format!("{at}.min_idle"),
        p.min_idle.map_or("max_size".to_owned(), |m| m.to_string()),
    );
    line(
        format!("{at}.connection_timeout"),
        d(Some(p.connection_timeout)),
    );
    line(format!("{at}.idle_timeout"), d(p.idle_timeout));
    line(format!("{at}.max_lifetime"), d(p.max_lifetime));
    line(
        format!("{at}.test_on_check_out"),
        p.test_on_check_out.to_string(),
    );
    line(format!("{at}.stats"), p.stats.to_string());
}

/// The pool table of a `stats json` document. With `previous` (an earlier document and the
/// time between the two), the counters also show as rates per second.
pub fn table(doc: &Value, previous: Option<(&Value, Duration)>) -> String {
    let u = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let ms = |v: &Value, k: &str, q: &str| {
        let s = v
            .get(k)
            .and_then(|s| s.get(q))
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        format!("{:.2}ms", s * 1e3)
    };
    let mut out = String::new();
    let rates = previous.is_some();
    let _ = write!(
        out,
        "{:<24} {:>4} {:>4} {:>4} {:>4} {:>4} {:>9} {:>9} {:>8} {:>8} {:>8} {:>6} {:>6}",
        "pool",
        "max",
        "open",
        "idle",
        "used",
        "wait",
        "wait p50",
        "wait p99",
        "timeouts",
        "created",
        "closed",
        "c.fail",
        "hit%"
    );
    if rates {
        let _ = write!(
            out,
            " {:>11} {:>10} {:>10}",
            "checkouts/s", "timeouts/s", "created/s"
        );
    }
    out.push('\n');
    let empty = serde_json::Map::new();
    let pools = doc
        .get("pools")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut errors = Vec::new();
    for (name, p) in pools {
        let hit = p
            .get("cache")
            .and_then(|c| c.get("hit_ratio"))
            .and_then(Value::as_f64)
            .map_or("-".to_owned(), |r| format!("{:.1}", r * 100.0));
        let waiting = doc
            .get("waiting")
            .and_then(|w| w.get(name))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let longest = doc
            .get("longest_wait_seconds")
            .and_then(|w| w.get(name))
            .and_then(Value::as_f64)
            .map_or("-".to_owned(), |s| format!("{:.2}ms", s * 1e3));
        let _ = write!(
            out,
            "{:<24} {:>4} {:>4} {:>4} {:>4} {:>4} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>6} {:>6}",
            name,
            u(p, "max_size"),
            u(p, "connections"),
            u(p, "idle"),
            u(p, "in_use"),
            waiting,
            longest,
            ms(p, "wait", "p50_seconds"),
            ms(p, "wait", "p99_seconds"),
            u(p, "timeouts"),
            u(p, "connections_created"),
            u(p, "connections_closed"),
            u(p, "customizer_failures"),
            hit
        );
        if let Some((prev, dt)) = previous {
            let secs = dt.as_secs_f64().max(1e-9);
            let before = prev.get("pools").and_then(|ps| ps.get(name));
            let rate = |k: &str| {
                let b = before.map_or(0, |b| u(b, k));
                u(p, k).saturating_sub(b) as f64 / secs
            };
            let _ = write!(
                out,
                " {:>11.1} {:>10.1} {:>10.1}",
                rate("checkouts"),
                rate("timeouts"),
                rate("connections_created")
            );
        }
        out.push('\n');
        if let Some(m) = p
            .get("last_customizer_error")
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
        {
            errors.push(format!("{name}: last error: {m}"));
        }
    }
    let databases = doc
        .get("databases")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, d) in databases {
        if let Some(w) = d.get("write").filter(|w| !w.is_null()) {
            let _ = writeln!(
                out,
                "{name}: group commit: {} queued, {} batches (mean {:.1}, max {}), {} writes, {} failed, queue wait p99 {}",
                u(w, "queued"),
                u(w, "batches"),
                w.get("mean_batch").and_then(Value::as_f64).unwrap_or(0.0),
                u(w, "max_batch"),
                u(w, "writes"),
                u(w, "failed_writes"),
                ms(w, "queue_wait", "p99_seconds"),
            );
        }
    }
    for e in errors {
        out.push_str(&e);
        out.push('\n');
    }
    out
}
