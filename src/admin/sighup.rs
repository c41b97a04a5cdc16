//! Reload on SIGHUP ([`Pools::reload_on_sighup`]), with `signal-hook`.

use signal_hook::consts::SIGHUP;
use signal_hook::iterator::{Handle, Signals};

use super::Source;
use crate::error::{Error, Result};
use crate::pools::Pools;
use crate::settings::Loader;

/// Reloads the configuration on each SIGHUP; dropping it stops listening (SIGHUP then keeps
/// whatever disposition the process gave it, as signal-hook leaves it).
#[derive(Debug)]
pub struct SighupReload {
    handle: Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SighupReload {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Pools {
    /// Reloads the configuration on each SIGHUP, on a thread of its own: through `loader` if
    /// given, else from the directory and environment of the settings in force (see
    /// [`crate::admin`]). Each outcome is logged (`tracing`: the changes at info, a refusal at
    /// error); a refused reload leaves the configuration in force as it was.
    pub fn reload_on_sighup(&self, loader: Option<Loader>) -> Result<SighupReload> {
        let source = loader.map_or(Source::InForce, Source::Loader);
        let mut signals = Signals::new([SIGHUP]).map_err(|source| Error::Io {
            path: "SIGHUP handler".into(),
            source,
        })?;
        let handle = signals.handle();
        let pools = self.clone();
        let thread = std::thread::Builder::new()
            .name("litepool-sighup".into())
            .spawn(move || {
                for _ in signals.forever() {
                    match source.load(&pools).and_then(|s| pools.reload(&s)) {
                        Ok(report) => {
                            tracing::info!(changes = report.changes.len(), "SIGHUP: reloaded")
                        }
                        Err(e) => tracing::error!(error = %e, "SIGHUP: reload refused"),
                    }
                }
            })
            .map_err(|source| Error::Io {
                path: "SIGHUP thread".into(),
                source,
            })?;
        Ok(SighupReload {
            handle,
            thread: Some(thread),
        })
    }
}
