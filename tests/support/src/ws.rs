//! `/websocket`: handshake validation (odoo-protocol.md §8.2) and a tiny bus.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Uri};
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::data::OdooVersion;
use crate::server::{add_header, cookie, lock, resp, Resp, State};
use crate::Port;

/// The 18.0 worker version expected in `?version=`.
pub const WS_VERSION_18: &str = "18.0-5";

fn text(status: u16, body: &str) -> Resp {
    resp(status, "text/html; charset=utf-8", body.to_string())
}

pub(crate) fn upgrade(
    state: &Arc<State>,
    port: Port,
    headers: &HeaderMap,
    uri: &Uri,
    req: &mut Request<Incoming>,
) -> Resp {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let required = [
        "connection",
        "host",
        "sec-websocket-key",
        "sec-websocket-version",
        "upgrade",
        "origin",
    ];
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|n| h(n).is_empty())
        .collect();
    if !missing.is_empty() {
        return text(
            400,
            &format!("Empty or missing header(s): {}", missing.join(", ")),
        );
    }
    if !h("upgrade").eq_ignore_ascii_case("websocket") {
        return text(
            400,
            "Invalid value for header 'upgrade': expected 'websocket'",
        );
    }
    if !h("connection")
        .to_ascii_lowercase()
        .split(',')
        .any(|t| t.trim() == "upgrade")
    {
        return text(
            400,
            "Invalid value for header 'connection': expected 'upgrade'",
        );
    }
    if h("sec-websocket-version") != "13" {
        let mut r = text(426, "Unsupported websocket version");
        add_header(&mut r, "sec-websocket-version", "13");
        return r;
    }
    let key = h("sec-websocket-key");
    let key_ok = base64::engine::general_purpose::STANDARD
        .decode(key.as_bytes())
        .map(|k| k.len() == 16)
        .unwrap_or(false);
    if !key_ok {
        return text(
            400,
            "Sec-WebSocket-Key should be b64 encoded 16 bytes nonce",
        );
    }
    if port == Port::Http && !state.ws_on_http.load(Ordering::Relaxed) {
        return resp(
            400,
            "text/plain; charset=utf-8",
            "Couldn't bind the websocket. Is the connection opened on the evented port (8072)?",
        );
    }
    let session = cookie(headers, "session_id");
    let uid = session
        .as_ref()
        .and_then(|sid| lock(&state.sessions).get(sid).and_then(|s| s.uid));
    let version = lock(&state.data).version;
    let query_version = uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("version=").map(str::to_string));
    let outdated = version == OdooVersion::V18
        && headers.contains_key("user-agent")
        && query_version.as_deref() != Some(WS_VERSION_18);

    let on_upgrade = hyper::upgrade::on(req);
    let st = state.clone();
    tokio::spawn(async move {
        if let Ok(up) = on_upgrade.await {
            run_socket(st, TokioIo::new(up), session, uid, outdated).await;
        }
    });
    let mut r = resp(101, "", Bytes::new());
    add_header(&mut r, "upgrade", "websocket");
    add_header(&mut r, "connection", "Upgrade");
    add_header(
        &mut r,
        "sec-websocket-accept",
        &derive_accept_key(key.as_bytes()),
    );
    r
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_string().into(),
    }))
}

async fn run_socket<S>(
    state: Arc<State>,
    io: S,
    sid: Option<String>,
    uid: Option<i64>,
    outdated: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let cfg = WebSocketConfig::default()
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20));
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(cfg)).await;
    if outdated {
        let _ = ws.send(close(1000, "OUTDATED_VERSION")).await;
        return;
    }
    let mut rx = state.bus_tx.subscribe();
    let mut channels: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            msg = ws.next() => {
                let msg = match msg {
                    None => break,
                    Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(_))) => {
                        let _ = ws.send(close(1009, "MESSAGE_TOO_BIG")).await;
                        break;
                    }
                    Some(Err(_)) => break,
                    Some(Ok(m)) => m,
                };
                match msg {
                    Message::Text(t) => {
                        let t = t.to_string();
                        lock(&state.ws_frames).push(t.clone());
                        // session re-check on every message
                        if let (Some(sid), Some(uid)) = (&sid, uid) {
                            let still = lock(&state.sessions).get(sid).and_then(|s| s.uid) == Some(uid);
                            if !still {
                                let _ = ws.send(close(4001, "SESSION_EXPIRED")).await;
                                break;
                            }
                        }
                        let parsed: Option<Value> = serde_json::from_str(&t).ok();
                        let Some(Value::Object(ev)) = parsed else {
                            let _ = ws.send(close(1003, "Invalid JSON")).await;
                            break;
                        };
                        let name = ev.get("event_name").and_then(Value::as_str).unwrap_or("");
                        let data = ev.get("data").cloned().unwrap_or(Value::Null);
                        let reply = if name == "subscribe" {
                            let chans = data.get("channels").and_then(Value::as_array).cloned().unwrap_or_default();
                            if !chans.iter().all(Value::is_string) {
                                let _ = ws.send(close(1011, "bus.Bus only string channels are allowed.")).await;
                                break;
                            }
                            channels = chans.iter().filter_map(|c| c.as_str().map(str::to_string)).collect();
                            let last = data.get("last").and_then(Value::as_i64).unwrap_or(0);
                            json!([{"id": last + 1, "message": {"type": "bus.subscribed", "payload": {"channels": chans, "uid": uid}}}])
                        } else {
                            let id = state.bus_id.fetch_add(1, Ordering::Relaxed) + 1;
                            json!([{"id": id, "message": {"type": "echo", "payload": data}}])
                        };
                        if ws.send(Message::text(reply.to_string())).await.is_err() {
                            break;
                        }
                    }
                    Message::Binary(_) => {
                        let _ = ws.send(close(1003, "UNSUPPORTED_DATA")).await;
                        break;
                    }
                    // tungstenite queued the pong; push it out
                    Message::Ping(_) if ws.flush().await.is_err() => break,
                    Message::Close(_) => {
                        let _ = ws.flush().await;
                        break;
                    }
                    _ => {}
                }
            }
            n = rx.recv() => match n {
                Ok(m) => {
                    if m.channel == "broadcast" || channels.contains(&m.channel) {
                        let frame = json!([{"id": m.id, "message": m.message}]);
                        if ws.send(Message::text(frame.to_string())).await.is_err() {
                            break;
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
    }
}
