//! Shared integration-test harness: a fake Odoo (tests/support) with BridgeCore in front of it,
//! both in-process on ephemeral loopback ports.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bridgecore::config::Config;
use bridgecore::filters::Filter;
use bridgecore::{BridgeCore, Running};
pub use fake_odoo::{Dataset, FakeOdoo};

/// A free loopback port (bound, then released).
///
/// BridgeCore's listeners get ports below the kernel's ephemeral range (32768+ on Linux), where
/// the fake Odoos and clients, which bind `:0`, never land: a port picked from the ephemeral
/// range and released could be handed to another test's socket before BridgeCore binds it, and
/// that test would then talk to the wrong server. Each test process walks its own slice of
/// 10000-32767 (by pid), skipping ports in use.
pub fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let slice = (std::process::id() as usize % 20) * 1000;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 10_000 + (slice + n) % 22_000;
        if TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// One tenant of a test configuration.
pub struct TenantSpec {
    pub name: String,
    pub hosts: Vec<String>,
    pub upstream: String,
    pub ws_upstream: String,
    /// Extra YAML lines for this tenant (indented by the helper).
    pub extra: String,
}

impl TenantSpec {
    pub fn for_odoo(name: &str, hosts: &[&str], odoo: &FakeOdoo) -> Self {
        TenantSpec {
            name: name.into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            upstream: odoo.addr().to_string(),
            ws_upstream: odoo.bus_addr().to_string(),
            extra: String::new(),
        }
    }

    pub fn extra(mut self, yaml: &str) -> Self {
        self.extra.push_str(yaml);
        self
    }
}

/// Renders a full YAML configuration listening on fresh ports.
pub fn yaml(tenants: &[TenantSpec], top_level_extra: &str) -> (String, u16, u16) {
    let port = free_port();
    let admin = free_port();
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let mut out = format!(
        "server:\n  listen: [\"127.0.0.1:{port}\"]\n  admin_listen: \"127.0.0.1:{admin}\"\n  threads: 1\n  grace_period: 0s\n  graceful_shutdown_timeout: 0s\n  pid_file: /tmp/bridgecore-test-{pid}-{n}.pid\n  upgrade_sock: /tmp/bridgecore-test-{pid}-{n}.sock\n  access_log: false\n"
    );
    out.push_str(top_level_extra);
    if !top_level_extra.contains("rate_limits:") {
        // Limits stay on (their code runs in every test) but far above what a test sends;
        // the rate-limit tests set their own.
        out.push_str("rate_limits: {auth: 100000/second, read: 100000/second, write: 100000/second, delete: 100000/second}\n");
    }
    out.push_str("tenants:\n");
    for t in tenants {
        out.push_str(&format!(
            "  {}:\n    hosts: [{}]\n    upstream: [\"{}\"]\n    websocket_upstream: [\"{}\"]\n    database: odoo\n",
            t.name,
            t.hosts.iter().map(|h| format!("\"{h}\"")).collect::<Vec<_>>().join(", "),
            t.upstream,
            t.ws_upstream,
        ));
        for line in t.extra.lines() {
            out.push_str("    ");
            out.push_str(line);
            out.push('\n');
        }
        if !t.extra.contains("health_check") {
            // Health checks would add requests to the fake's counts that tests assert on;
            // tests/upstreams.rs turns them on.
            out.push_str("    health_check: {interval: 0s}\n");
        }
    }
    (out, port, admin)
}

/// Adds `server:` keys (one `key: value` line, or several separated by `\n  `) to a text made
/// by [`yaml`].
pub fn with_server_keys(text: &str, keys: &str) -> String {
    text.replacen("  threads: 1\n", &format!("  threads: 1\n  {keys}\n"), 1)
}

/// Starts BridgeCore on a YAML text.
pub fn start_yaml(text: &str, filters: Vec<Arc<dyn Filter>>) -> Running {
    start_yaml_with_clock(text, filters, None)
}

/// Starts BridgeCore with rate-limit time driven by `clock` (tests move it by hand).
pub fn start_yaml_with_clock(
    text: &str,
    filters: Vec<Arc<dyn Filter>>,
    clock: Option<Arc<dyn bridgecore::filters::rate_limit::Clock>>,
) -> Running {
    let config = match Config::from_yaml(text, "test.yaml") {
        Ok(c) => c,
        Err(e) => panic!("invalid test config:\n{e}\n---\n{text}"),
    };
    let mut b = BridgeCore::builder(config);
    for f in filters {
        b = b.filter(f);
    }
    if let Some(c) = clock {
        b = b.clock(c);
    }
    Running::start(b.build().unwrap()).unwrap()
}

/// A fake Odoo with one tenant `odoo` in front of it (any Host).
pub struct Harness {
    pub odoo: FakeOdoo,
    pub bc: Running,
}

impl Harness {
    pub fn start() -> Self {
        Self::with(Dataset::demo(), "", "", Vec::new())
    }

    pub fn with(
        data: Dataset,
        tenant_extra: &str,
        top_extra: &str,
        filters: Vec<Arc<dyn Filter>>,
    ) -> Self {
        let odoo = FakeOdoo::start(data);
        let spec = TenantSpec::for_odoo("odoo", &["erp.example.com"], &odoo).extra(tenant_extra);
        let (text, _, _) = yaml(&[spec], top_extra);
        let bc = start_yaml(&text, filters);
        Harness { odoo, bc }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.bc.addr(), path)
    }

    pub fn direct(&self, path: &str) -> String {
        format!("http://{}{}", self.odoo.addr(), path)
    }

    pub fn admin(&self, path: &str) -> String {
        format!("http://{}{}", self.bc.admin_addr().unwrap(), path)
    }
}

/// A plain client: no automatic decompression, no redirects, no cookies.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .no_zstd()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// POSTs `body` as JSON with the web client's `session_id` cookie, as the browser does.
pub async fn post_as(
    url: impl reqwest::IntoUrl,
    sid: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    client()
        .post(url)
        .header("cookie", format!("session_id={sid}"))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A JSON-RPC envelope.
pub fn rpc(params: serde_json::Value, id: i64) -> serde_json::Value {
    serde_json::json!({"jsonrpc": "2.0", "method": "call", "params": params, "id": id})
}

/// Logs in through `/web/session/authenticate` at `base` and returns the session id.
pub async fn login(base: &str, login: &str, password: &str) -> String {
    let resp = client()
        .post(format!("{base}/web/session/authenticate"))
        .json(&rpc(
            serde_json::json!({"db": "odoo", "login": login, "password": password}),
            1,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("session_id="))
        .expect("a session cookie")
        .to_string();
    cookie
        .trim_start_matches("session_id=")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// `SocketAddr` of a URL-less address, for raw TCP tests.
pub fn addr(a: SocketAddr) -> SocketAddr {
    a
}

/// Waits up to two seconds for `cond` (work BridgeCore does after the answer is sent: logging,
/// metrics, filters' completion side).
pub async fn eventually(cond: impl Fn() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("condition not reached in 2 s");
}

/// Waits until BridgeCore's metrics contain `line` (they are counted after the answer is sent).
pub async fn metric_appears(bc: &Running, line: &str) {
    let handle = bc.handle().clone();
    let line = line.to_string();
    eventually(move || String::from_utf8_lossy(&handle.metrics()).contains(&line)).await;
}

/// A private Redis server this test can stop.
pub struct OwnRedis {
    child: std::process::Child,
    pub port: u16,
}

impl OwnRedis {
    pub fn start() -> Self {
        let port = free_port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed to run this test");
        let mut own = OwnRedis { child, port };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return own;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        own.stop();
        panic!("redis-server did not start on {port}");
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Decodes a body sent with `Content-Encoding: coding` (`gzip`, `br`, `zstd`; anything else is
/// returned as it is), with independent decoders.
pub fn decode(coding: &str, raw: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    match coding {
        "gzip" => {
            flate2::read::GzDecoder::new(raw)
                .read_to_end(&mut out)
                .unwrap();
        }
        "br" => {
            brotli::Decompressor::new(raw, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        "zstd" => out = zstd::stream::decode_all(raw).unwrap(),
        _ => out = raw.to_vec(),
    }
    out
}

/// Logs in through `POST /api/v1/auth/login` on system `odoo` and returns the access token.
pub async fn api_token(h: &Harness, login: &str, password: &str) -> String {
    let r = client()
        .post(h.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"system_id": "odoo", "login": login, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: serde_json::Value = r.json().await.unwrap();
    b["access_token"].as_str().unwrap().to_owned()
}

/// The JSON body of the last request the fake Odoo got on a path starting with `prefix`.
pub fn last_body(odoo: &FakeOdoo, prefix: &str) -> serde_json::Value {
    let seen = odoo
        .requests()
        .into_iter()
        .rev()
        .find(|s| s.path.starts_with(prefix))
        .unwrap();
    serde_json::from_slice(&seen.body).unwrap()
}

/// An XML-RPC answer as the client got it.
pub struct XmlAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub rewrite: Option<String>,
    pub body: String,
}

/// POSTs an XML-RPC `methodCall` of `method` with `params`, as Python's `xmlrpc.client` does.
pub async fn post_xmlrpc(url: String, method: &str, params: &[serde_json::Value]) -> XmlAnswer {
    let r = client()
        .post(url)
        .header("content-type", "text/xml")
        .body(fake_odoo::xmlrpc::encode_call(method, params))
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    XmlAnswer {
        status: r.status().as_u16(),
        content_type: header("content-type"),
        rewrite: header("x-bridgecore-rewrite"),
        body: r.text().await.unwrap(),
    }
}
