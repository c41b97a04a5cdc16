//! Hostile tests of `write_async`, the `?` conversion and `docs/errors.md`, and the lint
//! `checkpoint-needs-wal`. Every test asserts the behaviour the documentation promises: a
//! failing test is a finding. A hang is caught with a bounded wait (`recv_timeout`,
//! `tokio::time::timeout`), never decided by a sleep.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use litepool::rusqlite::ErrorCode;
use litepool::{Error, Pools};

use crate::common::*;

// ---------------------------------------------------------------------------------------------
// Helpers

fn split_db(name: &str, writer: &str) -> String {
    format!(
        "\n[databases.{name}]\npath = \"{{data}}/{name}.db\"\nprofile = \"recommended\"\n[databases.{name}.writer]\n{writer}\n[databases.{name}.readers]\nmax_size = 2\n"
    )
}

fn split(writer: &str) -> Fixture {
    Fixture::new(&format!(
        "{}{}",
        shipped_profiles(),
        split_db("audit", writer)
    ))
}

fn plain(pool: &str) -> Fixture {
    Fixture::new(&format!(
        "{}\n[databases.audit]\npath = \"{{data}}/audit.db\"\nprofile = \"recommended\"\n[databases.audit.pool]\n{pool}\n",
        shipped_profiles()
    ))
}

fn create(pools: &Pools, db: &str) {
    pools
        .writer(db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v INTEGER CHECK (v % 7 != 0))",
        )
        .unwrap();
}

fn open(f: &Fixture) -> Pools {
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    create(&pools, "audit");
    pools
}

fn ids(f: &Fixture, db: &str) -> BTreeSet<i64> {
    let c = rusqlite::Connection::open(f.path(&format!("data/{db}.db"))).unwrap();
    let mut stmt = c.prepare("SELECT id FROM t").unwrap();
    let ids = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    ids
}

fn on_disk(f: &Fixture) -> BTreeSet<i64> {
    ids(f, "audit")
}

fn insert(id: i64) -> impl FnOnce(&mut litepool::WriteConn<'_>) -> rusqlite::Result<i64> + Send {
    move |c| {
        c.execute("INSERT INTO t(id, v) VALUES (?1, ?1)", [id])?;
        Ok(id)
    }
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(Noop));
    fut.poll(&mut Context::from_waker(&waker))
}

struct Unpark(std::thread::Thread);
impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor (no runtime): polls `fut` on this thread until it is ready or `limit`
/// passed (`None`).
fn block_on_for<F: Future>(fut: F, limit: Duration) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let end = Instant::now() + limit;
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
        let now = Instant::now();
        if now >= end {
            return None;
        }
        std::thread::park_timeout(end - now);
    }
}

/// Runs `f` on a thread of its own; `None` if it did not return within `limit` (the thread is
/// left behind: a hang).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

/// `status()` exactly as printed in docs/errors.md.
fn status(e: &litepool::Error) -> u16 {
    if e.is_retryable() || e.is_busy() {
        return 503;
    }
    match (e, e.sqlite_code()) {
        (_, Some(ErrorCode::ConstraintViolation)) => 422,
        (_, Some(ErrorCode::DiskFull)) => 507,
        (litepool::Error::Timeout { .. } | litepool::Error::Moved { .. }, _) => 503,
        (litepool::Error::NotPrimary { .. }, _) => 421, // send writes to the primary
        _ => 500,
    }
}

// ---------------------------------------------------------------------------------------------
// 1. A closure that holds the database's last handle

/// A queued future is dropped (cancelled) while its closure holds the database's last handle.
/// The closure is dropped under the queue's lock, and the handle's drop (GroupCommit::drop)
/// takes the same lock: the dropping thread must not deadlock.
#[test]
fn h22_dropping_a_queued_future_whose_closure_holds_the_last_handle_does_not_hang() {
    let f = split("max_batch_time = \"10s\"\nconnection_timeout = \"5s\"");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let mut holder = Box::pin(audit.write_async(move |c| {
        started_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(800));
        c.execute("INSERT INTO t(id, v) VALUES (1, 1)", [])
    }));
    assert!(poll_once(holder.as_mut()).is_pending());
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let keep = audit.clone();
    let ran = Arc::new(AtomicBool::new(false));
    let ran2 = ran.clone();
    let mut queued = Box::pin(audit.write_async(move |c| {
        ran2.store(true, SeqCst);
        let _ = keep.name();
        c.execute("INSERT INTO t(id, v) VALUES (2, 2)", [])
    }));
    assert!(poll_once(queued.as_mut()).is_pending());
    drop((audit, pools)); // the only handle left is inside `queued`'s closure
    let dropped = within(Duration::from_secs(8), move || drop(queued));
    if dropped.is_none() {
        // The queue's lock is held by the stuck thread: dropping `holder` would hang too.
        std::mem::forget(holder);
        panic!(
            "dropping a queued write_async future whose closure holds the database's last handle hung (deadlock on the queue's lock)"
        );
    }
    let rt = multi_thread();
    let answer = rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), holder).await });
    assert_eq!(answer.expect("holder never answered").unwrap(), 1);
    assert!(!ran.load(SeqCst), "the cancelled closure ran");
    assert_eq!(on_disk(&f), [1].into());
}

/// The clock times out a queued async job whose closure holds the database's last handle: the
/// closure is dropped under the queue's lock on the clock thread. Its caller must still get
/// `WriteTimeout` within a bounded time, and the batch before it its answer.
#[test]
fn h22_timing_out_a_job_whose_closure_holds_the_last_handle_does_not_hang_the_clock() {
    let f = split("max_batch_time = \"10s\"\nconnection_timeout = \"300ms\"");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let mut holder = Box::pin(audit.write_async(move |c| {
        started_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(1_000));
        c.execute("INSERT INTO t(id, v) VALUES (1, 1)", [])
    }));
    assert!(poll_once(holder.as_mut()).is_pending());
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let keep = audit.clone();
    let mut queued = Box::pin(audit.write_async(move |c| {
        let _ = keep.name();
        c.execute("INSERT INTO t(id, v) VALUES (2, 2)", [])
    }));
    assert!(poll_once(queued.as_mut()).is_pending());
    drop((audit, pools));
    // Awaited on a thread of their own: if the clock hangs holding the queue's lock, even
    // dropping these futures would hang.
    let answers = within(Duration::from_secs(8), move || {
        let rt = multi_thread();
        rt.block_on(async {
            let q = tokio::time::timeout(Duration::from_secs(5), queued).await;
            let h = tokio::time::timeout(Duration::from_secs(5), holder).await;
            (q.ok(), h.ok())
        })
    });
    let Some((q, h)) = answers else {
        panic!("the queued write was never answered and its future could not even be dropped: the clock thread deadlocked on the queue's lock");
    };
    match q {
        Some(Err(Error::WriteTimeout { .. })) => {}
        Some(other) => panic!("queued: {other:?}"),
        None => panic!("the queued write was never answered: the clock thread hung"),
    }
    assert_eq!(h.expect("holder never answered").unwrap(), 1);
    assert_eq!(on_disk(&f), [1].into());
}

/// The committer runs a closure that holds the database's last handle (the application kept a
/// `Pools` clone in it, then dropped its own): the closure's drop on the committer thread must
/// not deadlock the committer, and the caller must get its `Ok`.
#[test]
fn h22_a_closure_run_by_the_committer_holding_the_last_handle_is_answered() {
    let f = split("connection_timeout = \"5s\"");
    let pools = open(&f);
    let keep = pools.clone();
    let fut = pools.write_async("audit", move |c| {
        let _ = keep.names().count();
        c.execute("INSERT INTO t(id, v) VALUES (1, 1)", [])?;
        Ok(1_i64)
    });
    drop(pools);
    let rt = multi_thread();
    let answer = rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), fut).await });
    match answer {
        Ok(Ok(1)) => {}
        Ok(other) => panic!("{other:?}"),
        Err(_) => panic!(
            "a write_async whose closure held the last Pools clone was never answered: the committer deadlocked joining the clock"
        ),
    }
    assert_eq!(on_disk(&f), [1].into());
}

/// Without a split: a queued future dropped while its closure holds the last handle (the
/// workers' lock is held while the job is dropped).
#[test]
fn h22_unsplit_dropping_a_queued_future_whose_closure_holds_the_last_handle_does_not_hang() {
    let f = plain("max_size = 1\nconnection_timeout = \"5s\"");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let mut holder = Box::pin(audit.write_async(move |c| {
        started_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(800));
        c.execute("INSERT INTO t(id, v) VALUES (1, 1)", [])
    }));
    assert!(poll_once(holder.as_mut()).is_pending());
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let keep = audit.clone();
    let mut queued = Box::pin(audit.write_async(move |c| {
        let _ = keep.name();
        c.execute("INSERT INTO t(id, v) VALUES (2, 2)", [])
    }));
    assert!(poll_once(queued.as_mut()).is_pending());
    drop((audit, pools));
    let dropped = within(Duration::from_secs(8), move || drop(queued));
    if dropped.is_none() {
        std::mem::forget(holder);
        panic!(
            "dropping a queued unsplit write_async future whose closure holds the last handle hung"
        );
    }
    let rt = multi_thread();
    let answer = rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), holder).await });
    assert_eq!(answer.expect("holder never answered").unwrap(), 1);
    assert_eq!(on_disk(&f), [1].into());
}

// ---------------------------------------------------------------------------------------------
// 2. Bounded waits

/// Without a split, every worker (max_size = 1) runs a slow closure: a second future must still
/// be answered within `connection_timeout` (documented: "from then on it waits at most the
/// writer's connection_timeout for its closure to start (Error::WriteTimeout …)").
#[test]
fn h22_unsplit_write_async_behind_a_slow_closure_is_answered_within_connection_timeout() {
    let f = plain("max_size = 1\nconnection_timeout = \"400ms\"");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let rt = multi_thread();
    let (slow, second, elapsed) = rt.block_on(async {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let slow = tokio::spawn(audit.write_async(move |c| {
            started_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(3_000));
            c.execute("INSERT INTO t(id, v) VALUES (1, 1)", [])
        }));
        started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let start = Instant::now();
        let second =
            tokio::time::timeout(Duration::from_secs(10), audit.write_async(insert(2))).await;
        let elapsed = start.elapsed();
        (slow.await.unwrap(), second, elapsed)
    });
    assert_eq!(slow.unwrap(), 1);
    let second = second.expect("never answered");
    assert!(
        elapsed < Duration::from_millis(1_500),
        "the second write_async waited {elapsed:?} (connection_timeout 400ms) and got {second:?}"
    );
    match &second {
        Err(e @ Error::WriteTimeout { .. }) => assert!(e.is_retryable()),
        other => panic!("expected WriteTimeout, got {other:?} after {elapsed:?}"),
    }
    drop((audit, pools));
    assert_eq!(on_disk(&f), [1].into());
}

/// A future waits for room; the clock ends its wait (and wakes it), but it is dropped before it
/// is polled again. Nothing of it ran: it must be counted in `failed_writes` (as cancelled or
/// as a timeout), so that writes + failed_writes is the number of write calls.
#[test]
fn h22_a_future_dropped_after_its_wait_for_room_expired_is_still_counted() {
    let f = split("connection_timeout = \"300ms\"\nqueue_size = 1\nmax_batch_time = \"10s\"");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let holder = {
        let audit = audit.clone();
        std::thread::spawn(move || {
            audit.write(move |c| {
                started_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(1_200));
                c.execute("INSERT INTO t(id, v) VALUES (1, 1)", [])
            })
        })
    };
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let mut queued = Box::pin(audit.write_async(insert(2)));
    assert!(poll_once(queued.as_mut()).is_pending());
    let mut waiting = Box::pin(audit.write_async(insert(3)));
    assert!(poll_once(waiting.as_mut()).is_pending());
    // Let both waits run out (the clock acts on them); then drop the one waiting for room
    // without polling it again.
    std::thread::sleep(Duration::from_millis(600));
    drop(waiting);
    let rt = multi_thread();
    match rt.block_on(queued) {
        Err(Error::WriteTimeout { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(holder.join().unwrap().unwrap(), 1);
    let stats = audit.write_stats().unwrap();
    assert_eq!(
        (stats.writes, stats.failed_writes),
        (1, 2),
        "3 write calls, 1 committed, 2 never ran: {stats:?}"
    );
    drop((audit, pools));
    assert_eq!(on_disk(&f), [1].into());
}

/// A closure that blocks (on the committer) for much longer than connection_timeout: sync and
/// async callers behind it are answered within their bound, naming the closure.
#[test]
fn h22_a_blocking_async_closure_does_not_hold_sync_or_async_callers_behind_it() {
    let f = split("connection_timeout = \"300ms\"\nmax_batch_time = \"10s\"");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let mut blocker = Box::pin(audit.write_async(move |c| {
        started_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(Duration::from_secs(20));
        c.execute("INSERT INTO t(id, v) VALUES (1, 1)", [])
    }));
    assert!(poll_once(blocker.as_mut()).is_pending());
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let sync = {
        let audit = audit.clone();
        within(Duration::from_secs(3), move || {
            let start = Instant::now();
            (audit.write(insert(2)), start.elapsed())
        })
    }
    .expect("a sync write behind a blocking async closure hung");
    let rt = multi_thread();
    let (asy, elapsed) = rt.block_on(async {
        let start = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(3), audit.write_async(insert(3))).await;
        (r, start.elapsed())
    });
    let asy = asy.expect("an async write behind a blocking async closure hung");
    for (who, answer, took) in [("sync", sync.0, sync.1), ("async", asy, elapsed)] {
        assert!(took < Duration::from_millis(1_000), "{who} took {took:?}");
        match answer {
            Err(e @ Error::WriteTimeout { .. }) => {
                assert!(
                    e.to_string()
                        .contains("a write closure has been running for"),
                    "{who}: {e}"
                );
                assert!(e.is_retryable());
                assert_eq!(status(&e), 503);
            }
            other => panic!("{who}: {other:?}"),
        }
    }
    release_tx.send(()).unwrap();
    assert_eq!(rt.block_on(blocker).unwrap(), 1);
    let stats = audit.write_stats().unwrap();
    assert_eq!(
        (stats.writes, stats.failed_writes, stats.timeouts),
        (1, 2, 2),
        "{stats:?}"
    );
    drop((audit, pools));
    assert_eq!(on_disk(&f), [1].into());
}

// ---------------------------------------------------------------------------------------------
// 3. Many futures, select!, dropped runtimes and pools

/// 4,000 tasks against queue_size = 8: each answer is Ok (or QueueFull / WriteTimeout, both
/// counted), and answers, statistics and rows agree.
#[test]
fn h22_thousands_of_futures_against_a_tiny_queue_agree_with_stats_and_disk() {
    let f = split("queue_size = 8\nconnection_timeout = \"20s\"");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let rt = multi_thread();
    let n = 4_000_i64;
    let answers = rt.block_on(async {
        let tasks: Vec<_> = (1..=n)
            .map(|id| {
                let audit = audit.clone();
                // Skip multiples of 7 so every write is valid.
                let id = id * 7 + 1;
                tokio::spawn(async move { (id, audit.write_async(insert(id)).await) })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let mut ok = BTreeSet::new();
    for (id, a) in answers {
        match a {
            Ok(got) => {
                assert_eq!(got, id);
                ok.insert(id);
            }
            Err(e) => panic!("{id}: {e}"),
        }
    }
    let stats = audit.write_stats().unwrap();
    assert_eq!(
        (stats.writes, stats.failed_writes),
        (n as u64, 0),
        "{stats:?}"
    );
    drop((audit, pools));
    assert_eq!(on_disk(&f), ok);
}

/// `select!` races two writes and drops the loser, 300 times. The loser either never ran
/// (cancelled) or committed with its batch; nothing else. rows on disk == writes, and
/// writes + cancelled == every future.
#[test]
fn h22_select_racing_two_writes_drops_the_loser_cleanly() {
    let f = split("");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let rt = multi_thread();
    let rounds = 300_i64;
    let winners = rt.block_on(async {
        let tasks: Vec<_> = (0..rounds)
            .map(|i| {
                let audit = audit.clone();
                tokio::spawn(async move {
                    let a = 1 + i * 14; // never a multiple of 7
                    let b = 2 + i * 14;
                    tokio::select! {
                        r = audit.write_async(insert(a)) => (a, r),
                        r = audit.write_async(insert(b)) => (b, r),
                    }
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    // Let losers that started finish their batch.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = audit.write_stats().unwrap();
        if s.writes + s.failed_writes == 2 * rounds as u64 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = audit.write_stats().unwrap();
    assert_eq!(stats.failed_writes, stats.cancelled, "{stats:?}");
    assert_eq!(
        stats.writes + stats.cancelled,
        2 * rounds as u64,
        "{stats:?}"
    );
    let writes = stats.writes;
    drop((audit, pools));
    let disk = on_disk(&f);
    for (id, r) in winners {
        assert_eq!(r.unwrap(), id);
        assert!(
            disk.contains(&id),
            "winner {id} acknowledged but not on disk"
        );
    }
    assert_eq!(disk.len() as u64, writes, "rows on disk vs stats.writes");
}

/// A runtime shut down with futures pending (queued behind a blocking closure): the dropped
/// futures never run; writes + failed_writes == calls; rows == writes.
#[test]
fn h22_a_runtime_shut_down_with_pending_futures() {
    let f = split("connection_timeout = \"10s\"\nmax_batch_time = \"10s\"");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = {
        let audit = audit.clone();
        std::thread::spawn(move || {
            audit.write(move |c| {
                started_tx.send(()).unwrap();
                let _ = release_rx.recv_timeout(Duration::from_secs(20));
                c.execute("INSERT INTO t(id, v) VALUES (1, 1)", [])
            })
        })
    };
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let rt = multi_thread();
    let ran = Arc::new(AtomicUsize::new(0));
    for id in 2..52_i64 {
        let audit = audit.clone();
        let ran = ran.clone();
        let id = id * 7 + 1;
        rt.spawn(async move {
            audit
                .write_async(move |c| {
                    ran.fetch_add(1, SeqCst);
                    c.execute("INSERT INTO t(id, v) VALUES (?1, ?1)", [id])
                })
                .await
        });
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while audit.write_stats().unwrap().queued < 50 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(audit.write_stats().unwrap().queued, 50);
    let shut = within(Duration::from_secs(5), move || {
        rt.shutdown_timeout(Duration::from_secs(2))
    });
    assert!(shut.is_some(), "shutting the runtime down hung");
    release_tx.send(()).unwrap();
    assert_eq!(holder.join().unwrap().unwrap(), 1);
    let stats = audit.write_stats().unwrap();
    assert_eq!(ran.load(SeqCst), 0, "a dropped future's closure ran");
    assert_eq!(
        (
            stats.writes,
            stats.failed_writes,
            stats.cancelled,
            stats.queued
        ),
        (1, 50, 50, 0),
        "{stats:?}"
    );
    drop((audit, pools));
    assert_eq!(on_disk(&f), [1].into());
}

/// Futures created, never polled, then the pools dropped: the first poll answers an error and
/// nothing of them runs; dropping the pools does not wait for them.
#[test]
fn h22_futures_never_polled_then_pools_dropped() {
    let f = split("");
    let pools = open(&f);
    let ran = Arc::new(AtomicBool::new(false));
    let futs: Vec<_> = (0..3)
        .map(|i| {
            let ran = ran.clone();
            pools.write_async("audit", move |c| {
                ran.store(true, SeqCst);
                c.execute("INSERT INTO t(id, v) VALUES (?1, ?1)", [10 + i])
            })
        })
        .collect();
    let never = pools.write_async("audit", insert(20));
    assert!(
        within(Duration::from_secs(5), move || drop(pools)).is_some(),
        "dropping the pools with unpolled futures hung"
    );
    drop(never); // never polled at all
    let rt = current_thread();
    for fut in futs {
        match rt.block_on(fut) {
            Err(e @ Error::Commit { .. }) => {
                assert!(
                    e.to_string()
                        .contains("dropped before this write was queued"),
                    "{e}"
                );
                assert!(!e.is_retryable());
                assert_eq!(status(&e), 500);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(!ran.load(SeqCst));
    assert_eq!(on_disk(&f), BTreeSet::new());
}

/// A future first polled on one runtime (current-thread, in another thread), then moved to and
/// awaited on a multi-thread runtime: answered once, and correctly.
#[test]
fn h22_a_future_moved_between_runtimes_is_answered() {
    let f = split("max_batch_time = \"10s\"");
    let pools = open(&f);
    let audit = pools.handle("audit").unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = {
        let audit = audit.clone();
        std::thread::spawn(move || {
            audit.write(move |c| {
                started_tx.send(()).unwrap();
                let _ = release_rx.recv_timeout(Duration::from_secs(20));
                c.execute("INSERT INTO t(id, v) VALUES (1, 1)", [])
            })
        })
    };
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let fut = Box::pin(audit.write_async(insert(2)));
    // First poll on a current-thread runtime in another thread, via a timeout that expires.
    let fut = std::thread::spawn(move || {
        let rt = current_thread();
        let mut fut = fut;
        let r =
            rt.block_on(async { tokio::time::timeout(Duration::from_millis(50), &mut fut).await });
        assert!(r.is_err(), "answered while the batch is held: {r:?}");
        drop(rt); // that runtime (and its waker) is gone
        fut
    })
    .join()
    .unwrap();
    release_tx.send(()).unwrap();
    let rt = multi_thread();
    let r = rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), fut).await });
    assert_eq!(r.expect("moved future never answered").unwrap(), 2);
    assert_eq!(holder.join().unwrap().unwrap(), 1);
    let stats = audit.write_stats().unwrap();
    assert_eq!((stats.writes, stats.failed_writes), (2, 0), "{stats:?}");
    drop((audit, pools));
    assert_eq!(on_disk(&f), [1, 2].into());
}

// ---------------------------------------------------------------------------------------------
// 4. Re-entry and panics

/// `block_on(write_async)` of the same database inside a `write` closure and inside a
/// `write_async` closure (split and unsplit): `Reentrant` at once; the outer write commits.
#[test]
fn h22_block_on_write_async_inside_a_closure_of_the_same_database_is_reentrant() {
    for (kind, f) in [
        ("split", split("connection_timeout = \"2s\"")),
        ("plain", plain("max_size = 2\nconnection_timeout = \"2s\"")),
    ] {
        let pools = open(&f);
        let audit = pools.handle("audit").unwrap();
        // Inside a sync write closure.
        let inner_audit = audit.clone();
        let start = Instant::now();
        let inner = audit
            .write(move |c| {
                c.execute("INSERT INTO t(id, v) VALUES (1, 1)", [])?;
                let r = block_on_for(inner_audit.write_async(insert(2)), Duration::from_secs(5));
                Ok(r)
            })
            .unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{kind}: {:?}",
            start.elapsed()
        );
        match inner {
            Some(Err(Error::Reentrant {
                call: "write_async",
                ..
            })) => {}
            other => panic!("{kind}: inside write: {other:?}"),
        }
        // Inside a write_async closure.
        let inner_audit = audit.clone();
        let rt = multi_thread();
        let inner = rt
            .block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(10),
                    audit.write_async(move |c| {
                        c.execute("INSERT INTO t(id, v) VALUES (3, 3)", [])?;
                        let r = block_on_for(
                            inner_audit.write_async(insert(4)),
                            Duration::from_secs(5),
                        );
                        Ok(r)
                    }),
                )
                .await
            })
            .expect("hung")
            .unwrap();
        match inner {
            Some(Err(Error::Reentrant {
                call: "write_async",
                ..
            })) => {}
            other => panic!("{kind}: inside write_async: {other:?}"),
        }
        if let Some(stats) = audit.write_stats() {
            assert_eq!(
                (stats.writes, stats.failed_writes, stats.reentrant),
                (2, 2, 2),
                "{kind}: {stats:?}"
            );
        }
        drop((audit, pools, rt));
        assert_eq!(ids(&f, "audit"), [1, 3].into(), "{kind}");
    }
}

/// `block_on(write_async)` of database B inside a write_async closure of database A: B commits,
/// then A; both answered Ok.
#[test]
fn h22_block_on_write_async_of_another_database_inside_a_closure() {
    let f = Fixture::new(&format!(
        "{}{}{}",
        shipped_profiles(),
        split_db("a", "connection_timeout = \"2s\""),
        split_db("b", "connection_timeout = \"2s\"")
    ));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    create(&pools, "a");
    create(&pools, "b");
    let b = pools.handle("b").unwrap();
    let rt = multi_thread();
    let answer = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(10),
            pools.write_async("a", move |c| {
                c.execute("INSERT INTO t(id, v) VALUES (1, 1)", [])?;
                let inner = block_on_for(b.write_async(insert(2)), Duration::from_secs(5));
                Ok(inner)
            }),
        )
        .await
    });
    let inner = answer.expect("hung").unwrap();
    assert_eq!(inner.expect("inner hung").unwrap(), 2);
    drop((pools, rt));
    assert_eq!(ids(&f, "a"), [1].into());
    assert_eq!(ids(&f, "b"), [2].into());
}

/// Two databases' async closures each `block_on` a write of the other: the waits are bounded
/// (one of them gets WriteTimeout), nothing hangs, answers match the disk.
#[test]
fn h22_cross_database_block_on_cycle_is_bounded() {
    let f = Fixture::new(&format!(
        "{}{}{}",
        shipped_profiles(),
        split_db(
            "a",
            "connection_timeout = \"500ms\"\nmax_batch_time = \"10s\""
        ),
        split_db(
            "b",
            "connection_timeout = \"500ms\"\nmax_batch_time = \"10s\""
        )
    ));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    create(&pools, "a");
    create(&pools, "b");
    let (a, b) = (pools.handle("a").unwrap(), pools.handle("b").unwrap());
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let rt = multi_thread();
    let (ra, rb) = rt.block_on(async {
        let (a2, b2, bar1, bar2) = (a.clone(), b.clone(), barrier.clone(), barrier.clone());
        let fa = a.write_async(move |c| {
            c.execute("INSERT INTO t(id, v) VALUES (1, 1)", [])?;
            bar1.wait();
            Ok(block_on_for(
                b2.write_async(insert(10)),
                Duration::from_secs(5),
            ))
        });
        let fb = b.write_async(move |c| {
            c.execute("INSERT INTO t(id, v) VALUES (2, 2)", [])?;
            bar2.wait();
            Ok(block_on_for(
                a2.write_async(insert(20)),
                Duration::from_secs(5),
            ))
        });
        tokio::time::timeout(Duration::from_secs(15), async { tokio::join!(fa, fb) })
            .await
            .expect("hung")
    });
    let ia = ra.unwrap().expect("inner of a hung");
    let ib = rb.unwrap().expect("inner of b hung");
    // Each inner write waits for the other's batch, which waits for it: at least one times
    // out; the other may then run in the batch its caller's timeout freed.
    let mut want_a: BTreeSet<i64> = [1].into();
    let mut want_b: BTreeSet<i64> = [2].into();
    match (&ia, &ib) {
        (Err(Error::WriteTimeout { .. }), Err(Error::WriteTimeout { .. })) => {}
        (Ok(10), Err(Error::WriteTimeout { .. })) => {
            want_b.insert(10);
        }
        (Err(Error::WriteTimeout { .. }), Ok(20)) => {
            want_a.insert(20);
        }
        other => panic!("{other:?}"),
    }
    drop((a, b, pools, rt));
    assert_eq!(ids(&f, "a"), want_a);
    assert_eq!(ids(&f, "b"), want_b);
}

/// Panics in async closures: Panicked for that caller only, the rest of the batch commits,
/// the committer keeps serving. Split and unsplit.
#[test]
fn h22_a_panicking_async_closure_fails_alone() {
    for (kind, f) in [("split", split("")), ("plain", plain("max_size = 2"))] {
        let pools = open(&f);
        let audit = pools.handle("audit").unwrap();
        let rt = multi_thread();
        let answers = rt.block_on(async {
            let tasks: Vec<_> = (1..=60_i64)
                .map(|i| {
                    let audit = audit.clone();
                    let id = i * 7 + 1;
                    tokio::spawn(async move {
                        let r = audit
                            .write_async(move |c| {
                                c.execute("INSERT INTO t(id, v) VALUES (?1, ?1)", [id])?;
                                if i % 5 == 0 {
                                    panic!("boom {id}");
                                }
                                Ok(id)
                            })
                            .await;
                        (id, i, r)
                    })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        let mut ok = BTreeSet::new();
        for (id, i, r) in answers {
            match (i % 5 == 0, r) {
                (false, Ok(got)) => {
                    assert_eq!(got, id);
                    ok.insert(id);
                }
                (true, Err(e @ Error::Panicked { .. })) => {
                    assert!(e.to_string().contains(&format!("boom {id}")), "{kind}: {e}");
                    assert!(!e.is_retryable());
                    assert_eq!(status(&e), 500);
                }
                (_, other) => panic!("{kind} {id}: {other:?}"),
            }
        }
        if let Some(stats) = audit.write_stats() {
            assert_eq!(
                (stats.writes, stats.failed_writes),
                (48, 12),
                "{kind}: {stats:?}"
            );
        }
        // Still serving.
        assert_eq!(
            rt.block_on(audit.write_async(insert(1_000_000))).unwrap(),
            1_000_000
        );
        ok.insert(1_000_000);
        drop((audit, pools, rt));
        assert_eq!(on_disk(&f), ok, "{kind}");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Errors: `?` and docs/errors.md

/// A UNIQUE failure through `?`, inside `write`, inside `write_async`: ConstraintViolation,
/// not retryable, 422, the message names the constraint; nothing committed.
#[test]
fn h22_unique_violation_maps_to_constraint_everywhere() {
    let f = split("");
    let pools = open(&f);
    pools.write("audit", insert(1)).unwrap();

    fn through_question_mark(pools: &Pools) -> litepool::Result<()> {
        let conn = pools.reader("audit")?;
        let n: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
        assert_eq!(n, 1);
        drop(conn);
        let conn = pools.writer("audit")?;
        conn.execute("INSERT INTO t(id, v) VALUES (1, 1)", [])?;
        Ok(())
    }
    let e = through_question_mark(&pools).unwrap_err();
    assert!(matches!(e, Error::Rusqlite { .. }), "{e:?}");
    let in_write = pools.write("audit", insert(1)).unwrap_err();
    assert!(
        matches!(in_write, Error::Sqlite { ref database, .. } if database == "audit"),
        "{in_write:?}"
    );
    let rt = current_thread();
    let in_async = rt
        .block_on(pools.write_async("audit", insert(1)))
        .unwrap_err();
    assert!(matches!(in_async, Error::Sqlite { .. }), "{in_async:?}");
    for e in [&e, &in_write, &in_async] {
        assert_eq!(e.sqlite_code(), Some(ErrorCode::ConstraintViolation), "{e}");
        assert!(!e.is_retryable(), "{e}");
        assert!(!e.is_busy(), "{e}");
        assert_eq!(status(e), 422, "{e}");
        assert!(
            e.to_string().contains("UNIQUE constraint failed: t.id"),
            "{e}"
        );
        assert!(std::error::Error::source(e).is_some(), "{e}: no source");
    }
    let stats = pools.handle("audit").unwrap().write_stats().unwrap();
    assert_eq!((stats.writes, stats.failed_writes), (1, 2), "{stats:?}");
    drop(pools);
    assert_eq!(on_disk(&f), [1].into());
}

/// docs/errors.md lists `Refused` for "`BEGIN` inside a write closure". What `write` and
/// `write_async` return for it, and through `?` inside a closure.
#[test]
fn h22_begin_inside_a_write_closure_is_refused_naming_the_statement() {
    let f = split("");
    let pools = open(&f);
    let e = pools
        .write("audit", |c| c.execute_batch("BEGIN"))
        .unwrap_err();
    assert!(
        matches!(e, Error::Refused { .. }),
        "write with BEGIN in the closure: expected Error::Refused (docs/errors.md), got {e:?}"
    );
    assert!(e.to_string().contains("BEGIN"), "{e}");
    assert!(!e.is_retryable());
    assert_eq!(status(&e), 500);
    let rt = current_thread();
    let e = rt
        .block_on(pools.write_async("audit", |c| c.execute_batch("COMMIT")))
        .unwrap_err();
    assert!(
        matches!(e, Error::Refused { .. }),
        "write_async with COMMIT: {e:?}"
    );
    drop(pools);
    assert_eq!(on_disk(&f), BTreeSet::new());
}

/// docs/errors.md: `is_retryable()` is true for `WriteTimeout`, `QueueFull`, `RolledBack`;
/// status() gives 503 for them; a write that timed out on a database without a split (where
/// `write` runs alone on a pool connection) is the same situation: nothing ran.
#[test]
fn h22_unsplit_write_that_never_started_is_write_timeout_and_retryable() {
    let f = plain("max_size = 1\nconnection_timeout = \"200ms\"");
    let pools = open(&f);
    let held = pools.get("audit").unwrap();
    let e = pools.write("audit", insert(1)).unwrap_err();
    let rt = current_thread();
    let ea = rt
        .block_on(pools.write_async("audit", insert(2)))
        .unwrap_err();
    drop(held);
    for e in [&e, &ea] {
        assert!(
            matches!(e, Error::WriteTimeout { .. }),
            "the write never started: documented as Error::WriteTimeout, got {e:?}"
        );
        assert!(e.is_retryable(), "{e}");
        assert_eq!(status(e), 503);
    }
    drop(pools);
    assert_eq!(on_disk(&f), BTreeSet::new());
}

// ---------------------------------------------------------------------------------------------
// 6. The lint `checkpoint-needs-wal`

fn lint_codes(settings: &litepool::Settings) -> Vec<(&'static str, String)> {
    let budget = litepool::budget::Budget::without_files(settings);
    litepool::lint::lint(settings, &budget)
        .into_iter()
        .map(|f| (f.code, f.message))
        .collect()
}

fn wal_autocheckpoint(pools: &Pools, db: &str) -> i64 {
    let c = pools.get(db).unwrap();
    c.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
        .unwrap()
}

/// `checkpoint = "background"` with journal_mode = "delete": the lint warns, no checkpointer
/// starts, SQLite's autocheckpoint stays as the profile has it.
#[test]
fn h22_background_checkpoint_with_delete_journal_warns_and_starts_nothing() {
    let f = Fixture::new(
        "[profiles.p]\njournal_mode = \"delete\"\nbusy_timeout = \"1s\"\n[databases.main]\npath = \"{data}/main.db\"\nprofile = \"p\"\ncheckpoint = \"background\"\n",
    );
    let settings = f.load().unwrap();
    let codes = lint_codes(&settings);
    let hit: Vec<_> = codes
        .iter()
        .filter(|(c, _)| *c == "checkpoint-needs-wal")
        .collect();
    assert_eq!(hit.len(), 1, "{codes:?}");
    assert!(hit[0].1.contains("journal_mode = delete"), "{}", hit[0].1);
    let pools = Pools::new(&settings).unwrap();
    let h = pools.handle("main").unwrap();
    assert!(
        h.checkpoint_stats().is_none(),
        "a checkpointer started for a rollback journal"
    );
    assert_eq!(wal_autocheckpoint(&pools, "main"), 1000);
    let mode: String = pools
        .get("main")
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
}

/// `checkpoint = "background"` with no journal_mode in the profile on a file that is already
/// WAL: background checkpoints work (autocheckpoint off, the checkpointer copies the WAL), no
/// lint warning.
#[test]
fn h22_background_checkpoint_with_journal_unset_on_a_wal_file_works() {
    let f = Fixture::new(
        "[profiles.p]\nbusy_timeout = \"1s\"\nsynchronous = \"normal\"\n[databases.main]\npath = \"{data}/main.db\"\nprofile = \"p\"\ncheckpoint = \"background\"\ncheckpoint_wal_size = \"64KiB\"\n",
    );
    {
        let c = rusqlite::Connection::open(f.path("data/main.db")).unwrap();
        let m: String = c
            .query_row("PRAGMA journal_mode = wal", [], |r| r.get(0))
            .unwrap();
        assert_eq!(m, "wal");
        c.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
            .unwrap();
    }
    let settings = f.load().unwrap();
    let codes = lint_codes(&settings);
    assert!(
        !codes.iter().any(|(c, _)| *c == "checkpoint-needs-wal"),
        "{codes:?}"
    );
    let pools = Pools::new(&settings).unwrap();
    let h = pools.handle("main").unwrap();
    assert!(h.checkpoint_stats().is_some());
    assert_eq!(wal_autocheckpoint(&pools, "main"), 0);
    for i in 0..400_i64 {
        h.write(move |c| c.execute("INSERT INTO t(id, v) VALUES (?1, zeroblob(4000))", [i]))
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let ran = |s: &litepool::checkpoint::CheckpointStats| s.restart + s.at_checkin + s.truncate;
    while ran(&h.checkpoint_stats().unwrap()) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = h.checkpoint_stats().unwrap();
    assert!(ran(&stats) > 0, "no checkpoint ran: {stats:?}");
    assert!(
        stats.wal_peak < 8 << 20,
        "WAL grew to {}: {stats:?}",
        stats.wal_peak
    );
    drop((h, pools));
    let c = rusqlite::Connection::open(f.path("data/main.db")).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 400);
}

/// `checkpoint = "background"`, journal_mode unset, on a rollback-journal file: the key does
/// nothing (no WAL), so litepool must say so (the lint or `checkpoint_stats()` = None), not run
/// a checkpointer and report zeros.
#[test]
fn h22_background_checkpoint_with_journal_unset_on_a_rollback_file_is_reported() {
    let f = Fixture::new(
        "[profiles.p]\nbusy_timeout = \"1s\"\n[databases.main]\npath = \"{data}/main.db\"\nprofile = \"p\"\ncheckpoint = \"background\"\n",
    );
    make_db(&f.path("data/main.db"));
    let settings = f.load().unwrap();
    let warned = lint_codes(&settings)
        .iter()
        .any(|(c, _)| *c == "checkpoint-needs-wal");
    let pools = Pools::new(&settings).unwrap();
    let h = pools.handle("main").unwrap();
    let mode: String = pools
        .get("main")
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    assert!(
        warned || h.checkpoint_stats().is_none(),
        "checkpoint = \"background\" on a rollback-journal file: no lint finding, and a checkpointer runs: {:?}",
        h.checkpoint_stats()
    );
}

// ---------------------------------------------------------------------------------------------
// 7. The bench report: a workload with no completed operation has no latency

/// A workload whose every attempt fails (a CHECK constraint) completes no operation: its
/// p50/p99 do not exist. The table, the JSON and the report must not show a latency of 0 µs
/// (a bar on a logarithmic axis for a value of 0, the "fastest" of the chart), but say there
/// is none, as the ratio column does ("-").
#[test]
fn h22_bench_a_workload_without_completed_operations_shows_no_latency() {
    let f = Fixture::new(
        "[profiles.p]\nbusy_timeout = \"1s\"\njournal_mode = \"wal\"\n[databases.w]\npath = \"{data}/w.db\"\nprofile = \"p\"\n[bench.workloads.always_fails]\ndatabase = \"w\"\nsql = \"INSERT INTO t(v) VALUES (?1)\"\nparams = [{ int = [7, 7] }]\n[bench.workloads.reads]\ndatabase = \"w\"\nsql = \"SELECT v FROM t WHERE id = ?1\"\nparams = [{ int = [1, 1] }]\n",
    );
    {
        let c = rusqlite::Connection::open(f.path("data/w.db")).unwrap();
        c.execute_batch(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER CHECK (v % 7 != 0)); INSERT INTO t(v) VALUES (1);",
        )
        .unwrap();
    }
    let report = f.path("r.html");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_litepool"))
        .args(["bench", "--config"])
        .arg(f.path("config"))
        .args([
            "--profiles",
            "p",
            "--seconds",
            "0.2",
            "--threads",
            "2",
            "--report",
        ])
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with("always_fails"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(row.contains(" 0 "), "ops/s is 0: {row}");
    assert!(
        !row.contains("0.0µs"),
        "a workload with no completed operation is shown with a latency of 0.0µs: {row}"
    );
    let html = std::fs::read_to_string(&report).unwrap();
    let latency = &html[html.find("id=\"latency\"").unwrap()..];
    assert!(
        !latency.contains("data-group=\"always_fails\" data-series=\"p p50\" data-value=\"0\""),
        "the latency chart (log axis) draws a 0 µs bar for a workload with no completed operation"
    );
}
