//! Making password links and mailing them. A link is stored (as a digest, with
//! its audit event) before anything is sent; the e-mail goes out in a task of
//! its own, after the request's transaction, and a failed delivery is logged
//! (without the link) and audited, while the person's answer stays the same.
//! Without an SMTP server, an invitation's link is handed back for the admin
//! to pass on, and a reset request is only audited.

use std::net::IpAddr;

use gatehouse_core::admin::{self, AdminError};
use gatehouse_core::clock::UnixTime;
use gatehouse_core::mail_link::{self, LinkPurpose};
use gatehouse_core::model::{Actor, AuditEvent, Org, User, UserStatus};
use gatehouse_core::ports::StoreError;

use crate::security_events;
use crate::state::AppState;

/// An invitation was made (and sent, with SMTP).
pub const INVITED: &str = "user.invite";
/// An invitation link set the person's first password.
pub const INVITATION_USED: &str = "user.invitation_used";
/// Someone asked for a reset link for this account.
pub const RESET_REQUESTED: &str = "password.reset_requested";
/// A reset link set a new password.
pub const RESET_USED: &str = "password.reset_used";
/// An invitation or reset e-mail could not be handed to the SMTP server.
pub const SEND_FAILED: &str = "mail.send_failed";

/// The page a link opens, on the server's public URL.
pub fn url(state: &AppState, token: &str) -> String {
    format!("{}{}?token={token}", state.config.issuer, super::SET_PATH)
}

/// A new invitation.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub expires_at: UnixTime,
    /// The link, only when no SMTP server is configured: for the admin to
    /// pass on. With one, the link exists only in the e-mail.
    pub link: Option<String>,
}

/// How an invitation goes out, in its audit event.
fn how(state: &AppState) -> &'static str {
    if state.config.mail.is_some() {
        "by e-mail"
    } else {
        "with a link for the admin to pass on (no SMTP server is configured)"
    }
}

/// Invites `user` (just made, without a password) on behalf of `actor`.
pub async fn invite(
    state: &AppState,
    actor: &Actor,
    org: &Org,
    user: &User,
) -> Result<Invitation, StoreError> {
    let now = state.clock.now();
    let (token, link) = mail_link::issue(&user.id, LinkPurpose::Invite, now);
    let audit = AuditEvent::new(
        actor,
        &org.id,
        now,
        INVITED,
        &user.id,
        format!("invited `{}` {}", user.email, how(state)),
    );
    state.store.insert_mail_link(&link, &audit).await?;
    Ok(send_invitation(
        state,
        actor,
        org,
        user,
        &token,
        link.expires_at,
    ))
}

/// Invites the user `user_id` (whom `actor` may see) again, in place of
/// their earlier link ([`admin::resend_invitation`]: Conflict once they have
/// accepted or when deactivated).
pub async fn resend(
    state: &AppState,
    actor: &Actor,
    user_id: &str,
) -> Result<(User, Invitation), AdminError> {
    let now = state.clock.now();
    let (user, token, link) =
        admin::resend_invitation(state.store.as_ref(), now, actor, user_id, how(state)).await?;
    let org = state.store.org_by_id(&user.org_id).await?;
    let made = send_invitation(state, actor, &org, &user, &token, link.expires_at);
    Ok((user, made))
}

/// Mails the invitation with `token` (or, without SMTP, hands the link back).
fn send_invitation(
    state: &AppState,
    actor: &Actor,
    org: &Org,
    user: &User,
    token: &str,
    expires_at: UnixTime,
) -> Invitation {
    let url = url(state, token);
    if state.config.mail.is_none() {
        return Invitation {
            expires_at,
            link: Some(url),
        };
    }
    let subject = format!("You are invited to {} on Gatehouse", org.name);
    let body = format!(
        "{} invited you ({}) to {}.\n\nChoose your password here (the link works once, for 72 hours):\n{url}\n\nThen sign in with your email address and that password.\n",
        actor.name, user.email, org.name
    );
    let failed = AuditEvent::new(
        actor,
        &org.id,
        state.clock.now(),
        SEND_FAILED,
        &user.id,
        format!(
            "the invitation e-mail to `{}` could not be sent",
            user.email
        ),
    );
    deliver(state, user, subject, body, failed);
    Invitation {
        expires_at,
        link: None,
    }
}

/// Starts a reset for `email` from `ip`, after the caller has answered: every
/// active account with the address (one per organization) gets a link.
pub fn request_reset(state: &AppState, email: String, ip: IpAddr) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = reset_links(&state, &email, ip).await {
            tracing::warn!(error = %e, "a password reset request was not completed");
        }
    });
}

async fn reset_links(state: &AppState, email: &str, ip: IpAddr) -> Result<(), StoreError> {
    let users = state
        .store
        .users_by_email(email, crate::signin::MAX_CANDIDATES)
        .await?;
    for user in users.into_iter().filter(|u| u.status == UserStatus::Active) {
        if state.config.mail.is_none() {
            // Nothing could deliver a link; an invitation's link stays valid.
            tracing::warn!(user_id = %user.id, "a password reset was asked for, but no SMTP server is configured (--smtp-url)");
            security_events::record(
                state,
                &user,
                ip,
                RESET_REQUESTED,
                "asked for a password reset link; none was made: no SMTP server is configured",
            )
            .await?;
            continue;
        }
        let org = state.store.org_by_id(&user.org_id).await?;
        let (token, link) = mail_link::issue(&user.id, LinkPurpose::Reset, state.clock.now());
        let audit = security_events::event(
            state,
            &user,
            ip,
            RESET_REQUESTED,
            "asked for a password reset link (sent by e-mail)",
        );
        state.store.insert_mail_link(&link, &audit).await?;
        let subject = format!("Reset your password for {}", org.name);
        let body = format!(
            "Someone (hopefully you) asked to reset the password of {} at {}.\n\nChoose a new password here (the link works once, for 30 minutes):\n{}\n\nIf you did not ask for this, ignore this e-mail: your password stays as it is.\n",
            user.email,
            org.name,
            url(state, &token)
        );
        let failed = security_events::event(
            state,
            &user,
            ip,
            SEND_FAILED,
            "the password reset e-mail could not be sent",
        );
        deliver(state, &user, subject, body, failed);
    }
    Ok(())
}

/// Sends in a task of its own; on failure logs why (never the body) and
/// records `failed`.
fn deliver(state: &AppState, to: &User, subject: String, body: String, failed: AuditEvent) {
    let Some(mailer) = state.config.mail.clone() else {
        return;
    };
    let state = state.clone();
    let (user_id, address) = (to.id.clone(), to.email.clone());
    tokio::spawn(async move {
        match mailer.send(&address, &subject, body).await {
            Ok(()) => tracing::info!(%user_id, "mail sent"),
            Err(e) => {
                tracing::warn!(%user_id, error = %e, "mail not sent");
                if let Err(e) = state.store.record_security_event(&failed).await {
                    tracing::warn!(error = %e, "the failed delivery could not be audited");
                }
            }
        }
    });
}
