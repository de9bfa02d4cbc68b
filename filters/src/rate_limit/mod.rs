//! Rate limits (issue 3 item 6): who is counted, at which rate, and the local limiter that
//! counts when Redis is absent or unreachable, so limits fail safe instead of open.
//!
//! - [`Subject`] and [`LimitKey`]: the caller's budget is keyed by token subject, else Odoo
//!   session digest, else client IP; logins are also keyed by (tenant, db, login) against
//!   brute force from many IPs;
//! - [`RateLimitPolicy`]: per-category rates (design.md §4 defaults) with per-tenant overrides,
//!   turned into the [`Charge`] a request pays;
//! - [`LocalLimiter`]: an exact, bounded, sharded GCRA; [`Decision`] is its answer and the
//!   `X-RateLimit-*`/`Retry-After` headers;
//! - [`Clock`]: the time source, [`ManualClock`] in tests so windows are checked at exact
//!   instants rather than with sleeps.
//!
//! Exempt CIDRs, the client IP behind `trusted_proxies`, hashing the session id and the shared
//! Redis budget are the glue's: this module does no I/O.

mod clock;
mod decision;
mod gcra;
mod key;
mod policy;

pub use clock::{Clock, ManualClock, SystemClock};
pub use decision::{Decision, X_RATELIMIT_LIMIT, X_RATELIMIT_REMAINING, X_RATELIMIT_RESET};
pub use gcra::{LocalLimiter, DEFAULT_MAX_KEYS, SHARDS};
pub use key::{LimitKey, Subject};
pub use policy::{
    parse_category, CategoryRates, Charge, Login, RateLimitError, RateLimitPolicy, NETWORK_FACTOR,
};
