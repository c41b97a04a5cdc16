//! Integration tests, built as one binary. Real database files in temp directories.

mod bench;
mod cli;
mod common;
mod customizer;
mod errors;
mod fuzz;
mod hostile;
mod pools;
mod safety;
mod settings;
mod stats;
