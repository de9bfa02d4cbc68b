//! Active health checks of every tenant's upstreams (`tenants.X.health_check`): an HTTP GET of
//! the configured path on each upstream and websocket upstream; `fall` failures in a row take
//! it out of rotation, `rise` successes bring it back. Connect failures on real traffic eject
//! at once (the proxy does that); these checks bring such an upstream back, or, when they are
//! off (`interval: 0s`), `health_check.cooldown` does (tenant.rs). An upstream's state
//! outlives reloads that keep its address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::runtime::Runtime;
use crate::tenant::{Tenant, Upstreams};
use crate::Shared;

/// How often the checker wakes to see which tenant is due.
const TICK: Duration = Duration::from_millis(100);

pub(crate) struct HealthChecker {
    pub(crate) shared: Arc<Shared>,
}

/// One check: the path answers 2xx within the timeout.
async fn check(http: &reqwest::Client, addr: SocketAddr, path: &str, timeout: Duration) -> bool {
    let url = format!("http://{addr}{path}");
    match http.get(url).timeout(timeout).send().await {
        Ok(resp) => resp.status().is_success(),
        Err(_) => false,
    }
}

async fn check_set(
    shared: &Shared,
    http: &reqwest::Client,
    tenant: &Tenant,
    set: &Upstreams,
    kind: &str,
) {
    let hc = &tenant.cfg.health_check;
    let results = futures_util::future::join_all(
        set.all()
            .iter()
            .map(|&addr| async move { (addr, check(http, addr, &hc.path, hc.timeout).await) }),
    )
    .await;
    for (addr, ok) in results {
        if let Some(up) = set.report(addr, ok, hc.rise, hc.fall) {
            if up {
                log::info!(
                    "tenant {}: {kind} upstream {addr} back in rotation",
                    tenant.name()
                );
            } else {
                log::warn!(
                    "tenant {}: {kind} upstream {addr} out of rotation (health check failed)",
                    tenant.name()
                );
            }
        }
        let addr = addr.to_string();
        shared
            .metrics
            .upstream_up
            .with_label_values(&[tenant.name(), kind, &addr])
            .set(i64::from(
                set.is_up(addr.parse().unwrap_or(([0, 0, 0, 0], 0).into())),
            ));
    }
}

#[async_trait]
impl BackgroundService for HealthChecker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .unwrap_or_default();
        // When each tenant of the current generation was last checked, and its round of checks
        // while it runs: each tenant is checked on its own task, so that one whose upstreams
        // hang until the timeout does not hold up the others' checks.
        let mut last: HashMap<String, Instant> = HashMap::new();
        let mut running: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
        let mut generation: Option<Arc<Runtime>> = None;
        loop {
            let rt = self.shared.runtime.load_full();
            if !generation.as_ref().is_some_and(|g| Arc::ptr_eq(g, &rt)) {
                // A reload built new upstream sets (kept addresses keep their state, new ones
                // start in rotation): check them at once.
                last.clear();
                generation = Some(rt.clone());
            }
            for tenant in &rt.tenants {
                let interval = tenant.cfg.health_check.interval;
                if interval.is_zero() {
                    continue;
                }
                let due = last
                    .get(tenant.name())
                    .is_none_or(|at| at.elapsed() >= interval);
                let busy = running
                    .get(tenant.name())
                    .is_some_and(|round| !round.is_finished());
                if !due || busy {
                    continue;
                }
                last.insert(tenant.name().to_owned(), Instant::now());
                let (shared, http, t) =
                    (Arc::clone(&self.shared), http.clone(), Arc::clone(tenant));
                let round = tokio::spawn(async move {
                    check_set(&shared, &http, &t, &t.upstreams, "http").await;
                    check_set(&shared, &http, &t, &t.ws_upstreams, "websocket").await;
                });
                running.insert(tenant.name().to_owned(), round);
            }
            running.retain(|_, round| !round.is_finished());
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => {
                    running.values().for_each(tokio::task::JoinHandle::abort);
                    return;
                }
            }
        }
    }
}
