//! Database names: one namespace for databases and derived pools, checked at load and in code.

use litepool::pools::Pools;
use litepool::{DatabaseSettings, Profile, Settings};

use crate::common::*;

fn with_names(names: &[&str]) -> String {
    let mut text = String::new();
    for (i, name) in names.iter().enumerate() {
        text.push_str(&format!(
            "[databases.{}]\npath = \"{{data}}/db{i}.db\"\n",
            toml_key(name)
        ));
    }
    text
}

fn toml_key(name: &str) -> String {
    toml_string(name)
}

#[test]
fn valid_names_load() {
    let f = Fixture::new(&with_names(&[
        "jobs",
        "Audit_2",
        "a-b",
        "x",
        &"n".repeat(64),
    ]));
    let s = f.load().unwrap();
    assert_eq!(s.databases.len(), 5);
}

#[test]
fn every_kind_of_bad_name_is_refused_at_load_naming_file_key_and_rule() {
    let long = "n".repeat(65);
    for bad in [
        "./jobs",
        "..",
        ".",
        "a/b",
        "a\\b",
        "jobs.writer",
        "-rf",
        "",
        " jobs",
        "jobs ",
        "a b",
        "a$HOME",
        "${X}",
        "a#b",
        "a:b",
        "a\"b",
        "a'b",
        "naïve",
        "a\nb",
        "a\u{0}b",
        "%x",
        long.as_str(),
    ] {
        let f = Fixture::new(&with_names(&["ok", bad]));
        let err = f.load().unwrap_err().to_string();
        let file = f.path("config/default.toml");
        assert!(
            err.contains(&file.display().to_string()),
            "{bad:?}: not naming the file: {err}"
        );
        assert!(
            err.contains(&format!("databases.{}", bad.escape_debug())),
            "{bad:?}: not naming the key: {err}"
        );
        assert!(
            err.contains(&format!("{bad:?}")) && err.contains("ASCII letters, digits"),
            "{bad:?}: not naming the value and the rule: {err}"
        );
        assert!(
            !err.contains('\n'),
            "{bad:?}: the message breaks its line: {err}"
        );
    }
}

#[test]
fn a_name_from_an_environment_variable_is_checked_too() {
    let f = Fixture::new(&with_names(&["ok"]));
    let err = f
        .loader()
        .vars(vars(&[("LITEPOOL__DATABASES__-RF__PATH", "x.db")]))
        .load()
        .unwrap_err()
        .to_string();
    assert!(err.contains("LITEPOOL__DATABASES__-RF__PATH"), "{err}");
    assert!(err.contains("\"-rf\""), "{err}");
}

#[test]
fn a_derived_pool_name_is_refused_naming_the_split_database() {
    let text = format!(
        "{}[databases.jobs.writer]\n[databases.\"jobs.writer\"]\npath = \"{{data}}/other.db\"\n",
        with_names(&["jobs"])
    );
    let f = Fixture::new(&text);
    let err = f.load().unwrap_err().to_string();
    assert!(err.contains("\"jobs.writer\""), "{err}");
    assert!(
        err.contains("the writer pool of split database \"jobs\""),
        "{err}"
    );
    // Control: the split alone loads and has its two pools.
    let f = Fixture::new(&format!(
        "{}[databases.jobs.writer]\n",
        with_names(&["jobs"])
    ));
    let s = f.load().unwrap();
    let pools = Pools::new(&s).unwrap();
    let names: Vec<String> = pools.stats().0.into_keys().collect();
    assert_eq!(names, ["jobs.readers", "jobs.writer"]);
}

#[test]
fn names_that_differ_only_in_case_are_refused() {
    let f = Fixture::new(&with_names(&["jobs", "JOBS"]));
    let err = f.load().unwrap_err().to_string();
    assert!(err.contains("differ only in case"), "{err}");
    assert!(
        err.contains("\"JOBS\"") && err.contains("\"jobs\""),
        "{err}"
    );
}

#[test]
fn settings_built_in_code_are_checked_before_any_file_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::new("p", litepool::PragmaSet::default()).unwrap();
    let db = DatabaseSettings::new("../escape", dir.path().join("a.db"), profile.clone());
    let err = Settings::from_databases([db], None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"../escape\"") && err.contains("ASCII letters"),
        "{err}"
    );
    // Two databases with one name: refused, not one silently dropped.
    let a = DatabaseSettings::new("a", dir.path().join("a.db"), profile.clone());
    let b = DatabaseSettings::new("a", dir.path().join("b.db"), profile.clone());
    let err = Settings::from_databases([a, b], None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("given twice"), "{err}");
    // A settings value edited after loading: Pools::new refuses it, and no file was created.
    let ok = DatabaseSettings::new("ok", dir.path().join("ok.db"), profile.clone());
    let mut s = Settings::from_databases([ok], None).unwrap();
    let mut bad = s.databases.remove("ok").unwrap();
    bad.name = "x/y".into();
    bad.path = dir.path().join("xy.db");
    s.databases.insert("x/y".into(), bad);
    let err = Pools::new(&s).unwrap_err().to_string();
    assert!(err.contains("\"x/y\""), "{err}");
    assert!(!dir.path().join("xy.db").exists());
    // The key and the settings' own name must agree.
    let mut s = Settings::from_databases(
        [DatabaseSettings::new(
            "ok",
            dir.path().join("ok.db"),
            profile,
        )],
        None,
    )
    .unwrap();
    let mut renamed = s.databases.remove("ok").unwrap();
    renamed.name = "other".into();
    s.databases.insert("ok".into(), renamed);
    let err = Pools::new(&s).unwrap_err().to_string();
    assert!(err.contains("the key and `name` must be the same"), "{err}");
    assert!(!dir.path().join("ok.db").exists());
}
