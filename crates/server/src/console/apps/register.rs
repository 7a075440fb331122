//! "Register app" (`GET /console/apps/new`, `POST /console/apps`): the form, and
//! registering (with a new on-behalf user when asked), then the one-time secret.

use std::net::IpAddr;

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin::{self, NewApp, NewUser, NewUserAppError};
use gatehouse_core::model::{GrantType, PERM_APPS_MANAGE, User, UserStatus};

use super::secret::hold_secret;
use super::{Choice, choices, on_form, org_roles, org_users};
use crate::client_addr::ClientAddr;
use crate::console::auth::{self, Admin};
use crate::console::forms::{self, Errors};
use crate::console::once::Made;
use crate::console::view::Nav;
use crate::console::{Step, render};
use crate::pages;
use crate::state::AppState;

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
    /// `private_key_jwt`, or anything else for a client secret.
    auth_method: String,
    jwks: String,
    jwks_uri: String,
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
    "token_endpoint_auth_method",
    "jwks",
    "jwks_uri",
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
    scopes: Vec<ScopeChoice>,
    audiences: Vec<Choice>,
}

/// A scope's checkbox, with what it lets the app do in words.
struct ScopeChoice {
    value: String,
    description: String,
    selected: bool,
}

/// The organization's users, roles and APIs the form offers.
struct Options {
    users: Vec<User>,
    roles: Vec<String>,
    scopes: Vec<String>,
    /// Each scope's description (plain text), in `scopes`' order.
    descriptions: Vec<String>,
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
        let mut descriptions: Vec<String> = Vec::new();
        for (s, api) in apis
            .iter()
            .flat_map(|a| {
                a.scopes
                    .iter()
                    .map(move |s| (s.as_str(), Some(a.name.as_str())))
            })
            .chain(
                gatehouse_core::grant::client_credentials::OIDC_SCOPES
                    .iter()
                    .map(|s| (*s, None)),
            )
        {
            if !scopes.iter().any(|x| x == s) {
                scopes.push(s.to_owned());
                descriptions.push(pages::describe_scope(s, api));
            }
        }
        let audiences = apis.into_iter().map(|a| a.audience).collect();
        Ok(Options {
            users,
            roles,
            scopes,
            descriptions,
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
        scopes: opts
            .scopes
            .iter()
            .zip(&opts.descriptions)
            .map(|(s, d)| ScopeChoice {
                value: s.clone(),
                description: d.clone(),
                selected: form.scopes.iter().any(|x| x == s),
            })
            .collect(),
        audiences: choices(&opts.audiences, |a| a == form.audience),
        form,
        errors,
    }
}

pub(super) async fn new_form(
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
        auth_method: forms::text(form, "token_endpoint_auth_method"),
        jwks: form.get("jwks").unwrap_or("").to_owned(),
        jwks_uri: forms::text(form, "jwks_uri"),
    }
}

/// `POST /console/apps`: register, then 303 to the page that shows the secret once.
pub(super) async fn create(
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
        "device_code" => GrantType::DeviceCode,
        _ => {
            let errors = Errors::default().field(
                "grant",
                "Choose Client Credentials, Authorization Code or Device Code.",
            );
            return again(admin, input, errors, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let now = state.clock.now();
    // Only the fields of the chosen grant type count; the others are ignored.
    let new_user = grant == GrantType::ClientCredentials && input.on_behalf_of == NEW_USER;
    let scopes = input.scopes.join(" ");
    let new = NewApp {
        org: &admin.org,
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
        exchange_audiences: vec![],
    };
    let store = state.store.as_ref();
    let (policy, actor) = (&state.redirect_policy, admin.actor());
    if input.auth_method == gatehouse_core::client_assertion::PRIVATE_KEY_JWT {
        let keys = admin::requested_keys(
            Some(&input.auth_method),
            Some(input.jwks.clone()).filter(|j| !j.trim().is_empty()),
            Some(input.jwks_uri.clone()).filter(|u| !u.is_empty()),
        );
        let registered = match keys {
            Ok(_) if new_user => Err(admin::AdminError::Invalid {
                field: "on_behalf_of",
                message: "choose an existing user for an app with its own key".into(),
            }),
            Ok(Some(keys)) => admin::register_key_app(store, now, policy, &actor, new, keys).await,
            Ok(None) => Err(admin::AdminError::Invalid {
                field: "jwks",
                message: "give the app's public keys or their URL".into(),
            }),
            Err(e) => Err(e),
        };
        return match registered {
            Ok(app) => {
                tracing::info!(client_id = %app.client_id, by = %admin.user.id, from = %admin.address, "private_key_jwt app registered in the console");
                let to = format!("/console/apps/{}", app.client_id);
                Ok(admin.respond(crate::console::see_other(&to)))
            }
            Err(e) => {
                let (errors, status) = on_form(e, "", APP_FIELDS)?;
                again(admin, input, errors, status)
            }
        };
    }
    let registered = if new_user {
        // The user made on the form and the app are one change: both, or neither.
        let user = NewUser {
            org: &admin.org,
            email: &input.new_user_email,
            name: Some(input.new_user_name.as_str()).filter(|n| !n.is_empty()),
            role: &input.new_user_role,
            groups: Vec::new(),
            password: None,
            profile: Default::default(),
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
