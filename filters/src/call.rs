//! The parsed form of one Odoo RPC call, whatever route shape it arrived in.
//!
//! Every filter sees a [`Call`]; none of them needs to know whether the caller used the web
//! client's `call_kw`, external `/jsonrpc`, XML-RPC or Odoo 19's `/json/2`. The fields keep the
//! call's meaning (who, which model, which method, with what), while [`Shape`] remembers how to
//! write it back when a filter rewrote it.

use serde_json::{Map, Value};

/// How a call arrived. Decides how it is serialised again and which parts of it Odoo trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// `/web/dataset/call_kw[/<anything>]`: model and method come from the body; the URL suffix
    /// is decoration and never trusted.
    CallKw,
    /// `/web/dataset/call_button[/<anything>]`: always a write.
    CallButton,
    /// `/jsonrpc` with `params.service` / `params.method` / `params.args`.
    JsonRpc,
    /// `/xmlrpc/2/<service>` (`legacy: false`) or `/xmlrpc/<service>` (`legacy: true`).
    XmlRpc {
        /// `true` for the pre-`/2` endpoints, whose faults use string codes.
        legacy: bool,
    },
    /// Odoo 19's `/json/2/<model>/<method>`: named arguments, bearer API key, no envelope.
    Json2,
    /// Any other `type='json'` route (`/web/session/authenticate`, `/web/action/load`, ...):
    /// a JSON-RPC envelope whose `params` are the route's named arguments.
    WebJson,
}

/// The credential a call runs with. It is part of every cache key, so it must identify exactly
/// what Odoo will check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Credential {
    /// No credential (public routes, login calls).
    #[default]
    None,
    /// Odoo's `session_id` cookie.
    Session(String),
    /// `/jsonrpc` and XML-RPC `object` calls: `(db, uid, password or API key)`.
    Password {
        /// The database named in the call.
        db: String,
        /// The uid, as sent (Odoo checks it together with the password).
        uid: i64,
        /// The password or API key, as sent.
        password: String,
    },
    /// `/json/2`: `Authorization: bearer <key>` plus an optional `X-Odoo-Database`.
    ApiKey {
        /// The API key.
        key: String,
        /// The database from `X-Odoo-Database`, if any.
        db: Option<String>,
    },
}

/// One Odoo call, parsed once per request.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The route shape it arrived in.
    pub shape: Shape,
    /// The request path (without query), e.g. `/web/dataset/call_kw/res.partner/read`.
    pub path: String,
    /// JSON-RPC `id`, echoed back by Odoo (and by BridgeCore's own answers). `None` when the
    /// envelope had none, or for shapes without one (XML-RPC, `/json/2`).
    pub id: Option<Value>,
    /// `/jsonrpc` and XML-RPC service: `object`, `common`, `db`.
    pub service: Option<String>,
    /// `/jsonrpc` and XML-RPC service method: `execute_kw`, `execute`, `login`, `version`, ...
    pub service_method: Option<String>,
    /// The database the call names (external RPC, `/json/2` header, session authenticate).
    pub db: Option<String>,
    /// The model the ORM method runs on.
    pub model: Option<String>,
    /// The ORM method (`search_read`, `write`, `action_confirm`, ...).
    pub method: Option<String>,
    /// Positional arguments of the ORM method (for `execute_kw`: the 6th element).
    pub args: Vec<Value>,
    /// Keyword arguments of the ORM method, `context` included when sent.
    pub kwargs: Map<String, Value>,
    /// For [`Shape::WebJson`] and `/web/session/*`: the route's `params` object.
    pub params: Map<String, Value>,
    /// Who the call runs as.
    pub credential: Credential,
}

impl Call {
    /// The context the ORM will run with: `kwargs.context` (for `call_kw`, `execute_kw`,
    /// `/json/2`), or `params.context` for other JSON routes. `None` when absent.
    pub fn context(&self) -> Option<&Map<String, Value>> {
        self.kwargs
            .get("context")
            .or_else(|| self.params.get("context"))
            .and_then(Value::as_object)
    }

    /// The login a call tries, as `(db, login)`: `common.login/authenticate`,
    /// `/web/session/authenticate`. Used to limit brute force per account.
    pub fn login_attempt(&self) -> Option<(Option<&str>, &str)> {
        match self.shape {
            Shape::JsonRpc | Shape::XmlRpc { .. }
                if self.service.as_deref() == Some("common")
                    && matches!(
                        self.service_method.as_deref(),
                        Some("login" | "authenticate")
                    ) =>
            {
                let login = self.args.get(1)?.as_str()?;
                Some((self.args.first().and_then(Value::as_str), login))
            }
            Shape::WebJson if self.path == "/web/session/authenticate" => {
                let login = self.params.get("login")?.as_str()?;
                Some((self.params.get("db").and_then(Value::as_str), login))
            }
            _ => None,
        }
    }
}
