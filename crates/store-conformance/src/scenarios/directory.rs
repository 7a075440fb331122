//! Organizations, their roles, people and APIs.

use gatehouse_core::model::*;
use gatehouse_core::ports::{Store, StoreError};

use crate::fixtures::{api, ev, org, seed_orgs, user};

pub async fn orgs_and_roles(s: &dyn Store) {
    let o = org("o1");
    s.insert_org(&o, &Role::defaults("o1"), &ev())
        .await
        .unwrap();
    assert_eq!(s.org_by_id("o1").await.unwrap(), o);
    assert_eq!(s.org_by_slug("slug-o1").await.unwrap(), o);
    assert!(matches!(
        s.org_by_slug("nope").await,
        Err(StoreError::NotFound)
    ));
    let mut clash = org("o1-other");
    clash.slug = o.slug.clone();
    assert!(matches!(
        s.insert_org(&clash, &[], &ev()).await,
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
    s.insert_org(&org("o2"), &Role::defaults("o2"), &ev())
        .await
        .unwrap();
    assert_eq!(s.list_orgs().await.unwrap().len(), 2);
}

pub async fn users(s: &dyn Store) {
    seed_orgs(s).await;
    let u = user("u1", "o1", "dev@acme.test");
    s.insert_user(&u, &ev()).await.unwrap();
    assert_eq!(s.user_by_id("u1").await.unwrap(), u);
    assert_eq!(s.user_by_email("o1", "dev@acme.test").await.unwrap(), u);
    assert!(matches!(
        s.insert_user(&user("u1b", "o1", "dev@acme.test"), &ev())
            .await,
        Err(StoreError::Conflict(_))
    ));
    // Unique per organization: another organization may have the same address.
    let twin = User {
        created_at: 102,
        ..user("u2", "o2", "dev@acme.test")
    };
    s.insert_user(&twin, &ev()).await.unwrap();
    assert_eq!(s.user_by_email("o2", "dev@acme.test").await.unwrap(), twin);
    assert!(matches!(
        s.user_by_email("o3", "dev@acme.test").await,
        Err(StoreError::NotFound)
    ));
    let both = s.users_by_email("dev@acme.test", 5).await.unwrap();
    assert_eq!(both, [u.clone(), twin.clone()]);
    assert_eq!(
        s.users_by_email("dev@acme.test", 1).await.unwrap(),
        std::slice::from_ref(&u)
    );
    s.insert_user(&user("u3", "o1", "ops@acme.test"), &ev())
        .await
        .unwrap();
    assert_eq!(s.list_users("o1").await.unwrap().len(), 2);
    assert_eq!(s.list_users("o2").await.unwrap(), [twin]);

    let before = s.latest_change().await.unwrap();
    s.set_user_status("u3", UserStatus::Deactivated, 200, &ev())
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
    assert_eq!(changes[0].org_id, "o1");
    assert!(matches!(
        s.set_user_status("ghost", UserStatus::Active, 1, &ev())
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn apis(s: &dyn Store) {
    seed_orgs(s).await;
    let a = api("api1", "o1", "https://gw.example");
    s.insert_api(&a, &ev()).await.unwrap();
    assert_eq!(s.api_by_audience("https://gw.example").await.unwrap(), a);
    assert_eq!(s.api_by_client_id("api-client-api1").await.unwrap(), a);
    assert!(matches!(
        s.insert_api(&api("api2", "o2", "https://gw.example"), &ev())
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.apis_for_org("o1").await.unwrap(), vec![a]);
    assert!(s.apis_for_org("o2").await.unwrap().is_empty());
}
