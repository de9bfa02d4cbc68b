//! What the live-updates code asks Odoo: with a subscriber's own Odoo session (may they read
//! the model, these records, these fields; which records of a change can they see, and their
//! values), and with the tenant's service account (the poller).
//!
//! Subscriber calls go through `/web/dataset/call_kw` on the session BridgeCore keeps for the
//! token (sessions.rs), service calls through `/jsonrpc` `object.execute_kw` (as the cache's
//! graph learner does). Both use the tenant's internal client: its upstreams, its
//! `max_connections` bound and its timeouts.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use bridgecore_filters::ws::protocol::{ErrorCode, Subscribe};
use bridgecore_filters::{OdooClient, OdooError};
use serde_json::{json, Value};

use crate::tenant::Tenant;

/// Most ids in one `search`/`read` call; larger sets are split.
pub(crate) const BATCH: usize = 1000;

/// Calls `model.method(*args, **kwargs)` with an Odoo web session.
pub(crate) async fn user_call(
    tenant: &Tenant,
    odoo_session: &str,
    model: &str,
    method: &str,
    args: Value,
    kwargs: Value,
) -> Result<Value, OdooError> {
    tenant
        .odoo
        .json_rpc(
            &format!("/web/dataset/call_kw/{model}/{method}"),
            json!({"model": model, "method": method, "args": args, "kwargs": kwargs}),
            Some(odoo_session),
        )
        .await
        .map(|r| r.result)
}

/// Whether Odoo said the session is over.
pub(crate) fn session_expired(e: &OdooError) -> bool {
    matches!(e, OdooError::Odoo { code: 100, .. })
        || matches!(e, OdooError::Odoo { name, .. } if name.contains("SessionExpired"))
}

fn is_access_error(e: &OdooError) -> bool {
    matches!(e, OdooError::Odoo { name, .. } if name.ends_with("AccessError") || name.ends_with("AccessDenied"))
}

fn is_unknown_model(e: &OdooError) -> bool {
    matches!(e, OdooError::Odoo { name, message, .. }
        if name.ends_with("KeyError") || message.contains("doesn't exist"))
}

/// The ids of `ids` a session may see (its record rules; archived records included).
pub(crate) async fn visible(
    tenant: &Tenant,
    odoo_session: &str,
    model: &str,
    ids: &[i64],
) -> Result<BTreeSet<i64>, OdooError> {
    let mut out = BTreeSet::new();
    for chunk in ids.chunks(BATCH) {
        let found = user_call(
            tenant,
            odoo_session,
            model,
            "search",
            json!([[["id", "in", chunk]]]),
            json!({"context": {"active_test": false}}),
        )
        .await?;
        out.extend(
            found
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_i64),
        );
    }
    Ok(out)
}

/// `read(ids, fields + write_date)` with a session: record id → its values. Models without
/// `write_date` are read again without it.
pub(crate) async fn read(
    tenant: &Tenant,
    odoo_session: &str,
    model: &str,
    ids: &[i64],
    fields: &[String],
) -> Result<HashMap<i64, Value>, OdooError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(BATCH) {
        let mut with_date: Vec<&str> = fields.iter().map(String::as_str).collect();
        if !with_date.contains(&"write_date") {
            with_date.push("write_date");
        }
        let first = user_call(
            tenant,
            odoo_session,
            model,
            "read",
            json!([chunk, with_date]),
            json!({}),
        )
        .await;
        let rows = match first {
            Ok(v) => v,
            Err(OdooError::Odoo { .. }) if with_date.len() > fields.len() => {
                user_call(
                    tenant,
                    odoo_session,
                    model,
                    "read",
                    json!([chunk, fields]),
                    json!({}),
                )
                .await?
            }
            Err(e) => return Err(e),
        };
        for row in rows.as_array().into_iter().flatten() {
            if let Some(id) = row.get("id").and_then(Value::as_i64) {
                out.insert(id, row.clone());
            }
        }
    }
    Ok(out)
}

/// A subscription Odoo refused, as the `error` to send.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    /// The subscriber's Odoo session is over: the socket closes with 4401.
    pub(crate) session_over: bool,
}

impl Refused {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refused {
            code,
            message: message.into(),
            session_over: false,
        }
    }

    fn from_odoo(e: &OdooError, model: &str) -> Self {
        if session_expired(e) {
            return Refused {
                code: ErrorCode::InvalidToken,
                message: "the Odoo session behind this token has ended: log in again".into(),
                session_over: true,
            };
        }
        if is_unknown_model(e) {
            return Refused::new(
                ErrorCode::UnknownModel,
                format!("Odoo has no model `{model}`"),
            );
        }
        if is_access_error(e) {
            return Refused::new(
                ErrorCode::Forbidden,
                format!("Odoo does not let you read `{model}`"),
            );
        }
        match e {
            OdooError::Odoo { message, .. } => Refused::new(
                ErrorCode::Forbidden,
                format!(
                    "Odoo refused the access check on `{model}`: {}",
                    message.chars().take(200).collect::<String>()
                ),
            ),
            other => Refused::new(
                ErrorCode::OdooUnavailable,
                format!("Odoo could not be asked, try again: {other}"),
            ),
        }
    }
}

/// Asks Odoo, with the subscriber's session, whether the subscription may be made: read
/// access to the model, every listed record visible, every field existing and readable.
pub(crate) async fn check_subscription(
    tenant: &Tenant,
    odoo_session: &str,
    sub: &Subscribe,
) -> Result<(), Refused> {
    let model = sub.model.as_str();
    let allowed = user_call(
        tenant,
        odoo_session,
        model,
        "check_access_rights",
        json!(["read"]),
        json!({"raise_exception": false}),
    )
    .await
    .map_err(|e| Refused::from_odoo(&e, model))?;
    if allowed != Value::Bool(true) {
        return Err(Refused::new(
            ErrorCode::Forbidden,
            format!("Odoo does not let you read `{model}`"),
        ));
    }
    if let Some(ids) = &sub.record_ids {
        let seen = visible(tenant, odoo_session, model, ids)
            .await
            .map_err(|e| Refused::from_odoo(&e, model))?;
        let missing: Vec<String> = ids
            .iter()
            .filter(|i| !seen.contains(i))
            .take(20)
            .map(i64::to_string)
            .collect();
        if !missing.is_empty() {
            return Err(Refused::new(
                ErrorCode::UnknownRecords,
                format!(
                    "these `{model}` records do not exist or you may not read them: {}",
                    missing.join(", ")
                ),
            ));
        }
    }
    if let Some(fields) = &sub.fields {
        let described = user_call(
            tenant,
            odoo_session,
            model,
            "fields_get",
            json!([fields]),
            json!({"attributes": ["type"]}),
        )
        .await
        .map_err(|e| Refused::from_odoo(&e, model))?;
        let missing: Vec<&str> = fields
            .iter()
            .filter(|f| described.get(f.as_str()).is_none())
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(Refused::new(
                ErrorCode::UnknownFields,
                format!(
                    "`{model}` has no field you may read named: {}",
                    missing.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The tenant's service account (`service_login`/`service_password`), logged in over `/jsonrpc`
/// once and re-logged in when Odoo refuses the uid.
pub(crate) struct ServiceAccount {
    db: String,
    login: String,
    password: String,
    uid: Mutex<Option<i64>>,
}

/// Why the service account cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServiceError {
    #[error("the tenant has no service_login/service_password or no database configured")]
    NotConfigured,
    #[error("Odoo refused the service login")]
    Login,
    #[error(transparent)]
    Odoo(#[from] OdooError),
}

impl ServiceAccount {
    /// The account of `tenant`, if configured (with a database: `/jsonrpc` needs one).
    pub(crate) fn of(tenant: &Tenant) -> Result<Self, ServiceError> {
        let c = &tenant.cfg;
        match (&c.database, &c.service_login, &c.service_password) {
            (Some(db), Some(login), Some(password)) => Ok(ServiceAccount {
                db: db.clone(),
                login: login.clone(),
                password: password.clone(),
                uid: Mutex::new(None),
            }),
            _ => Err(ServiceError::NotConfigured),
        }
    }

    async fn rpc(
        tenant: &Tenant,
        service: &str,
        method: &str,
        args: Value,
    ) -> Result<Value, OdooError> {
        tenant
            .odoo
            .json_rpc(
                "/jsonrpc",
                json!({"service": service, "method": method, "args": args}),
                None,
            )
            .await
            .map(|r| r.result)
    }

    async fn uid(&self, tenant: &Tenant) -> Result<i64, ServiceError> {
        let known = *self
            .uid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(uid) = known {
            return Ok(uid);
        }
        let answer = Self::rpc(
            tenant,
            "common",
            "login",
            json!([self.db, self.login, self.password]),
        )
        .await?;
        let uid = answer.as_i64().ok_or(ServiceError::Login)?;
        *self
            .uid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(uid);
        Ok(uid)
    }

    /// `model.method(*args, **kwargs)` as the service user.
    pub(crate) async fn call(
        &self,
        tenant: &Tenant,
        model: &str,
        method: &str,
        args: Value,
        kwargs: Value,
    ) -> Result<Value, ServiceError> {
        let uid = self.uid(tenant).await?;
        let answer = Self::rpc(
            tenant,
            "object",
            "execute_kw",
            json!([self.db, uid, self.password, model, method, args, kwargs]),
        )
        .await;
        if let Err(e) = &answer {
            if matches!(e, OdooError::Odoo { name, .. } if name.ends_with("AccessDenied")) {
                // A changed password or a re-created user: log in again next time.
                *self
                    .uid
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
            }
        }
        Ok(answer?)
    }
}
