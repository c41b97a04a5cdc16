//! Byte sizes: `"500MiB"`, `"64KB"`, `4096`. Parsed exactly, converted once, here.
//!
//! Decimal and binary units are kept apart: `KB` = 10^3, `KiB` = 2^10, `MB` = 10^6,
//! `MiB` = 2^20, `GB` = 10^9, `GiB` = 2^30, `TB`/`TiB` likewise. Units are case-insensitive,
//! a space between number and unit is allowed, and a bare integer is bytes. Fractions are
//! refused so that every size is an exact number of bytes.

use std::fmt;
use std::str::FromStr;

use crate::error::ParseValueError;

const UNITS: &[(&str, u64)] = &[
    ("TiB", 1 << 40),
    ("TB", 1_000_000_000_000),
    ("GiB", 1 << 30),
    ("GB", 1_000_000_000),
    ("MiB", 1 << 20),
    ("MB", 1_000_000),
    ("KiB", 1 << 10),
    ("KB", 1_000),
    ("B", 1),
];

const SIZE_ALLOWED: &str =
    "a whole number of bytes with an optional unit B, KB, KiB, MB, MiB, GB, GiB, TB or TiB (e.g. \"500MiB\")";

/// A number of bytes, parsed from `"500MiB"` and printed back in the largest exact unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The number of bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }

    fn parse_as(s: &str, what: &'static str) -> Result<Self, ParseValueError> {
        let err = || ParseValueError::new(what, s, SIZE_ALLOWED);
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = (&t[..split], t[split..].trim_start());
        if digits.is_empty() {
            return Err(err());
        }
        let n: u64 = digits.parse().map_err(|_| err())?;
        let mult = if unit.is_empty() {
            1
        } else {
            UNITS
                .iter()
                .find(|(u, _)| u.eq_ignore_ascii_case(unit))
                .map(|&(_, m)| m)
                .ok_or_else(err)?
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| ParseValueError::new(what, s, "a size below 16 EiB"))
    }
}

impl FromStr for ByteSize {
    type Err = ParseValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_as(s, "size")
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0B");
        }
        let (unit, mult) = UNITS
            .iter()
            .find(|(_, m)| self.0 % m == 0)
            .copied()
            .unwrap_or(("B", 1));
        write!(f, "{}{}", self.0 / mult, unit)
    }
}

crate::pragma::deserialize_from_str!(ByteSize, "a size such as \"500MiB\"");

/// The largest `mmap_size` SQLite accepts (`SQLITE_MAX_MMAP_SIZE`); larger values are silently
/// capped by SQLite, so litepool refuses them instead.
pub const MMAP_SIZE_CAP: u64 = 2_147_418_112;

/// `mmap_size`: <https://sqlite.org/pragma.html#pragma_mmap_size>. Bytes of the file to map into
/// memory; `0` disables memory-mapped I/O (SQLite's default). At most 2147418112 (`SQLITE_MAX_MMAP_SIZE`).
///
/// Mapped pages are shared with the OS page cache, not counted in `cache_size`; an I/O error on
/// a mapped page raises SIGBUS rather than an SQLite error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MmapSize(ByteSize);

impl MmapSize {
    /// The number of bytes.
    pub fn bytes(self) -> u64 {
        self.0 .0
    }
}

impl FromStr for MmapSize {
    type Err = ParseValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let size = ByteSize::parse_as(s, "mmap_size")?;
        if size.0 > MMAP_SIZE_CAP {
            return Err(ParseValueError::new(
                "mmap_size",
                s,
                format!(
                    "at most {MMAP_SIZE_CAP} bytes (sqlite's cap, just under 2GiB); 0 disables"
                ),
            ));
        }
        Ok(MmapSize(size))
    }
}

impl fmt::Display for MmapSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

crate::pragma::deserialize_from_str!(MmapSize, "a size such as \"256MiB\"");

/// `page_size`: <https://sqlite.org/pragma.html#pragma_page_size>. A power of two from 512 to
/// 65536 bytes; SQLite's default is 4096. Stored in the file: applied only when litepool creates
/// the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageSize(u32);

impl PageSize {
    /// The number of bytes.
    pub fn bytes(self) -> u32 {
        self.0
    }
}

impl FromStr for PageSize {
    type Err = ParseValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let size = ByteSize::parse_as(s, "page_size")?.0;
        if !(512..=65536).contains(&size) || !size.is_power_of_two() {
            return Err(ParseValueError::new(
                "page_size",
                s,
                "a power of two from 512 to 65536 bytes",
            ));
        }
        Ok(PageSize(size as u32))
    }
}

impl fmt::Display for PageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        ByteSize(self.0.into()).fmt(f)
    }
}

crate::pragma::deserialize_from_str!(PageSize, "a page size such as \"4KiB\"");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_and_binary_units_are_exact_and_distinct() {
        assert_eq!("500MiB".parse::<ByteSize>().unwrap().0, 524_288_000);
        assert_eq!("500MB".parse::<ByteSize>().unwrap().0, 500_000_000);
        assert_eq!("1 KiB".parse::<ByteSize>().unwrap().0, 1024);
        assert_eq!("1kb".parse::<ByteSize>().unwrap().0, 1000);
        assert_eq!("2GiB".parse::<ByteSize>().unwrap().0, 2 << 30);
        assert_eq!("7".parse::<ByteSize>().unwrap().0, 7);
        assert_eq!("0".parse::<ByteSize>().unwrap().0, 0);
    }

    #[test]
    fn display_round_trips_in_the_largest_exact_unit() {
        for (text, shown) in [
            ("524288000", "500MiB"),
            ("1000000", "1MB"),
            ("2000KiB", "2000KiB"),
            ("1025", "1025B"),
            ("0", "0B"),
        ] {
            let size: ByteSize = text.parse().unwrap();
            assert_eq!(size.to_string(), shown);
            assert_eq!(shown.parse::<ByteSize>().unwrap(), size);
        }
    }

    #[test]
    fn bad_sizes_are_refused_with_the_value() {
        for bad in [
            "",
            "MiB",
            "1.5GiB",
            "-1",
            "10 MiBs",
            "5 mb b",
            "99999999999999999999",
        ] {
            let e = bad.parse::<ByteSize>().unwrap_err();
            assert_eq!(e.value, bad);
        }
        let e = "20000000TiB".parse::<ByteSize>().unwrap_err();
        assert!(e.to_string().contains("below 16 EiB"), "{e}");
        assert!("1.5GiB"
            .parse::<ByteSize>()
            .unwrap_err()
            .to_string()
            .contains("B, KB, KiB, MB, MiB"));
    }

    #[test]
    fn mmap_size_over_sqlite_cap_is_an_error_not_a_clamp() {
        assert_eq!(
            "2147418112".parse::<MmapSize>().unwrap().bytes(),
            MMAP_SIZE_CAP
        );
        let e = "2GiB".parse::<MmapSize>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid mmap_size \"2GiB\": expected at most 2147418112 bytes (sqlite's cap, just under 2GiB); 0 disables"
        );
    }

    #[test]
    fn page_size_must_be_a_power_of_two_in_range() {
        assert_eq!("4KiB".parse::<PageSize>().unwrap().bytes(), 4096);
        assert_eq!("65536".parse::<PageSize>().unwrap().bytes(), 65536);
        for bad in ["256", "3000", "128KiB"] {
            assert!(bad.parse::<PageSize>().is_err(), "{bad}");
        }
    }
}
