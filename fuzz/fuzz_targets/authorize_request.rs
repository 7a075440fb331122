//! The authorization request validator, for any query string against fixed
//! registered apps (one redirect URI with a query of its own, two URIs, a
//! disabled app, an app without the code grant), as the server's `/authorize`
//! runs it: no input leads to a redirect anywhere but a registered URI (same
//! scheme, host, port, path, the registered query kept first, no fragment); an
//! unknown app, an unregistered `redirect_uri` or a disabled app is an error
//! page, never a redirect.
#![no_main]

use std::sync::LazyLock;

use gatehouse_core::authorize::{self, AuthorizeError};
use gatehouse_core::context::{ActingUser, ClientContext};
use gatehouse_core::form::Form;
use gatehouse_core::model::{
    Api, App, AppStatus, GrantType, Org, SigningAlg, TokenFormat, User, UserStatus,
};
use libfuzzer_sys::fuzz_target;

const ISSUER: &str = "https://id.acme.test";

fn app(
    client_id: &str,
    uris: &[&str],
    grants: Vec<GrantType>,
    status: AppStatus,
    pkce: bool,
) -> ClientContext {
    let user = User {
        id: "u1".into(),
        org_id: "o1".into(),
        email: "dev@acme.test".into(),
        name: None,
        password_hash: None,
        role: "developer".into(),
        groups: vec![],
        status: UserStatus::Active,
        created_at: 0,
        tokens_valid_after: 0,
        profile: Default::default(),
    };
    ClientContext {
        app: App {
            id: format!("id-{client_id}"),
            client_id: client_id.into(),
            org_id: "o1".into(),
            name: client_id.into(),
            description: None,
            grant_types: grants,
            on_behalf_of: Some("u1".into()),
            redirect_uris: uris.iter().map(|u| (*u).into()).collect(),
            post_logout_redirect_uris: vec![],
            scopes: vec!["cfgateway".into(), "products:read".into()],
            default_scopes: vec!["cfgateway".into()],
            default_audience: None,
            secret_hash: String::new(),
            generation: 1,
            status,
            require_pkce: pkce,
            require_par: false,
            require_dpop: false,
            exchange_audiences: vec![],
            client_keys: None,
            created_at: 0,
            last_used_at: None,
        },
        org: Org {
            id: "o1".into(),
            slug: "acme".into(),
            name: "Acme".into(),
            created_at: 0,
        },
        acting: Some(ActingUser {
            user,
            permissions: vec!["developer_api".into()],
        }),
        apis: vec![Api {
            id: "api1".into(),
            org_id: "o1".into(),
            name: "gw".into(),
            audience: "https://gw".into(),
            scopes: vec!["cfgateway".into(), "products:read".into()],
            token_format: TokenFormat::Jwt,
            signing_alg: SigningAlg::ES256,
            access_token_ttl: 3600,
            client_id: "api-gw".into(),
            secret_hash: String::new(),
            created_at: 0,
        }],
        secrets: vec![],
    }
}

static APPS: LazyLock<Vec<ClientContext>> = LazyLock::new(|| {
    use GrantType::*;
    vec![
        app(
            "app",
            &["https://app.example/cb?tenant=1"],
            vec![AuthorizationCode, RefreshToken],
            AppStatus::Active,
            false,
        ),
        app(
            "multi",
            &["https://app.example/cb", "https://app.example/other"],
            vec![AuthorizationCode],
            AppStatus::Active,
            true,
        ),
        app(
            "off",
            &["https://app.example/cb"],
            vec![AuthorizationCode],
            AppStatus::Disabled,
            false,
        ),
        app(
            "m2m",
            &["https://app.example/cb"],
            vec![ClientCredentials],
            AppStatus::Active,
            false,
        ),
    ]
});

/// `location` goes to `registered`: same origin and path, its query first, no fragment.
fn check_location(registered: &str, location: &str) {
    let reg = url::Url::parse(registered).expect("registered URI parses");
    let loc = url::Url::parse(location).unwrap_or_else(|e| panic!("{location:?} is no URL: {e}"));
    assert_eq!(
        (loc.scheme(), loc.host_str(), loc.port(), loc.path()),
        (reg.scheme(), reg.host_str(), reg.port(), reg.path()),
        "redirected to {location:?}, registered {registered:?}"
    );
    assert!(loc.fragment().is_none(), "{location:?} has a fragment");
    let want: Vec<_> = reg.query_pairs().collect();
    let got: Vec<_> = loc.query_pairs().collect();
    assert!(
        got.starts_with(&want),
        "{location:?} lost the registered query of {registered:?}"
    );
}

fuzz_target!(|query: &[u8]| {
    // The server answers 400 on a form it cannot parse, before any client is known.
    let Ok(form) = Form::parse(query) else {
        return;
    };
    let id = match authorize::client_id(&form) {
        Ok(id) => id,
        Err(AuthorizeError::Unredirectable(_)) => return,
        Err(e) => panic!("redirected before the client was known: {e:?}"),
    };
    let ctx = APPS.iter().find(|c| c.app.client_id == id);
    let registered = |u: &str| ctx.is_some_and(|c| c.app.redirect_uris.iter().any(|r| r == u));
    let must_be_page = ctx.is_none_or(|c| c.app.status != AppStatus::Active)
        || form.get("redirect_uri").is_some_and(|u| !registered(u));
    match authorize::validate(&form, ctx) {
        Ok(v) => {
            assert!(
                !must_be_page,
                "accepted a request that must be an error page"
            );
            assert!(
                registered(v.redirect_uri.as_str()),
                "valid with {:?}",
                v.redirect_uri
            );
            let mut p = vec![("code", "c0de")];
            if let Some(s) = &v.state {
                p.push(("state", s));
            }
            p.push(("iss", ISSUER));
            check_location(v.redirect_uri.as_str(), &v.redirect_uri.with_params(&p));
            // A later error (consent denied, login_required) goes there too.
            let later = v.error(gatehouse_core::ErrorCode::AccessDenied, "denied");
            let loc = later.location(ISSUER).expect("a redirect");
            check_location(v.redirect_uri.as_str(), &loc);
        }
        Err(AuthorizeError::Unredirectable(_)) => {}
        Err(e @ AuthorizeError::Redirect { .. }) => {
            assert!(
                !must_be_page,
                "redirected a request that must be an error page: {e:?}"
            );
            let AuthorizeError::Redirect { to, .. } = &e else {
                unreachable!()
            };
            assert!(registered(to.as_str()), "error redirected to {to:?}");
            let loc = e.location(ISSUER).expect("a redirect has a location");
            check_location(to.as_str(), &loc);
        }
    }
});
