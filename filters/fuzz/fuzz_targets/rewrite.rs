//! Arbitrary bytes as a request body on each RPC route → `jsonrpc::parse` → domain
//! canonicalisation and `cap_limit` (as the proxy rewrites a search) → `to_body` → `parse`.
//!
//! Checks: never a panic; every call that parses can be rewritten, serialised and parsed back
//! to exactly the rewritten call (same route shape, model, method, arguments, credential); a
//! capped call is within its cap (capping it again changes nothing); a large `read` splits into
//! batches whose calls serialise and parse back with the batch's ids.

#![no_main]

use std::collections::BTreeMap;

use bridgecore_filters::domain::canonicalise;
use bridgecore_filters::jsonrpc::parse;
use bridgecore_filters::rewrite::{cap_limit, merge_read, split_read, LimitCaps};
use bridgecore_filters::route::endpoint;
use bridgecore_filters::Call;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

#[path = "same.rs"]
mod same;

const PATHS: [&str; 5] = [
    "/web/dataset/call_kw/res.partner/search_read",
    "/web/dataset/call_button",
    "/jsonrpc",
    "/json/2/res.partner/search_read",
    "/xmlrpc/2/object",
];

/// Small caps, so that fuzzed limits often exceed them.
fn caps() -> LimitCaps {
    LimitCaps::new(BTreeMap::from([
        ("search".to_owned(), 3),
        ("search_fetch".to_owned(), 4),
        ("search_read".to_owned(), 5),
        ("web_search_read".to_owned(), 5),
        ("name_search".to_owned(), 2),
        ("read".to_owned(), 2),
    ]))
    .with_model("res.partner", "search_read", 7)
    .exempt("res.users", "search")
}

fn head(path: &str) -> http::request::Parts {
    http::Request::post(path)
        .header("cookie", "session_id=fuzz")
        .header("authorization", "bearer fuzz-key")
        .body(())
        .expect("a static request")
        .into_parts()
        .0
}

/// `a == b`, floats within [`same::same`]'s tolerance.
fn assert_same(a: &Call, b: &Call) {
    let object = |map: &Map<String, Value>| Value::Object(map.clone());
    assert_eq!(
        (&a.shape, &a.path, &a.service, &a.service_method, &a.db),
        (&b.shape, &b.path, &b.service, &b.service_method, &b.db)
    );
    assert_eq!(
        (&a.model, &a.method, &a.credential),
        (&b.model, &b.method, &b.credential)
    );
    let id = |call: &Call| call.id.clone().unwrap_or(Value::Null);
    assert_eq!(a.id.is_some(), b.id.is_some());
    assert!(same::same(&id(a), &id(b)), "id");
    assert!(same::same(&object(&a.params), &object(&b.params)), "params");
    assert!(
        same::same(
            &Value::Array(a.args().to_vec()),
            &Value::Array(b.args().to_vec())
        ),
        "args: {:?} != {:?}",
        a.args(),
        b.args()
    );
    assert!(
        same::same(&object(a.kwargs()), &object(b.kwargs())),
        "kwargs: {:?} != {:?}",
        a.kwargs(),
        b.kwargs()
    );
}

fn check(path: &str, body: &[u8], caps: &LimitCaps) {
    let (route, head) = (endpoint(path), head(path));
    let Ok(mut call) = parse(&route, &head, body) else {
        return;
    };
    let original = call.clone();
    if let Some(domain) = call.kwargs().get("domain").and_then(canonicalise) {
        call.kwargs_mut().insert("domain".to_owned(), domain);
    }
    let capped = cap_limit(&mut call, caps);
    let rewritten = call.to_body().expect("a parsed call serialises again");
    let again = parse(&route, &head, &rewritten).expect("a rewritten call parses again");
    assert_eq!(again.shape, original.shape);
    assert_eq!(again.model, original.model);
    assert_eq!(again.method, original.method);
    assert_eq!(again.credential, original.credential);
    assert_same(&again, &call);
    if let Some(capped) = capped {
        assert!(capped.asked.is_none_or(|asked| asked > capped.cap));
        let mut twice = again.clone();
        assert_eq!(
            cap_limit(&mut twice, caps),
            None,
            "capping is not idempotent"
        );
    }
    if let Some(plan) = split_read(&original, 2) {
        let calls = plan.calls(&original);
        assert_eq!(calls.len(), plan.batches.len());
        let mut answers = Vec::new();
        for (batch, sent) in plan.batches.iter().zip(&calls) {
            assert!(!batch.is_empty() && batch.len() <= 2);
            let body = sent.to_body().expect("a batch call serialises");
            let back = parse(&route, &head, &body).expect("a batch call parses");
            assert_same(&back, sent);
            answers.push(back.args()[0].clone());
        }
        let merged = merge_read(answers).expect("lists merge");
        assert_eq!(Some(&merged), original.args().first());
    }
}

fuzz_target!(|data: &[u8]| {
    let caps = caps();
    for path in PATHS {
        check(path, data, &caps);
    }
});
