//! The HTTP side: accept loops, request recording, routing and handlers.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};

use crate::data::{Dataset, OdooVersion, User};
use crate::orm::{self, OdooError};
use crate::{assets, multipart, xmlrpc, Port, Seen, Upload};

pub(crate) type Resp = Response<Full<Bytes>>;

/// Bodies kept in [`Seen::body`] are truncated to this many bytes.
pub const SEEN_BODY_CAP: usize = 16 * 1024 * 1024;

/// What JSON-RPC answers set while [`crate::FakeOdoo::set_rpc_cookie`] is on.
pub const RPC_COOKIE: &str = "fake_odoo_rpc=1; Path=/; HttpOnly";

const LAST_MODIFIED: &str = "Mon, 15 Jan 2024 09:00:00 GMT";

#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub uid: Option<i64>,
}

#[derive(Clone, Debug)]
pub(crate) struct BusMsg {
    pub id: i64,
    pub channel: String,
    pub message: Value,
}

pub(crate) struct State {
    pub data: Arc<Mutex<Dataset>>,
    pub seen: Mutex<Vec<Seen>>,
    pub delay: Mutex<Duration>,
    /// Extra wait before answering ORM calls of a method (see [`Seen::orm_call`]).
    pub method_delays: Mutex<HashMap<String, Duration>>,
    /// Extra wait before answering requests to a path (query left out).
    pub path_delays: Mutex<HashMap<String, Duration>>,
    /// JSON-RPC answers carry a `Set-Cookie` header.
    pub rpc_cookie: AtomicBool,
    /// `--x-sendfile`: attachments are answered with `X-Accel-Redirect` into this database's
    /// filestore instead of their bytes.
    pub x_sendfile: Mutex<Option<String>>,
    pub keep_alive: AtomicBool,
    /// What `/web/health` says: pass (200) or fail (503).
    pub healthy: AtomicBool,
    pub ws_on_http: AtomicBool,
    /// The failure the HTTP port plays after reading each request, if any.
    pub fault: Mutex<Option<crate::Fault>>,
    pub sessions: Mutex<HashMap<String, Session>>,
    pub uploads: Mutex<Vec<Upload>>,
    pub bus_tx: broadcast::Sender<BusMsg>,
    pub bus_id: AtomicI64,
    pub ws_frames: Mutex<Vec<String>>,
    pub attachment_id: AtomicI64,
    pub sid_counter: AtomicU64,
}

/// Locks a mutex, ignoring poisoning (a panicking test thread must not wedge the fake).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    pub fn new(data: Dataset, keep_alive: bool, ws_on_http: bool) -> State {
        let (bus_tx, _) = broadcast::channel(1024);
        State {
            data: Arc::new(Mutex::new(data)),
            seen: Mutex::new(Vec::new()),
            delay: Mutex::new(Duration::ZERO),
            method_delays: Mutex::new(HashMap::new()),
            path_delays: Mutex::new(HashMap::new()),
            rpc_cookie: AtomicBool::new(false),
            x_sendfile: Mutex::new(None),
            keep_alive: AtomicBool::new(keep_alive),
            healthy: AtomicBool::new(true),
            ws_on_http: AtomicBool::new(ws_on_http),
            fault: Mutex::new(None),
            sessions: Mutex::new(HashMap::new()),
            uploads: Mutex::new(Vec::new()),
            bus_tx,
            bus_id: AtomicI64::new(100),
            ws_frames: Mutex::new(Vec::new()),
            attachment_id: AtomicI64::new(1000),
            sid_counter: AtomicU64::new(1),
        }
    }

    fn record(&self, s: Seen) {
        lock(&self.seen).push(s);
    }

    async fn apply_delay(&self) {
        let d = *lock(&self.delay);
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    async fn apply_method_delay(&self, call: Option<(String, String)>) {
        let Some((_, method)) = call else { return };
        let d = lock(&self.method_delays)
            .get(&method)
            .copied()
            .unwrap_or_default();
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    async fn apply_path_delay(&self, path: &str) {
        let d = lock(&self.path_delays)
            .get(path)
            .copied()
            .unwrap_or_default();
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    pub fn new_sid(&self) -> String {
        let n = self.sid_counter.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let r1 = std::collections::hash_map::RandomState::new().hash_one(n);
        let r2 = std::collections::hash_map::RandomState::new().hash_one(nanos);
        let mut seed = Vec::new();
        seed.extend_from_slice(&n.to_le_bytes());
        seed.extend_from_slice(&nanos.to_le_bytes());
        seed.extend_from_slice(&r1.to_le_bytes());
        seed.extend_from_slice(&r2.to_le_bytes());
        assets::sha1_hex(&seed)
    }

    /// Creates a logged-in session for `uid`; returns the sid.
    pub fn login_session(&self, uid: i64) -> String {
        let sid = self.new_sid();
        lock(&self.sessions).insert(sid.clone(), Session { uid: Some(uid) });
        sid
    }

    /// `(sid, uid)` of the request's logged-in session.
    pub fn session_of(&self, headers: &HeaderMap) -> Option<(String, i64)> {
        let sid = cookie(headers, "session_id")?;
        let uid = lock(&self.sessions).get(&sid)?.uid?;
        Some((sid, uid))
    }
}

// ------------------------------------------------------------------ accept loop

pub(crate) async fn run(
    state: Arc<State>,
    http: std::net::TcpListener,
    bus: std::net::TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let (Ok(http), Ok(bus)) = (TcpListener::from_std(http), TcpListener::from_std(bus)) else {
        return;
    };
    loop {
        tokio::select! {
            r = http.accept() => if let Ok((s, peer)) = r { spawn_conn(state.clone(), Port::Http, s, peer) },
            r = bus.accept() => if let Ok((s, peer)) = r { spawn_conn(state.clone(), Port::Bus, s, peer) },
            _ = stop.changed() => break,
        }
    }
}

/// Marks an answer that must not be sent: the connection is reset instead.
#[derive(Clone, Copy)]
struct ResetInstead;

#[derive(Debug)]
struct Reset;

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by the fake's fault switch")
    }
}

impl std::error::Error for Reset {}

fn spawn_conn(state: Arc<State>, port: Port, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    if port == Port::Http && matches!(*lock(&state.fault), Some(crate::Fault::Reset)) {
        // Closing then sends a reset, not a FIN.
        let _ = stream.set_zero_linger();
    }
    let keep_alive = state.keep_alive.load(Ordering::Relaxed);
    tokio::spawn(async move {
        let svc = service_fn(move |req| {
            let st = state.clone();
            async move {
                let r = handle(st, port, peer, req).await;
                if r.extensions().get::<ResetInstead>().is_some() {
                    return Err(Reset);
                }
                Ok::<_, Reset>(r)
            }
        });
        let _ = http1::Builder::new()
            .keep_alive(keep_alive)
            .serve_connection(TokioIo::new(stream), svc)
            .with_upgrades()
            .await;
    });
}

// ------------------------------------------------------------------ helpers

pub(crate) fn resp(status: u16, ctype: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if !ctype.is_empty() {
        if let Ok(v) = HeaderValue::from_str(ctype) {
            r.headers_mut().insert(CONTENT_TYPE, v);
        }
    }
    r
}

pub(crate) fn add_header(r: &mut Resp, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        r.headers_mut().append(n, v);
    }
}

fn html_error(status: u16, title: &str, desc: &str) -> Resp {
    let desc = desc
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#x27;")
        .replace('"', "&quot;");
    resp(
        status,
        "text/html; charset=utf-8",
        format!("<!doctype html>\n<html lang=en>\n<title>{status} {title}</title>\n<h1>{title}</h1>\n<p>{desc}</p>\n"),
    )
}

fn not_found() -> Resp {
    html_error(404, "Not Found", "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.")
}

/// Serialises like Python's `json.dumps` (`", "` and `": "` separators, UTF-8).
pub fn py_json(v: &Value) -> Vec<u8> {
    struct PyFmt;
    impl serde_json::ser::Formatter for PyFmt {
        fn begin_array_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                w.write_all(b", ")
            }
        }
        fn begin_object_key<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                w.write_all(b", ")
            }
        }
        fn begin_object_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
        ) -> std::io::Result<()> {
            w.write_all(b": ")
        }
    }
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PyFmt);
    let _ = serde::Serialize::serialize(v, &mut ser);
    out
}

fn json_resp(status: u16, v: &Value) -> Resp {
    resp(status, "application/json; charset=utf-8", py_json(v))
}

/// A cookie value from the request's `Cookie` headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    for h in headers.get_all(http::header::COOKIE) {
        let Ok(s) = h.to_str() else { continue };
        for kv in s.split(';') {
            if let Some((k, v)) = kv.trim().split_once('=') {
                if k.trim() == name {
                    return Some(v.trim().to_string());
                }
            }
        }
    }
    None
}

fn session_cookie(sid: &str) -> String {
    let expires = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(604_800));
    format!("session_id={sid}; Expires={expires}; Max-Age=604800; HttpOnly; Path=/")
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// URL/form percent-decoding (`plus` = treat `+` as space).
pub(crate) fn percent_decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' if plus => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(x) => {
                        out.push(x);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `a=1&b=2` (query strings and urlencoded forms).
pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(kv, true), String::new()),
        })
        .collect()
}

fn query_get(uri: &Uri, key: &str) -> Option<String> {
    parse_query(uri.query().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn mime_of(headers: &HeaderMap) -> String {
    header_str(headers, "content-type")
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

// ------------------------------------------------------------------ request entry

async fn handle(
    state: Arc<State>,
    port: Port,
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Resp {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let path = uri.path().to_string();
    let path_q = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let headers = req.headers().clone();
    let seen = |body: Bytes, body_len: u64| Seen {
        method: method.to_string(),
        path: path_q.clone(),
        headers: headers.clone(),
        body,
        body_len,
        port,
        peer,
    };

    let r = if path == "/websocket" && method == Method::GET {
        state.record(seen(Bytes::new(), 0));
        state.apply_delay().await;
        crate::ws::upgrade(&state, port, &headers, &uri, &mut req)
    } else if path == "/web/binary/upload_attachment"
        && method == Method::POST
        && multipart::boundary(header_str(&headers, "content-type").unwrap_or("")).is_some()
    {
        let boundary = multipart::boundary(header_str(&headers, "content-type").unwrap_or(""))
            .unwrap_or_default();
        let mut parser = multipart::Parser::new(&boundary);
        let mut kept: Vec<u8> = Vec::new();
        let mut total: u64 = 0;
        let mut body = req.into_body();
        let mut broken = false;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Ok(data) = f.into_data() {
                        total += data.len() as u64;
                        if kept.len() < SEEN_BODY_CAP {
                            let take = (SEEN_BODY_CAP - kept.len()).min(data.len());
                            kept.extend_from_slice(&data[..take]);
                        }
                        parser.feed(&data);
                    }
                }
                Err(_) => {
                    broken = true;
                    break;
                }
            }
        }
        state.record(seen(Bytes::from(kept), total));
        state.apply_delay().await;
        if broken {
            html_error(
                400,
                "Bad Request",
                "The browser (or proxy) sent a request that this server could not understand.",
            )
        } else {
            upload_answer(&state, &uri, parser.finish())
        }
    } else {
        let body = match req.into_body().collect().await {
            Ok(c) => c.to_bytes(),
            Err(_) => Bytes::new(),
        };
        let kept = if body.len() <= SEEN_BODY_CAP {
            body.clone()
        } else {
            Bytes::copy_from_slice(&body[..SEEN_BODY_CAP])
        };
        let seen = seen(kept, body.len() as u64);
        let call = seen.orm_call();
        state.record(seen);
        let fault = if port == Port::Http && path != "/web/health" {
            *lock(&state.fault)
        } else {
            None
        };
        match fault {
            Some(crate::Fault::Reset) => {
                let mut r = resp(500, "", Bytes::new());
                r.extensions_mut().insert(ResetInstead);
                return r;
            }
            Some(crate::Fault::Status(code)) => {
                let body =
                    format!("<html><body><h1>{code}</h1>Odoo is unavailable</body></html>\n");
                return finish(&state, resp(code, "text/html", body));
            }
            None => {}
        }
        state.apply_delay().await;
        state.apply_method_delay(call).await;
        state.apply_path_delay(&path).await;
        route(&state, port, peer, &method, &uri, &headers, &body).await
    };
    finish(&state, r)
}

fn finish(state: &State, mut r: Resp) -> Resp {
    add_header(&mut r, "server", "Werkzeug/3.0.1 Python/3.12.3");
    if !state.keep_alive.load(Ordering::Relaxed) && r.status() != StatusCode::SWITCHING_PROTOCOLS {
        r.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

fn upload_answer(state: &State, uri: &Uri, parts: Result<Vec<multipart::Part>, String>) -> Resp {
    let parts = match parts {
        Ok(p) => p,
        Err(e) => return html_error(400, "Bad Request", &e),
    };
    let files: Vec<&multipart::Part> = parts
        .iter()
        .filter(|p| p.name == "ufile" && p.filename.is_some())
        .collect();
    if files.is_empty() {
        return html_error(
            400,
            "Bad Request",
            "The browser (or proxy) sent a request that this server could not understand.",
        );
    }
    let field = |n: &str| {
        parts
            .iter()
            .find(|p| p.name == n)
            .and_then(|p| p.value.clone())
    };
    let mut out = Vec::new();
    for f in files {
        let id = state.attachment_id.fetch_add(1, Ordering::Relaxed);
        let up = Upload {
            id,
            filename: f.filename.clone().unwrap_or_default(),
            mimetype: f
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
            size: f.size,
            sha1: f.sha1.clone(),
            model: field("model"),
            res_id: field("id"),
        };
        out.push(json!({"filename": up.filename, "mimetype": up.mimetype, "id": id, "size": up.size, "checksum": up.sha1}));
        lock(&state.uploads).push(up);
    }
    let _ = uri;
    json_resp(200, &Value::Array(out))
}

// ------------------------------------------------------------------ routing

async fn route(
    state: &Arc<State>,
    port: Port,
    peer: SocketAddr,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Resp {
    let path = uri.path();
    let version = lock(&state.data).version;
    let home = if version == OdooVersion::V18 {
        "/odoo"
    } else {
        "/web"
    };

    // fake-only helpers
    if let Some(rest) = path.strip_prefix("/__fake/") {
        return fake_route(state, port, peer, method, uri, headers, body, rest).await;
    }

    // JSON-RPC routes
    let json_route: Option<&str> = match path {
        "/web/session/authenticate"
        | "/web/session/get_session_info"
        | "/web/session/check"
        | "/web/session/destroy"
        | "/web/session/modules"
        | "/web/session/get_lang_list"
        | "/jsonrpc"
        | "/web/webclient/version_info"
        | "/web/database/list"
        | "/websocket/peek_notifications"
        | "/websocket/update_bus_presence"
        | "/websocket/on_closed" => Some(path),
        "/longpolling/poll" if port == Port::Bus => Some(path),
        "/web/dataset/search_read" if version == OdooVersion::V16 => Some(path),
        p if p == "/web/dataset/call_kw" || p.starts_with("/web/dataset/call_kw/") => {
            Some("/web/dataset/call_kw")
        }
        p if p == "/web/dataset/call_button" || p.starts_with("/web/dataset/call_button/") => {
            Some("/web/dataset/call_button")
        }
        _ => None,
    };
    if let Some(name) = json_route {
        return json_rpc(state, name, path, headers, body);
    }
    if let Some(rest) = path.strip_prefix("/json/2/") {
        return json2(state, method, rest, headers, body);
    }
    if let Some(service) = path.strip_prefix("/xmlrpc/2/") {
        return xml_rpc(state, method, service, body, false);
    }
    if let Some(service) = path.strip_prefix("/xmlrpc/") {
        return xml_rpc(state, method, service, body, true);
    }

    match path {
        "/web/health" | "/websocket/health" => {
            let mut r = if state.healthy.load(Ordering::Relaxed) {
                json_resp(200, &json!({"status": "pass"}))
            } else {
                json_resp(503, &json!({"status": "fail"}))
            };
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            add_header(&mut r, "cache-control", "no-store");
            return r;
        }
        "/" => return redirect(home, None),
        "/web" | "/odoo" => {
            if version == OdooVersion::V18 && path == "/web" {
                return redirect("/odoo", None);
            }
            return match state.session_of(headers) {
                Some(_) => resp(200, "text/html; charset=utf-8", format!("<!DOCTYPE html>\n<html><head><title>Odoo</title></head><body class=\"o_web_client\"><script>odoo.__session_info__ = {{}};</script><!-- {path} --></body></html>\n")),
                None => redirect(&format!("/web/login?redirect={}", percent_encode(path)), None),
            };
        }
        "/web/login" => return web_login(state, method, uri, headers, body),
        "/web/session/logout" => {
            let mut cookies = Vec::new();
            if let Some(sid) = cookie(headers, "session_id") {
                lock(&state.sessions).remove(&sid);
            }
            let new = state.new_sid();
            lock(&state.sessions).insert(new.clone(), crate::server::Session { uid: None });
            cookies.push(session_cookie(&new));
            if version != OdooVersion::V16 {
                cookies.push(
                    "cids=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/".to_string(),
                );
            }
            let to = query_get(uri, "redirect").unwrap_or_else(|| home.to_string());
            return redirect(&to, Some(cookies));
        }
        "/web/database/manager" | "/web/database/selector" => {
            return resp(200, "text/html; charset=utf-8", format!("<!DOCTYPE html>\n<html><head><title>Odoo</title></head><body><div class=\"o_database_list\">{path}: odoo</div></body></html>\n"));
        }
        _ => {}
    }
    if path.starts_with("/web/database/") {
        return resp(
            200,
            "text/html; charset=utf-8",
            format!("<!DOCTYPE html>\n<html><body>database manager: {path}</body></html>\n"),
        );
    }
    if path.starts_with("/web/webclient/translations") {
        let mut r = json_resp(
            200,
            &json!({"lang": "en_US", "lang_parameters": {"date_format": "%m/%d/%Y", "decimal_point": ".", "direction": "ltr", "grouping": "[3,0]", "thousands_sep": ",", "time_format": "%H:%M:%S", "week_start": 7}, "modules": {}, "multi_lang": false}),
        );
        add_header(
            &mut r,
            "cache-control",
            "public, max-age=31536000, immutable",
        );
        return r;
    }
    if path.starts_with("/web/webclient/load_menus") {
        let mut r = json_resp(
            200,
            &json!({"root": {"id": "root", "name": "root", "children": [1], "appID": false, "xmlid": "", "actionID": false, "actionModel": false, "actionPath": false, "webIcon": null, "webIconData": null, "webIconDataMimetype": null, "backgroundImage": null}, "1": {"id": 1, "name": "Sales", "children": [], "appID": 1, "xmlid": "sale.sale_menu_root", "actionID": 1, "actionModel": "ir.actions.act_window", "actionPath": false, "webIcon": "sale,static/description/icon.png", "webIconData": null, "webIconDataMimetype": null, "backgroundImage": null}}),
        );
        add_header(
            &mut r,
            "cache-control",
            "public, max-age=31536000, immutable",
        );
        return r;
    }
    if let Some(rest) = path.strip_prefix("/web/assets/") {
        return asset(headers, rest);
    }
    if let Some(rest) = path.strip_prefix("/web/image") {
        return image(state, uri, headers, rest);
    }
    if let Some(rest) = path.strip_prefix("/web/content") {
        if let Some(db) = lock(&state.x_sendfile).clone() {
            return sendfile_content(&db, rest);
        }
        return content(uri, headers, rest);
    }
    if path.starts_with("/report/") {
        return report(path);
    }
    if method == Method::OPTIONS && path.starts_with("/websocket") {
        let mut r = resp(204, "", Bytes::new());
        add_header(&mut r, "access-control-allow-origin", "*");
        add_header(&mut r, "access-control-allow-methods", "GET, POST, OPTIONS");
        add_header(
            &mut r,
            "access-control-allow-headers",
            "Origin, X-Requested-With, Content-Type, Accept, Authorization",
        );
        add_header(&mut r, "access-control-max-age", "86400");
        return r;
    }
    // /<module>/static/<...>
    let segs: Vec<&str> = path.trim_start_matches('/').splitn(3, '/').collect();
    if segs.len() == 3 && segs[1] == "static" && !segs[0].is_empty() {
        return static_file(headers, path);
    }
    not_found()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn redirect(to: &str, cookies: Option<Vec<String>>) -> Resp {
    let esc = to.replace('&', "&amp;").replace('"', "&quot;");
    let mut r = resp(
        303,
        "text/html; charset=utf-8",
        format!("<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n<p>You should be redirected automatically to the target URL: <a href=\"{esc}\">{esc}</a>. If not, click the link.\n"),
    );
    add_header(&mut r, "location", to);
    for c in cookies.unwrap_or_default() {
        add_header(&mut r, "set-cookie", &c);
    }
    r
}

fn conditional(headers: &HeaderMap, etag: &str, cache_control: &str) -> Option<Resp> {
    let inm = header_str(headers, "if-none-match")?;
    if inm
        .split(',')
        .any(|t| t.trim() == etag || t.trim() == "*" || t.trim().trim_start_matches("W/") == etag)
    {
        let mut r = resp(304, "", Bytes::new());
        add_header(&mut r, "etag", etag);
        add_header(&mut r, "cache-control", cache_control);
        add_header(&mut r, "last-modified", LAST_MODIFIED);
        return Some(r);
    }
    None
}

fn binary_resp(
    headers: &HeaderMap,
    ctype: &str,
    body: Vec<u8>,
    cache_control: &str,
    extra: &[(&str, String)],
) -> Resp {
    let etag = assets::etag(&body);
    if let Some(r) = conditional(headers, &etag, cache_control) {
        return r;
    }
    let mut r = resp(200, ctype, body);
    add_header(&mut r, "etag", &etag);
    add_header(&mut r, "cache-control", cache_control);
    add_header(&mut r, "last-modified", LAST_MODIFIED);
    for (k, v) in extra {
        add_header(&mut r, k, v);
    }
    r
}

fn static_file(headers: &HeaderMap, path: &str) -> Resp {
    let (Some(ctype), Some(body)) = (assets::mime_for(path), assets::static_body(path)) else {
        return not_found();
    };
    binary_resp(headers, ctype, body, "public, max-age=604800", &[])
}

fn asset(headers: &HeaderMap, rest: &str) -> Resp {
    // /web/assets/<unique>/<bundle file>
    let Some((_unique, file)) = rest.split_once('/') else {
        return not_found();
    };
    let (ctype, body) = if file.ends_with(".css") {
        ("text/css; charset=utf-8", assets::app_css())
    } else if file.ends_with(".js") {
        ("text/javascript; charset=utf-8", assets::app_js())
    } else {
        return not_found();
    };
    binary_resp(
        headers,
        ctype,
        body,
        "public, max-age=31536000, immutable",
        &[],
    )
}

fn image(state: &State, uri: &Uri, headers: &HeaderMap, rest: &str) -> Resp {
    let segs: Vec<&str> = rest
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (model, id, field) = match segs.as_slice() {
        [m, id, f, ..] if id.parse::<i64>().is_ok() => {
            (m.to_string(), id.parse::<i64>().unwrap_or(0), f.to_string())
        }
        [m, id] if id.parse::<i64>().is_ok() => (
            m.to_string(),
            id.parse::<i64>().unwrap_or(0),
            "image_1920".to_string(),
        ),
        [id] if id.parse::<i64>().is_ok() => (
            "ir.attachment".to_string(),
            id.parse::<i64>().unwrap_or(0),
            "datas".to_string(),
        ),
        _ => ("ir.attachment".to_string(), 0, "placeholder".to_string()),
    };
    let exists = lock(&state.data).record(&model, id).is_some();
    let side = match field.as_str() {
        "image_1920" => 64,
        "image_1024" => 56,
        "image_512" => 48,
        "image_256" => 40,
        "image_128" => 32,
        _ => 40,
    };
    let seed = if exists { (id % 7) as u32 } else { 99 };
    let body = assets::png(side, side, seed);
    let cc = if query_get(uri, "unique").is_some() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    binary_resp(
        headers,
        "image/png",
        body,
        cc,
        &[
            ("content-security-policy", "default-src 'none'".to_string()),
            ("x-content-type-options", "nosniff".to_string()),
            (
                "content-disposition",
                format!("inline; filename={field}.png"),
            ),
        ],
    )
}

/// The bytes of attachment `id` and their place in the filestore (`<sha[:2]>/<sha>`), as
/// Odoo's `ir.attachment` keeps them.
pub fn attachment_file(id: i64) -> (String, Vec<u8>) {
    let body = assets::pdf(&format!("Attachment {id}"), 8 * 1024);
    let sha = assets::sha1_hex(&body);
    (format!("{}/{}", &sha[..2], sha), body)
}

/// `/web/content/<id>` under `--x-sendfile`: headers only, the file is the front server's job.
fn sendfile_content(db: &str, rest: &str) -> Resp {
    let id = rest
        .trim_matches('/')
        .split('/')
        .next()
        .and_then(|s| s.split('-').next())
        .and_then(|s| s.parse::<i64>().ok());
    let Some(id) = id else { return not_found() };
    let (rel, _) = attachment_file(id);
    let mut r = resp(200, "application/pdf", Vec::new());
    add_header(
        &mut r,
        "content-disposition",
        &format!("inline; filename*=UTF-8''document_{id}.pdf"),
    );
    add_header(
        &mut r,
        "x-accel-redirect",
        &format!("/web/filestore/{db}/{rel}"),
    );
    add_header(
        &mut r,
        "x-sendfile",
        &format!("/var/lib/odoo/filestore/{db}/{rel}"),
    );
    r
}

fn content(uri: &Uri, headers: &HeaderMap, rest: &str) -> Resp {
    let segs: Vec<&str> = rest
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let id = segs
        .first()
        .and_then(|s| s.split('-').next())
        .and_then(|s| s.parse::<i64>().ok())
        .or_else(|| query_get(uri, "id").and_then(|s| s.parse().ok()));
    let Some(id) = id else { return not_found() };
    let filename = segs
        .get(1)
        .map(|s| percent_decode(s, false))
        .unwrap_or_else(|| format!("document_{id}.pdf"));
    let download = query_get(uri, "download")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false);
    let disp = format!(
        "{}; filename*=UTF-8''{}",
        if download { "attachment" } else { "inline" },
        percent_encode(&filename)
    );
    let cc = if query_get(uri, "unique").is_some() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    binary_resp(
        headers,
        "application/pdf",
        assets::pdf(&format!("Attachment {id}"), 8 * 1024),
        cc,
        &[
            ("content-disposition", disp),
            ("content-security-policy", "default-src 'none'".to_string()),
            ("x-content-type-options", "nosniff".to_string()),
        ],
    )
}

fn report(path: &str) -> Resp {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["report", "pdf", name, ids, ..] => {
            let body = assets::pdf(&format!("{name} {ids}"), 20 * 1024);
            resp(200, "application/pdf", body)
        }
        ["report", "html", name, ids, ..] => resp(
            200,
            "text/html; charset=utf-8",
            format!("<!DOCTYPE html><html><body><h1>{name}</h1><p>{ids}</p></body></html>"),
        ),
        ["report", "download"] => {
            let mut r = resp(200, "application/pdf", assets::pdf("download", 20 * 1024));
            add_header(
                &mut r,
                "content-disposition",
                "attachment; filename*=UTF-8''report.pdf",
            );
            r
        }
        _ => not_found(),
    }
}

fn web_login(state: &State, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Resp {
    let page = |msg: &str| {
        resp(
            200,
            "text/html; charset=utf-8",
            format!("<!DOCTYPE html>\n<html><head><title>Login | Odoo</title></head><body><form class=\"oe_login_form\" method=\"post\" action=\"/web/login\"><input type=\"hidden\" name=\"csrf_token\" value=\"fakecsrftoken0123456789o9999999999\"/><input name=\"login\"/><input name=\"password\" type=\"password\"/>{msg}</form></body></html>\n"),
        )
    };
    if *method != Method::POST {
        return page("");
    }
    let _ = headers;
    let form = parse_query(&String::from_utf8_lossy(body));
    let get = |k: &str| form.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let (login, password) = (
        get("login").unwrap_or_default(),
        get("password").unwrap_or_default(),
    );
    let ds = lock(&state.data);
    let db_ok = get("db").map(|d| d == ds.db).unwrap_or(true);
    let user = ds
        .user_by_login(&login)
        .filter(|u| u.password == password && db_ok)
        .cloned();
    let home = if ds.version == OdooVersion::V18 {
        "/odoo"
    } else {
        "/web"
    };
    drop(ds);
    match user {
        Some(u) => {
            let sid = state.login_session(u.uid);
            let to = get("redirect")
                .filter(|r| r.starts_with('/'))
                .or_else(|| query_get(uri, "redirect"))
                .unwrap_or_else(|| home.to_string());
            redirect(&to, Some(vec![session_cookie(&sid)]))
        }
        None => page("<p class=\"alert alert-danger\" role=\"alert\">Wrong login/password</p>"),
    }
}

#[allow(clippy::too_many_arguments)]
async fn fake_route(
    state: &State,
    port: Port,
    peer: SocketAddr,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    rest: &str,
) -> Resp {
    match rest.trim_end_matches('/') {
        // A JSON answer the upstream already gzip-encoded (Odoo behind another compressor).
        "gzipped" => {
            use std::io::Write as _;
            let text = serde_json::to_vec(&json!({"rows": vec!["compressible text"; 400]}))
                .unwrap_or_default();
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let _ = enc.write_all(&text);
            let gz = enc.finish().unwrap_or_default();
            let mut r = resp(200, "application/json", gz);
            add_header(&mut r, "content-encoding", "gzip");
            r
        }
        "echo" => {
            let mut hm: Map<String, Value> = Map::new();
            for name in headers.keys() {
                let vals: Vec<Value> = headers
                    .get_all(name)
                    .iter()
                    .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
                    .collect();
                hm.insert(
                    name.as_str().to_string(),
                    if vals.len() == 1 {
                        vals[0].clone()
                    } else {
                        Value::Array(vals)
                    },
                );
            }
            json_resp(
                200,
                &json!({
                    "method": method.as_str(),
                    "path": uri.path(),
                    "query": uri.query().unwrap_or(""),
                    "headers": hm,
                    "body_len": body.len(),
                    "body": if body.len() <= 64 * 1024 { Value::String(String::from_utf8_lossy(body).into_owned()) } else { Value::Null },
                    "peer": peer.to_string(),
                    "port": match port { Port::Http => "http", Port::Bus => "bus" },
                }),
            )
        }
        "slow" => {
            let ms = query_get(uri, "ms")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            json_resp(200, &json!({"slept_ms": ms}))
        }
        "redirect" => redirect(
            &query_get(uri, "to").unwrap_or_else(|| "/web".to_string()),
            None,
        ),
        "set-cookie" => {
            let mut r = json_resp(200, &json!({"ok": true}));
            add_header(&mut r, "set-cookie", "session_id=abc; HttpOnly; Path=/");
            add_header(&mut r, "set-cookie", "cids=1; Path=/");
            r
        }
        "large" => {
            let kb = query_get(uri, "kb")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(256);
            let mut rows = Vec::new();
            let mut size = 0;
            let mut i = 0;
            while size < kb * 1024 {
                let row = json!({"id": i, "name": format!("Record {i}"), "email": format!("record{i}@example.com"), "is_company": i % 2 == 0, "comment": "Lorem ipsum dolor sit amet, consectetur adipiscing elit."});
                size += row.to_string().len() + 2;
                rows.push(row);
                i += 1;
            }
            json_resp(200, &json!({"jsonrpc": "2.0", "id": null, "result": rows}))
        }
        other => {
            if let Some(code) = other
                .strip_prefix("status/")
                .and_then(|c| c.parse::<u16>().ok())
                .filter(|c| (200..=599).contains(c))
            {
                let _ = state;
                return resp(
                    code,
                    "text/plain; charset=utf-8",
                    format!("status {code}\n"),
                );
            }
            not_found()
        }
    }
}

// ------------------------------------------------------------------ JSON-RPC

fn jsonrpc_reply(id: &Value, outcome: Result<Value, OdooError>, cookies: &[String]) -> Resp {
    let mut out = b"{\"jsonrpc\": \"2.0\", \"id\": ".to_vec();
    out.extend(py_json(id));
    match outcome {
        Ok(Value::Null) => {}
        Ok(v) => {
            out.extend_from_slice(b", \"result\": ");
            out.extend(py_json(&v));
        }
        Err(e) => {
            out.extend_from_slice(b", \"error\": ");
            out.extend(py_json(&e.to_json()));
        }
    }
    out.push(b'}');
    let mut r = resp(200, "application/json; charset=utf-8", out);
    for c in cookies {
        add_header(&mut r, "set-cookie", c);
    }
    r
}

fn json_rpc(state: &State, name: &str, path: &str, headers: &HeaderMap, body: &Bytes) -> Resp {
    let mime = mime_of(headers);
    if mime != "application/json" && mime != "application/json-rpc" {
        return html_error(
            400,
            "Bad Request",
            &format!(
                "Request inferred type is compatible with ['http'] but '{path}' is type='json'"
            ),
        );
    }
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return resp(400, "text/html; charset=utf-8", "Invalid JSON data"),
    };
    let Value::Object(obj) = parsed else {
        return resp(400, "text/html; charset=utf-8", "Invalid JSON-RPC data");
    };
    let id = obj.get("id").cloned().unwrap_or(Value::Null);
    let params = match obj.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) => {
            return jsonrpc_reply(
                &id,
                Err(OdooError::type_error("'list' object is not a mapping")),
                &[],
            )
        }
    };
    let mut cookies = Vec::new();
    let outcome = dispatch_json(state, name, headers, params, &mut cookies);
    if state.rpc_cookie.load(Ordering::Relaxed) {
        cookies.push(RPC_COOKIE.to_string());
    }
    jsonrpc_reply(&id, outcome, &cookies)
}

fn str_param<'a>(p: &'a Map<String, Value>, k: &str) -> &'a str {
    p.get(k).and_then(Value::as_str).unwrap_or("")
}

fn dispatch_json(
    state: &State,
    name: &str,
    headers: &HeaderMap,
    params: Map<String, Value>,
    cookies: &mut Vec<String>,
) -> Result<Value, OdooError> {
    let version = lock(&state.data).version;
    let auth_user = || {
        state
            .session_of(headers)
            .ok_or_else(OdooError::session_expired)
    };
    match name {
        "/web/session/authenticate" => {
            let ds = lock(&state.data);
            if str_param(&params, "db") != ds.db {
                return Err(OdooError::access_error("Database not found."));
            }
            let user = ds
                .user_by_login(str_param(&params, "login"))
                .filter(|u| !u.password.is_empty() && u.password == str_param(&params, "password"))
                .cloned();
            let Some(user) = user else {
                return Err(OdooError::access_denied());
            };
            let info = session_info(&ds, &user);
            drop(ds);
            if let Some(old) = cookie(headers, "session_id") {
                lock(&state.sessions).remove(&old);
            }
            let sid = state.login_session(user.uid);
            cookies.push(session_cookie(&sid));
            Ok(info)
        }
        "/web/session/get_session_info" => {
            let (_, uid) = auth_user()?;
            let ds = lock(&state.data);
            let user = orm::user_of(&ds, uid)?;
            Ok(session_info(&ds, &user))
        }
        "/web/session/check" => {
            auth_user()?;
            Ok(Value::Null)
        }
        "/web/session/destroy" => {
            let (sid, _) = auth_user()?;
            lock(&state.sessions).remove(&sid);
            let new = state.new_sid();
            lock(&state.sessions).insert(new.clone(), Session { uid: None });
            cookies.push(session_cookie(&new));
            if version != OdooVersion::V16 {
                cookies.push(
                    "cids=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/".to_string(),
                );
            }
            Ok(Value::Null)
        }
        "/web/session/modules" => {
            auth_user()?;
            Ok(json!(["base", "web", "bus", "mail", "sale", "account"]))
        }
        "/web/session/get_lang_list" => Ok(json!([["en_US", "English (US)"]])),
        "/web/webclient/version_info" => Ok(version.version_dict()),
        "/web/database/list" => Ok(json!([lock(&state.data).db.clone()])),
        "/websocket/peek_notifications" => Ok(
            json!({"channels": params.get("channels").cloned().unwrap_or(json!([])), "notifications": []}),
        ),
        "/websocket/update_bus_presence" | "/websocket/on_closed" => Ok(Value::Null),
        "/longpolling/poll" => Ok(json!([])),
        "/jsonrpc" => {
            let service = str_param(&params, "service").to_string();
            let method = str_param(&params, "method").to_string();
            let args = match params.get("args") {
                Some(Value::Array(a)) => a.clone(),
                None | Some(Value::Null) => Vec::new(),
                Some(other) => vec![other.clone()],
            };
            let mut ds = lock(&state.data);
            dispatch_rpc(&mut ds, &service, &method, args)
        }
        "/web/dataset/search_read" => {
            let (_, uid) = auth_user()?;
            let mut kwargs = Map::new();
            for (k, dst) in [
                ("domain", "domain"),
                ("fields", "fields"),
                ("offset", "offset"),
                ("limit", "limit"),
                ("sort", "order"),
                ("context", "context"),
            ] {
                if let Some(v) = params.get(k) {
                    if !v.is_null() && v != &json!("") {
                        kwargs.insert(dst.to_string(), v.clone());
                    }
                }
            }
            let mut ds = lock(&state.data);
            let model = str_param(&params, "model").to_string();
            orm::call_kw(&mut ds, uid, &model, "web_search_read", Vec::new(), kwargs)
        }
        "/web/dataset/call_kw" | "/web/dataset/call_button" => {
            let (_, uid) = auth_user()?;
            let model = str_param(&params, "model").to_string();
            let method = str_param(&params, "method").to_string();
            let args = match params.get("args") {
                Some(Value::Array(a)) => a.clone(),
                _ => Vec::new(),
            };
            let kwargs = match params.get("kwargs") {
                Some(Value::Object(k)) => k.clone(),
                _ => Map::new(),
            };
            let mut ds = lock(&state.data);
            if ds.model(&model).is_none() {
                return Err(if version == OdooVersion::V18 {
                    OdooError::not_found()
                } else {
                    OdooError::key_error(format!("'{model}'"))
                });
            }
            let r = orm::call_kw(&mut ds, uid, &model, &method, args, kwargs)?;
            if name == "/web/dataset/call_button" {
                return Ok(match &r {
                    Value::Object(o) if o.get("type").map(|t| t != "").unwrap_or(false) => r,
                    _ => Value::Bool(false),
                });
            }
            Ok(r)
        }
        _ => Err(OdooError::not_found()),
    }
}

/// The `session_info()` dict for `user`.
pub fn session_info(ds: &Dataset, user: &User) -> Value {
    let v = ds.version;
    let partner_dn = ds
        .record("res.partner", user.partner_id)
        .and_then(|r| r.get("name"))
        .and_then(Value::as_str)
        .unwrap_or(&user.name)
        .to_string();
    let partner_wd = ds
        .record("res.partner", user.partner_id)
        .and_then(|r| r.get("write_date"))
        .cloned()
        .unwrap_or(Value::Bool(false));
    let mut companies = Map::new();
    for cid in &user.company_ids {
        let name = ds
            .record("res.company", *cid)
            .and_then(|r| r.get("name"))
            .and_then(Value::as_str)
            .unwrap_or(&ds.company_name)
            .to_string();
        companies.insert(
            cid.to_string(),
            json!({"id": cid, "name": name, "sequence": 10, "child_ids": [], "parent_id": false}),
        );
    }
    let current = user.company_ids.first().copied().unwrap_or(1);
    let mut m = json!({
        "uid": user.uid,
        "is_system": user.is_admin,
        "is_admin": user.is_admin,
        "user_context": {"lang": user.lang, "tz": user.tz, "uid": user.uid},
        "db": ds.db,
        "server_version": v.server_version(),
        "server_version_info": v.version_info(),
        "support_url": "https://www.odoo.com/buy",
        "name": user.name,
        "username": user.login,
        "partner_write_date": partner_wd,
        "partner_display_name": partner_dn,
        "partner_id": user.partner_id,
        "web.base.url": "http://localhost:8069",
        "active_ids_limit": 20000,
        "profile_session": null,
        "profile_collectors": null,
        "profile_params": null,
        "max_file_upload_size": 134217728,
        "home_action_id": false,
        "cache_hashes": {"translations": "0f1bc4e5a9b3c7d2", "load_menus": "9a8b7c6d5e4f3a2b"},
        "currencies": {"1": {"symbol": "€", "position": "after", "digits": [69, 2]}, "2": {"symbol": "$", "position": "before", "digits": [69, 2]}},
        "bundle_params": {"lang": user.lang},
        "test_mode": false,
        "view_info": {"list": {"display_name": "List", "icon": "oi oi-view-list", "multi_record": true}, "form": {"display_name": "Form", "icon": "fa fa-address-card", "multi_record": false}},
        "user_companies": {"current_company": current, "allowed_companies": companies, "disallowed_ancestor_companies": {}},
    });
    if let Some(o) = m.as_object_mut() {
        if v == OdooVersion::V16 {
            o.insert("company_id".into(), json!(current));
            o.insert("show_effect".into(), json!(true));
            o.insert(
                "display_switch_company_menu".into(),
                json!(user.company_ids.len() > 1),
            );
        } else {
            o.insert("is_public".into(), json!(false));
            o.insert("is_internal_user".into(), json!(true));
            o.insert(
                "user_settings".into(),
                json!({"id": user.uid, "user_id": {"id": user.uid}}),
            );
        }
    }
    m
}

fn arg_str(args: &[Value], i: usize) -> String {
    args.get(i)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn need(args: &[Value], n: usize, what: &str) -> Result<(), OdooError> {
    if args.len() < n {
        return Err(OdooError::type_error(format!(
            "{what}() missing {} required positional argument(s)",
            n - args.len()
        )));
    }
    Ok(())
}

/// `/jsonrpc` and XML-RPC services (`common`, `db`, `object`).
pub fn dispatch_rpc(
    ds: &mut Dataset,
    service: &str,
    method: &str,
    args: Vec<Value>,
) -> Result<Value, OdooError> {
    match service {
        "common" => match method {
            "version" => Ok(ds.version.version_dict()),
            "about" => Ok(json!("See http://openerp.com")),
            "login" | "authenticate" => {
                need(&args, if method == "login" { 3 } else { 4 }, method)?;
                let (db, login, password) =
                    (arg_str(&args, 0), arg_str(&args, 1), arg_str(&args, 2));
                if db != ds.db {
                    return Err(OdooError::new("psycopg2.OperationalError", format!("connection to server on socket \"/var/run/postgresql/.s.PGSQL.5432\" failed: FATAL:  database \"{db}\" does not exist\n")));
                }
                Ok(match ds.user_by_login(&login) {
                    Some(u) if u.check_secret(&password) => json!(u.uid),
                    _ => json!(false),
                })
            }
            _ => Err(OdooError::new(
                "builtins.NameError",
                format!("Method not available {method}"),
            )),
        },
        "db" => match method {
            "list" => Ok(json!([ds.db])),
            "server_version" => Ok(json!(ds.version.server_version())),
            "db_exist" => Ok(json!(arg_str(&args, 0) == ds.db)),
            "list_lang" => Ok(json!([["en_US", "English (US)"]])),
            "list_countries" => Ok(json!([["be", "Belgium"], ["us", "United States"]])),
            "create_database"
            | "duplicate_database"
            | "drop"
            | "dump"
            | "restore"
            | "rename"
            | "change_admin_password"
            | "migrate_databases" => Err(OdooError::access_denied()),
            _ => Err(OdooError::new(
                "builtins.KeyError",
                format!("'exp_{method}'"),
            )),
        },
        "object" => {
            if method != "execute_kw" && method != "execute" {
                return Err(OdooError::new(
                    "builtins.NameError",
                    format!("Method not available {method}"),
                ));
            }
            need(&args, 5, method)?;
            let db = arg_str(&args, 0);
            let uid = args.get(1).and_then(Value::as_i64).unwrap_or(0);
            let secret = arg_str(&args, 2);
            orm::check_rpc_credentials(ds, &db, uid, &secret)?;
            let model = arg_str(&args, 3);
            let meth = arg_str(&args, 4);
            if ds.model(&model).is_none() {
                return Err(OdooError::user_error(format!(
                    "Object {model} doesn't exist"
                )));
            }
            let (call_args, kwargs) = if method == "execute_kw" {
                let a = match args.get(5) {
                    Some(Value::Array(a)) => a.clone(),
                    None | Some(Value::Null) => Vec::new(),
                    Some(_) => {
                        return Err(OdooError::type_error("execute_kw() args must be a list"))
                    }
                };
                let k = match args.get(6) {
                    Some(Value::Object(k)) => k.clone(),
                    None | Some(Value::Null) => Map::new(),
                    Some(_) => {
                        return Err(OdooError::type_error("execute_kw() kwargs must be a dict"))
                    }
                };
                (a, k)
            } else {
                (args[5..].to_vec(), Map::new())
            };
            orm::call_kw(ds, uid, &model, &meth, call_args, kwargs)
        }
        other => Err(OdooError::key_error(format!("'{other}'"))),
    }
}

// ------------------------------------------------------------------ /json/2

fn json2_error(status: u16, e: &OdooError) -> Resp {
    json_resp(
        status,
        &json!({"name": e.name, "message": e.message, "arguments": [e.message], "context": {}, "debug": e.debug()}),
    )
}

fn json2(state: &State, method: &Method, rest: &str, headers: &HeaderMap, body: &Bytes) -> Resp {
    let mut ds = lock(&state.data);
    if !(ds.version == OdooVersion::V18 || ds.json2) {
        return not_found();
    }
    let Some((model, meth)) = rest.split_once('/') else {
        return not_found();
    };
    if meth.is_empty() || meth.contains('/') {
        return not_found();
    }
    if *method != Method::POST {
        return html_error(
            405,
            "Method Not Allowed",
            "The method is not allowed for the requested URL.",
        );
    }
    let key = header_str(headers, "authorization").and_then(|a| {
        let (scheme, key) = a.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| key.trim().to_string())
    });
    let user = key.as_deref().and_then(|k| ds.user_by_api_key(k)).cloned();
    let Some(user) = user else {
        let mut r = json_resp(
            401,
            &json!({"name": "werkzeug.exceptions.Unauthorized", "message": "Invalid apikey", "arguments": ["Invalid apikey", 401], "context": {}}),
        );
        add_header(&mut r, "www-authenticate", "bearer");
        return r;
    };
    if let Some(db) = header_str(headers, "x-odoo-database") {
        if db != ds.db {
            return json2_error(
                404,
                &OdooError::new(
                    "werkzeug.exceptions.NotFound",
                    format!("Database {db} not found"),
                ),
            );
        }
    }
    let mime = mime_of(headers);
    if !body.is_empty() && mime != "application/json" {
        return json2_error(
            400,
            &OdooError::new(
                "werkzeug.exceptions.BadRequest",
                "Invalid Content-Type, expected application/json",
            ),
        );
    }
    let mut named = if body.is_empty() {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(o)) => o,
            _ => {
                return json2_error(
                    400,
                    &OdooError::new(
                        "werkzeug.exceptions.BadRequest",
                        "Invalid JSON body, expected a JSON object",
                    ),
                )
            }
        }
    };
    if ds.model(model).is_none() {
        return json2_error(
            404,
            &OdooError::new(
                "werkzeug.exceptions.NotFound",
                format!("The model {model:?} does not exist."),
            ),
        );
    }
    let ids = named.remove("ids");
    let args = if is_model_method(meth) {
        Vec::new()
    } else {
        vec![ids.unwrap_or(json!([]))]
    };
    match orm::call_kw(&mut ds, user.uid, model, meth, args, named) {
        Ok(v) => json_resp(200, &v),
        Err(e) => {
            let status = match e.short_name() {
                "AccessError" => 403,
                "AccessDenied" => 401,
                "MissingError" => 404,
                "UserError" | "ValidationError" | "ValueError" | "TypeError" | "AttributeError"
                | "KeyError" | "IndexError" => 422,
                _ => 500,
            };
            json2_error(status, &e)
        }
    }
}

/// `@api.model` methods (no `ids`).
pub fn is_model_method(m: &str) -> bool {
    matches!(
        m,
        "search"
            | "search_count"
            | "search_read"
            | "search_fetch"
            | "web_search_read"
            | "fields_get"
            | "name_search"
            | "name_create"
            | "read_group"
            | "web_read_group"
            | "create"
            | "default_get"
            | "check_access_rights"
            | "get_views"
    )
}

// ------------------------------------------------------------------ XML-RPC

fn xml_rpc(state: &State, method: &Method, service: &str, body: &Bytes, legacy: bool) -> Resp {
    if *method != Method::POST {
        return html_error(
            405,
            "Method Not Allowed",
            "The method is not allowed for the requested URL.",
        );
    }
    let text = String::from_utf8_lossy(body);
    let out = match xmlrpc::decode_call(&text) {
        Err(e) => xmlrpc::encode_fault(
            if legacy {
                json!(format!("ExpatError: {e}"))
            } else {
                json!(1)
            },
            &format!("Traceback (most recent call last):\nxml.parsers.expat.ExpatError: {e}\n"),
        ),
        Ok((meth, params)) => {
            let mut ds = lock(&state.data);
            match dispatch_rpc(&mut ds, service, &meth, params) {
                Ok(v) => xmlrpc::encode_response(&v),
                Err(e) => {
                    if legacy {
                        let code = match e.short_name() {
                            "AccessDenied" => "AccessDenied".to_string(),
                            "AccessError" | "UserError" | "MissingError" | "ValidationError"
                            | "RedirectWarning" => {
                                format!("warning -- {}\n\n{}", e.short_name(), e.message)
                            }
                            _ => e.message.clone(),
                        };
                        let string = if e.short_name() == "AccessDenied" {
                            "Access Denied".to_string()
                        } else {
                            e.debug()
                        };
                        xmlrpc::encode_fault(json!(code), &string)
                    } else {
                        let (code, string) = match e.short_name() {
                            "RedirectWarning" | "UserError" | "MissingError"
                            | "ValidationError" => (2, e.message.clone()),
                            "AccessError" => (4, e.message.clone()),
                            "AccessDenied" => (3, e.message.clone()),
                            _ => (1, e.debug()),
                        };
                        xmlrpc::encode_fault(json!(code), &string)
                    }
                }
            }
        }
    };
    resp(200, "text/xml; charset=utf-8", out)
}
