//! Who a request counts against: the caller's [`Subject`] and the [`LimitKey`] it forms with the
//! tenant and the category.

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv6Addr};

use sha2::{Digest, Sha256};

use crate::classify::Category;

/// The identity a caller's budget belongs to (issue 3 item 6): the token subject, else the Odoo
/// session, else the client IP. Build it with [`Subject::select`] so the precedence is applied in
/// one place.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// The `sub` claim of a verified BridgeCore token: one budget per user, whichever device or
    /// IP the user calls from.
    Token(String),
    /// A digest of the Odoo session id, never the raw `session_id` cookie: the limiter keeps
    /// only a keyed fingerprint of its keys, but the glue should not even hand a live credential
    /// around as a key.
    Session(String),
    /// The client address (after `trusted_proxies`). IPv6 addresses count per `/64` and
    /// IPv4-mapped ones as IPv4, so a client cannot mint a fresh budget per address of its own
    /// prefix.
    Ip(IpAddr),
}

impl Subject {
    /// Applies the precedence token > session > IP. Empty strings count as absent, so a token
    /// with an empty `sub` does not pool every such token into one budget.
    pub fn select(token_sub: Option<&str>, session_digest: Option<&str>, ip: IpAddr) -> Subject {
        let token_sub = token_sub.filter(|s| !s.is_empty());
        let session_digest = session_digest.filter(|s| !s.is_empty());
        match (token_sub, session_digest) {
            (Some(sub), _) => Subject::Token(sub.to_owned()),
            (None, Some(digest)) => Subject::Session(digest.to_owned()),
            (None, None) => Subject::Ip(ip),
        }
    }

    /// `"token"`, `"session"` or `"ip"`: a bounded label for logs and metrics (never the value).
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::Token(_) => "token",
            Subject::Session(_) => "session",
            Subject::Ip(_) => "ip",
        }
    }
}

/// The unit a budget is kept for: (tenant, category, caller) or, for logins, (tenant, db, login).
///
/// It borrows its parts: the limiter stores only a 128-bit keyed fingerprint of a key, never the
/// key, so building one per request costs no allocation.
#[derive(Debug, Clone, Copy)]
pub struct LimitKey<'a> {
    tenant: &'a str,
    category: Category,
    who: Who<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Who<'a> {
    Caller(&'a Subject),
    Login { db: &'a str, login: &'a str },
    Network(IpAddr),
}

impl<'a> LimitKey<'a> {
    /// The caller's own budget for one category at one tenant.
    pub fn caller(tenant: &'a str, category: Category, subject: &'a Subject) -> Self {
        LimitKey {
            tenant,
            category,
            who: Who::Caller(subject),
        }
    }

    /// The brute-force budget of one account, shared by every IP and client that tries it
    /// (category [`Category::Auth`]). The login is compared trimmed and lowercased: merging
    /// `Admin` and `admin` can only make the limit stricter, never let variants of one name
    /// each get a fresh budget.
    pub fn login(tenant: &'a str, db: &'a str, login: &'a str) -> Self {
        LimitKey {
            tenant,
            category: Category::Auth,
            who: Who::Login { db, login },
        }
    }

    /// The backstop budget of a client network behind cookie sessions. A session id is
    /// whatever the client sends (Odoo hands a fresh one to any request without), so a client
    /// could mint a fresh per-session budget per request; this budget, kept per client IP (per
    /// `/64` for IPv6) at a multiple of the category's rate, bounds what rotating cookies can
    /// gain while leaving room for the several users of one office NAT.
    pub fn network(tenant: &'a str, category: Category, ip: IpAddr) -> Self {
        LimitKey {
            tenant,
            category,
            who: Who::Network(ip),
        }
    }

    /// The tenant this budget belongs to.
    pub fn tenant(&self) -> &'a str {
        self.tenant
    }

    /// The category this budget counts.
    pub fn category(&self) -> Category {
        self.category
    }

    /// Feeds the key to a hasher, unambiguously (every variable-length part is terminated and
    /// every variant tagged), so distinct keys give distinct inputs.
    pub(crate) fn feed<H: Hasher>(&self, state: &mut H) {
        self.tenant.hash(state);
        self.category.hash(state);
        match self.who {
            Who::Caller(Subject::Token(sub)) => {
                state.write_u8(1);
                sub.hash(state);
            }
            Who::Caller(Subject::Session(digest)) => {
                state.write_u8(2);
                digest.hash(state);
            }
            Who::Caller(Subject::Ip(ip)) => {
                state.write_u8(3);
                ip_bucket(*ip).hash(state);
            }
            Who::Network(ip) => {
                state.write_u8(5);
                ip_bucket(ip).hash(state);
            }
            Who::Login { db, login } => {
                state.write_u8(4);
                db.hash(state);
                for c in login.trim().chars().flat_map(char::to_lowercase) {
                    state.write_u32(u32::from(c));
                }
                state.write_u32(u32::MAX); // not a char: ends the login
            }
        }
    }
}

impl LimitKey<'_> {
    /// A stable, unambiguous name for this budget, the same in every process, on every machine
    /// and across restarts: 64 lowercase hex digits of a SHA-256 over a length-prefixed,
    /// variant-tagged, versioned encoding of the key.
    ///
    /// It exists for shared stores (the Redis limiter keeps `bc:rl:<stable_id>`): the local
    /// limiter's fingerprint is keyed per process on purpose, so it cannot name one budget
    /// for several instances. Two keys have the same id exactly when the local limiter treats
    /// them as one budget (same IP bucket, login compared trimmed and lowercased). Hashing
    /// keeps raw logins and token subjects out of the store's key space and bounds key length;
    /// it is not secrecy against whoever can read the store (an IPv4 key can be found by
    /// trying every address), which holds nothing but these ids and times anyway. The
    /// encoding starts with a version tag, so changing it later renames every key instead of
    /// silently merging old and new budgets.
    pub fn stable_id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"bridgecore/limit-key/v1\0");
        put_str(&mut h, self.tenant);
        put_str(&mut h, self.category.as_str());
        match self.who {
            Who::Caller(Subject::Token(sub)) => {
                h.update([1]);
                put_str(&mut h, sub);
            }
            Who::Caller(Subject::Session(digest)) => {
                h.update([2]);
                put_str(&mut h, digest);
            }
            Who::Caller(Subject::Ip(ip)) => {
                h.update([3]);
                match ip_bucket(*ip) {
                    IpAddr::V4(v4) => {
                        h.update([4]);
                        h.update(v4.octets());
                    }
                    IpAddr::V6(v6) => {
                        h.update([6]);
                        h.update(v6.octets());
                    }
                }
            }
            Who::Network(ip) => {
                h.update([5]);
                match ip_bucket(ip) {
                    IpAddr::V4(v4) => {
                        h.update([4]);
                        h.update(v4.octets());
                    }
                    IpAddr::V6(v6) => {
                        h.update([6]);
                        h.update(v6.octets());
                    }
                }
            }
            Who::Login { db, login } => {
                h.update([4]);
                put_str(&mut h, db);
                let login: String = login.trim().chars().flat_map(char::to_lowercase).collect();
                put_str(&mut h, &login);
            }
        }
        let digest = h.finalize();
        let mut out = String::with_capacity(2 * digest.len());
        for b in digest.iter() {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        out
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Feeds a length-prefixed string, so `("ab", "c")` and `("a", "bc")` differ.
fn put_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_be_bytes());
    h.update(s.as_bytes());
}

/// The address a budget is kept for: IPv4 as is, IPv4-mapped IPv6 as IPv4, other IPv6 by `/64`
/// (the smallest prefix a site is normally given, so one client cannot rotate addresses).
fn ip_bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn precedence_is_token_then_session_then_ip() {
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(
            Subject::select(Some("7"), Some("d1"), ip),
            Subject::Token("7".into())
        );
        assert_eq!(
            Subject::select(None, Some("d1"), ip),
            Subject::Session("d1".into())
        );
        assert_eq!(Subject::select(None, None, ip), Subject::Ip(ip));
        assert_eq!(
            Subject::select(Some(""), Some("d1"), ip),
            Subject::Session("d1".into())
        );
        assert_eq!(Subject::select(Some(""), Some(""), ip), Subject::Ip(ip));
        assert_eq!(Subject::Token("x".into()).kind(), "token");
        assert_eq!(Subject::Session("x".into()).kind(), "session");
        assert_eq!(Subject::Ip(ip).kind(), "ip");
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_bucket(a), ip_bucket(b));
        assert_ne!(ip_bucket(a), ip_bucket(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(ip_bucket(mapped), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    }

    #[test]
    fn stable_id_names_exactly_the_budgets_the_local_limiter_merges() {
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let a6: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b6: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let (s4, sm, sa, sb) = (
            Subject::Ip(v4),
            Subject::Ip(mapped),
            Subject::Ip(a6),
            Subject::Ip(b6),
        );
        let id = |s: &Subject| LimitKey::caller("t", Category::Read, s).stable_id();
        // Stable (not keyed per process) and hex.
        assert_eq!(id(&s4), id(&s4));
        assert_eq!(id(&s4).len(), 64);
        assert!(id(&s4)
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        // Same bucket, same id.
        assert_eq!(id(&s4), id(&sm));
        assert_eq!(id(&sa), id(&sb));
        // Different subject kinds with the same text differ.
        let tok = Subject::Token("1".into());
        let ses = Subject::Session("1".into());
        assert_ne!(id(&tok), id(&ses));
        // Tenant, category and length boundaries matter.
        assert_ne!(
            LimitKey::caller("t", Category::Write, &tok).stable_id(),
            id(&tok)
        );
        assert_ne!(
            LimitKey::caller("u", Category::Read, &tok).stable_id(),
            id(&tok)
        );
        assert_ne!(
            LimitKey::login("ab", "c", "x").stable_id(),
            LimitKey::login("a", "bc", "x").stable_id()
        );
        // Logins compare trimmed and lowercased, as the local limiter does.
        assert_eq!(
            LimitKey::login("t", "db", " Admin ").stable_id(),
            LimitKey::login("t", "db", "admin").stable_id()
        );
        assert_ne!(
            LimitKey::login("t", "db", "admin").stable_id(),
            LimitKey::login("t", "db", "admin2").stable_id()
        );
        // A pinned value: the id must not change between versions, or shared budgets split.
        // (An independent computation: SHA-256 over the documented encoding.)
        assert_eq!(
            LimitKey::login("t", "db", "ADMIN").stable_id(),
            "96f3f324a2234cade3c842bbe2b0abb1e01a7bbd21ee872af186ac34b1c6e748"
        );
    }
}
