//! Administration of organizations, users, APIs and apps: the rules every admin
//! surface (CLI, console, admin API) shares, so they cannot drift apart. Inputs are
//! validated here into records; each change is one store call, hence one
//! transaction.

use crate::clock::UnixTime;
use crate::model::*;
use crate::password;
use crate::ports::{Store, StoreError};
use crate::redirect_uri::RedirectPolicy;
use crate::scope::ScopeSet;
use crate::secret::{self, ClientSecret};

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

fn invalid(field: &'static str, message: impl Into<String>) -> AdminError {
    AdminError::Invalid {
        field,
        message: message.into(),
    }
}

fn not_found(what: impl Into<String>) -> impl FnOnce(StoreError) -> AdminError {
    let what = what.into();
    move |e| match e {
        StoreError::NotFound => AdminError::NotFound(what),
        other => other.into(),
    }
}

fn bounded_text(field: &'static str, value: &str, max: usize) -> Result<String, AdminError> {
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
    store.insert_org(&org, &Role::defaults(&org.id)).await?;
    Ok(org)
}

pub async fn org(store: &dyn Store, slug: &str) -> Result<Org, AdminError> {
    store
        .org_by_slug(slug)
        .await
        .map_err(not_found(format!("organization `{slug}`")))
}

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
    pub org_slug: &'a str,
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub role: &'a str,
    pub groups: Vec<String>,
    pub password: Option<&'a str>,
}

pub async fn create_user(
    store: &dyn Store,
    now: UnixTime,
    new: NewUser<'_>,
) -> Result<User, AdminError> {
    let org = org(store, new.org_slug).await?;
    let email = normalize_email(new.email)?;
    store.role(&org.id, new.role).await.map_err(|e| match e {
        StoreError::NotFound => invalid(
            "role",
            format!(
                "`{}` is not a role of this organization (admin, developer, member, …)",
                new.role
            ),
        ),
        other => other.into(),
    })?;
    let name = new.name.map(|n| bounded_text("name", n, 100)).transpose()?;
    let mut groups = Vec::new();
    for g in &new.groups {
        let g = bounded_text("groups", g, 64)?;
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let password_hash = new
        .password
        .map(password::hash)
        .transpose()
        .map_err(|e| invalid("password", e.to_string()))?;
    let user = User {
        id: secret::random_id(),
        org_id: org.id,
        email,
        name,
        password_hash,
        role: new.role.to_owned(),
        groups,
        status: UserStatus::Active,
        created_at: now,
    };
    store.insert_user(&user).await?;
    Ok(user)
}

pub async fn user_in_org(store: &dyn Store, org_id: &str, email: &str) -> Result<User, AdminError> {
    let email = normalize_email(email)?;
    match store.user_by_email(&email).await {
        Ok(u) if u.org_id == org_id => Ok(u),
        Ok(_) | Err(StoreError::NotFound) => Err(AdminError::NotFound(format!(
            "user `{email}` in this organization"
        ))),
        Err(e) => Err(e.into()),
    }
}

pub async fn set_user_status(
    store: &dyn Store,
    now: UnixTime,
    email: &str,
    status: UserStatus,
) -> Result<User, AdminError> {
    let email = normalize_email(email)?;
    let user = store
        .user_by_email(&email)
        .await
        .map_err(not_found(format!("user `{email}`")))?;
    store.set_user_status(&user.id, status, now).await?;
    Ok(User { status, ..user })
}

pub struct NewApi<'a> {
    pub org_slug: &'a str,
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
    new: NewApi<'_>,
) -> Result<(Api, ClientSecret), AdminError> {
    let org = org(store, new.org_slug).await?;
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
        org_id: org.id,
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
    store.insert_api(&api).await?;
    Ok((api, secret))
}

pub struct NewApp<'a> {
    pub org_slug: &'a str,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub grant: GrantType,
    pub on_behalf_of: Option<&'a str>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: &'a str,
    pub default_scopes: Option<&'a str>,
    pub audience: Option<&'a str>,
}

pub async fn register_app(
    store: &dyn Store,
    now: UnixTime,
    policy: &RedirectPolicy,
    new: NewApp<'_>,
) -> Result<(App, ClientSecret), AdminError> {
    let org = org(store, new.org_slug).await?;
    let name = bounded_text("name", new.name, 100)?;
    let description = new
        .description
        .map(|d| bounded_text("description", d, 1000))
        .transpose()?;
    let apis = store.apis_for_org(&org.id).await?;
    let scopes = ScopeSet::parse(new.scopes).map_err(|e| invalid("scopes", e.description))?;
    for s in scopes.iter() {
        let defined = apis.iter().any(|a| a.scopes.iter().any(|x| x == s));
        if !defined && !crate::grant::client_credentials::OIDC_SCOPES.contains(&s) {
            return Err(invalid(
                "scopes",
                format!("`{s}` is not defined by any API of this organization"),
            ));
        }
    }
    let default_scopes = match new.default_scopes {
        Some(d) => ScopeSet::parse(d).map_err(|e| invalid("default_scopes", e.description))?,
        None => scopes.clone(),
    };
    if !default_scopes.is_subset_of(&scopes) {
        return Err(invalid(
            "default_scopes",
            "must be a subset of the app's scopes",
        ));
    }
    if let Some(aud) = new.audience
        && !apis.iter().any(|a| a.audience == aud)
    {
        return Err(invalid(
            "audience",
            format!("`{aud}` is not an API of this organization"),
        ));
    }
    let on_behalf_of = match (new.grant, new.on_behalf_of) {
        (GrantType::ClientCredentials, Some(email)) => {
            Some(acting_user_id(store, &org.id, email).await?)
        }
        (GrantType::ClientCredentials, None) => {
            return Err(invalid(
                "on_behalf_of",
                "a client credentials app acts on behalf of a user; name one",
            ));
        }
        (_, Some(_)) => {
            return Err(invalid(
                "on_behalf_of",
                "only client credentials apps act on behalf of a user",
            ));
        }
        (_, None) => None,
    };
    let (redirect_uris, post_logout_redirect_uris) = match new.grant {
        GrantType::AuthorizationCode => {
            if new.redirect_uris.is_empty() {
                return Err(invalid(
                    "redirect_uris",
                    "an authorization code app needs at least one redirect URI",
                ));
            }
            (
                policy.check("redirect_uris", new.redirect_uris).await?,
                policy
                    .check("post_logout_redirect_uris", new.post_logout_redirect_uris)
                    .await?,
            )
        }
        _ if !new.redirect_uris.is_empty() => {
            return Err(invalid(
                "redirect_uris",
                "only authorization code apps have redirect URIs",
            ));
        }
        _ => (Vec::new(), Vec::new()),
    };
    let mut grant_types = vec![new.grant];
    if new.grant == GrantType::AuthorizationCode {
        grant_types.push(GrantType::RefreshToken);
    }
    let secret = ClientSecret::generate();
    let app = App {
        id: secret::random_id(),
        client_id: secret::random_id(),
        org_id: org.id,
        name,
        description,
        grant_types,
        on_behalf_of,
        redirect_uris,
        post_logout_redirect_uris,
        scopes: scopes.as_slice().to_vec(),
        default_scopes: default_scopes.as_slice().to_vec(),
        default_audience: new.audience.map(str::to_owned),
        secret_hash: secret.digest(),
        generation: 1,
        status: AppStatus::Active,
        created_at: now,
    };
    store.insert_app(&app).await?;
    Ok((app, secret))
}

async fn acting_user_id(
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

pub async fn app(store: &dyn Store, client_id: &str) -> Result<App, AdminError> {
    store
        .app_by_client_id(client_id)
        .await
        .map_err(not_found(format!("app `{client_id}`")))
}

pub async fn rotate_secret(
    store: &dyn Store,
    now: UnixTime,
    client_id: &str,
) -> Result<ClientSecret, AdminError> {
    let secret = ClientSecret::generate();
    store
        .rotate_app_secret(client_id, &secret.digest(), now)
        .await
        .map_err(not_found(format!("app `{client_id}`")))?;
    Ok(secret)
}

pub async fn set_on_behalf_of(
    store: &dyn Store,
    now: UnixTime,
    client_id: &str,
    email: &str,
) -> Result<App, AdminError> {
    let current = app(store, client_id).await?;
    if !current.allows(GrantType::ClientCredentials) {
        return Err(invalid(
            "on_behalf_of",
            "only client credentials apps act on behalf of a user",
        ));
    }
    let user_id = acting_user_id(store, &current.org_id, email).await?;
    let generation = store
        .set_app_on_behalf_of(client_id, &user_id, now)
        .await
        .map_err(not_found(format!("app `{client_id}`")))?;
    Ok(App {
        on_behalf_of: Some(user_id),
        generation,
        ..current
    })
}

pub async fn delete_app(
    store: &dyn Store,
    now: UnixTime,
    client_id: &str,
) -> Result<(), AdminError> {
    store
        .delete_app(client_id, now)
        .await
        .map_err(not_found(format!("app `{client_id}`")))
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
