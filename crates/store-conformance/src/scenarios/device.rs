//! Device authorizations (RFC 8628): user codes unique among live ones; one
//! decision (an approval stores its grant with it); polls that record the
//! interval whichever instance answers (`slow_down` grows it); redeemed once,
//! by their client, while live; purged once expired.

use gatehouse_core::model::{DeviceAuthorization, DeviceStatus};
use gatehouse_core::ports::{SLOW_DOWN_STEP, Store, StoreError};

use crate::fixtures::{grant, join_all, refresh};

fn device(device_digest: &str, user_digest: &str, expires_at: i64) -> DeviceAuthorization {
    DeviceAuthorization {
        device_digest: device_digest.into(),
        user_digest: user_digest.into(),
        client_id: "client-tv".into(),
        scopes: vec!["openid".into(), "cfgateway".into()],
        audience: Some("https://gw.example".into()),
        status: DeviceStatus::Pending,
        grant_id: None,
        interval: 5,
        last_poll_at: None,
        expires_at,
        used_at: None,
    }
}

fn not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound))
}

pub async fn device_authorizations_are_decided_once_and_redeemed_once(s: &dyn Store) {
    let d = device("dev-1", "user-1", 1600);
    s.insert_device_authorization(&d, 1000).await.unwrap();
    // A live user code is taken…
    assert!(matches!(
        s.insert_device_authorization(&device("dev-2", "user-1", 1600), 1000)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.pending_device_authorization("user-1", 1001)
            .await
            .unwrap(),
        d
    );
    assert!(not_found(
        s.pending_device_authorization("user-1", 1600).await
    ));
    // Not approved yet: nothing to redeem.
    assert!(not_found(
        s.claim_device_authorization("dev-1", "client-tv", None, None, 1001)
            .await
    ));

    let mut g = grant("grant-dev-1");
    g.client_id = "client-tv".into();
    s.approve_device_authorization("user-1", &g, 1002)
        .await
        .unwrap();
    assert_eq!(s.grant("grant-dev-1").await.unwrap(), g);
    // Decided: neither a second approval nor a denial lands.
    let mut g2 = grant("grant-dev-2");
    g2.client_id = "client-tv".into();
    assert!(not_found(
        s.approve_device_authorization("user-1", &g2, 1003).await
    ));
    assert!(
        not_found(s.grant("grant-dev-2").await),
        "a refused approval stores no grant"
    );
    assert!(not_found(s.deny_device_authorization("user-1", 1003).await));
    assert!(not_found(
        s.pending_device_authorization("user-1", 1003).await
    ));

    // Another client's redemption changes nothing; the first of its own wins.
    assert!(not_found(
        s.claim_device_authorization("dev-1", "client-x", None, None, 1004)
            .await
    ));
    let claimed = s
        .claim_device_authorization("dev-1", "client-tv", None, None, 1004)
        .await
        .unwrap();
    assert_eq!(claimed.status, DeviceStatus::Approved);
    assert_eq!(claimed.grant_id.as_deref(), Some("grant-dev-1"));
    assert_eq!(claimed.used_at, Some(1004));
    assert!(not_found(
        s.claim_device_authorization("dev-1", "client-tv", None, None, 1005)
            .await
    ));

    // A denial; an expired code is never decided nor redeemed.
    s.insert_device_authorization(&device("dev-3", "user-3", 1600), 1000)
        .await
        .unwrap();
    s.deny_device_authorization("user-3", 1010).await.unwrap();
    let (polled, _) = s
        .poll_device_authorization("dev-3", "client-tv", 1011)
        .await
        .unwrap();
    assert_eq!(polled.status, DeviceStatus::Denied);
    s.insert_device_authorization(&device("dev-4", "user-4", 1600), 1000)
        .await
        .unwrap();
    assert!(not_found(
        s.approve_device_authorization("user-4", &g2, 1600).await
    ));

    // Once expired, its user code may be drawn again; the purge forgets it.
    s.insert_device_authorization(&device("dev-5", "user-4", 3000), 1600)
        .await
        .unwrap();
    assert!(s.purge_expired_tokens(1601).await.unwrap() >= 2);
    assert!(not_found(
        s.poll_device_authorization("dev-1", "client-tv", 1602)
            .await
    ));
    assert!(s.pending_device_authorization("user-4", 1602).await.is_ok());
}

pub async fn device_polls_record_the_interval_and_slow_down(s: &dyn Store) {
    s.insert_device_authorization(&device("dev-p", "user-p", 5000), 1000)
        .await
        .unwrap();
    let poll = |now| s.poll_device_authorization("dev-p", "client-tv", now);
    let (d, fast) = poll(1000).await.unwrap();
    assert!(!fast, "the first poll is never too fast");
    assert_eq!((d.interval, d.last_poll_at), (5, Some(1000)));
    let (d, fast) = poll(1003).await.unwrap();
    assert!(fast);
    assert_eq!(
        (d.interval, d.last_poll_at),
        (5 + SLOW_DOWN_STEP, Some(1003))
    );
    let (d, fast) = poll(1013).await.unwrap();
    assert!(!fast, "10 s after the last poll, with an interval of 10 s");
    assert_eq!(d.interval, 10);
    assert!(not_found(
        s.poll_device_authorization("dev-p", "client-x", 1030).await
    ));
    assert!(not_found(
        s.poll_device_authorization("unknown", "client-tv", 1030)
            .await
    ));

    // Concurrent polls at one moment: exactly one is on time.
    let results = join_all((0..8).map(|_| poll(1100)).collect()).await;
    let on_time = results
        .iter()
        .filter(|r| matches!(r, Ok((_, false))))
        .count();
    assert_eq!(on_time, 1, "one poll on time, the others too fast");
}

pub async fn concurrent_redemptions_of_a_device_code_have_one_winner(s: &dyn Store) {
    s.insert_device_authorization(&device("dev-r", "user-r", 5000), 1000)
        .await
        .unwrap();
    let mut g = grant("grant-dev-r");
    g.client_id = "client-tv".into();
    s.approve_device_authorization("user-r", &g, 1001)
        .await
        .unwrap();
    // Each poll minted its own refresh token: only the winner's is stored.
    let tokens: Vec<_> = (0..8)
        .map(|n| refresh(&format!("rt-dev-{n}"), "grant-dev-r", 9000))
        .collect();
    let results = join_all(
        tokens
            .iter()
            .map(|t| s.claim_device_authorization("dev-r", "client-tv", Some(t), None, 1500))
            .collect(),
    )
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(StoreError::NotFound)))
    );
    for (t, r) in tokens.iter().zip(&results) {
        let stored = s.refresh_token(&t.digest).await;
        match r {
            Ok(_) => assert_eq!(stored.unwrap(), *t),
            Err(_) => assert!(not_found(stored), "a losing poll stored its token"),
        }
    }
}
