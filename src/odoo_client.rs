//! BridgeCore's own JSON-RPC client for one tenant, behind the filters' [`OdooClient`] trait.
//!
//! Filters that must ask Odoo something themselves (login, batched reads, `fields_get`) go
//! through the same upstream set and the same `max_connections` bound as proxied traffic, so
//! BridgeCore's own calls can never push a tenant's Odoo workers past what ops allowed.

use std::sync::Weak;

use async_trait::async_trait;
use bridgecore_filters::{OdooClient, OdooError, OdooReply};
use serde_json::{json, Value};

use crate::config::TenantConfig;
use crate::tenant::Tenant;

/// The internal client of one tenant.
pub struct HttpOdooClient {
    tenant: Weak<Tenant>,
    http: reqwest::Client,
}

impl HttpOdooClient {
    /// The HTTP client with the tenant's timeouts. Odoo answers `Connection: close` from its
    /// prefork workers, so idle pooling buys little; keep a small pool for the threaded server.
    pub(crate) fn http_client(cfg: &TenantConfig) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.timeout)
            .pool_max_idle_per_host(4)
            .redirect(reqwest::redirect::Policy::none())
            .build()
    }

    pub(crate) fn new(tenant: Weak<Tenant>, http: reqwest::Client) -> Self {
        HttpOdooClient { tenant, http }
    }
}

impl HttpOdooClient {
    /// The uid an Odoo API key belongs to, asked of Odoo itself (`/json/2/res.users/context_get`
    /// answers the key's user context, `uid` included): only Odoo can tell whose key it is.
    pub async fn uid_of_api_key(&self, key: &str, db: Option<&str>) -> Result<i64, OdooError> {
        let (addr, _permit) = self.slot(None).await?;
        let mut req = self
            .http
            .post(format!("http://{addr}/json/2/res.users/context_get"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::AUTHORIZATION, format!("bearer {key}"))
            .body("{}");
        if let Some(db) = db {
            req = req.header("x-odoo-database", db);
        }
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .map_err(|_| OdooError::Protocol(format!("HTTP {status}: not JSON")))?;
        if status == http::StatusCode::UNAUTHORIZED {
            return Err(OdooError::Odoo {
                code: 200,
                name: "odoo.exceptions.AccessDenied".into(),
                message: "invalid API key".into(),
            });
        }
        v.get("uid")
            .and_then(Value::as_i64)
            .ok_or_else(|| OdooError::Protocol(format!("HTTP {status}: no uid in the context")))
    }
}

impl HttpOdooClient {
    /// An upstream for the call (the session's own when there is one) and a slot under the
    /// tenant's `max_connections`, held for as long as the call runs.
    async fn slot(
        &self,
        sticky: Option<&str>,
    ) -> Result<(std::net::SocketAddr, tokio::sync::OwnedSemaphorePermit), OdooError> {
        let tenant = self
            .tenant
            .upgrade()
            .ok_or_else(|| OdooError::Unavailable("tenant was unloaded".into()))?;
        let addr = tenant
            .upstreams
            .pick(sticky)
            .ok_or_else(|| OdooError::Unavailable("no upstream".into()))?;
        let permit = tenant
            .acquire()
            .await
            .ok_or_else(|| OdooError::Unavailable("tenant at max_connections".into()))?;
        Ok((addr, permit))
    }
}

/// A failed exchange with Odoo: a timeout, or Odoo out of reach.
fn transport(e: reqwest::Error) -> OdooError {
    if e.is_timeout() {
        OdooError::Timeout
    } else {
        OdooError::Unavailable(e.to_string())
    }
}

/// The value of `session_id` in a `Set-Cookie` header, if it sets one.
fn session_from_set_cookie(v: &str) -> Option<String> {
    let first = v.split(';').next()?.trim();
    let (name, value) = first.split_once('=')?;
    (name.trim() == "session_id").then(|| value.trim().to_string())
}

#[async_trait]
impl OdooClient for HttpOdooClient {
    async fn json_rpc(
        &self,
        path: &str,
        params: Value,
        session_id: Option<&str>,
    ) -> Result<OdooReply, OdooError> {
        // The session's own upstream: Odoo keeps sessions on its local disk.
        let (addr, _permit) = self.slot(session_id).await?;
        let body = json!({"jsonrpc": "2.0", "method": "call", "params": params, "id": null});
        let mut req = self
            .http
            .post(format!("http://{addr}{path}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .json(&body);
        if let Some(sid) = session_id {
            req = req.header(http::header::COOKIE, format!("session_id={sid}"));
        }
        let resp = req.send().await.map_err(transport)?;
        let new_session = resp
            .headers()
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(session_from_set_cookie);
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        let mut v: Value = bridgecore_filters::json::from_slice(&bytes)
            .map_err(|_| OdooError::Protocol(format!("HTTP {status}: not a JSON-RPC answer")))?;
        if let Some(err) = v.get("error") {
            let code = err.get("code").and_then(Value::as_i64).unwrap_or(200);
            let data = err.get("data");
            let name = data
                .and_then(|d| d.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("odoo.exceptions.UserError")
                .to_string();
            let message = data
                .and_then(|d| d.get("message"))
                .or_else(|| err.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            return Err(OdooError::Odoo {
                code,
                name,
                message,
            });
        }
        let result = v.get_mut("result").map(Value::take).unwrap_or(Value::Null);
        Ok(OdooReply {
            result,
            session_id: new_session,
        })
    }

    /// `POST /json/2/<model>/<method>` with the caller's API key (odoo-protocol.md §2.12):
    /// the bare result on 2xx; otherwise Odoo's error body (`{name, message, ...}`) as
    /// [`OdooError::Odoo`] with the HTTP status as `code`, so that a filter can answer the
    /// caller with the same status.
    async fn json2(
        &self,
        model: &str,
        method: &str,
        body: Value,
        key: &str,
        db: Option<&str>,
    ) -> Result<Value, OdooError> {
        let (addr, _permit) = self.slot(None).await?;
        let mut req = self
            .http
            .post(format!("http://{addr}/json/2/{model}/{method}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::AUTHORIZATION, format!("bearer {key}"))
            .json(&body);
        if let Some(db) = db {
            req = req.header("x-odoo-database", db);
        }
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        let parsed = bridgecore_filters::json::from_slice(&bytes);
        if status.is_success() {
            return parsed
                .map_err(|_| OdooError::Protocol(format!("HTTP {status}: not a JSON answer")));
        }
        let v = parsed.unwrap_or(Value::Null);
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Err(OdooError::Odoo {
            code: i64::from(status.as_u16()),
            name: text("name").unwrap_or_else(|| format!("HTTP {}", status.as_u16())),
            message: text("message").unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_session_cookie_only() {
        assert_eq!(
            session_from_set_cookie("session_id=abc; HttpOnly; Path=/").as_deref(),
            Some("abc")
        );
        assert_eq!(session_from_set_cookie("cids=1; Path=/"), None);
    }
}
