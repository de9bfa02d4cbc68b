//! Fans change events out to subscriptions, never past what each subscriber may read.
//!
//! One worker per `(tenant, model)` handles that key's changes in order (a write is never
//! overtaken by the unlink that followed it); workers of different keys run side by side and
//! stop after a minute without events. For one change, the subscriptions it concerns are
//! grouped by user, and per user (concurrently):
//!
//! 1. one `search([('id', 'in', ids)])` with that user's Odoo session (archived records
//!    included): the records their rules let them see. Nothing else is sent;
//! 2. when any of the user's subscriptions asked for `fields`, one `read` of the visible
//!    records with the union of those fields (and `write_date`); each message carries only
//!    its subscription's fields.
//!
//! Deletions cannot be checked against rules (the records are gone): an `unlink` goes to
//! subscriptions that listed the record (Odoo confirmed them when subscribing) and to
//! model-wide subscriptions that were told about the record before (see [`super::Sub`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bridgecore_filters::ws::protocol::{self, close, ModelUpdate};
use bridgecore_filters::ws::{Change, Operation, Source};
use futures_util::stream::{self, StreamExt};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tungstenite::Utf8Bytes;

use super::{odoo, CloseRequest, Key, Sent, Sub};
use crate::sessions::LoginSession;
use crate::Shared;

/// Changes waiting per key.
const WORKER_QUEUE: usize = 1024;
/// A worker without events for this long stops.
const WORKER_IDLE: Duration = Duration::from_secs(60);
/// Users checked at the same time for one change.
const USER_CONCURRENCY: usize = 16;

/// Routes the hub's change queue to one worker per key, and BridgeCore's own changes to the
/// key's poller (so it does not report them again).
pub(crate) async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Arc<Change>>) {
    let mut workers: HashMap<Key, mpsc::Sender<Arc<Change>>> = HashMap::new();
    while let Some(change) = rx.recv().await {
        let key = Key::new(&change.tenant, &change.model);
        if change.source == Source::Bridgecore {
            if let Some(p) = shared.ws.poller(&key) {
                p.note_bridgecore(change.clone());
            }
        }
        if !shared.ws.has_subscribers(&key) {
            shared
                .ws
                .count_delivery(&change.tenant, change.source, 0, 0, 0);
            continue;
        }
        let mut change = Some(change);
        for _ in 0..2 {
            let Some(c) = change.take() else { break };
            let tx = workers.entry(key.clone()).or_insert_with(|| {
                let (tx, rx) = mpsc::channel(WORKER_QUEUE);
                tokio::spawn(worker(shared.clone(), rx));
                tx
            });
            match tx.try_send(c) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Closed(c)) => {
                    // The worker stopped (idle): start another.
                    workers.remove(&key);
                    change = Some(c);
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    shared
                        .ws
                        .metrics
                        .bus_errors
                        .with_label_values(&["queue_full"])
                        .inc();
                    log::warn!(
                        "websocket: changes of {}/{} arrive faster than they can be checked; one was dropped",
                        key.tenant,
                        key.model
                    );
                }
            }
        }
        workers.retain(|_, tx| !tx.is_closed());
    }
}

async fn worker(shared: Arc<Shared>, mut rx: mpsc::Receiver<Arc<Change>>) {
    loop {
        match tokio::time::timeout(WORKER_IDLE, rx.recv()).await {
            Ok(Some(change)) => dispatch(&shared, &change).await,
            Ok(None) => return,
            Err(_) => {
                // Idle: stop taking more, but finish what raced in.
                rx.close();
                while let Ok(change) = rx.try_recv() {
                    dispatch(&shared, &change).await;
                }
                return;
            }
        }
    }
}

/// One user's share of a change.
struct Group {
    /// The user's distinct Odoo sessions (one per login): the first that works is used.
    sessions: Vec<Arc<LoginSession>>,
    items: Vec<(Arc<Sub>, Vec<i64>)>,
}

#[derive(Default)]
struct Tally {
    sent: u64,
    dropped: u64,
    slow: u64,
}

/// Delivers one change to this instance's subscribers.
pub(crate) async fn dispatch(shared: &Arc<Shared>, change: &Change) {
    let started = Instant::now();
    let key = Key::new(&change.tenant, &change.model);
    let subs = shared.ws.subscribers(&key);
    let ids: Vec<i64> = change.ids().collect();
    let mut groups: HashMap<i64, Group> = HashMap::new();
    for sub in subs {
        let relevant = sub.relevant(change.operation, &ids);
        if relevant.is_empty() {
            continue;
        }
        let group = groups.entry(sub.uid).or_insert_with(|| Group {
            sessions: Vec::new(),
            items: Vec::new(),
        });
        if !group
            .sessions
            .iter()
            .any(|s| s.odoo_session == sub.session.odoo_session)
        {
            group.sessions.push(sub.session.clone());
        }
        group.items.push((sub, relevant));
    }
    if groups.is_empty() {
        shared
            .ws
            .count_delivery(&change.tenant, change.source, 0, 0, 0);
        return;
    }
    let rt = shared.runtime.load_full();
    let Some(tenant) = rt.tenant(&change.tenant).cloned() else {
        return;
    };
    let dates: HashMap<i64, &str> = change
        .records
        .iter()
        .filter_map(|r| r.write_date.as_deref().map(|d| (r.id, d)))
        .collect();
    let tallies: Vec<Tally> = stream::iter(groups.into_values())
        .map(|group| {
            let tenant = tenant.clone();
            let dates = &dates;
            async move { deliver(shared, &tenant, change, group, dates).await }
        })
        .buffer_unordered(USER_CONCURRENCY)
        .collect()
        .await;
    let total = tallies.iter().fold(Tally::default(), |a, t| Tally {
        sent: a.sent + t.sent,
        dropped: a.dropped + t.dropped,
        slow: a.slow + t.slow,
    });
    shared.ws.count_delivery(
        &change.tenant,
        change.source,
        total.sent,
        total.dropped,
        total.slow,
    );
    shared
        .ws
        .metrics
        .delivery
        .with_label_values(&[&change.tenant])
        .observe(started.elapsed().as_secs_f64());
}

/// Checks one user's visibility (and reads their fields), then queues their messages.
async fn deliver(
    shared: &Arc<Shared>,
    tenant: &crate::tenant::Tenant,
    change: &Change,
    group: Group,
    dates: &HashMap<i64, &str>,
) -> Tally {
    let mut tally = Tally::default();
    let union: BTreeSet<i64> = group
        .items
        .iter()
        .flat_map(|(_, ids)| ids.iter().copied())
        .collect();
    let union: Vec<i64> = union.into_iter().collect();
    let mut fields: BTreeSet<String> = BTreeSet::new();
    for (sub, _) in &group.items {
        fields.extend(sub.fields.iter().flatten().cloned());
    }
    let fields: Vec<String> = fields.into_iter().collect();
    let (visible, values) = if change.operation == Operation::Unlink {
        // Nothing to check (see the module docs); the subscriptions were filtered already.
        (union.iter().copied().collect(), HashMap::new())
    } else {
        let mut found = None;
        for session in &group.sessions {
            match look(
                tenant,
                &session.odoo_session,
                &change.model,
                &union,
                &fields,
            )
            .await
            {
                Ok(f) => {
                    found = Some(f);
                    break;
                }
                // That login ended in Odoo: its sockets close; another login may still work.
                Err(e) if odoo::session_expired(&e) => session_ended(shared, change, session),
                Err(e) => {
                    // Odoo refusing (the user lost access since subscribing) is expected;
                    // Odoo out of reach is worth a warning.
                    let level = if matches!(e, bridgecore_filters::OdooError::Odoo { .. }) {
                        log::Level::Debug
                    } else {
                        log::Level::Warn
                    };
                    log::log!(
                        level,
                        "websocket: could not check a {}/{} change for user {}: {e}; their subscriptions miss it",
                        change.tenant,
                        change.model,
                        session.uid
                    );
                    return tally;
                }
            }
        }
        match found {
            Some(f) => f,
            None => return tally,
        }
    };
    // One message text per record and field list; subscriptions only add their ids.
    let mut prefixes: HashMap<(i64, Option<&[String]>), String> = HashMap::new();
    for (sub, ids) in &group.items {
        let ids: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|i| visible.contains(i))
            .collect();
        let mut delivered = Vec::with_capacity(ids.len());
        for id in ids {
            let fields = sub.fields.as_deref();
            let prefix = prefixes.entry((id, fields)).or_insert_with(|| {
                let record = values.get(&id);
                let data = fields.and_then(|fields| {
                    (change.operation != Operation::Unlink).then(|| {
                        let mut m = Map::new();
                        if let Some(r) = record {
                            for f in fields {
                                if let Some(v) = r.get(f) {
                                    m.insert(f.clone(), v.clone());
                                }
                            }
                        }
                        Value::Object(m)
                    })
                });
                let write_date = dates.get(&id).copied().or_else(|| {
                    record
                        .and_then(|r| r.get("write_date"))
                        .and_then(Value::as_str)
                });
                ModelUpdate {
                    kind: "model_update",
                    system_id: &change.tenant,
                    model: &change.model,
                    record_id: id,
                    operation: change.operation.as_str(),
                    data: data.as_ref(),
                    write_date,
                    source: change.source.as_str(),
                }
                .prefix()
            });
            let text = protocol::with_subscription(prefix, &sub.id);
            match sub.conn.send(Utf8Bytes::from(text)) {
                Sent::Queued => {
                    tally.sent += 1;
                    delivered.push(id);
                }
                Sent::Overflow { first } => {
                    tally.dropped += 1;
                    if first {
                        tally.slow += 1;
                        shared
                            .ws
                            .metrics
                            .closed
                            .with_label_values(&["slow_consumer"])
                            .inc();
                    }
                }
                Sent::Gone => {}
            }
        }
        if sub.note_sent(change.operation, &delivered) {
            shared
                .ws
                .mark_listed_dirty(&Key::new(&sub.tenant, &sub.model));
        }
    }
    tally
}

/// What one user may see of a change: the visible ids, and their values when fields were
/// asked.
async fn look(
    tenant: &crate::tenant::Tenant,
    odoo_session: &str,
    model: &str,
    ids: &[i64],
    fields: &[String],
) -> Result<(BTreeSet<i64>, HashMap<i64, Value>), bridgecore_filters::OdooError> {
    let seen = odoo::visible(tenant, odoo_session, model, ids).await?;
    if fields.is_empty() || seen.is_empty() {
        return Ok((seen, HashMap::new()));
    }
    let ids: Vec<i64> = seen.iter().copied().collect();
    let values = odoo::read(tenant, odoo_session, model, &ids, fields).await?;
    Ok((seen, values))
}

/// Odoo ended this login's session: its sockets close with 4401 (nothing unchecked is ever
/// sent to them).
fn session_ended(shared: &Arc<Shared>, change: &Change, session: &LoginSession) {
    shared.ws.close_session(
        &change.tenant,
        &session.odoo_session,
        &CloseRequest {
            code: close::UNAUTHORIZED,
            reason: "the Odoo session behind this token has ended: log in again".into(),
            label: "session_ended",
        },
    );
}
