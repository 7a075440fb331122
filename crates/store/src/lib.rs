//! The Store conformance suite: one contract, every backend. `run_all` exercises
//! each port operation with its edge cases (not found, conflicts, the change feed
//! written in the same transaction as the change). Backends call it from their own
//! tests with a fresh, empty store.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test suite: a failed step must stop it loudly

use gatehouse_core::model::*;
use gatehouse_core::ports::{Store, StoreError};
use serde_json::json;

pub async fn run_all(store: &dyn Store) {
    orgs_and_roles(store).await;
    users(store).await;
    apis(store).await;
    apps_and_the_change_feed(store).await;
    reference_tokens(store).await;
    keys(store).await;
}

fn org(id: &str) -> Org {
    Org {
        id: id.into(),
        slug: format!("slug-{id}"),
        name: format!("Org {id}"),
        created_at: 100,
    }
}

fn user(id: &str, org_id: &str, email: &str) -> User {
    User {
        id: id.into(),
        org_id: org_id.into(),
        email: email.into(),
        name: Some("Dev".into()),
        password_hash: Some("$argon2id$x".into()),
        role: "developer".into(),
        groups: vec!["ops".into(), "eu".into()],
        status: UserStatus::Active,
        created_at: 101,
    }
}

fn api(id: &str, org_id: &str, aud: &str) -> Api {
    Api {
        id: id.into(),
        org_id: org_id.into(),
        name: "Gateway".into(),
        audience: aud.into(),
        scopes: vec!["cfgateway".into(), "products:read".into()],
        token_format: TokenFormat::Reference,
        signing_alg: SigningAlg::EdDSA,
        access_token_ttl: 600,
        client_id: format!("api-client-{id}"),
        secret_hash: "h".into(),
        created_at: 102,
    }
}

fn app(id: &str, org_id: &str, on_behalf: &str) -> App {
    App {
        id: id.into(),
        client_id: format!("client-{id}"),
        org_id: org_id.into(),
        name: "Nightly sync".into(),
        description: Some("syncs".into()),
        grant_types: vec![GrantType::ClientCredentials],
        on_behalf_of: Some(on_behalf.into()),
        redirect_uris: vec!["https://a.example/cb".into()],
        post_logout_redirect_uris: vec![],
        scopes: vec!["cfgateway".into()],
        default_scopes: vec!["cfgateway".into()],
        default_audience: Some("https://gw.example".into()),
        secret_hash: "digest-1".into(),
        generation: 1,
        status: AppStatus::Active,
        created_at: 103,
    }
}

async fn orgs_and_roles(s: &dyn Store) {
    let o = org("o1");
    s.insert_org(&o, &Role::defaults("o1")).await.unwrap();
    assert_eq!(s.org_by_id("o1").await.unwrap(), o);
    assert_eq!(s.org_by_slug("slug-o1").await.unwrap(), o);
    assert!(matches!(
        s.org_by_slug("nope").await,
        Err(StoreError::NotFound)
    ));
    let mut clash = org("o1-other");
    clash.slug = o.slug.clone();
    assert!(matches!(
        s.insert_org(&clash, &[]).await,
        Err(StoreError::Conflict(_))
    ));
    // The failed insert left nothing behind.
    assert!(matches!(
        s.org_by_id("o1-other").await,
        Err(StoreError::NotFound)
    ));
    let roles = s.list_roles("o1").await.unwrap();
    assert_eq!(
        roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["admin", "developer", "member"]
    );
    assert!(
        s.role("o1", "admin")
            .await
            .unwrap()
            .permissions
            .contains(&PERM_APPS_MANAGE.to_owned())
    );
    assert!(matches!(
        s.role("o1", "ghost").await,
        Err(StoreError::NotFound)
    ));
    s.insert_org(&org("o2"), &Role::defaults("o2"))
        .await
        .unwrap();
    assert_eq!(s.list_orgs().await.unwrap().len(), 2);
}

async fn users(s: &dyn Store) {
    let u = user("u1", "o1", "dev@acme.test");
    s.insert_user(&u).await.unwrap();
    assert_eq!(s.user_by_id("u1").await.unwrap(), u);
    assert_eq!(s.user_by_email("dev@acme.test").await.unwrap(), u);
    assert!(matches!(
        s.insert_user(&user("u2", "o2", "dev@acme.test")).await,
        Err(StoreError::Conflict(_))
    ));
    s.insert_user(&user("u3", "o1", "ops@acme.test"))
        .await
        .unwrap();
    assert_eq!(s.list_users("o1").await.unwrap().len(), 2);
    assert!(s.list_users("o2").await.unwrap().is_empty());

    let before = s.latest_change().await.unwrap();
    s.set_user_status("u3", UserStatus::Deactivated, 200)
        .await
        .unwrap();
    assert_eq!(
        s.user_by_id("u3").await.unwrap().status,
        UserStatus::Deactivated
    );
    let changes = s.changes_since(before, 10).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].kind, changes[0].key.as_str(), changes[0].at),
        (ChangeKind::User, "u3", 200)
    );
    assert!(matches!(
        s.set_user_status("ghost", UserStatus::Active, 1).await,
        Err(StoreError::NotFound)
    ));
}

async fn apis(s: &dyn Store) {
    let a = api("api1", "o1", "https://gw.example");
    s.insert_api(&a).await.unwrap();
    assert_eq!(s.api_by_audience("https://gw.example").await.unwrap(), a);
    assert_eq!(s.api_by_client_id("api-client-api1").await.unwrap(), a);
    assert!(matches!(
        s.insert_api(&api("api2", "o2", "https://gw.example")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.apis_for_org("o1").await.unwrap(), vec![a]);
    assert!(s.apis_for_org("o2").await.unwrap().is_empty());
}

async fn apps_and_the_change_feed(s: &dyn Store) {
    let a = app("a1", "o1", "u1");
    s.insert_app(&a).await.unwrap();
    assert_eq!(s.app_by_client_id("client-a1").await.unwrap(), a);
    assert!(matches!(
        s.insert_app(&a).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.apps_for_org("o1").await.unwrap().len(), 1);

    let start = s.latest_change().await.unwrap();
    assert_eq!(
        s.rotate_app_secret("client-a1", "digest-2", 300)
            .await
            .unwrap(),
        2
    );
    let after = s.app_by_client_id("client-a1").await.unwrap();
    assert_eq!(
        (after.secret_hash.as_str(), after.generation),
        ("digest-2", 2)
    );
    assert_eq!(
        s.set_app_on_behalf_of("client-a1", "u3", 301)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        s.app_by_client_id("client-a1")
            .await
            .unwrap()
            .on_behalf_of
            .as_deref(),
        Some("u3")
    );
    assert!(matches!(
        s.rotate_app_secret("ghost", "d", 1).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.set_app_on_behalf_of("ghost", "u1", 1).await,
        Err(StoreError::NotFound)
    ));

    s.delete_app("client-a1", 302).await.unwrap();
    assert!(matches!(
        s.app_by_client_id("client-a1").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.delete_app("client-a1", 303).await,
        Err(StoreError::NotFound)
    ));

    let changes = s.changes_since(start, 100).await.unwrap();
    let seen: Vec<(ChangeKind, &str, i64)> = changes
        .iter()
        .map(|c| (c.kind, c.key.as_str(), c.at))
        .collect();
    assert_eq!(
        seen,
        [
            (ChangeKind::App, "client-a1", 300),
            (ChangeKind::App, "client-a1", 301),
            (ChangeKind::App, "client-a1", 302)
        ]
    );
    assert!(changes.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(s.latest_change().await.unwrap(), changes[2].seq);
    assert_eq!(s.changes_since(start, 2).await.unwrap().len(), 2);
    assert!(
        s.changes_since(changes[2].seq, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn reference_tokens(s: &dyn Store) {
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

async fn keys(s: &dyn Store) {
    let k = StoredKey {
        kid: "k1".into(),
        alg: SigningAlg::ES256,
        state: KeyState::Active,
        sealed_private_key: "sealed".into(),
        created_at: 5,
    };
    s.insert_key(&k).await.unwrap();
    assert!(matches!(
        s.insert_key(&k).await,
        Err(StoreError::Conflict(_))
    ));
    s.set_key_state("k1", KeyState::Retired).await.unwrap();
    let keys = s.list_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].state, KeyState::Retired);
    assert!(matches!(
        s.set_key_state("ghost", KeyState::Active).await,
        Err(StoreError::NotFound)
    ));
}
