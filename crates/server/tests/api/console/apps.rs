//! Settings → Integrations → Registered apps, over HTTP.

use reqwest::StatusCode;
use serde_json::Value;

use super::{Console, by_id, other_org, setup};
use crate::helpers::Client;

fn cc_fields<'a>(name: &'a str, on_behalf: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant", "client_credentials"),
        ("name", name),
        ("description", "Copies orders every night"),
        ("on_behalf_of", on_behalf),
        ("scope:cfgateway", "on"),
        ("audience", "https://gateway.acme.test"),
    ]
}

/// Follows a Post/Redirect/Get 303 to the one-time secret page.
pub(super) async fn secret_page_after(c: &Console, posted: reqwest::Response) -> reqwest::Response {
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    let to = posted.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.ends_with("/secret"), "{to}");
    let resp = c.get(&to).await;
    assert_eq!(resp.status(), 200);
    resp
}

/// Registers a client credentials app through the form; (client id, secret, page).
pub(super) async fn register(
    c: &Console,
    name: &str,
) -> (String, String, reqwest::header::HeaderMap, String) {
    let posted = c
        .post(
            "/console/apps",
            "/console/apps/new",
            &cc_fields(name, "dev@acme.test"),
        )
        .await;
    let resp = secret_page_after(c, posted).await;
    let headers = resp.headers().clone();
    let html = resp.text().await.unwrap();
    (
        by_id(&html, "client-id"),
        by_id(&html, "client-secret"),
        headers,
        html,
    )
}

#[tokio::test]
async fn the_console_asks_to_sign_in_with_the_login_page() {
    let (app, _) = setup().await;
    let c = Console::new(&app);
    for path in [
        "/console/apps",
        "/console/apps/new",
        "/console/users",
        "/console/roles",
        "/console/audit",
    ] {
        let resp = c.get(path).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(resp.headers()["location"], "/console");
    }
    let resp = c.get("/console").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let html = resp.text().await.unwrap();
    assert!(html.contains("action=\"/console/login\""), "{html}");
    // A wrong password is refused on the same page, the email kept.
    let resp = c
        .post(
            "/console/login",
            "/console",
            &[("email", "admin@acme.test"), ("password", "wrong")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let html = resp.text().await.unwrap();
    assert!(html.contains("Wrong email or password."));
    assert!(html.contains("value=\"admin@acme.test\""));
}

#[tokio::test]
async fn signing_in_sets_a_hardened_session_cookie_and_sign_out_ends_it() {
    let (app, _) = setup().await;
    let c = Console::new(&app);
    let token = c.csrf("/console").await;
    let resp = c
        .http
        .post(c.url("/console/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "admin@acme.test"),
            ("password", crate::helpers::PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("gatehouse_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert_eq!(c.get("/console/apps").await.status(), 200);
    let resp = c.post("/console/logout", "/console/apps", &[]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(c.get("/console/apps").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_admin_registers_a_client_credentials_app_and_sees_the_secret_once() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let list = c.page("/console/apps").await;
    assert!(list.contains("Settings → Integrations → Registered apps"));
    let form = c.get("/console/apps/new").await;
    let csp = form.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("form-action 'self'"),
        "{csp}"
    );
    assert!(form.text().await.unwrap().contains("REGISTER APP"));

    let (client_id, secret, headers, html) = register(&c, "Nightly sync").await;
    assert_eq!(headers["cache-control"], "no-store");
    assert!(html.contains("This secret will not be shown again"));
    assert_eq!(secret.len(), 43, "256 bits, base64url");

    // The secret works at the token endpoint…
    let token = app
        .token(
            &Client {
                client_id: client_id.clone(),
                secret: secret.clone(),
                user_id: String::new(),
            },
            &[],
        )
        .await;
    assert!(token["access_token"].is_string());
    // …and is never on a page again.
    for path in [
        "/console/apps".to_owned(),
        format!("/console/apps/{client_id}"),
        format!("/console/apps/{client_id}/rotate"),
    ] {
        let html = c.page(&path).await;
        assert!(!html.contains(&secret), "{path} shows the secret");
    }
    let list = c.page("/console/apps").await;
    assert!(
        list.contains("Nightly sync")
            && list.contains(&client_id)
            && list.contains("dev@acme.test")
    );
    let stored = app.s().app_by_client_id(&client_id).await.unwrap();
    assert_ne!(stored.secret_hash, secret, "stored as a hash");
}

/// Reloading the secret page (Post/Redirect/Get) neither registers a second app
/// nor shows the secret again; another session never sees it.
#[tokio::test]
async fn reloading_the_secret_page_registers_nothing_and_shows_the_secret_no_more() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let other = Console::sign_in(&app, "admin@acme.test").await;
    let posted = c
        .post(
            "/console/apps",
            "/console/apps/new",
            &cc_fields("Nightly sync", "dev@acme.test"),
        )
        .await;
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    let to = posted.headers()["location"].to_str().unwrap().to_owned();
    // Another session of the same admin gets nothing from the URL.
    let elsewhere = other.get(&to).await;
    assert_eq!(elsewhere.status(), StatusCode::GONE);
    let shown = c.get(&to).await;
    assert_eq!(shown.status(), 200);
    assert_eq!(shown.headers()["cache-control"], "no-store");
    let html = shown.text().await.unwrap();
    let secret = by_id(&html, "client-secret");
    assert_eq!(secret.len(), 43);
    // The reload: a GET, which says the secret is gone and registers nothing.
    let again = c.get(&to).await;
    assert_eq!(again.status(), StatusCode::GONE);
    let html = again.text().await.unwrap();
    assert!(html.contains("no longer shown"), "{html}");
    assert!(!html.contains(&secret));
    let org = app.s().org_by_slug("acme-studio").await.unwrap();
    assert_eq!(app.s().apps_for_org(&org.id).await.unwrap().len(), 1);
    // The same for a regenerated secret.
    let client_id = to.split('/').nth(3).unwrap().to_owned();
    let rotate = format!("/console/apps/{client_id}/rotate");
    let posted = c.post(&rotate, &rotate, &[("confirm", "yes")]).await;
    let html = secret_page_after(&c, posted).await.text().await.unwrap();
    let new_secret = by_id(&html, "client-secret");
    assert_ne!(new_secret, secret);
    let again = c.get(&to).await;
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(!again.text().await.unwrap().contains(&new_secret));
}

#[tokio::test]
async fn regenerating_the_secret_in_the_console_ends_the_old_tokens() {
    let (app, api) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let (client_id, secret, _, _) = register(&c, "Nightly sync").await;
    let client = Client {
        client_id: client_id.clone(),
        secret: secret.clone(),
        user_id: String::new(),
    };
    let old = app.token(&client, &[]).await;
    let old = old["access_token"].as_str().unwrap();
    let confirm = c.page(&format!("/console/apps/{client_id}/rotate")).await;
    assert!(
        confirm.contains("Tokens issued so far end now"),
        "{confirm}"
    );
    let resp = c
        .post(
            &format!("/console/apps/{client_id}/rotate"),
            &format!("/console/apps/{client_id}/rotate"),
            &[("confirm", "yes")],
        )
        .await;
    let resp = secret_page_after(&c, resp).await;
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let html = resp.text().await.unwrap();
    let new_secret = by_id(&html, "client-secret");
    assert_ne!(new_secret, secret);
    app.caught_up().await;
    let seen: Value = app.introspect((&api.client_id, &api.secret), old).await;
    assert_eq!(seen["active"], false, "{seen}");
    let resp = app
        .token_form(
            Some((&client_id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(resp.status(), 401, "the old secret is refused");
    app.token(
        &Client {
            client_id,
            secret: new_secret,
            user_id: String::new(),
        },
        &[],
    )
    .await;
}

#[tokio::test]
async fn a_rejected_redirect_uri_is_explained_beside_the_field_with_the_input_kept() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let resp = c
        .post(
            "/console/apps",
            "/console/apps/new",
            &[
                ("grant", "authorization_code"),
                ("name", "Studio <sync>"),
                ("redirect_uris", "https://app.test/cb#frag"),
                ("scope:cfgateway", "on"),
                ("scope:openid", "on"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    let error = by_id(&html, "redirect_uris-error");
    assert!(error.contains("must not contain a fragment"), "{error}");
    assert!(
        html.contains("value=\"Studio &#60;sync&#62;\"")
            || html.contains("value=\"Studio &lt;sync&gt;\""),
        "input kept, escaped"
    );
    assert!(html.contains(">https://app.test/cb#frag</textarea>"));
    assert!(html.contains("id=\"scope-openid\" name=\"scope:openid\" checked"));
    assert!(html.contains("value=\"authorization_code\" checked"));
    assert!(
        app.s()
            .apps_for_org(&app.s().org_by_slug("acme-studio").await.unwrap().id)
            .await
            .unwrap()
            .is_empty(),
        "nothing saved"
    );
    // A missing on-behalf user is explained beside its field.
    let resp = c
        .post("/console/apps", "/console/apps/new", &cc_fields("Sync", ""))
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    assert!(by_id(&html, "on_behalf_of-error").contains("on behalf of a user"));
}

#[tokio::test]
async fn an_app_can_act_for_a_user_created_on_the_form() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let mut fields = cc_fields("Robot", "__new__");
    fields.extend([
        ("new_user_email", "robot@acme.test"),
        ("new_user_name", "Robot"),
        ("new_user_role", "developer"),
    ]);
    let resp = c.post("/console/apps", "/console/apps/new", &fields).await;
    let resp = secret_page_after(&c, resp).await;
    let html = resp.text().await.unwrap();
    let client_id = by_id(&html, "client-id");
    let stored = app.s().app_by_client_id(&client_id).await.unwrap();
    let user = app.user_by_email("robot@acme.test").await.unwrap();
    assert_eq!(stored.on_behalf_of.as_deref(), Some(user.id.as_str()));
}

#[tokio::test]
async fn changing_the_on_behalf_user_needs_confirmation_and_deleting_ends_the_app() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let (client_id, _, _, _) = register(&c, "Nightly sync").await;
    let page = format!("/console/apps/{client_id}");
    let action = format!("/console/apps/{client_id}/on-behalf");
    let resp = c
        .post(&action, &page, &[("on_behalf_of", "ana@acme.test")])
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(by_id(&resp.text().await.unwrap(), "confirm-error").contains("current tokens end now"));
    let resp = c
        .post(
            &action,
            &page,
            &[("on_behalf_of", "ana@acme.test"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let ana = app.user_by_email("ana@acme.test").await.unwrap();
    let stored = app.s().app_by_client_id(&client_id).await.unwrap();
    assert_eq!(stored.on_behalf_of, Some(ana.id));
    assert_eq!(stored.generation, 2);

    let delete = format!("/console/apps/{client_id}/delete");
    let resp = c.post(&delete, &delete, &[("confirm", "yes")]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(c.get(&page).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn forms_without_the_csrf_token_or_from_another_origin_are_refused() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let fields = cc_fields("Sneaky", "dev@acme.test");
    let resp = c
        .http
        .post(c.url("/console/apps"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let token = c.csrf("/console/apps/new").await;
    let mut with_token = vec![("csrf_token", token.as_str())];
    with_token.extend_from_slice(&fields);
    let resp = c
        .http
        .post(c.url("/console/apps"))
        .header("origin", "https://evil.test")
        .form(&with_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let org = app.s().org_by_slug("acme-studio").await.unwrap();
    assert!(app.s().apps_for_org(&org.id).await.unwrap().is_empty());
    // Sign-out and the login form are guarded too.
    let resp = c.http.post(c.url("/console/logout")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        c.get("/console/apps").await.status(),
        200,
        "still signed in"
    );
}

#[tokio::test]
async fn a_developer_gets_403_on_app_and_user_pages() {
    let (app, _) = setup().await;
    let c = Console::new(&app);
    // The token of the sign-in form stays this browser's CSRF token.
    let token = c.csrf("/console").await;
    let resp = c
        .http
        .post(c.url("/console/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", "ana@acme.test"),
            ("password", crate::helpers::PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    for path in [
        "/console/apps",
        "/console/apps/new",
        "/console/users",
        "/console/roles",
    ] {
        let resp = c.get(path).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(resp.text().await.unwrap().contains("does not carry the"));
    }
    let mut fields = vec![("csrf_token", token.as_str())];
    fields.extend(cc_fields("Mine", "ana@acme.test"));
    let resp = c
        .http
        .post(c.url("/console/apps"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let org = app.s().org_by_slug("acme-studio").await.unwrap();
    assert!(app.s().apps_for_org(&org.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn another_organizations_apps_and_users_are_404_whatever_the_action() {
    let (app, _) = setup().await;
    let (their_user, their_app) = other_org(&app).await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    for path in [
        format!("/console/apps/{their_app}"),
        format!("/console/apps/{their_app}/rotate"),
        format!("/console/apps/{their_app}/delete"),
        "/console/apps/no-such-app".to_owned(),
    ] {
        assert_eq!(
            c.get(&path).await.status(),
            StatusCode::NOT_FOUND,
            "GET {path}"
        );
    }
    for (path, fields) in [
        (
            format!("/console/apps/{their_app}/rotate"),
            vec![("confirm", "yes")],
        ),
        (
            format!("/console/apps/{their_app}/delete"),
            vec![("confirm", "yes")],
        ),
        (
            format!("/console/apps/{their_app}/on-behalf"),
            vec![("on_behalf_of", "dev@acme.test"), ("confirm", "yes")],
        ),
        (
            format!("/console/apps/{their_app}/edit"),
            vec![("name", "Mine now"), ("description", "")],
        ),
        (
            format!("/console/apps/{their_app}/status"),
            vec![("status", "disabled")],
        ),
        (
            format!("/console/users/{their_user}/status"),
            vec![("status", "deactivated")],
        ),
    ] {
        let resp = c.post(&path, "/console/apps", &fields).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "POST {path}");
    }
    let theirs = app.s().app_by_client_id(&their_app).await.unwrap();
    assert_eq!(theirs.generation, 1, "untouched");
    assert_eq!(theirs.name, "Their app");
    assert_eq!(theirs.status, gatehouse_core::model::AppStatus::Active);
    let bob = app.s().user_by_id(&their_user).await.unwrap();
    assert_eq!(bob.status, gatehouse_core::model::UserStatus::Active);
    // Their apps are not in our list either.
    assert!(!c.page("/console/apps").await.contains(&their_app));
}

/// Registers an authorization code app through the form; its client id.
async fn register_web(c: &Console) -> String {
    let resp = c
        .post(
            "/console/apps",
            "/console/apps/new",
            &[
                ("grant", "authorization_code"),
                ("name", "Studio"),
                ("redirect_uris", crate::helpers::CALLBACK),
                ("scope:openid", "on"),
            ],
        )
        .await;
    let resp = secret_page_after(c, resp).await;
    by_id(&resp.text().await.unwrap(), "client-id")
}

#[tokio::test]
async fn an_admin_edits_an_app_and_the_redirect_policy_explains_a_rejected_uri() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let client_id = register_web(&c).await;
    let page = format!("/console/apps/{client_id}");
    let action = format!("/console/apps/{client_id}/edit");
    let html = c.page(&page).await;
    assert!(html.contains(&format!(">{}</textarea>", crate::helpers::CALLBACK)));

    // A `.internal` host is refused by the policy, explained beside the field,
    // and everything typed is kept.
    let typed = format!("{}\nhttps://app.internal/cb", crate::helpers::CALLBACK);
    let resp = c
        .post(
            &action,
            &page,
            &[
                ("name", "Studio 2"),
                ("description", "Kept <text>"),
                ("redirect_uris", &typed),
                ("post_logout_redirect_uris", ""),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    let error = by_id(&html, "redirect_uris-error");
    assert!(
        error.contains("https://app.internal/cb")
            && error.contains("`.internal` hosts are not allowed"),
        "{error}"
    );
    assert!(html.contains("value=\"Studio 2\""));
    assert!(
        html.contains("Kept &#60;text&#62;</textarea>")
            || html.contains("Kept &lt;text&gt;</textarea>")
    );
    assert!(html.contains("https://app.internal/cb</textarea>"));
    let stored = app.s().app_by_client_id(&client_id).await.unwrap();
    assert_eq!(stored.name, "Studio", "nothing saved");

    // An empty name is explained beside its field.
    let resp = c
        .post(
            &action,
            &page,
            &[("name", " "), ("redirect_uris", crate::helpers::CALLBACK)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(by_id(&resp.text().await.unwrap(), "name-error").contains("must not be empty"));

    // A valid edit is saved and reported.
    let resp = c
        .post(
            &action,
            &page,
            &[
                ("name", "Studio 2"),
                ("description", "The studio's web app"),
                (
                    "redirect_uris",
                    &format!("{}\r\n", crate::helpers::CALLBACK),
                ),
                ("post_logout_redirect_uris", crate::helpers::BYE),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        resp.headers()["location"],
        format!("/console/apps/{client_id}?done=saved")
    );
    let stored = app.s().app_by_client_id(&client_id).await.unwrap();
    assert_eq!(stored.name, "Studio 2");
    assert_eq!(stored.description.as_deref(), Some("The studio's web app"));
    assert_eq!(stored.redirect_uris, [crate::helpers::CALLBACK]);
    assert_eq!(stored.post_logout_redirect_uris, [crate::helpers::BYE]);
    let html = c.page(&format!("{page}?done=saved")).await;
    assert!(html.contains("Changes saved."));
    // The audit log has it.
    assert!(c.page("/console/audit").await.contains("app.update"));
}

#[tokio::test]
async fn a_client_credentials_app_edits_only_its_name_and_description() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let (client_id, _, _, _) = register(&c, "Nightly sync").await;
    let page = format!("/console/apps/{client_id}");
    assert!(!c.page(&page).await.contains("id=\"redirect_uris\""));
    let resp = c
        .post(
            &format!("{page}/edit"),
            &page,
            &[
                ("name", "Nightly copy"),
                ("description", ""),
                ("redirect_uris", "https://sync.acme.test/callback"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let stored = app.s().app_by_client_id(&client_id).await.unwrap();
    assert_eq!(stored.name, "Nightly copy");
    assert_eq!(stored.description, None, "cleared");
    assert!(stored.redirect_uris.is_empty(), "ignored for this grant");
}

#[tokio::test]
async fn disabling_an_app_ends_its_tokens_and_enabling_lets_it_ask_again() {
    let (app, api) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let (client_id, secret, _, _) = register(&c, "Nightly sync").await;
    let client = Client {
        client_id: client_id.clone(),
        secret: secret.clone(),
        user_id: String::new(),
    };
    let old = app.token(&client, &[]).await;
    let old = old["access_token"].as_str().unwrap();
    let page = format!("/console/apps/{client_id}");
    let action = format!("{page}/status");
    let html = c.page(&page).await;
    assert!(html.contains("Disabling the app ends every token it holds"));
    assert_eq!(by_id(&html, "disable"), "Disable app");

    let resp = c.post(&action, &page, &[("status", "disabled")]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let stored = app.s().app_by_client_id(&client_id).await.unwrap();
    assert_eq!(stored.status, gatehouse_core::model::AppStatus::Disabled);
    app.caught_up().await;
    let seen: Value = app.introspect((&api.client_id, &api.secret), old).await;
    assert_eq!(seen["active"], false, "{seen}");
    let resp = app
        .token_form(
            Some((&client_id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_ne!(resp.status(), 200, "a disabled app gets no tokens");
    let html = c.page(&format!("{page}?done=disabled")).await;
    assert!(html.contains("every token it held has ended"));
    assert_eq!(by_id(&html, "status"), "disabled");
    assert_eq!(by_id(&html, "enable"), "Enable app");

    let resp = c.post(&action, &page, &[("status", "active")]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    app.token(&client, &[]).await;
    let seen: Value = app.introspect((&api.client_id, &api.secret), old).await;
    assert_eq!(seen["active"], false, "the old token stays ended");
    // A bad status is refused; the audit log has both changes.
    let resp = c.post(&action, &page, &[("status", "paused")]).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let audit = c.page("/console/audit").await;
    assert!(audit.contains("app.disable") && audit.contains("app.enable"));
}

#[tokio::test]
async fn the_apps_list_says_when_each_app_was_last_used() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let (client_id, _, _, _) = register(&c, "Nightly sync").await;
    let list = c.page("/console/apps").await;
    assert!(list.contains("<th>Last used</th>"));
    let row = &list[list.find(&client_id).unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("<td>never</td>"), "{row}");
    // What the server's housekeeping writes (at most once a minute).
    app.s()
        .record_app_use(&[(client_id.clone(), 1_795_444_000)])
        .await
        .unwrap();
    let list = c.page("/console/apps").await;
    let row = &list[list.find(&client_id).unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("<td>2026-11-23 14:26 UTC</td>"), "{row}");
    let page = c.page(&format!("/console/apps/{client_id}")).await;
    assert!(page.contains("<td>2026-11-23 14:26 UTC</td>"));
}

#[tokio::test]
async fn an_admin_requires_pushed_authorization_requests_with_the_edit_forms_box() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let client_id = register_web(&c).await;
    let page = format!("/console/apps/{client_id}");
    let html = c.page(&page).await;
    assert_eq!(by_id(&html, "require-par"), "Optional");
    assert!(!html.contains("name=\"require_par\" value=\"yes\" checked"));
    let fields = |par: Option<&'static str>| {
        let mut f = vec![
            ("name", "Studio"),
            ("redirect_uris", crate::helpers::CALLBACK),
        ];
        if let Some(v) = par {
            f.push(("require_par", v));
        }
        f
    };
    let resp = c
        .post(&format!("{page}/edit"), &page, &fields(Some("yes")))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(
        app.s()
            .app_by_client_id(&client_id)
            .await
            .unwrap()
            .require_par
    );
    let html = c.page(&page).await;
    assert_eq!(by_id(&html, "require-par"), "Required");
    assert!(html.contains("name=\"require_par\" value=\"yes\" checked"));
    // Getting started pushes the request first.
    assert!(html.contains("/connect/par"), "{html}");
    assert!(
        c.page("/console/audit")
            .await
            .contains("pushed authorization requests required")
    );
    // An unticked box is not sent: the requirement is lifted.
    let resp = c.post(&format!("{page}/edit"), &page, &fields(None)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(
        !app.s()
            .app_by_client_id(&client_id)
            .await
            .unwrap()
            .require_par
    );
}

/// The `<tr>` of the secret `id` on the app's page.
fn secret_row<'a>(page: &'a str, id: &str) -> &'a str {
    let at = page
        .find(&format!("id=\"secret-{id}\""))
        .unwrap_or_else(|| panic!("no row for secret {id}"));
    let row = &page[at..];
    &row[..row.find("</tr>").unwrap()]
}

/// The ids of the secrets the app's page lists, in order.
fn secret_ids(page: &str) -> Vec<String> {
    page.match_indices("id=\"secret-")
        .map(|(at, m)| {
            let rest = &page[at + m.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

#[tokio::test]
async fn an_admin_adds_a_second_secret_then_retires_the_old_one_which_ends_only_its_tokens() {
    let (app, api) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    let (client_id, old, _, _) = register(&c, "Nightly sync").await;
    let page_path = format!("/console/apps/{client_id}");
    let page = c.page(&page_path).await;
    let ids = secret_ids(&page);
    assert_eq!(ids.len(), 1);
    assert!(page.contains("Add a second secret"), "{page}");
    assert!(
        !page.contains("id=\"retire-"),
        "the only secret has no retire button"
    );
    let old_token = app
        .token(
            &Client {
                client_id: client_id.clone(),
                secret: old.clone(),
                user_id: String::new(),
            },
            &[],
        )
        .await;
    let old_token = old_token["access_token"].as_str().unwrap().to_owned();

    // A grace period the form does not offer is refused, and nothing is added.
    let bad = c
        .post(
            &format!("{page_path}/secrets"),
            &page_path,
            &[("expires_in", "7w")],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(secret_ids(&c.page(&page_path).await).len(), 1);

    app.clock.advance(1);
    let posted = c
        .post(
            &format!("{page_path}/secrets"),
            &page_path,
            &[("expires_in", "7d")],
        )
        .await;
    let resp = secret_page_after(&c, posted).await;
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let html = resp.text().await.unwrap();
    assert!(html.contains("Second secret key"), "{html}");
    let new = by_id(&html, "client-secret");
    assert_ne!(new, old);
    let new_client = Client {
        client_id: client_id.clone(),
        secret: new.clone(),
        user_id: String::new(),
    };
    let new_token = app.token(&new_client, &[]).await;
    let new_token = new_token["access_token"].as_str().unwrap().to_owned();
    app.state.flush_usage().await;

    let page = c.page(&page_path).await;
    assert!(
        !page.contains(&old) && !page.contains(&new),
        "a value is on the page"
    );
    let ids = secret_ids(&page);
    assert_eq!(ids.len(), 2);
    let (old_id, new_id) = (ids[0].clone(), ids[1].clone());
    // The old one ends in 7 days; both show when they were last used.
    assert!(
        !secret_row(&page, &old_id).contains("<td>—</td>"),
        "{}",
        secret_row(&page, &old_id)
    );
    assert!(secret_row(&page, &new_id).contains("<td>—</td>"));
    for id in [&old_id, &new_id] {
        assert!(
            !secret_row(&page, id).contains(">never<"),
            "{}",
            secret_row(&page, id)
        );
        assert!(secret_row(&page, id).contains(&format!("id=\"retire-{id}\"")));
    }
    assert!(!page.contains("Add a second secret"), "no room for a third");
    let third = c
        .post(
            &format!("{page_path}/secrets"),
            &page_path,
            &[("expires_in", "")],
        )
        .await;
    assert_eq!(third.status(), StatusCode::CONFLICT);

    let retired = c
        .post(
            &format!("{page_path}/secrets/{old_id}/retire"),
            &page_path,
            &[],
        )
        .await;
    assert_eq!(retired.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        retired.headers()["location"].to_str().unwrap(),
        format!("{page_path}?done=retired")
    );
    let page = c.page(&format!("{page_path}?done=retired")).await;
    assert!(page.contains("The secret key was retired"), "{page}");
    assert_eq!(secret_ids(&page), std::slice::from_ref(&new_id));
    let seen = app
        .introspect((&api.client_id, &api.secret), &old_token)
        .await;
    assert_eq!(seen["active"], false, "{seen}");
    let seen = app
        .introspect((&api.client_id, &api.secret), &new_token)
        .await;
    assert_eq!(seen["active"], true, "{seen}");
    let resp = app
        .token_form(
            Some((&client_id, &old)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(resp.status(), 401, "the retired secret is refused");
    app.token(&new_client, &[]).await;
    // The last one cannot be retired.
    let last = c
        .post(
            &format!("{page_path}/secrets/{new_id}/retire"),
            &page_path,
            &[],
        )
        .await;
    assert_eq!(last.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_device_code_app_is_registered_from_the_form() {
    let (app, _) = setup().await;
    let c = Console::sign_in(&app, "admin@acme.test").await;
    assert!(
        c.page("/console/apps/new")
            .await
            .contains("value=\"device_code\"")
    );
    let posted = c
        .post(
            "/console/apps",
            "/console/apps/new",
            &[
                ("grant", "device_code"),
                ("name", "Studio TV"),
                ("redirect_uris", "https://ignored.test/cb"),
                ("scope:cfgateway", "on"),
            ],
        )
        .await;
    secret_page_after(&c, posted).await;
    let org = app.s().org_by_slug("acme-studio").await.unwrap();
    let apps = app.s().apps_for_org(&org.id).await.unwrap();
    let tv = apps.iter().find(|a| a.name == "Studio TV").unwrap();
    use gatehouse_core::model::GrantType;
    assert_eq!(
        tv.grant_types,
        [GrantType::DeviceCode, GrantType::RefreshToken]
    );
    assert!(tv.redirect_uris.is_empty(), "ignored for this grant");
    let page = c.page(&format!("/console/apps/{}", tv.client_id)).await;
    assert!(page.contains("Device Code"), "{page}");
}
