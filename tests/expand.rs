//! Field expansion (issue 5 item 3) end to end against the fake Odoo: dotted fields answered
//! with 1 + M upstream calls on Odoo 16 and one on 17+, flat keys on the JSON-RPC routes and
//! `/json/2`, nested objects on `/api/v1`, access rules held, bad paths left to Odoo.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use fake_odoo::{Access, OdooVersion};
use serde_json::{json, Value};

const TOP: &str = "auth:\n  jwt: {secret: \"an-hs256-test-secret-of-more-than-32-bytes\"}\n";

const ADMIN: i64 = 2;
const DEMO: i64 = 6;

fn data(version: OdooVersion) -> Dataset {
    Dataset::demo().with_version(version)
}

/// The demo data plus 50 orders `BULK-nn` spread over 7 customers (all with a country).
fn bulk(version: OdooVersion) -> Dataset {
    let mut ds = data(version);
    for n in 0..50 {
        ds.insert(
            "sale.order",
            json!({"name": format!("BULK-{n:02}"), "partner_id": 8 + n % 7, "user_id": 2}),
        )
        .unwrap();
    }
    ds
}

fn harness(ds: Dataset, top: &str) -> Harness {
    Harness::with(ds, "", &format!("{TOP}{top}"), Vec::new())
}

/// A `call_kw` on a session cookie: `(X-BridgeCore-Rewrite, body)`.
async fn call_kw(
    h: &Harness,
    sid: &str,
    model: &str,
    method: &str,
    args: Value,
    kwargs: Value,
) -> (Option<String>, Value) {
    let r = post_as(
        h.url(&format!("/web/dataset/call_kw/{model}/{method}")),
        sid,
        &rpc(
            json!({"model": model, "method": method, "args": args, "kwargs": kwargs}),
            17,
        ),
    )
    .await;
    assert_eq!(r.status(), 200);
    let rewrite = r
        .headers()
        .get("x-bridgecore-rewrite")
        .map(|v| v.to_str().unwrap().to_owned());
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["id"], 17, "{b}");
    (rewrite, b)
}

/// `POST /api/v1/systems/odoo/odoo/{op}` with a token: `(status, body)`.
async fn api(h: &Harness, token: &str, op: &str, body: Value) -> (u16, Value) {
    let r = client()
        .post(h.url(&format!("/api/v1/systems/odoo/odoo/{op}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// No request that reached Odoo carried a dotted field name.
fn odoo_never_saw_dots(h: &Harness, name: &str) {
    for seen in h.odoo.requests() {
        let body = String::from_utf8_lossy(&seen.body);
        assert!(!body.contains(name), "Odoo got {name}: {body}");
    }
}

fn keys(row: &Value) -> Vec<String> {
    let mut k: Vec<String> = row.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test]
async fn flat_keys_on_call_kw() {
    for version in [OdooVersion::V16, OdooVersion::V17] {
        let h = harness(data(version), "");
        let sid = h.odoo.new_session(ADMIN);
        let (rewrite, b) = call_kw(
            &h,
            &sid,
            "sale.order",
            "search_read",
            json!([]),
            json!({"domain": [["id", "in", [1, 3]]], "fields": ["name", "partner_id.name", "partner_id.country_id.code"], "order": "id"}),
        )
        .await;
        assert_eq!(rewrite.as_deref(), Some("expand"), "{version:?}");
        assert_eq!(
            b["result"],
            json!([
                {"id": 1, "name": "S00001", "partner_id.name": "Azure Interior", "partner_id.country_id.code": "US"},
                {"id": 3, "name": "S00003", "partner_id.name": "Deco Addict", "partner_id.country_id.code": "US"},
            ]),
            "{version:?}"
        );
        odoo_never_saw_dots(&h, "partner_id.name");
    }
}

#[tokio::test]
async fn odoo_16_and_17_answer_the_same() {
    let ask = json!({"domain": [], "fields": ["name", "partner_id", "user_id.partner_id.email", "partner_id.country_id", "order_line.product_id.name", "order_line.product_uom_qty"], "order": "id"});
    let mut answers = Vec::new();
    for version in [OdooVersion::V16, OdooVersion::V17, OdooVersion::V18] {
        let h = harness(data(version), "");
        let sid = h.odoo.new_session(ADMIN);
        let (_, b) = call_kw(
            &h,
            &sid,
            "sale.order",
            "search_read",
            json!([]),
            ask.clone(),
        )
        .await;
        answers.push(b["result"].clone());
    }
    let rows = answers[0].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0]["partner_id"], json!([8, "Azure Interior"]));
    assert_eq!(
        rows[0]["partner_id.country_id"],
        json!([5, "United States"])
    );
    assert_eq!(
        rows[0]["user_id.partner_id.email"],
        "mitchelladmin@example.com"
    );
    // Through an x2many: one value per line, in the lines' order.
    let lines = rows[0]["order_line.product_id.name"].as_array().unwrap();
    assert_eq!(
        lines.len(),
        rows[0]["order_line.product_uom_qty"]
            .as_array()
            .unwrap()
            .len()
    );
    assert!(!lines.is_empty());
    assert_eq!(
        keys(&rows[0]),
        [
            "id",
            "name",
            "order_line.product_id.name",
            "order_line.product_uom_qty",
            "partner_id",
            "partner_id.country_id",
            "user_id.partner_id.email"
        ]
    );
    assert_eq!(answers[1], answers[0]);
    assert_eq!(answers[2], answers[0]);
}

#[tokio::test]
async fn flat_keys_on_jsonrpc_with_the_limit_cap() {
    let h = harness(data(OdooVersion::V16), "");
    let call = rpc(
        json!({"service": "object", "method": "execute_kw", "args": ["odoo", 2, "admin", "sale.order", "search_read", [[["id", "=", 1]], ["partner_id.email"]], {}]}),
        4,
    );
    let r = client()
        .post(h.url("/jsonrpc"))
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rewrite = r.headers()["x-bridgecore-rewrite"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        rewrite.contains("limit") && rewrite.ends_with("expand"),
        "{rewrite}"
    );
    assert_eq!(r.headers()["x-bridgecore-limit-capped"], "none->200");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["id"], 4);
    assert_eq!(
        b["result"],
        json!([{"id": 1, "partner_id.email": "azureinterior@example.com"}])
    );
    // The base call went with the cap, positionally as the caller sent it.
    let base = h
        .odoo
        .requests()
        .into_iter()
        .find(|s| s.orm_call() == Some(("sale.order".into(), "search_read".into())))
        .unwrap();
    let args = &base.json().unwrap()["params"]["args"];
    assert_eq!(args[5][1], json!(["partner_id"]));
    assert_eq!(args[6]["limit"], 200);
    odoo_never_saw_dots(&h, "partner_id.email");
}

#[tokio::test]
async fn flat_keys_on_json2() {
    let h = harness(data(OdooVersion::V18), "");
    let r = client()
        .post(h.url("/json/2/sale.order/read"))
        .header("authorization", "bearer admin-api-key")
        .header("x-odoo-database", "odoo")
        .json(&json!({"ids": [1, 3], "fields": ["name", "partner_id.name"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["x-bridgecore-rewrite"]
        .to_str()
        .unwrap()
        .contains("expand"));
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        b,
        json!([{"id": 1, "name": "S00001", "partner_id.name": "Azure Interior"}, {"id": 3, "name": "S00003", "partner_id.name": "Deco Addict"}])
    );
    // 18: one web_read.
    assert_eq!(h.odoo.count_calls("sale.order", "web_read"), 1);
    assert_eq!(h.odoo.count_calls("*", "read"), 0);
}

#[tokio::test]
async fn nested_objects_on_api_v1() {
    for version in [OdooVersion::V16, OdooVersion::V17] {
        let h = harness(data(version), "");
        let token = api_token(&h, "admin", "admin").await;
        let (s, b) = api(
            &h,
            &token,
            "search_read",
            json!({"model": "sale.order", "domain": [["id", "=", 1]], "fields": ["name", "partner_id.name", "partner_id.email", "partner_id.country_id.code"]}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["optimized"], true);
        assert_eq!(
            b["result"],
            json!([{"id": 1, "name": "S00001", "partner_id": {"id": 8, "name": "Azure Interior", "email": "azureinterior@example.com", "country_id": {"id": 5, "code": "US"}}}]),
            "{version:?}"
        );
    }
}

#[tokio::test]
async fn automatic_expansion_on_api_v1() {
    let cfg = "optimizer:\n  expand:\n    sale.order:\n      partner_id: [name, email, phone]\n";
    for version in [OdooVersion::V16, OdooVersion::V17] {
        let h = harness(data(version), cfg);
        let token = api_token(&h, "admin", "admin").await;
        let (s, b) = api(
            &h,
            &token,
            "search_read",
            json!({"model": "sale.order", "domain": [["id", "=", 1]], "fields": ["name", "partner_id"]}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["optimized"], true);
        assert_eq!(
            b["result"][0]["partner_id"],
            json!({"id": 8, "name": "Azure Interior", "email": "azureinterior@example.com", "phone": "+1 555-0108"}),
            "{version:?}"
        );
        // A read of every field expands the configured ones too.
        let (s, b) = api(
            &h,
            &token,
            "read",
            json!({"model": "sale.order", "ids": [1]}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(
            b["result"][0]["partner_id"]["email"],
            "azureinterior@example.com"
        );
        assert_eq!(b["result"][0]["name"], "S00001", "{b}");
        // A call that does not read partner_id is not expanded.
        let (_, b) = api(&h, &token, "search_read", json!({"model": "sale.order", "domain": [["id", "=", 1]], "fields": ["name"], "limit": 5})).await;
        assert_eq!(b["result"], json!([{"id": 1, "name": "S00001"}]));
        assert_eq!(b["optimized"], false);
        // The JSON-RPC routes never expand automatically.
        let sid = h.odoo.new_session(ADMIN);
        let (rewrite, b) = call_kw(
            &h,
            &sid,
            "sale.order",
            "read",
            json!([[1], ["partner_id"]]),
            json!({}),
        )
        .await;
        assert_eq!(rewrite, None);
        assert_eq!(
            b["result"],
            json!([{"id": 1, "partner_id": [8, "Azure Interior"]}])
        );
    }
}

/// N records with M = 2 relation levels: 1 + M calls on 16, one on 17, whatever N is.
#[tokio::test]
async fn upstream_calls_do_not_grow_with_records() {
    for (version, expected) in [(OdooVersion::V16, 3), (OdooVersion::V17, 1)] {
        let h = harness(bulk(version), "");
        let sid = h.odoo.new_session(ADMIN);
        let ask = |n: usize| json!({"domain": [["name", "like", "BULK"]], "fields": ["name", "partner_id.name", "partner_id.country_id.code"], "limit": n, "order": "name"});
        // Warm the caches (server version, fields_get).
        call_kw(&h, &sid, "sale.order", "search_read", json!([]), ask(1)).await;
        for n in [1, 50] {
            h.odoo.reset_counts();
            let (_, b) = call_kw(&h, &sid, "sale.order", "search_read", json!([]), ask(n)).await;
            let rows = b["result"].as_array().unwrap();
            assert_eq!(rows.len(), n);
            assert_eq!(rows[n - 1]["partner_id.country_id.code"], "US");
            assert_eq!(h.odoo.count_calls("*", "*"), expected, "{version:?} N={n}");
            assert_eq!(
                h.odoo.count(),
                expected,
                "{version:?} N={n}: {:?}",
                h.odoo
                    .requests()
                    .iter()
                    .map(|s| s.path.clone())
                    .collect::<Vec<_>>()
            );
            if version == OdooVersion::V16 {
                assert_eq!(h.odoo.count_calls("res.partner", "read"), 1);
                assert_eq!(h.odoo.count_calls("res.country", "read"), 1);
            } else {
                assert_eq!(h.odoo.count_calls("sale.order", "web_search_read"), 1);
            }
        }
    }
}

#[tokio::test]
async fn access_rules_hold_for_related_models() {
    for version in [OdooVersion::V16, OdooVersion::V17] {
        let mut ds = data(version);
        ds.models.get_mut("res.country").unwrap().access = Access::restricted();
        let h = harness(ds, "");
        let sid = h.odoo.new_session(DEMO);
        // demo reads its orders and their customers, not countries.
        let (_, b) = call_kw(
            &h,
            &sid,
            "sale.order",
            "search_read",
            json!([]),
            json!({"fields": ["partner_id.name"]}),
        )
        .await;
        assert_eq!(b["result"].as_array().unwrap().len(), 3, "{b}");
        let (_, b) = call_kw(
            &h,
            &sid,
            "sale.order",
            "search_read",
            json!([]),
            json!({"fields": ["name", "partner_id.country_id.code"]}),
        )
        .await;
        assert!(b.get("result").is_none(), "{b}");
        assert_eq!(
            b["error"]["data"]["name"], "odoo.exceptions.AccessError",
            "{version:?}"
        );
        assert!(
            b["error"]["data"]["message"]
                .as_str()
                .unwrap()
                .contains("res.country"),
            "{b}"
        );
        // The same on /api/v1: Odoo's error, 403.
        let token = api_token(&h, "demo", "demo").await;
        let (s, b) = api(
            &h,
            &token,
            "search_read",
            json!({"model": "sale.order", "fields": ["partner_id.country_id.code"]}),
        )
        .await;
        assert_eq!(s, 403, "{b}");
        assert_eq!(b["odoo_error"]["name"], "odoo.exceptions.AccessError");
        assert!(b.get("result").is_none());
        // Record rules: another salesman's order is not reachable through a relation either.
        let (_, b) = call_kw(
            &h,
            &sid,
            "sale.order.line",
            "search_read",
            json!([]),
            json!({"fields": ["order_id.name"]}),
        )
        .await;
        let names: Vec<&str> = b["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["order_id.name"].as_str().unwrap())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| ["S00003", "S00005", "S00008"].contains(n)),
            "{names:?}"
        );
    }
}

#[tokio::test]
async fn bad_paths_go_to_odoo_untouched() {
    for version in [OdooVersion::V16, OdooVersion::V17] {
        let h = harness(data(version), "");
        let sid = h.odoo.new_session(ADMIN);
        for field in [
            "name.size",
            "partner_id.nope",
            "nope.name",
            "partner_id..name",
            "partner_id.parent_id.parent_id.parent_id.parent_id.name",
        ] {
            let (rewrite, b) = call_kw(
                &h,
                &sid,
                "sale.order",
                "search_read",
                json!([]),
                json!({"fields": ["name", field], "limit": 1}),
            )
            .await;
            assert_eq!(rewrite, None, "{field}");
            assert_eq!(
                b["error"]["data"]["name"], "builtins.ValueError",
                "{field}: {b}"
            );
            let sent = h.odoo.last_request().unwrap().json().unwrap();
            assert_eq!(sent["params"]["kwargs"]["fields"], json!(["name", field]));
        }
    }
}

#[tokio::test]
async fn a_token_caller_on_the_web_routes_expands_as_its_user() {
    let ds = data(OdooVersion::V16);
    let h = Harness::with(ds, "require_jwt: true\n", TOP, Vec::new());
    let token = api_token(&h, "demo", "demo").await;
    let r = client()
        .post(h.url("/web/dataset/call_kw/sale.order/search_read"))
        .bearer_auth(&token)
        .json(&rpc(json!({"model": "sale.order", "method": "search_read", "args": [], "kwargs": {"fields": ["partner_id.name"], "order": "id"}}), 9))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    // demo's own orders only (record rules), with the customers' names.
    assert_eq!(
        b["result"],
        json!([{"id": 3, "partner_id.name": "Deco Addict"}, {"id": 5, "partner_id.name": "Lumber Inc"}, {"id": 8, "partner_id.name": "Agrolait"}]),
        "{b}"
    );
    odoo_never_saw_dots(&h, "partner_id.name");
}

#[tokio::test]
async fn deleted_related_records_read_as_false() {
    let mut ds = data(OdooVersion::V16);
    // A customer gone behind the order's back (what a concurrent unlink looks like to the
    // second read).
    ds.models.get_mut("res.partner").unwrap().records.remove(&9);
    let h = harness(ds, "");
    let sid = h.odoo.new_session(ADMIN);
    let (_, b) = call_kw(
        &h,
        &sid,
        "sale.order",
        "read",
        json!([[1, 3]]),
        json!({"fields": ["partner_id.name", "partner_id.country_id.code"]}),
    )
    .await;
    assert_eq!(
        b["result"],
        json!([
            {"id": 1, "partner_id.name": "Azure Interior", "partner_id.country_id.code": "US"},
            {"id": 3, "partner_id.name": false, "partner_id.country_id.code": false},
        ]),
        "{b}"
    );
}

#[tokio::test]
async fn web_search_read_with_a_specification() {
    let h = harness(data(OdooVersion::V17), "");
    let sid = h.odoo.new_session(ADMIN);
    let (rewrite, b) = call_kw(
        &h,
        &sid,
        "sale.order",
        "web_search_read",
        json!([]),
        json!({"domain": [["id", "=", 1]], "specification": {"name": {}, "partner_id": {}, "user_id": {"fields": {"display_name": {}}}, "partner_id.email": {}}, "limit": 80, "count_limit": 10001}),
    )
    .await;
    assert_eq!(rewrite.as_deref(), Some("expand"));
    assert_eq!(
        b["result"],
        json!({"length": 1, "records": [{"id": 1, "name": "S00001", "partner_id": 8, "user_id": {"id": 2, "display_name": "Mitchell Admin"}, "partner_id.email": "azureinterior@example.com"}]}),
    );
    assert_eq!(h.odoo.count_calls("sale.order", "web_search_read"), 1);
}

#[tokio::test]
async fn web_search_read_with_fields_on_16_and_through_the_api_on_17() {
    let h = harness(data(OdooVersion::V16), "");
    let sid = h.odoo.new_session(ADMIN);
    let (_, b) = call_kw(
        &h,
        &sid,
        "sale.order",
        "web_search_read",
        json!([]),
        json!({"domain": [], "fields": ["name", "partner_id.name"], "limit": 2, "order": "id"}),
    )
    .await;
    assert_eq!(
        b["result"],
        json!({"length": 10, "records": [{"id": 1, "name": "S00001", "partner_id.name": "Azure Interior"}, {"id": 2, "name": "S00002", "partner_id.name": "Gemini Furniture"}]}),
        "{b}"
    );
    // The base call's own errors are Odoo's, with the caller's id.
    let (_, b) = call_kw(
        &h,
        &sid,
        "sale.order",
        "search_read",
        json!([]),
        json!({"domain": [["nope", "=", 1]], "fields": ["partner_id.name"]}),
    )
    .await;
    assert_eq!(b["error"]["data"]["name"], "builtins.ValueError", "{b}");

    let h = harness(data(OdooVersion::V17), "");
    let token = api_token(&h, "admin", "admin").await;
    let (s, b) = api(
        &h,
        &token,
        "web_search_read",
        json!({"model": "sale.order", "domain": [["id", "=", 1]], "fields": ["name", "partner_id.name"], "limit": 1}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["optimized"], true);
    assert_eq!(
        b["result"]["records"],
        json!([{"id": 1, "name": "S00001", "partner_id": {"id": 8, "name": "Azure Interior"}}])
    );
}

/// `execute_kw` as admin on `/jsonrpc` (caps on by default there): the answer's `result`.
async fn execute_kw(h: &Harness, model: &str, method: &str, args: Value, kwargs: Value) -> Value {
    let call = rpc(
        json!({"service": "object", "method": "execute_kw", "args": ["odoo", ADMIN, "admin", model, method, args, kwargs]}),
        9,
    );
    let r = client()
        .post(h.url("/jsonrpc"))
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert!(b.get("error").is_none(), "{b}");
    b["result"].clone()
}

#[tokio::test]
async fn expanded_reads_keep_to_the_read_cap() {
    for (version, base) in [(OdooVersion::V16, "read"), (OdooVersion::V17, "web_read")] {
        let many = || {
            let mut ds = data(version);
            for n in 0..160 {
                ds.insert(
                    "sale.order",
                    json!({"name": format!("MANY-{n:03}"), "partner_id": 8 + n % 7, "user_id": 2}),
                )
                .unwrap();
            }
            ds
        };
        let capped = harness(many(), "");
        let uncapped = harness(many(), "optimizer:\n  limit_caps: {rpc: false}\n");
        let ids = execute_kw(&uncapped, "sale.order", "search", json!([[]]), json!({})).await;
        let n = ids.as_array().unwrap().len();
        assert!(n > 150, "{n} orders");
        let fields = json!(["name", "partner_id.name", "partner_id.country_id.code"]);
        let ask = json!({"fields": fields});
        let whole = execute_kw(&uncapped, "sale.order", "read", json!([ids]), ask.clone()).await;
        capped.odoo.reset_counts();
        let pieces = execute_kw(&capped, "sale.order", "read", json!([ids]), ask).await;
        // The caller cannot tell: the same records, in the order of its ids.
        assert_eq!(pieces, whole, "{version:?}");
        assert_eq!(pieces.as_array().unwrap().len(), n);
        assert_eq!(pieces[n - 1]["partner_id.country_id.code"], "US");
        // Odoo never read more than the default read cap (100) at once.
        // The pieces run concurrently, so they reach Odoo in either order.
        let mut sizes: Vec<usize> = capped
            .odoo
            .requests()
            .iter()
            .filter(|s| s.orm_call() == Some(("sale.order".into(), base.into())))
            .map(|s| {
                s.json().unwrap()["params"]["args"][5][0]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .collect();
        sizes.sort_unstable();
        assert_eq!(sizes, vec![n - 100, 100], "{version:?}: {base} sizes");
        if version == OdooVersion::V16 {
            // Seven customers: one read per level still.
            assert_eq!(capped.odoo.count_calls("res.partner", "read"), 1);
            assert_eq!(capped.odoo.count_calls("res.country", "read"), 1);
        }
    }
}

/// POSTs an XML-RPC `methodCall` of `method` with `params`: `(X-BridgeCore-Rewrite, value or
/// (faultCode, faultString))`, after checking it came back as Odoo answers XML-RPC (HTTP 200,
/// `text/xml`).
async fn xmlrpc(
    url: String,
    method: &str,
    params: &[Value],
) -> (Option<String>, Result<Value, (Value, String)>) {
    let r = post_xmlrpc(url, method, params).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type.as_deref(), Some("text/xml; charset=utf-8"));
    let answer =
        fake_odoo::xmlrpc::decode_response(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body));
    (r.rewrite, answer)
}

/// N records with M = 2 relation levels over XML-RPC: the JSON-RPC route's values, with 1 + M
/// upstream calls on 16 and one on 17, `execute_kw` on /xmlrpc/2 and `execute` on /xmlrpc.
#[tokio::test]
async fn xmlrpc_calls_are_expanded_as_on_jsonrpc() {
    for (version, expected) in [(OdooVersion::V16, 3), (OdooVersion::V17, 1)] {
        let h = harness(bulk(version), "");
        let domain = json!([["name", "like", "BULK"]]);
        let fields = json!(["name", "partner_id.name", "partner_id.country_id.code"]);
        // The JSON-RPC route's answer (which also warms the version and fields_get caches).
        let want = execute_kw(
            &h,
            "sale.order",
            "search_read",
            json!([domain]),
            json!({"fields": fields, "order": "name"}),
        )
        .await;
        assert_eq!(want.as_array().unwrap().len(), 50);
        let login = [
            json!("odoo"),
            json!(ADMIN),
            json!("admin"),
            json!("sale.order"),
            json!("search_read"),
        ];
        let kw: Vec<Value> = login
            .iter()
            .cloned()
            .chain([json!([domain]), json!({"fields": fields, "order": "name"})])
            .collect();
        // search_read(domain, fields, offset, limit, order), positionally.
        let positional: Vec<Value> = login
            .iter()
            .cloned()
            .chain([
                domain.clone(),
                fields.clone(),
                json!(0),
                json!(0),
                json!("name"),
            ])
            .collect();
        for (path, method, params) in [
            ("/xmlrpc/2/object", "execute_kw", kw),
            ("/xmlrpc/object", "execute", positional),
        ] {
            h.odoo.reset_counts();
            let (rewrite, got) = xmlrpc(h.url(path), method, &params).await;
            let got = got.unwrap_or_else(|f| panic!("{version:?} {path}: {f:?}"));
            assert_eq!(got, want, "{version:?} {path}");
            assert_eq!(got[49]["partner_id.country_id.code"], "US");
            let rewrite = rewrite.unwrap_or_default();
            assert!(rewrite.ends_with("expand"), "{rewrite}");
            assert_eq!(h.odoo.count(), expected, "{version:?} {path}");
            if version == OdooVersion::V16 {
                assert_eq!(h.odoo.count_calls("sale.order", "search_read"), 1);
                assert_eq!(h.odoo.count_calls("res.partner", "read"), 1);
                assert_eq!(h.odoo.count_calls("res.country", "read"), 1);
            } else {
                assert_eq!(h.odoo.count_calls("sale.order", "web_search_read"), 1);
            }
            odoo_never_saw_dots(&h, "partner_id.name");
        }
    }
}

#[tokio::test]
async fn an_access_error_in_an_xmlrpc_expansion_is_odoos_fault() {
    for version in [OdooVersion::V16, OdooVersion::V17] {
        let mut ds = data(version);
        ds.models.get_mut("res.country").unwrap().access = Access::restricted();
        let h = harness(ds, "");
        // demo reads its orders and their customers, not countries.
        let params = [
            json!("odoo"),
            json!(DEMO),
            json!("demo"),
            json!("sale.order"),
            json!("search_read"),
            json!([[]]),
            json!({"fields": ["name", "partner_id.country_id.code"]}),
        ];
        let (rewrite, got) = xmlrpc(h.url("/xmlrpc/2/object"), "execute_kw", &params).await;
        assert!(rewrite.unwrap_or_default().ends_with("expand"));
        let (code, string) = got.unwrap_err();
        assert_eq!(code, json!(4), "{version:?}: {string}");
        assert!(string.contains("res.country"), "{string}");
        let (_, got) = xmlrpc(h.url("/xmlrpc/object"), "execute_kw", &params).await;
        let (code, string) = got.unwrap_err();
        let code = code.as_str().unwrap().to_owned();
        assert!(
            code.starts_with("warning -- AccessError\n\n") && code.contains("res.country"),
            "{code}"
        );
        assert_eq!(string, "");
        // What the caller may read still comes back.
        let mut ok = params.clone();
        ok[6] = json!({"fields": ["partner_id.name"]});
        let (_, got) = xmlrpc(h.url("/xmlrpc/2/object"), "execute_kw", &ok).await;
        assert_eq!(got.unwrap().as_array().unwrap().len(), 3, "{version:?}");
    }
}
