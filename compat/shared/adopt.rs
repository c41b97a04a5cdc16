//! litepool's profiles on an application's own rusqlite and r2d2 pool, with litepool's SQLite
//! left out (`default-features = false`). Compiled against rusqlite 0.26 and 0.32 by the crates
//! beside this folder; the README shows the part between the `README` markers, and a test checks
//! that it is the same text.

// README: begin
use litepool::check::{check_connections, ConnectionsReport};
use litepool::connection::{PragmaConnection, PragmaError, Raw};
use litepool::{DatabaseSettings, PragmaCustomizer, Profile};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::Value;

/// The application's rusqlite connection, as litepool sees it (a newtype: neither the trait nor
/// the connection type is the application's own).
pub struct Sqlite<'a>(pub &'a mut rusqlite::Connection);

fn driver(e: rusqlite::Error) -> PragmaError {
    let busy = matches!(&e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::DatabaseBusy);
    PragmaError::Driver {
        message: e.to_string(),
        busy,
    }
}

impl PragmaConnection for Sqlite<'_> {
    fn set_pragma(&mut self, pragma: &'static str, value: &Raw) -> Result<(), PragmaError> {
        match value {
            Raw::Int(i) => self.0.pragma_update(None, pragma, i),
            Raw::Text(t) => self.0.pragma_update(None, pragma, t),
        }
        .map_err(driver)
    }

    fn get_pragma(&mut self, pragma: &'static str) -> Result<Raw, PragmaError> {
        let value = self
            .0
            .pragma_query_value(None, pragma, |row| row.get::<_, Value>(0));
        Ok(match value.map_err(driver)? {
            Value::Integer(i) => Raw::Int(i),
            Value::Text(t) => Raw::Text(t.to_lowercase()),
            other => Raw::Text(format!("{other:?}")),
        })
    }

    fn execute_fixed(&mut self, sql: &'static str) -> Result<(), PragmaError> {
        self.0.execute_batch(sql).map_err(driver)
    }
}

/// litepool's customizer on the application's own `r2d2::Pool<SqliteConnectionManager>`: it
/// applies the profile to each new connection and refuses one that does not read back as asked.
#[derive(Debug)]
pub struct Pragmas(pub PragmaCustomizer);

impl r2d2::CustomizeConnection<rusqlite::Connection, rusqlite::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut rusqlite::Connection) -> Result<(), rusqlite::Error> {
        let result = self.0.customize(&mut Sqlite(conn));
        result.map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
    }
}

/// The application's pool of `db` (from litepool's settings), its profile on every connection.
pub fn pool(db: &DatabaseSettings) -> Result<r2d2::Pool<SqliteConnectionManager>, r2d2::Error> {
    let customizer = PragmaCustomizer::new(db.name.clone(), db.profile.clone());
    r2d2::Pool::builder()
        .max_size(db.pool.max_size)
        .connection_customizer(Box::new(Pragmas(customizer)))
        .build(SqliteConnectionManager::file(&db.path))
}

/// What `litepool check` reports, for the application's own pool: all its connections checked
/// out at once, every pragma of `profile` read back on each.
pub fn check(
    pool: &r2d2::Pool<SqliteConnectionManager>,
    profile: &Profile,
    database: &str,
) -> Result<ConnectionsReport, r2d2::Error> {
    let mut conns = (0..pool.max_size())
        .map(|_| pool.get())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(check_connections(
        profile,
        database,
        conns.iter_mut().map(|c| Sqlite(c)),
    ))
}
// README: end
