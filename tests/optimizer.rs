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

/// A logical query: the terms of its implicit AND, and the two operands of one OR, if any.
type Query = (Vec<Value>, Option<(Value, Value)>);

/// One logical query written in a random order: the operands of its implicit AND shuffled, and
/// the two operands of its OR (if any) swapped at random.
fn shuffled_domain(query: &[Value], or: Option<&(Value, Value)>, seed: &mut u64) -> Value {
    let mut next = |n: usize| {
        // xorshift64*: enough to shuffle with, and the same run every time.
        *seed ^= *seed >> 12;
        *seed ^= *seed << 25;
        *seed ^= *seed >> 27;
        (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    };
    let mut parts: Vec<Vec<Value>> = query.iter().map(|t| vec![t.clone()]).collect();
    if let Some((a, b)) = or {
        let (a, b) = if next(2) == 0 { (a, b) } else { (b, a) };
        parts.push(vec![json!("|"), a.clone(), b.clone()]);
    }
    for i in (1..parts.len()).rev() {
        parts.swap(i, next(i + 1));
    }
    Value::Array(parts.into_iter().flatten().collect())
}

/// The replayed workload of issue 5 item 2 through BridgeCore's real cache: eight logical
/// `search_read`s, each sent 30 times with its domain in a random order. With canonical domains
/// every logical query reaches Odoo once and the rest are hits; without them, every distinct
/// spelling is a miss of its own.
#[tokio::test]
async fn a_replayed_workload_with_shuffled_domains_hits_the_cache_once_per_query() {
    let t = |f: &str, op: &str, v: Value| json!([f, op, v]);
    let queries: Vec<Query> = vec![
        (
            vec![
                t("name", "=like", json!("Partner 1%")),
                t("email", "!=", json!(false)),
            ],
            Some((t("id", ">", json!(150)), t("name", "ilike", json!("7")))),
        ),
        (
            vec![
                t("email", "ilike", json!("example")),
                t("id", "<=", json!(250)),
                t("name", "!=", json!("Partner 005")),
            ],
            None,
        ),
        (
            vec![t("name", "ilike", json!("2")), t("id", ">", json!(10))],
            Some((
                t("email", "=like", json!("p1%")),
                t("email", "=like", json!("p2%")),
            )),
        ),
        (
            vec![
                t("id", "not in", json!([1, 2, 3])),
                t("email", "!=", json!(false)),
                t("name", "=like", json!("Partner 0%")),
            ],
            Some((t("id", "<", json!(40)), t("id", ">", json!(280)))),
        ),
        (
            vec![t("name", "ilike", json!("9")), t("id", "<=", json!(200))],
            None,
        ),
        (
            vec![
                t("email", "ilike", json!("@")),
                t("name", "=like", json!("Partner 2%")),
                t("id", ">=", json!(5)),
            ],
            Some((
                t("name", "ilike", json!("1")),
                t("name", "ilike", json!("3")),
            )),
        ),
        (
            vec![
                t("id", "in", json!([11, 12, 13, 14])),
                t("email", "!=", json!(false)),
            ],
            Some((
                t("name", "=like", json!("Partner 01%")),
                t("id", "=", json!(14)),
            )),
        ),
        (
            vec![
                t("name", "!=", json!(false)),
                t("email", "ilike", json!("p3")),
                t("id", "<", json!(400)),
                t("id", ">", json!(0)),
            ],
            None,
        ),
    ];
    let rounds = 30;
    let mut figures = Vec::new();
    for mode in ["forward", "off"] {
        let (ds, _, _) = data();
        let h = Harness::with(
            ds,
            &format!("optimizer: {{canonical_domains: {mode}}}\n"),
            TOP,
            Vec::new(),
        );
        let sid = h.odoo.new_session(2);
        let mut seed = 0x5EED_0F15_5BE5_u64;
        let mut spellings = std::collections::HashSet::new();
        let mut answers: Vec<Option<Value>> = vec![None; queries.len()];
        let mut hits = 0;
        for round in 0..rounds {
            for (i, (terms, or)) in queries.iter().enumerate() {
                let domain = shuffled_domain(terms, or.as_ref(), &mut seed);
                spellings.insert(domain.to_string());
                let call = rpc(
                    json!({"model": "res.partner", "method": "search_read", "args": [],
                           "kwargs": {"domain": domain, "fields": ["name", "email"],
                                      "order": "id"}}),
                    (round * 100 + i) as i64,
                );
                let r = post_as(
                    h.url("/web/dataset/call_kw/res.partner/search_read"),
                    &sid,
                    &call,
                )
                .await;
                assert_eq!(r.status(), 200);
                if r.headers()["x-cache"] == "HIT" {
                    hits += 1;
                }
                let b: Value = r.json().await.unwrap();
                // Every spelling of a query gets the same records, hit or miss.
                match &answers[i] {
                    Some(first) => assert_eq!(&b["result"], first, "query {i}, {mode}"),
                    None => {
                        let rows = b["result"].as_array().map_or(0, Vec::len);
                        assert!(rows > 0, "query {i} selects nothing: {b}");
                        answers[i] = Some(b["result"].clone());
                    }
                }
            }
        }
        let total = rounds * queries.len();
        let misses = h.odoo.count_calls("res.partner", "search_read");
        assert_eq!(
            misses + hits,
            total,
            "{mode}: every request a hit or a call to Odoo"
        );
        match mode {
            "forward" => assert_eq!(misses, queries.len(), "one miss per logical query"),
            _ => assert_eq!(misses, spellings.len(), "one miss per spelling"),
        }
        figures.push((mode, spellings.len(), misses, hits as f64 / total as f64));
    }
    for (mode, spellings, misses, ratio) in &figures {
        eprintln!(
            "canonical_domains: {mode}: {} requests over {} queries in {spellings} spellings: \
             {misses} sent to Odoo, hit ratio {:.1}%",
            rounds * queries.len(),
            queries.len(),
            100.0 * ratio
        );
    }
    assert!(figures[0].3 > figures[1].3 + 0.2, "{figures:?}");
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

#[tokio::test]
async fn an_xmlrpc_read_of_250_ids_is_three_reads_with_the_answer_odoo_gives_to_one() {
    let (ds, partners, _) = data();
    let h = Harness::with(ds, "", TOP, Vec::new());
    let ids = messy_ids(&partners);
    let login = [
        json!("odoo"),
        json!(2),
        json!("admin"),
        json!("res.partner"),
        json!("read"),
    ];
    let fields = json!(["name", "email"]);
    // `execute_kw` on /xmlrpc/2, and `execute` (positional arguments) on the legacy /xmlrpc.
    let kw: Vec<Value> = login
        .iter()
        .cloned()
        .chain([json!([ids]), json!({"fields": fields})])
        .collect();
    let positional: Vec<Value> = login
        .iter()
        .cloned()
        .chain([json!(ids), fields.clone()])
        .collect();
    for (path, method, params) in [
        ("/xmlrpc/2/object", "execute_kw", kw),
        ("/xmlrpc/object", "execute", positional),
    ] {
        let direct = post_xmlrpc(h.direct(path), method, &params).await;
        assert_eq!(direct.status, 200);
        h.odoo.reset_counts();
        let got = post_xmlrpc(h.url(path), method, &params).await;
        assert_eq!(got.status, 200, "{path}: {}", got.body);
        assert_eq!(got.rewrite.as_deref(), Some("batch"), "{path}");
        assert_eq!(got.content_type.as_deref(), Some("text/xml; charset=utf-8"));
        assert_eq!(h.odoo.count_calls("res.partner", "read"), 3, "{path}");
        assert_eq!(h.odoo.count(), 3, "{path}");
        // Byte for byte what Odoo answers to the one big read.
        assert_eq!(got.body, direct.body, "{path}");
        let rows = fake_odoo::xmlrpc::decode_response(&got.body)
            .unwrap()
            .unwrap();
        let want = fake_odoo::xmlrpc::decode_response(&direct.body)
            .unwrap()
            .unwrap();
        assert_eq!(rows, want);
        let names: Vec<&str> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 250);
        assert_eq!(names[0], "Partner 239");
        assert_eq!(names[241], "Partner 005");
        // Each batch went with the caller's own (db, uid, password), 100 ids at most.
        for seen in h.odoo.requests() {
            assert_eq!(seen.path, "/jsonrpc");
            let b: Value = serde_json::from_slice(&seen.body).unwrap();
            let args = b["params"]["args"].as_array().unwrap();
            assert_eq!(args[..3], [json!("odoo"), json!(2), json!("admin")]);
            assert!(b["params"]["args"][5][0].as_array().unwrap().len() <= 100);
        }
    }
}

#[tokio::test]
async fn an_access_error_in_an_xmlrpc_batch_is_odoos_fault() {
    let (ds, _, orders) = data();
    let h = Harness::with(ds, "", TOP, Vec::new());
    // demo may not read admin's order, the last id, in the third batch.
    let params = [
        json!("odoo"),
        json!(6),
        json!("demo"),
        json!("sale.order"),
        json!("read"),
        json!([orders]),
        json!({"fields": ["name"]}),
    ];
    for path in ["/xmlrpc/2/object", "/xmlrpc/object"] {
        let direct = post_xmlrpc(h.direct(path), "execute_kw", &params).await;
        let (want_code, _) = fake_odoo::xmlrpc::decode_response(&direct.body)
            .unwrap()
            .unwrap_err();
        h.odoo.reset_counts();
        let got = post_xmlrpc(h.url(path), "execute_kw", &params).await;
        // HTTP 200 and text/xml, as Odoo answers a fault; no data.
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(got.content_type.as_deref(), Some("text/xml; charset=utf-8"));
        assert_eq!(got.rewrite.as_deref(), Some("batch"));
        assert_eq!(h.odoo.count_calls("sale.order", "read"), 3, "{path}");
        let (code, string) = fake_odoo::xmlrpc::decode_response(&got.body)
            .unwrap()
            .unwrap_err();
        assert_eq!(code, want_code, "{path}");
        if path == "/xmlrpc/2/object" {
            // faultCode 4 (AccessError) with Odoo's message: the same bytes as Odoo's.
            assert_eq!(code, json!(4));
            assert!(string.contains("sale.order"), "{string}");
            assert_eq!(got.body, direct.body);
        } else {
            // `warning -- AccessError\n\n<message>`, and an empty faultString, as Odoo's
            // `xmlrpc_handle_exception_string` writes it.
            assert!(
                code.as_str()
                    .unwrap()
                    .starts_with("warning -- AccessError\n\n"),
                "{code}"
            );
            assert_eq!(string, "");
        }
    }
}
