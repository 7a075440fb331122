//! Pushed authorization requests (RFC 9126). An authenticated client posts its
//! authorization request's parameters; they are checked by the same validator
//! the authorization endpoint uses ([`authorize::validate_from`]), stored for
//! [`DEFAULT_TTL`] seconds under the digest of a random `request_uri`, and
//! claimed once when the browser arrives with that reference. This module owns
//! the checks, the reference and its lifetime; storage is the narrow
//! [`PushedRequestStore`], and nothing here knows about HTTP or the browser.

use crate::authorize::{self, AuthorizeError, Source, ValidAuthorize};
use crate::clock::UnixTime;
use crate::context::ClientContext;
use crate::error::OAuthError;
use crate::form::Form;
use crate::model::{Actor, ActorKind, AuditEvent, PushedRequest};
use crate::ports::{AuditStore, PushedRequestStore, StoreError, StoreResult};
use crate::secret;

/// RFC 9126 §2.2: the reference's form.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// How long a pushed request waits for the browser (RFC 9126 §2.2 suggests
/// 5 to 600 seconds; a short life keeps a leaked reference of little use).
pub const DEFAULT_TTL: UnixTime = 60;
/// Ours are the prefix and 43 characters; anything longer is refused unread.
pub const MAX_REQUEST_URI: usize = 128;
/// Bound on a pushed request's parameters (form-encoded): they travel on,
/// sealed, in the sign-in and consent forms, whose fields are bounded too.
pub const MAX_PUSHED_BYTES: usize = 4 * 1024;

/// Parameters that are the client's credentials, not the request's: never stored.
const CREDENTIALS: &[&str] = &[
    "client_id",
    "client_secret",
    "client_assertion_type",
    "client_assertion",
];

/// A push as parsed from the client's form. Nothing is checked here: the
/// extractor parses it before the client is authenticated, and a stranger
/// learns nothing about a request from an answer to bad credentials.
#[derive(Clone)]
pub struct PushRequest {
    form: Form,
}

/// The form may hold the client's secret (`client_secret_post`): never shown.
impl std::fmt::Debug for PushRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushRequest").finish_non_exhaustive()
    }
}

impl PushRequest {
    pub fn parse(form: &Form) -> Result<Self, OAuthError> {
        Ok(Self { form: form.clone() })
    }

    /// The request's parameters form-encoded, without the client's
    /// credentials (what is stored), once checked against §2.1 and the bound.
    fn params(&self) -> Result<String, OAuthError> {
        // §2.1: `request_uri` is the one authorization parameter that must not be pushed.
        if self.form.get("request_uri").is_some() {
            return Err(OAuthError::invalid_request(
                "`request_uri` must not be pushed (RFC 9126 §2.1)",
            ));
        }
        let params = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.form.pairs().filter(|(k, _)| !CREDENTIALS.contains(k)))
            .finish();
        if params.len() > MAX_PUSHED_BYTES {
            return Err(OAuthError::invalid_request(format!(
                "the pushed parameters are longer than {MAX_PUSHED_BYTES} bytes"
            )));
        }
        Ok(params)
    }
}

/// The answer to a push (RFC 9126 §2.2).
#[derive(Debug)]
pub struct Pushed {
    pub request_uri: String,
    pub expires_in: UnixTime,
    /// The request as the authorization endpoint will see it.
    pub request: ValidAuthorize,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks `req` as the authorization endpoint would for `client` (RFC 9126
/// §2.1), and stores it for `ttl` seconds under a new `request_uri`.
pub async fn push<S: PushedRequestStore + ?Sized>(
    store: &S,
    req: &PushRequest,
    client: &ClientContext,
    ttl: UnixTime,
    now: UnixTime,
) -> Result<Pushed, PushError> {
    let params = req.params()?;
    // Checked as the claim will read it back.
    let form = Form::parse(params.as_bytes())?;
    let request =
        authorize::validate_from(&form, Some(client), Source::Pushed).map_err(push_error)?;
    // 256 random bits (§7.1 asks for references that cannot be guessed).
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", secret::random_token());
    store
        .insert_pushed_request(&PushedRequest {
            digest: secret::digest(&request_uri),
            client_id: client.app.client_id.clone(),
            params,
            expires_at: now + ttl,
        })
        .await?;
    Ok(Pushed {
        request_uri,
        expires_in: ttl,
        request,
    })
}

/// An authorization error as the push endpoint answers it: JSON, never a
/// redirect (§2.3), with the code the authorization endpoint would have sent.
fn push_error(e: AuthorizeError) -> OAuthError {
    match e {
        AuthorizeError::Unredirectable(why) => OAuthError::invalid_request(why),
        AuthorizeError::Redirect { error, .. } => error,
    }
}

/// Whether a `request_uri` is one of ours in form (pushed here), as opposed to
/// a request object by reference, which is not supported.
pub fn is_pushed_reference(request_uri: &str) -> bool {
    request_uri.starts_with(REQUEST_URI_PREFIX)
}

/// Every store port a pushed request touches.
pub trait ParStore: PushedRequestStore + AuditStore {}
impl<T: PushedRequestStore + AuditStore + ?Sized> ParStore for T {}

/// The security event of a `request_uri` presented again after its claim.
pub const REPLAYED: &str = "par.replayed";

/// Claims the pushed request `request_uri` for `client` (once, before it
/// expires): its parameters, form-encoded. NotFound when it is unknown, another
/// client's, expired or used; nothing changes then, except that a used one is
/// recorded as a security event ([`REPLAYED`]): the link was opened twice.
pub async fn claim<S: ParStore + ?Sized>(
    store: &S,
    request_uri: &str,
    client: &ClientContext,
    now: UnixTime,
) -> StoreResult<String> {
    if request_uri.len() > MAX_REQUEST_URI || !is_pushed_reference(request_uri) {
        return Err(StoreError::NotFound);
    }
    let digest = secret::digest(request_uri);
    let app = &client.app;
    match store
        .claim_pushed_request(&digest, &app.client_id, now)
        .await
    {
        Ok(r) => Ok(r.params),
        Err(StoreError::NotFound) => {
            if store
                .pushed_request_claimed(&digest, &app.client_id)
                .await?
            {
                store.record_security_event(&replayed(client, now)).await?;
            }
            Err(StoreError::NotFound)
        }
        Err(e) => Err(e),
    }
}

fn replayed(client: &ClientContext, now: UnixTime) -> AuditEvent {
    let app = &client.app;
    let actor = Actor {
        kind: ActorKind::App,
        id: app.client_id.clone(),
        name: app.name.clone(),
        org_id: Some(app.org_id.clone()),
        address: "authorization endpoint".into(),
    };
    AuditEvent::new(
        &actor,
        &app.org_id,
        now,
        REPLAYED,
        &app.client_id,
        format!(
            "a pushed authorization request was presented again after its first use and refused (app `{}`)",
            app.name
        ),
    )
}
