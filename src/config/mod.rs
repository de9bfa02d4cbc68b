//! BridgeCore's one strict YAML file (design.md §4), loaded into a validated [`Config`].
//!
//! `conf/bridgecore.yaml` is the commented reference: it lists every key with its default, and a
//! test keeps it equal to the `Default` impls below (the single source of truth for defaults).
//!
//! # Loading
//! 1. The text is parsed into a tree that remembers each key's and value's line and column
//!    (`yaml.rs`). Syntax errors stop here; duplicate keys, anchors/aliases (not supported: write
//!    the value out), tags and extra documents are reported and the rest is still checked.
//! 2. `${VAR}` / `${VAR:-default}` are replaced in scalar values (`env.rs`), after parsing, so a
//!    variable can never inject YAML structure. Plain scalars are typed afterwards, so an unquoted
//!    `${THREADS:-2}` is a number.
//! 3. Each section (and each tenant) is deserialized into the strict file schema; every unknown
//!    key is reported, at the key. Units, addresses and names are text in the schema, so the only
//!    errors that stop a section early are wrong YAML types (`threads: two`); other sections and
//!    tenants are still checked.
//! 4. Values are parsed and checked together (units, addresses, CIDRs, cross-references such as
//!    duplicate hosts across tenants), each problem at the offending key or value.
//!
//! Every problem is a [`ConfigError`], printed as `FILE:LINE:COL: message` (1-based line and
//! column), and all of them are returned at once, sorted by position. A file that cannot be read
//! is reported at `FILE:1:1`.
//!
//! # Choices worth knowing
//! - Absent key: the default. `server.admin_listen: null` (or `""`) turns the admin listener off.
//! - Sizes accept `KiB`/`MiB`/`GiB` (powers of 1024) and `KB`/`MB`/`GB` (powers of 1000); see
//!   [`bridgecore_filters::units`].
//! - `cache.ttl` and `optimizer.max_limits` are merged over their defaults: listing one method
//!   keeps the others' defaults; `method: null` removes a default entry.
//! - At least one tenant is required (without one BridgeCore could only answer 404).
//! - `trusted_proxies` / `rate_limits.exempt` take CIDRs or bare addresses (a /32 or /128).

mod de;
mod env;
mod schema;
mod server_conf;
mod validate;
mod yaml;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bridgecore_filters::rewrite::{
    CapRoutes, DefaultFields, DomainMode, LimitCaps, Optimizer, OptimizerOverrides,
    DEFAULT_READ_CONCURRENCY,
};
use bridgecore_filters::units::Rate;
use ipnet::IpNet;

/// The validated runtime configuration. Built only by [`Config::load`] and friends.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Listeners, threads, limits and process settings (`server:`).
    pub server: ServerConfig,
    /// The shared Redis (`redis:`); `None` keeps everything in-process.
    pub redis: Option<RedisConfig>,
    /// The Odoo systems BridgeCore fronts (`tenants:`), in file order; never empty.
    pub tenants: Vec<TenantConfig>,
    /// The JSON-RPC read cache (`cache:`).
    pub cache: CacheConfig,
    /// Global per-caller rate limits (`rate_limits:`).
    pub rate_limits: RateLimitConfig,
    /// BridgeCore's own tokens (`auth:`).
    pub auth: AuthConfig,
    /// Request rewrites that protect Odoo (`optimizer:`).
    pub optimizer: OptimizerConfig,
    /// Response compression (`compression:`).
    pub compression: CompressionConfig,
    /// BridgeCore's own WebSocket (`websocket:`).
    pub websocket: WebsocketConfig,
    /// Things that are valid but worth telling ops once at startup (a feature off because its
    /// secret is empty, ...).
    pub warnings: Vec<String>,
}

/// The `server:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Plain-HTTP listeners, as `IP:port` (validated socket addresses). Default `["0.0.0.0:8080"]`.
    pub listen: Vec<String>,
    /// The admin listener (`/metrics`, `/healthz`, `/readyz`, admin API without a token), as
    /// `IP:port`; `None` when set to `null` or `""`. Default `127.0.0.1:9180`.
    pub admin_listen: Option<String>,
    /// Worker threads per Pingora service. Default 2.
    pub threads: usize,
    /// Largest request body accepted, in bytes. Default 64 MiB.
    pub max_body_size: u64,
    /// Peers whose `X-Forwarded-For` is believed. Default none.
    pub trusted_proxies: Vec<IpNet>,
    /// Pingora's pid file. Default `/tmp/bridgecore.pid`.
    pub pid_file: PathBuf,
    /// The socket a new process (`--upgrade`) takes the listeners over from. Default
    /// `/tmp/bridgecore_upgrade.sock`.
    pub upgrade_sock: PathBuf,
    /// How long a shutting-down (or upgraded-away) process keeps serving before the final
    /// shutdown step. Whole seconds. Default 30 s (Pingora's own default is 300 s).
    pub grace_period: Duration,
    /// The final shutdown step's limit for in-flight requests. Whole seconds. Default 5 s.
    pub graceful_shutdown_timeout: Duration,
    /// Fork into the background (also `-d`). Default false.
    pub daemon: bool,
    /// Where the error log goes when daemonized; `None` is stderr. Default none.
    pub error_log: Option<PathBuf>,
    /// Log one line per request. Default true.
    pub access_log: bool,
    /// How long a client may pause while sending a request body before it gets 408 (slowloris
    /// protection, like nginx's `client_body_timeout`). Default 60 s.
    pub client_timeout: Duration,
    /// TLS listeners (HTTP/2 by ALPN); several entries on one address are one listener that
    /// picks the certificate by SNI. Default none.
    pub tls: Vec<TlsListener>,
    /// Answer plain-HTTP requests with a 301 to the same URL over HTTPS. Default false.
    pub redirect_http_to_https: bool,
    /// `Strict-Transport-Security` value sent on TLS answers, e.g. `max-age=31536000`.
    /// Default none.
    pub hsts: Option<String>,
}

/// One certificate on a TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListener {
    /// `IP:port`.
    pub listen: String,
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: vec!["0.0.0.0:8080".to_owned()],
            admin_listen: Some("127.0.0.1:9180".to_owned()),
            threads: 2,
            max_body_size: 64 * 1024 * 1024,
            trusted_proxies: Vec::new(),
            pid_file: PathBuf::from("/tmp/bridgecore.pid"),
            upgrade_sock: PathBuf::from("/tmp/bridgecore_upgrade.sock"),
            grace_period: Duration::from_secs(30),
            graceful_shutdown_timeout: Duration::from_secs(5),
            daemon: false,
            error_log: None,
            access_log: true,
            client_timeout: Duration::from_secs(60),
            tls: Vec::new(),
            redirect_http_to_https: false,
            hsts: None,
        }
    }
}

/// The `redis:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://`, `redis+unix://` or `unix://` URL (no TLS yet). Required.
    pub url: String,
}

/// One entry of `tenants:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantConfig {
    /// The map key: used in `/api/v1/systems/{name}/`; `[A-Za-z0-9_.-]+`.
    pub name: String,
    /// Host-header names that route here: lowercased, port stripped, unique across tenants.
    pub hosts: Vec<String>,
    /// Odoo HTTP workers, as `host:port` (a hostname such as `odoo:8069` is fine). Required.
    pub upstream: Vec<String>,
    /// Where `/websocket` and `/longpolling` go (Odoo's gevent port); defaults to `upstream`.
    pub websocket_upstream: Vec<String>,
    /// The database BridgeCore's own calls and `/api/v1` logins use. Default none.
    pub database: Option<String>,
    /// How long to wait for a connection (and for a free `max_connections` slot). Default 5 s.
    pub connect_timeout: Duration,
    /// Read/write timeout towards Odoo. Default 720 s (as Odoo's deployment doc sets).
    pub timeout: Duration,
    /// Concurrent proxied requests to Odoo (not `/websocket`). Default 64.
    pub max_connections: usize,
    /// Login for BridgeCore's own calls (schema, pollers); empty is `None`. Set with the password.
    pub service_login: Option<String>,
    /// Password for `service_login`; empty is `None`.
    pub service_password: Option<String>,
    /// Raw Odoo JSON-RPC routes also need a BridgeCore token. Default false.
    pub require_jwt: bool,
    /// Allow `/web/database/*` (but the selector) and `/jsonrpc` `db` calls. Default false.
    pub allow_database_manager: bool,
    /// Odoo's filestore directory, from which `X-Accel-Redirect: /web/filestore/...` answers
    /// (Odoo's `--x-sendfile`) are served. Default none (such answers pass through).
    pub filestore: Option<String>,
    /// This tenant's overrides of the global `rate_limits`.
    pub rate_limits: RateLimitOverrides,
    /// Active health checks of the upstreams.
    pub health_check: HealthCheckConfig,
    /// This tenant's overrides of the global `optimizer:` section, key by key.
    pub optimizer: OptimizerOverrides,
    /// How requests without an Odoo session are spread over several upstreams. Default
    /// round robin.
    pub balance: Balance,
    /// The upstreams share Odoo's session store (a shared `session_dir`), so a failed read
    /// with a session may be retried on another upstream. Default false.
    pub shared_sessions: bool,
    /// Addons directories: `GET /<module>/static/<path>` is served from
    /// `<dir>/<module>/static/<path>` when that file exists (first directory wins), else by
    /// Odoo. Default none.
    pub addons_paths: Vec<PathBuf>,
}

/// `tenants.X.balance`: where a request without an Odoo session goes (requests with one
/// stick to their session's upstream either way).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Balance {
    /// Each upstream in turn (`round_robin`, the default).
    #[default]
    RoundRobin,
    /// The upstream with the fewest requests in flight (`least_connections`).
    LeastConnections,
}

/// `tenants.X.health_check`: each upstream (and websocket upstream) is asked `path` every
/// `interval`; `fall` failures in a row take it out of rotation, `rise` successes bring it back.
/// A failed connection takes it out at once; without active checks it comes back after
/// `cooldown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// Default `/web/health` (Odoo 16+; answers without a database or a session).
    pub path: String,
    /// Default 10 s; `0s` turns active checks off (connect failures still eject).
    pub interval: Duration,
    /// Default 2 s.
    pub timeout: Duration,
    /// Default 2.
    pub rise: u32,
    /// Default 3.
    pub fall: u32,
    /// With active checks off (`interval: 0s`), how long an upstream taken out of rotation by
    /// a failed connection stays out before requests try it again. Default 10 s.
    pub cooldown: Duration,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            path: "/web/health".to_owned(),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            rise: 2,
            fall: 3,
            cooldown: Duration::from_secs(10),
        }
    }
}

impl Default for TenantConfig {
    /// The per-tenant defaults (name, hosts and upstreams empty).
    fn default() -> Self {
        TenantConfig {
            name: String::new(),
            hosts: Vec::new(),
            upstream: Vec::new(),
            websocket_upstream: Vec::new(),
            database: None,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(720),
            max_connections: 64,
            service_login: None,
            service_password: None,
            require_jwt: false,
            allow_database_manager: false,
            filestore: None,
            rate_limits: RateLimitOverrides::default(),
            health_check: HealthCheckConfig::default(),
            optimizer: OptimizerOverrides::default(),
            balance: Balance::RoundRobin,
            shared_sessions: false,
            addons_paths: Vec::new(),
        }
    }
}

/// A tenant's `rate_limits:`; `None` inherits the global limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitOverrides {
    /// Logins.
    pub auth: Option<Rate>,
    /// Reads.
    pub read: Option<Rate>,
    /// Writes.
    pub write: Option<Rate>,
    /// Deletes (`unlink`).
    pub delete: Option<Rate>,
}

/// Where cache entries live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheBackend {
    /// In-process (`memory`, the default).
    #[default]
    Memory,
    /// The shared Redis of the `redis:` section (`redis`).
    Redis,
}

/// `cache.ttl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheTtl {
    /// For methods without their own entry. Default 300 s.
    pub default: Duration,
    /// Per-method TTLs. Defaults: `fields_get` 3600 s, `name_search` 600 s, `search_read` 300 s.
    pub methods: BTreeMap<String, Duration>,
}

impl Default for CacheTtl {
    fn default() -> Self {
        CacheTtl {
            default: Duration::from_secs(300),
            methods: BTreeMap::from([
                ("fields_get".to_owned(), Duration::from_secs(3_600)),
                ("name_search".to_owned(), Duration::from_secs(600)),
                ("search_read".to_owned(), Duration::from_secs(300)),
            ]),
        }
    }
}

impl CacheTtl {
    /// The TTL for `method`.
    pub fn for_method(&self, method: &str) -> Duration {
        self.methods.get(method).copied().unwrap_or(self.default)
    }
}

/// One entry of `cache.models`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelCacheConfig {
    /// Cache this model's reads at all. Default true.
    pub enabled: bool,
    /// Overrides the method TTL for this model.
    pub ttl: Option<Duration>,
    /// Same data for every user: the key drops the caller's identity. Default false.
    pub shared: bool,
}

impl Default for ModelCacheConfig {
    fn default() -> Self {
        ModelCacheConfig {
            enabled: true,
            ttl: None,
            shared: false,
        }
    }
}

/// `cache.static`: `/web/static/`, `/<module>/static/` and `/web/assets/` answers kept in
/// memory as Odoo's `Cache-Control` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticCacheConfig {
    /// Default true.
    pub enabled: bool,
    /// Memory budget, in bytes. Default 64 MiB.
    pub max_memory: u64,
    /// The largest file kept, in bytes. Default 4 MiB.
    pub max_entry_size: u64,
}

impl Default for StaticCacheConfig {
    fn default() -> Self {
        StaticCacheConfig {
            enabled: true,
            max_memory: 64 * 1024 * 1024,
            max_entry_size: 4 * 1024 * 1024,
        }
    }
}

/// What a write invalidates (`cache.invalidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    /// The written model and every model whose reads it can change, learned from `fields_get`;
    /// the whole tenant for security/config models, unknown methods and while the graph is
    /// unknown.
    Graph,
    /// The written model only (the original backend's behaviour).
    Model,
    /// The whole tenant.
    Tenant,
}

/// The `cache:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Cache JSON-RPC reads at all. Default true.
    pub enabled: bool,
    /// Where entries live. Default memory.
    pub backend: CacheBackend,
    /// Memory budget of the in-process store, in bytes. Default 256 MiB.
    pub max_memory: u64,
    /// HMAC key for credential identities; `None` (empty) means a random key per start.
    pub key_secret: Option<String>,
    /// The largest answer stored, in bytes. Default 1 MiB.
    pub max_entry_size: u64,
    /// How long past its TTL an entry may be served (`X-Cache: STALE`) while Odoo is down or
    /// answers 5xx. Default 0 (off).
    pub stale_if_error: Duration,
    /// What a write invalidates. Default graph.
    pub invalidation: Invalidation,
    /// How long concurrent identical misses wait for the first one's answer. Default 5 s.
    pub lock_timeout: Duration,
    /// Static files and asset bundles (`cache.static`).
    pub static_assets: StaticCacheConfig,
    /// TTLs.
    pub ttl: CacheTtl,
    /// Per-model settings, by model name. Default none.
    pub models: BTreeMap<String, ModelCacheConfig>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            backend: CacheBackend::Memory,
            max_memory: 256 * 1024 * 1024,
            key_secret: None,
            max_entry_size: 1024 * 1024,
            stale_if_error: Duration::ZERO,
            invalidation: Invalidation::Graph,
            lock_timeout: Duration::from_secs(5),
            static_assets: StaticCacheConfig::default(),
            ttl: CacheTtl::default(),
            models: BTreeMap::new(),
        }
    }
}

/// The global `rate_limits:` section (per caller and category).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Logins. Default 10/minute.
    pub auth: Rate,
    /// Reads. Default 100/minute.
    pub read: Rate,
    /// Writes. Default 50/minute.
    pub write: Rate,
    /// Deletes. Default 20/minute.
    pub delete: Rate,
    /// Callers never limited. Default none.
    pub exempt: Vec<IpNet>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            auth: Rate::per_minute(10),
            read: Rate::per_minute(100),
            write: Rate::per_minute(50),
            delete: Rate::per_minute(20),
            exempt: Vec::new(),
        }
    }
}

/// JWT signing algorithms. One per deployment: tokens signed with any other are refused, so
/// neither `alg: none` nor HS/RS key confusion can get through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with `secret` (the default).
    #[default]
    HS256,
    /// HMAC-SHA384 with `secret`.
    HS384,
    /// HMAC-SHA512 with `secret`.
    HS512,
    /// RSA PKCS#1 v1.5 with SHA-256, from key files or a JWKS.
    RS256,
    /// ECDSA P-256 with SHA-256, from key files or a JWKS.
    ES256,
    /// Ed25519, from key files or a JWKS.
    EdDSA,
}

impl JwtAlgorithm {
    /// The name as written in YAML and in a token's `alg` header.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::HS256 => "HS256",
            JwtAlgorithm::HS384 => "HS384",
            JwtAlgorithm::HS512 => "HS512",
            JwtAlgorithm::RS256 => "RS256",
            JwtAlgorithm::ES256 => "ES256",
            JwtAlgorithm::EdDSA => "EdDSA",
        }
    }

    /// Whether the key is a shared secret (HMAC) rather than a key pair.
    pub fn is_hmac(self) -> bool {
        matches!(
            self,
            JwtAlgorithm::HS256 | JwtAlgorithm::HS384 | JwtAlgorithm::HS512
        )
    }
}

/// `auth.jwt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// Default HS256.
    pub algorithm: JwtAlgorithm,
    /// The HMAC key (HS*); `None` (empty) turns JWT auth off, with a warning.
    pub secret: Option<String>,
    /// PEM public key (RS256/ES256/EdDSA).
    pub public_key_file: Option<PathBuf>,
    /// PEM private key, where this instance issues tokens (RS256/ES256/EdDSA).
    pub private_key_file: Option<PathBuf>,
    /// A JWKS document on disk (verification only).
    pub jwks_file: Option<PathBuf>,
    /// A JWKS document over HTTP(S) (verification only), fetched at start and every
    /// `jwks_refresh`; the last good set is kept when a fetch fails.
    pub jwks_url: Option<String>,
    /// How often `jwks_file`/`jwks_url` is read again. Default 10 min.
    pub jwks_refresh: Duration,
    /// `iss` of issued tokens, and required of presented ones. Default `bridgecore`.
    pub issuer: String,
    /// `aud` of issued tokens, and required of presented ones. Default `bridgecore-api`.
    pub audience: String,
    /// Clock skew tolerated on `exp`/`nbf`. Default 30 s.
    pub leeway: Duration,
    /// Access-token lifetime. Default 15 min.
    pub access_ttl: Duration,
    /// Refresh-token lifetime. Default 7 days.
    pub refresh_ttl: Duration,
}

impl JwtConfig {
    /// Whether tokens can be verified at all (a secret, or some public key material).
    pub fn enabled(&self) -> bool {
        if self.algorithm.is_hmac() {
            self.secret.is_some()
        } else {
            self.public_key_file.is_some() || self.jwks_file.is_some() || self.jwks_url.is_some()
        }
    }

    /// Whether this instance can sign tokens (and so serve logins).
    pub fn can_issue(&self) -> bool {
        if self.algorithm.is_hmac() {
            self.secret.is_some()
        } else {
            self.private_key_file.is_some()
        }
    }
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            algorithm: JwtAlgorithm::HS256,
            secret: None,
            public_key_file: None,
            private_key_file: None,
            jwks_file: None,
            jwks_url: None,
            jwks_refresh: Duration::from_secs(600),
            issuer: "bridgecore".to_owned(),
            audience: "bridgecore-api".to_owned(),
            leeway: Duration::from_secs(30),
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(7 * 86_400),
        }
    }
}

/// The `auth:` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// BridgeCore's tokens.
    pub jwt: JwtConfig,
}

/// The `optimizer:` section (issue 5). A tenant's `optimizer:` overrides it key by key
/// ([`TenantConfig::optimizer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptimizerConfig {
    /// Largest `limit` per method; bigger (or missing) limits are capped, larger `read`s are
    /// split into batches. Defaults: `search_read` 200, `web_search_read` 200, `read` 100,
    /// `name_search` 50.
    pub max_limits: BTreeMap<String, u64>,
    /// Per model, per method: a cap, or `None` to exempt the pair. Default none.
    pub models: BTreeMap<String, BTreeMap<String, Option<u64>>>,
    /// The routes caps and batching apply to. Default: API and RPC on, web off.
    pub limit_caps: CapRoutes,
    /// Canonical domains: forwarded (default), cache keys only, or off.
    pub canonical_domains: DomainMode,
    /// Dotted field names are expanded by BridgeCore. Default true.
    pub expand_dotted: bool,
    /// Automatic expansion on `/api/v1`: model → relational field → sub-fields. Default none.
    pub expand: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// Columns of a read without `fields`. Default all.
    pub default_fields: DefaultFields,
    /// Batches of one split `read` in flight at once (1-64). Default 4.
    pub read_concurrency: usize,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            max_limits: BTreeMap::from([
                ("search_read".to_owned(), 200),
                ("web_search_read".to_owned(), 200),
                ("read".to_owned(), 100),
                ("name_search".to_owned(), 50),
            ]),
            models: BTreeMap::new(),
            limit_caps: CapRoutes::default(),
            canonical_domains: DomainMode::Forward,
            expand_dotted: true,
            expand: BTreeMap::new(),
            default_fields: DefaultFields::All,
            read_concurrency: DEFAULT_READ_CONCURRENCY,
        }
    }
}

impl OptimizerConfig {
    /// The filters' form of these settings (before any tenant's overrides).
    pub fn optimizer(&self) -> Optimizer {
        let mut caps = LimitCaps::new(self.max_limits.clone());
        for (model, methods) in &self.models {
            for (method, cap) in methods {
                caps.set_model(model, method, *cap);
            }
        }
        Optimizer {
            caps,
            cap_routes: self.limit_caps,
            domains: self.canonical_domains,
            expand_dotted: self.expand_dotted,
            expand: self.expand.clone(),
            default_fields: self.default_fields,
            read_concurrency: self.read_concurrency,
        }
    }
}

/// The `compression:` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionConfig {
    /// gzip on. Default true.
    pub gzip: bool,
    /// brotli on. Default true.
    pub brotli: bool,
    /// zstd on. Default true.
    pub zstd: bool,
    /// Smaller bodies are sent as they are, in bytes. Default 1000.
    pub min_size: u64,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        CompressionConfig {
            gzip: true,
            brotli: true,
            zstd: true,
            min_size: 1000,
        }
    }
}

/// The `websocket:` section: BridgeCore's own live-updates WebSocket (`/api/v1/ws`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebsocketConfig {
    /// How often subscribed models are polled for changes made outside BridgeCore. Default 5 s.
    pub poll_interval: Duration,
    /// How far back each poll looks again, for transactions that commit late with an older
    /// `write_date` (odoo-protocol.md §8.5). Default 60 s.
    pub poll_overlap: Duration,
    /// How often BridgeCore pings each socket and re-checks its token's session (revocation).
    /// Default 30 s.
    pub ping_interval: Duration,
    /// How long a socket without a token in its request may take to send `auth`. Default 10 s.
    pub auth_timeout: Duration,
    /// Sockets per tenant. Default 10000.
    pub max_connections: usize,
    /// Sockets per user of a tenant. Default 20.
    pub max_connections_per_user: usize,
    /// Subscriptions per socket. Default 100.
    pub max_subscriptions: usize,
    /// `record_ids` per subscription. Default 1000.
    pub max_record_ids: usize,
    /// Messages waiting to be sent to one socket; a socket whose queue overflows is a slow
    /// consumer and is closed with 1013. Default 256.
    pub queue_size: usize,
    /// The largest message (and frame) a client may send, in bytes. Default 64 KiB.
    pub max_message_size: u64,
    /// Messages a client may send; above it they are answered `rate_limited`, and a client
    /// that keeps sending at several times the rate is closed with 1008. Default 20/second.
    pub message_rate: Rate,
    /// How long one write to a socket may block before the socket is dropped. Default 30 s.
    pub send_timeout: Duration,
}

impl Default for WebsocketConfig {
    fn default() -> Self {
        WebsocketConfig {
            poll_interval: Duration::from_secs(5),
            poll_overlap: Duration::from_secs(60),
            ping_interval: Duration::from_secs(30),
            auth_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_connections_per_user: 20,
            max_subscriptions: 100,
            max_record_ids: 1000,
            queue_size: 256,
            max_message_size: 64 * 1024,
            message_rate: Rate::per_second(20),
            send_timeout: Duration::from_secs(30),
        }
    }
}

/// One problem in a configuration file, at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong, and usually what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a file, sorted by position; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    /// One `FILE:LINE:COL: message` per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Reads and validates the file at `path`, with `${VAR}` taken from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Config::from_yaml(&text, &file),
            Err(e) => Err(ConfigErrors(vec![ConfigError {
                file,
                line: 1,
                col: 1,
                message: format!("cannot read the configuration file: {e}"),
            }])),
        }
    }

    /// Validates `text`, naming it `file_name` in errors, with `${VAR}` taken from the process
    /// environment.
    pub fn from_yaml(text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
        Config::from_yaml_with_env(text, file_name, &|name| std::env::var(name).ok())
    }

    /// Validates `text` with `${VAR}` looked up through `env` (tests use this instead of
    /// changing the process environment).
    pub fn from_yaml_with_env(
        text: &str,
        file_name: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        validate::load(text, env).map_err(|problems| {
            ConfigErrors(
                problems
                    .into_iter()
                    .map(|p| ConfigError {
                        file: file_name.to_owned(),
                        line: p.pos.line,
                        col: p.pos.col,
                        message: p.message,
                    })
                    .collect(),
            )
        })
    }

    /// The tenant called `name`.
    pub fn tenant(&self, name: &str) -> Option<&TenantConfig> {
        self.tenants.iter().find(|t| t.name == name)
    }
}
