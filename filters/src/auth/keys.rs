//! The `auth.jwt` settings and the key material behind them, checked once at load.
//!
//! Everything that can be wrong with a deployment's keys is found here, when the config loads
//! (and by `bridgecore --test`), not on the first request: an unknown or `none` algorithm, a
//! secret too short to resist brute force, a PEM of the wrong kind, an RSA key under 2048 bits,
//! a JWKS without a usable key. Exactly one algorithm is accepted per deployment, which is what
//! closes the classic JWT holes (`alg: none`, an RS256 public key replayed as an HS256 secret).
//!
//! Crypto backend: `jsonwebtoken` with its `rust_crypto` feature (RustCrypto's `hmac`, `rsa`,
//! `p256`/`p384`, `ed25519-dalek`): pure Rust, so building needs no C compiler, cmake or system
//! library, and the crate stays portable. Its process-wide provider is installed explicitly by
//! `crypto_provider` so a second backend pulled in by feature unification elsewhere can never
//! turn verification into a panic.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{DecodingKey, EncodingKey};

use super::error::AuthError;

/// The signature algorithms BridgeCore accepts, one per deployment (`auth.jwt.algorithm`).
/// `none` is deliberately absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::upper_case_acronyms)]
pub enum Algorithm {
    /// HMAC with SHA-256: a shared secret of at least 32 bytes.
    HS256,
    /// HMAC with SHA-384: a shared secret of at least 48 bytes.
    HS384,
    /// HMAC with SHA-512: a shared secret of at least 64 bytes.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

impl Algorithm {
    /// Every accepted algorithm, in the order error messages list them.
    pub const ALL: [Algorithm; 12] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    /// Reads `auth.jwt.algorithm`. Case-insensitive (`hs256` is HS256), since YAML authors
    /// do not all copy the RFC's spelling; `none` and unknown names are refused with the list
    /// of accepted names.
    pub fn parse(name: &str) -> Result<Algorithm, AuthError> {
        let name = name.trim();
        if let Some(alg) = Algorithm::ALL
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(name))
        {
            return Ok(alg);
        }
        let accepted = Algorithm::ALL.map(Algorithm::as_str).join(", ");
        Err(AuthError::Config(if name.eq_ignore_ascii_case("none") {
            format!("algorithm `none` is refused: tokens must be signed; accepted: {accepted}")
        } else {
            format!("unknown algorithm `{name}`; accepted: {accepted}")
        }))
    }

    /// The JOSE name (`HS256`, ..., `EdDSA`): what the token header's `alg` must say.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// Whether this is a shared-secret (HMAC) algorithm.
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }

    /// The shortest secret accepted for an HMAC algorithm: as many bytes as the hash output
    /// (RFC 7518 §3.2), below which the secret, not the hash, bounds brute-force cost.
    pub fn min_secret_len(self) -> Option<usize> {
        match self {
            Algorithm::HS256 => Some(32),
            Algorithm::HS384 => Some(48),
            Algorithm::HS512 => Some(64),
            _ => None,
        }
    }

    pub(crate) fn to_jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
            Algorithm::HS384 => jsonwebtoken::Algorithm::HS384,
            Algorithm::HS512 => jsonwebtoken::Algorithm::HS512,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::RS384 => jsonwebtoken::Algorithm::RS384,
            Algorithm::RS512 => jsonwebtoken::Algorithm::RS512,
            Algorithm::PS256 => jsonwebtoken::Algorithm::PS256,
            Algorithm::PS384 => jsonwebtoken::Algorithm::PS384,
            Algorithm::PS512 => jsonwebtoken::Algorithm::PS512,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::ES384 => jsonwebtoken::Algorithm::ES384,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }

    fn family(self) -> Family {
        match self {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Family::Hmac,
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => Family::Rsa,
            Algorithm::ES256 | Algorithm::ES384 => Family::Ec,
            Algorithm::EdDSA => Family::Ed,
        }
    }
}

impl FromStr for Algorithm {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::parse(s)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

/// RSA moduli below this many bits are refused (NIST SP 800-57: 2048 is the floor today).
pub const MIN_RSA_BITS: usize = 2048;

/// The `auth.jwt` block, minus the keys (which the glue reads from files or URLs and hands
/// over as [`KeyMaterial`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// The one algorithm this deployment signs and accepts.
    pub algorithm: Algorithm,
    /// `iss` of issued tokens; verified tokens must carry exactly this.
    pub issuer: String,
    /// `aud` of issued tokens; verified tokens must carry exactly this.
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf` between the signer and this verifier.
    pub leeway: Duration,
    /// Lifetime of access tokens.
    pub access_ttl: Duration,
    /// Lifetime of refresh tokens.
    pub refresh_ttl: Duration,
    /// Put in the header of issued tokens, so verifiers holding a JWKS pick the right key
    /// during a key rotation.
    pub kid: Option<String>,
}

impl JwtSettings {
    /// `iss` and `aud` when the YAML sets neither.
    pub const DEFAULT_ISSUER: &'static str = "bridgecore";
    /// See [`JwtSettings::DEFAULT_ISSUER`].
    pub const DEFAULT_AUDIENCE: &'static str = "bridgecore";
    /// Enough for NTP-synchronised hosts, small next to the access lifetime.
    pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
    /// design.md §4: `access_ttl: 15m`.
    pub const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
    /// design.md §4: `refresh_ttl: 7d`.
    pub const DEFAULT_REFRESH_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

    /// Settings with the defaults of design.md §4 for everything but the algorithm.
    pub fn new(algorithm: Algorithm) -> JwtSettings {
        JwtSettings {
            algorithm,
            issuer: Self::DEFAULT_ISSUER.to_owned(),
            audience: Self::DEFAULT_AUDIENCE.to_owned(),
            leeway: Self::DEFAULT_LEEWAY,
            access_ttl: Self::DEFAULT_ACCESS_TTL,
            refresh_ttl: Self::DEFAULT_REFRESH_TTL,
            kid: None,
        }
    }

    /// Checks these settings with their keys: non-empty issuer and audience, sane lifetimes,
    /// key material of the algorithm's kind, and HMAC secrets at least as long as the hash
    /// (32 bytes for HS256, 48 for HS384, 64 for HS512). [`Verifier::new`](super::Verifier::new)
    /// and [`Signer::new`](super::Signer::new) both run it, so no path skips it; the glue calls
    /// it directly for `bridgecore --test`.
    pub fn check(&self, keys: &KeyMaterial) -> Result<(), AuthError> {
        if self.issuer.is_empty() {
            return Err(config("issuer must not be empty"));
        }
        if self.audience.is_empty() {
            return Err(config("audience must not be empty"));
        }
        if self.kid.as_deref() == Some("") {
            return Err(config("kid must not be empty (leave it out instead)"));
        }
        if self.access_ttl.as_secs() == 0 {
            return Err(config("access_ttl must be at least 1s"));
        }
        if self.refresh_ttl < self.access_ttl {
            return Err(config("refresh_ttl must not be shorter than access_ttl"));
        }
        if self.leeway >= self.access_ttl {
            return Err(config(
                "leeway must be shorter than access_ttl, or expired tokens would still pass",
            ));
        }
        let alg = self.algorithm;
        match (keys, alg.min_secret_len()) {
            (KeyMaterial::Secret(secret), Some(min)) => {
                if secret.len() < min {
                    return Err(AuthError::Config(format!(
                        "the {alg} secret is {} bytes; {alg} needs at least {min} bytes of \
                         random data (e.g. `openssl rand -base64 {min}`)",
                        secret.len()
                    )));
                }
            }
            (KeyMaterial::Secret(_), None) => {
                return Err(AuthError::Config(format!(
                    "a shared secret only works with HS256, HS384 or HS512; {alg} needs a PEM \
                     key pair or a JWKS"
                )));
            }
            (KeyMaterial::Pem { .. } | KeyMaterial::Jwks(_), Some(_)) => {
                return Err(AuthError::Config(format!(
                    "{alg} uses a shared secret, not PEM keys or a JWKS"
                )));
            }
            (KeyMaterial::Pem { .. } | KeyMaterial::Jwks(_), None) => {}
        }
        Ok(())
    }
}

/// The keys, as bytes the glue read from files, the environment or a JWKS URL.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// The HMAC secret (HS256/384/512), used as is (not base64-decoded).
    Secret(Vec<u8>),
    /// PEM keys (RS*, PS*, ES*, EdDSA). The private key is needed only where BridgeCore issues
    /// tokens; without it BridgeCore verifies tokens issued elsewhere and logins are disabled.
    Pem {
        /// The public key: `PUBLIC KEY` (SPKI), `RSA PUBLIC KEY` (PKCS#1) or a `CERTIFICATE`.
        public: Vec<u8>,
        /// The private key: `PRIVATE KEY` (PKCS#8), or `RSA PRIVATE KEY` (PKCS#1) for RSA.
        private: Option<Vec<u8>>,
    },
    /// A JWKS document (`{"keys":[…]}`) of public keys, for verifying tokens issued elsewhere.
    /// Keys for another algorithm, for encryption, or symmetric (`kty: oct`) are skipped.
    Jwks(Vec<u8>),
}

impl fmt::Debug for KeyMaterial {
    /// Never prints key bytes: settings get logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyMaterial::Secret(s) => write!(f, "Secret([{} bytes redacted])", s.len()),
            KeyMaterial::Pem { public, private } => f
                .debug_struct("Pem")
                .field("public", &format_args!("[{} bytes]", public.len()))
                .field("private", &private.as_ref().map(|_| "[redacted]"))
                .finish(),
            KeyMaterial::Jwks(j) => write!(f, "Jwks([{} bytes])", j.len()),
        }
    }
}

fn config(msg: &str) -> AuthError {
    AuthError::Config(msg.to_owned())
}

/// The process-wide `jsonwebtoken` provider, installing the RustCrypto one if none is yet.
/// Every constructor calls this before any key is used, so `decode`/`encode` never meet a
/// missing provider (which they answer with a panic).
pub(crate) fn crypto_provider() -> Result<&'static CryptoProvider, AuthError> {
    if let Some(provider) = CryptoProvider::try_get_default() {
        return Ok(provider);
    }
    // Losing a race to another installer is fine: any installed provider will do.
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    CryptoProvider::try_get_default().ok_or_else(|| config("no JWT crypto provider available"))
}

/// Verification keys, parsed once.
#[derive(Debug)]
pub(crate) enum VerifyKeys {
    /// A secret or a PEM public key: the token's `kid`, if any, is not consulted.
    One(DecodingKey),
    /// A JWKS: by `kid`, or the only key for a token without one.
    Set {
        by_kid: HashMap<String, DecodingKey>,
        only: Option<DecodingKey>,
    },
}

impl VerifyKeys {
    /// The key for a token whose header names `kid`.
    pub(crate) fn select(&self, kid: Option<&str>) -> Result<&DecodingKey, AuthError> {
        match (self, kid) {
            (VerifyKeys::One(key), _) => Ok(key),
            (VerifyKeys::Set { by_kid, .. }, Some(kid)) => {
                by_kid.get(kid).ok_or(AuthError::UnknownKey)
            }
            (VerifyKeys::Set { only, .. }, None) => only.as_ref().ok_or(AuthError::UnknownKey),
        }
    }
}

/// Parses and checks the verification keys of `settings` (already [`JwtSettings::check`]ed).
pub(crate) fn verify_keys(
    settings: &JwtSettings,
    keys: &KeyMaterial,
) -> Result<VerifyKeys, AuthError> {
    let provider = crypto_provider()?;
    let alg = settings.algorithm;
    match keys {
        KeyMaterial::Secret(secret) => {
            let key = DecodingKey::from_secret(secret).map_err(|e| key_error("secret", e))?;
            usable(provider, alg, &key, "secret")?;
            Ok(VerifyKeys::One(key))
        }
        KeyMaterial::Pem { public, .. } => {
            let key = public_pem(provider, alg, public)?;
            Ok(VerifyKeys::One(key))
        }
        KeyMaterial::Jwks(json) => jwks(provider, alg, json),
    }
}

fn public_pem(
    provider: &CryptoProvider,
    alg: Algorithm,
    pem: &[u8],
) -> Result<DecodingKey, AuthError> {
    let what = "public key";
    let key = match alg.family() {
        Family::Rsa => {
            let der = DecodingKey::from_rsa_pem(pem).map_err(|e| key_error(what, e))?;
            let der = der.try_get_as_bytes().map_err(|e| key_error(what, e))?;
            let (n, e) = (provider.key_utils.rsa_pub_components_from_public_key)(der)
                .map_err(|e| key_error(what, e))?;
            check_rsa_bits(&n, what)?;
            // From (n, e) once here rather than re-parsing the DER on every verification.
            DecodingKey::from_rsa_raw_components(&n, &e)
        }
        Family::Ec => DecodingKey::from_ec_pem(pem).map_err(|e| key_error(what, e))?,
        Family::Ed => DecodingKey::from_ed_pem(pem).map_err(|e| key_error(what, e))?,
        Family::Hmac => return Err(config("an HMAC algorithm has no public key")),
    };
    usable(provider, alg, &key, what)?;
    Ok(key)
}

fn jwks(provider: &CryptoProvider, alg: Algorithm, json: &[u8]) -> Result<VerifyKeys, AuthError> {
    if alg.is_hmac() {
        return Err(config("a JWKS is only for asymmetric algorithms"));
    }
    let set: JwkSet = serde_json::from_slice(json)
        .map_err(|e| AuthError::Config(format!("the JWKS is not valid JSON of a key set: {e}")))?;
    let mut by_kid = HashMap::new();
    let mut usable_keys = Vec::new();
    for jwk in &set.keys {
        if !jwk_fits(jwk, alg) {
            continue;
        }
        let what = match &jwk.common.key_id {
            Some(kid) => format!("JWKS key `{kid}`"),
            None => "JWKS key without kid".to_owned(),
        };
        if let AlgorithmParameters::RSA(rsa) = &jwk.algorithm {
            let n = base64_url(&rsa.n)
                .ok_or_else(|| AuthError::Config(format!("{what}: `n` is not base64url")))?;
            check_rsa_bits(&n, &what)?;
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| key_error(&what, e))?;
        usable(provider, alg, &key, &what)?;
        if let Some(kid) = &jwk.common.key_id {
            if by_kid.insert(kid.clone(), key.clone()).is_some() {
                return Err(AuthError::Config(format!(
                    "the JWKS has two {alg} keys with kid `{kid}`"
                )));
            }
        }
        usable_keys.push(key);
    }
    let only = match usable_keys.len() {
        0 => {
            return Err(AuthError::Config(format!(
                "the JWKS has no key usable with {alg} (keys for other algorithms, for \
                 encryption, or symmetric keys are skipped)"
            )))
        }
        1 => usable_keys.pop(),
        _ => None,
    };
    Ok(VerifyKeys::Set { by_kid, only })
}

/// Whether a JWKS entry is a signature key for `alg`. Symmetric keys never are: a published
/// key set is public, so an `oct` key in it would let anyone sign.
fn jwk_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return false;
    }
    if let Some(key_alg) = jwk.common.key_algorithm {
        if key_alg != KeyAlgorithm::from(alg.to_jwt()) {
            return false;
        }
    }
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), _) => alg.family() == Family::Rsa,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => {
            ec.curve == EllipticCurve::P384
        }
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => {
            okp.curve == EllipticCurve::Ed25519
        }
        _ => false,
    }
}

/// Builds a verifier from the key once, so a key the backend cannot use fails at load.
fn usable(
    provider: &CryptoProvider,
    alg: Algorithm,
    key: &DecodingKey,
    what: &str,
) -> Result<(), AuthError> {
    (provider.verifier_factory)(&alg.to_jwt(), key)
        .map(drop)
        .map_err(|e| key_error(what, e))
}

/// The signing key; a config error saying logins are disabled when this material cannot sign
/// (a JWKS, or a PEM without its private key).
pub(crate) fn signing_key(alg: Algorithm, keys: &KeyMaterial) -> Result<EncodingKey, AuthError> {
    let what = "private key";
    match keys {
        KeyMaterial::Secret(secret) => {
            EncodingKey::from_secret(secret).map_err(|e| key_error("secret", e))
        }
        KeyMaterial::Pem {
            private: Some(private),
            ..
        } => match alg.family() {
            Family::Rsa => EncodingKey::from_rsa_pem(private),
            Family::Ec => EncodingKey::from_ec_pem(private),
            Family::Ed => EncodingKey::from_ed_pem(private),
            Family::Hmac => return Err(config("an HMAC algorithm has no private key")),
        }
        .map_err(|e| key_error(what, e)),
        KeyMaterial::Pem { private: None, .. } => Err(config(
            "no private key: BridgeCore can verify tokens but not issue them, so logins are \
             disabled",
        )),
        KeyMaterial::Jwks(_) => Err(config(
            "a JWKS holds public keys only: BridgeCore can verify tokens but not issue them, so \
             logins are disabled",
        )),
    }
}

fn check_rsa_bits(n: &[u8], what: &str) -> Result<(), AuthError> {
    let n = match n.iter().position(|&b| b != 0) {
        Some(first) => &n[first..],
        None => &[],
    };
    let bits = match n.first() {
        Some(&top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
        None => 0,
    };
    if bits < MIN_RSA_BITS {
        return Err(AuthError::Config(format!(
            "{what}: the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"
        )));
    }
    Ok(())
}

fn base64_url(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

fn key_error(what: &str, e: jsonwebtoken::errors::Error) -> AuthError {
    AuthError::Config(format!("the {what} is not usable: {e}"))
}
