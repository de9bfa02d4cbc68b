//! BridgeCore's own tokens (issue 3): JWTs, their scopes, and finding them in a request.
//!
//! Apps log in once through `/api/v1/auth/login` and then carry a short-lived access token
//! instead of an Odoo password or session cookie; BridgeCore holds the Odoo credential behind
//! the token's session id. This module is the part of that which needs no I/O, so every
//! refusal rule can be tested at exact instants and fuzzed: the glue reads key files, fetches
//! JWKS URLs, stores sessions and checks revocation, then hands bytes and tokens to this code.
//!
//! The design closes the usual JWT mistakes by construction rather than by care at each call
//! site:
//! - one algorithm per deployment ([`Algorithm`]), so `alg: none` and RS256/HS256 confusion
//!   fail whatever the token says; weak HMAC secrets and small RSA keys fail at load;
//! - one immutable [`Verifier`] checks length, shape, signature, issuer, audience, token type
//!   and lifetime in a fixed order, with time passed in, and answers a precise [`AuthError`]
//!   for logs next to a vague [`AuthError::detail`] for the client;
//! - access and refresh tokens are distinct ([`TokenType`]): neither is accepted as the other;
//! - [`Scopes`] can only narrow what the Odoo user may do, and refuse whatever they cannot
//!   judge (a call without a model needs a `*` scope);
//! - [`bearer_token`] refuses ambiguous headers and leaves `Authorization` to Odoo where Odoo
//!   uses it (`/json/2`), reading `X-BridgeCore-Token` first.
//!
//! Crypto backend: `jsonwebtoken` 12 with its `rust_crypto` feature (RustCrypto's `hmac`, `rsa`,
//! `p256`/`p384` and `ed25519-dalek`): pure Rust, so building needs no C toolchain, cmake or
//! system library, on any target the proxy builds for.

mod bearer;
mod claims;
mod error;
mod keys;
mod scopes;
mod sign;
mod verify;

#[cfg(test)]
mod tests;

pub use bearer::{
    bearer_bytes, bearer_token, looks_like_jwt, X_BRIDGECORE_TOKEN, X_BRIDGECORE_TOKEN_NAME,
};
pub use claims::{Claims, Role, TokenType};
pub use error::AuthError;
pub use keys::{Algorithm, JwtSettings, KeyMaterial, MIN_RSA_BITS};
pub use scopes::{allows, narrow, Access, Scope, ScopeError, Scopes, MAX_SCOPES};
pub use sign::Signer;
pub use verify::{Verifier, MAX_TOKEN_LEN};
