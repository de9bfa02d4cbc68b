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

fn call_kw(model: &str, method: &str, args: Value) -> Value {
    rpc(
        json!({"model": model, "method": method, "args": args, "kwargs": {}}),
        1,
    )
}

/// The admin listener's `/metrics`, as Prometheus scrapes it.
async fn scrape(admin: std::net::SocketAddr) -> String {
    client()
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Scrapes until `line` is there (calls are counted after the answer is sent), then returns
/// the scrape.
async fn scrape_until(admin: std::net::SocketAddr, line: &str) -> String {
    let mut text = String::new();
    for _ in 0..200 {
        text = scrape(admin).await;
        if text.contains(line) {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("`{line}` never appeared in /metrics:\n{text}");
}

fn calls_line(model: &str, category: &str, n: u64) -> String {
    format!(
        "bridgecore_calls_total{{category=\"{category}\",model=\"{model}\",tenant=\"odoo\"}} {n}\n"
    )
}

/// The `model` labels of `bridgecore_calls_total` in a scrape, sorted and deduplicated.
fn call_models(text: &str) -> Vec<String> {
    let mut models: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("bridgecore_calls_total{"))
        .filter_map(|l| {
            l.split("model=\"")
                .nth(1)?
                .split('"')
                .next()
                .map(String::from)
        })
        .collect();
    models.sort();
    models.dedup();
    models
}

#[tokio::test]
async fn calls_are_counted_by_configured_model_and_every_other_model_is_other() {
    let top = format!("{TOP}cache:\n  models:\n    res.country: {{shared: true}}\n");
    let tenant = "optimizer:\n  models: {res.users: {max_limits: {read: 50}}}\n";
    let h = Harness::with(Dataset::demo(), tenant, &top, Vec::new());
    let admin = h.bc.admin_addr().unwrap();
    let sid = h.odoo.new_session(2);
    let url = h.url("/web/dataset/call_kw");
    for _ in 0..2 {
        let r = post_as(
            &url,
            &sid,
            &call_kw("res.country", "search_read", json!([[]])),
        )
        .await;
        assert_eq!(r.status(), 200);
    }
    let write = call_kw("res.users", "write", json!([[2], {"name": "Renamed"}]));
    assert_eq!(post_as(&url, &sid, &write).await.status(), 200);
    // Not configured: res.partner, and fifty model names nobody configured.
    let r = post_as(
        &url,
        &sid,
        &call_kw("res.partner", "search_count", json!([[]])),
    )
    .await;
    assert_eq!(r.status(), 200);
    for i in 0..50 {
        let call = call_kw(&format!("x_unconfigured.m{i}"), "search_count", json!([[]]));
        post_as(&url, &sid, &call).await;
    }
    // A call without a model (a login) is `other` too.
    login(&format!("http://{}", h.bc.addr()), "admin", "admin").await;

    let text = scrape_until(admin, &calls_line("other", "read", 51)).await;
    assert!(
        text.contains(&calls_line("res.country", "read", 2)),
        "{text}"
    );
    assert!(
        text.contains(&calls_line("res.users", "write", 1)),
        "{text}"
    );
    assert!(text.contains(&calls_line("other", "auth", 1)), "{text}");
    assert!(text.contains(&calls_line("other", "write", 0)), "{text}");
    // Bounded: the configured models plus `other`, whatever names the clients sent.
    assert_eq!(call_models(&text), ["other", "res.country", "res.users"]);
    assert!(!text.contains("x_unconfigured"), "{text}");
}

#[tokio::test]
async fn a_reload_that_names_a_model_counts_it_by_name_from_then_on() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let spec = TenantSpec::for_odoo("odoo", &["erp.example.com"], &odoo);
    let (text, _, _) = yaml(&[spec], TOP);
    let bc = start_yaml(&text, Vec::new());
    let admin = bc.admin_addr().unwrap();
    let sid = odoo.new_session(2);
    let url = format!("http://{}/web/dataset/call_kw", bc.addr());
    let count = call_kw("res.partner", "search_count", json!([[]]));
    assert_eq!(post_as(&url, &sid, &count).await.status(), 200);
    let before = scrape_until(admin, &calls_line("other", "read", 1)).await;
    assert_eq!(call_models(&before), ["other"]);

    let named = text.replacen(
        "tenants:\n",
        "cache:\n  models:\n    res.partner: {ttl: 60s}\ntenants:\n",
        1,
    );
    let config = bridgecore::config::Config::from_yaml(&named, "test.yaml").unwrap();
    let handle = bc.handle().clone();
    tokio::task::spawn_blocking(move || handle.reload(config))
        .await
        .unwrap()
        .unwrap();
    for _ in 0..2 {
        let read = call_kw("res.partner", "search_read", json!([[]]));
        assert_eq!(post_as(&url, &sid, &read).await.status(), 200);
    }
    let after = scrape_until(admin, &calls_line("res.partner", "read", 2)).await;
    // The call before the reload stays where it was counted.
    assert!(after.contains(&calls_line("other", "read", 1)), "{after}");
    assert_eq!(call_models(&after), ["other", "res.partner"]);
}

#[tokio::test]
async fn stats_report_the_cache_hit_ratio_and_every_429_the_client_saw() {
    let top = format!("{TOP}cache:\n  enabled: true\n");
    let h = Harness::with(
        Dataset::demo(),
        "rate_limits: {write: 3/minute}\n",
        &top,
        Vec::new(),
    );
    let sid = h.odoo.new_session(2);
    let url = h.url("/web/dataset/call_kw");
    let stats = h.admin("/api/v1/systems/odoo/stats");

    // One miss, then one hit of the same read.
    let read = call_kw("res.partner", "search_read", json!([[]]));
    let mut x_cache = Vec::new();
    for _ in 0..2 {
        let r = post_as(&url, &sid, &read).await;
        assert_eq!(r.status(), 200);
        x_cache.push(r.headers()["x-cache"].to_str().unwrap().to_owned());
    }
    assert_eq!(x_cache, ["MISS", "HIT"]);
    let mut body = Value::Null;
    for _ in 0..100 {
        body = get_json(stats.clone(), None).await.1;
        if body["cache_hit_ratio"] == 0.5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(body["cache_hit_ratio"], 0.5, "{body}");

    // Writes past a budget of 3 a minute: the stats count exactly the 429s the client got.
    let mut refused: u64 = 0;
    for i in 0..8 {
        let write = call_kw(
            "res.partner",
            "write",
            json!([[1], {"name": format!("N{i}")}]),
        );
        match post_as(&url, &sid, &write).await.status().as_u16() {
            429 => refused += 1,
            s => assert_eq!(s, 200),
        }
    }
    assert!(
        refused >= 4,
        "only {refused} of 8 writes refused at 3/minute"
    );
    for _ in 0..100 {
        body = get_json(stats.clone(), None).await.1;
        if body["rate_limited_requests"] == refused {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(body["rate_limited_requests"], refused, "{body}");
    assert_eq!(body["rate_limited_by_category"]["write"], refused, "{body}");
    assert_eq!(body["rate_limited_by_category"]["read"], 0, "{body}");
}
