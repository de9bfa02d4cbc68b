//! `POST /api/v1/systems/{id}/odoo/{operation}`: one ORM call on the caller's Odoo session,
//! through the same filter chain as raw JSON-RPC, answered as `{result, cached, optimized}`.

use std::sync::Arc;

use bridgecore_filters::api::{self, map_answer, map_result, Served};
use bridgecore_filters::auth::Scopes;
use bridgecore_filters::rate_limit::Subject;
use bridgecore_filters::{
    Call, ChainDecision, Credential, Exchange, HeaderEdit, OdooClient, OdooError, Outcome, Reply,
    ResponseHead,
};
use serde_json::{json, Value};

use super::{bearer, count_refusal, detail, too_many, with_limit, ApiRequest};
use crate::cache::{Lookup, Status};
use crate::gate;
use crate::runtime::Runtime;
use crate::tenant::Tenant;
use crate::Shared;

fn answer(a: api::ApiAnswer) -> Reply {
    Reply::json(a.status, a.body)
}

pub(super) async fn call(
    shared: &Shared,
    rt: &Arc<Runtime>,
    tenant: &Arc<Tenant>,
    operation: &str,
    req: &ApiRequest<'_>,
) -> Reply {
    let authed = match bearer(shared, rt, req).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if authed.claims.tenant != tenant.name() {
        count_refusal(shared, "scope");
        return detail(403, "this token was issued for another system");
    }
    let op = match api::parse_operation(operation) {
        Ok(op) => op,
        Err(e) => return detail(e.status(), &e.detail()),
    };
    let api_call = match api::build_call(op, &req.body) {
        Ok(c) => c,
        Err(e) => return detail(e.status(), &e.detail()),
    };
    let mut call = api_call.into_call();
    call.credential = Credential::Session(authed.session.odoo_session.clone());
    let category = call.class().category();
    if !authed.claims.scopes.is_empty() {
        let allowed = Scopes::parse(&authed.claims.scopes)
            .is_ok_and(|s| s.allows(call.model.as_deref(), category));
        if !allowed {
            count_refusal(shared, "scope");
            return detail(403, "this token's scopes do not allow this call");
        }
    }
    let subject = Subject::Token(authed.claims.sub.clone());
    let decision = gate::charge(
        shared,
        rt,
        tenant.name(),
        category,
        &subject,
        None,
        req.client_ip,
    )
    .await;
    if let Some(d) = decision.as_ref().filter(|d| !d.allowed) {
        return too_many(d);
    }
    let reply = run(shared, rt, tenant, req, call, &authed.session.odoo_session).await;
    if reply.status == 401 {
        // Odoo no longer knows the session: the token is useless, end it here too.
        let _ = shared.sessions.delete(&authed.session.sid).await;
    }
    with_limit(reply, decision.as_ref())
}

/// Runs the chain and, unless a filter answers, the call on Odoo.
async fn run(
    shared: &Shared,
    rt: &Arc<Runtime>,
    tenant: &Arc<Tenant>,
    req: &ApiRequest<'_>,
    call: Call,
    odoo_session: &str,
) -> Reply {
    let mut state = http::Extensions::new();
    let mut ex = Exchange {
        request: req.head,
        client_ip: req.client_ip,
        tenant: tenant.name(),
        request_id: req.request_id,
        tls: req.tls,
        odoo: tenant.odoo.as_ref(),
        state: &mut state,
    };
    let (call, optimized) = match rt.chain.on_request(&mut ex, &call).await {
        ChainDecision::Respond { reply, .. } => return from_filter(reply),
        ChainDecision::Forward { rewritten: None } => (call, false),
        ChainDecision::Forward {
            rewritten: Some(new),
        } => (*new, true),
    };
    // The response cache, as on the JSON-RPC routes (same keys: a token caller is its Odoo
    // session).
    let cache = &shared.cache;
    let cfg = &rt.config.cache;
    let mut pending = None;
    let canonical = rt.optimizer.for_tenant(tenant.name()).domains.keys();
    if let Some(plan) = cache.plan(
        cfg,
        tenant.name(),
        &call,
        Some(odoo_session),
        false,
        canonical,
    ) {
        match cache.lookup(tenant.name(), plan, cfg.lock_timeout).await {
            Lookup::Hit(entry) => {
                cache.count(tenant.name(), Status::Hit);
                let served = Served {
                    cached: true,
                    optimized,
                };
                let text = String::from_utf8_lossy(entry.bodies.result());
                let mut reply = answer(api::ApiAnswer::result_text(&text, served));
                if !rt.chain.is_empty() {
                    let headers = http::HeaderMap::new();
                    let mut head = ResponseHead::new(200, &headers);
                    rt.chain.on_response(&mut ex, &call, &mut head).await;
                    apply(&mut reply, head.into_edits());
                    rt.chain
                        .on_complete(&mut ex, &call, Outcome::Answered(200))
                        .await;
                }
                return reply;
            }
            Lookup::Miss(p) => pending = Some(p),
            Lookup::Bypass => {}
        }
    }
    let params = json!({
        "model": call.model,
        "method": call.method,
        "args": call.args(),
        "kwargs": call.kwargs(),
    });
    let result = tenant
        .odoo
        .json_rpc(&call.path, params, Some(odoo_session))
        .await
        .map(|r| r.result);
    let outcome = match &result {
        Ok(_) | Err(OdooError::Odoo { .. }) => Outcome::Answered(200),
        Err(_) => Outcome::Failed,
    };
    if call.class().is_write() {
        // Before the answer goes out, whatever the outcome (Odoo may have committed).
        cache
            .invalidate(cfg, tenant.name(), Some(&call), &call.path)
            .await;
        // Live updates: the change a successful write made.
        if let Ok(value) = &result {
            shared.ws.publish_call(tenant.name(), &call, value);
        }
    }
    let status = match (&pending, &result) {
        (Some(_), _) => Status::Miss,
        _ => Status::Bypass,
    };
    if let Some(p) = pending {
        let text = result
            .as_ref()
            .ok()
            .and_then(|v| serde_json::to_vec(v).ok())
            .map(bytes::Bytes::from);
        cache.complete_result(tenant.name(), *p, text).await;
    }
    cache.count(tenant.name(), status);
    let mut edits = Vec::new();
    if !rt.chain.is_empty() {
        let headers = http::HeaderMap::new();
        let mut head = ResponseHead::new(200, &headers);
        if matches!(outcome, Outcome::Answered(_)) {
            rt.chain.on_response(&mut ex, &call, &mut head).await;
        }
        edits = head.into_edits();
        rt.chain.on_complete(&mut ex, &call, outcome).await;
    }
    let mut reply = answer(map_result(
        &result,
        Served {
            cached: false,
            optimized,
        },
    ));
    apply(&mut reply, edits);
    reply
}

fn apply(reply: &mut Reply, edits: Vec<HeaderEdit>) {
    for edit in edits {
        match edit {
            HeaderEdit::Set(name, value) => {
                reply.headers.retain(|(n, _)| *n != name);
                reply.headers.push((name, value));
            }
            HeaderEdit::Append(name, value) => reply.headers.push((name, value)),
            HeaderEdit::Remove(name) => reply.headers.retain(|(n, _)| *n != name),
        }
    }
}

/// A filter's own answer, in the API's shape: a JSON-RPC result becomes `{result, cached}`, a
/// JSON-RPC error `{detail}` with the filter's status.
fn from_filter(reply: Reply) -> Reply {
    let cached = reply
        .headers
        .iter()
        .any(|(n, v)| n.as_str() == "x-cache" && v.as_bytes() == b"HIT");
    // A filter that rewrote the call and answered it itself (field expansion, read batches)
    // says so in `X-BridgeCore-Rewrite`; that header stays on the answer.
    let optimized = reply
        .headers
        .iter()
        .any(|(n, _)| n.as_str() == bridgecore_filters::rewrite::REWRITE_HEADER);
    if reply.status == 200 {
        let mut out = answer(map_answer(&reply.body, Served { cached, optimized }));
        out.headers.extend(
            reply
                .headers
                .into_iter()
                .filter(|(n, _)| n != http::header::CONTENT_TYPE),
        );
        return out;
    }
    let message = serde_json::from_slice::<Value>(&reply.body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("detail"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "refused".to_owned());
    let mut out = detail(reply.status, &message);
    out.headers.extend(
        reply
            .headers
            .into_iter()
            .filter(|(n, _)| n != http::header::CONTENT_TYPE),
    );
    out
}
