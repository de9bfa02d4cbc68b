//! One loaded configuration, ready to serve: tenants built, routes indexed, the filter chain
//! assembled. BridgeCore keeps the current one behind an `ArcSwap`; a reload builds a new one
//! beside it and swaps it in, and requests in flight finish on the one they started with.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use bridgecore_filters::encoding::Enabled;
use bridgecore_filters::{Chain, Filter};
use ipnet::IpNet;

use crate::config::Config;
use crate::metrics::{CallMetrics, Metrics};
use bridgecore_filters::expand::ExpandFilter;
use bridgecore_filters::rate_limit::{CategoryRates, RateLimitError, RateLimitPolicy};
use bridgecore_filters::rewrite::{FieldsCatalog, OptimizerFilter, OptimizerSet};
use bridgecore_filters::Category;

use crate::tenant::{Tenant, TenantError};
use crate::tokens::{Tokens, TokensError};

/// Where a request goes, decided from its path and `Host` before anything else.
#[derive(Debug, Clone)]
pub enum Route {
    /// `/api/v1/systems/{id}/...`, `/api/v1/auth/...`, `/api/v1/ws...`: answered by BridgeCore.
    /// `tenant` is `None` for the paths that name no tenant (auth, ws).
    Own {
        /// The tenant named in the path, if any.
        tenant: Option<Arc<Tenant>>,
    },
    /// `/api/v1/systems/{id}/...` for an id that is not configured.
    UnknownSystem,
    /// An Odoo request for this tenant.
    Odoo(Arc<Tenant>),
    /// No tenant matches the `Host` and there is more than one tenant.
    NoTenant,
}

/// Why a configuration generation could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A tenant could not be built (an upstream that does not resolve, ...).
    #[error(transparent)]
    Tenant(#[from] TenantError),
    /// The JWT keys could not be loaded.
    #[error(transparent)]
    Tokens(#[from] TokensError),
    /// The rate limits are unusable.
    #[error("rate_limits: {0}")]
    RateLimits(#[from] RateLimitError),
}

/// A configuration generation.
pub struct Runtime {
    /// The configuration it was built from.
    pub config: Arc<Config>,
    /// Tenants in file order.
    pub tenants: Vec<Arc<Tenant>>,
    /// foldhash, not SipHash: the keys are the config's host names (a client can only look
    /// names up, not add colliding ones), and the lookup runs on every request.
    by_host: HashMap<String, usize, foldhash::fast::RandomState>,
    by_name: HashMap<String, usize>,
    /// The filter chain, built-ins from the configuration followed by the embedder's filters.
    pub chain: Chain,
    /// Which response codings are on.
    pub codings: Enabled,
    /// BridgeCore's tokens; `None` when JWT auth is off.
    pub tokens: Option<Tokens>,
    /// Per-category rates, per tenant.
    pub limits: RateLimitPolicy,
    /// The optimizer settings of every tenant (issue 5), shared by the built-in filters.
    pub optimizer: Arc<OptimizerSet>,
    /// `fields_get` answers per tenant, model and credential, for this generation.
    pub fields: Arc<FieldsCatalog>,
    /// Per-model call counters of each tenant, by the tenant's address (its `Arc` is held by
    /// `tenants` for as long as this generation lives): a hash of one word per call.
    calls: HashMap<usize, CallMetrics, foldhash::fast::RandomState>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("tenants", &self.tenants)
            .field("chain", &self.chain)
            .finish()
    }
}

impl Runtime {
    /// Builds a generation from a validated configuration plus the embedder's extra filters.
    pub fn build(
        config: Config,
        extra_filters: &[Arc<dyn Filter>],
        metrics: &Metrics,
        previous: Option<&Runtime>,
    ) -> Result<Self, RuntimeError> {
        let mut tenants = Vec::with_capacity(config.tenants.len());
        let mut by_host = HashMap::default();
        let mut by_name = HashMap::new();
        for (i, t) in config.tenants.iter().enumerate() {
            for h in &t.hosts {
                by_host.insert(h.to_ascii_lowercase(), i);
            }
            by_name.insert(t.name.clone(), i);
            tenants.push(Tenant::new(
                t.clone(),
                metrics,
                previous.and_then(|p| p.tenant(&t.name)).map(|p| &**p),
            )?);
        }
        // One set of optimizer settings and one `fields_get` catalog per generation: a reload
        // changes every rewrite at once and starts with no field lists remembered.
        let mut optimizer = OptimizerSet::new(config.optimizer.optimizer());
        for t in &config.tenants {
            optimizer = optimizer.with_tenant(t.name.clone(), &t.optimizer);
        }
        let optimizer = Arc::new(optimizer);
        let fields = Arc::new(FieldsCatalog::default());
        let mut chain = Chain::default();
        // Both or neither: the optimizer also renders the expansion's rewrite tag.
        if !optimizer.is_inert() {
            chain.push(Arc::new(OptimizerFilter::new(
                optimizer.clone(),
                fields.clone(),
            )));
            // Field expansion after the optimizer: it runs the call as caps and domains left it.
            chain.push(Arc::new(ExpandFilter::new(
                optimizer.clone(),
                fields.clone(),
            )));
        }
        for f in extra_filters {
            chain.push(f.clone());
        }
        let codings = Enabled {
            gzip: config.compression.gzip,
            brotli: config.compression.brotli,
            zstd: config.compression.zstd,
        };
        let tokens = Tokens::build(&config.auth.jwt, previous.and_then(|p| p.tokens.as_ref()))?;
        let r = &config.rate_limits;
        let mut limits = RateLimitPolicy::new(CategoryRates {
            auth: r.auth,
            read: r.read,
            write: r.write,
            delete: r.delete,
        })?;
        for t in &config.tenants {
            let o = &t.rate_limits;
            let overrides: Vec<(Category, _)> = [
                (Category::Auth, o.auth),
                (Category::Read, o.read),
                (Category::Write, o.write),
                (Category::Delete, o.delete),
            ]
            .into_iter()
            .filter_map(|(c, r)| r.map(|r| (c, r)))
            .collect();
            if !overrides.is_empty() {
                limits = limits.with_tenant(t.name.clone(), &overrides)?;
            }
        }
        let calls = tenants
            .iter()
            .zip(&config.tenants)
            .map(|(t, c)| (Arc::as_ptr(t) as usize, metrics.calls(&config, c)))
            .collect();
        Ok(Runtime {
            optimizer,
            fields,
            tokens,
            limits,
            config: Arc::new(config),
            tenants,
            by_host,
            by_name,
            chain,
            codings,
            calls,
        })
    }

    /// `tenant`'s per-model call counters (`None` for a tenant of another generation).
    pub fn calls(&self, tenant: &Arc<Tenant>) -> Option<&CallMetrics> {
        self.calls.get(&(Arc::as_ptr(tenant) as usize))
    }

    /// A tenant by name.
    pub fn tenant(&self, name: &str) -> Option<&Arc<Tenant>> {
        self.by_name.get(name).map(|&i| &self.tenants[i])
    }

    /// Routes a request (design.md §4 Routing): `/api/v1/systems/{id}/...` by id, then the
    /// `Host` header (port ignored, case-insensitive), then the only tenant if there is one.
    pub fn route(&self, host: Option<&str>, path: &str) -> Route {
        if let Some(rest) = path.strip_prefix("/api/v1/") {
            if let Some(sys) = rest.strip_prefix("systems/") {
                let id = sys.split('/').next().unwrap_or("");
                return match self.tenant(id) {
                    Some(t) => Route::Own {
                        tenant: Some(t.clone()),
                    },
                    None => Route::UnknownSystem,
                };
            }
            if rest.starts_with("auth/") || rest == "ws" || rest.starts_with("ws/") {
                return Route::Own { tenant: None };
            }
        }
        if let Some(h) = host {
            let name = strip_port(h);
            let idx = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                self.by_host.get(&name.to_ascii_lowercase())
            } else {
                self.by_host.get(name)
            };
            if let Some(&i) = idx {
                return Route::Odoo(self.tenants[i].clone());
            }
        }
        match self.tenants.as_slice() {
            [only] => Route::Odoo(only.clone()),
            _ => Route::NoTenant,
        }
    }

    /// Whether `ip` is never rate-limited (`rate_limits.exempt`).
    pub fn exempt(&self, ip: IpAddr) -> bool {
        trusted(&self.config.rate_limits.exempt, ip)
    }

    /// Whether `ip` is a trusted proxy whose `X-Forwarded-For` is believed.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        trusted(&self.config.server.trusted_proxies, ip)
    }
}

fn trusted(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    nets.iter().any(|n| n.contains(&ip))
}

/// `host:port`, `[v6]:port` or `host` → the host part.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_generation_has_its_own_optimizer_settings_and_field_lists() {
        use bridgecore_filters::rewrite::DefaultFields;
        let text = "optimizer: {read_concurrency: 3}\ntenants:\n  a:\n    upstream: [\"127.0.0.1:1\"]\n    optimizer: {default_fields: exclude_binary}\n  b:\n    upstream: [\"127.0.0.1:1\"]\n";
        let config = Config::from_yaml(text, "t.yaml").unwrap();
        let metrics = Metrics::new().unwrap();
        let first = Runtime::build(config.clone(), &[], &metrics, None).unwrap();
        let a = first.optimizer.for_tenant("a");
        assert_eq!(a.default_fields, DefaultFields::ExcludeBinary);
        assert_eq!(a.read_concurrency, 3);
        assert_eq!(
            first.optimizer.for_tenant("b").default_fields,
            DefaultFields::All
        );
        assert!(first.chain.names().contains(&"optimizer"));
        // A reload starts with an empty `fields_get` catalog.
        let second = Runtime::build(config, &[], &metrics, Some(&first)).unwrap();
        assert!(!Arc::ptr_eq(&first.fields, &second.fields));
    }

    #[test]
    fn an_optimizer_that_rewrites_nothing_leaves_the_chain_empty() {
        let off = "optimizer:\n  limit_caps: {api: false, rpc: false, web: false}\n  canonical_domains: key\n  expand_dotted: false\n";
        let metrics = Metrics::new().unwrap();
        let build = |tenant_extra: &str| {
            let text =
                format!("{off}tenants:\n  a:\n    upstream: [\"127.0.0.1:1\"]\n{tenant_extra}");
            let config = Config::from_yaml(&text, "t.yaml").unwrap();
            Runtime::build(config, &[], &metrics, None).unwrap()
        };
        assert!(build("").chain.is_empty());
        // One tenant turning one rewrite back on brings both built-ins back.
        let on = build("    optimizer: {limit_caps: {rpc: true}}\n");
        assert_eq!(on.chain.names(), vec!["optimizer", "expand"]);
        let on = build("    optimizer: {expand_dotted: true}\n");
        assert_eq!(on.chain.names(), vec!["optimizer", "expand"]);
    }

    #[test]
    fn ports_are_ignored_in_host() {
        assert_eq!(strip_port("erp.example.com:8080"), "erp.example.com");
        assert_eq!(strip_port("erp.example.com"), "erp.example.com");
        assert_eq!(strip_port("[::1]:8080"), "::1");
    }

    #[test]
    fn trusted_nets_match_v4_mapped() {
        let nets: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(trusted(&nets, "10.1.2.3".parse().unwrap()));
        assert!(trusted(&nets, "::ffff:10.1.2.3".parse().unwrap()));
        assert!(!trusted(&nets, "11.1.2.3".parse().unwrap()));
    }
}
