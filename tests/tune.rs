//! `litepool tune`: on a workload whose best cache size is known by construction, the search
//! lands on it, guided by the page-cache counters; durability is never lowered; the time budget
//! holds; the originals are untouched and no copy is left.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::*;

/// Rows of the table: 16384 rows of 900 bytes, four to a 4096-byte page (about 16 MiB).
const ROWS: i64 = 16_384;
/// The rows the workload reads, uniformly at random: the first 3072, 768 pages (3 MiB).
const HOT: i64 = 3072;
const WORKING_SET: u64 = (HOT as u64 / 4) * 4096;

fn fixture() -> Fixture {
    // A `recommended` profile whose searched keys tune tries; its others never reach a candidate.
    fixture_with(
        "512MiB",
        "[profiles.recommended]\nsynchronous = \"normal\"\nforeign_keys = true\ncache_size = \"8MiB\"\nmmap_size = \"64MiB\"\n",
    )
}

/// The table and its workload, under `budget` (`limits.memory_budget`), `extra` appended.
fn fixture_with(budget: &str, extra: &str) -> Fixture {
    let f = Fixture::new(&format!(
        r#"
[limits]
memory_budget = "{budget}"

[profiles.mine]
busy_timeout = "5s"
journal_mode = "wal"
synchronous = "full"
cache_size = "1MiB"

[databases.main]
path = "{{data}}/main.db"
profile = "mine"
durability = "strict"

# Escaped in the report: <script>alert("tune")</script>
[bench.workloads.hot_rows]
database = "main"
sql = "SELECT length(pad) FROM t WHERE id = ?1"
params = [{{ int = [1, {HOT}] }}]
{extra}
"#
    ));
    let c = rusqlite::Connection::open(f.path("data/main.db")).unwrap();
    c.execute_batch(&format!(
        "PRAGMA journal_mode = wal;
         CREATE TABLE t(id INTEGER PRIMARY KEY, pad BLOB NOT NULL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
         INSERT INTO t SELECT i, randomblob(900) FROM n;
         PRAGMA wal_checkpoint(TRUNCATE);"
    ))
    .unwrap();
    f
}

fn tune(f: &Fixture, tmp: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_litepool"))
        .arg("tune")
        .args(args)
        .current_dir(f.dir.path())
        .env("TMPDIR", tmp)
        .output()
        .unwrap()
}

fn bytes(size: &str) -> u64 {
    let n = |s: &str, unit: &str| s.strip_suffix(unit).map(|n| n.parse::<u64>().unwrap());
    n(size, "KiB")
        .map(|k| k << 10)
        .or_else(|| n(size, "MiB").map(|m| m << 20))
        .unwrap_or_else(|| panic!("a size in KiB or MiB: {size}"))
}

#[test]
fn tune_finds_the_working_set_keeps_durability_and_the_time_budget() {
    let f = fixture();
    let tmp = f.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let db = f.path("data/main.db");
    let (hash, before) = (sha256(&db), listing(&f.path("data")));
    let report = f.path("tune.html");
    let budget = Duration::from_secs(15);
    let t0 = Instant::now();
    let out = tune(
        &f,
        &tmp,
        &[
            "--time-budget",
            "15s",
            "--threads",
            "2",
            "--json",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    let wall = t0.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wall <= budget.mul_f64(1.1),
        "the run took {wall:?}, over the {budget:?} budget + 10%"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["elapsed_seconds"].as_f64().unwrap() <= 15.0 * 1.1);

    // The cache dimension lands within one (doubling) step of the working set, where the hit
    // ratio reaches ~100%; the step below it missed.
    let points = json["points"].as_array().unwrap();
    let cache = json["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "cache_size")
        .unwrap();
    let chosen = &points[cache["chosen"].as_u64().expect("a cache size chosen") as usize];
    let size = bytes(chosen["value"].as_str().unwrap());
    assert!(
        (WORKING_SET..=2 * WORKING_SET).contains(&size),
        "chose {size} bytes for a working set of {WORKING_SET}: {json}"
    );
    // The recommended profile's searched keys were measured, at the configured durability and
    // with the configured profile's other keys.
    let rec: Vec<_> = points
        .iter()
        .filter(|p| p["dimension"] == "recommended")
        .collect();
    assert_eq!(rec.len(), 1, "{json}");
    assert_eq!(rec[0]["set"]["cache_size"], "8MiB");
    assert_eq!(rec[0]["set"]["mmap_size"], "64MiB");
    assert_eq!(rec[0]["set"]["synchronous"], "full");
    assert_eq!(rec[0]["set"]["foreign_keys"], serde_json::Value::Null);
    let ratio = |p: &serde_json::Value| {
        let (h, m) = (
            p["cache_hit"].as_f64().unwrap(),
            p["cache_miss"].as_f64().unwrap(),
        );
        h / (h + m)
    };
    assert!(
        ratio(chosen) >= 0.99,
        "hit ratio {} at {size}",
        ratio(chosen)
    );
    let below = points
        .iter()
        .find(|p| p["dimension"] == "cache_size" && p["value"] == "2000KiB")
        .expect("SQLite's default measured first");
    assert!(ratio(below) < 0.95, "2000KiB hit ratio {}", ratio(below));
    assert!(
        size * 2 <= 512 << 20,
        "never over limits.memory_budget (2 connections)"
    );

    // Durability is the user's: every run, and the proposal, at the configured synchronous.
    assert_eq!(json["synchronous"], "full");
    assert_eq!(json["durability"], "strict");
    for p in points {
        assert_eq!(p["set"]["synchronous"], "full", "{p}");
    }
    assert_eq!(json["tuned"]["synchronous"], "full");
    let snippet = json["snippet"].as_str().unwrap();
    assert!(snippet.contains("synchronous = \"full\""), "{snippet}");
    // The confirmation: the configured profile and the leader, each run 3 times.
    let confirm = json["confirmation"].as_array().unwrap();
    assert_eq!(confirm[0]["name"], "configured");
    assert!(confirm
        .iter()
        .all(|c| c["ops_per_sec"].as_array().unwrap().len() == 3));
    if !json["gain"].as_bool().unwrap() {
        assert!(json["verdict"]
            .as_str()
            .unwrap()
            .starts_with("no measurable gain; keep your profile"));
    }

    // The snippet is a profile litepool loads.
    let pasted = format!("{snippet}\n[databases.main]\npath = \"x.db\"\nprofile = \"tuned\"\n");
    let settings = litepool::Settings::from_toml(&pasted).unwrap();
    assert_eq!(
        settings.databases["main"].profile.pragmas().cache_size,
        Some(chosen["value"].as_str().unwrap().parse().unwrap())
    );

    // The report: one curve per dimension, the chosen point marked.
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains(r#"data-group="cache_size""#));
    assert!(!html.contains("<script>"), "the configuration is escaped");
    assert!(html.contains("&lt;script&gt;alert(&quot;tune&quot;)&lt;/script&gt;"));
    assert!(html.contains(&format!("{} (chosen)", chosen["value"].as_str().unwrap())));

    assert_eq!(sha256(&db), hash, "the original's bytes");
    assert_eq!(listing(&f.path("data")), before, "the original's directory");
    assert_eq!(listing(&tmp), Vec::<String>::new(), "no copy left");
}

#[test]
fn tune_refuses_bad_input_naming_the_flag_and_what_is_allowed() {
    let f = fixture();
    let tmp = f.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    for (args, says) in [
        (&["--time-budget", "1s"][..], "--time-budget"),
        (&["--time-budget", "soon"][..], "--time-budget"),
        (
            &["--database", "nope"][..],
            "unknown database \"nope\" in --database: configured databases are main",
        ),
        (
            &["--workloads", "nope"][..],
            "unknown workload \"nope\" in --workloads: configured workloads are hot_rows",
        ),
        (
            &["--report", "r.png"][..],
            "invalid --report r.png: expected a file name ending in .html",
        ),
    ] {
        let out = tune(&f, &tmp, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{says:?} in {err}");
    }
    assert_eq!(listing(&tmp), Vec::<String>::new(), "nothing copied");
}

#[cfg(unix)]
#[test]
fn tune_interrupted_prints_the_best_so_far_and_removes_every_copy() {
    let f = fixture();
    let tmp = f.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let db = f.path("data/main.db");
    let hash = sha256(&db);
    let child = Command::new(env!("CARGO_BIN_EXE_litepool"))
        .args(["tune", "--time-budget", "60s", "--threads", "2"])
        .current_dir(f.dir.path())
        .env("TMPDIR", &tmp)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A later candidate's copies (directory 1, 2, …) exist only once the first run (the
    // configured profile) is measured and kept as the best so far.
    let second = || {
        std::fs::read_dir(&tmp).unwrap().any(|d| {
            let scratch = d.unwrap().path();
            std::fs::read_dir(scratch).is_ok_and(|mut runs| {
                runs.any(|r| {
                    let name = r.map(|r| r.file_name()).unwrap_or_default();
                    name.to_str()
                        .and_then(|n| n.parse::<u32>().ok())
                        .is_some_and(|n| n >= 1)
                })
            })
        })
    };
    let t0 = Instant::now();
    while !second() {
        assert!(t0.elapsed() < Duration::from_secs(50), "no second run");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("interrupted; best so far") && stdout.contains("[profiles.tuned]"),
        "{stdout}"
    );
    assert!(stdout.contains("synchronous = \"full\""), "{stdout}");
    assert_eq!(listing(&tmp), Vec::<String>::new(), "every copy removed");
    assert_eq!(sha256(&db), hash);
}

#[test]
fn tune_on_a_split_database_never_proposes_over_the_memory_budget() {
    // 6 MiB for a writer and 2 readers: at most 2 MiB of cache per connection, and with
    // SQLite's default cache (2000 KiB) at most 2 readers.
    let f = fixture_with(
        "6MiB",
        "[databases.main.pool]\nmax_size = 2\n[databases.main.readers]\nmax_size = 2\n",
    );
    let tmp = f.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = tune(
        &f,
        &tmp,
        &["--time-budget", "10s", "--threads", "4", "--json"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["configured_readers"], 2);
    let cache = |set: &serde_json::Value| set["cache_size"].as_str().map_or(2000 << 10, bytes);
    for p in json["points"].as_array().unwrap() {
        let readers = p["readers"]
            .as_u64()
            .expect("every run on the split layout");
        assert!(
            cache(&p["set"]) * (1 + readers) <= 6 << 20,
            "a candidate over the budget: {p}"
        );
    }
    let readers = json["tuned_readers"].as_u64().unwrap();
    assert!(cache(&json["tuned"]) * (1 + readers) <= 6 << 20, "{json}");
    assert!(json["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["name"] == "readers.max_size"));
    assert_eq!(listing(&tmp), Vec::<String>::new(), "no copy left");
}

#[test]
fn tune_with_writes_on_a_split_database_measures_group_commit_and_background_checkpoints() {
    let f = fixture_with(
        "512MiB",
        r#"weight = 3

[bench.workloads.rewrite]
database = "main"
sql = "UPDATE t SET pad = randomblob(900) WHERE id = ?1"
params = [{ int = [1, 16384] }]
transaction = "immediate"

[databases.main.writer]
[databases.main.readers]
max_size = 4
"#,
    );
    let tmp = f.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let db = f.path("data/main.db");
    let hash = sha256(&db);
    let out = tune(
        &f,
        &tmp,
        &["--time-budget", "20s", "--threads", "4", "--json"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let points = json["points"].as_array().unwrap();
    let named = |d: &str| {
        points
            .iter()
            .filter(|p| p["dimension"] == d)
            .collect::<Vec<_>>()
    };
    // Group commit and background checkpoints each measured, every run at the configured
    // durability, and no run of a group commit lost or failed a write.
    let group = named("writes");
    assert_eq!(group.len(), 1, "{json}");
    assert_eq!(group[0]["group_commit"], true);
    assert_eq!(group[0]["value"], "group commit");
    let checkpoint = named("checkpoint");
    assert_eq!(checkpoint.len(), 1, "{json}");
    assert_eq!(checkpoint[0]["background_checkpoints"], true);
    for p in points {
        assert_eq!(p["set"]["synchronous"], "full", "{p}");
        assert_eq!(p["row"]["errors"], 0, "{p}");
        assert!(p["row"]["ops"].as_u64().unwrap() > 0, "{p}");
    }
    // The readers grow only past a size whose checkouts waited.
    let readers: Vec<(u64, u64)> = points
        .iter()
        .filter(|p| p["dimension"] == "readers.max_size" || p["dimension"] == "configured")
        .map(|p| {
            (
                p["readers"].as_u64().unwrap(),
                p["readers_waited"].as_u64().unwrap(),
            )
        })
        .collect();
    let dimension = json["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "readers.max_size")
        .unwrap();
    // The search compares with the point it started from, then with each size it measured.
    let mut searched = vec![&points[dimension["from"].as_u64().unwrap() as usize]];
    searched.extend(named("readers.max_size"));
    for (i, p) in searched.iter().enumerate().skip(1) {
        let n = p["readers"].as_u64().unwrap();
        let before = searched[..i]
            .iter()
            .map(|q| {
                (
                    q["readers"].as_u64().unwrap(),
                    q["readers_waited"].as_u64().unwrap(),
                )
            })
            .filter(|(m, _)| *m < n)
            .max();
        if let Some((m, waited)) = before {
            assert!(
                waited > 0,
                "grew to {n} readers after {m} readers had no wait: {readers:?}"
            );
        }
    }
    // What the proposal changes outside the profile is said, as keys to put in the user's
    // tables.
    let snippet = json["snippet"].as_str().unwrap();
    if json["tuned_group_commit"] == true {
        assert!(snippet.contains("Handle::write"), "{snippet}");
    }
    if json["tuned_background_checkpoints"] == true {
        assert!(
            snippet.contains("# checkpoint = \"background\""),
            "{snippet}"
        );
    }
    assert_eq!(sha256(&db), hash, "the original is untouched");
    assert_eq!(listing(&tmp), Vec::<String>::new(), "no copy left");
}
