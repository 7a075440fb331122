//! The authorization request (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1).
//!
//! The type decides whether an error may be redirected: until the client and its
//! redirect URI are verified, errors are [`AuthorizeError::Unredirectable`] and the
//! user sees a page; after that they are [`AuthorizeError::Redirect`], whose
//! destination is a [`VerifiedRedirectUri`] that only this module can make.
//! What happens once the request is valid is [`next_step`].

pub mod next_step;

use crate::claims::{ClaimsRequest, MAX_ACR_VALUES};
use crate::context::ClientContext;
use crate::error::{ErrorCode, OAuthError};
use crate::form::Form;
use crate::grant::scopes::resolve;
use crate::model::{AppStatus, GrantType};
use crate::pkce;
use crate::scope::ScopeSet;
use crate::token::TokenTarget;

use crate::limits::{MAX_CLIENT_ID, MAX_LOGIN_HINT, MAX_NONCE, MAX_STATE};

/// A redirect URI that exactly matches one registered for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRedirectUri(String);

impl VerifiedRedirectUri {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URI with `params` added to its query (RFC 6749 §4.1.2: keep any query it has).
    pub fn with_params(&self, params: &[(&str, &str)]) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut u) => {
                {
                    let mut q = u.query_pairs_mut();
                    for (k, v) in params {
                        q.append_pair(k, v);
                    }
                }
                u.to_string()
            }
            // Registered URIs were parsed at registration; keep the raw one if not.
            Err(_) => self.0.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// Shown to the user; never redirected (unknown client, unregistered URI).
    Unredirectable(String),
    Redirect {
        to: VerifiedRedirectUri,
        state: Option<String>,
        error: OAuthError,
    },
}

impl AuthorizeError {
    /// Where the user agent goes for a redirectable error, with `iss` (RFC 9207).
    pub fn location(&self, issuer: &str) -> Option<String> {
        match self {
            AuthorizeError::Unredirectable(_) => None,
            AuthorizeError::Redirect { to, state, error } => {
                let mut p = vec![
                    ("error", error.code.as_str()),
                    ("error_description", error.description.as_ref()),
                ];
                if let Some(s) = state {
                    p.push(("state", s));
                }
                p.push(("iss", issuer));
                Some(to.with_params(&p))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A request that passed every check: what login and consent are about.
#[derive(Debug, Clone)]
pub struct ValidAuthorize {
    pub client_id: String,
    pub redirect_uri: VerifiedRedirectUri,
    /// Whether `redirect_uri` was in the request (then the token request must repeat it).
    pub redirect_uri_given: bool,
    /// Every granted scope: API scopes then OIDC scopes.
    pub scope: ScopeSet,
    pub target: Option<TokenTarget>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The `claims` parameter (OpenID Connect Core §5.5), kept with the grant.
    pub claims: ClaimsRequest,
    /// Whether the request asks for a second factor (`acr_values` or `claims`).
    pub mfa: MfaRequest,
}

/// A second factor asked for by the request ([`crate::claims::ACR_MFA`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MfaRequest {
    /// Not asked for.
    #[default]
    No,
    /// `acr_values` names it (voluntary, Core §3.1.2.1): a person with a second
    /// factor is asked for it, one without signs in with the password alone.
    Preferred,
    /// An essential `acr` claim accepts only it (Core §5.5.1.1): a person without
    /// a second factor must enrol one first.
    Required,
}

impl ValidAuthorize {
    pub fn error(
        &self,
        code: ErrorCode,
        description: impl Into<std::borrow::Cow<'static, str>>,
    ) -> AuthorizeError {
        AuthorizeError::Redirect {
            to: self.redirect_uri.clone(),
            state: self.state.clone(),
            error: OAuthError::new(code, description),
        }
    }

    pub fn wants(&self, scope: &str) -> bool {
        self.scope.contains(scope)
    }
}

/// The client id of a request, before anything else is known.
pub fn client_id(form: &Form) -> Result<&str, AuthorizeError> {
    let id = form.get("client_id").ok_or_else(|| {
        AuthorizeError::Unredirectable("The request names no app (`client_id` is missing).".into())
    })?;
    if id.len() > MAX_CLIENT_ID {
        return Err(AuthorizeError::Unredirectable(format!(
            "`client_id` is longer than {MAX_CLIENT_ID} bytes."
        )));
    }
    Ok(id)
}

/// How the request's parameters reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// On the authorization endpoint's URL or form, through the browser.
    FrontChannel,
    /// Pushed by the authenticated client first (RFC 9126).
    Pushed,
}

/// Checks a request that came through the browser against the client (`ctx` is
/// `None` for an unknown client).
pub fn validate(
    form: &Form,
    ctx: Option<&ClientContext>,
) -> Result<ValidAuthorize, AuthorizeError> {
    validate_from(form, ctx, Source::FrontChannel)
}

/// Checks the request against the client, knowing how it arrived: the same
/// rules for both, except that an app requiring pushed requests refuses the
/// front channel's.
pub fn validate_from(
    form: &Form,
    ctx: Option<&ClientContext>,
    source: Source,
) -> Result<ValidAuthorize, AuthorizeError> {
    let ctx = ctx.ok_or_else(|| {
        AuthorizeError::Unredirectable("This app is not registered (unknown `client_id`).".into())
    })?;
    let app = &ctx.app;
    if app.status != AppStatus::Active {
        return Err(AuthorizeError::Unredirectable(
            "This app is disabled.".into(),
        ));
    }
    let given = form.get("redirect_uri");
    let redirect_uri = match given {
        Some(uri) if app.redirect_uris.iter().any(|r| r == uri) => {
            VerifiedRedirectUri(uri.to_owned())
        }
        Some(_) => {
            return Err(AuthorizeError::Unredirectable(
                "The redirect URI is not registered for this app; it must match a registered one exactly.".into(),
            ));
        }
        None if app.redirect_uris.len() == 1 => VerifiedRedirectUri(app.redirect_uris[0].clone()),
        None => {
            return Err(AuthorizeError::Unredirectable(
                "The request has no `redirect_uri`, and this app registered more than one.".into(),
            ));
        }
    };
    let state = form.get("state").map(str::to_owned);
    let fail = |code: ErrorCode, d: String| AuthorizeError::Redirect {
        to: redirect_uri.clone(),
        state: state.clone(),
        error: OAuthError::new(code, d),
    };
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return Err(AuthorizeError::Unredirectable(format!(
            "`state` is longer than {MAX_STATE} bytes."
        )));
    }
    // RFC 9126 §5: an app that requires PAR takes no request by the front
    // channel (refused only once the redirect URI is known to be its own).
    if app.require_par && source == Source::FrontChannel {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "this app must push its authorization requests first (RFC 9126): POST them to /connect/par, then send `client_id` and `request_uri` here".into(),
        ));
    }
    if !app.allows(GrantType::AuthorizationCode) {
        return Err(fail(
            ErrorCode::UnauthorizedClient,
            "this app is not allowed the authorization code grant".into(),
        ));
    }
    match form.get("response_type") {
        None => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "missing parameter `response_type`".into(),
            ));
        }
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported".into(),
            ));
        }
    }
    // OpenID Connect Core §3.1.2.6: each has its own error code.
    if form.get("request").is_some() {
        return Err(fail(
            ErrorCode::RequestNotSupported,
            "request objects (`request`) are not supported".into(),
        ));
    }
    if form.get("request_uri").is_some() {
        return Err(fail(
            ErrorCode::RequestUriNotSupported,
            "request objects by reference (`request_uri`) are not supported".into(),
        ));
    }
    let requested = match form.get("scope") {
        Some(s) => ScopeSet::parse(s).map_err(|e| fail(e.code, e.description.into_owned()))?,
        None => ScopeSet::from(app.default_scopes.as_slice()),
    };
    let target = match (form.get("audience"), form.get_all("resource")) {
        (Some(a), _) => Some(a),
        (None, [r]) => Some(r.as_str()),
        (None, []) => None,
        (None, _) => {
            return Err(fail(
                ErrorCode::InvalidTarget,
                "only one `resource` is supported".into(),
            ));
        }
    };
    let resolved =
        resolve(ctx, &requested, target).map_err(|e| fail(e.code, e.description.into_owned()))?;
    // offline_access only means something to an app that may refresh.
    let may_refresh = app.allows(GrantType::RefreshToken);
    let oidc = resolved
        .oidc_scopes
        .filter(|s| may_refresh || s != "offline_access");
    let scope = resolved.api_scopes.clone().union(&oidc);
    if scope.is_empty() {
        return Err(fail(
            ErrorCode::InvalidScope,
            "no scope was requested and this app has no default scopes".into(),
        ));
    }

    let code_challenge = match (
        form.get("code_challenge"),
        form.get("code_challenge_method"),
    ) {
        // RFC 9700 §2.1.1: an app may be required to use PKCE.
        (None, _) if app.require_pkce => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "PKCE is required: send `code_challenge` (S256)".into(),
            ));
        }
        (None, None) => None,
        (None, Some(_)) => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "`code_challenge_method` without `code_challenge`".into(),
            ));
        }
        (Some(c), Some("S256")) if pkce::well_formed(c) => Some(c.to_owned()),
        (Some(_), Some("S256")) => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "`code_challenge` must be 43-128 characters of base64url".into(),
            ));
        }
        (Some(_), _) => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "only code_challenge_method=S256 is supported".into(),
            ));
        }
    };
    let mut prompt = Prompt::default();
    if let Some(p) = form.get("prompt") {
        for v in p.split(' ').filter(|v| !v.is_empty()) {
            match v {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                other => {
                    return Err(fail(
                        ErrorCode::InvalidRequest,
                        format!(
                            "unsupported prompt value `{}`",
                            other.chars().take(20).collect::<String>()
                        ),
                    ));
                }
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "prompt=none cannot be combined with other values".into(),
            ));
        }
    }
    let max_age = match form.get("max_age") {
        None => None,
        Some(m) => Some(m.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
            fail(
                ErrorCode::InvalidRequest,
                "`max_age` must be a non-negative integer".into(),
            )
        })?),
    };
    let nonce = form.get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            format!("`nonce` is longer than {MAX_NONCE} bytes"),
        ));
    }
    let login_hint = form.get("login_hint");
    if login_hint.is_some_and(|h| h.len() > MAX_LOGIN_HINT) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            format!("`login_hint` is longer than {MAX_LOGIN_HINT} bytes"),
        ));
    }
    let claims = match form.get("claims") {
        None => ClaimsRequest::default(),
        Some(raw) => ClaimsRequest::parse(raw).map_err(|d| fail(ErrorCode::InvalidRequest, d))?,
    };
    // §5.5.1.1: an essential `acr` that cannot be met is a failed authentication.
    if let Some(why) = claims.unmet_acr() {
        return Err(fail(ErrorCode::AccessDenied, why.into()));
    }
    // `acr_values` is voluntary (§3.1.2.1): the sign-in's `acr` is sent whatever it asks.
    if form
        .get("acr_values")
        .is_some_and(|a| a.len() > MAX_ACR_VALUES)
    {
        return Err(fail(
            ErrorCode::InvalidRequest,
            format!("`acr_values` is longer than {MAX_ACR_VALUES} bytes"),
        ));
    }
    let mfa = if claims.essential_mfa() {
        MfaRequest::Required
    } else if form
        .get("acr_values")
        .is_some_and(|a| a.split(' ').any(|v| v == crate::claims::ACR_MFA))
    {
        MfaRequest::Preferred
    } else {
        MfaRequest::No
    };
    Ok(ValidAuthorize {
        mfa,
        client_id: app.client_id.clone(),
        redirect_uri,
        redirect_uri_given: given.is_some(),
        scope,
        target: resolved.api.map(TokenTarget::from_api),
        state,
        nonce,
        code_challenge,
        prompt,
        max_age,
        login_hint: login_hint.map(str::to_owned),
        claims,
    })
}
