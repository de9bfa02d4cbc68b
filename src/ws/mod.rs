//! Live model updates over BridgeCore's own WebSocket, `/api/v1/ws` (issue 6).
//!
//! - [`socket`] serves one connection: `request_filter` checks the handshake, then takes the
//!   stream out of Pingora's session and serves it on a small task of its own (an idle socket
//!   costs about 10 KiB): authentication, the client's messages, the outgoing queue, pings,
//!   token expiry and revocation;
//! - the [`Hub`] here knows every connection and subscription of this instance, counts them,
//!   and takes change events: [`Hub::publish`] delivers a change locally and, with Redis, to
//!   the other instances (`bc:ws:ev:<tenant>`);
//! - [`dispatch`] fans one change out to the subscriptions it concerns, after asking Odoo, with
//!   each subscriber's own session, which of the records they may see (and their fields);
//! - [`poller`] finds changes made directly in Odoo (`write_date` polling, one poller per tenant
//!   and model across instances, under a Redis lease) and deletions of listed records;
//! - [`service`] is the background service that runs the dispatcher, the Redis subscriber and
//!   the pollers, and closes every socket with 1001 at shutdown.
//!
//! Every lock here is a `std` mutex held for a few map operations, never across an `.await`.

pub(crate) mod dispatch;
pub(crate) mod odoo;
pub(crate) mod poller;
pub(crate) mod service;
pub(crate) mod socket;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bridgecore_filters::ws::{Change, Operation, Source};
use bridgecore_filters::Call;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts};
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch, Notify};
use tungstenite::Utf8Bytes;

use crate::metrics::Metrics;
use crate::redis_conn::{RedisConn, KEY_PREFIX};
use crate::sessions::LoginSession;

pub(crate) use service::Service;
pub(crate) use socket::{handshake, serve};

/// Changes waiting for the dispatcher; beyond it they are dropped and counted.
const EVENT_QUEUE: usize = 10_000;

/// The largest write answer kept for its change event; a larger one publishes no event.
const MAX_ANSWER: usize = 256 * 1024;

/// Response side of a forwarded write (proxy.rs): keeps a bounded copy of a 200 answer when a
/// subscriber may care, to tell success from a JSON-RPC error and to read a `create`'s ids.
pub(crate) fn collect_answer(
    shared: &crate::Shared,
    resp: &pingora::http::ResponseHeader,
    ctx: &mut crate::ctx::RequestCtx,
) {
    if resp.status.as_u16() != 200
        || !ctx.class.is_some_and(bridgecore_filters::Class::is_write)
        || resp.headers.contains_key(http::header::CONTENT_ENCODING)
    {
        return;
    }
    let (Some(tenant), Some(call)) = (ctx.tenant.as_ref(), ctx.call.as_deref()) else {
        return;
    };
    let model = call
        .model
        .as_deref()
        .or_else(|| call.params.get("model").and_then(Value::as_str));
    if model.is_some_and(|m| shared.ws.wants(tenant.name(), m)) {
        ctx.ws_answer = Some(bytes::BytesMut::with_capacity(1024));
    }
}

/// One chunk of a collected write answer.
pub(crate) fn collect_chunk(ctx: &mut crate::ctx::RequestCtx, chunk: &[u8]) {
    if let Some(buf) = ctx.ws_answer.as_mut() {
        if buf.len() + chunk.len() > MAX_ANSWER {
            ctx.ws_answer = None;
        } else {
            buf.extend_from_slice(chunk);
        }
    }
}

/// End of a forwarded write (proxy.rs `logging`): publishes its change if Odoo answered
/// successfully.
pub(crate) fn publish_answer(
    shared: &crate::Shared,
    ok: bool,
    status: u16,
    ctx: &mut crate::ctx::RequestCtx,
) {
    let Some(body) = ctx.ws_answer.take() else {
        return;
    };
    let (Some(tenant), Some(call)) = (ctx.tenant.as_ref(), ctx.call.as_deref()) else {
        return;
    };
    if !ok {
        return;
    }
    if let bridgecore_filters::ws::Answer::Result(result) =
        bridgecore_filters::ws::change::answer(&call.shape, status, &body)
    {
        shared.ws.publish_call(tenant.name(), call, &result);
    }
}

/// Whether `path` is a socket endpoint: `/api/v1/ws` or `/api/v1/ws/{client_id}` (any id but
/// `stats`, which is the statistics endpoint).
pub(crate) fn is_socket_path(path: &str) -> bool {
    match path.strip_prefix("/api/v1/ws") {
        Some("") | Some("/") => true,
        Some(rest) => rest
            .strip_prefix('/')
            .is_some_and(|id| id != "stats" && !id.contains('/')),
        None => false,
    }
}

/// The Redis channel of a tenant's change events.
pub(crate) fn channel(tenant: &str) -> String {
    format!("{KEY_PREFIX}ws:ev:{tenant}")
}

/// A `(tenant, model)` pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    pub(crate) tenant: String,
    pub(crate) model: String,
}

impl Key {
    pub(crate) fn new(tenant: &str, model: &str) -> Self {
        Key {
            tenant: tenant.to_owned(),
            model: model.to_owned(),
        }
    }
}

/// What a connection is asked to do by others (the hub, the dispatcher, shutdown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloseRequest {
    pub(crate) code: u16,
    pub(crate) reason: String,
    /// The `bridgecore_ws_closed_total` label.
    pub(crate) label: &'static str,
}

/// Messages waiting for a socket. A plain deque rather than a channel: an idle socket's
/// queue holds no allocation at all (10 000 idle sockets, issue 6).
struct Outbox {
    queue: VecDeque<Utf8Bytes>,
    /// `websocket.queue_size` when the socket opened.
    cap: usize,
    /// The socket ended: nothing is queued any more.
    closed: bool,
}

/// The part of a connection others can reach: its outgoing queue and its close request. The
/// socket's loop wakes on `kick` for both.
pub(crate) struct Conn {
    pub(crate) id: u64,
    outbox: Mutex<Outbox>,
    close: Mutex<Option<CloseRequest>>,
    pub(crate) kick: Notify,
}

impl Conn {
    /// Queues a message. A full queue means a slow consumer: the message is dropped and the
    /// connection is asked to close with 1013. Returns whether it was queued.
    pub(crate) fn send(&self, text: Utf8Bytes) -> Sent {
        let mut out = lock(&self.outbox);
        if out.closed {
            return Sent::Gone;
        }
        if out.queue.len() >= out.cap {
            drop(out);
            let first = self.request_close(CloseRequest {
                code: bridgecore_filters::ws::protocol::close::TRY_AGAIN,
                reason: "slow consumer: too many messages waiting; reconnect and resubscribe"
                    .into(),
                label: "slow_consumer",
            });
            return Sent::Overflow { first };
        }
        out.queue.push_back(text);
        drop(out);
        self.kick.notify_one();
        Sent::Queued
    }

    /// Everything queued, in order (the queue gives its memory back).
    pub(crate) fn take_queued(&self) -> VecDeque<Utf8Bytes> {
        std::mem::take(&mut lock(&self.outbox).queue)
    }

    /// The socket ended or is closing: queued messages are dropped, new ones refused.
    pub(crate) fn shut(&self) {
        let mut out = lock(&self.outbox);
        out.closed = true;
        out.queue = VecDeque::new();
    }

    /// Asks the connection to close (the first request wins). Returns whether this was the
    /// first.
    pub(crate) fn request_close(&self, req: CloseRequest) -> bool {
        let mut slot = lock(&self.close);
        if slot.is_some() {
            return false;
        }
        *slot = Some(req);
        drop(slot);
        self.kick.notify_one();
        true
    }

    pub(crate) fn take_close(&self) -> Option<CloseRequest> {
        lock(&self.close).take()
    }
}

/// What [`Conn::send`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    Queued,
    /// The queue was full; `first`: this overflow started the close.
    Overflow {
        first: bool,
    },
    Gone,
}

/// One subscription.
pub(crate) struct Sub {
    /// `s<n>`, unique on its connection.
    pub(crate) id: String,
    pub(crate) conn: Arc<Conn>,
    pub(crate) tenant: String,
    pub(crate) model: String,
    pub(crate) uid: i64,
    /// The subscriber's login session (its Odoo session is what BridgeCore asks Odoo with).
    pub(crate) session: Arc<LoginSession>,
    /// Only these records; `None`: the whole model. Unlinked records leave the list.
    pub(crate) record_ids: Option<Mutex<BTreeSet<i64>>>,
    /// The fields sent in `data`.
    pub(crate) fields: Option<Vec<String>>,
    /// Records a model-wide subscription was told about (created or written), so that it may
    /// be told of their deletion: a deleted record's rules can no longer be checked.
    pub(crate) known: Mutex<HashSet<i64>>,
}

/// Records a model-wide subscription remembers for deletions.
pub(crate) const MAX_KNOWN: usize = 10_000;

impl Sub {
    /// Which of `ids` this subscription is about, for `op`.
    pub(crate) fn relevant(&self, op: Operation, ids: &[i64]) -> Vec<i64> {
        match (&self.record_ids, op) {
            (Some(listed), _) => {
                let listed = lock(listed);
                ids.iter().copied().filter(|i| listed.contains(i)).collect()
            }
            (None, Operation::Unlink) => {
                let known = lock(&self.known);
                ids.iter().copied().filter(|i| known.contains(i)).collect()
            }
            (None, _) => ids.to_vec(),
        }
    }

    /// Notes what was sent: created or written records become known (model-wide), deleted
    /// ones leave the lists. Returns whether the listed ids changed.
    pub(crate) fn note_sent(&self, op: Operation, ids: &[i64]) -> bool {
        match (&self.record_ids, op) {
            (Some(listed), Operation::Unlink) => {
                let mut listed = lock(listed);
                let before = listed.len();
                for id in ids {
                    listed.remove(id);
                }
                listed.len() != before
            }
            (Some(_), _) => false,
            (None, Operation::Unlink) => {
                let mut known = lock(&self.known);
                for id in ids {
                    known.remove(id);
                }
                false
            }
            (None, _) => {
                let mut known = lock(&self.known);
                for id in ids {
                    if known.len() >= MAX_KNOWN {
                        break;
                    }
                    known.insert(*id);
                }
                false
            }
        }
    }
}

/// Why a connection could not take an identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AttachError {
    #[error("too many connections for this user (websocket.max_connections_per_user = {0})")]
    User(usize),
    #[error("too many connections for this system (websocket.max_connections = {0})")]
    Tenant(usize),
}

/// Per-tenant counts.
#[derive(Default)]
struct Book {
    conns: usize,
    users: HashMap<i64, usize>,
    sent: u64,
    dropped: u64,
    slow_closed: u64,
    events_bridgecore: u64,
    events_odoo: u64,
}

/// A connection's identity once authenticated: `(tenant, uid)`.
type Identity = Option<(String, i64)>;

#[derive(Default)]
struct State {
    /// Every open connection, with its identity.
    conns: HashMap<u64, (Arc<Conn>, Identity)>,
    books: HashMap<String, Book>,
    /// Subscriptions by (tenant, model), then by (connection, subscription number).
    subs: HashMap<Key, BTreeMap<(u64, u64), Arc<Sub>>>,
    /// Keys whose listed ids changed since the poller last published them.
    listed_dirty: HashSet<Key>,
    /// This instance's poller per key: the sender of BridgeCore events it must know about,
    /// and what it is doing.
    pollers: HashMap<Key, poller::Handle>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every value behind these locks is replaced whole; a panic cannot leave one half-made.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The hub's Prometheus metrics (tenant labels are configured tenant names, or `none`).
pub(crate) struct WsMetrics {
    pub(crate) connections: IntGaugeVec,
    pub(crate) subscriptions: IntGaugeVec,
    pub(crate) sent: IntCounterVec,
    pub(crate) dropped: IntCounterVec,
    pub(crate) closed: IntCounterVec,
    pub(crate) events: IntCounterVec,
    pub(crate) delivery: HistogramVec,
    pub(crate) pollers: IntGaugeVec,
    pub(crate) bus_errors: IntCounterVec,
}

impl WsMetrics {
    fn new(metrics: &Metrics) -> Result<Self, prometheus::Error> {
        let connections = IntGaugeVec::new(
            Opts::new(
                "bridgecore_ws_connections",
                "Open /api/v1/ws sockets (tenant `none` until authenticated)",
            ),
            &["tenant"],
        )?;
        let subscriptions = IntGaugeVec::new(
            Opts::new("bridgecore_ws_subscriptions", "Live model subscriptions"),
            &["tenant"],
        )?;
        let sent = IntCounterVec::new(
            Opts::new(
                "bridgecore_ws_messages_sent_total",
                "model_update messages queued to sockets",
            ),
            &["tenant"],
        )?;
        let dropped = IntCounterVec::new(
            Opts::new(
                "bridgecore_ws_dropped_total",
                "model_update messages dropped, by reason (slow_consumer: the socket's queue was full)",
            ),
            &["tenant", "reason"],
        )?;
        let closed = IntCounterVec::new(
            Opts::new("bridgecore_ws_closed_total", "Sockets closed, by reason"),
            &["reason"],
        )?;
        let events = IntCounterVec::new(
            Opts::new(
                "bridgecore_ws_events_total",
                "Change events dispatched, by source (bridgecore, odoo)",
            ),
            &["tenant", "source"],
        )?;
        let delivery = HistogramVec::new(
            HistogramOpts::new(
                "bridgecore_ws_delivery_seconds",
                "From a change event reaching the dispatcher to its messages being queued (access checks included)",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["tenant"],
        )?;
        let pollers = IntGaugeVec::new(
            Opts::new(
                "bridgecore_ws_pollers",
                "write_date pollers this instance runs (holding the lease)",
            ),
            &["tenant"],
        )?;
        let bus_errors = IntCounterVec::new(
            Opts::new(
                "bridgecore_ws_bus_errors_total",
                "Change events not published to or read from Redis, or dropped for a full queue",
            ),
            &["kind"],
        )?;
        metrics.register(Box::new(connections.clone()))?;
        metrics.register(Box::new(subscriptions.clone()))?;
        metrics.register(Box::new(sent.clone()))?;
        metrics.register(Box::new(dropped.clone()))?;
        metrics.register(Box::new(closed.clone()))?;
        metrics.register(Box::new(events.clone()))?;
        metrics.register(Box::new(delivery.clone()))?;
        metrics.register(Box::new(pollers.clone()))?;
        metrics.register(Box::new(bus_errors.clone()))?;
        Ok(WsMetrics {
            connections,
            subscriptions,
            sent,
            dropped,
            closed,
            events,
            delivery,
            pollers,
            bus_errors,
        })
    }
}

/// Every socket and subscription of this instance, and the way in for change events.
pub(crate) struct Hub {
    /// This process's random id: events it published come back from Redis and are skipped.
    pub(crate) instance: String,
    pub(crate) metrics: WsMetrics,
    pub(crate) redis: Option<Arc<RedisConn>>,
    state: Mutex<State>,
    next_conn: AtomicU64,
    events: mpsc::Sender<Arc<Change>>,
    events_rx: Mutex<Option<mpsc::Receiver<Arc<Change>>>>,
    /// Set at shutdown: every socket closes with 1001.
    pub(crate) shutdown: watch::Sender<bool>,
    /// Asks the service to start this instance's poller for a key.
    pollers_tx: mpsc::UnboundedSender<Key>,
    pollers_rx: Mutex<Option<mpsc::UnboundedReceiver<Key>>>,
}

impl Hub {
    pub(crate) fn new(
        metrics: &Metrics,
        redis: Option<Arc<RedisConn>>,
    ) -> Result<Self, prometheus::Error> {
        let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
        let (pollers_tx, pollers_rx) = mpsc::unbounded_channel();
        let (shutdown, _) = watch::channel(false);
        Ok(Hub {
            instance: uuid::Uuid::new_v4().simple().to_string(),
            metrics: WsMetrics::new(metrics)?,
            redis,
            state: Mutex::new(State::default()),
            next_conn: AtomicU64::new(1),
            events,
            events_rx: Mutex::new(Some(events_rx)),
            shutdown,
            pollers_tx,
            pollers_rx: Mutex::new(Some(pollers_rx)),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    // === connections ===

    /// A new connection with an outgoing queue of `queue` messages.
    pub(crate) fn open(&self, queue: usize) -> Arc<Conn> {
        let conn = Arc::new(Conn {
            id: self.next_conn.fetch_add(1, Ordering::Relaxed),
            outbox: Mutex::new(Outbox {
                queue: VecDeque::new(),
                cap: queue.max(1),
                closed: false,
            }),
            close: Mutex::new(None),
            kick: Notify::new(),
        });
        self.state().conns.insert(conn.id, (conn.clone(), None));
        self.metrics.connections.with_label_values(&["none"]).inc();
        conn
    }

    /// Gives connection `id` its identity, within the per-user and per-tenant bounds.
    pub(crate) fn attach(
        &self,
        id: u64,
        tenant: &str,
        uid: i64,
        max_per_user: usize,
        max_per_tenant: usize,
    ) -> Result<(), AttachError> {
        let mut st = self.state();
        let State { conns, books, .. } = &mut *st;
        let Some((_, identity)) = conns.get_mut(&id) else {
            return Ok(());
        };
        if identity
            .as_ref()
            .is_some_and(|(t, u)| t == tenant && *u == uid)
        {
            return Ok(());
        }
        let book = books.entry(tenant.to_owned()).or_default();
        if book.conns >= max_per_tenant {
            return Err(AttachError::Tenant(max_per_tenant));
        }
        if book.users.get(&uid).copied().unwrap_or(0) >= max_per_user {
            return Err(AttachError::User(max_per_user));
        }
        book.conns += 1;
        *book.users.entry(uid).or_default() += 1;
        *identity = Some((tenant.to_owned(), uid));
        drop(st);
        self.metrics.connections.with_label_values(&["none"]).dec();
        self.metrics.connections.with_label_values(&[tenant]).inc();
        Ok(())
    }

    /// Forgets connection `id` and its subscriptions.
    pub(crate) fn close(&self, id: u64) {
        let mut st = self.state();
        let Some((conn, identity)) = st.conns.remove(&id) else {
            return;
        };
        conn.shut();
        let mut removed: Vec<Key> = Vec::new();
        for (key, subs) in st.subs.iter_mut() {
            let before = subs.len();
            subs.retain(|(conn, _), _| *conn != id);
            for _ in subs.len()..before {
                removed.push(key.clone());
            }
        }
        st.subs.retain(|_, subs| !subs.is_empty());
        for key in &removed {
            st.listed_dirty.insert(key.clone());
        }
        let label = match &identity {
            Some((tenant, uid)) => {
                if let Some(book) = st.books.get_mut(tenant) {
                    book.conns = book.conns.saturating_sub(1);
                    if let Some(n) = book.users.get_mut(uid) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            book.users.remove(uid);
                        }
                    }
                }
                tenant.clone()
            }
            None => "none".to_owned(),
        };
        drop(st);
        self.metrics.connections.with_label_values(&[&label]).dec();
        for key in removed {
            self.metrics
                .subscriptions
                .with_label_values(&[&key.tenant])
                .dec();
        }
    }

    /// Asks every connection to close (shutdown).
    pub(crate) fn close_all(&self, req: &CloseRequest) {
        let conns: Vec<Arc<Conn>> = self
            .state()
            .conns
            .values()
            .map(|(c, _)| c.clone())
            .collect();
        for c in conns {
            c.request_close(req.clone());
        }
    }

    /// Asks every connection of `(tenant, uid)` whose Odoo session is `odoo_session` to close.
    pub(crate) fn close_session(&self, tenant: &str, odoo_session: &str, req: &CloseRequest) {
        let conns: Vec<Arc<Conn>> = self
            .state()
            .subs
            .iter()
            .filter(|(k, _)| k.tenant == tenant)
            .flat_map(|(_, subs)| subs.values())
            .filter(|s| s.session.odoo_session == odoo_session)
            .map(|s| s.conn.clone())
            .collect();
        for c in conns {
            c.request_close(req.clone());
        }
    }

    // === subscriptions ===

    /// Registers a subscription (the caller checked its bounds and Odoo's answer).
    pub(crate) fn subscribe(&self, number: u64, sub: Arc<Sub>) {
        let key = Key::new(&sub.tenant, &sub.model);
        let tenant = sub.tenant.clone();
        let mut st = self.state();
        let first = !st.subs.contains_key(&key);
        if sub.record_ids.is_some() {
            st.listed_dirty.insert(key.clone());
        }
        st.subs
            .entry(key.clone())
            .or_default()
            .insert((sub.conn.id, number), sub);
        let poller_running = st.pollers.contains_key(&key);
        drop(st);
        self.metrics
            .subscriptions
            .with_label_values(&[&tenant])
            .inc();
        if first || !poller_running {
            let _ = self.pollers_tx.send(key);
        }
    }

    /// Removes subscription `number` of connection `conn`; returns whether it existed.
    pub(crate) fn unsubscribe(&self, conn: u64, number: u64) -> bool {
        let mut st = self.state();
        let mut found = None;
        for (key, subs) in st.subs.iter_mut() {
            if subs.remove(&(conn, number)).is_some() {
                found = Some(key.clone());
                break;
            }
        }
        let Some(key) = found else {
            return false;
        };
        if st.subs.get(&key).is_some_and(BTreeMap::is_empty) {
            st.subs.remove(&key);
        }
        st.listed_dirty.insert(key.clone());
        drop(st);
        self.metrics
            .subscriptions
            .with_label_values(&[&key.tenant])
            .dec();
        true
    }

    /// The subscriptions to `key`.
    pub(crate) fn subscribers(&self, key: &Key) -> Vec<Arc<Sub>> {
        self.state()
            .subs
            .get(key)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether this instance has subscribers for `key`.
    pub(crate) fn has_subscribers(&self, key: &Key) -> bool {
        self.state().subs.contains_key(key)
    }

    /// The ids listed by this instance's subscriptions to `key`, and whether they changed since
    /// the last call.
    pub(crate) fn listed(&self, key: &Key) -> (BTreeSet<i64>, bool) {
        let mut st = self.state();
        let dirty = st.listed_dirty.remove(key);
        let ids = st
            .subs
            .get(key)
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|s| s.record_ids.as_ref())
            .flat_map(|l| lock(l).iter().copied().collect::<Vec<_>>())
            .collect();
        (ids, dirty)
    }

    pub(crate) fn mark_listed_dirty(&self, key: &Key) {
        self.state().listed_dirty.insert(key.clone());
    }

    // === events ===

    /// Whether a write on `(tenant, model)` may interest a subscriber somewhere: always with
    /// Redis (other instances' subscribers are not known here), else when this instance has
    /// some. Decides whether the proxy keeps a copy of a write's answer.
    pub(crate) fn wants(&self, tenant: &str, model: &str) -> bool {
        self.redis.is_some() || self.has_subscribers(&Key::new(tenant, model))
    }

    /// Publishes the change a successful call made, if it names records.
    pub(crate) fn publish_call(&self, tenant: &str, call: &Call, result: &Value) {
        if let Some((model, op, ids)) = bridgecore_filters::ws::change::change_of(call, result) {
            self.publish(Change::new(tenant, &model, op, Source::Bridgecore, &ids));
        }
    }

    /// Delivers `change` here and, with Redis, to the other instances.
    pub(crate) fn publish(&self, change: Change) {
        let change = Arc::new(change);
        if let Some(redis) = self.redis.clone() {
            let envelope = bridgecore_filters::ws::Envelope {
                origin: self.instance.clone(),
                change: (*change).clone(),
            };
            let errors = self.metrics.bus_errors.clone();
            let ch = channel(&change.tenant);
            tokio::spawn(async move {
                let sent: Result<i64, _> = redis
                    .query(redis::cmd("PUBLISH").arg(ch).arg(envelope.encode()))
                    .await;
                if let Err(e) = sent {
                    errors.with_label_values(&["publish"]).inc();
                    log::warn!("websocket: a change event did not reach redis ({e}): other instances' subscribers miss it");
                }
            });
        }
        self.enqueue(change);
    }

    /// Hands a change to the dispatcher.
    pub(crate) fn enqueue(&self, change: Arc<Change>) {
        if self.events.try_send(change).is_err() {
            self.metrics
                .bus_errors
                .with_label_values(&["queue_full"])
                .inc();
            log::warn!("websocket: the change queue is full; an event was dropped");
        }
    }

    pub(crate) fn take_events(&self) -> Option<mpsc::Receiver<Arc<Change>>> {
        lock(&self.events_rx).take()
    }

    pub(crate) fn take_poller_requests(&self) -> Option<mpsc::UnboundedReceiver<Key>> {
        lock(&self.pollers_rx).take()
    }

    // === pollers ===

    pub(crate) fn poller(&self, key: &Key) -> Option<poller::Handle> {
        self.state().pollers.get(key).cloned()
    }

    /// Registers this instance's poller for `key`; false if one runs already.
    pub(crate) fn add_poller(&self, key: &Key, handle: poller::Handle) -> bool {
        let mut st = self.state();
        if st.pollers.contains_key(key) {
            return false;
        }
        st.pollers.insert(key.clone(), handle);
        true
    }

    /// Removes the poller of `key` unless subscribers came back meanwhile (then it keeps
    /// running: returns false).
    pub(crate) fn remove_poller(&self, key: &Key) -> bool {
        let mut st = self.state();
        if st.subs.contains_key(key) {
            return false;
        }
        st.pollers.remove(key);
        true
    }

    // === accounting ===

    /// Counts one dispatched change's outcome.
    pub(crate) fn count_delivery(
        &self,
        tenant: &str,
        source: Source,
        sent: u64,
        dropped: u64,
        slow: u64,
    ) {
        {
            let mut st = self.state();
            let book = st.books.entry(tenant.to_owned()).or_default();
            book.sent += sent;
            book.dropped += dropped;
            book.slow_closed += slow;
            match source {
                Source::Bridgecore => book.events_bridgecore += 1,
                Source::Odoo => book.events_odoo += 1,
            }
        }
        self.metrics
            .events
            .with_label_values(&[tenant, source.as_str()])
            .inc();
        if sent > 0 {
            self.metrics.sent.with_label_values(&[tenant]).inc_by(sent);
        }
        if dropped > 0 {
            self.metrics
                .dropped
                .with_label_values(&[tenant, "slow_consumer"])
                .inc_by(dropped);
        }
    }

    /// `GET /api/v1/ws/stats`: for one tenant (a tenant admin's token) or all (admin listener).
    pub(crate) fn stats(&self, only: Option<&str>) -> Value {
        let st = self.state();
        let wanted = |t: &str| only.is_none_or(|o| o == t);
        let mut tenants = Map::new();
        let mut total_conns = 0usize;
        let mut total_users = 0usize;
        let mut total_subs = 0usize;
        let (mut sent, mut dropped, mut slow) = (0u64, 0u64, 0u64);
        let mut by_model: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
        for (key, subs) in &st.subs {
            if wanted(&key.tenant) {
                *by_model
                    .entry(&key.tenant)
                    .or_default()
                    .entry(&key.model)
                    .or_default() += subs.len();
                total_subs += subs.len();
            }
        }
        let mut pollers: BTreeMap<&str, BTreeMap<&str, &'static str>> = BTreeMap::new();
        for (key, handle) in &st.pollers {
            if wanted(&key.tenant) {
                pollers
                    .entry(&key.tenant)
                    .or_default()
                    .insert(&key.model, handle.status());
            }
        }
        for (name, book) in &st.books {
            if !wanted(name) {
                continue;
            }
            total_conns += book.conns;
            total_users += book.users.len();
            sent += book.sent;
            dropped += book.dropped;
            slow += book.slow_closed;
            tenants.insert(
                name.clone(),
                json!({
                    "connections": book.conns,
                    "users": book.users.len(),
                    "subscriptions": by_model.get(name.as_str()).map_or(0, |m| m.values().sum::<usize>()),
                    "subscriptions_by_model": by_model.get(name.as_str()),
                    "messages_sent": book.sent,
                    "messages_dropped": book.dropped,
                    "slow_consumers_closed": book.slow_closed,
                    "events": {"bridgecore": book.events_bridgecore, "odoo": book.events_odoo},
                    "pollers": pollers.get(name.as_str()),
                }),
            );
        }
        let unauthenticated = if only.is_none() {
            st.conns.values().filter(|(_, id)| id.is_none()).count()
        } else {
            0
        };
        json!({
            "connections": total_conns + unauthenticated,
            "unauthenticated": unauthenticated,
            "users": total_users,
            "subscriptions": total_subs,
            "subscriptions_by_model": by_model,
            "messages_sent": sent,
            "messages_dropped": dropped,
            "slow_consumers_closed": slow,
            "tenants": tenants,
            "redis": self.redis.is_some(),
            "instance": self.instance,
            // The original backend's names.
            "active_connections": total_conns + unauthenticated,
            "active_users": total_users,
        })
    }
}
