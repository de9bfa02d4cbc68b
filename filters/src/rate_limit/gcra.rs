//! The local limiter: an exact GCRA (generic cell rate algorithm) over sharded maps.
//!
//! GCRA keeps one number per key, the *theoretical arrival time* (TAT): the instant at which the
//! key's budget would be full again. With `count` requests per `per`, each request moves the TAT
//! forward by the emission interval `I = per / count` (rounded **up** to a whole nanosecond, so
//! the long-run rate never exceeds the configured one); a request is allowed while the TAT lies
//! at most `(count - 1) * I` ahead of now. A fresh key therefore gets exactly `count` requests
//! at once, then one more every `I`, and is full again `count * I` (the window) after its last
//! request. Refused requests do not move the TAT, so hammering does not extend a lockout.
//!
//! Memory: a key is stored as a 128-bit fingerprint (two SipHash-1-3 passes with random
//! per-process keys, so clients cannot aim for collisions; a collision, at odds of about
//! n²/2¹²⁹, could only pool two budgets, i.e. make them stricter) next to its TAT: 24 bytes and a
//! control byte per key. The number of keys is capped; a full shard first drops the keys whose
//! TAT has passed (they are indistinguishable from fresh keys, so counts stay exact), and only
//! if that frees less than a sixteenth of the shard drops the keys closest to full recovery.
//! Counts are exact as long as fewer keys are *active* (TAT in the future) than the cap.
//!
//! Concurrency: 64 shards, each a `std::sync::Mutex<HashMap>` locked only around the map
//! operation and the few integer operations of the decision; nothing here is async or blocks
//! on anything else.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::units::Rate;

use super::decision::Decision;
use super::key::LimitKey;

/// How many independently locked maps the limiter spreads keys over: enough that Pingora's
/// worker threads rarely meet on one lock.
pub const SHARDS: usize = 64;

/// The default cap on tracked keys (about a million: at most ~50 MB of limiter state even when
/// every key is active, which only a deliberate flood of distinct callers produces).
pub const DEFAULT_MAX_KEYS: usize = 1 << 20;

/// A key as stored: a keyed 128-bit hash of the [`LimitKey`], so no raw login, token subject
/// or session digest stays in memory and each entry has a fixed size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    /// Picks the shard.
    hi: u64,
    /// Already a random hash: the map uses it as is.
    lo: u64,
}

impl Hash for Fingerprint {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.lo);
    }
}

/// The map's hasher: the fingerprint is already a keyed hash, so hashing it again would only
/// cost time.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached if something other than a `Fingerprint` is hashed; stays correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Map = HashMap<Fingerprint, u64, BuildHasherDefault<PassThrough>>;

/// One lock and its map, on its own cache line so neighbouring shards do not contend.
#[repr(align(64))]
struct Shard(Mutex<Map>);

/// A rate's GCRA constants, in nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Gcra {
    limit: u64,
    /// `I`: the TAT step per request (at least 1 ns).
    interval: u64,
    /// `count * I`: how far ahead a just-exhausted TAT lies.
    window: u64,
    /// `(count - 1) * I`: how far ahead the TAT may lie for a request to pass.
    tolerance: u64,
}

impl Gcra {
    /// `None` for a rate that allows nothing (a zero count or a zero window).
    fn new(rate: Rate) -> Option<Gcra> {
        if rate.count == 0 || rate.per.is_zero() {
            return None;
        }
        let count = u128::from(rate.count);
        let interval = rate.per.as_nanos().div_ceil(count).max(1);
        let window = interval.saturating_mul(count);
        let interval = u64::try_from(interval).unwrap_or(u64::MAX);
        let window = u64::try_from(window).unwrap_or(u64::MAX);
        Some(Gcra {
            limit: rate.count,
            interval,
            window,
            tolerance: window.saturating_sub(interval),
        })
    }

    /// Decides one request against the stored TAT (`None`: a fresh key); returns the new TAT
    /// to store when the request is allowed.
    fn step(&self, stored: Option<u64>, now: u64) -> (Decision, Option<u64>) {
        let tat = stored.unwrap_or(0).max(now);
        let ahead = tat - now;
        if ahead <= self.tolerance {
            let tat = tat.saturating_add(self.interval);
            let ahead = tat - now;
            let decision = Decision {
                allowed: true,
                limit: self.limit,
                remaining: self.window.saturating_sub(ahead) / self.interval,
                reset_after: Duration::from_nanos(ahead),
                retry_after: None,
            };
            (decision, Some(tat))
        } else {
            let decision = Decision {
                allowed: false,
                limit: self.limit,
                remaining: 0,
                reset_after: Duration::from_nanos(ahead),
                retry_after: Some(Duration::from_nanos(ahead - self.tolerance)),
            };
            (decision, None)
        }
    }
}

/// An in-process, exact rate limiter: the fallback when Redis is absent or unreachable, so the
/// limits fail safe (never unlimited) and tests can check exact counts with a manual clock.
///
/// `now` is nanoseconds from one [`super::Clock`]; always pass the same clock's time to one
/// limiter.
pub struct LocalLimiter {
    shards: Box<[Shard]>,
    per_shard: usize,
    hash_hi: RandomState,
    hash_lo: RandomState,
}

impl std::fmt::Debug for LocalLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLimiter")
            .field("max_keys", &self.max_keys())
            .finish_non_exhaustive()
    }
}

impl Default for LocalLimiter {
    fn default() -> Self {
        LocalLimiter::new(DEFAULT_MAX_KEYS)
    }
}

impl LocalLimiter {
    /// A limiter tracking at most about `max_keys` keys (rounded down to a multiple of
    /// [`SHARDS`], and at least one per shard); see [`LocalLimiter::max_keys`].
    pub fn new(max_keys: usize) -> Self {
        let per_shard = (max_keys / SHARDS).max(1);
        let shards = (0..SHARDS)
            .map(|_| Shard(Mutex::new(Map::default())))
            .collect();
        LocalLimiter {
            shards,
            per_shard,
            hash_hi: RandomState::new(),
            hash_lo: RandomState::new(),
        }
    }

    /// The most keys this limiter ever holds at once: the memory bound.
    pub fn max_keys(&self) -> usize {
        self.per_shard * SHARDS
    }

    /// How many keys are tracked right now (locks each shard in turn; for metrics and tests).
    pub fn tracked_keys(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Drops every key whose budget is full again at `now` (they behave exactly like absent
    /// keys) and returns how many went. Optional upkeep: full shards do this by themselves.
    pub fn sweep(&self, now: u64) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let mut map = lock(s);
                let before = map.len();
                map.retain(|_, tat| *tat > now);
                before - map.len()
            })
            .sum()
    }

    /// Counts one request against `key` at `rate` and says whether it may pass.
    ///
    /// A rate that allows nothing (zero count or zero window; configuration validation rejects
    /// both) refuses every request rather than letting it through.
    pub fn check(&self, key: &LimitKey<'_>, rate: Rate, now: u64) -> Decision {
        let Some(gcra) = Gcra::new(rate) else {
            return Decision::refuse_all(rate.per);
        };
        let fp = self.fingerprint(key);
        let mut map = lock(self.shard(fp));
        if let Some(tat) = map.get_mut(&fp) {
            let (decision, new_tat) = gcra.step(Some(*tat), now);
            if let Some(new_tat) = new_tat {
                *tat = new_tat;
            }
            return decision;
        }
        let (decision, new_tat) = gcra.step(None, now);
        if let Some(new_tat) = new_tat {
            insert(&mut map, self.per_shard, fp, new_tat, now);
        }
        decision
    }

    /// Counts one request against several keys at once, all or nothing: it passes only if
    /// every key allows it, and only then is it charged to each of them. A refused request
    /// costs no key anything, so a client over its own budget cannot drain an account's login
    /// budget, and vice versa. The answer is the strictest of the decisions (the longest
    /// `Retry-After` on a refusal; see [`Decision`]).
    ///
    /// The shards involved are locked in ascending order, so concurrent multi-key checks cannot
    /// deadlock; the same key may appear twice (it is then charged twice).
    pub fn check_all(
        &self,
        first: (LimitKey<'_>, Rate),
        rest: &[(LimitKey<'_>, Rate)],
        now: u64,
    ) -> Decision {
        let mut checks = Vec::with_capacity(1 + rest.len());
        for (key, rate) in std::iter::once(&first).chain(rest) {
            let Some(gcra) = Gcra::new(*rate) else {
                return Decision::refuse_all(rate.per);
            };
            checks.push((self.fingerprint(key), gcra));
        }
        let mut shard_ids: Vec<usize> = checks.iter().map(|(fp, _)| shard_index(*fp)).collect();
        shard_ids.sort_unstable();
        shard_ids.dedup();
        let mut guards: Vec<(usize, MutexGuard<'_, Map>)> = shard_ids
            .into_iter()
            .filter_map(|i| self.shards.get(i).map(|s| (i, lock(s))))
            .collect();

        let mut pending: Vec<(Fingerprint, u64)> = Vec::with_capacity(checks.len());
        let mut verdict: Option<Decision> = None;
        for (fp, gcra) in &checks {
            let index = shard_index(*fp);
            let Some((_, map)) = guards.iter().find(|(i, _)| *i == index) else {
                // Every shard was locked above; refusing keeps an impossible miss fail-safe.
                return Decision::refuse_all(Duration::ZERO);
            };
            let stored = pending
                .iter()
                .rev()
                .find(|(p, _)| p == fp)
                .map(|(_, tat)| *tat)
                .or_else(|| map.get(fp).copied());
            let (decision, new_tat) = gcra.step(stored, now);
            if let Some(tat) = new_tat {
                pending.push((*fp, tat));
            }
            verdict = Some(match verdict {
                None => decision,
                Some(v) => v.stricter(decision),
            });
        }
        let Some(verdict) = verdict else {
            return Decision::refuse_all(Duration::ZERO);
        };
        if verdict.allowed {
            for (fp, tat) in pending {
                let index = shard_index(fp);
                if let Some((_, map)) = guards.iter_mut().find(|(i, _)| *i == index) {
                    insert(map, self.per_shard, fp, tat, now);
                }
            }
        }
        verdict
    }

    fn fingerprint(&self, key: &LimitKey<'_>) -> Fingerprint {
        let mut hi = self.hash_hi.build_hasher();
        let mut lo = self.hash_lo.build_hasher();
        let mut both = Both {
            hi: &mut hi,
            lo: &mut lo,
            buf: [0; 64],
            len: 0,
        };
        key.feed(&mut both);
        both.flush();
        Fingerprint {
            hi: hi.finish(),
            lo: lo.finish(),
        }
    }

    fn shard(&self, fp: Fingerprint) -> &Shard {
        &self.shards[shard_index(fp)]
    }
}

/// Feeds two hashers the same bytes, a buffer at a time. A key is a dozen short writes, and
/// each would be a SipHash call (~50 instructions) per hasher; SipHash hashes the stream of
/// bytes, not the calls, so the two hashes are those of the key's writes themselves (its
/// encoding stays unambiguous, see [`LimitKey::feed`]).
struct Both<'a, H> {
    hi: &'a mut H,
    lo: &'a mut H,
    buf: [u8; 64],
    len: usize,
}

impl<H: Hasher> Both<'_, H> {
    fn flush(&mut self) {
        self.hi.write(&self.buf[..self.len]);
        self.lo.write(&self.buf[..self.len]);
        self.len = 0;
    }
}

impl<H: Hasher> Hasher for Both<'_, H> {
    fn write(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > self.buf.len() {
            self.flush();
            if bytes.len() > self.buf.len() {
                self.hi.write(bytes);
                self.lo.write(bytes);
                return;
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Not a hash of its own: the fingerprint is the two hashers' (after [`Both::flush`]).
    fn finish(&self) -> u64 {
        0
    }
}

fn shard_index(fp: Fingerprint) -> usize {
    (fp.hi % SHARDS as u64) as usize
}

/// Locks a shard. A poisoned lock (a thread panicked while holding it) is taken over: the map
/// only holds independent integers, so there is no half-done update to fear.
fn lock(shard: &Shard) -> MutexGuard<'_, Map> {
    shard.0.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stores `tat` for `fp`, making room first if the shard is full.
fn insert(map: &mut Map, cap: usize, fp: Fingerprint, tat: u64, now: u64) {
    if let Some(slot) = map.get_mut(&fp) {
        *slot = tat;
        return;
    }
    if map.len() >= cap {
        make_room(map, cap, now);
    }
    map.insert(fp, tat);
}

/// Brings a full shard down to at most `cap - max(1, cap / 16)` keys: keys whose budget is full
/// again go first (no information lost), then the keys closest to full recovery (whose loss
/// gives the least away). Freeing a sixteenth at a time keeps the scan amortised to a few steps
/// per insertion even when a flood of distinct keys keeps every shard full.
fn make_room(map: &mut Map, cap: usize, now: u64) {
    map.retain(|_, tat| *tat > now);
    let target = cap.saturating_sub((cap / 16).max(1));
    if map.len() <= target {
        return;
    }
    let excess = map.len() - target;
    let mut tats: Vec<u64> = map.values().copied().collect();
    let (_, threshold, _) = tats.select_nth_unstable(excess - 1);
    let threshold = *threshold;
    let below = map.values().filter(|tat| **tat < threshold).count();
    let mut equal_quota = excess - below;
    map.retain(|_, tat| {
        if *tat < threshold {
            false
        } else if *tat == threshold && equal_quota > 0 {
            equal_quota -= 1;
            false
        } else {
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::{Arc, Barrier};

    use super::*;
    use crate::classify::Category;
    use crate::rate_limit::{Clock, ManualClock, Subject};

    const SEC: u64 = 1_000_000_000;

    fn ip(n: u32) -> Subject {
        Subject::Ip(IpAddr::V4(Ipv4Addr::from(n)))
    }

    fn key(subject: &Subject) -> LimitKey<'_> {
        LimitKey::caller("t", Category::Read, subject)
    }

    /// Buffering the key's writes changes nothing: each half of the fingerprint is the hash
    /// of the key fed to its hasher directly (keys longer than the buffer included).
    #[test]
    fn buffered_fingerprints_are_the_keys_hashes() {
        let limiter = LocalLimiter::new(1_000);
        let long = "x".repeat(200);
        let subjects = [
            ip(7),
            Subject::Ip(IpAddr::V6("2001:db8::1".parse().unwrap())),
            Subject::Token("2".into()),
            Subject::Token(long.clone()),
        ];
        let mut keys: Vec<LimitKey<'_>> = subjects.iter().map(key).collect();
        keys.push(LimitKey::login("t", "db", "Admin"));
        keys.push(LimitKey::login("t", &long, "Ünïcödé Lögin"));
        keys.push(LimitKey::network(
            "tenant-name",
            Category::Write,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        ));
        let mut seen = std::collections::HashSet::new();
        for k in &keys {
            let direct = |state: &RandomState| {
                let mut h = state.build_hasher();
                k.feed(&mut h);
                h.finish()
            };
            let fp = limiter.fingerprint(k);
            assert_eq!(fp.hi, direct(&limiter.hash_hi), "{k:?}");
            assert_eq!(fp.lo, direct(&limiter.hash_lo), "{k:?}");
            assert!(seen.insert((fp.hi, fp.lo)), "{k:?}");
        }
    }

    #[test]
    fn burst_of_exactly_count_then_one_per_interval_then_full_after_window() {
        for (rate, interval) in [
            (Rate::per_minute(10), 6 * SEC),
            (Rate::per_minute(100), 600_000_000),
            (Rate::per_second(3), 333_333_334), // 1s / 3, rounded up
            (Rate::per_minute(7), 8_571_428_572),
            (Rate::per_hour(1), 3_600 * SEC),
        ] {
            let limiter = LocalLimiter::new(1_000);
            let clock = ManualClock::new(42);
            let s = ip(1);
            let t0 = clock.now();
            for i in 0..rate.count {
                let d = limiter.check(&key(&s), rate, t0);
                assert!(d.allowed, "{rate}: request {} refused", i + 1);
                assert_eq!(d.remaining, rate.count - 1 - i, "{rate}");
            }
            let d = limiter.check(&key(&s), rate, t0);
            assert!(!d.allowed, "{rate}: request count+1 allowed");
            assert_eq!(d.retry_after, Some(Duration::from_nanos(interval)));
            // One more exactly one interval later, not a nanosecond before.
            assert!(!limiter.check(&key(&s), rate, t0 + interval - 1).allowed);
            assert!(limiter.check(&key(&s), rate, t0 + interval).allowed);
            assert!(!limiter.check(&key(&s), rate, t0 + interval).allowed);
            // Full again one window after the last allowed request.
            let full = t0 + interval * (rate.count + 1);
            for _ in 0..rate.count {
                assert!(limiter.check(&key(&s), rate, full).allowed, "{rate}");
            }
            assert!(!limiter.check(&key(&s), rate, full).allowed, "{rate}");
        }
    }

    #[test]
    fn remaining_reset_and_retry_follow_the_tat() {
        let limiter = LocalLimiter::new(1_000);
        let rate = Rate::per_minute(10);
        let s = ip(1);
        let d = limiter.check(&key(&s), rate, 0);
        assert_eq!(
            d,
            Decision {
                allowed: true,
                limit: 10,
                remaining: 9,
                reset_after: Duration::from_secs(6),
                retry_after: None
            }
        );
        for _ in 0..9 {
            let _ = limiter.check(&key(&s), rate, 0);
        }
        let d = limiter.check(&key(&s), rate, SEC / 2);
        assert_eq!(
            d,
            Decision {
                allowed: false,
                limit: 10,
                remaining: 0,
                reset_after: Duration::from_millis(59_500),
                retry_after: Some(Duration::from_millis(5_500)),
            }
        );
        // Refusals are free: the next allowance still comes 6 s after the burst.
        for _ in 0..100 {
            let _ = limiter.check(&key(&s), rate, SEC);
        }
        let d = limiter.check(&key(&s), rate, 6 * SEC);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.reset_after, Duration::from_secs(60));
        // Half a window later, half the budget is back.
        let d = limiter.check(&key(&s), rate, 36 * SEC);
        assert!(d.allowed);
        assert_eq!(d.remaining, 4);
        assert_eq!(d.reset_after, Duration::from_secs(36));
    }

    #[test]
    fn keys_are_independent() {
        let limiter = LocalLimiter::new(1_000);
        let rate = Rate::per_minute(1);
        let (a, b) = (ip(1), ip(2));
        assert!(limiter.check(&key(&a), rate, 0).allowed);
        assert!(!limiter.check(&key(&a), rate, 0).allowed);
        assert!(limiter.check(&key(&b), rate, 0).allowed);
        let other_tenant = LimitKey::caller("u", Category::Read, &a);
        assert!(limiter.check(&other_tenant, rate, 0).allowed);
        let other_category = LimitKey::caller("t", Category::Write, &a);
        assert!(limiter.check(&other_category, rate, 0).allowed);
        let same_text_as_session = Subject::Session("1".into());
        let same_text_as_token = Subject::Token("1".into());
        assert!(limiter.check(&key(&same_text_as_session), rate, 0).allowed);
        assert!(limiter.check(&key(&same_text_as_token), rate, 0).allowed);
        assert!(!limiter.check(&key(&same_text_as_token), rate, 0).allowed);
    }

    #[test]
    fn degenerate_and_extreme_rates_never_panic_and_never_open_up() {
        let limiter = LocalLimiter::new(1_000);
        let s = ip(1);
        for (rate, retry) in [
            (Rate::per_minute(0), 60),
            (
                Rate {
                    count: 5,
                    per: Duration::ZERO,
                },
                1,
            ),
        ] {
            let d = limiter.check(&key(&s), rate, 0);
            assert!(!d.allowed);
            assert_eq!(d.retry_after_secs(), Some(retry));
        }
        for rate in [
            Rate::per_second(u64::MAX),
            Rate {
                count: 1,
                per: Duration::MAX,
            },
            Rate {
                count: u64::MAX,
                per: Duration::MAX,
            },
        ] {
            for now in [0, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
                let d = limiter.check(&key(&s), rate, now);
                let _ = d.headers();
            }
        }
        let once = Rate {
            count: 1,
            per: Duration::MAX,
        };
        let t = ip(9);
        assert!(limiter.check(&key(&t), once, 0).allowed);
        assert!(!limiter.check(&key(&t), once, u64::MAX - 1).allowed);
    }

    #[test]
    fn login_key_ignores_case_and_surrounding_spaces() {
        let limiter = LocalLimiter::new(1_000);
        let rate = Rate::per_minute(2);
        assert!(
            limiter
                .check(&LimitKey::login("t", "db", "Admin"), rate, 0)
                .allowed
        );
        assert!(
            limiter
                .check(&LimitKey::login("t", "db", " admin "), rate, 0)
                .allowed
        );
        assert!(
            !limiter
                .check(&LimitKey::login("t", "db", "ADMIN"), rate, 0)
                .allowed
        );
        assert!(
            limiter
                .check(&LimitKey::login("t", "db2", "admin"), rate, 0)
                .allowed
        );
        assert!(
            limiter
                .check(&LimitKey::login("t", "db", "admin2"), rate, 0)
                .allowed
        );
    }

    #[test]
    fn check_all_charges_nothing_unless_every_key_allows() {
        let limiter = LocalLimiter::new(1_000);
        let (a, b) = (ip(1), ip(2));
        let small = Rate::per_minute(1);
        let big = Rate::per_minute(10);
        // b's budget is spent; a request needing a and b is refused and a keeps its budget.
        assert!(limiter.check(&key(&b), small, 0).allowed);
        let d = limiter.check_all((key(&a), big), &[(key(&b), small)], 0);
        assert!(!d.allowed);
        assert_eq!(d.limit, 1);
        assert_eq!(d.retry_after, Some(Duration::from_secs(60)));
        assert_eq!(limiter.check(&key(&a), big, 0).remaining, 9);
        // Both allow: both are charged, and the answer shows the tighter budget.
        let c = ip(3);
        let d = limiter.check_all((key(&a), big), &[(key(&c), small)], 0);
        assert!(d.allowed);
        assert_eq!((d.limit, d.remaining), (1, 0));
        assert_eq!(limiter.check(&key(&a), big, 0).remaining, 7);
        assert!(!limiter.check(&key(&c), small, 0).allowed);
        // The same key twice is charged twice.
        let e = ip(4);
        let two = Rate::per_minute(2);
        assert!(
            limiter
                .check_all((key(&e), two), &[(key(&e), two)], 0)
                .allowed
        );
        assert!(!limiter.check(&key(&e), two, 0).allowed);
        let f = ip(5);
        assert!(
            !limiter
                .check_all((key(&f), small), &[(key(&f), small)], 0)
                .allowed
        );
        assert!(limiter.check(&key(&f), small, 0).allowed);
        // A degenerate rate refuses the whole request.
        assert!(
            !limiter
                .check_all((key(&ip(6)), big), &[(key(&ip(7)), Rate::per_minute(0))], 0)
                .allowed
        );
    }

    #[test]
    fn a_million_distinct_keys_stay_under_the_cap() {
        let limiter = LocalLimiter::new(10_000);
        let cap = limiter.max_keys();
        assert!(cap <= 10_000);
        let rate = Rate::per_minute(100);
        // All at one instant: nothing expires, so eviction of live keys must bound memory.
        for n in 0..1_000_000u32 {
            assert!(limiter.check(&key(&ip(n)), rate, 0).allowed);
            if n % 50_000 == 0 {
                assert!(limiter.tracked_keys() <= cap);
            }
        }
        let tracked = limiter.tracked_keys();
        assert!(tracked <= cap, "{tracked} > {cap}");
        assert!(
            tracked >= cap - cap / 8,
            "eviction freed too much: {tracked}"
        );
        assert_eq!(limiter.sweep(60 * SEC), tracked);
        assert_eq!(limiter.tracked_keys(), 0);
    }

    #[test]
    fn expired_keys_go_first_so_an_active_key_keeps_its_count() {
        let limiter = LocalLimiter::new(SHARDS * 4);
        let clock = ManualClock::new(0);
        let slow = Rate::per_minute(1);
        let fast = Rate::per_second(1_000); // a key's TAT passes 1 ms after its request
        let victim = ip(u32::MAX);
        assert!(limiter.check(&key(&victim), slow, clock.now()).allowed);
        for n in 0..50_000u32 {
            clock.advance(Duration::from_millis(1));
            assert!(limiter.check(&key(&ip(n)), fast, clock.now()).allowed);
        }
        assert!(limiter.tracked_keys() <= limiter.max_keys());
        // The victim's budget survived 50 000 other keys passing through a 256-key limiter.
        clock.set(59 * SEC);
        assert!(!limiter.check(&key(&victim), slow, clock.now()).allowed);
        assert!(limiter.check(&key(&victim), slow, 60 * SEC).allowed);
    }

    #[test]
    fn concurrent_checks_never_exceed_the_burst() {
        let limiter = Arc::new(LocalLimiter::new(1_000));
        let clock = Arc::new(ManualClock::new(SEC));
        let rate = Rate::per_minute(100);
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (limiter, clock, barrier) = (limiter.clone(), clock.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let s = ip(1);
                    let login = LimitKey::login("t", "db", "admin");
                    barrier.wait();
                    let mut allowed = (0u64, 0u64);
                    for n in 0..200u32 {
                        if limiter.check(&key(&s), rate, clock.now()).allowed {
                            allowed.0 += 1;
                        }
                        let own = ip(1_000 + n);
                        let own_key = LimitKey::caller("t", Category::Auth, &own);
                        if limiter
                            .check_all(
                                (own_key, rate),
                                &[(login, Rate::per_minute(10))],
                                clock.now(),
                            )
                            .allowed
                        {
                            allowed.1 += 1;
                        }
                    }
                    allowed
                })
            })
            .collect();
        let totals = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0), |acc, x| (acc.0 + x.0, acc.1 + x.1));
        assert_eq!(totals, (100, 10));
    }
}
