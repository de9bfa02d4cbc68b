//! Field expansion's planner and merger (issue 5 item 3) on arbitrary input: a JSON document
//! `{"catalog": {model: fields_get}, "fields": [...], "nested": bool, "base": [...],
//! "db": {model: [records]}, "web": [...]}` (any member may be missing or of the wrong type;
//! the catalog defaults to a small sale/partner/country schema).
//!
//! Checks: never a panic; each planned path has at most `MAX_LEVELS` nodes; each level read
//! asks distinct ids, at most one read per model and level, and no more levels than planned;
//! the merged answer has one record per base record, each with every flat key asked; the 17+
//! specification's answer (arbitrary `web` records) reshapes without panicking.

#![no_main]

use std::collections::{BTreeMap, HashSet};

use bridgecore_filters::expand::call::target;
use bridgecore_filters::expand::spec::{reshape, specification};
use bridgecore_filters::expand::{plan, Expansion, Layout, Planned, Request, MAX_LEVELS};
use bridgecore_filters::{Call, Credential, Shape};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

fn default_catalog() -> BTreeMap<String, Map<String, Value>> {
    let v = json!({
        "sale.order": {"id": {"type": "integer"}, "name": {"type": "char"},
            "partner_id": {"type": "many2one", "relation": "res.partner"},
            "order_line": {"type": "one2many", "relation": "sale.order.line"}},
        "sale.order.line": {"id": {"type": "integer"}, "name": {"type": "char"},
            "order_id": {"type": "many2one", "relation": "sale.order"}},
        "res.partner": {"id": {"type": "integer"}, "name": {"type": "char"},
            "parent_id": {"type": "many2one", "relation": "res.partner"},
            "child_ids": {"type": "one2many", "relation": "res.partner"},
            "country_id": {"type": "many2one", "relation": "res.country"}},
        "res.country": {"id": {"type": "integer"}, "code": {"type": "char"}},
    });
    catalog_of(&v).unwrap_or_default()
}

fn catalog_of(v: &Value) -> Option<BTreeMap<String, Map<String, Value>>> {
    Some(
        v.as_object()?
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_object()?.clone())))
            .collect(),
    )
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let catalog = input
        .get("catalog")
        .and_then(catalog_of)
        .unwrap_or_else(default_catalog);
    let fields: Vec<String> = input
        .get("fields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let nested = input
        .get("nested")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut auto = BTreeMap::new();
    if let Some(a) = input.get("auto").and_then(Value::as_object) {
        for (k, v) in a {
            let subs = v
                .as_array()
                .map(|s| {
                    s.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            auto.insert(k.clone(), subs);
        }
    }
    // `{"call": {"method", "args", "kwargs"}}`: the field list found in a call, and the calls
    // built from it.
    if let Some(c) = input.get("call") {
        let mut call = Call::new(Shape::CallKw, "/web/dataset/call_kw");
        call.model = Some("sale.order".into());
        call.method = c.get("method").and_then(Value::as_str).map(str::to_owned);
        call.credential = Credential::Session("fuzz".into());
        call.set_args(
            c.get("args")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        );
        call.set_kwargs(
            c.get("kwargs")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        );
        let layout = if nested { Layout::Nested } else { Layout::Flat };
        if let Some(t) = target(&call, &auto, layout) {
            if let Planned::Ready(p) = plan(&t.request, &catalog) {
                let (args, _) = t.base_call(&p);
                assert_eq!(args.len(), t.args.len());
                if t.spec_compatible(&p) {
                    let _ = t.web_call(specification(&p, t.own_spec.as_ref()));
                }
            }
        }
        return;
    }
    let request = Request {
        model: "sale.order".into(),
        all_fields: fields.is_empty(),
        fields,
        auto,
        layout: if nested { Layout::Nested } else { Layout::Flat },
    };
    let Planned::Ready(p) = plan(&request, &catalog) else {
        return;
    };
    for path in &p.paths {
        assert!(path.nodes.len() <= MAX_LEVELS);
        assert!(!path.nodes.is_empty());
    }
    let base = input.get("base").cloned().unwrap_or(json!([]));
    let base_len = base.as_array().map_or(0, Vec::len);
    if let Ok(mut exp) = Expansion::new(&p, base) {
        let db = input.get("db").and_then(Value::as_object);
        let mut rounds = 0;
        while !exp.complete() {
            rounds += 1;
            assert!(rounds <= p.levels());
            let reads = exp.next_reads();
            let mut models = HashSet::new();
            for r in &reads {
                assert!(
                    models.insert(r.model.clone()),
                    "two reads of one model in a level"
                );
                let distinct: HashSet<_> = r.ids.iter().collect();
                assert_eq!(distinct.len(), r.ids.len(), "duplicate ids in a read");
                // Odoo answers with the records it has among those asked.
                let answer: Vec<Value> = db
                    .and_then(|d| d.get(&r.model))
                    .and_then(Value::as_array)
                    .map(|rows| {
                        rows.iter()
                            .filter(|row| {
                                row.get("id")
                                    .and_then(Value::as_i64)
                                    .is_some_and(|id| r.ids.contains(&id))
                            })
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                let _ = exp.add(r, Value::Array(answer));
            }
        }
        let rows = exp.finish(bridgecore_filters::expand::Form::Classic);
        assert_eq!(rows.len(), base_len);
        if !nested {
            for row in &rows {
                for path in &p.paths {
                    assert!(row.get(&path.key).is_some(), "missing {}", path.key);
                }
            }
        }
    }
    let spec = specification(&p, None);
    assert_eq!(
        spec.is_empty(),
        p.roots.is_empty() && p.base_fields.as_ref().is_none_or(Vec::is_empty)
    );
    let web = input.get("web").cloned().unwrap_or(json!([]));
    let web_len = web.as_array().map(Vec::len);
    if let Ok(exp) = reshape(&p, web, true) {
        let rows = exp.finish(bridgecore_filters::expand::Form::Classic);
        assert_eq!(Some(rows.len()), web_len);
    }
});
