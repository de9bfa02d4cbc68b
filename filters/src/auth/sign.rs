//! Token issuing, for `/api/v1/auth/login` and `/refresh`.
//!
//! A [`Signer`] exists only when BridgeCore holds a key it may sign with (an HMAC secret, or a
//! PEM private key). When it verifies tokens issued elsewhere (a JWKS, or a public key alone)
//! [`Signer::new`] says so and the glue disables login instead of failing later per request.

use std::fmt;
use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};

use super::claims::{Claims, Role, TokenType};
use super::error::AuthError;
use super::keys::{crypto_provider, signing_key, Algorithm, JwtSettings, KeyMaterial};
use super::verify::Verifier;

/// Signs BridgeCore tokens. Immutable and `Send + Sync`, like [`Verifier`].
pub struct Signer {
    algorithm: Algorithm,
    header: Header,
    key: EncodingKey,
    issuer: String,
    audience: String,
    access_ttl: Duration,
    refresh_ttl: Duration,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.header.kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Checks the settings with their keys and loads the signing key. Fails for a JWKS or a PEM
    /// without a private key (BridgeCore cannot issue tokens then), and for a private key that
    /// does not match the configured public key: a probe token is signed and verified here, so
    /// a mismatched pair is a load error rather than every login's tokens being refused.
    pub fn new(settings: &JwtSettings, keys: &KeyMaterial) -> Result<Signer, AuthError> {
        settings.check(keys)?;
        crypto_provider()?;
        let key = signing_key(settings.algorithm, keys)?;
        let mut header = Header::new(settings.algorithm.to_jwt());
        header.kid = settings.kid.clone();
        let signer = Signer {
            algorithm: settings.algorithm,
            header,
            key,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            access_ttl: settings.access_ttl,
            refresh_ttl: settings.refresh_ttl,
        };
        if !matches!(keys, KeyMaterial::Secret(_)) {
            let verifier = Verifier::new(settings, keys)?;
            let probe = signer.stamp(probe_claims(), TokenType::Access, 1);
            let token = signer.sign(&probe).map_err(|e| match e {
                AuthError::Signing(msg) => AuthError::Config(format!("the private key: {msg}")),
                other => other,
            })?;
            verifier.verify_access_at(&token, 1).map_err(|_| {
                AuthError::Config("the private key does not match the public key".to_owned())
            })?;
        }
        Ok(signer)
    }

    /// The algorithm tokens are signed with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lifetime of tokens of this type.
    pub fn ttl(&self, typ: TokenType) -> Duration {
        match typ {
            TokenType::Access => self.access_ttl,
            TokenType::Refresh => self.refresh_ttl,
        }
    }

    /// Fills in what the deployment decides rather than the login: `typ`, `iat = now`,
    /// `exp = now + ttl(typ)`, `iss` and `aud`; clears `nbf`. Keeps the identity claims (`sub`,
    /// `tenant`, `db`, `sid`, `role`, `scopes`, `jti`), so one template yields both tokens.
    pub fn stamp(&self, mut claims: Claims, typ: TokenType, now: u64) -> Claims {
        claims.typ = typ;
        claims.iat = now;
        claims.exp = now.saturating_add(self.ttl(typ).as_secs());
        claims.nbf = None;
        claims.iss = Some(self.issuer.clone());
        claims.aud = Some(self.audience.clone());
        claims
    }

    /// Signs `claims` as they are (see [`Signer::stamp`] for the usual way to fill them).
    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        jsonwebtoken::encode(&self.header, claims, &self.key)
            .map_err(|e| AuthError::Signing(e.to_string()))
    }
}

fn probe_claims() -> Claims {
    Claims {
        sub: "1".to_owned(),
        tenant: String::new(),
        db: String::new(),
        sid: String::new(),
        role: Role::User,
        scopes: Vec::new(),
        iat: 0,
        exp: 0,
        nbf: None,
        iss: None,
        aud: None,
        jti: None,
        typ: TokenType::Access,
    }
}
