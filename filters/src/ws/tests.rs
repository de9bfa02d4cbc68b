use serde_json::{json, Value};

use super::change::{answer, change_of, Answer, Change, Envelope, Operation, Source};
use super::poll::{format_datetime, parse_datetime, rows, PollState, Polled};
use super::protocol::{self, parse, ClientMessage, ErrorCode, Limits, ModelUpdate};
use crate::call::{Call, Shape};
use crate::jsonrpc;
use crate::route::Endpoint;

fn limits() -> Limits {
    Limits::default()
}

fn err(text: &str) -> (ErrorCode, String, Option<Value>) {
    let e = parse(text, &limits()).unwrap_err();
    (e.code, e.message, e.request_id)
}

// === protocol ===

#[test]
fn parses_each_message_type() {
    let m = parse(r#"{"type":"auth","token":"abc"}"#, &limits()).unwrap();
    assert_eq!(
        m.message,
        ClientMessage::Auth {
            token: "abc".into()
        }
    );
    let m = parse(
        r#"{"type":"ping","timestamp":5,"request_id":"r1"}"#,
        &limits(),
    )
    .unwrap();
    assert_eq!(
        m.message,
        ClientMessage::Ping {
            timestamp: Some(json!(5))
        }
    );
    assert_eq!(m.request_id, Some(json!("r1")));
    let m = parse(
        r#"{"type":"unsubscribe_model","subscription_id":"s1","extra":[1]}"#,
        &limits(),
    )
    .unwrap();
    assert_eq!(
        m.message,
        ClientMessage::Unsubscribe {
            subscription_id: "s1".into()
        }
    );
    let m = parse(
        r#"{"type":"subscribe_model","system_id":"odoo","model":"sale.order","record_ids":[8,3,3],"fields":["name","state","name"],"request_id":7}"#,
        &limits(),
    )
    .unwrap();
    let ClientMessage::Subscribe(s) = m.message else {
        panic!("not a subscribe")
    };
    assert_eq!(s.system_id.as_deref(), Some("odoo"));
    assert_eq!(s.model, "sale.order");
    assert_eq!(s.record_ids, Some(vec![3, 8]));
    assert_eq!(s.fields, Some(vec!["name".to_owned(), "state".to_owned()]));
    assert_eq!(m.request_id, Some(json!(7)));
}

#[test]
fn subscribe_defaults() {
    let m = parse(
        r#"{"type":"subscribe_model","model":"res.partner","fields":[]}"#,
        &limits(),
    )
    .unwrap();
    let ClientMessage::Subscribe(s) = m.message else {
        panic!("not a subscribe")
    };
    assert_eq!(s.system_id, None);
    assert_eq!(s.record_ids, None);
    assert_eq!(s.fields, None, "an empty field list means no data");
}

#[test]
fn malformed_messages_are_errors_with_codes() {
    assert_eq!(err("not json").0, ErrorCode::InvalidJson);
    assert_eq!(err("[1,2]").0, ErrorCode::InvalidJson);
    assert_eq!(err("{}").0, ErrorCode::InvalidMessage);
    assert_eq!(err(r#"{"type":5}"#).0, ErrorCode::InvalidMessage);
    let (code, message, rid) = err(r#"{"type":"hello","request_id":"x"}"#);
    assert_eq!(code, ErrorCode::UnknownType);
    assert!(message.contains("hello"), "{message}");
    assert_eq!(rid, Some(json!("x")));
    assert_eq!(err(r#"{"type":"auth"}"#).0, ErrorCode::InvalidMessage);
    assert_eq!(
        err(r#"{"type":"auth","token":""}"#).0,
        ErrorCode::InvalidMessage
    );
    assert_eq!(
        err(r#"{"type":"ping","request_id":{"a":1}}"#).0,
        ErrorCode::InvalidMessage
    );
    let long = format!(r#"{{"type":"ping","request_id":"{}"}}"#, "x".repeat(129));
    assert_eq!(err(&long).0, ErrorCode::InvalidMessage);
}

#[test]
fn subscribe_validation() {
    for bad in [
        r#"{"type":"subscribe_model"}"#,
        r#"{"type":"subscribe_model","model":""}"#,
        r#"{"type":"subscribe_model","model":"res partner"}"#,
        r#"{"type":"subscribe_model","model":"res.partner;drop"}"#,
        r#"{"type":"subscribe_model","model":".x"}"#,
        r#"{"type":"subscribe_model","model":"res.partner","record_ids":[]}"#,
        r#"{"type":"subscribe_model","model":"res.partner","record_ids":[0]}"#,
        r#"{"type":"subscribe_model","model":"res.partner","record_ids":[-1]}"#,
        r#"{"type":"subscribe_model","model":"res.partner","record_ids":[1.5]}"#,
        r#"{"type":"subscribe_model","model":"res.partner","record_ids":["1"]}"#,
        r#"{"type":"subscribe_model","model":"res.partner","record_ids":[2147483648]}"#,
        r#"{"type":"subscribe_model","model":"res.partner","record_ids":7}"#,
        r#"{"type":"subscribe_model","model":"res.partner","fields":"name"}"#,
        r#"{"type":"subscribe_model","model":"res.partner","fields":["a.b"]}"#,
        r#"{"type":"subscribe_model","model":"res.partner","fields":[1]}"#,
        r#"{"type":"subscribe_model","model":"res.partner","system_id":5}"#,
    ] {
        assert_eq!(err(bad).0, ErrorCode::InvalidMessage, "{bad}");
    }
    let small = Limits {
        max_record_ids: 2,
        max_fields: 1,
    };
    let e = parse(
        r#"{"type":"subscribe_model","model":"m","record_ids":[1,2,3]}"#,
        &small,
    )
    .unwrap_err();
    assert!(e.message.contains("at most 2"), "{}", e.message);
    let e = parse(
        r#"{"type":"subscribe_model","model":"m","fields":["a","b"]}"#,
        &small,
    )
    .unwrap_err();
    assert!(e.message.contains("at most 1"), "{}", e.message);
}

#[test]
fn answers_are_json_with_the_request_id() {
    let e: Value = serde_json::from_str(&protocol::error(
        Some(&json!(3)),
        ErrorCode::Forbidden,
        "no",
    ))
    .unwrap();
    assert_eq!(
        e,
        json!({"type": "error", "code": "forbidden", "message": "no", "request_id": 3})
    );
    let p: Value = serde_json::from_str(&protocol::pong(None, Some(&json!("t")))).unwrap();
    assert_eq!(p, json!({"type": "pong", "timestamp": "t"}));
    let data = json!({"name": "A \"quoted\""});
    let update = ModelUpdate {
        kind: "model_update",
        system_id: "odoo",
        model: "res.partner",
        record_id: 4,
        operation: "write",
        data: Some(&data),
        write_date: Some("2024-01-01 00:00:00"),
        source: "bridgecore",
    };
    let u: Value = serde_json::from_str(&update.to_message("s1")).unwrap();
    assert_eq!(
        u,
        json!({"type": "model_update", "system_id": "odoo", "model": "res.partner",
            "record_id": 4, "operation": "write", "data": {"name": "A \"quoted\""},
            "write_date": "2024-01-01 00:00:00", "source": "bridgecore", "subscription_id": "s1"})
    );
    // One prefix, many subscriptions.
    let prefix = update.prefix();
    let v: Value = serde_json::from_str(&protocol::with_subscription(&prefix, "s\"9")).unwrap();
    assert_eq!(v["subscription_id"], "s\"9");
    let bare = ModelUpdate {
        data: None,
        write_date: None,
        ..update
    };
    let v: Value = serde_json::from_str(&bare.to_message("s2")).unwrap();
    assert_eq!(
        (v["data"].clone(), v["write_date"].clone()),
        (Value::Null, Value::Null)
    );
}

// === change events ===

fn call_kw(model: &str, method: &str, args: Value, kwargs: Value) -> Call {
    let body = json!({"jsonrpc": "2.0", "method": "call", "id": 1,
        "params": {"model": model, "method": method, "args": args, "kwargs": kwargs}});
    let head = http::Request::post("/web/dataset/call_kw")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    jsonrpc::parse(
        &Endpoint::CallKw,
        &head,
        &serde_json::to_vec(&body).unwrap(),
    )
    .unwrap()
}

#[test]
fn ids_come_from_the_answer_for_creates_and_from_the_arguments_otherwise() {
    let c = call_kw("res.partner", "create", json!([{"name": "x"}]), json!({}));
    assert_eq!(
        change_of(&c, &json!(42)),
        Some(("res.partner".into(), Operation::Create, vec![42]))
    );
    assert_eq!(
        change_of(&c, &json!([43, 44])),
        Some(("res.partner".into(), Operation::Create, vec![43, 44]))
    );
    let c = call_kw(
        "res.partner",
        "write",
        json!([[5, 3, 5], {"name": "x"}]),
        json!({}),
    );
    assert_eq!(
        change_of(&c, &json!(true)),
        Some(("res.partner".into(), Operation::Write, vec![3, 5]))
    );
    let c = call_kw("sale.order", "action_confirm", json!([8]), json!({}));
    assert_eq!(
        change_of(&c, &json!(true)),
        Some(("sale.order".into(), Operation::Write, vec![8]))
    );
    let c = call_kw("res.partner", "unlink", json!([[9]]), json!({}));
    assert_eq!(
        change_of(&c, &json!(true)),
        Some(("res.partner".into(), Operation::Unlink, vec![9]))
    );
    let c = call_kw("res.partner", "name_create", json!(["Bob"]), json!({}));
    assert_eq!(
        change_of(&c, &json!([77, "Bob"])),
        Some(("res.partner".into(), Operation::Create, vec![77]))
    );
    let c = call_kw(
        "res.partner",
        "web_save",
        json!([[], {"name": "n"}]),
        json!({}),
    );
    assert_eq!(
        change_of(&c, &json!([{"id": 12, "name": "n"}])),
        Some(("res.partner".into(), Operation::Create, vec![12]))
    );
    let c = call_kw(
        "res.partner",
        "web_save",
        json!([[12], {"name": "n"}]),
        json!({}),
    );
    assert_eq!(
        change_of(&c, &json!([{"id": 12}])),
        Some(("res.partner".into(), Operation::Write, vec![12]))
    );
    // An @api.model method with no ids: no event.
    let c = call_kw(
        "res.partner",
        "some_model_method",
        json!([{"a": 1}]),
        json!({}),
    );
    assert_eq!(change_of(&c, &json!(true)), None);
    let c = call_kw("res.partner", "write", json!([]), json!({}));
    assert_eq!(change_of(&c, &json!(true)), None);
}

#[test]
fn json2_ids_are_named() {
    let mut c = Call::new(Shape::Json2, "/json/2/res.partner/write");
    c.model = Some("res.partner".into());
    c.method = Some("write".into());
    let mut kw = serde_json::Map::new();
    kw.insert("ids".into(), json!([1, 2]));
    c.set_kwargs(kw);
    assert_eq!(
        change_of(&c, &json!(true)),
        Some(("res.partner".into(), Operation::Write, vec![1, 2]))
    );
}

#[test]
fn answers_fail_on_errors_and_statuses() {
    let ok = br#"{"jsonrpc":"2.0","id":1,"result":[5]}"#;
    assert_eq!(answer(&Shape::CallKw, 200, ok), Answer::Result(json!([5])));
    assert_eq!(answer(&Shape::CallKw, 500, ok), Answer::Failed);
    let e = br#"{"jsonrpc":"2.0","id":1,"error":{"code":200,"message":"x"}}"#;
    assert_eq!(answer(&Shape::CallKw, 200, e), Answer::Failed);
    assert_eq!(answer(&Shape::JsonRpc, 200, b"garbage"), Answer::Failed);
    assert_eq!(
        answer(&Shape::Json2, 200, b"[3]"),
        Answer::Result(json!([3]))
    );
    let xml = b"<?xml version='1.0'?><methodResponse><params><param><value><int>17</int></value></param></params></methodResponse>";
    assert_eq!(
        answer(&Shape::XmlRpc { legacy: false }, 200, xml),
        Answer::Result(json!([17]))
    );
    let fault = b"<?xml version='1.0'?><methodResponse><fault><value><struct><member><name>faultCode</name><value><int>1</int></value></member></struct></value></fault></methodResponse>";
    assert_eq!(
        answer(&Shape::XmlRpc { legacy: false }, 200, fault),
        Answer::Failed
    );
}

#[test]
fn envelopes_round_trip_and_garbage_is_refused() {
    let env = Envelope {
        origin: "a".into(),
        change: Change::new(
            "odoo",
            "res.partner",
            Operation::Write,
            Source::Bridgecore,
            &[1, 2],
        ),
    };
    assert_eq!(Envelope::decode(env.encode().as_bytes()), Ok(env));
    assert!(Envelope::decode(b"{}").is_err());
    assert!(Envelope::decode(b"\xff\xfe").is_err());
    let bad = r#"{"origin":"a","change":{"tenant":"t","model":"x y","operation":"write","source":"odoo","records":[]}}"#;
    assert!(Envelope::decode(bad.as_bytes()).is_err());
    let bad = r#"{"origin":"a","change":{"tenant":"t","model":"m","operation":"write","source":"odoo","records":[{"id":-1}]}}"#;
    assert!(Envelope::decode(bad.as_bytes()).is_err());
}

// === poller bookkeeping ===

#[test]
fn datetimes_round_trip() {
    for s in [
        "1970-01-01 00:00:00",
        "2024-02-29 23:59:59",
        "2000-12-31 12:00:00",
    ] {
        assert_eq!(format_datetime(parse_datetime(s).unwrap()), s);
    }
    assert_eq!(parse_datetime("1970-01-02 00:00:01"), Some(86_401));
    assert_eq!(
        parse_datetime("2024-01-15 09:00:00.123456"),
        parse_datetime("2024-01-15 09:00:00")
    );
    for bad in [
        "",
        "2024-01-15",
        "2024-13-01 00:00:00",
        "2024-01-15 9:00:00x",
        "abcd-ef-gh ij:kl:mn",
    ] {
        assert_eq!(parse_datetime(bad), None, "{bad}");
    }
}

fn row(id: i64, wd: &str) -> Polled {
    Polled {
        id,
        write_date: wd.into(),
        create_date: None,
    }
}

#[test]
fn the_overlap_window_reports_each_change_once() {
    let mut st = PollState::default();
    assert!(!st.started());
    assert_eq!(st.domain(60), json!([]));
    st.baseline(Some("2024-01-15 09:00:00"));
    // The baseline's window is known, not reported.
    st.mark_seen(&[row(1, "2024-01-15 09:00:00")]);
    assert_eq!(
        st.domain(60),
        json!([["write_date", ">=", "2024-01-15 08:59:00"]])
    );
    let new = st.absorb(
        vec![row(1, "2024-01-15 09:00:00"), row(2, "2024-01-15 09:00:05")],
        60,
    );
    assert_eq!(new, vec![row(2, "2024-01-15 09:00:05")]);
    // The same rows again (the overlap), plus a late commit with an older stamp.
    let new = st.absorb(
        vec![
            row(1, "2024-01-15 09:00:00"),
            row(3, "2024-01-15 08:59:30"),
            row(2, "2024-01-15 09:00:05"),
        ],
        60,
    );
    assert_eq!(new, vec![row(3, "2024-01-15 08:59:30")]);
    // A second write of record 2 is a new pair.
    let new = st.absorb(vec![row(2, "2024-01-15 09:00:09")], 60);
    assert_eq!(new.len(), 1);
    // Pairs older than the window are forgotten.
    st.absorb(vec![row(4, "2024-01-15 09:10:00")], 60);
    assert!(st.seen.iter().all(|(t, _)| *t >= st.cursor.unwrap() - 60));
}

#[test]
fn baseline_of_an_empty_model_and_operations() {
    let mut st = PollState::default();
    st.baseline(None);
    assert_eq!(st.cursor, Some(0));
    let created = Polled {
        id: 1,
        write_date: "2024-01-15 09:00:00".into(),
        create_date: Some("2024-01-15 09:00:00".into()),
    };
    assert_eq!(created.operation(), Operation::Create);
    let written = Polled {
        create_date: Some("2024-01-14 09:00:00".into()),
        ..created
    };
    assert_eq!(written.operation(), Operation::Write);
}

#[test]
fn poll_rows_are_validated() {
    let ok = json!([{"id": 3, "write_date": "2024-01-15 09:00:00", "create_date": "2024-01-15 09:00:00"}]);
    assert_eq!(rows(&ok).unwrap().len(), 1);
    assert!(rows(&json!({"a": 1})).is_err());
    assert!(rows(&json!([{"id": 3, "write_date": false}])).is_err());
    assert!(rows(&json!([{"write_date": "2024-01-15 09:00:00"}])).is_err());
}

#[test]
fn the_state_serialises() {
    let mut st = PollState::default();
    st.baseline(Some("2024-01-15 09:00:00"));
    st.mark_seen(&[row(1, "2024-01-15 09:00:00")]);
    let text = serde_json::to_string(&st).unwrap();
    let back: PollState = serde_json::from_str(&text).unwrap();
    assert_eq!(back, st);
}
