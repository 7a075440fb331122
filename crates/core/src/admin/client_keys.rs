//! Apps that authenticate with `private_key_jwt` (RFC 7523): registering one
//! with its public keys (a JWKS inline, or a `jwks_uri` held to the redirect-URI
//! policy, so the server never fetches from a private or loopback address), and
//! replacing its keys. Such an app has no secret at all.

use super::apps::{NewApp, prepare_app};
use super::{AdminError, invalid, not_found};
use crate::client_assertion::ClientKeySet;
use crate::clock::UnixTime;
use crate::model::{Actor, App, AuditEvent, ClientKeys};
use crate::ports::Store;
use crate::redirect_uri::RedirectPolicy;

/// The keys as they will be stored: an inline JWKS must hold only usable public
/// signing keys (re-serialised compactly); a `jwks_uri` must pass the
/// redirect-URI policy (https on a public DNS name, or loopback in development
/// mode).
pub async fn check_client_keys(
    policy: &RedirectPolicy,
    keys: ClientKeys,
) -> Result<ClientKeys, AdminError> {
    match keys {
        ClientKeys::Jwks(text) => {
            ClientKeySet::parse_registered(&text).map_err(|why| invalid("jwks", why))?;
            let compact = serde_json::from_str::<serde_json::Value>(&text)
                .map(|v| v.to_string())
                .map_err(|_| invalid("jwks", "is not JSON"))?;
            Ok(ClientKeys::Jwks(compact))
        }
        ClientKeys::JwksUri(uri) => {
            let mut checked = policy.check("jwks_uri", vec![uri]).await?;
            checked
                .pop()
                .map(ClientKeys::JwksUri)
                .ok_or_else(|| invalid("jwks_uri", "must not be empty"))
        }
    }
}

/// Registers an app that authenticates with `private_key_jwt` instead of a
/// secret: the same rules as [`super::register_app`], plus its keys; no secret
/// is made.
pub async fn register_key_app(
    store: &dyn Store,
    now: UnixTime,
    policy: &RedirectPolicy,
    actor: &Actor,
    new: NewApp<'_>,
    keys: ClientKeys,
) -> Result<App, AdminError> {
    let keys = check_client_keys(policy, keys).await?;
    let (mut app, _no_secret, mut audit) =
        prepare_app(store, now, policy, actor, new, None).await?;
    app.secret_hash = String::new();
    app.client_keys = Some(Box::new(keys));
    audit
        .detail
        .push_str(" (authenticates with private_key_jwt)");
    store.insert_app(&app, &audit).await?;
    Ok(app)
}

/// Replaces a `private_key_jwt` app's keys (inline JWKS or `jwks_uri`); every
/// instance uses the new ones from the next request (the change feed). Tokens
/// issued so far stay: they were issued to the same app.
pub async fn set_client_keys(
    store: &dyn Store,
    now: UnixTime,
    policy: &RedirectPolicy,
    actor: &Actor,
    client_id: &str,
    keys: ClientKeys,
) -> Result<App, AdminError> {
    let current = super::app(store, actor, client_id).await?;
    if !current.uses_private_key_jwt() {
        return Err(invalid(
            if matches!(keys, ClientKeys::Jwks(_)) {
                "jwks"
            } else {
                "jwks_uri"
            },
            "this app authenticates with a client secret; register a new app with private_key_jwt",
        ));
    }
    let keys = check_client_keys(policy, keys).await?;
    let what = match &keys {
        ClientKeys::Jwks(_) => "its JWKS".to_owned(),
        ClientKeys::JwksUri(u) => format!("its jwks_uri to `{u}`"),
    };
    let mut next = current;
    next.client_keys = Some(Box::new(keys));
    let audit = AuditEvent::new(
        actor,
        &next.org_id,
        now,
        "app.set_keys",
        client_id,
        format!("set the public keys of `{}`: {what}", next.name),
    );
    store
        .update_app(&next, now, &audit)
        .await
        .map_err(not_found(format!("app `{client_id}`")))?;
    Ok(next)
}

/// Refuses a secret operation on an app that has no secret.
pub(super) fn has_secret(app: &App) -> Result<(), AdminError> {
    if app.uses_private_key_jwt() {
        return Err(AdminError::Conflict(format!(
            "app `{}` authenticates with private_key_jwt and has no client secret; change its keys instead",
            app.client_id
        )));
    }
    Ok(())
}

/// The keys a registration asks for: `Some` for a `private_key_jwt` app (its
/// `jwks` or its `jwks_uri`, exactly one), `None` for an app with a secret.
/// `jwks`/`jwks_uri` without a method mean `private_key_jwt`.
pub fn requested_keys(
    method: Option<&str>,
    jwks: Option<String>,
    jwks_uri: Option<String>,
) -> Result<Option<ClientKeys>, AdminError> {
    let field = "token_endpoint_auth_method";
    let keys = match (jwks, jwks_uri) {
        (Some(_), Some(_)) => return Err(invalid("jwks", "give jwks or jwks_uri, not both")),
        (Some(j), None) => Some(ClientKeys::Jwks(j)),
        (None, Some(u)) => Some(ClientKeys::JwksUri(u)),
        (None, None) => None,
    };
    match method {
        None => Ok(keys),
        Some(crate::client_assertion::PRIVATE_KEY_JWT) => keys.map(Some).ok_or_else(|| {
            invalid(
                "jwks",
                "a private_key_jwt app needs its public keys: jwks or jwks_uri",
            )
        }),
        Some("client_secret_basic" | "client_secret_post") if keys.is_some() => Err(invalid(
            field,
            "jwks and jwks_uri are for private_key_jwt apps",
        )),
        Some("client_secret_basic" | "client_secret_post") => Ok(None),
        Some(_) => Err(invalid(
            field,
            "must be client_secret_basic, client_secret_post or private_key_jwt",
        )),
    }
}
