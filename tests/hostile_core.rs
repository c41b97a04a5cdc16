//! Hostile cases for the core API an application uses with its own pool: `check_connections`,
//! `ConnectionsReport`, `PragmaConnection`, `PragmaCustomizer::customize`,
//! `Budget::without_files` and `lint`. Each test asserts the correct behaviour.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use litepool::budget::Budget;
use litepool::check::check_connections;
use litepool::connection::{PragmaConnection, PragmaError, Raw};
use litepool::pragma::JournalMode;
use litepool::{Error, PragmaCustomizer, PragmaSet, Profile, Settings};

/// A connection that keeps what it is set to, with knobs for misbehaviour.
#[derive(Default, Clone)]
struct Fake {
    values: HashMap<&'static str, Raw>,
    /// Pragmas whose read fails.
    fail_get: Vec<&'static str>,
    /// Pragmas whose assignment fails.
    fail_set: Vec<&'static str>,
    /// Pragmas whose assignment is silently ignored.
    ignore_set: Vec<&'static str>,
    /// Pragmas read back as this value whatever was set.
    report: HashMap<&'static str, Raw>,
    /// Panic on any call.
    panic: bool,
    /// Number of get_pragma calls.
    gets: usize,
}

fn busy() -> PragmaError {
    PragmaError::Driver {
        message: "database is locked".into(),
        busy: true,
    }
}

impl PragmaConnection for Fake {
    fn set_pragma(&mut self, pragma: &'static str, value: &Raw) -> Result<(), PragmaError> {
        if self.panic {
            panic!("hostile connection panics in set_pragma({pragma})");
        }
        if self.fail_set.contains(&pragma) {
            return Err(PragmaError::Driver {
                message: format!("cannot set {pragma}"),
                busy: false,
            });
        }
        if !self.ignore_set.contains(&pragma) {
            let v = match (pragma, value) {
                ("synchronous", Raw::Text(t)) if t == "normal" => Raw::Int(1),
                ("synchronous", Raw::Text(t)) if t == "full" => Raw::Int(2),
                ("temp_store", Raw::Text(t)) if t == "memory" => Raw::Int(2),
                _ => value.clone(),
            };
            self.values.insert(pragma, v);
        }
        Ok(())
    }
    fn get_pragma(&mut self, pragma: &'static str) -> Result<Raw, PragmaError> {
        self.gets += 1;
        if self.panic {
            panic!("hostile connection panics in get_pragma({pragma})");
        }
        if self.fail_get.contains(&pragma) {
            return Err(busy());
        }
        if let Some(v) = self.report.get(pragma) {
            return Ok(v.clone());
        }
        Ok(match (pragma, self.values.get(pragma)) {
            (_, Some(v)) => v.clone(),
            ("journal_mode", None) => Raw::Text("delete".into()),
            (_, None) => Raw::Int(0),
        })
    }
    fn execute_fixed(&mut self, _sql: &'static str) -> Result<(), PragmaError> {
        Ok(())
    }
}

fn profile() -> Profile {
    let mut set = PragmaSet::default();
    set.journal_mode = Some(JournalMode::Wal);
    set.foreign_keys = Some(true);
    set.cache_size = Some("8MiB".parse().unwrap());
    Profile::new("fast", set).unwrap()
}

fn applied(n: usize) -> Vec<Fake> {
    let p = profile();
    (0..n)
        .map(|_| {
            let mut c = Fake::default();
            p.apply(&mut c, "jobs", true).unwrap();
            c
        })
        .collect()
}

// ---------------------------------------------------------------- check_connections

#[test]
fn zero_connections_are_not_verified_and_say_so() {
    let report = check_connections(&profile(), "jobs", Vec::<Fake>::new());
    assert!(!report.verified());
    assert_eq!(report.connections, 0);
    let text = report.to_string();
    assert!(text.contains("0 connection(s), NOT verified"), "{text}");
}

#[test]
fn one_good_connection_is_verified() {
    let mut conns = applied(1);
    let report = check_connections(&profile(), "jobs", &mut conns);
    assert!(report.verified(), "{report}");
    assert_eq!(report.pragmas.len(), 3);
    for r in &report.pragmas {
        assert_eq!((r.connections_ok, r.connections), (1, 1), "{r:?}");
    }
}

/// A profile with no pragma to read (empty, or only keys that are not read back) checked on
/// connections that cannot even be read: nothing was read, so nothing was verified.
#[test]
fn a_profile_with_nothing_to_read_is_not_verified_on_broken_connections() {
    let mut set = PragmaSet::default();
    set.optimize_on_open = Some(true);
    let p = Profile::new("nothing", set).unwrap();
    let broken = Fake {
        fail_get: vec![
            "page_count",
            "journal_mode",
            "foreign_keys",
            "cache_size",
            "busy_timeout",
        ],
        ..Fake::default()
    };
    let report = check_connections(&p, "jobs", vec![broken.clone(), broken]);
    assert!(
        !report.verified(),
        "verified() is true although no pragma was read on any connection:\n{report}"
    );
}

/// Connection 2 of 2 fails reading cache_size: that row must not claim every connection was
/// fine, and `failed()` / Display must name it.
#[test]
fn a_read_error_on_one_connection_marks_its_row() {
    let mut conns = applied(2);
    conns[1].fail_get = vec!["cache_size"];
    let report = check_connections(&profile(), "jobs", &mut conns);
    assert!(!report.verified());
    assert_eq!(report.connections, 2);
    let row = report.row("cache_size").unwrap();
    let failed: Vec<_> = report.failed().map(|r| r.pragma).collect();
    let text = report.to_string();
    assert!(
        !row.ok() && failed.contains(&"cache_size"),
        "cache_size could not be read on connection 2, yet its row is ok ({}/{}) and failed() = {failed:?}:\n{text}",
        row.connections_ok,
        row.connections
    );
    assert!(
        !text.contains("1/1"),
        "Display says 1/1 for a report over 2 connections:\n{text}"
    );
}

/// Every connection fails: the table must still name the pragmas (or at least the error does).
#[test]
fn all_connections_failing_names_the_pragma() {
    let mut conns = applied(3);
    for c in &mut conns {
        c.fail_get = vec!["foreign_keys"];
    }
    let report = check_connections(&profile(), "jobs", &mut conns);
    assert!(!report.verified());
    assert_eq!(report.connections, 3);
    let text = report.to_string();
    assert!(text.contains("NOT verified"), "{text}");
    assert!(
        text.contains("pragma foreign_keys: database is locked"),
        "{text}"
    );
    assert!(report.error.as_ref().unwrap().is_busy());
}

/// Text "1" where Int 1 is expected: not verified, and the words must tell the two apart.
#[test]
fn text_where_int_expected_is_not_verified_and_the_words_differ() {
    let mut conns = applied(1);
    conns[0]
        .report
        .insert("foreign_keys", Raw::Text("1".into()));
    let report = check_connections(&profile(), "jobs", &mut conns);
    assert!(!report.verified());
    let row = report.row("foreign_keys").unwrap();
    assert_eq!(row.sqlite, Raw::Text("1".into()));
    // The customizer's error must not read "wanted 1, sqlite reports 1".
    let c = PragmaCustomizer::new("jobs", profile());
    let mut conn = Fake {
        report: [("foreign_keys", Raw::Text("1".into()))].into(),
        ..Fake::default()
    };
    let e = c.customize(&mut conn).unwrap_err();
    assert!(e.is_mismatch());
    let msg = e.to_string();
    assert!(
        !msg.contains("wanted 1, sqlite reports 1"),
        "the mismatch message contradicts itself: {msg}"
    );
    let text = report.to_string();
    assert!(text.contains("<- did not take effect"), "{text}");
}

#[test]
fn huge_and_negative_integers_are_mismatches_with_the_value() {
    for bad in [i64::MIN, -1, i64::MAX, -8193] {
        let mut conns = applied(2);
        conns[1].report.insert("cache_size", Raw::Int(bad));
        let report = check_connections(&profile(), "jobs", &mut conns);
        assert!(!report.verified());
        let row = report.row("cache_size").unwrap();
        assert_eq!(row.sqlite, Raw::Int(bad));
        assert_eq!((row.connections_ok, row.connections), (1, 2));
        let text = report.to_string();
        assert!(
            text.contains(&format!("{bad}")) && text.contains("1/2  <- did not take effect"),
            "{text}"
        );
    }
}

/// Good, wrong value, read error, good: counts must add up and every failing row be shown.
#[test]
fn mixed_connections_count_right() {
    let mut conns = applied(4);
    conns[1]
        .report
        .insert("journal_mode", Raw::Text("delete".into()));
    conns[2].fail_get = vec!["foreign_keys"];
    let report = check_connections(&profile(), "jobs", &mut conns);
    assert!(!report.verified());
    assert_eq!(report.connections, 4);
    let jm = report.row("journal_mode").unwrap();
    assert_eq!(jm.sqlite, Raw::Text("delete".into()));
    // Every row must be over all 4 connections, else "connections ok" hides one.
    for r in &report.pragmas {
        assert_eq!(
            r.connections, 4,
            "row {} counts {} connections of 4:\n{report}",
            r.pragma, r.connections
        );
    }
}

#[test]
fn a_panicking_connection_panics_with_its_message_and_does_not_hang() {
    let r = catch_unwind(AssertUnwindSafe(|| {
        check_connections(
            &profile(),
            "jobs",
            vec![Fake {
                panic: true,
                ..Fake::default()
            }],
        )
    }));
    assert!(r.is_err());
}

// ---------------------------------------------------------------- customize

#[test]
fn customize_ignored_set_is_a_mismatch_naming_the_pragma() {
    let c = PragmaCustomizer::new("jobs", profile());
    let mut conn = Fake {
        ignore_set: vec!["cache_size"],
        ..Fake::default()
    };
    let e = c.customize(&mut conn).unwrap_err();
    assert!(e.is_mismatch());
    assert_eq!(
        e.to_string(),
        "database \"jobs\": pragma cache_size did not take effect: wanted -8192, sqlite reports 0"
    );
    let last = c.last_error();
    let last = last.lock().unwrap();
    assert!(last.as_ref().unwrap().message.contains("cache_size"));
}

#[test]
fn customize_set_and_get_errors_name_the_pragma() {
    let c = PragmaCustomizer::new("jobs", profile());
    let mut conn = Fake {
        fail_set: vec!["foreign_keys"],
        ..Fake::default()
    };
    let e = c.customize(&mut conn).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Pragma {
                pragma: "foreign_keys",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "database \"jobs\": pragma foreign_keys: cannot set foreign_keys"
    );
    let mut conn = Fake {
        fail_get: vec!["cache_size"],
        ..Fake::default()
    };
    let e = c.customize(&mut conn).unwrap_err();
    assert_eq!(
        e.to_string(),
        "database \"jobs\": pragma cache_size: database is locked"
    );
    assert!(e.is_busy());
}

/// After the bootstrap connection, journal_mode = wal is only verified: a later connection
/// that reports delete must be refused, never Ok.
#[test]
fn customize_later_connection_not_in_wal_is_refused() {
    let c = PragmaCustomizer::new("jobs", profile());
    c.customize(&mut Fake::default()).unwrap();
    let mut later = Fake::default();
    let e = c.customize(&mut later).unwrap_err();
    assert_eq!(
        e.to_string(),
        "database \"jobs\": pragma journal_mode did not take effect: wanted wal, sqlite reports delete"
    );
}

/// A connection panicking during the bootstrap must not leave the customizer thinking the
/// database was bootstrapped, nor deadlock the next connection.
#[test]
fn customize_after_a_panicking_bootstrap_bootstraps_again() {
    let c = PragmaCustomizer::new("jobs", profile());
    let r = catch_unwind(AssertUnwindSafe(|| {
        c.customize(&mut Fake {
            panic: true,
            ..Fake::default()
        })
    }));
    assert!(r.is_err());
    // The next connection is the first: it switches journal_mode, and is Ok.
    let mut conn = Fake::default();
    c.customize(&mut conn).unwrap();
    assert_eq!(
        conn.values.get("journal_mode"),
        Some(&Raw::Text("wal".into()))
    );
}

/// page_count read as text "0" (a driver that reports text): must not be Ok if page_size
/// was not set.
#[test]
fn customize_page_count_as_text_never_ok_without_page_size() {
    let mut set = PragmaSet::default();
    set.page_size = Some("8KiB".parse().unwrap());
    let p = Profile::new("p", set).unwrap();
    let c = PragmaCustomizer::new("jobs", p);
    let mut conn = Fake {
        report: [("page_count", Raw::Text("0".into()))].into(),
        ..Fake::default()
    };
    match c.customize(&mut conn) {
        Ok(()) => assert_eq!(conn.values.get("page_size"), Some(&Raw::Int(8192))),
        Err(e) => assert!(e.to_string().contains("page_size"), "{e}"),
    }
}

// ---------------------------------------------------------------- real rusqlite

#[test]
fn real_memory_connection_refuses_wal_naming_it() {
    let c = PragmaCustomizer::new("mem", profile());
    let mut conn = litepool::rusqlite::Connection::open_in_memory().unwrap();
    let e = c.customize(&mut conn).unwrap_err();
    assert_eq!(
        e.to_string(),
        "database \"mem\": pragma journal_mode did not take effect: wanted wal, sqlite reports memory"
    );
}

#[test]
fn real_connections_check_mixed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    let c = PragmaCustomizer::new("x", profile());
    let mut a = litepool::rusqlite::Connection::open(&path).unwrap();
    c.customize(&mut a).unwrap();
    let mut b = litepool::rusqlite::Connection::open(&path).unwrap();
    // b never customized: wal is in the file, cache_size is not (foreign_keys is on by default
    // in the bundled build).
    let report = check_connections(c.profile(), "x", [&mut a, &mut b]);
    assert!(!report.verified());
    let failed: Vec<_> = report.failed().map(|r| r.pragma).collect();
    assert_eq!(failed, ["cache_size"]);
    assert_eq!(report.row("cache_size").unwrap().sqlite, Raw::Int(-2000));
    let text = report.to_string();
    assert_eq!(text.matches("<- did not take effect").count(), 1, "{text}");
    assert!(text.contains("2 connection(s), NOT verified"), "{text}");
}

/// A value that from_toml accepts but SQLite can never report back must be refused at load (or
/// flagged by the lint), not found only when every connection is refused.
#[test]
fn wal_autocheckpoint_out_of_sqlite_range_is_refused_before_runtime() {
    let toml = r#"
        [profiles.p]
        journal_mode = "wal"
        wal_autocheckpoint = 4294967295
        [databases.jobs]
        path = "jobs.db"
        profile = "p"
    "#;
    let Ok(settings) = Settings::from_toml(toml) else {
        return; // refused at load: fine
    };
    let budget = Budget::without_files(&settings);
    let lint = litepool::lint::lint(&settings, &budget);
    let flagged = lint
        .iter()
        .any(|f| f.message.contains("wal_autocheckpoint"));
    let profile = settings.databases["jobs"].profile.clone();
    let c = PragmaCustomizer::new("jobs", profile);
    let dir = tempfile::tempdir().unwrap();
    let mut conn = litepool::rusqlite::Connection::open(dir.path().join("j.db")).unwrap();
    let r = c.customize(&mut conn);
    assert!(
        r.is_ok() || flagged,
        "from_toml accepted wal_autocheckpoint = 4294967295 and the lint is silent ({lint:?}), but every connection is refused: {}",
        r.unwrap_err()
    );
}

#[test]
fn analysis_limit_out_of_sqlite_range_is_refused_before_runtime() {
    let toml = r#"
        [profiles.p]
        analysis_limit = 4294967295
        [databases.jobs]
        path = "jobs.db"
        profile = "p"
    "#;
    let Ok(settings) = Settings::from_toml(toml) else {
        return;
    };
    let budget = Budget::without_files(&settings);
    let lint = litepool::lint::lint(&settings, &budget);
    let flagged = lint.iter().any(|f| f.message.contains("analysis_limit"));
    let c = PragmaCustomizer::new("jobs", settings.databases["jobs"].profile.clone());
    let mut conn = litepool::rusqlite::Connection::open_in_memory().unwrap();
    let r = c.customize(&mut conn);
    assert!(
        r.is_ok() || flagged,
        "from_toml accepted analysis_limit = 4294967295 and the lint is silent, but every connection is refused: {}",
        r.unwrap_err()
    );
}

// ---------------------------------------------------------------- budget and lint

/// Many databases at the largest cache: the sum must not overflow (panic in debug, wrap in
/// release: a tiny worst case under budget).
#[test]
fn budget_sum_of_huge_pools_does_not_overflow() {
    let mut toml = String::from(
        "[limits]\nmemory_budget = \"1GiB\"\n[profiles.big]\npage_size = \"64KiB\"\ncache_size = { pages = 2147483647 }\n",
    );
    for i in 0..140 {
        toml.push_str(&format!(
            "[databases.d{i}]\npath = \"d{i}.db\"\nprofile = \"big\"\n[databases.d{i}.pool]\nmax_size = 1000\n"
        ));
    }
    let settings = Settings::from_toml(&toml).unwrap();
    let b = catch_unwind(|| Budget::without_files(&settings));
    let b = b.expect("Budget::without_files panicked (overflow)");
    assert!(b.over(), "worst case {} not over 1GiB", b.worst_case);
    let lint = litepool::lint::lint(&settings, &b);
    assert!(lint.iter().any(|f| f.code == "over-budget"), "{lint:?}");
}

#[test]
fn budget_zero_and_odd_values() {
    for (budget, over) in [("\"0B\"", true), ("\"1KiB\"", true), ("\"16EiB\"", false)] {
        let toml = format!(
            "[limits]\nmemory_budget = {budget}\n[profiles.p]\ncache_size = \"1KiB\"\n[databases.jobs]\npath = \"j.db\"\nprofile = \"p\"\n"
        );
        match Settings::from_toml(&toml) {
            Ok(s) => {
                let b = Budget::without_files(&s);
                assert_eq!(b.over(), over, "budget {budget}: worst {}", b.worst_case);
                assert_eq!(b.bound_by_file, 0);
            }
            Err(e) => assert!(e.to_string().contains("memory_budget"), "{e}"),
        }
    }
}

#[test]
fn odd_toml_values_are_refused_naming_the_key() {
    for (key, value) in [
        ("cache_size", "-500"),
        ("cache_size", "\"nan\""),
        ("cache_size", "\"-0KiB\""),
        ("mmap_size", "\"1e3\""),
        ("wal_autocheckpoint", "-1"),
        ("wal_autocheckpoint", "1.5"),
        ("busy_timeout", "\"-1s\""),
        ("page_size", "\"3000B\""),
        ("journal_size_limit", "\"\""),
    ] {
        let toml = format!(
            "[profiles.p]\n{key} = {value}\n[databases.jobs]\npath = \"j.db\"\nprofile = \"p\"\n"
        );
        let r = Settings::from_toml(&toml);
        match r {
            Ok(s) => panic!(
                "{key} = {value} accepted as {:?}",
                s.databases["jobs"].profile.pragmas()
            ),
            Err(e) => assert!(e.to_string().contains(key), "{key} = {value}: {e}"),
        }
    }
}

/// A connection that, while being customized, opens another connection through the same
/// customizer (a driver that lazily opens a sibling): must not hang.
struct Reentrant<'a> {
    customizer: &'a PragmaCustomizer,
    inner: Fake,
    reentered: Option<Result<(), String>>,
}

impl PragmaConnection for Reentrant<'_> {
    fn set_pragma(&mut self, pragma: &'static str, value: &Raw) -> Result<(), PragmaError> {
        if self.reentered.is_none() {
            self.reentered = Some(Err("pending".into()));
            let r = self.customizer.customize(&mut Fake::default());
            self.reentered = Some(r.map_err(|e| e.to_string()));
        }
        self.inner.set_pragma(pragma, value)
    }
    fn get_pragma(&mut self, pragma: &'static str) -> Result<Raw, PragmaError> {
        self.inner.get_pragma(pragma)
    }
    fn execute_fixed(&mut self, sql: &'static str) -> Result<(), PragmaError> {
        self.inner.execute_fixed(sql)
    }
}

#[test]
#[ignore = "known: a PragmaConnection that calls customize on the same customizer while the first connection is set up deadlocks on the bootstrap lock; in the note"]
fn customize_reentered_from_the_connection_does_not_hang() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let c = PragmaCustomizer::new("jobs", profile());
        let mut conn = Reentrant {
            customizer: &c,
            inner: Fake::default(),
            reentered: None,
        };
        let r = c.customize(&mut conn).map_err(|e| e.to_string());
        let _ = tx.send((r, conn.reentered));
    });
    let got = rx.recv_timeout(std::time::Duration::from_secs(3));
    assert!(
        got.is_ok(),
        "customize deadlocked: the connection called customize again on the same customizer while the bootstrap held its lock"
    );
}
