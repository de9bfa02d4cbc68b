//! BridgeCore's own `/api/v1` endpoints (design.md §4): token login and rotation, the simple
//! call API, and the admin endpoints. They are answered here, never forwarded; every error is
//! `{"detail": …}` with the status of the condition.
//!
//! The handlers get the request as plain parts and return a [`Reply`], so they know nothing of
//! Pingora's session; the proxy reads the (bounded) body and writes the answer.

mod auth;
mod call;

use std::net::IpAddr;
use std::sync::Arc;

use bridgecore_filters::error::api_error;
use bridgecore_filters::rate_limit::Decision;
use bridgecore_filters::Reply;
use bytes::Bytes;
use http::{header, HeaderValue, Method};

use crate::gate::{self, Authed, Refusal};
use crate::runtime::Runtime;
use crate::tenant::Tenant;
use crate::Shared;

/// The largest `/api/v1` body read (logins, calls: a `create` with a few attachments fits).
pub(crate) const MAX_API_BODY: usize = 16 * 1024 * 1024;

/// One `/api/v1` request, as the handlers see it.
pub(crate) struct ApiRequest<'a> {
    /// The request head.
    pub(crate) head: &'a http::request::Parts,
    /// The whole body (empty for GET).
    pub(crate) body: Bytes,
    /// The client address (after `trusted_proxies`).
    pub(crate) client_ip: IpAddr,
    /// The request id, for the chain's exchange.
    pub(crate) request_id: &'a str,
    /// Whether the client connection is TLS.
    pub(crate) tls: bool,
}

/// A `{"detail"}` answer.
pub(crate) fn detail(status: u16, message: &str) -> Reply {
    let reply = Reply::json(status, api_error(message));
    if status == 401 {
        reply.with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    } else {
        reply
    }
}

fn refusal(r: &Refusal) -> Reply {
    detail(r.kind.status(), r.detail)
}

/// Adds the rate-limit headers of `decision` to `reply`.
pub(crate) fn with_limit(mut reply: Reply, decision: Option<&Decision>) -> Reply {
    if let Some(d) = decision {
        reply.headers.extend(d.headers());
    }
    reply
}

/// 429 in the API's protocol.
pub(crate) fn too_many(decision: &Decision) -> Reply {
    with_limit(
        detail(
            429,
            "rate limit exceeded: slow down and retry after the given time",
        ),
        Some(decision),
    )
}

/// Dispatches one `/api/v1` request. `tenant` is the system named in the path, if any.
pub(crate) async fn handle(
    shared: &Shared,
    rt: &Arc<Runtime>,
    tenant: Option<&Arc<Tenant>>,
    req: ApiRequest<'_>,
) -> Reply {
    let path = req.head.uri.path();
    let method = &req.head.method;
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return detail(404, "no such endpoint");
    };
    if let Some(action) = rest.strip_prefix("auth/") {
        let post = *method == Method::POST;
        return match action {
            "login" | "refresh" | "logout" if !post => method_not_allowed("POST"),
            "login" => auth::login(shared, rt, &req).await,
            "refresh" => auth::refresh(shared, rt, &req).await,
            "logout" => auth::logout(shared, rt, &req).await,
            "me" if *method == Method::GET => auth::me(shared, rt, &req).await,
            "me" => method_not_allowed("GET"),
            _ => detail(404, "no such endpoint"),
        };
    }
    if rest == "ws/stats" {
        // Live-updates statistics of the admin token's own system (all systems: the admin
        // listener).
        if *method != Method::GET {
            return method_not_allowed("GET");
        }
        let authed = match bearer(shared, rt, &req).await {
            Ok(a) => a,
            Err(r) => return r,
        };
        if !authed.claims.is_admin_for(&authed.claims.tenant) {
            count_refusal(shared, "scope");
            return detail(403, "an admin token is required");
        }
        return json_reply(200, &shared.ws.stats(Some(&authed.claims.tenant)));
    }
    if let (Some(sys), Some(tenant)) = (rest.strip_prefix("systems/"), tenant) {
        let sub = sys.split_once('/').map_or("", |(_, s)| s);
        if let Some(op) = sub.strip_prefix("odoo/") {
            if *method != Method::POST {
                return method_not_allowed("POST");
            }
            return call::call(shared, rt, tenant, op, &req).await;
        }
        let admin_get = matches!(sub, "stats" | "health" | "cache/stats");
        if admin_get || sub == "cache/clear" {
            let (want, allow) = if admin_get {
                (Method::GET, "GET")
            } else {
                (Method::DELETE, "DELETE")
            };
            if *method != want {
                return method_not_allowed(allow);
            }
            if let Err(reply) = admin(shared, rt, tenant, &req).await {
                return reply;
            }
            return match sub {
                "stats" => json_reply(200, &crate::stats::stats(shared, tenant).await),
                "health" => {
                    let (status, body) = crate::stats::health(tenant).await;
                    json_reply(status, &body)
                }
                _ => {
                    let (status, body) =
                        cache_admin(shared, tenant.name(), sub, req.head.uri.query()).await;
                    json_reply(status, &body)
                }
            };
        }
    }
    detail(404, "no such endpoint")
}

/// `GET .../cache/stats` and `DELETE .../cache/clear[?model=…]` (on both listeners). A clear
/// bumps generations, so with Redis it holds for every instance.
pub(crate) async fn cache_admin(
    shared: &Shared,
    tenant: &str,
    sub: &str,
    query: Option<&str>,
) -> (u16, serde_json::Value) {
    if sub == "cache/stats" {
        return (200, shared.cache.stats(tenant));
    }
    let model = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "model")
            .map(|(_, v)| v.into_owned())
    });
    if let Some(m) = &model {
        let valid = !m.is_empty()
            && m.len() <= 128
            && m.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
        if !valid {
            return (
                400,
                serde_json::json!({"detail": "`model` must be an Odoo model name"}),
            );
        }
    }
    match shared.cache.clear(tenant, model.as_deref()).await {
        Ok(()) => (
            200,
            serde_json::json!({"cleared": true, "tenant": tenant, "model": model}),
        ),
        Err(e) => (503, serde_json::json!({"detail": e.to_string()})),
    }
}

fn json_reply(status: u16, body: &serde_json::Value) -> Reply {
    Reply::json(status, serde_json::to_vec(body).unwrap_or_default())
}

fn method_not_allowed(allow: &'static str) -> Reply {
    detail(405, "method not allowed").with_header(header::ALLOW, HeaderValue::from_static(allow))
}

/// The caller's token, verified, with its session: 401 without one.
pub(crate) async fn bearer(
    shared: &Shared,
    rt: &Runtime,
    req: &ApiRequest<'_>,
) -> Result<Authed, Reply> {
    let token = match gate::presented_token(&req.head.headers, false) {
        Ok(Some(t)) => t,
        Ok(None) => {
            count_refusal(shared, "missing");
            return Err(detail(
                401,
                "authentication required: send `Authorization: Bearer <access token>`",
            ));
        }
        Err(r) => {
            count_refusal(shared, "invalid");
            return Err(refusal(&r));
        }
    };
    gate::authenticate(shared, rt, token).await.map_err(|r| {
        count_refusal(
            shared,
            if r.detail == "token expired" {
                "expired"
            } else {
                "invalid"
            },
        );
        refusal(&r)
    })
}

pub(crate) fn count_refusal(shared: &Shared, reason: &'static str) {
    shared
        .metrics
        .auth_refused
        .with_label_values(&[reason])
        .inc();
}

/// An admin token for this tenant (design.md §4: admin endpoints on the main listener).
async fn admin(
    shared: &Shared,
    rt: &Runtime,
    tenant: &Tenant,
    req: &ApiRequest<'_>,
) -> Result<Authed, Reply> {
    let authed = bearer(shared, rt, req).await?;
    if !authed.claims.is_admin_for(tenant.name()) {
        count_refusal(shared, "scope");
        return Err(detail(403, "an admin token for this system is required"));
    }
    Ok(authed)
}
