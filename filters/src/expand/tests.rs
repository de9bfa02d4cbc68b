use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::call::{target, Method};
use super::merge::Expansion;
use super::plan::{plan, Plan, Planned, Request};
use super::spec::{reshape, specification};
use super::{Form, Layout, Skip};
use crate::call::{Call, Credential, Shape};

// === A small schema and database ===

type Catalog = BTreeMap<String, Map<String, Value>>;

fn field(kind: &str, relation: Option<&str>) -> Value {
    match relation {
        Some(r) => json!({"type": kind, "relation": r}),
        None => json!({"type": kind}),
    }
}

/// `sale.order` → `res.partner` → `res.country`, with x2many both ways.
fn catalog() -> Catalog {
    let mut c = Catalog::new();
    let mut add = |model: &str, fields: &[(&str, &str, Option<&str>)]| {
        let mut m = Map::new();
        m.insert("id".into(), field("integer", None));
        m.insert("display_name".into(), field("char", None));
        for (name, kind, rel) in fields {
            m.insert((*name).into(), field(kind, *rel));
        }
        c.insert(model.into(), m);
    };
    add(
        "sale.order",
        &[
            ("name", "char", None),
            ("partner_id", "many2one", Some("res.partner")),
            ("user_id", "many2one", Some("res.users")),
            ("order_line", "one2many", Some("sale.order.line")),
        ],
    );
    add(
        "res.partner",
        &[
            ("name", "char", None),
            ("email", "char", None),
            ("country_id", "many2one", Some("res.country")),
            ("parent_id", "many2one", Some("res.partner")),
            ("child_ids", "one2many", Some("res.partner")),
        ],
    );
    add(
        "res.country",
        &[("name", "char", None), ("code", "char", None)],
    );
    add(
        "res.users",
        &[
            ("login", "char", None),
            ("partner_id", "many2one", Some("res.partner")),
        ],
    );
    add(
        "sale.order.line",
        &[
            ("name", "char", None),
            ("order_id", "many2one", Some("sale.order")),
        ],
    );
    c
}

fn request(model: &str, fields: &[&str], layout: Layout) -> Request {
    Request {
        model: model.into(),
        fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        all_fields: false,
        auto: BTreeMap::new(),
        layout,
    }
}

fn ready(p: Planned) -> Plan {
    match p {
        Planned::Ready(p) => p,
        other => panic!("not planned: {other:?}"),
    }
}

/// A database: model → id → stored values (many2one: id or null; x2many: id list).
type Db = BTreeMap<String, BTreeMap<i64, Map<String, Value>>>;

fn kind(cat: &Catalog, model: &str, f: &str) -> (String, Option<String>) {
    let d = &cat[model][f];
    (
        d["type"].as_str().unwrap_or("char").to_owned(),
        d.get("relation").and_then(Value::as_str).map(str::to_owned),
    )
}

/// `read`'s value of one field (many2one `[id, name]`, missing target named anyway as Odoo's
/// cache would).
fn classic(db: &Db, cat: &Catalog, model: &str, rec: &Map<String, Value>, f: &str) -> Value {
    let (k, rel) = kind(cat, model, f);
    let raw = rec.get(f).cloned().unwrap_or(Value::Null);
    match k.as_str() {
        "many2one" => match raw.as_i64() {
            Some(id) => {
                let rel = rel.unwrap_or_default();
                let name = db
                    .get(&rel)
                    .and_then(|m| m.get(&id))
                    .and_then(|r| r.get("name").cloned())
                    .unwrap_or(json!(format!("{rel},{id}")));
                json!([id, name])
            }
            None => json!(false),
        },
        "one2many" | "many2many" => raw,
        _ => {
            if f == "id" {
                json!(rec["id"])
            } else if f == "display_name" {
                rec.get("name").cloned().unwrap_or(json!(false))
            } else if raw.is_null() {
                json!(false)
            } else {
                raw
            }
        }
    }
}

/// Odoo's `read(ids, fields)`: missing ids left out.
fn read(db: &Db, cat: &Catalog, model: &str, ids: &[i64], fields: &[String]) -> Value {
    let mut out = Vec::new();
    for id in ids {
        if let Some(rec) = db.get(model).and_then(|m| m.get(id)) {
            let mut row = Map::new();
            row.insert("id".into(), json!(id));
            for f in fields {
                row.insert(f.clone(), classic(db, cat, model, rec, f));
            }
            out.push(Value::Object(row));
        }
    }
    Value::Array(out)
}

/// Odoo 17's `web_read(spec)` (missing co-records: `false` / left out).
fn web_read(
    db: &Db,
    cat: &Catalog,
    model: &str,
    ids: &[i64],
    spec: &Map<String, Value>,
) -> Vec<Value> {
    let mut out = Vec::new();
    for id in ids {
        let Some(rec) = db.get(model).and_then(|m| m.get(id)) else {
            continue;
        };
        let mut row = Map::new();
        row.insert("id".into(), json!(id));
        for (f, fspec) in spec {
            let (k, rel) = kind(cat, model, f);
            let sub = fspec.get("fields").and_then(Value::as_object);
            let rel = rel.unwrap_or_default();
            let v = match (k.as_str(), sub) {
                ("many2one", None) => rec
                    .get(f)
                    .cloned()
                    .filter(|v| !v.is_null())
                    .unwrap_or(json!(false)),
                ("many2one", Some(sub)) => match rec.get(f).and_then(Value::as_i64) {
                    Some(cid) => web_read(db, cat, &rel, &[cid], sub)
                        .into_iter()
                        .next()
                        .unwrap_or(json!(false)),
                    None => json!(false),
                },
                ("one2many" | "many2many", Some(sub)) => {
                    let ids: Vec<i64> = rec[f]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter_map(Value::as_i64)
                        .collect();
                    Value::Array(web_read(db, cat, &rel, &ids, sub))
                }
                _ => classic(db, cat, model, rec, f),
            };
            row.insert(f.clone(), v);
        }
        out.push(Value::Object(row));
    }
    out
}

/// The 1 + M path against `db`; returns the merged records and the number of calls.
fn run_levels(db: &Db, cat: &Catalog, plan: &Plan, base_ids: &[i64]) -> (Vec<Value>, usize) {
    let fields = plan.base_fields.clone().unwrap_or_default();
    let base = read(db, cat, &plan.model, base_ids, &fields);
    let mut calls = 1;
    let mut exp = Expansion::new(plan, base).unwrap();
    while !exp.complete() {
        for r in exp.next_reads() {
            calls += 1;
            let answer = read(db, cat, &r.model, &r.ids, &r.fields);
            exp.add(&r, answer).unwrap();
        }
    }
    (exp.finish(Form::Classic), calls)
}

/// The 17+ path against `db`.
fn run_spec(db: &Db, cat: &Catalog, plan: &Plan, base_ids: &[i64]) -> Vec<Value> {
    let spec = specification(plan, None);
    let records = web_read(db, cat, &plan.model, base_ids, &spec);
    reshape(plan, Value::Array(records), true)
        .unwrap()
        .finish(Form::Classic)
}

fn demo_db() -> Db {
    let mut db = Db::new();
    let mut put = |model: &str, id: i64, v: Value| {
        let mut o = v.as_object().unwrap().clone();
        o.insert("id".into(), json!(id));
        db.entry(model.into()).or_default().insert(id, o);
    };
    put("res.country", 1, json!({"name": "Belgium", "code": "BE"}));
    put("res.country", 2, json!({"name": "France", "code": "FR"}));
    put(
        "res.partner",
        10,
        json!({"name": "Deco", "email": "d@x", "country_id": 1, "parent_id": null, "child_ids": [11, 12]}),
    );
    put(
        "res.partner",
        11,
        json!({"name": "Ann", "email": "a@x", "country_id": 2, "parent_id": 10, "child_ids": []}),
    );
    put(
        "res.partner",
        12,
        json!({"name": "Bob", "email": null, "country_id": null, "parent_id": 10, "child_ids": []}),
    );
    put("res.users", 6, json!({"login": "demo", "partner_id": 11}));
    put(
        "sale.order",
        1,
        json!({"name": "S1", "partner_id": 10, "user_id": 6, "order_line": [100, 101]}),
    );
    put(
        "sale.order",
        2,
        json!({"name": "S2", "partner_id": 11, "user_id": null, "order_line": []}),
    );
    put(
        "sale.order",
        3,
        json!({"name": "S3", "partner_id": null, "user_id": 6, "order_line": [102]}),
    );
    put(
        "sale.order",
        4,
        json!({"name": "S4", "partner_id": 99, "user_id": null, "order_line": []}),
    );
    put(
        "sale.order.line",
        100,
        json!({"name": "L100", "order_id": 1}),
    );
    put(
        "sale.order.line",
        101,
        json!({"name": "L101", "order_id": 1}),
    );
    put(
        "sale.order.line",
        102,
        json!({"name": "L102", "order_id": 3}),
    );
    db
}

// === Planning ===

#[test]
fn plans_one_node_per_relation_and_adds_the_roots() {
    let cat = catalog();
    let p = ready(plan(
        &request(
            "sale.order",
            &[
                "name",
                "partner_id.name",
                "partner_id.country_id.code",
                "partner_id.email",
            ],
            Layout::Flat,
        ),
        &cat,
    ));
    assert_eq!(
        p.base_fields,
        Some(vec!["name".to_owned(), "partner_id".to_owned()])
    );
    assert_eq!(p.added, vec!["partner_id".to_owned()]);
    assert_eq!(p.levels(), 2);
    let root = &p.nodes[p.roots[0]];
    assert_eq!(root.model, "res.partner");
    assert_eq!(root.fields, vec!["name", "country_id", "email"]);
    assert_eq!(root.leaves, vec!["name", "email"]);
    assert_eq!(root.many2one, vec!["country_id"]);
}

#[test]
fn bad_paths_are_left_to_odoo() {
    let cat = catalog();
    let skip = |fields: &[&str]| plan(&request("sale.order", fields, Layout::Flat), &cat);
    assert_eq!(skip(&["name"]), Planned::Skip(Skip::NoDots));
    assert_eq!(skip(&["name.x"]), Planned::Skip(Skip::NotRelational));
    assert_eq!(
        skip(&["partner_id.nope"]),
        Planned::Skip(Skip::UnknownField)
    );
    assert_eq!(skip(&["nope.name"]), Planned::Skip(Skip::UnknownField));
    assert_eq!(
        skip(&["nope", "partner_id.name"]),
        Planned::Skip(Skip::UnknownField)
    );
    assert_eq!(skip(&["partner_id..name"]), Planned::Skip(Skip::BadPath));
    assert_eq!(skip(&["partner_id."]), Planned::Skip(Skip::BadPath));
    assert_eq!(
        skip(&["partner_id.parent_id.parent_id.parent_id.parent_id.name"]),
        Planned::Skip(Skip::TooDeep)
    );
    // Four levels are fine.
    assert!(matches!(
        skip(&["partner_id.parent_id.parent_id.parent_id.name"]),
        Planned::Ready(_)
    ));
}

#[test]
fn planning_asks_for_each_model_in_turn() {
    let full = catalog();
    let req = request("sale.order", &["partner_id.country_id.code"], Layout::Flat);
    let mut known = Catalog::new();
    let mut asked = Vec::new();
    loop {
        match plan(&req, &known) {
            Planned::NeedFields(m) => {
                asked.push(m.clone());
                known.insert(m.clone(), full[&m].clone());
            }
            Planned::Ready(_) => break,
            Planned::Skip(s) => panic!("{s:?}"),
        }
    }
    assert_eq!(asked, vec!["sale.order", "res.partner", "res.country"]);
}

#[test]
fn automatic_paths_that_do_not_resolve_are_dropped() {
    let cat = catalog();
    let mut req = request("sale.order", &["name", "partner_id"], Layout::Nested);
    req.auto
        .insert("partner_id".into(), vec!["name".into(), "nope".into()]);
    req.auto.insert("user_id".into(), vec!["login".into()]);
    let p = ready(plan(&req, &cat));
    // user_id is not read by the call: not expanded.
    assert_eq!(p.paths.len(), 1);
    assert_eq!(p.paths[0].key, "partner_id.name");
    assert!(p.added.is_empty());
}

// === Merging ===

#[test]
fn flat_answers_have_exactly_the_keys_asked() {
    let (db, cat) = (demo_db(), catalog());
    let p = ready(plan(
        &request(
            "sale.order",
            &[
                "name",
                "partner_id.name",
                "partner_id.country_id.code",
                "order_line.name",
            ],
            Layout::Flat,
        ),
        &cat,
    ));
    let (rows, calls) = run_levels(&db, &cat, &p, &[1, 2, 3, 4]);
    // base + res.partner & sale.order.line (level 1, two comodels) + res.country.
    assert_eq!(calls, 4);
    assert_eq!(
        rows[0],
        json!({"id": 1, "name": "S1", "partner_id.name": "Deco", "partner_id.country_id.code": "BE", "order_line.name": ["L100", "L101"]})
    );
    assert_eq!(rows[1]["partner_id.country_id.code"], "FR");
    assert_eq!(rows[1]["order_line.name"], json!([]));
    // Empty many2one, and a partner that no longer exists: false.
    assert_eq!(rows[2]["partner_id.name"], false);
    assert_eq!(rows[3]["partner_id.name"], false);
    assert_eq!(rows[3]["partner_id.country_id.code"], false);
}

#[test]
fn the_relational_field_itself_stays_when_asked() {
    let (db, cat) = (demo_db(), catalog());
    let p = ready(plan(
        &request(
            "sale.order",
            &["partner_id", "partner_id.country_id"],
            Layout::Flat,
        ),
        &cat,
    ));
    let (rows, _) = run_levels(&db, &cat, &p, &[1]);
    assert_eq!(
        rows[0],
        json!({"id": 1, "partner_id": [10, "Deco"], "partner_id.country_id": [1, "Belgium"]})
    );
    assert_eq!(run_spec(&db, &cat, &p, &[1]), rows);
}

#[test]
fn nested_answers_are_objects() {
    let (db, cat) = (demo_db(), catalog());
    let p = ready(plan(
        &request(
            "sale.order",
            &[
                "name",
                "partner_id.name",
                "partner_id.email",
                "partner_id.country_id.code",
                "partner_id.child_ids.name",
            ],
            Layout::Nested,
        ),
        &cat,
    ));
    let (rows, calls) = run_levels(&db, &cat, &p, &[1, 3]);
    // base; res.partner; res.country and the children (res.partner).
    assert_eq!(calls, 1 + 1 + 2);
    assert_eq!(
        rows[0],
        json!({"id": 1, "name": "S1", "partner_id": {
            "id": 10, "name": "Deco", "email": "d@x",
            "country_id": {"id": 1, "code": "BE"},
            "child_ids": [{"id": 11, "name": "Ann"}, {"id": 12, "name": "Bob"}]}})
    );
    assert_eq!(rows[1]["partner_id"], false);
    assert_eq!(run_spec(&db, &cat, &p, &[1, 3]), rows);
}

#[test]
fn many_records_cost_one_read_per_level() {
    let (mut db, cat) = (demo_db(), catalog());
    for id in 1000..1200 {
        let mut o = Map::new();
        o.insert("id".into(), json!(id));
        o.insert("name".into(), json!(format!("S{id}")));
        o.insert("partner_id".into(), json!(10 + id % 3));
        o.insert("user_id".into(), json!(6));
        o.insert("order_line".into(), json!([]));
        db.get_mut("sale.order").unwrap().insert(id, o);
    }
    let p = ready(plan(
        &request(
            "sale.order",
            &["partner_id.country_id.name", "user_id.partner_id.email"],
            Layout::Flat,
        ),
        &cat,
    ));
    let ids: Vec<i64> = (1000..1200).collect();
    let (rows, calls) = run_levels(&db, &cat, &p, &ids);
    assert_eq!(rows.len(), 200);
    // base; level 1: res.partner, res.users; level 2: res.country, res.partner.
    assert_eq!(calls, 5);
    assert_eq!(rows[0]["user_id.partner_id.email"], "a@x");
}

#[test]
fn the_specification_nests_and_names_many2ones() {
    let cat = catalog();
    let p = ready(plan(
        &request(
            "sale.order",
            &["user_id", "partner_id.country_id.code", "order_line.name"],
            Layout::Flat,
        ),
        &cat,
    ));
    assert_eq!(
        Value::Object(specification(&p, None)),
        json!({
            "user_id": {"fields": {"display_name": {}}},
            "partner_id": {"fields": {"country_id": {"fields": {"code": {}, "display_name": {}}}, "display_name": {}}},
            "order_line": {"fields": {"name": {}}},
        })
    );
}

#[test]
fn a_web_caller_keeps_its_own_spec_forms() {
    let (db, cat) = (demo_db(), catalog());
    let mut call = Call::new(Shape::CallKw, "/web/dataset/call_kw");
    call.model = Some("sale.order".into());
    call.method = Some("web_search_read".into());
    call.credential = Credential::Session("s".into());
    call.set_kwargs(
        json!({"domain": [], "specification": {"name": {}, "partner_id": {}, "user_id": {"fields": {"display_name": {}}}, "partner_id.name": {}}})
            .as_object()
            .unwrap()
            .clone(),
    );
    let t = target(&call, &BTreeMap::new(), Layout::Flat).unwrap();
    assert_eq!(t.method, Method::WebSearchReadSpec);
    let p = ready(plan(&t.request, &cat));
    assert!(t.spec_compatible(&p));
    let spec = specification(&p, t.own_spec.as_ref());
    assert_eq!(spec["user_id"], json!({"fields": {"display_name": {}}}));
    let records = web_read(&db, &cat, "sale.order", &[1], &spec);
    let rows = reshape(&p, Value::Array(records), false)
        .unwrap()
        .finish(Form::Web);
    assert_eq!(
        rows[0],
        json!({"id": 1, "name": "S1", "partner_id": 10, "user_id": {"id": 6, "display_name": false}, "partner_id.name": "Deco"})
    );
}

#[test]
fn calls_that_cannot_be_expanded_safely_are_not_targets() {
    let mk = |method: &str, args: Value, kwargs: Value| {
        let mut call = Call::new(Shape::CallKw, "/web/dataset/call_kw");
        call.model = Some("sale.order".into());
        call.method = Some(method.into());
        call.credential = Credential::Session("s".into());
        call.set_args(args.as_array().unwrap().clone());
        call.set_kwargs(kwargs.as_object().unwrap().clone());
        target(&call, &BTreeMap::new(), Layout::Flat)
    };
    assert!(mk(
        "search_read",
        json!([]),
        json!({"fields": ["partner_id.name"]})
    )
    .is_some());
    assert!(mk("search_read", json!([[], ["partner_id.name"]]), json!({})).is_some());
    // Twice (TypeError in Python), not names, other loads, dotted spec entries with content.
    assert!(mk(
        "search_read",
        json!([[], ["partner_id.name"]]),
        json!({"fields": ["x"]})
    )
    .is_none());
    assert!(mk(
        "search_read",
        json!([]),
        json!({"fields": "partner_id.name"})
    )
    .is_none());
    assert!(mk("search_read", json!([]), json!({"fields": [1]})).is_none());
    assert!(mk(
        "read",
        json!([[1]]),
        json!({"fields": ["partner_id.name"], "load": null})
    )
    .is_none());
    assert!(mk("read", json!([1]), json!({"fields": ["partner_id.name"]})).is_none());
    assert!(mk(
        "web_search_read",
        json!([]),
        json!({"specification": {"partner_id.name": {"fields": {}}}})
    )
    .is_none());
    assert!(mk("search_read", json!([]), json!({"fields": ["name"]})).is_none());
    assert!(mk("search", json!([]), json!({"fields": ["partner_id.name"]})).is_none());
}

#[test]
fn search_read_becomes_one_web_search_read() {
    let mut call = Call::new(Shape::CallKw, "/web/dataset/call_kw");
    call.model = Some("sale.order".into());
    call.method = Some("search_read".into());
    call.credential = Credential::Session("s".into());
    call.set_args(vec![
        json!([["state", "=", "sale"]]),
        json!(["partner_id.name"]),
        json!(5),
    ]);
    call.set_kwargs(
        json!({"limit": 10, "order": "id", "context": {"lang": "fr_FR"}})
            .as_object()
            .unwrap()
            .clone(),
    );
    let t = target(&call, &BTreeMap::new(), Layout::Flat).unwrap();
    let p = ready(plan(&t.request, &catalog()));
    let (method, args, kwargs) = t.web_call(specification(&p, None)).unwrap();
    assert_eq!(method, "web_search_read");
    assert!(args.is_empty());
    assert_eq!(
        Value::Object(kwargs),
        json!({"domain": [["state", "=", "sale"]], "offset": 5, "limit": 10, "count_limit": 15, "order": "id",
               "context": {"lang": "fr_FR"},
               "specification": {"partner_id": {"fields": {"name": {}, "display_name": {}}}}})
    );
    let (args, kwargs) = t.base_call(&p);
    assert_eq!(args[1], json!(["partner_id"]));
    assert_eq!(kwargs["limit"], 10);
    // active_test: search_read strips it before reading, web_search_read does not.
    call.set_kwargs(
        json!({"context": {"active_test": false}})
            .as_object()
            .unwrap()
            .clone(),
    );
    let t = target(&call, &BTreeMap::new(), Layout::Flat).unwrap();
    assert!(t.web_call(specification(&p, None)).is_none());
}

// === Properties ===

const PATHS: &[&str] = &[
    "name",
    "partner_id",
    "partner_id.name",
    "partner_id.email",
    "partner_id.country_id",
    "partner_id.country_id.code",
    "partner_id.parent_id.name",
    "partner_id.parent_id.country_id.code",
    "partner_id.child_ids",
    "partner_id.child_ids.name",
    "partner_id.child_ids.country_id.code",
    "partner_id.child_ids.child_ids.email",
    "partner_id.parent_id.child_ids.parent_id.name",
    "user_id.login",
    "user_id.partner_id.name",
    "user_id.partner_id.child_ids.name",
    "order_line.name",
    "order_line.order_id.name",
    "order_line.order_id.partner_id.country_id.name",
];

/// The reference: one path evaluated on one record by following the stored values.
fn naive(
    db: &Db,
    cat: &Catalog,
    model: &str,
    rec: &Map<String, Value>,
    segs: &[&str],
) -> Result<Value, Vec<Value>> {
    let [first, rest @ ..] = segs else {
        return Ok(json!(false));
    };
    if rest.is_empty() {
        return Ok(classic(db, cat, model, rec, first));
    }
    let (k, rel) = kind(cat, model, first);
    let rel = rel.unwrap_or_default();
    let target = |id: i64| db.get(&rel).and_then(|m| m.get(&id));
    if k == "many2one" {
        match rec.get(*first).and_then(Value::as_i64).and_then(target) {
            Some(t) => naive(db, cat, &rel, t, rest),
            None => Ok(json!(false)),
        }
    } else {
        let mut out = Vec::new();
        for id in rec[*first]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_i64)
        {
            if let Some(t) = target(id) {
                match naive(db, cat, &rel, t, rest) {
                    Ok(v) => out.push(v),
                    Err(vs) => out.extend(vs),
                }
            }
        }
        Err(out)
    }
}

fn arb_db(dangling: bool) -> impl Strategy<Value = Db> {
    // Links may name ids past the last record: deleted records (kept only with `dangling`).
    let link = || prop::option::of(1..=14i64);
    let links = || prop::collection::vec(1..=8i64, 0..4);
    (
        prop::collection::vec(link(), 1..6),
        prop::collection::vec((link(), link(), links(), prop::option::of("[a-c]{0,2}")), 1..7),
        prop::collection::vec((link(), link()), 1..12),
        prop::collection::vec(link(), 0..8),
    )
        .prop_map(move |(users, partners, orders, lines)| {
            let keep = |id: Option<i64>, count: usize| {
                id.filter(|&i| dangling || i <= count as i64)
            };
            let (nu, np, no) = (users.len(), partners.len(), orders.len());
            let mut db = Db::new();
            let mut put = |model: &str, id: i64, v: Value| {
                let mut o = v.as_object().unwrap().clone();
                o.insert("id".into(), json!(id));
                db.entry(model.into()).or_default().insert(id, o);
            };
            for id in 1..=3 {
                put("res.country", id, json!({"name": format!("C{id}"), "code": format!("c{id}")}));
            }
            for (i, partner) in users.iter().enumerate() {
                put("res.users", i as i64 + 1, json!({"login": format!("u{i}"), "partner_id": keep(*partner, np)}));
            }
            for (i, (country, parent, children, email)) in partners.iter().enumerate() {
                let children: Vec<i64> = children.iter().copied().filter(|&c| dangling || c <= np as i64).collect();
                put(
                    "res.partner",
                    i as i64 + 1,
                    json!({"name": format!("P{}", i + 1), "email": email, "country_id": keep(*country, 3),
                           "parent_id": keep(*parent, np), "child_ids": children}),
                );
            }
            let mut line_ids: Vec<Vec<i64>> = vec![Vec::new(); no];
            for (i, order) in lines.iter().enumerate() {
                let order = keep(*order, no);
                if let Some(o) = order {
                    if let Some(list) = line_ids.get_mut((o - 1) as usize) {
                        list.push(i as i64 + 1);
                    }
                }
                put("sale.order.line", i as i64 + 1, json!({"name": format!("L{}", i + 1), "order_id": order}));
            }
            for (i, (partner, user)) in orders.iter().enumerate() {
                put(
                    "sale.order",
                    i as i64 + 1,
                    json!({"name": format!("S{}", i + 1), "partner_id": keep(*partner, np), "user_id": keep(*user, nu),
                           "order_line": line_ids[i]}),
                );
            }
            let _ = nu;
            db
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The merged answer equals a naive per-record evaluation, on random data (deleted related
    /// records included), with one read per level and comodel whatever the number of records.
    #[test]
    fn merged_equals_naive(db in arb_db(true), picks in prop::collection::vec(0..PATHS.len(), 1..6)) {
        let cat = catalog();
        let mut fields: Vec<&str> = picks.iter().map(|&i| PATHS[i]).collect();
        fields.dedup();
        let Planned::Ready(p) = plan(&request("sale.order", &fields, Layout::Flat), &cat) else {
            return Ok(());
        };
        let ids: Vec<i64> = db["sale.order"].keys().copied().collect();
        let (rows, calls) = run_levels(&db, &cat, &p, &ids);
        let mut per_level: BTreeMap<usize, std::collections::BTreeSet<&str>> = BTreeMap::new();
        for n in &p.nodes {
            per_level.entry(n.level).or_default().insert(&n.model);
        }
        let most: usize = 1 + per_level.values().map(|s| s.len()).sum::<usize>();
        prop_assert!(calls <= most);
        prop_assert_eq!(rows.len(), ids.len());
        for (row, id) in rows.iter().zip(&ids) {
            let rec = &db["sale.order"][id];
            let mut keys: Vec<&str> = fields.clone();
            keys.push("id");
            keys.sort_unstable();
            keys.dedup();
            let mut got: Vec<&str> = row.as_object().unwrap().keys().map(String::as_str).collect();
            got.sort_unstable();
            prop_assert_eq!(got, keys);
            for f in &fields {
                let segs: Vec<&str> = f.split('.').collect();
                let want = match naive(&db, &cat, "sale.order", rec, &segs) {
                    Ok(v) => v,
                    Err(vs) => Value::Array(vs),
                };
                prop_assert_eq!(&row[*f], &want, "{}", f);
            }
        }
    }

    /// On data without dangling references (what a 17+ server's one transaction sees), the
    /// one-call specification answers exactly as the 1 + M reads, flat and nested.
    #[test]
    fn one_call_equals_levels(db in arb_db(false), picks in prop::collection::vec(0..PATHS.len(), 1..6), nested in any::<bool>()) {
        let cat = catalog();
        let fields: Vec<&str> = picks.iter().map(|&i| PATHS[i]).collect();
        let layout = if nested { Layout::Nested } else { Layout::Flat };
        let Planned::Ready(p) = plan(&request("sale.order", &fields, layout), &cat) else {
            return Ok(());
        };
        let ids: Vec<i64> = db["sale.order"].keys().copied().collect();
        let (rows, _) = run_levels(&db, &cat, &p, &ids);
        prop_assert_eq!(run_spec(&db, &cat, &p, &ids), rows);
    }

    /// Planning never panics, whatever names it gets.
    #[test]
    fn planning_never_panics(fields in prop::collection::vec("[a-z_.]{0,12}", 0..6)) {
        let cat = catalog();
        let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
        let _ = plan(&request("sale.order", &refs, Layout::Flat), &cat);
    }
}

// === The filter, against a mock Odoo over the test database ===

mod filter {
    use std::net::Ipv4Addr;
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use serde_json::{json, Value};

    use super::{catalog, demo_db, read, web_read, Catalog, Db};
    use crate::expand::ExpandFilter;
    use crate::filter::{Decision, Exchange, Filter, Reply};
    use crate::jsonrpc::parse;
    use crate::odoo::{OdooClient, OdooError, OdooReply};
    use crate::rewrite::{FieldsCatalog, Optimizer, OptimizerSet};
    use crate::route::endpoint;
    use crate::Call;

    /// Answers `call_kw` from the test database, like Odoo `version` would.
    struct Mock {
        db: Db,
        cat: Catalog,
        version: u32,
        fail: Option<OdooError>,
        calls: Mutex<Vec<String>>,
    }

    impl Mock {
        fn new(version: u32) -> Mock {
            Mock {
                db: demo_db(),
                cat: catalog(),
                version,
                fail: None,
                calls: Mutex::new(Vec::new()),
            }
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    fn strings(v: Option<&Value>) -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[async_trait]
    impl OdooClient for Mock {
        async fn json_rpc(
            &self,
            path: &str,
            params: Value,
            _: Option<&str>,
        ) -> Result<OdooReply, OdooError> {
            let reply = |result: Value| {
                Ok(OdooReply {
                    result,
                    session_id: None,
                })
            };
            if path == "/jsonrpc" {
                return reply(json!({"server_version_info": [self.version, 0]}));
            }
            let model = params["model"].as_str().unwrap().to_owned();
            let method = params["method"].as_str().unwrap().to_owned();
            self.calls.lock().unwrap().push(format!("{model}.{method}"));
            if method != "fields_get" {
                if let Some(e) = &self.fail {
                    return Err(e.clone());
                }
            }
            let (args, kwargs) = (&params["args"], &params["kwargs"]);
            let all: Vec<i64> = self
                .db
                .get(&model)
                .map(|m| m.keys().copied().collect())
                .unwrap_or_default();
            let ids = |v: &Value| -> Vec<i64> {
                v.as_array()
                    .map(|a| a.iter().filter_map(Value::as_i64).collect())
                    .unwrap_or_default()
            };
            match method.as_str() {
                "fields_get" => reply(Value::Object(self.cat[&model].clone())),
                "read" => reply(read(
                    &self.db,
                    &self.cat,
                    &model,
                    &ids(&args[0]),
                    &strings(args.get(1).or(kwargs.get("fields"))),
                )),
                "search_read" => reply(read(
                    &self.db,
                    &self.cat,
                    &model,
                    &all,
                    &strings(args.get(1).or(kwargs.get("fields"))),
                )),
                "web_search_read" => {
                    let spec = kwargs["specification"].as_object().unwrap();
                    let records = web_read(&self.db, &self.cat, &model, &all, spec);
                    reply(json!({"length": records.len(), "records": records}))
                }
                other => panic!("unexpected {other}"),
            }
        }

        /// `/json/2` errors carry their HTTP status as `code`.
        async fn json2(
            &self,
            model: &str,
            method: &str,
            body: Value,
            _: &str,
            _: Option<&str>,
        ) -> Result<Value, OdooError> {
            let mut params = json!({"model": model, "method": method, "args": [], "kwargs": body});
            if let Some(ids) = params["kwargs"]
                .as_object_mut()
                .and_then(|k| k.remove("ids"))
            {
                params["args"] = json!([ids]);
            }
            match self.json_rpc("/json/2", params, None).await {
                Err(OdooError::Odoo { name, message, .. }) => Err(OdooError::Odoo {
                    code: 403,
                    name,
                    message,
                }),
                other => other.map(|r| r.result),
            }
        }
    }

    fn call(path: &str, body: Value) -> Call {
        let head = http::Request::post(path)
            .header("cookie", "session_id=s1")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        parse(&endpoint(path), &head, body.to_string().as_bytes()).unwrap()
    }

    async fn run(odoo: &Mock, path: &str, call: &Call) -> Decision {
        let f = ExpandFilter::new(
            Arc::new(OptimizerSet::new(Optimizer::default())),
            Arc::new(FieldsCatalog::default()),
        );
        let parts = http::Request::post(path).body(()).unwrap().into_parts().0;
        let mut state = http::Extensions::new();
        let mut ex = Exchange {
            request: &parts,
            client_ip: Ipv4Addr::LOCALHOST.into(),
            tenant: "t",
            request_id: "r1",
            tls: false,
            odoo,
            state: &mut state,
        };
        f.on_request(&mut ex, call).await
    }

    fn reply(d: Decision) -> (Reply, Value) {
        match d {
            Decision::Respond(r) => {
                let body = serde_json::from_slice(&r.body).unwrap();
                (r, body)
            }
            other => panic!("not answered: {other:?}"),
        }
    }

    fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .and_then(|(_, v)| v.to_str().ok())
    }

    fn search_read(fields: Value) -> Call {
        call(
            "/web/dataset/call_kw",
            json!({"jsonrpc": "2.0", "id": 42, "method": "call", "params": {"model": "sale.order", "method": "search_read", "args": [], "kwargs": {"fields": fields}}}),
        )
    }

    #[tokio::test]
    async fn answers_in_the_callers_envelope() {
        for (version, calls) in [
            (16, vec!["sale.order.search_read", "res.partner.read"]),
            (17, vec!["sale.order.web_search_read"]),
        ] {
            let odoo = Mock::new(version);
            let (r, body) = reply(
                run(
                    &odoo,
                    "/web/dataset/call_kw",
                    &search_read(json!(["name", "partner_id.name"])),
                )
                .await,
            );
            assert_eq!(r.status, 200);
            assert_eq!(body["id"], 42);
            assert_eq!(
                body["result"][0],
                json!({"id": 1, "name": "S1", "partner_id.name": "Deco"})
            );
            assert_eq!(header(&r, "x-bridgecore-rewrite"), Some("expand"));
            let seen: Vec<String> = odoo
                .calls()
                .into_iter()
                .filter(|c| !c.ends_with("fields_get"))
                .collect();
            assert_eq!(seen, calls);
        }
    }

    #[tokio::test]
    async fn ordinary_calls_cost_nothing() {
        let odoo = Mock::new(16);
        assert!(matches!(
            run(
                &odoo,
                "/web/dataset/call_kw",
                &search_read(json!(["name", "partner_id"]))
            )
            .await,
            Decision::Continue
        ));
        // A domain with a dot but no dotted field: planned away after one `fields_get` at most.
        let c = call(
            "/web/dataset/call_kw",
            json!({"jsonrpc": "2.0", "id": 1, "method": "call", "params": {"model": "sale.order", "method": "search_read", "args": [[["partner_id.name", "=", "x"]]], "kwargs": {"fields": ["name"]}}}),
        );
        assert!(matches!(
            run(&odoo, "/web/dataset/call_kw", &c).await,
            Decision::Continue
        ));
        assert!(odoo.calls().is_empty(), "{:?}", odoo.calls());
    }

    #[tokio::test]
    async fn odoo_errors_are_the_answer_in_each_protocol() {
        let mut odoo = Mock::new(16);
        odoo.fail = Some(OdooError::Odoo {
            code: 200,
            name: "odoo.exceptions.AccessError".into(),
            message: "no".into(),
        });
        let (r, body) = reply(
            run(
                &odoo,
                "/web/dataset/call_kw",
                &search_read(json!(["partner_id.name"])),
            )
            .await,
        );
        assert_eq!((r.status, body["id"].clone()), (200, json!(42)));
        assert_eq!(body["error"]["data"]["name"], "odoo.exceptions.AccessError");
        assert_eq!(body["error"]["message"], "Odoo Server Error");
        assert!(body.get("result").is_none());
        // /json/2: the HTTP status of the error, a bare body.
        let head = http::Request::post("/json/2/sale.order/search_read")
            .header("authorization", "bearer k")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let path = "/json/2/sale.order/search_read";
        let j2 = parse(
            &endpoint(path),
            &head,
            br#"{"fields": ["partner_id.name"]}"#,
        )
        .unwrap();
        let (r, body) = reply(run(&odoo, path, &j2).await);
        assert_eq!(r.status, 403);
        assert_eq!(
            body,
            json!({"name": "odoo.exceptions.AccessError", "message": "no", "arguments": ["no"], "context": {}, "debug": ""})
        );
        // Odoo unreachable: BridgeCore's 502 in the caller's envelope.
        odoo.fail = Some(OdooError::Unavailable("down".into()));
        let (r, body) = reply(
            run(
                &odoo,
                "/web/dataset/call_kw",
                &search_read(json!(["partner_id.name"])),
            )
            .await,
        );
        assert_eq!(r.status, 502);
        assert_eq!(body["error"]["data"]["name"], "bridgecore.BadGateway");
        assert_eq!(body["id"], 42);
    }
}
