//! Issue "nothing silent, nothing lost": each behaviour a careful or hostile user relies on, on
//! real files, through the library and the command line.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use litepool::{Error, Pools, Settings};

use crate::common::*;

fn litepool_cmd(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_litepool"));
    c.current_dir(cwd)
        .env_remove("LITEPOOL_ENV")
        .env_remove("LITEPOOL_CONFIG_DIR")
        .env_remove("RUST_LOG");
    c
}

fn run(cwd: &Path, args: &[&str]) -> Output {
    litepool_cmd(cwd).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fixture with the shipped profiles and one database `main` on the `recommended` profile.
fn recommended(pool: &str) -> Fixture {
    recommended_named("main", pool)
}

/// [`recommended`] with another database name.
fn recommended_named(name: &str, pool: &str) -> Fixture {
    Fixture::new(&format!(
        "{}\n[databases.{name}]\npath = \"{{data}}/{name}.db\"\nprofile = \"recommended\"\n[databases.{name}.pool]\n{pool}\n",
        shipped_profiles()
    ))
}

/// A WAL database holding a user table called `litepool_workload`, as the workload's own.
fn user_db_in_wal(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode=wal;
         CREATE TABLE litepool_workload(id INTEGER PRIMARY KEY, mine TEXT);
         INSERT INTO litepool_workload(mine) VALUES ('user data');",
    )
    .unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

// 1. The workload never writes to the user's files and leaves nothing behind.
#[test]
fn stats_workload_runs_on_private_copies_and_leaves_user_files_and_tmp_untouched() {
    let f = recommended("max_size = 2");
    let db = f.path("data/main.db");
    user_db_in_wal(&db);
    let (hash, before) = (sha256(&db), listing(&f.path("data")));
    let tmp = tempfile::tempdir().unwrap();
    let out = litepool_cmd(f.dir.path())
        .args(["stats", "--workload", "0.3", "--threads", "2", "--json"])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["workload"]["writes"].as_u64().unwrap() > 0, "{json}");
    assert_eq!(
        sha256(&db),
        hash,
        "the user's file is byte for byte the same"
    );
    assert_eq!(
        listing(&f.path("data")),
        before,
        "no -wal/-shm left beside it"
    );
    let mine: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT mine FROM litepool_workload", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mine, "user data");
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
}

/// Starts `args`, waits until its scratch directory exists, sends `signal`, and returns the exit
/// status and what the scratch directory held while it ran (modes included).
fn interrupt(f: &Fixture, args: &[&str], signal: i32) -> (Option<i32>, Vec<(String, u32)>) {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = litepool_cmd(f.dir.path())
        .args(args)
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    // Wait until the scratch directory holds a copied database.
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{args:?} ended before it was interrupted: {status}");
        }
        if let Some(dir) = std::fs::read_dir(tmp.path()).unwrap().flatten().next() {
            let mode =
                |p: &Path| std::fs::metadata(p).map_or(0, |m| m.permissions().mode() & 0o777);
            let files: Vec<_> = walk(&dir.path());
            if files
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "db"))
            {
                seen.push((".".into(), mode(&dir.path())));
                for p in files {
                    seen.push((p.display().to_string(), mode(&p)));
                }
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!seen.is_empty(), "the command made no scratch copy");
    // SAFETY-free: kill(1) sends the signal.
    let status = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        listing(tmp.path()).is_empty(),
        "left behind: {:?}; stderr {}",
        listing(tmp.path()),
        stderr(&out)
    );
    (out.status.code(), seen)
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.push(p.clone());
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

// 1, 2. SIGINT and SIGTERM remove the private copies; the originals stay as they were.
#[test]
fn sigint_and_sigterm_remove_private_copies_and_leave_originals_alone() {
    let f = recommended("max_size = 2");
    let db = f.path("data/main.db");
    user_db_in_wal(&db);
    let (hash, before) = (sha256(&db), listing(&f.path("data")));
    let (code, seen) = interrupt(&f, &["stats", "--workload", "60"], 2);
    assert_eq!(code, Some(130));
    for (path, mode) in &seen {
        let want = if path == "." || Path::new(path).is_dir() {
            0o700
        } else {
            0o600
        };
        assert!(*mode == want || *mode == 0, "{path}: {mode:o}");
    }
    assert_eq!(seen[0].1, 0o700, "the scratch directory is private");
    let (code, seen) = interrupt(
        &f,
        &[
            "bench",
            "--builtin",
            "--profiles",
            "recommended",
            "--seconds",
            "60",
        ],
        15,
    );
    assert_eq!(code, Some(143));
    assert!(
        seen.iter()
            .filter(|(p, _)| p.ends_with(".db"))
            .all(|(_, m)| *m == 0o600),
        "{seen:?}"
    );
    assert_eq!(sha256(&db), hash);
    assert_eq!(listing(&f.path("data")), before);
}

// 3. Every numeric argument is bounded, and the message names the bound.
#[test]
fn numeric_arguments_out_of_bounds_exit_2_naming_the_bound() {
    let f = recommended("max_size = 1");
    for (args, says) in [
        (
            &["stats", "--workload", "1", "--threads", "100000"][..],
            "1..=256",
        ),
        (
            &["stats", "--workload", "1", "--threads", "0"][..],
            "1..=256",
        ),
        (
            &["stats", "--workload", "NaN"][..],
            "invalid --workload NaN",
        ),
        (&["stats", "--workload", "-1"][..], "-1"),
        (&["bench", "--seconds", "1e9"][..], "expected 0.01 to 600"),
        (&["bench", "--scale", "1001"][..], "1..=1000"),
        (&["bench", "--seed", "-1"][..], "-1"),
    ] {
        let out = run(f.dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    assert!(
        !f.path("data/main.db").exists(),
        "refused before any file is touched"
    );
}

// 4. Unrelated non-UTF-8 variables are ignored; a LITEPOOL__ one is named.
#[test]
fn non_utf8_environment_variables() {
    let f = recommended("max_size = 1");
    let bad = std::ffi::OsStr::from_bytes(b"\xff\xfe");
    let out = litepool_cmd(f.dir.path())
        .args(["check"])
        .env("UNRELATED_BINARY", bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = litepool_cmd(f.dir.path())
        .args(["check"])
        .env("LITEPOOL__DATABASES__MAIN__PATH", bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "environment variable LITEPOOL__DATABASES__MAIN__PATH: the value is not valid UTF-8"
        ),
        "{}",
        stderr(&out)
    );
    let out = litepool_cmd(f.dir.path())
        .args(["check"])
        .env(std::ffi::OsStr::from_bytes(b"LITEPOOL__\xff"), "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the name is not valid UTF-8"),
        "{}",
        stderr(&out)
    );
    let out = litepool_cmd(f.dir.path())
        .args(["check"])
        .env("LITEPOOL_ENV", bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("LITEPOOL_ENV"), "{}", stderr(&out));
}

// 5. String keys keep the exact text; number keys take exact integers only.
#[test]
fn values_keep_their_type() {
    let f = recommended("max_size = 1");
    for text in ["007", "1e3", "nan", "-0", "true"] {
        let path = format!("{}/{text}", f.data());
        let s = f
            .loader()
            .vars(vars(&[("LITEPOOL__DATABASES__MAIN__PATH", &path)]))
            .load()
            .unwrap();
        assert_eq!(s.databases["main"].path, Path::new(&path), "{text}");
    }
    for bad in [
        "2.5",
        "yes",
        "1e3",
        "+4",
        " 4",
        "0x10",
        "",
        "-1",
        "4294967296",
    ] {
        let e = f
            .loader()
            .vars(vars(&[("LITEPOOL__DATABASES__MAIN__POOL__MAX_SIZE", bad)]))
            .load()
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("environment variable LITEPOOL__DATABASES__MAIN__POOL__MAX_SIZE: key `databases.main.pool.max_size`"),
            "{bad:?}: {e}"
        );
    }
    for (toml, key) in [
        ("max_size = 2.5", "databases.main.pool.max_size"),
        ("max_size = 2.0", "databases.main.pool.max_size"),
        (
            "max_size = 1\nmin_idle = 0.5",
            "databases.main.pool.min_idle",
        ),
    ] {
        let e = recommended(toml).load().unwrap_err().to_string();
        assert!(
            e.contains(&format!("key `{key}`")) && e.contains("expected an integer"),
            "{e}"
        );
    }
    let e = Settings::from_toml("[databases.main]\npath = 7\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("key `databases.main.path`") && e.contains("a string"),
        "{e}"
    );
    let e = Settings::from_toml("[profiles.p]\nwal_autocheckpoint = 1.5\n[databases.main]\npath = \"x.db\"\nprofile = \"p\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("wal_autocheckpoint") && e.contains("expected an integer"),
        "{e}"
    );
}

// 6. A named environment must exist; config files must be regular files; nothing hangs.
#[test]
fn environments_and_config_files_that_are_not_what_they_seem() {
    let f = recommended("max_size = 1");
    f.config("production.toml", "");
    f.config("staging.toml", "");
    let e = f.loader().env("prodution").load().unwrap_err().to_string();
    assert!(
        e.contains("environment \"prodution\" has no prodution.toml"),
        "{e}"
    );
    assert!(e.contains("production, staging"), "{e}");
    let e = f
        .loader()
        .vars(vars(&[("LITEPOOL_ENV", "prodution")]))
        .load()
        .unwrap_err()
        .to_string();
    assert!(e.contains("prodution.toml"), "{e}");
    assert_eq!(
        f.load().unwrap().env,
        "development",
        "only development may be absent"
    );
    let out = run(f.dir.path(), &["check", "--env", "prodution"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!f.path("data/main.db").exists());

    let config = f.path("config");
    std::fs::create_dir(config.join("dir.toml")).unwrap();
    std::os::unix::fs::symlink(config.join("gone.toml"), config.join("dangling.toml")).unwrap();
    let fifo = config.join("fifo.toml");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for (env, says) in [
        ("dir", "not a regular file: it is a directory"),
        ("dangling", "symbolic link to a file that does not exist"),
        ("fifo", "not a regular file: it is a special file"),
    ] {
        let e = f.loader().env(env).load().unwrap_err().to_string();
        assert!(
            e.contains(&format!("{env}.toml")) && e.contains(says),
            "{e}"
        );
    }
    // A config directory that is a file: the real cause, not "file not found".
    let out = run(
        f.dir.path(),
        &["check", "--config", "data/../config/production.toml"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Not a directory"), "{}", stderr(&out));
}

// 7. Keys that have no effect are reported by check.
#[test]
fn check_warns_about_keys_that_have_no_effect() {
    let f = Fixture::new(&format!(
        "{}\n[databases.jobs]\npath = \"{{data}}/jobs.db\"\nprofile = \"recommended\"\n\
         [databases.jobs.pool]\nmax_size = 9\n[databases.jobs.writer]\n[databases.jobs.readers]\nmax_size = 3\n",
        shipped_profiles()
    ));
    let s = f
        .loader()
        .vars(vars(&[("LITEPOOL__DATABASES__JOBS__POOL__MIN_IDLE", "2")]))
        .load()
        .unwrap();
    let keys: Vec<_> = s
        .ignored
        .iter()
        .map(|i| (i.key.as_str(), i.origin.as_str()))
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys[0].0, "databases.jobs.pool.max_size");
    assert!(keys[0].1.ends_with("default.toml"), "{keys:?}");
    assert_eq!(
        keys[1],
        (
            "databases.jobs.pool.min_idle",
            "environment variable LITEPOOL__DATABASES__JOBS__POOL__MIN_IDLE"
        )
    );
    let out = run(f.dir.path(), &["check", "--strict"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[ignored-key]") && text.contains("key `databases.jobs.pool.max_size`: max_size has no effect on split database \"jobs\""),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1), "--strict fails on the warning");
}

// 8. Deep and long keys are refused before they are parsed.
#[test]
fn deep_and_long_keys_are_refused_quickly() {
    let f = recommended("max_size = 1");
    let deep = format!("LITEPOOL__{}", vec!["A"; 4000].join("__"));
    let start = Instant::now();
    let e = f
        .loader()
        .vars(vars(&[(&deep, "1")]))
        .load()
        .unwrap_err()
        .to_string();
    assert!(e.contains("at most 256"), "{e}");
    let deep = format!("LITEPOOL__{}", ["A"; 7].join("__"));
    let e = f
        .loader()
        .vars(vars(&[(&deep, "1")]))
        .load()
        .unwrap_err()
        .to_string();
    assert!(e.contains("7 levels deep; at most 6"), "{e}");
    let long = "x".repeat(70_000);
    let e = f
        .loader()
        .vars(vars(&[("LITEPOOL__DATABASES__MAIN__PATH", &long)]))
        .load()
        .unwrap_err()
        .to_string();
    assert!(e.contains("at most 65536"), "{e}");
    // Bounded input: each refusal reads no more than its limits.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

/// Damages one b-tree page of a database with a table of many rows.
fn corrupt_db(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
         INSERT INTO t(v) SELECT printf('%0100d', i) FROM n;",
    )
    .unwrap();
    drop(c);
    let mut bytes = std::fs::read(path).unwrap();
    // Page 3 (a leaf of t): overwrite its cell pointers and cells, keep the file's size.
    for b in &mut bytes[2 * 4096 + 8..2 * 4096 + 4000] {
        *b = 0xA5;
    }
    std::fs::write(path, bytes).unwrap();
}

// 9. A damaged file is refused before litepool writes to it.
#[test]
fn a_damaged_database_is_refused_unchanged() {
    let f = recommended("max_size = 1");
    let db = f.path("data/main.db");
    corrupt_db(&db);
    let hash = sha256(&db);
    let e = Pools::new(&f.load().unwrap()).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("is damaged: PRAGMA quick_check reports"),
        "{e}"
    );
    for cmd in ["check", "stats"] {
        let out = run(f.dir.path(), &[cmd]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", stderr(&out));
        assert!(stderr(&out).contains("is damaged"), "{}", stderr(&out));
    }
    assert_eq!(sha256(&db), hash, "not switched to WAL, not touched");
    // check_integrity = false opens it anyway (the documented escape for huge files).
    let s = f
        .loader()
        .vars(vars(&[(
            "LITEPOOL__DATABASES__MAIN__CHECK_INTEGRITY",
            "false",
        )]))
        .load()
        .unwrap();
    assert!(!s.databases["main"].check_integrity);
}

// 10. A deleted or replaced file stops its pool; orphaned -wal/-journal files are refused.
#[test]
fn a_deleted_or_replaced_database_file_stops_its_pool() {
    for replace in [false, true] {
        let f = recommended("max_size = 2");
        let pools = Pools::new(&f.load().unwrap()).unwrap();
        pools
            .get("main")
            .unwrap()
            .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        let db = f.path("data/main.db");
        std::fs::remove_file(&db).unwrap();
        if replace {
            make_db(&db);
        }
        // The watcher looks every 500ms; poll (the deadline only bounds a failing run).
        let deadline = Instant::now() + Duration::from_secs(10);
        let err = loop {
            match pools.get("main") {
                Err(e) => break e,
                Ok(_) if Instant::now() > deadline => panic!("still handing out connections"),
                Ok(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        assert!(matches!(err, Error::Moved { .. }), "{err:?}");
        assert!(
            err.to_string().contains("was deleted, renamed or replaced"),
            "{err}"
        );
    }
    // A -wal or -journal without its database: refused, bytes unchanged.
    for suffix in ["-wal", "-journal"] {
        let f = recommended("max_size = 1");
        let orphan = f.path(&format!("data/main.db{suffix}"));
        std::fs::write(&orphan, b"committed data nobody else has").unwrap();
        let hash = sha256(&orphan);
        let out = run(f.dir.path(), &["check"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains(&format!("main.db{suffix} exists but")),
            "{}",
            stderr(&out)
        );
        assert_eq!(sha256(&orphan), hash);
        assert!(!f.path("data/main.db").exists());
        std::fs::write(f.path("data/main.db"), b"").unwrap();
        let e = Pools::new(&f.load().unwrap()).unwrap_err();
        assert!(
            matches!(e, Error::Orphan { .. }),
            "empty database file too: {e:?}"
        );
        assert_eq!(sha256(&orphan), hash);
    }
}

const SPLIT: &str = "[databases.main.writer]\n[databases.main.readers]\nmax_size = 2\n";

// 11. Readers cannot write by any path, and pragma changes do not outlive a checkout.
#[test]
fn readers_cannot_write_and_pragma_changes_do_not_leak() {
    let f = recommended(&format!("max_size = 2\n{SPLIT}"));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    pools
        .writer("main")
        .unwrap()
        .execute_batch("CREATE TABLE t(x)")
        .unwrap();
    let r = pools.reader("main").unwrap();
    let e = r
        .execute_batch("PRAGMA query_only = 0")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not authorized"), "{e}");
    let e = r
        .execute("INSERT INTO t VALUES (1)", [])
        .unwrap_err()
        .to_string();
    assert!(e.contains("readonly"), "{e}");
    let e = r.execute_batch("BEGIN IMMEDIATE").unwrap_err().to_string();
    assert!(e.contains("readonly") || e.contains("read-only"), "{e}");
    let e = r
        .execute_batch(&format!("ATTACH '{}/other.db' AS o", f.data()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not authorized"), "{e}");
    assert!(!f.path("data/other.db").exists());
    let e = r
        .execute_batch("CREATE TEMP TABLE tmp(x)")
        .unwrap_err()
        .to_string();
    assert!(e.contains("readonly"), "{e}");
    drop(r);
    // Single pool (reads and writes): a managed pragma cannot be changed for the next borrower.
    let f = recommended("max_size = 1");
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    let c = pools.get("main").unwrap();
    for sql in [
        "PRAGMA foreign_keys = OFF",
        "PRAGMA main.synchronous = OFF",
        "PRAGMA cache_size(-10)",
        "PRAGMA QUERY_ONLY = 1",
    ] {
        let e = c.execute_batch(sql).unwrap_err().to_string();
        assert!(e.contains("not authorized"), "{sql}: {e}");
    }
    let fk: i64 = c
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1, "reading stays allowed");
    // A transaction left open is rolled back at check-in.
    c.execute_batch("CREATE TABLE t(x); BEGIN; INSERT INTO t VALUES (1);")
        .unwrap();
    drop(c);
    let c = pools.get("main").unwrap();
    assert!(
        c.is_autocommit(),
        "the next borrower gets no open transaction"
    );
    let n: i64 = c
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

// 12. A read transaction on a reader works with every shipped profile.
#[test]
fn reader_transactions_work_with_every_shipped_profile() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let shipped = Settings::loader()
        .dir(&config)
        .vars(HashMap::new())
        .load()
        .unwrap();
    for name in shipped.profiles.keys() {
        let f = Fixture::new(&format!(
            "{}\n[databases.main]\npath = \"{{data}}/main.db\"\nprofile = \"{name}\"\n{}",
            shipped_profiles(),
            SPLIT.replace(
                "[databases.main.writer]",
                "[databases.main.pool]\nmax_size = 2\n[databases.main.writer]"
            )
        ));
        let pools = Pools::new(&f.load().unwrap()).unwrap();
        pools
            .writer("main")
            .unwrap()
            .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        let mut r = pools.reader("main").unwrap();
        let tx = r.transaction().unwrap_or_else(|e| panic!("{name}: {e}"));
        let n: i64 = tx
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "{name}");
        tx.commit().unwrap();
    }
}

// 13. One file under two names is refused at load, before any file is touched.
#[test]
fn one_file_under_two_names_is_refused() {
    let f = recommended("max_size = 1");
    std::fs::create_dir(f.path("data/sub")).unwrap();
    std::os::unix::fs::symlink(f.path("data/main.db"), f.path("data/link.db")).unwrap();
    for other in ["{data}/main.db", "{data}/sub/../main.db", "{data}/link.db"] {
        let g = Fixture::new(&format!(
            "{}\n[databases.a]\npath = \"{}/main.db\"\nprofile = \"recommended\"\n[databases.b]\npath = \"{}\"\nprofile = \"sqlite_defaults\"\n",
            shipped_profiles(),
            f.data(),
            other.replace("{data}", &f.data()),
        ));
        // The file does not exist yet (and for the symlink, the link dangles): still the same.
        let e = g.load().unwrap_err().to_string();
        assert!(
            e.contains("databases \"a\" and \"b\" are the same file"),
            "{other}: {e}"
        );
        assert!(e.contains("key `databases.b.path`"), "{e}");
    }
    // A hard link to an existing file.
    make_db(&f.path("data/main.db"));
    std::fs::hard_link(f.path("data/main.db"), f.path("data/hard.db")).unwrap();
    let g = Fixture::new(&format!(
        "[databases.a]\npath = \"{0}/main.db\"\n[databases.b]\npath = \"{0}/hard.db\"\n",
        f.data()
    ));
    let e = g.load().unwrap_err().to_string();
    assert!(e.contains("are the same file"), "{e}");
    assert!(!f.path("data/main.db-wal").exists());
}

// 14. The profile's busy_timeout applies before anything that may meet a lock.
#[test]
fn bootstrap_waits_the_profiles_busy_timeout_not_five_seconds() {
    let f = Fixture::new(&one_db(
        "busy_timeout = \"200ms\"\njournal_mode = \"wal\"",
        "max_size = 1",
    ));
    let path = f.path("data/main.db");
    make_db(&path);
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let settings = f
        .loader()
        .vars(vars(&[(
            "LITEPOOL__DATABASES__MAIN__CHECK_INTEGRITY",
            "false",
        )]))
        .load()
        .unwrap();
    let start = Instant::now();
    let e = Pools::new(&settings).unwrap_err();
    let waited = start.elapsed();
    assert!(e.to_string().contains("database is locked"), "{e}");
    // rusqlite's own default would wait 5s; the profile says 200ms.
    assert!(waited < Duration::from_millis(2500), "{waited:?}");
    // quick_check too waits the profile's timeout, not 5s.
    let start = Instant::now();
    let e = Pools::new(&f.load().unwrap()).unwrap_err();
    assert!(
        e.to_string().contains(
            "is locked by another connection: PRAGMA quick_check waited the profile's busy_timeout"
        ),
        "{e}"
    );
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
    holder.execute_batch("COMMIT").unwrap();
}

// 15. Messages name the real cause.
#[test]
fn messages_name_the_real_cause() {
    let f = recommended("max_size = 2\nconnection_timeout = \"100ms\"");
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    let (_a, _b) = (pools.get("main").unwrap(), pools.get("main").unwrap());
    let e = pools.get("main").unwrap_err().to_string();
    assert_eq!(
        e,
        "pool \"main\": no connection within 100ms: all 2 connection(s) were in use"
    );
    // A dangling symlink as the database path.
    let g = recommended("max_size = 1");
    std::os::unix::fs::symlink(g.path("data/elsewhere.db"), g.path("data/main.db")).unwrap();
    let out = run(g.dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is a symbolic link to")
            && stderr(&out).contains("which does not exist"),
        "{}",
        stderr(&out)
    );
    assert!(!g.path("data/elsewhere.db").exists());
    // Out of file descriptors: a child with a low limit.
    let h = recommended("max_size = 40\nconnection_timeout = \"1s\"");
    let out = Command::new("sh")
        .args([
            "-c",
            &format!(
                "ulimit -n 24 && exec {} check",
                env!("CARGO_BIN_EXE_litepool")
            ),
        ])
        .current_dir(h.dir.path())
        .env_remove("LITEPOOL_ENV")
        .env_remove("LITEPOOL_CONFIG_DIR")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("out of file descriptors")
            || stderr(&out).contains("out of file descriptors"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}

// 16. One exit-code table: the same file problem gives the same code from every command.
#[test]
fn file_problems_exit_2_from_every_command() {
    for problem in ["not sqlite", "damaged"] {
        // `jobs`: a database `litepool bench` copies.
        let f = recommended_named("jobs", "max_size = 1");
        let db = f.path("data/jobs.db");
        match problem {
            "not sqlite" => std::fs::write(&db, b"hello, not a database at all.....").unwrap(),
            _ => corrupt_db(&db),
        }
        let hash = sha256(&db);
        for args in [
            &["check"][..],
            &["stats"],
            &["stats", "--workload", "0.1"],
            &[
                "bench",
                "--builtin",
                "--profiles",
                "recommended",
                "--seconds",
                "0.1",
            ],
        ] {
            let out = run(f.dir.path(), args);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{problem} {args:?}: {}",
                stderr(&out)
            );
        }
        assert_eq!(sha256(&db), hash);
    }
    let out = run(Path::new("."), &["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Exit status, for every command") && help.contains("130"),
        "{help}"
    );
}
