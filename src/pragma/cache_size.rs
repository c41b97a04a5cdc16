//! `cache_size`: <https://sqlite.org/pragma.html#pragma_cache_size>.

use std::fmt;
use std::str::FromStr;

use crate::error::ParseValueError;
use crate::pragma::ByteSize;

const ALLOWED: &str = "a size of at least 1KiB in whole KiB such as \"64MiB\", or { pages = N }";

/// The page cache of one connection. SQLite's default is `-2000` (2000 KiB).
///
/// SQLite's own sign convention (negative = KiB, positive = pages) caused the original
/// `cache_size = -500` mistake (500 KiB, not 500 MB), so litepool never takes a bare integer:
/// write a size (`"500MiB"`, converted to `-512000`) or `{ pages = 2000 }`.
///
/// The cache is **per connection**: a pool of 10 connections may hold ten times this much.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheSize {
    /// A size in bytes, a whole number of KiB.
    Bytes(ByteSize),
    /// A number of pages.
    Pages(u32),
}

impl CacheSize {
    /// The value given to `PRAGMA cache_size` and read back: negative KiB, or positive pages.
    pub fn pragma_value(self) -> i64 {
        match self {
            CacheSize::Bytes(b) => -((b.0 / 1024) as i64),
            CacheSize::Pages(p) => p.into(),
        }
    }

    /// The most memory one connection's cache can take, given the file's page size.
    pub fn bytes_per_connection(self, page_size: u32) -> u64 {
        match self {
            CacheSize::Bytes(b) => b.0,
            CacheSize::Pages(p) => u64::from(p) * u64::from(page_size),
        }
    }
}

impl FromStr for CacheSize {
    type Err = ParseValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseValueError::new("cache_size", s, ALLOWED);
        let t = s.trim();
        if let Some(n) = t.strip_suffix("pages").or_else(|| t.strip_suffix("page")) {
            let n: u32 = n.trim().parse().map_err(|_| err())?;
            if n == 0 || n > i32::MAX as u32 {
                return Err(err());
            }
            return Ok(CacheSize::Pages(n));
        }
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
            // A bare integer is SQLite's raw convention: refuse it, it is the original mistake.
            return Err(ParseValueError::new(
                "cache_size",
                s,
                format!("{ALLOWED}; a bare number is ambiguous (sqlite reads negative as KiB, positive as pages)"),
            ));
        }
        let size = t.parse::<ByteSize>().map_err(|_| err())?;
        if size.0 < 1024 || size.0 % 1024 != 0 || size.0 / 1024 > i32::MAX as u64 {
            return Err(err());
        }
        Ok(CacheSize::Bytes(size))
    }
}

impl fmt::Display for CacheSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheSize::Bytes(b) => b.fmt(f),
            CacheSize::Pages(p) => write!(f, "{p} pages"),
        }
    }
}

impl serde::Serialize for CacheSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CacheSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = CacheSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(ALLOWED)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CacheSize, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<CacheSize, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<CacheSize, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<CacheSize, A::Error> {
                use serde::de::Error;
                let mut pages = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "pages" {
                        return Err(A::Error::unknown_field(&key, &["pages"]));
                    }
                    let n: i64 = map.next_value()?;
                    pages = Some(format!("{n} pages"));
                }
                pages
                    .ok_or_else(|| A::Error::missing_field("pages"))?
                    .parse()
                    .map_err(A::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_hundred_mib_is_minus_512000() {
        let c: CacheSize = "500MiB".parse().unwrap();
        assert_eq!(c.pragma_value(), -512_000);
        assert_eq!(c.bytes_per_connection(4096), 524_288_000);
    }

    #[test]
    fn pages_are_positive_and_round_trip() {
        let c: CacheSize = "2000 pages".parse().unwrap();
        assert_eq!(c.pragma_value(), 2000);
        assert_eq!(c.bytes_per_connection(4096), 8_192_000);
        assert_eq!(c.to_string().parse::<CacheSize>().unwrap(), c);
    }

    #[test]
    fn bare_numbers_and_partial_kib_are_refused() {
        let e = "-500".parse::<CacheSize>().unwrap_err().to_string();
        assert!(e.contains("ambiguous"), "{e}");
        assert!("500".parse::<CacheSize>().is_err());
        assert!("1500B".parse::<CacheSize>().is_err());
        assert!("0 pages".parse::<CacheSize>().is_err());
        assert!("100B".parse::<CacheSize>().is_err());
    }
}
