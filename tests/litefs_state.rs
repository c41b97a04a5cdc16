//! A LiteFS mount's `.primary` that does not hold one host name is an error naming the file and
//! what it holds, on every surface that reads it (Pools, check, the adapters); nothing opens.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use litepool::Pools;

use crate::common::*;

const SPLIT: &str = "[databases.jobs]\npath = \"{data}/jobs.db\"\nreplication = \"litefs\"\n[databases.jobs.writer]\n[databases.jobs.readers]\nmax_size = 2\n";

#[test]
fn a_malformed_primary_file_names_the_file_and_what_it_holds() {
    let cases: [(&[u8], &str, &str); 7] = [
        (b"", "empty", "(it holds \"\")"),
        (b"  \n\t\n", "empty", "(it holds \"  \\n\\t\\n\")"),
        (
            b"host-a\nhost-b\n",
            "not one line",
            "(it holds \"host-a\\nhost-b\\n\")",
        ),
        (b"host\x1b[31m", "not one line", "\\u{1b}"),
        (b"\xff\xfehost", "not text", "6 bytes that are not UTF-8"),
        (&[b'h'; 300], "too long for a host name", "…"),
        (b"ok\0", "not one line", "\\0"),
    ];
    for (bytes, problem, holds) in cases {
        let f = Fixture::new(SPLIT);
        let primary = f.path("data/.primary");
        std::fs::write(&primary, bytes).unwrap();
        let err = Pools::new(&f.load().unwrap()).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, litepool::Error::LitefsState { .. }),
            "{bytes:?}: {err:?}"
        );
        assert!(text.starts_with(&primary.display().to_string()), "{text}");
        assert!(
            text.contains(problem) && text.contains(holds),
            "{bytes:?}: {text}"
        );
        assert!(!text.contains('\n'), "{text}");
        // Nothing was opened or created.
        assert!(!f.path("data/jobs.db").exists(), "{bytes:?}");
    }
    // Control: one host name, with or without its newline, is the primary's name.
    for good in ["primary-host", "primary-host\n", "fdaa:0:1::2\n"] {
        let f = Fixture::new(SPLIT);
        drop(Pools::new(&f.load().unwrap()).unwrap()); // the primary creates the file
        std::fs::write(f.path("data/.primary"), good).unwrap();
        let pools = Pools::new(&f.load().unwrap()).unwrap();
        let e = pools.writer("jobs").unwrap_err();
        assert!(
            matches!(&e, litepool::Error::NotPrimary { primary, .. } if primary == good.trim_end()),
            "{e:?}"
        );
    }
}

#[test]
fn a_primary_that_is_a_directory_or_unreadable_is_named_too() {
    let f = Fixture::new(SPLIT);
    std::fs::create_dir(f.path("data/.primary")).unwrap();
    let text = Pools::new(&f.load().unwrap()).unwrap_err().to_string();
    assert!(
        text.contains("not a file") && text.contains("a directory"),
        "{text}"
    );
    // `check` reports it on the database and exits non-zero, opening nothing.
    let out = Command::new(env!("CARGO_BIN_EXE_litepool"))
        .arg("check")
        .current_dir(f.dir.path())
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains(".primary") && all.contains("not a file"),
        "{all}"
    );
    assert!(!f.path("data/jobs.db").exists());

    std::fs::remove_dir(f.path("data/.primary")).unwrap();
    std::fs::write(f.path("data/.primary"), "h").unwrap();
    std::fs::set_permissions(
        f.path("data/.primary"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    // As root the file stays readable; the case only applies to other users.
    if std::fs::read(f.path("data/.primary")).is_err() {
        let text = Pools::new(&f.load().unwrap()).unwrap_err().to_string();
        assert!(text.contains("cannot be read"), "{text}");
    }
}

#[cfg(feature = "diesel")]
#[test]
fn the_adapters_refuse_a_malformed_primary_too() {
    let f = Fixture::new(SPLIT);
    std::fs::write(f.path("data/.primary"), "").unwrap();
    let err = litepool::diesel::Pools::new(&f.load().unwrap()).unwrap_err();
    assert!(
        matches!(err, litepool::Error::LitefsState { .. }),
        "{err:?}"
    );
}

#[test]
fn a_primary_that_is_a_fifo_a_device_a_dangling_link_or_huge_is_refused_without_blocking() {
    let f = Fixture::new(SPLIT);
    let primary = f.path("data/.primary");
    let refused = |says: &str| {
        let text = Pools::new(&f.load().unwrap()).unwrap_err().to_string();
        assert!(text.contains(says), "{says}: {text}");
        assert!(!f.path("data/jobs.db").exists());
    };
    assert!(Command::new("mkfifo")
        .arg(&primary)
        .status()
        .unwrap()
        .success());
    refused("not a regular file");
    std::fs::remove_file(&primary).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &primary).unwrap();
    refused("not a regular file");
    std::fs::remove_file(&primary).unwrap();
    std::os::unix::fs::symlink(f.path("nowhere"), &primary).unwrap();
    refused("a symbolic link that leads nowhere");
    std::fs::remove_file(&primary).unwrap();
    // A sparse 20 GB file: only the first bytes are read.
    let file = std::fs::File::create(&primary).unwrap();
    file.set_len(20 << 30).unwrap();
    refused("not one line of text");
    std::fs::remove_file(&primary).unwrap();
    std::fs::write(&primary, "a b\n").unwrap();
    refused("not a host name");
    std::fs::write(&primary, "\u{feff}host\n").unwrap();
    refused("not a host name");
}
