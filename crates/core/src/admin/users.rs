//! Users of an organization: creating them, finding them by id or email, their
//! role and groups, activating and deactivating them.

use super::profile::ProfileEdit;
use super::{AdminError, authorized, bounded_text, invalid, not_found, org, visible};
use crate::clock::UnixTime;
use crate::model::{Actor, AuditEvent, Org, Profile, Role, User, UserStatus};
use crate::password;
use crate::ports::{Store, StoreError};
use crate::secret;

pub fn normalize_email(email: &str) -> Result<String, AdminError> {
    let e = email.trim().to_lowercase();
    let valid = e.len() <= 254
        && e.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
        })
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && e.matches('@').count() == 1;
    if !valid {
        return Err(invalid("email", "is not a valid email address"));
    }
    Ok(e)
}

pub struct NewUser<'a> {
    /// The organization, loaded (and authorized) by [`super::org`].
    pub org: &'a Org,
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub role: &'a str,
    pub groups: Vec<String>,
    pub password: Option<&'a str>,
    /// The other profile claims (its `name` is ignored: `name` above is the name).
    pub profile: ProfileEdit,
}

pub async fn create_user(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    new: NewUser<'_>,
) -> Result<User, AdminError> {
    let (user, audit) = prepare_user(store, now, actor, new).await?;
    store
        .insert_user(&user, &audit)
        .await
        .map_err(super::already_exists("user", &user.email))?;
    Ok(user)
}

/// A checked user record and its audit event, not yet stored.
pub(super) async fn prepare_user(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    new: NewUser<'_>,
) -> Result<(User, AuditEvent), AdminError> {
    authorized(actor, new.org)?;
    let email = normalize_email(new.email)?;
    check_role(store, &new.org.id, new.role).await?;
    let name = new.name.map(|n| bounded_text("name", n, 100)).transpose()?;
    let groups = check_groups(&new.groups)?;
    let start = Profile {
        updated_at: now,
        ..Profile::default()
    };
    let others = ProfileEdit {
        name: None,
        ..new.profile
    };
    let (name, profile) = others.apply(name, &start, now)?;
    let password_hash = new
        .password
        .map(password::hash)
        .transpose()
        .map_err(|e| invalid("password", e.to_string()))?;
    let user = User {
        id: secret::random_id(),
        org_id: new.org.id.clone(),
        email,
        name,
        password_hash,
        role: new.role.to_owned(),
        groups,
        status: UserStatus::Active,
        created_at: now,
        tokens_valid_after: 0,
        profile,
    };
    let audit = AuditEvent::new(
        actor,
        &user.org_id,
        now,
        "user.create",
        &user.id,
        format!("created user `{}` with role `{}`", user.email, user.role),
    );
    Ok((user, audit))
}

fn check_groups(given: &[String]) -> Result<Vec<String>, AdminError> {
    if given.len() > 50 {
        return Err(invalid("groups", "at most 50 groups"));
    }
    let mut groups = Vec::new();
    for g in given {
        let g = bounded_text("groups", g, 64)?;
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    Ok(groups)
}

async fn check_role(store: &dyn Store, org_id: &str, role: &str) -> Result<Role, AdminError> {
    store.role(org_id, role).await.map_err(|e| match e {
        StoreError::NotFound => invalid(
            "role",
            format!("`{role}` is not a role of this organization (admin, developer, member, …)"),
        ),
        other => other.into(),
    })
}

pub async fn user_in_org(store: &dyn Store, org_id: &str, email: &str) -> Result<User, AdminError> {
    let email = normalize_email(email)?;
    match store.user_by_email(org_id, &email).await {
        Ok(u) => Ok(u),
        Err(StoreError::NotFound) => Err(AdminError::NotFound(format!(
            "user `{email}` in this organization"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The user by id, if the actor may see them.
pub async fn user(store: &dyn Store, actor: &Actor, user_id: &str) -> Result<User, AdminError> {
    let what = format!("user `{user_id}`");
    let user = store.user_by_id(user_id).await.map_err(not_found(&what))?;
    visible(actor, user.org_id.clone(), user, what)
}

/// The user by email (the operator's CLI names users so), if the actor may see
/// them. Emails are unique per organization: with `org_slug` the user of that
/// organization; without, the one user with this email the actor can see, and
/// an error naming the organizations when there are several.
pub async fn user_by_email(
    store: &dyn Store,
    actor: &Actor,
    email: &str,
    org_slug: Option<&str>,
) -> Result<User, AdminError> {
    let email = normalize_email(email)?;
    let what = format!("user `{email}`");
    if let Some(slug) = org_slug {
        let org = org(store, actor, slug).await?;
        let user = store
            .user_by_email(&org.id, &email)
            .await
            .map_err(not_found(&what))?;
        return visible(actor, user.org_id.clone(), user, what);
    }
    let mut found: Vec<User> = store
        .users_by_email(&email, 100)
        .await?
        .into_iter()
        .filter(|u| actor.may_act_on(&u.org_id))
        .collect();
    match found.len() {
        0 => Err(AdminError::NotFound(what)),
        1 => Ok(found.remove(0)),
        _ => {
            let mut slugs = Vec::new();
            for u in &found {
                slugs.push(store.org_by_id(&u.org_id).await?.slug);
            }
            Err(invalid(
                "org",
                format!(
                    "`{email}` is a user of several organizations ({}): name one with --org",
                    slugs.join(", ")
                ),
            ))
        }
    }
}

/// The organization's users.
pub async fn users(store: &dyn Store, actor: &Actor, org: &Org) -> Result<Vec<User>, AdminError> {
    authorized(actor, org)?;
    Ok(store.list_users(&org.id).await?)
}

/// The groups the organization's users are in, sorted and distinct.
pub async fn groups(
    store: &dyn Store,
    actor: &Actor,
    org: &Org,
) -> Result<Vec<String>, AdminError> {
    let mut all: Vec<String> = users(store, actor, org)
        .await?
        .into_iter()
        .flat_map(|u| u.groups)
        .collect();
    all.sort();
    all.dedup();
    Ok(all)
}

/// Activates or deactivates a user: deactivation ends their tokens and those of
/// every app acting on their behalf.
pub async fn set_user_status(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    user_id: &str,
    status: UserStatus,
) -> Result<User, AdminError> {
    let user = user(store, actor, user_id).await?;
    let (action, verb) = match status {
        UserStatus::Active => ("user.activate", "activated"),
        UserStatus::Deactivated => ("user.deactivate", "deactivated"),
    };
    let audit = AuditEvent::new(
        actor,
        &user.org_id,
        now,
        action,
        &user.id,
        format!("{verb} user `{}`", user.email),
    );
    store
        .set_user_status(&user.id, status, now, &audit)
        .await
        .map_err(not_found(format!("user `{user_id}`")))?;
    Ok(User { status, ..user })
}

/// Gives a user a role and groups; their new tokens carry them.
pub async fn set_user_access(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    user_id: &str,
    role: &str,
    groups: Vec<String>,
) -> Result<User, AdminError> {
    let user = user(store, actor, user_id).await?;
    check_role(store, &user.org_id, role).await?;
    let groups = check_groups(&groups)?;
    let audit = AuditEvent::new(
        actor,
        &user.org_id,
        now,
        "user.set_access",
        &user.id,
        format!(
            "set role `{role}` and groups [{}] for `{}` (was `{}`)",
            groups.join(", "),
            user.email,
            user.role
        ),
    );
    store
        .set_user_access(&user.id, role, &groups, now, &audit)
        .await
        .map_err(not_found(format!("user `{user_id}`")))?;
    Ok(User {
        role: role.to_owned(),
        groups,
        ..user
    })
}

pub(super) async fn acting_user_id(
    store: &dyn Store,
    org_id: &str,
    email: &str,
) -> Result<String, AdminError> {
    let user = user_in_org(store, org_id, email)
        .await
        .map_err(|e| match e {
            AdminError::NotFound(what) => invalid("on_behalf_of", format!("{what} not found")),
            other => other,
        })?;
    if user.status != UserStatus::Active {
        return Err(invalid(
            "on_behalf_of",
            format!("user `{}` is deactivated", user.email),
        ));
    }
    Ok(user.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(normalize_email(" Dev@Acme.Test ").unwrap(), "dev@acme.test");
        for bad in [
            "dev",
            "dev@",
            "@acme.test",
            "a b@c.d",
            "a@b@c.d",
            "a@localhost",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
