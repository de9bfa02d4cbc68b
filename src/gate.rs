//! The two checks every counted request passes before anything else happens to it, shared by
//! Odoo routes and BridgeCore's own API: who is calling (a BridgeCore token, verified and not
//! revoked) and whether the caller still has budget (rate limits).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bridgecore_filters::auth::{self, AuthError, Claims};
use bridgecore_filters::rate_limit::{Decision, Login, Subject};
use bridgecore_filters::{Category, ErrorKind};
use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::runtime::Runtime;
use crate::sessions::LoginSession;
use crate::Shared;

/// A caller proven by a token: its claims and the live login session they point to.
#[derive(Debug)]
pub(crate) struct Authed {
    pub(crate) claims: std::sync::Arc<Claims>,
    pub(crate) session: std::sync::Arc<LoginSession>,
}

/// Why a token was refused, in terms the caller's protocol can render.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) kind: ErrorKind,
    pub(crate) detail: &'static str,
}

impl Refusal {
    fn auth(e: &AuthError) -> Self {
        Refusal {
            kind: e.kind(),
            detail: e.detail(),
        }
    }

    pub(crate) const fn new(kind: ErrorKind, detail: &'static str) -> Self {
        Refusal { kind, detail }
    }
}

/// The token a request carries, if any. On `/json/2`, `Authorization: bearer` is Odoo's API key
/// (unless it is shaped like a JWT), so only `X-BridgeCore-Token` counts there.
pub(crate) fn presented_token(headers: &HeaderMap, json2: bool) -> Result<Option<&str>, Refusal> {
    match auth::bearer_token(headers) {
        Ok(Some(t)) if json2 && !headers.contains_key(&auth::X_BRIDGECORE_TOKEN_NAME) => {
            Ok(auth::looks_like_jwt(t).then_some(t))
        }
        Ok(t) => Ok(t),
        Err(AuthError::BadScheme) if json2 => Ok(None),
        Err(e) => Err(Refusal::auth(&e)),
    }
}

/// Verifies an access token and finds its login session: a token whose session was logged out,
/// revoked by refresh-token reuse, or expired is refused like a bad signature.
pub(crate) async fn authenticate(
    shared: &Shared,
    rt: &Runtime,
    token: &str,
) -> Result<Authed, Refusal> {
    session_of(shared, verify(rt, token)?).await
}

/// The claims of an access token, verified.
pub(crate) fn verify(rt: &Runtime, token: &str) -> Result<Arc<Claims>, Refusal> {
    let Some(tokens) = rt.tokens.as_ref() else {
        return Err(Refusal::new(
            ErrorKind::Unauthorized,
            "token authentication is not configured on this server",
        ));
    };
    tokens.verify_access(token).map_err(|e| Refusal::auth(&e))
}

/// The claims of the `Authorization: Bearer` token a request carries when that token was
/// verified before (the common case: a client sends one token many times), found by its bytes
/// alone; `None` when it must be found and verified the long way ([`presented_token`],
/// [`verify`]). What it finds is exactly what the long way would.
pub(crate) fn known_token(
    rt: &Runtime,
    headers: &HeaderMap,
) -> Option<Result<Arc<Claims>, Refusal>> {
    let tokens = rt.tokens.as_ref()?;
    let known = tokens.verified(auth::bearer_bytes(headers)?)?;
    Some(known.map_err(|e| Refusal::auth(&e)))
}

/// The live login session a verified token points to: a token whose session was logged out,
/// revoked by refresh-token reuse, or expired is refused like a bad signature.
pub(crate) async fn session_of(shared: &Shared, claims: Arc<Claims>) -> Result<Authed, Refusal> {
    match shared.sessions.get(&claims.sid).await {
        Ok(Some(session))
            // `sub` is the uid as BridgeCore wrote it when it signed the token: read, not
            // compared with a formatted copy (an allocation per request).
            if session.tenant == claims.tenant
                && claims.sub.parse::<i64>().is_ok_and(|uid| uid == session.uid) =>
        {
            Ok(Authed { claims, session })
        }
        Ok(_) => Err(Refusal::new(
            ErrorKind::Unauthorized,
            "session ended: log in again",
        )),
        Err(e) => {
            log::warn!("login sessions unavailable: {e}");
            Err(Refusal::new(
                ErrorKind::Unavailable,
                "login sessions are unavailable, try again shortly",
            ))
        }
    }
}

/// A digest of an Odoo session id, for rate-limit keys: the same on every instance, and not a
/// usable credential.
pub(crate) fn session_digest(sid: &str) -> String {
    let d = Sha256::digest(sid.as_bytes());
    hex::encode(&d[..16])
}

/// Charges one request to its caller's budget (and, for logins, to the account's). `None` when
/// the client is exempt.
pub(crate) async fn charge(
    shared: &Shared,
    rt: &Runtime,
    tenant: &str,
    category: Category,
    subject: &Subject,
    login: Option<Login<'_>>,
    client_ip: IpAddr,
) -> Option<Decision> {
    if rt.exempt(client_ip) {
        return None;
    }
    let mut charge = rt.limits.charge(tenant, category, subject, login);
    if matches!(subject, Subject::Session(_)) {
        // The client picks its session id: its network's backstop bounds what new ids gain.
        charge = charge.with_network(client_ip);
    }
    let decision = shared.limiter.check(&charge).await;
    if !decision.allowed {
        shared
            .metrics
            .rate_limited
            .with_label_values(&[tenant, category.as_str()])
            .inc();
    }
    Some(decision)
}

/// Which uid an Odoo API key belongs to, as Odoo said, remembered for a while: `/json/2` calls on
/// token-only tenants must carry the token user's key, and asking Odoo on every call would
/// double its load. Keys are kept as SHA-256 digests, never as sent.
#[derive(Default)]
pub(crate) struct ApiKeyUids {
    map: Mutex<HashMap<[u8; 32], (String, i64, Instant)>>,
}

/// How long an answer is trusted: a revoked key stays usable through BridgeCore at most this
/// long (Odoo still checks it on the call itself).
const API_KEY_TTL: Duration = Duration::from_secs(300);
/// Digests kept at most.
const API_KEY_MAX: usize = 10_000;

impl ApiKeyUids {
    fn digest(key: &str) -> [u8; 32] {
        Sha256::digest(key.as_bytes()).into()
    }

    /// The remembered uid of `key` on `tenant`, if fresh.
    pub(crate) fn get(&self, tenant: &str, key: &str) -> Option<i64> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&Self::digest(key))
            .filter(|(t, _, at)| t == tenant && at.elapsed() < API_KEY_TTL)
            .map(|(_, uid, _)| *uid)
    }

    /// Remembers Odoo's answer.
    pub(crate) fn put(&self, tenant: &str, key: &str, uid: i64) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= API_KEY_MAX {
            map.retain(|_, (_, _, at)| at.elapsed() < API_KEY_TTL);
            if map.len() >= API_KEY_MAX {
                map.clear();
            }
        }
        map.insert(Self::digest(key), (tenant.to_owned(), uid, Instant::now()));
    }
}
