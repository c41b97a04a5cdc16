//! A corpus of hostile configuration files and environment overrides. Each fails with an error
//! naming the problem, and a pre-existing database keeps its exact bytes (sha256).

use std::os::unix::fs::PermissionsExt;

use litepool::Pools;

use crate::common::*;

/// A configuration with one database `main` at `{data}/main.db` (or `path`).
fn config(profile: &str, db: &str, pool: &str) -> String {
    let path = if db.contains("path =") {
        String::new()
    } else {
        "path = \"{data}/main.db\"\n".into()
    };
    format!("[profiles.p]\n{profile}\n\n[databases.main]\n{path}profile = \"p\"\n{db}\n\n[databases.main.pool]\n{pool}\n")
}

struct Case {
    name: &'static str,
    toml: String,
    vars: Vec<(&'static str, &'static str)>,
    expect: &'static [&'static str],
}

fn file(name: &'static str, toml: String, expect: &'static [&'static str]) -> Case {
    Case {
        name,
        toml,
        vars: vec![],
        expect,
    }
}

fn env(
    name: &'static str,
    var: &'static str,
    value: &'static str,
    expect: &'static [&'static str],
) -> Case {
    Case {
        name,
        toml: config("", "", ""),
        vars: vec![(var, value)],
        expect,
    }
}

fn corpus() -> Vec<Case> {
    let p = |s: &str| config(s, "", "");
    let d = |s: &str| config("", s, "");
    let pool = |s: &str| config("", "", s);
    vec![
        file(
            "toml syntax error",
            "[databases.main\npath = ".into(),
            &["default.toml", "TOML parse error"],
        ),
        file(
            "unknown top-level table",
            p("") + "[limitz]\nmemory_budget = \"1GiB\"\n",
            &["unknown field `limitz`"],
        ),
        file(
            "unknown database key",
            d("pth = \"x.db\""),
            &["key `databases.main`", "unknown field `pth`"],
        ),
        file(
            "misspelled pragma",
            p("jornal_mode = \"wal\""),
            &["key `profiles.p`", "unknown field `jornal_mode`"],
        ),
        file(
            "writable_schema is not a litepool key",
            p("writable_schema = true"),
            &["unknown field `writable_schema`"],
        ),
        file(
            "quoted key with SQL",
            p("\"journal_mode; DROP TABLE customers\" = \"wal\""),
            &["unknown field `journal_mode; DROP TABLE customers`"],
        ),
        file(
            "SQL in journal_mode",
            p("journal_mode = \"wal; DROP TABLE customers\""),
            &["invalid journal_mode \"wal; DROP TABLE customers\""],
        ),
        file(
            "SQL in synchronous",
            p("synchronous = \"normal; PRAGMA writable_schema = 1\""),
            &["invalid synchronous"],
        ),
        file(
            "wrong type for max_size",
            pool("max_size = \"ten\""),
            &["key `databases.main.pool.max_size`", "expected an integer"],
        ),
        file(
            "wrong type for foreign_keys",
            p("foreign_keys = \"maybe\""),
            &["key `profiles.p.foreign_keys`", "\"maybe\""],
        ),
        file(
            "wrong type for path",
            "[databases.main]\npath = [1, 2]\n".into(),
            &["key `databases.main.path`", "invalid type"],
        ),
        file(
            "negative size",
            p("cache_size = \"-5MiB\""),
            &["invalid cache_size \"-5MiB\""],
        ),
        file(
            "huge size",
            p("mmap_size = \"99999999TiB\""),
            &["invalid mmap_size \"99999999TiB\""],
        ),
        file(
            "size with a bad unit",
            p("cache_size = \"5 MBs\""),
            &["invalid cache_size \"5 MBs\""],
        ),
        file(
            "fractional size",
            p("journal_size_limit = \"1.5GiB\""),
            &["invalid size \"1.5GiB\""],
        ),
        file(
            "mmap over sqlite's cap",
            p("mmap_size = \"4GiB\""),
            &["at most 2147418112"],
        ),
        file(
            "bare cache_size number",
            p("cache_size = -500"),
            &["ambiguous"],
        ),
        file(
            "duration out of range",
            p("busy_timeout = \"30days\""),
            &["invalid busy_timeout \"30days\"", "2147483647ms"],
        ),
        file(
            "duration without unit",
            p("busy_timeout = \"soon\""),
            &["invalid busy_timeout \"soon\""],
        ),
        file(
            "zero connection timeout",
            pool("connection_timeout = \"0s\""),
            &["above zero"],
        ),
        file(
            "synchronous off without allow_unsafe",
            p("synchronous = \"off\""),
            &["synchronous = \"off\" is unsafe"],
        ),
        file(
            "journal off without allow_unsafe",
            p("journal_mode = \"off\""),
            &["journal_mode = \"off\" is unsafe"],
        ),
        file(
            "exclusive locking without allow_unsafe",
            p("locking_mode = \"exclusive\""),
            &["locking_mode = \"exclusive\" is unsafe"],
        ),
        file("max_size 0", pool("max_size = 0"), &["invalid max_size 0"]),
        file(
            "negative max_size",
            pool("max_size = -1"),
            &["key `databases.main.pool.max_size`", "-1"],
        ),
        file(
            "max_size over u32",
            pool("max_size = 99999999999"),
            &["key `databases.main.pool.max_size`"],
        ),
        file(
            "min_idle over max_size",
            pool("max_size = 2\nmin_idle = 5"),
            &["invalid min_idle 5"],
        ),
        file(
            "unknown profile",
            config("", "", "").replace("profile = \"p\"", "profile = \"turbo\""),
            &["unknown profile \"turbo\""],
        ),
        file(
            "page_size not a power of two",
            p("page_size = 1000"),
            &["invalid page_size \"1000\""],
        ),
        file(
            "page_size differing from the existing file",
            p("page_size = \"16KiB\""),
            &["page_size is 4096 in the existing file", "VACUUM"],
        ),
        file(
            "bad file_mode",
            d("file_mode = \"0999\""),
            &["invalid file_mode \"0999\""],
        ),
        file(
            "bad durability",
            d("durability = \"eternal\""),
            &["invalid durability \"eternal\""],
        ),
        file(
            "bad transaction_behavior",
            p("transaction_behavior = \"eventually\""),
            &["invalid transaction_behavior \"eventually\""],
        ),
        file(
            "readers max_size 0",
            config("", "", "")
                + "[databases.main.writer]\n[databases.main.readers]\nmax_size = 0\n",
            &["key `databases.main.readers.max_size`"],
        ),
        file(
            "unknown writer key",
            config("", "", "") + "[databases.main.writer]\nmax_size = 4\n",
            &["key `databases.main.writer`", "unknown field `max_size`"],
        ),
        file(
            "no databases",
            "[profiles.p]\njournal_mode = \"wal\"\n".into(),
            &["no databases configured"],
        ),
        file("empty path", d("path = \"\""), &["invalid path \"\""]),
        file(
            "path to a directory",
            d("path = \"{data}\""),
            &["it is a directory"],
        ),
        file(
            "path to a text file",
            d("path = \"{data}/notes.txt\""),
            &["notes.txt is not an sqlite database (no sqlite header)"],
        ),
        file(
            "path to /dev/null",
            d("path = \"/dev/null\""),
            &["/dev/null is not an sqlite database (it is not a regular file)"],
        ),
        file(
            "path in a missing directory",
            d("path = \"{data}/missing/main.db\""),
            &["missing does not exist"],
        ),
        file(
            "path in a read-only directory",
            d("path = \"{data}/ro/main.db\""),
            &["ro is not writable (mode 0555)"],
        ),
        file(
            "path in /proc",
            d("path = \"/proc/litepool.db\""),
            &["directory /proc is not writable"],
        ),
        env(
            "sql through an env var",
            "LITEPOOL__DATABASES__MAIN__PRAGMAS__JOURNAL_MODE",
            "wal; DROP TABLE customers",
            &[
                "environment variable LITEPOOL__DATABASES__MAIN__PRAGMAS__JOURNAL_MODE",
                "invalid journal_mode",
            ],
        ),
        env(
            "max_size 0 through an env var",
            "LITEPOOL__DATABASES__MAIN__POOL__MAX_SIZE",
            "0",
            &["invalid max_size 0"],
        ),
        env(
            "bare cache_size through an env var",
            "LITEPOOL__DATABASES__MAIN__PRAGMAS__CACHE_SIZE",
            "-500",
            &["ambiguous"],
        ),
        env(
            "writable_schema through an env var",
            "LITEPOOL__DATABASES__MAIN__PRAGMAS__WRITABLE_SCHEMA",
            "1",
            &["unknown field `writable_schema`"],
        ),
        env(
            "bad budget through an env var",
            "LITEPOOL__LIMITS__MEMORY_BUDGET",
            "lots",
            &["invalid size \"lots\""],
        ),
        env(
            "unknown table through an env var",
            "LITEPOOL__DATABASE__MAIN__PATH",
            "/tmp/x.db",
            &["unknown field `database`"],
        ),
        env(
            "huge duration through an env var",
            "LITEPOOL__DATABASES__MAIN__POOL__IDLE_TIMEOUT",
            "9999999999999years",
            &[
                "LITEPOOL__DATABASES__MAIN__POOL__IDLE_TIMEOUT",
                "invalid duration",
            ],
        ),
    ]
}

#[test]
fn every_hostile_input_fails_by_name_and_leaves_the_database_unchanged() {
    let cases = corpus();
    assert_eq!(cases.len(), 50, "the README counts the corpus");
    for case in cases {
        let f = Fixture::new("");
        let db = f.path("data/main.db");
        make_db(&db);
        let notes = f.path("data/notes.txt");
        std::fs::write(&notes, "name,email\nada,ada@example.com\n").unwrap();
        let ro = f.path("data/ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let (db_hash, notes_hash) = (sha256(&db), sha256(&notes));
        f.config("default.toml", &case.toml);
        let result = f
            .loader()
            .vars(vars(&case.vars))
            .load()
            .and_then(|s| Pools::new(&s).map(drop));
        let msg = match result {
            Ok(()) => panic!("{}: accepted", case.name),
            Err(e) => e.to_string(),
        };
        for part in case.expect {
            assert!(
                msg.contains(part),
                "{}: {msg:?} should contain {part:?}",
                case.name
            );
        }
        assert_eq!(sha256(&db), db_hash, "{}: main.db changed", case.name);
        assert_eq!(
            sha256(&notes),
            notes_hash,
            "{}: notes.txt changed",
            case.name
        );
        let mut left: Vec<_> = std::fs::read_dir(f.path("data"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["main.db", "notes.txt", "ro"],
            "{}: files created",
            case.name
        );
        assert_eq!(std::fs::read_dir(&ro).unwrap().count(), 0, "{}", case.name);
        assert!(!std::path::Path::new("/proc/litepool.db").exists());
    }
}
