//! "Sign in with your organization" where no app names the organization (the
//! console, the device page): the provider is that of the single organization
//! claiming the address's domain, or of the organization the person names;
//! when several claim the domain the page asks, and never picks one. Only the
//! domain decides, never whether an account exists.

use gatehouse_core::admin::{self, UpstreamEdit};
use gatehouse_core::clock::Clock;
use gatehouse_core::model::{Actor, Org};
use gatehouse_store_sql::SqliteOptions;

use super::Console;
use crate::helpers::TestApp;

/// Development mode, so a provider may be this very server (its discovery
/// is fetched on the way there; the `client_id` tells which provider it was).
async fn app() -> TestApp {
    let app = TestApp::spawn_with(|c| c.dev = true, SqliteOptions::default()).await;
    app.seed().await;
    app
}

async fn provide(app: &TestApp, org: &Org, client_id: &str, domains: &[&str]) {
    let edit = UpstreamEdit {
        issuer: app.base.clone(),
        client_id: client_id.into(),
        client_secret: Some("the provider's secret".into()),
        domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        allow_passwords: false,
        default_role: "member".into(),
        trust_upstream_mfa: false,
    };
    let now = app.clock.now();
    admin::set_upstream(app.s(), &app.kek, now, &Actor::operator(), org, edit, true)
        .await
        .unwrap();
}

/// "Sign in with your organization" on `page`'s form, posted to `action`.
async fn sso(
    c: &Console,
    (page, action): (&str, &str),
    email: &str,
    org: Option<&str>,
) -> reqwest::Response {
    let mut fields = vec![("email", email), ("sso", "1")];
    if let Some(o) = org {
        fields.push(("organization", o));
    }
    c.post(action, page, &fields).await
}

/// The provider the person was sent to: the `client_id` of the redirect.
fn sent_to(r: reqwest::Response) -> String {
    assert_eq!(r.status(), 303, "{r:?}");
    let to = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(to.path(), "/connect/authorize");
    let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    q["client_id"].clone()
}

const CONSOLE: (&str, &str) = ("/console", "/console/login");
const DEVICE: (&str, &str) = ("/device", "/device/login");

#[tokio::test]
async fn the_single_claiming_organization_is_used_and_several_make_the_person_choose() {
    let app = app().await;
    let acme = app.org("acme-studio").await;
    provide(&app, &acme, "idp-acme", &["acme.test"]).await;
    let c = Console::new(&app);
    for form in [CONSOLE, DEVICE] {
        // An account that exists and one that does not: the same answer.
        for email in ["dev@acme.test", "nobody@acme.test"] {
            assert_eq!(sent_to(sso(&c, form, email, None).await), "idp-acme");
        }
        let r = sso(&c, form, "ana@elsewhere.test", None).await;
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("No organization here"));
        let r = sso(&c, form, "", None).await;
        assert_eq!(r.status(), 400);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Enter your e-mail address first")
        );
    }

    let now = app.clock.now();
    let other = admin::create_org(app.s(), now, &Actor::operator(), "Other Co", None)
        .await
        .unwrap();
    provide(&app, &other, "idp-other", &["other.test", "acme.test"]).await;
    for form in [CONSOLE, DEVICE] {
        for email in ["dev@acme.test", "nobody@acme.test"] {
            let r = sso(&c, form, email, None).await;
            assert_eq!(r.status(), 200);
            let page = r.text().await.unwrap();
            assert!(page.contains("Several organizations"), "{page}");
            assert!(page.contains("name=\"organization\""), "{page}");
        }
        let named = |slug| sso(&c, form, "dev@acme.test", Some(slug));
        assert_eq!(sent_to(named("acme-studio").await), "idp-acme");
        assert_eq!(sent_to(named("other-co").await), "idp-other");
        // An organization whose provider does not claim the domain, or none.
        assert_eq!(named("no-such-org").await.status(), 400);
        let r = sso(&c, form, "dev@other.test", Some("acme-studio")).await;
        assert_eq!(r.status(), 400);
        assert_eq!(
            sent_to(sso(&c, form, "dev@other.test", None).await),
            "idp-other"
        );
    }
}

#[tokio::test]
async fn a_sign_in_sent_upstream_needs_the_forms_csrf_token() {
    let app = app().await;
    let acme = app.org("acme-studio").await;
    provide(&app, &acme, "idp-acme", &["acme.test"]).await;
    let c = Console::new(&app);
    for (_, action) in [CONSOLE, DEVICE] {
        let r = c
            .http
            .post(c.url(action))
            .form(&[("email", "dev@acme.test"), ("sso", "1")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{action}");
    }
}
