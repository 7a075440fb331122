//! Shared state handed to every handler: a cheap clone around one `Arc`.

use std::sync::Arc;

use gatehouse_core::clock::Clock;
use gatehouse_core::keyring::KeyRing;
use gatehouse_core::ports::Store;

use crate::cache::ClientCache;
use crate::config::ServerConfig;
use crate::ratelimit::FailureLimiter;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeyRing>,
    pub clock: Arc<dyn Clock>,
    pub config: ServerConfig,
    pub clients: ClientCache,
    pub limiter: FailureLimiter,
    /// Failed sign-ins, per account (email) and per address.
    pub login_limiter: FailureLimiter,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state and starts the background tasks that keep it fresh (cache
    /// invalidation from the change feed, limiter pruning). They stop when the
    /// last clone of the state is dropped.
    pub async fn start(
        store: Arc<dyn Store>,
        keys: KeyRing,
        clock: Arc<dyn Clock>,
        config: ServerConfig,
    ) -> Self {
        let clients = ClientCache::new(store.clone(), config.cache_stale_after);
        let limiter = FailureLimiter::new(
            config.failures_per_client,
            config.failures_per_address,
            config.failure_window,
        );
        let login_limiter = FailureLimiter::new(
            config.login_failures_per_account,
            config.login_failures_per_address,
            config.login_window,
        );
        let state = AppState(Arc::new(Inner {
            store,
            keys: Arc::new(keys),
            clock,
            config,
            clients,
            limiter,
            login_limiter,
        }));
        state.clients.spawn_watcher(state.config.change_poll).await;
        state.limiter.spawn_pruner();
        state.login_limiter.spawn_pruner();
        state
    }
}
