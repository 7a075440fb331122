//! What a grant needs to know about a client, gathered once: the app, its
//! organization, the user it acts for (with that user's permissions) and the APIs
//! it may ask for. The server caches these per client id and drops them when the
//! change feed says one of their parts changed.

use std::sync::Arc;

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::model::{Api, App, AppSecret, Org, User, UserStatus};
use crate::ports::{Store, StoreError, StoreResult};
use crate::secret;

#[derive(Debug, Clone)]
pub struct ActingUser {
    pub user: User,
    pub permissions: Vec<String>,
}

impl ActingUser {
    pub fn is_active(&self) -> bool {
        self.user.status == UserStatus::Active
    }
}

#[derive(Debug, Clone)]
pub struct ClientContext {
    pub app: App,
    pub org: Org,
    /// `None` when the app has no on-behalf user or that user no longer exists.
    pub acting: Option<ActingUser>,
    pub apis: Vec<Api>,
    /// The app's secrets, including retired ones whose tokens may not have
    /// expired yet (only their digests).
    pub secrets: Vec<AppSecret>,
}

impl ClientContext {
    pub async fn load(store: &dyn Store, client_id: &str) -> StoreResult<Self> {
        let app = store.app_by_client_id(client_id).await?;
        let org = store.org_by_id(&app.org_id).await?;
        let acting = match &app.on_behalf_of {
            Some(uid) => match store.user_by_id(uid).await {
                Ok(user) => Some(acting_user(store, user).await?),
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let apis = store.apis_for_org(&app.org_id).await?;
        let secrets = store.app_secrets(client_id).await?;
        Ok(Self {
            app,
            org,
            acting,
            apis,
            secrets,
        })
    }

    /// The active secret `presented` is, at `now`. Every active secret is
    /// compared (each in constant time), so the answer's timing does not tell
    /// which one matched.
    pub fn secret_matching(&self, presented: &str, now: UnixTime) -> Option<&AppSecret> {
        let mut found = None;
        for s in self.secrets.iter().filter(|s| s.active_at(now)) {
            if secret::verify(presented, &s.digest) && found.is_none() {
                found = Some(s);
            }
        }
        found
    }

    /// The secret with this id, if it still authenticates at `now`.
    pub fn active_secret(&self, id: &str, now: UnixTime) -> Option<&AppSecret> {
        self.secrets.iter().find(|s| s.id == id && s.active_at(now))
    }

    pub fn api_by_audience(&self, audience: &str) -> Option<&Api> {
        self.apis.iter().find(|a| a.audience == audience)
    }
}

/// A user with the permissions their role carries (none if the role is gone).
pub async fn acting_user(store: &dyn Store, user: User) -> StoreResult<ActingUser> {
    let permissions = match store.role(&user.org_id, &user.role).await {
        Ok(r) => r.permissions,
        Err(StoreError::NotFound) => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok(ActingUser { user, permissions })
}

/// Where grants and introspection get client contexts from: the store directly, or
/// a cache in front of it.
#[async_trait]
pub trait ContextSource: Send + Sync {
    async fn client_context(&self, client_id: &str) -> StoreResult<Arc<ClientContext>>;
}
