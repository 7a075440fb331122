//! SQLite specifics; the port contract is `gatehouse-store-conformance`'s.

use gatehouse_core::model::{Actor, AuditEvent, Org};
use gatehouse_core::ports::{ChangeFeed, OrgStore};

use crate::{SqliteOptions, SqliteStore};

#[tokio::test]
async fn reopening_keeps_data_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let org = Org {
        id: "o".into(),
        slug: "s".into(),
        name: "n".into(),
        created_at: 1,
    };
    {
        let store = SqliteStore::open(&url, SqliteOptions::default())
            .await
            .unwrap();
        let audit = AuditEvent::new(&Actor::operator(), &org.id, 1, "test", "t", "test");
        store.insert_org(&org, &[], &audit).await.unwrap();
    }
    let store = SqliteStore::open(&url, SqliteOptions::default())
        .await
        .unwrap();
    assert_eq!(store.org_by_slug("s").await.unwrap(), org);
}

#[tokio::test]
async fn the_change_hint_moves_on_a_write_of_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("h.db").display());
    let mine = SqliteStore::open(&url, SqliteOptions::default())
        .await
        .unwrap();
    // Another process: its own pool and counter, the same file.
    let theirs = SqliteStore::open(&url, SqliteOptions::default())
        .await
        .unwrap();
    let before = mine.change_hint();
    assert!(before.is_some());
    assert_eq!(mine.change_hint(), before);
    let org = Org {
        id: "o".into(),
        slug: "s".into(),
        name: "n".into(),
        created_at: 1,
    };
    let audit = AuditEvent::new(&Actor::operator(), &org.id, 1, "test", "t", "test");
    theirs.insert_org(&org, &[], &audit).await.unwrap();
    assert_ne!(mine.change_hint(), before);
}
