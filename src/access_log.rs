//! The access log: one JSON line per request on standard output.
//!
//! Requests append their line to a shared in-memory buffer; a writer thread swaps the buffer out
//! and writes it every [`FLUSH_EVERY`]. Requests never wait for the terminal or pipe, and never
//! wake another thread per line (a hand-off per line cost ~20 µs of scheduling per request in
//! the load benchmark). If the writer falls behind by more than [`MAX_PENDING`] bytes, lines are
//! dropped and counted (`bridgecore_access_log_dropped_total`) rather than stalling requests.

use std::io::Write;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

/// How often buffered lines are written out.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// The most bytes waiting to be written before new lines are dropped.
pub const MAX_PENDING: usize = 8 * 1024 * 1024;

fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

/// One request, as logged.
#[derive(Debug, Serialize)]
pub struct AccessLine<'a> {
    /// RFC 3339 UTC time the request started.
    #[serde(serialize_with = "rfc3339")]
    pub ts: SystemTime,
    /// `X-Request-Id`.
    pub request_id: &'a str,
    /// Tenant name, if routed.
    pub tenant: Option<&'a str>,
    /// The client address (trusted-proxy aware).
    pub client_ip: Option<IpAddr>,
    /// HTTP method.
    pub method: &'a str,
    /// Path without the query string (queries can carry tokens).
    pub path: &'a str,
    /// Status sent to the client (0 when none was sent).
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: usize,
    /// Whole-request time.
    pub duration_ms: f64,
    /// Time spent on Odoo, when the request reached it.
    pub upstream_ms: Option<f64>,
    /// Cache outcome, when the response cache looked at the call.
    pub cache: Option<&'a str>,
    /// The RPC model, when the request was a parsed call.
    pub model: Option<&'a str>,
    /// The RPC method.
    pub rpc_method: Option<&'a str>,
    /// The uid, when known (external RPC carries it; tokens name it).
    pub uid: Option<i64>,
    /// Who answered, when BridgeCore answered itself.
    pub answered_by: Option<&'a str>,
    /// The error that ended the request, if any.
    pub error: Option<String>,
}

impl AccessLine<'_> {
    /// Appends the line as JSON, byte for byte what `serde_json` writes for it (a test holds the
    /// two equal), but by hand: the derived serializer costs ~4k instructions per request, a
    /// tenth of what forwarding the request costs, mostly in formatting the time and the address
    /// through `fmt`. Values still go through serde_json (escaping, numbers, `null`).
    fn write_json(&self, out: &mut Vec<u8>) {
        // One growth at most: the fixed text is ~200 bytes, the values are the rest.
        out.reserve(256 + self.path.len() + self.request_id.len());
        out.extend_from_slice(b"{\"ts\":\"");
        write_ts(out, self.ts);
        out.push(b'"');
        str_field(out, name!("request_id"), Some(self.request_id));
        str_field(out, name!("tenant"), self.tenant);
        out.extend_from_slice(name!("client_ip"));
        match self.client_ip {
            Some(ip) => {
                out.push(b'"');
                bridgecore_filters::forwarded::push_ip_bytes(out, ip);
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        str_field(out, name!("method"), Some(self.method));
        str_field(out, name!("path"), Some(self.path));
        field(out, name!("status"), &self.status);
        field(out, name!("bytes"), &self.bytes);
        field(out, name!("duration_ms"), &self.duration_ms);
        field(out, name!("upstream_ms"), &self.upstream_ms);
        str_field(out, name!("cache"), self.cache);
        str_field(out, name!("model"), self.model);
        str_field(out, name!("rpc_method"), self.rpc_method);
        field(out, name!("uid"), &self.uid);
        str_field(out, name!("answered_by"), self.answered_by);
        field(out, name!("error"), &self.error);
        out.push(b'}');
    }
}

/// `,"name":` as bytes, made at compile time (one copy per field instead of three).
macro_rules! name {
    ($name:literal) => {
        concat!(",\"", $name, "\":").as_bytes()
    };
}
use name;

/// `,"name":value` (`key` from [`name!`]), the value as serde_json writes it (which cannot fail
/// into a `Vec`).
fn field<T: Serialize + ?Sized>(out: &mut Vec<u8>, key: &[u8], value: &T) {
    out.extend_from_slice(key);
    let _ = serde_json::to_writer(out, value);
}

/// [`field`] for text: text with nothing to escape (no quote, backslash or control character:
/// paths, ids, names as they come) is copied as is, which is what serde_json writes for it.
fn str_field(out: &mut Vec<u8>, key: &[u8], text: Option<&str>) {
    match text {
        Some(text) if !bridgecore_filters::json::needs_escape(text.as_bytes()) => {
            out.extend_from_slice(key);
            out.push(b'"');
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
        }
        _ => field(out, key, &text),
    }
}

/// `t` as `humantime::format_rfc3339_millis` writes it (`2026-11-30T21:58:01.123Z`): the part up
/// to the seconds is formatted once per second per thread and reused.
fn write_ts(out: &mut Vec<u8>, t: SystemTime) {
    use std::cell::RefCell;
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    // A clock before 1970 logs as 1970 (humantime would panic on it).
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with_borrow_mut(|(at, text)| {
        if *at != secs {
            let whole = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            // `YYYY-MM-DDTHH:MM:SSZ`: everything but the `Z`.
            let mut s = humantime::format_rfc3339_seconds(whole).to_string();
            s.pop();
            *text = s;
            *at = secs;
        }
        out.extend_from_slice(text.as_bytes());
    });
    let ms = since.subsec_millis();
    // `ms` < 1000, so each digit fits in a u8.
    #[allow(clippy::cast_possible_truncation)]
    out.extend_from_slice(&[
        b'.',
        b'0' + (ms / 100) as u8,
        b'0' + (ms / 10 % 10) as u8,
        b'0' + (ms % 10) as u8,
        b'Z',
    ]);
}

/// A handle to the buffer and its writer thread.
#[derive(Clone)]
pub struct AccessLog {
    pending: Option<Arc<Mutex<Vec<u8>>>>,
    writer: Arc<std::sync::Once>,
}

impl AccessLog {
    /// The buffer; its writer thread starts with the services ([`AccessLog::start_writer`]).
    /// `enabled: false` gives a handle that drops every line.
    pub fn start(enabled: bool) -> Self {
        AccessLog {
            pending: enabled.then(|| Arc::new(Mutex::new(Vec::with_capacity(64 * 1024)))),
            writer: Arc::new(std::sync::Once::new()),
        }
    }

    /// Starts the writer thread, once. Called when the server's services start, not when
    /// BridgeCore is built: `-d` forks in between, and a thread does not survive a fork.
    pub fn start_writer(&self) {
        let Some(pending) = &self.pending else {
            return;
        };
        let shared = Arc::downgrade(pending);
        self.writer.call_once(move || {
            let spawned = std::thread::Builder::new()
                .name("bridgecore-access-log".into())
                .spawn(move || {
                    let mut out = Vec::with_capacity(64 * 1024);
                    // Ends when every AccessLog handle is gone, after a last flush.
                    while let Some(pending) = shared.upgrade() {
                        drain(&pending, &mut out);
                        drop(pending);
                        std::thread::sleep(FLUSH_EVERY);
                    }
                });
            if let Err(e) = spawned {
                log::error!("cannot start the access-log writer: {e}");
            }
        });
    }

    pub fn write(&self, line: &AccessLine<'_>) -> bool {
        let Some(pending) = &self.pending else {
            return true;
        };
        let Ok(mut buf) = pending.lock() else {
            return false;
        };
        if buf.len() > MAX_PENDING {
            return false;
        }
        line.write_json(&mut buf);
        buf.push(b'\n');
        true
    }

    /// Writes out whatever is buffered now (at shutdown).
    pub fn flush(&self) {
        if let Some(pending) = &self.pending {
            drain(pending, &mut Vec::new());
        }
    }
}

/// Swaps the pending lines out (holding the lock only for the swap) and writes them.
fn drain(pending: &Mutex<Vec<u8>>, out: &mut Vec<u8>) {
    out.clear();
    if let Ok(mut buf) = pending.lock() {
        std::mem::swap(&mut *buf, out);
    }
    if !out.is_empty() {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(out);
        let _ = stdout.flush();
    }
}

/// Writes the buffered access log out when the server shuts down.
pub struct FlushAtShutdown(pub AccessLog);

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for FlushAtShutdown {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        self.0.start_writer();
        let _ = shutdown.changed().await;
        let log = self.0.clone();
        let _ = tokio::task::spawn_blocking(move || log.flush()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ts: SystemTime, all: bool) -> AccessLine<'static> {
        AccessLine {
            ts,
            request_id: "0123456789abcdef0123456789abcdef",
            tenant: all.then_some("acme"),
            client_ip: if all {
                Some("10.1.200.7".parse().unwrap())
            } else {
                Some("2001:db8::1".parse().unwrap())
            },
            method: "POST",
            // Text with something to escape, and text copied as is (DEL and UTF-8 included).
            path: if all {
                "/web/dataset/call_kw/res.partner/web_search_read\"\\\u{1}é"
            } else {
                "/web/dataset/call_kw/res.partner/web_search_read\u{7f}é"
            },
            status: 200,
            bytes: 12_172,
            duration_ms: 0.412_345_678,
            upstream_ms: all.then_some(1e-7),
            cache: all.then_some("MISS"),
            model: all.then_some("res.partner"),
            rpc_method: None,
            uid: all.then_some(-2),
            answered_by: None,
            error: all.then(|| "Peer: addr: 127.0.0.1:8069 \n closed".to_owned()),
        }
    }

    #[test]
    fn lines_are_what_serde_json_writes() {
        let now = SystemTime::now();
        let times = [
            now,
            SystemTime::UNIX_EPOCH,
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_798_675_200_007),
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_798_675_200_999),
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_798_675_201_050),
        ];
        for ts in times {
            for all in [true, false] {
                let line = line(ts, all);
                let mut ours = Vec::new();
                line.write_json(&mut ours);
                let theirs = serde_json::to_vec(&line).unwrap();
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    String::from_utf8(theirs).unwrap()
                );
            }
        }
        let mut nan = line(now, false);
        nan.duration_ms = f64::NAN;
        let mut ours = Vec::new();
        nan.write_json(&mut ours);
        assert_eq!(ours, serde_json::to_vec(&nan).unwrap());
    }
}
