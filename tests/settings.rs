use std::path::Path;

use litepool::pragma::Synchronous;
use litepool::{PragmaSet, Settings};

use crate::common::*;

const LAYERED: &str = r#"
[profiles.p]
synchronous = "normal"
busy_timeout = "5s"

[databases.jobs]
path = "{data}/jobs.db"
profile = "p"

[databases.jobs.pool]
max_size = 5
"#;

fn jobs(s: &Settings) -> (u32, Option<Synchronous>) {
    let db = &s.databases["jobs"];
    (db.pool.max_size, db.profile.pragmas().synchronous)
}

#[test]
fn layers_default_then_env_file_then_variables() {
    let f = Fixture::new(LAYERED);
    f.config(
        "staging.toml",
        "[databases.jobs.pool]\nmax_size = 3\n[databases.jobs.pragmas]\nsynchronous = \"full\"\n",
    );
    // default alone (no staging.toml for env "development")
    assert_eq!(jobs(&f.load().unwrap()), (5, Some(Synchronous::Normal)));
    // default + staging.toml, chosen by argument
    let s = f.loader().env("staging").load().unwrap();
    assert_eq!(jobs(&s), (3, Some(Synchronous::Full)));
    assert_eq!(s.env, "staging");
    assert_eq!(s.sources.len(), 2);
    // ... + variables, with the environment chosen by LITEPOOL_ENV
    let s = f
        .loader()
        .vars(vars(&[
            ("LITEPOOL_ENV", "staging"),
            ("LITEPOOL__DATABASES__JOBS__POOL__MAX_SIZE", "2"),
            ("LITEPOOL__DATABASES__JOBS__PRAGMAS__SYNCHRONOUS", "extra"),
            ("UNRELATED", "x"),
        ]))
        .load()
        .unwrap();
    assert_eq!(jobs(&s), (2, Some(Synchronous::Extra)));
    assert_eq!(
        s.sources.last().unwrap(),
        "environment variable LITEPOOL__DATABASES__JOBS__PRAGMAS__SYNCHRONOUS"
    );
    // The profile's busy_timeout survives every layer.
    assert_eq!(
        s.databases["jobs"]
            .profile
            .pragmas()
            .busy_timeout
            .unwrap()
            .millis(),
        5000
    );
}

#[test]
fn config_dir_comes_from_litepool_config_dir() {
    let f = Fixture::new(LAYERED);
    let dir = f.path("config").display().to_string();
    let s = Settings::loader()
        .vars(vars(&[("LITEPOOL_CONFIG_DIR", &dir)]))
        .load()
        .unwrap();
    assert_eq!(s.dir, Path::new(&dir));
    assert_eq!(s.env, "development");
}

#[test]
fn shipped_config_files_all_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for env in ["development", "test", "production"] {
        let s = Settings::loader()
            .dir(&dir)
            .env(env)
            .vars(Default::default())
            .load()
            .unwrap();
        let names: Vec<_> = s.databases.keys().map(String::as_str).collect();
        assert_eq!(names, ["audit", "jobs", "prod_customer_data"], "{env}");
        assert_eq!(s.sources.len(), 2, "{env}: {:?}", s.sources);
    }
    let prod = Settings::loader()
        .dir(&dir)
        .env("production")
        .vars(Default::default())
        .load()
        .unwrap();
    let p = prod.databases["prod_customer_data"].profile.pragmas();
    let cache = p.cache_size.unwrap().pragma_value();
    assert_eq!(cache, -512_000, "the original intent, 500MiB, correctly");
    assert_eq!(p.mmap_size.unwrap().bytes(), 500 << 20);
    assert_eq!(p.busy_timeout.unwrap().millis(), 5000);
    assert_eq!(p.foreign_keys, Some(true));
}

#[test]
fn reference_toml_documents_and_parses_every_key() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/reference.toml"),
    )
    .unwrap();
    let f = Fixture::new(&text);
    let s = f.load().unwrap();
    let db = &s.databases["example"];
    // Every profile key is set in the reference, so none is undocumented.
    let set = serde_json::to_value(db.profile.pragmas()).unwrap();
    let all_keys = serde_json::to_value(PragmaSet::default()).unwrap();
    for key in all_keys.as_object().unwrap().keys() {
        assert!(
            !set[key].is_null(),
            "reference.toml does not show profile key {key}"
        );
        assert!(
            text.contains(&format!("\n{key} =")),
            "reference.toml misses {key}"
        );
    }
    assert_eq!(
        db.profile.pragmas().cache_size.unwrap().to_string(),
        "2000 pages"
    );
    assert_eq!(db.pool.min_idle, Some(2));
    assert_eq!(s.memory_budget.unwrap().bytes(), 2 << 30);
}

#[test]
fn lifetimes_can_be_turned_off() {
    let f = Fixture::new(&one_db("", "idle_timeout = \"off\"\nmax_lifetime = \"1h\""));
    let pool = &f.load().unwrap().databases["main"].pool;
    assert_eq!(pool.idle_timeout, None);
    assert_eq!(
        pool.max_lifetime,
        Some(std::time::Duration::from_secs(3600))
    );
}

#[test]
fn every_named_profile_is_validated_even_when_unused() {
    let f =
        Fixture::new(&(one_db("", "max_size = 1") + "\n[profiles.fast]\nsynchronous = \"off\"\n"));
    let msg = f.load().unwrap_err().to_string();
    assert!(
        msg.contains("key `profiles.fast.synchronous`: synchronous = \"off\" is unsafe"),
        "{msg}"
    );
    let f =
        Fixture::new(&(one_db("", "max_size = 1") + "\n[profiles.fast]\njournal_mode = \"wal\"\n"));
    let s = f.load().unwrap();
    assert_eq!(s.profiles.keys().collect::<Vec<_>>(), ["fast", "p"]);
}
