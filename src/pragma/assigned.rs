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
    let t = text.trim();
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
            .filter(|n| *n >= 0)
            .map(|n| n.min(MMAP_SIZE_CAP as i64)),
        "busy_timeout" | "cache_size" | "wal_autocheckpoint" | "journal_size_limit"
        | "analysis_limit" | "page_size" => signed(t),
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

/// A number of digits only, as SQLite reads an enumerated pragma by number.
fn number(t: &str) -> Option<i64> {
    digits(t).then(|| t.parse().ok()).flatten()
}

/// An integer with an optional sign (`-8000`, as SQLite hands the authorizer `= -8000`).
fn signed(t: &str) -> Option<i64> {
    let unsigned = t.strip_prefix(['-', '+']).unwrap_or(t);
    digits(unsigned).then(|| t.parse().ok()).flatten()
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
        ] {
            assert_eq!(takes(pragma, text), None, "{pragma} = {text}");
        }
    }
}
