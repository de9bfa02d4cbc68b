//! Reloads (issue 7 item 2): a new configuration takes effect while Odoo's bus websocket stays
//! open; a configuration that cannot be built, or a broken file on SIGHUP, keeps the old one.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bridgecore::config::Config;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn read_call() -> Value {
    rpc(
        json!({"model": "res.partner", "method": "search_count", "args": [[]], "kwargs": {}}),
        1,
    )
}

async fn limit_header(url: &str, sid: &str) -> (u16, Option<String>) {
    let r = post_as(url, sid, &read_call()).await;
    let limit = r
        .headers()
        .get("x-ratelimit-limit")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), limit)
}

async fn subscribe(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    channel: &str,
) {
    ws.send(Message::Text(
        json!({"event_name": "subscribe", "data": {"channels": [channel], "last": 0}})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
    assert_eq!(v[0]["message"]["payload"]["channels"][0], channel);
}

#[tokio::test]
async fn a_reload_changes_limits_while_the_bus_websocket_stays_open() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let spec = || TenantSpec::for_odoo("odoo", &["erp.example.com"], &odoo);
    let (text, port, admin) = yaml(&[spec()], "rate_limits: {read: 1000/minute}\n");
    let bc = start_yaml(&text, Vec::new());
    let sid = odoo.new_session(2);
    let url = format!("http://{}/web/dataset/call_kw", bc.addr());
    assert_eq!(limit_header(&url, &sid).await, (200, Some("1000".into())));

    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/websocket", bc.addr()),
    )
    .unwrap();
    req.headers_mut()
        .insert("origin", "http://erp.example.com".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    subscribe(&mut ws, "before").await;

    // Same listeners, a new limit.
    let new_text = text.replace(
        "rate_limits: {read: 1000/minute}",
        "rate_limits: {read: 3/minute}",
    );
    assert_ne!(new_text, text);
    assert!(
        new_text.contains(&format!("127.0.0.1:{port}"))
            && new_text.contains(&format!("127.0.0.1:{admin}"))
    );
    bc.handle()
        .reload(Config::from_yaml(&new_text, "test.yaml").unwrap())
        .unwrap();

    // The websocket opened before the reload still works both ways ...
    subscribe(&mut ws, "after").await;
    // ... and new requests run under the new limit.
    assert_eq!(limit_header(&url, &sid).await.1.as_deref(), Some("3"));
    metric_appears(&bc, "bridgecore_config_reloads_total{result=\"ok\"} 1").await;

    // A configuration that validates but cannot be built (an upstream that does not resolve)
    // is refused, and the current one stays.
    let broken = new_text.replace(&odoo.addr().to_string(), "no-such-host.invalid:8069");
    assert!(bc
        .handle()
        .reload(Config::from_yaml(&broken, "test.yaml").unwrap())
        .is_err());
    assert_eq!(limit_header(&url, &sid).await.0, 200);
    assert_eq!(bc.handle().config().rate_limits.read.count, 3);
    subscribe(&mut ws, "still").await;
}

/// Reloads while requests stream in (issue 7, "a reload during heavy load"): four clients send
/// reads back to back while the configuration is swapped twenty times; every request is
/// answered, by the old configuration or the new one, and none fails or is cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_reloads_under_a_stream_of_requests_fail_none() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    let odoo = FakeOdoo::start(Dataset::demo());
    let spec = || TenantSpec::for_odoo("odoo", &["erp.example.com"], &odoo);
    let (text, _, _) = yaml(&[spec()], "rate_limits: {read: 100000/minute}\n");
    let bc = start_yaml(&text, Vec::new());
    let sid = odoo.new_session(2);
    let url = format!("http://{}/web/dataset/call_kw", bc.addr());
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (url, sid) = (url.clone(), sid.clone());
            let (stop, answered) = (stop.clone(), answered.clone());
            tokio::spawn(async move {
                let mut limits = std::collections::BTreeSet::new();
                while !stop.load(Ordering::Relaxed) {
                    let (status, limit) = limit_header(&url, &sid).await;
                    assert_eq!(status, 200, "limit {limit:?}");
                    limits.insert(limit.unwrap());
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                limits
            })
        })
        .collect();
    while answered.load(Ordering::Relaxed) < 20 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for i in 0..20 {
        let limit = if i % 2 == 0 { 90000 } else { 100000 };
        let t = text.replace("read: 100000/minute", &format!("read: {limit}/minute"));
        let handle = bc.handle().clone();
        tokio::task::spawn_blocking(move || {
            handle.reload(Config::from_yaml(&t, "test.yaml").unwrap())
        })
        .await
        .unwrap()
        .unwrap();
        // Some requests on each generation.
        let now = answered.load(Ordering::Relaxed);
        while answered.load(Ordering::Relaxed) < now + 4 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut limits = std::collections::BTreeSet::new();
    for c in clients {
        limits.extend(c.await.unwrap());
    }
    // Answers came from both kinds of generation, and all of them were 200 (asserted above).
    assert_eq!(
        limits.into_iter().collect::<Vec<_>>(),
        ["100000", "90000"],
        "{} answers",
        answered.load(Ordering::Relaxed)
    );
    metric_appears(&bc, "bridgecore_config_reloads_total{result=\"ok\"} 20").await;
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hup(pid: u32) {
    let ok = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// The real binary on `text`, written to `file`, once it answers on `port`.
async fn start_binary(text: &str, file: &std::path::Path, port: u16) -> Proc {
    std::fs::write(file, text).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_bridgecore"))
        .arg("-c")
        .arg(file)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    let mut up = false;
    for _ in 0..200 {
        if client()
            .get(format!("http://127.0.0.1:{port}/web/login"))
            .send()
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(up, "bridgecore did not start");
    proc
}

#[tokio::test]
async fn sighup_rereads_the_file_and_keeps_the_old_config_when_it_is_broken() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let (text, port, admin) = yaml(
        &[TenantSpec::for_odoo("odoo", &["erp.example.com"], &odoo)],
        "rate_limits: {read: 1000/minute}\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bridgecore.yaml");
    let mut proc = start_binary(&text, &file, port).await;
    let pid = proc.0.id();
    let url = format!("http://127.0.0.1:{port}/web/dataset/call_kw");
    let sid = odoo.new_session(2);
    assert_eq!(limit_header(&url, &sid).await.1.as_deref(), Some("1000"));

    // A broken file: logged, old config kept.
    std::fs::write(
        &file,
        text.replace(
            "rate_limits: {read: 1000/minute}",
            "rate_limits: {reed: 5/minute}",
        ),
    )
    .unwrap();
    hup(pid);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(limit_header(&url, &sid).await, (200, Some("1000".into())));
    // The refused reload is counted.
    let metrics = client()
        .get(format!("http://127.0.0.1:{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("bridgecore_config_reloads_total{result=\"error\"} 1"),
        "{metrics}"
    );

    // A good file: applied.
    std::fs::write(
        &file,
        text.replace(
            "rate_limits: {read: 1000/minute}",
            "rate_limits: {read: 7/minute}",
        ),
    )
    .unwrap();
    hup(pid);
    let mut limit = None;
    for _ in 0..100 {
        limit = limit_header(&url, &sid).await.1;
        if limit.as_deref() == Some("7") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(limit.as_deref(), Some("7"));
    let _ = proc.0.kill();
    let out = proc.0.wait_with_output_or_stderr();
    assert!(out.contains("reed"), "the broken key is logged: {out}");
}

trait StderrOf {
    fn wait_with_output_or_stderr(&mut self) -> String;
}

impl StderrOf for Child {
    fn wait_with_output_or_stderr(&mut self) -> String {
        let _ = self.wait();
        let mut s = String::new();
        if let Some(mut e) = self.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Odoo's bus socket through BridgeCore at `addr`, subscribed to the channel `before`.
async fn bus_socket(addr: &str) -> Ws {
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{addr}/websocket"),
    )
    .unwrap();
    req.headers_mut()
        .insert("origin", "http://erp.example.com".parse().unwrap());
    let (mut bus, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    subscribe(&mut bus, "before").await;
    bus
}

/// The bus socket still works both ways: it subscribes to `after` and gets what Odoo sends there.
async fn bus_still_works(bus: &mut Ws, odoo: &FakeOdoo) {
    subscribe(bus, "after").await;
    odoo.notify("after", "ping", json!({"n": 1}));
    let pushed = tokio::time::timeout(Duration::from_secs(5), bus.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(pushed.to_text().unwrap().contains("\"n\":1"), "{pushed:?}");
}

/// An API access token of `admin`, from BridgeCore at `base`.
async fn admin_token(base: &str) -> String {
    let login: Value = client()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"system_id": "odoo", "login": "admin", "password": "admin"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["access_token"].as_str().unwrap().to_owned()
}

/// BridgeCore's own socket at `addr`, with `token` in the header (not yet read from).
async fn own_socket(addr: &str, token: &str) -> Ws {
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{addr}/api/v1/ws"),
    )
    .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// Waits for `authenticated`, then subscribes to partners' names.
async fn subscribe_partners(own: &mut Ws) {
    assert_eq!(next_json(own).await["type"], "authenticated");
    own.send(Message::text(
        json!({"type": "subscribe_model", "system_id": "odoo", "model": "res.partner", "fields": ["name"]})
            .to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next_json(own).await["type"], "subscribed");
}

/// The next JSON text message on BridgeCore's own socket (pings skipped).
async fn next_json(ws: &mut Ws) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).unwrap(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_reload_changes_a_limit_while_both_kinds_of_websocket_stay_open_and_working() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let spec = TenantSpec::for_odoo("odoo", &["erp.example.com"], &odoo)
        .extra("service_login: admin\nservice_password: admin\n");
    let top = "auth:\n  jwt: {secret: \"a-reload-test-secret-of-more-than-32-bytes\"}\nwebsocket: {poll_interval: 200ms}\nrate_limits: {read: 1000/minute}\n";
    let (text, _, _) = yaml(&[spec], top);
    let bc = start_yaml(&text, Vec::new());
    let base = format!("http://{}", bc.addr());
    let sid = odoo.new_session(2);
    let url = format!("{base}/web/dataset/call_kw");
    assert_eq!(limit_header(&url, &sid).await, (200, Some("1000".into())));

    // Odoo's bus socket, through the proxy to the fake's gevent port.
    let mut bus = bus_socket(&bc.addr().to_string()).await;

    // BridgeCore's own socket, with an API token, subscribed to partners.
    let token = admin_token(&base).await;
    let mut own = own_socket(&bc.addr().to_string(), &token).await;
    subscribe_partners(&mut own).await;

    // The reload: same listeners, a new read limit.
    let new_text = text.replace("read: 1000/minute", "read: 4/minute");
    assert_ne!(new_text, text);
    bc.handle()
        .reload(Config::from_yaml(&new_text, "test.yaml").unwrap())
        .unwrap();
    metric_appears(&bc, "bridgecore_config_reloads_total{result=\"ok\"} 1").await;

    // New requests run under the new limit ...
    assert_eq!(limit_header(&url, &sid).await, (200, Some("4".into())));
    // ... Odoo's bus socket still works both ways ...
    bus_still_works(&mut bus, &odoo).await;
    // ... and BridgeCore's socket still gets live updates of writes made after the reload.
    let admin_sid = common::login(&base, "admin", "admin").await;
    let w = client()
        .post(format!("{base}/web/dataset/call_kw/res.partner/write"))
        .header("cookie", format!("session_id={admin_sid}"))
        .json(&rpc(
            json!({"model": "res.partner", "method": "write", "args": [[7], {"name": "After reload"}], "kwargs": {}}),
            1,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(w.status(), 200);
    let update = next_json(&mut own).await;
    assert_eq!(update["type"], "model_update", "{update}");
    assert_eq!(update["record_id"], 7);
    assert_eq!(update["data"]["name"], "After reload");
    // The sockets opened before the reload were never closed.
    own.send(Message::text(json!({"type": "ping"}).to_string()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut own).await["type"], "pong");
}

#[tokio::test]
async fn sighup_keeps_both_kinds_of_websocket_open_and_working_on_the_real_binary() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let spec = TenantSpec::for_odoo("odoo", &["erp.example.com"], &odoo)
        .extra("service_login: admin\nservice_password: admin\n");
    let top = "auth:\n  jwt: {secret: \"a-reload-test-secret-of-more-than-32-bytes\"}\nwebsocket: {poll_interval: 200ms, max_connections_per_user: 20}\nrate_limits: {read: 1000/minute}\n";
    let (text, port, admin) = yaml(&[spec], top);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bridgecore.yaml");
    let mut proc = start_binary(&text, &file, port).await;
    let pid = proc.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let sid = odoo.new_session(2);
    let url = format!("{base}/web/dataset/call_kw");
    assert_eq!(limit_header(&url, &sid).await, (200, Some("1000".into())));

    // Odoo's bus socket, through the binary to the fake's gevent port.
    let mut bus = bus_socket(&format!("127.0.0.1:{port}")).await;

    // BridgeCore's own socket, authenticated and subscribed.
    let token = admin_token(&base).await;
    let addr = format!("127.0.0.1:{port}");
    let mut own = own_socket(&addr, &token).await;
    subscribe_partners(&mut own).await;

    // The file changes (a read limit, and one socket per user from now on); SIGHUP.
    let new_text = text.replace("read: 1000/minute", "read: 4/minute").replace(
        "max_connections_per_user: 20",
        "max_connections_per_user: 1",
    );
    assert_ne!(new_text, text);
    std::fs::write(&file, &new_text).unwrap();
    hup(pid);
    let mut limit = None;
    for _ in 0..100 {
        limit = limit_header(&url, &sid).await.1;
        if limit.as_deref() == Some("4") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        limit.as_deref(),
        Some("4"),
        "the new read limit is in force"
    );
    // The new socket bound is too: admin's socket from before the signal counts.
    let mut second = own_socket(&addr, &token).await;
    let refused = tokio::time::timeout(Duration::from_secs(5), second.next())
        .await
        .unwrap();
    match refused {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 4429, "{}", f.reason),
        other => panic!("expected a 4429 close, got {other:?}"),
    }
    let metrics = client()
        .get(format!("http://127.0.0.1:{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("bridgecore_config_reloads_total{result=\"ok\"} 1"),
        "{metrics}"
    );

    // Odoo's bus socket still works both ways ...
    bus_still_works(&mut bus, &odoo).await;
    // ... and so does BridgeCore's: ping, and a write made after the signal.
    own.send(Message::text(
        json!({"type": "ping", "timestamp": 9}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(
        next_json(&mut own).await,
        json!({"type": "pong", "timestamp": 9})
    );
    let w = client()
        .post(format!("{base}/api/v1/systems/odoo/odoo/write"))
        .bearer_auth(&token)
        .json(&json!({"model": "res.partner", "ids": [7], "values": {"name": "After SIGHUP"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(w.status(), 200);
    let update = next_json(&mut own).await;
    assert_eq!(update["type"], "model_update", "{update}");
    assert_eq!(update["record_id"], 7);
    assert_eq!(update["data"]["name"], "After SIGHUP");
    let _ = proc.0.kill();
    let _ = proc.0.wait();
}
