//! Reports for people: the table form of `litepool check`.

use std::fmt;

use litepool::check::{CheckReport, Outcome};
use litepool::file::FileState;
use litepool::profile::Scope;

/// A [`CheckReport`] as text tables.
pub struct Text<'a>(pub &'a CheckReport);

impl std::ops::Deref for Text<'_> {
    type Target = CheckReport;
    fn deref(&self) -> &CheckReport {
        self.0
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use litepool::budget::human;
        writeln!(
            f,
            "litepool check: env {} ({})",
            self.env,
            self.sources.join(" + ")
        )?;
        for d in &self.databases {
            writeln!(f)?;
            let file = match d.file_before {
                FileState::Missing | FileState::Empty => "new file".to_owned(),
                FileState::Database { bytes, .. } => format!("existing file, {}", human(bytes)),
                FileState::Replica => "read replica through Litestream's VFS".to_owned(),
            };
            writeln!(
                f,
                "{}  {}  ({file}; profile {}; {} connection(s) verified at once)",
                d.name,
                d.path.display(),
                d.profile,
                d.connections
            )?;
            // Said once, above the rows it explains.
            if let Some(e) = &d.error {
                writeln!(f, "  error: {e}")?;
            }
            if let Some(a) = &d.applied {
                writeln!(f, "  applied (--apply, under an exclusive lock): {a}")?;
            }
            writeln!(
                f,
                "  {:<20} {:<12} {:<12} {:<11} status",
                "pragma", "configured", "sqlite", "stored in"
            )?;
            for r in &d.pragmas {
                let status = match r.outcome {
                    Outcome::Read if r.ok() => format!("ok {}/{}", r.connections_ok, r.connections),
                    Outcome::Read => format!(
                        "NOT APPLIED: wanted {} ({}/{} ok)",
                        r.wanted, r.connections_ok, r.connections
                    ),
                    Outcome::WouldChange => format!(
                        "would change {} -> {} (left as it is; check --apply switches it while nothing else holds the database)",
                        r.sqlite, r.wanted
                    ),
                    Outcome::Failed => "FAILED (the error above)".to_owned(),
                    Outcome::NotChecked => "not checked (after the failure above)".to_owned(),
                };
                let scope = match r.scope {
                    Scope::File => "file",
                    Scope::Connection => "connection",
                };
                let sqlite = r.sqlite.to_string();
                writeln!(
                    f,
                    "  {:<20} {:<12} {:<12} {:<11} {status}",
                    r.pragma,
                    r.configured,
                    if sqlite.is_empty() { "-" } else { &sqlite },
                    scope
                )?;
            }
            if let Some(FileState::Database {
                page_size,
                auto_vacuum,
                wal,
                ..
            }) = d.file_after
            {
                let journal = if wal {
                    "wal"
                } else {
                    "rollback (delete, truncate or persist, per connection)"
                };
                let checked = match d.file_before {
                    FileState::Database {
                        quick_check: true, ..
                    } => "; quick_check ok before any write",
                    _ => "",
                };
                writeln!(f, "  stored in the file: journal {journal}, page_size {page_size}, auto_vacuum {auto_vacuum}{checked}")?;
            }
            if let Some(p) = &d.pool {
                for (i, line) in p.to_string().lines().enumerate() {
                    writeln!(f, "  {}{line}", if i == 0 { "pool " } else { "" })?;
                }
            }
            if let Some(r) = &d.replication {
                writeln!(f, "  replication: {r}")?;
            }
            writeln!(
                f,
                "  {}",
                if d.verified {
                    "verified"
                } else {
                    "NOT VERIFIED"
                }
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "memory budget (page cache; cache_size is per connection, mmap is not counted)"
        )?;
        writeln!(
            f,
            "  {:<20} {:>8} {:>12} {:>12} {:>14}",
            "database", "max_size", "cache/conn", "worst case", "bound by file"
        )?;
        for p in &self.memory.pools {
            writeln!(
                f,
                "  {:<20} {:>8} {:>12} {:>12} {:>14}",
                p.database,
                p.max_size,
                human(p.cache_per_connection),
                human(p.worst_case),
                human(p.bound_by_file)
            )?;
        }
        let budget = self.memory.budget.map_or("none".to_owned(), human);
        writeln!(
            f,
            "  {:<20} {:>8} {:>12} {:>12} {:>14}  budget {budget}{}",
            "total",
            "",
            "",
            human(self.memory.worst_case),
            human(self.memory.bound_by_file),
            if self.memory.over() { " EXCEEDED" } else { "" }
        )?;
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        if !self.lint.is_empty() {
            writeln!(f)?;
            writeln!(f, "lint")?;
            for l in &self.lint {
                let level = match l.level {
                    litepool::lint::Level::Error => "error",
                    litepool::lint::Level::Warning => "warning",
                    litepool::lint::Level::Notice => "notice",
                };
                writeln!(
                    f,
                    "  {level} [{}] {}: {} ({})",
                    l.code, l.database, l.message, l.link
                )?;
            }
        }
        writeln!(f)?;
        write!(
            f,
            "{}",
            if self.verified {
                "all settings verified"
            } else if self.databases.iter().any(|d| d.file_error) {
                "a database could not be used (see its error above)"
            } else if self.databases.iter().all(|d| {
                d.error.is_none()
                    && d.pragmas
                        .iter()
                        .all(|r| r.ok() || r.outcome == Outcome::WouldChange)
            }) {
                "the files store settings that differ from the configuration and were left as they are (would change, above); litepool check --apply switches them, when no other process has the database open"
            } else {
                "some settings did NOT take effect"
            }
        )
    }
}
