//! The accept loop and the clients: one thread per client, at most `MAX_CLIENTS`, bounded
//! lines and timeouts, so that no client can hold up the loop or the application.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::{commands, socket, AdminServer, Source, CLIENT_TIMEOUT, MAX_CLIENTS, MAX_LINE};
use crate::error::{Error, Result};
use crate::pools::Pools;

pub(super) fn start(pools: &Pools, path: &Path, source: Source) -> Result<AdminServer> {
    let (listener, identity) = socket::bind(path)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let pools = pools.clone();
    let clients = Arc::new(AtomicUsize::new(0));
    let thread = std::thread::Builder::new()
        .name("litepool-admin".into())
        .spawn(move || accept(&listener, &pools, &source, &flag, &clients))
        .map_err(|source| Error::Io {
            path: "admin socket thread".into(),
            source,
        })?;
    crate::pool::COUNT_WAITING.fetch_add(1, Ordering::Relaxed);
    tracing::info!(path = %path.display(), "admin socket served");
    Ok(AdminServer {
        path: path.to_owned(),
        stop,
        thread: Some(thread),
        identity,
    })
}

fn accept(
    listener: &UnixListener,
    pools: &Pools,
    source: &Source,
    stop: &AtomicBool,
    clients: &Arc<AtomicUsize>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "admin socket: accept failed");
                // EMFILE and the like: give the process a moment rather than spin.
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
        };
        if clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            clients.fetch_sub(1, Ordering::SeqCst);
            // Never blocks the loop: the line fits in the socket's buffer, or is dropped.
            let mut s = stream;
            let _ = s.set_nonblocking(true);
            let _ = s.write_all(
                format!("error: too many clients ({MAX_CLIENTS} connected); try again later\n.\n")
                    .as_bytes(),
            );
            continue;
        }
        let (pools, source, count) = (pools.clone(), source.clone(), clients.clone());
        let spawned = std::thread::Builder::new()
            .name("litepool-admin-client".into())
            .spawn(move || {
                serve_client(stream, &pools, &source);
                count.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            clients.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(error = %e, "admin socket: no thread for a client");
        }
    }
}

/// Serves one client until it closes, times out, sends a line too long or not UTF-8.
fn serve_client(stream: UnixStream, pools: &Pools, source: &Source) {
    let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
    let _ = stream.set_write_timeout(Some(CLIENT_TIMEOUT));
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut out = std::io::BufWriter::new(write_half);
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_line(&mut reader, &mut line) {
            Line::Complete => {}
            Line::Closed => return,
            Line::TooLong => {
                let _ = answer(
                    &mut out,
                    &format!("error: request line longer than {MAX_LINE} bytes; closing the connection\n"),
                );
                return;
            }
        }
        let text = match std::str::from_utf8(&line) {
            Ok(t) => t.trim(),
            Err(_) => {
                let _ = answer(
                    &mut out,
                    "error: the request is not UTF-8; closing the connection\n",
                );
                return;
            }
        };
        if text.is_empty() {
            continue;
        }
        // Rendered in memory from a snapshot first; nothing is held while the client reads.
        let body = commands::run(text, pools, source);
        if answer(&mut out, &body).is_err() {
            return;
        }
    }
}

enum Line {
    Complete,
    /// End of input, an error, or [`CLIENT_TIMEOUT`] spent on the line (a client sending a byte
    /// now and then does not keep its slot).
    Closed,
    TooLong,
}

/// Reads one line (with its `\n`) of at most [`MAX_LINE`] bytes, within [`CLIENT_TIMEOUT`].
fn read_line(reader: &mut BufReader<UnixStream>, line: &mut Vec<u8>) -> Line {
    let deadline = std::time::Instant::now() + CLIENT_TIMEOUT;
    loop {
        let buf = match reader.fill_buf() {
            Ok([]) | Err(_) => return Line::Closed,
            Ok(buf) => buf,
        };
        let room = MAX_LINE - line.len();
        let take = buf.len().min(room);
        match buf[..take].iter().position(|&b| b == b'\n') {
            Some(i) => {
                line.extend_from_slice(&buf[..=i]);
                reader.consume(i + 1);
                return Line::Complete;
            }
            None => {
                line.extend_from_slice(&buf[..take]);
                reader.consume(take);
            }
        }
        if line.len() >= MAX_LINE {
            return Line::TooLong;
        }
        if std::time::Instant::now() >= deadline {
            return Line::Closed;
        }
    }
}

/// Writes `body` (lines) with dot-stuffing and the final `.` line.
fn answer(out: &mut impl Write, body: &str) -> std::io::Result<()> {
    for line in body.lines() {
        if line.starts_with('.') {
            out.write_all(b".")?;
        }
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.write_all(b".\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::answer;

    #[test]
    fn an_answer_ends_with_a_dot_line_and_its_lines_that_begin_with_a_dot_get_one_more() {
        let mut out = Vec::new();
        answer(&mut out, "a\n.b\n..\nc").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a\n..b\n...\nc\n.\n");
        let mut out = Vec::new();
        answer(&mut out, "").unwrap();
        assert_eq!(out, b".\n");
    }
}
