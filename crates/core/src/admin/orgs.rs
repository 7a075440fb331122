//! Organizations: creating one (the operator only) and reading its roles.

use super::{AdminError, authorized, bounded_text, invalid};
use crate::clock::UnixTime;
use crate::model::{Actor, AuditEvent, Org, Role};
use crate::ports::Store;
use crate::secret;

/// "Acme Studio" → "acme-studio".
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').chars().take(63).collect()
}

pub async fn create_org(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    name: &str,
    slug: Option<&str>,
) -> Result<Org, AdminError> {
    let name = bounded_text("name", name, 100)?;
    let slug = match slug {
        Some(s) => {
            if slugify(s) != s {
                return Err(invalid(
                    "slug",
                    "use lowercase letters, digits and single dashes",
                ));
            }
            s.to_owned()
        }
        None => slugify(&name),
    };
    if slug.is_empty() {
        return Err(invalid(
            "slug",
            "the name has no letters or digits to make a slug from; pass --slug",
        ));
    }
    let org = Org {
        id: secret::random_id(),
        slug,
        name,
        created_at: now,
    };
    if actor.org_id.is_some() {
        return Err(invalid("org", "only the operator creates organizations"));
    }
    let audit = AuditEvent::new(
        actor,
        &org.id,
        now,
        "org.create",
        &org.id,
        format!("created organization `{}` ({})", org.name, org.slug),
    );
    store
        .insert_org(&org, &Role::defaults(&org.id), &audit)
        .await
        .map_err(super::already_exists("organization", &org.slug))?;
    Ok(org)
}

/// The organization's roles.
pub async fn roles(store: &dyn Store, actor: &Actor, org: &Org) -> Result<Vec<Role>, AdminError> {
    authorized(actor, org)?;
    Ok(store.list_roles(&org.id).await?)
}

/// Whether everyone in the organization must sign in with a second factor.
pub async fn requires_mfa(store: &dyn Store, actor: &Actor, org: &Org) -> Result<bool, AdminError> {
    authorized(actor, org)?;
    Ok(store.org_requires_mfa(&org.id).await?)
}

/// Requires (or stops requiring) a second factor of everyone in the
/// organization: from the next sign-in, a person without one is led to enrol.
pub async fn set_requires_mfa(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    org: &Org,
    required: bool,
) -> Result<bool, AdminError> {
    authorized(actor, org)?;
    let detail = if required {
        "now requires a second factor (two-step verification) of everyone"
    } else {
        "no longer requires a second factor"
    };
    let audit = AuditEvent::new(actor, &org.id, now, "org.require_mfa", &org.id, detail);
    store
        .set_org_requires_mfa(&org.id, required, &audit)
        .await?;
    Ok(required)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Acme Studio"), "acme-studio");
        assert_eq!(slugify("  Ünïcode & Co. "), "n-code-co");
        assert_eq!(slugify("!!!"), "");
    }
}
