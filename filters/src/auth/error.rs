//! Why a token was refused, or why token authentication could not be set up.
//!
//! The variants are precise so logs and metrics can tell a clock problem (`Expired`,
//! `NotYetValid`) from an attack (`BadSignature`, `WrongAlgorithm`); the client only ever sees
//! [`AuthError::detail`], which says as little as possible and never echoes the token.

use crate::error::ErrorKind;

/// A refused token or credential header, or an unusable JWT configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token where one is required.
    #[error("no token")]
    Missing,
    /// Not three base64url segments, undecodable, or claims of the wrong shape.
    #[error("malformed token")]
    Malformed,
    /// Longer than [`MAX_TOKEN_LEN`](super::MAX_TOKEN_LEN): refused before any decoding work.
    #[error("token too large")]
    TooLarge,
    /// The signature does not match the header and payload.
    #[error("bad signature")]
    BadSignature,
    /// `exp` (plus the leeway) is in the past.
    #[error("token expired")]
    Expired,
    /// `nbf` (minus the leeway) is in the future.
    #[error("token not valid yet")]
    NotYetValid,
    /// `iss` missing or not this deployment's issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` missing or not this deployment's audience.
    #[error("wrong audience")]
    WrongAudience,
    /// The header's `alg` is not the one algorithm this deployment accepts (`none` included).
    #[error("wrong algorithm")]
    WrongAlgorithm,
    /// A refresh token where an access token belongs, or the reverse.
    #[error("wrong token type")]
    WrongType,
    /// The header's `kid` names no key of the JWKS (or names none when the JWKS has several).
    #[error("unknown signing key")]
    UnknownKey,
    /// Two `Authorization` (or two `X-BridgeCore-Token`) values: which one counts would depend
    /// on who reads them, so neither does.
    #[error("duplicate credential headers")]
    Duplicate,
    /// `Authorization` with a scheme other than `Bearer` (`Basic`, ...).
    #[error("unsupported authorization scheme")]
    BadScheme,
    /// The JWT settings or keys cannot work; the message says what to fix (for `--test`).
    /// It does not name `auth.jwt` itself: the glue knows which YAML key it came from.
    #[error("{0}")]
    Config(String),
    /// Signing failed at run time (never expected once [`Signer::new`](super::Signer::new)
    /// has succeeded).
    #[error("could not sign token: {0}")]
    Signing(String),
}

impl AuthError {
    /// The client-facing message (`{"detail": …}` on `/api/v1`, the JSON-RPC error message):
    /// short, stable, and free of anything the client sent. Only expiry is singled out, because
    /// it tells a well-behaved client to refresh; every other refusal is "invalid token", so the
    /// answer does not help anyone probing which check failed.
    pub fn detail(&self) -> &'static str {
        match self {
            AuthError::Missing => "authentication required",
            AuthError::Expired => "token expired",
            AuthError::BadScheme => "unsupported authorization scheme",
            AuthError::Config(_) | AuthError::Signing(_) => "token authentication unavailable",
            AuthError::Malformed
            | AuthError::TooLarge
            | AuthError::BadSignature
            | AuthError::NotYetValid
            | AuthError::WrongIssuer
            | AuthError::WrongAudience
            | AuthError::WrongAlgorithm
            | AuthError::WrongType
            | AuthError::UnknownKey
            | AuthError::Duplicate => "invalid token",
        }
    }

    /// How BridgeCore answers: 401 for anything the client sent, 503 when BridgeCore itself
    /// cannot do token authentication (so a misconfiguration is not blamed on the client).
    pub fn kind(&self) -> ErrorKind {
        match self {
            AuthError::Config(_) | AuthError::Signing(_) => ErrorKind::Unavailable,
            _ => ErrorKind::Unauthorized,
        }
    }
}
