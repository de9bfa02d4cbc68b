//! The proxy's entry for each new connection: it waits for the client's first bytes before
//! Pingora's proxy reads the request.
//!
//! Why: when a graceful shutdown or upgrade begins, Pingora's proxy aborts every connection
//! still waiting for its request (to drop idle keep-alive connections), and a connection the
//! old process accepted an instant earlier, whose request was still in flight, is among them: its
//! client sees the connection closed without an answer. Once the first bytes are in, Pingora
//! reads the request before it looks at the shutdown signal, so the request is served. Plain
//! TCP listeners only: a TLS stream cannot be peeked (the handshake already showed the client is
//! there and talking).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;

use crate::proxy::Proxy;

/// How long a new connection's first bytes are waited for here; after that the proxy waits as
/// it always does.
const FIRST_BYTES: Duration = Duration::from_secs(5);

/// Pingora's proxy behind a wait for each new connection's first bytes.
pub struct FirstBytes {
    proxy: Arc<HttpProxy<Proxy>>,
}

impl FirstBytes {
    pub(crate) fn new(proxy: HttpProxy<Proxy>) -> Self {
        FirstBytes {
            proxy: Arc::new(proxy),
        }
    }
}

#[async_trait]
impl ServerApp for FirstBytes {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // Peeked bytes are put back: the proxy reads them as if nothing happened. A client that
        // sends nothing, or leaves, is the proxy's to handle as before.
        let mut first = [0u8; 1];
        let _ = tokio::time::timeout(FIRST_BYTES, stream.try_peek(&mut first)).await;
        self.proxy.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.proxy.cleanup().await;
    }
}
