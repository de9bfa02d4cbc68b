//! Odoo's JSON-RPC answer to an API call, as the API's answer.
//!
//! | Odoo answer | status | body |
//! |---|---|---|
//! | `result` (or none: a method that returned `None`) | 200 | `{"result": …, "cached": …, "optimized": …}` |
//! | `error`, `code` 100 (`odoo.http.SessionExpiredException`), or `odoo.exceptions.AccessDenied` | 401 | `{"detail", "odoo_error": {"name", "message"}}` |
//! | `error`, `odoo.exceptions.AccessError` | 403 | same |
//! | `error`, `odoo.exceptions.MissingError` | 404 | same |
//! | `error`, `odoo.exceptions.UserError`, `ValidationError`, `RedirectWarning`, 16's `Warning` | 422 | same |
//! | any other `error` (`builtins.ValueError`, `odoo.exceptions.CacheMiss`, `psycopg2.*`, ...) | 502 | same |
//! | not a JSON-RPC answer | 502 | `{"detail": "invalid answer from Odoo"}` |
//!
//! Names are matched exactly: the 422 group is the errors Odoo raises to tell a user their
//! input was refused. `CacheMiss` subclasses `KeyError`, not `UserError`: it is an Odoo-side
//! bug, so it stays a 502 like every other unexpected exception.
//!
//! The message is `error.data.message`, falling back to `error.message`. `error.data.debug` (the
//! server's traceback) and `error.data.arguments`/`context` are never passed on.
//!
//! A result is copied as Odoo wrote it: the answer is never parsed into a value tree, so a
//! large `search_read` costs a scan, a validation pass and one copy. The validation is
//! [`crate::json`]'s: a result nested deeper than serde_json's limit, or holding what serde_json
//! cannot decode (an out-of-range number, a lone surrogate escape), is an invalid answer.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::odoo::OdooError;

/// An API answer: the HTTP status and the JSON body (`Content-Type: application/json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// How a result was served: the `cached` and `optimized` flags of a successful answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Served {
    /// The result came from BridgeCore's cache.
    pub cached: bool,
    /// BridgeCore rewrote the call (limits, field expansion) before sending it.
    pub optimized: bool,
}

impl ApiAnswer {
    /// 200 `{"result": result, "cached": …, "optimized": …}`, for a result the glue holds as a
    /// value (e.g. from the cache).
    pub fn result(result: &Value, served: Served) -> ApiAnswer {
        let text = serde_json::to_string(result).unwrap_or_else(|_| "null".into());
        ApiAnswer::result_text(&text, served)
    }

    /// The same, from the result's JSON text (a cache hit holds the text, not a value).
    pub fn result_text(result: &str, served: Served) -> ApiAnswer {
        let mut body = Vec::with_capacity(result.len() + 48);
        body.extend_from_slice(b"{\"result\":");
        body.extend_from_slice(result.as_bytes());
        body.extend_from_slice(if served.cached {
            b",\"cached\":true"
        } else {
            b",\"cached\":false"
        });
        body.extend_from_slice(if served.optimized {
            b",\"optimized\":true}"
        } else {
            b",\"optimized\":false}"
        });
        ApiAnswer { status: 200, body }
    }

    /// An Odoo error: `{"detail": message, "odoo_error": {"name", "message"}}`.
    fn odoo_error(code: Option<i64>, name: Option<&str>, message: &str) -> ApiAnswer {
        let body = json!({
            "detail": message,
            "odoo_error": { "name": name, "message": message },
        });
        ApiAnswer {
            status: error_status(code, name),
            body: serde_json::to_vec(&body).unwrap_or_default(),
        }
    }

    /// BridgeCore's own `{"detail": message}`.
    fn detail(status: u16, message: &str) -> ApiAnswer {
        ApiAnswer {
            status,
            body: crate::error::api_error(message),
        }
    }

    /// 502 `{"detail": "invalid answer from Odoo"}`.
    fn invalid() -> ApiAnswer {
        ApiAnswer::detail(502, "invalid answer from Odoo")
    }
}

/// The status for an Odoo error with `error.code` and `error.data.name` (see the module
/// table).
pub fn error_status(code: Option<i64>, name: Option<&str>) -> u16 {
    if code == Some(100) {
        return 401;
    }
    match name {
        Some("odoo.http.SessionExpiredException" | "odoo.exceptions.AccessDenied") => 401,
        Some("odoo.exceptions.AccessError") => 403,
        Some("odoo.exceptions.MissingError") => 404,
        Some(
            "odoo.exceptions.UserError"
            | "odoo.exceptions.ValidationError"
            | "odoo.exceptions.RedirectWarning"
            | "odoo.exceptions.Warning",
        ) => 422,
        _ => 502,
    }
}

/// The members of a JSON-RPC answer, as their text; `Some` when present, `null` included.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    jsonrpc: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

/// Odoo's JSON-RPC answer `body` to a `call_kw` as the API's answer (see the module docs).
/// Never panics.
pub fn map_answer(body: &[u8], served: Served) -> ApiAnswer {
    // A struct also deserialises from a JSON array: only an object is an answer.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return ApiAnswer::invalid();
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(body) else {
        return ApiAnswer::invalid();
    };
    let error = envelope.error.filter(|e| e.get() != "null");
    match (error, envelope.result) {
        (Some(error), _) => match crate::json::from_slice(error.get().as_bytes()) {
            Ok(Value::Object(error)) => {
                let data = error.get("data").and_then(Value::as_object);
                let name = data.and_then(|d| d.get("name")).and_then(Value::as_str);
                let message = data
                    .and_then(|d| d.get("message"))
                    .and_then(Value::as_str)
                    .filter(|m| !m.is_empty())
                    .or_else(|| error.get("message").and_then(Value::as_str))
                    .unwrap_or("Odoo answered with an error");
                let code = error.get("code").and_then(Value::as_i64);
                ApiAnswer::odoo_error(code, name, message)
            }
            _ => ApiAnswer::invalid(),
        },
        // Only what BridgeCore could read as a value itself (nesting, numbers, escapes), so
        // that the answer is one the cache and any other reader can decode.
        (None, Some(result)) if crate::json::check_raw(result, 1) => {
            ApiAnswer::result_text(result.get(), served)
        }
        (None, Some(_)) => ApiAnswer::invalid(),
        // `{"jsonrpc": "2.0", "id": …}`: Odoo leaves `result` out when the method returned None.
        (None, None) if envelope.jsonrpc.is_some() => ApiAnswer::result_text("null", served),
        (None, None) => ApiAnswer::invalid(),
    }
}

/// An error of the internal Odoo client as the API's answer: Odoo's own errors as in
/// [`map_answer`]; `Unavailable` → 502 "Odoo unavailable", `Timeout` → 504, `Protocol` → 502
/// "invalid answer from Odoo". The upstream's own wording (addresses, socket errors) is not
/// passed on.
pub fn map_odoo_error(err: &OdooError) -> ApiAnswer {
    match err {
        OdooError::Odoo {
            code,
            name,
            message,
        } => ApiAnswer::odoo_error(
            Some(*code),
            Some(name.as_str()).filter(|n| !n.is_empty()),
            message,
        ),
        OdooError::Unavailable(_) => ApiAnswer::detail(502, "Odoo unavailable"),
        OdooError::Timeout => ApiAnswer::detail(504, "Odoo did not answer in time"),
        OdooError::Protocol(_) => ApiAnswer::invalid(),
    }
}

/// The internal client's answer to a `call_kw` ([`crate::OdooClient::call_kw`]) as the API's
/// answer.
pub fn map_result(result: &Result<Value, OdooError>, served: Served) -> ApiAnswer {
    match result {
        Ok(value) => ApiAnswer::result(value, served),
        Err(err) => map_odoo_error(err),
    }
}
