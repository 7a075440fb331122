//! Follows the issuer's revocation feed (`GET /connect/revocations`, a long poll
//! authenticated with the API's credentials) into the [`Revoked`] set, and keeps
//! the facts the fail-closed rule needs: when the feed last answered, and whether
//! the last attempt failed. While the feed is lost for longer than the bound, JWTs
//! issued after the last sync are refused (they could have ended unseen); older
//! ones keep validating against what we know.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use gatehouse_core::feed::{FeedEvent, FeedPage};

use crate::jwks::{FetchError, get_json};
use crate::revoked::Revoked;
use crate::validator::{Inner, Validator};

/// The feed's health, shared by the follower (writer) and validation (reader).
pub struct FeedState {
    started: Instant,
    /// Milliseconds after `started` of the last answer; `u64::MAX` before the first.
    last_ok_ms: AtomicU64,
    /// Unix seconds of the last answer (compared with `iat`).
    last_ok_unix: AtomicI64,
    /// The last attempt failed.
    lost: AtomicBool,
    max_staleness: Duration,
    cursor: RwLock<String>,
}

impl FeedState {
    pub fn new(max_staleness: Duration) -> Self {
        Self {
            started: Instant::now(),
            last_ok_ms: AtomicU64::new(u64::MAX),
            last_ok_unix: AtomicI64::new(i64::MIN),
            lost: AtomicBool::new(true),
            max_staleness,
            cursor: RwLock::new("0".into()),
        }
    }

    fn mark_ok(&self, now_unix: i64, cursor: &str) {
        self.last_ok_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Release);
        self.last_ok_unix.store(now_unix, Ordering::Release);
        self.lost.store(false, Ordering::Release);
        if let Ok(mut c) = self.cursor.write() {
            cursor.clone_into(&mut c);
        }
    }

    fn mark_lost(&self) {
        self.lost.store(true, Ordering::Release);
    }

    /// Time since the feed last answered; `None` before it ever did.
    pub fn age(&self) -> Option<Duration> {
        match self.last_ok_ms.load(Ordering::Acquire) {
            u64::MAX => None,
            ms => Some(
                self.started
                    .elapsed()
                    .saturating_sub(Duration::from_millis(ms)),
            ),
        }
    }

    /// Lost for longer than the bound (or never reached).
    pub fn is_stale(&self) -> bool {
        if !self.lost.load(Ordering::Acquire) {
            return false;
        }
        self.age().is_none_or(|a| a > self.max_staleness)
    }

    /// May a token issued at `iat` be trusted with what the feed has told us?
    pub fn vouches_for(&self, iat: i64) -> bool {
        !self.is_stale() || iat <= self.last_ok_unix.load(Ordering::Acquire)
    }

    pub fn cursor(&self) -> String {
        self.cursor.read().map(|c| c.clone()).unwrap_or_default()
    }
}

/// The header the issuer's feed names the API's audience in.
pub const AUDIENCE_HEADER: &str = "gatehouse-api-audience";

/// One read of the feed at start-up, so that wrong API credentials or an
/// `--audience` that is not the API's stop the gateway with a clear error
/// instead of a gateway that listens and refuses everything.
pub(crate) async fn check_api(
    http: &reqwest::Client,
    url: &str,
    config: &crate::config::ValidatorConfig,
) -> Result<(), crate::validator::StartError> {
    use crate::validator::StartError;
    let resp = http
        .get(format!("{url}?since=0&wait=0"))
        .basic_auth(
            &config.api_client_id,
            Some(config.api_client_secret.expose()),
        )
        .timeout(config.http_timeout)
        .send()
        .await
        .map_err(|e| StartError::Feed(FetchError::Http(e.without_url().to_string())))?;
    match resp.status().as_u16() {
        200 => {}
        401 => return Err(StartError::Credentials(config.api_client_id.clone())),
        other => return Err(StartError::Feed(FetchError::Status(other))),
    }
    // An issuer that does not say (an older one) is taken at its word.
    let actual = resp
        .headers()
        .get(AUDIENCE_HEADER)
        .and_then(|v| v.to_str().ok());
    match actual {
        Some(actual) if actual != config.audience => Err(StartError::Audience {
            configured: config.audience.clone(),
            client_id: config.api_client_id.clone(),
            actual: actual.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// The longest pause between attempts while the feed fails. Revocations made
/// when the issuer is back must still end tokens within the second: with 2 s, a
/// gateway asleep in its backoff as PostgreSQL came back accepted ended tokens
/// for up to 2 s (the soak's PostgreSQL restart found them at 1.0-1.2 s). A few
/// requests a second to an issuer that is down cost it nothing.
const FEED_RETRY_MAX: Duration = Duration::from_millis(250);

/// Runs until the validator is dropped.
pub(crate) fn spawn_follower(inner: &Arc<Inner>, url: String) {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    tokio::spawn(async move {
        let mut cursor = "0".to_owned();
        let mut caught_up = false;
        let mut backoff = Duration::from_millis(100);
        let mut warned = false;
        loop {
            let Some(inner) = weak.upgrade() else { return };
            let wait = if caught_up {
                inner.config.feed_wait
            } else {
                Duration::ZERO
            };
            match poll(&inner, &url, &cursor, wait).await {
                Ok(page) => {
                    apply(&inner, &page.events);
                    inner.feed.mark_ok(inner.clock.now(), &page.cursor);
                    if warned {
                        tracing::info!("revocation feed is back");
                    }
                    cursor = page.cursor;
                    caught_up = !page.more;
                    backoff = Duration::from_millis(100);
                    warned = false;
                    if caught_up {
                        inner.synced.send_replace(true);
                    }
                }
                Err(e) => {
                    inner.feed.mark_lost();
                    // The next attempt asks without waiting: a server that is back
                    // answers at once instead of after a whole long poll.
                    caught_up = false;
                    if !warned {
                        tracing::warn!(error = %e, "revocation feed unavailable; retrying (cached keys and revocations stay in use)");
                        warned = true;
                    }
                    drop(inner);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(FEED_RETRY_MAX);
                }
            }
        }
    });
}

async fn poll(
    inner: &Inner,
    url: &str,
    cursor: &str,
    wait: Duration,
) -> Result<FeedPage, FetchError> {
    let url = format!("{url}?since={cursor}&wait={}", wait.as_secs());
    let doc = get_json(
        &inner.http,
        &url,
        Some((
            &inner.config.api_client_id,
            inner.config.api_client_secret.expose(),
        )),
        wait + inner.config.http_timeout,
    )
    .await?;
    let page: FeedPage =
        serde_json::from_value(doc).map_err(|_| FetchError::Invalid("revocation feed page"))?;
    if page.cursor.len() > 32 || !page.cursor.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FetchError::Invalid("revocation feed cursor"));
    }
    Ok(page)
}

fn apply(inner: &Arc<Inner>, events: &[FeedEvent]) {
    if events.is_empty() {
        return;
    }
    let keys_changed = events.contains(&FeedEvent::Keys);
    let now = inner.clock.now();
    if let Ok(mut r) = inner.revoked.write() {
        apply_to(&mut r, events, now);
    }
    // Cached introspection answers the events may have ended go now, after the
    // revocation set has them (an answer fetched in between is not kept).
    if let Some(intro) = &inner.introspection {
        intro.forget(events);
    }
    if keys_changed {
        // The key set is replaced wholesale by each fetch (a withdrawn key is gone
        // with its cached signatures). The issuer's own key ring reloads in the
        // background, so look again shortly after (within the second a withdrawn
        // key must stop verifying), and once more in case it was slow.
        let inner = inner.clone();
        tokio::spawn(async move {
            let delays = [0, 250, 500, 2250].map(Duration::from_millis);
            for delay in delays {
                tokio::time::sleep(delay).await;
                match inner.jwks.refresh().await {
                    Ok(n) => {
                        Validator::forget_unpublished_keys(&inner);
                        tracing::info!(keys = n, "signing keys changed; JWKS refetched");
                    }
                    Err(e) => tracing::warn!(error = %e, "JWKS refetch after a key change failed"),
                }
            }
        });
    }
}

fn apply_to(r: &mut Revoked, events: &[FeedEvent], now: i64) {
    for e in events {
        r.apply(e, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_too_long_only_tokens_from_before_the_last_sync_pass() {
        let f = FeedState::new(Duration::ZERO);
        assert!(
            f.is_stale() && !f.vouches_for(0),
            "never synced: fail closed"
        );
        f.mark_ok(100, "5");
        assert!(
            !f.is_stale() && f.vouches_for(200),
            "in sync: the feed vouches"
        );
        assert_eq!(f.cursor(), "5");
        f.mark_lost();
        std::thread::sleep(Duration::from_millis(2));
        assert!(f.is_stale());
        assert!(f.vouches_for(100), "issued before the last sync");
        assert!(
            !f.vouches_for(101),
            "issued after: it could have ended unseen"
        );
    }
}
