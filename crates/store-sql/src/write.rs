//! The write transaction every mutation with more than one statement goes
//! through. It owns the one rule of issue 11 item 3: a write that recorded a
//! change bumps the store's in-process counter once it has committed, so the
//! change hint moves and `change_notified` wakes: this instance sees its own
//! write on the very next request (caches re-read the feed on a moved hint),
//! and its feed watcher applies it at once (the key ring, the revocation
//! long-poll), whichever surface (console, admin API, CLI) made it.

use gatehouse_core::model::{AuditEvent, ChangeKind};
use gatehouse_core::ports::StoreResult;
use sqlx::{Database, Transaction};

use crate::{Dialect, SqlStore};

pub(crate) struct Write<'s, D: Dialect> {
    tx: Transaction<'static, D::Db>,
    store: &'s SqlStore<D>,
    changed: bool,
    /// Dropped after `tx` (fields drop in order): the turn ends with the transaction.
    _turn: D::WriteTurn,
}

impl<D: Dialect> SqlStore<D> {
    /// Begins a write transaction ([`Dialect::BEGIN_WRITE`]).
    pub(crate) async fn write(&self) -> StoreResult<Write<'_, D>> {
        let turn = self.dialect.write_turn().await;
        let tx = self
            .pool
            .begin_with(D::BEGIN_WRITE)
            .await
            .map_err(D::map_err)?;
        Ok(Write {
            tx,
            store: self,
            changed: false,
            _turn: turn,
        })
    }

    /// Committed writes that recorded a change, by this process.
    pub(crate) fn changes_written(&self) -> u64 {
        *self.changes_written.borrow()
    }

    /// Resolves on the next change this process commits.
    pub(crate) async fn change_written(&self) {
        let mut rx = self.changes_written.subscribe();
        // The sender lives as long as `self`: `changed` cannot fail meanwhile.
        let _ = rx.changed().await;
    }
}

impl<D: Dialect> Write<'_, D> {
    /// The store this transaction writes to.
    pub(crate) fn store(&self) -> &SqlStore<D> {
        self.store
    }

    /// The transaction's connection, to run statements on.
    pub(crate) fn conn(&mut self) -> &mut <D::Db as Database>::Connection {
        &mut self.tx
    }

    /// Commits; a recorded change then moves the change hint.
    pub(crate) async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await.map_err(D::map_err)?;
        if self.changed {
            // Still in this process's write turn (`_turn` drops with `self`).
            self.store.dialect.change_committed();
            self.store
                .changes_written
                .send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(())
    }

    /// Ends without writing anything (lets go of SQLite's write lock at once).
    pub(crate) async fn rollback(self) -> StoreResult<()> {
        self.tx.rollback().await.map_err(D::map_err)
    }
}

for_each_dialect! {
    impl Write<'_, D> {
        /// Appends to the change feed in this transaction. `org_id` is the
        /// organization whose APIs may see the change ("" for all).
        pub(crate) async fn change(
            &mut self,
            org_id: &str,
            kind: ChangeKind,
            key: &str,
            at: i64,
        ) -> StoreResult<()> {
            let dialect = &self.store.dialect;
            dialect.before_change(&mut self.tx).await?;
            sqlx::query("INSERT INTO changes (kind, key, at, org_id) VALUES ($1, $2, $3, $4)")
                .bind(kind.as_str())
                .bind(key)
                .bind(at)
                .bind(org_id)
                .execute(&mut *self.tx)
                .await
                .map_err(D::map_err)?;
            dialect.announce_change(&mut self.tx).await?;
            self.changed = true;
            Ok(())
        }

        /// Ends a write that changed `rows` rows of one record: commits with
        /// `audit` when it found the record; otherwise rolls back: `NotFound`.
        pub(crate) async fn audited_if_found(
            mut self,
            rows: u64,
            audit: &AuditEvent,
        ) -> StoreResult<()> {
            if rows == 0 {
                self.rollback().await?;
                return Err(gatehouse_core::ports::StoreError::NotFound);
            }
            self.audit(audit).await?;
            self.commit().await
        }

        /// Appends an audit event inside the change's own transaction.
        pub(crate) async fn audit(&mut self, e: &AuditEvent) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO audit_events (org_id, at, actor_kind, actor_id, actor_name, address, action, target, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&e.org_id)
            .bind(e.at)
            .bind(e.actor_kind.as_str())
            .bind(&e.actor_id)
            .bind(&e.actor_name)
            .bind(&e.address)
            .bind(&e.action)
            .bind(&e.target)
            .bind(&e.detail)
            .execute(self.conn())
            .await
            .map_err(D::map_err)?;
            Ok(())
        }
    }
}
