//! Stampede protection: concurrent identical misses make one upstream call.
//!
//! The first miss of a key leads: it goes to Odoo and publishes the entry it stored. Later
//! misses of the same key follow: they wait (bounded) for that entry and answer from it. A
//! leader that stores nothing (an error, a non-200, a request that failed) publishes nothing;
//! its followers then go to Odoo themselves, so a follower is never worse off than without
//! the cache. The leader's slot is released when its guard drops, whatever happened.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bridgecore_filters::cache::key::CacheKey;
use tokio::sync::watch;

use super::store::Entry;

type Slot = watch::Receiver<Option<Arc<Entry>>>;

/// The misses in flight, by key.
#[derive(Default)]
pub struct Flights {
    map: Mutex<HashMap<CacheKey, Slot>>,
}

/// The leader's handle: publish the entry, or drop it to release the followers.
pub struct Leader {
    flights: Arc<Flights>,
    key: CacheKey,
    tx: watch::Sender<Option<Arc<Entry>>>,
}

impl std::fmt::Debug for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leader").field("key", &self.key).finish()
    }
}

/// The role of one miss.
pub enum Role {
    /// Go to Odoo and publish.
    Leader(Leader),
    /// Wait for the leader.
    Follower(Slot),
}

impl Flights {
    /// Joins the flight of `key`.
    pub fn join(self: &Arc<Self>, key: CacheKey) -> Role {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(rx) = map.get(&key) {
            return Role::Follower(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key, rx);
        Role::Leader(Leader {
            flights: Arc::clone(self),
            key,
            tx,
        })
    }

    /// Misses in flight (for tests and stats).
    pub fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether no miss is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Leader {
    /// Hands `entry` to the followers.
    pub fn publish(self, entry: Arc<Entry>) {
        let _ = self.tx.send(Some(entry));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.flights
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// What a follower got.
pub enum Followed {
    /// The leader's entry.
    Entry(Arc<Entry>),
    /// The leader ended without one (its answer was not storable, or its client went away).
    Gone,
    /// Nothing within the wait.
    TimedOut,
}

/// Waits up to `within` for the leader's entry.
pub async fn follow(mut rx: Slot, within: Duration) -> Followed {
    let wait = async {
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone(),
            Err(_) => None,
        }
    };
    match tokio::time::timeout(within, wait).await {
        Ok(Some(e)) => Followed::Entry(e),
        Ok(None) => Followed::Gone,
        Err(_) => Followed::TimedOut,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_get_the_leaders_entry_or_nothing() {
        let flights = Arc::new(Flights::default());
        let key = CacheKey([7; 32]);
        let Role::Leader(leader) = flights.join(key) else {
            panic!("first is the leader")
        };
        let Role::Follower(rx) = flights.join(key) else {
            panic!("second follows")
        };
        drop(leader);
        assert!(matches!(
            follow(rx, Duration::from_secs(1)).await,
            Followed::Gone
        ));
        assert!(flights.is_empty());
        assert!(matches!(flights.join(key), Role::Leader(_)));
    }
}
