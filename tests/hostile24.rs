//! Hostile cases against `litepool tune` after the write-path change (group commit and background
//! checkpoints measured first, readers grown past a size that waited, commented keys in the
//! snippet, SVG curves in the report). Every run uses a small `--time-budget` and a tiny table.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_litepool");

/// The documented bound for a budget: + 10%, plus 1.5s for process start on a shared machine.
fn bound(budget_s: u64) -> Duration {
    Duration::from_millis(budget_s * 1100 + 1500)
}

const POINT: &str = r#"
[bench.workloads.point]
database = "main"
sql = "SELECT v FROM t WHERE id = ?1"
params = [{ int = [1, 200] }]
"#;

const INSERT: &str = r#"
[bench.workloads.ins]
database = "main"
sql = "INSERT INTO t(v) VALUES ('x')"
"#;

/// A configuration: `profile` lines go into `[profiles.mine]`, `db` lines into
/// `[databases.main]`, `tables` after it (pool, writer, readers), then `workloads`.
fn conf(limits: &str, profile: &str, db: &str, tables: &str, workloads: &str) -> String {
    format!(
        "{limits}\n[profiles.mine]\nbusy_timeout = \"1s\"\n{profile}\n\n[databases.main]\npath = \"{{data}}/main.db\"\nprofile = \"mine\"\n{db}\n{tables}\n{workloads}\n"
    )
}

const WAL: &str = "journal_mode = \"wal\"\nsynchronous = \"normal\"\ncache_size = \"64KiB\"";
const SPLIT: &str = "[databases.main.writer]\n\n[databases.main.readers]\nmax_size = 2\n";
const SINGLE: &str = "[databases.main.pool]\nmax_size = 4\n";

fn fill(path: &Path, journal: &str) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(&format!(
        "PRAGMA journal_mode = {journal};
         CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);
         CREATE TABLE guarded(v INTEGER);
         CREATE TRIGGER g BEFORE INSERT ON guarded WHEN NEW.v > 5
           BEGIN SELECT RAISE(ROLLBACK, 'guarded refuses'); END;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
         INSERT INTO t SELECT i, hex(randomblob(20)) FROM n;"
    ))
    .unwrap();
    if journal == "wal" {
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    }
}

struct Case {
    f: Fixture,
    tmp: PathBuf,
}

fn case(text: &str, journal: &str) -> Case {
    let f = Fixture::new(text);
    let tmp = f.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    fill(&f.path("data/main.db"), journal);
    Case { f, tmp }
}

impl Case {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("tune")
            .args(args)
            .current_dir(self.f.dir.path())
            .env("TMPDIR", &self.tmp);
        c
    }

    fn tune(&self, args: &[&str]) -> (Output, Duration) {
        let t0 = Instant::now();
        let out = self.cmd(args).output().unwrap();
        (out, t0.elapsed())
    }

    /// A run that must succeed within its budget, leave no copy and no changed byte.
    fn tune_ok(&self, budget_s: u64, args: &[&str]) -> Output {
        let before = hashes(&self.f.path("data"));
        let budget = format!("{budget_s}s");
        let mut all = vec!["--time-budget", budget.as_str()];
        all.extend_from_slice(args);
        let (out, took) = self.tune(&all);
        no_panic(&out);
        assert_eq!(out.status.code(), Some(0), "{all:?}: {}", err(&out));
        assert!(took < bound(budget_s), "{all:?}: took {took:?}");
        assert_eq!(
            hashes(&self.f.path("data")),
            before,
            "{all:?}: data changed"
        );
        assert_eq!(listing(&self.tmp), Vec::<String>::new(), "{all:?}: copies");
        out
    }

    fn json(&self, budget_s: u64, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.tune_ok(budget_s, &all);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    }
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn no_panic(out: &Output) {
    assert!(!err(out).contains("panicked"), "panic: {}", err(out));
}

fn points(json: &serde_json::Value) -> &Vec<serde_json::Value> {
    json["points"].as_array().unwrap()
}

/// Every set tune measured or proposed: the points, the confirmation, the proposal.
fn every_set(json: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut v: Vec<&serde_json::Value> = points(json).iter().map(|p| &p["set"]).collect();
    v.extend(
        json["confirmation"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["set"]),
    );
    v.push(&json["tuned"]);
    v
}

fn kib(s: &str) -> u64 {
    if let Some(k) = s.strip_suffix("KiB") {
        k.parse().unwrap()
    } else if let Some(m) = s.strip_suffix("MiB") {
        m.parse::<u64>().unwrap() << 10
    } else if let Some(g) = s.strip_suffix("GiB") {
        g.parse::<u64>().unwrap() << 20
    } else {
        panic!("cache_size {s}")
    }
}

// ---------------------------------------------------------------------------------------------
// Output paths: the report must never replace the user's data.

#[test]
// Found by the hostile pass (fixed): --report naming the database file (path ending in .html) replaces the database with the HTML report
fn hostile24_report_path_that_is_the_database_file_is_refused() {
    let text = conf("", WAL, "", SINGLE, POINT).replace("main.db", "main.html");
    let f = Fixture::new(&text);
    let tmp = f.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    fill(&f.path("data/main.html"), "wal");
    let c = Case { f, tmp };
    let before = hashes(&c.f.path("data"));
    for report in ["data/main.html", "./data/../data/main.html"] {
        let (out, took) = c.tune(&["--time-budget", "5s", "--threads", "2", "--report", report]);
        no_panic(&out);
        // Observed: exit 0, data/main.html now starts with "<!DOCTYPE html>": the database is gone.
        assert_eq!(
            hashes(&c.f.path("data")),
            before,
            "--report {report}: the database file was overwritten"
        );
        assert_eq!(out.status.code(), Some(2), "{report}: {}", err(&out));
        assert!(err(&out).contains("--report"), "{}", err(&out));
        assert!(took < Duration::from_secs(3), "refused only after {took:?}");
        assert_eq!(listing(&c.tmp), Vec::<String>::new());
    }
}

#[test]
fn hostile24_report_through_a_symlink_to_the_database_replaces_the_link_not_the_data() {
    let c = case(&conf("", WAL, "", SINGLE, POINT), "wal");
    std::os::unix::fs::symlink("main.db", c.f.path("data/link.html")).unwrap();
    let db = sha256(&c.f.path("data/main.db"));
    let (out, took) = c.tune(&[
        "--time-budget",
        "5s",
        "--threads",
        "2",
        "--report",
        "data/link.html",
    ]);
    no_panic(&out);
    assert!(took < bound(5), "{took:?}");
    assert_eq!(
        sha256(&c.f.path("data/main.db")),
        db,
        "written through the link"
    );
    if out.status.code() == Some(0) {
        let html = std::fs::read_to_string(c.f.path("data/link.html")).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..40]);
    } else {
        assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    }
    assert_eq!(listing(&c.tmp), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// Time: the budget + 10%, whatever the threads and the writes.

#[test]
// Found by the hostile pass (fixed): --threads 256 behind one slow writer: 15.6s-18.2s for --time-budget 5s (queued writes drain after each run)
fn hostile24_256_threads_behind_one_slow_writer_stay_within_the_budget() {
    let heavy = r#"
[bench.workloads.heavy]
database = "main"
sql = "INSERT INTO t(v) SELECT hex(randomblob(2000)) FROM t LIMIT 50"
"#;
    let c = case(
        &conf(
            "",
            "journal_mode = \"wal\"\nsynchronous = \"extra\"\ncache_size = \"64KiB\"",
            "durability = \"strict\"",
            "[databases.main.writer]\n\n[databases.main.readers]\nmax_size = 1\n",
            &format!("{heavy}\n{POINT}"),
        ),
        "wal",
    );
    let before = hashes(&c.f.path("data"));
    let (out, took) = c.tune(&["--time-budget", "5s", "--threads", "256"]);
    no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    assert_eq!(hashes(&c.f.path("data")), before);
    assert_eq!(listing(&c.tmp), Vec::<String>::new());
    // Observed: "4 runs measured (1 distinct candidates) in 18.2s (time budget 5s)", each run
    // planned at 0.1s-0.3s taking 3-5s (stderr "run 2: configured =  (0.1s; 0s left)").
    assert!(
        took < bound(5),
        "took {took:?} for a 5s budget: {}",
        text(&out).lines().last().unwrap_or("")
    );
}

#[test]
fn hostile24_one_thread_and_256_threads_on_a_cheap_mix_stay_within_the_budget() {
    let c = case(
        &conf("", WAL, "", SPLIT, &format!("{POINT}\n{INSERT}")),
        "wal",
    );
    for threads in ["1", "256"] {
        let json = c.json(5, &["--threads", threads]);
        assert_eq!(json["threads"].as_u64().unwrap().to_string(), threads);
        assert!(json["elapsed_seconds"].as_f64().unwrap() <= 5.5, "{json}");
    }
}

#[test]
// Found by the hostile pass (fixed): budget exhausted after one configured run: the reasons still say "(5.0%, two runs of the configured profile)" and the readers "grown from 1 while the readers' checkouts waited", never measured
fn hostile24_a_budget_spent_on_one_run_does_not_claim_two_noise_runs_or_unmeasured_reasons() {
    let heavy = r#"
[bench.workloads.heavy]
database = "main"
sql = "INSERT INTO t(v) SELECT hex(randomblob(2000)) FROM t LIMIT 50"
"#;
    let c = case(
        &conf(
            "",
            "journal_mode = \"wal\"\nsynchronous = \"extra\"\ncache_size = \"64KiB\"",
            "",
            "[databases.main.writer]\n\n[databases.main.readers]\nmax_size = 1\n",
            &format!("{heavy}\n{POINT}"),
        ),
        "wal",
    );
    let (out, _) = c.tune(&["--time-budget", "5s", "--threads", "256", "--json"]);
    no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let configured = points(&json)
        .iter()
        .filter(|p| p["dimension"] == "configured")
        .count();
    for d in json["dimensions"].as_array().unwrap() {
        let name = d["name"].as_str().unwrap();
        let reason = d["reason"].as_str().unwrap();
        if configured < 2 {
            assert!(
                !reason.contains("two runs of the configured profile"),
                "{configured} configured run(s), yet {name}: {reason}"
            );
        }
        let measured = points(&json).iter().any(|p| p["dimension"] == name);
        if !measured && name != "refine" {
            assert!(
                reason.contains("not measured"),
                "{name} has no point but its reason reads as measured: {reason}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Durability and replication: never below the configuration.

#[test]
fn hostile24_replicated_databases_never_measure_background_checkpoints() {
    for (replication, tables) in [
        ("litestream", SPLIT),
        ("litestream-0.3", SINGLE),
        ("litefs", SPLIT),
    ] {
        let c = case(
            &conf(
                "",
                WAL,
                &format!("replication = \"{replication}\""),
                tables,
                &format!("{POINT}\n{INSERT}"),
            ),
            "wal",
        );
        let json = c.json(5, &["--threads", "2"]);
        for p in points(&json) {
            assert_eq!(
                p["background_checkpoints"], false,
                "{replication}: measured {p}"
            );
            assert_ne!(p["dimension"], "checkpoint", "{replication}: {p}");
        }
        assert_eq!(json["tuned_background_checkpoints"], false, "{replication}");
        assert_eq!(json["configured_background_checkpoints"], false);
        let snippet = json["snippet"].as_str().unwrap();
        assert!(!snippet.contains("checkpoint"), "{replication}: {snippet}");
    }
}

#[test]
fn hostile24_single_pool_wal_with_writes_measures_background_checkpoints() {
    let c = case(&conf("", WAL, "", SINGLE, INSERT), "wal");
    let json = c.json(6, &["--threads", "2"]);
    assert!(
        points(&json)
            .iter()
            .any(|p| p["dimension"] == "checkpoint" && p["background_checkpoints"] == true),
        "no background checkpoint point: {}",
        json["dimensions"]
    );
    assert!(
        points(&json).iter().all(|p| p["group_commit"] == false),
        "group commit measured on a single pool"
    );
    assert_eq!(json["tuned_group_commit"], false);
}

#[test]
fn hostile24_strict_extra_split_with_writes_is_never_lowered_and_the_snippet_loads() {
    let c = case(
        &conf(
            "[limits]\nmemory_budget = \"512MiB\"\n",
            "journal_mode = \"wal\"\nsynchronous = \"extra\"\ncache_size = \"64KiB\"",
            "durability = \"strict\"",
            SPLIT,
            &format!("{POINT}\n{INSERT}"),
        ),
        "wal",
    );
    let json = c.json(8, &["--threads", "4"]);
    assert_eq!(json["synchronous"], "extra");
    assert_eq!(json["durability"], "strict");
    for set in every_set(&json) {
        assert_eq!(set["synchronous"], "extra", "{set}");
        assert_eq!(set["journal_mode"], "wal", "{set}");
    }
    assert!(
        points(&json).iter().any(|p| p["group_commit"] == true),
        "group commit not measured on a split database with writes"
    );
    let snippet = json["snippet"].as_str().unwrap();
    assert!(snippet.contains("synchronous = \"extra\""), "{snippet}");
    assert!(!snippet.contains("durability"), "{snippet}");
    check_pasted(&c, snippet, "main");
}

#[test]
fn hostile24_rollback_journal_databases_never_search_checkpoints() {
    for profile in [
        "journal_mode = \"delete\"\nsynchronous = \"full\"",
        "synchronous = \"full\"",
    ] {
        let c = case(
            &conf("", profile, "", SINGLE, &format!("{POINT}\n{INSERT}")),
            "delete",
        );
        let json = c.json(5, &["--threads", "2"]);
        for p in points(&json) {
            assert_ne!(p["dimension"], "checkpoint", "{profile}: {p}");
            assert_eq!(p["background_checkpoints"], false, "{profile}: {p}");
            assert_ne!(p["set"]["journal_mode"], "wal", "{profile}: {p}");
        }
        let snippet = json["snippet"].as_str().unwrap();
        assert!(!snippet.contains("checkpoint"), "{profile}: {snippet}");
        assert!(!snippet.contains("\"wal\""), "{profile}: {snippet}");
        let c2 = rusqlite::Connection::open(c.f.path("data/main.db")).unwrap();
        let mode: String = c2
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
    }
}

// ---------------------------------------------------------------------------------------------
// Memory: cache_size x connections within limits.memory_budget, readers included.

#[test]
fn hostile24_a_full_memory_budget_never_grows_the_readers_or_the_cache() {
    // writer + 1 reader at 64KiB = 128KiB: the budget is full at the configured profile.
    let c = case(
        &conf(
            "[limits]\nmemory_budget = \"128KiB\"\n",
            WAL,
            "",
            "[databases.main.writer]\n\n[databases.main.readers]\nmax_size = 1\n",
            POINT,
        ),
        "wal",
    );
    let json = c.json(5, &["--threads", "8"]);
    for p in points(&json) {
        let cache = kib(p["set"]["cache_size"].as_str().unwrap());
        let readers = p["readers"].as_u64().unwrap();
        assert!(cache * (1 + readers) <= 128, "over the budget: {p}");
    }
    assert_eq!(json["tuned_readers"], 1, "{}", json["snippet"]);
    let cache = kib(json["tuned"]["cache_size"].as_str().unwrap());
    assert!(cache <= 64, "{}", json["snippet"]);
    assert!(!json["snippet"].as_str().unwrap().contains("max_size"));
}

#[test]
fn hostile24_a_budget_the_configuration_already_exceeds_gets_a_proposal_within_it() {
    // 2 x 64KiB = 128KiB configured under 100KiB.
    let c = case(
        &conf(
            "[limits]\nmemory_budget = \"100KiB\"\n",
            WAL,
            "",
            "[databases.main.writer]\n\n[databases.main.readers]\nmax_size = 1\n",
            POINT,
        ),
        "wal",
    );
    let json = c.json(5, &["--threads", "4"]);
    for p in points(&json)
        .iter()
        .filter(|p| p["dimension"] != "configured")
    {
        let cache = kib(p["set"]["cache_size"].as_str().unwrap());
        let readers = p["readers"].as_u64().unwrap();
        assert!(
            cache * (1 + readers) <= 100,
            "candidate over the budget: {p}"
        );
    }
    if json["gain"] == true {
        let cache = kib(json["tuned"]["cache_size"].as_str().unwrap());
        assert!(cache * 2 <= 100, "{}", json["snippet"]);
    }
}

// ---------------------------------------------------------------------------------------------
// The snippet: uncommented keys load and mean what the output says.

/// Paste the snippet (its commented keys uncommented, under their tables) into an environment
/// file next to the configuration, and run `litepool check` on it.
fn check_pasted(c: &Case, snippet: &str, db: &str) -> String {
    let mut toml = String::new();
    let mut db_keys = String::new();
    let mut readers_keys = String::new();
    let mut target: Option<&str> = None;
    for line in snippet.lines() {
        if let Some(rest) = line.strip_prefix("# and in your [") {
            target = Some(if rest.contains(".readers]") {
                "readers"
            } else {
                "db"
            });
            continue;
        }
        match (target, line.strip_prefix("# ")) {
            (Some("db"), Some(kv)) if kv.contains(" = ") => {
                db_keys.push_str(kv);
                db_keys.push('\n')
            }
            (Some("readers"), Some(kv)) if kv.contains(" = ") => {
                readers_keys.push_str(kv);
                readers_keys.push('\n')
            }
            _ if line.starts_with('#') => {}
            _ => {
                toml.push_str(line);
                toml.push('\n')
            }
        }
    }
    let q = toml_string(db);
    toml.push_str(&format!(
        "\n[databases.{q}]\nprofile = \"tuned\"\n{db_keys}\n"
    ));
    if !readers_keys.is_empty() {
        toml.push_str(&format!("[databases.{q}.readers]\n{readers_keys}\n"));
    }
    c.f.config("tuned.toml", &toml);
    let out = Command::new(BIN)
        .args(["check", "--env", "tuned"])
        .current_dir(c.f.dir.path())
        .output()
        .unwrap();
    let all = format!("{}{}", text(&out), err(&out));
    assert_eq!(
        out.status.code(),
        Some(0),
        "the pasted snippet does not check:\n{toml}\n{all}"
    );
    assert!(all.contains("profile tuned"), "{all}");
    if let Some(n) = readers_keys
        .lines()
        .find_map(|l| l.strip_prefix("max_size = "))
    {
        assert!(
            all.contains(&format!("readers: opening {n} connection(s)")),
            "readers max_size {n} not what check opened: {all}"
        );
    }
    all
}

#[test]
fn hostile24_commented_keys_of_a_digit_and_hyphen_name_load_and_mean_what_was_measured() {
    let name = "0-x_Y";
    let text = conf(
        "[limits]\nmemory_budget = \"512MiB\"\n",
        "journal_mode = \"wal\"\nsynchronous = \"full\"\ncache_size = \"64KiB\"",
        "",
        "[databases.main.writer]\n\n[databases.main.readers]\nmax_size = 1\n",
        &format!("{POINT}\nweight = 10\n{INSERT}"),
    )
    .replace("[databases.main", &format!("[databases.\"{name}\""))
    .replace("database = \"main\"", &format!("database = \"{name}\""));
    let c = case(&text, "wal");
    let json = c.json(10, &["--threads", "8"]);
    let snippet = json["snippet"].as_str().unwrap();
    let checked = check_pasted(&c, snippet, name);
    if json["tuned_background_checkpoints"] == true {
        assert!(
            snippet.contains("# checkpoint = \"background\""),
            "{snippet}"
        );
    }
    if json["tuned_readers"] != json["configured_readers"] {
        assert!(
            snippet.contains(&format!("# max_size = {}", json["tuned_readers"])),
            "{snippet}"
        );
    }
    if json["tuned_group_commit"] == true {
        assert!(snippet.contains("Handle::write"), "{snippet}");
    }
    assert!(checked.contains(name));
}

// ---------------------------------------------------------------------------------------------
// The report: escaped, every SVG well-formed, one curve per measured dimension.

#[test]
fn hostile24_report_escapes_sql_and_every_svg_is_well_formed_xml() {
    let hostile = r#"
[bench.workloads.xss]
database = "main"
sql = "SELECT '<script>alert(\"x\")</script>]]>&amp;' || v FROM t WHERE id = ?1"
params = [{ int = [1, 200] }]
"#;
    let c = case(
        &conf("", WAL, "", SPLIT, &format!("{hostile}\n{INSERT}")),
        "wal",
    );
    let json = c.json(6, &["--threads", "2", "--report", "r.html"]);
    let html = std::fs::read_to_string(c.f.path("r.html")).unwrap();
    assert!(
        !html.contains("<script>alert"),
        "unescaped SQL in the report"
    );
    let mut svgs = 0;
    let mut ids = Vec::new();
    let mut rest = html.as_str();
    while let Some(i) = rest.find("<svg") {
        let end = rest[i..].find("</svg>").expect("an <svg> without </svg>") + i + 6;
        let svg = &rest[i..end];
        let doc = roxmltree::Document::parse(svg)
            .unwrap_or_else(|e| panic!("an SVG is not XML: {e}\n{svg}"));
        if let Some(id) = doc.root_element().attribute("id") {
            ids.push(id.to_string());
        }
        svgs += 1;
        rest = &rest[end..];
    }
    assert!(svgs > 0);
    let mut dims: Vec<String> = points(&json)
        .iter()
        .map(|p| p["dimension"].as_str().unwrap().to_string())
        .filter(|d| d != "configured")
        .collect();
    dims.dedup();
    for d in dims {
        assert!(
            ids.contains(&format!("curve-{d}")),
            "no curve-{d} among {ids:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Signals: copies removed, data untouched, the best-so-far loads.

fn interrupt(signal: &str, code: i32, after_line: &str) {
    let c = case(
        &conf("", WAL, "", SPLIT, &format!("{POINT}\n{INSERT}")),
        "wal",
    );
    let before = hashes(&c.f.path("data"));
    let t0 = Instant::now();
    let mut child = c
        .cmd(&["--time-budget", "20s", "--threads", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "ended before {after_line:?}: {seen}"
        );
        seen.push_str(&line);
        if line.contains(after_line) {
            break;
        }
    }
    let st = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(!rest.contains("panicked"), "{rest}");
    assert_eq!(out.status.code(), Some(code), "{signal}: {rest}");
    assert!(t0.elapsed() < bound(20), "{:?}", t0.elapsed());
    assert_eq!(hashes(&c.f.path("data")), before, "{signal}: data");
    let left = listing(&c.tmp);
    let inside: Vec<String> = left
        .iter()
        .flat_map(|d| {
            let p = c.tmp.join(d);
            if p.is_dir() {
                listing(&p)
            } else {
                vec![]
            }
        })
        .collect();
    assert_eq!(
        left,
        Vec::<String>::new(),
        "{signal} after {after_line:?}: copies left ({inside:?})\nstderr before: {seen}\nafter: {rest}"
    );
    let stdout = text(&out);
    let snippet = &stdout[stdout
        .find("[profiles.tuned]")
        .unwrap_or_else(|| panic!("{signal}: no best so far: {stdout}{rest}"))..];
    check_pasted(&c, snippet, "main");
}

/// Intermittent: seen in 2 of about 10 runs of the whole file, not on demand (alone, or six at
/// once, it held every time). Observed (CPU shared by the other tests): exit 130,
/// stderr "litepool: interrupted (signal 2); removed 1 scratch directory", yet
/// `litepool-rOYO9R/` is left holding `2/` and `sources/`. The handler (src/bin/litepool/
/// scratch.rs) runs `remove_dir_all` while the run's threads still create files in the scratch
/// directory, ignores its error, and reports the directory removed.
#[test]
// Found by the hostile pass (fixed): SIGINT during the group-commit run sometimes leaves litepool-XXXX/{2,sources} in TMPDIR while printing "removed 1 scratch directory"
fn hostile24_sigint_during_the_write_path_runs_removes_copies_and_prints_a_loadable_profile() {
    // Six at once, so that the CPUs are as busy as when the whole file runs.
    let all: Vec<_> = (0..6)
        .map(|_| std::thread::spawn(|| interrupt("-INT", 130, "run 3:")))
        .collect();
    let failed = all.into_iter().filter_map(|t| t.join().err()).count();
    assert_eq!(
        failed, 0,
        "{failed} of 6 interrupted runs failed (messages above)"
    );
}

#[test]
fn hostile24_sigterm_during_the_search_removes_copies_and_prints_a_loadable_profile() {
    interrupt("-TERM", 143, "run 6:");
}

// ---------------------------------------------------------------------------------------------
// Workloads that fail at run time.

#[test]
// Found by the hostile pass (fixed): every write fails (RAISE(ROLLBACK)): exit 0, 20 runs at 0 ops/s, cache_size 2000KiB "<- chosen", the error never named
fn hostile24_a_workload_that_always_raises_rollback_is_named_and_nothing_is_proposed() {
    let trig = r#"
[bench.workloads.trig]
database = "main"
sql = "INSERT INTO guarded(v) VALUES (9)"
"#;
    let c = case(&conf("", WAL, "", SPLIT, trig), "wal");
    let before = hashes(&c.f.path("data"));
    let (out, took) = c.tune(&["--time-budget", "5s", "--threads", "2"]);
    no_panic(&out);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(err(&out).contains("trig"), "{}", err(&out));
    assert!(
        err(&out).contains("guarded refuses"),
        "the cause: {}",
        err(&out)
    );
    assert!(!text(&out).contains("verdict: tuned"), "{}", text(&out));
    assert!(took < bound(5), "{took:?}");
    assert_eq!(hashes(&c.f.path("data")), before);
    assert_eq!(listing(&c.tmp), Vec::<String>::new());
}

#[test]
// Found by the hostile pass (fixed): group commit is proposed ("measured faster") where a batch-mate's RAISE(ROLLBACK) makes valid writes fail: error share 0.12 -> 0.32
fn hostile24_group_commit_is_not_proposed_when_it_makes_valid_writes_fail() {
    let wl = r#"
[bench.workloads.good]
database = "main"
sql = "INSERT INTO t(v) VALUES ('ok')"
weight = 10

[bench.workloads.trig]
database = "main"
sql = "INSERT INTO guarded(v) VALUES (9)"
"#;
    let c = case(
        &conf(
            "",
            "journal_mode = \"wal\"\nsynchronous = \"extra\"",
            "",
            SPLIT,
            wl,
        ),
        "wal",
    );
    let json = c.json(8, &["--threads", "8"]);
    let share = |p: &serde_json::Value| {
        let ok = p["row"]["ops"].as_f64().unwrap();
        let errors = p["row"]["errors"].as_f64().unwrap();
        errors / (ok + errors)
    };
    let configured: Vec<f64> = points(&json)
        .iter()
        .filter(|p| p["dimension"] == "configured")
        .map(share)
        .collect();
    let worst = configured.iter().cloned().fold(0.0, f64::max);
    eprintln!(
        "configured shares {configured:?}, points {:?}, tuned_group_commit {}",
        points(&json)
            .iter()
            .map(|p| (p["dimension"].as_str().unwrap().to_string(), share(p)))
            .collect::<Vec<_>>(),
        json["tuned_group_commit"]
    );
    let gc = points(&json)
        .iter()
        .find(|p| p["dimension"] == "writes")
        .expect("group commit measured");
    // Observed (3 runs of 3): configured 0.117 and 0.113, group commit 0.323, first_error "the
    // write was not committed: another write of its batch (database \"main\": guarded refuses)
    // rolled back the transaction it was part of", and the snippet "write through Handle::write or
    // write_async (group commit): measured faster than a transaction per write on the writer".
    assert!(share(gc) > worst + 0.05, "the batch did not fail its mates");
    assert_eq!(
        json["tuned_group_commit"],
        false,
        "group commit proposed although its error share rose from {worst:.3} to {:.3}: {}",
        share(gc),
        json["snippet"]
    );
}

// ---------------------------------------------------------------------------------------------
// The original files: two tunes at once, an uncheckpointed WAL, writes through the split.

#[test]
fn hostile24_two_tunes_at_once_on_a_split_database_with_a_live_wal_change_nothing() {
    let c = case(
        &conf("", WAL, "", SPLIT, &format!("{POINT}\n{INSERT}")),
        "wal",
    );
    let db = c.f.path("data/main.db");
    let st = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3,os\nc=sqlite3.connect({db:?})\nc.execute('PRAGMA wal_autocheckpoint=0')\nc.execute(\"UPDATE t SET v='wal' WHERE id<=50\")\nc.commit()\nos._exit(0)\n",
            db = db.to_str().unwrap()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    assert!(c.f.path("data/main.db-wal").exists());
    let before = hashes(&c.f.path("data"));
    let spawn = || {
        c.cmd(&["--time-budget", "6s", "--threads", "2", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let t0 = Instant::now();
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(t0.elapsed() < bound(6), "{:?}", t0.elapsed());
    for out in [&a, &b] {
        no_panic(out);
        assert_eq!(out.status.code(), Some(0), "{}", err(out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(points(&json).iter().any(|p| p["group_commit"] == true));
    }
    assert_eq!(
        hashes(&c.f.path("data")),
        before,
        "the original or its WAL changed"
    );
    assert_eq!(listing(&c.tmp), Vec::<String>::new());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (n, w): (i64, i64) = conn
        .query_row("SELECT count(*), sum(v = 'wal') FROM t", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((n, w), (200, 50));
}

// ---------------------------------------------------------------------------------------------
// A change proposed must have been measured better (docs: the smallest size that misses no more).

#[test]
// Found by the hostile pass (fixed): cache_size 64KiB -> 2000KiB proposed for a 20 KiB file: misses/op did not fall and its run was slower ("the file fits in the first step")
fn hostile24_a_cache_that_already_holds_the_file_is_not_grown() {
    let c = case(&conf("", WAL, "", SINGLE, POINT), "wal");
    let json = c.json(6, &["--threads", "2"]);
    let misses = |p: &serde_json::Value| {
        p["cache_miss"].as_f64().unwrap() / p["row"]["ops"].as_f64().unwrap().max(1.0)
    };
    let configured = points(&json)
        .iter()
        .filter(|p| p["dimension"] == "configured")
        .map(misses)
        .fold(f64::MAX, f64::min);
    let tuned = json["tuned"]["cache_size"].as_str().unwrap();
    if kib(tuned) > 64 {
        let p = points(&json)
            .iter()
            .find(|p| p["dimension"] == "cache_size" && p["value"] == tuned)
            .unwrap();
        // Observed: misses/op 0.000 -> 0.000 (0.015 -> 0.018 with writes), "2000KiB <- chosen",
        // reason "the file (24.0 KiB) fits in the first step, SQLite's default or the budget's
        // cap; grown no further".
        assert!(
            misses(p) < configured * 0.9 && configured - misses(p) >= 0.01,
            "cache_size 64KiB -> {tuned} on a {} byte file, misses/op {configured:.3} -> {:.3}: {}",
            json["file_bytes"],
            misses(p),
            json["dimensions"]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The snippet pasted as told must mean what was measured, whatever else the database sets.

#[test]
// Found by the hostile pass (fixed): [databases.main.pragmas] cache_size = "64KiB" still overrides the snippet's cache_size = "2000KiB" once pasted as told: check shows 64KiB, the snippet says nothing
fn hostile24_a_database_pragmas_override_does_not_shadow_the_pasted_snippet() {
    let c = case(
        &conf(
            "",
            "journal_mode = \"wal\"\nsynchronous = \"normal\"",
            "",
            "[databases.main.pragmas]\ncache_size = \"64KiB\"\n\n[databases.main.pool]\nmax_size = 4\n",
            POINT,
        ),
        "wal",
    );
    let out = c.tune_ok(6, &["--threads", "2"]);
    let stdout = text(&out);
    let snippet = &stdout[stdout.find("[profiles.tuned]").expect("a snippet")..];
    let proposed = snippet
        .lines()
        .find_map(|l| l.strip_prefix("cache_size = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let checked = check_pasted(&c, snippet, "main");
    let row = checked
        .lines()
        .find(|l| l.trim_start().starts_with("cache_size "))
        .unwrap_or_else(|| panic!("{checked}"));
    // Observed: the snippet proposes cache_size = "2000KiB"; pasted with profile = "tuned",
    // check prints "cache_size           64KiB        -64          connection  ok 4/4".
    assert_eq!(
        row.split_whitespace().nth(1),
        Some(proposed.as_str()),
        "the pasted snippet does not take effect: {row}\n{snippet}"
    );
}

/// The same race as above, seen once in the whole file: "-INT after \"tuned =\": copies left
/// ([\"16\"])" inside the scratch directory the handler said it removed.
#[test]
// Found by the hostile pass (fixed): SIGINT during the confirmation sometimes leaves litepool-XXXX/16 in TMPDIR while printing "removed 1 scratch directory"
fn hostile24_sigint_during_the_confirmation_removes_copies_and_prints_a_loadable_profile() {
    // A confirmation run (its value is empty: "configured =  ("); the leader may be the
    // configured candidate, so "tuned" is not always among them.
    interrupt("-INT", 130, "configured =  (");
}

#[test]
fn hostile24_only_reading_selections_skip_the_write_path_and_disguised_writes_do_not() {
    let wl = r#"
[bench.workloads.cte]
database = "main"
sql = "WITH n(x) AS (SELECT 'x') INSERT INTO t(v) SELECT x FROM n"

[bench.workloads.ret]
database = "main"
sql = "/* c */ UPDATE t SET v = 'u' WHERE id = ?1 RETURNING id"
params = [{ int = [1, 200] }]
"#;
    let c = case(&conf("", WAL, "", SPLIT, &format!("{POINT}\n{wl}")), "wal");
    let json = c.json(5, &["--threads", "2", "--workloads", "point"]);
    for p in points(&json) {
        assert_eq!(p["group_commit"], false, "read-only: {p}");
        assert_eq!(p["background_checkpoints"], false, "read-only: {p}");
    }
    assert!(!json["snippet"].as_str().unwrap().contains("Handle::write"));
    for w in ["point,cte", "point,ret"] {
        let json = c.json(5, &["--threads", "2", "--workloads", w]);
        // Detected as writes: the group commit dimension is searched (measured when the
        // budget reaches it: on a loaded machine 5s may not).
        assert!(
            json["dimensions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["name"] == "writes"),
            "{w}: group commit not searched: {}",
            json["dimensions"]
        );
        for p in points(&json) {
            assert_eq!(p["row"]["errors"], 0, "{w}: {p}");
        }
    }
}
