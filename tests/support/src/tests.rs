//! What BridgeCore's dependency-graph learner and cache tests rely on: `ir.model`, `fields_get`
//! attributes, stored computes recomputed on writes, and per-call counts.

use serde_json::{json, Value};

use crate::{Dataset, FakeOdoo, Field, Model};

async fn post(odoo: &FakeOdoo, path: &str, sid: Option<&str>, params: Value) -> Value {
    let mut req = reqwest::Client::new()
        .post(odoo.url(path))
        .json(&json!({"jsonrpc": "2.0", "method": "call", "params": params, "id": 1}));
    if let Some(sid) = sid {
        req = req.header("cookie", format!("session_id={sid}"));
    }
    req.send().await.unwrap().json().await.unwrap()
}

/// `object.execute_kw` over `/jsonrpc`.
async fn execute_kw(
    odoo: &FakeOdoo,
    uid: i64,
    secret: &str,
    model: &str,
    method: &str,
    args: Value,
    kwargs: Value,
) -> Value {
    post(
        odoo,
        "/jsonrpc",
        None,
        json!({"service": "object", "method": "execute_kw",
               "args": ["odoo", uid, secret, model, method, args, kwargs]}),
    )
    .await
}

async fn call_kw(
    odoo: &FakeOdoo,
    sid: &str,
    model: &str,
    method: &str,
    args: Value,
    kwargs: Value,
) -> Value {
    post(
        odoo,
        &format!("/web/dataset/call_kw/{model}/{method}"),
        Some(sid),
        json!({"model": model, "method": method, "args": args, "kwargs": kwargs}),
    )
    .await
}

fn listed(answer: &Value) -> Vec<String> {
    answer["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|r| r["model"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn ir_model_lists_every_model_and_follows_additions() {
    let mut ds = Dataset::demo();
    let mut expected: Vec<String> = ds.models.keys().cloned().collect();
    expected.sort();
    let ir = ds.model("ir.model").unwrap();
    let mut names: Vec<String> = ir
        .records
        .values()
        .map(|r| r["model"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, expected);
    assert!(names.contains(&"ir.model".to_string()));
    let before = ir.records.len();

    ds.add_model(Model::new("x.thing", "Thing").field("name", Field::char("Name")));
    let ir = ds.model("ir.model").unwrap();
    assert_eq!(ir.records.len(), before + 1);
    let thing = ir
        .records
        .values()
        .find(|r| r["model"] == "x.thing")
        .unwrap();
    assert_eq!(thing["name"], "Thing");
    // Replacing a model keeps one record.
    ds.add_model(Model::new("x.thing", "Thing 2"));
    assert_eq!(ds.model("ir.model").unwrap().records.len(), before + 1);
    // Datasets built by hand have no ir.model until asked.
    let mut bare = Dataset::new();
    bare.add_model(Model::new("a.b", "AB"));
    assert!(bare.model("ir.model").is_none());
    bare.add_ir_model();
    assert_eq!(bare.model("ir.model").unwrap().records.len(), 2);
}

#[tokio::test]
async fn ir_model_is_readable_by_internal_users() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let mut expected: Vec<String> = odoo.with_data(|ds| ds.models.keys().cloned().collect());
    expected.sort();

    // /jsonrpc, the service-credential path the learner uses (demo: an internal user).
    let r = execute_kw(
        &odoo,
        6,
        "demo",
        "ir.model",
        "search_read",
        json!([[]]),
        json!({"fields": ["model"]}),
    )
    .await;
    assert_eq!(listed(&r), expected, "ordered by `model`");
    let first = r["result"][0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, vec!["id", "model"], "{first:?}");
    let r = execute_kw(
        &odoo,
        2,
        "admin-api-key",
        "ir.model",
        "search_read",
        json!([[["model", "=", "sale.order"]]]),
        json!({"fields": ["model", "name"]}),
    )
    .await;
    assert_eq!(r["result"][0]["name"], "Sales Order", "{r}");

    // call_kw on a web session.
    let sid = odoo.new_session(6);
    let r = call_kw(
        &odoo,
        &sid,
        "ir.model",
        "search_read",
        json!([]),
        json!({"domain": [], "fields": ["model", "name"]}),
    )
    .await;
    assert_eq!(listed(&r), expected);

    // Read-only for internal users.
    let r = call_kw(
        &odoo,
        &sid,
        "ir.model",
        "create",
        json!([{"model": "x.y", "name": "XY"}]),
        json!({}),
    )
    .await;
    assert_eq!(
        r["error"]["data"]["name"], "odoo.exceptions.AccessError",
        "{r}"
    );

    // A model added at run time is listed.
    odoo.with_data(|ds| {
        ds.add_model(Model::new("x.late", "Late"));
    });
    let r = execute_kw(
        &odoo,
        6,
        "demo",
        "ir.model",
        "search_read",
        json!([[]]),
        json!({"fields": ["model"]}),
    )
    .await;
    assert!(listed(&r).contains(&"x.late".to_string()));
}

#[tokio::test]
async fn fields_get_reports_and_filters_attributes() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let attrs = json!([
        "type",
        "relation",
        "related",
        "store",
        "depends",
        "relation_field"
    ]);
    let r = execute_kw(
        &odoo,
        2,
        "admin",
        "sale.order",
        "fields_get",
        json!([]),
        json!({"attributes": attrs}),
    )
    .await;
    let f = r["result"].as_object().unwrap_or_else(|| panic!("{r}"));
    let allowed: Vec<&str> = attrs
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for (name, d) in f {
        for k in d.as_object().unwrap().keys() {
            assert!(allowed.contains(&k.as_str()), "{name}.{k} not asked for");
        }
    }
    assert_eq!(
        f["order_line"],
        json!({"type": "one2many", "relation": "sale.order.line", "relation_field": "order_id",
               "store": false, "depends": []})
    );
    assert_eq!(
        f["amount_total"],
        json!({"type": "monetary", "store": true, "depends": ["order_line.price_total"]})
    );
    assert_eq!(
        f["partner_country_id"],
        json!({"type": "many2one", "relation": "res.country", "related": "partner_id.country_id",
               "store": false, "depends": ["partner_id.country_id"]})
    );
    assert_eq!(
        f["partner_id"],
        json!({"type": "many2one", "relation": "res.partner", "store": true, "depends": []})
    );

    // Without `attributes`: everything, `string` included; through call_kw as well.
    let sid = odoo.new_session(6);
    let r = call_kw(
        &odoo,
        &sid,
        "sale.order.line",
        "fields_get",
        json!([]),
        json!({}),
    )
    .await;
    let f = &r["result"];
    assert_eq!(f["price_total"]["string"], "Total", "{r}");
    assert_eq!(
        f["price_total"]["depends"],
        json!(["product_uom_qty", "price_unit"])
    );
    assert_eq!(f["order_id"]["relation"], "sale.order");
    assert_eq!(f["order_id"]["type"], "many2one");
}

#[tokio::test]
async fn writing_a_line_changes_its_order_total() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let total = |odoo: &FakeOdoo, id: i64| {
        odoo.record("sale.order", id).unwrap()["amount_total"]
            .as_f64()
            .unwrap()
    };
    // Order 3 (demo's): its first line.
    let line = odoo.with_data(|ds| {
        *ds.model("sale.order.line")
            .unwrap()
            .records
            .iter()
            .find(|(_, r)| r["order_id"] == 3)
            .unwrap()
            .0
    });
    let read_total = |r: &Value| r["result"][0]["amount_total"].as_f64().unwrap();
    let read = |uid: i64, secret: &'static str| {
        execute_kw(
            &odoo,
            uid,
            secret,
            "sale.order",
            "read",
            json!([[3]]),
            json!({"fields": ["amount_total", "write_date"]}),
        )
    };
    let before = read(6, "demo").await;
    let before_total = read_total(&before);
    assert_eq!(before_total, total(&odoo, 3));
    let lines_total: f64 = odoo.with_data(|ds| {
        ds.model("sale.order.line")
            .unwrap()
            .records
            .values()
            .filter(|r| r["order_id"] == 3)
            .map(|r| r["price_total"].as_f64().unwrap())
            .sum()
    });
    assert!((before_total - lines_total).abs() < 1e-6);
    let old = odoo.record("sale.order.line", line).unwrap();
    let (qty, price) = (
        old["product_uom_qty"].as_f64().unwrap(),
        old["price_unit"].as_f64().unwrap(),
    );

    // Through /jsonrpc as the demo user (their own order).
    let r = execute_kw(
        &odoo,
        6,
        "demo",
        "sale.order.line",
        "write",
        json!([[line], {"product_uom_qty": qty + 2.0}]),
        json!({}),
    )
    .await;
    assert_eq!(r["result"], true, "{r}");
    let after = read(6, "demo").await;
    let expected = before_total + 2.0 * price;
    assert!(
        (read_total(&after) - expected).abs() < 1e-6,
        "{before} → {after}"
    );
    assert_ne!(
        after["result"][0]["write_date"], before["result"][0]["write_date"],
        "the recompute rewrites the order"
    );

    // Through call_kw: a new price.
    let sid = odoo.new_session(6);
    let r = call_kw(
        &odoo,
        &sid,
        "sale.order.line",
        "write",
        json!([[line], {"price_unit": price + 10.0}]),
        json!({}),
    )
    .await;
    assert_eq!(r["result"], true, "{r}");
    let expected = expected + (qty + 2.0) * 10.0;
    assert!((read_total(&read(6, "demo").await) - expected).abs() < 1e-6);

    // Creating and deleting lines too (admin: demo may not unlink).
    let r = execute_kw(
        &odoo,
        2,
        "admin",
        "sale.order.line",
        "create",
        json!([{"order_id": 3, "name": "Extra", "product_uom_qty": 1.0, "price_unit": 5.0}]),
        json!({}),
    )
    .await;
    let new_line = r["result"].as_i64().unwrap_or_else(|| panic!("{r}"));
    assert!((read_total(&read(6, "demo").await) - (expected + 5.0)).abs() < 1e-6);
    let r = execute_kw(
        &odoo,
        2,
        "admin",
        "sale.order.line",
        "unlink",
        json!([[new_line]]),
        json!({}),
    )
    .await;
    assert_eq!(r["result"], true, "{r}");
    assert!((read_total(&read(6, "demo").await) - expected).abs() < 1e-6);
}

#[tokio::test]
async fn calls_are_counted_per_model_and_method() {
    let odoo = FakeOdoo::start(Dataset::demo().with_version(crate::OdooVersion::V18));
    for model in ["sale.order", "res.partner"] {
        execute_kw(
            &odoo,
            2,
            "admin",
            model,
            "fields_get",
            json!([]),
            json!({"attributes": ["type"]}),
        )
        .await;
    }
    let sid = odoo.new_session(2);
    call_kw(
        &odoo,
        &sid,
        "res.partner",
        "search_read",
        json!([]),
        json!({}),
    )
    .await;
    reqwest::Client::new()
        .post(odoo.url("/json/2/res.partner/search_count"))
        .header("authorization", "bearer admin-api-key")
        .json(&json!({"domain": []}))
        .send()
        .await
        .unwrap();
    let call = crate::xmlrpc::encode_call(
        "execute_kw",
        &[
            json!("odoo"),
            json!(2),
            json!("admin"),
            json!("sale.order"),
            json!("search"),
            json!([[]]),
        ],
    );
    reqwest::Client::new()
        .post(odoo.url("/xmlrpc/2/object"))
        .header("content-type", "text/xml")
        .body(call)
        .send()
        .await
        .unwrap();
    post(
        &odoo,
        "/jsonrpc",
        None,
        json!({"service": "common", "method": "login", "args": ["odoo", "admin", "admin"]}),
    )
    .await;

    assert_eq!(odoo.count_calls("*", "fields_get"), 2);
    assert_eq!(odoo.count_calls("sale.order", "fields_get"), 1);
    assert_eq!(odoo.count_calls("res.partner", "*"), 3);
    assert_eq!(odoo.count_calls("sale.order", "search"), 1);
    assert_eq!(odoo.count_calls("*", "*"), 5);
    assert_eq!(odoo.count_path("/jsonrpc"), 3);
    assert_eq!(odoo.count_path("/web/dataset/call_kw/res.partner"), 1);
}

#[tokio::test]
async fn method_delays_and_rpc_cookies() {
    let odoo = FakeOdoo::start(Dataset::demo());
    let sid = odoo.new_session(2);
    odoo.set_method_delay("search_read", std::time::Duration::from_millis(300));
    let t = std::time::Instant::now();
    call_kw(
        &odoo,
        &sid,
        "res.partner",
        "search_count",
        json!([[]]),
        json!({}),
    )
    .await;
    assert!(t.elapsed() < std::time::Duration::from_millis(250));
    let t = std::time::Instant::now();
    execute_kw(
        &odoo,
        2,
        "admin",
        "res.partner",
        "search_read",
        json!([[]]),
        json!({"limit": 1}),
    )
    .await;
    assert!(t.elapsed() >= std::time::Duration::from_millis(300));
    odoo.set_method_delay("search_read", std::time::Duration::ZERO);
    let t = std::time::Instant::now();
    call_kw(
        &odoo,
        &sid,
        "res.partner",
        "search_read",
        json!([[]]),
        json!({"limit": 1}),
    )
    .await;
    assert!(t.elapsed() < std::time::Duration::from_millis(250));

    let cookies = |odoo: &FakeOdoo, sid: String| {
        let url = odoo.url("/web/dataset/call_kw/res.partner/search_count");
        async move {
            reqwest::Client::new()
                .post(url)
                .header("cookie", format!("session_id={sid}"))
                .json(&json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params":
                    {"model": "res.partner", "method": "search_count", "args": [[]], "kwargs": {}}}))
                .send()
                .await
                .unwrap()
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert!(cookies(&odoo, sid.clone()).await.is_empty());
    odoo.set_rpc_cookie(true);
    assert_eq!(cookies(&odoo, sid.clone()).await, vec![crate::RPC_COOKIE]);
    odoo.set_rpc_cookie(false);
    assert!(cookies(&odoo, sid).await.is_empty());
}
