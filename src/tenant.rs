//! A tenant at run time: its upstream sets, its concurrency bound and its internal Odoo client.
//!
//! Built from [`TenantConfig`] whenever a configuration is loaded. Requests in flight keep the
//! `Arc<Tenant>` they started with, so a reload never changes the upstream under a request.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::TenantConfig;
use crate::metrics::{Metrics, TenantMetrics};
use crate::odoo_client::HttpOdooClient;

/// Why a tenant could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// An upstream address did not resolve.
    #[error("tenant `{tenant}`: upstream `{addr}` does not resolve: {reason}")]
    Resolve {
        /// The tenant.
        tenant: String,
        /// The address as configured.
        addr: String,
        /// What the resolver said.
        reason: String,
    },
    /// The internal HTTP client could not be built.
    #[error("tenant `{tenant}`: {reason}")]
    Client {
        /// The tenant.
        tenant: String,
        /// Why.
        reason: String,
    },
}

/// A round-robin set of upstream addresses, resolved once when the configuration is loaded
/// (never on the request path: name resolution blocks).
#[derive(Debug)]
pub struct Upstreams {
    addrs: Vec<SocketAddr>,
    next: AtomicUsize,
}

impl Upstreams {
    fn resolve(tenant: &str, list: &[String]) -> Result<Self, TenantError> {
        let mut addrs = Vec::with_capacity(list.len());
        for entry in list {
            let resolved = entry
                .to_socket_addrs()
                .map_err(|e| TenantError::Resolve {
                    tenant: tenant.to_string(),
                    addr: entry.clone(),
                    reason: e.to_string(),
                })?
                .next()
                .ok_or_else(|| TenantError::Resolve {
                    tenant: tenant.to_string(),
                    addr: entry.clone(),
                    reason: "no address".into(),
                })?;
            addrs.push(resolved);
        }
        Ok(Upstreams {
            addrs,
            next: AtomicUsize::new(0),
        })
    }

    /// The next upstream in turn.
    pub fn pick(&self) -> Option<SocketAddr> {
        if self.addrs.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.addrs.len();
        Some(self.addrs[i])
    }

    /// Every upstream address.
    pub fn all(&self) -> &[SocketAddr] {
        &self.addrs
    }
}

/// One Odoo instance BridgeCore serves.
pub struct Tenant {
    /// The tenant's configuration.
    pub cfg: TenantConfig,
    /// Where ordinary requests go.
    pub upstreams: Upstreams,
    /// Where `/websocket` and `/longpolling` go (Odoo's gevent port).
    pub ws_upstreams: Upstreams,
    /// The concurrency bound on requests to Odoo (`max_connections`); `/websocket` is not
    /// counted. Shared with the internal Odoo client.
    slots: Arc<Semaphore>,
    /// BridgeCore's own client for this tenant (filters' calls).
    pub odoo: Arc<HttpOdooClient>,
    /// The tenant's metric handles.
    pub metrics: TenantMetrics,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("name", &self.cfg.name)
            .finish()
    }
}

impl Tenant {
    /// Builds a tenant, resolving its upstream addresses.
    pub fn new(cfg: TenantConfig, metrics: &Metrics) -> Result<Arc<Self>, TenantError> {
        let upstreams = Upstreams::resolve(&cfg.name, &cfg.upstream)?;
        let ws_upstreams = Upstreams::resolve(&cfg.name, &cfg.websocket_upstream)?;
        let slots = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
        let metrics = metrics.tenant(&cfg.name);
        let http = HttpOdooClient::http_client(&cfg).map_err(|e| TenantError::Client {
            tenant: cfg.name.clone(),
            reason: e.to_string(),
        })?;
        Ok(Arc::new_cyclic(|weak| {
            let odoo = HttpOdooClient::new(weak.clone(), http);
            Tenant {
                upstreams,
                ws_upstreams,
                slots,
                odoo: Arc::new(odoo),
                metrics,
                cfg,
            }
        }))
    }

    /// The tenant's name (`tenants.<name>`).
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Waits for a free slot under `max_connections`, at most `connect_timeout`. `None` means
    /// the tenant stayed saturated: the caller answers 503.
    pub async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Some(permit);
        }
        let wait = self.cfg.connect_timeout.max(Duration::from_millis(1));
        match tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Some(permit),
            _ => None,
        }
    }

    /// Requests to Odoo in flight now.
    pub fn in_flight(&self) -> usize {
        self.cfg.max_connections.max(1) - self.slots.available_permits()
    }
}
