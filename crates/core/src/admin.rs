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
        .await?;
    Ok(org)
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
fn visible<T>(actor: &Actor, org_id: String, record: T, what: String) -> Result<T, AdminError> {
    if actor.may_act_on(&org_id) {
        Ok(record)
    } else {
        Err(AdminError::NotFound(what))
    }
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
    actor: &Actor,
    new: NewUser<'_>,
) -> Result<User, AdminError> {
    let (user, audit) = prepare_user(store, now, actor, new).await?;
    store.insert_user(&user, &audit).await?;
    Ok(user)
}

/// A checked user record and its audit event, not yet stored.
async fn prepare_user(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    new: NewUser<'_>,
) -> Result<(User, AuditEvent), AdminError> {
    let org = org(store, actor, new.org_slug).await?;
    let email = normalize_email(new.email)?;
    check_role(store, &org.id, new.role).await?;
    let name = new.name.map(|n| bounded_text("name", n, 100)).transpose()?;
    let groups = check_groups(&new.groups)?;
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
        tokens_valid_after: 0,
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

pub async fn users(
    store: &dyn Store,
    actor: &Actor,
    org_id: &str,
) -> Result<Vec<User>, AdminError> {
    org_of(store, actor, org_id).await?;
    Ok(store.list_users(org_id).await?)
}

pub async fn roles(
    store: &dyn Store,
    actor: &Actor,
    org_id: &str,
) -> Result<Vec<Role>, AdminError> {
    org_of(store, actor, org_id).await?;
    Ok(store.list_roles(org_id).await?)
}

/// The groups the organization's users are in, sorted and distinct.
pub async fn groups(
    store: &dyn Store,
    actor: &Actor,
    org_id: &str,
) -> Result<Vec<String>, AdminError> {
    let mut all: Vec<String> = users(store, actor, org_id)
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
    actor: &Actor,
    new: NewApi<'_>,
) -> Result<(Api, ClientSecret), AdminError> {
    let org = org(store, actor, new.org_slug).await?;
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
    let audit = AuditEvent::new(
        actor,
        &api.org_id,
        now,
        "api.create",
        &api.audience,
        format!("created API `{}` ({})", api.name, api.audience),
    );
    store.insert_api(&api, &audit).await?;
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

/// The scopes, default scopes and default audience an app may have: scopes
/// defined by the organization's APIs, OpenID Connect's, and `gatehouse:admin`.
struct AppScopes {
    scopes: ScopeSet,
    default_scopes: ScopeSet,
    audience: Option<String>,
}

async fn check_app_scopes(
    store: &dyn Store,
    org_id: &str,
    scopes: &str,
    default_scopes: Option<&str>,
    audience: Option<&str>,
) -> Result<AppScopes, AdminError> {
    let apis = store.apis_for_org(org_id).await?;
    let scopes = ScopeSet::parse(scopes).map_err(|e| invalid("scopes", e.description))?;
    for s in scopes.iter() {
        let defined = apis.iter().any(|a| a.scopes.iter().any(|x| x == s));
        if !defined
            && !crate::grant::client_credentials::OIDC_SCOPES.contains(&s)
            && s != SCOPE_ADMIN
        {
            return Err(invalid(
                "scopes",
                format!("`{s}` is not defined by any API of this organization"),
            ));
        }
    }
    let default_scopes = match default_scopes {
        Some(d) => ScopeSet::parse(d).map_err(|e| invalid("default_scopes", e.description))?,
        None => scopes.clone(),
    };
    if !default_scopes.is_subset_of(&scopes) {
        return Err(invalid(
            "default_scopes",
            "must be a subset of the app's scopes",
        ));
    }
    if let Some(aud) = audience
        && !apis.iter().any(|a| a.audience == aud)
    {
        return Err(invalid(
            "audience",
            format!("`{aud}` is not an API of this organization"),
        ));
    }
    Ok(AppScopes {
        scopes,
        default_scopes,
        audience: audience.map(str::to_owned),
    })
}

pub async fn register_app(
    store: &dyn Store,
    now: UnixTime,
    policy: &RedirectPolicy,
    actor: &Actor,
    new: NewApp<'_>,
) -> Result<(App, ClientSecret), AdminError> {
    let (app, secret, audit) = prepare_app(store, now, policy, actor, new, None).await?;
    store.insert_app(&app, &audit).await?;
    Ok((app, secret))
}

/// Which half of "a new user and the app acting for them" was refused.
#[derive(Debug, thiserror::Error)]
pub enum NewUserAppError {
    #[error("new user: {0}")]
    User(AdminError),
    #[error(transparent)]
    App(AdminError),
}

/// Creates a user and registers a client credentials app acting on their behalf
/// as one change: both are stored (and audited) in one transaction, or neither.
pub async fn register_app_for_new_user(
    store: &dyn Store,
    now: UnixTime,
    policy: &RedirectPolicy,
    actor: &Actor,
    user: NewUser<'_>,
    app: NewApp<'_>,
) -> Result<(App, ClientSecret, User), NewUserAppError> {
    if app.grant != GrantType::ClientCredentials {
        return Err(NewUserAppError::App(invalid(
            "on_behalf_of",
            "only client credentials apps act on behalf of a user",
        )));
    }
    if app.on_behalf_of.is_some() {
        return Err(NewUserAppError::App(invalid(
            "on_behalf_of",
            "name an existing user or a new one, not both",
        )));
    }
    if user.org_slug != app.org_slug {
        return Err(NewUserAppError::User(invalid(
            "org",
            "the new user must be in the app's organization",
        )));
    }
    let (user, user_audit) = prepare_user(store, now, actor, user)
        .await
        .map_err(NewUserAppError::User)?;
    let (app, secret, app_audit) = prepare_app(store, now, policy, actor, app, Some(&user))
        .await
        .map_err(NewUserAppError::App)?;
    match store
        .insert_app_with_user(&user, &user_audit, &app, &app_audit)
        .await
    {
        Ok(()) => Ok((app, secret, user)),
        // Only the email can clash: the app's ids are fresh random values.
        Err(e @ StoreError::Conflict(_)) => Err(NewUserAppError::User(e.into())),
        Err(e) => Err(NewUserAppError::App(e.into())),
    }
}

/// A checked app record, its secret and its audit event, not yet stored.
/// `new_user` is the (not yet stored) user a client credentials app acts for,
/// instead of `new.on_behalf_of`.
async fn prepare_app(
    store: &dyn Store,
    now: UnixTime,
    policy: &RedirectPolicy,
    actor: &Actor,
    new: NewApp<'_>,
    new_user: Option<&User>,
) -> Result<(App, ClientSecret, AuditEvent), AdminError> {
    let org = org(store, actor, new.org_slug).await?;
    let name = bounded_text("name", new.name, 100)?;
    let description = new
        .description
        .map(|d| bounded_text("description", d, 1000))
        .transpose()?;
    let AppScopes {
        scopes,
        default_scopes,
        audience,
    } = check_app_scopes(store, &org.id, new.scopes, new.default_scopes, new.audience).await?;
    let on_behalf_of = match (new.grant, new.on_behalf_of) {
        (GrantType::ClientCredentials, None) if let Some(u) = new_user => Some(u.id.clone()),
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
        default_audience: audience,
        secret_hash: secret.digest(),
        generation: 1,
        status: AppStatus::Active,
        // New authorization code apps must use PKCE unless an admin turns it off.
        require_pkce: new.grant == GrantType::AuthorizationCode,
        created_at: now,
        last_used_at: None,
    };
    let audit = AuditEvent::new(
        actor,
        &app.org_id,
        now,
        "app.register",
        &app.client_id,
        format!(
            "registered {} app `{}`",
            new.grant.as_str().replace('_', " "),
            app.name
        ),
    );
    Ok((app, secret, audit))
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

/// The app by client id, if the actor may see it.
pub async fn app(store: &dyn Store, actor: &Actor, client_id: &str) -> Result<App, AdminError> {
    let what = format!("app `{client_id}`");
    let app = store
        .app_by_client_id(client_id)
        .await
        .map_err(not_found(&what))?;
    visible(actor, app.org_id.clone(), app, what)
}

pub async fn apps(store: &dyn Store, actor: &Actor, org_id: &str) -> Result<Vec<App>, AdminError> {
    org_of(store, actor, org_id).await?;
    Ok(store.apps_for_org(org_id).await?)
}

/// The organization's audit log, newest first.
pub async fn audit_log(
    store: &dyn Store,
    actor: &Actor,
    org_id: &str,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditEvent>, AdminError> {
    org_of(store, actor, org_id).await?;
    Ok(store
        .audit_events(org_id, before, limit.clamp(1, 500))
        .await?)
}

/// A new secret: the old one stops working and every token issued so far ends.
pub async fn rotate_secret(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    client_id: &str,
) -> Result<ClientSecret, AdminError> {
    let current = app(store, actor, client_id).await?;
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
