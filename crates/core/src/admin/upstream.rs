//! An organization's upstream OpenID Connect provider: setting it (the client
//! secret sealed under the key-encryption key, bound to the organization),
//! reading it back (never the secret) and removing it. Each change is audited.

use super::{AdminError, authorized, bounded_text, invalid};
use crate::clock::UnixTime;
use crate::jose::KeyEncryptionKey;
use crate::model::{Actor, AuditEvent, Org};
use crate::ports::{Store, StoreError};
use crate::upstream::{
    MAX_CLIENT_ID, MAX_CLIENT_SECRET, MAX_DOMAINS, MAX_ISSUER, UpstreamProvider, normalize_domain,
    secret_aad, url_allowed,
};

/// What an admin sets. `client_secret: None` keeps the stored one (required
/// when there is none yet).
#[derive(Debug, Clone)]
pub struct UpstreamEdit {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub domains: Vec<String>,
    pub allow_passwords: bool,
    pub default_role: String,
    /// Whether the provider's multi-factor sign-in counts as one here.
    pub trust_upstream_mfa: bool,
}

/// The organization's provider; `None` without one.
pub async fn upstream(
    store: &dyn Store,
    actor: &Actor,
    org: &Org,
) -> Result<Option<UpstreamProvider>, AdminError> {
    authorized(actor, org)?;
    match store.upstream_provider(&org.id).await {
        Ok(p) => Ok(Some(p)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Creates or replaces the organization's provider (`dev`: development mode,
/// where a loopback `http` issuer is allowed).
pub async fn set_upstream(
    store: &dyn Store,
    kek: &KeyEncryptionKey,
    now: UnixTime,
    actor: &Actor,
    org: &Org,
    edit: UpstreamEdit,
    dev: bool,
) -> Result<UpstreamProvider, AdminError> {
    let before = upstream(store, actor, org).await?;
    let issuer = bounded_text("issuer", &edit.issuer, MAX_ISSUER)?
        .trim_end_matches('/')
        .to_owned();
    url_allowed(&issuer, dev).map_err(|why| invalid("issuer", why))?;
    let client_id = bounded_text("client_id", &edit.client_id, MAX_CLIENT_ID)?;
    let sealed_client_secret = match (edit.client_secret.as_deref(), &before) {
        (Some(s), _) => {
            let s = bounded_text("client_secret", s, MAX_CLIENT_SECRET)?;
            kek.seal(&secret_aad(&org.id), s.as_bytes())
                .map_err(|e| invalid("client_secret", e.to_string()))?
        }
        (None, Some(b)) => b.sealed_client_secret.clone(),
        (None, None) => return Err(invalid("client_secret", "is required")),
    };
    let domains = domains(&edit.domains)?;
    store
        .role(&org.id, &edit.default_role)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => invalid(
                "default_role",
                format!("`{}` is not a role of this organization", edit.default_role),
            ),
            other => other.into(),
        })?;
    let provider = UpstreamProvider {
        org_id: org.id.clone(),
        issuer,
        client_id,
        sealed_client_secret,
        domains,
        allow_passwords: edit.allow_passwords,
        default_role: edit.default_role,
        updated_at: now,
        trust_upstream_mfa: edit.trust_upstream_mfa,
    };
    let detail = format!(
        "{} the identity provider `{}` for {} (local passwords {}, new people get role `{}`, its multi-factor sign-ins {})",
        if before.is_some() { "changed" } else { "set" },
        provider.issuer,
        provider.domains.join(", "),
        if provider.allow_passwords {
            "allowed"
        } else {
            "refused"
        },
        provider.default_role,
        if provider.trust_upstream_mfa {
            "count as multi-factor here"
        } else {
            "not trusted as multi-factor"
        },
    );
    let audit = AuditEvent::new(actor, &org.id, now, "org.upstream_set", &org.id, detail);
    store.set_upstream_provider(&provider, &audit).await?;
    Ok(provider)
}

fn domains(given: &[String]) -> Result<Vec<String>, AdminError> {
    if given.is_empty() {
        return Err(invalid("domains", "name at least one e-mail domain"));
    }
    if given.len() > MAX_DOMAINS {
        return Err(invalid("domains", format!("at most {MAX_DOMAINS} domains")));
    }
    let mut out: Vec<String> = Vec::new();
    for d in given {
        let d = normalize_domain(d).map_err(|why| invalid("domains", why))?;
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

/// Removes the organization's provider: its people sign in with passwords again.
pub async fn remove_upstream(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    org: &Org,
) -> Result<(), AdminError> {
    authorized(actor, org)?;
    let audit = AuditEvent::new(
        actor,
        &org.id,
        now,
        "org.upstream_removed",
        &org.id,
        "removed the identity provider",
    );
    store
        .remove_upstream_provider(&org.id, &audit)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AdminError::NotFound("identity provider".into()),
            other => other.into(),
        })
}
