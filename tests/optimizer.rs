//! The optimizer end to end (issue 5): `read` batching, per-tenant and per-model settings,
//! `exclude_binary`, canonical domains, and what the answer says about them, against the fake
//! Odoo with call counts.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};

const TOP: &str = "auth:\n  jwt: {secret: \"an-hs256-test-secret-of-more-than-32-bytes\"}\n";

/// The demo data plus 300 partners (ids returned) and, for `demo` (uid 6), 260 orders of
/// their own plus one of `admin`'s (the last id returned).
fn data() -> (Dataset, Vec<i64>, Vec<i64>) {
    let mut ds = Dataset::demo();
    let partners: Vec<i64> = (0..300)
        .map(|i| {
            ds.insert(
                "res.partner",
                json!({"name": format!("Partner {i:03}"), "email": format!("p{i}@example.com"),
                       "image_1920": "aGVsbG8=", "comment": "wide"}),
            )
            .unwrap()
        })
        .collect();
    let mut orders: Vec<i64> = (0..260)
        .map(|i| {
            ds.insert(
                "sale.order",
                json!({"name": format!("SO{i:03}"), "partner_id": partners[0], "user_id": 6}),
            )
            .unwrap()
        })
        .collect();
    orders.push(
        ds.insert(
            "sale.order",
            json!({"name": "SO-ADMIN", "partner_id": partners[0], "user_id": 2}),
        )
        .unwrap(),
    );
    (ds, partners, orders)
}

fn execute_kw(login: (i64, &str), model: &str, method: &str, args: Value, kwargs: Value) -> Value {
    rpc(
        json!({"service": "object", "method": "execute_kw",
               "args": ["odoo", login.0, login.1, model, method, args, kwargs]}),
        41,
    )
}

async fn post(url: String, body: &Value) -> reqwest::Response {
    client().post(url).json(body).send().await.unwrap()
}

/// 250 ids, out of order, with duplicates.
fn messy_ids(partners: &[i64]) -> Vec<i64> {
    let mut ids: Vec<i64> = partners[..240].iter().rev().copied().collect();
    ids.extend([partners[5], partners[5], partners[200], partners[5]]);
    ids.extend(&partners[240..246]);
    assert_eq!(ids.len(), 250);
    ids
}

#[tokio::test]
async fn a_read_of_250_ids_is_three_reads_with_the_answer_odoo_gives_to_one() {
    let (ds, partners, _) = data();
    let h = Harness::with(ds, "", TOP, Vec::new());
    let ids = messy_ids(&partners);
    let call = execute_kw(
        (2, "admin"),
        "res.partner",
        "read",
        json!([ids]),
        json!({"fields": ["name", "email"]}),
    );
    let direct: Value = post(h.direct("/jsonrpc"), &call)
        .await
        .json()
        .await
        .unwrap();
    h.odoo.reset_counts();
    let r = post(h.url("/jsonrpc"), &call).await;
    assert_eq!(r.status(), 200);
    let rewrite = r.headers().get("x-bridgecore-rewrite").cloned();
    let got: Value = r.json().await.unwrap();
    assert_eq!(
        rewrite.as_ref().and_then(|v| v.to_str().ok()),
        Some("batch"),
        "{got}\n{direct}"
    );
    assert_eq!(h.odoo.count_calls("res.partner", "read"), 3);
    assert_eq!(got["id"], 41);
    assert_eq!(got["result"], direct["result"]);
    let names: Vec<&str> = got["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    // Odoo's order (the ids'), duplicates kept.
    assert_eq!(names.len(), 250);
    assert_eq!(names[0], "Partner 239");
    assert_eq!(names[240], "Partner 005");
    assert_eq!(names[241], "Partner 005");
    // Each batch went with the caller's own credential, 100 ids at most.
    for seen in h.odoo.requests() {
        let b: Value = serde_json::from_slice(&seen.body).unwrap();
        assert_eq!(b["params"]["args"][2], "admin");
        assert!(b["params"]["args"][5][0].as_array().unwrap().len() <= 100);
    }
}

#[tokio::test]
async fn a_missing_id_in_a_batch_is_odoos_own_error() {
    let (ds, partners, _) = data();
    let h = Harness::with(ds, "", TOP, Vec::new());
    let mut ids = partners[..249].to_vec();
    ids.insert(150, 999_999);
    let call = execute_kw(
        (2, "admin"),
        "res.partner",
        "read",
        json!([ids]),
        json!({"fields": ["name"]}),
    );
    let direct: Value = post(h.direct("/jsonrpc"), &call)
        .await
        .json()
        .await
        .unwrap();
    let r = post(h.url("/jsonrpc"), &call).await;
    assert_eq!(r.headers()["x-bridgecore-rewrite"], "batch");
    let mut got: Value = r.json().await.unwrap();
    assert!(got.get("result").is_none(), "{got}");
    // The same error as Odoo's, but for the traceback, which BridgeCore does not repeat.
    let mut want = direct.clone();
    want["error"]["data"]["debug"] = json!("");
    got["error"]["data"]["debug"] = json!("");
    assert_eq!(got, want);
}

#[tokio::test]
async fn api_reads_are_batched_on_the_token_users_session_and_say_optimized() {
    let (ds, partners, _) = data();
    let h = Harness::with(ds, "", TOP, Vec::new());
    let token = api_token(&h, "admin", "admin").await;
    let ids = &partners[..250];
    let r = client()
        .post(h.url("/api/v1/systems/odoo/odoo/read"))
        .bearer_auth(&token)
        .json(&json!({"model": "res.partner", "ids": ids, "fields": ["name"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-bridgecore-rewrite"], "batch");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["optimized"], true);
    assert_eq!(b["result"].as_array().unwrap().len(), 250);
    assert_eq!(b["result"][249]["id"], ids[249]);
    assert_eq!(h.odoo.count_calls("res.partner", "read"), 3);
}

#[tokio::test]
async fn a_token_caller_on_the_web_route_batches_on_its_own_odoo_session() {
    let (ds, partners, _) = data();
    let h = Harness::with(
        ds,
        "require_jwt: true\noptimizer: {limit_caps: {web: true}}\n",
        TOP,
        Vec::new(),
    );
    let token = api_token(&h, "admin", "admin").await;
    h.odoo.reset_counts();
    let call = rpc(
        json!({"model": "res.partner", "method": "read", "args": [&partners[..150], ["name"]], "kwargs": {}}),
        8,
    );
    let r = client()
        .post(h.url("/web/dataset/call_kw/res.partner/read"))
        .header("x-bridgecore-token", &token)
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["id"], 8, "{b}");
    assert_eq!(b["result"].as_array().unwrap().len(), 150, "{b}");
    let reads: Vec<_> = h
        .odoo
        .requests()
        .into_iter()
        .filter(|s| s.path.starts_with("/web/dataset/call_kw"))
        .collect();
    assert_eq!(reads.len(), 2);
    for seen in reads {
        let cookie = seen.header("cookie").unwrap();
        assert!(cookie.starts_with("session_id="), "{cookie}");
    }
}

#[tokio::test]
async fn an_access_error_in_one_batch_is_the_callers_error_and_no_data() {
    let (ds, _, orders) = data();
    let h = Harness::with(ds, "", TOP, Vec::new());
    // demo may read its own 260 orders, not admin's last one (record rule), which sits in
    // the third batch.
    let call = execute_kw(
        (6, "demo"),
        "sale.order",
        "read",
        json!([orders]),
        json!({"fields": ["name"]}),
    );
    let direct: Value = post(h.direct("/jsonrpc"), &call)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        direct["error"]["data"]["name"],
        "odoo.exceptions.AccessError"
    );
    let r = post(h.url("/jsonrpc"), &call).await;
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["id"], 41);
    assert!(b.get("result").is_none(), "{b}");
    assert_eq!(b["error"]["code"], 200);
    assert_eq!(b["error"]["data"]["name"], "odoo.exceptions.AccessError");
    assert_eq!(
        b["error"]["data"]["message"],
        direct["error"]["data"]["message"]
    );
}

#[tokio::test]
async fn a_tenant_can_switch_caps_off_and_a_model_can_have_its_own_cap() {
    let (ds, partners, _) = data();
    let h = Harness::with(
        ds,
        "optimizer: {limit_caps: {rpc: false}}\n",
        TOP,
        Vec::new(),
    );
    let read = execute_kw(
        (2, "admin"),
        "res.partner",
        "read",
        json!([&partners[..250]]),
        json!({"fields": ["name"]}),
    );
    let r = post(h.url("/jsonrpc"), &read).await;
    assert!(r.headers().get("x-bridgecore-rewrite").is_none());
    assert_eq!(h.odoo.count_calls("res.partner", "read"), 1);
    let search = execute_kw(
        (2, "admin"),
        "res.partner",
        "search_read",
        json!([[]]),
        json!({"fields": ["name"], "limit": 1000}),
    );
    post(h.url("/jsonrpc"), &search).await;
    assert_eq!(
        last_body(&h.odoo, "/jsonrpc")["params"]["args"][6]["limit"],
        1000
    );

    let (ds, partners, _) = data();
    let h = Harness::with(
        ds,
        "optimizer: {models: {res.partner: {max_limits: {read: 50, search_read: null}}}}\n",
        TOP,
        Vec::new(),
    );
    let read = execute_kw(
        (2, "admin"),
        "res.partner",
        "read",
        json!([&partners[..120]]),
        json!({"fields": ["name"]}),
    );
    let r = post(h.url("/jsonrpc"), &read).await;
    assert_eq!(r.headers()["x-bridgecore-rewrite"], "batch");
    assert_eq!(h.odoo.count_calls("res.partner", "read"), 3);
    // search_read on res.partner is exempt; on another model the global cap holds.
    let r = post(h.url("/jsonrpc"), &search).await;
    assert!(r.headers().get("x-bridgecore-limit-capped").is_none());
    let other = execute_kw(
        (2, "admin"),
        "sale.order",
        "search_read",
        json!([[]]),
        json!({"fields": ["name"], "limit": 1000}),
    );
    let r = post(h.url("/jsonrpc"), &other).await;
    assert_eq!(r.headers()["x-bridgecore-limit-capped"], "1000->200");
}

#[tokio::test]
async fn exclude_binary_asks_for_the_stored_non_binary_fields_only() {
    let (ds, _, _) = data();
    let h = Harness::with(
        ds,
        "optimizer: {default_fields: exclude_binary}\n",
        TOP,
        Vec::new(),
    );
    let call = execute_kw(
        (2, "admin"),
        "res.partner",
        "search_read",
        json!([[["name", "=like", "Partner 00%"]]]),
        json!({"limit": 5}),
    );
    let r = post(h.url("/jsonrpc"), &call).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-bridgecore-rewrite"], "fields");
    let b: Value = r.json().await.unwrap();
    let records = b["result"].as_array().unwrap();
    assert_eq!(records.len(), 5);
    for rec in records {
        assert!(rec.get("image_1920").is_none(), "{rec}");
        assert!(rec.get("name").is_some());
        assert!(rec.get("comment").is_some());
    }
    // fields_get once, with the caller's credential; the forwarded call names its fields.
    assert_eq!(h.odoo.count_calls("res.partner", "fields_get"), 1);
    let sent = last_body(&h.odoo, "/jsonrpc");
    let fields = sent["params"]["args"][6]["fields"].as_array().unwrap();
    assert!(fields.contains(&json!("email")));
    assert!(!fields.contains(&json!("image_1920")));
    let again = post(h.url("/jsonrpc"), &call).await;
    assert_eq!(again.status(), 200);
    assert_eq!(h.odoo.count_calls("res.partner", "fields_get"), 1);
    // A call that names its fields is left alone.
    let named = execute_kw(
        (2, "admin"),
        "res.partner",
        "search_read",
        json!([[]]),
        json!({"fields": ["image_1920"], "limit": 1}),
    );
    let r = post(h.url("/jsonrpc"), &named).await;
    assert!(r.headers().get("x-bridgecore-rewrite").is_none());
}

#[tokio::test]
async fn canonical_domains_are_forwarded_and_listed_with_the_other_rewrites() {
    let (ds, _, _) = data();
    let h = Harness::with(ds, "", TOP, Vec::new());
    let domain = json!([["name", "=like", "Partner 1%"], ["email", "!=", false]]);
    let call = execute_kw(
        (2, "admin"),
        "res.partner",
        "search_read",
        json!([domain]),
        json!({"fields": ["name"]}),
    );
    let direct: Value = post(h.direct("/jsonrpc"), &call)
        .await
        .json()
        .await
        .unwrap();
    let r = post(h.url("/jsonrpc"), &call).await;
    assert_eq!(r.headers()["x-bridgecore-rewrite"], "domain,limit");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["result"], direct["result"]);
    let sent = last_body(&h.odoo, "/jsonrpc");
    assert_eq!(
        sent["params"]["args"][5][0],
        json!(["&", ["email", "!=", false], ["name", "=like", "Partner 1%"]])
    );
}

#[tokio::test]
async fn key_mode_leaves_the_body_untouched() {
    let (ds, _, _) = data();
    let h = Harness::with(ds, "optimizer: {canonical_domains: key}\n", TOP, Vec::new());
    let domain = json!([["name", "=like", "Partner 1%"], ["email", "!=", false]]);
    let call = execute_kw(
        (2, "admin"),
        "res.partner",
        "search_read",
        json!([domain]),
        json!({"fields": ["name"], "limit": 5}),
    );
    let r = post(h.url("/jsonrpc"), &call).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-bridgecore-rewrite").is_none());
    let sent = last_body(&h.odoo, "/jsonrpc");
    assert_eq!(sent["params"]["args"][5][0], domain);
}

#[test]
fn optimizer_config_errors_name_file_line_and_column() {
    let text = "tenants:\n  odoo:\n    upstream: [\"127.0.0.1:8069\"]\n    optimizer:\n      read_concurrency: 100\n      canonical_domains: sometimes\n";
    let err = bridgecore::config::Config::from_yaml(text, "conf/bad.yaml").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("conf/bad.yaml:5:25: `tenants.odoo.optimizer.read_concurrency`: must be between 1 and 64"),
        "{text}"
    );
    assert!(
        text.contains("conf/bad.yaml:6:26: `tenants.odoo.optimizer.canonical_domains`: unknown mode `sometimes`"),
        "{text}"
    );
}

#[tokio::test]
async fn shuffled_domains_share_a_cache_entry_unless_canonical_domains_are_off() {
    for (mode, odoo_calls) in [("forward", 1), ("key", 1), ("off", 2)] {
        let (ds, _, _) = data();
        let h = Harness::with(
            ds,
            &format!("optimizer: {{canonical_domains: {mode}}}\n"),
            TOP,
            Vec::new(),
        );
        let sid = h.odoo.new_session(2);
        for domain in [
            json!([["name", "=like", "Partner 1%"], ["email", "!=", false]]),
            json!([["email", "!=", false], ["name", "=like", "Partner 1%"]]),
        ] {
            let call = rpc(
                json!({"model": "res.partner", "method": "search_read", "args": [],
                       "kwargs": {"domain": domain, "fields": ["name"], "limit": 5}}),
                3,
            );
            let r = post_as(
                h.url("/web/dataset/call_kw/res.partner/search_read"),
                &sid,
                &call,
            )
            .await;
            assert_eq!(r.status(), 200);
            // The web client's route: its domain always goes as sent.
            assert!(r.headers().get("x-bridgecore-rewrite").is_none());
            let b: Value = r.json().await.unwrap();
            assert_eq!(b["result"].as_array().unwrap().len(), 5, "{b}");
        }
        assert_eq!(
            h.odoo.count_calls("res.partner", "search_read"),
            odoo_calls,
            "canonical_domains: {mode}"
        );
    }
}

#[tokio::test]
async fn json2_reads_are_batched_with_the_callers_api_key() {
    let (mut ds, partners, orders) = data();
    ds.json2 = true;
    let h = Harness::with(ds, "", TOP, Vec::new());
    let read = |ids: &[i64], key: &str| {
        client()
            .post(h.url("/json/2/res.partner/read"))
            .header("authorization", format!("bearer {key}"))
            .header("x-odoo-database", "odoo")
            .json(&json!({"ids": ids, "fields": ["name", "email"]}))
    };
    let direct: Value = client()
        .post(h.direct("/json/2/res.partner/read"))
        .header("authorization", "bearer admin-api-key")
        .json(&json!({"ids": &partners[..250], "fields": ["name", "email"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    h.odoo.reset_counts();
    let r = read(&partners[..250], "admin-api-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-bridgecore-rewrite"], "batch");
    let got: Value = r.json().await.unwrap();
    assert_eq!(got, direct);
    assert_eq!(h.odoo.count_calls("res.partner", "read"), 3);
    for seen in h.odoo.requests() {
        assert_eq!(seen.header("authorization"), Some("bearer admin-api-key"));
        assert_eq!(seen.header("x-odoo-database"), Some("odoo"));
    }
    // An access error in a batch: Odoo's status and body.
    let r = client()
        .post(h.url("/json/2/sale.order/read"))
        .header("authorization", "bearer demo-api-key")
        .json(&json!({"ids": orders, "fields": ["name"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["name"], "odoo.exceptions.AccessError");
}
