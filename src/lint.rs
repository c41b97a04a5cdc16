//! Profile lint for `litepool check`: settings known to be unsafe or surprising, each with the
//! reason and a link to sqlite.org. `litepool check --strict` fails on warnings; notices are
//! deliberate trade-offs (memory-mapped I/O) that are worth knowing but not errors.

use std::path::Path;

use serde::Serialize;

use crate::budget::{human, Budget};
use crate::pragma::{JournalMode, LockingMode, Synchronous};
use crate::settings::{
    Checkpoint, DatabaseSettings, Durability, LitestreamVersion, PoolSpec, Replication, Settings,
};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// A setting that cannot work (e.g. with the database's replication): `check` fails.
    Error,
    /// Unsafe or likely wrong: `--strict` fails.
    Warning,
    /// A deliberate trade-off worth knowing.
    Notice,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Warning or notice.
    pub level: Level,
    /// The database (or pool) it is about.
    pub database: String,
    /// A short stable code, e.g. `synchronous-off`.
    pub code: &'static str,
    /// What and why.
    pub message: String,
    /// Where sqlite.org explains it.
    pub link: &'static str,
}

/// File systems on which WAL's shared memory does not work (statfs `f_type`).
const NETWORK_FS: &[(i64, &str)] = &[
    (0x6969, "NFS"),
    (0x517B, "SMB"),
    (0xFF53_4D42, "CIFS"),
    (0xFE53_4D42, "SMB2"),
    (0x6573_5546, "FUSE"),
];

/// The network file system a path is on, if any (`statfs`; unix only: elsewhere `None`, and
/// the `wal-network-fs` lint never fires).
#[cfg(not(unix))]
pub fn network_fs(_path: &Path) -> Option<&'static str> {
    None
}

/// The network file system a path is on, if any (`statfs`).
#[cfg(unix)]
pub fn network_fs(path: &Path) -> Option<&'static str> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fs = rustix::fs::statfs(dir).ok()?;
    let kind = fs.f_type as i64;
    NETWORK_FS
        .iter()
        .find(|(magic, _)| *magic == kind)
        .map(|(_, name)| *name)
}

/// Litestream 0.5's checkpoint strategy: its three tiers, their defaults and the settings that
/// tune them (`min-checkpoint-page-count`, `checkpoint-interval`, `truncate-page-n`).
pub const LITESTREAM_05_CHECKPOINTS: &str = "https://litestream.io/guides/wal-truncate-threshold/";

/// `` `?`, `#` or `%` ``.
fn quoted_list(chars: &[char]) -> String {
    let items: Vec<String> = chars.iter().map(|c| format!("`{c}`")).collect();
    match items.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// What a database's replication needs of its profile, checked on the pool that writes.
fn replication(db: &DatabaseSettings, spec: &PoolSpec, out: &mut Vec<Finding>) {
    if !spec.role.writes() {
        return;
    }
    let set = spec.profile.pragmas();
    let mut add = |level, code, message: String, link| {
        out.push(Finding {
            level,
            database: spec.name.clone(),
            code,
            message,
            link,
        })
    };
    match db.replication {
        Replication::None => {}
        Replication::Litestream | Replication::Litestream03 => {
            const TIPS: &str = "https://litestream.io/tips/";
            let v03 = db.replication == Replication::Litestream03;
            let named = format!("replication = \"{}\"", db.replication);
            match set.journal_mode {
                Some(JournalMode::Wal) => {}
                Some(m) => add(
                    Level::Error,
                    "replication-wal",
                    format!("{named} but journal_mode = {m}: Litestream only works with WAL, and litepool would switch the file away from it"),
                    TIPS,
                ),
                None => add(
                    Level::Warning,
                    "replication-wal",
                    format!("{named}: set journal_mode = \"wal\" so that litepool switches to it and verifies it (Litestream only works with WAL)"),
                    TIPS,
                ),
            }
            if set.locking_mode == Some(LockingMode::Exclusive) {
                add(
                    Level::Error,
                    "replication-locking",
                    format!("{named} but locking_mode = exclusive: Litestream is another process that must read the database and take short write locks to checkpoint"),
                    TIPS,
                );
            }
            // Unset is rusqlite's 5s.
            if let Some(t) = set.busy_timeout.filter(|t| t.millis() < 5000) {
                add(
                    Level::Warning,
                    "replication-busy-timeout",
                    format!("{named} but busy_timeout = {t}: Litestream takes short write locks to checkpoint; a write that meets one fails with SQLITE_BUSY unless it waits (5s recommended)"),
                    TIPS,
                );
            }
            if v03 {
                // Litestream 0.3's advice: under a high write load, it alone checkpoints.
                if set.wal_autocheckpoint != Some(0) {
                    add(
                        Level::Notice,
                        "replication-checkpoint",
                        format!("{named} with SQLite's automatic checkpoints: under a high write load Litestream 0.3 recommends wal_autocheckpoint = 0 so that it alone checkpoints (then the WAL grows while Litestream is not running)"),
                        TIPS,
                    );
                }
            }
            let version = db
                .replication
                .litestream()
                .unwrap_or(LitestreamVersion::V05);
            if let Some(c) = db
                .path
                .to_str()
                .and_then(|p| p.chars().find(|c| version.misread_path_chars().contains(c)))
            {
                // 0.3.13 db.go: `dsn := db.path + "?_busy_timeout=..."`; 0.5.16 db.go:
                // `fmt.Sprintf("file:%s?_pragma=...", db.path)`; neither escapes the path.
                add(
                    Level::Error,
                    "replication-path",
                    format!("{named} but the path holds {c:?}: Litestream {version} opens the database through a connection string it builds without escaping the path ({}), so it opens another file or none; move the database to a path without {}", if v03 { "the path, then `?_busy_timeout=...`: the path ends at the first `?`" } else { "a `file:` URI: `?` and `#` end the path and `%41` becomes `A`" }, quoted_list(version.misread_path_chars())),
                    if v03 {
                        "https://github.com/benbjohnson/litestream/blob/v0.3.13/db.go#L404-L405"
                    } else {
                        "https://github.com/benbjohnson/litestream/blob/v0.5.16/db.go#L1046-L1047"
                    },
                );
            }
            if !v03 && db.checkpoint == Checkpoint::Background {
                // Litestream 0.5 checkpoints by itself and follows the WAL between its
                // checkpoints; litepool's RESTART between batches starts the WAL over under it,
                // and Litestream then ships the whole database again (measured in
                // tests/replication05.rs: 2.4 times the bytes, the largest file the whole
                // database, against the rows once with checkpoint = "sqlite").
                add(
                    Level::Warning,
                    "replication-checkpoint-background",
                    format!("{named} with checkpoint = \"background\": Litestream 0.5 checkpoints the database itself (PASSIVE from 1000 WAL pages and every minute, TRUNCATE from 121359 pages) and follows the WAL between its checkpoints; litepool's RESTART checkpoints start the WAL over under it, and Litestream then ships the whole database again; leave checkpoints to Litestream (checkpoint = \"sqlite\", the default; SQLite's own PASSIVE checkpoints are harmless)"),
                    LITESTREAM_05_CHECKPOINTS,
                );
            }
            if set.journal_size_limit.is_some() {
                add(
                    Level::Notice,
                    "replication-journal-size-limit",
                    format!("{named} with journal_size_limit: the WAL is truncated after checkpoints; Litestream copies frames before it lets a checkpoint pass them, so this only bounds the file's size on disk"),
                    "https://litestream.io/how-it-works/",
                );
            }
        }
        Replication::Litefs => {
            if db.split.is_none() {
                add(
                    Level::Warning,
                    "litefs-split",
                    "replication = \"litefs\" without a writer/readers split: on a replica node litepool opens no writer, so a database that is not split cannot be opened there; add [writer] and [readers]".into(),
                    "https://fly.io/docs/litefs/primary/",
                );
            }
            if set.locking_mode == Some(LockingMode::Exclusive) {
                add(
                    Level::Error,
                    "replication-locking",
                    "replication = \"litefs\" but locking_mode = exclusive: LiteFS replicates through SQLite's locks".into(),
                    "https://fly.io/docs/litefs/",
                );
            }
        }
    }
}

fn per_pool(
    db: &DatabaseSettings,
    spec: &PoolSpec,
    out: &mut Vec<Finding>,
    fs_of: &dyn Fn(&Path) -> Option<&'static str>,
) {
    let set = spec.profile.pragmas();
    let mut add = |level, code, message: String, link| {
        out.push(Finding {
            level,
            database: spec.name.clone(),
            code,
            message,
            link,
        })
    };
    if set.synchronous == Some(Synchronous::Off) {
        add(
            Level::Warning,
            "synchronous-off",
            "synchronous = off: a power loss or OS crash can corrupt the database".into(),
            "https://sqlite.org/pragma.html#pragma_synchronous",
        );
    }
    if let Some(m @ (JournalMode::Off | JournalMode::Memory)) = set.journal_mode {
        add(
            Level::Warning,
            "journal-unsafe",
            format!("journal_mode = {m}: a crash in the middle of a transaction can corrupt the database"),
            "https://sqlite.org/pragma.html#pragma_journal_mode",
        );
    }
    // A LiteFS mount is a FUSE file system made for SQLite: the network-fs warning is not for it.
    if set.journal_mode == Some(JournalMode::Wal) && db.replication != Replication::Litefs {
        if let Some(fs) = fs_of(&db.path) {
            add(
                Level::Warning,
                "wal-network-fs",
                format!("journal_mode = wal on a {fs} file system: WAL needs shared memory between processes on one host, which network file systems do not provide"),
                "https://sqlite.org/wal.html#sometimes_queries_return_sqlite_busy_in_wal_mode",
            );
        }
    }
    if set.mmap_size.is_some_and(|m| m.bytes() > 0) {
        add(
            Level::Notice,
            "mmap",
            "mmap_size is on: an I/O error on a mapped page raises SIGBUS and kills the process instead of returning an error".into(),
            "https://sqlite.org/mmap.html",
        );
    }
    // Unset is SQLite's default, full.
    if db.durability == Durability::Strict
        && matches!(
            set.synchronous,
            Some(Synchronous::Normal | Synchronous::Off)
        )
    {
        let sync = set.synchronous.map_or(String::new(), |s| s.to_string());
        add(
            Level::Warning,
            "strict-durability",
            format!("durability = \"strict\" but synchronous is {sync}: the last commits can be lost on power loss; set synchronous = \"full\""),
            "https://sqlite.org/pragma.html#pragma_synchronous",
        );
    }
    if spec.pool.max_size > 1
        && set.busy_timeout.is_some_and(|t| t.millis() == 0)
        && spec.role.writes()
        && !set.query_only.unwrap_or(false)
    {
        add(
            Level::Warning,
            "no-busy-timeout",
            format!("{} connections may write but busy_timeout = 0: a write that meets another fails with SQLITE_BUSY at once", spec.pool.max_size),
            "https://sqlite.org/pragma.html#pragma_busy_timeout",
        );
    }
}

/// Lints every pool of `settings`, and the budget.
pub fn lint(settings: &Settings, budget: &Budget) -> Vec<Finding> {
    lint_with(settings, budget, &network_fs)
}

/// [`lint`] with a given file-system probe (for tests).
pub fn lint_with(
    settings: &Settings,
    budget: &Budget,
    fs_of: &dyn Fn(&Path) -> Option<&'static str>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let specs: Vec<(&DatabaseSettings, PoolSpec)> = settings
        .databases
        .values()
        .flat_map(|db| db.pools().into_iter().map(move |spec| (db, spec)))
        .collect();
    for (db, spec) in &specs {
        per_pool(db, spec, &mut out, fs_of);
        replication(db, spec, &mut out);
    }
    for db in settings.databases.values() {
        if db.checkpoint == Checkpoint::Background && !db.background_checkpoints() {
            let mode = db
                .profile
                .pragmas()
                .journal_mode
                .map_or(String::new(), |m| m.to_string());
            out.push(Finding {
                level: Level::Warning,
                database: db.name.clone(),
                code: "checkpoint-needs-wal",
                message: format!("checkpoint = \"background\" has no effect with journal_mode = {mode}: only a WAL has checkpoints; set journal_mode = \"wal\" or remove the key"),
                link: "https://sqlite.org/wal.html#checkpointing",
            });
        }
    }
    if budget.over() {
        out.push(Finding {
            level: Level::Warning,
            database: "all".into(),
            code: "over-budget",
            message: format!(
                "max_size x cache_size over all pools is {}, over limits.memory_budget = {}",
                human(budget.worst_case),
                human(budget.budget.unwrap_or(0))
            ),
            link: "https://sqlite.org/pragma.html#pragma_cache_size",
        });
    }
    for i in &settings.ignored {
        out.push(Finding {
            level: Level::Warning,
            database: i.origin.clone(),
            code: "ignored-key",
            message: format!("key `{}`: {}", i.key, i.reason),
            link: "https://docs.rs/litepool/latest/litepool/settings/struct.Ignored.html",
        });
    }
    out
}
