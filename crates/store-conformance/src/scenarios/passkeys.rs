//! Passkeys: several per person up to a bound, one credential id in the whole
//! store, renamed and removed only by their owner, a signature counter that
//! must go up (one winner of concurrent uses), and ceremony challenges that are
//! taken once, for their purpose, while live.

use gatehouse_core::passkey::{Challenge, Passkey, Purpose};
use gatehouse_core::ports::{Store, StoreError};

use crate::fixtures::{ev, join_all, seed_people};

fn key(id: &str, user: &str, cred: &str) -> Passkey {
    Passkey {
        id: id.to_owned(),
        user_id: user.to_owned(),
        user_handle: format!("handle-{user}"),
        credential_id: cred.to_owned(),
        name: format!("key {id}"),
        credential: "{}".to_owned(),
        counter: 0,
        created_at: 100,
        last_used_at: None,
    }
}

pub async fn passkeys_are_bounded_owned_and_their_counter_only_goes_up(s: &dyn Store) {
    seed_people(s).await;
    assert!(s.passkeys("u1").await.unwrap().is_empty());
    s.add_passkey(&key("p1", "u1", "c1"), 2, &ev())
        .await
        .unwrap();
    // One credential id belongs to one passkey, whoever registers it again.
    assert!(matches!(
        s.add_passkey(&key("p9", "u2", "c1"), 2, &ev()).await,
        Err(StoreError::Conflict(_))
    ));
    s.add_passkey(&key("p2", "u1", "c2"), 2, &ev())
        .await
        .unwrap();
    // The bound.
    assert!(matches!(
        s.add_passkey(&key("p3", "u1", "c3"), 2, &ev()).await,
        Err(StoreError::Conflict(_))
    ));
    let mine: Vec<String> = s
        .passkeys("u1")
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(mine, ["p1", "p2"]);
    let p = s.passkey_by_credential("c2").await.unwrap();
    assert_eq!(
        (p.user_id.as_str(), p.user_handle.as_str()),
        ("u1", "handle-u1")
    );
    assert!(matches!(
        s.passkey_by_credential("nope").await,
        Err(StoreError::NotFound)
    ));
    // Only the owner renames or removes.
    assert!(matches!(
        s.rename_passkey("u2", "p1", "mine now", &ev()).await,
        Err(StoreError::NotFound)
    ));
    s.rename_passkey("u1", "p1", "Work laptop", &ev())
        .await
        .unwrap();
    assert_eq!(
        s.passkey_by_credential("c1").await.unwrap().name,
        "Work laptop"
    );
    assert!(matches!(
        s.remove_passkey("u2", "p2", &ev()).await,
        Err(StoreError::NotFound)
    ));
    s.remove_passkey("u1", "p2", &ev()).await.unwrap();
    assert!(matches!(
        s.passkey_by_credential("c2").await,
        Err(StoreError::NotFound)
    ));
    // A counter of 0 stays acceptable while it stays 0 (no counter at all)…
    assert!(s.use_passkey("p1", 0, "{\"n\":0}", 200).await.unwrap());
    assert!(s.use_passkey("p1", 0, "{\"n\":0}", 201).await.unwrap());
    // …once it counts, only upwards; of concurrent uses of one value, one wins.
    assert!(s.use_passkey("p1", 5, "{\"n\":5}", 202).await.unwrap());
    assert!(!s.use_passkey("p1", 5, "{}", 203).await.unwrap());
    assert!(!s.use_passkey("p1", 4, "{}", 203).await.unwrap());
    assert!(!s.use_passkey("p1", 0, "{}", 203).await.unwrap());
    let wins = join_all(
        (0..8)
            .map(|_| Box::pin(s.use_passkey("p1", 6, "{\"n\":6}", 204)))
            .collect(),
    )
    .await;
    assert_eq!(wins.into_iter().filter(|w| *w.as_ref().unwrap()).count(), 1);
    let p = s.passkey_by_credential("c1").await.unwrap();
    assert_eq!(
        (p.counter, p.credential.as_str(), p.last_used_at),
        (6, "{\"n\":6}", Some(204))
    );
    assert!(!s.use_passkey("gone", 9, "{}", 205).await.unwrap());

    // Challenges: taken once, for their purpose, before they expire.
    let ch = |d: &str, purpose, exp| Challenge {
        id_digest: d.to_owned(),
        purpose,
        user_id: Some("u1".to_owned()),
        state: "{\"challenge\":1}".to_owned(),
        expires_at: exp,
    };
    s.put_passkey_challenge(&ch("d1", Purpose::Register, 500), 200)
        .await
        .unwrap();
    s.put_passkey_challenge(&ch("d2", Purpose::SignIn, 300), 200)
        .await
        .unwrap();
    assert!(matches!(
        s.take_passkey_challenge("d1", Purpose::SignIn, 210).await,
        Err(StoreError::NotFound)
    ));
    let wins = join_all(
        (0..8)
            .map(|_| Box::pin(s.take_passkey_challenge("d1", Purpose::Register, 210)))
            .collect(),
    )
    .await;
    let taken: Vec<Challenge> = wins.into_iter().filter_map(Result::ok).collect();
    assert_eq!(taken, vec![ch("d1", Purpose::Register, 500)]);
    assert!(matches!(
        s.take_passkey_challenge("d2", Purpose::SignIn, 300).await,
        Err(StoreError::NotFound)
    ));
    let anonymous = Challenge {
        user_id: None,
        ..ch("d3", Purpose::SignIn, 900)
    };
    s.put_passkey_challenge(&anonymous, 250).await.unwrap();
    assert_eq!(
        s.take_passkey_challenge("d3", Purpose::SignIn, 260)
            .await
            .unwrap(),
        anonymous
    );
}
