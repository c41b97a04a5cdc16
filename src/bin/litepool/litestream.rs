//! `litepool litestream`: a `litestream.yml` for the databases marked
//! `replication = "litestream"`, so nobody writes it by hand.
//!
//! The format is Litestream v0.3's (<https://litestream.io/reference/config/>): one entry under
//! `dbs` per database with its absolute path, and one replica each, in a subdirectory (or
//! sub-path of the URL) named after the database (names are checked at load, so each database gets
//! its own). Every string is a double-quoted YAML scalar in printable ASCII (see [`quoted`]), so
//! Litestream reads back exactly the intended path, whatever characters it holds; only a path
//! that is not UTF-8 is refused.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use litepool::settings::Replication;
use litepool::Settings;

/// Replica URL schemes Litestream v0.3.13 understands (it has no `webdav` replica: a
/// configuration holding one is refused whole).
const SCHEMES: [&str; 5] = ["s3", "gcs", "abs", "sftp", "file"];

/// Where replicas go: a local directory, or a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replica {
    /// A directory (a Litestream `file` replica).
    Dir(PathBuf),
    /// `s3://bucket/prefix` and the like.
    Url(String),
}

impl Replica {
    /// Parses `--replica`: a URL with a scheme Litestream knows, or a path (made absolute).
    pub fn parse(text: &str) -> anyhow::Result<Replica> {
        if text.is_empty() {
            anyhow::bail!("invalid --replica \"\": expected a directory or a URL");
        }
        if let Some((scheme, rest)) = text.split_once("://") {
            if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
                anyhow::bail!("invalid --replica {text:?}: a URL cannot hold spaces or control characters; percent-encode them");
            }
            if !SCHEMES.contains(&scheme) || rest.is_empty() {
                anyhow::bail!(
                    "invalid --replica {text:?}: expected a directory or a URL with a scheme Litestream knows ({})",
                    SCHEMES.join(", ")
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

/// The configuration text.
pub fn config(
    settings: &Settings,
    replica: &Replica,
    sync_interval: Duration,
) -> anyhow::Result<String> {
    let dbs: Vec<_> = settings
        .databases
        .values()
        .filter(|d| d.replication == Replication::Litestream)
        .collect();
    if dbs.is_empty() {
        let names: Vec<_> = settings.databases.keys().map(String::as_str).collect();
        anyhow::bail!(
            "no database has replication = \"litestream\" (configured: {}); set it under [databases.<name>]",
            names.join(", ")
        );
    }
    let mut out = String::new();
    writeln!(
        out,
        "# Generated by `litepool litestream` from {}.",
        comment(&settings.sources.join(" + "))
    )?;
    writeln!(
        out,
        "# Litestream v0.3 configuration: https://litestream.io/reference/config/"
    )?;
    writeln!(out, "dbs:")?;
    for db in dbs {
        let path = resolved(&db.path)?;
        writeln!(out, "  - path: {}", quoted(path_text(&path)?))?;
        writeln!(out, "    replicas:")?;
        match replica {
            Replica::Dir(dir) => {
                writeln!(out, "      - type: file")?;
                writeln!(
                    out,
                    "        path: {}",
                    quoted(path_text(&dir.join(&db.name))?)
                )?;
            }
            Replica::Url(url) => {
                writeln!(
                    out,
                    "      - url: {}",
                    quoted(&format!("{url}/{}", db.name))
                )?;
            }
        }
        writeln!(
            out,
            "        sync-interval: {}ms",
            sync_interval.as_millis()
        )?;
    }
    Ok(out)
}

/// A duration from the command line (`"1s"`, `"250ms"`), within bounds.
pub fn sync_interval(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{e}"))?;
    if d < std::time::Duration::from_millis(10) || d > std::time::Duration::from_secs(3600) {
        return Err(format!("{text} is not in 10ms..=1h"));
    }
    if d.subsec_nanos() % 1_000_000 != 0 {
        // litestream.yml holds it in whole milliseconds; rounding would change it silently.
        return Err(format!("{text} is not a whole number of milliseconds"));
    }
    Ok(d)
}
