//! Issue 6 end to end: live model updates over `/api/v1/ws`, against the fake Odoo, with real
//! WebSocket clients and, for the multi-instance tests, the real Redis on 127.0.0.1:6379.
//! Every test uses a tenant name of its own, so Redis channels, leases and state never mix
//! between tests or runs.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bridgecore::Running;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const SECRET: &str = "a-websocket-test-secret-of-more-than-32-bytes";
const REDIS: &str = "redis:\n  url: \"redis://127.0.0.1:6379/0\"\ncache:\n  key_secret: \"a-shared-cache-key-secret-for-tests\"\n";
const WAIT: Duration = Duration::from_secs(5);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn unique(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "ws-{name}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fake Odoo and BridgeCore instances in front of it, all serving tenant `tenant`.
struct Setup {
    odoo: FakeOdoo,
    bcs: Vec<Running>,
    tenant: String,
}

/// Options of a setup.
#[derive(Clone)]
struct Opts {
    instances: usize,
    redis: bool,
    /// Extra `websocket:` keys, one per line, unindented.
    websocket: String,
    /// Extra `auth.jwt` flow keys (`, access_ttl: 2s`).
    jwt: String,
    service: bool,
    /// `websocket.ping_interval` (a test client answers pings only while it reads).
    ping: &'static str,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            instances: 1,
            redis: false,
            websocket: String::new(),
            jwt: String::new(),
            service: true,
            ping: "1s",
        }
    }
}

fn config(odoo: &FakeOdoo, tenant: &str, o: &Opts) -> String {
    let mut spec = TenantSpec::for_odoo(tenant, &["erp.example.com"], odoo);
    if o.service {
        spec = spec.extra("service_login: admin\nservice_password: admin\n");
    }
    let mut top = format!(
        "auth:\n  jwt: {{secret: \"{SECRET}\"{}}}\nwebsocket:\n  poll_interval: 200ms\n  ping_interval: {}\n",
        o.jwt, o.ping
    );
    for line in o.websocket.lines() {
        top.push_str("  ");
        top.push_str(line);
        top.push('\n');
    }
    if o.redis {
        top.push_str(REDIS);
    }
    yaml(&[spec], &top).0
}

fn setup(name: &str, o: Opts) -> Setup {
    let odoo = FakeOdoo::start(Dataset::demo());
    let tenant = unique(name);
    let bcs = (0..o.instances)
        .map(|_| start_yaml(&config(&odoo, &tenant, &o), Vec::new()))
        .collect();
    Setup { odoo, bcs, tenant }
}

impl Setup {
    fn url(&self, i: usize, path: &str) -> String {
        format!("http://{}{}", self.bcs[i].addr(), path)
    }

    async fn token(&self, i: usize, login: &str) -> String {
        let resp = client()
            .post(self.url(i, "/api/v1/auth/login"))
            .json(&json!({"system_id": self.tenant, "login": login, "password": login}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// `POST /api/v1/systems/{tenant}/odoo/{op}`.
    async fn api(&self, i: usize, token: &str, op: &str, body: Value) -> Value {
        let resp = client()
            .post(self.url(i, &format!("/api/v1/systems/{}/odoo/{op}", self.tenant)))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body["result"].clone()
    }

    /// A raw JSON-RPC `call_kw` through the proxy with an Odoo session cookie.
    async fn call_kw(&self, i: usize, sid: &str, model: &str, method: &str, args: Value) -> Value {
        let resp = post_as(
            self.url(i, &format!("/web/dataset/call_kw/{model}/{method}")),
            sid,
            &rpc(
                json!({"model": model, "method": method, "args": args, "kwargs": {}}),
                1,
            ),
        )
        .await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// Opens a socket with the token in `Authorization` and takes the `authenticated` message.
    async fn open(&self, i: usize, token: &str) -> Ws {
        let mut ws = connect(&self.bcs[i], "/api/v1/ws", Some(token)).await;
        let hello = next(&mut ws).await;
        assert_eq!(hello["type"], "authenticated", "{hello}");
        ws
    }

    /// Authenticated sockets of this setup's tenant on instance `i`.
    async fn tenant_connections(&self, i: usize) -> Value {
        self.stats(i).await["tenants"][&self.tenant]["connections"].clone()
    }

    async fn stats(&self, i: usize) -> Value {
        let url = format!(
            "http://{}/api/v1/ws/stats",
            self.bcs[i].admin_addr().unwrap()
        );
        client()
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

async fn connect(bc: &Running, path: &str, token: Option<&str>) -> Ws {
    let mut req = format!("ws://{}{}", bc.addr(), path)
        .into_client_request()
        .unwrap();
    if let Some(t) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next JSON message (pings and pongs skipped).
async fn next(ws: &mut Ws) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).unwrap(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// Asserts nothing but pings arrives for `d`.
async fn quiet(ws: &mut Ws, d: Duration) {
    let deadline = Instant::now() + d;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("expected silence, got {other:?}"),
        }
    }
}

/// Reads until the close frame: its code and reason.
async fn closed(ws: &mut Ws) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => return (f.code.into(), f.reason.to_string()),
            Ok(Some(Ok(Message::Close(None)))) => return (1005, String::new()),
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

async fn subscribe(ws: &mut Ws, tenant: &str, extra: Value) -> String {
    let mut msg = json!({"type": "subscribe_model", "system_id": tenant});
    for (k, v) in extra.as_object().unwrap() {
        msg[k] = v.clone();
    }
    send(ws, msg).await;
    let answer = next(ws).await;
    assert_eq!(answer["type"], "subscribed", "{answer}");
    answer["subscription_id"].as_str().unwrap().to_owned()
}

async fn refused(ws: &mut Ws, tenant: &str, extra: Value) -> Value {
    let mut msg = json!({"type": "subscribe_model", "system_id": tenant});
    for (k, v) in extra.as_object().unwrap() {
        msg[k] = v.clone();
    }
    send(ws, msg).await;
    let answer = next(ws).await;
    assert_eq!(answer["type"], "error", "{answer}");
    answer
}

/// The first frame that is not a ping or a pong.
async fn first_frame(ws: &mut Ws) -> Message {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(m))) => return m,
            other => panic!("expected a frame, got {other:?}"),
        }
    }
}

/// Asserts the server closes `ws` at once with 4429 for the tenant's `max_connections`
/// (not the per-user bound), before any other message.
async fn refused_for_the_tenant(ws: &mut Ws, max: usize) {
    match first_frame(ws).await {
        Message::Close(Some(f)) => {
            assert_eq!(u16::from(f.code), 4429, "{}", f.reason);
            assert!(
                f.reason
                    .contains(&format!("websocket.max_connections = {max}")),
                "{}",
                f.reason
            );
        }
        other => panic!("expected a 4429 close, got {other:?}"),
    }
}

/// ORM calls of `method` on `model` the fake Odoo saw after its first `skip` requests, counted
/// by the uid of the session they carried (`None`: no logged-in session).
fn calls_by_user(
    odoo: &FakeOdoo,
    skip: usize,
    model: &str,
    method: &str,
) -> BTreeMap<Option<i64>, usize> {
    let sessions: HashMap<String, Option<i64>> = odoo.sessions().into_iter().collect();
    let mut out = BTreeMap::new();
    for seen in odoo.requests().into_iter().skip(skip) {
        if seen.orm_call() != Some((model.to_owned(), method.to_owned())) {
            continue;
        }
        let uid = seen
            .header("cookie")
            .and_then(|c| {
                c.split(';')
                    .find_map(|kv| kv.trim().strip_prefix("session_id="))
            })
            .and_then(|sid| sessions.get(sid).copied().flatten());
        *out.entry(uid).or_default() += 1;
    }
    out
}

// === events from writes through BridgeCore ===

#[tokio::test]
async fn a_write_through_bridgecore_reaches_the_subscriber() {
    let s = setup("write", Opts::default());
    let token = s.token(0, "admin").await;
    let mut ws = s.open(0, &token).await;
    let sub = subscribe(
        &mut ws,
        &s.tenant,
        json!({"model": "res.partner", "fields": ["name", "email"]}),
    )
    .await;

    // A raw JSON-RPC write through the proxy.
    let base = format!("http://{}", s.bcs[0].addr());
    let sid = login(&base, "admin", "admin").await;
    let answer = s
        .call_kw(
            0,
            &sid,
            "res.partner",
            "write",
            json!([[7], {"name": "Renamed"}]),
        )
        .await;
    assert_eq!(answer["result"], true);
    let u = next(&mut ws).await;
    assert_eq!(u["type"], "model_update", "{u}");
    assert_eq!(u["system_id"], s.tenant);
    assert_eq!(u["model"], "res.partner");
    assert_eq!(u["record_id"], 7);
    assert_eq!(u["operation"], "write");
    assert_eq!(u["source"], "bridgecore");
    assert_eq!(u["subscription_id"], sub.as_str());
    assert_eq!(u["data"]["name"], "Renamed");
    assert!(u["data"]["email"].is_string(), "{u}");
    assert!(
        u["data"].get("phone").is_none(),
        "only the asked fields: {u}"
    );
    assert!(u["write_date"].is_string(), "{u}");

    // A write Odoo refuses publishes nothing.
    let answer = s
        .call_kw(
            0,
            &sid,
            "res.partner",
            "write",
            json!([[999_999], {"name": "x"}]),
        )
        .await;
    assert!(answer.get("error").is_some(), "{answer}");
    // Neither does a read.
    s.call_kw(0, &sid, "res.partner", "read", json!([[7], ["name"]]))
        .await;
    // Nor, later, the poller: the write through BridgeCore is reported once.
    quiet(&mut ws, Duration::from_millis(1500)).await;
}

#[tokio::test]
async fn api_creates_and_unlinks_carry_their_ids() {
    let s = setup("create", Opts::default());
    let token = s.token(0, "admin").await;
    let mut ws = s.open(0, &token).await;
    subscribe(&mut ws, &s.tenant, json!({"model": "res.partner"})).await;
    let id = s
        .api(
            0,
            &token,
            "create",
            json!({"model": "res.partner", "values": {"name": "New"}}),
        )
        .await;
    let id = id.as_i64().unwrap();
    let u = next(&mut ws).await;
    assert_eq!(
        (
            u["operation"].clone(),
            u["record_id"].clone(),
            u["source"].clone()
        ),
        (json!("create"), json!(id), json!("bridgecore")),
        "{u}"
    );
    assert_eq!(
        u["data"],
        Value::Null,
        "no fields asked: ids and operation only"
    );
    // A button-like call counts as a write.
    s.api(
        0,
        &token,
        "call",
        json!({"model": "res.partner", "method": "action_archive", "ids": [id]}),
    )
    .await;
    let u = next(&mut ws).await;
    assert_eq!(
        (u["operation"].clone(), u["record_id"].clone()),
        (json!("write"), json!(id))
    );
    s.api(
        0,
        &token,
        "unlink",
        json!({"model": "res.partner", "ids": [id]}),
    )
    .await;
    let u = next(&mut ws).await;
    assert_eq!(
        (u["operation"].clone(), u["record_id"].clone()),
        (json!("unlink"), json!(id)),
        "{u}"
    );
    quiet(&mut ws, Duration::from_millis(1200)).await;
}

#[tokio::test]
async fn external_rpc_writes_publish_too() {
    let s = setup("rpc", Opts::default());
    let token = s.token(0, "admin").await;
    let mut ws = s.open(0, &token).await;
    subscribe(&mut ws, &s.tenant, json!({"model": "res.partner"})).await;
    // /jsonrpc execute_kw.
    let resp: Value = client()
        .post(s.url(0, "/jsonrpc"))
        .json(&rpc(
            json!({"service": "object", "method": "execute_kw",
                "args": ["odoo", 2, "admin", "res.partner", "write", [[11], {"name": "Via jsonrpc"}]]}),
            1,
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["result"], true, "{resp}");
    let u = next(&mut ws).await;
    assert_eq!(
        (u["record_id"].clone(), u["operation"].clone()),
        (json!(11), json!("write"))
    );
    // XML-RPC create: the id comes from the XML answer.
    let body = "<?xml version=\"1.0\"?><methodCall><methodName>execute_kw</methodName><params>\
        <param><value><string>odoo</string></value></param><param><value><int>2</int></value></param>\
        <param><value><string>admin</string></value></param><param><value><string>res.partner</string></value></param>\
        <param><value><string>create</string></value></param>\
        <param><value><array><data><value><struct><member><name>name</name><value><string>Via XML</string></value></member></struct></value></data></array></value></param>\
        </params></methodCall>";
    let answer = client()
        .post(s.url(0, "/xmlrpc/2/object"))
        .header("content-type", "text/xml")
        .body(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let u = next(&mut ws).await;
    assert_eq!(u["operation"], "create", "{u}");
    let id = u["record_id"].as_i64().unwrap();
    assert!(answer.contains(&format!("<int>{id}</int>")), "{answer}");
}

#[tokio::test]
async fn an_odoo_session_that_ended_closes_its_sockets() {
    let s = setup("ended", Opts::default());
    let admin = s.token(0, "admin").await;
    let demo = s.token(0, "demo").await;
    let mut ws = s.open(0, &demo).await;
    subscribe(&mut ws, &s.tenant, json!({"model": "sale.order"})).await;
    for (sid, uid) in s.odoo.sessions() {
        if uid == Some(6) {
            s.odoo.expire_session(&sid);
        }
    }
    s.api(
        0,
        &admin,
        "write",
        json!({"model": "sale.order", "ids": [3], "values": {"note": "z"}}),
    )
    .await;
    let (code, reason) = closed(&mut ws).await;
    assert_eq!(code, 4401, "{reason}");
}

#[tokio::test]
async fn two_instances_on_one_redis_share_events() {
    let s = setup(
        "redis2",
        Opts {
            instances: 2,
            redis: true,
            ..Opts::default()
        },
    );
    let token_b = s.token(1, "admin").await;
    let mut ws = s.open(1, &token_b).await;
    subscribe(
        &mut ws,
        &s.tenant,
        json!({"model": "res.partner", "fields": ["name"]}),
    )
    .await;
    let token_a = s.token(0, "admin").await;
    s.api(
        0,
        &token_a,
        "write",
        json!({"model": "res.partner", "ids": [9], "values": {"name": "Via A"}}),
    )
    .await;
    let u = next(&mut ws).await;
    assert_eq!(u["record_id"], 9, "{u}");
    assert_eq!(u["data"]["name"], "Via A");
    assert_eq!(u["source"], "bridgecore");
    quiet(&mut ws, Duration::from_millis(1200)).await;
    let stats = s.stats(0).await;
    assert_eq!(stats["redis"], true);
}

// === events from Odoo itself ===

#[tokio::test]
async fn a_change_made_in_odoo_arrives_once_from_the_poller() {
    let s = setup("poll", Opts::default());
    let token = s.token(0, "admin").await;
    let mut ws = s.open(0, &token).await;
    subscribe(
        &mut ws,
        &s.tenant,
        json!({"model": "res.partner", "fields": ["name"]}),
    )
    .await;
    // Let the poller take its baseline.
    tokio::time::sleep(Duration::from_millis(600)).await;
    s.odoo
        .write_record("res.partner", 12, json!({"name": "Changed in Odoo"}))
        .unwrap();
    let u = next(&mut ws).await;
    assert_eq!(u["record_id"], 12, "{u}");
    assert_eq!(u["operation"], "write");
    assert_eq!(u["source"], "odoo");
    assert_eq!(u["data"]["name"], "Changed in Odoo");
    assert!(u["write_date"].is_string());
    let created = s
        .odoo
        .create_record("res.partner", json!({"name": "Born in Odoo"}))
        .unwrap();
    let u = next(&mut ws).await;
    assert_eq!(
        (u["record_id"].clone(), u["operation"].clone()),
        (json!(created), json!("create")),
        "{u}"
    );
    // Polls keep overlapping the window: each change was reported once.
    quiet(&mut ws, Duration::from_millis(1500)).await;
    let stats = s.stats(0).await;
    assert_eq!(
        stats["tenants"][&s.tenant]["pollers"]["res.partner"],
        "active"
    );
}

#[tokio::test]
async fn deletions_of_listed_records_are_detected() {
    let s = setup("unlink", Opts::default());
    let token = s.token(0, "admin").await;
    let mut ws = s.open(0, &token).await;
    let listed = subscribe(
        &mut ws,
        &s.tenant,
        json!({"model": "res.partner", "record_ids": [20, 21]}),
    )
    .await;
    s.odoo.unlink_records("res.partner", &[21]).unwrap();
    let u = next(&mut ws).await;
    assert_eq!(
        (
            u["record_id"].clone(),
            u["operation"].clone(),
            u["source"].clone()
        ),
        (json!(21), json!("unlink"), json!("odoo")),
        "{u}"
    );
    assert_eq!(u["subscription_id"], listed.as_str());
    quiet(&mut ws, Duration::from_millis(1000)).await;
}

#[tokio::test]
async fn with_no_subscribers_there_is_no_polling() {
    let s = setup("idle", Opts::default());
    let token = s.token(0, "admin").await;
    let mut ws = s.open(0, &token).await;
    let id = subscribe(&mut ws, &s.tenant, json!({"model": "res.country"})).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let polls = || s.odoo.count_calls("res.country", "search_read");
    assert!(polls() >= 2, "the poller runs: {}", polls());
    send(
        &mut ws,
        json!({"type": "unsubscribe_model", "subscription_id": id}),
    )
    .await;
    assert_eq!(next(&mut ws).await["type"], "unsubscribed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = polls();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(polls(), after, "no subscribers, no polling");
}

#[tokio::test]
async fn three_instances_run_one_poller_between_them() {
    let s = setup(
        "lease",
        Opts {
            instances: 3,
            redis: true,
            ping: "10s",
            ..Opts::default()
        },
    );
    let mut sockets = Vec::new();
    for i in 0..3 {
        let token = s.token(i, "admin").await;
        let mut ws = s.open(i, &token).await;
        subscribe(
            &mut ws,
            &s.tenant,
            json!({"model": "res.partner", "fields": ["name"]}),
        )
        .await;
        sockets.push(ws);
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut active = 0;
    for i in 0..3 {
        let st = s.stats(i).await;
        match st["tenants"][&s.tenant]["pollers"]["res.partner"].as_str() {
            Some("active") => active += 1,
            Some("standby") => {}
            other => panic!("instance {i}: poller {other:?}"),
        }
    }
    assert_eq!(active, 1, "one poller across the instances");
    // About one poll per interval, not three.
    let before = s.odoo.count_calls("res.partner", "search_read");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let polls = s.odoo.count_calls("res.partner", "search_read") - before;
    assert!((5..=14).contains(&polls), "{polls} polls in 2 s at 200 ms");
    // Every subscriber gets a direct change, once.
    s.odoo
        .write_record("res.partner", 14, json!({"name": "Seen by all"}))
        .unwrap();
    for ws in &mut sockets {
        let u = next(ws).await;
        assert_eq!(
            (u["record_id"].clone(), u["source"].clone()),
            (json!(14), json!("odoo"))
        );
    }
    for ws in &mut sockets {
        quiet(ws, Duration::from_millis(800)).await;
    }
}

// === access ===

#[tokio::test]
async fn subscriptions_odoo_does_not_allow_are_refused() {
    let s = setup("refuse", Opts::default());
    let token = s.token(0, "demo").await;
    let mut ws = s.open(0, &token).await;
    let e = refused(&mut ws, &s.tenant, json!({"model": "account.move"})).await;
    assert_eq!(e["code"], "forbidden", "{e}");
    let e = refused(&mut ws, &s.tenant, json!({"model": "no.such.model"})).await;
    assert_eq!(e["code"], "unknown_model", "{e}");
    // Order 4 is not demo's: its record rule hides it.
    let e = refused(
        &mut ws,
        &s.tenant,
        json!({"model": "sale.order", "record_ids": [3, 4]}),
    )
    .await;
    assert_eq!(e["code"], "unknown_records", "{e}");
    assert!(e["message"].as_str().unwrap().contains('4'));
    let e = refused(&mut ws, "elsewhere", json!({"model": "sale.order"})).await;
    assert_eq!(e["code"], "unknown_system", "{e}");
    let e = refused(
        &mut ws,
        &s.tenant,
        json!({"model": "sale.order", "fields": ["nope"]}),
    )
    .await;
    assert_eq!(e["code"], "unknown_fields", "{e}");
    // The socket stays usable.
    subscribe(
        &mut ws,
        &s.tenant,
        json!({"model": "sale.order", "record_ids": [3]}),
    )
    .await;
}

#[tokio::test]
async fn record_rules_and_record_ids_filter_updates() {
    let s = setup("rules", Opts::default());
    let admin = s.token(0, "admin").await;
    let demo = s.token(0, "demo").await;
    let mut whole = s.open(0, &demo).await;
    let mut only3 = s.open(0, &demo).await;
    subscribe(
        &mut whole,
        &s.tenant,
        json!({"model": "sale.order", "fields": ["name"]}),
    )
    .await;
    subscribe(
        &mut only3,
        &s.tenant,
        json!({"model": "sale.order", "record_ids": [3]}),
    )
    .await;
    // Admin writes one of demo's orders and one demo may not see.
    s.api(
        0,
        &admin,
        "write",
        json!({"model": "sale.order", "ids": [4, 5], "values": {"note": "x"}}),
    )
    .await;
    let u = next(&mut whole).await;
    assert_eq!(u["record_id"], 5, "{u}");
    assert_eq!(u["data"]["name"], "S00005");
    quiet(&mut whole, Duration::from_millis(800)).await;
    quiet(&mut only3, Duration::from_millis(100)).await;
    s.api(
        0,
        &admin,
        "write",
        json!({"model": "sale.order", "ids": [3], "values": {"note": "y"}}),
    )
    .await;
    assert_eq!(next(&mut whole).await["record_id"], 3);
    let u = next(&mut only3).await;
    assert_eq!(u["record_id"], 3);
    assert_eq!(u["data"], Value::Null);
    // A deletion demo was never told about is not disclosed to the model-wide subscription.
    s.api(
        0,
        &admin,
        "unlink",
        json!({"model": "sale.order", "ids": [6]}),
    )
    .await;
    quiet(&mut whole, Duration::from_millis(800)).await;
    // One it was told about is.
    s.api(
        0,
        &admin,
        "unlink",
        json!({"model": "sale.order", "ids": [5]}),
    )
    .await;
    let u = next(&mut whole).await;
    assert_eq!(
        (u["record_id"].clone(), u["operation"].clone()),
        (json!(5), json!("unlink"))
    );
}

#[tokio::test]
async fn fields_carry_only_what_the_subscriber_may_read() {
    let s = setup("fields", Opts::default());
    s.odoo.with_data(|ds| {
        let m = ds.model_mut("res.partner").unwrap();
        m.fields.insert(
            "secret_note".into(),
            fake_odoo::Field::char("Secret").groups(&["base.group_system"]),
        );
    });
    s.odoo
        .write_record("res.partner", 7, json!({"secret_note": "top secret"}))
        .unwrap();
    let demo = s.token(0, "demo").await;
    let admin = s.token(0, "admin").await;
    let mut ws_demo = s.open(0, &demo).await;
    let e = refused(
        &mut ws_demo,
        &s.tenant,
        json!({"model": "res.partner", "fields": ["name", "secret_note"]}),
    )
    .await;
    assert_eq!(e["code"], "unknown_fields", "{e}");
    assert!(e["message"].as_str().unwrap().contains("secret_note"));
    subscribe(
        &mut ws_demo,
        &s.tenant,
        json!({"model": "res.partner", "fields": ["name"]}),
    )
    .await;
    let mut ws_admin = s.open(0, &admin).await;
    subscribe(
        &mut ws_admin,
        &s.tenant,
        json!({"model": "res.partner", "fields": ["name", "secret_note"]}),
    )
    .await;
    s.api(
        0,
        &admin,
        "write",
        json!({"model": "res.partner", "ids": [7], "values": {"name": "Both see it"}}),
    )
    .await;
    let d = next(&mut ws_demo).await;
    assert_eq!(d["data"], json!({"name": "Both see it"}), "{d}");
    let a = next(&mut ws_admin).await;
    assert_eq!(
        a["data"],
        json!({"name": "Both see it", "secret_note": "top secret"})
    );
}

#[tokio::test]
async fn one_change_is_checked_once_per_user_however_many_sockets_they_have() {
    let s = setup("batch", Opts::default());
    // Admin logs in twice (two Odoo sessions), demo once; five sockets in all.
    let admin1 = s.token(0, "admin").await;
    let admin2 = s.token(0, "admin").await;
    let demo = s.token(0, "demo").await;
    let mut sockets = Vec::new();
    for token in [&admin1, &admin1, &admin2, &demo, &demo] {
        let mut ws = s.open(0, token).await;
        subscribe(&mut ws, &s.tenant, json!({"model": "res.partner"})).await;
        sockets.push(ws);
    }
    let before = s.odoo.count();
    s.api(
        0,
        &admin1,
        "write",
        json!({"model": "res.partner", "ids": [7], "values": {"name": "Checked once"}}),
    )
    .await;
    for ws in &mut sockets {
        let u = next(ws).await;
        assert_eq!(
            (
                u["record_id"].clone(),
                u["operation"].clone(),
                u["data"].clone()
            ),
            (json!(7), json!("write"), Value::Null),
            "{u}"
        );
    }
    for ws in &mut sockets {
        quiet(ws, Duration::from_millis(300)).await;
    }
    // One `search` with admin's session and one with demo's: not one per socket, nor per login.
    let per_user: BTreeMap<Option<i64>, usize> = [(Some(2), 1), (Some(6), 1)].into();
    assert_eq!(
        calls_by_user(&s.odoo, before, "res.partner", "search"),
        per_user
    );
    // No `fields`: nothing is read.
    assert!(calls_by_user(&s.odoo, before, "res.partner", "read").is_empty());
}

#[tokio::test]
async fn fields_are_read_once_per_user_with_the_union_of_their_subscriptions() {
    let s = setup("batch-fields", Opts::default());
    let admin1 = s.token(0, "admin").await;
    let admin2 = s.token(0, "admin").await;
    let demo = s.token(0, "demo").await;
    let plan: [(&str, &[&str]); 5] = [
        (admin1.as_str(), &["name"]),
        (admin1.as_str(), &["email"]),
        (admin2.as_str(), &["name", "phone"]),
        (demo.as_str(), &["name"]),
        (demo.as_str(), &["email"]),
    ];
    let mut sockets = Vec::new();
    for (token, fields) in plan {
        let mut ws = s.open(0, token).await;
        subscribe(
            &mut ws,
            &s.tenant,
            json!({"model": "res.partner", "fields": fields}),
        )
        .await;
        sockets.push((ws, fields));
    }
    let before = s.odoo.count();
    s.api(
        0,
        &admin1,
        "write",
        json!({"model": "res.partner", "ids": [7], "values": {"name": "Read once", "email": "once@example.com"}}),
    )
    .await;
    for (ws, fields) in &mut sockets {
        let u = next(ws).await;
        assert_eq!(u["record_id"], 7, "{u}");
        let data = u["data"].as_object().unwrap();
        let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut asked = fields.to_vec();
        asked.sort_unstable();
        assert_eq!(keys, asked, "each socket gets its own fields: {u}");
        if fields.contains(&"name") {
            assert_eq!(data["name"], "Read once");
        }
        if fields.contains(&"email") {
            assert_eq!(data["email"], "once@example.com");
        }
    }
    for (ws, _) in &mut sockets {
        quiet(ws, Duration::from_millis(300)).await;
    }
    let per_user: BTreeMap<Option<i64>, usize> = [(Some(2), 1), (Some(6), 1)].into();
    assert_eq!(
        calls_by_user(&s.odoo, before, "res.partner", "search"),
        per_user
    );
    assert_eq!(
        calls_by_user(&s.odoo, before, "res.partner", "read"),
        per_user
    );
}

// === authentication ===

#[tokio::test]
async fn tokens_come_by_header_query_or_first_message() {
    let s = setup(
        "auth",
        Opts {
            websocket: "auth_timeout: 500ms".into(),
            ..Opts::default()
        },
    );
    let token = s.token(0, "demo").await;
    // ?token=
    let mut ws = connect(&s.bcs[0], &format!("/api/v1/ws?token={token}"), None).await;
    let hello = next(&mut ws).await;
    assert_eq!(
        (hello["type"].clone(), hello["uid"].clone()),
        (json!("authenticated"), json!(6))
    );
    // /api/v1/ws/{client_id} and a first auth message.
    let mut ws = connect(&s.bcs[0], "/api/v1/ws/my-phone", None).await;
    send(
        &mut ws,
        json!({"type": "subscribe_model", "model": "res.partner"}),
    )
    .await;
    assert_eq!(next(&mut ws).await["code"], "auth_required");
    send(
        &mut ws,
        json!({"type": "auth", "token": token, "request_id": 1}),
    )
    .await;
    let hello = next(&mut ws).await;
    assert_eq!(
        (hello["type"].clone(), hello["request_id"].clone()),
        (json!("authenticated"), json!(1))
    );
    // system_id defaults to the token's.
    subscribe(&mut ws, &s.tenant, json!({"model": "res.partner"})).await;
    // No token in time: 4401.
    let mut ws = connect(&s.bcs[0], "/api/v1/ws", None).await;
    let (code, reason) = closed(&mut ws).await;
    assert_eq!(code, 4401, "{reason}");
    // A bad token: 4401 at once.
    let mut ws = connect(&s.bcs[0], "/api/v1/ws", Some("not-a-token")).await;
    assert_eq!(closed(&mut ws).await.0, 4401);
    let mut ws = connect(&s.bcs[0], "/api/v1/ws", None).await;
    send(&mut ws, json!({"type": "auth", "token": "nope"})).await;
    let e = next(&mut ws).await;
    assert_eq!(e["type"], "error");
    assert_eq!(closed(&mut ws).await.0, 4401);
    // Not a WebSocket request: 426.
    let resp = client().get(s.url(0, "/api/v1/ws")).send().await.unwrap();
    assert_eq!(resp.status(), 426);
}

#[tokio::test]
async fn expired_and_revoked_tokens_close_the_socket() {
    let s = setup(
        "expiry",
        Opts {
            jwt: ", access_ttl: 2s, leeway: 0s".into(),
            ..Opts::default()
        },
    );
    let token = s.token(0, "demo").await;
    let mut ws = s.open(0, &token).await;
    let started = Instant::now();
    let (code, reason) = closed(&mut ws).await;
    assert_eq!(code, 4401);
    assert!(reason.contains("expired"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(4));

    // Logout revokes the session: the socket closes at the next check (ping_interval 1s).
    let login = client()
        .post(s.url(0, "/api/v1/auth/login"))
        .json(&json!({"system_id": s.tenant, "login": "demo", "password": "demo"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let access = login["access_token"].as_str().unwrap();
    let mut ws = s.open(0, access).await;
    let resp = client()
        .post(s.url(0, "/api/v1/auth/logout"))
        .bearer_auth(access)
        .json(&json!({"refresh_token": login["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let (code, reason) = closed(&mut ws).await;
    assert_eq!(code, 4401);
    assert!(reason.contains("session ended"), "{reason}");
}

#[tokio::test]
async fn a_fresher_token_extends_the_socket() {
    let s = setup(
        "reauth",
        Opts {
            jwt: ", access_ttl: 2s, leeway: 0s".into(),
            ..Opts::default()
        },
    );
    let token = s.token(0, "demo").await;
    let mut ws = s.open(0, &token).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let fresh = s.token(0, "demo").await;
    send(&mut ws, json!({"type": "auth", "token": fresh})).await;
    assert_eq!(next(&mut ws).await["type"], "authenticated");
    // Another user's token is refused; the socket stays.
    let other = s.token(0, "admin").await;
    send(&mut ws, json!({"type": "auth", "token": other})).await;
    assert_eq!(next(&mut ws).await["code"], "forbidden");
    // Past the first token's expiry, still open.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    send(&mut ws, json!({"type": "ping", "timestamp": 7})).await;
    assert_eq!(next(&mut ws).await, json!({"type": "pong", "timestamp": 7}));
}

// === limits and bad input ===

#[tokio::test]
async fn bad_messages_get_errors_and_the_socket_stays() {
    let s = setup("bad", Opts::default());
    let token = s.token(0, "demo").await;
    let mut ws = s.open(0, &token).await;
    ws.send(Message::text("{not json")).await.unwrap();
    assert_eq!(next(&mut ws).await["code"], "invalid_json");
    send(&mut ws, json!({"type": "dance"})).await;
    assert_eq!(next(&mut ws).await["code"], "unknown_type");
    send(
        &mut ws,
        json!({"type": "subscribe_model", "model": "res partner"}),
    )
    .await;
    assert_eq!(next(&mut ws).await["code"], "invalid_message");
    send(
        &mut ws,
        json!({"type": "unsubscribe_model", "subscription_id": "s99"}),
    )
    .await;
    assert_eq!(next(&mut ws).await["code"], "unknown_subscription");
    send(&mut ws, json!({"type": "ping", "request_id": "r"})).await;
    assert_eq!(
        next(&mut ws).await,
        json!({"type": "pong", "request_id": "r"})
    );
}

#[tokio::test]
async fn frames_the_protocol_does_not_take_close_with_their_codes() {
    let s = setup(
        "frames",
        Opts {
            websocket: "max_message_size: 1KiB".into(),
            ..Opts::default()
        },
    );
    let token = s.token(0, "demo").await;
    let mut ws = s.open(0, &token).await;
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(closed(&mut ws).await.0, 1003);

    let mut ws = s.open(0, &token).await;
    let invalid = Frame::message(vec![0xff, 0xfe, 0x80], OpCode::Data(Data::Text), true);
    ws.send(Message::Frame(invalid)).await.unwrap();
    assert_eq!(closed(&mut ws).await.0, 1007);

    let mut ws = s.open(0, &token).await;
    ws.send(Message::text("x".repeat(4096))).await.unwrap();
    assert_eq!(closed(&mut ws).await.0, 1009);
}

#[tokio::test]
async fn floods_are_limited_then_closed() {
    let s = setup(
        "flood",
        Opts {
            websocket: "message_rate: 5/second".into(),
            ..Opts::default()
        },
    );
    let token = s.token(0, "demo").await;
    let mut ws = s.open(0, &token).await;
    for _ in 0..5 {
        send(&mut ws, json!({"type": "ping"})).await;
    }
    for _ in 0..5 {
        assert_eq!(next(&mut ws).await["type"], "pong");
    }
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next(&mut ws).await["code"], "rate_limited");
    for _ in 0..100 {
        if ws.send(Message::text(r#"{"type":"ping"}"#)).await.is_err() {
            break;
        }
    }
    assert_eq!(closed(&mut ws).await.0, 1008);
}

#[tokio::test]
async fn subscriptions_and_connections_are_bounded() {
    let s = setup(
        "bounds",
        Opts {
            websocket: "max_subscriptions: 3\nmax_connections_per_user: 2\nmax_record_ids: 10\nmessage_rate: 1000/second".into(),
            ..Opts::default()
        },
    );
    let token = s.token(0, "admin").await;
    let mut ws = s.open(0, &token).await;
    for id in 1..=3 {
        subscribe(
            &mut ws,
            &s.tenant,
            json!({"model": "res.partner", "record_ids": [id]}),
        )
        .await;
    }
    for _ in 0..1000 {
        send(
            &mut ws,
            json!({"type": "subscribe_model", "model": "res.partner"}),
        )
        .await;
    }
    for _ in 0..1000 {
        assert_eq!(next(&mut ws).await["code"], "too_many_subscriptions");
    }
    let ids: Vec<i64> = (1..=11).collect();
    send(
        &mut ws,
        json!({"type": "subscribe_model", "model": "res.partner", "record_ids": ids}),
    )
    .await;
    assert_eq!(next(&mut ws).await["code"], "invalid_message");
    let _second = s.open(0, &token).await;
    let mut third = connect(&s.bcs[0], "/api/v1/ws", Some(&token)).await;
    assert_eq!(closed(&mut third).await.0, 4429);
}

#[tokio::test]
async fn a_slow_consumer_is_closed_and_counted() {
    let s = setup(
        "slow",
        Opts {
            websocket: "queue_size: 2\nsend_timeout: 20s".into(),
            ..Opts::default()
        },
    );
    let big = "y".repeat(512 * 1024);
    s.odoo
        .write_record("res.partner", 7, json!({"comment": big}))
        .unwrap();
    let token = s.token(0, "admin").await;
    // A client with a small receive buffer that stops reading.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let stream = sock.connect(s.bcs[0].addr()).await.unwrap();
    let mut req = format!("ws://{}/api/v1/ws", s.bcs[0].addr())
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream))
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await["type"], "authenticated");
    subscribe(
        &mut ws,
        &s.tenant,
        json!({"model": "res.partner", "fields": ["comment"]}),
    )
    .await;
    // Each update carries half a megabyte: the socket's buffers fill, then its queue.
    for i in 0..30 {
        s.api(
            0,
            &token,
            "write",
            json!({"model": "res.partner", "ids": [7], "values": {"name": format!("n{i}")}}),
        )
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let st = loop {
        let st = s.stats(0).await;
        if st["slow_consumers_closed"] == 1 || Instant::now() > deadline {
            break st;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(st["slow_consumers_closed"], 1, "{st}");
    assert!(st["messages_dropped"].as_u64().unwrap() >= 1);
    // Reading again: what was on the wire, then the close.
    let (code, reason) = closed(&mut ws).await;
    assert_eq!(code, 1013, "{reason}");
    metric_appears(
        &s.bcs[0],
        "bridgecore_ws_closed_total{reason=\"slow_consumer\"} 1",
    )
    .await;
}

#[tokio::test]
async fn the_tenant_connection_limit_counts_every_user_and_frees_a_slot_on_close() {
    let s = setup(
        "tenant-cap",
        Opts {
            websocket: "max_connections: 3\nmax_connections_per_user: 10".into(),
            ..Opts::default()
        },
    );
    let admin = s.token(0, "admin").await;
    let demo = s.token(0, "demo").await;
    let mut a1 = s.open(0, &admin).await;
    let _a2 = s.open(0, &admin).await;
    let _d1 = s.open(0, &demo).await;
    // Demo has one socket of ten, the tenant three of three: either user is refused.
    let mut over = connect(&s.bcs[0], "/api/v1/ws", Some(&demo)).await;
    refused_for_the_tenant(&mut over, 3).await;
    let mut over = connect(&s.bcs[0], "/api/v1/ws", Some(&admin)).await;
    refused_for_the_tenant(&mut over, 3).await;
    let st = s.stats(0).await;
    assert_eq!(st["tenants"][&s.tenant]["connections"], 3, "{st}");
    assert_eq!(st["tenants"][&s.tenant]["users"], 2, "{st}");

    // One of admin's sockets closes: its slot is free again, for demo too.
    a1.close(None).await.unwrap();
    assert!(matches!(first_frame(&mut a1).await, Message::Close(_)));
    let deadline = Instant::now() + WAIT;
    while s.tenant_connections(0).await != 2 {
        assert!(Instant::now() < deadline, "the closed socket still counts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut d2 = s.open(0, &demo).await;
    send(&mut d2, json!({"type": "ping", "timestamp": 1})).await;
    assert_eq!(next(&mut d2).await, json!({"type": "pong", "timestamp": 1}));
    // Full again.
    let mut over = connect(&s.bcs[0], "/api/v1/ws", Some(&admin)).await;
    refused_for_the_tenant(&mut over, 3).await;
}

#[tokio::test]
async fn the_server_pings_and_drops_a_client_that_stops_answering() {
    const EVERY: Duration = Duration::from_millis(500);
    let s = setup(
        "pings",
        Opts {
            ping: "500ms",
            ..Opts::default()
        },
    );
    let token = s.token(0, "demo").await;
    let started = Instant::now();
    // Takes its `authenticated`, then is never read again: it never answers a ping.
    let mut silent = s.open(0, &token).await;
    // Read all along: tungstenite answers each ping with a pong.
    let mut live = s.open(0, &token).await;
    assert_eq!(s.tenant_connections(0).await, 2);
    let mut pings = 0;
    let mut first_ping = None;
    let mut dropped_after = None;
    let mut check = tokio::time::interval(Duration::from_millis(50));
    let give_up = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(give_up);
    while dropped_after.is_none() || pings < 6 {
        tokio::select! {
            _ = &mut give_up => {
                panic!("{pings} pings; silent socket dropped after {dropped_after:?}")
            }
            m = live.next() => match m {
                Some(Ok(Message::Ping(_))) => {
                    pings += 1;
                    first_ping.get_or_insert(started.elapsed());
                }
                other => panic!("the answering socket got {other:?}"),
            },
            _ = check.tick(), if dropped_after.is_none() => {
                if s.tenant_connections(0).await == 1 {
                    dropped_after = Some(started.elapsed());
                }
            }
        }
    }
    let first_ping = first_ping.unwrap();
    assert!(first_ping < EVERY * 4, "first ping after {first_ping:?}");
    // Dropped only once three intervals went unanswered.
    let dropped_after = dropped_after.unwrap();
    assert!(
        dropped_after > EVERY * 3 && dropped_after < EVERY * 8,
        "dropped after {dropped_after:?}"
    );
    metric_appears(
        &s.bcs[0],
        "bridgecore_ws_closed_total{reason=\"timeout\"} 1",
    )
    .await;
    // The silent client finds, after the pings it never read, the end of its connection.
    let deadline = Instant::now() + WAIT;
    let mut unread_pings = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, silent.next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => unread_pings += 1,
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => break,
            other => panic!("expected the end of the connection, got {other:?}"),
        }
    }
    assert!(unread_pings >= 1, "pinged, never answered");
    // The answering socket lived through it all.
    send(&mut live, json!({"type": "ping", "timestamp": 2})).await;
    assert_eq!(
        next(&mut live).await,
        json!({"type": "pong", "timestamp": 2})
    );
}

// === operations ===

#[tokio::test]
async fn stats_and_metrics_count_sockets_and_messages() {
    let s = setup("stats", Opts::default());
    let admin = s.token(0, "admin").await;
    let demo = s.token(0, "demo").await;
    let mut ws = s.open(0, &admin).await;
    subscribe(&mut ws, &s.tenant, json!({"model": "res.partner"})).await;
    subscribe(
        &mut ws,
        &s.tenant,
        json!({"model": "res.partner", "record_ids": [7]}),
    )
    .await;
    s.api(
        0,
        &admin,
        "write",
        json!({"model": "res.partner", "ids": [7], "values": {"name": "z"}}),
    )
    .await;
    next(&mut ws).await;
    next(&mut ws).await;
    // Main listener: an admin token of the system. A change is counted once all of its
    // messages are queued, which can be just after the client has them: read the stats until
    // the count is there (a second at most).
    let stats_as = |token: Option<&str>| {
        let req = client().get(s.url(0, "/api/v1/ws/stats"));
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        async move { req.send().await.unwrap() }
    };
    let mut st = Value::Null;
    for _ in 0..50 {
        let resp = stats_as(Some(&admin)).await;
        assert_eq!(resp.status(), 200);
        st = resp.json().await.unwrap();
        if st["messages_sent"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(st["connections"], 1, "{st}");
    assert_eq!(st["subscriptions"], 2);
    assert_eq!(st["subscriptions_by_model"][&s.tenant]["res.partner"], 2);
    assert_eq!(st["messages_sent"], 2);
    assert_eq!(st["messages_dropped"], 0);
    assert_eq!(stats_as(Some(&demo)).await.status(), 403);
    assert_eq!(stats_as(None).await.status(), 401);
    metric_appears(
        &s.bcs[0],
        &format!(
            "bridgecore_ws_messages_sent_total{{tenant=\"{}\"}} 2",
            s.tenant
        ),
    )
    .await;
    metric_appears(
        &s.bcs[0],
        &format!("bridgecore_ws_connections{{tenant=\"{}\"}} 1", s.tenant),
    )
    .await;
    drop(ws);
    metric_appears(
        &s.bcs[0],
        &format!("bridgecore_ws_subscriptions{{tenant=\"{}\"}} 0", s.tenant),
    )
    .await;
}

#[tokio::test]
async fn a_reload_keeps_sockets_open() {
    let s = setup("reload", Opts::default());
    let token = s.token(0, "admin").await;
    let mut ws = s.open(0, &token).await;
    subscribe(&mut ws, &s.tenant, json!({"model": "res.partner"})).await;
    let o = Opts::default();
    let text = config(&s.odoo, &s.tenant, &o);
    // Same listeners: reuse the running server's ports.
    let running = s.bcs[0].handle().config();
    let mut cfg = bridgecore::config::Config::from_yaml(&text, "reload.yaml").unwrap();
    cfg.server = running.server.clone();
    s.bcs[0].handle().reload(cfg).unwrap();
    s.api(
        0,
        &token,
        "write",
        json!({"model": "res.partner", "ids": [8], "values": {"name": "after reload"}}),
    )
    .await;
    assert_eq!(next(&mut ws).await["record_id"], 8);
}

#[test]
fn shutdown_closes_sockets_with_1001() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let tenant = unique("shutdown");
    let text =
        config(&odoo, &tenant, &Opts::default()).replace("grace_period: 0s", "grace_period: 1s");
    let bc = start_yaml(&text, Vec::new());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = Setup {
        odoo,
        bcs: vec![bc],
        tenant,
    };
    let mut ws = rt.block_on(async {
        let token = s.token(0, "demo").await;
        s.open(0, &token).await
    });
    let Setup { bcs, .. } = s;
    let stopper = std::thread::spawn(move || {
        for bc in bcs {
            bc.stop_gracefully();
        }
    });
    let (code, _) = rt.block_on(closed(&mut ws));
    assert_eq!(code, 1001);
    stopper.join().unwrap();
}
