//! Cost of checking a BridgeCore token, paid by every request that carries one (issue 3 item 8:
//! HS256 verification + local rate-limit decision < 5 µs per call).
//!
//! `cargo bench -p bridgecore-filters --bench auth -- --warm-up-time 1 --measurement-time 3`
//!
//! - `verify HS256/RS256/ES256/EdDSA`: a realistic access token (uid, tenant, db, session id,
//!   two scopes, jti), verified at a fixed instant; the asymmetric ones show what a deployment
//!   that verifies tokens issued elsewhere pays;
//! - `verify HS256 + rate_limit`: the target above, with the token's subject as the limit key;
//! - `allows 5 scopes`: the scope decision for a call, on a token with five scopes, for the
//!   last (worst-case) match and for a refusal (every scope scanned);
//! - `bearer_token`: finding the token in the headers.
//!
//! The PEM keys are the published test keys of `src/auth/testdata/`.

use std::hint::black_box;

use bridgecore_filters::auth::{
    bearer_token, Algorithm, Claims, JwtSettings, KeyMaterial, Role, Scopes, Signer, TokenType,
    Verifier,
};
use bridgecore_filters::classify::Category;
use bridgecore_filters::rate_limit::{LimitKey, LocalLimiter, Subject};
use bridgecore_filters::units::Rate;
use criterion::{criterion_group, criterion_main, Criterion};

const NOW: u64 = 1_700_000_000;
const SECRET: &[u8] = b"bench-secret-bench-secret-bench-secret-0123456789";

fn identity() -> Claims {
    Claims {
        sub: "42".to_owned(),
        tenant: "odoo-prod".to_owned(),
        db: "production_db".to_owned(),
        sid: "3f2b8c1e-5d4a-4e7b-9c6d-1a2b3c4d5e6f".to_owned(),
        role: Role::User,
        scopes: vec!["res.partner:read".to_owned(), "sale.order:write".to_owned()],
        iat: 0,
        exp: 0,
        nbf: None,
        iss: None,
        aud: None,
        jti: Some("8d1f7a52c3e94b0f".to_owned()),
        typ: TokenType::Access,
    }
}

fn setup(algorithm: Algorithm, keys: KeyMaterial) -> (Verifier, String) {
    let settings = JwtSettings::new(algorithm);
    let signer = Signer::new(&settings, &keys).expect("bench signer");
    let verifier = Verifier::new(&settings, &keys).expect("bench verifier");
    let token = signer
        .sign(&signer.stamp(identity(), TokenType::Access, NOW))
        .expect("bench token");
    (verifier, token)
}

fn pem(public: &[u8], private: &[u8]) -> KeyMaterial {
    KeyMaterial::Pem {
        public: public.to_vec(),
        private: Some(private.to_vec()),
    }
}

fn bench(c: &mut Criterion) {
    let cases = [
        (
            "HS256",
            setup(Algorithm::HS256, KeyMaterial::Secret(SECRET.to_vec())),
        ),
        (
            "RS256",
            setup(
                Algorithm::RS256,
                pem(
                    include_bytes!("../src/auth/testdata/rsa_public.pem"),
                    include_bytes!("../src/auth/testdata/rsa_private.pem"),
                ),
            ),
        ),
        (
            "ES256",
            setup(
                Algorithm::ES256,
                pem(
                    include_bytes!("../src/auth/testdata/ec_public.pem"),
                    include_bytes!("../src/auth/testdata/ec_private.pem"),
                ),
            ),
        ),
        (
            "EdDSA",
            setup(
                Algorithm::EdDSA,
                pem(
                    include_bytes!("../src/auth/testdata/ed_public.pem"),
                    include_bytes!("../src/auth/testdata/ed_private.pem"),
                ),
            ),
        ),
    ];
    for (name, (verifier, token)) in &cases {
        verifier
            .verify_access_at(token, NOW)
            .expect("bench token verifies");
        c.bench_function(&format!("auth verify {name} ({} B)", token.len()), |b| {
            b.iter(|| verifier.verify_access_at(black_box(token), NOW))
        });
    }

    // The per-request budget: verify, then one local rate-limit decision keyed by the subject.
    let (verifier, token) = &cases[0].1;
    let limiter = LocalLimiter::default();
    let rate = Rate::per_second(u64::MAX / 4);
    let mut now = NOW;
    c.bench_function("auth verify HS256 + rate_limit check", |b| {
        b.iter(|| {
            now += 1;
            let claims = verifier
                .verify_access_at(black_box(token), NOW)
                .expect("verifies");
            let Claims { sub, tenant, .. } = claims;
            let subject = Subject::Token(sub);
            let key = LimitKey::caller(&tenant, Category::Read, &subject);
            limiter.check(&key, rate, now)
        })
    });

    let scopes = Scopes::parse(&[
        "res.partner:read",
        "sale.order:write",
        "account.move:read",
        "stock.picking:write",
        "product.product:*",
    ])
    .expect("bench scopes");
    c.bench_function("auth allows 5 scopes (last matches)", |b| {
        b.iter(|| {
            scopes.allows(
                black_box(Some("product.product")),
                black_box(Category::Delete),
            )
        })
    });
    c.bench_function("auth allows 5 scopes (refused)", |b| {
        b.iter(|| scopes.allows(black_box(Some("res.users")), black_box(Category::Write)))
    });

    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    );
    c.bench_function("auth bearer_token", |b| {
        b.iter(|| bearer_token(black_box(&headers)).map(|t| t.map(str::len)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
