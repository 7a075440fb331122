//! Waking readers of the change feed on `NOTIFY`. One background task per store
//! (started by the first `change_notified` call) holds a listening connection
//! and bumps a counter on every notification for this store's schema; each
//! waiter watches the counter. A lost connection is re-established with backoff,
//! and because notifications sent meanwhile are lost, waiters are woken once it
//! is back so they read the feed.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::CHANGE_CHANNEL;

/// A listener on a one-connection pool of its own, so it never holds one of the
/// store's connections, `LISTEN`ing on [`CHANGE_CHANNEL`].
pub(crate) async fn listener(connect: &PgConnectOptions) -> Result<PgListener, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(connect.clone())
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANGE_CHANNEL).await?;
    Ok(listener)
}

pub(crate) struct Notifier {
    /// Bumped on every notification for this store (and after a reconnect).
    wake: watch::Sender<u64>,
    /// Whether the task is listening right now.
    listening: watch::Sender<bool>,
    task: Mutex<Option<AbortHandle>>,
}

impl Default for Notifier {
    fn default() -> Self {
        Self {
            wake: watch::Sender::new(0),
            listening: watch::Sender::new(false),
            task: Mutex::new(None),
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}

impl Notifier {
    /// Resolves on the next notification for `schema` (or reconnect) after the call.
    pub(crate) async fn notified(self: &Arc<Self>, connect: &PgConnectOptions, schema: &Arc<str>) {
        // Subscribe before starting the task: nothing it reports can be missed.
        let mut rx = self.wake.subscribe();
        self.start(connect, schema);
        if rx.changed().await.is_err() {
            // Cannot happen while `self` is alive; never resolve, as documented.
            std::future::pending::<()>().await;
        }
    }

    fn start(self: &Arc<Self>, connect: &PgConnectOptions, schema: &Arc<str>) {
        let mut task = match self.task.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if task.is_none() {
            let run = run(Arc::downgrade(self), connect.clone(), Arc::clone(schema));
            *task = Some(tokio::spawn(run).abort_handle());
        }
    }

    /// Waits until the task is listening (tests: a change made before that is
    /// legitimately missed).
    #[cfg(test)]
    pub(crate) async fn listening(&self) {
        let mut rx = self.listening.subscribe();
        let _ = rx.wait_for(|l| *l).await;
    }
}

async fn run(notifier: Weak<Notifier>, connect: PgConnectOptions, schema: Arc<str>) {
    const FIRST_RETRY: Duration = Duration::from_millis(100);
    const MAX_RETRY: Duration = Duration::from_secs(10);
    let mut retry = FIRST_RETRY;
    let mut reconnect = false;
    loop {
        match listener(&connect).await {
            Ok(mut listener) => {
                retry = FIRST_RETRY;
                listener.eager_reconnect(false);
                {
                    let Some(n) = notifier.upgrade() else { return };
                    n.listening.send_replace(true);
                    if reconnect {
                        tracing::info!("change notifications listening again");
                        n.wake.send_modify(|v| *v = v.wrapping_add(1));
                    }
                }
                reconnect = true;
                loop {
                    match listener.try_recv().await {
                        Ok(Some(note)) if note.payload() == &*schema => {
                            let Some(n) = notifier.upgrade() else { return };
                            n.wake.send_modify(|v| *v = v.wrapping_add(1));
                        }
                        // Another schema's feed.
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            tracing::warn!("change notification connection lost; reconnecting");
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "change notifications failed; reconnecting");
                            break;
                        }
                    }
                }
                let Some(n) = notifier.upgrade() else { return };
                n.listening.send_replace(false);
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot listen for change notifications yet");
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(MAX_RETRY);
    }
}
