use std::path::Path;
use std::time::Duration;

use crate::bench_runner::{prepare_sources, run, Sources, Target, Workload};
use crate::datagen::{self, Dataset};
use litepool::Settings;

use crate::common::*;

fn shipped() -> Settings {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    Settings::loader()
        .dir(dir)
        .env("development")
        .vars(Default::default())
        .load()
        .unwrap()
}

#[test]
fn sources_are_copied_with_the_backup_api_and_originals_are_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("customers.db");
    {
        let mut conn = rusqlite::Connection::open(&original).unwrap();
        datagen::generate(&mut conn, Dataset::Customers, 5, 1).unwrap();
        conn.execute("UPDATE customers SET name = 'MARKER' WHERE id = 42", [])
            .unwrap();
        conn.pragma_update(None, "journal_mode", "wal").unwrap();
    }
    let hash = sha256(&original);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let from = Sources {
        customers: Some(original.clone()),
        jobs: Some(dir.path().join("missing-jobs.db")),
        audit: None,
    };
    let [customers, jobs, audit] = prepare_sources(&out, &from, 1, 1).unwrap();
    let copy = rusqlite::Connection::open(&customers).unwrap();
    let name: String = copy
        .query_row("SELECT name FROM customers WHERE id = 42", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "MARKER", "the copy holds the original's rows");
    assert_eq!(sha256(&original), hash);
    assert!(
        !dir.path().join("missing-jobs.db").exists(),
        "a missing original is generated, not created"
    );
    let n: i64 = rusqlite::Connection::open(&jobs)
        .unwrap()
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 200);
    let n: i64 = rusqlite::Connection::open(&audit)
        .unwrap()
        .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 10_000);
}

/// Generated sources in a temp dir, and a target on copies of them with a shipped profile.
fn target(profile: &str, split: bool) -> (tempfile::TempDir, [std::path::PathBuf; 3], Target) {
    let settings = shipped();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let sources = prepare_sources(&src, &Sources::default(), 1, 1).unwrap();
    let target = Target::open(
        &dir.path().join("run"),
        &sources,
        &settings.profiles[profile],
        split,
    )
    .unwrap();
    (dir, sources, target)
}

#[test]
fn every_workload_runs_under_the_recommended_profile_without_busy_errors() {
    let (dir, sources, target) = target("recommended", false);
    for w in Workload::ALL {
        let m = run(&target, "recommended", w, Duration::from_millis(200), 1).unwrap();
        assert!(m.ops > 0, "{m:?}");
        assert_eq!((m.busy, m.errors), (0, 0), "{m:?}");
        assert_eq!(m.threads, if w == Workload::Mixed { 8 } else { 1 });
        assert_eq!(m.latency.count, m.ops);
    }
    // The inserts and updates went to the copies.
    let audit = rusqlite::Connection::open(dir.path().join("run/audit.db")).unwrap();
    let n: i64 = audit
        .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    assert!(n > 10_000);
    let src_audit = rusqlite::Connection::open(&sources[2]).unwrap();
    let n: i64 = src_audit
        .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 10_000);
}

#[test]
fn workload_names_round_trip() {
    for w in Workload::ALL {
        assert_eq!(w.to_string().parse::<Workload>().unwrap(), w);
    }
    let e = "reads".parse::<Workload>().unwrap_err().to_string();
    assert!(e.contains("one of point_read, assigned_batches"), "{e}");
}

#[test]
fn bench_cli_compares_profiles_on_copies() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    // An existing original, which must not change.
    let jobs = dir.path().join("data/jobs.db");
    datagen::generate(
        &mut rusqlite::Connection::open(&jobs).unwrap(),
        Dataset::Jobs,
        3,
        1,
    )
    .unwrap();
    let hash = sha256(&jobs);
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_litepool"))
        .args([
            "bench",
            "--config",
            config.to_str().unwrap(),
            "--env",
            "test",
            "--seconds",
            "0.1",
            "--json",
            "--builtin",
        ])
        .args(["--profiles", "sqlite_defaults,recommended"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["profiles"],
        serde_json::json!(["sqlite_defaults", "recommended"])
    );
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 10);
    for r in results {
        assert!(r["ops"].as_u64().unwrap() > 0, "{r}");
        assert!(r["latency"]["p99_seconds"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert_eq!(sha256(&jobs), hash, "the original is never written");
    // What each copy held is said, never substituted silently.
    assert_eq!(json["data"]["jobs"], "your data");
    assert!(json["data"]["audit"]
        .as_str()
        .unwrap()
        .starts_with("generated ("));
    for name in ["prod_customer_data", "audit"] {
        assert!(
            !dir.path().join(format!("data/{name}.db")).exists(),
            "{name} is generated in a temp dir"
        );
    }

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_litepool"))
        .args([
            "bench",
            "--config",
            config.to_str().unwrap(),
            "--profiles",
            "turbo",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "unknown profile \"turbo\" in --profiles: configured profiles are original_as_run"
        ),
        "{err}"
    );
}

#[test]
fn the_split_meets_no_busy_in_the_mixed_workload() {
    let (_dir, _sources, target) = target("sqlite_defaults", true);
    // Even SQLite's defaults (no busy timeout) meet no SQLITE_BUSY with one writer per database.
    let m = run(
        &target,
        "sqlite_defaults+split",
        Workload::Mixed,
        Duration::from_millis(300),
        1,
    )
    .unwrap();
    assert!(m.ops > 0, "{m:?}");
    assert_eq!((m.busy, m.errors), (0, 0), "{m:?}");
}
