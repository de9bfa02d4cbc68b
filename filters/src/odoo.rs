//! The handle filters use to ask Odoo something themselves.
//!
//! Login, batched reads for field expansion, `fields_get` for the dependency graph and access
//! checks all need their own calls to the tenant's Odoo. The filters crate does no I/O, so it
//! only names the operation; BridgeCore implements it over the tenant's upstream set, with the
//! same concurrency bound and timeouts as proxied traffic.

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use crate::call::Credential;

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

    /// POSTs `body` (named arguments, `ids` among them) to Odoo 19's
    /// `/json/2/<model>/<method>` with `Authorization: bearer <key>` and, when given,
    /// `X-Odoo-Database` (odoo-protocol.md §2.12); the answer is the method's bare result.
    ///
    /// An error answer is [`OdooError::Odoo`] with the HTTP status as `code` (401, 403, 404,
    /// 422, ...) and the body's `name` and `message`. The default refuses: only a client that
    /// speaks HTTP to a tenant can do this.
    async fn json2(
        &self,
        _model: &str,
        _method: &str,
        _body: Value,
        _key: &str,
        _db: Option<&str>,
    ) -> Result<Value, OdooError> {
        Err(OdooError::Unavailable(
            "this Odoo client cannot call /json/2".into(),
        ))
    }

    /// Runs `model.method(*args, **kwargs)` **as the caller**: with the credential the caller's
    /// own call carries, so that Odoo applies that user's access rights and record rules to
    /// what BridgeCore asks on its behalf (batched reads, `fields_get` for field selection,
    /// expansion reads). Each credential goes the way its caller's call went:
    ///
    /// - [`Credential::Session`]: `/web/dataset/call_kw` with the `session_id` cookie;
    /// - [`Credential::Password`]: `/jsonrpc` `object.execute_kw(db, uid, password, ...)`;
    /// - [`Credential::ApiKey`]: `/json/2/<model>/<method>` ([`OdooClient::json2`]), named
    ///   arguments only: `args` may hold at most `ids` (`args[0]`), sent as `ids`;
    /// - [`Credential::None`]: refused; BridgeCore never calls Odoo anonymously for a caller.
    async fn call_as(
        &self,
        credential: &Credential,
        model: &str,
        method: &str,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<Value, OdooError> {
        match credential {
            Credential::Session(sid) => self.call_kw(sid, model, method, args, kwargs).await,
            Credential::Password { db, uid, password } => {
                let params = json!({
                    "service": "object",
                    "method": "execute_kw",
                    "args": [db, uid, password, model, method, args, kwargs],
                });
                Ok(self.json_rpc("/jsonrpc", params, None).await?.result)
            }
            Credential::ApiKey { key, db } => {
                let body = json2_body(args, kwargs)?;
                self.json2(model, method, body, key, db.as_deref()).await
            }
            Credential::None => Err(OdooError::Unavailable(
                "no credential to call Odoo as the caller".into(),
            )),
        }
    }

    /// The server's major version (`common.version`'s `server_version_info[0]`: 16, 17, 18,
    /// ...), which decides whether `web_read`/`specification` exist (17+). Needs no
    /// credential. Asks Odoo every time: callers cache it (per tenant and configuration
    /// generation).
    async fn server_major_version(&self) -> Result<u32, OdooError> {
        let params = json!({"service": "common", "method": "version", "args": []});
        let result = self.json_rpc("/jsonrpc", params, None).await?.result;
        result
            .get("server_version_info")
            .and_then(|v| v.get(0))
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                OdooError::Protocol("common.version has no server_version_info[0]".into())
            })
    }
}

/// The `/json/2` body of an ORM call: `kwargs` plus `ids` = `args[0]` (the only positional
/// argument `/json/2` can carry).
fn json2_body(args: Vec<Value>, mut kwargs: Map<String, Value>) -> Result<Value, OdooError> {
    if args.len() > 1 {
        return Err(OdooError::Unavailable(
            "/json/2 takes named arguments: only ids can be passed by position".into(),
        ));
    }
    if kwargs.contains_key("ids") {
        return Err(OdooError::Unavailable(
            "/json/2 `ids` must be given by position".into(),
        ));
    }
    if let Some(ids) = args.into_iter().next() {
        kwargs.insert("ids".into(), ids);
    }
    Ok(Value::Object(kwargs))
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records every request instead of sending it.
    #[derive(Default)]
    struct Recorder {
        seen: Mutex<Vec<Value>>,
    }

    #[async_trait]
    impl OdooClient for Recorder {
        async fn json_rpc(
            &self,
            path: &str,
            params: Value,
            session_id: Option<&str>,
        ) -> Result<OdooReply, OdooError> {
            let result = if params["method"] == "version" {
                json!({"server_version": "17.0", "server_version_info": [17, 0, 0, "final", 0, ""]})
            } else {
                json!([])
            };
            self.seen
                .lock()
                .unwrap()
                .push(json!({"path": path, "params": params, "session": session_id}));
            Ok(OdooReply {
                result,
                session_id: None,
            })
        }

        async fn json2(
            &self,
            model: &str,
            method: &str,
            body: Value,
            key: &str,
            db: Option<&str>,
        ) -> Result<Value, OdooError> {
            self.seen.lock().unwrap().push(
                json!({"json2": format!("{model}/{method}"), "body": body, "key": key, "db": db}),
            );
            Ok(json!([]))
        }
    }

    fn kwargs() -> Map<String, Value> {
        let mut k = Map::new();
        k.insert("fields".into(), json!(["name"]));
        k
    }

    #[tokio::test]
    async fn call_as_uses_the_callers_own_channel() {
        let odoo = Recorder::default();
        let args = vec![json!([1, 2])];
        odoo.call_as(
            &Credential::Session("sid1".into()),
            "res.partner",
            "read",
            args.clone(),
            kwargs(),
        )
        .await
        .unwrap();
        let password = Credential::Password {
            db: "prod".into(),
            uid: 6,
            password: "pw".into(),
        };
        odoo.call_as(&password, "res.partner", "read", args.clone(), kwargs())
            .await
            .unwrap();
        let key = Credential::ApiKey {
            key: "k1".into(),
            db: Some("prod".into()),
        };
        odoo.call_as(&key, "res.partner", "read", args.clone(), kwargs())
            .await
            .unwrap();
        let seen = odoo.seen.lock().unwrap().clone();
        assert_eq!(
            seen[0],
            json!({"path": "/web/dataset/call_kw/res.partner/read", "session": "sid1",
                   "params": {"model": "res.partner", "method": "read", "args": [[1, 2]], "kwargs": {"fields": ["name"]}}})
        );
        assert_eq!(
            seen[1],
            json!({"path": "/jsonrpc", "session": null,
                   "params": {"service": "object", "method": "execute_kw",
                              "args": ["prod", 6, "pw", "res.partner", "read", [[1, 2]], {"fields": ["name"]}]}})
        );
        assert_eq!(
            seen[2],
            json!({"json2": "res.partner/read", "key": "k1", "db": "prod",
                   "body": {"ids": [1, 2], "fields": ["name"]}})
        );
    }

    #[tokio::test]
    async fn call_as_refuses_what_it_cannot_send() {
        let odoo = Recorder::default();
        let none = odoo
            .call_as(
                &Credential::None,
                "res.partner",
                "read",
                vec![json!([1])],
                Map::new(),
            )
            .await;
        assert!(matches!(none, Err(OdooError::Unavailable(_))));
        let key = Credential::ApiKey {
            key: "k".into(),
            db: None,
        };
        let two = odoo
            .call_as(
                &key,
                "res.partner",
                "read",
                vec![json!([1]), json!(["name"])],
                Map::new(),
            )
            .await;
        assert!(matches!(two, Err(OdooError::Unavailable(_))));
        assert!(odoo.seen.lock().unwrap().is_empty());
        // The default json2 refuses too.
        let refused = NoOdoo
            .call_as(&key, "res.partner", "read", vec![], Map::new())
            .await;
        assert!(matches!(refused, Err(OdooError::Unavailable(_))));
    }

    #[tokio::test]
    async fn server_major_version_reads_version_info() {
        let odoo = Recorder::default();
        assert_eq!(odoo.server_major_version().await.unwrap(), 17);
        let seen = odoo.seen.lock().unwrap().clone();
        assert_eq!(seen[0]["path"], "/jsonrpc");
        assert_eq!(seen[0]["params"]["service"], "common");
        assert!(NoOdoo.server_major_version().await.is_err());
    }
}
