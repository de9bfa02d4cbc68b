//! The response cache (issue 4) end to end: real HTTP through BridgeCore to the fake Odoo,
//! generations in a real Redis where the test says so.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const TOP: &str = "auth:\n  jwt: {secret: \"an-hs256-test-secret-of-more-than-32-bytes\"}\n";

/// One `call_kw` on a cookie session: (`X-Cache`, body).
async fn call_kw(
    base: &str,
    sid: &str,
    model: &str,
    method: &str,
    args: Value,
    kwargs: Value,
    id: i64,
) -> (String, Value) {
    let r = post_as(
        format!("{base}/web/dataset/call_kw/{model}/{method}"),
        sid,
        &rpc(
            json!({"model": model, "method": method, "args": args, "kwargs": kwargs}),
            id,
        ),
    )
    .await;
    assert_eq!(r.status(), 200);
    let xc = r
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (xc, r.json().await.unwrap())
}

fn base(h: &Harness) -> String {
    format!("http://{}", h.bc.addr())
}

async fn partners(h: &Harness, sid: &str, ctx: Value, id: i64) -> (String, Value) {
    call_kw(
        &base(h),
        sid,
        "res.partner",
        "search_read",
        json!([[]]),
        json!({"fields": ["name", "email"], "context": ctx}),
        id,
    )
    .await
}

#[tokio::test]
async fn a_repeated_read_is_a_hit_restamped_with_the_callers_id() {
    let h = Harness::with(Dataset::demo(), "", TOP, Vec::new());
    let sid = h.odoo.new_session(2);
    let (x1, b1) = partners(&h, &sid, json!({"lang": "en_US"}), 1).await;
    let (x2, b2) = partners(&h, &sid, json!({"lang": "en_US"}), 77).await;
    assert_eq!((x1.as_str(), x2.as_str()), ("MISS", "HIT"));
    assert_eq!(b2["id"], 77);
    assert_eq!(b1["result"], b2["result"]);
    assert!(b2["result"].as_array().unwrap().len() > 3);
    assert_eq!(h.odoo.count_calls("res.partner", "search_read"), 1);
    // A write is BYPASS, and so is a read the allowlist does not know.
    let (xw, _) = call_kw(
        &base(&h),
        &sid,
        "res.partner",
        "onchange",
        json!([[], {}, [], {}]),
        json!({}),
        3,
    )
    .await;
    assert_eq!(xw, "BYPASS");
}

#[tokio::test]
async fn other_callers_and_contexts_miss() {
    let h = Harness::with(Dataset::demo(), "", TOP, Vec::new());
    let admin = h.odoo.new_session(2);
    let admin2 = h.odoo.new_session(2);
    let demo = h.odoo.new_session(6);
    let ctx = json!({"lang": "en_US", "allowed_company_ids": [1]});
    assert_eq!(partners(&h, &admin, ctx.clone(), 1).await.0, "MISS");
    assert_eq!(partners(&h, &admin, ctx.clone(), 2).await.0, "HIT");
    // Another session (even of the same user), another user, another lang, other companies.
    assert_eq!(partners(&h, &admin2, ctx.clone(), 3).await.0, "MISS");
    assert_eq!(partners(&h, &demo, ctx.clone(), 4).await.0, "MISS");
    for other in [
        json!({"lang": "fr_FR", "allowed_company_ids": [1]}),
        json!({"lang": "en_US", "allowed_company_ids": [1, 2]}),
        json!({"lang": "en_US", "allowed_company_ids": [1], "active_test": false}),
    ] {
        assert_eq!(
            partners(&h, &admin, other.clone(), 5).await.0,
            "MISS",
            "{other}"
        );
    }
    // Key order inside the context does not matter.
    assert_eq!(
        partners(
            &h,
            &admin,
            json!({"allowed_company_ids": [1], "lang": "en_US"}),
            6
        )
        .await
        .0,
        "HIT"
    );
}

async fn jsonrpc_read(h: &Harness, uid: i64, password: &str, id: i64) -> (String, Value) {
    let kwargs = json!({"fields": ["name"], "limit": 5});
    execute_kw_read(h, uid, password, "res.partner", kwargs, id).await
}

/// `search_read` of `model` through `/jsonrpc` as `uid` with `password`: `X-Cache` and the body.
async fn execute_kw_read(
    h: &Harness,
    uid: i64,
    password: &str,
    model: &str,
    kwargs: Value,
    id: i64,
) -> (String, Value) {
    let r = client()
        .post(h.url("/jsonrpc"))
        .json(&rpc(
            json!({"service": "object", "method": "execute_kw", "args": ["odoo", uid, password, model, "search_read", [[]], kwargs]}),
            id,
        ))
        .send()
        .await
        .unwrap();
    let xc = r
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (xc, r.json().await.unwrap())
}

#[tokio::test]
async fn a_wrong_password_is_never_served_from_the_cache() {
    let h = Harness::with(Dataset::demo(), "", TOP, Vec::new());
    assert_eq!(jsonrpc_read(&h, 2, "admin", 1).await.0, "MISS");
    let (x, b) = jsonrpc_read(&h, 2, "admin", 2).await;
    assert_eq!(x, "HIT");
    assert_eq!(b["id"], 2);
    let (x, b) = jsonrpc_read(&h, 2, "wrong", 3).await;
    assert_eq!(x, "MISS");
    assert!(b.get("error").is_some(), "{b}");
    assert!(b.get("result").is_none());
    // The error was not stored either.
    let (x, b) = jsonrpc_read(&h, 2, "wrong", 4).await;
    assert_eq!(x, "MISS");
    assert!(b.get("error").is_some());
    assert_eq!(h.odoo.count_calls("res.partner", "search_read"), 3);
}

const SHARED: &str = "cache:\n  models:\n    res.country: {shared: true}\n";

async fn countries(h: &Harness, sid: &str, id: i64) -> (String, Value) {
    call_kw(
        &base(h),
        sid,
        "res.country",
        "search_read",
        json!([[]]),
        json!({"fields": ["name"]}),
        id,
    )
    .await
}

/// `res.country` through `/jsonrpc` as uid 2 with `password`.
async fn countries_as(h: &Harness, password: &str, id: i64) -> (String, Value) {
    execute_kw_read(
        h,
        2,
        password,
        "res.country",
        json!({"fields": ["name"]}),
        id,
    )
    .await
}

#[tokio::test]
async fn a_shared_model_is_shared_between_users_odoo_answered() {
    let h = Harness::with(Dataset::demo(), "", &format!("{TOP}{SHARED}"), Vec::new());
    let (a, b) = (h.odoo.new_session(2), h.odoo.new_session(6));
    assert_eq!(countries(&h, &a, 1).await.0, "MISS");
    assert_eq!(countries(&h, &a, 2).await.0, "HIT");
    // Another user's first read goes to Odoo, which vouches for the session; from then on it
    // shares the entry, which that read refreshed.
    assert_eq!(countries(&h, &b, 3).await.0, "MISS");
    let (x, body) = countries(&h, &b, 4).await;
    assert_eq!(x, "HIT");
    assert_eq!(body["id"], 4);
    assert_eq!(countries(&h, &a, 5).await.0, "HIT");
    assert_eq!(h.odoo.count_calls("res.country", "search_read"), 2);
    // Not shared: partners stay per caller.
    assert_eq!(partners(&h, &a, json!({}), 6).await.0, "MISS");
    assert_eq!(partners(&h, &b, json!({}), 7).await.0, "MISS");
}

#[tokio::test]
async fn a_shared_model_is_never_served_to_a_caller_odoo_would_refuse() {
    let h = Harness::with(Dataset::demo(), "", &format!("{TOP}{SHARED}"), Vec::new());
    let a = h.odoo.new_session(2);
    assert_eq!(countries(&h, &a, 1).await.0, "MISS");
    assert_eq!(countries(&h, &a, 2).await.0, "HIT");
    // A session id Odoo never issued, twice: Odoo refuses it both times.
    for id in [3, 4] {
        let (x, b) = countries(&h, "0123456789abcdef0123456789abcdef01234567", id).await;
        assert_eq!(x, "MISS", "{b}");
        assert!(b.get("result").is_none(), "{b}");
        assert!(b.get("error").is_some(), "{b}");
    }
    // A wrong password on /jsonrpc, twice; then the right one is vouched for and shares.
    for id in [5, 6] {
        let (x, b) = countries_as(&h, "wrong", id).await;
        assert_eq!(x, "MISS", "{b}");
        assert!(b.get("error").is_some(), "{b}");
    }
    assert_eq!(countries_as(&h, "admin", 7).await.0, "MISS");
    assert_eq!(countries_as(&h, "admin", 8).await.0, "HIT");
    // A session that logged out is not served the shared entry any more.
    let r = post_as(h.url("/web/session/destroy"), &a, &rpc(json!({}), 9)).await;
    assert_eq!(r.status(), 200);
    let (x, b) = countries(&h, &a, 10).await;
    assert_eq!(x, "MISS", "{b}");
    assert!(b.get("error").is_some(), "{b}");
    // The entry itself is still there for the callers Odoo answered.
    assert_eq!(countries_as(&h, "admin", 11).await.0, "HIT");
    assert_eq!(h.odoo.count_calls("res.country", "search_read"), 7);
}

#[tokio::test]
async fn a_write_makes_the_next_read_fresh() {
    let h = Harness::with(Dataset::demo(), "", TOP, Vec::new());
    let sid = h.odoo.new_session(2);
    let read = || async {
        call_kw(
            &base(&h),
            &sid,
            "res.partner",
            "read",
            json!([[3]]),
            json!({"fields": ["name"]}),
            1,
        )
        .await
    };
    assert_eq!(read().await.0, "MISS");
    assert_eq!(read().await.0, "HIT");
    let (x, b) = call_kw(
        &base(&h),
        &sid,
        "res.partner",
        "write",
        json!([[3], {"name": "Renamed Through BridgeCore"}]),
        json!({}),
        2,
    )
    .await;
    assert_eq!(x, "BYPASS");
    assert_eq!(b["result"], true);
    let (x, b) = read().await;
    assert_eq!(x, "MISS");
    assert_eq!(b["result"][0]["name"], "Renamed Through BridgeCore");
    // A failed write invalidates too: Odoo may have committed part of it.
    assert_eq!(read().await.0, "HIT");
    let (_, b) = call_kw(
        &base(&h),
        &sid,
        "res.partner",
        "write",
        json!([[3], {"no_such_field": 1}]),
        json!({}),
        3,
    )
    .await;
    assert!(b.get("error").is_some(), "{b}");
    assert_eq!(read().await.0, "MISS");
}

/// Two instances serving `tenant` in front of `odoo`, sharing Redis for entries and
/// generations; `cache_extra` goes on under their `cache:` section.
fn two_sharing_redis(
    odoo: &FakeOdoo,
    tenant: &str,
    cache_extra: &str,
) -> (bridgecore::Running, bridgecore::Running) {
    let redis = format!("redis:\n  url: \"redis://127.0.0.1:6379/0\"\ncache:\n  backend: redis\n  key_secret: \"a-shared-cache-key-secret-for-tests\"\n{cache_extra}");
    let start = || {
        let (text, _, _) = yaml(
            &[TenantSpec::for_odoo(tenant, &["erp.example.com"], odoo)],
            &format!("{TOP}{redis}"),
        );
        start_yaml(&text, Vec::new())
    };
    (start(), start())
}

/// Unique per run, for a context key: entries of earlier runs in the shared Redis must not
/// answer.
fn run_tag() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .to_string()
}

#[tokio::test]
async fn a_logout_through_one_instance_ends_shared_entries_for_that_session_on_another() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let tenant = format!("s{}", std::process::id());
    let (a, b) = two_sharing_redis(
        &odoo,
        &tenant,
        "  models:\n    res.country: {shared: true}\n",
    );
    let (ua, ub) = (
        format!("http://{}", a.addr()),
        format!("http://{}", b.addr()),
    );
    let tag = run_tag();
    let read = |u: &str, sid: &str, id| {
        let (u, sid, tag) = (u.to_owned(), sid.to_owned(), tag.clone());
        async move {
            call_kw(
                &u,
                &sid,
                "res.country",
                "search_read",
                json!([[]]),
                json!({"fields": ["name"], "context": {"run": tag}}),
                id,
            )
            .await
        }
    };
    let (s1, s2) = (odoo.new_session(2), odoo.new_session(6));
    assert_eq!(read(&ua, &s1, 1).await.0, "MISS");
    assert_eq!(read(&ub, &s1, 2).await.0, "MISS"); // B has not seen Odoo answer s1 yet
    assert_eq!(read(&ub, &s1, 3).await.0, "HIT");
    assert_eq!(read(&ub, &s2, 4).await.0, "MISS");
    let r = post_as(format!("{ua}/web/session/destroy"), &s1, &rpc(json!({}), 5)).await;
    assert_eq!(r.status(), 200);
    // B vouched for s1 a moment ago, but the logout moved s1's counter in Redis.
    let (x, body) = read(&ub, &s1, 6).await;
    assert_eq!(x, "MISS", "{body}");
    assert!(body.get("error").is_some(), "{body}");
    assert_eq!(read(&ub, &s2, 7).await.0, "HIT");
}

#[tokio::test]
async fn writes_through_one_instance_invalidate_another_sharing_redis() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let (a, b) = two_sharing_redis(&odoo, &format!("t{}", std::process::id()), "");
    let (ua, ub) = (
        format!("http://{}", a.addr()),
        format!("http://{}", b.addr()),
    );
    let sid = odoo.new_session(2);
    let tag = run_tag();
    let read = |u: String| {
        let sid = sid.clone();
        let tag = tag.clone();
        async move {
            call_kw(
                &u,
                &sid,
                "res.partner",
                "read",
                json!([[7]]),
                json!({"fields": ["name"], "context": {"run": tag}}),
                1,
            )
            .await
        }
    };
    assert_eq!(read(ua.clone()).await.0, "MISS");
    // The entry is written to Redis once the answer is sent, before A's memory store counts it.
    metric_appears(
        &a,
        &format!(
            "bridgecore_cache_entries{{tenant=\"t{}\"}} 1",
            std::process::id()
        ),
    )
    .await;
    // The other instance finds the entry in Redis.
    assert_eq!(read(ub.clone()).await.0, "HIT");
    let (_, w) = call_kw(
        &ua,
        &sid,
        "res.partner",
        "write",
        json!([[7], {"name": "Written On A"}]),
        json!({}),
        2,
    )
    .await;
    assert_eq!(w["result"], true);
    let (x, b) = read(ub.clone()).await;
    assert_eq!(x, "MISS", "instance B serves A's write at once");
    assert_eq!(b["result"][0]["name"], "Written On A");
}

fn graph_tenant() -> &'static str {
    "service_login: admin\nservice_password: admin\n"
}

async fn wait_for_graph(h: &Harness) {
    for _ in 0..300 {
        let s: Value = client()
            .get(h.admin("/api/v1/systems/odoo/cache/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if s["graph_models"].as_u64().is_some_and(|n| n > 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the dependency graph was not learned");
}

async fn order_total(h: &Harness, sid: &str) -> (String, Value) {
    call_kw(
        &base(h),
        sid,
        "sale.order",
        "read",
        json!([[1]]),
        json!({"fields": ["amount_total"]}),
        1,
    )
    .await
}

async fn line_of_order(h: &Harness, sid: &str) -> i64 {
    let (_, b) = call_kw(
        &base(h),
        sid,
        "sale.order.line",
        "search",
        json!([[["order_id", "=", 1]]]),
        json!({"limit": 1}),
        9,
    )
    .await;
    b["result"][0].as_i64().unwrap()
}

async fn write_line(h: &Harness, sid: &str, line: i64, qty: f64) {
    let (_, b) = call_kw(
        &base(h),
        sid,
        "sale.order.line",
        "write",
        json!([[line], {"product_uom_qty": qty}]),
        json!({}),
        2,
    )
    .await;
    assert_eq!(b["result"], true, "{b}");
}

#[tokio::test]
async fn graph_invalidation_follows_computed_fields_model_scope_does_not() {
    let h = Harness::with(Dataset::demo(), graph_tenant(), TOP, Vec::new());
    wait_for_graph(&h).await;
    let sid = h.odoo.new_session(2);
    let line = line_of_order(&h, &sid).await;
    let (_, before) = order_total(&h, &sid).await;
    assert_eq!(order_total(&h, &sid).await.0, "HIT");
    write_line(&h, &sid, line, 17.0).await;
    let (x, after) = order_total(&h, &sid).await;
    assert_eq!(x, "MISS", "the order's total depends on its lines");
    assert_ne!(before["result"], after["result"]);

    // `model` scope: the original backend's behaviour serves the stale total.
    let cache = "cache:\n  invalidation: model\n";
    let h = Harness::with(
        Dataset::demo(),
        graph_tenant(),
        &format!("{TOP}{cache}"),
        Vec::new(),
    );
    let sid = h.odoo.new_session(2);
    let line = line_of_order(&h, &sid).await;
    order_total(&h, &sid).await;
    write_line(&h, &sid, line, 17.0).await;
    assert_eq!(order_total(&h, &sid).await.0, "HIT");
}

#[tokio::test]
async fn security_writes_and_unknown_methods_flush_the_tenant() {
    let h = Harness::with(Dataset::demo(), graph_tenant(), TOP, Vec::new());
    wait_for_graph(&h).await;
    let sid = h.odoo.new_session(2);
    let warm = || async { partners(&h, &sid, json!({}), 1).await.0 };
    warm().await;
    assert_eq!(warm().await, "HIT");
    // A groups change may change what anybody sees.
    call_kw(
        &base(&h),
        &sid,
        "res.groups",
        "write",
        json!([[1], {"name": "x"}]),
        json!({}),
        2,
    )
    .await;
    assert_eq!(warm().await, "MISS");
    assert_eq!(warm().await, "HIT");
    // A business method on an unrelated model: anything may have changed.
    call_kw(
        &base(&h),
        &sid,
        "sale.order",
        "action_confirm",
        json!([[1]]),
        json!({}),
        3,
    )
    .await;
    assert_eq!(warm().await, "MISS");
    assert_eq!(warm().await, "HIT");
    // A plain write on an unrelated model under the graph: partners stay cached.
    let line = line_of_order(&h, &sid).await;
    write_line(&h, &sid, line, 3.0).await;
    assert_eq!(warm().await, "HIT");
}

#[tokio::test]
async fn a_read_overtaken_by_a_write_is_not_stored() {
    let h = Harness::with(Dataset::demo(), "", TOP, Vec::new());
    let sid = h.odoo.new_session(2);
    h.odoo
        .set_method_delay("search_read", Duration::from_millis(400));
    let slow = {
        let base = base(&h);
        let sid = sid.clone();
        tokio::spawn(async move {
            call_kw(
                &base,
                &sid,
                "res.partner",
                "search_read",
                json!([[["id", "=", 8]]]),
                json!({"fields": ["name"]}),
                1,
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    call_kw(
        &base(&h),
        &sid,
        "res.partner",
        "write",
        json!([[8], {"name": "Changed Mid-Read"}]),
        json!({}),
        2,
    )
    .await;
    let (x, _) = slow.await.unwrap();
    assert_eq!(x, "MISS");
    h.odoo.set_method_delay("search_read", Duration::ZERO);
    let (x, b) = call_kw(
        &base(&h),
        &sid,
        "res.partner",
        "search_read",
        json!([[["id", "=", 8]]]),
        json!({"fields": ["name"]}),
        3,
    )
    .await;
    assert_eq!(x, "MISS", "the overtaken answer was not stored: {b}");
    assert_eq!(b["result"][0]["name"], "Changed Mid-Read");
}

#[tokio::test]
async fn answers_that_set_cookies_are_not_stored() {
    let h = Harness::with(Dataset::demo(), "", TOP, Vec::new());
    let sid = h.odoo.new_session(2);
    h.odoo.set_rpc_cookie(true);
    assert_eq!(partners(&h, &sid, json!({}), 1).await.0, "MISS");
    assert_eq!(partners(&h, &sid, json!({}), 2).await.0, "MISS");
    h.odoo.set_rpc_cookie(false);
    assert_eq!(partners(&h, &sid, json!({}), 3).await.0, "MISS");
    assert_eq!(partners(&h, &sid, json!({}), 4).await.0, "HIT");
}

#[tokio::test]
async fn fifty_concurrent_identical_misses_make_one_upstream_call() {
    let h = Harness::with(Dataset::demo(), "", TOP, Vec::new());
    let sid = h.odoo.new_session(2);
    h.odoo.set_delay(Duration::from_millis(300));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let base = base(&h);
        let sid = sid.clone();
        tasks.push(tokio::spawn(async move {
            call_kw(
                &base,
                &sid,
                "res.partner",
                "search_read",
                json!([[]]),
                json!({"fields": ["name"]}),
                i,
            )
            .await
        }));
    }
    let mut statuses = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let (x, b) = t.await.unwrap();
        assert_eq!(b["id"], i as i64);
        assert!(b["result"].is_array());
        statuses.push(x);
    }
    assert_eq!(h.odoo.count_calls("res.partner", "search_read"), 1);
    assert_eq!(statuses.iter().filter(|s| *s == "MISS").count(), 1);
}

#[tokio::test]
async fn stale_if_error_serves_the_last_good_answer_while_odoo_is_down() {
    let cache = "cache:\n  stale_if_error: 60s\n  ttl: {search_read: 1s}\n";
    let odoo = FakeOdoo::start(Dataset::demo());
    let (text, _, _) = yaml(
        &[TenantSpec::for_odoo("odoo", &["erp.example.com"], &odoo)],
        &format!("{TOP}{cache}"),
    );
    let bc = start_yaml(&text, Vec::new());
    let u = format!("http://{}", bc.addr());
    let sid = odoo.new_session(2);
    let read = |id| {
        let (u, sid) = (u.clone(), sid.clone());
        async move {
            call_kw(
                &u,
                &sid,
                "res.partner",
                "search_read",
                json!([[]]),
                json!({"fields": ["name"]}),
                id,
            )
            .await
        }
    };
    let (_, fresh) = read(1).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    odoo.stop();
    let (x, b) = read(9).await;
    assert_eq!(x, "STALE");
    assert_eq!(b["id"], 9);
    assert_eq!(b["result"], fresh["result"]);
}

#[tokio::test]
async fn stale_answers_are_off_by_default() {
    let cache = "cache:\n  ttl: {search_read: 1s}\n";
    let odoo = FakeOdoo::start(Dataset::demo());
    let (text, _, _) = yaml(
        &[TenantSpec::for_odoo("odoo", &["erp.example.com"], &odoo)],
        &format!("{TOP}{cache}"),
    );
    let bc = start_yaml(&text, Vec::new());
    let sid = odoo.new_session(2);
    let body = rpc(
        json!({"model": "res.partner", "method": "search_read", "args": [[]], "kwargs": {}}),
        1,
    );
    let send = || {
        client()
            .post(format!("http://{}/web/dataset/call_kw", bc.addr()))
            .header("cookie", format!("session_id={sid}"))
            .json(&body)
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    odoo.stop();
    assert_eq!(send().await.unwrap().status(), 502);
}

#[tokio::test]
async fn stats_and_clear_on_both_listeners() {
    let h = Harness::with(Dataset::demo(), "", TOP, Vec::new());
    let sid = h.odoo.new_session(2);
    partners(&h, &sid, json!({}), 1).await;
    partners(&h, &sid, json!({}), 2).await;
    partners(&h, &sid, json!({}), 3).await;
    let stats = |url: String| async move {
        let r = client().get(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()
    };
    // Answers are counted once sent: wait for the third one's count.
    let mut s = Value::Null;
    for _ in 0..200 {
        s = stats(h.admin("/api/v1/systems/odoo/cache/stats")).await;
        if s["hits"] == 2 && s["misses"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(s["hits"], 2, "{s}");
    assert_eq!(s["misses"], 1);
    assert!((s["hit_ratio"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(s["entries"], 1);
    assert!(s["bytes"].as_u64().unwrap() > 100);
    assert_eq!(s["top_models"][0]["model"], "res.partner");
    assert_eq!(s["top_models"][0]["hits"], 2);
    // The main listener wants an admin token.
    let r = client()
        .get(h.url("/api/v1/systems/odoo/cache/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let token = api_token(&h, "admin", "admin").await;
    let r = client()
        .get(h.url("/api/v1/systems/odoo/cache/stats"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let demo = api_token(&h, "demo", "demo").await;
    let r = client()
        .delete(h.url("/api/v1/systems/odoo/cache/clear"))
        .bearer_auth(&demo)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Clearing another model keeps partners; clearing partners ends them.
    let r = client()
        .delete(h.url("/api/v1/systems/odoo/cache/clear?model=res.country"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(partners(&h, &sid, json!({}), 4).await.0, "HIT");
    let r = client()
        .delete(h.admin("/api/v1/systems/odoo/cache/clear?model=res.partner"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(partners(&h, &sid, json!({}), 5).await.0, "MISS");
    let r = client()
        .delete(h.admin("/api/v1/systems/odoo/cache/clear"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(partners(&h, &sid, json!({}), 6).await.0, "MISS");
    let r = client()
        .delete(h.admin("/api/v1/systems/odoo/cache/clear?model=bad%20name"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let s = stats(h.admin("/api/v1/systems/odoo/cache/stats")).await;
    assert!(s["invalidations"].as_u64().unwrap() >= 3);
    metric_appears(
        &h.bc,
        "bridgecore_cache_requests_total{result=\"hit\",tenant=\"odoo\"}",
    )
    .await;
}

#[tokio::test]
async fn the_api_says_cached_and_shares_nothing_across_users() {
    let h = Harness::with(Dataset::demo(), "", TOP, Vec::new());
    let admin = api_token(&h, "admin", "admin").await;
    let demo = api_token(&h, "demo", "demo").await;
    let call = |token: String| {
        let url = h.url("/api/v1/systems/odoo/odoo/search_read");
        async move {
            let r = client()
                .post(url)
                .bearer_auth(token)
                .json(&json!({"model": "sale.order", "domain": [], "fields": ["name"]}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let a1 = call(admin.clone()).await;
    let a2 = call(admin.clone()).await;
    assert_eq!(
        (a1["cached"].clone(), a2["cached"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(a1["result"], a2["result"]);
    let d = call(demo.clone()).await;
    assert_eq!(d["cached"], false);
    // The record rule leaves demo fewer orders: nothing of admin's answer leaked.
    assert!(d["result"].as_array().unwrap().len() < a1["result"].as_array().unwrap().len());
    // A write through the API invalidates.
    let r = client()
        .post(h.url("/api/v1/systems/odoo/odoo/write"))
        .bearer_auth(&admin)
        .json(&json!({"model": "sale.order", "ids": [1], "values": {"note": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(call(admin.clone()).await["cached"], false);
}

#[tokio::test]
async fn logout_and_debug_end_a_sessions_entries() {
    let h = Harness::with(Dataset::demo(), "", TOP, Vec::new());
    let sid = h.odoo.new_session(2);
    partners(&h, &sid, json!({}), 1).await;
    assert_eq!(partners(&h, &sid, json!({}), 2).await.0, "HIT");
    // `?debug=1` on a page load switches the session's debug mode.
    client()
        .get(h.url("/odoo?debug=1"))
        .header("cookie", format!("session_id={sid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(partners(&h, &sid, json!({}), 3).await.0, "MISS");
    assert_eq!(partners(&h, &sid, json!({}), 4).await.0, "HIT");
    // Another session's entries stay.
    let other = h.odoo.new_session(2);
    partners(&h, &other, json!({}), 5).await;
    let r = post_as(h.url("/web/session/destroy"), &sid, &rpc(json!({}), 6)).await;
    assert_eq!(r.status(), 200);
    // The destroyed session's entry is gone as soon as the logout is answered: its reads go to
    // Odoo, which refuses them.
    let (x, b) = partners(&h, &sid, json!({}), 7).await;
    assert_eq!(x, "MISS", "{b}");
    assert!(b.get("result").is_none(), "{b}");
    assert!(b.get("error").is_some(), "{b}");
    assert_eq!(partners(&h, &other, json!({}), 8).await.0, "HIT");
}

#[tokio::test]
async fn a_read_stored_while_odoo_switches_debug_mode_does_not_outlive_the_switch() {
    let h = Harness::with(Dataset::demo(), "", TOP, Vec::new());
    let sid = h.odoo.new_session(2);
    partners(&h, &sid, json!({}), 1).await;
    assert_eq!(partners(&h, &sid, json!({}), 2).await.0, "HIT");
    // Odoo takes a while to answer the page load that switches the session's debug mode.
    h.odoo.set_path_delay("/odoo", Duration::from_millis(600));
    let page = {
        let (url, sid) = (h.url("/odoo?debug=1"), sid.clone());
        tokio::spawn(async move {
            client()
                .get(url)
                .header("cookie", format!("session_id={sid}"))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Another tab reads meanwhile: the entry from before the switch is gone, and the new one
    // is made while Odoo may still answer in the old mode.
    assert_eq!(partners(&h, &sid, json!({}), 3).await.0, "MISS");
    assert_eq!(partners(&h, &sid, json!({}), 4).await.0, "HIT");
    assert!(page.await.unwrap().as_u16() < 500);
    // Once the switch is answered, nothing stored during it is served.
    assert_eq!(partners(&h, &sid, json!({}), 5).await.0, "MISS");
    assert_eq!(partners(&h, &sid, json!({}), 6).await.0, "HIT");
}

#[tokio::test]
async fn a_write_too_big_to_parse_still_flushes_the_tenant() {
    let h = Harness::with(Dataset::demo(), graph_tenant(), TOP, Vec::new());
    wait_for_graph(&h).await;
    let sid = h.odoo.new_session(2);
    let read = || async {
        call_kw(
            &base(&h),
            &sid,
            "res.partner",
            "read",
            json!([[3]]),
            json!({"fields": ["name"]}),
            1,
        )
        .await
    };
    assert_eq!(read().await.0, "MISS");
    assert_eq!(read().await.0, "HIT");
    // A large image: the body (past the 8 MiB parse cap) streams to Odoo unparsed, so
    // BridgeCore cannot tell its model: it counts as an unknown write.
    let image = "iVBORw0KGgo".repeat(900 * 1024);
    assert!(image.len() > 9 * 1024 * 1024);
    let (x, b) = call_kw(
        &base(&h),
        &sid,
        "res.partner",
        "write",
        json!([[3], {"name": "Written With A Large Image", "image_1920": image}]),
        json!({}),
        2,
    )
    .await;
    assert_eq!(b["result"], true, "{}", b.get("error").unwrap_or(&b));
    assert_eq!(x, "BYPASS");
    let (x, b) = read().await;
    assert_eq!(x, "MISS");
    assert_eq!(b["result"][0]["name"], "Written With A Large Image");
    metric_appears(
        &h.bc,
        "bridgecore_cache_unknown_writes_total{route=\"/web/dataset\",tenant=\"odoo\"} 1",
    )
    .await;
}

#[tokio::test]
async fn bridgecores_own_json_rpc_answers_say_bypass() {
    let h = Harness::with(Dataset::demo(), "", TOP, Vec::new());
    let sid = h.odoo.new_session(2);
    // A malformed JSON-RPC body: BridgeCore's 400.
    let r = client()
        .post(h.url("/web/dataset/call_kw"))
        .header("cookie", format!("session_id={sid}"))
        .header("content-type", "application/json")
        .body("{\"jsonrpc\": \"2.0\", \"params\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-cache"], "BYPASS");
    assert!(r.json::<Value>().await.unwrap()["error"].is_object());
    // A dead upstream: BridgeCore's 502, for a cacheable read.
    let odoo = FakeOdoo::start(Dataset::demo());
    let (text, _, _) = yaml(
        &[TenantSpec::for_odoo("odoo", &["erp.example.com"], &odoo)],
        TOP,
    );
    odoo.stop();
    let bc = start_yaml(&text, Vec::new());
    let r = post_as(
        format!("http://{}/web/dataset/call_kw", bc.addr()),
        &sid,
        &rpc(
            json!({"model": "res.partner", "method": "search_read", "args": [[]], "kwargs": {}}),
            3,
        ),
    )
    .await;
    assert_eq!(r.status(), 502);
    assert_eq!(r.headers()["x-cache"], "BYPASS");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["id"], 3);
    assert!(b["error"].is_object(), "{b}");
    // Counted as the header says: a bypass, not a miss (the lookup missed, but no answer of
    // Odoo's came to be stored).
    metric_appears(
        &bc,
        "bridgecore_cache_requests_total{result=\"bypass\",tenant=\"odoo\"} 1",
    )
    .await;
    let text = String::from_utf8(bc.handle().metrics()).unwrap();
    assert!(!text.contains("result=\"miss\""), "{text}");
}

#[tokio::test]
async fn a_write_that_times_out_flushes_before_its_504() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::with(Dataset::demo(), "timeout: 500ms\n", TOP, Vec::new());
    let sid = h.odoo.new_session(2);
    assert_eq!(partners(&h, &sid, json!({}), 1).await.0, "MISS");
    assert_eq!(partners(&h, &sid, json!({}), 2).await.0, "HIT");
    // A write whose upload stalls (a large note, its last byte never sent): Odoo never answers,
    // and BridgeCore gives up after the tenant's timeout while the client is still sending.
    let body = serde_json::to_vec(&rpc(
        json!({"model": "res.partner", "method": "write", "args": [[3], {"comment": "x".repeat(100 * 1024)}], "kwargs": {}}),
        3,
    ))
    .unwrap();
    let mut conn = tokio::net::TcpStream::connect(h.bc.addr()).await.unwrap();
    let head = format!(
        "POST /web/dataset/call_kw HTTP/1.1\r\nHost: erp.example.com\r\nCookie: session_id={sid}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body[..body.len() - 1]).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
            .await
            .expect("an answer within the timeout")
            .unwrap();
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(answer.starts_with("HTTP/1.1 504"), "{answer}");
    // The client re-reads at once (its upload still open): the cached read is gone.
    let (x, b) = partners(&h, &sid, json!({}), 4).await;
    assert_eq!(x, "MISS", "{b}");
    drop(conn);
}

#[tokio::test]
async fn gzip_brotli_and_zstd_hits_are_precompressed_and_restamped() {
    let h = Harness::with(Dataset::demo(), "", TOP, Vec::new());
    let sid = h.odoo.new_session(2);
    let (_, plain) = partners(&h, &sid, json!({}), 1).await;
    for (coding, id) in [("gzip", 11), ("br", 12), ("zstd", 13)] {
        let r = client()
            .post(h.url("/web/dataset/call_kw"))
            .header("cookie", format!("session_id={sid}"))
            .header("accept-encoding", coding)
            .json(&rpc(
                json!({"model": "res.partner", "method": "search_read", "args": [[]], "kwargs": {"fields": ["name", "email"], "context": {}}}),
                id,
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-cache"], "HIT");
        assert_eq!(r.headers()["content-encoding"], coding);
        let raw = r.bytes().await.unwrap();
        let decoded = decode(coding, &raw);
        let b: Value = serde_json::from_slice(&decoded).unwrap();
        assert_eq!(b["id"], id);
        assert_eq!(b["result"], plain["result"]);
    }
}

#[tokio::test]
async fn the_memory_store_stays_within_max_memory_under_churn() {
    let cache = "cache:\n  max_memory: 64KiB\n";
    let h = Harness::with(Dataset::demo(), "", &format!("{TOP}{cache}"), Vec::new());
    let sid = h.odoo.new_session(2);
    for i in 0..120 {
        partners(&h, &sid, json!({"churn": i}), i).await;
    }
    let s: Value = client()
        .get(h.admin("/api/v1/systems/odoo/cache/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(s["bytes"].as_u64().unwrap() <= 64 * 1024, "{s}");
    assert!(s["evictions"].as_u64().unwrap() > 0, "{s}");
}

#[tokio::test]
async fn redis_stopping_mid_run_means_bypass_not_errors() {
    let mut own = OwnRedis::start();
    let cache = format!(
        "redis:\n  url: \"redis://127.0.0.1:{}/0\"\ncache:\n  backend: redis\n  key_secret: \"a-shared-cache-key-secret-for-tests\"\n",
        own.port
    );
    let h = Harness::with(Dataset::demo(), "", &format!("{TOP}{cache}"), Vec::new());
    let sid = h.odoo.new_session(2);
    assert_eq!(partners(&h, &sid, json!({}), 1).await.0, "MISS");
    assert_eq!(partners(&h, &sid, json!({}), 2).await.0, "HIT");
    own.stop();
    for i in 3..8 {
        let (x, b) = partners(&h, &sid, json!({}), i).await;
        assert_eq!(x, "BYPASS");
        assert!(b["result"].is_array());
    }
    // Writes still go through (their bump is remembered for when Redis is back).
    let (_, w) = call_kw(
        &base(&h),
        &sid,
        "res.partner",
        "write",
        json!([[3], {"name": "While Redis Was Down"}]),
        json!({}),
        9,
    )
    .await;
    assert_eq!(w["result"], true);
}

#[tokio::test]
async fn huge_and_deep_arguments_are_answered_not_crashed_on() {
    let h = Harness::with(Dataset::demo(), "", TOP, Vec::new());
    let sid = h.odoo.new_session(2);
    let nest = |depth: usize| {
        let mut deep = json!(1);
        for _ in 0..depth {
            deep = json!([deep]);
        }
        deep
    };
    // Odd but acceptable: keyed and cached like any other context.
    let odd = json!({"odd": nest(40), "n": 1e300, "s": "\u{1F600}", "nil": null, "o": {"b": 1, "a": [2, {"z": 1, "y": 2}]}});
    assert_eq!(partners(&h, &sid, odd.clone(), 1).await.0, "MISS");
    assert_eq!(partners(&h, &sid, odd, 2).await.0, "HIT");
    // Too deep to parse: a JSON-RPC error, not a crash.
    let deep = rpc(
        json!({"model": "res.partner", "method": "search_read", "args": [[]], "kwargs": {"context": {"deep": nest(500)}}}),
        3,
    );
    let r = post_as(h.url("/web/dataset/call_kw"), &sid, &deep).await;
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert!(b["error"]["message"].is_string(), "{b}");
    let odd_context = rpc(
        json!({"model": "res.partner", "method": "search_read", "args": [[]], "kwargs": {"context": "not an object"}}),
        2,
    );
    let r = post_as(h.url("/web/dataset/call_kw"), &sid, &odd_context).await;
    assert!(r.status().as_u16() < 500);
}

#[tokio::test]
async fn json2_reads_are_cached_per_api_key() {
    let mut data = Dataset::demo();
    data.json2 = true;
    let h = Harness::with(data, "", TOP, Vec::new());
    let call = |key: &'static str| {
        let url = h.url("/json/2/res.partner/search_read");
        async move {
            let r = client()
                .post(url)
                .header("authorization", format!("bearer {key}"))
                .header("x-odoo-database", "odoo")
                .json(
                    &json!({"domain": [["is_company", "=", true]], "fields": ["name"], "limit": 2}),
                )
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let xc = r.headers()["x-cache"].to_str().unwrap().to_owned();
            (status, xc, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s1, x1, b1) = call("admin-api-key").await;
    let (s2, x2, b2) = call("admin-api-key").await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!((x1.as_str(), x2.as_str()), ("MISS", "HIT"));
    // No envelope on /json/2: the hit is the bare result, byte for byte what Odoo sent.
    assert_eq!(b1, b2);
    assert_eq!(b2.as_array().unwrap().len(), 2);
    let (s, x, _) = call("wrong-key").await;
    assert_eq!((s, x.as_str()), (401, "MISS"));
    let (s, _, _) = call("wrong-key").await;
    assert_eq!(
        s, 401,
        "a refusal is never stored, and never answered from another key's entry"
    );
}

#[tokio::test]
async fn a_redis_that_never_answers_means_bypass_quickly() {
    // Accepts connections and reads, never answers: every Redis command times out.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = mute.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in mute.incoming().flatten() {
            held.push(s);
        }
    });
    let cache =
        format!("redis:\n  url: \"redis://127.0.0.1:{port}/0\"\ncache:\n  backend: redis\n  key_secret: \"a-shared-cache-key-secret-for-tests\"\n");
    let h = Harness::with(Dataset::demo(), "", &format!("{TOP}{cache}"), Vec::new());
    let sid = h.odoo.new_session(2);
    let started = std::time::Instant::now();
    for i in 0..5 {
        let (x, b) = partners(&h, &sid, json!({}), i).await;
        assert_eq!(x, "BYPASS");
        assert!(b["result"].is_array());
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_unknown_post_route_flushes_the_tenant_and_is_counted() {
    let h = Harness::with(Dataset::demo(), graph_tenant(), TOP, Vec::new());
    wait_for_graph(&h).await;
    let sid = h.odoo.new_session(2);
    partners(&h, &sid, json!({}), 1).await;
    assert_eq!(partners(&h, &sid, json!({}), 2).await.0, "HIT");
    client()
        .post(h.url("/shop/cart/update"))
        .header("cookie", format!("session_id={sid}"))
        .form(&[("product_id", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(partners(&h, &sid, json!({}), 3).await.0, "MISS");
    metric_appears(
        &h.bc,
        "bridgecore_cache_unknown_writes_total{route=\"/shop/cart\",tenant=\"odoo\"} 1",
    )
    .await;
    // Reads the cache may not store never invalidate: onchange, get_session_info.
    partners(&h, &sid, json!({}), 4).await;
    call_kw(
        &base(&h),
        &sid,
        "res.partner",
        "onchange",
        json!([[], {}, [], {}]),
        json!({}),
        5,
    )
    .await;
    post_as(
        h.url("/web/session/get_session_info"),
        &sid,
        &rpc(json!({}), 6),
    )
    .await;
    assert_eq!(partners(&h, &sid, json!({}), 7).await.0, "HIT");
}

#[tokio::test]
async fn excluded_models_and_no_cache_requests_bypass() {
    let cache = "cache:\n  models:\n    res.partner: {enabled: false}\n";
    let h = Harness::with(Dataset::demo(), "", &format!("{TOP}{cache}"), Vec::new());
    let sid = h.odoo.new_session(2);
    assert_eq!(partners(&h, &sid, json!({}), 1).await.0, "BYPASS");
    assert_eq!(partners(&h, &sid, json!({}), 2).await.0, "BYPASS");
    let country = |id, no_cache: bool| {
        let (u, sid) = (h.url("/web/dataset/call_kw"), sid.clone());
        async move {
            let mut r = client()
                .post(u)
                .header("cookie", format!("session_id={sid}"));
            if no_cache {
                r = r.header("cache-control", "no-cache");
            }
            let r = r
                .json(&rpc(
                    json!({"model": "res.country", "method": "search_read", "args": [[]], "kwargs": {}}),
                    id,
                ))
                .send()
                .await
                .unwrap();
            r.headers()["x-cache"].to_str().unwrap().to_owned()
        }
    };
    assert_eq!(country(3, false).await, "MISS");
    assert_eq!(country(4, true).await, "BYPASS");
    assert_eq!(country(5, false).await, "HIT");
    assert_eq!(h.odoo.count_calls("res.country", "search_read"), 2);
}
