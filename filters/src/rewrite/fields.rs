//! What a caller may read of a model: `fields_get` answers, cached per tenant, model and
//! credential (issue 5 items 3 and 4).
//!
//! Field selection (`default_fields: exclude_binary`) and field expansion must know each
//! field's type, comodel and storage, and only the fields the caller may read: Odoo's
//! `fields_get` leaves out fields restricted to groups the user is not in, so the answer is
//! asked **with the caller's credential** ([`OdooClient::call_as`]) and cached per credential.
//! A schema changes only with a module upgrade, so answers live an hour (like
//! `cache.ttl.fields_get`); the catalog is bounded, and a new one is built per configuration
//! generation, so a reload starts empty.
//!
//! Credentials are never kept as they are: the key holds a salted SHA-256 of the credential
//! (a session id, a password, an API key), the salt random per catalog, so the memory of a
//! running BridgeCore holds no secret beyond the requests in flight.
//!
//! Concurrent misses for the same key each ask Odoo (no single flight): `fields_get` is cheap,
//! and the first answer stored is as good as the last.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::call::Credential;
use crate::odoo::{OdooClient, OdooError};

/// How long a `fields_get` answer is used. Schemas change with module upgrades only.
pub const FIELDS_TTL: Duration = Duration::from_secs(3600);

/// How many answers a catalog keeps (tenant × model × credential).
pub const FIELDS_CAPACITY: usize = 4096;

/// The attributes asked of `fields_get`: enough to select and expand fields, small enough to
/// keep thousands of models in memory.
pub const FIELD_ATTRIBUTES: &[&str] = &["type", "relation", "store", "groups", "string"];

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    tenant: String,
    model: String,
    identity: [u8; 32],
}

#[derive(Debug)]
struct Entry {
    fields: Arc<Map<String, Value>>,
    at: Instant,
}

/// Cached `fields_get` answers (see the module documentation).
#[derive(Debug)]
pub struct FieldsCatalog {
    entries: Mutex<HashMap<Key, Entry>>,
    ttl: Duration,
    capacity: usize,
    salt: [u8; 16],
}

impl Default for FieldsCatalog {
    fn default() -> Self {
        FieldsCatalog::new(FIELDS_TTL, FIELDS_CAPACITY)
    }
}

impl FieldsCatalog {
    /// A catalog keeping answers for `ttl`, at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        // A per-catalog random salt, from the standard library's randomly seeded hasher keys
        // (no extra dependency): identities are not comparable across catalogs or processes.
        let mut salt = [0u8; 16];
        for chunk in salt.chunks_mut(8) {
            let mut h = RandomState::new().build_hasher();
            h.write_u64(0x6272_6964_6765_636f);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
        FieldsCatalog {
            entries: Mutex::new(HashMap::new()),
            ttl,
            capacity: capacity.max(1),
            salt,
        }
    }

    /// The fields of `model` as `credential` sees them (`fields_get`'s answer: field name →
    /// attributes), from the catalog or asked of Odoo with that credential.
    pub async fn get(
        &self,
        odoo: &dyn OdooClient,
        tenant: &str,
        credential: &Credential,
        model: &str,
    ) -> Result<Arc<Map<String, Value>>, OdooError> {
        let key = Key {
            tenant: tenant.to_owned(),
            model: model.to_owned(),
            identity: self.identity(credential),
        };
        if let Some(hit) = self.lookup(&key) {
            return Ok(hit);
        }
        let mut kwargs = Map::new();
        kwargs.insert("attributes".into(), json!(FIELD_ATTRIBUTES));
        let answer = odoo
            .call_as(credential, model, "fields_get", Vec::new(), kwargs)
            .await?;
        let Value::Object(fields) = answer else {
            return Err(OdooError::Protocol(format!(
                "fields_get of {model} is not an object"
            )));
        };
        let fields = Arc::new(fields);
        self.store(key, fields.clone());
        Ok(fields)
    }

    /// How many answers are kept (expired ones included until they are pushed out).
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every answer.
    pub fn clear(&self) {
        if let Ok(mut e) = self.entries.lock() {
            e.clear();
        }
    }

    fn lookup(&self, key: &Key) -> Option<Arc<Map<String, Value>>> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(key)?;
        (entry.at.elapsed() < self.ttl).then(|| entry.fields.clone())
    }

    fn store(&self, key: Key, fields: Arc<Map<String, Value>>) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let ttl = self.ttl;
            entries.retain(|_, e| e.at.elapsed() < ttl);
            if entries.len() >= self.capacity {
                // Still full of live answers: drop the oldest.
                if let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.at)
                    .map(|(k, _)| k.clone())
                {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(
            key,
            Entry {
                fields,
                at: Instant::now(),
            },
        );
    }

    /// The salted hash of a credential: what the cache key holds instead of the secret.
    fn identity(&self, credential: &Credential) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        let mut part = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        match credential {
            Credential::None => part(b"none"),
            Credential::Session(sid) => {
                part(b"session");
                part(sid.as_bytes());
            }
            Credential::Password { db, uid, password } => {
                part(b"password");
                part(db.as_bytes());
                part(&uid.to_le_bytes());
                part(password.as_bytes());
            }
            Credential::ApiKey { key, db } => {
                part(b"api_key");
                part(key.as_bytes());
                part(db.as_deref().unwrap_or("").as_bytes());
            }
        }
        h.finalize().into()
    }
}

/// The type of `field` (`char`, `many2one`, `binary`, ...) in a `fields_get` answer.
pub fn field_type<'a>(fields: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    fields.get(field)?.get("type")?.as_str()
}

/// The comodel of a relational `field` (`many2one`, `one2many`, `many2many`), `None` for any
/// other field or an unknown one.
pub fn relation<'a>(fields: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    match field_type(fields, field)? {
        "many2one" | "one2many" | "many2many" => fields.get(field)?.get("relation")?.as_str(),
        _ => None,
    }
}

/// Whether `field` is stored in the database (`store` missing counts as stored, Odoo's
/// default for plain fields).
pub fn is_stored(fields: &Map<String, Value>, field: &str) -> bool {
    fields
        .get(field)
        .and_then(|f| f.get("store"))
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// The fields a `read` without `fields` gets under `default_fields: exclude_binary`: every
/// stored field of the answer that is not `binary`, in name order (the answer lists only what
/// the caller may read). Non-stored fields are left out as well: they are computed per
/// record, often expensively, and are what wide reads never need.
pub fn non_binary_stored(fields: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = fields
        .iter()
        .filter(|(name, _)| field_type(fields, name).is_some_and(|t| t != "binary"))
        .filter(|(name, _)| is_stored(fields, name))
        .map(|(name, _)| name.clone())
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::odoo::OdooReply;

    /// Answers `fields_get` with a fixed schema and counts calls; records the last request.
    #[derive(Default)]
    struct Schema {
        calls: AtomicUsize,
        last: Mutex<Option<Value>>,
    }

    #[async_trait]
    impl OdooClient for Schema {
        async fn json_rpc(
            &self,
            path: &str,
            params: Value,
            session_id: Option<&str>,
        ) -> Result<OdooReply, OdooError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            *self.last.lock().unwrap() =
                Some(json!({"path": path, "params": params, "session": session_id}));
            Ok(OdooReply {
                result: partner_fields(),
                session_id: None,
            })
        }
    }

    fn partner_fields() -> Value {
        json!({
            "id": {"type": "integer", "store": true},
            "name": {"type": "char", "store": true},
            "image_1920": {"type": "binary", "store": true},
            "avatar_128": {"type": "binary", "store": false},
            "display_name": {"type": "char", "store": false},
            "country_id": {"type": "many2one", "relation": "res.country", "store": true},
            "child_ids": {"type": "one2many", "relation": "res.partner", "store": true},
            "comment": {"type": "text", "store": true},
        })
    }

    #[tokio::test]
    async fn answers_are_cached_per_credential_and_asked_as_the_caller() {
        let odoo = Schema::default();
        let catalog = FieldsCatalog::default();
        let alice = Credential::Session("alice".into());
        let bob = Credential::Session("bob".into());
        let a1 = catalog
            .get(&odoo, "t", &alice, "res.partner")
            .await
            .unwrap();
        let a2 = catalog
            .get(&odoo, "t", &alice, "res.partner")
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&a1, &a2));
        assert_eq!(odoo.calls.load(Ordering::SeqCst), 1);
        let last = odoo.last.lock().unwrap().clone().unwrap();
        assert_eq!(last["session"], "alice");
        assert_eq!(last["params"]["method"], "fields_get");
        assert_eq!(
            last["params"]["kwargs"]["attributes"],
            json!(FIELD_ATTRIBUTES)
        );
        catalog.get(&odoo, "t", &bob, "res.partner").await.unwrap();
        catalog
            .get(&odoo, "u", &alice, "res.partner")
            .await
            .unwrap();
        assert_eq!(odoo.calls.load(Ordering::SeqCst), 3);
        assert_eq!(catalog.len(), 3);
        catalog.clear();
        assert!(catalog.is_empty());
    }

    #[tokio::test]
    async fn expired_answers_are_asked_again_and_the_size_is_bounded() {
        let odoo = Schema::default();
        let catalog = FieldsCatalog::new(Duration::ZERO, 2);
        let who = Credential::Session("s".into());
        catalog.get(&odoo, "t", &who, "a").await.unwrap();
        catalog.get(&odoo, "t", &who, "a").await.unwrap();
        assert_eq!(odoo.calls.load(Ordering::SeqCst), 2);
        for model in ["b", "c", "d"] {
            catalog.get(&odoo, "t", &who, model).await.unwrap();
        }
        assert!(catalog.len() <= 2);
    }

    #[test]
    fn identities_hide_the_secret_and_tell_credentials_apart() {
        let catalog = FieldsCatalog::default();
        let a = Credential::Password {
            db: "db".into(),
            uid: 2,
            password: "secret".into(),
        };
        let b = Credential::Password {
            db: "db".into(),
            uid: 2,
            password: "secreT".into(),
        };
        let id = catalog.identity(&a);
        assert_ne!(id, catalog.identity(&b));
        assert_eq!(id, catalog.identity(&a));
        assert!(!id.windows(6).any(|w| w == b"secret"));
        // Another catalog, another salt.
        assert_ne!(id, FieldsCatalog::default().identity(&a));
    }

    #[test]
    fn exclude_binary_keeps_stored_non_binary_fields() {
        let Value::Object(fields) = partner_fields() else {
            unreachable!()
        };
        assert_eq!(
            non_binary_stored(&fields),
            ["child_ids", "comment", "country_id", "id", "name"]
        );
        assert_eq!(relation(&fields, "country_id"), Some("res.country"));
        assert_eq!(relation(&fields, "name"), None);
        assert_eq!(relation(&fields, "nope"), None);
        assert_eq!(field_type(&fields, "image_1920"), Some("binary"));
    }
}
