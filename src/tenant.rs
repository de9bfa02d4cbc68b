//! A tenant at run time: its upstream sets, its concurrency bound and its internal Odoo client.
//!
//! Built from [`TenantConfig`] whenever a configuration is loaded. Requests in flight keep the
//! `Arc<Tenant>` they started with, so a reload never changes the upstream under a request.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{Balance, TenantConfig};
use crate::metrics::{Metrics, TenantMetrics};
use crate::odoo_client::HttpOdooClient;

/// Why a tenant could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// An upstream address did not resolve.
    #[error("tenant `{tenant}`: upstream `{addr}` does not resolve: {reason}")]
    Resolve {
        /// The tenant.
        tenant: String,
        /// The address as configured.
        addr: String,
        /// What the resolver said.
        reason: String,
    },
    /// The internal HTTP client could not be built.
    #[error("tenant `{tenant}`: {reason}")]
    Client {
        /// The tenant.
        tenant: String,
        /// Why.
        reason: String,
    },
}

/// A set of upstream addresses, resolved once when the configuration is loaded (never on the
/// request path: name resolution blocks), each in or out of rotation by its health.
///
/// Requests with an Odoo session stick to one upstream: Odoo keeps sessions on the local disk
/// of the server that made them, so a session's requests must keep reaching it. The choice is
/// rendezvous hashing over the upstreams in rotation: the same on every BridgeCore instance,
/// and when an upstream leaves only its own sessions move. Requests without a session go round
/// robin, or to the upstream with the fewest requests in flight (`balance: least_connections`).
///
/// An upstream's health (in rotation or not, the check streaks, when it left) and its count of
/// requests in flight belong to the address, not to the configuration generation: a reload
/// hands them to the new set for every address it keeps, so a SIGHUP never puts a dead
/// upstream back in rotation.
#[derive(Debug)]
pub struct Upstreams {
    addrs: Vec<SocketAddr>,
    next: AtomicUsize,
    health: Vec<Arc<Health>>,
    /// Requests in flight to each upstream (counted by [`InFlight`] guards).
    in_flight: Vec<Arc<AtomicUsize>>,
    balance: Balance,
    /// With active health checks off, how long an ejected upstream stays out before requests
    /// try it again; `None` when the checks decide.
    cooldown: Option<Duration>,
}

/// One request in flight to an upstream: counted while the guard lives, so every way a request
/// ends (an answer, an error, a client that hung up and dropped the request) uncounts it.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One upstream's rotation state.
#[derive(Debug)]
struct Health {
    up: AtomicBool,
    ok_streak: AtomicU32,
    fail_streak: AtomicU32,
    /// When it last left rotation (or failed again while out), as [`now_ms`].
    down_since: AtomicU64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            up: AtomicBool::new(true),
            ok_streak: AtomicU32::new(0),
            fail_streak: AtomicU32::new(0),
            down_since: AtomicU64::new(0),
        }
    }
}

impl Health {
    /// Out of rotation from now. The time is stored before the flag (and the flag released),
    /// so whoever sees it down also sees since when. Returns whether it was up.
    fn take_down(&self) -> bool {
        self.down_since.store(now_ms(), Ordering::Relaxed);
        self.up.swap(false, Ordering::AcqRel)
    }
}

/// Milliseconds on a monotonic clock (since the first call in this process).
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Rendezvous weight of `addr` for `key`: FNV-1a then a SplitMix64 finaliser, spelled out so
/// every instance and every build agrees (std's hasher may change between releases). A client
/// choosing its session id can pick its upstream, which it could anyway.
fn weight(key: &str, addr: &SocketAddr) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        std::net::IpAddr::V6(v6) => v6.octets(),
    };
    let port = addr.port().to_be_bytes();
    for b in key.bytes().chain([0xff]).chain(ip).chain(port) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl Upstreams {
    /// Resolves `list`. An address that `previous` (the same tenant's set in the generation
    /// being replaced) also has keeps its health and its count of requests in flight.
    fn resolve(
        tenant: &str,
        list: &[String],
        balance: Balance,
        cooldown: Option<Duration>,
        previous: Option<&Upstreams>,
    ) -> Result<Self, TenantError> {
        let mut addrs = Vec::with_capacity(list.len());
        for entry in list {
            let resolved = entry
                .to_socket_addrs()
                .map_err(|e| TenantError::Resolve {
                    tenant: tenant.to_string(),
                    addr: entry.clone(),
                    reason: e.to_string(),
                })?
                .next()
                .ok_or_else(|| TenantError::Resolve {
                    tenant: tenant.to_string(),
                    addr: entry.clone(),
                    reason: "no address".into(),
                })?;
            addrs.push(resolved);
        }
        let kept = |addr: &SocketAddr| previous.and_then(|p| p.index(*addr).map(|i| (p, i)));
        let health = addrs
            .iter()
            .map(|a| kept(a).map_or_else(Arc::default, |(p, i)| p.health[i].clone()))
            .collect();
        let in_flight = addrs
            .iter()
            .map(|a| kept(a).map_or_else(Arc::default, |(p, i)| p.in_flight[i].clone()))
            .collect();
        Ok(Upstreams {
            addrs,
            next: AtomicUsize::new(0),
            health,
            in_flight,
            balance,
            cooldown,
        })
    }

    /// Whether upstream `i` is in rotation. Without active checks, one that has been out for
    /// `cooldown` is put back (and taken out again by its next failed connection).
    fn in_rotation(&self, i: usize) -> bool {
        let h = &self.health[i];
        if h.up.load(Ordering::Acquire) {
            return true;
        }
        let Some(cooldown) = self.cooldown else {
            return false;
        };
        let out_for = now_ms().saturating_sub(h.down_since.load(Ordering::Relaxed));
        if u128::from(out_for) < cooldown.as_millis() {
            return false;
        }
        h.fail_streak.store(0, Ordering::Relaxed);
        if !h.up.swap(true, Ordering::AcqRel) {
            log::info!(
                "upstream {} back in rotation: out for {}",
                self.addrs[i],
                humantime::format_duration(cooldown)
            );
        }
        true
    }

    /// The upstream for a request: the session's own (`sticky`), or the next by the balancing
    /// rule. Only upstreams in rotation are chosen; when none is, all are (trying beats a
    /// certain 502).
    pub fn pick(&self, sticky: Option<&str>) -> Option<SocketAddr> {
        self.pick_avoiding(sticky, None)
    }

    /// [`Upstreams::pick`], leaving out `avoid` (the upstream a retried request failed on)
    /// unless it is the only one.
    pub fn pick_avoiding(
        &self,
        sticky: Option<&str>,
        avoid: Option<SocketAddr>,
    ) -> Option<SocketAddr> {
        match self.addrs.as_slice() {
            [] => return None,
            // Whatever its health: with nothing else to try, the one upstream is the answer.
            [only] => return Some(*only),
            _ => {}
        }
        let usable = |i: usize| self.addrs.len() == 1 || Some(self.addrs[i]) != avoid;
        let any_up = (0..self.addrs.len()).any(|i| usable(i) && self.in_rotation(i));
        let eligible = |i: &usize| usable(*i) && (!any_up || self.in_rotation(*i));
        if let Some(key) = sticky.filter(|k| !k.is_empty()) {
            return (0..self.addrs.len())
                .filter(eligible)
                .max_by_key(|&i| weight(key, &self.addrs[i]))
                .map(|i| self.addrs[i]);
        }
        let n = self.addrs.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let in_turn = (0..n).map(|k| (start + k) % n).filter(eligible);
        match self.balance {
            Balance::RoundRobin => in_turn.take(1).next(),
            // Ties go to the next in turn, so equally loaded upstreams still share the work.
            Balance::LeastConnections => {
                in_turn.min_by_key(|&i| self.in_flight[i].load(Ordering::Relaxed))
            }
        }
        .map(|i| self.addrs[i])
    }

    /// Counts one request to `addr` for as long as the returned guard lives.
    pub fn track(&self, addr: SocketAddr) -> Option<InFlight> {
        self.index(addr).map(|i| InFlight::new(&self.in_flight[i]))
    }

    /// Requests in flight to `addr` now.
    pub fn in_flight(&self, addr: SocketAddr) -> usize {
        self.index(addr)
            .map_or(0, |i| self.in_flight[i].load(Ordering::Relaxed))
    }

    fn index(&self, addr: SocketAddr) -> Option<usize> {
        self.addrs.iter().position(|a| *a == addr)
    }

    /// Whether `addr` is in rotation.
    pub fn is_up(&self, addr: SocketAddr) -> bool {
        self.index(addr).is_some_and(|i| self.in_rotation(i))
    }

    /// A connection to `addr` was refused or timed out: out of rotation until health checks
    /// bring it back, or, with checks off, for the cooldown.
    pub fn eject(&self, addr: SocketAddr) {
        if let Some(h) = self.index(addr).map(|i| &self.health[i]) {
            h.ok_streak.store(0, Ordering::Relaxed);
            if h.take_down() {
                match self.cooldown {
                    Some(c) => log::warn!(
                        "upstream {addr} out of rotation for {}: connection failed",
                        humantime::format_duration(c)
                    ),
                    None => log::warn!("upstream {addr} out of rotation: connection failed"),
                }
            }
        }
    }

    /// Records one health check of `addr`; returns the new state when it changed.
    pub fn report(&self, addr: SocketAddr, ok: bool, rise: u32, fall: u32) -> Option<bool> {
        let h = &self.health[self.index(addr)?];
        if ok {
            h.fail_streak.store(0, Ordering::Relaxed);
            let streak = h.ok_streak.fetch_add(1, Ordering::Relaxed) + 1;
            (streak >= rise && !h.up.swap(true, Ordering::AcqRel)).then_some(true)
        } else {
            h.ok_streak.store(0, Ordering::Relaxed);
            let streak = h.fail_streak.fetch_add(1, Ordering::Relaxed) + 1;
            (streak >= fall && h.take_down()).then_some(false)
        }
    }

    /// Every upstream address.
    pub fn all(&self) -> &[SocketAddr] {
        &self.addrs
    }
}

/// One Odoo instance BridgeCore serves.
pub struct Tenant {
    /// The tenant's configuration.
    pub cfg: TenantConfig,
    /// Where ordinary requests go.
    pub upstreams: Upstreams,
    /// Where `/websocket` and `/longpolling` go (Odoo's gevent port).
    pub ws_upstreams: Upstreams,
    /// The concurrency bound on requests to Odoo (`max_connections`); `/websocket` is not
    /// counted. Shared with the internal Odoo client.
    slots: Arc<Semaphore>,
    /// BridgeCore's own client for this tenant (filters' calls).
    pub odoo: Arc<HttpOdooClient>,
    /// The tenant's metric handles.
    pub metrics: TenantMetrics,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("name", &self.cfg.name)
            .finish()
    }
}

impl Tenant {
    /// Builds a tenant, resolving its upstream addresses. `previous` is the tenant of the same
    /// name in the generation a reload replaces: its upstreams' health carries over.
    pub fn new(
        cfg: TenantConfig,
        metrics: &Metrics,
        previous: Option<&Tenant>,
    ) -> Result<Arc<Self>, TenantError> {
        let hc = &cfg.health_check;
        let cooldown = hc.interval.is_zero().then_some(hc.cooldown);
        let upstreams = Upstreams::resolve(
            &cfg.name,
            &cfg.upstream,
            cfg.balance,
            cooldown,
            previous.map(|p| &p.upstreams),
        )?;
        let ws_upstreams = Upstreams::resolve(
            &cfg.name,
            &cfg.websocket_upstream,
            cfg.balance,
            cooldown,
            previous.map(|p| &p.ws_upstreams),
        )?;
        let slots = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
        let metrics = metrics.tenant(&cfg.name);
        let http = HttpOdooClient::http_client(&cfg).map_err(|e| TenantError::Client {
            tenant: cfg.name.clone(),
            reason: e.to_string(),
        })?;
        Ok(Arc::new_cyclic(|weak| {
            let odoo = HttpOdooClient::new(weak.clone(), http);
            Tenant {
                upstreams,
                ws_upstreams,
                slots,
                odoo: Arc::new(odoo),
                metrics,
                cfg,
            }
        }))
    }

    /// The tenant's name (`tenants.<name>`).
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Waits for a free slot under `max_connections`, at most `connect_timeout`. `None` means
    /// the tenant stayed saturated: the caller answers 503.
    pub async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Some(permit);
        }
        let wait = self.cfg.connect_timeout.max(Duration::from_millis(1));
        match tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Some(permit),
            _ => None,
        }
    }

    /// Requests to Odoo in flight now.
    pub fn in_flight(&self) -> usize {
        self.cfg.max_connections.max(1) - self.slots.available_permits()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn set(balance: Balance) -> Upstreams {
        let list = ["127.0.0.1:1".to_owned(), "127.0.0.1:2".to_owned()];
        Upstreams::resolve("t", &list, balance, None, None).unwrap()
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_reloaded_set_keeps_the_state_of_the_addresses_it_keeps() {
        let old = set(Balance::RoundRobin);
        let (a, b, c) = (addr(1), addr(2), addr(3));
        // a failed two checks (one short of `fall`), b was ejected, one request is on a.
        old.report(a, false, 2, 3);
        old.report(a, false, 2, 3);
        old.eject(b);
        let on_a = old.track(a).unwrap();
        let list = [a, b, c].map(|x| x.to_string());
        let new = Upstreams::resolve("t", &list, Balance::RoundRobin, None, Some(&old)).unwrap();
        assert!(new.is_up(a) && !new.is_up(b) && new.is_up(c));
        assert_eq!(new.in_flight(a), 1);
        for _ in 0..6 {
            assert_ne!(new.pick(None), Some(b));
        }
        // The streaks carried on: a third failure takes a out, two good checks bring b back.
        assert_eq!(new.report(a, false, 2, 3), Some(false));
        assert_eq!(new.report(b, true, 2, 3), None);
        assert_eq!(new.report(b, true, 2, 3), Some(true));
        // The generations share it: a request of the old one that ends, or fails, counts.
        drop(on_a);
        assert_eq!(new.in_flight(a), 0);
        old.eject(c);
        assert!(new.is_up(c), "c is new: the old set never had it");
        old.eject(b);
        assert!(!new.is_up(b));
    }

    #[test]
    fn without_checks_an_ejected_upstream_returns_after_the_cooldown() {
        let list = ["127.0.0.1:1".to_owned(), "127.0.0.1:2".to_owned()];
        let cooldown = Duration::from_millis(200);
        let s = Upstreams::resolve("t", &list, Balance::RoundRobin, Some(cooldown), None).unwrap();
        let (a, b) = (addr(1), addr(2));
        s.eject(b);
        let out = Instant::now();
        for _ in 0..4 {
            assert_eq!(s.pick(None), Some(a));
        }
        while !s.is_up(b) {
            assert!(out.elapsed() < Duration::from_secs(5), "never came back");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(out.elapsed() >= cooldown / 2, "{:?}", out.elapsed());
        let picks: Vec<_> = (0..4).map(|_| s.pick(None).unwrap()).collect();
        assert_eq!(picks.iter().filter(|p| **p == b).count(), 2);
        // With checks on (no cooldown), only a good check brings it back.
        let checked = set(Balance::RoundRobin);
        checked.eject(b);
        std::thread::sleep(cooldown);
        assert!(!checked.is_up(b));
        assert_eq!(checked.report(b, true, 1, 3), Some(true));
    }

    #[test]
    fn least_connections_prefers_the_idle_upstream_and_guards_uncount() {
        let s = set(Balance::LeastConnections);
        let [a, b] = [s.all()[0], s.all()[1]];
        let busy = s.track(a).unwrap();
        for _ in 0..4 {
            assert_eq!(s.pick(None), Some(b));
        }
        let also = s.track(b).unwrap();
        let _more = s.track(b).unwrap();
        assert_eq!(s.pick(None), Some(a));
        drop(busy);
        drop(also);
        assert_eq!((s.in_flight(a), s.in_flight(b)), (0, 1));
        // Sessions still stick, whatever the load.
        let home = s.pick(Some("sid")).unwrap();
        let _load: Vec<_> = (0..5).map(|_| s.track(home).unwrap()).collect();
        assert_eq!(s.pick(Some("sid")), Some(home));
    }

    #[test]
    fn round_robin_alternates_and_a_retry_avoids_the_failed_upstream() {
        let s = set(Balance::RoundRobin);
        let [a, b] = [s.all()[0], s.all()[1]];
        let picks: Vec<_> = (0..4).map(|_| s.pick(None).unwrap()).collect();
        assert_eq!(picks.iter().filter(|p| **p == a).count(), 2);
        for _ in 0..4 {
            assert_eq!(s.pick_avoiding(None, Some(a)), Some(b));
        }
        let home = s.pick(Some("sid")).unwrap();
        let other = if home == a { b } else { a };
        assert_eq!(s.pick_avoiding(Some("sid"), Some(home)), Some(other));
    }
}
