//! The roles whose holders must sign in with a second factor (beside the
//! organization-wide rule of [`super::set_requires_mfa`]).

use super::{AdminError, authorized, invalid};
use crate::clock::UnixTime;
use crate::model::{Actor, AuditEvent, Org};
use crate::ports::Store;

/// Most roles one request may name (an organization has a handful).
pub const MAX_MFA_ROLES: usize = 64;
/// The longest role name looked up.
const MAX_ROLE_NAME: usize = 64;

/// The organization's roles that require a second factor, sorted.
pub async fn mfa_roles(
    store: &dyn Store,
    actor: &Actor,
    org: &Org,
) -> Result<Vec<String>, AdminError> {
    authorized(actor, org)?;
    let mut roles = store.mfa_roles(&org.id).await?;
    roles.sort();
    Ok(roles)
}

/// Requires a second factor of exactly the holders of `roles` (each an existing
/// role of the organization; repeats are ignored). From their next sign-in, a
/// holder without a factor is led to enrol. Returns the roles, sorted.
pub async fn set_mfa_roles(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    org: &Org,
    roles: &[String],
) -> Result<Vec<String>, AdminError> {
    authorized(actor, org)?;
    if roles.len() > MAX_MFA_ROLES {
        return Err(invalid(
            "require_mfa_roles",
            format!("at most {MAX_MFA_ROLES} roles"),
        ));
    }
    let known = store.list_roles(&org.id).await?;
    let mut chosen: Vec<String> = Vec::with_capacity(roles.len());
    for r in roles {
        let r = r.trim();
        if r.len() > MAX_ROLE_NAME || !known.iter().any(|k| k.name == r) {
            return Err(invalid(
                "require_mfa_roles",
                "each must be one of the organization's roles (GET /api/v1/roles)",
            ));
        }
        if !chosen.iter().any(|c| c == r) {
            chosen.push(r.to_owned());
        }
    }
    chosen.sort();
    let detail = if chosen.is_empty() {
        "no role requires a second factor any more".to_owned()
    } else {
        let names: Vec<String> = chosen.iter().map(|r| format!("`{r}`")).collect();
        format!("requires a second factor of the roles {}", names.join(", "))
    };
    let audit = AuditEvent::new(
        actor,
        &org.id,
        now,
        "org.require_mfa_roles",
        &org.id,
        detail,
    );
    store.set_mfa_roles(&org.id, &chosen, &audit).await?;
    Ok(chosen)
}
