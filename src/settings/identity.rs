//! File identity: two databases on one file (the same path, `..`, a symbolic link, even a
//! dangling one, or a hard link) are refused at load, naming both.

#[allow(unused_imports)]
use super::*;

/// What identifies a file: its device and inode when it exists, else its canonical path.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum FileId {
    #[cfg(unix)]
    Inode(u64, u64),
    Path(PathBuf),
}

/// `path` with symbolic links in its last component followed, even when they dangle (at most
/// 40, as the kernel allows).
pub(super) fn follow_links(path: &Path) -> PathBuf {
    let mut p = path.to_owned();
    for _ in 0..40 {
        match std::fs::read_link(&p) {
            Ok(target) if target.is_absolute() => p = target,
            Ok(target) => p = p.parent().unwrap_or(Path::new("")).join(target),
            Err(_) => break,
        }
    }
    p
}

pub(super) fn file_id(path: &Path) -> FileId {
    #[cfg(unix)]
    if let Ok(m) = std::fs::metadata(path) {
        use std::os::unix::fs::MetadataExt;
        return FileId::Inode(m.dev(), m.ino());
    }
    if let Ok(p) = std::fs::canonicalize(path) {
        return FileId::Path(p);
    }
    // A file still to be created (or a link to one): its directory, resolved, and its name.
    let path = follow_links(path);
    let path = path.as_path();
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = parent.map_or_else(
        || std::env::current_dir().unwrap_or_default(),
        |p| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned()),
    );
    FileId::Path(dir.join(path.file_name().unwrap_or_default()))
}

/// Refuses two databases on one file (the same path, a path through `..` or a symbolic link, a
/// hard link): one file is one database with one profile. Reads metadata only.
pub(super) fn distinct_files(databases: &BTreeMap<String, DatabaseSettings>) -> Result<()> {
    let ids: Vec<(&DatabaseSettings, FileId)> = databases
        .values()
        .map(|db| (db, file_id(&db.path)))
        .collect();
    for (i, (a, id_a)) in ids.iter().enumerate() {
        if let Some((b, _)) = ids[i + 1..].iter().find(|(_, id_b)| id_b == id_a) {
            return Err(Error::SameFile {
                first: a.name.clone(),
                second: b.name.clone(),
                path: b.path.clone(),
            });
        }
    }
    Ok(())
}
