//! Issue 3 end to end: BridgeCore's token login against the fake Odoo, the `/api/v1` call API,
//! token verification and revocation, scopes, and JWT-only tenants.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use base64::Engine;
use bridgecore::filters::auth::{Algorithm, Claims, JwtSettings, KeyMaterial, Signer};
use common::*;
use serde_json::{json, Value};

const SECRET: &str = "an-hs256-test-secret-of-more-than-32-bytes";

fn auth_top() -> String {
    format!("auth:\n  jwt: {{secret: \"{SECRET}\"}}\n")
}

fn start(tenant_extra: &str) -> Harness {
    Harness::with(Dataset::demo(), tenant_extra, &auth_top(), Vec::new())
}

async fn post(
    url: &str,
    body: Value,
    token: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = client().post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, body, headers)
}

async fn api_login(h: &Harness, login: &str, password: &str) -> (u16, Value) {
    let (s, b, _) = post(
        &h.url("/api/v1/auth/login"),
        json!({"system_id": "odoo", "login": login, "password": password}),
        None,
    )
    .await;
    (s, b)
}

async fn token(h: &Harness, login: &str, password: &str) -> (String, String) {
    let (s, b) = api_login(h, login, password).await;
    assert_eq!(s, 200, "{b}");
    (
        b["access_token"].as_str().unwrap().to_owned(),
        b["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn me(h: &Harness, token: &str) -> (u16, Value) {
    let resp = client()
        .get(h.url("/api/v1/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

async fn op(h: &Harness, token: &str, operation: &str, body: Value) -> (u16, Value) {
    let (s, b, _) = post(
        &h.url(&format!("/api/v1/systems/odoo/odoo/{operation}")),
        body,
        Some(token),
    )
    .await;
    (s, b)
}

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

fn claims_of(token: &str) -> Claims {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn hs256(secret: &[u8], claims: &Claims) -> String {
    let settings = JwtSettings::new(Algorithm::HS256);
    Signer::new(&settings, &KeyMaterial::Secret(secret.to_vec()))
        .unwrap()
        .sign(claims)
        .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn login_issues_a_token_pair_and_bad_credentials_get_a_plain_401() {
    let h = start("");
    let (s, b) = api_login(&h, "admin", "admin").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["token_type"], "bearer");
    assert_eq!(b["expires_in"], 900);
    assert_eq!(
        b["user"],
        json!({"uid": 2, "name": "Mitchell Admin", "login": "admin", "is_admin": true})
    );
    let c = claims_of(b["access_token"].as_str().unwrap());
    assert_eq!(
        (c.sub.as_str(), c.tenant.as_str(), c.db.as_str()),
        ("2", "odoo", "odoo")
    );
    assert_eq!(c.iss.as_deref(), Some("bridgecore"));
    assert_eq!(c.aud.as_deref(), Some("bridgecore-api"));
    assert_eq!(c.exp - c.iat, 900);
    assert!(c.jti.is_some() && !c.sid.is_empty());
    assert_eq!(serde_json::to_value(c.role).unwrap(), "admin");
    // The Odoo session stays inside BridgeCore: not in the body, not in a cookie.
    let text = b.to_string();
    for (sid, _) in h.odoo.sessions() {
        assert!(!text.contains(&sid));
    }

    let (s, me_body) = me(&h, b["access_token"].as_str().unwrap()).await;
    assert_eq!(s, 200);
    assert_eq!(me_body["uid"], 2);
    assert_eq!(me_body["system_id"], "odoo");

    // A demo user is not an admin.
    let (_, demo) = api_login(&h, "demo", "demo").await;
    assert_eq!(demo["user"]["is_admin"], false);
    assert_eq!(
        serde_json::to_value(claims_of(demo["access_token"].as_str().unwrap()).role).unwrap(),
        "user"
    );

    // Wrong password and unknown login read the same.
    let (s1, b1) = api_login(&h, "admin", "wrong").await;
    let (s2, b2) = api_login(&h, "nobody", "admin").await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(b1, b2);
    assert_eq!(b1, json!({"detail": "invalid credentials"}));

    // `username` is accepted for `login`; an unknown system is 404.
    let (s, _, _) = post(
        &h.url("/api/v1/auth/login"),
        json!({"system_id": "odoo", "username": "demo", "password": "demo"}),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, b, _) = post(
        &h.url("/api/v1/auth/login"),
        json!({"system_id": "nope", "login": "demo", "password": "demo"}),
        None,
    )
    .await;
    assert_eq!((s, b["detail"].as_str()), (404, Some("unknown system")));
}

#[tokio::test]
async fn login_bodies_of_the_wrong_shape_are_400_and_never_reach_odoo() {
    let h = start("");
    let before = h.odoo.count();
    for body in [
        json!({"system_id": "odoo", "login": "demo"}),
        json!({"system_id": "odoo", "login": "demo", "password": "demo", "extra": 1}),
        json!({"login": "demo", "password": "demo"}),
        json!(["demo", "demo"]),
        json!({"system_id": "odoo", "login": 7, "password": "demo"}),
    ] {
        let (s, b, _) = post(&h.url("/api/v1/auth/login"), body.clone(), None).await;
        assert_eq!(s, 400, "{body} → {b}");
        assert!(b["detail"].as_str().is_some_and(|d| !d.is_empty()), "{b}");
        assert!(!b.to_string().contains("demo\""), "no value echoed: {b}");
    }
    let resp = client()
        .post(h.url("/api/v1/auth/login"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // GET on a POST endpoint.
    let resp = client()
        .get(h.url("/api/v1/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(h.odoo.count(), before);
}

#[tokio::test]
async fn the_call_api_runs_every_operation_on_the_callers_session() {
    let h = start("");
    let (t, _) = token(&h, "admin", "admin").await;

    let (s, b) = op(&h, &t, "search_read", json!({"model": "res.partner", "domain": [["is_company", "=", true]], "fields": ["name"], "limit": 2, "order": "id"})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["cached"], false);
    assert_eq!(b["optimized"], false);
    let rows = b["result"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[0]["name"].is_string());
    let id = rows[0]["id"].as_i64().unwrap();

    let (s, b) = op(
        &h,
        &t,
        "read",
        json!({"model": "res.partner", "ids": [id], "fields": ["name"]}),
    )
    .await;
    assert_eq!((s, b["result"][0]["id"].as_i64()), (200, Some(id)));
    let (s, b) = op(
        &h,
        &t,
        "search",
        json!({"model": "res.partner", "domain": [["id", "=", id]]}),
    )
    .await;
    assert_eq!((s, b["result"].clone()), (200, json!([id])));
    let (s, b) = op(
        &h,
        &t,
        "search_count",
        json!({"model": "res.partner", "domain": [["id", "=", id]]}),
    )
    .await;
    assert_eq!((s, b["result"].clone()), (200, json!(1)));
    let (s, b) = op(
        &h,
        &t,
        "fields_get",
        json!({"model": "res.partner", "fields": ["name"], "kwargs": {"attributes": ["type"]}}),
    )
    .await;
    assert_eq!(
        (s, b["result"]["name"]["type"].as_str()),
        (200, Some("char"))
    );
    let name = rows[0]["name"].as_str().unwrap().to_owned();
    let (s, b) = op(
        &h,
        &t,
        "name_search",
        json!({"model": "res.partner", "kwargs": {"name": name}, "limit": 5}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["result"].as_array().unwrap().iter().any(|p| p[0] == id));
    let (s, b) = op(
        &h,
        &t,
        "web_search_read",
        json!({"model": "res.partner", "domain": [["id", "=", id]], "fields": ["name"]}),
    )
    .await;
    assert_eq!(
        (s, b["result"]["records"][0]["id"].as_i64()),
        (200, Some(id)),
        "{b}"
    );
    let (s, b) = op(
        &h,
        &t,
        "web_read",
        json!({"model": "res.partner", "ids": [id], "fields": ["name"]}),
    )
    .await;
    assert_eq!(
        (s, b["result"][0]["name"].as_str()),
        (200, Some(name.as_str())),
        "{b}"
    );
    let (s, b) = op(&h, &t, "read_group", json!({"model": "sale.order", "domain": [], "fields": ["amount_total:sum"], "groupby": ["state"]})).await;
    assert_eq!(s, 200, "{b}");
    assert!(!b["result"].as_array().unwrap().is_empty());

    let (s, b) = op(
        &h,
        &t,
        "create",
        json!({"model": "res.partner", "values": {"name": "Through the API"}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let new_id = b["result"].as_i64().unwrap();
    assert_eq!(
        h.odoo.record("res.partner", new_id).unwrap()["name"],
        "Through the API"
    );
    let (s, b) = op(
        &h,
        &t,
        "write",
        json!({"model": "res.partner", "ids": [new_id], "values": {"name": "Renamed"}}),
    )
    .await;
    assert_eq!((s, b["result"].clone()), (200, json!(true)));
    assert_eq!(
        h.odoo.record("res.partner", new_id).unwrap()["name"],
        "Renamed"
    );
    let (s, b) = op(
        &h,
        &t,
        "call",
        json!({"model": "res.partner", "method": "read", "ids": [new_id], "args": [["name"]]}),
    )
    .await;
    assert_eq!(
        (s, b["result"][0]["name"].as_str()),
        (200, Some("Renamed")),
        "{b}"
    );
    let (s, b) = op(
        &h,
        &t,
        "unlink",
        json!({"model": "res.partner", "ids": [new_id]}),
    )
    .await;
    assert_eq!((s, b["result"].clone()), (200, json!(true)));
    assert!(h.odoo.record("res.partner", new_id).is_none());

    // Every call went to Odoo as call_kw on BridgeCore's Odoo session for this login.
    let calls = h.odoo.count_path("/web/dataset/call_kw/");
    assert_eq!(calls, 13);
}

#[tokio::test]
async fn odoo_errors_map_to_http_statuses() {
    let h = start("");
    let (demo, _) = token(&h, "demo", "demo").await;
    let (s, b) = op(&h, &demo, "search_read", json!({"model": "account.move"})).await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(b["odoo_error"]["name"], "odoo.exceptions.AccessError");
    assert!(
        b["detail"].as_str().unwrap().contains("account.move")
            || !b["detail"].as_str().unwrap().is_empty()
    );
    assert!(!b.to_string().contains("Traceback"));

    let (s, b) = op(
        &h,
        &demo,
        "read",
        json!({"model": "res.partner", "ids": [999999], "fields": ["name"]}),
    )
    .await;
    assert_eq!(
        (s, b["odoo_error"]["name"].as_str()),
        (404, Some("odoo.exceptions.MissingError")),
        "{b}"
    );

    let (admin, _) = token(&h, "admin", "admin").await;
    let (s, b) = op(
        &h,
        &admin,
        "create",
        json!({"model": "sale.order", "values": {"partner_id": false}}),
    )
    .await;
    assert_eq!(
        (s, b["odoo_error"]["name"].as_str()),
        (422, Some("odoo.exceptions.ValidationError")),
        "{b}"
    );

    // Unknown operation, unknown field, bad ids: 4xx before Odoo.
    let before = h.odoo.count();
    let (s, _) = op(&h, &admin, "drop_table", json!({"model": "res.partner"})).await;
    assert_eq!(s, 404);
    let (s, b) = op(
        &h,
        &admin,
        "search_read",
        json!({"model": "res.partner", "colour": "red"}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(b["detail"].as_str().unwrap().contains("colour"));
    let (s, _) = op(
        &h,
        &admin,
        "read",
        json!({"model": "res.partner", "ids": ["1"]}),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = op(
        &h,
        &admin,
        "call",
        json!({"model": "res.partner", "method": "_private"}),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = op(&h, &admin, "search_read", json!({"domain": []})).await;
    assert_eq!(s, 400);
    assert_eq!(h.odoo.count(), before);
    // An unknown system is 404.
    let (s, _, _) = post(
        &h.url("/api/v1/systems/nope/odoo/search_read"),
        json!({"model": "res.partner"}),
        Some(&admin),
    )
    .await;
    assert_eq!(s, 404);

    // The Odoo session expires behind BridgeCore's back: 401, and the token is finished.
    h.odoo.expire_all_sessions();
    let (s, b) = op(
        &h,
        &admin,
        "search_read",
        json!({"model": "res.partner", "limit": 1}),
    )
    .await;
    assert_eq!(s, 401, "{b}");
    let (s, _) = me(&h, &admin).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn refresh_rotates_the_pair_and_reuse_revokes_the_family() {
    let h = start("");
    let (access1, refresh1) = token(&h, "demo", "demo").await;
    let (s, b, _) = post(
        &h.url("/api/v1/auth/refresh"),
        json!({"refresh_token": refresh1}),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let access2 = b["access_token"].as_str().unwrap().to_owned();
    let refresh2 = b["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh1, refresh2);
    assert_eq!(claims_of(&access2).sid, claims_of(&access1).sid);
    assert_eq!(me(&h, &access2).await.0, 200);
    // A refresh token is not an access token, nor the other way round.
    assert_eq!(me(&h, &refresh2).await.0, 401);
    let (s, _, _) = post(
        &h.url("/api/v1/auth/refresh"),
        json!({"refresh_token": access2}),
        None,
    )
    .await;
    assert_eq!(s, 401);

    // Presenting the rotated one again: reuse, the whole session is revoked.
    let (s, b, _) = post(
        &h.url("/api/v1/auth/refresh"),
        json!({"refresh_token": refresh1}),
        None,
    )
    .await;
    assert_eq!(s, 401);
    assert!(b["detail"].as_str().unwrap().contains("revoked"));
    assert_eq!(me(&h, &access2).await.0, 401);
    let (s, _, _) = post(
        &h.url("/api/v1/auth/refresh"),
        json!({"refresh_token": refresh2}),
        None,
    )
    .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn logout_revokes_the_tokens_and_ends_the_odoo_session() {
    let h = start("");
    let (access, refresh) = token(&h, "demo", "demo").await;
    let logged_in = |h: &Harness| {
        h.odoo
            .sessions()
            .iter()
            .filter(|(_, uid)| *uid == Some(6))
            .count()
    };
    assert_eq!(logged_in(&h), 1);
    let (s, _, _) = post(&h.url("/api/v1/auth/logout"), json!({}), Some(&access)).await;
    assert_eq!(s, 200);
    assert_eq!(me(&h, &access).await.0, 401);
    let (s, _, _) = post(
        &h.url("/api/v1/auth/refresh"),
        json!({"refresh_token": refresh}),
        None,
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(logged_in(&h), 0, "the Odoo session was destroyed");
}

#[tokio::test]
async fn forged_expired_and_misaddressed_tokens_are_401() {
    let h = start("");
    let (good, _) = token(&h, "demo", "demo").await;
    assert_eq!(me(&h, &good).await.0, 200);
    let base = claims_of(&good);
    let t = now();

    let mut expired = base.clone();
    expired.iat = t - 3600;
    expired.exp = t - 120; // past the 30 s leeway
    let mut not_yet = base.clone();
    not_yet.nbf = Some(t + 600);
    let mut wrong_aud = base.clone();
    wrong_aud.aud = Some("someone-else".into());
    let mut wrong_iss = base.clone();
    wrong_iss.iss = Some("evil".into());
    let mut as_admin = base.clone();
    as_admin.sub = "2".into();

    let header_none = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = good.split('.').nth(1).unwrap();
    let alg_none = format!("{header_none}.{payload}.");
    let tampered = {
        let parts: Vec<&str> = good.split('.').collect();
        let forged = b64(&serde_json::to_vec(&as_admin).unwrap());
        format!("{}.{}.{}", parts[0], forged, parts[2])
    };
    let mut bad_sig = good.clone();
    bad_sig.pop();
    bad_sig.push(if good.ends_with('A') { 'B' } else { 'A' });

    let cases: Vec<(&str, String)> = vec![
        ("expired", hs256(SECRET.as_bytes(), &expired)),
        ("not yet valid", hs256(SECRET.as_bytes(), &not_yet)),
        ("wrong aud", hs256(SECRET.as_bytes(), &wrong_aud)),
        ("wrong iss", hs256(SECRET.as_bytes(), &wrong_iss)),
        (
            "other secret",
            hs256(b"another-secret-that-is-long-enough-to-sign", &base),
        ),
        ("alg none", alg_none),
        ("tampered payload", tampered),
        ("tampered signature", bad_sig),
        ("garbage", "not.a.token".into()),
        ("huge", "a".repeat(60_000)),
    ];
    for (what, token) in cases {
        let (s, b) = me(&h, &token).await;
        assert_eq!(s, 401, "{what}: {b}");
        assert!(b["detail"].is_string(), "{what}");
    }
    // Header problems.
    let resp = client()
        .get(h.url("/api/v1/auth/me"))
        .header("authorization", format!("Bearer {good}"))
        .header("authorization", format!("Bearer {good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client()
        .get(h.url("/api/v1/auth/me"))
        .header("authorization", "Basic ZGVtbzpkZW1v")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client().get(h.url("/api/v1/auth/me")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
}

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("filters/src/auth/testdata")
        .join(name)
}

#[tokio::test]
async fn an_rs256_deployment_refuses_hmac_tokens_signed_with_its_public_key() {
    let public = testdata("rsa_public.pem");
    let private = testdata("rsa_private.pem");
    let top = format!(
        "auth:\n  jwt: {{algorithm: RS256, public_key_file: \"{}\", private_key_file: \"{}\"}}\n",
        public.display(),
        private.display()
    );
    let h = Harness::with(Dataset::demo(), "", &top, Vec::new());
    let (good, _) = token(&h, "demo", "demo").await;
    assert_eq!(me(&h, &good).await.0, 200);
    let pem = std::fs::read(&public).unwrap();
    let confused = hs256(&pem, &claims_of(&good));
    assert_eq!(me(&h, &confused).await.0, 401);
}

#[tokio::test]
async fn scopes_refuse_calls_outside_them_before_odoo_sees_them() {
    let h = start("");
    let (s, b, _) = post(
        &h.url("/api/v1/auth/login"),
        json!({"system_id": "odoo", "login": "admin", "password": "admin", "scopes": ["res.partner:read"]}),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let t = b["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims_of(&t).scopes, vec!["res.partner:read"]);

    let (s, _) = op(
        &h,
        &t,
        "search_read",
        json!({"model": "res.partner", "limit": 1}),
    )
    .await;
    assert_eq!(s, 200);
    let before = h.odoo.count();
    let (s, b) = op(
        &h,
        &t,
        "search_read",
        json!({"model": "sale.order", "limit": 1}),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    let (s, _) = op(
        &h,
        &t,
        "write",
        json!({"model": "res.partner", "ids": [1], "values": {"name": "x"}}),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = op(
        &h,
        &t,
        "unlink",
        json!({"model": "res.partner", "ids": [1]}),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(h.odoo.count(), before, "refused calls never reach Odoo");

    // A scope that is not one.
    let (s, _, _) = post(
        &h.url("/api/v1/auth/login"),
        json!({"system_id": "odoo", "login": "admin", "password": "admin", "scopes": ["res.partner:destroy"]}),
        None,
    )
    .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn jwt_only_tenants_need_a_token_on_odoo_routes_and_run_on_its_session() {
    let h = start("require_jwt: true\n");
    let call = rpc(
        json!({"model": "res.partner", "method": "search_read", "args": [[]], "kwargs": {"fields": ["name"], "limit": 1}}),
        7,
    );
    // No token: a JSON-RPC error, 401, Odoo untouched.
    let before = h.odoo.count();
    let resp = client()
        .post(h.url("/web/dataset/call_kw"))
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["id"], 7);
    assert_eq!(b["error"]["data"]["name"], "bridgecore.Unauthorized");
    assert_eq!(h.odoo.count(), before);

    // With a token and no cookie at all: runs on the token's Odoo session, and Odoo's
    // session cookie never comes back to the client.
    let (t, _) = token(&h, "demo", "demo").await;
    let resp = client()
        .post(h.url("/web/dataset/call_kw"))
        .bearer_auth(&t)
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .all(|v| !v.to_str().unwrap().starts_with("session_id=")));
    let b: Value = resp.json().await.unwrap();
    assert!(b["result"].is_array(), "{b}");
    // Odoo got the login's session cookie and never BridgeCore's token.
    let seen = h.odoo.requests().into_iter().last().unwrap();
    assert!(seen.headers.get("authorization").is_none());
    let cookie = seen.headers["cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("session_id="), "{cookie}");
    assert!(h
        .odoo
        .sessions()
        .iter()
        .any(|(sid, uid)| cookie == format!("session_id={sid}") && *uid == Some(6)));

    // With the browser's own cookies: the client's `session_id` is replaced by the token's
    // session, first, and the other cookies go on in their order, spaces around them trimmed.
    // (`no-cache`: the same call was just cached for this session.)
    let resp = client()
        .post(h.url("/web/dataset/call_kw"))
        .bearer_auth(&t)
        .header(
            "cookie",
            "frontend_lang=fr_BE;  session_id=someone-elses ;\ttz=Europe/Brussels;",
        )
        .header("cache-control", "no-cache")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = h.odoo.requests().into_iter().last().unwrap();
    assert_eq!(
        seen.headers["cookie"].to_str().unwrap(),
        format!("{cookie}; frontend_lang=fr_BE; tz=Europe/Brussels")
    );

    // /jsonrpc: the uid in the call must be the token's.
    let exec = |uid: i64, pw: &str| {
        rpc(
            json!({"service": "object", "method": "execute_kw", "args": ["odoo", uid, pw, "res.partner", "search_count", [[]]]}),
            1,
        )
    };
    let (s, _, _) = post(&h.url("/jsonrpc"), exec(6, "demo"), Some(&t)).await;
    assert_eq!(s, 200);
    let before = h.odoo.count();
    let (s, b, _) = post(&h.url("/jsonrpc"), exec(2, "admin"), Some(&t)).await;
    assert_eq!(s, 403, "{b}");
    let (s, _, _) = post(&h.url("/jsonrpc"), exec(6, "demo"), None).await;
    assert_eq!(s, 401);
    assert_eq!(h.odoo.count(), before);

    // Static files and other routes are untouched by require_jwt.
    let resp = client()
        .get(h.url("/web/webclient/version_info"))
        .send()
        .await
        .unwrap();
    assert_ne!(resp.status(), 401);
}

#[tokio::test]
async fn admin_endpoints_want_an_admin_token_for_that_tenant() {
    let h = start("");
    let (demo, _) = token(&h, "demo", "demo").await;
    let (admin, _) = token(&h, "admin", "admin").await;
    let get = |t: Option<String>| {
        let url = h.url("/api/v1/systems/odoo/stats");
        async move {
            let mut r = client().get(url);
            if let Some(t) = t {
                r = r.bearer_auth(t);
            }
            r.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(get(None).await, 401);
    assert_eq!(get(Some(demo)).await, 403);
    assert_eq!(get(Some(admin)).await, 200);
}

/// A JWKS endpoint the test can break: `GET /jwks` answers the document while `ok` holds, 500
/// after.
async fn jwks_server(doc: Vec<u8>, ok: std::sync::Arc<std::sync::atomic::AtomicBool>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let doc = doc.clone();
            let ok = ok.load(std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let head = if ok {
                    format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", doc.len())
                } else {
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
                };
                let _ = sock.write_all(head.as_bytes()).await;
                if ok {
                    let _ = sock.write_all(&doc).await;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_verifying_instance_takes_keys_from_a_jwks_url_and_keeps_them_when_it_fails() {
    let redis = std::env::var("BRIDGECORE_TEST_REDIS")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let ok = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let port = jwks_server(
        std::fs::read(testdata("jwks_single.json")).unwrap(),
        ok.clone(),
    )
    .await;
    let odoo = FakeOdoo::start(Dataset::demo());
    let name = format!(
        "jwks{}",
        now() % 1_000_000_007 + u64::from(std::process::id())
    );
    // The issuing instance signs with the private key; the other only knows the JWKS.
    let issuer_top = format!(
        "redis: {{url: \"{redis}\"}}\ncache: {{key_secret: \"a-shared-cache-key-secret-for-tests\"}}\nauth:\n  jwt: {{algorithm: RS256, public_key_file: \"{}\", private_key_file: \"{}\"}}\n",
        testdata("rsa_public.pem").display(),
        testdata("rsa_private.pem").display()
    );
    let verifier_top = format!(
        "redis: {{url: \"{redis}\"}}\ncache: {{key_secret: \"a-shared-cache-key-secret-for-tests\"}}\nauth:\n  jwt: {{algorithm: RS256, jwks_url: \"http://127.0.0.1:{port}/jwks\", jwks_refresh: 1s}}\n"
    );
    let (a_text, _, _) = yaml(
        &[TenantSpec::for_odoo(&name, &["erp.example.com"], &odoo)],
        &issuer_top,
    );
    let (b_text, _, _) = yaml(
        &[TenantSpec::for_odoo(&name, &["erp.example.com"], &odoo)],
        &verifier_top,
    );
    let a = start_yaml(&a_text, Vec::new());
    let b = start_yaml(&b_text, Vec::new());
    let login = client()
        .post(format!("http://{}/api/v1/auth/login", a.addr()))
        .json(&json!({"system_id": name, "login": "demo", "password": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let t: Value = login.json().await.unwrap();
    let t = t["access_token"].as_str().unwrap().to_owned();
    let me_on_b = |t: String| {
        let url = format!("http://{}/api/v1/auth/me", b.addr());
        async move {
            client()
                .get(url)
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // B has no login of its own (no private key) ...
    let resp = client()
        .post(format!("http://{}/api/v1/auth/login", b.addr()))
        .json(&json!({"system_id": name, "login": "demo", "password": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    // ... but verifies A's tokens with the fetched keys, on the session A stored in Redis.
    let mut status = 0;
    for _ in 0..100 {
        status = me_on_b(t.clone()).await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
    // The JWKS URL breaks: the last good keys stay in use.
    ok.store(false, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(me_on_b(t.clone()).await, 200);
    // A key that is not in the set is refused.
    let other = Signer::new(
        &JwtSettings::new(Algorithm::RS256),
        &KeyMaterial::Pem {
            public: std::fs::read(testdata("rsa2_public.pem")).unwrap(),
            private: Some(std::fs::read(testdata("rsa2_private.pem")).unwrap()),
        },
    )
    .unwrap()
    .sign(&claims_of(&t))
    .unwrap();
    assert_eq!(me_on_b(other).await, 401);
}

#[tokio::test]
async fn json2_calls_on_jwt_only_tenants_must_use_the_token_users_api_key() {
    let mut data = Dataset::demo();
    data.json2 = true;
    let h = Harness::with(data, "require_jwt: true\n", &auth_top(), Vec::new());
    let (t, _) = token(&h, "demo", "demo").await;
    let call = |key: &'static str, token: Option<String>| {
        let mut r = client()
            .post(h.url("/json/2/res.partner/search_count"))
            .header("authorization", format!("bearer {key}"))
            .json(&json!({"domain": []}));
        if let Some(t) = token {
            r = r.header("x-bridgecore-token", t);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    // The token's user's own key: Odoo is asked once whose key it is, then remembered.
    assert_eq!(call("demo-api-key", Some(t.clone())).await, 200);
    let asked = h.odoo.count_path("/json/2/res.users/context_get");
    assert_eq!(asked, 1);
    assert_eq!(call("demo-api-key", Some(t.clone())).await, 200);
    assert_eq!(h.odoo.count_path("/json/2/res.users/context_get"), 1);
    // Someone else's key with this token, a key Odoo does not know, or no token: refused.
    let before = h.odoo.count_path("/json/2/res.partner");
    assert_eq!(call("admin-api-key", Some(t.clone())).await, 403);
    assert_eq!(call("not-a-key", Some(t.clone())).await, 401);
    assert_eq!(call("demo-api-key", None).await, 401);
    assert_eq!(h.odoo.count_path("/json/2/res.partner"), before);
}
