//! `temp_store`: <https://sqlite.org/pragma.html#pragma_temp_store>.

crate::pragma::pragma_enum! {
    /// Where temporary tables and indices live. SQLite's default is `default` (the compile-time
    /// choice, a file for the bundled build). Read back as 0, 1 or 2.
    TempStore, what = "temp_store", {
        /// The compile-time default.
        Default = ("default", 0),
        /// Temporary files on disk.
        File = ("file", 1),
        /// In memory: faster sorts and temp tables, more memory per connection.
        Memory = ("memory", 2),
    }
}
