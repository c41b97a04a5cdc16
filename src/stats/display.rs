//! [`PoolStats`] for people: the text `litepool stats` and `println!("{}", pools.stats())` show.

use std::fmt;

use super::PoolStats;

impl fmt::Display for PoolStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} of {} connections open, {} idle, {} in use (profile {}; counters since {:.1}s ago)",
            self.database,
            self.connections,
            self.max_size,
            self.idle,
            self.in_use,
            self.profile,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "  checkouts {} (waited {}, timeouts {})  wait p50 {} p90 {} p99 {} max {}",
            self.checkouts,
            self.waited,
            self.timeouts,
            crate::units::duration(self.wait.p50),
            crate::units::duration(self.wait.p90),
            crate::units::duration(self.wait.p99),
            crate::units::duration(self.wait.max)
        )?;
        writeln!(
            f,
            "  hold p50 {} p99 {} max {}  connections created {} closed {} (max_lifetime {}, idle/broken {}) errors {} customizer failures {}",
            crate::units::duration(self.hold.p50),
            crate::units::duration(self.hold.p99),
            crate::units::duration(self.hold.max),
            self.connections_created,
            self.connections_closed,
            self.closed_max_lifetime,
            self.closed_idle_timeout_or_broken,
            self.connection_errors,
            self.customizer_failures
        )?;
        let ratio = self
            .cache
            .hit_ratio
            .map_or("-".to_owned(), |r| format!("{:.1}%", r * 100.0));
        write!(
            f,
            "  page cache: hits {} misses {} (hit ratio {ratio}) writes {} spills {} holding {}",
            self.cache.hit,
            self.cache.miss,
            self.cache.write,
            self.cache.spill,
            crate::units::bytes(self.cache.used_bytes)
        )?;
        if let Some(e) = &self.last_customizer_error {
            let ago =
                e.at.elapsed()
                    .map_or("just now".to_owned(), |d| format!("{}s ago", d.as_secs()));
            write!(f, "\n  last customizer error ({ago}): {}", e.message)?;
        }
        if let Some(r) = &self.replica {
            write!(f, "\n{r}")?;
        }
        Ok(())
    }
}
