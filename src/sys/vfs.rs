//! Loading Litestream's VFS extension so that it serves litepool's replica connections and
//! leaves every other connection of the process alone.
//!
//! Litestream 0.5.17's `sqlite3_litestreamvfs_init` registers the VFS and an automatic
//! extension, `litestream_auto_extension`, that SQLite runs on every connection opened after it.
//! That function is declared `void` where SQLite reads an `int` status, so SQLite reads whatever
//! its last call left in the return register: on any connection not opened through the VFS it is
//! `SQLITE_DONE`, and the open fails with "automatic extension loading failed" (reported upstream
//! as benbjohnson/litestream#1506, not merged in 0.5.17). Loading it as is would break every
//! other database of the application.
//!
//! So litepool loads it, then takes its automatic extension out again with
//! `sqlite3_cancel_auto_extension`, which needs the function's address: the function is not
//! exported, but it is in the library's symbol table, at a fixed distance from the exported
//! `sqlite3_litestreamvfs_init` (read with the `object` crate; the loaded library's address of
//! the exported function comes from `dlsym`, through `libloading`). SQLite answers 1 only when
//! that exact address was registered, so a wrong address is detected, never called. litepool
//! then runs the same function itself on each replica connection it opens (where it succeeds:
//! the connection is the VFS's), which registers the connection with Litestream and adds
//! `litestream_txid()`, `litestream_lag()`, `litestream_time()` and `litestream_set_time()`.
//! Written by hand: no crate loads a SQLite extension around such a defect.

use std::ffi::{c_char, c_int, c_void};
use std::path::Path;

use object::{Object, ObjectSymbol};
use rusqlite::{ffi, Connection};

use super::Db;

/// The extension's entry point (exported) and its automatic extension (local).
const INIT: &str = "sqlite3_litestreamvfs_init";
const AUTO: &str = "litestream_auto_extension";

/// `litestream_auto_extension` as SQLite calls automatic extensions.
type AutoExtension = unsafe extern "C" fn(
    *mut ffi::sqlite3,
    *mut *mut c_char,
    *const ffi::sqlite3_api_routines,
) -> c_int;

/// The loaded extension: what to run on each connection opened through its VFS.
#[derive(Debug, Clone, Copy)]
pub struct LoadedVfs {
    auto: AutoExtension,
}

/// The addresses of `INIT` and `AUTO` in the file's symbol table.
fn symbol_offsets(path: &Path) -> Result<(u64, u64), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cache = object::ReadCache::new(file);
    let elf = object::File::parse(&cache)
        .map_err(|e| format!("{}: not a loadable library ({e})", path.display()))?;
    let find = |name: &str| {
        elf.symbols()
            .chain(elf.dynamic_symbols())
            .find(|s| s.name() == Ok(name))
            .map(|s| s.address())
            .ok_or_else(|| {
                format!(
                    "{}: no symbol {name}; expected Litestream's VFS extension (0.5) with its symbol table",
                    path.display()
                )
            })
    };
    Ok((find(INIT)?, find(AUTO)?))
}

/// Loads the extension at `path` (process-wide, for good) and cancels its automatic extension.
/// Call once per process.
pub fn load_litestream_vfs(path: &Path) -> Result<LoadedVfs, String> {
    let (init_at, auto_at) = symbol_offsets(path)?;
    let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
    // SAFETY: loading runs the library's initialisation, which registers the VFS and the
    // automatic extension with this process's SQLite (the library is the file named by the
    // application's settings, whose symbols were just checked). Extension loading is enabled only
    // on this private connection, and only for the call (the guard turns it off again).
    unsafe {
        let _enabled = rusqlite::LoadExtensionGuard::new(&conn).map_err(|e| e.to_string())?;
        conn.load_extension(path, Some(INIT))
            .map_err(|e| format!("loading {}: {e}", path.display()))?;
    }
    drop(conn);
    // SAFETY: RTLD_NOLOAD only looks up the library SQLite just loaded (no initialisation
    // runs again); it stays loaded for the life of the process (SQLITE_OK_LOAD_PERMANENTLY), so
    // the handle is kept (leaked) rather than closed.
    let lib = unsafe {
        libloading::os::unix::Library::open(
            Some(path),
            libloading::os::unix::RTLD_NOW | libc_rtld_noload(),
        )
    }
    .map_err(|e| {
        format!(
            "{}: loaded by SQLite but not found again ({e})",
            path.display()
        )
    })?;
    // SAFETY: the symbol is read as an address only.
    let init = unsafe { lib.get::<*const c_void>(INIT.as_bytes()) }
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let base = (*init as usize)
        .checked_sub(usize::try_from(init_at).map_err(|e| e.to_string())?)
        .ok_or("the library's symbols do not match its load address")?;
    let auto_addr = base + usize::try_from(auto_at).map_err(|e| e.to_string())?;
    std::mem::forget(lib);
    // SAFETY: `auto_addr` is the library's `litestream_auto_extension` (its symbol table's
    // distance from the exported entry point, applied to where the entry point is loaded). It
    // is only passed to SQLite, which compares it with the automatic extensions it holds: a
    // wrong address matches nothing and is never called.
    let auto: AutoExtension = unsafe { std::mem::transmute::<usize, AutoExtension>(auto_addr) };
    // SAFETY: a plain call of SQLite's API.
    let cancelled = unsafe { ffi::sqlite3_cancel_auto_extension(Some(auto)) };
    if cancelled != 1 {
        return Err(format!(
            "{}: its automatic extension was not found where its symbol table puts it; every other connection of this process would fail to open (Litestream issue #1506)",
            path.display()
        ));
    }
    Ok(LoadedVfs { auto })
}

/// `RTLD_NOLOAD` (libloading does not name it): 4 in glibc and musl, 0x10 on macOS.
fn libc_rtld_noload() -> c_int {
    if cfg!(target_os = "macos") {
        0x10
    } else {
        4
    }
}

impl LoadedVfs {
    /// Registers a connection opened through the VFS with Litestream (its SQL functions), as
    /// the extension's automatic extension would have. Its status is not read: the function
    /// returns none (see the module's documentation); the caller checks that the functions exist.
    pub fn register(&self, db: Db) {
        // SAFETY: `auto` was confirmed by SQLite to be the extension's automatic extension, whose
        // C signature it has; it reads only the connection handle, which the caller holds
        // borrowed, and ignores the other two arguments.
        unsafe {
            (self.auto)(db.0, std::ptr::null_mut(), std::ptr::null());
        }
    }
}
