//! Parse cost of the two most common call shapes, on the hot path of every RPC request.
//!
//! `cargo bench -p bridgecore-filters --bench parse -- --warm-up-time 1 --measurement-time 3`
//!
//! criterion's `iter` drops each result inside the timed loop, so the `parse ...` cases measure
//! parse + drop, as a request pays it; `(drop excluded)` leaves the drop out, and `+ kwargs`
//! adds decoding `kwargs` (what a request whose filters read the arguments pays).

use std::hint::black_box;

use bridgecore_filters::jsonrpc::parse;
use bridgecore_filters::route::endpoint;
use criterion::{criterion_group, criterion_main, Criterion};

/// A web-client list view load (17/18), about 600 bytes.
const WEB_SEARCH_READ: &str = r#"{"jsonrpc":"2.0","method":"call","id":7,"params":{"model":"sale.order","method":"web_search_read","args":[],"kwargs":{"specification":{"name":{},"partner_id":{"fields":{"display_name":{}}},"date_order":{},"user_id":{"fields":{"display_name":{}}},"amount_total":{},"currency_id":{"fields":{}},"state":{},"invoice_status":{},"company_id":{"fields":{"display_name":{}}}},"offset":0,"order":"date_order DESC","limit":80,"context":{"lang":"en_US","tz":"Europe/Brussels","uid":2,"allowed_company_ids":[1],"bin_size":true,"params":{"action":312,"model":"sale.order","view_type":"list"}},"count_limit":10001,"domain":[["state","not in",["draft","sent","cancel"]],["user_id","=",2]]}}}"#;

/// An external `execute_kw` `search_read` over `/jsonrpc`.
const EXECUTE_KW: &str = r#"{"jsonrpc":"2.0","method":"call","params":{"service":"object","method":"execute_kw","args":["prod",2,"0123456789abcdef0123456789abcdef01234567","res.partner","search_read",[[["is_company","=",true],["customer_rank",">",0]]],{"fields":["name","email","phone","country_id"],"limit":50,"offset":0,"order":"name","context":{"lang":"fr_FR","tz":"Europe/Brussels"}}]},"id":3}"#;

fn head(path: &str) -> http::request::Parts {
    http::Request::post(path)
        .header("content-type", "application/json")
        .header(
            "cookie",
            "frontend_lang=en_US; session_id=0123456789abcdef0123456789abcdef01234567; cids=1",
        )
        .body(())
        .expect("a static request")
        .into_parts()
        .0
}

fn bench(c: &mut Criterion) {
    let path = "/web/dataset/call_kw/sale.order/web_search_read";
    let (call_kw_head, call_kw_endpoint) = (head(path), endpoint(path));
    c.bench_function("parse call_kw web_search_read", |b| {
        b.iter(|| {
            parse(
                &call_kw_endpoint,
                &call_kw_head,
                black_box(WEB_SEARCH_READ.as_bytes()),
            )
        })
    });
    c.bench_function("parse call_kw web_search_read (drop excluded)", |b| {
        b.iter_with_large_drop(|| {
            parse(
                &call_kw_endpoint,
                &call_kw_head,
                black_box(WEB_SEARCH_READ.as_bytes()),
            )
        })
    });
    c.bench_function("parse call_kw web_search_read + kwargs", |b| {
        b.iter(|| {
            let call = parse(
                &call_kw_endpoint,
                &call_kw_head,
                black_box(WEB_SEARCH_READ.as_bytes()),
            )
            .expect("a valid call");
            black_box(call.kwargs().len());
            call
        })
    });
    // Baseline: parsing the same bytes into a bare serde_json::Value.
    c.bench_function("baseline serde_json Value call_kw", |b| {
        b.iter(|| {
            serde_json::from_slice::<serde_json::Value>(black_box(WEB_SEARCH_READ.as_bytes()))
        })
    });
    let (rpc_head, rpc_endpoint) = (head("/jsonrpc"), endpoint("/jsonrpc"));
    c.bench_function("parse jsonrpc execute_kw search_read", |b| {
        b.iter(|| parse(&rpc_endpoint, &rpc_head, black_box(EXECUTE_KW.as_bytes())))
    });
    c.bench_function("endpoint call_kw", |b| b.iter(|| endpoint(black_box(path))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
