use std::path::Path;
use std::process::{Command, Output};

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

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn check_on_the_shipped_config_verifies_and_prints_json() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let out = litepool(
        dir.path(),
        &[
            "check",
            "--config",
            config.to_str().unwrap(),
            "--env",
            "test",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["verified"], true);
    assert_eq!(json["env"], "test");
    let dbs = json["databases"].as_array().unwrap();
    let names: Vec<_> = dbs.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["audit", "jobs", "prod_customer_data"]);
    for db in dbs {
        let max = db["pool"]["max_size"].as_u64().unwrap();
        assert_eq!(db["connections"].as_u64().unwrap(), max);
        assert_eq!(db["file_before"]["state"], "missing");
        assert_eq!(db["file_after"]["wal"], true);
        let rows = db["pragmas"].as_array().unwrap();
        let cache = rows.iter().find(|r| r["pragma"] == "cache_size").unwrap();
        assert_eq!(cache["configured"], "8MiB");
        assert_eq!(cache["sqlite"], -8192);
        assert_eq!(cache["connections_ok"].as_u64().unwrap(), max);
        let journal = rows.iter().find(|r| r["pragma"] == "journal_mode").unwrap();
        assert_eq!(
            (&journal["sqlite"], &journal["scope"]),
            (&"wal".into(), &"file".into())
        );
        let name = db["name"].as_str().unwrap();
        assert!(dir.path().join(format!("data/{name}.db")).is_file());
    }
    // test.toml: pools of 2, 2 and 1 with 8MiB each.
    assert_eq!(
        json["memory"]["worst_case"].as_u64().unwrap(),
        5 * (8 << 20)
    );
    assert!(
        stderr(&out).contains("jobs: opening 2 connection(s)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_prints_tables_and_warns_over_budget() {
    let f = Fixture::new(
        &(one_db("cache_size = \"64MiB\"", "max_size = 3")
            + "[limits]\nmemory_budget = \"100MiB\"\n"),
    );
    let out = litepool(f.dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("cache_size           64MiB        -65536       connection  ok 3/3"),
        "{text}"
    );
    assert!(text.contains("192.0 MiB"), "{text}");
    assert!(text.contains("warning: memory budget exceeded"), "{text}");
    assert!(text.ends_with("all settings verified\n"), "{text}");
}

#[test]
fn check_exits_2_on_a_configuration_error_and_creates_nothing() {
    let f = Fixture::new(&one_db("journal_mode = \"walx\"", "max_size = 2"));
    let out = litepool(f.dir.path(), &["check", "--config", "config"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("key `profiles.p.journal_mode`: invalid journal_mode \"walx\""),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
    assert!(!f.path("data/main.db").exists());
}

#[test]
fn a_configuration_error_says_its_cause_once() {
    // Error::At shows its cause in its own text: the printed chain must not repeat it.
    for (pragma, cause) in [
        ("journal_mode = \"walx\"", "invalid journal_mode"),
        ("synchronous = \"off\"", "is unsafe"),
    ] {
        let f = Fixture::new(&one_db(pragma, "max_size = 2"));
        let out = litepool(f.dir.path(), &["check", "--config", "config"]);
        assert_eq!(out.status.code(), Some(2));
        let err = stderr(&out);
        assert_eq!(err.matches(cause).count(), 1, "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn stats_exits_2_and_check_1_when_a_held_lock_keeps_a_setting_from_taking_effect() {
    // The file is in WAL and another connection is reading: a switch back to `delete` needs
    // exclusive access it cannot get, so journal_mode stays `wal`. `stats` opens the pools as an
    // application would: a held lock is a file problem, exit 2. `check` does not switch an
    // existing file: it reports what it would change, exit 1 (not in force).
    let f = Fixture::new(&one_db(
        "journal_mode = \"delete\"\nbusy_timeout = \"100ms\"",
        "max_size = 2",
    ));
    let path = f.path("data/main.db");
    make_db(&path);
    let reader = rusqlite::Connection::open(&path).unwrap();
    reader.pragma_update(None, "journal_mode", "wal").unwrap();
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM customers;")
        .unwrap();
    let stats = litepool(f.dir.path(), &["stats"]);
    assert_eq!(stats.status.code(), Some(2), "{}", stderr(&stats));
    assert!(
        stderr(&stats).contains("database is locked"),
        "{}",
        stderr(&stats)
    );
    let out = litepool(f.dir.path(), &["check", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["verified"], false);
    let db = &json["databases"][0];
    assert_eq!(db["error"], serde_json::Value::Null);
    let journal = db["pragmas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["pragma"] == "journal_mode")
        .unwrap();
    assert_eq!(
        (&journal["wanted"], &journal["sqlite"], &journal["outcome"]),
        (&"delete".into(), &"wal".into(), &"would_change".into())
    );
    reader.execute_batch("COMMIT").unwrap();
}

#[test]
fn stats_runs_a_workload_and_reports_every_pool() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let args = [
        "stats",
        "--config",
        config.to_str().unwrap(),
        "--env",
        "test",
        "--json",
        "--workload",
        "0.5",
        "--threads",
        "2",
    ];
    let out = litepool(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let w = &json["workload"];
    let (reads, writes) = (w["reads"].as_u64().unwrap(), w["writes"].as_u64().unwrap());
    assert!(reads > 0 && writes > 0, "{w}");
    assert_eq!(
        (w["busy"].as_u64(), w["errors"].as_u64()),
        (Some(0), Some(0)),
        "{w}"
    );
    let pools = json["pools"].as_object().unwrap();
    assert_eq!(
        pools.keys().collect::<Vec<_>>(),
        ["audit", "jobs", "prod_customer_data"]
    );
    // Every operation is one checkout; setup adds one per database.
    let checkouts: u64 = pools
        .values()
        .map(|p| p["checkouts"].as_u64().unwrap())
        .sum();
    assert_eq!(checkouts, reads + writes + 3, "{json}");
    for p in pools.values() {
        assert_eq!(p["checkins"], p["checkouts"]);
        assert!(p["cache"]["hit"].as_u64().unwrap() > 0, "{p}");
    }
    // The workload ran on private copies: the data directory is still empty.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("data"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn stats_rejects_a_bad_workload_duration() {
    let f = Fixture::new(&one_db("", "max_size = 1"));
    for bad in ["0", "5e-324", "NaN", "3601"] {
        let out = litepool(f.dir.path(), &["stats", "--workload", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&out).contains("expected 0.01 to 3600 seconds"),
            "{bad}: {}",
            stderr(&out)
        );
    }
    let out = litepool(f.dir.path(), &["bench", "--seconds", "5e-324"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid --seconds 5e-324: expected 0.01 to 600"),
        "{}",
        stderr(&out)
    );
    assert!(
        !f.path("data/main.db").exists(),
        "refused before any file is touched"
    );
}

#[test]
fn stats_prints_the_prometheus_text_format() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let args = [
        "stats",
        "--config",
        config.to_str().unwrap(),
        "--env",
        "test",
        "--format",
        "prometheus",
        "--workload",
        "0.2",
        "--threads",
        "2",
    ];
    let out = litepool(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let families = families_of_the_one_list(&text);
    for name in [
        "db_client_connection_count",
        "db_client_connection_pending_requests",
        "db_client_connection_timeouts_total",
        "db_client_connection_wait_time_seconds",
        "litepool_cache_hit_total",
        "litepool_wal_size_bytes",
    ] {
        assert!(families[name] > 0, "samples of {name} in {text}");
    }
    // test.toml: jobs has a pool of 2.
    assert!(
        text.contains("db_client_connection_max{db_client_connection_pool_name=\"jobs\",db_system_name=\"sqlite\"} 2\n"),
        "{text}"
    );
    let checkouts = text
        .lines()
        .find(|l| l.starts_with("db_client_connection_wait_time_seconds_count{db_client_connection_pool_name=\"jobs\""))
        .unwrap();
    assert!(
        checkouts
            .rsplit_once(' ')
            .unwrap()
            .1
            .parse::<u64>()
            .unwrap()
            > 0,
        "{checkouts}"
    );
}

/// Parses the Prometheus text: every family of `litepool::metrics::METRICS` once, in its
/// order, with its help and type, and every sample under its family's name (a summary adds
/// `_sum` and `_count`). Returns the samples per family.
fn families_of_the_one_list(text: &str) -> std::collections::BTreeMap<String, usize> {
    use litepool::metrics::{Kind, Unit, METRICS};
    let mut families: Vec<(String, String, String)> = Vec::new(); // name, help, type
    let mut samples = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            families.push((name.to_owned(), help.to_owned(), String::new()));
            samples.insert(name.to_owned(), 0);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            let last = families.last_mut().unwrap();
            assert_eq!(last.0, name, "{line}");
            last.2 = kind.to_owned();
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
        let name = series.split('{').next().unwrap();
        let family = &families.last().unwrap().0;
        assert!(
            name == family || name == format!("{family}_sum") || name == format!("{family}_count"),
            "{line}"
        );
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        assert!(series.contains("db_system_name=\"sqlite\""), "{line}");
        *samples.get_mut(family).unwrap() += 1;
    }
    let want: Vec<(String, String, String)> = METRICS
        .iter()
        .map(|d| {
            (
                d.name.to_owned(),
                d.help.to_owned(),
                d.kind.prometheus_type().to_owned(),
            )
        })
        .collect();
    assert_eq!(families, want, "the CLI prints the one list, in order");
    for d in METRICS {
        // The unit is in the name, as Prometheus' conventions and the exporter have it.
        match d.unit {
            Unit::Seconds => assert!(d.name.ends_with("_seconds"), "{}", d.name),
            Unit::Bytes => assert!(d.name.ends_with("_bytes"), "{}", d.name),
            _ => assert!(!d.name.ends_with("_seconds") && !d.name.ends_with("_bytes")),
        }
        assert_eq!(
            d.kind == Kind::Counter,
            d.name.ends_with("_total"),
            "{}",
            d.name
        );
    }
    samples
}

#[test]
fn stats_shows_a_split_databases_write_path_and_checkpoints() {
    let f = Fixture::new(
        "[profiles.p]\njournal_mode = \"wal\"\n\n[databases.main]\npath = \"{data}/main.db\"\nprofile = \"p\"\ncheckpoint = \"background\"\n[databases.main.writer]\nconnection_timeout = \"5s\"\n[databases.main.readers]\nmax_size = 2\n\n[databases.plain]\npath = \"{data}/plain.db\"\nprofile = \"p\"\n",
    );
    let run = |format: &str| {
        let args = [
            "stats",
            "--format",
            format,
            "--workload",
            "0.3",
            "--threads",
            "2",
        ];
        let out = litepool(f.dir.path(), &args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    let text = run("prometheus");
    let families = families_of_the_one_list(&text);
    for name in [
        "litepool_write_queue_wait_seconds",
        "litepool_write_latency_seconds",
        "litepool_write_batch_size",
        "litepool_writes_total",
        "litepool_checkpoints_total",
        "litepool_wal_peak_bytes",
    ] {
        assert!(families[name] > 0, "samples of {name} in {text}");
    }
    let writes = text
        .lines()
        .find(|l| l.starts_with("litepool_writes_total{db_namespace=\"main\""))
        .unwrap();
    assert!(
        writes.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap() > 0,
        "{writes}"
    );
    assert!(
        !text.contains("litepool_writes_total{db_namespace=\"plain\""),
        "no group commit without a split: {text}"
    );

    let json: serde_json::Value = serde_json::from_str(&run("json")).unwrap();
    assert!(!json["sources"].as_array().unwrap().is_empty(), "{json}");
    let main = &json["databases"]["main"];
    assert_eq!(main["profile"], "p", "{main}");
    assert_eq!(main["split"], true, "{main}");
    assert_eq!(
        main["pools"],
        serde_json::json!(["main.writer", "main.readers"])
    );
    assert!(main["write"]["writes"].as_u64().unwrap() > 0, "{main}");
    assert!(
        main["write"]["queue_wait"]["p99_seconds"].is_number(),
        "{main}"
    );
    assert!(main["checkpoint"]["wal_peak_bytes"].is_u64(), "{main}");
    assert!(
        main["since"].is_string() && main["elapsed_seconds"].is_number(),
        "{main}"
    );
    let plain = &json["databases"]["plain"];
    assert!(
        plain["write"].is_null() && plain["checkpoint"].is_null(),
        "{plain}"
    );
    // The profile in force on a pool: the database's, with what its role adds.
    let writer = json["pools"]["main.writer"]["profile"].as_str().unwrap();
    assert!(
        writer.starts_with("p (") && writer.ends_with("(writer)"),
        "{writer}"
    );

    // docs/statistics.md lists every field and every metric.
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/statistics.md"))
            .unwrap();
    let mut objects = vec![
        &json,
        main,
        &main["write"],
        &main["checkpoint"],
        &main["write"]["latency"],
    ];
    objects.push(&json["pools"]["main.writer"]);
    objects.push(&json["pools"]["main.writer"]["cache"]);
    for o in objects {
        for key in o.as_object().unwrap().keys() {
            assert!(
                doc.contains(&format!("`{key}`")),
                "docs/statistics.md: `{key}`"
            );
        }
    }
    for d in litepool::metrics::METRICS {
        assert!(
            doc.contains(&format!("| `{}` |", d.name)),
            "docs/statistics.md: {}",
            d.name
        );
        assert!(
            doc.contains(&format!("`{}`", d.otel)),
            "docs/statistics.md: {}",
            d.otel
        );
    }

    let table = run("text");
    assert!(table.contains("write queue wait p50 "), "{table}");
    assert!(
        table.contains("write: no split, no group commit"),
        "{table}"
    );
    assert!(table.contains("checkpoints: restart "), "{table}");
}
