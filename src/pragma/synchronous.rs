//! `synchronous`: <https://sqlite.org/pragma.html#pragma_synchronous>.

crate::pragma::pragma_enum! {
    /// How often SQLite waits for data to reach the disk. SQLite's default is `full`.
    ///
    /// With WAL, `normal` is safe from corruption and loses at most the last transactions on a
    /// power failure (not on an application crash). It cannot change inside a transaction.
    /// `off` needs `allow_unsafe = true`. SQLite reads it back as 0, 1, 2 or 3.
    Synchronous, what = "synchronous", {
        /// Hand data to the OS without syncing: a power loss can corrupt the database (unsafe).
        Off = ("off", 0),
        /// Sync at the critical moments only; with WAL, durable except on power loss.
        Normal = ("normal", 1),
        /// Sync at every commit (SQLite's default).
        Full = ("full", 2),
        /// Like `full`, and also sync the directory after deleting a rollback journal.
        Extra = ("extra", 3),
    }
}

impl Synchronous {
    /// True for values that need `allow_unsafe = true`.
    pub fn is_unsafe(self) -> bool {
        self == Synchronous::Off
    }
}
