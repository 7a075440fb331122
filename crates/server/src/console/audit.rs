//! The organization's audit log: who changed what, when and from where, newest
//! first, a page at a time. Needs `apps:manage`. Reads only; the core confines
//! the log to the admin's organization.

// A step's early exit is the finished response (page or redirect); boxing it buys nothing.
#![allow(clippy::result_large_err)]

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::admin;
use gatehouse_core::model::PERM_APPS_MANAGE;
use serde::Deserialize;

use super::auth;
use super::view::{Nav, when};
use super::{Step, admin_failure, render};
use crate::client_addr::ClientAddr;
use crate::pages;
use crate::state::AppState;

/// Events per page.
const PAGE: u32 = 50;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/audit", get(page))
}

#[derive(Deserialize)]
struct Params {
    /// Kept as text so a bad value gets our page, not the extractor's.
    before: Option<String>,
}

struct Row {
    who: String,
    kind: &'static str,
    action: String,
    /// HTML: names quoted in backticks shown as code ([`crate::pages::code_spans`]).
    detail: String,
    when: String,
    address: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    nav: Nav,
    events: Vec<Row>,
    /// The `before` of the next page, when there may be older events.
    older: Option<i64>,
    /// Showing an older page (offer the newest).
    paged: bool,
}

/// `?before=` is a positive sequence number of at most 18 digits.
fn parse_before(raw: Option<&str>) -> Step<Option<i64>> {
    let Some(raw) = raw else { return Ok(None) };
    match raw.parse::<i64>() {
        Ok(n) if n > 0 && raw.len() <= 18 => Ok(Some(n)),
        _ => Err(pages::message(
            StatusCode::BAD_REQUEST,
            "Bad page link",
            "`before` must be a positive event number.",
            Some(("/console/audit".into(), "Newest events".into())),
        )),
    }
}

async fn page(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    Query(params): Query<Params>,
) -> Response {
    async {
        let admin = auth::require(&state, peer, jar, PERM_APPS_MANAGE).await?;
        let before = parse_before(params.before.as_deref())?;
        let events = admin::audit_log(
            state.store.as_ref(),
            &admin.actor(),
            &admin.org,
            before,
            PAGE,
        )
        .await
        .map_err(admin_failure)?;
        let older = (events.len() == PAGE as usize)
            .then(|| events.last().map(|e| e.seq))
            .flatten();
        let events = events
            .into_iter()
            .map(|e| Row {
                who: e.actor_name,
                kind: e.actor_kind.as_str(),
                action: e.action,
                detail: crate::pages::code_spans(&e.detail),
                when: when(e.at),
                address: e.address,
            })
            .collect();
        let page = AuditPage {
            nav: admin.nav("audit"),
            events,
            older,
            paged: before.is_some(),
        };
        Ok(admin.respond(render(StatusCode::OK, &page)))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}

#[cfg(test)]
mod tests {
    use super::parse_before;

    #[test]
    fn before_is_a_bounded_positive_number() {
        assert_eq!(parse_before(None).ok(), Some(None));
        assert_eq!(parse_before(Some("42")).ok(), Some(Some(42)));
        for bad in [
            "0",
            "-1",
            "x",
            "",
            "1e3",
            "9999999999999999999",
            "0000000000000000001",
        ] {
            assert!(parse_before(Some(bad)).is_err(), "{bad}");
        }
    }
}
