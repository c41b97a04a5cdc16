//! What `litepool tune` prints: the measured points, each dimension with its reason, the
//! repeated runs that decide, the `[profiles.tuned]` snippet; as text, JSON and an HTML page
//! drawn with `bench`'s report charts.

use std::fmt::{self, Write as _};

use litepool::PragmaSet;
use serde::Serialize;

use crate::tune::{durability_text, TunedFrom};
use crate::tune_search::REPEATS;
use crate::userbench::Row;

/// A candidate: the pragmas, a split database's readers and write path, who checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cand {
    pub set: PragmaSet,
    /// A split database's readers (`max_size`); `None` on a single pool.
    pub readers: Option<u32>,
    /// Writes through group commit (`Handle::write`) instead of a transaction each.
    pub group_commit: bool,
    /// `checkpoint = "background"`.
    pub background_checkpoints: bool,
}

/// One measured run of a candidate.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// What the run varied: `configured`, `cache_size`, `mmap_size`, … (or, in the
    /// confirmation, the contender's name).
    pub dimension: String,
    /// The value it tried.
    pub value: String,
    /// The whole candidate profile.
    pub set: PragmaSet,
    /// The mixed run (after the warm-up).
    pub row: Row,
    /// Page-cache hits and misses of the run, summed over its connections.
    pub cache_hit: u64,
    pub cache_miss: u64,
    /// A split database's readers (`max_size`) in the run; `None` on a single pool.
    pub readers: Option<u32>,
    /// Writes went through group commit.
    pub group_commit: bool,
    /// `checkpoint = "background"`.
    pub background_checkpoints: bool,
    /// Checkouts that waited (every pool of the database), and the longest p99 wait.
    pub waited: u64,
    pub wait_p99_seconds: f64,
    /// Checkouts of the readers' pool that waited (a split database).
    pub readers_waited: u64,
}

impl Point {
    pub fn new(dimension: &str, value: String, cand: &Cand, row: Row) -> Point {
        Point {
            dimension: dimension.to_owned(),
            value,
            set: cand.set.clone(),
            row,
            cache_hit: 0,
            cache_miss: 0,
            readers: cand.readers,
            group_commit: cand.group_commit,
            background_checkpoints: cand.background_checkpoints,
            waited: 0,
            wait_p99_seconds: 0.0,
            readers_waited: 0,
        }
    }

    /// The candidate the run measured.
    pub fn cand(&self) -> Cand {
        Cand {
            set: self.set.clone(),
            readers: self.readers,
            group_commit: self.group_commit,
            background_checkpoints: self.background_checkpoints,
        }
    }

    /// Page-cache misses per completed operation.
    pub fn misses_per_op(&self) -> f64 {
        self.cache_miss as f64 / self.row.ops.max(1) as f64
    }

    /// `hit / (hit + miss)`, if any page was looked up.
    pub fn hit_ratio(&self) -> Option<f64> {
        let n = self.cache_hit + self.cache_miss;
        (n > 0).then(|| self.cache_hit as f64 / n as f64)
    }
}

/// One searched dimension: why, and which point was chosen (none: the value in force stays).
#[derive(Debug, Clone, Serialize)]
pub struct Dimension {
    pub name: String,
    pub reason: String,
    pub chosen: Option<usize>,
    /// The point the dimension's search started from (the best so far then), when it was
    /// compared with the values tried.
    pub from: Option<usize>,
    /// The run of the proposal with this dimension as configured, if measured.
    pub without: Option<usize>,
}

impl Dimension {
    pub fn new(name: &str, reason: String, chosen: Option<usize>) -> Dimension {
        Dimension {
            name: name.to_owned(),
            reason,
            chosen,
            from: None,
            without: None,
        }
    }

    /// The same, searched from point `from`.
    pub fn from(self, from: usize) -> Dimension {
        Dimension {
            from: Some(from),
            ..self
        }
    }
}

/// One contender's repeated runs.
#[derive(Debug, Clone, Serialize)]
pub struct Confirmation {
    pub name: String,
    #[serde(flatten)]
    pub cand: Cand,
    pub ops_per_sec: Vec<f64>,
    pub p99_seconds: Vec<f64>,
}

impl Confirmation {
    pub fn new(name: &str, cand: Cand) -> Confirmation {
        Confirmation {
            name: name.to_owned(),
            cand,
            ops_per_sec: Vec::new(),
            p99_seconds: Vec::new(),
        }
    }

    pub fn push(&mut self, p: Point) {
        self.ops_per_sec.push(p.row.ops_per_sec);
        self.p99_seconds.push(p.row.latency.p99.as_secs_f64());
    }

    pub fn median(&self) -> f64 {
        let mut v = self.ops_per_sec.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }

    fn min(&self) -> f64 {
        self.ops_per_sec
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
    }

    fn max(&self) -> f64 {
        self.ops_per_sec.iter().copied().fold(0.0, f64::max)
    }

    /// (max − min) / median: the run-to-run noise.
    fn spread(&self) -> f64 {
        (self.max() - self.min()) / self.median().max(f64::MIN_POSITIVE)
    }
}

/// The whole result.
#[derive(Debug, Clone, Serialize)]
pub struct Tuned {
    pub database: String,
    pub path: String,
    pub file_bytes: u64,
    pub page_size: u64,
    pub workloads: Vec<String>,
    pub threads: usize,
    pub time_budget_seconds: f64,
    pub elapsed_seconds: f64,
    /// `synchronous` every run was measured at (the configured one).
    pub synchronous: String,
    /// The database's `durability`, as configured.
    pub durability: String,
    pub points: Vec<Point>,
    pub dimensions: Vec<Dimension>,
    pub confirmation: Vec<Confirmation>,
    /// Median ops/s of `tuned` over `configured`.
    pub ratio: f64,
    /// True only when every run of `tuned` beat every run of `configured`, by more than either
    /// one's spread.
    pub gain: bool,
    pub verdict: String,
    /// Runs measured, warm-up excluded, the confirmation included.
    pub measured: usize,
    pub configured: PragmaSet,
    /// A split database's readers as configured, and as proposed.
    pub configured_readers: Option<u32>,
    pub tuned: PragmaSet,
    pub tuned_readers: Option<u32>,
    /// Writes through group commit (`Handle::write`), as proposed (a split database).
    pub tuned_group_commit: bool,
    /// `checkpoint = "background"`, as configured and as proposed.
    pub configured_background_checkpoints: bool,
    pub tuned_background_checkpoints: bool,
    /// Distinct candidates measured (the configured profile included, repeats not).
    pub candidates: usize,
    pub snippet: String,
}

impl Tuned {
    pub fn new(f: TunedFrom<'_>) -> Tuned {
        let find = |n: &str| f.confirm.iter().find(|c| c.name == n);
        let base = find("configured");
        let lead = find("tuned");
        let (ratio, gain) = match (base, lead) {
            (Some(b), Some(l)) => {
                let ratio = l.median() / b.median().max(f64::MIN_POSITIVE);
                // A win: every run of tuned beat every run of configured, and by more than
                // either profile's own run-to-run spread.
                (
                    ratio,
                    l.min() > b.max() && ratio - 1.0 > l.spread().max(b.spread()),
                )
            }
            _ => (1.0, false),
        };
        let verdict = match (base, lead) {
            (_, None) => "no measurable gain; keep your profile (no candidate beat it)".to_owned(),
            (Some(b), Some(l)) if gain => format!(
                "tuned is {ratio:.2}x the configured profile: all {REPEATS} runs of tuned beat all {REPEATS} of configured, by more than their spreads ({:.1}% and {:.1}%)",
                l.spread() * 100.0,
                b.spread() * 100.0
            ),
            (Some(b), Some(l)) if l.max() < b.min() => format!(
                "no measurable gain; keep your profile (tuned {ratio:.2}x: slower than the configured profile in every run; spread {:.1}% and {:.1}%)",
                l.spread() * 100.0,
                b.spread() * 100.0
            ),
            (Some(b), Some(l)) => format!(
                "no measurable gain; keep your profile (tuned {ratio:.2}x, inside the noise: spread {:.1}% and {:.1}%)",
                l.spread() * 100.0,
                b.spread() * 100.0
            ),
            _ => "no measurable gain; keep your profile".to_owned(),
        };
        let (synchronous, durability) = durability_text(f.db);
        Tuned {
            database: f.db.name.clone(),
            path: f.db.path.display().to_string(),
            file_bytes: f.file_bytes,
            page_size: f.page_size,
            workloads: f.workloads.iter().map(|w| w.name.clone()).collect(),
            threads: f.threads,
            time_budget_seconds: f.budget.as_secs_f64(),
            elapsed_seconds: f.elapsed.as_secs_f64(),
            synchronous,
            durability,
            measured: f.points.len() + f.confirm.iter().map(|c| c.ops_per_sec.len()).sum::<usize>(),
            candidates: distinct(&f.points),
            points: f.points,
            dimensions: f.dims,
            confirmation: f.confirm,
            ratio,
            gain,
            verdict,
            snippet: snippet(&f.db.name, &f.leader, &f.configured, f.overridden),
            configured_readers: f.configured.readers,
            configured_background_checkpoints: f.configured.background_checkpoints,
            configured: f.configured.set,
            tuned: f.leader.set,
            tuned_readers: f.leader.readers,
            tuned_group_commit: f.leader.group_commit,
            tuned_background_checkpoints: f.leader.background_checkpoints,
        }
    }
}

/// Distinct candidates among `points`.
pub fn distinct(points: &[Point]) -> usize {
    let mut seen: Vec<Cand> = Vec::new();
    for p in points {
        let c = p.cand();
        if !seen.contains(&c) {
            seen.push(c);
        }
    }
    seen.len()
}

/// `leader` as a `[profiles.tuned]` table to paste, then what changes outside the profile (the
/// database's `checkpoint`, its readers, the write path), as comments: those keys belong in the
/// user's own `[databases.<name>]` tables, which a pasted header would define twice.
pub fn snippet(database: &str, leader: &Cand, configured: &Cand, overridden: &[String]) -> String {
    let keys = |set: &PragmaSet| -> Vec<(String, String)> {
        let Ok(serde_json::Value::Object(keys)) = serde_json::to_value(set) else {
            return Vec::new();
        };
        keys.into_iter()
            .filter_map(|(k, v)| {
                let value = match v {
                    serde_json::Value::Null => return None,
                    serde_json::Value::Object(o) => format!(
                        "{{ {} }}",
                        o.iter()
                            .map(|(k, v)| format!("{k} = {v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    other => other.to_string(),
                };
                Some((k, value))
            })
            .collect()
    };
    let mut out = String::from("[profiles.tuned]\n");
    let (tuned, before) = (keys(&leader.set), keys(&configured.set));
    for (k, v) in &tuned {
        let _ = writeln!(out, "{k} = {v}");
    }
    // The database's own pragmas override the profile: a changed key goes there too.
    let shadowed: Vec<&(String, String)> = tuned
        .iter()
        .filter(|kv| overridden.contains(&kv.0) && !before.contains(kv))
        .collect();
    let db = serde_json::Value::String(database.to_owned());
    if !shadowed.is_empty() {
        let _ = write!(
            out,
            "\n# and in your [databases.{db}.pragmas] table, which overrides the profile:\n"
        );
        for (k, v) in shadowed {
            let _ = writeln!(out, "# {k} = {v}");
        }
    }
    if leader.background_checkpoints != configured.background_checkpoints {
        let v = if leader.background_checkpoints {
            "background"
        } else {
            "sqlite"
        };
        let _ = write!(
            out,
            "\n# and in your [databases.{db}] table:\n# checkpoint = \"{v}\"\n"
        );
    }
    if let Some(n) = leader.readers.filter(|r| Some(*r) != configured.readers) {
        let _ = write!(
            out,
            "\n# and in your [databases.{db}.readers] table:\n# max_size = {n}\n"
        );
    }
    if leader.group_commit && !configured.group_commit {
        let _ = write!(
            out,
            "\n# and write through Handle::write or write_async (group commit): in the search's single runs it beat a transaction per write on the writer by more than the noise\n"
        );
    }
    out
}

impl fmt::Display for Tuned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "litepool tune: database {:?} ({}, {}, page size {}), workloads {}; mixed on {} threads; {} of a {:.0}s budget",
            self.database,
            self.path,
            litepool::budget::human(self.file_bytes),
            self.page_size,
            self.workloads.join(", "),
            self.threads,
            format_args!("{:.1}s", self.elapsed_seconds),
            self.time_budget_seconds
        )?;
        writeln!(
            f,
            "every run measured at synchronous = {}, durability = {} (as configured: tune never changes them)",
            self.synchronous, self.durability
        )?;
        writeln!(
            f,
            "{:<24} {:>14} {:>10} {:>9} {:>9} {:>9} {:>7}",
            "dimension", "value", "ops/s", "p99", "hit ratio", "misses/op", "waited"
        )?;
        for (i, p) in self.points.iter().enumerate() {
            let chosen = self.dimensions.iter().any(|d| d.chosen == Some(i));
            writeln!(
                f,
                "{:<24} {:>14} {:>10.0} {:>9} {:>9} {:>9.3} {:>7}{}",
                p.dimension,
                p.value,
                p.row.ops_per_sec,
                litepool::histogram::human(p.row.latency.p99),
                p.hit_ratio()
                    .map_or("-".into(), |h| format!("{:.1}%", h * 100.0)),
                p.misses_per_op(),
                p.waited,
                if chosen { "  <- chosen" } else { "" }
            )?;
        }
        for d in &self.dimensions {
            let value = d.chosen.map_or("kept as it was".to_owned(), |i| {
                self.points[i].value.clone()
            });
            writeln!(f, "{}: {value}: {}", d.name, d.reason)?;
        }
        writeln!(
            f,
            "confirmation, {REPEATS} runs each (ops/s; spread = (max - min) / median):"
        )?;
        for c in &self.confirmation {
            let runs: Vec<String> = c.ops_per_sec.iter().map(|o| format!("{o:.0}")).collect();
            writeln!(
                f,
                "  {:<11} median {:>9.0}  spread {:>5.1}%  runs {}",
                c.name,
                c.median(),
                c.spread() * 100.0,
                runs.join(", ")
            )?;
        }
        writeln!(f, "verdict: {}", self.verdict)?;
        writeln!(
            f,
            "{} runs measured ({} distinct candidates) in {:.1}s (time budget {:.0}s)",
            self.measured, self.candidates, self.elapsed_seconds, self.time_budget_seconds
        )?;
        if self.gain {
            writeln!(
                f,
                "\n# Paste into your configuration, then set profile = \"tuned\" on database {:?}:",
                self.database
            )?;
        } else {
            writeln!(
                f,
                "\n# No measurable gain: keep your profile. The best candidate, for reference only (not a proposal; to try it, paste it and set profile = \"tuned\" on database {:?}):",
                self.database
            )?;
        }
        write!(f, "{}", self.snippet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snippet_loads_back_as_the_same_profile_and_readers() {
        let settings = litepool::Settings::from_toml(
            r#"
            [profiles.p]
            busy_timeout = "5s"
            journal_mode = "wal"
            synchronous = "full"
            cache_size = { pages = 500 }
            mmap_size = "0"
            temp_store = "memory"
            journal_size_limit = "4MiB"
            foreign_keys = true
            transaction_behavior = "immediate"
            [databases.main]
            path = "main.db"
            profile = "p"
            "#,
        )
        .unwrap();
        let set = settings.databases["main"].profile.pragmas().clone();
        let configured = Cand {
            set: set.clone(),
            readers: Some(2),
            group_commit: false,
            background_checkpoints: false,
        };
        let leader = Cand {
            readers: Some(3),
            group_commit: true,
            background_checkpoints: true,
            ..configured.clone()
        };
        let text = snippet("main", &leader, &configured, &[]);
        // The commented keys, uncommented into the user's own tables, load as proposed.
        let keys = |table: &str| {
            let at = text.find(&format!("[{table}] table:\n")).unwrap();
            text[at..]
                .lines()
                .nth(1)
                .unwrap()
                .trim_start_matches("# ")
                .to_owned()
        };
        let pasted = format!(
            "{text}\n[databases.main]\npath = \"main.db\"\nprofile = \"tuned\"\n{}\n[databases.main.writer]\n[databases.main.readers]\n{}\n",
            keys("databases.\"main\""),
            keys("databases.\"main\".readers"),
        );
        let back = litepool::Settings::from_toml(&pasted).unwrap();
        let main = &back.databases["main"];
        assert_eq!(main.profile.pragmas(), &set, "{text}");
        assert_eq!(main.split.as_ref().unwrap().readers.max_size, 3, "{pasted}");
        assert_eq!(main.checkpoint, litepool::settings::Checkpoint::Background);
        assert!(text.contains("Handle::write"), "{text}");
        // Nothing outside the profile changes: no comment at all.
        let same = snippet("main", &configured, &configured, &[]);
        assert!(!same.contains('#'), "{same}");
    }
}
