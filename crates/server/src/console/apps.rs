//! Settings → Integrations → Registered apps: the list, "Register app", an app's
//! page, editing, disabling, secret regeneration, the on-behalf user and
//! deletion. Needs `apps:manage`.

// A step's early exit is the finished response (page or redirect); boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::net::IpAddr;

use askama::Template;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin::{self, AppEdit, NewApp, NewUser, NewUserAppError};
use gatehouse_core::model::{App, AppStatus, GrantType, PERM_APPS_MANAGE, User, UserStatus};
use gatehouse_core::secret::ClientSecret;
use serde::Deserialize;

use super::auth::{self, Admin};
use super::forms::{self, Errors, Shown};
use super::once::{self, Made};
use super::view::{Nav, when};
use super::{Step, admin_failure, not_found, render, see_other};
use crate::client_addr::ClientAddr;
use crate::pages;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/apps", get(list).post(create))
        .route("/console/apps/new", get(new_form))
        .route("/console/apps/{client_id}", get(show))
        .route(
            "/console/apps/{client_id}/rotate",
            get(rotate_confirm).post(rotate),
        )
        .route("/console/apps/{client_id}/secret", get(show_secret))
        .route(
            "/console/apps/{client_id}/on-behalf",
            axum::routing::post(on_behalf),
        )
        .route("/console/apps/{client_id}/edit", axum::routing::post(edit))
        .route(
            "/console/apps/{client_id}/status",
            axum::routing::post(set_status),
        )
        .route(
            "/console/apps/{client_id}/delete",
            get(delete_confirm).post(delete),
        )
}

/// One `<option>` or checkbox.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn choices(values: &[String], chosen: impl Fn(&str) -> bool) -> Vec<Choice> {
    values
        .iter()
        .map(|v| Choice {
            value: v.clone(),
            label: v.clone(),
            selected: chosen(v),
        })
        .collect()
}

/// Fixed notices after a redirect (never text taken from the URL).
#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn notice(done: &Done) -> Option<&'static str> {
    match done.done.as_deref() {
        Some("deleted") => Some("The app was deleted; everything it held has ended."),
        Some("saved") => Some("Changes saved."),
        Some("disabled") => {
            Some("The app is disabled: every token it held has ended, and it gets no new ones.")
        }
        Some("enabled") => Some("The app is enabled again; it must ask for new tokens."),
        Some("on-behalf") => {
            Some("The app now acts on behalf of the new user; tokens issued before have ended.")
        }
        _ => None,
    }
}

// ---- the list -----------------------------------------------------------------

struct AppRow {
    name: String,
    grant: &'static str,
    client_id: String,
    on_behalf: String,
    created: String,
    last_used: String,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "console/apps.html")]
struct AppsPage {
    nav: Nav,
    notice: Option<&'static str>,
    apps: Vec<AppRow>,
}

fn grant_label(app: &App) -> &'static str {
    if app.allows(GrantType::ClientCredentials) {
        "Client Credentials"
    } else {
        "Authorization Code"
    }
}

/// When the app last got a token (recorded at most once a minute), or "never".
fn last_used(app: &App) -> String {
    app.last_used_at.map_or_else(|| "never".to_owned(), when)
}

fn email_of(users: &[User], id: Option<&str>) -> String {
    id.and_then(|id| users.iter().find(|u| u.id == id))
        .map_or_else(String::new, |u| u.email.clone())
}

async fn list(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    Query(done): Query<Done>,
) -> Response {
    list_step(&state, peer, jar, &done)
        .await
        .unwrap_or_else(|r| r)
}

async fn list_step(state: &AppState, peer: IpAddr, jar: CookieJar, done: &Done) -> Step<Response> {
    let admin = auth::require(state, peer, jar, PERM_APPS_MANAGE).await?;
    let apps = org_apps(state, &admin).await?;
    let users = org_users(state, &admin).await?;
    let rows = apps
        .iter()
        .map(|a| AppRow {
            name: a.name.clone(),
            grant: grant_label(a),
            client_id: a.client_id.clone(),
            on_behalf: email_of(&users, a.on_behalf_of.as_deref()),
            created: when(a.created_at),
            last_used: last_used(a),
            status: a.status.as_str(),
        })
        .collect();
    let page = AppsPage {
        nav: admin.nav("apps"),
        notice: notice(done),
        apps: rows,
    };
    Ok(admin.respond(render(StatusCode::OK, &page)))
}

// ---- register -----------------------------------------------------------------

/// What the admin typed, kept when the form comes back with errors.
#[derive(Default)]
struct AppForm {
    grant: String,
    name: String,
    description: String,
    on_behalf_of: String,
    new_user_email: String,
    new_user_name: String,
    new_user_role: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    scopes: Vec<String>,
    audience: String,
}

/// The value of the "Create a new user…" option.
const NEW_USER: &str = "__new__";

/// Fields the register form shows errors beside.
const APP_FIELDS: &[&str] = &[
    "grant",
    "name",
    "description",
    "on_behalf_of",
    "redirect_uris",
    "post_logout_redirect_uris",
    "scopes",
    "audience",
];
const NEW_USER_FIELDS: &[&str] = &["new_user_email", "new_user_name", "new_user_role"];

#[derive(Template)]
#[template(path = "console/new_app.html")]
struct NewAppPage {
    nav: Nav,
    form: AppForm,
    errors: Errors,
    users: Vec<Choice>,
    roles: Vec<Choice>,
    scopes: Vec<Choice>,
    audiences: Vec<Choice>,
}

/// The organization's users, roles and APIs the form offers.
struct Options {
    users: Vec<User>,
    roles: Vec<String>,
    scopes: Vec<String>,
    audiences: Vec<String>,
}

impl Options {
    async fn load(state: &AppState, admin: &Admin) -> Step<Options> {
        let fail = pages::store_failure;
        let users = org_users(state, admin).await?;
        let roles = org_roles(state, admin).await?;
        let apis = state
            .store
            .apis_for_org(&admin.org.id)
            .await
            .map_err(fail)?;
        let mut scopes: Vec<String> = Vec::new();
        for s in apis
            .iter()
            .flat_map(|a| a.scopes.iter())
            .map(String::as_str)
            .chain(
                gatehouse_core::grant::client_credentials::OIDC_SCOPES
                    .iter()
                    .copied(),
            )
        {
            if !scopes.iter().any(|x| x == s) {
                scopes.push(s.to_owned());
            }
        }
        let audiences = apis.into_iter().map(|a| a.audience).collect();
        Ok(Options {
            users,
            roles,
            scopes,
            audiences,
        })
    }

    fn active_emails(&self) -> Vec<String> {
        self.users
            .iter()
            .filter(|u| u.status == UserStatus::Active)
            .map(|u| u.email.clone())
            .collect()
    }
}

fn new_app_page(admin: &Admin, opts: &Options, form: AppForm, errors: Errors) -> NewAppPage {
    let role = if form.new_user_role.is_empty() {
        "developer".to_owned()
    } else {
        form.new_user_role.clone()
    };
    NewAppPage {
        nav: admin.nav("apps"),
        users: choices(&opts.active_emails(), |e| e == form.on_behalf_of),
        roles: choices(&opts.roles, |r| r == role),
        scopes: choices(&opts.scopes, |s| form.scopes.iter().any(|x| x == s)),
        audiences: choices(&opts.audiences, |a| a == form.audience),
        form,
        errors,
    }
}

async fn new_form(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
) -> Response {
    async {
        let admin = auth::require(&state, peer, jar, PERM_APPS_MANAGE).await?;
        let opts = Options::load(&state, &admin).await?;
        let form = AppForm {
            grant: "client_credentials".into(),
            ..AppForm::default()
        };
        let page = new_app_page(&admin, &opts, form, Errors::default());
        Ok(admin.respond(render(StatusCode::OK, &page)))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}

fn read_app_form(form: &gatehouse_core::form::Form, opts: &Options) -> AppForm {
    AppForm {
        grant: forms::text(form, "grant"),
        name: forms::text(form, "name"),
        description: forms::text(form, "description"),
        on_behalf_of: forms::text(form, "on_behalf_of"),
        new_user_email: forms::text(form, "new_user_email"),
        new_user_name: forms::text(form, "new_user_name"),
        new_user_role: forms::text(form, "new_user_role"),
        redirect_uris: form.get("redirect_uris").unwrap_or("").to_owned(),
        post_logout_redirect_uris: form
            .get("post_logout_redirect_uris")
            .unwrap_or("")
            .to_owned(),
        scopes: forms::checked(form, "scope:", &opts.scopes),
        audience: forms::text(form, "audience"),
    }
}

/// `POST /console/apps`: register, then 303 to the page that shows the secret once.
async fn create(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create_step(&state, peer, jar, &headers, &body)
        .await
        .unwrap_or_else(|r| r)
}

async fn create_step(
    state: &AppState,
    peer: IpAddr,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<Response> {
    let (admin, form) =
        auth::require_form(state, peer, jar, headers, body, PERM_APPS_MANAGE).await?;
    let opts = Options::load(state, &admin).await?;
    let input = read_app_form(&form, &opts);
    let again = |admin: Admin, input: AppForm, errors: Errors, status: StatusCode| {
        let page = new_app_page(&admin, &opts, input, errors);
        Ok(admin.respond(render(status, &page)))
    };
    let grant = match input.grant.as_str() {
        "client_credentials" => GrantType::ClientCredentials,
        "authorization_code" => GrantType::AuthorizationCode,
        _ => {
            let errors = Errors::default()
                .field("grant", "Choose Client Credentials or Authorization Code.");
            return again(admin, input, errors, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let now = state.clock.now();
    // Only the fields of the chosen grant type count; the others are ignored.
    let new_user = grant == GrantType::ClientCredentials && input.on_behalf_of == NEW_USER;
    let scopes = input.scopes.join(" ");
    let new = NewApp {
        org_slug: &admin.org.slug,
        name: &input.name,
        description: Some(input.description.as_str()).filter(|d| !d.is_empty()),
        grant,
        on_behalf_of: (grant == GrantType::ClientCredentials && !new_user)
            .then_some(input.on_behalf_of.as_str())
            .filter(|e| !e.is_empty()),
        redirect_uris: match grant {
            GrantType::AuthorizationCode => forms::lines(&input.redirect_uris),
            _ => Vec::new(),
        },
        post_logout_redirect_uris: match grant {
            GrantType::AuthorizationCode => forms::lines(&input.post_logout_redirect_uris),
            _ => Vec::new(),
        },
        scopes: &scopes,
        default_scopes: None,
        audience: Some(input.audience.as_str()).filter(|a| !a.is_empty()),
    };
    let store = state.store.as_ref();
    let (policy, actor) = (&state.redirect_policy, admin.actor());
    let registered = if new_user {
        // The user made on the form and the app are one change: both, or neither.
        let user = NewUser {
            org_slug: &admin.org.slug,
            email: &input.new_user_email,
            name: Some(input.new_user_name.as_str()).filter(|n| !n.is_empty()),
            role: &input.new_user_role,
            groups: Vec::new(),
            password: None,
        };
        admin::register_app_for_new_user(store, now, policy, &actor, user, new)
            .await
            .map(|(app, secret, _)| (app, secret))
    } else {
        admin::register_app(store, now, policy, &actor, new)
            .await
            .map_err(NewUserAppError::App)
    };
    match registered {
        Ok((app, secret)) => {
            tracing::info!(client_id = %app.client_id, by = %admin.user.id, from = %admin.address, "app registered in the console");
            Ok(hold_secret(state, admin, &app, &secret, Made::Registered))
        }
        Err(NewUserAppError::User(e)) => {
            let (errors, status) = on_form(e, "new_user_", NEW_USER_FIELDS)?;
            again(admin, input, errors, status)
        }
        Err(NewUserAppError::App(e)) => {
            let (errors, status) = on_form(e, "", APP_FIELDS)?;
            again(admin, input, errors, status)
        }
    }
}

/// An admin error as form errors, or the response when no field explains it.
fn on_form(
    e: gatehouse_core::admin::AdminError,
    prefix: &str,
    known: &[&str],
) -> Step<(Errors, StatusCode)> {
    match forms::show(e, prefix) {
        Shown::OnForm(errors, status) => Ok((errors.known_only(known), status)),
        Shown::Elsewhere(e) => Err(admin_failure(e)),
    }
}

// ---- the one-time secret page -------------------------------------------------

#[derive(Template)]
#[template(path = "console/secret.html")]
struct SecretPage<'a> {
    nav: Nav,
    heading: &'a str,
    app_name: &'a str,
    client_id: &'a str,
    secret: &'a str,
}

/// Post/Redirect/Get: the secret waits for one display, and the browser is sent
/// to the page that shows it (a reload of that page re-posts nothing).
fn hold_secret(
    state: &AppState,
    mut admin: Admin,
    app: &App,
    secret: &ClientSecret,
    made: Made,
) -> Response {
    admin.jar = once::hold(
        state,
        admin.jar.clone(),
        &admin.sid,
        &app.client_id,
        made,
        secret,
    );
    admin.respond(see_other(&once::page_path(&app.client_id)))
}

/// `GET …/secret`: the waiting secret, once (pages are `no-store`); afterwards a
/// page saying it is no longer shown.
async fn show_secret(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    Path(client_id): Path<String>,
) -> Response {
    async {
        let mut admin = auth::require(&state, peer, jar, PERM_APPS_MANAGE).await?;
        let app = owned_app(&state, &admin, &client_id).await?;
        let (waiting, jar) = once::take(&state, admin.jar.clone(), &admin.sid, &app.client_id);
        admin.jar = jar;
        let Some((made, secret)) = waiting else {
            let page = pages::message(
                StatusCode::GONE,
                "The secret key is no longer shown",
                "A secret key is shown once, right after it is made; Gatehouse keeps only a hash of it. If it was not copied, regenerate it on the app's page.",
                Some((format!("/console/apps/{}", app.client_id), format!("Back to {}", app.name))),
            );
            return Ok(admin.respond(page));
        };
        let page = SecretPage {
            nav: admin.nav("apps"),
            heading: made.heading(),
            app_name: &app.name,
            client_id: &app.client_id,
            secret: &secret,
        };
        Ok(admin.respond(render(StatusCode::OK, &page)))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}

// ---- an app's page ------------------------------------------------------------

struct AppView {
    name: String,
    client_id: String,
    grant: &'static str,
    client_credentials: bool,
    status: &'static str,
    disabled: bool,
    description: String,
    on_behalf: String,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    scopes: String,
    audience: String,
    created: String,
    last_used: String,
}

/// What the edit form holds: the app's values, or what the admin typed.
struct EditForm {
    name: String,
    description: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
}

impl EditForm {
    fn of(app: &App) -> EditForm {
        EditForm {
            name: app.name.clone(),
            description: app.description.clone().unwrap_or_default(),
            redirect_uris: app.redirect_uris.join("\n"),
            post_logout_redirect_uris: app.post_logout_redirect_uris.join("\n"),
        }
    }

    fn read(form: &gatehouse_core::form::Form) -> EditForm {
        let raw = |name| form.get(name).unwrap_or("").to_owned();
        EditForm {
            name: forms::text(form, "name"),
            description: forms::text(form, "description"),
            redirect_uris: raw("redirect_uris"),
            post_logout_redirect_uris: raw("post_logout_redirect_uris"),
        }
    }
}

/// Fields the edit form shows errors beside.
const EDIT_FIELDS: &[&str] = &[
    "name",
    "description",
    "redirect_uris",
    "post_logout_redirect_uris",
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
}

/// The app named in the path, if it is this organization's; otherwise 404.
async fn owned_app(state: &AppState, admin: &Admin, client_id: &str) -> Step<App> {
    if client_id.len() > 128 {
        return Err(not_found());
    }
    match admin::app(state.store.as_ref(), &admin.actor(), client_id).await {
        Ok(app) if app.org_id == admin.org.id => Ok(app),
        Ok(_) => Err(not_found()),
        Err(e) => Err(admin_failure(e)),
    }
}

/// An app's page; `edit` keeps what the admin typed in the edit form.
async fn app_page(
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
    let view = AppView {
        name: app.name.clone(),
        client_id: app.client_id.clone(),
        grant: grant_label(app),
        client_credentials: app.allows(GrantType::ClientCredentials),
        status: app.status.as_str(),
        disabled: app.status == AppStatus::Disabled,
        description: app.description.clone().unwrap_or_default(),
        redirect_uris: app.redirect_uris.clone(),
        post_logout_redirect_uris: app.post_logout_redirect_uris.clone(),
        scopes: app.scopes.join(" "),
        audience: app.default_audience.clone().unwrap_or_default(),
        created: when(app.created_at),
        last_used: last_used(app),
        on_behalf: on_behalf.clone(),
    };
    let page = AppPage {
        nav: admin.nav("apps"),
        notice,
        errors,
        edit: edit.unwrap_or_else(|| EditForm::of(app)),
        users: choices(&emails, |e| e == on_behalf),
        app: view,
    };
    Ok(admin.respond(render(status, &page)))
}

async fn show(
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

// ---- regenerate the secret ----------------------------------------------------

#[derive(Template)]
#[template(path = "console/confirm.html")]
struct ConfirmPage<'a> {
    nav: Nav,
    subject: &'a str,
    back: String,
    heading: &'a str,
    warning: &'a str,
    action: String,
    button: &'a str,
}

/// A step that ends tokens asks first: what, why, and where the button posts.
struct Confirm {
    heading: &'static str,
    warning: &'static str,
    /// The action's path segment under `/console/apps/{client_id}/`.
    action: &'static str,
    button: &'static str,
}

const ROTATE: Confirm = Confirm {
    heading: "Regenerate the secret key?",
    warning: "Tokens issued so far end now, and the app can get new ones only with the new secret key. The new key is shown once, on the next page.",
    action: "rotate",
    button: "Regenerate secret key",
};

const DELETE: Confirm = Confirm {
    heading: "Delete this app?",
    warning: "Everything the app holds ends now: its tokens, refresh tokens and users' authorizations. This cannot be undone.",
    action: "delete",
    button: "Delete app",
};

async fn confirm(
    state: &AppState,
    peer: IpAddr,
    jar: CookieJar,
    client_id: &str,
    what: &Confirm,
) -> Response {
    async {
        let admin = auth::require(state, peer, jar, PERM_APPS_MANAGE).await?;
        let app = owned_app(state, &admin, client_id).await?;
        let page = ConfirmPage {
            nav: admin.nav("apps"),
            subject: &app.name,
            back: format!("/console/apps/{}", app.client_id),
            heading: what.heading,
            warning: what.warning,
            action: format!("/console/apps/{}/{}", app.client_id, what.action),
            button: what.button,
        };
        Ok(admin.respond(render(StatusCode::OK, &page)))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}

async fn rotate_confirm(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    Path(client_id): Path<String>,
) -> Response {
    confirm(&state, peer, jar, &client_id, &ROTATE).await
}

/// `POST …/rotate`: a new secret, then 303 to the page that shows it once.
async fn rotate(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    async {
        let (admin, _) =
            auth::require_form(&state, peer, jar, &headers, &body, PERM_APPS_MANAGE).await?;
        let app = owned_app(&state, &admin, &client_id).await?;
        let secret = admin::rotate_secret(
            state.store.as_ref(),
            state.clock.now(),
            &admin.actor(),
            &app.client_id,
        )
            .await
            .map_err(admin_failure)?;
        state.clients.catch_up().await;
        tracing::info!(client_id = %app.client_id, by = %admin.user.id, from = %admin.address, "secret regenerated in the console");
        Ok(hold_secret(&state, admin, &app, &secret, Made::Regenerated))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}

// ---- the on-behalf user -------------------------------------------------------

async fn on_behalf(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    async {
        let (admin, form) =
            auth::require_form(&state, peer, jar, &headers, &body, PERM_APPS_MANAGE).await?;
        let app = owned_app(&state, &admin, &client_id).await?;
        if form.get("confirm") != Some("yes") {
            let errors = Errors::default().field(
                "confirm",
                "Tick the box to confirm: the app's current tokens end now.",
            );
            return app_page(
                &state,
                admin,
                &app,
                None,
                (errors, None),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
        let email = forms::text(&form, "on_behalf_of");
        let changed = admin::set_on_behalf_of(
            state.store.as_ref(),
            state.clock.now(),
            &admin.actor(),
            &app.client_id,
            &email,
        )
        .await;
        state.clients.catch_up().await;
        match changed {
            Ok(_) => Ok(admin.respond(see_other(&format!(
                "/console/apps/{}?done=on-behalf",
                app.client_id
            )))),
            Err(e) => {
                let (errors, status) = on_form(e, "", &["on_behalf_of"])?;
                app_page(&state, admin, &app, None, (errors, None), status).await
            }
        }
    }
    .await
    .unwrap_or_else(|r: Response| r)
}

// ---- edit ---------------------------------------------------------------------

/// `POST …/edit`: name and description; redirect URIs for authorization code
/// apps, checked by the redirect-URI policy.
async fn edit(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    async {
        let (admin, form) =
            auth::require_form(&state, peer, jar, &headers, &body, PERM_APPS_MANAGE).await?;
        let app = owned_app(&state, &admin, &client_id).await?;
        let input = EditForm::read(&form);
        let code_app = app.allows(GrantType::AuthorizationCode);
        let change = AppEdit {
            name: Some(&input.name),
            description: Some(Some(input.description.as_str()).filter(|d| !d.is_empty())),
            redirect_uris: code_app.then(|| forms::lines(&input.redirect_uris)),
            post_logout_redirect_uris: code_app
                .then(|| forms::lines(&input.post_logout_redirect_uris)),
            ..AppEdit::default()
        };
        let edited = admin::update_app(
            state.store.as_ref(),
            state.clock.now(),
            &state.redirect_policy,
            &admin.actor(),
            &app.client_id,
            change,
        )
        .await;
        state.clients.catch_up().await;
        match edited {
            Ok(_) => Ok(admin.respond(see_other(&format!(
                "/console/apps/{}?done=saved",
                app.client_id
            )))),
            Err(e) => {
                let (errors, status) = on_form(e, "", EDIT_FIELDS)?;
                app_page(&state, admin, &app, None, (errors, Some(input)), status).await
            }
        }
    }
    .await
    .unwrap_or_else(|r: Response| r)
}

// ---- disable / enable -----------------------------------------------------------

/// `POST …/status` with `status=disabled|active`. Disabling ends every token
/// the app holds; enabling does not bring them back.
async fn set_status(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    async {
        let (admin, form) =
            auth::require_form(&state, peer, jar, &headers, &body, PERM_APPS_MANAGE).await?;
        let app = owned_app(&state, &admin, &client_id).await?;
        let Some(status) = form.get("status").and_then(AppStatus::parse) else {
            return Err(pages::message(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Please check the form",
                "status: must be active or disabled",
                None,
            ));
        };
        admin::set_app_status(
            state.store.as_ref(),
            state.clock.now(),
            &admin.actor(),
            &app.client_id,
            status,
        )
        .await
        .map_err(admin_failure)?;
        state.clients.catch_up().await;
        tracing::info!(client_id = %app.client_id, status = status.as_str(), by = %admin.user.id, from = %admin.address, "app status changed in the console");
        let done = match status {
            AppStatus::Active => "enabled",
            AppStatus::Disabled => "disabled",
        };
        Ok(admin.respond(see_other(&format!(
            "/console/apps/{}?done={done}",
            app.client_id
        ))))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}

// ---- delete -------------------------------------------------------------------

async fn delete_confirm(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    Path(client_id): Path<String>,
) -> Response {
    confirm(&state, peer, jar, &client_id, &DELETE).await
}

async fn delete(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    async {
        let (admin, _) =
            auth::require_form(&state, peer, jar, &headers, &body, PERM_APPS_MANAGE).await?;
        let app = owned_app(&state, &admin, &client_id).await?;
        admin::delete_app(
            state.store.as_ref(),
            state.clock.now(),
            &admin.actor(),
            &app.client_id,
        )
            .await
            .map_err(admin_failure)?;
        state.clients.catch_up().await;
        tracing::info!(client_id = %app.client_id, by = %admin.user.id, from = %admin.address, "app deleted in the console");
        Ok(admin.respond(see_other("/console/apps?done=deleted")))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}

// ---- reads, confined to the admin's organization --------------------------------

async fn org_apps(state: &AppState, admin: &Admin) -> Step<Vec<App>> {
    admin::apps(state.store.as_ref(), &admin.actor(), &admin.org.id)
        .await
        .map_err(admin_failure)
}

pub async fn org_users(state: &AppState, admin: &Admin) -> Step<Vec<User>> {
    admin::users(state.store.as_ref(), &admin.actor(), &admin.org.id)
        .await
        .map_err(admin_failure)
}

pub async fn org_roles(state: &AppState, admin: &Admin) -> Step<Vec<String>> {
    let roles = admin::roles(state.store.as_ref(), &admin.actor(), &admin.org.id)
        .await
        .map_err(admin_failure)?;
    Ok(roles.into_iter().map(|r| r.name).collect())
}
