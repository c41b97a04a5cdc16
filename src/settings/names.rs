//! Database names: one namespace for databases and the pools derived from them.
//!
//! A name becomes a pool name, a key in `stats --json`, a directory under a Litestream replica
//! and part of a scratch copy's file name. So it is refused at load unless it is 1 to
//! [`MAX_DATABASE_NAME`] ASCII letters, digits, `_` or `-`, not starting with `-` (it would read
//! as an option). `.` is reserved: a split database `jobs` has the pools `jobs.writer` and
//! `jobs.readers`, and no database name can be one of those. Two names that differ only in case
//! are refused too: on a case-insensitive file system they would share a replica directory.

use super::*;

/// The longest database name, in bytes.
pub const MAX_DATABASE_NAME: usize = 64;

/// What a database name may be, for error messages.
pub const DATABASE_NAME_RULE: &str = "1 to 64 ASCII letters, digits, '_' or '-', not starting with '-' ('.' is reserved for a split database's pools <name>.writer and <name>.readers)";

/// Why `name` cannot be a database name, if it cannot: the value (escaped) and what is allowed.
pub fn invalid_name(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_DATABASE_NAME
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    (!ok).then(|| format!("invalid database name {name:?}: expected {DATABASE_NAME_RULE}"))
}

/// The key an error about database `name` is reported under, with the name escaped so that a
/// hostile name cannot break the message's line.
pub(super) fn name_key(name: &str) -> String {
    format!("databases.{}", name.escape_debug())
}

/// Checks every name of `databases`: valid on its own, equal to the settings' own `name`, and
/// distinct from the others ignoring case. Errors are `(name, message)`; a name that a split
/// database's pool also has names both.
pub(super) fn check_names(
    databases: &BTreeMap<String, DatabaseSettings>,
) -> std::result::Result<(), (String, String)> {
    for (name, db) in databases {
        if let Some(mut message) = invalid_name(name) {
            if let Some((base, role)) = name.rsplit_once('.') {
                if databases.get(base).is_some_and(|d| d.split.is_some())
                    && (role == "writer" || role == "readers")
                {
                    message.push_str(&format!(
                        "; it is the name of the {role} pool of split database {base:?}"
                    ));
                }
            }
            return Err((name.clone(), message));
        }
        if db.name != *name {
            return Err((
                name.clone(),
                format!(
                    "database {name:?} holds settings named {:?}: the key and `name` must be the same",
                    db.name
                ),
            ));
        }
    }
    let mut seen: BTreeMap<String, &String> = BTreeMap::new();
    for name in databases.keys() {
        if let Some(first) = seen.insert(name.to_ascii_lowercase(), name) {
            return Err((
                name.clone(),
                format!(
                    "database names {first:?} and {name:?} differ only in case: on a case-insensitive file system they would share a replica directory; rename one"
                ),
            ));
        }
    }
    Ok(())
}

impl Settings {
    /// Checks the database names of settings built in code, as loading checks those from files
    /// and variables (see the module documentation of `settings`).
    pub fn check_names(&self) -> Result<()> {
        check_names(&self.databases).map_err(|(name, message)| Error::Config {
            origin: if self.sources.is_empty() {
                "settings built in code".to_owned()
            } else {
                self.sources.join(" + ")
            },
            key: Some(name_key(&name)),
            message,
        })
    }
}
