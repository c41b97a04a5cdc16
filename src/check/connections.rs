//! The check of connections an application checked out of its own pool: every pragma of a
//! profile read back on each, as the rows `litepool check` reports. Needs no SQLite of
//! litepool's: any [`PragmaConnection`] will do, e.g. a newtype around the application's own
//! rusqlite connection (see the README, "Using litepool's profiles with the rusqlite you already
//! have").

use std::fmt;

use crate::check::Row;
use crate::connection::PragmaConnection;
use crate::error::Error;
use crate::profile::{Profile, Raw};

/// What reading a profile back on several connections found: one [`Row`] per pragma.
#[derive(Debug)]
#[non_exhaustive]
pub struct ConnectionsReport {
    /// The database name given to [`check_connections`].
    pub database: String,
    /// The profile's name.
    pub profile: String,
    /// Connections read.
    pub connections: u32,
    /// Per pragma, in the profile's apply order, over the connections that could be read.
    pub pragmas: Vec<Row>,
    /// The first error reading a pragma (a lock, a closed connection), if any.
    pub error: Option<Error>,
}

impl ConnectionsReport {
    /// True when at least one connection and at least one pragma were read, no read failed, and
    /// every pragma read back as asked on every connection (a profile with nothing to read back
    /// verifies nothing).
    pub fn verified(&self) -> bool {
        self.error.is_none()
            && self.connections > 0
            && !self.pragmas.is_empty()
            && self.pragmas.iter().all(Row::ok)
    }

    /// The row of `pragma`, if the profile sets it.
    pub fn row(&self, pragma: &str) -> Option<&Row> {
        self.pragmas.iter().find(|r| r.pragma == pragma)
    }

    /// The rows that did not read back as asked on every connection.
    pub fn failed(&self) -> impl Iterator<Item = &Row> {
        self.pragmas.iter().filter(|r| !r.ok())
    }
}

/// Reads every pragma of `profile` back on each of `conns` and reports them as `litepool check`
/// does. Take the connections out of the pool at once (hold them all), so that each is a
/// different connection; `database` names the database in errors.
///
/// ```
/// use litepool::check::check_connections;
/// use litepool::connection::{PragmaConnection, PragmaError, Raw};
/// use litepool::{PragmaSet, Profile};
///
/// /// A stand-in for an application's connection: it reports what it was set to.
/// #[derive(Default)]
/// struct Fake(std::collections::HashMap<&'static str, Raw>);
///
/// impl PragmaConnection for Fake {
///     fn set_pragma(&mut self, pragma: &'static str, value: &Raw) -> Result<(), PragmaError> {
///         self.0.insert(pragma, value.clone());
///         Ok(())
///     }
///     fn get_pragma(&mut self, pragma: &'static str) -> Result<Raw, PragmaError> {
///         Ok(self.0.get(pragma).cloned().unwrap_or(Raw::Int(0)))
///     }
///     fn execute_fixed(&mut self, _sql: &'static str) -> Result<(), PragmaError> {
///         Ok(())
///     }
/// }
///
/// let mut pragmas = PragmaSet::default();
/// pragmas.cache_size = Some("64MiB".parse()?);
/// let profile = Profile::new("jobs", pragmas)?;
/// let mut conns = [Fake::default(), Fake::default()];
/// profile.apply(&mut conns[0], "jobs", true)?;
///
/// let report = check_connections(&profile, "jobs", &mut conns);
/// assert!(!report.verified());
/// let row = report.row("cache_size").unwrap();
/// assert_eq!((row.wanted.to_string(), row.connections_ok, row.connections), ("-65536".into(), 1, 2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_connections<C: PragmaConnection>(
    profile: &Profile,
    database: &str,
    conns: impl IntoIterator<Item = C>,
) -> ConnectionsReport {
    let settings = profile.settings();
    // Per connection, per pragma: what SQLite reported, or nothing when reading it failed. A
    // failed read counts against its own row only; the first error is kept for the report.
    let mut read: Vec<Vec<Option<Raw>>> = Vec::new();
    let mut error = None;
    for mut conn in conns {
        let values = settings
            .iter()
            .map(|s| match conn.get_pragma(s.pragma) {
                Ok(v) => Some(v),
                Err(source) => {
                    error.get_or_insert(Error::Pragma {
                        database: database.to_owned(),
                        pragma: s.pragma,
                        source,
                    });
                    None
                }
            })
            .collect();
        read.push(values);
    }
    // No connection, no rows: nothing was read.
    let settings = if read.is_empty() { &[][..] } else { settings };
    let pragmas = settings
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let values = read.iter().map(|c| c[i].as_ref());
            let ok = values.clone().filter(|v| *v == Some(&s.expect)).count();
            let failed = values.clone().any(|v| v.is_none());
            let reported = values.clone().flatten();
            // The first value that differs, else the common one; nothing when nothing was read.
            let sqlite = reported
                .clone()
                .find(|v| **v != s.expect)
                .or_else(|| reported.clone().next())
                .cloned()
                .unwrap_or_else(|| Raw::Text(String::new()));
            Row {
                pragma: s.pragma,
                configured: s.configured.clone(),
                wanted: s.expect.clone(),
                sqlite,
                scope: s.scope,
                connections_ok: ok as u32,
                connections: read.len() as u32,
                outcome: if failed {
                    crate::check::Outcome::Failed
                } else {
                    crate::check::Outcome::Read
                },
            }
        })
        .collect();
    ConnectionsReport {
        database: database.to_owned(),
        profile: profile.name().to_owned(),
        connections: read.len() as u32,
        pragmas,
        error,
    }
}

/// A table: one line per pragma, the ones that did not take effect marked.
impl fmt::Display for ConnectionsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "database {:?} (profile {:?}): {} connection(s), {}",
            self.database,
            self.profile,
            self.connections,
            if self.verified() {
                "verified"
            } else {
                "NOT verified"
            }
        )?;
        let header = ["pragma", "configured", "wanted", "sqlite", "connections ok"];
        let cells: Vec<[String; 5]> = self
            .pragmas
            .iter()
            .map(|r| {
                [
                    r.pragma.to_owned(),
                    r.configured.clone(),
                    r.wanted.to_string(),
                    r.sqlite.to_string(),
                    format!("{}/{}", r.connections_ok, r.connections),
                ]
            })
            .collect();
        let width = |i: usize| {
            cells
                .iter()
                .map(|c| c[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..header.len()).map(width).collect();
        let line = |f: &mut fmt::Formatter<'_>, cols: [&str; 5], mark: &str| {
            let mut text = String::new();
            for (i, col) in cols.iter().enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(&format!("{col:<w$}", w = widths[i]));
            }
            writeln!(f, "{}{mark}", text.trim_end())
        };
        line(f, header, "")?;
        for (row, c) in self.pragmas.iter().zip(&cells) {
            let cols = [&*c[0], &*c[1], &*c[2], &*c[3], &*c[4]];
            line(
                f,
                cols,
                if row.ok() {
                    ""
                } else {
                    "  <- did not take effect"
                },
            )?;
        }
        if let Some(e) = &self.error {
            writeln!(f, "error: {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::connection::{PragmaError, Raw};
    use crate::pragma::{JournalMode, Synchronous};
    use crate::profile::PragmaSet;

    /// Keeps what it is set to; `refuse` names a pragma it keeps at its old value, and `fail`
    /// one whose read fails.
    #[derive(Default)]
    struct Fake {
        values: HashMap<&'static str, Raw>,
        refuse: Option<&'static str>,
        fail: Option<&'static str>,
    }

    impl PragmaConnection for Fake {
        fn set_pragma(&mut self, pragma: &'static str, value: &Raw) -> Result<(), PragmaError> {
            if self.refuse != Some(pragma) {
                self.values.insert(pragma, value.clone());
            }
            Ok(())
        }
        fn get_pragma(&mut self, pragma: &'static str) -> Result<Raw, PragmaError> {
            if self.fail == Some(pragma) {
                return Err(PragmaError::Driver {
                    message: "database is locked".into(),
                    busy: true,
                });
            }
            Ok(match (pragma, self.values.get(pragma)) {
                // SQLite reports synchronous by number.
                ("synchronous", Some(Raw::Text(t))) if t == "normal" => Raw::Int(1),
                (_, Some(v)) => v.clone(),
                ("journal_mode", None) => Raw::Text("delete".into()),
                (_, None) => Raw::Int(0),
            })
        }
        fn execute_fixed(&mut self, _sql: &'static str) -> Result<(), PragmaError> {
            Ok(())
        }
    }

    fn profile() -> Profile {
        let set = PragmaSet {
            journal_mode: Some(JournalMode::Wal),
            synchronous: Some(Synchronous::Normal),
            cache_size: Some("8MiB".parse().unwrap()),
            ..PragmaSet::default()
        };
        Profile::new("fast", set).unwrap()
    }

    #[test]
    fn every_connection_as_asked_is_verified() {
        let p = profile();
        let mut conns: Vec<Fake> = (0..3).map(|_| Fake::default()).collect();
        for c in &mut conns {
            p.apply(c, "jobs", true).unwrap();
        }
        let report = check_connections(&p, "jobs", &mut conns);
        assert!(report.verified());
        assert_eq!(report.connections, 3);
        let cache = report.row("cache_size").unwrap();
        assert_eq!(cache.configured, "8MiB");
        assert_eq!(cache.sqlite, Raw::Int(-8192));
        assert_eq!((cache.connections_ok, cache.connections), (3, 3));
        assert_eq!(report.row("synchronous").unwrap().sqlite, Raw::Int(1));
        assert_eq!(
            report.to_string(),
            "database \"jobs\" (profile \"fast\"): 3 connection(s), verified\n\
             pragma        configured  wanted  sqlite  connections ok\n\
             journal_mode  wal         wal     wal     3/3\n\
             synchronous   normal      1       1       3/3\n\
             cache_size    8MiB        -8192   -8192   3/3\n"
        );
    }

    #[test]
    fn a_refused_pragma_names_its_row() {
        let p = profile();
        let mut conns = vec![
            Fake::default(),
            Fake {
                refuse: Some("journal_mode"),
                ..Fake::default()
            },
        ];
        for c in &mut conns {
            p.apply(c, "jobs", true).unwrap();
        }
        let report = check_connections(&p, "jobs", &mut conns);
        assert!(!report.verified());
        let failed: Vec<_> = report.failed().map(|r| r.pragma).collect();
        assert_eq!(failed, ["journal_mode"]);
        let row = report.row("journal_mode").unwrap();
        assert_eq!(row.sqlite, Raw::Text("delete".into()));
        assert_eq!((row.connections_ok, row.connections), (1, 2));
        assert!(report
            .to_string()
            .contains("journal_mode  wal         wal     delete  1/2  <- did not take effect\n"));
    }

    #[test]
    fn a_failed_read_is_the_error_and_not_verified() {
        let p = profile();
        let mut conns = vec![
            Fake::default(),
            Fake {
                fail: Some("cache_size"),
                ..Fake::default()
            },
        ];
        for c in &mut conns {
            p.apply(c, "jobs", true).unwrap();
        }
        let report = check_connections(&p, "jobs", &mut conns);
        assert!(!report.verified());
        assert_eq!(report.connections, 2);
        // The connection that failed to read cache_size counts against that row (not ok), and
        // is not dropped from it: 1 of 2, marked failed.
        let row = report.row("cache_size").unwrap();
        assert_eq!((row.connections_ok, row.connections), (1, 2));
        assert_eq!(row.outcome, crate::check::Outcome::Failed);
        let e = report.error.as_ref().unwrap();
        assert!(e.is_busy());
        assert_eq!(
            e.to_string(),
            "database \"jobs\": pragma cache_size: database is locked"
        );
    }

    #[test]
    fn connections_of_different_types_check_as_trait_objects() {
        let p = profile();
        let (mut a, mut b) = (Fake::default(), Fake::default());
        p.apply(&mut a, "jobs", true).unwrap();
        let mut conns: [&mut dyn PragmaConnection; 2] = [&mut a, &mut b];
        let report = check_connections(&p, "jobs", &mut conns);
        let row = report.row("journal_mode").unwrap();
        assert_eq!((row.connections_ok, row.connections), (1, 2));
        assert_eq!(row.sqlite, Raw::Text("delete".into()));
    }

    #[test]
    fn no_connection_is_not_verified() {
        let report = check_connections(&profile(), "jobs", Vec::<Fake>::new());
        assert!(!report.verified());
        assert!(report.pragmas.is_empty());
    }
}
