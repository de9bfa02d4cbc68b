//! Finding the BridgeCore token in a request's headers.
//!
//! `Authorization` is not always BridgeCore's: Odoo 19's `/json/2` sends
//! `Authorization: bearer <odoo api key>` and must receive it untouched. So a client that needs
//! both sends BridgeCore's token in `X-BridgeCore-Token`, which wins when present, and the glue
//! uses [`looks_like_jwt`] to tell an Odoo API key in `Authorization` from a BridgeCore token.
//! Ambiguity is refused rather than resolved: two values of either header are an error, since
//! which one "counts" would otherwise depend on which proxy or library reads them.

use http::header::{HeaderMap, HeaderName, AUTHORIZATION};
use http::HeaderValue;

use super::error::AuthError;

/// The header that carries a BridgeCore token where `Authorization` belongs to Odoo.
pub const X_BRIDGECORE_TOKEN: &str = "x-bridgecore-token";

/// Parsed once: looking a header up by `&str` would parse and lowercase-check it per request.
static X_BRIDGECORE_TOKEN_NAME: HeaderName = HeaderName::from_static(X_BRIDGECORE_TOKEN);

/// The BridgeCore token of a request, if it sends one: `X-BridgeCore-Token` first (the raw
/// token), else `Authorization: Bearer <token>` (scheme case-insensitive, surrounding
/// whitespace ignored). `Ok(None)` when neither header is present; the token is not verified.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    if let Some(value) = single(headers, &X_BRIDGECORE_TOKEN_NAME)? {
        return token_chars(trim(value.as_bytes())).map(Some);
    }
    let Some(value) = single(headers, &AUTHORIZATION)? else {
        return Ok(None);
    };
    let value = trim(value.as_bytes());
    if !value
        .iter()
        .all(|&b| is_token_char(b) || b == b' ' || b == b'\t')
    {
        return Err(AuthError::Malformed);
    }
    let split = value.iter().position(|&b| b == b' ' || b == b'\t');
    let (scheme, rest) = match split {
        Some(at) => (&value[..at], trim(&value[at..])),
        None => (value, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(AuthError::BadScheme);
    }
    token_chars(rest).map(Some)
}

/// Whether `s` has the shape of a compact JWS: three non-empty base64url segments. Cheap and
/// allocation-free; says nothing about validity. An Odoo API key (40 hex digits) never matches.
pub fn looks_like_jwt(s: &str) -> bool {
    // One pass over the bytes: this runs on every token before anything else.
    let mut dots = 0;
    let mut segment_len = 0usize;
    for b in s.bytes() {
        if b == b'.' {
            if segment_len == 0 || dots == 2 {
                return false;
            }
            dots += 1;
            segment_len = 0;
        } else if is_base64url(b) {
            segment_len += 1;
        } else {
            return false;
        }
    }
    dots == 2 && segment_len > 0
}

/// The only value of header `name`, or `None`; two or more values are [`AuthError::Duplicate`].
fn single<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a HeaderValue>, AuthError> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => Ok(Some(value)),
        (Some(_), Some(_)) => Err(AuthError::Duplicate),
    }
}

/// A token: at least one visible ASCII character, nothing else (no inner whitespace).
fn token_chars(bytes: &[u8]) -> Result<&str, AuthError> {
    if bytes.is_empty() || !bytes.iter().all(|&b| is_token_char(b)) {
        return Err(AuthError::Malformed);
    }
    std::str::from_utf8(bytes).map_err(|_| AuthError::Malformed)
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |last| last + 1);
    &bytes[start..end]
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_graphic()
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            let name = http::HeaderName::from_bytes(name.as_bytes()).expect("test header name");
            let value = HeaderValue::from_bytes(value).expect("test header value");
            map.append(name, value);
        }
        map
    }

    /// Headers in, expected extraction out.
    type Case<'a> = (Vec<(&'a str, &'a [u8])>, Result<Option<&'a str>, AuthError>);

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIyIn0.c2lnbmF0dXJl";

    #[test]
    fn bearer_extraction_table() {
        let jwt = JWT.as_bytes();
        let bearer = format!("Bearer {JWT}");
        let cases: Vec<Case<'_>> = vec![
            (vec![], Ok(None)),
            (vec![("authorization", bearer.as_bytes())], Ok(Some(JWT))),
            (vec![("authorization", b"bearer abc")], Ok(Some("abc"))),
            (vec![("authorization", b"BEARER abc")], Ok(Some("abc"))),
            (
                vec![("authorization", b"  Bearer \t  abc  ")],
                Ok(Some("abc")),
            ),
            (
                vec![("authorization", b"Bearer")],
                Err(AuthError::Malformed),
            ),
            (
                vec![("authorization", b"Bearer   ")],
                Err(AuthError::Malformed),
            ),
            (
                vec![("authorization", b"Bearer a b")],
                Err(AuthError::Malformed),
            ),
            (
                vec![("authorization", b"Bearer a\xc3\xa9")],
                Err(AuthError::Malformed),
            ),
            (
                vec![("authorization", b"Basic YWRtaW46YWRtaW4=")],
                Err(AuthError::BadScheme),
            ),
            (
                vec![("authorization", b"Bearerabc")],
                Err(AuthError::BadScheme),
            ),
            (vec![("authorization", b"")], Err(AuthError::BadScheme)),
            (
                vec![
                    ("authorization", b"Bearer a"),
                    ("authorization", b"Bearer b"),
                ],
                Err(AuthError::Duplicate),
            ),
            // X-BridgeCore-Token wins and leaves Authorization to Odoo (/json/2 API keys).
            (
                vec![
                    (
                        "authorization",
                        b"bearer 0123456789abcdef0123456789abcdef01234567",
                    ),
                    ("x-bridgecore-token", jwt),
                ],
                Ok(Some(JWT)),
            ),
            (
                vec![
                    ("authorization", b"Basic x"),
                    ("authorization", b"Basic y"),
                    ("x-bridgecore-token", jwt),
                ],
                Ok(Some(JWT)),
            ),
            (vec![("x-bridgecore-token", b"  abc ")], Ok(Some("abc"))),
            (vec![("x-bridgecore-token", b"")], Err(AuthError::Malformed)),
            (
                vec![("x-bridgecore-token", b"Bearer abc")],
                Err(AuthError::Malformed),
            ),
            (
                vec![("x-bridgecore-token", b"a\xffb")],
                Err(AuthError::Malformed),
            ),
            (
                vec![("x-bridgecore-token", b"a"), ("x-bridgecore-token", b"b")],
                Err(AuthError::Duplicate),
            ),
        ];
        for (pairs, want) in cases {
            let map = headers(&pairs);
            assert_eq!(bearer_token(&map), want, "{pairs:?}");
        }
    }

    #[test]
    fn jwt_shape() {
        for (s, want) in [
            (JWT, true),
            ("a.b.c", true),
            ("a-_.b0.c9", true),
            ("0123456789abcdef0123456789abcdef01234567", false),
            ("a.b", false),
            ("a.b.c.d", false),
            ("a..c", false),
            (".b.c", false),
            ("a.b.", false),
            ("a.b.c=", false),
            ("a.b+.c", false),
            ("a.b/.c", false),
            ("a. b.c", false),
            ("", false),
        ] {
            assert_eq!(looks_like_jwt(s), want, "{s:?}");
        }
    }
}
