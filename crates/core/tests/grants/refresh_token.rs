//! The refresh grant (RFC 6749 §6) with rotation (RFC 9700 §4.14.2) through
//! `token_endpoint::handle`, starting from a family a code exchange began.

use gatehouse_core::model::SigningAlg;
use gatehouse_core::ports::GrantStore;
use gatehouse_core::secret;

use crate::world::*;

/// A code exchange of Alice's for `web` with `scope` (plus offline_access):
/// returns the first refresh token and the grant id.
async fn family(w: &World, scope: &str) -> (String, String) {
    let code = w
        .code(WEB, ALICE, &format!("scope=offline_access%20{scope}"))
        .await;
    let set = w.token(WEB, code_request(&code, None, None)).await.unwrap();
    (set.refresh_token.unwrap(), w.only_grant().await.id)
}

#[tokio::test]
async fn a_refresh_rotates_the_token_and_mints_for_the_same_grant() {
    let w = World::new().await;
    let (first, grant_id) = family(&w, "products:read%20products:write").await;
    w.at(100);
    let set = w.token(WEB, refresh_request(&first, None)).await.unwrap();
    let next = set.refresh_token.clone().unwrap();
    assert_ne!(next, first);
    assert_eq!(
        set.scope.to_string(),
        "products:read products:write offline_access"
    );
    let old = w
        .store
        .refresh_token(&secret::digest(&first))
        .await
        .unwrap();
    assert_eq!(old.used_at, Some(T + 100));
    let new = w.store.refresh_token(&secret::digest(&next)).await.unwrap();
    assert_eq!(
        (new.grant_id.as_str(), new.used_at),
        (grant_id.as_str(), None)
    );
    assert_eq!(new.expires_at, T + 100 + REFRESH_TTL);
    assert_eq!(new.scopes, set.scope.to_vec());
    assert_eq!(w.rows_of_grant("refresh_tokens", &grant_id).await, 2);
    let claims = w.access_claims(&set.access_token, SigningAlg::ES256).await;
    assert_eq!(claims.gid.as_deref(), Some(grant_id.as_str()));
    assert_eq!((claims.sub.as_str(), claims.iat), (ALICE, T + 100));
    assert_eq!(claims.scope, "products:read products:write offline_access");
    assert!(set.id_token.is_none(), "no openid: no ID token");
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_family_and_records_a_security_event() {
    let w = World::new().await;
    let (first, grant_id) = family(&w, "products:read").await;
    let next = w.token(WEB, refresh_request(&first, None)).await.unwrap();
    let access = w.access_claims(&next.access_token, SigningAlg::ES256).await;
    assert!(w.still_valid(&access).await);
    w.at(50);
    let (error, why) = refused(w.token(WEB, refresh_request(&first, None)).await);
    assert_eq!(error, "invalid_grant");
    assert!(why.contains("already used"), "{why}");
    assert_eq!(
        w.store.grant(&grant_id).await.unwrap().revoked_at,
        Some(T + 50)
    );
    assert_eq!(
        w.security_events("refresh.reused").await,
        vec![(grant_id.clone(), T + 50)]
    );
    assert!(w.revoked_in_feed().await.contains(&grant_id));
    // The successor and its access token end with their family.
    assert!(!w.still_valid(&access).await);
    let successor = next.refresh_token.unwrap();
    let (error, why) = refused(w.token(WEB, refresh_request(&successor, None)).await);
    assert_eq!(
        (error, why.as_str()),
        (
            "invalid_grant",
            "the authorization behind this refresh token has ended"
        )
    );
}

#[tokio::test]
async fn another_client_presenting_a_used_token_does_not_revoke_the_family() {
    let w = World::new().await;
    let (first, grant_id) = family(&w, "products:read").await;
    w.token(WEB, refresh_request(&first, None)).await.unwrap();
    let (error, why) = refused(w.token(WEB2, refresh_request(&first, None)).await);
    assert_eq!(
        (error, why.as_str()),
        (
            "invalid_grant",
            "the refresh token was issued to another client"
        )
    );
    assert_eq!(w.store.grant(&grant_id).await.unwrap().revoked_at, None);
    assert!(w.security_events("refresh.reused").await.is_empty());
}

#[tokio::test]
async fn scopes_may_be_narrowed_and_kept_narrow_but_never_widened() {
    let w = World::new().await;
    let (first, grant_id) = family(&w, "products:read%20products:write").await;
    let narrowed = w
        .token(WEB, refresh_request(&first, Some("products:read")))
        .await
        .unwrap();
    assert_eq!(narrowed.scope.to_string(), "products:read offline_access");
    let second = narrowed.refresh_token.unwrap();
    let record = w
        .store
        .refresh_token(&secret::digest(&second))
        .await
        .unwrap();
    assert_eq!(record.scopes, strings(&["products:read", "offline_access"]));
    let claims = w
        .access_claims(&narrowed.access_token, SigningAlg::ES256)
        .await;
    assert_eq!(claims.scope, "products:read offline_access");
    // Back to what was granted is widening what this token holds; so is a scope
    // never granted. Neither uses the token up.
    for wider in ["products:read products:write", "products:read reports:read"] {
        let (error, _) = refused(w.token(WEB, refresh_request(&second, Some(wider))).await);
        assert_eq!(error, "invalid_scope", "{wider}");
    }
    let record = w
        .store
        .refresh_token(&secret::digest(&second))
        .await
        .unwrap();
    assert_eq!(record.used_at, None);
    assert_eq!(w.store.grant(&grant_id).await.unwrap().revoked_at, None);
    // Without `scope`, the narrowed family stays narrow.
    let kept = w.token(WEB, refresh_request(&second, None)).await.unwrap();
    assert_eq!(kept.scope.to_string(), "products:read offline_access");
}

#[tokio::test]
async fn a_refresh_token_expires_at_its_ttl() {
    for (at, ok) in [(REFRESH_TTL - 1, true), (REFRESH_TTL, false)] {
        let w = World::new().await;
        let (first, _) = family(&w, "products:read").await;
        w.at(at);
        let got = w.token(WEB, refresh_request(&first, None)).await;
        if ok {
            assert!(got.is_ok(), "at T+{at}: {got:?}");
        } else {
            let (error, why) = refused(got);
            assert_eq!(
                (error, why.as_str()),
                ("invalid_grant", "the refresh token has expired")
            );
        }
    }
}

#[tokio::test]
async fn a_family_ends_at_its_maximum_age_however_often_rotated() {
    let w = World::new().await;
    let (mut token, _) = family(&w, "products:read").await;
    // Rotate every TTL - 1 until the successor's lifetime is capped by the family's.
    let mut at = 0;
    while at + REFRESH_TTL - 1 < FAMILY_MAX_AGE {
        at += REFRESH_TTL - 1;
        w.at(at);
        token = w
            .token(WEB, refresh_request(&token, None))
            .await
            .unwrap()
            .refresh_token
            .unwrap();
        let record = w
            .store
            .refresh_token(&secret::digest(&token))
            .await
            .unwrap();
        assert_eq!(
            record.expires_at,
            (T + at + REFRESH_TTL).min(T + FAMILY_MAX_AGE)
        );
    }
    w.at(FAMILY_MAX_AGE);
    let (error, why) = refused(w.token(WEB, refresh_request(&token, None)).await);
    assert_eq!(error, "invalid_grant");
    assert!(
        why.contains("maximum age") || why.contains("expired"),
        "{why}"
    );
}

#[tokio::test]
async fn family_max_age_is_checked_before_the_token_expiry() {
    let mut w = World::new().await;
    w.policy.refresh_family_max_age = 10 * REFRESH_TTL;
    let (first, _) = family(&w, "products:read").await;
    w.policy.refresh_family_max_age = 100;
    w.at(100);
    let (error, why) = refused(w.token(WEB, refresh_request(&first, None)).await);
    assert_eq!(error, "invalid_grant");
    assert!(why.contains("maximum age"), "{why}");
}

#[derive(Debug, Clone, Copy)]
enum Ended {
    SecretRotated,
    UserDeactivated,
    UserLostDeveloperApi,
    UserRemoved,
    UnknownToken,
}

#[tokio::test]
async fn a_refresh_of_an_ended_authorization_is_refused_and_writes_nothing() {
    use Ended::*;
    let ended = "the authorization behind this refresh token has ended";
    // `(case, description, whether the case itself revoked the grant)`.
    let cases: &[(Ended, &str, bool)] = &[
        (SecretRotated, ended, false),
        // Deactivation revokes the user's grants in the store.
        (UserDeactivated, ended, true),
        // A user who may no longer authorize apps counts as gone.
        (UserLostDeveloperApi, "the user no longer exists", false),
        (UserRemoved, "the user no longer exists", false),
        (UnknownToken, "unknown refresh token", false),
    ];
    for &(case, want, revoked) in cases {
        let w = World::new().await;
        let (first, grant_id) = family(&w, "products:read").await;
        let presented = match case {
            SecretRotated => {
                w.rotate_secret(WEB).await;
                first.clone()
            }
            UserDeactivated => {
                w.deactivate(ALICE).await;
                first.clone()
            }
            UserLostDeveloperApi => {
                w.set_role(ALICE, "member").await;
                first.clone()
            }
            UserRemoved => {
                w.remove(ALICE).await;
                first.clone()
            }
            UnknownToken => "not-a-refresh-token".to_owned(),
        };
        let (error, why) = refused(w.token(WEB, refresh_request(&presented, None)).await);
        assert_eq!((error, why.as_str()), ("invalid_grant", want), "{case:?}");
        let record = w
            .store
            .refresh_token(&secret::digest(&first))
            .await
            .unwrap();
        assert_eq!(record.used_at, None, "{case:?}");
        assert_eq!(
            w.rows_of_grant("refresh_tokens", &grant_id).await,
            1,
            "{case:?}"
        );
        let grant = w.store.grant(&grant_id).await.unwrap();
        assert_eq!(grant.revoked_at, revoked.then_some(T), "{case:?}");
    }
}

#[tokio::test]
async fn a_refresh_to_a_reference_token_api_stores_the_record_with_the_rotation() {
    let w = World::new().await;
    let (first, grant_id) = family(&w, "reports:read").await;
    assert_eq!(
        w.reference_rows().await,
        1,
        "the code exchange's access token"
    );
    w.at(7);
    let set = w.token(WEB, refresh_request(&first, None)).await.unwrap();
    assert_eq!(w.reference_rows().await, 2);
    let claims = w.access_claims(&set.access_token, SigningAlg::EdDSA).await;
    assert_eq!(claims.gid.as_deref(), Some(grant_id.as_str()));
    assert_eq!((claims.aud.as_str(), claims.exp), (REPORTS, T + 7 + 600));
}
