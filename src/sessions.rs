//! BridgeCore's server-side login sessions (issue 3): what a `/api/v1/auth/login` created.
//!
//! The Odoo session BridgeCore obtained for the user stays here and is never sent to the
//! client; the client only holds BridgeCore's tokens, which name the session by its `sid`.
//! Verifying any token of a session (access or refresh) requires the session to exist, so:
//!
//! - **deleting a session is revoking it.** This store is the revocation list for `sid`s:
//!   logout deletes the session, and every token of that family fails from then on, on every
//!   instance sharing the store, with nothing else to consult;
//! - **refresh tokens rotate.** The session holds the `jti` of the one refresh token that is
//!   currently valid. Presenting it rotates to a new one ([`Rotation::Rotated`]); presenting
//!   any other `jti` for an existing session means a rotated-away token was replayed (stolen,
//!   or raced), so the whole session is deleted ([`Rotation::Reused`]) and both the thief and
//!   the user must log in again. The compare-and-set is atomic: of two concurrent refreshes
//!   with the same token, exactly one rotates, and the other counts as reuse.
//!
//! Backends: in memory (one instance), or Redis (`bc:sess:<sid>`, the session as JSON, expiring
//! with it; every instance sees the same sessions). With Redis configured but not answering,
//! operations fail with [`StoreError::Unavailable`] and the caller answers 503: authentication
//! never fails open, and never silently falls back to a store other instances cannot see.
//!
//! Expiry is `expires_at` (unix seconds): an expired session reads as absent in both backends
//! (Redis also drops it by TTL; the memory store purges lazily). A session that cannot be
//! decoded (written by an incompatible version) also reads as absent: its user logs in again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::redis_conn::{RedisConn, RedisError, KEY_PREFIX};

/// One login: who, on which tenant, with which Odoo session, until when.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LoginSession {
    /// BridgeCore's session id, named by the tokens' `sid` claim.
    pub sid: String,
    /// The tenant (system id) the user logged in to.
    pub tenant: String,
    /// The Odoo database.
    pub db: String,
    /// The Odoo user id.
    pub uid: i64,
    /// The login the user gave.
    pub login: String,
    /// The user's display name.
    pub name: String,
    /// Whether the user administers this tenant (admin endpoints).
    pub is_admin: bool,
    /// The Odoo `session_id` BridgeCore calls Odoo with on the user's behalf. Never leaves
    /// BridgeCore.
    pub odoo_session: String,
    /// The scopes the tokens grant.
    pub scopes: Vec<String>,
    /// The `jti` of the one refresh token currently valid for this session.
    pub refresh_jti: String,
    /// When the session ends (unix seconds): the refresh token's expiry.
    pub expires_at: u64,
}

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis is configured but did not answer (down, breaker open, timeout, error). The caller
    /// answers 503: a login or a token check must not succeed without the shared store.
    #[error("session store unavailable: {0}")]
    Unavailable(#[from] RedisError),
    /// The memory store holds `max` live sessions: new logins are refused until some expire
    /// or log out (see [`SessionStore::memory`]).
    #[error("too many active sessions (limit {max}): try again later")]
    Full {
        /// The configured bound.
        max: usize,
    },
    /// The session could not be written as JSON (not expected for this type).
    #[error("session could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The outcome of presenting a refresh token.
// Unboxed on purpose: one value per refresh request, moved once, and the glue matches on it
// directly; a `Box` would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Rotation {
    /// The presented `jti` was the current one: the session now holds the new `jti` and
    /// expiry (returned, updated).
    Rotated(LoginSession),
    /// The presented `jti` was not the current one: a rotated-away token was reused. The whole
    /// session (the token family) has been deleted.
    Reused,
    /// No such session (never existed, logged out, expired or revoked).
    Missing,
}

/// The current time in unix seconds; injectable so tests can move past an expiry.
pub type UnixClock = Arc<dyn Fn() -> u64 + Send + Sync>;

fn system_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Where login sessions live: in this process, or in the shared Redis.
pub struct SessionStore {
    backend: Backend,
    now: UnixClock,
}

enum Backend {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match &self.backend {
            Backend::Memory(m) => format!("memory(max {})", m.max),
            Backend::Redis(r) => format!("redis({})", r.conn.addr()),
        };
        f.debug_struct("SessionStore")
            .field("backend", &backend)
            .finish()
    }
}

impl SessionStore {
    /// Sessions in this process, at most `max_sessions` live ones (at least one).
    ///
    /// When full, expired sessions are dropped first; if all are live, the new login is
    /// refused ([`StoreError::Full`]) rather than evicting someone's live session: evicting
    /// would let a flood of logins log every real user out, while refusing only delays new
    /// logins until sessions expire or log out, and the bound is visible in the error.
    pub fn memory(max_sessions: usize) -> Self {
        SessionStore {
            backend: Backend::Memory(MemoryStore {
                max: max_sessions.max(1),
                map: Mutex::new(Sessions::default()),
            }),
            now: Arc::new(system_now),
        }
    }

    /// Sessions in Redis under `bc:sess:<sid>`, shared by every instance.
    pub fn redis(conn: Arc<RedisConn>) -> Self {
        SessionStore {
            backend: Backend::Redis(RedisStore {
                conn,
                rotate: redis::Script::new(ROTATE_LUA),
                take: redis::Script::new(TAKE_LUA),
            }),
            now: Arc::new(system_now),
        }
    }

    /// Replaces the clock (unix seconds), for tests.
    pub fn with_clock(mut self, now: UnixClock) -> Self {
        self.now = now;
        self
    }

    /// `"memory"` or `"redis"`, for logs and metrics.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis(_) => "redis",
        }
    }

    /// Stores `s` (replacing any session with its `sid`) until `s.expires_at`. A session that
    /// has already expired is not stored (and replaces nothing: any older one is removed).
    pub async fn put(&self, s: &LoginSession) -> Result<(), StoreError> {
        let now = (self.now)();
        match &self.backend {
            Backend::Memory(m) => m.put(s, now),
            Backend::Redis(r) => r.put(s, now).await,
        }
    }

    /// The live session `sid`, or `None` if there is none (or it has expired).
    pub async fn get(&self, sid: &str) -> Result<Option<Arc<LoginSession>>, StoreError> {
        let now = (self.now)();
        match &self.backend {
            Backend::Memory(m) => Ok(m.get(sid, now)),
            Backend::Redis(r) => Ok(r.get(sid, now).await?.map(Arc::new)),
        }
    }

    /// Presents refresh token `presented_jti` of session `sid`: rotates it to `new_jti` with
    /// the new expiry if it is the current one, deletes the session if it is not (reuse), and
    /// does nothing if there is no live session. A `new_expires_at` that is not in the future
    /// ends the session: it is deleted and [`Rotation::Missing`] returned.
    pub async fn rotate_refresh(
        &self,
        sid: &str,
        presented_jti: &str,
        new_jti: &str,
        new_expires_at: u64,
    ) -> Result<Rotation, StoreError> {
        let now = (self.now)();
        match &self.backend {
            Backend::Memory(m) => Ok(m.rotate(sid, presented_jti, new_jti, new_expires_at, now)),
            Backend::Redis(r) => {
                r.rotate(sid, presented_jti, new_jti, new_expires_at, now)
                    .await
            }
        }
    }

    /// Deletes session `sid` (logout, revocation) and returns it if it was live.
    pub async fn delete(&self, sid: &str) -> Result<Option<LoginSession>, StoreError> {
        let now = (self.now)();
        match &self.backend {
            Backend::Memory(m) => Ok(m.delete(sid, now)),
            Backend::Redis(r) => r.delete(sid, now).await,
        }
    }
}

// === memory ===

struct MemoryStore {
    max: usize,
    /// A `std` mutex: held for map operations only, never across an `.await`.
    /// Shared, so a lookup (one per token request) is a reference count, not eight copies.
    map: Mutex<Sessions>,
}

/// Login sessions by id. foldhash, not SipHash (looked up on every token request): the ids
/// are BridgeCore's own random ones, and a lookup's id comes from a token whose signature
/// verified, so no client chooses the keys; the seed is random per process.
type Sessions = HashMap<String, Arc<LoginSession>, foldhash::quality::RandomState>;

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, Sessions> {
        // Entries are replaced whole; a panic elsewhere cannot leave one half-written.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn put(&self, s: &LoginSession, now: u64) -> Result<(), StoreError> {
        let mut map = self.lock();
        if s.expires_at <= now {
            map.remove(&s.sid);
            return Ok(());
        }
        if !map.contains_key(&s.sid) && map.len() >= self.max {
            map.retain(|_, v| v.expires_at > now);
            if map.len() >= self.max {
                return Err(StoreError::Full { max: self.max });
            }
        }
        map.insert(s.sid.clone(), Arc::new(s.clone()));
        Ok(())
    }

    fn get(&self, sid: &str, now: u64) -> Option<Arc<LoginSession>> {
        let mut map = self.lock();
        match map.get(sid) {
            Some(s) if s.expires_at > now => Some(s.clone()),
            Some(_) => {
                map.remove(sid);
                None
            }
            None => None,
        }
    }

    fn rotate(
        &self,
        sid: &str,
        presented: &str,
        new_jti: &str,
        new_expires_at: u64,
        now: u64,
    ) -> Rotation {
        let mut map = self.lock();
        let Some(s) = map.get_mut(sid) else {
            return Rotation::Missing;
        };
        if s.expires_at <= now {
            map.remove(sid);
            return Rotation::Missing;
        }
        if s.refresh_jti != presented {
            map.remove(sid);
            return Rotation::Reused;
        }
        if new_expires_at <= now {
            map.remove(sid);
            return Rotation::Missing;
        }
        let s = Arc::make_mut(s);
        s.refresh_jti = new_jti.to_owned();
        s.expires_at = new_expires_at;
        Rotation::Rotated(s.clone())
    }

    fn delete(&self, sid: &str, now: u64) -> Option<LoginSession> {
        self.lock()
            .remove(sid)
            .filter(|s| s.expires_at > now)
            .map(Arc::unwrap_or_clone)
    }
}

// === redis ===

/// Compare-and-set of a session's JSON: `KEYS[1]` the session key, `ARGV[1]` the JSON read
/// before (whose `refresh_jti` matched), `ARGV[2]` the rotated JSON, `ARGV[3]` its TTL in
/// seconds. Returns 1 when swapped, 0 when the key is gone, 2 when it changed in between (a
/// concurrent refresh rotated first, so this presentation is reuse: the session is deleted).
/// Comparing the whole value rather than a field keeps the JSON out of Lua (cjson would
/// rewrite large integers and empty arrays).
const ROTATE_LUA: &str = r#"
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if cur ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 2
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"#;

/// `GET` and `DEL` in one step (like `GETDEL`, which needs Redis 6.2).
const TAKE_LUA: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur then redis.call('DEL', KEYS[1]) end
return cur
"#;

struct RedisStore {
    conn: Arc<RedisConn>,
    rotate: redis::Script,
    take: redis::Script,
}

/// `bc:sess:<sid>`.
fn session_key(sid: &str) -> String {
    format!("{KEY_PREFIX}sess:{sid}")
}

/// Reads a stored session; undecodable JSON reads as absent (see the module doc).
fn decode(sid: &str, raw: &str) -> Option<LoginSession> {
    match serde_json::from_str::<LoginSession>(raw) {
        Ok(s) => Some(s),
        Err(e) => {
            log::warn!(
                "session store: session {sid:.8}… cannot be read ({e}); treating it as absent"
            );
            None
        }
    }
}

impl RedisStore {
    async fn put(&self, s: &LoginSession, now: u64) -> Result<(), StoreError> {
        let key = session_key(&s.sid);
        if s.expires_at <= now {
            let () = self.conn.query(redis::cmd("DEL").arg(&key)).await?;
            return Ok(());
        }
        let json = serde_json::to_string(s)?;
        let () = self
            .conn
            .query(
                redis::cmd("SET")
                    .arg(&key)
                    .arg(json)
                    .arg("EX")
                    .arg(s.expires_at - now),
            )
            .await?;
        Ok(())
    }

    async fn read(
        &self,
        sid: &str,
        now: u64,
    ) -> Result<Option<(String, LoginSession)>, StoreError> {
        let raw: Option<String> = self
            .conn
            .query(redis::cmd("GET").arg(session_key(sid)))
            .await?;
        Ok(raw.and_then(|raw| {
            let s = decode(sid, &raw)?;
            // Another instance's clock may run behind: expiry is checked here too, not only by
            // Redis's TTL.
            (s.expires_at > now && s.sid == sid).then_some((raw, s))
        }))
    }

    async fn get(&self, sid: &str, now: u64) -> Result<Option<LoginSession>, StoreError> {
        Ok(self.read(sid, now).await?.map(|(_, s)| s))
    }

    async fn rotate(
        &self,
        sid: &str,
        presented: &str,
        new_jti: &str,
        new_expires_at: u64,
        now: u64,
    ) -> Result<Rotation, StoreError> {
        let key = session_key(sid);
        let Some((raw, session)) = self.read(sid, now).await? else {
            return Ok(Rotation::Missing);
        };
        if session.refresh_jti != presented || new_expires_at <= now {
            // Reuse (or an expiry in the past): the family ends. If a concurrent refresh
            // rotated it since the read, the presented jti is stale all the more.
            let () = self.conn.query(redis::cmd("DEL").arg(&key)).await?;
            return Ok(if session.refresh_jti != presented {
                Rotation::Reused
            } else {
                Rotation::Missing
            });
        }
        let mut rotated = session;
        rotated.refresh_jti = new_jti.to_owned();
        rotated.expires_at = new_expires_at;
        let json = serde_json::to_string(&rotated)?;
        let swapped: i64 = self
            .conn
            .invoke(
                self.rotate
                    .key(&key)
                    .arg(&raw)
                    .arg(json)
                    .arg(new_expires_at - now),
            )
            .await?;
        Ok(match swapped {
            1 => Rotation::Rotated(rotated),
            2 => Rotation::Reused,
            _ => Rotation::Missing,
        })
    }

    async fn delete(&self, sid: &str, now: u64) -> Result<Option<LoginSession>, StoreError> {
        let raw: Option<String> = self.conn.invoke(&self.take.key(session_key(sid))).await?;
        Ok(raw
            .and_then(|raw| decode(sid, &raw))
            .filter(|s| s.expires_at > now))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::redis_conn::tests::{test_redis, unique_prefix, CLOSED};

    const T0: u64 = 1_800_000_000;

    fn session(sid: &str, expires_at: u64) -> LoginSession {
        LoginSession {
            sid: sid.to_owned(),
            tenant: "odoo-prod".into(),
            db: "production_db".into(),
            uid: 9_007_199_254_740_993, // above 2^53: must survive the store exactly
            login: "admin".into(),
            name: "Mitchell Admin".into(),
            is_admin: true,
            odoo_session: "odoo-secret-session".into(),
            scopes: Vec::new(), // empty arrays must survive too
            refresh_jti: "jti-1".into(),
            expires_at,
        }
    }

    /// A clock standing at `T0` that the test moves.
    fn clock() -> (Arc<AtomicU64>, UnixClock) {
        let now = Arc::new(AtomicU64::new(T0));
        let read = now.clone();
        (now, Arc::new(move || read.load(Ordering::SeqCst)))
    }

    /// Both stores on the same moved clock (the Redis one only when Redis is there), each
    /// with a sid prefix of its own.
    async fn stores(test: &str) -> (Arc<AtomicU64>, Vec<(SessionStore, String)>) {
        let (now, c) = clock();
        let mut stores = vec![(
            SessionStore::memory(100).with_clock(c.clone()),
            format!("{test}-"),
        )];
        if let Some(conn) = test_redis(Duration::from_secs(1)).await {
            stores.push((SessionStore::redis(conn).with_clock(c), unique_prefix(test)));
        }
        (now, stores)
    }

    #[tokio::test]
    async fn put_get_delete() {
        let (_, stores) = stores("crud").await;
        for (store, p) in &stores {
            let sid = format!("{p}a");
            let s = session(&sid, T0 + 3_600);
            assert_eq!(store.get(&sid).await.unwrap(), None, "{}", store.backend());
            store.put(&s).await.unwrap();
            assert_eq!(store.get(&sid).await.unwrap().as_deref(), Some(&s));
            assert_eq!(store.delete(&sid).await.unwrap(), Some(s.clone()));
            assert_eq!(store.get(&sid).await.unwrap(), None);
            assert_eq!(store.delete(&sid).await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn redis_layout_is_json_under_bc_sess_with_the_session_ttl() {
        let Some(conn) = test_redis(Duration::from_secs(1)).await else {
            return;
        };
        let (_, c) = clock();
        let store = SessionStore::redis(conn.clone()).with_clock(c);
        let sid = unique_prefix("layout");
        store.put(&session(&sid, T0 + 600)).await.unwrap();
        let key = format!("bc:sess:{sid}");
        let ttl: i64 = conn.query(redis::cmd("TTL").arg(&key)).await.unwrap();
        assert!((599..=600).contains(&ttl), "{ttl}");
        let raw: String = conn.query(redis::cmd("GET").arg(&key)).await.unwrap();
        let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(v["refresh_jti"], "jti-1");
        let () = conn.query(redis::cmd("DEL").arg(&key)).await.unwrap();
    }

    #[tokio::test]
    async fn rotation_then_reuse_of_the_old_token_ends_the_family() {
        let (now, stores) = stores("rotate").await;
        for (store, p) in &stores {
            let sid = format!("{p}r");
            store.put(&session(&sid, T0 + 100)).await.unwrap();
            now.store(T0 + 50, Ordering::SeqCst);
            let Rotation::Rotated(s) = store
                .rotate_refresh(&sid, "jti-1", "jti-2", T0 + 500)
                .await
                .unwrap()
            else {
                panic!("{}: not rotated", store.backend());
            };
            assert_eq!(s.refresh_jti, "jti-2");
            assert_eq!(s.expires_at, T0 + 500);
            assert_eq!(store.get(&sid).await.unwrap().as_deref(), Some(&s));
            // The new token rotates again.
            assert!(matches!(
                store
                    .rotate_refresh(&sid, "jti-2", "jti-3", T0 + 600)
                    .await
                    .unwrap(),
                Rotation::Rotated(_)
            ));
            // Replaying an old one is reuse: the whole session goes.
            assert_eq!(
                store
                    .rotate_refresh(&sid, "jti-1", "jti-9", T0 + 600)
                    .await
                    .unwrap(),
                Rotation::Reused
            );
            assert_eq!(store.get(&sid).await.unwrap(), None);
            // Including the token that was current.
            assert_eq!(
                store
                    .rotate_refresh(&sid, "jti-3", "jti-4", T0 + 600)
                    .await
                    .unwrap(),
                Rotation::Missing
            );
            assert_eq!(
                store
                    .rotate_refresh(&format!("{p}none"), "x", "y", T0 + 600)
                    .await
                    .unwrap(),
                Rotation::Missing
            );
            now.store(T0, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn concurrent_refreshes_with_one_token_rotate_once() {
        let Some(conn) = test_redis(Duration::from_secs(1)).await else {
            return;
        };
        let (_, c) = clock();
        let store = Arc::new(SessionStore::redis(conn).with_clock(c));
        let sid = unique_prefix("race");
        store.put(&session(&sid, T0 + 100)).await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (store, sid) = (store.clone(), sid.clone());
                tokio::spawn(async move {
                    store
                        .rotate_refresh(&sid, "jti-1", &format!("new-{i}"), T0 + 200)
                        .await
                })
            })
            .collect();
        let mut rotated = 0;
        for t in tasks {
            if let Rotation::Rotated(_) = t.await.unwrap().unwrap() {
                rotated += 1;
            }
        }
        // Exactly one wins (the first write is always a successful swap); every loser saw
        // a rotated token and ended the family, or found it gone.
        assert_eq!(rotated, 1);
    }

    #[tokio::test]
    async fn expired_sessions_read_as_absent() {
        let (now, stores) = stores("expiry").await;
        for (store, p) in &stores {
            let sid = format!("{p}e");
            store.put(&session(&sid, T0 + 10)).await.unwrap();
            now.store(T0 + 9, Ordering::SeqCst);
            assert!(store.get(&sid).await.unwrap().is_some());
            now.store(T0 + 10, Ordering::SeqCst);
            assert_eq!(store.get(&sid).await.unwrap(), None, "{}", store.backend());
            assert_eq!(
                store
                    .rotate_refresh(&sid, "jti-1", "jti-2", T0 + 100)
                    .await
                    .unwrap(),
                Rotation::Missing
            );
            // Putting an already expired session stores nothing.
            store.put(&session(&sid, T0 + 10)).await.unwrap();
            assert_eq!(store.get(&sid).await.unwrap(), None);
            // Rotating to an expiry in the past ends the session.
            now.store(T0, Ordering::SeqCst);
            store.put(&session(&sid, T0 + 10)).await.unwrap();
            assert_eq!(
                store
                    .rotate_refresh(&sid, "jti-1", "jti-2", T0)
                    .await
                    .unwrap(),
                Rotation::Missing
            );
            assert_eq!(store.get(&sid).await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn memory_store_is_bounded_without_evicting_live_sessions() {
        let (now, c) = clock();
        let store = SessionStore::memory(2).with_clock(c);
        store.put(&session("a", T0 + 10)).await.unwrap();
        store.put(&session("b", T0 + 100)).await.unwrap();
        // Full of live sessions: the new login is refused, nobody is logged out.
        let err = store.put(&session("c", T0 + 100)).await.unwrap_err();
        assert!(matches!(err, StoreError::Full { max: 2 }), "{err}");
        assert!(store.get("a").await.unwrap().is_some());
        assert!(store.get("b").await.unwrap().is_some());
        // Replacing an existing session is not a new one.
        store.put(&session("b", T0 + 200)).await.unwrap();
        // Once one has expired, it makes room.
        now.store(T0 + 10, Ordering::SeqCst);
        store.put(&session("c", T0 + 100)).await.unwrap();
        assert!(store.get("a").await.unwrap().is_none());
        assert!(store.get("c").await.unwrap().is_some());
        // Logout frees a place too.
        assert!(store.delete("b").await.unwrap().is_some());
        store.put(&session("d", T0 + 100)).await.unwrap();
    }

    #[test]
    fn futures_are_send() {
        fn send<T: Send>(_: &T) {}
        let store = SessionStore::memory(1);
        let s = session("s", T0);
        send(&store.put(&s));
        send(&store.get("s"));
        send(&store.rotate_refresh("s", "a", "b", T0));
        send(&store.delete("s"));
    }

    #[tokio::test]
    async fn redis_down_is_unavailable_never_absent() {
        let conn = Arc::new(RedisConn::new(CLOSED, Duration::from_millis(50)).unwrap());
        let store = SessionStore::redis(conn);
        let s = session("x", system_now() + 100);
        assert!(matches!(
            store.put(&s).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            store.get("x").await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            store
                .rotate_refresh("x", "a", "b", system_now() + 100)
                .await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            store.delete("x").await,
            Err(StoreError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn undecodable_sessions_read_as_absent() {
        let Some(conn) = test_redis(Duration::from_secs(1)).await else {
            return;
        };
        let store = SessionStore::redis(conn.clone());
        let sid = unique_prefix("corrupt");
        let () = conn
            .query(
                redis::cmd("SET")
                    .arg(format!("bc:sess:{sid}"))
                    .arg("{not json")
                    .arg("EX")
                    .arg(60),
            )
            .await
            .unwrap();
        assert_eq!(store.get(&sid).await.unwrap(), None);
        assert_eq!(
            store
                .rotate_refresh(&sid, "a", "b", system_now() + 100)
                .await
                .unwrap(),
            Rotation::Missing
        );
        assert_eq!(store.delete(&sid).await.unwrap(), None);
    }
}
