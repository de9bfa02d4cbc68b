//! Odoo domain evaluation (odoo-protocol.md §6): prefix notation with implicit
//! AND, `&` `|` `!`, term operators `= != <> < <= > >= =? in "not in" like
//! "not like" ilike "not ilike" =like =ilike child_of parent_of any "not any"`,
//! dotted paths through many2one / x2many fields, TRUE/FALSE leaves.
//!
//! Semantics follow Odoo 17: a path through a relation means "any co-record
//! matches"; negative operators (`!=`, `not in`, `not like`, `not ilike`) over a
//! path mean "no co-record matches the positive operator"; negative operators
//! include empty (NULL) values.

use std::cmp::Ordering;

use serde_json::Value;

use crate::data::{Dataset, Field, Model, Record};

/// A parsed domain.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Leaf(String, String, Value),
    True,
    False,
}

/// Parses a JSON domain into a tree (implicit AND between top-level expressions).
pub fn parse_domain(domain: &Value) -> Result<Node, String> {
    let items: &[Value] = match domain {
        Value::Array(a) => a,
        Value::Null | Value::Bool(false) => return Ok(Node::True),
        other => return Err(format!("Invalid domain {other}")),
    };
    let mut pos = 0;
    let mut acc: Option<Node> = None;
    while pos < items.len() {
        let n = parse_expr(items, &mut pos, domain)?;
        acc = Some(match acc {
            None => n,
            Some(a) => Node::And(Box::new(a), Box::new(n)),
        });
    }
    Ok(acc.unwrap_or(Node::True))
}

fn syntax_err(domain: &Value) -> String {
    format!("Domain {domain} is syntactically not correct.")
}

fn parse_expr(items: &[Value], pos: &mut usize, domain: &Value) -> Result<Node, String> {
    let Some(item) = items.get(*pos) else {
        return Err(syntax_err(domain));
    };
    *pos += 1;
    match item {
        Value::String(op) if op == "&" || op == "|" => {
            let a = parse_expr(items, pos, domain)?;
            let b = parse_expr(items, pos, domain)?;
            Ok(if op == "&" {
                Node::And(Box::new(a), Box::new(b))
            } else {
                Node::Or(Box::new(a), Box::new(b))
            })
        }
        Value::String(op) if op == "!" => Ok(Node::Not(Box::new(parse_expr(items, pos, domain)?))),
        Value::Array(t) if t.len() == 3 => {
            let op = t[1]
                .as_str()
                .ok_or_else(|| format!("Invalid leaf {item}"))?
                .to_lowercase();
            match &t[0] {
                Value::String(path) => {
                    let op = if op == "<>" { "!=".to_string() } else { op };
                    Ok(Node::Leaf(path.clone(), op, t[2].clone()))
                }
                // TRUE_LEAF (1, '=', 1) / FALSE_LEAF (0, '=', 1)
                Value::Number(n) if op == "=" => Ok(if Some(n.as_f64()) == Some(t[2].as_f64()) {
                    Node::True
                } else {
                    Node::False
                }),
                _ => Err(format!("Invalid leaf {item}")),
            }
        }
        Value::Bool(true) => Ok(Node::True),
        Value::Bool(false) => Ok(Node::False),
        _ => Err(syntax_err(domain)),
    }
}

/// Evaluates `domain` against `record` of `model` (dotted paths are resolved
/// through `dataset`). `Err` carries an Odoo-like ValueError message.
pub fn eval_domain(
    domain: &Value,
    record: &Record,
    model: &Model,
    dataset: &Dataset,
) -> Result<bool, String> {
    let node = parse_domain(domain)?;
    eval_node(&node, record, model, dataset)
}

/// Evaluates an already parsed domain.
pub fn eval_node(
    node: &Node,
    record: &Record,
    model: &Model,
    ds: &Dataset,
) -> Result<bool, String> {
    Ok(match node {
        Node::True => true,
        Node::False => false,
        Node::And(a, b) => eval_node(a, record, model, ds)? && eval_node(b, record, model, ds)?,
        Node::Or(a, b) => eval_node(a, record, model, ds)? || eval_node(b, record, model, ds)?,
        Node::Not(a) => !eval_node(a, record, model, ds)?,
        Node::Leaf(path, op, value) => eval_leaf(path, op, value, record, model, ds)?,
    })
}

/// True if any leaf of the domain uses `field` as (the first segment of) its path.
pub fn mentions_field(domain: &Value, field: &str) -> bool {
    match domain {
        Value::Array(items) => items.iter().any(|it| match it {
            Value::Array(t) if t.len() == 3 => t[0].as_str() == Some(field),
            _ => false,
        }),
        _ => false,
    }
}

/// Replaces the rule placeholders `"uid"` / `"user.id"` with `uid` and
/// `"company_ids"` with `company_ids` in the value position of every leaf.
pub fn substitute_uid(domain: &Value, uid: i64, company_ids: &[i64]) -> Value {
    fn subst(v: &Value, uid: i64, cids: &[i64]) -> Value {
        match v {
            Value::String(s) if s == "uid" || s == "user.id" => Value::from(uid),
            Value::String(s) if s == "company_ids" => Value::from(cids.to_vec()),
            Value::Array(a) => Value::Array(a.iter().map(|x| subst(x, uid, cids)).collect()),
            other => other.clone(),
        }
    }
    match domain {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|it| match it {
                    Value::Array(t) if t.len() == 3 => {
                        let value = if matches!(t[1].as_str(), Some("any") | Some("not any")) {
                            substitute_uid(&t[2], uid, company_ids)
                        } else {
                            subst(&t[2], uid, company_ids)
                        };
                        Value::Array(vec![t[0].clone(), t[1].clone(), value])
                    }
                    other => other.clone(),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn is_negative(op: &str) -> bool {
    matches!(op, "!=" | "not in" | "not like" | "not ilike" | "not any")
}

fn positive(op: &str) -> &str {
    match op {
        "!=" => "=",
        "not in" => "in",
        "not like" => "like",
        "not ilike" => "ilike",
        "not any" => "any",
        o => o,
    }
}

const OPERATORS: &[&str] = &[
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=?",
    "in",
    "not in",
    "like",
    "not like",
    "ilike",
    "not ilike",
    "=like",
    "=ilike",
    "child_of",
    "parent_of",
    "any",
    "not any",
];

fn leaf_repr(path: &str, op: &str, value: &Value) -> String {
    format!("('{path}', '{op}', {value})")
}

/// Ids a relational field of `rec` points to (many2one: 0 or 1 id).
pub fn relational_ids(
    ds: &Dataset,
    model: &Model,
    rec: &Record,
    fname: &str,
    field: &Field,
) -> Vec<i64> {
    match field.ftype.as_str() {
        "many2one" => rec.get(fname).and_then(value_id).into_iter().collect(),
        "many2many" => rec.get(fname).map(ids_of).unwrap_or_default(),
        "one2many" => {
            let (Some(rel), Some(inv)) = (&field.relation, &field.inverse) else {
                return Vec::new();
            };
            let id = rec.get("id").and_then(Value::as_i64).unwrap_or(0);
            let _ = model;
            ds.models
                .get(rel)
                .map(|m| {
                    m.records
                        .values()
                        .filter(|r| r.get(inv).and_then(value_id) == Some(id))
                        .filter_map(|r| r.get("id").and_then(Value::as_i64))
                        .collect()
                })
                .unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// An id from `5`, `[5, "name"]` or `{"id": 5}`; `None` for false/null.
pub fn value_id(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::Array(a) => a.first().and_then(Value::as_i64),
        Value::Object(o) => o.get("id").and_then(Value::as_i64),
        _ => None,
    }
}

/// Ids from an id list (ignores non-ids).
pub fn ids_of(v: &Value) -> Vec<i64> {
    match v {
        Value::Array(a) => a.iter().filter_map(value_id).collect(),
        other => value_id(other).into_iter().collect(),
    }
}

fn eval_leaf(
    path: &str,
    op: &str,
    value: &Value,
    rec: &Record,
    model: &Model,
    ds: &Dataset,
) -> Result<bool, String> {
    if !OPERATORS.contains(&op) {
        return Err(format!("Invalid leaf {}", leaf_repr(path, op, value)));
    }
    let (first, rest) = match path.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (path, None),
    };
    let field = model.fields.get(first).ok_or_else(|| {
        format!(
            "Invalid field {}.{} in leaf {}",
            model.name,
            first,
            leaf_repr(path, op, value)
        )
    })?;
    if let Some(rest) = rest {
        if !field.is_relational() {
            return Err(format!(
                "Invalid field {}.{} in leaf {}",
                model.name,
                path,
                leaf_repr(path, op, value)
            ));
        }
        let comodel = field
            .relation
            .as_deref()
            .and_then(|r| ds.models.get(r))
            .ok_or_else(|| format!("Unknown comodel for {}.{}", model.name, first))?;
        let ids = relational_ids(ds, model, rec, first, field);
        let neg = is_negative(op);
        let pop = positive(op);
        let mut any = false;
        for id in ids {
            if let Some(co) = comodel.records.get(&id) {
                if eval_leaf(rest, pop, value, co, comodel, ds)? {
                    any = true;
                    break;
                }
            }
        }
        return Ok(if neg { !any } else { any });
    }
    if field.is_relational() {
        return eval_relational(first, field, op, value, rec, model, ds);
    }
    let stored = field_scalar(ds, model, rec, first, field);
    eval_scalar(&field.ftype, stored.as_ref(), op, value)
}

/// Scalar value of a non-relational field (display_name and related computed);
/// `None` means empty/NULL (booleans are never empty).
fn field_scalar(
    ds: &Dataset,
    model: &Model,
    rec: &Record,
    fname: &str,
    field: &Field,
) -> Option<Value> {
    let v = if fname == "display_name" {
        Some(Value::String(crate::orm::display_name(ds, model, rec)))
    } else if let Some(rel) = &field.related {
        crate::orm::related_value(ds, model, rec, rel)
    } else {
        rec.get(fname).cloned()
    };
    normalize_scalar(&field.ftype, v)
}

fn normalize_scalar(ftype: &str, v: Option<Value>) -> Option<Value> {
    if ftype == "boolean" {
        return Some(Value::Bool(v.map(|x| truthy(&x)).unwrap_or(false)));
    }
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => None,
        Some(Value::String(s))
            if s.is_empty() && matches!(ftype, "char" | "text" | "html" | "selection") =>
        {
            None
        }
        other => other,
    }
}

/// Python-ish truthiness.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().map(|f| f != 0.0).unwrap_or(true),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn is_falsy_value(v: &Value) -> bool {
    matches!(v, Value::Null | Value::Bool(false))
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    }
}

fn eval_relational(
    fname: &str,
    field: &Field,
    op: &str,
    value: &Value,
    rec: &Record,
    model: &Model,
    ds: &Dataset,
) -> Result<bool, String> {
    let ids = relational_ids(ds, model, rec, fname, field);
    let comodel = field.relation.as_deref().and_then(|r| ds.models.get(r));
    if op == "any" || op == "not any" {
        let Some(comodel) = comodel else {
            return Err(format!("Unknown comodel for {}.{}", model.name, fname));
        };
        let node = parse_domain(value)?;
        let mut any = false;
        for id in &ids {
            if let Some(co) = comodel.records.get(id) {
                if eval_node(&node, co, comodel, ds)? {
                    any = true;
                    break;
                }
            }
        }
        return Ok(if op == "any" { any } else { !any });
    }
    let neg = is_negative(op);
    let pop = positive(op);
    // Text comparison against co-records' display names.
    let texty = match value {
        Value::String(_) => true,
        Value::Array(a) => !a.is_empty() && a.iter().all(|x| x.is_string()),
        _ => false,
    } || matches!(pop, "like" | "ilike" | "=like" | "=ilike");
    if texty {
        if ids.is_empty() {
            return Ok(neg);
        }
        let Some(comodel) = comodel else {
            return Ok(neg);
        };
        let mut any = false;
        for id in &ids {
            if let Some(co) = comodel.records.get(id) {
                let dn = Value::String(crate::orm::display_name(ds, comodel, co));
                if eval_scalar("char", Some(&dn), pop, value)? {
                    any = true;
                    break;
                }
            }
        }
        return Ok(if neg { !any } else { any });
    }
    match pop {
        "=" | "in" | "child_of" | "parent_of" | "=?" => {
            if pop == "=?" && is_falsy_value(value) {
                return Ok(true);
            }
            let list = as_list(value);
            let want_empty =
                list.iter().any(is_falsy_value) || (pop == "=" && is_falsy_value(value));
            let wanted: Vec<i64> = list.iter().filter_map(value_id).collect();
            let hit = (want_empty && ids.is_empty()) || ids.iter().any(|i| wanted.contains(i));
            Ok(if neg { !hit } else { hit })
        }
        "<" | "<=" | ">" | ">=" => {
            let Some(v) = value.as_f64() else {
                return Ok(false);
            };
            Ok(ids.iter().any(|&i| cmp_ok(op, (i as f64).partial_cmp(&v))))
        }
        _ => Err(format!("Invalid leaf {}", leaf_repr(fname, op, value))),
    }
}

fn cmp_ok(op: &str, ord: Option<Ordering>) -> bool {
    matches!(
        (op, ord),
        ("<", Some(Ordering::Less))
            | ("<=", Some(Ordering::Less | Ordering::Equal))
            | (">", Some(Ordering::Greater))
            | (">=", Some(Ordering::Greater | Ordering::Equal))
    )
}

/// Compares two non-empty scalars: numbers numerically, strings lexically,
/// booleans false < true; mixed number/string tries to parse the string.
pub fn compare_scalars(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Number(x), Value::String(y)) => {
            x.as_f64()?.partial_cmp(&y.trim().parse::<f64>().ok()?)
        }
        (Value::String(x), Value::Number(y)) => {
            x.trim().parse::<f64>().ok()?.partial_cmp(&y.as_f64()?)
        }
        (Value::Bool(x), Value::Number(y)) => (*x as i64 as f64).partial_cmp(&y.as_f64()?),
        (Value::Number(x), Value::Bool(y)) => x.as_f64()?.partial_cmp(&(*y as i64 as f64)),
        _ => None,
    }
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    compare_scalars(a, b) == Some(Ordering::Equal)
}

fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn eval_scalar(
    ftype: &str,
    stored: Option<&Value>,
    op: &str,
    value: &Value,
) -> Result<bool, String> {
    let neg = is_negative(op);
    let pop = positive(op);
    let hit = match pop {
        "=" => {
            if ftype == "boolean" {
                let want = truthy(value);
                stored.map(truthy) == Some(want)
            } else if is_falsy_value(value) {
                stored.is_none()
            } else {
                stored.map(|s| scalar_eq(s, value)).unwrap_or(false)
            }
        }
        "=?" => {
            if is_falsy_value(value) {
                return Ok(true);
            }
            return eval_scalar(ftype, stored, "=", value);
        }
        "in" | "child_of" | "parent_of" => {
            let list = as_list(value);
            match stored {
                None => list.iter().any(is_falsy_value),
                Some(s) => list.iter().any(|x| {
                    if ftype == "boolean" {
                        !x.is_null() && truthy(x) == truthy(s)
                    } else {
                        scalar_eq(s, x)
                    }
                }),
            }
        }
        "like" | "ilike" | "=like" | "=ilike" => {
            if is_falsy_value(value) {
                // ('x', 'ilike', False) matches empty values in Odoo
                stored.is_none()
            } else {
                match stored {
                    None => false,
                    Some(s) => {
                        let text = to_text(s);
                        let pat = to_text(value);
                        let pattern = if pop == "like" || pop == "ilike" {
                            format!("%{pat}%")
                        } else {
                            pat
                        };
                        let ci = pop == "ilike" || pop == "=ilike";
                        if ci {
                            sql_like(&text.to_lowercase(), &pattern.to_lowercase())
                        } else {
                            sql_like(&text, &pattern)
                        }
                    }
                }
            }
        }
        "<" | "<=" | ">" | ">=" => match stored {
            None => return Ok(false),
            Some(s) => {
                if is_falsy_value(value) {
                    return Ok(false);
                }
                return Ok(cmp_ok(op, compare_scalars(s, value)));
            }
        },
        "any" => {
            return Err(format!(
                "Operator '{op}' is only valid on relational fields"
            ))
        }
        _ => return Err(format!("Invalid operator {op:?}")),
    };
    Ok(if neg { !hit } else { hit })
}

/// SQL LIKE: `%` any run, `_` one char, `\` escapes.
pub fn sql_like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let mut p: Vec<(char, bool)> = Vec::new(); // (char, is_literal)
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(n) = it.next() {
                p.push((n, true));
            }
        } else {
            p.push((c, false));
        }
    }
    // prev[j]: text[..i] matches pattern[..j]
    let n = p.len();
    let mut prev = vec![false; n + 1];
    prev[0] = true;
    for j in 1..=n {
        prev[j] = prev[j - 1] && p[j - 1] == ('%', false);
    }
    for &tc in &t {
        let mut cur = vec![false; n + 1];
        for j in 1..=n {
            cur[j] = match p[j - 1] {
                ('%', false) => cur[j - 1] || prev[j],
                ('_', false) => prev[j - 1],
                (c, _) => prev[j - 1] && c == tc,
            };
        }
        prev = cur;
    }
    let cur = prev;
    cur[p.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn like_patterns() {
        assert!(sql_like("hello world", "%lo w%"));
        assert!(sql_like("hello", "h_llo"));
        assert!(!sql_like("hello", "h_lo"));
        assert!(sql_like("hello", "%"));
        assert!(sql_like("", "%"));
        assert!(!sql_like("", "_"));
        assert!(sql_like("a%b", "a\\%b"));
        assert!(!sql_like("axb", "a\\%b"));
        assert!(sql_like("abcabc", "%abc"));
        assert!(sql_like("abc", "a%c"));
        assert!(!sql_like("abcd", "a%c"));
    }

    #[test]
    fn parse_implicit_and() {
        let n = parse_domain(&json!([["a", "=", 1], ["b", "=", 2]])).unwrap();
        assert!(matches!(n, Node::And(_, _)));
        assert!(parse_domain(&json!(["|", ["a", "=", 1]])).is_err());
        assert_eq!(parse_domain(&json!([])).unwrap(), Node::True);
        assert_eq!(parse_domain(&json!([[0, "=", 1]])).unwrap(), Node::False);
    }
}
