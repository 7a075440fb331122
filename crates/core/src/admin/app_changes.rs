//! Changes to a registered app: its secret, on-behalf user, details, status, and
//! deleting it. Each reads the app once (which authorizes the actor) and writes
//! one change with its audit event.

use super::apps::{app, check_app_scopes, check_exchange_audiences};
use super::users::acting_user_id;
use super::{AdminError, bounded_text, invalid, not_found};
use crate::clock::UnixTime;
use crate::model::{Actor, App, AppSecret, AppStatus, AuditEvent, GrantType, MAX_ACTIVE_SECRETS};
use crate::ports::{Store, StoreError};
use crate::redirect_uri::RedirectPolicy;
use crate::secret::ClientSecret;

/// A new secret: the old one stops working and every token issued so far ends.
pub async fn rotate_secret(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    client_id: &str,
) -> Result<ClientSecret, AdminError> {
    let current = app(store, actor, client_id).await?;
    super::client_keys::has_secret(&current)?;
    let secret = ClientSecret::generate();
    let audit = AuditEvent::new(
        actor,
        &current.org_id,
        now,
        "app.rotate_secret",
        client_id,
        format!(
            "regenerated the secret key of `{}`; tokens issued before ended",
            current.name
        ),
    );
    store
        .rotate_app_secret(client_id, &secret.digest(), now, &audit)
        .await
        .map_err(not_found(format!("app `{client_id}`")))?;
    Ok(secret)
}

/// The longest grace period a rotation may give the old secret (90 days).
pub const MAX_GRACE_SECS: i64 = 90 * 86_400;

/// Reads a grace period: a whole number with a unit, `s`, `m`, `h` or `d`
/// (`90s`, `30m`, `12h`, `7d`), or bare seconds; between 1 s and 90 days.
pub fn parse_grace(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_lowercase()),
        _ => (t, 's'),
    };
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("`{text}`: the unit must be s, m, h or d (e.g. 7d)")),
    };
    let n: i64 = match digits.parse() {
        Ok(n) if digits.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => {
            return Err(format!(
                "`{text}` is not a duration like 7d, 12h, 30m or 90s"
            ));
        }
    };
    match n.checked_mul(scale) {
        Some(secs) if (1..=MAX_GRACE_SECS).contains(&secs) => Ok(secs),
        _ => Err(format!(
            "`{text}`: the grace period must be between 1 second and 90 days"
        )),
    }
}

/// A second secret beside the active one (a rotation with a grace period): both
/// authenticate until the old one is retired or, with `grace_secs`, until it
/// expires that many seconds from `now`. Tokens issued so far stay valid. Refused
/// when the app already has [`MAX_ACTIVE_SECRETS`] active.
pub async fn add_secret(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    client_id: &str,
    grace_secs: Option<i64>,
) -> Result<(AppSecret, ClientSecret), AdminError> {
    if let Some(g) = grace_secs
        && !(1..=MAX_GRACE_SECS).contains(&g)
    {
        return Err(invalid(
            "expires_in",
            "the old secret's grace period must be between 1 second and 90 days",
        ));
    }
    let current = app(store, actor, client_id).await?;
    super::client_keys::has_secret(&current)?;
    let full = || {
        AdminError::Conflict(format!(
            "app `{client_id}` already has {MAX_ACTIVE_SECRETS} active secrets: retire one first"
        ))
    };
    let active = store
        .app_secrets(client_id)
        .await?
        .iter()
        .filter(|s| s.active_at(now))
        .count();
    if active >= MAX_ACTIVE_SECRETS {
        return Err(full());
    }
    let value = ClientSecret::generate();
    let secret = AppSecret {
        id: crate::secret::random_id(),
        client_id: client_id.to_owned(),
        digest: value.digest(),
        created_at: now,
        expires_at: None,
        retired_at: None,
        last_used_at: None,
    };
    let others_expire_at = grace_secs.map(|g| now.saturating_add(g));
    let detail = match grace_secs {
        Some(g) => format!(
            "added secret `{}` to `{}`; the other secret expires in {g} s",
            secret.id, current.name
        ),
        None => format!(
            "added secret `{}` to `{}`; the other secret works until retired",
            secret.id, current.name
        ),
    };
    let audit = AuditEvent::new(
        actor,
        &current.org_id,
        now,
        "app.add_secret",
        client_id,
        detail,
    );
    match store
        .add_app_secret(&secret, others_expire_at, now, &audit)
        .await
    {
        Ok(()) => Ok((secret, value)),
        Err(StoreError::NotFound) => Err(AdminError::NotFound(format!("app `{client_id}`"))),
        Err(StoreError::Conflict(_)) => Err(full()),
        Err(e) => Err(AdminError::Store(e)),
    }
}

/// Retires one of the app's active secrets: it stops authenticating and the
/// tokens issued with it end; the others' tokens stay. The last active secret
/// cannot be retired (regenerate it instead).
pub async fn retire_secret(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    client_id: &str,
    secret_id: &str,
) -> Result<(), AdminError> {
    let current = app(store, actor, client_id).await?;
    let what = || AdminError::NotFound(format!("active secret `{secret_id}` of app `{client_id}`"));
    let last = || {
        AdminError::Conflict(format!(
            "secret `{secret_id}` is the last active secret of app `{client_id}`: add another first, or regenerate it"
        ))
    };
    let secrets = store.app_secrets(client_id).await?;
    if !secrets
        .iter()
        .any(|s| s.id == secret_id && s.active_at(now))
    {
        return Err(what());
    }
    if secrets.iter().filter(|s| s.active_at(now)).count() < 2 {
        return Err(last());
    }
    let audit = AuditEvent::new(
        actor,
        &current.org_id,
        now,
        "app.retire_secret",
        client_id,
        format!(
            "retired secret `{secret_id}` of `{}`; tokens issued with it ended",
            current.name
        ),
    );
    match store
        .retire_app_secret(client_id, secret_id, now, &audit)
        .await
    {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound) => Err(what()),
        Err(StoreError::Conflict(_)) => Err(last()),
        Err(e) => Err(AdminError::Store(e)),
    }
}

/// The app's secrets that authenticate at `now` (never their values).
pub async fn active_secrets(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    client_id: &str,
) -> Result<Vec<AppSecret>, AdminError> {
    app(store, actor, client_id).await?;
    let mut secrets = store.app_secrets(client_id).await?;
    secrets.retain(|s| s.active_at(now));
    Ok(secrets)
}

pub async fn set_on_behalf_of(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    client_id: &str,
    email: &str,
) -> Result<App, AdminError> {
    let current = app(store, actor, client_id).await?;
    if !current.allows(GrantType::ClientCredentials) {
        return Err(invalid(
            "on_behalf_of",
            "only client credentials apps act on behalf of a user",
        ));
    }
    let user_id = acting_user_id(store, &current.org_id, email).await?;
    let audit = AuditEvent::new(
        actor,
        &current.org_id,
        now,
        "app.set_on_behalf_of",
        client_id,
        format!(
            "`{}` now acts on behalf of `{}`; tokens issued before ended",
            current.name,
            email.trim().to_lowercase()
        ),
    );
    let generation = store
        .set_app_on_behalf_of(client_id, &user_id, now, &audit)
        .await
        .map_err(not_found(format!("app `{client_id}`")))?;
    Ok(App {
        on_behalf_of: Some(user_id),
        generation,
        ..current
    })
}

/// Deletes the app; everything it holds (tokens, codes, grants) ends.
pub async fn delete_app(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    client_id: &str,
) -> Result<(), AdminError> {
    let current = app(store, actor, client_id).await?;
    let audit = AuditEvent::new(
        actor,
        &current.org_id,
        now,
        "app.delete",
        client_id,
        format!("deleted app `{}`", current.name),
    );
    store
        .delete_app(client_id, now, &audit)
        .await
        .map_err(not_found(format!("app `{client_id}`")))
}

/// What an edit changes; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct AppEdit<'a> {
    pub name: Option<&'a str>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<&'a str>>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub scopes: Option<&'a str>,
    pub default_scopes: Option<&'a str>,
    /// `Some(None)` clears the default audience.
    pub default_audience: Option<Option<&'a str>>,
    /// Whether authorization requests must use PKCE (authorization code apps).
    pub require_pkce: Option<bool>,
    /// Whether authorization requests must be pushed first (RFC 9126 §5).
    pub require_par: Option<bool>,
    /// Whether token requests must carry a DPoP proof (RFC 9449; any app).
    pub require_dpop: Option<bool>,
    /// Replaces the APIs a token exchange app may exchange tokens for
    /// (`Some(vec![])` clears them).
    pub exchange_audiences: Option<Vec<String>>,
}

/// Edits an app's details. Tokens already issued keep their scopes until they
/// expire; new tokens follow the new settings.
pub async fn update_app(
    store: &dyn Store,
    now: UnixTime,
    policy: &RedirectPolicy,
    actor: &Actor,
    client_id: &str,
    edit: AppEdit<'_>,
) -> Result<App, AdminError> {
    let current = app(store, actor, client_id).await?;
    let mut next = current.clone();
    let mut changed: Vec<&str> = Vec::new();
    if let Some(n) = edit.name {
        next.name = bounded_text("name", n, 100)?;
        changed.push("name");
    }
    if let Some(d) = edit.description {
        next.description = d
            .filter(|d| !d.trim().is_empty())
            .map(|d| bounded_text("description", d, 1000))
            .transpose()?;
        changed.push("description");
    }
    let code_app = current.allows(GrantType::AuthorizationCode);
    if let Some(uris) = edit.redirect_uris {
        if !code_app {
            return Err(invalid(
                "redirect_uris",
                "only authorization code apps have redirect URIs",
            ));
        }
        if uris.is_empty() {
            return Err(invalid(
                "redirect_uris",
                "an authorization code app needs at least one redirect URI",
            ));
        }
        next.redirect_uris = policy.check("redirect_uris", uris).await?;
        changed.push("redirect URIs");
    }
    if let Some(uris) = edit.post_logout_redirect_uris {
        if !code_app && !uris.is_empty() {
            return Err(invalid(
                "post_logout_redirect_uris",
                "only authorization code apps have post-logout redirect URIs",
            ));
        }
        next.post_logout_redirect_uris = policy.check("post_logout_redirect_uris", uris).await?;
        changed.push("post-logout redirect URIs");
    }
    if let Some(required) = edit.require_pkce {
        if !code_app {
            return Err(invalid(
                "require_pkce",
                "only authorization code apps use PKCE",
            ));
        }
        next.require_pkce = required;
        changed.push(if required {
            "PKCE required"
        } else {
            "PKCE optional"
        });
    }
    if let Some(required) = edit.require_par {
        if !code_app {
            return Err(invalid(
                "require_par",
                "only authorization code apps make authorization requests",
            ));
        }
        next.require_par = required;
        changed.push(if required {
            "pushed authorization requests required"
        } else {
            "pushed authorization requests optional"
        });
    }
    if let Some(required) = edit.require_dpop {
        next.require_dpop = required;
        changed.push(if required {
            "DPoP proofs required"
        } else {
            "DPoP proofs optional"
        });
    }
    if let Some(audiences) = edit.exchange_audiences {
        if !current.allows(GrantType::TokenExchange) {
            return Err(invalid(
                "exchange_audiences",
                "only token exchange apps exchange tokens",
            ));
        }
        next.exchange_audiences =
            check_exchange_audiences(store, &current.org_id, &current.grant_types, audiences)
                .await?;
        changed.push("token exchange audiences");
    }
    if edit.scopes.is_some() || edit.default_scopes.is_some() || edit.default_audience.is_some() {
        let scopes = edit
            .scopes
            .map(str::to_owned)
            .unwrap_or(current.scopes.join(" "));
        let defaults = edit.default_scopes.map(str::to_owned).or_else(|| {
            edit.scopes
                .is_none()
                .then(|| current.default_scopes.join(" "))
        });
        let audience = match edit.default_audience {
            Some(a) => a.filter(|a| !a.trim().is_empty()).map(str::to_owned),
            None => current.default_audience.clone(),
        };
        let checked = check_app_scopes(
            store,
            &current.org_id,
            &scopes,
            defaults.as_deref(),
            audience.as_deref(),
        )
        .await?;
        next.scopes = checked.scopes.as_slice().to_vec();
        next.default_scopes = checked.default_scopes.as_slice().to_vec();
        next.default_audience = checked.audience;
        changed.push("scopes and audience");
    }
    if changed.is_empty() {
        return Ok(current);
    }
    let audit = AuditEvent::new(
        actor,
        &current.org_id,
        now,
        "app.update",
        client_id,
        format!("edited {} of `{}`", changed.join(", "), next.name),
    );
    store
        .update_app(&next, now, &audit)
        .await
        .map_err(not_found(format!("app `{client_id}`")))?;
    Ok(next)
}

/// Disables or enables an app. Disabling ends every token it holds; they stay
/// ended after it is enabled again (the generation moves on).
pub async fn set_app_status(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    client_id: &str,
    status: AppStatus,
) -> Result<App, AdminError> {
    let current = app(store, actor, client_id).await?;
    if current.status == status {
        return Ok(current);
    }
    let (action, verb) = match status {
        AppStatus::Active => ("app.enable", "enabled"),
        AppStatus::Disabled => ("app.disable", "disabled"),
    };
    let audit = AuditEvent::new(
        actor,
        &current.org_id,
        now,
        action,
        client_id,
        format!("{verb} app `{}`", current.name),
    );
    let generation = store
        .set_app_status(client_id, status, now, &audit)
        .await
        .map_err(not_found(format!("app `{client_id}`")))?;
    Ok(App {
        status,
        generation,
        ..current
    })
}

#[cfg(test)]
mod tests {
    use super::parse_grace;

    #[test]
    fn grace_periods_read_with_units_and_are_bounded() {
        assert_eq!(parse_grace("7d"), Ok(7 * 86_400));
        assert_eq!(parse_grace("12h"), Ok(12 * 3600));
        assert_eq!(parse_grace("30m"), Ok(1800));
        assert_eq!(parse_grace("90s"), Ok(90));
        assert_eq!(parse_grace("5"), Ok(5));
        assert_eq!(parse_grace("90d"), Ok(90 * 86_400));
        for bad in [
            "",
            "d",
            "0s",
            "91d",
            "-1d",
            "+1d",
            "7w",
            "1.5h",
            "7 d",
            "99999999999999999999d",
        ] {
            assert!(parse_grace(bad).is_err(), "{bad}");
        }
    }
}
