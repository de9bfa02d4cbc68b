//! The hot path of [`parse`](super::parse): `call_kw`, `call_button` and `/jsonrpc` envelopes
//! read in one pass, with the ORM arguments kept as JSON text ([`Lazy`]).
//!
//! Each function returns exactly the call the straightforward reading (`parse_call_kw_eager`,
//! `parse_jsonrpc_eager`) would return, or `None` as soon as anything is amiss (invalid JSON, a
//! wrong type, a missing member, too deep a nesting): the caller then reads the body the
//! straightforward way, which names the error. So this code decides nothing on its own; it must
//! only never accept a body the straightforward reading refuses, nor read one differently:
//!
//! - every byte of the body goes through the [`Scanner`], which accepts exactly what serde_json
//!   accepts (see its module), nesting counted from the top of the document; members read for
//!   their value are built as [`crate::json::from_slice`] builds them;
//! - a member sent twice: the last one counts, as in a `Value` object; earlier ones are still
//!   checked.
//! - other top-level members are checked and dropped; other `params` members are kept in
//!   [`Call::params`].

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::call::{Call, Credential, Lazy, Shape};
use crate::json::scan::Scanner;
use crate::json::{Plain, MAX_LEVELS};

/// Arrays/objects around `params.args` and `params.kwargs`: the envelope and `params`.
const IN_PARAMS: usize = 2;
/// Arrays/objects around an element of `/jsonrpc`'s `params.args`: the envelope, `params` and
/// `args`.
const IN_RPC_ARGS: usize = 3;

/// A `call_kw` / `call_button` body, without credential; `None`: read it eagerly.
pub(super) fn call_kw(shape: Shape, path: &str, body: &[u8]) -> Option<Call> {
    let (id, p) = envelope(body, kw_params)?;
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
    let (id, p) = envelope(body, rpc_params)?;
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
            args.push(crate::json::from_slice(raw.as_bytes()).ok()?);
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
        Some("null") => {}
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

/// Checked text (see [`Lazy`]) as a lazy array (`open` = `[`) or object (`{`).
fn lazy<T: Plain>(raw: &str, open: u8) -> Option<Lazy<T>> {
    (raw.as_bytes().first() == Some(&open)).then(|| Lazy::from_checked_raw(raw.into()))
}

fn string(value: Option<Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// Reads the whole body as an envelope: its `id` and its `params` (read by `params`), which
/// must be there (an absent `params` fails the call's required members anyway).
fn envelope<'a, P>(
    body: &'a [u8],
    mut params: impl FnMut(&mut Scanner<'a>) -> Option<P>,
) -> Option<(Option<Value>, P)> {
    let mut s = Scanner::new(body)?;
    let (mut id, mut p) = (None, None);
    s.object(|s, name| {
        match &*name {
            "params" => p = Some(params(s)?),
            "id" => id = Some(s.value(MAX_LEVELS - 1)?),
            _ => s.skip_value(MAX_LEVELS - 1)?,
        }
        Some(())
    })?;
    s.end()?;
    Some((id, p?))
}

/// `params` of `call_kw` / `call_button`.
#[derive(Default)]
struct KwParams<'a> {
    model: Option<String>,
    method: Option<String>,
    args: Option<&'a str>,
    kwargs: Option<&'a str>,
    rest: Map<String, Value>,
}

fn kw_params<'a>(s: &mut Scanner<'a>) -> Option<KwParams<'a>> {
    let mut p = KwParams::default();
    s.object(|s, name| {
        match &*name {
            "model" => p.model = Some(s.string()?.into_owned()),
            "method" => p.method = Some(s.string()?.into_owned()),
            "args" => p.args = Some(s.raw(MAX_LEVELS - IN_PARAMS)?),
            "kwargs" => p.kwargs = Some(s.raw(MAX_LEVELS - IN_PARAMS)?),
            _ => keep(s, &mut p.rest, name)?,
        }
        Some(())
    })?;
    Some(p)
}

/// Any other `params` member: kept, as a value, for [`Call::params`].
fn keep(s: &mut Scanner<'_>, rest: &mut Map<String, Value>, name: Cow<'_, str>) -> Option<()> {
    let value = s.value(MAX_LEVELS - IN_PARAMS)?;
    rest.insert(name.into_owned(), value);
    Some(())
}

/// `params` of `/jsonrpc`.
#[derive(Default)]
struct RpcParams<'a> {
    service: Option<String>,
    method: Option<String>,
    args: Option<RpcArgs<'a>>,
    rest: Map<String, Value>,
}

fn rpc_params<'a>(s: &mut Scanner<'a>) -> Option<RpcParams<'a>> {
    let mut p = RpcParams::default();
    s.object(|s, name| {
        match &*name {
            "service" => p.service = Some(s.string()?.into_owned()),
            "method" => p.method = Some(s.string()?.into_owned()),
            "args" => p.args = Some(rpc_args(s)?),
            _ => keep(s, &mut p.rest, name)?,
        }
        Some(())
    })?;
    Some(p)
}

/// `/jsonrpc`'s `params.args`: the first five elements (`execute_kw`'s db, uid, password,
/// model, method) as values, the others as checked text.
#[derive(Default)]
struct RpcArgs<'a> {
    head: Vec<Value>,
    tail: Vec<&'a str>,
}

fn rpc_args<'a>(s: &mut Scanner<'a>) -> Option<RpcArgs<'a>> {
    let mut args = RpcArgs {
        head: Vec::with_capacity(5),
        tail: Vec::new(),
    };
    s.array(|s| {
        if args.head.len() < 5 {
            args.head.push(s.value(MAX_LEVELS - IN_RPC_ARGS)?);
        } else {
            args.tail.push(s.raw(MAX_LEVELS - IN_RPC_ARGS)?);
        }
        Some(())
    })?;
    Some(args)
}
