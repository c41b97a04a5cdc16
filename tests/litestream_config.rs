//! `litepool litestream` writes a configuration that the real Litestream (v0.3.13) reads back as
//! meant, whatever characters the paths hold: checked with `litestream databases` (the database
//! paths) and a short `litestream replicate` (each replica directory, created where intended).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::replication::{litestream, stop};

/// One directory per class of hostile text. `$LP_HOSTILE` is set in Litestream's environment,
/// so an unescaped `$` would change the path it reads.
const HOSTILE: [&str; 16] = [
    "price$LP_HOSTILE",
    "${LP_HOSTILE}x",
    "$$",
    "q\"uote",
    "s'quote",
    "hash #x",
    "co: lon",
    "new\nline",
    "tab\tx",
    "naïve😀",
    "-lead",
    " space ",
    "back\\slash",
    "pct%41",
    "sep\u{2028}ara\u{85}tor",
    "{[*&!|>",
];

fn litepool_litestream(dir: &Path, replica: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_litepool"))
        .arg("litestream")
        .arg("--replica")
        .arg(replica)
        .args(["--sync-interval", "100ms"])
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn litestream_reads_back_exactly_the_hostile_paths_it_was_given() {
    let bin = litestream();
    let mut toml = String::new();
    let f = Fixture::new("");
    let mut dbs: Vec<PathBuf> = Vec::new();
    for (i, part) in HOSTILE.iter().enumerate() {
        let dir = f.path("data").join(part);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "wal").unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        toml.push_str(&format!(
            "[databases.db{i}]\npath = {}\nreplication = \"litestream\"\n[databases.db{i}.pragmas]\njournal_mode = \"wal\"\n",
            toml_string(path.to_str().unwrap())
        ));
        dbs.push(std::fs::canonicalize(&path).unwrap());
    }
    f.config("default.toml", &toml);
    // The replica root is hostile too.
    let root = f.path("rep $LP_HOSTILE ${LP_HOSTILE} #: 'q\" é\nx");
    let out = litepool_litestream(f.dir.path(), &root);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.is_ascii(), "{text}");
    let config = f.path("litestream.yml");
    std::fs::write(&config, &text).unwrap();

    // 1. The database paths, as Litestream lists them.
    let listed = Command::new(&bin)
        .args(["databases", "-config"])
        .arg(&config)
        .env("LP_HOSTILE", "EXPANDED")
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(!listed.contains("EXPANDED"), "{listed}");
    // (Its table aligns columns with tabs, so a path holding a tab is checked by its replica.)
    for db in dbs.iter().filter(|d| !d.to_str().unwrap().contains('\t')) {
        assert!(
            listed.contains(db.to_str().unwrap()),
            "{db:?} not in:\n{listed}\n{text}"
        );
    }

    // 2. The replicas: each database's directory appears exactly under root/<name>.
    let log = f.path("litestream.log");
    let mut child = spawn_with_env(&bin, &config, &log);
    let deadline = Instant::now() + Duration::from_secs(30);
    let expected: Vec<PathBuf> = (0..dbs.len())
        .map(|i| root.join(format!("db{i}")).join("generations"))
        .collect();
    while !expected.iter().all(|p| p.is_dir()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop(&mut child);
    let missing: Vec<_> = expected.iter().filter(|p| !p.is_dir()).collect();
    assert!(
        missing.is_empty(),
        "replicas missing: {missing:?}\nlog: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // Nothing was replicated anywhere else: the replica root holds exactly db0..dbN.
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut want: Vec<String> = (0..dbs.len()).map(|i| format!("db{i}")).collect();
    want.sort();
    assert_eq!(names, want);
    assert!(!f.dir.path().join("rep EXPANDED").exists());
}

fn spawn_with_env(bin: &Path, config: &Path, log: &Path) -> std::process::Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new(bin)
        .args(["replicate", "-config"])
        .arg(config)
        .env("LP_HOSTILE", "EXPANDED")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

#[test]
fn the_generated_comment_cannot_break_the_file() {
    // A configuration directory whose name holds a newline, `$` and `#`.
    let f = Fixture::new("");
    let dir = f.path("conf\nigs $LP_HOSTILE #x");
    std::fs::create_dir_all(&dir).unwrap();
    let db = f.path("data/jobs.db");
    std::fs::write(
        dir.join("default.toml"),
        format!(
            "[databases.jobs]\npath = {}\nreplication = \"litestream\"\n",
            toml_string(db.to_str().unwrap())
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_litepool"))
        .args(["litestream", "--replica", "/backups", "--config"])
        .arg(&dir)
        .current_dir(f.dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("# Generated by `litepool litestream` from "),
        "{text}"
    );
    assert!(
        first.contains("conf\\u{a}igs \\u{24}LP_HOSTILE #x"),
        "{first}"
    );
    assert!(!text.contains('$'), "{text}");
    let config = f.path("litestream.yml");
    std::fs::write(&config, &text).unwrap();
    let listed = Command::new(litestream())
        .args(["databases", "-config"])
        .arg(&config)
        .env("LP_HOSTILE", "\ndbs: []\n")
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let canonical = std::fs::canonicalize(f.path("data"))
        .unwrap()
        .join("jobs.db");
    assert!(String::from_utf8_lossy(&listed.stdout).contains(canonical.to_str().unwrap()));
}

#[test]
fn urls_litestream_would_misread_are_refused() {
    let f = Fixture::new(&with_litestream_db());
    for (replica, says) in [
        (
            "s3://bucket/prefix?region=us-east-1",
            "query (?) or fragment (#)",
        ),
        ("s3://bucket/prefix#x", "query (?) or fragment (#)"),
        ("webdav://h/x", "a scheme Litestream knows"),
    ] {
        let out = litepool_litestream(f.dir.path(), Path::new(replica));
        assert_eq!(out.status.code(), Some(2), "{replica}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{replica}: {err}");
        assert!(out.stdout.is_empty());
    }
}

fn with_litestream_db() -> String {
    "[databases.jobs]\npath = \"{data}/jobs.db\"\nreplication = \"litestream\"\n".into()
}

#[test]
fn a_path_with_dotdot_after_a_symbolic_link_is_written_as_the_system_resolves_it() {
    let f = Fixture::new("");
    std::fs::create_dir_all(f.path("real/sub")).unwrap();
    std::os::unix::fs::symlink(f.path("real/sub"), f.path("lnk")).unwrap();
    let db = f.path("lnk/../a.db"); // the system: real/a.db; Litestream's text cleaning: a.db
    f.config(
        "default.toml",
        &format!(
            "[databases.one]\npath = {}\nreplication = \"litestream\"\n",
            toml_string(db.to_str().unwrap())
        ),
    );
    let out = litepool_litestream(f.dir.path(), &f.path("lnk/../rep"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let real = std::fs::canonicalize(f.path("real")).unwrap();
    assert!(
        text.contains(&format!("\"{}\"", real.join("a.db").display())),
        "{text}"
    );
    assert!(
        text.contains(&format!("\"{}\"", real.join("rep/one").display())),
        "{text}"
    );
    assert!(!text.contains(".."), "{text}");
    // A `..` path whose directory does not exist cannot be resolved: refused.
    f.config(
        "default.toml",
        &format!(
            "[databases.one]\npath = {}\nreplication = \"litestream\"\n",
            toml_string(f.path("lnk/missing/../../b.db").to_str().unwrap())
        ),
    );
    let out = litepool_litestream(f.dir.path(), &f.path("rep"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`..`"));
}
