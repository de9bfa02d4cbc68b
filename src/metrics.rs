//! Prometheus metrics, in BridgeCore's own registry.
//!
//! Every label is bounded: tenants are the configured names (plus `none` for requests that
//! matched no tenant), categories and status classes are fixed sets. Raw paths, user ids and
//! models never become labels.

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
        for c in [
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
    pub fn count(&self, category: Option<bridgecore_filters::Category>, status: u16) {
        use bridgecore_filters::Category;
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
