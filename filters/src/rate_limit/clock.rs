//! The time source of the local limiter, behind a trait so tests drive it by hand.
//!
//! Time is a `u64` of **nanoseconds since the clock's own origin**, not a [`std::time::Instant`]:
//! the limiter keeps exactly one `u64` per key (its theoretical arrival time), so the clock must
//! speak the same unit; integer nanoseconds make the GCRA arithmetic exact and saturating (an
//! `Instant + Duration` can panic on overflow); and a `u64` of nanoseconds lasts 584 years from
//! the origin. Values from two different clocks are not comparable: one limiter, one clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic time source in nanoseconds since an origin of the clock's choosing.
///
/// The proxy uses [`SystemClock`]; tests use [`ManualClock`] so that "refused at exactly the
/// 11th call, allowed again 6 s later" is checked at exact instants instead of with sleeps.
pub trait Clock: Send + Sync {
    /// Nanoseconds since this clock's origin. Never goes backwards.
    fn now(&self) -> u64;
}

/// Converts a duration to nanoseconds, saturating at `u64::MAX` (584 years) instead of failing.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The real, monotonic clock ([`Instant`]), counted from the moment it was created.
///
/// Monotonic rather than wall-clock time, so that an NTP step can neither unlock nor freeze every
/// limited client at once.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin (time `0`) is now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        nanos(self.origin.elapsed())
    }
}

/// A clock that only moves when told to, for deterministic tests of windows and recovery.
///
/// Shared by reference between threads (an atomic inside), so a concurrent test can hold the
/// time still while several threads race on the same key.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock standing at `start` nanoseconds.
    pub fn new(start: u64) -> Self {
        ManualClock {
            now: AtomicU64::new(start),
        }
    }

    /// Moves the clock forward by `by` (saturating at `u64::MAX`).
    pub fn advance(&self, by: Duration) {
        let by = nanos(by);
        // `fetch_update` with a closure that always returns `Some` cannot fail.
        let _ = self
            .now
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(by))
            });
    }

    /// Puts the clock at `at` nanoseconds. Going backwards is ignored, to keep the monotonic
    /// promise of [`Clock::now`].
    pub fn set(&self, at: u64) {
        self.now.fetch_max(at, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_forward() {
        let clock = ManualClock::new(5);
        assert_eq!(clock.now(), 5);
        clock.advance(Duration::from_nanos(10));
        assert_eq!(clock.now(), 15);
        clock.set(3);
        assert_eq!(clock.now(), 15);
        clock.set(100);
        assert_eq!(clock.now(), 100);
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), u64::MAX);
    }

    #[test]
    fn system_clock_is_monotonic() {
        let clock = SystemClock::new();
        let a = clock.now();
        let b = clock.now();
        assert!(b >= a);
    }
}
