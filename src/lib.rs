//! BridgeCore: an Odoo-aware edge proxy on Pingora.
//!
//! It stands in front of one or many Odoo servers in place of nginx, parses every JSON-RPC
//! call into a [`Call`](bridgecore_filters::Call), runs a chain of
//! [`Filter`](bridgecore_filters::Filter)s over it, and forwards it with the headers Odoo's
//! proxy mode expects. This crate is the Pingora glue; the protocol and policy live in
//! `bridgecore-filters`.
//!
//! # Embedding
//! Another Pingora program can add BridgeCore to its own server, with a filter of its own:
//!
//! ```no_run
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use bridgecore::{config::Config, BridgeCore};
//! use bridgecore::filters::{Call, Decision, ErrorKind, Exchange, Filter, Reply};
//! use pingora::server::Server;
//!
//! /// Refuses every call on `hr.employee`, before it reaches Odoo.
//! struct NoHr;
//!
//! #[async_trait]
//! impl Filter for NoHr {
//!     fn name(&self) -> &'static str { "no_hr" }
//!     async fn on_request(&self, _ex: &mut Exchange<'_>, call: &Call) -> Decision {
//!         if call.model.as_deref() == Some("hr.employee") {
//!             return Decision::Respond(Reply::jsonrpc_error(Some(call), ErrorKind::Forbidden, "not here"));
//!         }
//!         Decision::Continue
//!     }
//! }
//!
//! fn main() -> anyhow::Result<()> {
//!     let config = Config::load("conf/bridgecore.yaml".as_ref())?;
//!     let mut server = Server::new_with_opt_and_conf(None, config.server.pingora_conf());
//!     server.bootstrap();
//!     let bridgecore = BridgeCore::builder(config).filter(Arc::new(NoHr)).build()?;
//!     let _handle = bridgecore.add_to(&mut server);   // its listeners, the admin listener
//!     // server.add_service(...);                      // the embedder's own services
//!     server.run_forever();
//! }
//! ```

mod accept;
pub mod access_log;
mod admin;
mod api;
pub mod cache;
mod compress;
pub mod config;
mod ctx;
mod gate;
mod health;
pub mod limits;
pub mod metrics;
pub mod odoo_client;
mod proxy;
pub mod redis_conn;
pub mod runtime;
pub mod sessions;
pub mod signals;
mod static_cache;
mod stats;
pub mod tenant;
pub mod tls;
pub mod tokens;
mod ws;

pub use bridgecore_filters as filters;

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bridgecore_filters::Filter;
use pingora::apps::http_app::HttpServer;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::listening::Service;

use crate::access_log::AccessLog;
use crate::admin::AdminApp;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::runtime::Runtime;

/// Why BridgeCore could not be built or reloaded.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configuration could not be turned into a running generation (an upstream that does
    /// not resolve, a key file that does not parse, ...).
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    /// A TLS certificate could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The metrics registry refused a metric.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The server thread could not be started or did not start listening.
    #[error("server: {0}")]
    Server(String),
}

/// How long one Redis command may take before the request goes on without it (local limits,
/// cache bypass): Redis on the same network answers in well under a millisecond.
const REDIS_TIMEOUT: Duration = Duration::from_millis(50);
/// Login sessions kept in memory without Redis.
const MAX_MEMORY_SESSIONS: usize = 100_000;

/// State shared by the proxy, the admin listener and reloads.
pub(crate) struct Shared {
    pub(crate) runtime: ArcSwap<Runtime>,
    pub(crate) extra_filters: Vec<Arc<dyn Filter>>,
    pub(crate) metrics: Arc<Metrics>,
    /// The response cache (its stores and generations outlive reloads).
    pub(crate) cache: cache::Cache,
    /// Static files and asset bundles (`cache.static`).
    pub(crate) static_cache: static_cache::StaticCache,
    /// Metric handles for requests no tenant took.
    pub(crate) untenanted: metrics::TenantMetrics,
    pub(crate) access_log: AccessLog,
    /// The shared Redis connection, when `redis:` is configured (at start; a reload cannot
    /// change it).
    pub(crate) redis: Option<Arc<redis_conn::RedisConn>>,
    /// Rate-limit counters: in Redis when configured, else (and while Redis is down) local.
    /// They outlive reloads, so a SIGHUP does not hand every caller a fresh budget.
    pub(crate) limiter: limits::Limiter,
    /// Login sessions behind BridgeCore's tokens.
    pub(crate) sessions: sessions::SessionStore,
    /// Odoo API keys' uids, for `/json/2` on token-only tenants.
    pub(crate) api_keys: gate::ApiKeyUids,
    /// The TLS listeners' certificate resolvers (re-read on reload).
    pub(crate) tls: tls::TlsListeners,
    /// Held for the length of a reload.
    pub(crate) reloading: std::sync::Mutex<()>,
    /// Live model updates: the `/api/v1/ws` sockets, their subscriptions, change events.
    pub(crate) ws: ws::Hub,
}

/// Builds a [`BridgeCore`] from a configuration and the embedder's filters.
pub struct Builder {
    config: Config,
    filters: Vec<Arc<dyn Filter>>,
    clock: Option<Arc<dyn bridgecore_filters::rate_limit::Clock>>,
}

impl Builder {
    /// Adds a filter after BridgeCore's own. It stays in place across reloads.
    pub fn filter(mut self, filter: Arc<dyn Filter>) -> Self {
        self.filters.push(filter);
        self
    }

    /// Drives rate-limit time from `clock` instead of the system's (and, with Redis, instead of
    /// Redis's `TIME`): for tests that check windows at exact instants.
    pub fn clock(mut self, clock: Arc<dyn bridgecore_filters::rate_limit::Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the tenants and the filter chain.
    pub fn build(self) -> Result<BridgeCore, BuildError> {
        let access_log = AccessLog::start(self.config.server.access_log);
        let metrics = Arc::new(Metrics::new()?);
        let redis = match &self.config.redis {
            Some(r) => Some(Arc::new(
                redis_conn::RedisConn::new(&r.url, REDIS_TIMEOUT)
                    .map_err(|e| BuildError::Server(format!("redis: {e}")))?,
            )),
            None => None,
        };
        let tls = tls::TlsListeners::new(&self.config)?;
        // One handle per user of Redis, so failures are counted by who met them.
        let redis_for = |op: &str| {
            redis
                .as_ref()
                .map(|r| Arc::new(r.counting(metrics.redis_errors.with_label_values(&[op]))))
        };
        let limiter = limits::Limiter::new(redis_for("limits"), self.clock);
        let sessions = match redis_for("sessions") {
            Some(r) => sessions::SessionStore::redis(r),
            None => sessions::SessionStore::memory(MAX_MEMORY_SESSIONS),
        };
        let c = &self.config.compression;
        let codings = bridgecore_filters::cache::body::Codings {
            gzip: c.gzip,
            brotli: c.brotli,
            zstd: c.zstd,
        };
        let cache = cache::Cache::new(
            &self.config.cache,
            redis_for("cache"),
            metrics.clone(),
            codings,
            proxy::COMPRESSION_LEVEL,
        );
        let static_cache =
            static_cache::StaticCache::new(self.config.cache.static_assets.max_memory);
        let runtime = Runtime::build(self.config, &self.filters, &metrics, None)?;
        let ws = ws::Hub::new(&metrics, redis_for("pubsub"))?;
        let shared = Shared {
            cache,
            static_cache,
            runtime: ArcSwap::from_pointee(runtime),
            extra_filters: self.filters,
            untenanted: metrics.tenant("none"),
            metrics,
            access_log,
            redis,
            limiter,
            sessions,
            api_keys: gate::ApiKeyUids::default(),
            tls,
            reloading: std::sync::Mutex::new(()),
            ws,
        };
        Ok(BridgeCore {
            shared: Arc::new(shared),
        })
    }
}

/// A built BridgeCore, ready to be added to a Pingora server.
pub struct BridgeCore {
    shared: Arc<Shared>,
}

/// Reloads and inspects a running BridgeCore.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// Writes out the access-log lines still buffered. The writer thread drains the buffer every
    /// 50 ms while the process lives; a program that exits once the server stopped calls this
    /// after `Server::run` returns, or the last lines (those of the grace period) are lost.
    pub fn flush_access_log(&self) {
        self.shared.access_log.flush();
    }

    /// Swaps in a new configuration. Requests in flight finish on the old one; listener
    /// addresses cannot change this way (they need a graceful upgrade).
    ///
    /// All or nothing: the new generation (tenants, upstreams, keys) is built and the new
    /// certificates are loaded before anything is swapped, so on error the old configuration
    /// and the old certificates both stay. Upstreams whose address is unchanged keep their
    /// health (see [`tenant::Upstreams`]). Blocks (name resolution, file reads): call it off
    /// the async runtime.
    pub fn reload(&self, config: Config) -> Result<(), BuildError> {
        // One reload at a time, so two cannot interleave their certificates and generations.
        let _one = self
            .shared
            .reloading
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let outcome = self.prepare(config).map(|(rt, certs)| {
            self.shared.tls.install(certs);
            self.shared.runtime.store(Arc::new(rt));
        });
        let label = if outcome.is_ok() { "ok" } else { "error" };
        self.shared
            .metrics
            .reloads
            .with_label_values(&[label])
            .inc();
        outcome
    }

    /// Everything a reload swaps in, built and loaded but not yet in use.
    fn prepare(&self, config: Config) -> Result<(Runtime, tls::StagedCerts), BuildError> {
        let certs = self.shared.tls.prepare(&config)?;
        let current = self.shared.runtime.load_full();
        let rt = Runtime::build(
            config,
            &self.shared.extra_filters,
            &self.shared.metrics,
            Some(&current),
        )?;
        Ok((rt, certs))
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.shared.runtime.load().config.clone()
    }

    /// The Prometheus text of BridgeCore's metrics.
    pub fn metrics(&self) -> Vec<u8> {
        self.shared.metrics.render()
    }
}

impl BridgeCore {
    /// Starts building from a validated configuration.
    pub fn builder(config: Config) -> Builder {
        Builder {
            config,
            filters: Vec::new(),
            clock: None,
        }
    }

    /// A handle for reloads.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }

    /// The proxy service, listening on `server.listen`.
    pub fn proxy_service(&self, server_conf: &Arc<ServerConf>) -> Service<accept::FirstBytes> {
        let proxy = Proxy {
            shared: self.shared.clone(),
        };
        let proxy = pingora::proxy::http_proxy(server_conf, proxy);
        let mut service = Service::new("bridgecore".to_owned(), accept::FirstBytes::new(proxy));
        for addr in &self.shared.runtime.load().config.server.listen {
            // No L4 read buffer on plain listeners (Pingora's default is 64 KiB per connection,
            // zeroed): the HTTP header and body readers have buffers of their own, and idle
            // `/api/v1/ws` sockets would each keep 64 KiB resident (issue 6, 10 000 sockets).
            use pingora::listeners::{L4BufferSettings, ListenerConfig};
            let buffers =
                L4BufferSettings::new(0, pingora::listeners::DEFAULT_L4_WRITE_BUFFER_SIZE);
            service.add_listener(ListenerConfig::tcp(addr.as_str()).l4_buffer(buffers));
        }
        for (addr, resolver) in self.shared.tls.iter() {
            // Empty paths: the resolver supplies the certificates (Pingora then ignores them).
            match pingora::listeners::tls::TlsSettings::intermediate("", "") {
                Ok(mut settings) => {
                    settings.set_cert_resolver(resolver.clone());
                    settings.enable_h2();
                    service.add_tls_with_settings(addr, None, settings);
                }
                Err(e) => log::error!("server.tls: `{addr}`: {e}"),
            }
        }
        service
    }

    /// The admin service on `server.admin_listen`, if configured.
    pub fn admin_service(&self) -> Option<Service<HttpServer<AdminApp>>> {
        let addr = self
            .shared
            .runtime
            .load()
            .config
            .server
            .admin_listen
            .clone()?;
        let app = AdminApp {
            shared: self.shared.clone(),
        };
        let mut service = Service::new("bridgecore admin".to_string(), HttpServer::new_app(app));
        service.add_tcp(&addr);
        Some(service)
    }

    /// Adds the proxy and admin services to `server` and returns the reload handle.
    pub fn add_to(self, server: &mut Server) -> Handle {
        let proxy = self.proxy_service(&server.configuration);
        server.add_service(proxy);
        if let Some(admin) = self.admin_service() {
            server.add_service(admin);
        }
        server.add_service(pingora::services::background::background_service(
            "upstream health checks",
            health::HealthChecker {
                shared: self.shared.clone(),
            },
        ));
        server.add_service(pingora::services::background::background_service(
            "jwks refresh",
            tokens::JwksRefresher {
                shared: self.shared.clone(),
            },
        ));
        server.add_service(pingora::services::background::background_service(
            "cache dependency graphs",
            cache::GraphLearner {
                shared: self.shared.clone(),
            },
        ));
        server.add_service(pingora::services::background::background_service(
            "websocket hub",
            ws::Service {
                shared: self.shared.clone(),
            },
        ));
        server.add_service(pingora::services::background::background_service(
            "access log",
            access_log::FlushAtShutdown(self.shared.access_log.clone()),
        ));
        self.handle()
    }
}

/// A BridgeCore running on its own thread: for tests and for programs that do not run a
/// Pingora server of their own. Dropping it shuts the server down.
pub struct Running {
    handle: Handle,
    listen: SocketAddr,
    admin: Option<SocketAddr>,
    stop: Option<tokio::sync::oneshot::Sender<ShutdownSignal>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct StopSignal(tokio::sync::Mutex<Option<tokio::sync::oneshot::Receiver<ShutdownSignal>>>);

#[async_trait::async_trait]
impl ShutdownSignalWatch for StopSignal {
    async fn recv(&self) -> ShutdownSignal {
        if let Some(rx) = self.0.lock().await.take() {
            if let Ok(signal) = rx.await {
                return signal;
            }
        }
        ShutdownSignal::FastShutdown
    }
}

impl Running {
    /// Starts `bridgecore` on a new thread and returns once its listeners accept connections.
    pub fn start(bridgecore: BridgeCore) -> Result<Running, BuildError> {
        let config = bridgecore.handle().config();
        let parse = |s: &str| {
            s.parse::<SocketAddr>()
                .map_err(|e| BuildError::Server(format!("listen address `{s}`: {e}")))
        };
        let listen = parse(
            config
                .server
                .listen
                .first()
                .ok_or_else(|| BuildError::Server("no listener".into()))?,
        )?;
        let admin = config
            .server
            .admin_listen
            .as_deref()
            .map(parse)
            .transpose()?;
        let mut server = Server::new_with_opt_and_conf(None, config.server.pingora_conf());
        server.bootstrap();
        let handle = bridgecore.add_to(&mut server);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let signal = StopSignal(tokio::sync::Mutex::new(Some(rx)));
        let last_lines = handle.clone();
        let thread = std::thread::Builder::new()
            .name("bridgecore".into())
            .spawn(move || {
                server.run(RunArgs {
                    shutdown_signal: Box::new(signal),
                });
                last_lines.flush_access_log();
            })
            .map_err(|e| BuildError::Server(e.to_string()))?;
        let running = Running {
            handle,
            listen,
            admin,
            stop: Some(tx),
            thread: Some(thread),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        for addr in std::iter::once(listen).chain(admin) {
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                if Instant::now() > deadline {
                    return Err(BuildError::Server(format!("{addr} is not listening")));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(running)
    }

    /// The first proxy listener.
    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    /// The admin listener.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The reload handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Stops the server as SIGTERM does (services see the shutdown, then `grace_period`
    /// passes) and waits for its thread.
    pub fn stop_gracefully(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(ShutdownSignal::GracefulTerminate);
        }
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(ShutdownSignal::FastShutdown);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}
