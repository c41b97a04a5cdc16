//! Group commit tells every caller the truth: each test builds one batch in a known order (the
//! leader's closure holds the batch open until the others have queued), then checks each
//! caller's answer against the rows on disk after reopening the file and against
//! `write_stats()`.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use litepool::{Error, Handle, Pools};

use crate::common::*;

/// A split `audit` database; `max_batch_time` is long, so that a batch held open by its first
/// closure still takes every closure queued behind it.
fn fixture(writer: &str) -> Fixture {
    Fixture::new(&format!(
        "{}\n[databases.audit]\npath = \"{{data}}/audit.db\"\nprofile = \"recommended\"\n[databases.audit.writer]\nmax_batch_time = \"10s\"\n{writer}\n[databases.audit.readers]\nmax_size = 2\n",
        shipped_profiles()
    ))
}

/// The same `audit` database without a split; `pool` holds its `[databases.audit.pool]` keys.
fn plain(pool: &str) -> Fixture {
    Fixture::new(&format!(
        "{}\n[databases.audit]\npath = \"{{data}}/audit.db\"\nprofile = \"recommended\"\n[databases.audit.pool]\n{pool}\n",
        shipped_profiles()
    ))
}

/// Commits row 1 of `t` before the case starts.
fn seed(pools: &Pools) {
    pools
        .write("audit", |c| {
            c.execute("INSERT INTO t VALUES (1)", []).map(drop)
        })
        .unwrap();
}

fn open(f: &Fixture) -> Pools {
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    pools
        .writer("audit")
        .unwrap()
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY);
             CREATE TABLE IF NOT EXISTS parent(id INTEGER PRIMARY KEY);
             CREATE TABLE IF NOT EXISTS child(id INTEGER PRIMARY KEY,
                 parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
             CREATE TABLE IF NOT EXISTS guarded(id INTEGER PRIMARY KEY);
             CREATE TRIGGER IF NOT EXISTS no_13 BEFORE INSERT ON guarded WHEN NEW.id = 13
                 BEGIN SELECT RAISE(ROLLBACK, 'thirteen refused'); END;",
        )
        .unwrap();
    pools
}

/// The ids in `table`, read from the file by a fresh connection after the pools are gone.
fn on_disk(f: &Fixture, table: &str) -> Vec<i64> {
    let c = rusqlite::Connection::open(f.path("data/audit.db")).unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mut stmt = c
        .prepare(&format!("SELECT id FROM {table} ORDER BY id"))
        .unwrap();
    let ids = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    ids
}

type Body = Box<dyn FnOnce(&mut litepool::WriteConn<'_>) -> rusqlite::Result<()> + Send>;

/// Runs `bodies` as one batch, in order: the first leads and waits inside its closure until
/// every other has queued behind it. Returns each caller's answer, in the same order.
fn one_batch(audit: &Handle, bodies: Vec<Body>) -> Vec<litepool::Result<()>> {
    let mut bodies = bodies.into_iter();
    let first = bodies.next().unwrap();
    let (entered_tx, entered) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let leader = {
            let audit = audit.clone();
            s.spawn(move || {
                audit.write(move |c| {
                    entered_tx.send(()).unwrap();
                    released.recv().unwrap();
                    first(c)
                })
            })
        };
        entered.recv().unwrap();
        let mut followers = Vec::new();
        for (i, body) in bodies.enumerate() {
            let audit2 = audit.clone();
            followers.push(s.spawn(move || audit2.write(body)));
            // Queued in this order: wait until this one is in the queue.
            let deadline = Instant::now() + Duration::from_secs(10);
            while audit.write_stats().unwrap().queued < i as u64 + 1 {
                assert!(Instant::now() < deadline, "follower {i} never queued");
                std::thread::yield_now();
            }
        }
        release.send(()).unwrap();
        let mut out = vec![leader.join().unwrap()];
        out.extend(followers.into_iter().map(|h| h.join().unwrap()));
        out
    })
}

fn insert(table: &'static str, id: i64) -> Body {
    Box::new(move |c| {
        c.execute(&format!("INSERT INTO {table}(id) VALUES (?1)"), [id])
            .map(drop)
    })
}

fn sql(text: &'static str) -> Body {
    Box::new(move |c| c.execute_batch(text))
}

fn is_rolled_back(r: &litepool::Result<()>) -> bool {
    matches!(r, Err(e @ Error::RolledBack { .. }) if e.is_retryable())
}

#[test]
fn insert_or_rollback_in_a_batch_fails_the_writes_before_it_and_commits_those_after() {
    let f = fixture("");
    let pools = open(&f);
    seed(&pools);
    let audit = pools.handle("audit").unwrap();
    let out = one_batch(
        &audit,
        vec![
            insert("t", 5),
            insert("t", 3),
            sql("INSERT OR ROLLBACK INTO t VALUES (1)"),
            insert("t", 2),
        ],
    );
    assert!(is_rolled_back(&out[0]), "{:?}", out[0]);
    assert!(is_rolled_back(&out[1]), "{:?}", out[1]);
    let e = out[2].as_ref().unwrap_err();
    assert!(e.to_string().contains("UNIQUE constraint failed"), "{e}");
    assert!(out[3].is_ok(), "{:?}", out[3]);
    let stats = audit.write_stats().unwrap();
    assert_eq!(
        (stats.writes, stats.failed_writes, stats.rolled_back),
        (2, 3, 2)
    );
    drop((audit, pools));
    assert_eq!(on_disk(&f, "t"), vec![1, 2]);
}

#[test]
fn a_trigger_raising_rollback_is_told_to_every_caller_of_its_batch() {
    let f = fixture("");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let out = one_batch(
        &audit,
        vec![
            insert("guarded", 1),
            insert("guarded", 13),
            insert("guarded", 2),
        ],
    );
    assert!(is_rolled_back(&out[0]), "{:?}", out[0]);
    assert!(
        out[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("thirteen refused"),
        "{:?}",
        out[1]
    );
    assert!(out[2].is_ok(), "{:?}", out[2]);
    let stats = audit.write_stats().unwrap();
    assert_eq!(
        (stats.writes, stats.failed_writes, stats.rolled_back),
        (1, 2, 1)
    );
    drop((audit, pools));
    assert_eq!(on_disk(&f, "guarded"), vec![2]);
}

#[test]
fn a_closure_that_ignores_the_rollback_and_goes_on_commits_nothing() {
    let f = fixture("");
    let pools = open(&f);
    seed(&pools);
    let audit = pools.handle("audit").unwrap();
    let out = one_batch(
        &audit,
        vec![
            insert("t", 3),
            Box::new(|c| {
                // The conflict rolls the whole transaction back; the closure shrugs and goes on
                // in autocommit mode, which must not commit anything.
                let _ = c.execute("INSERT OR ROLLBACK INTO t VALUES (1)", []);
                let _ = c.execute("INSERT INTO t VALUES (7)", []);
                Ok(())
            }),
            insert("t", 4),
        ],
    );
    assert!(is_rolled_back(&out[0]), "{:?}", out[0]);
    assert!(is_rolled_back(&out[1]), "{:?}", out[1]);
    assert!(out[2].is_ok(), "{:?}", out[2]);
    let stats = audit.write_stats().unwrap();
    assert_eq!((stats.writes, stats.failed_writes), (2, 2));
    drop((audit, pools));
    assert_eq!(on_disk(&f, "t"), vec![1, 4]);
}

#[test]
fn a_closure_cannot_commit_or_roll_back_the_batch_itself() {
    for statement in [
        "COMMIT",
        "ROLLBACK",
        "BEGIN",
        "RELEASE litepool_write",
        "END",
    ] {
        let f = fixture("");
        let pools = open(&f);
        let audit = pools.handle("audit").unwrap();
        let out = one_batch(
            &audit,
            vec![
                insert("t", 1),
                Box::new(move |c| {
                    c.execute("INSERT INTO t VALUES (2)", [])?;
                    c.execute_batch(statement)
                }),
                insert("t", 3),
            ],
        );
        assert!(out[0].is_ok() && out[2].is_ok(), "{statement}: {out:?}");
        let e = out[1].as_ref().unwrap_err().to_string();
        // litepool's savepoint has a name drawn at random per process: a closure cannot name
        // it, so releasing `litepool_write` finds no such savepoint and fails that closure only.
        assert!(
            e.contains("not authorized by litepool's guard")
                && e.contains("inside a write closure the transaction is litepool's")
                || statement.starts_with("RELEASE")
                    && e.contains("no such savepoint: litepool_write"),
            "{statement}: {e}"
        );
        let stats = audit.write_stats().unwrap();
        assert_eq!((stats.writes, stats.failed_writes), (2, 1), "{statement}");
        drop((audit, pools));
        assert_eq!(on_disk(&f, "t"), vec![1, 3], "{statement}");
    }
}

#[test]
fn a_failing_commit_fails_every_caller_of_its_batch_with_sqlites_code() {
    let f = fixture("");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    // A deferred foreign key is checked at COMMIT: the whole batch's COMMIT fails.
    let out = one_batch(
        &audit,
        vec![
            insert("t", 1),
            sql("INSERT INTO child(id, parent) VALUES (1, 99)"),
            insert("t", 2),
        ],
    );
    for r in &out {
        let e = r.as_ref().unwrap_err();
        assert!(matches!(e, Error::Commit { .. }), "{e:?}");
        assert_eq!(
            e.sqlite_code(),
            Some(rusqlite::ErrorCode::ConstraintViolation),
            "{e}"
        );
        assert!(
            e.to_string().contains("FOREIGN KEY constraint failed"),
            "{e}"
        );
    }
    let stats = audit.write_stats().unwrap();
    assert_eq!(
        (stats.writes, stats.failed_writes, stats.failed_batches),
        (0, 3, 1)
    );
    // The writer is usable afterwards: no transaction was left open.
    audit
        .write(|c| c.execute("INSERT INTO t VALUES (9)", []).map(drop))
        .unwrap();
    drop((audit, pools));
    assert_eq!(on_disk(&f, "t"), vec![9]);
    assert_eq!(on_disk(&f, "child"), Vec::<i64>::new());
}

#[test]
fn a_closure_that_panics_fails_alone() {
    let f = fixture("");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let out = one_batch(
        &audit,
        vec![
            insert("t", 1),
            Box::new(|c| {
                c.execute("INSERT INTO t VALUES (2)", [])?;
                panic!("boom in a closure");
            }),
            insert("t", 3),
        ],
    );
    assert!(out[0].is_ok() && out[2].is_ok(), "{out:?}");
    let e = out[1].as_ref().unwrap_err();
    assert!(
        matches!(e, Error::Panicked { message, .. } if message == "boom in a closure"),
        "{e:?}"
    );
    let stats = audit.write_stats().unwrap();
    assert_eq!((stats.writes, stats.failed_writes), (2, 1));
    drop((audit, pools));
    assert_eq!(on_disk(&f, "t"), vec![1, 3]);
}

#[test]
fn a_leader_whose_own_closure_fails_still_commits_its_followers() {
    let f = fixture("");
    let pools = open(&f);
    seed(&pools);
    let audit = pools.handle("audit").unwrap();
    let out = one_batch(&audit, vec![insert("t", 1), insert("t", 2), insert("t", 3)]);
    assert!(out[0].as_ref().unwrap_err().to_string().contains("UNIQUE"));
    assert!(out[1].is_ok() && out[2].is_ok(), "{out:?}");
    drop((audit, pools));
    assert_eq!(on_disk(&f, "t"), vec![1, 2, 3]);
}

#[test]
fn write_or_writer_from_inside_a_closure_fails_at_once_and_others_carry_on() {
    let f = fixture("connection_timeout = \"5s\"");
    let pools = open(&f);
    let inner = pools.clone();
    let started = Instant::now();
    let (nested_write, nested_writer) = pools
        .write("audit", move |c| {
            c.execute("INSERT INTO t VALUES (1)", [])?;
            let w = inner.write("audit", |c| {
                c.execute("INSERT INTO t VALUES (2)", []).map(drop)
            });
            let r = inner.writer("audit").map(drop);
            Ok((w, r))
        })
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    for (e, call) in [(nested_write, "write"), (nested_writer, "writer()")] {
        let e = e.unwrap_err();
        assert!(matches!(e, Error::Reentrant { .. }), "{e:?}");
        assert!(e.to_string().contains(call), "{e}");
    }
    // Other writers carry on.
    std::thread::scope(|s| {
        for i in 10..14 {
            let pools = &pools;
            s.spawn(move || {
                pools
                    .write("audit", move |c| {
                        c.execute("INSERT INTO t VALUES (?1)", [i]).map(drop)
                    })
                    .unwrap()
            });
        }
    });
    let stats = pools.handle("audit").unwrap().write_stats().unwrap();
    assert_eq!(
        (stats.writes, stats.failed_writes, stats.reentrant),
        (5, 1, 1)
    );
    drop(pools); // returns: nothing to join
    assert_eq!(on_disk(&f, "t"), vec![1, 10, 11, 12, 13]);
}

#[test]
fn a_slow_closure_makes_the_writes_behind_it_time_out_naming_it() {
    let f = fixture("connection_timeout = \"300ms\"");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let (entered_tx, entered) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let slow = {
            let audit = audit.clone();
            s.spawn(move || {
                audit.write(move |c| {
                    c.execute("INSERT INTO t VALUES (1)", [])?;
                    entered_tx.send(()).unwrap();
                    released.recv().unwrap(); // held until the other caller has its answer
                    Ok(())
                })
            })
        };
        entered.recv().unwrap();
        let started = Instant::now();
        let r = audit.write(|c| c.execute("INSERT INTO t VALUES (2)", []).map(drop));
        let waited = started.elapsed();
        release.send(()).unwrap();
        let e = r.unwrap_err();
        assert!(matches!(e, Error::WriteTimeout { .. }), "{e:?}");
        assert!(e.is_retryable());
        assert!(
            e.to_string()
                .contains("a write closure has been running for"),
            "{e}"
        );
        assert!(waited < Duration::from_secs(5), "bounded: {waited:?}");
        slow.join().unwrap().unwrap();
    });
    // The writer itself held by pools.writer(): the same bound, its own cause.
    let held = pools.writer("audit").unwrap();
    let e = audit
        .write(|c| c.execute("INSERT INTO t VALUES (3)", []).map(drop))
        .unwrap_err();
    assert!(
        e.to_string().contains("pools.writer() caller holds it"),
        "{e}"
    );
    drop(held);
    let stats = audit.write_stats().unwrap();
    assert_eq!(
        (stats.writes, stats.failed_writes, stats.timeouts),
        (1, 2, 2)
    );
    drop((audit, pools));
    assert_eq!(on_disk(&f, "t"), vec![1]);
}

#[test]
fn write_without_a_split_keeps_the_same_promises() {
    let f = plain("");
    let pools = open(&f);
    seed(&pools);
    let r = pools.write("audit", |c| {
        let _ = c.execute("INSERT OR ROLLBACK INTO t VALUES (1)", []);
        c.execute("INSERT INTO t VALUES (5)", []).map(drop)
    });
    assert!(r.is_err(), "{r:?}");
    let r = pools.write("audit", |c| {
        c.execute_batch("INSERT INTO t VALUES (6); COMMIT")
    });
    assert!(r.unwrap_err().to_string().contains("not authorized"));
    let inner = pools.clone();
    let nested = pools
        .write("audit", move |_| {
            Ok(inner.write("audit", |c| {
                c.execute("INSERT INTO t VALUES (8)", []).map(drop)
            }))
        })
        .unwrap();
    assert!(matches!(nested, Err(Error::Reentrant { .. })), "{nested:?}");
    let panicked = pools.write("audit", |c| -> rusqlite::Result<()> {
        c.execute("INSERT INTO t VALUES (9)", [])?;
        panic!("boom")
    });
    assert!(matches!(panicked, Err(Error::Panicked { .. })));
    drop(pools);
    assert_eq!(on_disk(&f, "t"), vec![1]);
}

#[test]
fn a_panic_payload_whose_drop_panics_fails_its_write_alone() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                panic!("the payload's drop panicked");
            }
        }
    }
    let f = fixture("connection_timeout = \"2s\"");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let out = one_batch(
        &audit,
        vec![
            insert("t", 1),
            Box::new(|c| {
                c.execute("INSERT INTO t VALUES (2)", [])?;
                std::panic::panic_any(Bomb)
            }),
            insert("t", 3),
        ],
    );
    assert!(out[0].is_ok() && out[2].is_ok(), "{out:?}");
    assert!(
        matches!(out[1], Err(Error::Panicked { .. })),
        "{:?}",
        out[1]
    );
    // The write path still works afterwards.
    audit
        .write(|c| c.execute("INSERT INTO t VALUES (4)", []).map(drop))
        .unwrap();
    let stats = audit.write_stats().unwrap();
    assert_eq!((stats.writes, stats.failed_writes, stats.queued), (3, 1, 0));
    drop((audit, pools));
    assert_eq!(on_disk(&f, "t"), vec![1, 3, 4]);
}

#[test]
fn writer_inside_a_write_closure_without_a_split_fails_at_once() {
    let f = plain("max_size = 4");
    let pools = open(&f);
    let inner = pools.clone();
    let started = Instant::now();
    let (writer, get) = pools
        .write("audit", move |c| {
            c.execute("INSERT INTO t VALUES (1)", [])?;
            Ok((
                inner.writer("audit").map(drop),
                inner.get("audit").map(drop),
            ))
        })
        .unwrap();
    assert!(started.elapsed() < Duration::from_millis(100));
    for r in [writer, get] {
        let e = r.unwrap_err();
        assert!(matches!(e, Error::Reentrant { .. }), "{e:?}");
    }
    // Reading from the pool inside a closure stays allowed.
    let inner = pools.clone();
    let n = pools
        .write("audit", move |_| {
            Ok(inner
                .reader("audit")
                .map(|r| r.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))))
        })
        .unwrap();
    assert_eq!(n.unwrap().unwrap(), 1);
    drop(pools);
    assert_eq!(on_disk(&f, "t"), vec![1]);
}

#[test]
fn a_write_lock_held_by_another_connection_is_waited_for_only_as_long_as_connection_timeout() {
    for split in [true, false] {
        let f = if split {
            fixture("connection_timeout = \"300ms\"")
        } else {
            plain("max_size = 4\nconnection_timeout = \"300ms\"")
        };
        let pools = open(&f);
        // busy_timeout is 5s in the profile; another process holds the write lock.
        let other = rusqlite::Connection::open(f.path("data/audit.db")).unwrap();
        other
            .execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (99)")
            .unwrap();
        let started = Instant::now();
        let r = pools.write("audit", |c| {
            c.execute("INSERT INTO t VALUES (1)", []).map(drop)
        });
        let waited = started.elapsed();
        let e = r.unwrap_err();
        assert!(
            matches!(e, Error::WriteTimeout { .. }),
            "split={split}: {e:?}"
        );
        assert!(
            e.to_string()
                .contains("another connection held the database's write lock"),
            "{e}"
        );
        assert!(
            waited < Duration::from_secs(3),
            "split={split}: waited {waited:?}"
        );
        other.execute_batch("COMMIT").unwrap();
        // The connection's own busy_timeout is back to the profile's.
        let busy: i64 = pools
            .writer("audit")
            .unwrap()
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap();
        assert_eq!(busy, 5000, "split={split}");
        pools
            .write("audit", |c| {
                c.execute("INSERT INTO t VALUES (2)", []).map(drop)
            })
            .unwrap();
        if split {
            let stats = pools.handle("audit").unwrap().write_stats().unwrap();
            assert_eq!(
                (stats.writes, stats.failed_writes, stats.timeouts),
                (1, 1, 1)
            );
        }
        drop(pools);
        assert_eq!(on_disk(&f, "t"), vec![2, 99], "split={split}");
    }
}

#[test]
fn background_checkpoints_bound_the_wal_for_writers_outside_group_commit() {
    for split in [true, false] {
        let f = Fixture::new(&format!(
            "{}\n[databases.audit]\npath = \"{{data}}/audit.db\"\nprofile = \"recommended\"\ncheckpoint = \"background\"\ncheckpoint_wal_size = \"1MiB\"\n{}",
            shipped_profiles(),
            if split { "[databases.audit.writer]\n[databases.audit.readers]\nmax_size = 2\n" } else { "[databases.audit.pool]\nmax_size = 4\n" }
        ));
        let pools = open(&f);
        let wal = f.path("data/audit.db-wal");
        let mut peak = 0;
        let written = std::sync::atomic::AtomicU64::new(0);
        let finished = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                let (pools, written, finished) = (&pools, &written, &finished);
                s.spawn(move || {
                    // A count, not a time: 8.8 MB of rows however loaded the machine is.
                    for _ in 0..1100 {
                        // pools.writer(): not group commit.
                        let mut c = pools.writer("audit").unwrap();
                        let tx = c.transaction().unwrap();
                        tx.execute("INSERT INTO t(id) SELECT max(id) + 1 FROM t", [])
                            .or_else(|_| tx.execute("INSERT INTO t(id) VALUES (1)", []))
                            .unwrap();
                        tx.execute_batch("CREATE TABLE IF NOT EXISTS pad(v BLOB); INSERT INTO pad VALUES (randomblob(1000))")
                            .unwrap();
                        tx.commit().unwrap();
                        written.fetch_add(1000, std::sync::atomic::Ordering::Relaxed);
                    }
                    finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                });
            }
            while finished.load(std::sync::atomic::Ordering::Relaxed) < 8 {
                peak = peak.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let stats = pools.handle("audit").unwrap().checkpoint_stats().unwrap();
        let written = written.into_inner();
        eprintln!("split={split}: {written} bytes written, WAL peak {peak}, {stats:?}");
        assert!(
            written > 8 << 20,
            "split={split}: only {written} bytes written"
        );
        assert!(stats.at_checkin > 0, "split={split}: {stats:?}");
        // The split's one writer checkpoints alone: within twice the 1 MiB threshold. A pool of
        // four writers closes its gate and waits for the transactions in flight, which on this
        // shared 2-core machine under other load let the WAL reach 2.0 to 4.1 MB (four runs
        // that failed a 2 MiB bound); without the gate it reached 18 MiB. Bounded, not exact.
        let bound = if split { 2 << 20 } else { 5 << 20 };
        assert!(
            peak <= bound,
            "split={split}: WAL peaked at {peak} bytes ({stats:?})"
        );
    }
}

#[test]
fn a_busy_timeout_changed_inside_a_closure_is_the_profiles_again_for_the_next_borrower() {
    for split in [true, false] {
        let f = if split {
            fixture("")
        } else {
            plain("max_size = 1")
        };
        let pools = open(&f);
        pools
            .write("audit", |c| {
                c.busy_timeout(Duration::from_millis(1))?;
                c.execute("INSERT INTO t VALUES (1)", []).map(drop)
            })
            .unwrap();
        let busy: i64 = pools
            .writer("audit")
            .unwrap()
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap();
        assert_eq!(busy, 5000, "split={split}");
    }
}

#[test]
fn a_caller_that_leads_hands_the_lead_on_after_a_few_batches() {
    // One closure per batch and a long max_batch_time: before, the first leader kept leading
    // for as long as others queued (its own write took the whole run).
    let f = fixture("max_batch = 1\nconnection_timeout = \"5s\"");
    let pools = open(&f);
    let deadline = Instant::now() + Duration::from_secs(2);
    let slowest: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4i64)
            .map(|t| {
                let pools = &pools;
                s.spawn(move || {
                    let mut slowest = Duration::ZERO;
                    let mut i = 0;
                    while Instant::now() < deadline {
                        i += 1;
                        let id = t * 1_000_000 + i;
                        let started = Instant::now();
                        pools
                            .write("audit", move |c| {
                                c.execute("INSERT INTO t VALUES (?1)", [id]).map(drop)
                            })
                            .unwrap();
                        slowest = slowest.max(started.elapsed());
                    }
                    slowest
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (t, d) in slowest.iter().enumerate() {
        assert!(*d < Duration::from_secs(1), "thread {t} waited {d:?}");
    }
    let stats = pools.handle("audit").unwrap().write_stats().unwrap();
    assert_eq!(stats.failed_writes, 0);
    assert_eq!(stats.max_batch, 1);
}

#[test]
fn a_reader_holding_an_old_snapshot_does_not_make_every_batch_checkpoint() {
    let f = Fixture::new(&format!(
        "{}\n[databases.audit]\npath = \"{{data}}/audit.db\"\nprofile = \"recommended\"\ncheckpoint = \"background\"\ncheckpoint_wal_size = \"64KiB\"\n[databases.audit.writer]\n[databases.audit.readers]\nmax_size = 2\n",
        shipped_profiles()
    ));
    let pools = open(&f);
    pools
        .write("audit", |c| c.execute_batch("CREATE TABLE pad(v BLOB)"))
        .unwrap();
    let mut reader = pools.reader("audit").unwrap();
    let snapshot = reader.transaction().unwrap();
    let _: i64 = snapshot
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    let audit = pools.handle("audit").unwrap();
    for _ in 0..300 {
        audit
            .write(|c| {
                c.execute("INSERT INTO pad VALUES (randomblob(4000))", [])
                    .map(drop)
            })
            .unwrap();
    }
    let writes = audit.write_stats().unwrap();
    let checkpoints = audit.checkpoint_stats().unwrap();
    // About one checkpoint per 64 KiB of new frames (a row is two pages here), not one per
    // batch, which is what a trigger without a floor ran while the snapshot pinned the WAL.
    assert!(writes.checkpoints * 3 < writes.batches, "{writes:?}");
    assert_eq!(
        checkpoints.at_checkin, 0,
        "group commit's checkpoints are its own: {checkpoints:?}"
    );
    drop(snapshot);
}

#[test]
fn writes_through_the_r2d2_pool_itself_are_held_near_twice_the_threshold() {
    // Connections taken from `pool()` directly run no checkpoint at check-in; the thread's
    // backstop steps in at twice checkpoint_wal_size (before it: 7 MiB against 1 MiB).
    let f = Fixture::new(&format!(
        "{}\n[databases.audit]\npath = \"{{data}}/audit.db\"\nprofile = \"recommended\"\ncheckpoint = \"background\"\ncheckpoint_wal_size = \"1MiB\"\n",
        shipped_profiles()
    ));
    let pools = open(&f);
    let raw = pools.pool("audit").unwrap();
    raw.get()
        .unwrap()
        .execute_batch("CREATE TABLE pad(v BLOB)")
        .unwrap();
    let wal = f.path("data/audit.db-wal");
    let mut peak = 0;
    let mut written = 0u64;
    // A count, not a time: on a loaded machine two seconds wrote under 1 MiB.
    for _ in 0..1500 {
        raw.get()
            .unwrap()
            .execute("INSERT INTO pad VALUES (randomblob(1000))", [])
            .unwrap();
        written += 1000;
        peak = peak.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        std::thread::sleep(Duration::from_millis(1));
    }
    let stats = pools.handle("audit").unwrap().checkpoint_stats().unwrap();
    assert!(written > 1 << 20, "only {written} bytes written");
    assert!(stats.restart > 0, "{stats:?}");
    assert!(peak <= 5 << 19, "WAL peaked at {peak} bytes ({stats:?})");
}
