//! `litepool bench` on the user's own queries: configured workloads on copies of the user's
//! data, validation that names the workload, untouched originals, and the HTML report.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;

/// A user's database with its own schema (a `tasks` table, none of the demo tables).
fn user_db(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode = wal;
         CREATE TABLE tasks(id INTEGER PRIMARY KEY, owner TEXT NOT NULL, title TEXT, done INTEGER NOT NULL);
         CREATE INDEX tasks_owner ON tasks(owner, done);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
         INSERT INTO tasks(owner, title, done) SELECT 'user' || (i % 20), 'task ' || i, i % 3 = 0 FROM n;",
    )
    .unwrap();
}

const WORKLOADS: &str = r#"
[bench.workloads.open_tasks]
database = "jobs"
sql = "SELECT id, title FROM tasks WHERE owner = ?1 AND done = 0"
params = [{ sample = "SELECT DISTINCT owner FROM tasks" }]
weight = 8

[bench.workloads.finish_task]
database = "jobs"
sql = "UPDATE tasks SET done = 1 WHERE id = ?1"
params = [{ int = [1, 3000] }]
weight = 2
transaction = "immediate"
"#;

fn fixture(workloads: &str) -> Fixture {
    let f = Fixture::new(&format!(
        "{}\n[databases.jobs]\npath = \"{{data}}/jobs.db\"\nprofile = \"recommended\"\n{workloads}",
        shipped_profiles()
    ));
    user_db(&f.path("data/jobs.db"));
    f
}

fn bench(f: &Fixture, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_litepool"))
        .arg("bench")
        .args(args)
        .current_dir(f.dir.path())
        .output()
        .unwrap()
}

#[test]
fn a_user_schema_runs_only_the_configured_workloads_on_its_own_data() {
    let f = fixture(WORKLOADS);
    let db = f.path("data/jobs.db");
    let (hash, before) = (sha256(&db), listing(&f.path("data")));
    let report = f.path("report.html");
    let out = bench(
        &f,
        &[
            "--profiles",
            "sqlite_defaults,recommended,recommended+split",
            "--seconds",
            "0.2",
            "--threads",
            "4",
            "--json",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kind"], "your queries");
    assert!(
        json["data"]["jobs"]
            .as_str()
            .unwrap()
            .starts_with("your data ("),
        "{json}"
    );
    let rows = json["results"].as_array().unwrap();
    let names: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|r| r["workload"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["finish_task", "mixed", "open_tasks"],
        "only the configured workloads (and their mix), never a built-in one"
    );
    assert_eq!(rows.len(), 3 * 3);
    for r in rows {
        assert!(r["ops"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
        let threads = if r["workload"] == "mixed" { 4 } else { 1 };
        assert_eq!(r["threads"], threads, "{r}");
    }
    assert_eq!(sha256(&db), hash, "the original's bytes");
    assert_eq!(listing(&f.path("data")), before, "the original's directory");

    // The report: two charts, one per measure, holding the numbers of the JSON output.
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        !html.contains("<script") && !html.contains("http://")
            || html.contains("http://www.w3.org/2000/svg")
    );
    let svgs: Vec<&str> = html
        .match_indices("<svg ")
        .map(|(at, _)| &html[at..at + html[at..].find("</svg>").unwrap() + 6])
        .collect();
    assert_eq!(svgs.len(), 2, "one chart per measure");
    let mut charts = std::collections::BTreeMap::new();
    let mut widths = std::collections::BTreeMap::new();
    for svg in &svgs {
        let doc = roxmltree::Document::parse(svg).expect("each chart is well-formed SVG");
        let root = doc.root_element();
        let bars: Vec<(String, f64)> = root
            .descendants()
            .filter(|n| n.has_tag_name("rect"))
            .map(|n| {
                (
                    n.attribute("data-series").unwrap().to_owned(),
                    n.attribute("data-value").unwrap().parse().unwrap(),
                )
            })
            .collect();
        let sized: Vec<(String, f64, f64)> = root
            .descendants()
            .filter(|n| n.has_tag_name("rect"))
            .map(|n| {
                (
                    n.attribute("data-group").unwrap().to_owned(),
                    n.attribute("data-value").unwrap().parse().unwrap(),
                    n.attribute("width").unwrap().parse().unwrap(),
                )
            })
            .collect();
        let id = root.attribute("id").unwrap().to_owned();
        let scale = root.attribute("data-scale").unwrap().to_owned();
        let ticks = root
            .descendants()
            .filter(|n| n.has_tag_name("line"))
            .count();
        widths.insert(id.clone(), (scale, ticks, sized));
        charts.insert(id, bars);
    }
    // Throughput: each workload on its own scale, so its fastest profile's bar is full length
    // however slow the workload is next to the others.
    let (scale, _, ops_bars) = &widths["ops"];
    assert_eq!(scale, "per-workload");
    for w in ["finish_task", "mixed", "open_tasks"] {
        let longest = ops_bars
            .iter()
            .filter(|(g, _, _)| g == w)
            .map(|(_, _, width)| *width)
            .fold(0.0f64, f64::max);
        assert!((longest - 420.0).abs() < 0.1, "{w}: {ops_bars:?}");
    }
    // Latency: one logarithmic axis with a line per power of ten; longer means slower.
    let (scale, ticks, lat_bars) = &widths["latency"];
    assert_eq!(scale, "log");
    assert!(*ticks >= 2, "a line per power of ten");
    for (_, a, wa) in lat_bars {
        for (_, b, wb) in lat_bars {
            if a < b {
                assert!(wa <= wb, "{a} µs drawn longer than {b} µs: {lat_bars:?}");
            }
        }
    }
    let ops = &charts["ops"];
    assert_eq!(ops.len(), rows.len(), "one bar per workload × profile");
    for r in rows {
        let v = r["ops_per_sec"].as_f64().unwrap();
        assert!(
            ops.iter()
                .any(|(s, x)| s == r["profile"].as_str().unwrap() && (x - v).abs() < 1e-6),
            "{v} in {ops:?}"
        );
    }
    let latency = &charts["latency"];
    assert_eq!(
        latency.len(),
        rows.len() * 2,
        "p50 and p99 per workload × profile"
    );
    for r in rows {
        let p99 = r["latency"]["p99_seconds"].as_f64().unwrap() * 1e6; // the chart is in µs
        let series = format!("{} p99", r["profile"].as_str().unwrap());
        assert!(
            latency
                .iter()
                .any(|(s, x)| *s == series && (x - p99).abs() < 1e-3),
            "{series} {p99} in {latency:?}"
        );
    }
    assert!(
        html.contains("id=\"command\"") && html.contains("--report"),
        "the exact command"
    );
    assert!(
        html.contains("[bench.workloads.open_tasks]"),
        "the configuration used"
    );
}

#[test]
fn without_workloads_a_user_schema_gets_an_error_not_a_substitute() {
    let f = fixture("");
    let hash = sha256(&f.path("data/jobs.db"));
    let out = bench(&f, &["--seconds", "0.1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no workloads to run") && err.contains("--builtin"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no built-in figures");
    assert_eq!(sha256(&f.path("data/jobs.db")), hash);
    // Asked for, the built-in workloads run, and say what they ran on.
    let out = bench(
        &f,
        &[
            "--builtin",
            "--profiles",
            "recommended",
            "--seconds",
            "0.05",
            "--json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kind"], "built-in demo workloads");
    assert!(
        json["data"]["jobs"]
            .as_str()
            .unwrap()
            .starts_with("your file, with "),
        "{json}"
    );
    assert!(
        json["data"]["audit"]
            .as_str()
            .unwrap()
            .starts_with("generated ("),
        "{json}"
    );
    assert_eq!(sha256(&f.path("data/jobs.db")), hash);
}

#[test]
fn bad_workloads_fail_with_exit_2_naming_the_workload() {
    let cases: [(&str, &str); 8] = [
        (
            "[bench.workloads.\"open\\nrows\"]\ndatabase = \"jobs\"\nsql = \"SELECT 1\"\n",
            "key `bench.workloads.open\\nrows`: invalid workload name \"open\\nrows\": expected 1 to 64 ASCII letters, digits, '_' or '-'",
        ),
        (
            "[bench.workloads.mixed]\ndatabase = \"jobs\"\nsql = \"SELECT 1\"\n",
            "the workload name \"mixed\" is taken by the run of all workloads together",
        ),
        (
            "[bench.workloads.broken]\ndatabase = \"jobs\"\nsql = \"SELECT nope FROM tasks\"\n",
            "workload \"broken\" (database \"jobs\"): the statement does not prepare",
        ),
        (
            "[bench.workloads.count]\ndatabase = \"jobs\"\nsql = \"SELECT * FROM tasks WHERE id = ?1\"\n",
            "workload \"count\" (database \"jobs\"): the statement has 1 parameter(s) but params lists 0",
        ),
        (
            "[bench.workloads.empty]\ndatabase = \"jobs\"\nsql = \"SELECT * FROM tasks WHERE owner = ?1\"\nparams = [{ sample = \"SELECT owner FROM tasks WHERE 0\" }]\n",
            "workload \"empty\" (database \"jobs\"): sample query \"SELECT owner FROM tasks WHERE 0\" returned no rows",
        ),
        (
            "[bench.workloads.elsewhere]\ndatabase = \"nope\"\nsql = \"SELECT 1\"\n",
            "key `bench.workloads.elsewhere.database`: unknown database \"nope\"",
        ),
        (
            "[bench.workloads.typo]\ndatabase = \"jobs\"\nsql = \"SELECT 1\"\nwieght = 3\n",
            "unknown field `wieght`",
        ),
        (
            "[bench.workloads.range]\ndatabase = \"jobs\"\nsql = \"SELECT ?1\"\nparams = [{ int = [9, 1] }]\n",
            "key `bench.workloads.range.params`: invalid int range [9, 1]",
        ),
    ];
    for (toml, says) in cases {
        let f = fixture(toml);
        let hash = sha256(&f.path("data/jobs.db"));
        let out = bench(&f, &["--profiles", "recommended", "--seconds", "0.05"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{toml}: {err}");
        assert!(err.contains(says), "{says:?} in {err}");
        assert_eq!(sha256(&f.path("data/jobs.db")), hash);
    }
    let f = fixture(WORKLOADS);
    let out = bench(&f, &["--workloads", "open_tasks,nope", "--seconds", "0.05"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown workload \"nope\" in --workloads: configured workloads are finish_task, open_tasks"));
    let out = bench(&f, &["--report", "chart.png", "--seconds", "0.05"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ending in .html"));
    let out = bench(&f, &["--report", "no/such/dir/r.html", "--seconds", "0.05"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist or is not a directory"));
}

#[test]
fn sigint_during_a_user_bench_leaves_the_originals_and_no_copies() {
    let f = fixture(WORKLOADS);
    let db = f.path("data/jobs.db");
    let (hash, before) = (sha256(&db), listing(&f.path("data")));
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_litepool"))
        .args(["bench", "--seconds", "30", "--profiles", "recommended"])
        .current_dir(f.dir.path())
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until a copy exists in the scratch directory (the deadline bounds a failing run).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let copied = std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .any(|d| d.path().join("sources/0.db").exists());
        if copied {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the bench ended early");
        assert!(std::time::Instant::now() < deadline, "no copy appeared");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
    assert_eq!(sha256(&db), hash);
    assert_eq!(listing(&f.path("data")), before);
}

#[test]
fn demo_data_fills_new_files_only_and_the_shipped_demo_workloads_run_on_it() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let shipped = litepool::Settings::loader()
        .dir(&config)
        .env("demo")
        .vars(Default::default())
        .load()
        .unwrap();
    assert_eq!(
        shipped.workloads.keys().collect::<Vec<_>>(),
        [
            "assigned_batches",
            "audit_insert",
            "customer_by_id",
            "job_status"
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    // A user's file where a demo database would go: refused, untouched, nothing else written.
    std::fs::write(dir.path().join("data/jobs.db"), b"not empty").unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_litepool"))
            .args(args)
            .args(["--config", config.to_str().unwrap(), "--env", "demo"])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["demo-data"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists and is not empty"));
    assert_eq!(
        std::fs::read(dir.path().join("data/jobs.db")).unwrap(),
        b"not empty"
    );
    assert!(!dir.path().join("data/audit.db").exists());
    std::fs::remove_file(dir.path().join("data/jobs.db")).unwrap();
    let out = run(&["demo-data"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "bench",
        "--profiles",
        "recommended",
        "--seconds",
        "0.05",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kind"], "your queries");
    assert_eq!(json["results"].as_array().unwrap().len(), 5);
    assert!(
        json["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["errors"] == 0),
        "{json}"
    );
}

#[test]
fn writes_can_go_through_group_commit() {
    let f = fixture(WORKLOADS);
    let out = bench(
        &f,
        &[
            "--profiles",
            "recommended+split,recommended+group",
            "--seconds",
            "0.2",
            "--threads",
            "4",
            "--json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["profiles"],
        serde_json::json!(["recommended+split", "recommended+group"])
    );
    for r in json["results"].as_array().unwrap() {
        assert!(r["ops"].as_u64().unwrap() > 0 && r["errors"] == 0, "{r}");
    }
    // Group commit is for the user's writes; the built-in workloads refuse it.
    let out = bench(
        &f,
        &[
            "--builtin",
            "--profiles",
            "recommended+group",
            "--seconds",
            "0.05",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("+group (group commit) applies to your own workloads"));
}

/// A statement that counts to a billion: a minute or more of work, were it not interrupted.
const SLOW: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) SELECT count(*) FROM n";

#[test]
fn the_measuring_loop_interrupts_a_statement_past_the_deadline_and_counts_it_apart() {
    use crate::measure::{measure, Bound};
    let conn = std::sync::Mutex::new(rusqlite::Connection::open_in_memory().unwrap());
    let op = |_: &mut crate::datagen::Rng, bound: &Bound| {
        let conn = conn.lock().unwrap();
        bound
            .run(&conn, |c| c.query_row(SLOW, [], |r| r.get::<_, i64>(0)))
            .map(drop)
            .map_err(|source| litepool::Error::Sqlite {
                database: "memory".into(),
                source,
            })
    };
    let t = measure(1, std::time::Duration::from_millis(100), 1, &op).unwrap();
    assert_eq!((t.ops, t.interrupted, t.errors), (0, 1, 0), "{t:?}");
    assert!(t.seconds >= 0.1 && t.seconds < 2.0, "{t:?}");
}

#[test]
fn seconds_bounds_a_slow_statement_which_is_interrupted_and_writes_nothing() {
    let f = fixture(&format!(
        r#"
[bench.workloads.slow_read]
database = "jobs"
sql = "{SLOW}"

[bench.workloads.slow_write]
database = "jobs"
sql = "UPDATE tasks SET title = ({SLOW}) WHERE id = ?1"
params = [{{ int = [1, 3000] }}]
transaction = "immediate"
"#
    ));
    let db = f.path("data/jobs.db");
    let (bytes, before) = (std::fs::read(&db).unwrap(), listing(&f.path("data")));
    let started = std::time::Instant::now();
    let out = bench(
        &f,
        &[
            "--profiles",
            "recommended,recommended+group",
            "--seconds",
            "0.3",
            "--threads",
            "2",
            "--json",
        ],
    );
    let took = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["requested_seconds"], 0.3);
    let rows = json["results"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        2 * 3,
        "slow_read, slow_write and mixed, per profile"
    );
    for r in rows {
        let secs = r["seconds"].as_f64().unwrap();
        assert!(
            (0.3..3.0).contains(&secs),
            "the real length of the run: {r}"
        );
        assert!(r["interrupted"].as_u64().unwrap() >= 1, "{r}");
        assert_eq!(r["ops"], 0, "nothing completes: {r}");
        assert_eq!(r["errors"], 0, "an interruption is no error: {r}");
    }
    // Six runs of 0.3 s, copies included; one statement alone would take a minute or more.
    assert!(took < std::time::Duration::from_secs(30), "{took:?}");
    assert_eq!(std::fs::read(&db).unwrap(), bytes, "the original's bytes");
    assert_eq!(listing(&f.path("data")), before, "the original's directory");
    // The table says it too.
    let out = bench(
        &f,
        &[
            "--profiles",
            "recommended",
            "--seconds",
            "0.3",
            "--workloads",
            "slow_read",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("runs of 0.3s (took 0.3"), "{text}");
    assert!(text.contains("interrupted"), "{text}");
    assert_eq!(std::fs::read(&db).unwrap(), bytes);
}

#[test]
fn an_unwritable_report_path_fails_before_measuring_naming_the_path() {
    let f = fixture(WORKLOADS);
    std::fs::write(f.path("plain"), b"a regular file").unwrap();
    let under_a_file = f.path("plain/x.html");
    for (path, says) in [
        (
            "/proc/x.html",
            "cannot create a file in its directory /proc",
        ),
        (
            under_a_file.to_str().unwrap(),
            "does not exist or is not a directory",
        ),
    ] {
        let started = std::time::Instant::now();
        // Sixty seconds of measuring, were the path not refused first.
        let out = bench(&f, &["--seconds", "30", "--report", path]);
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("invalid --report {path}")) && err.contains(says),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "nothing measured");
    }
}

#[test]
fn a_report_that_cannot_be_written_after_measuring_comes_after_the_results() {
    let f = fixture(WORKLOADS);
    let out_dir = f.path("out");
    std::fs::create_dir(&out_dir).unwrap();
    let report = out_dir.join("r.html");
    let tmp = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_litepool"))
        .args([
            "bench",
            "--profiles",
            "recommended",
            "--seconds",
            "1",
            "--json",
            "--report",
            report.to_str().unwrap(),
        ])
        .current_dir(f.dir.path())
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The path was checked before the copy was made; measuring (two runs of a second) is
    // still ahead when the copy appears. Then the report's directory goes away.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .any(|d| d.path().join("sources/0.db").exists())
    {
        assert!(std::time::Instant::now() < deadline, "no copy appeared");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::fs::remove_dir(&out_dir).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the results, complete, on stdout");
    assert_eq!(json["results"].as_array().unwrap().len(), 3);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot write --report {}", report.display()))
            && err.contains("No such file"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn a_report_at_a_symbolic_link_replaces_the_link_and_leaves_its_target() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture(WORKLOADS);
    let target = f.path("notes.txt");
    std::fs::write(&target, b"the user's notes").unwrap();
    std::os::unix::fs::symlink(&target, f.path("link.html")).unwrap();
    let out = bench(
        &f,
        &[
            "--profiles",
            "recommended",
            "--seconds",
            "0.05",
            "--report",
            "link.html",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "the user's notes",
        "the link's target is untouched"
    );
    let meta = std::fs::symlink_metadata(f.path("link.html")).unwrap();
    assert!(meta.file_type().is_file(), "a regular file, not the link");
    assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    let html = std::fs::read_to_string(f.path("link.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("id=\"results\""));
    let leftovers: Vec<_> = listing(f.dir.path())
        .into_iter()
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
