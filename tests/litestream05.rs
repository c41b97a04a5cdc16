//! Litestream 0.5.17 for the tests: the binary and the VFS extension, fetched once into the
//! git-ignored `.tools/litestream-0.5.17/` by `tools/fetch_litestream_05.py` (the script
//! `.ci/run` also calls), so that `cargo test` alone runs the 0.5 tests on a fresh machine.
//! `$LITESTREAM_05` and `$LITESTREAM_VFS` point at other copies. Without Python's pip the tests
//! fail and say how to get the files; they never pass without running them.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fetched(file: &str, var: &str) -> PathBuf {
    static FETCH: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if let Some(p) = std::env::var_os(var) {
        return p.into();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let local = root.join(".tools/litestream-0.5.17").join(file);
    let _once = FETCH
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if local.is_file() {
        return local;
    }
    let out = Command::new("python3")
        .arg(root.join("tools/fetch_litestream_05.py"))
        .output();
    if local.is_file() {
        return local;
    }
    panic!(
        "this test needs Litestream 0.5.17's {file} and could not fetch it ({out:?}). Run \
         `python3 tools/fetch_litestream_05.py` from the project root (as .ci/run does), or set \
         {var}=/path/to/{file}"
    )
}

/// The Litestream 0.5.17 binary.
pub(crate) fn litestream_05() -> PathBuf {
    fetched("litestream", "LITESTREAM_05")
}

/// Litestream 0.5.17's VFS extension (`litestream-vfs.so`).
pub(crate) fn litestream_vfs() -> PathBuf {
    fetched("litestream-vfs.so", "LITESTREAM_VFS")
}

#[test]
fn the_fetched_binary_is_0_5_17() {
    let out = Command::new(litestream_05())
        .arg("version")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0.5.17");
    assert!(litestream_vfs().metadata().unwrap().len() > 1 << 20);
}
