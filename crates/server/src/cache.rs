//! The client-context cache that keeps the client credentials hot path free of
//! database round trips. Entries are dropped as soon as the store's change feed
//! reports a change to their app (or to any user, API or org, which are rare),
//! whether the change came from this process, another instance or the CLI.
//!
//! How soon is "as soon": the feed is read every `change_poll` (10 ms) and whenever
//! the store signals a change (`change_notified`: another instance's `NOTIFY`, or a
//! change this process committed, which also wakes the key ring's reload and the
//! revocation long-polls). And every cache hit first checks the store's change
//! hint and reads the feed inline when the database was written since the last
//! read. The store moves the hint on every change it commits, so a secret rotated
//! through this instance, by any surface, stops working on the very next request;
//! on SQLite the hint also covers other processes (a `stat` of the change mark
//! every process appends to after committing a change), so the same holds for
//! the CLI.
//!
//! Two more guards keep it from serving stale data:
//! - an invalidation epoch: a context loaded while an invalidation ran is used
//!   once but not cached, so a slow load cannot resurrect an evicted entry;
//! - a freshness bound: when the feed cannot be read for longer than
//!   `stale_after`, lookups bypass the cache and go to the store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gatehouse_core::context::{ClientContext, ContextSource};
use gatehouse_core::model::ChangeKind;
use gatehouse_core::ports::{ChangeFeed, Store, StoreError, StoreResult};

const MAX_ENTRIES: usize = 100_000;
const FEED_BATCH: u32 = 1000;
const NO_HINT: u64 = u64::MAX;

type OnKeys = Box<dyn Fn() + Send + Sync>;

/// Another cache that follows the feed through this one (introspection results):
/// told of every change applied, and of every full clear.
pub trait FeedListener: Send + Sync {
    fn changed(&self, kind: ChangeKind, key: &str);
    fn cleared(&self);
}

#[derive(Clone)]
pub struct ClientCache(Arc<Inner>);

struct Inner {
    store: Arc<dyn Store>,
    /// The store's change feed (the store itself, but for tests of a failing feed).
    feed: Arc<dyn ChangeFeed>,
    entries: RwLock<HashMap<String, Arc<ClientContext>>>,
    epoch: AtomicU64,
    started: Instant,
    /// Milliseconds since `started` of the last successful feed read.
    last_feed_ok_ms: AtomicU64,
    stale_after: Duration,
    /// The feed position read so far; `None` until the feed first answers.
    cursor: tokio::sync::Mutex<Option<i64>>,
    /// Feed reads finished (either way), and whether the last one succeeded:
    /// a caller that waited for another's read takes its outcome.
    reads_done: AtomicU64,
    last_read_ok: AtomicBool,
    /// The store's change hint as of the last completed feed read.
    synced_hint: AtomicU64,
    on_keys: RwLock<Option<OnKeys>>,
    /// The newest change seq read so far, for long polls of the revocation feed.
    seq: tokio::sync::watch::Sender<i64>,
    listeners: RwLock<Vec<Arc<dyn FeedListener>>>,
}

impl ClientCache {
    pub fn new(store: Arc<dyn Store>, stale_after: Duration) -> Self {
        Self::with_feed(store.clone(), store, stale_after)
    }

    fn with_feed(store: Arc<dyn Store>, feed: Arc<dyn ChangeFeed>, stale_after: Duration) -> Self {
        Self(Arc::new(Inner {
            store,
            feed,
            entries: RwLock::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            started: Instant::now(),
            last_feed_ok_ms: AtomicU64::new(0),
            stale_after,
            cursor: tokio::sync::Mutex::new(None),
            reads_done: AtomicU64::new(0),
            last_read_ok: AtomicBool::new(false),
            synced_hint: AtomicU64::new(NO_HINT),
            on_keys: RwLock::new(None),
            seq: tokio::sync::watch::Sender::new(0),
            listeners: RwLock::new(Vec::new()),
        }))
    }

    /// Starts following the change feed from its current end; `on_keys` runs when
    /// a signing key changed.
    pub async fn spawn_watcher(&self, every: Duration, on_keys: OnKeys) {
        if let Ok(mut slot) = self.0.on_keys.write() {
            *slot = Some(on_keys);
        }
        if let Err(e) = self.0.sync().await {
            tracing::warn!(error = %e, "change feed unavailable at start; the client cache stays bypassed until it answers");
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.0);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut warned = false;
            loop {
                {
                    let Some(inner) = weak.upgrade() else { return };
                    tokio::select! {
                        _ = tick.tick() => {}
                        () = inner.feed.change_notified() => {}
                    }
                }
                let Some(inner) = weak.upgrade() else { return };
                match inner.sync().await {
                    Ok(()) => warned = false,
                    Err(e) if !warned => {
                        tracing::warn!(error = %e, "cannot read the change feed; cached clients expire until it answers");
                        warned = true;
                    }
                    Err(_) => {}
                }
            }
        });
    }

    /// Has `listener` told of every change from now on.
    pub fn add_listener(&self, listener: Arc<dyn FeedListener>) {
        if let Ok(mut l) = self.0.listeners.write() {
            l.push(listener);
        }
    }

    /// Reads the feed inline when the store was written since its last read (the
    /// change hint), then says whether what the feed invalidates may be trusted:
    /// false while the feed cannot be read (a failed read included).
    pub async fn current(&self) -> bool {
        if self.0.behind() && self.0.sync().await.is_err() {
            return false;
        }
        self.0.fresh()
    }

    /// Drops the cached context of `client_id` and loads it afresh.
    pub async fn reload(&self, client_id: &str) -> StoreResult<Arc<ClientContext>> {
        self.0.apply(ChangeKind::App, client_id);
        self.client_context(client_id).await
    }

    /// Follows the newest change seq the watcher has read (wakes long polls).
    pub fn watch_seq(&self) -> tokio::sync::watch::Receiver<i64> {
        self.0.seq.subscribe()
    }

    pub fn len(&self) -> usize {
        self.0.entries.read().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    /// Reads the feed from the cursor and applies what changed. One read at a
    /// time, and callers that arrive during a read share its outcome: queued
    /// one after another, each would have waited out its own database timeout
    /// while the database was down (the soak's PostgreSQL restart: requests
    /// hung for over 5 s with a 1 s acquire timeout).
    async fn sync(&self) -> StoreResult<()> {
        let hint = self.feed.change_hint();
        let done_before = self.reads_done.load(Ordering::Acquire);
        let mut cursor = self.cursor.lock().await;
        if self.reads_done.load(Ordering::Acquire) != done_before {
            // A read finished while this caller waited for the lock.
            if !self.last_read_ok.load(Ordering::Acquire) {
                return Err(StoreError::Unavailable(
                    "the change feed could not be read".to_owned(),
                ));
            }
            if !self.behind() {
                return Ok(());
            }
        }
        let read = self.read(&mut cursor, hint).await;
        self.last_read_ok.store(read.is_ok(), Ordering::Release);
        self.reads_done.fetch_add(1, Ordering::AcqRel);
        drop(cursor);
        let keys_changed = read?;
        if keys_changed
            && let Ok(cb) = self.on_keys.read()
            && let Some(cb) = cb.as_ref()
        {
            cb();
        }
        Ok(())
    }

    /// One read of the feed from `cursor`; true when a signing key changed.
    async fn read(&self, cursor: &mut Option<i64>, hint: Option<u64>) -> StoreResult<bool> {
        let after = match *cursor {
            Some(c) => c,
            None => {
                // Never read the feed: everything cached so far is suspect.
                let c = self.feed.latest_change().await?;
                self.clear();
                *cursor = Some(c);
                c
            }
        };
        let changes = self.feed.changes_since(after, FEED_BATCH).await?;
        for c in &changes {
            self.apply(c.kind, &c.key);
            *cursor = Some(c.seq);
        }
        self.mark_feed_ok();
        if let Some(c) = *cursor {
            self.seq.send_if_modified(|s| {
                let newer = c > *s;
                if newer {
                    *s = c;
                }
                newer
            });
        }
        // A full batch may have more behind it: leave the hint unsynced so the
        // next hit reads on.
        if changes.len() < FEED_BATCH as usize {
            self.synced_hint
                .store(hint.unwrap_or(NO_HINT), Ordering::Release);
        }
        Ok(changes.iter().any(|c| c.kind == ChangeKind::Keys))
    }

    /// Has the database been written since the last feed read? (No hint: no.)
    fn behind(&self) -> bool {
        self.feed
            .change_hint()
            .is_some_and(|h| h != self.synced_hint.load(Ordering::Acquire))
    }

    fn mark_feed_ok(&self) {
        self.last_feed_ok_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Release);
    }

    fn fresh(&self) -> bool {
        let last = Duration::from_millis(self.last_feed_ok_ms.load(Ordering::Acquire));
        self.started.elapsed().saturating_sub(last) < self.stale_after
    }

    fn apply(&self, kind: ChangeKind, key: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        match kind {
            ChangeKind::App => {
                if let Ok(mut m) = self.entries.write() {
                    m.remove(key);
                }
            }
            ChangeKind::User | ChangeKind::Api | ChangeKind::Org => self.clear(),
            // Grants, tokens and keys are not part of a client context.
            ChangeKind::Grant | ChangeKind::Token | ChangeKind::Keys => {}
        }
        self.listeners().for_each(|l| l.changed(kind, key));
    }

    fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut m) = self.entries.write() {
            m.clear();
        }
        self.listeners().for_each(|l| l.cleared());
    }

    fn listeners(&self) -> impl Iterator<Item = Arc<dyn FeedListener>> {
        let l = self.listeners.read().map(|l| l.clone()).unwrap_or_default();
        l.into_iter()
    }

    fn cached(&self, client_id: &str) -> Option<Arc<ClientContext>> {
        self.entries
            .read()
            .ok()
            .and_then(|m| m.get(client_id).cloned())
    }
}

#[async_trait]
impl ContextSource for ClientCache {
    async fn client_context(&self, client_id: &str) -> StoreResult<Arc<ClientContext>> {
        let inner = &self.0;
        if inner.behind() {
            // Written since the last read (maybe by the CLI or another process):
            // catch up before trusting any entry.
            inner.sync().await?;
        }
        let fresh = inner.fresh();
        if fresh && let Some(hit) = inner.cached(client_id) {
            return Ok(hit);
        }
        let epoch = inner.epoch.load(Ordering::Acquire);
        let ctx = Arc::new(ClientContext::load(inner.store.as_ref(), client_id).await?);
        if fresh
            && let Ok(mut m) = inner.entries.write()
            && inner.epoch.load(Ordering::Acquire) == epoch
        {
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert(client_id.to_owned(), ctx.clone());
        }
        Ok(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::model::Change;
    use gatehouse_store_sql::{SqliteOptions, SqliteStore};

    /// A feed that answers at once until told to fail, then fails slowly, as
    /// PostgreSQL does while it restarts (each read waits out the pool's
    /// acquire timeout).
    #[derive(Default)]
    struct SlowFeed {
        failing: AtomicBool,
        hint: AtomicU64,
        reads: AtomicU64,
    }

    const SLOW: Duration = Duration::from_millis(300);

    #[async_trait]
    impl ChangeFeed for SlowFeed {
        async fn changes_since(&self, _after: i64, _limit: u32) -> StoreResult<Vec<Change>> {
            self.reads.fetch_add(1, Ordering::AcqRel);
            if self.failing.load(Ordering::Acquire) {
                tokio::time::sleep(SLOW).await;
                return Err(StoreError::Unavailable("down".to_owned()));
            }
            Ok(Vec::new())
        }
        async fn latest_change(&self) -> StoreResult<i64> {
            Ok(0)
        }
        fn change_hint(&self) -> Option<u64> {
            Some(self.hint.load(Ordering::Acquire))
        }
    }

    /// The store's own feed, counting its reads.
    struct CountedFeed {
        store: SqliteStore,
        reads: AtomicU64,
    }

    #[async_trait]
    impl ChangeFeed for CountedFeed {
        async fn changes_since(&self, after: i64, limit: u32) -> StoreResult<Vec<Change>> {
            self.reads.fetch_add(1, Ordering::AcqRel);
            self.store.changes_since(after, limit).await
        }
        async fn latest_change(&self) -> StoreResult<i64> {
            self.store.latest_change().await
        }
        fn change_hint(&self) -> Option<u64> {
            self.store.change_hint()
        }
    }

    /// The hot path's single-use writes (here assertion `jti`s, by this
    /// process and by another on the same file) cost the next cache hit no
    /// read of the feed: profiled, they had made every private_key_jwt request
    /// read it again. A change by another process is still read on the very
    /// next hit.
    #[tokio::test]
    async fn only_a_change_makes_the_next_hit_read_the_feed() {
        use gatehouse_core::ports::{GrantStore, TokenStore};
        let dir = tempfile::tempdir().expect("a directory");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let open = || SqliteStore::open(&url, SqliteOptions::default());
        let (mine, theirs) = (
            open().await.expect("a store"),
            open().await.expect("a store"),
        );
        let feed = Arc::new(CountedFeed {
            store: mine.clone(),
            reads: AtomicU64::new(0),
        });
        let cache = ClientCache::with_feed(
            Arc::new(mine.clone()),
            feed.clone(),
            Duration::from_secs(60),
        );
        assert!(cache.current().await, "the feed answers");
        let reads = || feed.reads.load(Ordering::Acquire);
        let before = reads();
        for (store, jti) in [(&mine, "j1"), (&theirs, "j2")] {
            assert!(
                store
                    .use_assertion_jti("app", jti, 2000, 1000)
                    .await
                    .expect("a jti")
            );
            assert!(cache.current().await);
        }
        assert_eq!(reads(), before, "a jti write made a hit read the feed");
        theirs
            .revoke_access_token("jti-1", "org", 2000, 1000)
            .await
            .expect("a revocation");
        assert!(cache.current().await);
        assert_eq!(reads(), before + 1, "another process's change was not read");
        assert_eq!(*cache.watch_seq().borrow(), 1, "the change was not applied");
    }

    /// The soak's PostgreSQL restart: callers that found the store written
    /// since the last feed read each read the feed again, one after another
    /// behind the cursor's lock, so the k-th waited k slow failures (hangs over
    /// 5 s). Callers during a read now share its outcome.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_during_a_slow_failing_feed_read_share_its_outcome() {
        let dir = tempfile::tempdir().expect("a directory");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::open(&url, SqliteOptions::default())
            .await
            .expect("a store");
        let feed = Arc::new(SlowFeed::default());
        let cache = ClientCache::with_feed(Arc::new(store), feed.clone(), Duration::from_secs(60));
        assert!(cache.current().await, "the feed answers");

        // Written (the hint moved), then the database goes away.
        feed.failing.store(true, Ordering::Release);
        feed.hint.fetch_add(1, Ordering::AcqRel);
        let reads_before = feed.reads.load(Ordering::Acquire);
        let started = Instant::now();
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let cache = cache.clone();
            callers.spawn(async move { cache.current().await });
        }
        while let Some(current) = callers.join_next().await {
            assert!(!current.expect("a caller"), "a failed read is not current");
        }
        let took = started.elapsed();
        let reads = feed.reads.load(Ordering::Acquire) - reads_before;
        assert!(reads <= 2, "{reads} feed reads for 20 callers");
        assert!(took < 3 * SLOW, "20 callers answered after {took:?}");
    }
}
