//! `journal_mode`: <https://sqlite.org/pragma.html#pragma_journal_mode>.

crate::pragma::pragma_enum! {
    /// How SQLite keeps its rollback journal. SQLite's default is `delete`.
    ///
    /// `wal` is stored in the database file and persists: every later connection, in any process,
    /// opens the file in WAL mode. Switching into or out of WAL needs a moment of exclusive access,
    /// which is why litepool switches once, on a bootstrap connection, before the pool opens its
    /// connections. The other modes are per connection. A failed switch is silent: SQLite answers
    /// the mode actually in force, so litepool always reads the mode back.
    ///
    /// `memory` and `off` risk a corrupt database on a crash and need `allow_unsafe = true`.
    JournalMode, what = "journal_mode", {
        /// Delete the journal at the end of each transaction (SQLite's default).
        Delete = ("delete", 0),
        /// Truncate the journal to zero bytes instead of deleting it.
        Truncate = ("truncate", 1),
        /// Overwrite the journal header with zeros instead of deleting it.
        Persist = ("persist", 2),
        /// Write-ahead log: readers do not block the writer; stored in the file.
        Wal = ("wal", 3),
        /// Journal in memory: a crash mid-transaction can corrupt the database (unsafe).
        Memory = ("memory", 4),
        /// No journal: no rollback, a crash can corrupt the database (unsafe).
        Off = ("off", 5),
    }
}

impl JournalMode {
    /// True for modes that need `allow_unsafe = true`.
    pub fn is_unsafe(self) -> bool {
        matches!(self, JournalMode::Memory | JournalMode::Off)
    }
}
