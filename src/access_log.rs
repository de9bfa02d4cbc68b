//! The access log: one JSON line per request on standard output.
//!
//! Lines are handed to a dedicated writer thread through a bounded channel, so a slow terminal
//! or pipe never blocks the proxy's async workers; when the channel is full the line is dropped
//! and counted (`bridgecore_access_log_dropped_total`) rather than stalling requests.

use std::io::Write;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};

use serde::Serialize;

/// One request, as logged.
#[derive(Debug, Serialize)]
pub struct AccessLine<'a> {
    /// RFC 3339 UTC time the request started.
    pub ts: String,
    /// `X-Request-Id`.
    pub request_id: &'a str,
    /// Tenant name, if routed.
    pub tenant: Option<&'a str>,
    /// The client address (trusted-proxy aware).
    pub client_ip: Option<String>,
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

/// A handle to the writer thread.
#[derive(Clone)]
pub struct AccessLog {
    tx: Option<SyncSender<Vec<u8>>>,
}

impl AccessLog {
    /// Starts the writer thread. `enabled: false` gives a handle that drops every line.
    pub fn start(enabled: bool) -> Self {
        if !enabled {
            return AccessLog { tx: None };
        }
        let (tx, rx) = sync_channel::<Vec<u8>>(16 * 1024);
        let spawned = std::thread::Builder::new()
            .name("bridgecore-access-log".into())
            .spawn(move || {
                let stdout = std::io::stdout();
                while let Ok(line) = rx.recv() {
                    let mut out = stdout.lock();
                    let _ = out.write_all(&line);
                    // Write whatever else is queued before flushing once.
                    while let Ok(more) = rx.try_recv() {
                        let _ = out.write_all(&more);
                    }
                    let _ = out.flush();
                }
            });
        AccessLog {
            tx: spawned.ok().map(|_| tx),
        }
    }

    /// Queues a line; returns `false` when it had to be dropped.
    pub fn write(&self, line: &AccessLine<'_>) -> bool {
        let Some(tx) = &self.tx else { return true };
        let mut buf = match serde_json::to_vec(line) {
            Ok(b) => b,
            Err(_) => return false,
        };
        buf.push(b'\n');
        match tx.try_send(buf) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
        }
    }
}
