//! diesel and deadpool-sqlite pools with the shipped profiles, and the metrics names
//! (features `diesel`, `deadpool`, `metrics`).

#[cfg(any(feature = "diesel", feature = "deadpool"))]
use crate::common::*;

/// The shipped `recommended` profile on `jobs`, split or not, in a fixture.
#[cfg(any(feature = "diesel", feature = "deadpool"))]
fn jobs(split: bool) -> Fixture {
    let extra = if split {
        "[databases.jobs.writer]\n[databases.jobs.readers]\nmax_size = 4\n"
    } else {
        ""
    };
    Fixture::new(&format!(
        "{}\n[databases.jobs]\npath = \"{{data}}/jobs.db\"\nprofile = \"recommended\"\n[databases.jobs.pool]\nmax_size = 8\nconnection_timeout = \"30s\"\n{extra}",
        shipped_profiles()
    ))
}

#[cfg(feature = "diesel")]
mod diesel_pools {
    use super::*;
    use diesel::RunQueryDsl;
    use litepool::profile::Raw;

    #[test]
    fn every_pragma_reads_back_on_every_diesel_connection() {
        let f = jobs(false);
        let settings = f.load().unwrap();
        let pools = litepool::diesel::Pools::new(&settings).unwrap();
        let profile = &settings.databases["jobs"].profile;
        // All 8 at once: 8 physical connections, each customized and verified.
        let mut conns: Vec<_> = (0..8).map(|_| pools.get("jobs").unwrap()).collect();
        for c in &mut conns {
            let readings = profile.read_back(&mut **c, "jobs").unwrap();
            assert_eq!(readings.len(), profile.settings().len());
            assert!(readings.iter().all(|r| r.ok()), "{readings:?}");
            let journal = readings
                .iter()
                .find(|r| r.pragma == "journal_mode")
                .unwrap();
            assert_eq!(journal.actual, Raw::Text("wal".into()));
            let cache = readings.iter().find(|r| r.pragma == "cache_size").unwrap();
            assert_eq!(cache.actual, Raw::Int(-8192));
        }
        drop(conns);
        let s = pools.stats_for("jobs").unwrap();
        assert_eq!((s.connections, s.customizer_failures), (8, 0));
        // The file really is in WAL (read without diesel).
        let mode: String = rusqlite::Connection::open(f.path("data/jobs.db"))
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn eight_threads_of_read_then_write_through_diesel_never_see_busy() {
        for split in [false, true] {
            let f = jobs(split);
            let pools = litepool::diesel::Pools::new(&f.load().unwrap()).unwrap();
            diesel::sql_query("CREATE TABLE counter(id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
                .execute(&mut pools.writer("jobs").unwrap())
                .unwrap();
            diesel::sql_query("INSERT INTO counter VALUES (1, 0)")
                .execute(&mut pools.writer("jobs").unwrap())
                .unwrap();
            #[derive(diesel::QueryableByName)]
            struct N {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let busy = std::sync::atomic::AtomicU64::new(0);
            std::thread::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|| {
                        for _ in 0..100 {
                            // Read, then write, in one transaction: BEGIN IMMEDIATE from the profile.
                            let r: Result<usize, diesel::result::Error> = pools
                                .transaction("jobs", |conn| {
                                    let N { n } =
                                        diesel::sql_query("SELECT n FROM counter WHERE id = 1")
                                            .get_result::<N>(conn)?;
                                    diesel::sql_query(format!(
                                        "UPDATE counter SET n = {} WHERE id = 1",
                                        n + 1
                                    ))
                                    .execute(conn)
                                })
                                .unwrap();
                            if let Err(e) = r {
                                assert!(e.to_string().contains("locked"), "{e}");
                                busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                    });
                }
            });
            assert_eq!(busy.into_inner(), 0, "split = {split}");
            let reader = if split {
                pools.reader("jobs")
            } else {
                pools.get("jobs")
            };
            let N { n } = diesel::sql_query("SELECT n FROM counter WHERE id = 1")
                .get_result::<N>(&mut reader.unwrap())
                .unwrap();
            assert_eq!(n, 800, "every increment committed, none lost");
        }
    }

    #[test]
    fn diesel_readers_are_read_only() {
        let f = jobs(true);
        let pools = litepool::diesel::Pools::new(&f.load().unwrap()).unwrap();
        diesel::sql_query("CREATE TABLE t(x)")
            .execute(&mut pools.writer("jobs").unwrap())
            .unwrap();
        let e = diesel::sql_query("INSERT INTO t VALUES (1)")
            .execute(&mut pools.reader("jobs").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("readonly"), "{e}");
        let e = pools.get("jobs").map(drop).unwrap_err().to_string();
        assert!(e.contains("split into a writer and readers"), "{e}");
    }
}

#[cfg(feature = "deadpool")]
mod deadpool_pools {
    use super::*;
    use litepool::profile::Raw;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_pragma_reads_back_on_every_deadpool_connection() {
        let f = jobs(false);
        let settings = f.load().unwrap();
        let pools = litepool::deadpool::Pools::new(&settings).unwrap();
        let profile = settings.databases["jobs"].profile.clone();
        let mut conns = Vec::new();
        for _ in 0..8 {
            conns.push(pools.get("jobs").await.unwrap());
        }
        for c in &conns {
            let p = profile.clone();
            let readings = c
                .interact(move |conn| p.read_back(conn, "jobs"))
                .await
                .unwrap()
                .unwrap();
            assert!(readings.iter().all(|r| r.ok()), "{readings:?}");
            let journal = readings
                .iter()
                .find(|r| r.pragma == "journal_mode")
                .unwrap();
            assert_eq!(journal.actual, Raw::Text("wal".into()));
        }
        assert_eq!(pools.pool("jobs").unwrap().status().size, 8);
        // The same statistics as litepool's own pools (but hold times).
        let stats = pools.stats_for("jobs").unwrap();
        assert_eq!(
            (
                stats.connections,
                stats.connections_created,
                stats.customizer_failures,
                stats.checkouts
            ),
            (8, 8, 0, 8),
            "{stats:?}"
        );
        assert!(stats.create.count == 8 && stats.create.max > std::time::Duration::ZERO);
        // The pragma guard is on deadpool connections too.
        let e = conns[0]
            .interact(|c| c.execute_batch("PRAGMA foreign_keys = OFF"))
            .await
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(e.contains("not authorized"), "{e}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn eight_tasks_of_read_then_write_through_deadpool_never_see_busy() {
        let f = jobs(true);
        let pools = litepool::deadpool::Pools::new(&f.load().unwrap()).unwrap();
        pools
            .writer("jobs")
            .await
            .unwrap()
            .interact(|c| {
                c.execute_batch("CREATE TABLE counter(id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO counter VALUES (1, 0);")
            })
            .await
            .unwrap()
            .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let pools = pools.clone();
            tasks.push(tokio::spawn(async move {
                let mut busy = 0;
                for _ in 0..100 {
                    let w = pools.writer("jobs").await.unwrap();
                    let r = w
                        .interact(|c| -> rusqlite::Result<()> {
                            let tx = c.transaction()?; // BEGIN IMMEDIATE (the writer's profile)
                            let n: i64 = tx.query_row("SELECT n FROM counter", [], |r| r.get(0))?;
                            tx.execute("UPDATE counter SET n = ?1", [n + 1])?;
                            tx.commit()
                        })
                        .await
                        .unwrap();
                    if r.is_err() {
                        busy += 1;
                    }
                }
                busy
            }));
        }
        let mut busy = 0;
        for t in tasks {
            busy += t.await.unwrap();
        }
        assert_eq!(busy, 0);
        let writer = pools.stats_for("jobs.writer").unwrap();
        assert_eq!((writer.checkouts, writer.timeouts), (801, 0), "{writer:?}");
        let n: i64 = pools
            .reader("jobs")
            .await
            .unwrap()
            .interact(|c| c.query_row("SELECT n FROM counter", [], |r| r.get(0)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 800);
        // Readers are query_only, and cannot turn it off.
        let e = pools
            .reader("jobs")
            .await
            .unwrap()
            .interact(|c| c.execute_batch("PRAGMA query_only = 0; DELETE FROM counter;"))
            .await
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(e.contains("not authorized"), "{e}");
    }
}

#[cfg(feature = "metrics")]
mod metrics_names {
    use litepool::metrics::names;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use metrics_util::MetricKind;

    #[test]
    fn pool_statistics_are_exported_under_opentelemetry_names() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let dir = tempfile::tempdir().unwrap();
        let toml = format!(
            // A timeout long enough for a loaded machine to open two connections (the third
            // checkout waits it out in full).
            "[databases.jobs]\npath = \"{}/jobs.db\"\n[databases.jobs.pool]\nmax_size = 2\nconnection_timeout = \"2s\"\n",
            dir.path().display()
        );
        metrics::with_local_recorder(&recorder, || {
            let pools =
                litepool::Pools::new(&litepool::Settings::from_toml(&toml).unwrap()).unwrap();
            let (a, b) = (pools.get("jobs").unwrap(), pools.get("jobs").unwrap());
            a.execute_batch("CREATE TABLE t(x)").unwrap();
            assert!(pools.get("jobs").is_err(), "a timeout");
            drop((a, b));
            // The watcher publishes every 500ms; publish now instead of waiting for it.
            pools.publish_metrics();
            drop(pools);
        });
        let snapshot = snapshotter.snapshot().into_vec();
        let find = |name: &str, state: Option<&str>| -> (MetricKind, &DebugValue) {
            snapshot
                .iter()
                .find(|(k, ..)| {
                    let key = k.key();
                    key.name() == name
                        && key
                            .labels()
                            .any(|l| l.key() == names::POOL && l.value() == "jobs")
                        && key
                            .labels()
                            .any(|l| l.key() == names::SYSTEM && l.value() == "sqlite")
                        && state.is_none_or(|s| {
                            key.labels()
                                .any(|l| l.key() == names::STATE && l.value() == s)
                        })
                })
                .map(|(k, _, _, v)| (k.kind(), v))
                .unwrap_or_else(|| panic!("{name} {state:?} missing from {snapshot:#?}"))
        };
        assert!(
            matches!(find(names::MAX, None), (MetricKind::Gauge, DebugValue::Gauge(v)) if v.into_inner() == 2.0)
        );
        assert!(matches!(
            find(names::IDLE_MIN, None),
            (MetricKind::Gauge, _)
        ));
        assert!(
            matches!(find(names::COUNT, Some("idle")), (MetricKind::Gauge, DebugValue::Gauge(v)) if v.into_inner() == 2.0)
        );
        assert!(
            matches!(find(names::COUNT, Some("used")), (MetricKind::Gauge, DebugValue::Gauge(v)) if v.into_inner() == 0.0)
        );
        assert!(matches!(find(names::PENDING, None), (MetricKind::Gauge, _)));
        assert!(matches!(
            find(names::TIMEOUTS, None),
            (MetricKind::Counter, DebugValue::Counter(1))
        ));
        for h in [names::CREATE_TIME, names::WAIT_TIME, names::USE_TIME] {
            match find(h, None) {
                (MetricKind::Histogram, DebugValue::Histogram(v)) => assert!(!v.is_empty(), "{h}"),
                other => panic!("{h}: {other:?}"),
            }
        }
        match find(names::CREATE_TIME, None).1 {
            // Two connections opened, in seconds (well under one).
            DebugValue::Histogram(v) => assert!(
                v.len() >= 2 && v.iter().all(|s| s.into_inner() < 1.0),
                "{v:?}"
            ),
            _ => unreachable!(),
        }
        assert!(matches!(
            find(names::CACHE_HIT, None),
            (MetricKind::Counter, _)
        ));
        assert!(matches!(
            find(names::CACHE_USED, None),
            (MetricKind::Gauge, _)
        ));
    }

    /// The exporter registers every metric of the one list, under its name, kind, unit and
    /// help, and nothing else; database metrics carry the database's name.
    #[test]
    fn the_exporter_exports_the_one_list() {
        use litepool::metrics::{Kind, Scope, METRICS};
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let dir = tempfile::tempdir().unwrap();
        let toml = format!(
            "[profiles.p]\njournal_mode = \"wal\"\n[databases.main]\npath = \"{0}/main.db\"\nprofile = \"p\"\ncheckpoint = \"background\"\n[databases.main.writer]\nconnection_timeout = \"5s\"\n[databases.plain]\npath = \"{0}/plain.db\"\nprofile = \"p\"\n",
            dir.path().display()
        );
        metrics::with_local_recorder(&recorder, || {
            let pools =
                litepool::Pools::new(&litepool::Settings::from_toml(&toml).unwrap()).unwrap();
            pools
                .write("main", |c| c.execute_batch("CREATE TABLE t(x)"))
                .unwrap();
            drop(pools.reader("main").unwrap());
            pools.publish_metrics();
            drop(pools);
        });
        let snapshot = snapshotter.snapshot().into_vec();
        let mut seen = std::collections::BTreeSet::new();
        for (key, unit, help, _) in &snapshot {
            let name = key.key().name();
            let d = METRICS
                .iter()
                .find(|d| d.name == name)
                .unwrap_or_else(|| panic!("{name} is not in METRICS"));
            let kind = match d.kind {
                Kind::Counter => MetricKind::Counter,
                Kind::Gauge => MetricKind::Gauge,
                _ => MetricKind::Histogram,
            };
            assert_eq!(key.kind(), kind, "{name}");
            assert_eq!(*unit, Some(d.unit.to_metrics()), "{name}");
            assert_eq!(help.as_deref(), Some(d.help), "{name}");
            let label = match d.scope {
                Scope::Pool => names::POOL,
                Scope::Database => names::DATABASE,
            };
            assert!(
                key.key().labels().any(|l| l.key() == label),
                "{name}: {key:?}"
            );
            seen.insert(name.to_owned());
        }
        // The replica gauges need a read replica (Litestream's VFS, in a process started for it):
        // tests/read_replica.rs checks them.
        let all: std::collections::BTreeSet<String> = METRICS
            .iter()
            .map(|d| d.name.to_owned())
            .filter(|n| !n.starts_with("litepool_replica_"))
            .collect();
        assert_eq!(seen, all, "every metric of the list is exported");
        let writes = snapshot
            .iter()
            .find(|(k, ..)| {
                k.key().name() == names::WRITES
                    && k.key()
                        .labels()
                        .any(|l| l.key() == names::DATABASE && l.value() == "main")
            })
            .map(|(.., v)| v);
        assert!(matches!(writes, Some(DebugValue::Counter(1))), "{writes:?}");
        // Without a split there is no group commit, and no write series (as in the CLI).
        assert!(!snapshot
            .iter()
            .any(|(k, ..)| k.key().name() == names::WRITES
                && k.key().labels().any(|l| l.value() == "plain")));
    }
}
