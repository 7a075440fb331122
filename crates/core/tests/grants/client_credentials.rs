//! The client credentials grant (RFC 6749 §4.4) through `token_endpoint::handle`,
//! with the client context loaded from the store as the server loads it.

use gatehouse_core::model::{AppStatus, SigningAlg};
use gatehouse_core::ports::{AppStore, TokenStore};
use gatehouse_core::secret;

use crate::world::*;

/// `(scope, audience)` asked, and the `(aud, scope)` granted or the error code.
type Case = (
    Option<&'static str>,
    Option<&'static str>,
    Result<(&'static str, &'static str), &'static str>,
);

#[tokio::test]
async fn audience_and_scope_decisions() {
    let admin_aud = "https://id.acme.test/api/v1";
    let cases: &[Case] = &[
        // No scope: the app's default scopes; their one API.
        (None, None, Ok((GW, "products:read"))),
        (
            Some("products:read products:write"),
            None,
            Ok((GW, "products:read products:write")),
        ),
        (Some("products:read"), Some(GW), Ok((GW, "products:read"))),
        (Some("reports:read"), None, Ok((REPORTS, "reports:read"))),
        // OpenID Connect scopes mean nothing to a machine: dropped.
        (
            Some("openid offline_access products:read"),
            None,
            Ok((GW, "products:read")),
        ),
        (Some("products:read nope"), None, Err("invalid_scope")),
        (
            Some("products:read"),
            Some("https://nowhere.test"),
            Err("invalid_target"),
        ),
        (Some("products:read"), Some(REPORTS), Err("invalid_scope")),
        (
            Some("products:read reports:read"),
            None,
            Err("invalid_target"),
        ),
        // The robot's role lacks apps:manage, and the app may not have it.
        (Some("gatehouse:admin"), None, Err("invalid_scope")),
        (
            Some("gatehouse:admin"),
            Some(admin_aud),
            Err("invalid_scope"),
        ),
    ];
    let w = World::new().await;
    for &(scope, target, want) in cases {
        let got = w.token(NIGHTLY, machine_request(scope, target)).await;
        match want {
            Ok((aud, granted)) => {
                let set = got.unwrap_or_else(|e| panic!("{scope:?} {target:?}: {e:?}"));
                assert_eq!(set.scope.to_string(), granted, "{scope:?} {target:?}");
                assert_eq!((set.refresh_token, set.id_token), (None, None));
                let alg = if aud == GW {
                    SigningAlg::ES256
                } else {
                    SigningAlg::EdDSA
                };
                let claims = w.access_claims(&set.access_token, alg).await;
                assert_eq!((claims.aud.as_str(), claims.scope.as_str()), (aud, granted));
            }
            Err(code) => {
                let (error, why) = refused(got);
                assert_eq!(error, code, "{scope:?} {target:?}: {why}");
            }
        }
    }
}

#[tokio::test]
async fn a_jwt_carries_the_on_behalf_users_access_and_nothing_is_stored() {
    let w = World::new().await;
    w.at(42);
    let set = w.token(NIGHTLY, machine_request(None, None)).await.unwrap();
    assert_eq!(set.expires_in, 600);
    let c = w.access_claims(&set.access_token, SigningAlg::ES256).await;
    assert_eq!(
        (c.iss.as_str(), c.sub.as_str(), c.client_id.as_str()),
        (ISSUER, ROBOT, NIGHTLY)
    );
    assert_eq!(
        (c.org.as_str(), c.role.as_str(), c.cgen),
        (ACME, "developer", 1)
    );
    assert_eq!(
        (c.permissions, c.groups),
        (strings(&["developer_api"]), strings(&["ops"]))
    );
    assert_eq!((c.iat, c.exp, c.gid), (T + 42, T + 42 + 600, None));
    assert_eq!(w.reference_rows().await, 0);
}

#[tokio::test]
async fn a_reference_token_is_stored_before_it_is_handed_out() {
    let w = World::new().await;
    let set = w
        .token(NIGHTLY, machine_request(Some("reports:read"), None))
        .await
        .unwrap();
    assert_ne!(set.access_token.split('.').count(), 3, "opaque");
    let record = w
        .store
        .reference_token(&secret::digest(&set.access_token))
        .await
        .unwrap();
    assert_eq!(
        (record.client_id.as_str(), record.audience.as_str()),
        (NIGHTLY, REPORTS)
    );
    assert_eq!(record.expires_at, T + 600);
    assert_eq!(record.claims["sub"], ROBOT);
    assert_eq!(record.claims["scope"], "reports:read");
    assert_eq!(w.reference_rows().await, 1);
}

#[tokio::test]
async fn the_generation_follows_a_secret_rotation() {
    let w = World::new().await;
    assert_eq!(w.rotate_secret(NIGHTLY).await, 2);
    let set = w.token(NIGHTLY, machine_request(None, None)).await.unwrap();
    let c = w.access_claims(&set.access_token, SigningAlg::ES256).await;
    assert_eq!(c.cgen, 2);
}

#[tokio::test]
async fn a_disabled_app_or_an_inactive_on_behalf_user_gets_nothing() {
    for case in ["disabled", "deactivated", "removed"] {
        let w = World::new().await;
        let want = match case {
            "disabled" => {
                let ev = gatehouse_core::model::AuditEvent::new(
                    &gatehouse_core::model::Actor::operator(),
                    ACME,
                    T,
                    "t",
                    "-",
                    "t",
                );
                w.store
                    .set_app_status(NIGHTLY, AppStatus::Disabled, T, &ev)
                    .await
                    .unwrap();
                "invalid_client"
            }
            "deactivated" => {
                w.deactivate(ROBOT).await;
                "invalid_grant"
            }
            _ => {
                sqlx::query("UPDATE apps SET on_behalf_of = NULL WHERE client_id = $1")
                    .bind(NIGHTLY)
                    .execute(w.store.pool())
                    .await
                    .unwrap();
                w.remove(ROBOT).await;
                "invalid_grant"
            }
        };
        let (error, _) = refused(
            w.token(NIGHTLY, machine_request(Some("reports:read"), None))
                .await,
        );
        assert_eq!(error, want, "{case}");
        assert_eq!(w.reference_rows().await, 0, "{case}");
    }
}
