//! Signing in through the organization's own OpenID Connect provider (the
//! "upstream"): a sign-in form (the authorization endpoint's, the console's,
//! the device page's) sends a person whose e-mail domain an organization gave
//! to its provider there (code flow with PKCE S256, `nonce` and `state`), and
//! [`CALLBACK_PATH`] brings them back: the code is exchanged, the ID token
//! verified against the provider's JWKS
//! ([`gatehouse_core::upstream::verify_id_token`]), the person matched by
//! verified e-mail in *that provider's* organization (never another) or created
//! with the provider's default role, and the stored [`Continuation`] goes on
//! ([`crate::continuation`]: the second factor when needed, a session whose
//! `amr` starts with `fed`, then the authorization request, the console or the
//! device page). Where the provider is trusted for multi-factor sign-in and
//! said it did one, the session is `mfa` too and no local second step is asked
//! ([`gatehouse_core::upstream::session_amr`]). An ID token without the e-mail
//! has it settled by the provider's userinfo endpoint ([`settle_email`]).
//!
//! `state` is bound to the browser: its value is also in an HttpOnly cookie and
//! must match, and the pending sign-in (nonce, PKCE verifier, the
//! continuation) is stored under its digest and claimed once. Discovery, JWKS
//! and the token request go through the outbound client (no redirects, public
//! addresses only; loopback only in development mode), and discovery with its
//! JWKS is cached per issuer for [`REFRESH_AFTER`] seconds; a `kid` the cached
//! JWKS lacks refetches it at most once a minute.

// A step's early exit is the finished response (page or redirect); boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use gatehouse_core::client_assertion::{ClientKeySet, MAX_JWKS_BYTES};
use gatehouse_core::clock::UnixTime;
use gatehouse_core::form::Form;
use gatehouse_core::limits::MAX_EMAIL;
use gatehouse_core::model::{Actor, ActorKind, User, UserStatus};
use gatehouse_core::ports::StoreError;
use gatehouse_core::redirect_uri::RedirectPolicy;
use gatehouse_core::upstream::{
    Continuation, Expected, IdTokenError, LOGIN_TTL, UpstreamIdentity, UpstreamLogin,
    UpstreamMetadata, UpstreamProvider, VerifiedIdToken, domain_of, parse_metadata, secret_aad,
    session_amr, verify_id_token,
};
use gatehouse_core::{admin, pkce, secret};
use subtle::ConstantTimeEq;

use crate::client_addr::ClientAddr;
use crate::continuation::{self, How};
use crate::pages;
use crate::security_events;
use crate::state::AppState;

/// Where the upstream sends people back.
pub const CALLBACK_PATH: &str = "/upstream/callback";
/// The browser's half of `state`.
pub const STATE_COOKIE: &str = "gatehouse_upstream_state";
/// Discovery and JWKS are fetched again after this long (seconds), on next use.
pub const REFRESH_AFTER: UnixTime = 600;
/// A `kid` the JWKS lacks refetches it at most this often per issuer (seconds).
pub const UNKNOWN_KID_REFETCH: UnixTime = 60;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Most issuers cached at once.
const MAX_ENTRIES: usize = 10_000;
/// Longest `code`/`state`/`error` accepted on the way back.
const MAX_PARAM: usize = 2048;

pub fn router() -> Router<AppState> {
    Router::new().route(CALLBACK_PATH, get(callback))
}

/// What the sign-in form does with an e-mail address.
pub enum Decision {
    /// The usual password check.
    Password,
    /// Send the person to their organization's provider.
    Upstream(Box<UpstreamProvider>),
    /// Refuse, with what to do next.
    Refuse(&'static str),
}

pub const PASSWORDS_OFF: &str = "Your organization signs you in through its own identity provider, not with a password here. Choose \u{201c}Sign in with your organization\u{201d}.";
pub const NO_PROVIDER: &str = "This e-mail address does not sign in through an organization's identity provider. Enter your password and choose Sign in.";
const EMAIL_FIRST: &str =
    "Enter your e-mail address first, then choose \u{201c}Sign in with your organization\u{201d}.";

/// Decides how `email` signs in to an app of `org_id`: `sso` when the person
/// chose the provider's button, `password_given` when the field is filled.
/// Only the domain matters, so nothing tells whether an account exists.
pub async fn decide(
    state: &AppState,
    org_id: &str,
    email: &str,
    sso: bool,
    password_given: bool,
) -> Result<Decision, StoreError> {
    if sso && email.is_empty() {
        return Ok(Decision::Refuse(EMAIL_FIRST));
    }
    let provider = match state.store.upstream_provider(org_id).await {
        Ok(p) => Some(p),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e),
    };
    Ok(match provider {
        Some(p) if p.owns(email) => {
            if sso || !password_given {
                Decision::Upstream(Box::new(p))
            } else if p.allow_passwords {
                Decision::Password
            } else {
                Decision::Refuse(PASSWORDS_OFF)
            }
        }
        _ if sso => Decision::Refuse(NO_PROVIDER),
        _ => Decision::Password,
    })
}

/// Whether the organization has a provider (the sign-in page then offers it).
pub async fn offered(state: &AppState, org_id: &str) -> bool {
    state.store.upstream_provider(org_id).await.is_ok()
}

/// Providers that claim one domain, looked at when no organization is named.
const MAX_CLAIMS: u32 = 5;

/// Why no provider was chosen for "Sign in with your organization" where no
/// app names the organization (the console, the device page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotChosen {
    /// No e-mail address was entered.
    EmailFirst,
    /// No provider (of the named organization) claims the address's domain.
    NoProvider,
    /// Several organizations' providers claim the domain: the person must say
    /// which organization is theirs (never picked for them).
    ChooseOrganization,
}

impl NotChosen {
    pub fn message(self) -> &'static str {
        match self {
            NotChosen::EmailFirst => EMAIL_FIRST,
            NotChosen::NoProvider => NO_PROVIDER_ANY_ORG,
            NotChosen::ChooseOrganization => CHOOSE_ORGANIZATION,
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            NotChosen::EmailFirst | NotChosen::NoProvider => StatusCode::BAD_REQUEST,
            NotChosen::ChooseOrganization => StatusCode::OK,
        }
    }
}

const NO_PROVIDER_ANY_ORG: &str = "No organization here signs in this e-mail address through its identity provider (if you entered an organization, check it). Sign in with your password or a passkey.";
const CHOOSE_ORGANIZATION: &str = "Several organizations sign in addresses of this domain through their identity providers: enter the short name of yours, then choose \u{201c}Sign in with your organization\u{201d} again.";

/// The provider that signs `email` in where no app names the organization:
/// that of `org_slug` when given (if it claims the address's domain), else the
/// single one claiming the domain. Only the domain and the organizations'
/// settings decide, never whether an account exists. Whichever provider is
/// chosen, it can only ever sign people into its own organization ([`person`]).
pub async fn provider_for(
    state: &AppState,
    email: &str,
    org_slug: Option<&str>,
) -> Result<Result<UpstreamProvider, NotChosen>, StoreError> {
    if email.is_empty() {
        return Ok(Err(NotChosen::EmailFirst));
    }
    let Some(domain) = domain_of(email).filter(|_| email.len() <= MAX_EMAIL) else {
        return Ok(Err(NotChosen::NoProvider));
    };
    if let Some(slug) = org_slug {
        let org = match state.store.org_by_slug(slug).await {
            Ok(o) => o,
            Err(StoreError::NotFound) => return Ok(Err(NotChosen::NoProvider)),
            Err(e) => return Err(e),
        };
        return Ok(match state.store.upstream_provider(&org.id).await {
            Ok(p) if p.owns(email) => Ok(p),
            Ok(_) | Err(StoreError::NotFound) => Err(NotChosen::NoProvider),
            Err(e) => return Err(e),
        });
    }
    let mut claims = state
        .store
        .upstream_providers_for_domain(domain, MAX_CLAIMS)
        .await?;
    Ok(match (claims.pop(), claims.is_empty()) {
        (Some(p), true) if p.owns(email) => Ok(p),
        (Some(_), true) | (None, _) => Err(NotChosen::NoProvider),
        (Some(_), false) => Err(NotChosen::ChooseOrganization),
    })
}

/// Sends the person to the provider, remembering `then` to continue when
/// they come back.
pub async fn begin(
    state: &AppState,
    peer: IpAddr,
    jar: CookieJar,
    provider: &UpstreamProvider,
    email: &str,
    then: Continuation,
) -> Response {
    if let Some(wait) = state.login_limiter.address_blocked(peer) {
        return throttled(wait.0);
    }
    let now = state.clock.now();
    let entry = match state.upstream.entry(&provider.issuer, now, false).await {
        Ok(e) => e,
        Err(why) => return unreachable_provider(&provider.issuer, &why),
    };
    let state_value = secret::random_token();
    let login = UpstreamLogin {
        state_digest: secret::digest(&state_value),
        org_id: provider.org_id.clone(),
        nonce: secret::random_token(),
        code_verifier: secret::random_token(),
        continuation: then,
        expires_at: now + LOGIN_TTL,
    };
    if let Err(e) = state.store.insert_upstream_login(&login, now).await {
        return pages::store_failure(e);
    }
    let Ok(mut to) = url::Url::parse(&entry.meta.authorization_endpoint) else {
        return unreachable_provider(&provider.issuer, "bad authorization_endpoint");
    };
    to.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &provider.client_id)
        .append_pair("redirect_uri", &callback_uri(state))
        .append_pair("scope", "openid email profile")
        .append_pair("state", &state_value)
        .append_pair("nonce", &login.nonce)
        .append_pair("code_challenge", &pkce::s256(&login.code_verifier))
        .append_pair("code_challenge_method", "S256")
        // Providers that put `email` only in userinfo release it in the ID
        // token when asked (Core §5.5).
        .append_pair(
            "claims",
            r#"{"id_token":{"email":{"essential":true},"email_verified":{"essential":true}}}"#,
        )
        .append_pair("login_hint", email);
    tracing::info!(issuer = %provider.issuer, "sign-in sent to the organization's identity provider");
    let cookie = Cookie::build((STATE_COOKIE, state_value))
        .path("/")
        .http_only(true)
        // Lax: the provider's redirect back is a top-level GET, which carries it.
        .same_site(SameSite::Lax)
        .secure(state.config.secure_cookies())
        .max_age(cookie::time::Duration::seconds(LOGIN_TTL))
        .build();
    (jar.add(cookie), Redirect::to(to.as_str())).into_response()
}

fn callback_uri(state: &AppState) -> String {
    format!("{}{CALLBACK_PATH}", state.config.issuer)
}

/// `GET /upstream/callback?code&state` (or `error`).
async fn callback(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    RawQuery(q): RawQuery,
) -> Response {
    // Whatever happens, the state's cookie is spent.
    let spent = jar.clone().remove(Cookie::build(STATE_COOKIE).path("/"));
    match come_back(&state, peer, jar, q.as_deref().unwrap_or("")).await {
        Ok(r) => r,
        Err(r) => (spent, r).into_response(),
    }
}

async fn come_back(
    state: &AppState,
    peer: IpAddr,
    jar: CookieJar,
    query: &str,
) -> Result<Response, Response> {
    if let Some(wait) = state.login_limiter.address_blocked(peer) {
        return Err(throttled(wait.0));
    }
    let form = Form::parse(query.as_bytes()).map_err(|_| start_again())?;
    let param = |k: &str| {
        form.get(k)
            .filter(|v| !v.is_empty() && v.len() <= MAX_PARAM)
    };
    let login = claim(state, peer, &jar, param("state")).await?;
    let jar = jar.remove(Cookie::build(STATE_COOKIE).path("/"));
    if let Some(error) = param("error") {
        tracing::info!(error, "the identity provider did not sign the person in");
        return Err(pages::message(
            StatusCode::FORBIDDEN,
            "Not signed in",
            &format!(
                "Your organization's identity provider did not sign you in ({error}). Go back to the app and try again, or ask your administrator."
            ),
            None,
        ));
    }
    let code = param("code").ok_or_else(start_again)?;
    let provider = match state.store.upstream_provider(&login.org_id).await {
        Ok(p) => p,
        Err(StoreError::NotFound) => return Err(start_again()),
        Err(e) => return Err(pages::store_failure(e)),
    };
    let identity = match identify(state, &provider, &login, code).await {
        Ok(id) => id,
        Err(Refused::Provider(why)) => return Err(unreachable_provider(&provider.issuer, &why)),
        Err(Refused::Token(why)) => return Err(refused(state, peer, &provider, &why).await),
    };
    let user = person(state, peer, &provider, &identity).await?;
    let how = How::Federated {
        issuer: &provider.issuer,
        amr: session_amr(&provider, &identity),
    };
    Ok(continuation::signed_in(state, peer, jar, &user, how, &login.continuation).await)
}

/// The pending sign-in of this browser's `state`: the parameter must match
/// the cookie, and the stored sign-in is taken (once).
async fn claim(
    state: &AppState,
    peer: IpAddr,
    jar: &CookieJar,
    given: Option<&str>,
) -> Result<UpstreamLogin, Response> {
    let cookie = jar.get(STATE_COOKIE).map(|c| c.value().to_owned());
    let same = match (&cookie, given) {
        (Some(c), Some(g)) => bool::from(c.as_bytes().ct_eq(g.as_bytes())),
        _ => false,
    };
    if !same {
        tracing::info!(%peer, "upstream sign-in refused: state does not match this browser");
        let _ = state
            .login_limiter
            .record_failure(peer, &format!("upstream\n{peer}"))
            .await;
        return Err(start_again());
    }
    let digest = secret::digest(given.unwrap_or_default());
    match state
        .store
        .claim_upstream_login(&digest, state.clock.now())
        .await
    {
        Ok(l) => Ok(l),
        Err(StoreError::NotFound) => Err(start_again()),
        Err(e) => Err(pages::store_failure(e)),
    }
}

enum Refused {
    /// The provider could not be reached or answered nonsense.
    Provider(String),
    /// Its answer was refused (the ID token's checks).
    Token(IdTokenError),
}

/// Exchanges the code and verifies the ID token.
async fn identify(
    state: &AppState,
    provider: &UpstreamProvider,
    login: &UpstreamLogin,
    code: &str,
) -> Result<UpstreamIdentity, Refused> {
    let now = state.clock.now();
    let secret = state
        .kek()
        .open(
            &secret_aad(&provider.org_id),
            &provider.sealed_client_secret,
        )
        .ok()
        .and_then(|s| String::from_utf8(s).ok())
        .ok_or_else(|| Refused::Provider("the stored client secret cannot be opened".into()))?;
    let entry = state
        .upstream
        .entry(&provider.issuer, now, false)
        .await
        .map_err(Refused::Provider)?;
    let tokens = state
        .upstream
        .exchange(
            &entry.meta,
            provider,
            &secret,
            code,
            login,
            &callback_uri(state),
        )
        .await
        .map_err(Refused::Provider)?;
    let expected = Expected {
        issuer: &provider.issuer,
        client_id: &provider.client_id,
        nonce: &login.nonce,
        now,
    };
    let verified = match verify_id_token(&tokens.id_token, &entry.keys, &expected) {
        Err(IdTokenError::Signature(_)) if state.upstream.may_refetch(&provider.issuer, now) => {
            // A key rotated at the provider since the JWKS was cached.
            let fresh = state
                .upstream
                .entry(&provider.issuer, now, true)
                .await
                .map_err(Refused::Provider)?;
            verify_id_token(&tokens.id_token, &fresh.keys, &expected).map_err(Refused::Token)?
        }
        other => other.map_err(Refused::Token)?,
    };
    settle_email(state, &entry.meta, verified, tokens.access_token.as_deref()).await
}

/// The e-mail of a verified ID token: its own, or, when it lacks `email` or
/// `email_verified`, the provider's userinfo answer for the access token
/// (whose `sub` must be the token's).
async fn settle_email(
    state: &AppState,
    meta: &UpstreamMetadata,
    verified: VerifiedIdToken,
    access_token: Option<&str>,
) -> Result<UpstreamIdentity, Refused> {
    if !verified.needs_userinfo() {
        return verified.identity().map_err(Refused::Token);
    }
    let (Some(endpoint), Some(token)) = (meta.userinfo_endpoint.as_deref(), access_token) else {
        // Nothing to ask: refused for the missing claim, as before.
        return verified.identity().map_err(Refused::Token);
    };
    let info = state
        .upstream
        .userinfo(endpoint, token)
        .await
        .map_err(Refused::Provider)?;
    verified.with_userinfo(&info).map_err(Refused::Token)
}

/// The person's account in the provider's organization: matched by the
/// verified e-mail, or created with the default role.
async fn person(
    state: &AppState,
    peer: IpAddr,
    provider: &UpstreamProvider,
    id: &UpstreamIdentity,
) -> Result<User, Response> {
    // The provider speaks only for its own domains: an address elsewhere could
    // be another organization's person, or a local account it must not reach.
    if !provider.owns(&id.email) {
        let why = IdTokenError::Claims("`email` is not in a domain of this provider");
        return Err(refused(state, peer, provider, &why).await);
    }
    match state.store.user_by_email(&provider.org_id, &id.email).await {
        Ok(u) if u.status == UserStatus::Active => Ok(u),
        Ok(u) => {
            let _ = security_events::signin(
                state,
                &u,
                peer,
                Some("account deactivated (identity provider)"),
            )
            .await;
            Err(pages::message(
                StatusCode::FORBIDDEN,
                "Account deactivated",
                "Your account here is deactivated. Ask an administrator of your organization.",
                None,
            ))
        }
        Err(StoreError::NotFound) => create(state, peer, provider, id).await,
        Err(e) => Err(pages::store_failure(e)),
    }
}

/// Just-in-time: the person's first sign-in creates their account.
async fn create(
    state: &AppState,
    peer: IpAddr,
    provider: &UpstreamProvider,
    id: &UpstreamIdentity,
) -> Result<User, Response> {
    let store = state.store.as_ref();
    let org = store
        .org_by_id(&provider.org_id)
        .await
        .map_err(pages::store_failure)?;
    let actor = Actor {
        kind: ActorKind::User,
        id: "upstream".into(),
        name: format!("identity provider {}", provider.issuer),
        org_id: Some(org.id.clone()),
        address: peer.to_string(),
    };
    let new = admin::NewUser {
        org: &org,
        email: &id.email,
        name: id.name.as_deref(),
        role: &provider.default_role,
        groups: Vec::new(),
        password: None,
        profile: admin::ProfileEdit {
            email_verified: Some(true),
            ..Default::default()
        },
    };
    match admin::create_user(store, state.clock.now(), &actor, new).await {
        Ok(u) => {
            tracing::info!(user_id = %u.id, "person created on their first sign-in through the identity provider");
            Ok(u)
        }
        // Two first sign-ins at once: the other one created the account.
        Err(admin::AdminError::Conflict(_)) => store
            .user_by_email(&org.id, &id.email)
            .await
            .map_err(pages::store_failure),
        Err(admin::AdminError::Store(e)) => Err(pages::store_failure(e)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot create the person signed in upstream");
            Err(pages::message(
                StatusCode::FORBIDDEN,
                "Cannot create your account",
                "Your organization's settings do not let your account be created (its default role may be gone). Ask an administrator of your organization.",
                None,
            ))
        }
    }
}

/// A refused ID token: logged, audited in the organization (the provider is
/// theirs), counted against the address, and explained.
async fn refused(
    state: &AppState,
    peer: IpAddr,
    provider: &UpstreamProvider,
    why: &IdTokenError,
) -> Response {
    tracing::warn!(issuer = %provider.issuer, %why, "upstream sign-in refused");
    let actor = Actor {
        kind: ActorKind::User,
        id: "upstream".into(),
        name: format!("identity provider {}", provider.issuer),
        org_id: Some(provider.org_id.clone()),
        address: peer.to_string(),
    };
    let event = gatehouse_core::model::AuditEvent::new(
        &actor,
        &provider.org_id,
        state.clock.now(),
        security_events::SIGNIN_FAILED,
        &provider.org_id,
        format!("sign-in through the identity provider refused: {why}"),
    );
    if let Err(e) = state.store.record_security_event(&event).await {
        return pages::store_failure(e);
    }
    let _ = state
        .login_limiter
        .record_failure(peer, &format!("upstream\n{peer}"))
        .await;
    let message = match why {
        IdTokenError::EmailNotVerified => {
            "Your organization's identity provider has not verified your e-mail address, so it cannot sign you in here. Ask your administrator to verify it there, then try again."
        }
        _ => {
            "Your organization's identity provider answered in a way Gatehouse cannot accept. Try again, or ask your administrator (the audit log says why)."
        }
    };
    pages::message(StatusCode::FORBIDDEN, "Not signed in", message, None)
}

fn start_again() -> Response {
    pages::message(
        StatusCode::BAD_REQUEST,
        "Sign-in expired",
        "This sign-in did not start in this browser, was already used, or took too long. Go back to the app and sign in again.",
        None,
    )
}

fn throttled(secs: u64) -> Response {
    let mut r = pages::message(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        &format!("Too many failed sign-ins from this address. Try again in {secs} seconds."),
        None,
    );
    r.headers_mut()
        .insert(axum::http::header::RETRY_AFTER, secs.into());
    r
}

fn unreachable_provider(issuer: &str, why: &str) -> Response {
    tracing::warn!(
        issuer,
        why,
        "the organization's identity provider cannot be used"
    );
    pages::message(
        StatusCode::BAD_GATEWAY,
        "Identity provider unavailable",
        "Your organization's identity provider cannot be reached or answered unexpectedly. Try again in a moment; if it persists, ask your administrator.",
        None,
    )
}

/// One provider's discovery and keys.
pub struct Entry {
    pub meta: UpstreamMetadata,
    pub keys: ClientKeySet,
    fetched_at: UnixTime,
}

/// Providers' discovery documents and JWKS, per issuer.
pub struct UpstreamCache {
    http: reqwest::Client,
    dev: bool,
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    /// When each issuer was last fetched for an unknown key.
    refetched: RwLock<HashMap<String, UnixTime>>,
    fetching: tokio::sync::Mutex<()>,
}

impl UpstreamCache {
    pub fn new(policy: &RedirectPolicy) -> Self {
        Self {
            http: crate::outbound::client(policy, FETCH_TIMEOUT),
            dev: policy.dev,
            entries: RwLock::new(HashMap::new()),
            refetched: RwLock::new(HashMap::new()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self, issuer: &str) -> Option<Arc<Entry>> {
        self.entries.read().ok()?.get(issuer).cloned()
    }

    /// The issuer's discovery and keys: cached, or fetched (`force`: fetched).
    pub async fn entry(
        &self,
        issuer: &str,
        now: UnixTime,
        force: bool,
    ) -> Result<Arc<Entry>, String> {
        let fresh = |e: &Arc<Entry>| !force && now - e.fetched_at < REFRESH_AFTER;
        if let Some(e) = self.cached(issuer).filter(fresh) {
            return Ok(e);
        }
        let _one = self.fetching.lock().await;
        if let Some(e) = self
            .cached(issuer)
            .filter(|e| fresh(e) || e.fetched_at >= now)
        {
            return Ok(e);
        }
        let url = format!("{issuer}/.well-known/openid-configuration");
        let doc = self.get_json(&url).await?;
        let meta = parse_metadata(&doc, issuer, self.dev)?;
        let jwks = self.get_json(&meta.jwks_uri).await?;
        let keys =
            ClientKeySet::parse_fetched(&jwks.to_string()).map_err(|e| format!("its JWKS {e}"))?;
        let entry = Arc::new(Entry {
            meta,
            keys,
            fetched_at: now,
        });
        if let Ok(mut m) = self.entries.write() {
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert(issuer.to_owned(), entry.clone());
        }
        Ok(entry)
    }

    /// Whether an unknown key may fetch the issuer's JWKS again now (and notes it).
    pub fn may_refetch(&self, issuer: &str, now: UnixTime) -> bool {
        let Ok(mut m) = self.refetched.write() else {
            return false;
        };
        if m.get(issuer).is_some_and(|t| now - t < UNKNOWN_KID_REFETCH) {
            return false;
        }
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(issuer.to_owned(), now);
        true
    }

    /// The token request (client_secret_basic, RFC 6749 §2.3.1): its
    /// `id_token` and `access_token`.
    async fn exchange(
        &self,
        meta: &UpstreamMetadata,
        provider: &UpstreamProvider,
        secret: &str,
        code: &str,
        login: &UpstreamLogin,
        redirect_uri: &str,
    ) -> Result<Tokens, String> {
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_verifier", &login.code_verifier)
            .finish();
        let resp = self
            .http
            .post(&meta.token_endpoint)
            .basic_auth(enc(&provider.client_id), Some(enc(secret)))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("token request: {}", causes(e)))?;
        let status = resp.status();
        let v = read_json(resp).await?;
        if !status.is_success() {
            let err = v["error"].as_str().unwrap_or("no error code");
            return Err(format!(
                "its token endpoint answered {} ({err})",
                status.as_u16()
            ));
        }
        let id_token = v["id_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or("its token response has no id_token")?;
        let access_token = v["access_token"].as_str().map(str::to_owned);
        Ok(Tokens {
            id_token,
            access_token,
        })
    }

    /// The userinfo answer for `access_token` (Core §5.3.1: a bearer GET),
    /// as JSON of at most [`MAX_JWKS_BYTES`], within [`FETCH_TIMEOUT`].
    async fn userinfo(
        &self,
        endpoint: &str,
        access_token: &str,
    ) -> Result<serde_json::Value, String> {
        gatehouse_core::upstream::url_allowed(endpoint, self.dev)
            .map_err(|w| format!("{endpoint} {w}"))?;
        let resp = self
            .http
            .get(endpoint)
            .bearer_auth(access_token)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("userinfo: {}", causes(e)))?;
        if !resp.status().is_success() {
            return Err(format!(
                "its userinfo endpoint answered {}",
                resp.status().as_u16()
            ));
        }
        read_json(resp).await
    }

    async fn get_json(&self, url: &str) -> Result<serde_json::Value, String> {
        gatehouse_core::upstream::url_allowed(url, self.dev).map_err(|w| format!("{url} {w}"))?;
        let resp = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {}", e.without_url()))?;
        if !resp.status().is_success() {
            return Err(format!("{url} answered {}", resp.status().as_u16()));
        }
        read_json(resp).await
    }
}

/// A failed request and its causes ("error sending request: … Connection
/// reset by peer"), without the URL.
fn causes(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// What the provider's token endpoint answered.
struct Tokens {
    id_token: String,
    access_token: Option<String>,
}

/// A JSON body of at most [`MAX_JWKS_BYTES`].
async fn read_json(mut resp: reqwest::Response) -> Result<serde_json::Value, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_JWKS_BYTES {
            return Err("the answer is too large".into());
        }
    }
    serde_json::from_slice(&body).map_err(|_| "the answer is not JSON".into())
}
