//! Durations: `"5s"`, `"250ms"`, `"1m 30s"`, parsed with [humantime](https://docs.rs/humantime).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::ParseValueError;

fn parse(s: &str, what: &'static str) -> Result<Duration, ParseValueError> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        ParseValueError::new(
            what,
            s,
            format!("a duration such as \"5s\" or \"250ms\" ({e})"),
        )
    })
}

/// `busy_timeout`: <https://sqlite.org/pragma.html#pragma_busy_timeout>. How long a connection
/// retries when the database is locked before failing with SQLITE_BUSY. SQLite's default is 0
/// (fail at once); rusqlite sets 5000ms on every connection it opens. Whole milliseconds,
/// at most 2147483647ms. Applied first, so every later pragma waits for locks too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BusyTimeout(Duration);

impl BusyTimeout {
    /// Milliseconds, as SQLite reads it back.
    pub fn millis(self) -> i64 {
        self.0.as_millis() as i64
    }

    /// The duration.
    pub fn duration(self) -> Duration {
        self.0
    }
}

impl FromStr for BusyTimeout {
    type Err = ParseValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let d = parse(s, "busy_timeout")?;
        if d.subsec_nanos() % 1_000_000 != 0 || d.as_millis() > i32::MAX as u128 {
            return Err(ParseValueError::new(
                "busy_timeout",
                s,
                "whole milliseconds from 0 to 2147483647ms (about 24 days)",
            ));
        }
        Ok(BusyTimeout(d))
    }
}

impl fmt::Display for BusyTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0ms");
        }
        humantime::format_duration(self.0).fmt(f)
    }
}

crate::pragma::deserialize_from_str!(BusyTimeout, "a duration such as \"5s\"");

/// A positive duration, e.g. r2d2's `connection_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeout(pub Duration);

impl FromStr for Timeout {
    type Err = ParseValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let d = parse(s, "duration")?;
        if d.is_zero() {
            return Err(ParseValueError::new("duration", s, "a duration above zero"));
        }
        Ok(Timeout(d))
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        humantime::format_duration(self.0).fmt(f)
    }
}

crate::pragma::deserialize_from_str!(Timeout, "a duration such as \"30s\"");

/// A positive duration, or `"off"` for none (r2d2's `idle_timeout` and `max_lifetime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lifetime(pub Option<Duration>);

impl FromStr for Lifetime {
    type Err = ParseValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("off") {
            return Ok(Lifetime(None));
        }
        s.parse::<Timeout>()
            .map(|t| Lifetime(Some(t.0)))
            .map_err(|e| ParseValueError::new("duration", s, format!("\"off\" or {}", e.allowed)))
    }
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("off"),
            Some(d) => humantime::format_duration(d).fmt(f),
        }
    }
}

crate::pragma::deserialize_from_str!(Lifetime, "a duration such as \"10m\", or \"off\"");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_timeout_is_whole_milliseconds() {
        assert_eq!("5s".parse::<BusyTimeout>().unwrap().millis(), 5000);
        assert_eq!("250ms".parse::<BusyTimeout>().unwrap().millis(), 250);
        assert_eq!("0s".parse::<BusyTimeout>().unwrap().to_string(), "0ms");
        assert!("1500us".parse::<BusyTimeout>().is_err());
        assert!("30days".parse::<BusyTimeout>().is_err());
        let e = "5 parsecs".parse::<BusyTimeout>().unwrap_err().to_string();
        assert!(
            e.starts_with("invalid busy_timeout \"5 parsecs\": expected a duration"),
            "{e}"
        );
    }

    #[test]
    fn durations_round_trip() {
        for s in ["5s", "250ms", "1m 30s", "2h"] {
            let t: BusyTimeout = s.parse().unwrap();
            assert_eq!(t.to_string().parse::<BusyTimeout>().unwrap(), t);
        }
        assert_eq!("off".parse::<Lifetime>().unwrap(), Lifetime(None));
        assert_eq!("10m".parse::<Lifetime>().unwrap().to_string(), "10m");
        assert!("0s".parse::<Timeout>().is_err());
    }
}
