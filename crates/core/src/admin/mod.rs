//! Administration of organizations, users, APIs and apps: the rules every admin
//! surface (CLI, console, admin API) shares, so they cannot drift apart. Inputs are
//! validated here into records; each change is one store call, hence one
//! transaction.
//!
//! The access check lives here: [`org`] and [`org_of`] load an organization only
//! if the actor may see it. Every operation on an organization takes that loaded
//! [`Org`] (in its arguments or its `New…` record), so the organization is read
//! and authorized once per operation, by the caller, and passed down.

mod apis;
mod app_changes;
mod apps;
mod audit;
mod backchannel;
mod client_keys;
mod invitations;
mod mfa_roles;
mod orgs;
mod profile;
mod upstream;
mod users;

pub use apis::{NewApi, TTL_RANGE, create_api};
pub use app_changes::{
    AppEdit, MAX_GRACE_SECS, active_secrets, add_secret, delete_app, parse_grace, retire_secret,
    rotate_secret, set_app_status, set_on_behalf_of, update_app,
};
pub use apps::{NewApp, NewUserAppError, app, apps, register_app, register_app_for_new_user};
pub use audit::audit_log;
pub use backchannel::{
    BackchannelEdit, FIELD as BACKCHANNEL_FIELD, backchannel_logout, logout_deliveries,
    refuse_when_off as refuse_backchannel_when_off, set_backchannel_logout,
};
pub use client_keys::{check_client_keys, register_key_app, requested_keys, set_client_keys};
pub use invitations::{INVITATION_RESENT, refuse_resend, resend_invitation};
pub use mfa_roles::{MAX_MFA_ROLES, mfa_roles, set_mfa_roles};
pub use orgs::{create_org, requires_mfa, roles, set_requires_mfa, slugify};
pub use profile::{MAX_LOCALE, MAX_NAME, MAX_ZONEINFO, ProfileEdit, update_user_profile};
pub use upstream::{UpstreamEdit, remove_upstream, set_upstream, upstream};
pub use users::{
    NewUser, create_user, groups, normalize_email, set_user_access, set_user_status, user,
    user_by_email, user_in_org, users,
};

use crate::model::{Actor, Org};
use crate::ports::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => AdminError::Conflict(format!("{what} already exists")),
            other => AdminError::Store(other),
        }
    }
}

/// A unique-constraint conflict told in the resource's words ("organization
/// `acme-studio` already exists"), not the database's (`orgs.slug`); other
/// store errors pass through.
pub(super) fn already_exists(what: &str, value: &str) -> impl FnOnce(StoreError) -> AdminError {
    let message = format!("{what} `{value}` already exists");
    move |e| match e {
        StoreError::Conflict(_) => AdminError::Conflict(message),
        other => AdminError::Store(other),
    }
}

pub(super) fn invalid(field: &'static str, message: impl Into<String>) -> AdminError {
    AdminError::Invalid {
        field,
        message: message.into(),
    }
}

pub(super) fn not_found(what: impl Into<String>) -> impl FnOnce(StoreError) -> AdminError {
    let what = what.into();
    move |e| match e {
        StoreError::NotFound => AdminError::NotFound(what),
        other => other.into(),
    }
}

pub(super) fn bounded_text(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<String, AdminError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(invalid(field, format!("must be at most {max} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(v.to_owned())
}

/// The organization by slug, if the actor may see it.
pub async fn org(store: &dyn Store, actor: &Actor, slug: &str) -> Result<Org, AdminError> {
    let what = format!("organization `{slug}`");
    let org = store.org_by_slug(slug).await.map_err(not_found(&what))?;
    visible(actor, org.id.clone(), org, what)
}

/// The organization by id, if the actor may see it.
pub async fn org_of(store: &dyn Store, actor: &Actor, org_id: &str) -> Result<Org, AdminError> {
    let what = format!("organization `{org_id}`");
    let org = store.org_by_id(org_id).await.map_err(not_found(&what))?;
    visible(actor, org.id.clone(), org, what)
}

/// Another organization's record is "not found" to a confined actor, whatever
/// the id: existence is not revealed across organizations.
pub(super) fn visible<T>(
    actor: &Actor,
    org_id: String,
    record: T,
    what: String,
) -> Result<T, AdminError> {
    if actor.may_act_on(&org_id) {
        Ok(record)
    } else {
        Err(AdminError::NotFound(what))
    }
}

/// The check for an organization the caller already loaded: a confined actor
/// sees only their own (the same "not found" as [`org`] gives).
pub(super) fn authorized(actor: &Actor, org: &Org) -> Result<(), AdminError> {
    if actor.may_act_on(&org.id) {
        Ok(())
    } else {
        Err(AdminError::NotFound(format!("organization `{}`", org.slug)))
    }
}
