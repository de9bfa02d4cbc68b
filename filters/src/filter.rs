//! The filter chain: the policy steps every parsed Odoo call goes through.
//!
//! A [`Filter`] has two sides (design.md §2). [`Filter::on_request`] runs before anything reaches
//! Odoo and returns an explicit [`Decision`]: let the call go on, go on with a rewritten call, or
//! answer now (a cache hit, a 401, a 429). [`Filter::on_response`] runs when Odoo's answer
//! headers arrive and may adjust them; [`Filter::on_complete`] runs once the exchange is over
//! (errors and timeouts included) to observe the outcome: store a result, bump generations,
//! publish change events.
//!
//! Filters never see Pingora's `Session`: they get the request head as `http` types, the parsed
//! [`Call`], and the tenant's [`OdooClient`] for calls of their own. That keeps them testable
//! without sockets and lets an embedding program add its own.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::call::Call;
use crate::error::ErrorKind;
use crate::odoo::OdooClient;

/// What the request side of a filter decided.
#[derive(Debug)]
pub enum Decision {
    /// Go on with the call as it is.
    Continue,
    /// Go on with this call instead: it is serialised again and forwarded with a correct
    /// `Content-Length`.
    Rewrite(Box<Call>),
    /// Answer the client now; nothing reaches Odoo.
    Respond(Reply),
}

/// An answer BridgeCore writes itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers besides `Content-Length` (added from the body).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// A JSON answer with `Content-Type: application/json`.
    pub fn json(status: u16, body: impl Into<Bytes>) -> Self {
        Reply {
            status,
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body: body.into(),
        }
    }

    /// BridgeCore's own refusal of a JSON-RPC call, in Odoo's error shape.
    pub fn jsonrpc_error(call: Option<&Call>, kind: ErrorKind, message: &str) -> Self {
        let id = call.and_then(|c| c.id.as_ref());
        Reply::json(
            kind.status(),
            crate::error::jsonrpc_error(id, kind, message),
        )
    }

    /// An XML-RPC answer, `Content-Type: text/xml; charset=utf-8` as Odoo sends it.
    pub fn xml(status: u16, body: impl Into<Bytes>) -> Self {
        Reply {
            status,
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/xml; charset=utf-8"),
            )],
            body: body.into(),
        }
    }

    /// A successful answer to an XML-RPC call, as Odoo writes it
    /// ([`crate::jsonrpc::xmlrpc_response`]); HTTP 200. A value no answer from Odoo can be
    /// (nested too deep) is BridgeCore's 502 fault instead.
    pub fn xmlrpc_result(legacy: bool, result: &serde_json::Value) -> Self {
        match crate::jsonrpc::xmlrpc_response(result) {
            Ok(body) => Reply::xml(200, body),
            Err(e) => Reply::xmlrpc_error(legacy, ErrorKind::BadGateway, &e.to_string()),
        }
    }

    /// Odoo's exception `name` with `message` as the fault Odoo answers on its XML-RPC route
    /// (`legacy`: `/xmlrpc`, string codes; else `/xmlrpc/2`, integer codes): HTTP 200, as from
    /// Odoo ([`crate::jsonrpc::odoo_fault`]).
    pub fn xmlrpc_odoo_fault(legacy: bool, name: &str, message: &str) -> Self {
        let (code, string) = crate::jsonrpc::odoo_fault(legacy, name, message);
        Reply::xml(200, crate::jsonrpc::xmlrpc_fault(&code, &string))
    }

    /// BridgeCore's own error as an XML-RPC fault ([`crate::jsonrpc::bridgecore_fault`]), with
    /// the condition's HTTP status (502, 504), as BridgeCore answers outages on every route.
    pub fn xmlrpc_error(legacy: bool, kind: ErrorKind, message: &str) -> Self {
        let (code, string) = crate::jsonrpc::bridgecore_fault(legacy, kind, message);
        Reply::xml(kind.status(), crate::jsonrpc::xmlrpc_fault(&code, &string))
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// What filters know about the request besides the call itself.
pub struct Exchange<'a> {
    /// The request head as the client sent it.
    pub request: &'a http::request::Parts,
    /// The client's address (the peer, or the last untrusted hop of `X-Forwarded-For`).
    pub client_ip: IpAddr,
    /// The tenant the request was routed to.
    pub tenant: &'a str,
    /// The request id, as logged and sent upstream.
    pub request_id: &'a str,
    /// Whether the client connection is TLS.
    pub tls: bool,
    /// The tenant's internal Odoo client.
    pub odoo: &'a dyn OdooClient,
    /// Per-request state a filter keeps from `on_request` to `on_response`/`on_complete`
    /// (a cache key, a generation snapshot, ...), keyed by type.
    pub state: &'a mut http::Extensions,
}

/// The answer's head, as filters see it on the way back.
///
/// Header changes are collected as [`HeaderEdit`]s and applied by the glue, which keeps
/// Pingora's case-preserving header map in step (writing the map directly would not).
pub struct ResponseHead<'a> {
    /// The status Odoo (or BridgeCore) answered with.
    pub status: u16,
    /// The answer's headers as they arrived.
    pub headers: &'a HeaderMap,
    edits: Vec<HeaderEdit>,
}

/// One change to the answer's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    /// Replace every value of the header with this one.
    Set(HeaderName, HeaderValue),
    /// Add a value, keeping the others.
    Append(HeaderName, HeaderValue),
    /// Drop the header.
    Remove(HeaderName),
}

impl<'a> ResponseHead<'a> {
    /// The head of an answer, with no edits yet.
    pub fn new(status: u16, headers: &'a HeaderMap) -> Self {
        ResponseHead {
            status,
            headers,
            edits: Vec::new(),
        }
    }

    /// Sets a header (replacing its values).
    pub fn set(&mut self, name: HeaderName, value: HeaderValue) {
        self.edits.push(HeaderEdit::Set(name, value));
    }

    /// Adds a header value.
    pub fn append(&mut self, name: HeaderName, value: HeaderValue) {
        self.edits.push(HeaderEdit::Append(name, value));
    }

    /// Removes a header.
    pub fn remove(&mut self, name: HeaderName) {
        self.edits.push(HeaderEdit::Remove(name));
    }

    /// The edits, in the order the filters made them.
    pub fn into_edits(self) -> Vec<HeaderEdit> {
        self.edits
    }
}

/// How an exchange ended, for [`Filter::on_complete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Odoo answered with this status (JSON-RPC errors are 200 with an `error` member).
    Answered(u16),
    /// The request failed on the way: no complete answer came back. Odoo may still have
    /// committed a write.
    Failed,
}

/// A policy step of the chain. All methods but [`Filter::name`] have pass-through defaults.
#[async_trait]
pub trait Filter: Send + Sync {
    /// A short stable name, for logs and metrics.
    fn name(&self) -> &'static str;

    /// Decides before the call reaches Odoo. `call` is the call as the previous filters left it.
    async fn on_request(&self, _ex: &mut Exchange<'_>, _call: &Call) -> Decision {
        Decision::Continue
    }

    /// Sees (and may adjust) the answer's head when it arrives, before it is sent on.
    async fn on_response(
        &self,
        _ex: &mut Exchange<'_>,
        _call: &Call,
        _head: &mut ResponseHead<'_>,
    ) {
    }

    /// Observes the end of the exchange. Runs exactly once per call that reached `on_request`
    /// of this filter and was forwarded, whatever happened.
    async fn on_complete(&self, _ex: &mut Exchange<'_>, _call: &Call, _outcome: Outcome) {}
}

/// What the request side of the whole chain decided.
#[derive(Debug)]
pub enum ChainDecision {
    /// Forward the call; `rewritten` is `Some` when a filter changed it (serialise it again),
    /// `None` when the original bytes can go as they are.
    Forward {
        /// The rewritten call, if any filter rewrote it.
        rewritten: Option<Box<Call>>,
    },
    /// Answer now; `filter` names who answered.
    Respond {
        /// The filter that answered.
        filter: &'static str,
        /// The answer.
        reply: Reply,
    },
}

/// An ordered list of filters, built once per configuration.
#[derive(Clone, Default)]
pub struct Chain {
    filters: Vec<Arc<dyn Filter>>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.filters.iter().map(|x| x.name()))
            .finish()
    }
}

impl Chain {
    /// A chain of these filters, run in this order on the way in and in reverse on the way out.
    pub fn new(filters: Vec<Arc<dyn Filter>>) -> Self {
        Chain { filters }
    }

    /// Appends a filter.
    pub fn push(&mut self, filter: Arc<dyn Filter>) {
        self.filters.push(filter);
    }

    /// Whether the chain has no filters (then nothing needs to run per call).
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// The filters' names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.filters.iter().map(|f| f.name()).collect()
    }

    /// Runs every filter's request side in order. A filter that answers stops the chain; a
    /// rewrite is what later filters see.
    pub async fn on_request(&self, ex: &mut Exchange<'_>, call: &Call) -> ChainDecision {
        let mut rewritten: Option<Box<Call>> = None;
        for filter in &self.filters {
            let current = rewritten.as_deref().unwrap_or(call);
            match filter.on_request(ex, current).await {
                Decision::Continue => {}
                Decision::Rewrite(new) => rewritten = Some(new),
                Decision::Respond(reply) => {
                    return ChainDecision::Respond {
                        filter: filter.name(),
                        reply,
                    }
                }
            }
        }
        ChainDecision::Forward { rewritten }
    }

    /// Runs every filter's response side, last filter first.
    pub async fn on_response(
        &self,
        ex: &mut Exchange<'_>,
        call: &Call,
        head: &mut ResponseHead<'_>,
    ) {
        for filter in self.filters.iter().rev() {
            filter.on_response(ex, call, head).await;
        }
    }

    /// Runs every filter's completion side, last filter first.
    pub async fn on_complete(&self, ex: &mut Exchange<'_>, call: &Call, outcome: Outcome) {
        for filter in self.filters.iter().rev() {
            filter.on_complete(ex, call, outcome).await;
        }
    }
}
