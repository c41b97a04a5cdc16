//! Issue 5: writer/readers split under concurrent writers, crash safety, file safety, the lint.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use litepool::check::check;
use litepool::lint::Level;
use litepool::{Error, Pools};

use crate::common::*;

/// A split database with the shipped `recommended` profile (see [`split`]).
const SPLIT_DB: &str = r#"
[databases.jobs]
path = "{data}/jobs.db"
profile = "recommended"

[databases.jobs.pool]
connection_timeout = "30s"

[databases.jobs.writer]

[databases.jobs.readers]
max_size = 4
"#;

/// The shipped profiles and [`SPLIT_DB`].
fn split() -> String {
    shipped_profiles() + SPLIT_DB
}

fn setup_table(pools: &Pools) {
    pools
        .writer("jobs")
        .unwrap()
        .execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, thread INTEGER, v INTEGER)")
        .unwrap();
}

#[test]
fn split_database_gives_a_writer_and_read_only_readers() {
    let f = Fixture::new(&split());
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    setup_table(&pools);
    let e = pools.get("jobs").unwrap_err();
    assert!(matches!(e, Error::SplitDatabase { .. }));
    assert_eq!(
        e.to_string(),
        "database \"jobs\" is split into a writer and readers: use pools.writer(\"jobs\") or pools.reader(\"jobs\")"
    );
    let reader = pools.reader("jobs").unwrap();
    let err = reader
        .execute("INSERT INTO t(thread, v) VALUES (0, 1)", [])
        .unwrap_err();
    assert_eq!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::ReadOnly));
    assert_eq!(err.to_string(), "attempt to write a readonly database");
    let qo: i64 = reader
        .query_row("PRAGMA query_only", [], |r| r.get(0))
        .unwrap();
    assert_eq!(qo, 1);
    drop(reader);
    let stats = pools.stats();
    assert_eq!(stats.0["jobs.writer"].max_size, 1);
    assert_eq!(stats.0["jobs.readers"].max_size, 4);
    assert_eq!(pools.names().collect::<Vec<_>>(), ["jobs"]);
    // The writer begins IMMEDIATE: holding a transaction, even before writing, locks writers out.
    let mut w = pools.writer("jobs").unwrap();
    let tx = w.transaction().unwrap();
    let other = rusqlite::Connection::open(f.path("data/jobs.db")).unwrap();
    other.busy_timeout(Duration::ZERO).unwrap();
    let e = other.execute_batch("BEGIN IMMEDIATE").unwrap_err();
    assert_eq!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy)
    );
    tx.rollback().unwrap();
}

/// 8 threads x 500 transactions that read, then write: the pattern that upgrades a deferred
/// transaction. Returns (committed, busy failures).
fn hammer(write: &(dyn Fn(u64, u64) -> Result<(), String> + Sync)) -> (u64, u64) {
    let (ok, busy) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (ok, busy) = (&ok, &busy);
            s.spawn(move || {
                for i in 0..500u64 {
                    match write(t, i) {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) if e.contains("database is locked") => {
                            busy.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(e) => panic!("{e}"),
                    };
                }
            });
        }
    });
    (ok.into_inner(), busy.into_inner())
}

fn read_then_write(conn: &mut rusqlite::Connection, t: u64, i: u64) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let n: i64 = tx.query_row(
        "SELECT count(*) FROM t WHERE thread = ?1",
        [t as i64],
        |r| r.get(0),
    )?;
    assert_eq!(n as u64, i, "each thread sees its own earlier commits");
    tx.execute(
        "INSERT INTO t(thread, v) VALUES (?1, ?2)",
        [t as i64, i as i64],
    )?;
    tx.commit()
}

#[test]
fn four_thousand_read_then_write_transactions_through_the_split_never_see_busy() {
    let f = Fixture::new(&split());
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    setup_table(&pools);
    let (ok, busy) = hammer(&|t, i| {
        let mut w = pools.writer("jobs").map_err(|e| e.to_string())?;
        read_then_write(&mut w, t, i).map_err(|e| e.to_string())
    });
    assert_eq!((ok, busy), (4000, 0));
    let (n, sum): (i64, i64) = pools
        .reader("jobs")
        .unwrap()
        .query_row("SELECT count(*), sum(v) FROM t", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((n, sum), (4000, 8 * (0..500).sum::<i64>()));
    assert_eq!(
        pools.stats_for("jobs.writer").unwrap().checkouts,
        4000 + 1,
        "the table, then 4000"
    );
}

#[test]
fn the_same_through_one_deferred_pool_without_busy_timeout_fails() {
    let f = Fixture::new(
        "[databases.jobs]\npath = \"{data}/jobs.db\"\n[databases.jobs.pragmas]\njournal_mode = \"wal\"\nbusy_timeout = \"0ms\"\n\
         [databases.jobs.pool]\nmax_size = 8\nconnection_timeout = \"30s\"\n",
    );
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    pools
        .get("jobs")
        .unwrap()
        .execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, thread INTEGER, v INTEGER)")
        .unwrap();
    let (ok, busy) = hammer(&|t, i| {
        let mut c = pools.get("jobs").map_err(|e| e.to_string())?;
        let done: i64 = c
            .query_row(
                "SELECT count(*) FROM t WHERE thread = ?1",
                [t as i64],
                |r| r.get(0),
            )
            .unwrap();
        let _ = i;
        read_then_write(&mut c, t, done as u64).map_err(|e| e.to_string())
    });
    assert!(
        busy > 0,
        "deferred read-then-write with no busy timeout must meet SQLITE_BUSY"
    );
    assert_eq!(ok + busy, 4000);
    assert!(ok < 4000);
}

/// Not a test: the child process of `committed_rows_survive_sigkill`, which runs it with
/// `--ignored`. It writes rows until it is killed.
#[test]
#[ignore = "helper: the child process of committed_rows_survive_sigkill"]
fn crash_child_helper() {
    let dir = std::env::var("LITEPOOL_CRASH_CHILD").expect("run by committed_rows_survive_sigkill");
    let settings = litepool::Settings::loader()
        .dir(dir)
        .vars(Default::default())
        .load()
        .unwrap();
    let pools = Pools::new(&settings).unwrap();
    let mut w = pools.writer("jobs").unwrap();
    w.execute_batch(
        "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, thread INTEGER, v INTEGER)",
    )
    .unwrap();
    for i in 0.. {
        let tx = w.transaction().unwrap();
        tx.execute("INSERT INTO t(id, thread, v) VALUES (?1, 0, ?1)", [i])
            .unwrap();
        tx.commit().unwrap();
        println!("committed {i}");
    }
}

#[test]
fn committed_rows_survive_sigkill() {
    let f = Fixture::new(&split());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "safety::crash_child_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LITEPOOL_CRASH_CHILD", f.path("config"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut last = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("committed ") {
            last = Some(n.parse::<i64>().unwrap());
            if last == Some(300) {
                child.kill().unwrap(); // SIGKILL, mid-stream
                break;
            }
        }
    }
    child.wait().unwrap();
    let last = last.expect("the child reported commits");
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    let r = pools.reader("jobs").unwrap();
    let check: String = r
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let (n, max): (i64, i64) = r
        .query_row("SELECT count(*), max(id) FROM t", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(
        max >= last,
        "every reported commit is there: max {max}, last reported {last}"
    );
    assert_eq!(n, max + 1, "ids 0..=max, none missing");
}

#[test]
fn new_database_files_are_created_0600_with_their_wal() {
    let f = Fixture::new(&split());
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    setup_table(&pools);
    for name in ["jobs.db", "jobs.db-wal", "jobs.db-shm"] {
        let mode = std::fs::metadata(f.path("data").join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
    let f = Fixture::new(&split().replace(
        "profile = \"recommended\"",
        "profile = \"recommended\"\nfile_mode = \"0640\"",
    ));
    drop(Pools::new(&f.load().unwrap()).unwrap());
    let mode = std::fs::metadata(f.path("data/jobs.db"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);
}

#[test]
fn optimize_runs_periodically_on_the_writer_only() {
    let f = Fixture::new(&split().replace(
        "[databases.jobs.writer]",
        "[databases.jobs.writer]\noptimize_interval = \"50ms\"",
    ));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    setup_table(&pools);
    // Poll: the deadline only bounds a failing run; the count decides.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut runs = 0;
    while runs < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        runs = pools.stats_for("jobs.writer").unwrap().optimize_runs;
    }
    assert!(runs >= 2, "{runs}");
    assert_eq!(pools.stats_for("jobs.readers").unwrap().optimize_runs, 0);
}

#[test]
fn optimize_on_open_analyzes_on_the_writer_before_query_only() {
    let with_optimize = split().replace(
        "profile = \"recommended\"",
        "profile = \"recommended\"\n[databases.jobs.pragmas]\noptimize_on_open = true",
    );
    let f = Fixture::new(&with_optimize);
    let stats = |pools: &Pools| -> i64 {
        pools
            .reader("jobs")
            .unwrap()
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    {
        let pools = Pools::new(&f.load().unwrap()).unwrap();
        pools
            .writer("jobs")
            .unwrap()
            .execute_batch(
                "CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER);
                 CREATE INDEX t_k ON t(k);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
                 INSERT INTO t(k) SELECT i % 7 FROM n;",
            )
            .unwrap();
        assert_eq!(stats(&pools), 0, "nothing analyzed the table yet");
    }
    // Reopened: the writer's new connection runs PRAGMA optimize as it opens, which analyzes
    // the never-analyzed indexed table; the readers (read-only) skip it and still open.
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    assert_eq!(stats(&pools), 1);
    let rows: i64 = pools
        .reader("jobs")
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 't'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(rows >= 1, "{rows}");
}

fn codes(toml: &str, durability_strict: bool) -> Vec<(&'static str, Level)> {
    let f = Fixture::new(toml);
    let settings = f.load().unwrap();
    let files = litepool::pools::preflight(&settings).unwrap();
    let budget = litepool::budget::Budget::new(&settings, &files);
    let _ = durability_strict;
    litepool::lint::lint_with(&settings, &budget, &|_| Some("NFS"))
        .into_iter()
        .map(|f| (f.code, f.level))
        .collect()
}

#[test]
fn the_lint_names_each_unsafe_setting() {
    let unsafe_profile = "allow_unsafe = true\nsynchronous = \"off\"\njournal_mode = \"memory\"\nmmap_size = \"64MiB\"\nbusy_timeout = \"0ms\"";
    let found = codes(&one_db(unsafe_profile, "max_size = 4"), false);
    for code in [
        "synchronous-off",
        "journal-unsafe",
        "mmap",
        "no-busy-timeout",
    ] {
        assert!(found.iter().any(|(c, _)| *c == code), "{code} in {found:?}");
    }
    assert!(found.contains(&("mmap", Level::Notice)));
    let wal = codes(&one_db("journal_mode = \"wal\"", "max_size = 1"), false);
    assert_eq!(wal, [("wal-network-fs", Level::Warning)]);
    let strict = codes(
        "[databases.audit]\npath = \"{data}/a.db\"\ndurability = \"strict\"\n[databases.audit.pragmas]\nsynchronous = \"normal\"\n",
        true,
    );
    assert_eq!(strict, [("strict-durability", Level::Warning)]);
    let budget = codes(
        &(one_db("cache_size = \"64MiB\"", "max_size = 4")
            + "[limits]\nmemory_budget = \"100MiB\"\n"),
        false,
    );
    assert_eq!(budget, [("over-budget", Level::Warning)]);
    // Background checkpoints need a WAL; with journal_mode unset (the file's) or wal they apply.
    let delete = "[profiles.p]\njournal_mode = \"delete\"\n[databases.main]\npath = \"{data}/main.db\"\nprofile = \"p\"\ncheckpoint = \"background\"\n";
    assert_eq!(
        codes(delete, false),
        [("checkpoint-needs-wal", Level::Warning)]
    );
    let settings = Fixture::new(delete).load().unwrap();
    let db = &settings.databases["main"];
    assert!(!db.background_checkpoints());
    assert!(
        db.pools()
            .iter()
            .all(|p| !p.profile.name().contains("background")),
        "the profile is not labelled with checkpoints that do not run"
    );
    let wal = delete.replace("\"delete\"", "\"wal\"");
    assert!(Fixture::new(&wal).load().unwrap().databases["main"].background_checkpoints());
    // The shipped configuration has notices (mmap) but no warnings.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let settings = litepool::Settings::loader()
        .dir(dir)
        .vars(Default::default())
        .load()
        .unwrap();
    let budget = litepool::budget::Budget::new(&settings, &[litepool::file::FileState::Missing; 3]);
    let shipped = litepool::lint::lint_with(&settings, &budget, &|_| None);
    assert!(
        shipped.iter().all(|f| f.level == Level::Notice),
        "{shipped:?}"
    );
}

#[test]
fn check_strict_fails_on_a_lint_warning() {
    let f = Fixture::new(&one_db(
        "allow_unsafe = true\nsynchronous = \"off\"",
        "max_size = 1",
    ));
    let settings = f.load().unwrap();
    let report = check(&settings, &mut |_| {}).unwrap();
    assert!(report.verified);
    assert_eq!((report.exit_code(false), report.exit_code(true)), (0, 1));
    assert!(crate::render::Text(&report)
        .to_string()
        .contains("warning [synchronous-off] main: synchronous = off"));
}

#[test]
fn background_checkpoints_without_a_journal_mode_start_only_on_a_wal_file() {
    let toml = "[profiles.p]\nforeign_keys = true\n[databases.main]\npath = \"{data}/main.db\"\nprofile = \"p\"\ncheckpoint = \"background\"\n";
    // The lint cannot know the file's mode: nothing is reported before it is opened.
    assert!(!codes(toml, false)
        .iter()
        .any(|(c, _)| *c == "checkpoint-needs-wal"));
    // A rollback-journal file: nothing to checkpoint, no checkpointer, no statistics that look
    // like one ran.
    let f = Fixture::new(toml);
    let db = f.path("data/main.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA journal_mode = delete; CREATE TABLE t(x)")
        .unwrap();
    let pools = litepool::Pools::new(&f.load().unwrap()).unwrap();
    assert_eq!(pools.handle("main").unwrap().checkpoint_stats(), None);
    drop(pools);
    // The same file in WAL mode: the checkpointer runs.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA journal_mode = wal")
        .unwrap();
    let pools = litepool::Pools::new(&f.load().unwrap()).unwrap();
    assert!(pools.handle("main").unwrap().checkpoint_stats().is_some());
}

#[test]
fn a_file_locked_by_another_connection_is_named_once_and_left_alone() {
    let f = Fixture::new(
        "[profiles.p]\nbusy_timeout = \"100ms\"\n[databases.main]\npath = \"{data}/main.db\"\nprofile = \"p\"\n",
    );
    let db = f.path("data/main.db");
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder
        .execute_batch("PRAGMA journal_mode = delete; CREATE TABLE t(x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)")
        .unwrap();
    let e = litepool::Pools::new(&f.load().unwrap()).unwrap_err();
    assert!(matches!(e, litepool::Error::Locked { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "database \"main\": {} is locked by another connection: PRAGMA quick_check waited",
            db.display()
        )),
        "{text}"
    );
    assert_eq!(text.matches("locked").count(), 1, "said once: {text}");
    assert!(text.contains("nothing was changed"), "{text}");
    // The holder's transaction was not disturbed.
    holder.execute_batch("COMMIT").unwrap();
    let n: i64 = holder
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    drop(holder);
    assert!(litepool::Pools::new(&f.load().unwrap()).is_ok());
}
