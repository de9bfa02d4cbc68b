//! BridgeCore's `ProxyHttp`: each Pingora phase is a few lines that call into `filters`.
//!
//! Request path (design.md §2): `early_request_filter` fixes the request's identity (request id,
//! client address, configuration generation) and narrows `Accept-Encoding` for the compression
//! module; `request_filter` routes to a tenant, answers BridgeCore's own endpoints and refusals,
//! reads and parses small RPC bodies once, runs the filter chain and takes a slot under the
//! tenant's `max_connections`; the upstream phases add the headers Odoo's proxy mode reads and
//! replay a rewritten body; the response phases fix cookies, pick what to compress and run the
//! chain's response side; `logging` feeds metrics and the access log.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bridgecore_filters::auth::{self, Scopes};
use bridgecore_filters::cache::key::Identity;
use bridgecore_filters::classify::class_of_unparsed;
use bridgecore_filters::encoding::{compressible, negotiate, Coding};
use bridgecore_filters::error::{api_error, ErrorKind};
use bridgecore_filters::filter::{
    ChainDecision, Exchange, HeaderEdit, Outcome, Reply, ResponseHead,
};
use bridgecore_filters::rate_limit::{Login, Subject};
use bridgecore_filters::{forwarded, jsonrpc, route, Call, Class, Credential, Endpoint};
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::Method;
use pingora::modules::http::compression::{ResponseCompression, ResponseCompressionBuilder};
use pingora::modules::http::HttpModules;
use pingora::prelude::*;
use pingora::proxy::FailToProxy;
use pingora::ErrorType;

use crate::access_log::AccessLine;
use crate::cache::store::Entry;
use crate::cache::{Lookup, Status};
use crate::compress::{brotli_all, BrotliStream};
use crate::ctx::RequestCtx;
use crate::runtime::{Route, Runtime};
use crate::tenant::Tenant;
use crate::Shared;
use crate::{api, gate};

/// Bodies up to this size are read and parsed before the upstream is chosen; it is Pingora's
/// retry-buffer size, the most that can be replayed upstream (pingora-notes.md §2).
pub const MAX_READ_BODY: u64 = 64 * 1024;
/// The largest streamed RPC body whose copy is parsed at its end (for classification and logs).
const STREAM_PARSE_CAP: usize = 8 * 1024 * 1024;
/// The most header bytes (request line included) BridgeCore forwards: Pingora reads up to
/// 1 MiB, nginx's default is 32 KiB. Larger requests get 431 instead of reaching Odoo.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Idle limit of upgraded `/websocket` connections: Odoo pings every 45 s, and its own keep-alive
/// closes sockets after 1 h plus up to 30 min (odoo-protocol.md §8.3).
const WEBSOCKET_IDLE: Duration = Duration::from_secs(2 * 3600);
/// Compression level for gzip, brotli and zstd.
pub(crate) const COMPRESSION_LEVEL: u32 = 5;

/// The filters' view of this request. A macro, not a method, so that the borrows of `ctx`'s
/// fields stay disjoint (the chain also needs `ctx.call`).
macro_rules! exchange {
    ($req:expr, $ctx:expr, $tenant:expr) => {
        Exchange {
            request: $req,
            client_ip: $ctx
                .client_ip
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()),
            tenant: $tenant.name(),
            request_id: $ctx.request_id.to_str().unwrap_or_default(),
            tls: $ctx.tls,
            odoo: $tenant.odoo.as_ref(),
            state: &mut $ctx.filter_state,
        }
    };
}

/// Request headers looked up on every request, parsed once (a `&str` name is parsed and
/// checked on each lookup).
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// Headers added upstream on every request (static: no parsing, no allocation per insert).
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
/// Headers BridgeCore adds to answers.
static X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// The proxy service's logic.
pub struct Proxy {
    pub(crate) shared: Arc<Shared>,
}

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    fn init_downstream_modules(&self, modules: &mut HttpModules) {
        // Enabled here and switched off per response: the module parses Accept-Encoding
        // before request_filter runs, so it cannot be switched on later (pingora-notes.md §4).
        modules.add_module(ResponseCompressionBuilder::enable(COMPRESSION_LEVEL));
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let rt = self.shared.runtime.load_full();
        ctx.request_id = match session.get_header(&X_REQUEST_ID) {
            Some(v) if sane_request_id(v.as_bytes()) => v.clone(),
            _ => new_request_id(),
        };
        ctx.peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        ctx.tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        if let Some(peer) = ctx.peer {
            let xff = session
                .get_header(&X_FORWARDED_FOR)
                .and_then(|v| v.to_str().ok());
            ctx.client_ip = Some(forwarded::client_ip(peer, xff, &|ip| rt.trusts(ip)));
        }
        // Narrow Accept-Encoding to the one coding BridgeCore picked (q-values honoured); the
        // client's header goes upstream unchanged.
        if let Some(original) = session.get_header(header::ACCEPT_ENCODING).cloned() {
            let picked = original
                .to_str()
                .ok()
                .and_then(|v| negotiate(v, rt.codings));
            // Brotli is BridgeCore's own (see compress.rs); the module only does gzip and zstd.
            ctx.brotli = picked == Some(Coding::Brotli);
            ctx.coding = picked;
            let token = match picked {
                Some(Coding::Brotli) | None => "identity",
                Some(c) => c.token(),
            };
            if original.as_bytes() != token.as_bytes() {
                session
                    .req_header_mut()
                    .insert_header(header::ACCEPT_ENCODING, token)?;
                ctx.accept_encoding = Some(original);
            }
        }
        ctx.runtime = Some(rt);
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let Some(rt) = ctx.runtime.clone() else {
            return Error::e_explain(ErrorType::InternalError, "no runtime");
        };
        ctx.endpoint = route::endpoint(session.req_header().uri.path());
        if header_bytes(session.req_header()) > MAX_HEADER_BYTES {
            session.set_keepalive(None);
            let reply = plain(431, "request header fields too large\n");
            return self
                .answer(session, ctx, reply, "bridgecore", "too_large")
                .await;
        }
        if !ctx.tls && rt.config.server.redirect_http_to_https {
            let reply = https_redirect(session.req_header(), &rt);
            return self
                .answer(session, ctx, reply, "bridgecore", "redirect")
                .await;
        }
        let req = session.req_header();
        let tenant = match rt.route(request_host(req), req.uri.path()) {
            Route::Odoo(t) => t,
            Route::Own { tenant } => {
                ctx.tenant = tenant;
                return self.own_api(session, ctx).await;
            }
            Route::UnknownSystem => {
                let reply = Reply::json(404, api_error("unknown system"));
                return self
                    .answer(session, ctx, reply, "bridgecore", "no_tenant")
                    .await;
            }
            Route::NoTenant => {
                let reply =
                    self.error_reply(ctx, ErrorKind::NotFound, "no tenant serves this host");
                return self
                    .answer(session, ctx, reply, "bridgecore", "no_tenant")
                    .await;
            }
        };
        ctx.tenant = Some(tenant.clone());
        ctx.ends_session = self.session_switch(session.req_header(), &tenant).await;

        let xmlrpc_db = matches!(ctx.endpoint, Endpoint::XmlRpc { .. })
            && session.req_header().uri.path().rsplit('/').next() == Some("db");
        if xmlrpc_db && !tenant.cfg.allow_database_manager {
            let reply = plain(403, "the database service is disabled on this server\n");
            return self
                .answer(session, ctx, reply, "bridgecore", "blocked")
                .await;
        }
        if ctx.endpoint == Endpoint::DatabaseManager && !tenant.cfg.allow_database_manager {
            let reply = plain(403, "the database manager is disabled on this server\n");
            return self
                .answer(session, ctx, reply, "bridgecore", "blocked")
                .await;
        }

        // Sizes: refuse before anything reaches Odoo.
        let max_body = rt.config.server.max_body_size;
        let content_length = content_length(session);
        if content_length.is_some_and(|n| n > max_body) {
            session.set_keepalive(None);
            let reply = self.error_reply(ctx, ErrorKind::PayloadTooLarge, "request body too large");
            return self
                .answer(session, ctx, reply, "bridgecore", "too_large")
                .await;
        }

        if let Some(reply) = self.addons_static(session, ctx, &tenant).await {
            return self
                .answer(session, ctx, reply, "bridgecore", "static_disk")
                .await;
        }
        if let Some(reply) = self.static_lookup(session, ctx, &rt, &tenant) {
            return self
                .answer(session, ctx, reply, "cache", "static_hit")
                .await;
        }

        if ctx.endpoint == Endpoint::Websocket {
            ctx.websocket = true;
            session.set_read_timeout(Some(WEBSOCKET_IDLE));
            disable_compression(session);
            return Ok(false);
        }
        session.set_read_timeout(Some(rt.config.server.client_timeout));

        let method = session.req_header().method.clone();
        let parse = method == Method::POST
            && ctx.endpoint.is_rpc()
            && rpc_content_type(session, &ctx.endpoint);
        if parse {
            let chunked = content_length.is_none() && is_chunked(session);
            match content_length {
                Some(n) if n <= MAX_READ_BODY => {
                    let body = read_body(session, n).await?;
                    ctx.body_read = true;
                    match jsonrpc::parse(&ctx.endpoint, session.req_header(), &body) {
                        Ok(call) => ctx.call = Some(Box::new(call)),
                        Err(e) => {
                            let reply = self.error_reply(ctx, ErrorKind::BadRequest, &e.message());
                            return self
                                .answer(session, ctx, reply, "bridgecore", "bad_request")
                                .await;
                        }
                    }
                }
                None if !chunked => {
                    // No body at all: Odoo answers 400 "Invalid JSON data"; so do we.
                    let reply = self.error_reply(ctx, ErrorKind::BadRequest, "empty request body");
                    return self
                        .answer(session, ctx, reply, "bridgecore", "bad_request")
                        .await;
                }
                _ => {
                    ctx.stream_copy = Some(BytesMut::new());
                    ctx.guard_db =
                        ctx.endpoint == Endpoint::JsonRpc && !tenant.cfg.allow_database_manager;
                    // What the route alone says, until the body's end is parsed, and for good
                    // when it never is (past the parse cap, or cut short): on a route that can
                    // write, an unknown write, which flushes the tenant before its answer.
                    ctx.class =
                        class_of_unparsed(&method, &ctx.endpoint, session.req_header().uri.path());
                }
            }
        }

        if let Some(call) = ctx.call.take() {
            if call.service.as_deref() == Some("db") && !tenant.cfg.allow_database_manager {
                let reply = Reply::jsonrpc_error(
                    Some(&*call),
                    ErrorKind::Forbidden,
                    "the database service is disabled on this server",
                );
                ctx.call = Some(call);
                return self
                    .answer(session, ctx, reply, "bridgecore", "blocked")
                    .await;
            }
            ctx.class = Some(call.class());
            if let Some(reply) = self
                .gate(session.req_header(), ctx, &rt, &tenant, Some(&call), None)
                .await
            {
                ctx.call = Some(call);
                return self
                    .answer(session, ctx, reply, "bridgecore", "refused")
                    .await;
            }
            // A token caller's Odoo session was swapped in by the gate: filters that call Odoo
            // for this caller (batched reads, field lists) must act as that session.
            let mut call = call;
            if let Some(sid) = &ctx.odoo_session {
                call.credential = Credential::Session(sid.clone());
            }
            let call = if rt.chain.is_empty() {
                call
            } else {
                let decision = {
                    let mut ex = exchange!(session.req_header(), ctx, tenant);
                    rt.chain.on_request(&mut ex, &call).await
                };
                match decision {
                    ChainDecision::Respond { filter, reply } => {
                        ctx.call = Some(call);
                        return self.answer(session, ctx, reply, filter, "filter").await;
                    }
                    ChainDecision::Forward { rewritten: None } => {
                        ctx.chain_forwarded = true;
                        call
                    }
                    ChainDecision::Forward {
                        rewritten: Some(new),
                    } => {
                        ctx.chain_forwarded = true;
                        match new.to_body() {
                            Ok(body) => ctx.new_body = Some(Bytes::from(body)),
                            Err(e) => {
                                let msg =
                                    format!("a filter produced a call that cannot be sent: {e}");
                                let reply = self.error_reply(ctx, ErrorKind::BadRequest, &msg);
                                return self
                                    .answer(session, ctx, reply, "bridgecore", "bad_request")
                                    .await;
                            }
                        }
                        new
                    }
                }
            };
            if let Some(reply) = self
                .cache_lookup(session.req_header(), ctx, &rt, &tenant, &call)
                .await
            {
                ctx.call = Some(call);
                return self.answer(session, ctx, reply, "cache", "cache_hit").await;
            }
            ctx.call = Some(call);
        } else if ctx.stream_copy.is_none() {
            ctx.class = class_of_unparsed(&method, &ctx.endpoint, session.req_header().uri.path());
            if ctx.class.is_some() {
                let form_login = match content_length {
                    Some(n) if ctx.class == Some(Class::Auth) && n <= MAX_READ_BODY => {
                        let body = read_body(session, n).await?;
                        ctx.body_read = true;
                        form_login(&body)
                    }
                    _ => None,
                };
                let login = form_login
                    .as_ref()
                    .map(|(db, l)| (db.as_deref(), l.as_str()));
                if let Some(reply) = self
                    .gate(session.req_header(), ctx, &rt, &tenant, None, login)
                    .await
                {
                    return self
                        .answer(session, ctx, reply, "bridgecore", "refused")
                        .await;
                }
            }
        }

        if ctx.cache_status.is_none() && method == Method::POST && json_rpc_route(&ctx.endpoint) {
            // Not looked up (streamed, or not parsed): still a JSON-RPC answer.
            ctx.cache_status = Some(Status::Bypass);
        }
        match tenant.acquire().await {
            Some(permit) => ctx.permit = Some(permit),
            None => {
                let reply = self.error_reply(
                    ctx,
                    ErrorKind::Unavailable,
                    "Odoo is busy: too many concurrent requests",
                );
                return self
                    .answer(session, ctx, reply, "bridgecore", "saturated")
                    .await;
            }
        }
        tenant.metrics.in_flight.inc();
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let Some(tenant) = ctx.tenant.as_ref() else {
            return Error::e_explain(
                ErrorType::InternalError,
                "request without tenant reached upstream_peer",
            );
        };
        let set = if ctx.websocket {
            &tenant.ws_upstreams
        } else {
            &tenant.upstreams
        };
        // Stickiness only matters, and the cookie is only read, when there is a choice.
        let sticky = if set.all().len() > 1 {
            ctx.odoo_session
                .as_deref()
                .or_else(|| jsonrpc::session_cookie(&session.req_header().headers))
        } else {
            None
        };
        let Some(addr) = set.pick_avoiding(sticky, ctx.retried_from) else {
            return Error::e_explain(ErrorType::HTTPStatus(502), "tenant has no upstream");
        };
        ctx.upstream_addr = Some(addr);
        // A retry's new guard replaces (and so uncounts) the previous attempt's.
        ctx.upstream_guard = set.track(addr);
        ctx.connect_attempts += 1;
        let mut peer = HttpPeer::new(addr, false, String::new());
        peer.options.connection_timeout = Some(tenant.cfg.connect_timeout);
        if ctx.websocket {
            peer.options.read_timeout = Some(WEBSOCKET_IDLE);
            peer.options.idle_timeout = Some(WEBSOCKET_IDLE);
        } else {
            peer.options.read_timeout = Some(tenant.cfg.timeout);
            peer.options.write_timeout = Some(tenant.cfg.timeout);
        }
        Ok(Box::new(peer))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // Out of rotation until health checks bring it back (or, with checks off, until its
        // cooldown ends); the retry below then picks another (a sticky session moves to its
        // next upstream).
        if let (Some(t), Some(addr)) = (ctx.tenant.as_ref(), ctx.upstream_addr) {
            if ctx.websocket {
                t.ws_upstreams.eject(addr);
            } else {
                t.upstreams.eject(addr);
            }
        }
        // Nothing reached Odoo, so another upstream may be tried, each at most once.
        let upstreams = ctx.tenant.as_ref().map_or(0, |t| {
            if ctx.websocket {
                t.ws_upstreams.all().len()
            } else {
                t.upstreams.all().len()
            }
        });
        e.set_retry(ctx.connect_attempts < upstreams);
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        let failed_after_sending = matches!(
            e.etype(),
            ErrorType::ConnectionClosed
                | ErrorType::ReadError
                | ErrorType::WriteError
                | ErrorType::HTTPStatus(502 | 503)
        );
        if failed_after_sending && self.read_retry_allowed(session, ctx) {
            // A read that carries its own credentials (or runs on shared sessions) goes once
            // to another upstream: upstream_peer leaves this one out.
            ctx.retried_from = ctx.upstream_addr;
            self.shared
                .metrics
                .upstream_retries
                .with_label_values(&[ctx.tenant_label()])
                .inc();
            e.set_retry(true);
            return e;
        }
        let replayable_read = !ctx.class.is_some_and(Class::is_write)
            && session.req_header().method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated();
        if replayable_read {
            // Pingora's own rule: only a stale pooled connection is retried.
            e.retry.decide_reuse(client_reused);
        } else {
            // A write is forwarded once, never retried (design.md §5).
            e.set_retry(false);
        }
        e
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let status = resp.status.as_u16();
        if matches!(status, 502 | 503) && self.read_retry_allowed(session, ctx) {
            // The upstream is down behind its own front (a 502/503 of its own): the read is
            // retried on another upstream as a failed connection would be (see
            // error_while_proxy); without another try the answer passes through.
            return Error::e_explain(
                ErrorType::HTTPStatus(status),
                "upstream answered that it is unavailable",
            );
        }
        Ok(())
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        up: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // Edited as plain `http` parts: Pingora's `insert_header` parses every name, allocates
        // custom ones and keeps a second, case-preserving map, about twice the work of an
        // insert into the `HeaderMap` with a static name. Pingora then writes standard names in
        // their usual case and others in lowercase (names have no case: RFC 9110 §5.1).
        // A request-target the URI does not reproduce (absolute-form, non-UTF-8) is put back.
        let raw_target = {
            let uri_target = up
                .uri
                .path_and_query()
                .map_or(&b""[..], |p| p.as_str().as_bytes());
            (up.raw_path() != uri_target).then(|| up.raw_path().to_vec())
        };
        let end_stream = up.send_end_stream();
        let empty = http::Request::new(()).into_parts().0;
        let mut parts: http::request::Parts = std::mem::replace(up, empty.into()).into();
        self.edit_upstream_headers(session, &mut parts.headers, ctx)?;
        *up = parts.into();
        if let Some(raw) = raw_target {
            up.set_raw_path(&raw)?;
        }
        if let Some(end_stream) = end_stream {
            up.set_send_end_stream(end_stream);
        }
        ctx.upstream_start = Some(std::time::Instant::now());
        Ok(())
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(new) = &ctx.new_body {
            // Runs once per upstream attempt with the whole buffered body: stay idempotent.
            *body = end_of_stream.then(|| new.clone());
            return Ok(());
        }
        if let Some(chunk) = body.as_ref() {
            ctx.body_bytes += chunk.len() as u64;
            let max = ctx
                .runtime
                .as_ref()
                .map_or(u64::MAX, |r| r.config.server.max_body_size);
            if ctx.body_bytes > max {
                ctx.answered_reason = Some("too_large");
                return Error::e_explain(
                    ErrorType::HTTPStatus(413),
                    "request body grew past max_body_size",
                );
            }
            if let Some(copy) = ctx.stream_copy.as_mut() {
                // A guarded body is copied whole (it is bounded by max_body_size).
                if ctx.guard_db || copy.len() + chunk.len() <= STREAM_PARSE_CAP {
                    copy.extend_from_slice(chunk);
                } else {
                    ctx.stream_copy = None;
                }
            }
        }
        if ctx.guard_db {
            // Odoo acts on a body only once it has all of it: holding back the latest chunk
            // until the whole call is checked keeps a `db` call from ever being complete there.
            let previous = ctx.held_chunk.take();
            let current = body.take();
            if !end_of_stream {
                ctx.held_chunk = current;
                // `None` would tell Pingora the body ended; an empty chunk is "nothing yet".
                *body = Some(previous.unwrap_or_default());
                return Ok(());
            }
            let call = ctx
                .stream_copy
                .as_ref()
                .and_then(|copy| jsonrpc::parse(&ctx.endpoint, session.req_header(), copy).ok());
            if call
                .as_ref()
                .is_some_and(|c| c.service.as_deref() == Some("db"))
            {
                ctx.answered_reason = Some("blocked");
                return Error::e_explain(
                    ErrorType::HTTPStatus(403),
                    "the database service is disabled on this server",
                );
            }
            *body = match (previous, current) {
                (Some(a), Some(b)) => {
                    let mut both = BytesMut::with_capacity(a.len() + b.len());
                    both.extend_from_slice(&a);
                    both.extend_from_slice(&b);
                    Some(both.freeze())
                }
                (a, b) => a.or(b),
            };
        }
        if end_of_stream {
            if let Some(copy) = ctx.stream_copy.take() {
                // Classification and logs only: the bytes already went upstream untouched.
                ctx.class = match jsonrpc::parse(&ctx.endpoint, session.req_header(), &copy) {
                    Ok(call) => {
                        let class = call.class();
                        ctx.call = Some(Box::new(call));
                        Some(class)
                    }
                    Err(_) => class_of_unparsed(
                        &session.req_header().method,
                        &ctx.endpoint,
                        session.req_header().uri.path(),
                    ),
                };
            }
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let path = session.req_header().uri.path();
        self.sendfile(resp, ctx).await?;
        self.cache_response(resp, ctx, path).await?;
        image_csp(resp, path)?;
        self.static_response(resp, ctx)?;
        if ctx.odoo_session.is_some() {
            hide_session_cookies(resp)?;
        } else {
            fixsession_cookie(resp, ctx.tls)?;
        }
        own_answer_headers(resp, ctx)?;
        let min_size = ctx
            .runtime
            .as_ref()
            .map_or(1000, |r| r.config.compression.min_size);
        let head_request = session.req_header().method == Method::HEAD;
        // No coding accepted (most API clients): nothing to decide.
        if ctx.coding.is_none() || !should_compress(resp, min_size) || ctx.websocket || head_request
        {
            disable_compression(session);
        } else if ctx.brotli {
            resp.insert_header(header::CONTENT_ENCODING, "br")?;
            resp.remove_header(&header::CONTENT_LENGTH);
            resp.remove_header(&header::ACCEPT_RANGES);
            resp.insert_header(header::TRANSFER_ENCODING, "chunked")?;
            resp.append_header(header::VARY, "Accept-Encoding")?;
            weaken_etag(resp)?;
            ctx.brotli_stream = Some(Box::new(BrotliStream::new(COMPRESSION_LEVEL)));
        }
        if ctx.chain_forwarded {
            if let (Some(rt), Some(tenant), Some(call)) =
                (ctx.runtime.clone(), ctx.tenant.clone(), ctx.call.as_ref())
            {
                let mut head = ResponseHead::new(resp.status.as_u16(), &resp.headers);
                let mut ex = exchange!(session.req_header(), ctx, tenant);
                rt.chain.on_response(&mut ex, call, &mut head).await;
                for edit in head.into_edits() {
                    match edit {
                        HeaderEdit::Set(name, value) => resp.insert_header(name, value)?,
                        HeaderEdit::Append(name, value) => {
                            resp.append_header(name, value)?;
                        }
                        HeaderEdit::Remove(name) => {
                            resp.remove_header(&name);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        if let Some(entry) = &ctx.serve_stale {
            // Odoo's 5xx body is replaced by the last good answer.
            *body = end_of_stream.then(|| {
                let id = ctx.call.as_ref().and_then(|c| c.id.as_ref());
                entry.bodies.render(None, id).0
            });
        }
        if let Some(enc) = ctx.brotli_stream.as_mut() {
            let input = body.take().unwrap_or_default();
            let out = enc.encode(&input, end_of_stream);
            *body = (!out.is_empty() || end_of_stream).then_some(out);
        }
        Ok(None)
    }

    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        if let (Some(buf), Some(chunk)) = (ctx.cache_body.as_mut(), body.as_ref()) {
            if buf.len() + chunk.len() > ctx.cache_max {
                ctx.cache_body = None;
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        if let Some(chunk) = body.as_ref() {
            crate::ws::collect_chunk(ctx, chunk);
        }
        if end_of_stream && ctx.upstream_time.is_none() {
            ctx.upstream_time = ctx.upstream_start.map(|s| s.elapsed());
        }
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        if let Some(reply) = ctx.sendfile.take() {
            // Not a failure: Odoo's X-Accel-Redirect answer, with the file (see `sendfile`).
            let status = reply.status;
            if let Err(err) = self.write_reply(session, ctx, reply).await {
                log::debug!("could not send the filestore answer: {err}");
            }
            ctx.answered_reason = Some("sendfile");
            return FailToProxy {
                error_code: status,
                can_reuse_downstream: false,
            };
        }
        // A write that failed or timed out may have been applied: its bump reaches the
        // generations before the error answer reaches the client.
        self.settle_generations(ctx, session.req_header().uri.path())
            .await;
        let upstream = matches!(e.esource(), pingora::ErrorSource::Upstream);
        let (code, kind, message) = match e.etype() {
            ErrorType::HTTPStatus(413) => {
                (413, ErrorKind::PayloadTooLarge, "request body too large")
            }
            ErrorType::HTTPStatus(c) if *c >= 500 => {
                (*c, ErrorKind::BadGateway, "Odoo is unreachable")
            }
            ErrorType::HTTPStatus(403) => (
                403,
                ErrorKind::Forbidden,
                "the database service is disabled on this server",
            ),
            ErrorType::HTTPStatus(c) => (*c, ErrorKind::BadRequest, "bad request"),
            ErrorType::ReadTimedout | ErrorType::WriteTimedout if upstream => (
                504,
                ErrorKind::GatewayTimeout,
                "Odoo did not answer in time",
            ),
            ErrorType::ReadTimedout => {
                (408, ErrorKind::BadRequest, "timed out reading the request")
            }
            ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed
                if !upstream =>
            {
                (0, ErrorKind::BadRequest, "")
            }
            _ if upstream => (502, ErrorKind::BadGateway, "Odoo is unreachable"),
            _ if matches!(e.esource(), pingora::ErrorSource::Downstream) => {
                (400, ErrorKind::BadRequest, "bad request")
            }
            _ => (502, ErrorKind::BadGateway, "proxy error"),
        };
        if upstream {
            let kind = match e.etype() {
                ErrorType::ConnectTimedout
                | ErrorType::ConnectRefused
                | ErrorType::ConnectNoRoute
                | ErrorType::ConnectError => "connect",
                ErrorType::ReadTimedout | ErrorType::WriteTimedout => "timeout",
                ErrorType::ConnectionClosed => "closed",
                _ => "other",
            };
            self.shared
                .metrics
                .upstream_errors
                .with_label_values(&[ctx.tenant_label(), kind])
                .inc();
        }
        let stale = ctx
            .cache_pending
            .as_ref()
            .and_then(|p| p.stale.clone())
            .filter(|_| upstream && code >= 500);
        if let (Some(entry), None) = (stale, session.response_written()) {
            ctx.cache_status = Some(Status::Stale);
            let id = ctx.call.as_ref().and_then(|c| c.id.clone());
            let reply = hit_reply(&entry, ctx.coding, id.as_ref(), Status::Stale);
            if let Err(err) = self.write_reply(session, ctx, reply).await {
                log::debug!("could not send the stale answer: {err}");
            }
            return FailToProxy {
                error_code: 200,
                can_reuse_downstream: false,
            };
        }
        if code > 0 && session.response_written().is_none() {
            if ctx.cache_status == Some(Status::Miss) {
                // BridgeCore's own answer, not Odoo's: `X-Cache: BYPASS` on it, and so in the
                // metrics and the access log.
                ctx.cache_status = Some(Status::Bypass);
            }
            let reply = if code == 408 {
                plain(408, "request timeout\n")
            } else {
                self.error_reply(ctx, kind, message)
            };
            let reply = Reply {
                status: code,
                ..reply
            };
            if let Err(err) = self.write_reply(session, ctx, reply).await {
                log::debug!("could not send the error response: {err}");
            }
            linger(session).await;
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |h| h.status.as_u16());
        let m = &self.shared.metrics;
        let tm = ctx
            .tenant
            .as_ref()
            .map_or(&self.shared.untenanted, |t| &t.metrics);
        tm.count(ctx.class.map(|c| c.category()), status);
        if let (Some(call), Some(rt), Some(t)) = (ctx.call.as_deref(), &ctx.runtime, &ctx.tenant) {
            if let Some(calls) = rt.calls(t) {
                let class = ctx.class.unwrap_or_else(|| call.class());
                calls.count(call.model.as_deref(), class.category());
            }
        }
        let elapsed = ctx.start.elapsed();
        tm.duration.observe(elapsed.as_secs_f64());
        if let Some(up) = ctx.upstream_time {
            tm.upstream_duration.observe(up.as_secs_f64());
        }
        if ctx.permit.take().is_some() {
            tm.in_flight.dec();
        }
        ctx.upstream_guard = None;
        if let Some(reason) = ctx.answered_reason {
            m.answered
                .with_label_values(&[ctx.tenant_label(), reason])
                .inc();
        }
        self.cache_complete(session, e, status, ctx).await;
        self.static_store(e, status, ctx).await;
        crate::ws::publish_answer(&self.shared, e.is_none(), status, ctx);
        if ctx.chain_forwarded {
            if let (Some(rt), Some(t), Some(call)) =
                (ctx.runtime.clone(), ctx.tenant.clone(), ctx.call.as_ref())
            {
                let outcome = match (e, status) {
                    (None, s) if s > 0 => Outcome::Answered(s),
                    _ => Outcome::Failed,
                };
                let mut ex = exchange!(session.req_header(), ctx, t);
                rt.chain.on_complete(&mut ex, call, outcome).await;
            }
        }
        let req = session.req_header();
        let line = AccessLine {
            ts: ctx.started_at,
            request_id: ctx.request_id(),
            tenant: ctx.tenant.as_ref().map(|t| t.name()),
            client_ip: ctx.client_ip,
            method: req.method.as_str(),
            path: req.uri.path(),
            status,
            bytes: session.body_bytes_sent(),
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            upstream_ms: ctx.upstream_time.map(|d| d.as_secs_f64() * 1000.0),
            cache: ctx.cache_status.map(Status::as_str),
            model: ctx.call.as_ref().and_then(|c| c.model.as_deref()),
            rpc_method: ctx
                .call
                .as_ref()
                .and_then(|c| c.method.as_deref().or(c.service_method.as_deref())),
            uid: ctx.call.as_ref().and_then(|c| match &c.credential {
                bridgecore_filters::Credential::Password { uid, .. } => Some(*uid),
                _ => None,
            }),
            answered_by: ctx.answered_by,
            error: e.map(|e| e.to_string()),
        };
        if !self.shared.access_log.write(&line) {
            m.access_log_dropped.inc();
        }
    }
}

impl Proxy {
    /// The upstream request's header edits (design.md §5 and odoo-protocol.md §9): the token
    /// and `Expect` out, the cookie on BridgeCore's Odoo session, the forwarded headers of
    /// Odoo's proxy mode, the request id, the coding BridgeCore negotiates, a rewritten body's
    /// length.
    fn edit_upstream_headers(
        &self,
        session: &Session,
        up: &mut http::HeaderMap,
        ctx: &RequestCtx,
    ) -> Result<()> {
        // Removals first, then room for the additions at once (one growth, not several).
        if let Some(name) = &ctx.token_header {
            up.remove(name);
        }
        if ctx.body_read {
            // BridgeCore already answered `Expect: 100-continue` and holds the whole body.
            up.remove(header::EXPECT);
        }
        if ctx.new_body.is_some() {
            up.remove(header::TRANSFER_ENCODING);
        }
        up.reserve(8);
        if let Some(sid) = &ctx.odoo_session {
            // The client's cookies as sent (checked once, as the new value, below).
            let sent = session
                .get_header(header::COOKIE)
                .map_or(&b""[..], HeaderValue::as_bytes);
            let mut cookie = Vec::with_capacity(sid.len() + sent.len() + 13);
            cookie.extend_from_slice(b"session_id=");
            cookie.extend_from_slice(sid.as_bytes());
            // The client's other cookies, in order (bytes: a str split and trim per pair
            // cost as much as the rest of the edit).
            for kv in sent.split(|&b| b == b';') {
                let kv = kv.trim_ascii();
                if !kv.is_empty() && !kv.starts_with(b"session_id=") {
                    cookie.extend_from_slice(b"; ");
                    cookie.extend_from_slice(kv);
                }
            }
            let cookie = HeaderValue::from_maybe_shared(Bytes::from(cookie))
                .explain_err(ErrorType::InvalidHTTPHeader, |_| "cookie")?;
            up.insert(header::COOKIE, cookie);
        }
        let rt = ctx.runtime.as_ref();
        let req = session.req_header();
        // The client's own `Host` value when it has one (shared, not copied).
        let host = match req.headers.get(header::HOST) {
            Some(host) if host.to_str().is_ok() => Some(host.clone()),
            _ => match req.uri.authority() {
                Some(a) => Some(header_value(a.as_str().to_owned(), "x-forwarded-host")?),
                None => None,
            },
        };
        if let Some(host) = host {
            up.insert(X_FORWARDED_HOST.clone(), host);
        }
        // The same text twice in the common case (an untrusted peer: the list is the client
        // alone): one value, shared.
        let mut list = None;
        if let Some(peer) = ctx.peer {
            let xff = req
                .headers
                .get(&X_FORWARDED_FOR)
                .and_then(|v| v.to_str().ok());
            let text =
                forwarded::x_forwarded_for(peer, xff, &|ip| rt.is_some_and(|r| r.trusts(ip)));
            let value = header_value(text, "x-forwarded-for")?;
            up.insert(X_FORWARDED_FOR.clone(), value.clone());
            list = Some((peer, value));
        }
        if let Some(ip) = ctx.client_ip {
            let value = match list {
                // No comma: the list is the peer alone (see x_forwarded_for).
                Some((peer, value)) if peer == ip && !value.as_bytes().contains(&b',') => value,
                _ => header_value(forwarded::ip_text(ip), "x-real-ip")?,
            };
            up.insert(X_REAL_IP.clone(), value);
        }
        up.insert(
            X_FORWARDED_PROTO.clone(),
            HeaderValue::from_static(if ctx.tls { "https" } else { "http" }),
        );
        up.insert(X_REQUEST_ID.clone(), ctx.request_id.clone());
        if let Some(v) = &ctx.accept_encoding {
            up.insert(header::ACCEPT_ENCODING, v.clone());
        }
        if let Some(body) = &ctx.new_body {
            up.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        Ok(())
    }

    /// Whether a read that failed on its upstream after the request was sent may go once to
    /// another upstream (issue 7 item 3): only reads (cacheable or not), only when the call
    /// carries its own credentials (`/jsonrpc` and XML-RPC db/uid/password, `/json/2` API key)
    /// or the tenant's upstreams share sessions, only with the whole body in hand to send
    /// again, before anything of the answer reached the client, and only once.
    fn read_retry_allowed(&self, session: &Session, ctx: &RequestCtx) -> bool {
        let Some(tenant) = ctx.tenant.as_ref() else {
            return false;
        };
        if ctx.websocket || ctx.retried_from.is_some() || tenant.upstreams.all().len() < 2 {
            return false;
        }
        if !matches!(
            ctx.class,
            Some(Class::CacheableRead | Class::UncacheableRead)
        ) {
            return false;
        }
        let own_credentials = ctx.odoo_session.is_none()
            && ctx.call.as_ref().is_some_and(|c| {
                matches!(
                    c.credential,
                    Credential::Password { .. } | Credential::ApiKey { .. }
                )
            });
        if !own_credentials && !tenant.cfg.shared_sessions {
            return false;
        }
        let no_body = content_length(session).is_none_or(|n| n == 0) && !is_chunked(session);
        let body_in_hand = ctx.body_read || no_body;
        body_in_hand
            && !session.as_ref().retry_buffer_truncated()
            && session.response_written().is_none()
    }

    /// The session whose cache entries this request ends (see `settle_generations`): a
    /// logout's, and a `?debug=` page load's, which switches the Odoo session's debug mode and
    /// so what `fields_get`, views and menus return. A debug switch ends them twice: here, and
    /// again once Odoo has answered, so that nothing another tab stored under the old mode
    /// while Odoo was switching it survives.
    async fn session_switch(&self, req: &RequestHeader, tenant: &Tenant) -> Option<Box<Identity>> {
        let debug = req.uri.query().is_some_and(|q| {
            q.split('&')
                .any(|kv| kv == "debug" || kv.starts_with("debug="))
        });
        let logout = matches!(
            req.uri.path(),
            "/web/session/destroy" | "/web/session/logout"
        );
        if !debug && !logout {
            return None;
        }
        let id = jsonrpc::session_cookie(&req.headers)
            .and_then(|sid| self.shared.cache.session_identity(sid))?;
        if debug {
            self.shared.cache.end_identity(tenant.name(), &id).await;
        }
        Some(Box::new(id))
    }

    /// `GET /<module>/static/<path>` from the tenant's `addons_paths` on disk, as nginx's
    /// `try_files` in Odoo's deploy doc: the first directory that has the file answers (with
    /// Odoo's caching headers, validators and 304s); otherwise the request goes on to Odoo. A
    /// path that tries to leave the static directory gets 400 and reaches nothing.
    async fn addons_static(
        &self,
        session: &Session,
        ctx: &RequestCtx,
        tenant: &Tenant,
    ) -> Option<Reply> {
        use crate::static_cache::{self as sc, StaticPath};
        let req = session.req_header();
        if tenant.cfg.addons_paths.is_empty()
            || req.method != Method::GET
            || req.headers.contains_key(header::RANGE)
        {
            return None;
        }
        let (module, rel) = match sc::static_path(req.uri.path()) {
            StaticPath::NotStatic => return None,
            StaticPath::Refused => {
                return Some(self.error_reply(ctx, ErrorKind::BadRequest, "invalid static path"))
            }
            StaticPath::File(module, rel) => (module, rel),
        };
        let file = sc::addons_file(&tenant.cfg.addons_paths, module, rel).await?;
        let mut headers = vec![
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(sc::STATIC_CACHE_CONTROL),
            ),
            (header::ETAG, file.etag.clone()),
            (
                header::LAST_MODIFIED,
                HeaderValue::from_str(&httpdate::fmt_http_date(file.modified)).ok()?,
            ),
        ];
        if file.content_type.starts_with("image/") {
            headers.push((
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(sc::IMAGE_CSP),
            ));
        }
        if sc::disk_not_modified(&req.headers, &file) {
            return Some(Reply {
                status: 304,
                headers,
                body: Bytes::new(),
            });
        }
        headers.push((
            header::CONTENT_TYPE,
            HeaderValue::from_static(file.content_type),
        ));
        Some(Reply {
            status: 200,
            headers,
            body: file.body,
        })
    }

    /// The static cache's request side: a kept file (or a 304 for it) becomes the answer; a
    /// miss is noted for the response side.
    fn static_lookup(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
        rt: &Runtime,
        tenant: &Tenant,
    ) -> Option<Reply> {
        let req = session.req_header();
        let cfg = &rt.config.cache.static_assets;
        let wanted = cfg.enabled
            && req.method == Method::GET
            && crate::static_cache::is_static(req.uri.path())
            && req.headers.get(header::RANGE).is_none()
            && req.headers.get(header::AUTHORIZATION).is_none();
        if !wanted {
            return None;
        }
        let pq = req.uri.path_and_query().map_or("/", |p| p.as_str());
        let key = crate::static_cache::StaticCache::key(tenant.name(), pq, ctx.coding);
        let Some(asset) = self.shared.static_cache.get(&key) else {
            ctx.static_key = Some(key);
            return None;
        };
        let cache_status = (
            HeaderName::from_static("x-cache"),
            HeaderValue::from_static("HIT"),
        );
        if crate::static_cache::not_modified(
            req.headers.get(header::IF_NONE_MATCH),
            asset.etag.as_ref(),
        ) {
            let mut headers: Vec<_> = asset
                .headers
                .iter()
                .filter(|(n, _)| {
                    matches!(
                        *n,
                        header::ETAG | header::CACHE_CONTROL | header::EXPIRES | header::VARY
                    )
                })
                .cloned()
                .collect();
            headers.push(cache_status);
            return Some(Reply {
                status: 304,
                headers,
                body: Bytes::new(),
            });
        }
        let mut headers = asset.headers.clone();
        headers.push(cache_status);
        Some(Reply {
            status: 200,
            headers,
            body: asset.body.clone(),
        })
    }

    /// The static cache's response side: whether Odoo lets this answer be kept.
    fn static_response(&self, resp: &mut ResponseHeader, ctx: &mut RequestCtx) -> Result<()> {
        if ctx.static_key.is_none() {
            return Ok(());
        }
        resp.insert_header("x-cache", "MISS")?;
        let max = ctx
            .runtime
            .as_ref()
            .map_or(0, |r| r.config.cache.static_assets.max_entry_size);
        if resp.status.as_u16() != 200 || content_length_of(resp).is_some_and(|n| n > max) {
            return Ok(());
        }
        if let Some(ttl) = crate::static_cache::freshness(&resp.headers) {
            ctx.static_keep = Some((ttl, resp.headers.clone()));
            ctx.cache_max = max.min(usize::MAX as u64) as usize;
            ctx.cache_body = Some(BytesMut::with_capacity(
                content_length_of(resp).unwrap_or(16 * 1024) as usize,
            ));
        }
        Ok(())
    }

    /// Keeps a static answer Odoo let be kept, compressed once in the client's coding.
    async fn static_store(&self, e: Option<&Error>, status: u16, ctx: &mut RequestCtx) {
        let (Some(key), Some((ttl, headers))) = (ctx.static_key.take(), ctx.static_keep.take())
        else {
            return;
        };
        let Some(body) = ctx
            .cache_body
            .take()
            .filter(|_| e.is_none() && status == 200)
        else {
            return;
        };
        let body = body.freeze();
        let min_size = ctx
            .runtime
            .as_ref()
            .map_or(1000, |r| r.config.compression.min_size);
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let compress = ctx.coding.is_some() && compressible(ct) && body.len() as u64 >= min_size;
        let coding = ctx.coding;
        let shared = self.shared.clone();
        let store = move || {
            shared
                .static_cache
                .put(key, &headers, body, coding, ttl, compress)
        };
        if compress {
            // Compressing a bundle takes milliseconds: off the async runtime.
            let _ = tokio::task::spawn_blocking(store).await;
        } else {
            store();
        }
    }

    /// Odoo's `--x-sendfile`: an answer with `X-Accel-Redirect: /web/filestore/<path>` is served
    /// from the tenant's `filestore`, as nginx's internal location does. A path that leaves the
    /// filestore, or a missing file, is a 404.
    async fn sendfile(&self, resp: &mut ResponseHeader, ctx: &mut RequestCtx) -> Result<()> {
        let Some(target) = resp
            .headers
            .get("x-accel-redirect")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
        else {
            return Ok(());
        };
        let Some(root) = ctx.tenant.as_ref().and_then(|t| t.cfg.filestore.clone()) else {
            return Ok(());
        };
        let rel = target.strip_prefix("/web/filestore/").unwrap_or("");
        let safe = !rel.is_empty()
            && rel
                .split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.contains('\\'));
        let file = if safe {
            tokio::fs::read(std::path::Path::new(&root).join(rel))
                .await
                .ok()
        } else {
            None
        };
        let (status, body) = match file {
            Some(bytes) => (resp.status.as_u16(), Bytes::from(bytes)),
            None => {
                log::warn!("X-Accel-Redirect to `{target}`: no such file in the filestore");
                (404, Bytes::from_static(b"not found\n"))
            }
        };
        let mut headers: Vec<(HeaderName, HeaderValue)> = if status == 404 {
            vec![(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))]
        } else {
            resp.headers
                .iter()
                .filter(|(n, _)| {
                    !matches!(
                        *n,
                        &header::CONTENT_LENGTH | &header::TRANSFER_ENCODING | &header::CONNECTION
                    )
                })
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect()
        };
        headers.retain(|(n, _)| n.as_str() != "x-accel-redirect" && n.as_str() != "x-sendfile");
        ctx.sendfile = Some(Reply {
            status,
            headers,
            body,
        });
        Error::e_explain(ErrorType::Custom("sendfile"), "answered from the filestore")
    }

    /// The cache's request side for a parsed call: a hit becomes the answer; a miss is noted
    /// for the response side.
    async fn cache_lookup(
        &self,
        req: &RequestHeader,
        ctx: &mut RequestCtx,
        rt: &Runtime,
        tenant: &Tenant,
        call: &Call,
    ) -> Option<Reply> {
        if matches!(call.shape, bridgecore_filters::Shape::XmlRpc { .. }) {
            return None;
        }
        let cfg = &rt.config.cache;
        let no_cache = req
            .headers
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|d| matches!(d.trim(), "no-cache" | "no-store"))
            });
        let plan = self.shared.cache.plan(
            cfg,
            tenant.name(),
            call,
            ctx.odoo_session.as_deref(),
            no_cache,
            rt.optimizer.for_tenant(tenant.name()).domains.keys(),
        );
        let Some(plan) = plan else {
            ctx.cache_status = Some(Status::Bypass);
            return None;
        };
        match self
            .shared
            .cache
            .lookup(tenant.name(), plan, cfg.lock_timeout)
            .await
        {
            Lookup::Hit(entry) => {
                ctx.cache_status = Some(Status::Hit);
                let mut reply = hit_reply(&entry, ctx.coding, call.id.as_ref(), Status::Hit);
                if ctx.chain_forwarded {
                    // The chain's response side still adds its headers to a hit.
                    let headers = http::HeaderMap::new();
                    let mut head = ResponseHead::new(200, &headers);
                    let mut ex = exchange!(req, ctx, tenant);
                    rt.chain.on_response(&mut ex, call, &mut head).await;
                    apply_edits(&mut reply, head.into_edits());
                }
                Some(reply)
            }
            Lookup::Miss(pending) => {
                ctx.cache_status = Some(Status::Miss);
                ctx.cache_max = cfg.max_entry_size.min(usize::MAX as u64) as usize;
                ctx.cache_pending = Some(pending);
                None
            }
            Lookup::Bypass => {
                ctx.cache_status = Some(Status::Bypass);
                None
            }
        }
    }

    /// The cache's response side, when Odoo's answer head arrives: `X-Cache`, whether to
    /// collect the body, a stale answer instead of a 5xx, and a write's invalidation (before
    /// its answer reaches the client, so the client's next read is fresh everywhere).
    async fn cache_response(
        &self,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
        path: &str,
    ) -> Result<()> {
        let status = resp.status.as_u16();
        if status >= 500 {
            if let Some(stale) = ctx.cache_pending.as_ref().and_then(|p| p.stale.clone()) {
                resp.set_status(200)?;
                for name in [
                    header::CONTENT_LENGTH,
                    header::CONTENT_ENCODING,
                    header::SET_COOKIE,
                    header::TRANSFER_ENCODING,
                ] {
                    resp.remove_header(&name);
                }
                let id = ctx.call.as_ref().and_then(|c| c.id.as_ref());
                let len = stale.bodies.render(None, id).0.len();
                resp.insert_header(header::CONTENT_LENGTH, len.to_string())?;
                resp.insert_header(header::CONTENT_TYPE, "application/json")?;
                ctx.serve_stale = Some(stale);
                ctx.cache_status = Some(Status::Stale);
            }
        }
        if ctx.cache_pending.is_some() && ctx.serve_stale.is_none() {
            let storable = status == 200
                && resp.headers.get(header::SET_COOKIE).is_none()
                && resp.headers.get(header::CONTENT_ENCODING).is_none()
                && content_length_of(resp).is_none_or(|n| n <= ctx.cache_max as u64);
            if storable {
                ctx.cache_body = Some(BytesMut::with_capacity(
                    content_length_of(resp).unwrap_or(16 * 1024) as usize,
                ));
            }
        }
        self.settle_generations(ctx, path).await;
        crate::ws::collect_answer(&self.shared, resp, ctx);
        Ok(())
    }

    /// What a forwarded request changes in the generations, done before any answer to it
    /// reaches the client (Odoo's, from `response_filter`, or BridgeCore's error for a failed
    /// request, from `fail_to_proxy`), and at its end (`logging`) for a request that got
    /// neither: a write's bumps, and the end of a session's entries (logout, `?debug=`). Each
    /// once per request.
    async fn settle_generations(&self, ctx: &mut RequestCtx, path: &str) {
        if ctx.answered_by.is_some() {
            return;
        }
        self.invalidate_write(ctx, path).await;
        if let (Some(id), Some(tenant)) = (ctx.ends_session.take(), ctx.tenant.as_ref()) {
            self.shared.cache.end_identity(tenant.name(), &id).await;
        }
    }

    /// Bumps the generations a forwarded write affects, once per request. `path` is the
    /// request's, for writes BridgeCore could not parse.
    async fn invalidate_write(&self, ctx: &mut RequestCtx, path: &str) {
        if ctx.invalidated || !ctx.class.is_some_and(Class::is_write) {
            return;
        }
        let (Some(rt), Some(tenant)) = (ctx.runtime.as_ref(), ctx.tenant.as_ref()) else {
            return;
        };
        ctx.invalidated = true;
        let cache = &self.shared.cache;
        if matches!(path, "/web/session/destroy" | "/web/session/logout") {
            // Logging out changes no data: it ends this session's entries only.
            return;
        }
        cache
            .invalidate(&rt.config.cache, tenant.name(), ctx.call.as_deref(), path)
            .await;
    }

    /// The cache's end of a request: store a good miss, release its followers, count, and
    /// make sure a write that never got an answer head still invalidates.
    async fn cache_complete(
        &self,
        session: &Session,
        e: Option<&Error>,
        status: u16,
        ctx: &mut RequestCtx,
    ) {
        let Some(tenant) = ctx.tenant.clone() else {
            return;
        };
        self.settle_generations(ctx, session.req_header().uri.path())
            .await;
        if let Some(pending) = ctx.cache_pending.take() {
            let body = ctx
                .cache_body
                .take()
                .filter(|_| e.is_none() && status == 200 && ctx.serve_stale.is_none())
                .map(BytesMut::freeze);
            self.shared
                .cache
                .complete(tenant.name(), *pending, body)
                .await;
        }
        if let Some(st) = ctx.cache_status {
            self.shared.cache.count(tenant.name(), st);
        }
    }

    /// BridgeCore's own `/api/v1` endpoints (see `api`): the body is read whole, bounded.
    async fn own_api(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let Some(rt) = ctx.runtime.clone() else {
            return Error::e_explain(ErrorType::InternalError, "no runtime");
        };
        if crate::ws::is_socket_path(session.req_header().uri.path()) {
            // BridgeCore's own WebSocket: served here for as long as it stays open (ws/).
            return match crate::ws::handshake(session.req_header()) {
                Err(reply) => {
                    self.answer(session, ctx, reply, "bridgecore", "own_api")
                        .await
                }
                Ok(hs) => {
                    disable_compression(session);
                    ctx.answered_by = Some("bridgecore");
                    ctx.answered_reason = Some("websocket");
                    crate::ws::serve(&self.shared, session, hs).await?;
                    Ok(true)
                }
            };
        }
        let body = match content_length(session) {
            Some(n) if n > api::MAX_API_BODY as u64 => None,
            Some(0) => Some(Bytes::new()),
            Some(n) => Some(read_body(session, n).await?),
            None if is_chunked(session) => read_capped(session, api::MAX_API_BODY).await?,
            None => Some(Bytes::new()),
        };
        let Some(body) = body else {
            session.set_keepalive(None);
            let reply = api::detail(413, "request body too large");
            return self
                .answer(session, ctx, reply, "bridgecore", "too_large")
                .await;
        };
        let req = api::ApiRequest {
            head: session.req_header(),
            body,
            client_ip: ctx
                .client_ip
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()),
            request_id: ctx.request_id(),
            tls: ctx.tls,
        };
        let reply = api::handle(&self.shared, &rt, ctx.tenant.as_ref(), req).await;
        self.answer(session, ctx, reply, "bridgecore", "own_api")
            .await
    }

    /// Token and rate-limit checks of an Odoo request (see `gate`). `Some` is the refusal to
    /// send; on success the limit decision is kept for the answer's headers.
    async fn gate(
        &self,
        req: &RequestHeader,
        ctx: &mut RequestCtx,
        rt: &Runtime,
        tenant: &Arc<Tenant>,
        call: Option<&Call>,
        form_login: Option<(Option<&str>, &str)>,
    ) -> Option<Reply> {
        let class = ctx.class?;
        let category = class.category();
        let headers = &req.headers;
        let path = req.uri.path();
        let json2 = matches!(ctx.endpoint, Endpoint::Json2 { .. });
        let needs_token = tenant.cfg.require_jwt
            && (path.starts_with("/web/dataset/")
                || matches!(
                    ctx.endpoint,
                    Endpoint::JsonRpc | Endpoint::XmlRpc { .. } | Endpoint::Json2 { .. }
                ));
        let refuse = |ctx: &RequestCtx, kind: ErrorKind, msg: &str| {
            let reply = self.error_reply_for(ctx, call, kind, msg);
            if kind == ErrorKind::Unauthorized {
                reply.with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
            } else {
                reply
            }
        };
        let mut token_sub = None;
        if needs_token {
            // A token seen before is found by its bytes; only a new one is read and verified.
            let (claims, via_x_token) = match gate::known_token(rt, headers) {
                Some(known) => (known, false),
                None => match gate::presented_token(headers, json2) {
                    Ok(Some(token)) => (
                        gate::verify(rt, token),
                        headers.contains_key(&auth::X_BRIDGECORE_TOKEN_NAME),
                    ),
                    Ok(None) => {
                        api::count_refusal(&self.shared, "missing");
                        return Some(refuse(
                            ctx,
                            ErrorKind::Unauthorized,
                            "this server requires a BridgeCore token (Authorization: Bearer, or X-BridgeCore-Token)",
                        ));
                    }
                    Err(r) => (Err(r), false),
                },
            };
            let authed = match claims {
                Ok(claims) => gate::session_of(&self.shared, claims).await,
                Err(r) => Err(r),
            };
            let authed = match authed {
                Ok(a) => a,
                Err(r) => {
                    api::count_refusal(&self.shared, "invalid");
                    return Some(refuse(ctx, r.kind, r.detail));
                }
            };
            if authed.claims.tenant != tenant.name() {
                api::count_refusal(&self.shared, "scope");
                return Some(refuse(
                    ctx,
                    ErrorKind::Forbidden,
                    "this token was issued for another system",
                ));
            }
            let s = &authed.session;
            let same_user = match call.map(|c| &c.credential) {
                Some(Credential::Password { db, uid, .. }) => *uid == s.uid && *db == s.db,
                // The key names its user only to Odoo: ask it once, then remember.
                Some(Credential::ApiKey { key, db }) => {
                    let uid = match self.shared.api_keys.get(tenant.name(), key) {
                        Some(uid) => Ok(uid),
                        None => tenant.odoo.uid_of_api_key(key, db.as_deref()).await,
                    };
                    match uid {
                        Ok(uid) => {
                            self.shared.api_keys.put(tenant.name(), key, uid);
                            uid == s.uid
                        }
                        Err(bridgecore_filters::OdooError::Odoo { .. }) => {
                            api::count_refusal(&self.shared, "invalid");
                            return Some(refuse(ctx, ErrorKind::Unauthorized, "invalid API key"));
                        }
                        Err(e) => {
                            log::warn!("cannot check an API key's user with Odoo: {e}");
                            return Some(refuse(
                                ctx,
                                ErrorKind::BadGateway,
                                "Odoo could not confirm the API key's user",
                            ));
                        }
                    }
                }
                _ => call
                    .and_then(Call::login_attempt)
                    .is_none_or(|(_, login)| login.eq_ignore_ascii_case(&s.login)),
            };
            if !same_user {
                api::count_refusal(&self.shared, "user");
                return Some(refuse(
                    ctx,
                    ErrorKind::Forbidden,
                    "the call's credentials are not those of the token's user",
                ));
            }
            if !authed.claims.scopes.is_empty() {
                let model = call.and_then(|c| c.model.as_deref());
                let allowed =
                    Scopes::parse(&authed.claims.scopes).is_ok_and(|sc| sc.allows(model, category));
                if !allowed {
                    api::count_refusal(&self.shared, "scope");
                    return Some(refuse(
                        ctx,
                        ErrorKind::Forbidden,
                        "this token's scopes do not allow this call",
                    ));
                }
            }
            if path.starts_with("/web/dataset/") {
                ctx.odoo_session = Some(s.odoo_session.clone());
            }
            token_sub = Some(authed.claims.sub.clone());
            ctx.token_header = Some(if via_x_token {
                auth::X_BRIDGECORE_TOKEN_NAME.clone()
            } else {
                header::AUTHORIZATION
            });
        }
        let client_ip = ctx
            .client_ip
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
        if rt.exempt(client_ip) {
            return None;
        }
        let subject = match token_sub {
            Some(sub) => Subject::Token(sub),
            None => match call
                .and_then(|c| match &c.credential {
                    Credential::Session(sid) => Some(sid.as_str()),
                    _ => None,
                })
                .or_else(|| jsonrpc::session_cookie(headers))
            {
                Some(sid) if !sid.is_empty() => Subject::Session(gate::session_digest(sid)),
                _ => Subject::Ip(client_ip),
            },
        };
        let attempt = call.and_then(Call::login_attempt).or(form_login);
        let default_db = tenant.cfg.database.as_deref().unwrap_or("");
        let login = attempt.map(|(db, login)| Login {
            db: db.unwrap_or(default_db),
            login,
        });
        let decision = gate::charge(
            &self.shared,
            rt,
            tenant.name(),
            category,
            &subject,
            login,
            client_ip,
        )
        .await?;
        ctx.limit = Some(decision);
        if decision.allowed {
            return None;
        }
        let mut reply = self.error_reply_for(
            ctx,
            call,
            ErrorKind::RateLimited,
            "rate limit exceeded: slow down and retry after the given time",
        );
        // The headers go on in write_reply, from ctx.limit.
        reply.headers.retain(|(n, _)| n != header::RETRY_AFTER);
        Some(reply)
    }

    fn error_reply_for(
        &self,
        ctx: &RequestCtx,
        call: Option<&Call>,
        kind: ErrorKind,
        message: &str,
    ) -> Reply {
        if ctx.endpoint.is_rpc() {
            Reply::jsonrpc_error(call, kind, message)
        } else {
            plain(kind.status(), &format!("{message}\n"))
        }
    }

    /// An error in the caller's protocol: Odoo's JSON-RPC error object on RPC routes,
    /// `{"detail"}` on `/api/v1`, plain text elsewhere.
    fn error_reply(&self, ctx: &RequestCtx, kind: ErrorKind, message: &str) -> Reply {
        if ctx.endpoint.is_rpc() {
            Reply::jsonrpc_error(ctx.call.as_deref(), kind, message)
        } else {
            plain(kind.status(), &format!("{message}\n"))
        }
    }

    async fn answer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        reply: Reply,
        by: &'static str,
        reason: &'static str,
    ) -> Result<bool> {
        ctx.answered_by = Some(by);
        ctx.answered_reason = Some(reason);
        if reply.status == 413 || reply.status == 400 {
            session.set_keepalive(None);
        }
        self.write_reply(session, ctx, reply).await?;
        linger(session).await;
        Ok(true)
    }

    async fn write_reply(
        &self,
        session: &mut Session,
        ctx: &RequestCtx,
        reply: Reply,
    ) -> Result<()> {
        let mut head = ResponseHeader::build(reply.status, Some(reply.headers.len() + 3))?;
        for (name, value) in reply.headers {
            head.append_header(name, value)?;
        }
        if reply.status != 304 {
            head.insert_header(header::CONTENT_LENGTH, reply.body.len().to_string())?;
        }
        head.insert_header(X_REQUEST_ID.clone(), ctx.request_id.clone())?;
        if ctx.tls {
            if let Some(hsts) = ctx
                .runtime
                .as_ref()
                .and_then(|r| r.config.server.hsts.as_deref())
            {
                head.insert_header(header::STRICT_TRANSPORT_SECURITY, hsts)?;
            }
        }
        if let Some(d) = &ctx.limit {
            for (name, value) in d.headers() {
                head.insert_header(name, value)?;
            }
        }
        if json_rpc_route(&ctx.endpoint) && !head.headers.contains_key(&X_CACHE) {
            // BridgeCore's own answer on a JSON-RPC route (an error, a refusal, a filter's).
            head.insert_header(X_CACHE.clone(), Status::Bypass.as_str())?;
        }
        let min_size = ctx
            .runtime
            .as_ref()
            .map_or(1000, |r| r.config.compression.min_size);
        let mut body = reply.body;
        if !should_compress(&head, min_size) {
            disable_compression(session);
        } else if ctx.brotli {
            body = brotli_all(&body, COMPRESSION_LEVEL);
            head.insert_header(header::CONTENT_ENCODING, "br")?;
            head.insert_header(header::CONTENT_LENGTH, body.len().to_string())?;
            head.append_header(header::VARY, "Accept-Encoding")?;
        }
        session.write_response_header(Box::new(head), false).await?;
        session.write_response_body(Some(body), true).await?;
        Ok(())
    }
}

/// A cache hit (or stale answer) as a reply: the stored form in the client's coding when it
/// was precompressed (so the compression module leaves it alone), re-stamped with the
/// request's JSON-RPC `id`.
fn hit_reply(
    entry: &Entry,
    coding: Option<Coding>,
    id: Option<&serde_json::Value>,
    status: Status,
) -> Reply {
    let (body, encoded) = entry.bodies.render(coding, id);
    let mut reply = Reply::json(200, body).with_header(
        HeaderName::from_static("x-cache"),
        HeaderValue::from_static(status.as_str()),
    );
    if let Some(c) = encoded {
        reply = reply
            .with_header(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(c.token()),
            )
            .with_header(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    reply
}

/// Whether `endpoint`'s answers are JSON-RPC (or `/json/2` JSON), which carry `X-Cache`.
fn json_rpc_route(endpoint: &Endpoint) -> bool {
    endpoint.is_rpc() && !matches!(endpoint, Endpoint::XmlRpc { .. })
}

/// Applies the chain's header edits to a reply BridgeCore writes itself.
fn apply_edits(reply: &mut Reply, edits: Vec<HeaderEdit>) {
    for edit in edits {
        match edit {
            HeaderEdit::Set(name, value) => {
                reply.headers.retain(|(n, _)| *n != name);
                reply.headers.push((name, value));
            }
            HeaderEdit::Append(name, value) => reply.headers.push((name, value)),
            HeaderEdit::Remove(name) => reply.headers.retain(|(n, _)| *n != name),
        }
    }
}

fn content_length_of(resp: &ResponseHeader) -> Option<u64> {
    resp.headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// How long BridgeCore keeps reading (and discarding) a request body it refused, so that the
/// client, still sending, gets to read the answer: closing a socket with unread data makes the
/// kernel send a reset, and the client sees a broken connection instead of the 413.
const LINGER: Duration = Duration::from_secs(2);

/// Reads and discards what is left of the request body, for at most [`LINGER`].
async fn linger(session: &mut Session) {
    if session.is_body_done() {
        return;
    }
    session.set_total_drain_timeout(Some(LINGER));
    let _ = session.drain_request_body().await;
}

/// `301` to the same URL over HTTPS, on the first TLS listener's port (left out when 443).
fn https_redirect(req: &RequestHeader, rt: &Runtime) -> Reply {
    let host = request_host(req).map_or("localhost", strip_port);
    let port = rt
        .config
        .server
        .tls
        .first()
        .and_then(|t| t.listen.rsplit_once(':'))
        .map(|(_, p)| p)
        .filter(|p| *p != "443")
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let path = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let location = format!("https://{host}{port}{path}");
    let mut reply = plain(301, "moved to HTTPS\n");
    if let Ok(v) = HeaderValue::from_str(&location) {
        reply.headers.push((header::LOCATION, v));
    }
    reply
}

/// `host:port`, `[v6]:port` or `host` → the host part (brackets kept for IPv6).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// A plain-text answer.
fn plain(status: u16, text: &str) -> Reply {
    Reply {
        status,
        headers: vec![(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body: Bytes::copy_from_slice(text.as_bytes()),
    }
}

/// The `Host` the client asked for: the header, or the authority of an absolute URI (HTTP/2).
/// The headers BridgeCore puts on every answer that went to Odoo: `X-Request-Id`, `X-Cache`
/// (JSON-RPC answers), `Strict-Transport-Security` (TLS, when configured) and the caller's
/// `X-RateLimit-*`.
///
/// Written into the `http` header map directly, with static names: Pingora's `insert_header`
/// parses each name, allocates a custom one, and also updates a second, case-preserving name
/// map. That map is dropped here, so Pingora writes standard names in their usual case and
/// others in lowercase (names have no case in HTTP, RFC 9110 §5.1). A reason phrase other
/// than the status's own is kept.
fn own_answer_headers(resp: &mut ResponseHeader, ctx: &RequestCtx) -> Result<()> {
    let reason = resp
        .get_reason_phrase()
        .filter(|r| Some(*r) != resp.status.canonical_reason())
        .map(str::to_owned);
    let empty = http::Response::new(()).into_parts().0;
    let mut parts: http::response::Parts = std::mem::replace(resp, empty.into()).into();
    let hsts = ctx
        .runtime
        .as_ref()
        .and_then(|r| r.config.server.hsts.as_deref())
        .filter(|_| ctx.tls);
    let h = &mut parts.headers;
    // Room for what is added here and for the `Connection` header Pingora adds when it writes
    // the head (its `Date` replaces Odoo's): Pingora sizes Odoo's header map to the headers it
    // sent, and one more than fits costs a rehash of them all.
    h.reserve(
        2 + usize::from(ctx.cache_status.is_some())
            + usize::from(hsts.is_some())
            + if ctx.limit.is_some() { 3 } else { 0 },
    );
    h.insert(X_REQUEST_ID.clone(), ctx.request_id.clone());
    if let Some(st) = ctx.cache_status {
        h.insert(X_CACHE.clone(), HeaderValue::from_static(st.as_str()));
    }
    if let Some(hsts) = hsts {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            header_value(hsts.to_owned(), "strict-transport-security")?,
        );
    }
    if let Some(d) = &ctx.limit {
        use bridgecore_filters::rate_limit::{
            X_RATELIMIT_LIMIT, X_RATELIMIT_REMAINING, X_RATELIMIT_RESET,
        };
        thread_local! {
            static LIMIT: RefCell<Option<(u64, HeaderValue)>> = const { RefCell::new(None) };
            static RESET: RefCell<Option<(u64, HeaderValue)>> = const { RefCell::new(None) };
        }
        // Odoo sets none of these, so appending is enough (and cheaper than replacing).
        h.append(X_RATELIMIT_LIMIT.clone(), number_value(&LIMIT, d.limit));
        h.append(
            X_RATELIMIT_REMAINING.clone(),
            HeaderValue::from(d.remaining),
        );
        h.append(
            X_RATELIMIT_RESET.clone(),
            number_value(&RESET, d.reset_secs()),
        );
    }
    *resp = parts.into();
    if let Some(reason) = reason {
        resp.set_reason_phrase(Some(&reason))?;
    }
    Ok(())
}

/// `n` as a header value, through a one-number cache of this thread: a category's limit, and
/// mostly its reset time, are the same on every answer, and a cached value is shared, not
/// formatted and allocated again.
fn number_value(
    cache: &'static std::thread::LocalKey<RefCell<Option<(u64, HeaderValue)>>>,
    n: u64,
) -> HeaderValue {
    cache.with_borrow_mut(|last| match last {
        Some((m, value)) if *m == n => value.clone(),
        _ => last.insert((n, HeaderValue::from(n))).1.clone(),
    })
}

/// `text` as a header value; an error names the header (`text` comes from BridgeCore's own
/// formatting or from values the client sent as valid header text).
fn header_value(text: String, name: &'static str) -> Result<HeaderValue> {
    HeaderValue::try_from(text).explain_err(ErrorType::InvalidHTTPHeader, |_| name)
}

fn request_host(req: &RequestHeader) -> Option<&str> {
    req.headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
}

/// Whether a client's `X-Request-Id` is kept: 1 to 200 visible ASCII characters (it goes into
/// logs and upstream as is).
fn sane_request_id(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= 200 && v.iter().all(u8::is_ascii_graphic)
}

/// A request id unique across processes and restarts: a random per-process prefix and a
/// counter (a random UUID per request would cost a `getrandom` call on the hot path).
fn new_request_id() -> HeaderValue {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // By hand: `format!` with two padded hex fields is ~1.5k instructions per request.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 32];
    for (i, word) in [*prefix, n].into_iter().enumerate() {
        for shift in 0..16 {
            id[i * 16 + 15 - shift] = HEX[((word >> (shift * 4)) & 0xf) as usize];
        }
    }
    // One allocation whose copies (upstream, the answer) share it.
    HeaderValue::from_maybe_shared(Bytes::from_owner(id)).unwrap_or(HeaderValue::from_static("-"))
}

fn header_bytes(req: &RequestHeader) -> usize {
    let uri = req.uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    req.headers
        .iter()
        .fold(uri, |n, (k, v)| n + k.as_str().len() + v.len() + 4)
}

fn content_length(session: &Session) -> Option<u64> {
    session
        .get_header(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn is_chunked(session: &Session) -> bool {
    session
        .get_header(header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.as_bytes()
                .windows(7)
                .any(|w| w.eq_ignore_ascii_case(b"chunked"))
        })
}

/// Whether the body is what the route expects (JSON, or XML for XML-RPC). Anything else is
/// forwarded untouched: Odoo answers it as it always does.
fn rpc_content_type(session: &Session, endpoint: &Endpoint) -> bool {
    // Bytes: the media types are ASCII, so a value that is not cannot match anyway.
    let ct = session
        .get_header(header::CONTENT_TYPE)
        .map_or(&b""[..], HeaderValue::as_bytes);
    let essence = ct
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let is = |media_type: &str| essence.eq_ignore_ascii_case(media_type.as_bytes());
    match endpoint {
        Endpoint::XmlRpc { .. } => is("text/xml") || is("application/xml"),
        _ => is("application/json") || is("application/json-rpc"),
    }
}

/// Reads a body of known, small length, keeping it in Pingora's retry buffer so it can be
/// replayed upstream.
async fn read_body(session: &mut Session, expected: u64) -> Result<Bytes> {
    if session.get_header(header::EXPECT).is_some() {
        session.write_continue_response().await?;
    }
    session.enable_retry_buffering();
    // A body that arrives in one chunk (the usual JSON-RPC call) is kept as it came, without a
    // copy; and no read is asked for once Pingora has the whole body.
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    while !session.is_body_done() {
        let Some(chunk) = session.read_request_body().await? else {
            break;
        };
        let len = match joined.as_mut() {
            None if first.is_empty() => {
                first = chunk;
                first.len()
            }
            None => {
                let mut buf = BytesMut::with_capacity(expected.min(MAX_READ_BODY) as usize);
                buf.extend_from_slice(&first);
                buf.extend_from_slice(&chunk);
                joined.insert(buf).len()
            }
            Some(buf) => {
                buf.extend_from_slice(&chunk);
                buf.len()
            }
        };
        if len as u64 > MAX_READ_BODY {
            return Error::e_explain(
                ErrorType::HTTPStatus(413),
                "body longer than its Content-Length",
            );
        }
    }
    Ok(joined.map_or(first, BytesMut::freeze))
}

/// Reads a body of unknown length (chunked) whole, or `None` once it passes `cap`.
async fn read_capped(session: &mut Session, cap: usize) -> Result<Option<Bytes>> {
    if session.get_header(header::EXPECT).is_some() {
        session.write_continue_response().await?;
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = session.read_request_body().await? {
        if buf.len() + chunk.len() > cap {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf.freeze()))
}

/// `(db, login)` of an Odoo login form (`POST /web/login`), for the per-account limit.
fn form_login(body: &[u8]) -> Option<(Option<String>, String)> {
    let mut db = None;
    let mut login = None;
    for (k, v) in form_urlencoded::parse(body) {
        match &*k {
            "login" => login = Some(v.into_owned()),
            "db" => db = Some(v.into_owned()),
            _ => {}
        }
    }
    login.filter(|l| !l.is_empty()).map(|l| (db, l))
}

/// Drops Odoo's `session_id` cookies from an answer to a token caller: the Odoo session is
/// BridgeCore's to keep, never the client's.
fn hide_session_cookies(resp: &mut ResponseHeader) -> Result<()> {
    let any = resp.headers.get_all(header::SET_COOKIE).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.trim_start().starts_with("session_id="))
    });
    if !any {
        return Ok(());
    }
    let values: Vec<HeaderValue> = resp
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| {
            !v.to_str()
                .is_ok_and(|s| s.trim_start().starts_with("session_id="))
        })
        .cloned()
        .collect();
    resp.remove_header(&header::SET_COOKIE);
    for v in values {
        resp.append_header(header::SET_COOKIE, v)?;
    }
    Ok(())
}

/// Odoo's `session_id` cookie gets `SameSite=Lax`, and `Secure` on TLS connections, as the
/// deploy doc's `proxy_cookie_flags` does. Other cookies pass untouched.
fn fixsession_cookie(resp: &mut ResponseHeader, tls: bool) -> Result<()> {
    let needs = resp.headers.get_all(header::SET_COOKIE).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.trim_start().starts_with("session_id="))
    });
    if !needs {
        return Ok(());
    }
    let values: Vec<HeaderValue> = resp
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    resp.remove_header(&header::SET_COOKIE);
    for v in values {
        let fixed = match v.to_str() {
            Ok(s) if s.trim_start().starts_with("session_id=") => {
                let lower = s.to_ascii_lowercase();
                let mut out = s.to_string();
                if !lower.contains("samesite") {
                    out.push_str("; SameSite=Lax");
                }
                if tls && !lower.split(';').any(|p| p.trim() == "secure") {
                    out.push_str("; Secure");
                }
                HeaderValue::from_str(&out).unwrap_or(v)
            }
            _ => v,
        };
        resp.append_header(header::SET_COOKIE, fixed)?;
    }
    Ok(())
}

/// Compress only text-like answers with a body over `min_size` that are not already encoded.
fn should_compress(resp: &ResponseHeader, min_size: u64) -> bool {
    if matches!(resp.status.as_u16(), 100..=199 | 204 | 206 | 304)
        || resp.headers.contains_key(header::CONTENT_ENCODING)
    {
        return false;
    }
    let ct = resp
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !compressible(ct) {
        return false;
    }
    let len = resp
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    len.is_none_or(|n| n >= min_size)
}

/// The deploy doc's `Content-Security-Policy: default-src 'none'` on static answers that are
/// images, when Odoo sent none.
fn image_csp(resp: &mut ResponseHeader, path: &str) -> Result<()> {
    let image = resp
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.as_bytes().get(..6))
        .is_some_and(|t| t.eq_ignore_ascii_case(b"image/"));
    if !image || resp.headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        return Ok(());
    }
    let module_static = matches!(
        crate::static_cache::static_path(path),
        crate::static_cache::StaticPath::File(..)
    );
    if module_static {
        resp.insert_header(
            header::CONTENT_SECURITY_POLICY,
            crate::static_cache::IMAGE_CSP,
        )?;
    }
    Ok(())
}

/// A compressed body is not byte-identical to the original: a strong ETag becomes weak.
fn weaken_etag(resp: &mut ResponseHeader) -> Result<()> {
    let strong = resp
        .headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.starts_with("W/"))
        .map(|v| format!("W/{v}"));
    if let Some(weak) = strong {
        resp.insert_header(header::ETAG, weak)?;
    }
    Ok(())
}

fn disable_compression(session: &mut Session) {
    if let Some(c) = session
        .downstream_modules_ctx
        .get_mut::<ResponseCompression>()
    {
        c.adjust_level(0);
    }
}
