//! Which models' cached reads a write can change: the reverse dependency graph of one tenant
//! (odoo-protocol.md §3.3, design.md §5), for `cache.invalidation: graph`.
//!
//! The graph is learned from each model's
//! `fields_get(attributes=["type", "relation", "related", "store", "depends", "relation_field",
//! "readonly"])` answer. Its edges read "a write on X can change reads of Y" (X → Y):
//!
//! - **relational fields**: a field of Y with `relation` X (many2one, one2many, many2many) gives
//!   X → Y. A many2one answer embeds X's display name; an x2many answer lists X's ids, which
//!   creating or deleting X rows changes; unlinking X rows nulls or cascades Y's many2ones;
//!   and a search on Y may traverse the field in its domain or order.
//! - **x2many write-through**: an x2many field of Y with relation X also gives Y → X, since a
//!   write on Y with x2many commands (`(0, 0, vals)`, `(1, id, vals)`, links) writes X rows or
//!   the relation table, and a many2many need not have an inverse field on X.
//! - **`depends` and `related` paths**: each relational segment's target T gives T → Y. When a
//!   segment cannot be resolved (a field missing from that model's answer, or an intermediate
//!   model that was not learned), Y's dependencies are unknown: Y is in every write's set.
//! - **writable related and computed fields**: a related field that is not read-only writes
//!   the record at the end of its path, and a non-stored computed field that is not read-only
//!   has an inverse that may write what it depends on; so the models along their paths get
//!   Y → T too (`_inherits`: writing `res.users.name` writes `res.partner`). Without the
//!   `readonly` attribute such fields count as writable.
//!
//! A write on W affects the closure of W over these edges. The closure is what makes the graph
//! safe: a stored computed field on A depending on B is rewritten when B changes, so readers of
//! A are affected too; a search domain or `order` on Y can follow any chain of relational fields
//! (`partner_id.country_id.code`), so every model that can reach W through relations is
//! affected. (Path edges are therefore implied by the relational edges of their segments; the
//! walk is what finds dependencies that cannot be resolved.) The closure uses a visited set:
//! cycles (`parent_id`, one2many/many2one pairs) terminate.
//!
//! Two answers flush the whole tenant instead: a write on a security or configuration model
//! ([`is_tenant_wide`]: access rights, rules, companies, settings, languages, views, actions,
//! currency rates, defaults, installed modules), and a write on a model the graph does not know
//! (a module installed after learning, or a model whose `fields_get` failed).
//!
//! What no graph can see is left to the cache's TTLs: non-stored computed fields whose
//! `depends` do not declare what they read (odoo-protocol.md §3.3 items 3 and 8), time, and
//! changes made outside BridgeCore. Business methods (`action_confirm`, `call_button`) write
//! through arbitrary code; callers should flush the tenant for them and use the graph for the
//! ORM writes (`create`, `write`, `unlink`, `web_save`, ...). [`DepGraph::written_by`] (or,
//! with the call's values, [`DepGraph::written_by_values`]) names the models such a write
//! creates, writes or deletes rows of, so a caller can flush the tenant when one of them is a
//! security model (a `res.partner` write whose `user_ids` commands change a user).
//!
//! ```
//! use bridgecore_filters::cache::graph::{Affected, DepGraph};
//! use serde_json::json;
//!
//! let order = json!({
//!     "partner_id": {"type": "many2one", "relation": "res.partner", "store": true, "depends": []},
//!     "order_line": {"type": "one2many", "relation": "sale.order.line",
//!                    "relation_field": "order_id", "store": false, "depends": []},
//!     "amount_total": {"type": "monetary", "store": true, "depends": ["order_line.price_total"]},
//! });
//! let line = json!({
//!     "order_id": {"type": "many2one", "relation": "sale.order", "store": true, "depends": []},
//!     "price_total": {"type": "monetary", "store": true, "depends": []},
//! });
//! let partner = json!({"name": {"type": "char", "store": true, "depends": []}});
//! let graph = DepGraph::from_fields_get([
//!     ("sale.order", &order),
//!     ("sale.order.line", &line),
//!     ("res.partner", &partner),
//! ]);
//! assert_eq!(
//!     graph.affected("sale.order.line"),
//!     Affected::Models(vec!["sale.order".into(), "sale.order.line".into()])
//! );
//! assert_eq!(graph.affected("res.users"), Affected::Tenant);
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value};

/// What a write must invalidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Affected {
    /// Every cached answer of the tenant.
    Tenant,
    /// These models' cached answers: sorted, without duplicates, the written model included.
    Models(Vec<String>),
}

/// Reverse dependency edges of one tenant: "a write on X can change reads of Y".
#[derive(Debug, Clone, Default)]
pub struct DepGraph {
    /// The models whose `fields_get` answer was learned.
    learned: BTreeSet<String>,
    /// X → the models whose reads a write on X can change directly.
    readers: BTreeMap<String, BTreeSet<String>>,
    /// Models whose dependencies could not be resolved: in every write's set.
    unresolved: BTreeSet<String>,
    /// M → field → the models a value written to that field of M may write rows of: the
    /// comodel of an x2many (commands), the models along the paths of a writable related or
    /// computed field (its inverse).
    writes: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// M → the x2many fields of M and their comodels (to follow nested commands).
    x2many: BTreeMap<String, BTreeMap<String, String>>,
    /// M → every field name of M (to tell plain fields from unknown ones).
    fields: BTreeMap<String, BTreeSet<String>>,
}

/// One model's `fields_get` answer, or `None` when it could not be learned.
type Answers<'a> = BTreeMap<&'a str, Option<&'a Map<String, Value>>>;

impl DepGraph {
    /// Builds from each model's `fields_get(attributes=[type, relation, related, store, depends,
    /// relation_field])` answer (a JSON object field name → attributes).
    ///
    /// An answer that is not a JSON object (use `Value::Null` for a model whose `fields_get`
    /// failed) leaves the model unknown: writes on it flush the tenant, and since nothing is
    /// known of what its reads depend on, it is in every write's set. The attributes used are
    /// `type`, `relation`, `depends`, `related`, `store` and `readonly`; missing ones are read
    /// the safe way (no `readonly`: writable).
    pub fn from_fields_get<'a>(models: impl IntoIterator<Item = (&'a str, &'a Value)>) -> DepGraph {
        let answers: Answers<'a> = models
            .into_iter()
            .map(|(name, answer)| (name, answer.as_object()))
            .collect();
        let mut graph = DepGraph::default();
        for (&model, answer) in &answers {
            let Some(fields) = answer else {
                graph.unresolved.insert(model.to_string());
                continue;
            };
            graph.learned.insert(model.to_string());
            for (name, attrs) in fields.iter() {
                graph
                    .fields
                    .entry(model.to_string())
                    .or_default()
                    .insert(name.clone());
                let Some(attrs) = attrs.as_object() else {
                    graph.unresolved.insert(model.to_string());
                    continue;
                };
                if let Some(relation) = relation(attrs) {
                    graph.edge(relation, model);
                    if matches!(
                        attrs.get("type").and_then(Value::as_str),
                        Some("one2many" | "many2many")
                    ) {
                        graph.edge(model, relation);
                        graph.write(model, name, relation);
                        graph
                            .x2many
                            .entry(model.to_string())
                            .or_default()
                            .insert(name.clone(), relation.to_string());
                    }
                }
                let mut along = Vec::new();
                let (depends, related) = (
                    paths(attrs.get("depends"), false),
                    paths(attrs.get("related"), true),
                );
                let mut resolved = depends.is_some() && related.is_some();
                // Every path is walked, for its edges, even after one failed.
                for path in depends.iter().chain(&related).flatten() {
                    resolved &= graph.walk(&answers, model, path, &mut along);
                }
                if !resolved {
                    graph.unresolved.insert(model.to_string());
                }
                if writes_through(attrs, related.as_deref().unwrap_or_default()) {
                    for target in along {
                        graph.edge(model, target);
                        graph.write(model, name, target);
                    }
                }
            }
        }
        graph
    }

    /// The models a create, write, copy or unlink of `model` may create, write or delete rows
    /// of, whatever the values: `model`, the comodels of its x2many fields (commands; the
    /// children an unlink cascades to) and the models along its writable related or computed
    /// fields' paths (inverses), transitively (nested commands). Sorted, `model` included.
    ///
    /// In a full database this reaches far: every `mail.thread` model has `message_ids`,
    /// `mail.message` has `partner_ids`, `res.partner` has `user_ids`. Prefer
    /// [`DepGraph::written_by_values`] when the call's values are at hand.
    pub fn written_by(&self, model: &str) -> Vec<String> {
        let mut seen: BTreeSet<&str> = BTreeSet::from([model]);
        let mut queue: VecDeque<&str> = VecDeque::from([model]);
        while let Some(m) = queue.pop_front() {
            for targets in self.writes.get(m).into_iter().flat_map(BTreeMap::values) {
                for t in targets {
                    if seen.insert(t) {
                        queue.push_back(t);
                    }
                }
            }
        }
        seen.into_iter().map(str::to_string).collect()
    }

    /// The models a `create`/`write`/`web_save` of `vals` on `model` may create, write or
    /// delete rows of: `model`, the comodel of each x2many field present in `vals` (and, for
    /// the `(0, _, vals)` / `(1, id, vals)` commands, what those values write on it), and for
    /// a writable related or computed field, [`DepGraph::written_by`] of the models along
    /// its paths. `vals` is one values object or a list of them (`create`'s `vals_list`).
    ///
    /// `None` when the values cannot be read that way: not objects, a model that was not
    /// learned, a field the graph does not know, a command it does not understand. Fall back
    /// to [`DepGraph::written_by`] then.
    pub fn written_by_values(&self, model: &str, vals: &Value) -> Option<Vec<String>> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        self.collect_writes(model, vals, &mut out)?;
        Some(out.into_iter().collect())
    }

    fn collect_writes(&self, model: &str, vals: &Value, out: &mut BTreeSet<String>) -> Option<()> {
        let objects: Vec<&Map<String, Value>> = match vals {
            Value::Object(o) => vec![o],
            Value::Array(items) => items.iter().map(Value::as_object).collect::<Option<_>>()?,
            _ => return None,
        };
        let fields = self.fields.get(model)?;
        out.insert(model.to_string());
        for object in objects {
            for (name, value) in object {
                if !fields.contains(name) {
                    return None;
                }
                if let Some(comodel) = self.x2many.get(model).and_then(|f| f.get(name)) {
                    out.insert(comodel.clone());
                    self.collect_commands(comodel, value, out)?;
                } else if let Some(targets) = self.writes.get(model).and_then(|f| f.get(name)) {
                    for t in targets {
                        out.extend(self.written_by(t));
                    }
                }
            }
        }
        Some(())
    }

    /// Follows an x2many value: a list of commands (`[0, 0, vals]`, `[1, id, vals]`, `[2, id]`,
    /// `[3, id]`, `[4, id]`, `[5]`, `[6, 0, ids]`) or of plain ids; `false`/`null` is empty.
    fn collect_commands(
        &self,
        comodel: &str,
        value: &Value,
        out: &mut BTreeSet<String>,
    ) -> Option<()> {
        let items = match value {
            Value::Array(items) => items,
            Value::Null | Value::Bool(false) => return Some(()),
            _ => return None,
        };
        for item in items {
            match item {
                Value::Number(_) => {}
                Value::Array(cmd) => match cmd.first().and_then(Value::as_i64)? {
                    0 | 1 => self.collect_writes(comodel, cmd.get(2)?, out)?,
                    2..=6 => {}
                    _ => return None,
                },
                _ => return None,
            }
        }
        Some(())
    }

    /// The models a write on `model` invalidates: the transitive closure over reverse edges,
    /// starting from `model` and from every model whose dependencies are unresolved.
    /// [`Affected::Tenant`] when `model` is a security/config model ([`is_tenant_wide`]) or
    /// unknown to the graph (a module installed after learning).
    pub fn affected(&self, model: &str) -> Affected {
        if is_tenant_wide(model) || !self.knows(model) {
            return Affected::Tenant;
        }
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut queue: VecDeque<&str> = VecDeque::new();
        for start in std::iter::once(model).chain(self.unresolved.iter().map(String::as_str)) {
            if seen.insert(start) {
                queue.push_back(start);
            }
        }
        while let Some(x) = queue.pop_front() {
            for reader in self.readers.get(x).into_iter().flatten() {
                if seen.insert(reader) {
                    queue.push_back(reader);
                }
            }
        }
        Affected::Models(seen.into_iter().map(str::to_string).collect())
    }

    /// How many models were learned.
    pub fn models(&self) -> usize {
        self.learned.len()
    }

    /// How many distinct edges X → Y (X ≠ Y) the graph has.
    pub fn edges(&self) -> usize {
        self.readers.values().map(BTreeSet::len).sum()
    }

    /// Whether `model`'s `fields_get` answer was learned.
    pub fn knows(&self, model: &str) -> bool {
        self.learned.contains(model)
    }

    /// The models whose dependencies could not be resolved (and the models that could not be
    /// learned at all): every write's set includes them. For logs.
    pub fn unresolved(&self) -> impl Iterator<Item = &str> + '_ {
        self.unresolved.iter().map(String::as_str)
    }

    fn write(&mut self, model: &str, field: &str, target: &str) {
        self.writes
            .entry(model.to_string())
            .or_default()
            .entry(field.to_string())
            .or_default()
            .insert(target.to_string());
    }

    fn edge(&mut self, written: &str, reader: &str) {
        if written != reader {
            self.readers
                .entry(written.to_string())
                .or_default()
                .insert(reader.to_string());
        }
    }

    /// Walks a `depends`/`related` path from `reader`, adding an edge from each relational
    /// segment's target and pushing the target onto `along`. False when a segment cannot be
    /// resolved.
    fn walk<'a>(
        &mut self,
        answers: &Answers<'a>,
        reader: &str,
        path: &str,
        along: &mut Vec<&'a str>,
    ) -> bool {
        let mut model = reader;
        let mut segments = path.split('.').peekable();
        while let Some(segment) = segments.next() {
            let Some(Some(fields)) = answers.get(model) else {
                return false;
            };
            let Some(attrs) = fields.get(segment).and_then(Value::as_object) else {
                return false;
            };
            let target = relation(attrs);
            if let Some(target) = target {
                self.edge(target, reader);
                along.push(target);
            }
            if segments.peek().is_none() {
                return true;
            }
            match target {
                // An intermediate model that was not learned fails on the next segment.
                Some(target) => model = target,
                None => return false,
            }
        }
        true
    }
}

/// Whether writing the field writes the models along its paths: a related field that is not
/// read-only writes the record at the end of its path; a non-stored computed field that is not
/// read-only has an inverse, which may write what it depends on. A missing `readonly`
/// attribute counts as writable. A stored computed field that is not read-only is taken to
/// be an editable value of its own (Odoo's usual pattern for those), not an inverse.
fn writes_through(attrs: &Map<String, Value>, related: &[String]) -> bool {
    let readonly = attrs
        .get("readonly")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let stored = attrs.get("store").and_then(Value::as_bool).unwrap_or(false);
    let computed = attrs
        .get("depends")
        .and_then(Value::as_array)
        .is_some_and(|d| !d.is_empty());
    !readonly && (!related.is_empty() || (computed && !stored))
}

/// A field's comodel, when it has one.
fn relation(attrs: &Map<String, Value>) -> Option<&str> {
    attrs
        .get("relation")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
}

/// The dotted paths of a `depends` or `related` attribute, or `None` when it has a shape this
/// module does not understand (then the field's dependencies are unknown).
///
/// `depends` is a list of dotted paths. `related` is a dotted path (Odoo 14+) or a list: of
/// segments (`["partner_id", "name"]`, older series) when no element holds a dot, else of paths.
fn paths(v: Option<&Value>, related: bool) -> Option<Vec<String>> {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Some(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Some(Vec::new()),
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(Value::Array(items)) => {
            let items: Vec<&str> = items.iter().map(Value::as_str).collect::<Option<_>>()?;
            if items.iter().any(|s| s.is_empty()) {
                return None;
            }
            if related && !items.is_empty() && !items.iter().any(|s| s.contains('.')) {
                Some(vec![items.join(".")])
            } else {
                Some(items.into_iter().map(str::to_string).collect())
            }
        }
        Some(_) => None,
    }
}

/// Models whose exact names make a write flush the tenant.
const TENANT_WIDE: &[&str] = &[
    // access: users and their groups, rules, ACLs, field groups
    "res.users",
    "res.groups",
    "ir.rule",
    "ir.model",
    // credentials: API keys, passwords, identity checks, user deletion
    "res.users.apikeys",
    "res.users.apikeys.description",
    "res.users.identitycheck",
    "res.users.deletion",
    // companies and settings
    "res.company",
    "ir.config_parameter",
    "ir.default",
    "ir.property",
    // translations and languages
    "ir.translation",
    "res.lang",
    // UI definitions (get_views also returns saved filters)
    "ir.ui.view",
    "ir.ui.view.custom",
    "ir.ui.menu",
    "ir.filters",
    "ir.actions",
    "ir.embedded.actions",
    // monetary conversions
    "res.currency.rate",
    // website-wide settings (rules and pages depend on the website)
    "website",
];

/// Name prefixes that make a write flush the tenant.
const TENANT_WIDE_PREFIXES: &[&str] = &[
    // ir.model.access, ir.model.fields(.selection), ir.model.data, ir.model.constraint, ...
    "ir.model.",
    "ir.actions.",
    // res.config, res.config.settings, res.config.installer
    "res.config",
    "res.groups.",
    "res.users.role",
    "change.password.",
    // installed modules and languages change the schema, views and translations
    "ir.module.",
    "base.module.",
    "base.language.",
];

/// Whether a write on `model` flushes the whole tenant (odoo-protocol.md §3.3 item 5): it can
/// change what every user sees, or how, in ways no field dependency declares.
///
/// - access: `res.users` (groups, companies), `res.groups` (and `res.groups.*`), `ir.rule`,
///   `ir.model.access`, `ir.model.fields` (field `groups`), `ir.model` and every `ir.model.*`,
///   `res.users.role*` (OCA roles write groups);
/// - credentials: `res.users.apikeys(.description)`, `change.password.*`,
///   `res.users.identitycheck`, `res.users.deletion`;
/// - companies and settings: `res.company`, `ir.config_parameter`, every `res.config*`
///   (`res.config.settings.execute`), `ir.default` (read by `default_get`), `ir.property`
///   (company-dependent values in 16/17), `website`;
/// - translations and languages: `ir.translation` (16), `res.lang`, `base.language.*`;
/// - UI definitions: `ir.ui.view`, `ir.ui.view.custom`, `ir.ui.menu`, `ir.filters`,
///   `ir.actions` and every `ir.actions.*`, `ir.embedded.actions` (18);
/// - monetary data: `res.currency.rate`;
/// - modules: `ir.module.*`, `base.module.*`.
///
/// `res.users.settings` is not on the list: it holds one user's UI preferences (menu layout,
/// discuss sidebar), which change no other model's reads and no access; the graph treats it like
/// any other model.
pub fn is_tenant_wide(model: &str) -> bool {
    TENANT_WIDE.contains(&model) || TENANT_WIDE_PREFIXES.iter().any(|p| model.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m2o(relation: &str) -> Value {
        json!({"type": "many2one", "relation": relation, "store": true, "depends": []})
    }
    fn o2m(relation: &str, inverse: &str) -> Value {
        json!({"type": "one2many", "relation": relation, "relation_field": inverse,
               "store": false, "depends": []})
    }
    fn m2m(relation: &str) -> Value {
        json!({"type": "many2many", "relation": relation, "store": true, "depends": []})
    }
    fn plain(ftype: &str) -> Value {
        json!({"type": ftype, "store": true, "depends": []})
    }
    /// A read-only computed field (Odoo's default for computes without an inverse).
    fn computed(ftype: &str, store: bool, depends: &[&str]) -> Value {
        json!({"type": ftype, "store": store, "depends": depends, "readonly": true})
    }

    fn graph(models: &[(&str, Value)]) -> DepGraph {
        DepGraph::from_fields_get(models.iter().map(|(m, v)| (*m, v)))
    }

    fn set(names: &[&str]) -> Affected {
        let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        v.sort();
        Affected::Models(v)
    }

    fn sale() -> Vec<(&'static str, Value)> {
        vec![
            (
                "sale.order",
                json!({
                    "name": plain("char"),
                    "partner_id": m2o("res.partner"),
                    "order_line": o2m("sale.order.line", "order_id"),
                    "amount_total": computed("monetary", true, &["order_line.price_total"]),
                }),
            ),
            (
                "sale.order.line",
                json!({
                    "order_id": m2o("sale.order"),
                    "product_uom_qty": plain("float"),
                    "price_unit": plain("float"),
                    "price_total": computed("monetary", true, &["product_uom_qty", "price_unit"]),
                }),
            ),
            (
                "res.partner",
                json!({
                    "name": plain("char"),
                    "display_name": computed("char", false, &["name"]),
                }),
            ),
            ("product.product", json!({"name": plain("char")})),
        ]
    }

    #[test]
    fn a_line_write_affects_its_order() {
        let g = graph(&sale());
        assert_eq!(
            g.affected("sale.order.line"),
            set(&["sale.order", "sale.order.line"])
        );
        assert_eq!(g.models(), 4);
        assert!(g.knows("sale.order.line"));
        assert_eq!(g.unresolved().count(), 0);
    }

    #[test]
    fn many2one_display_names_make_an_edge() {
        let g = graph(&sale());
        assert_eq!(
            g.affected("res.partner"),
            set(&["res.partner", "sale.order", "sale.order.line"])
        );
        // Nobody reads product.product here.
        assert_eq!(g.affected("product.product"), set(&["product.product"]));
    }

    #[test]
    fn two_hop_chains_are_followed() {
        // C.z depends on B.x; B.x is a stored compute depending on A through a one2many.
        let g = graph(&[
            ("a", json!({"b_id": m2o("b"), "y": plain("float")})),
            (
                "b",
                json!({
                    "a_ids": {"type": "one2many", "relation": "a", "depends": []},
                    "x": computed("float", true, &["a_ids.y"]),
                }),
            ),
            (
                "c",
                json!({
                    "b_id": m2o("b"),
                    "z": computed("float", false, &["b_id.x"]),
                }),
            ),
        ]);
        assert_eq!(g.affected("a"), set(&["a", "b", "c"]));
        assert_eq!(g.affected("c"), set(&["c"]));
    }

    #[test]
    fn paths_through_several_models_make_edges_from_each() {
        let g = graph(&[
            (
                "sale.order",
                json!({
                    "partner_id": m2o("res.partner"),
                    "partner_country_code": {"type": "char", "store": false, "readonly": true,
                        "related": "partner_id.country_id.code",
                        "depends": ["partner_id.country_id.code"]},
                }),
            ),
            ("res.partner", json!({"country_id": m2o("res.country")})),
            ("res.country", json!({"code": plain("char")})),
        ]);
        assert_eq!(
            g.affected("res.country"),
            set(&["res.country", "res.partner", "sale.order"])
        );
        assert_eq!(g.unresolved().count(), 0);
        // res.partner → sale.order (field and path), res.country → sale.order (path),
        // res.country → res.partner (field).
        assert_eq!(g.edges(), 3);
    }

    #[test]
    fn related_as_a_list_of_segments_or_paths() {
        let base = |related: Value| {
            graph(&[
                (
                    "m",
                    json!({
                        "p_id": m2o("p"),
                        "code": {"type": "char", "store": false, "readonly": true,
                                 "related": related},
                    }),
                ),
                ("p", json!({"q_id": m2o("q")})),
                ("q", json!({"code": plain("char")})),
            ])
        };
        let segments = base(json!(["p_id", "q_id", "code"]));
        assert_eq!(segments.unresolved().count(), 0);
        assert_eq!(segments.affected("q"), set(&["m", "p", "q"]));
        let dotted = base(json!(["p_id.q_id.code"]));
        assert_eq!(dotted.unresolved().count(), 0);
        let broken = base(json!(["p_id", "q_id", "nope"]));
        assert_eq!(broken.unresolved().collect::<Vec<_>>(), vec!["m"]);
    }

    #[test]
    fn security_and_config_models_flush_the_tenant() {
        let mut models = sale();
        models.push(("res.users", json!({"partner_id": m2o("res.partner")})));
        models.push(("ir.rule", json!({"name": plain("char")})));
        let g = graph(&models);
        for m in [
            "res.users",
            "res.groups",
            "ir.rule",
            "ir.model.access",
            "ir.model.fields",
            "ir.model",
            "res.company",
            "ir.config_parameter",
            "res.config.settings",
            "res.config.installer",
            "ir.translation",
            "res.lang",
            "ir.ui.view",
            "ir.ui.menu",
            "ir.actions.act_window",
            "ir.actions.server",
            "res.currency.rate",
            "ir.default",
            "res.users.apikeys",
            "change.password.wizard",
        ] {
            assert!(is_tenant_wide(m), "{m}");
            assert_eq!(g.affected(m), Affected::Tenant, "{m}");
        }
        for m in [
            "res.partner",
            "res.users.settings",
            "res.currency",
            "sale.order",
            "res.country",
            "ir.attachment",
        ] {
            assert!(!is_tenant_wide(m), "{m}");
        }
    }

    #[test]
    fn unknown_models_flush_the_tenant() {
        let g = graph(&sale());
        assert!(!g.knows("stock.picking"));
        assert_eq!(g.affected("stock.picking"), Affected::Tenant);
        // Known only as a relation target: still unknown.
        let g = graph(&[("sale.order", json!({"partner_id": m2o("res.partner")}))]);
        assert_eq!(g.affected("res.partner"), Affected::Tenant);
        assert_eq!(g.affected(""), Affected::Tenant);
        assert_eq!(DepGraph::default().affected("sale.order"), Affected::Tenant);
    }

    #[test]
    fn unresolvable_paths_put_the_reader_in_every_set() {
        let mut models = sale();
        models.push((
            "report.x",
            json!({
                "order_id": m2o("sale.order"),
                "total": computed("float", true, &["order_id.missing_field"]),
            }),
        ));
        models.push((
            "report.y",
            json!({"stock": computed("float", false, &["move_ids.qty"])}),
        ));
        // Reads report.x: affected through report.x's closure.
        models.push(("report.z", json!({"x_id": m2o("report.x")})));
        let g = graph(&models);
        let mut unresolved: Vec<&str> = g.unresolved().collect();
        unresolved.sort();
        assert_eq!(unresolved, vec!["report.x", "report.y"]);
        assert_eq!(
            g.affected("product.product"),
            set(&["product.product", "report.x", "report.y", "report.z"])
        );
        // A model known only from a path is unknown: writes on it flush the tenant.
        assert_eq!(g.affected("stock.move"), Affected::Tenant);
    }

    #[test]
    fn models_that_could_not_be_learned_are_unknown_readers() {
        let mut models = sale();
        models.push(("hr.secret", Value::Null));
        let g = graph(&models);
        assert!(!g.knows("hr.secret"));
        assert_eq!(g.models(), 4);
        assert_eq!(g.affected("hr.secret"), Affected::Tenant);
        assert_eq!(
            g.affected("product.product"),
            set(&["hr.secret", "product.product"])
        );
    }

    #[test]
    fn malformed_attributes_are_unresolved() {
        for depends in [json!(42), json!([1]), json!([""]), json!({"a": 1})] {
            let g = graph(&[
                ("m", json!({"f": {"type": "char", "depends": depends}})),
                ("n", json!({"g": plain("char")})),
            ]);
            assert_eq!(g.affected("n"), set(&["m", "n"]), "{depends}");
        }
        let g = graph(&[("m", json!({"f": "char"})), ("n", json!({}))]);
        assert_eq!(g.affected("n"), set(&["m", "n"]));
    }

    #[test]
    fn cycles_terminate() {
        let g = graph(&[
            (
                "res.partner",
                json!({
                    "parent_id": m2o("res.partner"),
                    "child_ids": o2m("res.partner", "parent_id"),
                    "commercial_partner_id": computed("many2one", true,
                        &["parent_id.commercial_partner_id"]),
                    "tag_ids": m2m("res.partner.category"),
                }),
            ),
            (
                "res.partner.category",
                json!({"partner_ids": m2m("res.partner"),
                       "parent_id": m2o("res.partner.category")}),
            ),
            ("a", json!({"b_id": m2o("b")})),
            ("b", json!({"c_id": m2o("c")})),
            ("c", json!({"a_id": m2o("a")})),
        ]);
        assert_eq!(
            g.affected("res.partner"),
            set(&["res.partner", "res.partner.category"])
        );
        assert_eq!(g.affected("a"), set(&["a", "b", "c"]));
    }

    #[test]
    fn many2many_writes_reach_the_comodel() {
        // No inverse field on the tag model: creating tags through the command list still
        // changes its searches.
        let g = graph(&[
            ("project.task", json!({"tag_ids": m2m("project.tags")})),
            ("project.tags", json!({"name": plain("char")})),
        ]);
        assert_eq!(
            g.affected("project.task"),
            set(&["project.tags", "project.task"])
        );
        assert_eq!(
            g.affected("project.tags"),
            set(&["project.tags", "project.task"])
        );
    }

    #[test]
    fn affected_is_sorted_deduplicated_and_holds_the_written_model() {
        let g = graph(&[
            (
                "z.model",
                json!({"a_id": m2o("a.model"), "m_id": m2o("m.model")}),
            ),
            ("m.model", json!({"a_id": m2o("a.model")})),
            ("a.model", json!({"name": plain("char")})),
            ("lonely", json!({})),
        ]);
        let Affected::Models(v) = g.affected("a.model") else {
            panic!("models expected")
        };
        assert_eq!(v, vec!["a.model", "m.model", "z.model"]);
        assert_eq!(g.affected("lonely"), set(&["lonely"]));
    }

    fn order_graph() -> DepGraph {
        let mut models: Vec<(&str, Value)> = sale()
            .into_iter()
            .filter(|(m, _)| !matches!(*m, "sale.order.line" | "res.partner"))
            .collect();
        models.push((
            "sale.order.line",
            json!({
                "order_id": m2o("sale.order"),
                "name": plain("text"),
                "price_total": computed("monetary", true, &["product_uom_qty", "price_unit"]),
                "product_uom_qty": plain("float"),
                "price_unit": plain("float"),
                "tax_ids": m2m("account.tax"),
            }),
        ));
        models.push(("account.tax", json!({"name": plain("char")})));
        models.push((
            "res.partner",
            json!({
                "name": plain("char"),
                "user_ids": o2m("res.users", "partner_id"),
                "display_name": computed("char", false, &["name"]),
            }),
        ));
        models.push((
            "res.users",
            json!({
                "partner_id": m2o("res.partner"),
                // `_inherits`: writable related fields write the partner.
                "name": {"type": "char", "related": "partner_id.name", "store": false,
                         "readonly": false, "depends": ["partner_id.name"]},
            }),
        ));
        graph(&models)
    }

    #[test]
    fn written_by_follows_x2many_and_writable_fields_transitively() {
        let g = order_graph();
        assert_eq!(
            g.written_by("sale.order"),
            vec!["account.tax", "sale.order", "sale.order.line"]
        );
        assert_eq!(
            g.written_by("sale.order.line"),
            vec!["account.tax", "sale.order.line"]
        );
        assert_eq!(
            g.written_by("res.users"),
            vec!["res.partner", "res.users"],
            "writable related fields write their target"
        );
        assert_eq!(
            g.written_by("res.partner"),
            vec!["res.partner", "res.users"]
        );
        assert_eq!(g.written_by("product.product"), vec!["product.product"]);
        assert_eq!(g.written_by("not.learned"), vec!["not.learned"]);
    }

    #[test]
    fn written_by_values_follows_only_what_the_values_touch() {
        let g = order_graph();
        let w = |model: &str, vals: Value| g.written_by_values(model, &vals);
        assert_eq!(
            w("sale.order.line", json!({"product_uom_qty": 3})),
            Some(vec!["sale.order.line".into()])
        );
        assert_eq!(
            w(
                "sale.order",
                json!({"name": "S1", "order_line": [[1, 5, {"price_unit": 2}]]})
            ),
            Some(vec!["sale.order".into(), "sale.order.line".into()])
        );
        assert_eq!(
            w(
                "sale.order",
                json!([{"partner_id": 3, "order_line": [[0, 0, {"name": "x", "tax_ids": [[6, 0, [1]]]}]]}])
            ),
            Some(vec![
                "account.tax".into(),
                "sale.order".into(),
                "sale.order.line".into()
            ])
        );
        assert_eq!(
            w(
                "sale.order",
                json!({"order_line": [[2, 5], [3, 6], [4, 7], [5]]})
            ),
            Some(vec!["sale.order".into(), "sale.order.line".into()])
        );
        assert_eq!(
            w("res.partner", json!({"name": "x"})),
            Some(vec!["res.partner".into()]),
            "a partner write without user commands does not write users"
        );
        assert_eq!(
            w("res.partner", json!({"user_ids": [[1, 2, {"name": "y"}]]})),
            Some(vec!["res.partner".into(), "res.users".into()])
        );
        assert_eq!(
            w("res.users", json!({"name": "y"})),
            Some(vec!["res.partner".into(), "res.users".into()])
        );
        // What cannot be read that way.
        assert_eq!(w("sale.order", json!({"no_such_field": 1})), None);
        assert_eq!(w("not.learned", json!({"name": 1})), None);
        assert_eq!(w("sale.order", json!("x")), None);
        assert_eq!(w("sale.order", json!({"order_line": [[9, 0]]})), None);
        assert_eq!(w("sale.order", json!({"order_line": "x"})), None);
        assert_eq!(
            w("sale.order", json!({"order_line": [[0, 0, {"bogus": 1}]]})),
            None
        );
        assert_eq!(
            w("sale.order", json!({"order_line": false})),
            Some(vec!["sale.order".into(), "sale.order.line".into()])
        );
    }

    #[test]
    fn writable_related_fields_reach_their_target() {
        let build = |readonly: bool| {
            graph(&[
                (
                    "m",
                    json!({
                        "p_id": m2o("p"),
                        "p_name": {"type": "char", "store": false, "readonly": readonly,
                                   "related": "p_id.name", "depends": ["p_id.name"]},
                    }),
                ),
                ("p", json!({"name": plain("char")})),
                ("q", json!({"p_id": m2o("p")})),
            ])
        };
        // Writing m.p_name writes p, which q reads.
        assert_eq!(build(false).affected("m"), set(&["m", "p", "q"]));
        assert_eq!(build(false).written_by("m"), vec!["m", "p"]);
        assert_eq!(build(true).affected("m"), set(&["m"]));
        assert_eq!(build(true).written_by("m"), vec!["m"]);
        // A non-stored compute with an inverse (not read-only) too; a stored editable compute
        // only sets its own column.
        let g = graph(&[
            (
                "m",
                json!({
                    "p_id": m2o("p"),
                    "inv": {"type": "char", "store": false, "readonly": false,
                            "depends": ["p_id.name"]},
                    "editable": {"type": "char", "store": true, "readonly": false,
                                 "depends": ["p_id.name"]},
                }),
            ),
            ("p", json!({"name": plain("char")})),
        ]);
        assert_eq!(
            g.written_by_values("m", &json!({"inv": "x"})),
            Some(vec!["m".into(), "p".into()])
        );
        assert_eq!(
            g.written_by_values("m", &json!({"editable": "x"})),
            Some(vec!["m".into()])
        );
    }
}
