//! `litepool stats --socket` and `litepool reload --socket`: a client of a running
//! application's admin socket (`litepool::admin`, whose module docs describe the protocol).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long a statistics request may take in all before the client gives up: the application
/// answers from a snapshot.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How long the client waits for a reload's answer in all. The application may take longer (it
/// builds and verifies every changed pool and waits for a split database's writer, each up to
/// its `connection_timeout`); then the client says it does not know the outcome, and the
/// application finishes the reload regardless.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(25);

/// Sends `command` and returns the answer's lines (without the final `.`, dot-stuffing undone),
/// within [`TIMEOUT`].
pub fn request(path: &Path, command: &str) -> anyhow::Result<String> {
    request_within(path, command, TIMEOUT)
}

/// [`request`] within `limit` in all (a server that trickles its answer is cut off too).
fn request_within(path: &Path, command: &str, limit: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + limit;
    let stream = UnixStream::connect(path).with_context(|| {
        format!(
            "admin socket {}: cannot connect (is the application running and serving it?)",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(limit))?;
    stream.set_write_timeout(Some(limit))?;
    (&stream)
        .write_all(format!("{command}\n").as_bytes())
        .with_context(|| format!("admin socket {}: sending {command:?}", path.display()))?;
    let mut out = String::new();
    for line in BufReader::new(&stream).lines() {
        let line = line.with_context(|| {
            format!(
                "admin socket {}: reading the answer to {command:?} (no answer within {}?)",
                path.display(),
                humantime::format_duration(limit)
            )
        })?;
        if Instant::now() > deadline {
            bail!(
                "admin socket {}: the answer to {command:?} did not end within {}",
                path.display(),
                humantime::format_duration(limit)
            );
        }
        if let Some(left) = deadline.checked_duration_since(Instant::now()) {
            stream.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        }
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

/// `stats --socket`: the table, the JSON document or the Prometheus text, each checked to be
/// what it says before it is printed (a socket that answers something else is an error).
pub fn stats(path: &Path, command: &str) -> anyhow::Result<ExitCode> {
    let answer = checked(path, request(path, command)?)?;
    let wrong = |what: &str| {
        anyhow::anyhow!(
            "admin socket {}: the answer to {command:?} is not {what} (is it a litepool admin socket?)",
            path.display()
        )
    };
    match command {
        "stats json" => {
            serde_json::from_str::<serde_json::Value>(&answer)
                .ok()
                .filter(|v| v.get("pools").is_some())
                .ok_or_else(|| wrong("litepool's statistics as JSON"))?;
        }
        "stats prometheus" => {
            let sample = |l: &str| {
                l.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && l.rsplit_once(' ')
                        .is_some_and(|(_, v)| v.parse::<f64>().is_ok())
            };
            if !answer
                .lines()
                .all(|l| l.starts_with("# HELP ") || l.starts_with("# TYPE ") || sample(l))
                || !answer.starts_with("# HELP ")
            {
                return Err(wrong("the Prometheus text format"));
            }
        }
        _ => {}
    }
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
    let answer = request_within(path, "reload", RELOAD_TIMEOUT).with_context(|| {
        format!(
            "the reload's outcome is unknown: the application goes on with it; see `litepool stats --socket {}`",
            path.display()
        )
    })?;
    if let Some(e) = answer.strip_prefix("error: ") {
        eprintln!(
            "litepool: admin socket {}: {}",
            path.display(),
            e.trim_end()
        );
        return Ok(ExitCode::from(1));
    }
    let Some(body) = answer.strip_prefix("ok\n") else {
        bail!(
            "admin socket {}: the answer to \"reload\" is neither \"ok\" nor \"error:\" (is it a litepool admin socket?); whether it reloaded is unknown",
            path.display()
        );
    };
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
