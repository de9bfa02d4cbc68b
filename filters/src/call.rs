//! The parsed form of one Odoo RPC call, whatever route shape it arrived in.
//!
//! Every filter sees a [`Call`]; none of them needs to know whether the caller used the web
//! client's `call_kw`, external `/jsonrpc`, XML-RPC or Odoo 19's `/json/2`. The fields keep the
//! call's meaning (who, which model, which method, with what), while [`Shape`] remembers how to
//! write it back when a filter rewrote it.
//!
//! `args` and `kwargs` are the bulk of a call and most requests never look at them, so a parsed
//! call keeps them as their (validated) JSON text and builds the [`Value`]s on first access
//! ([`Call::args`], [`Call::kwargs`]); a call written back untouched copies that text verbatim.

use std::fmt;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::json::{self, Plain};

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
    /// Positional arguments of the ORM method (for `execute_kw`: the 6th element). Read with
    /// [`Call::args`], change with [`Call::args_mut`] or [`Call::set_args`].
    pub(crate) args: Lazy<Vec<Value>>,
    /// Keyword arguments of the ORM method, `context` included when sent. Read with
    /// [`Call::kwargs`], change with [`Call::kwargs_mut`] or [`Call::set_kwargs`].
    pub(crate) kwargs: Lazy<Map<String, Value>>,
    /// For [`Shape::WebJson`] and `/web/session/*`: the route's `params` object.
    pub params: Map<String, Value>,
    /// Who the call runs as.
    pub credential: Credential,
}

impl Call {
    /// An empty call of `shape` at `path` (no id, model, arguments or credential), for code that
    /// builds calls itself: fill in the public fields, [`Call::set_args`] and
    /// [`Call::set_kwargs`].
    pub fn new(shape: Shape, path: impl Into<String>) -> Call {
        Call {
            shape,
            path: path.into(),
            id: None,
            service: None,
            service_method: None,
            db: None,
            model: None,
            method: None,
            args: Lazy::from_value(Vec::new()),
            kwargs: Lazy::from_value(Map::new()),
            params: Map::new(),
            credential: Credential::None,
        }
    }

    /// Positional arguments of the ORM method (for `execute_kw`: the 6th element). Decoded from
    /// the request's text on first access, then cached.
    pub fn args(&self) -> &[Value] {
        self.args.get()
    }

    /// The request's own JSON text of the positional and keyword arguments, while neither has
    /// been changed (`None` for built or rewritten calls): lets the cache find a repeated call by
    /// its bytes without decoding them.
    pub fn raw_arguments(&self) -> Option<(&str, &str)> {
        Some((self.args.raw()?, self.kwargs.raw()?))
    }

    /// Keyword arguments of the ORM method, `context` included when sent. Decoded from the
    /// request's text on first access, then cached.
    pub fn kwargs(&self) -> &Map<String, Value> {
        self.kwargs.get()
    }

    /// The positional arguments, to change them. [`Call::to_body`] then writes them from the
    /// values instead of copying the request's text.
    pub fn args_mut(&mut self) -> &mut Vec<Value> {
        self.args.get_mut()
    }

    /// The keyword arguments, to change them (see [`Call::args_mut`]).
    pub fn kwargs_mut(&mut self) -> &mut Map<String, Value> {
        self.kwargs.get_mut()
    }

    /// Replaces the positional arguments.
    pub fn set_args(&mut self, args: Vec<Value>) {
        self.args = Lazy::from_value(args);
    }

    /// Replaces the keyword arguments.
    pub fn set_kwargs(&mut self, kwargs: Map<String, Value>) {
        self.kwargs = Lazy::from_value(kwargs);
    }

    /// The context the ORM will run with: `kwargs.context` (for `call_kw`, `execute_kw`,
    /// `/json/2`), or `params.context` for other JSON routes. `None` when absent.
    pub fn context(&self) -> Option<&Map<String, Value>> {
        self.kwargs()
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
                let args = self.args();
                let login = args.get(1)?.as_str()?;
                Some((args.first().and_then(Value::as_str), login))
            }
            Shape::WebJson if self.path == "/web/session/authenticate" => {
                let login = self.params.get("login")?.as_str()?;
                Some((self.params.get("db").and_then(Value::as_str), login))
            }
            _ => None,
        }
    }
}

/// A JSON array or object (`T` is `Vec<Value>` or `Map<String, Value>`) kept as its text until
/// first read.
///
/// Invariant: `raw` is `None` only when `value` is set. `raw`, when present, is text that
/// [`jsonrpc`](crate::jsonrpc) validated as a `T` as strictly as [`json::from_slice`] reads it
/// (syntax, strings, number ranges, nesting depth in its document), so decoding it cannot fail. It is dropped as soon as
/// the value may change ([`Lazy::get_mut`]); while present, it is what the value serialises to.
#[derive(Clone)]
pub(crate) struct Lazy<T> {
    raw: Option<Box<str>>,
    value: OnceLock<T>,
}

impl<T: Plain> Lazy<T> {
    /// An already built value.
    pub(crate) fn from_value(value: T) -> Self {
        Lazy {
            raw: None,
            value: OnceLock::from(value),
        }
    }

    /// Text validated as a `T` (see the type's invariant), decoded on first read.
    pub(crate) fn from_checked_raw(raw: Box<str>) -> Self {
        Lazy {
            raw: Some(raw),
            value: OnceLock::new(),
        }
    }

    /// The text the value was parsed from, while it is unchanged.
    pub(crate) fn raw(&self) -> Option<&str> {
        self.raw.as_deref()
    }

    pub(crate) fn get(&self) -> &T {
        self.value.get_or_init(|| self.decode())
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        if self.value.get().is_none() {
            self.value = OnceLock::from(self.decode());
        }
        self.raw = None;
        self.value
            .get_mut()
            .expect("the value is set: it was decoded just above")
    }

    fn decode(&self) -> T {
        // The text was validated as a `T` when the call was parsed (see the invariant), so this
        // cannot fail; the empty fallback only keeps a broken invariant from panicking.
        self.raw
            .as_deref()
            .and_then(|raw| json::from_slice(raw.as_bytes()).ok())
            .and_then(T::from_plain)
            .unwrap_or_default()
    }
}

/// Equal when the values are: text that differs only in spacing, member order or duplicate
/// members compares equal, as it would have when parsed eagerly.
impl<T: Plain + PartialEq> PartialEq for Lazy<T> {
    fn eq(&self, other: &Self) -> bool {
        if let (Some(a), Some(b)) = (&self.raw, &other.raw) {
            if a == b {
                return true;
            }
        }
        self.get() == other.get()
    }
}

/// Shows the value (decoding it), as the field did before it was lazy.
impl<T: Plain + fmt::Debug> fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}
