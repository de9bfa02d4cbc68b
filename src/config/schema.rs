//! The file schema: exactly the keys the YAML file may contain, as written.
//!
//! Every field is optional (absent means "the default", and the defaults live in the runtime
//! types' `Default` impls, nowhere else). Durations, sizes, rates, addresses, CIDRs and enum
//! names are kept as text here and parsed in `validate`, so that every bad value in a section is
//! reported, not only the first. Unknown keys are rejected (by the deserializer, which reports all
//! of them; `deny_unknown_fields` stays as a second lock).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// The top-level sections, in the order the reference file uses.
pub(crate) const SECTIONS: &[&str] = &[
    "server",
    "redis",
    "tenants",
    "cache",
    "rate_limits",
    "auth",
    "optimizer",
    "compression",
    "websocket",
];

/// Tells "absent" (`None`) from "explicitly null" (`Some(None)`).
fn explicit<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerFile {
    pub listen: Option<Vec<String>>,
    #[serde(default, deserialize_with = "explicit")]
    pub admin_listen: Option<Option<String>>,
    pub threads: Option<u64>,
    pub max_body_size: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub pid_file: Option<String>,
    pub upgrade_sock: Option<String>,
    pub grace_period: Option<String>,
    pub graceful_shutdown_timeout: Option<String>,
    pub daemon: Option<bool>,
    pub error_log: Option<String>,
    pub access_log: Option<bool>,
    pub client_timeout: Option<String>,
    pub tls: Option<Vec<TlsFile>>,
    pub redirect_http_to_https: Option<bool>,
    #[serde(default, deserialize_with = "explicit")]
    pub hsts: Option<Option<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsFile {
    pub listen: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RedisFile {
    pub url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TenantFile {
    pub hosts: Option<Vec<String>>,
    pub upstream: Option<Vec<String>>,
    pub websocket_upstream: Option<Vec<String>>,
    pub database: Option<String>,
    pub connect_timeout: Option<String>,
    pub timeout: Option<String>,
    pub max_connections: Option<u64>,
    pub service_login: Option<String>,
    pub service_password: Option<String>,
    pub require_jwt: Option<bool>,
    pub allow_database_manager: Option<bool>,
    pub filestore: Option<String>,
    pub rate_limits: Option<RateOverridesFile>,
    pub health_check: Option<HealthCheckFile>,
    pub optimizer: Option<OptimizerFile>,
    pub balance: Option<String>,
    pub shared_sessions: Option<bool>,
    pub addons_paths: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HealthCheckFile {
    pub path: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub rise: Option<u64>,
    pub fall: Option<u64>,
    pub cooldown: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateOverridesFile {
    pub auth: Option<String>,
    pub read: Option<String>,
    pub write: Option<String>,
    pub delete: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CacheFile {
    pub enabled: Option<bool>,
    pub backend: Option<String>,
    pub max_memory: Option<String>,
    pub key_secret: Option<String>,
    pub max_entry_size: Option<String>,
    pub stale_if_error: Option<String>,
    pub invalidation: Option<String>,
    pub lock_timeout: Option<String>,
    #[serde(rename = "static")]
    pub static_assets: Option<StaticFile>,
    /// `default` plus per-method TTLs; a `null` method removes that method's default TTL.
    pub ttl: Option<BTreeMap<String, Option<String>>>,
    pub models: Option<BTreeMap<String, ModelFile>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StaticFile {
    pub enabled: Option<bool>,
    pub max_memory: Option<String>,
    pub max_entry_size: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelFile {
    pub enabled: Option<bool>,
    pub ttl: Option<String>,
    pub shared: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimitsFile {
    pub auth: Option<String>,
    pub read: Option<String>,
    pub write: Option<String>,
    pub delete: Option<String>,
    pub exempt: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthFile {
    pub jwt: Option<JwtFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JwtFile {
    pub algorithm: Option<String>,
    pub secret: Option<String>,
    pub public_key_file: Option<String>,
    pub private_key_file: Option<String>,
    pub jwks_file: Option<String>,
    pub jwks_url: Option<String>,
    pub jwks_refresh: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway: Option<String>,
    pub access_ttl: Option<String>,
    pub refresh_ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OptimizerFile {
    /// Per-method caps; a `null` method removes that method's default cap.
    pub max_limits: Option<BTreeMap<String, Option<u64>>>,
    /// Per-model caps; a `null` method exempts the model from that method's cap.
    pub models: Option<BTreeMap<String, OptimizerModelFile>>,
    pub limit_caps: Option<LimitCapsFile>,
    pub canonical_domains: Option<String>,
    pub expand_dotted: Option<bool>,
    /// model → relational field → sub-fields.
    pub expand: Option<BTreeMap<String, BTreeMap<String, Vec<String>>>>,
    pub default_fields: Option<String>,
    pub read_concurrency: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OptimizerModelFile {
    pub max_limits: Option<BTreeMap<String, Option<u64>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitCapsFile {
    pub api: Option<bool>,
    pub rpc: Option<bool>,
    pub web: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompressionFile {
    pub gzip: Option<bool>,
    pub brotli: Option<bool>,
    pub zstd: Option<bool>,
    pub min_size: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebsocketFile {
    pub poll_interval: Option<String>,
    pub poll_overlap: Option<String>,
    pub ping_interval: Option<String>,
    pub auth_timeout: Option<String>,
    pub max_connections: Option<u64>,
    pub max_connections_per_user: Option<u64>,
    pub max_subscriptions: Option<u64>,
    pub max_record_ids: Option<u64>,
    pub queue_size: Option<u64>,
    pub max_message_size: Option<String>,
    pub message_rate: Option<String>,
    pub send_timeout: Option<String>,
}
