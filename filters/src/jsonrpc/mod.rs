//! Parses every Odoo call shape into one [`Call`], and writes a call back in its own shape.
//!
//! [`parse`] runs once per RPC request on the hot path; [`Call::to_body`] runs only when a filter
//! rewrote the call, so that it goes upstream in exactly the form Odoo expects for its route.
//! The shapes (odoo-protocol.md §1-§2):
//!
//! | endpoint | body | model / method | credential |
//! |---|---|---|---|
//! | `call_kw`, `call_button` | envelope, `params: {model, method, args, kwargs}` | body (URL suffix ignored) | `session_id` cookie |
//! | `/jsonrpc` | envelope, `params: {service, method, args}` | `execute_kw` / `execute` args | `(db, uid, password)` |
//! | `/xmlrpc[/2]/<service>` | XML-RPC `methodCall` | as `/jsonrpc` | as `/jsonrpc` |
//! | `/json/2/<model>/<method>` | object of named arguments | path | `Authorization: bearer` |
//! | `/web/session/*`, other JSON routes | envelope, `params` = route arguments | none | `session_id` cookie |
//!
//! # Envelope rules
//!
//! As in Odoo's `JsonRPCDispatcher`: the top level must be a JSON object (an array is a batch,
//! which Odoo refuses: [`ParseError::Batch`]; anything else is [`ParseError::NotAnObject`]);
//! `params` must be an object when present and is empty when absent; `id` may be any JSON value
//! and is echoed exactly (`None` when absent). The `jsonrpc` and `method` members are not
//! validated, because Odoo ignores them; [`Call::to_body`] always writes `"jsonrpc":"2.0"` and
//! `"method":"call"`, which Odoo treats the same as whatever was sent. Other top-level members
//! mean nothing to Odoo and are dropped from a rewritten call.
//!
//! # What `Call::params` holds
//!
//! For [`Shape::WebJson`] it is the route's whole `params` object. For `call_kw`, `call_button`
//! and `/jsonrpc` it holds the `params` members the call does not model (e.g. Odoo 16's
//! top-level `params.context`), so that a rewritten call keeps them: [`Call::to_body`] writes
//! them back next to the modelled members (which win on a name clash).
//!
//! # Credentials
//!
//! - `session_id` cookie ([`session_cookie`]): `call_kw`, `call_button`, JSON routes; and
//!   `/json/2` when no bearer key is sent (Odoo 19's `auth='bearer'` falls back to the session).
//! - `object.execute_kw/execute` over `/jsonrpc` or XML-RPC: [`Credential::Password`] from the
//!   first three arguments (the password may be an API key). Other services carry none.
//! - `/json/2`: [`Credential::ApiKey`] from `Authorization: bearer <key>` and `X-Odoo-Database`.
//!
//! # XML-RPC
//!
//! Values are read with quick-xml into [`serde_json::Value`]: `int`/`i4`/`i8` (and Python's
//! `i1`, `i2`, `biginteger`) become integers, `boolean` a bool, `string` and untyped text a
//! string, `double` a float, `array` an array, `struct` an object, `nil` null. `base64` and
//! `dateTime.iso8601` are kept as their text: a rewritten call writes them back as `<string>`,
//! so Odoo then sees a `str` where it would have seen `bytes`/`datetime`. DOCTYPE declarations
//! (hence entity definitions, XXE and "billion laughs") are refused, values nest at most
//! [`MAX_XML_DEPTH`] deep, line ends are normalised as an XML parser must, and characters XML 1.0
//! forbids are refused, so that what BridgeCore reads is what Odoo's expat parser reads.
//!
//! Answers BridgeCore writes itself to XML-RPC callers are written as Odoo writes them:
//! [`xmlrpc_response`] and [`xmlrpc_fault`], with Odoo's fault codes ([`odoo_fault`]).
//!
//! # Performance
//!
//! `call_kw`, `call_button` and `/jsonrpc` (the hot shapes) are read in one pass that builds no
//! [`Value`] tree for the ORM arguments: `args` and `kwargs` are kept as their JSON text, checked
//! as strictly as building them would be (so malformed JSON anywhere is still refused before
//! anything is forwarded), and decoded on first access ([`Call::args`], [`Call::kwargs`]). A
//! call written back with them untouched copies that text verbatim. Whenever that fast reading
//! finds anything amiss, the body is read again the straightforward way (one [`Value`] tree,
//! members moved out of it), which then names the error exactly: so the fast path decides
//! nothing on its own, it only ever returns the call the straightforward reading would have.
//! The other shapes are read the straightforward way. Serialising borrows from the call
//! instead of building a new value tree.

use std::borrow::Cow;

use http::request::Parts;
use http::HeaderMap;
use serde::ser::{Error as _, SerializeMap, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::call::{Call, Credential, Lazy, Shape};
use crate::route::Endpoint;

mod fast;
mod fault;
#[cfg(test)]
mod tests;

pub use fault::{bridgecore_fault, odoo_fault, FaultCode};

/// How deep XML-RPC values may nest (arrays and structs). Deeper documents are refused, so that
/// hostile input cannot exhaust the stack; real calls nest a handful of levels (domains).
pub const MAX_XML_DEPTH: usize = 64;

/// Why a request body is not an Odoo call BridgeCore can read. Answered as a 400 with
/// [`ParseError::message`] (odoo-protocol.md §1.2: Odoo answers the same bodies with a 400).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The body is not JSON (or nests deeper than serde_json's limit of 128).
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The top-level JSON value is not an object (nor an array, see [`ParseError::Batch`]).
    #[error("the request body must be a JSON object")]
    NotAnObject,
    /// A top-level JSON array: JSON-RPC batches, which Odoo does not support.
    #[error("JSON-RPC batch requests (a top-level array) are not supported")]
    Batch,
    /// `params` is present but not an object; Odoo only takes by-name parameters.
    #[error("`params` must be a JSON object")]
    ParamsNotObject,
    /// A member the call needs is absent.
    #[error("missing `{0}`")]
    MissingField(&'static str),
    /// A member has the wrong type.
    #[error("`{field}` must be {expected}")]
    BadField {
        /// The member (or header) at fault.
        field: &'static str,
        /// What it must be, in words.
        expected: &'static str,
    },
    /// The body is not a well-formed XML-RPC `methodCall`, or uses refused XML features.
    #[error("invalid XML-RPC request: {0}")]
    InvalidXml(String),
    /// The endpoint's body is not an Odoo call ([`Endpoint::is_rpc`] is false): a caller bug.
    #[error("this route does not carry an Odoo call")]
    NotRpc,
}

impl ParseError {
    /// The text for the 400 answer's body: says what is wrong without echoing secrets (field
    /// names only, never values).
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// Why a (rewritten) call cannot be written in its shape. A filter bug, never client input:
/// every call [`parse`] returns can be serialised again.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SerialiseError {
    /// The shape needs this member and the call has none (e.g. `model` for `call_kw`, a
    /// password credential for `object.execute_kw`).
    #[error("cannot serialise the call: missing {0}")]
    MissingField(&'static str),
    /// The shape cannot express what the call holds.
    #[error("cannot serialise the call: {0}")]
    Unrepresentable(&'static str),
}

/// Parses a request body arriving at `endpoint` into a [`Call`].
///
/// `head` gives the path ([`Call::path`], the XML-RPC service) and the headers: the `Cookie`
/// for the `session_id` credential, `Authorization: bearer` and `X-Odoo-Database` for
/// `/json/2`. Never panics, whatever the bytes.
pub fn parse(endpoint: &Endpoint, head: &Parts, body: &[u8]) -> Result<Call, ParseError> {
    let path = head.uri.path();
    match endpoint {
        Endpoint::CallKw => parse_call_kw(Shape::CallKw, path, &head.headers, body),
        Endpoint::CallButton => parse_call_kw(Shape::CallButton, path, &head.headers, body),
        Endpoint::JsonRpc => parse_jsonrpc(path, body),
        Endpoint::XmlRpc { legacy } => parse_xmlrpc(*legacy, path, body),
        Endpoint::Json2 { model, method } => parse_json2(model, method, path, &head.headers, body),
        Endpoint::Session | Endpoint::WebJson => parse_web_json(path, &head.headers, body),
        Endpoint::DatabaseManager | Endpoint::Websocket | Endpoint::Other => {
            Err(ParseError::NotRpc)
        }
    }
}

/// The `session_id` cookie's value, if any.
///
/// Cookie headers are read in order (HTTP/2 may split cookies over several headers), each as
/// `;`-separated pairs with optional whitespace; double quotes around the value are removed.
/// The **first** `session_id` wins, as in werkzeug: since 0.15 (pallets/werkzeug#1458)
/// `request.cookies` is an `ImmutableMultiDict`, whose `get` returns the first value, and
/// Odoo reads `httprequest.cookies.get('session_id')`. An empty first value, or one that
/// is not UTF-8, gives `None`: Odoo treats both as "no session" and starts a fresh one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    for header in headers.get_all(http::header::COOKIE) {
        for pair in header.as_bytes().split(|&b| b == b';') {
            // The name before the first `=`, spaces around it trimmed, is `session_id`: the
            // pair is OWS, `session_id`, OWS, `=` (no byte of the pair is looked at twice).
            let Some(rest) = trim_ows(pair).strip_prefix(b"session_id") else {
                continue;
            };
            let Some(value) = trim_ows(rest).strip_prefix(b"=") else {
                continue;
            };
            let mut value = trim_ows(value);
            if let [b'"', inner @ .., b'"'] = value {
                value = inner;
            }
            if value.is_empty() {
                return None;
            }
            return std::str::from_utf8(value).ok();
        }
    }
    None
}

/// Trims spaces and tabs (HTTP optional whitespace).
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The key of an `Authorization: bearer <key>` header. Like Odoo's `auth='bearer'`, the scheme
/// is matched case-insensitively and the key is everything after `bearer `, untrimmed (so the
/// cache keys on exactly what Odoo checks). `None` for a missing, non-bearer or empty key.
fn bearer_key(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let scheme = value.get(..7)?;
    let key = value.get(7..)?;
    (scheme.eq_ignore_ascii_case("bearer ") && !key.is_empty()).then_some(key)
}

fn session_credential(headers: &HeaderMap) -> Credential {
    session_cookie(headers).map_or(Credential::None, |sid| Credential::Session(sid.to_owned()))
}

/// A parsed JSON-RPC envelope: the `id` (absent is `None`) and the `params` object.
struct Envelope {
    id: Option<Value>,
    params: Map<String, Value>,
}

fn json_value(body: &[u8]) -> Result<Value, ParseError> {
    crate::json::from_slice(body).map_err(|e| ParseError::InvalidJson(e.to_string()))
}

fn envelope(body: &[u8]) -> Result<Envelope, ParseError> {
    let mut top = match json_value(body)? {
        Value::Object(top) => top,
        Value::Array(_) => return Err(ParseError::Batch),
        _ => return Err(ParseError::NotAnObject),
    };
    let params = match top.remove("params") {
        None => Map::new(),
        Some(Value::Object(params)) => params,
        Some(_) => return Err(ParseError::ParamsNotObject),
    };
    Ok(Envelope {
        id: top.remove("id"),
        params,
    })
}

/// Moves the string member `field` out of `map`.
fn take_string(map: &mut Map<String, Value>, field: &'static str) -> Result<String, ParseError> {
    match map.remove(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ParseError::BadField {
            field,
            expected: "a string",
        }),
        None => Err(ParseError::MissingField(field)),
    }
}

/// Moves the array member `field` out of `map`; absent is empty.
fn take_array(map: &mut Map<String, Value>, field: &'static str) -> Result<Vec<Value>, ParseError> {
    match map.remove(field) {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(ParseError::BadField {
            field,
            expected: "an array",
        }),
    }
}

/// Moves the object member `field` out of `map`; absent is empty.
fn take_object(
    map: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Map<String, Value>, ParseError> {
    match map.remove(field) {
        None => Ok(Map::new()),
        Some(Value::Object(o)) => Ok(o),
        Some(_) => Err(ParseError::BadField {
            field,
            expected: "an object",
        }),
    }
}

fn parse_call_kw(
    shape: Shape,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Call, ParseError> {
    match fast::call_kw(shape.clone(), path, body) {
        Some(call) => Ok(Call {
            credential: session_credential(headers),
            ..call
        }),
        None => parse_call_kw_eager(shape, path, headers, body),
    }
}

/// [`parse_call_kw`] the straightforward way: the reference the fast path must agree with.
fn parse_call_kw_eager(
    shape: Shape,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Call, ParseError> {
    let Envelope { id, mut params } = envelope(body)?;
    let model = take_string(&mut params, "model")?;
    let method = take_string(&mut params, "method")?;
    let args = take_array(&mut params, "args")?;
    let kwargs = take_object(&mut params, "kwargs")?;
    Ok(Call {
        id,
        model: Some(model),
        method: Some(method),
        args: Lazy::from_value(args),
        kwargs: Lazy::from_value(kwargs),
        params,
        credential: session_credential(headers),
        ..Call::new(shape, path)
    })
}

fn parse_jsonrpc(path: &str, body: &[u8]) -> Result<Call, ParseError> {
    fast::jsonrpc(path, body).map_or_else(|| parse_jsonrpc_eager(path, body), Ok)
}

/// [`parse_jsonrpc`] the straightforward way: the reference the fast path must agree with.
fn parse_jsonrpc_eager(path: &str, body: &[u8]) -> Result<Call, ParseError> {
    let Envelope { id, mut params } = envelope(body)?;
    let service = take_string(&mut params, "service")?;
    let method = take_string(&mut params, "method")?;
    let args = take_array(&mut params, "args")?;
    let mut call = Call {
        id,
        params,
        ..Call::new(Shape::JsonRpc, path)
    };
    fill_service_call(&mut call, service, method, args)?;
    Ok(call)
}

fn parse_xmlrpc(legacy: bool, path: &str, body: &[u8]) -> Result<Call, ParseError> {
    let service = path.rsplit('/').next().unwrap_or_default();
    if service.is_empty() {
        return Err(ParseError::MissingField("service"));
    }
    let (method, args) = xml::parse_method_call(body)?;
    let mut call = Call::new(Shape::XmlRpc { legacy }, path);
    fill_service_call(&mut call, service.to_owned(), method, args)?;
    Ok(call)
}

/// Fills a `/jsonrpc` or XML-RPC call from `service.method(*args)`: `object.execute_kw` and
/// `object.execute` are unpacked into db, credential, model, method, args and kwargs; other
/// calls keep their arguments as they are (`common.login/authenticate` also name the db).
fn fill_service_call(
    call: &mut Call,
    service: String,
    method: String,
    args: Vec<Value>,
) -> Result<(), ParseError> {
    match (service.as_str(), method.as_str()) {
        ("object", "execute_kw" | "execute") => {
            let keywords = method == "execute_kw";
            let mut it = args.into_iter();
            let db = next_string(&mut it, "args[0] (db)")?;
            let uid = match it.next() {
                None => return Err(ParseError::MissingField("args[1] (uid)")),
                Some(uid) => uid.as_i64().ok_or(ParseError::BadField {
                    field: "args[1] (uid)",
                    expected: "an integer",
                })?,
            };
            let password = next_string(&mut it, "args[2] (password)")?;
            call.model = Some(next_string(&mut it, "args[3] (model)")?);
            call.method = Some(next_string(&mut it, "args[4] (method)")?);
            if keywords {
                let args = match it.next() {
                    None => Vec::new(),
                    Some(Value::Array(a)) => a,
                    Some(_) => {
                        return Err(ParseError::BadField {
                            field: "args[5] (args)",
                            expected: "an array",
                        })
                    }
                };
                let kwargs = match it.next() {
                    None | Some(Value::Null) => Map::new(),
                    Some(Value::Object(o)) => o,
                    Some(_) => {
                        return Err(ParseError::BadField {
                            field: "args[6] (kwargs)",
                            expected: "an object",
                        })
                    }
                };
                if it.next().is_some() {
                    return Err(ParseError::BadField {
                        field: "args",
                        expected: "at most 7 elements for execute_kw",
                    });
                }
                call.set_args(args);
                call.set_kwargs(kwargs);
            } else {
                call.set_args(it.collect());
            }
            call.db = Some(db.clone());
            call.credential = Credential::Password { db, uid, password };
        }
        ("common", "login" | "authenticate") => {
            call.db = args.first().and_then(Value::as_str).map(str::to_owned);
            call.set_args(args);
        }
        _ => call.set_args(args),
    }
    call.service = Some(service);
    call.service_method = Some(method);
    Ok(())
}

fn next_string(
    it: &mut impl Iterator<Item = Value>,
    field: &'static str,
) -> Result<String, ParseError> {
    match it.next() {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ParseError::BadField {
            field,
            expected: "a string",
        }),
        None => Err(ParseError::MissingField(field)),
    }
}

fn parse_json2(
    model: &str,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Call, ParseError> {
    let mut kwargs = match json_value(body)? {
        Value::Object(o) => o,
        _ => return Err(ParseError::NotAnObject),
    };
    let args = kwargs.remove("ids").map_or_else(Vec::new, |ids| vec![ids]);
    let db = match headers.get("x-odoo-database") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ParseError::BadField {
                    field: "X-Odoo-Database",
                    expected: "visible ASCII",
                })?
                .to_owned(),
        ),
    };
    let credential = match bearer_key(headers) {
        Some(key) => Credential::ApiKey {
            key: key.to_owned(),
            db: db.clone(),
        },
        None => session_credential(headers),
    };
    Ok(Call {
        db,
        model: Some(model.to_owned()),
        method: Some(method.to_owned()),
        args: Lazy::from_value(args),
        kwargs: Lazy::from_value(kwargs),
        credential,
        ..Call::new(Shape::Json2, path)
    })
}

/// The path whose `params.db` names the database of a session login.
const AUTHENTICATE: &str = "/web/session/authenticate";

fn parse_web_json(path: &str, headers: &HeaderMap, body: &[u8]) -> Result<Call, ParseError> {
    let Envelope { id, params } = envelope(body)?;
    let db = if path == AUTHENTICATE {
        params.get("db").and_then(Value::as_str).map(str::to_owned)
    } else {
        None
    };
    Ok(Call {
        id,
        db,
        params,
        credential: session_credential(headers),
        ..Call::new(Shape::WebJson, path)
    })
}

// === serialisation ===

/// A borrowed piece of a call, serialised as JSON or XML-RPC without building a value tree.
enum Out<'a> {
    Str(&'a str),
    /// Checked JSON text (see [`Lazy`]), written verbatim (never in XML-RPC: see
    /// [`Call::service_args`]).
    Raw(&'a str),
    Int(i64),
    Value(&'a Value),
    Values(&'a [Value]),
    Object(&'a Map<String, Value>),
    Seq(Vec<Out<'a>>),
}

impl Serialize for Out<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Out::Str(v) => s.serialize_str(v),
            // serde_json writes text verbatim only as a `RawValue`; borrowing one reads the
            // text's syntax again, a cost paid only when a rewritten call is written.
            Out::Raw(v) => serde_json::from_str::<&RawValue>(v)
                .map_err(S::Error::custom)?
                .serialize(s),
            Out::Int(v) => s.serialize_i64(*v),
            Out::Value(v) => v.serialize(s),
            Out::Values(v) => v.serialize(s),
            Out::Object(v) => v.serialize(s),
            Out::Seq(v) => s.collect_seq(v),
        }
    }
}

/// An object: the modelled members first, then the other members of `rest` whose names the
/// modelled ones do not take.
struct Merged<'a> {
    fixed: Vec<(&'static str, Out<'a>)>,
    rest: &'a Map<String, Value>,
}

impl Serialize for Merged<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (k, v) in &self.fixed {
            map.serialize_entry(k, v)?;
        }
        for (k, v) in self.rest {
            if !self.fixed.iter().any(|(f, _)| f == k) {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

/// `{"jsonrpc":"2.0","method":"call","params":…,"id":…}` (no `id` when the call had none).
struct EnvelopeOut<'a> {
    params: Merged<'a>,
    id: Option<&'a Value>,
}

impl Serialize for EnvelopeOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("jsonrpc", "2.0")?;
        map.serialize_entry("method", "call")?;
        map.serialize_entry("params", &self.params)?;
        if let Some(id) = self.id {
            map.serialize_entry("id", id)?;
        }
        map.end()
    }
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, SerialiseError> {
    serde_json::to_vec(value)
        .map_err(|_| SerialiseError::Unrepresentable("JSON serialisation failed"))
}

fn required<'a>(field: &'a Option<String>, name: &'static str) -> Result<&'a str, SerialiseError> {
    field.as_deref().ok_or(SerialiseError::MissingField(name))
}

impl Call {
    /// Writes the call back in its own shape, so that a rewritten call goes upstream in the form
    /// Odoo expects for its route (the route itself, [`Call::path`], is not part of the body).
    ///
    /// - `call_kw`/`call_button`: the envelope with `params` = [`Call::params`] plus `model`,
    ///   `method`, `args`, `kwargs`.
    /// - `/jsonrpc`: the envelope with `params` = [`Call::params`] plus `service`, `method`
    ///   (= [`Call::service_method`]) and `args`; for `object.execute_kw` the args are rebuilt
    ///   as `[db, uid, password, model, method, args, kwargs]` from the
    ///   [`Credential::Password`] (its `db` is authoritative), for `execute` as
    ///   `[db, uid, password, model, method, *args]` (kwargs must be empty). Other services
    ///   write [`Call::args`] as they are.
    /// - XML-RPC: a `methodCall` with the same arguments as `/jsonrpc` (no `id`).
    /// - `/json/2`: the named-arguments object: [`Call::kwargs`] plus `ids` = `args[0]`.
    /// - other JSON routes: the envelope with [`Call::params`] (and `params.db` = [`Call::db`]
    ///   for `/web/session/authenticate`).
    ///
    /// `parse(to_body(c)) == c` for every call `c` that [`parse`] returned.
    pub fn to_body(&self) -> Result<Vec<u8>, SerialiseError> {
        match &self.shape {
            Shape::CallKw | Shape::CallButton => to_json(&EnvelopeOut {
                params: Merged {
                    fixed: vec![
                        ("model", Out::Str(required(&self.model, "model")?)),
                        ("method", Out::Str(required(&self.method, "method")?)),
                        ("args", self.args_out()),
                        ("kwargs", self.kwargs_out()),
                    ],
                    rest: &self.params,
                },
                id: self.id.as_ref(),
            }),
            Shape::JsonRpc => to_json(&EnvelopeOut {
                params: Merged {
                    fixed: vec![
                        ("service", Out::Str(required(&self.service, "service")?)),
                        (
                            "method",
                            Out::Str(required(&self.service_method, "service_method")?),
                        ),
                        ("args", Out::Seq(self.service_args(true)?)),
                    ],
                    rest: &self.params,
                },
                id: self.id.as_ref(),
            }),
            Shape::XmlRpc { .. } => xml::method_call(
                required(&self.service_method, "service_method")?,
                &self.service_args(false)?,
            ),
            Shape::Json2 => {
                let (args, kwargs) = (self.args(), self.kwargs());
                if args.len() > 1 {
                    return Err(SerialiseError::Unrepresentable(
                        "/json/2 takes named arguments: only args[0] (ids) can be sent",
                    ));
                }
                if kwargs.contains_key("ids") {
                    return Err(SerialiseError::Unrepresentable(
                        "/json/2 `ids` must be args[0], not a keyword argument",
                    ));
                }
                to_json(&Merged {
                    fixed: args
                        .first()
                        .map(|ids| ("ids", Out::Value(ids)))
                        .into_iter()
                        .collect(),
                    rest: kwargs,
                })
            }
            Shape::WebJson => {
                let fixed = match (&self.db, self.path.as_str()) {
                    (Some(db), AUTHENTICATE) => vec![("db", Out::Str(db))],
                    _ => Vec::new(),
                };
                to_json(&EnvelopeOut {
                    params: Merged {
                        fixed,
                        rest: &self.params,
                    },
                    id: self.id.as_ref(),
                })
            }
        }
    }

    /// `args` as JSON: the request's text while unchanged, else the values.
    fn args_out(&self) -> Out<'_> {
        self.args
            .raw()
            .map_or_else(|| Out::Values(self.args()), Out::Raw)
    }

    /// `kwargs` as JSON: the request's text while unchanged, else the values.
    fn kwargs_out(&self) -> Out<'_> {
        self.kwargs
            .raw()
            .map_or_else(|| Out::Object(self.kwargs()), Out::Raw)
    }

    /// The positional arguments of the service call (`/jsonrpc` and XML-RPC). `json`: for a
    /// JSON body, which may copy unchanged text (XML-RPC needs the values).
    fn service_args(&self, json: bool) -> Result<Vec<Out<'_>>, SerialiseError> {
        let keywords = match (self.service.as_deref(), self.service_method.as_deref()) {
            (Some("object"), Some("execute_kw")) => true,
            (Some("object"), Some("execute")) => false,
            _ => return Ok(self.args().iter().map(Out::Value).collect()),
        };
        let Credential::Password { db, uid, password } = &self.credential else {
            return Err(SerialiseError::MissingField(
                "a (db, uid, password) credential",
            ));
        };
        let mut out = Vec::with_capacity(if keywords { 7 } else { 5 + self.args().len() });
        out.extend([
            Out::Str(db),
            Out::Int(*uid),
            Out::Str(password),
            Out::Str(required(&self.model, "model")?),
            Out::Str(required(&self.method, "method")?),
        ]);
        if keywords && json {
            out.push(self.args_out());
            out.push(self.kwargs_out());
        } else if keywords {
            out.push(Out::Values(self.args()));
            out.push(Out::Object(self.kwargs()));
        } else if !self.kwargs().is_empty() {
            return Err(SerialiseError::Unrepresentable(
                "`execute` takes positional arguments only (use execute_kw for kwargs)",
            ));
        } else {
            out.extend(self.args().iter().map(Out::Value));
        }
        Ok(out)
    }
}

/// The `methodResponse` Odoo sends on its XML-RPC routes for `result`, for answers BridgeCore
/// writes itself to XML-RPC callers (read batches, field expansion).
///
/// Laid out byte for byte as Python's `xmlrpc.client` marshaller does for Odoo 16 and 17 (18
/// differs only in the XML declaration's quotes and one newline): each `<value>` on its own
/// line, struct members in the map's order. Values:
///
/// - `null`: `<boolean>0</boolean>`. Odoo marshals with `allow_none=False` (a `None` would be
///   a `TypeError`, hence a fault), and its ORM's empty value is `False`: read results carry
///   `false`, never `null`.
/// - booleans: `<boolean>`; integers: `<int>` within 32 bits, `<i8>` beyond (Odoo 16-18 have no
///   marshaller for those and fault with `OverflowError`; integer and many2one columns are
///   32-bit, so only computed or JSON values can be that large, and Python's client, like most,
///   reads `<i8>`); floats: `<double>` with Python's `repr` text (`0.1`, `1.0`, `1e+16`).
/// - strings: `<string>`, escaping `&`, `<`, `>` as Odoo does; characters XML 1.0 cannot carry
///   are dropped (Odoo 18 drops the control characters; 16 and 17 send them and break the
///   client's parser); `\r` is sent as it is, as Odoo sends it.
/// - arrays: `<array><data>`; objects: `<struct>`, including the empty ones.
///
/// Errs only for values nested deeper than any answer from Odoo can be.
pub fn xmlrpc_response(result: &Value) -> Result<Vec<u8>, SerialiseError> {
    xml::method_response(result)
}

/// A fault `methodResponse` (`faultCode`, `faultString`), laid out as [`xmlrpc_response`]; see
/// [`odoo_fault`] for the codes Odoo uses.
pub fn xmlrpc_fault(code: &FaultCode, string: &str) -> Vec<u8> {
    xml::fault_response(code, string)
}

/// XML-RPC `methodCall` reading and writing, and `methodResponse` writing.
mod xml {
    use super::*;

    use quick_xml::events::{BytesStart, Event};
    use quick_xml::Reader;

    fn invalid(message: impl Into<String>) -> ParseError {
        ParseError::InvalidXml(message.into())
    }

    /// The elements of XML-RPC, by local name (Python's `xmlrpc.client` drops namespace
    /// prefixes too).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Tag {
        MethodCall,
        MethodName,
        Params,
        Param,
        Value,
        Int,
        Boolean,
        String,
        Double,
        Base64,
        DateTime,
        Nil,
        Array,
        Data,
        Struct,
        Member,
        Name,
    }

    impl Tag {
        fn of(start: &BytesStart<'_>) -> Result<Tag, ParseError> {
            // Attributes mean nothing in XML-RPC, but must be well-formed (as for expat).
            for attribute in start.attributes() {
                attribute.map_err(|e| invalid(e.to_string()))?;
            }
            let local = start.local_name();
            Ok(match local.as_ref() {
                b"methodCall" => Tag::MethodCall,
                b"methodName" => Tag::MethodName,
                b"params" => Tag::Params,
                b"param" => Tag::Param,
                b"value" => Tag::Value,
                b"int" | b"i4" | b"i8" | b"i1" | b"i2" | b"biginteger" => Tag::Int,
                b"boolean" => Tag::Boolean,
                b"string" => Tag::String,
                b"double" | b"float" => Tag::Double,
                b"base64" => Tag::Base64,
                b"dateTime.iso8601" => Tag::DateTime,
                b"nil" => Tag::Nil,
                b"array" => Tag::Array,
                b"data" => Tag::Data,
                b"struct" => Tag::Struct,
                b"member" => Tag::Member,
                b"name" => Tag::Name,
                other => {
                    let name = String::from_utf8_lossy(&other[..other.len().min(40)]);
                    return Err(invalid(format!("unexpected element <{name}>")));
                }
            })
        }
    }

    /// What comes next between elements, whitespace skipped.
    enum Node {
        Open(Tag),
        Close,
        Eof,
    }

    struct Parser<'a> {
        reader: Reader<&'a [u8]>,
    }

    impl<'a> Parser<'a> {
        fn new(body: &'a [u8]) -> Self {
            let mut reader = Reader::from_reader(body);
            let config = reader.config_mut();
            config.trim_text(false);
            config.expand_empty_elements = true;
            config.check_end_names = true;
            config.check_comments = true;
            Parser { reader }
        }

        /// The next event, comments and processing instructions skipped, DOCTYPE refused.
        fn event(&mut self) -> Result<Event<'a>, ParseError> {
            loop {
                match self.reader.read_event() {
                    Err(e) => return Err(invalid(e.to_string())),
                    Ok(Event::Comment(_) | Event::PI(_) | Event::Decl(_)) => continue,
                    Ok(Event::DocType(_)) => {
                        return Err(invalid("DOCTYPE declarations are not allowed"))
                    }
                    Ok(event) => return Ok(event),
                }
            }
        }

        /// The next element boundary; only whitespace may come before it.
        fn node(&mut self) -> Result<Node, ParseError> {
            loop {
                match self.event()? {
                    Event::Start(start) => return Tag::of(&start).map(Node::Open),
                    Event::End(_) => return Ok(Node::Close),
                    Event::Eof => return Ok(Node::Eof),
                    Event::Text(text) if is_xml_space(&text) => continue,
                    Event::Text(_) | Event::CData(_) => {
                        return Err(invalid("unexpected text between elements"))
                    }
                    _ => return Err(invalid("unexpected XML construct")),
                }
            }
        }

        fn open(&mut self, tag: Tag) -> Result<(), ParseError> {
            match self.node()? {
                Node::Open(t) if t == tag => Ok(()),
                _ => Err(invalid(format!("expected <{}>", tag_name(tag)))),
            }
        }

        /// The end of the current element (after optional whitespace).
        fn close(&mut self) -> Result<(), ParseError> {
            match self.node()? {
                Node::Close => Ok(()),
                Node::Eof => Err(eof()),
                Node::Open(t) => Err(invalid(format!("unexpected element <{}>", tag_name(t)))),
            }
        }

        /// The text content of the current element, up to and including its end.
        fn text(&mut self) -> Result<String, ParseError> {
            let mut out = String::new();
            loop {
                match self.event()? {
                    Event::Text(text) => push_text(&mut out, &text, true)?,
                    Event::CData(data) => push_text(&mut out, &data, false)?,
                    Event::End(_) => return Ok(out),
                    Event::Eof => return Err(eof()),
                    _ => return Err(invalid("unexpected element inside a text element")),
                }
            }
        }

        /// The methodCall: its method name and parameters.
        fn method_call(&mut self) -> Result<(String, Vec<Value>), ParseError> {
            match self.node()? {
                Node::Open(Tag::MethodCall) => {}
                Node::Eof => return Err(invalid("empty document")),
                _ => return Err(invalid("the root element must be <methodCall>")),
            }
            let mut name = None;
            let mut params = None;
            loop {
                match self.node()? {
                    Node::Open(Tag::MethodName) if name.is_none() => name = Some(self.text()?),
                    Node::Open(Tag::Params) if params.is_none() => params = Some(self.params()?),
                    Node::Close => break,
                    Node::Eof => return Err(eof()),
                    Node::Open(t) => {
                        return Err(invalid(format!(
                            "unexpected <{}> in <methodCall>",
                            tag_name(t)
                        )))
                    }
                }
            }
            match self.node()? {
                Node::Eof => {}
                _ => return Err(invalid("content after </methodCall>")),
            }
            let name = name.ok_or(ParseError::MissingField("methodName"))?;
            Ok((name, params.unwrap_or_default()))
        }

        fn params(&mut self) -> Result<Vec<Value>, ParseError> {
            let mut params = Vec::new();
            loop {
                match self.node()? {
                    Node::Open(Tag::Param) => {
                        self.open(Tag::Value)?;
                        params.push(self.value(1)?);
                        self.close()?;
                    }
                    Node::Close => return Ok(params),
                    Node::Eof => return Err(eof()),
                    Node::Open(t) => {
                        return Err(invalid(format!("unexpected <{}> in <params>", tag_name(t))))
                    }
                }
            }
        }

        /// The content of a `<value>` (already opened) at nesting `depth`, up to its end.
        fn value(&mut self, depth: usize) -> Result<Value, ParseError> {
            if depth > MAX_XML_DEPTH {
                return Err(invalid(format!(
                    "values nested deeper than {MAX_XML_DEPTH} levels"
                )));
            }
            let mut text = String::new();
            loop {
                match self.event()? {
                    Event::Text(t) => push_text(&mut text, &t, true)?,
                    Event::CData(d) => push_text(&mut text, &d, false)?,
                    // No type element: the text itself is the string.
                    Event::End(_) => return Ok(Value::String(text)),
                    Event::Start(start) => {
                        if !text.chars().all(|c| matches!(c, ' ' | '\t' | '\r' | '\n')) {
                            return Err(invalid("text mixed with a typed value"));
                        }
                        let value = self.typed(Tag::of(&start)?, depth)?;
                        self.close()?;
                        return Ok(value);
                    }
                    Event::Eof => return Err(eof()),
                    _ => return Err(invalid("unexpected XML construct in <value>")),
                }
            }
        }

        /// A typed value element (already opened), up to its end.
        fn typed(&mut self, tag: Tag, depth: usize) -> Result<Value, ParseError> {
            Ok(match tag {
                Tag::Int => int(&self.text()?)?,
                Tag::Boolean => match self.text()?.as_str() {
                    "0" => Value::Bool(false),
                    "1" => Value::Bool(true),
                    _ => return Err(invalid("a <boolean> must be 0 or 1")),
                },
                Tag::String | Tag::Base64 | Tag::DateTime => Value::String(self.text()?),
                Tag::Double => {
                    let text = self.text()?;
                    text.trim()
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                        .ok_or_else(|| invalid("a <double> must be a finite number"))?
                }
                Tag::Nil => {
                    self.close()?;
                    Value::Null
                }
                Tag::Array => {
                    self.open(Tag::Data)?;
                    let mut items = Vec::new();
                    loop {
                        match self.node()? {
                            Node::Open(Tag::Value) => items.push(self.value(depth + 1)?),
                            Node::Close => break,
                            Node::Eof => return Err(eof()),
                            Node::Open(t) => {
                                return Err(invalid(format!(
                                    "unexpected <{}> in <data>",
                                    tag_name(t)
                                )))
                            }
                        }
                    }
                    self.close()?;
                    Value::Array(items)
                }
                Tag::Struct => {
                    let mut members = Map::new();
                    loop {
                        match self.node()? {
                            Node::Open(Tag::Member) => {
                                let (name, value) = self.member(depth + 1)?;
                                members.insert(name, value);
                            }
                            Node::Close => break,
                            Node::Eof => return Err(eof()),
                            Node::Open(t) => {
                                return Err(invalid(format!(
                                    "unexpected <{}> in <struct>",
                                    tag_name(t)
                                )))
                            }
                        }
                    }
                    Value::Object(members)
                }
                other => {
                    return Err(invalid(format!(
                        "<{}> is not an XML-RPC value type",
                        tag_name(other)
                    )))
                }
            })
        }

        /// A struct `<member>` (already opened): its name and value, in either order.
        fn member(&mut self, depth: usize) -> Result<(String, Value), ParseError> {
            let mut name = None;
            let mut value = None;
            loop {
                match self.node()? {
                    Node::Open(Tag::Name) if name.is_none() => name = Some(self.text()?),
                    Node::Open(Tag::Value) if value.is_none() => value = Some(self.value(depth)?),
                    Node::Close => break,
                    Node::Eof => return Err(eof()),
                    Node::Open(t) => {
                        return Err(invalid(format!("unexpected <{}> in <member>", tag_name(t))))
                    }
                }
            }
            match (name, value) {
                (Some(name), Some(value)) => Ok((name, value)),
                _ => Err(invalid("a <member> needs one <name> and one <value>")),
            }
        }
    }

    fn eof() -> ParseError {
        invalid("unexpected end of document")
    }

    fn tag_name(tag: Tag) -> &'static str {
        match tag {
            Tag::MethodCall => "methodCall",
            Tag::MethodName => "methodName",
            Tag::Params => "params",
            Tag::Param => "param",
            Tag::Value => "value",
            Tag::Int => "int",
            Tag::Boolean => "boolean",
            Tag::String => "string",
            Tag::Double => "double",
            Tag::Base64 => "base64",
            Tag::DateTime => "dateTime.iso8601",
            Tag::Nil => "nil",
            Tag::Array => "array",
            Tag::Data => "data",
            Tag::Struct => "struct",
            Tag::Member => "member",
            Tag::Name => "name",
        }
    }

    fn is_xml_space(raw: &[u8]) -> bool {
        raw.iter()
            .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    }

    /// Whether XML 1.0 allows `c` in a document (as text or as a character reference).
    fn is_xml_char(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    }

    /// Appends raw text (`escaped`: element text; else CDATA) to `out` as an XML parser reads
    /// it: line ends normalised to `\n`, references resolved (predefined and numeric only),
    /// characters XML forbids refused.
    fn push_text(out: &mut String, raw: &[u8], escaped: bool) -> Result<(), ParseError> {
        let raw = std::str::from_utf8(raw).map_err(|_| invalid("the body is not UTF-8"))?;
        let normalised: Cow<'_, str> = if raw.contains('\r') {
            Cow::Owned(raw.replace("\r\n", "\n").replace('\r', "\n"))
        } else {
            Cow::Borrowed(raw)
        };
        let text = if escaped {
            quick_xml::escape::unescape(&normalised).map_err(|e| invalid(e.to_string()))?
        } else {
            normalised
        };
        if let Some(c) = text.chars().find(|&c| !is_xml_char(c)) {
            return Err(invalid(format!(
                "character U+{:04X} is not allowed in XML",
                u32::from(c)
            )));
        }
        out.push_str(&text);
        Ok(())
    }

    fn int(text: &str) -> Result<Value, ParseError> {
        let text = text.trim();
        if let Ok(i) = text.parse::<i64>() {
            Ok(Value::from(i))
        } else if let Ok(u) = text.parse::<u64>() {
            Ok(Value::from(u))
        } else {
            Err(invalid("an <int> must be an integer within 64 bits"))
        }
    }

    /// Parses an XML-RPC `methodCall` into its method name and parameters.
    pub(super) fn parse_method_call(body: &[u8]) -> Result<(String, Vec<Value>), ParseError> {
        Parser::new(body).method_call()
    }

    /// Writes a `methodCall` of `name` with `params`.
    pub(super) fn method_call(name: &str, params: &[Out<'_>]) -> Result<Vec<u8>, SerialiseError> {
        let mut s = String::with_capacity(512);
        s.push_str("<?xml version=\"1.0\"?>\n<methodCall><methodName>");
        escape(&mut s, name)?;
        s.push_str("</methodName><params>");
        for param in params {
            s.push_str("<param><value>");
            write_out(&mut s, param, 1)?;
            s.push_str("</value></param>");
        }
        s.push_str("</params></methodCall>\n");
        Ok(s.into_bytes())
    }

    fn write_out(s: &mut String, out: &Out<'_>, depth: usize) -> Result<(), SerialiseError> {
        match out {
            Out::Str(v) => write_string(s, v),
            Out::Int(i) => {
                write_int(s, *i);
                Ok(())
            }
            Out::Value(v) => write_value(s, v, depth),
            // Not produced for XML-RPC (`service_args(false)`); decoded should that change.
            Out::Raw(raw) => match crate::json::from_slice(raw.as_bytes()) {
                Ok(value) => write_value(s, &value, depth),
                Err(_) => Err(SerialiseError::Unrepresentable("invalid JSON text")),
            },
            Out::Values(items) => write_array(s, items.iter(), depth),
            Out::Object(map) => write_struct(s, map, depth),
            Out::Seq(items) => {
                s.push_str("<array><data>");
                for item in items {
                    s.push_str("<value>");
                    write_out(s, item, depth + 1)?;
                    s.push_str("</value>");
                }
                s.push_str("</data></array>");
                Ok(())
            }
        }
    }

    fn write_value(s: &mut String, value: &Value, depth: usize) -> Result<(), SerialiseError> {
        use std::fmt::Write as _;
        if depth > MAX_XML_DEPTH {
            return Err(SerialiseError::Unrepresentable(
                "XML-RPC values nest too deep",
            ));
        }
        match value {
            Value::Null => s.push_str("<nil/>"),
            Value::Bool(b) => s.push_str(if *b {
                "<boolean>1</boolean>"
            } else {
                "<boolean>0</boolean>"
            }),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    write_int(s, i);
                } else if let Some(u) = n.as_u64() {
                    let _ = write!(s, "<i8>{u}</i8>");
                } else if let Some(f) = n.as_f64() {
                    // Display never uses an exponent, which XML-RPC's grammar lacks.
                    let _ = write!(s, "<double>{f}</double>");
                }
            }
            Value::String(v) => write_string(s, v)?,
            Value::Array(items) => write_array(s, items.iter(), depth)?,
            Value::Object(map) => write_struct(s, map, depth)?,
        }
        Ok(())
    }

    fn write_int(s: &mut String, i: i64) {
        use std::fmt::Write as _;
        let _ = if i32::try_from(i).is_ok() {
            write!(s, "<int>{i}</int>")
        } else {
            write!(s, "<i8>{i}</i8>")
        };
    }

    fn write_string(s: &mut String, v: &str) -> Result<(), SerialiseError> {
        s.push_str("<string>");
        escape(s, v)?;
        s.push_str("</string>");
        Ok(())
    }

    fn write_array<'v>(
        s: &mut String,
        items: impl Iterator<Item = &'v Value>,
        depth: usize,
    ) -> Result<(), SerialiseError> {
        s.push_str("<array><data>");
        for item in items {
            s.push_str("<value>");
            write_value(s, item, depth + 1)?;
            s.push_str("</value>");
        }
        s.push_str("</data></array>");
        Ok(())
    }

    fn write_struct(
        s: &mut String,
        map: &Map<String, Value>,
        depth: usize,
    ) -> Result<(), SerialiseError> {
        s.push_str("<struct>");
        for (name, value) in map {
            s.push_str("<member><name>");
            escape(s, name)?;
            s.push_str("</name><value>");
            write_value(s, value, depth + 1)?;
            s.push_str("</value></member>");
        }
        s.push_str("</struct>");
        Ok(())
    }

    /// How deep a response value may nest. Values from Odoo's JSON nest at most 128 levels
    /// (serde_json's limit) and the expansion adds a few: this only bounds the recursion.
    const MAX_RESPONSE_DEPTH: usize = 256;

    /// The XML declaration and root of Python's `xmlrpc.client.dumps(..., methodresponse=True)`
    /// (Odoo 16 and 17; 18 writes `"1.0"` and one more newline, which no parser sees).
    const RESPONSE_HEAD: &str = "<?xml version='1.0'?>\n<methodResponse>\n";
    const RESPONSE_TAIL: &str = "</methodResponse>\n";

    /// Writes the `methodResponse` Odoo writes for `result`, laid out as Python's marshaller
    /// lays it out (see [`super::xmlrpc_response`]).
    pub(super) fn method_response(result: &Value) -> Result<Vec<u8>, SerialiseError> {
        let mut s = String::with_capacity(256);
        s.push_str(RESPONSE_HEAD);
        s.push_str("<params>\n<param>\n");
        dump(&mut s, result, 1)?;
        s.push_str("</param>\n</params>\n");
        s.push_str(RESPONSE_TAIL);
        Ok(s.into_bytes())
    }

    /// Writes a fault `methodResponse`: the struct `{faultCode, faultString}`, in that order.
    pub(super) fn fault_response(code: &FaultCode, string: &str) -> Vec<u8> {
        let mut s = String::with_capacity(192 + string.len());
        s.push_str(RESPONSE_HEAD);
        s.push_str("<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n");
        match code {
            FaultCode::Int(i) => dump_int(&mut s, i64::from(*i)),
            FaultCode::Str(text) => dump_string(&mut s, text),
        }
        s.push_str("</member>\n<member>\n<name>faultString</name>\n");
        dump_string(&mut s, string);
        s.push_str("</member>\n</struct></value>\n</fault>\n");
        s.push_str(RESPONSE_TAIL);
        s.into_bytes()
    }

    /// One `<value>` and its newline, as `xmlrpc.client.Marshaller` writes it.
    fn dump(s: &mut String, value: &Value, depth: usize) -> Result<(), SerialiseError> {
        use std::fmt::Write as _;
        if depth > MAX_RESPONSE_DEPTH {
            return Err(SerialiseError::Unrepresentable(
                "XML-RPC values nest too deep",
            ));
        }
        match value {
            // Odoo marshals with `allow_none=False`; the ORM's empty value is `False`.
            Value::Null | Value::Bool(false) => s.push_str("<value><boolean>0</boolean></value>\n"),
            Value::Bool(true) => s.push_str("<value><boolean>1</boolean></value>\n"),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    dump_int(s, i);
                } else if let Some(u) = n.as_u64() {
                    let _ = writeln!(s, "<value><i8>{u}</i8></value>");
                } else if let Some(f) = n.as_f64() {
                    let _ = writeln!(s, "<value><double>{}</double></value>", py_float(f));
                }
            }
            Value::String(text) => dump_string(s, text),
            Value::Array(items) => {
                s.push_str("<value><array><data>\n");
                for item in items {
                    dump(s, item, depth + 1)?;
                }
                s.push_str("</data></array></value>\n");
            }
            Value::Object(map) => {
                s.push_str("<value><struct>\n");
                for (name, item) in map {
                    s.push_str("<member>\n<name>");
                    escape_answer(s, name);
                    s.push_str("</name>\n");
                    dump(s, item, depth + 1)?;
                    s.push_str("</member>\n");
                }
                s.push_str("</struct></value>\n");
            }
        }
        Ok(())
    }

    /// `<int>` within 32 bits, as XML-RPC defines it; beyond, the `<i8>` extension (Python's
    /// marshaller raises `OverflowError` there instead; its parser, like most, reads `<i8>`).
    fn dump_int(s: &mut String, i: i64) {
        use std::fmt::Write as _;
        let _ = if i32::try_from(i).is_ok() {
            writeln!(s, "<value><int>{i}</int></value>")
        } else {
            writeln!(s, "<value><i8>{i}</i8></value>")
        };
    }

    fn dump_string(s: &mut String, text: &str) {
        s.push_str("<value><string>");
        escape_answer(s, text);
        s.push_str("</string></value>\n");
    }

    /// A float as Python's `repr` writes it: the shortest text that reads back the same, with
    /// an exponent below 1e-4 and from 1e16 on, signed and of two digits at least (`1e+16`,
    /// `1.5e-07`). Rust's `Debug` picks the same digits and the same switch points.
    fn py_float(f: f64) -> String {
        let debug = format!("{f:?}");
        match debug.split_once('e') {
            None => debug,
            Some((mantissa, exponent)) => {
                let (sign, digits) = match exponent.strip_prefix('-') {
                    Some(digits) => ('-', digits),
                    None => ('+', exponent),
                };
                format!("{mantissa}e{sign}{digits:0>2}")
            }
        }
    }

    /// Escapes answer text as Odoo does: `&`, `<` and `>` only (`\r` goes as it is, as from
    /// Odoo), and characters XML 1.0 cannot carry dropped, as Odoo 18's marshaller drops the
    /// control characters (16 and 17 write them, which breaks the client's parser).
    fn escape_answer(s: &mut String, text: &str) {
        let mut start = 0;
        for (i, c) in text.char_indices() {
            let replacement = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                c if is_xml_char(c) => continue,
                _ => "",
            };
            s.push_str(&text[start..i]);
            s.push_str(replacement);
            start = i + c.len_utf8();
        }
        s.push_str(&text[start..]);
    }

    /// Escapes text content. `\r` is written as a reference, or XML parsers would turn it into
    /// `\n`; characters XML 1.0 cannot carry at all are refused.
    fn escape(s: &mut String, text: &str) -> Result<(), SerialiseError> {
        let mut start = 0;
        for (i, c) in text.char_indices() {
            let replacement = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '\r' => "&#13;",
                c if is_xml_char(c) => continue,
                _ => {
                    return Err(SerialiseError::Unrepresentable(
                        "XML 1.0 cannot carry control characters other than tab, LF and CR",
                    ))
                }
            };
            s.push_str(&text[start..i]);
            s.push_str(replacement);
            start = i + c.len_utf8();
        }
        s.push_str(&text[start..]);
        Ok(())
    }
}
