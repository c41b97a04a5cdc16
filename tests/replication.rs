//! Replication with the real Litestream binary (v0.3.13): litepool's writer commits numbered rows
//! from several threads while `litestream replicate` runs with the configuration
//! `litepool litestream` generated; the writer is SIGKILLed at a random moment; after
//! Litestream has synced, `litestream restore` must give an intact database with every row whose
//! commit was acknowledged.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use litepool::Pools;

use crate::common::*;

/// The npm package that carries Litestream v0.3.13's Linux binary.
const PACKAGE: &str = "@flydotio/litestream-linux-x64@1.0.1";

/// The Litestream binary: `$LITESTREAM`, else `litestream` on PATH, else the copy under
/// `.tools/` (git-ignored), which is installed from npm when it is missing, so that `cargo test`
/// alone runs this test on a fresh machine. Without npm the test fails and says how to install
/// the binary; it never passes without running it.
pub(crate) fn litestream() -> PathBuf {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if let Some(p) = std::env::var_os("LITESTREAM") {
        return p.into();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let local = root.join(".tools/node_modules/@flydotio/litestream-linux-x64/litestream");
    let find = || {
        std::env::var_os("PATH")
            .map(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("litestream"))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .chain([local.clone()])
            .find(|p| p.is_file())
    };
    let _once = INSTALL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(found) = find() {
        return found;
    }
    let npm = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            ".tools",
            PACKAGE,
        ])
        .current_dir(root)
        .output();
    find().unwrap_or_else(|| {
        panic!(
            "this test needs the real Litestream binary (v0.3.13) and could not install it \
             ({npm:?}). Install it with `npm install --prefix .tools {PACKAGE}` from the project \
             root (as .ci/run does), put `litestream` on PATH, or set \
             LITESTREAM=/path/to/litestream"
        )
    })
}

const CONFIG: &str = r#"
[databases.jobs]
path = "{data}/jobs.db"
profile = "recommended"
replication = "litestream"
[databases.jobs.writer]
[databases.jobs.readers]
max_size = 2
"#;

/// Not a test: the writer process of `acknowledged_rows_survive_a_killed_writer`. Four threads
/// insert numbered rows through the writer and print `acked <id>` after each commit.
#[test]
#[ignore = "helper: the child process of the replication tests"]
fn replication_writer_helper() {
    let pools = Pools::new(&child_settings("LITEPOOL_REPL_CHILD")).unwrap();
    let jobs = pools.handle("jobs").unwrap();
    std::thread::scope(|s| {
        for t in 0..4i64 {
            let jobs = jobs.clone();
            s.spawn(move || {
                for i in 0.. {
                    let id = t * 1_000_000_000 + i;
                    let mut w = jobs.writer().unwrap();
                    let tx = w.transaction().unwrap();
                    tx.execute("INSERT INTO t(id, v) VALUES (?1, randomblob(64))", [id])
                        .unwrap();
                    tx.commit().unwrap();
                    drop(w);
                    println!("acked {id}");
                }
            });
        }
    });
}

fn spawn_litestream(bin: &Path, config: &Path, log: &Path) -> std::process::Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(bin)
        .args(["replicate", "-config"])
        .arg(config)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

pub(crate) fn stop(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

fn run(restart_litestream: bool) {
    let bin = litestream();
    let f = Fixture::new(&(shipped_profiles() + CONFIG));
    // The table, created through litepool (which switches the file to WAL).
    {
        let pools = Pools::new(&f.load().unwrap()).unwrap();
        pools
            .writer("jobs")
            .unwrap()
            .execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
            .unwrap();
    }
    // The configuration, from `litepool litestream`, and Litestream's own check of it.
    let replica = f.path("replica");
    let out = Command::new(env!("CARGO_BIN_EXE_litepool"))
        .args([
            "litestream",
            "--replica",
            replica.to_str().unwrap(),
            "--sync-interval",
            "100ms",
        ])
        .current_dir(f.dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = f.path("litestream.yml");
    std::fs::write(&config, &out.stdout).unwrap();
    let listed = Command::new(&bin)
        .args(["databases", "-config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let db = std::fs::canonicalize(f.path("data/jobs.db")).unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains(db.to_str().unwrap()));

    let mut ls = spawn_litestream(&bin, &config, &f.path("litestream.log"));
    let mut writer = Child::spawn(
        "replication::replication_writer_helper",
        "LITEPOOL_REPL_CHILD",
        &f.path("config"),
    );
    // A random moment: between 500 and 3000 acknowledged commits.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as usize;
    let kill_at = 500 + seed % 2500;
    if restart_litestream {
        writer.read_until(kill_at / 2);
        stop(&mut ls); // Litestream down while the writer goes on
        writer.read_until(kill_at * 3 / 4);
        ls = spawn_litestream(&bin, &config, &f.path("litestream-2.log"));
    }
    writer.read_until(kill_at);
    let acked = writer.kill(); // SIGKILL, mid-stream
    let acked: HashSet<i64> = acked.into_iter().collect();

    // Restore until the replica holds every acknowledged row (Litestream syncs every 100ms; the
    // deadline only bounds a failing run).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut attempt = 0;
    let (restored, check) = loop {
        attempt += 1;
        let out_db = f.path(&format!("restored-{attempt}.db"));
        let status = Command::new(&bin)
            .args(["restore", "-config"])
            .arg(&config)
            .arg("-o")
            .arg(&out_db)
            .arg(&db)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        if status.success() {
            let conn = rusqlite::Connection::open(&out_db).unwrap();
            let check: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            let ids: HashSet<i64> = conn
                .prepare("SELECT id FROM t")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            if acked.is_subset(&ids) || Instant::now() > deadline {
                break (ids, check);
            }
        } else if Instant::now() > deadline {
            panic!(
                "litestream restore failed until the deadline; see {}",
                f.path("litestream.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    stop(&mut ls);
    assert_eq!(check, "ok");
    let missing: Vec<_> = acked.difference(&restored).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged rows missing from the restore (e.g. {missing:?}); killed after {kill_at}",
        acked.difference(&restored).count(),
        acked.len()
    );
    eprintln!(
        "replication (restart: {restart_litestream}): {} rows acknowledged, {} restored, killed after {kill_at}",
        acked.len(),
        restored.len()
    );
}

#[test]
fn acknowledged_rows_survive_a_killed_writer() {
    run(false);
}

#[test]
fn acknowledged_rows_survive_a_killed_writer_and_a_litestream_restart() {
    run(true);
}

fn lint_codes(
    profile: &str,
    replication: &str,
    split: bool,
) -> Vec<(String, litepool::lint::Level)> {
    let f = Fixture::new(&format!(
        "[profiles.p]\n{profile}\n[databases.jobs]\npath = \"{{data}}/jobs.db\"\nprofile = \"p\"\nreplication = \"{replication}\"\n{}",
        if split { "[databases.jobs.writer]\n[databases.jobs.readers]\n" } else { "" }
    ));
    let settings = f.load().unwrap();
    let files = litepool::pools::preflight(&settings).unwrap();
    let budget = litepool::budget::Budget::new(&settings, &files);
    litepool::lint::lint_with(&settings, &budget, &|_| Some("FUSE"))
        .into_iter()
        .map(|f| (f.code.to_owned(), f.level))
        .collect()
}

#[test]
fn the_lint_checks_what_each_replication_needs() {
    use litepool::lint::Level::{Error, Notice, Warning};
    let has = |v: &[(String, litepool::lint::Level)], code: &str, level| {
        v.iter().any(|(c, l)| c == code && *l == level)
    };
    let fits = lint_codes(
        "busy_timeout = \"5s\"\njournal_mode = \"wal\"\nwal_autocheckpoint = 0",
        "litestream",
        false,
    );
    assert!(
        fits.iter().all(|(c, _)| !c.starts_with("replication")),
        "{fits:?}"
    );
    let busy = lint_codes(
        "busy_timeout = \"0ms\"\njournal_mode = \"wal\"",
        "litestream",
        false,
    );
    assert!(has(&busy, "replication-busy-timeout", Warning), "{busy:?}");
    assert!(has(&busy, "replication-checkpoint", Notice), "{busy:?}");
    let exclusive = lint_codes(
        "allow_unsafe = true\nlocking_mode = \"exclusive\"\njournal_mode = \"wal\"",
        "litestream",
        false,
    );
    assert!(
        has(&exclusive, "replication-locking", Error),
        "{exclusive:?}"
    );
    let delete = lint_codes("journal_mode = \"delete\"", "litestream", false);
    assert!(has(&delete, "replication-wal", Error), "{delete:?}");
    // The same settings without replication: none of these.
    let plain = lint_codes(
        "busy_timeout = \"0ms\"\njournal_mode = \"delete\"",
        "none",
        false,
    );
    assert!(
        plain.iter().all(|(c, _)| !c.starts_with("replication")),
        "{plain:?}"
    );
    // LiteFS: a FUSE mount is what it is, not a network file system; a split is needed.
    let litefs = lint_codes("journal_mode = \"wal\"", "litefs", false);
    assert!(
        !litefs.iter().any(|(c, _)| c == "wal-network-fs"),
        "{litefs:?}"
    );
    assert!(has(&litefs, "litefs-split", Warning), "{litefs:?}");
    let fuse = lint_codes("journal_mode = \"wal\"", "none", false);
    assert!(fuse.iter().any(|(c, _)| c == "wal-network-fs"), "{fuse:?}");
}

#[test]
fn check_fails_a_replicated_database_whose_settings_do_not_fit() {
    for (profile, code) in [
        (
            "busy_timeout = \"0ms\"\njournal_mode = \"wal\"",
            "warning replication-busy-timeout",
        ),
        (
            "allow_unsafe = true\nlocking_mode = \"exclusive\"\njournal_mode = \"wal\"",
            "error replication-locking",
        ),
    ] {
        let f = Fixture::new(&format!(
            "[profiles.p]\n{profile}\n[databases.jobs]\npath = \"{{data}}/jobs.db\"\nprofile = \"p\"\nreplication = \"litestream\"\n[databases.jobs.pool]\nmax_size = 1\n"
        ));
        let out = Command::new(env!("CARGO_BIN_EXE_litepool"))
            .args(["check", "--strict"])
            .current_dir(f.dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(
            text.contains(&format!(
                "replication: litestream: settings do not fit ({code})"
            )),
            "{text}"
        );
    }
}

#[test]
fn litestream_command_refuses_what_it_cannot_write() {
    let f = Fixture::new(&one_db("journal_mode = \"wal\"", "max_size = 1"));
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_litepool"))
            .args(args)
            .current_dir(f.dir.path())
            .output()
            .unwrap()
    };
    let none = run(&["litestream", "--replica", "/backups"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr)
        .contains("no database has replication = \"litestream\""));
    for (replica, says) in [
        ("ftp://host/x", "a scheme Litestream knows"),
        (
            "s3://bucket/a b",
            "cannot hold spaces or control characters",
        ),
        (
            "s3://bucket/a\nb",
            "cannot hold spaces or control characters",
        ),
        ("", "expected a directory or a URL"),
    ] {
        let out = run(&["litestream", "--replica", replica]);
        assert_eq!(out.status.code(), Some(2), "{replica:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{replica:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = run(&["litestream", "--replica", "/b", "--sync-interval", "0s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("10ms..=1h"));
    let out = run(&[
        "litestream",
        "--replica",
        "/b",
        "--sync-interval",
        "10500us",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a whole number of milliseconds"));
}

#[test]
fn a_litefs_replica_opens_readers_and_no_writer() {
    let toml = format!(
        "{}\n[databases.jobs]\npath = \"{{data}}/jobs.db\"\nprofile = \"recommended\"\nreplication = \"litefs\"\n[databases.jobs.writer]\n[databases.jobs.readers]\nmax_size = 2\n",
        shipped_profiles()
    );
    let f = Fixture::new(&toml);
    // On the primary (no .primary file): both.
    {
        let pools = Pools::new(&f.load().unwrap()).unwrap();
        pools
            .writer("jobs")
            .unwrap()
            .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    // LiteFS writes .primary (the primary's host name) in its mount directory on replicas only.
    std::fs::write(f.path("data/.primary"), "primary-host\n").unwrap();
    let hash = sha256(&f.path("data/jobs.db"));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    let e = pools.writer("jobs").unwrap_err();
    assert!(
        matches!(&e, litepool::Error::NotPrimary { primary, .. } if primary == "primary-host"),
        "{e:?}"
    );
    let n: i64 = pools
        .reader("jobs")
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    drop(pools);
    assert_eq!(
        sha256(&f.path("data/jobs.db")),
        hash,
        "a replica writes nothing"
    );
    // A database that is not split cannot open on a replica, and says why.
    let g = Fixture::new(&format!(
        "[databases.jobs]\npath = \"{}/jobs.db\"\nreplication = \"litefs\"\n",
        f.data()
    ));
    let e = Pools::new(&g.load().unwrap()).unwrap_err().to_string();
    assert!(
        e.contains("LiteFS replica (the primary is primary-host)"),
        "{e}"
    );
    // check reports the writer as not opened here, and passes.
    let out = Command::new(env!("CARGO_BIN_EXE_litepool"))
        .arg("check")
        .current_dir(f.dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("this node is a replica (the primary is primary-host)"),
        "{text}"
    );
}
