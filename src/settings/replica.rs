//! A read replica: a database that is not a local file but a Litestream replica, read through
//! Litestream's VFS (<https://litestream.io/reference/vfs/>) by readers only. Its settings are
//! checked here, when settings load: the URL, and the profile keys that cannot apply to a
//! read-only connection of the VFS.

use crate::profile::PragmaSet;

/// The URL schemes Litestream 0.5's VFS opens (the replica clients it registers:
/// `cmd/litestream-vfs/main.go`). Anything else would fail only when the first connection opens.
pub const REPLICA_SCHEMES: [&str; 8] = ["file", "s3", "gs", "abs", "oss", "sftp", "nats", "webdav"];

/// Where a read replica's pages come from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadReplica {
    /// The replica's URL, as Litestream writes it on the primary's machine (`file:///srv/replica/jobs`,
    /// `s3://bucket/jobs`). Litestream's VFS reads it from the environment variable
    /// `LITESTREAM_REPLICA_URL` of the process as it started; litepool checks that they agree.
    pub url: String,
}

impl ReadReplica {
    /// Checks `url`: a scheme the VFS opens, something after it, no whitespace or control
    /// characters (the VFS takes the URL whole from an environment variable), and for `file:` an
    /// absolute path.
    pub fn new(url: &str) -> std::result::Result<ReadReplica, String> {
        let allowed = || REPLICA_SCHEMES.map(|s| format!("{s}://")).join(", ");
        if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!("invalid replica_url {url:?}: a URL cannot hold spaces or control characters; percent-encode them"));
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(format!(
                "invalid replica_url {url:?}: expected a URL starting with one of {}",
                allowed()
            ));
        };
        if !REPLICA_SCHEMES.contains(&scheme) || rest.is_empty() {
            return Err(format!(
                "invalid replica_url {url:?}: expected a URL starting with one of {} and naming the replica after it",
                allowed()
            ));
        }
        if scheme == "file" && !rest.starts_with('/') {
            return Err(format!("invalid replica_url {url:?}: a file replica needs an absolute path (file:///srv/replica/jobs)"));
        }
        Ok(ReadReplica {
            url: url.to_owned(),
        })
    }
}

/// Profile keys that have no effect on a read replica, and why. Each is removed from the
/// replica's profile (and reported as ignored), so that verification does not fail on what the
/// VFS cannot do.
pub const NOT_ON_A_REPLICA: [(&str, &str); 8] = [
    ("journal_mode", "the VFS serves the replica's pages without a journal (it reports \"delete\"); the primary's journal mode is the primary's"),
    ("mmap_size", "the VFS has no memory map"),
    ("wal_autocheckpoint", "a replica has no WAL of its own to checkpoint"),
    ("journal_size_limit", "a replica has no journal of its own"),
    ("page_size", "the page size is the primary's, fixed in the file"),
    ("auto_vacuum", "auto_vacuum is the primary's, fixed in the file"),
    ("synchronous", "a read-only connection never syncs"),
    ("locking_mode", "a replica is read through the VFS, whose locks only keep a reader's snapshot"),
];

/// `set` without the keys of [`NOT_ON_A_REPLICA`], and the ones it had.
pub fn for_replica(set: &PragmaSet) -> (PragmaSet, Vec<(&'static str, &'static str)>) {
    let dropped: Vec<_> = NOT_ON_A_REPLICA
        .iter()
        .copied()
        .filter(|(key, _)| set.sets(key))
        .collect();
    let kept = PragmaSet {
        journal_mode: None,
        mmap_size: None,
        wal_autocheckpoint: None,
        journal_size_limit: None,
        page_size: None,
        auto_vacuum: None,
        synchronous: None,
        locking_mode: None,
        ..set.clone()
    };
    (kept, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_by_scheme_path_and_characters() {
        assert_eq!(
            ReadReplica::new("file:///srv/r/jobs").unwrap().url,
            "file:///srv/r/jobs"
        );
        assert!(ReadReplica::new("s3://bucket/jobs").is_ok());
        let e = ReadReplica::new("http://x/jobs").unwrap_err();
        assert!(
            e.contains("\"http://x/jobs\"") && e.contains("file://, s3://"),
            "{e}"
        );
        let e = ReadReplica::new("file://relative/jobs").unwrap_err();
        assert!(e.contains("absolute path"), "{e}");
        assert!(ReadReplica::new("file:///a b")
            .unwrap_err()
            .contains("spaces"));
        assert!(ReadReplica::new("/srv/r/jobs")
            .unwrap_err()
            .contains("expected a URL"));
        assert!(ReadReplica::new("s3://")
            .unwrap_err()
            .contains("naming the replica"));
    }

    #[test]
    fn keys_a_replica_cannot_use_are_removed_and_named() {
        let set = PragmaSet {
            journal_mode: Some(crate::pragma::JournalMode::Wal),
            cache_size: Some("64MiB".parse().unwrap()),
            synchronous: Some(crate::pragma::Synchronous::Normal),
            ..PragmaSet::default()
        };
        let (kept, dropped) = for_replica(&set);
        assert_eq!(kept.journal_mode, None);
        assert_eq!(kept.synchronous, None);
        assert_eq!(kept.cache_size, set.cache_size);
        let names: Vec<_> = dropped.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["journal_mode", "synchronous"]);
    }
}
