//! Which calls carry fields to expand, where their field list sits, and the calls BridgeCore
//! sends instead.

use serde_json::{Map, Value};

use super::plan::{Plan, Request};
use super::{Form, Layout};
use crate::call::{Call, Credential, Shape};

/// The read methods whose field lists are expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `search_read(domain, fields, offset, limit, order)`.
    SearchRead,
    /// `read(ids, fields, load)`.
    Read,
    /// 16's `web_search_read(domain, fields, offset, limit, order, count_limit)`.
    WebSearchReadFields,
    /// 17+'s `web_search_read(domain, specification, offset, limit, order, count_limit)`.
    WebSearchReadSpec,
}

impl Method {
    /// The Odoo method name.
    pub fn name(self) -> &'static str {
        match self {
            Method::SearchRead => "search_read",
            Method::Read => "read",
            Method::WebSearchReadFields | Method::WebSearchReadSpec => "web_search_read",
        }
    }

    /// How the method shows relational values.
    pub fn form(self) -> Form {
        match self {
            Method::WebSearchReadSpec => Form::Web,
            _ => Form::Classic,
        }
    }

    /// Whether its answer is `{length, records}` rather than a list.
    pub fn paged(self) -> bool {
        matches!(
            self,
            Method::WebSearchReadFields | Method::WebSearchReadSpec
        )
    }
}

/// Where the field list is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// `args[1]`.
    Positional,
    /// `kwargs[name]`.
    Keyword(&'static str),
}

/// A call whose field list names dotted fields (or may get automatic ones), taken apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Which read method.
    pub method: Method,
    /// The call's positional arguments, as the Python method receives them.
    pub args: Vec<Value>,
    /// The call's keyword arguments, `context` included.
    pub kwargs: Map<String, Value>,
    /// What the planner needs.
    pub request: Request,
    /// The caller's own specification ([`Method::WebSearchReadSpec`]).
    pub own_spec: Option<Map<String, Value>>,
    slot: Option<Slot>,
}

/// The shapes whose answers BridgeCore writes: `call_kw`, `/json/2`, and `object.execute_kw` /
/// `execute` over `/jsonrpc` or XML-RPC.
fn shape_ok(call: &Call) -> bool {
    match call.shape {
        Shape::CallKw | Shape::Json2 => true,
        Shape::JsonRpc | Shape::XmlRpc { .. } => {
            call.service.as_deref() == Some("object")
                && matches!(
                    call.service_method.as_deref(),
                    Some("execute_kw" | "execute")
                )
        }
        _ => false,
    }
}

/// The cheap test, without decoding anything: a read method on a shape BridgeCore answers,
/// with a credential, whose arguments' text has a `.` (or that may get automatic expansion).
pub fn candidate(call: &Call, auto: bool) -> bool {
    if !matches!(
        call.method.as_deref(),
        Some("search_read" | "read" | "web_search_read")
    ) || call.model.is_none()
        || call.credential == Credential::None
        || !shape_ok(call)
    {
        return false;
    }
    if auto {
        return true;
    }
    match call.raw_arguments() {
        Some((args, kwargs)) => args.contains('.') || kwargs.contains('.'),
        None => true,
    }
}

fn strings(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Takes a candidate call apart (see [`candidate`]). `None` when the call is not one
/// BridgeCore can expand safely: the field list in two places (Python's `TypeError`), not a
/// list of names, a `load` other than `_classic_read`, a specification whose dotted entries
/// are not `{}`, ...: Odoo answers those itself.
pub fn target(
    call: &Call,
    auto: &std::collections::BTreeMap<String, Vec<String>>,
    layout: Layout,
) -> Option<Target> {
    let model = call.model.clone()?;
    let name = call.method.as_deref()?;
    if !matches!(name, "search_read" | "read" | "web_search_read") || !shape_ok(call) {
        return None;
    }
    let (args, kwargs) = (call.args(), call.kwargs());
    if call.shape == Shape::Json2 && name != "read" && !args.is_empty() {
        return None;
    }
    let positional = args.get(1);
    let (slot, value) = match (
        positional,
        kwargs.get("fields"),
        kwargs.get("specification"),
    ) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) | (None, Some(_), Some(_)) => return None,
        (Some(v), None, None) => (Some(Slot::Positional), Some(v)),
        (None, Some(v), None) => (Some(Slot::Keyword("fields")), Some(v)),
        (None, None, Some(v)) => (Some(Slot::Keyword("specification")), Some(v)),
        (None, None, None) => (None, None),
    };
    let method = match name {
        "search_read" => Method::SearchRead,
        "read" => Method::Read,
        _ => match value {
            Some(Value::Object(_)) => Method::WebSearchReadSpec,
            _ => Method::WebSearchReadFields,
        },
    };
    if slot == Some(Slot::Keyword("specification")) && method != Method::WebSearchReadSpec {
        return None;
    }
    if method == Method::Read {
        let ids = args.first()?.as_array()?;
        if !ids.iter().all(|id| id.as_i64().is_some()) {
            return None;
        }
    }
    if matches!(method, Method::SearchRead | Method::Read) {
        let load = match method {
            Method::Read => args.get(2),
            _ => None,
        }
        .or_else(|| kwargs.get("load"));
        if load.is_some_and(|l| l.as_str() != Some("_classic_read")) {
            return None;
        }
    }
    // Nothing to do (the usual case once the cheap test let a call through): no copy made.
    let dotted = |v: &Value| match v {
        Value::Array(items) => items
            .iter()
            .any(|f| f.as_str().is_some_and(|f| f.contains('.'))),
        Value::Object(spec) => spec.keys().any(|k| k.contains('.')),
        _ => false,
    };
    if auto.is_empty() && !value.is_some_and(dotted) {
        return None;
    }
    let mut own_spec = None;
    let (fields, all_fields) = match (method, value) {
        (Method::WebSearchReadSpec, Some(Value::Object(spec))) => {
            for (key, value) in spec {
                let is_empty = value.as_object().is_some_and(Map::is_empty);
                if key.contains('.') && !is_empty {
                    return None;
                }
            }
            own_spec = Some(spec.clone());
            (spec.keys().cloned().collect(), false)
        }
        (_, None) | (_, Some(Value::Null)) => (Vec::new(), true),
        (_, Some(v)) => {
            let names = strings(v)?;
            let all = names.is_empty();
            (names, all)
        }
    };
    let request = Request {
        model,
        fields,
        all_fields,
        auto: auto.clone(),
        layout,
    };
    if !request.wants_expansion() {
        return None;
    }
    Some(Target {
        method,
        args: args.to_vec(),
        kwargs: kwargs.clone(),
        request,
        own_spec,
        slot,
    })
}

impl Target {
    /// Whether the plan keeps the caller's specification safe: a relational field that is
    /// expanded must have been asked for as `{}` (or not at all), since its value is rebuilt
    /// from the expanded read.
    pub fn spec_compatible(&self, plan: &Plan) -> bool {
        let Some(own) = &self.own_spec else {
            return true;
        };
        plan.roots.iter().all(|&r| {
            own.get(&plan.nodes[r].field)
                .is_none_or(|v| v.as_object().is_some_and(Map::is_empty))
        })
    }

    /// The base call of the 1 + M path: the caller's call with the plan's base fields (the
    /// caller's own field list when it gave none).
    pub fn base_call(&self, plan: &Plan) -> (Vec<Value>, Map<String, Value>) {
        let mut args = self.args.clone();
        let mut kwargs = self.kwargs.clone();
        if let Some(fields) = &plan.base_fields {
            let list = Value::Array(fields.iter().cloned().map(Value::String).collect());
            match self.slot {
                Some(Slot::Positional) => {
                    if let Some(slot) = args.get_mut(1) {
                        *slot = list;
                    }
                }
                Some(Slot::Keyword(name)) => {
                    kwargs.insert(name.to_owned(), list);
                }
                None => {
                    kwargs.insert("fields".to_owned(), list);
                }
            }
        }
        (args, kwargs)
    }

    /// The one call of the 17+ path: `(method, args, kwargs)`, or `None` when the call cannot
    /// be written as one (every field asked, arguments the `web_*` methods do not take, an
    /// `active_test` in the context of a `search_read`, which strips it before reading and
    /// `web_search_read` does not).
    pub fn web_call(
        &self,
        spec: Map<String, Value>,
    ) -> Option<(&'static str, Vec<Value>, Map<String, Value>)> {
        let spec = Value::Object(spec);
        match self.method {
            Method::WebSearchReadSpec => {
                let mut args = self.args.clone();
                let mut kwargs = self.kwargs.clone();
                match self.slot {
                    Some(Slot::Positional) => *args.get_mut(1)? = spec,
                    _ => {
                        kwargs.insert("specification".into(), spec);
                    }
                }
                Some(("web_search_read", args, kwargs))
            }
            Method::WebSearchReadFields => None,
            Method::SearchRead => {
                if self.args.len() > 5 {
                    return None;
                }
                let allowed = [
                    "domain", "fields", "offset", "limit", "order", "context", "load",
                ];
                if self.kwargs.keys().any(|k| !allowed.contains(&k.as_str())) {
                    return None;
                }
                let context = self.kwargs.get("context");
                if context
                    .and_then(Value::as_object)
                    .is_some_and(|c| c.contains_key("active_test"))
                {
                    return None;
                }
                let arg = |i: usize, name: &str| {
                    self.args
                        .get(i)
                        .or_else(|| self.kwargs.get(name))
                        .filter(|v| !v.is_null())
                        .cloned()
                };
                let mut kwargs = Map::new();
                kwargs.insert(
                    "domain".into(),
                    arg(0, "domain").unwrap_or(Value::Array(Vec::new())),
                );
                kwargs.insert("specification".into(), spec);
                let offset = arg(2, "offset");
                let limit = arg(3, "limit");
                if let Some(o) = &offset {
                    kwargs.insert("offset".into(), o.clone());
                }
                if let Some(l) = &limit {
                    kwargs.insert("limit".into(), l.clone());
                    // A full page then reaches `count_limit`: no extra `search_count`.
                    let from = offset.as_ref().and_then(Value::as_u64).unwrap_or(0);
                    if let Some(n) = l.as_u64().filter(|&n| n > 0) {
                        kwargs.insert("count_limit".into(), Value::from(from.saturating_add(n)));
                    }
                }
                if let Some(order) = arg(4, "order") {
                    kwargs.insert("order".into(), order);
                }
                if let Some(c) = context {
                    kwargs.insert("context".into(), c.clone());
                }
                Some(("web_search_read", Vec::new(), kwargs))
            }
            Method::Read => {
                if self.args.len() > 3 {
                    return None;
                }
                let allowed = ["fields", "context", "load"];
                if self.kwargs.keys().any(|k| !allowed.contains(&k.as_str())) {
                    return None;
                }
                let mut kwargs = Map::new();
                kwargs.insert("specification".into(), spec);
                if let Some(c) = self.kwargs.get("context") {
                    kwargs.insert("context".into(), c.clone());
                }
                Some(("web_read", vec![self.args.first()?.clone()], kwargs))
            }
        }
    }

    /// The context every read runs with (the caller's).
    pub fn context(&self) -> Option<&Value> {
        self.kwargs.get("context")
    }
}
