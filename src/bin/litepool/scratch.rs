//! Private scratch space for `bench` and `stats --workload`: a 0700 temporary directory whose
//! files are 0600, removed on success, on error and on SIGINT/SIGTERM; and copies of a user's
//! databases made without opening the originals with SQLite.
//!
//! Why the copy is done by hand: SQLite's backup API needs a connection to the original, and a
//! connection (even read-only) to a WAL database creates `-wal` and `-shm` files next to it that
//! it cannot remove. Copying the bytes of the database and of any `-wal` or `-journal` beside it,
//! then opening the copy, gives the same snapshot (SQLite replays the WAL or rolls back the hot
//! journal inside the private directory) and leaves the originals' directory as it was.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
#[cfg(unix)]
use std::sync::OnceLock;
use std::sync::{Mutex, PoisonError};

use litepool::{Error, Result};
use rusqlite::Connection;

/// Directories to remove if the process is interrupted.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// What to print on stdout if the process is interrupted (`tune`: the best profile so far).
static LAST_WORDS: Mutex<String> = Mutex::new(String::new());

/// Sets what SIGINT/SIGTERM print on stdout before the process exits (empty: nothing).
pub fn on_interrupt(text: String) {
    *LAST_WORDS.lock().unwrap_or_else(PoisonError::into_inner) = text;
}
#[cfg(unix)]
static HANDLER: OnceLock<std::result::Result<(), String>> = OnceLock::new();

/// Elsewhere than on unix, an interrupted command leaves its scratch directory behind.
#[cfg(not(unix))]
fn install_handler() -> Result<()> {
    Ok(())
}

/// Removes every live scratch directory and exits with 128 + the signal's number, on SIGINT or
/// SIGTERM. Installed once, by the first [`Scratch::new`].
#[cfg(unix)]
fn install_handler() -> Result<()> {
    HANDLER
        .get_or_init(|| {
            use signal_hook::consts::{SIGINT, SIGTERM};
            let mut signals =
                signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(|e| e.to_string())?;
            std::thread::Builder::new()
                .name("litepool-signals".into())
                .spawn(move || {
                    if let Some(signal) = signals.forever().next() {
                        let dirs = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
                        // The measuring threads run on until the process exits: one of them may
                        // create a file in a directory being removed (ENOTEMPTY). Again, until
                        // it is gone, for at most a second.
                        let mut left = Vec::new();
                        for dir in dirs.iter() {
                            for _ in 0..100 {
                                let _ = std::fs::remove_dir_all(dir);
                                if !dir.exists() {
                                    break;
                                }
                                std::thread::sleep(std::time::Duration::from_millis(10));
                            }
                            if dir.exists() {
                                left.push(dir.display().to_string());
                            }
                        }
                        let words = LAST_WORDS.lock().unwrap_or_else(PoisonError::into_inner);
                        if !words.is_empty() {
                            use std::io::Write as _;
                            let mut out = std::io::stdout().lock();
                            let _ = writeln!(out, "{words}");
                            let _ = out.flush();
                        }
                        let removed = dirs.len() - left.len();
                        eprintln!(
                            "litepool: interrupted (signal {signal}); removed {removed} scratch director{}{}",
                            if removed == 1 { "y" } else { "ies" },
                            if left.is_empty() {
                                String::new()
                            } else {
                                format!("; could not remove {}", left.join(", "))
                            }
                        );
                        std::process::exit(128 + signal);
                    }
                })
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|message| Error::Io {
            path: "signal handler".into(),
            source: io::Error::other(message),
        })
}

/// A private temporary directory (0700), removed when dropped or when the process is
/// interrupted by SIGINT or SIGTERM.
#[derive(Debug)]
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// Creates the directory under the system's temporary directory.
    pub fn new() -> Result<Scratch> {
        install_handler()?;
        // Held from before the directory exists until it is listed: a signal in between makes
        // the handler wait for the list, then remove it (found by a SIGTERM 5 ms after start).
        let mut live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
        let dir = tempfile::Builder::new()
            .prefix("litepool-")
            .tempdir()
            .map_err(|source| Error::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        live.push(dir.path().to_owned());
        drop(live);
        set_mode(dir.path(), 0o700)?;
        Ok(Scratch { dir })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        LIVE.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|d| d != self.dir.path());
    }
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

/// Sets unix permissions (elsewhere a no-op: the directory is the user's temporary directory).
#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    })
}

/// Creates `path` as a new, empty 0600 file.
pub fn private_file(path: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    set_mode(path, 0o600)?;
    Ok(file)
}

/// The files that make up a database on disk: the file, and the WAL or hot journal beside it.
const PARTS: [&str; 3] = ["", "-wal", "-journal"];

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Size and modification time of each part, to see whether a writer changed the database while
/// it was being copied.
fn fingerprint(path: &Path) -> Vec<Option<(u64, std::time::SystemTime)>> {
    PARTS
        .iter()
        .map(|suffix| {
            let m = std::fs::metadata(with_suffix(path, suffix)).ok()?;
            Some((m.len(), m.modified().ok()?))
        })
        .collect()
}

/// Copies the database `src` (and its `-wal` or `-journal`) to `dest` in a scratch directory,
/// as 0600 files, without opening `src` with SQLite; then opens the copy, which brings it to a
/// consistent state, checkpoints it into one file and checks it with `PRAGMA quick_check`.
/// `name` is the database's name for messages.
pub fn copy_database(src: &Path, dest: &Path, name: &str) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    let mut stable = false;
    for _ in 0..3 {
        let before = fingerprint(src);
        for suffix in PARTS {
            let from = with_suffix(src, suffix);
            let to = with_suffix(dest, suffix);
            let _ = std::fs::remove_file(&to);
            match File::open(&from) {
                Ok(mut reader) => {
                    let mut writer = private_file(&to)?;
                    io::copy(&mut reader, &mut writer).map_err(io(&to))?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && !suffix.is_empty() => {}
                Err(e) => return Err(io(&from)(e)),
            }
        }
        if fingerprint(src) == before {
            stable = true;
            break;
        }
    }
    if !stable {
        return Err(Error::Io {
            path: src.to_owned(),
            source: io::Error::other(
                "the database changed on every one of 3 attempts to copy it; stop its writers or \
                 try again",
            ),
        });
    }
    let sql = |source| Error::Sqlite {
        database: name.to_owned(),
        source,
    };
    let conn = Connection::open(dest).map_err(sql)?;
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(sql)?;
    if check != "ok" {
        return Err(Error::Corrupt {
            database: name.to_owned(),
            path: src.to_owned(),
            report: check,
        });
    }
    // Fold a copied WAL into the file, so that every run starts from one file.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(sql)?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn copies_a_live_wal_database_privately_and_leaves_its_directory_alone() {
        let src_dir = tempfile::tempdir().unwrap();
        let src = src_dir.path().join("live.db");
        // A writer that keeps the database open in WAL mode, with rows still in the WAL.
        let writer = Connection::open(&src).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode=wal; PRAGMA wal_autocheckpoint=0;
                 CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3);",
            )
            .unwrap();
        let listing = |d: &Path| {
            let mut v: Vec<_> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        let before = listing(src_dir.path());
        let scratch = Scratch::new().unwrap();
        assert_eq!(mode(scratch.path()), 0o700);
        let dest = scratch.path().join("copy.db");
        copy_database(&src, &dest, "live").unwrap();
        assert_eq!(mode(&dest), 0o600);
        let n: i64 = Connection::open(&dest)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3, "the rows still in the original's WAL are in the copy");
        assert_eq!(listing(src_dir.path()), before);
        let path = scratch.path().to_owned();
        drop(scratch);
        assert!(!path.exists());
    }
}
