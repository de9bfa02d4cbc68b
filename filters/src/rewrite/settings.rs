//! One tenant's resolved optimizer settings (issue 5): which rewrites run, with what limits.
//!
//! The YAML file has a global `optimizer:` section and a `tenants.X.optimizer:` section with
//! the same keys; the loader turns the global one into an [`Optimizer`] and each tenant's into
//! [`OptimizerOverrides`], and [`Optimizer::merged`] applies the latter key by key
//! (`max_limits` per method, `models` per model and method, `expand` per model, `limit_caps`
//! per route). The glue builds one [`OptimizerSet`] per configuration generation, shared by the
//! built-in filters, so that a reload changes every rewrite at once and a request in flight
//! keeps the settings it started with.
//!
//! The settings live here, beside the rewrites, rather than in the glue's config module: the
//! filters (limit caps, read batching, canonical domains, `exclude_binary`, field expansion)
//! need them as plain data, and the merge rule is policy worth unit-testing without a YAML
//! file.

use std::collections::{BTreeMap, HashMap};

use super::filter::CapRoutes;
use super::limits::LimitCaps;

/// What canonical domains (odoo-protocol.md §6, [`crate::domain::canonicalise`]) are used for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DomainMode {
    /// Not at all: cache keys use the domain as sent, and it is forwarded as sent.
    Off,
    /// Cache keys only: equivalent searches share cache entries; Odoo gets the domain as sent.
    Key,
    /// Cache keys, and the canonical domain is what Odoo gets (the default): the call Odoo
    /// sees is the one the cache stored it under.
    #[default]
    Forward,
}

impl DomainMode {
    /// The YAML spelling (`off`, `key`, `forward`).
    pub fn as_str(self) -> &'static str {
        match self {
            DomainMode::Off => "off",
            DomainMode::Key => "key",
            DomainMode::Forward => "forward",
        }
    }

    /// Parses the YAML spelling.
    pub fn from_name(name: &str) -> Option<DomainMode> {
        match name {
            "off" => Some(DomainMode::Off),
            "key" => Some(DomainMode::Key),
            "forward" => Some(DomainMode::Forward),
            _ => None,
        }
    }

    /// Whether cache keys use the canonical domain.
    pub fn keys(self) -> bool {
        self != DomainMode::Off
    }
}

/// Which columns a `read`/`search_read` without `fields` gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DefaultFields {
    /// Every column, binaries included: what Odoo does (the default).
    #[default]
    All,
    /// The model's stored, non-binary fields the caller may read (issue 5 item 4): images and
    /// attachments stay out of wide reads unless asked for by name.
    ExcludeBinary,
}

impl DefaultFields {
    /// The YAML spelling (`all`, `exclude_binary`).
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultFields::All => "all",
            DefaultFields::ExcludeBinary => "exclude_binary",
        }
    }

    /// Parses the YAML spelling.
    pub fn from_name(name: &str) -> Option<DefaultFields> {
        match name {
            "all" => Some(DefaultFields::All),
            "exclude_binary" => Some(DefaultFields::ExcludeBinary),
            _ => None,
        }
    }
}

/// The default of [`Optimizer::read_concurrency`].
pub const DEFAULT_READ_CONCURRENCY: usize = 4;

/// The largest [`Optimizer::read_concurrency`] the loader accepts.
pub const MAX_READ_CONCURRENCY: usize = 64;

/// One tenant's resolved optimizer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Optimizer {
    /// Limit caps per method, with per-model overrides.
    pub caps: LimitCaps,
    /// The routes on which caps (and `read` batching) apply.
    pub cap_routes: CapRoutes,
    /// Canonical domains: off, cache keys only, or keys and forwarded.
    pub domains: DomainMode,
    /// Dotted field names (`partner_id.name`) in `read`/`search_read`/`web_search_read` are
    /// expanded by BridgeCore instead of reaching Odoo, which rejects them. Default true.
    pub expand_dotted: bool,
    /// Automatic expansion on `/api/v1`: model → relational field → sub-fields read for it.
    /// Default empty.
    pub expand: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// Columns of a read without `fields`.
    pub default_fields: DefaultFields,
    /// How many batches of one split `read` are in flight at once. Default 4.
    pub read_concurrency: usize,
}

impl Optimizer {
    /// Whether these settings rewrite nothing on any route: no caps, domains not forwarded,
    /// every column, no field expansion. With every tenant so, the glue leaves the built-in
    /// filters out of the chain: an empty chain costs nothing per call, where two filters that
    /// look and pass cost about a microsecond.
    pub fn is_inert(&self) -> bool {
        !(self.cap_routes.api || self.cap_routes.rpc || self.cap_routes.web)
            && self.domains != DomainMode::Forward
            && self.default_fields == DefaultFields::All
            && !self.expand_dotted
            && self.expand.is_empty()
    }
}

impl Default for Optimizer {
    /// No caps (the YAML loader supplies the default caps), caps on the API and RPC
    /// routes only, canonical domains forwarded, dotted fields expanded, no automatic
    /// expansion, every column, 4 batches in flight.
    fn default() -> Self {
        Optimizer {
            caps: LimitCaps::default(),
            cap_routes: CapRoutes::default(),
            domains: DomainMode::default(),
            expand_dotted: true,
            expand: BTreeMap::new(),
            default_fields: DefaultFields::default(),
            read_concurrency: DEFAULT_READ_CONCURRENCY,
        }
    }
}

/// `limit_caps:` of a tenant: `None` keeps the global setting of that route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapRoutesOverrides {
    /// `/api/v1`.
    pub api: Option<bool>,
    /// `/jsonrpc`, XML-RPC, `/json/2`.
    pub rpc: Option<bool>,
    /// The web client's cookie routes.
    pub web: Option<bool>,
}

/// A tenant's `optimizer:` section: every key optional, each one overriding the global value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptimizerOverrides {
    /// Per-method caps: `Some(n)` sets the cap, `None` removes the method's cap.
    pub max_limits: BTreeMap<String, Option<u64>>,
    /// Per model, per method: `Some(n)` a cap, `None` exempts the pair.
    pub models: BTreeMap<String, BTreeMap<String, Option<u64>>>,
    /// Per route.
    pub limit_caps: CapRoutesOverrides,
    /// `canonical_domains`.
    pub domains: Option<DomainMode>,
    /// `expand_dotted`.
    pub expand_dotted: Option<bool>,
    /// `expand`, per model: a model listed here replaces the global entry of that model (an
    /// empty field map removes it).
    pub expand: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// `default_fields`.
    pub default_fields: Option<DefaultFields>,
    /// `read_concurrency`.
    pub read_concurrency: Option<usize>,
}

impl OptimizerOverrides {
    /// Whether nothing is overridden (the tenant uses the global settings as they are).
    pub fn is_empty(&self) -> bool {
        self == &OptimizerOverrides::default()
    }
}

impl Optimizer {
    /// These settings with a tenant's overrides applied, key by key.
    pub fn merged(&self, o: &OptimizerOverrides) -> Optimizer {
        let mut out = self.clone();
        for (method, cap) in &o.max_limits {
            out.caps.set_method(method, *cap);
        }
        for (model, methods) in &o.models {
            for (method, cap) in methods {
                out.caps.set_model(model, method, *cap);
            }
        }
        let r = &o.limit_caps;
        out.cap_routes = CapRoutes {
            api: r.api.unwrap_or(self.cap_routes.api),
            rpc: r.rpc.unwrap_or(self.cap_routes.rpc),
            web: r.web.unwrap_or(self.cap_routes.web),
        };
        if let Some(d) = o.domains {
            out.domains = d;
        }
        if let Some(e) = o.expand_dotted {
            out.expand_dotted = e;
        }
        for (model, fields) in &o.expand {
            if fields.is_empty() {
                out.expand.remove(model);
            } else {
                out.expand.insert(model.clone(), fields.clone());
            }
        }
        if let Some(d) = o.default_fields {
            out.default_fields = d;
        }
        if let Some(n) = o.read_concurrency {
            out.read_concurrency = n.max(1);
        }
        out
    }
}

/// The settings of every tenant of one configuration generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptimizerSet {
    default: Optimizer,
    tenants: HashMap<String, Optimizer>,
}

impl OptimizerSet {
    /// Every tenant with `default` (the global `optimizer:` section).
    pub fn new(default: Optimizer) -> Self {
        OptimizerSet {
            default,
            tenants: HashMap::new(),
        }
    }

    /// Gives `tenant` the global settings with `overrides` applied (builder style). Empty
    /// overrides store nothing: the tenant reads the global settings.
    pub fn with_tenant(
        mut self,
        tenant: impl Into<String>,
        overrides: &OptimizerOverrides,
    ) -> Self {
        if !overrides.is_empty() {
            let merged = self.default.merged(overrides);
            self.tenants.insert(tenant.into(), merged);
        }
        self
    }

    /// Gives `tenant` exactly these settings (builder style).
    pub fn with_tenant_settings(mut self, tenant: impl Into<String>, settings: Optimizer) -> Self {
        self.tenants.insert(tenant.into(), settings);
        self
    }

    /// The settings of `tenant`: its own if it overrides anything, else the global ones.
    pub fn for_tenant(&self, tenant: &str) -> &Optimizer {
        self.tenants.get(tenant).unwrap_or(&self.default)
    }

    /// The global settings.
    pub fn global(&self) -> &Optimizer {
        &self.default
    }

    /// Whether no tenant's settings rewrite anything (see [`Optimizer::is_inert`]).
    pub fn is_inert(&self) -> bool {
        self.default.is_inert() && self.tenants.values().all(Optimizer::is_inert)
    }
}
