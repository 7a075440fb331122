//! App secrets: at most two active, retiring one (never the last), a grace
//! period on the others, last use, regeneration replacing them all, and the
//! change rows that tell every instance and gateway.

use gatehouse_core::model::*;
use gatehouse_core::ports::{Store, StoreError};

use crate::fixtures::{app, ev, join_all, seed_people};

fn secret(id: &str, digest: &str, created_at: i64) -> AppSecret {
    AppSecret {
        id: id.into(),
        client_id: "client-a1".into(),
        digest: digest.into(),
        created_at,
        expires_at: None,
        retired_at: None,
        last_used_at: None,
    }
}

async fn active(s: &dyn Store, now: i64) -> Vec<(String, String, Option<i64>)> {
    s.app_secrets("client-a1")
        .await
        .unwrap()
        .into_iter()
        .filter(|x| x.active_at(now))
        .map(|x| (x.id, x.digest, x.expires_at))
        .collect()
}

pub async fn an_app_has_at_most_two_active_secrets_and_never_none(s: &dyn Store) {
    seed_people(s).await;
    let a = app("a1", "o1", "u1");
    s.insert_app(&a, &ev()).await.unwrap();
    // Registration gives the app its one secret.
    let first = active(s, 100).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1, a.secret_hash);
    let first_id = first[0].0.clone();

    let start = s.latest_change().await.unwrap();
    s.add_app_secret(&secret("s2", "digest-s2", 200), Some(1000), 200, &ev())
        .await
        .unwrap();
    assert_eq!(
        active(s, 200).await,
        [
            (first_id.clone(), a.secret_hash.clone(), Some(1000)),
            ("s2".into(), "digest-s2".into(), None)
        ]
    );
    // The newest secret is the app's `secret_hash`; the generation stays.
    let after = s.app_by_client_id("client-a1").await.unwrap();
    assert_eq!(
        (after.secret_hash.as_str(), after.generation),
        ("digest-s2", 1)
    );
    // A third is refused and changes nothing.
    assert!(matches!(
        s.add_app_secret(&secret("s3", "digest-s3", 201), None, 201, &ev())
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(active(s, 201).await.len(), 2);
    assert!(matches!(
        s.add_app_secret(
            &AppSecret {
                client_id: "ghost".into(),
                ..secret("s4", "d", 1)
            },
            None,
            1,
            &ev()
        )
        .await,
        Err(StoreError::NotFound)
    ));
    // Once the grace period is over, the old one no longer counts: room for one.
    assert_eq!(active(s, 1000).await.len(), 1);
    s.add_app_secret(&secret("s3", "digest-s3", 1000), None, 1000, &ev())
        .await
        .unwrap();
    assert_eq!(active(s, 1000).await.len(), 2);

    // Retiring: an unknown, expired or other app's secret is NotFound; the last
    // active one is a Conflict.
    for (client, id) in [
        ("client-a1", "nope"),
        ("client-a1", first_id.as_str()),
        ("ghost", "s2"),
    ] {
        assert!(matches!(
            s.retire_app_secret(client, id, 1001, &ev()).await,
            Err(StoreError::NotFound)
        ));
    }
    s.retire_app_secret("client-a1", "s2", 1001, &ev())
        .await
        .unwrap();
    assert_eq!(
        active(s, 1001).await,
        [("s3".into(), "digest-s3".into(), None)]
    );
    assert!(matches!(
        s.retire_app_secret("client-a1", "s3", 1002, &ev()).await,
        Err(StoreError::Conflict(_))
    ));
    let all = s.app_secrets("client-a1").await.unwrap();
    let s2 = all.iter().find(|x| x.id == "s2").unwrap();
    assert_eq!((s2.retired_at, s2.ends_at()), (Some(1001), Some(1001)));

    // Every change that moves a secret is on the feed, as the app's.
    let seen: Vec<(ChangeKind, String, i64)> = s
        .changes_since(start, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.kind, c.key, c.at))
        .collect();
    assert_eq!(
        seen,
        [
            (ChangeKind::App, "client-a1".to_owned(), 200),
            (ChangeKind::App, "client-a1".to_owned(), 1000),
            (ChangeKind::App, "client-a1".to_owned(), 1001),
        ]
    );
}

pub async fn retiring_one_of_two_keeps_the_other_without_its_grace_period(s: &dyn Store) {
    seed_people(s).await;
    s.insert_app(&app("a1", "o1", "u1"), &ev()).await.unwrap();
    let old = active(s, 100).await[0].0.clone();
    s.add_app_secret(&secret("new", "digest-new", 100), Some(500), 100, &ev())
        .await
        .unwrap();
    // The new one was a mistake: retiring it leaves the old one, for good.
    s.retire_app_secret("client-a1", "new", 101, &ev())
        .await
        .unwrap();
    let left = active(s, 10_000).await;
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].0.as_str(), left[0].2), (old.as_str(), None));
    let app = s.app_by_client_id("client-a1").await.unwrap();
    assert_eq!(app.secret_hash, left[0].1);
}

pub async fn secret_use_is_recorded_and_regeneration_replaces_every_secret(s: &dyn Store) {
    seed_people(s).await;
    s.insert_app(&app("a1", "o1", "u1"), &ev()).await.unwrap();
    s.add_app_secret(&secret("s2", "digest-s2", 100), None, 100, &ev())
        .await
        .unwrap();
    s.record_secret_use(&[("s2".into(), 150), ("unknown".into(), 150)])
        .await
        .unwrap();
    // An older use never moves it back.
    s.record_secret_use(&[("s2".into(), 120)]).await.unwrap();
    let used =
        |all: &[AppSecret], id: &str| all.iter().find(|x| x.id == id).and_then(|x| x.last_used_at);
    let all = s.app_secrets("client-a1").await.unwrap();
    assert_eq!(used(&all, "s2"), Some(150));

    let generation = s
        .rotate_app_secret("client-a1", "digest-r", 200, &ev())
        .await
        .unwrap();
    assert_eq!(generation, 2);
    let now = active(s, 200).await;
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].1, "digest-r");
    assert_eq!(s.app_secrets("client-a1").await.unwrap().len(), 1);

    // Purging forgets only secrets that ended before the bound.
    s.add_app_secret(&secret("s5", "digest-s5", 300), Some(400), 300, &ev())
        .await
        .unwrap();
    assert_eq!(s.purge_ended_secrets(400).await.unwrap(), 0);
    assert_eq!(s.purge_ended_secrets(401).await.unwrap(), 1);
    assert_eq!(active(s, 401).await.len(), 1);
    assert_eq!(active(s, 401).await[0].0, "s5");

    // Deleting the app deletes its secrets.
    s.delete_app("client-a1", 500, &ev()).await.unwrap();
    assert!(s.app_secrets("client-a1").await.unwrap().is_empty());
}

pub async fn concurrent_adds_leave_at_most_two_active_secrets(s: &dyn Store) {
    seed_people(s).await;
    s.insert_app(&app("a1", "o1", "u1"), &ev()).await.unwrap();
    let secrets: Vec<AppSecret> = (0..6)
        .map(|i| secret(&format!("race-{i}"), &format!("d-{i}"), 100))
        .collect();
    let events: Vec<AuditEvent> = (0..6).map(|_| ev()).collect();
    let results = join_all(
        secrets
            .iter()
            .zip(&events)
            .map(|(x, e)| s.add_app_secret(x, None, 100, e))
            .collect(),
    )
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(StoreError::Conflict(_))))
    );
    assert_eq!(active(s, 100).await.len(), 2);
}
