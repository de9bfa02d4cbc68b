//! Generation counters: how a write makes cached reads unreachable without scanning keys
//! (design.md §5).
//!
//! Three counters matter to a read: its tenant's, its model's, and its caller identity's
//! (logout and `?debug=` end one caller's entries). A read records them at its start
//! ([`Snapshot`]); its entry is stored with that snapshot only if the counters have not moved
//! by the time the answer is complete, and a hit is served only while they still match. A
//! write bumps the counters of what it may have changed.
//!
//! In memory the counters are a map of 64-bit hashes of their names (a collision only ties
//! two counters together: extra misses, never a stale hit). With Redis they live in Redis,
//! under an epoch that is created once per Redis dataset: if Redis loses its data, the new
//! epoch makes every snapshot taken before unreachable, so counters that start again from
//! zero cannot revive old entries. A bump that cannot reach Redis is remembered and turned
//! into a tenant-wide bump as soon as Redis answers again.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, RwLock};

use bridgecore_filters::cache::key::Identity;

use crate::redis_conn::{RedisConn, RedisError};

/// The counters a read depends on, as they were when it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The Redis dataset's epoch (0 in memory).
    pub epoch: u64,
    /// The tenant's counter.
    pub tenant: u64,
    /// The model's counter.
    pub model: u64,
    /// The caller identity's counter (0 for shared entries).
    pub identity: u64,
}

impl Snapshot {
    /// Whether an entry made under `self` may answer a read that started under `seen`: the
    /// same Redis dataset, and no counter behind what the read saw (a counter ahead of it
    /// means the entry was made after a write the read had not yet seen: fresher, not older).
    pub fn covers(&self, seen: &Snapshot) -> bool {
        self.epoch == seen.epoch
            && self.tenant >= seen.tenant
            && self.model >= seen.model
            && self.identity >= seen.identity
    }
}

/// What a bump covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bump<'a> {
    /// Everything of the tenant.
    Tenant,
    /// These models.
    Models(&'a [String]),
    /// One caller's entries.
    Identity(&'a Identity),
}

/// Why generations could not be read or bumped: the cache is bypassed meanwhile.
#[derive(Debug, thiserror::Error)]
#[error("cache generations unavailable: {0}")]
pub struct GenError(#[from] RedisError);

/// The counters, in memory or in Redis.
pub enum Gens {
    /// This process only.
    Local(LocalGens),
    /// Shared through Redis.
    Redis(RedisGens),
}

impl Gens {
    /// The counters `tenant`/`model`/`identity` now.
    pub async fn snapshot(
        &self,
        tenant: &str,
        model: &str,
        identity: Option<&Identity>,
    ) -> Result<Snapshot, GenError> {
        match self {
            Gens::Local(g) => Ok(g.snapshot(tenant, model, identity)),
            Gens::Redis(g) => g.snapshot(tenant, model, identity).await,
        }
    }

    /// Bumps what `bump` covers. With Redis, returns once Redis has it (or has failed; the
    /// failure is remembered and repaired by a tenant-wide bump later).
    pub async fn bump(&self, tenant: &str, bump: Bump<'_>) -> Result<(), GenError> {
        match self {
            Gens::Local(g) => {
                g.bump(tenant, &bump);
                Ok(())
            }
            Gens::Redis(g) => g.bump(tenant, &bump).await,
        }
    }
}

/// In-process counters.
#[derive(Default)]
pub struct LocalGens {
    counters: RwLock<HashMap<u64, u64>>,
    hasher: std::collections::hash_map::RandomState,
}

impl LocalGens {
    fn slot(&self, tenant: &str, kind: u8, name: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(tenant.as_bytes());
        h.write_u8(0xff);
        h.write_u8(kind);
        h.write(name);
        h.finish()
    }

    fn snapshot(&self, tenant: &str, model: &str, identity: Option<&Identity>) -> Snapshot {
        let t = self.slot(tenant, b't', b"");
        let m = self.slot(tenant, b'm', model.as_bytes());
        let i = identity.map(|id| self.slot(tenant, b'i', id.as_bytes()));
        let map = self
            .counters
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Snapshot {
            epoch: 0,
            tenant: map.get(&t).copied().unwrap_or(0),
            model: map.get(&m).copied().unwrap_or(0),
            identity: i.and_then(|i| map.get(&i).copied()).unwrap_or(0),
        }
    }

    fn bump(&self, tenant: &str, bump: &Bump<'_>) {
        let slots: Vec<u64> = match bump {
            Bump::Tenant => vec![self.slot(tenant, b't', b"")],
            Bump::Models(models) => models
                .iter()
                .map(|m| self.slot(tenant, b'm', m.as_bytes()))
                .collect(),
            Bump::Identity(id) => vec![self.slot(tenant, b'i', id.as_bytes())],
        };
        let mut map = self
            .counters
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for s in slots {
            *map.entry(s).or_insert(0) += 1;
        }
    }
}

/// Reads the epoch (creating it when missing) and the three counters in one round trip.
const SNAPSHOT_SCRIPT: &str = r"
local e = redis.call('GET', KEYS[1])
if not e then
  redis.call('SET', KEYS[1], ARGV[1], 'NX')
  e = redis.call('GET', KEYS[1])
end
return {e, redis.call('GET', KEYS[2]) or '0', redis.call('GET', KEYS[3]) or '0', redis.call('GET', KEYS[4]) or '0'}
";

/// Increments every key; identity counters expire with the sessions they follow.
const BUMP_SCRIPT: &str = r"
for i, k in ipairs(KEYS) do
  redis.call('INCR', k)
  if ARGV[i] == '1' then redis.call('EXPIRE', k, 2592000) end
end
return #KEYS
";

/// Counters in Redis.
pub struct RedisGens {
    conn: Arc<RedisConn>,
    snapshot: redis::Script,
    bump: redis::Script,
    /// Tenants with a bump Redis did not get: flushed whole before their next snapshot.
    dirty: Mutex<HashSet<String>>,
}

impl RedisGens {
    /// Counters on `conn`.
    pub fn new(conn: Arc<RedisConn>) -> Self {
        RedisGens {
            conn,
            snapshot: redis::Script::new(SNAPSHOT_SCRIPT),
            bump: redis::Script::new(BUMP_SCRIPT),
            dirty: Mutex::new(HashSet::new()),
        }
    }

    fn tenant_key(tenant: &str) -> String {
        format!("bc:cache:g:{tenant}:t")
    }

    async fn snapshot(
        &self,
        tenant: &str,
        model: &str,
        identity: Option<&Identity>,
    ) -> Result<Snapshot, GenError> {
        self.repair(tenant).await?;
        let ident = identity.map_or_else(
            || format!("bc:cache:g:{tenant}:i:-"),
            |id| format!("bc:cache:g:{tenant}:i:{}", id.short_hex()),
        );
        let mut inv = self.snapshot.prepare_invoke();
        inv.key("bc:cache:epoch")
            .key(Self::tenant_key(tenant))
            .key(format!("bc:cache:g:{tenant}:m:{model}"))
            .key(ident)
            .arg(uuid::Uuid::new_v4().as_u64_pair().0);
        let values: Vec<String> = self.conn.invoke(&inv).await?;
        let num = |i: usize| -> Result<u64, GenError> {
            values
                .get(i)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| GenError(RedisError::Protocol("bad generation".into())))
        };
        Ok(Snapshot {
            epoch: num(0)?,
            tenant: num(1)?,
            model: num(2)?,
            identity: if identity.is_some() { num(3)? } else { 0 },
        })
    }

    async fn bump(&self, tenant: &str, bump: &Bump<'_>) -> Result<(), GenError> {
        let mut inv = self.bump.prepare_invoke();
        match bump {
            Bump::Tenant => {
                inv.key(Self::tenant_key(tenant)).arg("0");
            }
            Bump::Models(models) => {
                for m in models.iter() {
                    inv.key(format!("bc:cache:g:{tenant}:m:{m}")).arg("0");
                }
            }
            Bump::Identity(id) => {
                inv.key(format!("bc:cache:g:{tenant}:i:{}", id.short_hex()))
                    .arg("1");
            }
        }
        match self.conn.invoke::<i64>(&inv).await {
            Ok(_) => Ok(()),
            Err(e) => {
                self.dirty
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(tenant.to_owned());
                Err(GenError(e))
            }
        }
    }

    /// A tenant-wide bump for a tenant whose earlier bump was lost.
    async fn repair(&self, tenant: &str) -> Result<(), GenError> {
        let dirty = self
            .dirty
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(tenant);
        if dirty {
            let _: i64 = self
                .conn
                .query(redis::cmd("INCR").arg(Self::tenant_key(tenant)))
                .await?;
            self.dirty
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(tenant);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bridgecore_filters::Credential;

    #[test]
    fn local_counters_move_only_for_what_was_bumped() {
        let g = LocalGens::default();
        let id = Identity::of(&Credential::Session("s".into()), b"k").unwrap();
        let other = Identity::of(&Credential::Session("t".into()), b"k").unwrap();
        let s0 = g.snapshot("a", "res.partner", Some(&id));
        assert_eq!(s0, g.snapshot("a", "res.partner", Some(&id)));
        g.bump("a", &Bump::Models(&["sale.order".to_owned()]));
        assert_eq!(s0, g.snapshot("a", "res.partner", Some(&id)));
        g.bump("a", &Bump::Models(&["res.partner".to_owned()]));
        let s1 = g.snapshot("a", "res.partner", Some(&id));
        assert_ne!(s0, s1);
        g.bump("b", &Bump::Tenant);
        assert_eq!(s1, g.snapshot("a", "res.partner", Some(&id)));
        g.bump("a", &Bump::Identity(&other));
        assert_eq!(s1, g.snapshot("a", "res.partner", Some(&id)));
        g.bump("a", &Bump::Identity(&id));
        let s2 = g.snapshot("a", "res.partner", Some(&id));
        assert_ne!(s1, s2);
        g.bump("a", &Bump::Tenant);
        assert_ne!(s2, g.snapshot("a", "res.partner", Some(&id)));
    }
}
