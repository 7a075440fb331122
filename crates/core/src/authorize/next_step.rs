//! Where a validated authorization request goes next, given who is signed in:
//! sign in, ask consent, issue the code, or deny (OpenID Connect Core §3.1.2.1,
//! §3.1.2.6). Pure decisions: the server loads the session, the user and the
//! consent on record, asks here, and renders or redirects what it is told.

use crate::authorize::ValidAuthorize;
use crate::clock::UnixTime;
use crate::context::ActingUser;
use crate::error::{ErrorCode, OAuthError};
use crate::grant::refresh_token::user_may_authorize;
use crate::model::{App, Session};
use crate::scope::ScopeSet;

/// Who is signed in, as the store knows them now.
#[derive(Debug, Clone, Copy)]
pub struct SignedIn<'a> {
    /// `None` when the session's user no longer exists.
    pub user: Option<&'a ActingUser>,
    /// The scopes the user allowed this app before (`None`: never asked).
    pub consent: Option<&'a ScopeSet>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// Show the sign-in page.
    SignIn {
        /// Why the current session does not do.
        notice: Option<&'static str>,
        /// Prefill the email with the request's `login_hint`.
        prefill_hint: bool,
        /// The session must end first (its user is deactivated).
        end_session: bool,
    },
    /// Show the consent page.
    AskConsent,
    /// Issue the code and redirect with it.
    Issue,
    /// Redirect back with this error.
    Deny {
        error: OAuthError,
        end_session: bool,
    },
    /// Signed in, but not allowed to authorize apps: a page says why and offers
    /// the way back (an `access_denied` redirect).
    NotAllowed,
}

/// Whether `session` may serve `req` without signing in again: not with
/// `prompt=login`, nor when it is older than `max_age` (OpenID Connect Core §3.1.2.1).
pub fn session_serves(req: &ValidAuthorize, session: &Session, now: UnixTime) -> bool {
    !req.prompt.login && req.max_age.is_none_or(|m| now - session.auth_time <= m)
}

/// The next step for `req` to `app`; `signed_in` is `None` without a session
/// that serves the request.
pub fn next_step(req: &ValidAuthorize, app: &App, signed_in: Option<SignedIn<'_>>) -> NextStep {
    let silent = req.prompt.none;
    let Some(SignedIn { user, consent }) = signed_in else {
        return sign_in_or(silent, None, true, false, "the user is not signed in");
    };
    let Some(user) = user else {
        return sign_in_or(silent, None, false, false, "the user is not signed in");
    };
    if user.user.org_id != app.org_id {
        // Signed in to another organization: not an account that may authorize
        // this app (a person authorizes only their own organization's apps).
        return sign_in_or(
            silent,
            Some("Sign in with an account of the organization this app belongs to."),
            false,
            false,
            "the user is not signed in to this app's organization",
        );
    }
    if !user.is_active() {
        return sign_in_or(
            silent,
            Some("This account is deactivated."),
            false,
            true,
            "the user is not signed in",
        );
    }
    // OpenID Connect Core §5.5.1: an ID token `sub` asked for by value is
    // answered positively only for that user; anyone else signs in again.
    if req
        .claims
        .id_token
        .get("sub")
        .and_then(|c| c.value.as_ref())
        .is_some_and(|v| v.as_str() != Some(user.user.id.as_str()))
    {
        return sign_in_or(
            silent,
            Some("This app asked for another account: sign in with that one."),
            false,
            // Not ended: a link naming any `sub` must not sign people out.
            false,
            "the signed-in user is not the `sub` the request asked for",
        );
    }
    // Silent, but for someone else: only an interaction could switch accounts.
    if silent
        && req
            .login_hint
            .as_deref()
            .is_some_and(|h| !h.trim().eq_ignore_ascii_case(&user.user.email))
    {
        return deny(
            ErrorCode::InteractionRequired,
            "login_hint names another account than the signed-in one",
        );
    }
    if user_may_authorize(Some(user)).is_err() {
        return if silent {
            deny(
                ErrorCode::AccessDenied,
                "the user may not authorize apps (no developer_api permission)",
            )
        } else {
            NextStep::NotAllowed
        };
    }
    let consented = consent.is_some_and(|c| req.scope.is_subset_of(c));
    if consented && !req.prompt.consent {
        NextStep::Issue
    } else if silent {
        deny(
            ErrorCode::ConsentRequired,
            "the user has not allowed these scopes",
        )
    } else {
        NextStep::AskConsent
    }
}

/// Whether `user`, who allowed the request on the consent page, may authorize
/// `app`: `Ok` means record the consent and issue.
pub fn may_consent(app: &App, user: &ActingUser) -> Result<(), OAuthError> {
    if user_may_authorize(Some(user)).is_err() || user.user.org_id != app.org_id {
        return Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "the user may not authorize this app",
        ));
    }
    Ok(())
}

/// The sign-in page, or with `prompt=none` (which never shows a page) `login_required`.
fn sign_in_or(
    silent: bool,
    notice: Option<&'static str>,
    prefill_hint: bool,
    end_session: bool,
    why: &'static str,
) -> NextStep {
    if silent {
        NextStep::Deny {
            error: OAuthError::new(ErrorCode::LoginRequired, why),
            end_session,
        }
    } else {
        NextStep::SignIn {
            notice,
            prefill_hint,
            end_session,
        }
    }
}

fn deny(code: ErrorCode, why: &'static str) -> NextStep {
    NextStep::Deny {
        error: OAuthError::new(code, why),
        end_session: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorize::{Prompt, VerifiedRedirectUri};
    use crate::model::{AppStatus, GrantType, User, UserStatus};

    const NOW: UnixTime = 1_700_000_000;

    fn app() -> App {
        App {
            id: "a".into(),
            client_id: "web".into(),
            org_id: "acme".into(),
            name: "Web".into(),
            description: None,
            grant_types: vec![GrantType::AuthorizationCode],
            on_behalf_of: None,
            redirect_uris: vec!["https://app/cb".into()],
            post_logout_redirect_uris: vec![],
            scopes: vec!["read".into()],
            default_scopes: vec![],
            default_audience: None,
            secret_hash: String::new(),
            generation: 1,
            status: AppStatus::Active,
            require_pkce: false,
            require_par: false,
            require_dpop: false,
            exchange_audiences: vec![],
            created_at: 0,
            last_used_at: None,
            client_keys: None,
        }
    }

    fn request(prompt: &str, max_age: Option<i64>, login_hint: Option<&str>) -> ValidAuthorize {
        ValidAuthorize {
            client_id: "web".into(),
            redirect_uri: VerifiedRedirectUri("https://app/cb".into()),
            redirect_uri_given: true,
            scope: ScopeSet::parse("openid read").unwrap(),
            target: None,
            state: None,
            nonce: None,
            code_challenge: None,
            prompt: Prompt {
                none: prompt == "none",
                login: prompt == "login",
                consent: prompt == "consent",
            },
            max_age,
            login_hint: login_hint.map(str::to_owned),
            claims: Default::default(),
            mfa: Default::default(),
        }
    }

    fn user(org: &str, status: UserStatus, permissions: &[&str]) -> ActingUser {
        ActingUser {
            user: User {
                id: "u".into(),
                org_id: org.into(),
                email: "ada@acme.test".into(),
                name: None,
                password_hash: None,
                role: "developer".into(),
                groups: vec![],
                status,
                created_at: 0,
                tokens_valid_after: 0,
                profile: Default::default(),
            },
            permissions: permissions.iter().map(|p| (*p).into()).collect(),
        }
    }

    fn session(auth_time: UnixTime) -> Session {
        Session {
            id_digest: "d".into(),
            sid: "s".into(),
            user_id: "u".into(),
            auth_time,
            expires_at: NOW + 3600,
            amr: crate::mfa::amr_password(),
            user_agent: None,
            address: None,
            last_seen_at: None,
        }
    }

    fn denied(code: ErrorCode, why: &'static str, end_session: bool) -> NextStep {
        NextStep::Deny {
            error: OAuthError::new(code, why),
            end_session,
        }
    }

    fn sign_in(notice: Option<&'static str>, prefill_hint: bool, end: bool) -> NextStep {
        NextStep::SignIn {
            notice,
            prefill_hint,
            end_session: end,
        }
    }

    #[test]
    fn a_sub_asked_for_by_value_is_answered_only_for_that_user() {
        let dev = user("acme", UserStatus::Active, &["developer_api"]);
        let all = ScopeSet::parse("read openid offline_access").unwrap();
        let signed = Some(SignedIn {
            user: Some(&dev),
            consent: Some(&all),
        });
        let with_sub = |prompt: &str, sub: &str| ValidAuthorize {
            claims: crate::claims::ClaimsRequest::parse(&format!(
                r#"{{"id_token":{{"sub":{{"value":"{sub}"}}}}}}"#
            ))
            .unwrap(),
            ..request(prompt, None, None)
        };
        assert_eq!(
            next_step(&with_sub("", "u"), &app(), signed),
            NextStep::Issue
        );
        let why = "the signed-in user is not the `sub` the request asked for";
        assert_eq!(
            next_step(&with_sub("none", "someone-else"), &app(), signed),
            denied(ErrorCode::LoginRequired, why, false)
        );
        assert_eq!(
            next_step(&with_sub("", "someone-else"), &app(), signed),
            sign_in(
                Some("This app asked for another account: sign in with that one."),
                false,
                false
            )
        );
    }

    #[test]
    fn a_session_serves_unless_prompt_login_or_older_than_max_age() {
        let cases = [
            ("", None, NOW - 86_400, true),
            ("login", None, NOW, false),
            ("", Some(60), NOW - 60, true),
            ("", Some(60), NOW - 61, false),
            ("", Some(0), NOW, true),
            ("none", Some(10), NOW - 11, false),
        ];
        for (prompt, max_age, auth_time, serves) in cases {
            let req = request(prompt, max_age, None);
            assert_eq!(
                session_serves(&req, &session(auth_time), NOW),
                serves,
                "prompt={prompt} max_age={max_age:?} auth_time={auth_time}"
            );
        }
    }

    /// Name, prompt, login_hint, who is signed in, expected step.
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<SignedIn<'a>>,
        NextStep,
    );

    #[test]
    fn next_step_follows_session_user_and_consent() {
        let dev = user("acme", UserStatus::Active, &["developer_api"]);
        let deactivated = user("acme", UserStatus::Deactivated, &["developer_api"]);
        let elsewhere = user("globex", UserStatus::Active, &["developer_api"]);
        let viewer = user("acme", UserStatus::Active, &[]);
        let all = ScopeSet::parse("read openid offline_access").unwrap();
        let some = ScopeSet::parse("read").unwrap();
        let signed = |user, consent| Some(SignedIn { user, consent });
        let other_org = Some("Sign in with an account of the organization this app belongs to.");
        let cases: Vec<Case<'_>> = vec![
            ("no session", "", None, None, sign_in(None, true, false)),
            (
                "no session, silent",
                "none",
                None,
                None,
                denied(ErrorCode::LoginRequired, "the user is not signed in", false),
            ),
            (
                "user gone",
                "",
                None,
                signed(None, None),
                sign_in(None, false, false),
            ),
            (
                "user gone, silent",
                "none",
                None,
                signed(None, None),
                denied(ErrorCode::LoginRequired, "the user is not signed in", false),
            ),
            (
                "cross-org user",
                "",
                None,
                signed(Some(&elsewhere), Some(&all)),
                sign_in(other_org, false, false),
            ),
            (
                "cross-org user, silent",
                "none",
                None,
                signed(Some(&elsewhere), Some(&all)),
                denied(
                    ErrorCode::LoginRequired,
                    "the user is not signed in to this app's organization",
                    false,
                ),
            ),
            (
                "deactivated user",
                "",
                None,
                signed(Some(&deactivated), Some(&all)),
                sign_in(Some("This account is deactivated."), false, true),
            ),
            (
                "deactivated user, silent",
                "none",
                None,
                signed(Some(&deactivated), Some(&all)),
                denied(ErrorCode::LoginRequired, "the user is not signed in", true),
            ),
            (
                "silent for another account",
                "none",
                Some("bob@acme.test"),
                signed(Some(&dev), Some(&all)),
                denied(
                    ErrorCode::InteractionRequired,
                    "login_hint names another account than the signed-in one",
                    false,
                ),
            ),
            (
                "silent for this account, hint in other case",
                "none",
                Some(" ADA@acme.test "),
                signed(Some(&dev), Some(&all)),
                NextStep::Issue,
            ),
            (
                "hint ignored when interactive",
                "",
                Some("bob@acme.test"),
                signed(Some(&dev), Some(&all)),
                NextStep::Issue,
            ),
            (
                "no developer_api",
                "",
                None,
                signed(Some(&viewer), Some(&all)),
                NextStep::NotAllowed,
            ),
            (
                "no developer_api, silent",
                "none",
                None,
                signed(Some(&viewer), Some(&all)),
                denied(
                    ErrorCode::AccessDenied,
                    "the user may not authorize apps (no developer_api permission)",
                    false,
                ),
            ),
            (
                "consent covers the request",
                "",
                None,
                signed(Some(&dev), Some(&all)),
                NextStep::Issue,
            ),
            (
                "prompt=consent asks again",
                "consent",
                None,
                signed(Some(&dev), Some(&all)),
                NextStep::AskConsent,
            ),
            (
                "consent to a subset only",
                "",
                None,
                signed(Some(&dev), Some(&some)),
                NextStep::AskConsent,
            ),
            (
                "never consented",
                "",
                None,
                signed(Some(&dev), None),
                NextStep::AskConsent,
            ),
            (
                "consent to a subset only, silent",
                "none",
                None,
                signed(Some(&dev), Some(&some)),
                denied(
                    ErrorCode::ConsentRequired,
                    "the user has not allowed these scopes",
                    false,
                ),
            ),
        ];
        for (name, prompt, hint, signed_in, expected) in cases {
            let req = request(prompt, None, hint);
            assert_eq!(next_step(&req, &app(), signed_in), expected, "{name}");
        }
    }

    #[test]
    fn consent_counts_only_from_a_user_who_may_authorize_this_app() {
        let dev = user("acme", UserStatus::Active, &["developer_api"]);
        let viewer = user("acme", UserStatus::Active, &[]);
        let elsewhere = user("globex", UserStatus::Active, &["developer_api"]);
        let deactivated = user("acme", UserStatus::Deactivated, &["developer_api"]);
        let cases = [
            (&dev, true),
            (&viewer, false),
            (&elsewhere, false),
            (&deactivated, false),
        ];
        for (user, may) in cases {
            match may_consent(&app(), user) {
                Ok(()) => assert!(may, "{}", user.user.org_id),
                Err(e) => {
                    assert!(!may, "{}", user.user.org_id);
                    assert_eq!(e.code, ErrorCode::AccessDenied);
                }
            }
        }
    }
}
