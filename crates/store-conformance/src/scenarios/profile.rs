//! People's profile claims (OpenID Connect Core §5.1) and the `claims` request
//! a grant keeps (§5.5): both read back as written, through every read that
//! returns them, including the joined grant read of the code and refresh grants.

use gatehouse_core::claims::ClaimsRequest;
use gatehouse_core::model::*;
use gatehouse_core::ports::{Store, StoreError};

use crate::fixtures::{ev, grant, seed_orgs, user};

fn profile() -> Profile {
    Profile {
        given_name: Some("Zoë".into()),
        family_name: Some("Ångström".into()),
        locale: Some("fr-CA".into()),
        zoneinfo: Some("America/Argentina/Buenos_Aires".into()),
        email_verified: true,
        updated_at: 150,
    }
}

pub async fn user_profiles_read_back_and_change(s: &dyn Store) {
    seed_orgs(s).await;
    let u = User {
        profile: profile(),
        ..user("u1", "o1", "dev@acme.test")
    };
    s.insert_user(&u, &ev()).await.unwrap();
    let plain = user("u2", "o1", "ops@acme.test");
    s.insert_user(&plain, &ev()).await.unwrap();
    assert_eq!(s.user_by_id("u1").await.unwrap(), u);
    assert_eq!(s.user_by_email("o1", "dev@acme.test").await.unwrap(), u);
    assert_eq!(
        s.users_by_email("dev@acme.test", 5).await.unwrap(),
        std::slice::from_ref(&u)
    );
    assert_eq!(
        s.list_users("o1").await.unwrap(),
        [u.clone(), plain.clone()]
    );
    // No value is no value: NULLs read back as `None`, not as empty strings.
    assert_eq!(
        s.user_by_id("u2").await.unwrap().profile,
        Profile::default()
    );

    let audit_before = s.audit_events("o1", None, 500).await.unwrap().len();
    let feed_before = s.latest_change().await.unwrap();
    let changed = Profile {
        given_name: None,
        locale: Some("pt-BR".into()),
        email_verified: false,
        updated_at: 300,
        ..profile()
    };
    s.set_user_profile("u1", Some("Zoë Å."), &changed, &ev())
        .await
        .unwrap();
    let after = s.user_by_id("u1").await.unwrap();
    assert_eq!(
        (after.name.as_deref(), &after.profile),
        (Some("Zoë Å."), &changed)
    );
    // Everything else about the user is untouched.
    assert_eq!(
        User {
            name: u.name.clone(),
            profile: u.profile.clone(),
            ..after
        },
        u
    );
    s.set_user_profile("u1", None, &Profile::default(), &ev())
        .await
        .unwrap();
    let cleared = s.user_by_id("u1").await.unwrap();
    assert_eq!((cleared.name, cleared.profile), (None, Profile::default()));
    // The change is audited, and ends nothing (no change row).
    assert_eq!(
        s.audit_events("o1", None, 500).await.unwrap().len(),
        audit_before + 2
    );
    assert_eq!(s.latest_change().await.unwrap(), feed_before);
    assert!(matches!(
        s.set_user_profile("ghost", None, &profile(), &ev()).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn a_grant_keeps_its_claims_request(s: &dyn Store) {
    seed_orgs(s).await;
    let u = User {
        profile: profile(),
        ..user("u1", "o1", "dev@acme.test")
    };
    s.insert_user(&u, &ev()).await.unwrap();
    let requested = ClaimsRequest::parse(
        r#"{"id_token":{"given_name":null,"acr":{"essential":true,"values":["a","b"]}},"userinfo":{"locale":{"value":"fr"}}}"#,
    )
    .unwrap();
    let g = Grant {
        claims: requested,
        ..grant("grant-claims")
    };
    s.insert_grant(&g).await.unwrap();
    assert_eq!(s.grant("grant-claims").await.unwrap(), g);
    let ctx = s.grant_context("grant-claims").await.unwrap();
    assert_eq!(ctx.grant, g);
    assert_eq!(ctx.user.map(|a| a.user), Some(u));
    // A grant without one reads back with nothing requested.
    s.insert_grant(&grant("grant-plain")).await.unwrap();
    assert!(s.grant("grant-plain").await.unwrap().claims.is_empty());
}
