//! The ceiling of a cache-hit fast path below `ProxyHttp` (issue 4: "what a fast path for hits
//! would need"), for `tests/load/cache.sh`'s `hit-ceiling` variant. Not BridgeCore: a
//! measurement of the plumbing such a path would stand on, with none of BridgeCore's work.
//!
//! A pingora-core `ServerApp` in front of the floor's `HttpProxy` (the custom accept loop
//! pingora-proxy documents for `HttpProxy::process_new_http`). For every request on a
//! connection it reads the head and body itself; a `POST /web/dataset/call_kw…` with a
//! `Content-Length` is a "hit", answered from memory: the stored 12 KB answer with the
//! request's JSON-RPC `id` spliced in, head and body in one buffer, one `send`. Anything else is
//! handed to the proxy with the bytes already read as the session's pipelined prefix
//! (`ServerSession::set_pipelined_prefix`), and the connection comes back from the proxy
//! (`ReusedHttpStream`) for its next request, so one connection can mix hits and forwards.
//!
//! What BridgeCore would add on a hit (tenant routing, the JSON-RPC parse, the gate, the byte
//! key and lookup, the access log and metrics) is left out on purpose: tests/load/README.md
//! adds their measured cost to this ceiling.
//!
//! ```text
//! hit-ceiling LISTEN UPSTREAM ANSWER_FILE
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Buf, BytesMut};
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use pingora::services::listening::Service;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long an idle keep-alive connection is kept, as Pingora's default.
const KEEPALIVE: Duration = Duration::from_secs(60);
/// Largest request head read here; larger ones go to the proxy, which refuses them properly.
const MAX_HEAD: usize = 16 * 1024;
/// Largest body answered here.
const MAX_BODY: usize = 64 * 1024;

struct Front {
    proxy: Arc<HttpProxy<passthrough::PassThrough>>,
    /// The stored answer around its `id` value: `{"jsonrpc":"2.0","id":` and `,"result":…}`.
    before_id: Vec<u8>,
    after_id: Vec<u8>,
}

/// What the head says about a request.
enum Head {
    /// Not complete yet.
    Partial,
    /// A candidate hit: head length and body length.
    Hit { head: usize, body: usize },
    /// Anything else: the proxy's.
    Other,
}

fn parse_head(buf: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut req = httparse::Request::new(&mut headers);
    let head = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Head::Partial,
        _ => return Head::Other,
    };
    if req.method != Some("POST")
        || !req
            .path
            .is_some_and(|p| p.starts_with("/web/dataset/call_kw"))
        || req.version != Some(1)
    {
        return Head::Other;
    }
    let mut body = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            body = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            || h.name.eq_ignore_ascii_case("expect")
            || h.name.eq_ignore_ascii_case("upgrade")
            || (h.name.eq_ignore_ascii_case("connection") && h.value.eq_ignore_ascii_case(b"close"))
        {
            return Head::Other;
        }
    }
    match body {
        Some(body) if body <= MAX_BODY => Head::Hit { head, body },
        _ => Head::Other,
    }
}

/// The JSON-RPC id of a call body, as its bytes (a number or a string), found by a scan for
/// the top-level `"id":` (the prototype's stand-in for BridgeCore's parse).
fn request_id(body: &[u8]) -> Option<&[u8]> {
    let at = body.windows(5).position(|w| w == b"\"id\":")? + 5;
    let rest = &body[at..];
    let end = rest.iter().position(|&b| b == b',' || b == b'}')?;
    Some(rest[..end].trim_ascii())
}

impl Front {
    /// Answers one hit: the head and the re-stamped body in one buffer, written at once.
    async fn answer(&self, stream: &mut Stream, id: &[u8]) -> std::io::Result<()> {
        let len = self.before_id.len() + id.len() + self.after_id.len();
        let mut out = Vec::with_capacity(len + 160);
        out.extend_from_slice(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Cache: HIT\r\nContent-Length: ",
        );
        out.extend_from_slice(len.to_string().as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&self.before_id);
        out.extend_from_slice(id);
        out.extend_from_slice(&self.after_id);
        stream.write_all(&out).await?;
        stream.flush().await
    }
}

#[async_trait]
impl ServerApp for Front {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            // Read until the head is complete, then decide.
            let decision = loop {
                match parse_head(&buf) {
                    Head::Partial => {}
                    other => break other,
                }
                match tokio::time::timeout(KEEPALIVE, stream.read_buf(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return None,
                }
            };
            if let Head::Hit { head, body } = decision {
                while buf.len() < head + body {
                    match tokio::time::timeout(KEEPALIVE, stream.read_buf(&mut buf)).await {
                        Ok(Ok(n)) if n > 0 => {}
                        _ => return None,
                    }
                }
                if let Some(id) = request_id(&buf[head..head + body]) {
                    let id = id.to_vec();
                    if self.answer(&mut stream, &id).await.is_err() {
                        return None;
                    }
                    buf.advance(head + body);
                    continue;
                }
            }
            // The proxy's: it parses the bytes read so far as the start of its request.
            let mut session = ServerSession::new_http1(stream);
            session.set_keepalive(Some(KEEPALIVE.as_secs()));
            if !buf.is_empty() {
                session.set_pipelined_prefix(std::mem::take(&mut buf));
            }
            let reused = self.proxy.process_new_http(session, shutdown).await?;
            stream = reused.consume().0;
        }
    }

    async fn cleanup(&self) {
        self.proxy.cleanup().await;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: hit-ceiling LISTEN UPSTREAM ANSWER_FILE";
    let listen = args.next().ok_or(usage)?;
    let upstream = args.next().ok_or(usage)?.parse()?;
    let answer = std::fs::read(args.next().ok_or(usage)?)?;
    let at = answer
        .windows(5)
        .position(|w| w == b"\"id\":")
        .ok_or("the answer has no id")?
        + 5;
    let end = at
        + answer[at..]
            .iter()
            .position(|&b| b == b',')
            .ok_or("the answer's id is not followed by a comma")?;

    let mut server = passthrough::server("hit-ceiling");
    let proxy = pingora::proxy::http_proxy(
        &server.configuration,
        passthrough::PassThrough::new(upstream),
    );
    let front = Front {
        proxy: Arc::new(proxy),
        before_id: answer[..at].to_vec(),
        after_id: answer[end..].to_vec(),
    };
    let mut service = Service::new("hit ceiling".to_owned(), front);
    service.add_tcp(&listen);
    server.add_service(service);
    server.run_forever();
}
