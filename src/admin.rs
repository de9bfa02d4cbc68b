//! The admin listener (`server.admin_listen`): liveness, readiness and Prometheus metrics.
//!
//! Its own small service rather than pingora-prometheus's, which answers metrics on every path.
//! It is meant for the ops network only; it needs no token.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Map, Value};

use crate::Shared;

/// How long a readiness probe waits for one upstream's TCP handshake.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The admin HTTP application.
pub struct AdminApp {
    pub(crate) shared: Arc<Shared>,
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    let len = resp.body().len();
    resp.headers_mut()
        .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    resp
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        match path.as_str() {
            "/healthz" => respond(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            "/readyz" => self.readyz().await,
            "/metrics" => respond(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.shared.metrics.render(),
            ),
            "/api/v1/ws/stats" => {
                // Every system's, or `?system_id=`'s.
                let only = session.req_header().uri.query().and_then(|q| {
                    form_urlencoded::parse(q.as_bytes())
                        .find(|(k, _)| k == "system_id")
                        .map(|(_, v)| v.into_owned())
                });
                respond(
                    StatusCode::OK,
                    "application/json",
                    serde_json::to_vec(&self.shared.ws.stats(only.as_deref())).unwrap_or_default(),
                )
            }
            other => {
                let method = session.req_header().method.clone();
                let query = session.req_header().uri.query().map(str::to_owned);
                self.tenant_endpoint(other, &method, query.as_deref()).await
            }
        }
    }
}

impl AdminApp {
    /// `/api/v1/systems/{id}/stats|health`, as on the main listener but without a token.
    async fn tenant_endpoint(
        &self,
        path: &str,
        method: &http::Method,
        query: Option<&str>,
    ) -> Response<Vec<u8>> {
        let not_found = |what: &str| {
            respond(
                StatusCode::NOT_FOUND,
                "application/json",
                bridgecore_filters::error::api_error(what),
            )
        };
        let Some((id, what)) = path
            .strip_prefix("/api/v1/systems/")
            .and_then(|rest| rest.split_once('/'))
        else {
            return not_found("no such endpoint");
        };
        let rt = self.shared.runtime.load_full();
        let Some(tenant) = rt.tenant(id) else {
            return not_found("unknown system");
        };
        let wanted = if what == "cache/clear" {
            http::Method::DELETE
        } else {
            http::Method::GET
        };
        if *method != wanted {
            return respond(
                StatusCode::METHOD_NOT_ALLOWED,
                "application/json",
                bridgecore_filters::error::api_error("method not allowed"),
            );
        }
        let (status, body) = match what {
            "stats" => (200, crate::stats::stats(&self.shared, tenant).await),
            "health" => crate::stats::health(tenant).await,
            "cache/stats" | "cache/clear" => {
                crate::api::cache_admin(&self.shared, tenant.name(), what, query).await
            }
            _ => return not_found("no such endpoint"),
        };
        respond(
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            "application/json",
            serde_json::to_vec(&body).unwrap_or_default(),
        )
    }
}

impl AdminApp {
    /// 503 only when no tenant has a reachable upstream; the body lists each tenant's state.
    async fn readyz(&self) -> Response<Vec<u8>> {
        let rt = self.shared.runtime.load_full();
        let mut tenants = Map::new();
        let mut any_ready = false;
        for t in &rt.tenants {
            let probes = t.upstreams.all().iter().map(|addr| async move {
                let ok = matches!(
                    tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await,
                    Ok(Ok(_))
                );
                (addr.to_string(), ok)
            });
            let results = futures_util::future::join_all(probes).await;
            let reachable = results.iter().any(|(_, ok)| *ok);
            any_ready |= reachable;
            let upstreams: Map<String, Value> = results
                .into_iter()
                .map(|(a, ok)| (a, Value::Bool(ok)))
                .collect();
            tenants.insert(
                t.name().to_string(),
                json!({"ready": reachable, "upstreams": upstreams, "in_flight": t.in_flight()}),
            );
        }
        let status = if any_ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let mut body = json!({"ready": any_ready, "tenants": tenants});
        // Redis is never a readiness condition (BridgeCore fails safe without it), but ops want
        // to see where limits and sessions are kept right now.
        if let Some(r) = &self.shared.redis {
            body["redis"] = json!({
                "addr": r.addr(),
                "up": r.is_up(),
                "rate_limits": self.shared.limiter.backend_in_use(),
            });
        }
        respond(
            status,
            "application/json",
            serde_json::to_vec(&body).unwrap_or_default(),
        )
    }
}
