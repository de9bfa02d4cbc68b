//! `fake-odoo`: a fake Odoo 16/17/18 server for BridgeCore's integration tests.
//!
//! ```no_run
//! use fake_odoo::{Dataset, FakeOdoo};
//! let odoo = FakeOdoo::start(Dataset::demo());
//! let url = odoo.url("/web/health");            // http://127.0.0.1:<port>/web/health
//! let ws = odoo.ws_url();                        // ws://127.0.0.1:<bus port>/websocket
//! assert_eq!(odoo.count(), 0);
//! ```
//!
//! Two listeners on 127.0.0.1: the HTTP port ([`FakeOdoo::addr`], like 8069) and
//! the "gevent" bus port ([`FakeOdoo::bus_addr`], like 8072). Both serve every
//! route; only the bus port accepts `/websocket` upgrades (the HTTP port answers
//! 400 "Couldn't bind the websocket…" unless [`Options::websocket_on_http`]).
//! The server runs on its own thread with its own tokio runtime, so it works from
//! plain `#[test]`s and from `#[tokio::test]`s. Dropping it (or [`FakeOdoo::stop`])
//! shuts it down.
//!
//! Every request is recorded as a [`Seen`] *before* it is answered (bodies are read
//! fully first). Wire formats follow `/work/shared/odoo-protocol.md`.
//!
//! Routes (both ports):
//! * JSON-RPC (`type='json'`): `/web/session/{authenticate,get_session_info,check,destroy,modules,get_lang_list}`,
//!   `/web/dataset/call_kw[/...]`, `/web/dataset/call_button[/...]`, `/jsonrpc` (common/db/object),
//!   `/web/webclient/version_info`, `/web/database/list`, `/websocket/peek_notifications`,
//!   `/web/dataset/search_read` (16 only), `/longpolling/poll` (bus port only).
//! * `/json/2/<model>/<method>` (V18 or `Dataset::json2`), `/xmlrpc/2/<service>`, `/xmlrpc/<service>`.
//! * `/web/login` (GET form, POST login → 303), `/web/session/logout`, `/web`, `/odoo`, `/`.
//! * `/web/health`, `/websocket/health`, `/<module>/static/...`, `/web/assets/<unique>/<file>`,
//!   `/web/image/...`, `/web/content/<id>[/<name>]`, `/report/pdf/<report>/<ids>`, `/report/html/...`,
//!   `/report/download`, `/web/webclient/{translations,load_menus}/<unique>`.
//! * `/web/binary/upload_attachment` (streamed multipart, field `ufile`), `/web/database/*` (200).
//! * Test helpers: `/__fake/echo`, `/__fake/slow?ms=N`, `/__fake/redirect[?to=]`, `/__fake/set-cookie`,
//!   `/__fake/large?kb=N` (big JSON), `/__fake/status/<code>`.
//! * Failures on demand: [`FakeOdoo::set_fault`] makes the HTTP port reset connections after
//!   reading each request, or answer every request with a status of its own (502/503).
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod assets;
pub mod data;
pub mod domain;
pub mod multipart;
pub mod orm;
mod server;
#[cfg(test)]
mod tests;
mod ws;
pub mod xmlrpc;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

pub use data::{
    now_utc, Access, Compute, Dataset, Field, Model, OdooVersion, Op, Perms, Record, Rule, User,
};
pub use domain::eval_domain;
pub use orm::OdooError;
pub use server::{py_json, session_info, RPC_COOKIE, SEEN_BODY_CAP};
pub use ws::WS_VERSION_18;

use server::{lock, BusMsg, State};

/// Which listener a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Port {
    /// The HTTP port (8069-like).
    Http,
    /// The gevent/bus port (8072-like).
    Bus,
}

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path with query string, e.g. `/web/dataset/call_kw/res.partner/read?debug=1`.
    pub path: String,
    pub headers: http::HeaderMap,
    /// The body (truncated to [`SEEN_BODY_CAP`] bytes; see `body_len`).
    pub body: Bytes,
    /// The full body length.
    pub body_len: u64,
    pub port: Port,
    /// TCP peer address (the proxy's outbound socket).
    pub peer: SocketAddr,
}

impl Seen {
    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
    /// A header value as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The path without the query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or(&self.path)
    }
    /// `params.method` of a JSON-RPC call_kw body (or `params.service.method` for /jsonrpc).
    pub fn rpc_method(&self) -> Option<String> {
        let j = self.json()?;
        let p = j.get("params")?;
        if let Some(s) = p.get("service").and_then(Value::as_str) {
            return Some(format!("{s}.{}", p.get("method")?.as_str()?));
        }
        p.get("method").and_then(Value::as_str).map(str::to_string)
    }
    /// `(model, method)` of an ORM call, whichever protocol carried it: `call_kw` and
    /// `call_button` (`params.model` / `params.method`), `/jsonrpc` and XML-RPC `object`
    /// `execute_kw` / `execute` (`args[3]` / `args[4]`), `/json/2/<model>/<method>`.
    /// `None` for anything else (and for bodies cut at [`SEEN_BODY_CAP`]).
    pub fn orm_call(&self) -> Option<(String, String)> {
        let path = self.path_only();
        let pair = |m: Option<&Value>, f: Option<&Value>| -> Option<(String, String)> {
            Some((m?.as_str()?.to_string(), f?.as_str()?.to_string()))
        };
        if path.starts_with("/web/dataset/call_kw") || path.starts_with("/web/dataset/call_button")
        {
            let j = self.json()?;
            let p = j.get("params")?;
            return pair(p.get("model"), p.get("method"));
        }
        if path == "/jsonrpc" {
            let j = self.json()?;
            let p = j.get("params")?;
            let execute = matches!(
                p.get("method").and_then(Value::as_str),
                Some("execute_kw" | "execute")
            );
            if p.get("service").and_then(Value::as_str) != Some("object") || !execute {
                return None;
            }
            let args = p.get("args")?;
            return pair(args.get(3), args.get(4));
        }
        if let Some(rest) = path.strip_prefix("/json/2/") {
            let (model, method) = rest.split_once('/')?;
            return Some((model.to_string(), method.to_string()));
        }
        if path.starts_with("/xmlrpc/") && path.ends_with("/object") {
            let (method, params) =
                xmlrpc::decode_call(std::str::from_utf8(&self.body).ok()?).ok()?;
            if method != "execute_kw" && method != "execute" {
                return None;
            }
            return pair(params.get(3), params.get(4));
        }
        None
    }
}

/// A file received by `/web/binary/upload_attachment`.
#[derive(Clone, Debug, PartialEq)]
pub struct Upload {
    /// The attachment id answered to the client.
    pub id: i64,
    pub filename: String,
    pub mimetype: String,
    /// Exact size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-1 of the content.
    pub sha1: String,
    /// The `model` / `id` form fields, if sent.
    pub model: Option<String>,
    pub res_id: Option<String>,
}

/// A failure the HTTP port plays after it has read (and recorded) a request; see
/// [`FakeOdoo::set_fault`]. `/web/health` and the bus port are never affected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Closes the connection with a TCP reset instead of answering (a worker killed mid-request).
    Reset,
    /// Answers with this status and an HTML page (a front of Odoo's whose Odoo is down: 502, 503).
    Status(u16),
}

/// Server options for [`FakeOdoo::start_with`].
#[derive(Clone, Debug)]
pub struct Options {
    /// HTTP keep-alive (default on). When off, every answer carries `Connection: close`.
    pub keep_alive: bool,
    /// Also accept `/websocket` on the HTTP port (like `workers = 0`). Default off.
    pub websocket_on_http: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            keep_alive: true,
            websocket_on_http: false,
        }
    }
}

/// A running fake Odoo server. Drop it or call [`FakeOdoo::stop`] to shut it down.
pub struct FakeOdoo {
    state: Arc<State>,
    addr: SocketAddr,
    bus_addr: SocketAddr,
    stop_tx: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeOdoo {
    /// Starts the server with default [`Options`] on two ephemeral ports.
    pub fn start(data: Dataset) -> FakeOdoo {
        FakeOdoo::start_with(data, Options::default())
    }

    /// Starts the server with explicit options.
    pub fn start_with(data: Dataset, opts: Options) -> FakeOdoo {
        let http = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake odoo http port");
        let bus = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake odoo bus port");
        http.set_nonblocking(true).expect("nonblocking");
        bus.set_nonblocking(true).expect("nonblocking");
        let addr = http.local_addr().expect("local addr");
        let bus_addr = bus.local_addr().expect("local addr");
        let state = Arc::new(State::new(data, opts.keep_alive, opts.websocket_on_http));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-odoo-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("fake odoo runtime");
                rt.block_on(server::run(st, http, bus, stop_rx));
                rt.shutdown_timeout(Duration::from_millis(200));
            })
            .expect("spawn fake odoo thread");
        FakeOdoo {
            state,
            addr,
            bus_addr,
            stop_tx: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Stops the server (same as dropping it).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// The HTTP port (8069-like).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The bus/gevent port (8072-like) that accepts `/websocket`.
    pub fn bus_addr(&self) -> SocketAddr {
        self.bus_addr
    }
    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
    /// `http://<bus_addr><path>`.
    pub fn bus_url(&self, path: &str) -> String {
        format!("http://{}{}", self.bus_addr, path)
    }
    /// `ws://<bus_addr>/websocket`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/websocket", self.bus_addr)
    }

    /// Every request that reached either port, in arrival order.
    pub fn requests(&self) -> Vec<Seen> {
        lock(&self.state.seen).clone()
    }
    /// Number of requests that reached it (both ports).
    pub fn count(&self) -> usize {
        lock(&self.state.seen).len()
    }
    /// Number of requests whose path (with query) starts with `prefix`.
    pub fn count_path(&self, prefix: &str) -> usize {
        lock(&self.state.seen)
            .iter()
            .filter(|s| s.path.starts_with(prefix))
            .count()
    }
    /// Number of ORM calls of `method` on `model` that reached it, over every protocol
    /// (see [`Seen::orm_call`]); `"*"` matches any model or any method.
    pub fn count_calls(&self, model: &str, method: &str) -> usize {
        lock(&self.state.seen)
            .iter()
            .filter_map(Seen::orm_call)
            .filter(|(m, f)| (model == "*" || m == model) && (method == "*" || f == method))
            .count()
    }
    /// Number of requests that arrived on `port`.
    pub fn count_port(&self, port: Port) -> usize {
        lock(&self.state.seen)
            .iter()
            .filter(|s| s.port == port)
            .count()
    }
    /// The last request seen, if any.
    pub fn last_request(&self) -> Option<Seen> {
        lock(&self.state.seen).last().cloned()
    }
    /// Forgets all recorded requests (counts go back to 0).
    pub fn reset_counts(&self) {
        lock(&self.state.seen).clear();
    }

    /// Every answer (on both ports) waits `d` after the request was read.
    pub fn set_delay(&self, d: Duration) {
        *lock(&self.state.delay) = d;
    }
    /// ORM calls of `method` (any model, any protocol; see [`Seen::orm_call`]) wait `d`
    /// more before they are answered (after [`FakeOdoo::set_delay`]'s wait); `Duration::ZERO`
    /// removes it. The call runs against the data as it is once the wait is over.
    pub fn set_method_delay(&self, method: &str, d: Duration) {
        let mut delays = lock(&self.state.method_delays);
        if d.is_zero() {
            delays.remove(method);
        } else {
            delays.insert(method.to_string(), d);
        }
    }
    /// Requests to `path` (exact, query left out; any method) wait `d` more before they are
    /// answered (after the other waits); `Duration::ZERO` removes it.
    pub fn set_path_delay(&self, path: &str, d: Duration) {
        let mut delays = lock(&self.state.path_delays);
        if d.is_zero() {
            delays.remove(path);
        } else {
            delays.insert(path.to_string(), d);
        }
    }
    /// When on, every JSON-RPC answer (`type='json'` routes: `call_kw`, `/jsonrpc`, `/web/session/*`, ...)
    /// also carries `Set-Cookie: `[`RPC_COOKIE`], like Odoo answers that touch the session.
    pub fn set_rpc_cookie(&self, on: bool) {
        self.state.rpc_cookie.store(on, Ordering::Relaxed);
    }
    /// Odoo's `--x-sendfile` for database `db`: `/web/content/<id>` answers carry
    /// `X-Accel-Redirect: /web/filestore/<db>/<sha[:2]>/<sha>` and no body. `None` turns it off.
    pub fn set_x_sendfile(&self, db: Option<&str>) {
        *server::lock(&self.state.x_sendfile) = db.map(str::to_owned);
    }
    /// Attachment `id`'s place under the database's filestore directory, and its bytes.
    pub fn attachment_file(id: i64) -> (String, Vec<u8>) {
        server::attachment_file(id)
    }
    /// Keep-alive for new connections; when off, answers carry `Connection: close`.
    pub fn set_keep_alive(&self, on: bool) {
        self.state.keep_alive.store(on, Ordering::Relaxed);
    }
    /// Plays `fault` on every later request to the HTTP port (`None`: answer normally). Requests
    /// are still recorded, so counts show each attempt. Set it before the requests whose
    /// connections should be reset (a reset connection is one accepted while `Reset` is on).
    pub fn set_fault(&self, fault: Option<Fault>) {
        *lock(&self.state.fault) = fault;
    }
    /// What `/web/health` answers: 200 `pass`, or 503 `fail`.
    pub fn set_healthy(&self, on: bool) {
        self.state.healthy.store(on, Ordering::Relaxed);
    }
    /// Accept `/websocket` on the HTTP port too.
    pub fn set_websocket_on_http(&self, on: bool) {
        self.state.ws_on_http.store(on, Ordering::Relaxed);
    }

    /// The live dataset (lock it briefly; the server locks it per request).
    pub fn dataset(&self) -> Arc<Mutex<Dataset>> {
        self.state.data.clone()
    }
    /// Runs `f` with the dataset locked.
    pub fn with_data<T>(&self, f: impl FnOnce(&mut Dataset) -> T) -> T {
        f(&mut lock(&self.state.data))
    }
    /// Switches the impersonated version at runtime.
    pub fn set_version(&self, v: OdooVersion) {
        lock(&self.state.data).version = v;
    }
    /// Writes a record "from inside Odoo" (no ACLs): bumps `write_date`, recomputes.
    pub fn write_record(&self, model: &str, id: i64, vals: Value) -> Result<(), String> {
        lock(&self.state.data).write(model, id, vals)
    }
    /// Creates a record "from inside Odoo" (no ACLs); returns its id.
    pub fn create_record(&self, model: &str, vals: Value) -> Result<i64, String> {
        lock(&self.state.data).insert(model, vals)
    }
    /// Deletes records "from inside Odoo" (no ACLs).
    pub fn unlink_records(&self, model: &str, ids: &[i64]) -> Result<(), String> {
        lock(&self.state.data).unlink(model, ids)
    }
    /// A copy of one record's stored values.
    pub fn record(&self, model: &str, id: i64) -> Option<Record> {
        lock(&self.state.data).record(model, id).cloned()
    }

    /// Creates a logged-in web session for `uid` without HTTP; returns the sid
    /// (send it as `Cookie: session_id=<sid>`).
    pub fn new_session(&self, uid: i64) -> String {
        self.state.login_session(uid)
    }
    /// Makes `sid` a logged-in session of `uid` here too (several Odoo servers sharing one
    /// session store).
    pub fn add_session(&self, sid: &str, uid: i64) {
        lock(&self.state.sessions).insert(sid.to_owned(), server::Session { uid: Some(uid) });
    }
    /// Invalidates one session (next call → code 100 SessionExpired; websocket → close 4001).
    pub fn expire_session(&self, sid: &str) {
        lock(&self.state.sessions).remove(sid);
    }
    /// Invalidates every session.
    pub fn expire_all_sessions(&self) {
        lock(&self.state.sessions).clear();
    }
    /// Known sessions: `(sid, uid)` (uid `None` = anonymous, e.g. after logout).
    pub fn sessions(&self) -> Vec<(String, Option<i64>)> {
        lock(&self.state.sessions)
            .iter()
            .map(|(k, v)| (k.clone(), v.uid))
            .collect()
    }

    /// Files received by `/web/binary/upload_attachment`.
    pub fn uploads(&self) -> Vec<Upload> {
        lock(&self.state.uploads).clone()
    }
    /// Text frames received on websockets (both ports), in order.
    pub fn ws_messages(&self) -> Vec<String> {
        lock(&self.state.ws_frames).clone()
    }
    /// Pushes a bus notification to every websocket subscribed to `channel`
    /// (`"broadcast"` reaches all): a frame `[{"id": N, "message": {"type", "payload"}}]`.
    /// Returns the notification id.
    pub fn notify(&self, channel: &str, ntype: &str, payload: Value) -> i64 {
        let id = self.state.bus_id.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = self.state.bus_tx.send(BusMsg {
            id,
            channel: channel.to_string(),
            message: serde_json::json!({"type": ntype, "payload": payload}),
        });
        id
    }
}

impl Drop for FakeOdoo {
    fn drop(&mut self) {
        self.shutdown();
    }
}
