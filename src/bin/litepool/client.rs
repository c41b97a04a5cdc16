//! `litepool stats --socket` and `litepool reload --socket`: a client of a running
//! application's admin socket (`litepool::admin`, whose module docs describe the protocol).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long a request may take before the client gives up.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `command` and returns the answer's lines (without the final `.`, dot-stuffing undone).
pub fn request(path: &Path, command: &str) -> anyhow::Result<String> {
    let stream = UnixStream::connect(path).with_context(|| {
        format!(
            "admin socket {}: cannot connect (is the application running and serving it?)",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    (&stream)
        .write_all(format!("{command}\n").as_bytes())
        .with_context(|| format!("admin socket {}: sending {command:?}", path.display()))?;
    let mut out = String::new();
    for line in BufReader::new(&stream).lines() {
        let line =
            line.with_context(|| format!("admin socket {}: reading the answer", path.display()))?;
        if line == "." {
            return Ok(out);
        }
        out.push_str(line.strip_prefix('.').unwrap_or(&line));
        out.push('\n');
    }
    bail!(
        "admin socket {}: the connection closed before the answer ended (is it a litepool admin socket?)",
        path.display()
    )
}

/// An answer that is one `error: …` line becomes an error.
fn checked(path: &Path, answer: String) -> anyhow::Result<String> {
    match answer.strip_prefix("error: ") {
        Some(e) => bail!("admin socket {}: {}", path.display(), e.trim_end()),
        None => Ok(answer),
    }
}

/// `stats --socket`: the table, the JSON document or the Prometheus text.
pub fn stats(path: &Path, command: &str) -> anyhow::Result<ExitCode> {
    let answer = checked(path, request(path, command)?)?;
    std::io::stdout().lock().write_all(answer.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `stats --socket --watch`: the pool table redrawn every `interval`, with rates per second
/// since the previous one, until interrupted.
pub fn watch(path: &Path, interval: Duration) -> anyhow::Result<ExitCode> {
    let mut previous: Option<(serde_json::Value, Instant)> = None;
    loop {
        let text = checked(path, request(path, "stats json")?)?;
        let now = Instant::now();
        let doc: serde_json::Value = serde_json::from_str(&text).with_context(|| {
            format!(
                "admin socket {}: the statistics are not JSON",
                path.display()
            )
        })?;
        let table = litepool::admin::table(
            &doc,
            previous
                .as_ref()
                .map(|(d, at)| (d, now.duration_since(*at))),
        );
        let mut out = std::io::stdout().lock();
        // Clear the screen and go home, then the table.
        write!(
            out,
            "\x1b[2J\x1b[H{} every {}  (Ctrl-C to stop)\n\n{table}",
            path.display(),
            humantime::format_duration(interval)
        )?;
        out.flush()?;
        previous = Some((doc, now));
        std::thread::sleep(interval);
    }
}

/// `reload --socket`: the changes, or the refusal (exit 1).
pub fn reload(path: &Path) -> anyhow::Result<ExitCode> {
    let answer = request(path, "reload")?;
    if let Some(e) = answer.strip_prefix("error: ") {
        eprintln!(
            "litepool: admin socket {}: {}",
            path.display(),
            e.trim_end()
        );
        return Ok(ExitCode::from(1));
    }
    let body = answer.strip_prefix("ok\n").unwrap_or(&answer);
    std::io::stdout().lock().write_all(body.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `--watch` INTERVAL: 100ms to 1h.
pub fn interval(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{e}"))?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
        return Err(format!("{text} is not in 100ms..=1h"));
    }
    Ok(d)
}
