//! `litepool litestream`: a `litestream.yml` for the databases marked
//! `replication = "litestream"`, so nobody writes it by hand.
//!
//! The format is Litestream 0.5's (<https://litestream.io/reference/config/>) by default, 0.3's
//! with `--format 0.3`: one entry under `dbs` per database with its absolute path, and one
//! replica each (0.5: a `replica` mapping; 0.3: a one-item `replicas` list), in a subdirectory
//! (or sub-path of the URL) named after the database (names are checked at load, so each database gets
//! its own). Every string is a double-quoted YAML scalar in printable ASCII (see [`quoted`]), so
//! Litestream reads back exactly the intended path, whatever characters it holds. Refused: a path
//! that is not UTF-8, and a database path holding a character the release misreads when it opens
//! the database (`LitestreamVersion::misread_path_chars`: `?` for both, `#` and `%` for 0.5).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use litepool::settings::LitestreamVersion;
use litepool::Settings;

/// Replica URL schemes Litestream 0.3.13 understands (it has no `webdav` replica: a
/// configuration holding one is refused whole).
const SCHEMES_03: &[&str] = &["s3", "gcs", "abs", "sftp", "file"];

/// Replica URL schemes Litestream 0.5 registers (`RegisterReplicaClientFactory` in each backend
/// package; `gs`, no longer `gcs`), except `nats`, whose path is one object-store bucket that
/// cannot take a per-database sub-path.
const SCHEMES_05: &[&str] = &[
    "s3", "gs", "abs", "sftp", "file", "webdav", "webdavs", "oss",
];

/// The replica URL schemes a Litestream release understands.
pub fn schemes(format: LitestreamVersion) -> &'static [&'static str] {
    match format {
        LitestreamVersion::V03 => SCHEMES_03,
        _ => SCHEMES_05,
    }
}

/// A duration from the command line (`"1s"`, `"250ms"`), within bounds.
pub fn sync_interval(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{e}"))?;
    if d < Duration::from_millis(10) || d > Duration::from_secs(3600) {
        return Err(format!("{text} is not in 10ms..=1h"));
    }
    if d.subsec_nanos() % 1_000_000 != 0 {
        // litestream.yml holds it in whole milliseconds; rounding would change it silently.
        return Err(format!("{text} is not a whole number of milliseconds"));
    }
    Ok(d)
}

/// Where replicas go: a local directory, or a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replica {
    /// A directory (a Litestream `file` replica).
    Dir(PathBuf),
    /// `s3://bucket/prefix` and the like.
    Url(String),
}

impl Replica {
    /// Parses `--replica`: a URL with a scheme the `format`'s Litestream knows, or a path (made
    /// absolute).
    pub fn parse(text: &str, format: LitestreamVersion) -> anyhow::Result<Replica> {
        if text.is_empty() {
            anyhow::bail!("invalid --replica \"\": expected a directory or a URL");
        }
        if let Some((scheme, rest)) = text.split_once("://") {
            if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
                anyhow::bail!("invalid --replica {text:?}: a URL cannot hold spaces or control characters; percent-encode them");
            }
            if scheme == "nats" && format == LitestreamVersion::V05 {
                // Litestream takes the whole path of a nats:// URL as one bucket name.
                anyhow::bail!("invalid --replica {text:?}: a nats:// replica is one JetStream bucket, which cannot take a per-database path; write its `replica:` in litestream.yml by hand");
            }
            let schemes = schemes(format);
            if !schemes.contains(&scheme) || rest.is_empty() {
                anyhow::bail!(
                    "invalid --replica {text:?}: expected a directory or a URL with a scheme Litestream knows ({format}: {})",
                    schemes.join(", ")
                );
            }
            if text.contains(['?', '#']) {
                // `<name>` is appended to the path; after a query it would land in the query and
                // every database would share one replica.
                anyhow::bail!("invalid --replica {text:?}: a URL with a query (?) or fragment (#) cannot take a per-database path; set the options in litestream.yml instead");
            }
            return Ok(Replica::Url(text.trim_end_matches('/').to_owned()));
        }
        Ok(Replica::Dir(resolved(Path::new(text))?))
    }
}

/// A double-quoted YAML scalar that Litestream reads back as exactly `text`.
///
/// Litestream runs the whole file through Go's `os.ExpandEnv` before parsing it as YAML, and
/// that has no escape for `$` (`$$` is the variable `$`). So the scalar is written in printable
/// ASCII only: `"`, `\`, `$`, and every character outside printable ASCII (control characters,
/// line and paragraph separators, any non-ASCII letter) become YAML escapes (`\u0024`, `\u00E9`,
/// `\U0001F600`), which the expansion does not see and YAML turns back into the character.
/// Written by hand: no YAML crate offers this escaping, and `serde_yaml` is unmaintained.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' if c != '$' => out.push(c),
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Text for a comment line: printable ASCII, everything else (and `$`, which Litestream would
/// expand even in a comment) escaped as Rust does.
fn comment(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' '..='~' if c != '$' => c.to_string(),
            c => c.escape_unicode().to_string(),
        })
        .collect()
}

/// `path` as Litestream will find it: absolute, with the symbolic links of its directory
/// resolved. Litestream cleans `..` as text (`link/../a.db` becomes `a.db` beside the link),
/// while the system follows the link first, so a path with `..` is written resolved, and refused
/// when its directory does not exist yet.
fn resolved(path: &Path) -> anyhow::Result<PathBuf> {
    let path = std::path::absolute(path)?;
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
        if let Ok(dir) = std::fs::canonicalize(dir) {
            return Ok(dir.join(name));
        }
    }
    if path
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        anyhow::bail!(
            "{}: a path with `..` whose directory does not exist cannot be written for Litestream, which reads `..` differently from the system after a symbolic link; create the directory or write the path without `..`",
            path.display()
        );
    }
    Ok(path)
}

fn path_text(p: &Path) -> anyhow::Result<&str> {
    if let Some(text) = p.to_str() {
        if text.contains('\0') {
            anyhow::bail!("{:?} holds a NUL byte, which no file path can", text);
        }
    }
    p.to_str().ok_or_else(|| {
        anyhow::anyhow!(
            "{} is not valid UTF-8, which litestream.yml cannot hold",
            p.display()
        )
    })
}

/// The Litestream release to write for: `--format` if given, else the one the databases
/// marked for Litestream name (`replication = "litestream"` is 0.5, `"litestream-0.3"` 0.3). A
/// database marked for another release than `--format`, or databases marked for two releases,
/// are refused: one file is read by one Litestream, and the lint follows the marks.
pub fn format_of(
    settings: &Settings,
    format: Option<LitestreamVersion>,
) -> anyhow::Result<LitestreamVersion> {
    let marked: Vec<_> = settings
        .databases
        .values()
        .filter_map(|d| d.replication.litestream().map(|v| (d, v)))
        .collect();
    let Some(&(first, first_version)) = marked.first() else {
        let names: Vec<_> = settings.databases.keys().map(String::as_str).collect();
        anyhow::bail!(
            "no database has replication = \"litestream\" (Litestream 0.5) or \"litestream-0.3\" (configured: {}); set it under [databases.<name>]",
            names.join(", ")
        );
    };
    let want = format.unwrap_or(first_version);
    if let Some((db, v)) = marked.iter().find(|(_, v)| *v != want) {
        let (other, why) = match format {
            Some(f) => (
                format!("--format {f}"),
                format!(
                    "set replication = \"{}\" there, or --format {v}",
                    f.replication()
                ),
            ),
            None => (
                format!(
                    "database {} has replication = \"{}\" (Litestream {first_version})",
                    first.name, first.replication
                ),
                "one litestream.yml is read by one Litestream; mark every database for the same release".into(),
            ),
        };
        anyhow::bail!(
            "database {} has replication = \"{}\" (Litestream {v}) but {other}: {why}",
            db.name,
            db.replication
        );
    }
    Ok(want)
}

/// The configuration text, in `format`'s layout (see [`format_of`]).
pub fn config(
    settings: &Settings,
    replica: &Replica,
    sync_interval: Duration,
    format: LitestreamVersion,
) -> anyhow::Result<String> {
    let dbs: Vec<_> = settings
        .databases
        .values()
        .filter(|d| d.replication.litestream() == Some(format))
        .collect();
    if dbs.is_empty() {
        anyhow::bail!(
            "no database has replication = \"{}\" (Litestream {format})",
            format.replication()
        );
    }
    let v03 = format == LitestreamVersion::V03;
    let mut out = String::new();
    writeln!(
        out,
        "# Generated by `litepool litestream` from {}.",
        comment(&settings.sources.join(" + "))
    )?;
    writeln!(
        out,
        "# Litestream v{format} configuration: https://litestream.io/reference/config/"
    )?;
    writeln!(out, "dbs:")?;
    // 0.3: a one-item `replicas` list; 0.5: one `replica` mapping.
    let (head, indent) = if v03 {
        ("    replicas:\n      - ", "        ")
    } else {
        ("    replica:\n      ", "      ")
    };
    for db in dbs {
        let path = resolved(&db.path)?;
        let text = path_text(&path)?;
        if let Some(c) = text
            .chars()
            .find(|c| format.misread_path_chars().contains(c))
        {
            // See `LitestreamVersion::misread_path_chars`: Litestream builds its connection
            // string from the path without escaping it.
            let refused: Vec<String> = format
                .misread_path_chars()
                .iter()
                .map(|c| format!("`{c}`"))
                .collect();
            anyhow::bail!(
                "database {}: its path {:?} holds {c:?}, and Litestream {format} opens the database through a connection string it builds without escaping the path, so it would open another file; move the database to a path without {}",
                db.name,
                text,
                refused.join(" or ")
            );
        }
        writeln!(out, "  - path: {}", quoted(text))?;
        match replica {
            Replica::Dir(dir) => {
                writeln!(out, "{head}type: file")?;
                writeln!(
                    out,
                    "{indent}path: {}",
                    quoted(path_text(&dir.join(&db.name))?)
                )?;
            }
            Replica::Url(url) => {
                writeln!(out, "{head}url: {}", quoted(&format!("{url}/{}", db.name)))?;
            }
        }
        writeln!(
            out,
            "{indent}sync-interval: {}ms",
            sync_interval.as_millis()
        )?;
    }
    Ok(out)
}
