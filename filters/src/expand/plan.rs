//! Dotted field lists parsed into a tree of relations, checked against `fields_get`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{Layout, Skip, MAX_LEVELS};

/// The `fields_get` descriptions BridgeCore knows, per model (`type`, `relation`, ...).
pub trait Catalog {
    /// The description of every field of `model` the caller can see, if known.
    fn fields(&self, model: &str) -> Option<&Map<String, Value>>;
}

impl Catalog for BTreeMap<String, Map<String, Value>> {
    fn fields(&self, model: &str) -> Option<&Map<String, Value>> {
        self.get(model)
    }
}

impl Catalog for std::collections::HashMap<String, Arc<Map<String, Value>>> {
    fn fields(&self, model: &str) -> Option<&Map<String, Value>> {
        self.get(model).map(|m| &**m)
    }
}

/// What a caller asked for, as the planner needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// The model the call reads.
    pub model: String,
    /// The caller's field names, in order, dotted ones included. Empty with `all_fields`.
    pub fields: Vec<String>,
    /// The call gave no `fields` (every field): only automatic expansion can apply.
    pub all_fields: bool,
    /// Automatic expansion for this model (`optimizer.expand.<model>`): relational field →
    /// sub-fields. Applied to each field the caller reads (all of them with `all_fields`).
    pub auto: BTreeMap<String, Vec<String>>,
    /// Flat keys or nested objects.
    pub layout: Layout,
}

impl Request {
    /// Whether any field name has a dot, or automatic expansion may apply: the cheap test
    /// before planning.
    pub fn wants_expansion(&self) -> bool {
        !self.auto.is_empty() || self.fields.iter().any(|f| f.contains('.'))
    }
}

/// The records reached through one relational field, and what is read on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The relational field on the parent (the base model, or the parent node's model).
    pub field: String,
    /// Its comodel.
    pub model: String,
    /// one2many / many2many (a list of ids) rather than many2one.
    pub many: bool,
    /// 1 for a field of the base model, 2 for a field of a level-1 model, ...
    pub level: usize,
    /// The parent node (`None` for a field of the base model).
    pub parent: Option<usize>,
    /// What is read on the comodel: the leaves and the relational fields of the children, in
    /// first-asked order.
    pub fields: Vec<String>,
    /// The fields asked for as values on this node (shown in nested objects).
    pub leaves: Vec<String>,
    /// Of `fields`, the many2one ones (their 17+ value is converted to `[id, display_name]`).
    pub many2one: Vec<String>,
    /// Child nodes, by index into [`Plan::nodes`].
    pub children: Vec<usize>,
}

/// One dotted name the caller asked for, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// The key of the flat answer, as the caller wrote it.
    pub key: String,
    /// The nodes it goes through, outermost first (one per relational segment).
    pub nodes: Vec<usize>,
    /// The last segment: the field read on the last node's model.
    pub leaf: String,
}

/// How a call with dotted fields is answered: what the base call reads, and one node per
/// relational field on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The base model.
    pub model: String,
    /// The `fields` of the base call: the caller's plain fields, then the relational fields the
    /// dotted ones start with. `None`: every field (the caller gave none).
    pub base_fields: Option<Vec<String>>,
    /// Base fields BridgeCore added (not asked for by the caller): left out of flat answers.
    pub added: Vec<String>,
    /// Of the caller's plain fields, the many2one ones.
    pub base_many2one: Vec<String>,
    /// Every node; roots first is not guaranteed, use [`Plan::roots`].
    pub nodes: Vec<Node>,
    /// The nodes of the base model's fields.
    pub roots: Vec<usize>,
    /// The caller's dotted names, in the order asked (automatic ones after them).
    pub paths: Vec<Path>,
    /// Flat keys or nested objects.
    pub layout: Layout,
}

impl Plan {
    /// The number of relation levels (the deepest node's level).
    pub fn levels(&self) -> usize {
        self.nodes.iter().map(|n| n.level).max().unwrap_or(0)
    }

    /// The root node of base field `field`, if it has one.
    pub fn root(&self, field: &str) -> Option<usize> {
        self.roots
            .iter()
            .copied()
            .find(|&i| self.nodes[i].field == field)
    }
}

/// What planning decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// Expand with this plan.
    Ready(Plan),
    /// Leave the call as it is (Odoo answers it, its own error included).
    Skip(Skip),
    /// The `fields_get` of this model is needed first: fetch it and plan again.
    NeedFields(String),
}

fn relational(desc: &Value) -> Option<(&str, bool)> {
    let kind = desc.get("type")?.as_str()?;
    let many = match kind {
        "many2one" => false,
        "one2many" | "many2many" => true,
        _ => return None,
    };
    let relation = desc.get("relation")?.as_str().filter(|r| !r.is_empty())?;
    Some((relation, many))
}

fn is_many2one(desc: Option<&Value>) -> bool {
    desc.and_then(|d| d.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t == "many2one")
}

fn push_unique(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|n| n == name) {
        list.push(name.to_owned());
    }
}

/// One name to resolve: the caller's own (a bad one skips the whole call) or automatic (a bad
/// one is dropped: a configuration mistake never breaks a call).
struct Wanted {
    key: String,
    auto: bool,
}

/// Plans the expansion of `request`'s dotted fields (see the module documentation for the
/// rules). Pure: models whose `fields_get` is not in `catalog` are asked for with
/// [`Planned::NeedFields`], one at a time, in the order the paths reach them.
pub fn plan(request: &Request, catalog: &impl Catalog) -> Planned {
    if !request.wants_expansion() {
        return Planned::Skip(Skip::NoDots);
    }
    let Some(base) = catalog.fields(&request.model) else {
        return Planned::NeedFields(request.model.clone());
    };
    let mut plain: Vec<String> = Vec::new();
    let mut wanted: Vec<Wanted> = Vec::new();
    for name in &request.fields {
        if name.contains('.') {
            if !wanted.iter().any(|w| &w.key == name) {
                wanted.push(Wanted {
                    key: name.clone(),
                    auto: false,
                });
            }
        } else if !base.contains_key(name) {
            // Odoo answers for unknown (or hidden) plain fields itself.
            return Planned::Skip(Skip::UnknownField);
        } else {
            push_unique(&mut plain, name);
        }
    }
    for (field, subs) in &request.auto {
        if request.all_fields || plain.contains(field) {
            for sub in subs {
                let key = format!("{field}.{sub}");
                if !wanted.iter().any(|w| w.key == key) {
                    wanted.push(Wanted { key, auto: true });
                }
            }
        }
    }
    let mut nodes: Vec<Node> = Vec::new();
    let mut roots: Vec<usize> = Vec::new();
    let mut paths: Vec<Path> = Vec::new();
    for w in &wanted {
        let segments: Vec<&str> = w.key.split('.').collect();
        let bad = |skip: Skip| {
            if w.auto {
                None
            } else {
                Some(Planned::Skip(skip))
            }
        };
        if segments.iter().any(|s| s.is_empty()) {
            match bad(Skip::BadPath) {
                Some(p) => return p,
                None => continue,
            }
        }
        if segments.len() > MAX_LEVELS + 1 {
            match bad(Skip::TooDeep) {
                Some(p) => return p,
                None => continue,
            }
        }
        // Resolve first, change the tree only once the whole path is known to be good.
        let mut model = request.model.clone();
        let mut hops: Vec<(String, String, bool)> = Vec::new();
        let mut failed = None;
        for (i, seg) in segments.iter().enumerate() {
            let Some(fields) = catalog.fields(&model) else {
                return Planned::NeedFields(model);
            };
            let Some(desc) = fields.get(*seg) else {
                failed = Some(Skip::UnknownField);
                break;
            };
            if i + 1 == segments.len() {
                break;
            }
            match relational(desc) {
                Some((relation, many)) => {
                    hops.push(((*seg).to_owned(), relation.to_owned(), many));
                    model = relation.to_owned();
                }
                None => {
                    failed = Some(Skip::NotRelational);
                    break;
                }
            }
        }
        if let Some(skip) = failed {
            match bad(skip) {
                Some(p) => return p,
                None => continue,
            }
        }
        let leaf = segments.last().copied().unwrap_or_default().to_owned();
        let mut parent: Option<usize> = None;
        let mut on_path = Vec::with_capacity(hops.len());
        for (level, (field, relation, many)) in hops.into_iter().enumerate() {
            let siblings = match parent {
                None => &roots,
                Some(p) => &nodes[p].children,
            };
            let found = siblings.iter().copied().find(|&i| nodes[i].field == field);
            let index = match found {
                Some(i) => i,
                None => {
                    let index = nodes.len();
                    nodes.push(Node {
                        field: field.clone(),
                        model: relation,
                        many,
                        level: level + 1,
                        parent,
                        fields: Vec::new(),
                        leaves: Vec::new(),
                        many2one: Vec::new(),
                        children: Vec::new(),
                    });
                    match parent {
                        None => roots.push(index),
                        Some(p) => {
                            nodes[p].children.push(index);
                            push_unique(&mut nodes[p].fields, &field);
                        }
                    }
                    index
                }
            };
            on_path.push(index);
            parent = Some(index);
        }
        if let Some(last) = parent {
            push_unique(&mut nodes[last].fields, &leaf);
            push_unique(&mut nodes[last].leaves, &leaf);
        }
        paths.push(Path {
            key: w.key.clone(),
            nodes: on_path,
            leaf,
        });
    }
    if paths.is_empty() {
        return Planned::Skip(Skip::NoDots);
    }
    // The many2one fields of each node, for the 17+ specification and its reshaping.
    for node in &mut nodes {
        if let Some(fields) = catalog.fields(&node.model) {
            node.many2one = node
                .fields
                .iter()
                .filter(|f| is_many2one(fields.get(f.as_str())))
                .cloned()
                .collect();
        }
    }
    let base_many2one = plain
        .iter()
        .filter(|f| is_many2one(base.get(f.as_str())))
        .cloned()
        .collect();
    let (base_fields, added) = if request.all_fields {
        (None, Vec::new())
    } else {
        let mut fields = plain.clone();
        let mut added = Vec::new();
        for &r in &roots {
            let field = &nodes[r].field;
            if !fields.contains(field) {
                fields.push(field.clone());
                added.push(field.clone());
            }
        }
        (Some(fields), added)
    };
    Planned::Ready(Plan {
        model: request.model.clone(),
        base_fields,
        added,
        base_many2one,
        nodes,
        roots,
        paths,
        layout: request.layout,
    })
}
