//! The hot path of [`parse`](super::parse): `call_kw`, `call_button` and `/jsonrpc` envelopes
//! read in one pass, with the ORM arguments kept as JSON text ([`Lazy`]).
//!
//! Each function returns exactly the call the straightforward reading (`parse_call_kw_eager`,
//! `parse_jsonrpc_eager`) would return, or `None` as soon as anything is amiss (invalid JSON, a
//! wrong type, a missing member, too deep a nesting): the caller then reads the body the
//! straightforward way, which names the error. So this code decides nothing on its own; it must
//! only never accept a body the straightforward reading refuses, nor read one differently:
//!
//! - every byte of the body goes through serde_json in one document, so syntax is checked as
//!   strictly as for a `Value`. Members are read as their type ([`String`], [`PlainValue`], or
//!   validated and dropped with [`Check`]), so string, number and nesting checks are those of a
//!   `Value` too, except for the members captured as text (`args`, `kwargs`, `/jsonrpc`
//!   arguments after the fifth): serde_json checks only their syntax, so [`check_raw`] checks
//!   each one for what only decoding finds, with the nesting left at its place in the document.
//! - a member sent twice: the last one counts, as in a `Value` object; earlier ones are still
//!   checked.
//! - other top-level members are checked and dropped; other `params` members are kept in
//!   [`Call::params`].

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::call::{Call, Credential, Lazy, Shape};
use crate::json::{check_raw, Check, Plain, PlainValue, MAX_LEVELS};

/// Arrays/objects around `params.args` and `params.kwargs`: the envelope and `params`.
const IN_PARAMS: usize = 2;
/// Arrays/objects around an element of `/jsonrpc`'s `params.args`: the envelope, `params` and
/// `args`.
const IN_RPC_ARGS: usize = 3;

/// A `call_kw` / `call_button` body, without credential; `None`: read it eagerly.
pub(super) fn call_kw(shape: Shape, path: &str, body: &[u8]) -> Option<Call> {
    let (id, p) = envelope::<KwParams>(body)?;
    let args = match p.args {
        None => Lazy::from_value(Vec::new()),
        Some(raw) => lazy(raw, b'[')?,
    };
    let kwargs = match p.kwargs {
        None => Lazy::from_value(Map::new()),
        Some(raw) => lazy(raw, b'{')?,
    };
    Some(Call {
        id,
        model: Some(p.model?),
        method: Some(p.method?),
        args,
        kwargs,
        params: p.rest,
        ..Call::new(shape, path)
    })
}

/// A `/jsonrpc` body; `None`: read it eagerly. `object.execute_kw` keeps its `args` and
/// `kwargs` as text; other service calls (rare, short) are decoded whole.
pub(super) fn jsonrpc(path: &str, body: &[u8]) -> Option<Call> {
    let (id, p) = envelope::<RpcParams>(body)?;
    let (service, method) = (p.service?, p.method?);
    let RpcArgs { head, tail } = p.args.unwrap_or_default();
    let mut call = Call {
        id,
        params: p.rest,
        ..Call::new(Shape::JsonRpc, path)
    };
    if service != "object" || method != "execute_kw" {
        let mut args = head;
        for raw in tail {
            // Checked when read (see `RpcArgs`), so this decodes.
            args.push(crate::json::from_slice(raw.get().as_bytes()).ok()?);
        }
        super::fill_service_call(&mut call, service, method, args).ok()?;
        return Some(call);
    }
    let mut head = head.into_iter();
    let db = string(head.next())?;
    let uid = head.next()?.as_i64()?;
    let password = string(head.next())?;
    call.model = Some(string(head.next())?);
    call.method = Some(string(head.next())?);
    let mut tail = tail.into_iter();
    if let Some(raw) = tail.next() {
        call.args = lazy(raw, b'[')?;
    }
    match tail.next() {
        None => {}
        Some(raw) if raw.get() == "null" => {}
        Some(raw) => call.kwargs = lazy(raw, b'{')?,
    }
    if tail.next().is_some() {
        return None;
    }
    call.db = Some(db.clone());
    call.credential = Credential::Password { db, uid, password };
    call.service = Some(service);
    call.service_method = Some(method);
    Some(call)
}

/// Checked text (see [`check_raw`]) as a lazy array (`open` = `[`) or object (`{`).
fn lazy<T: Plain>(raw: Box<RawValue>, open: u8) -> Option<Lazy<T>> {
    (raw.get().as_bytes().first() == Some(&open)).then(|| Lazy::from_checked_raw(raw))
}

fn string(value: Option<Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// Reads the whole body as an envelope: its `id` and its `params`, which must be there (an
/// absent `params` fails the call's required members anyway).
fn envelope<P: for<'de> Deserialize<'de>>(body: &[u8]) -> Option<(Option<Value>, P)> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let (id, params) = de.deserialize_map(EnvelopeVisitor::<P>(PhantomData)).ok()?;
    de.end().ok()?;
    Some((id, params?))
}

struct EnvelopeVisitor<P>(PhantomData<P>);

impl<'de, P: Deserialize<'de>> Visitor<'de> for EnvelopeVisitor<P> {
    type Value = (Option<Value>, Option<P>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut id, mut params) = (None, None);
        while let Some(key) = map.next_key::<TopKey>()? {
            match key {
                TopKey::Params => params = Some(map.next_value::<P>()?),
                TopKey::Id => id = Some(map.next_value_seed(PlainValue)?),
                // Dropped, but checked as a `Value` would be; serde_json counts the nesting.
                TopKey::Other => map.next_value_seed(Check { levels: MAX_LEVELS })?,
            }
        }
        Ok((id, params))
    }
}

/// A top-level member name.
enum TopKey {
    Params,
    Id,
    Other,
}

impl<'de> Deserialize<'de> for TopKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = TopKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E>(self, key: &str) -> Result<TopKey, E> {
                Ok(match key {
                    "params" => TopKey::Params,
                    "id" => TopKey::Id,
                    _ => TopKey::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// A `params` member name: those either shape models, or any other (kept).
enum ParamKey {
    Model,
    Method,
    Args,
    Kwargs,
    Service,
    Other(String),
}

impl ParamKey {
    fn into_name(self) -> String {
        match self {
            ParamKey::Model => "model".to_owned(),
            ParamKey::Method => "method".to_owned(),
            ParamKey::Args => "args".to_owned(),
            ParamKey::Kwargs => "kwargs".to_owned(),
            ParamKey::Service => "service".to_owned(),
            ParamKey::Other(name) => name,
        }
    }
}

impl<'de> Deserialize<'de> for ParamKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ParamKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E>(self, key: &str) -> Result<ParamKey, E> {
                Ok(match key {
                    "model" => ParamKey::Model,
                    "method" => ParamKey::Method,
                    "args" => ParamKey::Args,
                    "kwargs" => ParamKey::Kwargs,
                    "service" => ParamKey::Service,
                    other => ParamKey::Other(other.to_owned()),
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// A member captured as text, checked at once (see [`check_raw`]) at `enclosing` levels.
fn checked_raw<'de, A: MapAccess<'de>>(
    map: &mut A,
    enclosing: usize,
) -> Result<Box<RawValue>, A::Error> {
    let raw: Box<RawValue> = map.next_value()?;
    if check_raw(&raw, enclosing) {
        Ok(raw)
    } else {
        Err(A::Error::custom("invalid value"))
    }
}

/// `params` of `call_kw` / `call_button`.
#[derive(Default)]
struct KwParams {
    model: Option<String>,
    method: Option<String>,
    args: Option<Box<RawValue>>,
    kwargs: Option<Box<RawValue>>,
    rest: Map<String, Value>,
}

impl<'de> Deserialize<'de> for KwParams {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KwParams;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KwParams, A::Error> {
                let mut p = KwParams::default();
                while let Some(key) = map.next_key::<ParamKey>()? {
                    match key {
                        ParamKey::Model => p.model = Some(map.next_value()?),
                        ParamKey::Method => p.method = Some(map.next_value()?),
                        ParamKey::Args => p.args = Some(checked_raw(&mut map, IN_PARAMS)?),
                        ParamKey::Kwargs => p.kwargs = Some(checked_raw(&mut map, IN_PARAMS)?),
                        other => {
                            let value = map.next_value_seed(PlainValue)?;
                            p.rest.insert(other.into_name(), value);
                        }
                    }
                }
                Ok(p)
            }
        }
        d.deserialize_map(V)
    }
}

/// `params` of `/jsonrpc`.
#[derive(Default)]
struct RpcParams {
    service: Option<String>,
    method: Option<String>,
    args: Option<RpcArgs>,
    rest: Map<String, Value>,
}

impl<'de> Deserialize<'de> for RpcParams {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RpcParams;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RpcParams, A::Error> {
                let mut p = RpcParams::default();
                while let Some(key) = map.next_key::<ParamKey>()? {
                    match key {
                        ParamKey::Service => p.service = Some(map.next_value()?),
                        ParamKey::Method => p.method = Some(map.next_value()?),
                        ParamKey::Args => p.args = Some(map.next_value()?),
                        other => {
                            let value = map.next_value_seed(PlainValue)?;
                            p.rest.insert(other.into_name(), value);
                        }
                    }
                }
                Ok(p)
            }
        }
        d.deserialize_map(V)
    }
}

/// `/jsonrpc`'s `params.args`: the first five elements (`execute_kw`'s db, uid, password,
/// model, method) as values, the others as checked text.
#[derive(Default)]
struct RpcArgs {
    head: Vec<Value>,
    tail: Vec<Box<RawValue>>,
}

impl<'de> Deserialize<'de> for RpcArgs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RpcArgs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RpcArgs, A::Error> {
                let mut args = RpcArgs {
                    head: Vec::with_capacity(5),
                    tail: Vec::new(),
                };
                while args.head.len() < 5 {
                    match seq.next_element_seed(PlainValue)? {
                        Some(value) => args.head.push(value),
                        None => return Ok(args),
                    }
                }
                while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
                    if !check_raw(&raw, IN_RPC_ARGS) {
                        return Err(A::Error::custom("invalid value"));
                    }
                    args.tail.push(raw);
                }
                Ok(args)
            }
        }
        d.deserialize_seq(V)
    }
}
