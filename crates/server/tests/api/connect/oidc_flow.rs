//! The authorization code flow end to end, driven by the `openidconnect` crate as
//! a relying party would: discovery, authorization request with PKCE and nonce,
//! sign-in and consent through the HTML pages, code exchange, ID token
//! verification against the published JWKS, userinfo, refresh, revocation and
//! RP-initiated logout.

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreErrorResponseType, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode,
    CoreResponseType, CoreRevocableToken, CoreSubjectIdentifierType, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AdditionalProviderMetadata, Audience, AuthorizationCode, ClientId,
    ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    ProviderMetadata, RedirectUrl, RequestTokenError, RevocationUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};

use crate::browser::Browser;
use crate::helpers::{BYE, CALLBACK, PASSWORD, TestApp, send};

/// What the core metadata type leaves out and this flow needs.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct ExtraMetadata {
    revocation_endpoint: String,
    end_session_endpoint: String,
    code_challenge_methods_supported: Vec<String>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// oauth2 refuses a revocation endpoint that is not HTTPS (RFC 7009 §2 asks for
/// TLS); the test server speaks plain HTTP on loopback, so the revocation URL is
/// given as `https://127.0.0.1:…` and this adapter carries it there over HTTP.
async fn send_loopback(
    req: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let (mut parts, body) = req.into_parts();
    if let Some(rest) = parts.uri.to_string().strip_prefix("https://127.0.0.1:") {
        parts.uri = format!("http://127.0.0.1:{rest}").parse().unwrap();
    }
    send(http::Request::from_parts(parts, body)).await
}

fn sorted(scope: &str) -> Vec<&str> {
    let mut v: Vec<&str> = scope.split(' ').collect();
    v.sort_unstable();
    v
}

#[tokio::test]
async fn openidconnect_relying_party_completes_the_whole_flow() {
    let (app, web, user) = TestApp::web_setup().await;

    // Discovery (the crate also fetches the JWKS and checks the issuer).
    let meta = Metadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &send)
        .await
        .unwrap();
    let extra = meta.additional_metadata().clone();
    assert_eq!(extra.code_challenge_methods_supported, ["S256"]);
    assert_eq!(extra.end_session_endpoint, app.url("/connect/endsession"));
    assert_eq!(extra.revocation_endpoint, app.url("/connect/revocation"));
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(web.client_id.clone()),
        Some(ClientSecret::new(web.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap())
    .set_revocation_url(
        RevocationUrl::new(extra.revocation_endpoint.replacen("http://", "https://", 1)).unwrap(),
    );

    // The authorization request, answered through the pages.
    let (pkce_challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf_state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("cfgateway".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(pkce_challenge)
        .url();
    assert!(
        auth_url
            .as_str()
            .starts_with(&app.url("/connect/authorize?"))
    );
    let browser = Browser::new(&app);
    let login = browser.get(auth_url.as_str()).await;
    assert_eq!(login.status, 200);
    login.assert_login_form();
    assert!(login.body.contains("Studio sync"), "{}", login.body);
    let consent = browser.login(&login, "ana@acme.test", PASSWORD).await;
    assert_eq!(consent.status, 200, "{consent:?}");
    assert!(consent.is_consent(), "{}", consent.body);
    assert!(consent.body.contains("ana@acme.test"));
    assert!(consent.body.contains("cfgateway"));
    let back = browser.consent(&consent, "allow").await.callback();
    assert_eq!(back.names(), ["code", "scope", "state", "iss"]);
    assert_eq!(back.get("state"), Some(csrf_state.secret().as_str()));
    assert_eq!(back.get("iss"), Some(app.base.as_str()));
    assert_eq!(
        sorted(back.get("scope").unwrap()),
        ["cfgateway", "offline_access", "openid"]
    );

    // The code exchange.
    let tokens = client
        .exchange_code(AuthorizationCode::new(back.get("code").unwrap().into()))
        .unwrap()
        .set_pkce_verifier(pkce_verifier)
        .request_async(&send)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        tokens.expires_in(),
        Some(std::time::Duration::from_secs(3600))
    );
    let mut granted: Vec<String> = tokens
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    granted.sort();
    assert_eq!(granted, ["cfgateway", "offline_access", "openid"]);
    let refresh = tokens
        .refresh_token()
        .expect("offline_access gives a refresh token");

    // The ID token: signature (JWKS), iss, aud, exp, nonce; then at_hash.
    let id_token = tokens.id_token().expect("openid gives an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &nonce)
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(claims.subject().as_str(), user);
    assert_eq!(claims.issuer().as_str(), app.base);
    assert_eq!(claims.audiences(), &[Audience::new(web.client_id.clone())]);
    assert!(claims.auth_time().is_some());
    let expected_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));
    // The access token itself is for the API, verifiable through the JWKS.
    let at = crate::well_known::verify_with_jwks(
        &app,
        tokens.access_token().secret(),
        "https://gateway.acme.test",
    )
    .await;
    assert_eq!(at["sub"], user);
    assert_eq!(at["client_id"], web.client_id);

    // Userinfo, with the subject the ID token named.
    let info: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&send)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(info.subject().as_str(), user);

    // Refresh: a new pair, the same subject in a fresh ID token.
    let refreshed = client
        .exchange_refresh_token(refresh)
        .unwrap()
        .request_async(&send)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let refresh2 = refreshed.refresh_token().expect("rotation").clone();
    assert_ne!(refresh2.secret(), refresh.secret());
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
    let id2 = refreshed.id_token().expect("still openid");
    let claims2 = id2
        .claims(&verifier, |n: Option<&Nonce>| match n {
            None => Ok(()),
            Some(_) => Err("a refreshed ID token carries no nonce".to_owned()),
        })
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(claims2.subject(), claims.subject());
    assert_eq!(claims2.auth_time(), claims.auth_time());

    // Revoking the refresh token ends the family and its access tokens.
    client
        .revoke_token(CoreRevocableToken::from(refresh2.clone()))
        .unwrap()
        .request_async(&send_loopback)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    match client
        .exchange_refresh_token(&refresh2)
        .unwrap()
        .request_async(&send)
        .await
    {
        Err(RequestTokenError::ServerResponse(e)) => {
            assert_eq!(e.error(), &CoreErrorResponseType::InvalidGrant);
        }
        other => panic!("a revoked refresh token must fail: {other:?}"),
    }
    let after: Result<CoreUserInfoClaims, _> = client
        .user_info(refreshed.access_token().clone(), None)
        .unwrap()
        .request_async(&send)
        .await;
    assert!(after.is_err(), "userinfo after revocation: {after:?}");

    // Still signed in: the next authorization goes straight back with a code.
    let again = browser.get(auth_url.as_str()).await.callback();
    assert!(again.get("code").is_some());

    // RP-initiated logout with the ID token as hint.
    let logout = browser
        .get(&format!(
            "{}?{}",
            extra.end_session_endpoint,
            crate::helpers::Params::new()
                .set("id_token_hint", &id_token.to_string())
                .set("post_logout_redirect_uri", BYE)
                .set("state", "bye-42")
                .query()
        ))
        .await;
    assert_eq!(logout.redirect().as_str(), format!("{BYE}?state=bye-42"));

    // Signed out: the same request shows the sign-in page again.
    let page = browser.get(auth_url.as_str()).await;
    assert_eq!(page.status, 200);
    page.assert_login_form();
}
