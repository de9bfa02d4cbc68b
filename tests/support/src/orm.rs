//! ORM methods over the [`Dataset`], with ACLs and record rules, producing the
//! same values and errors as Odoo (odoo-protocol.md §1.2, §3.2, §5).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::data::{now_utc, Compute, Dataset, Field, Model, OdooVersion, Op, Record, User};
use crate::domain::{
    self, compare_scalars, ids_of, parse_domain, relational_ids, truthy, value_id, Node,
};

/// An Odoo exception as it travels in the JSON-RPC `error` member.
#[derive(Clone, Debug, PartialEq)]
pub struct OdooError {
    /// Python qualified class name, e.g. `odoo.exceptions.AccessError`.
    pub name: String,
    pub message: String,
    /// JSON-RPC `error.code`: 200, or 100 (session expired), or 404.
    pub code: i64,
    /// JSON-RPC `error.message`: "Odoo Server Error", "Odoo Session Expired", "404: Not Found".
    pub http_message: String,
}

impl OdooError {
    pub fn new(name: &str, message: impl Into<String>) -> OdooError {
        OdooError {
            name: name.to_string(),
            message: message.into(),
            code: 200,
            http_message: "Odoo Server Error".to_string(),
        }
    }
    pub fn access_error(m: impl Into<String>) -> OdooError {
        OdooError::new("odoo.exceptions.AccessError", m)
    }
    pub fn access_denied() -> OdooError {
        OdooError::new("odoo.exceptions.AccessDenied", "Access Denied")
    }
    pub fn missing(m: impl Into<String>) -> OdooError {
        OdooError::new("odoo.exceptions.MissingError", m)
    }
    pub fn user_error(m: impl Into<String>) -> OdooError {
        OdooError::new("odoo.exceptions.UserError", m)
    }
    pub fn validation(m: impl Into<String>) -> OdooError {
        OdooError::new("odoo.exceptions.ValidationError", m)
    }
    pub fn value_error(m: impl Into<String>) -> OdooError {
        OdooError::new("builtins.ValueError", m)
    }
    pub fn attribute_error(m: impl Into<String>) -> OdooError {
        OdooError::new("builtins.AttributeError", m)
    }
    pub fn type_error(m: impl Into<String>) -> OdooError {
        OdooError::new("builtins.TypeError", m)
    }
    pub fn key_error(m: impl Into<String>) -> OdooError {
        OdooError::new("builtins.KeyError", m)
    }
    pub fn session_expired() -> OdooError {
        OdooError {
            name: "odoo.http.SessionExpiredException".to_string(),
            message: "Session expired".to_string(),
            code: 100,
            http_message: "Odoo Session Expired".to_string(),
        }
    }
    pub fn not_found() -> OdooError {
        OdooError {
            name: "werkzeug.exceptions.NotFound".to_string(),
            message: "404 Not Found: The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.".to_string(),
            code: 404,
            http_message: "404: Not Found".to_string(),
        }
    }
    /// `AccessError` etc.
    pub fn short_name(&self) -> &str {
        self.name.rsplit('.').next().unwrap_or(&self.name)
    }
    /// A plausible Python traceback (Odoo always sends `data.debug`).
    pub fn debug(&self) -> String {
        format!(
            "Traceback (most recent call last):\n  File \"/opt/odoo/odoo/http.py\", line 1764, in _serve_db\n    return service_model.retrying(self._serve_ir_http, self.env)\n  File \"/opt/odoo/odoo/service/model.py\", line 133, in retrying\n    result = func()\n  File \"/opt/odoo/odoo/api.py\", line 466, in call_kw\n    result = _call_kw_model(method, model, args, kwargs)\n{}: {}\n",
            self.name, self.message
        )
    }
    /// The JSON-RPC `error` member (§1.2).
    pub fn to_json(&self) -> Value {
        json!({
            "code": self.code,
            "message": self.http_message,
            "data": {
                "name": self.name,
                "debug": self.debug(),
                "message": self.message,
                "arguments": [self.message],
                "context": {},
            }
        })
    }
}

type R<T> = Result<T, OdooError>;

fn superuser() -> User {
    let mut u = User::new(1, "__system__", "", "OdooBot");
    u.is_admin = true;
    u
}

/// The user for `uid` (uid 1 = superuser). Unknown uids → AccessDenied.
pub fn user_of(ds: &Dataset, uid: i64) -> R<User> {
    if uid == 1 {
        return Ok(superuser());
    }
    ds.user(uid).cloned().ok_or_else(OdooError::access_denied)
}

fn get_model<'a>(ds: &'a Dataset, model: &str) -> R<&'a Model> {
    ds.models
        .get(model)
        .ok_or_else(|| OdooError::key_error(format!("'{model}'")))
}

fn op_word(op: Op) -> &'static str {
    match op {
        Op::Read => "read",
        Op::Write => "write",
        Op::Create => "create",
        Op::Unlink => "unlink",
    }
}

/// ACL check (`check_access_rights`).
pub fn check_acl(ds: &Dataset, user: &User, model: &Model, op: Op) -> R<()> {
    let _ = ds;
    if model.access.perms_for(user).allows(op) {
        return Ok(());
    }
    let verb = match op {
        Op::Read => "access",
        Op::Write => "modify",
        Op::Create => "create",
        Op::Unlink => "delete",
    };
    let groups: Vec<String> = model
        .access
        .groups
        .iter()
        .filter(|(_, p)| p.allows(op))
        .map(|(g, _)| format!("\t- {g}"))
        .collect();
    let allowed = if groups.is_empty() {
        "No group currently allows this operation.".to_string()
    } else {
        format!(
            "This operation is allowed for the following groups:\n{}",
            groups.join("\n")
        )
    };
    Err(OdooError::access_error(format!(
        "You are not allowed to {verb} '{}' ({}) records.\n\n{allowed}\n\nContact your administrator to request access if necessary.",
        model.description, model.name
    )))
}

/// Record-rule check for one record; returns the names of the failing rules (empty = allowed).
fn failing_rules(ds: &Dataset, user: &User, model: &Model, op: Op, rec: &Record) -> R<Vec<String>> {
    if user.is_admin {
        return Ok(Vec::new());
    }
    let mut failed = Vec::new();
    let mut group_rules_any = false;
    let mut group_rules_ok = false;
    let mut group_names = Vec::new();
    for rule in model.rules.iter().filter(|r| r.perms.allows(op)) {
        let dom = domain::substitute_uid(&rule.domain, user.uid, &user.company_ids);
        if rule.is_global() {
            if !domain::eval_domain(&dom, rec, model, ds).map_err(OdooError::value_error)? {
                failed.push(rule.name.clone());
            }
        } else if rule.applies_to(user) {
            group_rules_any = true;
            group_names.push(rule.name.clone());
            if domain::eval_domain(&dom, rec, model, ds).map_err(OdooError::value_error)? {
                group_rules_ok = true;
            }
        }
    }
    if group_rules_any && !group_rules_ok {
        failed.extend(group_names);
    }
    Ok(failed)
}

fn rules_error(
    ds: &Dataset,
    user: &User,
    model: &Model,
    op: Op,
    bad: &[(i64, Vec<String>)],
) -> OdooError {
    let mut rules: Vec<String> = bad.iter().flat_map(|(_, r)| r.clone()).collect();
    rules.sort();
    rules.dedup();
    let rules_txt: String = rules.iter().map(|r| format!("- {r}\n")).collect();
    if ds.version == OdooVersion::V16 {
        let recs: Vec<String> = bad
            .iter()
            .take(6)
            .map(|(id, _)| {
                format!(
                    "{} (id={id})",
                    model
                        .records
                        .get(id)
                        .map(|r| display_name(ds, model, r))
                        .unwrap_or_default()
                )
            })
            .collect();
        return OdooError::access_error(format!(
            "Due to security restrictions, you are not allowed to access '{}' ({}) records.\n\nRecords: {}, User: {} (id={})\n\nThis restriction is for the following rules:\n{rules_txt}\nContact your administrator to request access if necessary.",
            model.description,
            model.name,
            recs.join(", "),
            user.name,
            user.uid
        ));
    }
    let recs: String = bad
        .iter()
        .take(6)
        .map(|(id, _)| {
            let dn = model
                .records
                .get(id)
                .map(|r| display_name(ds, model, r))
                .unwrap_or_default();
            format!("- {}, {} ({}: {})\n", model.description, dn, model.name, id)
        })
        .collect();
    OdooError::access_error(format!(
        "Uh-oh! Looks like you have stumbled upon some top-secret records.\n\nSorry, {} (id={}) doesn't have '{}' access to:\n{recs}\nBlame the following rules:\n{rules_txt}\nIf you really, really need access, perhaps you can win over your friendly administrator with a batch of freshly baked cookies.",
        user.name,
        user.uid,
        op_word(op)
    ))
}

/// MissingError + record-rule check on `ids` (`check_access_rule` + existence).
fn check_records(ds: &Dataset, user: &User, model: &Model, op: Op, ids: &[i64]) -> R<()> {
    let missing: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|i| !model.records.contains_key(i))
        .collect();
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|i| i.to_string()).collect();
        return Err(OdooError::missing(format!(
            "Record does not exist or has been deleted.\n(Record: {}({},), User: {})",
            model.name,
            list.join(", "),
            user.uid
        )));
    }
    let mut bad = Vec::new();
    for id in ids {
        if let Some(rec) = model.records.get(id) {
            let f = failing_rules(ds, user, model, op, rec)?;
            if !f.is_empty() {
                bad.push((*id, f));
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(rules_error(ds, user, model, op, &bad))
    }
}

/// `display_name` of a record (follows a related `rec_name`).
pub fn display_name(ds: &Dataset, model: &Model, rec: &Record) -> String {
    if let Some(f) = model.fields.get(&model.rec_name) {
        if let Some(rel) = &f.related {
            if let Some(Value::String(s)) = related_value(ds, model, rec, rel) {
                return s;
            }
        }
    }
    model.display_name_of(rec)
}

/// Resolves a related path (`partner_id.country_id`) to the stored-form value.
pub fn related_value(ds: &Dataset, model: &Model, rec: &Record, path: &str) -> Option<Value> {
    let (first, rest) = match path.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (path, None),
    };
    let field = model.fields.get(first)?;
    match rest {
        None => {
            if first == "display_name" {
                Some(Value::String(display_name(ds, model, rec)))
            } else if let Some(rel) = &field.related {
                related_value(ds, model, rec, rel)
            } else if field.ftype == "one2many" {
                Some(json!(relational_ids(ds, model, rec, first, field)))
            } else {
                rec.get(first).cloned()
            }
        }
        Some(rest) => {
            let comodel = ds.models.get(field.relation.as_deref()?)?;
            let id = *relational_ids(ds, model, rec, first, field).first()?;
            let co = comodel.records.get(&id)?;
            related_value(ds, comodel, co, rest)
        }
    }
}

/// Stored-form value of any field (related and one2many resolved).
fn raw_value(ds: &Dataset, model: &Model, rec: &Record, fname: &str, field: &Field) -> Value {
    if fname == "display_name" {
        return Value::String(display_name(ds, model, rec));
    }
    if let Some(rel) = &field.related {
        return related_value(ds, model, rec, rel).unwrap_or(Value::Null);
    }
    if field.is_x2many() {
        return json!(relational_ids(ds, model, rec, fname, field));
    }
    rec.get(fname).cloned().unwrap_or(Value::Null)
}

/// Odoo's `tools.human_size`.
pub fn human_size(n: usize) -> Value {
    if n == 0 {
        return Value::Bool(false);
    }
    let units = ["bytes", "Kb", "Mb", "Gb", "Tb"];
    let mut s = n as f64;
    let mut i = 0;
    while s >= 1024.0 && i < units.len() - 1 {
        s /= 1024.0;
        i += 1;
    }
    Value::String(format!("{s:.2} {}", units[i]))
}

fn ctx_flag(ctx: &Map<String, Value>, key: &str) -> bool {
    ctx.get(key).map(truthy).unwrap_or(false)
}

/// A field value as `read()` returns it ("classic" load).
fn classic_value(
    ds: &Dataset,
    model: &Model,
    rec: &Record,
    fname: &str,
    field: &Field,
    ctx: &Map<String, Value>,
    classic_m2o: bool,
) -> Value {
    let raw = raw_value(ds, model, rec, fname, field);
    match field.ftype.as_str() {
        "many2one" => match value_id(&raw) {
            None => Value::Bool(false),
            Some(id) if classic_m2o => {
                let dn = field
                    .relation
                    .as_deref()
                    .and_then(|r| ds.models.get(r))
                    .and_then(|m| m.records.get(&id).map(|r| display_name(ds, m, r)));
                match dn {
                    Some(dn) => json!([id, dn]),
                    None => json!([
                        id,
                        format!("{},{}", field.relation.as_deref().unwrap_or(""), id)
                    ]),
                }
            }
            Some(id) => json!(id),
        },
        "one2many" | "many2many" => json!(ids_of(&raw)),
        "binary" => match &raw {
            Value::String(s) if !s.is_empty() => {
                if ctx_flag(ctx, "bin_size") || ctx_flag(ctx, &format!("bin_size_{fname}")) {
                    human_size(decoded_len(s))
                } else {
                    raw.clone()
                }
            }
            _ => Value::Bool(false),
        },
        "integer" => {
            if raw.is_number() {
                raw
            } else {
                json!(0)
            }
        }
        "float" | "monetary" => match raw.as_f64() {
            Some(f) => json!(f),
            None => json!(0.0),
        },
        "boolean" => Value::Bool(truthy(&raw)),
        _ => match raw {
            Value::Null => Value::Bool(false),
            other => other,
        },
    }
}

fn decoded_len(b64: &str) -> usize {
    let s = b64.trim_end_matches('=');
    s.len() * 3 / 4
}

// ---------------------------------------------------------------- domains & order

fn validate_node(node: &Node, model: &Model, ds: &Dataset) -> R<()> {
    match node {
        Node::And(a, b) | Node::Or(a, b) => {
            validate_node(a, model, ds)?;
            validate_node(b, model, ds)
        }
        Node::Not(a) => validate_node(a, model, ds),
        Node::Leaf(path, op, value) => {
            let mut m = model;
            let segs: Vec<&str> = path.split('.').collect();
            for (i, seg) in segs.iter().enumerate() {
                let Some(f) = m.fields.get(*seg) else {
                    return Err(OdooError::value_error(format!(
                        "Invalid field {}.{} in leaf ('{}', '{}', {})",
                        m.name, seg, path, op, value
                    )));
                };
                if i + 1 < segs.len() || op == "any" || op == "not any" {
                    match f.relation.as_deref().and_then(|r| ds.models.get(r)) {
                        Some(co) if f.is_relational() => m = co,
                        _ => {
                            return Err(OdooError::value_error(format!(
                                "Invalid field {}.{} in leaf ('{}', '{}', {})",
                                m.name, path, path, op, value
                            )))
                        }
                    }
                }
            }
            Ok(())
        }
        Node::True | Node::False => Ok(()),
    }
}

#[derive(Clone)]
struct OrderTerm {
    field: String,
    desc: bool,
    nulls_first: bool,
}

fn parse_order(model: &Model, order: &str) -> R<Vec<OrderTerm>> {
    let bad = || {
        OdooError::value_error(format!(
            "Invalid \"order\" specified ({order}). A valid \"order\" specification is a comma-separated list of valid field names (optionally followed by asc/desc for the direction)"
        ))
    };
    let mut out = Vec::new();
    for part in order.split(',') {
        let words: Vec<String> = part.split_whitespace().map(|w| w.to_string()).collect();
        if words.is_empty() {
            continue;
        }
        let fname = words[0].trim_matches('"').to_string();
        let f = model.fields.get(&fname).ok_or_else(bad)?;
        if f.is_x2many() {
            return Err(bad());
        }
        let desc = match words.get(1).map(|w| w.to_lowercase()) {
            None => false,
            Some(w) if w == "asc" => false,
            Some(w) if w == "desc" => true,
            Some(_) => return Err(bad()),
        };
        let nulls_first = match (
            words.get(2).map(|w| w.to_lowercase()),
            words.get(3).map(|w| w.to_lowercase()),
        ) {
            (Some(a), Some(b)) if a == "nulls" && b == "first" => true,
            (Some(a), Some(b)) if a == "nulls" && b == "last" => false,
            (None, None) => desc,
            _ => return Err(bad()),
        };
        out.push(OrderTerm {
            field: fname,
            desc,
            nulls_first,
        });
    }
    Ok(out)
}

fn sort_key(ds: &Dataset, model: &Model, rec: &Record, fname: &str) -> Option<Value> {
    let field = model.fields.get(fname)?;
    let raw = raw_value(ds, model, rec, fname, field);
    if field.ftype == "many2one" {
        let id = value_id(&raw)?;
        let co = ds.models.get(field.relation.as_deref()?)?;
        return Some(Value::String(
            co.records
                .get(&id)
                .map(|r| display_name(ds, co, r))
                .unwrap_or_default(),
        ));
    }
    if field.ftype == "boolean" {
        return Some(Value::Bool(truthy(&raw)));
    }
    match raw {
        Value::Null | Value::Bool(false) => None,
        other => Some(other),
    }
}

fn sort_ids(ds: &Dataset, model: &Model, ids: &mut [i64], order: &str) -> R<()> {
    let mut terms = parse_order(model, order)?;
    if !terms.iter().any(|t| t.field == "id") {
        terms.push(OrderTerm {
            field: "id".to_string(),
            desc: false,
            nulls_first: false,
        });
    }
    let empty = Record::new();
    let keys: BTreeMap<i64, Vec<Option<Value>>> = ids
        .iter()
        .map(|id| {
            let rec = model.records.get(id).unwrap_or(&empty);
            (
                *id,
                terms
                    .iter()
                    .map(|t| sort_key(ds, model, rec, &t.field))
                    .collect(),
            )
        })
        .collect();
    ids.sort_by(|a, b| {
        let (ka, kb) = (&keys[a], &keys[b]);
        for (i, t) in terms.iter().enumerate() {
            let ord = match (&ka[i], &kb[i]) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => {
                    if t.nulls_first {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                }
                (Some(_), None) => {
                    if t.nulls_first {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                }
                (Some(x), Some(y)) => {
                    let o = compare_scalars(x, y).unwrap_or(Ordering::Equal);
                    if t.desc {
                        o.reverse()
                    } else {
                        o
                    }
                }
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
    Ok(())
}

#[allow(clippy::too_many_arguments)]
/// `search()` as `user`: ACL, domain, record rules, `active_test`, order, offset, limit.
pub fn search(
    ds: &Dataset,
    user: &User,
    model: &Model,
    domain: &Value,
    ctx: &Map<String, Value>,
    offset: usize,
    limit: Option<usize>,
    order: Option<&str>,
) -> R<Vec<i64>> {
    check_acl(ds, user, model, Op::Read)?;
    let node = parse_domain(domain).map_err(OdooError::value_error)?;
    validate_node(&node, model, ds)?;
    let active_filter = model
        .fields
        .get("active")
        .map(|f| f.ftype == "boolean")
        .unwrap_or(false)
        && ctx.get("active_test").map(truthy).unwrap_or(true)
        && !domain::mentions_field(domain, "active");
    let mut ids = Vec::new();
    for (id, rec) in &model.records {
        if active_filter
            && !rec
                .get("active")
                .map(|v| v.is_null() || truthy(v))
                .unwrap_or(true)
        {
            continue;
        }
        if !domain::eval_node(&node, rec, model, ds).map_err(OdooError::value_error)? {
            continue;
        }
        if !failing_rules(ds, user, model, Op::Read, rec)?.is_empty() {
            continue;
        }
        ids.push(*id);
    }
    let order = match order {
        Some(o) if !o.trim().is_empty() => o.to_string(),
        _ => model.order.clone(),
    };
    sort_ids(ds, model, &mut ids, &order)?;
    let ids: Vec<i64> = ids.into_iter().skip(offset).collect();
    Ok(match limit {
        Some(l) if l > 0 => ids.into_iter().take(l).collect(),
        _ => ids,
    })
}

fn check_field_names(model: &Model, names: &[String]) -> R<()> {
    for n in names {
        if !model.fields.contains_key(n) {
            return Err(OdooError::value_error(format!(
                "Invalid field '{n}' on model '{}'",
                model.name
            )));
        }
    }
    Ok(())
}

/// `read(ids, fields)` as `user` (classic values: many2one = `[id, name]`).
pub fn read(
    ds: &Dataset,
    user: &User,
    model: &Model,
    ids: &[i64],
    fields: &[String],
    ctx: &Map<String, Value>,
    classic_m2o: bool,
) -> R<Vec<Value>> {
    check_acl(ds, user, model, Op::Read)?;
    check_field_names(model, fields)?;
    if let Some(f) = fields
        .iter()
        .find(|f| model.fields.get(*f).is_some_and(|d| !d.readable_by(user)))
    {
        return Err(OdooError::access_error(format!(
            "You do not have enough rights to access the field \"{f}\" on {} ({}). Please contact your system administrator.",
            model.description, model.name
        )));
    }
    check_records(ds, user, model, Op::Read, ids)?;
    let names: Vec<String> = if fields.is_empty() {
        model
            .fields
            .iter()
            .filter(|(_, d)| d.readable_by(user))
            .map(|(n, _)| n.clone())
            .collect()
    } else {
        fields.to_vec()
    };
    let mut out = Vec::new();
    for id in ids {
        let Some(rec) = model.records.get(id) else {
            continue;
        };
        let mut row = Map::new();
        row.insert("id".to_string(), json!(id));
        for n in &names {
            if let Some(f) = model.fields.get(n) {
                row.insert(
                    n.clone(),
                    classic_value(ds, model, rec, n, f, ctx, classic_m2o),
                );
            }
        }
        out.push(Value::Object(row));
    }
    Ok(out)
}

/// `web_read(specification)` (17+).
pub fn web_read(
    ds: &Dataset,
    user: &User,
    model: &Model,
    ids: &[i64],
    spec: &Map<String, Value>,
    ctx: &Map<String, Value>,
) -> R<Vec<Value>> {
    check_acl(ds, user, model, Op::Read)?;
    let names: Vec<String> = spec.keys().cloned().collect();
    check_field_names(model, &names)?;
    check_records(ds, user, model, Op::Read, ids)?;
    let mut out = Vec::new();
    for id in ids {
        let Some(rec) = model.records.get(id) else {
            continue;
        };
        let mut row = Map::new();
        row.insert("id".to_string(), json!(id));
        for (fname, fspec) in spec {
            let Some(field) = model.fields.get(fname) else {
                continue;
            };
            let sub = fspec.get("fields").and_then(Value::as_object);
            let mut sub_ctx = ctx.clone();
            if let Some(c) = fspec.get("context").and_then(Value::as_object) {
                sub_ctx.extend(c.clone());
            }
            let v = match field.ftype.as_str() {
                "many2one" => {
                    let co_id = value_id(&raw_value(ds, model, rec, fname, field));
                    match (co_id, sub) {
                        (None, _) => Value::Bool(false),
                        (Some(cid), None) => json!(cid),
                        (Some(cid), Some(sub)) => {
                            let co = get_model(ds, field.relation.as_deref().unwrap_or(""))?;
                            co_read(ds, user, co, &[cid], sub, &sub_ctx)?
                                .into_iter()
                                .next()
                                .unwrap_or(Value::Bool(false))
                        }
                    }
                }
                "one2many" | "many2many" => {
                    let mut co_ids = relational_ids(ds, model, rec, fname, field);
                    match sub {
                        None => json!(co_ids),
                        Some(sub) => {
                            let co = get_model(ds, field.relation.as_deref().unwrap_or(""))?;
                            if let Some(order) = fspec.get("order").and_then(Value::as_str) {
                                sort_ids(ds, co, &mut co_ids, order)?;
                            }
                            let limit = fspec
                                .get("limit")
                                .and_then(Value::as_u64)
                                .map(|l| l as usize)
                                .unwrap_or(usize::MAX);
                            let full: Vec<i64> = co_ids.iter().copied().take(limit).collect();
                            let mut rows = co_read(ds, user, co, &full, sub, &sub_ctx)?;
                            for extra in co_ids.iter().skip(limit) {
                                rows.push(json!({"id": extra}));
                            }
                            Value::Array(rows)
                        }
                    }
                }
                _ => classic_value(ds, model, rec, fname, field, &sub_ctx, true),
            };
            row.insert(fname.clone(), v);
        }
        out.push(Value::Object(row));
    }
    Ok(out)
}

/// Sub-read of co-records: `display_name` alone is read as superuser.
fn co_read(
    ds: &Dataset,
    user: &User,
    co: &Model,
    ids: &[i64],
    sub: &Map<String, Value>,
    ctx: &Map<String, Value>,
) -> R<Vec<Value>> {
    let only_name = sub.keys().all(|k| k == "display_name" || k == "id");
    if only_name {
        let su = superuser();
        let existing: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|i| co.records.contains_key(i))
            .collect();
        return web_read(ds, &su, co, &existing, sub, ctx);
    }
    web_read(ds, user, co, ids, sub, ctx)
}

/// `fields_get(allfields, attributes)`.
pub fn fields_get(
    ds: &Dataset,
    model: &Model,
    allfields: &[String],
    attributes: &[String],
) -> Value {
    let mut out = Map::new();
    for (name, f) in &model.fields {
        if !allfields.is_empty() && !allfields.contains(name) {
            continue;
        }
        let mut d = Map::new();
        d.insert("type".into(), json!(f.ftype));
        d.insert("string".into(), json!(f.string));
        d.insert("name".into(), json!(name));
        d.insert("store".into(), json!(f.store));
        d.insert("readonly".into(), json!(f.readonly));
        d.insert("required".into(), json!(f.required));
        d.insert(
            "searchable".into(),
            json!(f.store || f.related.is_some() || name == "display_name"),
        );
        d.insert("sortable".into(), json!(f.store && !f.is_x2many()));
        d.insert(
            "groupable".into(),
            json!(f.store && !matches!(f.ftype.as_str(), "text" | "html" | "binary" | "one2many")),
        );
        d.insert("manual".into(), json!(false));
        d.insert("change_default".into(), json!(false));
        d.insert("company_dependent".into(), json!(false));
        d.insert("depends".into(), json!(f.depends));
        if let Some(r) = &f.relation {
            d.insert("relation".into(), json!(r));
            d.insert("domain".into(), json!([]));
            d.insert("context".into(), json!({}));
        }
        if let Some(inv) = &f.inverse {
            d.insert("relation_field".into(), json!(inv));
        }
        if let Some(rel) = &f.related {
            d.insert("related".into(), json!(rel));
        }
        if f.ftype == "selection" {
            d.insert(
                "selection".into(),
                json!(f
                    .selection
                    .iter()
                    .map(|(k, v)| json!([k, v]))
                    .collect::<Vec<_>>()),
            );
        }
        if f.is_numeric() {
            let key = if ds.version == OdooVersion::V18 {
                "aggregator"
            } else {
                "group_operator"
            };
            d.insert(key.into(), json!("sum"));
        }
        if f.compute.is_some() || f.related.is_some() || name == "display_name" {
            d.insert("compute".into(), json!(true));
        }
        if !attributes.is_empty() {
            d.retain(|k, _| attributes.contains(k));
        }
        out.insert(name.clone(), Value::Object(d));
    }
    Value::Object(out)
}

// ---------------------------------------------------------------- mutations

enum X2mCmd {
    Create(Map<String, Value>),
    Update(i64, Map<String, Value>),
    Delete(i64),
    Unlink(i64),
    Link(i64),
    Clear,
    Set(Vec<i64>),
}

fn parse_x2m(fname: &str, v: &Value) -> R<Vec<X2mCmd>> {
    let bad = || OdooError::value_error(format!("Wrong value for {fname}: {v}"));
    let Value::Array(items) = v else {
        return match v {
            Value::Null | Value::Bool(false) => Ok(vec![X2mCmd::Clear]),
            _ => Err(bad()),
        };
    };
    if items.iter().all(|x| x.is_number()) {
        return Ok(vec![X2mCmd::Set(
            items.iter().filter_map(value_id).collect(),
        )]);
    }
    let mut out = Vec::new();
    for it in items {
        let Value::Array(c) = it else {
            if let Some(id) = value_id(it) {
                out.push(X2mCmd::Link(id));
                continue;
            }
            return Err(bad());
        };
        let code = c.first().and_then(Value::as_i64).ok_or_else(bad)?;
        let id = c.get(1).and_then(value_id).unwrap_or(0);
        let vals = c
            .get(2)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        out.push(match code {
            0 => X2mCmd::Create(vals),
            1 => X2mCmd::Update(id, vals),
            2 => X2mCmd::Delete(id),
            3 => X2mCmd::Unlink(id),
            4 => X2mCmd::Link(id),
            5 => X2mCmd::Clear,
            6 => X2mCmd::Set(c.get(2).map(ids_of).unwrap_or_default()),
            _ => return Err(bad()),
        });
    }
    Ok(out)
}

/// Splits `vals` into stored scalar updates and x2many commands, validating names.
type Converted = (Vec<(String, Value)>, Vec<(String, Vec<X2mCmd>)>);

fn convert_vals(model: &Model, vals: &Map<String, Value>) -> R<Converted> {
    let mut scalars = Vec::new();
    let mut x2m = Vec::new();
    for (k, v) in vals {
        let Some(f) = model.fields.get(k) else {
            return Err(OdooError::value_error(format!(
                "Invalid field '{k}' on model '{}'",
                model.name
            )));
        };
        if matches!(
            k.as_str(),
            "id" | "display_name" | "create_date" | "create_uid" | "write_uid"
        ) || f.compute.is_some()
            || f.related.is_some()
        {
            continue;
        }
        match f.ftype.as_str() {
            "one2many" | "many2many" => x2m.push((k.clone(), parse_x2m(k, v)?)),
            "many2one" => scalars.push((
                k.clone(),
                value_id(v).map(Value::from).unwrap_or(Value::Null),
            )),
            "selection" => {
                if truthy(v) {
                    let s = v.as_str().unwrap_or_default();
                    if !f.selection.iter().any(|(key, _)| key == s) {
                        return Err(OdooError::value_error(format!(
                            "Wrong value for {}.{}: {}",
                            model.name, k, v
                        )));
                    }
                    scalars.push((k.clone(), v.clone()));
                } else {
                    scalars.push((k.clone(), Value::Null));
                }
            }
            "boolean" => scalars.push((k.clone(), Value::Bool(truthy(v)))),
            "integer" | "float" | "monetary" => {
                let n = match v {
                    Value::Number(_) => v.clone(),
                    Value::Bool(false) | Value::Null => Value::Null,
                    Value::Bool(true) => json!(1),
                    Value::String(s) => {
                        s.trim().parse::<f64>().map(|f| json!(f)).map_err(|_| {
                            OdooError::value_error(format!(
                                "could not convert string to float: '{s}'"
                            ))
                        })?
                    }
                    _ => {
                        return Err(OdooError::value_error(format!(
                            "Wrong value for {}.{}: {}",
                            model.name, k, v
                        )))
                    }
                };
                scalars.push((k.clone(), n));
            }
            _ => scalars.push((
                k.clone(),
                if v == &Value::Bool(false) {
                    Value::Null
                } else {
                    v.clone()
                },
            )),
        }
    }
    Ok((scalars, x2m))
}

fn apply_x2m(
    ds: &mut Dataset,
    model_name: &str,
    id: i64,
    fname: &str,
    cmds: Vec<X2mCmd>,
    uid: i64,
) -> R<()> {
    let field = get_model(ds, model_name)?
        .fields
        .get(fname)
        .cloned()
        .ok_or_else(|| OdooError::value_error(format!("Invalid field '{fname}'")))?;
    let comodel = field.relation.clone().unwrap_or_default();
    if field.ftype == "many2many" {
        let mut cur: Vec<i64> = ds
            .record(model_name, id)
            .and_then(|r| r.get(fname))
            .map(ids_of)
            .unwrap_or_default();
        for c in cmds {
            match c {
                X2mCmd::Create(vals) => cur.push(create_raw(ds, &comodel, &vals, uid)?),
                X2mCmd::Update(cid, vals) => write_raw(ds, &comodel, &[cid], &vals, uid)?,
                X2mCmd::Delete(cid) => {
                    cur.retain(|x| *x != cid);
                    unlink_raw(ds, &comodel, &[cid])?;
                }
                X2mCmd::Unlink(cid) => cur.retain(|x| *x != cid),
                X2mCmd::Link(cid) => {
                    if !cur.contains(&cid) {
                        cur.push(cid)
                    }
                }
                X2mCmd::Clear => cur.clear(),
                X2mCmd::Set(ids) => cur = ids,
            }
        }
        if let Some(r) = ds
            .models
            .get_mut(model_name)
            .and_then(|m| m.records.get_mut(&id))
        {
            r.insert(fname.to_string(), json!(cur));
        }
        return Ok(());
    }
    // one2many: drive the inverse many2one on the comodel
    let inverse = field.inverse.clone().unwrap_or_default();
    let set_inverse = |ds: &mut Dataset, cid: i64, v: Value| {
        if let Some(r) = ds
            .models
            .get_mut(&comodel)
            .and_then(|m| m.records.get_mut(&cid))
        {
            r.insert(inverse.clone(), v);
            r.insert("write_date".into(), json!(now_utc()));
        }
    };
    let children = |ds: &Dataset| -> Vec<i64> {
        ds.models
            .get(&comodel)
            .map(|m| {
                m.records
                    .values()
                    .filter(|r| r.get(&inverse).and_then(value_id) == Some(id))
                    .filter_map(|r| r.get("id").and_then(Value::as_i64))
                    .collect()
            })
            .unwrap_or_default()
    };
    for c in cmds {
        match c {
            X2mCmd::Create(mut vals) => {
                vals.insert(inverse.clone(), json!(id));
                create_raw(ds, &comodel, &vals, uid)?;
            }
            X2mCmd::Update(cid, vals) => write_raw(ds, &comodel, &[cid], &vals, uid)?,
            X2mCmd::Delete(cid) => unlink_raw(ds, &comodel, &[cid])?,
            X2mCmd::Unlink(cid) => set_inverse(ds, cid, Value::Null),
            X2mCmd::Link(cid) => set_inverse(ds, cid, json!(id)),
            X2mCmd::Clear => {
                for cid in children(ds) {
                    set_inverse(ds, cid, Value::Null);
                }
            }
            X2mCmd::Set(ids) => {
                for cid in children(ds) {
                    if !ids.contains(&cid) {
                        set_inverse(ds, cid, Value::Null);
                    }
                }
                for cid in ids {
                    set_inverse(ds, cid, json!(id));
                }
            }
        }
    }
    Ok(())
}

/// Creates a record without ACL checks (see [`Dataset::insert`]).
pub fn create_raw(
    ds: &mut Dataset,
    model_name: &str,
    vals: &Map<String, Value>,
    uid: i64,
) -> R<i64> {
    let model = get_model(ds, model_name)?;
    let (scalars, x2m) = convert_vals(model, vals)?;
    let id = model
        .next_id
        .max(model.records.keys().next_back().map(|k| k + 1).unwrap_or(1));
    let mut rec = Record::new();
    rec.insert("id".into(), json!(id));
    for (fname, f) in &model.fields {
        if f.store
            && f.compute.is_none()
            && f.related.is_none()
            && !matches!(fname.as_str(), "id" | "display_name")
        {
            let v = f.default.clone().unwrap_or(if f.ftype == "many2many" {
                json!([])
            } else {
                Value::Null
            });
            rec.insert(fname.clone(), v);
        }
        if f.compute.is_some() && f.store {
            rec.insert(fname.clone(), json!(0.0));
        }
    }
    for (k, v) in scalars {
        rec.insert(k, v);
    }
    if let Some(prefix) = &model.sequence {
        if !rec.get("name").map(truthy).unwrap_or(false) {
            rec.insert("name".into(), json!(format!("{prefix}{id:05}")));
        }
    }
    for (fname, f) in &model.fields {
        if f.required
            && f.store
            && f.compute.is_none()
            && !f.is_x2many()
            && !rec.get(fname).map(truthy).unwrap_or(false)
            && f.ftype != "boolean"
        {
            return Err(OdooError::validation(format!(
                "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n- Delete: another model requires the record being deleted. If possible, archive it instead.\n\nModel: {} ({})\nField: {} ({})",
                model.description, model.name, f.string, fname
            )));
        }
    }
    let now = now_utc();
    rec.insert("create_date".into(), json!(now));
    rec.insert("write_date".into(), json!(now));
    rec.insert("create_uid".into(), json!(uid));
    rec.insert("write_uid".into(), json!(uid));
    if let Some(m) = ds.models.get_mut(model_name) {
        m.records.insert(id, rec);
        m.next_id = id + 1;
    }
    for (fname, cmds) in x2m {
        apply_x2m(ds, model_name, id, &fname, cmds, uid)?;
    }
    recompute(ds, true);
    Ok(id)
}

/// Writes records without ACL checks (see [`Dataset::write`]).
pub fn write_raw(
    ds: &mut Dataset,
    model_name: &str,
    ids: &[i64],
    vals: &Map<String, Value>,
    uid: i64,
) -> R<()> {
    let model = get_model(ds, model_name)?;
    let (scalars, x2m) = convert_vals(model, vals)?;
    for id in ids {
        if !model.records.contains_key(id) {
            return Err(OdooError::missing(format!("Record does not exist or has been deleted.\n(Record: {model_name}({id},), User: {uid})")));
        }
    }
    for (fname, f) in &model.fields {
        if f.required && f.store {
            if let Some((_, v)) = scalars.iter().find(|(k, _)| k == fname) {
                if !truthy(v) && f.ftype != "boolean" {
                    return Err(OdooError::validation(format!(
                        "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n- Delete: another model requires the record being deleted. If possible, archive it instead.\n\nModel: {} ({})\nField: {} ({})",
                        model.description, model.name, f.string, fname
                    )));
                }
            }
        }
    }
    let now = now_utc();
    if let Some(m) = ds.models.get_mut(model_name) {
        for id in ids {
            if let Some(r) = m.records.get_mut(id) {
                for (k, v) in &scalars {
                    r.insert(k.clone(), v.clone());
                }
                if !vals.contains_key("write_date") {
                    r.insert("write_date".into(), json!(now));
                }
                r.insert("write_uid".into(), json!(uid));
            }
        }
    }
    for (fname, cmds) in x2m {
        if let [id] = ids {
            apply_x2m(ds, model_name, *id, &fname, cmds, uid)?;
        } else {
            // commands are consumed per record: re-parse them for each id
            let v = vals.get(&fname).cloned().unwrap_or(Value::Null);
            for id in ids {
                apply_x2m(ds, model_name, *id, &fname, parse_x2m(&fname, &v)?, uid)?;
            }
        }
    }
    recompute(ds, true);
    Ok(())
}

/// Deletes records without ACL checks; cascades to required many2ones, nulls others.
pub fn unlink_raw(ds: &mut Dataset, model_name: &str, ids: &[i64]) -> R<()> {
    let model = get_model(ds, model_name)?;
    if let Some(missing) = ids.iter().find(|i| !model.records.contains_key(i)) {
        return Err(OdooError::missing(format!("Record does not exist or has been deleted.\n(Record: {model_name}({missing},), User: 1)")));
    }
    if let Some(m) = ds.models.get_mut(model_name) {
        for id in ids {
            m.records.remove(id);
        }
    }
    // references
    let mut cascades: Vec<(String, Vec<i64>)> = Vec::new();
    let model_names: Vec<String> = ds.models.keys().cloned().collect();
    for mname in model_names {
        let Some(m) = ds.models.get_mut(&mname) else {
            continue;
        };
        let fields: Vec<(String, Field)> = m
            .fields
            .iter()
            .filter(|(_, f)| f.relation.as_deref() == Some(model_name) && f.store)
            .map(|(k, f)| (k.clone(), f.clone()))
            .collect();
        let mut to_delete = Vec::new();
        for (fname, f) in fields {
            for r in m.records.values_mut() {
                match f.ftype.as_str() {
                    "many2one" => {
                        if let Some(v) = r.get(&fname).and_then(value_id) {
                            if ids.contains(&v) {
                                if f.required {
                                    if let Some(rid) = r.get("id").and_then(Value::as_i64) {
                                        to_delete.push(rid);
                                    }
                                } else {
                                    r.insert(fname.clone(), Value::Null);
                                }
                            }
                        }
                    }
                    "many2many" => {
                        let cur = r.get(&fname).map(ids_of).unwrap_or_default();
                        if cur.iter().any(|x| ids.contains(x)) {
                            r.insert(
                                fname.clone(),
                                json!(cur
                                    .into_iter()
                                    .filter(|x| !ids.contains(x))
                                    .collect::<Vec<_>>()),
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
        if !to_delete.is_empty() {
            to_delete.sort_unstable();
            to_delete.dedup();
            cascades.push((mname, to_delete));
        }
    }
    for (mname, cids) in cascades {
        let existing: Vec<i64> = cids
            .into_iter()
            .filter(|i| ds.record(&mname, *i).is_some())
            .collect();
        if !existing.is_empty() {
            unlink_raw(ds, &mname, &existing)?;
        }
    }
    recompute(ds, true);
    Ok(())
}

/// Recomputes stored computed fields; `bump` sets `write_date` on changed records.
pub fn recompute(ds: &mut Dataset, bump: bool) {
    let now = now_utc();
    for pass in 0..2 {
        let mut updates: Vec<(String, i64, String, f64)> = Vec::new();
        for (mname, m) in &ds.models {
            for (fname, f) in &m.fields {
                let Some(c) = &f.compute else { continue };
                for (id, rec) in &m.records {
                    let val = match (c, pass) {
                        (Compute::Product(fs), 0) => fs
                            .iter()
                            .map(|x| rec.get(x).and_then(Value::as_f64).unwrap_or(0.0))
                            .product::<f64>(),
                        (Compute::Sum { field, sub }, 1) => {
                            let Some(x2m) = m.fields.get(field) else {
                                continue;
                            };
                            let Some(co) = x2m.relation.as_deref().and_then(|r| ds.models.get(r))
                            else {
                                continue;
                            };
                            relational_ids(ds, m, rec, field, x2m)
                                .iter()
                                .filter_map(|cid| co.records.get(cid))
                                .map(|r| r.get(sub).and_then(Value::as_f64).unwrap_or(0.0))
                                .sum::<f64>()
                        }
                        _ => continue,
                    };
                    let val = if f.ftype == "monetary" {
                        (val * 100.0).round() / 100.0
                    } else {
                        val
                    };
                    let cur = rec.get(fname).and_then(Value::as_f64);
                    if cur.map(|c| (c - val).abs() > 1e-9).unwrap_or(true) {
                        updates.push((mname.clone(), *id, fname.clone(), val));
                    }
                }
            }
        }
        for (mname, id, fname, val) in updates {
            if let Some(r) = ds
                .models
                .get_mut(&mname)
                .and_then(|m| m.records.get_mut(&id))
            {
                r.insert(fname, json!(val));
                if bump {
                    r.insert("write_date".into(), json!(now));
                }
            }
        }
    }
}

// ---------------------------------------------------------------- argument binding

struct Bound {
    vals: BTreeMap<&'static str, Value>,
}

impl Bound {
    fn get(&self, k: &str) -> Option<&Value> {
        self.vals.get(k).filter(|v| !v.is_null())
    }
    fn usize(&self, k: &str) -> Option<usize> {
        self.get(k).and_then(Value::as_u64).map(|v| v as usize)
    }
    fn strs(&self, k: &str) -> Vec<String> {
        match self.get(k) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }
    fn str(&self, k: &str) -> Option<&str> {
        self.get(k).and_then(Value::as_str)
    }
    fn domain(&self, k: &str) -> Value {
        match self.get(k) {
            Some(Value::Array(a)) => Value::Array(a.clone()),
            _ => json!([]),
        }
    }
}

fn bind(
    method: &str,
    sig: &[&'static str],
    required: usize,
    args: Vec<Value>,
    kwargs: &Map<String, Value>,
) -> R<Bound> {
    if args.len() > sig.len() {
        return Err(OdooError::type_error(format!(
            "{method}() takes from {} to {} positional arguments but {} were given",
            required + 1,
            sig.len() + 1,
            args.len() + 1
        )));
    }
    let mut vals = BTreeMap::new();
    for (i, a) in args.into_iter().enumerate() {
        vals.insert(sig[i], a);
    }
    for (k, v) in kwargs {
        let Some(name) = sig.iter().find(|s| **s == k.as_str()) else {
            return Err(OdooError::type_error(format!(
                "{method}() got an unexpected keyword argument '{k}'"
            )));
        };
        if vals.contains_key(name) {
            return Err(OdooError::type_error(format!(
                "{method}() got multiple values for argument '{k}'"
            )));
        }
        vals.insert(*name, v.clone());
    }
    for name in sig.iter().take(required) {
        if !vals.contains_key(name) {
            return Err(OdooError::type_error(format!(
                "{method}() missing 1 required positional argument: '{name}'"
            )));
        }
    }
    Ok(Bound { vals })
}

fn take_ids(method: &str, args: &mut Vec<Value>) -> R<Vec<i64>> {
    if args.is_empty() {
        return Err(OdooError::new(
            "builtins.IndexError",
            format!("{method}: tuple index out of range"),
        ));
    }
    let v = args.remove(0);
    match &v {
        Value::Array(a) => a
            .iter()
            .map(|x| value_id(x).ok_or_else(|| OdooError::type_error(format!("Invalid id {x}"))))
            .collect(),
        Value::Number(_) => Ok(value_id(&v).into_iter().collect()),
        Value::Null | Value::Bool(false) => Ok(Vec::new()),
        _ => Err(OdooError::type_error(format!("Invalid ids {v}"))),
    }
}

fn parse_op(s: &str) -> R<Op> {
    Ok(match s {
        "read" => Op::Read,
        "write" => Op::Write,
        "create" => Op::Create,
        "unlink" => Op::Unlink,
        _ => return Err(OdooError::value_error("Invalid access mode")),
    })
}

fn state_for_action(method: &str) -> Option<&'static str> {
    Some(match method {
        "action_confirm" => "sale",
        "action_cancel" | "button_cancel" => "cancel",
        "action_draft" | "button_draft" => "draft",
        "action_done" | "action_lock" => "done",
        "action_post" => "posted",
        "action_quotation_sent" | "action_quotation_send" => "sent",
        _ => return None,
    })
}

/// Runs `model.method(*args, **kwargs)` as `uid` (the `call_kw` path).
/// Returns `Value::Null` for methods that return `None` (the JSON-RPC answer then
/// has no `result` member).
pub fn call_kw(
    ds: &mut Dataset,
    uid: i64,
    model_name: &str,
    method: &str,
    args: Vec<Value>,
    mut kwargs: Map<String, Value>,
) -> R<Value> {
    let user = user_of(ds, uid)?;
    let model = get_model(ds, model_name)?.clone();
    if method.starts_with('_') {
        return Err(OdooError::access_error(format!(
            "Private methods (such as '{model_name}.{method}') cannot be called remotely."
        )));
    }
    let ctx = match kwargs.remove("context") {
        Some(Value::Object(c)) => c,
        _ => Map::new(),
    };
    let v = ds.version;
    let mut args = args;
    let no_method = || {
        OdooError::attribute_error(format!(
            "The method '{method}' does not exist on the model '{model_name}'"
        ))
    };
    match method {
        "search" => {
            let sig: &[&str] = if v == OdooVersion::V16 {
                &["domain", "offset", "limit", "order", "count"]
            } else {
                &["domain", "offset", "limit", "order"]
            };
            let b = bind(method, sig, 1, args, &kwargs)?;
            let ids = search(
                ds,
                &user,
                &model,
                &b.domain("domain"),
                &ctx,
                b.usize("offset").unwrap_or(0),
                b.usize("limit"),
                b.str("order"),
            )?;
            if b.get("count").map(truthy).unwrap_or(false) {
                return Ok(json!(ids.len()));
            }
            Ok(json!(ids))
        }
        "search_fetch" if v != OdooVersion::V16 => {
            let b = bind(
                method,
                &["domain", "field_names", "offset", "limit", "order"],
                2,
                args,
                &kwargs,
            )?;
            check_field_names(&model, &b.strs("field_names"))?;
            Ok(json!(search(
                ds,
                &user,
                &model,
                &b.domain("domain"),
                &ctx,
                b.usize("offset").unwrap_or(0),
                b.usize("limit"),
                b.str("order")
            )?))
        }
        "search_count" => {
            let b = bind(method, &["domain", "limit"], 1, args, &kwargs)?;
            let n = search(ds, &user, &model, &b.domain("domain"), &ctx, 0, None, None)?.len();
            Ok(json!(match b.usize("limit") {
                Some(l) if l > 0 => n.min(l),
                _ => n,
            }))
        }
        "search_read" => {
            let b = bind(
                method,
                &["domain", "fields", "offset", "limit", "order", "load"],
                0,
                args,
                &kwargs,
            )?;
            let fields = b.strs("fields");
            check_field_names(&model, &fields)?;
            let ids = search(
                ds,
                &user,
                &model,
                &b.domain("domain"),
                &ctx,
                b.usize("offset").unwrap_or(0),
                b.usize("limit"),
                b.str("order"),
            )?;
            let classic = b
                .get("load")
                .map(|l| l.as_str() == Some("_classic_read"))
                .unwrap_or(true);
            Ok(json!(read(
                ds, &user, &model, &ids, &fields, &ctx, classic
            )?))
        }
        "read" => {
            let ids = take_ids(method, &mut args)?;
            let b = bind(method, &["fields", "load"], 0, args, &kwargs)?;
            let classic = b
                .get("load")
                .map(|l| l.as_str() == Some("_classic_read"))
                .unwrap_or(true);
            Ok(json!(read(
                ds,
                &user,
                &model,
                &ids,
                &b.strs("fields"),
                &ctx,
                classic
            )?))
        }
        "web_search_read" => {
            let (b, records_fn): (Bound, bool) = if v == OdooVersion::V16 {
                (
                    bind(
                        method,
                        &[
                            "domain",
                            "fields",
                            "offset",
                            "limit",
                            "order",
                            "count_limit",
                        ],
                        0,
                        args,
                        &kwargs,
                    )?,
                    false,
                )
            } else {
                (
                    bind(
                        method,
                        &[
                            "domain",
                            "specification",
                            "offset",
                            "limit",
                            "order",
                            "count_limit",
                        ],
                        2,
                        args,
                        &kwargs,
                    )?,
                    true,
                )
            };
            let domain = b.domain("domain");
            let offset = b.usize("offset").unwrap_or(0);
            let limit = b.usize("limit");
            if !records_fn {
                check_field_names(&model, &b.strs("fields"))?;
            } else {
                let spec = b
                    .get("specification")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                check_field_names(&model, &spec.keys().cloned().collect::<Vec<_>>())?;
            }
            let ids = search(
                ds,
                &user,
                &model,
                &domain,
                &ctx,
                offset,
                limit,
                b.str("order"),
            )?;
            let records = if records_fn {
                let spec = b
                    .get("specification")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                web_read(ds, &user, &model, &ids, &spec, &ctx)?
            } else {
                read(ds, &user, &model, &ids, &b.strs("fields"), &ctx, true)?
            };
            if records.is_empty() {
                return Ok(json!({"length": 0, "records": []}));
            }
            let current = records.len() + offset;
            let limit_reached = Some(records.len()) == limit;
            let count_limit = b.usize("count_limit");
            let count_limit_reached = count_limit.map(|c| c > 0 && c <= current).unwrap_or(false);
            let length = if limit.map(|l| l > 0).unwrap_or(false)
                && ((limit_reached && !count_limit_reached) || ctx_flag(&ctx, "force_search_count"))
            {
                let n = search(ds, &user, &model, &domain, &ctx, 0, None, None)?.len();
                match count_limit {
                    Some(c) if c > 0 => n.min(c),
                    _ => n,
                }
            } else {
                current
            };
            Ok(json!({"length": length, "records": records}))
        }
        "web_read" if v != OdooVersion::V16 => {
            let ids = take_ids(method, &mut args)?;
            let b = bind(method, &["specification"], 1, args, &kwargs)?;
            let spec = b
                .get("specification")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            Ok(json!(web_read(ds, &user, &model, &ids, &spec, &ctx)?))
        }
        "web_save" if v != OdooVersion::V16 => {
            let ids = take_ids(method, &mut args)?;
            let b = bind(
                method,
                &["vals", "specification", "next_id"],
                2,
                args,
                &kwargs,
            )?;
            let vals = b
                .get("vals")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let ids = if ids.is_empty() {
                check_acl(ds, &user, &model, Op::Create)?;
                vec![create_raw(ds, model_name, &vals, uid)?]
            } else {
                check_acl(ds, &user, &model, Op::Write)?;
                check_records(ds, &user, &model, Op::Write, &ids)?;
                write_raw(ds, model_name, &ids, &vals, uid)?;
                ids
            };
            let spec = b
                .get("specification")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let mut c = ctx.clone();
            c.insert("bin_size".into(), json!(true));
            let model = get_model(ds, model_name)?.clone();
            Ok(json!(web_read(ds, &user, &model, &ids, &spec, &c)?))
        }
        "fields_get" => {
            let b = bind(method, &["allfields", "attributes"], 0, args, &kwargs)?;
            let mut described = fields_get(ds, &model, &b.strs("allfields"), &b.strs("attributes"));
            // Fields restricted to groups the user is not in are left out, as in Odoo.
            if let Some(map) = described.as_object_mut() {
                map.retain(|name, _| model.fields.get(name).is_none_or(|f| f.readable_by(&user)));
            }
            Ok(described)
        }
        "name_search" => {
            let mut kw = kwargs.clone();
            if let Some(d) = kw.remove("domain") {
                kw.insert("args".into(), d);
            }
            let b = bind(method, &["name", "args", "operator", "limit"], 0, args, &kw)?;
            let name = b.str("name").unwrap_or("").to_string();
            let op = b.str("operator").unwrap_or("ilike").to_string();
            let mut dom = match b.domain("args") {
                Value::Array(a) => a,
                _ => Vec::new(),
            };
            if !name.is_empty() || op.starts_with("not") || op == "!=" {
                dom.insert(0, json!(["display_name", op, name]));
            }
            let limit = match b.get("limit") {
                None => Some(100),
                Some(l) => l.as_u64().map(|x| x as usize),
            };
            let ids = search(ds, &user, &model, &Value::Array(dom), &ctx, 0, limit, None)?;
            Ok(json!(ids
                .iter()
                .filter_map(|i| model
                    .records
                    .get(i)
                    .map(|r| json!([i, display_name(ds, &model, r)])))
                .collect::<Vec<_>>()))
        }
        "name_get" if v != OdooVersion::V18 => {
            let ids = take_ids(method, &mut args)?;
            bind(method, &[], 0, args, &kwargs)?;
            check_acl(ds, &user, &model, Op::Read)?;
            check_records(ds, &user, &model, Op::Read, &ids)?;
            Ok(json!(ids
                .iter()
                .filter_map(|i| model
                    .records
                    .get(i)
                    .map(|r| json!([i, display_name(ds, &model, r)])))
                .collect::<Vec<_>>()))
        }
        "name_create" => {
            let b = bind(method, &["name"], 1, args, &kwargs)?;
            check_acl(ds, &user, &model, Op::Create)?;
            let mut vals = Map::new();
            vals.insert(model.rec_name.clone(), json!(b.str("name").unwrap_or("")));
            let id = create_raw(ds, model_name, &vals, uid)?;
            let dn = ds
                .record(model_name, id)
                .map(|r| display_name(ds, &model, r))
                .unwrap_or_default();
            Ok(json!([id, dn]))
        }
        "read_group" | "web_read_group" => {
            let b = if method == "read_group" {
                bind(
                    method,
                    &[
                        "domain", "fields", "groupby", "offset", "limit", "orderby", "lazy",
                    ],
                    3,
                    args,
                    &kwargs,
                )?
            } else {
                bind(
                    method,
                    &[
                        "domain",
                        "fields",
                        "groupby",
                        "limit",
                        "offset",
                        "orderby",
                        "lazy",
                        "expand",
                        "expand_limit",
                        "expand_orderby",
                    ],
                    3,
                    args,
                    &kwargs,
                )?
            };
            let lazy = b.get("lazy").map(truthy).unwrap_or(true);
            let groups = read_group(
                ds,
                &user,
                &model,
                &b.domain("domain"),
                &b.strs("fields"),
                &b.strs("groupby"),
                &ctx,
                lazy,
            )?;
            let total = groups.len();
            let page: Vec<Value> = groups
                .into_iter()
                .skip(b.usize("offset").unwrap_or(0))
                .take(b.usize("limit").filter(|l| *l > 0).unwrap_or(usize::MAX))
                .collect();
            if method == "read_group" {
                Ok(json!(page))
            } else {
                Ok(json!({"groups": page, "length": total}))
            }
        }
        "create" => {
            let b = bind(method, &["vals_list"], 1, args, &kwargs)?;
            check_acl(ds, &user, &model, Op::Create)?;
            let (single, list): (bool, Vec<Map<String, Value>>) = match b.get("vals_list") {
                Some(Value::Object(o)) => (true, vec![o.clone()]),
                Some(Value::Array(a)) => (
                    false,
                    a.iter()
                        .map(|x| x.as_object().cloned().unwrap_or_default())
                        .collect(),
                ),
                _ => {
                    return Err(OdooError::type_error(
                        "create() vals_list must be a dict or a list of dicts",
                    ))
                }
            };
            let mut ids = Vec::new();
            for vals in &list {
                let id = create_raw(ds, model_name, vals, uid)?;
                let m = get_model(ds, model_name)?;
                if let Some(rec) = m.records.get(&id) {
                    let f = failing_rules(ds, &user, m, Op::Create, rec)?;
                    if !f.is_empty() {
                        let err = rules_error(ds, &user, m, Op::Create, &[(id, f)]);
                        let _ = unlink_raw(ds, model_name, &[id]);
                        return Err(err);
                    }
                }
                ids.push(id);
            }
            Ok(if single { json!(ids[0]) } else { json!(ids) })
        }
        "write" => {
            let ids = take_ids(method, &mut args)?;
            let b = bind(method, &["vals"], 1, args, &kwargs)?;
            check_acl(ds, &user, &model, Op::Write)?;
            check_records(ds, &user, &model, Op::Write, &ids)?;
            let vals = b
                .get("vals")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            write_raw(ds, model_name, &ids, &vals, uid)?;
            Ok(json!(true))
        }
        "unlink" => {
            let ids = take_ids(method, &mut args)?;
            bind(method, &[], 0, args, &kwargs)?;
            check_acl(ds, &user, &model, Op::Unlink)?;
            check_records(ds, &user, &model, Op::Unlink, &ids)?;
            unlink_raw(ds, model_name, &ids)?;
            Ok(json!(true))
        }
        "copy" => {
            let ids = take_ids(method, &mut args)?;
            let b = bind(method, &["default"], 0, args, &kwargs)?;
            check_acl(ds, &user, &model, Op::Read)?;
            check_records(ds, &user, &model, Op::Read, &ids)?;
            check_acl(ds, &user, &model, Op::Create)?;
            if ids.len() != 1 && v != OdooVersion::V18 {
                return Err(OdooError::value_error(format!(
                    "Expected singleton: {model_name}{ids:?}"
                )));
            }
            let mut new_ids = Vec::new();
            for id in &ids {
                let Some(rec) = model.records.get(id) else {
                    continue;
                };
                let mut vals = Map::new();
                for (fname, f) in &model.fields {
                    if !f.store
                        || f.compute.is_some()
                        || f.related.is_some()
                        || f.ftype == "one2many"
                    {
                        continue;
                    }
                    if matches!(
                        fname.as_str(),
                        "id" | "display_name"
                            | "create_date"
                            | "write_date"
                            | "create_uid"
                            | "write_uid"
                    ) {
                        continue;
                    }
                    if let Some(val) = rec.get(fname) {
                        vals.insert(fname.clone(), val.clone());
                    }
                }
                if model.sequence.is_some() {
                    vals.remove("name");
                } else if let Some(Value::String(n)) = vals.get("name") {
                    let n = format!("{n} (copy)");
                    vals.insert("name".into(), json!(n));
                }
                if let Some(Value::Object(d)) = b.get("default") {
                    for (k, val) in d {
                        vals.insert(k.clone(), val.clone());
                    }
                }
                new_ids.push(create_raw(ds, model_name, &vals, uid)?);
            }
            Ok(if v == OdooVersion::V18 {
                json!(new_ids)
            } else {
                json!(new_ids.first())
            })
        }
        "default_get" => {
            let b = bind(method, &["fields_list"], 1, args, &kwargs)?;
            let wanted = b.strs("fields_list");
            let mut out = Map::new();
            for (k, f) in &model.fields {
                if let Some(d) = &f.default {
                    if wanted.is_empty() || wanted.contains(k) {
                        out.insert(k.clone(), d.clone());
                    }
                }
            }
            for (k, val) in &ctx {
                if let Some(f) = k.strip_prefix("default_") {
                    if wanted.iter().any(|w| w == f) {
                        out.insert(f.to_string(), val.clone());
                    }
                }
            }
            Ok(Value::Object(out))
        }
        "onchange" => Ok(json!({"value": {}})),
        // res.users.context_get: the user's context, `uid` included (Odoo 17/18).
        "context_get" if model_name == "res.users" => {
            Ok(json!({"lang": "en_US", "tz": "Europe/Brussels", "uid": uid}))
        }
        "check_access_rights" => {
            let b = bind(method, &["operation", "raise_exception"], 1, args, &kwargs)?;
            let op = parse_op(b.str("operation").unwrap_or(""))?;
            match check_acl(ds, &user, &model, op) {
                Ok(()) => Ok(json!(true)),
                Err(e) => {
                    if b.get("raise_exception").map(truthy).unwrap_or(true) {
                        Err(e)
                    } else {
                        Ok(json!(false))
                    }
                }
            }
        }
        "check_access_rule" | "check_access" => {
            let ids = take_ids(method, &mut args)?;
            let b = bind(method, &["operation"], 1, args, &kwargs)?;
            let op = parse_op(b.str("operation").unwrap_or(""))?;
            if method == "check_access" {
                check_acl(ds, &user, &model, op)?;
            }
            check_records(ds, &user, &model, op, &ids)?;
            Ok(Value::Null)
        }
        "has_access" if v == OdooVersion::V18 => {
            let ids = take_ids(method, &mut args)?;
            let b = bind(method, &["operation"], 1, args, &kwargs)?;
            let op = parse_op(b.str("operation").unwrap_or(""))?;
            Ok(json!(
                check_acl(ds, &user, &model, op).is_ok()
                    && check_records(ds, &user, &model, op, &ids).is_ok()
            ))
        }
        "exists" => {
            let ids = take_ids(method, &mut args)?;
            Ok(json!(ids
                .into_iter()
                .filter(|i| model.records.contains_key(i))
                .collect::<Vec<_>>()))
        }
        "get_metadata" => {
            let ids = take_ids(method, &mut args)?;
            check_acl(ds, &user, &model, Op::Read)?;
            check_records(ds, &user, &model, Op::Read, &ids)?;
            Ok(json!(ids
                .iter()
                .filter_map(|i| model.records.get(i))
                .map(|r| {
                    let uname = |k: &str| {
                        r.get(k)
                            .and_then(value_id)
                            .and_then(|u| ds.models.get("res.users").and_then(|m| m.records.get(&u).map(|ur| json!([u, display_name(ds, m, ur)]))))
                            .unwrap_or(json!(false))
                    };
                    json!({"id": r.get("id"), "create_uid": uname("create_uid"), "create_date": r.get("create_date"), "write_uid": uname("write_uid"), "write_date": r.get("write_date"), "xmlid": false, "xmlids": [], "noupdate": false})
                })
                .collect::<Vec<_>>()))
        }
        "has_group" if model_name == "res.users" => {
            let mut a = args;
            if a.len() > 1 {
                a.remove(0);
            }
            let b = bind(method, &["group_ext_id"], 1, a, &kwargs)?;
            Ok(json!(
                user.is_admin
                    || user
                        .groups
                        .iter()
                        .any(|g| Some(g.as_str()) == b.str("group_ext_id"))
            ))
        }
        "toggle_active" | "action_archive" | "action_unarchive" => {
            let ids = take_ids(method, &mut args)?;
            if !model.fields.contains_key("active") {
                return Err(no_method());
            }
            check_acl(ds, &user, &model, Op::Write)?;
            check_records(ds, &user, &model, Op::Write, &ids)?;
            for id in &ids {
                let cur = model
                    .records
                    .get(id)
                    .and_then(|r| r.get("active"))
                    .map(|v| v.is_null() || truthy(v))
                    .unwrap_or(true);
                let new = match method {
                    "action_archive" => false,
                    "action_unarchive" => true,
                    _ => !cur,
                };
                let mut vals = Map::new();
                vals.insert("active".into(), json!(new));
                write_raw(ds, model_name, &[*id], &vals, uid)?;
            }
            Ok(json!(true))
        }
        m if m.starts_with("action_view_") => {
            let ids = take_ids(method, &mut args)?;
            check_acl(ds, &user, &model, Op::Read)?;
            check_records(ds, &user, &model, Op::Read, &ids)?;
            Ok(
                json!({"type": "ir.actions.act_window", "name": model.description, "res_model": model_name, "view_mode": "list,form", "domain": [["id", "in", ids]], "context": {}}),
            )
        }
        m if m.starts_with("action_") || m.starts_with("button_") => {
            let ids = take_ids(method, &mut args)?;
            check_acl(ds, &user, &model, Op::Write)?;
            check_records(ds, &user, &model, Op::Write, &ids)?;
            if let (Some(state), Some(f)) = (state_for_action(m), model.fields.get("state")) {
                if f.selection.iter().any(|(k, _)| k == state) {
                    let mut vals = Map::new();
                    vals.insert("state".into(), json!(state));
                    write_raw(ds, model_name, &ids, &vals, uid)?;
                }
            }
            Ok(json!(true))
        }
        _ => Err(no_method()),
    }
}

fn month_name(m: i64) -> &'static str {
    [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ]
    .get((m - 1).clamp(0, 11) as usize)
    .copied()
    .unwrap_or("January")
}

/// Group label for a date/datetime with a granularity.
fn date_group(v: &str, gran: &str) -> Option<String> {
    let y: i64 = v.get(0..4)?.parse().ok()?;
    let m: i64 = v.get(5..7)?.parse().ok()?;
    let d: i64 = v.get(8..10)?.parse().ok()?;
    Some(match gran {
        "day" => format!("{d:02} {} {y}", &month_name(m)[..3]),
        "year" => format!("{y}"),
        "quarter" => format!("Q{} {y}", (m - 1) / 3 + 1),
        "week" => {
            let days = crate::data::days_from_civil(y, m, d);
            let weekday = (days + 3).rem_euclid(7); // Monday = 0
            let thursday = days - weekday + 3;
            let (ty, _, _) = crate::data::civil_from_days(thursday);
            let week = (thursday - crate::data::days_from_civil(ty, 1, 1)) / 7 + 1;
            format!("W{week} {ty}")
        }
        _ => format!("{} {y}", month_name(m)),
    })
}

#[allow(clippy::too_many_arguments)]
fn read_group(
    ds: &Dataset,
    user: &User,
    model: &Model,
    domain: &Value,
    fields: &[String],
    groupby: &[String],
    ctx: &Map<String, Value>,
    lazy: bool,
) -> R<Vec<Value>> {
    if groupby.is_empty() {
        return Err(OdooError::value_error(
            "read_group() requires at least one groupby",
        ));
    }
    let gbs: Vec<String> = if lazy {
        groupby[..1].to_vec()
    } else {
        groupby.to_vec()
    };
    let parsed: Vec<(String, Option<String>)> = gbs
        .iter()
        .map(|g| match g.split_once(':') {
            Some((f, gran)) => (f.to_string(), Some(gran.to_string())),
            None => (g.clone(), None),
        })
        .collect();
    for (f, _) in &parsed {
        if !model.fields.contains_key(f) {
            return Err(OdooError::value_error(format!(
                "Invalid field '{f}' on model '{}'",
                model.name
            )));
        }
    }
    // aggregates
    let mut aggs: Vec<(String, String, String)> = Vec::new(); // (out name, field, func)
    for spec in fields {
        let (name, rest) = match spec.split_once(':') {
            Some((a, b)) => (a.to_string(), Some(b.to_string())),
            None => (spec.clone(), None),
        };
        let (func, fname) = match rest {
            Some(r) => match r.split_once('(') {
                Some((f, inner)) => (f.to_string(), inner.trim_end_matches(')').to_string()),
                None => (r, name.clone()),
            },
            None => ("sum".to_string(), name.clone()),
        };
        if fname == "__count" || parsed.iter().any(|(g, _)| *g == fname) {
            continue;
        }
        let Some(f) = model.fields.get(&fname) else {
            return Err(OdooError::value_error(format!(
                "Invalid field '{fname}' on model '{}'",
                model.name
            )));
        };
        if f.is_numeric() || func == "count" || func == "count_distinct" || func == "array_agg" {
            aggs.push((name, fname, func));
        }
    }
    let ids = search(ds, user, model, domain, ctx, 0, None, None)?;
    let mut groups: Vec<(Vec<Value>, Vec<i64>)> = Vec::new();
    for id in &ids {
        let Some(rec) = model.records.get(id) else {
            continue;
        };
        let key: Vec<Value> = parsed
            .iter()
            .map(|(f, gran)| {
                let field = &model.fields[f];
                let raw = raw_value(ds, model, rec, f, field);
                match (field.ftype.as_str(), gran) {
                    ("date" | "datetime", _) => raw
                        .as_str()
                        .and_then(|s| date_group(s, gran.as_deref().unwrap_or("month")))
                        .map(Value::String)
                        .unwrap_or(Value::Bool(false)),
                    ("many2one", _) => value_id(&raw)
                        .map(Value::from)
                        .unwrap_or(Value::Bool(false)),
                    ("boolean", _) => Value::Bool(truthy(&raw)),
                    _ => match raw {
                        Value::Null => Value::Bool(false),
                        o => o,
                    },
                }
            })
            .collect();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(*id),
            None => groups.push((key, vec![*id])),
        }
    }
    groups.sort_by(|(a, _), (b, _)| {
        for (x, y) in a.iter().zip(b.iter()) {
            let o = match (x, y) {
                (Value::Bool(false), Value::Bool(false)) => Ordering::Equal,
                (Value::Bool(false), _) => Ordering::Greater,
                (_, Value::Bool(false)) => Ordering::Less,
                _ => compare_scalars(x, y).unwrap_or(Ordering::Equal),
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    let mut out = Vec::new();
    for (key, members) in groups {
        let mut g = Map::new();
        let mut gdom: Vec<Value> = Vec::new();
        for (i, (f, gran)) in parsed.iter().enumerate() {
            let field = &model.fields[f];
            let label = gbs[i].clone();
            let v = if field.ftype == "many2one" {
                match value_id(&key[i]) {
                    Some(id) => {
                        let dn = field
                            .relation
                            .as_deref()
                            .and_then(|r| ds.models.get(r))
                            .and_then(|m| m.records.get(&id).map(|r| display_name(ds, m, r)))
                            .unwrap_or_default();
                        json!([id, dn])
                    }
                    None => json!(false),
                }
            } else {
                key[i].clone()
            };
            let _ = gran;
            gdom.push(json!([
                f,
                "=",
                if field.ftype == "many2one" {
                    value_id(&key[i]).map(Value::from).unwrap_or(json!(false))
                } else {
                    key[i].clone()
                }
            ]));
            g.insert(label, v);
        }
        if lazy {
            g.insert(format!("{}_count", parsed[0].0), json!(members.len()));
            if groupby.len() > 1 {
                g.insert(
                    "__context".into(),
                    json!({"group_by": groupby[1..].to_vec()}),
                );
            }
        } else {
            g.insert("__count".into(), json!(members.len()));
        }
        for (name, fname, func) in &aggs {
            let vals: Vec<f64> = members
                .iter()
                .filter_map(|id| model.records.get(id))
                .map(|r| r.get(fname).and_then(Value::as_f64).unwrap_or(0.0))
                .collect();
            let v = match func.as_str() {
                "count" | "count_distinct" => json!(vals.len()),
                "avg" => json!(if vals.is_empty() {
                    0.0
                } else {
                    vals.iter().sum::<f64>() / vals.len() as f64
                }),
                "max" => json!(vals.iter().cloned().fold(f64::MIN, f64::max)),
                "min" => json!(vals.iter().cloned().fold(f64::MAX, f64::min)),
                _ => json!(vals.iter().sum::<f64>()),
            };
            g.insert(name.clone(), v);
        }
        let mut full_dom = match domain {
            Value::Array(a) => a.clone(),
            _ => Vec::new(),
        };
        full_dom.extend(gdom);
        // Odoo puts the group leaf first: ['&', group leaf, domain...]
        g.insert("__domain".into(), Value::Array(full_dom));
        out.push(Value::Object(g));
    }
    Ok(out)
}

/// Credential check of the external RPC (`db, uid, password-or-api-key`).
pub fn check_rpc_credentials(ds: &Dataset, db: &str, uid: i64, secret: &str) -> R<User> {
    if db != ds.db {
        return Err(OdooError::new("psycopg2.OperationalError", format!("connection to server on socket \"/var/run/postgresql/.s.PGSQL.5432\" failed: FATAL:  database \"{db}\" does not exist\n")));
    }
    match ds.user(uid) {
        Some(u) if u.check_secret(secret) => Ok(u.clone()),
        _ => Err(OdooError::access_denied()),
    }
}
