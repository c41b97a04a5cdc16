//! Where `litepool bench --report FILE.html` goes: the path is checked before anything is
//! measured, and the page is written to a new file beside it, then renamed into place.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};

/// The directory a report at `path` goes into ("." for a bare file name).
fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Refuses a report path before anything is measured: the name must end in `.html`, the path
/// must not be a directory, and its directory must exist and take a new file (tried: a
/// temporary file is created there and removed). The error names the path and what is allowed.
pub fn check_report_path(path: &Path) -> anyhow::Result<()> {
    let shown = path.display();
    if path.extension().map_or(true, |e| e != "html") {
        bail!("invalid --report {shown}: expected a file name ending in .html");
    }
    if path.is_dir() {
        bail!("invalid --report {shown}: it is a directory; expected a file name ending in .html");
    }
    let dir = dir_of(path);
    if !dir.is_dir() {
        bail!(
            "invalid --report {shown}: its directory {} does not exist or is not a directory; expected a file in an existing, writable directory",
            dir.display()
        );
    }
    tempfile::NamedTempFile::new_in(dir).map(drop).map_err(|e| {
        anyhow!(
            "invalid --report {shown}: cannot create a file in its directory {} ({e}); expected a file in an existing, writable directory",
            dir.display()
        )
    })
}

/// The directory entry `path` names: its directory resolved (symbolic links, `..`), its own
/// name kept (a report replaces the entry, whatever it points to).
fn entry(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let dir = dir_of(path).canonicalize().ok()?;
    Some(dir.join(name))
}

/// Refuses a `--report` that names a file of the user's: a configured database, its `-wal`,
/// `-shm` or `-journal`, or a configuration file read. The report is renamed over its path:
/// that entry would be replaced, and with it the data or the configuration.
pub fn refuse_user_files(path: &Path, settings: &litepool::Settings) -> anyhow::Result<()> {
    let Some(report) = entry(path) else {
        return Ok(());
    };
    let mut theirs: Vec<(PathBuf, String)> = Vec::new();
    for db in settings.databases.values() {
        if db.replica.is_some() {
            continue;
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = db.path.clone().into_os_string();
            p.push(suffix);
            theirs.push((p.into(), format!("database {:?}'s file", db.name)));
        }
    }
    for source in &settings.sources {
        theirs.push((PathBuf::from(source), "a configuration file".to_owned()));
    }
    for (p, what) in theirs {
        if entry(&p).as_ref() == Some(&report) {
            bail!(
                "invalid --report {}: it is {what} ({}); the report would replace it. Expected another file name ending in .html",
                path.display(),
                p.display()
            );
        }
    }
    Ok(())
}

/// Writes `html` to `path`: into a new temporary file in the same directory, then renamed over
/// `path`. A symbolic link at `path` is replaced by the report, never written through (its
/// target is left as it was); a reader never sees half a page. The error names the path and
/// the cause.
pub fn write_report(path: &Path, html: &str) -> anyhow::Result<()> {
    let fail = |e: std::io::Error| anyhow!("cannot write --report {}: {e}", path.display());
    let mut file = tempfile::NamedTempFile::new_in(dir_of(path)).map_err(fail)?;
    file.write_all(html.as_bytes()).map_err(fail)?;
    // tempfile creates its files 0600; a report is an ordinary output file, meant to be opened
    // by others and served: 0644, what `std::fs::write` gives under the usual umask 022. It
    // holds only what the command line and the configuration files already show.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(fail)?;
    }
    file.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// The configuration the settings came from, for the HTML report: each file's text and each
/// variable's value.
pub fn config_text(settings: &litepool::Settings) -> String {
    let mut out = String::new();
    for source in &settings.sources {
        match source.strip_prefix("environment variable ") {
            Some(var) => {
                let value = std::env::var(var).unwrap_or_default();
                out.push_str(&format!("# {source}\n{var}={value}\n\n"));
            }
            None => {
                let text = std::fs::read_to_string(source).unwrap_or_default();
                out.push_str(&format!("# {source}\n{text}\n"));
            }
        }
    }
    out
}

/// The error and its causes, joined by ": " as `{:#}` does, each said once: litepool's errors
/// that name a file and key (`Error::At`) show their cause in their own text too.
pub fn causes(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_whose_directory_went_away_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        std::fs::create_dir(&gone).unwrap();
        let path = gone.join("r.html");
        check_report_path(&path).unwrap();
        std::fs::remove_dir(&gone).unwrap();
        let err = write_report(&path, "<html>").unwrap_err().to_string();
        assert!(
            err.contains(&path.display().to_string()) && err.contains("No such file"),
            "{err}"
        );
        assert!(!path.exists());
    }

    #[test]
    fn bad_report_paths_are_refused_naming_what_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        let sub = dir.path().join("sub.html");
        std::fs::create_dir(&sub).unwrap();
        for (path, says) in [
            (dir.path().join("chart.png"), "ending in .html"),
            (sub, "it is a directory"),
            (file.join("r.html"), "does not exist or is not a directory"),
            (
                "/proc/x.html".into(),
                "cannot create a file in its directory",
            ),
        ] {
            let err = check_report_path(&path).unwrap_err().to_string();
            assert!(
                err.contains(&path.display().to_string()) && err.contains(says),
                "{says:?} in {err}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_report_replaces_a_symbolic_link_and_is_0644() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.txt");
        std::fs::write(&target, b"keep me").unwrap();
        let link = dir.path().join("link.html");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_report(&link, "<html>").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
        let meta = std::fs::symlink_metadata(&link).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "<html>");
    }
}
