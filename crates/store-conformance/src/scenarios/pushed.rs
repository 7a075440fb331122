//! Pushed authorization requests (RFC 9126): claimed once, by their client,
//! while live, whichever instance asks; purged once expired.

use gatehouse_core::model::PushedRequest;
use gatehouse_core::ports::{Store, StoreError};

use crate::fixtures::join_all;

fn pushed(digest: &str, client_id: &str, expires_at: i64) -> PushedRequest {
    PushedRequest {
        digest: digest.into(),
        client_id: client_id.into(),
        params: "response_type=code&scope=openid&state=s1".into(),
        expires_at,
    }
}

pub async fn pushed_requests_are_claimed_once_by_their_client_while_live(s: &dyn Store) {
    let p = pushed("par-1", "client-a", 1060);
    s.insert_pushed_request(&p).await.unwrap();
    assert!(matches!(
        s.insert_pushed_request(&p).await,
        Err(StoreError::Conflict(_))
    ));
    // Another client's claim changes nothing.
    assert!(matches!(
        s.claim_pushed_request("par-1", "client-b", 1001).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        s.claim_pushed_request("par-1", "client-a", 1001)
            .await
            .unwrap(),
        p
    );
    assert!(matches!(
        s.claim_pushed_request("par-1", "client-a", 1002).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.claim_pushed_request("unknown", "client-a", 1002).await,
        Err(StoreError::NotFound)
    ));

    // Expired at its `expires_at`: never claimed, and purged after it.
    s.insert_pushed_request(&pushed("par-2", "client-a", 1060))
        .await
        .unwrap();
    assert!(matches!(
        s.claim_pushed_request("par-2", "client-a", 1060).await,
        Err(StoreError::NotFound)
    ));
    s.insert_pushed_request(&pushed("par-3", "client-a", 2000))
        .await
        .unwrap();
    assert_eq!(s.purge_expired_tokens(1061).await.unwrap(), 2);
    assert!(
        s.claim_pushed_request("par-3", "client-a", 1062)
            .await
            .is_ok()
    );
}

pub async fn concurrent_claims_of_a_pushed_request_have_one_winner(s: &dyn Store) {
    const RACERS: usize = 8;
    s.insert_pushed_request(&pushed("par-race", "client-a", 5000))
        .await
        .unwrap();
    let results = join_all(
        (0..RACERS)
            .map(|_| s.claim_pushed_request("par-race", "client-a", 1500))
            .collect(),
    )
    .await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "exactly one concurrent claim wins");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(StoreError::NotFound))),
        "the others are NotFound"
    );
}
