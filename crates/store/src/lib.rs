//! The Store conformance suite: one contract, every backend. `run_all` exercises
//! each port operation with its edge cases (not found, conflicts, the change feed
//! written in the same transaction as the change). Backends call it from their own
//! tests with a fresh, empty store.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test suite: a failed step must stop it loudly

use std::future::Future;
use std::task::Poll;

use gatehouse_core::model::*;
use gatehouse_core::ports::{Redeemed, Store, StoreError};
use serde_json::json;

pub async fn run_all(store: &dyn Store) {
    orgs_and_roles(store).await;
    users(store).await;
    apis(store).await;
    apps_and_the_change_feed(store).await;
    app_edits_and_the_audit_log(store).await;
    a_new_user_and_their_app_land_together(store).await;
    reference_tokens(store).await;
    keys(store).await;
    key_rotation(store).await;
    sessions(store).await;
    grants_and_revocation(store).await;
    deactivation_ends_a_users_tokens_for_good(store).await;
    auth_codes(store).await;
    refresh_tokens(store).await;
    consents(store).await;
    revoked_access_tokens(store).await;
    purge_keeps_live_records(store).await;
    concurrent_redemption(store).await;
    throttle_buckets(store).await;
}

/// Polls every future on the current task until all are done, results in input
/// order: concurrency without an executor or `futures` (the suite only borrows
/// the store, so it cannot spawn).
async fn join_all<F: Future + Unpin>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<Option<F>> = futs.into_iter().map(Some).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, done) in futs.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match std::pin::Pin::new(f).poll(cx) {
                    Poll::Ready(v) => {
                        *done = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.unwrap()).collect()
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
        tokens_valid_after: 0,
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
        last_used_at: None,
        require_pkce: false,
    }
}

async fn orgs_and_roles(s: &dyn Store) {
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

/// An audit event for calls whose audit trail is not under test.
fn ev() -> AuditEvent {
    AuditEvent::new(&Actor::operator(), "o1", 1, "test", "t", "test")
}

async fn users(s: &dyn Store) {
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

async fn apis(s: &dyn Store) {
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

/// Edits, status changes, access changes and use records; each change writes
/// its audit event in its own transaction, and a refused change writes none.
async fn app_edits_and_the_audit_log(s: &dyn Store) {
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
async fn a_new_user_and_their_app_land_together(s: &dyn Store) {
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

async fn apps_and_the_change_feed(s: &dyn Store) {
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
        activated_at: Some(5),
        retired_at: None,
    };
    let start = s.latest_change().await.unwrap();
    s.insert_key(&k).await.unwrap();
    assert!(matches!(
        s.insert_key(&k).await,
        Err(StoreError::Conflict(_))
    ));
    s.set_key_state("k1", KeyState::Retired, 6).await.unwrap();
    let keys = s.list_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].state, KeyState::Retired);
    assert_eq!(
        (keys[0].activated_at, keys[0].retired_at),
        (Some(5), Some(6))
    );
    assert!(matches!(
        s.set_key_state("ghost", KeyState::Active, 7).await,
        Err(StoreError::NotFound)
    ));
    // Both changes reach the feed (instances reload their key rings), the failures do not.
    let seen: Vec<(ChangeKind, String, i64)> = s
        .changes_since(start, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.kind, c.key, c.at))
        .collect();
    assert_eq!(
        seen,
        [
            (ChangeKind::Keys, "k1".to_owned(), 5),
            (ChangeKind::Keys, "k1".to_owned(), 6)
        ]
    );
}

/// One `next` key per algorithm; promoting it retires the active key and is
/// won by exactly one of concurrent callers; revoking stamps the time.
async fn key_rotation(s: &dyn Store) {
    let key = |kid: &str, state: KeyState| StoredKey {
        kid: kid.into(),
        alg: SigningAlg::EdDSA,
        state,
        sealed_private_key: "sealed".into(),
        created_at: 10,
        activated_at: (state == KeyState::Active).then_some(10),
        retired_at: None,
    };
    s.insert_key(&key("r-active", KeyState::Active))
        .await
        .unwrap();
    s.insert_key(&key("r-next", KeyState::Next)).await.unwrap();
    assert!(matches!(
        s.insert_key(&key("r-next-2", KeyState::Next)).await,
        Err(StoreError::Conflict(_))
    ));
    let audit = ev();
    let promotions = join_all(
        (0..4)
            .map(|_| s.promote_next_key("r-next", 20, &audit))
            .collect(),
    )
    .await;
    let won: Vec<bool> = promotions.into_iter().map(Result::unwrap).collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let state = |kid: &str| {
        let kid = kid.to_owned();
        async move {
            let all = s.list_keys().await.unwrap();
            let k = all.into_iter().find(|k| k.kid == kid).unwrap();
            (k.state, k.activated_at, k.retired_at)
        }
    };
    assert_eq!(state("r-next").await, (KeyState::Active, Some(20), None));
    assert_eq!(
        state("r-active").await,
        (KeyState::Retired, Some(10), Some(20))
    );
    // The next `next` key may be made now.
    s.insert_key(&key("r-next-3", KeyState::Next))
        .await
        .unwrap();
    s.revoke_key("r-next", 30, &ev()).await.unwrap();
    assert_eq!(
        state("r-next").await,
        (KeyState::Revoked, Some(20), Some(30))
    );
    assert!(matches!(
        s.revoke_key("ghost", 30, &ev()).await,
        Err(StoreError::NotFound)
    ));
}

// Sessions, grants and their tokens. Everything that is not meant to expire in
// a test lives until at least 20_000; `purge_keeps_live_records` works below that.

fn session(digest: &str, sid: &str, expires_at: i64) -> Session {
    Session {
        id_digest: digest.into(),
        sid: sid.into(),
        user_id: "u1".into(),
        auth_time: 500,
        expires_at,
    }
}

fn grant(id: &str) -> Grant {
    Grant {
        id: id.into(),
        client_id: "client-web".into(),
        user_id: "u1".into(),
        scopes: vec!["openid".into(), "cfgateway".into()],
        audience: Some("https://gw.example".into()),
        generation: 4,
        sid: Some("sid-1".into()),
        auth_time: 500,
        created_at: 510,
        revoked_at: None,
    }
}

fn code(digest: &str, grant_id: &str, expires_at: i64) -> AuthCode {
    AuthCode {
        digest: digest.into(),
        grant_id: grant_id.into(),
        client_id: "client-web".into(),
        redirect_uri: "https://web.example/cb".into(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        expires_at,
    }
}

fn refresh(digest: &str, grant_id: &str, expires_at: i64) -> RefreshToken {
    RefreshToken {
        digest: digest.into(),
        grant_id: grant_id.into(),
        client_id: "client-web".into(),
        scopes: vec!["openid".into(), "offline_access".into()],
        expires_at,
        used_at: None,
    }
}

async fn sessions(s: &dyn Store) {
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

async fn grants_and_revocation(s: &dyn Store) {
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
async fn deactivation_ends_a_users_tokens_for_good(s: &dyn Store) {
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

async fn auth_codes(s: &dyn Store) {
    let c = code("code-1", "grant-2", 30_000);
    s.insert_code(&c).await.unwrap();
    assert!(matches!(
        s.insert_code(&c).await,
        Err(StoreError::Conflict(_))
    ));
    let before = s.latest_change().await.unwrap();
    assert_eq!(
        s.redeem_code("code-1", 800).await.unwrap(),
        Redeemed::Fresh(c.clone())
    );
    assert_eq!(
        s.redeem_code("code-1", 801).await.unwrap(),
        Redeemed::Replayed {
            grant_id: "grant-2".into()
        }
    );
    assert!(matches!(
        s.redeem_code("ghost", 802).await,
        Err(StoreError::NotFound)
    ));
    // Expiry is the caller's rule: an expired code still redeems here.
    let late = AuthCode {
        nonce: None,
        code_challenge: None,
        ..code("code-2", "grant-1", 20_000)
    };
    s.insert_code(&late).await.unwrap();
    assert_eq!(
        s.redeem_code("code-2", 25_000).await.unwrap(),
        Redeemed::Fresh(late)
    );
    // Redeeming is not a change the feed carries.
    assert_eq!(s.latest_change().await.unwrap(), before);
}

async fn refresh_tokens(s: &dyn Store) {
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

async fn consents(s: &dyn Store) {
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

async fn revoked_access_tokens(s: &dyn Store) {
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

async fn purge_keeps_live_records(s: &dyn Store) {
    // Expired: before 6_000. Live: at 6_000 (purge drops `expires_at < now`).
    for (tag, exp) in [("old", 5_000), ("live", 6_000)] {
        s.insert_session(&session(&format!("sess-{tag}"), &format!("sid-{tag}"), exp))
            .await
            .unwrap();
        s.insert_code(&code(&format!("code-{tag}"), "grant-2", exp))
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
    assert_eq!(s.purge_expired_tokens(6_000).await.unwrap(), 5);
    assert_eq!(s.purge_expired_tokens(6_000).await.unwrap(), 0);

    assert!(matches!(
        s.session("sess-old", 0).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.redeem_code("code-old", 1300).await,
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
        s.redeem_code("code-live", 1300).await.unwrap(),
        Redeemed::Fresh(_)
    ));
    assert!(s.refresh_token("rt-live").await.is_ok());
    assert!(s.is_access_token_revoked("jti-live").await.unwrap());
    assert!(s.reference_token("d-live").await.is_ok());
    // Records from the earlier steps, all alive past 6_000, are untouched.
    assert!(s.session("sess-1", 10_000).await.is_ok());
    assert!(s.refresh_token("rt-2").await.is_ok());
    assert!(s.is_access_token_revoked("jti-1").await.unwrap());
    assert!(s.grant("grant-1").await.is_ok());
}

async fn concurrent_redemption(s: &dyn Store) {
    const RACERS: usize = 8;
    s.insert_grant(&grant("grant-race")).await.unwrap();

    s.insert_code(&code("code-race", "grant-race", 30_000))
        .await
        .unwrap();
    let results = join_all(
        (0..RACERS)
            .map(|_| s.redeem_code("code-race", 1400))
            .collect(),
    )
    .await;
    let mut fresh = 0;
    for r in results {
        match r.unwrap() {
            Redeemed::Fresh(c) => {
                assert_eq!(c.digest, "code-race");
                fresh += 1;
            }
            Redeemed::Replayed { grant_id } => assert_eq!(grant_id, "grant-race"),
        }
    }
    assert_eq!(fresh, 1, "exactly one concurrent redemption wins");

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

/// Failure buckets: each failure counts once, levels drain with time, keys are apart.
async fn throttle_buckets(s: &dyn Store) {
    let rate = 0.5; // drains one failure every two seconds
    assert_eq!(
        s.failure_level("ip:10.0.0.1", rate, 1000.0).await.unwrap(),
        0.0
    );
    assert_eq!(
        s.add_failure("ip:10.0.0.1", rate, 1000.0).await.unwrap(),
        0.0
    );
    assert_eq!(
        s.add_failure("ip:10.0.0.1", rate, 1000.0).await.unwrap(),
        1.0
    );
    assert_eq!(
        s.add_failure("ip:10.0.0.1", rate, 1000.0).await.unwrap(),
        2.0
    );
    assert_eq!(
        s.failure_level("ip:10.0.0.1", rate, 1000.0).await.unwrap(),
        3.0
    );
    // Two seconds later one failure has drained; another key is untouched.
    assert_eq!(
        s.failure_level("ip:10.0.0.1", rate, 1002.0).await.unwrap(),
        2.0
    );
    assert_eq!(
        s.add_failure("ip:10.0.0.1", rate, 1002.0).await.unwrap(),
        2.0
    );
    assert_eq!(
        s.failure_level("client:x", rate, 1002.0).await.unwrap(),
        0.0
    );
    // Long after, empty again; a clock a little behind never adds failures.
    assert_eq!(
        s.failure_level("ip:10.0.0.1", rate, 2000.0).await.unwrap(),
        0.0
    );
    assert_eq!(
        s.add_failure("ip:10.0.0.1", rate, 1001.0).await.unwrap(),
        3.0
    );
}
