//! The pragma guard is an allowlist: on a pooled connection, an assignment to any pragma SQLite
//! knows (`PRAGMA pragma_list`) is refused unless it leaves nothing for the connection's next
//! borrower ([`litepool::customizer::ASSIGNABLE_PRAGMAS`]).

use litepool::customizer::ASSIGNABLE_PRAGMAS;
use litepool::Pools;

use crate::common::*;

/// One pool of a single connection, so that the next checkout gets the same connection.
fn one_connection(extra: &str) -> (Fixture, Pools) {
    let f = Fixture::new(&format!(
        "{}\n[databases.app]\npath = \"{{data}}/app.db\"\nprofile = \"recommended\"\n[databases.app.pool]\nmax_size = 1\n{extra}",
        shipped_profiles()
    ));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    pools
        .get("app")
        .unwrap()
        .execute_batch("CREATE TABLE stock(qty INTEGER CHECK (qty >= 0))")
        .unwrap();
    (f, pools)
}

/// Every row of `PRAGMA name`, as text.
fn read(c: &rusqlite::Connection, name: &str) -> Result<Vec<Vec<String>>, String> {
    let mut stmt = c
        .prepare(&format!("PRAGMA {name}"))
        .map_err(|e| e.to_string())?;
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |r| {
            (0..n)
                .map(|i| {
                    r.get::<_, rusqlite::types::Value>(i)
                        .map(|v| format!("{v:?}"))
                })
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(|e| e.to_string())?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| e.to_string());
    rows
}

const VALUES: [&str; 6] = ["1", "0", "-1", "100", "'x'", "OFF"];

#[test]
fn every_pragma_assignment_is_refused_or_leaves_nothing_for_the_next_borrower() {
    let (_f, pools) = one_connection("");
    let names: Vec<String> = {
        let c = pools.get("app").unwrap();
        let mut s = c.prepare("PRAGMA pragma_list").unwrap();
        let names = s
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        names
    };
    assert!(names.len() > 50, "{names:?}");
    let (mut refused, mut restated) = (0, 0);
    for name in &names {
        if ASSIGNABLE_PRAGMAS.contains(&name.as_str()) {
            continue;
        }
        let before = read(&pools.get("app").unwrap(), name);
        for value in VALUES {
            for sql in [
                format!("PRAGMA {name} = {value}"),
                format!("PRAGMA {name}({value})"),
            ] {
                let c = pools.get("app").unwrap();
                match c.execute_batch(&sql) {
                    Err(e) => {
                        assert!(e.to_string().contains("not authorized"), "{sql}: {e}");
                        refused += 1;
                    }
                    // Only a value the profile already sets (tests/startup_sql.rs), checked
                    // unchanged below.
                    Ok(()) => {
                        assert!(
                            litepool::profile::MANAGED.contains(&name.as_str()),
                            "{sql} was allowed"
                        );
                        restated += 1;
                    }
                }
            }
        }
        let after = read(&pools.get("app").unwrap(), name);
        assert_eq!(before, after, "PRAGMA {name} changed for the next borrower");
    }
    assert!(refused > 500, "{refused}");
    assert!(restated < 20, "{restated} restatements");
    // The example that stands for the class: with ignore_check_constraints refused, the next
    // borrower's CHECK still holds.
    let c = pools.get("app").unwrap();
    let e = c.execute("INSERT INTO stock VALUES (-5)", []).unwrap_err();
    assert!(e.to_string().contains("CHECK constraint failed"), "{e}");
}

#[test]
fn the_control_without_the_guard_leaks_an_assignment_to_the_next_user() {
    // The same check on a bare connection: the assignment sticks, which is what the guard stops.
    let dir = tempfile::tempdir().unwrap();
    let c = rusqlite::Connection::open(dir.path().join("bare.db")).unwrap();
    c.execute_batch("CREATE TABLE stock(qty INTEGER CHECK (qty >= 0))")
        .unwrap();
    let before = read(&c, "ignore_check_constraints").unwrap();
    c.execute_batch("PRAGMA ignore_check_constraints = ON")
        .unwrap();
    assert_ne!(read(&c, "ignore_check_constraints").unwrap(), before);
    c.execute("INSERT INTO stock VALUES (-5)", []).unwrap();
}

#[test]
fn allowed_pragmas_work_and_reading_any_pragma_stays_allowed() {
    let (_f, pools) = one_connection("");
    let c = pools.get("app").unwrap();
    for sql in [
        "PRAGMA user_version = 7",
        "PRAGMA application_id = 42",
        "PRAGMA optimize",
        "PRAGMA wal_checkpoint(PASSIVE)",
        "PRAGMA incremental_vacuum(1)",
        "PRAGMA shrink_memory",
        "PRAGMA table_info(stock)",
        "PRAGMA integrity_check(10)",
        "PRAGMA foreign_key_check(stock)",
        "PRAGMA foreign_keys",
        "PRAGMA query_only",
        "PRAGMA ignore_check_constraints",
    ] {
        c.execute_batch(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    drop(c);
    let v: i64 = pools
        .get("app")
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        v, 7,
        "user_version is data in the file, and the application set it"
    );
    // defer_foreign_keys is switched off by SQLite at the end of every transaction.
    let mut c = pools.get("app").unwrap();
    let tx = c.transaction().unwrap();
    tx.execute_batch("PRAGMA defer_foreign_keys = ON").unwrap();
    tx.commit().unwrap();
    drop(c);
    let d: i64 = pools
        .get("app")
        .unwrap()
        .query_row("PRAGMA defer_foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(d, 0);
}

#[test]
fn schema_qualified_and_mixed_case_assignments_are_refused_too() {
    let (_f, pools) = one_connection("");
    for sql in [
        "PRAGMA main.ignore_check_constraints = ON",
        "PRAGMA temp.foreign_keys = 0",
        "PRAGMA Query_Only = 0",
        "pragma MAIN.Synchronous(OFF)",
        "PRAGMA \"writable_schema\" = 1",
    ] {
        let e = pools.get("app").unwrap().execute_batch(sql).unwrap_err();
        assert!(e.to_string().contains("not authorized"), "{sql}: {e}");
    }
    let c = pools.get("app").unwrap();
    let e = c.execute("INSERT INTO stock VALUES (-5)", []).unwrap_err();
    assert!(e.to_string().contains("CHECK constraint failed"), "{e}");
}
