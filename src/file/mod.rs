//! Reading a database file's header without opening it with SQLite, so that a path that is not a
//! database, or a file-level setting that cannot change, is refused before anything is written.
//!
//! Header layout: <https://sqlite.org/fileformat.html#the_database_header>.

use serde::Serialize;

use crate::pragma::AutoVacuum;

#[cfg(feature = "sqlite")]
mod inspect;
#[cfg(feature = "sqlite")]
pub(crate) use inspect::create;
#[cfg(feature = "sqlite")]
pub use inspect::inspect;

/// What is at a database path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FileState {
    /// No file yet; it will be created.
    Missing,
    /// An empty file, which SQLite treats as a new database.
    Empty,
    /// A read replica (`replica_url`): no local file; its pages come through Litestream's VFS.
    Replica,
    /// An SQLite database.
    Database {
        /// Bytes of the main file.
        bytes: u64,
        /// `page_size` from the header.
        page_size: u32,
        /// `auto_vacuum` from the header.
        auto_vacuum: AutoVacuum,
        /// True when the header says WAL.
        wal: bool,
        /// True when `PRAGMA quick_check` ran and found no damage (`check_integrity`).
        quick_check: bool,
    },
}

impl FileState {
    /// Bytes of the main database file (0 when missing or empty).
    pub fn bytes(&self) -> u64 {
        match self {
            FileState::Database { bytes, .. } => *bytes,
            _ => 0,
        }
    }

    /// The page size of an existing database.
    pub fn page_size(&self) -> Option<u32> {
        match self {
            FileState::Database { page_size, .. } => Some(*page_size),
            _ => None,
        }
    }
}
