//! The proxy path end to end: BridgeCore in front of the fake Odoo, real HTTP and WebSocket
//! clients, compared with what Odoo itself answers and sees.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

/// POSTs a body as it is, with this `Content-Type`.
async fn post_bytes(
    url: impl reqwest::IntoUrl,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    client()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn post_json(url: &str, body: &Value, cookie: Option<&str>) -> reqwest::Response {
    let mut req = client().post(url).json(body);
    if let Some(sid) = cookie {
        req = req.header("cookie", format!("session_id={sid}"));
    }
    req.send().await.unwrap()
}

fn search_read_partners(id: i64) -> Value {
    rpc(
        json!({"model": "res.partner", "method": "search_read", "args": [],
               "kwargs": {"domain": [["is_company", "=", true]], "fields": ["name", "email"], "limit": 5,
                          "context": {"lang": "en_US"}}}),
        id,
    )
}

#[tokio::test]
async fn call_kw_results_are_identical_to_direct_odoo() {
    let h = Harness::start();
    let sid = login(&h.url(""), "admin", "admin").await;
    let body = search_read_partners(42);
    let via = post_json(
        &h.url("/web/dataset/call_kw/res.partner/search_read"),
        &body,
        Some(&sid),
    )
    .await;
    assert_eq!(via.status(), 200);
    assert!(via.headers().get("x-request-id").is_some());
    let via: Value = via.json().await.unwrap();
    let direct: Value = post_json(
        &h.direct("/web/dataset/call_kw/res.partner/search_read"),
        &body,
        Some(&sid),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(via, direct);
    assert_eq!(via["id"], 42);
    assert!(!via["result"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn external_jsonrpc_results_are_identical_to_direct_odoo() {
    let h = Harness::start();
    let body = rpc(
        json!({"service": "object", "method": "execute_kw",
               "args": ["odoo", 2, "admin", "res.partner", "search_read", [[["is_company", "=", true]]], {"fields": ["name"], "limit": 3}]}),
        7,
    );
    let via: Value = post_json(&h.url("/jsonrpc"), &body, None)
        .await
        .json()
        .await
        .unwrap();
    let direct: Value = post_json(&h.direct("/jsonrpc"), &body, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(via, direct);
    assert_eq!(via["result"].as_array().unwrap().len(), 3);
    // An Odoo error passes through untouched, as HTTP 200 with an `error` member.
    let wrong = rpc(
        json!({"service": "object", "method": "execute_kw",
               "args": ["odoo", 2, "wrong", "res.partner", "search_read", [[]], {}]}),
        8,
    );
    let resp = post_json(&h.url("/jsonrpc"), &wrong, None).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["data"]["name"], "odoo.exceptions.AccessDenied");
}

#[tokio::test]
async fn odoo_sees_the_forwarded_headers_nginx_would_send() {
    let h = Harness::start();
    let resp = client()
        .get(h.url("/__fake/echo?x=1"))
        .header("host", "erp.example.com:8080")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-request-id", "req-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "req-abc-123");
    let seen: Value = resp.json().await.unwrap();
    let hdr = |name: &str| seen["headers"][name].as_str().map(str::to_string);
    assert_eq!(
        hdr("x-forwarded-host").as_deref(),
        Some("erp.example.com:8080")
    );
    assert_eq!(hdr("x-forwarded-proto").as_deref(), Some("http"));
    // The client is not a trusted proxy: its list is dropped, the peer is what Odoo sees.
    assert_eq!(hdr("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(hdr("x-real-ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(hdr("x-request-id").as_deref(), Some("req-abc-123"));
    assert_eq!(seen["query"], "x=1");

    // A request id is made when the client sends none, and Odoo sees the same one.
    let resp = client().get(h.url("/__fake/echo")).send().await.unwrap();
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["headers"]["x-request-id"], rid.as_str());
}

#[tokio::test]
async fn trusted_proxies_lists_are_believed() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let spec = TenantSpec::for_odoo("odoo", &["erp.example.com"], &odoo);
    let (text, _, _) = yaml(&[spec], "");
    let text = with_server_keys(&text, "trusted_proxies: [\"127.0.0.0/8\"]");
    let bc = start_yaml(&text, vec![]);
    let seen: Value = client()
        .get(format!("http://{}/__fake/echo", bc.addr()))
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        seen["headers"]["x-forwarded-for"],
        "198.51.100.7, 127.0.0.1"
    );
    assert_eq!(seen["headers"]["x-real-ip"], "198.51.100.7");
}

#[tokio::test]
async fn two_tenants_are_routed_by_host_and_unknown_hosts_get_404() {
    let a = FakeOdoo::start(Dataset::demo());
    let b = FakeOdoo::start(Dataset::demo());
    let (text, port, _) = yaml(
        &[
            TenantSpec::for_odoo("alpha", &["alpha.example.com"], &a),
            TenantSpec::for_odoo("beta", &["beta.example.com", "BETA2.example.com"], &b),
        ],
        "",
    );
    let _bc = start_yaml(&text, vec![]);
    let url = format!("http://127.0.0.1:{port}/web/health");
    for (host, expect_a, expect_b) in [
        ("alpha.example.com", 1, 0),
        ("beta.example.com:8080", 1, 1),
        ("beta2.EXAMPLE.com", 1, 2),
    ] {
        let r = client()
            .get(&url)
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{host}");
        assert_eq!(a.count_path("/web/health"), expect_a, "{host}");
        assert_eq!(b.count_path("/web/health"), expect_b, "{host}");
    }
    let r = client()
        .get(&url)
        .header("host", "nobody.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // On a JSON-RPC route the 404 is in Odoo's error shape.
    let r = client()
        .post(format!("http://127.0.0.1:{port}/web/dataset/call_kw"))
        .header("host", "nobody.example.com")
        .json(&search_read_partners(3))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], 404);
    assert_eq!(v["error"]["data"]["name"], "bridgecore.NotFound");
    // Routing happens before the body is read, so the id is unknown (JSON-RPC's null).
    assert!(v["id"].is_null());
    assert_eq!(a.count() + b.count(), 3);
}

#[tokio::test]
async fn api_v1_systems_paths_route_by_id_whatever_the_host() {
    let a = FakeOdoo::start(Dataset::demo());
    let b = FakeOdoo::start(Dataset::demo());
    let (text, port, _) = yaml(
        &[
            TenantSpec::for_odoo("alpha", &["alpha.example.com"], &a),
            TenantSpec::for_odoo("beta", &["beta.example.com"], &b),
        ],
        "",
    );
    let _bc = start_yaml(&text, vec![]);
    let base = format!("http://127.0.0.1:{port}");
    let r = client()
        .get(format!("{base}/api/v1/systems/gamma/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert!(v["detail"].as_str().unwrap().contains("unknown system"));
    // Admin endpoints of a known system need an admin token on the main listener.
    let r = client()
        .get(format!("{base}/api/v1/systems/beta/health"))
        .header("host", "alpha.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert!(v["detail"].is_string());
    // Other /api/v1 paths belong to Odoo (REST addons).
    let r = client()
        .get(format!("{base}/api/v1/partners"))
        .header("host", "beta.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(b.count_path("/api/v1/partners"), 1);
    drop(r);
    assert_eq!(a.count(), 0);
}

#[tokio::test]
async fn malformed_json_gets_400_and_never_reaches_odoo() {
    let h = Harness::start();
    for (body, needle) in [
        (&b"{not json"[..], "JSON"),
        (&b"[{\"jsonrpc\":\"2.0\"}]"[..], "batch"),
        (&b"{\"jsonrpc\":\"2.0\",\"params\":[1,2]}"[..], "params"),
    ] {
        let r = post_bytes(
            h.url("/web/dataset/call_kw"),
            "application/json",
            body.to_vec(),
        )
        .await;
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], 400);
        assert_eq!(v["error"]["data"]["name"], "bridgecore.BadRequest");
        let msg = v["error"]["message"].as_str().unwrap().to_lowercase();
        assert!(msg.contains(&needle.to_lowercase()), "{msg}");
    }
    assert_eq!(h.odoo.count(), 0);
}

#[tokio::test]
async fn wrong_content_type_is_forwarded_for_odoo_to_answer() {
    let h = Harness::start();
    let r = post_bytes(h.url("/web/dataset/call_kw"), "text/plain", "{not json").await;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert_eq!(h.odoo.count(), 1, "{status} {text}");
    assert_eq!(status, 400, "Odoo's own answer: {text}");
}

#[tokio::test]
async fn oversized_bodies_get_413_before_reaching_odoo() {
    // max_body_size default is 64MiB; use a small one.
    let odoo = FakeOdoo::start(Dataset::demo());
    let spec = TenantSpec::for_odoo("odoo", &["x"], &odoo);
    let (text, port, _) = yaml(&[spec], "");
    let text = with_server_keys(&text, "max_body_size: 100KiB");
    let _bc = start_yaml(&text, vec![]);
    let big = vec![b'a'; 200 * 1024];
    let r = client()
        .post(format!(
            "http://127.0.0.1:{port}/web/binary/upload_attachment"
        ))
        .header("content-type", "application/octet-stream")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // On a JSON-RPC route the 413 is a JSON-RPC error.
    let r = post_bytes(
        format!("http://127.0.0.1:{port}/web/dataset/call_kw"),
        "application/json",
        big.clone(),
    )
    .await;
    assert_eq!(r.status(), 413);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], 413);
    assert_eq!(odoo.count(), 0);

    // A chunked body that grows past the limit is cut off with 413 too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![b'b'; 16 * 1024])).collect();
    let stream = futures_util::stream::iter(chunks);
    let r = client()
        .post(format!(
            "http://127.0.0.1:{port}/web/binary/upload_attachment"
        ))
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    match r {
        Ok(r) => assert_eq!(r.status(), 413),
        Err(e) => panic!("expected a 413 answer, got {e}"),
    }
}

#[tokio::test]
async fn large_create_passes_through_intact() {
    let h = Harness::start();
    let sid = login(&h.url(""), "admin", "admin").await;
    let blob = "A".repeat(100 * 1024);
    let body = rpc(
        json!({"model": "res.partner", "method": "create", "args": [{"name": "Big", "comment": blob}], "kwargs": {}}),
        9,
    );
    let raw = serde_json::to_vec(&body).unwrap();
    assert!(raw.len() > 64 * 1024);
    h.odoo.reset_counts();
    let r = client()
        .post(h.url("/web/dataset/call_kw/res.partner/create"))
        .header("content-type", "application/json")
        .header("cookie", format!("session_id={sid}"))
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["result"].as_i64().is_some(), "{v}");
    let seen = h.odoo.requests();
    let last = seen.last().unwrap();
    assert_eq!(last.body.as_ref(), raw.as_slice());
    // Streamed, yet still classified from the copy parsed on the way: a write.
    metric_appears(
        &h.bc,
        "bridgecore_requests_total{category=\"write\",status=\"2xx\",tenant=\"odoo\"} 1",
    )
    .await;
}

#[tokio::test]
async fn upstream_down_gives_502_in_odoos_error_shape() {
    let dead = free_port();
    let (text, port, _) = yaml(
        &[TenantSpec {
            name: "odoo".into(),
            hosts: vec!["x".into()],
            upstream: format!("127.0.0.1:{dead}"),
            ws_upstream: format!("127.0.0.1:{dead}"),
            extra: String::new(),
        }],
        "",
    );
    let bc = start_yaml(&text, vec![]);
    let r = client()
        .post(format!("http://127.0.0.1:{port}/web/dataset/call_kw"))
        .json(&search_read_partners(5))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], 502);
    assert_eq!(v["id"], 5);
    // Readiness reports that no tenant has a reachable upstream.
    let r = client()
        .get(format!("http://{}/readyz", bc.admin_addr().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["tenants"]["odoo"]["ready"], false);
}

#[tokio::test]
async fn slow_upstream_gives_504_after_the_tenant_timeout() {
    let h = Harness::with(Dataset::demo(), "timeout: 500ms\n", "", vec![]);
    let started = Instant::now();
    let r = client()
        .post(h.url("/web/dataset/call_kw"))
        .json(&search_read_partners(6))
        .header("cookie", "session_id=whatever")
        .send()
        .await
        .unwrap();
    let _ = r.status();
    h.odoo.set_delay(Duration::from_secs(3));
    let started2 = Instant::now();
    let r = client()
        .post(h.url("/web/dataset/call_kw"))
        .json(&search_read_partners(6))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    let waited = started2.elapsed();
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_millis(2500),
        "{waited:?}"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], 504);
    let _ = started;
}

#[tokio::test]
async fn database_manager_is_blocked_unless_allowed() {
    let h = Harness::start();
    let r = client()
        .get(h.url("/web/database/manager"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = post_json(
        &h.url("/jsonrpc"),
        &rpc(json!({"service": "db", "method": "list", "args": []}), 1),
        None,
    )
    .await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["data"]["name"], "bridgecore.Forbidden");
    assert_eq!(h.odoo.count(), 0);
    // The selector stays reachable.
    let r = client()
        .get(h.url("/web/database/selector"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(h.odoo.count(), 1);

    let open = Harness::with(
        Dataset::demo(),
        "allow_database_manager: true\n",
        "",
        vec![],
    );
    let r = client()
        .get(open.url("/web/database/manager"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(open.odoo.count(), 1);
}

#[tokio::test]
async fn json_is_compressed_per_accept_encoding_and_decodes_to_the_original() {
    let h = Harness::start();
    let sid = login(&h.url(""), "admin", "admin").await;
    let body = rpc(
        json!({"model": "res.partner", "method": "search_read", "args": [], "kwargs": {"fields": ["name", "email", "phone"]}}),
        1,
    );
    let plain = post_as(h.url("/web/dataset/call_kw"), &sid, &body).await;
    assert!(plain.headers().get("content-encoding").is_none());
    let original = plain.bytes().await.unwrap();
    assert!(original.len() > 1000);
    for (accept, expect) in [
        ("gzip", "gzip"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip;q=0.5, br;q=0.9", "br"),
        ("gzip, deflate, br, zstd", "zstd"),
    ] {
        let r = client()
            .post(h.url("/web/dataset/call_kw"))
            .header("cookie", format!("session_id={sid}"))
            .header("accept-encoding", accept)
            // Odoo's own answer, compressed on the way (cache hits are precompressed: cache.rs).
            .header("cache-control", "no-cache")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-cache"], "BYPASS");
        assert_eq!(r.headers()["content-encoding"], expect, "{accept}");
        let bytes = r.bytes().await.unwrap();
        assert!(bytes.len() < original.len());
        assert_eq!(decode(expect, &bytes), original.to_vec(), "{accept}");
    }
    // Odoo saw the client's own Accept-Encoding.
    let last = h.odoo.requests().into_iter().last().unwrap();
    assert_eq!(last.headers["accept-encoding"], "gzip, deflate, br, zstd");
}

#[tokio::test]
async fn images_pdfs_and_small_bodies_are_not_compressed() {
    let h = Harness::start();
    for path in [
        "/web/image/res.partner/1/image_128",
        "/web/content/1",
        "/web/health",
    ] {
        let r = client()
            .get(h.url(path))
            .header("accept-encoding", "gzip, br, zstd")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers().get("content-encoding").is_none(), "{path}");
        let direct = client()
            .get(h.direct(path))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(r.bytes().await.unwrap(), direct, "{path}");
    }
}

#[tokio::test]
async fn static_files_keep_etags_and_304s() {
    let h = Harness::start();
    let r = client()
        .get(h.url("/web/static/src/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].clone();
    let r = client()
        .get(h.url("/web/static/src/app.js"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = client()
        .head(h.url("/web/static/src/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn redirects_and_cookies_pass_with_samesite_added_to_the_session_cookie() {
    let h = Harness::start();
    let r = client()
        .get(h.url("/__fake/redirect"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/web");
    let r = client()
        .get(h.url("/__fake/set-cookie"))
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("session_id="))
        .unwrap();
    assert!(session.contains("SameSite=Lax"), "{session}");
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(!session.contains("Secure"), "plain HTTP: {session}");
    let other = cookies.iter().find(|c| c.starts_with("cids=")).unwrap();
    assert!(!other.contains("SameSite"), "{other}");
}

#[tokio::test]
async fn multipart_uploads_arrive_whole() {
    let h = Harness::start();
    let sid = login(&h.url(""), "admin", "admin").await;
    let file = vec![7u8; 3 * 1024 * 1024];
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", "x")
        .part(
            "ufile",
            reqwest::multipart::Part::bytes(file.clone()).file_name("blob.bin"),
        );
    let r = client()
        .post(h.url("/web/binary/upload_attachment"))
        .header("cookie", format!("session_id={sid}"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v[0]["size"], file.len());
}

#[tokio::test]
async fn websocket_is_proxied_to_the_bus_port_both_ways() {
    let h = Harness::start();
    let url = format!("ws://{}/websocket", h.bc.addr());
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    req.headers_mut()
        .insert("origin", "http://erp.example.com".parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        json!({"event_name": "subscribe", "data": {"channels": ["c1"], "last": 0}})
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
    assert_eq!(v[0]["message"]["type"], "bus.subscribed");
    assert_eq!(v[0]["message"]["payload"]["channels"][0], "c1");
    ws.close(None).await.unwrap();
    assert!(h
        .odoo
        .requests()
        .iter()
        .any(|s| s.path.starts_with("/websocket") && matches!(s.port, fake_odoo::Port::Bus)));
}

#[tokio::test]
async fn longpolling_goes_to_the_bus_port() {
    let h = Harness::start();
    let r = client()
        .post(h.url("/longpolling/poll"))
        .json(&rpc(json!({"channels": [], "last": 0}), 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(h.odoo.count_port(fake_odoo::Port::Bus), 1);
    assert_eq!(h.odoo.count_port(fake_odoo::Port::Http), 0);
}

#[tokio::test]
async fn saturated_tenant_answers_503_after_connect_timeout() {
    let h = Harness::with(
        Dataset::demo(),
        "max_connections: 1\nconnect_timeout: 300ms\n",
        "",
        vec![],
    );
    let slow = tokio::spawn({
        let url = h.url("/__fake/slow?ms=1500");
        async move { client().get(url).send().await.unwrap().status() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let r = client().get(h.url("/web/health")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(slow.await.unwrap(), 200);
    // The slot is free again.
    let r = client().get(h.url("/web/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn admin_listener_serves_health_readiness_and_metrics() {
    let h = Harness::start();
    let _ = client().get(h.url("/web/health")).send().await.unwrap();
    metric_appears(&h.bc, "status=\"2xx\",tenant=\"odoo\"} 1").await;
    let r = client().get(h.admin("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = client().get(h.admin("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["tenants"]["odoo"]["ready"], true);
    let text = client()
        .get(h.admin("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "bridgecore_requests_total{category=\"none\",status=\"2xx\",tenant=\"odoo\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("bridgecore_request_duration_seconds_bucket"));
    assert!(!text.contains("/web/health"), "no raw paths in labels");
}

fn raw_exchange(addr: std::net::SocketAddr, request: &[u8], wait: Duration) -> String {
    raw_exchange_in_pieces(addr, &[request], wait)
}

/// [`raw_exchange`] with the request written in `pieces`, 100 ms apart (a client that pauses).
fn raw_exchange_in_pieces(addr: std::net::SocketAddr, pieces: &[&[u8]], wait: Duration) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        s.write_all(piece).unwrap();
        s.flush().unwrap();
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn slowloris_bodies_get_408_and_never_reach_odoo() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let spec = TenantSpec::for_odoo("odoo", &["x"], &odoo);
    let (text, _, _) = yaml(&[spec], "");
    let text = with_server_keys(&text, "client_timeout: 300ms");
    let bc = start_yaml(&text, vec![]);
    let started = Instant::now();
    let answer = raw_exchange(
        bc.addr(),
        b"POST /web/dataset/call_kw HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"jsonrpc\":",
        Duration::from_secs(5),
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(odoo.count(), 0);
}

#[test]
fn oversized_headers_are_refused_without_reaching_odoo() {
    let h = Harness::start();
    let huge = "a".repeat(200 * 1024);
    let request = format!("GET /web/health HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n");
    let answer = raw_exchange(h.bc.addr(), request.as_bytes(), Duration::from_secs(5));
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    assert_eq!(h.odoo.count(), 0);
    // The server is still fine.
    let ok = raw_exchange(
        h.bc.addr(),
        b"GET /web/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

#[tokio::test]
async fn answers_odoo_already_encoded_are_never_compressed_again() {
    let h = Harness::start();
    for accept in ["gzip", "br", "zstd", "gzip, br, zstd"] {
        let r = client()
            .get(h.url("/__fake/gzipped"))
            .header("accept-encoding", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-encoding"], "gzip", "{accept}");
        let via = r.bytes().await.unwrap();
        let direct = client()
            .get(h.direct("/__fake/gzipped"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(via, direct, "{accept}");
        let v: Value = serde_json::from_slice(&decode("gzip", &via)).unwrap();
        assert_eq!(v["rows"].as_array().unwrap().len(), 400);
    }
}

#[test]
fn expect_100_continue_on_a_parsed_call_gets_the_interim_answer() {
    let h = Harness::start();
    let body = serde_json::to_vec(&rpc(
        json!({"service": "common", "method": "version", "args": []}),
        4,
    ))
    .unwrap();
    let mut s = std::net::TcpStream::connect(h.bc.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let head = format!(
        "POST /jsonrpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).unwrap();
    assert!(String::from_utf8_lossy(&interim).starts_with("HTTP/1.1 100 Continue"));
    s.write_all(&body).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"server_version\""), "{text}");
    // Odoo never saw the Expect header: BridgeCore already answered it.
    let seen = h.odoo.requests().into_iter().last().unwrap();
    assert!(!seen.headers.contains_key("expect"));
}

/// Sends `body` to `/jsonrpc` in two pieces, pausing between them, and returns the answer.
fn post_in_two_pieces(h: &Harness, body: &[u8]) -> String {
    let head = format!(
        "POST /jsonrpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (one, two) = body.split_at(body.len() / 2);
    let first = [head.as_bytes(), one].concat();
    raw_exchange_in_pieces(h.bc.addr(), &[&first, two], Duration::from_secs(5))
}

/// A call body that arrives in pieces (the client pauses halfway) is read whole before it is
/// parsed: a valid one reaches Odoo, one with a control character in its second half is
/// refused before anything reaches Odoo.
#[test]
fn a_call_body_sent_in_two_pieces_is_read_whole() {
    let h = Harness::start();
    let body = |pad: String| {
        serde_json::to_vec(&json!({
            "jsonrpc": "2.0", "method": "call", "id": 5,
            "params": {"service": "common", "method": "version", "args": [], "pad": pad},
        }))
        .unwrap()
    };
    let good = body("A".repeat(40 * 1024));
    let text = post_in_two_pieces(&h, &good);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"server_version\""), "{text}");
    let seen = h.odoo.requests().into_iter().last().unwrap();
    assert_eq!(seen.body_len, good.len() as u64);

    let before = h.odoo.requests().len();
    let mut bad = good.clone();
    let at = bad.len() * 3 / 4;
    bad[at] = 0x01; // inside the pad's string, in the second piece
    let text = post_in_two_pieces(&h, &bad);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert_eq!(h.odoo.requests().len(), before);
}

/// The upstream header is rebuilt without Pingora's case map (src/proxy.rs,
/// `upstream_request_filter`): a request-target the URI alone does not give back (absolute-form,
/// as a client configured for a forward proxy sends it) still reaches Odoo as sent, with the
/// forwarded headers.
#[test]
fn an_absolute_form_target_reaches_odoo_as_sent() {
    let h = Harness::start();
    let text = raw_exchange(
        h.bc.addr(),
        b"GET http://erp.example.com/__fake/echo?x=%C3%A9 HTTP/1.1\r\nHost: erp.example.com\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    // Without Pingora's case map (dropped before BridgeCore adds its own headers), standard
    // names go out in their usual case, others in lowercase.
    assert!(
        text.contains("\r\nContent-Type: application/json"),
        "{text}"
    );
    assert!(text.contains("\r\nx-request-id: "), "{text}");
    let seen = h.odoo.requests().into_iter().last().unwrap();
    assert_eq!(seen.path, "/__fake/echo?x=%C3%A9");
    assert_eq!(seen.headers["x-forwarded-host"], "erp.example.com");
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
}

#[tokio::test]
async fn xmlrpc_results_are_identical_to_direct_odoo() {
    let h = Harness::start();
    let body = fake_odoo::xmlrpc::encode_call(
        "execute_kw",
        &[
            json!("odoo"),
            json!(2),
            json!("admin"),
            json!("res.partner"),
            json!("search_read"),
            json!([[["is_company", "=", true]]]),
            json!({"fields": ["name"], "limit": 3}),
        ],
    );
    let send = |url: String| {
        let body = body.clone();
        async move { post_bytes(url, "text/xml", body).await }
    };
    let via = send(h.url("/xmlrpc/2/object")).await;
    assert_eq!(via.status(), 200);
    let via = via.text().await.unwrap();
    let direct = send(h.direct("/xmlrpc/2/object"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(via, direct);
    let rows = fake_odoo::xmlrpc::decode_response(&via).unwrap().unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3);
    // Parsed on the way: classified as a read and counted with the uid it carries.
    metric_appears(
        &h.bc,
        "bridgecore_requests_total{category=\"read\",status=\"2xx\",tenant=\"odoo\"} 1",
    )
    .await;
}

#[tokio::test]
async fn json2_calls_pass_with_their_bearer_key() {
    let mut data = Dataset::demo();
    data.json2 = true;
    let h = Harness::with(data, "", "", vec![]);
    let call = |url: String, key: &'static str| async move {
        client()
            .post(url)
            .header("authorization", format!("bearer {key}"))
            .header("x-odoo-database", "odoo")
            .json(&json!({"domain": [["is_company", "=", true]], "fields": ["name"], "limit": 2}))
            .send()
            .await
            .unwrap()
    };
    let via = call(h.url("/json/2/res.partner/search_read"), "admin-api-key").await;
    assert_eq!(via.status(), 200);
    let via: Value = via.json().await.unwrap();
    let direct: Value = call(h.direct("/json/2/res.partner/search_read"), "admin-api-key")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(via, direct);
    assert_eq!(via.as_array().unwrap().len(), 2);
    // Odoo's own refusal (a real HTTP status on /json/2) passes through untouched.
    let bad = call(h.url("/json/2/res.partner/search_read"), "wrong-key").await;
    assert_eq!(bad.status(), 401);
}

#[tokio::test]
async fn requests_alternate_between_a_tenants_upstreams() {
    let a = FakeOdoo::start(Dataset::demo());
    let b = FakeOdoo::start(Dataset::demo());
    let spec = TenantSpec {
        name: "odoo".into(),
        hosts: vec!["x".into()],
        upstream: format!("{}\", \"{}", a.addr(), b.addr()),
        ws_upstream: a.bus_addr().to_string(),
        extra: String::new(),
    };
    let (text, port, _) = yaml(&[spec], "");
    let _bc = start_yaml(&text, vec![]);
    for _ in 0..6 {
        let r = client()
            .get(format!("http://127.0.0.1:{port}/web/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!((a.count(), b.count()), (3, 3));
}

#[test]
fn an_invalid_configuration_never_replaces_the_running_one() {
    let h = Harness::start();
    let bad = "server:\n  listen: [\"127.0.0.1:1\"]\ntenants: {}\n";
    let errors = bridgecore::config::Config::from_yaml(bad, "bad.yaml").unwrap_err();
    assert!(errors.to_string().starts_with("bad.yaml:"), "{errors}");
    // Nothing to swap in: the running configuration still serves.
    let r = raw_exchange(
        h.bc.addr(),
        b"GET /web/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert_eq!(h.bc.handle().config().tenants[0].name, "odoo");
}

fn big_jsonrpc(service: &str, method: &str, args: Value) -> Vec<u8> {
    let body = rpc(
        json!({"service": service, "method": method, "args": args}),
        21,
    );
    let raw = serde_json::to_vec(&body).unwrap();
    assert!(raw.len() > 64 * 1024, "must be too large to read first");
    raw
}

#[tokio::test]
async fn large_database_manager_calls_are_refused_before_odoo_can_act() {
    let h = Harness::start();
    let dump = "A".repeat(200 * 1024);
    let raw = big_jsonrpc("db", "restore", json!(["master", "prod", dump]));
    // Content-Length framing.
    let r = post_bytes(h.url("/jsonrpc"), "application/json", raw.clone()).await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["data"]["name"], "bridgecore.Forbidden");
    // Chunked framing.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        raw.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
    let r = client()
        .post(h.url("/jsonrpc"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Odoo never received a complete call, so it never handled one.
    assert!(
        h.odoo.requests().iter().all(|s| s.body.len() < raw.len()),
        "a complete db call reached Odoo"
    );
    // XML-RPC's db service is refused by its path, whatever the body.
    let r = post_bytes(
        h.url("/xmlrpc/2/db"),
        "text/xml",
        fake_odoo::xmlrpc::encode_call("list", &[]),
    )
    .await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn large_object_calls_over_jsonrpc_still_stream_through() {
    let h = Harness::start();
    let blob = "B".repeat(100 * 1024);
    let raw = big_jsonrpc(
        "object",
        "execute_kw",
        json!(["odoo", 2, "admin", "res.partner", "create", [{"name": "Big", "comment": blob}], {}]),
    );
    for chunked in [false, true] {
        let body = if chunked {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                raw.chunks(10_000).map(|c| Ok(c.to_vec())).collect();
            reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
        } else {
            reqwest::Body::from(raw.clone())
        };
        let r = post_bytes(h.url("/jsonrpc"), "application/json", body).await;
        assert_eq!(r.status(), 200, "chunked: {chunked}");
        let v: Value = r.json().await.unwrap();
        assert!(v["result"].as_i64().is_some(), "{v}");
        let seen = h.odoo.requests().into_iter().last().unwrap();
        assert_eq!(seen.body.as_ref(), raw.as_slice(), "chunked: {chunked}");
    }
}
