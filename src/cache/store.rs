//! Where entries live: a TinyUFO-managed memory store, and Redis (with the memory store in
//! front of it as a per-instance layer).
//!
//! Entries carry the generation [`Snapshot`] they were made under; the caller compares it with
//! the current one, so the stores never decide freshness by generation themselves. The memory
//! store is bounded by weight (KiB, rounded up, so the real bytes stay under the budget) and
//! indexed by 64 bits of the key; the full key is compared on every get.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bridgecore_filters::cache::body::Bodies;
use bridgecore_filters::cache::key::CacheKey;
use tinyufo::TinyUfo;

use super::gens::Snapshot;
use crate::redis_conn::{RedisConn, RedisError};

/// One stored answer.
#[derive(Debug)]
pub struct Entry {
    /// Its full key.
    pub key: CacheKey,
    /// The generations it was made under.
    pub snapshot: Snapshot,
    /// Unix milliseconds until which it is fresh.
    pub fresh_until: u64,
    /// Unix milliseconds until which it may be served as STALE when Odoo fails.
    pub stale_until: u64,
    /// Its tenant (stats).
    pub tenant: Box<str>,
    /// Its model (stats).
    pub model: Box<str>,
    /// The answer.
    pub bodies: Bodies,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Entry {
    /// Bytes held, for the budget and stats.
    pub fn weight(&self) -> usize {
        self.bodies.weight() + self.tenant.len() + self.model.len() + 128
    }

    /// Whether it is fresh at `now` (Unix ms).
    pub fn is_fresh(&self, now: u64) -> bool {
        now < self.fresh_until
    }

    fn encode(&self) -> Vec<u8> {
        let bodies = self.bodies.encode();
        let mut out = Vec::with_capacity(bodies.len() + 128);
        out.push(1u8);
        out.extend_from_slice(&self.key.0);
        for n in [
            self.snapshot.epoch,
            self.snapshot.tenant,
            self.snapshot.model,
            self.snapshot.identity,
            self.fresh_until,
            self.stale_until,
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        for s in [&self.tenant, &self.model] {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(&bodies);
        out
    }

    fn decode(mut b: &[u8]) -> Option<Entry> {
        fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            if b.len() < n {
                return None;
            }
            let (head, rest) = b.split_at(n);
            *b = rest;
            Some(head)
        }
        fn u64_of(b: &mut &[u8]) -> Option<u64> {
            let mut a = [0u8; 8];
            a.copy_from_slice(take(b, 8)?);
            Some(u64::from_le_bytes(a))
        }
        fn str_of(b: &mut &[u8]) -> Option<Box<str>> {
            let mut a = [0u8; 4];
            a.copy_from_slice(take(b, 4)?);
            let n = u32::from_le_bytes(a) as usize;
            std::str::from_utf8(take(b, n)?).ok().map(Into::into)
        }
        if take(&mut b, 1)? != [1u8] {
            return None;
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(take(&mut b, 32)?);
        let snapshot = Snapshot {
            epoch: u64_of(&mut b)?,
            tenant: u64_of(&mut b)?,
            model: u64_of(&mut b)?,
            identity: u64_of(&mut b)?,
        };
        let fresh_until = u64_of(&mut b)?;
        let stale_until = u64_of(&mut b)?;
        let tenant = str_of(&mut b)?;
        let model = str_of(&mut b)?;
        let bodies = Bodies::decode(b).ok()?;
        Some(Entry {
            key: CacheKey(key),
            snapshot,
            fresh_until,
            stale_until,
            tenant,
            model,
            bodies,
        })
    }
}

/// What a put did to the store, for metrics.
#[derive(Debug, Default)]
pub struct PutOutcome {
    /// The entry that was under the same key before.
    pub replaced: Option<Arc<Entry>>,
    /// Other entries pushed out to make room.
    pub evicted: Vec<Arc<Entry>>,
    /// Whether the new entry is in the store (TinyLFU may refuse a newcomer less popular
    /// than what it would push out).
    pub admitted: bool,
}

/// The in-memory store.
pub struct MemoryStore {
    ufo: TinyUfo<u64, Arc<Entry>>,
    /// Byte keys ([`CacheKey::of_bytes`]) → canonical keys: a repeated call is found without
    /// decoding its arguments. Values are two keys, not entries, so aliases never keep an
    /// evicted entry alive.
    aliases: TinyUfo<u64, (CacheKey, CacheKey)>,
    bytes: AtomicI64,
    entries: AtomicI64,
    evictions: AtomicU64,
}

/// The weight unit: entries weigh whole KiB.
const UNIT: usize = 1024;

impl MemoryStore {
    /// A store holding at most `max_bytes` of entries.
    pub fn new(max_bytes: u64) -> Self {
        let units = (max_bytes as usize / UNIT).max(1);
        // The ghost queue's size: a guess of how many entries fit (~8 KiB each).
        let estimated = (max_bytes as usize / (8 * UNIT)).clamp(64, 1 << 22);
        MemoryStore {
            ufo: TinyUfo::new(units, estimated),
            aliases: TinyUfo::new(estimated * 2, estimated * 2),
            bytes: AtomicI64::new(0),
            entries: AtomicI64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn units(entry: &Entry) -> u16 {
        entry.weight().div_ceil(UNIT).clamp(1, u16::MAX as usize) as u16
    }

    /// The entry stored under `key`, if any (fresh or not).
    pub fn get(&self, key: &CacheKey) -> Option<Arc<Entry>> {
        self.ufo.get(&key.short()).filter(|e| e.key == *key)
    }

    /// Stores `entry`, replacing what was under its key.
    pub fn put(&self, entry: Arc<Entry>) -> PutOutcome {
        let short = entry.key.short();
        let mut out = PutOutcome {
            replaced: self.ufo.remove(&short),
            evicted: Vec::new(),
            admitted: true,
        };
        if let Some(old) = &out.replaced {
            self.forget(old);
        }
        let units = Self::units(&entry);
        self.bytes
            .fetch_add((units as usize * UNIT) as i64, Ordering::Relaxed);
        self.entries.fetch_add(1, Ordering::Relaxed);
        let new = Arc::clone(&entry);
        for kv in self.ufo.put(short, entry, units) {
            self.forget(&kv.data);
            if Arc::ptr_eq(&kv.data, &new) {
                out.admitted = false;
            } else {
                self.evictions.fetch_add(1, Ordering::Relaxed);
                out.evicted.push(kv.data);
            }
        }
        out
    }

    /// The canonical key a byte key was last seen with.
    pub fn alias(&self, bytes_key: &CacheKey) -> Option<CacheKey> {
        self.aliases
            .get(&bytes_key.short())
            .filter(|(b, _)| b == bytes_key)
            .map(|(_, canonical)| canonical)
    }

    /// Remembers that `bytes_key` names the entry under `canonical`.
    pub fn set_alias(&self, bytes_key: CacheKey, canonical: CacheKey) {
        if self.alias(&bytes_key) != Some(canonical) {
            let _ = self
                .aliases
                .put(bytes_key.short(), (bytes_key, canonical), 1);
        }
    }

    /// Drops the entry under `key`.
    pub fn remove(&self, key: &CacheKey) {
        if let Some(old) = self.ufo.remove(&key.short()) {
            self.forget(&old);
        }
    }

    fn forget(&self, entry: &Entry) {
        self.bytes.fetch_sub(
            (Self::units(entry) as usize * UNIT) as i64,
            Ordering::Relaxed,
        );
        self.entries.fetch_sub(1, Ordering::Relaxed);
    }

    /// Entries held.
    pub fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed).max(0) as u64
    }

    /// Bytes held (weights rounded up to KiB).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed).max(0) as u64
    }

    /// Entries evicted to make room since start.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }
}

/// Entries in Redis, under `bc:cache:e:<key hex>`, expiring at their stale limit.
pub struct RedisStore {
    conn: Arc<RedisConn>,
}

impl RedisStore {
    /// A store on `conn`.
    pub fn new(conn: Arc<RedisConn>) -> Self {
        RedisStore { conn }
    }

    fn name(key: &CacheKey) -> String {
        format!("bc:cache:e:{}", key.hex())
    }

    /// The entry under `key`, if Redis has one and it decodes (garbage reads as absent).
    pub async fn get(&self, key: &CacheKey) -> Result<Option<Entry>, RedisError> {
        let raw: Option<Vec<u8>> = self
            .conn
            .query_within(
                redis::cmd("GET").arg(Self::name(key)),
                self.conn.timeout() * 4,
            )
            .await?;
        Ok(raw
            .and_then(|b| Entry::decode(&b))
            .filter(|e| e.key == *key))
    }

    /// Stores `entry` until its stale limit.
    pub async fn put(&self, entry: &Entry) -> Result<(), RedisError> {
        let ttl = entry.stale_until.saturating_sub(now_ms()).max(1);
        let _: () = self
            .conn
            .query_within(
                redis::cmd("SET")
                    .arg(Self::name(&entry.key))
                    .arg(entry.encode())
                    .arg("PX")
                    .arg(ttl),
                self.conn.timeout() * 4,
            )
            .await?;
        Ok(())
    }
}

/// How long an entry lives in the store: its TTL plus the stale window.
pub fn lifetime(ttl: Duration, stale: Duration) -> (u64, u64) {
    let now = now_ms();
    let fresh = now + ttl.as_millis() as u64;
    (fresh, fresh + stale.as_millis() as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bridgecore_filters::cache::body::{Codings, Envelope};

    fn entry(n: u8, size: usize) -> Arc<Entry> {
        let result = format!("\"{}\"", "x".repeat(size));
        Arc::new(Entry {
            key: CacheKey([n; 32]),
            snapshot: Snapshot::default(),
            fresh_until: u64::MAX,
            stale_until: u64::MAX,
            tenant: "t".into(),
            model: "m".into(),
            bodies: Bodies::build(
                result.as_bytes(),
                Envelope::JsonRpc,
                Codings {
                    gzip: false,
                    brotli: false,
                    zstd: false,
                },
                1,
            ),
        })
    }

    #[test]
    fn memory_store_stays_within_its_budget_under_churn() {
        let store = MemoryStore::new(256 * 1024);
        for i in 0..2000u32 {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_le_bytes());
            let mut e = Arc::try_unwrap(entry(0, 3000)).unwrap();
            e.key = CacheKey(key);
            store.put(Arc::new(e));
            assert!(store.bytes() <= 256 * 1024, "bytes {}", store.bytes());
        }
        assert!(store.evictions() > 0);
        assert!(store.entries() > 0);
    }

    #[test]
    fn a_short_key_collision_is_a_miss_not_a_wrong_hit() {
        let store = MemoryStore::new(1 << 20);
        let a = entry(1, 10);
        store.put(a);
        let mut other = [1u8; 32];
        other[31] = 2;
        assert!(store.get(&CacheKey(other)).is_none());
        assert!(store.get(&CacheKey([1; 32])).is_some());
    }

    #[test]
    fn entries_round_trip_and_garbage_is_absent() {
        let e = entry(3, 100);
        let bytes = e.encode();
        let back = Entry::decode(&bytes).unwrap();
        assert_eq!(back.key, e.key);
        assert_eq!(back.bodies.result(), e.bodies.result());
        for cut in 0..bytes.len() {
            assert!(Entry::decode(&bytes[..cut]).is_none() || cut == bytes.len());
        }
        assert!(Entry::decode(b"garbage").is_none());
    }
}
