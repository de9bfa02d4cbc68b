//! The rate limiter the proxy asks (issue 3 item 6): one budget per caller shared by every
//! BridgeCore instance through Redis, and the exact in-process [`LocalLimiter`] when Redis is
//! not configured or not answering (design.md §5: local limits, never unlimited).
//!
//! Both backends run the same GCRA (see `bridgecore_filters::rate_limit`): a fresh caller gets
//! exactly `count` requests at once, then one per interval, refused requests cost nothing, and
//! a login attempt is charged to the caller and to the account all or nothing. They answer
//! with the same [`Decision`], so the `X-RateLimit-*` and `Retry-After` headers do not depend
//! on which backend answered.
//!
//! **Redis backend.** One Lua script, run with `EVALSHA` (loaded on `NOSCRIPT`), checks every
//! key of a [`Charge`] and stores the new TATs only if all allow: atomic across instances
//! without locks or `WATCH`. Each key `bc:rl:<LimitKey::stable_id>` holds the key's TAT as an
//! integer of microseconds and expires when that TAT passes, so Redis keeps nothing for idle
//! callers. Time is Redis's own `TIME` (one clock for every instance, whatever their drift)
//! in microseconds, because Lua numbers are doubles, exact only up to 2⁵³: microseconds since
//! 1970 fit with centuries to spare, nanoseconds would not. Intervals are therefore rounded up
//! to whole microseconds (never more permissive than configured; for every rate whose interval
//! is a whole number of microseconds, e.g. any count per minute dividing 60 000 000, the
//! decisions are identical to the local limiter's to the nanosecond). When a [`Clock`] is
//! injected (tests), its time (in microseconds) is passed to the script instead, and the
//! local fallback uses the same clock, so a test controls both backends exactly.
//!
//! **Fallback.** A check that Redis cannot answer within the connection's timeout (down,
//! breaker open, timeout, script error) is decided by the local limiter instead. While Redis is
//! out, each instance therefore enforces the full limit on its own (with N instances a caller
//! may get up to N times its budget): degraded, but never unlimited. One warning is logged
//! when the fallback starts and one notice when Redis answers again; [`Limiter::fallbacks`]
//! counts the checks it decided.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bridgecore_filters::rate_limit::{
    Charge, Clock, Decision, LimitKey, LocalLimiter, SystemClock,
};
use bridgecore_filters::units::Rate;

use crate::redis_conn::{RedisConn, RedisError, KEY_PREFIX};

/// The prefix of the limiter's keys (after [`KEY_PREFIX`]).
const RL_PREFIX: &str = "rl:";

/// The longest window the Redis script accepts, in microseconds (2⁵¹ µs, 71 years): with "now"
/// at about 2⁵⁰ µs since 1970, every sum the script makes stays below 2⁵³, where doubles are
/// still exact integers. Rates beyond it (nobody configures a budget over decades) are counted
/// locally.
const MAX_WINDOW_US: u64 = 1 << 51;

/// The GCRA over every key of one charge, all or nothing (see the module doc).
///
/// `KEYS`: the budgets. `ARGV[1]`: now in µs, or empty to use Redis `TIME`. Then per key:
/// `ARGV[2i]` the interval and `ARGV[2i+1]` the window, in µs. Returns four integers per key:
/// allowed (0/1), remaining, reset-after µs, retry-after µs. The same key twice is charged
/// twice, as `LocalLimiter::check_all` does.
const GCRA_LUA: &str = r#"
if redis.replicate_commands then pcall(redis.replicate_commands) end
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local out = {}
local pending = {}
local all = true
for i = 1, #KEYS do
  local key = KEYS[i]
  local interval = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  local tolerance = window - interval
  local tat = pending[key]
  if tat == nil then
    tat = tonumber(redis.call('GET', key)) or 0
  end
  if tat < now then tat = now end
  local ahead = tat - now
  if ahead <= tolerance then
    local new_tat = tat + interval
    pending[key] = new_tat
    local left = new_tat - now
    local room = window - left
    if room < 0 then room = 0 end
    table.insert(out, 1)
    table.insert(out, math.floor(room / interval))
    table.insert(out, left)
    table.insert(out, 0)
  else
    all = false
    table.insert(out, 0)
    table.insert(out, 0)
    table.insert(out, ahead)
    table.insert(out, ahead - tolerance)
  end
end
if all then
  for key, tat in pairs(pending) do
    local ttl_ms = math.ceil((tat - now) / 1000)
    if ttl_ms < 1 then ttl_ms = 1 end
    redis.call('SET', key, string.format('%.0f', tat), 'PX', string.format('%.0f', ttl_ms))
  end
end
return out
"#;

/// The limiter: shared through Redis when it has one, local otherwise or meanwhile.
pub struct Limiter {
    redis: Option<Arc<RedisConn>>,
    /// The script; its SHA1 is computed once.
    script: redis::Script,
    /// The local limiter's time, and (when injected) the script's.
    clock: Arc<dyn Clock>,
    /// Whether `clock` was injected: then the script is given its time instead of `TIME`.
    injected_clock: bool,
    local: LocalLimiter,
    fallbacks: AtomicU64,
    /// The last check with Redis configured fell back: warn once per outage, not per request.
    degraded: AtomicBool,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("redis", &self.redis)
            .field("backend", &self.backend_in_use())
            .field("fallbacks", &self.fallbacks())
            .finish_non_exhaustive()
    }
}

impl Limiter {
    /// A limiter on `redis` (with the local limiter as its fallback), or local only.
    ///
    /// `clock`: `None` in production (Redis `TIME` for the shared budgets, a monotonic
    /// [`SystemClock`] for the local ones). Tests inject a `ManualClock`: its time then drives
    /// both backends.
    pub fn new(redis: Option<Arc<RedisConn>>, clock: Option<Arc<dyn Clock>>) -> Self {
        let injected_clock = clock.is_some();
        let clock = clock.unwrap_or_else(|| Arc::new(SystemClock::new()));
        Limiter {
            redis,
            script: redis::Script::new(GCRA_LUA),
            clock,
            injected_clock,
            local: LocalLimiter::default(),
            fallbacks: AtomicU64::new(0),
            degraded: AtomicBool::new(false),
        }
    }

    /// Counts one request against every budget of `charge` and says whether it may pass.
    /// Never fails: when Redis cannot answer, the local limiter does.
    pub async fn check(&self, charge: &Charge<'_>) -> Decision {
        if let Some(redis) = &self.redis {
            if let Some(args) = ScriptArgs::new(charge) {
                match self.check_redis(redis, &args).await {
                    Ok(decision) => {
                        if self.degraded.swap(false, Ordering::AcqRel) {
                            log::info!("rate limits: Redis answers again; budgets are shared");
                        }
                        return decision;
                    }
                    Err(e) => {
                        self.fallbacks.fetch_add(1, Ordering::Relaxed);
                        if !self.degraded.swap(true, Ordering::AcqRel) {
                            log::warn!(
                                "rate limits: Redis check failed ({e}); counting locally until \
                                 it answers again (each instance then enforces the whole limit)"
                            );
                        }
                    }
                }
            }
        }
        charge.check(&self.local, self.clock.now())
    }

    /// `"redis"` while budgets are shared (Redis configured, connected, and the last check
    /// answered by it), `"local"` otherwise: for a metric label.
    pub fn backend_in_use(&self) -> &'static str {
        match &self.redis {
            Some(redis) if !self.degraded.load(Ordering::Acquire) && redis.is_up() => "redis",
            _ => "local",
        }
    }

    /// Whether a Redis backend is configured (whatever its state).
    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// How many checks the local limiter decided because Redis could not (not counting checks
    /// made without Redis configured).
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// The local limiter (the fallback, or the only backend): for upkeep and key counts.
    pub fn local(&self) -> &LocalLimiter {
        &self.local
    }

    async fn check_redis(
        &self,
        redis: &RedisConn,
        args: &ScriptArgs<'_>,
    ) -> Result<Decision, RedisError> {
        let mut invocation = self.script.prepare_invoke();
        for (key, _, _) in &args.keys {
            invocation.key(redis_key(key));
        }
        if self.injected_clock {
            invocation.arg(self.clock.now() / 1_000);
        } else {
            invocation.arg("");
        }
        for (_, gcra, _) in &args.keys {
            invocation.arg(gcra.interval).arg(gcra.window);
        }
        let reply: Vec<i64> = redis.invoke(&invocation).await?;
        if reply.len() != 4 * args.keys.len() {
            return Err(RedisError::Protocol(format!(
                "rate-limit script returned {} values for {} keys",
                reply.len(),
                args.keys.len()
            )));
        }
        let mut verdict: Option<Decision> = None;
        for ((_, _, limit), values) in args.keys.iter().zip(reply.chunks_exact(4)) {
            let decision = decision(*limit, values)?;
            verdict = Some(match verdict {
                None => decision,
                Some(v) => stricter(v, decision),
            });
        }
        verdict.ok_or_else(|| RedisError::Protocol("rate-limit script: no keys".into()))
    }
}

/// `bc:rl:<stable id>`: the same name on every instance.
fn redis_key(key: &LimitKey<'_>) -> String {
    format!("{KEY_PREFIX}{RL_PREFIX}{}", key.stable_id())
}

/// A rate's GCRA constants in microseconds (the local limiter's, at µs resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GcraUs {
    interval: u64,
    window: u64,
}

impl GcraUs {
    /// `None` when the rate allows nothing or its window exceeds [`MAX_WINDOW_US`]: the local
    /// limiter decides those (refusing the former outright).
    fn new(rate: Rate) -> Option<GcraUs> {
        if rate.count == 0 || rate.per.is_zero() {
            return None;
        }
        let interval = rate.per.as_micros().div_ceil(u128::from(rate.count)).max(1);
        let window = interval.checked_mul(u128::from(rate.count))?;
        if window > u128::from(MAX_WINDOW_US) {
            return None;
        }
        Some(GcraUs {
            interval: u64::try_from(interval).ok()?,
            window: u64::try_from(window).ok()?,
        })
    }
}

/// The keys of a charge with their constants and limits, or `None` if any must be decided
/// locally.
struct ScriptArgs<'a> {
    keys: Vec<(LimitKey<'a>, GcraUs, u64)>,
}

impl<'a> ScriptArgs<'a> {
    fn new(charge: &Charge<'a>) -> Option<Self> {
        let mut keys = Vec::with_capacity(2);
        for (key, rate) in std::iter::once(charge.caller)
            .chain(charge.login)
            .chain(charge.network)
        {
            keys.push((key, GcraUs::new(rate)?, rate.count));
        }
        Some(ScriptArgs { keys })
    }
}

/// One key's decision from the script's four integers.
fn decision(limit: u64, values: &[i64]) -> Result<Decision, RedisError> {
    let int = |i: usize| -> Result<u64, RedisError> {
        values
            .get(i)
            .and_then(|v| u64::try_from(*v).ok())
            .ok_or_else(|| RedisError::Protocol(format!("rate-limit script: bad reply {values:?}")))
    };
    let allowed = int(0)? == 1;
    Ok(Decision {
        allowed,
        limit,
        remaining: int(1)?,
        reset_after: Duration::from_micros(int(2)?),
        retry_after: (!allowed).then(|| Duration::from_micros(int(3).unwrap_or(0))),
    })
}

/// Of two decisions on one request, the one to report. The same rule as the local limiter's
/// (`Decision::stricter`, private to the filters crate): a refusal over an allowance; of two
/// refusals the longer wait; of two allowances the one with fewer requests left, then the
/// longer reset.
fn stricter(a: Decision, b: Decision) -> Decision {
    match (a.allowed, b.allowed) {
        (true, false) => b,
        (false, true) => a,
        (false, false) => {
            if b.retry_after > a.retry_after {
                b
            } else {
                a
            }
        }
        (true, true) => {
            if (b.remaining, std::cmp::Reverse(b.reset_after))
                < (a.remaining, std::cmp::Reverse(a.reset_after))
            {
                b
            } else {
                a
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use bridgecore_filters::rate_limit::{Login, ManualClock, RateLimitPolicy, Subject};
    use bridgecore_filters::Category;

    use super::*;
    use crate::redis_conn::tests::{test_redis, unique_prefix, CLOSED};
    use crate::redis_conn::DEFAULT_TIMEOUT;

    const SEC: u64 = 1_000_000_000;

    fn ip(last: u8) -> Subject {
        Subject::Ip(IpAddr::V4(Ipv4Addr::new(198, 51, 100, last)))
    }

    /// A tenant name of its own per test: the stable ids (and so the Redis keys) differ from
    /// every other test's and every earlier run's.
    fn tenant(test: &str) -> String {
        unique_prefix(test)
    }

    fn clock_at(secs: u64) -> Arc<ManualClock> {
        Arc::new(ManualClock::new(secs * SEC))
    }

    /// A Redis limiter and a local-only one on the same manual clock.
    async fn pair(clock: &Arc<ManualClock>) -> Option<(Limiter, Limiter)> {
        let redis = test_redis(Duration::from_secs(1)).await?;
        let c: Arc<dyn Clock> = clock.clone();
        Some((
            Limiter::new(Some(redis), Some(c.clone())),
            Limiter::new(None, Some(c)),
        ))
    }

    #[tokio::test]
    async fn redis_gcra_matches_the_local_limiter_decision_for_decision() {
        let clock = clock_at(1_000);
        let Some((shared, local)) = pair(&clock).await else {
            return;
        };
        let t = tenant("gcra");
        let policy = RateLimitPolicy::default(); // auth 10/minute: interval 6 s
        let s = ip(1);
        let charge = policy.charge(&t, Category::Auth, &s, None);
        let both = || async {
            let r = shared.check(&charge).await;
            let l = local.check(&charge).await;
            assert_eq!(r, l, "at {} ns", clock.now());
            r
        };
        let t0 = clock.now();
        // Exactly 10 at once.
        for i in 0..10u64 {
            let d = both().await;
            assert!(d.allowed, "call {}", i + 1);
            assert_eq!(d.remaining, 9 - i);
        }
        // The 11th is refused, with Retry-After = one interval.
        let d = both().await;
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(Duration::from_secs(6)));
        assert_eq!(d.retry_after_secs(), Some(6));
        assert_eq!(d.headers(), local.check(&charge).await.headers());
        // Not a microsecond early; exactly one back after the interval.
        clock.set(t0 + 6 * SEC - 1_000);
        assert!(!both().await.allowed);
        clock.set(t0 + 6 * SEC);
        assert!(both().await.allowed);
        assert!(!both().await.allowed);
        // Half a second into a refusal: the headers round the same way.
        clock.set(t0 + 6 * SEC + SEC / 2);
        let d = both().await;
        assert_eq!(d.retry_after, Some(Duration::from_millis(5_500)));
        // The whole budget after the window.
        clock.set(t0 + 6 * SEC + 60 * SEC);
        for _ in 0..10 {
            assert!(both().await.allowed);
        }
        assert!(!both().await.allowed);
        assert_eq!(shared.fallbacks(), 0);
        assert_eq!(shared.backend_in_use(), "redis");
        assert_eq!(local.backend_in_use(), "local");
    }

    #[tokio::test]
    async fn keys_expire_when_their_tat_passes() {
        let clock = clock_at(5);
        let Some((shared, _)) = pair(&clock).await else {
            return;
        };
        let Some(redis) = shared.redis.clone() else {
            return;
        };
        let t = tenant("ttl");
        let s = ip(2);
        let key = LimitKey::caller(&t, Category::Read, &s);
        let charge = Charge {
            caller: (key, Rate::per_minute(10)),
            login: None,
            network: None,
        };
        for _ in 0..3 {
            assert!(shared.check(&charge).await.allowed);
        }
        // Three intervals of 6 s ahead: the key lives 18 s, no longer.
        let pttl: i64 = redis
            .query(redis::cmd("PTTL").arg(redis_key(&key)))
            .await
            .expect("pttl");
        assert!((17_000..=18_000).contains(&pttl), "{pttl}");
        let tat: u64 = redis
            .query(redis::cmd("GET").arg(redis_key(&key)))
            .await
            .expect("get");
        assert_eq!(tat, 5_000_000 + 18_000_000);
    }

    #[tokio::test]
    async fn login_and_caller_budgets_are_charged_all_or_nothing() {
        let clock = clock_at(0);
        let Some((shared, local)) = pair(&clock).await else {
            return;
        };
        let t = tenant("login");
        let policy = RateLimitPolicy::default();
        let admin = Some(Login {
            db: "prod_db",
            login: "admin",
        });
        let subjects: Vec<Subject> = (1..=13).map(ip).collect();
        let attempt = |n: usize, login: Option<Login<'static>>| {
            let charge = policy.charge(&t, Category::Auth, &subjects[n], login);
            let (shared, local) = (&shared, &local);
            async move {
                let r = shared.check(&charge).await;
                let l = local.check(&charge).await;
                assert_eq!(r, l);
                r
            }
        };
        // Ten attempts on `admin` from ten IPs pass; the eleventh, from a fresh IP, does not.
        for n in 0..10 {
            assert!(attempt(n, admin).await.allowed);
        }
        let d = attempt(10, admin).await;
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs(), Some(6));
        // The fresh IP was not charged for the refused attempt: ten tries on another account.
        let bob = Some(Login {
            db: "prod_db",
            login: "bob",
        });
        for _ in 0..10 {
            assert!(attempt(10, bob).await.allowed);
        }
        assert!(!attempt(10, bob).await.allowed);
        // When both refuse, the longer wait is reported.
        clock.set(2 * SEC);
        let d = attempt(10, admin).await;
        assert!(!d.allowed);
        assert_eq!(d.retry_after, Some(Duration::from_secs(4)));
        assert_eq!(shared.fallbacks(), 0);
    }

    #[tokio::test]
    async fn two_limiters_on_one_redis_share_one_budget() {
        let clock = clock_at(77);
        let Some(redis) = test_redis(Duration::from_secs(1)).await else {
            return;
        };
        let c: Arc<dyn Clock> = clock.clone();
        let a = Limiter::new(Some(redis.clone()), Some(c.clone()));
        let b = Limiter::new(Some(redis), Some(c));
        let t = tenant("shared");
        let s = Subject::Token("42".into());
        let charge = Charge {
            caller: (
                LimitKey::caller(&t, Category::Write, &s),
                Rate::per_minute(6),
            ),
            login: None,
            network: None,
        };
        for i in 0..6 {
            let limiter = if i % 2 == 0 { &a } else { &b };
            assert!(limiter.check(&charge).await.allowed, "call {}", i + 1);
        }
        assert!(!a.check(&charge).await.allowed);
        assert!(!b.check(&charge).await.allowed);
        assert_eq!(a.fallbacks() + b.fallbacks(), 0);
    }

    #[tokio::test]
    async fn production_time_comes_from_redis() {
        // No injected clock: the script reads Redis `TIME`; two instances still agree.
        let Some(redis) = test_redis(Duration::from_secs(1)).await else {
            return;
        };
        let a = Limiter::new(Some(redis.clone()), None);
        let b = Limiter::new(Some(redis), None);
        let t = tenant("time");
        let s = ip(9);
        let charge = Charge {
            caller: (LimitKey::caller(&t, Category::Read, &s), Rate::per_hour(3)),
            login: None,
            network: None,
        };
        assert_eq!(a.check(&charge).await.remaining, 2);
        assert_eq!(b.check(&charge).await.remaining, 1);
        assert_eq!(a.check(&charge).await.remaining, 0);
        let d = b.check(&charge).await;
        assert!(!d.allowed);
        // Retry in about one interval (20 min), give or take the test's own duration.
        let retry = d.retry_after.unwrap_or_default();
        assert!(retry > Duration::from_secs(1_190) && retry <= Duration::from_secs(1_200));
        assert_eq!(a.fallbacks() + b.fallbacks(), 0);
    }

    #[tokio::test]
    async fn unreachable_redis_falls_back_to_local_limits_quickly() {
        let clock = clock_at(3);
        let c: Arc<dyn Clock> = clock.clone();
        let redis = Arc::new(RedisConn::new(CLOSED, DEFAULT_TIMEOUT).expect("url"));
        let limiter = Limiter::new(Some(redis), Some(c.clone()));
        let local = Limiter::new(None, Some(c));
        let s = ip(3);
        let charge = Charge {
            caller: (
                LimitKey::caller("t", Category::Delete, &s),
                Rate::per_minute(20),
            ),
            login: None,
            network: None,
        };
        let started = std::time::Instant::now();
        let first = limiter.check(&charge).await;
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(first, local.check(&charge).await);
        assert_eq!(limiter.fallbacks(), 1);
        assert_eq!(limiter.backend_in_use(), "local");
        // The breaker is open: the rest fail fast, and the local limits still hold.
        let started = std::time::Instant::now();
        for i in 1..20 {
            let d = limiter.check(&charge).await;
            assert!(d.allowed, "call {}", i + 1);
            assert_eq!(d, local.check(&charge).await);
        }
        let d = limiter.check(&charge).await;
        assert!(!d.allowed, "never unlimited");
        assert_eq!(d.retry_after, Some(Duration::from_secs(3)));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(limiter.fallbacks(), 21);
    }

    #[tokio::test]
    async fn a_silent_redis_costs_at_most_one_timeout_per_outage_step() {
        let (url, server) = crate::redis_conn::tests::silent_server().await;
        let redis = Arc::new(RedisConn::new(&url, DEFAULT_TIMEOUT).expect("url"));
        let limiter = Limiter::new(Some(redis), None);
        let s = ip(6);
        let charge = Charge {
            caller: (
                LimitKey::caller("t", Category::Read, &s),
                Rate::per_minute(5),
            ),
            login: None,
            network: None,
        };
        let started = std::time::Instant::now();
        for _ in 0..5 {
            assert!(limiter.check(&charge).await.allowed);
        }
        assert!(!limiter.check(&charge).await.allowed, "never unlimited");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(limiter.fallbacks(), 6);
        assert_eq!(limiter.backend_in_use(), "local");
        server.abort();
    }

    #[test]
    fn check_is_send() {
        fn send<T: Send>(_: &T) {}
        let limiter = Limiter::new(None, None);
        let s = ip(7);
        let charge = Charge {
            caller: (
                LimitKey::caller("t", Category::Read, &s),
                Rate::per_minute(5),
            ),
            login: None,
            network: None,
        };
        send(&limiter.check(&charge));
    }

    #[tokio::test]
    async fn without_redis_it_is_the_local_limiter() {
        let limiter = Limiter::new(None, None);
        let s = ip(4);
        let charge = Charge {
            caller: (
                LimitKey::caller("t", Category::Read, &s),
                Rate::per_second(2),
            ),
            login: None,
            network: None,
        };
        assert!(limiter.check(&charge).await.allowed);
        assert!(limiter.check(&charge).await.allowed);
        assert!(!limiter.check(&charge).await.allowed);
        assert_eq!(limiter.fallbacks(), 0);
        assert!(!limiter.is_shared());
        assert_eq!(limiter.local().tracked_keys(), 1);
    }

    #[test]
    fn microsecond_constants_and_degenerate_rates() {
        assert_eq!(
            GcraUs::new(Rate::per_minute(10)),
            Some(GcraUs {
                interval: 6_000_000,
                window: 60_000_000
            })
        );
        // 1 s / 3, rounded up to a whole microsecond.
        assert_eq!(
            GcraUs::new(Rate::per_second(3)),
            Some(GcraUs {
                interval: 333_334,
                window: 1_000_002
            })
        );
        assert_eq!(GcraUs::new(Rate::per_minute(0)), None);
        assert_eq!(
            GcraUs::new(Rate {
                count: 1,
                per: Duration::from_secs(100 * 365 * 86_400)
            }),
            None
        );
        assert_eq!(
            GcraUs::new(Rate {
                count: u64::MAX,
                per: Duration::from_secs(1)
            }),
            None
        );
    }

    #[tokio::test]
    async fn rates_redis_cannot_count_are_decided_locally_without_counting_a_fallback() {
        let clock = clock_at(0);
        let Some((shared, _)) = pair(&clock).await else {
            return;
        };
        let s = ip(5);
        let charge = Charge {
            caller: (
                LimitKey::caller("t", Category::Read, &s),
                Rate::per_minute(0),
            ),
            login: None,
            network: None,
        };
        let d = shared.check(&charge).await;
        assert!(!d.allowed);
        assert_eq!(d.limit, 0);
        assert_eq!(shared.fallbacks(), 0);
    }

    #[test]
    fn stricter_matches_the_local_rule() {
        let allowed = |remaining, reset| Decision {
            allowed: true,
            limit: 10,
            remaining,
            reset_after: Duration::from_secs(reset),
            retry_after: None,
        };
        let refused = |ms| Decision {
            allowed: false,
            limit: 10,
            remaining: 0,
            reset_after: Duration::from_secs(60),
            retry_after: Some(Duration::from_millis(ms)),
        };
        assert_eq!(stricter(allowed(3, 1), refused(10)), refused(10));
        assert_eq!(stricter(refused(10), allowed(3, 1)), refused(10));
        assert_eq!(stricter(refused(10), refused(4_000)), refused(4_000));
        assert_eq!(stricter(refused(4_000), refused(10)), refused(4_000));
        assert_eq!(stricter(allowed(3, 1), allowed(2, 1)), allowed(2, 1));
        assert_eq!(stricter(allowed(2, 1), allowed(2, 9)), allowed(2, 9));
    }
}
