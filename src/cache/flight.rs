//! Stampede protection: concurrent identical misses make one upstream call.
//!
//! The first miss of a key leads: it goes to Odoo and publishes the entry it stored. Later
//! misses of the same key follow: they wait (bounded) for that entry and answer from it. A
//! leader that stores nothing (an error, a non-200, a request that failed) publishes nothing;
//! its followers then go to Odoo themselves, so a follower is never worse off than without
//! the cache. The leader's slot is released when its guard drops, whatever happened.
//!
//! A follower takes the leader's entry only if it was made under generations at least as new
//! as the ones the follower saw at its own start: a write can land between the leader's
//! "did the generations move?" check and its publish, and a read that began after that write
//! must not get the leader's pre-write answer. It goes to Odoo instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bridgecore_filters::cache::key::CacheKey;
use tokio::sync::watch;

use super::gens::Snapshot;
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

    /// How many followers wait on this leader (tests: to order a follower before a publish).
    #[cfg(test)]
    pub fn followers(&self) -> usize {
        // The flight map holds one receiver; every follower holds a clone.
        self.tx.receiver_count().saturating_sub(1)
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
    /// The leader's entry, made under generations older than the follower saw at its start
    /// (a write landed in between): not to be served to this follower.
    Outdated,
    /// The leader ended without one (its answer was not storable, or its client went away).
    Gone,
    /// Nothing within the wait.
    TimedOut,
}

/// Waits up to `within` for the leader's entry; `seen` is the follower's own snapshot, taken
/// at its start.
pub async fn follow(mut rx: Slot, within: Duration, seen: &Snapshot) -> Followed {
    let wait = async {
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone(),
            Err(_) => None,
        }
    };
    match tokio::time::timeout(within, wait).await {
        Ok(Some(e)) if e.snapshot.covers(seen) => Followed::Entry(e),
        Ok(Some(_)) => Followed::Outdated,
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
            follow(rx, Duration::from_secs(1), &Snapshot::default()).await,
            Followed::Gone
        ));
        assert!(flights.is_empty());
        assert!(matches!(flights.join(key), Role::Leader(_)));
    }

    fn entry(key: CacheKey, snapshot: Snapshot) -> Arc<Entry> {
        use bridgecore_filters::cache::body::{Bodies, Codings, Envelope};
        let codings = Codings {
            gzip: false,
            brotli: false,
            zstd: false,
        };
        Arc::new(Entry {
            key,
            snapshot,
            fresh_until: u64::MAX,
            stale_until: u64::MAX,
            tenant: "t".into(),
            model: "res.partner".into(),
            bodies: Bodies::build(b"[1]", Envelope::JsonRpc, codings, 1),
        })
    }

    #[tokio::test]
    async fn a_follower_never_takes_an_entry_older_than_its_own_start() {
        let flights = Arc::new(Flights::default());
        let key = CacheKey([8; 32]);
        // The leader read the generations before a write; the write bumped the tenant; one
        // follower started before the write, one after it.
        let before = Snapshot {
            tenant: 3,
            model: 5,
            ..Snapshot::default()
        };
        let after = Snapshot {
            tenant: 4,
            ..before
        };
        let Role::Leader(leader) = flights.join(key) else {
            panic!("first is the leader")
        };
        let (Role::Follower(early), Role::Follower(late), Role::Follower(later)) =
            (flights.join(key), flights.join(key), flights.join(key))
        else {
            panic!("the others follow")
        };
        assert_eq!(leader.followers(), 3);
        // The leader publishes what it stored under its own (pre-write) snapshot.
        leader.publish(entry(key, before));
        let wait = Duration::from_secs(1);
        assert!(matches!(
            follow(early, wait, &before).await,
            Followed::Entry(e) if e.snapshot == before
        ));
        assert!(matches!(
            follow(late, wait, &after).await,
            Followed::Outdated
        ));
        // Another Redis dataset (epoch) is never comparable.
        let other_epoch = Snapshot { epoch: 1, ..before };
        assert!(matches!(
            follow(later, wait, &other_epoch).await,
            Followed::Outdated
        ));
        // An entry newer than what the follower saw (it started before a write the leader
        // had already seen) is fresher than its own read would be: taken.
        let Role::Leader(leader) = flights.join(key) else {
            panic!("the flight ended with its leader")
        };
        let Role::Follower(slow) = flights.join(key) else {
            panic!("second follows")
        };
        leader.publish(entry(key, after));
        assert!(matches!(
            follow(slow, wait, &before).await,
            Followed::Entry(_)
        ));
    }
}
