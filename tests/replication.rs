//! Replication with the real Litestream 0.3.13 (`replication = "litestream-0.3"`,
//! `litepool litestream --format 0.3`; the run itself is [`crate::litestream_run::run`], shared
//! with the 0.5.17 tests), the lint of each replication, and the LiteFS replica role.

use std::process::Command;

use litepool::settings::LitestreamVersion;
use litepool::Pools;

use crate::common::*;
use crate::litestream_run::run;

#[test]
fn acknowledged_rows_survive_a_killed_writer() {
    let n = run(LitestreamVersion::V03, false);
    assert!(n.restored >= n.acknowledged, "{n:?}");
}

#[test]
fn acknowledged_rows_survive_a_killed_writer_and_a_litestream_restart() {
    let n = run(LitestreamVersion::V03, true);
    assert!(n.restored >= n.acknowledged, "{n:?}");
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
    for replication in ["litestream", "litestream-0.3"] {
        let fits = lint_codes(
            "busy_timeout = \"5s\"\njournal_mode = \"wal\"\nwal_autocheckpoint = 0",
            replication,
            false,
        );
        assert!(
            fits.iter().all(|(c, _)| !c.starts_with("replication")),
            "{replication}: {fits:?}"
        );
        let busy = lint_codes(
            "busy_timeout = \"0ms\"\njournal_mode = \"wal\"",
            replication,
            false,
        );
        assert!(has(&busy, "replication-busy-timeout", Warning), "{busy:?}");
        let exclusive = lint_codes(
            "allow_unsafe = true\nlocking_mode = \"exclusive\"\njournal_mode = \"wal\"",
            replication,
            false,
        );
        assert!(
            has(&exclusive, "replication-locking", Error),
            "{exclusive:?}"
        );
        let delete = lint_codes("journal_mode = \"delete\"", replication, false);
        assert!(has(&delete, "replication-wal", Error), "{delete:?}");
    }
    // SQLite's automatic checkpoints: Litestream 0.3's advice (a notice), not 0.5's (which
    // checkpoints by itself and holds a read transaction no other checkpoint can pass).
    let auto = "busy_timeout = \"5s\"\njournal_mode = \"wal\"";
    let v03 = lint_codes(auto, "litestream-0.3", false);
    assert!(has(&v03, "replication-checkpoint", Notice), "{v03:?}");
    let v05 = lint_codes(auto, "litestream", false);
    assert!(
        v05.iter().all(|(c, _)| !c.starts_with("replication")),
        "{v05:?}"
    );
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

/// `checkpoint = "background"` under Litestream 0.5 is a warning naming the decision and its
/// source; under 0.3 it is not (0.3's rule is the `replication-checkpoint` notice).
#[test]
fn the_lint_leaves_checkpoints_to_litestream_0_5() {
    let findings = |replication: &str| {
        let f = Fixture::new(&format!(
            "[profiles.p]\nbusy_timeout = \"5s\"\njournal_mode = \"wal\"\n[databases.jobs]\npath = \"{{data}}/jobs.db\"\nprofile = \"p\"\nreplication = \"{replication}\"\ncheckpoint = \"background\"\n[databases.jobs.writer]\n[databases.jobs.readers]\n"
        ));
        let settings = f.load().unwrap();
        let files = litepool::pools::preflight(&settings).unwrap();
        let budget = litepool::budget::Budget::new(&settings, &files);
        litepool::lint::lint_with(&settings, &budget, &|_| None)
    };
    let v05 = findings("litestream");
    let bg: Vec<_> = v05
        .iter()
        .filter(|f| f.code == "replication-checkpoint-background")
        .collect();
    assert_eq!(bg.len(), 1, "{v05:?}");
    assert_eq!(bg[0].level, litepool::lint::Level::Warning);
    assert_eq!(bg[0].database, "jobs.writer");
    assert_eq!(
        bg[0].link,
        "https://litestream.io/guides/wal-truncate-threshold/"
    );
    assert!(
        bg[0]
            .message
            .contains("leave checkpoints to Litestream (checkpoint = \"sqlite\""),
        "{}",
        bg[0].message
    );
    let v03 = findings("litestream-0.3");
    assert!(
        !v03.iter()
            .any(|f| f.code == "replication-checkpoint-background"),
        "{v03:?}"
    );
    // An unknown replication value is refused at load, naming the key, the value and the choices.
    let f = Fixture::new(
        "[databases.jobs]\npath = \"{data}/jobs.db\"\nreplication = \"litestream-0.4\"\n",
    );
    let e = f.load().unwrap_err().to_string();
    assert!(e.contains("default.toml"), "{e}");
    assert!(e.contains("replication"), "{e}");
    assert!(
        e.contains("\"litestream-0.4\": expected one of none, litestream, litefs, litestream-0.3"),
        "{e}"
    );
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
