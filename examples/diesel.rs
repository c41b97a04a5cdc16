//! diesel with litepool's verified profiles: named pools from TOML, a writer and readers, and
//! `BEGIN IMMEDIATE` from the profile. Run: `cargo run --example diesel --features diesel`.

use diesel::RunQueryDsl;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let settings = litepool::Settings::from_toml(&format!(
        r#"
        [profiles.app]
        busy_timeout = "5s"
        journal_mode = "wal"
        synchronous = "normal"
        foreign_keys = true
        transaction_behavior = "immediate"

        [databases.jobs]
        path = "{}/jobs.db"
        profile = "app"
        [databases.jobs.writer]
        [databases.jobs.readers]
        max_size = 4
        "#,
        dir.path().display()
    ))?;
    // Checks the file, switches it to WAL once, verifies every pragma on every connection.
    let pools = litepool::diesel::Pools::new(&settings)?;
    diesel::sql_query("CREATE TABLE jobs(id INTEGER PRIMARY KEY, status TEXT NOT NULL)")
        .execute(&mut pools.writer("jobs")?)?;
    // On the writer, in BEGIN IMMEDIATE (the split's writer default).
    let inserted = pools.transaction("jobs", |conn| {
        diesel::sql_query("INSERT INTO jobs(status) VALUES ('new'), ('new')").execute(conn)
    })??;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let Count { n } = diesel::sql_query("SELECT count(*) AS n FROM jobs")
        .get_result::<Count>(&mut pools.reader("jobs")?)?;
    println!("inserted {inserted}, the readers see {n}");
    println!("{:?}", pools.stats_for("jobs.readers")?);
    Ok(())
}
