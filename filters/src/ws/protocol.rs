//! The JSON text messages of `/api/v1/ws`, both ways, and the close codes.
//!
//! Client → server (each may carry a `request_id`, a string of at most 128 characters or an
//! integer, echoed in the answer so concurrent requests can be told apart):
//!
//! | `type` | members | answer |
//! |---|---|---|
//! | `auth` | `token` | `authenticated {uid, system_id, expires_at}` |
//! | `subscribe_model` | `system_id`, `model`, `record_ids?`, `fields?` | `subscribed {subscription_id, …}` |
//! | `unsubscribe_model` | `subscription_id` | `unsubscribed {subscription_id}` |
//! | `ping` | `timestamp?` | `pong {timestamp}` |
//!
//! Server → client: `model_update {system_id, model, record_id, operation, data, write_date,
//! source, subscription_id}` and `error {code, message}`. A message that cannot be understood
//! gets an `error`, never a closed socket; only the frame layer (binary frames, invalid UTF-8,
//! oversized frames) and floods close it, with the codes below.
//!
//! Unknown members are ignored, so clients may send more than BridgeCore reads.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

/// Close codes BridgeCore uses (RFC 6455 §7.4 and the private 4000–4999 range).
pub mod close {
    /// A normal close (the client's own, echoed).
    pub const NORMAL: u16 = 1000;
    /// BridgeCore is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// The frames broke the WebSocket protocol.
    pub const PROTOCOL: u16 = 1002;
    /// A binary frame: the protocol is JSON text only.
    pub const UNSUPPORTED: u16 = 1003;
    /// A text frame that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// A message flood.
    pub const POLICY: u16 = 1008;
    /// A frame or message over `websocket.max_message_size`.
    pub const TOO_BIG: u16 = 1009;
    /// An unexpected failure inside BridgeCore.
    pub const INTERNAL: u16 = 1011;
    /// A slow consumer: its queue overflowed. Reconnect and resubscribe.
    pub const TRY_AGAIN: u16 = 1013;
    /// No valid token (none within the deadline, invalid, expired, revoked).
    pub const UNAUTHORIZED: u16 = 4401;
    /// Too many connections for this user or tenant.
    pub const TOO_MANY: u16 = 4429;
}

/// Bounds a client's requests must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most `record_ids` in one subscription.
    pub max_record_ids: usize,
    /// Most `fields` in one subscription.
    pub max_fields: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_ids: 1000,
            max_fields: 100,
        }
    }
}

/// What a client asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// `{"type": "auth", "token": …}`: authenticate (or re-authenticate with a fresher token).
    Auth {
        /// The access token.
        token: String,
    },
    /// `{"type": "subscribe_model", …}`.
    Subscribe(Subscribe),
    /// `{"type": "unsubscribe_model", "subscription_id": …}`.
    Unsubscribe {
        /// An id a `subscribed` message gave.
        subscription_id: String,
    },
    /// `{"type": "ping"}`; `timestamp` (any JSON value) is echoed in the `pong`.
    Ping {
        /// Echoed.
        timestamp: Option<Value>,
    },
}

/// A `subscribe_model` request, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscribe {
    /// The tenant; `None`: the token's own.
    pub system_id: Option<String>,
    /// The Odoo model.
    pub model: String,
    /// Only these records (sorted, without duplicates); `None`: the whole model.
    pub record_ids: Option<Vec<i64>>,
    /// The fields sent in `data` (sorted, without duplicates); `None`: ids and operation only.
    pub fields: Option<Vec<String>>,
}

/// One parsed message with the `request_id` to echo.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The client's `request_id`, if any.
    pub request_id: Option<Value>,
    /// The request.
    pub message: ClientMessage,
}

/// The `code` of an `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The text is not JSON, or not a JSON object.
    InvalidJson,
    /// A member is missing or has the wrong type or value.
    InvalidMessage,
    /// `type` names no known message.
    UnknownType,
    /// Authenticate first.
    AuthRequired,
    /// The token was refused.
    InvalidToken,
    /// The subscriber may not read what it asked for (Odoo said so), or the token is for
    /// another system.
    Forbidden,
    /// No such system (tenant).
    UnknownSystem,
    /// Odoo has no such model.
    UnknownModel,
    /// Some `fields` do not exist or may not be read by the subscriber.
    UnknownFields,
    /// Some `record_ids` do not exist or may not be read by the subscriber.
    UnknownRecords,
    /// `websocket.max_subscriptions` reached on this connection.
    TooManySubscriptions,
    /// Too many `subscribe_model` requests still being checked.
    TooManyPending,
    /// No subscription with that id on this connection.
    UnknownSubscription,
    /// The client sends too fast; slow down (a sustained flood closes the socket).
    RateLimited,
    /// Odoo could not be asked (down, timeout, session problem).
    OdooUnavailable,
    /// Live updates need something this server lacks (e.g. no JWT configuration).
    Unavailable,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidMessage => "invalid_message",
            Self::UnknownType => "unknown_type",
            Self::AuthRequired => "auth_required",
            Self::InvalidToken => "invalid_token",
            Self::Forbidden => "forbidden",
            Self::UnknownSystem => "unknown_system",
            Self::UnknownModel => "unknown_model",
            Self::UnknownFields => "unknown_fields",
            Self::UnknownRecords => "unknown_records",
            Self::TooManySubscriptions => "too_many_subscriptions",
            Self::TooManyPending => "too_many_pending",
            Self::UnknownSubscription => "unknown_subscription",
            Self::RateLimited => "rate_limited",
            Self::OdooUnavailable => "odoo_unavailable",
            Self::Unavailable => "unavailable",
        }
    }
}

/// Why a message was refused: the `error` to answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ProtocolError {
    /// The `request_id` to echo, if it could be read.
    pub request_id: Option<Value>,
    /// The code.
    pub code: ErrorCode,
    /// A sentence for humans.
    pub message: String,
}

impl ProtocolError {
    fn new(request_id: &Option<Value>, code: ErrorCode, message: impl Into<String>) -> Self {
        ProtocolError {
            request_id: request_id.clone(),
            code,
            message: message.into(),
        }
    }

    /// The `error` message.
    pub fn to_message(&self) -> String {
        error(self.request_id.as_ref(), self.code, &self.message)
    }
}

/// Longest `request_id` string echoed.
const MAX_REQUEST_ID: usize = 128;
/// Longest model name (Odoo's `ir_model.model` is a varchar; real names are far shorter).
const MAX_MODEL_LEN: usize = 128;
/// Longest field name (PostgreSQL identifiers are 63 bytes).
const MAX_FIELD_LEN: usize = 63;
/// Longest `system_id` or `subscription_id`.
const MAX_ID_LEN: usize = 128;
/// Longest token.
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Odoo ids are PostgreSQL `integer`s.
const MAX_RECORD_ID: i64 = i32::MAX as i64;

/// Whether `name` is shaped like an Odoo model name (`res.partner`, `x_custom`).
pub fn is_model_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_MODEL_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
        && !name.starts_with('.')
        && !name.ends_with('.')
}

/// Whether `name` is shaped like an Odoo field name.
pub fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_FIELD_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parses one text message.
pub fn parse(text: &str, limits: &Limits) -> Result<Incoming, ProtocolError> {
    let none = None;
    let value = crate::json::from_slice(text.as_bytes()).map_err(|e| {
        ProtocolError::new(
            &none,
            ErrorCode::InvalidJson,
            format!("the message is not JSON: {e}"),
        )
    })?;
    let Value::Object(mut obj) = value else {
        return Err(ProtocolError::new(
            &none,
            ErrorCode::InvalidJson,
            "the message must be a JSON object with a `type`",
        ));
    };
    let request_id = match obj.remove("request_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= MAX_REQUEST_ID => Some(Value::String(s)),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(Value::Number(n)),
        Some(_) => {
            return Err(ProtocolError::new(
                &none,
                ErrorCode::InvalidMessage,
                "`request_id` must be an integer or a string of at most 128 characters",
            ))
        }
    };
    let rid = &request_id;
    let kind = match obj.remove("type") {
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(ProtocolError::new(
                rid,
                ErrorCode::InvalidMessage,
                "`type` must be a string",
            ))
        }
        None => {
            return Err(ProtocolError::new(
                rid,
                ErrorCode::InvalidMessage,
                "missing `type`",
            ))
        }
    };
    let message = match kind.as_str() {
        "auth" => ClientMessage::Auth {
            token: string(&mut obj, "token", MAX_TOKEN_LEN, rid)?
                .ok_or_else(|| missing(rid, "token"))?,
        },
        "ping" => ClientMessage::Ping {
            timestamp: obj.remove("timestamp"),
        },
        "unsubscribe_model" => ClientMessage::Unsubscribe {
            subscription_id: string(&mut obj, "subscription_id", MAX_ID_LEN, rid)?
                .ok_or_else(|| missing(rid, "subscription_id"))?,
        },
        "subscribe_model" => ClientMessage::Subscribe(subscribe(&mut obj, limits, rid)?),
        other => {
            let shown: String = other.chars().take(40).collect();
            return Err(ProtocolError::new(
                rid,
                ErrorCode::UnknownType,
                format!(
                    "unknown message type `{shown}` (expected auth, subscribe_model, unsubscribe_model or ping)"
                ),
            ));
        }
    };
    Ok(Incoming {
        request_id,
        message,
    })
}

fn missing(rid: &Option<Value>, field: &str) -> ProtocolError {
    ProtocolError::new(rid, ErrorCode::InvalidMessage, format!("missing `{field}`"))
}

/// A string member, `None` when absent or null.
fn string(
    obj: &mut Map<String, Value>,
    field: &str,
    max: usize,
    rid: &Option<Value>,
) -> Result<Option<String>, ProtocolError> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= max => Ok(Some(s)),
        Some(_) => Err(ProtocolError::new(
            rid,
            ErrorCode::InvalidMessage,
            format!("`{field}` must be a non-empty string of at most {max} bytes"),
        )),
    }
}

fn subscribe(
    obj: &mut Map<String, Value>,
    limits: &Limits,
    rid: &Option<Value>,
) -> Result<Subscribe, ProtocolError> {
    let invalid = |m: String| ProtocolError::new(rid, ErrorCode::InvalidMessage, m);
    let system_id = string(obj, "system_id", MAX_ID_LEN, rid)?;
    let model = string(obj, "model", MAX_MODEL_LEN, rid)?.ok_or_else(|| missing(rid, "model"))?;
    if !is_model_name(&model) {
        return Err(invalid(
            "`model` must be an Odoo model name (letters, digits, `.` and `_`)".into(),
        ));
    }
    let record_ids = match obj.remove("record_ids") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(invalid(
                    "`record_ids` must not be empty (leave it out to follow the whole model)"
                        .into(),
                ));
            }
            if items.len() > limits.max_record_ids {
                return Err(invalid(format!(
                    "`record_ids` may list at most {} ids",
                    limits.max_record_ids
                )));
            }
            let mut ids = BTreeSet::new();
            for item in &items {
                match item.as_i64() {
                    Some(id) if (1..=MAX_RECORD_ID).contains(&id) => {
                        ids.insert(id);
                    }
                    _ => {
                        return Err(invalid(
                            "`record_ids` must be positive integer record ids".into(),
                        ))
                    }
                }
            }
            Some(ids.into_iter().collect())
        }
        Some(_) => return Err(invalid("`record_ids` must be an array of ids".into())),
    };
    let fields = match obj.remove("fields") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            if items.len() > limits.max_fields {
                return Err(invalid(format!(
                    "`fields` may list at most {} fields",
                    limits.max_fields
                )));
            }
            let mut names = BTreeSet::new();
            for item in items {
                match item {
                    Value::String(s) if is_field_name(&s) => {
                        names.insert(s);
                    }
                    _ => {
                        return Err(invalid(
                            "`fields` must be an array of Odoo field names".into(),
                        ))
                    }
                }
            }
            // An empty list means "no data", the same as leaving it out.
            (!names.is_empty()).then(|| names.into_iter().collect())
        }
        Some(_) => return Err(invalid("`fields` must be an array of field names".into())),
    };
    Ok(Subscribe {
        system_id,
        model,
        record_ids,
        fields,
    })
}

fn with_request_id(mut v: Value, request_id: Option<&Value>) -> String {
    if let (Some(rid), Some(obj)) = (request_id, v.as_object_mut()) {
        obj.insert("request_id".into(), rid.clone());
    }
    v.to_string()
}

/// `{"type": "error", "code", "message"}`.
pub fn error(request_id: Option<&Value>, code: ErrorCode, message: &str) -> String {
    with_request_id(
        json!({"type": "error", "code": code.as_str(), "message": message}),
        request_id,
    )
}

/// `{"type": "pong"}`, with the ping's `timestamp` when it had one.
pub fn pong(request_id: Option<&Value>, timestamp: Option<&Value>) -> String {
    let mut v = json!({"type": "pong"});
    if let (Some(t), Some(obj)) = (timestamp, v.as_object_mut()) {
        obj.insert("timestamp".into(), t.clone());
    }
    with_request_id(v, request_id)
}

/// `{"type": "authenticated", "uid", "system_id", "expires_at"}`.
pub fn authenticated(
    request_id: Option<&Value>,
    uid: i64,
    system_id: &str,
    expires_at: u64,
) -> String {
    with_request_id(
        json!({"type": "authenticated", "uid": uid, "system_id": system_id, "expires_at": expires_at}),
        request_id,
    )
}

/// `{"type": "subscribed", "subscription_id", "system_id", "model", "record_ids", "fields"}`.
pub fn subscribed(
    request_id: Option<&Value>,
    subscription_id: &str,
    system_id: &str,
    sub: &Subscribe,
) -> String {
    with_request_id(
        json!({
            "type": "subscribed",
            "subscription_id": subscription_id,
            "system_id": system_id,
            "model": sub.model,
            "record_ids": sub.record_ids,
            "fields": sub.fields,
        }),
        request_id,
    )
}

/// `{"type": "unsubscribed", "subscription_id"}`.
pub fn unsubscribed(request_id: Option<&Value>, subscription_id: &str) -> String {
    with_request_id(
        json!({"type": "unsubscribed", "subscription_id": subscription_id}),
        request_id,
    )
}

/// One `model_update` message.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ModelUpdate<'a> {
    /// Always `model_update`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The tenant.
    pub system_id: &'a str,
    /// The model.
    pub model: &'a str,
    /// The record.
    pub record_id: i64,
    /// `create`, `write` or `unlink`.
    pub operation: &'a str,
    /// The subscribed fields' values, or `None` (no fields asked, or an unlink).
    pub data: Option<&'a Value>,
    /// The record's `write_date`, when known.
    pub write_date: Option<&'a str>,
    /// `bridgecore` or `odoo`.
    pub source: &'a str,
}

impl ModelUpdate<'_> {
    /// Everything but the subscription: one change of one record goes to many subscriptions,
    /// and only their ids differ, so this part is written once ([`with_subscription`] ends
    /// it per subscription).
    pub fn prefix(&self) -> String {
        let mut text = serde_json::to_string(self).unwrap_or_default();
        // A JSON object: drop its closing brace, the subscription member follows.
        text.pop();
        text
    }

    /// The whole message for one subscription.
    pub fn to_message(&self, subscription_id: &str) -> String {
        with_subscription(&self.prefix(), subscription_id)
    }
}

/// Ends a [`ModelUpdate::prefix`] with `"subscription_id"`.
pub fn with_subscription(prefix: &str, subscription_id: &str) -> String {
    let id = serde_json::to_string(subscription_id).unwrap_or_default();
    let mut text = String::with_capacity(prefix.len() + id.len() + 20);
    text.push_str(prefix);
    text.push_str(",\"subscription_id\":");
    text.push_str(&id);
    text.push('}');
    text
}
