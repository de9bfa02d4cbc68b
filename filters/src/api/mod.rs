//! BridgeCore's own `/api/v1` call and login API: the request and answer shapes (issue 3).
//!
//! `POST /api/v1/systems/{system_id}/odoo/{operation}` takes a small JSON body
//! (`{model, domain, fields, limit, offset, order, ids, values, context, args, kwargs}`) and
//! answers `{result, cached, optimized}`; `POST /api/v1/auth/{login,refresh,logout}` take the
//! login and token bodies (design.md §4). This module is the pure half of that: bytes in, a
//! validated value or an answer out. The glue reads the body, calls these functions, runs the
//! built [`Call`](crate::Call) on the caller's Odoo session through `/web/dataset/call_kw`,
//! and writes the answer.
//!
//! # Why a separate, strict layer
//!
//! The API is an entry point for callers that never speak Odoo's wire protocol, so everything
//! they send is checked here, once, before it becomes an ORM call:
//!
//! - [`build_call`] maps each [`Operation`] onto the exact Odoo 16/17/18 signature
//!   (odoo-protocol.md §2.6, §5.1, §7) and refuses bodies Odoo would misread: unknown members,
//!   wrong types, model or method names that are not Odoo names. The call it builds is a plain
//!   `call_kw` [`Call`](crate::Call), so it is classed, rate-limited, cached and invalidated
//!   exactly like the same call sent by the web client ([`ApiCall::into_call`]).
//! - [`map_answer`] turns Odoo's JSON-RPC answer into an HTTP status and a `{detail}` body, and
//!   never passes on `error.data.debug`: that is a server traceback, which Odoo sends to every
//!   caller and which an edge API has no business publishing.
//! - [`parse_login`], [`parse_refresh`] and [`parse_logout`] read the auth bodies without ever
//!   echoing a password or a token (errors name fields, never values; the request types' `Debug`
//!   redacts the secrets).
//!
//! # Bounds
//!
//! Bodies are read with [`crate::json::from_slice`], so nesting stops at serde_json's default
//! limit (127 levels) and nothing here recurses over untrusted JSON on its own: the only walks
//! are one level deep (lists of ids or names, the top of a `specification`). Names echoed in
//! error messages are cut to [`MAX_ECHO`] characters and at most [`MAX_LISTED`] of them are
//! listed. Body size is the glue's business (`max_body_size`). No function here panics,
//! whatever the bytes (property-tested).

mod answer;
mod call;
mod login;
#[cfg(test)]
mod tests;

use std::fmt;

use serde_json::{Map, Value};

pub use answer::{error_status, map_answer, map_odoo_error, map_result, ApiAnswer, Served};
pub use call::{build_call, parse_operation, ApiCall, Operation, MAX_NAME_LEN, MAX_RECORD_ID};
pub use login::{
    parse_login, parse_logout, parse_refresh, LoginRequest, LogoutRequest, RefreshRequest,
};

/// How many characters of a caller-sent name (an unknown field, operation or method) an error
/// message repeats.
pub const MAX_ECHO: usize = 64;

/// How many unknown fields an error message lists.
pub const MAX_LISTED: usize = 8;

/// Why an `/api/v1` request body is refused. The glue answers [`ApiError::status`] with
/// `crate::error::api_error(&err.detail())`.
///
/// Messages name fields and say what they must be; they never repeat a value the caller sent,
/// except names (fields, operations, methods), cut to [`MAX_ECHO`] characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The `{operation}` path segment is not one of [`Operation::ALL`]: 404.
    #[error("unknown operation `{0}`; operations: {ops}", ops = call::operation_names())]
    UnknownOperation(String),
    /// The body is empty where a JSON object is required.
    #[error("the request body is empty; expected a JSON object")]
    EmptyBody,
    /// The body is not JSON (or nests deeper than serde_json's limit).
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// The body is JSON, but not an object.
    #[error("the request body must be a JSON object")]
    NotAnObject,
    /// Members the endpoint does not take (names cut and listed up to [`MAX_LISTED`]).
    #[error("{}", unknown_fields(.fields, .for_what, .allowed))]
    UnknownFields {
        /// The unknown members, in body order.
        fields: Vec<String>,
        /// What refused them: `` `search_read` ``, `login`, ...
        for_what: &'static str,
        /// The members it takes.
        allowed: &'static [&'static str],
    },
    /// A required member is absent (or `null`).
    #[error("missing `{0}`")]
    Missing(&'static str),
    /// Neither of two members, one of which is required, is given.
    #[error("missing `{0}` or `{1}`")]
    MissingOneOf(&'static str, &'static str),
    /// A member has the wrong type or form.
    #[error("`{field}` must be {expected}")]
    Invalid {
        /// The member at fault.
        field: &'static str,
        /// What it must be, in words.
        expected: &'static str,
    },
    /// A member that must not be given together with another one.
    #[error("give `{0}` or `{1}`, not both")]
    Exclusive(&'static str, &'static str),
    /// Two members that say the same thing say different things (`login` and `username`).
    #[error("`{0}` and `{1}` differ; give one of them")]
    Differ(&'static str, &'static str),
    /// A keyword argument set both by a body member and in the body's `kwargs`.
    #[error("`{0}` is given both by a field of the body and in `kwargs`; give it once")]
    KwargConflict(String),
    /// `call` of a private method (leading `_`): 403, as Odoo itself refuses them with an
    /// `AccessError` ("Private methods (such as ...) cannot be called remotely").
    #[error("private methods (such as `{0}`) cannot be called remotely; Odoo refuses them too")]
    PrivateMethod(String),
}

impl ApiError {
    /// The HTTP status: 404 for an unknown operation, 403 for a private method (what Odoo's
    /// `AccessError` maps to), 400 for everything else (all other problems are the body's
    /// shape: none needs Odoo's data to be decided, so none is a 422).
    pub fn status(&self) -> u16 {
        match self {
            ApiError::UnknownOperation(_) => 404,
            ApiError::PrivateMethod(_) => 403,
            _ => 400,
        }
    }

    /// The text of the `{"detail": …}` answer.
    pub fn detail(&self) -> String {
        self.to_string()
    }
}

fn unknown_fields(fields: &[String], for_what: &str, allowed: &[&str]) -> String {
    let plural = if fields.len() == 1 { "" } else { "s" };
    let mut listed = fields
        .iter()
        .take(MAX_LISTED)
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if fields.len() > MAX_LISTED {
        listed.push_str(&format!(" and {} more", fields.len() - MAX_LISTED));
    }
    format!(
        "unknown field{plural} {listed} for {for_what}; allowed: {}",
        allowed.join(", ")
    )
}

/// `name` cut to [`MAX_ECHO`] characters (with `…` when cut), for error messages.
pub(crate) fn echo(name: &str) -> String {
    let mut chars = name.char_indices();
    match chars.nth(MAX_ECHO) {
        None => name.to_owned(),
        Some((end, _)) => format!("{}…", &name[..end]),
    }
}

/// The body as a JSON object, `null` members removed: everywhere in this API a `null` member
/// means the same as an absent one (clients generated from schemas send every optional member,
/// unset ones as `null`).
pub(crate) fn object_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::EmptyBody);
    }
    match crate::json::from_slice(body) {
        Ok(Value::Object(mut map)) => {
            map.retain(|_, v| !v.is_null());
            Ok(map)
        }
        Ok(_) => Err(ApiError::NotAnObject),
        Err(e) => Err(ApiError::InvalidJson(e.to_string())),
    }
}

/// Refuses members of `map` not in `allowed` (names cut for the message).
pub(crate) fn only(
    map: &Map<String, Value>,
    for_what: &'static str,
    allowed: &'static [&'static str],
) -> Result<(), ApiError> {
    let fields: Vec<String> = map
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| echo(k))
        .collect();
    if fields.is_empty() {
        Ok(())
    } else {
        Err(ApiError::UnknownFields {
            fields,
            for_what,
            allowed,
        })
    }
}

/// Moves the string member `field` out of `map`, if present.
pub(crate) fn take_string(
    map: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, ApiError> {
    match map.remove(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::Invalid {
            field,
            expected: "a string",
        }),
    }
}

/// Moves the non-empty string member `field` out of `map`, if present.
pub(crate) fn take_non_empty(
    map: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, ApiError> {
    match take_string(map, field) {
        Ok(Some(s)) if s.is_empty() => Err(ApiError::Invalid {
            field,
            expected: "a non-empty string",
        }),
        other => other,
    }
}

/// Moves the list-of-strings member `field` out of `map`, if present.
pub(crate) fn take_strings(
    map: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<Vec<String>>, ApiError> {
    let bad = ApiError::Invalid {
        field,
        expected: "a list of strings",
    };
    match map.remove(field) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                _ => Err(bad.clone()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(bad),
    }
}

/// A `Debug` stand-in for secrets.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
