//! Apps: registration, edits, credential generations and the change feed they write.

use gatehouse_core::model::*;
use gatehouse_core::ports::{Store, StoreError};

use crate::fixtures::{app, ev, seed_orgs, seed_people, user};

pub async fn apps_and_the_change_feed(s: &dyn Store) {
    seed_people(s).await;
    let a = app("a1", "o1", "u1");
    s.insert_app(&a, &ev()).await.unwrap();
    assert_eq!(s.app_by_client_id("client-a1").await.unwrap(), a);
    assert!(matches!(
        s.insert_app(&a, &ev()).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.apps_for_org("o1").await.unwrap().len(), 1);

    let start = s.latest_change().await.unwrap();
    assert_eq!(
        s.rotate_app_secret("client-a1", "digest-2", 300, &ev())
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
        s.set_app_on_behalf_of("client-a1", "u3", 301, &ev())
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
        s.rotate_app_secret("ghost", "d", 1, &ev()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.set_app_on_behalf_of("ghost", "u1", 1, &ev()).await,
        Err(StoreError::NotFound)
    ));

    s.delete_app("client-a1", 302, &ev()).await.unwrap();
    assert!(matches!(
        s.app_by_client_id("client-a1").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.delete_app("client-a1", 303, &ev()).await,
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

/// Edits, status changes, access changes and use records; each change writes
/// its audit event in its own transaction, and a refused change writes none.
pub async fn app_edits_and_the_audit_log(s: &dyn Store) {
    seed_people(s).await;
    let actor = Actor {
        kind: ActorKind::User,
        id: "u1".into(),
        name: "dev@acme.test".into(),
        org_id: Some("o1".into()),
        address: "192.0.2.7".into(),
    };
    let at = |n: i64, action: &str, target: &str| {
        AuditEvent::new(
            &actor,
            "o1",
            n,
            action,
            target,
            format!("{action} {target}"),
        )
    };
    let before_audit = s.audit_events("o1", None, 500).await.unwrap().len();
    let mut a = app("e1", "o1", "u1");
    a.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
    a.on_behalf_of = None;
    s.insert_app(&a, &at(400, "app.register", "client-e1"))
        .await
        .unwrap();
    // A refused insert (duplicate) leaves no audit event behind.
    assert!(
        s.insert_app(&a, &at(401, "app.register", "dup"))
            .await
            .is_err()
    );

    let start = s.latest_change().await.unwrap();
    let mut edited = a.clone();
    edited.name = "Renamed".into();
    edited.description = None;
    edited.redirect_uris = vec!["https://b.example/cb".into(), "https://c.example/cb".into()];
    edited.post_logout_redirect_uris = vec!["https://b.example/bye".into()];
    edited.scopes = vec!["cfgateway".into(), "openid".into()];
    edited.default_scopes = vec!["openid".into()];
    edited.default_audience = None;
    edited.require_pkce = true;
    edited.require_par = true;
    edited.exchange_audiences = vec!["https://orders.example".into()];
    // Fields an edit must not touch, even if the record passed says otherwise.
    let mut sneaky = edited.clone();
    sneaky.secret_hash = "stolen".into();
    sneaky.generation = 99;
    s.update_app(&sneaky, 402, &at(402, "app.update", "client-e1"))
        .await
        .unwrap();
    assert_eq!(s.app_by_client_id("client-e1").await.unwrap(), edited);
    let mut ghost = edited.clone();
    ghost.client_id = "ghost".into();
    assert!(matches!(
        s.update_app(&ghost, 403, &at(403, "app.update", "ghost"))
            .await,
        Err(StoreError::NotFound)
    ));

    assert_eq!(
        s.set_app_status(
            "client-e1",
            AppStatus::Disabled,
            404,
            &at(404, "app.disable", "client-e1")
        )
        .await
        .unwrap(),
        2
    );
    let disabled = s.app_by_client_id("client-e1").await.unwrap();
    assert_eq!(
        (disabled.status, disabled.generation),
        (AppStatus::Disabled, 2)
    );
    assert_eq!(
        s.set_app_status(
            "client-e1",
            AppStatus::Active,
            405,
            &at(405, "app.enable", "client-e1")
        )
        .await
        .unwrap(),
        3
    );
    assert!(matches!(
        s.set_app_status(
            "ghost",
            AppStatus::Active,
            406,
            &at(406, "app.enable", "ghost")
        )
        .await,
        Err(StoreError::NotFound)
    ));
    let changes = s.changes_since(start, 100).await.unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.kind, c.key.as_str()))
            .collect::<Vec<_>>(),
        vec![(ChangeKind::App, "client-e1"); 3]
    );

    // Last use: only ever moves forward, writes no change.
    let start = s.latest_change().await.unwrap();
    s.record_app_use(&[("client-e1".into(), 500), ("ghost".into(), 500)])
        .await
        .unwrap();
    s.record_app_use(&[("client-e1".into(), 450)])
        .await
        .unwrap();
    s.record_app_use(&[]).await.unwrap();
    assert_eq!(
        s.app_by_client_id("client-e1").await.unwrap().last_used_at,
        Some(500)
    );
    assert_eq!(s.latest_change().await.unwrap(), start);

    // Role and groups.
    s.set_user_access(
        "u1",
        "admin",
        &["leads".into()],
        407,
        &at(407, "user.set_access", "u1"),
    )
    .await
    .unwrap();
    let u = s.user_by_id("u1").await.unwrap();
    assert_eq!(
        (u.role.as_str(), u.groups.clone()),
        ("admin", vec!["leads".to_owned()])
    );
    assert_eq!(
        s.changes_since(start, 10).await.unwrap()[0].kind,
        ChangeKind::User
    );
    assert!(matches!(
        s.set_user_access(
            "ghost",
            "admin",
            &[],
            408,
            &at(408, "user.set_access", "ghost")
        )
        .await,
        Err(StoreError::NotFound)
    ));
    s.set_user_access("u1", "developer", &["ops".into(), "eu".into()], 409, &ev())
        .await
        .unwrap();

    // The log: newest first, per organization, paged by `before`, refused
    // changes absent.
    let log = s.audit_events("o1", None, 500).await.unwrap();
    let mine: Vec<(&str, &str, i64)> = log
        .iter()
        .filter(|e| e.actor_id == "u1")
        .map(|e| (e.action.as_str(), e.target.as_str(), e.at))
        .collect();
    assert_eq!(
        mine,
        vec![
            ("user.set_access", "u1", 407),
            ("app.enable", "client-e1", 405),
            ("app.disable", "client-e1", 404),
            ("app.update", "client-e1", 402),
            ("app.register", "client-e1", 400),
        ]
    );
    assert_eq!(log.len(), before_audit + 6);
    assert!(log.windows(2).all(|w| w[0].seq > w[1].seq));
    let e = &log[1];
    assert_eq!(
        (
            e.actor_kind,
            e.actor_name.as_str(),
            e.address.as_str(),
            e.org_id.as_str()
        ),
        (ActorKind::User, "dev@acme.test", "192.0.2.7", "o1")
    );
    let page = s.audit_events("o1", Some(log[1].seq), 2).await.unwrap();
    assert_eq!(page, log[2..4].to_vec());
    assert!(s.audit_events("nobody", None, 10).await.unwrap().is_empty());
    // A standalone security event (a sign-in) lands in the same log, newest first.
    let signin = AuditEvent {
        action: "signin.failed".into(),
        target: "user-1".into(),
        detail: "wrong password".into(),
        ..log[0].clone()
    };
    s.record_security_event(&signin).await.unwrap();
    let newest = &s.audit_events("o1", None, 1).await.unwrap()[0];
    assert!(newest.seq > log[0].seq);
    assert_eq!(
        (newest.action.as_str(), newest.detail.as_str()),
        ("signin.failed", "wrong password")
    );

    s.delete_app("client-e1", 410, &ev()).await.unwrap();
}

/// A user made on the registration form and the app acting for them: one
/// transaction, so a clash leaves neither (nor their audit events) behind.
pub async fn a_new_user_and_their_app_land_together(s: &dyn Store) {
    seed_orgs(s).await;
    let audits = s.audit_events("o1", None, 500).await.unwrap().len();
    let u = user("n1", "o1", "new@acme.test");
    let a = app("n1", "o1", "n1");
    let ev = |action: &str| AuditEvent::new(&Actor::operator(), "o1", 500, action, "t", action);
    s.insert_app_with_user(&u, &ev("user.create"), &a, &ev("app.register"))
        .await
        .unwrap();
    assert_eq!(s.user_by_id("n1").await.unwrap(), u);
    assert_eq!(s.app_by_client_id("client-n1").await.unwrap(), a);
    assert_eq!(
        s.audit_events("o1", None, 500).await.unwrap().len(),
        audits + 2
    );

    // The email is taken: the second app is not stored either.
    let mut clash = user("n2", "o1", "new@acme.test");
    clash.role = "admin".into();
    let b = app("n2", "o1", "n2");
    assert!(matches!(
        s.insert_app_with_user(&clash, &ev("user.create"), &b, &ev("app.register"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.user_by_id("n2").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.app_by_client_id("client-n2").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        s.audit_events("o1", None, 500).await.unwrap().len(),
        audits + 2
    );
    s.delete_app("client-n1", 501, &ev("app.delete"))
        .await
        .unwrap();
}

/// Apps' daily usage: each flush adds to the day's row (two instances' counts
/// sum up), counts for apps that are gone are dropped, reading is per
/// organization from a day on, deleting the app deletes its days, and the
/// purge drops days past the retention (90 days) only.
pub async fn app_usage_adds_up_per_day(s: &dyn Store) {
    seed_people(s).await;
    s.insert_app(&app("u1", "o1", "u1"), &ev()).await.unwrap();
    s.insert_app(&app("u2", "o2", "u2"), &ev()).await.unwrap();
    let day = |client_id: &str, day, tokens_issued, failed_auths| AppUsageDay {
        client_id: client_id.into(),
        day,
        tokens_issued,
        failed_auths,
    };
    let start = s.latest_change().await.unwrap();
    // Day 20_000 is 2024-10-04; 20_001 the day after.
    s.add_app_usage(&[
        day("client-u1", 20_000, 3, 1),
        day("client-u2", 20_000, 7, 0),
        day("ghost", 20_000, 5, 5),
    ])
    .await
    .unwrap();
    // Another instance's flush of the same day, and a new day.
    s.add_app_usage(&[
        day("client-u1", 20_000, 2, 4),
        day("client-u1", 20_001, 1, 0),
    ])
    .await
    .unwrap();
    s.add_app_usage(&[]).await.unwrap();
    assert_eq!(
        s.app_usage("o1", 0).await.unwrap(),
        vec![
            day("client-u1", 20_000, 5, 5),
            day("client-u1", 20_001, 1, 0)
        ]
    );
    assert_eq!(
        s.app_usage("o1", 20_001).await.unwrap(),
        vec![day("client-u1", 20_001, 1, 0)]
    );
    assert_eq!(
        s.app_usage("o2", 0).await.unwrap(),
        vec![day("client-u2", 20_000, 7, 0)]
    );
    assert!(s.app_usage("nobody", 0).await.unwrap().is_empty());
    // Counting writes no change (nothing ends, no cache goes stale).
    assert_eq!(s.latest_change().await.unwrap(), start);

    // The purge keeps 90 days: at day 20_091, day 20_000 goes, 20_001 stays.
    s.purge_expired_tokens(20_091 * 86_400 + 5).await.unwrap();
    assert_eq!(
        s.app_usage("o1", 0).await.unwrap(),
        vec![day("client-u1", 20_001, 1, 0)]
    );
    s.delete_app("client-u1", 500, &ev()).await.unwrap();
    s.insert_app(&app("u1", "o1", "u1"), &ev()).await.unwrap();
    assert!(s.app_usage("o1", 0).await.unwrap().is_empty());
}

/// A token exchange app (RFC 8693): its grant type URN and its exchange
/// audiences are stored as given, and an edit replaces the audiences.
pub async fn a_token_exchange_app_keeps_its_exchange_audiences(s: &dyn Store) {
    seed_people(s).await;
    let mut a = app("x1", "o1", "u1");
    a.grant_types = vec![GrantType::TokenExchange];
    a.on_behalf_of = None;
    a.exchange_audiences = vec![
        "https://orders.example".into(),
        "https://billing.example".into(),
    ];
    let audit = |n: i64, action: &str| {
        AuditEvent::new(
            &Actor::operator(),
            "o1",
            n,
            action,
            "client-x1",
            action.to_owned(),
        )
    };
    s.insert_app(&a, &audit(500, "app.register")).await.unwrap();
    assert_eq!(s.app_by_client_id("client-x1").await.unwrap(), a);
    let mut edited = a.clone();
    edited.exchange_audiences = vec![];
    s.update_app(&edited, 501, &audit(501, "app.update"))
        .await
        .unwrap();
    assert_eq!(s.app_by_client_id("client-x1").await.unwrap(), edited);
}
