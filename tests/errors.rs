//! Each bad input gives an error naming the file (or variable), the key, the value and what is
//! allowed, and leaves an existing database byte-for-byte unchanged.

use litepool::{Error, Pools};

use crate::common::*;

/// Loads settings and builds the pools; returns the error text.
fn fails(f: &Fixture, vars_: &[(&str, &str)]) -> String {
    let result = f
        .loader()
        .vars(vars(vars_))
        .load()
        .and_then(|s| Pools::new(&s).map(drop));
    result.expect_err("should fail").to_string()
}

fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "{msg:?} should contain {p:?}");
    }
}

/// A fixture whose database already holds data, and its hash.
fn with_existing_db(profile: &str, pool: &str) -> (Fixture, String) {
    let f = Fixture::new(&one_db(profile, pool));
    make_db(&f.path("data/main.db"));
    let hash = sha256(&f.path("data/main.db"));
    (f, hash)
}

#[test]
fn bad_values_in_a_file_name_file_key_value_and_allowed() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "jornal_mode = \"wal\"",
            "max_size = 2",
            &[
                "key `profiles.p`",
                "unknown field `jornal_mode`",
                "expected one of",
                "`journal_mode`",
            ],
        ),
        (
            "journal_mode = \"walx\"",
            "max_size = 2",
            &[
                "key `profiles.p.journal_mode`",
                "invalid journal_mode \"walx\"",
                "delete, truncate, persist, wal",
            ],
        ),
        (
            "journal_mode = \"wal; DROP TABLE customers\"",
            "max_size = 2",
            &[
                "key `profiles.p.journal_mode`",
                "\"wal; DROP TABLE customers\"",
            ],
        ),
        (
            "cache_size = \"500 MB!\"",
            "max_size = 2",
            &[
                "key `profiles.p.cache_size`",
                "\"500 MB!\"",
                "{ pages = N }",
            ],
        ),
        (
            "cache_size = -500",
            "max_size = 2",
            &["key `profiles.p.cache_size`", "\"-500\"", "ambiguous"],
        ),
        (
            "busy_timeout = \"5 parsecs\"",
            "max_size = 2",
            &[
                "key `profiles.p.busy_timeout`",
                "\"5 parsecs\"",
                "a duration such as \"5s\"",
            ],
        ),
        (
            "mmap_size = \"3GiB\"",
            "max_size = 2",
            &[
                "key `profiles.p.mmap_size`",
                "\"3GiB\"",
                "at most 2147418112",
            ],
        ),
        (
            "synchronous = \"off\"",
            "max_size = 2",
            &[
                "key `profiles.p.synchronous`",
                "synchronous = \"off\" is unsafe",
                "allow_unsafe = true",
            ],
        ),
        (
            "journal_mode = \"memory\"",
            "max_size = 2",
            &["key `profiles.p.journal_mode`", "\"memory\" is unsafe"],
        ),
        (
            "",
            "max_size = 0",
            &[
                "key `databases.main.pool.max_size`",
                "invalid max_size 0",
                "expected 1 to 1000",
            ],
        ),
        (
            "",
            "max_size = 2\nmin_idle = 3",
            &[
                "key `databases.main.pool.min_idle`",
                "invalid min_idle 3",
                "at most max_size (2)",
            ],
        ),
        (
            "",
            "max_size = \"many\"",
            &[
                "key `databases.main.pool.max_size`",
                "\"many\"",
                "expected an integer",
            ],
        ),
        (
            "",
            "connection_timeout = \"0s\"",
            &[
                "key `databases.main.pool.connection_timeout`",
                "\"0s\"",
                "above zero",
            ],
        ),
        (
            "",
            "max_sise = 2",
            &["key `databases.main.pool`", "unknown field `max_sise`"],
        ),
    ];
    for (profile, pool, parts) in cases {
        let (f, hash) = with_existing_db(profile, pool);
        let msg = fails(&f, &[]);
        let file = f.path("config/default.toml").display().to_string();
        assert!(
            msg.starts_with(&format!("{file}: ")),
            "{msg:?} should name {file}"
        );
        assert_has(&msg, parts);
        assert_eq!(sha256(&f.path("data/main.db")), hash, "{msg}");
    }
}

#[test]
fn unknown_profile_lists_the_known_ones() {
    let f = Fixture::new(
        "[profiles.web]\n[databases.main]\npath = \"{data}/main.db\"\nprofile = \"wbe\"\n",
    );
    let msg = fails(&f, &[]);
    assert_has(
        &msg,
        &[
            "default.toml: key `databases.main.profile`",
            "unknown profile \"wbe\"",
            "expected one of web",
        ],
    );
    assert!(!f.path("data/main.db").exists(), "nothing is created");
}

#[test]
fn bad_environment_variables_name_the_variable() {
    let (f, hash) = with_existing_db("", "max_size = 2");
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "LITEPOOL__DATABASES__MAIN__POOL__MAX_SIZE",
            "0",
            &["invalid max_size 0"],
        ),
        ("LITEPOOL__DATABASES__MAIN__POOL__MAX_SIZE", "-3", &["-3"]),
        (
            "LITEPOOL__DATABASES__MAIN__PRAGMAS__SYNCHRONOUS",
            "sometimes",
            &["invalid synchronous \"sometimes\""],
        ),
        (
            "LITEPOOL__DATABASES__MAIN__PRAGMAS__JORNAL_MODE",
            "wal",
            &["unknown field `jornal_mode`"],
        ),
        (
            "LITEPOOL__DATABASES__MAIN__PRAGMAS__CACHE_SIZE",
            "12 furlongs",
            &["\"12 furlongs\""],
        ),
    ];
    for (var, value, parts) in cases {
        let msg = fails(&f, &[(var, value)]);
        assert!(
            msg.starts_with(&format!("environment variable {var}: key `")),
            "{msg}"
        );
        assert_has(&msg, parts);
        assert_eq!(sha256(&f.path("data/main.db")), hash);
    }
}

#[test]
fn a_bad_env_file_is_named() {
    let f = Fixture::new(&one_db("", "max_size = 2"));
    let file = f.config(
        "staging.toml",
        "[databases.main.pool]\nmax_size = 2\nmin_idle = [\n",
    );
    let msg = f.loader().env("staging").load().unwrap_err().to_string();
    assert!(msg.starts_with(&file.display().to_string()), "{msg}");
    let f = Fixture::new(&one_db("", "max_size = 2"));
    f.config("staging.toml", "[databases.main.pool]\nmin_idle = 9\n");
    let msg = f.loader().env("staging").load().unwrap_err().to_string();
    assert!(
        msg.contains("staging.toml: key `databases.main.pool.min_idle`: invalid min_idle 9"),
        "{msg}"
    );
}

#[test]
fn missing_default_toml_is_an_error() {
    let f = Fixture::new("");
    std::fs::remove_file(f.path("config/default.toml")).unwrap();
    let msg = f.load().unwrap_err().to_string();
    assert_has(&msg, &["default.toml: file not found"]);
}

#[test]
fn a_text_file_is_not_a_database_and_is_left_alone() {
    let f = Fixture::new(&one_db("journal_mode = \"wal\"", "max_size = 2"));
    let path = f.path("data/main.db");
    std::fs::write(&path, "name,email\nada,ada@example.com\n".repeat(10)).unwrap();
    let hash = sha256(&path);
    let err = f.load().and_then(|s| Pools::new(&s).map(drop)).unwrap_err();
    assert!(matches!(err, Error::NotADatabase { .. }));
    assert_has(
        &err.to_string(),
        &[
            "database \"main\"",
            "main.db is not an sqlite database (no sqlite header)",
        ],
    );
    assert_eq!(sha256(&path), hash);
    assert!(!f.path("data/main.db-wal").exists());
}

#[test]
fn directories_and_missing_directories_are_refused() {
    let f = Fixture::new("[databases.main]\npath = \"{data}\"\n");
    assert_has(
        &fails(&f, &[]),
        &["is not an sqlite database (it is a directory)"],
    );
    let f = Fixture::new("[databases.main]\npath = \"{data}/nope/main.db\"\n");
    assert_has(&fails(&f, &[]), &["directory", "nope does not exist"]);
    assert!(!f.path("data/nope").exists());
    let f =
        Fixture::new("[databases.main]\npath = \"{data}/main.db\"\ncreate_if_missing = false\n");
    assert_has(
        &fails(&f, &[]),
        &["file does not exist and create_if_missing = false"],
    );
    assert!(!f.path("data/main.db").exists());
}

#[test]
fn page_size_of_an_existing_file_needs_a_vacuum() {
    let (f, hash) = with_existing_db("page_size = \"8KiB\"", "max_size = 2");
    let msg = fails(&f, &[]);
    assert_has(
        &msg,
        &[
            "page_size is 4096 in the existing file",
            "wants 8192",
            "VACUUM",
        ],
    );
    assert_eq!(sha256(&f.path("data/main.db")), hash);
    let (f, hash) = with_existing_db("auto_vacuum = \"full\"", "max_size = 2");
    assert_has(
        &fails(&f, &[]),
        &[
            "auto_vacuum is none in the existing file",
            "wants full",
            "VACUUM",
        ],
    );
    assert_eq!(sha256(&f.path("data/main.db")), hash);
}

#[test]
fn an_enforced_memory_budget_refuses_before_touching_files() {
    let (f, hash) = with_existing_db("", "max_size = 4");
    f.config(
        "default.toml",
        &(one_db(
            "enforce_budget = true\ncache_size = \"100MiB\"",
            "max_size = 4",
        ) + "[limits]\nmemory_budget = \"256MiB\"\n"),
    );
    let msg = fails(&f, &[]);
    assert_has(
        &msg,
        &[
            "memory budget exceeded: worst case 400MiB",
            "256MiB",
            "enforced by main",
        ],
    );
    assert_eq!(sha256(&f.path("data/main.db")), hash);
}
