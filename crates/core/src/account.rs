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
    /// Ends the live session `sid` of `user_id` (another of their browsers),
    /// enqueuing its back-channel logouts, with `audit`, in one transaction.
    /// NotFound when `user_id` has no live session `sid`.
    async fn end_user_session(
        &self,
        user_id: &str,
        sid: &str,
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<()>;
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

/// A session's last-seen time is written at most this often (seconds): the
/// page shows it to the minute-ish, and a write per request would cost more.
pub const LAST_SEEN_EVERY: UnixTime = 300;

/// A stored `User-Agent` keeps at most this many characters.
pub const MAX_USER_AGENT: usize = 256;

/// The `User-Agent` as stored: control characters (newlines, escapes) removed,
/// cut to [`MAX_USER_AGENT`] characters, `None` when nothing is left.
pub fn bounded_user_agent(raw: &str) -> Option<String> {
    let kept: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_AGENT)
        .collect();
    let kept = kept.trim();
    (!kept.is_empty()).then(|| kept.to_owned())
}

/// "Chrome on Linux" from a `User-Agent`: the first browser and system found
/// by plain substring tests (order matters: Edge and Opera say "Chrome" too,
/// Chrome says "Safari"). Only a hint for the person reading their sessions.
pub fn describe_user_agent(ua: &str) -> Option<String> {
    const BROWSERS: [(&str, &str); 8] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chrome/", "Chrome"),
        ("CriOS/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ];
    const SYSTEMS: [(&str, &str); 7] = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ];
    let find = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(needle, _)| ua.contains(needle))
            .map(|(_, name)| *name)
    };
    match (find(&BROWSERS), find(&SYSTEMS)) {
        (Some(b), Some(s)) => Some(format!("{b} on {s}")),
        (Some(b), None) => Some(b.to_owned()),
        (None, Some(s)) => Some(format!("A browser on {s}")),
        (None, None) => None,
    }
}

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
    fn a_user_agent_is_stored_without_controls_and_bounded() {
        assert_eq!(
            bounded_user_agent("Mozilla/5.0\r\nX-Evil: 1\u{1b}[31m").as_deref(),
            Some("Mozilla/5.0X-Evil: 1[31m")
        );
        let long = "a".repeat(1000);
        assert_eq!(
            bounded_user_agent(&long).unwrap().chars().count(),
            MAX_USER_AGENT
        );
        // Characters, not bytes: a multi-byte agent is not cut mid-character.
        let wide = "é".repeat(300);
        assert_eq!(
            bounded_user_agent(&wide).unwrap().chars().count(),
            MAX_USER_AGENT
        );
        assert_eq!(bounded_user_agent(" \t\n "), None);
    }

    #[test]
    fn a_user_agent_is_described_as_browser_on_system() {
        let chrome_linux = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
        let edge_win = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0";
        let safari_iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        let firefox_mac =
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.0; rv:121.0) Gecko/20100101 Firefox/121.0";
        let chrome_android = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36";
        for (ua, want) in [
            (chrome_linux, Some("Chrome on Linux")),
            (edge_win, Some("Edge on Windows")),
            (safari_iphone, Some("Safari on iOS")),
            (firefox_mac, Some("Firefox on macOS")),
            (chrome_android, Some("Chrome on Android")),
            ("curl/8.5.0", Some("curl")),
            ("something else", None),
        ] {
            assert_eq!(describe_user_agent(ua).as_deref(), want, "{ua}");
        }
    }

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
