//! `POST /account/profile`: the person's own name and profile claims (those
//! userinfo returns), checked by the same rules as the admin surfaces; the
//! email and `email_verified` are an admin's to change.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::account;
use gatehouse_core::admin::{AdminError, ProfileEdit};

use super::{Problem, ProfileFields, Step, done, page, posted};
use crate::client_addr::ClientAddr;
use crate::pages;
use crate::security_events;
use crate::state::AppState;

pub(super) async fn submit(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match step(&state, peer, jar, &headers, &body).await {
        Ok(r) | Err(r) => r,
    }
}

async fn step(
    state: &AppState,
    ip: std::net::IpAddr,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Step<Response> {
    let (form, me) = posted(state, &jar, headers, body).await?;
    let field = |k: &str| {
        Some(
            form.get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
        )
    };
    let edit = ProfileEdit {
        name: field("name"),
        given_name: field("given_name"),
        family_name: field("family_name"),
        locale: field("locale"),
        zoneinfo: field("zoneinfo"),
        email_verified: None,
    };
    let now = state.clock.now();
    let edited = match account::edited_profile(&me.user, &edit, now) {
        Ok(Some(u)) => u,
        Ok(None) => return Ok(done(jar, "profile")),
        Err(e) => {
            let typed = ProfileFields {
                name: form.get("name").unwrap_or("").chars().take(200).collect(),
                given_name: form
                    .get("given_name")
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect(),
                family_name: form
                    .get("family_name")
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect(),
                locale: form.get("locale").unwrap_or("").chars().take(64).collect(),
                zoneinfo: form
                    .get("zoneinfo")
                    .unwrap_or("")
                    .chars()
                    .take(100)
                    .collect(),
            };
            let message = match e {
                AdminError::Invalid { field, message } => {
                    format!("{}: {message}. Correct it and save again.", label(field))
                }
                other => other.to_string(),
            };
            let problem = Problem {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                form: "profile",
                message: message.replace('`', ""),
                typed: Some(typed),
            };
            return page(state, jar, &me, None, Some(problem)).await;
        }
    };
    let audit = security_events::event(
        state,
        &me.user,
        ip,
        super::PROFILE_UPDATED,
        "changed their own name or profile claims",
    );
    state
        .store
        .set_user_profile(&me.user.id, edited.name.as_deref(), &edited.profile, &audit)
        .await
        .map_err(pages::store_failure)?;
    Ok(done(jar, "profile"))
}

/// The form's label for a field.
fn label(field: &str) -> &'static str {
    match field {
        "name" => "Name",
        "given_name" => "Given name",
        "family_name" => "Family name",
        "locale" => "Language",
        "zoneinfo" => "Time zone",
        _ => "A field",
    }
}
