//! `litepool litestream` writes a configuration that the real Litestream (0.3.13 with
//! `--format 0.3`, and 0.5.17) reads back as meant, whatever characters the paths hold: checked
//! with `litestream databases` (the database paths) and a short `litestream replicate` (each
//! replica directory, created where intended).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use litepool::settings::LitestreamVersion;

use crate::common::*;
use crate::litestream_run::{binary, stop};

const BOTH: [LitestreamVersion; 2] = [LitestreamVersion::V03, LitestreamVersion::V05];

/// One directory per class of hostile text. `$LP_HOSTILE` is set in Litestream's environment,
/// so an unescaped `$` would change the path it reads.
const HOSTILE: [&str; 17] = [
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
    "ask?x",
    "sep\u{2028}ara\u{85}tor",
    "{[*&!|>",
];

fn litepool_litestream(
    dir: &Path,
    replica: &Path,
    version: LitestreamVersion,
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_litepool"))
        .args(["litestream", "--format", version.as_str()])
        .arg("--replica")
        .arg(replica)
        .args(["--sync-interval", "100ms"])
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn litestream_reads_back_exactly_the_hostile_paths_it_was_given() {
    for version in BOTH {
        hostile_paths_read_back(version);
    }
}

fn hostile_paths_read_back(version: LitestreamVersion) {
    let bin = binary(version);
    let mut toml = String::new();
    let f = Fixture::new("");
    let mut dbs: Vec<PathBuf> = Vec::new();
    // Litestream opens a database through a connection string it builds without escaping the
    // path: `?` (0.3.13 and 0.5), `#` and `%` (0.5, a `file:` URI) make it open another file
    // (seen: "no such file or directory", "unable to open database file"). litepool refuses
    // them for that release, checked here; the other paths must read back exactly.
    let usable = |part: &str| !part.contains(version.misread_path_chars());
    for part in HOSTILE.iter().filter(|p| !usable(p)) {
        let g = Fixture::new("");
        let path = g.path("data").join(part).join("a.db");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        g.config(
            "default.toml",
            &format!(
                "[databases.one]\npath = {}\nreplication = \"{}\"\n",
                toml_string(path.to_str().unwrap()),
                version.replication()
            ),
        );
        let out = litepool_litestream(g.dir.path(), &g.path("rep"), version);
        assert_eq!(out.status.code(), Some(2), "{part}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
                err.contains(&format!("Litestream {version} opens the database through a connection string it builds without escaping the path")),
                "{part}: {err}"
            );
        assert!(out.stdout.is_empty());
    }
    for (i, part) in HOSTILE.iter().filter(|p| usable(p)).enumerate() {
        let dir = f.path("data").join(part);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "wal").unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        toml.push_str(&format!(
            "[databases.db{i}]\npath = {}\nreplication = \"{}\"\n[databases.db{i}.pragmas]\njournal_mode = \"wal\"\n",
            toml_string(path.to_str().unwrap()),
            version.replication()
        ));
        dbs.push(std::fs::canonicalize(&path).unwrap());
    }
    f.config("default.toml", &toml);
    // The replica root is hostile too.
    let root = f.path("rep $LP_HOSTILE ${LP_HOSTILE} #: 'q\" é\nx");
    let out = litepool_litestream(f.dir.path(), &root, version);
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
            "{version}: {db:?} not in:\n{listed}\n{text}"
        );
    }

    // 2. The replicas: each database's directory appears exactly under root/<name> (0.3 writes
    // `generations/` there, 0.5 `ltx/`).
    let marker = match version {
        LitestreamVersion::V03 => "generations",
        _ => "ltx",
    };
    let log = f.path("litestream.log");
    let mut child = spawn_with_env(&bin, &config, &log);
    let deadline = Instant::now() + Duration::from_secs(30);
    let expected: Vec<PathBuf> = (0..dbs.len())
        .map(|i| root.join(format!("db{i}")).join(marker))
        .collect();
    while !expected.iter().all(|p| p.is_dir()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop(&mut child);
    let missing: Vec<_> = expected.iter().filter(|p| !p.is_dir()).collect();
    assert!(
        missing.is_empty(),
        "{version}: replicas missing: {missing:?}\nlog: {}",
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
    assert_eq!(names, want, "{version}");
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
    for version in BOTH {
        comment_cannot_break_the_file(version);
    }
}

fn comment_cannot_break_the_file(version: LitestreamVersion) {
    // A configuration directory whose name holds a newline, `$` and `#`.
    let f = Fixture::new("");
    let dir = f.path("conf\nigs $LP_HOSTILE #x");
    std::fs::create_dir_all(&dir).unwrap();
    let db = f.path("data/jobs.db");
    std::fs::write(
        dir.join("default.toml"),
        format!(
            "[databases.jobs]\npath = {}\nreplication = \"{}\"\n",
            toml_string(db.to_str().unwrap()),
            version.replication()
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
    let listed = Command::new(binary(version))
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
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(canonical.to_str().unwrap()),
        "{version}"
    );
}

#[test]
fn urls_litestream_would_misread_are_refused() {
    use LitestreamVersion::{V03, V05};
    for (version, replica, says) in [
        (
            V05,
            "s3://bucket/prefix?region=us-east-1",
            "query (?) or fragment (#)",
        ),
        (V05, "s3://bucket/prefix#x", "query (?) or fragment (#)"),
        (
            V03,
            "s3://bucket/prefix?region=us-east-1",
            "query (?) or fragment (#)",
        ),
        // Litestream 0.3.13 has no webdav replica (0.5 has).
        (V03, "webdav://h/x", "a scheme Litestream knows"),
    ] {
        let f = Fixture::new(&with_litestream_db(version));
        let out = litepool_litestream(f.dir.path(), Path::new(replica), version);
        assert_eq!(out.status.code(), Some(2), "{replica}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{replica}: {err}");
        assert!(out.stdout.is_empty());
    }
}

fn with_litestream_db(version: LitestreamVersion) -> String {
    format!(
        "[databases.jobs]\npath = \"{{data}}/jobs.db\"\nreplication = \"{}\"\n",
        version.replication()
    )
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
    let out = litepool_litestream(f.dir.path(), &f.path("lnk/../rep"), LitestreamVersion::V05);
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
    let out = litepool_litestream(f.dir.path(), &f.path("rep"), LitestreamVersion::V05);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`..`"));
}
