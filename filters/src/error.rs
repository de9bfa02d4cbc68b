//! Errors BridgeCore itself answers, in the caller's protocol.
//!
//! JSON-RPC callers (the web client, odoorpc, mobile apps) already understand Odoo's error
//! object, so BridgeCore's own refusals use the same shape with `data.name` in the
//! `bridgecore.*` namespace and the HTTP status of the condition (design.md §4 Errors).

use serde_json::{json, Value};

/// The `data.name` of BridgeCore's own JSON-RPC errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: the body is not a JSON-RPC call BridgeCore can read.
    BadRequest,
    /// 401: a token is missing or invalid.
    Unauthorized,
    /// 403: the caller may not do this (database manager, scopes).
    Forbidden,
    /// 404: no tenant for this request.
    NotFound,
    /// 413: the body is over `max_body_size`.
    PayloadTooLarge,
    /// 429: a rate limit.
    RateLimited,
    /// 502: Odoo could not be reached.
    BadGateway,
    /// 503: the tenant's concurrency bound stayed full.
    Unavailable,
    /// 504: Odoo did not answer within the tenant's timeout.
    GatewayTimeout,
}

impl ErrorKind {
    /// The HTTP status BridgeCore answers with.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::PayloadTooLarge => 413,
            Self::RateLimited => 429,
            Self::BadGateway => 502,
            Self::Unavailable => 503,
            Self::GatewayTimeout => 504,
        }
    }

    /// The `data.name` clients can match on.
    pub fn name(self) -> &'static str {
        match self {
            Self::BadRequest => "bridgecore.BadRequest",
            Self::Unauthorized => "bridgecore.Unauthorized",
            Self::Forbidden => "bridgecore.Forbidden",
            Self::NotFound => "bridgecore.NotFound",
            Self::PayloadTooLarge => "bridgecore.PayloadTooLarge",
            Self::RateLimited => "bridgecore.RateLimited",
            Self::BadGateway => "bridgecore.BadGateway",
            Self::Unavailable => "bridgecore.Unavailable",
            Self::GatewayTimeout => "bridgecore.GatewayTimeout",
        }
    }
}

/// An Odoo-shaped JSON-RPC error body:
/// `{"jsonrpc":"2.0","id":…,"error":{"code":status,"message":…,"data":{"name","message","arguments","debug"}}}`.
pub fn jsonrpc_error(id: Option<&Value>, kind: ErrorKind, message: &str) -> Vec<u8> {
    let body = json!({
        "jsonrpc": "2.0",
        "id": id.cloned().unwrap_or(Value::Null),
        "error": {
            "code": kind.status(),
            "message": message,
            "data": {
                "name": kind.name(),
                "message": message,
                "arguments": [message],
                "debug": "",
            }
        }
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The `/api/v1` error body: `{"detail": message}`.
pub fn api_error(message: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "detail": message })).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonrpc_error_has_odoo_shape() {
        let body = jsonrpc_error(Some(&json!(7)), ErrorKind::RateLimited, "slow down");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["error"]["code"], 429);
        assert_eq!(v["error"]["data"]["name"], "bridgecore.RateLimited");
        assert_eq!(v["error"]["data"]["message"], "slow down");
    }

    #[test]
    fn jsonrpc_error_without_id_is_null() {
        let v: Value =
            serde_json::from_slice(&jsonrpc_error(None, ErrorKind::BadRequest, "x")).unwrap();
        assert!(v["id"].is_null());
    }
}
