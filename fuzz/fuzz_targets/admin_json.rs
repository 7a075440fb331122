//! The admin API's JSON request bodies, through the real extractor
//! (`ApiJson<T>::from_request` on an in-process request) for each of the five
//! request types. Every handler's first step is this extractor and nothing
//! reaches the store before it succeeds, so this is where every refusal of a
//! body's *shape* is decided (the rules on values are the admin core's, reached
//! only with a parsed body; schemathesis drives those end to end).
//!
//! Holds to:
//! - a refusal is a 4xx RFC 9457 problem (`application/problem+json`, `type`,
//!   `title`, `status` equal to the response's, a `detail`; 422 names the `field`),
//!   413 exactly when the body is over the limit, 400 when it is not JSON;
//! - a body is accepted only with a JSON content type, only when it is one JSON
//!   object of known fields (no array standing in for an object, no repeat),
//!   and a password never appears in a problem;
//! - round trip: the accepted value, written back as JSON field by field, is the
//!   body (absent ≡ `null` for plain optional fields, `[]` for defaulted lists;
//!   `null` kept where it means "clear").
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::{Request, header};
use axum::response::IntoResponse;
use gatehouse_server::admin_api::dto::{
    AppGrant, AppPatch, NewAppRequest, NewUserInline, NewUserRequest, OnBehalfOf, UserPatch,
    UserStatusView,
};
use gatehouse_server::admin_api::json::{ApiJson, MAX_BODY_BYTES};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

const CONTENT_TYPES: [Option<&str>; 10] = [
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("Application/JSON"),
    Some("application/merge-patch+json"),
    Some(" application/json ;x=y"),
    Some("text/plain"),
    Some("application/jsonx"),
    Some("application/x-www-form-urlencoded"),
    Some("json"),
    None,
];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

fn is_json_type(ct: Option<&str>) -> bool {
    ct.and_then(|c| c.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| m == "application/json" || m == "application/merge-patch+json")
}

/// Runs the extractor; `Ok` is the accepted value, `Err` the response's status
/// and the problem document (already checked to be one).
fn extract<T: DeserializeOwned>(ct: Option<&str>, body: Vec<u8>) -> Result<T, (u16, Value)> {
    let mut req = Request::builder().method("POST").uri("/api/v1/x");
    if let Some(ct) = ct {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    let req = req.body(Body::from(body)).expect("a request");
    runtime().block_on(async {
        match ApiJson::<T>::from_request(req, &()).await {
            Ok(ApiJson(v)) => Ok(v),
            Err(e) => {
                let resp = e.into_response();
                let status = resp.status().as_u16();
                assert!((400..500).contains(&status), "refused with {status}");
                assert_eq!(
                    resp.headers()
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok()),
                    Some("application/problem+json"),
                    "a refusal that is not a problem document"
                );
                let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                    .await
                    .expect("a problem body");
                let p: Value = serde_json::from_slice(&bytes).expect("a problem is JSON");
                assert_eq!(p["type"], "about:blank", "{p}");
                assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
                assert_eq!(p["status"], status, "{p}");
                assert!(p["detail"].as_str().is_some_and(|d| !d.is_empty()), "{p}");
                if status == 422 {
                    // (Empty only when the unknown field's name is: `{"": 1}`.)
                    assert!(p["field"].as_str().is_some(), "{p}");
                }
                Err((status, p))
            }
        }
    })
}

/// The body's object with `null`s dropped from the plain optional `fields`, and
/// `[]` put where a defaulted list is absent.
fn normalized(v: &Value, optional: &[&str], lists: &[&str]) -> Map<String, Value> {
    let mut m = v.as_object().expect("accepted a non-object").clone();
    m.retain(|k, v| !(v.is_null() && optional.contains(&k.as_str())));
    for l in lists {
        m.entry(*l).or_insert_with(|| json!([]));
    }
    m
}

fn put<T: serde::Serialize>(m: &mut Map<String, Value>, k: &str, v: &Option<T>) {
    if let Some(v) = v {
        m.insert(k.to_owned(), json!(v));
    }
}

fn grant(g: AppGrant) -> &'static str {
    match g {
        AppGrant::ClientCredentials => "client_credentials",
        AppGrant::AuthorizationCode => "authorization_code",
        AppGrant::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
        AppGrant::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
    }
}

fn inline_user(u: &NewUserInline) -> Value {
    let mut m = Map::new();
    m.insert("email".into(), json!(u.email));
    put(&mut m, "name", &u.name);
    m.insert("role".into(), json!(u.role));
    Value::Object(m)
}

fn new_app(b: &NewAppRequest) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("grant_type".into(), json!(grant(b.grant_type)));
    m.insert("name".into(), json!(b.name));
    put(&mut m, "description", &b.description);
    put(&mut m, "on_behalf_of", &b.on_behalf_of);
    if let Some(u) = &b.new_user {
        m.insert("new_user".into(), inline_user(u));
    }
    m.insert("redirect_uris".into(), json!(b.redirect_uris));
    m.insert(
        "post_logout_redirect_uris".into(),
        json!(b.post_logout_redirect_uris),
    );
    m.insert("scopes".into(), json!(b.scopes));
    put(&mut m, "default_scopes", &b.default_scopes);
    put(&mut m, "default_audience", &b.default_audience);
    m.insert("exchange_audiences".into(), json!(b.exchange_audiences));
    m
}

fn app_patch(p: &AppPatch) -> Map<String, Value> {
    let mut m = Map::new();
    put(&mut m, "name", &p.name);
    put(&mut m, "description", &p.description);
    put(&mut m, "redirect_uris", &p.redirect_uris);
    put(
        &mut m,
        "post_logout_redirect_uris",
        &p.post_logout_redirect_uris,
    );
    put(&mut m, "scopes", &p.scopes);
    put(&mut m, "default_scopes", &p.default_scopes);
    put(&mut m, "default_audience", &p.default_audience);
    put(&mut m, "require_pkce", &p.require_pkce);
    put(&mut m, "require_par", &p.require_par);
    put(&mut m, "exchange_audiences", &p.exchange_audiences);
    m
}

fn new_user(b: &NewUserRequest) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("email".into(), json!(b.email));
    put(&mut m, "name", &b.name);
    m.insert("role".into(), json!(b.role));
    m.insert("groups".into(), json!(b.groups));
    put(&mut m, "password", &b.password);
    put(&mut m, "given_name", &b.given_name);
    put(&mut m, "family_name", &b.family_name);
    put(&mut m, "locale", &b.locale);
    put(&mut m, "zoneinfo", &b.zoneinfo);
    put(&mut m, "email_verified", &b.email_verified);
    m
}

fn user_patch(p: &UserPatch) -> Map<String, Value> {
    let mut m = Map::new();
    put(&mut m, "role", &p.role);
    put(&mut m, "groups", &p.groups);
    if let Some(s) = p.status {
        let s = match s {
            UserStatusView::Active => "active",
            UserStatusView::Deactivated => "deactivated",
        };
        m.insert("status".into(), json!(s));
    }
    // `null` clears these: kept as sent.
    put(&mut m, "name", &p.name);
    put(&mut m, "given_name", &p.given_name);
    put(&mut m, "family_name", &p.family_name);
    put(&mut m, "locale", &p.locale);
    put(&mut m, "zoneinfo", &p.zoneinfo);
    put(&mut m, "email_verified", &p.email_verified);
    m
}

/// Checks one body against one request type.
fn check<T: DeserializeOwned>(
    ct: Option<&str>,
    body: &[u8],
    optional: &[&str],
    lists: &[&str],
    nested_optional: &[(&str, &[&str])],
    write_back: fn(&T) -> Map<String, Value>,
) {
    let over = body.len() > MAX_BODY_BYTES;
    match extract::<T>(ct, body.to_vec()) {
        Ok(v) => {
            assert!(is_json_type(ct), "accepted with content type {ct:?}");
            assert!(!over, "accepted a body over the limit");
            let parsed: Value = serde_json::from_slice(body).expect("accepted invalid JSON");
            let mut want = normalized(&parsed, optional, lists);
            for (k, inner) in nested_optional {
                if let Some(o) = want.get_mut(*k).filter(|o| !o.is_null()) {
                    *o = Value::Object(normalized(o, inner, &[]));
                }
            }
            let got = write_back(&v);
            assert_eq!(
                Value::Object(got),
                Value::Object(want),
                "the accepted value is not the body"
            );
            // Formatting does not matter: the canonical form parses the same.
            let canonical = serde_json::to_vec(&parsed).expect("serializes");
            let again = extract::<T>(ct, canonical).expect("the canonical form is refused");
            assert_eq!(write_back(&again), write_back(&v));
        }
        Err((status, problem)) => {
            if over && is_json_type(ct) {
                assert_eq!(status, 413, "a body over the limit: {problem}");
            } else {
                assert_ne!(status, 413, "413 for a body within the limit");
            }
            if !is_json_type(ct) || serde_json::from_slice::<Value>(body).is_err() {
                // Not JSON at all (or not said to be): 400, or 413 when too big.
                assert!(status == 400 || status == 413, "{status}: {problem}");
            }
            if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body)
                && let Some(Value::String(pw)) = m.get("password")
                // Long enough, with a digit and a capital, not to be a field name.
                && pw.len() >= 8
                && pw.chars().any(|c| c.is_ascii_digit())
                && pw.chars().any(|c| c.is_ascii_uppercase())
                // A problem may echo what the client sent elsewhere (an unknown
                // field's name); only the password value itself must not show.
                && !appears_elsewhere(&Value::Object(m.clone()), pw)
            {
                let text = problem.to_string();
                assert!(!text.contains(pw.as_str()), "the password is in {problem}");
            }
        }
    }
}

/// Whether `needle` is in any key, or any string value but the top-level
/// `password`, of `v`.
fn appears_elsewhere(v: &Value, needle: &str) -> bool {
    fn walk(v: &Value, needle: &str, top: bool) -> bool {
        match v {
            Value::String(s) => s.contains(needle),
            Value::Array(items) => items.iter().any(|i| walk(i, needle, false)),
            Value::Object(m) => m.iter().any(|(k, inner)| {
                k.contains(needle) || (!(top && k == "password") && walk(inner, needle, false))
            }),
            _ => false,
        }
    }
    walk(v, needle, true)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let ct = CONTENT_TYPES[usize::from(mode >> 4) % CONTENT_TYPES.len()];
    // One mode in eight pads the body with whitespace past the size limit.
    let padded;
    let body = if mode & 8 != 0 && mode & 0x80 != 0 {
        padded = [
            body,
            &vec![b' '; MAX_BODY_BYTES + 1 - body.len().min(MAX_BODY_BYTES)],
        ]
        .concat();
        &padded[..]
    } else {
        body
    };
    match mode & 7 {
        0 | 5 => check::<NewAppRequest>(
            ct,
            body,
            &[
                "description",
                "on_behalf_of",
                "new_user",
                "default_scopes",
                "default_audience",
            ],
            &[
                "redirect_uris",
                "post_logout_redirect_uris",
                "exchange_audiences",
            ],
            &[("new_user", &["name"])],
            new_app,
        ),
        1 | 6 => check::<AppPatch>(
            ct,
            body,
            &[
                "name",
                "redirect_uris",
                "post_logout_redirect_uris",
                "scopes",
                "default_scopes",
                "require_pkce",
                "require_par",
                "exchange_audiences",
            ],
            &[],
            &[],
            app_patch,
        ),
        2 => check::<OnBehalfOf>(ct, body, &[], &[], &[], |b| {
            let mut m = Map::new();
            m.insert("email".into(), json!(b.email));
            m
        }),
        3 | 7 => {
            let optional = [
                "name",
                "password",
                "given_name",
                "family_name",
                "locale",
                "zoneinfo",
                "email_verified",
            ];
            check::<NewUserRequest>(ct, body, &optional, &["groups"], &[], new_user)
        }
        _ => check::<UserPatch>(
            ct,
            body,
            &["role", "groups", "status", "email_verified"],
            &[],
            &[],
            user_patch,
        ),
    }
});
