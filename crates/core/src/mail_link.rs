//! E-mailed links that set a person's password: an invitation (an admin added
//! them; [`INVITE_TTL`]) or a reset they asked for ([`RESET_TTL`]). The token
//! goes into the e-mail (or, without SMTP, to the admin) and nowhere else; the
//! store keeps its SHA-256 digest, like every other server-made secret. A person
//! has at most one live link: a new one replaces the old. Using a link is one
//! conditional write, so of two uses of the same link exactly one wins.
//!
//! This module decides lifetimes and makes tokens; it sends nothing and reads
//! nothing (the server does both).

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::model::AuditEvent;
use crate::ports::StoreResult;
use crate::secret;

/// An invitation is good for 72 hours.
pub const INVITE_TTL: UnixTime = 72 * 3600;
/// A reset link is good for 30 minutes.
pub const RESET_TTL: UnixTime = 30 * 60;
/// A token as it arrives in a link: 32 random bytes, base64url (43 characters).
pub const TOKEN_LEN: usize = 43;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    Invite,
    Reset,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Invite => "invite",
            LinkPurpose::Reset => "reset",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invite" => Some(LinkPurpose::Invite),
            "reset" => Some(LinkPurpose::Reset),
            _ => None,
        }
    }

    pub fn ttl(self) -> UnixTime {
        match self {
            LinkPurpose::Invite => INVITE_TTL,
            LinkPurpose::Reset => RESET_TTL,
        }
    }
}

/// A stored link (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailLink {
    /// SHA-256 of the token ([`secret::digest`]).
    pub digest: String,
    pub user_id: String,
    pub purpose: LinkPurpose,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// A new link for `user_id`: the token to send, and the record to store.
pub fn issue(user_id: &str, purpose: LinkPurpose, now: UnixTime) -> (String, MailLink) {
    let token = secret::random_token();
    let link = MailLink {
        digest: secret::digest(&token),
        user_id: user_id.to_owned(),
        purpose,
        created_at: now,
        expires_at: now + purpose.ttl(),
    };
    (token, link)
}

/// The digest a presented token is looked up by; `None` for anything that is
/// not shaped like a token (so nothing unbounded reaches the store).
pub fn digest_of(presented: &str) -> Option<String> {
    let ok = presented.len() == TOKEN_LEN
        && presented
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| secret::digest(presented))
}

/// What using a link ended, besides setting the password.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkUsed {
    /// Live sign-in sessions ended.
    pub sessions_ended: u64,
    /// Grants (with their refresh and access tokens) revoked.
    pub grants_revoked: u64,
}

#[async_trait]
pub trait MailLinkStore: Send + Sync {
    /// Keeps `link` in place of every earlier link of its person, with `audit`,
    /// atomically.
    async fn insert_mail_link(&self, link: &MailLink, audit: &AuditEvent) -> StoreResult<()>;
    /// Keeps the invitation `link` in place of every earlier link of its
    /// person, with `audit`, atomically — only while the person is active and
    /// has no password (has not accepted): Conflict otherwise, and nothing is
    /// written. The condition is checked in the write, so a person who sets
    /// their password meanwhile is not handed a fresh link.
    async fn reissue_invitation(&self, link: &MailLink, audit: &AuditEvent) -> StoreResult<()>;
    /// The link with this digest if it is unused and unexpired at `now`;
    /// NotFound otherwise.
    async fn mail_link(&self, digest: &str, now: UnixTime) -> StoreResult<MailLink>;
    /// Uses the link: sets the (active) person's password hash, ends their
    /// sign-in sessions (their apps are told, back-channel) and revokes their
    /// grants, with `audit`, atomically. NotFound when the link is unknown,
    /// used, expired at `now`, or its person is not active.
    async fn use_mail_link(
        &self,
        digest: &str,
        password_hash: &str,
        now: UnixTime,
        audit: &AuditEvent,
    ) -> StoreResult<LinkUsed>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_expires_after_its_purposes_lifetime_and_stores_only_a_digest() {
        let (token, link) = issue("u1", LinkPurpose::Reset, 1000);
        assert_eq!(link.expires_at, 1000 + 30 * 60);
        assert_ne!(link.digest, token);
        assert_eq!(digest_of(&token).as_deref(), Some(link.digest.as_str()));
        let (_, invite) = issue("u1", LinkPurpose::Invite, 1000);
        assert_eq!(invite.expires_at, 1000 + 72 * 3600);
    }

    #[test]
    fn only_token_shaped_values_are_looked_up() {
        assert!(digest_of("").is_none());
        assert!(digest_of(&"a".repeat(44)).is_none());
        assert!(digest_of(&format!("{}%", "a".repeat(42))).is_none());
        assert!(digest_of(&"a".repeat(43)).is_some());
    }

    #[test]
    fn purposes_read_back() {
        for p in [LinkPurpose::Invite, LinkPurpose::Reset] {
            assert_eq!(LinkPurpose::parse(p.as_str()), Some(p));
        }
        assert_eq!(LinkPurpose::parse("other"), None);
    }
}
