//! An invitation link for the admin to pass on, when the server sends no
//! e-mail: the invite form seals it (AES-256-GCM under the key-encryption key,
//! bound to the admin's session and the invited user, with a deadline) into a
//! cookie scoped to the user's invitation page, and redirects there; the page
//! shows it once and clears the cookie (as [`crate::console::once`] does for
//! app secrets). Nothing but the link's digest is stored.
//! `POST` to the same page resends the invitation: a new link in place of the
//! old, only while the user has not accepted (409 otherwise).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::PERM_USERS_MANAGE;
use serde::{Deserialize, Serialize};

use super::owned_user;
use crate::client_addr::ClientAddr;
use crate::console::auth;
use crate::console::render;
use crate::console::view::{Nav, when};
use crate::pages;
use crate::state::AppState;

const COOKIE: &str = "gatehouse_invitation";
/// How long the link waits for its page.
const TTL: UnixTime = 300;

#[derive(Serialize, Deserialize)]
struct Sealed {
    link: String,
    expires_at: UnixTime,
    exp: UnixTime,
}

pub(super) fn page_path(user_id: &str) -> String {
    format!("/console/users/{user_id}/invitation")
}

fn aad(sid: &str, user_id: &str) -> String {
    format!("gatehouse-console-invitation:{sid}:{user_id}")
}

/// Leaves `link` for this session's next view of the user's invitation page.
pub(super) fn hold(
    state: &AppState,
    jar: CookieJar,
    sid: &str,
    user_id: &str,
    link: &str,
    expires_at: UnixTime,
) -> CookieJar {
    let plain = serde_json::to_vec(&Sealed {
        link: link.to_owned(),
        expires_at,
        exp: state.clock.now() + TTL,
    });
    let Some(value) = plain
        .ok()
        .and_then(|p| state.kek().seal(&aad(sid, user_id), &p).ok())
    else {
        return jar;
    };
    jar.add(
        Cookie::build((COOKIE, value))
            .path(page_path(user_id))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(state.config.secure_cookies())
            .max_age(cookie::time::Duration::seconds(TTL))
            .build(),
    )
}

fn take(state: &AppState, jar: CookieJar, sid: &str, user_id: &str) -> (Option<Sealed>, CookieJar) {
    let found = jar
        .get(COOKIE)
        .filter(|c| c.value().len() <= 2048)
        .and_then(|c| state.kek().open(&aad(sid, user_id), c.value()).ok())
        .and_then(|p| serde_json::from_slice::<Sealed>(&p).ok())
        .filter(|s| s.exp > state.clock.now());
    let jar = jar.remove(Cookie::build(COOKIE).path(page_path(user_id)));
    (found, jar)
}

#[derive(Template)]
#[template(path = "console/invitation.html")]
struct InvitationPage<'a> {
    nav: Nav,
    email: &'a str,
    link: &'a str,
    expires: String,
}

/// `GET /console/users/{user_id}/invitation`.
pub(super) async fn show(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    Path(user_id): Path<String>,
) -> Response {
    async {
        let mut admin = auth::require(&state, peer, jar, PERM_USERS_MANAGE).await?;
        let user = owned_user(&state, &admin, &user_id).await?;
        let (waiting, jar) = take(&state, admin.jar.clone(), &admin.sid, &user.id);
        admin.jar = jar;
        let Some(sealed) = waiting else {
            let page = pages::message(
                StatusCode::GONE,
                "The invitation link is no longer shown",
                "An invitation link is shown once, right after it is made; Gatehouse keeps only a hash of it.",
                Some(("/console/users".into(), "Back to the users".into())),
            );
            return Ok(admin.respond(page));
        };
        let page = InvitationPage {
            nav: admin.nav("users"),
            email: &user.email,
            link: &sealed.link,
            expires: when(sealed.expires_at),
        };
        Ok(admin.respond(render(StatusCode::OK, &page)))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}

/// `POST /console/users/{user_id}/invitation`: invites the user again.
pub(super) async fn resend(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    jar: CookieJar,
    headers: axum::http::HeaderMap,
    Path(user_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    async {
        let (mut admin, _) =
            auth::require_form(&state, peer, jar, &headers, &body, PERM_USERS_MANAGE).await?;
        let user = owned_user(&state, &admin, &user_id).await?;
        let made = match crate::password::links::resend(&state, &admin.actor(), &user.id).await {
            Ok((_, made)) => made,
            Err(gatehouse_core::admin::AdminError::Conflict(why)) => {
                let page = pages::message(
                    StatusCode::CONFLICT,
                    "The invitation was not sent again",
                    &why,
                    Some((
                        format!("/console/users/{}", user.id),
                        "Back to the user".into(),
                    )),
                );
                return Ok(admin.respond(page));
            }
            Err(e) => return Err(crate::console::admin_failure(e)),
        };
        let to = match made.link {
            None => format!("/console/users/{}?done=reinvited", user.id),
            Some(link) => {
                admin.jar = hold(
                    &state,
                    admin.jar.clone(),
                    &admin.sid,
                    &user.id,
                    &link,
                    made.expires_at,
                );
                page_path(&user.id)
            }
        };
        Ok(admin.respond(crate::console::see_other(&to)))
    }
    .await
    .unwrap_or_else(|r: Response| r)
}
