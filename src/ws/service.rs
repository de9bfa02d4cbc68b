//! The live-updates background service: the dispatcher, the Redis subscriber that brings other
//! instances' change events, the pollers, and the 1001 close of every socket at shutdown.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bridgecore_filters::ws::protocol::close;
use bridgecore_filters::ws::Envelope;
use futures_util::StreamExt;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use super::{CloseRequest, KEY_PREFIX};
use crate::Shared;

/// The background service (one per BridgeCore, added by `BridgeCore::add_to`).
pub(crate) struct Service {
    pub(crate) shared: Arc<Shared>,
}

#[async_trait]
impl BackgroundService for Service {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let shared = self.shared.clone();
        let Some(events) = shared.ws.take_events() else {
            return;
        };
        let mut tasks = vec![tokio::spawn(super::dispatch::run(shared.clone(), events))];
        if let Some(mut requests) = shared.ws.take_poller_requests() {
            let s = shared.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(key) = requests.recv().await {
                    if s.ws.poller(&key).is_none() {
                        tokio::spawn(super::poller::run(s.clone(), key));
                    }
                }
            }));
        }
        if shared.ws.redis.is_some() {
            tasks.push(tokio::spawn(subscribe(shared.clone())));
        }
        let _ = shutdown.changed().await;
        // Graceful shutdown: sockets close with 1001 while the grace period runs; pollers give
        // their leases back.
        let _ = shared.ws.shutdown.send(true);
        shared.ws.close_all(&CloseRequest {
            code: close::GOING_AWAY,
            reason: "server shutting down: reconnect".into(),
            label: "shutdown",
        });
        // Let the sockets send their close frames before the runtime goes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        for t in tasks {
            t.abort();
        }
    }
}

/// Reads other instances' change events from Redis (`PSUBSCRIBE bc:ws:ev:*`), reconnecting
/// with a back-off while Redis is away (events published meanwhile are missed).
async fn subscribe(shared: Arc<Shared>) {
    let Some(redis) = shared.ws.redis.clone() else {
        return;
    };
    let mut backoff = Duration::from_millis(250);
    let pattern = format!("{KEY_PREFIX}ws:ev:*");
    loop {
        let connected = tokio::time::timeout(Duration::from_secs(2), async {
            let mut ps = redis.client().get_async_pubsub().await?;
            ps.psubscribe(&pattern).await?;
            Ok::<_, redis::RedisError>(ps)
        })
        .await;
        let mut ps = match connected {
            Ok(Ok(ps)) => ps,
            Ok(Err(e)) => {
                redis.count_error();
                log::debug!("websocket: redis subscriber: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            Err(_) => {
                redis.count_error();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(250);
        let mut stream = ps.on_message();
        while let Some(msg) = stream.next().await {
            match Envelope::decode(msg.get_payload_bytes()) {
                Ok(env) if env.origin == shared.ws.instance => {}
                Ok(env) => {
                    // Only configured tenants: label values stay bounded, and another
                    // deployment's events on a shared Redis are ignored.
                    if shared.runtime.load().tenant(&env.change.tenant).is_some() {
                        shared.ws.enqueue(Arc::new(env.change));
                    }
                }
                Err(e) => {
                    shared
                        .ws
                        .metrics
                        .bus_errors
                        .with_label_values(&["bad_message"])
                        .inc();
                    log::debug!("websocket: ignored a message on the change channel: {e}");
                }
            }
        }
        redis.count_error();
        log::warn!("websocket: the redis change subscription dropped; reconnecting");
    }
}
