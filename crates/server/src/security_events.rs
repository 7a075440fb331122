//! Security events in the audit log that change nothing by themselves: sign-ins
//! that succeeded or failed (kinds `signin.succeeded`, `signin.failed`). They are
//! written for known accounts only, in the account's organization; a guess at an
//! unknown address has no organization to be shown to, and writing it would let a
//! stranger fill the log (the text log still has it).

use std::net::IpAddr;

use gatehouse_core::model::{Actor, ActorKind, AuditEvent, User};
use gatehouse_core::ports::StoreError;

use crate::state::AppState;

pub const SIGNIN_SUCCEEDED: &str = "signin.succeeded";
pub const SIGNIN_FAILED: &str = "signin.failed";

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
