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

/// Which of a tenant's upstream sets.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Http,
    Websocket,
}

impl Kind {
    fn set(self, tenant: &Tenant) -> &Upstreams {
        match self {
            Kind::Http => &tenant.upstreams,
            Kind::Websocket => &tenant.ws_upstreams,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Websocket => "websocket",
        }
    }
}

/// Checks one upstream and records the verdict (rotation, log, `bridgecore_upstream_up`).
async fn check_one(
    shared: &Shared,
    http: &reqwest::Client,
    tenant: &Tenant,
    kind: Kind,
    addr: SocketAddr,
) {
    let hc = &tenant.cfg.health_check;
    let set = kind.set(tenant);
    let ok = check(http, addr, &hc.path, hc.timeout).await;
    let what = kind.label();
    if let Some(up) = set.report(addr, ok, hc.rise, hc.fall) {
        if up {
            log::info!(
                "tenant {}: {what} upstream {addr} back in rotation",
                tenant.name()
            );
        } else {
            log::warn!(
                "tenant {}: {what} upstream {addr} out of rotation (health check failed)",
                tenant.name()
            );
        }
    }
    shared
        .metrics
        .upstream_up
        .with_label_values(&[tenant.name(), what, &addr.to_string()])
        .set(i64::from(set.is_up(addr)));
}

#[async_trait]
impl BackgroundService for HealthChecker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .unwrap_or_default();
        // When each upstream of the current generation was last checked, and its check while
        // it runs: each upstream is checked on its own task, so that one that hangs until the
        // timeout holds up no other's checks (its tenant's or another tenant's).
        type Key = (String, Kind, SocketAddr);
        let mut last: HashMap<Key, Instant> = HashMap::new();
        let mut running: HashMap<Key, tokio::task::JoinHandle<()>> = HashMap::new();
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
                for kind in [Kind::Http, Kind::Websocket] {
                    for &addr in kind.set(tenant).all() {
                        let key = (tenant.name().to_owned(), kind, addr);
                        let due = last.get(&key).is_none_or(|at| at.elapsed() >= interval);
                        let busy = running.get(&key).is_some_and(|c| !c.is_finished());
                        if !due || busy {
                            continue;
                        }
                        last.insert(key.clone(), Instant::now());
                        let (shared, http, t) =
                            (Arc::clone(&self.shared), http.clone(), Arc::clone(tenant));
                        let task = tokio::spawn(async move {
                            check_one(&shared, &http, &t, kind, addr).await;
                        });
                        running.insert(key, task);
                    }
                }
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
