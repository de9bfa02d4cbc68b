//! The pure request-side cost of a cache hit: parsing the web client's list-view call,
//! the caller's identity (an HMAC of the session id), the key (canonical arguments, canonical
//! domain and whole context under SHA-256), and the whole of it with the identity render of a
//! ~12 KB stored answer — by the canonical key (first sight of a call) and by the byte key
//! (a repeated call: its arguments are never decoded). What is left of a hit's cost is
//! Pingora's and the socket's.
//!
//! `cargo bench -p bridgecore-filters --bench cache_key -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use bridgecore_filters::cache::body::{Bodies, Codings, Envelope};
use bridgecore_filters::cache::key::{CacheKey, Identity};
use bridgecore_filters::jsonrpc::parse;
use bridgecore_filters::route::endpoint;
use criterion::{criterion_group, criterion_main, Criterion};

/// The call `tests/load/call_kw.lua` sends: a contacts list view (Odoo 17).
const WEB_SEARCH_READ: &str = r#"{"id":7,"jsonrpc":"2.0","method":"call","params":{"model":"res.partner","method":"web_search_read","args":[],"kwargs":{"specification":{"display_name":{},"email":{},"phone":{},"company_id":{"fields":{"display_name":{}}},"city":{},"country_id":{"fields":{"display_name":{}}},"user_id":{"fields":{"display_name":{}}},"activity_ids":{},"is_company":{}},"offset":0,"order":"","limit":80,"context":{"lang":"en_US","tz":"Europe/Brussels","uid":2,"allowed_company_ids":[1],"bin_size":true,"current_company_id":1},"count_limit":10001,"domain":[["is_company","=",true]]}}}"#;

fn bench(c: &mut Criterion) {
    let path = "/web/dataset/call_kw/res.partner/web_search_read";
    let head = http::Request::post(path)
        .header("content-type", "application/json")
        .header(
            "cookie",
            "frontend_lang=en_US; session_id=3f1c0b9e6d2a4c8e9f7b5a1d3c6e8f0a2b4d6c8e",
        )
        .body(())
        .expect("a static request")
        .into_parts()
        .0;
    let ep = endpoint(path);
    let secret = b"a-cache-key-secret-of-some-length";
    let call = parse(&ep, &head, WEB_SEARCH_READ.as_bytes()).expect("parses");
    let result = format!(
        "[{}]",
        (0..40)
            .map(|i| format!(r#"{{"id":{i},"display_name":"Partner {i}, Contact","email":"c{i}@example.com","phone":"+32 2 555 00 {i:02}","company_id":false,"city":"Bruxelles","country_id":{{"id":20,"display_name":"Belgium"}},"user_id":{{"id":2,"display_name":"Mitchell Admin"}},"activity_ids":[],"is_company":true}}"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    let no_codings = Codings {
        gzip: false,
        brotli: false,
        zstd: false,
    };
    let bodies = Bodies::build(result.as_bytes(), Envelope::JsonRpc, no_codings, 5);

    c.bench_function("identity (HMAC of the session)", |b| {
        b.iter(|| Identity::of(black_box(&call.credential), secret))
    });
    c.bench_function("key of a parsed call", |b| {
        let id = Identity::of(&call.credential, secret).expect("a session");
        b.iter(|| CacheKey::of("odoo", Some(&id), black_box(&call)))
    });
    c.bench_function("hit by bytes: parse + identity + byte key + render", |b| {
        b.iter(|| {
            let call = parse(&ep, &head, black_box(WEB_SEARCH_READ.as_bytes())).expect("parses");
            let id = Identity::of(&call.credential, secret).expect("a session");
            let key = CacheKey::of_bytes("odoo", Some(&id), &call);
            let out = bodies.render(None, call.id.as_ref());
            (key, out)
        })
    });
    c.bench_function("hit: parse + identity + key + render", |b| {
        b.iter(|| {
            let call = parse(&ep, &head, black_box(WEB_SEARCH_READ.as_bytes())).expect("parses");
            let id = Identity::of(&call.credential, secret).expect("a session");
            let key = CacheKey::of("odoo", Some(&id), &call);
            let out = bodies.render(None, call.id.as_ref());
            (key, out)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
