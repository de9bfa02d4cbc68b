//! The floor: the smallest Pingora proxy there is, for `tests/load/run.sh`.
//!
//! A `ProxyHttp` with no context and only `upstream_peer`, which sends every request to one
//! plain-HTTP upstream. It uses the same Pingora version, the same global allocator
//! (mimalloc) and the same release profile as the `bridgecore` binary, so the gap between
//! the two in the load test is what BridgeCore itself adds on top of Pingora, not Pingora's
//! own per-request cost (which nginx, the other reference, does not pay).
//!
//! ```text
//! passthrough LISTEN UPSTREAM        e.g. passthrough 127.0.0.1:18081 127.0.0.1:18080
//! ```
//!
//! Either argument can come from the environment instead (`PASSTHROUGH_LISTEN`,
//! `PASSTHROUGH_UPSTREAM`). One worker thread, no grace period; stop it with SIGTERM.

use std::error::Error;
use std::net::SocketAddr;

use async_trait::async_trait;
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::proxy::http_proxy_service;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Forwards everything to `upstream`.
struct PassThrough {
    upstream: SocketAddr,
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

fn main() -> Result<(), Box<dyn Error>> {
    let listen = arg(1, "PASSTHROUGH_LISTEN")?;
    let upstream: SocketAddr = arg(2, "PASSTHROUGH_UPSTREAM")?
        .parse()
        .map_err(|e| format!("upstream address: {e}"))?;
    listen
        .parse::<SocketAddr>()
        .map_err(|e| format!("listen address `{listen}`: {e}"))?;

    let pid = std::process::id();
    let conf = ServerConf {
        threads: 1,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(0),
        pid_file: format!("/tmp/passthrough-{pid}.pid"),
        upgrade_sock: format!("/tmp/passthrough-{pid}.sock"),
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = http_proxy_service(&server.configuration, PassThrough { upstream });
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    server.run_forever();
}
