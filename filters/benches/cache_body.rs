//! Cost of the response cache's stored bodies (`cache::body`): what a hit pays to answer a
//! ~12 KB `search_read` result with the caller's id re-stamped, in identity and each
//! precompressed coding, and what storing that result costs once.
//!
//! `cargo bench -p bridgecore-filters --bench cache_body -- --warm-up-time 1 --measurement-time 3`
//!
//! `render/*` is per hit: one exact allocation and a few copies, no compression work.
//! `build/*` is per store, at BridgeCore's level 5: `identity` only copies the result, each
//! coding compresses it once, `all` does the three.

use std::hint::black_box;

use bridgecore_filters::cache::body::{Bodies, Codings, Envelope};
use bridgecore_filters::encoding::Coding;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};

/// A `search_read` answer of 30 res.partner rows, about 12 KB.
fn odoo_rows() -> String {
    let rows: Vec<Value> = (1..=30)
        .map(|i| {
            json!({
                "id": i,
                "name": format!("Partner {i} NV"),
                "display_name": format!("Partner {i} NV, Contact {i}"),
                "email": format!("contact{i}@partner{i}.example.be"),
                "phone": format!("+32 2 555 {:02} {:02}", i, i * 3 % 100),
                "street": format!("Rue de la Loi {i}"),
                "city": "Bruxelles",
                "zip": "1000",
                "country_id": [20, "Belgium"],
                "state_id": false,
                "vat": format!("BE0{:09}", 477_472_701 + i),
                "category_id": [1, 3],
                "user_id": [2, "Mitchell Admin"],
                "credit_limit": 0.0,
                "active": true,
                "lang": "fr_BE",
                "write_date": format!("2024-05-{:02} 10:{:02}:00", i % 28 + 1, i % 60),
            })
        })
        .collect();
    serde_json::to_string(&rows).expect("rows serialise")
}

const ALL: Codings = Codings {
    gzip: true,
    brotli: true,
    zstd: true,
};

fn bench(c: &mut Criterion) {
    let rows = odoo_rows();
    let bodies = Bodies::build(rows.as_bytes(), Envelope::JsonRpc, ALL, 5);
    let id = json!(4711);

    let mut render = c.benchmark_group("render");
    for (name, coding) in [
        ("identity", None),
        ("gzip", Some(Coding::Gzip)),
        ("br", Some(Coding::Brotli)),
        ("zstd", Some(Coding::Zstd)),
    ] {
        let (body, got) = bodies.render(coding, Some(&id));
        assert_eq!(got, coding, "{name} was kept");
        eprintln!(
            "render/{name}: {} bytes (result {} bytes)",
            body.len(),
            rows.len()
        );
        render.bench_function(name, |b| {
            b.iter(|| black_box(&bodies).render(black_box(coding), black_box(Some(&id))))
        });
    }
    render.finish();

    let mut build = c.benchmark_group("build");
    let only = |gzip, brotli, zstd| Codings { gzip, brotli, zstd };
    for (name, codings) in [
        ("identity", only(false, false, false)),
        ("gzip", only(true, false, false)),
        ("br", only(false, true, false)),
        ("zstd", only(false, false, true)),
        ("all", ALL),
    ] {
        build.bench_function(name, |b| {
            b.iter(|| {
                Bodies::build(
                    black_box(rows.as_bytes()),
                    Envelope::JsonRpc,
                    black_box(codings),
                    5,
                )
            })
        });
    }
    build.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
