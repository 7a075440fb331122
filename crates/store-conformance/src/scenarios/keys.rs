//! Signing keys and their rotation.

use gatehouse_core::model::*;
use gatehouse_core::ports::{Store, StoreError};

use crate::fixtures::{ev, join_all};

pub async fn keys(s: &dyn Store) {
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
pub async fn key_rotation(s: &dyn Store) {
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
