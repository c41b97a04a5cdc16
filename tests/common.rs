use std::collections::HashMap;
use std::path::{Path, PathBuf};

use litepool::settings::Loader;
use litepool::Settings;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// A temp directory with `config/` and `data/`. `{data}` in TOML text becomes the data path.
pub struct Fixture {
    pub dir: TempDir,
}

impl Fixture {
    pub fn new(default_toml: &str) -> Fixture {
        let f = Fixture {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(f.path("config")).unwrap();
        std::fs::create_dir(f.path("data")).unwrap();
        f.config("default.toml", default_toml);
        f
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn data(&self) -> String {
        self.path("data").display().to_string()
    }

    pub fn config(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path("config").join(name);
        std::fs::write(&p, text.replace("{data}", &self.data())).unwrap();
        p
    }

    pub fn loader(&self) -> Loader {
        Settings::loader()
            .dir(self.path("config"))
            .vars(HashMap::new())
    }

    pub fn load(&self) -> litepool::Result<Settings> {
        self.loader().load()
    }
}

pub fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    format!("{:x}", Sha256::digest(bytes))
}

/// Creates a real database with a table and rows, in rollback-journal mode with 4096-byte pages.
pub fn make_db(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO customers(name) VALUES ('ada'), ('grace'), ('barbara');",
    )
    .unwrap();
}

/// A one-database configuration, with `pragmas` as the profile body.
pub fn one_db(pragmas: &str, pool: &str) -> String {
    format!(
        "[profiles.p]\n{pragmas}\n\n[databases.main]\npath = \"{{data}}/main.db\"\nprofile = \"p\"\n\n[databases.main.pool]\n{pool}\n"
    )
}

/// The `[profiles.*]` tables of the shipped `config/default.toml`, for tests of shipped behaviour.
pub fn shipped_profiles() -> String {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml"))
            .unwrap();
    let end = text.find("[databases.").unwrap();
    text[..end].to_owned()
}
