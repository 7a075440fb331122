//! `GET`/`PUT`/`DELETE /api/v1/org/identity-provider`: the organization's own
//! OpenID Connect provider that its people (by e-mail domain) sign in through.
//! The client secret is write-only: sealed at rest, never returned.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AdminCaller;
use super::json::ApiJson;
use super::problem::{ApiError, Problem};
use crate::state::AppState;
use gatehouse_core::admin;
use gatehouse_core::model::PERM_USERS_MANAGE;
use gatehouse_core::upstream::UpstreamProvider;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, set, remove))
}

/// The organization's identity provider (never its client secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IdentityProviderView {
    /// The provider's issuer URL (its ID tokens' `iss`).
    pub issuer: String,
    /// Gatehouse's client id at the provider.
    pub client_id: String,
    /// E-mail domains whose people sign in there.
    pub domains: Vec<String>,
    /// Whether people of those domains may still sign in with a local password.
    pub allow_passwords: bool,
    /// The role of people created on their first sign-in.
    pub default_role: String,
    /// Whether a sign-in the provider says was multi-factor (its ID token's
    /// `amr` holds `mfa`, or `otp`/`hwk` beside another method) counts as
    /// multi-factor here, meeting a role's or the organization's requirement.
    pub trust_upstream_mfa: bool,
    /// The redirect URI to register at the provider.
    pub redirect_uri: String,
    /// Unix time of the last change.
    pub updated_at: i64,
}

impl IdentityProviderView {
    pub fn new(p: UpstreamProvider, issuer: &str) -> Self {
        Self {
            issuer: p.issuer,
            client_id: p.client_id,
            domains: p.domains,
            allow_passwords: p.allow_passwords,
            default_role: p.default_role,
            trust_upstream_mfa: p.trust_upstream_mfa,
            redirect_uri: format!("{issuer}{}", crate::upstream::CALLBACK_PATH),
            updated_at: p.updated_at,
        }
    }
}

/// Sets (creates or replaces) the organization's identity provider.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityProviderSet {
    /// The provider's issuer URL: `https://` (its discovery document is read
    /// from `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    /// Gatehouse's client id at the provider.
    pub client_id: String,
    /// Gatehouse's client secret at the provider; may be left out when
    /// changing a provider that has one (the stored one is kept).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// E-mail domains whose people sign in there (1 to 20).
    pub domains: Vec<String>,
    /// Let people of those domains still sign in with a local password (default false).
    #[serde(default)]
    pub allow_passwords: bool,
    /// The role of people created on their first sign-in (default `member`).
    #[serde(default = "member")]
    pub default_role: String,
    /// Count a sign-in the provider says was multi-factor (its ID token's
    /// `amr` holds `mfa`, or `otp`/`hwk` beside another method) as
    /// multi-factor here (default false: a local second factor is asked for
    /// where one is required).
    #[serde(default)]
    pub trust_upstream_mfa: bool,
}

fn member() -> String {
    "member".into()
}

/// The organization's identity provider.
#[utoipa::path(get, path = "/api/v1/org/identity-provider", tag = "organization", security(("bearer" = [])),
    responses(
        (status = 200, body = IdentityProviderView),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 503, body = Problem),
    ))]
async fn show(
    State(state): State<AppState>,
    caller: AdminCaller,
) -> Result<Json<IdentityProviderView>, ApiError> {
    let store = state.store.as_ref();
    let org = caller.org(store).await?;
    match admin::upstream(store, &caller.actor, &org).await? {
        Some(p) => Ok(Json(IdentityProviderView::new(p, &state.config.issuer))),
        None => Err(ApiError::NotFound("identity provider not found".into())),
    }
}

/// Sets the organization's identity provider (needs `users:manage`): people
/// whose e-mail is in its domains are sent there from the sign-in page.
#[utoipa::path(put, path = "/api/v1/org/identity-provider", tag = "organization", security(("bearer" = [])),
    request_body = IdentityProviderSet,
    responses(
        (status = 200, body = IdentityProviderView),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem),
        (status = 503, body = Problem),
    ))]
async fn set(
    State(state): State<AppState>,
    caller: AdminCaller,
    ApiJson(body): ApiJson<IdentityProviderSet>,
) -> Result<Json<IdentityProviderView>, ApiError> {
    caller.require(PERM_USERS_MANAGE)?;
    let store = state.store.as_ref();
    let org = caller.org(store).await?;
    let edit = admin::UpstreamEdit {
        issuer: body.issuer,
        client_id: body.client_id,
        client_secret: body.client_secret,
        domains: body.domains,
        allow_passwords: body.allow_passwords,
        default_role: body.default_role,
        trust_upstream_mfa: body.trust_upstream_mfa,
    };
    let now = state.clock.now();
    let p = admin::set_upstream(
        store,
        state.kek(),
        now,
        &caller.actor,
        &org,
        edit,
        state.config.dev,
    )
    .await?;
    Ok(Json(IdentityProviderView::new(p, &state.config.issuer)))
}

/// Removes the organization's identity provider: its people sign in with
/// passwords again.
#[utoipa::path(delete, path = "/api/v1/org/identity-provider", tag = "organization", security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 503, body = Problem),
    ))]
async fn remove(
    State(state): State<AppState>,
    caller: AdminCaller,
) -> Result<StatusCode, ApiError> {
    caller.require(PERM_USERS_MANAGE)?;
    let store = state.store.as_ref();
    let org = caller.org(store).await?;
    admin::remove_upstream(store, state.clock.now(), &caller.actor, &org).await?;
    Ok(StatusCode::NO_CONTENT)
}
