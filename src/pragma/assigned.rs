//! What SQLite takes from the text of a pragma assignment (`PRAGMA name = text`), in the form it
//! reads the pragma back: how the guard tells that application code restates its profile.
//!
//! The names parse through each pragma's own `FromStr`; on top of them come the spellings
//! SQLite also takes (<https://sqlite.org/pragma.html>): booleans as `on`/`off`/`yes`/`no`/
//! `true`/`false` or a number, enumerated values by number, integers with a sign. A spelling
//! SQLite reads in a way that is easy to misjudge (a prefix of a journal mode, a negative
//! number for a boolean, hexadecimal) gives `None`: litepool cannot tell, and refuses it.

use std::str::FromStr;

use crate::connection::Raw;
use crate::pragma::size::MMAP_SIZE_CAP;
use crate::pragma::{AutoVacuum, JournalMode, LockingMode, SecureDelete, Synchronous, TempStore};

/// The value SQLite stores for `PRAGMA <pragma> = <text>`, as it reads it back (the `expect` of
/// a profile's setting), or `None` when the pragma is not one a profile sets or litepool cannot
/// tell what SQLite takes from `text`.
pub(crate) fn as_sqlite_takes(pragma: &str, text: &str) -> Option<Raw> {
    // SQLite trims nothing: `' on '` is not a boolean word to it (it reads off), `' -8000'` is
    // not a number (it reads 0). Such text never restates a profile.
    if text.is_empty()
        || text
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return None;
    }
    let t = text;
    let name = pragma.to_ascii_lowercase();
    let code = match name.as_str() {
        "journal_mode" => return parsed::<JournalMode>(t).map(|m| Raw::Text(m.to_string())),
        "locking_mode" => return parsed::<LockingMode>(t).map(|m| Raw::Text(m.to_string())),
        "synchronous" => parsed::<Synchronous>(t)
            .map(Synchronous::code)
            .or_else(|| boolean(t).filter(|_| !digits(t)))
            .or_else(|| number(t).filter(|n| (0..=3).contains(n))),
        "temp_store" => parsed::<TempStore>(t)
            .map(TempStore::code)
            .or_else(|| number(t).filter(|n| (0..=2).contains(n))),
        "auto_vacuum" => parsed::<AutoVacuum>(t)
            .map(AutoVacuum::code)
            .or_else(|| number(t).filter(|n| (0..=2).contains(n))),
        "secure_delete" => parsed::<SecureDelete>(t)
            .map(SecureDelete::code)
            .or_else(|| boolean(t)),
        "foreign_keys" | "trusted_schema" | "cell_size_check" | "query_only" => boolean(t),
        // SQLite caps a larger size silently (`PRAGMA mmap_size = 17179869184` gives the cap); a
        // negative one means the compile-time default.
        "mmap_size" => signed(t)
            .or_else(|| hex(t))
            .filter(|n| *n >= 0)
            .map(|n| n.min(MMAP_SIZE_CAP as i64)),
        // Read as a 32-bit integer (`sqlite3Atoi`, `sqlite3GetInt32`: a larger one becomes 0).
        "busy_timeout" | "cache_size" | "wal_autocheckpoint" | "page_size" => {
            signed(t).filter(|n| i32::try_from(*n).is_ok())
        }
        // Read as a 64-bit integer, decimal or hexadecimal (`sqlite3DecOrHexToI64`).
        "journal_size_limit" | "analysis_limit" => signed(t).or_else(|| hex(t)),
        _ => None,
    };
    code.map(Raw::Int)
}

fn parsed<T: FromStr>(t: &str) -> Option<T> {
    t.parse().ok()
}

fn digits(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
}

/// A number of digits only, as SQLite reads an enumerated pragma or a boolean by number: a
/// 32-bit integer (`sqlite3Atoi`; a larger one becomes 0, so it is not taken here).
fn number(t: &str) -> Option<i64> {
    digits(t)
        .then(|| t.parse::<i32>().ok().map(i64::from))
        .flatten()
}

/// An integer with an optional sign (`-8000`, as SQLite hands the authorizer `= -8000`).
fn signed(t: &str) -> Option<i64> {
    let unsigned = t.strip_prefix(['-', '+']).unwrap_or(t);
    digits(unsigned).then(|| t.parse().ok()).flatten()
}

/// `0x` and up to 16 hexadecimal digits, as `sqlite3DecOrHexToI64` reads them (two's
/// complement: `0xffffffffffffffff` is -1).
fn hex(t: &str) -> Option<i64> {
    let h = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X"))?;
    (!h.is_empty() && h.len() <= 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(h, 16).ok().map(|v| v as i64))
        .flatten()
}

/// A boolean as SQLite reads one: a word, or digits (non-zero is on).
fn boolean(t: &str) -> Option<i64> {
    const ON: [&str; 3] = ["on", "yes", "true"];
    const OFF: [&str; 3] = ["off", "no", "false"];
    if ON.iter().any(|w| w.eq_ignore_ascii_case(t)) {
        Some(1)
    } else if OFF.iter().any(|w| w.eq_ignore_ascii_case(t)) {
        Some(0)
    } else {
        number(t).map(|n| i64::from(n != 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn takes(pragma: &str, text: &str) -> Option<Raw> {
        as_sqlite_takes(pragma, text)
    }

    #[test]
    fn equivalent_spellings_are_one_value() {
        for on in ["ON", "on", "1", "true", "YES", "2"] {
            assert_eq!(takes("foreign_keys", on), Some(Raw::Int(1)), "{on}");
        }
        for off in ["OFF", "0", "false", "no"] {
            assert_eq!(takes("FOREIGN_KEYS", off), Some(Raw::Int(0)), "{off}");
        }
        for normal in ["NORMAL", "normal", "1", "on"] {
            assert_eq!(takes("synchronous", normal), Some(Raw::Int(1)), "{normal}");
        }
        assert_eq!(takes("synchronous", "extra"), Some(Raw::Int(3)));
        assert_eq!(takes("temp_store", "MEMORY"), takes("temp_store", "2"));
        assert_eq!(takes("auto_vacuum", "full"), Some(Raw::Int(1)));
        assert_eq!(
            takes("auto_vacuum", "INCREMENTAL"),
            takes("auto_vacuum", "2")
        );
        assert_eq!(takes("secure_delete", "fast"), Some(Raw::Int(2)));
        assert_eq!(takes("secure_delete", "yes"), Some(Raw::Int(1)));
        assert_eq!(takes("journal_mode", "WAL"), Some(Raw::Text("wal".into())));
        assert_eq!(
            takes("locking_mode", "Normal"),
            Some(Raw::Text("normal".into()))
        );
        assert_eq!(takes("cache_size", "-8000"), Some(Raw::Int(-8000)));
        assert_eq!(
            takes("mmap_size", "17179869184"),
            Some(Raw::Int(2_147_418_112))
        );
        assert_eq!(takes("mmap_size", "268435456"), Some(Raw::Int(268_435_456)));
        assert_eq!(takes("journal_size_limit", "0x8000"), Some(Raw::Int(32768)));
        assert_eq!(
            takes("mmap_size", "0X10000000"),
            Some(Raw::Int(268_435_456))
        );
    }

    #[test]
    fn spellings_litepool_cannot_judge_are_none() {
        for (pragma, text) in [
            ("journal_mode", "w"),
            ("foreign_keys", "-1"),
            ("foreign_keys", "maybe"),
            ("synchronous", "4"),
            ("temp_store", "3"),
            ("cache_size", "0x10"),
            ("cache_size", "8MiB"),
            ("mmap_size", "-1"),
            ("recursive_triggers", "1"),
            // SQLite trims nothing and reads 32-bit numbers: these are off or 0 to it.
            ("synchronous", " full "),
            ("synchronous", "full "),
            ("foreign_keys", " on "),
            ("foreign_keys", "yes\t"),
            ("foreign_keys", "4294967296"),
            ("secure_delete", "4294967296"),
            ("cache_size", " -8000"),
            ("cache_size", "4294967296"),
            ("temp_store", " 2"),
            ("busy_timeout", " 5000"),
            ("journal_mode", ""),
        ] {
            assert_eq!(takes(pragma, text), None, "{pragma} = {text}");
        }
    }
}
