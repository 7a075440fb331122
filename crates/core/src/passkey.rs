//! WebAuthn passkeys: what a person's passkey is, the bounds on them, the
//! store port, and what a passkey sign-in reports as `amr` (RFC 8176) and `acr`.
//! The ceremonies themselves (challenges, signatures, CBOR) are webauthn-rs's,
//! run by the server; nothing here parses authenticator data.
//!
//! A passkey sign-in always requires user verification (a PIN or biometric on
//! the authenticator: webauthn-rs's passkeys refuse an assertion without it), so
//! the person proved something they have (the key) and something they know or
//! are (what unlocks it). That is a multi-factor sign-in in NIST SP 800-63B's
//! terms (a multi-factor cryptographic authenticator, AAL2+), and what Okta,
//! Entra ID and Google report for passkeys: its `amr` carries `mfa`, its `acr` is
//! `urn:gatehouse:acr:mfa`, and it satisfies an organization that requires a
//! second factor.

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::model::AuditEvent;
use crate::ports::StoreResult;

/// Passkeys one person may have.
pub const MAX_PER_USER: u32 = 10;
/// The longest name of a passkey, in characters.
pub const MAX_NAME: usize = 64;
/// How long a challenge may be answered (seconds).
pub const CHALLENGE_TTL: UnixTime = 5 * 60;
/// The largest credential JSON a browser may post (a registration's
/// attestation object with a few extensions is well under this).
pub const MAX_CREDENTIAL_JSON: usize = 16 * 1024;

/// `amr` of a proof-of-possession of a key held by an authenticator (RFC 8176
/// §2 `hwk`). With attestation `none` a synced passkey cannot be told apart
/// from a hardware-bound one; `hwk` is what the peers report for WebAuthn.
pub const AMR_HWK: &str = "hwk";

/// The methods of a sign-in with a passkey alone (user verified: see the module docs).
pub fn amr_passkey() -> Vec<String> {
    vec![AMR_HWK.to_owned(), crate::mfa::AMR_MFA.to_owned()]
}

/// The methods of a password followed by a passkey.
pub fn amr_password_passkey() -> Vec<String> {
    vec![
        crate::mfa::AMR_PASSWORD.to_owned(),
        AMR_HWK.to_owned(),
        crate::mfa::AMR_MFA.to_owned(),
    ]
}

/// Why a passkey name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong,
    ControlCharacter,
}

impl NameError {
    pub fn message(self) -> &'static str {
        match self {
            NameError::Empty => "Give the passkey a name (e.g. \"Work laptop\").",
            NameError::TooLong => "That name is too long: at most 64 characters.",
            NameError::ControlCharacter => "That name holds characters that cannot be shown.",
        }
    }
}

/// A passkey's name as kept: trimmed, 1 to [`MAX_NAME`] characters, printable.
pub fn name(raw: &str) -> Result<String, NameError> {
    let n = raw.trim();
    if n.is_empty() {
        return Err(NameError::Empty);
    }
    if n.chars().count() > MAX_NAME {
        return Err(NameError::TooLong);
    }
    if n.chars().any(char::is_control) {
        return Err(NameError::ControlCharacter);
    }
    Ok(n.to_owned())
}

/// Whether an assertion's signature counter may be accepted after `stored`
/// (WebAuthn §7.2 step 22): a counter that did not go up marks a cloned
/// authenticator, unless both are 0 (authenticators without a counter, e.g.
/// synced passkeys, always send 0).
pub fn counter_ok(stored: u32, presented: u32) -> bool {
    (stored == 0 && presented == 0) || presented > stored
}

/// One registered passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passkey {
    pub id: String,
    pub user_id: String,
    /// The WebAuthn user id (a UUID) the authenticator holds for this person.
    pub user_handle: String,
    /// base64url of the credential id.
    pub credential_id: String,
    pub name: String,
    /// webauthn-rs's `Passkey` as JSON (public key and flags).
    pub credential: String,
    pub counter: u32,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Registering a passkey on the account page.
    Register,
    /// Signing in with a passkey alone (discoverable credentials).
    SignIn,
    /// A passkey as the second step after the password.
    SecondFactor,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::SignIn => "signin",
            Purpose::SecondFactor => "second-factor",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "register" => Some(Purpose::Register),
            "signin" => Some(Purpose::SignIn),
            "second-factor" => Some(Purpose::SecondFactor),
            _ => None,
        }
    }
}

/// A ceremony's server-side state between its two requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Digest of the random value in the browser's cookie.
    pub id_digest: String,
    pub purpose: Purpose,
    /// Whose ceremony it is (none for a discoverable sign-in).
    pub user_id: Option<String>,
    /// webauthn-rs's ceremony state as JSON (holds the challenge).
    pub state: String,
    pub expires_at: UnixTime,
}

/// Passkeys and their ceremonies' challenges.
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// The person's passkeys, oldest first.
    async fn passkeys(&self, user_id: &str) -> StoreResult<Vec<Passkey>>;
    /// The passkey with this credential id (any person); NotFound without one.
    async fn passkey_by_credential(&self, credential_id: &str) -> StoreResult<Passkey>;
    /// Adds a passkey, with `audit`: Conflict when the credential is registered
    /// already or the person has `max` passkeys.
    async fn add_passkey(&self, p: &Passkey, max: u32, audit: &AuditEvent) -> StoreResult<()>;
    /// Renames one of the person's passkeys, with `audit`; NotFound when they have no such one.
    async fn rename_passkey(
        &self,
        user_id: &str,
        id: &str,
        name: &str,
        audit: &AuditEvent,
    ) -> StoreResult<()>;
    /// Removes one of the person's passkeys, with `audit`; NotFound when they have no such one.
    async fn remove_passkey(&self, user_id: &str, id: &str, audit: &AuditEvent) -> StoreResult<()>;
    /// Records a use whose signature counter is `counter` (and the credential
    /// as updated): `false` when the counter does not pass [`counter_ok`]
    /// against the stored one (or the passkey is gone). One conditional write.
    async fn use_passkey(
        &self,
        id: &str,
        counter: u32,
        credential: &str,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// Keeps a ceremony's state (and drops expired ones).
    async fn put_passkey_challenge(&self, c: &Challenge, now: UnixTime) -> StoreResult<()>;
    /// Takes (removes) the live challenge `id_digest` of `purpose`: each works
    /// once; NotFound when there is none, it expired, or is for something else.
    async fn take_passkey_challenge(
        &self,
        id_digest: &str,
        purpose: Purpose,
        now: UnixTime,
    ) -> StoreResult<Challenge>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("  Work laptop "), Ok("Work laptop".to_owned()));
        assert_eq!(name("   "), Err(NameError::Empty));
        assert_eq!(name(&"é".repeat(64)), Ok("é".repeat(64)));
        assert_eq!(name(&"é".repeat(65)), Err(NameError::TooLong));
        assert_eq!(name("a\u{7}b"), Err(NameError::ControlCharacter));
    }

    #[test]
    fn a_counter_that_does_not_go_up_is_refused() {
        assert!(counter_ok(0, 0));
        assert!(counter_ok(0, 1));
        assert!(counter_ok(5, 6));
        assert!(!counter_ok(5, 5));
        assert!(!counter_ok(5, 4));
        assert!(!counter_ok(5, 0));
    }

    #[test]
    fn a_passkey_alone_is_multi_factor() {
        assert_eq!(crate::mfa::acr(&amr_passkey()), crate::claims::ACR_MFA);
        assert_eq!(
            crate::mfa::acr(&amr_password_passkey()),
            crate::claims::ACR_MFA
        );
        assert!(crate::mfa::is_mfa(&amr_passkey()));
    }

    #[test]
    fn purposes_round_trip() {
        for p in [Purpose::Register, Purpose::SignIn, Purpose::SecondFactor] {
            assert_eq!(Purpose::parse(p.as_str()), Some(p));
        }
        assert_eq!(Purpose::parse("other"), None);
    }
}
