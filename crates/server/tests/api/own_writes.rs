//! A write is seen by this instance at once, whatever surface made it: the
//! store moves its change hint (and wakes its feed watcher) on every change it
//! commits, so no caller has to remember a `catch_up` or an `invalidate`.
//! Here the secret is rotated straight through the server's own store, past
//! the admin API and the console, and the old one must fail on the very next
//! request, on both backends.

use gatehouse_core::clock::{Clock, SystemClock};
use gatehouse_core::model::{Actor, AuditEvent};
use gatehouse_core::secret::ClientSecret;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_secret_rotated_through_the_store_is_refused_on_the_very_next_request() {
    let app = TestApp::spawn().await;
    app.seed().await;
    let client = app.app("dev@acme.test", "cfgateway", None, None).await;
    let grant = [("grant_type", "client_credentials")];
    // Warm the client cache: this context is now served from memory.
    for _ in 0..2 {
        let ok = app
            .token_form(Some((&client.client_id, &client.secret)), &grant)
            .await;
        assert_eq!(ok.status(), 200);
    }

    let new = ClientSecret::generate();
    let now = SystemClock.now();
    let audit = AuditEvent::new(
        &Actor::operator(),
        "",
        now,
        "app.rotate_secret",
        &client.client_id,
        "test",
    );
    app.s()
        .rotate_app_secret(&client.client_id, &new.digest(), now, &audit)
        .await
        .unwrap();

    let old = app
        .token_form(Some((&client.client_id, &client.secret)), &grant)
        .await;
    assert_eq!(old.status(), 401, "the old secret still worked");
    let fresh = app
        .token_form(Some((&client.client_id, new.expose())), &grant)
        .await;
    assert_eq!(fresh.status(), 200);
}
