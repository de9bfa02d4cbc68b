//! The response cache: Odoo-aware, per-caller, invalidated by generations (design.md §5).
//!
//! It sits at the end of the request chain (after auth, limits and rewrites, so it keys on the
//! call as Odoo will see it) and needs the answer's body on the way back, which the public
//! `Filter` trait does not expose; so the glue (`proxy.rs`, `api/call.rs`) calls it directly:
//!
//! 1. [`Cache::plan`] decides whether a call may be cached and computes its key;
//! 2. [`Cache::lookup`] reads the generations, then the stores: a fresh entry made under the
//!    current generations is a hit; otherwise the miss joins the key's flight (one upstream
//!    call per key at a time);
//! 3. [`Cache::complete`] stores a good answer, if the generations did not move meanwhile,
//!    and hands it to the waiting followers;
//! 4. [`Cache::invalidate`] bumps what a forwarded write may have changed, before its answer
//!    reaches the client.
//!
//! A cache problem (Redis down or slow, a full store, garbage in Redis) only ever costs a trip
//! to Odoo: every failure is a BYPASS.

pub mod flight;
pub mod gens;
pub mod learn;
pub mod store;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bridgecore_filters::cache::body::{jsonrpc_result, Bodies, Codings, Envelope};
use bridgecore_filters::cache::graph::{Affected, DepGraph};
use bridgecore_filters::cache::key::{CacheKey, Identity};
use bridgecore_filters::{Call, Class, Shape};
use bytes::Bytes;
use serde_json::Value;

use crate::config::{CacheBackend, CacheConfig, Invalidation};
use crate::metrics::Metrics;
use crate::redis_conn::RedisConn;
use flight::{Flights, Leader, Role};
use gens::{Bump, Gens, LocalGens, RedisGens, Snapshot};
use store::{now_ms, Entry, MemoryStore, RedisStore};

/// `X-Cache` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Answered from the cache.
    Hit,
    /// Asked Odoo; stored if the answer was good.
    Miss,
    /// Not cacheable, or the cache could not be used.
    Bypass,
    /// Odoo failed; an expired entry was served.
    Stale,
}

impl Status {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Hit => "HIT",
            Status::Miss => "MISS",
            Status::Bypass => "BYPASS",
            Status::Stale => "STALE",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Status::Hit => "hit",
            Status::Miss => "miss",
            Status::Bypass => "bypass",
            Status::Stale => "stale",
        }
    }
}

/// A cacheable call: its key and what storing it needs.
#[derive(Debug, Clone)]
pub struct Plan {
    key: CacheKey,
    /// The key by the request's own argument bytes, when it has them.
    bytes_key: Option<CacheKey>,
    identity: Option<Identity>,
    /// On a shared model, whose key leaves the caller out: the caller, and its identity
    /// counter when Odoo last answered it within the TTL (see [`Cache::plan`]).
    shared_for: Option<(Identity, Option<u64>)>,
    model: String,
    ttl: Duration,
    stale: Duration,
    envelope: Envelope,
}

/// A miss on its way to Odoo.
#[derive(Debug)]
pub struct Pending {
    plan: Plan,
    snapshot: Snapshot,
    leader: Option<Leader>,
    /// An expired entry still within `stale_if_error`, for when Odoo fails.
    pub stale: Option<Arc<Entry>>,
    /// A shared model's caller Odoo has not answered lately, and its identity counter: a good
    /// answer vouches for it.
    vouch: Option<u64>,
}

impl Pending {
    /// The largest answer worth collecting.
    pub fn envelope(&self) -> Envelope {
        self.plan.envelope
    }
}

/// What [`Cache::lookup`] found.
pub enum Lookup {
    /// A fresh entry.
    Hit(Arc<Entry>),
    /// Go to Odoo; complete the pending miss with the answer.
    Miss(Box<Pending>),
    /// Go to Odoo; do not store.
    Bypass,
}

/// Per-tenant bookkeeping for the stats endpoint.
#[derive(Default)]
struct TenantBook {
    entries: i64,
    bytes: i64,
    evictions: u64,
    invalidations: u64,
    /// Hits per model.
    models: HashMap<String, u64>,
}

/// The most models tracked per tenant for "top models".
const MAX_TRACKED_MODELS: usize = 256;
/// Answers larger than this are compressed off the async runtime.
const BLOCKING_BUILD: usize = 64 * 1024;
/// Callers remembered as answered by Odoo at most; past it the list starts again (each caller
/// then pays one more trip to Odoo before it shares entries again).
const MAX_VOUCHED: usize = 100_000;

/// A caller Odoo answered a cacheable read for: when, on which tenant, and the caller's
/// identity counter then (a logout on any instance moves it).
struct Vouch {
    tenant: Box<str>,
    at: Instant,
    gen: u64,
}

/// The process-wide cache: stores, generations, flights and learned graphs. Survives reloads;
/// the settings come from each request's configuration.
pub struct Cache {
    gens: Gens,
    memory: MemoryStore,
    redis: Option<RedisStore>,
    flights: Arc<Flights>,
    secret: Vec<u8>,
    graphs: RwLock<HashMap<String, Arc<DepGraph>>>,
    books: Mutex<HashMap<String, TenantBook>>,
    metrics: Arc<Metrics>,
    codings: Codings,
    level: u32,
    /// Callers whose credential Odoo accepted lately: only they are served a shared model's
    /// entries (a wrong password or a dead session must not read what Odoo would refuse it).
    vouched: RwLock<HashMap<Identity, Vouch>>,
}

impl Cache {
    /// The cache of a process started with `cfg`. `redis` (the `redis:` section) holds the
    /// generations whenever it is configured, so that instances sharing it see each other's
    /// writes even with in-memory entries.
    pub fn new(
        cfg: &CacheConfig,
        redis: Option<Arc<RedisConn>>,
        metrics: Arc<Metrics>,
        codings: Codings,
        level: u32,
    ) -> Cache {
        let secret = match &cfg.key_secret {
            Some(s) => s.as_bytes().to_vec(),
            None => uuid::Uuid::new_v4().as_bytes().to_vec(),
        };
        let gens = match &redis {
            Some(conn) => Gens::Redis(RedisGens::new(Arc::clone(conn))),
            None => Gens::Local(LocalGens::default()),
        };
        let redis_store = match (&cfg.backend, redis) {
            (CacheBackend::Redis, Some(conn)) => Some(RedisStore::new(conn)),
            _ => None,
        };
        Cache {
            gens,
            memory: MemoryStore::new(cfg.max_memory),
            redis: redis_store,
            flights: Arc::new(Flights::default()),
            secret,
            graphs: RwLock::new(HashMap::new()),
            books: Mutex::new(HashMap::new()),
            metrics,
            codings,
            level,
            vouched: RwLock::new(HashMap::new()),
        }
    }

    /// The identity of a caller: a token caller's Odoo session, else the call's credential.
    pub fn identity(&self, call: &Call, odoo_session: Option<&str>) -> Option<Identity> {
        match odoo_session {
            Some(sid) => Identity::of_session(sid, &self.secret),
            None => Identity::of(&call.credential, &self.secret),
        }
    }

    /// The identity of an Odoo session (logout, `?debug=`).
    pub fn session_identity(&self, sid: &str) -> Option<Identity> {
        Identity::of_session(sid, &self.secret)
    }

    /// Whether `call` may be cached under `cfg`, and its key. `no_cache` is the request's
    /// `Cache-Control: no-cache|no-store`; searches are keyed on their canonical domain only
    /// when `canonical_domains` (the tenant's `optimizer.canonical_domains` is not `off`).
    pub fn plan(
        &self,
        cfg: &CacheConfig,
        tenant: &str,
        call: &Call,
        odoo_session: Option<&str>,
        no_cache: bool,
        canonical_domains: bool,
    ) -> Option<Plan> {
        if !cfg.enabled || no_cache || call.class() != Class::CacheableRead {
            return None;
        }
        let envelope = match call.shape {
            Shape::CallKw | Shape::JsonRpc => Envelope::JsonRpc,
            Shape::Json2 => Envelope::Bare,
            _ => return None,
        };
        let model = call.model.as_deref()?;
        let method = call.method.as_deref()?;
        let model_cfg = cfg.models.get(model).copied().unwrap_or_default();
        if !model_cfg.enabled || asks_for_live_data(call) {
            return None;
        }
        let ttl = model_cfg.ttl.unwrap_or_else(|| cfg.ttl.for_method(method));
        if ttl.is_zero() {
            return None;
        }
        let caller = self.identity(call, odoo_session)?;
        // A shared model's entries leave the caller out of their key, but are served only to a
        // caller Odoo answered within the TTL (its identity counter unmoved since, checked at
        // the lookup): a wrong password or a dead session must not read what Odoo would refuse
        // it. Anyone else goes to Odoo, and a good answer vouches for them (and refreshes the
        // entry).
        let (identity, shared_for) = match model_cfg.shared {
            true => (None, Some((caller, self.vouched_gen(tenant, &caller, ttl)))),
            false => (Some(caller), None),
        };
        let bytes_key = CacheKey::of_bytes(tenant, identity.as_ref(), call);
        // A call seen before is found by its bytes: no decoding of its arguments (the hit path
        // of the web client, which repeats the same bytes with a new id).
        let key = match bytes_key.and_then(|k| self.memory.alias(&k)) {
            Some(canonical) => canonical,
            None => CacheKey::of_with(tenant, identity.as_ref(), call, canonical_domains)?,
        };
        Some(Plan {
            key,
            bytes_key,
            identity,
            shared_for,
            model: model.to_owned(),
            ttl,
            stale: cfg.stale_if_error,
            envelope,
        })
    }

    /// Looks `plan` up (see the module docs). `lock_timeout` bounds a follower's wait.
    pub async fn lookup(&self, tenant: &str, plan: Plan, lock_timeout: Duration) -> Lookup {
        let caller = plan
            .identity
            .as_ref()
            .or(plan.shared_for.as_ref().map(|(c, _)| c));
        let snapshot = match self.gens.snapshot(tenant, &plan.model, caller).await {
            Ok(s) => s,
            Err(e) => {
                log::debug!("cache bypassed: {e}");
                return Lookup::Bypass;
            }
        };
        let Some((caller, vouched)) = &plan.shared_for else {
            return self.find(tenant, plan, snapshot, lock_timeout).await;
        };
        // Shared entries are made and checked without the caller's counter.
        let counter = snapshot.identity;
        let snapshot = Snapshot {
            identity: 0,
            ..snapshot
        };
        if *vouched != Some(counter) {
            // Not answered by Odoo lately, or its sessions ended since (a logout, here or
            // on another instance): Odoo decides, and nothing stale is served instead.
            if vouched.is_some() {
                self.unvouch(caller);
            }
            return Lookup::Miss(Box::new(Pending {
                plan,
                snapshot,
                leader: None,
                stale: None,
                vouch: Some(counter),
            }));
        }
        self.find(tenant, plan, snapshot, lock_timeout).await
    }

    /// The rest of [`Cache::lookup`], under the generations read.
    async fn find(
        &self,
        tenant: &str,
        plan: Plan,
        snapshot: Snapshot,
        lock_timeout: Duration,
    ) -> Lookup {
        let now = now_ms();
        let mut stale = None;
        let mut found = self
            .memory
            .get(&plan.key)
            .filter(|e| e.snapshot == snapshot);
        if found.as_ref().is_none_or(|e| !e.is_fresh(now)) {
            if let Some(redis) = &self.redis {
                match redis.get(&plan.key).await {
                    Ok(Some(e)) if e.snapshot == snapshot => {
                        let e = Arc::new(e);
                        if e.is_fresh(now) {
                            self.put_memory(Arc::clone(&e));
                        }
                        found = Some(e);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        log::debug!("cache bypassed: {e}");
                        return Lookup::Bypass;
                    }
                }
            }
        }
        if let Some(e) = found {
            if e.is_fresh(now) {
                if let Some(b) = plan.bytes_key {
                    self.memory.set_alias(b, plan.key);
                }
                self.count_hit(tenant, &e.model);
                return Lookup::Hit(e);
            }
            if now < e.stale_until {
                stale = Some(e);
            }
        }
        // A leader whose request ends without an entry (its client hung up, say) hands the
        // lead to one of its followers, which rejoin; the rest keep waiting. Bounded, so a key
        // whose answers are never storable costs at most a few rounds.
        let deadline = tokio::time::Instant::now() + lock_timeout;
        let mut leader = None;
        for _ in 0..8 {
            match self.flights.join(plan.key) {
                Role::Leader(l) => {
                    leader = Some(l);
                    break;
                }
                Role::Follower(rx) => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    match flight::follow(rx, left, &snapshot).await {
                        flight::Followed::Entry(e) => {
                            self.count_hit(tenant, &e.model);
                            return Lookup::Hit(e);
                        }
                        flight::Followed::Gone => continue,
                        // The leader's answer predates a write this read saw: ask Odoo.
                        flight::Followed::Outdated | flight::Followed::TimedOut => break,
                    }
                }
            }
        }
        Lookup::Miss(Box::new(Pending {
            plan,
            snapshot,
            leader,
            stale,
            vouch: None,
        }))
    }

    /// Ends a miss: `answer` is Odoo's body when it may be stored (status 200, no cookie, not
    /// encoded, within `max_entry_size`), `None` otherwise. Returns whether it was stored.
    pub async fn complete(&self, tenant: &str, pending: Pending, answer: Option<Bytes>) -> bool {
        let Some(answer) = answer else {
            return false;
        };
        let result = match pending.plan.envelope {
            Envelope::JsonRpc => match jsonrpc_result(&answer) {
                Ok(r) => Bytes::copy_from_slice(r),
                Err(_) => return false,
            },
            Envelope::Bare => {
                if serde_json::from_slice::<&serde_json::value::RawValue>(&answer).is_err() {
                    return false;
                }
                answer
            }
        };
        self.store(tenant, pending, result).await
    }

    /// Ends a miss whose result BridgeCore holds as JSON text (the `/api/v1` path, which got
    /// it through the internal client); `None` when there is nothing to store.
    pub async fn complete_result(
        &self,
        tenant: &str,
        pending: Pending,
        result: Option<Bytes>,
    ) -> bool {
        match result {
            Some(r) => self.store(tenant, pending, r).await,
            None => false,
        }
    }

    async fn store(&self, tenant: &str, pending: Pending, result: Bytes) -> bool {
        // Store only what no write overtook (design.md §5).
        match self
            .gens
            .snapshot(tenant, &pending.plan.model, pending.plan.identity.as_ref())
            .await
        {
            Ok(now) if now == pending.snapshot => {}
            _ => return false,
        }
        let (codings, level, envelope) = (self.codings, self.level, pending.plan.envelope);
        let bodies = if result.len() > BLOCKING_BUILD {
            match tokio::task::spawn_blocking(move || {
                Bodies::build(&result, envelope, codings, level)
            })
            .await
            {
                Ok(b) => b,
                Err(_) => return false,
            }
        } else {
            Bodies::build(&result, envelope, codings, level)
        };
        let (fresh_until, stale_until) = store::lifetime(pending.plan.ttl, pending.plan.stale);
        let entry = Arc::new(Entry {
            key: pending.plan.key,
            snapshot: pending.snapshot,
            fresh_until,
            stale_until,
            tenant: tenant.into(),
            model: pending.plan.model.as_str().into(),
            bodies,
        });
        // Odoo answered this caller's read, and no logout came between.
        match (
            &pending.plan.identity,
            &pending.plan.shared_for,
            pending.vouch,
        ) {
            (Some(caller), _, _) => self.vouch(tenant, caller, pending.snapshot.identity),
            (None, Some((caller, _)), Some(counter)) => self.vouch(tenant, caller, counter),
            _ => {}
        }
        if let Some(redis) = &self.redis {
            if let Err(e) = redis.put(&entry).await {
                log::debug!("cache entry not written to redis: {e}");
            }
        }
        self.put_memory(Arc::clone(&entry));
        if let Some(b) = pending.plan.bytes_key {
            self.memory.set_alias(b, pending.plan.key);
        }
        if let Some(leader) = pending.leader {
            leader.publish(entry);
        }
        true
    }

    /// The identity counter Odoo last answered `caller` under on `tenant`, if within `ttl`.
    fn vouched_gen(&self, tenant: &str, caller: &Identity, ttl: Duration) -> Option<u64> {
        let vouched = self.vouched.read().unwrap_or_else(|e| e.into_inner());
        vouched
            .get(caller)
            .filter(|v| &*v.tenant == tenant && v.at.elapsed() < ttl)
            .map(|v| v.gen)
    }

    fn vouch(&self, tenant: &str, caller: &Identity, gen: u64) {
        let mut vouched = self.vouched.write().unwrap_or_else(|e| e.into_inner());
        if vouched.len() >= MAX_VOUCHED && !vouched.contains_key(caller) {
            vouched.clear();
        }
        vouched.insert(
            *caller,
            Vouch {
                tenant: tenant.into(),
                at: Instant::now(),
                gen,
            },
        );
    }

    fn unvouch(&self, caller: &Identity) {
        let mut vouched = self.vouched.write().unwrap_or_else(|e| e.into_inner());
        vouched.remove(caller);
    }

    fn put_memory(&self, entry: Arc<Entry>) {
        let tenant = entry.tenant.clone();
        let weight = entry.weight() as i64;
        let out = self.memory.put(entry);
        let mut books = self
            .books
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut touched: Vec<Box<str>> = vec![tenant.clone()];
        if out.admitted {
            let b = books.entry(tenant.to_string()).or_default();
            b.entries += 1;
            b.bytes += weight;
        }
        if let Some(old) = &out.replaced {
            let b = books.entry(old.tenant.to_string()).or_default();
            b.entries -= 1;
            b.bytes -= old.weight() as i64;
        }
        for gone in &out.evicted {
            let b = books.entry(gone.tenant.to_string()).or_default();
            b.entries -= 1;
            b.bytes -= gone.weight() as i64;
            b.evictions += 1;
            self.metrics
                .cache_evictions
                .with_label_values(&[&*gone.tenant])
                .inc();
            if !touched.contains(&gone.tenant) {
                touched.push(gone.tenant.clone());
            }
        }
        for t in touched {
            if let Some(b) = books.get(&*t) {
                self.metrics
                    .cache_entries
                    .with_label_values(&[&*t])
                    .set(b.entries.max(0));
                self.metrics
                    .cache_bytes
                    .with_label_values(&[&*t])
                    .set(b.bytes.max(0));
            }
        }
    }

    fn count_hit(&self, tenant: &str, model: &str) {
        let mut books = self
            .books
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let b = match books.get_mut(tenant) {
            Some(b) => b,
            None => books.entry(tenant.to_owned()).or_default(),
        };
        if let Some(n) = b.models.get_mut(model) {
            *n += 1;
        } else if b.models.len() < MAX_TRACKED_MODELS {
            b.models.insert(model.to_owned(), 1);
        }
    }

    /// Counts one JSON-RPC answer's cache status.
    pub fn count(&self, tenant: &str, status: Status) {
        self.metrics
            .cache_requests
            .with_label_values(&[tenant, status.label()])
            .inc();
    }

    /// Bumps what a forwarded write may have changed (see `cache.invalidation`). `call` is the
    /// parsed call, `None` for a write BridgeCore could not parse; `route` names it for the
    /// unknown-route metric.
    pub async fn invalidate(
        &self,
        cfg: &CacheConfig,
        tenant: &str,
        call: Option<&Call>,
        route: &str,
    ) {
        let model = call.and_then(|c| c.model.as_deref());
        let method = call.and_then(|c| c.method.as_deref());
        let affected = match (cfg.invalidation, model) {
            (_, None) => {
                self.metrics
                    .cache_unknown_writes
                    .with_label_values(&[tenant, bounded_route(route)])
                    .inc();
                Affected::Tenant
            }
            (Invalidation::Tenant, _) => Affected::Tenant,
            (Invalidation::Model, Some(m)) => Affected::Models(vec![m.to_owned()]),
            (Invalidation::Graph, Some(m)) => {
                let crud = call.is_some_and(|c| c.shape != Shape::CallButton)
                    && method.is_some_and(is_crud);
                match (crud, self.graph(tenant)) {
                    (true, Some(g)) => affected_by_crud(&g, m, call.and_then(values_of)),
                    _ => Affected::Tenant,
                }
            }
        };
        let (bump, scope) = match &affected {
            Affected::Tenant => (Bump::Tenant, "tenant"),
            Affected::Models(ms) => (Bump::Models(ms), "model"),
        };
        if let Err(e) = self.gens.bump(tenant, bump).await {
            log::warn!("cache invalidation for tenant {tenant} did not reach redis ({e}); the tenant is flushed when redis is back");
        }
        self.note_invalidation(tenant, scope);
    }

    /// Ends one caller's entries (logout, `?debug=` switches).
    pub async fn end_identity(&self, tenant: &str, identity: &Identity) {
        self.unvouch(identity);
        if let Err(e) = self.gens.bump(tenant, Bump::Identity(identity)).await {
            log::warn!("cache: ending a session's entries did not reach redis: {e}");
        }
        self.note_invalidation(tenant, "identity");
    }

    /// `DELETE .../cache/clear[?model=]`: every instance sharing the generations forgets.
    pub async fn clear(&self, tenant: &str, model: Option<&str>) -> Result<(), gens::GenError> {
        let models;
        let bump = match model {
            Some(m) => {
                models = [m.to_owned()];
                Bump::Models(&models)
            }
            None => Bump::Tenant,
        };
        self.gens.bump(tenant, bump).await?;
        self.note_invalidation(tenant, "clear");
        Ok(())
    }

    fn note_invalidation(&self, tenant: &str, scope: &str) {
        self.metrics
            .cache_invalidations
            .with_label_values(&[tenant, scope])
            .inc();
        self.books
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(tenant.to_owned())
            .or_default()
            .invalidations += 1;
    }

    /// The learned dependency graph of `tenant`, if any.
    pub fn graph(&self, tenant: &str) -> Option<Arc<DepGraph>> {
        self.graphs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(tenant)
            .cloned()
    }

    /// Installs a newly learned graph.
    pub fn set_graph(&self, tenant: &str, graph: DepGraph) {
        self.graphs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(tenant.to_owned(), Arc::new(graph));
    }

    /// The `cache/stats` document of `tenant`.
    pub fn stats(&self, tenant: &str) -> Value {
        let count = |result: &str| {
            self.metrics
                .cache_requests
                .with_label_values(&[tenant, result])
                .get()
        };
        let (hits, misses, stale, bypass) =
            (count("hit"), count("miss"), count("stale"), count("bypass"));
        let books = self
            .books
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (entries, bytes, evictions, invalidations, mut top) = match books.get(tenant) {
            Some(b) => (
                b.entries.max(0),
                b.bytes.max(0),
                b.evictions,
                b.invalidations,
                b.models.iter().map(|(m, n)| (m.clone(), *n)).collect(),
            ),
            None => (0, 0, 0, 0, Vec::new()),
        };
        drop(books);
        top.sort_by(|a: &(String, u64), b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(10);
        let lookups = hits + misses;
        serde_json::json!({
            "tenant": tenant,
            "hits": hits,
            "misses": misses,
            "stale": stale,
            "bypass": bypass,
            "hit_ratio": if lookups == 0 { Value::Null } else { serde_json::json!(hits as f64 / lookups as f64) },
            "entries": entries,
            "bytes": bytes,
            "evictions": evictions,
            "invalidations": invalidations,
            "top_models": top.into_iter().map(|(m, n)| serde_json::json!({"model": m, "hits": n})).collect::<Vec<_>>(),
            "backend": if self.redis.is_some() { "redis" } else { "memory" },
            "graph_models": self.graph(tenant).map(|g| g.models()),
        })
    }

    /// The hit ratio of `tenant` since start (`None` before any lookup).
    pub fn hit_ratio(&self, tenant: &str) -> Option<f64> {
        let hits = self
            .metrics
            .cache_requests
            .with_label_values(&[tenant, "hit"])
            .get();
        let misses = self
            .metrics
            .cache_requests
            .with_label_values(&[tenant, "miss"])
            .get();
        (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64)
    }

    /// Memory-store totals (all tenants): entries, bytes.
    pub fn memory_usage(&self) -> (u64, u64) {
        (self.memory.entries(), self.memory.bytes())
    }
}

/// ORM methods whose effect is confined to the written model and its x2many children: the
/// graph can tell what they change. Every other method (business methods, buttons) may write
/// anything, so it flushes the tenant (odoo-protocol.md §3.3).
fn is_crud(method: &str) -> bool {
    matches!(
        method,
        "create"
            | "write"
            | "unlink"
            | "copy"
            | "name_create"
            | "web_save"
            | "toggle_active"
            | "action_archive"
            | "action_unarchive"
    )
}

/// What a CRUD call on `model` can change: the models its values (x2many commands, writable
/// related fields) or a cascade may write rows of, and everything that depends on any of them.
fn affected_by_crud(graph: &DepGraph, model: &str, vals: Option<&Value>) -> Affected {
    let written = vals
        .and_then(|v| graph.written_by_values(model, v))
        .unwrap_or_else(|| graph.written_by(model));
    let mut all = BTreeSet::new();
    for w in written {
        match graph.affected(&w) {
            Affected::Tenant => return Affected::Tenant,
            Affected::Models(ms) => all.extend(ms),
        }
    }
    if all.is_empty() {
        return Affected::Tenant;
    }
    Affected::Models(all.into_iter().collect())
}

/// The values a CRUD call writes, where the method takes them: `create(vals_list)`,
/// `write(ids, vals)`, `web_save(ids, vals)`, `name_create(name)` (none); `None` for the rest
/// (unlink, copy, archive: what they touch follows from the model alone).
fn values_of(call: &Call) -> Option<&Value> {
    let args = call.args();
    let kwargs = call.kwargs();
    match call.method.as_deref()? {
        "create" => args.first().or_else(|| kwargs.get("vals_list")),
        "write" | "web_save" => args.get(1).or_else(|| kwargs.get("vals")),
        _ => None,
    }
}

/// A bounded label for a write BridgeCore could not attribute to a model: its first two path
/// segments (`/web/dataset`, `/my/route`), numbers and long segments folded.
fn bounded_route(path: &str) -> &'static str {
    static SEEN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut it = path.split('/').filter(|s| !s.is_empty()).take(2);
    let label: String = match (it.next(), it.next()) {
        (Some(a), Some(b)) => format!("/{a}/{b}"),
        (Some(a), None) => format!("/{a}"),
        _ => "/".to_owned(),
    };
    let mut seen = SEEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(s) = seen.iter().find(|s| **s == label) {
        return s;
    }
    if seen.len() >= 64 || label.len() > 64 || label.bytes().any(|b| b.is_ascii_digit()) {
        return "other";
    }
    let leaked: &'static str = Box::leak(label.into_boxed_str());
    seen.push(leaked);
    leaked
}

/// Context flags that ask for live data: such calls are never stored or served from the cache.
fn asks_for_live_data(call: &Call) -> bool {
    // Most calls never mention the flag: their arguments need not be decoded to know it.
    if let Some((_, kwargs)) = call.raw_arguments() {
        if !kwargs.contains("no_cache") {
            return false;
        }
    }
    call.context().is_some_and(|ctx| {
        ["bridgecore_no_cache", "no_cache"]
            .iter()
            .any(|k| ctx.get(*k).is_some_and(truthy))
    })
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Null => false,
        _ => true,
    }
}

/// How often a tenant's dependency graph is learned again.
const RELEARN: Duration = Duration::from_secs(3600);
/// How soon a failed learning is retried.
const RELEARN_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// Learns each tenant's dependency graph (for `cache.invalidation: graph`) at start, after
/// every reload and hourly, with the tenant's service credentials. Until a tenant's graph is
/// known its writes flush the whole tenant.
pub struct GraphLearner {
    pub(crate) shared: Arc<crate::Shared>,
}

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for GraphLearner {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let mut due: HashMap<String, std::time::Instant> = HashMap::new();
        let mut generation: Option<Arc<crate::runtime::Runtime>> = None;
        loop {
            let rt = self.shared.runtime.load_full();
            if !generation.as_ref().is_some_and(|g| Arc::ptr_eq(g, &rt)) {
                due.clear();
                generation = Some(rt.clone());
            }
            let cfg = &rt.config.cache;
            for tenant in &rt.tenants {
                let c = &tenant.cfg;
                let (Some(db), Some(login), Some(password)) = (
                    c.database.as_deref(),
                    c.service_login.as_deref(),
                    c.service_password.as_deref(),
                ) else {
                    continue;
                };
                if !cfg.enabled || cfg.invalidation != Invalidation::Graph {
                    continue;
                }
                if due
                    .get(tenant.name())
                    .is_some_and(|at| std::time::Instant::now() < *at)
                {
                    continue;
                }
                let next = match learn::learn(tenant.odoo.as_ref(), db, login, password).await {
                    Ok(graph) => {
                        log::info!(
                            "tenant {}: cache dependency graph learned ({} models, {} edges)",
                            tenant.name(),
                            graph.models(),
                            graph.edges()
                        );
                        self.shared.cache.set_graph(tenant.name(), graph);
                        RELEARN
                    }
                    Err(e) => {
                        log::warn!(
                            "tenant {}: cannot learn the cache dependency graph ({e}); its writes flush the whole tenant's cache meanwhile",
                            tenant.name()
                        );
                        RELEARN_AFTER_FAILURE
                    }
                };
                due.insert(tenant.name().to_owned(), std::time::Instant::now() + next);
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bridgecore_filters::{jsonrpc, route};

    fn cache() -> Cache {
        let codings = Codings {
            gzip: false,
            brotli: false,
            zstd: false,
        };
        let metrics = Arc::new(Metrics::new().unwrap());
        Cache::new(&CacheConfig::default(), None, metrics, codings, 1)
    }

    fn call_kw(method: &str, args: &str) -> Call {
        let path = format!("/web/dataset/call_kw/res.partner/{method}");
        let (head, ()) = http::Request::post(path.as_str())
            .header("cookie", "session_id=s1")
            .body(())
            .unwrap()
            .into_parts();
        let body = format!(
            r#"{{"jsonrpc":"2.0","method":"call","id":1,"params":{{"model":"res.partner","method":"{method}","args":{args},"kwargs":{{}}}}}}"#
        );
        jsonrpc::parse(&route::endpoint(&path), &head, body.as_bytes()).unwrap()
    }

    /// The race of design.md §5 between a flight's leader and a write: the leader's store
    /// check passes, a write bumps, a read starts (and joins the flight), then the leader
    /// publishes its pre-write answer. That read must go to Odoo, not take the answer.
    #[tokio::test(flavor = "current_thread")]
    async fn a_read_that_started_after_a_write_never_gets_the_leaders_older_answer() {
        let cache = cache();
        let cfg = CacheConfig::default();
        let read = call_kw("read", "[[3]]");
        let plan = cache.plan(&cfg, "t", &read, None, false, true).unwrap();
        let wait = Duration::from_secs(5);

        // The leader misses and goes to Odoo; its store check passes (nothing moved yet).
        let Lookup::Miss(mut leader) = cache.lookup("t", plan.clone(), wait).await else {
            panic!("the first read misses")
        };
        let handle = leader.leader.take().expect("the first miss leads");
        let entry_snapshot = leader.snapshot;
        assert_eq!(
            cache
                .gens
                .snapshot("t", "res.partner", leader.plan.identity.as_ref())
                .await
                .unwrap(),
            entry_snapshot
        );
        // A write lands and bumps.
        let write = call_kw("write", r#"[[3], {"name": "New"}]"#);
        cache
            .invalidate(&cfg, "t", Some(&write), "/web/dataset/call_kw")
            .await;
        // A read starts after the write: it misses the stores and follows the leader.
        let follower = cache.lookup("t", plan.clone(), wait);
        let publish = async {
            while handle.followers() == 0 {
                tokio::task::yield_now().await;
            }
            // The leader publishes what it fetched before the write.
            let entry = Arc::new(Entry {
                key: leader.plan.key,
                snapshot: entry_snapshot,
                fresh_until: u64::MAX,
                stale_until: u64::MAX,
                tenant: "t".into(),
                model: "res.partner".into(),
                bodies: Bodies::build(
                    br#"[{"id":3,"name":"Old"}]"#,
                    Envelope::JsonRpc,
                    cache.codings,
                    1,
                ),
            });
            handle.publish(entry);
        };
        let (got, ()) = tokio::join!(follower, publish);
        match got {
            Lookup::Hit(e) => panic!("served the pre-write answer made under {:?}", e.snapshot),
            Lookup::Bypass => panic!("expected a miss"),
            Lookup::Miss(p) => {
                // It asks Odoo, and may store under what it saw (the post-write generations).
                assert_ne!(p.snapshot, entry_snapshot);
                assert!(p.snapshot.covers(&entry_snapshot));
            }
        }
        // Without the write, the same interleaving hands the leader's answer over.
        let Lookup::Miss(mut leader) = cache.lookup("t", plan.clone(), wait).await else {
            panic!("nothing was stored")
        };
        let handle = leader.leader.take().expect("leads again");
        let snapshot = leader.snapshot;
        let follower = cache.lookup("t", plan, wait);
        let publish = async {
            while handle.followers() == 0 {
                tokio::task::yield_now().await;
            }
            handle.publish(Arc::new(Entry {
                key: leader.plan.key,
                snapshot,
                fresh_until: u64::MAX,
                stale_until: u64::MAX,
                tenant: "t".into(),
                model: "res.partner".into(),
                bodies: Bodies::build(b"[]", Envelope::JsonRpc, cache.codings, 1),
            }));
        };
        let (got, ()) = tokio::join!(follower, publish);
        assert!(matches!(got, Lookup::Hit(_)));
    }
}
