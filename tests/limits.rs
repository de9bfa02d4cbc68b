//! Issue 3 rate limits end to end: per-category budgets on Odoo routes and the API, exact counts
//! and recovery on a hand-driven clock, one budget across instances sharing Redis, local limits
//! when Redis goes away, and the per-account login budget.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bridgecore::filters::rate_limit::{Clock, ManualClock};
use common::*;
use serde_json::{json, Value};

const SEC: u64 = 1_000_000_000;

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_000 * SEC))
}

/// A tenant name no earlier run left budgets under in the shared Redis.
fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid_like())
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:x}", n, std::process::id())
}

fn redis_url() -> String {
    std::env::var("BRIDGECORE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

struct Setup {
    odoo: FakeOdoo,
    bc: bridgecore::Running,
}

fn start(name: &str, tenant_extra: &str, top: &str, clock: &Arc<ManualClock>) -> Setup {
    let odoo = FakeOdoo::start(Dataset::demo());
    start_on(odoo, name, tenant_extra, top, clock)
}

fn start_on(
    odoo: FakeOdoo,
    name: &str,
    tenant_extra: &str,
    top: &str,
    clock: &Arc<ManualClock>,
) -> Setup {
    let spec = TenantSpec::for_odoo(name, &["erp.example.com"], &odoo).extra(tenant_extra);
    let (text, _, _) = yaml(&[spec], top);
    let c: Arc<dyn Clock> = clock.clone();
    let bc = start_yaml_with_clock(&text, Vec::new(), Some(c));
    Setup { odoo, bc }
}

impl Setup {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.bc.addr(), path)
    }
}

fn call_kw(model: &str, method: &str, args: Value) -> Value {
    rpc(
        json!({"model": model, "method": method, "args": args, "kwargs": {}}),
        1,
    )
}

async fn send(
    url: &str,
    body: &Value,
    sid: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = client().post(url).json(body);
    if let Some(sid) = sid {
        r = r.header("cookie", format!("session_id={sid}"));
    }
    let resp = r.send().await.unwrap();
    let s = resp.status().as_u16();
    let h = resp.headers().clone();
    (s, h, resp.json().await.unwrap_or(Value::Null))
}

fn header(h: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    h.get(name).map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn each_category_is_refused_at_exactly_its_count_and_recovers_after_the_window() {
    let clock = clock();
    let s = start(
        "t",
        "rate_limits: {auth: 2/minute, read: 4/minute, write: 3/minute, delete: 2/minute}\n",
        "rate_limits: {auth: 100/second, read: 100/second, write: 100/second, delete: 100/second}\n",
        &clock,
    );
    let sid = s.odoo.new_session(2);
    let login = rpc(
        json!({"db": "odoo", "login": "admin", "password": "wrong"}),
        1,
    );
    let cases: Vec<(&str, u64, &str, Value)> = vec![
        (
            "read",
            4,
            "/web/dataset/call_kw",
            call_kw("res.partner", "search_read", json!([[]])),
        ),
        (
            "write",
            3,
            "/web/dataset/call_kw",
            call_kw(
                "res.partner",
                "write",
                json!([[1], {"name": "Azure Interior"}]),
            ),
        ),
        (
            "delete",
            2,
            "/web/dataset/call_kw",
            call_kw("res.partner", "unlink", json!([[999999]])),
        ),
        ("auth", 2, "/web/session/authenticate", login),
    ];
    for (category, count, path, body) in &cases {
        let sid = (*category != "auth").then_some(sid.as_str());
        for i in 0..*count {
            let (st, h, b) = send(&s.url(path), body, sid).await;
            assert_ne!(st, 429, "{category} call {i}: {b}");
            assert_eq!(
                header(&h, "x-ratelimit-limit").as_deref(),
                Some(count.to_string().as_str())
            );
            assert_eq!(
                header(&h, "x-ratelimit-remaining"),
                Some((count - 1 - i).to_string())
            );
        }
        let before = s.odoo.count();
        let (st, h, b) = send(&s.url(path), body, sid).await;
        assert_eq!(st, 429, "{category}: call {} must be refused", count + 1);
        assert_eq!(b["error"]["data"]["name"], "bridgecore.RateLimited");
        assert_eq!(b["id"], 1);
        let interval = 60 / count;
        assert_eq!(header(&h, "retry-after"), Some(interval.to_string()));
        assert_eq!(header(&h, "x-ratelimit-remaining").as_deref(), Some("0"));
        assert_eq!(
            s.odoo.count(),
            before,
            "{category}: a refused call never reaches Odoo"
        );
        // One interval later exactly one more call is allowed.
        clock.advance(Duration::from_secs(interval));
        assert_ne!(
            send(&s.url(path), body, sid).await.0,
            429,
            "{category} after one interval"
        );
        assert_eq!(send(&s.url(path), body, sid).await.0, 429);
        // A whole window later the budget is full again.
        clock.advance(Duration::from_secs(60));
        for _ in 0..*count {
            assert_ne!(
                send(&s.url(path), body, sid).await.0,
                429,
                "{category} after the window"
            );
        }
    }
    metric_appears(
        &s.bc,
        "bridgecore_rate_limited_total{category=\"delete\",tenant=\"t\"} 2",
    )
    .await;
    // Static files and other unclassified routes never count.
    for _ in 0..10 {
        let resp = client()
            .get(s.url("/web/static/src/img/logo.png"))
            .send()
            .await
            .unwrap();
        assert_ne!(resp.status(), 429);
        assert!(resp.headers().get("x-ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn budgets_are_per_session_and_exempt_networks_are_never_limited() {
    let clock = clock();
    let s = start("t", "", "rate_limits: {read: 2/minute}\n", &clock);
    let body = call_kw("res.partner", "search_count", json!([[]]));
    let a = s.odoo.new_session(2);
    let b = s.odoo.new_session(6);
    for _ in 0..2 {
        assert_eq!(
            send(&s.url("/web/dataset/call_kw"), &body, Some(&a))
                .await
                .0,
            200
        );
    }
    assert_eq!(
        send(&s.url("/web/dataset/call_kw"), &body, Some(&a))
            .await
            .0,
        429
    );
    // Another session has its own budget.
    assert_eq!(
        send(&s.url("/web/dataset/call_kw"), &body, Some(&b))
            .await
            .0,
        200
    );

    // Inventing session ids buys at most ten sessions' worth per client address.
    let mut allowed = 0;
    for i in 0..40 {
        let invented = format!("invented{i:034}");
        if send(&s.url("/web/dataset/call_kw"), &body, Some(&invented))
            .await
            .0
            != 429
        {
            allowed += 1;
        }
    }
    assert_eq!(
        allowed,
        20 - 3,
        "the network budget (10 x 2) less the three calls above"
    );

    let e = start(
        "t",
        "",
        "rate_limits: {read: 2/minute, exempt: [\"127.0.0.0/8\"]}\n",
        &clock,
    );
    for _ in 0..5 {
        let (st, h, _) = send(&e.url("/web/dataset/call_kw"), &body, Some(&a)).await;
        assert_eq!(st, 200);
        assert!(h.get("x-ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn the_api_counts_per_token_subject_and_logins_per_account_across_ips() {
    let clock = clock();
    let top = "auth:\n  jwt: {secret: \"an-hs256-test-secret-of-more-than-32-bytes\"}\nrate_limits: {auth: 3/minute, read: 2/minute}\n";
    let odoo = FakeOdoo::start(Dataset::demo());
    let spec = TenantSpec::for_odoo("t", &["erp.example.com"], &odoo);
    let (text, _, _) = yaml(&[spec], top);
    // trusted_proxies lets the test speak from many client IPs through X-Forwarded-For.
    let text = with_server_keys(&text, "trusted_proxies: [\"127.0.0.1/32\"]");
    let c: Arc<dyn Clock> = clock.clone();
    let bc = start_yaml_with_clock(&text, Vec::new(), Some(c));
    let url = |p: &str| format!("http://{}{}", bc.addr(), p);
    let login = |ip: &str, login: &str, pw: &str| {
        let req = client()
            .post(url("/api/v1/auth/login"))
            .header("x-forwarded-for", ip)
            .json(&json!({"system_id": "t", "login": login, "password": pw}));
        async move {
            let r = req.send().await.unwrap();
            let s = r.status().as_u16();
            let h = r.headers().clone();
            (s, h, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Three wrong passwords for `admin`, each from another IP: the account's budget is spent.
    for i in 0..3 {
        let (s, _, _) = login(&format!("203.0.113.{i}"), "admin", "guess").await;
        assert_eq!(s, 401);
    }
    let before = odoo.count();
    let (s, h, b) = login("203.0.113.77", "admin", "admin").await;
    assert_eq!(
        s, 429,
        "a fresh IP cannot keep trying the same account: {b}"
    );
    assert!(h.get("retry-after").is_some());
    assert!(b["detail"].is_string());
    assert_eq!(odoo.count(), before);
    // Another account from those IPs is not affected.
    let (s, _, b) = login("203.0.113.0", "demo", "demo").await;
    assert_eq!(s, 200, "{b}");
    let token = b["access_token"].as_str().unwrap().to_owned();

    // API reads count against the token subject, whatever the IP.
    let read = |ip: &str| {
        let req = client()
            .post(url("/api/v1/systems/t/odoo/search_count"))
            .bearer_auth(&token)
            .header("x-forwarded-for", ip)
            .json(&json!({"model": "res.partner"}));
        async move { req.send().await.unwrap() }
    };
    let r = read("198.51.100.1").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ratelimit-remaining"], "1");
    assert_eq!(read("198.51.100.2").await.status(), 200);
    let r = read("198.51.100.3").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "30");
    clock.advance(Duration::from_secs(30));
    assert_eq!(read("198.51.100.4").await.status(), 200);
}

#[tokio::test]
async fn instances_sharing_redis_share_one_budget() {
    let clock = clock();
    let name = unique("shared");
    let top = format!(
        "redis: {{url: \"{}\"}}\ncache: {{key_secret: \"a-shared-cache-key-secret-for-tests\"}}\nrate_limits: {{read: 5/minute}}\n",
        redis_url()
    );
    let a = start(&name, "", &top, &clock);
    let b = start_on(FakeOdoo::start(Dataset::demo()), &name, "", &top, &clock);
    let body = call_kw("res.partner", "search_count", json!([[]]));
    // The same client (no session: its IP) alternates between the two instances.
    let mut allowed = 0;
    for i in 0..8 {
        let url = if i % 2 == 0 {
            a.url("/web/dataset/call_kw")
        } else {
            b.url("/web/dataset/call_kw")
        };
        let (st, h, _) = send(&url, &body, None).await;
        if st != 429 {
            allowed += 1;
            assert_eq!(
                header(&h, "x-ratelimit-remaining"),
                Some((4 - i).to_string())
            );
        }
    }
    assert_eq!(
        allowed, 5,
        "one budget of 5 across both instances, not 5 each"
    );
}

#[tokio::test]
async fn redis_stopped_mid_run_falls_back_to_local_limits_without_5xx() {
    let mut redis = OwnRedis::start();
    let clock = clock();
    let top = format!(
        "redis: {{url: \"redis://127.0.0.1:{}/0\"}}\ncache: {{key_secret: \"a-shared-cache-key-secret-for-tests\"}}\nauth:\n  jwt: {{secret: \"an-hs256-test-secret-of-more-than-32-bytes\"}}\nrate_limits: {{read: 3/minute}}\n",
        redis.port
    );
    let s = start("t", "", &top, &clock);
    let sid = s.odoo.new_session(2);
    let body = call_kw("res.partner", "search_count", json!([[]]));
    // Two calls counted in Redis.
    for _ in 0..2 {
        assert_eq!(
            send(&s.url("/web/dataset/call_kw"), &body, Some(&sid))
                .await
                .0,
            200
        );
    }
    redis.stop();
    // Redis is gone: no 5xx, and the local limiter still refuses past the count (it starts
    // afresh, so fail-safe means "limited", not "exactly where Redis was").
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            send(&s.url("/web/dataset/call_kw"), &body, Some(&sid))
                .await
                .0,
        );
    }
    assert!(
        statuses.iter().all(|&st| st == 200 || st == 429),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&st| st == 200).count(),
        3,
        "{statuses:?}"
    );
    // API logins need the session store, which lives in Redis here: 503, never a 5xx crash
    // or a login without a stored session.
    let resp = client()
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"system_id": "t", "login": "demo", "password": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
}

#[tokio::test]
async fn the_web_clients_login_form_counts_as_auth_and_per_account() {
    let clock = clock();
    let s = start("t", "", "rate_limits: {auth: 2/minute}\n", &clock);
    let form = |login: &str| {
        client()
            .post(s.url("/web/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "csrf_token=x&db=odoo&login={login}&password=nope&redirect="
            ))
    };
    for _ in 0..2 {
        let r = form("admin").send().await.unwrap();
        assert_ne!(r.status(), 429);
        assert_eq!(r.headers()["x-ratelimit-limit"], "2");
    }
    let before = s.odoo.count_path("/web/login");
    let r = form("admin").send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(s.odoo.count_path("/web/login"), before);
    // GETting the login page is not a login attempt.
    let r = client().get(s.url("/web/login")).send().await.unwrap();
    assert_ne!(r.status(), 429);
}
