//! SQLite specifics; the port contract is `gatehouse-store-conformance`'s.

use gatehouse_core::model::{Actor, AuditEvent, Org};
use gatehouse_core::ports::{ChangeFeed, GrantStore, OrgStore, TokenStore};

use crate::{SqliteOptions, SqliteStore};

/// An org to write, with the audit event its insert records.
fn org_and_audit() -> (Org, AuditEvent) {
    let org = Org {
        id: "o".into(),
        slug: "s".into(),
        name: "n".into(),
        created_at: 1,
    };
    let audit = AuditEvent::new(&Actor::operator(), &org.id, 1, "test", "t", "test");
    (org, audit)
}

#[tokio::test]
async fn reopening_keeps_data_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let (org, audit) = org_and_audit();
    {
        let store = SqliteStore::open(&url, SqliteOptions::default())
            .await
            .unwrap();
        store.insert_org(&org, &[], &audit).await.unwrap();
    }
    let store = SqliteStore::open(&url, SqliteOptions::default())
        .await
        .unwrap();
    assert_eq!(store.org_by_slug("s").await.unwrap(), org);
}

/// The change hint moves on every change, this process's or another's (its
/// own pool and counter, the same file). Writes that record no change (an
/// assertion's `jti` here; codes and refresh tokens are the same) leave it
/// where it was, whichever process made them, so they cost no reader a read
/// of the feed.
#[tokio::test]
async fn the_change_hint_moves_on_every_change_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("q.db").display());
    let mine = SqliteStore::open(&url, SqliteOptions::default())
        .await
        .unwrap();
    let theirs = SqliteStore::open(&url, SqliteOptions::default())
        .await
        .unwrap();
    let (org, audit) = org_and_audit();
    theirs.insert_org(&org, &[], &audit).await.unwrap();
    let before = mine.change_hint();
    assert!(before.is_some());
    assert_eq!(mine.change_hint(), before);
    for (store, jti) in [(&mine, "j1"), (&theirs, "j2"), (&mine, "j3")] {
        assert!(
            store
                .use_assertion_jti("app", jti, 2000, 1000)
                .await
                .unwrap()
        );
    }
    assert_eq!(mine.change_hint(), before, "a jti moved the hint");
    theirs
        .revoke_access_token("jti-1", "o", 2000, 1000)
        .await
        .unwrap();
    let after = mine.change_hint();
    assert_ne!(
        after, before,
        "another process's change did not move the hint"
    );
    mine.revoke_access_token("jti-2", "o", 2000, 1000)
        .await
        .unwrap();
    assert_ne!(
        mine.change_hint(),
        after,
        "this process's change did not move the hint"
    );
}

/// Only a database file has a change mark beside it: an in-memory database
/// (which sqlx names `file:sqlx-in-memory-N`) must not leave such files in
/// the working directory.
#[tokio::test]
async fn only_a_database_file_has_a_change_mark() {
    let memory = SqliteStore::open("sqlite::memory:", SqliteOptions::default())
        .await
        .unwrap();
    assert_eq!(memory.dialect().mark, None);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.db");
    let url = format!("sqlite://{}", file.display());
    let store = SqliteStore::open(&url, SqliteOptions::default())
        .await
        .unwrap();
    let mark = std::path::PathBuf::from(format!("{}-changes", file.display()));
    assert_eq!(store.dialect().mark.as_ref(), Some(&mark));
}

/// Past its size limit the mark starts over under a new inode: every append,
/// the one that replaces it included, gives a fingerprint not seen before,
/// and the mark is never missing.
#[test]
fn every_append_to_the_change_mark_moves_its_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db-changes");
    let fingerprint = || super::mark_fingerprint(&path);
    let mut seen = std::collections::HashSet::from([fingerprint()]);
    for i in 0..10 {
        super::mark_change(&path, 4).unwrap();
        assert!(
            seen.insert(fingerprint()),
            "append {i} left the fingerprint as it was"
        );
        let len = std::fs::metadata(&path).unwrap().len();
        assert!((1..4).contains(&len), "the mark is {len} bytes long");
    }
}

/// A write made as one `BEGIN IMMEDIATE … COMMIT` call whose future is dropped
/// (the client went away) can leave the writer's connection inside its
/// transaction, holding SQLite's one write lock. The next turn ends it: no
/// write of this process or another waits on it.
#[tokio::test]
async fn a_write_call_abandoned_inside_its_transaction_keeps_no_lock() {
    use crate::Dialect;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let opts = SqliteOptions {
        busy_timeout: Duration::from_secs(2),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&url, opts.clone()).await.unwrap();
    {
        let mut turn = store.dialect().write_turn().await;
        let conn = turn.conn_for_transaction().await.unwrap();
        // What the dropped call got through before it was abandoned.
        sqlx::query("BEGIN IMMEDIATE").execute(conn).await.unwrap();
    }
    let (org, audit) = org_and_audit();
    let started = Instant::now();
    store.insert_org(&org, &[], &audit).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the write waited {:?} for the abandoned transaction's lock",
        started.elapsed()
    );
    let other = SqliteStore::open(&url, opts).await.unwrap();
    assert_eq!(other.org_by_slug("s").await.unwrap(), org);
}

/// See the crate's documentation: a bare `LIMIT $n` makes SQLite prepare the
/// statement again on every execution.
#[test]
fn no_query_binds_a_bare_limit() {
    fn scan(dir: &std::path::Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                scan(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let needle = ["LIMIT", " $"].concat();
                for (n, line) in text.lines().enumerate() {
                    if line.contains(&needle) && !line.trim_start().starts_with("//") {
                        found.push(format!("{}:{}", path.display(), n + 1));
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    scan(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    assert!(found.is_empty(), "bare LIMIT parameters at {found:?}");
}
