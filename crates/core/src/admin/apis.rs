//! APIs (resource servers): what their tokens look like and which scopes they define.

use super::{AdminError, authorized, bounded_text, invalid};
use crate::clock::UnixTime;
use crate::model::{Actor, Api, AuditEvent, Org, SigningAlg, TokenFormat};
use crate::ports::Store;
use crate::scope::ScopeSet;
use crate::secret::{self, ClientSecret};

pub struct NewApi<'a> {
    /// The organization, loaded (and authorized) by [`super::org`].
    pub org: &'a Org,
    pub name: &'a str,
    pub audience: &'a str,
    pub scopes: &'a str,
    pub token_format: TokenFormat,
    pub signing_alg: SigningAlg,
    pub access_token_ttl: i64,
}

pub const TTL_RANGE: std::ops::RangeInclusive<i64> = 30..=86_400;

pub async fn create_api(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    new: NewApi<'_>,
) -> Result<(Api, ClientSecret), AdminError> {
    authorized(actor, new.org)?;
    let name = bounded_text("name", new.name, 100)?;
    let audience = bounded_text("audience", new.audience, 255)?;
    if audience.chars().any(char::is_whitespace) {
        return Err(invalid("audience", "must not contain spaces"));
    }
    let scopes = ScopeSet::parse(new.scopes).map_err(|e| invalid("scopes", e.description))?;
    if scopes.is_empty() {
        return Err(invalid("scopes", "an API defines at least one scope"));
    }
    if let Some(s) = scopes
        .iter()
        .find(|s| crate::grant::client_credentials::OIDC_SCOPES.contains(s))
    {
        return Err(invalid(
            "scopes",
            format!("`{s}` is an OpenID Connect scope, not an API scope"),
        ));
    }
    if !TTL_RANGE.contains(&new.access_token_ttl) {
        return Err(invalid(
            "access_token_ttl",
            format!(
                "must be between {} and {} seconds",
                TTL_RANGE.start(),
                TTL_RANGE.end()
            ),
        ));
    }
    let secret = ClientSecret::generate();
    let api = Api {
        id: secret::random_id(),
        org_id: new.org.id.clone(),
        name,
        audience,
        scopes: scopes.as_slice().to_vec(),
        token_format: new.token_format,
        signing_alg: new.signing_alg,
        access_token_ttl: new.access_token_ttl,
        client_id: secret::random_id(),
        secret_hash: secret.digest(),
        created_at: now,
    };
    let audit = AuditEvent::new(
        actor,
        &api.org_id,
        now,
        "api.create",
        &api.audience,
        format!("created API `{}` ({})", api.name, api.audience),
    );
    store
        .insert_api(&api, &audit)
        .await
        .map_err(super::already_exists("API", &api.audience))?;
    Ok((api, secret))
}
