//! The same guarantees on every pool kind: litepool's own pools, diesel's and deadpool's go
//! through one open and check-in path, and each case below runs against all three (diesel and
//! deadpool with their features). Each guarantee has a control on a stock r2d2_sqlite pool,
//! where the same steps show the failure the guarantee prevents.

use std::time::{Duration, Instant};

use litepool::Pools;

use crate::common::*;

/// One step on a checked-out connection.
#[derive(Clone, Debug)]
pub enum Step {
    /// Run statements; no rows.
    Exec(String),
    /// Query one statement: the first column of every row, as text.
    Query(String),
}

fn exec(sql: impl Into<String>) -> Step {
    Step::Exec(sql.into())
}

fn query(sql: impl Into<String>) -> Step {
    Step::Query(sql.into())
}

/// What one step returned: rows, or the error's text (with the guard's refusal when there is one).
type Out = Result<Vec<String>, String>;

/// Which pool of a database a session checks out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `get()` on a database without a split.
    Get,
    Writer,
    Reader,
}

/// A pool kind under test.
pub trait Kind {
    fn label(&self) -> &'static str;
    /// Runs `steps` on one checkout of `role` of database `db`, then checks the connection in.
    fn session(&self, db: &str, role: Role, steps: &[Step]) -> Result<Vec<Out>, String>;
    /// Statistics of a concrete pool.
    fn stats(&self, pool: &str) -> litepool::PoolStats;
}

fn text(v: rusqlite::types::ValueRef<'_>) -> String {
    match v {
        rusqlite::types::ValueRef::Null => "NULL".into(),
        rusqlite::types::ValueRef::Integer(i) => i.to_string(),
        rusqlite::types::ValueRef::Real(r) => r.to_string(),
        rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        rusqlite::types::ValueRef::Blob(b) => format!("{b:?}"),
    }
}

/// The steps on a rusqlite connection (litepool's pools and deadpool's).
pub fn run_rusqlite(c: &rusqlite::Connection, steps: &[Step]) -> Vec<Out> {
    let err = |e: rusqlite::Error| match litepool::guard::take_refusal() {
        Some(r) => format!("{e}: {r}"),
        None => e.to_string(),
    };
    steps
        .iter()
        .map(|step| match step {
            Step::Exec(sql) => c.execute_batch(sql).map(|()| Vec::new()).map_err(err),
            Step::Query(sql) => (|| {
                let mut s = c.prepare(sql)?;
                let rows = s
                    .query_map([], |r| Ok(text(r.get_ref(0)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })()
            .map_err(err),
        })
        .collect()
}

pub struct Own(pub Pools);

impl Kind for Own {
    fn label(&self) -> &'static str {
        "litepool"
    }
    fn session(&self, db: &str, role: Role, steps: &[Step]) -> Result<Vec<Out>, String> {
        let c = match role {
            Role::Get => self.0.get(db),
            Role::Writer => self.0.writer(db),
            Role::Reader => self.0.reader(db),
        }
        .map_err(|e| e.to_string())?;
        Ok(run_rusqlite(&c, steps))
    }
    fn stats(&self, pool: &str) -> litepool::PoolStats {
        self.0.stats_for(pool).unwrap()
    }
}

#[cfg(feature = "diesel")]
pub mod diesel_kind {
    use super::*;
    use diesel::connection::SimpleConnection;
    use diesel::deserialize::{self, QueryableByName};
    use diesel::row::{NamedRow, Row};
    use diesel::sql_types::{Nullable, Text};
    use diesel::sqlite::{Sqlite, SqliteConnection};
    use diesel::RunQueryDsl;

    struct First(Option<String>);

    impl QueryableByName<Sqlite> for First {
        fn build<'a>(row: &impl NamedRow<'a, Sqlite>) -> deserialize::Result<Self> {
            Row::get_value::<Nullable<Text>, Option<String>, usize>(row, 0).map(First)
        }
    }

    pub struct Diesel(pub litepool::diesel::Pools);

    fn err(e: diesel::result::Error) -> String {
        match litepool::guard::take_refusal() {
            Some(r) => format!("{e}: {r}"),
            None => e.to_string(),
        }
    }

    fn run(c: &mut SqliteConnection, steps: &[Step]) -> Vec<Out> {
        steps
            .iter()
            .map(|step| match step {
                Step::Exec(sql) => c.batch_execute(sql).map(|()| Vec::new()).map_err(err),
                Step::Query(sql) => diesel::sql_query(sql.as_str())
                    .load::<First>(c)
                    .map(|rows| {
                        rows.into_iter()
                            .map(|r| r.0.unwrap_or_else(|| "NULL".into()))
                            .collect()
                    })
                    .map_err(err),
            })
            .collect()
    }

    impl Kind for Diesel {
        fn label(&self) -> &'static str {
            "diesel"
        }
        fn session(&self, db: &str, role: Role, steps: &[Step]) -> Result<Vec<Out>, String> {
            let mut c = match role {
                Role::Get => self.0.get(db),
                Role::Writer => self.0.writer(db),
                Role::Reader => self.0.reader(db),
            }
            .map_err(|e| e.to_string())?;
            Ok(run(&mut c, steps))
        }
        fn stats(&self, pool: &str) -> litepool::PoolStats {
            self.0.stats_for(pool).unwrap()
        }
    }
}

#[cfg(feature = "deadpool")]
pub mod deadpool_kind {
    use super::*;

    pub struct Deadpool {
        pub rt: tokio::runtime::Runtime,
        pub pools: Option<litepool::deadpool::Pools>,
    }

    impl Deadpool {
        pub fn new(settings: &litepool::Settings) -> Deadpool {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let pools = rt.block_on(async { litepool::deadpool::Pools::new(settings).unwrap() });
            Deadpool {
                rt,
                pools: Some(pools),
            }
        }
    }

    impl Drop for Deadpool {
        fn drop(&mut self) {
            // deadpool closes connections on the runtime's blocking threads.
            let pools = self.pools.take();
            self.rt.block_on(async move { drop(pools) });
        }
    }

    impl Kind for Deadpool {
        fn label(&self) -> &'static str {
            "deadpool"
        }
        fn session(&self, db: &str, role: Role, steps: &[Step]) -> Result<Vec<Out>, String> {
            let pools = self.pools.as_ref().unwrap();
            let steps = steps.to_vec();
            self.rt.block_on(async move {
                let c = match role {
                    Role::Get => pools.get(db).await,
                    Role::Writer => pools.writer(db).await,
                    Role::Reader => pools.reader(db).await,
                }
                .map_err(|e| e.to_string())?;
                c.interact(move |c| run_rusqlite(c, &steps))
                    .await
                    .map_err(|e| e.to_string())
            })
        }
        fn stats(&self, pool: &str) -> litepool::PoolStats {
            self.pools.as_ref().unwrap().stats_for(pool).unwrap()
        }
    }
}

/// `app`: one pool of ONE connection (the next checkout gets the same connection), and
/// `split`: a writer and one reader.
fn fixture() -> Fixture {
    Fixture::new(&format!(
        "{}
[databases.app]
path = \"{{data}}/app.db\"
profile = \"recommended\"
[databases.app.pool]
max_size = 1
connection_timeout = \"5s\"

[databases.split]
path = \"{{data}}/split.db\"
profile = \"recommended\"
[databases.split.writer]
connection_timeout = \"5s\"
[databases.split.readers]
max_size = 1
connection_timeout = \"5s\"
",
        shipped_profiles()
    ))
}

/// Every pool kind built with this crate's features, over the same files in turn.
fn each_kind(test: impl Fn(&Fixture, &dyn Kind)) {
    {
        let f = fixture();
        let kind = Own(Pools::new(&f.load().unwrap()).unwrap());
        test(&f, &kind);
    }
    #[cfg(feature = "diesel")]
    {
        let f = fixture();
        let kind = diesel_kind::Diesel(litepool::diesel::Pools::new(&f.load().unwrap()).unwrap());
        test(&f, &kind);
    }
    #[cfg(feature = "deadpool")]
    {
        let f = fixture();
        let kind = deadpool_kind::Deadpool::new(&f.load().unwrap());
        test(&f, &kind);
    }
}

fn ok(kind: &dyn Kind, db: &str, role: Role, steps: &[Step]) -> Vec<Vec<String>> {
    kind.session(db, role, steps)
        .unwrap_or_else(|e| panic!("{}: checkout of {db}: {e}", kind.label()))
        .into_iter()
        .zip(steps)
        .map(|(out, step)| out.unwrap_or_else(|e| panic!("{}: {step:?}: {e}", kind.label())))
        .collect()
}

/// Rows of `sql` on a fresh, plain connection to the file (what is on disk).
fn on_disk(path: &std::path::Path, sql: &str) -> Vec<i64> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut s = c.prepare(sql).unwrap();
    let rows = s
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows
}

#[test]
fn a_transaction_left_open_is_rolled_back_at_check_in_on_every_pool_kind() {
    each_kind(|f, kind| {
        let k = kind.label();
        ok(kind, "app", Role::Get, &[exec("CREATE TABLE t(x INTEGER)")]);
        // Borrower 1 leaves a write transaction open and gives the connection back.
        ok(
            kind,
            "app",
            Role::Get,
            &[exec("BEGIN IMMEDIATE; INSERT INTO t VALUES (1)")],
        );
        // Its lock is gone at once: another process's connection can take the write lock
        // without waiting.
        let other = rusqlite::Connection::open(f.path("data/app.db")).unwrap();
        other
            .execute_batch("BEGIN IMMEDIATE; ROLLBACK")
            .unwrap_or_else(|e| panic!("{k}: the write lock outlived the checkout: {e}"));
        // Borrower 2 gets the same connection, outside any transaction; its INSERT commits.
        let out = ok(
            kind,
            "app",
            Role::Get,
            &[
                exec("INSERT INTO t VALUES (2)"),
                query("SELECT x FROM t ORDER BY x"),
            ],
        );
        assert_eq!(out[1], ["2"], "{k}: borrower 2 saw borrower 1's rows");
        assert_eq!(
            on_disk(&f.path("data/app.db"), "SELECT x FROM t ORDER BY x"),
            [2],
            "{k}: rows on disk"
        );
    });
}

#[test]
fn control_a_stock_r2d2_pool_hands_the_open_transaction_to_the_next_borrower() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stock.db");
    let pool = r2d2::Pool::builder()
        .max_size(1)
        .test_on_check_out(false)
        .build(r2d2_sqlite::SqliteConnectionManager::file(&path))
        .unwrap();
    pool.get()
        .unwrap()
        .execute_batch("CREATE TABLE t(x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1)")
        .unwrap();
    let c = pool.get().unwrap();
    c.execute("INSERT INTO t VALUES (2)", []).unwrap();
    assert!(
        !c.is_autocommit(),
        "the next borrower is inside borrower 1's transaction"
    );
    drop(c);
    drop(pool);
    assert_eq!(
        on_disk(&path, "SELECT count(*) FROM t"),
        [0],
        "both rows lost"
    );
}

/// Every row of `PRAGMA name` as text, or the error.
fn reading(kind: &dyn Kind, name: &str) -> Out {
    kind.session("app", Role::Get, &[query(format!("PRAGMA {name}"))])
        .unwrap()
        .remove(0)
}

const VALUES: [&str; 6] = ["1", "0", "-1", "100", "'x'", "OFF"];

#[test]
fn every_pragma_assignment_is_refused_or_invisible_to_the_next_checkout_on_every_pool_kind() {
    each_kind(|_f, kind| {
        let k = kind.label();
        ok(
            kind,
            "app",
            Role::Get,
            &[exec(
                "CREATE TABLE stock(qty INTEGER CHECK (qty >= 0)); \
                 CREATE TABLE parent(id INTEGER PRIMARY KEY); \
                 CREATE TABLE child(p REFERENCES parent(id))",
            )],
        );
        let names = ok(kind, "app", Role::Get, &[query("PRAGMA pragma_list")]).remove(0);
        assert!(names.len() > 50, "{k}: {names:?}");
        let (mut refused, mut allowed) = (0, 0);
        for name in &names {
            // Data stored in the file, not connection state: meant to be seen by everyone.
            if ["user_version", "application_id"].contains(&name.as_str()) {
                continue;
            }
            let before = reading(kind, name);
            for value in VALUES {
                for sql in [
                    format!("PRAGMA {name} = {value}"),
                    format!("PRAGMA {name}({value})"),
                    format!("PRAGMA main.{name} = {value}"),
                ] {
                    let out = kind.session("app", Role::Get, &[exec(&sql)]).unwrap();
                    match &out[0] {
                        Err(e) if e.contains("not authorized") => {
                            // The refusal names the statement and why.
                            assert!(
                                e.contains(&format!("PRAGMA {name}")) && e.contains("borrower"),
                                "{k}: {sql}: {e}"
                            );
                            refused += 1;
                        }
                        _ => allowed += 1,
                    }
                    let after = reading(kind, name);
                    assert_eq!(
                        before, after,
                        "{k}: `{sql}` changed PRAGMA {name} for the next borrower"
                    );
                }
            }
        }
        assert!(refused > 800, "{k}: {refused} refused, {allowed} allowed");
        // The examples that stand for the class: the CHECK constraint and foreign keys still hold.
        let out = kind
            .session(
                "app",
                Role::Get,
                &[
                    exec("INSERT INTO stock VALUES (-5)"),
                    exec("INSERT INTO child VALUES (42)"),
                ],
            )
            .unwrap();
        assert!(
            out[0]
                .as_ref()
                .unwrap_err()
                .contains("CHECK constraint failed"),
            "{k}: {out:?}"
        );
        assert!(
            out[1]
                .as_ref()
                .unwrap_err()
                .contains("FOREIGN KEY constraint failed"),
            "{k}: {out:?}"
        );
    });
}

#[test]
fn defer_foreign_keys_is_allowed_inside_a_transaction_and_refused_outside() {
    each_kind(|_f, kind| {
        let k = kind.label();
        ok(
            kind,
            "app",
            Role::Get,
            &[exec(
                "CREATE TABLE parent(id INTEGER PRIMARY KEY); CREATE TABLE child(p REFERENCES parent(id))",
            )],
        );
        // Inside a transaction: the child first, then its parent, commits.
        ok(
            kind,
            "app",
            Role::Get,
            &[exec(
                "BEGIN; PRAGMA defer_foreign_keys = ON; INSERT INTO child VALUES (1); \
                 INSERT INTO parent VALUES (1); COMMIT",
            )],
        );
        // Left open with the pragma on: rolled back at check-in, and the pragma with it.
        ok(
            kind,
            "app",
            Role::Get,
            &[exec("BEGIN; PRAGMA defer_foreign_keys = ON")],
        );
        assert_eq!(reading(kind, "defer_foreign_keys").unwrap(), ["0"], "{k}");
        // Outside a transaction it would stay on for the next borrower: refused.
        let out = kind
            .session("app", Role::Get, &[exec("PRAGMA defer_foreign_keys = ON")])
            .unwrap();
        let e = out[0].as_ref().unwrap_err();
        assert!(
            e.contains("not authorized") && e.contains("after BEGIN"),
            "{k}: {e}"
        );
        assert_eq!(reading(kind, "defer_foreign_keys").unwrap(), ["0"], "{k}");
    });
}

#[test]
fn temporary_objects_never_reach_the_next_borrower_on_every_pool_kind() {
    each_kind(|f, kind| {
        let k = kind.label();
        ok(
            kind,
            "app",
            Role::Get,
            &[exec(
                "CREATE TABLE orders(id INTEGER PRIMARY KEY, qty INTEGER)",
            )],
        );
        let created = kind.stats("app").connections_created;
        // A temporary table that shadows main.orders, and a temporary trigger on main.orders
        // that deletes every row inserted: both live as long as the connection.
        ok(
            kind,
            "app",
            Role::Get,
            &[
                exec("CREATE TEMP TABLE scratch(x); INSERT INTO scratch VALUES (1)"),
                query("SELECT x FROM scratch"),
            ],
        );
        ok(
            kind,
            "app",
            Role::Get,
            &[exec(
                "CREATE TEMP TABLE orders(id INTEGER PRIMARY KEY, qty INTEGER); \
                 CREATE TEMP TRIGGER eat AFTER INSERT ON main.orders BEGIN DELETE FROM main.orders; END",
            )],
        );
        // The next borrower's INSERT goes into main.orders and stays there.
        let out = ok(
            kind,
            "app",
            Role::Get,
            &[
                exec("INSERT INTO orders(qty) VALUES (5)"),
                query("SELECT count(*) FROM sqlite_temp_schema"),
            ],
        );
        assert_eq!(
            out[1],
            ["0"],
            "{k}: the temporary schema reached the next borrower"
        );
        assert_eq!(
            on_disk(&f.path("data/app.db"), "SELECT qty FROM orders"),
            [5],
            "{k}: rows on disk"
        );
        // Each connection that created temporary objects was closed and replaced.
        assert!(
            kind.stats("app").connections_created >= created + 2,
            "{k}: {:?}",
            kind.stats("app")
        );
    });
}

#[test]
fn readers_are_read_only_through_every_path_on_every_pool_kind() {
    each_kind(|f, kind| {
        let k = kind.label();
        ok(kind, "split", Role::Writer, &[exec("CREATE TABLE t(x)")]);
        for sql in [
            "INSERT INTO t VALUES (1)",
            "PRAGMA query_only = 0",
            "PRAGMA query_only = OFF",
            "ATTACH 'other.db' AS o",
            "CREATE TEMP TABLE x(y)",
            "CREATE TABLE u(x)",
            "DELETE FROM t",
        ] {
            let out = kind.session("split", Role::Reader, &[exec(sql)]).unwrap();
            assert!(out[0].is_err(), "{k}: {sql} ran on a reader: {out:?}");
        }
        // BEGIN IMMEDIATE on a read-only connection cannot take the write lock.
        let out = kind
            .session(
                "split",
                Role::Reader,
                &[exec("BEGIN IMMEDIATE; INSERT INTO t VALUES (2); COMMIT")],
            )
            .unwrap();
        assert!(out[0].is_err(), "{k}: {out:?}");
        assert_eq!(
            on_disk(&f.path("data/split.db"), "SELECT count(*) FROM t"),
            [0],
            "{k}"
        );
        assert!(
            !f.path("data/other.db").exists(),
            "{k}: ATTACH created a file"
        );
    });
}

#[test]
fn a_deleted_file_stops_every_pool_kind() {
    each_kind(|f, kind| {
        let k = kind.label();
        ok(kind, "app", Role::Get, &[exec("CREATE TABLE t(x)")]);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(f.path(&format!("data/app.db{suffix}")));
        }
        // The watcher runs every 500 ms; poll, bounded.
        let deadline = Instant::now() + Duration::from_secs(10);
        let e = loop {
            match kind.session("app", Role::Get, &[exec("INSERT INTO t VALUES (1)")]) {
                Err(e) => break e,
                Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                Ok(out) => panic!("{k}: still writing into a deleted file: {out:?}"),
            }
        };
        assert!(
            e.contains("deleted, renamed or replaced") && e.contains("app.db"),
            "{k}: {e}"
        );
    });
}

#[test]
fn statistics_count_checkouts_check_ins_connections_and_the_page_cache_on_every_pool_kind() {
    each_kind(|_f, kind| {
        let k = kind.label();
        ok(
            kind,
            "app",
            Role::Get,
            &[exec(
                "CREATE TABLE t(x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
                 INSERT INTO t SELECT i FROM n",
            )],
        );
        let before = kind.stats("app");
        for _ in 0..10 {
            let out = ok(kind, "app", Role::Get, &[query("SELECT sum(x) FROM t")]);
            assert_eq!(out[0], ["500500"], "{k}");
        }
        // deadpool samples the page cache as it recycles a connection: one more checkout.
        ok(kind, "app", Role::Get, &[]);
        let after = kind.stats("app");
        assert_eq!(after.checkouts - before.checkouts, 11, "{k}: {after:?}");
        assert_eq!(after.checkins - before.checkins, 11, "{k}: {after:?}");
        assert_eq!(after.connections_created, 1, "{k}: {after:?}");
        assert!(after.cache.hit > before.cache.hit, "{k}: {after:?}");
        assert_eq!(after.customizer_failures, 0, "{k}");
    });
}

#[cfg(any(feature = "diesel", feature = "deadpool"))]
#[test]
fn adapters_refuse_what_only_litepools_own_pools_do_naming_the_key() {
    for (extra, key) in [
        ("checkpoint = \"background\"\n", "key `checkpoint`"),
        (
            "[databases.jobs.writer]\noptimize_interval = \"1h\"\n[databases.jobs.readers]\n",
            "key `writer.optimize_interval`",
        ),
    ] {
        let f = Fixture::new(&format!(
            "{}\n[databases.jobs]\npath = \"{{data}}/jobs.db\"\nprofile = \"recommended\"\n{extra}",
            shipped_profiles()
        ));
        let settings = f.load().unwrap();
        // litepool's own pools do it.
        drop(Pools::new(&settings).unwrap());
        let mut errors = Vec::new();
        #[cfg(feature = "diesel")]
        errors.push(
            litepool::diesel::Pools::new(&settings)
                .unwrap_err()
                .to_string(),
        );
        #[cfg(feature = "deadpool")]
        {
            let rt = tokio::runtime::Runtime::new().unwrap();
            errors.push(rt.block_on(async {
                litepool::deadpool::Pools::new(&settings)
                    .unwrap_err()
                    .to_string()
            }));
        }
        for e in errors {
            assert!(
                e.contains("database \"jobs\"") && e.contains(key) && e.contains("litepool::Pools"),
                "{e}"
            );
        }
    }
}
