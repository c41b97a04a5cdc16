//! Existing write code inside `write`: a closure that opens its own transaction gets a savepoint
//! nested in litepool's batch (issue 23). Each test checks the caller's answer, the group-commit
//! statistics and the rows on disk together.

use litepool::{Error, Pools};

use crate::common::*;

/// A split database (group commit) or a plain one (`write` runs alone).
fn fixture(split: bool) -> Fixture {
    let pools = if split {
        "[databases.orders.writer]\n[databases.orders.readers]\nmax_size = 2\n"
    } else {
        ""
    };
    Fixture::new(&format!(
        "{}\n[databases.orders]\npath = \"{{data}}/orders.db\"\nprofile = \"recommended\"\n{pools}",
        shipped_profiles()
    ))
}

fn open(f: &Fixture) -> Pools {
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    pools
        .writer("orders")
        .unwrap()
        .execute_batch("CREATE TABLE orders(id INTEGER PRIMARY KEY, client TEXT NOT NULL, total INTEGER NOT NULL CHECK (total >= 0))")
        .unwrap();
    pools
}

/// The rows on disk, read by a new connection of its own (not a pooled one).
fn on_disk(f: &Fixture) -> Vec<(i64, String)> {
    let c = rusqlite::Connection::open(f.path("data/orders.db")).unwrap();
    let mut s = c
        .prepare("SELECT id, client FROM orders ORDER BY id")
        .unwrap();
    let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.map(Result::unwrap).collect()
}

/// Code written for a plain rusqlite connection: its own transaction, committed.
fn place_order(conn: &mut litepool::WriteConn<'_>, id: i64, client: &str) -> rusqlite::Result<i64> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO orders(id, client, total) VALUES (?1, ?2, 10)",
        (id, client),
    )?;
    let rowid = tx.last_insert_rowid();
    tx.commit()?;
    Ok(rowid)
}

/// A helper written for `&rusqlite::Connection` takes the write connection as is.
fn count(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM orders", [], |r| r.get(0))
}

#[test]
fn a_closure_that_opens_a_transaction_commits_with_the_batch() {
    for split in [true, false] {
        let f = fixture(split);
        let pools = open(&f);
        let id = pools.write("orders", |c| place_order(c, 7, "ada")).unwrap();
        assert_eq!(id, 7, "split = {split}");
        let n = pools.write("orders", |c| count(c)).unwrap();
        assert_eq!(n, 1);
        if split {
            let stats = pools.handle("orders").unwrap().write_stats().unwrap();
            assert_eq!(stats.writes, 2, "{stats:?}");
            assert_eq!(stats.failed_writes, 0, "{stats:?}");
        }
        drop(pools);
        assert_eq!(on_disk(&f), vec![(7, "ada".to_owned())], "split = {split}");
    }
}

#[test]
fn an_inner_transaction_rolled_back_undoes_only_its_own_work() {
    for split in [true, false] {
        let f = fixture(split);
        let pools = open(&f);
        let kept = pools
            .write("orders", |c| {
                c.execute(
                    "INSERT INTO orders(id, client, total) VALUES (1, 'outer', 1)",
                    [],
                )?;
                {
                    let tx = c.transaction()?;
                    tx.execute(
                        "INSERT INTO orders(id, client, total) VALUES (2, 'dropped', 1)",
                        [],
                    )?;
                    // Dropped without commit: rolled back, as rusqlite's Transaction would be.
                }
                {
                    let mut tx = c.transaction()?;
                    tx.execute(
                        "INSERT INTO orders(id, client, total) VALUES (3, 'rolled back', 1)",
                        [],
                    )?;
                    tx.rollback()?;
                }
                let mut tx = c.transaction()?;
                // A savepoint inside the nested one: both commit.
                let inner = tx.savepoint()?;
                inner.execute(
                    "INSERT INTO orders(id, client, total) VALUES (4, 'inner', 1)",
                    [],
                )?;
                inner.commit()?;
                tx.commit()?;
                count(c)
            })
            .unwrap();
        assert_eq!(kept, 2, "split = {split}");
        drop(pools);
        assert_eq!(
            on_disk(&f),
            vec![(1, "outer".to_owned()), (4, "inner".to_owned())],
            "split = {split}"
        );
    }
}

#[test]
fn a_failing_inner_transaction_fails_its_caller_only_and_the_batch_commits() {
    let f = fixture(true);
    let pools = open(&f);
    let orders = pools.handle("orders").unwrap();
    let answers: Vec<_> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..8i64)
            .map(|i| {
                let orders = orders.clone();
                s.spawn(move || {
                    orders.write(move |c| {
                        let tx = c.transaction()?;
                        // Every third order violates the CHECK: its caller gets the error.
                        let total = if i % 3 == 0 { -1 } else { i };
                        tx.execute(
                            "INSERT INTO orders(id, client, total) VALUES (?1, 'c', ?2)",
                            (i, total),
                        )?;
                        tx.commit()
                    })
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut committed = Vec::new();
    for (i, answer) in answers.into_iter().enumerate() {
        match answer {
            Ok(()) => committed.push(i as i64),
            Err(e) => {
                assert_eq!(i % 3, 0, "order {i} failed: {e}");
                assert!(e.to_string().contains("CHECK constraint failed"), "{e}");
            }
        }
    }
    assert_eq!(committed, vec![1, 2, 4, 5, 7]);
    let stats = orders.write_stats().unwrap();
    assert_eq!(stats.writes, 5, "{stats:?}");
    assert_eq!(stats.failed_writes, 3, "{stats:?}");
    drop((orders, pools));
    let ids: Vec<i64> = on_disk(&f).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, committed);
}

#[test]
fn begin_sent_as_sql_inside_a_write_is_refused_and_nothing_commits() {
    let f = fixture(true);
    let pools = open(&f);
    let e = pools
        .write("orders", |c| {
            c.execute(
                "INSERT INTO orders(id, client, total) VALUES (1, 'x', 1)",
                [],
            )?;
            // `unchecked_transaction` is rusqlite's own BEGIN, not WriteConn's savepoint.
            let tx = c.unchecked_transaction()?;
            tx.commit()
        })
        .unwrap_err();
    assert!(matches!(e, Error::Refused { .. }), "{e:?}");
    assert!(e.to_string().contains("BEGIN"), "{e}");
    assert!(e.to_string().contains("conn.transaction()"), "{e}");
    drop(pools);
    assert_eq!(on_disk(&f), vec![]);
}
