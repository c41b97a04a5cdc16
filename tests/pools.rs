use litepool::profile::Raw;
use litepool::Pools;

use crate::common::*;

const EVERY_PRAGMA: &str = r#"
busy_timeout = "1234ms"
locking_mode = "normal"
page_size = "8KiB"
auto_vacuum = "incremental"
journal_mode = "wal"
synchronous = "extra"
foreign_keys = true
temp_store = "memory"
cache_size = "500MiB"
mmap_size = "64MiB"
wal_autocheckpoint = 500
journal_size_limit = "1MiB"
trusted_schema = false
query_only = false
secure_delete = "fast"
cell_size_check = true
analysis_limit = 400
transaction_behavior = "immediate"
"#;

fn pragma(conn: &rusqlite::Connection, name: &str) -> String {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| {
        r.get::<_, rusqlite::types::Value>(0)
    })
    .map(|v| match v {
        rusqlite::types::Value::Integer(i) => i.to_string(),
        rusqlite::types::Value::Text(t) => t,
        other => format!("{other:?}"),
    })
    .unwrap()
}

#[test]
fn every_pragma_is_applied_on_every_connection_checked_out_at_once() {
    let f = Fixture::new(&one_db(
        EVERY_PRAGMA,
        "max_size = 4\nconnection_timeout = \"5s\"",
    ));
    let settings = f.load().unwrap();
    let pools = Pools::new(&settings).unwrap();
    let mut conns: Vec<_> = (0..4).map(|_| pools.get("main").unwrap()).collect();
    assert_eq!(pools.stats_for("main").unwrap().in_use, 4);
    let expected = [
        ("busy_timeout", "1234"),
        ("locking_mode", "normal"),
        ("page_size", "8192"),
        ("auto_vacuum", "2"),
        ("journal_mode", "wal"),
        ("synchronous", "3"),
        ("foreign_keys", "1"),
        ("temp_store", "2"),
        ("cache_size", "-512000"),
        ("mmap_size", "67108864"),
        ("wal_autocheckpoint", "500"),
        ("journal_size_limit", "1048576"),
        ("trusted_schema", "0"),
        ("query_only", "0"),
        ("secure_delete", "2"),
        ("cell_size_check", "1"),
        ("analysis_limit", "400"),
    ];
    for conn in &conns {
        for (name, want) in expected {
            assert_eq!(pragma(conn, name), want, "pragma {name}");
        }
    }
    // The profile's own read-back agrees, pragma by pragma.
    let profile = &settings.databases["main"].profile;
    assert_eq!(profile.settings().len(), expected.len());
    for conn in &mut conns {
        let readings = profile.verify(&mut **conn, "main").unwrap();
        assert!(readings.iter().all(|r| r.ok()));
    }
    drop(conns);
    assert_eq!(pools.stats_for("main").unwrap().idle, 4);
}

#[test]
fn transaction_behavior_immediate_takes_the_write_lock_at_begin() {
    let f = Fixture::new(&one_db(
        "journal_mode = \"wal\"\nbusy_timeout = \"0ms\"\ntransaction_behavior = \"immediate\"",
        "max_size = 2",
    ));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    let mut a = pools.get("main").unwrap();
    let b = pools.get("main").unwrap();
    let tx = a.transaction().unwrap();
    // With a deferred BEGIN, `a` would hold no lock yet; immediate holds the write lock.
    let err = b.execute_batch("BEGIN IMMEDIATE").unwrap_err();
    assert_eq!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy)
    );
    tx.rollback().unwrap();
}

#[test]
fn five_hundred_mib_in_toml_is_cache_size_minus_512000() {
    let f = Fixture::new(&one_db("cache_size = \"500MiB\"", "max_size = 1"));
    let settings = f.load().unwrap();
    let s = &settings.databases["main"].profile.settings()[0];
    assert_eq!((s.pragma, &s.set), ("cache_size", &Raw::Int(-512_000)));
    let pools = Pools::new(&settings).unwrap();
    assert_eq!(pragma(&pools.get("main").unwrap(), "cache_size"), "-512000");
}

#[test]
fn wal_is_switched_once_and_persists_in_the_file() {
    let f = Fixture::new(&one_db("journal_mode = \"wal\"", "max_size = 3"));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    drop(pools);
    // A plain connection with no profile sees WAL: it is stored in the file.
    let plain = rusqlite::Connection::open(f.path("data/main.db")).unwrap();
    assert_eq!(pragma(&plain, "journal_mode"), "wal");
    // And the header says so (bytes 18 and 19 are 2).
    let bytes = std::fs::read(f.path("data/main.db")).unwrap();
    assert_eq!((bytes[18], bytes[19]), (2, 2));
}

#[test]
fn unknown_pool_name_lists_the_known_ones() {
    let f = Fixture::new(&one_db("", "max_size = 1"));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    let e = pools.get("jbos").unwrap_err().to_string();
    assert_eq!(
        e,
        "unknown database \"jbos\": configured databases are main"
    );
    assert_eq!(pools.names().collect::<Vec<_>>(), ["main"]);
    assert!(pools.pool("main").is_ok());
    let stats = serde_json::to_value(pools.stats()).unwrap();
    assert_eq!(stats["main"]["max_size"], 1);
    assert_eq!(stats["main"]["connections"], 1);
}

#[test]
fn test_on_check_out_defaults_to_false_and_toml_turns_it_on() {
    let f = Fixture::new(&one_db("", "max_size = 1"));
    assert!(!f.load().unwrap().databases["main"].pool.test_on_check_out);
    let f = Fixture::new(&one_db("", "max_size = 1\ntest_on_check_out = true"));
    assert!(f.load().unwrap().databases["main"].pool.test_on_check_out);
}

#[test]
fn file_level_pragmas_apply_to_a_new_file_only() {
    let f = Fixture::new(&one_db(
        "page_size = \"16KiB\"\nauto_vacuum = \"full\"",
        "max_size = 1",
    ));
    drop(Pools::new(&f.load().unwrap()).unwrap());
    let plain = rusqlite::Connection::open(f.path("data/main.db")).unwrap();
    assert_eq!(pragma(&plain, "page_size"), "16384");
    assert_eq!(pragma(&plain, "auto_vacuum"), "1");
}
