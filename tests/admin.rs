//! The admin socket (`litepool::admin`): its commands, its path checks, hostile clients, and
//! `litepool stats --socket` / `litepool reload --socket` against a live child process.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use litepool::{Error, Pools};

use crate::common::*;

fn config(max_size: u32) -> String {
    format!(
        "[profiles.p]\njournal_mode = \"wal\"\ncache_size = \"2MiB\"\n\n\
         [databases.main]\npath = \"{{data}}/main.db\"\nprofile = \"p\"\n\n\
         [databases.main.pool]\nmax_size = {max_size}\nconnection_timeout = \"20s\"\n"
    )
}

/// A directory only this user can write, for sockets.
fn run_dir(f: &Fixture) -> PathBuf {
    let dir = f.path("run");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// One request: the answer's lines, without the final `.` (dot-stuffing undone).
fn ask(path: &Path, command: &str) -> String {
    let mut s = UnixStream::connect(path).unwrap();
    s.write_all(format!("{command}\n").as_bytes()).unwrap();
    read_answer(&mut BufReader::new(s))
}

fn read_answer(r: &mut impl BufRead) -> String {
    let mut out = String::new();
    for line in r.lines() {
        let line = line.unwrap();
        if line == "." {
            return out;
        }
        out.push_str(line.strip_prefix('.').unwrap_or(&line));
        out.push('\n');
    }
    panic!("the answer did not end with a '.' line: {out:?}");
}

#[test]
fn the_socket_is_0600_and_answers_every_command() {
    let f = Fixture::new(&config(4));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    let path = run_dir(&f).join("litepool.sock");
    let server = pools.serve_admin_with(&path, f.loader()).unwrap();
    assert_eq!(server.path(), path);
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    for _ in 0..25 {
        pools
            .get("main")
            .unwrap()
            .execute_batch("SELECT 1")
            .unwrap();
    }

    let table = ask(&path, "pools");
    let row = table.lines().find(|l| l.starts_with("main ")).unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cols[1..6], ["4", "4", "4", "0", "0"], "{table}");

    let doc: serde_json::Value = serde_json::from_str(&ask(&path, "stats json")).unwrap();
    assert!(doc["pools"]["main"]["checkouts"].as_u64().unwrap() >= 25);
    assert_eq!(doc["pools"]["main"]["max_size"], 4);
    assert_eq!(doc["waiting"]["main"], 0);

    assert!(doc["longest_wait_seconds"]["main"].is_null());

    // A checkout waiting while all 4 connections are held: counted, with its wait so far.
    let held: Vec<_> = (0..4).map(|_| pools.get("main").unwrap()).collect();
    let waiter = {
        let pools = pools.clone();
        std::thread::spawn(move || pools.get("main").map(drop))
    };
    let (waiting, longest) = loop {
        let doc: serde_json::Value = serde_json::from_str(&ask(&path, "stats json")).unwrap();
        if doc["waiting"]["main"] == 1 {
            break (
                doc["waiting"]["main"].clone(),
                doc["longest_wait_seconds"]["main"].clone(),
            );
        }
        std::thread::yield_now();
    };
    assert_eq!(waiting, 1);
    assert!(longest.as_f64().unwrap() >= 0.0, "{longest}");
    let row = ask(&path, "pools");
    let row = row
        .lines()
        .find(|l| l.starts_with("main "))
        .unwrap()
        .to_owned();
    drop(held);
    waiter.join().unwrap().unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[5], "1", "{row}");
    assert!(cols[6].ends_with("ms"), "{row}");

    let prom = ask(&path, "stats prometheus");
    assert!(
        prom.contains("# TYPE db_client_connection_max gauge"),
        "{prom}"
    );
    assert!(prom.contains("db_client_connection_max{db_client_connection_pool_name=\"main\",db_system_name=\"sqlite\"} 4"), "{prom}");

    let settings = ask(&path, "settings");
    assert!(
        settings.contains("databases.main.pool.max_size = 4\n"),
        "{settings}"
    );
    assert!(
        settings.contains("databases.main.pragmas.cache_size = 2MiB\n"),
        "{settings}"
    );

    let help = ask(&path, "help");
    assert_eq!(help.lines().count(), litepool::admin::COMMANDS.len());

    assert_eq!(
        ask(&path, "frobnicate now"),
        "error: unknown command \"frobnicate now\": allowed commands are pools, stats json, \
         stats prometheus, settings, reload, help\n"
    );

    // Several commands on one connection.
    let mut s = UnixStream::connect(&path).unwrap();
    s.write_all(b"help\nsettings\n").unwrap();
    let mut r = BufReader::new(s);
    assert_eq!(read_answer(&mut r), help);
    assert_eq!(read_answer(&mut r), settings);

    f.config("default.toml", &config(6));
    assert_eq!(
        ask(&path, "reload"),
        "ok\ndatabases.main.pool.max_size: 4 -> 6\npools rebuilt: main\n"
    );
    assert_eq!(pools.stats_for("main").unwrap().max_size, 6);
    assert_eq!(ask(&path, "reload"), "ok\nnothing changed\n");

    drop(server);
    assert!(
        !path.exists(),
        "the socket is removed when the server is dropped"
    );
}

#[test]
fn reload_through_the_socket_needs_a_loader_for_settings_built_in_code() {
    let f = Fixture::new(&config(4));
    let text = std::fs::read_to_string(f.path("config/default.toml")).unwrap();
    let settings = litepool::Settings::from_toml(&text).unwrap();
    let pools = Pools::new(&settings).unwrap();
    let path = run_dir(&f).join("a.sock");
    let _server = pools.serve_admin(&path).unwrap();
    let answer = ask(&path, "reload");
    assert!(answer.starts_with("error: "), "{answer}");
    assert!(answer.contains("serve_admin_with"), "{answer}");
}

#[test]
fn a_path_that_exists_is_refused_unless_it_is_a_stale_socket() {
    let f = Fixture::new(&config(2));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    let dir = run_dir(&f);
    let problem = |path: &Path| match pools.serve_admin(path).unwrap_err() {
        Error::Admin { path: p, problem } => {
            assert_eq!(p, path);
            problem
        }
        other => panic!("expected Error::Admin, got {other:?}"),
    };
    let file = dir.join("file.sock");
    std::fs::write(&file, "keep me").unwrap();
    assert!(problem(&file).contains("exists and is a file"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    let link = dir.join("link.sock");
    std::os::unix::fs::symlink(dir.join("nowhere.sock"), &link).unwrap();
    assert!(problem(&link).contains("a symbolic link"));
    assert!(
        !dir.join("nowhere.sock").exists(),
        "nothing created through the link"
    );

    let live = dir.join("live.sock");
    let _served = pools.serve_admin(&live).unwrap();
    assert!(problem(&live).contains("another process is serving"));

    // A socket nobody listens on (a crashed application's) is replaced.
    let stale = dir.join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let _replaced = pools.serve_admin(&stale).unwrap();
    assert_eq!(
        ask(&stale, "help").lines().count(),
        litepool::admin::COMMANDS.len()
    );

    // The directory: missing, writable by others, a symbolic link.
    assert!(problem(&f.path("missing/a.sock")).contains("cannot be used"));
    let open = f.path("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(problem(&open.join("a.sock")).contains("writable by group or others"));
    let linked = f.path("linked");
    std::os::unix::fs::symlink(&dir, &linked).unwrap();
    assert!(problem(&linked.join("a.sock")).contains("is a symbolic link"));
}

/// Checkouts on 2 threads, counted, while hostile clients hit the socket.
struct Checkouts {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<u64>>,
}

impl Checkouts {
    fn start(pools: &Pools) -> Checkouts {
        let (stop, count) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let threads = (0..2)
            .map(|_| {
                let (pools, stop, count) = (pools.clone(), stop.clone(), count.clone());
                std::thread::spawn(move || {
                    let mut failed = 0;
                    while !stop.load(Ordering::SeqCst) {
                        match pools.get("main") {
                            Ok(c) => {
                                c.execute_batch("SELECT 1").unwrap();
                                count.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(_) => failed += 1,
                        }
                    }
                    failed
                })
            })
            .collect();
        Checkouts {
            stop,
            count,
            threads,
        }
    }

    /// Waits until `n` more checkouts happened.
    fn carry_on(&self, n: u64) {
        let target = self.count.load(Ordering::SeqCst) + n;
        while self.count.load(Ordering::SeqCst) < target {
            std::thread::yield_now();
        }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.threads.into_iter().map(|t| t.join().unwrap()).sum()
    }
}

#[test]
fn garbage_a_1mb_line_and_1000_idle_clients_do_not_stop_checkouts() {
    let f = Fixture::new(&config(2));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    let path = run_dir(&f).join("admin.sock");
    let _server = pools.serve_admin_with(&path, f.loader()).unwrap();
    let load = Checkouts::start(&pools);

    // Garbage: bytes that are not UTF-8.
    let mut s = UnixStream::connect(&path).unwrap();
    s.write_all(b"\xff\xfe\x00garbage\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert_eq!(
        answer,
        "error: the request is not UTF-8; closing the connection\n.\n"
    );
    load.carry_on(100);

    // A 1 MB line: an error line, then the connection closes (the rest is never read).
    let mut s = UnixStream::connect(&path).unwrap();
    let big = vec![b'x'; 1 << 20];
    // The server stops reading after 4 KiB: the write may fail once it closed.
    let _ = s.write_all(&big);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(
        String::from_utf8_lossy(&answer)
            .starts_with("error: request line longer than 4096 bytes; closing the connection\n.\n"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    load.carry_on(100);

    // 1,000 connections that never send or read: 16 are served (and wait), the others are
    // refused with one line and closed; the application's checkouts carry on meanwhile.
    let idle: Vec<UnixStream> = (0..1000)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
    load.carry_on(1000);
    let (mut refused, mut timed_out) = (0, 0);
    for mut s in idle.into_iter().skip(litepool::admin::MAX_CLIENTS) {
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        match answer.as_str() {
            "error: too many clients (16 connected); try again later\n.\n" => refused += 1,
            // Served in a slot that a silent client left after CLIENT_TIMEOUT (a slow run),
            // then closed after its own timeout: nothing was sent.
            "" => timed_out += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    // The first 16 held their slots and every later one was refused, unless the run was slow
    // enough for silent clients to time out and free slots (CLIENT_TIMEOUT, 10 s).
    assert_eq!(refused + timed_out, 1000 - litepool::admin::MAX_CLIENTS);
    assert!(
        refused >= 1000 - 4 * litepool::admin::MAX_CLIENTS,
        "{refused} refused"
    );
    load.carry_on(100);
    // Once the idle clients are gone, a client is served again.
    let served = loop {
        let a = ask(&path, "help");
        if !a.starts_with("error: too many clients") {
            break a;
        }
        std::thread::yield_now();
    };
    assert_eq!(served.lines().count(), litepool::admin::COMMANDS.len());
    assert_eq!(load.stop(), 0, "no checkout failed");
}

const CHILD_VAR: &str = "LITEPOOL_ADMIN_CHILD";

#[test]
#[ignore = "helper: the application serving an admin socket, for stats_socket_shows_a_live_childs_counters"]
fn admin_child_helper() {
    let settings = child_settings(CHILD_VAR);
    let pools = Pools::new(&settings).unwrap();
    let dir = PathBuf::from(std::env::var(CHILD_VAR).unwrap());
    let _server = pools
        .serve_admin_with(dir.join("../run/admin.sock"), settings_loader(&dir))
        .unwrap();
    for _ in 0..50 {
        pools
            .get("main")
            .unwrap()
            .execute_batch("SELECT 1")
            .unwrap();
    }
    // On a line of its own: libtest has printed "test … ... " without a newline.
    println!("\nacked 50");
    loop {
        std::thread::park();
    }
}

fn settings_loader(dir: &Path) -> litepool::settings::Loader {
    litepool::Settings::loader()
        .dir(dir)
        .vars(Default::default())
}

fn litepool(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_litepool"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn stats_socket_shows_a_live_childs_counters_and_reload_socket_applies_or_refuses() {
    let f = Fixture::new(&config(4));
    run_dir(&f);
    let socket = f.path("run/admin.sock");
    let mut child = Child::spawn("admin::admin_child_helper", CHILD_VAR, &f.path("config"));
    child.read_until(1);
    let sock = socket.to_str().unwrap();

    let out = litepool(&["stats", "--socket", sock, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["pools"]["main"]["checkouts"].as_u64().unwrap() >= 50,
        "{doc}"
    );

    let out = litepool(&["stats", "--socket", sock]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().any(|l| l.starts_with("main ")), "{text}");

    let out = litepool(&["stats", "--socket", sock, "--format", "prometheus"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("db_client_connection_max{db_client_connection_pool_name=\"main\""),
        "{text}"
    );

    f.config("default.toml", &config(6));
    let out = litepool(&["reload", "--socket", sock]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "databases.main.pool.max_size: 4 -> 6\npools rebuilt: main\n"
    );
    f.config("default.toml", &config(6).replace("\"wal\"", "\"delete\""));
    let out = litepool(&["reload", "--socket", sock]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("databases.main.pragmas.journal_mode"), "{err}");
    assert!(err.contains("restart"), "{err}");

    // An invalid file: refused naming the file and the key, nothing applied.
    f.config("default.toml", &(config(8) + "\nbogus = 1\n"));
    let out = litepool(&["reload", "--socket", sock]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("default.toml") && err.contains("bogus"),
        "{err}"
    );

    let out = litepool(&["stats", "--socket", sock, "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["pools"]["main"]["max_size"], 6);

    // --watch: the table redrawn; from the second refresh on, with rates per second.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_litepool"))
        .args(["stats", "--socket", sock, "--watch", "100ms"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let rates = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.contains("checkouts/s"))
        .unwrap();
    assert!(
        rates.contains("timeouts/s") && rates.contains("created/s"),
        "{rates}"
    );
    let row = lines
        .map(Result::unwrap)
        .find(|l| l.starts_with("main "))
        .unwrap();
    // max 6, then the rates: three numbers at the end.
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], "6", "{row}");
    assert!(
        cols[cols.len() - 3..]
            .iter()
            .all(|c| c.parse::<f64>().is_ok()),
        "{row}"
    );
    watch.kill().unwrap();
    watch.wait().unwrap();
    child.kill();

    // Nothing listening any more (the child was killed: a stale socket), and no such path.
    for path in [
        sock.to_owned(),
        f.path("run/none.sock").display().to_string(),
    ] {
        for args in [
            vec!["stats", "--socket", &path],
            vec!["reload", "--socket", &path],
        ] {
            let out = litepool(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            let err = String::from_utf8(out.stderr).unwrap();
            assert!(
                err.contains(&format!("admin socket {path}: cannot connect")),
                "{err}"
            );
        }
    }
}

#[test]
fn the_admin_socket_key_is_validated_at_load_and_served_on_request() {
    let f = Fixture::new(&(config(2) + "\n[admin]\nsockett = \"run/a.sock\"\n"));
    let err = f.load().unwrap_err().to_string();
    assert!(
        err.contains("default.toml") && err.contains("sockett"),
        "{err}"
    );
    let long = "x".repeat(101);
    for (bad, shown) in [("", "\"\""), (long.as_str(), "xxxx"), ("run/", "\"run/\"")] {
        f.config(
            "default.toml",
            &(config(2) + &format!("\n[admin]\nsocket = {bad:?}\n")),
        );
        let err = f.load().unwrap_err().to_string();
        assert!(
            err.contains("default.toml")
                && err.contains("admin.socket")
                && err.contains(shown)
                && err.contains("1 to 100 bytes"),
            "{err}"
        );
    }
    let path = run_dir(&f).join("configured.sock");
    f.config(
        "default.toml",
        &(config(2) + &format!("\n[admin]\nsocket = {:?}\n", path.display().to_string())),
    );
    let settings = f.load().unwrap();
    assert_eq!(settings.admin_socket.as_deref(), Some(path.as_path()));
    let pools = Pools::new(&settings).unwrap();
    let server = pools.serve_configured_admin().unwrap().unwrap();
    assert_eq!(server.path(), path);
    assert_eq!(
        ask(&path, "help").lines().count(),
        litepool::admin::COMMANDS.len()
    );
    let none = Pools::new(&Fixture::new(&config(2)).load().unwrap()).unwrap();
    assert!(none.serve_configured_admin().unwrap().is_none());
}

#[test]
fn sighup_reloads_the_configuration() {
    let f = Fixture::new(&config(3));
    let pools = Pools::new(&f.load().unwrap()).unwrap();
    let hup = pools.reload_on_sighup(Some(f.loader())).unwrap();
    f.config("default.toml", &config(5));
    signal_hook::low_level::raise(signal_hook::consts::SIGHUP).unwrap();
    // The reload runs on the SIGHUP thread: wait for it to be in force.
    while pools.settings().databases["main"].pool.max_size != 5 {
        std::thread::yield_now();
    }
    assert_eq!(pools.stats_for("main").unwrap().max_size, 5);
    drop(hup);
}
