//! Looking at a database path before SQLite opens it (feature `sqlite`: `check_integrity` runs
//! SQLite's `quick_check`).

use std::fs;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::file::FileState;
use crate::pragma::AutoVacuum;
use crate::settings::DatabaseSettings;

const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Why a directory cannot take a new file, if it cannot: no write bit at all (refused even for
/// root, whose writes would otherwise bypass the mode), no write access, or a read-only mount.
/// Unix only; elsewhere the check is left to the file system when the file is created.
#[cfg(not(unix))]
fn not_writable(_dir: &Path) -> Option<String> {
    None
}

/// See the non-unix version.
#[cfg(unix)]
fn not_writable(dir: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(dir).ok()?.permissions().mode();
    if mode & 0o222 == 0 {
        return Some(format!("mode {:04o}", mode & 0o7777));
    }
    if rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).is_err() {
        return Some("no write permission".into());
    }
    let vfs = rustix::fs::statvfs(dir).ok()?;
    if vfs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
        return Some("read-only file system".into());
    }
    None
}

/// Why SQLite would not open `path` as the one file it names, if so. The bundled SQLite is built
/// with `SQLITE_USE_URI` (and diesel opens with `SQLITE_OPEN_URI`), so text starting with
/// `file:` is a URI; and
/// `:memory:` gives every pooled connection a database of its own, empty, that vanishes with it.
fn not_a_file_path(path: &Path) -> Option<&'static str> {
    let text = path.as_os_str().as_encoded_bytes();
    if text == b":memory:" {
        return Some(
            "SQLite opens a separate, empty in-memory database for each pooled connection, so \
             writes on one are invisible to the others and vanish when it closes; for tests, \
             use a file in a temporary directory (the tempfile crate)",
        );
    }
    // SQLite matches the scheme in any case (`FILE:`, `File:`).
    if text.len() >= 5 && text[..5].eq_ignore_ascii_case(b"file:") {
        return Some(
            "SQLite reads text starting with \"file:\" (in any case) as a URI \
             (file::memory:?cache=shared is an in-memory database, ?mode= and ?vfs= change how it \
             opens) and litepool checks files, not URIs; write the file's path (./file:name.db \
             for a file whose name starts with file:)",
        );
    }
    let trimmed = text.trim_ascii();
    if trimmed.eq_ignore_ascii_case(b":memory:") || trimmed.len() != text.len() {
        return Some(
            "a file name with spaces around it, or a spelling of :memory:, is almost certainly a \
             mistake (SQLite would create a file with exactly this name; :memory: itself gives \
             each pooled connection its own empty database and is refused too); write the path \
             without them",
        );
    }
    None
}

/// Looks at `db.path` without writing: refuses a directory, a special file, a non-SQLite file, a
/// missing or unwritable directory, a missing file when `create_if_missing` is false, and an existing database
/// whose `page_size` or `auto_vacuum` differs from the profile.
pub fn inspect(db: &DatabaseSettings) -> Result<FileState> {
    if db.replica.is_some() {
        return Ok(FileState::Replica);
    }
    let path = &db.path;
    if let Some(reason) = not_a_file_path(path) {
        return Err(Error::NotAFilePath {
            database: db.name.clone(),
            path: path.clone(),
            reason: reason.to_owned(),
        });
    }
    let not_db = |reason: &str| Error::NotADatabase {
        database: db.name.clone(),
        path: path.clone(),
        reason: reason.to_owned(),
    };
    let missing = |reason: String| Error::Missing {
        database: db.name.clone(),
        path: path.clone(),
        reason,
    };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Ok(target) = fs::read_link(path) {
                return Err(not_db(&format!(
                    "it is a symbolic link to {}, which does not exist",
                    target.display()
                )));
            }
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !parent.is_dir() {
                return Err(missing(format!(
                    "directory {} does not exist; create it first",
                    parent.display()
                )));
            }
            orphans(db)?;
            if !db.create_if_missing {
                return Err(missing(
                    "file does not exist and create_if_missing = false".into(),
                ));
            }
            if let Some(why) = not_writable(parent) {
                return Err(missing(format!(
                    "directory {} is not writable ({why}); the database cannot be created",
                    parent.display()
                )));
            }
            return Ok(FileState::Missing);
        }
        Err(source) => {
            return Err(Error::Io {
                path: path.clone(),
                source,
            })
        }
    };
    if meta.is_dir() {
        return Err(not_db("it is a directory"));
    }
    if !meta.is_file() {
        return Err(not_db("it is not a regular file"));
    }
    if meta.len() == 0 {
        // SQLite would treat the file as a new database and delete a WAL beside it.
        orphans(db)?;
        return Ok(FileState::Empty);
    }
    let mut header = [0u8; 100];
    let mut f = fs::File::open(path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    if f.read_exact(&mut header).is_err() || &header[..16] != MAGIC {
        return Err(not_db("no sqlite header"));
    }
    let raw_page = u16::from_be_bytes([header[16], header[17]]);
    let page_size = if raw_page == 1 {
        65536
    } else {
        u32::from(raw_page)
    };
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let auto_vacuum = match (be32(52), be32(64)) {
        (0, _) => AutoVacuum::None,
        (_, 0) => AutoVacuum::Full,
        _ => AutoVacuum::Incremental,
    };
    let state = FileState::Database {
        bytes: meta.len(),
        page_size,
        auto_vacuum,
        wal: header[18] == 2 && header[19] == 2,
        quick_check: db.check_integrity,
    };
    let set = db.profile.pragmas();
    let differs = [
        set.page_size
            .filter(|p| p.bytes() != page_size)
            .map(|p| ("page_size", p.bytes().to_string(), page_size.to_string())),
        set.auto_vacuum
            .filter(|a| *a != auto_vacuum)
            .map(|a| ("auto_vacuum", a.to_string(), auto_vacuum.to_string())),
    ];
    if let Some((pragma, wanted, actual)) = differs.into_iter().flatten().next() {
        return Err(Error::NeedsVacuum {
            database: db.name.clone(),
            path: path.clone(),
            pragma,
            wanted,
            actual,
        });
    }
    if db.check_integrity {
        quick_check(db)?;
    }
    Ok(state)
}

/// A `-wal` or `-journal` beside a database file that is missing or empty holds the only copy of
/// commits: SQLite would start a new database and delete or ignore it. Refused, bytes unchanged.
fn orphans(db: &DatabaseSettings) -> Result<()> {
    for suffix in ["-wal", "-journal"] {
        let mut name = db.path.as_os_str().to_owned();
        name.push(suffix);
        let orphan = std::path::PathBuf::from(name);
        if fs::symlink_metadata(&orphan).is_ok() {
            return Err(Error::Orphan {
                database: db.name.clone(),
                path: db.path.clone(),
                orphan,
            });
        }
    }
    Ok(())
}

/// `PRAGMA quick_check` on a read-only connection, after the profile's `busy_timeout`.
fn quick_check(db: &DatabaseSettings) -> Result<()> {
    use rusqlite::{Connection, OpenFlags};
    let sql = |source| Error::Sqlite {
        database: db.name.clone(),
        source,
    };
    let conn = Connection::open_with_flags(
        &db.path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    if let Some(t) = db.profile.pragmas().busy_timeout {
        conn.busy_timeout(t.duration()).map_err(sql)?;
    }
    // One reading of SQLite's error for the prepare and the rows: a lock held past the
    // busy timeout, a damaged file, or anything else.
    let failed = |source: rusqlite::Error| match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            Error::Locked {
                database: db.name.clone(),
                path: db.path.clone(),
                during: "PRAGMA quick_check",
            }
        }
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
            Error::Corrupt {
                database: db.name.clone(),
                path: db.path.clone(),
                report: source.to_string(),
            }
        }
        _ => sql(source),
    };
    let mut stmt = conn.prepare("PRAGMA quick_check(5)").map_err(failed)?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(failed)?;
    if rows != ["ok"] {
        return Err(Error::Corrupt {
            database: db.name.clone(),
            path: db.path.clone(),
            report: rows.join("; "),
        });
    }
    Ok(())
}

/// Creates an empty database file. Elsewhere than on unix, `file_mode` does not apply and the
/// file gets the platform's default permissions.
#[cfg(not(unix))]
pub(crate) fn create(db: &DatabaseSettings) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&db.path)
        .map(drop)
        .map_err(|source| Error::Io {
            path: db.path.clone(),
            source,
        })
}

/// Creates an empty database file with `db.file_mode`; SQLite gives its `-wal` and `-shm` files
/// the same permissions.
#[cfg(unix)]
pub(crate) fn create(db: &DatabaseSettings) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |source| Error::Io {
        path: db.path.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(db.file_mode.0)
        .open(&db.path)
        .map_err(io)?;
    // The umask may have narrowed the mode; set exactly what was configured.
    file.set_permissions(std::fs::Permissions::from_mode(db.file_mode.0))
        .map_err(io)
}
