//! The organization's identity provider (`/console/identity-provider`): the
//! form that sets it (issuer, client id and secret, e-mail domains, whether
//! local passwords stay allowed, the role of people created on first sign-in,
//! whether the provider's multi-factor sign-ins count as such here)
//! and the button that removes it. Needs `users:manage`. The client secret is
//! write-only: the form never shows it, and left blank keeps the stored one.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin::{self, UpstreamEdit};
use gatehouse_core::model::PERM_USERS_MANAGE;
use serde::Deserialize;

use super::apps::{Choice, org_roles};
use super::auth::{self, Admin};
use super::forms::{self, Errors, Shown};
use super::view::{Nav, when};
use super::{Step, admin_failure, render, see_other};
use crate::client_addr::ClientAddr;
use crate::state::AppState;

pub const PATH: &str = "/console/identity-provider";
const FIELDS: &[&str] = &[
    "issuer",
    "client_id",
    "client_secret",
    "domains",
    "default_role",
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route(PATH, get(show).post(set))
        .route("/console/identity-provider/remove", post(remove))
}

#[derive(Default)]
struct ProviderForm {
    issuer: String,
    client_id: String,
    domains: String,
    allow_passwords: bool,
    default_role: String,
    trust_upstream_mfa: bool,
}

#[derive(Template)]
#[template(path = "console/identity_provider.html")]
struct ProviderPage {
    nav: Nav,
    notice: Option<&'static str>,
    /// A provider is set (the secret field may stay blank).
    configured: bool,
    updated: String,
    form: ProviderForm,
    errors: Errors,
    roles: Vec<Choice>,
    redirect_uri: String,
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

async fn page(
    state: &AppState,
    admin: Admin,
    notice: Option<&'static str>,
    entered: Option<(ProviderForm, Errors)>,
    status: StatusCode,
) -> Step<Response> {
    let stored = admin::upstream(state.store.as_ref(), &admin.actor(), &admin.org)
        .await
        .map_err(admin_failure)?;
    let (form, errors) = match (entered, &stored) {
        (Some(e), _) => e,
        (None, Some(p)) => (
            ProviderForm {
                issuer: p.issuer.clone(),
                client_id: p.client_id.clone(),
                domains: p.domains.join(", "),
                allow_passwords: p.allow_passwords,
                default_role: p.default_role.clone(),
                trust_upstream_mfa: p.trust_upstream_mfa,
            },
            Errors::default(),
        ),
        (None, None) => (ProviderForm::default(), Errors::default()),
    };
    let chosen = if form.default_role.is_empty() {
        "member"
    } else {
        form.default_role.as_str()
    };
    let roles = org_roles(state, &admin)
        .await?
        .into_iter()
        .map(|r| Choice {
            selected: r == chosen,
            label: r.clone(),
            value: r,
        })
        .collect();
    let page = ProviderPage {
        nav: admin.nav("users"),
        notice,
        configured: stored.is_some(),
        updated: stored
            .as_ref()
            .map(|p| when(p.updated_at))
            .unwrap_or_default(),
        form,
        errors,
        roles,
        redirect_uri: format!("{}{}", state.config.issuer, crate::upstream::CALLBACK_PATH),
    };
    Ok(admin.respond(render(status, &page)))
}

async fn show(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    Query(done): Query<Done>,
) -> Response {
    async {
        let admin = auth::require(&state, peer, jar, PERM_USERS_MANAGE).await?;
        let notice = match done.done.as_deref() {
            Some("set") => {
                Some("Identity provider saved: its people are sent there from their next sign-in.")
            }
            Some("removed") => {
                Some("Identity provider removed: everyone signs in with a password again.")
            }
            _ => None,
        };
        page(&state, admin, notice, None, StatusCode::OK).await
    }
    .await
    .unwrap_or_else(|r: Response| r)
}

async fn set(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    async {
        let (admin, form) =
            auth::require_form(&state, peer, jar, &headers, &body, PERM_USERS_MANAGE).await?;
        let input = ProviderForm {
            issuer: forms::text(&form, "issuer"),
            client_id: forms::text(&form, "client_id"),
            domains: forms::text(&form, "domains"),
            allow_passwords: form.get("allow_passwords").is_some(),
            default_role: forms::text(&form, "default_role"),
            trust_upstream_mfa: form.get("trust_upstream_mfa").is_some(),
        };
        let secret = forms::text(&form, "client_secret");
        let edit = UpstreamEdit {
            issuer: input.issuer.clone(),
            client_id: input.client_id.clone(),
            client_secret: Some(secret).filter(|s| !s.is_empty()),
            domains: forms::names(&input.domains),
            allow_passwords: input.allow_passwords,
            default_role: input.default_role.clone(),
            trust_upstream_mfa: input.trust_upstream_mfa,
        };
        let saved = admin::set_upstream(
            state.store.as_ref(),
            state.kek(),
            state.clock.now(),
            &admin.actor(),
            &admin.org,
            edit,
            state.config.dev,
        )
        .await;
        match saved {
            Ok(_) => Ok(admin.respond(see_other(&format!("{PATH}?done=set")))),
            Err(e) => match forms::show(e, "") {
                Shown::OnForm(errors, status) => {
                    let errors = errors.known_only(FIELDS);
                    page(&state, admin, None, Some((input, errors)), status).await
                }
                Shown::Elsewhere(e) => Err(admin_failure(e)),
            },
        }
    }
    .await
    .unwrap_or_else(|r: Response| r)
}

async fn remove(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    async {
        let (admin, _) =
            auth::require_form(&state, peer, jar, &headers, &body, PERM_USERS_MANAGE).await?;
        admin::remove_upstream(
            state.store.as_ref(),
            state.clock.now(),
            &admin.actor(),
            &admin.org,
        )
        .await
        .map_err(admin_failure)?;
        Ok(admin.respond(see_other(&format!("{PATH}?done=removed"))))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
