//! The token exchange decision table (RFC 8693), on fixed claims and a fixed time.

use super::*;
use crate::error::ErrorCode;
use crate::model::*;

const NOW: i64 = 1_700_000_000;

fn api(aud: &str, org: &str, scopes: &[&str], ttl: i64) -> Api {
    Api {
        id: format!("api-{aud}"),
        org_id: org.into(),
        name: aud.into(),
        audience: aud.into(),
        scopes: scopes.iter().map(|s| (*s).into()).collect(),
        token_format: TokenFormat::Jwt,
        signing_alg: SigningAlg::ES256,
        access_token_ttl: ttl,
        client_id: format!("c-{aud}"),
        secret_hash: String::new(),
        created_at: 0,
    }
}

/// The exchanging app of org `o1`, allowed to exchange for `https://orders`.
fn ctx() -> ClientContext {
    ClientContext {
        app: App {
            id: "a1".into(),
            client_id: "frontend-api".into(),
            org_id: "o1".into(),
            name: "Frontend API".into(),
            description: None,
            grant_types: vec![GrantType::TokenExchange],
            on_behalf_of: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: vec![],
            default_scopes: vec![],
            default_audience: None,
            secret_hash: String::new(),
            generation: 4,
            status: AppStatus::Active,
            last_used_at: None,
            client_keys: None,
            require_pkce: false,
            require_par: false,
            require_dpop: false,
            exchange_audiences: vec!["https://orders".into()],
            created_at: 0,
        },
        org: Org {
            id: "o1".into(),
            slug: "acme".into(),
            name: "Acme".into(),
            created_at: 0,
        },
        acting: None,
        apis: vec![
            api(
                "https://frontend",
                "o1",
                &["orders:read", "orders:write", "profile:read"],
                3600,
            ),
            api(
                "https://orders",
                "o1",
                &["orders:read", "orders:write"],
                3600,
            ),
            api("https://billing", "o1", &["orders:read"], 3600),
        ],
        secrets: vec![],
    }
}

/// A person's token for `https://frontend`, issued by the web app, live for 10 minutes.
fn subject() -> AccessClaims {
    AccessClaims {
        iss: "https://id.acme.test".into(),
        sub: "u1".into(),
        aud: "https://frontend".into(),
        client_id: "web".into(),
        scope: "openid orders:read orders:write profile:read".into(),
        jti: "j1".into(),
        iat: NOW - 60,
        exp: NOW + 600,
        org: "o1".into(),
        role: "developer".into(),
        permissions: vec!["p".into()],
        groups: vec!["g".into()],
        cgen: 1,
        gid: Some("g1".into()),
        csid: None,
        act: None,
        cnf: None,
    }
}

fn req(target: Option<&str>, scope: Option<&str>) -> TokenExchangeRequest {
    TokenExchangeRequest {
        subject_token: "t".into(),
        actor_token: None,
        scope: scope.map(|s| ScopeSet::parse(s).unwrap()),
        target: target.map(str::to_owned),
    }
}

fn code(r: Result<AccessTokenPlan, OAuthError>) -> ErrorCode {
    r.unwrap_err().code
}

#[test]
fn a_persons_token_is_exchanged_for_a_narrower_one_to_an_allowed_api() {
    let plan = decide(
        &ctx(),
        &req(Some("https://orders"), Some("orders:read")),
        &subject(),
        None,
        NOW,
    )
    .unwrap();
    assert_eq!(plan.target.audience, "https://orders");
    assert_eq!(plan.scope.to_string(), "orders:read");
    assert_eq!(plan.subject, "u1");
    assert_eq!(plan.client_id, "frontend-api");
    assert_eq!(plan.grant_id.as_deref(), Some("g1"), "same grant");
    assert_eq!(plan.generation, 4, "the exchanging app's generation");
    assert_eq!(
        (plan.role.as_str(), plan.org_id.as_str()),
        ("developer", "o1")
    );
    assert_eq!(
        plan.act,
        Some(Act {
            sub: "frontend-api".into(),
            act: None
        })
    );
}

#[test]
fn without_scope_every_held_scope_the_target_offers_is_given() {
    let plan = decide(&ctx(), &req(None, None), &subject(), None, NOW).unwrap();
    assert_eq!(
        plan.target.audience, "https://orders",
        "the one exchange audience"
    );
    assert_eq!(plan.scope.to_string(), "orders:read orders:write");
}

#[test]
fn the_token_never_outlives_the_subject_token() {
    let plan = decide(&ctx(), &req(None, None), &subject(), None, NOW).unwrap();
    assert_eq!(plan.target.ttl, 600);
    let mut long = subject();
    long.exp = NOW + 86_400;
    let plan = decide(&ctx(), &req(None, None), &long, None, NOW).unwrap();
    assert_eq!(
        plan.target.ttl, 3600,
        "the target API's lifetime when shorter"
    );
    long.exp = NOW;
    assert_eq!(
        code(decide(&ctx(), &req(None, None), &long, None, NOW)),
        ErrorCode::InvalidGrant
    );
}

#[test]
fn an_earlier_actor_is_nested_in_act() {
    let mut s = subject();
    s.act = Some(Act {
        sub: "gateway".into(),
        act: None,
    });
    let plan = decide(&ctx(), &req(None, None), &s, None, NOW).unwrap();
    let act = plan.act.unwrap();
    assert_eq!(act.sub, "frontend-api");
    assert_eq!(act.act.unwrap().sub, "gateway");
}

#[test]
fn a_chain_longer_than_the_bound_is_refused() {
    let mut s = subject();
    for i in 0..MAX_ACT_DEPTH {
        s.act = Some(Act {
            sub: format!("a{i}"),
            act: s.act.take().map(Box::new),
        });
    }
    assert_eq!(
        code(decide(&ctx(), &req(None, None), &s, None, NOW)),
        ErrorCode::InvalidGrant
    );
}

/// RFC 8693 §2.2.2 and RFC 6749 §5.2: which refusal each broken rule gives.
#[test]
fn decision_table() {
    type Case = (
        &'static str,
        fn(&mut ClientContext, &mut AccessClaims, &mut TokenExchangeRequest),
        ErrorCode,
    );
    let cases: &[Case] = &[
        (
            "app without the grant",
            |c, _, _| c.app.grant_types = vec![GrantType::ClientCredentials],
            ErrorCode::UnauthorizedClient,
        ),
        (
            "disabled app",
            |c, _, _| c.app.status = AppStatus::Disabled,
            ErrorCode::InvalidClient,
        ),
        (
            "audience not allowed",
            |_, _, r| r.target = Some("https://billing".into()),
            ErrorCode::InvalidTarget,
        ),
        (
            "no exchange audiences (deny by default)",
            |c, _, _| c.app.exchange_audiences.clear(),
            ErrorCode::InvalidTarget,
        ),
        (
            "allowed but no longer an API",
            |c, _, _| c.apis.retain(|a| a.audience != "https://orders"),
            ErrorCode::InvalidTarget,
        ),
        (
            "another organization's API",
            |c, _, r| {
                c.app.exchange_audiences.push("https://theirs".into());
                r.target = Some("https://theirs".into());
            },
            ErrorCode::InvalidTarget,
        ),
        (
            "several allowed, none named",
            |c, _, _| c.app.exchange_audiences.push("https://billing".into()),
            ErrorCode::InvalidTarget,
        ),
        (
            "scope widening beyond the subject",
            |_, s, r| {
                s.scope = "orders:read".into();
                r.scope = Some(ScopeSet::parse("orders:read orders:write").unwrap());
            },
            ErrorCode::InvalidScope,
        ),
        (
            "scope the target does not offer",
            |_, _, r| r.scope = Some(ScopeSet::parse("profile:read").unwrap()),
            ErrorCode::InvalidScope,
        ),
        (
            "nothing held that the target offers",
            |_, s, _| s.scope = "profile:read".into(),
            ErrorCode::InvalidScope,
        ),
        (
            "machine subject token",
            |_, s, _| s.gid = None,
            ErrorCode::InvalidGrant,
        ),
        (
            "subject of another organization",
            |_, s, _| s.org = "o2".into(),
            ErrorCode::InvalidGrant,
        ),
        (
            "subject not for an API (userinfo)",
            |_, s, _| s.aud = "https://id.acme.test/connect/userinfo".into(),
            ErrorCode::InvalidGrant,
        ),
    ];
    for (name, change, want) in cases {
        let (mut c, mut s, mut r) = (ctx(), subject(), req(None, None));
        change(&mut c, &mut s, &mut r);
        assert_eq!(code(decide(&c, &r, &s, None, NOW)), *want, "{name}");
    }
}

#[test]
fn an_actor_token_must_be_the_apps_own() {
    let mut own = subject();
    own.client_id = "frontend-api".into();
    assert!(decide(&ctx(), &req(None, None), &subject(), Some(&own), NOW).is_ok());
    let other = subject();
    assert_eq!(
        code(decide(
            &ctx(),
            &req(None, None),
            &subject(),
            Some(&other),
            NOW
        )),
        ErrorCode::InvalidGrant
    );
}
