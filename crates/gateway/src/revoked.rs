//! What the revocation feed has ended, kept compact: every id is reduced to the
//! first 128 bits of its SHA-256 (collisions are out of reach, and a map entry
//! costs 16 bytes of key instead of a heap string), so 100 000 revoked grants fit
//! in a few megabytes. The rules mirror `gatehouse_core::introspect::still_valid`.

use std::collections::HashMap;

use gatehouse_core::admin::TTL_RANGE;
use gatehouse_core::feed::FeedEvent;
use sha2::{Digest, Sha256};

use crate::principal::Claims;

type Id = u128;

/// How long after a user's `tokens_valid_after` a token issued before it can
/// still pass `exp`: the longest access token lifetime an API may have, plus more
/// than the largest clock leeway. Past that the entry says nothing and goes.
const ENDED_TOKENS_OUTLIVE: i64 = *TTL_RANGE.end() + 3600;

fn id(s: &str) -> Id {
    let d = Sha256::digest(s.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    u128::from_le_bytes(b)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientState {
    generation: i64,
    active: bool,
    /// The app's secrets that were retired or expire, with when: tokens
    /// issued with one (`csid`) end then. Empty for most apps.
    secret_ends: Box<[(Id, i64)]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UserState {
    active: bool,
    may_authorize: bool,
}

/// What a token hangs from, for [`Revoked::check_subject`].
pub(crate) struct Subject<'a> {
    pub client_id: &'a str,
    /// The app's credential generation at issue; `None` when not known
    /// (introspection answers may not say).
    pub generation: Option<i64>,
    pub jti: &'a str,
    pub sub: &'a str,
    /// When the token was issued; `None` when not known (then a user's
    /// `tokens_valid_after` refuses it).
    pub iat: Option<i64>,
    pub grant: GrantRef<'a>,
}

#[derive(Clone, Copy)]
pub(crate) enum GrantRef<'a> {
    /// A machine token acting for `sub`.
    Machine,
    /// A token `sub` granted.
    Grant(&'a str),
    /// Not known (an introspection answer without `gid`).
    Unknown,
}

/// The ended subjects known from the feed.
#[derive(Debug, Default)]
pub struct Revoked {
    clients: HashMap<Id, ClientState>,
    /// Only users who are not in good standing.
    users: HashMap<Id, UserState>,
    /// Per user, the `tokens_valid_after` of their last deactivation: tokens
    /// issued at or before it stay ended after re-activation. Forgotten once every
    /// such token has expired ([`Revoked::prune`]).
    ended_before: HashMap<Id, i64>,
    /// Revoked grants, with when this gateway learned of each: a grant's
    /// tokens were all issued before its revocation, so none outlives
    /// [`ENDED_TOKENS_OUTLIVE`] after it, and the entry goes then
    /// ([`Revoked::prune`]). Without that the set grew for as long as the
    /// gateway ran.
    grants: HashMap<Id, i64>,
    /// Revoked access tokens, with their expiry for pruning.
    tokens: HashMap<Id, i64>,
}

impl Revoked {
    /// Takes in one feed event, learned at `now`.
    pub fn apply(&mut self, event: &FeedEvent, now: i64) {
        match event {
            FeedEvent::Client {
                client_id,
                generation,
                active,
                secret_ends,
            } => {
                self.clients.insert(
                    id(client_id),
                    ClientState {
                        generation: *generation,
                        active: *active,
                        secret_ends: secret_ends
                            .iter()
                            .map(|e| (id(&e.secret_id), e.at))
                            .collect(),
                    },
                );
            }
            FeedEvent::User {
                user_id,
                active,
                may_authorize,
                tokens_valid_after,
            } => {
                if *tokens_valid_after > 0 {
                    // Never lowered: a deactivation ends tokens for good.
                    let at = self.ended_before.entry(id(user_id)).or_insert(0);
                    *at = (*at).max(*tokens_valid_after);
                }
                if *active && *may_authorize {
                    self.users.remove(&id(user_id));
                } else {
                    self.users.insert(
                        id(user_id),
                        UserState {
                            active: *active,
                            may_authorize: *may_authorize,
                        },
                    );
                }
            }
            FeedEvent::Grant { grant_id } => {
                // The first learning counts: a replayed feed page never
                // extends it.
                self.grants.entry(id(grant_id)).or_insert(now);
            }
            FeedEvent::Token { jti, exp } => {
                self.tokens.insert(id(jti), *exp);
            }
            FeedEvent::Keys => {}
        }
    }

    /// Why these claims have ended, if they have.
    pub(crate) fn check(&self, c: &Claims) -> Option<&'static str> {
        self.check_subject(&Subject {
            client_id: &c.client_id,
            generation: Some(c.cgen),
            jti: &c.jti,
            sub: &c.sub,
            iat: Some(c.iat),
            grant: match &c.gid {
                None => GrantRef::Machine,
                Some(g) => GrantRef::Grant(g),
            },
        })
    }

    /// Why the token described by `s` has ended, as far as the feed can tell.
    pub(crate) fn check_subject(&self, s: &Subject<'_>) -> Option<&'static str> {
        if let Some(app) = self.clients.get(&id(s.client_id)) {
            if !app.active {
                return Some("the app was deleted or disabled");
            }
            if s.generation.is_some_and(|g| g < app.generation) {
                return Some("the app's secret was rotated or its on-behalf user changed");
            }
        }
        if !self.tokens.is_empty() && !s.jti.is_empty() && self.tokens.contains_key(&id(s.jti)) {
            return Some("the token was revoked");
        }
        if !self.ended_before.is_empty()
            && let Some(after) = self.ended_before.get(&id(s.sub))
            && s.iat.is_none_or(|iat| iat <= *after)
        {
            return Some("the token was issued before its user was deactivated");
        }
        let user = if self.users.is_empty() {
            None
        } else {
            self.users.get(&id(s.sub))
        };
        match s.grant {
            GrantRef::Machine => user
                .filter(|u| !u.active)
                .map(|_| "the user the app acts for is deactivated"),
            GrantRef::Grant(gid) => {
                if !self.grants.is_empty() && self.grants.contains_key(&id(gid)) {
                    return Some("the grant was revoked");
                }
                user.filter(|u| !u.may_authorize)
                    .map(|_| "the user may no longer authorize apps")
            }
            // Which rule applies is not known: only what ends both kinds.
            GrantRef::Unknown => user
                .filter(|u| !u.active)
                .map(|_| "the user is deactivated"),
        }
    }

    /// Whether the client secret a token was issued with (`csid`) was retired
    /// or expired by `now`. Tokens without `csid` (issued before apps had more
    /// than one secret) answer only to the generation.
    pub(crate) fn secret_ended(
        &self,
        client_id: &str,
        csid: Option<&str>,
        now: i64,
    ) -> Option<&'static str> {
        let csid = id(csid?);
        let app = self.clients.get(&id(client_id))?;
        app.secret_ends
            .iter()
            .any(|(s, at)| *s == csid && now >= *at)
            .then_some("the client secret it was issued with was retired or expired")
    }

    /// Forgets revoked tokens that expired before `now`, and deactivation times
    /// and revoked grants every token from before has outlived (they fail on
    /// `exp` anyway).
    pub fn prune(&mut self, now: i64) {
        self.tokens.retain(|_, exp| *exp >= now);
        self.grants
            .retain(|_, at| at.saturating_add(ENDED_TOKENS_OUTLIVE) >= now);
        self.ended_before
            .retain(|_, at| at.saturating_add(ENDED_TOKENS_OUTLIVE) >= now);
    }

    pub fn counts(&self) -> (usize, usize, usize, usize) {
        (
            self.clients.len(),
            self.users.len(),
            self.grants.len(),
            self.tokens.len(),
        )
    }

    /// Heap bytes held by the tables (capacity, keys, values and hashbrown's one
    /// control byte per bucket).
    pub fn heap_bytes(&self) -> usize {
        fn table<K, V>(cap: usize) -> usize {
            // hashbrown keeps buckets at ≥ 8/7 of capacity, rounded to a power of two.
            let buckets = (cap * 8 / 7).next_power_of_two().max(4);
            buckets * (std::mem::size_of::<(K, V)>() + 1)
        }
        let secret_ends: usize = self
            .clients
            .values()
            .map(|c| c.secret_ends.len() * std::mem::size_of::<(Id, i64)>())
            .sum();
        table::<Id, ClientState>(self.clients.capacity())
            + secret_ends
            + table::<Id, UserState>(self.users.capacity())
            + table::<Id, i64>(self.ended_before.capacity())
            + table::<Id, i64>(self.grants.capacity())
            + table::<Id, i64>(self.tokens.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(client: &str, cgen: i64, sub: &str, gid: Option<&str>, jti: &str) -> Claims {
        serde_json::from_value(serde_json::json!({
            "iss": "i", "aud": "a", "iat": 1, "exp": 2, "client_id": client, "cgen": cgen,
            "sub": sub, "gid": gid, "jti": jti,
        }))
        .unwrap()
    }

    #[test]
    fn a_newer_generation_ends_older_tokens_only() {
        let mut r = Revoked::default();
        r.apply(
            &FeedEvent::Client {
                client_id: "c".into(),
                generation: 2,
                active: true,
                secret_ends: Vec::new(),
            },
            0,
        );
        assert!(r.check(&claims("c", 1, "u", None, "j")).is_some());
        assert!(r.check(&claims("c", 2, "u", None, "j")).is_none());
        // A token newer than what the feed has shown so far is not refused.
        assert!(r.check(&claims("c", 3, "u", None, "j")).is_none());
        r.apply(
            &FeedEvent::Client {
                client_id: "c".into(),
                generation: i64::MAX,
                active: false,
                secret_ends: Vec::new(),
            },
            0,
        );
        assert!(r.check(&claims("c", 3, "u", None, "j")).is_some());
    }

    #[test]
    fn a_retired_or_expiring_secret_ends_its_tokens_only_from_its_time() {
        use gatehouse_core::feed::SecretEnd;
        let mut r = Revoked::default();
        assert!(r.secret_ended("c", Some("old"), 100).is_none());
        r.apply(
            &FeedEvent::Client {
                client_id: "c".into(),
                generation: 1,
                active: true,
                secret_ends: vec![SecretEnd {
                    secret_id: "old".into(),
                    at: 100,
                }],
            },
            0,
        );
        assert!(r.secret_ended("c", Some("old"), 99).is_none());
        assert!(r.secret_ended("c", Some("old"), 100).is_some());
        assert!(r.secret_ended("c", Some("new"), 100).is_none());
        assert!(r.secret_ended("c", None, 100).is_none());
        assert!(r.secret_ended("d", Some("old"), 100).is_none());
        // The app's next event no longer names it (its end was called off).
        r.apply(
            &FeedEvent::Client {
                client_id: "c".into(),
                generation: 1,
                active: true,
                secret_ends: Vec::new(),
            },
            0,
        );
        assert!(r.secret_ended("c", Some("old"), 100).is_none());
    }

    #[test]
    fn users_grants_and_tokens_end_what_hangs_from_them() {
        let mut r = Revoked::default();
        r.apply(
            &FeedEvent::User {
                user_id: "u".into(),
                active: true,
                may_authorize: false,
                tokens_valid_after: 0,
            },
            0,
        );
        // A machine token needs only an active user; a user's grant needs more.
        assert!(r.check(&claims("c", 1, "u", None, "j")).is_none());
        assert!(r.check(&claims("c", 1, "u", Some("g"), "j")).is_some());
        r.apply(
            &FeedEvent::User {
                user_id: "u".into(),
                active: true,
                may_authorize: true,
                tokens_valid_after: 0,
            },
            0,
        );
        assert!(r.check(&claims("c", 1, "u", Some("g"), "j")).is_none());
        r.apply(
            &FeedEvent::Grant {
                grant_id: "g".into(),
            },
            0,
        );
        assert!(r.check(&claims("c", 1, "u", Some("g"), "j")).is_some());
        r.apply(
            &FeedEvent::Token {
                jti: "j".into(),
                exp: 10,
            },
            0,
        );
        assert!(r.check(&claims("c", 1, "u", None, "j")).is_some());
        r.prune(11);
        assert!(r.check(&claims("c", 1, "u", None, "j")).is_none());
    }

    #[test]
    fn a_revoked_grant_is_forgotten_only_once_its_tokens_have_outlived_it() {
        let mut r = Revoked::default();
        let g = FeedEvent::Grant {
            grant_id: "g".into(),
        };
        r.apply(&g, 1000);
        // Learned again later (a replayed page): the first learning counts.
        r.apply(&g, 5000);
        let ended = || claims("c", 1, "u", Some("g"), "j");
        r.prune(1000 + ENDED_TOKENS_OUTLIVE);
        assert!(r.check(&ended()).is_some(), "forgotten too early");
        r.prune(1001 + ENDED_TOKENS_OUTLIVE);
        assert!(r.check(&ended()).is_none());
        assert_eq!(r.counts().2, 0);
    }

    fn issued_at(iat: i64, gid: Option<&str>) -> Claims {
        let mut c = claims("c", 1, "u", gid, "j");
        c.iat = iat;
        c
    }

    fn user(active: bool, tokens_valid_after: i64) -> FeedEvent {
        FeedEvent::User {
            user_id: "u".into(),
            active,
            may_authorize: active,
            tokens_valid_after,
        }
    }

    #[test]
    fn re_activating_a_user_does_not_revive_tokens_from_before_the_deactivation() {
        let mut r = Revoked::default();
        assert!(r.check(&issued_at(100, None)).is_none());
        r.apply(&user(false, 100), 0);
        assert!(r.check(&issued_at(100, None)).is_some());
        assert!(r.check(&issued_at(90, Some("g"))).is_some());
        r.apply(&user(true, 100), 0);
        // Machine tokens and grant tokens alike, up to and including that second.
        assert!(r.check(&issued_at(100, None)).is_some());
        assert!(r.check(&issued_at(99, Some("g"))).is_some());
        assert!(r.check(&issued_at(101, None)).is_none());
        assert!(r.check(&issued_at(101, Some("g"))).is_none());
        // Another user's tokens are not concerned.
        let mut other = issued_at(50, None);
        other.sub = "v".into();
        assert!(r.check(&other).is_none());
        // An event without the time (an older issuer) or an older one never lowers it.
        r.apply(&user(true, 0), 0);
        r.apply(&user(true, 50), 0);
        assert!(r.check(&issued_at(100, None)).is_some());
        // An introspection answer without `iat` cannot show it is newer.
        let unknown = Subject {
            client_id: "c",
            generation: None,
            jti: "j",
            sub: "u",
            iat: None,
            grant: GrantRef::Unknown,
        };
        assert!(r.check_subject(&unknown).is_some());
        let newer = Subject {
            iat: Some(101),
            ..unknown
        };
        assert!(r.check_subject(&newer).is_none());
        // Kept while a token from before could still pass `exp`, then forgotten.
        r.prune(100 + ENDED_TOKENS_OUTLIVE);
        assert!(r.check(&issued_at(100, None)).is_some());
        r.prune(101 + ENDED_TOKENS_OUTLIVE);
        assert!(r.ended_before.is_empty());
    }

    /// The figure for the benchmark report:
    /// `cargo test --release -p gatehouse-gateway -- --ignored revoked_grants_memory --nocapture`
    #[test]
    #[ignore = "a measurement, run by bench/gateway.sh"]
    fn revoked_grants_memory() {
        let mut r = Revoked::default();
        for i in 0..100_000 {
            r.apply(
                &FeedEvent::Grant {
                    grant_id: format!("grant-{i:032}"),
                },
                0,
            );
        }
        let bytes = r.heap_bytes();
        println!(
            "revocation set: 100000 ended grants = {bytes} bytes ({:.2} MB) of table memory",
            bytes as f64 / 1e6
        );
        assert!(bytes < 20_000_000);
    }
}
