//! TEMPORARY: the admin core contract's signatures (actor-confined reads and
//! writes) over today's `gatehouse_core::admin`, so the handlers are written once.
//! Delete this module when main has the contract: the handlers then import the
//! same names from `gatehouse_core::admin` / `gatehouse_core::model`. What today's
//! core cannot do (edit an app, disable it, change a user's role or groups, the
//! audit log) is [`pending`]: 501, never a half-done imitation.

use gatehouse_core::admin::{self, AdminError, NewApp, NewUser};
use gatehouse_core::clock::UnixTime;
use gatehouse_core::model::{App, Org, Role, User, UserStatus};
use gatehouse_core::ports::{Store, StoreError};
use gatehouse_core::secret::ClientSecret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    User,
    App,
    Operator,
}

#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
    pub name: String,
    pub org_id: Option<String>,
    pub address: String,
}

impl Actor {
    pub fn may_act_on(&self, org_id: &str) -> bool {
        match &self.org_id {
            Some(o) => o == org_id,
            None => self.kind == ActorKind::Operator,
        }
    }
}

/// What today's core lacks; see the module doc.
pub fn pending(what: &str) -> super::problem::ApiError {
    super::problem::ApiError::NotImplemented(format!(
        "{what} is not available yet (it needs the admin core contract)"
    ))
}

fn confined<T>(actor: &Actor, org_id: &str, what: String, v: T) -> Result<T, AdminError> {
    if actor.may_act_on(org_id) {
        Ok(v)
    } else {
        Err(AdminError::NotFound(what))
    }
}

pub async fn org_of(store: &dyn Store, actor: &Actor, org_id: &str) -> Result<Org, AdminError> {
    let what = "organization".to_owned();
    confined(actor, org_id, what.clone(), ())?;
    store.org_by_id(org_id).await.map_err(|e| match e {
        StoreError::NotFound => AdminError::NotFound(what),
        other => other.into(),
    })
}

pub async fn app(store: &dyn Store, actor: &Actor, client_id: &str) -> Result<App, AdminError> {
    let a = admin::app(store, client_id).await?;
    let org = a.org_id.clone();
    confined(actor, &org, format!("app `{client_id}`"), a)
}

pub async fn apps(store: &dyn Store, actor: &Actor, org_id: &str) -> Result<Vec<App>, AdminError> {
    confined(actor, org_id, "organization".into(), ())?;
    Ok(store.apps_for_org(org_id).await?)
}

pub async fn user(store: &dyn Store, actor: &Actor, user_id: &str) -> Result<User, AdminError> {
    let what = format!("user `{user_id}`");
    let u = store.user_by_id(user_id).await.map_err(|e| match e {
        StoreError::NotFound => AdminError::NotFound(what.clone()),
        other => other.into(),
    })?;
    let org = u.org_id.clone();
    confined(actor, &org, what, u)
}

pub async fn users(
    store: &dyn Store,
    actor: &Actor,
    org_id: &str,
) -> Result<Vec<User>, AdminError> {
    confined(actor, org_id, "organization".into(), ())?;
    Ok(store.list_users(org_id).await?)
}

pub async fn roles(
    store: &dyn Store,
    actor: &Actor,
    org_id: &str,
) -> Result<Vec<Role>, AdminError> {
    confined(actor, org_id, "organization".into(), ())?;
    Ok(store.list_roles(org_id).await?)
}

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

pub async fn create_user(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    new: NewUser<'_>,
) -> Result<User, AdminError> {
    let org = admin::org(store, new.org_slug).await?;
    confined(actor, &org.id, "organization".into(), ())?;
    admin::create_user(store, now, new).await
}

pub async fn set_user_status(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    user_id: &str,
    status: UserStatus,
) -> Result<User, AdminError> {
    let u = user(store, actor, user_id).await?;
    admin::set_user_status(store, now, &u.email, status).await
}

pub async fn register_app(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    new: NewApp<'_>,
) -> Result<(App, ClientSecret), AdminError> {
    let org = admin::org(store, new.org_slug).await?;
    confined(actor, &org.id, "organization".into(), ())?;
    admin::register_app(store, now, new).await
}

pub async fn rotate_secret(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    client_id: &str,
) -> Result<ClientSecret, AdminError> {
    app(store, actor, client_id).await?;
    admin::rotate_secret(store, now, client_id).await
}

pub async fn set_on_behalf_of(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    client_id: &str,
    email: &str,
) -> Result<App, AdminError> {
    app(store, actor, client_id).await?;
    admin::set_on_behalf_of(store, now, client_id, email).await
}

pub async fn delete_app(
    store: &dyn Store,
    now: UnixTime,
    actor: &Actor,
    client_id: &str,
) -> Result<(), AdminError> {
    app(store, actor, client_id).await?;
    admin::delete_app(store, now, client_id).await
}
