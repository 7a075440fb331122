//! Reference tokens, revoked access tokens, and the purge of what expired.

use gatehouse_core::model::*;
use gatehouse_core::ports::{Redeemed, Store, StoreError};
use serde_json::json;

use crate::fixtures::{code, grant, join_all, refresh, session};

pub async fn reference_tokens(s: &dyn Store) {
    let t = ReferenceToken {
        digest: "d1".into(),
        client_id: "client-x".into(),
        audience: "https://gw.example".into(),
        claims: json!({"sub": "u1", "scope": "cfgateway", "permissions": ["a"]}),
        expires_at: 1000,
    };
    s.insert_reference_token(&t).await.unwrap();
    assert_eq!(s.reference_token("d1").await.unwrap(), t);
    assert!(matches!(
        s.insert_reference_token(&t).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.reference_token("d2").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.purge_expired_tokens(999).await.unwrap(), 0);
    assert_eq!(s.purge_expired_tokens(1001).await.unwrap(), 1);
    assert!(matches!(
        s.reference_token("d1").await,
        Err(StoreError::NotFound)
    ));
}

pub async fn revoked_access_tokens(s: &dyn Store) {
    assert!(!s.is_access_token_revoked("jti-1").await.unwrap());
    let before = s.latest_change().await.unwrap();
    s.revoke_access_token("jti-1", "o1", 50_000, 1100)
        .await
        .unwrap();
    assert!(s.is_access_token_revoked("jti-1").await.unwrap());
    s.revoke_access_token("jti-1", "o1", 50_000, 1101)
        .await
        .unwrap();
    assert!(s.is_access_token_revoked("jti-1").await.unwrap());
    assert!(!s.is_access_token_revoked("jti-2").await.unwrap());
    let changes = s.changes_since(before, 10).await.unwrap();
    let seen: Vec<(ChangeKind, &str, i64)> = changes
        .iter()
        .map(|c| (c.kind, c.key.as_str(), c.at))
        .collect();
    assert_eq!(seen, [(ChangeKind::Token, "jti-1", 1100)]);
    // The change belongs to the token's organization: only its APIs see it.
    assert_eq!(changes[0].org_id, "o1");
    assert!(changes[0].visible_to("o1") && !changes[0].visible_to("o2"));
}

pub async fn purge_keeps_live_records(s: &dyn Store) {
    // Records that live well past the purge.
    s.insert_session(&session("sess-1", "sid-1", 20_000))
        .await
        .unwrap();
    s.insert_grant(&grant("grant-1")).await.unwrap();
    s.insert_refresh_token(&refresh("rt-2", "grant-1", 41_000))
        .await
        .unwrap();
    s.revoke_access_token("jti-1", "o1", 50_000, 1100)
        .await
        .unwrap();
    // Expired: before 6_000. Live: at 6_000 (purge drops `expires_at < now`).
    for (tag, exp) in [("old", 5_000), ("live", 6_000)] {
        s.insert_session(&session(&format!("sess-{tag}"), &format!("sid-{tag}"), exp))
            .await
            .unwrap();
        s.insert_code(&code(&format!("code-{tag}"), "grant-1", exp))
            .await
            .unwrap();
        s.insert_refresh_token(&refresh(&format!("rt-{tag}"), "grant-2", exp))
            .await
            .unwrap();
        s.revoke_access_token(&format!("jti-{tag}"), "o1", exp, 1200)
            .await
            .unwrap();
        s.insert_reference_token(&ReferenceToken {
            digest: format!("d-{tag}"),
            client_id: "client-x".into(),
            audience: "https://gw.example".into(),
            claims: json!({"sub": "u1"}),
            expires_at: exp,
        })
        .await
        .unwrap();
    }
    // Live (not ended) expired sessions are the sweep's: their apps are told.
    assert_eq!(s.sweep_expired_sessions(5_999, 10).await.unwrap(), (1, 0));
    assert_eq!(s.purge_expired_tokens(6_000).await.unwrap(), 4);
    assert_eq!(s.purge_expired_tokens(6_000).await.unwrap(), 0);

    assert!(matches!(
        s.session("sess-old", 0).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.code_context("code-old").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.refresh_token("rt-old").await,
        Err(StoreError::NotFound)
    ));
    assert!(!s.is_access_token_revoked("jti-old").await.unwrap());
    assert!(matches!(
        s.reference_token("d-old").await,
        Err(StoreError::NotFound)
    ));

    assert_eq!(s.session("sess-live", 5_999).await.unwrap().sid, "sid-live");
    assert!(matches!(
        s.code_context("code-live").await.unwrap(),
        Redeemed::Fresh(_)
    ));
    assert!(s.refresh_token("rt-live").await.is_ok());
    assert!(s.is_access_token_revoked("jti-live").await.unwrap());
    assert!(s.reference_token("d-live").await.is_ok());
    // The records alive past 6_000 are untouched.
    assert!(s.session("sess-1", 10_000).await.is_ok());
    assert!(s.refresh_token("rt-2").await.is_ok());
    assert!(s.is_access_token_revoked("jti-1").await.unwrap());
    assert!(s.grant("grant-1").await.is_ok());
}

/// A client assertion's `jti` (RFC 7523) authenticates once per app until it
/// expires; of concurrent uses exactly one wins; the purge forgets expired ones,
/// and an expired record is no obstacle to a new assertion.
pub async fn client_assertion_jtis_are_single_use_until_they_expire(s: &dyn Store) {
    assert!(
        s.use_assertion_jti("app-a", "j1", 1300, 1000)
            .await
            .unwrap()
    );
    assert!(
        !s.use_assertion_jti("app-a", "j1", 1300, 1001)
            .await
            .unwrap()
    );
    // Another app's jti space is its own.
    assert!(
        s.use_assertion_jti("app-b", "j1", 1300, 1001)
            .await
            .unwrap()
    );
    // Past its expiry, the record stands in no one's way.
    assert!(
        s.use_assertion_jti("app-a", "j1", 1700, 1300)
            .await
            .unwrap()
    );
    assert!(
        !s.use_assertion_jti("app-a", "j1", 1700, 1301)
            .await
            .unwrap()
    );
    let won = join_all(
        (0..8)
            .map(|_| s.use_assertion_jti("app-a", "j2", 2000, 1500))
            .collect(),
    )
    .await;
    let won: Vec<bool> = won.into_iter().map(Result::unwrap).collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    // Concurrent assertions of several jtis, some repeated:
    // each distinct jti wins once, its repeats and a live one lose.
    let jtis: Vec<String> = (0..24).map(|i| format!("m{}", i % 8)).collect();
    let mut calls: Vec<_> = jtis
        .iter()
        .map(|j| s.use_assertion_jti("app-a", j, 2000, 1500))
        .collect();
    calls.push(s.use_assertion_jti("app-a", "j2", 2000, 1500));
    let won: Vec<bool> = join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for i in 0..8 {
        let of_i = (0..24).filter(|k| k % 8 == i).filter(|&k| won[k]).count();
        assert_eq!(of_i, 1, "jti m{i} won {of_i} times: {won:?}");
    }
    assert!(!won[24], "a live jti was used again in a batch");
    assert!(s.purge_expired_tokens(1701).await.unwrap() >= 2);
    assert!(
        s.use_assertion_jti("app-b", "j1", 3000, 1701)
            .await
            .unwrap()
    );
}
