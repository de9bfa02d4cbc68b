//! Odoo 17+: the whole expansion as one `web_search_read` / `web_read` `specification`
//! (odoo-protocol.md §5.2, §5.4), and its answer reshaped into what the 1 + M reads give.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::merge::Expansion;
use super::plan::{Node, Plan};
use super::ExpandError;

fn empty() -> Value {
    Value::Object(Map::new())
}

/// `{"fields": {"display_name": {}}}`: a many2one read as `{id, display_name}`, from which
/// `read`'s `[id, display_name]` is rebuilt (`display_name` is read as superuser, like the
/// name of `read`'s pair).
fn named() -> Value {
    let mut fields = Map::new();
    fields.insert("display_name".into(), empty());
    let mut spec = Map::new();
    spec.insert("fields".into(), Value::Object(fields));
    Value::Object(spec)
}

fn node_spec(plan: &Plan, node: &Node) -> Value {
    let mut fields = Map::new();
    for f in &node.fields {
        let child = node
            .children
            .iter()
            .map(|&c| &plan.nodes[c])
            .find(|c| &c.field == f);
        let spec = match child {
            Some(child) => node_spec(plan, child),
            None if node.many2one.contains(f) => named(),
            None => empty(),
        };
        fields.insert(f.clone(), spec);
    }
    if !node.many && !fields.contains_key("display_name") {
        fields.insert("display_name".into(), empty());
    }
    let mut spec = Map::new();
    spec.insert("fields".into(), Value::Object(fields));
    Value::Object(spec)
}

/// The `specification` that reads the base fields and every node in one call.
///
/// `own` is the caller's own specification (a 17+ `web_search_read`), whose entries for fields
/// that are not expanded are kept as they are; without it (`search_read`/`read` callers) a
/// plain many2one is read with its `display_name`, to rebuild `[id, display_name]`.
pub fn specification(plan: &Plan, own: Option<&Map<String, Value>>) -> Map<String, Value> {
    let mut spec = Map::new();
    if let Some(fields) = &plan.base_fields {
        for f in fields {
            let value = match own.and_then(|o| o.get(f)) {
                Some(v) => v.clone(),
                None if own.is_none() && plan.base_many2one.contains(f) => named(),
                None => empty(),
            };
            spec.insert(f.clone(), value);
        }
    }
    for &root in &plan.roots {
        let node = &plan.nodes[root];
        spec.insert(node.field.clone(), node_spec(plan, node));
    }
    spec
}

/// A `{id, display_name}` (or `false`) as `read` gives a many2one: `[id, display_name]`.
fn classic_many2one(value: &Value) -> Value {
    match value {
        Value::Object(o) => match o.get("id").and_then(Value::as_i64) {
            Some(id) => {
                let name = o.get("display_name").cloned().unwrap_or(Value::Bool(false));
                Value::Array(vec![Value::from(id), name])
            }
            None => Value::Bool(false),
        },
        other => other.clone(),
    }
}

/// An x2many read with `fields` (a list of dicts) as `read` gives it: the ids.
fn classic_ids(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| match item {
                    Value::Object(o) => o.get("id").cloned().unwrap_or(Value::Null),
                    other => other.clone(),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

type Levels = HashMap<(usize, String), HashMap<i64, Map<String, Value>>>;

/// Files a `web_read` value of `node` (a dict, a list of dicts, or `false`) under its level
/// and model, its own relational fields converted to `read`'s form, and returns the value as
/// `read` shows it on the parent.
fn absorb(
    plan: &Plan,
    index: usize,
    value: &Value,
    levels: &mut Levels,
) -> Result<Value, ExpandError> {
    let node = &plan.nodes[index];
    let mut file = |item: &Value| -> Result<(), ExpandError> {
        let Value::Object(o) = item else {
            return Err(ExpandError::NotARecord("web_read"));
        };
        let Some(id) = o.get("id").and_then(Value::as_i64) else {
            return Err(ExpandError::NotARecord("web_read"));
        };
        let mut record = o.clone();
        for &child in &node.children {
            let field = &plan.nodes[child].field;
            if let Some(inner) = o.get(field) {
                let shown = absorb(plan, child, inner, levels)?;
                record.insert(field.clone(), shown);
            }
        }
        for f in &node.many2one {
            if node.children.iter().any(|&c| &plan.nodes[c].field == f) {
                continue;
            }
            if let Some(v) = record.get_mut(f) {
                *v = classic_many2one(v);
            }
        }
        levels
            .entry((node.level, node.model.clone()))
            .or_default()
            .entry(id)
            .or_default()
            .extend(record);
        Ok(())
    };
    if node.many {
        if let Value::Array(items) = value {
            for item in items {
                file(item)?;
            }
        }
        Ok(classic_ids(value))
    } else {
        if value.is_object() {
            file(value)?;
        }
        Ok(classic_many2one(value))
    }
}

/// Turns the records of a `web_search_read`/`web_read` made with [`specification`] into the
/// base records and level records the 1 + M reads would have given, so that
/// [`Expansion::finish`] answers exactly as on Odoo 16. `classic` converts the caller's plain
/// many2one fields to `[id, display_name]` (for `search_read`/`read` callers).
pub fn reshape(plan: &Plan, records: Value, classic: bool) -> Result<Expansion<'_>, ExpandError> {
    let Value::Array(items) = records else {
        return Err(ExpandError::NotAList("web_read"));
    };
    let mut levels = Levels::new();
    let mut base = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(mut record) = item else {
            return Err(ExpandError::NotARecord("web_read"));
        };
        for &root in &plan.roots {
            let field = plan.nodes[root].field.clone();
            if let Some(value) = record.get(&field) {
                let shown = absorb(plan, root, value, &mut levels)?;
                record.insert(field, shown);
            }
        }
        if classic {
            for f in &plan.base_many2one {
                if plan.root(f).is_some() {
                    continue;
                }
                if let Some(v) = record.get_mut(f) {
                    *v = classic_many2one(v);
                }
            }
        }
        base.push(record);
    }
    Ok(Expansion::from_parts(plan, base, levels))
}
