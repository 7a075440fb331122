//! Inviting a person again: a new invitation link in place of their old one
//! (one live link per person), only while they have not accepted (no password
//! yet) and are active. The caller sends the link (or shows it once).

use crate::clock::UnixTime;
use crate::mail_link::{self, LinkPurpose, MailLink};
use crate::model::{Actor, AuditEvent, User, UserStatus};
use crate::ports::{Store, StoreError};

use super::{AdminError, user};

/// The audit action of a resent invitation.
pub const INVITATION_RESENT: &str = "user.invitation_resent";

/// Why `user` cannot be invited again, if they cannot.
pub fn refuse_resend(user: &User) -> Option<String> {
    if user.status != UserStatus::Active {
        return Some(format!(
            "`{}` is deactivated: activate them before inviting them again",
            user.email
        ));
    }
    if user.password_hash.is_some() {
        return Some(format!(
            "`{}` has already accepted the invitation (they have a password); they can reset it themselves",
            user.email
        ));
    }
    None
}

/// A new invitation for the user `user_id` (whom `actor` may see), audited
/// with `how` it goes out ("by e-mail", "with a link for the admin…"): the
/// user, the token for the link, and the stored link. Conflict when the user
/// has accepted or is deactivated.
pub async fn resend_invitation(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    user_id: &str,
    how: &str,
) -> Result<(User, String, MailLink), AdminError> {
    let u = user(store, actor, user_id).await?;
    if let Some(why) = refuse_resend(&u) {
        return Err(AdminError::Conflict(why));
    }
    let (token, link) = mail_link::issue(&u.id, LinkPurpose::Invite, now);
    let audit = AuditEvent::new(
        actor,
        &u.org_id,
        now,
        INVITATION_RESENT,
        &u.id,
        format!(
            "invited `{}` again {how}; the earlier link no longer works",
            u.email
        ),
    );
    match store.reissue_invitation(&link, &audit).await {
        Ok(()) => Ok((u, token, link)),
        // They accepted (or were deactivated) between the read and the write.
        Err(StoreError::Conflict(_)) => Err(AdminError::Conflict(format!(
            "`{}` has already accepted the invitation or is deactivated",
            u.email
        ))),
        Err(e) => Err(e.into()),
    }
}
