//! Pool statistics through the `metrics` facade, under OpenTelemetry's names. A real
//! application installs an exporter (Prometheus, OTLP); this example uses the debugging
//! recorder and prints what it received. Run: `cargo run --example metrics --features metrics`.

use metrics_util::debugging::DebuggingRecorder;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // Install the recorder before building the pools: they register their metrics then.
    metrics::set_global_recorder(recorder)?;
    let dir = tempfile::tempdir()?;
    let settings = litepool::Settings::from_toml(&format!(
        "[databases.jobs]\npath = \"{}/jobs.db\"\n[databases.jobs.pool]\nmax_size = 2\n",
        dir.path().display()
    ))?;
    let pools = litepool::Pools::new(&settings)?;
    let jobs = pools.handle("jobs")?;
    for _ in 0..10 {
        jobs.get()?.execute_batch("SELECT 1")?;
    }
    pools.publish_metrics();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        println!("{} {{{}}} {:?}", key.key().name(), labels.join(", "), value);
    }
    Ok(())
}
