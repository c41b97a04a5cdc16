//! Hostile cases against `litepool tune` (docs/bench.md, "Search for a faster profile").
//! Every real run uses the minimum `--time-budget` (5s) and a tiny table.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_litepool");
/// The documented bound: the budget + 10%, plus a little for process start on a shared machine.
const BOUND: Duration = Duration::from_millis(5_500 + 1_500);

fn config(budget: &str, sync: &str, durability: &str, db: &str, workloads: &str) -> String {
    format!(
        r#"
[limits]
memory_budget = "{budget}"

[profiles.mine]
busy_timeout = "1s"
journal_mode = "wal"
synchronous = "{sync}"
cache_size = "64KiB"

[databases.main]
path = "{{data}}/{db}"
profile = "mine"
durability = "{durability}"

[databases.main.pool]
max_size = 4

[bench.workloads.point]
database = "main"
sql = "SELECT v FROM t WHERE id = ?1"
params = [{{ int = [1, 200] }}]
{workloads}
"#
    )
}

fn fill(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode = wal;
         CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
         INSERT INTO t SELECT i, hex(randomblob(20)) FROM n;
         PRAGMA wal_checkpoint(TRUNCATE);",
    )
    .unwrap();
}

fn fixture_text(text: &str) -> (Fixture, std::path::PathBuf) {
    let f = Fixture::new(text);
    let tmp = f.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    (f, tmp)
}

fn fixture(workloads: &str) -> (Fixture, std::path::PathBuf) {
    let (f, tmp) = fixture_text(&config("512MiB", "normal", "normal", "main.db", workloads));
    fill(&f.path("data/main.db"));
    (f, tmp)
}

fn cmd(f: &Fixture, tmp: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("tune")
        .args(args)
        .current_dir(f.dir.path())
        .env("TMPDIR", tmp);
    c
}

fn tune(f: &Fixture, tmp: &Path, args: &[&str]) -> (Output, Duration) {
    let t0 = Instant::now();
    let out = cmd(f, tmp, args).output().unwrap();
    (out, t0.elapsed())
}

fn no_panic(out: &Output) {
    assert!(!err(out).contains("panicked"), "panic: {}", err(out));
}

/// Bad input: exit 2 naming `says`, before any work, nothing copied, data untouched.
fn refused(f: &Fixture, tmp: &Path, args: &[&str], says: &[&str]) {
    let before = hashes(&f.path("data"));
    let (out, took) = tune(f, tmp, args);
    no_panic(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", err(&out));
    for s in says {
        assert!(err(&out).contains(s), "{args:?}: {s:?} in {}", err(&out));
    }
    assert!(
        took < Duration::from_secs(3),
        "{args:?}: refused only after {took:?}"
    );
    assert_eq!(hashes(&f.path("data")), before, "{args:?}: data");
    assert_eq!(listing(tmp), Vec::<String>::new(), "{args:?}: copies left");
}

#[test]
fn hostile21_time_budget_values_are_refused_naming_the_flag() {
    let (f, tmp) = fixture("");
    for v in [
        "0",
        "0s",
        "1ms",
        "4.999s",
        "24h1s",
        "25h",
        "99999999999999999999s",
        "nan",
        "inf",
        "",
        "5秒",
        "５s",
    ] {
        refused(&f, &tmp, &["--time-budget", v], &["--time-budget"]);
    }
}

#[test]
fn hostile21_negative_values_name_the_flag_and_what_is_allowed() {
    let (f, tmp) = fixture("");
    refused(
        &f,
        &tmp,
        &["--time-budget", "-5s"],
        &["--time-budget", "5s"],
    );
    refused(
        &f,
        &tmp,
        &["--time-budget", "5s", "--threads", "-1"],
        &["--threads", "1"],
    );
}

#[test]
fn hostile21_threads_values_are_refused_naming_the_flag() {
    let (f, tmp) = fixture("");
    for v in ["0", "257", "1.5", "abc", "", "99999999999999999999"] {
        refused(
            &f,
            &tmp,
            &["--time-budget", "5s", "--threads", v],
            &["--threads"],
        );
    }
}

#[test]
fn hostile21_workloads_empty_unknown_and_of_names_with_commas() {
    let (f, tmp) = fixture("");
    for v in ["", ",", "point,", "point,nope", " point", "point\n"] {
        refused(
            &f,
            &tmp,
            &["--time-budget", "5s", "--workloads", v],
            &["--workloads"],
        );
    }
    refused(
        &f,
        &tmp,
        &["--time-budget", "5s", "--database", "../main"],
        &["--database", "../main"],
    );
}

#[test]
fn hostile21_report_paths_checked_before_the_work() {
    let (f, tmp) = fixture("");
    std::fs::create_dir(f.path("dir.html")).unwrap();
    for p in [
        f.path("dir.html"),
        f.path("missing/sub/r.html"),
        Path::new("/proc/r.html").to_path_buf(),
    ] {
        refused(
            &f,
            &tmp,
            &["--time-budget", "5s", "--report", p.to_str().unwrap()],
            &["--report"],
        );
    }
}

#[test]
fn hostile21_missing_database_file_is_not_created() {
    let (f, tmp) = fixture_text(&config("512MiB", "normal", "normal", "main.db", ""));
    let (out, took) = tune(&f, &tmp, &["--time-budget", "5s", "--threads", "2"]);
    no_panic(&out);
    assert_ne!(out.status.code(), Some(0), "{}", err(&out));
    assert!(
        err(&out).contains("main.db"),
        "names the file: {}",
        err(&out)
    );
    assert!(took < BOUND, "{took:?}");
    assert_eq!(
        listing(&f.path("data")),
        Vec::<String>::new(),
        "a file created"
    );
    assert_eq!(listing(&tmp), Vec::<String>::new());
}

#[test]
fn hostile21_zero_byte_and_not_sqlite_files_untouched() {
    for (name, bytes) in [
        ("zero.db", &b""[..]),
        ("text.db", &b"hello, not a database\n"[..]),
    ] {
        let (f, tmp) = fixture_text(&config("512MiB", "normal", "normal", name, ""));
        let db = f.path("data").join(name);
        std::fs::write(&db, bytes).unwrap();
        let before = hashes(&f.path("data"));
        let (out, took) = tune(&f, &tmp, &["--time-budget", "5s", "--threads", "2"]);
        no_panic(&out);
        assert_ne!(out.status.code(), Some(0), "{name}: {}", err(&out));
        assert!(
            err(&out).contains(name) || err(&out).contains("database \"main\""),
            "{name}: names the file or database: {}",
            err(&out)
        );
        assert!(took < BOUND, "{name}: {took:?}");
        assert_eq!(hashes(&f.path("data")), before, "{name}");
        assert_eq!(listing(&tmp), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn hostile21_failing_and_writing_workloads_leave_the_original_alone() {
    let (f, tmp) = fixture(
        r#"
[bench.workloads.broken]
database = "main"
sql = "SELECT * FROM no_such_table"
"#,
    );
    let before = hashes(&f.path("data"));
    let (out, took) = tune(
        &f,
        &tmp,
        &[
            "--time-budget",
            "5s",
            "--threads",
            "2",
            "--workloads",
            "broken",
        ],
    );
    no_panic(&out);
    assert_ne!(
        out.status.code(),
        Some(0),
        "a workload that fails every time: {}",
        err(&out)
    );
    assert!(
        err(&out).contains("broken"),
        "names the workload: {}",
        err(&out)
    );
    assert!(took < BOUND, "{took:?}");
    assert_eq!(hashes(&f.path("data")), before);
    assert_eq!(listing(&tmp), Vec::<String>::new());
}

#[test]
fn hostile21_writing_workload_never_reaches_the_original() {
    let (f, tmp) = fixture(
        r#"
[bench.workloads.writes]
database = "main"
sql = "INSERT INTO t(v) VALUES ('x')"
"#,
    );
    let before = hashes(&f.path("data"));
    let (out, took) = tune(
        &f,
        &tmp,
        &[
            "--time-budget",
            "5s",
            "--threads",
            "2",
            "--workloads",
            "writes,point",
        ],
    );
    no_panic(&out);
    assert!(took < BOUND, "{took:?}");
    assert_eq!(hashes(&f.path("data")), before, "the original changed");
    assert_eq!(listing(&tmp), Vec::<String>::new());
    let c = rusqlite::Connection::open(f.path("data/main.db")).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 200);
}

#[test]
fn hostile21_endless_statement_stays_within_the_budget() {
    let (f, tmp) = fixture(
        r#"
[bench.workloads.endless]
database = "main"
sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
"#,
    );
    let (out, took) = tune(
        &f,
        &tmp,
        &[
            "--time-budget",
            "5s",
            "--threads",
            "2",
            "--workloads",
            "endless",
        ],
    );
    no_panic(&out);
    assert!(took < BOUND, "an endless statement held tune for {took:?}");
    // Nothing was measured: no profile may be proposed as a measured result.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !(out.status.code() == Some(0) && stdout.contains("verdict: tuned")),
        "{stdout}"
    );
    assert_eq!(listing(&tmp), Vec::<String>::new());
}

#[test]
fn hostile21_strict_extra_under_a_tight_budget_json_agrees() {
    // 4 connections under 1 MiB: at most 256 KiB of cache each.
    let (f, tmp) = fixture_text(&config("1MiB", "extra", "strict", "main.db", ""));
    fill(&f.path("data/main.db"));
    let before = hashes(&f.path("data"));
    let (out, took) = tune(
        &f,
        &tmp,
        &["--time-budget", "5s", "--threads", "2", "--json"],
    );
    no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    assert!(took < BOUND, "{took:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["synchronous"], "extra", "{json}");
    assert_eq!(json["durability"], "strict", "{json}");
    for p in json["points"].as_array().unwrap() {
        assert_eq!(p["set"]["synchronous"], "extra", "{p}");
    }
    let snippet = json["snippet"].as_str().unwrap();
    assert!(snippet.contains("synchronous = \"extra\""), "{snippet}");
    measured_and_honest(&json);
    let pasted = format!(
        "[limits]\nmemory_budget = \"1MiB\"\n{snippet}\n[databases.main]\npath = \"x.db\"\nprofile = \"tuned\"\ndurability = \"strict\"\n[databases.main.pool]\nmax_size = 4\n"
    );
    let settings = litepool::Settings::from_toml(&pasted)
        .unwrap_or_else(|e| panic!("the snippet does not load back: {e}\n{pasted}"));
    let cache = settings.databases["main"].profile.pragmas().cache_size;
    let bytes = match cache.map(|c| format!("{c:?}")) {
        None => 2000 << 10,
        Some(_) => {
            let s = snippet
                .lines()
                .find_map(|l| l.strip_prefix("cache_size = \""))
                .unwrap()
                .trim_end_matches('"');
            if let Some(k) = s.strip_suffix("KiB") {
                k.parse::<u64>().unwrap() << 10
            } else if let Some(m) = s.strip_suffix("MiB") {
                m.parse::<u64>().unwrap() << 20
            } else {
                panic!("cache_size {s}")
            }
        }
    };
    assert!(
        bytes * 4 <= 1 << 20,
        "cache {bytes} x 4 connections over 1MiB: {snippet}"
    );
    assert_eq!(hashes(&f.path("data")), before);
    assert_eq!(listing(&tmp), Vec::<String>::new());
}

#[test]
fn hostile21_uncheckpointed_wal_is_neither_checkpointed_nor_lost() {
    let (f, tmp) = fixture("");
    let db = f.path("data/main.db");
    // A process that leaves committed rows in the -wal (no checkpoint at close).
    let st = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3,os\nc=sqlite3.connect({db:?})\nc.execute('PRAGMA wal_autocheckpoint=0')\nc.execute(\"UPDATE t SET v='wal' WHERE id<=50\")\nc.commit()\nos._exit(0)\n",
            db = db.to_str().unwrap()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    assert!(f.path("data/main.db-wal").exists());
    let before = hashes(&f.path("data"));
    let (out, took) = tune(&f, &tmp, &["--time-budget", "5s", "--threads", "2"]);
    no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    assert!(took < BOUND, "{took:?}");
    assert_eq!(
        hashes(&f.path("data")),
        before,
        "the WAL or database changed"
    );
    assert_eq!(listing(&tmp), Vec::<String>::new());
}

#[cfg(unix)]
#[test]
fn hostile21_read_only_database_file_copies_removed() {
    use std::os::unix::fs::PermissionsExt;
    let (f, tmp) = fixture("");
    let db = f.path("data/main.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    let before = hashes(&f.path("data"));
    let (out, took) = tune(&f, &tmp, &["--time-budget", "5s", "--threads", "2"]);
    no_panic(&out);
    assert!(took < BOUND, "{took:?}");
    assert_eq!(hashes(&f.path("data")), before);
    assert_eq!(
        listing(&tmp),
        Vec::<String>::new(),
        "copies of a read-only file left"
    );
    assert_eq!(
        std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
        0o444
    );
}

#[test]
fn hostile21_exclusive_lock_with_uncommitted_pages_in_the_file() {
    // Rollback journal; another process holds an EXCLUSIVE transaction whose uncommitted rows
    // have spilled into the database file. The workload errors (integer overflow) if it ever
    // sees them: tune must neither hang nor measure uncommitted data, nor disturb the holder.
    let (f, tmp) = fixture_text(&config("512MiB", "full", "normal", "main.db", "").replace(
        "journal_mode = \"wal\"", "journal_mode = \"delete\"").replace(
        "SELECT v FROM t WHERE id = ?1",
        "SELECT CASE WHEN (SELECT count(*) FROM t WHERE v = 'UNCOMMITTED') > 0 THEN abs(-9223372036854775807 - 1) ELSE ?1 END",
    ));
    let db = f.path("data/main.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
        INSERT INTO t SELECT i, hex(randomblob(250)) FROM n;",
    )
    .unwrap();
    drop(c);
    let hash = sha256(&db);
    let mut holder = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3,time,sys\nc=sqlite3.connect({db:?},isolation_level=None)\nc.execute('PRAGMA cache_size=1')\nc.execute('BEGIN EXCLUSIVE')\nc.execute(\"UPDATE t SET v='UNCOMMITTED'\")\nprint('locked',flush=True)\nsys.stdin.read()\nc.execute('ROLLBACK')\nc.close()\n",
            db = db.to_str().unwrap()
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    assert!(f.path("data/main.db-journal").exists());
    let (out, took) = tune(&f, &tmp, &["--time-budget", "5s", "--threads", "2"]);
    drop(holder.stdin.take());
    assert!(
        holder.wait().unwrap().success(),
        "the holder's ROLLBACK failed"
    );
    no_panic(&out);
    assert!(took < BOUND, "{took:?}");
    if out.status.code() != Some(0) {
        assert!(
            err(&out).contains("main"),
            "names the database: {}",
            err(&out)
        );
        assert!(
            !err(&out).contains("overflow"),
            "measured uncommitted rows: {}",
            err(&out)
        );
    }
    assert_eq!(
        sha256(&db),
        hash,
        "the original after the holder's rollback"
    );
    assert_eq!(listing(&tmp), Vec::<String>::new());
}

#[test]
fn hostile21_read_replica_is_refused_naming_it() {
    let (f, tmp) = fixture_text(
        r#"
[databases.rep]
replica_url = "s3://bucket/rep"
profile = "recommended"
[databases.rep.readers]
max_size = 2

[bench.workloads.q]
database = "rep"
sql = "SELECT 1"
"#,
    );
    let (out, took) = tune(&f, &tmp, &["--time-budget", "5s", "--database", "rep"]);
    no_panic(&out);
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_ne!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(err(&out).contains("rep"), "{}", err(&out));
    assert_eq!(listing(&tmp), Vec::<String>::new());
}

#[cfg(unix)]
#[test]
fn hostile21_sigterm_exits_143_and_removes_copies() {
    let (f, tmp) = fixture("");
    let before = hashes(&f.path("data"));
    let child = cmd(&f, &tmp, &["--time-budget", "5s", "--threads", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while listing(&tmp).is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(5), "no copy made");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    {
        use std::os::unix::fs::PermissionsExt;
        for n in listing(&tmp) {
            let m = std::fs::metadata(tmp.join(&n)).map(|m| m.permissions().mode() & 0o077);
            assert!(
                matches!(m, Ok(0) | Err(_)),
                "{n}: a copy readable by others: {m:?}"
            );
        }
    }
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    no_panic(&out);
    assert_eq!(out.status.code(), Some(143), "{}", err(&out));
    assert_eq!(
        listing(&tmp),
        Vec::<String>::new(),
        "copies left after SIGTERM"
    );
    assert_eq!(hashes(&f.path("data")), before);
}

#[cfg(unix)]
#[test]
fn hostile21_closed_stdout_pipe_no_panic_no_copies() {
    let (f, tmp) = fixture("");
    let report = f.path("r.html");
    let mut child = cmd(
        &f,
        &tmp,
        &[
            "--time-budget",
            "5s",
            "--threads",
            "2",
            "--report",
            report.to_str().unwrap(),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    no_panic(&out);
    assert_ne!(
        out.status.code(),
        None,
        "killed by a signal: {:?}",
        out.status
    );
    assert_eq!(listing(&tmp), Vec::<String>::new());
    assert!(
        report.exists(),
        "the work's results lost: no report written (exit {:?}): {}",
        out.status.code(),
        err(&out)
    );
}

#[cfg(unix)]
#[test]
fn hostile21_symlinked_database_stays_a_symlink() {
    let (f, tmp) = fixture_text(&config("512MiB", "normal", "normal", "link.db", ""));
    fill(&f.path("data/real.db"));
    std::os::unix::fs::symlink("real.db", f.path("data/link.db")).unwrap();
    let before = hashes(&f.path("data"));
    let (out, took) = tune(&f, &tmp, &["--time-budget", "5s", "--threads", "2"]);
    no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    assert!(took < BOUND, "{took:?}");
    assert!(std::fs::symlink_metadata(f.path("data/link.db"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(hashes(&f.path("data")), before);
    assert_eq!(listing(&tmp), Vec::<String>::new());
}

#[test]
fn hostile21_report_over_an_existing_file_is_replaced_whole() {
    let (f, tmp) = fixture("");
    let report = f.path("r.html");
    std::fs::write(&report, "old report").unwrap();
    let (out, _) = tune(
        &f,
        &tmp,
        &[
            "--time-budget",
            "5s",
            "--threads",
            "2",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("[profiles.tuned]") && html.contains("</html>"),
        "{html}"
    );
    assert_eq!(listing(&tmp), Vec::<String>::new());
    let mut here = listing(f.dir.path());
    here.retain(|n| n.contains("r.html") && n != "r.html");
    assert!(here.is_empty(), "temporary report files left: {here:?}");
}

/// The proposal is a set that was measured; a win is one by the documented rule (every run of
/// the tuned profile beat every run of the configured one) and, as the verdict's own words have
/// it, outside the noise: the ratio's gain exceeds both spreads.
fn measured_and_honest(json: &serde_json::Value) {
    let tuned = &json["tuned"];
    assert!(
        json["points"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| &p["set"] == tuned),
        "proposed a set never measured as a point: {tuned}"
    );
    let conf = json["confirmation"].as_array().unwrap();
    let runs = |name: &str| -> Vec<f64> {
        conf.iter().find(|c| c["name"] == name).unwrap()["ops_per_sec"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let spread = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (s[s.len() - 1] - s[0]) / s[s.len() / 2]
    };
    if !conf.iter().any(|c| c["name"] == "tuned") {
        // The leader is the configured candidate itself (nothing beat it): no win to check.
        assert_eq!(json["gain"], false, "{json}");
        assert_eq!(&json["configured"], tuned, "{json}");
        return;
    }
    let (c, t) = (runs("configured"), runs("tuned"));
    if json["gain"].as_bool().unwrap() {
        let cmax = c.iter().cloned().fold(f64::MIN, f64::max);
        assert!(
            t.iter().all(|&x| x > cmax),
            "a win by less than the rule: {json}"
        );
        let ratio = json["ratio"].as_f64().unwrap();
        assert!(
            ratio - 1.0 > spread(&c).max(spread(&t)),
            "a win inside the noise: ratio {ratio}, spreads {} and {}: {}",
            spread(&c),
            spread(&t),
            json["verdict"]
        );
    }
}

#[test]
fn hostile21_a_win_is_measured_and_outside_the_noise() {
    // Candidates that can hardly matter: 200 rows, one point query.
    let (f, tmp) = fixture("");
    for _ in 0..2 {
        let (out, took) = tune(
            &f,
            &tmp,
            &["--time-budget", "5s", "--threads", "2", "--json"],
        );
        no_panic(&out);
        assert_eq!(out.status.code(), Some(0), "{}", err(&out));
        assert!(took < BOUND, "{took:?}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        measured_and_honest(&json);
    }
    assert_eq!(listing(&tmp), Vec::<String>::new());
}

#[cfg(unix)]
#[test]
fn hostile21_report_through_a_symlink_never_writes_the_target() {
    let (f, tmp) = fixture("");
    let target = f.path("data/notes.html");
    std::fs::write(&target, "the user's own page").unwrap();
    let report = f.path("r.html");
    std::os::unix::fs::symlink(&target, &report).unwrap();
    let before = hashes(&f.path("data"));
    let (out, _) = tune(
        &f,
        &tmp,
        &[
            "--time-budget",
            "5s",
            "--threads",
            "2",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    no_panic(&out);
    assert!(
        matches!(out.status.code(), Some(0) | Some(2)),
        "{}",
        err(&out)
    );
    assert_eq!(
        hashes(&f.path("data")),
        before,
        "wrote through the symlink into the user's file"
    );
    assert_eq!(listing(&tmp), Vec::<String>::new());
}

#[cfg(unix)]
#[test]
fn hostile21_sigterm_at_start_leaves_nothing() {
    let (f, tmp) = fixture("");
    let before = hashes(&f.path("data"));
    for delay in [5u64, 60, 200] {
        let child = cmd(&f, &tmp, &["--time-budget", "5s", "--threads", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let t0 = Instant::now();
        let out = child.wait_with_output().unwrap();
        no_panic(&out);
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "{delay}ms: slow to stop"
        );
        assert!(
            matches!(out.status.code(), Some(143) | None),
            "{delay}ms: exit {:?}: {}",
            out.status,
            err(&out)
        );
        assert_eq!(
            listing(&tmp),
            Vec::<String>::new(),
            "{delay}ms: copies left"
        );
        assert_eq!(hashes(&f.path("data")), before, "{delay}ms");
    }
}

#[test]
fn hostile21_workload_of_another_database_and_a_database_without_workloads() {
    let (f, tmp) = fixture(
        r#"
[databases.other]
path = "{data}/other.db"
profile = "mine"

[bench.workloads.elsewhere]
database = "other"
sql = "SELECT 1"
"#,
    );
    fill(&f.path("data/other.db"));
    // Two databases' workloads and no --database: which one? Refused, naming both.
    refused(&f, &tmp, &["--time-budget", "5s"], &["--database"]);
    refused(
        &f,
        &tmp,
        &[
            "--time-budget",
            "5s",
            "--database",
            "main",
            "--workloads",
            "elsewhere",
        ],
        &["elsewhere", "other"],
    );
    refused(
        &f,
        &tmp,
        &["--time-budget", "5s", "--workloads", "point,elsewhere"],
        &["--database", "main", "other"],
    );
}
