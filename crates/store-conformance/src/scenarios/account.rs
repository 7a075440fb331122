//! A person's own account: the apps they authorized (consent or a live
//! grant) and revoking one (its grants end, one change each, only theirs);
//! their sessions, ended all or all but one (with back-channel logouts); a
//! password change; and the roles that require a second factor.

use gatehouse_core::model::{ChangeKind, Consent, Grant, Session};
use gatehouse_core::ports::{Store, StoreError};

use crate::fixtures::{app, ev, grant, refresh, seed_people, session};

pub async fn a_person_lists_and_revokes_their_own_apps_and_ends_their_sessions(s: &dyn Store) {
    seed_people(s).await;
    // `client-web` is u1's app; `u3` (same organization) also allowed it.
    s.insert_app(&app("web", "o1", "u1"), &ev()).await.unwrap();
    let now = 5_000;
    assert!(s.authorized_apps("u1", now).await.unwrap().is_empty());
    s.save_consent(&Consent {
        user_id: "u1".into(),
        client_id: "client-web".into(),
        scopes: vec!["openid".into(), "cfgateway".into()],
        updated_at: 1_000,
    })
    .await
    .unwrap();
    s.insert_grant(&grant("g1")).await.unwrap();
    s.insert_refresh_token(&refresh("r1", "g1", 90_000))
        .await
        .unwrap();
    s.insert_grant(&Grant {
        user_id: "u3".into(),
        ..grant("g3")
    })
    .await
    .unwrap();
    let apps = s.authorized_apps("u1", now).await.unwrap();
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert_eq!(apps[0].client_id, "client-web");
    assert_eq!(apps[0].name, "Nightly sync");
    assert_eq!(apps[0].scopes, vec!["openid", "cfgateway"]);
    assert_eq!(apps[0].since, 1_000);
    // Unknown or someone else's: nothing to revoke.
    assert!(matches!(
        s.revoke_authorized_app("u1", "client-ghost", now, &ev())
            .await,
        Err(StoreError::NotFound)
    ));
    let before = s.latest_change().await.unwrap();
    assert_eq!(
        s.revoke_authorized_app("u1", "client-web", now, &ev())
            .await
            .unwrap(),
        1
    );
    assert!(s.grant("g1").await.unwrap().revoked_at.is_some());
    assert!(
        s.grant("g3").await.unwrap().revoked_at.is_none(),
        "only u1's grants"
    );
    assert!(matches!(
        s.consent("u1", "client-web").await,
        Err(StoreError::NotFound)
    ));
    let changes = s.changes_since(before, 10).await.unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        (changes[0].kind, changes[0].key.as_str()),
        (ChangeKind::Grant, "g1")
    );
    assert!(s.authorized_apps("u1", now).await.unwrap().is_empty());
    assert!(matches!(
        s.revoke_authorized_app("u1", "client-web", now, &ev())
            .await,
        Err(StoreError::NotFound)
    ));
    // u3's grant without consent is listed while it may hold a working token.
    assert_eq!(s.authorized_apps("u3", now).await.unwrap().len(), 1);
    assert!(
        s.authorized_apps("u3", 510 + 86_400 + 1)
            .await
            .unwrap()
            .is_empty()
    );

    // Sessions: newest first, live only; all but one end, then all.
    for (d, sid, at) in [
        ("d-a", "sid-a", 600),
        ("d-b", "sid-b", 700),
        ("d-c", "sid-c", 800),
    ] {
        s.insert_session(&Session {
            auth_time: at,
            ..session(d, sid, 90_000)
        })
        .await
        .unwrap();
    }
    s.insert_session(&Session {
        user_id: "u3".into(),
        ..session("d-u3", "sid-u3", 90_000)
    })
    .await
    .unwrap();
    let live = s.user_sessions("u1", now, 50).await.unwrap();
    let sids: Vec<&str> = live.iter().map(|x| x.sid.as_str()).collect();
    assert_eq!(sids, ["sid-c", "sid-b", "sid-a"]);
    assert_eq!(s.user_sessions("u1", now, 2).await.unwrap().len(), 2);
    assert_eq!(
        s.end_user_sessions("u1", Some("d-b"), now, &ev())
            .await
            .unwrap(),
        2
    );
    let live = s.user_sessions("u1", now, 50).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].sid, "sid-b");
    assert_eq!(
        s.end_user_sessions("u1", None, now, &ev()).await.unwrap(),
        1
    );
    assert!(s.user_sessions("u1", now, 50).await.unwrap().is_empty());
    assert!(
        s.session("d-u3", now).await.is_ok(),
        "another person's session lives on"
    );

    // A password change keeps one session and ends the others.
    s.insert_session(&session("d-keep", "sid-keep", 90_000))
        .await
        .unwrap();
    s.insert_session(&session("d-other", "sid-other", 90_000))
        .await
        .unwrap();
    s.change_password("u1", "new-hash", Some("d-keep"), now, &ev())
        .await
        .unwrap();
    assert_eq!(
        s.user_by_id("u1").await.unwrap().password_hash.as_deref(),
        Some("new-hash")
    );
    assert!(s.session("d-keep", now).await.is_ok());
    assert!(matches!(
        s.session("d-other", now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.change_password("ghost", "h", None, now, &ev()).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn roles_that_require_a_second_factor_read_back(s: &dyn Store) {
    seed_people(s).await;
    assert!(s.mfa_roles("o1").await.unwrap().is_empty());
    s.set_mfa_roles("o1", &["admin".into(), "developer".into()], &ev())
        .await
        .unwrap();
    assert_eq!(s.mfa_roles("o1").await.unwrap(), vec!["admin", "developer"]);
    assert!(
        s.mfa_roles("o2").await.unwrap().is_empty(),
        "per organization"
    );
    s.set_mfa_roles("o1", &["member".into()], &ev())
        .await
        .unwrap();
    assert_eq!(s.mfa_roles("o1").await.unwrap(), vec!["member"]);
    s.set_mfa_roles("o1", &[], &ev()).await.unwrap();
    assert!(s.mfa_roles("o1").await.unwrap().is_empty());
    assert!(matches!(
        s.set_mfa_roles("ghost", &[], &ev()).await,
        Err(StoreError::NotFound)
    ));
}

/// A session's device and last-seen time; one other session ended by sid (only
/// the person's own); an expired session deleted once, by the request that
/// brings its cookie back or by the sweep, whichever comes first.
pub async fn sessions_keep_their_device_end_one_by_one_and_expire_once(s: &dyn Store) {
    seed_people(s).await;
    s.insert_session(&Session {
        user_agent: Some("Firefox".into()),
        address: Some("203.0.113.7".into()),
        last_seen_at: Some(500),
        ..session("d-1", "sid-1", 10_000)
    })
    .await
    .unwrap();
    let got = s.session("d-1", 600).await.unwrap();
    assert_eq!(got.user_agent.as_deref(), Some("Firefox"));
    assert_eq!(got.address.as_deref(), Some("203.0.113.7"));
    assert_eq!(got.last_seen_at, Some(500));
    s.touch_session("d-1", 900).await.unwrap();
    assert_eq!(s.session("d-1", 901).await.unwrap().last_seen_at, Some(900));
    // Never backwards (a slower instance's older time loses).
    s.touch_session("d-1", 800).await.unwrap();
    assert_eq!(s.session("d-1", 901).await.unwrap().last_seen_at, Some(900));

    // One session ended by sid: only the person's own, only while live.
    s.insert_session(&session("d-2", "sid-2", 10_000))
        .await
        .unwrap();
    s.insert_session(&Session {
        user_id: "u3".into(),
        ..session("d-u3", "sid-u3", 10_000)
    })
    .await
    .unwrap();
    assert!(matches!(
        s.end_user_session("u1", "sid-u3", 1_000, &ev()).await,
        Err(StoreError::NotFound)
    ));
    assert!(s.session("d-u3", 1_000).await.is_ok());
    s.end_user_session("u1", "sid-2", 1_000, &ev())
        .await
        .unwrap();
    assert!(s.session("d-2", 1_001).await.is_err());
    assert!(s.session("d-1", 1_001).await.is_ok());
    assert!(matches!(
        s.end_user_session("u1", "sid-2", 1_002, &ev()).await,
        Err(StoreError::NotFound)
    ));

    // Expiry: nothing before the end of the lifetime; then once.
    assert_eq!(s.expire_session("d-1", 9_999).await.unwrap(), 0);
    assert!(s.session("d-1", 9_999).await.is_ok());
    assert_eq!(
        s.expire_session("d-1", 10_000).await.unwrap(),
        0,
        "no app to tell"
    );
    assert!(s.session("d-1", 0).await.is_err(), "deleted");
    assert_eq!(
        s.sweep_expired_sessions(10_000, 10).await.unwrap(),
        (1, 0),
        "only u3's is left"
    );
    assert_eq!(s.sweep_expired_sessions(10_000, 10).await.unwrap(), (0, 0));
    // The ended one is purged as before.
    assert_eq!(s.expire_session("d-2", 20_000).await.unwrap(), 0);
    // A bounded batch.
    for i in 0..5 {
        s.insert_session(&session(&format!("d-b{i}"), &format!("sid-b{i}"), 30_000))
            .await
            .unwrap();
    }
    assert_eq!(s.sweep_expired_sessions(30_000, 3).await.unwrap().0, 3);
    assert_eq!(s.sweep_expired_sessions(30_000, 3).await.unwrap().0, 2);
}
