//! The organization's home (`GET /console` once signed in with `apps:manage`):
//! every app's last 30 days (tokens issued, failed authentications) as a small
//! chart, the most active first, and when each was last used.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

use super::apps::{last_used, org_apps};
use super::auth::Admin;
use super::usage::{Usage, org_usage, today};
use super::view::Nav;
use super::{Step, render};
use crate::state::AppState;

struct AppActivity {
    name: String,
    client_id: String,
    /// HTML: the chart and its figures ([`Usage::chart`]).
    chart: String,
    tokens: i64,
    failed: i64,
    last_used: String,
}

#[derive(Template)]
#[template(path = "console/home.html")]
struct HomePage {
    nav: Nav,
    apps: Vec<AppActivity>,
}

pub(super) async fn page(state: &AppState, admin: Admin) -> Step<Response> {
    let apps = org_apps(state, &admin).await?;
    let today = today(state);
    let usage = org_usage(state, &admin.org.id, today).await?;
    let mut rows: Vec<(i64, Option<i64>, AppActivity)> = apps
        .iter()
        .map(|a| {
            let u = Usage::of(
                usage.get(&a.client_id).map_or(&[][..], Vec::as_slice),
                today,
            );
            let row = AppActivity {
                name: a.name.clone(),
                client_id: a.client_id.clone(),
                chart: u.chart(&format!("usage-{}", a.client_id), &a.name, true),
                tokens: u.tokens,
                failed: u.failed,
                last_used: last_used(a),
            };
            (u.activity(), a.last_used_at, row)
        })
        .collect();
    // Most active first; then the most recently used; then by name.
    rows.sort_by(|x, y| {
        (y.0, y.1)
            .cmp(&(x.0, x.1))
            .then_with(|| x.2.name.cmp(&y.2.name))
    });
    let page = HomePage {
        nav: admin.nav("home"),
        apps: rows.into_iter().map(|r| r.2).collect(),
    };
    Ok(admin.respond(render(StatusCode::OK, &page)))
}
