//! Which people must sign in with a second factor: everyone in an organization
//! that requires it ([`crate::ports::SecondFactorStore::org_requires_mfa`]), or
//! everyone holding one of the roles the organization names here (e.g. the
//! roles that carry `apps:manage`). The sign-in asks both; a person who must
//! and has no factor is led to enrol, as for the organization-wide rule.

use async_trait::async_trait;

use crate::model::AuditEvent;
use crate::ports::StoreResult;

/// The roles whose holders must use a second factor.
#[async_trait]
pub trait RoleMfaStore: Send + Sync {
    /// The organization's roles that require a second factor, by name.
    async fn mfa_roles(&self, org_id: &str) -> StoreResult<Vec<String>>;
    /// Exactly `roles` (existing role names) require a second factor from now
    /// on, with `audit`, in one transaction.
    async fn set_mfa_roles(
        &self,
        org_id: &str,
        roles: &[String],
        audit: &AuditEvent,
    ) -> StoreResult<()>;
}

/// Whether a person with `role` must use a second factor, given the
/// organization-wide rule and the roles that require one.
pub fn required_for(org_wide: bool, mfa_roles: &[String], role: &str) -> bool {
    org_wide || mfa_roles.iter().any(|r| r == role)
}

#[cfg(test)]
mod tests {
    use super::required_for;

    #[test]
    fn the_org_rule_or_the_persons_role_requires_it() {
        let roles = vec!["admin".to_owned()];
        assert!(required_for(true, &[], "member"));
        assert!(required_for(false, &roles, "admin"));
        assert!(!required_for(false, &roles, "member"));
        assert!(!required_for(false, &[], "admin"));
    }
}
