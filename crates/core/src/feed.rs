//! The revocation feed that resource servers follow (`GET /connect/revocations`):
//! each change of the `changes` table is resolved to the *current* state of what it
//! names, so a gateway that applies the events in order reaches the same verdict as
//! [`crate::introspect::still_valid`] without asking the store per request.
//!
//! What this module owns: the wire types and the resolution rules. It does no I/O
//! of its own beyond the store port, and knows nothing about HTTP.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::context::acting_user;
use crate::grant::refresh_token::user_may_authorize;
use crate::model::{AppStatus, Change, ChangeKind, UserStatus};
use crate::ports::{Store, StoreError, StoreResult};

/// Events per page.
pub const PAGE: u32 = 1000;
/// The longest a long poll may wait, in seconds.
pub const MAX_WAIT_SECS: u64 = 30;

/// One resolved change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeedEvent {
    /// An app's credential generation and whether it may still hold tokens
    /// (deleted or disabled: `active: false`). Tokens with an older `cgen` ended.
    /// `secret_ends` names the app's secrets that were retired or have an
    /// expiry: a token whose `csid` is one of them has ended from its `at` on
    /// (known ahead for an expiry, so it takes effect without another event).
    Client {
        client_id: String,
        generation: i64,
        active: bool,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        secret_ends: Vec<SecretEnd>,
    },
    /// A user's standing: machine tokens acting for them need `active`; tokens the
    /// user granted an app need `may_authorize`. Every token whose `sub` is this
    /// user and whose `iat` is at or before `tokens_valid_after` has ended for good
    /// (a deactivation; re-activating the user does not revive them).
    User {
        user_id: String,
        active: bool,
        may_authorize: bool,
        #[serde(default)]
        tokens_valid_after: UnixTime,
    },
    /// A grant was revoked: every token naming it (`gid`) ended.
    Grant { grant_id: String },
    /// One access token was revoked. `exp` bounds how long it must be remembered.
    Token { jti: String, exp: UnixTime },
    /// Signing keys changed: refetch the JWKS.
    Keys,
}

/// When one of an app's secrets stops (or stopped) authenticating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretEnd {
    pub secret_id: String,
    pub at: UnixTime,
}

/// One answer of the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedPage {
    /// The position to ask from next time (a decimal sequence number).
    pub cursor: String,
    pub events: Vec<FeedEvent>,
    /// More changes wait behind this page: ask again at once.
    pub more: bool,
}

/// Resolves `changes` for the API of organization `org_id`. Changes recorded for
/// another organization are left out (each change carries its organization;
/// older ones without, by resolving their subject's organization); a
/// subject that no longer exists is reported as ended. `token_ttl` bounds the
/// `exp` of a revoked token (its record keeps no expiry of its own).
pub async fn resolve(
    store: &dyn Store,
    org_id: &str,
    token_ttl: i64,
    changes: &[Change],
) -> StoreResult<Vec<FeedEvent>> {
    let mut out: Vec<FeedEvent> = Vec::new();
    for c in changes.iter().filter(|c| c.visible_to(org_id)) {
        let event = match c.kind {
            ChangeKind::App => client_event(store, org_id, &c.key).await?,
            ChangeKind::User => user_event(store, org_id, &c.key).await?,
            ChangeKind::Grant => grant_event(store, org_id, &c.key).await?,
            ChangeKind::Token => Some(FeedEvent::Token {
                jti: c.key.clone(),
                exp: c.at.saturating_add(token_ttl),
            }),
            ChangeKind::Keys => Some(FeedEvent::Keys),
            ChangeKind::Api | ChangeKind::Org => None,
        };
        // Consecutive duplicates (e.g. a burst of key changes) say nothing new.
        if let Some(e) = event
            && out.last() != Some(&e)
        {
            out.push(e);
        }
    }
    Ok(out)
}

async fn client_event(
    store: &dyn Store,
    org_id: &str,
    client_id: &str,
) -> StoreResult<Option<FeedEvent>> {
    match store.app_by_client_id(client_id).await {
        Ok(app) if app.org_id != org_id => Ok(None),
        Ok(app) => {
            let secret_ends = store
                .app_secrets(client_id)
                .await?
                .into_iter()
                .filter_map(|s| {
                    s.ends_at().map(|at| SecretEnd {
                        secret_id: s.id,
                        at,
                    })
                })
                .collect();
            Ok(Some(FeedEvent::Client {
                client_id: app.client_id,
                generation: app.generation,
                active: app.status == AppStatus::Active,
                secret_ends,
            }))
        }
        Err(StoreError::NotFound) => Ok(Some(FeedEvent::Client {
            client_id: client_id.to_owned(),
            generation: i64::MAX,
            active: false,
            secret_ends: Vec::new(),
        })),
        Err(e) => Err(e),
    }
}

async fn user_event(
    store: &dyn Store,
    org_id: &str,
    user_id: &str,
) -> StoreResult<Option<FeedEvent>> {
    match store.user_by_id(user_id).await {
        Ok(user) if user.org_id != org_id => Ok(None),
        Ok(user) => {
            let active = user.status == UserStatus::Active;
            let tokens_valid_after = user.tokens_valid_after;
            let acting = acting_user(store, user).await?;
            Ok(Some(FeedEvent::User {
                user_id: user_id.to_owned(),
                active,
                may_authorize: user_may_authorize(Some(&acting)).is_ok(),
                tokens_valid_after,
            }))
        }
        Err(StoreError::NotFound) => Ok(Some(FeedEvent::User {
            user_id: user_id.to_owned(),
            active: false,
            may_authorize: false,
            tokens_valid_after: UnixTime::MAX,
        })),
        Err(e) => Err(e),
    }
}

async fn grant_event(
    store: &dyn Store,
    org_id: &str,
    grant_id: &str,
) -> StoreResult<Option<FeedEvent>> {
    let event = Some(FeedEvent::Grant {
        grant_id: grant_id.to_owned(),
    });
    let grant = match store.grant(grant_id).await {
        Ok(g) => g,
        Err(StoreError::NotFound) => return Ok(event),
        Err(e) => return Err(e),
    };
    match store.user_by_id(&grant.user_id).await {
        Ok(u) if u.org_id != org_id => Ok(None),
        Ok(_) | Err(StoreError::NotFound) => Ok(event),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_have_the_documented_wire_shape() {
        let e = FeedEvent::Client {
            client_id: "c".into(),
            generation: 2,
            active: true,
            secret_ends: Vec::new(),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"client","client_id":"c","generation":2,"active":true})
        );
        let with_ends = FeedEvent::Client {
            client_id: "c".into(),
            generation: 2,
            active: true,
            secret_ends: vec![SecretEnd {
                secret_id: "s1".into(),
                at: 7,
            }],
        };
        assert_eq!(
            serde_json::to_value(&with_ends).unwrap(),
            serde_json::json!({"type":"client","client_id":"c","generation":2,"active":true,
                "secret_ends":[{"secret_id":"s1","at":7}]})
        );
        let k: FeedEvent = serde_json::from_str(r#"{"type":"keys"}"#).unwrap();
        assert_eq!(k, FeedEvent::Keys);
        let t: FeedEvent = serde_json::from_str(r#"{"type":"token","jti":"j","exp":5}"#).unwrap();
        assert_eq!(
            t,
            FeedEvent::Token {
                jti: "j".into(),
                exp: 5
            }
        );
    }
}
