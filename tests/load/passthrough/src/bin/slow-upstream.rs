//! A fixed-answer HTTP/1.1 upstream that answers after a delay and counts what reaches it,
//! for `tests/load/cache.sh` (the cached-vs-uncached and herd-at-expiry measurements).
//!
//! ```text
//! slow-upstream LISTEN BODY_FILE DELAY_MS     e.g. slow-upstream 127.0.0.1:18101 result.json 20
//! ```
//!
//! Every request (any method, any path; a `Content-Length` or chunked body is read and
//! discarded) is answered `200 application/json` with the file's bytes, `DELAY_MS` after its
//! head arrived, on a keep-alive connection. One thread per connection, blocking I/O: the
//! delay is a `sleep`, so 64 connections cost 64 idle threads, not CPU (at 20 ms the ceiling
//! is 50 req/s per connection, far below what a thread can do).
//!
//! `GET /web/health` (BridgeCore's health check) is answered but not counted. `GET /__arrivals`
//! is not counted either: it returns the arrival times (microseconds since start,
//! one per line) of the requests counted since the previous `/__arrivals`, and forgets them.
//! The herd measurement groups them into bursts (one burst per cache expiry).
//!
//! Standard library only, so the workspace needs no new dependency. Stop it with SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Shared {
    body: Vec<u8>,
    delay: Duration,
    start: Instant,
    arrivals: Mutex<Vec<u64>>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: slow-upstream LISTEN BODY_FILE DELAY_MS";
    let listen = args.next().ok_or(usage)?;
    let body = std::fs::read(args.next().ok_or(usage)?)?;
    let delay = Duration::from_millis(args.next().ok_or(usage)?.parse()?);
    let shared = Arc::new(Shared {
        body,
        delay,
        start: Instant::now(),
        arrivals: Mutex::new(Vec::with_capacity(1 << 16)),
    });
    let listener = TcpListener::bind(&listen)?;
    eprintln!("slow-upstream: {listen}, {} ms", delay.as_millis());
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            let _ = serve(conn, &shared);
        });
    }
    Ok(())
}

/// Serves one keep-alive connection until the peer closes it (or sends garbage).
fn serve(conn: TcpStream, shared: &Shared) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut out = conn.try_clone()?;
    let mut rd = BufReader::with_capacity(64 * 1024, conn);
    let mut line = String::new();
    loop {
        // Request line.
        line.clear();
        if rd.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let arrived = shared.start.elapsed();
        let stats = line.starts_with("GET /__arrivals ");
        // BridgeCore's upstream health checks are not traffic: answered, not counted.
        let counted = !stats && !line.starts_with("GET /web/health ");
        // Headers.
        let (mut length, mut chunked, mut close) = (0usize, false, false);
        loop {
            line.clear();
            if rd.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let h = line.trim_end();
            if h.is_empty() {
                break;
            }
            let Some((name, value)) = h.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        // Body, discarded.
        if chunked {
            loop {
                line.clear();
                rd.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                    .unwrap_or(0);
                discard(&mut rd, size + 2)?; // the chunk and its CRLF (the trailer's for size 0)
                if size == 0 {
                    break;
                }
            }
        } else {
            discard(&mut rd, length)?;
        }
        let body: std::borrow::Cow<'_, [u8]> = if stats {
            let taken = std::mem::take(
                &mut *shared
                    .arrivals
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            let mut text = String::with_capacity(taken.len() * 10);
            for t in taken {
                text.push_str(&t.to_string());
                text.push('\n');
            }
            text.into_bytes().into()
        } else {
            if counted {
                shared
                    .arrivals
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(arrived.as_micros() as u64);
            }
            let wait = shared
                .delay
                .saturating_sub(shared.start.elapsed() - arrived);
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            shared.body.as_slice().into()
        };
        let ctype = if stats {
            "text/plain"
        } else {
            "application/json"
        };
        let mut resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        )
        .into_bytes();
        resp.extend_from_slice(&body);
        out.write_all(&resp)?;
        if close {
            return Ok(());
        }
    }
}

fn discard(rd: &mut impl Read, n: usize) -> std::io::Result<()> {
    let copied = std::io::copy(&mut rd.take(n as u64), &mut std::io::sink())?;
    if copied < n as u64 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}
