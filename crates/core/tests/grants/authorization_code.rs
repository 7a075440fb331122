//! The code exchange (RFC 6749 §4.1.3, RFC 7636 §4.6) through
//! `token_endpoint::handle`, with codes issued as `/authorize` issues them.

use gatehouse_core::id_token;
use gatehouse_core::model::SigningAlg;
use gatehouse_core::pkce;
use gatehouse_core::ports::{GrantStore, TokenStore};
use gatehouse_core::secret;

use crate::world::*;

const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9ugQ-this-verifier-is-long-enough";

fn with_pkce(params: &str) -> String {
    format!(
        "{params}&code_challenge={}&code_challenge_method=S256",
        pkce::s256(VERIFIER)
    )
}

#[tokio::test]
async fn a_fresh_code_gives_a_verified_access_token_for_its_grant() {
    let w = World::new().await;
    let code = w
        .code(
            WEB,
            ALICE,
            &with_pkce("scope=products:read&redirect_uri=https://app.test/cb"),
        )
        .await;
    w.at(CODE_TTL - 1);
    let set = w
        .token(WEB, code_request(&code, Some(REDIRECT), Some(VERIFIER)))
        .await
        .unwrap();
    assert_eq!(set.scope.to_string(), "products:read");
    assert_eq!(
        (set.refresh_token.is_some(), set.id_token.is_some()),
        (false, false)
    );
    assert_eq!(set.expires_in, 600);
    let claims = w.access_claims(&set.access_token, SigningAlg::ES256).await;
    let grant = w.only_grant().await;
    assert_eq!(claims.gid.as_deref(), Some(grant.id.as_str()));
    assert_eq!(
        (
            claims.iss.as_str(),
            claims.sub.as_str(),
            claims.aud.as_str()
        ),
        (ISSUER, ALICE, GW)
    );
    assert_eq!(
        (claims.client_id.as_str(), claims.org.as_str()),
        (WEB, ACME)
    );
    assert_eq!(
        (claims.iat, claims.exp),
        (T + CODE_TTL - 1, T + CODE_TTL - 1 + 600)
    );
    assert_eq!((claims.role.as_str(), claims.cgen), ("developer", 1));
    assert_eq!(claims.permissions, strings(&["developer_api"]));
    // The store: the grant stands, no refresh token, no reference record, code used.
    assert_eq!(grant.revoked_at, None);
    assert_eq!(w.rows_of_grant("refresh_tokens", &grant.id).await, 0);
    assert_eq!(w.reference_rows().await, 0);
    let digest = secret::digest(&code);
    let used: Option<i64> = sqlx::query_scalar("SELECT used_at FROM auth_codes WHERE digest = $1")
        .bind(&digest)
        .fetch_one(w.store.pool())
        .await
        .unwrap();
    assert_eq!(used, Some(T + CODE_TTL - 1));
}

#[tokio::test]
async fn replayed_code_revokes_the_grant_and_records_a_security_event() {
    let w = World::new().await;
    let code = w
        .code(WEB, ALICE, "scope=openid%20offline_access%20products:read")
        .await;
    let first = w.token(WEB, code_request(&code, None, None)).await.unwrap();
    let grant = w.only_grant().await;
    let access = w
        .access_claims(&first.access_token, SigningAlg::ES256)
        .await;
    assert!(w.still_valid(&access).await);
    w.at(10);
    let (error, why) = refused(w.token(WEB, code_request(&code, None, None)).await);
    assert_eq!(error, "invalid_grant");
    assert!(why.contains("already used"), "{why}");
    assert_eq!(
        w.store.grant(&grant.id).await.unwrap().revoked_at,
        Some(T + 10)
    );
    assert_eq!(
        w.security_events("code.replayed").await,
        vec![(grant.id.clone(), T + 10)]
    );
    assert!(w.revoked_in_feed().await.contains(&grant.id));
    // What the first exchange issued ends with the grant.
    assert!(!w.still_valid(&access).await);
    let refresh = first.refresh_token.unwrap();
    let (error, why) = refused(w.token(WEB, refresh_request(&refresh, None)).await);
    assert_eq!(
        (error, why.as_str()),
        (
            "invalid_grant",
            "the authorization behind this refresh token has ended"
        )
    );
}

/// How a code exchange is bent away from the fresh, correct one.
#[derive(Debug, Clone, Copy)]
enum Twist {
    Expired,
    WrongRedirectUri,
    MissingRedirectUri,
    WrongVerifier,
    MissingVerifier,
    VerifierWithoutChallenge,
    OtherClient,
    UserDeactivated,
    UserRemoved,
    UserOfOtherOrg,
    UserLostDeveloperApi,
    SecretRotated,
    UnknownCode,
}

#[tokio::test]
async fn a_bent_exchange_is_refused_and_burns_the_code() {
    use Twist::*;
    let cases: &[(Twist, &str, &str)] = &[
        (
            Expired,
            "invalid_grant",
            "the authorization code has expired",
        ),
        (
            WrongRedirectUri,
            "invalid_grant",
            "`redirect_uri` must be the one sent in the authorization request",
        ),
        (
            MissingRedirectUri,
            "invalid_grant",
            "`redirect_uri` must be the one sent in the authorization request",
        ),
        (
            WrongVerifier,
            "invalid_grant",
            "the code_verifier does not match the code_challenge",
        ),
        (
            MissingVerifier,
            "invalid_grant",
            "the authorization used PKCE: `code_verifier` is required",
        ),
        (
            VerifierWithoutChallenge,
            "invalid_grant",
            "no code_challenge was sent for this code",
        ),
        (
            OtherClient,
            "invalid_grant",
            "the code was issued to another client",
        ),
        // Deactivation revokes the user's grants in the store.
        (
            UserDeactivated,
            "invalid_grant",
            "the authorization was revoked",
        ),
        (UserRemoved, "invalid_grant", "the user no longer exists"),
        (
            UserOfOtherOrg,
            "invalid_grant",
            "the user is not of this app's organization",
        ),
        (
            UserLostDeveloperApi,
            "invalid_grant",
            "the user no longer has the developer_api permission",
        ),
        (
            SecretRotated,
            "invalid_grant",
            "the app's credentials changed since this code was issued",
        ),
        (UnknownCode, "invalid_grant", "unknown authorization code"),
    ];
    for &(twist, want_error, want_why) in cases {
        let w = World::new().await;
        let user = if matches!(twist, UserOfOtherOrg) {
            BOB
        } else {
            ALICE
        };
        let pkce_used = matches!(twist, WrongVerifier | MissingVerifier);
        let mut params =
            "scope=offline_access%20reports:read&redirect_uri=https://app.test/cb".to_owned();
        if pkce_used {
            params = with_pkce(&params);
        }
        let code = w.code(WEB, user, &params).await;
        let (mut client, mut presented) = (WEB, code.clone());
        let (mut redirect, mut verifier) = (Some(REDIRECT), pkce_used.then_some(VERIFIER));
        match twist {
            Expired => w.at(CODE_TTL),
            WrongRedirectUri => redirect = Some("https://app.test/other"),
            MissingRedirectUri => redirect = None,
            WrongVerifier => verifier = Some("another-verifier-that-is-long-enough-000000"),
            MissingVerifier => verifier = None,
            VerifierWithoutChallenge => verifier = Some(VERIFIER),
            OtherClient => client = WEB2,
            UserDeactivated => w.deactivate(ALICE).await,
            UserRemoved => w.remove(ALICE).await,
            UserOfOtherOrg => {}
            UserLostDeveloperApi => w.set_role(ALICE, "member").await,
            SecretRotated => assert_eq!(w.rotate_secret(WEB).await, 2),
            UnknownCode => presented = "not-a-code".into(),
        }
        let got = w
            .token(client, code_request(&presented, redirect, verifier))
            .await;
        let (error, why) = refused(got);
        assert_eq!((error, why.as_str()), (want_error, want_why), "{twist:?}");
        // Nothing was issued: no refresh token, no reference record; the grant
        // stands unless the case itself revoked it.
        let grant = w.only_grant().await;
        assert_eq!(
            w.rows_of_grant("refresh_tokens", &grant.id).await,
            0,
            "{twist:?}"
        );
        assert_eq!(w.reference_rows().await, 0, "{twist:?}");
        let revoked = matches!(twist, UserDeactivated).then_some(T);
        assert_eq!(grant.revoked_at, revoked, "{twist:?}");
        if matches!(twist, UnknownCode) {
            continue;
        }
        // The failed attempt burnt the code: presenting it again is a replay.
        let (error, why) = refused(
            w.token(WEB, code_request(&code, Some(REDIRECT), verifier))
                .await,
        );
        assert_eq!(error, "invalid_grant", "{twist:?}");
        assert!(why.contains("already used"), "{twist:?}: {why}");
        assert!(
            w.store.grant(&grant.id).await.unwrap().revoked_at.is_some(),
            "{twist:?}"
        );
    }
}

#[tokio::test]
async fn offline_access_adds_a_refresh_token_of_the_grants_family() {
    let w = World::new().await;
    let code = w
        .code(WEB, ALICE, "scope=offline_access%20products:read")
        .await;
    let set = w.token(WEB, code_request(&code, None, None)).await.unwrap();
    assert_eq!(set.scope.to_string(), "products:read offline_access");
    let refresh = set.refresh_token.unwrap();
    let grant = w.only_grant().await;
    let record = w
        .store
        .refresh_token(&secret::digest(&refresh))
        .await
        .unwrap();
    assert_eq!(record.grant_id, grant.id);
    assert_eq!(record.client_id, WEB);
    assert_eq!(record.scopes, strings(&["products:read", "offline_access"]));
    assert_eq!((record.expires_at, record.used_at), (T + REFRESH_TTL, None));
    assert_eq!(w.rows_of_grant("refresh_tokens", &grant.id).await, 1);
}

#[tokio::test]
async fn openid_adds_an_id_token_with_the_nonce_bound_to_the_access_token() {
    let w = World::new().await;
    let code = w
        .code(
            WEB,
            ALICE,
            // The email asked for by name in the ID token (OpenID Connect Core §5.5).
            "scope=openid%20email%20products:read&nonce=n-0S6_WzA2Mj\
             &claims=%7B%22id_token%22%3A%7B%22email%22%3Anull%7D%7D",
        )
        .await;
    w.at(3);
    let set = w.token(WEB, code_request(&code, None, None)).await.unwrap();
    let id = w.id_claims(set.id_token.as_deref().unwrap());
    assert_eq!(id["iss"], ISSUER);
    assert_eq!(id["aud"], WEB);
    assert_eq!(id["sub"], ALICE);
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(id["email"], "u-alice@example.test");
    assert_eq!(id["sid"], "sid-u-alice");
    assert_eq!(
        (id["iat"].as_i64(), id["exp"].as_i64()),
        (Some(T + 3), Some(T + 3 + 3600))
    );
    assert_eq!(id["auth_time"].as_i64(), Some(T - 5));
    assert_eq!(id["at_hash"], id_token::at_hash(&set.access_token));
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert_eq!(id["acr"], gatehouse_core::claims::ACR_PASSWORD);
    // Not asked for by name: the scope's claims come from userinfo (Core §5.4).
    let code = w
        .code(WEB, ALICE, "scope=openid%20email%20products:read&nonce=n")
        .await;
    let set = w.token(WEB, code_request(&code, None, None)).await.unwrap();
    let id = w.id_claims(set.id_token.as_deref().unwrap());
    assert!(id.get("email").is_none(), "{id}");
    // Without openid: no ID token.
    let code = w.code(WEB, ALICE, "scope=products:read&nonce=n").await;
    let set = w.token(WEB, code_request(&code, None, None)).await.unwrap();
    assert!(set.id_token.is_none());
}

#[tokio::test]
async fn a_reference_token_api_gets_an_opaque_token_whose_record_is_stored() {
    let w = World::new().await;
    let code = w.code(WEB, ALICE, "scope=reports:read").await;
    let set = w.token(WEB, code_request(&code, None, None)).await.unwrap();
    assert_ne!(set.access_token.split('.').count(), 3, "opaque");
    let record = w
        .store
        .reference_token(&secret::digest(&set.access_token))
        .await
        .unwrap();
    assert_eq!(
        (record.client_id.as_str(), record.audience.as_str()),
        (WEB, REPORTS)
    );
    assert_eq!(record.expires_at, T + 600);
    let claims = w.access_claims(&set.access_token, SigningAlg::EdDSA).await;
    let grant = w.only_grant().await;
    assert_eq!(claims.gid.as_deref(), Some(grant.id.as_str()));
    assert_eq!(
        (claims.sub.as_str(), claims.scope.as_str()),
        (ALICE, "reports:read")
    );
    assert_eq!(w.reference_rows().await, 1);
}
