//! Integration tests, built as one binary. Real database files in temp directories.

// The command line's own modules, compiled into the tests as into the binary.
#[allow(dead_code)]
#[path = "../src/bin/litepool/bench.rs"]
mod bench_runner;
#[allow(dead_code)]
#[path = "../src/bin/litepool/datagen.rs"]
mod datagen;
#[allow(dead_code)]
#[path = "../src/bin/litepool/measure.rs"]
mod measure;
#[allow(dead_code)]
#[path = "../src/bin/litepool/render.rs"]
mod render;
#[allow(dead_code)]
#[path = "../src/bin/litepool/scratch.rs"]
mod scratch;

mod adapters;
mod admin;
mod async_write;
mod bench;
mod borrower_state;
mod check_live;
mod cli;
mod common;
mod customizer;
mod errors;
mod fuzz;
mod guarantees;
mod hostile;
mod hostile19;
#[cfg(feature = "admin")]
mod hostile20;
mod hostile21;
mod hostile22;
mod hostile22b;
mod hostile23;
mod hostile24;
mod hostile_core;
mod library;
mod litefs_state;
mod litestream05;
mod litestream_config;
mod litestream_run;
mod names;
mod nested;
mod pools;
mod pragma_guard;
mod read_replica;
mod reload;
mod replication;
mod replication05;
mod safety;
mod settings;
mod startup_sql;
mod stats;
mod trust;
mod tune;
mod userbench;
mod write_path;
mod write_truth;
