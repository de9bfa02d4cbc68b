//! One `/api/v1/ws` connection (pingora-notes.md §5, option 1, in a leaner form).
//!
//! `request_filter` checks the handshake, then takes the connection's stream out of Pingora's
//! session (see [`serve`]) and serves it on a task of its own: an idle socket then costs its
//! stream, a small task and a few buffers, not a whole Pingora request. The WebSocket framing
//! is tungstenite's, run over an in-memory pipe: bytes read from the stream are fed to it,
//! frames it writes are taken from the pipe and written to the stream. Its read buffer starts at
//! 1 KiB and grows only for large frames, which `websocket.max_message_size` bounds.
//!
//! One loop per connection waits on: the client's bytes, the outgoing queue (filled by the
//! dispatcher), answers of subscription checks (run on their own tasks, so a slow Odoo never
//! stalls the socket), the ping timer (which also re-checks the token's session), the
//! deadline (no token yet, or the token's expiry), a close request (slow consumer, limits)
//! and shutdown.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bridgecore_filters::auth::{Claims, Scopes};
use bridgecore_filters::error::api_error;
use bridgecore_filters::ws::protocol::{self, close, ClientMessage, ErrorCode, Limits, Subscribe};
use bridgecore_filters::{Category, Reply};
use bytes::{Buf, Bytes, BytesMut};
use http::{header, HeaderValue, Method};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::proxy::Session;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, Utf8Bytes, WebSocket};

use super::{odoo, Conn, Sub};
use crate::config::WebsocketConfig;
use crate::sessions::LoginSession;
use crate::Shared;

/// Subscription checks one socket may have running at once.
const MAX_PENDING: usize = 8;
/// How long a closing socket waits for the client's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// The tungstenite read buffer's starting size.
const READ_BUFFER: usize = 1024;
/// Room made for each read from the client.
const READ_CHUNK: usize = 1024;

/// A valid handshake: the accept key, and the token the request carried, if any.
pub(crate) struct Handshake {
    accept: String,
    token: Option<String>,
}

fn refuse(status: u16, detail: &str) -> Reply {
    Reply::json(status, api_error(detail))
}

/// Checks the upgrade request. A request that is not a WebSocket handshake gets the answer to
/// send instead (426, 405, 400).
pub(crate) fn handshake(req: &RequestHeader) -> Result<Handshake, Reply> {
    if req.method != Method::GET {
        return Err(refuse(405, "method not allowed: open a WebSocket with GET")
            .with_header(header::ALLOW, HeaderValue::from_static("GET")));
    }
    let has_token = |name: header::HeaderName, token: &str| {
        req.headers.get_all(name).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        return Err(refuse(
            426,
            "this endpoint is a WebSocket: connect with `Upgrade: websocket` over HTTP/1.1",
        )
        .with_header(header::UPGRADE, HeaderValue::from_static("websocket")));
    }
    let version_ok = req
        .headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    if !version_ok {
        return Err(
            refuse(426, "unsupported WebSocket version: use 13").with_header(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            ),
        );
    }
    let key = req
        .headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(HeaderValue::as_bytes)
        .filter(|k| k.len() == 24)
        .ok_or_else(|| refuse(400, "missing or invalid Sec-WebSocket-Key"))?;
    let header_token = match crate::gate::presented_token(&req.headers, false) {
        Ok(t) => t.map(str::to_owned),
        Err(r) => return Err(refuse(r.kind.status(), r.detail)),
    };
    let query_token = req.uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty())
    });
    Ok(Handshake {
        accept: tungstenite::handshake::derive_accept_key(key),
        token: header_token.or(query_token),
    })
}

/// Bytes between the session and tungstenite.
#[derive(Default)]
struct Pipe {
    input: BytesMut,
    output: BytesMut,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input.advance(n);
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Who the socket is, once authenticated.
struct Auth {
    tenant: String,
    uid: i64,
    claims: Arc<Claims>,
    session: Arc<LoginSession>,
}

/// Why authentication failed: the close to send (or, for a re-authentication, the error).
struct AuthFailure {
    code: u16,
    error: ErrorCode,
    message: String,
    label: &'static str,
}

/// Answer of a subscription check.
struct Checked {
    request_id: Option<Value>,
    number: u64,
    sub: Subscribe,
    result: Result<(), odoo::Refused>,
}

/// Client message flood control: a token bucket at `websocket.message_rate`; messages over it
/// are answered `rate_limited` (once per window), and more than [`FLOOD_FACTOR`] times the
/// rate refused within one window closes the socket.
struct Flood {
    allowance: f64,
    burst: f64,
    per_sec: f64,
    last: Instant,
    window: Duration,
    window_start: Instant,
    refused: u64,
    limit: u64,
}

const FLOOD_FACTOR: u64 = 4;

enum Verdict {
    Ok,
    Limited { first: bool },
    Close,
}

impl Flood {
    fn new(rate: bridgecore_filters::units::Rate) -> Self {
        let count = rate.count.max(1) as f64;
        let window = rate.per.max(Duration::from_millis(1));
        let now = Instant::now();
        Flood {
            allowance: count,
            burst: count,
            per_sec: count / window.as_secs_f64(),
            last: now,
            window,
            window_start: now,
            refused: 0,
            limit: rate.count.max(1) * FLOOD_FACTOR,
        }
    }

    fn hit(&mut self) -> Verdict {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.allowance = (self.allowance + dt * self.per_sec).min(self.burst);
        if self.allowance >= 1.0 {
            self.allowance -= 1.0;
            return Verdict::Ok;
        }
        if now.duration_since(self.window_start) > self.window {
            self.window_start = now;
            self.refused = 0;
        }
        self.refused += 1;
        if self.refused > self.limit {
            Verdict::Close
        } else {
            Verdict::Limited {
                first: self.refused == 1,
            }
        }
    }
}

/// Reads what the client sent into `buf` (0: the client closed). Cancel-safe: either bytes
/// were read into `buf`, or nothing happened.
async fn read_some(stream: &mut Stream, buf: &mut BytesMut) -> io::Result<usize> {
    if buf.capacity() - buf.len() < READ_CHUNK {
        buf.reserve(READ_CHUNK);
    }
    stream.read_buf(buf).await
}

/// Writes and flushes (Pingora's stream buffers small writes).
async fn write_all(stream: &mut Stream, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A close reason fits a control frame (125 bytes with the code).
fn short(reason: &str) -> String {
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

/// Takes the connection over from Pingora and serves it on a task of its own.
///
/// Pingora keeps a large per-request state (its request future, the session's 64 KiB body
/// buffer) for as long as a request runs; ten thousand idle sockets would hold ten thousand of
/// them. So once the handshake is checked, the connection's stream is taken out of the session
/// (a stand-in session with the same request line takes its place, for the access log and
/// metrics), the 101 is written on it directly, and a small task serves the socket while the
/// request ends normally. A client sends nothing before the 101 (RFC 6455 §4.1), so no byte is
/// left behind in the session.
pub(crate) async fn serve(
    shared: &Arc<Shared>,
    session: &mut Session,
    hs: Handshake,
) -> pingora::Result<()> {
    let path = session.req_header().uri.path().to_owned();
    let mut head = ResponseHeader::build(101, Some(3))?;
    head.insert_header(header::UPGRADE, "websocket")?;
    head.insert_header(header::CONNECTION, "Upgrade")?;
    head.insert_header(header::SEC_WEBSOCKET_ACCEPT, hs.accept.as_str())?;
    let mut stand_in = ServerSession::new_http1(Box::new(std::io::Cursor::new(
        format!(
            "GET {path} HTTP/1.1\r\nHost: bridgecore\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        )
        .into_bytes(),
    )));
    stand_in.read_request().await?;
    stand_in.set_keepalive(None);
    stand_in
        .write_response_header(Box::new(head.clone()))
        .await?;
    let real = std::mem::replace(&mut session.downstream_session, Box::new(stand_in));
    let stream = match *real {
        ServerSession::H1(h1) => h1.into_inner(),
        other => {
            // Not reachable (only HTTP/1.1 carries Upgrade); give the session back.
            *session.downstream_session = other;
            return pingora::Error::e_explain(
                pingora::ErrorType::InternalError,
                "a WebSocket needs an HTTP/1.1 connection",
            );
        }
    };
    let mut wire = Vec::with_capacity(160);
    wire.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
    for (name, value) in head.headers.iter() {
        wire.extend_from_slice(name.as_str().as_bytes());
        wire.extend_from_slice(b": ");
        wire.extend_from_slice(value.as_bytes());
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"\r\n");
    drop(head);
    tokio::spawn(run(shared.clone(), stream, wire, hs.token));
    Ok(())
}

/// Serves one socket, from the 101 to its close.
async fn run(shared: Arc<Shared>, stream: Stream, handshake: Vec<u8>, token: Option<String>) {
    let cfg = shared.runtime.load().config.websocket;
    let limit = usize::try_from(cfg.max_message_size).unwrap_or(usize::MAX);
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit));
    let conn = shared.ws.open(cfg.queue_size);
    let (ctl_tx, ctl_rx) = mpsc::channel(MAX_PENDING);
    let now = Instant::now();
    let mut socket = Socket {
        shared: shared.clone(),
        stream,
        conn: conn.clone(),
        ctl_tx,
        ctl_rx,
        ws: WebSocket::from_raw_socket(Pipe::default(), Role::Server, Some(ws_config)),
        cfg,
        auth: None,
        deadline: now + cfg.auth_timeout,
        subs: HashMap::new(),
        next_sub: 1,
        pending: 0,
        flood: Flood::new(cfg.message_rate),
        last_heard: now,
    };
    let label = match socket.send(Bytes::from(handshake)).await {
        Ok(()) => socket.run(token).await,
        Err(end) => end,
    };
    shared.ws.close(conn.id);
    if label != "slow_consumer" {
        // Slow consumers are counted when their queue overflows.
        shared.ws.metrics.closed.with_label_values(&[label]).inc();
    }
    // The client's close (or ours) is done: end the TCP connection cleanly.
    let _ = tokio::time::timeout(CLOSE_WAIT, socket.stream.shutdown()).await;
}

struct Socket {
    shared: Arc<Shared>,
    /// The connection, taken from Pingora.
    stream: Stream,
    conn: Arc<Conn>,
    /// Answers of subscription checks (boxed: a channel allocates room for 32 of them).
    ctl_tx: mpsc::Sender<Box<Checked>>,
    ctl_rx: mpsc::Receiver<Box<Checked>>,
    ws: WebSocket<Pipe>,
    cfg: WebsocketConfig,
    auth: Option<Auth>,
    /// No token yet: the auth deadline; authenticated: the token's expiry.
    deadline: Instant,
    /// Subscription ids → their numbers.
    subs: HashMap<String, u64>,
    next_sub: u64,
    pending: usize,
    flood: Flood,
    last_heard: Instant,
}

/// What ends the loop: the `bridgecore_ws_closed_total` label.
type End = &'static str;

impl Socket {
    async fn run(&mut self, token: Option<String>) -> End {
        if let Some(token) = token {
            if let Err(f) = self.authenticate(&token).await {
                return self.close(f.code, &f.message, f.label).await;
            }
            self.authenticated(None);
            if self.flush().await.is_err() {
                return "gone";
            }
        }
        let mut shutdown = self.shared.ws.shutdown.subscribe();
        if *shutdown.borrow() {
            return self
                .close(close::GOING_AWAY, "server shutting down", "shutdown")
                .await;
        }
        let every = self.cfg.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + every, every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Some(req) = self.conn.take_close() {
                return self.close(req.code, &req.reason, req.label).await;
            }
            let queued = self.conn.take_queued();
            if !queued.is_empty() {
                for text in queued {
                    self.write(Message::Text(text));
                }
                if let Err(end) = self.flush().await {
                    return end;
                }
                // Others may have queued more meanwhile, or asked for a close.
                continue;
            }
            let deadline = self.deadline;
            tokio::select! {
                biased;
                _ = self.conn.kick.notified() => {}
                _ = shutdown.changed() => {
                    return self
                        .close(close::GOING_AWAY, "server shutting down: reconnect", "shutdown")
                        .await;
                }
                read = read_some(&mut self.stream, &mut self.ws.get_mut().input) => match read {
                    Ok(n) if n > 0 => {
                        self.last_heard = Instant::now();
                        if let Some(end) = self.on_input().await {
                            return end;
                        }
                    }
                    _ => return "gone",
                },
                Some(checked) = self.ctl_rx.recv() => {
                    if let Some(end) = self.on_checked(checked).await {
                        return end;
                    }
                }
                _ = ping.tick() => {
                    if let Some(end) = self.on_tick().await {
                        return end;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let (reason, label) = if self.auth.is_some() {
                        ("token expired: authenticate again with a fresh token ({\"type\": \"auth\"}) before it expires, or reconnect", "expired")
                    } else {
                        ("no token: send `Authorization: Bearer <token>`, `?token=` or {\"type\": \"auth\", \"token\": …} first", "auth")
                    };
                    return self.close(close::UNAUTHORIZED, reason, label).await;
                }
            }
        }
    }

    /// Buffers a frame (the pipe never blocks; tungstenite only refuses after a close).
    fn write(&mut self, message: Message) {
        if let Err(e) = self.ws.write(message) {
            log::debug!("websocket: frame not written: {e}");
        }
    }

    fn reply(&mut self, text: String) {
        self.write(Message::Text(Utf8Bytes::from(text)));
    }

    /// Writes what tungstenite produced to the client, within `send_timeout`.
    async fn flush(&mut self) -> Result<(), End> {
        let _ = self.ws.flush();
        let out = self.ws.get_mut().output.split().freeze();
        if out.is_empty() {
            return Ok(());
        }
        self.send(out).await
    }

    async fn send(&mut self, out: Bytes) -> Result<(), End> {
        match tokio::time::timeout(self.cfg.send_timeout, write_all(&mut self.stream, &out)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err("gone"),
            Err(_) => Err("send_timeout"),
        }
    }

    /// Reads the frames that arrived; answers and closes as they require.
    async fn on_input(&mut self) -> Option<End> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    if let Some(end) = self.on_text(text.as_str()).await {
                        return Some(end);
                    }
                }
                Ok(Message::Binary(_)) => {
                    return Some(
                        self.close(
                            close::UNSUPPORTED,
                            "binary frames are not supported: send JSON text frames",
                            "binary",
                        )
                        .await,
                    );
                }
                Ok(Message::Ping(_)) => {
                    if matches!(self.flood.hit(), Verdict::Close) {
                        return Some(self.close(close::POLICY, "message flood", "flood").await);
                    }
                }
                Ok(Message::Pong(_) | Message::Frame(_)) => {}
                Ok(Message::Close(_)) => {
                    // tungstenite queued the echo; send it and end.
                    let _ = self.flush().await;
                    return Some("client");
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Some("client");
                }
                Err(tungstenite::Error::Capacity(_)) => {
                    let reason = format!(
                        "message too large: at most {} bytes (websocket.max_message_size)",
                        self.cfg.max_message_size
                    );
                    return Some(self.close(close::TOO_BIG, &reason, "too_big").await);
                }
                Err(tungstenite::Error::Utf8) => {
                    return Some(
                        self.close(
                            close::INVALID_DATA,
                            "text frames must be valid UTF-8",
                            "invalid_utf8",
                        )
                        .await,
                    );
                }
                Err(e) => {
                    let reason = format!("protocol error: {e}");
                    return Some(self.close(close::PROTOCOL, &reason, "protocol").await);
                }
            }
        }
        self.flush().await.err()
    }

    async fn on_text(&mut self, text: &str) -> Option<End> {
        match self.flood.hit() {
            Verdict::Ok => {}
            Verdict::Limited { first } => {
                if first {
                    self.reply(protocol::error(
                        None,
                        ErrorCode::RateLimited,
                        "too many messages: slow down (further messages in this window are dropped)",
                    ));
                }
                return None;
            }
            Verdict::Close => {
                return Some(self.close(close::POLICY, "message flood", "flood").await);
            }
        }
        let limits = Limits {
            max_record_ids: self.cfg.max_record_ids,
            max_fields: Limits::default().max_fields,
        };
        let incoming = match protocol::parse(text, &limits) {
            Ok(i) => i,
            Err(e) => {
                self.reply(e.to_message());
                return None;
            }
        };
        let rid = incoming.request_id;
        match incoming.message {
            ClientMessage::Ping { timestamp } => {
                self.reply(protocol::pong(rid.as_ref(), timestamp.as_ref()));
            }
            ClientMessage::Auth { token } => {
                let first = self.auth.is_none();
                match self.authenticate(&token).await {
                    Ok(()) => self.authenticated(rid.as_ref()),
                    Err(f) if first => {
                        self.reply(protocol::error(rid.as_ref(), f.error, &f.message));
                        return Some(self.close(f.code, &f.message, f.label).await);
                    }
                    Err(f) => self.reply(protocol::error(rid.as_ref(), f.error, &f.message)),
                }
            }
            ClientMessage::Subscribe(sub) => self.subscribe(rid, sub),
            ClientMessage::Unsubscribe { subscription_id } => {
                let removed = self
                    .subs
                    .remove(&subscription_id)
                    .is_some_and(|n| self.shared.ws.unsubscribe(self.conn.id, n));
                if removed {
                    self.reply(protocol::unsubscribed(rid.as_ref(), &subscription_id));
                } else {
                    self.reply(protocol::error(
                        rid.as_ref(),
                        ErrorCode::UnknownSubscription,
                        "no subscription with this id on this connection",
                    ));
                }
            }
        }
        None
    }

    /// Verifies a token (first or fresher) and takes its identity.
    async fn authenticate(&mut self, token: &str) -> Result<(), AuthFailure> {
        let fail = |code, error, message: &str, label| AuthFailure {
            code,
            error,
            message: message.to_owned(),
            label,
        };
        let rt = self.shared.runtime.load_full();
        let authed = match crate::gate::authenticate(&self.shared, &rt, token).await {
            Ok(a) => a,
            Err(r) if r.kind == bridgecore_filters::ErrorKind::Unavailable => {
                return Err(fail(
                    close::TRY_AGAIN,
                    ErrorCode::Unavailable,
                    r.detail,
                    "auth",
                ));
            }
            Err(r) if r.detail == "token authentication is not configured on this server" => {
                return Err(fail(
                    close::UNAUTHORIZED,
                    ErrorCode::Unavailable,
                    "live updates need token authentication, which is not configured on this server (auth.jwt)",
                    "auth",
                ));
            }
            Err(r) => {
                crate::api::count_refusal(&self.shared, "invalid");
                return Err(fail(
                    close::UNAUTHORIZED,
                    ErrorCode::InvalidToken,
                    r.detail,
                    "auth",
                ));
            }
        };
        let tenant = authed.claims.tenant.clone();
        if rt.tenant(&tenant).is_none() {
            return Err(fail(
                close::UNAUTHORIZED,
                ErrorCode::UnknownSystem,
                "this token's system is not served here",
                "auth",
            ));
        }
        let uid = authed.session.uid;
        if let Some(cur) = &self.auth {
            if cur.tenant != tenant || cur.uid != uid {
                return Err(fail(
                    close::UNAUTHORIZED,
                    ErrorCode::Forbidden,
                    "a socket keeps its user: this token is another user's or another system's",
                    "auth",
                ));
            }
        }
        if let Err(e) = self.shared.ws.attach(
            self.conn.id,
            &tenant,
            uid,
            self.cfg.max_connections_per_user,
            self.cfg.max_connections,
        ) {
            return Err(fail(
                close::TOO_MANY,
                ErrorCode::Forbidden,
                &e.to_string(),
                "limit",
            ));
        }
        let left = authed.claims.exp.saturating_sub(unix_now());
        self.deadline = Instant::now() + Duration::from_secs(left);
        self.auth = Some(Auth {
            tenant,
            uid,
            claims: authed.claims,
            session: authed.session,
        });
        Ok(())
    }

    fn authenticated(&mut self, rid: Option<&Value>) {
        if let Some(a) = &self.auth {
            let text = protocol::authenticated(rid, a.uid, &a.tenant, a.claims.exp);
            self.reply(text);
        }
    }

    /// Validates a subscription locally, then has Odoo check it on a task of its own.
    fn subscribe(&mut self, rid: Option<Value>, sub: Subscribe) {
        let err = |code: ErrorCode, message: &str| protocol::error(rid.as_ref(), code, message);
        let Some(auth) = &self.auth else {
            let text = err(
                ErrorCode::AuthRequired,
                "authenticate first: send {\"type\": \"auth\", \"token\": …}",
            );
            return self.reply(text);
        };
        if self.subs.len() + self.pending >= self.cfg.max_subscriptions {
            let text = err(
                ErrorCode::TooManySubscriptions,
                &format!(
                    "at most {} subscriptions per connection (websocket.max_subscriptions)",
                    self.cfg.max_subscriptions
                ),
            );
            return self.reply(text);
        }
        if self.pending >= MAX_PENDING {
            let text = err(
                ErrorCode::TooManyPending,
                "too many subscriptions being checked: wait for their answers",
            );
            return self.reply(text);
        }
        if let Some(system) = sub.system_id.as_deref().filter(|s| *s != auth.tenant) {
            let known = self.shared.runtime.load().tenant(system).is_some();
            let text = if known {
                err(
                    ErrorCode::Forbidden,
                    "this token was issued for another system",
                )
            } else {
                err(ErrorCode::UnknownSystem, "no such system")
            };
            return self.reply(text);
        }
        if !auth.claims.scopes.is_empty() {
            let allowed = Scopes::parse(&auth.claims.scopes)
                .is_ok_and(|s| s.allows(Some(&sub.model), Category::Read));
            if !allowed {
                let text = err(
                    ErrorCode::Forbidden,
                    "this token's scopes do not allow reading this model",
                );
                return self.reply(text);
            }
        }
        let number = self.next_sub;
        self.next_sub += 1;
        self.pending += 1;
        let shared = self.shared.clone();
        let tenant = auth.tenant.clone();
        let odoo_session = auth.session.odoo_session.clone();
        let tx = self.ctl_tx.clone();
        tokio::spawn(async move {
            let rt = shared.runtime.load_full();
            let result = match rt.tenant(&tenant) {
                Some(t) => odoo::check_subscription(t, &odoo_session, &sub).await,
                None => Err(odoo::Refused {
                    code: ErrorCode::UnknownSystem,
                    message: "this system is no longer served here".into(),
                    session_over: false,
                }),
            };
            let _ = tx
                .send(Box::new(Checked {
                    request_id: rid,
                    number,
                    sub,
                    result,
                }))
                .await;
        });
    }

    async fn on_checked(&mut self, checked: Box<Checked>) -> Option<End> {
        self.pending = self.pending.saturating_sub(1);
        let rid = checked.request_id.as_ref();
        match checked.result {
            Err(r) => {
                self.reply(protocol::error(rid, r.code, &r.message));
                if r.session_over {
                    return Some(
                        self.close(close::UNAUTHORIZED, &r.message, "session_ended")
                            .await,
                    );
                }
            }
            Ok(()) => {
                let Some(auth) = &self.auth else {
                    return None;
                };
                let id = format!("s{}", checked.number);
                let s = &checked.sub;
                let sub = Arc::new(Sub {
                    id: id.clone(),
                    conn: self.conn.clone(),
                    tenant: auth.tenant.clone(),
                    model: s.model.clone(),
                    uid: auth.uid,
                    session: auth.session.clone(),
                    record_ids: s
                        .record_ids
                        .as_ref()
                        .map(|ids| std::sync::Mutex::new(ids.iter().copied().collect())),
                    fields: s.fields.clone(),
                    known: std::sync::Mutex::new(Default::default()),
                });
                let text = protocol::subscribed(rid, &id, &auth.tenant, s);
                self.shared.ws.subscribe(checked.number, sub);
                self.subs.insert(id, checked.number);
                self.reply(text);
            }
        }
        self.flush().await.err()
    }

    /// Pings, notices dead clients, re-checks the token's session (logout, revocation).
    async fn on_tick(&mut self) -> Option<End> {
        if self.last_heard.elapsed() > self.cfg.ping_interval * 3 {
            return Some("timeout");
        }
        if let Some(auth) = &self.auth {
            match self.shared.sessions.get(&auth.claims.sid).await {
                Ok(None) => {
                    return Some(
                        self.close(
                            close::UNAUTHORIZED,
                            "session ended (logged out or revoked): log in again",
                            "revoked",
                        )
                        .await,
                    );
                }
                Ok(Some(_)) => {}
                // The store is unreachable: the socket was authenticated; keep it.
                Err(e) => log::debug!("websocket: session check skipped: {e}"),
            }
        }
        let stamp = unix_now().to_string();
        self.write(Message::Ping(Bytes::from(stamp)));
        self.flush().await.err()
    }

    /// Sends a close frame, waits briefly for the client's, and ends.
    async fn close(&mut self, code: u16, reason: &str, label: End) -> End {
        // Queued messages are not sent after a close (for a slow consumer, that is the point).
        self.conn.shut();
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: Utf8Bytes::from(short(reason)),
        };
        let _ = self.ws.close(Some(frame));
        let _ = self.ws.flush();
        let out = self.ws.get_mut().output.split().freeze();
        if !out.is_empty() {
            let sent = tokio::time::timeout(CLOSE_WAIT, write_all(&mut self.stream, &out)).await;
            if !matches!(sent, Ok(Ok(()))) {
                return label;
            }
        }
        let until = Instant::now() + CLOSE_WAIT;
        while let Ok(Ok(n)) = tokio::time::timeout_at(
            until,
            read_some(&mut self.stream, &mut self.ws.get_mut().input),
        )
        .await
        {
            if n == 0 {
                break;
            }
            loop {
                match self.ws.read() {
                    Ok(Message::Close(_)) => {}
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                        break
                    }
                    Err(_) => return label,
                }
            }
        }
        label
    }
}
