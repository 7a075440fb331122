//! Slows down guessing of client secrets: failed authentications fill a leaky
//! bucket per client id and per source address. Only failures count, so a busy
//! client with the right secret is never throttled, and a correct secret is never
//! refused because someone else failed against the same client id (only the
//! failing address is blocked before checking).
//!
//! governor's keyed limiters count every request and cannot be inspected without
//! consuming a cell, which is why this small bucket exists.
//!
//! With several instances on one database, failures also go to the store's shared
//! buckets ([`ThrottleStore`]), so guessing is slowed whichever instance answers:
//! a failure on any instance counts toward the same limit. The local buckets keep
//! the pre-check of every request free of database round trips; a block found in
//! the shared buckets is copied into the local ones.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use gatehouse_core::clock::Clock;
use gatehouse_core::ports::ThrottleStore;

const MAX_KEYS: usize = 200_000;

#[derive(Clone)]
pub struct FailureLimiter(Arc<Inner>);

struct Inner {
    per_client: Buckets,
    per_address: Buckets,
    shared: Option<Shared>,
}

/// The store's buckets, under a namespace ("client", "login").
struct Shared {
    store: Arc<dyn ThrottleStore>,
    clock: Arc<dyn Clock>,
    namespace: &'static str,
}

struct Buckets {
    burst: f64,
    /// Failures drained per second.
    rate: f64,
    map: Mutex<HashMap<String, (f64, Instant)>>,
}

/// How long to wait before trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RetryAfter(pub u64);

impl Buckets {
    fn new(burst: u32, window: Duration) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            burst,
            rate: burst / window.as_secs_f64().max(1.0),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn level(&self, (level, at): (f64, Instant), now: Instant) -> f64 {
        (level - now.duration_since(at).as_secs_f64() * self.rate).max(0.0)
    }

    /// `burst` failures are allowed; once one more would overflow, wait until it fits.
    fn retry_after(&self, level: f64) -> Option<RetryAfter> {
        let excess = level + 1.0 - self.burst;
        (excess > 0.0).then(|| RetryAfter((excess / self.rate).ceil().max(1.0) as u64))
    }

    fn blocked(&self, key: &str, now: Instant) -> Option<RetryAfter> {
        let map = self.map.lock().ok()?;
        let level = self.level(*map.get(key)?, now);
        self.retry_after(level)
    }

    fn fail(&self, key: &str, now: Instant) -> Option<RetryAfter> {
        let mut map = self.map.lock().ok()?;
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            return None;
        }
        let entry = map.entry(key.to_owned()).or_insert((0.0, now));
        let before = self.level(*entry, now);
        *entry = (before + 1.0, now);
        self.retry_after(before)
    }

    /// Raises the local level of `key` to at least `level` (learnt from the shared buckets).
    fn raise(&self, key: &str, level: f64, now: Instant) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= MAX_KEYS && !map.contains_key(key) {
                return;
            }
            let entry = map.entry(key.to_owned()).or_insert((0.0, now));
            let current = self.level(*entry, now);
            *entry = (current.max(level), now);
        }
    }

    fn prune(&self, now: Instant) {
        if let Ok(mut map) = self.map.lock() {
            let rate = self.rate;
            map.retain(|_, (level, at)| {
                *level - now.duration_since(*at).as_secs_f64() * rate > 0.0
            });
        }
    }
}

impl FailureLimiter {
    /// Buckets in this process only.
    pub fn new(per_client: u32, per_address: u32, window: Duration) -> Self {
        Self(Arc::new(Inner {
            per_client: Buckets::new(per_client, window),
            per_address: Buckets::new(per_address, window),
            shared: None,
        }))
    }

    /// Buckets in this process, backed by the store's shared ones.
    pub fn shared(
        per_client: u32,
        per_address: u32,
        window: Duration,
        store: Arc<dyn ThrottleStore>,
        clock: Arc<dyn Clock>,
        namespace: &'static str,
    ) -> Self {
        Self(Arc::new(Inner {
            per_client: Buckets::new(per_client, window),
            per_address: Buckets::new(per_address, window),
            shared: Some(Shared {
                store,
                clock,
                namespace,
            }),
        }))
    }

    /// Is this address blocked from trying at all?
    pub fn address_blocked(&self, ip: IpAddr) -> Option<RetryAfter> {
        self.0.per_address.blocked(&ip.to_string(), Instant::now())
    }

    /// Is this key (client id, account) blocked?
    pub fn key_blocked(&self, key: &str) -> Option<RetryAfter> {
        self.0.per_client.blocked(key, Instant::now())
    }

    /// Is this key blocked, here or (for a shared limiter) on any instance?
    pub async fn key_blocked_anywhere(&self, key: &str) -> Option<RetryAfter> {
        let local = self.key_blocked(key);
        let Some(sh) = &self.0.shared else {
            return local;
        };
        let b = &self.0.per_client;
        let k = format!("{}:key:{key}", sh.namespace);
        match sh
            .store
            .failure_level(&k, b.rate, sh.clock.now() as f64)
            .await
        {
            Ok(level) => local.max(b.retry_after(level)),
            Err(e) => {
                tracing::warn!(error = %e, "shared failure buckets unavailable; using local ones");
                local
            }
        }
    }

    /// Records a failure; says how long to wait if either bucket is now full.
    pub async fn record_failure(&self, ip: IpAddr, client_id: &str) -> Option<RetryAfter> {
        let now = Instant::now();
        let addr = ip.to_string();
        let mut wait = self
            .0
            .per_address
            .fail(&addr, now)
            .max(self.0.per_client.fail(client_id, now));
        if let Some(sh) = &self.0.shared {
            let t = sh.clock.now() as f64;
            for (bucket, key, local_key) in [
                (
                    &self.0.per_address,
                    format!("{}:addr:{addr}", sh.namespace),
                    addr.as_str(),
                ),
                (
                    &self.0.per_client,
                    format!("{}:key:{client_id}", sh.namespace),
                    client_id,
                ),
            ] {
                match sh.store.add_failure(&key, bucket.rate, t).await {
                    Ok(before) => {
                        wait = wait.max(bucket.retry_after(before));
                        bucket.raise(local_key, before + 1.0, now);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "shared failure buckets unavailable; using local ones")
                    }
                }
            }
        }
        wait
    }

    /// Forgets drained buckets once a minute, until the limiter is dropped.
    pub fn spawn_pruner(&self) {
        let weak: Weak<Inner> = Arc::downgrade(&self.0);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let now = Instant::now();
                inner.per_client.prune(now);
                inner.per_address.prune(now);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_failures_fill_the_bucket_and_it_blocks_at_the_burst() {
        let l = FailureLimiter::new(3, 100, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(l.record_failure(ip, "c").await, None);
        assert_eq!(l.record_failure(ip, "c").await, None);
        assert_eq!(l.record_failure(ip, "c").await, None);
        let r = l.record_failure(ip, "c").await.unwrap();
        assert!(r.0 >= 1 && r.0 <= 60, "{r:?}");
        assert!(
            l.address_blocked(ip).is_none(),
            "the address bucket is larger"
        );
    }

    #[tokio::test]
    async fn address_bucket_blocks_before_checking() {
        let l = FailureLimiter::new(100, 2, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        l.record_failure(ip, "a").await;
        assert!(l.address_blocked(ip).is_none());
        l.record_failure(ip, "b").await;
        assert!(l.address_blocked(ip).is_some());
        assert!(l.address_blocked("10.0.0.3".parse().unwrap()).is_none());
    }
}
