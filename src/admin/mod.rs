//! The admin socket (feature `admin`, Unix only): a running application's pool statistics,
//! settings and `reload`, from outside, over a Unix socket — and reload on SIGHUP.
//!
//! ```rust,no_run
//! # let pools = litepool::Pools::new(&litepool::Settings::load()?)?;
//! let _admin = pools.serve_admin("run/litepool.sock")?; // served until `_admin` is dropped
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! or, in the configuration, `[admin] socket = "run/litepool.sock"` and
//! [`Pools::serve_configured_admin`](crate::Pools::serve_configured_admin). Then
//! `litepool stats --socket run/litepool.sock [--watch]` and `litepool reload --socket …`.
//!
//! # The socket
//!
//! A Unix socket created with mode 0600 (bound under a temporary name, then renamed into
//! place), in a directory that exists, is owned by the user running the application and is not
//! writable by group or others; a symbolic link is never followed. A path that exists is
//! refused unless it is a stale socket of this user (a socket nobody listens on), which is
//! replaced. Dropping the [`AdminServer`] stops its thread and removes the socket.
//!
//! # The protocol
//!
//! One command per line (UTF-8, at most [`MAX_LINE`] bytes with its `\n`); each answer is any
//! number of lines followed by a line holding a single `.`. A line of the answer that begins
//! with `.` is sent with one more `.` in front (as SMTP does): a client removes one leading `.`
//! from every line but the last. The commands:
//!
//! | command | answer |
//! |---|---|
//! | `pools` | the pool table: per pool max, open, idle, in use, waiting now, longest wait now, wait p50/p99, timeouts, created/closed, customizer failures and last error, page-cache hit ratio; per split database the group commit's queue and batches |
//! | `stats json` | the document of `litepool stats --json` (`env`, `sources`, `databases`, `pools`) |
//! | `stats prometheus` | the text of `litepool stats --format prometheus` ([`prometheus()`]) |
//! | `settings` | the settings in force: environment, sources, then `key = value` lines |
//! | `reload` | re-reads the configuration and applies it ([`crate::Pools::reload`]): `key: old -> new` lines, or `error: …` |
//! | `help` | these commands |
//!
//! An answer that failed is one line `error: …` (then `.`); an unknown command's names the
//! command and lists the allowed ones. Several commands may be sent on one connection.
//!
//! # What a request costs the application
//!
//! Each client is served on a thread of its own (at most [`MAX_CLIENTS`] at once: one more is
//! answered `error: too many clients` and closed, without blocking the accept loop). An answer
//! is rendered from a snapshot (atomic counters, no pool lock) into memory, then written: no
//! lock is held while a client reads. A client that does not complete a line within
//! [`CLIENT_TIMEOUT`] (however slowly it trickles bytes), or does not take a write of its answer
//! within it, is disconnected; a line over [`MAX_LINE`] bytes is
//! answered `error: …` and the connection closed. While a socket is served, checkouts count
//! themselves as waiting (two relaxed atomic additions, a clock read and a compare-and-swap per
//! checkout) for the `waiting` and `longest` columns.
//!
//! # Reload
//!
//! `reload` re-reads the configuration from the sources the settings in force were loaded
//! from: their directory (`Settings::dir`) and environment name (`Settings::env`), with the
//! process's `LITEPOOL__…` variables as they are at reload time. Settings built in code have no
//! such sources: give the loader to use with [`crate::Pools::serve_admin_with`].

mod commands;
pub mod prometheus;
mod serve;
mod sighup;
mod socket;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use self::commands::{stats_document, table, COMMANDS};
pub use self::prometheus::prometheus;
pub use self::sighup::SighupReload;
use crate::error::{Error, Result};
use crate::pools::Pools;
use crate::settings::{Loader, Settings};

/// The longest request line, with its `\n`.
pub const MAX_LINE: usize = 4096;

/// The most clients served at once.
pub const MAX_CLIENTS: usize = 16;

/// How long a client may take to send a request line, or to take a write of an answer, before
/// it is disconnected.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// An admin socket being served; dropping it stops the thread and removes the socket.
#[derive(Debug)]
pub struct AdminServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The socket file's device and inode: removed on drop only if it is still ours.
    identity: (u64, u64),
}

impl AdminServer {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stop`. If the socket was removed or replaced
        // behind our back nothing can wake it: the thread is left to end with the process
        // rather than hang this drop.
        let ours = socket::identity(&self.path) == Some(self.identity);
        let woke = ours && std::os::unix::net::UnixStream::connect(&self.path).is_ok();
        if let Some(t) = self.thread.take() {
            if woke {
                let _ = t.join();
            } else {
                tracing::warn!(path = %self.path.display(), "admin socket removed or replaced by someone else: its thread is left running");
            }
        }
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
        crate::pool::COUNT_WAITING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where `reload` takes the new settings from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// The directory and environment of the settings in force, read again at each reload.
    InForce,
    /// A loader given by the application.
    Loader(Loader),
}

impl Source {
    pub(crate) fn load(&self, pools: &Pools) -> Result<Settings> {
        match self {
            Source::Loader(l) => l.clone().load(),
            Source::InForce => {
                let s = pools.settings();
                if s.dir.as_os_str().is_empty() {
                    return Err(Error::Config {
                        origin: "admin socket".into(),
                        key: None,
                        message: "the settings in force were built in code, not loaded from a \
                                  directory: serve the socket with Pools::serve_admin_with(path, \
                                  loader) to say where reload reads them"
                            .into(),
                    });
                }
                Settings::loader().dir(&s.dir).env(&s.env).load()
            }
        }
    }
}

impl Pools {
    /// Serves the admin socket at `path` on a thread of its own (see the [module docs](self)):
    /// `reload` re-reads the directory and environment the settings in force came from.
    pub fn serve_admin(&self, path: impl AsRef<Path>) -> Result<AdminServer> {
        serve::start(self, path.as_ref(), Source::InForce)
    }

    /// [`Pools::serve_admin`], with `reload` reading its settings through `loader`.
    pub fn serve_admin_with(&self, path: impl AsRef<Path>, loader: Loader) -> Result<AdminServer> {
        serve::start(self, path.as_ref(), Source::Loader(loader))
    }

    /// Serves the socket named by the settings' `[admin] socket` key, if any (`Ok(None)`
    /// without it).
    pub fn serve_configured_admin(&self) -> Result<Option<AdminServer>> {
        match self.settings().admin_socket.clone() {
            Some(path) => self.serve_admin(path).map(Some),
            None => Ok(None),
        }
    }
}
