//! Tests for [`super::limits`]: every search-like method in every call shape, the limit
//! values Odoo reads as "no limit" or refuses, per-model caps, and `read` batching against a
//! model of Odoo's own `read`.

use std::collections::BTreeMap;

use http::request::Parts;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::limits::*;
use crate::call::{Call, Shape};
use crate::jsonrpc::parse;
use crate::route::endpoint;

const SESSION: (&str, &str) = ("cookie", "session_id=sid123");
const BEARER: (&str, &str) = ("authorization", "bearer key123");

fn head(path: &str) -> Parts {
    let mut builder = http::Request::post(path);
    for (name, value) in [SESSION, BEARER] {
        builder = builder.header(name, value);
    }
    builder.body(()).unwrap().into_parts().0
}

fn parse_at(path: &str, body: &[u8]) -> Call {
    parse(&endpoint(path), &head(path), body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

/// The defaults of `optimizer.max_limits`, plus `search`.
fn caps() -> LimitCaps {
    LimitCaps::new(BTreeMap::from([
        ("search".to_owned(), 200),
        ("search_fetch".to_owned(), 200),
        ("search_read".to_owned(), 200),
        ("web_search_read".to_owned(), 200),
        ("read".to_owned(), 100),
        ("name_search".to_owned(), 50),
        ("read_group".to_owned(), 10),
        ("search_count".to_owned(), 10),
    ]))
}

/// How a test call is sent. `args` and `kwargs` are the ORM method's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    CallKw,
    ExecuteKw,
    Execute,
    XmlExecuteKw,
    XmlExecute,
    Json2,
}

const EVERY_SHAPE: [Via; 6] = [
    Via::CallKw,
    Via::ExecuteKw,
    Via::Execute,
    Via::XmlExecuteKw,
    Via::XmlExecute,
    Via::Json2,
];

/// Parses a call of `model.method(*args, **kwargs)` sent `via` a route. For `execute`, kwargs
/// must be empty; for `/json/2`, args must be `[]` or `[ids]`.
fn call(via: Via, model: &str, method: &str, args: Value, kwargs: Value) -> Call {
    let Value::Array(args) = args else {
        panic!("args must be a list")
    };
    match via {
        Via::CallKw => parse_at(
            &format!("/web/dataset/call_kw/{model}/{method}"),
            json!({"jsonrpc": "2.0", "method": "call", "id": 9, "params":
                {"model": model, "method": method, "args": args, "kwargs": kwargs}})
            .to_string()
            .as_bytes(),
        ),
        Via::ExecuteKw | Via::Execute => {
            let mut all = vec![
                json!("db"),
                json!(2),
                json!("pw"),
                json!(model),
                json!(method),
            ];
            if via == Via::ExecuteKw {
                all.extend([Value::Array(args), kwargs]);
            } else {
                assert_eq!(kwargs, json!({}));
                all.extend(args);
            }
            let service_method = if via == Via::ExecuteKw {
                "execute_kw"
            } else {
                "execute"
            };
            parse_at(
                "/jsonrpc",
                json!({"jsonrpc": "2.0", "method": "call", "id": 3, "params":
                    {"service": "object", "method": service_method, "args": all}})
                .to_string()
                .as_bytes(),
            )
        }
        Via::XmlExecuteKw | Via::XmlExecute => {
            let json_via = if via == Via::XmlExecuteKw {
                Via::ExecuteKw
            } else {
                Via::Execute
            };
            let mut json_call = call(json_via, model, method, Value::Array(args), kwargs);
            json_call.shape = Shape::XmlRpc { legacy: false };
            json_call.path = "/xmlrpc/2/object".to_owned();
            json_call.id = None;
            let body = json_call.to_body().unwrap();
            let xml = parse_at("/xmlrpc/2/object", &body);
            assert_eq!(xml.shape, Shape::XmlRpc { legacy: false });
            xml
        }
        Via::Json2 => {
            let Value::Object(mut named) = kwargs else {
                panic!("kwargs must be an object")
            };
            if let Some(ids) = args.into_iter().next() {
                named.insert("ids".to_owned(), ids);
            }
            parse_at(
                &format!("/json/2/{model}/{method}"),
                Value::Object(named).to_string().as_bytes(),
            )
        }
    }
}

/// `to_body` then `parse` gives the call back, and returns the body.
fn round_trip(call: &Call) -> Vec<u8> {
    let body = call.to_body().unwrap();
    let again = parse_at(&call.path, &body);
    assert_eq!(&again, call, "{}", String::from_utf8_lossy(&body));
    again.to_body().unwrap()
}

/// The call's limit: the positional slot when `args` reaches it (not for `/json/2`), else
/// `kwargs.limit`.
fn limit_of(call: &Call, slot: usize) -> Option<&Value> {
    if call.shape != Shape::Json2 && call.args().len() > slot {
        call.args().get(slot)
    } else {
        call.kwargs().get("limit")
    }
}

/// Caps `call`, checks the result and the round trip, and returns the capped call.
fn capped(mut call: Call, caps: &LimitCaps, expected: Option<Capped>) -> Call {
    let before = call.clone();
    let body_before = call.to_body().unwrap();
    let result = cap_limit(&mut call, caps);
    assert_eq!(result, expected, "{call:?}");
    if expected.is_none() {
        assert_eq!(call, before);
        // Untouched means byte for byte: no value was even decoded for writing.
        assert_eq!(call.to_body().unwrap(), body_before);
    }
    round_trip(&call);
    call
}

fn cut(asked: Option<u64>, cap: u64) -> Option<Capped> {
    Some(Capped { asked, cap })
}

// ---------------------------------------------------------------------------------------------
// Caps
// ---------------------------------------------------------------------------------------------

#[test]
fn caps_per_method_with_model_overrides() {
    let caps = caps()
        .with_model("mail.message", "search_read", 20)
        .with_model("res.country", "search_read", 1000)
        .exempt("res.currency", "search_read")
        .with_model("res.partner", "custom_search", 5);
    assert_eq!(caps.cap_for("sale.order", "search_read"), Some(200));
    assert_eq!(caps.cap_for("mail.message", "search_read"), Some(20));
    assert_eq!(caps.cap_for("mail.message", "name_search"), Some(50));
    assert_eq!(caps.cap_for("res.country", "search_read"), Some(1000));
    assert_eq!(caps.cap_for("res.currency", "search_read"), None);
    assert_eq!(caps.cap_for("res.currency", "read"), Some(100));
    assert_eq!(caps.cap_for("res.partner", "custom_search"), Some(5));
    assert_eq!(caps.cap_for("sale.order", "write"), None);
    // 0 would mean "no limit" to Odoo: never stored.
    let zero = LimitCaps::new(BTreeMap::from([("search_read".to_owned(), 0)])).with_model(
        "res.partner",
        "name_search",
        0,
    );
    assert_eq!(zero.cap_for("res.partner", "search_read"), None);
    assert_eq!(zero.cap_for("res.partner", "name_search"), None);
    assert_eq!(LimitCaps::default().cap_for("a", "search_read"), None);

    let mut message = call(
        Via::CallKw,
        "mail.message",
        "search_read",
        json!([]),
        json!({"limit": 80}),
    );
    assert_eq!(cap_limit(&mut message, &caps), cut(Some(80), 20));
    let mut currency = call(
        Via::CallKw,
        "res.currency",
        "search_read",
        json!([]),
        json!({}),
    );
    assert_eq!(cap_limit(&mut currency, &caps), None);
}

#[test]
fn header_says_what_was_asked_and_sent() {
    assert_eq!(
        header_value(&Capped {
            asked: Some(500),
            cap: 200
        }),
        "500->200"
    );
    assert_eq!(
        header_value(&Capped {
            asked: None,
            cap: 200
        }),
        "none->200"
    );
    assert_eq!(CAPPED_HEADER, "x-bridgecore-limit-capped");
}

// ---------------------------------------------------------------------------------------------
// search_read in every shape
// ---------------------------------------------------------------------------------------------

#[test]
fn search_read_by_keyword_in_every_shape() {
    let domain = json!([["is_company", "=", true]]);
    for via in [Via::CallKw, Via::ExecuteKw, Via::XmlExecuteKw] {
        let args = json!([domain]);
        let kwargs = json!({"fields": ["name"], "limit": 500, "context": {"lang": "fr_FR"}});
        let out = capped(
            call(via, "res.partner", "search_read", args, kwargs),
            &caps(),
            cut(Some(500), 200),
        );
        assert_eq!(out.kwargs().get("limit"), Some(&json!(200)), "{via:?}");
        assert_eq!(out.kwargs().get("fields"), Some(&json!(["name"])));
        assert_eq!(out.args(), std::slice::from_ref(&domain));
    }
    // /json/2: named arguments only.
    let out = capped(
        call(
            Via::Json2,
            "res.partner",
            "search_read",
            json!([]),
            json!({"domain": domain, "fields": ["name"], "limit": 500}),
        ),
        &caps(),
        cut(Some(500), 200),
    );
    assert_eq!(out.kwargs().get("limit"), Some(&json!(200)));
    assert!(out.args().is_empty());
}

#[test]
fn search_read_by_position_in_every_shape() {
    // search_read(domain, fields, offset, limit, order)
    let args = json!([[["active", "=", true]], ["name"], 10, 500, "name"]);
    for via in [
        Via::CallKw,
        Via::ExecuteKw,
        Via::Execute,
        Via::XmlExecuteKw,
        Via::XmlExecute,
    ] {
        let out = capped(
            call(via, "res.partner", "search_read", args.clone(), json!({})),
            &caps(),
            cut(Some(500), 200),
        );
        assert_eq!(
            out.args(),
            json!([[["active", "=", true]], ["name"], 10, 200, "name"])
                .as_array()
                .unwrap()
                .as_slice(),
            "{via:?}"
        );
        assert!(!out.kwargs().contains_key("limit"));
    }
}

#[test]
fn missing_limit_gets_the_cap_in_every_shape() {
    for via in EVERY_SHAPE {
        let (args, kwargs) = match via {
            Via::Json2 => (json!([]), json!({"domain": []})),
            Via::Execute | Via::XmlExecute => (json!([[]]), json!({})),
            _ => (json!([[]]), json!({"fields": ["name"]})),
        };
        let out = capped(
            call(via, "res.partner", "search_read", args, kwargs),
            &caps(),
            cut(None, 200),
        );
        assert_eq!(limit_of(&out, 3), Some(&json!(200)), "{via:?}");
        if matches!(via, Via::Execute | Via::XmlExecute) {
            // Positional only: domain, then fields=None and offset=0 filled in.
            assert_eq!(
                out.args(),
                json!([[], null, 0, 200]).as_array().unwrap().as_slice()
            );
        }
    }
}

#[test]
fn limits_within_the_cap_are_untouched() {
    for limit in [json!(1), json!(80), json!(200), json!(199.5), json!(200.0)] {
        for via in [Via::CallKw, Via::ExecuteKw, Via::XmlExecuteKw, Via::Json2] {
            let (args, kwargs) = if via == Via::Json2 {
                (json!([]), json!({"domain": [], "limit": limit}))
            } else {
                (json!([[]]), json!({"limit": limit}))
            };
            capped(
                call(via, "res.partner", "search_read", args, kwargs),
                &caps(),
                None,
            );
        }
        capped(
            call(
                Via::Execute,
                "res.partner",
                "search_read",
                json!([[], null, 0, limit]),
                json!({}),
            ),
            &caps(),
            None,
        );
    }
}

#[test]
fn falsy_limits_mean_no_limit_and_get_the_cap() {
    // Odoo writes `LIMIT` only for a truthy limit (odoo-protocol.md §7).
    for limit in [json!(0), json!(null), json!(false), json!(0.0), json!(-0.0)] {
        let out = capped(
            call(
                Via::CallKw,
                "res.partner",
                "search_read",
                json!([]),
                json!({"limit": limit}),
            ),
            &caps(),
            cut(None, 200),
        );
        assert_eq!(out.kwargs().get("limit"), Some(&json!(200)), "{limit}");
        let out = capped(
            call(
                Via::Execute,
                "res.partner",
                "search",
                json!([[], 0, limit]),
                json!({}),
            ),
            &caps(),
            cut(None, 200),
        );
        assert_eq!(
            out.args(),
            json!([[], 0, 200]).as_array().unwrap().as_slice()
        );
    }
}

#[test]
fn limits_odoo_refuses_are_untouched() {
    for limit in [
        json!(-1),
        json!(-500),
        json!(-2.5),
        json!("500"),
        json!("abc"),
        json!(true),
        json!([500]),
        json!({"limit": 500}),
        json!(18_446_744_073_709_551_615u64),
    ] {
        for via in [Via::CallKw, Via::Json2] {
            let (args, kwargs) = if via == Via::Json2 {
                (json!([]), json!({"domain": [], "limit": limit}))
            } else {
                (json!([[]]), json!({"limit": limit}))
            };
            capped(
                call(via, "res.partner", "search_read", args, kwargs),
                &caps(),
                None,
            );
        }
        capped(
            call(
                Via::XmlExecute,
                "res.partner",
                "search",
                json!([[], 0, limit]),
                json!({}),
            ),
            &caps(),
            None,
        );
    }
}

#[test]
fn floats_above_the_cap_are_lowered() {
    // Odoo reads a float as a limit (16: `%d`; 17/18: PostgreSQL rounds it): 1e9 would bypass
    // the cap.
    let out = capped(
        call(
            Via::CallKw,
            "res.partner",
            "search_read",
            json!([]),
            json!({"limit": 1e9}),
        ),
        &caps(),
        cut(Some(1_000_000_000), 200),
    );
    assert_eq!(out.kwargs().get("limit"), Some(&json!(200)));
    capped(
        call(
            Via::CallKw,
            "res.partner",
            "search_read",
            json!([]),
            json!({"limit": 200.5}),
        ),
        &caps(),
        cut(Some(201), 200),
    );
}

#[test]
fn a_limit_given_twice_is_left_for_odoo_to_refuse() {
    // Python: "got multiple values for argument 'limit'".
    for via in [Via::CallKw, Via::ExecuteKw, Via::XmlExecuteKw] {
        capped(
            call(
                via,
                "res.partner",
                "search_read",
                json!([[], ["name"], 0, 500]),
                json!({"limit": 500}),
            ),
            &caps(),
            None,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Other methods
// ---------------------------------------------------------------------------------------------

#[test]
fn search_takes_its_limit_third() {
    // search(domain, offset=0, limit=None, order=None)
    let out = capped(
        call(
            Via::CallKw,
            "res.partner",
            "search",
            json!([[["a", "=", 1]], 40, 1000]),
            json!({}),
        ),
        &caps(),
        cut(Some(1000), 200),
    );
    assert_eq!(
        out.args(),
        json!([[["a", "=", 1]], 40, 200])
            .as_array()
            .unwrap()
            .as_slice()
    );
    // As the web client sends it: args [domain], the rest by keyword.
    let out = capped(
        call(
            Via::CallKw,
            "res.partner",
            "search",
            json!([[]]),
            json!({"offset": 40}),
        ),
        &caps(),
        cut(None, 200),
    );
    assert_eq!(out.kwargs().get("limit"), Some(&json!(200)));
    assert_eq!(out.args().len(), 1);
    // execute: offset filled in.
    for via in [Via::Execute, Via::XmlExecute] {
        let out = capped(
            call(via, "res.partner", "search", json!([[]]), json!({})),
            &caps(),
            cut(None, 200),
        );
        assert_eq!(
            out.args(),
            json!([[], 0, 200]).as_array().unwrap().as_slice()
        );
        // No domain: Odoo raises for the missing argument; nothing to fill it with.
        capped(
            call(via, "res.partner", "search", json!([]), json!({})),
            &caps(),
            None,
        );
    }
    // search_fetch(domain, field_names, offset=0, limit=None): field_names has no default.
    capped(
        call(
            Via::Execute,
            "res.partner",
            "search_fetch",
            json!([[]]),
            json!({}),
        ),
        &caps(),
        None,
    );
    let out = capped(
        call(
            Via::Execute,
            "res.partner",
            "search_fetch",
            json!([[], ["name"]]),
            json!({}),
        ),
        &caps(),
        cut(None, 200),
    );
    assert_eq!(
        out.args(),
        json!([[], ["name"], 0, 200]).as_array().unwrap().as_slice()
    );
}

#[test]
fn web_search_read_keeps_its_count_limit() {
    let kwargs = json!({
        "domain": [["state", "=", "sale"]],
        "specification": {"name": {}},
        "offset": 0, "limit": 500, "order": "date_order DESC", "count_limit": 10001,
        "context": {"lang": "en_US"}
    });
    for via in [Via::CallKw, Via::ExecuteKw, Via::XmlExecuteKw, Via::Json2] {
        let out = capped(
            call(
                via,
                "sale.order",
                "web_search_read",
                json!([]),
                kwargs.clone(),
            ),
            &caps(),
            cut(Some(500), 200),
        );
        let mut expected = kwargs.clone();
        expected["limit"] = json!(200);
        assert_eq!(&Value::Object(out.kwargs().clone()), &expected, "{via:?}");
    }
    // execute with only a domain: specification (16: fields) filled with None, then offset.
    let out = capped(
        call(
            Via::Execute,
            "sale.order",
            "web_search_read",
            json!([[]]),
            json!({}),
        ),
        &caps(),
        cut(None, 200),
    );
    assert_eq!(
        out.args(),
        json!([[], null, 0, 200]).as_array().unwrap().as_slice()
    );
}

#[test]
fn name_search_defaults_to_100() {
    // name_search(name='', args=None, operator='ilike', limit=100)
    let fifty = caps();
    let out = capped(
        call(
            Via::CallKw,
            "res.partner",
            "name_search",
            json!([]),
            json!({"name": "Az"}),
        ),
        &fifty,
        cut(None, 50),
    );
    assert_eq!(out.kwargs().get("limit"), Some(&json!(50)));
    // The web client's autocomplete asks for 8.
    capped(
        call(
            Via::CallKw,
            "res.partner",
            "name_search",
            json!([]),
            json!({"name": "Az", "limit": 8}),
        ),
        &fifty,
        None,
    );
    // A cap above the default leaves a call without limit alone: raising it would change the
    // answer.
    let big = fifty.clone().with_model("res.partner", "name_search", 150);
    capped(
        call(
            Via::CallKw,
            "res.partner",
            "name_search",
            json!([]),
            json!({"name": "Az"}),
        ),
        &big,
        None,
    );
    capped(
        call(
            Via::CallKw,
            "res.partner",
            "name_search",
            json!([]),
            json!({"name": "Az", "limit": 0}),
        ),
        &big,
        cut(None, 150),
    );
    for via in [Via::Execute, Via::XmlExecute] {
        let out = capped(
            call(via, "res.partner", "name_search", json!(["Az"]), json!({})),
            &fifty,
            cut(None, 50),
        );
        assert_eq!(
            out.args(),
            json!(["Az", null, "ilike", 50])
                .as_array()
                .unwrap()
                .as_slice()
        );
        let out = capped(
            call(via, "res.partner", "name_search", json!([]), json!({})),
            &fifty,
            cut(None, 50),
        );
        assert_eq!(
            out.args(),
            json!(["", null, "ilike", 50])
                .as_array()
                .unwrap()
                .as_slice()
        );
        capped(
            call(
                via,
                "res.partner",
                "name_search",
                json!(["Az", [], "ilike", 500]),
                json!({}),
            ),
            &fifty,
            cut(Some(500), 50),
        );
    }
}

#[test]
fn methods_without_a_record_limit_are_untouched() {
    // read_group's limit counts groups; search_count's bounds the count: even when configured.
    for method in ["read_group", "search_count", "write", "read", "fields_get"] {
        for via in [Via::CallKw, Via::ExecuteKw] {
            capped(
                call(
                    via,
                    "res.partner",
                    method,
                    json!([[]]),
                    json!({"limit": 5000}),
                ),
                &caps(),
                None,
            );
        }
    }
    // A model and method with no cap.
    capped(
        call(
            Via::CallKw,
            "res.partner",
            "search_read",
            json!([]),
            json!({}),
        ),
        &LimitCaps::default(),
        None,
    );
    // Calls that run no ORM method.
    let path = "/web/session/get_session_info";
    let mut session = parse_at(path, br#"{"jsonrpc":"2.0","method":"call","params":{}}"#);
    assert_eq!(cap_limit(&mut session, &caps()), None);
    let mut login = parse_at(
        "/jsonrpc",
        br#"{"jsonrpc":"2.0","method":"call","params":{"service":"common","method":"login","args":["db","admin","pw"]}}"#,
    );
    assert_eq!(cap_limit(&mut login, &caps()), None);
    // A hand-built call without model.
    let mut bare = Call::new(Shape::CallKw, "/web/dataset/call_kw");
    bare.method = Some("search_read".to_owned());
    assert_eq!(cap_limit(&mut bare, &caps()), None);
}

#[test]
fn call_button_is_capped_like_call_kw() {
    let mut button = parse_at(
        "/web/dataset/call_button",
        br#"{"jsonrpc":"2.0","method":"call","id":1,"params":{"model":"res.partner","method":"search_read","args":[],"kwargs":{"limit":900}}}"#,
    );
    assert_eq!(cap_limit(&mut button, &caps()), cut(Some(900), 200));
    round_trip(&button);
}

// ---------------------------------------------------------------------------------------------
// read batching
// ---------------------------------------------------------------------------------------------

#[test]
fn large_reads_are_split_in_order_in_every_shape() {
    let ids: Vec<i64> = (1..=250).rev().collect();
    for via in EVERY_SHAPE {
        let (args, kwargs) = match via {
            Via::Json2 => (json!([ids]), json!({"fields": ["name"]})),
            Via::Execute | Via::XmlExecute => (json!([ids, ["name"]]), json!({})),
            _ => (
                json!([ids, ["name"]]),
                json!({"context": {"lang": "fr_FR"}}),
            ),
        };
        let original = call(via, "res.partner", "read", args, kwargs);
        let plan = split_read(&original, 100).unwrap();
        assert_eq!(
            plan.batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [100, 100, 50]
        );
        assert_eq!(plan.batches.concat(), ids);
        let calls = plan.calls(&original);
        assert_eq!(calls.len(), 3);
        for (batch, sent) in plan.batches.iter().zip(&calls) {
            assert_eq!(sent.args()[0], json!(batch), "{via:?}");
            assert_eq!(&sent.args()[1..], &original.args()[1..]);
            assert_eq!(sent.kwargs(), original.kwargs());
            assert_eq!(sent.credential, original.credential);
            round_trip(sent);
        }
        assert_eq!(plan.call(&original, 3), None);
    }
}

#[test]
fn reads_that_need_no_split_or_cannot_be_split() {
    let read = |ids: Value| call(Via::CallKw, "res.partner", "read", json!([ids]), json!({}));
    assert_eq!(split_read(&read(json!([1, 2, 3])), 3), None);
    assert_eq!(split_read(&read(json!([1, 2, 3])), 0), None);
    assert_eq!(split_read(&read(json!(7)), 1), None);
    assert_eq!(split_read(&read(json!([1, "2", 3])), 1), None);
    assert_eq!(split_read(&read(json!([1, 2.5, 3])), 1), None);
    assert_eq!(split_read(&read(json!([1, null])), 1), None);
    assert_eq!(split_read(&read(json!("1,2,3")), 1), None);
    let no_args = call(Via::CallKw, "res.partner", "read", json!([]), json!({}));
    assert_eq!(split_read(&no_args, 1), None);
    let search = call(
        Via::CallKw,
        "res.partner",
        "search_read",
        json!([[1, 2]]),
        json!({}),
    );
    assert_eq!(split_read(&search, 1), None);
    // Duplicates stay where they are.
    let plan = split_read(&read(json!([5, 5, 3, 5])), 3).unwrap();
    assert_eq!(plan.batches, [vec![5, 5, 3], vec![5]]);
}

#[test]
fn merge_refuses_answers_that_are_not_lists() {
    assert_eq!(merge_read(vec![]), Ok(json!([])));
    assert_eq!(
        merge_read(vec![json!([{"id": 1}]), json!({"error": "x"})]),
        Err(MergeError::NotAList { batch: 1 })
    );
    assert!(!MergeError::NotAList { batch: 0 }.to_string().is_empty());
}

/// Odoo's `read` on `browse(ids)`, as `_read_format` builds it: one dict per id asked, in
/// order, duplicates included, deleted records skipped.
fn odoo_read(ids: &[i64], existing: &dyn Fn(i64) -> bool) -> Value {
    Value::Array(
        ids.iter()
            .filter(|&&id| existing(id))
            .map(|&id| json!({"id": id, "name": format!("Partner {id}")}))
            .collect(),
    )
}

proptest! {
    /// Batches read one by one and merged give exactly what one big read gives.
    #[test]
    fn batched_reads_merge_into_one_read(
        ids in prop::collection::vec(0i64..60, 0..300),
        cap in 1u64..120,
        deleted in 0i64..7,
    ) {
        let existing = |id: i64| deleted == 0 || id % deleted != 0;
        let original = call(Via::CallKw, "res.partner", "read", json!([ids, ["name"]]), json!({}));
        let merged = match split_read(&original, cap) {
            None => {
                prop_assert!(ids.len() as u64 <= cap);
                odoo_read(&ids, &existing)
            }
            Some(plan) => {
                prop_assert!(plan.batches.iter().all(|b| !b.is_empty() && b.len() as u64 <= cap));
                prop_assert_eq!(plan.batches.len() as u64, (ids.len() as u64).div_ceil(cap));
                let answers = plan
                    .calls(&original)
                    .iter()
                    .map(|sent| {
                        let batch: Vec<i64> = serde_json::from_value(sent.args()[0].clone()).unwrap();
                        odoo_read(&batch, &existing)
                    })
                    .collect();
                merge_read(answers).unwrap()
            }
        };
        prop_assert_eq!(merged, odoo_read(&ids, &existing));
    }
}
