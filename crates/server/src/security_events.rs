//! Security events in the audit log that change nothing by themselves: sign-ins
//! that succeeded or failed (kinds `signin.succeeded`, `signin.failed`), second
//! steps refused, recovery codes used; and the events of the second factor's
//! own changes (enrolled, removed), written with them. They are
//! written for known accounts only, in the account's organization; a guess at an
//! unknown address has no organization to be shown to, and writing it would let a
//! stranger fill the log (the text log still has it).

use std::net::IpAddr;

use gatehouse_core::model::{Actor, ActorKind, AuditEvent, User};
use gatehouse_core::ports::StoreError;

use crate::state::AppState;

pub const SIGNIN_SUCCEEDED: &str = "signin.succeeded";
pub const SIGNIN_FAILED: &str = "signin.failed";
/// A second-step code (TOTP or recovery) was refused.
pub const SECOND_FACTOR_FAILED: &str = "signin.second_factor_failed";
/// A recovery code was used in place of a TOTP code.
pub const RECOVERY_CODE_USED: &str = "mfa.recovery_code_used";
/// An authenticator app was confirmed (the factor counts from then on).
pub const TOTP_ENROLLED: &str = "mfa.totp_enrolled";
/// The authenticator app (and its recovery codes) was removed.
pub const TOTP_REMOVED: &str = "mfa.totp_removed";
/// A passkey was registered, renamed or removed.
pub const PASSKEY_REGISTERED: &str = "mfa.passkey_registered";
pub const PASSKEY_RENAMED: &str = "mfa.passkey_renamed";
pub const PASSKEY_REMOVED: &str = "mfa.passkey_removed";
/// A passkey assertion was refused (wrong signature, counter, unknown key).
pub const PASSKEY_FAILED: &str = "signin.passkey_failed";

/// The audit event of `user` doing `action` from `ip` (to their own account).
pub fn event(state: &AppState, user: &User, ip: IpAddr, action: &str, detail: &str) -> AuditEvent {
    let actor = Actor {
        kind: ActorKind::User,
        id: user.id.clone(),
        name: user.email.clone(),
        org_id: Some(user.org_id.clone()),
        address: ip.to_string(),
    };
    AuditEvent::new(
        &actor,
        &user.org_id,
        state.clock.now(),
        action,
        &user.id,
        detail,
    )
}

/// Records `action` of `user` that changes nothing by itself.
pub async fn record(
    state: &AppState,
    user: &User,
    ip: IpAddr,
    action: &str,
    detail: &str,
) -> Result<(), StoreError> {
    state
        .store
        .record_security_event(&event(state, user, ip, action, detail))
        .await
}

/// Records a password sign-in of `user` from `ip`: `why` is `None` on success.
pub async fn signin(
    state: &AppState,
    user: &User,
    ip: IpAddr,
    why: Option<&str>,
) -> Result<(), StoreError> {
    let actor = Actor {
        kind: ActorKind::User,
        id: user.id.clone(),
        name: user.email.clone(),
        org_id: Some(user.org_id.clone()),
        address: ip.to_string(),
    };
    let (action, detail) = match why {
        None => (SIGNIN_SUCCEEDED, "signed in with a password".to_owned()),
        Some(why) => (SIGNIN_FAILED, format!("sign-in refused: {why}")),
    };
    let event = AuditEvent::new(
        &actor,
        &user.org_id,
        state.clock.now(),
        action,
        &user.id,
        detail,
    );
    state.store.record_security_event(&event).await
}
