//! Property tests: the value parsers and the settings loader never panic, whatever they are fed.

use litepool::pragma::*;
use proptest::prelude::*;

use crate::common::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn value_parsers_never_panic(s in any::<String>()) {
        let _ = s.parse::<ByteSize>();
        let _ = s.parse::<MmapSize>();
        let _ = s.parse::<PageSize>();
        let _ = s.parse::<CacheSize>();
        let _ = s.parse::<BusyTimeout>();
        let _ = s.parse::<Timeout>();
        let _ = s.parse::<Lifetime>();
        let _ = s.parse::<JournalMode>();
        let _ = s.parse::<Synchronous>();
        let _ = s.parse::<SecureDelete>();
        let _ = s.parse::<litepool::settings::FileMode>();
    }

    #[test]
    fn sizes_are_exact_or_refused(n in any::<u64>(), unit in prop::sample::select(vec![
        ("", 1u64), ("B", 1), ("KB", 1000), ("KiB", 1024), ("MB", 1_000_000), ("MiB", 1 << 20),
        ("GB", 1_000_000_000), ("GiB", 1 << 30), ("tib", 1 << 40),
    ]), space in any::<bool>()) {
        let text = format!("{n}{}{}", if space { " " } else { "" }, unit.0);
        match n.checked_mul(unit.1) {
            Some(bytes) => {
                let size = text.parse::<ByteSize>().unwrap();
                prop_assert_eq!(size.bytes(), bytes);
                prop_assert_eq!(size.to_string().parse::<ByteSize>().unwrap(), size);
            }
            None => prop_assert!(text.parse::<ByteSize>().is_err()),
        }
    }

    #[test]
    fn durations_in_ms_round_trip(ms in 0u64..=i32::MAX as u64) {
        let t: BusyTimeout = format!("{ms}ms").parse().unwrap();
        prop_assert_eq!(t.millis() as u64, ms);
        prop_assert_eq!(t.to_string().parse::<BusyTimeout>().unwrap(), t);
    }
}

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "[a-zA-Z0-9 ;_.-]{0,12}".prop_map(|s| format!("{s:?}")),
        prop::sample::select(vec![
            "\"wal\"",
            "\"500MiB\"",
            "\"5s\"",
            "{ pages = 10 }",
            "[1, 2]",
            "\"off\"",
            "-500"
        ])
        .prop_map(str::to_owned),
    ]
}

fn toml_doc() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "journal_mode",
        "synchronous",
        "cache_size",
        "mmap_size",
        "busy_timeout",
        "max_size",
        "min_idle",
        "path",
        "profile",
        "allow_unsafe",
        "page_size",
        "connection_timeout",
        "query_only",
        "bogus",
    ]);
    let tables = prop::sample::select(vec![
        "[profiles.p]",
        "[databases.main]",
        "[databases.main.pragmas]",
        "[databases.main.pool]",
        "[databases.main.writer]",
        "[databases.main.readers]",
        "[limits]",
        "[other]",
    ]);
    prop::collection::vec(
        (tables, prop::collection::vec((keys, toml_value()), 0..4)),
        0..6,
    )
    .prop_map(|sections| {
        sections
            .into_iter()
            .map(|(table, entries)| {
                let body: Vec<String> = entries
                    .into_iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect();
                format!("{table}\n{}\n", body.join("\n"))
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_settings_loader_never_panics(doc in prop_oneof![toml_doc(), any::<String>()]) {
        let f = Fixture::new(&doc);
        let _ = f.load();
        // Nothing was created in data/: loading never touches databases.
        prop_assert_eq!(std::fs::read_dir(f.path("data")).unwrap().count(), 0);
    }
}
