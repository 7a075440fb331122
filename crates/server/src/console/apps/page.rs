//! An app's page (`GET /console/apps/{client_id}`): its details, the edit form
//! and the on-behalf user; re-rendered with errors by the forms posted from it.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin;
use gatehouse_core::model::{
    App, AppStatus, ClientKeys, GrantType, MAX_ACTIVE_SECRETS, PERM_APPS_MANAGE, UserStatus,
};

use super::getting_started::{Snippet, snippets};
use super::secrets::{GRACE_CHOICES, SecretRow};
use super::{
    Choice, Done, choices, email_of, grant_label, last_used, notice, org_users, owned_app,
};
use crate::client_addr::ClientAddr;
use crate::console::auth::{self, Admin};
use crate::console::forms::{self, Errors};
use crate::console::usage::{Usage, org_usage, today};
use crate::console::view::{Nav, when};
use crate::console::{Step, render};
use crate::state::AppState;

struct AppView {
    name: String,
    client_id: String,
    grant: &'static str,
    client_credentials: bool,
    /// Authorization code apps have redirect URIs and PAR.
    code_app: bool,
    /// Token exchange apps (RFC 8693) have exchange audiences.
    exchange_app: bool,
    exchange_audiences: Vec<String>,
    status: &'static str,
    disabled: bool,
    description: String,
    on_behalf: String,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    scopes: String,
    audience: String,
    /// Whether authorization requests must be pushed first (RFC 9126).
    require_par: bool,
    /// Whether token requests must carry a DPoP proof (RFC 9449).
    require_dpop: bool,
    created: String,
    last_used: String,
    /// The active secret keys (ids, never values), oldest first.
    secrets: Vec<SecretRow>,
    /// Room for a second secret key.
    may_add_secret: bool,
    /// A `private_key_jwt` app's keys: what they are, and the JWKS or its URL.
    client_keys: Option<(&'static str, String)>,
}

/// What the edit form holds: the app's values, or what the admin typed.
pub(super) struct EditForm {
    pub(super) name: String,
    pub(super) description: String,
    pub(super) redirect_uris: String,
    pub(super) post_logout_redirect_uris: String,
    /// The "Require pushed authorization requests" box.
    pub(super) require_par: bool,
    /// The "Require DPoP" box.
    pub(super) require_dpop: bool,
    /// The APIs a token exchange app may exchange tokens for, one per line.
    pub(super) exchange_audiences: String,
    /// Where logout tokens are POSTed (empty: none).
    pub(super) backchannel_logout_uri: String,
}

impl EditForm {
    fn of(app: &App, backchannel_logout_uri: String) -> EditForm {
        EditForm {
            name: app.name.clone(),
            description: app.description.clone().unwrap_or_default(),
            redirect_uris: app.redirect_uris.join("\n"),
            post_logout_redirect_uris: app.post_logout_redirect_uris.join("\n"),
            require_par: app.require_par,
            require_dpop: app.require_dpop,
            exchange_audiences: app.exchange_audiences.join("\n"),
            backchannel_logout_uri,
        }
    }

    pub(super) fn read(form: &gatehouse_core::form::Form) -> EditForm {
        let raw = |name| form.get(name).unwrap_or("").to_owned();
        EditForm {
            name: forms::text(form, "name"),
            description: forms::text(form, "description"),
            redirect_uris: raw("redirect_uris"),
            post_logout_redirect_uris: raw("post_logout_redirect_uris"),
            require_par: form.get("require_par") == Some("yes"),
            require_dpop: form.get("require_dpop") == Some("yes"),
            exchange_audiences: raw("exchange_audiences"),
            backchannel_logout_uri: forms::text(form, "backchannel_logout_uri"),
        }
    }
}

/// Fields the edit form shows errors beside.
pub(super) const EDIT_FIELDS: &[&str] = &[
    "name",
    "description",
    "redirect_uris",
    "post_logout_redirect_uris",
    "require_par",
    "require_dpop",
    "exchange_audiences",
    "backchannel_logout_uri",
];

#[derive(Template)]
#[template(path = "console/app.html")]
struct AppPage {
    nav: Nav,
    notice: Option<&'static str>,
    errors: Errors,
    app: AppView,
    edit: EditForm,
    users: Vec<Choice>,
    /// HTML: the last 30 days' chart and figures ([`Usage::chart`]).
    usage: String,
    snippets: Vec<Snippet>,
    /// The grace periods "Add a second secret" offers the current one.
    grace_choices: &'static [(&'static str, &'static str)],
}

/// The app's last 30 days, as a chart with its figures.
async fn usage_chart(state: &AppState, app: &App) -> Step<String> {
    let today = today(state);
    let by_app = org_usage(state, &app.org_id, today).await?;
    let rows = by_app.get(&app.client_id).map_or(&[][..], Vec::as_slice);
    Ok(Usage::of(rows, today).chart("usage", &app.name, false))
}

/// The audience the "Getting started" commands ask for: the app's default, or
/// the API whose scopes the app has.
async fn audience(state: &AppState, app: &App) -> Step<Option<String>> {
    if let Some(a) = &app.default_audience {
        return Ok(Some(a.clone()));
    }
    let apis = state
        .store
        .apis_for_org(&app.org_id)
        .await
        .map_err(crate::pages::store_failure)?;
    Ok(apis
        .into_iter()
        .find(|api| api.scopes.iter().any(|s| app.scopes.contains(s)))
        .map(|api| api.audience))
}

/// An app's page; `edit` keeps what the admin typed in the edit form.
pub(super) async fn app_page(
    state: &AppState,
    admin: Admin,
    app: &App,
    notice: Option<&'static str>,
    (errors, edit): (Errors, Option<EditForm>),
    status: StatusCode,
) -> Step<Response> {
    let users = org_users(state, &admin).await?;
    let on_behalf = email_of(&users, app.on_behalf_of.as_deref());
    let emails: Vec<String> = users
        .iter()
        .filter(|u| u.status == UserStatus::Active)
        .map(|u| u.email.clone())
        .collect();
    let secrets = admin::active_secrets(
        state.store.as_ref(),
        state.clock.now(),
        &admin.actor(),
        &app.client_id,
    )
    .await
    .map_err(crate::console::admin_failure)?;
    let view = AppView {
        client_keys: app.client_keys.as_deref().map(|k| match k {
            ClientKeys::Jwks(j) => ("Its JWKS, registered inline:", j.clone()),
            ClientKeys::JwksUri(u) => ("Fetched from its JWKS URL:", u.clone()),
        }),
        may_add_secret: secrets.len() < MAX_ACTIVE_SECRETS,
        secrets: secrets.iter().map(SecretRow::of).collect(),
        name: app.name.clone(),
        client_id: app.client_id.clone(),
        grant: grant_label(app),
        client_credentials: app.allows(GrantType::ClientCredentials),
        code_app: app.allows(GrantType::AuthorizationCode),
        exchange_app: app.allows(GrantType::TokenExchange),
        exchange_audiences: app.exchange_audiences.clone(),
        status: app.status.as_str(),
        disabled: app.status == AppStatus::Disabled,
        description: app.description.clone().unwrap_or_default(),
        redirect_uris: app.redirect_uris.clone(),
        post_logout_redirect_uris: app.post_logout_redirect_uris.clone(),
        scopes: app.scopes.join(" "),
        audience: app.default_audience.clone().unwrap_or_default(),
        require_par: app.require_par,
        require_dpop: app.require_dpop,
        created: when(app.created_at),
        last_used: last_used(app),
        on_behalf: on_behalf.clone(),
    };
    let backchannel = state
        .store
        .backchannel_logout(&app.client_id)
        .await
        .map_err(crate::pages::store_failure)?
        .map(|b| b.uri)
        .unwrap_or_default();
    let usage = usage_chart(state, app).await?;
    let audience = audience(state, app).await?;
    let snippets = snippets(app, &state.config.issuer, audience.as_deref());
    let page = AppPage {
        nav: admin.nav("apps"),
        notice,
        errors,
        usage,
        snippets,
        edit: edit.unwrap_or_else(|| EditForm::of(app, backchannel)),
        users: choices(&emails, |e| e == on_behalf),
        app: view,
        grace_choices: GRACE_CHOICES,
    };
    Ok(admin.respond(render(status, &page)))
}

pub(super) async fn show(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    Path(client_id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    async {
        let admin = auth::require(&state, peer, jar, PERM_APPS_MANAGE).await?;
        let app = owned_app(&state, &admin, &client_id).await?;
        app_page(
            &state,
            admin,
            &app,
            notice(&done),
            (Errors::default(), None),
            StatusCode::OK,
        )
        .await
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
