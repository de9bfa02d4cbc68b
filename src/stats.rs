//! Per-tenant statistics and health (`GET /api/v1/systems/{id}/stats|health`), answered on the
//! main listener to an admin token for that tenant and on the admin listener without one.
//!
//! The figures come from the Prometheus handles, which live in the process-wide registry: they
//! survive reloads and say the same as `/metrics`, so an operator never sees two truths. Counts
//! are since the process started; durations are estimated from the histogram buckets the way
//! Prometheus's `histogram_quantile` does.

use std::time::{Duration, Instant};

use bridgecore_filters::Category;
use prometheus::core::Metric;
use serde_json::{json, Map, Value};

use crate::tenant::{Tenant, Upstreams};
use crate::Shared;

/// How long a health probe waits for one upstream's TCP handshake.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// A quantile (0..1) of a histogram, in milliseconds, by linear interpolation inside the bucket
/// that holds it; `None` without samples.
fn quantile_ms(h: &prometheus::Histogram, q: f64) -> Option<f64> {
    let m = h.metric();
    let hist = m.get_histogram();
    let count = hist.get_sample_count();
    if count == 0 {
        return None;
    }
    let target = q * count as f64;
    let mut lower = 0.0;
    let mut below = 0u64;
    for b in hist.get_bucket() {
        let upper = b.upper_bound();
        let cum = b.cumulative_count();
        if cum as f64 >= target {
            let inside = (cum - below) as f64;
            let frac = if inside > 0.0 {
                (target - below as f64) / inside
            } else {
                0.0
            };
            return Some(round_ms((lower + (upper - lower) * frac) * 1000.0));
        }
        lower = upper;
        below = cum;
    }
    // Beyond the last finite bucket: its bound is the best answer (as histogram_quantile).
    Some(round_ms(lower * 1000.0))
}

fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// Probes each address once (TCP handshake), concurrently.
async fn probe(addrs: &[std::net::SocketAddr]) -> Vec<(String, bool, Option<f64>)> {
    let probes = addrs.iter().map(|addr| async move {
        let start = Instant::now();
        let ok = matches!(
            tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await,
            Ok(Ok(_))
        );
        let ms = ok.then(|| round_ms(start.elapsed().as_secs_f64() * 1000.0));
        (addr.to_string(), ok, ms)
    });
    futures_util::future::join_all(probes).await
}

fn upstreams_json(set: &Upstreams, results: &[(String, bool, Option<f64>)]) -> Value {
    let map: Map<String, Value> = results
        .iter()
        .map(|(a, ok, ms)| {
            let addr = a.parse().ok();
            let in_rotation = addr.is_some_and(|addr| set.is_up(addr));
            let in_flight = addr.map_or(0, |addr| set.in_flight(addr));
            (
                a.clone(),
                json!({"reachable": ok, "connect_ms": ms, "in_rotation": in_rotation, "in_flight": in_flight}),
            )
        })
        .collect();
    Value::Object(map)
}

/// `GET .../health`: 200 while one upstream accepts connections, else 503.
pub(crate) async fn health(tenant: &Tenant) -> (u16, Value) {
    let (up, ws) = tokio::join!(
        probe(tenant.upstreams.all()),
        probe(tenant.ws_upstreams.all())
    );
    let healthy = up.iter().any(|(_, ok, _)| *ok);
    let body = json!({
        "system_id": tenant.name(),
        "status": if healthy { "healthy" } else { "unhealthy" },
        "upstreams": upstreams_json(&tenant.upstreams, &up),
        "websocket_upstreams": upstreams_json(&tenant.ws_upstreams, &ws),
        "active_connections": tenant.in_flight(),
        "max_connections": tenant.cfg.max_connections,
    });
    (if healthy { 200 } else { 503 }, body)
}

/// `GET .../stats`: the original backend's fields plus percentiles, categories and limits.
pub(crate) async fn stats(shared: &Shared, tenant: &Tenant) -> Value {
    let m = &tenant.metrics;
    let counts = m.counts();
    let by_class = |i: usize| counts.iter().map(|row| row[i]).sum::<u64>();
    let (info, ok2, redirect, client_err, server_err) = (
        by_class(0),
        by_class(1),
        by_class(2),
        by_class(3),
        by_class(4),
    );
    let total: u64 = counts.iter().flatten().sum();
    let mut by_category = Map::new();
    for (i, c) in [
        Category::Auth,
        Category::Read,
        Category::Write,
        Category::Delete,
    ]
    .into_iter()
    .enumerate()
    {
        let n: u64 = counts.get(i).map_or(0, |row| row.iter().sum());
        by_category.insert(c.as_str().to_owned(), json!(n));
    }
    by_category.insert(
        "other".into(),
        json!(counts.get(4).map_or(0, |row| row.iter().sum::<u64>())),
    );
    let mut rate_limited = Map::new();
    let mut rate_limited_total = 0;
    for c in [
        Category::Auth,
        Category::Read,
        Category::Write,
        Category::Delete,
    ] {
        let n = shared
            .metrics
            .rate_limited
            .with_label_values(&[tenant.name(), c.as_str()])
            .get();
        rate_limited_total += n;
        rate_limited.insert(c.as_str().to_owned(), json!(n));
    }
    let d = &m.duration;
    let avg = (d.get_sample_count() > 0)
        .then(|| round_ms(d.get_sample_sum() / d.get_sample_count() as f64 * 1000.0));
    let health = probe(tenant.upstreams.all()).await;
    json!({
        "system_id": tenant.name(),
        "total_requests": total,
        "successful_requests": info + ok2 + redirect,
        "failed_requests": client_err + server_err,
        "client_errors": client_err,
        "server_errors": server_err,
        "avg_response_time": avg,
        "p50_response_time": quantile_ms(d, 0.5),
        "p95_response_time": quantile_ms(d, 0.95),
        "upstream_p50_time": quantile_ms(&m.upstream_duration, 0.5),
        "upstream_p95_time": quantile_ms(&m.upstream_duration, 0.95),
        "active_connections": tenant.in_flight(),
        "requests_by_category": by_category,
        "rate_limited_requests": rate_limited_total,
        "rate_limited_by_category": rate_limited,
        "cache_hit_ratio": shared.cache.hit_ratio(tenant.name()),
        "upstreams": upstreams_json(&tenant.upstreams, &health),
        "time_unit": "ms",
    })
}
