//! Sessions, grants and what hangs from them: codes, refresh-token families, consent.

use gatehouse_core::model::*;
use gatehouse_core::ports::{CodeContext, Redeemed, Store, StoreError};

use crate::fixtures::{code, ev, grant, join_all, refresh, seed_orgs, session, user};

pub async fn sessions(s: &dyn Store) {
    let sess = session("sess-1", "sid-1", 20_000);
    s.insert_session(&sess).await.unwrap();
    assert_eq!(s.session("sess-1", 10_000).await.unwrap(), sess);
    assert!(matches!(
        s.insert_session(&sess).await,
        Err(StoreError::Conflict(_))
    ));
    // The public `sid` is unique too.
    assert!(matches!(
        s.insert_session(&session("sess-1b", "sid-1", 20_000)).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.session("ghost", 0).await,
        Err(StoreError::NotFound)
    ));
    // Live strictly before `expires_at`.
    assert_eq!(s.session("sess-1", 19_999).await.unwrap(), sess);
    assert!(matches!(
        s.session("sess-1", 20_000).await,
        Err(StoreError::NotFound)
    ));

    s.insert_session(&session("sess-2", "sid-2", 20_000))
        .await
        .unwrap();
    s.end_session("sess-2", 900).await.unwrap();
    assert!(matches!(
        s.session("sess-2", 10_000).await,
        Err(StoreError::NotFound)
    ));
    s.end_session("sess-2", 900).await.unwrap();
    assert!(matches!(
        s.end_session("ghost", 900).await,
        Err(StoreError::NotFound)
    ));
    // Ending one session leaves the others alone.
    assert_eq!(s.session("sess-1", 10_000).await.unwrap(), sess);
}

pub async fn grants_and_revocation(s: &dyn Store) {
    let g = grant("grant-1");
    s.insert_grant(&g).await.unwrap();
    assert_eq!(s.grant("grant-1").await.unwrap(), g);
    assert!(matches!(
        s.insert_grant(&g).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(s.grant("ghost").await, Err(StoreError::NotFound)));
    let bare = Grant {
        audience: None,
        sid: None,
        scopes: vec![],
        ..grant("grant-2")
    };
    s.insert_grant(&bare).await.unwrap();
    assert_eq!(s.grant("grant-2").await.unwrap(), bare);

    let before = s.latest_change().await.unwrap();
    s.revoke_grant("grant-1", 700).await.unwrap();
    assert_eq!(s.grant("grant-1").await.unwrap().revoked_at, Some(700));
    // Twice is fine and keeps the first time.
    s.revoke_grant("grant-1", 701).await.unwrap();
    assert_eq!(s.grant("grant-1").await.unwrap().revoked_at, Some(700));
    assert!(matches!(
        s.revoke_grant("ghost", 702).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.grant("grant-2").await.unwrap().revoked_at, None);
    let changes = s.changes_since(before, 10).await.unwrap();
    let seen: Vec<(ChangeKind, &str, i64)> = changes
        .iter()
        .map(|c| (c.kind, c.key.as_str(), c.at))
        .collect();
    assert_eq!(seen, [(ChangeKind::Grant, "grant-1", 700)]);
}

/// A deactivation sets the user's token cut-off and revokes their grants; a
/// re-activation changes neither.
pub async fn deactivation_ends_a_users_tokens_for_good(s: &dyn Store) {
    seed_orgs(s).await;
    s.insert_user(&user("u-deact", "o1", "deact@acme.test"), &ev())
        .await
        .unwrap();
    let g = Grant {
        user_id: "u-deact".into(),
        ..grant("grant-deact")
    };
    s.insert_grant(&g).await.unwrap();
    assert_eq!(s.user_by_id("u-deact").await.unwrap().tokens_valid_after, 0);
    s.set_user_status("u-deact", UserStatus::Deactivated, 800, &ev())
        .await
        .unwrap();
    s.set_user_status("u-deact", UserStatus::Active, 900, &ev())
        .await
        .unwrap();
    let u = s.user_by_id("u-deact").await.unwrap();
    assert_eq!((u.status, u.tokens_valid_after), (UserStatus::Active, 800));
    assert!(u.ended_before(800) && !u.ended_before(801));
    assert_eq!(s.grant("grant-deact").await.unwrap().revoked_at, Some(800));
}

/// The grant of a code read as used, if it was.
fn replayed_grant(read: Redeemed<CodeContext>) -> Option<String> {
    match read {
        Redeemed::Replayed { grant_id } => Some(grant_id),
        Redeemed::Fresh(_) => None,
    }
}

pub async fn auth_codes(s: &dyn Store) {
    s.insert_grant(&grant("grant-1")).await.unwrap();
    s.insert_grant(&grant("grant-2")).await.unwrap();
    let c = code("code-1", "grant-2", 30_000);
    s.insert_code(&c).await.unwrap();
    assert!(matches!(
        s.insert_code(&c).await,
        Err(StoreError::Conflict(_))
    ));
    let before = s.latest_change().await.unwrap();
    let Redeemed::Fresh(read) = s.code_context("code-1").await.unwrap() else {
        panic!("an unused code");
    };
    assert_eq!(read.code, c);
    assert!(
        s.claim_code_issuing("code-1", None, None, 800)
            .await
            .unwrap()
    );
    assert!(
        !s.claim_code_issuing("code-1", None, None, 801)
            .await
            .unwrap()
    );
    assert_eq!(
        replayed_grant(s.code_context("code-1").await.unwrap()),
        Some("grant-2".into())
    );
    assert!(matches!(
        s.code_context("ghost").await,
        Err(StoreError::NotFound)
    ));
    assert!(
        !s.claim_code_issuing("ghost", None, None, 802)
            .await
            .unwrap()
    );
    // Expiry is the caller's rule: an expired code still reads and claims here.
    let late = AuthCode {
        nonce: None,
        code_challenge: None,
        ..code("code-2", "grant-1", 20_000)
    };
    s.insert_code(&late).await.unwrap();
    assert!(
        s.claim_code_issuing("code-2", None, None, 25_000)
            .await
            .unwrap()
    );
    // A burnt code (a failed attempt) reads as used; burning is idempotent,
    // and so is burning an unknown code.
    s.insert_code(&code("code-3", "grant-1", 30_000))
        .await
        .unwrap();
    s.burn_code("code-3", 900).await.unwrap();
    s.burn_code("code-3", 901).await.unwrap();
    s.burn_code("ghost", 902).await.unwrap();
    assert_eq!(
        replayed_grant(s.code_context("code-3").await.unwrap()),
        Some("grant-1".into())
    );
    assert!(
        !s.claim_code_issuing("code-3", None, None, 903)
            .await
            .unwrap()
    );
    // Even a revoked grant's code burns.
    s.insert_code(&code("code-4", "grant-2", 30_000))
        .await
        .unwrap();
    s.revoke_grant("grant-2", 904).await.unwrap();
    let after_revoke = s.latest_change().await.unwrap();
    s.burn_code("code-4", 905).await.unwrap();
    assert!(replayed_grant(s.code_context("code-4").await.unwrap()).is_some());
    // Claiming and burning are not changes the feed carries.
    assert_eq!(s.latest_change().await.unwrap(), after_revoke);
    assert!(after_revoke > before);
}

pub async fn refresh_tokens(s: &dyn Store) {
    let rt1 = refresh("rt-1", "grant-2", 40_000);
    s.insert_refresh_token(&rt1).await.unwrap();
    assert_eq!(s.refresh_token("rt-1").await.unwrap(), rt1);
    assert!(matches!(
        s.insert_refresh_token(&rt1).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.refresh_token("ghost").await,
        Err(StoreError::NotFound)
    ));

    let rt2 = refresh("rt-2", "grant-2", 41_000);
    let used = RefreshToken {
        used_at: Some(900),
        dpop_jkt: None,
        ..rt1.clone()
    };
    assert_eq!(
        s.rotate_refresh_token("rt-1", &rt2, 900).await.unwrap(),
        Redeemed::Fresh(used.clone())
    );
    assert_eq!(s.refresh_token("rt-1").await.unwrap(), used);
    assert_eq!(s.refresh_token("rt-2").await.unwrap(), rt2);

    // A replay reports the family and stores no successor.
    assert_eq!(
        s.rotate_refresh_token("rt-1", &refresh("rt-3", "grant-2", 42_000), 901)
            .await
            .unwrap(),
        Redeemed::Replayed {
            grant_id: "grant-2".into()
        }
    );
    assert!(matches!(
        s.refresh_token("rt-3").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.refresh_token("rt-1").await.unwrap().used_at, Some(900));

    assert!(matches!(
        s.rotate_refresh_token("ghost", &refresh("rt-4", "grant-2", 42_000), 902)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.refresh_token("rt-4").await,
        Err(StoreError::NotFound)
    ));

    // A successor that cannot be stored undoes the rotation: one transaction.
    assert!(matches!(
        s.rotate_refresh_token("rt-2", &rt1, 903).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.refresh_token("rt-2").await.unwrap(), rt2);
    assert_eq!(s.refresh_token("rt-1").await.unwrap(), used);
}

pub async fn consents(s: &dyn Store) {
    assert!(matches!(
        s.consent("u1", "client-web").await,
        Err(StoreError::NotFound)
    ));
    let first = Consent {
        user_id: "u1".into(),
        client_id: "client-web".into(),
        scopes: vec!["openid".into()],
        updated_at: 1000,
    };
    s.save_consent(&first).await.unwrap();
    assert_eq!(s.consent("u1", "client-web").await.unwrap(), first);
    let grown = Consent {
        scopes: vec!["openid".into(), "profile".into()],
        updated_at: 1001,
        ..first.clone()
    };
    s.save_consent(&grown).await.unwrap();
    assert_eq!(s.consent("u1", "client-web").await.unwrap(), grown);
    // Keyed by both user and client.
    assert!(matches!(
        s.consent("u3", "client-web").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.consent("u1", "client-other").await,
        Err(StoreError::NotFound)
    ));
    let other = Consent {
        client_id: "client-other".into(),
        ..first
    };
    s.save_consent(&other).await.unwrap();
    assert_eq!(s.consent("u1", "client-other").await.unwrap(), other);
    assert_eq!(s.consent("u1", "client-web").await.unwrap(), grown);
}

pub async fn concurrent_redemption(s: &dyn Store) {
    const RACERS: usize = 8;
    s.insert_grant(&grant("grant-race")).await.unwrap();

    s.insert_code(&code("code-race", "grant-race", 30_000))
        .await
        .unwrap();
    let results = join_all(
        (0..RACERS)
            .map(|_| s.claim_code_issuing("code-race", None, None, 1400))
            .collect(),
    )
    .await;
    let claimed = results.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(claimed, 1, "exactly one concurrent redemption wins");

    s.insert_refresh_token(&refresh("rt-race", "grant-race", 40_000))
        .await
        .unwrap();
    let successors: Vec<RefreshToken> = (0..RACERS)
        .map(|i| refresh(&format!("rt-race-next-{i}"), "grant-race", 41_000))
        .collect();
    let results = join_all(
        successors
            .iter()
            .map(|next| s.rotate_refresh_token("rt-race", next, 1500))
            .collect(),
    )
    .await;
    let mut fresh = 0;
    for (r, next) in results.into_iter().zip(&successors) {
        let stored = s.refresh_token(&next.digest).await;
        match r.unwrap() {
            Redeemed::Fresh(old) => {
                assert_eq!((old.digest.as_str(), old.used_at), ("rt-race", Some(1500)));
                assert_eq!(stored.unwrap(), *next);
                fresh += 1;
            }
            Redeemed::Replayed { grant_id } => {
                assert_eq!(grant_id, "grant-race");
                assert!(matches!(stored, Err(StoreError::NotFound)));
            }
        }
    }
    assert_eq!(fresh, 1, "exactly one concurrent rotation wins");
}
