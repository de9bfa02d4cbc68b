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
        let start = buf.len();
        if serde_json::to_writer(&mut *buf, line).is_err() {
            buf.truncate(start);
            return false;
        }
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
