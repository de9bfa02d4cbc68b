//! Cost of canonicalising a request's domain (odoo-protocol.md §6), on the hot path of every
//! cacheable read whose domain feeds the cache key.
//!
//! `cargo bench -p bridgecore-filters --bench domain -- --warm-up-time 1 --measurement-time 3`
//!
//! The target (issue 5, item 2): parse + canonicalise + re-serialise a 1 KB call in under
//! 20 µs (median). `full` measures exactly that: parse the body, read `kwargs.domain`,
//! canonicalise it, put it back and write the body. `baseline` does the same without the
//! canonicalisation (the body is still rewritten from values), so the difference is the
//! domain's own cost; `canonicalise only` isolates it on an already-decoded domain.

use std::hint::black_box;

use bridgecore_filters::domain::canonicalise;
use bridgecore_filters::jsonrpc::parse;
use bridgecore_filters::route::endpoint;
use criterion::{criterion_group, criterion_main, Criterion};

/// A web-client list view of sale orders with a busy filter panel (17/18), about 1 KB: implicit
/// top-level AND, a facet OR group, a negation, a dotted path and an `any` sub-domain, in the
/// order the user clicked them.
const WEB_SEARCH_READ: &str = r#"{"jsonrpc":"2.0","method":"call","id":42,"params":{"model":"sale.order","method":"web_search_read","args":[],"kwargs":{"specification":{"name":{},"partner_id":{"fields":{"display_name":{}}},"date_order":{},"user_id":{"fields":{"display_name":{}}},"amount_total":{},"state":{},"invoice_status":{}},"offset":0,"order":"date_order DESC","limit":80,"context":{"lang":"en_US","tz":"Europe/Brussels","uid":2,"allowed_company_ids":[1,3],"bin_size":true},"count_limit":10001,"domain":[["user_id","=",2],"|","|",["state","=","sale"],["state","=","done"],["state","=","sent"],["date_order",">=","2024-01-01 00:00:00"],["date_order","<","2025-01-01 00:00:00"],"!",["invoice_status","=","invoiced"],["partner_id.country_id.code","in",["BE","NL","LU"]],["company_id","in",[1,3]],["order_line","any",[["product_id.default_code","=ilike","FURN%"],["qty_delivered","<",5]]],["amount_total",">",1000],"|",["name","ilike","SO0"],["client_order_ref","ilike","PO-"],["team_id","<>",false]]}}}"#;

fn head(path: &str) -> http::request::Parts {
    http::Request::post(path)
        .header("content-type", "application/json")
        .header(
            "cookie",
            "session_id=0123456789abcdef0123456789abcdef01234567",
        )
        .body(())
        .expect("a static request")
        .into_parts()
        .0
}

/// Parse, (optionally) canonicalise the domain, write the body back from values.
fn round_trip(
    endpoint: &bridgecore_filters::Endpoint,
    head: &http::request::Parts,
    body: &[u8],
    canonical: bool,
) -> Vec<u8> {
    let mut call = parse(endpoint, head, body).expect("a valid call");
    let rewritten = match call.kwargs().get("domain") {
        Some(domain) if canonical => canonicalise(domain),
        _ => None,
    };
    // Touching `kwargs_mut` makes `to_body` write the kwargs from values in both cases.
    let kwargs = call.kwargs_mut();
    if let Some(domain) = rewritten {
        kwargs.insert("domain".to_owned(), domain);
    }
    call.to_body().expect("a serialisable call")
}

fn bench(c: &mut Criterion) {
    let path = "/web/dataset/call_kw/sale.order/web_search_read";
    let (head, endpoint) = (head(path), endpoint(path));
    let body = WEB_SEARCH_READ.as_bytes();
    assert!((900..1200).contains(&body.len()), "{} bytes", body.len());
    let domain = parse(&endpoint, &head, body)
        .expect("a valid call")
        .kwargs()
        .get("domain")
        .cloned()
        .expect("a domain");
    assert!(canonicalise(&domain).is_some(), "the domain is well-formed");

    c.bench_function(
        "domain full: parse + canonicalise + to_body (1 KB call_kw)",
        |b| b.iter(|| round_trip(&endpoint, &head, black_box(body), true)),
    );
    c.bench_function("domain baseline: parse + to_body (1 KB call_kw)", |b| {
        b.iter(|| round_trip(&endpoint, &head, black_box(body), false))
    });
    c.bench_function("domain canonicalise only", |b| {
        b.iter(|| canonicalise(black_box(&domain)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
