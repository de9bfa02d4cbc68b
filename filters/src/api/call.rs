//! `POST /api/v1/systems/{id}/odoo/{operation}`: the body mapped onto an Odoo `call_kw`.
//!
//! # Rules
//!
//! - Each [`Operation`] takes its own members ([`Operation::fields`]); any other non-`null`
//!   member is refused with the list of the ones it takes. `null` is the same as absent.
//! - Every member is checked for type before anything is built: `model` (Odoo's own
//!   `check_object_name` rule, `[a-z0-9_.]+`), `ids` (positive integers that fit Odoo's `id`
//!   column), `domain`, `fields`, `limit`, `offset`, `order`, `values`, `context`, `args`,
//!   `kwargs`. What only Odoo can decide (does the field exist, is the domain valid) is left to
//!   Odoo, whose answer [`super::map_answer`] maps.
//! - Members become the **keyword** arguments of the Odoo 16/17/18 signatures, except the
//!   record ids and the values, which are positional as Odoo requires (`args[0]` is the id list
//!   of a method on records; `create`'s and `write`'s values have no keyword form shared by
//!   16-18). Only given members are sent, plus the `domain` the signature requires (`[]`).
//! - `context` becomes `kwargs.context` (the context the ORM runs with, odoo-protocol.md §1.3).
//! - The body's own `kwargs` are added to the keyword arguments built from the members. A key
//!   set by both is refused ([`ApiError::KwargConflict`]) rather than silently picking one:
//!   neither "the field wins" nor "kwargs win" is what every caller expects.
//! - `args` is only taken by `call` (positional arguments of an arbitrary method); the named
//!   operations have names for everything.

use serde_json::{json, Map, Value};

use super::{echo, object_body, only, take_string, take_strings, ApiError};
use crate::call::{Call, Shape};

/// The longest model or method name accepted (Odoo's own are a few dozen characters).
pub const MAX_NAME_LEN: usize = 256;

/// The largest record id accepted: Odoo's `id` column is a PostgreSQL `serial` (int4), so a
/// larger id cannot name a record and only gets an SQL error from Odoo.
pub const MAX_RECORD_ID: u64 = i32::MAX as u64;

/// The `{operation}` path segment of the call API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `search_read(domain, fields, offset, limit, order)`.
    SearchRead,
    /// `read(fields)` on `ids`.
    Read,
    /// `search(domain, offset, limit, order)`: record ids.
    Search,
    /// `search_count(domain, limit)`.
    SearchCount,
    /// `fields_get(allfields, attributes)`.
    FieldsGet,
    /// `name_search(name, args, operator, limit)`.
    NameSearch,
    /// `web_search_read(domain, specification, offset, limit, order, count_limit)` (17/18).
    WebSearchRead,
    /// `web_read(specification)` on `ids` (17/18).
    WebRead,
    /// `read_group(domain, fields, groupby, offset, limit, orderby, lazy)`.
    ReadGroup,
    /// `create(vals_list)`.
    Create,
    /// `write(vals)` on `ids`.
    Write,
    /// `unlink()` on `ids`.
    Unlink,
    /// Any public method named by the body's `method`.
    Call,
}

impl Operation {
    /// Every operation, in path-segment order.
    pub const ALL: [Operation; 13] = [
        Operation::SearchRead,
        Operation::Read,
        Operation::Search,
        Operation::SearchCount,
        Operation::FieldsGet,
        Operation::NameSearch,
        Operation::WebSearchRead,
        Operation::WebRead,
        Operation::ReadGroup,
        Operation::Create,
        Operation::Write,
        Operation::Unlink,
        Operation::Call,
    ];

    /// The operation of a path segment (`search_read`, ..., `call`), exactly (case-sensitive).
    pub fn parse(segment: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == segment)
    }

    /// The path segment.
    pub fn as_str(&self) -> &'static str {
        match self {
            Operation::SearchRead => "search_read",
            Operation::Read => "read",
            Operation::Search => "search",
            Operation::SearchCount => "search_count",
            Operation::FieldsGet => "fields_get",
            Operation::NameSearch => "name_search",
            Operation::WebSearchRead => "web_search_read",
            Operation::WebRead => "web_read",
            Operation::ReadGroup => "read_group",
            Operation::Create => "create",
            Operation::Write => "write",
            Operation::Unlink => "unlink",
            Operation::Call => "call",
        }
    }

    /// The ORM method it calls: the segment itself, except for [`Operation::Call`] (`None`: the
    /// body names the method).
    pub fn method(&self) -> Option<&'static str> {
        match self {
            Operation::Call => None,
            op => Some(op.as_str()),
        }
    }

    /// The body members the operation takes.
    pub fn fields(&self) -> &'static [&'static str] {
        match self {
            Operation::SearchRead => &[
                "model", "domain", "fields", "offset", "limit", "order", "context", "kwargs",
            ],
            Operation::Read => &["model", "ids", "fields", "context", "kwargs"],
            Operation::Search => &[
                "model", "domain", "offset", "limit", "order", "context", "kwargs",
            ],
            Operation::SearchCount => &["model", "domain", "limit", "context", "kwargs"],
            Operation::FieldsGet => &["model", "fields", "attributes", "context", "kwargs"],
            Operation::NameSearch => &[
                "model", "name", "domain", "operator", "limit", "context", "kwargs",
            ],
            Operation::WebSearchRead => &[
                "model",
                "domain",
                "fields",
                "specification",
                "offset",
                "limit",
                "order",
                "count_limit",
                "context",
                "kwargs",
            ],
            Operation::WebRead => &[
                "model",
                "ids",
                "fields",
                "specification",
                "context",
                "kwargs",
            ],
            Operation::ReadGroup => &[
                "model", "domain", "fields", "groupby", "offset", "limit", "order", "lazy",
                "context", "kwargs",
            ],
            Operation::Create => &["model", "values", "context", "kwargs"],
            Operation::Write => &["model", "ids", "values", "context", "kwargs"],
            Operation::Unlink => &["model", "ids", "context", "kwargs"],
            Operation::Call => &["model", "method", "ids", "args", "kwargs", "context"],
        }
    }

    /// `` `search_read` `` etc., for error messages.
    fn quoted(&self) -> &'static str {
        match self {
            Operation::SearchRead => "`search_read`",
            Operation::Read => "`read`",
            Operation::Search => "`search`",
            Operation::SearchCount => "`search_count`",
            Operation::FieldsGet => "`fields_get`",
            Operation::NameSearch => "`name_search`",
            Operation::WebSearchRead => "`web_search_read`",
            Operation::WebRead => "`web_read`",
            Operation::ReadGroup => "`read_group`",
            Operation::Create => "`create`",
            Operation::Write => "`write`",
            Operation::Unlink => "`unlink`",
            Operation::Call => "`call`",
        }
    }
}

/// The operation of a path segment, or [`ApiError::UnknownOperation`] (404).
pub fn parse_operation(segment: &str) -> Result<Operation, ApiError> {
    Operation::parse(segment).ok_or_else(|| ApiError::UnknownOperation(echo(segment)))
}

/// `search_read, read, ..., call`, for the unknown-operation message.
pub(super) fn operation_names() -> String {
    Operation::ALL
        .iter()
        .map(Operation::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One validated ORM call: what `/web/dataset/call_kw` runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiCall {
    /// The model (checked against Odoo's model-name rule).
    pub model: String,
    /// The ORM method (a public Python identifier).
    pub method: String,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments, `context` included.
    pub kwargs: Map<String, Value>,
}

impl ApiCall {
    /// `/web/dataset/call_kw/{model}/{method}`: the path the web client would use (Odoo ignores
    /// the suffix; it is there for Odoo's logs). Both names were checked, so the path needs no
    /// escaping.
    pub fn path(&self) -> String {
        format!("/web/dataset/call_kw/{}/{}", self.model, self.method)
    }

    /// The `call_kw` params: `{"model", "method", "args", "kwargs"}`.
    pub fn to_params(&self) -> Value {
        json!({
            "model": self.model,
            "method": self.method,
            "args": self.args,
            "kwargs": self.kwargs,
        })
    }

    /// A [`Shape::CallKw`] [`Call`] at [`ApiCall::path`], the same call
    /// [`crate::jsonrpc::parse`] returns for the equivalent web-client body: so it is classed
    /// ([`Call::class`]), limited, cached and invalidated as that one, and
    /// [`Call::to_body`] writes the JSON-RPC envelope to send upstream. It has no `id` and no
    /// credential: the glue sets [`Call::credential`] to the caller's Odoo session.
    pub fn into_call(self) -> Call {
        let mut call = Call::new(Shape::CallKw, self.path());
        call.model = Some(self.model);
        call.method = Some(self.method);
        call.set_args(self.args);
        call.set_kwargs(self.kwargs);
        call
    }
}

/// Maps an `/api/v1/.../odoo/{operation}` body onto the Odoo call it stands for (see the
/// module docs for the rules, and [`Operation`] for each signature). Never panics.
///
/// | operation | `args` | `kwargs` (only what is given, plus `context`) |
/// |---|---|---|
/// | `search_read` | `[]` | `domain` (default `[]`), `fields`, `offset`, `limit`, `order` |
/// | `search` | `[]` | `domain` (default `[]`), `offset`, `limit`, `order` |
/// | `search_count` | `[]` | `domain` (default `[]`), `limit` |
/// | `read` | `[ids]` | `fields` |
/// | `fields_get` | `[]` | `allfields` (from `fields`), `attributes` |
/// | `name_search` | `[]` | `name`, `args` (from `domain`), `operator`, `limit` |
/// | `web_search_read` | `[]` | `domain` (default `[]`), `specification`, `offset`, `limit`, `order`, `count_limit` |
/// | `web_read` | `[ids]` | `specification` |
/// | `read_group` | `[]` | `domain` (default `[]`), `fields` (default `[]`), `groupby`, `offset`, `limit`, `orderby` (from `order`), `lazy` |
/// | `create` | `[values]` | |
/// | `write` | `[ids, values]` | |
/// | `unlink` | `[ids]` | |
/// | `call` | `[ids?, ...args]` | `kwargs` |
///
/// `specification` is the body's `specification` object, or built from `fields`: each name
/// becomes `{"name": {}}` (giving both is refused); one of them is required, as in the 17/18
/// signature (16's `web_search_read` takes `fields` instead: 16 callers use `search_read`).
/// `name_search` sends the domain as `args`, its name in 16, 17 and 18.
pub fn build_call(op: Operation, body: &[u8]) -> Result<ApiCall, ApiError> {
    let mut b = object_body(body)?;
    only(&b, op.quoted(), op.fields())?;
    let model = take_model(&mut b)?;
    let method = match op.method() {
        Some(m) => m.to_owned(),
        None => take_method(&mut b)?,
    };
    // Keyword arguments from the members, in signature order (the map sorts them anyway).
    let mut kw = Map::new();
    let mut args = Vec::new();
    match op {
        Operation::SearchRead | Operation::Search | Operation::SearchCount => {
            put(&mut kw, "domain", take_domain(&mut b)?);
            if op == Operation::SearchRead {
                put(&mut kw, "fields", take_fields(&mut b, "fields")?);
            }
            if op != Operation::SearchCount {
                put(&mut kw, "offset", take_uint(&mut b, "offset")?);
            }
            put(&mut kw, "limit", take_uint(&mut b, "limit")?);
            if op != Operation::SearchCount {
                put(&mut kw, "order", take_str(&mut b, "order")?);
            }
        }
        Operation::Read => {
            args.push(require(take_ids(&mut b)?, "ids")?);
            put(&mut kw, "fields", take_fields(&mut b, "fields")?);
        }
        Operation::FieldsGet => {
            put(&mut kw, "allfields", take_fields(&mut b, "fields")?);
            put(&mut kw, "attributes", take_fields(&mut b, "attributes")?);
        }
        Operation::NameSearch => {
            put(&mut kw, "name", take_str(&mut b, "name")?);
            put(&mut kw, "args", take_domain(&mut b)?);
            put(&mut kw, "operator", take_str(&mut b, "operator")?);
            put(&mut kw, "limit", take_uint(&mut b, "limit")?);
        }
        Operation::WebSearchRead => {
            put(&mut kw, "domain", take_domain(&mut b)?);
            put(&mut kw, "specification", Some(take_specification(&mut b)?));
            put(&mut kw, "offset", take_uint(&mut b, "offset")?);
            put(&mut kw, "limit", take_uint(&mut b, "limit")?);
            put(&mut kw, "order", take_str(&mut b, "order")?);
            put(&mut kw, "count_limit", take_uint(&mut b, "count_limit")?);
        }
        Operation::WebRead => {
            args.push(require(take_ids(&mut b)?, "ids")?);
            put(&mut kw, "specification", Some(take_specification(&mut b)?));
        }
        Operation::ReadGroup => {
            put(&mut kw, "domain", take_domain(&mut b)?);
            put(&mut kw, "fields", take_fields(&mut b, "fields")?);
            put(&mut kw, "groupby", Some(take_groupby(&mut b)?));
            put(&mut kw, "offset", take_uint(&mut b, "offset")?);
            put(&mut kw, "limit", take_uint(&mut b, "limit")?);
            put(&mut kw, "orderby", take_str(&mut b, "order")?);
            put(&mut kw, "lazy", take_bool(&mut b, "lazy")?);
        }
        Operation::Create => args.push(take_values(&mut b, true)?),
        Operation::Write => {
            args.push(require(take_ids(&mut b)?, "ids")?);
            args.push(take_values(&mut b, false)?);
        }
        Operation::Unlink => args.push(require(take_ids(&mut b)?, "ids")?),
        Operation::Call => {
            if let Some(ids) = take_ids(&mut b)? {
                args.push(ids);
            }
            match b.remove("args") {
                None => {}
                Some(Value::Array(more)) => args.extend(more),
                Some(_) => return Err(invalid("args", "a list")),
            }
        }
    }
    if let Some(context) = b.remove("context") {
        if !context.is_object() {
            return Err(invalid("context", "an object"));
        }
        kw.insert("context".into(), context);
    }
    // The body's own kwargs: added, never overriding (a clash is refused).
    match b.remove("kwargs") {
        None => {}
        Some(Value::Object(extra)) => {
            for (key, value) in extra {
                if kw.contains_key(&key) {
                    return Err(ApiError::KwargConflict(echo(&key)));
                }
                kw.insert(key, value);
            }
        }
        Some(_) => return Err(invalid("kwargs", "an object")),
    }
    // Defaults the signatures require (all `[]`), when neither a member nor `kwargs` gave them.
    let defaults: &[&str] = match op {
        Operation::SearchRead
        | Operation::Search
        | Operation::SearchCount
        | Operation::WebSearchRead => &["domain"],
        Operation::ReadGroup => &["domain", "fields"],
        _ => &[],
    };
    for key in defaults {
        if !kw.contains_key(*key) {
            kw.insert((*key).into(), Value::Array(Vec::new()));
        }
    }
    Ok(ApiCall {
        model,
        method,
        args,
        kwargs: kw,
    })
}

fn invalid(field: &'static str, expected: &'static str) -> ApiError {
    ApiError::Invalid { field, expected }
}

fn require<T>(value: Option<T>, field: &'static str) -> Result<T, ApiError> {
    value.ok_or(ApiError::Missing(field))
}

fn put(kw: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        kw.insert(key.into(), value);
    }
}

/// `model`: required, Odoo's `check_object_name` rule (`^[a-z0-9_.]+$`), at most
/// [`MAX_NAME_LEN`] bytes.
fn take_model(b: &mut Map<String, Value>) -> Result<String, ApiError> {
    let model = require(take_string(b, "model")?, "model")?;
    let valid = !model.is_empty()
        && model.len() <= MAX_NAME_LEN
        && model
            .bytes()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.'));
    if valid {
        Ok(model)
    } else {
        Err(invalid(
            "model",
            "an Odoo model name (lowercase letters, digits, `_` and `.`, e.g. `res.partner`)",
        ))
    }
}

/// `call`'s `method`: required, a Python identifier (ASCII), at most [`MAX_NAME_LEN`] bytes,
/// not private.
fn take_method(b: &mut Map<String, Value>) -> Result<String, ApiError> {
    let method = require(take_string(b, "method")?, "method")?;
    let valid = method.len() <= MAX_NAME_LEN
        && method
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && method
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_');
    if !valid {
        return Err(invalid(
            "method",
            "a method name (ASCII letters, digits and `_`, not starting with a digit)",
        ));
    }
    if method.starts_with('_') {
        return Err(ApiError::PrivateMethod(echo(&method)));
    }
    Ok(method)
}

/// `ids`: a list of record ids (integers from 1 to [`MAX_RECORD_ID`]), as a JSON list.
fn take_ids(b: &mut Map<String, Value>) -> Result<Option<Value>, ApiError> {
    match b.remove("ids") {
        None => Ok(None),
        Some(Value::Array(ids))
            if ids.iter().all(|id| {
                id.as_u64()
                    .is_some_and(|n| (1..=MAX_RECORD_ID).contains(&n))
            }) =>
        {
            Ok(Some(Value::Array(ids)))
        }
        Some(_) => Err(invalid(
            "ids",
            "a list of record ids (positive integers up to 2147483647)",
        )),
    }
}

/// `domain`: a list (its terms are Odoo's to check).
fn take_domain(b: &mut Map<String, Value>) -> Result<Option<Value>, ApiError> {
    match b.remove("domain") {
        None => Ok(None),
        Some(domain @ Value::Array(_)) => Ok(Some(domain)),
        Some(_) => Err(invalid("domain", "a list (an Odoo domain)")),
    }
}

/// A list of names (`fields`, `attributes`), as a JSON list.
fn take_fields(b: &mut Map<String, Value>, field: &'static str) -> Result<Option<Value>, ApiError> {
    Ok(take_strings(b, field)?.map(|names| names.into_iter().map(Value::String).collect()))
}

fn take_uint(b: &mut Map<String, Value>, field: &'static str) -> Result<Option<Value>, ApiError> {
    match b.remove(field) {
        None => Ok(None),
        Some(n) if n.is_u64() => Ok(Some(n)),
        Some(_) => Err(invalid(field, "a non-negative integer")),
    }
}

fn take_str(b: &mut Map<String, Value>, field: &'static str) -> Result<Option<Value>, ApiError> {
    Ok(take_string(b, field)?.map(Value::String))
}

fn take_bool(b: &mut Map<String, Value>, field: &'static str) -> Result<Option<Value>, ApiError> {
    match b.remove(field) {
        None => Ok(None),
        Some(v @ Value::Bool(_)) => Ok(Some(v)),
        Some(_) => Err(invalid(field, "true or false")),
    }
}

/// `groupby`: required, a field name or a list of them (Odoo takes both).
fn take_groupby(b: &mut Map<String, Value>) -> Result<Value, ApiError> {
    match b.remove("groupby") {
        None => Err(ApiError::Missing("groupby")),
        Some(v @ Value::String(_)) => Ok(v),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(Value::Array(items)),
        Some(_) => Err(invalid("groupby", "a field name or a list of field names")),
    }
}

/// The `web_*` specification: the `specification` object (each value an object), or `fields`
/// turned into `{"name": {}}` each. Exactly one of them.
fn take_specification(b: &mut Map<String, Value>) -> Result<Value, ApiError> {
    let fields = take_strings(b, "fields")?;
    match (b.remove("specification"), fields) {
        (Some(_), Some(_)) => Err(ApiError::Exclusive("fields", "specification")),
        (None, None) => Err(ApiError::MissingOneOf("fields", "specification")),
        (None, Some(names)) => Ok(Value::Object(
            names
                .into_iter()
                .map(|name| (name, Value::Object(Map::new())))
                .collect(),
        )),
        (Some(Value::Object(spec)), None) if spec.values().all(Value::is_object) => {
            Ok(Value::Object(spec))
        }
        (Some(_), None) => Err(invalid(
            "specification",
            "an object of field specifications (`{\"name\": {}, ...}`)",
        )),
    }
}

/// `values`: required; an object, or for `create` (`list_ok`) also a list of objects.
fn take_values(b: &mut Map<String, Value>, list_ok: bool) -> Result<Value, ApiError> {
    match b.remove("values") {
        None => Err(ApiError::Missing("values")),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(Value::Array(items)) if list_ok && items.iter().all(Value::is_object) => {
            Ok(Value::Array(items))
        }
        Some(_) if list_ok => Err(invalid("values", "an object or a list of objects")),
        Some(_) => Err(invalid("values", "an object")),
    }
}
