//! `write_async`: the same answers as `write`, awaited on any executor without blocking it.
//! Every test checks the answers against the rows after reopening the file and against
//! `write_stats()`.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use litepool::{Error, Pools};

use crate::common::*;

/// A split `audit` database; `t.v` refuses multiples of 7 (a CHECK constraint), so some writes
/// fail on purpose.
fn split(writer: &str) -> Fixture {
    Fixture::new(&format!(
        "{}\n[databases.audit]\npath = \"{{data}}/audit.db\"\nprofile = \"recommended\"\n[databases.audit.writer]\n{writer}\n[databases.audit.readers]\nmax_size = 2\n",
        shipped_profiles()
    ))
}

/// The same database without a split.
fn plain() -> Fixture {
    Fixture::new(&format!(
        "{}\n[databases.audit]\npath = \"{{data}}/audit.db\"\nprofile = \"recommended\"\n[databases.audit.pool]\nmax_size = 4\n",
        shipped_profiles()
    ))
}

fn open(f: &Fixture) -> Pools {
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    pools
        .writer("audit")
        .unwrap()
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v INTEGER CHECK (v % 7 != 0))",
        )
        .unwrap();
    pools
}

/// The ids in `t`, read by a fresh connection after the pools are gone.
fn on_disk(f: &Fixture) -> BTreeSet<i64> {
    let c = rusqlite::Connection::open(f.path("data/audit.db")).unwrap();
    let mut stmt = c.prepare("SELECT id FROM t").unwrap();
    let ids = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    ids
}

fn insert(id: i64) -> impl FnOnce(&mut litepool::WriteConn<'_>) -> rusqlite::Result<i64> + Send {
    move |c| {
        c.execute("INSERT INTO t(id, v) VALUES (?1, ?1)", [id])?;
        Ok(id)
    }
}

/// Splits answers by id into committed and failed; a failure must be the CHECK constraint.
fn tally(answers: Vec<(i64, litepool::Result<i64>)>) -> (BTreeSet<i64>, BTreeSet<i64>) {
    let (mut ok, mut failed) = (BTreeSet::new(), BTreeSet::new());
    for (id, answer) in answers {
        match answer {
            Ok(got) => {
                assert_eq!(got, id);
                ok.insert(id);
            }
            Err(e) => {
                assert!(
                    e.to_string().contains("CHECK constraint failed"),
                    "{id}: {e}"
                );
                failed.insert(id);
            }
        }
    }
    (ok, failed)
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

/// Polls `fut` once with a waker that does nothing.
fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(Noop));
    fut.poll(&mut Context::from_waker(&waker))
}

#[test]
fn many_tasks_write_async_and_every_answer_matches_the_file_and_the_stats() {
    let f = split("");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let rt = multi_thread();
    let answers = rt.block_on(async {
        let tasks: Vec<_> = (1..=600)
            .map(|id| {
                let audit = audit.clone();
                tokio::spawn(async move { (id, audit.write_async(insert(id)).await) })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        answers
    });
    let (ok, failed) = tally(answers);
    assert_eq!(failed, (1..=600).filter(|i| i % 7 == 0).collect());
    let stats = audit.write_stats().unwrap();
    assert_eq!(stats.writes, ok.len() as u64, "{stats:?}");
    assert_eq!(stats.failed_writes, failed.len() as u64, "{stats:?}");
    assert!(stats.mean_batch > 1.0, "no batch formed: {stats:?}");
    drop((audit, pools));
    assert_eq!(on_disk(&f), ok);
}

#[test]
fn a_current_thread_runtime_is_never_blocked_by_a_waiting_write() {
    let f = split("");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ran_tx, ran_rx) = mpsc::channel::<()>();
    let outcome = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            // The first write's closure waits (on the committer) until another task of this
            // one-thread runtime has run: if awaiting the write blocked the thread, it never
            // would, and the closure gives up after 10 s.
            let blocked = audit.write_async(move |c| {
                ran_rx
                    .recv_timeout(Duration::from_secs(10))
                    .map_err(|_| rusqlite::Error::InvalidQuery)?;
                c.execute("INSERT INTO t(id, v) VALUES (1, 1)", [])
            });
            let others: Vec<_> = (2..=100)
                .map(|id| tokio::spawn(audit.write_async(insert(id))))
                .collect();
            let unblock = tokio::spawn(async move { ran_tx.send(()).unwrap() });
            let first = blocked.await;
            unblock.await.unwrap();
            let mut rest = Vec::new();
            for (id, t) in (2..=100).zip(others) {
                rest.push((id, t.await.unwrap()));
            }
            (first, rest)
        })
        .await
    });
    let (first, rest) = outcome.expect("writes awaited on a current-thread runtime hung");
    assert_eq!(first.unwrap(), 1, "the executor thread was blocked");
    let (mut ok, failed) = tally(rest);
    ok.insert(1);
    assert_eq!(failed, (2..=100).filter(|i| i % 7 == 0).collect());
    let stats = audit.write_stats().unwrap();
    assert_eq!(
        (stats.writes, stats.failed_writes),
        (ok.len() as u64, failed.len() as u64)
    );
    drop((audit, pools));
    assert_eq!(on_disk(&f), ok);
}

#[test]
fn sync_and_async_callers_share_one_queue_and_every_answer_is_right() {
    let f = split("");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let rt = multi_thread();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let audit = audit.clone();
            std::thread::spawn(move || {
                (0..150)
                    .map(|i| {
                        let id = 10_000 + t * 1_000 + i;
                        (id, audit.write(insert(id)))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut answers = rt.block_on(async {
        let tasks: Vec<_> = (1..=600)
            .map(|id| {
                let audit = audit.clone();
                tokio::spawn(async move { (id, audit.write_async(insert(id)).await) })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        answers
    });
    for t in threads {
        answers.extend(t.join().unwrap());
    }
    assert_eq!(answers.len(), 1_200);
    let (ok, failed) = tally(answers);
    assert!(!failed.is_empty());
    let stats = audit.write_stats().unwrap();
    assert_eq!(
        (stats.writes, stats.failed_writes),
        (ok.len() as u64, failed.len() as u64),
        "{stats:?}"
    );
    drop((audit, pools));
    assert_eq!(on_disk(&f), ok);
}

#[test]
fn a_future_dropped_before_its_closure_started_never_runs_it() {
    let f = split("max_batch_time = \"10s\"");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    // A thread's write holds the batch until released.
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = {
        let audit = audit.clone();
        std::thread::spawn(move || {
            audit.write(move |c| {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                c.execute("INSERT INTO t(id, v) VALUES (1, 1)", [])
            })
        })
    };
    started_rx.recv().unwrap();
    let dropped_ran = Arc::new(AtomicBool::new(false));
    let ran = dropped_ran.clone();
    let mut dropped = Box::pin(audit.write_async(move |c| {
        ran.store(true, SeqCst);
        c.execute("INSERT INTO t(id, v) VALUES (2, 2)", [])
    }));
    let kept_ran = Arc::new(AtomicBool::new(false));
    let ran = kept_ran.clone();
    let mut kept = Box::pin(audit.write_async(move |c| {
        ran.store(true, SeqCst);
        c.execute("INSERT INTO t(id, v) VALUES (3, 3)", [])
    }));
    assert!(poll_once(dropped.as_mut()).is_pending());
    assert!(poll_once(kept.as_mut()).is_pending());
    assert_eq!(audit.write_stats().unwrap().queued, 2);
    drop(dropped);
    assert_eq!(audit.write_stats().unwrap().queued, 1);
    release_tx.send(()).unwrap();
    assert_eq!(holder.join().unwrap().unwrap(), 1);
    let rt = multi_thread();
    assert_eq!(rt.block_on(kept).unwrap(), 1);
    assert!(kept_ran.load(SeqCst), "the kept write ran");
    assert!(!dropped_ran.load(SeqCst), "the dropped write's closure ran");
    let stats = audit.write_stats().unwrap();
    assert_eq!(
        (stats.writes, stats.failed_writes, stats.cancelled),
        (2, 1, 1),
        "{stats:?}"
    );

    // Dropped once its closure started: the work commits with its batch, counted as a write.
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let mut late = Box::pin(audit.write_async(move |c| {
        started_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        c.execute("INSERT INTO t(id, v) VALUES (4, 4)", [])
    }));
    assert!(poll_once(late.as_mut()).is_pending());
    started_rx.recv().unwrap();
    drop(late);
    release_tx.send(()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while audit.write_stats().unwrap().writes < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = audit.write_stats().unwrap();
    assert_eq!((stats.writes, stats.cancelled), (3, 1), "{stats:?}");
    drop((audit, pools));
    assert_eq!(on_disk(&f), [1, 3, 4].into());
}

#[test]
fn queued_async_writes_time_out_within_connection_timeout() {
    // The closure holding the batch runs on a thread caller, then on the committer thread (an
    // async caller's): either way the writes queued behind it are answered on time.
    for held_by_async in [false, true] {
        let f = split("connection_timeout = \"300ms\"");
        let pools = open(&f);
        let audit = pools.handle("audit").unwrap();
        let rt = multi_thread();
        let (started_tx, started_rx) = mpsc::channel();
        let hold = move |c: &mut litepool::WriteConn<'_>| {
            started_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(1_500));
            c.execute("INSERT INTO t(id, v) VALUES (1, 1)", [])
        };
        let holder = if held_by_async {
            let fut = audit.write_async(hold);
            rt.spawn(fut)
        } else {
            let audit = audit.clone();
            rt.spawn_blocking(move || audit.write(hold))
        };
        started_rx.recv().unwrap();
        let answers = rt.block_on(async {
            let tasks: Vec<_> = (2..=6)
                .map(|id| {
                    let audit = audit.clone();
                    tokio::spawn(async move {
                        let start = Instant::now();
                        let answer = audit.write_async(insert(id)).await;
                        (answer, start.elapsed())
                    })
                })
                .collect();
            let mut answers = Vec::new();
            for t in tasks {
                answers.push(t.await.unwrap());
            }
            answers
        });
        for (answer, waited) in answers {
            match answer {
                Err(Error::WriteTimeout { cause, .. }) => {
                    assert!(
                        cause.contains("a write closure has been running"),
                        "{cause}"
                    )
                }
                other => {
                    panic!("held_by_async={held_by_async}: expected WriteTimeout, got {other:?}")
                }
            }
            assert!(
                waited >= Duration::from_millis(290) && waited < Duration::from_millis(1_200),
                "held_by_async={held_by_async}: answered after {waited:?}"
            );
        }
        assert_eq!(rt.block_on(holder).unwrap().unwrap(), 1);
        let stats = audit.write_stats().unwrap();
        assert_eq!(
            (stats.writes, stats.failed_writes, stats.timeouts),
            (1, 5, 5),
            "held_by_async={held_by_async}: {stats:?}"
        );
        drop((audit, pools));
        assert_eq!(on_disk(&f), [1].into());
    }
}

#[test]
fn write_async_works_on_a_database_without_a_split() {
    let f = plain();
    let pools = open(&f);
    assert!(pools.handle("audit").unwrap().write_stats().is_none());
    let rt = multi_thread();
    let answers = rt.block_on(async {
        let tasks: Vec<_> = (1..=200)
            .map(|id| {
                let pools = pools.clone();
                tokio::spawn(async move { (id, pools.write_async("audit", insert(id)).await) })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        answers
    });
    let (ok, failed) = tally(answers);
    assert_eq!(failed, (1..=200).filter(|i| i % 7 == 0).collect());
    let unknown = rt.block_on(pools.write_async("nope", insert(1)));
    assert!(matches!(unknown, Err(Error::UnknownDatabase { .. })));
    drop(pools);
    assert_eq!(on_disk(&f), ok);
}

#[test]
fn write_async_polled_inside_a_write_closure_is_refused_at_once() {
    let f = split("");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let inner = audit.clone();
    let refused = audit
        .write(move |_| {
            let mut fut = Box::pin(inner.write_async(|_| Ok(())));
            Ok(matches!(
                poll_once(fut.as_mut()),
                Poll::Ready(Err(Error::Reentrant { .. }))
            ))
        })
        .unwrap();
    assert!(refused);
    assert_eq!(audit.write_stats().unwrap().reentrant, 1);
}

#[test]
fn dropping_the_pools_with_async_writes_in_flight_loses_no_acknowledged_write() {
    let f = split("");
    let pools = open(&f);
    let rt = multi_thread();
    // Futures made before the drop, awaited by tasks; the pools (every handle) dropped while
    // they are in flight.
    let tasks: Vec<_> = (1..=300)
        .map(|id| {
            let fut = pools.write_async("audit", insert(id));
            rt.spawn(async move { (id, fut.await) })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(5));
    let dropping = Instant::now();
    drop(pools);
    assert!(dropping.elapsed() < Duration::from_secs(10));
    let answers = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            let mut answers = Vec::new();
            for t in tasks {
                answers.push(t.await.unwrap());
            }
            answers
        })
        .await
        .expect("a write_async future hung after the pools were dropped")
    });
    let mut ok = BTreeSet::new();
    for (id, answer) in answers {
        match answer {
            Ok(_) => {
                ok.insert(id);
            }
            Err(e) => {
                let s = e.to_string();
                assert!(
                    s.contains("CHECK constraint failed") || s.contains("pools were dropped"),
                    "{id}: {s}"
                );
            }
        }
    }
    assert!(!ok.is_empty());
    assert_eq!(on_disk(&f), ok);
}

#[test]
fn async_writes_that_find_the_queue_full_get_queue_full_within_connection_timeout() {
    let f = split("connection_timeout = \"300ms\"\nqueue_size = 2");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let holder = {
        let audit = audit.clone();
        std::thread::spawn(move || {
            audit.write(move |c| {
                started_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(1_500));
                c.execute("INSERT INTO t(id, v) VALUES (1, 1)", [])
            })
        })
    };
    started_rx.recv().unwrap();
    // Two fill the queue; one more waits for room and is dropped (cancelled); three more wait
    // for room until their time is up.
    let mut queued: Vec<_> = (2..=3)
        .map(|id| Box::pin(audit.write_async(insert(id))))
        .collect();
    for fut in &mut queued {
        assert!(poll_once(fut.as_mut()).is_pending());
    }
    let mut dropped = Box::pin(audit.write_async(insert(4)));
    assert!(poll_once(dropped.as_mut()).is_pending());
    drop(dropped);
    let mut waiting: Vec<_> = (5..=7)
        .map(|id| Box::pin(audit.write_async(insert(id))))
        .collect();
    for fut in &mut waiting {
        assert!(poll_once(fut.as_mut()).is_pending());
    }
    let start = Instant::now();
    // Awaited only once every wait is over (the holder still runs): each answer is then the
    // one its wait earned, whichever order the committer woke them in.
    std::thread::sleep(Duration::from_millis(400));
    let rt = multi_thread();
    let answers = rt.block_on(async {
        let mut answers = Vec::new();
        for fut in queued.into_iter().chain(waiting) {
            answers.push(fut.await);
        }
        answers
    });
    assert!(
        start.elapsed() < Duration::from_millis(1_200),
        "{:?}",
        start.elapsed()
    );
    for (i, answer) in answers.into_iter().enumerate() {
        match (i, answer) {
            (0 | 1, Err(Error::WriteTimeout { .. })) => {}
            (2.., Err(Error::QueueFull { queue_size: 2, .. })) => {}
            (i, other) => panic!("answer {i}: {other:?}"),
        }
    }
    holder.join().unwrap().unwrap();
    let stats = audit.write_stats().unwrap();
    assert_eq!(
        (
            stats.writes,
            stats.failed_writes,
            stats.timeouts,
            stats.cancelled
        ),
        (1, 6, 5, 1),
        "{stats:?}"
    );
    drop((audit, pools));
    assert_eq!(on_disk(&f), [1].into());
}

#[test]
fn write_async_on_a_litefs_replica_is_not_primary_like_write() {
    let f = Fixture::new(&format!(
        "{}\n[databases.jobs]\npath = \"{{data}}/jobs.db\"\nprofile = \"recommended\"\nreplication = \"litefs\"\n[databases.jobs.writer]\n[databases.jobs.readers]\nmax_size = 2\n",
        shipped_profiles()
    ));
    drop(Pools::new(&f.load().unwrap()).unwrap()); // creates the file, as the primary
    std::fs::write(f.path("data/.primary"), "primary-host\n").unwrap();
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let answer = multi_thread().block_on(pools.write_async("jobs", move |_| {
        flag.store(true, SeqCst);
        Ok(())
    }));
    assert!(
        matches!(&answer, Err(Error::NotPrimary { primary, .. }) if primary == "primary-host"),
        "{answer:?}"
    );
    assert!(!ran.load(SeqCst));
    assert!(matches!(
        pools.write("jobs", |_| Ok(())),
        Err(Error::NotPrimary { .. })
    ));
}

#[test]
fn without_a_split_a_future_dropped_before_a_worker_took_it_never_runs() {
    let f = Fixture::new(&format!(
        "{}\n[databases.audit]\npath = \"{{data}}/audit.db\"\nprofile = \"recommended\"\n[databases.audit.pool]\nmax_size = 1\nconnection_timeout = \"5s\"\n",
        shipped_profiles()
    ));
    let pools = open(&f);
    // The pool's one connection is held: the one worker waits for it with the first job, the
    // second job waits in the workers' queue.
    let held = pools.writer("audit").unwrap();
    let mut first = Box::pin(pools.write_async("audit", insert(1)));
    assert!(poll_once(first.as_mut()).is_pending());
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let mut second = Box::pin(pools.write_async("audit", move |c| {
        flag.store(true, SeqCst);
        c.execute("INSERT INTO t(id, v) VALUES (2, 2)", [])
    }));
    assert!(poll_once(second.as_mut()).is_pending());
    drop(second);
    drop(held);
    assert_eq!(multi_thread().block_on(first).unwrap(), 1);
    drop(pools); // joins the worker: a second job would have run by now
    assert!(!ran.load(SeqCst), "the dropped write's closure ran");
    assert_eq!(on_disk(&f), [1].into());
}
