//! Typed pragma values: one file per enumerated pragma, plus sizes and durations.
//!
//! Every value parses with a case-insensitive [`FromStr`](std::str::FromStr), prints with
//! [`Display`](std::fmt::Display) and round-trips. TOML, environment variables and the CLI all
//! parse through the same `FromStr`, so an error reads the same wherever the value came from.

#[cfg(feature = "sqlite")]
mod assigned;
mod auto_vacuum;
mod cache_size;
mod duration;
mod journal_mode;
mod locking_mode;
mod secure_delete;
mod size;
mod synchronous;
mod temp_store;
mod transaction;

#[cfg(feature = "sqlite")]
pub(crate) use assigned::as_sqlite_takes;
pub use auto_vacuum::AutoVacuum;
pub use cache_size::CacheSize;
pub use duration::{BusyTimeout, Lifetime, Timeout};
pub use journal_mode::JournalMode;
pub use locking_mode::LockingMode;
pub use secure_delete::SecureDelete;
pub use size::{ByteSize, MmapSize, PageSize};
pub use synchronous::Synchronous;
pub use temp_store::TempStore;
pub use transaction::TransactionMode;

/// Implements `Deserialize` for a type through its `FromStr`, accepting strings, integers and
/// booleans (environment variables arrive as any of these), so every source gives the same error.
macro_rules! deserialize_from_str {
    ($ty:ty, $expecting:expr) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(E::custom)
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$ty, E> {
                        self.visit_str(&v.to_string())
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$ty, E> {
                        self.visit_str(&v.to_string())
                    }
                    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<$ty, E> {
                        self.visit_str(if v { "true" } else { "false" })
                    }
                }
                d.deserialize_any(V)
            }
        }
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}
pub(crate) use deserialize_from_str;

/// Declares an enumerated pragma value: the enum, its names, the integer SQLite reports,
/// a case-insensitive `FromStr`, `Display` and serde through them.
macro_rules! pragma_enum {
    (
        $(#[$meta:meta])*
        $name:ident, what = $what:literal,
        { $( $(#[$vmeta:meta])* $variant:ident = ($text:literal $(| $alias:literal)*, $code:expr) ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in SQLite's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name SQLite uses, lowercase.
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $text, )+ }
            }

            /// The integer SQLite reports when the pragma is read back.
            pub fn code(self) -> i64 {
                match self { $( $name::$variant => $code, )+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::ParseValueError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let t = s.trim();
                $(
                    if t.eq_ignore_ascii_case($text) $(|| t.eq_ignore_ascii_case($alias))* {
                        return Ok($name::$variant);
                    }
                )+
                Err($crate::error::ParseValueError::new(
                    $what,
                    s,
                    format!("one of {}", [$($text),+].join(", ")),
                ))
            }
        }

        $crate::pragma::deserialize_from_str!($name, concat!("a ", $what, " name"));
    };
}
pub(crate) use pragma_enum;

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! round_trips {
        ($($ty:ty),+) => {$(
            for v in <$ty>::ALL {
                assert_eq!(v.to_string().parse::<$ty>().unwrap(), *v);
                assert_eq!(v.to_string().to_uppercase().parse::<$ty>().unwrap(), *v);
            }
        )+};
    }

    #[test]
    fn every_enum_variant_round_trips_case_insensitively() {
        round_trips!(
            JournalMode,
            Synchronous,
            TempStore,
            LockingMode,
            SecureDelete,
            AutoVacuum,
            TransactionMode
        );
    }

    #[test]
    fn enum_error_names_pragma_value_and_allowed() {
        let e = "walx".parse::<JournalMode>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid journal_mode \"walx\": expected one of delete, truncate, persist, wal, memory, off"
        );
    }
}
