//! The filter that answers calls with dotted fields itself (see the module documentation).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt};
use http::{HeaderName, HeaderValue};
use serde_json::{json, Map, Value};

use super::call::{self, Method, Target};
use super::merge::{ids_of, Expansion, LevelRead};
use super::plan::{plan, Plan, Planned};
use super::{spec, ExpandError, Form, Layout};
use crate::call::{Call, Credential, Shape};
use crate::error::ErrorKind;
use crate::filter::{Decision, Exchange, Filter, Reply};
use crate::odoo::{OdooClient, OdooError};
use crate::rewrite::{
    header_value, note_rewrite, read_cap, rewrites, Capped, FieldsCatalog, OptimizerSet,
    CAPPED_HEADER, REWRITE_HEADER,
};

/// The token of `X-BridgeCore-Rewrite` when fields were expanded.
pub const EXPAND_TOKEN: &str = "expand";

/// How many models one call may need `fields_get` for (a bound on planning rounds: each
/// relational segment names at most one new model).
const MAX_MODELS: usize = 64;

/// Answers `search_read` / `read` / `web_search_read` calls with dotted fields (and, on
/// `/api/v1`, configured automatic expansion) with batched reads as the caller.
///
/// Put it after the limit caps in the chain: it runs the call as the caps left it, and reports
/// both rewrites (`X-BridgeCore-Rewrite: limit,expand`, `X-BridgeCore-Limit-Capped`) since it
/// answers itself.
pub struct ExpandFilter {
    settings: Arc<OptimizerSet>,
    catalog: Arc<FieldsCatalog>,
    /// Tenant → Odoo major version, once known.
    versions: Mutex<HashMap<String, u32>>,
}

impl std::fmt::Debug for ExpandFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpandFilter").finish_non_exhaustive()
    }
}

/// Why an expansion could not answer with a result.
enum Failure {
    /// Odoo refused a call (the caller gets that error).
    Odoo(OdooError),
    /// An answer that is not what `read` / `web_read` give.
    Shape(ExpandError),
}

impl From<OdooError> for Failure {
    fn from(e: OdooError) -> Self {
        Failure::Odoo(e)
    }
}

impl From<ExpandError> for Failure {
    fn from(e: ExpandError) -> Self {
        Failure::Shape(e)
    }
}

impl ExpandFilter {
    /// A filter with this generation's settings and `fields_get` cache.
    pub fn new(settings: Arc<OptimizerSet>, catalog: Arc<FieldsCatalog>) -> Self {
        ExpandFilter {
            settings,
            catalog,
            versions: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's Odoo major version, asked once (`None` while Odoo cannot say).
    async fn version(&self, ex: &Exchange<'_>) -> Option<u32> {
        if let Ok(map) = self.versions.lock() {
            if let Some(v) = map.get(ex.tenant) {
                return Some(*v);
            }
        }
        let v = ex.odoo.server_major_version().await.ok()?;
        if let Ok(mut map) = self.versions.lock() {
            map.insert(ex.tenant.to_owned(), v);
        }
        Some(v)
    }

    /// Plans, asking `fields_get` (cached) for each model the paths reach. `None`: leave the
    /// call to Odoo.
    async fn plan(
        &self,
        ex: &Exchange<'_>,
        credential: &Credential,
        target: &Target,
    ) -> Option<Plan> {
        let mut known: HashMap<String, Arc<Map<String, Value>>> = HashMap::new();
        for _ in 0..=MAX_MODELS {
            match plan(&target.request, &known) {
                Planned::Ready(p) => return Some(p),
                Planned::Skip(_) => return None,
                Planned::NeedFields(model) => {
                    let fields = self
                        .catalog
                        .get(ex.odoo, ex.tenant, credential, &model)
                        .await
                        .ok()?;
                    known.insert(model, fields);
                }
            }
        }
        None
    }
}

/// `read` of one level's ids as the caller. Odoo's `read` leaves deleted ids out; a server that
/// answers `MissingError` instead gets the ids that still exist read again (`exists` is not
/// subject to record rules, so an `AccessError` still surfaces on the second read).
async fn read_level(
    odoo: &dyn OdooClient,
    credential: &Credential,
    read: &LevelRead,
    context: Option<&Value>,
    pieces: Pieces,
) -> Result<Value, OdooError> {
    in_pieces(&read.ids, pieces, |ids| {
        read_existing(odoo, credential, read, ids, context)
    })
    .await
}

/// How the expansion's own reads are split: at most `cap` ids per `read` (the tenant's read
/// cap on this route, `None` where caps are off), `concurrency` pieces in flight.
#[derive(Debug, Clone, Copy)]
struct Pieces {
    cap: Option<u64>,
    concurrency: usize,
}

/// Reads `ids` in pieces of at most the cap, concurrently, and joins the answers in order:
/// what one `read` returns (it answers records in the order of its ids), without Odoo reading
/// more records at once than the cap allows (issue 5 item 1). Any piece's error is the answer.
async fn in_pieces<F, Fut>(ids: &[i64], pieces: Pieces, read: F) -> Result<Value, OdooError>
where
    F: Fn(Vec<i64>) -> Fut,
    Fut: std::future::Future<Output = Result<Value, OdooError>>,
{
    let cap = pieces
        .cap
        .and_then(|c| usize::try_from(c).ok())
        .filter(|&c| c > 0 && ids.len() > c);
    let Some(cap) = cap else {
        return read(ids.to_vec()).await;
    };
    let chunks: Vec<Vec<i64>> = ids.chunks(cap).map(<[i64]>::to_vec).collect();
    let answers: Vec<Result<Value, OdooError>> = stream::iter(chunks)
        .map(read)
        .buffered(pieces.concurrency.max(1))
        .collect()
        .await;
    let mut all = Vec::with_capacity(ids.len());
    for answer in answers {
        match answer? {
            Value::Array(rows) => all.extend(rows),
            other => {
                return Err(OdooError::Protocol(format!(
                    "a read answered {} instead of a list",
                    kind_of(&other)
                )))
            }
        }
    }
    Ok(Value::Array(all))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The ids of a base `read` / `web_read` (`args[0]`), when they are a plain list of ids.
fn base_ids(method: &str, args: &[Value]) -> Option<Vec<i64>> {
    if !matches!(method, "read" | "web_read") {
        return None;
    }
    args.first()?
        .as_array()?
        .iter()
        .map(Value::as_i64)
        .collect()
}

/// The base call as the caller: a `read`/`web_read` of more ids than the cap goes in pieces.
async fn base_call(
    odoo: &dyn OdooClient,
    credential: &Credential,
    model: &str,
    method: &str,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
    pieces: Pieces,
) -> Result<Value, OdooError> {
    match base_ids(method, &args) {
        Some(ids) => {
            in_pieces(&ids, pieces, |ids| {
                let mut args = args.clone();
                args[0] = Value::Array(ids.into_iter().map(Value::from).collect());
                let kwargs = kwargs.clone();
                async move { odoo.call_as(credential, model, method, args, kwargs).await }
            })
            .await
        }
        None => odoo.call_as(credential, model, method, args, kwargs).await,
    }
}

/// One piece of a level's `read`; see [`read_level`].
async fn read_existing(
    odoo: &dyn OdooClient,
    credential: &Credential,
    read: &LevelRead,
    ids_to_read: Vec<i64>,
    context: Option<&Value>,
) -> Result<Value, OdooError> {
    let kwargs = |with_fields: bool| {
        let mut kw = Map::new();
        if with_fields {
            kw.insert(
                "fields".into(),
                Value::Array(read.fields.iter().cloned().map(Value::String).collect()),
            );
        }
        if let Some(c) = context {
            kw.insert("context".into(), c.clone());
        }
        kw
    };
    let ids = |ids: &[i64]| Value::Array(ids.iter().map(|&i| Value::from(i)).collect());
    let first = odoo
        .call_as(
            credential,
            &read.model,
            "read",
            vec![ids(&ids_to_read)],
            kwargs(true),
        )
        .await;
    match first {
        Err(OdooError::Odoo { name, .. }) if name == "odoo.exceptions.MissingError" => {
            let existing = odoo
                .call_as(
                    credential,
                    &read.model,
                    "exists",
                    vec![ids(&ids_to_read)],
                    kwargs(false),
                )
                .await?;
            let left = ids_of(&existing);
            if left.is_empty() {
                return Ok(Value::Array(Vec::new()));
            }
            odoo.call_as(
                credential,
                &read.model,
                "read",
                vec![ids(&left)],
                kwargs(true),
            )
            .await
        }
        other => other,
    }
}

/// Splits a `web_search_read` answer into its records and the rest (`length`).
fn split_paged(result: Value) -> Result<(Value, Map<String, Value>), ExpandError> {
    match result {
        Value::Object(mut o) => {
            let records = o.remove("records").ok_or(ExpandError::NoRecords)?;
            Ok((records, o))
        }
        _ => Err(ExpandError::NoRecords),
    }
}

fn join_paged(mut rest: Map<String, Value>, records: Vec<Value>) -> Value {
    rest.insert("records".into(), Value::Array(records));
    Value::Object(rest)
}

/// The 1 + M path: the base call with the relational fields, then one `read` per level and
/// comodel.
async fn by_levels(
    ex: &Exchange<'_>,
    call: &Call,
    target: &Target,
    plan: &Plan,
    pieces: impl Fn(&str) -> Pieces,
) -> Result<Value, Failure> {
    let model = call.model.as_deref().unwrap_or_default();
    let (args, kwargs) = target.base_call(plan);
    let method = target.method.name();
    let result = base_call(
        ex.odoo,
        &call.credential,
        model,
        method,
        args,
        kwargs,
        pieces(model),
    )
    .await?;
    let (records, rest) = if target.method.paged() {
        let (records, rest) = split_paged(result)?;
        (records, Some(rest))
    } else {
        (result, None)
    };
    let mut expansion = Expansion::new(plan, records)?;
    while !expansion.complete() {
        for read in expansion.next_reads() {
            let answer = read_level(
                ex.odoo,
                &call.credential,
                &read,
                target.context(),
                pieces(&read.model),
            )
            .await?;
            expansion.add(&read, answer)?;
        }
    }
    let merged = expansion.finish(target.method.form());
    Ok(match rest {
        Some(rest) => join_paged(rest, merged),
        None => Value::Array(merged),
    })
}

/// One ORM call: `(method, args, kwargs)`.
type OrmCall = (&'static str, Vec<Value>, Map<String, Value>);

/// The 17+ path: one `web_search_read` / `web_read` with the whole specification.
async fn in_one_call(
    ex: &Exchange<'_>,
    call: &Call,
    target: &Target,
    plan: &Plan,
    (method, args, kwargs): OrmCall,
    pieces: Pieces,
) -> Result<Value, Failure> {
    let model = call.model.as_deref().unwrap_or_default();
    let result = base_call(
        ex.odoo,
        &call.credential,
        model,
        method,
        args,
        kwargs,
        pieces,
    )
    .await?;
    let (records, rest) = if method == "web_search_read" {
        let (records, rest) = split_paged(result)?;
        (records, Some(rest))
    } else {
        (result, None)
    };
    let classic = target.method.form() == Form::Classic;
    let merged = spec::reshape(plan, records, classic)?.finish(target.method.form());
    Ok(match (rest, target.method.paged()) {
        (Some(rest), true) => join_paged(rest, merged),
        _ => Value::Array(merged),
    })
}

/// `error.message` of Odoo's JSON-RPC errors, by code.
fn http_message(code: i64) -> &'static str {
    match code {
        100 => "Odoo Session Expired",
        404 => "404: Not Found",
        _ => "Odoo Server Error",
    }
}

/// `/json/2`'s HTTP status for an Odoo error.
fn json2_status(code: i64, name: &str) -> u16 {
    if let Ok(status) = u16::try_from(code) {
        if (400..600).contains(&status) {
            return status;
        }
    }
    if code == 100 {
        return 401;
    }
    match name.rsplit('.').next().unwrap_or(name) {
        "AccessError" => 403,
        "AccessDenied" | "SessionExpiredException" => 401,
        "MissingError" => 404,
        "UserError" | "ValidationError" | "ValueError" | "TypeError" | "AttributeError"
        | "KeyError" => 422,
        _ => 500,
    }
}

/// `X-BridgeCore-Rewrite` (every filter's tags, `expand` last) and
/// `X-BridgeCore-Limit-Capped`: no `on_response` runs for an answer a filter writes.
fn headers(state: &mut http::Extensions) -> Vec<(HeaderName, HeaderValue)> {
    note_rewrite(state, EXPAND_TOKEN);
    let mut out = Vec::new();
    if let Some(v) = rewrites(state).and_then(|r| HeaderValue::from_str(&r.header_value()).ok()) {
        out.push((HeaderName::from_static(REWRITE_HEADER), v));
    }
    if let Some(v) = state
        .get::<Capped>()
        .and_then(|c| HeaderValue::from_str(&header_value(c)).ok())
    {
        out.push((HeaderName::from_static(CAPPED_HEADER), v));
    }
    out
}

/// BridgeCore's own error for a failure that is not Odoo's refusal.
fn own_error(failure: Failure) -> (ErrorKind, String) {
    match failure {
        Failure::Odoo(OdooError::Timeout) => (
            ErrorKind::GatewayTimeout,
            "Odoo did not answer in time".to_owned(),
        ),
        Failure::Odoo(OdooError::Unavailable(_)) => {
            (ErrorKind::BadGateway, "Odoo unavailable".to_owned())
        }
        Failure::Odoo(_) => (ErrorKind::BadGateway, "invalid answer from Odoo".to_owned()),
        Failure::Shape(e) => (
            ErrorKind::BadGateway,
            format!("invalid answer from Odoo: {e}"),
        ),
    }
}

/// The answer to an XML-RPC caller: a `methodResponse` as Odoo writes it, Odoo's fault for
/// the route (HTTP 200), or BridgeCore's fault with its status.
fn respond_xmlrpc(legacy: bool, outcome: Result<Value, Failure>) -> Reply {
    match outcome {
        Ok(result) => Reply::xmlrpc_result(legacy, &result),
        Err(Failure::Odoo(OdooError::Odoo { name, message, .. })) => {
            Reply::xmlrpc_odoo_fault(legacy, &name, &message)
        }
        Err(failure) => {
            let (kind, message) = own_error(failure);
            Reply::xmlrpc_error(legacy, kind, &message)
        }
    }
}

/// The answer in the caller's protocol: a JSON-RPC envelope with the caller's `id`, the bare
/// value for `/json/2`, a `methodResponse` for XML-RPC.
fn respond(ex: &mut Exchange<'_>, call: &Call, outcome: Result<Value, Failure>) -> Reply {
    if let Shape::XmlRpc { legacy } = call.shape {
        let mut reply = respond_xmlrpc(legacy, outcome);
        reply.headers.extend(headers(ex.state));
        return reply;
    }
    let id = call.id.clone().unwrap_or(Value::Null);
    let json2 = call.shape == Shape::Json2;
    let reply = match outcome {
        Ok(result) => {
            let body = if json2 {
                result
            } else {
                json!({"jsonrpc": "2.0", "id": id, "result": result})
            };
            Reply::json(200, serde_json::to_vec(&body).unwrap_or_default())
        }
        Err(Failure::Odoo(OdooError::Odoo {
            code,
            name,
            message,
        })) => {
            let data = json!({
                "name": name,
                "debug": "",
                "message": message,
                "arguments": [message],
                "context": {},
            });
            if json2 {
                Reply::json(
                    json2_status(code, &name),
                    serde_json::to_vec(&data).unwrap_or_default(),
                )
            } else {
                let body = json!({
                    "jsonrpc": "2.0",
                    "id": id,
                    "error": {"code": code, "message": http_message(code), "data": data},
                });
                Reply::json(200, serde_json::to_vec(&body).unwrap_or_default())
            }
        }
        Err(failure) => {
            let (kind, message) = own_error(failure);
            Reply::jsonrpc_error(Some(call), kind, &message)
        }
    };
    let mut reply = reply;
    reply.headers.extend(headers(ex.state));
    reply
}

#[async_trait]
impl Filter for ExpandFilter {
    fn name(&self) -> &'static str {
        "expand"
    }

    async fn on_request(&self, ex: &mut Exchange<'_>, call: &Call) -> Decision {
        let settings = self.settings.for_tenant(ex.tenant);
        let api = ex.request.uri.path().starts_with("/api/v1/");
        let auto = match (api, call.model.as_deref()) {
            (true, Some(model)) => settings.expand.get(model),
            _ => None,
        };
        if !settings.expand_dotted && auto.is_none() {
            return Decision::Continue;
        }
        // Near-free for ordinary calls: no decoding unless a `.` is in the arguments' text.
        if !call::candidate(call, auto.is_some()) {
            return Decision::Continue;
        }
        let layout = if api { Layout::Nested } else { Layout::Flat };
        let none = std::collections::BTreeMap::new();
        let Some(target) = call::target(call, auto.unwrap_or(&none), layout) else {
            return Decision::Continue;
        };
        if !settings.expand_dotted && target.request.fields.iter().any(|f| f.contains('.')) {
            return Decision::Continue;
        }
        let Some(plan) = self.plan(ex, &call.credential, &target).await else {
            return Decision::Continue;
        };
        if !target.spec_compatible(&plan) {
            return Decision::Continue;
        }
        let one_call = match target.method {
            Method::WebSearchReadSpec => true,
            Method::WebSearchReadFields => false,
            Method::SearchRead | Method::Read => self.version(ex).await.is_some_and(|v| v >= 17),
        };
        // Every field asked (no `fields`): only `read` can say that; a specification cannot.
        let web = if one_call && plan.base_fields.is_some() {
            target.web_call(spec::specification(&plan, target.own_spec.as_ref()))
        } else {
            None
        };
        // Every read the expansion sends keeps to the tenant's read cap on this route.
        let pieces = |model: &str| Pieces {
            cap: read_cap(settings, ex, call, model),
            concurrency: settings.read_concurrency,
        };
        let outcome = match web {
            Some(web) => {
                let model = call.model.as_deref().unwrap_or_default();
                in_one_call(ex, call, &target, &plan, web, pieces(model)).await
            }
            None => by_levels(ex, call, &target, &plan, pieces).await,
        };
        Decision::Respond(respond(ex, call, outcome))
    }
}

#[cfg(test)]
mod pieces_tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use serde_json::{json, Value};

    use super::{in_pieces, Pieces};
    use crate::odoo::OdooError;

    fn rows(ids: &[i64]) -> Value {
        Value::Array(ids.iter().map(|i| json!({"id": i})).collect())
    }

    #[tokio::test]
    async fn reads_over_the_cap_go_in_pieces_joined_in_order() {
        let ids: Vec<i64> = (1..=250).rev().collect();
        let seen = Mutex::new(Vec::new());
        let pieces = Pieces {
            cap: Some(100),
            concurrency: 2,
        };
        let all = in_pieces(&ids, pieces, |chunk| {
            seen.lock().unwrap().push(chunk.len());
            let answer = rows(&chunk);
            async move { Ok(answer) }
        })
        .await
        .unwrap();
        assert_eq!(all, rows(&ids));
        assert_eq!(*seen.lock().unwrap(), vec![100, 100, 50]);
        // At or under the cap, and with caps off: one read.
        for cap in [Some(250), None] {
            let seen = Mutex::new(0);
            let pieces = Pieces {
                cap,
                concurrency: 4,
            };
            let all = in_pieces(&ids, pieces, |chunk| {
                *seen.lock().unwrap() += 1;
                let answer = rows(&chunk);
                async move { Ok(answer) }
            })
            .await
            .unwrap();
            assert_eq!(all, rows(&ids));
            assert_eq!(*seen.lock().unwrap(), 1);
        }
    }

    #[tokio::test]
    async fn any_pieces_error_is_the_answer() {
        let ids: Vec<i64> = (1..=30).collect();
        let pieces = Pieces {
            cap: Some(10),
            concurrency: 3,
        };
        let out = in_pieces(&ids, pieces, |chunk| async move {
            if chunk.contains(&15) {
                Err(OdooError::Odoo {
                    code: 200,
                    name: "odoo.exceptions.AccessError".into(),
                    message: "no".into(),
                })
            } else {
                Ok(rows(&chunk))
            }
        })
        .await;
        assert!(matches!(out, Err(OdooError::Odoo { code: 200, .. })));
        let odd = in_pieces(&ids, pieces, |_| async { Ok(json!({"not": "a list"})) }).await;
        assert!(matches!(odd, Err(OdooError::Protocol(_))));
    }
}
