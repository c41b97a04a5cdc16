//! Creating the admin socket: checks on its directory and path, a stale socket replaced, mode
//! 0600 from the start (bound under a temporary name, restricted, then renamed into place).

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::settings::MAX_SOCKET_PATH;

/// The device and inode of the file at `path` itself (a link is not followed).
pub(super) fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

fn refuse(path: &Path, problem: impl Into<String>) -> Error {
    Error::Admin {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

/// Binds a listening socket at `path`, mode 0600. Refused: a path longer than
/// [`MAX_SOCKET_PATH`] bytes; a directory that is missing, a symbolic link, not owned by this
/// user or writable by group or others; a path that exists and is not a stale socket of this
/// user (a live one, a file, a directory, a symbolic link).
pub(super) fn bind(path: &Path) -> Result<(UnixListener, (u64, u64))> {
    let bytes = path.as_os_str().len();
    if bytes == 0 || bytes > MAX_SOCKET_PATH {
        return Err(refuse(
            path,
            format!("the path is {bytes} bytes: expected 1 to {MAX_SOCKET_PATH}"),
        ));
    }
    let Some(name) = path.file_name() else {
        return Err(refuse(
            path,
            "the path names no file: expected a socket file's path",
        ));
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let uid = rustix::process::getuid().as_raw();
    let meta = std::fs::symlink_metadata(&dir).map_err(|e| {
        refuse(
            path,
            format!("its directory {} cannot be used: {e}", dir.display()),
        )
    })?;
    if meta.file_type().is_symlink() {
        return Err(refuse(
            path,
            format!(
                "its directory {} is a symbolic link: give the real directory",
                dir.display()
            ),
        ));
    }
    if !meta.is_dir() {
        return Err(refuse(
            path,
            format!("{} is not a directory", dir.display()),
        ));
    }
    if meta.uid() != uid {
        return Err(refuse(
            path,
            format!(
                "its directory {} belongs to uid {}, not to this user (uid {uid}): use a directory of your own",
                dir.display(),
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refuse(
            path,
            format!(
                "its directory {} is writable by group or others (mode {:04o}): use one only you can write to",
                dir.display(),
                meta.mode() & 0o7777
            ),
        ));
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(refuse(path, format!("cannot be examined: {e}"))),
        Ok(m) if m.file_type().is_socket() && m.uid() == uid => match UnixStream::connect(path) {
            Ok(_) => {
                return Err(refuse(
                    path,
                    "another process is serving this socket: stop it, or give another path",
                ))
            }
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                tracing::info!(path = %path.display(), "replacing a stale admin socket (nobody listens on it)");
            }
            Err(e) => {
                return Err(refuse(
                    path,
                    format!("an existing socket that cannot be probed: {e}"),
                ))
            }
        },
        Ok(m) => {
            let what = if m.file_type().is_symlink() {
                "a symbolic link"
            } else if m.is_dir() {
                "a directory"
            } else if m.file_type().is_socket() {
                "a socket of another user"
            } else {
                "a file"
            };
            return Err(refuse(
                path,
                format!("exists and is {what}: expected a path that does not exist, or a stale socket of ours"),
            ));
        }
    }
    // Bound under a temporary name beside it, restricted, then renamed: the socket is never
    // reachable at `path` with a wider mode.
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let listener =
        UnixListener::bind(&tmp).map_err(|e| refuse(path, format!("cannot bind: {e}")))?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(refuse(path, format!("cannot be put in place: {e}")));
    }
    let id = identity(path).ok_or_else(|| refuse(path, "disappeared as it was created"))?;
    Ok((listener, id))
}
