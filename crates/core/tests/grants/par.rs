//! Pushed authorization requests (RFC 9126): a push is checked exactly as the
//! authorization endpoint checks a request, stored under the digest of a fresh
//! `request_uri`, and claimed once, by the client that pushed it, within its life.

use gatehouse_core::ErrorCode;
use gatehouse_core::authorize::{self, AuthorizeError, Source};
use gatehouse_core::form::Form;
use gatehouse_core::par::{self, DEFAULT_TTL, PushError, PushRequest, REQUEST_URI_PREFIX};
use gatehouse_core::ports::{AppStore, StoreError};

use crate::world::*;

fn form(body: &str) -> Form {
    Form::parse(body.as_bytes()).unwrap()
}

/// A push of `WEB` with the credentials in the body (client_secret_post).
fn push_form(extra: &str) -> Form {
    form(&format!(
        "client_id={WEB}&client_secret=s3cret&response_type=code&redirect_uri={REDIRECT}&{extra}"
    ))
}

async fn push(w: &World, f: &Form) -> Result<par::Pushed, PushError> {
    let req = PushRequest::parse(f).map_err(PushError::OAuth)?;
    par::push(&w.store, &req, &w.ctx(WEB).await, DEFAULT_TTL, w.now()).await
}

fn code_of(e: PushError) -> ErrorCode {
    match e {
        PushError::OAuth(o) => o.code,
        PushError::Store(s) => panic!("store error {s}"),
    }
}

#[tokio::test]
async fn a_push_is_refused_with_the_error_authorize_would_redirect() {
    let w = World::new().await;
    let cases = [
        ("scope=nope", ErrorCode::InvalidScope),
        (
            "scope=products:read&code_challenge_method=S256",
            ErrorCode::InvalidRequest,
        ),
        (
            "scope=products:read&code_challenge=abc&code_challenge_method=plain",
            ErrorCode::InvalidRequest,
        ),
        (
            "scope=products:read&prompt=sometimes",
            ErrorCode::InvalidRequest,
        ),
        (
            "scope=products:read&audience=https://unknown.test",
            ErrorCode::InvalidTarget,
        ),
        (
            "scope=products:read&request=eyJ",
            ErrorCode::RequestNotSupported,
        ),
    ];
    for (extra, want) in cases {
        let f = push_form(extra);
        let authorize_says = match authorize::validate(&f, Some(&w.ctx(WEB).await)) {
            Err(AuthorizeError::Redirect { error, .. }) => error.code,
            other => panic!("{extra}: authorize said {other:?}"),
        };
        assert_eq!(authorize_says, want, "{extra}");
        assert_eq!(code_of(push(&w, &f).await.unwrap_err()), want, "{extra}");
    }
}

#[tokio::test]
async fn an_unregistered_redirect_uri_or_response_type_is_refused_at_push_time() {
    let w = World::new().await;
    let f = form(&format!(
        "client_id={WEB}&response_type=code&redirect_uri=https://evil.test/cb"
    ));
    assert_eq!(
        code_of(push(&w, &f).await.unwrap_err()),
        ErrorCode::InvalidRequest
    );
    let f = form(&format!("client_id={WEB}&response_type=token"));
    assert_eq!(
        code_of(push(&w, &f).await.unwrap_err()),
        ErrorCode::UnsupportedResponseType
    );
}

#[tokio::test]
async fn a_request_uri_inside_a_push_is_refused() {
    let w = World::new().await;
    let f = push_form("scope=products:read&request_uri=urn:ietf:params:oauth:request_uri:x");
    match push(&w, &f).await.unwrap_err() {
        PushError::OAuth(e) => {
            assert_eq!(e.code, ErrorCode::InvalidRequest);
            assert!(e.description.contains("request_uri"), "{e:?}");
        }
        PushError::Store(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn the_apps_pkce_requirement_applies_to_a_push() {
    let w = World::new().await;
    let mut app = w.store.app_by_client_id(WEB).await.unwrap();
    app.require_pkce = true;
    w.store.update_app(&app, w.now(), &audit()).await.unwrap();
    let e = push(&w, &push_form("scope=products:read"))
        .await
        .unwrap_err();
    assert_eq!(code_of(e), ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn a_pushed_request_is_claimed_once_by_its_client_within_its_life() {
    let w = World::new().await;
    let pushed = push(&w, &push_form("scope=products:read&state=s1"))
        .await
        .unwrap();
    assert_eq!(pushed.expires_in, 60);
    let token = pushed.request_uri.strip_prefix(REQUEST_URI_PREFIX).unwrap();
    assert!(token.len() >= 22, "at least 128 bits: {token}");

    // Another client cannot claim it, and trying does not burn it.
    let other = par::claim(&w.store, &pushed.request_uri, &w.ctx(WEB2).await, w.now()).await;
    assert!(matches!(other, Err(StoreError::NotFound)));

    let params = par::claim(&w.store, &pushed.request_uri, &w.ctx(WEB).await, w.now())
        .await
        .unwrap();
    assert!(params.contains("state=s1"), "{params}");
    // The client's credentials were never stored.
    assert!(
        !params.contains("s3cret") && !params.contains("client_secret"),
        "{params}"
    );

    let again = par::claim(&w.store, &pushed.request_uri, &w.ctx(WEB).await, w.now()).await;
    assert!(matches!(again, Err(StoreError::NotFound)));
    // The second use is a security event of the app's organization; the
    // other client's attempt and an expiry are not.
    assert_eq!(w.security_events(par::REPLAYED).await.len(), 1);
}

#[tokio::test]
async fn a_pushed_request_expires_after_sixty_seconds() {
    let w = World::new().await;
    let pushed = push(&w, &push_form("scope=products:read")).await.unwrap();
    w.at(60);
    let late = par::claim(&w.store, &pushed.request_uri, &w.ctx(WEB).await, w.now()).await;
    assert!(matches!(late, Err(StoreError::NotFound)));
}

#[tokio::test]
async fn an_app_requiring_par_refuses_the_front_channel_but_not_its_pushed_requests() {
    let w = World::new().await;
    let mut app = w.store.app_by_client_id(WEB).await.unwrap();
    app.require_par = true;
    w.store.update_app(&app, w.now(), &audit()).await.unwrap();
    let ctx = w.ctx(WEB).await;
    let f = form(&format!(
        "client_id={WEB}&response_type=code&scope=products:read"
    ));
    match authorize::validate(&f, Some(&ctx)) {
        Err(AuthorizeError::Redirect { error, .. }) => {
            assert_eq!(error.code, ErrorCode::InvalidRequest);
            assert!(error.description.contains("push"), "{error:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(authorize::validate_from(&f, Some(&ctx), Source::Pushed).is_ok());
    assert!(push(&w, &push_form("scope=products:read")).await.is_ok());
}

#[tokio::test]
async fn oversized_pushes_and_request_uris_are_refused_unread() {
    let w = World::new().await;
    let big = "x".repeat(par::MAX_PUSHED_BYTES);
    let e = push(&w, &push_form(&format!("scope=products:read&state={big}")))
        .await
        .unwrap_err();
    assert_eq!(code_of(e), ErrorCode::InvalidRequest);
    let long = format!("{REQUEST_URI_PREFIX}{}", "a".repeat(200));
    let r = par::claim(&w.store, &long, &w.ctx(WEB).await, w.now()).await;
    assert!(matches!(r, Err(StoreError::NotFound)));
}
