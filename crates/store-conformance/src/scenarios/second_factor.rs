//! Second factors: an authenticator counts once confirmed, each time step and
//! each recovery code is accepted once (one winner of concurrent accepts), and
//! the organization's policy reads back; sessions and grants keep their `amr`.

use gatehouse_core::mfa;
use gatehouse_core::model::Session;
use gatehouse_core::ports::{Store, StoreError};

use crate::fixtures::{ev, grant, join_all, seed_people, session};

pub async fn a_second_factor_counts_once_confirmed_and_each_code_works_once(s: &dyn Store) {
    seed_people(s).await;
    assert!(matches!(
        s.totp_factor("u1").await,
        Err(StoreError::NotFound)
    ));
    s.begin_totp("u1", "sealed-1", 100).await.unwrap();
    // Unconfirmed: begun again, replaced; nothing accepts a step yet.
    s.begin_totp("u1", "sealed-2", 110).await.unwrap();
    let f = s.totp_factor("u1").await.unwrap();
    assert_eq!(
        (f.sealed_secret.as_str(), f.confirmed_at),
        ("sealed-2", None)
    );
    assert!(!s.accept_totp_step("u1", 5).await.unwrap());
    let digests = vec!["d1".to_owned(), "d2".to_owned()];
    s.confirm_totp("u1", 10, &digests, 120, &ev())
        .await
        .unwrap();
    assert!(matches!(
        s.confirm_totp("u1", 11, &digests, 121, &ev()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.begin_totp("u1", "sealed-3", 130).await,
        Err(StoreError::Conflict(_))
    ));
    let f = s.totp_factor("u1").await.unwrap();
    assert_eq!((f.confirmed_at, f.last_step), (Some(120), 10));
    // Only later steps, each once; of concurrent accepts of one step, one wins.
    assert!(!s.accept_totp_step("u1", 10).await.unwrap());
    assert!(!s.accept_totp_step("u1", 9).await.unwrap());
    let wins = join_all(
        (0..8)
            .map(|_| Box::pin(s.accept_totp_step("u1", 11)))
            .collect(),
    )
    .await;
    assert_eq!(wins.into_iter().filter(|w| *w.as_ref().unwrap()).count(), 1);
    // Recovery codes: each once, only the person's own.
    assert_eq!(s.recovery_codes_left("u1").await.unwrap(), 2);
    assert!(!s.use_recovery_code("u2", "d1", 140).await.unwrap());
    assert!(s.use_recovery_code("u1", "d1", 140).await.unwrap());
    assert!(!s.use_recovery_code("u1", "d1", 141).await.unwrap());
    assert_eq!(s.recovery_codes_left("u1").await.unwrap(), 1);
    // Removal takes the codes with it.
    s.remove_totp("u1", &ev()).await.unwrap();
    assert!(matches!(
        s.remove_totp("u1", &ev()).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.recovery_codes_left("u1").await.unwrap(), 0);
    // The policy.
    assert!(!s.org_requires_mfa("o1").await.unwrap());
    s.set_org_requires_mfa("o1", true, &ev()).await.unwrap();
    assert!(s.org_requires_mfa("o1").await.unwrap());
    assert!(matches!(
        s.set_org_requires_mfa("ghost", true, &ev()).await,
        Err(StoreError::NotFound)
    ));
    // Sessions and grants keep how the person signed in.
    let strong = Session {
        amr: mfa::amr_password_otp(),
        ..session("digest-mfa", "sid-mfa", 10_000)
    };
    s.insert_session(&strong).await.unwrap();
    assert_eq!(
        s.session("digest-mfa", 600).await.unwrap().amr,
        mfa::amr_password_otp()
    );
    let g = gatehouse_core::model::Grant {
        amr: mfa::amr_password_otp(),
        ..grant("grant-mfa")
    };
    s.insert_grant(&g).await.unwrap();
    assert_eq!(
        s.grant("grant-mfa").await.unwrap().amr,
        mfa::amr_password_otp()
    );
}
