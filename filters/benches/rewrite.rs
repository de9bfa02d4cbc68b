//! Cost of the request rewrites of issue 5 on one call: parse the body, canonicalise its
//! domain, cap its limit and write the body back, as the proxy does for every rewritten
//! search before forwarding it.
//!
//! `cargo bench -p bridgecore-filters --bench rewrite -- --warm-up-time 1 --measurement-time 3`
//!
//! The target (issue 5, item 7): under 20 µs median for a 1 KB call. `full` measures exactly
//! that; `cap only` leaves the domain alone (so `kwargs` is still decoded and rewritten), and
//! `cap_limit` alone runs on an already-parsed call (clone included, to start from the same
//! call every time).

use std::collections::BTreeMap;
use std::hint::black_box;

use bridgecore_filters::domain::canonicalise;
use bridgecore_filters::jsonrpc::parse;
use bridgecore_filters::rewrite::{cap_limit, LimitCaps};
use bridgecore_filters::route::endpoint;
use bridgecore_filters::{Call, Endpoint};
use criterion::{criterion_group, criterion_main, Criterion};

/// A `search_read` from an integration script over the web client's route, about 1 KB: a list
/// of fields, a domain with an implicit AND, an OR group and a negation, no sensible limit.
const SEARCH_READ: &str = r#"{"jsonrpc":"2.0","method":"call","id":17,"params":{"model":"res.partner","method":"search_read","args":[],"kwargs":{"domain":[["customer_rank",">",0],["active","=",true],"|","|",["country_id.code","=","BE"],["country_id.code","=","NL"],["country_id.code","=","LU"],"!",["email","=",false],["company_id","in",[1,3]],["create_date",">=","2024-01-01 00:00:00"],"|",["name","ilike","bv"],["name","ilike","nv"],["user_id","<>",false],["type","in",["contact","invoice","delivery"]],["parent_id","=",false],["industry_id.name","not ilike","public"]],"fields":["name","display_name","email","phone","mobile","street","street2","zip","city","state_id","country_id","vat","ref","user_id","property_payment_term_id","credit_limit","category_id","company_id","website","function","title","lang","industry_id","write_date"],"offset":0,"limit":5000,"order":"name ASC, id DESC","context":{"lang":"en_US","tz":"Europe/Brussels","uid":2,"allowed_company_ids":[1,3],"bin_size":true,"active_test":true}}}}"#;

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

fn caps() -> LimitCaps {
    LimitCaps::new(BTreeMap::from([
        ("search_read".to_owned(), 200),
        ("web_search_read".to_owned(), 200),
        ("read".to_owned(), 100),
        ("name_search".to_owned(), 50),
    ]))
}

/// Parse, canonicalise the domain (optionally), cap the limit, write the body.
fn rewrite(
    endpoint: &Endpoint,
    head: &http::request::Parts,
    body: &[u8],
    caps: &LimitCaps,
    domain: bool,
) -> Vec<u8> {
    let mut call = parse(endpoint, head, body).expect("a valid call");
    if domain {
        let canonical = call.kwargs().get("domain").and_then(canonicalise);
        if let Some(canonical) = canonical {
            call.kwargs_mut().insert("domain".to_owned(), canonical);
        }
    }
    let capped = cap_limit(&mut call, caps);
    assert!(capped.is_some());
    call.to_body().expect("a serialisable call")
}

fn bench(c: &mut Criterion) {
    let path = "/web/dataset/call_kw/res.partner/search_read";
    let (head, endpoint) = (head(path), endpoint(path));
    let body = SEARCH_READ.as_bytes();
    let caps = caps();
    let out = rewrite(&endpoint, &head, body, &caps, true);
    eprintln!("input {} bytes, output {} bytes", body.len(), out.len());
    c.bench_function("rewrite full (parse + domain + cap + to_body)", |b| {
        b.iter(|| rewrite(&endpoint, &head, black_box(body), &caps, true))
    });
    c.bench_function("rewrite cap only (parse + cap + to_body)", |b| {
        b.iter(|| rewrite(&endpoint, &head, black_box(body), &caps, false))
    });
    let parsed: Call = parse(&endpoint, &head, body).expect("a valid call");
    parsed.kwargs();
    c.bench_function("cap_limit on a parsed call (clone included)", |b| {
        b.iter(|| {
            let mut call = parsed.clone();
            black_box(cap_limit(&mut call, &caps));
            call
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
