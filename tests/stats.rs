//! Per-tenant stats and health (issue 7 item 4): on the admin listener without a token, on the
//! main listener with an admin token for that tenant.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};

const TOP: &str = "auth:\n  jwt: {secret: \"an-hs256-test-secret-of-more-than-32-bytes\"}\n";

async fn get_json(url: String, token: Option<&str>) -> (u16, Value) {
    let mut r = client().get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn stats_count_what_the_tenant_served() {
    let h = Harness::with(Dataset::demo(), "", TOP, Vec::new());
    let sid = h.odoo.new_session(2);
    let call = rpc(
        json!({"model": "res.partner", "method": "search_count", "args": [[]], "kwargs": {}}),
        1,
    );
    for _ in 0..3 {
        let r = post_as(h.url("/web/dataset/call_kw"), &sid, &call).await;
        assert_eq!(r.status(), 200);
    }
    let r = client()
        .post(h.url("/web/dataset/call_kw"))
        .header("content-type", "application/json")
        .body("{broken")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let url = h.admin("/api/v1/systems/odoo/stats");
    let mut body = Value::Null;
    for _ in 0..100 {
        let (s, b) = get_json(url.clone(), None).await;
        assert_eq!(s, 200);
        body = b;
        if body["total_requests"] == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(body["total_requests"], 4, "{body}");
    assert_eq!(body["successful_requests"], 3);
    assert_eq!(body["failed_requests"], 1);
    assert_eq!(body["client_errors"], 1);
    assert_eq!(body["requests_by_category"]["read"], 3);
    assert!(body["avg_response_time"].as_f64().unwrap() > 0.0);
    let p50 = body["p50_response_time"].as_f64().unwrap();
    let p95 = body["p95_response_time"].as_f64().unwrap();
    assert!(p50 > 0.0 && p95 >= p50, "{body}");
    assert_eq!(body["active_connections"], 0);
    assert_eq!(body["rate_limited_requests"], 0);
    let up = h.odoo.addr().to_string();
    assert_eq!(body["upstreams"][&up]["reachable"], true);

    // The same on the main listener: admin token of this tenant only.
    let (s, _) = get_json(h.url("/api/v1/systems/odoo/stats"), None).await;
    assert_eq!(s, 401);
    let demo = api_token(&h, "demo", "demo").await;
    let (s, _) = get_json(h.url("/api/v1/systems/odoo/stats"), Some(&demo)).await;
    assert_eq!(s, 403);
    let admin = api_token(&h, "admin", "admin").await;
    let (s, b) = get_json(h.url("/api/v1/systems/odoo/stats"), Some(&admin)).await;
    assert_eq!(s, 200);
    assert!(b["total_requests"].as_u64().unwrap() >= 4);
    // Unknown systems.
    assert_eq!(
        get_json(h.admin("/api/v1/systems/nope/stats"), None)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn health_follows_the_upstreams() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let up = TenantSpec::for_odoo("up", &["up.example.com"], &odoo);
    let mut down = TenantSpec::for_odoo("down", &["down.example.com"], &odoo);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().to_string();
    drop(closed);
    down.upstream = dead.clone();
    let (text, _, _) = yaml(&[up, down], "");
    let bc = start_yaml(&text, Vec::new());
    let admin = bc.admin_addr().unwrap();
    let (s, b) = get_json(format!("http://{admin}/api/v1/systems/up/health"), None).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("healthy")), "{b}");
    assert_eq!(b["upstreams"][odoo.addr().to_string()]["reachable"], true);
    assert_eq!(
        b["websocket_upstreams"][odoo.bus_addr().to_string()]["reachable"],
        true
    );
    let (s, b) = get_json(format!("http://{admin}/api/v1/systems/down/health"), None).await;
    assert_eq!((s, b["status"].as_str()), (503, Some("unhealthy")), "{b}");
    assert_eq!(b["upstreams"][&dead]["reachable"], false);
}
