//! The batched reads of a [`Plan`] and the answer merged from them.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::plan::{Node, Plan};
use super::{ExpandError, Form, Layout};

/// One batched `read` of a relation level: every distinct id reached on `model` at that level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelRead {
    /// The level (1 = the comodels of the base model's fields).
    pub level: usize,
    /// The comodel.
    pub model: String,
    /// Distinct ids, in first-reached order.
    pub ids: Vec<i64>,
    /// The fields to read: the union of what every node of this level and model needs.
    pub fields: Vec<String>,
}

/// The ids a relational value names: many2one `[id, name]` (16's `read`) or `id` / `{id, ...}`
/// (17's `web_read`), `false`; x2many a list of ids (or of `{id, ...}`).
pub fn ids_of(value: &Value) -> Vec<i64> {
    match value {
        Value::Number(n) => n.as_i64().into_iter().collect(),
        Value::Object(o) => o.get("id").and_then(Value::as_i64).into_iter().collect(),
        Value::Array(items) => {
            // `[id, "name"]` is a many2one pair, not two ids.
            if let [Value::Number(id), Value::String(_)] = items.as_slice() {
                return id.as_i64().into_iter().collect();
            }
            items
                .iter()
                .filter_map(|item| match item {
                    Value::Number(n) => n.as_i64(),
                    Value::Object(o) => o.get("id").and_then(Value::as_i64),
                    _ => None,
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The ids of a value through `node` (a many2one names at most one).
fn node_ids(node: &Node, value: &Value) -> Vec<i64> {
    let mut ids = ids_of(value);
    if !node.many {
        ids.truncate(1);
    }
    ids
}

type Records = HashMap<i64, Map<String, Value>>;

/// An expansion in progress: the base records, then each level's records as they arrive.
#[derive(Debug, Clone)]
pub struct Expansion<'p> {
    plan: &'p Plan,
    base: Vec<Map<String, Value>>,
    /// `(level, model)` → id → record.
    levels: HashMap<(usize, String), Records>,
    /// Per node: the ids it reaches, in first-reached order.
    reached: Vec<Vec<i64>>,
    /// The last level whose records were added (0: only the base).
    done: usize,
}

fn records(value: Value, what: &'static str) -> Result<Vec<Map<String, Value>>, ExpandError> {
    let Value::Array(items) = value else {
        return Err(ExpandError::NotAList(what));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::Object(o) if o.get("id").and_then(Value::as_i64).is_some() => Ok(o),
            _ => Err(ExpandError::NotARecord(what)),
        })
        .collect()
}

impl<'p> Expansion<'p> {
    /// Starts from the base call's records (the `result` of `search_read`/`read`, or the
    /// `records` of `web_search_read`).
    pub fn new(plan: &'p Plan, base: Value) -> Result<Self, ExpandError> {
        Ok(Expansion {
            plan,
            base: records(base, "base")?,
            levels: HashMap::new(),
            reached: vec![Vec::new(); plan.nodes.len()],
            done: 0,
        })
    }

    /// Starts from records already flattened (the 17+ path): see [`super::spec`].
    pub(crate) fn from_parts(
        plan: &'p Plan,
        base: Vec<Map<String, Value>>,
        levels: HashMap<(usize, String), Records>,
    ) -> Self {
        Expansion {
            plan,
            base,
            levels,
            reached: vec![Vec::new(); plan.nodes.len()],
            done: plan.levels(),
        }
    }

    /// Whether every level has been read (or nothing reached the next one).
    pub fn complete(&self) -> bool {
        self.done >= self.plan.levels()
    }

    /// The reads of the next level, one per model (none when the expansion is complete or no
    /// record reaches that level). Call [`Expansion::add`] with each answer, then this again.
    pub fn next_reads(&mut self) -> Vec<LevelRead> {
        let level = self.done + 1;
        if level > self.plan.levels() {
            return Vec::new();
        }
        let mut reads: Vec<LevelRead> = Vec::new();
        for (index, node) in self.plan.nodes.iter().enumerate() {
            if node.level != level {
                continue;
            }
            let mut ids: Vec<i64> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            let mut take = |value: Option<&Value>| {
                if let Some(value) = value {
                    for id in node_ids(node, value) {
                        if seen.insert(id) {
                            ids.push(id);
                        }
                    }
                }
            };
            match node.parent {
                None => {
                    for record in &self.base {
                        take(record.get(&node.field));
                    }
                }
                Some(parent) => {
                    let parent_node = &self.plan.nodes[parent];
                    let key = (parent_node.level, parent_node.model.clone());
                    if let Some(rows) = self.levels.get(&key) {
                        for id in &self.reached[parent] {
                            take(rows.get(id).and_then(|r| r.get(&node.field)));
                        }
                    }
                }
            }
            self.reached[index] = ids.clone();
            if ids.is_empty() {
                continue;
            }
            match reads.iter_mut().find(|r| r.model == node.model) {
                Some(read) => {
                    for id in ids {
                        if !read.ids.contains(&id) {
                            read.ids.push(id);
                        }
                    }
                    for f in &node.fields {
                        if !read.fields.contains(f) {
                            read.fields.push(f.clone());
                        }
                    }
                }
                None => reads.push(LevelRead {
                    level,
                    model: node.model.clone(),
                    ids,
                    fields: node.fields.clone(),
                }),
            }
        }
        self.done = level;
        if reads.is_empty() && level < self.plan.levels() {
            // Nothing reached at this level: nothing deeper either.
            self.done = self.plan.levels();
        }
        reads
    }

    /// Adds the answer (a list of records) to one of [`Expansion::next_reads`]'s reads. Ids
    /// the answer lacks (deleted records, which Odoo's `read` leaves out) read as `false`.
    pub fn add(&mut self, read: &LevelRead, answer: Value) -> Result<(), ExpandError> {
        let rows = self
            .levels
            .entry((read.level, read.model.clone()))
            .or_default();
        for record in records(answer, "level")? {
            if let Some(id) = record.get("id").and_then(Value::as_i64) {
                rows.entry(id).or_default().extend(record);
            }
        }
        Ok(())
    }

    fn record(&self, node: &Node, id: i64) -> Option<&Map<String, Value>> {
        self.levels
            .get(&(node.level, node.model.clone()))
            .and_then(|rows| rows.get(&id))
    }

    /// The value of `path` (node indexes, then the leaf) from a relational value.
    fn eval(&self, value: &Value, nodes: &[usize], leaf: &str) -> Eval {
        let Some((&first, rest)) = nodes.split_first() else {
            return Eval::One(value.clone());
        };
        let node = &self.plan.nodes[first];
        let ids = node_ids(node, value);
        let step = |id: i64| -> Option<Eval> {
            let record = self.record(node, id)?;
            Some(match rest.first() {
                None => Eval::One(record.get(leaf).cloned().unwrap_or(Value::Bool(false))),
                Some(&next) => {
                    let field = &self.plan.nodes[next].field;
                    let inner = record.get(field).cloned().unwrap_or(Value::Bool(false));
                    self.eval(&inner, rest, leaf)
                }
            })
        };
        if node.many {
            let mut out = Vec::new();
            for id in ids {
                match step(id) {
                    Some(Eval::One(v)) => out.push(v),
                    Some(Eval::Many(vs)) => out.extend(vs),
                    None => {}
                }
            }
            Eval::Many(out)
        } else {
            match ids.first().and_then(|&id| step(id)) {
                Some(e) => e,
                None => Eval::One(Value::Bool(false)),
            }
        }
    }

    /// The nested value of `node` from a relational value: `{id, leaves..., children...}` or
    /// `false` for a many2one, a list of them for an x2many.
    fn nested(&self, index: usize, value: &Value) -> Value {
        let node = &self.plan.nodes[index];
        let object = |id: i64| -> Option<Value> {
            let record = self.record(node, id)?;
            let mut out = Map::new();
            out.insert("id".into(), Value::from(id));
            for leaf in &node.leaves {
                out.insert(
                    leaf.clone(),
                    record.get(leaf).cloned().unwrap_or(Value::Bool(false)),
                );
            }
            for &child in &node.children {
                let field = &self.plan.nodes[child].field;
                let inner = record.get(field).cloned().unwrap_or(Value::Bool(false));
                out.insert(field.clone(), self.nested(child, &inner));
            }
            Some(Value::Object(out))
        };
        let ids = node_ids(node, value);
        if node.many {
            Value::Array(ids.into_iter().filter_map(object).collect())
        } else {
            ids.first()
                .and_then(|&id| object(id))
                .unwrap_or(Value::Bool(false))
        }
    }

    /// The merged records, in the base call's order: flat keys (`"partner_id.name": ...`,
    /// fields BridgeCore added left out) or nested objects per [`Plan::layout`]. `form` says
    /// how the caller's own relational fields are shown: [`Form::Web`] turns the roots the
    /// caller asked as `{}` back into ids.
    pub fn finish(self, form: Form) -> Vec<Value> {
        let mut out = Vec::with_capacity(self.base.len());
        for record in &self.base {
            let mut merged = record.clone();
            match self.plan.layout {
                Layout::Flat => {
                    for path in &self.plan.paths {
                        let Some(&root) = path.nodes.first() else {
                            continue;
                        };
                        let start = record
                            .get(&self.plan.nodes[root].field)
                            .cloned()
                            .unwrap_or(Value::Bool(false));
                        let value = match self.eval(&start, &path.nodes, &path.leaf) {
                            Eval::One(v) => v,
                            Eval::Many(vs) => Value::Array(vs),
                        };
                        merged.insert(path.key.clone(), value);
                    }
                    for added in &self.plan.added {
                        merged.remove(added);
                    }
                    if form == Form::Web {
                        for &root in &self.plan.roots {
                            let field = &self.plan.nodes[root].field;
                            if let Some(v) = merged.get_mut(field) {
                                *v = web_plain(&self.plan.nodes[root], v);
                            }
                        }
                    }
                }
                Layout::Nested => {
                    for &root in &self.plan.roots {
                        let field = &self.plan.nodes[root].field;
                        let start = record.get(field).cloned().unwrap_or(Value::Bool(false));
                        merged.insert(field.clone(), self.nested(root, &start));
                    }
                }
            }
            out.push(Value::Object(merged));
        }
        out
    }
}

/// A relational value as a 17+ `{}` specification shows it: a many2one's id (or `false`), an
/// x2many's ids.
fn web_plain(node: &Node, value: &Value) -> Value {
    let ids = node_ids(node, value);
    if node.many {
        Value::Array(ids.into_iter().map(Value::from).collect())
    } else {
        ids.first()
            .map_or(Value::Bool(false), |&id| Value::from(id))
    }
}

/// A path's value: one value, or (through an x2many) one per record reached.
enum Eval {
    One(Value),
    Many(Vec<Value>),
}
