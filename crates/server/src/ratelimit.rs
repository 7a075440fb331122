//! Slows down guessing: failed authentications fill a leaky bucket per key (a
//! client id; for sign-in, an account *and* the address trying it) and per
//! source address. Only failures count, and callers check the credential first,
//! so the right secret is never refused because of someone else's failures: a
//! full bucket only turns the next *failure* into 429. What keeps a flood from
//! costing CPU and database writes is a separate, much higher ceiling per
//! address ([`FailureLimiter::flooded`], [`FLOOD_FACTOR`] times the address
//! burst), past which an address is refused before anything is looked up.
//!
//! Keys are hashed (SHA-256, 128 bits) before they are kept, here or in the
//! store, so a stranger's identifier of any length costs a fixed few bytes; an
//! address counts as itself (IPv4) or its /64 (IPv6).
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

use crate::client_addr::bucket_key;

/// What a key is kept as: 128 bits of its SHA-256, whatever its length.
fn key_id(key: &str) -> String {
    let mut d = gatehouse_core::secret::digest(key);
    d.truncate(32);
    d
}

const MAX_KEYS: usize = 200_000;

/// An address is refused before any work once its failures reach this many
/// times its failure burst.
pub const FLOOD_FACTOR: f64 = 10.0;

/// The longest a sign-in failure on a much-attacked account is held back.
const MAX_SLOWDOWN: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct FailureLimiter(Arc<Inner>);

struct Inner {
    per_client: Buckets,
    per_address: Buckets,
    /// Failures per account from any address: only slow answers down.
    per_account: Buckets,
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
        self.retry_after(self.level_of(key, now))
    }

    fn level_of(&self, key: &str, now: Instant) -> f64 {
        let Ok(map) = self.map.lock() else {
            return 0.0;
        };
        map.get(key).map_or(0.0, |e| self.level(*e, now))
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
            per_account: Buckets::new(per_client, window),
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
            per_account: Buckets::new(per_client, window),
            shared: Some(Shared {
                store,
                clock,
                namespace,
            }),
        }))
    }

    /// Is this address's failure bucket full? (Its next failure is 429.)
    pub fn address_blocked(&self, ip: IpAddr) -> Option<RetryAfter> {
        self.0.per_address.blocked(&bucket_key(ip), Instant::now())
    }

    /// Has this address failed so much that it is refused before any work?
    pub fn flooded(&self, ip: IpAddr) -> Option<RetryAfter> {
        let b = &self.0.per_address;
        let level = b.level_of(&bucket_key(ip), Instant::now());
        let excess = level + 1.0 - b.burst * FLOOD_FACTOR;
        (excess > 0.0).then(|| RetryAfter((excess / b.rate).ceil().max(1.0) as u64))
    }

    /// Is this key (client id; account and address) blocked?
    pub fn key_blocked(&self, key: &str) -> Option<RetryAfter> {
        self.0.per_client.blocked(&key_id(key), Instant::now())
    }

    /// Is this key blocked, here or (for a shared limiter) on any instance?
    pub async fn key_blocked_anywhere(&self, key: &str) -> Option<RetryAfter> {
        let id = key_id(key);
        let local = self.0.per_client.blocked(&id, Instant::now());
        let Some(sh) = &self.0.shared else {
            return local;
        };
        let b = &self.0.per_client;
        let k = format!("{}:key:{id}", sh.namespace);
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
    pub async fn record_failure(&self, ip: IpAddr, key: &str) -> Option<RetryAfter> {
        let now = Instant::now();
        let addr = bucket_key(ip);
        let id = key_id(key);
        let mut wait = self
            .0
            .per_address
            .fail(&addr, now)
            .max(self.0.per_client.fail(&id, now));
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
                    format!("{}:key:{id}", sh.namespace),
                    id.as_str(),
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

    /// Records a failure against `account` from any address and says how long
    /// to hold the answer back: nothing until the account's burst is spent, then
    /// doubling from 250 ms up to [`MAX_SLOWDOWN`]. It never refuses, so a
    /// stranger failing against an account cannot lock its owner out.
    pub fn slow_down(&self, account: &str) -> Duration {
        let b = &self.0.per_account;
        let (id, now) = (key_id(account), Instant::now());
        let before = b.level_of(&id, now);
        b.fail(&id, now);
        // Failures past the burst, this one included.
        let over = before + 1.0 - b.burst;
        if over <= 0.0 {
            return Duration::ZERO;
        }
        let doublings = (over - 1.0).round().clamp(0.0, 8.0) as i32;
        Duration::from_millis(250)
            .mul_f64(2f64.powi(doublings))
            .min(MAX_SLOWDOWN)
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
                inner.per_account.prune(now);
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

    #[tokio::test]
    async fn a_flood_is_refused_only_far_past_the_address_burst() {
        let l = FailureLimiter::new(1000, 2, Duration::from_secs(60));
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        for i in 0..19 {
            l.record_failure(ip, &format!("k{i}")).await;
        }
        assert!(l.address_blocked(ip).is_some());
        assert!(l.flooded(ip).is_none(), "19 < 10 × 2");
        l.record_failure(ip, "last").await;
        // The same /64 is the same address.
        assert!(l.flooded("2001:db8::ffff".parse().unwrap()).is_some());
        assert!(l.flooded("2001:db8:0:1::1".parse().unwrap()).is_none());
    }

    #[test]
    fn an_account_failing_everywhere_is_slowed_with_a_cap_never_blocked() {
        let l = FailureLimiter::new(3, 100, Duration::from_secs(60));
        let delays: Vec<u128> = (0..10).map(|_| l.slow_down("ana").as_millis()).collect();
        assert_eq!(
            delays,
            [0, 0, 0, 250, 500, 1000, 2000, 3000, 3000, 3000],
            "exponential, capped"
        );
        assert_eq!(l.slow_down("bob"), Duration::ZERO);
    }

    #[tokio::test]
    async fn keys_are_kept_as_fixed_size_hashes() {
        let l = FailureLimiter::new(3, 100, Duration::from_secs(60));
        let long = "x".repeat(300_000);
        l.record_failure("10.0.0.9".parse().unwrap(), &long).await;
        let map = l.0.per_client.map.lock().unwrap();
        assert_eq!(map.keys().map(String::len).collect::<Vec<_>>(), [32]);
    }
}
