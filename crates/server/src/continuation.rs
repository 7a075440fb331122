//! What happens once a person is identified by a way in that leaves their
//! browser's page (their organization's identity provider) or by a passkey
//! alone, at any of the three sign-in pages: the local second factor (or its
//! enrolment) when the person or their organization needs one, then the
//! session, then the [`Continuation`]: the authorization request, the console,
//! or the device page with its code.
//!
//! It owns no page of its own and takes no destination from the request: each
//! continuation is a place of this server, so the way back is never an open
//! redirect. A session is never started before the second factor it needs.

use std::net::IpAddr;

use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use gatehouse_core::discovery::DEVICE_VERIFICATION_PATH;
use gatehouse_core::grant::device_code::{self, normalize_user_code};
use gatehouse_core::model::User;
use gatehouse_core::ports::StoreError;
use gatehouse_core::upstream::Continuation;

use crate::pages;
use crate::second_factor::{self, First};
use crate::security_events;
use crate::session;
use crate::state::AppState;

/// How the person was identified.
pub enum How<'a> {
    /// By their organization's identity provider (`issuer`): a first factor,
    /// or both when `amr` (the session's, from
    /// [`gatehouse_core::upstream::session_amr`]) says multi-factor.
    Federated { issuer: &'a str, amr: Vec<String> },
    /// By a passkey alone, user verified: both factors at once.
    Passkey,
}

/// Goes on from `how` for `user` to `then` (see the module docs).
pub async fn signed_in(
    state: &AppState,
    peer: IpAddr,
    jar: CookieJar,
    user: &User,
    how: How<'_>,
    then: &Continuation,
) -> Response {
    go(state, peer, jar, user, how, then)
        .await
        .unwrap_or_else(pages::store_failure)
}

async fn go(
    state: &AppState,
    peer: IpAddr,
    jar: CookieJar,
    user: &User,
    how: How<'_>,
    then: &Continuation,
) -> Result<Response, StoreError> {
    let session = match how {
        How::Passkey => {
            let amr = gatehouse_core::passkey::amr_passkey();
            let detail = "signed in with a passkey";
            second_factor::complete_with(state, jar, user, peer, amr, detail).await?
        }
        How::Federated { issuer, amr } => {
            // A provider trusted for it did the second factor already.
            let upstream_mfa = amr.iter().any(|m| m == gatehouse_core::mfa::AMR_MFA);
            if !upstream_mfa {
                let need = second_factor::need(state, user).await?;
                if need.asks() {
                    tracing::info!(user_id = %user.id, "identity provider accepted; second step");
                    return Ok(second_step(state, jar, user, need, then).await);
                }
            }
            let (s, jar) =
                session::start_with(state, jar, &user.id, state.clock.now(), amr).await?;
            tracing::info!(user_id = %user.id, "signed in through the identity provider");
            let detail = if upstream_mfa {
                format!(
                    "signed in through the identity provider `{issuer}`, multi-factor as the provider said (trusted)"
                )
            } else {
                format!("signed in through the identity provider `{issuer}`")
            };
            let event = security_events::SIGNIN_SUCCEEDED;
            security_events::record(state, user, peer, event, &detail).await?;
            (s, jar)
        }
    };
    let (session, jar) = session;
    Ok(match then {
        Continuation::Authorize(request) => {
            crate::routes::authorize::resume(state, jar, request, &session).await
        }
        Continuation::Console | Continuation::Device { .. } => {
            (jar, Redirect::to(&local_path(then))).into_response()
        }
    })
}

/// The second step's page (or the enrolment page) on the way to `then`, the
/// provider's sign-in remembered as the first step.
async fn second_step(
    state: &AppState,
    jar: CookieJar,
    user: &User,
    need: second_factor::Need,
    then: &Continuation,
) -> Response {
    let first = First::Federated;
    match then {
        Continuation::Authorize(request) => {
            let jar = second_factor::set_pending_after(state, jar, &user.id, first);
            crate::routes::authorize::resume_second_step(state, jar, request, need).await
        }
        Continuation::Console | Continuation::Device { .. } => {
            second_factor::lead_on(state, jar, user, need, &local_path(then), first)
        }
    }
}

/// The local path of the console or the device page (with its code, when it
/// is one of ours). An authorization request never comes here (it goes on
/// with the request itself); the console is the harmless answer for it.
fn local_path(then: &Continuation) -> String {
    match then {
        Continuation::Device { user_code } => match normalize_user_code(user_code) {
            Some(code) => {
                let q = form_urlencoded::Serializer::new(String::new())
                    .append_pair("user_code", &device_code::display(&code))
                    .finish();
                format!("{DEVICE_VERIFICATION_PATH}?{q}")
            }
            None => DEVICE_VERIFICATION_PATH.to_owned(),
        },
        Continuation::Console | Continuation::Authorize(_) => "/console".to_owned(),
    }
}

/// A refused sign-in page with `Retry-After` when throttled.
pub fn with_retry_after(mut r: Response, retry_after: Option<u64>) -> Response {
    if let Some(secs) = retry_after {
        r.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, secs.into());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_lead_only_to_local_paths() {
        assert_eq!(local_path(&Continuation::Console), "/console");
        assert_eq!(
            local_path(&Continuation::Device {
                user_code: "bcdf-ghjk".into()
            }),
            "/device?user_code=BCDF-GHJK"
        );
        for hostile in ["//evil.test", "https://evil.test/", "/\\evil", "x&next=//e"] {
            assert_eq!(
                local_path(&Continuation::Device {
                    user_code: hostile.into()
                }),
                "/device"
            );
        }
    }
}
