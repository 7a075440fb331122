//! Token revocation (RFC 7009): which kind of token was presented, whether it is
//! the client's to revoke, and what revoking it ends. A refresh token takes its
//! whole family (the grant) and the access tokens issued from it; an access token
//! (JWT or reference) ends alone. A token nobody knows is "revoked" too: the
//! answer reveals nothing (§2.2).

use crate::clock::UnixTime;
use crate::error::OAuthError;
use crate::form::Form;
use crate::introspect::verified_claims;
use crate::model::App;
use crate::ports::{Store, StoreError};
use crate::secret;
use crate::token::Signer;

/// A revocation request (§2.1).
#[derive(Clone, PartialEq, Eq)]
pub struct RevocationRequest {
    pub token: String,
    pub token_type_hint: Option<String>,
}

impl std::fmt::Debug for RevocationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationRequest")
            .field("token_type_hint", &self.token_type_hint)
            .finish_non_exhaustive()
    }
}

impl RevocationRequest {
    pub fn parse(form: &Form) -> Result<Self, OAuthError> {
        Ok(Self {
            token: form.require("token")?.to_owned(),
            token_type_hint: form.get("token_type_hint").map(str::to_owned),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Refresh,
    Access,
}

/// Where to look, in order. §2.1: the hint names the kind to try first; when it
/// is missing, unknown, or wrong, the search extends to the other kind.
pub fn search_order(token_type_hint: Option<&str>) -> [TokenKind; 2] {
    match token_type_hint {
        Some("access_token") => [TokenKind::Access, TokenKind::Refresh],
        _ => [TokenKind::Refresh, TokenKind::Access],
    }
}

/// What a look-up of one kind found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Nothing,
    Refresh {
        client_id: String,
        grant_id: String,
    },
    /// A JWT or a reference access token, verified (ended or not).
    Access {
        client_id: String,
        jti: String,
        expires_at: UnixTime,
    },
}

/// What revoking does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Revoke the grant: the refresh-token family and its access tokens.
    Family { grant_id: String },
    /// Revoke one access token, remembered until it would have expired.
    AccessToken { jti: String, expires_at: UnixTime },
}

/// Decides on one look-up: `None` to search on. A token of another client is
/// refused (§2.1: the server verifies the token was issued to the requester).
pub fn decide(found: Found, client_id: &str) -> Result<Option<Revocation>, OAuthError> {
    let not_yours = || OAuthError::unauthorized_client("the token was not issued to this client");
    match found {
        Found::Nothing => Ok(None),
        Found::Refresh { client_id: c, .. } | Found::Access { client_id: c, .. }
            if c != client_id =>
        {
            Err(not_yours())
        }
        Found::Refresh { grant_id, .. } => Ok(Some(Revocation::Family { grant_id })),
        Found::Access {
            jti, expires_at, ..
        } => Ok(Some(Revocation::AccessToken { jti, expires_at })),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Revokes `token` for `app`: looks it up kind by kind, then revokes what it is.
/// `None` when no token of either kind was found.
pub async fn revoke(
    request: &RevocationRequest,
    app: &App,
    signer: &dyn Signer,
    store: &dyn Store,
    now: UnixTime,
) -> Result<Option<Revocation>, RevocationError> {
    for kind in search_order(request.token_type_hint.as_deref()) {
        let found = look_up(kind, &request.token, signer, store).await?;
        if let Some(revocation) = decide(found, &app.client_id)? {
            match &revocation {
                Revocation::Family { grant_id } => store.revoke_grant(grant_id, now).await?,
                Revocation::AccessToken { jti, expires_at } => {
                    store
                        .revoke_access_token(jti, &app.org_id, *expires_at, now)
                        .await?
                }
            }
            return Ok(Some(revocation));
        }
    }
    Ok(None)
}

async fn look_up(
    kind: TokenKind,
    token: &str,
    signer: &dyn Signer,
    store: &dyn Store,
) -> Result<Found, StoreError> {
    match kind {
        TokenKind::Refresh => match store.refresh_token(&secret::digest(token)).await {
            Ok(rt) => Ok(Found::Refresh {
                client_id: rt.client_id,
                grant_id: rt.grant_id,
            }),
            Err(StoreError::NotFound) => Ok(Found::Nothing),
            Err(e) => Err(e),
        },
        TokenKind::Access => Ok(match verified_claims(token, signer, store).await? {
            Some(claims) => Found::Access {
                client_id: claims.client_id,
                jti: claims.jti,
                expires_at: claims.exp,
            },
            None => Found::Nothing,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use TokenKind::{Access, Refresh};

    #[test]
    fn the_hint_only_orders_the_search() {
        let cases = [
            (None, [Refresh, Access]),
            (Some("refresh_token"), [Refresh, Access]),
            (Some("access_token"), [Access, Refresh]),
            // §2.1: an unsupported hint is ignored, not refused.
            (Some("id_token"), [Refresh, Access]),
            (Some(""), [Refresh, Access]),
        ];
        for (hint, order) in cases {
            assert_eq!(search_order(hint), order, "{hint:?}");
        }
    }

    #[test]
    fn each_kind_revokes_what_it_is_and_only_for_its_client() {
        let refresh = |c: &str| Found::Refresh {
            client_id: c.into(),
            grant_id: "g".into(),
        };
        let access = |c: &str| Found::Access {
            client_id: c.into(),
            jti: "j".into(),
            expires_at: 99,
        };
        let family = Some(Revocation::Family {
            grant_id: "g".into(),
        });
        let one = Some(Revocation::AccessToken {
            jti: "j".into(),
            expires_at: 99,
        });
        let cases = [
            (Found::Nothing, Ok(None)),
            (refresh("me"), Ok(family)),
            (access("me"), Ok(one)),
            (refresh("other"), Err(ErrorCode::UnauthorizedClient)),
            (access("other"), Err(ErrorCode::UnauthorizedClient)),
        ];
        for (found, expected) in cases {
            let got = decide(found.clone(), "me").map_err(|e| e.code);
            assert_eq!(got, expected, "{found:?}");
        }
    }
}
