//! Finds changes made directly in Odoo (its UI, crons, other clients) for subscribed models.
//!
//! Every instance with subscribers for a `(tenant, model)` runs a poller task for it; with
//! Redis, only the one holding the lease `bc:ws:lease:<tenant>:<model>` polls (the others wait
//! as standby and take over within a lease time if it goes away), so there is one poller per
//! key across all instances. Without Redis (or while it is down) each instance polls for itself
//! and delivers locally. Every `websocket.poll_interval` the holder, with the tenant's service
//! account:
//!
//! 1. asks for the records whose `write_date` is at least `cursor − poll_overlap`
//!    (odoo-protocol.md §8.5) and reports the `(id, write_date)` pairs it has not reported
//!    before ([`PollState`]), after a short grace period in which BridgeCore's own writes of
//!    those records (which it reads the `write_date` of when their events arrive) are taken
//!    out: a change through BridgeCore is reported once, with `source: "bridgecore"`;
//! 2. checks that the records listed by subscriptions (of every instance: each publishes its
//!    listed ids under `bc:ws:listed:…`) still exist (`exists`, which ignores record rules) and
//!    reports the missing ones as `unlink`.
//!
//! The state (cursor and reported pairs) is kept in Redis too, so a new holder continues where
//! the last one stopped. The first poll of a fresh state only takes a baseline: changes made
//! while nobody was subscribed are not reported. No subscribers, no polling: the task ends and
//! releases the lease.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bridgecore_filters::ws::poll::{rows, PollState, Polled};
use bridgecore_filters::ws::{Change, Changed, Operation, Source};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::odoo::{ServiceAccount, ServiceError};
use super::Key;
use crate::redis_conn::{RedisConn, KEY_PREFIX};
use crate::tenant::Tenant;
use crate::Shared;

/// Rows asked per poll query, and pages per tick.
const PAGE: usize = 500;
const MAX_PAGES: usize = 10;
/// How long a found change waits for BridgeCore's own event of it.
const GRACE: Duration = Duration::from_millis(500);
/// Timeout of the poller's Redis commands (not on any request's path).
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// Deleted ids remembered so each is reported once.
const MAX_GONE: usize = 100_000;

const STARTING: u8 = 0;
const STANDBY: u8 = 1;
const ACTIVE: u8 = 2;
const DISABLED: u8 = 3;
const FAILING: u8 = 4;

/// A running poller, as the hub sees it.
#[derive(Clone)]
pub(crate) struct Handle {
    tx: mpsc::Sender<Arc<Change>>,
    status: Arc<AtomicU8>,
}

impl Handle {
    /// Tells the poller about a change BridgeCore made (so it does not report it again).
    pub(crate) fn note_bridgecore(&self, change: Arc<Change>) {
        let _ = self.tx.try_send(change);
    }

    /// `starting`, `standby`, `active`, `disabled` (no service account) or `failing`.
    pub(crate) fn status(&self) -> &'static str {
        match self.status.load(Ordering::Relaxed) {
            STANDBY => "standby",
            ACTIVE => "active",
            DISABLED => "disabled",
            FAILING => "failing",
            _ => "starting",
        }
    }
}

fn lease_key(key: &Key) -> String {
    format!("{KEY_PREFIX}ws:lease:{}:{}", key.tenant, key.model)
}
fn state_key(key: &Key) -> String {
    format!("{KEY_PREFIX}ws:poll:{}:{}", key.tenant, key.model)
}
fn listers_key(key: &Key) -> String {
    format!("{KEY_PREFIX}ws:listers:{}:{}", key.tenant, key.model)
}
fn listed_key(key: &Key, instance: &str) -> String {
    format!(
        "{KEY_PREFIX}ws:listed:{}:{}:{instance}",
        key.tenant, key.model
    )
}

/// Take or keep the lease: 1 when this instance holds it now.
const HOLD_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"#;
/// Give the lease back if held.
const RELEASE_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

struct Poller {
    shared: Arc<Shared>,
    key: Key,
    status: Arc<AtomicU8>,
    redis: Option<Arc<RedisConn>>,
    state: Option<PollState>,
    /// Changes found, waiting out [`GRACE`].
    pending: Vec<Polled>,
    pending_until: Option<Instant>,
    /// Deleted ids already reported.
    gone: HashSet<i64>,
    account: Option<ServiceAccount>,
    holding: bool,
    warned: bool,
}

/// Runs the poller of `key` on this instance until it has no subscribers left.
pub(crate) async fn run(shared: Arc<Shared>, key: Key) {
    let (tx, mut rx) = mpsc::channel(1024);
    let status = Arc::new(AtomicU8::new(STARTING));
    if !shared.ws.add_poller(
        &key,
        Handle {
            tx,
            status: status.clone(),
        },
    ) {
        return;
    }
    let mut p = Poller {
        redis: shared.ws.redis.clone(),
        shared,
        key,
        status,
        state: None,
        pending: Vec::new(),
        pending_until: None,
        gone: HashSet::new(),
        account: None,
        holding: false,
        warned: false,
    };
    let mut shutdown = p.shared.ws.shutdown.subscribe();
    let mut next_tick = Instant::now();
    loop {
        let flush_at = p.pending_until;
        tokio::select! {
            _ = tokio::time::sleep_until(next_tick) => {}
            Some(change) = rx.recv() => {
                p.note_bridgecore(&change).await;
                continue;
            }
            _ = sleep_until_opt(flush_at) => {
                p.flush();
                continue;
            }
            _ = shutdown.changed() => {
                p.release().await;
                p.set_holding(false);
                return;
            }
        }
        let cfg = p.shared.runtime.load().config.websocket;
        next_tick = Instant::now() + cfg.poll_interval;
        if !p.shared.ws.has_subscribers(&p.key) && p.shared.ws.remove_poller(&p.key) {
            p.publish_listed(&BTreeSet::new(), true, cfg.poll_interval)
                .await;
            p.release().await;
            p.set_holding(false);
            return;
        }
        p.tick(cfg.poll_interval, cfg.poll_overlap).await;
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Poller {
    fn lease_ttl(interval: Duration) -> Duration {
        (interval * 3).max(Duration::from_secs(2))
    }

    fn set_holding(&mut self, holding: bool) {
        if holding != self.holding {
            let gauge = self
                .shared
                .ws
                .metrics
                .pollers
                .with_label_values(&[&self.key.tenant]);
            if holding {
                gauge.inc();
            } else {
                gauge.dec();
            }
            self.holding = holding;
        }
    }

    async fn tick(&mut self, interval: Duration, overlap: Duration) {
        let (listed, dirty) = self.shared.ws.listed(&self.key);
        self.publish_listed(&listed, dirty, interval).await;
        if !self.hold(interval).await {
            self.status.store(STANDBY, Ordering::Relaxed);
            self.set_holding(false);
            // Another instance polls; start from its state if this one takes over later.
            self.state = None;
            self.pending.clear();
            self.pending_until = None;
            return;
        }
        let rt = self.shared.runtime.load_full();
        let Some(tenant) = rt.tenant(&self.key.tenant).cloned() else {
            return;
        };
        if self.account.is_none() {
            match ServiceAccount::of(&tenant) {
                Ok(a) => self.account = Some(a),
                Err(e) => {
                    if !self.warned {
                        log::warn!(
                            "websocket: changes made directly in Odoo to {}/{} are not reported: {e}",
                            self.key.tenant,
                            self.key.model
                        );
                        self.warned = true;
                    }
                    self.status.store(DISABLED, Ordering::Relaxed);
                    self.set_holding(false);
                    return;
                }
            }
        }
        self.set_holding(true);
        if self.state.is_none() {
            self.state = Some(self.load_state().await);
        }
        let overlap_secs = overlap.as_secs() as i64;
        match self.poll(&tenant, overlap_secs).await {
            Ok(new) => {
                self.status.store(ACTIVE, Ordering::Relaxed);
                if !new.is_empty() {
                    self.pending.extend(new);
                    self.pending_until.get_or_insert(Instant::now() + GRACE);
                }
            }
            Err(e) => self.fail(&e),
        }
        let union = self.listed_union(&listed).await;
        match self.reconcile(&tenant, &union).await {
            Ok(deleted) if !deleted.is_empty() => {
                self.shared.ws.publish(Change::new(
                    &self.key.tenant,
                    &self.key.model,
                    Operation::Unlink,
                    Source::Odoo,
                    &deleted,
                ));
            }
            Ok(_) => {}
            Err(e) => self.fail(&e),
        }
        self.save_state(interval).await;
    }

    fn fail(&mut self, e: &ServiceError) {
        self.status.store(FAILING, Ordering::Relaxed);
        if matches!(e, ServiceError::Login) {
            self.account = None;
        }
        log::warn!(
            "websocket: polling {}/{} failed: {e}",
            self.key.tenant,
            self.key.model
        );
    }

    async fn call(
        &self,
        tenant: &Tenant,
        method: &str,
        args: Value,
        kwargs: Value,
    ) -> Result<Value, ServiceError> {
        let account = self.account.as_ref().ok_or(ServiceError::NotConfigured)?;
        account
            .call(tenant, &self.key.model, method, args, kwargs)
            .await
    }

    /// The rows stamped from the state's lower bound on, oldest first.
    async fn window(&self, tenant: &Tenant, domain: Value) -> Result<Vec<Polled>, ServiceError> {
        let mut out = Vec::new();
        for page in 0..MAX_PAGES {
            let answer = self
                .call(
                    tenant,
                    "search_read",
                    json!([domain]),
                    json!({
                        "fields": ["write_date", "create_date"],
                        "order": "write_date asc, id asc",
                        "limit": PAGE,
                        "offset": page * PAGE,
                        "context": {"active_test": false},
                    }),
                )
                .await?;
            let got = rows(&answer).map_err(|e| {
                ServiceError::Odoo(bridgecore_filters::OdooError::Protocol(e.to_string()))
            })?;
            let n = got.len();
            out.extend(got);
            if n < PAGE {
                break;
            }
        }
        Ok(out)
    }

    async fn poll(
        &mut self,
        tenant: &Tenant,
        overlap_secs: i64,
    ) -> Result<Vec<Polled>, ServiceError> {
        let started = self.state.as_ref().is_some_and(PollState::started);
        if !started {
            let newest = self
                .call(
                    tenant,
                    "search_read",
                    json!([[]]),
                    json!({
                        "fields": ["write_date"],
                        "order": "write_date desc, id desc",
                        "limit": 1,
                        "context": {"active_test": false},
                    }),
                )
                .await?;
            let newest = rows(&newest)
                .ok()
                .and_then(|r| r.into_iter().next())
                .map(|r| r.write_date);
            let mut st = PollState::default();
            st.baseline(newest.as_deref());
            let known = self.window(tenant, st.domain(overlap_secs)).await?;
            st.mark_seen(&known);
            self.state = Some(st);
            return Ok(Vec::new());
        }
        let domain = self
            .state
            .as_ref()
            .map(|s| s.domain(overlap_secs))
            .unwrap_or_else(|| json!([]));
        let found = self.window(tenant, domain).await?;
        Ok(self
            .state
            .as_mut()
            .map(|s| s.absorb(found, overlap_secs))
            .unwrap_or_default())
    }

    /// Reports the changes that waited out the grace period.
    fn flush(&mut self) {
        self.pending_until = None;
        let pending = std::mem::take(&mut self.pending);
        for op in [Operation::Create, Operation::Write] {
            let records: Vec<Changed> = pending
                .iter()
                .filter(|r| r.operation() == op)
                .map(|r| Changed {
                    id: r.id,
                    write_date: Some(r.write_date.clone()),
                })
                .collect();
            for chunk in records.chunks(bridgecore_filters::ws::change::MAX_EVENT_IDS) {
                self.shared.ws.publish(Change {
                    tenant: self.key.tenant.clone(),
                    model: self.key.model.clone(),
                    operation: op,
                    source: Source::Odoo,
                    records: chunk.to_vec(),
                });
            }
        }
    }

    /// A change BridgeCore made: its records' new `write_date`s are known, so polling does
    /// not report them again; deleted ids are not reported again either.
    async fn note_bridgecore(&mut self, change: &Change) {
        if !self.holding || !self.state.as_ref().is_some_and(PollState::started) {
            return;
        }
        let ids: Vec<i64> = change.ids().collect();
        if change.operation == Operation::Unlink {
            if self.gone.len() + ids.len() > MAX_GONE {
                self.gone.clear();
            }
            self.gone.extend(ids);
            return;
        }
        let rt = self.shared.runtime.load_full();
        let Some(tenant) = rt.tenant(&self.key.tenant).cloned() else {
            return;
        };
        let mut known = Vec::new();
        for chunk in ids.chunks(super::odoo::BATCH) {
            let answer = self
                .call(
                    &tenant,
                    "search_read",
                    json!([[["id", "in", chunk]]]),
                    json!({"fields": ["write_date"], "context": {"active_test": false}}),
                )
                .await;
            match answer.map(|a| rows(&a)) {
                Ok(Ok(r)) => known.extend(r),
                Ok(Err(e)) => log::debug!("websocket: {e}"),
                Err(e) => log::debug!("websocket: reading write dates failed: {e}"),
            }
        }
        if let Some(st) = self.state.as_mut() {
            st.mark_seen(&known);
        }
        let known: HashSet<(i64, &str)> = known
            .iter()
            .map(|r| (r.id, r.write_date.as_str()))
            .collect();
        self.pending
            .retain(|r| !known.contains(&(r.id, r.write_date.as_str())));
    }

    /// Listed ids that no longer exist.
    async fn reconcile(
        &mut self,
        tenant: &Tenant,
        listed: &BTreeSet<i64>,
    ) -> Result<Vec<i64>, ServiceError> {
        let ids: Vec<i64> = listed
            .iter()
            .copied()
            .filter(|i| !self.gone.contains(i))
            .collect();
        let mut deleted = Vec::new();
        for chunk in ids.chunks(super::odoo::BATCH) {
            let answer = self
                .call(tenant, "exists", json!([chunk]), json!({}))
                .await?;
            let found: HashSet<i64> = answer
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_i64)
                .collect();
            deleted.extend(chunk.iter().copied().filter(|i| !found.contains(i)));
        }
        if self.gone.len() + deleted.len() > MAX_GONE {
            self.gone.clear();
        }
        self.gone.extend(deleted.iter().copied());
        Ok(deleted)
    }

    // === Redis: lease, state, listed ids ===

    /// Takes or keeps the lease. Without Redis, or while it fails, every instance polls for
    /// itself (its events then reach only its own subscribers, as Redis is not there to carry
    /// them further).
    async fn hold(&self, interval: Duration) -> bool {
        let Some(redis) = &self.redis else {
            return true;
        };
        let ttl = Self::lease_ttl(interval).as_millis() as u64;
        let script = redis::Script::new(HOLD_LUA);
        let mut inv = script.key(lease_key(&self.key));
        inv.arg(&self.shared.ws.instance).arg(ttl);
        let held: Result<i64, _> = redis
            .run(REDIS_TIMEOUT, |mut c| async move {
                inv.invoke_async(&mut c).await
            })
            .await;
        match held {
            Ok(n) => n == 1,
            Err(e) => {
                log::debug!("websocket: poller lease unavailable ({e}); polling locally");
                true
            }
        }
    }

    async fn release(&self) {
        let Some(redis) = &self.redis else {
            return;
        };
        let script = redis::Script::new(RELEASE_LUA);
        let mut inv = script.key(lease_key(&self.key));
        inv.arg(&self.shared.ws.instance);
        let _: Result<i64, _> = redis
            .run(REDIS_TIMEOUT, |mut c| async move {
                inv.invoke_async(&mut c).await
            })
            .await;
    }

    async fn load_state(&self) -> PollState {
        let Some(redis) = &self.redis else {
            return PollState::default();
        };
        let raw: Result<Option<String>, _> = redis
            .query_within(redis::cmd("GET").arg(state_key(&self.key)), REDIS_TIMEOUT)
            .await;
        raw.ok()
            .flatten()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default()
    }

    async fn save_state(&self, interval: Duration) {
        let (Some(redis), Some(st)) = (&self.redis, &self.state) else {
            return;
        };
        let Ok(text) = serde_json::to_string(st) else {
            return;
        };
        // Kept a little longer than the lease: a takeover continues from it; after a longer
        // gap (nobody subscribed) the next poller takes a fresh baseline.
        let ttl = Self::lease_ttl(interval).as_millis() as u64 * 2;
        let _: Result<(), _> = redis
            .query_within(
                redis::cmd("SET")
                    .arg(state_key(&self.key))
                    .arg(text)
                    .arg("PX")
                    .arg(ttl),
                REDIS_TIMEOUT,
            )
            .await;
    }

    /// Publishes this instance's listed ids for the holder (rewritten when they changed,
    /// refreshed otherwise).
    async fn publish_listed(&self, ids: &BTreeSet<i64>, dirty: bool, interval: Duration) {
        let Some(redis) = &self.redis else {
            return;
        };
        let instance = &self.shared.ws.instance;
        let set = listed_key(&self.key, instance);
        let listers = listers_key(&self.key);
        let ttl = Self::lease_ttl(interval).as_millis() as u64;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut pipe = redis::pipe();
        if ids.is_empty() {
            pipe.cmd("DEL").arg(&set).ignore();
            pipe.cmd("ZREM").arg(&listers).arg(instance).ignore();
        } else {
            if dirty {
                pipe.cmd("DEL").arg(&set).ignore();
                for chunk in ids.iter().copied().collect::<Vec<_>>().chunks(1000) {
                    pipe.cmd("SADD").arg(&set).arg(chunk).ignore();
                }
            }
            pipe.cmd("PEXPIRE").arg(&set).arg(ttl).ignore();
            pipe.cmd("ZADD")
                .arg(&listers)
                .arg(now + ttl)
                .arg(instance)
                .ignore();
            pipe.cmd("PEXPIRE").arg(&listers).arg(ttl).ignore();
        }
        let done: Result<(), _> = redis
            .run(REDIS_TIMEOUT, |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await;
        if done.is_err() && dirty {
            // Try the full rewrite again next tick.
            self.shared.ws.mark_listed_dirty(&self.key);
        }
    }

    /// Every instance's listed ids (this instance's when Redis is absent or fails).
    async fn listed_union(&self, local: &BTreeSet<i64>) -> BTreeSet<i64> {
        let Some(redis) = &self.redis else {
            return local.clone();
        };
        let listers = listers_key(&self.key);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let live: Result<Vec<String>, _> = redis
            .query_within(
                redis::cmd("ZRANGEBYSCORE")
                    .arg(&listers)
                    .arg(now)
                    .arg("+inf"),
                REDIS_TIMEOUT,
            )
            .await;
        let Ok(live) = live else {
            return local.clone();
        };
        let mut out = local.clone();
        if live.is_empty() {
            return out;
        }
        let keys: Vec<String> = live.iter().map(|i| listed_key(&self.key, i)).collect();
        let union: Result<Vec<i64>, _> = redis
            .query_within(redis::cmd("SUNION").arg(keys), REDIS_TIMEOUT)
            .await;
        if let Ok(ids) = union {
            out.extend(ids);
        }
        out
    }
}
