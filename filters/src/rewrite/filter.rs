//! The built-in optimizer filter (issue 5): canonical domains, `exclude_binary` field
//! selection, limit caps and `read` batching, applied per tenant from the configuration
//! generation's [`OptimizerSet`], and reported in the answer.
//!
//! Request side, in this order, each step seeing the previous one's call:
//!
//! 1. **Canonical domains** (`canonical_domains: forward`, the default): a search's domain is
//!    replaced by [`canonicalise`]'s form when that differs. `canonicalise` answers only for
//!    domains whose rewrite it proves equivalent; anything else goes as sent.
//! 2. **Field selection** (`default_fields: exclude_binary`, opt-in): a `read`/`search_read`
//!    without `fields` gets the model's stored, non-binary fields the caller may read, from
//!    [`FieldsCatalog`] asked with the caller's credential. No credential, or Odoo not
//!    answering `fields_get`: the call goes as sent.
//! 3. **Limit caps** ([`cap_limit`]).
//! 4. **Read batching**: a `read` of more ids than its cap is split ([`split_read`]) into
//!    batches sent concurrently (at most `read_concurrency` in flight) with the caller's
//!    credential ([`OdooClient::call_as`]), merged in the original order ([`merge_read`]), and
//!    answered by this filter in the caller's protocol (XML-RPC callers get a `methodResponse`
//!    as Odoo writes it). An error in any batch is the answer (the first in plan order), in the
//!    shape Odoo gives it (XML-RPC: Odoo's fault codes, HTTP 200); never partial data.
//!
//! Every change is listed in `X-BridgeCore-Rewrite`, comma-separated, in the order above:
//! `domain`, `fields`, `limit` (a capped `limit`, with `X-BridgeCore-Limit-Capped`), `batch`
//! (a `read` answered from batches: the caller got every record, so it is not `limit`).
//! Other filters add their own tags with [`note_rewrite`]; this filter writes the header once
//! from all of them.
//!
//! # Routes
//!
//! Caps and batching follow `limit_caps` (default: `/api/v1` and the RPC routes on, the web
//! client's cookie routes off). Canonical domains are forwarded on the `/api/v1` and RPC routes
//! only: the web client's cookie routes keep the domain as sent, because Odoo echoes domains
//! back (`read_group`'s `__domain`) and the web client must get exactly what Odoo would answer
//! unless ops turn a rewrite on for it; its cache keys still use the canonical form. Field
//! selection is opt-in and applies wherever it is on. XML-RPC is an RPC route like the others:
//! its reads are batched as the caller (`object.execute_kw` and `execute` alike; the batches go
//! to Odoo as `/jsonrpc` `execute_kw` with the same `(db, uid, password)`). `call_button` is a
//! write: never touched.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt};
use http::{HeaderName, HeaderValue};
use serde_json::{json, Value};

use super::fields::{non_binary_stored, FieldsCatalog};
use super::limits::{cap_limit, header_value, merge_read, split_read, Capped, CAPPED_HEADER};
use super::settings::{DefaultFields, DomainMode, Optimizer, OptimizerSet};
use crate::call::{Call, Credential, Shape};
use crate::domain::{canonicalise, takes_domain};
use crate::error::ErrorKind;
use crate::filter::{Decision, Exchange, Filter, Reply, ResponseHead};
use crate::odoo::OdooError;

/// `X-BridgeCore-Rewrite`: the rewrites BridgeCore made to the call, comma-separated.
pub const REWRITE_HEADER: &str = "x-bridgecore-rewrite";

/// Where caps apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapRoutes {
    /// `/api/v1/systems/{id}/odoo/...`.
    pub api: bool,
    /// `/jsonrpc`, `/xmlrpc`, `/json/2`: callers with their own credentials.
    pub rpc: bool,
    /// The web client's cookie-session routes (`/web/dataset/call_kw`, ...).
    pub web: bool,
}

impl Default for CapRoutes {
    /// Issue 5's defaults: API and RPC routes on, the web client's routes off.
    fn default() -> Self {
        CapRoutes {
            api: true,
            rpc: true,
            web: false,
        }
    }
}

/// The rewrites made to one call so far, kept in the exchange's state: every filter adds its
/// tag with [`note_rewrite`], and [`OptimizerFilter`] writes them all as one
/// `X-BridgeCore-Rewrite` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrites(pub Vec<&'static str>);

impl Rewrites {
    /// The header value: the tags, comma-separated, each once.
    pub fn header_value(&self) -> String {
        self.0.join(",")
    }
}

/// Records that a rewrite tagged `tag` (`domain`, `fields`, `limit`, `batch`, `expand`, ...)
/// was made to the exchange's call.
pub fn note_rewrite(state: &mut http::Extensions, tag: &'static str) {
    let rewrites = state.get_or_insert_default::<Rewrites>();
    if !rewrites.0.contains(&tag) {
        rewrites.0.push(tag);
    }
}

/// The rewrites recorded for the exchange, if any.
pub fn rewrites(state: &http::Extensions) -> Option<&Rewrites> {
    state.get::<Rewrites>().filter(|r| !r.0.is_empty())
}

/// Which kind of route a call arrived on, for the per-route switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteKind {
    Api,
    Rpc,
    Web,
}

/// Whether the tenant's caps apply on this call's route.
fn caps_apply(opt: &Optimizer, kind: RouteKind) -> bool {
    match kind {
        RouteKind::Api => opt.cap_routes.api,
        RouteKind::Rpc => opt.cap_routes.rpc,
        RouteKind::Web => opt.cap_routes.web,
    }
}

/// The `read` cap for `model` where caps apply on `call`'s route: the field expansion, which
/// answers its calls itself, splits its own reads by it.
pub(crate) fn read_cap(
    opt: &Optimizer,
    ex: &Exchange<'_>,
    call: &Call,
    model: &str,
) -> Option<u64> {
    if caps_apply(opt, route_kind(ex, call)) {
        opt.caps.cap_for(model, "read")
    } else {
        None
    }
}

fn route_kind(ex: &Exchange<'_>, call: &Call) -> RouteKind {
    match call.shape {
        Shape::JsonRpc | Shape::XmlRpc { .. } | Shape::Json2 => RouteKind::Rpc,
        Shape::CallKw | Shape::CallButton | Shape::WebJson => {
            if ex.request.uri.path().starts_with("/api/v1/") {
                RouteKind::Api
            } else {
                RouteKind::Web
            }
        }
    }
}

/// The optimizer's rewrites (see the module documentation).
#[derive(Debug, Clone)]
pub struct OptimizerFilter {
    set: Arc<OptimizerSet>,
    fields: Arc<FieldsCatalog>,
}

/// The optimizer filter under its first name (it began with limit caps only).
pub type LimitCapFilter = OptimizerFilter;

impl OptimizerFilter {
    /// A filter applying `set`'s settings, asking field lists of `fields`.
    pub fn new(set: Arc<OptimizerSet>, fields: Arc<FieldsCatalog>) -> Self {
        OptimizerFilter { set, fields }
    }
}

#[async_trait]
impl Filter for OptimizerFilter {
    fn name(&self) -> &'static str {
        "optimizer"
    }

    async fn on_request(&self, ex: &mut Exchange<'_>, call: &Call) -> Decision {
        if call.shape == Shape::CallButton || call.shape == Shape::WebJson {
            return Decision::Continue;
        }
        let opt = self.set.for_tenant(ex.tenant);
        let kind = route_kind(ex, call);
        let caps_on = caps_apply(opt, kind);
        let domains_on = opt.domains == DomainMode::Forward && kind != RouteKind::Web;
        let fields_on = opt.default_fields == DefaultFields::ExcludeBinary;
        if !caps_on && !domains_on && !fields_on {
            // The web client's calls under the defaults: nothing to do, nothing copied.
            return Decision::Continue;
        }
        let mut new = call.clone();
        let mut changed = false;
        if domains_on && canonical_domain(&mut new) {
            note_rewrite(ex.state, "domain");
            changed = true;
        }
        if fields_on {
            if let Some(fields) = self.default_fields(ex, &new).await {
                if set_fields(&mut new, fields) {
                    note_rewrite(ex.state, "fields");
                    changed = true;
                }
            }
        }
        if caps_on {
            if let Some(capped) = cap_limit(&mut new, &opt.caps) {
                ex.state.insert(capped);
                note_rewrite(ex.state, "limit");
                changed = true;
            }
            if let Some(reply) = self.batched_read(ex, &new, opt).await {
                return Decision::Respond(reply);
            }
        }
        if changed {
            Decision::Rewrite(Box::new(new))
        } else {
            Decision::Continue
        }
    }

    async fn on_response(&self, ex: &mut Exchange<'_>, _call: &Call, head: &mut ResponseHead<'_>) {
        if let Some(capped) = ex.state.get::<Capped>() {
            if let Ok(v) = HeaderValue::from_str(&header_value(capped)) {
                head.set(HeaderName::from_static(CAPPED_HEADER), v);
            }
        }
        if let Some(r) = rewrites(ex.state) {
            if let Ok(v) = HeaderValue::from_str(&r.header_value()) {
                head.set(HeaderName::from_static(REWRITE_HEADER), v);
            }
        }
    }
}

impl OptimizerFilter {
    /// The explicit field list for a `read`/`search_read` asking for every column, or `None`
    /// when the call names its fields, is another method, or the list cannot be had.
    async fn default_fields(&self, ex: &Exchange<'_>, call: &Call) -> Option<Vec<String>> {
        let model = call.model.as_deref()?;
        fields_slot(call)?;
        if call.credential == Credential::None {
            return None;
        }
        let fields = self
            .fields
            .get(ex.odoo, ex.tenant, &call.credential, model)
            .await
            .ok()?;
        let list = non_binary_stored(&fields);
        (!list.is_empty()).then_some(list)
    }

    /// Answers a `read` of more ids than its cap from concurrent batches, or `None` when the
    /// call needs no split or cannot be split safely (then it goes on as it is).
    async fn batched_read(
        &self,
        ex: &mut Exchange<'_>,
        call: &Call,
        opt: &Optimizer,
    ) -> Option<Reply> {
        if call.credential == Credential::None {
            return None;
        }
        // Dotted field names are the expansion filter's (later in the chain): Odoo would
        // refuse them in a batch.
        if opt.expand_dotted && asks_dotted_fields(call) {
            return None;
        }
        let model = call.model.as_deref()?;
        let cap = opt.caps.cap_for(model, "read")?;
        let plan = split_read(call, cap)?;
        // `execute_kw`'s kwargs go as they are; `execute` has only positional arguments.
        let batches = plan.calls(call);
        let odoo = ex.odoo;
        let credential = &call.credential;
        let mut answers = stream::iter(batches)
            .map(|batch| async move {
                odoo.call_as(
                    credential,
                    model,
                    "read",
                    batch.args().to_vec(),
                    batch.kwargs().clone(),
                )
                .await
            })
            .buffered(opt.read_concurrency.max(1));
        // Noted first: an error answer also came from batches (and lacks Odoo's traceback).
        note_rewrite(ex.state, "batch");
        let mut results = Vec::with_capacity(plan.batches.len());
        while let Some(answer) = answers.next().await {
            match answer {
                Ok(v) => results.push(v),
                Err(e) => return Some(error_reply(call, &e, ex.state)),
            }
        }
        let merged = match merge_read(results) {
            Ok(v) => v,
            Err(e) => {
                let e = OdooError::Protocol(e.to_string());
                return Some(error_reply(call, &e, ex.state));
            }
        };
        Some(with_headers(result_reply(call, merged), ex.state))
    }
}

/// Whether a `read`'s `fields` (`args[1]` or `kwargs.fields`) names a dotted path.
fn asks_dotted_fields(call: &Call) -> bool {
    let dotted = |v: Option<&Value>| {
        v.and_then(Value::as_array).is_some_and(|f| {
            f.iter()
                .any(|f| f.as_str().is_some_and(|f| f.contains('.')))
        })
    };
    dotted(call.args().get(1)) || dotted(call.kwargs().get("fields"))
}

/// How the call passes its ORM arguments: `(positional, named)` allowed.
fn passing(call: &Call) -> Option<(bool, bool)> {
    match call.shape {
        Shape::CallKw => Some((true, true)),
        Shape::Json2 => Some((false, true)),
        Shape::JsonRpc | Shape::XmlRpc { .. } => {
            match (call.service.as_deref(), call.service_method.as_deref()) {
                (Some("object"), Some("execute_kw")) => Some((true, true)),
                (Some("object"), Some("execute")) => Some((true, false)),
                _ => None,
            }
        }
        Shape::CallButton | Shape::WebJson => None,
    }
}

/// Replaces the call's domain by its canonical form when that differs; `true` when it did.
fn canonical_domain(call: &mut Call) -> bool {
    let Some(method) = call.method.as_deref() else {
        return false;
    };
    if !takes_domain(method) {
        return false;
    }
    let Some((positional, named)) = passing(call) else {
        return false;
    };
    let in_args = positional && !call.args().is_empty();
    let in_kwargs = named && call.kwargs().contains_key("domain");
    let current = match (in_args, in_kwargs) {
        // Both: Python raises "multiple values"; Odoo's error stays Odoo's.
        (true, true) | (false, false) => return false,
        (true, false) => call.args().first(),
        (false, true) => call.kwargs().get("domain"),
    };
    let Some(current) = current else {
        return false;
    };
    let Some(canonical) = canonicalise(current) else {
        return false;
    };
    if canonical == *current {
        return false;
    }
    if in_args {
        if let Some(first) = call.args_mut().first_mut() {
            *first = canonical;
        }
    } else {
        call.kwargs_mut().insert("domain".into(), canonical);
    }
    true
}

/// Where a `read`/`search_read` asking for every column takes its `fields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldsSlot {
    /// `args[1]`, present and empty.
    Arg,
    /// `kwargs.fields`, present and empty, or absent (added there).
    Kwarg,
    /// `execute`, `args` stopping before `fields`: appended (after `search_read`'s domain,
    /// `None`, when that is missing too).
    Append,
}

/// Whether `fields` asks for every column (`None`, `false`, `[]`: Odoo reads all).
fn all_columns(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// Where the call's empty `fields` is, or `None` when it names fields (or cannot be read).
fn fields_slot(call: &Call) -> Option<FieldsSlot> {
    let method = call.method.as_deref()?;
    if !matches!(method, "read" | "search_read") {
        return None;
    }
    let (positional, named) = passing(call)?;
    let args = call.args();
    let kwarg = call.kwargs().get("fields");
    if method == "read" && args.is_empty() && call.shape != Shape::Json2 {
        // No ids: Odoo's own error.
        return None;
    }
    let slot = if positional && args.len() > 1 {
        if kwarg.is_some() {
            return None;
        }
        all_columns(&args[1]).then_some(FieldsSlot::Arg)?
    } else if named {
        match kwarg {
            Some(v) if !all_columns(v) => return None,
            _ => FieldsSlot::Kwarg,
        }
    } else {
        FieldsSlot::Append
    };
    Some(slot)
}

/// Puts `fields` where the call takes them; `true` when it did.
fn set_fields(call: &mut Call, fields: Vec<String>) -> bool {
    let Some(slot) = fields_slot(call) else {
        return false;
    };
    let list = Value::Array(fields.into_iter().map(Value::String).collect());
    match slot {
        FieldsSlot::Arg => match call.args_mut().get_mut(1) {
            Some(v) => *v = list,
            None => return false,
        },
        FieldsSlot::Kwarg => {
            call.kwargs_mut().insert("fields".into(), list);
        }
        FieldsSlot::Append => {
            let args = call.args_mut();
            if args.is_empty() {
                // `search_read(domain=None, fields=...)`.
                args.push(Value::Null);
            }
            args.push(list);
        }
    }
    true
}

/// A successful answer to `call`, in its protocol.
fn result_reply(call: &Call, result: Value) -> Reply {
    match call.shape {
        Shape::Json2 => Reply::json(200, serde_json::to_vec(&result).unwrap_or_default()),
        Shape::XmlRpc { legacy } => Reply::xmlrpc_result(legacy, &result),
        _ => {
            let body = json!({
                "jsonrpc": "2.0",
                "id": call.id.clone().unwrap_or(Value::Null),
                "result": result,
            });
            Reply::json(200, serde_json::to_vec(&body).unwrap_or_default())
        }
    }
}

/// An error of a batch as the answer to `call`: Odoo's own errors in Odoo's shape (JSON-RPC:
/// HTTP 200 with an `error` member; `/json/2`: the HTTP status and `{name, message, ...}`;
/// XML-RPC: HTTP 200 with Odoo's fault for the route), BridgeCore's for an unreachable or
/// silent Odoo. Odoo's traceback (`data.debug`) is not repeated: the internal client does not
/// keep it.
fn error_reply(call: &Call, e: &OdooError, state: &mut http::Extensions) -> Reply {
    let reply = match (e, &call.shape) {
        (OdooError::Odoo { name, message, .. }, Shape::XmlRpc { legacy }) => {
            Reply::xmlrpc_odoo_fault(*legacy, name, message)
        }
        (OdooError::Timeout, Shape::XmlRpc { legacy }) => {
            Reply::xmlrpc_error(*legacy, ErrorKind::GatewayTimeout, TIMEOUT_MESSAGE)
        }
        (OdooError::Unavailable(_) | OdooError::Protocol(_), Shape::XmlRpc { legacy }) => {
            Reply::xmlrpc_error(*legacy, ErrorKind::BadGateway, UNAVAILABLE_MESSAGE)
        }
        (
            OdooError::Odoo {
                code,
                name,
                message,
            },
            Shape::Json2,
        ) => {
            let status = u16::try_from(*code)
                .ok()
                .filter(|s| (400..=599).contains(s))
                .unwrap_or(500);
            let body = json!({
                "name": name,
                "message": message,
                "arguments": [message],
                "context": {},
                "debug": "",
            });
            Reply::json(status, serde_json::to_vec(&body).unwrap_or_default())
        }
        (
            OdooError::Odoo {
                code,
                name,
                message,
            },
            _,
        ) => {
            let title = match code {
                100 => "Odoo Session Expired",
                404 => "404: Not Found",
                _ => "Odoo Server Error",
            };
            let body = json!({
                "jsonrpc": "2.0",
                "id": call.id.clone().unwrap_or(Value::Null),
                "error": {
                    "code": code,
                    "message": title,
                    "data": {
                        "name": name,
                        "debug": "",
                        "message": message,
                        "arguments": [message],
                        "context": {},
                    },
                },
            });
            Reply::json(200, serde_json::to_vec(&body).unwrap_or_default())
        }
        (OdooError::Timeout, _) => {
            Reply::jsonrpc_error(Some(call), ErrorKind::GatewayTimeout, TIMEOUT_MESSAGE)
        }
        (OdooError::Unavailable(_) | OdooError::Protocol(_), _) => {
            Reply::jsonrpc_error(Some(call), ErrorKind::BadGateway, UNAVAILABLE_MESSAGE)
        }
    };
    with_headers(reply, state)
}

const TIMEOUT_MESSAGE: &str = "Odoo did not answer a read batch in time";
const UNAVAILABLE_MESSAGE: &str = "Odoo could not answer a read batch";

/// The optimizer's headers on a reply this filter writes itself (no `on_response` runs for
/// it).
fn with_headers(mut reply: Reply, state: &http::Extensions) -> Reply {
    if let Some(capped) = state.get::<Capped>() {
        if let Ok(v) = HeaderValue::from_str(&header_value(capped)) {
            reply = reply.with_header(HeaderName::from_static(CAPPED_HEADER), v);
        }
    }
    if let Some(r) = rewrites(state) {
        if let Ok(v) = HeaderValue::from_str(&r.header_value()) {
            reply = reply.with_header(HeaderName::from_static(REWRITE_HEADER), v);
        }
    }
    reply
}
