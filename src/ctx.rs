//! Per-request state carried through Pingora's phases.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bridgecore_filters::rate_limit::Decision;
use bridgecore_filters::{Call, Class, Endpoint};
use bytes::{Bytes, BytesMut};
use http::HeaderValue;
use tokio::sync::OwnedSemaphorePermit;

use crate::runtime::Runtime;
use crate::tenant::Tenant;

/// Everything BridgeCore knows about one request.
pub struct RequestCtx {
    /// When the request started (monotonic).
    pub start: Instant,
    /// When the request started (wall clock, for the log).
    pub started_at: SystemTime,
    /// `X-Request-Id`: the client's if it sent a sane one, else a new one. Kept as the header
    /// value it is sent as (upstream and on the answer): each copy shares its bytes.
    pub request_id: HeaderValue,
    /// The TCP peer.
    pub peer: Option<IpAddr>,
    /// The client (the peer, or the right-most untrusted `X-Forwarded-For` entry behind
    /// trusted proxies).
    pub client_ip: Option<IpAddr>,
    /// Whether the client connection is TLS.
    pub tls: bool,
    /// The configuration generation this request runs on.
    pub runtime: Option<Arc<Runtime>>,
    /// The tenant, once routed.
    pub tenant: Option<Arc<Tenant>>,
    /// The Odoo endpoint of the path.
    pub endpoint: Endpoint,
    /// `/websocket` or `/longpolling`: goes to the bus upstream, not counted in
    /// `max_connections`.
    pub websocket: bool,
    /// The parsed call, for RPC routes (boxed: the context moves with the request's future).
    pub call: Option<Box<Call>>,
    /// The call's class (or the class of an unparsed request that counts).
    pub class: Option<Class>,
    /// The body to send upstream instead of the client's (a filter rewrote the call).
    pub new_body: Option<Bytes>,
    /// A copy of a streamed RPC body (too large or chunked to read first), parsed at its end
    /// for classification and logs. Dropped when it grows past the parse cap.
    pub stream_copy: Option<BytesMut>,
    /// The body was read (and kept for replay) before choosing the upstream.
    pub body_read: bool,
    /// A streamed `/jsonrpc` body whose service must be checked before Odoo gets all of it
    /// (the database manager is disabled): the latest chunk is held back until the end.
    pub guard_db: bool,
    /// The chunk held back while `guard_db`.
    pub held_chunk: Option<Bytes>,
    /// Request body bytes seen so far.
    pub body_bytes: u64,
    /// The slot under the tenant's `max_connections`, held until the request ends.
    pub permit: Option<OwnedSemaphorePermit>,
    /// The client's own `Accept-Encoding`, restored for the upstream request (the downstream
    /// header is narrowed to the coding BridgeCore picked).
    pub accept_encoding: Option<HeaderValue>,
    /// The client gets brotli, which BridgeCore encodes itself (see `compress.rs`).
    pub brotli: bool,
    /// The brotli encoder of this response, when it is being compressed. Boxed: the encoder
    /// state is ~5.6 KiB, and the context is moved with every request's future.
    pub brotli_stream: Option<Box<crate::compress::BrotliStream>>,
    /// When the request was sent to Odoo.
    pub upstream_start: Option<Instant>,
    /// How long Odoo took, up to the end of its response body.
    pub upstream_time: Option<Duration>,
    /// Connection attempts to upstreams.
    pub connect_attempts: usize,
    /// Who answered, when BridgeCore answered itself (`bridgecore` or a filter's name).
    pub answered_by: Option<&'static str>,
    /// The reason label for `bridgecore_answered_total`.
    pub answered_reason: Option<&'static str>,
    /// Whether the filter chain's response sides must run for this request.
    pub chain_forwarded: bool,
    /// State filters keep between their request and response sides.
    pub filter_state: http::Extensions,
    /// The caller's rate-limit decision, whose `X-RateLimit-*` headers go on the answer.
    pub limit: Option<Decision>,
    /// A token caller's Odoo session, sent upstream instead of any `session_id` cookie; Odoo's
    /// `session_id` cookies are then kept from the client.
    pub odoo_session: Option<String>,
    /// The header that carried a verified BridgeCore token on an Odoo route: it is BridgeCore's,
    /// and is not passed on to Odoo.
    pub token_header: Option<http::HeaderName>,
    /// The upstream chosen for the current attempt.
    pub upstream_addr: Option<std::net::SocketAddr>,
    /// Counts this request against its upstream (for `least_connections`) until it ends.
    pub upstream_guard: Option<crate::tenant::InFlight>,
    /// The upstream a read failed on, when it is being retried on another one (once).
    pub retried_from: Option<std::net::SocketAddr>,
    /// The coding BridgeCore picked for the answer (`None`: identity).
    pub coding: Option<bridgecore_filters::encoding::Coding>,
    /// This JSON-RPC answer's `X-Cache` status (`None` for answers that are not JSON-RPC).
    pub cache_status: Option<crate::cache::Status>,
    /// A cache miss on its way to Odoo.
    pub cache_pending: Option<Box<crate::cache::Pending>>,
    /// Odoo's answer, collected for the cache while it streams through.
    pub cache_body: Option<BytesMut>,
    /// The largest answer the cache takes.
    pub cache_max: usize,
    /// An expired entry served instead of Odoo's 5xx (`X-Cache: STALE`).
    pub serve_stale: Option<Arc<crate::cache::store::Entry>>,
    /// The generations this write affects were bumped already.
    pub invalidated: bool,
    /// The caller identity whose cache entries this request ends once it is answered (a
    /// logout, or a `?debug=` switch, which Odoo makes while handling it); taken when done.
    pub ends_session: Option<Box<bridgecore_filters::cache::key::Identity>>,
    /// A static file missed in the static cache: its key there.
    pub static_key: Option<String>,
    /// How long Odoo lets that answer be kept, and its headers (set when it may be kept).
    pub static_keep: Option<(Duration, http::HeaderMap)>,
    /// The answer made of a file from the tenant's filestore, sent instead of Odoo's
    /// `X-Accel-Redirect` answer (written from `fail_to_proxy`: Odoo's answer has no body, so
    /// Pingora would never ask for one).
    pub sendfile: Option<bridgecore_filters::Reply>,
    /// A bounded copy of a write's answer, for its change event (`ws`): whether it succeeded,
    /// and the ids a `create` made.
    pub ws_answer: Option<BytesMut>,
}

impl RequestCtx {
    pub(crate) fn new() -> Self {
        RequestCtx {
            start: Instant::now(),
            started_at: SystemTime::now(),
            request_id: HeaderValue::from_static(""),
            peer: None,
            client_ip: None,
            tls: false,
            runtime: None,
            tenant: None,
            endpoint: Endpoint::Other,
            websocket: false,
            call: None,
            class: None,
            new_body: None,
            stream_copy: None,
            body_read: false,
            guard_db: false,
            held_chunk: None,
            body_bytes: 0,
            permit: None,
            accept_encoding: None,
            brotli: false,
            brotli_stream: None,
            upstream_start: None,
            upstream_time: None,
            connect_attempts: 0,
            answered_by: None,
            answered_reason: None,
            chain_forwarded: false,
            filter_state: http::Extensions::new(),
            limit: None,
            odoo_session: None,
            token_header: None,
            upstream_addr: None,
            upstream_guard: None,
            retried_from: None,
            coding: None,
            cache_status: None,
            cache_pending: None,
            cache_body: None,
            cache_max: 0,
            serve_stale: None,
            invalidated: false,
            ends_session: None,
            static_key: None,
            static_keep: None,
            sendfile: None,
            ws_answer: None,
        }
    }

    /// The request id as text (visible ASCII by construction: see `early_request_filter`).
    pub fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or_default()
    }

    /// The tenant's name, or `none`, for metric labels.
    pub fn tenant_label(&self) -> &str {
        self.tenant.as_ref().map_or("none", |t| t.name())
    }
}

#[cfg(test)]
mod tests {
    /// Pingora moves the context with each request's future: keep it small (a brotli encoder
    /// inline made it 6 KiB and cost ~3 µs of memcpy per request in the load benchmark).
    #[test]
    fn the_request_context_stays_small() {
        assert!(std::mem::size_of::<super::RequestCtx>() <= 1024);
    }
}
