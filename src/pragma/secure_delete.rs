//! `secure_delete`: <https://sqlite.org/pragma.html#pragma_secure_delete>.

crate::pragma::pragma_enum! {
    /// Whether deleted content is overwritten with zeros. SQLite's default is off. Written in TOML
    /// as a boolean or `"fast"`; read back as 0, 1 or 2.
    SecureDelete, what = "secure_delete", {
        /// Deleted content stays in free pages (SQLite's default).
        Off = ("false" | "off", 0),
        /// Overwrite deleted content with zeros.
        On = ("true" | "on", 1),
        /// Overwrite only where it costs no extra I/O.
        Fast = ("fast", 2),
    }
}
