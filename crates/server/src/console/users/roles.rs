//! The roles page (`GET /console/roles`): each role's permissions and the
//! groups in use.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin;
use gatehouse_core::model::PERM_USERS_MANAGE;

use crate::client_addr::ClientAddr;
use crate::console::auth;
use crate::console::view::Nav;
use crate::console::{admin_failure, render};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/roles.html")]
struct RolesPage {
    nav: Nav,
    /// (role, its permissions, a second factor required of its holders)
    roles: Vec<(String, String, bool)>,
    groups: Vec<String>,
}

pub(super) async fn roles(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
) -> Response {
    async {
        let admin = auth::require(&state, peer, jar, PERM_USERS_MANAGE).await?;
        let mfa_roles = admin::mfa_roles(state.store.as_ref(), &admin.actor(), &admin.org)
            .await
            .map_err(admin_failure)?;
        let roles = admin::roles(state.store.as_ref(), &admin.actor(), &admin.org)
            .await
            .map_err(admin_failure)?
            .into_iter()
            .map(|r| {
                let perms = if r.permissions.is_empty() {
                    "(none)".to_owned()
                } else {
                    r.permissions.join(", ")
                };
                let mfa = mfa_roles.contains(&r.name);
                (r.name, perms, mfa)
            })
            .collect();
        let groups = admin::groups(state.store.as_ref(), &admin.actor(), &admin.org)
            .await
            .map_err(admin_failure)?;
        let page = RolesPage {
            nav: admin.nav("roles"),
            roles,
            groups,
        };
        Ok(admin.respond(render(StatusCode::OK, &page)))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
