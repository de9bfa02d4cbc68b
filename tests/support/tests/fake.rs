#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use fake_odoo::{eval_domain, xmlrpc, Dataset, FakeOdoo, OdooVersion, Port};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn post_json(
    odoo: &FakeOdoo,
    path: &str,
    sid: Option<&str>,
    params: Value,
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = client()
        .post(odoo.url(path))
        .json(&json!({"jsonrpc": "2.0", "method": "call", "params": params, "id": 7}));
    if let Some(sid) = sid {
        req = req.header("cookie", format!("session_id={sid}"));
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body: Value = r.json().await.unwrap();
    (status, headers, body)
}

async fn login(odoo: &FakeOdoo, login: &str, password: &str) -> String {
    let (status, headers, body) = post_json(
        odoo,
        "/web/session/authenticate",
        None,
        json!({"db": "odoo", "login": login, "password": password}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.get("result").is_some(), "{body}");
    let cookie = headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("Path=/")
            && cookie.contains("Max-Age=604800"),
        "{cookie}"
    );
    cookie
        .trim_start_matches("session_id=")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

async fn call_kw(
    odoo: &FakeOdoo,
    sid: &str,
    model: &str,
    method: &str,
    args: Value,
    kwargs: Value,
) -> Value {
    let path = format!("/web/dataset/call_kw/{model}/{method}");
    post_json(
        odoo,
        &path,
        Some(sid),
        json!({"model": model, "method": method, "args": args, "kwargs": kwargs}),
    )
    .await
    .2
}

fn err_name(v: &Value) -> &str {
    v["error"]["data"]["name"].as_str().unwrap_or("")
}

#[tokio::test]
async fn authenticate_and_record_rule() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let (_, _, bad) = post_json(
        &odoo,
        "/web/session/authenticate",
        None,
        json!({"db": "odoo", "login": "demo", "password": "nope"}),
    )
    .await;
    assert_eq!(err_name(&bad), "odoo.exceptions.AccessDenied");
    assert_eq!(bad["error"]["code"], 200);
    assert_eq!(bad["id"], 7);

    let sid = login(&odoo, "demo", "demo").await;
    let r = call_kw(&odoo, &sid, "sale.order", "search_read", json!([]), json!({"domain": [], "fields": ["name", "user_id", "partner_id", "amount_total"], "order": "id"})).await;
    let rows = r["result"].as_array().unwrap();
    let ids: Vec<i64> = rows.iter().map(|x| x["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![3, 5, 8]);
    assert_eq!(rows[0]["user_id"], json!([6, "Marc Demo"]));
    assert_eq!(rows[0]["partner_id"], json!([9, "Deco Addict"]));
    assert!(rows[0]["amount_total"].as_f64().unwrap() > 0.0);

    // read of someone else's order → AccessError; missing → MissingError
    let r = call_kw(
        &odoo,
        &sid,
        "sale.order",
        "read",
        json!([[1], ["name"]]),
        json!({}),
    )
    .await;
    assert_eq!(err_name(&r), "odoo.exceptions.AccessError", "{r}");
    let r = call_kw(
        &odoo,
        &sid,
        "sale.order",
        "read",
        json!([[999], ["name"]]),
        json!({}),
    )
    .await;
    assert_eq!(err_name(&r), "odoo.exceptions.MissingError");
    assert!(r["error"]["data"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Record does not exist or has been deleted."));

    // admin sees all ten; search with positional domain; search_count
    let admin = login(&odoo, "admin", "admin").await;
    let r = call_kw(
        &odoo,
        &admin,
        "sale.order",
        "search",
        json!([[]]),
        json!({}),
    )
    .await;
    assert_eq!(r["result"].as_array().unwrap().len(), 10);
    let r = call_kw(
        &odoo,
        &sid,
        "sale.order",
        "search_count",
        json!([[["state", "in", ["sale", "sent"]]]]),
        json!({}),
    )
    .await;
    assert_eq!(r["result"], 2);

    // session info / check / destroy
    let (_, _, info) = post_json(
        &odoo,
        "/web/session/get_session_info",
        Some(&sid),
        json!({}),
    )
    .await;
    assert_eq!(info["result"]["uid"], 6);
    assert_eq!(
        info["result"]["server_version_info"],
        json!([17, 0, 0, "final", 0, ""])
    );
    let (_, _, chk) = post_json(&odoo, "/web/session/check", Some(&sid), json!({})).await;
    assert!(
        chk.get("result").is_none() && chk.get("error").is_none(),
        "{chk}"
    );
    let (_, headers, d) = post_json(&odoo, "/web/session/destroy", Some(&sid), json!({})).await;
    assert!(d.get("result").is_none());
    assert!(headers
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("session_id=")));
    let r = call_kw(&odoo, &sid, "sale.order", "search", json!([[]]), json!({})).await;
    assert_eq!(r["error"]["code"], 100);
    assert_eq!(err_name(&r), "odoo.http.SessionExpiredException");
}

#[tokio::test]
async fn access_errors_and_orm_errors() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let sid = login(&odoo, "demo", "demo").await;
    let r = call_kw(
        &odoo,
        &sid,
        "account.move",
        "search_read",
        json!([]),
        json!({"domain": [], "fields": ["name"]}),
    )
    .await;
    assert_eq!(err_name(&r), "odoo.exceptions.AccessError");
    assert!(r["error"]["data"]["message"]
        .as_str()
        .unwrap()
        .starts_with("You are not allowed to access 'Journal Entry' (account.move) records."));
    assert!(r["error"]["data"]["debug"]
        .as_str()
        .unwrap()
        .starts_with("Traceback"));
    let r = call_kw(&odoo, &sid, "sale.order", "unlink", json!([[3]]), json!({})).await;
    assert_eq!(err_name(&r), "odoo.exceptions.AccessError");

    let r = call_kw(
        &odoo,
        &sid,
        "sale.order",
        "search_read",
        json!([[], ["partner_id.name"]]),
        json!({}),
    )
    .await;
    assert_eq!(err_name(&r), "builtins.ValueError");
    assert_eq!(
        r["error"]["data"]["message"],
        "Invalid field 'partner_id.name' on model 'sale.order'"
    );
    let r = call_kw(
        &odoo,
        &sid,
        "sale.order",
        "frobnicate",
        json!([]),
        json!({}),
    )
    .await;
    assert_eq!(
        r["error"]["data"]["message"],
        "The method 'frobnicate' does not exist on the model 'sale.order'"
    );
    let r = call_kw(
        &odoo,
        &sid,
        "sale.order",
        "_compute_amount",
        json!([]),
        json!({}),
    )
    .await;
    assert_eq!(
        r["error"]["data"]["message"],
        "Private methods (such as 'sale.order._compute_amount') cannot be called remotely."
    );

    // writes bump write_date, recompute the stored total, visible through the ORM
    let before = odoo.record("sale.order", 3).unwrap();
    let line = call_kw(
        &odoo,
        &sid,
        "sale.order.line",
        "search",
        json!([[["order_id", "=", 3]]]),
        json!({}),
    )
    .await["result"][0]
        .as_i64()
        .unwrap();
    let r = call_kw(
        &odoo,
        &sid,
        "sale.order.line",
        "write",
        json!([[line], {"price_unit": 1000.0, "product_uom_qty": 2}]),
        json!({}),
    )
    .await;
    assert_eq!(r["result"], true);
    let after = odoo.record("sale.order", 3).unwrap();
    assert_ne!(before["amount_total"], after["amount_total"]);
    assert_ne!(before["write_date"], after["write_date"]);
    let created = call_kw(&odoo, &sid, "sale.order", "create", json!([{"partner_id": 9, "user_id": 6, "order_line": [[0, 0, {"name": "X", "price_unit": 5.0, "product_uom_qty": 3}]]}]), json!({})).await;
    let new_id = created["result"].as_i64().unwrap();
    assert_eq!(
        odoo.record("sale.order", new_id).unwrap()["amount_total"],
        json!(15.0)
    );
    // a record demo creates for someone else violates the rule
    let r = call_kw(
        &odoo,
        &sid,
        "sale.order",
        "create",
        json!([{"partner_id": 9, "user_id": 2}]),
        json!({}),
    )
    .await;
    assert_eq!(err_name(&r), "odoo.exceptions.AccessError");
    let r = call_kw(
        &odoo,
        &sid,
        "res.partner",
        "name_search",
        json!(["azure"]),
        json!({"limit": 8}),
    )
    .await;
    assert_eq!(r["result"], json!([[8, "Azure Interior"]]));
    let r = call_kw(
        &odoo,
        &sid,
        "sale.order",
        "fields_get",
        json!([]),
        json!({"attributes": ["type", "relation", "depends", "store"]}),
    )
    .await;
    assert_eq!(
        r["result"]["amount_total"]["depends"],
        json!(["order_line.price_total"])
    );
    assert_eq!(r["result"]["order_line"]["relation"], "sale.order.line");
    let r = call_kw(
        &odoo,
        &sid,
        "sale.order",
        "read_group",
        json!([[], ["amount_total"], ["state"]]),
        json!({}),
    )
    .await;
    assert!(
        r["result"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["state_count"].as_i64().unwrap() > 0),
        "{r}"
    );
    let r = post_json(
        &odoo,
        "/web/dataset/call_button",
        Some(&sid),
        json!({"model": "sale.order", "method": "action_confirm", "args": [[5]], "kwargs": {}}),
    )
    .await
    .2;
    assert_eq!(r["result"], false);
    assert_eq!(odoo.record("sale.order", 5).unwrap()["state"], "sale");
}

#[tokio::test]
async fn transport_errors() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let c = client();
    let r = c
        .post(odoo.url("/web/dataset/call_kw"))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(r.text().await.unwrap(), "Invalid JSON data");
    let r = c
        .post(odoo.url("/web/dataset/call_kw"))
        .header("content-type", "application/json")
        .body("[{}]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.text().await.unwrap(), "Invalid JSON-RPC data");
    let r = c
        .post(odoo.url("/web/dataset/call_kw"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("is type=&#x27;json&#x27;"));
    // Python json.dumps formatting, envelope member order, id echoed
    let r = c
        .post(odoo.url("/web/webclient/version_info"))
        .json(&json!({"jsonrpc": "2.0", "method": "call", "params": {}, "id": "abc"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    assert!(
        text.starts_with("{\"jsonrpc\": \"2.0\", \"id\": \"abc\", \"result\": {"),
        "{text}"
    );
    let r = c.get(odoo.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c.get(odoo.url("/web/health")).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "pass"}));
    // all recorded, in order, with bodies
    let seen = odoo.requests();
    assert_eq!(odoo.count(), 6);
    assert_eq!(seen[0].body.as_ref(), b"{nope");
    assert_eq!(odoo.count_path("/web/dataset/call_kw"), 3);
    assert_eq!(seen[5].port, Port::Http);
    odoo.reset_counts();
    assert_eq!(odoo.count(), 0);
}

#[tokio::test]
async fn external_rpc() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let c = client();
    let rpc = |service: &str, method: &str, args: Value| json!({"jsonrpc": "2.0", "method": "call", "params": {"service": service, "method": method, "args": args}, "id": 3});
    let r: Value = c
        .post(odoo.url("/jsonrpc"))
        .json(&rpc("common", "version", json!([])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"]["server_version"], "17.0");
    assert_eq!(r["result"]["protocol_version"], 1);
    let r: Value = c
        .post(odoo.url("/jsonrpc"))
        .json(&rpc("common", "login", json!(["odoo", "admin", "wrong"])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"], false);
    let r: Value = c
        .post(odoo.url("/jsonrpc"))
        .json(&rpc("object", "execute_kw", json!(["odoo", 2, "wrong", "res.partner", "search_read", [[["is_company", "=", true]]], {"fields": ["name"], "limit": 5}])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(err_name(&r), "odoo.exceptions.AccessDenied");
    let r: Value = c
        .post(odoo.url("/jsonrpc"))
        .json(&rpc("object", "execute_kw", json!(["odoo", 6, "demo-api-key", "res.partner", "search_read", [[["is_company", "=", true], ["country_id.code", "=", "US"]]], {"fields": ["name"], "limit": 3}])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"].as_array().unwrap().len(), 3, "{r}");

    // XML-RPC
    let call = xmlrpc::encode_call(
        "execute_kw",
        &[
            json!("odoo"),
            json!(2),
            json!("admin"),
            json!("res.country"),
            json!("search_read"),
            json!([[["code", "in", ["BE", "FR"]]]]),
            json!({"fields": ["code"]}),
        ],
    );
    let r = c
        .post(odoo.url("/xmlrpc/2/object"))
        .header("content-type", "text/xml")
        .body(call)
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/xml"));
    let v = xmlrpc::decode_response(&r.text().await.unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    let call = xmlrpc::encode_call(
        "execute_kw",
        &[
            json!("odoo"),
            json!(2),
            json!("bad"),
            json!("res.country"),
            json!("read"),
            json!([[1]]),
        ],
    );
    let r = c
        .post(odoo.url("/xmlrpc/2/object"))
        .body(call)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let fault = xmlrpc::decode_response(&r.text().await.unwrap())
        .unwrap()
        .unwrap_err();
    assert_eq!(fault.0, json!(3));

    // /json/2 is off on 17, on with V18
    let r = c
        .post(odoo.url("/json/2/res.partner/search_read"))
        .bearer_auth("admin-api-key")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    odoo.set_version(OdooVersion::V18);
    let r = c
        .post(odoo.url("/json/2/res.partner/search_read"))
        .bearer_auth("demo-api-key")
        .json(&json!({"domain": [["id", "=", 8]], "fields": ["name"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!([{"id": 8, "name": "Azure Interior"}])
    );
    let r = c
        .post(odoo.url("/json/2/res.partner/search_read"))
        .bearer_auth("bad")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(odoo.url("/json/2/account.move/read"))
        .bearer_auth("demo-api-key")
        .json(&json!({"ids": [1], "fields": ["name"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["name"],
        "odoo.exceptions.AccessError"
    );
}

#[tokio::test]
async fn web_search_read_versions() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let sid = login(&odoo, "admin", "admin").await;
    let spec = json!({"name": {}, "partner_id": {"fields": {"display_name": {}, "email": {}}}, "order_line": {"fields": {"product_id": {"fields": {"display_name": {}}}}, "limit": 1}, "user_id": {}});
    let r = call_kw(&odoo, &sid, "sale.order", "web_search_read", json!([]), json!({"domain": [["state", "in", ["sale"]]], "specification": spec, "limit": 2, "order": "id", "count_limit": 10001})).await;
    let res = &r["result"];
    assert_eq!(res["length"], 4, "{r}");
    let rec = &res["records"][0];
    assert_eq!(rec["id"], 3);
    assert_eq!(
        rec["partner_id"],
        json!({"id": 9, "display_name": "Deco Addict", "email": "decoaddict@example.com"})
    );
    assert_eq!(rec["user_id"], 6);
    let lines = rec["order_line"].as_array().unwrap();
    assert!(lines[0]["product_id"]["display_name"]
        .as_str()
        .unwrap()
        .starts_with('['));
    assert!(lines.len() <= 1 || lines[1].as_object().unwrap().len() == 1);
    let r = call_kw(
        &odoo,
        &sid,
        "sale.order",
        "web_read",
        json!([[3]]),
        json!({"specification": {"partner_id": {"fields": {"display_name": {}}}}}),
    )
    .await;
    assert_eq!(
        r["result"],
        json!([{"id": 3, "partner_id": {"id": 9, "display_name": "Deco Addict"}}])
    );

    odoo.set_version(OdooVersion::V16);
    let r = call_kw(
        &odoo,
        &sid,
        "sale.order",
        "web_search_read",
        json!([]),
        json!({"domain": [["id", "=", 3]], "fields": ["name", "partner_id"]}),
    )
    .await;
    assert_eq!(
        r["result"],
        json!({"length": 1, "records": [{"id": 3, "name": "S00003", "partner_id": [9, "Deco Addict"]}]})
    );
    let r = call_kw(
        &odoo,
        &sid,
        "sale.order",
        "web_read",
        json!([[3]]),
        json!({"specification": {}}),
    )
    .await;
    assert_eq!(
        r["error"]["data"]["message"],
        "The method 'web_read' does not exist on the model 'sale.order'"
    );
    let (_, _, v) = post_json(
        &odoo,
        "/jsonrpc",
        None,
        json!({"service": "common", "method": "version", "args": []}),
    )
    .await;
    assert_eq!(
        v["result"]["server_version_info"],
        json!([16, 0, 0, "final", 0, ""])
    );
}

#[tokio::test]
async fn static_images_reports() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let c = client();
    let r = c
        .get(odoo.url("/web/static/src/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=604800");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let len = r.bytes().await.unwrap().len();
    assert!((4096..6000).contains(&len));
    let r = c
        .get(odoo.url("/web/static/src/app.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = c
        .get(odoo.url("/web/assets/abc123/web.assets_web.min.css"))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    let r = c
        .get(odoo.url("/web/image/res.partner/8/image_128"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["content-security-policy"], "default-src 'none'");
    assert!(r.headers().contains_key("etag"));
    assert!(r.bytes().await.unwrap().starts_with(b"\x89PNG"));
    let r = c
        .get(odoo.url("/web/content/42?download=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let r = c
        .get(odoo.url("/report/pdf/sale.report_saleorder/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(r.bytes().await.unwrap().len() >= 20 * 1024);
    for p in ["/web/database/manager", "/web/database/selector"] {
        assert_eq!(c.get(odoo.url(p)).send().await.unwrap().status(), 200);
    }
    let r = c
        .get(odoo.url("/__fake/echo?a=1"))
        .header("x-forwarded-for", "1.2.3.4")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(r["headers"]["x-forwarded-for"], "1.2.3.4");
    assert_eq!(r["query"], "a=1");
    let r = c.get(odoo.url("/__fake/redirect")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/web");
    let r = c.get(odoo.url("/__fake/set-cookie")).send().await.unwrap();
    assert_eq!(r.headers().get_all("set-cookie").iter().count(), 2);
    // login form → 303 with cookie
    let r = c
        .post(odoo.url("/web/login"))
        .form(&[
            ("login", "admin"),
            ("password", "admin"),
            ("csrf_token", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("session_id="));
}

#[tokio::test]
async fn upload_5mb() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let data: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let expected_sha1 = fake_odoo::assets::sha1_hex(&data);
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", "x")
        .text("model", "res.partner")
        .text("id", "8")
        .part(
            "ufile",
            reqwest::multipart::Part::bytes(data.clone())
                .file_name("big.bin")
                .mime_str("application/octet-stream")
                .unwrap(),
        );
    let r = client()
        .post(odoo.url("/web/binary/upload_attachment"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v[0]["filename"], "big.bin");
    assert_eq!(v[0]["size"], 5 * 1024 * 1024);
    assert_eq!(v[0]["mimetype"], "application/octet-stream");
    let up = &odoo.uploads()[0];
    assert_eq!(up.sha1, expected_sha1);
    assert_eq!(up.model.as_deref(), Some("res.partner"));
    let seen = odoo.last_request().unwrap();
    assert!(seen.body_len > 5 * 1024 * 1024);
}

#[tokio::test]
async fn websocket_bus() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let sid = login(&odoo, "demo", "demo").await;
    let mut req = odoo.ws_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", "http://localhost:8069".parse().unwrap());
    req.headers_mut()
        .insert("cookie", format!("session_id={sid}").parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(Message::text(
        json!({"event_name": "subscribe", "data": {"channels": ["odoo-chan"], "last": 41}})
            .to_string(),
    ))
    .await
    .unwrap();
    let m = ws.next().await.unwrap().unwrap();
    let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
    assert_eq!(
        v,
        json!([{"id": 42, "message": {"type": "bus.subscribed", "payload": {"channels": ["odoo-chan"], "uid": 6}}}])
    );
    ws.send(Message::text(
        json!({"event_name": "update_presence", "data": {"inactivity_period": 1}}).to_string(),
    ))
    .await
    .unwrap();
    let v: Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(v[0]["message"]["type"], "echo");
    assert_eq!(v[0]["message"]["payload"], json!({"inactivity_period": 1}));
    ws.send(Message::Ping(b"hi".to_vec().into())).await.unwrap();
    let pong = ws.next().await.unwrap().unwrap();
    assert!(matches!(pong, Message::Pong(_)));
    let id = odoo.notify("odoo-chan", "simple_notification", json!({"title": "t"}));
    let v: Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(
        v,
        json!([{"id": id, "message": {"type": "simple_notification", "payload": {"title": "t"}}}])
    );
    assert_eq!(odoo.ws_messages().len(), 2);
    // logout → next message closes with 4001
    odoo.expire_all_sessions();
    ws.send(Message::text(
        json!({"event_name": "subscribe", "data": {"channels": [], "last": 0}}).to_string(),
    ))
    .await
    .unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Close(Some(f)) => assert_eq!(u16::from(f.code), 4001),
        other => panic!("expected close, got {other:?}"),
    }

    // HTTP port refuses, bad handshakes are rejected
    let mut req = format!("ws://{}/websocket", odoo.addr())
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", "http://localhost".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
        other => panic!("expected 400, got {:?}", other.map(|x| x.1)),
    }
    let req = odoo.ws_url().into_client_request().unwrap(); // no Origin
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
        other => panic!("expected 400, got {:?}", other.map(|x| x.1)),
    }
    let c = client();
    let r = c
        .get(odoo.bus_url("/websocket"))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("origin", "http://x")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "12")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 426);
    assert_eq!(r.headers()["sec-websocket-version"], "13");
    let (_, _, v) = {
        let r = c
            .post(odoo.bus_url("/longpolling/poll"))
            .json(&json!({"jsonrpc": "2.0", "id": 1, "params": {"channels": [], "last": 0}}))
            .send()
            .await
            .unwrap();
        (r.status(), (), r.json::<Value>().await.unwrap())
    };
    assert_eq!(v["result"], json!([]));
    assert!(odoo.count_port(Port::Bus) >= 4);
}

#[tokio::test]
async fn delay_and_slow() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let c = client();
    let t = Instant::now();
    c.get(odoo.url("/__fake/slow?ms=150")).send().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    odoo.set_delay(Duration::from_millis(200));
    let t = Instant::now();
    c.get(odoo.url("/web/health")).send().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(200));
    // recorded before answered
    odoo.set_delay(Duration::from_millis(500));
    let url = odoo.url("/web/health");
    let h = tokio::spawn(async move { client().get(url).send().await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(odoo.count_path("/web/health"), 2);
    assert_eq!(h.await.unwrap().unwrap(), 200);
}

/// Works from a plain #[test] (no runtime); keep-alive off → Connection: close.
#[test]
fn plain_thread_raw_http() {
    let odoo = FakeOdoo::start(Dataset::demo());
    odoo.set_keep_alive(false);
    let mut s = std::net::TcpStream::connect(odoo.addr()).unwrap();
    s.write_all(b"GET /web/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.to_ascii_lowercase().contains("connection: close"));
    assert!(out.ends_with("{\"status\": \"pass\"}"));
    assert_eq!(odoo.count(), 1);
    odoo.stop();
}

#[test]
fn domain_evaluator() {
    let ds = Dataset::demo();
    let partners = ds.model("res.partner").unwrap();
    let azure = partners.records.get(&8).unwrap();
    let ev = |d: Value| eval_domain(&d, azure, partners, &ds).unwrap();
    assert!(ev(json!([])));
    assert!(ev(json!([
        ["name", "=", "Azure Interior"],
        ["is_company", "=", true]
    ])));
    assert!(!ev(json!([
        ["name", "=", "Azure Interior"],
        ["is_company", "=", false]
    ])));
    assert!(ev(json!(["|", ["name", "=", "nope"], ["id", "=", 8]])));
    assert!(!ev(json!(["&", ["name", "=", "nope"], ["id", "=", 8]])));
    assert!(ev(json!(["!", ["name", "=", "nope"]])));
    assert!(ev(json!([
        "&",
        "!",
        ["id", "=", 1],
        "|",
        ["id", "=", 2],
        ["id", "=", 8]
    ])));
    assert!(ev(json!([["id", "in", [1, 8]]])));
    assert!(!ev(json!([["id", "not in", [1, 8]]])));
    assert!(ev(json!([["name", "ilike", "azure"]])));
    assert!(!ev(json!([["name", "like", "azure"]])));
    assert!(ev(json!([["name", "=ilike", "azure%"]])));
    assert!(ev(json!([["name", "not ilike", "deco"]])));
    assert!(ev(json!([["country_id.code", "=", "US"]])));
    assert!(ev(json!([["country_id", "=", 5]])));
    assert!(ev(json!([["country_id", "ilike", "united"]])));
    assert!(ev(json!([["child_ids.name", "ilike", "brandon"]])));
    assert!(ev(json!([["child_ids", "!=", false]])));
    assert!(ev(json!([["parent_id", "=", false]])));
    assert!(ev(json!([[
        "user_id.partner_id.name",
        "=",
        "Mitchell Admin"
    ]])));
    assert!(ev(json!([
        ["credit_limit", ">", 700],
        ["credit_limit", "<=", 800]
    ])));
    assert!(ev(json!([[
        "child_ids",
        "any",
        [["name", "=", "Nicole Ford"]]
    ]])));
    assert!(ev(json!([["write_date", ">=", "2024-01-01 00:00:00"]])));
    assert!(ev(json!([[1, "=", 1]])));
    assert!(!ev(json!([[0, "=", 1]])));
    assert!(eval_domain(&json!([["bogus", "=", 1]]), azure, partners, &ds).is_err());
    assert!(eval_domain(&json!(["|", ["id", "=", 1]]), azure, partners, &ds).is_err());
    // the demo rule with the uid placeholder
    let orders = ds.model("sale.order").unwrap();
    let rule = fake_odoo::domain::substitute_uid(&json!([["user_id", "=", "uid"]]), 6, &[1]);
    let own: Vec<i64> = orders
        .records
        .iter()
        .filter(|(_, r)| eval_domain(&rule, r, orders, &ds).unwrap())
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(own, vec![3, 5, 8]);
}

/// A 64 MiB upload streams through the fake without a cap (Odoo 16 has none).
#[tokio::test]
async fn upload_64mib_streams() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let size = 64 * 1024 * 1024usize;
    let chunk = bytes::Bytes::from(vec![7u8; 1024 * 1024]);
    let stream = futures_util::stream::iter(
        (0..size / chunk.len()).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    let part = reqwest::multipart::Part::stream_with_length(
        reqwest::Body::wrap_stream(stream),
        size as u64,
    )
    .file_name("huge.bin");
    let form = reqwest::multipart::Form::new().part("ufile", part);
    let t = Instant::now();
    let r = client()
        .post(odoo.url("/web/binary/upload_attachment"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v[0]["size"], size);
    eprintln!("64 MiB upload took {:?}", t.elapsed());
}
