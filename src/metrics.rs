//! Prometheus metrics, in BridgeCore's own registry.
//!
//! Every label is bounded: tenants are the configured names (plus `none` for requests that
//! matched no tenant), categories and status classes are fixed sets, and models are the ones a
//! tenant's configuration names (plus `other`). Raw paths, user ids and unconfigured model names
//! never become labels.

use std::collections::{BTreeSet, HashMap};

use bridgecore_filters::Category;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// BridgeCore's metrics. One instance per process, shared by every service.
pub struct Metrics {
    registry: Registry,
    /// Requests by tenant, call category (`auth`, `read`, `write`, `delete`, `none`) and status
    /// class (`2xx` … `5xx`).
    pub requests: IntCounterVec,
    /// Whole-request duration, by tenant.
    pub duration: HistogramVec,
    /// Time spent waiting for Odoo, by tenant.
    pub upstream_duration: HistogramVec,
    /// Failures talking to Odoo, by tenant and kind (`connect`, `timeout`, `closed`, `other`).
    pub upstream_errors: IntCounterVec,
    /// Requests BridgeCore answered itself, by tenant and reason (`bad_request`, `too_large`,
    /// `blocked`, `saturated`, `no_tenant`, `filter`).
    pub answered: IntCounterVec,
    /// Requests to Odoo in flight, by tenant.
    pub in_flight: IntGaugeVec,
    /// Access-log lines dropped because the writer fell behind.
    pub access_log_dropped: IntCounter,
    /// Configuration reloads by result (`ok`, `error`).
    pub reloads: IntCounterVec,
    /// Requests refused with 429, by tenant and category.
    pub rate_limited: IntCounterVec,
    /// API logins by tenant and result (`ok`, `denied`, `error`).
    pub logins: IntCounterVec,
    /// 1 while an upstream is in rotation, by tenant, kind (`http`, `websocket`) and address
    /// (configured addresses only).
    pub upstream_up: IntGaugeVec,
    /// Token refusals by reason (`missing`, `invalid`, `expired`, `revoked`, `scope`, `user`).
    pub auth_refused: IntCounterVec,
    /// JSON-RPC answers by cache status (hit, miss, stale, bypass).
    pub cache_requests: IntCounterVec,
    /// Entries pushed out of the memory store to make room.
    pub cache_evictions: IntCounterVec,
    /// Generation bumps by scope (model, tenant, identity, clear).
    pub cache_invalidations: IntCounterVec,
    /// Entries held in the memory store.
    pub cache_entries: IntGaugeVec,
    /// Bytes held in the memory store.
    pub cache_bytes: IntGaugeVec,
    /// Writes BridgeCore could not attribute to a model (they flush the tenant), by route.
    pub cache_unknown_writes: IntCounterVec,
    /// Failed Redis commands, by the user that sent them (`cache`, `limits`, `sessions`,
    /// `pubsub`).
    pub redis_errors: IntCounterVec,
    /// Reads that failed on one upstream and were sent once to another, by tenant.
    pub upstream_retries: IntCounterVec,
    /// JSON-RPC calls BridgeCore parsed, by tenant, model (configured ones, else `other`) and
    /// category (`auth`, `read`, `write`, `delete`).
    pub calls: IntCounterVec,
}

const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
    720.0,
];

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "bridgecore_requests_total",
                "Requests by tenant, call category and status class",
            ),
            &["tenant", "category", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "bridgecore_request_duration_seconds",
                "Whole-request duration",
            )
            .buckets(BUCKETS.to_vec()),
            &["tenant"],
        )?;
        let upstream_duration = HistogramVec::new(
            HistogramOpts::new(
                "bridgecore_upstream_duration_seconds",
                "Time from sending the request to Odoo until the response completed",
            )
            .buckets(BUCKETS.to_vec()),
            &["tenant"],
        )?;
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "bridgecore_upstream_errors_total",
                "Failures talking to Odoo",
            ),
            &["tenant", "kind"],
        )?;
        let answered = IntCounterVec::new(
            Opts::new(
                "bridgecore_answered_total",
                "Requests BridgeCore answered itself instead of forwarding",
            ),
            &["tenant", "reason"],
        )?;
        let in_flight = IntGaugeVec::new(
            Opts::new(
                "bridgecore_upstream_in_flight",
                "Requests to Odoo in flight",
            ),
            &["tenant"],
        )?;
        let access_log_dropped = IntCounter::new(
            "bridgecore_access_log_dropped_total",
            "Access-log lines dropped because the writer fell behind",
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "bridgecore_config_reloads_total",
                "Configuration reloads by result",
            ),
            &["result"],
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "bridgecore_rate_limited_total",
                "Requests refused with 429, by tenant and category",
            ),
            &["tenant", "category"],
        )?;
        let logins = IntCounterVec::new(
            Opts::new(
                "bridgecore_api_logins_total",
                "Logins on /api/v1/auth/login by tenant and result",
            ),
            &["tenant", "result"],
        )?;
        let auth_refused = IntCounterVec::new(
            Opts::new(
                "bridgecore_auth_refused_total",
                "Requests refused for want of a valid token or scope, by reason",
            ),
            &["reason"],
        )?;
        let upstream_up = IntGaugeVec::new(
            Opts::new(
                "bridgecore_upstream_up",
                "1 while an upstream is in rotation (health checks and connect failures)",
            ),
            &["tenant", "kind", "upstream"],
        )?;
        let cache_requests = IntCounterVec::new(
            Opts::new(
                "bridgecore_cache_requests_total",
                "JSON-RPC answers by cache status",
            ),
            &["tenant", "result"],
        )?;
        let cache_evictions = IntCounterVec::new(
            Opts::new(
                "bridgecore_cache_evictions_total",
                "Cache entries evicted to make room",
            ),
            &["tenant"],
        )?;
        let cache_invalidations = IntCounterVec::new(
            Opts::new(
                "bridgecore_cache_invalidations_total",
                "Cache generation bumps by scope",
            ),
            &["tenant", "scope"],
        )?;
        let cache_entries = IntGaugeVec::new(
            Opts::new("bridgecore_cache_entries", "Entries in the memory store"),
            &["tenant"],
        )?;
        let cache_bytes = IntGaugeVec::new(
            Opts::new("bridgecore_cache_bytes", "Bytes in the memory store"),
            &["tenant"],
        )?;
        let cache_unknown_writes = IntCounterVec::new(
            Opts::new(
                "bridgecore_cache_unknown_writes_total",
                "Writes not attributable to a model (they flush the tenant's cache), by route",
            ),
            &["tenant", "route"],
        )?;
        let redis_errors = IntCounterVec::new(
            Opts::new(
                "bridgecore_redis_errors_total",
                "Redis commands that failed (timeout, Redis unreachable, error reply), by user",
            ),
            &["op"],
        )?;
        let upstream_retries = IntCounterVec::new(
            Opts::new(
                "bridgecore_upstream_retries_total",
                "Reads that failed on one upstream and were sent once to another",
            ),
            &["tenant"],
        )?;
        let calls = IntCounterVec::new(
            Opts::new(
                "bridgecore_calls_total",
                "JSON-RPC calls parsed, by tenant, model (configured models, else `other`) and category",
            ),
            &["tenant", "model", "category"],
        )?;
        for c in [
            &calls,
            &redis_errors,
            &upstream_retries,
            &cache_requests,
            &cache_evictions,
            &cache_invalidations,
            &cache_unknown_writes,
        ] {
            registry.register(Box::new(c.clone()))?;
        }
        registry.register(Box::new(cache_entries.clone()))?;
        registry.register(Box::new(cache_bytes.clone()))?;
        registry.register(Box::new(upstream_up.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        registry.register(Box::new(auth_refused.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(upstream_duration.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(answered.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(access_log_dropped.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            duration,
            upstream_duration,
            upstream_errors,
            answered,
            in_flight,
            access_log_dropped,
            reloads,
            rate_limited,
            upstream_up,
            logins,
            auth_refused,
            cache_requests,
            cache_evictions,
            cache_invalidations,
            cache_entries,
            cache_bytes,
            cache_unknown_writes,
            redis_errors,
            upstream_retries,
            calls,
        })
    }

    /// Registers a metric defined elsewhere (the WebSocket hub's) in this registry.
    pub fn register(
        &self,
        collector: Box<dyn prometheus::core::Collector>,
    ) -> Result<(), prometheus::Error> {
        self.registry.register(collector)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(8192);
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }
}

/// The call categories used as labels, in index order.
const CATEGORIES: [&str; 5] = ["auth", "read", "write", "delete", "none"];
/// The status classes used as labels, in index order.
const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

/// One tenant's metric handles, resolved once when the configuration is loaded so the request
/// path never hashes label values.
pub struct TenantMetrics {
    requests: Vec<IntCounter>,
    /// Whole-request duration.
    pub duration: prometheus::Histogram,
    /// Time spent waiting for Odoo.
    pub upstream_duration: prometheus::Histogram,
    /// Requests to Odoo in flight.
    pub in_flight: prometheus::IntGauge,
}

impl TenantMetrics {
    /// The request counts since start, by category (auth, read, write, delete, none) and status
    /// class (1xx … 5xx, none).
    pub fn counts(&self) -> Vec<[u64; 6]> {
        self.requests
            .chunks(STATUS_CLASSES.len())
            .map(|row| {
                let mut out = [0; 6];
                for (o, c) in out.iter_mut().zip(row) {
                    *o = c.get();
                }
                out
            })
            .collect()
    }

    /// Counts one request of `category` (`None`: not a counted call) answered with `status`.
    pub fn count(&self, category: Option<Category>, status: u16) {
        let c = match category {
            Some(Category::Auth) => 0,
            Some(Category::Read) => 1,
            Some(Category::Write) => 2,
            Some(Category::Delete) => 3,
            None => 4,
        };
        let s = match status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            500..=599 => 4,
            _ => 5,
        };
        if let Some(counter) = self.requests.get(c * STATUS_CLASSES.len() + s) {
            counter.inc();
        }
    }
}

impl Metrics {
    /// Resolves the handles of tenant `name` (`none` for requests no tenant took).
    pub fn tenant(&self, name: &str) -> TenantMetrics {
        let mut requests = Vec::with_capacity(CATEGORIES.len() * STATUS_CLASSES.len());
        for c in CATEGORIES {
            for s in STATUS_CLASSES {
                requests.push(self.requests.with_label_values(&[name, c, s]));
            }
        }
        TenantMetrics {
            requests,
            duration: self.duration.with_label_values(&[name]),
            upstream_duration: self.upstream_duration.with_label_values(&[name]),
            in_flight: self.in_flight.with_label_values(&[name]),
        }
    }
}

/// The model label of calls on models a tenant's configuration does not name.
pub const OTHER_MODEL: &str = "other";

/// The call categories of `bridgecore_calls_total`, in index order.
const CALL_CATEGORIES: [Category; 4] = [
    Category::Auth,
    Category::Read,
    Category::Write,
    Category::Delete,
];

/// One tenant's `bridgecore_calls_total` handles: a row of four categories per configured model,
/// then the `other` row. Built with each configuration generation, so a reload that names new
/// models counts them from then on; counts of models it keeps carry on (same series).
pub struct CallMetrics {
    /// Configured model → row. foldhash, not SipHash: the keys come from the configuration (a
    /// client can only look names up, not add colliding ones), and the lookup runs per call.
    rows: HashMap<Box<str>, usize, foldhash::fast::RandomState>,
    /// `rows.len() + 1` rows of `CALL_CATEGORIES.len()` counters; the last row is `other`.
    counters: Vec<IntCounter>,
}

impl CallMetrics {
    /// Counts one call on `model` (`None`: a call without a model, such as a login) of
    /// `category`. No allocation: one lookup of the borrowed name, one atomic increment.
    pub fn count(&self, model: Option<&str>, category: Category) {
        let row = model
            .and_then(|m| self.rows.get(m))
            .copied()
            .unwrap_or(self.rows.len());
        let col = match category {
            Category::Auth => 0,
            Category::Read => 1,
            Category::Write => 2,
            Category::Delete => 3,
        };
        if let Some(c) = self.counters.get(row * CALL_CATEGORIES.len() + col) {
            c.inc();
        }
    }
}

/// The model names a tenant's effective configuration mentions: `cache.models`, the global and
/// the tenant's `optimizer.models` and `optimizer.expand`.
fn configured_models<'a>(
    config: &'a crate::config::Config,
    tenant: &'a crate::config::TenantConfig,
) -> BTreeSet<&'a str> {
    let mut out = BTreeSet::new();
    out.extend(config.cache.models.keys().map(String::as_str));
    out.extend(config.optimizer.models.keys().map(String::as_str));
    out.extend(config.optimizer.expand.keys().map(String::as_str));
    out.extend(tenant.optimizer.models.keys().map(String::as_str));
    out.extend(tenant.optimizer.expand.keys().map(String::as_str));
    out
}

impl Metrics {
    /// Resolves the `bridgecore_calls_total` handles of `tenant` under `config`: one row per
    /// model the configuration names, plus `other`.
    pub fn calls(
        &self,
        config: &crate::config::Config,
        tenant: &crate::config::TenantConfig,
    ) -> CallMetrics {
        let models = configured_models(config, tenant);
        let mut rows = HashMap::with_capacity_and_hasher(models.len(), Default::default());
        let mut counters = Vec::with_capacity((models.len() + 1) * CALL_CATEGORIES.len());
        for (i, model) in models.iter().copied().chain([OTHER_MODEL]).enumerate() {
            if i < models.len() {
                rows.insert(Box::from(model), i);
            }
            for c in CALL_CATEGORIES {
                counters.push(self.calls.with_label_values(&[
                    tenant.name.as_str(),
                    model,
                    c.as_str(),
                ]));
            }
        }
        CallMetrics { rows, counters }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn each_tenant_counts_the_models_its_configuration_names_and_the_rest_as_other() {
        let text = r#"cache:
  models: {res.country: {shared: true}}
optimizer:
  models: {sale.order: {max_limits: {read: 5}}}
  expand: {account.move: {partner_id: [name]}}
tenants:
  a:
    upstream: ["127.0.0.1:1"]
    optimizer:
      models: {stock.picking: {max_limits: {read: 5}}}
      expand: {res.users: {company_id: [name]}}
  b:
    upstream: ["127.0.0.1:1"]
"#;
        let config = Config::from_yaml(text, "t.yaml").unwrap();
        let m = Metrics::new().unwrap();
        let a = m.calls(&config, &config.tenants[0]);
        let b = m.calls(&config, &config.tenants[1]);
        let models = [
            "res.country",
            "sale.order",
            "account.move",
            "stock.picking",
            "res.users",
            "res.partner",
        ];
        for model in models {
            a.count(Some(model), Category::Read);
            b.count(Some(model), Category::Write);
        }
        a.count(None, Category::Auth);
        let text = String::from_utf8(m.render()).unwrap();
        let line = |t: &str, model: &str, c: &str, n: u64| {
            format!(
                "bridgecore_calls_total{{category=\"{c}\",model=\"{model}\",tenant=\"{t}\"}} {n}\n"
            )
        };
        for &model in &models[..5] {
            assert!(
                text.contains(&line("a", model, "read", 1)),
                "{model}\n{text}"
            );
        }
        assert!(text.contains(&line("a", "other", "read", 1)), "{text}");
        assert!(text.contains(&line("a", "other", "auth", 1)), "{text}");
        // `b` names only the global models: the tenant overrides of `a` are `other` there.
        for &model in &models[..3] {
            assert!(
                text.contains(&line("b", model, "write", 1)),
                "{model}\n{text}"
            );
        }
        assert!(text.contains(&line("b", "other", "write", 3)), "{text}");
        assert!(
            !text.contains("model=\"stock.picking\",tenant=\"b\""),
            "{text}"
        );
        assert!(!text.contains("model=\"res.partner\""), "{text}");
        // Every series exists from the start: 6 model rows (5 + other) for `a`, 4 for `b`.
        let series = text
            .lines()
            .filter(|l| l.starts_with("bridgecore_calls_total{"))
            .count();
        assert_eq!(series, (6 + 4) * 4, "{text}");
    }
}
