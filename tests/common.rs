use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

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

/// The settings of a helper child process: the config directory its parent passed in `var`.
pub fn child_settings(var: &str) -> Settings {
    let dir = std::env::var(var).unwrap_or_else(|_| panic!("run by its parent test, with {var}"));
    Settings::loader()
        .dir(dir)
        .vars(HashMap::new())
        .load()
        .unwrap()
}

/// A helper test (an `#[ignore]`d one) run as a child process that prints `acked <id>` lines.
pub struct Child {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    /// The ids acknowledged so far.
    pub acked: Vec<i64>,
}

impl Child {
    /// Runs the helper test `name` of this test binary with `var` set to `config_dir`.
    pub fn spawn(name: &str, var: &str, config_dir: &Path) -> Child {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                name,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(var, config_dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        Child {
            child,
            lines,
            acked: Vec::new(),
        }
    }

    /// Reads acknowledgements until `n` arrived.
    pub fn read_until(&mut self, n: usize) {
        while self.acked.len() < n {
            let line = self.lines.next().expect("the child stopped early").unwrap();
            if let Some(id) = line.strip_prefix("acked ") {
                self.acked.push(id.parse().unwrap());
            }
        }
    }

    /// SIGKILLs the child, then reads the acknowledgements it printed before it died.
    pub fn kill(mut self) -> Vec<i64> {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        for line in self.lines.by_ref().map_while(Result::ok) {
            if let Some(id) = line.strip_prefix("acked ") {
                self.acked.push(id.parse().unwrap());
            }
        }
        self.acked
    }
}

/// A TOML basic string holding exactly `text`: `"`, `\\` and control characters escaped.
pub fn toml_string(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The names in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Each name in `dir` with its file's SHA-256 (empty for what is not a file), to compare before
/// and after a command.
pub fn hashes(dir: &Path) -> Vec<(String, String)> {
    listing(dir)
        .into_iter()
        .map(|n| {
            let p = dir.join(&n);
            let h = if p.is_file() {
                sha256(&p)
            } else {
                String::new()
            };
            (n, h)
        })
        .collect()
}

/// A command's standard error, as text.
pub fn err(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
