//! E-mailed password links: live until they expire, used once (one winner of
//! concurrent uses), replaced by the person's next link; a use sets the
//! password, ends the person's sessions and revokes their grants (into the feed).

use gatehouse_core::mail_link::{LinkPurpose, MailLink};
use gatehouse_core::model::{ChangeKind, UserStatus};
use gatehouse_core::ports::{Store, StoreError};

use crate::fixtures::{ev, grant, join_all, seed_people, session};

fn link(digest: &str, user_id: &str, purpose: LinkPurpose, now: i64) -> MailLink {
    MailLink {
        digest: digest.into(),
        user_id: user_id.into(),
        purpose,
        created_at: now,
        expires_at: now + purpose.ttl(),
    }
}

fn gone<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound))
}

pub async fn a_mail_link_is_used_once_replaced_by_the_next_and_expires(s: &dyn Store) {
    seed_people(s).await;
    // Expiry: live strictly before `expires_at`, never usable after.
    let reset = link("d-reset", "u1", LinkPurpose::Reset, 1000);
    s.insert_mail_link(&reset, &ev()).await.unwrap();
    assert_eq!(s.mail_link("d-reset", 1000 + 1799).await.unwrap(), reset);
    assert!(gone(s.mail_link("d-reset", 1000 + 1800).await));
    assert!(gone(
        s.use_mail_link("d-reset", "$argon2id$new", 1000 + 1800, &ev())
            .await
    ));
    assert!(gone(s.mail_link("nobody", 1000).await));

    // A new link replaces the person's earlier one; others' links stay.
    s.insert_mail_link(&link("d-a", "u1", LinkPurpose::Invite, 2000), &ev())
        .await
        .unwrap();
    s.insert_mail_link(&link("d-u3", "u3", LinkPurpose::Reset, 2000), &ev())
        .await
        .unwrap();
    s.insert_mail_link(&link("d-b", "u1", LinkPurpose::Reset, 2001), &ev())
        .await
        .unwrap();
    assert!(gone(s.mail_link("d-a", 2002).await));
    assert!(gone(
        s.use_mail_link("d-a", "$argon2id$a", 2002, &ev()).await
    ));
    assert_eq!(s.mail_link("d-u3", 2002).await.unwrap().user_id, "u3");

    // A use: the password, the sessions, the grants (each into the feed).
    s.insert_session(&session("sess-1", "sid-1", 20_000))
        .await
        .unwrap();
    s.insert_grant(&grant("g1")).await.unwrap();
    let before = s.latest_change().await.unwrap();
    let audit = ev();
    let uses = join_all(
        (0..6)
            .map(|_| Box::pin(s.use_mail_link("d-b", "$argon2id$b", 2005, &audit)))
            .collect(),
    )
    .await;
    let won: Vec<_> = uses.into_iter().filter_map(Result::ok).collect();
    assert_eq!(won.len(), 1, "one use wins");
    assert_eq!((won[0].sessions_ended, won[0].grants_revoked), (1, 1));
    let u1 = s.user_by_id("u1").await.unwrap();
    assert_eq!(u1.password_hash.as_deref(), Some("$argon2id$b"));
    assert!(gone(s.session("sess-1", 2006).await));
    assert_eq!(s.grant("g1").await.unwrap().revoked_at, Some(2005));
    let changes = s.changes_since(before, 100).await.unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c.kind == ChangeKind::Grant && c.key == "g1"),
        "{changes:?}"
    );
    // Used: never again, and no longer shown.
    assert!(gone(s.mail_link("d-b", 2006).await));
    assert!(gone(
        s.use_mail_link("d-b", "$argon2id$c", 2006, &ev()).await
    ));
    assert_eq!(
        s.user_by_id("u1").await.unwrap().password_hash.as_deref(),
        Some("$argon2id$b")
    );

    // A deactivated person's link sets nothing (and stays unused).
    s.set_user_status("u3", UserStatus::Deactivated, 2010, &ev())
        .await
        .unwrap();
    assert!(gone(
        s.use_mail_link("d-u3", "$argon2id$u3", 2011, &ev()).await
    ));
    assert_eq!(
        s.user_by_id("u3").await.unwrap().password_hash.as_deref(),
        Some("$argon2id$x")
    );
}
