//! The answer of a limit check and the headers that tell the client about it.

use std::time::Duration;

use http::{HeaderName, HeaderValue};

/// `X-RateLimit-Limit`: the burst the caller's budget allows (design.md §4, Headers).
pub static X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// `X-RateLimit-Remaining`: requests the caller may still make right now.
pub static X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `X-RateLimit-Reset`: seconds until the budget is full again.
pub static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The outcome of one limit check: whether the request may pass, plus what the client is told
/// so a well-behaved one can pace itself instead of retrying blindly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Decision {
    /// Whether the request may go on; `false` means answer 429.
    pub allowed: bool,
    /// The configured count: how many requests a fresh budget allows at once.
    pub limit: u64,
    /// How many more requests would be allowed right now, after this one.
    pub remaining: u64,
    /// How long until the budget is full again (`limit` remaining).
    pub reset_after: Duration,
    /// When refused: how long until one more request would be allowed. `None` when allowed.
    pub retry_after: Option<Duration>,
}

impl Decision {
    /// A refusal that no amount of waiting changes (a rate of zero): the limit says 0, and
    /// `Retry-After` suggests waiting one window.
    pub(crate) fn refuse_all(window: Duration) -> Decision {
        Decision {
            allowed: false,
            limit: 0,
            remaining: 0,
            reset_after: Duration::ZERO,
            retry_after: Some(window.max(Duration::from_secs(1))),
        }
    }

    /// `X-RateLimit-Reset` in whole seconds, rounded up, so a client that waits that long finds
    /// the budget full (IETF RateLimit header semantics: delta seconds, not a timestamp).
    pub fn reset_secs(&self) -> u64 {
        ceil_secs(self.reset_after)
    }

    /// `Retry-After` in whole seconds, rounded up (never 0 on a refusal), or `None` if allowed.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after.map(ceil_secs)
    }

    /// The headers to add to the answer, allowed or refused: `X-RateLimit-Limit`,
    /// `X-RateLimit-Remaining`, `X-RateLimit-Reset`, and `Retry-After` on a refusal.
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = Vec::with_capacity(4);
        headers.push((X_RATELIMIT_LIMIT.clone(), HeaderValue::from(self.limit)));
        headers.push((
            X_RATELIMIT_REMAINING.clone(),
            HeaderValue::from(self.remaining),
        ));
        headers.push((
            X_RATELIMIT_RESET.clone(),
            HeaderValue::from(self.reset_secs()),
        ));
        if let Some(secs) = self.retry_after_secs() {
            headers.push((http::header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        headers
    }

    /// Of two decisions on one request (the caller's budget and the login's), the one to
    /// report: a refusal over an allowance; of two refusals the longer wait (the request only
    /// passes once both allow); of two allowances the one with fewer requests left.
    pub(crate) fn stricter(self, other: Decision) -> Decision {
        match (self.allowed, other.allowed) {
            (true, false) => other,
            (false, true) => self,
            (false, false) => {
                if other.retry_after > self.retry_after {
                    other
                } else {
                    self
                }
            }
            (true, true) => {
                if (other.remaining, std::cmp::Reverse(other.reset_after))
                    < (self.remaining, std::cmp::Reverse(self.reset_after))
                {
                    other
                } else {
                    self
                }
            }
        }
    }
}

/// Whole seconds, rounded up, saturating.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(remaining: u64, reset: u64) -> Decision {
        Decision {
            allowed: true,
            limit: 10,
            remaining,
            reset_after: Duration::from_secs(reset),
            retry_after: None,
        }
    }

    fn refused(retry_ms: u64) -> Decision {
        Decision {
            allowed: false,
            limit: 10,
            remaining: 0,
            reset_after: Duration::from_secs(60),
            retry_after: Some(Duration::from_millis(retry_ms)),
        }
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_secs(Duration::ZERO), 0);
        assert_eq!(ceil_secs(Duration::from_nanos(1)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(5_500)), 6);
        assert_eq!(ceil_secs(Duration::from_secs(6)), 6);
        assert_eq!(ceil_secs(Duration::MAX), u64::MAX);
    }

    #[test]
    fn stricter_prefers_refusal_then_longer_wait_then_fewer_left() {
        assert_eq!(allowed(3, 1).stricter(refused(10)), refused(10));
        assert_eq!(refused(10).stricter(allowed(3, 1)), refused(10));
        assert_eq!(refused(10).stricter(refused(4_000)), refused(4_000));
        assert_eq!(refused(4_000).stricter(refused(10)), refused(4_000));
        assert_eq!(allowed(3, 1).stricter(allowed(2, 1)), allowed(2, 1));
        assert_eq!(allowed(2, 1).stricter(allowed(3, 1)), allowed(2, 1));
        assert_eq!(allowed(2, 1).stricter(allowed(2, 9)), allowed(2, 9));
    }

    #[test]
    fn refuse_all_says_limit_zero() {
        let d = Decision::refuse_all(Duration::ZERO);
        assert!(!d.allowed);
        assert_eq!(d.limit, 0);
        assert_eq!(d.retry_after_secs(), Some(1));
    }
}
