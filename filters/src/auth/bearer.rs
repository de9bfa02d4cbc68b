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

/// [`X_BRIDGECORE_TOKEN`] parsed once: looking a header up by `&str`, or building the name per
/// request, would parse and lowercase-check it every time.
pub static X_BRIDGECORE_TOKEN_NAME: HeaderName = HeaderName::from_static(X_BRIDGECORE_TOKEN);

/// The BridgeCore token of a request, if it sends one: `X-BridgeCore-Token` first (the raw
/// token), else `Authorization: Bearer <token>` (scheme case-insensitive, surrounding
/// whitespace ignored). `Ok(None)` when neither header is present; the token is not verified.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    if let Some(value) = single(headers, &X_BRIDGECORE_TOKEN_NAME)? {
        if let Some(t) = plain_token(value.as_bytes()) {
            return Ok(Some(t));
        }
        return raw_token(value);
    }
    let Some(value) = single(headers, &AUTHORIZATION)? else {
        return Ok(None);
    };
    // `Bearer <token>` as clients send it, checked in one pass; anything else by the rules.
    let plain = match value.as_bytes().split_at_checked(7) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case(b"bearer ") => Some(rest),
        _ => None,
    };
    if let Some(t) = plain.and_then(plain_token) {
        return Ok(Some(t));
    }
    authorization_token(value)
}

/// The bytes after `Bearer ` in a request's only `Authorization` value, when it sends no
/// `X-BridgeCore-Token`: unchecked. Only for finding a token verified before by its exact bytes,
/// which proves them a token (and the one [`bearer_token`] would return) and spares its checks
/// on every request of a token-only tenant. Anything else goes through [`bearer_token`].
pub fn bearer_bytes(headers: &HeaderMap) -> Option<&[u8]> {
    if headers.contains_key(&X_BRIDGECORE_TOKEN_NAME) {
        return None;
    }
    let value = single(headers, &AUTHORIZATION).ok()??;
    match value.as_bytes().split_at_checked(7) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case(b"bearer ") => Some(rest),
        _ => None,
    }
}

/// [`bearer_token`]'s reading of an `X-BridgeCore-Token` value, by the general rules.
fn raw_token(value: &HeaderValue) -> Result<Option<&str>, AuthError> {
    token(visible(value)?.trim_matches(WHITESPACE)).map(Some)
}

/// [`bearer_token`]'s reading of an `Authorization` value, by the general rules.
fn authorization_token(value: &HeaderValue) -> Result<Option<&str>, AuthError> {
    let value = visible(value)?.trim_matches(WHITESPACE);
    let (scheme, rest) = match value.split_once(WHITESPACE) {
        Some((scheme, rest)) => (scheme, rest.trim_start_matches(WHITESPACE)),
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::BadScheme);
    }
    token(rest).map(Some)
}

/// Whether `s` has the shape of a compact JWS: three non-empty base64url segments. Cheap and
/// allocation-free; says nothing about validity. An Odoo API key (40 hex digits) never matches.
pub fn looks_like_jwt(s: &str) -> bool {
    // This runs on every token before anything else, so: a branch-free table pass over the
    // bytes (base64url or `.`), then the dots located with the (memchr-backed) splitter.
    let bytes = s.as_bytes();
    if !bytes
        .iter()
        .fold(true, |ok, &b| ok & (JWT_CHARS[usize::from(b)] != 0))
    {
        return false;
    }
    let mut segments = s.split('.');
    matches!(
        (segments.next(), segments.next(), segments.next(), segments.next()),
        (Some(h), Some(p), Some(sig), None) if !h.is_empty() && !p.is_empty() && !sig.is_empty()
    )
}

/// 1 for the bytes of a compact JWS (base64url and `.`), 0 for the rest.
static JWT_CHARS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        // `b < 256`, so the cast is lossless.
        #[allow(clippy::cast_possible_truncation)]
        let byte = b as u8;
        if is_base64url(byte) || byte == b'.' {
            table[b] = 1;
        }
        b += 1;
    }
    table
};

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

/// The header as text: visible ASCII, spaces and tabs only (anything else is not a token).
fn visible(value: &HeaderValue) -> Result<&str, AuthError> {
    // `HeaderValue::to_str`'s rule (0x20..=0x7e or a tab), eight bytes at a time: its own
    // byte-by-byte loop costs ~8 instructions a byte, on a 400-byte token per request. A tab
    // sends the value to the exact check.
    let bytes = value.as_bytes();
    let quick = !any_below(bytes, 0x20) && !any_del_or_high(bytes);
    if !quick
        && !bytes
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) || b == b'\t')
    {
        return Err(AuthError::Malformed);
    }
    std::str::from_utf8(bytes).map_err(|_| AuthError::Malformed)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The bytes eight at a time, the tail padded with `pad`.
fn words(b: &[u8], pad: u8) -> impl Iterator<Item = u64> + '_ {
    let chunks = b.chunks_exact(8);
    let mut tail = [pad; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    chunks
        // Exact chunks of eight: the fallback is never taken.
        .map(move |c| u64::from_le_bytes(c.try_into().unwrap_or([pad; 8])))
        .chain(std::iter::once(u64::from_le_bytes(tail)))
}

/// Whether any byte is below `n` (`n` <= 0x80; exact, by the classic "has less" word trick).
fn any_below(b: &[u8], n: u8) -> bool {
    words(b, 0x7e).fold(0, |bad, x| {
        bad | (x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH)
    }) != 0
}

/// Whether any byte is 0x7f or above: adding one sets the top bit of 0x7f, and the others have
/// it already.
fn any_del_or_high(b: &[u8]) -> bool {
    words(b, 0).fold(0, |bad, x| bad | ((x.wrapping_add(ONES) | x) & HIGH)) != 0
}

/// `b` as a token when it is one as it stands: non-empty, every byte visible ASCII other than
/// a space (0x21..=0x7e), checked eight bytes at a time in one pass. `None` sends the value
/// to the general rules, which give the same token for such text (nothing to trim or split)
/// and name the error otherwise.
fn plain_token(b: &[u8]) -> Option<&str> {
    let bad = words(b, b'a').fold(0, |bad, x| {
        bad | (x.wrapping_sub(ONES * 0x21) & !x & HIGH) | ((x.wrapping_add(ONES) | x) & HIGH)
    });
    if b.is_empty() || bad != 0 {
        return None;
    }
    std::str::from_utf8(b).ok()
}

/// A token, from text already known to be visible ASCII and whitespace: non-empty, with no
/// whitespace inside.
fn token(s: &str) -> Result<&str, AuthError> {
    // Words, not `contains(WHITESPACE)`: the char-array pattern costs ten times as much on a
    // 400-byte token, on every request of a token-only tenant. The text is visible ASCII
    // already, so a byte below 0x21 is a space or a tab.
    if s.is_empty() || any_below(s.as_bytes(), 0x21) {
        return Err(AuthError::Malformed);
    }
    Ok(s)
}

/// The whitespace HTTP allows in a header value.
const WHITESPACE: [char; 2] = [' ', '\t'];

const fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_checks_are_the_byte_checks() {
        let mut samples: Vec<Vec<u8>> = vec![Vec::new(), b"Bearer abc.def-ghi_jkl".to_vec()];
        for len in [1usize, 7, 8, 9, 15, 16, 17, 40] {
            for at in [0, len / 2, len - 1] {
                for b in [0u8, 0x09, 0x1f, 0x20, 0x21, 0x7e, 0x7f, 0x80, 0xc3, 0xff] {
                    let mut v = vec![b'a'; len];
                    v[at] = b;
                    samples.push(v.clone());
                    // A neighbour that could carry or borrow into it.
                    if at + 1 < len {
                        v[at + 1] = 0xff;
                        samples.push(v.clone());
                        v[at + 1] = 0x00;
                        samples.push(v);
                    }
                }
            }
        }
        for v in &samples {
            for n in [0x20u8, 0x21] {
                assert_eq!(any_below(v, n), v.iter().any(|&b| b < n), "{v:?} < {n:#x}");
            }
            assert_eq!(any_del_or_high(v), v.iter().any(|&b| b >= 0x7f), "{v:?}");
        }
    }

    /// The one-pass reading gives what the general rules give, whenever it gives anything.
    #[test]
    fn the_plain_reading_is_the_general_one() {
        let mut values: Vec<Vec<u8>> = Vec::new();
        for token in [
            &b"a"[..],
            b"abc.def-ghi_jkl",
            JWT.as_bytes(),
            b"0123456789abcdef!~",
        ] {
            for scheme in [
                &b"Bearer "[..],
                b"bearer ",
                b"BEARER ",
                b"Bearer  ",
                b"Bearer\t",
                b" Bearer ",
                b"Basic ",
            ] {
                for tail in [&b""[..], b" ", b"\t", b" x", b"\x7f", b"\x01"] {
                    let v = [scheme, token, tail].concat();
                    values.push(v.clone());
                    // Every single-byte change of the token part too.
                    for at in 0..token.len() {
                        for b in [0x09u8, 0x20, 0x21, 0x7e, 0x7f, 0x80, 0xff] {
                            let mut w = v.clone();
                            w[scheme.len() + at] = b;
                            values.push(w);
                        }
                    }
                }
            }
        }
        for v in &values {
            let Ok(value) = HeaderValue::from_bytes(v) else {
                continue;
            };
            let authorization = match v.split_at_checked(7) {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case(b"bearer ") => {
                    plain_token(rest)
                }
                _ => None,
            };
            if let Some(t) = authorization {
                assert_eq!(authorization_token(&value), Ok(Some(t)), "{v:?}");
            }
            if let Some(t) = plain_token(v) {
                assert_eq!(raw_token(&value), Ok(Some(t)), "{v:?}");
            }
            // And what a request carrying it gets, whichever path reads it.
            let map = headers(&[("authorization", v)]);
            assert_eq!(bearer_token(&map), authorization_token(&value), "{v:?}");
            bytes_agree(&map);
            let map = headers(&[("x-bridgecore-token", v)]);
            assert_eq!(bearer_token(&map), raw_token(&value), "{v:?}");
            assert_eq!(bearer_bytes(&map), None, "{v:?}");
        }
    }

    /// What [`bearer_bytes`] finds, when it is a token that could have been verified (JWT
    /// bytes), is what [`bearer_token`] reads from the same headers.
    fn bytes_agree(map: &HeaderMap) {
        let Some(bytes) = bearer_bytes(map) else {
            return;
        };
        if let Some(t) = std::str::from_utf8(bytes)
            .ok()
            .filter(|t| looks_like_jwt(t))
        {
            assert_eq!(bearer_token(map), Ok(Some(t)), "{map:?}");
        }
    }

    #[test]
    fn bearer_bytes_only_where_bearer_token_reads_authorization() {
        let jwt = JWT.as_bytes();
        let bearer = format!("Bearer {JWT}");
        let lower = format!("bearer {JWT}");
        let spaced = format!("Bearer  {JWT}");
        for (pairs, want) in [
            (vec![("authorization", bearer.as_bytes())], Some(jwt)),
            (vec![("authorization", lower.as_bytes())], Some(jwt)),
            (vec![("authorization", spaced.as_bytes())], None),
            (vec![("x-bridgecore-token", jwt)], None),
            (
                vec![
                    ("authorization", bearer.as_bytes()),
                    ("x-bridgecore-token", jwt),
                ],
                None,
            ),
            (
                vec![
                    ("authorization", bearer.as_bytes()),
                    ("authorization", bearer.as_bytes()),
                ],
                None,
            ),
            (vec![("authorization", b"Basic YWRtaW46YWRtaW4=")], None),
        ] {
            let map = headers(&pairs);
            // Two spaces: bytes that are no token (a space), so never found among verified ones.
            let found = bearer_bytes(&map).filter(|b| !b.starts_with(b" "));
            assert_eq!(found, want, "{pairs:?}");
            bytes_agree(&map);
        }
    }

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
            bytes_agree(&map);
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
