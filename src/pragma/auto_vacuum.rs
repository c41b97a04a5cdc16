//! `auto_vacuum`: <https://sqlite.org/pragma.html#pragma_auto_vacuum>.

crate::pragma::pragma_enum! {
    /// Whether freed pages are returned to the file system. Stored in the database file and set
    /// when it is created: litepool applies it only to a new file and refuses to open an existing
    /// file whose value differs (changing it needs a VACUUM). SQLite's default is `none`.
    AutoVacuum, what = "auto_vacuum", {
        /// Freed pages stay in the file for reuse (SQLite's default).
        None = ("none", 0),
        /// Truncate the file at every commit.
        Full = ("full", 1),
        /// Keep the bookkeeping; free pages with `PRAGMA incremental_vacuum`.
        Incremental = ("incremental", 2),
    }
}
