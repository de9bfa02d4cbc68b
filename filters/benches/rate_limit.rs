//! Cost of one local rate-limit decision, paid by every counted request when Redis is absent or
//! unreachable (issue 3 item 8: verification + local decision < 5 µs per call).
//!
//! `cargo bench -p bridgecore-filters --bench rate_limit -- --warm-up-time 1 --measurement-time 3`
//!
//! - `existing key`: the usual case, a caller already tracked (one map lookup);
//! - `fresh key`: a new caller each time, so the map grows to the cap and then evicts, as under
//!   a flood of distinct callers;
//! - `login (two keys)`: a login attempt, the caller's and the account's budget together;
//! - `policy + existing key`: the policy lookup and the decision, as the glue will call it;
//! - `SystemClock::now`: reading the time, paid once per request on top.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use bridgecore_filters::classify::Category;
use bridgecore_filters::rate_limit::{
    Clock, LimitKey, LocalLimiter, Login, RateLimitPolicy, Subject, SystemClock,
};
use bridgecore_filters::units::Rate;
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    // High enough that every call is allowed: the allowed path also writes the new TAT.
    let rate = Rate::per_second(u64::MAX / 4);
    let limiter = LocalLimiter::default();
    let subject = Subject::Token("42".into());
    let key = LimitKey::caller("odoo-prod", Category::Read, &subject);
    let _ = limiter.check(&key, rate, 0);
    let mut now = 0u64;
    c.bench_function("rate_limit check existing key", |b| {
        b.iter(|| {
            now += 1;
            limiter.check(black_box(&key), black_box(rate), now)
        })
    });

    let fresh = LocalLimiter::default();
    let mut n = 0u32;
    c.bench_function("rate_limit check fresh key", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let subject = Subject::Ip(IpAddr::V4(Ipv4Addr::from(n)));
            let key = LimitKey::caller("odoo-prod", Category::Read, &subject);
            fresh.check(black_box(&key), black_box(rate), 1)
        })
    });

    let policy = RateLimitPolicy::default()
        .with_tenant(
            "odoo-prod",
            &[(Category::Auth, rate), (Category::Read, rate)],
        )
        .expect("valid rates");
    let caller = Subject::Ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    let login = Login {
        db: "production_db",
        login: "admin@example.com",
    };
    let mut now = 1u64;
    c.bench_function("rate_limit check login (two keys)", |b| {
        b.iter(|| {
            now += 1;
            policy.check(
                &limiter,
                black_box("odoo-prod"),
                Category::Auth,
                black_box(&caller),
                Some(login),
                now,
            )
        })
    });

    let mut now = 1u64;
    c.bench_function("rate_limit policy + check existing key", |b| {
        b.iter(|| {
            now += 1;
            policy.check(
                &limiter,
                black_box("odoo-prod"),
                Category::Read,
                black_box(&subject),
                None,
                now,
            )
        })
    });

    let clock = SystemClock::new();
    c.bench_function("rate_limit SystemClock::now", |b| b.iter(|| clock.now()));
}

criterion_group!(benches, bench);
criterion_main!(benches);
