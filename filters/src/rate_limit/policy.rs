//! Which budgets a request is charged against, at which rates: the configured per-category
//! rates, per-tenant overrides, and the extra per-account budget of logins.

use std::collections::HashMap;

use crate::classify::Category;
use crate::units::Rate;

use super::decision::Decision;
use super::gcra::LocalLimiter;
use super::key::{LimitKey, Subject};

/// Why a rate-limit configuration was refused; the message names the YAML path, for
/// `bridgecore --test`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    /// A category name that is none of `auth`, `read`, `write`, `delete`.
    #[error("unknown rate-limit category `{0}`: expected auth, read, write or delete")]
    UnknownCategory(String),
    /// A rate that would refuse every request (zero count or zero window): almost certainly a
    /// typo, and an outage if taken literally.
    #[error("{at}: `{rate}` {reason}")]
    InvalidRate {
        /// Where it was configured, e.g. `tenants.prod.rate_limits.read`.
        at: String,
        /// The rate as it prints.
        rate: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Reads a category name as written in the YAML (`rate_limits.<name>`).
pub fn parse_category(name: &str) -> Result<Category, RateLimitError> {
    match name {
        "auth" => Ok(Category::Auth),
        "read" => Ok(Category::Read),
        "write" => Ok(Category::Write),
        "delete" => Ok(Category::Delete),
        other => Err(RateLimitError::UnknownCategory(other.to_owned())),
    }
}

/// One rate per category: the global `rate_limits` block, or a tenant's after its overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CategoryRates {
    /// Login attempts, per caller (and per account, see [`RateLimitPolicy::charge`]).
    pub auth: Rate,
    /// Reads, cacheable or not.
    pub read: Rate,
    /// Writes other than deletes.
    pub write: Rate,
    /// `unlink`.
    pub delete: Rate,
}

impl CategoryRates {
    /// design.md §4: auth 10/minute, read 100/minute, write 50/minute, delete 20/minute.
    pub const DEFAULT: CategoryRates = CategoryRates {
        auth: Rate::per_minute(10),
        read: Rate::per_minute(100),
        write: Rate::per_minute(50),
        delete: Rate::per_minute(20),
    };

    /// The rate of one category.
    pub fn get(&self, category: Category) -> Rate {
        match category {
            Category::Auth => self.auth,
            Category::Read => self.read,
            Category::Write => self.write,
            Category::Delete => self.delete,
        }
    }

    /// Replaces the rate of one category.
    pub fn set(&mut self, category: Category, rate: Rate) {
        match category {
            Category::Auth => self.auth = rate,
            Category::Read => self.read = rate,
            Category::Write => self.write = rate,
            Category::Delete => self.delete = rate,
        }
    }

    fn validate(&self, scope: &str) -> Result<(), RateLimitError> {
        for category in [
            Category::Auth,
            Category::Read,
            Category::Write,
            Category::Delete,
        ] {
            let rate = self.get(category);
            let reason = if rate.count == 0 {
                "allows no request at all: the count must be at least 1"
            } else if rate.per.is_zero() {
                "has a zero window"
            } else {
                continue;
            };
            return Err(RateLimitError::InvalidRate {
                at: format!("{scope}.{}", category.as_str()),
                rate: rate.to_string(),
                reason,
            });
        }
        Ok(())
    }
}

impl Default for CategoryRates {
    fn default() -> Self {
        CategoryRates::DEFAULT
    }
}

/// The account a login attempt names, for the brute-force budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Login<'a> {
    /// The database the login targets (the tenant's, or the one the call names).
    pub db: &'a str,
    /// The login (user name) tried.
    pub login: &'a str,
}

/// The budgets one request is charged against, with their rates: the caller's own, and for a
/// login also the account's. Kept apart from any store so the same plan can run against the
/// local limiter now and the shared Redis one later.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct Charge<'a> {
    /// (tenant, category, caller).
    pub caller: (LimitKey<'a>, Rate),
    /// (tenant, db, login) at the tenant's `auth` rate, for login attempts only.
    pub login: Option<(LimitKey<'a>, Rate)>,
    /// The client network's backstop ([`LimitKey::network`]) for callers keyed by a cookie
    /// session, at [`NETWORK_FACTOR`] times the caller's rate.
    pub network: Option<(LimitKey<'a>, Rate)>,
}

/// How many sessions' worth of budget one client IP may use in all: room for an office behind
/// one NAT, a bound on what rotating invented `session_id` cookies can gain.
pub const NETWORK_FACTOR: u64 = 10;

impl<'a> Charge<'a> {
    /// Adds the network backstop of `ip` (see [`LimitKey::network`]). Meant for callers keyed
    /// by an Odoo session, whose id the client chooses.
    pub fn with_network(mut self, ip: std::net::IpAddr) -> Self {
        let (key, rate) = self.caller;
        let rate = Rate {
            count: rate.count.saturating_mul(NETWORK_FACTOR),
            per: rate.per,
        };
        self.network = Some((LimitKey::network(key.tenant(), key.category(), ip), rate));
        self
    }

    /// Runs the charge on the local limiter: passes only when every budget allows, charges
    /// nothing otherwise, and reports the strictest decision (the longer `Retry-After`).
    pub fn check(&self, limiter: &LocalLimiter, now: u64) -> Decision {
        match (self.login, self.network) {
            (None, None) => limiter.check(&self.caller.0, self.caller.1, now),
            (Some(one), None) | (None, Some(one)) => limiter.check_all(self.caller, &[one], now),
            (Some(login), Some(net)) => limiter.check_all(self.caller, &[login, net], now),
        }
    }
}

/// The configured limits: global per-category rates and, per tenant, the same table with that
/// tenant's overrides applied (merged once at load, so a lookup is one map access).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitPolicy {
    global: CategoryRates,
    tenants: HashMap<String, CategoryRates>,
}

impl Default for RateLimitPolicy {
    /// design.md §4's defaults for every tenant.
    fn default() -> Self {
        RateLimitPolicy {
            global: CategoryRates::DEFAULT,
            tenants: HashMap::new(),
        }
    }
}

impl RateLimitPolicy {
    /// A policy with these global rates; refuses rates that would block every request.
    pub fn new(global: CategoryRates) -> Result<Self, RateLimitError> {
        global.validate("rate_limits")?;
        Ok(RateLimitPolicy {
            global,
            tenants: HashMap::new(),
        })
    }

    /// Adds a tenant's overrides (`tenants.<name>.rate_limits`): the listed categories take
    /// the given rates for that tenant only, the others keep the global ones. Calling it again
    /// for the same tenant replaces its earlier overrides.
    pub fn with_tenant(
        mut self,
        tenant: impl Into<String>,
        overrides: &[(Category, Rate)],
    ) -> Result<Self, RateLimitError> {
        let tenant = tenant.into();
        let mut rates = self.global;
        for &(category, rate) in overrides {
            rates.set(category, rate);
        }
        rates.validate(&format!("tenants.{tenant}.rate_limits"))?;
        self.tenants.insert(tenant, rates);
        Ok(self)
    }

    /// The rates that apply to a tenant (the global ones if it has no overrides).
    pub fn rates(&self, tenant: &str) -> &CategoryRates {
        self.tenants.get(tenant).unwrap_or(&self.global)
    }

    /// The rate of one category at one tenant.
    pub fn rate(&self, tenant: &str, category: Category) -> Rate {
        self.rates(tenant).get(category)
    }

    /// The budgets a request is charged against. `login` adds the (tenant, db, login)
    /// brute-force budget, at the tenant's `auth` rate, to [`Category::Auth`] requests, so an
    /// account cannot be tried from many IPs at once; it is ignored for other categories.
    pub fn charge<'a>(
        &self,
        tenant: &'a str,
        category: Category,
        subject: &'a Subject,
        login: Option<Login<'a>>,
    ) -> Charge<'a> {
        let rates = self.rates(tenant);
        let caller = (
            LimitKey::caller(tenant, category, subject),
            rates.get(category),
        );
        let login = match (category, login) {
            (Category::Auth, Some(l)) => Some((LimitKey::login(tenant, l.db, l.login), rates.auth)),
            _ => None,
        };
        Charge {
            caller,
            login,
            network: None,
        }
    }

    /// [`RateLimitPolicy::charge`] run on the local limiter at `now`.
    pub fn check(
        &self,
        limiter: &LocalLimiter,
        tenant: &str,
        category: Category,
        subject: &Subject,
        login: Option<Login<'_>>,
        now: u64,
    ) -> Decision {
        self.charge(tenant, category, subject, login)
            .check(limiter, now)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use http::HeaderValue;

    use super::*;
    use crate::rate_limit::{
        Clock, ManualClock, X_RATELIMIT_LIMIT, X_RATELIMIT_REMAINING, X_RATELIMIT_RESET,
    };

    const SEC: u64 = 1_000_000_000;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, last))
    }

    #[test]
    fn each_category_refuses_at_count_plus_one_and_recovers_after_the_window() {
        let policy = RateLimitPolicy::default();
        let subject = Subject::Token("2".into());
        for (category, count) in [
            (Category::Auth, 10),
            (Category::Read, 100),
            (Category::Write, 50),
            (Category::Delete, 20),
        ] {
            let window = 60 * SEC;
            let interval = window / count;
            // Spends the burst at `t0`, then counts the calls allowed at `at`.
            let burst_then_count_at = |at: u64| {
                let limiter = LocalLimiter::default();
                let clock = ManualClock::new(7 * SEC);
                let t0 = clock.now();
                let check =
                    || policy.check(&limiter, "prod", category, &subject, None, clock.now());
                for i in 1..=count {
                    assert!(check().allowed, "{category:?}: call {i} refused");
                }
                let refused = check();
                assert!(!refused.allowed, "{category:?}: call {} allowed", count + 1);
                assert_eq!(refused.retry_after, Some(Duration::from_nanos(interval)));
                clock.set(t0 + at);
                let mut allowed = 0;
                while check().allowed {
                    allowed += 1;
                }
                allowed
            };
            // One call back per interval, exactly on time; the whole budget after the window.
            assert_eq!(burst_then_count_at(interval - 1), 0, "{category:?}");
            assert_eq!(burst_then_count_at(interval), 1, "{category:?}");
            assert_eq!(burst_then_count_at(window - 1), count - 1, "{category:?}");
            assert_eq!(burst_then_count_at(window), count, "{category:?}");
            assert_eq!(burst_then_count_at(10 * window), count, "{category:?}");
        }
    }

    #[test]
    fn headers_on_allowed_and_refused_answers() {
        let policy = RateLimitPolicy::default();
        let limiter = LocalLimiter::default();
        let clock = ManualClock::new(0);
        let subject = Subject::Ip(ip(1));
        let check = |now| policy.check(&limiter, "prod", Category::Auth, &subject, None, now);
        let value = |n: u64| HeaderValue::from(n);

        let first = check(clock.now());
        assert_eq!(
            first.headers(),
            vec![
                (X_RATELIMIT_LIMIT.clone(), value(10)),
                (X_RATELIMIT_REMAINING.clone(), value(9)),
                (X_RATELIMIT_RESET.clone(), value(6)),
            ]
        );
        for _ in 0..9 {
            let _ = check(clock.now());
        }
        clock.advance(Duration::from_millis(1_500));
        let refused = check(clock.now());
        assert_eq!(
            refused.headers(),
            vec![
                (X_RATELIMIT_LIMIT.clone(), value(10)),
                (X_RATELIMIT_REMAINING.clone(), value(0)),
                (X_RATELIMIT_RESET.clone(), value(59)), // 58.5 s, rounded up
                (http::header::RETRY_AFTER, value(5)),  // 4.5 s, rounded up
            ]
        );
        assert_eq!(refused.headers()[3].0.as_str(), "retry-after");
        assert_eq!(refused.headers()[0].0.as_str(), "x-ratelimit-limit");
    }

    #[test]
    fn a_tenant_override_applies_to_that_tenant_only() {
        let policy = RateLimitPolicy::default()
            .with_tenant("small", &[(Category::Read, Rate::per_minute(2))])
            .unwrap();
        assert_eq!(policy.rate("small", Category::Read), Rate::per_minute(2));
        assert_eq!(policy.rate("small", Category::Write), Rate::per_minute(50));
        assert_eq!(policy.rate("big", Category::Read), Rate::per_minute(100));
        let limiter = LocalLimiter::default();
        let subject = Subject::Token("2".into());
        let check = |tenant| policy.check(&limiter, tenant, Category::Read, &subject, None, 0);
        assert!(check("small").allowed);
        assert!(check("small").allowed);
        let d = check("small");
        assert!(!d.allowed);
        assert_eq!(d.limit, 2);
        assert_eq!(d.retry_after, Some(Duration::from_secs(30)));
        for _ in 0..100 {
            assert!(check("big").allowed);
        }
        assert!(!check("big").allowed);
    }

    #[test]
    fn subjects_follow_token_then_session_then_ip() {
        let policy = RateLimitPolicy::default()
            .with_tenant("t", &[(Category::Write, Rate::per_minute(1))])
            .unwrap();
        let limiter = LocalLimiter::default();
        let write = |s: &Subject| {
            policy
                .check(&limiter, "t", Category::Write, s, None, 0)
                .allowed
        };

        // One token user: one budget, whatever session or IP the calls come with.
        assert!(write(&Subject::select(Some("7"), Some("s1"), ip(1))));
        assert!(!write(&Subject::select(Some("7"), Some("s2"), ip(2))));
        assert!(!write(&Subject::select(Some("7"), None, ip(3))));
        // Without a token, the session decides, across IPs.
        assert!(write(&Subject::select(None, Some("s1"), ip(1))));
        assert!(!write(&Subject::select(None, Some("s1"), ip(4))));
        // Without either, the IP.
        assert!(write(&Subject::select(None, None, ip(1))));
        assert!(!write(&Subject::select(None, None, ip(1))));
        assert!(write(&Subject::select(None, None, ip(5))));
    }

    #[test]
    fn one_login_is_limited_across_ips() {
        let policy = RateLimitPolicy::default();
        let limiter = LocalLimiter::default();
        let clock = ManualClock::new(0);
        let admin = Some(Login {
            db: "prod_db",
            login: "admin",
        });
        let attempt = |last: u8, login: Option<Login<'_>>, now: u64| {
            let subject = Subject::Ip(ip(last));
            policy.check(&limiter, "prod", Category::Auth, &subject, login, now)
        };
        // Ten attempts on `admin` from ten IPs pass; the eleventh, from a fresh IP, does not.
        for last in 1..=10 {
            assert!(attempt(last, admin, clock.now()).allowed);
        }
        let d = attempt(11, admin, clock.now());
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs(), Some(6));
        // The fresh IP was not charged for the refused attempt: another account still works,
        // nine more times.
        let other = Some(Login {
            db: "prod_db",
            login: "bob",
        });
        for _ in 0..10 {
            assert!(attempt(11, other, clock.now()).allowed);
        }
        assert!(!attempt(11, other, clock.now()).allowed);
        // Without a login (or outside auth), only the caller's budget counts.
        assert!(attempt(12, None, clock.now()).allowed);
        let subject = Subject::Ip(ip(13));
        assert!(
            policy
                .check(
                    &limiter,
                    "prod",
                    Category::Read,
                    &subject,
                    admin,
                    clock.now()
                )
                .allowed
        );
    }

    #[test]
    fn when_both_budgets_refuse_the_longer_retry_after_wins() {
        let policy = RateLimitPolicy::default();
        let admin = Login {
            db: "prod_db",
            login: "admin",
        };
        // (when IP 1 spends its budget, when `admin` is spent): the later burst refuses longer.
        for (ip_burst, admin_burst) in [(0, SEC), (SEC, 0)] {
            let limiter = LocalLimiter::default();
            let attempt = |last: u8, login: Login<'_>, now: u64| {
                let subject = Subject::Ip(ip(last));
                policy.check(&limiter, "prod", Category::Auth, &subject, Some(login), now)
            };
            for n in 0..10 {
                let name = format!("user{n}");
                let login = Login {
                    db: "prod_db",
                    login: &name,
                };
                assert!(attempt(1, login, ip_burst).allowed);
                assert!(attempt(100 + n, admin, admin_burst).allowed);
            }
            // At 2 s: one budget is full until 60 s (retry in 4 s), the other until 61 s (5 s).
            let d = attempt(1, admin, 2 * SEC);
            assert!(!d.allowed);
            assert_eq!(d.retry_after, Some(Duration::from_secs(5)));
            assert_eq!(d.reset_after, Duration::from_secs(59));
            assert!(!attempt(1, admin, 7 * SEC - 1).allowed);
            assert!(attempt(1, admin, 7 * SEC).allowed);
        }
    }

    #[test]
    fn invalid_rates_and_names_are_reported_with_their_path() {
        let zero = CategoryRates {
            delete: Rate::per_minute(0),
            ..CategoryRates::DEFAULT
        };
        let err = RateLimitPolicy::new(zero).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rate_limits.delete: `0/minute` allows no request at all: the count must be at least 1"
        );
        let err = RateLimitPolicy::default()
            .with_tenant(
                "prod",
                &[(
                    Category::Read,
                    Rate {
                        count: 3,
                        per: Duration::ZERO,
                    },
                )],
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("tenants.prod.rate_limits.read: "),
            "{err}"
        );
        assert_eq!(parse_category("write"), Ok(Category::Write));
        assert_eq!(
            parse_category("exempt").unwrap_err().to_string(),
            "unknown rate-limit category `exempt`: expected auth, read, write or delete"
        );
        assert_eq!(
            RateLimitPolicy::new(CategoryRates::default()),
            Ok(RateLimitPolicy::default())
        );
    }
}
