//! The bodies of `POST /api/v1/auth/login`, `/refresh` and `/logout`.
//!
//! Strict like the call API: a JSON object, no unknown members (named in the error), `null`
//! the same as absent. Errors never repeat a value, and the request types' `Debug` redacts the
//! password and tokens, so neither can reach a log by accident.

use std::fmt;

use super::{object_body, only, take_non_empty, take_strings, ApiError, Redacted};

/// The members `/api/v1/auth/login` takes.
const LOGIN_FIELDS: &[&str] = &["system_id", "login", "username", "password", "scopes"];

/// The members `/api/v1/auth/refresh` and `/logout` take.
const TOKEN_FIELDS: &[&str] = &["refresh_token"];

/// A login: `{system_id, login | username, password, scopes?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginRequest {
    /// The tenant.
    pub system_id: String,
    /// The Odoo login (`login`, or `username` as the original BridgeCore clients send it).
    pub login: String,
    /// The password or API key; Odoo checks it.
    pub password: String,
    /// The scopes asked for; `None` when not given (the token then gets the default scopes).
    pub scopes: Option<Vec<String>>,
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("system_id", &self.system_id)
            .field("login", &self.login)
            .field("password", &Redacted)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// A refresh: `{refresh_token}`.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshRequest {
    /// The refresh token to rotate.
    pub refresh_token: String,
}

impl fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshRequest")
            .field("refresh_token", &Redacted)
            .finish()
    }
}

/// A logout: an empty body, `{}`, or `{refresh_token}` (to revoke that refresh token too; the
/// access token comes from `Authorization`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LogoutRequest {
    /// The refresh token to revoke, if given.
    pub refresh_token: Option<String>,
}

impl fmt::Debug for LogoutRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogoutRequest")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| Redacted),
            )
            .finish()
    }
}

/// Reads a login body. `system_id` and `password` are required non-empty strings; the login
/// comes from `login` or `username` (both may be given only when equal); `scopes` is an
/// optional list of non-empty strings. Never panics.
pub fn parse_login(body: &[u8]) -> Result<LoginRequest, ApiError> {
    let mut b = object_body(body)?;
    only(&b, "login", LOGIN_FIELDS)?;
    let system_id = take_non_empty(&mut b, "system_id")?.ok_or(ApiError::Missing("system_id"))?;
    let login = match (
        take_non_empty(&mut b, "login")?,
        take_non_empty(&mut b, "username")?,
    ) {
        (Some(login), Some(username)) if login != username => {
            return Err(ApiError::Differ("login", "username"))
        }
        (Some(login), _) | (None, Some(login)) => login,
        (None, None) => return Err(ApiError::MissingOneOf("login", "username")),
    };
    let password = take_non_empty(&mut b, "password")?.ok_or(ApiError::Missing("password"))?;
    let scopes = take_strings(&mut b, "scopes").map_err(|_| ApiError::Invalid {
        field: "scopes",
        expected: "a list of non-empty strings",
    })?;
    if scopes.iter().flatten().any(String::is_empty) {
        return Err(ApiError::Invalid {
            field: "scopes",
            expected: "a list of non-empty strings",
        });
    }
    Ok(LoginRequest {
        system_id,
        login,
        password,
        scopes,
    })
}

/// Reads a refresh body: `{refresh_token}`, a non-empty string. Never panics.
pub fn parse_refresh(body: &[u8]) -> Result<RefreshRequest, ApiError> {
    let mut b = object_body(body)?;
    only(&b, "refresh", TOKEN_FIELDS)?;
    let refresh_token =
        take_non_empty(&mut b, "refresh_token")?.ok_or(ApiError::Missing("refresh_token"))?;
    Ok(RefreshRequest { refresh_token })
}

/// Reads a logout body: empty (or only whitespace), `{}`, or `{refresh_token}`. Never panics.
pub fn parse_logout(body: &[u8]) -> Result<LogoutRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(LogoutRequest::default());
    }
    let mut b = object_body(body)?;
    only(&b, "logout", TOKEN_FIELDS)?;
    Ok(LogoutRequest {
        refresh_token: take_non_empty(&mut b, "refresh_token")?,
    })
}
