//! [`Pools::reload`]: a new configuration in force in a running application, without a restart.
//!
//! **What reloads live**: every connection-level pragma of a profile (`cache_size`,
//! `synchronous`, `busy_timeout`, `mmap_size`, …), the profile-level keys (`allow_unsafe`,
//! `enforce_budget`, `transaction_behavior`, `optimize_on_open`), the `[pool]` settings of a
//! database and the `[readers]` pool of a split database, `durability` and
//! `limits.memory_budget`.
//!
//! **What needs a restart** ([`Error::RestartRequired`], naming the key; nothing is applied):
//! a database added or removed; `path`; the pragmas SQLite stores in the file (`journal_mode`,
//! `page_size`, `auto_vacuum`); the split turned on or off; the writer's
//! `connection_timeout`, `optimize_interval` and group commit (its threads were started with
//! them); `checkpoint`, `checkpoint_wal_size`, `replication`, `heartbeat`, a read replica's
//! `replica_url` and `litestream.vfs`; and `create_if_missing`,
//! `check_integrity`, `file_mode`, which only act when the file is first opened.
//!
//! **How**: each pool whose settings changed is built anew (its profile bootstrapped and
//! verified, its connections opened), all of them before any is put in force: a failure leaves
//! the old configuration whole. The writer of a split database is then taken out (waiting for
//! the write under way, at most its `connection_timeout`), so that no write runs on the old
//! writer while the new one opens; the new pools are swapped in, each under the same
//! [`NamedPool`] every [`Handle`](super::Handle) holds. A connection of a replaced pool closes
//! when it is checked in; a checkout that was waiting in a replaced pool moves on to the new one.
//! No checkout in flight fails, and every checkout that starts after `reload` returned gets a
//! connection opened with the new profile. Counters run on (the new pool shares the old one's).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::{preflight, Pools};
use crate::error::{Error, Result};
use crate::pool::{Live, NamedPool};
use crate::profile::Scope;
use crate::settings::{DatabaseSettings, PoolSettings, Role, Settings};

/// What a [`Pools::reload`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReloadReport {
    /// Every key whose value changed, in order.
    pub changes: Vec<Change>,
    /// The pools built anew (those whose profile or pool settings changed).
    pub rebuilt: Vec<String>,
}

/// One changed key: `key: old -> new`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Change {
    /// The dotted key, e.g. `databases.jobs.pool.max_size`.
    pub key: String,
    /// The value in force before.
    pub old: String,
    /// The value in force now.
    pub new: String,
}

impl std::fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.changes.is_empty() {
            return write!(f, "nothing changed");
        }
        for c in &self.changes {
            writeln!(f, "{}: {} -> {}", c.key, c.old, c.new)?;
        }
        write!(f, "pools rebuilt: {}", self.rebuilt.join(", "))
    }
}

impl Pools {
    /// Puts `settings` in force: see the [module docs](self) for what applies live and what is
    /// refused with [`Error::RestartRequired`]. Settings that fail validation (a file, the
    /// memory budget) or verification (a pragma that does not read back) leave the old
    /// configuration in force, whole. Reloads run one at a time. Each change is logged
    /// (`tracing`, info: `key: old -> new`).
    pub fn reload(&self, settings: &Settings) -> Result<ReloadReport> {
        let _one = self
            .inner
            .reload
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = self.settings();
        let changes = diff(&old, settings)?;
        let mut report = ReloadReport {
            changes,
            rebuilt: Vec::new(),
        };
        if report.changes.is_empty() {
            return Ok(report);
        }
        // The files as at startup, less `quick_check`: it reads the whole file, and it ran
        // before litepool first wrote to it.
        let mut files = settings.clone();
        for db in files.databases.values_mut() {
            db.check_integrity = false;
        }
        preflight(&files)?;
        // Every changed pool is built and verified before any is in force.
        let mut next: Vec<(NamedPool, Role, Live)> = Vec::new();
        for db in settings.databases.values() {
            let before = old.databases[&db.name].pools();
            for (spec, was) in db.pools().into_iter().zip(before) {
                if spec == was {
                    continue;
                }
                // A LiteFS replica opened no writer.
                let Ok(named) = self.named(&spec.name) else {
                    continue;
                };
                let live = Live::open(db, &spec, Some(&named.shared()))?;
                // r2d2's build opened and verified `min_idle` connections; a pool with
                // min_idle = 0 opened none: open and verify one (counted as a checkout).
                if spec.role != Role::Writer && spec.pool.min_idle == Some(0) {
                    let checked = live.pool.get_timeout(spec.pool.connection_timeout);
                    checked.map_err(|_| Error::Build {
                        pool: spec.name.clone(),
                        cause: live.shared.last_cause(),
                    })?;
                }
                next.push((named.clone(), spec.role, live));
            }
        }
        // The writers are taken out: no write runs on an old writer while a new one opens.
        let mut held = Vec::new();
        for (named, role, _) in &next {
            if *role == Role::Writer {
                held.push(named.get()?);
            }
        }
        for (named, _, live) in next {
            report.rebuilt.push(named.name().to_owned());
            named.replace(live);
        }
        drop(held);
        for db in settings.databases.values() {
            if let Some(h) = self.inner.databases.get(&db.name) {
                h.origin.set_profile(db.profile.name());
            }
        }
        *self
            .inner
            .settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(settings.clone());
        for c in &report.changes {
            tracing::info!(key = %c.key, old = %c.old, new = %c.new, "reloaded: {}: {} -> {}", c.key, c.old, c.new);
        }
        Ok(report)
    }

    /// The settings in force: those the pools were built with, or the last reloaded.
    pub fn settings(&self) -> Arc<Settings> {
        self.inner
            .settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Every change from `old` to `new`; the first that needs a restart is an error.
fn diff(old: &Settings, new: &Settings) -> Result<Vec<Change>> {
    let mut out = Changes::default();
    for name in old.databases.keys().chain(new.databases.keys()) {
        let (a, b) = (old.databases.get(name), new.databases.get(name));
        if a.is_none() || b.is_none() {
            let state = |d: Option<&DatabaseSettings>| {
                d.map_or("absent".to_owned(), |d| d.path.display().to_string())
            };
            return Err(Error::RestartRequired {
                key: format!("databases.{name}"),
                old: state(a),
                new: state(b),
            });
        }
    }
    for (name, a) in &old.databases {
        database(
            &mut out,
            &format!("databases.{name}"),
            a,
            &new.databases[name],
        )?;
    }
    // Litestream's VFS is loaded once per process.
    restart("litestream.vfs", &old.litestream_vfs, &new.litestream_vfs)?;
    out.live(
        "limits.memory_budget",
        &old.memory_budget.map(Disp),
        &new.memory_budget.map(Disp),
    );
    Ok(out.0)
}

#[derive(Default)]
struct Changes(Vec<Change>);

impl Changes {
    fn live<T: PartialEq + Debug>(&mut self, key: &str, old: &T, new: &T) {
        if old != new {
            self.0.push(Change {
                key: key.to_owned(),
                old: show(old),
                new: show(new),
            });
        }
    }
}

fn restart<T: PartialEq + Debug>(key: &str, old: &T, new: &T) -> Result<()> {
    if old == new {
        return Ok(());
    }
    Err(Error::RestartRequired {
        key: key.to_owned(),
        old: show(old),
        new: show(new),
    })
}

/// A value as the report shows it: durations in humantime, `None` as `unset`.
fn show<T: Debug>(v: &T) -> String {
    let text = format!("{v:?}");
    let text = text
        .strip_prefix("Some(")
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(&text);
    if text == "None" {
        return "unset".to_owned();
    }
    text.trim_matches('"').to_owned()
}

fn database(out: &mut Changes, at: &str, a: &DatabaseSettings, b: &DatabaseSettings) -> Result<()> {
    // A read replica's URL is read by Litestream's VFS once per process.
    let url = |d: &DatabaseSettings| d.replica.as_ref().map(|r| r.url.clone());
    restart(&format!("{at}.replica_url"), &url(a), &url(b))?;
    restart(&format!("{at}.path"), &a.path, &b.path)?;
    // The heartbeat thread starts with the pools.
    restart(&format!("{at}.heartbeat"), &a.heartbeat, &b.heartbeat)?;
    restart(
        &format!("{at}.create_if_missing"),
        &a.create_if_missing,
        &b.create_if_missing,
    )?;
    restart(
        &format!("{at}.check_integrity"),
        &a.check_integrity,
        &b.check_integrity,
    )?;
    restart(
        &format!("{at}.file_mode"),
        &Disp(a.file_mode),
        &Disp(b.file_mode),
    )?;
    restart(
        &format!("{at}.replication"),
        &Disp(a.replication),
        &Disp(b.replication),
    )?;
    restart(
        &format!("{at}.checkpoint"),
        &Disp(a.checkpoint),
        &Disp(b.checkpoint),
    )?;
    restart(
        &format!("{at}.checkpoint_wal_size"),
        &Disp(a.checkpoint_wal_size),
        &Disp(b.checkpoint_wal_size),
    )?;
    let on = |d: &DatabaseSettings| if d.split.is_some() { "on" } else { "off" };
    restart(&format!("{at}.split"), &on(a), &on(b))?;
    // The pragmas SQLite keeps in the file, then the connection-level ones.
    let (pa, pb) = (a.profile.settings(), b.profile.settings());
    let configured = |s: &[crate::profile::Setting], pragma: &str| {
        s.iter()
            .find(|x| x.pragma == pragma)
            .map(|x| (x.configured.clone(), x.scope))
    };
    let names: Vec<&'static str> = pa.iter().chain(pb).map(|s| s.pragma).collect();
    let mut seen = Vec::new();
    for pragma in names {
        if seen.contains(&pragma) {
            continue;
        }
        seen.push(pragma);
        let (x, y) = (configured(pa, pragma), configured(pb, pragma));
        let key = format!("{at}.pragmas.{pragma}");
        let file = [x.as_ref(), y.as_ref()]
            .into_iter()
            .flatten()
            .any(|(_, scope)| *scope == Scope::File);
        let (x, y) = (x.map(|v| v.0), y.map(|v| v.0));
        if file {
            restart(&key, &x, &y)?;
        } else {
            out.live(&key, &x, &y);
        }
    }
    let (sa, sb) = (a.profile.pragmas(), b.profile.pragmas());
    out.live(
        &format!("{at}.profile"),
        &a.profile.name(),
        &b.profile.name(),
    );
    out.live(
        &format!("{at}.pragmas.allow_unsafe"),
        &sa.allow_unsafe,
        &sb.allow_unsafe,
    );
    out.live(
        &format!("{at}.pragmas.enforce_budget"),
        &sa.enforce_budget,
        &sb.enforce_budget,
    );
    out.live(
        &format!("{at}.pragmas.transaction_behavior"),
        &sa.transaction_behavior.map(Disp),
        &sb.transaction_behavior.map(Disp),
    );
    out.live(
        &format!("{at}.pragmas.optimize_on_open"),
        &sa.optimize_on_open,
        &sb.optimize_on_open,
    );
    out.live(
        &format!("{at}.durability"),
        &Disp(a.durability),
        &Disp(b.durability),
    );
    pool(out, &format!("{at}.pool"), &a.pool, &b.pool);
    if let (Some(x), Some(y)) = (&a.split, &b.split) {
        restart(
            &format!("{at}.writer.connection_timeout"),
            &Millis(x.writer_connection_timeout),
            &Millis(y.writer_connection_timeout),
        )?;
        restart(
            &format!("{at}.writer.optimize_interval"),
            &x.optimize_interval.map(Millis),
            &y.optimize_interval.map(Millis),
        )?;
        restart(
            &format!("{at}.writer.group_commit"),
            &x.group_commit,
            &y.group_commit,
        )?;
        out.live(
            &format!("{at}.writer.transaction_behavior"),
            &Disp(x.writer_transaction_behavior),
            &Disp(y.writer_transaction_behavior),
        );
        pool(out, &format!("{at}.readers"), &x.readers, &y.readers);
    }
    Ok(())
}

fn pool(out: &mut Changes, at: &str, a: &PoolSettings, b: &PoolSettings) {
    out.live(&format!("{at}.max_size"), &a.max_size, &b.max_size);
    out.live(&format!("{at}.min_idle"), &a.min_idle, &b.min_idle);
    out.live(
        &format!("{at}.connection_timeout"),
        &Millis(a.connection_timeout),
        &Millis(b.connection_timeout),
    );
    out.live(
        &format!("{at}.idle_timeout"),
        &a.idle_timeout.map(Millis),
        &b.idle_timeout.map(Millis),
    );
    out.live(
        &format!("{at}.max_lifetime"),
        &a.max_lifetime.map(Millis),
        &b.max_lifetime.map(Millis),
    );
    out.live(
        &format!("{at}.test_on_check_out"),
        &a.test_on_check_out,
        &b.test_on_check_out,
    );
    out.live(&format!("{at}.stats"), &a.stats, &b.stats);
}

/// A duration that shows as `5s`, `250ms`.
#[derive(PartialEq)]
struct Millis(Duration);

impl Debug for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// A value shown by its `Display` (`background`, `4MiB`), compared by its own equality.
#[derive(PartialEq)]
struct Disp<T>(T);

impl<T: std::fmt::Display> Debug for Disp<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pragmas: &str, extra: &str) -> Settings {
        Settings::from_toml(&format!(
            "[profiles.p]\njournal_mode = \"wal\"\n{pragmas}\n\n[databases.main]\n\
             path = \"main.db\"\nprofile = \"p\"\n{extra}\n"
        ))
        .unwrap()
    }

    #[test]
    fn every_live_change_is_listed_with_its_values_as_configured() {
        let a = settings("cache_size = \"2MiB\"", "");
        let b = settings(
            "cache_size = \"4MiB\"\nsynchronous = \"normal\"",
            "durability = \"strict\"\n[databases.main.pool]\nmax_size = 3\nconnection_timeout = \"250ms\"\n[limits]\nmemory_budget = \"1GiB\"",
        );
        let shown: Vec<String> = diff(&a, &b)
            .unwrap()
            .iter()
            .map(|c| format!("{}: {} -> {}", c.key, c.old, c.new))
            .collect();
        assert_eq!(
            shown,
            [
                // The pragmas in force first, in apply order, then those only in the new.
                "databases.main.pragmas.cache_size: 2MiB -> 4MiB",
                "databases.main.pragmas.synchronous: unset -> normal",
                "databases.main.durability: normal -> strict",
                "databases.main.pool.max_size: 10 -> 3",
                "databases.main.pool.connection_timeout: 30s -> 250ms",
                "limits.memory_budget: unset -> 1GiB",
            ]
        );
        assert!(diff(&a, &a).unwrap().is_empty());
    }

    #[test]
    fn a_restart_only_change_is_refused_naming_its_key_and_values() {
        let a = settings("", "");
        for (extra, key, old, new) in [
            (
                "checkpoint = \"background\"",
                "databases.main.checkpoint",
                "sqlite",
                "background",
            ),
            (
                "checkpoint_wal_size = \"8MiB\"",
                "databases.main.checkpoint_wal_size",
                "4MiB",
                "8MiB",
            ),
            (
                "[databases.main.readers]\nmax_size = 2",
                "databases.main.split",
                "off",
                "on",
            ),
        ] {
            match diff(&a, &settings("", extra)) {
                Err(Error::RestartRequired {
                    key: k,
                    old: o,
                    new: n,
                }) => {
                    assert_eq!((k.as_str(), o.as_str(), n.as_str()), (key, old, new))
                }
                other => panic!("{extra}: expected RestartRequired, got {other:?}"),
            }
        }
        let page = settings("page_size = \"8KiB\"", "");
        match diff(&a, &page) {
            Err(Error::RestartRequired { key, .. }) => {
                assert_eq!(key, "databases.main.pragmas.page_size")
            }
            other => panic!("expected RestartRequired, got {other:?}"),
        }
    }

    #[test]
    fn a_replica_url_or_the_vfs_changed_needs_a_restart_named_by_its_key() {
        let toml = |vfs: &str, url: &str| {
            Settings::from_toml(&format!(
                "[litestream]\nvfs = \"{vfs}\"\n[databases.jobs]\nreplica_url = \"{url}\"\n"
            ))
            .unwrap()
        };
        let e = diff(
            &toml("/x.so", "file:///a/jobs"),
            &toml("/x.so", "file:///b/jobs"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("databases.jobs.replica_url"), "{e}");
        let e = diff(
            &toml("/x.so", "file:///a/jobs"),
            &toml("/y.so", "file:///a/jobs"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("litestream.vfs"), "{e}");
    }
}
