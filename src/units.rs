//! Numbers for people, in one place: durations and byte counts as the statistics, the budget,
//! the lint and the command line print them.

use std::time::Duration;

/// A duration for people: `0.4µs`, `81.9µs`, `3.15ms`.
pub fn duration(d: Duration) -> String {
    let us = d.as_nanos() as f64 / 1000.0;
    if us >= 1000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{us:.1}µs")
    }
}

/// Bytes for people: `448.0 MiB`, `1.2 KiB`, `12 B`.
pub fn bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A time as RFC 3339 in UTC with milliseconds (`"2026-12-02T03:44:05.123Z"`), for JSON.
pub fn rfc3339<S: serde::Serializer>(t: &std::time::SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}
