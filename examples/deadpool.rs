//! deadpool-sqlite with litepool's verified profiles, in tokio: every new connection gets the
//! profile (inside `interact`) and is read back. Run:
//! `cargo run --example deadpool --features deadpool`.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let settings = litepool::Settings::from_toml(&format!(
        r#"
        [profiles.app]
        busy_timeout = "5s"
        journal_mode = "wal"
        synchronous = "normal"
        cache_size = "16MiB"

        [databases.jobs]
        path = "{}/jobs.db"
        profile = "app"
        [databases.jobs.writer]
        [databases.jobs.readers]
        max_size = 4
        "#,
        dir.path().display()
    ))?;
    let pools = litepool::deadpool::Pools::new(&settings)?;
    let writer = pools.writer("jobs").await?;
    writer
        .interact(|c| {
            c.execute_batch(
                "CREATE TABLE jobs(id INTEGER PRIMARY KEY, status TEXT);
                 INSERT INTO jobs(status) VALUES ('new');",
            )
        })
        .await??;
    drop(writer);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let pools = pools.clone();
        tasks.push(tokio::spawn(async move {
            let reader = pools.reader("jobs").await?;
            let cache: i64 = reader
                .interact(|c| c.query_row("PRAGMA cache_size", [], |r| r.get(0)))
                .await
                .map_err(|e| e.to_string())??;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(cache)
        }));
    }
    for t in tasks {
        println!(
            "a reader's cache_size: {}",
            t.await?.map_err(|e| e.to_string())?
        );
    }
    Ok(())
}
