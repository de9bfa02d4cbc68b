//! `POST /api/v1/auth/login|refresh|logout`, `GET /api/v1/auth/me`.
//!
//! Odoo checks the password (`/web/session/authenticate`); BridgeCore keeps the Odoo session it
//! gets in its session store and hands the client a token pair instead, so the Odoo session id
//! never leaves BridgeCore and no password is ever stored. The refresh token is single-use:
//! presenting one that was already rotated ends the whole session (reuse means it leaked).

use bridgecore_filters::api::{self, map_odoo_error, LoginRequest};
use bridgecore_filters::auth::{narrow, Claims, Role, TokenType};
use bridgecore_filters::rate_limit::{Login, Subject};
use bridgecore_filters::{Category, OdooClient, OdooError, Reply};
use serde_json::{json, Value};

use super::{bearer, count_refusal, detail, too_many, with_limit, ApiRequest};
use crate::gate;
use crate::runtime::Runtime;
use crate::sessions::{LoginSession, Rotation, StoreError};
use crate::tokens::{now_secs, Tokens};
use crate::Shared;

/// A random id for sessions and token ids (122 random bits).
fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn bad_body(e: &api::ApiError) -> Reply {
    detail(e.status(), &e.detail())
}

fn issuer(rt: &Runtime) -> Result<&Tokens, Reply> {
    match rt.tokens.as_ref() {
        Some(t) if t.can_issue() => Ok(t),
        _ => Err(detail(
            503,
            "logins are not configured on this server (auth.jwt needs a secret or a private key)",
        )),
    }
}

/// The token pair and the answer body for a session.
fn token_pair(tokens: &Tokens, s: &LoginSession, access_jti: String) -> Result<Value, Reply> {
    let now = now_secs();
    let mut template = Claims {
        sub: s.uid.to_string(),
        tenant: s.tenant.clone(),
        db: s.db.clone(),
        sid: s.sid.clone(),
        role: if s.is_admin { Role::Admin } else { Role::User },
        scopes: s.scopes.clone(),
        iat: now,
        exp: now,
        nbf: None,
        iss: None,
        aud: None,
        jti: Some(access_jti),
        typ: TokenType::Access,
    };
    let failed = |e: bridgecore_filters::auth::AuthError| {
        log::error!("cannot sign a token: {e}");
        detail(503, "tokens cannot be issued right now")
    };
    let access = tokens
        .issue(&template, TokenType::Access, now)
        .map_err(failed)?;
    template.jti = Some(s.refresh_jti.clone());
    let refresh = tokens
        .issue(&template, TokenType::Refresh, now)
        .map_err(failed)?;
    Ok(json!({
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "bearer",
        "expires_in": tokens.access_ttl().as_secs(),
        "user": user(s),
    }))
}

fn user(s: &LoginSession) -> Value {
    json!({"uid": s.uid, "name": s.name, "login": s.login, "is_admin": s.is_admin})
}

fn ok(body: &Value) -> Reply {
    Reply::json(200, serde_json::to_vec(body).unwrap_or_default())
}

fn store_down(e: impl std::fmt::Display) -> Reply {
    log::warn!("login sessions unavailable: {e}");
    detail(503, "login sessions are unavailable, try again shortly")
}

pub(super) async fn login(shared: &Shared, rt: &Runtime, req: &ApiRequest<'_>) -> Reply {
    let body: LoginRequest = match api::parse_login(&req.body) {
        Ok(b) => b,
        Err(e) => return bad_body(&e),
    };
    let Some(tenant) = rt.tenant(&body.system_id) else {
        return detail(404, "unknown system");
    };
    let tokens = match issuer(rt) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(db) = tenant.cfg.database.as_deref() else {
        return detail(
            503,
            "this system has no `database` configured, so BridgeCore cannot log in to it",
        );
    };
    let scopes = match &body.scopes {
        // Odoo has no notion of scopes: a user may have all of them, and narrow at login.
        Some(requested) => match narrow(requested, &[]) {
            Ok(s) => s,
            Err(e) => return detail(400, &format!("scopes: {e}")),
        },
        None => Vec::new(),
    };
    let subject = Subject::Ip(req.client_ip);
    let login = Login {
        db,
        login: &body.login,
    };
    let decision = gate::charge(
        shared,
        rt,
        tenant.name(),
        Category::Auth,
        &subject,
        Some(login),
        req.client_ip,
    )
    .await;
    if let Some(d) = decision.as_ref().filter(|d| !d.allowed) {
        return too_many(d);
    }
    let count = |result: &str| {
        shared
            .metrics
            .logins
            .with_label_values(&[tenant.name(), result])
            .inc();
    };
    let params = json!({"db": db, "login": body.login, "password": body.password});
    let answer = match tenant
        .odoo
        .json_rpc("/web/session/authenticate", params, None)
        .await
    {
        Ok(a) => a,
        Err(OdooError::Odoo { name, .. }) if name.ends_with("AccessDenied") => {
            count("denied");
            return with_limit(detail(401, "invalid credentials"), decision.as_ref());
        }
        Err(e) => {
            count("error");
            let a = map_odoo_error(&e);
            return with_limit(Reply::json(a.status, a.body), decision.as_ref());
        }
    };
    let info = &answer.result;
    let (Some(uid), Some(odoo_session)) =
        (info.get("uid").and_then(Value::as_i64), answer.session_id)
    else {
        // `uid: null` is Odoo's half-login of two-factor authentication.
        count("denied");
        return with_limit(
            detail(
                401,
                "Odoo did not complete the login (two-factor authentication cannot be done through this API)",
            ),
            decision.as_ref(),
        );
    };
    let text = |k: &str| info.get(k).and_then(Value::as_str).map(str::to_owned);
    let session = LoginSession {
        sid: new_id(),
        tenant: tenant.name().to_owned(),
        db: db.to_owned(),
        uid,
        login: text("username").unwrap_or_else(|| body.login.clone()),
        name: text("name").unwrap_or_default(),
        is_admin: info
            .get("is_system")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        odoo_session,
        scopes,
        refresh_jti: new_id(),
        expires_at: now_secs() + tokens.refresh_ttl().as_secs(),
    };
    match shared.sessions.put(&session).await {
        Ok(()) => {}
        Err(StoreError::Full { .. }) => {
            count("error");
            log::warn!("login refused: the in-memory session store is full (configure `redis:`)");
            return detail(
                503,
                "too many login sessions on this server, try again later",
            );
        }
        Err(e) => {
            count("error");
            return store_down(e);
        }
    }
    count("ok");
    match token_pair(tokens, &session, new_id()) {
        Ok(body) => with_limit(ok(&body), decision.as_ref()),
        Err(r) => r,
    }
}

pub(super) async fn refresh(shared: &Shared, rt: &Runtime, req: &ApiRequest<'_>) -> Reply {
    let body = match api::parse_refresh(&req.body) {
        Ok(b) => b,
        Err(e) => return bad_body(&e),
    };
    let tokens = match issuer(rt) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let claims = match tokens.verify_refresh(&body.refresh_token) {
        Ok(c) => c,
        Err(e) => {
            count_refusal(shared, "invalid");
            return detail(401, e.detail());
        }
    };
    let Some(jti) = claims.jti.as_deref() else {
        return detail(401, "invalid token");
    };
    let subject = Subject::Token(claims.sub.clone());
    let decision = gate::charge(
        shared,
        rt,
        &claims.tenant,
        Category::Auth,
        &subject,
        None,
        req.client_ip,
    )
    .await;
    if let Some(d) = decision.as_ref().filter(|d| !d.allowed) {
        return too_many(d);
    }
    let new_jti = new_id();
    let expires_at = now_secs() + tokens.refresh_ttl().as_secs();
    let session = match shared
        .sessions
        .rotate_refresh(&claims.sid, jti, &new_jti, expires_at)
        .await
    {
        Ok(Rotation::Rotated(s)) => s,
        Ok(Rotation::Reused) => {
            count_refusal(shared, "revoked");
            log::warn!(
                "refresh token reuse for tenant {} uid {}: session revoked",
                claims.tenant,
                claims.sub
            );
            return detail(
                401,
                "refresh token already used: the session has been revoked, log in again",
            );
        }
        Ok(Rotation::Missing) => {
            count_refusal(shared, "revoked");
            return detail(401, "session ended: log in again");
        }
        Err(e) => return store_down(e),
    };
    match token_pair(tokens, &session, new_id()) {
        Ok(body) => with_limit(ok(&body), decision.as_ref()),
        Err(r) => r,
    }
}

pub(super) async fn logout(shared: &Shared, rt: &Runtime, req: &ApiRequest<'_>) -> Reply {
    let body = match api::parse_logout(&req.body) {
        Ok(b) => b,
        Err(e) => return bad_body(&e),
    };
    // The access token, or (when it has expired) the refresh token, names the session.
    let sid = match (bearer(shared, rt, req).await, body.refresh_token) {
        (Ok(authed), _) => authed.session.sid.clone(),
        (Err(reply), None) => return reply,
        (Err(reply), Some(refresh)) => {
            match rt.tokens.as_ref().map(|t| t.verify_refresh(&refresh)) {
                Some(Ok(c)) => c.sid,
                _ => return reply,
            }
        }
    };
    let session = match shared.sessions.delete(&sid).await {
        Ok(s) => s,
        Err(e) => return store_down(e),
    };
    if let Some(s) = session {
        if let Some(id) = shared.cache.session_identity(&s.odoo_session) {
            // Its cache entries end with it (they were already unreachable without a token).
            shared.cache.end_identity(&s.tenant, &id).await;
        }
        if let Some(tenant) = rt.tenant(&s.tenant) {
            // End the Odoo session too; if Odoo is unreachable it still expires on its own.
            if let Err(e) = tenant
                .odoo
                .json_rpc("/web/session/destroy", json!({}), Some(&s.odoo_session))
                .await
            {
                log::info!("logout: Odoo session not destroyed: {e}");
            }
        }
    }
    ok(&json!({"detail": "logged out"}))
}

pub(super) async fn me(shared: &Shared, rt: &Runtime, req: &ApiRequest<'_>) -> Reply {
    match bearer(shared, rt, req).await {
        Ok(a) => {
            let mut body = user(&a.session);
            if let Some(o) = body.as_object_mut() {
                o.insert("system_id".into(), Value::String(a.session.tenant.clone()));
                o.insert("db".into(), Value::String(a.session.db.clone()));
                o.insert("scopes".into(), json!(a.session.scopes));
            }
            ok(&body)
        }
        Err(r) => r,
    }
}
