//! Upstream identity providers: one per organization, replaced in place and
//! audited; a pending upstream sign-in is claimed once, only while live, and
//! of concurrent claims exactly one wins.

use gatehouse_core::ports::{Store, StoreError};
use gatehouse_core::upstream::{Continuation, UpstreamLogin, UpstreamProvider};

use crate::fixtures::{ev, join_all, seed_orgs};

fn provider(org_id: &str, issuer: &str) -> UpstreamProvider {
    UpstreamProvider {
        org_id: org_id.into(),
        issuer: issuer.into(),
        client_id: "gatehouse".into(),
        sealed_client_secret: "sealed".into(),
        domains: vec!["acme.test".into(), "acme.example".into()],
        allow_passwords: false,
        default_role: "member".into(),
        updated_at: 100,
        trust_upstream_mfa: false,
    }
}

fn login(digest: &str, expires_at: i64) -> UpstreamLogin {
    UpstreamLogin {
        state_digest: digest.into(),
        org_id: "o1".into(),
        nonce: "n".into(),
        code_verifier: "v".into(),
        continuation: Continuation::Authorize("client_id=app&redirect_uri=x".into()),
        expires_at,
    }
}

pub async fn an_upstream_provider_per_org_and_its_sign_ins_are_claimed_once(s: &dyn Store) {
    seed_orgs(s).await;
    assert!(matches!(
        s.upstream_provider("o1").await,
        Err(StoreError::NotFound)
    ));
    s.set_upstream_provider(&provider("o1", "https://a.test"), &ev())
        .await
        .unwrap();
    let changed = UpstreamProvider {
        allow_passwords: true,
        trust_upstream_mfa: true,
        ..provider("o1", "https://b.test")
    };
    s.set_upstream_provider(&changed, &ev()).await.unwrap();
    assert_eq!(s.upstream_provider("o1").await.unwrap(), changed);
    assert!(matches!(
        s.upstream_provider("o2").await,
        Err(StoreError::NotFound)
    ));
    let audited = s.audit_events("o1", None, 10).await.unwrap().len();
    s.remove_upstream_provider("o1", &ev()).await.unwrap();
    assert_eq!(
        s.audit_events("o1", None, 10).await.unwrap().len(),
        audited + 1
    );
    assert!(matches!(
        s.remove_upstream_provider("o1", &ev()).await,
        Err(StoreError::NotFound)
    ));

    s.insert_upstream_login(&login("d1", 200), 100)
        .await
        .unwrap();
    assert_eq!(
        s.claim_upstream_login("d1", 150).await.unwrap(),
        login("d1", 200)
    );
    assert!(matches!(
        s.claim_upstream_login("d1", 150).await,
        Err(StoreError::NotFound)
    ));
    // Expired: not handed out.
    s.insert_upstream_login(&login("d2", 200), 100)
        .await
        .unwrap();
    assert!(matches!(
        s.claim_upstream_login("d2", 200).await,
        Err(StoreError::NotFound)
    ));
    // Of concurrent claims, one wins.
    s.insert_upstream_login(&login("d3", 900), 100)
        .await
        .unwrap();
    let claims = join_all(
        (0..4)
            .map(|_| Box::pin(s.claim_upstream_login("d3", 150)))
            .collect(),
    )
    .await;
    assert_eq!(claims.iter().filter(|c| c.is_ok()).count(), 1);

    // Each kind of continuation comes back as it went in.
    for (i, c) in [
        Continuation::Console,
        Continuation::Device {
            user_code: "BCDFGHJK".into(),
        },
    ]
    .into_iter()
    .enumerate()
    {
        let digest = format!("k{i}");
        let l = UpstreamLogin {
            continuation: c,
            ..login(&digest, 900)
        };
        s.insert_upstream_login(&l, 100).await.unwrap();
        assert_eq!(s.claim_upstream_login(&digest, 150).await.unwrap(), l);
    }
}

/// Which organizations' providers claim an e-mail domain: exact domains only
/// (no suffix or pattern match), at most the limit asked.
pub async fn upstream_providers_are_found_by_exact_domain(s: &dyn Store) {
    seed_orgs(s).await;
    s.set_upstream_provider(&provider("o1", "https://a.test"), &ev())
        .await
        .unwrap();
    let mut other = provider("o2", "https://b.test");
    other.domains = vec!["acme.test".into(), "beta.test".into()];
    s.set_upstream_provider(&other, &ev()).await.unwrap();
    let orgs = |v: Vec<UpstreamProvider>| v.into_iter().map(|p| p.org_id).collect::<Vec<_>>();
    let both = orgs(
        s.upstream_providers_for_domain("acme.test", 5)
            .await
            .unwrap(),
    );
    assert_eq!(both.len(), 2);
    assert!(both.contains(&"o1".to_owned()) && both.contains(&"o2".to_owned()));
    assert_eq!(
        orgs(
            s.upstream_providers_for_domain("beta.test", 5)
                .await
                .unwrap()
        ),
        ["o2"]
    );
    assert_eq!(
        s.upstream_providers_for_domain("acme.test", 1)
            .await
            .unwrap()
            .len(),
        1
    );
    for nothing in [
        "cme.test",
        "test",
        "%",
        "acme.test\"",
        "_cme.test",
        "acme.tes",
    ] {
        assert!(
            s.upstream_providers_for_domain(nothing, 5)
                .await
                .unwrap()
                .is_empty(),
            "{nothing}"
        );
    }
}
