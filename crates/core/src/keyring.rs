//! The set of signing keys a server publishes and signs with: one active key per
//! algorithm, plus next and recently retired keys that stay in the JWKS so tokens
//! in flight keep verifying. Loaded from the store; missing keys are made on first
//! start.
//!
//! The lifecycle: a `next` key is published ahead of use (made at 90 % of the
//! rotation period), becomes active at the period's end while the old active key
//! is retired, and a retired key leaves the JWKS once every token it may have
//! signed has expired ([`RETIRED_KEY_RETENTION`]). A revoked key is gone at once:
//! not published and not trusted for verification.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::admin::TTL_RANGE;
use crate::clock::UnixTime;
use crate::id_token::ID_TOKEN_TTL;
use crate::jose::{JoseError, KeyEncryptionKey, SigningKey};
use crate::model::{Actor, ActorKind, AuditEvent, KeyState, SigningAlg, StoredKey};
use crate::ports::{Store, StoreError};
use crate::token::Signer;

/// How long a retired key stays published: the longest lifetime of anything it
/// signed (the longest access-token TTL an API may set, ID tokens, admin-API and
/// userinfo tokens), plus five minutes for JWKS caches and clock skew.
pub const RETIRED_KEY_RETENTION: i64 = max(*TTL_RANGE.end(), ID_TOKEN_TTL) + 300;

const fn max(a: i64, b: i64) -> i64 {
    if a > b { a } else { b }
}

#[derive(Debug, Default)]
pub struct KeyRing {
    keys: Vec<Arc<SigningKey>>,
    active: BTreeMap<SigningAlg, Arc<SigningKey>>,
    /// Retired keys: published until this time.
    published_until: HashMap<String, UnixTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key {kid}: {source}")]
    Key { kid: String, source: JoseError },
    #[error("the keys kept changing under this rotation; try again")]
    Busy,
}

impl KeyRing {
    pub fn new(mut keys: Vec<SigningKey>) -> Self {
        // A stable order keeps the JWKS document identical across restarts and instances.
        keys.sort_by(|a, b| a.kid.cmp(&b.kid));
        let keys: Vec<Arc<SigningKey>> = keys.into_iter().map(Arc::new).collect();
        // Several active keys of one algorithm happen briefly during a rotation or
        // when instances start together: every instance picks the newest.
        let mut active: BTreeMap<SigningAlg, Arc<SigningKey>> = BTreeMap::new();
        for k in &keys {
            if k.state == KeyState::Active {
                let newer = active
                    .get(&k.alg)
                    .is_none_or(|cur| (k.created_at, &k.kid) > (cur.created_at, &cur.kid));
                if newer {
                    active.insert(k.alg, k.clone());
                }
            }
        }
        Self {
            keys,
            active,
            published_until: HashMap::new(),
        }
    }

    /// Opens every stored key, and makes an active key for each algorithm that has none.
    pub async fn load_or_create(
        store: &dyn Store,
        kek: &KeyEncryptionKey,
        now: UnixTime,
    ) -> Result<Self, KeyRingError> {
        let ring = Self::load(store, kek).await?;
        let missing: Vec<SigningAlg> = SigningAlg::ALL
            .into_iter()
            .filter(|a| !ring.active.contains_key(a))
            .collect();
        if missing.is_empty() {
            return Ok(ring);
        }
        for alg in missing {
            let (_, stored) =
                SigningKey::generate(alg, KeyState::Active, kek, now).map_err(|source| {
                    KeyRingError::Key {
                        kid: "(new)".into(),
                        source,
                    }
                })?;
            store.insert_key(&stored).await?;
        }
        // Read back: another instance may have made keys at the same moment.
        Self::load(store, kek).await
    }

    /// Opens every stored key (no generation): what other instances do on a
    /// `Keys` change. Revoked keys are left out: nothing they signed verifies.
    pub async fn load(store: &dyn Store, kek: &KeyEncryptionKey) -> Result<Self, KeyRingError> {
        let mut keys = Vec::new();
        let mut published_until = HashMap::new();
        for stored in store.list_keys().await? {
            if stored.state == KeyState::Revoked {
                continue;
            }
            let key = SigningKey::open(&stored, kek).map_err(|source| KeyRingError::Key {
                kid: stored.kid.clone(),
                source,
            })?;
            if stored.state == KeyState::Retired {
                let since = stored.retired_at.unwrap_or(stored.created_at);
                published_until.insert(
                    stored.kid.clone(),
                    since.saturating_add(RETIRED_KEY_RETENTION),
                );
            }
            keys.push(key);
        }
        Ok(Self {
            published_until,
            ..Self::new(keys)
        })
    }

    /// Retires the active key of `alg` for a new one: the published `next` key
    /// if there is one, else a new key. Returns the new active kid.
    pub async fn rotate(
        store: &dyn Store,
        kek: &KeyEncryptionKey,
        alg: SigningAlg,
        now: UnixTime,
        actor: &Actor,
    ) -> Result<String, KeyRingError> {
        for _ in 0..3 {
            let kid = match next_key(store, alg).await? {
                Some(next) => next.kid,
                None => match insert_next(store, kek, alg, now).await? {
                    Some(kid) => kid,
                    // Another instance made one a moment ago: use it.
                    None => continue,
                },
            };
            let audit = rotation_event(actor, alg, &kid, now);
            if store.promote_next_key(&kid, now, &audit).await? {
                return Ok(kid);
            }
        }
        Err(KeyRingError::Busy)
    }

    /// Withdraws `kid` at once: it leaves the JWKS and nothing it signed
    /// verifies any more (the feed's `keys` event tells gateways). An active key
    /// is replaced first, so its algorithm keeps signing. Returns the kid of the
    /// replacement, if one was made.
    pub async fn revoke(
        store: &dyn Store,
        kek: &KeyEncryptionKey,
        kid: &str,
        now: UnixTime,
        actor: &Actor,
    ) -> Result<Option<String>, KeyRingError> {
        let keys = store.list_keys().await?;
        let key = keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(KeyRingError::Store(StoreError::NotFound))?;
        if key.state == KeyState::Revoked {
            return Ok(None);
        }
        let replacement = if key.state == KeyState::Active {
            Some(Self::rotate(store, kek, key.alg, now, actor).await?)
        } else {
            None
        };
        let audit = AuditEvent::new(
            actor,
            INSTALLATION,
            now,
            "key.revoked",
            kid,
            format!(
                "revoked the {} signing key `{kid}`: withdrawn from the JWKS, tokens it signed are refused",
                key.alg.as_str()
            ),
        );
        store.revoke_key(kid, now, &audit).await?;
        Ok(replacement)
    }

    /// The scheduled rotation, run periodically by every instance: for each
    /// algorithm whose active key is older than 90 % of `period`, publish a
    /// `next` key; at `period`, make it active. Safe with several instances on
    /// one database: the store lets exactly one of them make or promote a key,
    /// and a key is never made and promoted in one run (an instance reading the
    /// keys before another's promotion cannot rotate a second time). Returns
    /// the kids made active.
    pub async fn rotate_on_schedule(
        store: &dyn Store,
        kek: &KeyEncryptionKey,
        period: i64,
        now: UnixTime,
    ) -> Result<Vec<String>, KeyRingError> {
        let keys = store.list_keys().await?;
        let mut promoted = Vec::new();
        for alg in SigningAlg::ALL {
            let Some(active) = newest_active(&keys, alg) else {
                continue;
            };
            let age = now - active.activated_at.unwrap_or(active.created_at);
            let next = keys
                .iter()
                .find(|k| k.alg == alg && k.state == KeyState::Next);
            match next {
                Some(next) if age >= period => {
                    let audit = rotation_event(&scheduler(), alg, &next.kid, now);
                    if store.promote_next_key(&next.kid, now, &audit).await? {
                        promoted.push(next.kid.clone());
                    }
                }
                None if age >= period / 10 * 9 => {
                    insert_next(store, kek, alg, now).await?;
                }
                _ => {}
            }
        }
        Ok(promoted)
    }

    pub fn keys(&self) -> &[Arc<SigningKey>] {
        &self.keys
    }

    /// The JSON Web Key Set (RFC 7517 §5) at `now`: next, active, and retired
    /// keys until every token they signed has expired.
    ///
    /// The active keys come first: a verifier that can hold only so many keys
    /// (the gateway bounds its set) keeps the ones tokens are signed with now.
    pub fn jwks(&self, now: UnixTime) -> Value {
        let active = self.active.values();
        let others = self.keys.iter().filter(|k| {
            !self.active.values().any(|a| a.kid == k.kid)
                && self.published_until.get(&k.kid).is_none_or(|t| now < *t)
        });
        let keys: Vec<Value> = active
            .chain(others)
            .map(|k| k.public_jwk().clone())
            .collect();
        json!({ "keys": keys })
    }

    pub fn algorithms(&self) -> Vec<&'static str> {
        self.active.keys().map(|a| a.as_str()).collect()
    }
}

/// Audit events about signing keys belong to no one organization.
const INSTALLATION: &str = "";

/// Who the scheduled rotation acts as, in the audit log.
fn scheduler() -> Actor {
    Actor {
        kind: ActorKind::Operator,
        id: "gatehouse".into(),
        name: "scheduled key rotation".into(),
        org_id: None,
        address: "server".into(),
    }
}

fn rotation_event(actor: &Actor, alg: SigningAlg, kid: &str, now: UnixTime) -> AuditEvent {
    AuditEvent::new(
        actor,
        INSTALLATION,
        now,
        "key.rotated",
        kid,
        format!(
            "rotated the {} signing key: `{kid}` is active, the previous one retired",
            alg.as_str()
        ),
    )
}

fn newest_active(keys: &[StoredKey], alg: SigningAlg) -> Option<&StoredKey> {
    keys.iter()
        .filter(|k| k.alg == alg && k.state == KeyState::Active)
        .max_by_key(|k| (k.activated_at.unwrap_or(k.created_at), k.kid.clone()))
}

async fn next_key(store: &dyn Store, alg: SigningAlg) -> Result<Option<StoredKey>, StoreError> {
    Ok(store
        .list_keys()
        .await?
        .into_iter()
        .find(|k| k.alg == alg && k.state == KeyState::Next))
}

/// Publishes a new `next` key of `alg`; `None` when another instance's won.
async fn insert_next(
    store: &dyn Store,
    kek: &KeyEncryptionKey,
    alg: SigningAlg,
    now: UnixTime,
) -> Result<Option<String>, KeyRingError> {
    let (_, stored) = SigningKey::generate(alg, KeyState::Next, kek, now).map_err(|source| {
        KeyRingError::Key {
            kid: "(new)".into(),
            source,
        }
    })?;
    match store.insert_key(&stored).await {
        Ok(()) => Ok(Some(stored.kid)),
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl Signer for KeyRing {
    fn active(&self, alg: SigningAlg) -> Option<Arc<SigningKey>> {
        self.active.get(&alg).cloned()
    }
    fn by_kid(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.keys.iter().find(|k| k.kid == kid).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jwks_lists_the_active_keys_first() {
        let kek = KeyEncryptionKey::from_text(&KeyEncryptionKey::generate_text()).unwrap();
        let mut keys = Vec::new();
        // Many retired EdDSA keys and the next one, with kids that sort before
        // the active keys' kids as often as after.
        for i in 0..20 {
            let (mut k, _) =
                SigningKey::generate(SigningAlg::EdDSA, KeyState::Retired, &kek, i).unwrap();
            k.kid = format!("{i:02}-{}", k.kid);
            keys.push(k);
        }
        let (next, _) = SigningKey::generate(SigningAlg::EdDSA, KeyState::Next, &kek, 30).unwrap();
        keys.push(next);
        let mut active_kids = Vec::new();
        for alg in [SigningAlg::ES256, SigningAlg::EdDSA] {
            let (k, _) = SigningKey::generate(alg, KeyState::Active, &kek, 25).unwrap();
            active_kids.push(k.kid.clone());
            keys.push(k);
        }
        let ring = KeyRing::new(keys);
        let jwks = ring.jwks(100);
        let listed: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(listed.len(), 23);
        let mut first_two = listed[..2].to_vec();
        first_two.sort_unstable();
        active_kids.sort_unstable();
        assert_eq!(first_two, active_kids);
    }
}
