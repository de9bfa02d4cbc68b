//! Token signing and verification against every refusal rule, at fixed instants.
//!
//! The PEM and JWKS fixtures under `testdata/` are test keys published with the repository
//! (see testdata/README.md): never use them anywhere else.

use std::sync::LazyLock;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

/// A fixed "now": every time check below is exact, no sleeps.
const NOW: u64 = 1_700_000_000;
/// 32 bytes: the HS256 minimum.
const SECRET_32: &[u8] = b"0123456789abcdef0123456789abcdef";
const SECRET_64: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

const RSA_PUBLIC: &[u8] = include_bytes!("testdata/rsa_public.pem");
const RSA_PRIVATE: &[u8] = include_bytes!("testdata/rsa_private.pem");
const RSA2_PUBLIC: &[u8] = include_bytes!("testdata/rsa2_public.pem");
const RSA2_PRIVATE: &[u8] = include_bytes!("testdata/rsa2_private.pem");
const RSA1024_PUBLIC: &[u8] = include_bytes!("testdata/rsa1024_public.pem");
const EC_PUBLIC: &[u8] = include_bytes!("testdata/ec_public.pem");
const EC_PRIVATE: &[u8] = include_bytes!("testdata/ec_private.pem");
const EC384_PUBLIC: &[u8] = include_bytes!("testdata/ec384_public.pem");
const EC384_PRIVATE: &[u8] = include_bytes!("testdata/ec384_private.pem");
const ED_PUBLIC: &[u8] = include_bytes!("testdata/ed_public.pem");
const ED_PRIVATE: &[u8] = include_bytes!("testdata/ed_private.pem");
const JWKS: &[u8] = include_bytes!("testdata/jwks.json");
const JWKS_SINGLE: &[u8] = include_bytes!("testdata/jwks_single.json");

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn settings(algorithm: Algorithm) -> JwtSettings {
    JwtSettings::new(algorithm)
}

fn secret(bytes: &[u8]) -> KeyMaterial {
    KeyMaterial::Secret(bytes.to_vec())
}

fn pem(public: &[u8], private: &[u8]) -> KeyMaterial {
    KeyMaterial::Pem {
        public: public.to_vec(),
        private: Some(private.to_vec()),
    }
}

fn public_only(public: &[u8]) -> KeyMaterial {
    KeyMaterial::Pem {
        public: public.to_vec(),
        private: None,
    }
}

/// An identity as a login would build it; [`Signer::stamp`] fills in the rest.
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
        jti: Some("j-1".to_owned()),
        typ: TokenType::Access,
    }
}

fn hs256() -> (Signer, Verifier) {
    pair(&settings(Algorithm::HS256), &secret(SECRET_32))
}

fn pair(settings: &JwtSettings, keys: &KeyMaterial) -> (Signer, Verifier) {
    let signer = Signer::new(settings, keys).expect("test signer");
    let verifier = Verifier::new(settings, keys).expect("test verifier");
    (signer, verifier)
}

fn access(signer: &Signer) -> String {
    signer
        .sign(&signer.stamp(identity(), TokenType::Access, NOW))
        .expect("test token")
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

fn config_error(result: Result<impl std::fmt::Debug, AuthError>) -> String {
    match result {
        Err(AuthError::Config(msg)) => msg,
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn round_trip_every_algorithm() -> TestResult {
    let cases: Vec<(Algorithm, KeyMaterial)> = vec![
        (Algorithm::HS256, secret(SECRET_32)),
        (Algorithm::HS384, secret(&SECRET_64[..48])),
        (Algorithm::HS512, secret(SECRET_64)),
        (Algorithm::RS256, pem(RSA_PUBLIC, RSA_PRIVATE)),
        (Algorithm::RS512, pem(RSA_PUBLIC, RSA_PRIVATE)),
        (Algorithm::PS256, pem(RSA_PUBLIC, RSA_PRIVATE)),
        (Algorithm::ES256, pem(EC_PUBLIC, EC_PRIVATE)),
        (Algorithm::ES384, pem(EC384_PUBLIC, EC384_PRIVATE)),
        (Algorithm::EdDSA, pem(ED_PUBLIC, ED_PRIVATE)),
    ];
    for (alg, keys) in cases {
        let (signer, verifier) = pair(&settings(alg), &keys);
        assert_eq!(verifier.algorithm(), alg);
        let want = signer.stamp(identity(), TokenType::Access, NOW);
        let token = signer.sign(&want)?;
        assert!(looks_like_jwt(&token), "{alg}");
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&segments(&token)[0])?)?;
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(verifier.verify_access_at(&token, NOW)?, want, "{alg}");

        let refresh = signer.sign(&signer.stamp(identity(), TokenType::Refresh, NOW))?;
        let got = verifier.verify_refresh_at(&refresh, NOW + 3600)?;
        assert_eq!(got.typ, TokenType::Refresh);
        assert_eq!(got.exp, NOW + 7 * 24 * 3600);
    }
    Ok(())
}

#[test]
fn stamp_fills_what_the_deployment_decides() {
    let (signer, _) = hs256();
    let claims = signer.stamp(identity(), TokenType::Access, NOW);
    assert_eq!(claims.iat, NOW);
    assert_eq!(claims.exp, NOW + 15 * 60);
    assert_eq!(claims.iss.as_deref(), Some("bridgecore"));
    assert_eq!(claims.aud.as_deref(), Some("bridgecore"));
    assert_eq!(claims.typ, TokenType::Access);
    assert_eq!(claims.sub, "42");
    assert_eq!(
        signer.ttl(TokenType::Refresh),
        Duration::from_secs(7 * 24 * 3600)
    );
}

#[test]
fn verify_with_system_clock() -> TestResult {
    let (signer, verifier) = hs256();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let token = signer.sign(&signer.stamp(identity(), TokenType::Access, now))?;
    assert_eq!(verifier.verify_access(&token)?.sub, "42");
    assert_eq!(verifier.verify_refresh(&token), Err(AuthError::WrongType));
    // Minted long ago: the system clock says it has expired.
    assert_eq!(
        verifier.verify_access(&access(&signer)),
        Err(AuthError::Expired)
    );
    Ok(())
}

#[test]
fn expiry_with_leeway_edges() -> TestResult {
    let (signer, verifier) = hs256();
    let leeway = JwtSettings::DEFAULT_LEEWAY.as_secs();
    let at = |exp: u64, nbf: Option<u64>| -> Result<Claims, AuthError> {
        let mut claims = signer.stamp(identity(), TokenType::Access, NOW - 600);
        claims.exp = exp;
        claims.nbf = nbf;
        verifier.verify_access_at(&signer.sign(&claims)?, NOW)
    };
    assert!(at(NOW + 1, None).is_ok());
    assert!(at(NOW, None).is_ok());
    assert!(at(NOW - leeway + 1, None).is_ok());
    assert!(at(NOW - leeway, None).is_ok());
    assert_eq!(at(NOW - leeway - 1, None), Err(AuthError::Expired));
    assert_eq!(at(0, None), Err(AuthError::Expired));
    // Far-future values do not overflow.
    assert!(at(u64::MAX, None).is_ok());

    assert!(at(NOW + 60, Some(NOW)).is_ok());
    assert!(at(NOW + 60, Some(NOW + leeway)).is_ok());
    assert_eq!(
        at(NOW + 60, Some(NOW + leeway + 1)),
        Err(AuthError::NotYetValid)
    );
    assert_eq!(at(u64::MAX, Some(u64::MAX)), Err(AuthError::NotYetValid));

    // The whole lifetime of a real token, minute by minute.
    let token = access(&signer);
    assert!(verifier
        .verify_access_at(&token, NOW + 15 * 60 + leeway)
        .is_ok());
    assert_eq!(
        verifier.verify_access_at(&token, NOW + 15 * 60 + leeway + 1),
        Err(AuthError::Expired)
    );
    Ok(())
}

#[test]
fn custom_leeway() -> TestResult {
    let mut s = settings(Algorithm::HS256);
    s.leeway = Duration::ZERO;
    let (signer, verifier) = pair(&s, &secret(SECRET_32));
    let token = access(&signer);
    assert!(verifier.verify_access_at(&token, NOW + 15 * 60).is_ok());
    assert_eq!(
        verifier.verify_access_at(&token, NOW + 15 * 60 + 1),
        Err(AuthError::Expired)
    );
    Ok(())
}

#[test]
fn alg_none_is_refused() -> TestResult {
    let (signer, verifier) = hs256();
    let payload = segments(&access(&signer))[1].clone();
    for header in [
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"None"}"#,
        r#"{"alg":"NONE"}"#,
        r#"{"alg":"hs256"}"#,
        r#"{"alg":"HS512"}"#,
        r#"{"alg":"RS256"}"#,
    ] {
        let h = b64(header.as_bytes());
        // Unsigned, as an attacker sends it: not even JWS-shaped.
        assert_eq!(
            verifier.verify_access_at(&format!("{h}.{payload}."), NOW),
            Err(AuthError::Malformed),
            "{header}"
        );
        // With some signature bytes: the algorithm is refused before any key work.
        assert_eq!(
            verifier.verify_access_at(&format!("{h}.{payload}.c2ln"), NOW),
            Err(AuthError::WrongAlgorithm),
            "{header}"
        );
    }
    // No alg at all.
    let h = b64(br#"{"typ":"JWT"}"#);
    assert_eq!(
        verifier.verify_access_at(&format!("{h}.{payload}.c2ln"), NOW),
        Err(AuthError::Malformed)
    );
    Ok(())
}

/// The classic confusion: the RS256 public key is public, so an attacker HMACs a token with it
/// and sends `alg: HS256`, hoping the verifier uses "its key" with the token's algorithm.
#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused() -> TestResult {
    let (signer, verifier) = pair(&settings(Algorithm::RS256), &pem(RSA_PUBLIC, RSA_PRIVATE));
    let claims = signer.stamp(identity(), TokenType::Access, NOW);
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(RSA_PUBLIC)?,
    )?;
    assert_eq!(
        verifier.verify_access_at(&forged, NOW),
        Err(AuthError::WrongAlgorithm)
    );
    // And the genuine token still passes.
    assert!(verifier
        .verify_access_at(&signer.sign(&claims)?, NOW)
        .is_ok());
    Ok(())
}

#[test]
fn wrong_issuer_and_audience() -> TestResult {
    let (_, verifier) = hs256();
    let keys = secret(SECRET_32);

    let mut other = settings(Algorithm::HS256);
    other.audience = "someone-else".to_owned();
    let signer = Signer::new(&other, &keys)?;
    assert_eq!(
        verifier.verify_access_at(&access(&signer), NOW),
        Err(AuthError::WrongAudience)
    );

    let mut other = settings(Algorithm::HS256);
    other.issuer = "https://idp.example.com".to_owned();
    let signer = Signer::new(&other, &keys)?;
    assert_eq!(
        verifier.verify_access_at(&access(&signer), NOW),
        Err(AuthError::WrongIssuer)
    );

    // Absent iss / aud are refused too.
    let (signer, _) = hs256();
    let mut claims = signer.stamp(identity(), TokenType::Access, NOW);
    claims.iss = None;
    assert_eq!(
        verifier.verify_access_at(&signer.sign(&claims)?, NOW),
        Err(AuthError::WrongIssuer)
    );
    let mut claims = signer.stamp(identity(), TokenType::Access, NOW);
    claims.aud = None;
    assert_eq!(
        verifier.verify_access_at(&signer.sign(&claims)?, NOW),
        Err(AuthError::WrongAudience)
    );
    Ok(())
}

#[test]
fn tampering_is_detected() -> TestResult {
    for (alg, keys) in [
        (Algorithm::HS256, secret(SECRET_32)),
        (Algorithm::RS256, pem(RSA_PUBLIC, RSA_PRIVATE)),
        (Algorithm::ES256, pem(EC_PUBLIC, EC_PRIVATE)),
        (Algorithm::EdDSA, pem(ED_PUBLIC, ED_PRIVATE)),
    ] {
        let (signer, verifier) = pair(&settings(alg), &keys);
        let token = access(&signer);
        let parts = segments(&token);

        // Flip a claim (become uid 1, admin), keep the signature.
        let mut payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1])?)?;
        payload["sub"] = json!("1");
        payload["role"] = json!("admin");
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(&serde_json::to_vec(&payload)?),
            parts[2]
        );
        assert_eq!(
            verifier.verify_access_at(&forged, NOW),
            Err(AuthError::BadSignature),
            "{alg}"
        );

        // Change the signature itself (a middle character, so real bits change).
        let mut sig = parts[2].clone().into_bytes();
        let mid = sig.len() / 2;
        sig[mid] = if sig[mid] == b'A' { b'B' } else { b'A' };
        let forged = format!("{}.{}.{}", parts[0], parts[1], String::from_utf8(sig)?);
        assert_eq!(
            verifier.verify_access_at(&forged, NOW),
            Err(AuthError::BadSignature),
            "{alg}"
        );

        // Another token's signature.
        let other = signer.sign(&signer.stamp(identity(), TokenType::Refresh, NOW))?;
        let forged = format!("{}.{}.{}", parts[0], parts[1], segments(&other)[2]);
        assert_eq!(
            verifier.verify_access_at(&forged, NOW),
            Err(AuthError::BadSignature),
            "{alg}"
        );
    }
    Ok(())
}

#[test]
fn a_different_key_is_a_bad_signature() -> TestResult {
    let (_, verifier) = hs256();
    let other = Signer::new(
        &settings(Algorithm::HS256),
        &secret(b"another-secret-that-is-long-enough!!"),
    )?;
    assert_eq!(
        verifier.verify_access_at(&access(&other), NOW),
        Err(AuthError::BadSignature)
    );
    Ok(())
}

#[test]
fn garbage_and_size() {
    let (_, verifier) = hs256();
    for garbage in [
        "",
        "garbage",
        "a.b",
        "a.b.c",
        "...",
        "a.b.c.d",
        "Bearer x.y.z",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIyIn0",
        "eyJhbGciOiJIUzI1NiJ9.!!!.c2ln",
        "e30.e30.c2ln",
        "bm90IGpzb24.e30.c2ln",
        "ZXlK.e30.c2ln",
        "W10.e30.c2ln",
    ] {
        assert_eq!(
            verifier.verify_access_at(garbage, NOW),
            Err(AuthError::Malformed),
            "{garbage:?}"
        );
    }
    let big = "a".repeat(100 * 1024);
    assert_eq!(
        verifier.verify_access_at(&big, NOW),
        Err(AuthError::TooLarge)
    );
    let big_jwt = format!("{}.{}.{}", "a".repeat(50_000), "b".repeat(50_000), "c");
    assert_eq!(
        verifier.verify_access_at(&big_jwt, NOW),
        Err(AuthError::TooLarge)
    );
    assert_eq!(
        verifier.verify_access_at(&"a".repeat(MAX_TOKEN_LEN + 1), NOW),
        Err(AuthError::TooLarge)
    );
    assert_eq!(
        verifier.verify_access_at(&"a".repeat(MAX_TOKEN_LEN), NOW),
        Err(AuthError::Malformed)
    );
}

#[test]
fn claims_of_the_wrong_shape_are_malformed() -> TestResult {
    let (_, verifier) = hs256();
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET_32)?;
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let good = json!({
        "sub": "42", "tenant": "odoo-prod", "db": "production_db", "sid": "s", "role": "user",
        "iat": NOW, "exp": NOW + 60, "iss": "bridgecore", "aud": "bridgecore", "typ": "access",
    });
    let token = jsonwebtoken::encode(&header, &good, &key)?;
    assert!(verifier.verify_access_at(&token, NOW).is_ok());
    // Unknown claims are ignored (newer signers during a rolling upgrade).
    let mut extra = good.clone();
    extra["future_claim"] = json!({"x": 1});
    assert!(verifier
        .verify_access_at(&jsonwebtoken::encode(&header, &extra, &key)?, NOW)
        .is_ok());
    for (field, value) in [
        ("tenant", Value::Null),
        ("role", json!("root")),
        ("typ", json!("id")),
        ("exp", json!("tomorrow")),
        ("exp", json!(-1)),
        ("sub", json!(42)),
        ("aud", json!(["bridgecore", "other"])),
        ("scopes", json!("res.partner:read")),
    ] {
        let mut claims = good.clone();
        if value.is_null() {
            claims.as_object_mut().map(|o| o.remove(field));
        } else {
            claims[field] = value;
        }
        let token = jsonwebtoken::encode(&header, &claims, &key)?;
        assert_eq!(
            verifier.verify_access_at(&token, NOW),
            Err(AuthError::Malformed),
            "{field}"
        );
    }
    Ok(())
}

#[test]
fn unknown_critical_header_is_refused() -> TestResult {
    let (signer, verifier) = hs256();
    let parts = segments(&access(&signer));
    let header = b64(br#"{"alg":"HS256","crit":["exp-bridgecore"],"exp-bridgecore":1}"#);
    let message = format!("{header}.{}", parts[1]);
    let sig = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(SECRET_32)?,
        jsonwebtoken::Algorithm::HS256,
    )?;
    let token = format!("{message}.{sig}");
    assert_eq!(
        verifier.verify_access_at(&token, NOW),
        Err(AuthError::Malformed)
    );
    // Unencoded payloads (RFC 7797 `b64: false`) are not BridgeCore tokens either.
    let header = b64(br#"{"alg":"HS256","b64":false,"crit":["b64"]}"#);
    let message = format!("{header}.{}", parts[1]);
    let sig = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(SECRET_32)?,
        jsonwebtoken::Algorithm::HS256,
    )?;
    assert_eq!(
        verifier.verify_access_at(&format!("{message}.{sig}"), NOW),
        Err(AuthError::Malformed)
    );
    Ok(())
}

#[test]
fn access_and_refresh_are_not_interchangeable() -> TestResult {
    for (alg, keys) in [
        (Algorithm::HS256, secret(SECRET_32)),
        (Algorithm::ES256, pem(EC_PUBLIC, EC_PRIVATE)),
    ] {
        let (signer, verifier) = pair(&settings(alg), &keys);
        let access = signer.sign(&signer.stamp(identity(), TokenType::Access, NOW))?;
        let refresh = signer.sign(&signer.stamp(identity(), TokenType::Refresh, NOW))?;
        assert_eq!(
            verifier.verify_access_at(&refresh, NOW),
            Err(AuthError::WrongType)
        );
        assert_eq!(
            verifier.verify_refresh_at(&access, NOW),
            Err(AuthError::WrongType)
        );
        assert!(verifier.verify_access_at(&access, NOW).is_ok());
        assert!(verifier.verify_refresh_at(&refresh, NOW).is_ok());
        assert!(verifier.verify(&refresh, TokenType::Refresh, NOW).is_ok());
    }
    Ok(())
}

#[test]
fn kid_goes_in_the_header() -> TestResult {
    let mut s = settings(Algorithm::HS256);
    s.kid = Some("2025-01".to_owned());
    let (signer, verifier) = pair(&s, &secret(SECRET_32));
    let token = access(&signer);
    let header = jsonwebtoken::decode_header(&token)?;
    assert_eq!(header.kid.as_deref(), Some("2025-01"));
    // A single configured key does not consult the kid.
    assert!(verifier.verify_access_at(&token, NOW).is_ok());
    let (plain, _) = hs256();
    assert_eq!(jsonwebtoken::decode_header(access(&plain))?.kid, None);
    Ok(())
}

fn rsa_signer(public: &[u8], private: &[u8], kid: Option<&str>) -> Signer {
    let mut s = settings(Algorithm::RS256);
    s.kid = kid.map(str::to_owned);
    Signer::new(&s, &pem(public, private)).expect("test signer")
}

#[test]
fn jwks_picks_the_key_by_kid() -> TestResult {
    let verifier = Verifier::new(
        &settings(Algorithm::RS256),
        &KeyMaterial::Jwks(JWKS.to_vec()),
    )?;
    let first = rsa_signer(RSA_PUBLIC, RSA_PRIVATE, Some("bc-2024"));
    let second = rsa_signer(RSA2_PUBLIC, RSA2_PRIVATE, Some("bc-2025"));
    assert_eq!(verifier.verify_access_at(&access(&first), NOW)?.sub, "42");
    assert_eq!(verifier.verify_access_at(&access(&second), NOW)?.sub, "42");

    // A kid the set does not hold.
    let unknown = rsa_signer(RSA_PUBLIC, RSA_PRIVATE, Some("bc-2023"));
    assert_eq!(
        verifier.verify_access_at(&access(&unknown), NOW),
        Err(AuthError::UnknownKey)
    );
    // No kid, and the set has two keys: which one is not guessed.
    let anonymous = rsa_signer(RSA_PUBLIC, RSA_PRIVATE, None);
    assert_eq!(
        verifier.verify_access_at(&access(&anonymous), NOW),
        Err(AuthError::UnknownKey)
    );
    // The kid of one key, signed with the other.
    let liar = rsa_signer(RSA2_PUBLIC, RSA2_PRIVATE, Some("bc-2024"));
    assert_eq!(
        verifier.verify_access_at(&access(&liar), NOW),
        Err(AuthError::BadSignature)
    );
    Ok(())
}

#[test]
fn jwks_with_a_single_key() -> TestResult {
    let verifier = Verifier::new(
        &settings(Algorithm::RS256),
        &KeyMaterial::Jwks(JWKS_SINGLE.to_vec()),
    )?;
    let anonymous = rsa_signer(RSA_PUBLIC, RSA_PRIVATE, None);
    assert!(verifier.verify_access_at(&access(&anonymous), NOW).is_ok());
    // The only key has no kid, so a token naming one names no key of the set.
    let named = rsa_signer(RSA_PUBLIC, RSA_PRIVATE, Some("bc-2024"));
    assert_eq!(
        verifier.verify_access_at(&access(&named), NOW),
        Err(AuthError::UnknownKey)
    );
    let other = rsa_signer(RSA2_PUBLIC, RSA2_PRIVATE, None);
    assert_eq!(
        verifier.verify_access_at(&access(&other), NOW),
        Err(AuthError::BadSignature)
    );
    Ok(())
}

#[test]
fn jwks_skips_keys_that_do_not_fit() -> TestResult {
    let set: Value = serde_json::from_slice(JWKS)?;
    let rsa = set["keys"][0].clone();
    let mut enc = set["keys"][1].clone();
    enc["use"] = json!("enc");
    let mut ps = set["keys"][1].clone();
    ps["alg"] = json!("PS256");
    ps["kid"] = json!("ps");
    let oct = json!({"kty": "oct", "kid": "hmac", "k": b64(SECRET_32)});
    let unknown = json!({"kty": "OKP", "crv": "X25519", "kid": "x", "x": b64(&[1; 32])});
    let doc = json!({"keys": [oct, enc, ps, unknown, rsa]});
    let verifier = Verifier::new(
        &settings(Algorithm::RS256),
        &KeyMaterial::Jwks(serde_json::to_vec(&doc)?),
    )?;
    // The one RS256 signature key left is the only key, so even a token without kid uses it.
    let anonymous = rsa_signer(RSA_PUBLIC, RSA_PRIVATE, None);
    assert!(verifier.verify_access_at(&access(&anonymous), NOW).is_ok());
    // An `enc` key is never used for signatures, even when named.
    let second = rsa_signer(RSA2_PUBLIC, RSA2_PRIVATE, Some("bc-2025"));
    assert_eq!(
        verifier.verify_access_at(&access(&second), NOW),
        Err(AuthError::UnknownKey)
    );
    // A symmetric key in a JWKS would let anyone sign: never used.
    let doc = json!({"keys": [json!({"kty": "oct", "kid": "hmac", "k": b64(SECRET_32)})]});
    let msg = config_error(Verifier::new(
        &settings(Algorithm::RS256),
        &KeyMaterial::Jwks(serde_json::to_vec(&doc)?),
    ));
    assert!(msg.contains("no key usable with RS256"), "{msg}");
    Ok(())
}

#[test]
fn jwks_config_errors() -> TestResult {
    let jwks = KeyMaterial::Jwks(JWKS.to_vec());
    let msg = config_error(Verifier::new(&settings(Algorithm::HS256), &jwks));
    assert!(msg.contains("HS256 uses a shared secret"), "{msg}");
    let msg = config_error(Verifier::new(&settings(Algorithm::ES256), &jwks));
    assert!(msg.contains("no key usable with ES256"), "{msg}");
    let msg = config_error(Verifier::new(
        &settings(Algorithm::RS256),
        &KeyMaterial::Jwks(b"{\"keys\": 1}".to_vec()),
    ));
    assert!(msg.contains("not valid JSON of a key set"), "{msg}");
    let msg = config_error(Verifier::new(
        &settings(Algorithm::RS256),
        &KeyMaterial::Jwks(Vec::new()),
    ));
    assert!(msg.contains("JWKS"), "{msg}");

    let set: Value = serde_json::from_slice(JWKS)?;
    let mut twin = set["keys"][1].clone();
    twin["kid"] = json!("bc-2024");
    let doc = json!({"keys": [set["keys"][0].clone(), twin]});
    let msg = config_error(Verifier::new(
        &settings(Algorithm::RS256),
        &KeyMaterial::Jwks(serde_json::to_vec(&doc)?),
    ));
    assert!(msg.contains("two RS256 keys with kid `bc-2024`"), "{msg}");

    let mut short = set["keys"][0].clone();
    short["n"] = json!(b64(&[0xff; 128]));
    let doc = json!({"keys": [short]});
    let msg = config_error(Verifier::new(
        &settings(Algorithm::RS256),
        &KeyMaterial::Jwks(serde_json::to_vec(&doc)?),
    ));
    assert!(msg.contains("1024 bits"), "{msg}");

    // Verification only: no signer from a JWKS.
    let msg = config_error(Signer::new(&settings(Algorithm::RS256), &jwks));
    assert!(msg.contains("logins are disabled"), "{msg}");
    Ok(())
}

#[test]
fn secret_length_is_enforced() {
    for (alg, min) in [
        (Algorithm::HS256, 32),
        (Algorithm::HS384, 48),
        (Algorithm::HS512, 64),
    ] {
        let short = secret(&SECRET_64[..min - 1]);
        for msg in [
            config_error(Verifier::new(&settings(alg), &short)),
            config_error(Signer::new(&settings(alg), &short)),
            config_error(settings(alg).check(&short)),
        ] {
            assert!(msg.contains(&format!("at least {min} bytes")), "{msg}");
            assert!(msg.contains(&format!("is {} bytes", min - 1)), "{msg}");
        }
        assert!(Verifier::new(&settings(alg), &secret(&SECRET_64[..min])).is_ok());
    }
    let msg = config_error(Verifier::new(&settings(Algorithm::HS256), &secret(b"")));
    assert!(msg.contains("is 0 bytes"), "{msg}");
}

#[test]
fn key_kind_must_fit_the_algorithm() {
    let msg = config_error(Verifier::new(
        &settings(Algorithm::RS256),
        &secret(SECRET_64),
    ));
    assert!(msg.contains("only works with HS256"), "{msg}");
    let msg = config_error(Verifier::new(
        &settings(Algorithm::HS256),
        &pem(RSA_PUBLIC, RSA_PRIVATE),
    ));
    assert!(msg.contains("shared secret"), "{msg}");
    for (alg, public) in [
        (Algorithm::RS256, EC_PUBLIC),
        (Algorithm::ES256, RSA_PUBLIC),
        (Algorithm::ES256, ED_PUBLIC),
        (Algorithm::ES256, EC384_PUBLIC),
        (Algorithm::EdDSA, EC_PUBLIC),
        (Algorithm::RS256, b"not a pem".as_slice()),
    ] {
        let msg = config_error(Verifier::new(&settings(alg), &public_only(public)));
        assert!(msg.contains("public key"), "{alg}: {msg}");
    }
    let msg = config_error(Verifier::new(
        &settings(Algorithm::RS256),
        &public_only(RSA1024_PUBLIC),
    ));
    assert!(msg.contains("1024 bits; at least 2048"), "{msg}");
}

#[test]
fn signer_needs_a_matching_private_key() -> TestResult {
    // Public only: verification works, signing is refused with the reason.
    let public = public_only(RSA_PUBLIC);
    assert!(Verifier::new(&settings(Algorithm::RS256), &public).is_ok());
    let msg = config_error(Signer::new(&settings(Algorithm::RS256), &public));
    assert!(
        msg.contains("no private key") && msg.contains("logins are disabled"),
        "{msg}"
    );

    let msg = config_error(Signer::new(
        &settings(Algorithm::RS256),
        &pem(RSA_PUBLIC, RSA2_PRIVATE),
    ));
    assert!(msg.contains("does not match the public key"), "{msg}");
    let msg = config_error(Signer::new(
        &settings(Algorithm::ES256),
        &pem(EC_PUBLIC, EC384_PRIVATE),
    ));
    assert!(msg.contains("private key"), "{msg}");
    let msg = config_error(Signer::new(
        &settings(Algorithm::EdDSA),
        &pem(
            ED_PUBLIC,
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ),
    ));
    assert!(msg.contains("private key"), "{msg}");
    Ok(())
}

#[test]
fn settings_are_checked() {
    let keys = secret(SECRET_32);
    let mut s = settings(Algorithm::HS256);
    s.issuer.clear();
    assert!(config_error(s.check(&keys)).contains("issuer"));
    let mut s = settings(Algorithm::HS256);
    s.audience.clear();
    assert!(config_error(s.check(&keys)).contains("audience"));
    let mut s = settings(Algorithm::HS256);
    s.kid = Some(String::new());
    assert!(config_error(s.check(&keys)).contains("kid"));
    let mut s = settings(Algorithm::HS256);
    s.access_ttl = Duration::ZERO;
    assert!(config_error(s.check(&keys)).contains("access_ttl"));
    let mut s = settings(Algorithm::HS256);
    s.refresh_ttl = Duration::from_secs(60);
    assert!(config_error(s.check(&keys)).contains("refresh_ttl"));
    let mut s = settings(Algorithm::HS256);
    s.leeway = s.access_ttl;
    assert!(config_error(s.check(&keys)).contains("leeway"));
    assert_eq!(settings(Algorithm::HS256).check(&keys), Ok(()));
}

#[test]
fn algorithm_names() {
    for alg in Algorithm::ALL {
        assert_eq!(Algorithm::parse(alg.as_str()), Ok(alg));
        assert_eq!(alg.to_string().parse::<Algorithm>(), Ok(alg));
        assert_eq!(Algorithm::parse(&alg.as_str().to_lowercase()), Ok(alg));
    }
    assert_eq!(Algorithm::parse(" HS256 "), Ok(Algorithm::HS256));
    for name in ["none", "None", "NONE"] {
        let msg = config_error(Algorithm::parse(name));
        assert!(msg.contains("`none` is refused"), "{msg}");
        assert!(msg.contains("HS256, HS384, HS512, RS256"), "{msg}");
    }
    for name in ["", "HS1", "RS128", "ES512", "HMAC", "A256GCM"] {
        let msg = config_error(Algorithm::parse(name));
        assert!(msg.contains("unknown algorithm"), "{msg}");
        assert!(msg.contains("EdDSA"), "{msg}");
    }
    assert_eq!(Algorithm::HS384.min_secret_len(), Some(48));
    assert_eq!(Algorithm::ES256.min_secret_len(), None);
}

#[test]
fn details_never_echo_and_single_out_expiry() {
    assert_eq!(AuthError::Expired.detail(), "token expired");
    for e in [
        AuthError::Malformed,
        AuthError::TooLarge,
        AuthError::BadSignature,
        AuthError::NotYetValid,
        AuthError::WrongIssuer,
        AuthError::WrongAudience,
        AuthError::WrongAlgorithm,
        AuthError::WrongType,
        AuthError::UnknownKey,
        AuthError::Duplicate,
    ] {
        assert_eq!(e.detail(), "invalid token", "{e:?}");
        assert_eq!(e.kind(), crate::ErrorKind::Unauthorized);
    }
    assert_eq!(AuthError::Missing.kind().status(), 401);
    let config = AuthError::Config("the secret is 3 bytes".to_owned());
    assert!(!config.detail().contains("secret"));
    assert_eq!(config.kind().status(), 503);
}

#[test]
fn debug_output_hides_keys() {
    let shown = format!("{:?} {:?}", secret(SECRET_32), pem(RSA_PUBLIC, RSA_PRIVATE));
    assert!(!shown.contains("0123456789abcdef"), "{shown}");
    assert!(!shown.contains("BEGIN"), "{shown}");
    let (signer, verifier) = hs256();
    let shown = format!("{signer:?} {verifier:?}");
    assert!(!shown.contains("0123456789abcdef"), "{shown}");
    assert!(!shown.contains("48, 49, 50"), "{shown}");
}

#[test]
fn verifier_and_signer_are_shareable() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<Verifier>();
    shareable::<Signer>();
    shareable::<Claims>();
    shareable::<Scopes>();
}

#[test]
fn verified_scopes_drive_allows() -> TestResult {
    let (signer, verifier) = hs256();
    let claims = verifier.verify_access_at(&access(&signer), NOW)?;
    let scopes = Scopes::parse(&claims.scopes)?;
    use crate::Category;
    assert!(scopes.allows(Some("res.partner"), Category::Read));
    assert!(!scopes.allows(Some("res.partner"), Category::Write));
    assert!(scopes.allows(Some("sale.order"), Category::Write));
    assert!(!scopes.allows(Some("sale.order"), Category::Delete));
    assert!(!scopes.allows(None, Category::Read));
    assert!(scopes.allows(None, Category::Auth));
    Ok(())
}

static HS_VERIFIER: LazyLock<(Signer, Verifier)> = LazyLock::new(hs256);
static RS_VERIFIER: LazyLock<Verifier> = LazyLock::new(|| {
    Verifier::new(
        &settings(Algorithm::RS256),
        &KeyMaterial::Jwks(JWKS.to_vec()),
    )
    .expect("test verifier")
});

fn check_no_panic(token: &str) {
    let (_, hs) = &*HS_VERIFIER;
    let _ = hs.verify_access_at(token, NOW);
    let _ = hs.verify_refresh_at(token, NOW);
    let _ = RS_VERIFIER.verify_access_at(token, NOW);
}

proptest! {
    #[test]
    fn verify_never_panics_on_arbitrary_strings(s in ".{0,600}") {
        check_no_panic(&s);
    }

    #[test]
    fn verify_never_panics_on_jwt_shaped_strings(
        s in "[A-Za-z0-9_-]{1,200}\\.[A-Za-z0-9_-]{1,300}\\.[A-Za-z0-9_-]{1,400}"
    ) {
        check_no_panic(&s);
    }

    #[test]
    fn verify_never_panics_on_arbitrary_header_and_payload_json(
        header in "\\{.{0,120}\\}",
        payload in "\\{.{0,200}\\}",
        alg in prop::sample::select(vec!["HS256", "RS256", "none", "ES256", "", "HS256\u{0}"]),
        kid in prop::option::of(".{0,20}"),
    ) {
        let built = match &kid {
            Some(kid) => json!({"alg": alg, "kid": kid}),
            None => json!({"alg": alg}),
        };
        for h in [header.as_bytes().to_vec(), built.to_string().into_bytes()] {
            let token = format!("{}.{}.c2lnbmF0dXJl", b64(&h), b64(payload.as_bytes()));
            check_no_panic(&token);
        }
    }

    #[test]
    fn verify_never_accepts_a_mutated_token(at in 0usize..400, byte in 0x21u8..0x7f) {
        let (signer, verifier) = &*HS_VERIFIER;
        let token = access(signer);
        let mut bytes = token.clone().into_bytes();
        let at = at % bytes.len();
        prop_assume!(bytes[at] != byte);
        bytes[at] = byte;
        let mutated = String::from_utf8(bytes).expect("ASCII stays UTF-8");
        // Base64 padding bits aside, any change must be refused; if it verifies, it must
        // decode to exactly the same claims (the change only touched ignored bits).
        if let Ok(claims) = verifier.verify_access_at(&mutated, NOW) {
            prop_assert_eq!(claims, verifier.verify_access_at(&token, NOW).expect("original"));
        }
    }

    #[test]
    fn bearer_never_panics(value in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(value) = http::HeaderValue::from_bytes(&value) {
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::AUTHORIZATION, value.clone());
            let _ = bearer_token(&headers);
            headers.insert(X_BRIDGECORE_TOKEN, value);
            let _ = bearer_token(&headers);
        }
    }
}
