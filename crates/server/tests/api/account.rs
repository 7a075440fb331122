//! The person's own account page (issue 15 §5), `/account`, driven as a
//! browser would (a reqwest cookie jar, forms read from the page): profile,
//! password change, the apps they allowed with revoke, their sessions with
//! "sign out everywhere"; and a second factor required per role (§1).

use std::time::Duration;

use gatehouse_core::clock::Clock;
use reqwest::Method;
use serde_json::{Value, json};

use crate::admin_api::acme;
use crate::browser::{Browser, Page, code_for};
use crate::helpers::{
    PASSWORD, TestApp, WebApp, authorize_params, code_params, eventually, refresh_params,
};

const NEW_PASSWORD: &str = "a much longer passphrase";

async fn setup() -> (TestApp, WebApp) {
    let app = TestApp::spawn().await;
    app.seed().await;
    app.password_user("ana@acme.test", "developer").await;
    let web = app.web_app("cfgateway").await;
    (app, web)
}

/// Signs `browser` in and into `web`: the token response.
async fn sign_into(app: &TestApp, browser: &Browser, web: &WebApp) -> Value {
    let code = code_for(browser, &authorize_params(web), "ana@acme.test").await;
    let resp = app.web_token(web, &code_params(&code)).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// `GET /account`, asserting it is shown.
async fn account(app: &TestApp, browser: &Browser) -> Page {
    let page = browser.get(&app.url("/account")).await;
    assert_eq!(page.status, 200, "{page:?}");
    page
}

/// Posts `form` (with the page's CSRF token) to `path`.
async fn post_from(browser: &Browser, page: &Page, path: &str, form: &[(&str, &str)]) -> Page {
    let csrf = page.hidden("csrf_token").expect("a CSRF token");
    let mut pairs = vec![("csrf_token", csrf.as_str())];
    pairs.extend_from_slice(form);
    browser.post(path, &pairs).await
}

fn location(page: &Page) -> &str {
    page.headers
        .get("location")
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    let org = app.org("acme-studio").await;
    app.s()
        .audit_events(&org.id, None, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

#[tokio::test]
async fn the_page_needs_a_session_and_shows_the_person_and_their_apps() {
    let (app, web) = setup().await;
    let b = Browser::new(&app);
    let out = b.get(&app.url("/account")).await;
    assert_eq!(out.status, 401, "{out:?}");
    assert!(out.body.contains("Sign in"), "{}", out.body);
    sign_into(&app, &b, &web).await;
    let page = account(&app, &b).await;
    assert!(page.body.contains("ana@acme.test"));
    assert!(page.body.contains("href=\"/account/security\""));
    assert!(page.body.contains("Studio sync"), "{}", page.body);
    assert!(
        page.body.contains("cfgateway offline_access openid"),
        "{}",
        page.body
    );
    assert!(page.body.contains("(this browser)"));
    assert_eq!(page.hidden("name").as_deref(), Some("Ana Lima"));
    // Every form carries the token; a post without it changes nothing.
    let forged = b
        .post(
            "/account/profile",
            &[("name", "Mallory"), ("csrf_token", "x")],
        )
        .await;
    assert_eq!(forged.status, 403, "{forged:?}");
    let user = app.user_by_email("ana@acme.test").await.unwrap();
    assert_eq!(user.name.as_deref(), Some("Ana Lima"));
}

#[tokio::test]
async fn the_profile_is_checked_saved_and_audited() {
    let (app, web) = setup().await;
    let b = Browser::new(&app);
    sign_into(&app, &b, &web).await;
    let page = account(&app, &b).await;
    let bad = post_from(
        &b,
        &page,
        "/account/profile",
        &[
            ("name", "Ana Lima"),
            ("given_name", "Ana"),
            ("locale", "not a locale"),
        ],
    )
    .await;
    assert_eq!(bad.status, 422, "{bad:?}");
    assert!(
        bad.body.contains("Language: must be a BCP 47"),
        "{}",
        bad.body
    );
    // What was typed is kept for correcting.
    assert_eq!(bad.hidden("locale").as_deref(), Some("not a locale"));
    let long = "x".repeat(101);
    let too_long = post_from(&b, &page, "/account/profile", &[("name", &long)]).await;
    assert_eq!(too_long.status, 422, "{too_long:?}");
    let ok = post_from(
        &b,
        &page,
        "/account/profile",
        &[
            ("name", "Ana M. Lima"),
            ("given_name", "Ana"),
            ("family_name", "Lima"),
            ("locale", "pt-BR"),
            ("zoneinfo", "America/Sao_Paulo"),
            // Not the person's to vouch for: ignored.
            ("email_verified", "true"),
        ],
    )
    .await;
    assert_eq!(ok.status, 303, "{ok:?}");
    assert_eq!(location(&ok), "/account?done=profile");
    let user = app.user_by_email("ana@acme.test").await.unwrap();
    assert_eq!(user.name.as_deref(), Some("Ana M. Lima"));
    assert_eq!(user.profile.locale.as_deref(), Some("pt-BR"));
    assert_eq!(user.profile.zoneinfo.as_deref(), Some("America/Sao_Paulo"));
    assert!(!user.profile.email_verified);
    let shown = b.get(&app.url("/account?done=profile")).await;
    assert!(shown.body.contains("Your profile is saved."));
    assert_eq!(shown.hidden("given_name").as_deref(), Some("Ana"));
    assert!(
        audit_actions(&app)
            .await
            .contains(&"account.profile_updated".to_owned())
    );
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_ends_the_other_sessions() {
    let (app, web) = setup().await;
    let here = Browser::new(&app);
    let elsewhere = Browser::new(&app);
    sign_into(&app, &here, &web).await;
    sign_into(&app, &elsewhere, &web).await;
    let page = account(&app, &here).await;
    let change = |current: &'static str, new: &'static str, again: &'static str| {
        [
            ("current_password", current),
            ("new_password", new),
            ("repeat_password", again),
        ]
    };
    // A wrong current password changes nothing.
    let wrong = post_from(
        &here,
        &page,
        "/account/password",
        &change("not my password", NEW_PASSWORD, NEW_PASSWORD),
    )
    .await;
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert!(wrong.body.contains("current password is not right"));
    // So does a new one that breaks the rules or is mistyped.
    let short = post_from(
        &here,
        &page,
        "/account/password",
        &change(PASSWORD, "short", "short"),
    )
    .await;
    assert_eq!(short.status, 422, "{short:?}");
    assert!(
        short.body.contains("at least 8 characters"),
        "{}",
        short.body
    );
    let mistyped = post_from(
        &here,
        &page,
        "/account/password",
        &change(PASSWORD, NEW_PASSWORD, "a much longer passphrasE"),
    )
    .await;
    assert_eq!(mistyped.status, 422, "{mistyped:?}");
    let user = app.user_by_email("ana@acme.test").await.unwrap();
    let old_hash = user.password_hash.clone().unwrap();
    assert!(gatehouse_core::password::verify(PASSWORD, &old_hash));
    account(&app, &elsewhere).await;

    let ok = post_from(
        &here,
        &page,
        "/account/password",
        &change(PASSWORD, NEW_PASSWORD, NEW_PASSWORD),
    )
    .await;
    assert_eq!(ok.status, 303, "{ok:?}");
    assert_eq!(location(&ok), "/account?done=password");
    // This browser stays signed in; the other one is signed out.
    account(&app, &here).await;
    assert_eq!(elsewhere.get(&app.url("/account")).await.status, 401);
    assert!(
        elsewhere
            .authorize(&authorize_params(&web))
            .await
            .is_login()
    );
    // The new password signs in, the old one no longer does.
    let fresh = Browser::new(&app);
    let login = fresh.authorize(&authorize_params(&web)).await;
    let refused = fresh.login(&login, "ana@acme.test", PASSWORD).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    let login = fresh.authorize(&authorize_params(&web)).await;
    let signed_in = fresh.login(&login, "ana@acme.test", NEW_PASSWORD).await;
    assert!(
        signed_in.is_consent() || signed_in.status == 303,
        "{signed_in:?}"
    );
    let actions = audit_actions(&app).await;
    assert!(actions.contains(&"account.password_changed".to_owned()));
}

#[tokio::test]
async fn wrong_current_passwords_are_throttled_and_the_right_one_still_works_later() {
    let (app, web) = setup().await;
    let b = Browser::new(&app);
    sign_into(&app, &b, &web).await;
    let page = account(&app, &b).await;
    let mut last = None;
    for _ in 0..30 {
        let r = post_from(
            &b,
            &page,
            "/account/password",
            &[
                ("current_password", "guess"),
                ("new_password", NEW_PASSWORD),
                ("repeat_password", NEW_PASSWORD),
            ],
        )
        .await;
        if r.status == 429 {
            last = Some(r);
            break;
        }
        assert_eq!(r.status, 401, "{r:?}");
    }
    let throttled = last.expect("guessing is throttled");
    assert!(throttled.headers.contains_key("retry-after"));
    assert!(
        throttled.body.contains("Try again in"),
        "{}",
        throttled.body
    );
}

#[tokio::test]
async fn revoking_an_app_ends_its_refresh_and_access_tokens() {
    let (app, web) = setup().await;
    let b = Browser::new(&app);
    let tokens = sign_into(&app, &b, &web).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access).await.status(), 200);
    let page = account(&app, &b).await;
    assert!(
        page.body
            .contains(&format!("data-client-id=\"{}\"", web.client_id))
    );

    // Another person's app, or one never allowed, is not found and nothing ends.
    let unknown = post_from(&b, &page, "/account/apps/revoke", &[("client_id", "nope")]).await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert!(unknown.body.contains("no access to revoke"));
    assert_eq!(app.userinfo(access).await.status(), 200);

    let revoked = post_from(
        &b,
        &page,
        "/account/apps/revoke",
        &[("client_id", &web.client_id)],
    )
    .await;
    assert_eq!(revoked.status, 303, "{revoked:?}");
    assert_eq!(location(&revoked), "/account?done=revoked");
    let r = app.web_token(&web, &refresh_params(refresh)).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    eventually("the access token is refused", || async {
        app.userinfo(access).await.status() == 401
    })
    .await;
    let after = account(&app, &b).await;
    assert!(
        after.body.contains("You have not allowed any app"),
        "{}",
        after.body
    );
    // The consent is gone: the app must ask again.
    assert!(b.authorize(&authorize_params(&web)).await.is_consent());
    assert!(
        audit_actions(&app)
            .await
            .contains(&"account.app_revoked".to_owned())
    );
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_session_and_tells_the_apps() {
    let app = TestApp::spawn_with(
        |c| {
            c.dev = true;
            c.backchannel.poll = Duration::from_millis(50);
        },
        Default::default(),
    )
    .await;
    app.seed().await;
    app.password_user("ana@acme.test", "developer").await;
    let web = app.web_app("cfgateway").await;
    let receiver = LogoutReceiver::start().await;
    gatehouse_core::admin::set_backchannel_logout(
        app.s(),
        gatehouse_core::clock::Clock::now(app.clock.as_ref()),
        &app.policy,
        &gatehouse_core::model::Actor::operator(),
        &web.client_id,
        gatehouse_core::admin::BackchannelEdit {
            uri: Some(receiver.uri()),
            session_required: Some(true),
        },
    )
    .await
    .unwrap();
    let here = Browser::new(&app);
    let elsewhere = Browser::new(&app);
    sign_into(&app, &here, &web).await;
    sign_into(&app, &elsewhere, &web).await;
    let page = account(&app, &here).await;
    assert_eq!(
        page.body.matches("class=\"session\"").count(),
        2,
        "{}",
        page.body
    );
    let done = post_from(&here, &page, "/account/sessions/end", &[]).await;
    assert_eq!(done.status, 200, "{done:?}");
    assert!(done.body.contains("2 sessions ended"), "{}", done.body);
    // Both browsers are signed out.
    assert_eq!(here.get(&app.url("/account")).await.status, 401);
    assert_eq!(elsewhere.get(&app.url("/account")).await.status, 401);
    assert!(
        elsewhere
            .authorize(&authorize_params(&web))
            .await
            .is_login()
    );
    // The app heard of both sessions' ends.
    eventually("two logout tokens", || async { receiver.count() >= 2 }).await;
    assert!(
        audit_actions(&app)
            .await
            .contains(&"account.signed_out_everywhere".to_owned())
    );
}

#[tokio::test]
async fn a_role_that_requires_a_second_factor_leads_its_holders_to_enrol() {
    let (app, a) = acme().await;
    app.password_user("ana@acme.test", "developer").await;
    app.password_user("root-pw@acme.test", "admin").await;
    let web = app.web_app("cfgateway").await;
    let set = a
        .send(
            &app,
            Method::PUT,
            "/api/v1/org/security",
            json!({"require_mfa": false, "require_mfa_roles": ["admin", "admin"]}),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.raw);
    assert_eq!(
        set.json,
        json!({"require_mfa": false, "require_mfa_roles": ["admin"]})
    );
    // Omitted: left as it is.
    let kept = a
        .send(
            &app,
            Method::PUT,
            "/api/v1/org/security",
            json!({"require_mfa": false}),
        )
        .await;
    assert_eq!(
        kept.json["require_mfa_roles"],
        json!(["admin"]),
        "{}",
        kept.raw
    );
    // A role the organization does not have is refused; nothing changes.
    let bad = a
        .send(
            &app,
            Method::PUT,
            "/api/v1/org/security",
            json!({"require_mfa": true, "require_mfa_roles": ["wizard"]}),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.raw);
    let now = a.get(&app, "/api/v1/org/security").await;
    assert_eq!(
        now.json,
        json!({"require_mfa": false, "require_mfa_roles": ["admin"]})
    );
    let events = a.get(&app, "/api/v1/audit?limit=5").await;
    assert!(
        events.raw.contains("org.require_mfa_roles"),
        "{}",
        events.raw
    );

    // An admin is sent to set up a second factor right after the password …
    let b = Browser::new(&app);
    let login = b.authorize(&authorize_params(&web)).await;
    let after = b.login(&login, "root-pw@acme.test", PASSWORD).await;
    assert_eq!(after.status, 303, "{after:?}");
    let to = location(&after)
        .trim_start_matches(app.base.as_str())
        .to_owned();
    assert!(to.starts_with("/account/security?"), "{after:?}");
    let enrol = b.get(&app.url(&to)).await;
    assert!(
        enrol
            .body
            .contains("Your organization requires two-step verification"),
        "{}",
        enrol.body
    );
    // … and is not signed in until they do.
    assert!(b.authorize(&authorize_params(&web)).await.is_login());
    // A developer (a role without the rule) signs in with the password alone.
    let d = Browser::new(&app);
    let login = d.authorize(&authorize_params(&web)).await;
    let after = d.login(&login, "ana@acme.test", PASSWORD).await;
    assert!(after.is_consent(), "{after:?}");
}

#[tokio::test]
async fn the_consoles_roles_page_requires_a_second_factor_per_role() {
    let (app, _) = crate::console::setup().await;
    let c = crate::console::Console::sign_in(&app, "admin@acme.test").await;
    let page = c.page("/console/roles").await;
    assert!(page.contains("data-role=\"developer\""), "{page}");
    assert!(!page.contains(">Required<"), "{page}");
    let forged = c
        .http
        .post(c.url("/console/roles/mfa"))
        .form(&[("role", "developer"), ("require_mfa", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let r = c
        .post(
            "/console/roles/mfa",
            "/console/roles",
            &[("role", "developer"), ("require_mfa", "true")],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/roles?done=mfa");
    let org = app.org("acme-studio").await;
    assert_eq!(app.s().mfa_roles(&org.id).await.unwrap(), vec!["developer"]);
    let page = c.page("/console/roles").await;
    assert_eq!(page.matches(">Required<").count(), 1, "{page}");
    let unknown = c
        .post(
            "/console/roles/mfa",
            "/console/roles",
            &[("role", "wizard"), ("require_mfa", "true")],
        )
        .await;
    assert_eq!(unknown.status(), 422);
    let r = c
        .post(
            "/console/roles/mfa",
            "/console/roles",
            &[("role", "developer"), ("require_mfa", "false")],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert!(app.s().mfa_roles(&org.id).await.unwrap().is_empty());
}

/// A relying party's back-channel logout endpoint that counts the tokens.
struct LogoutReceiver {
    port: u16,
    got: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl LogoutReceiver {
    async fn start() -> LogoutReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = got.clone();
        let router = axum::Router::new().route(
            "/bc",
            axum::routing::post(move |body: String| {
                let count = count.clone();
                async move {
                    if body.starts_with("logout_token=") {
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    axum::http::StatusCode::OK
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        LogoutReceiver { port, got }
    }

    fn uri(&self) -> String {
        format!("http://127.0.0.1:{}/bc", self.port)
    }

    fn count(&self) -> usize {
        self.got.load(std::sync::atomic::Ordering::SeqCst)
    }
}

const CHROME_ON_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

/// A browser sending `user_agent`, from the loopback `local` address, with
/// `X-Forwarded-For: forwarded` when given.
fn browser_as(app: &TestApp, user_agent: &str, local: &str, forwarded: Option<&str>) -> Browser {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("user-agent", user_agent.parse().unwrap());
    if let Some(f) = forwarded {
        headers.insert("x-forwarded-for", f.parse().unwrap());
    }
    Browser::from(app, Some(local.parse().unwrap()), headers)
}

/// The `<li class="session">` items of the page, each whole.
fn session_items(page: &Page) -> Vec<String> {
    page.body
        .split("<li class=\"session\"")
        .skip(1)
        .map(|rest| rest[..rest.find("</li>").unwrap()].to_owned())
        .collect()
}

fn attr(item: &str, name: &str) -> String {
    let marker = format!("{name}=\"");
    let at = item.find(&marker).unwrap() + marker.len();
    item[at..at + item[at..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn sessions_show_their_browser_address_and_last_seen_and_one_other_can_be_ended() {
    let app = TestApp::spawn_with(
        |c| {
            c.dev = true;
            c.backchannel.poll = Duration::from_millis(50);
            // 127.0.0.1 is the load balancer: its X-Forwarded-For names the client.
            c.trusted_proxies =
                vec![gatehouse_server::config::parse_proxy("127.0.0.1/32").unwrap()];
        },
        Default::default(),
    )
    .await;
    app.seed().await;
    app.password_user("ana@acme.test", "developer").await;
    app.password_user("bo@acme.test", "developer").await;
    let web = app.web_app("cfgateway").await;
    let receiver = LogoutReceiver::start().await;
    gatehouse_core::admin::set_backchannel_logout(
        app.s(),
        gatehouse_core::clock::Clock::now(app.clock.as_ref()),
        &app.policy,
        &gatehouse_core::model::Actor::operator(),
        &web.client_id,
        gatehouse_core::admin::BackchannelEdit {
            uri: Some(receiver.uri()),
            session_required: Some(true),
        },
    )
    .await
    .unwrap();
    // Here: through the load balancer. Elsewhere: straight from 127.0.0.2,
    // with a forged X-Forwarded-For (not trusted from there), and a long
    // agent with a tab in it.
    let here = browser_as(&app, CHROME_ON_LINUX, "127.0.0.1", Some("203.0.113.7"));
    let long_agent = format!(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64;\trv:121.0) Gecko/20100101 Firefox/121.0 {}",
        "x".repeat(400)
    );
    let elsewhere = browser_as(&app, &long_agent, "127.0.0.2", Some("198.51.100.9"));
    sign_into(&app, &here, &web).await;
    sign_into(&app, &elsewhere, &web).await;

    let page = account(&app, &here).await;
    let items = session_items(&page);
    assert_eq!(items.len(), 2, "{}", page.body);
    let mine = items
        .iter()
        .find(|i| i.contains("data-this-browser"))
        .expect("this browser is marked");
    assert!(mine.contains("Chrome on Linux"), "{mine}");
    assert!(mine.contains("203.0.113.7"), "{mine}");
    assert!(
        !mine.contains("end-one"),
        "no button to end this one: {mine}"
    );
    let theirs = items
        .iter()
        .find(|i| !i.contains("data-this-browser"))
        .unwrap();
    assert!(theirs.contains("Firefox on Windows"), "{theirs}");
    assert!(theirs.contains("127.0.0.2"), "{theirs}");
    assert!(
        !theirs.contains("198.51.100.9"),
        "an untrusted peer's forwarding header is ignored"
    );
    let stored = attr(theirs, "title");
    assert_eq!(stored.chars().count(), 256, "{stored}");
    assert!(!stored.contains('\t'), "{stored}");
    let their_sid = attr(theirs, "data-sid");

    // Last seen: written once a few minutes have passed, not on every request.
    let user = app.user_id("ana@acme.test").await;
    let last_seen = |sid: String| {
        let app = &app;
        let user = user.clone();
        async move {
            app.s()
                .user_sessions(&user, app.clock.now(), 10)
                .await
                .unwrap()
                .into_iter()
                .find(|s| s.sid == sid)
                .unwrap()
                .last_seen_at
                .unwrap()
        }
    };
    let signed_in = last_seen(their_sid.clone()).await;
    app.clock.advance(60);
    account(&app, &elsewhere).await;
    assert_eq!(
        last_seen(their_sid.clone()).await,
        signed_in,
        "a minute later: no write"
    );
    app.clock.advance(300);
    account(&app, &elsewhere).await;
    let seen = last_seen(their_sid.clone()).await;
    assert_eq!(seen, app.clock.now());
    app.clock.advance(10);
    account(&app, &elsewhere).await;
    assert_eq!(last_seen(their_sid.clone()).await, seen);

    // Someone else's session cannot be ended from this page.
    let bo = Browser::new(&app);
    code_for(&bo, &authorize_params(&web), "bo@acme.test").await;
    let bo_page = account(&app, &bo).await;
    let bo_sid = attr(&session_items(&bo_page)[0], "data-sid");
    let page = account(&app, &here).await;
    let refused = post_from(
        &here,
        &page,
        "/account/sessions/end-one",
        &[("sid", &bo_sid)],
    )
    .await;
    assert_eq!(refused.status, 404, "{refused:?}");
    assert_eq!(account(&app, &bo).await.status, 200);
    // Nor this browser's own (sign out is for that), nor without the CSRF token.
    let own = attr(
        session_items(&page)
            .iter()
            .find(|i| i.contains("data-this-browser"))
            .unwrap(),
        "data-sid",
    );
    let refused = post_from(&here, &page, "/account/sessions/end-one", &[("sid", &own)]).await;
    assert_eq!(refused.status, 422, "{refused:?}");
    let forged = here
        .post("/account/sessions/end-one", &[("sid", their_sid.as_str())])
        .await;
    assert_ne!(forged.status, 303, "{forged:?}");
    assert_eq!(account(&app, &elsewhere).await.status, 200);

    // The other session ends: its browser is signed out, this one stays, and
    // the app it signed into hears of it.
    let done = post_from(
        &here,
        &page,
        "/account/sessions/end-one",
        &[("sid", &their_sid)],
    )
    .await;
    assert_eq!(done.status, 303, "{done:?}");
    assert_eq!(location(&done), "/account?done=session_ended");
    assert_eq!(elsewhere.get(&app.url("/account")).await.status, 401);
    let page = here.get(&app.url(location(&done))).await;
    assert_eq!(session_items(&page).len(), 1);
    assert!(
        page.body.contains("That session is signed out"),
        "{}",
        page.body
    );
    eventually("one logout token", || async { receiver.count() >= 1 }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 1, "only the ended session's");
    assert!(
        audit_actions(&app)
            .await
            .contains(&"account.session_ended".to_owned())
    );
    // Again: it has already ended.
    let again = post_from(
        &here,
        &page,
        "/account/sessions/end-one",
        &[("sid", &their_sid)],
    )
    .await;
    assert_eq!(again.status, 404);
}
