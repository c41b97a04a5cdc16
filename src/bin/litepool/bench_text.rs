//! How a `litepool bench` report reads as text, and the built-in comparison as a report.

use litepool::Settings;

use crate::userbench::{Report, Row};

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first = self.profiles.first().map_or("", String::as_str);
        writeln!(
            f,
            "litepool bench ({}): runs of {}, mixed on {} threads, {} cpus; ratio = ops/s against {first}",
            self.kind, self.took(), self.threads, self.cpus
        )?;
        for (db, what) in &self.data {
            writeln!(f, "  {db}: {what}")?;
        }
        writeln!(
            f,
            "{:<20} {:<22} {:>7} {:>7} {:>10} {:>9} {:>9} {:>9} {:>7} {:>6} {:>6} {:>11}",
            "workload",
            "profile",
            "threads",
            "seconds",
            "ops/s",
            "p50",
            "p99",
            "max",
            "ratio",
            "busy",
            "errors",
            "interrupted"
        )?;
        let mut names: Vec<&str> = Vec::new();
        for r in &self.results {
            if !names.contains(&r.workload.as_str()) {
                names.push(&r.workload);
            }
        }
        for name in names {
            let rows: Vec<_> = self.results.iter().filter(|r| r.workload == name).collect();
            let base = rows
                .iter()
                .find(|r| r.profile == first)
                .map(|r| r.ops_per_sec);
            for r in rows {
                let ratio = base
                    .filter(|b| *b > 0.0)
                    .map_or("-".to_owned(), |b| format!("{:.2}x", r.ops_per_sec / b));
                writeln!(
                    f,
                    "{:<20} {:<22} {:>7} {:>7.2} {:>10.0} {:>9} {:>9} {:>9} {:>7} {:>6} {:>6} {:>11}",
                    r.workload,
                    r.profile,
                    r.threads,
                    r.seconds,
                    r.ops_per_sec,
                    latency(r, r.latency.p50),
                    latency(r, r.latency.p99),
                    latency(r, r.latency.max),
                    ratio,
                    r.busy,
                    r.errors,
                    r.interrupted
                )?;
                if let Some(e) = &r.first_error {
                    writeln!(f, "  first error: {e}")?;
                }
            }
        }
        Ok(())
    }
}

/// A latency of `r` for the table: `-` when no operation completed (there is none to show).
fn latency(r: &Row, d: std::time::Duration) -> String {
    if r.ops == 0 {
        "-".to_owned()
    } else {
        litepool::histogram::human(d)
    }
}

impl Report {
    /// The runs' length for a header: the `--seconds` bound and what the runs really took,
    /// e.g. "0.3s (took 0.30-0.31s)".
    pub fn took(&self) -> String {
        let secs = self.results.iter().map(|r| r.seconds);
        let (lo, hi) = (
            secs.clone().fold(f64::INFINITY, f64::min),
            secs.fold(0.0, f64::max),
        );
        if self.results.is_empty() {
            format!("{}s", self.requested_seconds)
        } else {
            format!("{}s (took {lo:.2}-{hi:.2}s)", self.requested_seconds)
        }
    }

    /// The built-in comparison as a report, with what each copy held.
    pub fn from_builtin(c: crate::bench::Comparison, settings: &Settings) -> Report {
        let threads = c.results.iter().map(|m| m.threads).max().unwrap_or(1);
        Report {
            kind: "built-in demo workloads",
            requested_seconds: c.seconds,
            threads,
            cpus: c.cpus,
            profiles: c.profiles,
            workloads: Vec::new(),
            data: c.data.into_iter().collect(),
            results: c
                .results
                .into_iter()
                .map(|m| Row {
                    workload: m.workload.to_string(),
                    profile: m.profile,
                    threads: m.threads,
                    ops: m.ops,
                    interrupted: m.interrupted,
                    seconds: m.seconds,
                    ops_per_sec: m.ops_per_sec,
                    latency: m.latency,
                    busy: m.busy,
                    errors: m.errors,
                    first_error: None,
                })
                .collect(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            sources: settings.sources.clone(),
        }
    }
}
