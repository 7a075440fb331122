//! Registering apps (OAuth clients) and reading them: which scopes, audience,
//! redirect URIs and on-behalf user an app may have.

use super::users::{NewUser, acting_user_id, prepare_user};
use super::{AdminError, authorized, bounded_text, invalid, not_found, visible};
use crate::clock::UnixTime;
use crate::model::{Actor, App, AppStatus, AuditEvent, GrantType, Org, SCOPE_ADMIN, User};
use crate::ports::{Store, StoreError};
use crate::redirect_uri::RedirectPolicy;
use crate::scope::ScopeSet;
use crate::secret::{self, ClientSecret};

pub struct NewApp<'a> {
    /// The organization, loaded (and authorized) by [`super::org`].
    pub org: &'a Org,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub grant: GrantType,
    pub on_behalf_of: Option<&'a str>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: &'a str,
    pub default_scopes: Option<&'a str>,
    pub audience: Option<&'a str>,
    /// The APIs a token exchange app may exchange tokens for (RFC 8693).
    pub exchange_audiences: Vec<String>,
}

/// At most this many exchange audiences per app.
pub const MAX_EXCHANGE_AUDIENCES: usize = 32;

/// The exchange audiences of a token exchange app: APIs of its organization,
/// each once, in the order given. Only token exchange apps have any.
pub(super) async fn check_exchange_audiences(
    store: &dyn Store,
    org_id: &str,
    grant_types: &[GrantType],
    audiences: Vec<String>,
) -> Result<Vec<String>, AdminError> {
    let field = "exchange_audiences";
    if audiences.is_empty() {
        return Ok(audiences);
    }
    if !grant_types.contains(&GrantType::TokenExchange) {
        return Err(invalid(field, "only token exchange apps exchange tokens"));
    }
    if audiences.len() > MAX_EXCHANGE_AUDIENCES {
        return Err(invalid(
            field,
            format!("at most {MAX_EXCHANGE_AUDIENCES} audiences"),
        ));
    }
    let apis = store.apis_for_org(org_id).await?;
    let mut out: Vec<String> = Vec::with_capacity(audiences.len());
    for aud in audiences {
        if !apis.iter().any(|a| a.audience == aud) {
            let shown: String = aud.chars().filter(|c| !c.is_control()).take(200).collect();
            return Err(invalid(
                field,
                format!("`{shown}` is not an API of this organization"),
            ));
        }
        if !out.contains(&aud) {
            out.push(aud);
        }
    }
    Ok(out)
}

/// The scopes, default scopes and default audience an app may have: scopes
/// defined by the organization's APIs, OpenID Connect's, and `gatehouse:admin`.
pub(super) struct AppScopes {
    pub(super) scopes: ScopeSet,
    pub(super) default_scopes: ScopeSet,
    pub(super) audience: Option<String>,
}

pub(super) async fn check_app_scopes(
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
    if user.org.id != app.org.id {
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
pub(super) async fn prepare_app(
    store: &dyn Store,
    now: UnixTime,
    policy: &RedirectPolicy,
    actor: &Actor,
    new: NewApp<'_>,
    new_user: Option<&User>,
) -> Result<(App, ClientSecret, AuditEvent), AdminError> {
    authorized(actor, new.org)?;
    let org = new.org;
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
    // People's apps may refresh (with `offline_access`).
    if matches!(
        new.grant,
        GrantType::AuthorizationCode | GrantType::DeviceCode
    ) {
        grant_types.push(GrantType::RefreshToken);
    }
    let exchange_audiences =
        check_exchange_audiences(store, &org.id, &grant_types, new.exchange_audiences).await?;
    let secret = ClientSecret::generate();
    let app = App {
        id: secret::random_id(),
        client_id: secret::random_id(),
        org_id: org.id.clone(),
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
        require_par: false,
        require_dpop: false,
        exchange_audiences,
        created_at: now,
        last_used_at: None,
        client_keys: None,
    };
    let audit = AuditEvent::new(
        actor,
        &app.org_id,
        now,
        "app.register",
        &app.client_id,
        format!("registered {} app `{}`", grant_name(new.grant), app.name),
    );
    Ok((app, secret, audit))
}

/// How the audit log names a grant type.
fn grant_name(g: GrantType) -> String {
    match g {
        GrantType::TokenExchange => "token exchange".into(),
        GrantType::DeviceCode => "device code".into(),
        other => other.as_str().replace('_', " "),
    }
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

/// The organization's apps.
pub async fn apps(store: &dyn Store, actor: &Actor, org: &Org) -> Result<Vec<App>, AdminError> {
    authorized(actor, org)?;
    Ok(store.apps_for_org(&org.id).await?)
}
