//! The grant flow's sized reads and writes (`GrantFlowStore`): each joined read
//! answers what the finer ports would, and each write is all or nothing with
//! the one-winner rule of the plain rotation.

use gatehouse_core::model::*;
use gatehouse_core::ports::{GrantContext, Redeemed, Store, StoreError};
use serde_json::json;

use crate::fixtures::{code, ev, grant, join_all, refresh, seed_people, user};

fn reference(digest: &str) -> ReferenceToken {
    ReferenceToken {
        digest: digest.into(),
        client_id: "client-web".into(),
        audience: "https://gw.example".into(),
        claims: json!({"sub": "u1", "scope": "openid"}),
        expires_at: 9_000,
    }
}

/// The user and permissions of a context, comparable.
fn person(ctx: &GrantContext) -> Option<(User, Vec<String>)> {
    ctx.user
        .as_ref()
        .map(|u| (u.user.clone(), u.permissions.clone()))
}

pub async fn grant_context_joins_the_user_and_their_role(s: &dyn Store) {
    seed_people(s).await;
    let g = grant("grant-1");
    s.insert_grant(&g).await.unwrap();
    let ctx = s.grant_context("grant-1").await.unwrap();
    assert_eq!(ctx.grant, g);
    let developer = s.role("o1", "developer").await.unwrap();
    assert!(!developer.permissions.is_empty());
    assert_eq!(
        person(&ctx),
        Some((s.user_by_id("u1").await.unwrap(), developer.permissions))
    );
    assert!(matches!(
        s.grant_context("ghost").await,
        Err(StoreError::NotFound)
    ));
}

pub async fn grant_context_when_the_user_or_their_role_is_gone(s: &dyn Store) {
    seed_people(s).await;
    // The user is gone: the grant is still answered, without a person.
    let orphan = Grant {
        user_id: "u-gone".into(),
        ..grant("grant-orphan")
    };
    s.insert_grant(&orphan).await.unwrap();
    let ctx = s.grant_context("grant-orphan").await.unwrap();
    assert_eq!((ctx.grant, person_of(&ctx.user)), (orphan, None));

    // The role is gone: the person, with no permissions.
    let roleless = User {
        role: "vanished".into(),
        ..user("u-roleless", "o1", "roleless@acme.test")
    };
    s.insert_user(&roleless, &ev()).await.unwrap();
    s.insert_grant(&Grant {
        user_id: "u-roleless".into(),
        ..grant("grant-roleless")
    })
    .await
    .unwrap();
    let ctx = s.grant_context("grant-roleless").await.unwrap();
    assert_eq!(person(&ctx), Some((roleless, vec![])));
}

fn person_of(user: &Option<gatehouse_core::context::ActingUser>) -> Option<String> {
    user.as_ref().map(|u| u.user.id.clone())
}

pub async fn refresh_context_reads_token_grant_and_person_at_once(s: &dyn Store) {
    seed_people(s).await;
    let g = grant("grant-1");
    s.insert_grant(&g).await.unwrap();
    let rt = refresh("rt-1", "grant-1", 40_000);
    s.insert_refresh_token(&rt).await.unwrap();
    let ctx = s.refresh_context("rt-1").await.unwrap();
    assert_eq!((ctx.token, ctx.grant.grant.clone()), (rt.clone(), g));
    assert_eq!(
        person_of(&ctx.grant.user).as_deref(),
        Some("u1"),
        "the grant's person"
    );

    // A used token is still read (the caller tells a replay by `used_at`).
    s.rotate_refresh_token("rt-1", &refresh("rt-2", "grant-1", 41_000), 900)
        .await
        .unwrap();
    assert_eq!(
        s.refresh_context("rt-1").await.unwrap().token.used_at,
        Some(900)
    );
    // Unknown token, or a token whose grant is unknown: not found.
    assert!(matches!(
        s.refresh_context("ghost").await,
        Err(StoreError::NotFound)
    ));
    s.insert_refresh_token(&refresh("rt-stray", "grant-ghost", 40_000))
        .await
        .unwrap();
    assert!(matches!(
        s.refresh_context("rt-stray").await,
        Err(StoreError::NotFound)
    ));
}

pub async fn rotation_issuing_stores_the_reference_token_with_the_successor(s: &dyn Store) {
    let rt1 = refresh("rt-1", "grant-1", 40_000);
    s.insert_refresh_token(&rt1).await.unwrap();
    let rt2 = refresh("rt-2", "grant-1", 41_000);
    let used = RefreshToken {
        used_at: Some(900),
        dpop_jkt: None,
        ..rt1.clone()
    };
    assert_eq!(
        s.rotate_refresh_token_issuing("rt-1", &rt2, Some(&reference("ref-1")), 900)
            .await
            .unwrap(),
        Redeemed::Fresh(used.clone())
    );
    assert_eq!(s.refresh_token("rt-1").await.unwrap(), used);
    assert_eq!(s.refresh_token("rt-2").await.unwrap(), rt2);
    assert_eq!(
        s.reference_token("ref-1").await.unwrap(),
        reference("ref-1")
    );

    // A replay reports the family and writes nothing.
    assert_eq!(
        s.rotate_refresh_token_issuing(
            "rt-1",
            &refresh("rt-3", "grant-1", 42_000),
            Some(&reference("ref-2")),
            901
        )
        .await
        .unwrap(),
        Redeemed::Replayed {
            grant_id: "grant-1".into()
        }
    );
    assert!(matches!(
        s.refresh_token("rt-3").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.reference_token("ref-2").await,
        Err(StoreError::NotFound)
    ));

    // Unknown token: not found, nothing written.
    assert!(matches!(
        s.rotate_refresh_token_issuing(
            "ghost",
            &refresh("rt-4", "grant-1", 42_000),
            Some(&reference("ref-4")),
            902
        )
        .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.reference_token("ref-4").await,
        Err(StoreError::NotFound)
    ));

    // A record that cannot be stored undoes the whole rotation.
    assert!(matches!(
        s.rotate_refresh_token_issuing(
            "rt-2",
            &refresh("rt-5", "grant-1", 42_000),
            Some(&reference("ref-1")),
            903
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.refresh_token("rt-2").await.unwrap(), rt2);
    assert!(matches!(
        s.refresh_token("rt-5").await,
        Err(StoreError::NotFound)
    ));

    // Without an access token record (JWT access tokens).
    assert!(matches!(
        s.rotate_refresh_token_issuing("rt-2", &refresh("rt-6", "grant-1", 43_000), None, 904)
            .await
            .unwrap(),
        Redeemed::Fresh(_)
    ));
    assert!(s.refresh_token("rt-6").await.is_ok());
}

pub async fn concurrent_rotations_issuing_have_one_winner(s: &dyn Store) {
    const RACERS: usize = 8;
    s.insert_refresh_token(&refresh("rt-race", "grant-race", 40_000))
        .await
        .unwrap();
    let successors: Vec<(RefreshToken, ReferenceToken)> = (0..RACERS)
        .map(|i| {
            (
                refresh(&format!("rt-race-next-{i}"), "grant-race", 41_000),
                reference(&format!("ref-race-{i}")),
            )
        })
        .collect();
    let results = join_all(
        successors
            .iter()
            .map(|(next, r)| s.rotate_refresh_token_issuing("rt-race", next, Some(r), 1500))
            .collect(),
    )
    .await;
    let mut fresh = 0;
    for (result, (next, r)) in results.into_iter().zip(&successors) {
        let stored = (
            s.refresh_token(&next.digest).await.is_ok(),
            s.reference_token(&r.digest).await.is_ok(),
        );
        match result.unwrap() {
            Redeemed::Fresh(old) => {
                assert_eq!((old.digest.as_str(), old.used_at), ("rt-race", Some(1500)));
                assert_eq!(stored, (true, true));
                fresh += 1;
            }
            Redeemed::Replayed { grant_id } => {
                assert_eq!(grant_id, "grant-race");
                assert_eq!(stored, (false, false));
            }
        }
    }
    assert_eq!(fresh, 1, "exactly one concurrent rotation wins");
}

pub async fn claim_code_issuing_claims_once_and_stores_both_records_with_it(s: &dyn Store) {
    s.insert_grant(&grant("grant-1")).await.unwrap();
    s.insert_code(&code("code-1", "grant-1", 30_000))
        .await
        .unwrap();
    let rt = refresh("rt-1", "grant-1", 40_000);
    assert!(
        s.claim_code_issuing("code-1", Some(&rt), Some(&reference("ref-1")), 801)
            .await
            .unwrap()
    );
    assert_eq!(s.refresh_token("rt-1").await.unwrap(), rt);
    assert_eq!(
        s.reference_token("ref-1").await.unwrap(),
        reference("ref-1")
    );
    // Claimed: a second claim writes nothing, and the code reads as used, at
    // once (the redemption ended with the claim), on every port.
    let again = refresh("rt-1b", "grant-1", 40_000);
    assert!(
        !s.claim_code_issuing("code-1", Some(&again), None, 802)
            .await
            .unwrap()
    );
    assert!(matches!(
        s.refresh_token("rt-1b").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.code_context("code-1").await.unwrap(),
        Redeemed::Replayed { grant_id } if grant_id == "grant-1"
    ));

    // Nothing to store (JWT access token, no refresh token; or a failed
    // attempt burning the code): only the claim.
    s.insert_code(&code("code-2", "grant-1", 30_000))
        .await
        .unwrap();
    assert!(
        s.claim_code_issuing("code-2", None, None, 804)
            .await
            .unwrap()
    );
    assert!(matches!(
        s.code_context("code-2").await.unwrap(),
        Redeemed::Replayed { grant_id } if grant_id == "grant-1"
    ));

    // A record that cannot be stored: nothing is, and the code stays unused.
    s.insert_code(&code("code-3", "grant-1", 30_000))
        .await
        .unwrap();
    assert!(matches!(
        s.claim_code_issuing(
            "code-3",
            Some(&refresh("rt-3", "grant-1", 40_000)),
            Some(&reference("ref-1")),
            807
        )
        .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.refresh_token("rt-3").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.code_context("code-3").await.unwrap(),
        Redeemed::Fresh(_)
    ));

    // A revoked grant's code is never claimed.
    s.insert_grant(&grant("grant-2")).await.unwrap();
    s.insert_code(&code("code-4", "grant-2", 30_000))
        .await
        .unwrap();
    s.revoke_grant("grant-2", 808).await.unwrap();
    let late = refresh("rt-4", "grant-2", 40_000);
    assert!(
        !s.claim_code_issuing("code-4", Some(&late), None, 809)
            .await
            .unwrap()
    );
    assert!(matches!(
        s.refresh_token("rt-4").await,
        Err(StoreError::NotFound)
    ));
}

pub async fn code_context_reads_the_code_with_its_grant_and_claims_nothing(s: &dyn Store) {
    seed_people(s).await;
    let g = grant("grant-1");
    s.insert_grant(&g).await.unwrap();
    let c = code("code-1", "grant-1", 30_000);
    s.insert_code(&c).await.unwrap();
    for _ in 0..2 {
        let Redeemed::Fresh(ctx) = s.code_context("code-1").await.unwrap() else {
            panic!("an unused code reads as fresh, however often it is read");
        };
        assert_eq!((&ctx.code, &ctx.grant.grant), (&c, &g));
        let developer = s.role("o1", "developer").await.unwrap();
        assert_eq!(
            person(&ctx.grant),
            Some((s.user_by_id("u1").await.unwrap(), developer.permissions))
        );
    }
    // Burnt by a failed attempt: read as used.
    s.burn_code("code-1", 800).await.unwrap();
    assert!(matches!(
        s.code_context("code-1").await.unwrap(),
        Redeemed::Replayed { grant_id } if grant_id == "grant-1"
    ));
    assert!(matches!(
        s.code_context("ghost").await,
        Err(StoreError::NotFound)
    ));

    // The person is gone: the code reads without a person.
    s.insert_grant(&Grant {
        user_id: "u-gone".into(),
        ..grant("grant-orphan")
    })
    .await
    .unwrap();
    s.insert_code(&code("code-orphan", "grant-orphan", 30_000))
        .await
        .unwrap();
    let Redeemed::Fresh(ctx) = s.code_context("code-orphan").await.unwrap() else {
        panic!("an unused code reads as fresh");
    };
    assert_eq!(person_of(&ctx.grant.user), None);

    // Concurrent claims after concurrent reads: exactly one claims the code
    // and stores its refresh token.
    s.insert_code(&code("code-race", "grant-1", 30_000))
        .await
        .unwrap();
    let tokens: Vec<RefreshToken> = (0..8)
        .map(|i| refresh(&format!("rt-race-{i}"), "grant-1", 40_000))
        .collect();
    let results = join_all(
        tokens
            .iter()
            .map(|t| s.claim_code_issuing("code-race", Some(t), None, 806))
            .collect(),
    )
    .await;
    let mut claimed = 0;
    for (t, r) in tokens.iter().zip(results) {
        let stored = s.refresh_token(&t.digest).await.is_ok();
        assert_eq!(stored, *r.as_ref().unwrap(), "{}", t.digest);
        claimed += usize::from(r.unwrap());
    }
    assert_eq!(claimed, 1, "exactly one concurrent claim wins");
}
