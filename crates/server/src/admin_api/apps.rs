//! `/api/v1/apps…`: list, register (the secret shown once), show, edit, regenerate
//! the secret, add a second secret and retire one (rotation with a grace
//! period), change the on-behalf user, disable, enable, delete. Each handler
//! parses, calls the admin core with the caller as actor, and maps the outcome;
//! another organization's app is 404 like an unknown one.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::admin::{
    self, AdminError, AppEdit, BackchannelEdit, NewApp, NewUser, NewUserAppError,
};
use gatehouse_core::model::{App, AppStatus, ClientKeys, PERM_USERS_MANAGE};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AdminCaller;
use super::dto::{
    AddSecretRequest, AddedSecret, AppGrant, AppList, AppPatch, AppView, LogoutDeliveryList,
    NewAppRequest, NewSecret, OnBehalfOf, OnBehalfOfChanged, RegisteredApp, SECRET_WARNING,
    SecretList, SecretView, TOKENS_ENDED, scope_string,
};
use super::id::{Id, IdPair};
use super::json::{ApiJson, OptionalJson};
use super::problem::{ApiError, Problem};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_apps, register_app))
        .routes(routes!(show_app, edit_app, delete_app))
        .routes(routes!(regenerate_secret))
        .routes(routes!(list_secrets, add_secret))
        .routes(routes!(retire_secret))
        .routes(routes!(set_on_behalf_of))
        .routes(routes!(disable_app))
        .routes(routes!(enable_app))
        .routes(routes!(logout_deliveries))
}

/// The app as shown: with its on-behalf user's email and its active secrets.
async fn view(state: &AppState, caller: &AdminCaller, app: App) -> Result<AppView, ApiError> {
    let now = state.clock.now();
    let secrets =
        admin::active_secrets(state.store.as_ref(), now, &caller.actor, &app.client_id).await?;
    let bc = admin::backchannel_logout(state.store.as_ref(), &caller.actor, &app.client_id).await?;
    Ok(listed(state, caller, app)
        .await?
        .with_secrets(secrets)
        .with_backchannel(bc))
}

/// The app as a list shows it: with its on-behalf user's email.
async fn listed(state: &AppState, caller: &AdminCaller, app: App) -> Result<AppView, ApiError> {
    let users = match &app.on_behalf_of {
        Some(id) => match admin::user(state.store.as_ref(), &caller.actor, id).await {
            Ok(u) => vec![u],
            Err(AdminError::NotFound(_)) => vec![],
            Err(e) => return Err(e.into()),
        },
        None => vec![],
    };
    Ok(AppView::new(app, &users))
}

/// The organization's apps.
#[utoipa::path(get, path = "/api/v1/apps", tag = "apps", security(("bearer" = [])),
    responses(
        (status = 200, body = AppList),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem),
    ))]
async fn list_apps(
    State(state): State<AppState>,
    caller: AdminCaller,
) -> Result<Json<AppList>, ApiError> {
    let store = state.store.as_ref();
    let org = caller.org(store).await?;
    let apps = admin::apps(store, &caller.actor, &org).await?;
    let users = admin::users(store, &caller.actor, &org).await?;
    Ok(Json(AppList {
        apps: apps.into_iter().map(|a| AppView::new(a, &users)).collect(),
    }))
}

/// Registers an app. The response holds the client secret, shown this once.
/// With `new_user` (needs `users:manage`), that user is created together with the app:
/// both are stored, or neither.
#[utoipa::path(post, path = "/api/v1/apps", tag = "apps", security(("bearer" = [])),
    request_body = NewAppRequest,
    responses(
        (status = 201, body = RegisteredApp, headers(("Location" = String, description = "The app's URL"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem),
    ))]
async fn register_app(
    State(state): State<AppState>,
    caller: AdminCaller,
    ApiJson(body): ApiJson<NewAppRequest>,
) -> Result<Response, ApiError> {
    let store = state.store.as_ref();
    let now = state.clock.now();
    let org = caller.org(store).await?;
    let scopes = scope_string("scopes", &body.scopes)?;
    let default_scopes = body
        .default_scopes
        .as_deref()
        .map(|d| scope_string("default_scopes", d))
        .transpose()?;
    let new_user = match (&body.on_behalf_of, body.new_user) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "new_user",
                "give on_behalf_of or new_user, not both",
            ));
        }
        (None, Some(_)) if body.grant_type != AppGrant::ClientCredentials => {
            return Err(ApiError::invalid(
                "new_user",
                "only client credentials apps act on behalf of a user",
            ));
        }
        (None, Some(nu)) => {
            caller.require(PERM_USERS_MANAGE)?;
            Some(nu)
        }
        (_, None) => None,
    };
    let backchannel = BackchannelEdit {
        uri: body.backchannel_logout_uri.clone(),
        session_required: body.backchannel_logout_session_required,
    };
    if backchannel.uri.is_none() && backchannel.session_required == Some(true) {
        return Err(ApiError::invalid(
            "backchannel_logout_session_required",
            "needs a backchannel_logout_uri",
        ));
    }
    admin::refuse_backchannel_when_off(state.config.backchannel.enabled, None, &backchannel)?;
    if let Some(uri) = &backchannel.uri {
        // Refused before anything is stored (set again below, once the app exists).
        if body.grant_type != AppGrant::AuthorizationCode {
            return Err(ApiError::invalid(
                "backchannel_logout_uri",
                "only authorization code apps sign people in (and out)",
            ));
        }
        state
            .redirect_policy
            .check("backchannel_logout_uri", vec![uri.clone()])
            .await?;
    }
    let keys = admin::requested_keys(
        body.token_endpoint_auth_method.as_deref(),
        body.jwks.map(|j| j.to_string()),
        body.jwks_uri,
    )?;
    if keys.is_some() && new_user.is_some() {
        return Err(ApiError::invalid(
            "new_user",
            "register a private_key_jwt app for an existing user (on_behalf_of)",
        ));
    }
    let new = NewApp {
        org: &org,
        name: &body.name,
        description: body.description.as_deref(),
        grant: body.grant_type.into(),
        on_behalf_of: body.on_behalf_of.as_deref(),
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        scopes: &scopes,
        default_scopes: default_scopes.as_deref(),
        audience: body.default_audience.as_deref(),
        exchange_audiences: body.exchange_audiences,
    };
    let policy = &state.redirect_policy;
    let (app, secret) = match (&new_user, keys) {
        // No secret at all: it proves itself with its key.
        (_, Some(keys)) => (
            admin::register_key_app(store, now, policy, &caller.actor, new, keys).await?,
            None,
        ),
        // The user and the app are one change: both are stored, or neither.
        (Some(nu), None) => {
            let user = NewUser {
                org: &org,
                email: &nu.email,
                name: nu.name.as_deref(),
                role: &nu.role,
                groups: vec![],
                password: None,
                profile: Default::default(),
            };
            admin::register_app_for_new_user(store, now, policy, &caller.actor, user, new)
                .await
                .map(|(app, secret, _)| (app, Some(secret)))
                .map_err(|e| match e {
                    NewUserAppError::User(e) => within("new_user", e),
                    NewUserAppError::App(e) => e.into(),
                })?
        }
        (None, None) => {
            let (app, secret) = admin::register_app(store, now, policy, &caller.actor, new).await?;
            (app, Some(secret))
        }
    };
    admin::set_backchannel_logout(
        store,
        now,
        policy,
        &caller.actor,
        &app.client_id,
        backchannel,
    )
    .await?;
    let location = format!("/api/v1/apps/{}", app.client_id);
    let body = RegisteredApp {
        app: view(&state, &caller, app).await?,
        warning: secret.is_some().then_some(SECRET_WARNING),
        client_secret: secret.map(|s| s.expose().to_owned()),
    };
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// Names a nested object's field in a validation error (`new_user.email`).
fn within(prefix: &str, e: AdminError) -> ApiError {
    match e {
        AdminError::Invalid { field, message } => {
            ApiError::invalid(format!("{prefix}.{field}"), message)
        }
        other => other.into(),
    }
}

/// One app (never its secret).
#[utoipa::path(get, path = "/api/v1/apps/{client_id}", tag = "apps", security(("bearer" = [])),
    params(("client_id" = String, Path, description = "The app's client id")),
    responses(
        (status = 200, body = AppView),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 503, body = Problem),
    ))]
async fn show_app(
    State(state): State<AppState>,
    caller: AdminCaller,
    Id(client_id): Id,
) -> Result<Json<AppView>, ApiError> {
    let app = admin::app(state.store.as_ref(), &caller.actor, &client_id).await?;
    Ok(Json(view(&state, &caller, app).await?))
}

/// Changes name, description, URIs, scopes, default scopes or default audience.
#[utoipa::path(patch, path = "/api/v1/apps/{client_id}", tag = "apps", security(("bearer" = [])),
    params(("client_id" = String, Path, description = "The app's client id")),
    request_body = AppPatch,
    responses(
        (status = 200, body = AppView),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem),
    ))]
async fn edit_app(
    State(state): State<AppState>,
    caller: AdminCaller,
    Id(client_id): Id,
    ApiJson(patch): ApiJson<AppPatch>,
) -> Result<Json<AppView>, ApiError> {
    let scopes = patch
        .scopes
        .as_deref()
        .map(|s| scope_string("scopes", s))
        .transpose()?;
    let default_scopes = patch
        .default_scopes
        .as_deref()
        .map(|s| scope_string("default_scopes", s))
        .transpose()?;
    let backchannel = patch.backchannel();
    if let Some(uri) = backchannel.uri.as_deref().filter(|u| !u.is_empty()) {
        // Checked before anything is saved.
        state
            .redirect_policy
            .check(admin::BACKCHANNEL_FIELD, vec![uri.to_owned()])
            .await?;
    }
    let edit = AppEdit {
        name: patch.name.as_deref(),
        description: patch.description.as_ref().map(Option::as_deref),
        redirect_uris: patch.redirect_uris,
        post_logout_redirect_uris: patch.post_logout_redirect_uris,
        scopes: scopes.as_deref(),
        default_scopes: default_scopes.as_deref(),
        default_audience: patch.default_audience.as_ref().map(Option::as_deref),
        require_pkce: patch.require_pkce,
        require_par: patch.require_par,
        require_dpop: patch.require_dpop,
        exchange_audiences: patch.exchange_audiences,
    };
    let keys = match (patch.jwks, patch.jwks_uri) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid("jwks", "give jwks or jwks_uri, not both"));
        }
        (Some(j), None) => Some(ClientKeys::Jwks(j.to_string())),
        (None, Some(u)) => Some(ClientKeys::JwksUri(u)),
        (None, None) => None,
    };
    let now = state.clock.now();
    let policy = &state.redirect_policy;
    let store = state.store.as_ref();
    if !state.config.backchannel.enabled && backchannel.uri.is_some() {
        let current = admin::backchannel_logout(store, &caller.actor, &client_id).await?;
        admin::refuse_backchannel_when_off(false, current.as_ref(), &backchannel)?;
    }
    let mut app = admin::update_app(store, now, policy, &caller.actor, &client_id, edit).await?;
    if let Some(keys) = keys {
        app = admin::set_client_keys(store, now, policy, &caller.actor, &client_id, keys).await?;
    }
    admin::set_backchannel_logout(store, now, policy, &caller.actor, &client_id, backchannel)
        .await?;
    Ok(Json(view(&state, &caller, app).await?))
}

/// Deletes the app; everything it holds (tokens, grants) ends.
#[utoipa::path(delete, path = "/api/v1/apps/{client_id}", tag = "apps", security(("bearer" = [])),
    params(("client_id" = String, Path, description = "The app's client id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 503, body = Problem),
    ))]
async fn delete_app(
    State(state): State<AppState>,
    caller: AdminCaller,
    Id(client_id): Id,
) -> Result<StatusCode, ApiError> {
    let now = state.clock.now();
    admin::delete_app(state.store.as_ref(), now, &caller.actor, &client_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Regenerates the secret, shown this once; tokens issued so far end now.
#[utoipa::path(post, path = "/api/v1/apps/{client_id}/secret", tag = "apps", security(("bearer" = [])),
    params(("client_id" = String, Path, description = "The app's client id")),
    responses(
        (status = 200, body = NewSecret),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 503, body = Problem),
    ))]
async fn regenerate_secret(
    State(state): State<AppState>,
    caller: AdminCaller,
    Id(client_id): Id,
) -> Result<Json<NewSecret>, ApiError> {
    let now = state.clock.now();
    let secret = admin::rotate_secret(state.store.as_ref(), now, &caller.actor, &client_id).await?;
    Ok(Json(NewSecret {
        client_id,
        client_secret: secret.expose().to_owned(),
        warning: SECRET_WARNING,
        tokens_ended: TOKENS_ENDED,
    }))
}

/// The app's active secrets: ids, creation, expiry and last use (never a value).
#[utoipa::path(get, path = "/api/v1/apps/{client_id}/secrets", tag = "apps", security(("bearer" = [])),
    params(("client_id" = String, Path, description = "The app's client id")),
    responses(
        (status = 200, body = SecretList),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 503, body = Problem),
    ))]
async fn list_secrets(
    State(state): State<AppState>,
    caller: AdminCaller,
    Id(client_id): Id,
) -> Result<Json<SecretList>, ApiError> {
    let now = state.clock.now();
    let secrets =
        admin::active_secrets(state.store.as_ref(), now, &caller.actor, &client_id).await?;
    Ok(Json(SecretList {
        client_id,
        secrets: secrets.into_iter().map(SecretView::from).collect(),
    }))
}

/// Adds a second secret, shown this once; both authenticate until one is
/// retired. `expires_in` (seconds) gives the current secret a grace period
/// instead. Tokens issued so far stay valid. At most two secrets are active.
#[utoipa::path(post, path = "/api/v1/apps/{client_id}/secrets", tag = "apps", security(("bearer" = [])),
    params(("client_id" = String, Path, description = "The app's client id")),
    request_body(content = AddSecretRequest, description = "Optional: without a body (or with `{}`) the current secret works until retired"),
    responses(
        (status = 201, body = AddedSecret),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "The app already has two active secrets"),
        (status = 422, body = Problem), (status = 503, body = Problem),
    ))]
async fn add_secret(
    State(state): State<AppState>,
    caller: AdminCaller,
    Id(client_id): Id,
    OptionalJson(body): OptionalJson<AddSecretRequest>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let store = state.store.as_ref();
    let (added, value) =
        admin::add_secret(store, now, &caller.actor, &client_id, body.expires_in).await?;
    let secrets = admin::active_secrets(store, now, &caller.actor, &client_id).await?;
    let body = AddedSecret {
        client_id,
        secret_id: added.id,
        client_secret: value.expose().to_owned(),
        warning: SECRET_WARNING,
        secrets: secrets.into_iter().map(SecretView::from).collect(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Retires one of the app's secrets: it stops working and the tokens issued
/// with it end now; the other secret's tokens stay. The last active secret
/// cannot be retired (regenerate it instead).
#[utoipa::path(delete, path = "/api/v1/apps/{client_id}/secrets/{secret_id}", tag = "apps", security(("bearer" = [])),
    params(
        ("client_id" = String, Path, description = "The app's client id"),
        ("secret_id" = String, Path, description = "The secret's id (from the app's `secrets`)"),
    ),
    responses(
        (status = 204, description = "Retired"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "It is the app's last active secret"),
        (status = 503, body = Problem),
    ))]
async fn retire_secret(
    State(state): State<AppState>,
    caller: AdminCaller,
    IdPair(client_id, secret_id): IdPair,
) -> Result<StatusCode, ApiError> {
    let now = state.clock.now();
    admin::retire_secret(
        state.store.as_ref(),
        now,
        &caller.actor,
        &client_id,
        &secret_id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the user a client credentials app acts on behalf of; tokens issued so
/// far end now.
#[utoipa::path(put, path = "/api/v1/apps/{client_id}/on-behalf-of", tag = "apps", security(("bearer" = [])),
    params(("client_id" = String, Path, description = "The app's client id")),
    request_body = OnBehalfOf,
    responses(
        (status = 200, body = OnBehalfOfChanged),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem),
    ))]
async fn set_on_behalf_of(
    State(state): State<AppState>,
    caller: AdminCaller,
    Id(client_id): Id,
    ApiJson(body): ApiJson<OnBehalfOf>,
) -> Result<Json<OnBehalfOfChanged>, ApiError> {
    let now = state.clock.now();
    let store = state.store.as_ref();
    let app = admin::set_on_behalf_of(store, now, &caller.actor, &client_id, &body.email)
        .await
        .map_err(|e| match e {
            AdminError::Invalid { message, .. } => ApiError::invalid("email", message),
            other => other.into(),
        })?;
    Ok(Json(OnBehalfOfChanged {
        app: view(&state, &caller, app).await?,
        tokens_ended: TOKENS_ENDED,
    }))
}

/// Disables the app: the token endpoint refuses it and its tokens stop working.
#[utoipa::path(post, path = "/api/v1/apps/{client_id}/disable", tag = "apps", security(("bearer" = [])),
    params(("client_id" = String, Path, description = "The app's client id")),
    responses(
        (status = 200, body = AppView),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 503, body = Problem),
    ))]
async fn disable_app(
    State(state): State<AppState>,
    caller: AdminCaller,
    Id(client_id): Id,
) -> Result<Json<AppView>, ApiError> {
    set_status(&state, &caller, &client_id, AppStatus::Disabled).await
}

/// Enables a disabled app again.
#[utoipa::path(post, path = "/api/v1/apps/{client_id}/enable", tag = "apps", security(("bearer" = [])),
    params(("client_id" = String, Path, description = "The app's client id")),
    responses(
        (status = 200, body = AppView),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 503, body = Problem),
    ))]
async fn enable_app(
    State(state): State<AppState>,
    caller: AdminCaller,
    Id(client_id): Id,
) -> Result<Json<AppView>, ApiError> {
    set_status(&state, &caller, &client_id, AppStatus::Active).await
}

async fn set_status(
    state: &AppState,
    caller: &AdminCaller,
    client_id: &str,
    status: AppStatus,
) -> Result<Json<AppView>, ApiError> {
    let now = state.clock.now();
    let app =
        admin::set_app_status(state.store.as_ref(), now, &caller.actor, client_id, status).await?;
    Ok(Json(view(state, caller, app).await?))
}

/// The app's most recent back-channel logout deliveries (at most 50, newest
/// first): pending ones with their next attempt, delivered, and given up.
#[utoipa::path(get, path = "/api/v1/apps/{client_id}/backchannel-logout-deliveries", tag = "apps",
    security(("bearer" = [])),
    params(("client_id" = String, Path, description = "The app's client id")),
    responses(
        (status = 200, body = LogoutDeliveryList),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 503, body = Problem),
    ))]
async fn logout_deliveries(
    State(state): State<AppState>,
    caller: AdminCaller,
    Id(client_id): Id,
) -> Result<Json<LogoutDeliveryList>, ApiError> {
    let list =
        admin::logout_deliveries(state.store.as_ref(), &caller.actor, &client_id, 50).await?;
    Ok(Json(LogoutDeliveryList {
        deliveries: list.into_iter().map(Into::into).collect(),
    }))
}
