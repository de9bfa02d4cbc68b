//! Cache keys: who asks, what, and in which context (odoo-protocol.md §4, design.md §5).
//!
//! A key is a SHA-256 over length-framed parts: tenant, database, the caller's credential
//! identity (or "shared"), model, method, and the canonical JSON of the positional and keyword
//! arguments — the whole `context` included. Canonical JSON sorts object keys and keeps array
//! order (the first of `allowed_company_ids` is `env.company`); a search domain is replaced by
//! its canonical form ([`crate::domain::canonicalise`]) so equivalent searches share entries.
//!
//! The identity is an HMAC under `cache.key_secret`, never the credential itself: for `/jsonrpc`
//! and XML-RPC it covers db, uid and the password (so a wrong password can never match an entry
//! made with the right one), for `/json/2` the API key and database, for cookie and token callers
//! the Odoo session id (one session is one uid: Odoo rotates the id on login and logout). Stores
//! and Redis therefore hold only digests.

use std::io;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::call::{Call, Credential};
use crate::domain::takes_domain;

/// A caller's credential identity: the HMAC of what Odoo checks for this caller.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Identity([u8; 32]);

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.short_hex())
    }
}

impl Identity {
    /// The identity of `credential` under `secret`, or `None` when the call carries no
    /// credential (public routes): such calls are never cached.
    pub fn of(credential: &Credential, secret: &[u8]) -> Option<Identity> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).ok()?;
        match credential {
            Credential::None => return None,
            Credential::Session(sid) => {
                mac.update(b"session\0");
                mac.update(sid.as_bytes());
            }
            Credential::Password { db, uid, password } => {
                mac.update(b"password\0");
                frame_mac(&mut mac, db.as_bytes());
                frame_mac(&mut mac, uid.to_string().as_bytes());
                frame_mac(&mut mac, password.as_bytes());
            }
            Credential::ApiKey { key, db } => {
                mac.update(b"apikey\0");
                frame_mac(&mut mac, key.as_bytes());
                frame_mac(&mut mac, db.as_deref().unwrap_or("").as_bytes());
            }
        }
        Some(Identity(mac.finalize().into_bytes().into()))
    }

    /// The identity of a BridgeCore token caller, whose calls run on the Odoo session BridgeCore
    /// keeps for it: the same as a cookie caller of that session.
    pub fn of_session(odoo_session: &str, secret: &[u8]) -> Option<Identity> {
        Identity::of(&Credential::Session(odoo_session.to_owned()), secret)
    }

    /// The first 16 bytes in hex: enough to name an identity's generation counter.
    pub fn short_hex(&self) -> String {
        hex16(&self.0[..16])
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

fn hex16(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

fn frame_mac(mac: &mut Hmac<Sha256>, part: &[u8]) {
    mac.update(&(part.len() as u64).to_le_bytes());
    mac.update(part);
}

/// A cache key: the SHA-256 of the framed parts.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey(pub [u8; 32]);

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CacheKey({})", self.hex())
    }
}

impl CacheKey {
    /// The key of `call` on `tenant` for `identity` (`None`: a `shared: true` model, whose
    /// entries every caller of the tenant shares). `None` when the call has no model or method.
    pub fn of(tenant: &str, identity: Option<&Identity>, call: &Call) -> Option<CacheKey> {
        CacheKey::of_with(tenant, identity, call, true)
    }

    /// [`CacheKey::of`], with the search's domain in canonical form only when
    /// `canonical_domains` (`optimizer.canonical_domains: off` keys on the domain as sent,
    /// JSON-normalised like every other argument).
    pub fn of_with(
        tenant: &str,
        identity: Option<&Identity>,
        call: &Call,
        canonical_domains: bool,
    ) -> Option<CacheKey> {
        let model = call.model.as_deref()?;
        let method = call.method.as_deref()?;
        let mut h = Framed(Sha256::new());
        h.part(b"bridgecore-cache-v1");
        h.part(tenant.as_bytes());
        h.part(call.db.as_deref().unwrap_or("").as_bytes());
        match identity {
            Some(id) => h.part(&id.0),
            None => h.part(b"shared"),
        }
        h.part(model.as_bytes());
        h.part(method.as_bytes());
        let has_domain = canonical_domains && takes_domain(method);
        // Positional arguments; a search's domain (first argument) in canonical form.
        let args = call.args();
        h.begin();
        h.0.update((args.len() as u64).to_le_bytes());
        for (i, arg) in args.iter().enumerate() {
            if i == 0 && has_domain {
                write_domain(&mut h, arg);
            } else {
                write_canonical(&mut h, arg);
            }
        }
        h.begin();
        write_kwargs(&mut h, call.kwargs(), has_domain);
        Some(CacheKey(h.0.finalize().into()))
    }

    /// The key of `call` by the request's own argument bytes (see [`Call::raw_arguments`]):
    /// no decoding, no canonical form. Equal bytes mean an equal call, so this key may find
    /// the entry a canonical [`CacheKey::of`] stored (the store records both); different bytes
    /// for an equivalent call only miss here and meet at the canonical key. `None` when the
    /// call's arguments were built or rewritten.
    pub fn of_bytes(tenant: &str, identity: Option<&Identity>, call: &Call) -> Option<CacheKey> {
        let model = call.model.as_deref()?;
        let method = call.method.as_deref()?;
        let (args, kwargs) = call.raw_arguments()?;
        let mut h = Framed(Sha256::new());
        h.part(b"bridgecore-cache-raw-v1");
        h.part(tenant.as_bytes());
        h.part(call.db.as_deref().unwrap_or("").as_bytes());
        match identity {
            Some(id) => h.part(&id.0),
            None => h.part(b"shared"),
        }
        h.part(model.as_bytes());
        h.part(method.as_bytes());
        h.part(args.as_bytes());
        h.part(kwargs.as_bytes());
        Some(CacheKey(h.0.finalize().into()))
    }

    /// The key in hex (Redis key names).
    pub fn hex(&self) -> String {
        hex16(&self.0)
    }

    /// The first 8 bytes as an integer: the in-memory store's index (the full key is checked
    /// on every hit, so a collision only costs a miss).
    pub fn short(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(b)
    }
}

struct Framed(Sha256);

impl Framed {
    fn part(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// Starts a variable-length section (its end is implied by the next section's marker).
    fn begin(&mut self) {
        self.0.update([0xff]);
    }
}

impl io::Write for Framed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_kwargs(h: &mut Framed, kwargs: &Map<String, Value>, has_domain: bool) {
    write_object(h, kwargs, &|key, value, h| {
        if has_domain && key == "domain" {
            write_domain(h, value);
        } else {
            write_canonical(h, value);
        }
    });
}

fn write_domain(h: &mut Framed, domain: &Value) {
    match crate::domain::canonicalise(domain) {
        Some(canonical) => write_canonical(h, &canonical),
        None => write_canonical(h, domain),
    }
}

/// Writes `value` as canonical JSON: object keys sorted, no whitespace, strings and numbers
/// as serde_json writes them. Iterative over arrays of scalars; nesting depth is bounded by
/// the parser that built the value.
fn write_canonical(h: &mut Framed, value: &Value) {
    match value {
        Value::Object(map) => write_object(h, map, &|_, v, h| write_canonical(h, v)),
        Value::Array(items) => {
            h.0.update(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    h.0.update(b",");
                }
                write_canonical(h, item);
            }
            h.0.update(b"]");
        }
        scalar => {
            // Writing a scalar to a hasher cannot fail.
            let _ = serde_json::to_writer(&mut *h, scalar);
        }
    }
}

type EntryWriter<'a> = &'a dyn Fn(&str, &Value, &mut Framed);

fn write_object(h: &mut Framed, map: &Map<String, Value>, each: EntryWriter<'_>) {
    h.0.update(b"{");
    // serde_json's map iterates sorted unless `preserve_order` is on somewhere in the build;
    // sort only when needed.
    let sorted = map
        .keys()
        .zip(map.keys().skip(1))
        .all(|(a, b)| a.as_str() < b.as_str());
    let write = |i: usize, k: &String, v: &Value, h: &mut Framed| {
        if i > 0 {
            h.0.update(b",");
        }
        let _ = serde_json::to_writer(&mut *h, k);
        h.0.update(b":");
        each(k, v, h);
    };
    if sorted {
        for (i, (k, v)) in map.iter().enumerate() {
            write(i, k, v, h);
        }
    } else {
        let mut entries: Vec<(&String, &Value)> = map.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (i, (k, v)) in entries.into_iter().enumerate() {
            write(i, k, v, h);
        }
    }
    h.0.update(b"}");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::call::Shape;
    use serde_json::json;

    fn call(model: &str, method: &str, args: Value, kwargs: Value) -> Call {
        let mut c = Call::new(Shape::CallKw, "/web/dataset/call_kw");
        c.model = Some(model.into());
        c.method = Some(method.into());
        c.set_args(args.as_array().unwrap().clone());
        c.set_kwargs(kwargs.as_object().unwrap().clone());
        c
    }

    fn key(c: &Call, sid: &str) -> CacheKey {
        let id = Identity::of(&Credential::Session(sid.into()), b"secret").unwrap();
        CacheKey::of("t", Some(&id), c).unwrap()
    }

    #[test]
    fn same_call_same_key_and_key_order_does_not_matter() {
        let a = call(
            "res.partner",
            "search_read",
            json!([[["name", "ilike", "a"]]]),
            json!({"fields": ["name"], "context": {"lang": "en_US", "tz": "UTC"}}),
        );
        let b = call(
            "res.partner",
            "search_read",
            json!([[["name", "ilike", "a"]]]),
            json!({"context": {"tz": "UTC", "lang": "en_US"}, "fields": ["name"]}),
        );
        assert_eq!(key(&a, "s1"), key(&b, "s1"));
    }

    #[test]
    fn every_part_changes_the_key() {
        let base = || {
            call(
                "res.partner",
                "search_read",
                json!([[["name", "ilike", "a"]]]),
                json!({"fields": ["name"], "context": {"lang": "en_US", "allowed_company_ids": [1, 2]}}),
            )
        };
        let k = key(&base(), "s1");
        assert_ne!(k, key(&base(), "s2"), "session");
        let mut c = base();
        c.model = Some("res.users".into());
        assert_ne!(k, key(&c, "s1"), "model");
        let mut c = base();
        c.method = Some("search_count".into());
        assert_ne!(k, key(&c, "s1"), "method");
        let mut c = base();
        c.db = Some("other".into());
        assert_ne!(k, key(&c, "s1"), "db");
        for ctx in [
            json!({"lang": "fr_FR", "allowed_company_ids": [1, 2]}),
            json!({"lang": "en_US", "allowed_company_ids": [2, 1]}),
            json!({"lang": "en_US", "allowed_company_ids": [1, 2], "active_test": false}),
        ] {
            let mut c = base();
            c.kwargs_mut().insert("context".into(), ctx.clone());
            assert_ne!(k, key(&c, "s1"), "context {ctx}");
        }
        let id = Identity::of(&Credential::Session("s1".into()), b"secret").unwrap();
        assert_ne!(
            CacheKey::of("t", Some(&id), &base()),
            CacheKey::of("u", Some(&id), &base()),
            "tenant"
        );
        assert_ne!(
            CacheKey::of("t", Some(&id), &base()),
            CacheKey::of("t", None, &base()),
            "shared"
        );
    }

    #[test]
    fn domains_as_sent_when_canonical_domains_are_off() {
        let id = Identity::of(&Credential::Session("s".into()), b"secret").unwrap();
        let a = call(
            "res.partner",
            "search_read",
            json!([[["b", "=", 1], ["a", "=", 1]]]),
            json!({}),
        );
        let b = call(
            "res.partner",
            "search_read",
            json!([[["a", "=", 1], ["b", "=", 1]]]),
            json!({}),
        );
        let of = |c: &Call, canonical| CacheKey::of_with("t", Some(&id), c, canonical).unwrap();
        assert_eq!(of(&a, true), of(&b, true));
        assert_ne!(of(&a, false), of(&b, false));
        assert_eq!(of(&a, true), CacheKey::of("t", Some(&id), &a).unwrap());
    }

    #[test]
    fn equivalent_domains_share_a_key() {
        let a = call(
            "res.partner",
            "search_read",
            json!([["&", ["name", "ilike", "a"], ["active", "=", true]]]),
            json!({}),
        );
        let b = call(
            "res.partner",
            "search_read",
            json!([[["active", "=", true], ["name", "ilike", "a"]]]),
            json!({}),
        );
        assert_eq!(key(&a, "s"), key(&b, "s"));
        let kw_a = call(
            "res.partner",
            "web_search_read",
            json!([]),
            json!({"domain": [["active", "=", true], ["name", "ilike", "a"]]}),
        );
        let kw_b = call(
            "res.partner",
            "web_search_read",
            json!([]),
            json!({"domain": [["name", "ilike", "a"], ["active", "=", true]]}),
        );
        assert_eq!(key(&kw_a, "s"), key(&kw_b, "s"));
        // A read's first argument is ids, not a domain: order matters there.
        let r1 = call("res.partner", "read", json!([[1, 2]]), json!({}));
        let r2 = call("res.partner", "read", json!([[2, 1]]), json!({}));
        assert_ne!(key(&r1, "s"), key(&r2, "s"));
    }

    #[test]
    fn password_identity_covers_every_part() {
        let pw = |db: &str, uid: i64, p: &str| {
            Identity::of(
                &Credential::Password {
                    db: db.into(),
                    uid,
                    password: p.into(),
                },
                b"k",
            )
            .unwrap()
        };
        let a = pw("db", 2, "admin");
        assert_eq!(a, pw("db", 2, "admin"));
        assert_ne!(a, pw("db", 2, "admin2"));
        assert_ne!(a, pw("db", 3, "admin"));
        assert_ne!(a, pw("db2", 2, "admin"));
        // Framing: moving bytes between parts changes the identity.
        assert_ne!(pw("ab", 1, "c"), pw("a", 1, "bc"));
        let other_secret = Identity::of(
            &Credential::Password {
                db: "db".into(),
                uid: 2,
                password: "admin".into(),
            },
            b"other",
        )
        .unwrap();
        assert_ne!(a, other_secret);
        assert!(Identity::of(&Credential::None, b"k").is_none());
        let k1 = Identity::of(
            &Credential::ApiKey {
                key: "abc".into(),
                db: None,
            },
            b"k",
        );
        let k2 = Identity::of(
            &Credential::ApiKey {
                key: "abc".into(),
                db: Some("x".into()),
            },
            b"k",
        );
        assert_ne!(k1, k2);
    }

    #[test]
    fn byte_keys_follow_the_bytes_and_only_unchanged_calls_have_one() {
        let endpoint = crate::route::endpoint("/web/dataset/call_kw");
        let head = http::Request::post("/web/dataset/call_kw")
            .header("cookie", "session_id=abc")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let parse = |body: &str| crate::jsonrpc::parse(&endpoint, &head, body.as_bytes()).unwrap();
        let id = Identity::of(&Credential::Session("abc".into()), b"k").unwrap();
        let a = parse(
            r#"{"id":1,"params":{"model":"m","method":"read","args":[[1]],"kwargs":{"context":{"lang":"en_US"}}}}"#,
        );
        let b = parse(
            r#"{"id":2,"params":{"model":"m","method":"read","args":[[1]],"kwargs":{"context":{"lang":"en_US"}}}}"#,
        );
        let c = parse(
            r#"{"id":1,"params":{"model":"m","method":"read","args":[[1]],"kwargs":{"context":{"lang":"fr_FR"}}}}"#,
        );
        let ka = CacheKey::of_bytes("t", Some(&id), &a).unwrap();
        assert_eq!(
            Some(ka),
            CacheKey::of_bytes("t", Some(&id), &b),
            "the id is not part of it"
        );
        assert_ne!(Some(ka), CacheKey::of_bytes("t", Some(&id), &c));
        assert_ne!(Some(ka), CacheKey::of_bytes("t", None, &a));
        assert_ne!(
            ka,
            CacheKey::of("t", Some(&id), &a).unwrap(),
            "a separate key space"
        );
        let mut rewritten = a.clone();
        rewritten.kwargs_mut().insert("limit".into(), json!(5));
        assert!(CacheKey::of_bytes("t", Some(&id), &rewritten).is_none());
    }

    #[test]
    fn a_call_without_model_or_method_has_no_key() {
        let mut c = call("m", "read", json!([]), json!({}));
        c.method = None;
        let id = Identity::of(&Credential::Session("s".into()), b"k").unwrap();
        assert!(CacheKey::of("t", Some(&id), &c).is_none());
    }
}
