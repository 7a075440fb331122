//! A person's own account (`/account`): the apps they authorized and their
//! sessions, read and ended by the person themselves; their profile and their
//! password, changed by them. The rules live here so the page only maps; the
//! storage port is sized to these operations. Nothing here decides who is
//! signed in (the page's session does) and nothing reads another person's data:
//! every store call is keyed by the person's own user id.

use async_trait::async_trait;

use crate::admin::{AdminError, ProfileEdit};
use crate::clock::UnixTime;
use crate::model::{AuditEvent, Session, User};
use crate::password::{self, PasswordError};
use crate::ports::StoreResult;

/// An app the person has authorized: remembered consent, or a grant whose
/// refresh tokens still work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedApp {
    pub client_id: String,
    pub name: String,
    /// What the person allowed (the consent's scopes, or the live grants').
    pub scopes: Vec<String>,
    /// When the person last allowed it.
    pub since: UnixTime,
}

/// The person's side of grants and sessions. Every method is keyed by the
/// person's user id, so a forged client id or session can only miss.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// The apps `user_id` authorized (see [`AuthorizedApp`]), by name.
    async fn authorized_apps(
        &self,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<Vec<AuthorizedApp>>;
    /// Forgets the consent to `client_id` and revokes every live grant of
    /// `user_id` to it (their refresh and access tokens end; the change feed
    /// tells the gateways), with `audit`, in one transaction. Returns how many
    /// grants ended; NotFound when there was neither consent nor grant.
    async fn revoke_authorized_app(
        &self,
        user_id: &str,
        client_id: &str,
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<u64>;
    /// The person's live sessions, newest first, at most `limit`.
    async fn user_sessions(
        &self,
        user_id: &str,
        now: UnixTime,
        limit: u32,
    ) -> StoreResult<Vec<Session>>;
    /// Ends every live session of `user_id` except the one with cookie digest
    /// `keep` (all when `None`), enqueuing their back-channel logouts, with
    /// `audit`, in one transaction. Returns how many ended.
    async fn end_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<u64>;
    /// Replaces the password hash and ends every other live session (as
    /// [`AccountStore::end_user_sessions`] with `keep`), with `audit`, in one
    /// transaction.
    async fn change_password(
        &self,
        user_id: &str,
        password_hash: &str,
        keep: Option<&str>,
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<()>;
}

/// Most sessions listed on the page (a person rarely has more than a few).
pub const MAX_SESSIONS_SHOWN: u32 = 50;

/// Why a new password was refused (the current one was checked by the caller).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NewPasswordError {
    #[error("The new password must be at least {} characters.", password::MIN_LEN)]
    TooShort,
    #[error("The new password must be at most {} bytes.", password::MAX_LEN)]
    TooLong,
    #[error("The two new passwords are not the same.")]
    Mismatch,
    #[error("The new password is the current one: choose another.")]
    Unchanged,
    #[error("The password could not be stored. Try again.")]
    Hash,
}

/// The new password, checked and hashed (the same rules as every other place
/// a password is set: [`password::hash`]).
pub fn new_password_hash(
    current: &str,
    new: &str,
    repeated: &str,
) -> Result<String, NewPasswordError> {
    if new != repeated {
        return Err(NewPasswordError::Mismatch);
    }
    if new == current {
        return Err(NewPasswordError::Unchanged);
    }
    password::hash(new).map_err(|e| match e {
        PasswordError::TooShort => NewPasswordError::TooShort,
        PasswordError::TooLong => NewPasswordError::TooLong,
        PasswordError::Hash => NewPasswordError::Hash,
    })
}

/// What a person may change of their own profile: every claim but
/// `email_verified`, which only an admin vouches for.
pub fn own_profile_edit(mut edit: ProfileEdit) -> ProfileEdit {
    edit.email_verified = None;
    edit
}

/// `user` with `edit` applied and checked, or `None` when nothing changes.
pub fn edited_profile(
    user: &User,
    edit: &ProfileEdit,
    now: UnixTime,
) -> Result<Option<User>, AdminError> {
    let (name, profile) =
        own_profile_edit(edit.clone()).apply(user.name.clone(), &user.profile, now)?;
    if name == user.name && profile == user.profile {
        return Ok(None);
    }
    Ok(Some(User {
        name,
        profile,
        ..user.clone()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_password_follows_the_rules_and_must_be_typed_twice() {
        assert_eq!(
            new_password_hash("old password", "new password", "new passw0rd"),
            Err(NewPasswordError::Mismatch)
        );
        assert_eq!(
            new_password_hash("old password", "short", "short"),
            Err(NewPasswordError::TooShort)
        );
        assert_eq!(
            new_password_hash("old password", "old password", "old password"),
            Err(NewPasswordError::Unchanged)
        );
        let long = "x".repeat(password::MAX_LEN + 1);
        assert_eq!(
            new_password_hash("old password", &long, &long),
            Err(NewPasswordError::TooLong)
        );
        let h = new_password_hash("old password", "new password", "new password").unwrap();
        assert!(password::verify("new password", &h));
    }

    #[test]
    fn a_person_cannot_vouch_for_their_own_email() {
        let edit = ProfileEdit {
            email_verified: Some(true),
            given_name: Some(Some("Ana".into())),
            ..ProfileEdit::default()
        };
        let own = own_profile_edit(edit);
        assert_eq!(own.email_verified, None);
        assert_eq!(own.given_name, Some(Some("Ana".into())));
    }
}
