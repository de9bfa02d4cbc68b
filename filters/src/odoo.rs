//! The handle filters use to ask Odoo something themselves.
//!
//! Login, batched reads for field expansion, `fields_get` for the dependency graph and access
//! checks all need their own calls to the tenant's Odoo. The filters crate does no I/O, so it
//! only names the operation; BridgeCore implements it over the tenant's upstream set, with the
//! same concurrency bound and timeouts as proxied traffic.

use async_trait::async_trait;
use serde_json::{Map, Value};

/// An error from an internal Odoo call.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum OdooError {
    /// Odoo answered with a JSON-RPC `error` member.
    #[error("{name}: {message}")]
    Odoo {
        /// `error.code` (200 for application errors, 100 for an expired session, 404).
        code: i64,
        /// `error.data.name`, e.g. `odoo.exceptions.AccessError`.
        name: String,
        /// `error.data.message`, falling back to `error.message`.
        message: String,
    },
    /// The upstream could not be reached, or the connection failed.
    #[error("upstream unavailable: {0}")]
    Unavailable(String),
    /// No answer within the tenant's timeout.
    #[error("upstream timed out")]
    Timeout,
    /// The answer was not a JSON-RPC response.
    #[error("invalid answer from Odoo: {0}")]
    Protocol(String),
}

/// The answer to an internal JSON-RPC call.
#[derive(Debug, Clone, PartialEq)]
pub struct OdooReply {
    /// The `result` member (`Value::Null` when Odoo sent none, as for `/web/session/destroy`).
    pub result: Value,
    /// A new `session_id` Odoo set with this answer (login and logout rotate it).
    pub session_id: Option<String>,
}

/// A tenant's internal Odoo client.
#[async_trait]
pub trait OdooClient: Send + Sync {
    /// POSTs a JSON-RPC envelope with `params` to `path` on the tenant's Odoo, with the
    /// `session_id` cookie when one is given.
    async fn json_rpc(
        &self,
        path: &str,
        params: Value,
        session_id: Option<&str>,
    ) -> Result<OdooReply, OdooError>;

    /// Runs `model.method(*args, **kwargs)` through `/web/dataset/call_kw` on a session.
    async fn call_kw(
        &self,
        session_id: &str,
        model: &str,
        method: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<Value, OdooError> {
        let mut params = Map::new();
        params.insert("model".into(), Value::String(model.into()));
        params.insert("method".into(), Value::String(method.into()));
        params.insert("args".into(), Value::Array(args));
        params.insert("kwargs".into(), Value::Object(kwargs));
        let path = format!("/web/dataset/call_kw/{model}/{method}");
        Ok(self
            .json_rpc(&path, Value::Object(params), Some(session_id))
            .await?
            .result)
    }
}

/// An Odoo client that refuses every call: for filter tests and tools with no tenant.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoOdoo;

#[async_trait]
impl OdooClient for NoOdoo {
    async fn json_rpc(&self, _: &str, _: Value, _: Option<&str>) -> Result<OdooReply, OdooError> {
        Err(OdooError::Unavailable(
            "no Odoo client in this context".into(),
        ))
    }
}
