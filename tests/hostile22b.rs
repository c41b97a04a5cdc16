//! Hostile tests, round 22b: `litepool check` (never changing a file unless `--apply`, `Held`,
//! one failure once, the writer closing last) and the statistics surfaces (`stats` JSON, text,
//! Prometheus; `Pools::stats()`/`database_stats()`/`reset_stats()`; the `metrics` exporter).
//! Each test asserts the correct behaviour: a failing test is a finding.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::Connection;

use crate::common::*;

fn litepool(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_litepool"))
        .args(args)
        .current_dir(cwd)
        .env_remove("LITEPOOL_ENV")
        .env_remove("LITEPOOL_CONFIG_DIR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn all(o: &Output) -> String {
    format!(
        "{}\n--stderr--\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn sha_or_none(p: &Path) -> Option<String> {
    p.exists().then(|| sha256(p))
}

/// sha256 of the database, its `-wal` (if any) and whether `-shm`/`-journal` exist.
fn state(path: &Path) -> (String, Option<String>, bool, bool) {
    (
        sha256(path),
        sha_or_none(&beside(path, "-wal")),
        beside(path, "-shm").exists(),
        beside(path, "-journal").exists(),
    )
}

fn header_says_wal(path: &Path) -> bool {
    let h = std::fs::read(path).unwrap();
    (h[18], h[19]) == (2, 2)
}

fn count(path: &Path) -> i64 {
    let c = Connection::open(path).unwrap();
    c.query_row("SELECT count(*) FROM customers", [], |r| r.get(0))
        .unwrap()
}

fn cfg(mode: &str) -> String {
    one_db(
        &format!("journal_mode = \"{mode}\"\nbusy_timeout = \"100ms\"\nsynchronous = \"normal\""),
        "max_size = 2",
    )
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&out(o)).unwrap_or_else(|e| panic!("{e}: {}", all(o)))
}

/// Runs `check` with `args` in text and in `--json`; asserts both exit the same, returns both.
fn check_both(dir: &Path, args: &[&str]) -> (Output, Output) {
    let mut a = vec!["check"];
    a.extend_from_slice(args);
    let t = litepool(dir, &a);
    a.push("--json");
    let j = litepool(dir, &a);
    assert_eq!(
        t.status.code(),
        j.status.code(),
        "text and --json disagree on the exit status:\n{}\n{}",
        all(&t),
        all(&j)
    );
    (t, j)
}

fn wal_db(path: &Path) -> Connection {
    make_db(path);
    let app = Connection::open(path).unwrap();
    let m: String = app
        .pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))
        .unwrap();
    assert_eq!(m, "wal");
    app.execute_batch("INSERT INTO customers(name) VALUES ('edsger');")
        .unwrap();
    app
}

/// Another process holding the database: python3's sqlite3 runs `stmts` (separated by `;;`) and
/// keeps the connection open until `finish`. (A holder in this process would lose its POSIX locks
/// as soon as this process reads the file's bytes: closing any descriptor of a file drops them.)
struct Holder {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

const HOLDER: &str = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0.1)
for s in sys.argv[2].split(';;'):
    if s.strip():
        c.execute(s).fetchall()
print('ready', flush=True)
sys.stdin.readline()
try:
    if c.in_transaction:
        c.execute('COMMIT')
    print('committed', flush=True)
except Exception as e:
    print('commit failed: %s' % e, flush=True)
c.close()
"#;

impl Holder {
    fn new(path: &Path, stmts: &str) -> Holder {
        use std::io::BufRead;
        let mut child = Command::new("python3")
            .args(["-c", HOLDER, &path.display().to_string(), stmts])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "holder: {stmts}");
        Holder {
            child,
            stdin,
            stdout,
        }
    }

    /// Commits what it holds; returns its answer (`committed` or `commit failed: …`).
    fn finish(mut self) -> String {
        use std::io::{BufRead, Write};
        writeln!(self.stdin).unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        self.child.wait().unwrap();
        line.trim().to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// check --apply delete -> wal against a rollback-journal file held in each lock state.

#[test]
fn apply_delete_to_wal_is_refused_in_every_lock_state_and_changes_nothing() {
    for hold in [
        "BEGIN;; SELECT count(*) FROM customers", // SHARED
        "BEGIN IMMEDIATE;; INSERT INTO customers(name) VALUES ('x')", // RESERVED, dirty
        "BEGIN EXCLUSIVE;; INSERT INTO customers(name) VALUES ('y')", // EXCLUSIVE
    ] {
        let f = Fixture::new(&cfg("wal"));
        let path = f.path("data/main.db");
        make_db(&path);
        let app = Holder::new(&path, hold);
        let before = state(&path);
        let (t, j) = check_both(f.dir.path(), &["--apply"]);
        // Nothing lost first: no byte changed, the holder's transaction commits.
        assert_eq!(t.status.code(), Some(2), "{hold}: {}", all(&t));
        assert_eq!(
            state(&path),
            before,
            "{hold}: a refused --apply changed the file"
        );
        assert!(!header_says_wal(&path));
        assert_eq!(app.finish(), "committed", "{hold}");
        let n = count(&path);
        assert_eq!(n, if hold.starts_with("BEGIN;") { 3 } else { 4 }, "{hold}");
        // An EXCLUSIVE lock stops the integrity check before any report: one line on stderr
        // naming the file (Error::Locked), nothing changed, exit 2 for text and --json alike.
        if hold.starts_with("BEGIN EXCLUSIVE") {
            let err = all(&t);
            assert!(
                err.contains(&format!(
                    "{} is locked by another connection",
                    path.display()
                )) && err.contains("nothing was changed"),
                "{hold}: {err}"
            );
            assert_eq!(err.matches("locked").count(), 1, "{hold}: {err}");
            assert_eq!(j.status.code(), Some(2));
            let o = litepool(f.dir.path(), &["check", "--apply"]);
            assert_eq!(o.status.code(), Some(0), "{hold}: {}", all(&o));
            assert!(header_says_wal(&path));
            continue;
        }
        // Then the report: Held, naming the file, said once; --json is a JSON document.
        let text = out(&t);
        assert!(
            text.contains(&format!(
                "cannot switch journal_mode delete -> wal in {}: another connection holds the database",
                path.display()
            )),
            "{hold}: {}",
            all(&t)
        );
        assert_eq!(text.matches("error:").count(), 1, "{hold}: {text}");
        assert!(!text.contains("NOT APPLIED"), "{hold}: {text}");
        let doc = json(&j);
        let errors = doc["databases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| !d["error"].is_null())
            .count();
        assert_eq!(errors, 1, "{hold}: {doc}");
        // Free now: switched, and nothing left beside the file.
        let o = litepool(f.dir.path(), &["check", "--apply"]);
        assert_eq!(o.status.code(), Some(0), "{hold}: {}", all(&o));
        assert!(
            out(&o)
                .contains("applied (--apply, under an exclusive lock): journal_mode delete -> wal"),
            "{}",
            all(&o)
        );
        assert!(header_says_wal(&path));
        assert!(
            !beside(&path, "-wal").exists() && !beside(&path, "-shm").exists(),
            "{hold}"
        );
        assert_eq!(count(&path), n);
    }
}

// ---------------------------------------------------------------------------------------------
// WAL files held: a reader with an open snapshot, and locking_mode=exclusive.

#[test]
fn apply_wal_to_delete_refused_while_a_wal_reader_has_a_snapshot() {
    let f = Fixture::new(&cfg("delete"));
    let path = f.path("data/main.db");
    let app = wal_db(&path);
    let reader = Holder::new(&path, "BEGIN;; SELECT count(*) FROM customers");
    drop(app); // only the other process's reader holds it now
    let before = state(&path);
    let (t, j) = check_both(f.dir.path(), &["--apply"]);
    assert_eq!(t.status.code(), Some(2), "{}", all(&t));
    assert!(
        out(&t).contains("another connection holds the database"),
        "{}",
        all(&t)
    );
    assert_eq!(out(&t).matches("error:").count(), 1, "{}", all(&t));
    let doc = json(&j);
    let rows = doc["databases"][0]["pragmas"].as_array().unwrap();
    let jm = rows.iter().find(|r| r["pragma"] == "journal_mode").unwrap();
    assert_eq!(jm["outcome"], "would_change", "{jm}");
    assert_eq!(state(&path), before, "a refused --apply changed db/-wal");
    assert_eq!(reader.finish(), "committed");
    assert_eq!(count(&path), 4);
}

#[test]
fn check_against_locking_mode_exclusive_is_one_error_exit_2_and_no_byte_changes() {
    let f = Fixture::new(&cfg("delete"));
    let path = f.path("data/main.db");
    drop(wal_db(&path));
    let app = Holder::new(
        &path,
        "PRAGMA locking_mode=exclusive;; INSERT INTO customers(name) VALUES ('z')",
    );
    // Control: the lock is really held (a reader of another connection is refused).
    let probe = Connection::open(&path).unwrap();
    assert!(probe
        .query_row("SELECT count(*) FROM customers", [], |r| r.get::<_, i64>(0))
        .is_err());
    drop(probe);
    let before = state(&path);
    let mut reports = Vec::new();
    for args in [&[][..], &["--apply"][..]] {
        let (t, j) = check_both(f.dir.path(), args);
        assert_eq!(t.status.code(), Some(2), "{args:?}: {}", all(&t));
        assert_eq!(state(&path), before, "{args:?}: bytes changed");
        reports.push((args, t, j));
    }
    assert_eq!(app.finish(), "committed");
    assert_eq!(count(&path), 5);
    // One error naming the file, not a bare stuttering SQLite message. The lock stops the
    // integrity check before any report, so text and --json alike end with that one line on
    // stderr and exit 2 (Error::Locked).
    for (args, t, j) in reports {
        let err = all(&t);
        assert!(err.contains(&path.display().to_string()), "{args:?}: {err}");
        assert_eq!(
            err.matches("is locked by another connection").count(),
            1,
            "{args:?}: {err}"
        );
        assert!(err.contains("nothing was changed"), "{args:?}: {err}");
        assert_eq!(j.status.code(), Some(2), "{args:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// A -wal left beside its database (a crash), nothing holding it.

/// A copy of a live WAL database and its `-wal`, as a crash leaves them.
fn crashed_wal_copy(f: &Fixture) -> PathBuf {
    let live = f.path("data/live.db");
    let app = wal_db(&live);
    let path = f.path("data/main.db");
    std::fs::copy(&live, &path).unwrap();
    std::fs::copy(beside(&live, "-wal"), beside(&path, "-wal")).unwrap();
    drop(app);
    path
}

#[test]
#[ignore = "known limit, in docs/check.md: check's last connection to close checkpoints a -wal it found into the file (SQLite's own close; every row kept); not switched off yet"]
fn check_without_apply_on_a_leftover_wal_changes_no_byte() {
    // journal_mode differs (delete): check must leave db and -wal as they are (docs: "never
    // changes a database"; "Settings stored in an existing file are read from the file, never
    // switched").
    let f = Fixture::new(&cfg("delete"));
    let path = crashed_wal_copy(&f);
    let before = state(&path);
    let (t, _j) = check_both(f.dir.path(), &[]);
    assert_eq!(t.status.code(), Some(1), "{}", all(&t));
    assert!(
        out(&t).contains("would change wal -> delete"),
        "{}",
        all(&t)
    );
    let after = state(&path);
    // Whatever happens to the bytes, the committed rows of the -wal must survive.
    assert_eq!(count(&path), 4, "rows of the leftover -wal were lost");
    assert_eq!(
        after, before,
        "check without --apply changed the database's bytes"
    );
}

#[test]
fn apply_wal_to_delete_on_a_leftover_wal_keeps_its_rows_and_leaves_nothing() {
    let f = Fixture::new(&cfg("delete"));
    let path = crashed_wal_copy(&f);
    let o = litepool(f.dir.path(), &["check", "--apply"]);
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    assert!(!header_says_wal(&path));
    for s in ["-wal", "-shm"] {
        assert!(!beside(&path, s).exists(), "{s} left");
    }
    assert_eq!(count(&path), 4, "rows of the leftover -wal were lost");
}

// ---------------------------------------------------------------------------------------------
// A split database held while --apply would switch it: one error, not one per pool.

fn split_cfg(mode: &str) -> String {
    format!("[profiles.p]\njournal_mode = \"{mode}\"\nbusy_timeout = \"100ms\"\n\n[databases.main]\npath = \"{{data}}/main.db\"\nprofile = \"p\"\n[databases.main.writer]\n[databases.main.readers]\nmax_size = 2\n")
}

#[test]
fn split_database_held_under_apply_reports_one_error_and_changes_nothing() {
    let f = Fixture::new(&split_cfg("wal"));
    let path = f.path("data/main.db");
    make_db(&path);
    let app = Holder::new(&path, "BEGIN;; SELECT count(*) FROM customers");
    let before = state(&path);
    let (t, j) = check_both(f.dir.path(), &["--apply"]);
    assert_eq!(t.status.code(), Some(2), "{}", all(&t));
    let text = out(&t);
    assert_eq!(text.matches("error:").count(), 1, "{text}");
    assert_eq!(
        text.matches("another connection holds the database")
            .count(),
        1,
        "{text}"
    );
    let doc = json(&j);
    let errors = doc["databases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| !d["error"].is_null())
        .count();
    assert_eq!(errors, 1, "{doc}");
    assert_eq!(state(&path), before);
    assert_eq!(app.finish(), "committed");
    // Free: switched once, writer closed last, nothing beside the file.
    let o = litepool(f.dir.path(), &["check", "--apply"]);
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    assert!(header_says_wal(&path));
    assert!(!beside(&path, "-wal").exists() && !beside(&path, "-shm").exists());
    assert_eq!(count(&path), 3);
}

// ---------------------------------------------------------------------------------------------
// LiteFS replica: --apply switches nothing.

#[test]
fn apply_on_a_litefs_replica_switches_nothing() {
    let f = Fixture::new("[profiles.p]\njournal_mode = \"wal\"\n\n[databases.main]\npath = \"{data}/main.db\"\nprofile = \"p\"\nreplication = \"litefs\"\n[databases.main.writer]\n[databases.main.readers]\nmax_size = 2\n");
    let path = f.path("data/main.db");
    make_db(&path);
    std::fs::write(f.path("data/.primary"), "primary-host\n").unwrap();
    let before = state(&path);
    let (t, j) = check_both(f.dir.path(), &["--apply"]);
    assert_eq!(t.status.code(), Some(1), "{}", all(&t));
    assert!(
        out(&t).contains("would change delete -> wal"),
        "{}",
        all(&t)
    );
    assert!(!out(&t).contains("applied ("), "{}", all(&t));
    let doc = json(&j);
    for d in doc["databases"].as_array().unwrap() {
        assert!(d["applied"].is_null(), "{d}");
    }
    assert_eq!(state(&path), before);
    assert!(!header_says_wal(&path));
}

// ---------------------------------------------------------------------------------------------
// page_size / auto_vacuum differ: refused before anything opens.

#[test]
fn page_size_or_auto_vacuum_differing_is_exit_2_and_creates_nothing() {
    for (setup, key) in [
        ("PRAGMA page_size=1024; VACUUM;", "page_size = 4096"),
        ("PRAGMA auto_vacuum=FULL; VACUUM;", "auto_vacuum = \"none\""),
    ] {
        let f = Fixture::new(&one_db(
            &format!("journal_mode = \"delete\"\n{key}"),
            "max_size = 2",
        ));
        let path = f.path("data/main.db");
        make_db(&path);
        Connection::open(&path)
            .unwrap()
            .execute_batch(setup)
            .unwrap();
        let before = state(&path);
        for args in [&[][..], &["--apply"][..]] {
            let (t, _j) = check_both(f.dir.path(), args);
            assert_eq!(t.status.code(), Some(2), "{key} {args:?}: {}", all(&t));
            assert_eq!(state(&path), before, "{key} {args:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics.

fn split_bg_cfg() -> String {
    "[profiles.p]\njournal_mode = \"wal\"\n\n[databases.main]\npath = \"{data}/main.db\"\nprofile = \"p\"\ncheckpoint = \"background\"\n[databases.main.writer]\n[databases.main.readers]\nmax_size = 2\n\n[profiles.q]\njournal_mode = \"delete\"\n\n[databases.plain]\npath = \"{data}/plain.db\"\nprofile = \"q\"\n[databases.plain.pool]\nmax_size = 2\n".to_owned()
}

#[test]
fn n_writes_are_n_and_durations_are_seconds() {
    let f = Fixture::new(&split_bg_cfg());
    let pools = litepool::Pools::new(&f.load().unwrap()).unwrap();
    let h = pools.handle("main").unwrap();
    h.write(|c| c.execute_batch("CREATE TABLE t(x)")).unwrap();
    for i in 0..24 {
        h.write(move |c| {
            std::thread::sleep(std::time::Duration::from_millis(2));
            c.execute("INSERT INTO t VALUES (?1)", [i]).map(|_| ())
        })
        .unwrap();
    }
    let e = h.write(|c| c.execute_batch("INSERT INTO nosuch VALUES (1)"));
    assert!(e.is_err());
    let db = pools.database_stats()["main"].clone();
    let w = db.write.clone().expect("split: group commit");
    assert_eq!(
        (w.writes, w.failed_writes, w.closures),
        (25, 1, 26),
        "{w:?}"
    );
    assert!(w.batches >= 1 && w.batches <= 26, "{w:?}");
    assert_eq!(w.latency.count, 26);
    let max = w.latency.max.as_secs_f64();
    assert!((0.002..10.0).contains(&max), "latency max {max}s");
    let v = serde_json::to_value(&db).unwrap();
    let lat = &v["write"]["latency"];
    let ms = lat["max_seconds"].as_f64().unwrap();
    assert!((0.002..10.0).contains(&ms), "JSON max_seconds {ms}: {lat}");
    let tot = lat["total_seconds"].as_f64().unwrap();
    assert!((24.0 * 0.002..60.0).contains(&tot), "total_seconds {tot}");
    let el = v["elapsed_seconds"].as_f64().unwrap();
    assert!(el > 0.04 && el < 60.0, "elapsed_seconds {el}");
    assert!(v["wal_bytes"].as_u64().is_some(), "{v}");
    // Every key whose value is a number-of-time ends in _seconds: no raw Duration objects.
    fn walk(v: &serde_json::Value, at: &str, bad: &mut Vec<String>) {
        if let Some(o) = v.as_object() {
            for (k, x) in o {
                if x.get("secs").is_some() || x.get("nanos").is_some() {
                    bad.push(format!("{at}.{k}"));
                }
                walk(x, &format!("{at}.{k}"), bad);
            }
        }
    }
    let mut bad = Vec::new();
    walk(&v, "db", &mut bad);
    walk(
        &serde_json::to_value(pools.stats()).unwrap(),
        "pools",
        &mut bad,
    );
    assert!(bad.is_empty(), "durations not in seconds: {bad:?}");
    // Pool hold times in seconds too: the writer held its connection ≥ 2ms per write.
    let writer = &pools.stats().0["main.writer"];
    assert!(
        writer.hold.max.as_secs_f64() >= 0.002 && writer.hold.max.as_secs_f64() < 10.0,
        "{:?}",
        writer.hold
    );
    assert_eq!(writer.path, f.path("data/main.db"));
    assert!(writer.profile.starts_with('p'), "{}", writer.profile);
}

#[test]
fn reset_stats_restarts_every_window() {
    let f = Fixture::new(&split_bg_cfg());
    let pools = litepool::Pools::new(&f.load().unwrap()).unwrap();
    let h = pools.handle("main").unwrap();
    h.write(|c| c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (zeroblob(100000));"))
        .unwrap();
    for _ in 0..5 {
        h.write(|c| c.execute_batch("INSERT INTO t VALUES (zeroblob(10000))"))
            .unwrap();
    }
    let _ = pools
        .get("plain")
        .unwrap()
        .execute_batch("CREATE TABLE u(x)");
    let before_db = pools.database_stats();
    let before_pools = pools.stats();
    let t0 = std::time::SystemTime::now();
    pools.reset_stats();
    let dbs = pools.database_stats();
    let ps = pools.stats();
    for (name, d) in &dbs {
        assert!(d.since >= t0, "{name}: since not restarted");
        assert!(d.since > before_db[name].since, "{name}");
        if let Some(w) = &d.write {
            assert_eq!(
                (
                    w.writes,
                    w.batches,
                    w.closures,
                    w.latency.count,
                    w.queue_wait.count,
                    w.max_batch,
                    w.checkpoints
                ),
                (0, 0, 0, 0, 0, 0, 0),
                "{name}: {w:?}"
            );
        }
        if let Some(c) = &d.checkpoint {
            assert_eq!(
                (
                    c.restart,
                    c.at_checkin,
                    c.busy,
                    c.truncate,
                    c.backlog,
                    c.wal_peak,
                    c.pending_peak
                ),
                (0, 0, 0, 0, 0, 0, 0),
                "{name}: {c:?}"
            );
        }
    }
    for (name, p) in &ps.0 {
        assert!(
            p.since >= t0 && p.since > before_pools.0[name].since,
            "{name}"
        );
        assert_eq!(
            (
                p.checkouts,
                p.checkins,
                p.waited,
                p.timeouts,
                p.wait.count,
                p.hold.count,
                p.create.count,
                p.connections_created,
                p.connections_closed,
                p.cache.hit,
                p.cache.miss,
                p.cache.write
            ),
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
            "{name}: {p:?}"
        );
    }
}

// --- Prometheus text ------------------------------------------------------------------------

fn is_metric_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
        })
}

fn is_label_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()))
}

/// Parses `name{k="v",...} value`; returns (name, labels, value).
fn parse_sample(line: &str) -> (String, BTreeMap<String, String>, f64) {
    let brace = line
        .find('{')
        .unwrap_or_else(|| panic!("no labels: {line}"));
    let name = line[..brace].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[brace + 1..];
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            rest = r;
            break;
        }
        let eq = rest
            .find("=\"")
            .unwrap_or_else(|| panic!("bad label in {line}"));
        let key = rest[..eq].to_owned();
        let mut val = String::new();
        let mut chars = rest[eq + 2..].char_indices();
        let end;
        loop {
            let (i, c) = chars
                .next()
                .unwrap_or_else(|| panic!("unterminated: {line}"));
            match c {
                '\\' => {
                    let (_, e) = chars.next().unwrap();
                    val.push(match e {
                        'n' => '\n',
                        '\\' => '\\',
                        '"' => '"',
                        o => panic!("bad escape \\{o} in {line}"),
                    });
                }
                '"' => {
                    end = eq + 2 + i + 1;
                    break;
                }
                c => val.push(c),
            }
        }
        assert!(
            labels.insert(key.clone(), val).is_none(),
            "duplicate label {key}: {line}"
        );
        rest = &rest[end..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    let value: f64 = rest
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("bad value in {line}"));
    (name, labels, value)
}

struct Prom {
    help: BTreeMap<String, String>,
    types: BTreeMap<String, String>,
    /// (base name, labels without quantile) → samples
    series: BTreeSet<(String, Vec<(String, String)>)>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

fn parse_prom(text: &str) -> Prom {
    let mut p = Prom {
        help: BTreeMap::new(),
        types: BTreeMap::new(),
        series: BTreeSet::new(),
        samples: Vec::new(),
    };
    let mut seen = BTreeSet::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(r) = line.strip_prefix("# HELP ") {
            let (n, h) = r.split_once(' ').unwrap();
            assert!(
                p.help.insert(n.into(), h.into()).is_none(),
                "duplicate HELP {n}"
            );
        } else if let Some(r) = line.strip_prefix("# TYPE ") {
            let (n, t) = r.split_once(' ').unwrap();
            assert!(is_metric_name(n), "bad name {n}");
            assert!(
                p.types.insert(n.into(), t.into()).is_none(),
                "duplicate TYPE {n}"
            );
            current = Some(n.to_owned());
        } else if line.starts_with('#') || line.is_empty() {
            continue;
        } else {
            let (name, labels, v) = parse_sample(line);
            for k in labels.keys() {
                assert!(is_label_name(k), "bad label name {k:?}: {line}");
            }
            let base = current.clone().expect("sample before any TYPE");
            let t = &p.types[&base];
            let ok = name == base
                || (t == "summary"
                    && (name == format!("{base}_sum") || name == format!("{base}_count")));
            assert!(ok, "sample {name} under TYPE {base} {t}");
            assert!(
                seen.insert(line.rsplit_once(' ').unwrap().0.to_owned()),
                "duplicate sample {line}"
            );
            let mut l: Vec<_> = labels
                .clone()
                .into_iter()
                .filter(|(k, _)| k != "quantile")
                .collect();
            l.sort();
            p.series.insert((base, l));
            p.samples.push((name, labels, v));
        }
    }
    p
}

#[test]
fn prometheus_text_is_valid_and_lists_every_metric_once_with_the_catalogue_help() {
    let f = Fixture::new(&split_bg_cfg());
    {
        let pools = litepool::Pools::new(&f.load().unwrap()).unwrap();
        pools
            .handle("main")
            .unwrap()
            .write(|c| c.execute_batch("CREATE TABLE t(x)"))
            .unwrap();
    }
    let o = litepool(f.dir.path(), &["stats", "--format", "prometheus"]);
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    let p = parse_prom(&out(&o));
    let names: Vec<_> = litepool::metrics::METRICS.iter().map(|d| d.name).collect();
    assert_eq!(
        p.types.keys().cloned().collect::<BTreeSet<_>>(),
        names.iter().map(|s| s.to_string()).collect()
    );
    for d in litepool::metrics::METRICS {
        assert_eq!(p.help[d.name], d.help, "{}", d.name);
        assert_eq!(p.types[d.name], d.kind.prometheus_type(), "{}", d.name);
    }
    // Seconds, not microseconds: no duration sample is absurd.
    for (name, _l, v) in &p.samples {
        assert!(v.is_finite() && *v >= 0.0, "{name} {v}");
        if name.ends_with("_seconds") {
            assert!(*v < 60.0, "{name} = {v}: not seconds?");
        }
    }
}

#[cfg(feature = "metrics")]
#[test]
fn exporter_and_cli_export_the_same_series_with_the_same_help_and_units() {
    exporter_vs_cli(&split_bg_cfg());
}

/// The other shapes: a split database without the checkpointer, an unsplit one with it.
#[cfg(feature = "metrics")]
#[test]
fn exporter_and_cli_agree_on_split_without_checkpointer_and_unsplit_with_it() {
    exporter_vs_cli("[profiles.p]\njournal_mode = \"wal\"\n\n[databases.main]\npath = \"{data}/main.db\"\nprofile = \"p\"\n[databases.main.writer]\n[databases.main.readers]\nmax_size = 2\n\n[databases.plain]\npath = \"{data}/plain.db\"\nprofile = \"p\"\ncheckpoint = \"background\"\n[databases.plain.pool]\nmax_size = 2\n");
}

#[cfg(feature = "metrics")]
fn exporter_vs_cli(config: &str) {
    use metrics_util::debugging::DebuggingRecorder;
    let f = Fixture::new(config);
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let pools = litepool::Pools::new(&f.load().unwrap()).unwrap();
        let h = pools.handle("main").unwrap();
        h.write(|c| c.execute_batch("CREATE TABLE t(x)")).unwrap();
        for i in 0..5 {
            h.write(move |c| c.execute("INSERT INTO t VALUES (?1)", [i]).map(|_| ()))
                .unwrap();
        }
        drop(pools.get("plain").unwrap());
        pools.publish_metrics();
    });
    let snap = snapshotter.snapshot().into_vec();
    let mut exporter: BTreeSet<(String, Vec<(String, String)>)> = BTreeSet::new();
    let mut help = BTreeMap::new();
    for (ck, unit, desc, _v) in &snap {
        let k = ck.key();
        let mut l: Vec<_> = k
            .labels()
            .map(|l| (l.key().replace('.', "_"), l.value().to_owned()))
            .collect();
        l.sort();
        exporter.insert((k.name().to_owned(), l));
        help.insert(
            k.name().to_owned(),
            (*unit, desc.as_ref().map(|d| d.to_string())),
        );
    }
    let o = litepool(f.dir.path(), &["stats", "--format", "prometheus"]);
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    let cli = parse_prom(&out(&o));
    let only_exporter: Vec<_> = exporter.difference(&cli.series).collect();
    let only_cli: Vec<_> = cli.series.difference(&exporter).collect();
    assert!(
        only_exporter.is_empty() && only_cli.is_empty(),
        "series differ:\nonly in the exporter: {only_exporter:#?}\nonly in the CLI: {only_cli:#?}"
    );
    // The replica gauges need a read replica: tests/read_replica.rs checks them.
    for d in litepool::metrics::METRICS
        .iter()
        .filter(|d| !d.name.starts_with("litepool_replica_"))
    {
        let (unit, desc) = help
            .get(d.name)
            .unwrap_or_else(|| panic!("{} not exported", d.name));
        assert_eq!(desc.as_deref(), Some(d.help), "{}", d.name);
        assert_eq!(
            desc.as_deref(),
            Some(cli.help[d.name].as_str()),
            "{}",
            d.name
        );
        assert_eq!(*unit, Some(d.unit.to_metrics()), "{}", d.name);
        let suffix_ok = match d.unit {
            litepool::metrics::Unit::Seconds => d.name.ends_with("_seconds"),
            litepool::metrics::Unit::Bytes => d.name.ends_with("_bytes"),
            _ => !d.name.ends_with("_seconds") && !d.name.ends_with("_bytes"),
        };
        assert!(suffix_ok, "{}: unit {:?}", d.name, d.unit);
    }
}

// --- JSON fields vs the documented tables ---------------------------------------------------

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn set(s: &[&str]) -> BTreeSet<String> {
    s.iter().map(|x| x.to_string()).collect()
}

#[test]
fn stats_json_has_exactly_the_documented_fields() {
    let f = Fixture::new(&split_bg_cfg());
    let o = litepool(
        f.dir.path(),
        &["stats", "--json", "--workload", "0.2", "--threads", "1"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    let doc = json(&o);
    assert_eq!(
        keys(&doc),
        set(&["env", "sources", "databases", "pools", "workload"])
    );
    let summary = set(&[
        "count",
        "total_seconds",
        "max_seconds",
        "p50_seconds",
        "p90_seconds",
        "p99_seconds",
    ]);
    for (name, d) in doc["databases"].as_object().unwrap() {
        assert_eq!(
            keys(d),
            set(&[
                "database",
                "profile",
                "path",
                "split",
                "pools",
                "since",
                "elapsed_seconds",
                "wal_bytes",
                "write",
                "checkpoint"
            ]),
            "{name}"
        );
        if !d["write"].is_null() {
            assert_eq!(
                keys(&d["write"]),
                set(&[
                    "batches",
                    "writes",
                    "failed_writes",
                    "rolled_back",
                    "timeouts",
                    "reentrant",
                    "cancelled",
                    "failed_batches",
                    "max_batch",
                    "mean_batch",
                    "closures",
                    "queue_wait",
                    "latency",
                    "checkpoints",
                    "queued"
                ]),
                "{name}"
            );
            assert_eq!(keys(&d["write"]["latency"]), summary);
            assert_eq!(keys(&d["write"]["queue_wait"]), summary);
        }
        if !d["checkpoint"].is_null() {
            assert_eq!(
                keys(&d["checkpoint"]),
                set(&[
                    "restart",
                    "at_checkin",
                    "busy",
                    "truncate",
                    "backlog",
                    "wal_peak_bytes",
                    "pending_peak_bytes"
                ]),
                "{name}"
            );
        }
    }
    assert!(!doc["databases"]["main"]["checkpoint"].is_null());
    for (name, p) in doc["pools"].as_object().unwrap() {
        assert_eq!(
            keys(p),
            set(&[
                "database",
                "profile",
                "path",
                "since",
                "elapsed_seconds",
                "max_size",
                "min_idle",
                "connections",
                "idle",
                "in_use",
                "checkouts",
                "checkins",
                "waited",
                "timeouts",
                "wait",
                "hold",
                "create",
                "connections_created",
                "connections_closed",
                "closed_max_lifetime",
                "closed_idle_timeout_or_broken",
                "connection_errors",
                "customizer_failures",
                "optimize_runs",
                "last_customizer_error",
                "cache",
                "replica"
            ]),
            "{name}"
        );
        for s in ["wait", "hold", "create"] {
            assert_eq!(keys(&p[s]), summary, "{name}.{s}");
        }
        assert_eq!(
            keys(&p["cache"]),
            set(&["hit", "miss", "write", "spill", "used_bytes", "hit_ratio"]),
            "{name}"
        );
    }
    // The workload: documented as reads, writes, busy, errors, seconds, threads, skipped — and a
    // duration must be named *_seconds.
    let w = &doc["workload"];
    for k in keys(w) {
        let v = &w[&k];
        if v.is_f64() {
            assert!(
                k.ends_with("_seconds") || k == "ops_per_second",
                "workload.{k} is a float without a unit suffix: {w}"
            );
        }
    }
    // The workload ran writes on the copy: the split database's group commit counted them.
    let writes = w["writes"].as_u64().unwrap();
    let main = &doc["databases"]["main"]["write"];
    assert!(writes > 0);
    assert!(
        main["writes"].as_u64().unwrap() > 0,
        "workload writes {writes} vs group commit {main}"
    );
}

#[test]
fn stats_on_a_locked_file_names_the_file_once() {
    let f = Fixture::new(&cfg("delete"));
    let path = f.path("data/main.db");
    make_db(&path);
    let app = Holder::new(
        &path,
        "BEGIN EXCLUSIVE;; INSERT INTO customers(name) VALUES ('q')",
    );
    let before = state(&path);
    let mut outs = Vec::new();
    for args in [
        &["stats"][..],
        &["stats", "--json"][..],
        &["stats", "--format", "prometheus"][..],
    ] {
        let o = litepool(f.dir.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", all(&o));
        outs.push((args, o));
    }
    assert_eq!(state(&path), before);
    assert_eq!(app.finish(), "committed");
    assert_eq!(count(&path), 4);
    for (args, o) in outs {
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            e.contains(&path.display().to_string()),
            "{args:?}: the message does not name the file: {e}"
        );
        assert!(
            e.matches("database is locked").count() <= 1,
            "{args:?}: stuttering message: {e}"
        );
    }
}

#[test]
fn stats_json_pools_of_a_database_are_its_pools_with_its_path_and_profile() {
    let f = Fixture::new(&split_bg_cfg());
    let o = litepool(f.dir.path(), &["stats", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", all(&o));
    let doc = json(&o);
    let mut listed = BTreeSet::new();
    for (name, d) in doc["databases"].as_object().unwrap() {
        assert_eq!(d["database"], name.as_str());
        for p in d["pools"].as_array().unwrap() {
            let p = p.as_str().unwrap();
            let pool = &doc["pools"][p];
            assert!(!pool.is_null(), "{name}: pool {p} not in pools");
            assert_eq!(pool["path"], d["path"], "{p}");
            assert!(
                pool["profile"]
                    .as_str()
                    .unwrap()
                    .starts_with(d["profile"].as_str().unwrap()),
                "{p}"
            );
            listed.insert(p.to_owned());
        }
    }
    assert_eq!(
        listed,
        keys(&doc["pools"]),
        "a pool belongs to no database, or to two"
    );
    assert_eq!(doc["databases"]["main"]["split"], true);
    assert_eq!(doc["databases"]["plain"]["write"], serde_json::Value::Null);
    assert_eq!(
        doc["databases"]["plain"]["wal_bytes"],
        serde_json::Value::Null
    );
}
