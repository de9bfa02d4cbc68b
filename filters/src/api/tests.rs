#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::classify::{Category, Class};
use crate::odoo::OdooError;
use crate::route::endpoint;
use crate::Call;

fn op(name: &str) -> Operation {
    Operation::parse(name).unwrap()
}

fn build(name: &str, body: Value) -> Result<ApiCall, ApiError> {
    build_call(op(name), body.to_string().as_bytes())
}

/// `(args, kwargs)` of a call that must build.
fn mapped(name: &str, body: Value) -> (Value, Value) {
    let call = build(name, body).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(call.method, op(name).method().unwrap_or(&call.method));
    (Value::Array(call.args), Value::Object(call.kwargs))
}

fn refused(name: &str, body: &str) -> ApiError {
    build_call(op(name), body.as_bytes()).unwrap_err()
}

fn detail(name: &str, body: &str) -> String {
    refused(name, body).detail()
}

// === Operation ===

#[test]
fn operations_parse_exactly() {
    for op in Operation::ALL {
        assert_eq!(Operation::parse(op.as_str()), Some(op));
        assert_eq!(op.fields()[0], "model");
    }
    assert_eq!(Operation::parse("search_read"), Some(Operation::SearchRead));
    assert_eq!(Operation::parse("call"), Some(Operation::Call));
    for bad in [
        "",
        "Search_read",
        "search_read ",
        "name_get",
        "_call",
        "call/x",
    ] {
        assert_eq!(Operation::parse(bad), None, "{bad}");
    }
    assert_eq!(Operation::Call.method(), None);
    assert_eq!(Operation::WebRead.method(), Some("web_read"));
    assert_eq!(Operation::Unlink.method(), Some("unlink"));
    let e = parse_operation("nope").unwrap_err();
    assert_eq!(e.status(), 404);
    assert!(e
        .detail()
        .starts_with("unknown operation `nope`; operations: search_read, read,"));
    let long = parse_operation(&"x".repeat(1000)).unwrap_err().detail();
    assert!(long.len() < 400, "{long}");
}

// === Mapping, one test per operation ===

#[test]
fn search_read_maps_to_keywords() {
    let (args, kwargs) = mapped(
        "search_read",
        json!({"model": "res.partner", "domain": [["is_company", "=", true]],
               "fields": ["name", "email"], "offset": 10, "limit": 5, "order": "name ASC",
               "context": {"lang": "fr_FR"}}),
    );
    assert_eq!(args, json!([]));
    assert_eq!(
        kwargs,
        json!({"domain": [["is_company", "=", true]], "fields": ["name", "email"], "offset": 10,
               "limit": 5, "order": "name ASC", "context": {"lang": "fr_FR"}})
    );
    // Only what is given, plus the domain.
    assert_eq!(
        mapped("search_read", json!({"model": "res.partner"})),
        (json!([]), json!({"domain": []}))
    );
}

#[test]
fn search_and_search_count_map_to_keywords() {
    assert_eq!(
        mapped(
            "search",
            json!({"model": "sale.order", "domain": [["state", "=", "sale"]], "offset": 0,
                   "limit": 80, "order": "id DESC"})
        ),
        (
            json!([]),
            json!({"domain": [["state", "=", "sale"]], "offset": 0, "limit": 80, "order": "id DESC"})
        )
    );
    assert_eq!(
        mapped("search", json!({"model": "sale.order"})),
        (json!([]), json!({"domain": []}))
    );
    assert_eq!(
        mapped(
            "search_count",
            json!({"model": "sale.order", "domain": [["state", "=", "sale"]], "limit": 10001})
        ),
        (
            json!([]),
            json!({"domain": [["state", "=", "sale"]], "limit": 10001})
        )
    );
    assert_eq!(
        mapped("search_count", json!({"model": "sale.order"})),
        (json!([]), json!({"domain": []}))
    );
}

#[test]
fn read_puts_ids_first() {
    assert_eq!(
        mapped(
            "read",
            json!({"model": "res.partner", "ids": [7, 9], "fields": ["name"]})
        ),
        (json!([[7, 9]]), json!({"fields": ["name"]}))
    );
    assert_eq!(
        mapped("read", json!({"model": "res.partner", "ids": []})),
        (json!([[]]), json!({}))
    );
}

#[test]
fn fields_get_takes_allfields_and_attributes() {
    assert_eq!(
        mapped(
            "fields_get",
            json!({"model": "res.partner", "fields": ["name", "email"],
                   "attributes": ["type", "string"], "context": {"lang": "en_US"}})
        ),
        (
            json!([]),
            json!({"allfields": ["name", "email"], "attributes": ["type", "string"],
                   "context": {"lang": "en_US"}})
        )
    );
    assert_eq!(
        mapped("fields_get", json!({"model": "res.partner"})),
        (json!([]), json!({}))
    );
}

#[test]
fn name_search_sends_the_domain_as_args() {
    assert_eq!(
        mapped(
            "name_search",
            json!({"model": "res.partner", "name": "Azure", "domain": [["is_company", "=", true]],
                   "operator": "ilike", "limit": 8})
        ),
        (
            json!([]),
            json!({"name": "Azure", "args": [["is_company", "=", true]], "operator": "ilike",
                   "limit": 8})
        )
    );
    assert_eq!(
        mapped("name_search", json!({"model": "res.partner"})),
        (json!([]), json!({}))
    );
}

#[test]
fn web_search_read_builds_a_specification() {
    assert_eq!(
        mapped(
            "web_search_read",
            json!({"model": "sale.order", "domain": [["state", "=", "sale"]],
                   "fields": ["name", "partner_id"], "offset": 0, "limit": 80,
                   "order": "date_order DESC", "count_limit": 10001})
        ),
        (
            json!([]),
            json!({"domain": [["state", "=", "sale"]],
                   "specification": {"name": {}, "partner_id": {}},
                   "offset": 0, "limit": 80, "order": "date_order DESC", "count_limit": 10001})
        )
    );
    let spec = json!({"name": {}, "partner_id": {"fields": {"display_name": {}}}});
    assert_eq!(
        mapped(
            "web_search_read",
            json!({"model": "sale.order", "specification": spec})
        ),
        (json!([]), json!({"domain": [], "specification": spec}))
    );
}

#[test]
fn web_read_puts_ids_first() {
    assert_eq!(
        mapped(
            "web_read",
            json!({"model": "sale.order", "ids": [42], "fields": ["name"]})
        ),
        (json!([[42]]), json!({"specification": {"name": {}}}))
    );
    assert_eq!(
        mapped(
            "web_read",
            json!({"model": "sale.order", "ids": [42],
                   "specification": {"order_line": {"fields": {"name": {}}, "limit": 40}}})
        ),
        (
            json!([[42]]),
            json!({"specification": {"order_line": {"fields": {"name": {}}, "limit": 40}}})
        )
    );
}

#[test]
fn read_group_maps_order_to_orderby() {
    assert_eq!(
        mapped(
            "read_group",
            json!({"model": "sale.order", "domain": [["state", "=", "sale"]],
                   "fields": ["amount_total:sum"], "groupby": ["partner_id"], "offset": 0,
                   "limit": 10, "order": "amount_total desc", "lazy": false})
        ),
        (
            json!([]),
            json!({"domain": [["state", "=", "sale"]], "fields": ["amount_total:sum"],
                   "groupby": ["partner_id"], "offset": 0, "limit": 10,
                   "orderby": "amount_total desc", "lazy": false})
        )
    );
    assert_eq!(
        mapped(
            "read_group",
            json!({"model": "sale.order", "groupby": "state"})
        ),
        (
            json!([]),
            json!({"domain": [], "fields": [], "groupby": "state"})
        )
    );
}

#[test]
fn create_write_unlink_are_positional() {
    assert_eq!(
        mapped(
            "create",
            json!({"model": "res.partner", "values": {"name": "Ada"}, "context": {"lang": "en_US"}})
        ),
        (
            json!([{"name": "Ada"}]),
            json!({"context": {"lang": "en_US"}})
        )
    );
    assert_eq!(
        mapped(
            "create",
            json!({"model": "res.partner", "values": [{"name": "Ada"}, {"name": "Bob"}]})
        ),
        (json!([[{"name": "Ada"}, {"name": "Bob"}]]), json!({}))
    );
    assert_eq!(
        mapped(
            "write",
            json!({"model": "res.partner", "ids": [1, 2], "values": {"name": "Ada"}})
        ),
        (json!([[1, 2], {"name": "Ada"}]), json!({}))
    );
    assert_eq!(
        mapped("unlink", json!({"model": "res.partner", "ids": [3]})),
        (json!([[3]]), json!({}))
    );
}

#[test]
fn call_takes_method_args_and_ids() {
    let call = build(
        "call",
        json!({"model": "sale.order", "method": "action_confirm", "ids": [42],
               "args": [true], "kwargs": {"force": 1}, "context": {"tz": "UTC"}}),
    )
    .unwrap();
    assert_eq!(call.method, "action_confirm");
    assert_eq!(call.args, vec![json!([42]), json!(true)]);
    assert_eq!(
        Value::Object(call.kwargs),
        json!({"force": 1, "context": {"tz": "UTC"}})
    );
    let call = build(
        "call",
        json!({"model": "res.partner", "method": "default_get", "args": [["name"]]}),
    )
    .unwrap();
    assert_eq!(call.args, vec![json!(["name"])]);
    assert!(call.kwargs.is_empty());
}

// === kwargs, context and null ===

#[test]
fn kwargs_are_added_and_a_clash_is_refused() {
    // Extra keyword arguments pass; they may also stand in for a member and for a default.
    assert_eq!(
        mapped(
            "read",
            json!({"model": "res.partner", "ids": [1], "kwargs": {"load": null}})
        ),
        (json!([[1]]), json!({"load": null}))
    );
    assert_eq!(
        mapped(
            "search_read",
            json!({"model": "res.partner", "kwargs": {"domain": [["id", ">", 3]], "limit": 2}})
        ),
        (json!([]), json!({"domain": [["id", ">", 3]], "limit": 2}))
    );
    // The same keyword from a member and from kwargs: refused, whichever it is.
    for (body, key) in [
        (
            r#"{"model":"res.partner","limit":5,"kwargs":{"limit":6}}"#,
            "limit",
        ),
        (
            r#"{"model":"res.partner","domain":[],"kwargs":{"domain":[]}}"#,
            "domain",
        ),
        (
            r#"{"model":"res.partner","context":{},"kwargs":{"context":{"lang":"x"}}}"#,
            "context",
        ),
    ] {
        let e = refused("search_read", body);
        assert_eq!(e, ApiError::KwargConflict(key.into()), "{body}");
        assert_eq!(e.status(), 400);
        assert!(e.detail().contains(&format!("`{key}`")));
    }
    assert_eq!(
        refused(
            "read_group",
            r#"{"model":"m","groupby":"x","order":"a","kwargs":{"orderby":"b"}}"#
        ),
        ApiError::KwargConflict("orderby".into())
    );
}

#[test]
fn null_is_absent() {
    assert_eq!(
        mapped(
            "search_read",
            json!({"model": "res.partner", "domain": null, "fields": null, "limit": null,
                   "values": null, "ids": null, "whatever": null, "context": null})
        ),
        (json!([]), json!({"domain": []}))
    );
}

// === Validation ===

#[test]
fn body_must_be_a_json_object() {
    assert_eq!(refused("read", ""), ApiError::EmptyBody);
    assert_eq!(refused("read", " \n"), ApiError::EmptyBody);
    assert!(matches!(refused("read", "{"), ApiError::InvalidJson(_)));
    assert!(matches!(refused("read", "{} x"), ApiError::InvalidJson(_)));
    assert!(matches!(
        build_call(Operation::Read, b"\xff\xfe"),
        Err(ApiError::InvalidJson(_))
    ));
    for body in ["[]", "1", "\"x\"", "null", "true"] {
        assert_eq!(refused("read", body), ApiError::NotAnObject, "{body}");
    }
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert!(matches!(
        refused(
            "search_read",
            &format!(r#"{{"model":"m","domain":{deep}}}"#)
        ),
        ApiError::InvalidJson(_)
    ));
    for e in [
        refused("read", ""),
        refused("read", "[]"),
        refused("read", "{"),
    ] {
        assert_eq!(e.status(), 400);
    }
}

#[test]
fn unknown_fields_are_listed_with_the_allowed_ones() {
    let d = detail("search_read", r#"{"model":"res.partner","limt":5}"#);
    assert_eq!(
        d,
        "unknown field `limt` for `search_read`; allowed: model, domain, fields, offset, \
         limit, order, context, kwargs"
    );
    // A member another operation takes is unknown here too (unless null).
    let e = refused("search_read", r#"{"model":"m","values":{},"ids":[1]}"#);
    assert_eq!(
        e,
        ApiError::UnknownFields {
            fields: vec!["ids".into(), "values".into()],
            for_what: "`search_read`",
            allowed: Operation::SearchRead.fields(),
        }
    );
    assert!(e
        .detail()
        .starts_with("unknown fields `ids`, `values` for `search_read`"));
    assert!(detail("read", r#"{"model":"m","ids":[1],"args":[]}"#)
        .starts_with("unknown field `args` for `read`; allowed: model, ids, fields, context"));
    // Long and many names are cut.
    let many: String = (0..20).map(|i| format!(r#""f{i:02}":1,"#)).collect();
    let d = detail("unlink", &format!(r#"{{{many}"{}":1}}"#, "y".repeat(500)));
    assert!(d.contains("and 13 more") && d.len() < 400, "{d}");
}

#[test]
fn model_is_required_and_must_be_an_odoo_name() {
    assert_eq!(refused("search_read", "{}"), ApiError::Missing("model"));
    assert_eq!(detail("search_read", "{}"), "missing `model`");
    for model in [
        "",
        "Res.Partner",
        "res partner",
        "res/partner",
        "res-partner",
        "é",
    ] {
        let body = json!({ "model": model }).to_string();
        let e = refused("search_read", &body);
        assert!(
            matches!(e, ApiError::Invalid { field: "model", .. }),
            "{model}: {e}"
        );
        assert!(e.detail().starts_with("`model` must be an Odoo model name"));
    }
    assert!(matches!(
        refused("search_read", r#"{"model":5}"#),
        ApiError::Invalid {
            field: "model",
            expected: "a string"
        }
    ));
    let long = json!({ "model": "a".repeat(MAX_NAME_LEN + 1) }).to_string();
    assert!(matches!(
        refused("search_read", &long),
        ApiError::Invalid { field: "model", .. }
    ));
    for model in [
        "res.partner",
        "x_custom_2",
        "l10n_be.report",
        "ir.model.fields",
    ] {
        assert_eq!(
            build("search_read", json!({ "model": model }))
                .unwrap()
                .model,
            model
        );
    }
}

#[test]
fn ids_must_be_record_ids() {
    for (name, body) in [
        ("read", r#"{"model":"m","fields":["a"]}"#),
        ("write", r#"{"model":"m","values":{}}"#),
        ("unlink", r#"{"model":"m"}"#),
        ("web_read", r#"{"model":"m","fields":["a"]}"#),
    ] {
        assert_eq!(refused(name, body), ApiError::Missing("ids"), "{name}");
    }
    for ids in [
        "7",
        "\"7\"",
        "[0]",
        "[-1]",
        "[1.5]",
        "[1.0]",
        "[\"1\"]",
        "[true]",
        "[null]",
        "[[1]]",
        "[2147483648]",
        "{}",
    ] {
        let e = refused("unlink", &format!(r#"{{"model":"m","ids":{ids}}}"#));
        assert!(
            matches!(e, ApiError::Invalid { field: "ids", .. }),
            "{ids}: {e}"
        );
        assert!(e.detail().starts_with("`ids` must be a list of record ids"));
    }
    assert_eq!(
        mapped("unlink", json!({"model": "m", "ids": [1, 2147483647]})).0,
        json!([[1, 2147483647]])
    );
    assert!(matches!(
        refused("call", r#"{"model":"m","method":"x","ids":[0]}"#),
        ApiError::Invalid { field: "ids", .. }
    ));
}

#[test]
fn values_must_be_an_object() {
    assert_eq!(
        refused("create", r#"{"model":"m"}"#),
        ApiError::Missing("values")
    );
    assert_eq!(
        refused("write", r#"{"model":"m","ids":[1]}"#),
        ApiError::Missing("values")
    );
    for values in ["[]", "[{}]", "\"x\"", "1"] {
        let e = refused(
            "write",
            &format!(r#"{{"model":"m","ids":[1],"values":{values}}}"#),
        );
        assert_eq!(
            e,
            ApiError::Invalid {
                field: "values",
                expected: "an object"
            },
            "{values}"
        );
    }
    for values in ["[1]", "[{}, []]", "\"x\"", "true"] {
        let e = refused("create", &format!(r#"{{"model":"m","values":{values}}}"#));
        assert_eq!(
            e,
            ApiError::Invalid {
                field: "values",
                expected: "an object or a list of objects"
            },
            "{values}"
        );
    }
}

#[test]
fn member_types_are_checked() {
    let cases: &[(&str, &str, &str)] = &[
        ("search_read", r#""domain":{}"#, "domain"),
        ("search_read", r#""domain":"[]""#, "domain"),
        ("search_read", r#""fields":"name""#, "fields"),
        ("search_read", r#""fields":["name",1]"#, "fields"),
        ("search_read", r#""limit":-1"#, "limit"),
        ("search_read", r#""limit":1.5"#, "limit"),
        ("search_read", r#""limit":"5""#, "limit"),
        ("search_read", r#""offset":-3"#, "offset"),
        ("search_read", r#""order":1"#, "order"),
        ("search_read", r#""context":[]"#, "context"),
        ("search_read", r#""kwargs":[]"#, "kwargs"),
        ("fields_get", r#""attributes":"type""#, "attributes"),
        ("name_search", r#""name":1"#, "name"),
        ("name_search", r#""operator":[]"#, "operator"),
        (
            "web_search_read",
            r#""fields":["a"],"count_limit":-1"#,
            "count_limit",
        ),
        (
            "web_search_read",
            r#""specification":["a"]"#,
            "specification",
        ),
        (
            "web_search_read",
            r#""specification":{"a":true}"#,
            "specification",
        ),
        ("read_group", r#""groupby":1"#, "groupby"),
        ("read_group", r#""groupby":["a",1]"#, "groupby"),
        ("read_group", r#""groupby":"a","lazy":"no""#, "lazy"),
        ("call", r#""method":"x","args":{}"#, "args"),
        ("call", r#""method":"x","kwargs":"y""#, "kwargs"),
    ];
    for (name, members, field) in cases {
        let body = format!(r#"{{"model":"m",{members}}}"#);
        match refused(name, &body) {
            ApiError::Invalid { field: f, .. } if f == *field => {}
            e => panic!("{name} {body}: {e:?}"),
        }
        assert!(detail(name, &body).starts_with(&format!("`{field}` must be")));
    }
}

#[test]
fn specification_or_fields_exactly_once() {
    for (name, ids) in [("web_search_read", ""), ("web_read", r#","ids":[1]"#)] {
        let e = refused(name, &format!(r#"{{"model":"m"{ids}}}"#));
        assert_eq!(e, ApiError::MissingOneOf("fields", "specification"));
        assert_eq!(e.detail(), "missing `fields` or `specification`");
        let e = refused(
            name,
            &format!(r#"{{"model":"m"{ids},"fields":["a"],"specification":{{"a":{{}}}}}}"#),
        );
        assert_eq!(e, ApiError::Exclusive("fields", "specification"));
        assert_eq!(e.detail(), "give `fields` or `specification`, not both");
    }
    assert_eq!(
        refused("read_group", r#"{"model":"m"}"#),
        ApiError::Missing("groupby")
    );
}

#[test]
fn call_needs_a_public_method() {
    assert_eq!(
        refused("call", r#"{"model":"m"}"#),
        ApiError::Missing("method")
    );
    for method in ["", "1abc", "a-b", "a.b", "a b", "é", "a/b"] {
        let e = refused("call", &json!({"model": "m", "method": method}).to_string());
        assert!(
            matches!(
                e,
                ApiError::Invalid {
                    field: "method",
                    ..
                }
            ),
            "{method}: {e}"
        );
    }
    for method in ["_compute_x", "__init__", "_"] {
        let e = refused("call", &json!({"model": "m", "method": method}).to_string());
        assert_eq!(e, ApiError::PrivateMethod(method.into()));
        assert_eq!(e.status(), 403);
        assert!(e
            .detail()
            .contains("cannot be called remotely; Odoo refuses them too"));
    }
    assert_eq!(
        build("call", json!({"model": "m", "method": "x_2"}))
            .unwrap()
            .method,
        "x_2"
    );
}

// === The built Call is classed like the web client's ===

fn raw_call_kw(api: &ApiCall) -> Call {
    let body = json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": api.to_params()});
    let path = api.path();
    let head = http::Request::post(&path).body(()).unwrap().into_parts().0;
    crate::jsonrpc::parse(&endpoint(&path), &head, body.to_string().as_bytes()).unwrap()
}

#[test]
fn built_calls_classify_like_raw_call_kw() {
    let cases = [
        (
            "search_read",
            json!({"model": "res.partner", "fields": ["name"], "limit": 5}),
            Class::CacheableRead,
            Category::Read,
        ),
        (
            "read",
            json!({"model": "res.partner", "ids": [1]}),
            Class::CacheableRead,
            Category::Read,
        ),
        (
            "search",
            json!({"model": "res.partner"}),
            Class::CacheableRead,
            Category::Read,
        ),
        (
            "search_count",
            json!({"model": "res.partner"}),
            Class::CacheableRead,
            Category::Read,
        ),
        (
            "fields_get",
            json!({"model": "res.partner"}),
            Class::CacheableRead,
            Category::Read,
        ),
        (
            "name_search",
            json!({"model": "res.partner", "name": "a"}),
            Class::CacheableRead,
            Category::Read,
        ),
        (
            "web_search_read",
            json!({"model": "sale.order", "fields": ["name"]}),
            Class::CacheableRead,
            Category::Read,
        ),
        (
            "web_read",
            json!({"model": "sale.order", "ids": [1], "fields": ["name"]}),
            Class::CacheableRead,
            Category::Read,
        ),
        (
            "read_group",
            json!({"model": "sale.order", "groupby": "state"}),
            Class::CacheableRead,
            Category::Read,
        ),
        (
            "create",
            json!({"model": "res.partner", "values": {"name": "x"}}),
            Class::Write,
            Category::Write,
        ),
        (
            "write",
            json!({"model": "res.partner", "ids": [1], "values": {"name": "x"}}),
            Class::Write,
            Category::Write,
        ),
        (
            "unlink",
            json!({"model": "res.partner", "ids": [1]}),
            Class::Delete,
            Category::Delete,
        ),
        (
            "call",
            json!({"model": "sale.order", "method": "action_confirm", "ids": [1]}),
            Class::Write,
            Category::Write,
        ),
        (
            "call",
            json!({"model": "sale.order", "method": "onchange", "args": [[], {}, []]}),
            Class::UncacheableRead,
            Category::Read,
        ),
        (
            "call",
            json!({"model": "res.partner", "method": "unlink", "ids": [2]}),
            Class::Delete,
            Category::Delete,
        ),
        (
            "call",
            json!({"model": "res.partner", "method": "search_read"}),
            Class::CacheableRead,
            Category::Read,
        ),
    ];
    for (name, body, class, category) in cases {
        let api = build(name, body.clone()).unwrap();
        let raw = raw_call_kw(&api);
        let path = api.path();
        let built = api.clone().into_call();
        assert_eq!(built.path, path);
        assert_eq!(built.shape, crate::Shape::CallKw);
        assert_eq!(built.class(), class, "{name} {body}");
        assert_eq!(built.class(), raw.class(), "{name} {body}");
        assert_eq!(built.class().category(), category);
        assert_eq!(raw.class().category(), category);
        // The same call in every respect but the envelope id.
        assert_eq!(
            Call {
                id: Some(json!(1)),
                ..built.clone()
            },
            raw
        );
        // And what the glue sends upstream reads back as the same call.
        let head = http::Request::post(&path).body(()).unwrap().into_parts().0;
        let again = crate::jsonrpc::parse(&endpoint(&path), &head, &built.to_body().unwrap());
        assert_eq!(again.unwrap(), built);
        assert_eq!(api.to_params()["method"], json!(api.method));
    }
}

// === Answers ===

fn answer(body: &str) -> (u16, Value) {
    let a = map_answer(body.as_bytes(), Served::default());
    (a.status, serde_json::from_slice(&a.body).unwrap())
}

const ACCESS_ERROR: &str = r#"{"jsonrpc":"2.0","id":1,"error":{"code":200,"message":"Odoo Server Error","data":{"name":"odoo.exceptions.AccessError","debug":"Traceback (most recent call last):\n  File \"/opt/odoo/odoo/http.py\", line 1, in _serve\nodoo.exceptions.AccessError: secret path /opt/odoo","message":"You are not allowed to access 'Sales Order' (sale.order) records.","arguments":["You are not allowed to access 'Sales Order' (sale.order) records."],"context":{}}}}"#;

const SESSION_EXPIRED: &str = r#"{"jsonrpc":"2.0","id":1,"error":{"code":100,"message":"Odoo Session Expired","data":{"name":"odoo.http.SessionExpiredException","debug":"Traceback (most recent call last):\n...","message":"Session expired","arguments":["Session expired"],"context":{}}}}"#;

fn odoo_error(name: &str, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": 3, "error": {"code": 200, "message": "Odoo Server Error",
        "data": {"name": name, "debug": "Traceback (most recent call last): SECRET",
                 "message": message, "arguments": [message], "context": {}}}})
    .to_string()
}

#[test]
fn a_result_is_wrapped_with_the_flags() {
    let (status, body) = answer(r#"{"jsonrpc":"2.0","id":42,"result":[{"id":7,"name":"Azure"}]}"#);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"result": [{"id": 7, "name": "Azure"}], "cached": false, "optimized": false})
    );
    let a = map_answer(
        br#"{"jsonrpc":"2.0","id":1,"result":3}"#,
        Served {
            cached: true,
            optimized: true,
        },
    );
    assert_eq!(a.body, br#"{"result":3,"cached":true,"optimized":true}"#);
    // The result is copied as sent.
    let a = map_answer(
        br#" {"result" : {"b":1, "a":[1.50]} , "id":null} "#,
        Served::default(),
    );
    assert_eq!(
        a.body,
        br#"{"result":{"b":1, "a":[1.50]},"cached":false,"optimized":false}"#
    );
    // No `result` (a method that returned None), or `null`.
    assert_eq!(
        answer(r#"{"jsonrpc":"2.0","id":42}"#),
        (
            200,
            json!({"result": null, "cached": false, "optimized": false})
        )
    );
    assert_eq!(
        answer(r#"{"jsonrpc":"2.0","id":42,"result":null,"error":null}"#).0,
        200
    );
    // From a value.
    let a = ApiAnswer::result(
        &json!({"length": 0, "records": []}),
        Served {
            cached: true,
            optimized: false,
        },
    );
    assert_eq!(a.status, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&a.body).unwrap(),
        json!({"result": {"length": 0, "records": []}, "cached": true, "optimized": false})
    );
}

#[test]
fn odoo_errors_map_to_statuses_without_the_traceback() {
    let (status, body) = answer(ACCESS_ERROR);
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"detail": "You are not allowed to access 'Sales Order' (sale.order) records.",
               "odoo_error": {"name": "odoo.exceptions.AccessError",
                              "message": "You are not allowed to access 'Sales Order' (sale.order) records."}})
    );
    let (status, body) = answer(SESSION_EXPIRED);
    assert_eq!(status, 401);
    assert_eq!(body["detail"], "Session expired");
    assert_eq!(
        body["odoo_error"]["name"],
        "odoo.http.SessionExpiredException"
    );

    let table = [
        ("odoo.exceptions.AccessDenied", 401),
        ("odoo.http.SessionExpiredException", 401),
        ("odoo.exceptions.AccessError", 403),
        ("odoo.exceptions.MissingError", 404),
        ("odoo.exceptions.UserError", 422),
        ("odoo.exceptions.ValidationError", 422),
        ("odoo.exceptions.RedirectWarning", 422),
        ("odoo.exceptions.Warning", 422),
        ("odoo.exceptions.CacheMiss", 502),
        ("builtins.ValueError", 502),
        ("builtins.AttributeError", 502),
        ("builtins.TypeError", 502),
        ("psycopg2.errors.SerializationFailure", 502),
        ("odoo.exceptions.accesserror", 502),
        ("", 502),
    ];
    for (name, status) in table {
        let text = odoo_error(name, "Record does not exist or has been deleted.");
        let a = map_answer(text.as_bytes(), Served::default());
        assert_eq!(a.status, status, "{name}");
        assert_eq!(error_status(Some(200), Some(name)), status);
        let body = String::from_utf8(a.body).unwrap();
        assert!(
            !body.contains("SECRET") && !body.contains("Traceback"),
            "{body}"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["detail"], "Record does not exist or has been deleted.");
        assert_eq!(v["odoo_error"]["name"], name);
        assert_eq!(v.as_object().unwrap().len(), 2);
        assert_eq!(v["odoo_error"].as_object().unwrap().len(), 2);
    }
    // Code 100 is a session expiry whatever the name.
    assert_eq!(error_status(Some(100), None), 401);
    assert_eq!(error_status(Some(404), None), 502);
}

#[test]
fn the_message_falls_back_to_error_message() {
    let (status, body) = answer(
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":404,"message":"404: Not Found","data":{"name":"werkzeug.exceptions.NotFound","debug":"x","message":""}}}"#,
    );
    assert_eq!(status, 502);
    assert_eq!(body["detail"], "404: Not Found");
    let (status, body) =
        answer(r#"{"jsonrpc":"2.0","id":1,"error":{"code":100,"message":"Odoo Session Expired"}}"#);
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"detail": "Odoo Session Expired",
               "odoo_error": {"name": null, "message": "Odoo Session Expired"}})
    );
    let (status, body) = answer(r#"{"error":{"data":"nope"}}"#);
    assert_eq!(status, 502);
    assert_eq!(body["detail"], "Odoo answered with an error");
}

#[test]
fn anything_else_is_an_invalid_answer() {
    let invalid = json!({"detail": "invalid answer from Odoo"});
    for body in [
        "",
        "<html>502 Bad Gateway</html>",
        "[]",
        r#"[{"result":1}]"#,
        r#"["2.0", 1]"#,
        "{}",
        r#"{"id":1}"#,
        r#"{"result":1"#,
        r#"{"result":1,"result":2}"#,
        r#"{"jsonrpc":"2.0","error":"boom"}"#,
        r#"{"jsonrpc":"2.0","error":[1]}"#,
        "null",
        "\u{feff}{\"result\":1}",
    ] {
        assert_eq!(answer(body), (502, invalid.clone()), "{body}");
    }
    // Deep nesting neither overflows the stack nor passes; neither does what serde_json
    // cannot decode.
    let nested = |n: usize| format!(r#"{{"result":{}{}}}"#, "[".repeat(n), "]".repeat(n));
    assert_eq!(answer(&nested(126)).0, 200);
    assert_eq!(answer(&nested(127)).0, 502);
    assert_eq!(answer(r#"{"result":[1e400]}"#).0, 502);
    assert_eq!(answer(r#"{"result":"\ud800"}"#).0, 502);
    let deep = format!(
        r#"{{"result":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(answer(&deep).0, 502);
    let deep = format!(
        r#"{{"error":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(answer(&deep).0, 502);
}

#[test]
fn internal_client_errors_map_the_same_way() {
    let body = |a: ApiAnswer| (a.status, serde_json::from_slice::<Value>(&a.body).unwrap());
    assert_eq!(
        body(map_odoo_error(&OdooError::Odoo {
            code: 200,
            name: "odoo.exceptions.MissingError".into(),
            message: "Record does not exist or has been deleted.".into(),
        })),
        (
            404,
            json!({"detail": "Record does not exist or has been deleted.",
                   "odoo_error": {"name": "odoo.exceptions.MissingError",
                                  "message": "Record does not exist or has been deleted."}})
        )
    );
    assert_eq!(
        map_odoo_error(&OdooError::Odoo {
            code: 100,
            name: String::new(),
            message: "Odoo Session Expired".into(),
        })
        .status,
        401
    );
    assert_eq!(
        body(map_odoo_error(&OdooError::Unavailable(
            "connect 10.0.0.7:8069: refused".into()
        ))),
        (502, json!({"detail": "Odoo unavailable"}))
    );
    assert_eq!(
        body(map_odoo_error(&OdooError::Timeout)),
        (504, json!({"detail": "Odoo did not answer in time"}))
    );
    assert_eq!(
        body(map_odoo_error(&OdooError::Protocol("html".into()))),
        (502, json!({"detail": "invalid answer from Odoo"}))
    );
    assert_eq!(
        body(map_result(&Ok(json!([1, 2])), Served::default())),
        (
            200,
            json!({"result": [1, 2], "cached": false, "optimized": false})
        )
    );
    assert_eq!(
        map_result(&Err(OdooError::Timeout), Served::default()).status,
        504
    );
}

// === Login bodies ===

#[test]
fn login_accepts_login_or_username() {
    let r = parse_login(br#"{"system_id":"odoo-prod","login":"admin","password":"pw"}"#).unwrap();
    assert_eq!(
        r,
        LoginRequest {
            system_id: "odoo-prod".into(),
            login: "admin".into(),
            password: "pw".into(),
            scopes: None,
        }
    );
    let r = parse_login(
        br#"{"system_id":"s","username":"ada","password":"pw","scopes":["read","write"]}"#,
    )
    .unwrap();
    assert_eq!(r.login, "ada");
    assert_eq!(r.scopes, Some(vec!["read".into(), "write".into()]));
    let r = parse_login(
        br#"{"system_id":"s","login":"ada","username":"ada","password":"pw","scopes":null}"#,
    )
    .unwrap();
    assert_eq!((r.login.as_str(), &r.scopes), ("ada", &None));
    // The password never shows in Debug.
    let shown = format!("{r:?}");
    assert!(
        !shown.contains("pw") && shown.contains("<redacted>"),
        "{shown}"
    );
}

#[test]
fn login_refusals_name_the_field() {
    let cases: &[(&str, ApiError)] = &[
        ("", ApiError::EmptyBody),
        ("[]", ApiError::NotAnObject),
        ("\"x\"", ApiError::NotAnObject),
        (
            r#"{"login":"a","password":"p"}"#,
            ApiError::Missing("system_id"),
        ),
        (
            r#"{"system_id":"","login":"a","password":"p"}"#,
            ApiError::Invalid {
                field: "system_id",
                expected: "a non-empty string",
            },
        ),
        (
            r#"{"system_id":1,"login":"a","password":"p"}"#,
            ApiError::Invalid {
                field: "system_id",
                expected: "a string",
            },
        ),
        (
            r#"{"system_id":"s","password":"p"}"#,
            ApiError::MissingOneOf("login", "username"),
        ),
        (
            r#"{"system_id":"s","login":"","password":"p"}"#,
            ApiError::Invalid {
                field: "login",
                expected: "a non-empty string",
            },
        ),
        (
            r#"{"system_id":"s","login":"a","username":"b","password":"p"}"#,
            ApiError::Differ("login", "username"),
        ),
        (
            r#"{"system_id":"s","login":"a"}"#,
            ApiError::Missing("password"),
        ),
        (
            r#"{"system_id":"s","login":"a","password":""}"#,
            ApiError::Invalid {
                field: "password",
                expected: "a non-empty string",
            },
        ),
        (
            r#"{"system_id":"s","login":"a","password":5}"#,
            ApiError::Invalid {
                field: "password",
                expected: "a string",
            },
        ),
        (
            r#"{"system_id":"s","login":"a","password":"p","scopes":"read"}"#,
            ApiError::Invalid {
                field: "scopes",
                expected: "a list of non-empty strings",
            },
        ),
        (
            r#"{"system_id":"s","login":"a","password":"p","scopes":[""]}"#,
            ApiError::Invalid {
                field: "scopes",
                expected: "a list of non-empty strings",
            },
        ),
    ];
    for (body, expected) in cases {
        let e = parse_login(body.as_bytes()).unwrap_err();
        assert_eq!(&e, expected, "{body}");
        assert_eq!(e.status(), 400);
    }
    let e =
        parse_login(br#"{"system_id":"s","login":"a","password":"hunter2","db":"x","totp":"123"}"#)
            .unwrap_err();
    assert_eq!(
        e.detail(),
        "unknown fields `db`, `totp` for login; allowed: system_id, login, username, password, scopes"
    );
    // No error repeats the password.
    for body in [
        r#"{"system_id":"s","login":"a","password":"hunter2","x":1}"#,
        r#"{"system_id":"s","login":"a","password":["hunter2"]}"#,
    ] {
        assert!(!parse_login(body.as_bytes())
            .unwrap_err()
            .detail()
            .contains("hunter2"));
    }
}

#[test]
fn refresh_and_logout_bodies() {
    assert_eq!(
        parse_refresh(br#"{"refresh_token":"abc"}"#).unwrap(),
        RefreshRequest {
            refresh_token: "abc".into()
        }
    );
    assert!(!format!(
        "{:?}",
        parse_refresh(br#"{"refresh_token":"abc"}"#).unwrap()
    )
    .contains("abc"));
    assert_eq!(
        parse_refresh(b"{}").unwrap_err(),
        ApiError::Missing("refresh_token")
    );
    assert_eq!(parse_refresh(b"").unwrap_err(), ApiError::EmptyBody);
    assert_eq!(
        parse_refresh(br#"{"refresh_token":""}"#).unwrap_err(),
        ApiError::Invalid {
            field: "refresh_token",
            expected: "a non-empty string"
        }
    );
    assert_eq!(
        parse_refresh(br#"{"refresh_token":"a","access_token":"b"}"#)
            .unwrap_err()
            .detail(),
        "unknown field `access_token` for refresh; allowed: refresh_token"
    );
    for empty in ["", "  \r\n", "{}", r#"{"refresh_token":null}"#] {
        assert_eq!(
            parse_logout(empty.as_bytes()).unwrap(),
            LogoutRequest::default(),
            "{empty}"
        );
    }
    let out = parse_logout(br#"{"refresh_token":"abc"}"#).unwrap();
    assert_eq!(out.refresh_token.as_deref(), Some("abc"));
    assert!(!format!("{out:?}").contains("abc"));
    assert_eq!(parse_logout(b"[]").unwrap_err(), ApiError::NotAnObject);
    assert!(matches!(
        parse_logout(b"{").unwrap_err(),
        ApiError::InvalidJson(_)
    ));
    assert!(matches!(
        parse_logout(br#"{"x":1}"#).unwrap_err(),
        ApiError::UnknownFields { .. }
    ));
}

// === Never panics ===

/// Small JSON values, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-z_.]{0,8}".prop_map(Value::String),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Objects whose keys are mostly members the API knows.
fn api_body() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "model",
            "domain",
            "fields",
            "limit",
            "offset",
            "order",
            "ids",
            "values",
            "context",
            "args",
            "kwargs",
            "method",
            "name",
            "operator",
            "specification",
            "groupby",
            "lazy",
            "count_limit",
            "attributes",
            "system_id",
            "login",
            "username",
            "password",
            "scopes",
            "refresh_token",
            "result",
            "error",
            "jsonrpc",
            "data",
            "code",
            "message",
        ])
        .prop_map(str::to_owned),
        "[a-z]{1,4}",
    ];
    prop::collection::btree_map(key, json_value(), 0..8)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn exercise(bytes: &[u8]) {
    for op in Operation::ALL {
        if let Ok(call) = build_call(op, bytes) {
            let call = call.into_call();
            let _ = call.class();
            let _ = call.to_body();
        } else if let Err(e) = build_call(op, bytes) {
            assert!(matches!(e.status(), 400 | 403));
            let _ = crate::error::api_error(&e.detail());
        }
    }
    let a = map_answer(bytes, Served::default());
    assert!(serde_json::from_slice::<Value>(&a.body).is_ok());
    let _ = parse_login(bytes);
    let _ = parse_refresh(bytes);
    let _ = parse_logout(bytes);
    let _ = parse_operation(&String::from_utf8_lossy(bytes));
}

proptest! {
    #[test]
    fn nothing_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        exercise(&bytes);
    }

    #[test]
    fn nothing_panics_on_api_shaped_json(body in api_body()) {
        exercise(body.to_string().as_bytes());
        let answer = json!({"jsonrpc": "2.0", "id": 1, "error": body.clone()});
        exercise(answer.to_string().as_bytes());
        let answer = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": 200, "data": body}});
        exercise(answer.to_string().as_bytes());
    }

    #[test]
    fn built_calls_always_match_raw_call_kw(
        name in prop::sample::select(Operation::ALL.to_vec()),
        body in api_body(),
    ) {
        if let Ok(api) = build_call(name, body.to_string().as_bytes()) {
            let raw = raw_call_kw(&api);
            let built = api.into_call();
            prop_assert_eq!(built.class(), raw.class());
            prop_assert_eq!(Call { id: Some(json!(1)), ..built }, raw);
        }
    }
}
