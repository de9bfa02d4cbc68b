//! Limit caps (issue 5 item 1) end to end: on by default for `/jsonrpc` and the `/api/v1` call
//! API, off for the web client's cookie routes; the answer says what was rewritten.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};

const TOP: &str = "auth:\n  jwt: {secret: \"an-hs256-test-secret-of-more-than-32-bytes\"}\n";

#[tokio::test]
async fn jsonrpc_reads_are_capped_and_say_so() {
    let h = Harness::with(Dataset::demo(), "", TOP, Vec::new());
    let call = rpc(
        json!({"service": "object", "method": "execute_kw", "args": ["odoo", 2, "admin", "res.partner", "search_read", [[]], {"fields": ["name"], "limit": 1000}]}),
        4,
    );
    let r = client()
        .post(h.url("/jsonrpc"))
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-bridgecore-limit-capped"], "1000->200");
    assert_eq!(r.headers()["x-bridgecore-rewrite"], "limit");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["id"], 4);
    assert!(b["result"].is_array());
    let sent = last_body(&h.odoo, "/jsonrpc");
    assert_eq!(sent["params"]["args"][6]["limit"], 200);
}

#[tokio::test]
async fn the_web_clients_calls_are_left_alone() {
    let h = Harness::with(Dataset::demo(), "", TOP, Vec::new());
    let sid = h.odoo.new_session(2);
    let call = rpc(
        json!({"model": "res.partner", "method": "search_read", "args": [[]], "kwargs": {"fields": ["name"], "limit": 1000}}),
        5,
    );
    let r = post_as(h.url("/web/dataset/call_kw"), &sid, &call).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-bridgecore-limit-capped").is_none());
    assert!(r.headers().get("x-bridgecore-rewrite").is_none());
    let sent = last_body(&h.odoo, "/web/dataset/call_kw");
    assert_eq!(sent["params"]["kwargs"]["limit"], 1000);
}

#[tokio::test]
async fn api_reads_without_a_limit_get_the_cap_and_say_optimized() {
    let h = Harness::with(Dataset::demo(), "", TOP, Vec::new());
    let login: Value = client()
        .post(h.url("/api/v1/auth/login"))
        .json(&json!({"system_id": "odoo", "login": "admin", "password": "admin"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    let r = client()
        .post(h.url("/api/v1/systems/odoo/odoo/search_read"))
        .bearer_auth(token)
        .json(&json!({"model": "res.partner", "fields": ["name"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-bridgecore-limit-capped"], "none->200");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["optimized"], true);
    let sent = last_body(&h.odoo, "/web/dataset/call_kw");
    assert_eq!(sent["params"]["kwargs"]["limit"], 200);
    // A limit under the cap is not a rewrite.
    let r = client()
        .post(h.url("/api/v1/systems/odoo/odoo/search_read"))
        .bearer_auth(token)
        .json(&json!({"model": "res.partner", "fields": ["name"], "limit": 5}))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("x-bridgecore-limit-capped").is_none());
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["optimized"], false);
}
