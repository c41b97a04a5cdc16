//! Hostile tests of the read replica surface (docs/read-replicas.md): settings, the start-up
//! variable, the VFS file, writes through every route, the rest of the process, rebuilding the
//! pools, statistics when the primary or the storage goes away, and the command line.
//! Each test asserts what a user reading the docs would expect; a failure is a finding.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use litepool::{Error, Pools, Settings};

use crate::common::*;
use crate::litestream05::{litestream_05, litestream_vfs};

const VAR: &str = litepool::replica::REPLICA_URL_VAR;

const PRIMARY: &str = r#"
[databases.jobs]
path = "{data}/jobs.db"
profile = "recommended"
replication = "litestream"
heartbeat = "100ms"
[databases.jobs.writer]
[databases.jobs.readers]
max_size = 2
"#;

fn replica_toml(vfs: &Path, url: &str, extra: &str) -> String {
    format!(
        "[litestream]\nvfs = {}\n\n[databases.jobs]\nreplica_url = {}\nprofile = \"reads\"\n{extra}\n[profiles.reads]\ncache_size = \"16MiB\"\nbusy_timeout = \"5s\"\n\n[databases.jobs.readers]\nmax_size = 2\n",
        toml_string(vfs.to_str().unwrap()),
        toml_string(url)
    )
}

fn load_text(text: &str) -> litepool::Result<Settings> {
    load_with(text, HashMap::new())
}

fn load_with(text: &str, vars: HashMap<String, String>) -> litepool::Result<Settings> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(dir.path().join("config/default.toml"), text).unwrap();
    Settings::loader()
        .dir(dir.path().join("config"))
        .vars(vars)
        .load()
}

// ---------------------------------------------------------------------------------------------
// Settings: refused at load, naming the key.

fn refused(text: &str, words: &[&str]) {
    match load_text(text) {
        Ok(s) => panic!(
            "accepted: {:?}",
            s.databases.values().map(|d| &d.replica).collect::<Vec<_>>()
        ),
        Err(e) => {
            let m = e.to_string();
            for w in words {
                assert!(m.contains(w), "message {m:?} does not name {w:?}");
            }
        }
    }
}

#[test]
fn hostile19_replica_url_bad_values_are_refused_at_load() {
    let vfs = PathBuf::from("/opt/litestream/litestream-vfs.so");
    for url in [
        "",
        "file://relative/jobs",
        "file://./jobs",
        "file://",
        "ftp://host/jobs",
        "FILE:///abs/jobs",
        "s3://",
        "file:///a\nb",
        "file:///a\u{7}b",
        "file:///a b",
        "/abs/path/no/scheme",
        "007",
        "1e3",
    ] {
        let r = load_text(&replica_toml(&vfs, url, ""));
        match r {
            Ok(_) => panic!("replica_url {url:?} accepted"),
            Err(e) => {
                let m = e.to_string();
                assert!(m.contains("replica_url"), "{url:?}: {m}");
                assert!(!m.contains("panicked"), "{url:?}: {m}");
            }
        }
    }
    // A very long URL (1 MB) is answered, not hung on or panicked over.
    let long = format!("file:///{}", "a/".repeat(500_000));
    let t = Instant::now();
    let _ = load_text(&replica_toml(&vfs, &long, ""));
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn hostile19_replica_url_unicode_and_dollar_are_kept_literally() {
    let vfs = PathBuf::from("/opt/litestream/litestream-vfs.so");
    for url in [
        "file:///srv/répliqué/jobs",
        "file:///srv/$HOME/jobs",
        "s3://bucket/${X}",
    ] {
        match load_text(&replica_toml(&vfs, url, "")) {
            // Either accepted exactly as written (no expansion), or refused naming the key.
            Ok(s) => assert_eq!(
                s.databases["jobs"].replica.as_ref().unwrap().url,
                url,
                "the URL was changed"
            ),
            Err(e) => assert!(e.to_string().contains("replica_url"), "{e}"),
        }
    }
}

#[test]
fn hostile19_keys_that_cannot_apply_on_a_replica_are_refused_naming_the_key() {
    let vfs = PathBuf::from("/opt/litestream/litestream-vfs.so");
    let url = "file:///srv/replica/jobs";
    refused(
        &replica_toml(&vfs, url, "path = \"/tmp/h19/jobs.db\"\n"),
        &["path"],
    );
    refused(
        &replica_toml(&vfs, url, "replication = \"litestream\"\n"),
        &["replication"],
    );
    refused(
        &replica_toml(&vfs, url, "checkpoint = \"background\"\n"),
        &["checkpoint"],
    );
    refused(
        &replica_toml(&vfs, url, "heartbeat = \"1s\"\n"),
        &["heartbeat"],
    );
    refused(
        &(replica_toml(&vfs, url, "") + "\n[databases.jobs.writer]\nmax_size = 1\n"),
        &["writer"],
    );
    // The same key from an environment variable layer.
    match load_with(
        &replica_toml(&vfs, url, ""),
        vars(&[("LITEPOOL__DATABASES__JOBS__HEARTBEAT", "1s")]),
    ) {
        Ok(s) => panic!(
            "heartbeat from a variable accepted on a replica: {:?}",
            s.databases["jobs"].heartbeat
        ),
        Err(e) => assert!(e.to_string().contains("heartbeat"), "{e}"),
    }
    match load_with(
        &replica_toml(&vfs, url, ""),
        vars(&[("LITEPOOL__DATABASES__JOBS__PATH", "/tmp/h19/x.db")]),
    ) {
        Ok(s) => panic!(
            "path from a variable accepted on a replica: {:?}",
            s.databases["jobs"].path
        ),
        Err(e) => assert!(e.to_string().contains("path"), "{e}"),
    }
}

#[test]
fn hostile19_replica_url_from_a_variable_layer_takes_effect() {
    let vfs = PathBuf::from("/opt/litestream/litestream-vfs.so");
    let s = load_with(
        &replica_toml(&vfs, "file:///srv/replica/jobs", ""),
        vars(&[(
            "LITEPOOL__DATABASES__JOBS__REPLICA_URL",
            "file:///srv/other/jobs",
        )]),
    )
    .unwrap();
    assert_eq!(
        s.databases["jobs"].replica.as_ref().unwrap().url,
        "file:///srv/other/jobs"
    );
    // A bad URL through a variable is refused naming the variable.
    let e = load_with(
        &replica_toml(&vfs, "file:///srv/replica/jobs", ""),
        vars(&[("LITEPOOL__DATABASES__JOBS__REPLICA_URL", "ftp://x/y")]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("LITEPOOL__DATABASES__JOBS__REPLICA_URL"), "{e}");
    // A replica_url given to a database with a path, by a variable: refused, not silently a
    // local database or a replica.
    let primary = shipped_profiles() + &PRIMARY.replace("{data}", "/tmp/h19-nowhere");
    match load_with(
        &primary,
        vars(&[(
            "LITEPOOL__DATABASES__JOBS__REPLICA_URL",
            "file:///srv/replica/jobs",
        )]),
    ) {
        Ok(s) => panic!(
            "path + replica_url accepted: path {:?} replica {:?}",
            s.databases["jobs"].path, s.databases["jobs"].replica
        ),
        Err(e) => assert!(
            e.to_string().contains("replica_url") || e.to_string().contains("path"),
            "{e}"
        ),
    }
}

#[test]
fn hostile19_two_replicas_different_urls_refused_same_url_allowed() {
    let vfs = PathBuf::from("/opt/litestream/litestream-vfs.so");
    let two = |a: &str, b: &str| {
        format!(
            "[litestream]\nvfs = {}\n[profiles.reads]\ncache_size = \"16MiB\"\n[databases.a]\nreplica_url = {}\nprofile = \"reads\"\n[databases.a.readers]\n[databases.b]\nreplica_url = {}\nprofile = \"reads\"\n[databases.b.readers]\n",
            toml_string(vfs.to_str().unwrap()),
            toml_string(a),
            toml_string(b)
        )
    };
    let e = load_text(&two("file:///srv/a", "file:///srv/b"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("file:///srv/a") && e.contains("file:///srv/b"),
        "{e}"
    );
    // Same replica under two names after normalisation-looking differences: one URL to the
    // VFS, two texts: refused (one replica per process), never both accepted as different.
    let e = load_text(&two("file:///srv/a", "file:///srv/a/"));
    assert!(e.is_err(), "file:///srv/a and file:///srv/a/ both accepted");
    // The same URL twice: one replica; either accepted or refused naming both databases.
    if let Err(e) = load_text(&two("file:///srv/a", "file:///srv/a")) {
        let e = e.to_string();
        assert!(e.contains("\"a\"") && e.contains("\"b\""), "{e}");
    }
}

#[test]
fn hostile19_heartbeat_bounds_on_the_primary() {
    for (hb, ok) in [
        ("100ms", true),
        ("1h", true),
        ("99ms", false),
        ("0s", false),
        ("1h 1ms", false),
        ("-1s", false),
        ("", false),
        ("nan", false),
        ("1e3", false),
        ("1.5s", true),
        ("10000000000000000000000h", false),
    ] {
        let text = shipped_profiles()
            + &PRIMARY.replace("{data}", "/tmp/h19-nowhere").replace(
                "heartbeat = \"100ms\"",
                &format!("heartbeat = {}", toml_string(hb)),
            );
        let r = load_text(&text);
        match (r, ok) {
            (Ok(_), true) => {}
            (Err(e), false) => assert!(e.to_string().contains("heartbeat"), "{hb}: {e}"),
            (Ok(s), false) => panic!(
                "heartbeat {hb:?} accepted as {:?}",
                s.databases["jobs"].heartbeat
            ),
            (Err(e), true) => panic!("heartbeat {hb:?} refused: {e}"),
        }
    }
    // A number where a duration is expected.
    let text = shipped_profiles()
        + &PRIMARY
            .replace("{data}", "/tmp/h19-nowhere")
            .replace("heartbeat = \"100ms\"", "heartbeat = 1");
    assert!(
        load_text(&text).is_err(),
        "heartbeat = 1 (a bare number) accepted"
    );
    // A heartbeat on a database that is not replicated: it has no reader to tell.
    let text = shipped_profiles()
        + &PRIMARY
            .replace("{data}", "/tmp/h19-nowhere")
            .replace("replication = \"litestream\"\n", "");
    match load_text(&text) {
        Err(e) => assert!(e.to_string().contains("heartbeat"), "{e}"),
        Ok(s) => assert!(
            s.ignored.iter().any(|i| i.key.contains("heartbeat")),
            "heartbeat without replication neither refused nor listed as ignored: {:?}",
            s.ignored
        ),
    }
}

#[test]
fn hostile19_profile_keys_that_cannot_apply_are_listed_every_one() {
    let vfs = PathBuf::from("/opt/litestream/litestream-vfs.so");
    let text = replica_toml(&vfs, "file:///srv/replica/jobs", "").replace(
        "[profiles.reads]\n",
        "[profiles.reads]\njournal_mode = \"wal\"\nmmap_size = \"64MiB\"\nsynchronous = \"full\"\nwal_autocheckpoint = 1000\nlocking_mode = \"normal\"\n",
    );
    let s = load_text(&text).unwrap();
    let ignored: Vec<_> = s.ignored.iter().map(|i| i.key.as_str()).collect();
    for k in [
        "journal_mode",
        "mmap_size",
        "synchronous",
        "wal_autocheckpoint",
        "locking_mode",
    ] {
        assert!(
            ignored.iter().any(|i| i.ends_with(k)),
            "{k} not listed as ignored: {ignored:?}"
        );
    }
    for i in &s.ignored {
        assert!(!i.reason.is_empty(), "{i:?}");
    }
    // The database's own [pragmas] override too.
    let text = replica_toml(&vfs, "file:///srv/replica/jobs", "")
        + "\n[databases.jobs.pragmas]\nmmap_size = \"64MiB\"\n";
    let s = load_text(&text).unwrap();
    assert!(
        s.ignored
            .iter()
            .any(|i| i.key.contains("jobs") && i.key.ends_with("mmap_size")),
        "databases.jobs.pragmas.mmap_size not listed: {:?}",
        s.ignored
    );
    // Built in code: refused instead.
    let profiles =
        load_text(&(shipped_profiles() + &PRIMARY.replace("{data}", "/tmp/h19-nowhere")))
            .unwrap()
            .profiles;
    let db = litepool::DatabaseSettings::read_replica(
        "jobs",
        litepool::settings::ReadReplica::new("file:///srv/replica/jobs").unwrap(),
        profiles["recommended"].clone(),
    );
    let e = Settings::from_databases([db], None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("journal_mode"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// A real primary, Litestream and a replica process.

struct World {
    f: Fixture,
    primary: Option<Pools>,
    ls: std::process::Child,
    replica: PathBuf,
    url: String,
    machine: PathBuf,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.ls.id().to_string()])
            .status();
        let _ = self.ls.wait();
    }
}

const ROWS: i64 = 50;

impl World {
    fn new(extra: &str) -> World {
        World::with_primary(extra, PRIMARY)
    }

    fn with_primary(extra: &str, primary_toml: &str) -> World {
        let bin = litestream_05();
        let vfs = litestream_vfs();
        let f = Fixture::new(&(shipped_profiles() + primary_toml));
        let primary = Pools::new(&f.load().unwrap()).unwrap();
        primary
            .writer("jobs")
            .unwrap()
            .execute_batch(&format!(
                "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < {ROWS})
                 INSERT INTO t SELECT i, 'row' || i FROM n;"
            ))
            .unwrap();
        let db = std::fs::canonicalize(f.path("data/jobs.db")).unwrap();
        let replica = f.path("replica/jobs");
        let config = f.path("litestream.yml");
        std::fs::write(
            &config,
            format!(
                "dbs:\n  - path: \"{}\"\n    monitor-interval: 100ms\n    replica:\n      type: file\n      path: \"{}\"\n      sync-interval: 100ms\n",
                db.display(),
                replica.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(f.path("litestream.log")).unwrap();
        let ls = Command::new(&bin)
            .args(["replicate", "-config"])
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let machine = f.path("machine2");
        std::fs::create_dir_all(machine.join("config")).unwrap();
        let url = format!("file://{}", replica.display());
        std::fs::write(
            machine.join("config/default.toml"),
            replica_toml(&vfs, &url, extra),
        )
        .unwrap();
        let w = World {
            f,
            primary: Some(primary),
            ls,
            replica,
            url,
            machine,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !w.replica.join("ltx").is_dir() {
            assert!(Instant::now() < deadline, "Litestream made no replica");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Let the heartbeat and rows reach the replica.
        std::thread::sleep(Duration::from_millis(1500));
        w
    }

    fn primary_count(&self) -> i64 {
        let conn = rusqlite::Connection::open(self.f.path("data/jobs.db")).unwrap();
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    /// Runs scenario `name` in a child process started with `env` (the URL by default).
    fn child(&self, name: &str, env: Option<&str>) -> Kid {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "hostile19::hostile19_child_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .current_dir(&self.machine)
        .env("H19_CONFIG", self.machine.join("config"))
        .env("H19_SCENARIO", name)
        .env("H19_REPLICA", &self.replica)
        .env("H19_URL", &self.url)
        .env("LITESTREAM_LOG_FILE", self.machine.join("vfs.log"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        match env {
            Some(v) => {
                cmd.env(VAR, v);
            }
            None => {
                cmd.env(VAR, &self.url);
            }
        }
        Kid::spawn(cmd)
    }
}

struct Kid {
    child: std::process::Child,
    rx: std::sync::mpsc::Receiver<String>,
    lines: Vec<String>,
}

impl Kid {
    fn spawn(mut cmd: Command) -> Kid {
        let mut child = cmd.spawn().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Kid {
            child,
            rx,
            lines: Vec::new(),
        }
    }

    /// Waits for a line starting with `prefix` (bounded).
    fn wait_for(&mut self, prefix: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => {
                    self.lines.push(l.clone());
                    if l.starts_with(prefix) {
                        return l;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no {prefix:?} within {within:?}; said:\n{}",
                        self.lines.join("\n")
                    );
                }
            }
        }
    }

    fn say(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the end (bounded), returns every `R ` line as key → rest.
    fn finish(mut self, within: Duration) -> (HashMap<String, String>, String) {
        self.wait_for("R done", within);
        let _ = self.child.wait();
        let mut m = HashMap::new();
        for l in &self.lines {
            if let Some(rest) = l.strip_prefix("R ") {
                let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
                m.insert(k.to_owned(), v.to_owned());
            }
        }
        (m, self.lines.join("\n"))
    }
}

fn say(key: &str, r: std::result::Result<String, String>) {
    match r {
        Ok(v) => println!("R {key} ok {v}"),
        Err(e) => println!("R {key} err {}", e.replace('\n', " ")),
    }
}

fn sql(conn: &rusqlite::Connection, text: &str) -> std::result::Result<String, String> {
    conn.execute_batch(text)
        .map(|_| String::new())
        .map_err(|e| e.to_string())
}

fn count(pools: &Pools) -> std::result::Result<i64, String> {
    pools
        .reader("jobs")
        .map_err(|e| e.to_string())?
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .map_err(|e| e.to_string())
}

fn replica_line(pools: &Pools) -> String {
    match pools
        .stats()
        .0
        .get("jobs.readers")
        .and_then(|p| p.replica.clone())
    {
        None => "none".into(),
        Some(r) => format!(
            "samples={} errors={} txid={:?} poll_age={:?} staleness_ms={:?} last_error={:?}",
            r.samples,
            r.sample_errors,
            r.txid,
            r.poll_age_seconds,
            r.staleness.map(|d| d.as_millis()),
            r.last_sample_error
        ),
    }
}

fn field(line: &str, key: &str) -> String {
    line.split(' ')
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or("")
        .to_owned()
}

/// Not a test: the replica process, running scenario `$H19_SCENARIO`.
#[test]
#[ignore = "helper: the replica process of the hostile19 tests"]
fn hostile19_child_helper() {
    println!();
    let settings = child_settings("H19_CONFIG");
    let scenario = std::env::var("H19_SCENARIO").unwrap();
    let stdin = std::io::stdin();
    let mut input = stdin.lock().lines();
    match scenario.as_str() {
        "open" => {
            let t = Instant::now();
            let r = Pools::new(&settings);
            println!("R elapsed_ms {}", t.elapsed().as_millis());
            match r {
                Ok(p) => {
                    say("open", Ok(String::new()));
                    say("count", count(&p).map(|n| n.to_string()));
                    std::thread::sleep(Duration::from_millis(1200));
                    println!("R stats {}", replica_line(&p));
                }
                Err(e) => {
                    println!(
                        "R kind {}",
                        if matches!(e, Error::ReplicaSetup { .. }) {
                            "ReplicaSetup"
                        } else {
                            "other"
                        }
                    );
                    say("open", Err(e.to_string()));
                }
            }
        }
        "writes" => {
            let pools = Pools::new(&settings).unwrap();
            say("before", count(&pools).map(|n| n.to_string()));
            say(
                "writer",
                pools
                    .writer("jobs")
                    .map(|_| String::new())
                    .map_err(|e| format!("{} {e}", matches!(e, Error::ReadReplica { .. }))),
            );
            say(
                "write",
                pools
                    .write("jobs", |c| c.execute("DELETE FROM t", []))
                    .map(|n| n.to_string())
                    .map_err(|e| format!("{} {e}", matches!(e, Error::ReadReplica { .. }))),
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let fut = pools.write_async("jobs", |c| c.execute("DELETE FROM t", []));
            say(
                "write_async",
                rt.block_on(fut)
                    .map(|n| n.to_string())
                    .map_err(|e| format!("{} {e}", matches!(e, Error::ReadReplica { .. }))),
            );
            let h = pools.handle("jobs").unwrap();
            say(
                "handle_writer",
                h.writer().map(|_| String::new()).map_err(|e| e.to_string()),
            );
            let conn = pools.get("jobs").unwrap();
            say("get_delete", sql(&conn, "DELETE FROM t"));
            say(
                "get_insert",
                sql(&conn, "INSERT INTO t VALUES (100000, 'x')"),
            );
            say("get_create", sql(&conn, "CREATE TABLE evil(x)"));
            say("query_only_off", sql(&conn, "PRAGMA query_only = OFF"));
            say(
                "after_qo_insert",
                sql(&conn, "INSERT INTO t VALUES (100001, 'x')"),
            );
            say("begin_immediate", sql(&conn, "BEGIN IMMEDIATE"));
            let _ = conn.execute_batch("ROLLBACK");
            say("begin_exclusive", sql(&conn, "BEGIN EXCLUSIVE"));
            let _ = conn.execute_batch("ROLLBACK");
            say(
                "attach",
                sql(&conn, "ATTACH 'file:/tmp/h19-attach.db' AS a"),
            );
            say("attach_mem", sql(&conn, "ATTACH ':memory:' AS m"));
            say("temp_table", sql(&conn, "CREATE TEMP TABLE tmp(x)"));
            say("user_version", sql(&conn, "PRAGMA user_version = 7"));
            say("journal_mode", sql(&conn, "PRAGMA journal_mode = DELETE"));
            say(
                "wal_checkpoint",
                sql(&conn, "PRAGMA wal_checkpoint(TRUNCATE)"),
            );
            say("vacuum", sql(&conn, "VACUUM"));
            say(
                "vacuum_into",
                sql(&conn, "VACUUM INTO '/tmp/h19-vacuum-into.db'"),
            );
            say(
                "set_time",
                conn.query_row(
                    "SELECT litestream_set_time('2000-01-01T00:00:00Z')",
                    [],
                    |r| r.get::<_, rusqlite::types::Value>(0),
                )
                .map(|v| format!("{v:?}"))
                .map_err(|e| e.to_string()),
            );
            say(
                "set_time_exec",
                sql(&conn, "SELECT litestream_set_time('2000-01-01T00:00:00Z')"),
            );
            say(
                "pragma_time",
                sql(&conn, "PRAGMA litestream_time = '2000-01-01T00:00:00Z'"),
            );
            drop(conn);
            let r = pools.reader("jobs").unwrap();
            say(
                "reader_insert",
                sql(&r, "INSERT INTO t VALUES (100002, 'x')"),
            );
            drop(r);
            // Every connection of the pool, after all that: still reading the present, all rows.
            let mut held = Vec::new();
            for i in 0..2 {
                let c = pools.reader("jobs").unwrap();
                let n: std::result::Result<i64, String> = c
                    .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                    .map_err(|e| e.to_string());
                say(&format!("after_count{i}"), n.map(|n| n.to_string()));
                let qo: std::result::Result<i64, String> = c
                    .query_row("PRAGMA query_only", [], |r| r.get(0))
                    .map_err(|e| e.to_string());
                say(&format!("after_query_only{i}"), qo.map(|n| n.to_string()));
                held.push(c);
            }
        }
        "local" => {
            let pools = Pools::new(&settings).unwrap();
            say("replica", count(&pools).map(|n| n.to_string()));
            let dir = std::path::PathBuf::from(std::env::var("H19_LOCAL").unwrap());
            let p = dir.join("local.db");
            say(
                "rusqlite",
                (|| -> rusqlite::Result<String> {
                    let c = rusqlite::Connection::open(&p)?;
                    c.execute_batch("CREATE TABLE l(x); INSERT INTO l VALUES (1),(2),(3);")?;
                    let n: i64 = c.query_row("SELECT count(*) FROM l", [], |r| r.get(0))?;
                    Ok(n.to_string())
                })()
                .map_err(|e| e.to_string()),
            );
            let local = Settings::loader()
                .dir(dir.join("config"))
                .vars(HashMap::new())
                .load()
                .unwrap();
            match Pools::new(&local) {
                Ok(lp) => {
                    say(
                        "pool_write",
                        lp.write("app", |c| {
                            c.execute_batch("CREATE TABLE a(x)")?;
                            c.execute("INSERT INTO a VALUES (42)", [])
                        })
                        .map(|n| n.to_string())
                        .map_err(|e| e.to_string()),
                    );
                    say(
                        "pool_read",
                        lp.reader("app")
                            .map_err(|e| e.to_string())
                            .and_then(|c| {
                                c.query_row("SELECT x FROM a", [], |r| r.get::<_, i64>(0))
                                    .map_err(|e| e.to_string())
                            })
                            .map(|n| n.to_string()),
                    );
                }
                Err(e) => say("pool_write", Err(e.to_string())),
            }
            // The replica pool still reads after the local ones opened.
            say("replica_after", count(&pools).map(|n| n.to_string()));
        }
        "rebuild" => {
            for i in 0..3 {
                match Pools::new(&settings) {
                    Ok(p) => {
                        say(&format!("same{i}"), count(&p).map(|n| n.to_string()));
                        drop(p);
                    }
                    Err(e) => say(&format!("same{i}"), Err(e.to_string())),
                }
            }
            // A different URL in the same process: refused, not reading the old replica.
            let mut other = settings.clone();
            let db = other.databases.get_mut("jobs").unwrap();
            let url = "file:///tmp/h19-some-other-replica/jobs";
            db.replica = Some(litepool::settings::ReadReplica::new(url).unwrap());
            db.path = PathBuf::from(url);
            match Pools::new(&other) {
                Ok(p) => say("other", Ok(format!("count {:?}", count(&p)))),
                Err(e) => say(
                    "other",
                    Err(format!("{} {e}", matches!(e, Error::ReplicaSetup { .. }))),
                ),
            }
            // And the old one again afterwards.
            say(
                "again",
                Pools::new(&settings)
                    .map_err(|e| e.to_string())
                    .and_then(|p| count(&p))
                    .map(|n| n.to_string()),
            );
        }
        "vfs" => {
            let dir = PathBuf::from(std::env::var("H19_LOCAL").unwrap());
            let cases: Vec<(&str, PathBuf)> = vec![
                ("missing", dir.join("no-such.so")),
                ("directory", dir.clone()),
                ("text", dir.join("text.so")),
                ("empty", dir.join("empty.so")),
                ("dangling", dir.join("dangling.so")),
                ("loop", dir.join("loop.so")),
                ("other_so", dir.join("other.so")),
            ];
            for (name, path) in cases {
                let mut s = settings.clone();
                s.litestream_vfs = Some(path);
                let r = std::panic::catch_unwind(|| Pools::new(&s));
                match r {
                    Err(_) => println!("R {name} panic"),
                    Ok(Ok(_)) => say(name, Ok(String::new())),
                    Ok(Err(e)) => say(
                        name,
                        Err(format!("{} {e}", matches!(e, Error::ReplicaSetup { .. }))),
                    ),
                }
            }
            // A symlink to the real one works; then the real file works.
            let mut s = settings.clone();
            s.litestream_vfs = Some(dir.join("link.so"));
            say(
                "symlink",
                Pools::new(&s)
                    .map_err(|e| e.to_string())
                    .and_then(|p| count(&p))
                    .map(|n| n.to_string()),
            );
            say(
                "real",
                Pools::new(&settings)
                    .map_err(|e| e.to_string())
                    .and_then(|p| count(&p))
                    .map(|n| n.to_string()),
            );
        }
        "watch" => {
            // Samples the statistics on command: "sample" prints one line.
            let pools = Pools::new(&settings).unwrap();
            println!("ready");
            while let Some(Ok(cmd)) = input.next() {
                if cmd == "sample" {
                    let t = Instant::now();
                    let c = count(&pools);
                    println!(
                        "sample {} read_ms={} count={:?}",
                        replica_line(&pools),
                        t.elapsed().as_millis(),
                        c
                    );
                } else {
                    break;
                }
            }
        }
        "open_txn" => {
            // Every connection of the pool left inside a read transaction (one by a panic).
            let pools = Pools::new(&settings).unwrap();
            {
                let a = pools.reader("jobs").unwrap();
                let b = pools.reader("jobs").unwrap();
                a.execute_batch("BEGIN; SELECT count(*) FROM t;").unwrap();
                let _ = a.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0));
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    b.execute_batch("BEGIN").unwrap();
                    let _ = b.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0));
                    panic!("application panic holding a replica connection");
                }));
                assert!(r.is_err());
            }
            println!("ready");
            let _ = input.next();
            let mut held = Vec::new();
            for i in 0..2 {
                let c = pools.reader("jobs").unwrap();
                say(
                    &format!("count{i}"),
                    c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                        .map(|n| n.to_string())
                        .map_err(|e| e.to_string()),
                );
                say(&format!("autocommit{i}"), Ok(c.is_autocommit().to_string()));
                held.push(c);
            }
        }
        other => panic!("unknown scenario {other}"),
    }
    println!("R done");
}

#[test]
fn hostile19_writes_through_every_route_change_nothing_and_say_why() {
    let w = World::new("");
    let before = w.primary_count();
    let (r, all) = w.child("writes", None).finish(Duration::from_secs(120));
    assert_eq!(r["before"], format!("ok {ROWS}"), "{all}");
    let url = &w.url;
    for k in ["writer", "write", "write_async"] {
        assert!(
            r[k].starts_with("err true") && r[k].contains(url.as_str()),
            "{k}: {} ({all})",
            r[k]
        );
    }
    assert!(
        r["handle_writer"].starts_with("err") && r["handle_writer"].contains(url.as_str()),
        "{all}"
    );
    for k in [
        "get_delete",
        "get_insert",
        "get_create",
        "after_qo_insert",
        "reader_insert",
    ] {
        assert!(
            r[k].starts_with("err") && r[k].contains("readonly"),
            "{k}: {} ({all})",
            r[k]
        );
    }
    for k in [
        "query_only_off",
        "begin_immediate",
        "begin_exclusive",
        "attach",
        "attach_mem",
        "temp_table",
        "user_version",
        "journal_mode",
        "vacuum",
        "vacuum_into",
        "set_time",
        "set_time_exec",
        "pragma_time",
    ] {
        assert!(r[k].starts_with("err"), "{k} not refused: {} ({all})", r[k]);
        assert!(r[k].len() > 6, "{k}: no reason given ({all})");
    }
    assert!(r["set_time"].contains("not authorized"), "{all}");
    for i in 0..2 {
        assert_eq!(r[&format!("after_count{i}")], format!("ok {ROWS}"), "{all}");
        assert_eq!(r[&format!("after_query_only{i}")], "ok 1", "{all}");
    }
    assert!(
        !Path::new("/tmp/h19-attach.db").exists(),
        "ATTACH created a file"
    );
    assert!(
        !Path::new("/tmp/h19-vacuum-into.db").exists(),
        "VACUUM INTO wrote a file"
    );
    assert_eq!(w.primary_count(), before);
    // Nothing was created on the replica machine's directory but the config and the VFS log.
    let mut names: Vec<_> = std::fs::read_dir(&w.machine)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["config", "vfs.log"], "files on the replica machine");
}

#[test]
fn hostile19_other_databases_of_the_process_open_and_write_after_the_vfs() {
    let w = World::new("");
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir(local.path().join("config")).unwrap();
    std::fs::write(
        local.path().join("config/default.toml"),
        shipped_profiles()
            + &format!(
                "[databases.app]\npath = {}\nprofile = \"recommended\"\n[databases.app.writer]\n[databases.app.readers]\n",
                toml_string(local.path().join("app.db").to_str().unwrap())
            ),
    )
    .unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "hostile19::hostile19_child_helper",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .current_dir(&w.machine)
    .env("H19_CONFIG", w.machine.join("config"))
    .env("H19_SCENARIO", "local")
    .env("H19_LOCAL", local.path())
    .env(VAR, &w.url)
    .env("LITESTREAM_LOG_FILE", w.machine.join("vfs.log"))
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let (r, all) = Kid::spawn(cmd).finish(Duration::from_secs(120));
    assert_eq!(r["replica"], format!("ok {ROWS}"), "{all}");
    assert_eq!(r["rusqlite"], "ok 3", "{all}");
    assert_eq!(r["pool_write"], "ok 1", "{all}");
    assert_eq!(r["pool_read"], "ok 42", "{all}");
    assert_eq!(r["replica_after"], format!("ok {ROWS}"), "{all}");
    // Rows on disk, read by a fresh process-independent connection.
    let c = rusqlite::Connection::open(local.path().join("app.db")).unwrap();
    let x: i64 = c.query_row("SELECT x FROM a", [], |r| r.get(0)).unwrap();
    assert_eq!(x, 42);
}

#[test]
fn hostile19_rebuilding_pools_same_url_works_different_url_refused() {
    let w = World::new("");
    let (r, all) = w.child("rebuild", None).finish(Duration::from_secs(120));
    for i in 0..3 {
        assert_eq!(r[&format!("same{i}")], format!("ok {ROWS}"), "{all}");
    }
    assert!(
        r["other"].starts_with("err true") && r["other"].contains("h19-some-other-replica"),
        "a different replica URL in the same process: {} ({all})",
        r["other"]
    );
    assert_eq!(r["again"], format!("ok {ROWS}"), "{all}");
}

#[test]
fn hostile19_start_up_variable_empty_different_or_slash_is_refused() {
    let w = World::new("");
    let other = "file:///tmp/h19-elsewhere/jobs".to_string();
    let slash = format!("{}/", w.url);
    for (name, v) in [
        ("empty", ""),
        ("other", other.as_str()),
        ("slash", slash.as_str()),
    ] {
        let (r, all) = w.child("open", Some(v)).finish(Duration::from_secs(60));
        assert!(r["open"].starts_with("err"), "{name}: opened ({all})");
        assert_eq!(
            r.get("kind").map(String::as_str),
            Some("ReplicaSetup"),
            "{name}: {all}"
        );
        assert!(r["open"].contains(VAR), "{name}: {all}");
        assert!(r["open"].contains(&w.url), "{name}: {all}");
    }
}

#[test]
fn hostile19_vfs_file_missing_dir_text_symlink_other_library() {
    let w = World::new("");
    let local = tempfile::tempdir().unwrap();
    let d = local.path();
    std::fs::write(d.join("text.so"), "not a library\n").unwrap();
    std::fs::write(d.join("empty.so"), "").unwrap();
    std::os::unix::fs::symlink(d.join("nothing-here.so"), d.join("dangling.so")).unwrap();
    std::os::unix::fs::symlink(d.join("loop.so"), d.join("loop.so")).unwrap();
    std::os::unix::fs::symlink(litestream_vfs(), d.join("link.so")).unwrap();
    // A real shared library that is not Litestream's VFS.
    let libm = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("libm");
    std::fs::copy(libm, d.join("other.so")).unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "hostile19::hostile19_child_helper",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .current_dir(&w.machine)
    .env("H19_CONFIG", w.machine.join("config"))
    .env("H19_SCENARIO", "vfs")
    .env("H19_LOCAL", d)
    .env(VAR, &w.url)
    .env("LITESTREAM_LOG_FILE", w.machine.join("vfs.log"))
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let (r, all) = Kid::spawn(cmd).finish(Duration::from_secs(120));
    for k in [
        "missing",
        "directory",
        "text",
        "empty",
        "dangling",
        "loop",
        "other_so",
    ] {
        assert!(r[k].starts_with("err true"), "vfs {k}: {} ({all})", r[k]);
        assert!(
            r[k].contains("litestream.vfs") || r[k].contains("/tmp/"),
            "vfs {k}: message names neither key nor file: {all}"
        );
    }
    assert_eq!(r["symlink"], format!("ok {ROWS}"), "{all}");
    assert_eq!(r["real"], format!("ok {ROWS}"), "{all}");
}

#[test]
fn hostile19_staleness_grows_when_the_primary_stops_its_heartbeat() {
    let mut w = World::new("");
    let mut kid = w.child("watch", None);
    kid.wait_for("ready", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(1500));
    kid.say("sample\n");
    let first = kid.wait_for("sample", Duration::from_secs(30));
    let s0: Option<u128> = field(&first, "staleness_ms")
        .trim_start_matches("Some(")
        .trim_end_matches(')')
        .parse()
        .ok();
    assert!(s0.is_some(), "no staleness with a heartbeat: {first}");

    // The primary stops (its heartbeat with it); Litestream keeps running.
    drop(w.primary.take());
    let mut seen = Vec::new();
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(700));
        kid.say("sample\n");
        let l = kid.wait_for("sample", Duration::from_secs(30));
        let s: Option<u128> = field(&l, "staleness_ms")
            .trim_start_matches("Some(")
            .trim_end_matches(')')
            .parse()
            .ok();
        seen.push((s, l));
    }
    kid.say("stop\n");
    let _ = kid.finish(Duration::from_secs(30));
    let last_seen = seen.last().unwrap().1.clone();
    let values: Vec<u128> = seen
        .iter()
        .map(|(s, l)| s.unwrap_or_else(|| panic!("staleness unknown: {l}")))
        .collect();
    // Heartbeats written just before the primary stopped may still arrive (Litestream's
    // monitor and sync intervals plus the VFS's poll, about 2.1 s): from then on (the 4th sample,
    // 2.8 s after) staleness only grows.
    for pair in values[3..].windows(2) {
        assert!(pair[1] >= pair[0], "staleness shrank: {values:?}");
    }
    assert!(
        *values.last().unwrap() >= 3000,
        "5.6 s after the last heartbeat, staleness is {values:?} ms"
    );
    // `poll_age_seconds` is None until the sampling connection's first poll (the VFS polls
    // every second; litestream_lag() is -1 before, as documented); by the last sample (5.6 s
    // later) it has polled.
    assert!(
        field(&last_seen, "poll_age").starts_with("Some("),
        "poll_age_seconds unknown seconds after the replica opened: {last_seen}"
    );
}

#[test]
fn hostile19_replica_storage_deleted_mid_run_statistics_do_not_lie() {
    let w = World::new("");
    let mut kid = w.child("watch", None);
    kid.wait_for("ready", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(1200));
    kid.say("sample\n");
    let before = kid.wait_for("sample", Duration::from_secs(30));
    let errors0: u64 = field(&before, "errors").parse().unwrap();
    // The storage goes away (Litestream keeps writing elsewhere: we move the directory).
    std::fs::rename(&w.replica, w.f.path("replica-gone")).unwrap();
    let mut last = String::new();
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(1000));
        kid.say("sample\n");
        let t = Instant::now();
        last = kid.wait_for("sample", Duration::from_secs(30));
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "a sample took {:?}",
            t.elapsed()
        );
    }
    // Attempts: samples taken and samples that failed (a locked replica is retried).
    let samples0: u64 = field(&before, "samples").parse::<u64>().unwrap()
        + field(&before, "errors").parse::<u64>().unwrap();
    let samples: u64 = field(&last, "samples").parse::<u64>().unwrap()
        + field(&last, "errors").parse::<u64>().unwrap();
    kid.say("stop\n");
    let t = Instant::now();
    let exited = std::thread::spawn(move || kid.finish(Duration::from_secs(60))).join();
    let exit_took = t.elapsed();
    let mut bad = Vec::new();
    if samples < samples0 + 6 {
        bad.push(format!(
            "the watcher stopped sampling (every 500 ms): samples {samples0} -> {samples} in 6 s"
        ));
    }
    if exited.is_err() {
        bad.push("the replica process did not exit within 60 s of dropping its pools".to_string());
    } else if exit_took > Duration::from_secs(10) {
        bad.push(format!("dropping the pools took {exit_took:?}"));
    }
    let errors: u64 = field(&last, "errors").parse().unwrap();
    let poll_age: Option<u64> = field(&last, "poll_age")
        .trim_start_matches("Some(")
        .trim_end_matches(')')
        .parse()
        .ok();
    // 6 s without storage. Litestream's VFS polls a `file` replica whose directory is gone
    // successfully (it lists no new files), so its poll age stays 0 (documented in
    // docs/read-replicas.md): the samples must go on, and staleness is what tells.
    let _ = (errors, errors0, poll_age);
    // Staleness, from a heartbeat it cannot see any more, must have grown past 3 s.
    let st: Option<u128> = field(&last, "staleness_ms")
        .trim_start_matches("Some(")
        .trim_end_matches(')')
        .parse()
        .ok();
    if st.is_some_and(|s| s < 3000) {
        bad.push(format!(
            "staleness still {st:?} ms 6 s after the storage went"
        ));
    }
    assert!(
        bad.is_empty(),
        "{}\nbefore: {before}\nafter 6 s: {last}",
        bad.join("\n")
    );
}

#[test]
fn hostile19_empty_replica_storage_answers_without_hanging() {
    let w = World::new("");
    let empty = w.f.path("empty-replica/jobs");
    std::fs::create_dir_all(&empty).unwrap();
    let url = format!("file://{}", empty.display());
    std::fs::write(
        w.machine.join("config/default.toml"),
        replica_toml(&litestream_vfs(), &url, ""),
    )
    .unwrap();
    let t = Instant::now();
    let (r, all) = w.child("open", Some(&url)).finish(Duration::from_secs(90));
    assert!(t.elapsed() < Duration::from_secs(60), "{all}");
    // An empty storage holds no database: opening must fail saying so, or succeed with the
    // statistics saying there is no position; never panic.
    assert!(!all.contains("panicked"), "{all}");
    if r["open"].starts_with("ok") {
        let st = &r["stats"];
        assert!(
            field(st, "txid") == "None" || field(st, "errors") != "0",
            "an empty replica reports a position: {all}"
        );
    } else {
        assert!(
            r["open"].contains(&url),
            "the error does not name the replica: {all}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The command line on the replica machine.

fn cli(w: &World, args: &[&str], env: Option<&str>) -> (Option<i32>, String, String, Duration) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_litepool"));
    cmd.args(args)
        .arg("--config")
        .arg(w.machine.join("config"))
        .current_dir(&w.machine)
        .env_remove(VAR)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(v) = env {
        cmd.env(VAR, v);
    }
    let t = Instant::now();
    let mut child = cmd.spawn().unwrap();
    // Bounded: a re-exec loop would never end.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(90)).is_err() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    });
    let mut out = String::new();
    let mut err = String::new();
    use std::io::Read;
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let h = std::thread::spawn(move || {
        let mut e = String::new();
        let _ = se.read_to_string(&mut e);
        e
    });
    let _ = so.read_to_string(&mut out);
    err.push_str(&h.join().unwrap());
    let status = child.wait().unwrap();
    let _ = tx.send(());
    (status.code(), out, err, t.elapsed())
}

fn tree(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    fn walk(base: &Path, d: &Path, out: &mut Vec<(String, u64)>) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    out.push((rel, e.metadata().map(|m| m.len()).unwrap_or(0)));
                }
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn hostile19_cli_check_json_stdout_is_pure_and_errors_are_bounded() {
    let w = World::new("");
    let (code, out, err, _) = cli(&w, &["check", "--json"], None);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("check --json stdout is not one JSON document ({e}):\n{out}"));
    assert!(v.to_string().contains(&w.url), "{v}");
    let (code, out, err, _) = cli(&w, &["check"], None);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        !out.contains("no position yet"),
        "check (with the primary's heartbeat) prints \"no position yet\" for the pool:\n{out}"
    );
    let (code, out, err, _) = cli(&w, &["stats", "--json"], None);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["pools"]["jobs.readers"]["replica"]["url"], w.url.as_str());
    // Started with a different URL: exit 2, the message names the variable, no loop.
    let (code, out, err, t) = cli(&w, &["check"], Some("file:///tmp/h19-elsewhere/jobs"));
    assert!(t < Duration::from_secs(60), "check took {t:?}");
    assert_eq!(code, Some(2), "{out}\n{err}");
    assert!(err.contains(VAR), "{err}");
    // Started with an empty variable: the same.
    let (code, out, err, t) = cli(&w, &["stats", "--json"], Some(""));
    assert!(t < Duration::from_secs(60), "stats took {t:?}");
    assert_eq!(code, Some(2), "{out}\n{err}");
    assert!(out.is_empty(), "stdout of a failed stats --json: {out}");
}

#[test]
fn hostile19_cli_check_with_a_missing_vfs_exits_2_naming_the_key() {
    let w = World::new("");
    std::fs::write(
        w.machine.join("config/default.toml"),
        replica_toml(Path::new("/nonexistent/h19/litestream-vfs.so"), &w.url, ""),
    )
    .unwrap();
    let (code, out, err, t) = cli(&w, &["check"], None);
    assert!(t < Duration::from_secs(60));
    assert_eq!(code, Some(2), "{out}\n{err}");
    let both = format!("{out}{err}");
    assert!(
        both.contains("/nonexistent/h19/litestream-vfs.so") && both.contains("litestream.vfs"),
        "the output does not name the VFS file and key:\nstdout: {out}\nstderr: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn hostile19_cli_workload_bench_demo_data_never_write_for_a_replica() {
    let w = World::new("");
    // Litestream keeps writing the replica; stop it so that the storage must stay still.
    let _ = Command::new("kill")
        .args(["-TERM", &w.ls.id().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(500));
    let storage = tree(&w.replica);
    let machine = tree(&w.machine);
    let mut outs = Vec::new();
    for args in [
        &["stats", "--workload", "1"][..],
        &["bench", "--seconds", "0.5", "--builtin"][..],
        &["bench", "--seconds", "0.5"][..],
        &["demo-data"][..],
    ] {
        let (code, out, err, t) = cli(&w, args, None);
        assert!(t < Duration::from_secs(80), "{args:?} took {t:?}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            matches!(code, Some(0) | Some(2)),
            "{args:?}: exit {code:?}\n{out}\n{err}"
        );
        if code == Some(2) {
            assert!(!err.trim().is_empty(), "{args:?}: exit 2 without a message");
        }
        outs.push(format!("{args:?} -> {code:?}\n{out}\n{err}"));
        assert_eq!(
            tree(&w.replica),
            storage,
            "{args:?} changed the replica storage"
        );
        let now: Vec<_> = tree(&w.machine)
            .into_iter()
            .filter(|(n, _)| n != "vfs.log")
            .collect();
        let was: Vec<_> = machine
            .iter()
            .filter(|(n, _)| n != "vfs.log")
            .cloned()
            .collect();
        assert_eq!(now, was, "{args:?} wrote files on the replica machine");
    }
    // Nothing named like the URL anywhere under the machine or the fixture.
    assert!(!w.machine.join("file:").exists());
    let _ = outs;
}

fn spawn_open(w: &World, envs: &[(&str, &std::ffi::OsStr)]) -> (HashMap<String, String>, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "hostile19::hostile19_child_helper",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .current_dir(&w.machine)
    .env("H19_CONFIG", w.machine.join("config"))
    .env("H19_SCENARIO", "open")
    .env(VAR, &w.url)
    .env("LITESTREAM_LOG_FILE", w.machine.join("vfs.log"))
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    Kid::spawn(cmd).finish(Duration::from_secs(90))
}

#[test]
fn hostile19_non_utf8_bytes_in_the_environment() {
    use std::os::unix::ffi::OsStrExt;
    let w = World::new("");
    // An unrelated variable holding bytes that are not UTF-8: the replica still opens.
    let (r, all) = spawn_open(
        &w,
        &[("H19_JUNK", std::ffi::OsStr::from_bytes(b"\xff\xfe\x80"))],
    );
    assert_eq!(
        r["open"], "ok ",
        "an unrelated non-UTF-8 variable broke the replica: {all}"
    );
    assert_eq!(r["count"], format!("ok {ROWS}"), "{all}");
    // The URL variable itself not UTF-8: refused, naming the variable, no panic.
    let (r, all) = spawn_open(
        &w,
        &[(VAR, std::ffi::OsStr::from_bytes(b"file:///tmp/\xff/jobs"))],
    );
    assert!(!all.contains("panicked"), "{all}");
    assert!(
        r["open"].starts_with("err") && r["open"].contains(VAR),
        "{all}"
    );
    // The command line with the unrelated variable: check still works (its re-exec passes it on).
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_litepool"));
    let o = cmd
        .args(["check", "--json", "--config"])
        .arg(w.machine.join("config"))
        .current_dir(&w.machine)
        .env_remove(VAR)
        .env("H19_JUNK", std::ffi::OsStr::from_bytes(b"\xff\xfe\x80"))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap();
}

#[test]
fn hostile19_corrupt_replica_storage_is_an_error_not_wrong_rows() {
    let w = World::new("");
    let _ = Command::new("kill")
        .args(["-TERM", &w.ls.id().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(500));
    // Damage every LTX file past its header, keeping its length.
    let mut damaged = 0;
    for (rel, len) in tree(&w.replica) {
        if rel.ends_with(".ltx") && len > 200 {
            let p = w.replica.join(&rel);
            let mut bytes = std::fs::read(&p).unwrap();
            for b in bytes[100..].iter_mut() {
                *b ^= 0x5a;
            }
            std::fs::write(&p, bytes).unwrap();
            damaged += 1;
        }
    }
    assert!(damaged > 0);
    let t = Instant::now();
    let (r, all) = spawn_open(&w, &[]);
    assert!(t.elapsed() < Duration::from_secs(60), "{all}");
    assert!(!all.contains("panicked"), "{all}");
    if r["open"].starts_with("ok") {
        // Opened: it must not serve made-up rows, and the statistics must say something is wrong.
        assert!(
            r["count"] == format!("ok {ROWS}") || r["count"].starts_with("err"),
            "corrupt replica served {}: {all}",
            r["count"]
        );
        assert!(
            r["count"].starts_with("err") || field(&r["stats"], "errors") != "0",
            "a corrupt replica reads and reports no error: {all}"
        );
    } else {
        assert!(
            r["open"].contains(&w.url),
            "the error does not name the replica: {all}"
        );
    }
}

#[test]
fn hostile19_without_a_heartbeat_staleness_is_unknown_not_zero() {
    let w = World::with_primary("", &PRIMARY.replace("heartbeat = \"100ms\"\n", ""));
    let (r, all) = spawn_open(&w, &[]);
    assert_eq!(r["count"], format!("ok {ROWS}"), "{all}");
    let st = &r["stats"];
    assert_eq!(field(st, "staleness_ms"), "None", "{all}");
    assert_eq!(
        field(st, "errors"),
        "0",
        "no heartbeat table is not a sample error: {all}"
    );
    assert!(field(st, "txid").starts_with("Some("), "{all}");
    let (code, out, err, _) = cli(&w, &["check"], None);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let line = out
        .lines()
        .find(|l| l.contains("replication: read replica file://"))
        .unwrap_or_else(|| panic!("no position line: {out}"));
    assert!(
        line.contains("unknown"),
        "staleness not said to be unknown: {line}\n{out}"
    );
    // The pool's statistics in the same report agree: the pools sample once when built.
    assert!(
        !(line.contains("txid 0") && out.contains("no position yet")),
        "check says both a txid and \"no position yet\":\n{out}"
    );
    let (code, out, err, _) = cli(&w, &["stats", "--json"], None);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["pools"]["jobs.readers"]["replica"]["staleness_seconds"].is_null(),
        "{v}"
    );
}

#[test]
fn hostile19_vfs_from_a_variable_layer_and_unset() {
    let url = "file:///srv/replica/jobs";
    let text = replica_toml(Path::new("/x"), url, "").replace("[litestream]\nvfs = \"/x\"\n", "");
    assert!(!text.contains("[litestream]"));
    let s = load_with(
        &text,
        vars(&[("LITEPOOL__LITESTREAM__VFS", "/opt/h19/litestream-vfs.so")]),
    )
    .unwrap();
    assert_eq!(
        s.litestream_vfs.as_deref(),
        Some(Path::new("/opt/h19/litestream-vfs.so"))
    );
    // Unset: a replica cannot open; refused before anything is loaded, naming the key.
    match load_text(&text) {
        Err(e) => assert!(e.to_string().contains("litestream.vfs"), "{e}"),
        Ok(s) => {
            let e = Pools::new(&s).expect_err("a replica without litestream.vfs opened");
            assert!(matches!(e, Error::ReplicaSetup { .. }), "{e:?}");
            assert!(e.to_string().contains("litestream.vfs"), "{e}");
        }
    }
    // An empty value is not a file.
    match load_with(&text, vars(&[("LITEPOOL__LITESTREAM__VFS", "")])) {
        Err(e) => assert!(e.to_string().contains("LITEPOOL__LITESTREAM__VFS"), "{e}"),
        Ok(s) => panic!("litestream.vfs = \"\" accepted as {:?}", s.litestream_vfs),
    }
}

#[test]
fn hostile19_a_read_transaction_left_open_does_not_freeze_the_next_borrower() {
    let w = World::new("");
    let mut kid = w.child("open_txn", None);
    kid.wait_for("ready", Duration::from_secs(60));
    w.primary
        .as_ref()
        .unwrap()
        .write("jobs", |c| {
            c.execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 10)
                 INSERT INTO t SELECT 1000 + i, 'late' FROM n;",
            )
        })
        .unwrap();
    // Litestream's 100 ms sync + the VFS's 1 s poll, with room.
    std::thread::sleep(Duration::from_secs(4));
    kid.say("go\n");
    let (r, all) = kid.finish(Duration::from_secs(60));
    for i in 0..2 {
        assert_eq!(
            r[&format!("count{i}")],
            format!("ok {}", ROWS + 10),
            "a connection returned inside BEGIN serves an old snapshot to the next borrower: {all}"
        );
        assert_eq!(r[&format!("autocommit{i}")], "ok true", "{all}");
    }
}
