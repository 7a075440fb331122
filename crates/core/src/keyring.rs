//! The set of signing keys a server publishes and signs with: one active key per
//! algorithm, plus next and recently retired keys that stay in the JWKS so tokens
//! in flight keep verifying. Loaded from the store; missing keys are made on first
//! start.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::clock::UnixTime;
use crate::jose::{JoseError, KeyEncryptionKey, SigningKey};
use crate::model::{KeyState, SigningAlg};
use crate::ports::{Store, StoreError};
use crate::token::Signer;

#[derive(Debug, Default)]
pub struct KeyRing {
    keys: Vec<Arc<SigningKey>>,
    active: BTreeMap<SigningAlg, Arc<SigningKey>>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key {kid}: {source}")]
    Key { kid: String, source: JoseError },
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
        Self { keys, active }
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

    /// Opens every stored key (no generation): what other instances do on a `Keys` change.
    pub async fn load(store: &dyn Store, kek: &KeyEncryptionKey) -> Result<Self, KeyRingError> {
        let mut keys = Vec::new();
        for stored in store.list_keys().await? {
            let key = SigningKey::open(&stored, kek).map_err(|source| KeyRingError::Key {
                kid: stored.kid.clone(),
                source,
            })?;
            keys.push(key);
        }
        Ok(Self::new(keys))
    }

    /// Retires the active key of `alg` and makes a new active one.
    pub async fn rotate(
        store: &dyn Store,
        kek: &KeyEncryptionKey,
        alg: SigningAlg,
        now: UnixTime,
    ) -> Result<String, KeyRingError> {
        let (_, stored) =
            SigningKey::generate(alg, KeyState::Active, kek, now).map_err(|source| {
                KeyRingError::Key {
                    kid: "(new)".into(),
                    source,
                }
            })?;
        store.insert_key(&stored).await?;
        for old in store.list_keys().await? {
            if old.alg == alg && old.state == KeyState::Active && old.kid != stored.kid {
                store
                    .set_key_state(&old.kid, KeyState::Retired, now)
                    .await?;
            }
        }
        Ok(stored.kid)
    }

    pub fn keys(&self) -> &[Arc<SigningKey>] {
        &self.keys
    }

    /// The JSON Web Key Set (RFC 7517 §5) of every published key.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(|k| k.public_jwk().clone()).collect::<Vec<_>>() })
    }

    pub fn algorithms(&self) -> Vec<&'static str> {
        self.active.keys().map(|a| a.as_str()).collect()
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
