//! The authorization endpoint and the pages it leads through: sign in, consent,
//! then a redirect with the code (RFC 6749 §4.1, OpenID Connect Core §3.1.2).
//! The original request travels in a hidden form field and is validated again on
//! every step, so nothing a form posts can widen it.

// A step's early exit is the finished response (page or redirect); boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::authorize::next_step::{
    NextStep, SignedIn, may_consent, next_step, session_serves,
};
use gatehouse_core::authorize::{self, AuthorizeError, MfaRequest, Source, ValidAuthorize};
use gatehouse_core::context::{ActingUser, ClientContext, ContextSource, acting_user};
use gatehouse_core::discovery::AUTHORIZE_PATH;
use gatehouse_core::form::Form;
use gatehouse_core::grant::authorization_code::issue_code;
use gatehouse_core::model::{Consent, Session};
use gatehouse_core::par;
use gatehouse_core::ports::StoreError;
use gatehouse_core::scope::ScopeSet;
use gatehouse_core::upstream::Continuation;
use gatehouse_core::{ErrorCode, OAuthError};

use crate::client_addr::ClientAddr;
use crate::pages::{self, ConsentPage, LoginPage};
use crate::sealed_request;
use crate::second_factor;
use crate::session;
use crate::signin::{self, Attempt};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(AUTHORIZE_PATH, get(authorize_get).post(authorize_post))
        .route("/login", post(login))
        .route("/consent", post(consent))
        .route(SECOND_STEP, post(second_step))
        .route(PASSKEY_SIGNIN, post(passkey_signin))
}

/// A response that ends the flow early (an error page or an error redirect).
type Step<T> = Result<T, Response>;

async fn authorize_get(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(q): RawQuery,
) -> Response {
    begin(&state, jar, q.as_deref().unwrap_or(""))
        .await
        .unwrap_or_else(|r| r)
}

/// OpenID Connect Core §3.1.2.1: the request may also be a form POST.
async fn authorize_post(State(state): State<AppState>, jar: CookieJar, body: Bytes) -> Response {
    match std::str::from_utf8(&body) {
        Ok(q) => begin(&state, jar, q).await.unwrap_or_else(|r| r),
        Err(_) => bad_request("The request is not valid UTF-8."),
    }
}

async fn begin(state: &AppState, jar: CookieJar, query: &str) -> Step<Response> {
    let Checked { req, ctx, carry } = validated(state, query, Entry::Authorize).await?;
    let session = session::current(state, &jar).await.map_err(unavailable)?;
    let now = state.clock.now();
    let session = session.filter(|s| session_serves(&req, s, now));
    proceed(state, jar, &req, &ctx, session.as_ref(), &carry).await
}

/// Where a request enters: the authorization URL (or its form POST), or the
/// sign-in and consent forms, which carry it on in their `request` field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Entry {
    Authorize,
    Form,
}

/// A request that passed every check, with what the next form must carry.
struct Checked {
    req: ValidAuthorize,
    ctx: Arc<ClientContext>,
    /// The `request` field of the next page's forms.
    carry: String,
}

/// Parses and checks the request; errors become a page or an error redirect.
async fn validated(state: &AppState, query: &str, entry: Entry) -> Step<Checked> {
    let form = Form::parse(query.as_bytes()).map_err(|e| bad_request(&e.description))?;
    let client_id = authorize::client_id(&form).map_err(|e| authorize_error(state, e))?;
    let ctx = match state.clients.client_context(client_id).await {
        Ok(c) => Some(c),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(unavailable(e)),
    };
    let pushed = match &ctx {
        Some(ctx) => pushed(state, &form, ctx, entry).await?,
        None => None,
    };
    let (req, carry) = match pushed {
        Some((inner, carry)) => (
            authorize::validate_from(&inner, ctx.as_deref(), Source::Pushed),
            carry,
        ),
        None => (authorize::validate(&form, ctx.as_deref()), query.to_owned()),
    };
    let req = req.map_err(|e| authorize_error(state, e))?;
    match ctx {
        Some(ctx) => Ok(Checked { req, ctx, carry }),
        None => Err(bad_request("This app is not registered.")),
    }
}

/// The parameters of the pushed request (RFC 9126 §4) that `form` refers to,
/// with what the next form must carry; `None` for a front-channel request.
/// Everything else on the authorization URL is ignored: the pushed parameters
/// are the request.
async fn pushed(
    state: &AppState,
    form: &Form,
    ctx: &ClientContext,
    entry: Entry,
) -> Step<Option<(Form, String)>> {
    let now = state.clock.now();
    let client_id = ctx.app.client_id.as_str();
    let (params, carry) = match (
        entry,
        form.get("request_uri"),
        form.get(sealed_request::PARAM),
    ) {
        (Entry::Authorize, Some(uri), _) if par::is_pushed_reference(uri) => {
            let params = match par::claim(state.store.as_ref(), uri, ctx, now).await {
                Ok(p) => p,
                Err(StoreError::NotFound) => return Err(bad_request(PUSHED_GONE)),
                Err(e) => return Err(unavailable(e)),
            };
            let carry = sealed_request::carry(state, client_id, &params, now)
                .ok_or_else(|| bad_request("The request cannot be completed."))?;
            (params, carry)
        }
        // Only the CSRF-checked forms take a sealed request, never the URL.
        (Entry::Form, _, Some(sealed)) => {
            let params = sealed_request::open(state, client_id, sealed, now)
                .ok_or_else(|| bad_request(FORM_EXPIRED))?;
            (params, sealed_request::field(client_id, sealed))
        }
        _ => return Ok(None),
    };
    let params = Form::parse(params.as_bytes())
        .map_err(|_| bad_request("The request cannot be completed."))?;
    Ok(Some((params, carry)))
}

const PUSHED_GONE: &str = "This sign-in link has expired or was already used: an app's pushed request works once, within a minute. Go back to the app and start again.";
const FORM_EXPIRED: &str =
    "This sign-in took too long or the form was changed. Go back to the app and start again.";

/// Loads who is signed in (if anyone), asks core for the next step, renders it.
async fn proceed(
    state: &AppState,
    jar: CookieJar,
    req: &ValidAuthorize,
    ctx: &ClientContext,
    session: Option<&Session>,
    query: &str,
) -> Step<Response> {
    let (user, consent) = match session {
        Some(s) => signed_in(state, s, &ctx.app.client_id).await?,
        None => (None, None),
    };
    let who = session.map(|_| SignedIn {
        user: user.as_ref(),
        consent: consent.as_ref(),
    });
    let step = next_step(req, &ctx.app, who);
    let signed = session.zip(user.as_ref());
    let jar = match signed {
        Some((s, u))
            if matches!(
                step,
                NextStep::Issue | NextStep::AskConsent | NextStep::NotAllowed
            ) =>
        {
            match step_up(state, jar, req, s, &u.user, query).await? {
                Ok(jar) => jar,
                Err(page) => return Ok(page),
            }
        }
        _ => jar,
    };
    render(state, jar, req, ctx, signed, query, step).await
}

/// The session's user (`None` when gone) and the scopes they allowed this app.
async fn signed_in(
    state: &AppState,
    s: &Session,
    client_id: &str,
) -> Step<(Option<ActingUser>, Option<ScopeSet>)> {
    let user = match state.store.user_by_id(&s.user_id).await {
        Ok(u) => acting_user(state.store.as_ref(), u)
            .await
            .map_err(unavailable)?,
        Err(StoreError::NotFound) => return Ok((None, None)),
        Err(e) => return Err(unavailable(e)),
    };
    let consent = match state.store.consent(&user.user.id, client_id).await {
        Ok(c) => Some(ScopeSet::from(c.scopes.as_slice())),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(unavailable(e)),
    };
    Ok((Some(user), consent))
}

/// The page or redirect of `step`.
async fn render(
    state: &AppState,
    jar: CookieJar,
    req: &ValidAuthorize,
    ctx: &ClientContext,
    signed: Option<(&Session, &ActingUser)>,
    query: &str,
    step: NextStep,
) -> Step<Response> {
    Ok(match (step, signed) {
        (
            NextStep::SignIn {
                notice,
                prefill_hint,
                end_session,
            },
            _,
        ) => {
            let jar = ended_if(state, jar, end_session).await?;
            let email = match &req.login_hint {
                Some(hint) if prefill_hint => hint.as_str(),
                _ => "",
            };
            login_page(state, jar, ctx, query, StatusCode::OK, notice, email).await
        }
        (NextStep::Deny { error, end_session }, _) => {
            let jar = ended_if(state, jar, end_session).await?;
            (jar, deny(state, req, error)).into_response()
        }
        (NextStep::Issue, Some((s, _))) => (jar, issue(state, req, ctx, s).await?).into_response(),
        (NextStep::NotAllowed, Some((_, user))) => {
            // The jar may hold a session cookie set by this very sign-in: keep it.
            (jar, not_allowed(state, req, ctx, user)).into_response()
        }
        (NextStep::AskConsent, Some((_, user))) => consent_page(state, jar, req, ctx, user, query),
        // Core asks these only of a signed-in user.
        (NextStep::Issue | NextStep::NotAllowed | NextStep::AskConsent, None) => {
            login_page(state, jar, ctx, query, StatusCode::OK, None, "").await
        }
    })
}

fn consent_page(
    state: &AppState,
    jar: CookieJar,
    req: &ValidAuthorize,
    ctx: &ClientContext,
    user: &ActingUser,
    query: &str,
) -> Response {
    let (csrf, jar) = session::csrf_token(state, jar);
    let scopes = pages::scope_lines(&ctx.apis, &req.scope);
    let page = ConsentPage {
        app_name: &ctx.app.name,
        app_description: ctx.app.description.as_deref(),
        user_email: &user.user.email,
        scopes,
        csrf: &csrf,
        request: query,
        action: "/consent",
    };
    (jar, pages::render(StatusCode::OK, &page)).into_response()
}

/// Ends the session first when the step says so.
async fn ended_if(state: &AppState, jar: CookieJar, end: bool) -> Step<CookieJar> {
    if end {
        session::end(state, jar).await.map_err(unavailable)
    } else {
        Ok(jar)
    }
}

/// Signed in, without the permission to authorize apps: say so, with a way back.
fn not_allowed(
    state: &AppState,
    req: &ValidAuthorize,
    ctx: &ClientContext,
    user: &ActingUser,
) -> Response {
    let back = req
        .error(
            ErrorCode::AccessDenied,
            "the user may not authorize apps (no developer_api permission)",
        )
        .location(&state.config.issuer);
    pages::message(
        StatusCode::FORBIDDEN,
        "You can't authorize apps",
        &format!(
            "Your account ({}) does not have the Developer API permission, which is needed to let {} access your account. Ask an administrator of your organization.",
            user.user.email, ctx.app.name
        ),
        back.map(|href| (href, format!("Return to {}", ctx.app.name))),
    )
}

async fn issue(
    state: &AppState,
    req: &ValidAuthorize,
    ctx: &ClientContext,
    s: &Session,
) -> Step<Response> {
    let now = state.clock.now();
    let code = issue_code(
        state.store.as_ref(),
        req,
        ctx.app.generation,
        s,
        &state.config.policy(),
        now,
    )
    .await
    .map_err(unavailable)?;
    let scope = req.scope.to_string();
    let mut params = vec![("code", code.as_str()), ("scope", scope.as_str())];
    if let Some(st) = &req.state {
        params.push(("state", st));
    }
    params.push(("iss", &state.config.issuer));
    Ok(Redirect::to(&req.redirect_uri.with_params(&params)).into_response())
}

#[allow(clippy::too_many_arguments)]
async fn login_page(
    state: &AppState,
    jar: CookieJar,
    ctx: &ClientContext,
    query: &str,
    status: StatusCode,
    error: Option<&str>,
    email: &str,
) -> Response {
    let sso = crate::upstream::offered(state, &ctx.app.org_id).await;
    let (csrf, jar) = session::csrf_token(state, jar);
    let page = LoginPage {
        app_name: Some(&ctx.app.name),
        error,
        csrf: &csrf,
        request: query,
        email,
        action: "/login",
        organization: None,
        passkey: state.webauthn.is_some().then_some(PASSKEY_SIGNIN),
        sso,
    };
    (
        jar,
        pages::render_with_csp(status, &page, crate::passkey::PAGE_CSP),
    )
        .into_response()
}

/// `POST /login`: email and password; on success, straight on with the request.
async fn login(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    login_step(&state, peer, jar, &headers, &body)
        .await
        .unwrap_or_else(|r| r)
}

async fn login_step(
    state: &AppState,
    peer: IpAddr,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<Response> {
    let form = signin::page_form(state, &jar, headers, body)?;
    let query = form.get("request").unwrap_or("");
    let Checked { req, ctx, carry } = validated(state, query, Entry::Form).await?;
    let query = carry.as_str();
    let email = signin::normalized_email(&form);
    let password_given = form.get("password").unwrap_or("");
    match crate::upstream::decide(
        state,
        &ctx.app.org_id,
        &email,
        form.get("sso").is_some(),
        !password_given.is_empty(),
    )
    .await
    .map_err(unavailable)?
    {
        crate::upstream::Decision::Password => {}
        crate::upstream::Decision::Upstream(p) => {
            let then = Continuation::Authorize(query.to_owned());
            return Ok(crate::upstream::begin(state, peer, jar, &p, &email, then).await);
        }
        crate::upstream::Decision::Refuse(why) => {
            let status = StatusCode::BAD_REQUEST;
            return Ok(login_page(state, jar, &ctx, query, status, Some(why), &email).await);
        }
    }
    // People authorize only their own organization's apps: the account is
    // looked for in the app's organization.
    let within = signin::Within::Org(&ctx.app.org_id);
    match signin::attempt(state, peer, jar, &email, password_given, within)
        .await
        .map_err(unavailable)?
    {
        Attempt::SignedIn { session, jar, .. } => {
            proceed(state, jar, &req, &ctx, Some(&session), query).await
        }
        Attempt::SecondFactor { need, jar, .. } => Ok(second_step_page(state, jar, need, query)),
        Attempt::Refused { why, jar } => {
            let mut r = login_page(
                state,
                jar,
                &ctx,
                query,
                why.status(),
                Some(&why.message()),
                &email,
            )
            .await;
            if let Some(secs) = why.retry_after() {
                r.headers_mut().insert(header::RETRY_AFTER, secs.into());
            }
            Ok(r)
        }
    }
}

/// Continues `request` (a sign-in form's `request`, kept while the person
/// signed in at their organization's identity provider) with `session`.
pub(crate) async fn resume(
    state: &AppState,
    jar: CookieJar,
    request: &str,
    session: &Session,
) -> Response {
    let go_on = async {
        let Checked { req, ctx, carry } = validated(state, request, Entry::Form).await?;
        proceed(state, jar, &req, &ctx, Some(session), &carry).await
    };
    go_on.await.unwrap_or_else(|r| r)
}

/// The second step of `request` (a sign-in form's `request`, kept while the
/// person signed in at their organization's identity provider), for someone
/// whose pending first step is in `jar` and who needs `need`.
pub(crate) async fn resume_second_step(
    state: &AppState,
    jar: CookieJar,
    request: &str,
    need: second_factor::Need,
) -> Response {
    match validated(state, request, Entry::Form).await {
        Ok(Checked { carry, .. }) => second_step_page(state, jar, need, &carry),
        Err(r) => r,
    }
}

/// Where the authorization endpoint's second step posts.
const SECOND_STEP: &str = "/login/second-factor";

/// A session signed in with the password only, where a second factor is needed
/// (the person has one, their organization requires one, or the request's
/// `acr_values`/`acr` asks for `urn:gatehouse:acr:mfa`): `Err` with the code page
/// (or the enrolment page), `Ok` with the jar to go on.
async fn step_up(
    state: &AppState,
    jar: CookieJar,
    req: &ValidAuthorize,
    s: &Session,
    user: &gatehouse_core::model::User,
    query: &str,
) -> Step<Result<CookieJar, Response>> {
    if gatehouse_core::mfa::is_mfa(&s.amr) {
        return Ok(Ok(jar));
    }
    let mut need = second_factor::need(state, user)
        .await
        .map_err(unavailable)?;
    // An essential `acr` of mfa (Core §5.5.1.1) is a requirement like the policy.
    need.required |= req.mfa == MfaRequest::Required;
    if !need.asks() {
        return Ok(Ok(jar));
    }
    if req.prompt.none {
        return Ok(Err(redirect_error(
            state,
            req,
            ErrorCode::InteractionRequired,
            "a second factor is needed",
        )));
    }
    let jar = second_factor::set_pending(state, jar, &user.id);
    Ok(Err(second_step_page(state, jar, need, query)))
}

/// After the password (or for a step-up): the code page, carrying the request;
/// without an authenticator yet, the enrolment page, coming back here after.
fn second_step_page(
    state: &AppState,
    jar: CookieJar,
    need: second_factor::Need,
    query: &str,
) -> Response {
    if need.has_factor() {
        return second_factor::page(
            state,
            jar,
            StatusCode::OK,
            None,
            query,
            "",
            SECOND_STEP,
            need,
        );
    }
    // A pushed request's carry opens only in a form: such a flow starts again at the app.
    let next = if query.contains(sealed_request::PARAM) {
        String::new()
    } else {
        format!("{AUTHORIZE_PATH}?{query}")
    };
    let to = if next.is_empty() {
        crate::account::PATH.to_owned()
    } else {
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &next)
            .finish();
        format!("{}?{q}", crate::account::PATH)
    };
    (jar, Redirect::to(&to)).into_response()
}

/// `POST /login/second-factor`: the code; on success, straight on with the request.
async fn second_step(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    second_step_post(&state, peer, jar, &headers, &body)
        .await
        .unwrap_or_else(|r| r)
}

async fn second_step_post(
    state: &AppState,
    peer: IpAddr,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<Response> {
    let form = signin::page_form(state, &jar, headers, body)?;
    let query = form.get("request").unwrap_or("");
    let Checked { req, ctx, carry } = validated(state, query, Entry::Form).await?;
    let query = carry.as_str();
    let Some(user) = second_factor::pending(state, &jar)
        .await
        .map_err(unavailable)?
    else {
        return Ok(login_page(
            state,
            jar,
            &ctx,
            query,
            StatusCode::OK,
            Some("Please sign in again."),
            "",
        )
        .await);
    };
    let factors = second_factor::need(state, &user)
        .await
        .map_err(unavailable)?;
    if let Some(credential) = form.get("credential") {
        let (outcome, jar) =
            second_factor::complete_with_passkey(state, peer, jar, &user, credential)
                .await
                .map_err(unavailable)?;
        return match outcome {
            Ok(session) => proceed(state, jar, &req, &ctx, Some(&session), query).await,
            Err(why) => Ok(second_factor::passkey_refused_page(
                state,
                jar,
                why,
                query,
                "",
                SECOND_STEP,
                factors,
            )),
        };
    }
    match second_factor::check_code(state, peer, &user, form.get("code").unwrap_or(""))
        .await
        .map_err(unavailable)?
    {
        Ok(()) => {
            let (session, jar) = second_factor::complete(state, jar, &user, peer)
                .await
                .map_err(unavailable)?;
            proceed(state, jar, &req, &ctx, Some(&session), query).await
        }
        Err(why) => Ok(second_factor::refused_page(
            state,
            jar,
            why,
            query,
            "",
            SECOND_STEP,
            factors,
        )),
    }
}

/// Where "Sign in with a passkey" posts (the browser's assertion and the request).
const PASSKEY_SIGNIN: &str = "/login/passkey";

/// `POST /login/passkey`: a passkey alone (user verified: multi-factor, see
/// `gatehouse_core::passkey`); on success, straight on with the request.
async fn passkey_signin(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    passkey_signin_step(&state, peer, jar, &headers, &body)
        .await
        .unwrap_or_else(|r| r)
}

async fn passkey_signin_step(
    state: &AppState,
    peer: IpAddr,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<Response> {
    let form = signin::page_form(state, &jar, headers, body)?;
    let query = form.get("request").unwrap_or("");
    let Checked { req, ctx, carry } = validated(state, query, Entry::Form).await?;
    let query = carry.as_str();
    let credential = form.get("credential").unwrap_or("");
    let (outcome, jar) =
        crate::passkey::sign_in(state, peer, jar, credential, Some(&ctx.app.org_id))
            .await
            .map_err(unavailable)?;
    match outcome {
        Ok(found) => {
            let (session, jar) = second_factor::complete_with(
                state,
                jar,
                &found.user,
                peer,
                gatehouse_core::passkey::amr_passkey(),
                "signed in with a passkey",
            )
            .await
            .map_err(unavailable)?;
            proceed(state, jar, &req, &ctx, Some(&session), query).await
        }
        Err(why) => {
            let mut r = login_page(
                state,
                jar,
                &ctx,
                query,
                why.status(),
                Some(&why.message()),
                "",
            )
            .await;
            if let Some(secs) = why.retry_after() {
                r.headers_mut().insert(header::RETRY_AFTER, secs.into());
            }
            Ok(r)
        }
    }
}

/// `POST /consent`: "Yes, Allow" or "No".
async fn consent(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    consent_step(&state, jar, &headers, &body)
        .await
        .unwrap_or_else(|r| r)
}

async fn consent_step(
    state: &AppState,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<Response> {
    let form = signin::page_form(state, &jar, headers, body)?;
    let query = form.get("request").unwrap_or("");
    let Checked { req, ctx, carry } = validated(state, query, Entry::Form).await?;
    let query = carry.as_str();
    let Some(s) = session::current(state, &jar).await.map_err(unavailable)? else {
        return Ok(login_page(
            state,
            jar,
            &ctx,
            query,
            StatusCode::OK,
            Some("Please sign in again."),
            "",
        )
        .await);
    };
    if form.get("decision") != Some("allow") {
        return Err(redirect_error(
            state,
            &req,
            ErrorCode::AccessDenied,
            "the user denied the request",
        ));
    }
    let user = match state.store.user_by_id(&s.user_id).await {
        Ok(u) => acting_user(state.store.as_ref(), u)
            .await
            .map_err(unavailable)?,
        Err(e) => return Err(unavailable(e)),
    };
    if let Err(e) = may_consent(&ctx.app, &user) {
        return Err(deny(state, &req, e));
    }
    let previous = match state.store.consent(&user.user.id, &ctx.app.client_id).await {
        Ok(c) => ScopeSet::from(c.scopes.as_slice()),
        Err(StoreError::NotFound) => ScopeSet::default(),
        Err(e) => return Err(unavailable(e)),
    };
    let scopes = previous.union(&req.scope);
    state
        .store
        .save_consent(&Consent {
            user_id: user.user.id.clone(),
            client_id: ctx.app.client_id.clone(),
            scopes: scopes.to_vec(),
            updated_at: state.clock.now(),
        })
        .await
        .map_err(unavailable)?;
    issue(state, &req, &ctx, &s).await
}

fn authorize_error(state: &AppState, e: AuthorizeError) -> Response {
    match e.location(&state.config.issuer) {
        Some(to) => Redirect::to(&to).into_response(),
        None => match e {
            AuthorizeError::Unredirectable(msg) => bad_request(&msg),
            AuthorizeError::Redirect { .. } => bad_request("The request cannot be completed."),
        },
    }
}

fn deny(state: &AppState, req: &ValidAuthorize, error: OAuthError) -> Response {
    authorize_error(state, req.error(error.code, error.description))
}

fn redirect_error(
    state: &AppState,
    req: &ValidAuthorize,
    code: ErrorCode,
    description: &'static str,
) -> Response {
    authorize_error(state, req.error(code, description))
}

fn bad_request(msg: &str) -> Response {
    pages::message(
        StatusCode::BAD_REQUEST,
        "This request cannot be completed",
        msg,
        None,
    )
}

fn unavailable(e: StoreError) -> Response {
    pages::store_failure(e)
}
