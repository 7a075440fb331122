//! Group commit: concurrent callers of one small write share one statement.
//!
//! On SQLite every write waits for this process's write turn and then pays for
//! a trip to the connection's worker thread and a commit of its own: profiled,
//! that was most of the CPU of a `private_key_jwt` request (its `jti` record).
//! Here a caller queues its item and then waits for either its answer or the
//! write turn, whichever comes first. Whoever gets the turn takes every queued
//! item (its own, if still there, and those that queued while the previous
//! batch ran) and writes them in one statement; the others get their answers
//! without ever holding the turn. One caller alone is a batch of one, so
//! nothing waits for company. On PostgreSQL the turn is free at once: each
//! caller mostly writes its own item, as before.
//!
//! A caller that gives up (its request dropped) after queueing may still have
//! its item written; for a `jti` that only means it cannot be used again.

use std::future::Future;
use std::sync::Mutex;

use gatehouse_core::ports::{StoreError, StoreResult};
use tokio::sync::oneshot;

/// Most items in one statement (3 bound values each: far below SQLite's and
/// PostgreSQL's limits on bound values).
pub(crate) const MAX_BATCH: usize = 256;

struct Pending<T> {
    item: T,
    answer: oneshot::Sender<StoreResult<bool>>,
}

/// Items waiting for the next batch.
pub(crate) struct Batch<T> {
    queue: Mutex<Vec<Pending<T>>>,
}

impl<T> Default for Batch<T> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Vec::new()),
        }
    }
}

impl<T> Batch<T> {
    /// Queues `item` and returns its answer: from the batch that wrote it,
    /// which this caller runs with `write` if it gets `turn` first.
    /// `write` gets at most [`MAX_BATCH`] items and answers each, in order.
    pub(crate) async fn submit<Turn, W, Fut>(
        &self,
        item: T,
        turn: impl Future<Output = Turn>,
        write: W,
    ) -> StoreResult<bool>
    where
        W: Fn(Vec<T>) -> Fut,
        Fut: Future<Output = StoreResult<Vec<bool>>>,
    {
        let (answer, mut answered) = oneshot::channel();
        self.lock().push(Pending { item, answer });
        let turn = tokio::select! {
            biased;
            done = &mut answered => return flatten(done),
            turn = turn => turn,
        };
        loop {
            let batch: Vec<Pending<T>> = {
                let mut queue = self.lock();
                let n = queue.len().min(MAX_BATCH);
                queue.drain(..n).collect()
            };
            if batch.is_empty() {
                break;
            }
            self.run(batch, &write).await;
            // Ours was in this batch, or is still queued behind a full one:
            // nobody else may be waiting for the turn to write it, so go on.
            match answered.try_recv() {
                Ok(done) => return done,
                Err(oneshot::error::TryRecvError::Empty) => {}
                Err(oneshot::error::TryRecvError::Closed) => break,
            }
        }
        drop(turn);
        // Answered by an earlier holder of the turn, before it let go of it.
        flatten(answered.await)
    }

    /// Writes one batch and answers each of its callers.
    async fn run<W, Fut>(&self, batch: Vec<Pending<T>>, write: &W)
    where
        W: Fn(Vec<T>) -> Fut,
        Fut: Future<Output = StoreResult<Vec<bool>>>,
    {
        let (items, answers): (Vec<T>, Vec<_>) =
            batch.into_iter().map(|p| (p.item, p.answer)).unzip();
        let count = items.len();
        match write(items).await {
            Ok(won) if won.len() == count => {
                for (answer, won) in answers.into_iter().zip(won) {
                    // The caller may have gone; its item is written all the same.
                    let _ = answer.send(Ok(won));
                }
            }
            Ok(won) => {
                let e = format!("a batch of {count} writes answered {}", won.len());
                for answer in answers {
                    let _ = answer.send(Err(StoreError::Internal(e.clone())));
                }
            }
            Err(e) => {
                for answer in answers {
                    let _ = answer.send(Err(same_error(&e)));
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Pending<T>>> {
        // A panic while the lock was held left the queue consistent (pushes and
        // drains are whole): carry on with it.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn flatten(done: Result<StoreResult<bool>, oneshot::error::RecvError>) -> StoreResult<bool> {
    done.unwrap_or_else(|_| {
        Err(StoreError::Internal(
            "a batched write ended without an answer".into(),
        ))
    })
}

/// Every caller of a failed batch gets the batch's error.
fn same_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Internal(m) => StoreError::Internal(m.clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A batch writer that answers "even items win" and records batch sizes.
    fn writer(
        sizes: &Arc<Mutex<Vec<usize>>>,
    ) -> impl Fn(Vec<u32>) -> std::future::Ready<StoreResult<Vec<bool>>> + '_ {
        move |items: Vec<u32>| {
            sizes.lock().unwrap().push(items.len());
            std::future::ready(Ok(items.iter().map(|i| i % 2 == 0).collect()))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn callers_waiting_for_the_turn_share_one_write_and_all_get_their_answer() {
        let batch = Arc::new(Batch::<u32>::default());
        let turn = Arc::new(tokio::sync::Mutex::new(()));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        // Hold the turn while 600 callers queue: more than two full batches.
        let held = Arc::clone(&turn).lock_owned().await;
        let mut tasks = Vec::new();
        for i in 0..600u32 {
            let (batch, turn, sizes) = (batch.clone(), turn.clone(), sizes.clone());
            tasks.push(tokio::spawn(async move {
                let won = batch
                    .submit(i, Arc::clone(&turn).lock_owned(), writer(&sizes))
                    .await
                    .unwrap();
                (i, won)
            }));
        }
        while batch.lock().len() < 600 {
            tokio::task::yield_now().await;
        }
        drop(held);
        for t in tasks {
            let (i, won) = t.await.unwrap();
            assert_eq!(won, i % 2 == 0, "item {i} got another's answer");
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(
            sizes.iter().sum::<usize>(),
            600,
            "every item written once: {sizes:?}"
        );
        assert!(sizes.iter().all(|&n| n <= MAX_BATCH), "{sizes:?}");
        assert!(
            sizes.len() <= 3,
            "600 queued items took {} writes",
            sizes.len()
        );
    }

    #[tokio::test]
    async fn a_lone_caller_writes_at_once_and_a_failed_write_reaches_every_caller() {
        let batch = Batch::<u32>::default();
        let turn = tokio::sync::Mutex::new(());
        let sizes = Arc::new(Mutex::new(Vec::new()));
        assert!(batch.submit(4, turn.lock(), writer(&sizes)).await.unwrap());
        assert_eq!(*sizes.lock().unwrap(), vec![1]);
        let failed = batch
            .submit(2, turn.lock(), |_| {
                std::future::ready(Err(StoreError::Unavailable("down".into())))
            })
            .await;
        assert!(matches!(failed, Err(StoreError::Unavailable(m)) if m == "down"));
        assert!(batch.lock().is_empty());
    }
}
