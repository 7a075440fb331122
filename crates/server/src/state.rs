//! Shared state handed to every handler: a cheap clone around one `Arc`.

use std::sync::{Arc, RwLock, Weak};

use gatehouse_core::admin::TTL_RANGE;
use gatehouse_core::clock::{Clock, UnixTime};
use gatehouse_core::jose::KeyEncryptionKey;
use gatehouse_core::keyring::KeyRing;
use gatehouse_core::ports::Store;
use gatehouse_core::redirect_uri::RedirectPolicy;

use crate::cache::ClientCache;
use crate::config::ServerConfig;
use crate::introspection_cache::IntrospectionCache;
use crate::ratelimit::FailureLimiter;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// Expired sessions ended per transaction of the sweep.
const SESSION_SWEEP_BATCH: u32 = 200;
/// Batches per housekeeping round and instance (10,000 sessions): a larger
/// backlog (after downtime) drains over the next rounds.
const SESSION_SWEEP_BATCHES: u32 = 50;

pub struct Inner {
    pub store: Arc<dyn Store>,
    /// Swapped whole when the change feed reports a key change (rotation, or
    /// another instance making keys), so every instance publishes the same JWKS.
    keys: RwLock<Arc<KeyRing>>,
    /// Key reloads asked for so far, and (under the lock) how many of those the
    /// current ring covers. Reloads run one at a time: run side by side, an
    /// older read could finish last and put back a ring without the newest
    /// key, or with a key revoked since, until the next key change.
    keys_wanted: std::sync::atomic::AtomicU64,
    keys_loaded: tokio::sync::Mutex<u64>,
    kek: Arc<KeyEncryptionKey>,
    pub clock: Arc<dyn Clock>,
    pub config: ServerConfig,
    pub clients: ClientCache,
    /// Introspecting APIs and active tokens' answers, following the feed through `clients`.
    pub introspection: IntrospectionCache,
    pub limiter: FailureLimiter,
    /// Failed sign-ins, per account (email) and per address.
    pub login_limiter: FailureLimiter,
    /// Wrong device user codes (RFC 8628), per person and per address.
    pub device_limiter: FailureLimiter,
    /// Argon2 checks running at once (one per core).
    pub password_checks: tokio::sync::Semaphore,
    /// Apps' last use and daily counts, written out by the housekeeping task.
    pub usage: crate::usage::UsageLog,
    /// What every admin surface registers redirect URIs with.
    pub redirect_policy: RedirectPolicy,
    /// Turns true when the server starts shutting down: long polls answer at once.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// What `/metrics` reports ([`crate::metrics`]).
    pub metrics: crate::metrics::Metrics,
    /// Wakes the back-channel logout worker ([`crate::backchannel`]).
    pub backchannel_wake: Arc<tokio::sync::Notify>,
    /// DPoP proofs' replay cache and server nonces ([`crate::dpop`]).
    pub dpop: crate::dpop::DpopState,
    /// `private_key_jwt` apps' parsed public keys, following the feed through `clients`.
    pub client_keys: crate::client_keys::ClientKeyCache,
    /// WebAuthn for passkeys, relying party = the issuer's host; `None` when
    /// that host is an IP address (browsers accept only domain names).
    pub webauthn: Option<Arc<webauthn_rs::Webauthn>>,
    /// Password reset requests, per address typed and per client address.
    pub reset_limiter: FailureLimiter,
    /// Organizations' identity providers' discovery and keys ([`crate::upstream`]).
    pub upstream: crate::upstream::UpstreamCache,
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
        kek: Arc<KeyEncryptionKey>,
        clock: Arc<dyn Clock>,
        config: ServerConfig,
    ) -> Self {
        let clients = ClientCache::new(store.clone(), config.cache_stale_after);
        let introspection = IntrospectionCache::default();
        clients.add_listener(introspection.listener());
        let limiter = FailureLimiter::shared(
            config.failures_per_client,
            config.failures_per_address,
            config.failure_window,
            store.clone(),
            clock.clone(),
            "client",
        );
        let login_limiter = FailureLimiter::shared(
            config.login_failures_per_account,
            config.login_failures_per_address,
            config.login_window,
            store.clone(),
            clock.clone(),
            "login",
        );
        let device_limiter = FailureLimiter::shared(
            crate::routes::device::WRONG_CODES_PER_PERSON,
            crate::routes::device::WRONG_CODES_PER_ADDRESS,
            crate::routes::device::WINDOW,
            store.clone(),
            clock.clone(),
            "device",
        );
        let reset_limiter = FailureLimiter::shared(
            crate::password::forgot::PER_EMAIL,
            crate::password::forgot::PER_ADDRESS,
            crate::password::forgot::WINDOW,
            store.clone(),
            clock.clone(),
            "reset",
        );
        let redirect_policy = crate::dns::redirect_policy_or_refusing(&config);
        let client_keys = crate::client_keys::ClientKeyCache::new(&redirect_policy);
        clients.add_listener(client_keys.listener());
        let dpop = crate::dpop::DpopState::new(&kek);
        let webauthn = crate::passkey::relying_party(&config.issuer).map(Arc::new);
        let upstream = crate::upstream::UpstreamCache::new(&redirect_policy);
        // Off, nothing is queued (the store's enqueues check it) or sent.
        store.set_logouts_enabled(config.backchannel.enabled);
        let state = AppState(Arc::new(Inner {
            store,
            keys: RwLock::new(Arc::new(keys)),
            keys_wanted: Default::default(),
            keys_loaded: Default::default(),
            kek,
            clock,
            config,
            clients,
            introspection,
            limiter,
            login_limiter,
            device_limiter,
            password_checks: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            usage: Default::default(),
            redirect_policy,
            stopping: tokio::sync::watch::Sender::new(false),
            metrics: Default::default(),
            backchannel_wake: Default::default(),
            dpop,
            client_keys,
            webauthn,
            reset_limiter,
            upstream,
        }));
        let weak: Weak<Inner> = Arc::downgrade(&state.0);
        let on_keys = Box::new(move || {
            if let Some(inner) = weak.upgrade() {
                tokio::spawn(async move { inner.reload_keys().await });
            }
        });
        state
            .clients
            .spawn_watcher(state.config.change_poll, on_keys)
            .await;
        // Keys another instance stored after ours were loaded but before the
        // watcher took its starting point would be missed by both: read them
        // once more now that the watcher sees everything after that point.
        state.reload_keys().await;
        state.limiter.spawn_pruner();
        state.login_limiter.spawn_pruner();
        state.device_limiter.spawn_pruner();
        state.reset_limiter.spawn_pruner();
        state.spawn_housekeeping();
        if state.config.backchannel.enabled && state.config.backchannel.deliver {
            crate::backchannel::spawn(
                Arc::downgrade(&state.0),
                state.backchannel_wake.clone(),
                state.config.backchannel.poll,
            );
        }
        state
    }
}

impl AppState {
    /// For scrape-time collectors, which must not keep the state alive.
    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.0
    }

    /// Deletes expired codes, tokens, sessions and drained failure buckets every
    /// minute (and lets the store compact itself), and keeps the signing keys'
    /// rotation schedule, until the state is dropped.
    fn spawn_housekeeping(&self) {
        let weak: Weak<Inner> = Arc::downgrade(&self.0);
        let every = self.config.housekeeping_every;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                inner.flush_usage().await;
                // A secret's row is kept while tokens issued with it may live.
                let outlived = inner.clock.now().saturating_sub(*TTL_RANGE.end() + 3600);
                if let Err(e) = inner.store.purge_ended_secrets(outlived).await {
                    tracing::warn!(error = %e, "housekeeping failed; will retry");
                }
                inner.sweep_expired_sessions().await;
                match inner.store.purge_expired_tokens(inner.clock.now()).await {
                    Ok(n) if n > 0 => tracing::info!(purged = n, "expired records removed"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "housekeeping failed; will retry"),
                }
                inner.rotate_keys_on_schedule().await;
            }
        });
    }
}

impl Inner {
    /// Writes the apps' use noted in memory to the store (housekeeping, and once
    /// more at shutdown); what cannot be written is kept for the next time.
    pub async fn flush_usage(&self) {
        let taken = self.usage.take();
        if let Err(e) = self.store.record_app_use(&taken.uses).await {
            tracing::warn!(error = %e, "cannot record apps' last use; will retry");
            self.usage.restore_uses(taken.uses);
        }
        let secret_uses: Vec<(String, UnixTime)> = taken
            .secret_uses
            .iter()
            .map(|u| (u.secret_id.clone(), u.at))
            .collect();
        if let Err(e) = self.store.record_secret_use(&secret_uses).await {
            tracing::warn!(error = %e, "cannot record secrets' last use; will retry");
            self.usage.restore_secret_uses(taken.secret_uses);
        }
        if let Err(e) = self.store.add_app_usage(&taken.counts).await {
            tracing::warn!(error = %e, "cannot record apps' usage counts; will retry");
            self.usage.restore_counts(taken.counts);
        }
    }

    /// Ends the sessions whose lifetime ran out, telling their apps over the
    /// back channel (a person who never comes back still signs out of them).
    /// Each batch is one short transaction; a round takes batches until one
    /// comes back short, up to [`SESSION_SWEEP_BATCHES`], so a busy server
    /// keeps up without one long write. Every instance sweeps; the store lets
    /// one delete each session, and only that one enqueues its logouts.
    async fn sweep_expired_sessions(&self) {
        let (mut swept, mut logouts) = (0, 0);
        for _ in 0..SESSION_SWEEP_BATCHES {
            match self
                .store
                .sweep_expired_sessions(self.clock.now(), SESSION_SWEEP_BATCH)
                .await
            {
                Ok((n, l)) => {
                    swept += n;
                    logouts += l;
                    if n < u64::from(SESSION_SWEEP_BATCH) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "expired sessions not swept; will retry");
                    break;
                }
            }
        }
        if swept > 0 {
            tracing::info!(swept, logouts, "expired sessions ended");
        }
        if logouts > 0 {
            self.backchannel_wake.notify_one();
        }
    }

    /// The key-encryption key, for sealing what must survive a trip through the
    /// browser to any instance (the console's one-time secret page).
    pub fn kek(&self) -> &KeyEncryptionKey {
        &self.kek
    }

    /// The current key ring (cheap: one `Arc` clone).
    pub fn keys(&self) -> Arc<KeyRing> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Publishes next keys and promotes them when due (every instance runs
    /// this; the store lets one win). The change feed reloads the rings.
    async fn rotate_keys_on_schedule(&self) {
        let Some(period) = self.config.key_rotation_period else {
            return;
        };
        let now = self.clock.now();
        match KeyRing::rotate_on_schedule(self.store.as_ref(), &self.kek, period, now).await {
            Ok(kids) if !kids.is_empty() => {
                tracing::info!(?kids, "signing keys rotated on schedule")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "scheduled key rotation failed; will retry"),
        }
    }

    /// Reloads the ring from the store. Callers that arrive while a reload
    /// runs are served by one more reload after it (which reads after their
    /// key change was committed), not one each.
    async fn reload_keys(&self) {
        use std::sync::atomic::Ordering;
        let wanted = self.keys_wanted.fetch_add(1, Ordering::AcqRel) + 1;
        let mut loaded = self.keys_loaded.lock().await;
        if *loaded >= wanted {
            // A reload that started after this call asked has finished.
            return;
        }
        let covers = self.keys_wanted.load(Ordering::Acquire);
        match KeyRing::load(self.store.as_ref(), &self.kek).await {
            Ok(ring) => {
                tracing::info!(keys = ring.keys().len(), "signing keys reloaded");
                let mut slot = match self.keys.write() {
                    Ok(w) => w,
                    Err(poisoned) => poisoned.into_inner(),
                };
                *slot = Arc::new(ring);
                drop(slot);
                *loaded = covers;
                // A JWT checked against the old ring may answer otherwise now.
                self.introspection.clear();
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not reload signing keys; keeping the current ones")
            }
        }
    }
}
