//! The floor: the smallest Pingora proxy there is, for `tests/load/run.sh`.
//!
//! A `ProxyHttp` with no context and only `upstream_peer`, which sends every request to one
//! plain-HTTP upstream: what any Pingora proxy starts from, with Pingora's defaults (the
//! system allocator) and the workspace's release profile. `passthrough-mimalloc` is the same
//! proxy with BridgeCore's allocator, reported beside it so the effect of the allocator alone
//! is visible (pingora-notes.md §14).
//!
//! ```text
//! passthrough LISTEN UPSTREAM        e.g. passthrough 127.0.0.1:18081 127.0.0.1:18080
//! ```
//!
//! Either argument can come from the environment instead (`PASSTHROUGH_LISTEN`,
//! `PASSTHROUGH_UPSTREAM`). One worker thread, no grace period; stop it with SIGTERM.

pub use std::error::Error;
use std::net::SocketAddr;

use async_trait::async_trait;
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::proxy::http_proxy_service;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;

/// Forwards everything to `upstream`.
pub struct PassThrough {
    upstream: SocketAddr,
}

impl PassThrough {
    /// The pass-through to `upstream` (also the proxy behind `hit-ceiling`).
    pub fn new(upstream: SocketAddr) -> Self {
        PassThrough { upstream }
    }
}

#[async_trait]
impl ProxyHttp for PassThrough {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

/// The `n`th command-line argument, or else the environment variable `var`.
fn arg(n: usize, var: &str) -> Result<String, Box<dyn Error>> {
    std::env::args()
        .nth(n)
        .or_else(|| std::env::var(var).ok())
        .ok_or_else(|| format!("usage: passthrough LISTEN UPSTREAM (or set {var})").into())
}

/// A bootstrapped Pingora server as the benchmark runs them: one worker thread, no grace
/// period, its pid file and upgrade socket in /tmp under `name`.
pub fn server(name: &str) -> Server {
    let pid = std::process::id();
    let conf = ServerConf {
        threads: 1,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(0),
        pid_file: format!("/tmp/{name}-{pid}.pid"),
        upgrade_sock: format!("/tmp/{name}-{pid}.sock"),
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    server
}

/// Runs the pass-through until it is stopped.
pub fn run() -> Result<(), Box<dyn Error>> {
    let listen = arg(1, "PASSTHROUGH_LISTEN")?;
    let upstream: SocketAddr = arg(2, "PASSTHROUGH_UPSTREAM")?
        .parse()
        .map_err(|e| format!("upstream address: {e}"))?;
    listen
        .parse::<SocketAddr>()
        .map_err(|e| format!("listen address `{listen}`: {e}"))?;

    let mut server = server("passthrough");
    let mut proxy = http_proxy_service(&server.configuration, PassThrough { upstream });
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    server.run_forever();
}
