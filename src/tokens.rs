//! BridgeCore's tokens in one place: the verifier and signer built from `auth.jwt`, with the key
//! material read from the environment (the secret, through `${ENV}`), files, or a JWKS URL.
//!
//! Files are read when a configuration is built (start and SIGHUP), so a bad key fails the
//! start or the reload, never a request. A JWKS URL cannot be fetched there (a reload runs on
//! the async runtime), so it is fetched by [`JwksRefresher`] right after start and every
//! `jwks_refresh`; until its first success tokens are refused with 503, and a failed refresh
//! keeps the last good set.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::collections::HashMap;
use std::sync::Mutex;

use arc_swap::ArcSwapOption;
use async_trait::async_trait;
use bridgecore_filters::auth::{
    Algorithm, AuthError, Claims, JwtSettings, KeyMaterial, Signer, TokenType, Verifier,
};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::config::{JwtAlgorithm, JwtConfig};

/// Why the token service could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// A key file could not be read.
    #[error("auth.jwt: cannot read `{path}`: {error}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        error: std::io::Error,
    },
    /// The key material does not fit the algorithm, or does not parse.
    #[error("auth.jwt: {0}")]
    Keys(#[from] AuthError),
}

/// Verified access tokens by text. foldhash, not SipHash: the key is a whole token (~400 bytes)
/// hashed on every request of a token-only tenant; the seed is random per process, and only
/// tokens whose signature verified are ever stored.
type Verified = HashMap<Box<[u8]>, Arc<Claims>, foldhash::quality::RandomState>;

/// The verifier (always, once keys are known) and the signer (where this instance issues
/// tokens) of one configuration generation.
pub struct Tokens {
    settings: JwtSettings,
    /// Access tokens whose signature and claims were verified, by token text. A signature check
    /// is a pure function of the token and the keys, so its result can be reused; expiry is
    /// checked again on every use, and revocation is not cached at all (the caller still looks
    /// the session up). Dropped with the keys (a new generation or a JWKS refresh).
    verified: Mutex<Verified>,
    verifier: ArcSwapOption<Verifier>,
    signer: Option<Signer>,
    jwks_url: Option<String>,
    jwks_file: Option<std::path::PathBuf>,
    refresh: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("algorithm", &self.settings.algorithm)
            .field("issues", &self.signer.is_some())
            .finish()
    }
}

/// Verified access tokens kept at most (about 1 KiB each).
const MAX_VERIFIED: usize = 20_000;

/// Seconds since the Unix epoch: the unit of `iat`/`exp`.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn algorithm(a: JwtAlgorithm) -> Algorithm {
    match a {
        JwtAlgorithm::HS256 => Algorithm::HS256,
        JwtAlgorithm::HS384 => Algorithm::HS384,
        JwtAlgorithm::HS512 => Algorithm::HS512,
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::ES256 => Algorithm::ES256,
        JwtAlgorithm::EdDSA => Algorithm::EdDSA,
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, TokensError> {
    std::fs::read(path).map_err(|error| TokensError::Read {
        path: path.display().to_string(),
        error,
    })
}

impl Tokens {
    /// Builds the service, or `None` when JWT auth is off (no secret, no key material).
    /// `previous` hands over the keys last fetched from an unchanged JWKS URL, so a reload does
    /// not refuse tokens until the next fetch.
    pub fn build(
        cfg: &JwtConfig,
        previous: Option<&Tokens>,
    ) -> Result<Option<Tokens>, TokensError> {
        if !cfg.enabled() {
            return Ok(None);
        }
        let mut settings = JwtSettings::new(algorithm(cfg.algorithm));
        settings.issuer = cfg.issuer.clone();
        settings.audience = cfg.audience.clone();
        settings.leeway = cfg.leeway;
        settings.access_ttl = cfg.access_ttl;
        settings.refresh_ttl = cfg.refresh_ttl;
        let mut tokens = Tokens {
            settings,
            verified: Mutex::new(Verified::default()),
            verifier: ArcSwapOption::empty(),
            signer: None,
            jwks_url: cfg.jwks_url.clone(),
            jwks_file: cfg.jwks_file.clone(),
            refresh: cfg.jwks_refresh,
        };
        let material = if let Some(secret) = &cfg.secret {
            Some(KeyMaterial::Secret(secret.as_bytes().to_vec()))
        } else if let Some(public) = &cfg.public_key_file {
            let private = cfg.private_key_file.as_deref().map(read).transpose()?;
            Some(KeyMaterial::Pem {
                public: read(public)?,
                private,
            })
        } else if let Some(file) = &cfg.jwks_file {
            Some(KeyMaterial::Jwks(read(file)?))
        } else {
            None
        };
        match material {
            Some(keys) => {
                tokens
                    .verifier
                    .store(Some(Arc::new(Verifier::new(&tokens.settings, &keys)?)));
                if cfg.can_issue() {
                    tokens.signer = Some(Signer::new(&tokens.settings, &keys)?);
                }
            }
            None => {
                // A JWKS URL: keep what the previous generation fetched from the same URL.
                if let Some(prev) = previous.filter(|p| p.jwks_url == tokens.jwks_url) {
                    tokens.verifier.store(prev.verifier.load_full());
                }
            }
        }
        Ok(Some(tokens))
    }

    /// Verifies an access token (signature, algorithm, `exp`/`nbf`/`iss`/`aud`, type). A token
    /// seen before skips the signature check (see `verified`), not the expiry check.
    pub fn verify_access(&self, token: &str) -> Result<Arc<Claims>, AuthError> {
        if let Some(known) = self.verified(token.as_bytes()) {
            return known;
        }
        let now = now_secs();
        let claims = match self.verifier.load().as_deref() {
            Some(v) => Arc::new(v.verify_access_at(token, now)?),
            None => {
                return Err(AuthError::Config(
                    "the JWKS has not been fetched yet".into(),
                ))
            }
        };
        let mut cache = self.lock_verified();
        if cache.len() >= MAX_VERIFIED {
            cache.retain(|_, c| c.exp > now);
            if cache.len() >= MAX_VERIFIED {
                cache.clear();
            }
        }
        cache.insert(token.as_bytes().into(), claims.clone());
        Ok(claims)
    }

    /// The claims of an access token verified before, found by its exact bytes (which need no
    /// other check: only verified tokens are kept), or `None` when it has to be verified. A kept
    /// token that has expired since is the error, and forgotten.
    pub fn verified(&self, token: &[u8]) -> Option<Result<Arc<Claims>, AuthError>> {
        let claims = self.lock_verified().get(token).cloned()?;
        if claims.exp.saturating_add(self.settings.leeway.as_secs()) <= now_secs() {
            self.lock_verified().remove(token);
            return Some(Err(AuthError::Expired));
        }
        Some(Ok(claims))
    }

    fn lock_verified(&self) -> std::sync::MutexGuard<'_, Verified> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Verifies a refresh token.
    pub fn verify_refresh(&self, token: &str) -> Result<Claims, AuthError> {
        match self.verifier.load().as_deref() {
            Some(v) => v.verify_refresh(token),
            None => Err(AuthError::Config(
                "the JWKS has not been fetched yet".into(),
            )),
        }
    }

    /// Whether this instance can issue tokens (serve logins).
    pub fn can_issue(&self) -> bool {
        self.signer.is_some()
    }

    /// Lifetime of access tokens, for `expires_in`.
    pub fn access_ttl(&self) -> Duration {
        self.settings.access_ttl
    }

    /// Lifetime of refresh tokens (and so of the login session).
    pub fn refresh_ttl(&self) -> Duration {
        self.settings.refresh_ttl
    }

    /// Signs `template` as a token of type `typ`, stamped at `now`.
    pub fn issue(&self, template: &Claims, typ: TokenType, now: u64) -> Result<String, AuthError> {
        let Some(signer) = &self.signer else {
            return Err(AuthError::Config(
                "this instance verifies tokens but has no signing key".into(),
            ));
        };
        signer.sign(&signer.stamp(template.clone(), typ, now))
    }

    /// Re-reads the JWKS (file or URL); keeps the current keys on failure.
    async fn refresh_jwks(&self, http: &reqwest::Client) -> Result<(), String> {
        let bytes = if let Some(url) = &self.jwks_url {
            let resp = http
                .get(url)
                .send()
                .await
                .map_err(|e| format!("GET {url}: {e}"))?;
            if !resp.status().is_success() {
                return Err(format!("GET {url}: HTTP {}", resp.status()));
            }
            resp.bytes()
                .await
                .map_err(|e| format!("GET {url}: {e}"))?
                .to_vec()
        } else if let Some(file) = &self.jwks_file {
            let file = file.clone();
            tokio::task::spawn_blocking(move || {
                std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))
            })
            .await
            .map_err(|e| e.to_string())??
        } else {
            return Ok(());
        };
        let verifier = Verifier::new(&self.settings, &KeyMaterial::Jwks(bytes))
            .map_err(|e| format!("JWKS: {e}"))?;
        self.verifier.store(Some(Arc::new(verifier)));
        // A key may have left the set: verify every token again.
        self.lock_verified().clear();
        Ok(())
    }
}

/// Keeps JWKS keys fresh: fetches at start, then every `jwks_refresh` of the configuration in
/// force (retrying failures sooner, every 10 s).
pub(crate) struct JwksRefresher {
    pub(crate) shared: Arc<crate::Shared>,
}

#[async_trait]
impl BackgroundService for JwksRefresher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        // The generation last refreshed and when: a reload brings a new `Tokens`, which is
        // refreshed at once if it has no keys yet.
        let mut last: Option<(Arc<crate::runtime::Runtime>, std::time::Instant, Duration)> = None;
        loop {
            let rt = self.shared.runtime.load_full();
            if let Some(t) = rt.tokens.as_ref() {
                let due = match &last {
                    Some((prev, at, wait)) if Arc::ptr_eq(prev, &rt) => at.elapsed() >= *wait,
                    _ => true,
                };
                if due && (t.jwks_url.is_some() || t.jwks_file.is_some()) {
                    let wait = match t.refresh_jwks(&http).await {
                        Ok(()) => t.refresh,
                        Err(e) => {
                            log::warn!("auth.jwt: JWKS refresh failed, keeping the last keys: {e}");
                            Duration::from_secs(10).min(t.refresh)
                        }
                    };
                    last = Some((rt.clone(), std::time::Instant::now(), wait));
                }
            }
            let wait = Duration::from_secs(1);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bridgecore_filters::auth::Role;

    /// A token that verified once is then found by its bytes alone, until it expires: then it
    /// is refused and forgotten, and the full check refuses it too.
    #[test]
    fn a_verified_token_is_found_by_its_bytes_until_it_expires() {
        let cfg = JwtConfig {
            secret: Some("a-unit-test-secret-of-more-than-thirty-two-bytes".into()),
            leeway: Duration::ZERO,
            access_ttl: Duration::from_secs(60),
            ..JwtConfig::default()
        };
        let tokens = Tokens::build(&cfg, None).unwrap().unwrap();
        let template = Claims {
            sub: "2".into(),
            tenant: "odoo".into(),
            db: "odoo".into(),
            sid: "s1".into(),
            role: Role::User,
            scopes: Vec::new(),
            iat: 0,
            exp: 0,
            nbf: None,
            iss: None,
            aud: None,
            jti: None,
            typ: TokenType::Access,
        };
        // Stamped 59 s ago: it expires within two or three seconds.
        let now = now_secs();
        let token = tokens
            .issue(&template, TokenType::Access, now - 59)
            .unwrap();
        let other = tokens.issue(&template, TokenType::Access, now).unwrap();
        assert!(
            tokens.verified(token.as_bytes()).is_none(),
            "not verified yet"
        );
        let claims = tokens.verify_access(&token).unwrap();
        assert_eq!(claims.sub, "2");
        let found = tokens.verified(token.as_bytes()).unwrap().unwrap();
        assert!(
            Arc::ptr_eq(&found, &claims),
            "the verified claims themselves"
        );
        assert!(
            tokens.verified(other.as_bytes()).is_none(),
            "only that token"
        );
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(tokens.verified(&tampered).is_none(), "not a byte changed");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        // Past `exp` by the verifier's rule too (it accepts the second of `exp` itself).
        while now_secs() <= claims.exp {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(matches!(
            tokens.verified(token.as_bytes()),
            Some(Err(AuthError::Expired))
        ));
        assert!(tokens.verified(token.as_bytes()).is_none(), "forgotten");
        assert!(matches!(
            tokens.verify_access(&token),
            Err(AuthError::Expired)
        ));
    }
}
