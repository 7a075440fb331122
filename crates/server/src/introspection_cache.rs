//! Introspection without the store on the hot path: the introspecting APIs'
//! records (their secret is still checked on every request) and the standing of
//! tokens found active, with their answer already serialised. Entries follow the
//! change feed through [`ClientCache`](crate::cache::ClientCache), which calls [`FeedListener`] for every
//! change it applies: a revoked token, a revoked grant, a changed app or user,
//! a key change, or any API or organization change drops what it touches.
//!
//! What is never cached: a failed authentication, a token issued with a client
//! secret that has an expiry (its end is announced by no change), and any token
//! that is not active (unknown, forged, expired, revoked, not visible to the asker). A flood
//! of unknown tokens therefore costs store lookups but no memory; active tokens
//! are bounded by [`MAX_TOKENS`]. An entry is only trusted while the feed is
//! current ([`ClientCache::current`](crate::cache::ClientCache::current)), and one loaded while an invalidation ran
//! is used once but not kept (the same epoch guard as the client cache).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use gatehouse_core::clock::UnixTime;
use gatehouse_core::context::ContextSource;
use gatehouse_core::introspect::{
    Introspector, MAX_TOKEN_LEN, active_answer, still_valid, verified_claims,
};
use gatehouse_core::model::{Api, ChangeKind};
use gatehouse_core::ports::StoreResult;
use gatehouse_core::token::AccessClaims;

use crate::cache::FeedListener;

/// Active tokens remembered at most (about 2 KiB each with their key).
pub const MAX_TOKENS: usize = 20_000;
/// Introspecting APIs remembered at most.
const MAX_APIS: usize = 10_000;

const INACTIVE: &[u8] = br#"{"active":false}"#;

/// A token found active: its claims, for the per-request checks, and its answer.
struct Standing {
    claims: AccessClaims,
    answer: Bytes,
}

#[derive(Clone, Default)]
pub struct IntrospectionCache(Arc<Inner>);

#[derive(Default)]
struct Inner {
    apis: RwLock<HashMap<String, Arc<Api>>>,
    /// Keyed by the token as presented, and the whole string is compared, so
    /// only that very token gets its answer (a SHA-256 of a JWT would cost a
    /// fifth of the whole request). Hashed with seeded foldhash, not std's
    /// SipHash (a fortieth of a JWT introspection's instructions): only
    /// tokens this server issued and found active are ever inserted, so no
    /// caller chooses the keys a flood of collisions would need.
    tokens: RwLock<HashMap<Box<str>, Arc<Standing>, foldhash::fast::RandomState>>,
    epoch: AtomicU64,
}

impl IntrospectionCache {
    /// What the client cache must be given so that this one follows the feed.
    pub fn listener(&self) -> Arc<dyn FeedListener> {
        self.0.clone()
    }

    /// The epoch to pass back to [`Self::remember_api`].
    pub fn epoch(&self) -> u64 {
        self.0.epoch.load(Ordering::Acquire)
    }

    /// The API whose client id this is, if cached (its secret is not checked here).
    pub fn api(&self, client_id: &str) -> Option<Arc<Api>> {
        self.0.apis.read().ok()?.get(client_id).cloned()
    }

    /// Keeps an API whose secret was just verified, unless a change was applied
    /// since `epoch` (it may be older than that change).
    pub fn remember_api(&self, api: Arc<Api>, epoch: u64) {
        if let Ok(mut m) = self.0.apis.write()
            && self.epoch() == epoch
        {
            if m.len() >= MAX_APIS {
                m.clear();
            }
            m.insert(api.client_id.clone(), api);
        }
    }

    /// Drops everything (signing keys reloaded: a JWT's verdict may differ).
    pub fn clear(&self) {
        self.0.cleared();
    }

    /// The introspection answer (RFC 7662 §2.2) for `token` asked by `who`, as
    /// JSON: from the cache when `trusted` (the feed is current:
    /// [`ClientCache::current`](crate::cache::ClientCache::current)), else as [`gatehouse_core::introspect::introspect`]
    /// decides, remembering an active one.
    pub async fn answer(
        &self,
        token: &str,
        who: &Introspector,
        trusted: bool,
        state: &crate::state::Inner,
    ) -> StoreResult<Bytes> {
        let now = state.clock.now();
        let keys = state.keys();
        let (signer, store, clients) = (keys.as_ref(), state.store.as_ref(), &state.clients);
        if token.len() > MAX_TOKEN_LEN {
            return Ok(Bytes::from_static(INACTIVE));
        }
        if trusted && let Some(hit) = self.token(token) {
            return Ok(shown(&hit, who, now));
        }
        let epoch = self.epoch();
        // The checks in `introspect`'s order: the cheap ones before the store's.
        let Some(claims) = verified_claims(token, signer, store).await? else {
            return Ok(Bytes::from_static(INACTIVE));
        };
        if !who.sees(&claims)
            || claims.exp <= now
            || !still_valid(&claims, now, store, clients).await?
        {
            return Ok(Bytes::from_static(INACTIVE));
        }
        // A token of a secret in its grace period ends at the secret's expiry,
        // which no change announces: such answers are not kept.
        let ends_early = match &claims.csid {
            Some(id) => clients
                .client_context(&claims.client_id)
                .await?
                .active_secret(id, now)
                .is_none_or(|s| s.expires_at.is_some()),
            None => false,
        };
        let answer = serde_json::to_vec(&active_answer(&claims))
            .map_err(|e| gatehouse_core::ports::StoreError::Internal(e.to_string()))?;
        let standing = Arc::new(Standing {
            claims,
            answer: Bytes::from(answer),
        });
        if trusted && !ends_early {
            self.remember_token(token, standing.clone(), epoch, now);
        }
        Ok(standing.answer.clone())
    }

    fn token(&self, key: &str) -> Option<Arc<Standing>> {
        self.0.tokens.read().ok()?.get(key).cloned()
    }

    fn remember_token(&self, token: &str, standing: Arc<Standing>, epoch: u64, now: UnixTime) {
        if let Ok(mut m) = self.0.tokens.write()
            && self.epoch() == epoch
        {
            if m.len() >= MAX_TOKENS {
                m.retain(|_, s| s.claims.exp > now);
                if m.len() >= MAX_TOKENS {
                    m.clear();
                }
            }
            m.insert(token.into(), standing);
        }
    }

    pub fn token_count(&self) -> usize {
        self.0.tokens.read().map(|m| m.len()).unwrap_or(0)
    }
}

/// A cached active token, as `who` sees it at `now`.
fn shown(s: &Standing, who: &Introspector, now: UnixTime) -> Bytes {
    if who.sees(&s.claims) && s.claims.exp > now {
        s.answer.clone()
    } else {
        Bytes::from_static(INACTIVE)
    }
}

impl FeedListener for Inner {
    fn changed(&self, kind: ChangeKind, key: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        // Every rule of `still_valid` reads one of these: the token (jti), its
        // grant (gid), its app (client_id, whose context also names the acting
        // user) and its user (sub: the acting user and the grant's user both
        // must be the token's subject).
        let keep: fn(&AccessClaims, &str) -> bool = match kind {
            ChangeKind::Token => |c, k| c.jti != k,
            ChangeKind::Grant => |c, k| c.gid.as_deref() != Some(k),
            ChangeKind::App => |c, k| c.client_id != k,
            ChangeKind::User => |c, k| c.sub != k,
            ChangeKind::Api | ChangeKind::Org | ChangeKind::Keys => {
                self.cleared();
                return;
            }
        };
        if let Ok(mut m) = self.tokens.write() {
            m.retain(|_, s| keep(&s.claims, key));
        }
    }

    fn cleared(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut m) = self.tokens.write() {
            m.clear();
        }
        if let Ok(mut m) = self.apis.write() {
            m.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(jti: &str, gid: Option<&str>, client_id: &str, sub: &str) -> AccessClaims {
        AccessClaims {
            iss: "https://issuer.test".into(),
            sub: sub.into(),
            aud: "https://api.test".into(),
            client_id: client_id.into(),
            scope: "s".into(),
            jti: jti.into(),
            iat: 0,
            exp: 100,
            org: "o".into(),
            role: "r".into(),
            permissions: vec![],
            groups: vec![],
            cgen: 1,
            gid: gid.map(str::to_owned),
            csid: None,
            act: None,
            cnf: None,
        }
    }

    /// Four cached tokens: t1 (app a, user u, grant g), t2 (app a, user v), t3
    /// (app b, user u), t4 (app b, user w).
    fn filled() -> IntrospectionCache {
        let cache = IntrospectionCache::default();
        for c in [
            claims("t1", Some("g"), "a", "u"),
            claims("t2", None, "a", "v"),
            claims("t3", None, "b", "u"),
            claims("t4", None, "b", "w"),
        ] {
            let key = c.jti.clone();
            let standing = Arc::new(Standing {
                claims: c,
                answer: Bytes::new(),
            });
            cache.remember_token(&key, standing, cache.epoch(), 0);
        }
        assert_eq!(cache.token_count(), 4);
        cache
    }

    fn cached(cache: &IntrospectionCache) -> Vec<String> {
        let mut v: Vec<String> = ["t1", "t2", "t3", "t4"]
            .into_iter()
            .filter(|t| cache.token(t).is_some())
            .map(str::to_owned)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn each_change_drops_exactly_the_tokens_it_touches() {
        let table: &[(ChangeKind, &str, &[&str])] = &[
            (ChangeKind::Token, "t2", &["t1", "t3", "t4"]),
            (ChangeKind::Grant, "g", &["t2", "t3", "t4"]),
            (ChangeKind::App, "a", &["t3", "t4"]),
            (ChangeKind::User, "u", &["t2", "t4"]),
            (ChangeKind::Api, "x", &[]),
            (ChangeKind::Org, "x", &[]),
            (ChangeKind::Keys, "x", &[]),
        ];
        for (kind, key, left) in table {
            let cache = filled();
            cache.0.changed(*kind, key);
            assert_eq!(cached(&cache), *left, "{kind:?} {key}");
        }
    }

    #[test]
    fn an_entry_loaded_across_a_change_is_not_kept() {
        let cache = IntrospectionCache::default();
        let before = cache.epoch();
        cache.0.changed(ChangeKind::Token, "elsewhere");
        let c = claims("t1", None, "a", "u");
        let standing = Arc::new(Standing {
            claims: c,
            answer: Bytes::new(),
        });
        cache.remember_token("t1", standing, before, 0);
        assert_eq!(cache.token_count(), 0);
    }

    #[test]
    fn the_token_cache_is_bounded() {
        let cache = IntrospectionCache::default();
        for i in 0..MAX_TOKENS + 10 {
            let jti = format!("t{i}");
            let standing = Arc::new(Standing {
                claims: claims(&jti, None, "a", "u"),
                answer: Bytes::new(),
            });
            cache.remember_token(&jti, standing, cache.epoch(), 0);
        }
        assert!(cache.token_count() <= MAX_TOKENS);
    }

    #[test]
    fn an_api_change_drops_the_cached_apis() {
        let cache = IntrospectionCache::default();
        let api = Api {
            id: "i".into(),
            org_id: "o".into(),
            name: "n".into(),
            audience: "https://api.test".into(),
            scopes: vec![],
            token_format: gatehouse_core::model::TokenFormat::Jwt,
            signing_alg: gatehouse_core::model::SigningAlg::ES256,
            access_token_ttl: 60,
            client_id: "api-client".into(),
            secret_hash: "h".into(),
            created_at: 0,
        };
        cache.remember_api(Arc::new(api), cache.epoch());
        assert!(cache.api("api-client").is_some());
        cache.0.changed(ChangeKind::Api, "https://other.test");
        assert!(cache.api("api-client").is_none());
    }
}
