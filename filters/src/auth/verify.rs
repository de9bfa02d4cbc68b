//! Token verification: one immutable [`Verifier`] per configuration, shared by every request.
//!
//! The order of the checks is the order of their cost and of what they trust: length before any
//! decoding (so a 100 KB header costs nothing), shape and header `alg` before any key work, the
//! signature before the payload is believed, and only then the claims. Time comes in as a plain
//! `now` so expiry is tested at exact instants; `jsonwebtoken` reads the system clock itself, so
//! its own `exp`/`nbf`/`iss`/`aud` checks are switched off and done here instead.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;

use super::claims::{Claims, TokenType};
use super::error::AuthError;
use super::keys::{verify_keys, Algorithm, JwtSettings, KeyMaterial, VerifyKeys};

/// Tokens longer than this are refused before any base64 work. A BridgeCore token is a few
/// hundred bytes (a few more with scopes); 8 KiB leaves room and bounds the cost of junk.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Verifies BridgeCore tokens for one configuration. Built once (at load or reload), never
/// changed, `Send + Sync`: share it in an `Arc` and swap the `Arc` on reload.
#[derive(Debug)]
pub struct Verifier {
    algorithm: Algorithm,
    keys: VerifyKeys,
    validation: Validation,
    issuer: String,
    audience: String,
    leeway: u64,
}

impl Verifier {
    /// Checks the settings with their keys ([`JwtSettings::check`]) and parses the keys.
    pub fn new(settings: &JwtSettings, keys: &KeyMaterial) -> Result<Verifier, AuthError> {
        settings.check(keys)?;
        let keys = verify_keys(settings, keys)?;
        // Exactly one algorithm: the header's `alg` must be it, which refuses `none` and an
        // HS256 token "signed" with an RS256 public key.
        let mut validation = Validation::new(settings.algorithm.to_jwt());
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        Ok(Verifier {
            algorithm: settings.algorithm,
            keys,
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway: settings.leeway.as_secs(),
        })
    }

    /// The one algorithm this verifier accepts.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Verifies an access token now (system clock).
    pub fn verify_access(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify(token, TokenType::Access, unix_now())
    }

    /// Verifies a refresh token now (system clock).
    pub fn verify_refresh(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify(token, TokenType::Refresh, unix_now())
    }

    /// Verifies an access token at `now` (seconds since the Unix epoch).
    pub fn verify_access_at(&self, token: &str, now: u64) -> Result<Claims, AuthError> {
        self.verify(token, TokenType::Access, now)
    }

    /// Verifies a refresh token at `now` (seconds since the Unix epoch).
    pub fn verify_refresh_at(&self, token: &str, now: u64) -> Result<Claims, AuthError> {
        self.verify(token, TokenType::Refresh, now)
    }

    /// Verifies a token of type `expected` at `now`: length, shape, algorithm, key, signature,
    /// then `iss`, `aud`, `typ`, `exp` and `nbf` (the last two with the leeway).
    pub fn verify(&self, token: &str, expected: TokenType, now: u64) -> Result<Claims, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::TooLarge);
        }
        if !super::bearer::looks_like_jwt(token) {
            return Err(AuthError::Malformed);
        }
        let key = self.key_for(token)?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(map_error)?
            .claims;
        self.check_claims(&claims, expected, now)?;
        Ok(claims)
    }

    /// Reads the header's `alg` and `kid` (the caller has checked the shape) and picks the key.
    fn key_for(&self, token: &str) -> Result<&DecodingKey, AuthError> {
        let segment = token.split('.').next().ok_or(AuthError::Malformed)?;
        let json = URL_SAFE_NO_PAD
            .decode(segment)
            .map_err(|_| AuthError::Malformed)?;
        let header: PeekHeader<'_> =
            serde_json::from_slice(&json).map_err(|_| AuthError::Malformed)?;
        if header.alg != self.algorithm.as_str() {
            return Err(AuthError::WrongAlgorithm);
        }
        self.keys.select(header.kid.as_deref())
    }

    fn check_claims(
        &self,
        claims: &Claims,
        expected: TokenType,
        now: u64,
    ) -> Result<(), AuthError> {
        if claims.iss.as_deref() != Some(self.issuer.as_str()) {
            return Err(AuthError::WrongIssuer);
        }
        if claims.aud.as_deref() != Some(self.audience.as_str()) {
            return Err(AuthError::WrongAudience);
        }
        if claims.typ != expected {
            return Err(AuthError::WrongType);
        }
        // Valid through `exp + leeway` inclusive, as jsonwebtoken counts it.
        if claims.exp.saturating_add(self.leeway) < now {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = claims.nbf {
            if nbf > now.saturating_add(self.leeway) {
                return Err(AuthError::NotYetValid);
            }
        }
        Ok(())
    }
}

/// The two header fields needed before the signature can be checked. `jsonwebtoken` parses
/// the header again (and rejects unknown `crit` extensions); this early look gives `none` and
/// algorithm confusion their own error and picks the JWKS key.
#[derive(Deserialize)]
struct PeekHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
}

fn map_error(e: jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        JwtErrorKind::InvalidSignature => AuthError::BadSignature,
        JwtErrorKind::InvalidAlgorithm
        | JwtErrorKind::MissingAlgorithm
        | JwtErrorKind::InvalidAlgorithmName
        | JwtErrorKind::UnsupportedAlgorithm => AuthError::WrongAlgorithm,
        JwtErrorKind::ExpiredSignature => AuthError::Expired,
        JwtErrorKind::ImmatureSignature => AuthError::NotYetValid,
        JwtErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        JwtErrorKind::InvalidAudience => AuthError::WrongAudience,
        // Keys were checked when the verifier was built, so a key error here can only come
        // from what the token carries (a signature the backend cannot even parse).
        JwtErrorKind::InvalidEcdsaKey
        | JwtErrorKind::InvalidEddsaKey
        | JwtErrorKind::InvalidRsaKey(_)
        | JwtErrorKind::InvalidKeyFormat
        | JwtErrorKind::Provider(_) => AuthError::BadSignature,
        _ => AuthError::Malformed,
    }
}

/// Seconds since the Unix epoch. A clock before the epoch reads as the far future, so a
/// broken host clock expires every token (fails closed) rather than accepting expired ones.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(u64::MAX)
}
