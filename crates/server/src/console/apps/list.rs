//! The list of the organization's apps (`GET /console/apps`).

use std::net::IpAddr;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::model::PERM_APPS_MANAGE;

use super::{Done, email_of, grant_label, last_used, notice, org_apps, org_users};
use crate::client_addr::ClientAddr;
use crate::console::auth;
use crate::console::view::{Nav, when};
use crate::console::{Step, render};
use crate::state::AppState;

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

pub(super) async fn list(
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
