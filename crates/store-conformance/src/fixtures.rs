//! Records the scenarios share, and the state some of them start from.

use std::future::Future;
use std::task::Poll;

use gatehouse_core::model::*;
use gatehouse_core::ports::Store;

/// Organizations `o1` and `o2` with the default roles.
pub(crate) async fn seed_orgs(s: &dyn Store) {
    for id in ["o1", "o2"] {
        s.insert_org(&org(id), &Role::defaults(id), &ev())
            .await
            .unwrap();
    }
}

/// [`seed_orgs`] and their people: `u1` and `u3` in `o1`, `u2` in `o2` (with
/// `u1`'s address: addresses are unique per organization).
pub(crate) async fn seed_people(s: &dyn Store) {
    seed_orgs(s).await;
    s.insert_user(&user("u1", "o1", "dev@acme.test"), &ev())
        .await
        .unwrap();
    let twin = User {
        created_at: 102,
        ..user("u2", "o2", "dev@acme.test")
    };
    s.insert_user(&twin, &ev()).await.unwrap();
    s.insert_user(&user("u3", "o1", "ops@acme.test"), &ev())
        .await
        .unwrap();
}

/// Polls every future on the current task until all are done, results in input
/// order: concurrency without an executor or `futures` (the suite only borrows
/// the store, so it cannot spawn).
pub(crate) async fn join_all<F: Future + Unpin>(futs: Vec<F>) -> Vec<F::Output> {
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

pub(crate) fn org(id: &str) -> Org {
    Org {
        id: id.into(),
        slug: format!("slug-{id}"),
        name: format!("Org {id}"),
        created_at: 100,
    }
}

pub(crate) fn user(id: &str, org_id: &str, email: &str) -> User {
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
        profile: Default::default(),
    }
}

pub(crate) fn api(id: &str, org_id: &str, aud: &str) -> Api {
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

pub(crate) fn app(id: &str, org_id: &str, on_behalf: &str) -> App {
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
        client_keys: None,
        require_pkce: false,
        require_par: false,
        require_dpop: false,
        exchange_audiences: vec![],
    }
}

/// An audit event for calls whose audit trail is not under test.
pub(crate) fn ev() -> AuditEvent {
    AuditEvent::new(&Actor::operator(), "o1", 1, "test", "t", "test")
}

pub(crate) fn session(digest: &str, sid: &str, expires_at: i64) -> Session {
    Session {
        id_digest: digest.into(),
        sid: sid.into(),
        user_id: "u1".into(),
        auth_time: 500,
        amr: gatehouse_core::mfa::amr_password(),
        expires_at,
        user_agent: None,
        address: None,
        last_seen_at: None,
    }
}

pub(crate) fn grant(id: &str) -> Grant {
    Grant {
        id: id.into(),
        client_id: "client-web".into(),
        user_id: "u1".into(),
        scopes: vec!["openid".into(), "cfgateway".into()],
        audience: Some("https://gw.example".into()),
        generation: 4,
        sid: Some("sid-1".into()),
        auth_time: 500,
        amr: gatehouse_core::mfa::amr_password(),
        created_at: 510,
        revoked_at: None,
        claims: Default::default(),
    }
}

pub(crate) fn code(digest: &str, grant_id: &str, expires_at: i64) -> AuthCode {
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

pub(crate) fn refresh(digest: &str, grant_id: &str, expires_at: i64) -> RefreshToken {
    RefreshToken {
        digest: digest.into(),
        grant_id: grant_id.into(),
        client_id: "client-web".into(),
        scopes: vec!["openid".into(), "offline_access".into()],
        expires_at,
        used_at: None,
        dpop_jkt: None,
    }
}
