//! Tests for [`super::OptimizerFilter`] and the settings merge: what the filter sends to Odoo
//! as the caller (recorded by an in-test [`OdooClient`]), what it answers, and what it
//! forwards.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::*;
use crate::call::{Call, Credential};
use crate::filter::{Decision, Exchange, Filter};
use crate::jsonrpc::{parse, FaultCode};
use crate::odoo::{OdooClient, OdooError, OdooReply};
use crate::route::endpoint;

/// A fake Odoo: `read` answers `{"id": id}` per id (ids in `fail` raise an AccessError),
/// `fields_get` a small schema; every call is recorded, and in-flight calls are counted.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<Value>>,
    fail: Vec<i64>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Fake {
    fn failing(ids: &[i64]) -> Self {
        Fake {
            fail: ids.to_vec(),
            ..Fake::default()
        }
    }

    fn calls(&self) -> Vec<Value> {
        self.calls.lock().unwrap().clone()
    }

    async fn answer(&self, method: &str, args: &[Value], json2: bool) -> Result<Value, OdooError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        match method {
            "read" => {
                let ids: Vec<i64> = args[0]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_i64().unwrap())
                    .collect();
                if ids.iter().any(|id| self.fail.contains(id)) {
                    return Err(OdooError::Odoo {
                        code: if json2 { 403 } else { 200 },
                        name: "odoo.exceptions.AccessError".into(),
                        message: "You are not allowed to access 'Contact' records.".into(),
                    });
                }
                Ok(Value::Array(
                    ids.iter().map(|id| json!({"id": id})).collect(),
                ))
            }
            "fields_get" => Ok(json!({
                "id": {"type": "integer", "store": true},
                "name": {"type": "char", "store": true},
                "image_1920": {"type": "binary", "store": true},
                "display_name": {"type": "char", "store": false},
                "country_id": {"type": "many2one", "relation": "res.country", "store": true},
            })),
            _ => Ok(Value::Null),
        }
    }
}

#[async_trait]
impl OdooClient for Fake {
    async fn json_rpc(
        &self,
        path: &str,
        params: Value,
        session_id: Option<&str>,
    ) -> Result<OdooReply, OdooError> {
        self.calls
            .lock()
            .unwrap()
            .push(json!({"path": path, "params": params, "session": session_id}));
        let (method, args) = if path == "/jsonrpc" {
            let a = params["args"].as_array().unwrap().clone();
            (
                a[4].as_str().unwrap().to_owned(),
                a[5].as_array().unwrap().clone(),
            )
        } else {
            (
                params["method"].as_str().unwrap().to_owned(),
                params["args"].as_array().unwrap().clone(),
            )
        };
        let result = self.answer(&method, &args, false).await?;
        Ok(OdooReply {
            result,
            session_id: None,
        })
    }

    async fn json2(
        &self,
        model: &str,
        method: &str,
        body: Value,
        key: &str,
        _db: Option<&str>,
    ) -> Result<Value, OdooError> {
        self.calls
            .lock()
            .unwrap()
            .push(json!({"json2": format!("{model}/{method}"), "body": body, "key": key}));
        let args = body
            .get("ids")
            .cloned()
            .map(|ids| vec![ids])
            .unwrap_or_default();
        self.answer(method, &args, true).await
    }
}

fn head(path: &str) -> http::request::Parts {
    http::Request::post(path)
        .header("cookie", "session_id=sid-web")
        .header("authorization", "bearer key-1")
        .body(())
        .unwrap()
        .into_parts()
        .0
}

fn call_kw(model: &str, method: &str, args: Value, kwargs: Value) -> Call {
    let path = format!("/web/dataset/call_kw/{model}/{method}");
    let body = json!({"jsonrpc": "2.0", "method": "call", "id": 9, "params":
        {"model": model, "method": method, "args": args, "kwargs": kwargs}});
    parse(&endpoint(&path), &head(&path), body.to_string().as_bytes()).unwrap()
}

fn execute_kw(model: &str, method: &str, args: Value, kwargs: Value) -> Call {
    let body = json!({"jsonrpc": "2.0", "method": "call", "id": 3, "params":
        {"service": "object", "method": "execute_kw",
         "args": ["db", 6, "pw", model, method, args, kwargs]}});
    parse(
        &endpoint("/jsonrpc"),
        &head("/jsonrpc"),
        body.to_string().as_bytes(),
    )
    .unwrap()
}

fn json2(model: &str, method: &str, body: Value) -> Call {
    let path = format!("/json/2/{model}/{method}");
    parse(&endpoint(&path), &head(&path), body.to_string().as_bytes()).unwrap()
}

fn settings() -> Optimizer {
    Optimizer {
        caps: LimitCaps::new(BTreeMap::from([
            ("read".to_owned(), 100),
            ("search_read".to_owned(), 200),
        ])),
        ..Optimizer::default()
    }
}

fn filter(opt: Optimizer) -> OptimizerFilter {
    OptimizerFilter::new(
        Arc::new(OptimizerSet::new(opt)),
        Arc::new(FieldsCatalog::default()),
    )
}

/// Runs the request side at `path` (the request's own URL) and returns the decision and the
/// rewrites noted.
async fn run(
    f: &OptimizerFilter,
    odoo: &dyn OdooClient,
    path: &str,
    tenant: &str,
    call: &Call,
) -> (Decision, Vec<&'static str>) {
    let parts = head(path);
    let mut state = http::Extensions::new();
    let mut ex = Exchange {
        request: &parts,
        client_ip: Ipv4Addr::LOCALHOST.into(),
        tenant,
        request_id: "r1",
        tls: false,
        odoo,
        state: &mut state,
    };
    let decision = f.on_request(&mut ex, call).await;
    let tags = rewrites(&state).map(|r| r.0.clone()).unwrap_or_default();
    (decision, tags)
}

fn ids(n: i64) -> Value {
    Value::Array((1..=n).rev().map(Value::from).collect())
}

fn header<'a>(reply: &'a crate::filter::Reply, name: &str) -> Option<&'a str> {
    reply
        .headers
        .iter()
        .find(|(n, _)| n.as_str() == name)
        .and_then(|(_, v)| v.to_str().ok())
}

#[tokio::test]
async fn a_large_read_is_answered_from_concurrent_batches_as_the_caller() {
    let odoo = Fake::default();
    let f = filter(Optimizer {
        read_concurrency: 2,
        ..settings()
    });
    let mut call = call_kw(
        "res.partner",
        "read",
        json!([ids(250)]),
        json!({"fields": ["name"]}),
    );
    call.credential = Credential::Session("sid-token".into());
    let (decision, tags) = run(&f, &odoo, "/api/v1/systems/t/odoo/read", "t", &call).await;
    let Decision::Respond(reply) = decision else {
        panic!("expected an answer, got {decision:?}")
    };
    assert_eq!(tags, ["batch"]);
    assert_eq!(header(&reply, REWRITE_HEADER), Some("batch"));
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["id"], 9);
    let got: Vec<i64> = body["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, (1..=250).rev().collect::<Vec<_>>());
    let calls = odoo.calls();
    assert_eq!(calls.len(), 3);
    for (c, size) in calls.iter().zip([100, 100, 50]) {
        assert_eq!(c["session"], "sid-token");
        assert_eq!(c["path"], "/web/dataset/call_kw/res.partner/read");
        assert_eq!(c["params"]["args"][0].as_array().unwrap().len(), size);
        assert_eq!(c["params"]["kwargs"], json!({"fields": ["name"]}));
    }
    assert!(odoo.max_in_flight.load(Ordering::SeqCst) <= 2);
    assert!(
        odoo.max_in_flight.load(Ordering::SeqCst) >= 2,
        "batches ran one by one"
    );
}

#[tokio::test]
async fn batches_use_the_callers_password_or_api_key() {
    let odoo = Fake::default();
    let f = filter(settings());
    let call = execute_kw("res.partner", "read", json!([ids(150)]), json!({}));
    let (decision, _) = run(&f, &odoo, "/jsonrpc", "t", &call).await;
    let Decision::Respond(reply) = decision else {
        panic!("{decision:?}")
    };
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["id"], 3);
    assert_eq!(body["result"].as_array().unwrap().len(), 150);
    let calls = odoo.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["path"], "/jsonrpc");
    assert_eq!(
        calls[0]["params"]["args"].as_array().unwrap()[..5],
        [
            json!("db"),
            json!(6),
            json!("pw"),
            json!("res.partner"),
            json!("read")
        ]
    );

    let odoo = Fake::default();
    let call = json2(
        "res.partner",
        "read",
        json!({"ids": ids(101), "fields": ["name"]}),
    );
    let (decision, _) = run(&f, &odoo, "/json/2/res.partner/read", "t", &call).await;
    let Decision::Respond(reply) = decision else {
        panic!("{decision:?}")
    };
    // /json/2 answers the bare result.
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body.as_array().unwrap().len(), 101);
    let calls = odoo.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1]["key"], "key-1");
    assert_eq!(calls[1]["body"], json!({"ids": [1], "fields": ["name"]}));
}

#[tokio::test]
async fn an_error_in_any_batch_is_the_answer() {
    let odoo = Fake::failing(&[120]);
    let f = filter(settings());
    let call = execute_kw("res.partner", "read", json!([ids(250)]), json!({}));
    let (decision, _) = run(&f, &odoo, "/jsonrpc", "t", &call).await;
    let Decision::Respond(reply) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(reply.status, 200);
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["id"], 3);
    assert!(body.get("result").is_none());
    assert_eq!(body["error"]["code"], 200);
    assert_eq!(body["error"]["message"], "Odoo Server Error");
    assert_eq!(body["error"]["data"]["name"], "odoo.exceptions.AccessError");

    let call = json2("res.partner", "read", json!({"ids": ids(250)}));
    let (decision, _) = run(&f, &odoo, "/json/2/res.partner/read", "t", &call).await;
    let Decision::Respond(reply) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(reply.status, 403);
    let body: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["name"], "odoo.exceptions.AccessError");
}

#[tokio::test]
async fn reads_are_not_split_where_caps_are_off_or_unsafe() {
    let odoo = Fake::default();
    let f = filter(settings());
    // The web client's cookie route: caps off by default.
    let call = call_kw("res.partner", "read", json!([ids(250)]), json!({}));
    let (decision, _) = run(
        &f,
        &odoo,
        "/web/dataset/call_kw/res.partner/read",
        "t",
        &call,
    )
    .await;
    assert!(matches!(decision, Decision::Continue), "{decision:?}");
    // No credential: nothing to ask Odoo as.
    let mut call = call_kw("res.partner", "read", json!([ids(250)]), json!({}));
    call.credential = Credential::None;
    let (decision, _) = run(&f, &odoo, "/api/v1/systems/t/odoo/read", "t", &call).await;
    assert!(matches!(decision, Decision::Continue), "{decision:?}");
    // Dotted fields are left to the expansion filter.
    let call = execute_kw(
        "res.partner",
        "read",
        json!([ids(250), ["country_id.code"]]),
        json!({}),
    );
    let (decision, _) = run(&f, &odoo, "/jsonrpc", "t", &call).await;
    assert!(matches!(decision, Decision::Continue), "{decision:?}");
    // Writes are never split.
    let call = execute_kw(
        "res.partner",
        "write",
        json!([ids(250), {"name": "x"}]),
        json!({}),
    );
    let (decision, _) = run(&f, &odoo, "/jsonrpc", "t", &call).await;
    assert!(matches!(decision, Decision::Continue), "{decision:?}");
    assert!(odoo.calls().is_empty());
}

#[tokio::test]
async fn a_tenant_can_switch_caps_off() {
    let odoo = Fake::default();
    let set = OptimizerSet::new(settings()).with_tenant(
        "quiet",
        &OptimizerOverrides {
            limit_caps: CapRoutesOverrides {
                rpc: Some(false),
                ..CapRoutesOverrides::default()
            },
            ..OptimizerOverrides::default()
        },
    );
    let f = OptimizerFilter::new(Arc::new(set), Arc::new(FieldsCatalog::default()));
    let call = execute_kw(
        "res.partner",
        "search_read",
        json!([[]]),
        json!({"limit": 1000}),
    );
    let (decision, _) = run(&f, &odoo, "/jsonrpc", "quiet", &call).await;
    assert!(matches!(decision, Decision::Continue), "{decision:?}");
    let (decision, tags) = run(&f, &odoo, "/jsonrpc", "other", &call).await;
    let Decision::Rewrite(new) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(tags, ["limit"]);
    assert_eq!(new.kwargs()["limit"], 200);
}

#[tokio::test]
async fn exclude_binary_lists_the_readable_stored_non_binary_fields() {
    let odoo = Fake::default();
    let f = filter(Optimizer {
        default_fields: DefaultFields::ExcludeBinary,
        ..settings()
    });
    let wanted = json!(["country_id", "id", "name"]);
    // kwargs, positional `[]`, `execute` without the slot, `/json/2`.
    let call = execute_kw(
        "res.partner",
        "search_read",
        json!([[]]),
        json!({"limit": 5}),
    );
    let (decision, tags) = run(&f, &odoo, "/jsonrpc", "t", &call).await;
    let Decision::Rewrite(new) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(tags, ["fields"]);
    assert_eq!(new.kwargs()["fields"], wanted);
    let fields_get = &odoo.calls()[0];
    assert_eq!(fields_get["params"]["args"][4], "fields_get");
    assert_eq!(fields_get["params"]["args"][2], "pw");

    let call = call_kw("res.partner", "read", json!([[1, 2], []]), json!({}));
    let (decision, _) = run(&f, &odoo, "/api/v1/systems/t/odoo/read", "t", &call).await;
    let Decision::Rewrite(new) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(new.args()[1], wanted);

    let body = json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params":
        {"service": "object", "method": "execute", "args": ["db", 6, "pw", "res.partner", "read", [1]]}});
    let call = parse(
        &endpoint("/jsonrpc"),
        &head("/jsonrpc"),
        body.to_string().as_bytes(),
    )
    .unwrap();
    let (decision, _) = run(&f, &odoo, "/jsonrpc", "t", &call).await;
    let Decision::Rewrite(new) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(new.args(), [json!([1]), wanted.clone()]);

    let call = json2("res.partner", "search_read", json!({"domain": []}));
    let (decision, _) = run(&f, &odoo, "/json/2/res.partner/search_read", "t", &call).await;
    let Decision::Rewrite(new) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(new.kwargs()["fields"], wanted);
    // One fields_get per credential (password, session, API key), each asked once.
    assert_eq!(odoo.calls().len(), 3);

    // Named fields, and other methods, are left alone.
    let call = execute_kw(
        "res.partner",
        "search_read",
        json!([[]]),
        json!({"fields": ["name"], "limit": 5}),
    );
    let (decision, _) = run(&f, &odoo, "/jsonrpc", "t", &call).await;
    assert!(matches!(decision, Decision::Continue), "{decision:?}");
    let call = execute_kw("res.partner", "search_count", json!([[]]), json!({}));
    let (decision, _) = run(&f, &odoo, "/jsonrpc", "t", &call).await;
    assert!(matches!(decision, Decision::Continue), "{decision:?}");
}

#[tokio::test]
async fn canonical_domains_are_forwarded_only_in_forward_mode_and_not_to_the_web_client() {
    let odoo = Fake::default();
    let kwargs =
        json!({"domain": [["name", "=", "b"], ["id", ">", 1]], "fields": ["name"], "limit": 5});
    let call = execute_kw("res.partner", "search_read", json!([]), kwargs.clone());
    let f = filter(settings());
    let (decision, tags) = run(&f, &odoo, "/jsonrpc", "t", &call).await;
    let Decision::Rewrite(new) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(tags, ["domain"]);
    assert_eq!(
        new.kwargs()["domain"],
        json!(["&", ["id", ">", 1], ["name", "=", "b"]])
    );
    // Already canonical: nothing to do.
    let (decision, _) = run(&f, &odoo, "/jsonrpc", "t", &new).await;
    assert!(matches!(decision, Decision::Continue), "{decision:?}");
    // Not well-formed: forwarded as sent.
    let bad = execute_kw(
        "res.partner",
        "search_read",
        json!([]),
        json!({"domain": ["|", ["a", "=", 1]], "limit": 5}),
    );
    let (decision, _) = run(&f, &odoo, "/jsonrpc", "t", &bad).await;
    assert!(matches!(decision, Decision::Continue), "{decision:?}");
    // `key` mode and the web client's routes: the body is left as it is.
    let keyed = filter(Optimizer {
        domains: DomainMode::Key,
        ..settings()
    });
    let (decision, _) = run(&keyed, &odoo, "/jsonrpc", "t", &call).await;
    assert!(matches!(decision, Decision::Continue), "{decision:?}");
    let web = call_kw("res.partner", "search_read", json!([]), kwargs);
    let (decision, _) = run(
        &f,
        &odoo,
        "/web/dataset/call_kw/res.partner/search_read",
        "t",
        &web,
    )
    .await;
    assert!(matches!(decision, Decision::Continue), "{decision:?}");
}

#[tokio::test]
async fn every_rewrite_is_listed_in_order() {
    let odoo = Fake::default();
    let f = filter(Optimizer {
        default_fields: DefaultFields::ExcludeBinary,
        ..settings()
    });
    let call = execute_kw(
        "res.partner",
        "search_read",
        json!([[["name", "=", "b"], ["id", ">", 1]]]),
        json!({"limit": 1000}),
    );
    let (decision, tags) = run(&f, &odoo, "/jsonrpc", "t", &call).await;
    assert!(matches!(decision, Decision::Rewrite(_)), "{decision:?}");
    assert_eq!(Rewrites(tags).header_value(), "domain,fields,limit");
}

#[test]
fn tenant_settings_merge_key_by_key() {
    let mut global = settings();
    global.caps.set_model("res.partner", "read", Some(10));
    global.expand = BTreeMap::from([(
        "sale.order".to_owned(),
        BTreeMap::from([("partner_id".to_owned(), vec!["name".to_owned()])]),
    )]);
    let o = OptimizerOverrides {
        max_limits: BTreeMap::from([
            ("search_read".to_owned(), None),
            ("name_search".to_owned(), Some(7)),
        ]),
        models: BTreeMap::from([(
            "res.partner".to_owned(),
            BTreeMap::from([("search_read".to_owned(), Some(3))]),
        )]),
        limit_caps: CapRoutesOverrides {
            web: Some(true),
            ..CapRoutesOverrides::default()
        },
        domains: Some(DomainMode::Off),
        expand: BTreeMap::from([("sale.order".to_owned(), BTreeMap::new())]),
        read_concurrency: Some(9),
        ..OptimizerOverrides::default()
    };
    let m = global.merged(&o);
    assert_eq!(m.caps.cap_for("x", "read"), Some(100));
    assert_eq!(m.caps.cap_for("x", "search_read"), None);
    assert_eq!(m.caps.cap_for("x", "name_search"), Some(7));
    // The global model override stays; the tenant's adds to it.
    assert_eq!(m.caps.cap_for("res.partner", "read"), Some(10));
    assert_eq!(m.caps.cap_for("res.partner", "search_read"), Some(3));
    assert_eq!(
        m.cap_routes,
        CapRoutes {
            api: true,
            rpc: true,
            web: true
        }
    );
    assert_eq!(m.domains, DomainMode::Off);
    assert!(m.expand.is_empty());
    assert!(m.expand_dotted);
    assert_eq!(m.default_fields, DefaultFields::All);
    assert_eq!(m.read_concurrency, 9);
    // Nothing overridden: the tenant reads the global settings.
    let set = OptimizerSet::new(global.clone()).with_tenant("same", &OptimizerOverrides::default());
    assert_eq!(set.for_tenant("same"), &global);
}

/// `call` (an `object.execute_kw` / `execute` over `/jsonrpc`) sent over XML-RPC at `path`
/// instead, as a client's `methodCall`.
fn over_xmlrpc(mut call: Call, path: &str) -> Call {
    call.shape = crate::call::Shape::XmlRpc {
        legacy: !path.starts_with("/xmlrpc/2/"),
    };
    call.path = path.to_owned();
    call.id = None;
    let body = call.to_body().unwrap();
    let call = parse(&endpoint(path), &head(path), &body).unwrap();
    assert!(matches!(call.shape, crate::call::Shape::XmlRpc { .. }));
    call
}

/// `object.execute(db, 6, pw, model, method, *args)` over `/jsonrpc`.
fn execute(model: &str, method: &str, args: Value) -> Call {
    let mut all = vec![
        json!("db"),
        json!(6),
        json!("pw"),
        json!(model),
        json!(method),
    ];
    all.extend(args.as_array().unwrap().iter().cloned());
    let body = json!({"jsonrpc": "2.0", "method": "call", "id": 3, "params":
        {"service": "object", "method": "execute", "args": all}});
    parse(
        &endpoint("/jsonrpc"),
        &head("/jsonrpc"),
        body.to_string().as_bytes(),
    )
    .unwrap()
}

#[tokio::test]
async fn xmlrpc_reads_are_batched_and_answered_as_odoo_writes_xmlrpc() {
    let f = filter(settings());
    let whole: Value = Value::Array((1..=250).rev().map(|id| json!({"id": id})).collect());
    for (path, call) in [
        (
            "/xmlrpc/2/object",
            execute_kw("res.partner", "read", json!([ids(250)]), json!({})),
        ),
        (
            "/xmlrpc/object",
            execute("res.partner", "read", json!([ids(250)])),
        ),
    ] {
        let odoo = Fake::default();
        let call = over_xmlrpc(call, path);
        let (decision, tags) = run(&f, &odoo, path, "t", &call).await;
        let Decision::Respond(reply) = decision else {
            panic!("{path}: {decision:?}")
        };
        assert_eq!(tags, ["batch"], "{path}");
        assert_eq!(reply.status, 200);
        assert_eq!(
            header(&reply, "content-type"),
            Some("text/xml; charset=utf-8")
        );
        assert_eq!(header(&reply, REWRITE_HEADER), Some("batch"));
        assert_eq!(
            reply.body,
            crate::jsonrpc::xmlrpc_response(&whole).unwrap(),
            "{path}"
        );
        // Three batches as the caller, over /jsonrpc execute_kw.
        let calls = odoo.calls();
        assert_eq!(calls.len(), 3, "{path}");
        for c in calls {
            assert_eq!(c["path"], "/jsonrpc");
            assert_eq!(c["params"]["method"], "execute_kw");
            let args = c["params"]["args"].as_array().unwrap();
            assert_eq!(
                args[..5],
                [
                    json!("db"),
                    json!(6),
                    json!("pw"),
                    json!("res.partner"),
                    json!("read")
                ]
            );
            assert!(args[5][0].as_array().unwrap().len() <= 100);
        }
    }
}

#[tokio::test]
async fn an_error_in_an_xmlrpc_batch_is_odoos_fault_for_the_route() {
    let f = filter(settings());
    let message = "You are not allowed to access 'Contact' records.";
    for (path, code, string) in [
        ("/xmlrpc/2/object", FaultCode::Int(4), message.to_owned()),
        (
            "/xmlrpc/object",
            FaultCode::Str(format!("warning -- AccessError\n\n{message}")),
            String::new(),
        ),
    ] {
        let odoo = Fake::failing(&[120]);
        let call = over_xmlrpc(
            execute_kw("res.partner", "read", json!([ids(250)]), json!({})),
            path,
        );
        let (decision, _) = run(&f, &odoo, path, "t", &call).await;
        let Decision::Respond(reply) = decision else {
            panic!("{path}: {decision:?}")
        };
        // HTTP 200, as Odoo answers faults.
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(
            header(&reply, "content-type"),
            Some("text/xml; charset=utf-8")
        );
        assert_eq!(header(&reply, REWRITE_HEADER), Some("batch"));
        assert_eq!(
            reply.body,
            crate::jsonrpc::xmlrpc_fault(&code, &string),
            "{path}: {}",
            String::from_utf8_lossy(&reply.body)
        );
    }
}
