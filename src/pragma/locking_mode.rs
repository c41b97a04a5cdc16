//! `locking_mode`: <https://sqlite.org/pragma.html#pragma_locking_mode>.

crate::pragma::pragma_enum! {
    /// Whether a connection releases its file locks after each transaction. SQLite's default is
    /// `normal`. `exclusive` locks every other connection (and the rest of the pool) out of the
    /// file, so it needs `allow_unsafe = true`.
    LockingMode, what = "locking_mode", {
        /// Release locks at the end of each transaction (SQLite's default).
        Normal = ("normal", 0),
        /// Keep the locks: only one connection can use the file.
        Exclusive = ("exclusive", 1),
    }
}

impl LockingMode {
    /// True for values that need `allow_unsafe = true`.
    pub fn is_unsafe(self) -> bool {
        self == LockingMode::Exclusive
    }
}
