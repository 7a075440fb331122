//! The route the gateway checked is the route the upstream serves, whatever the
//! upstream does to the path it receives: decode everything and resolve dot
//! segments, strip servlet `;parameters` first, merge `//`, ignore a trailing
//! `/`, or fold case (for a case-insensitive route set). A refused path is never
//! forwarded: `Routes::resolve` is what the gateway forwards from.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::Method;
use gatehouse_gateway::routes::Refusal;
use gatehouse_gateway::{Route, Routes};
use proptest::prelude::*;

fn table() -> Vec<Route> {
    [
        "GET /*=root",
        "GET /v1/*=b:read",
        "* /v1/admin/*=admin",
        "GET /v1/admin/users=users",
        "GET /v1/products/* path_params=products",
        "GET /v1/products/secret=secret",
        "GET /v1/a:b=colon",
        "* /v1/Mixed/*=mixed",
        "GET /v1/report=report",
    ]
    .iter()
    .map(|r| Route::parse(r).unwrap())
    .collect()
}

fn percent_decode(s: &str) -> Vec<u8> {
    let hex = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// RFC 3986 §5.2.4 plus merged slashes, on a decoded path.
fn resolve_dots(path: &str) -> String {
    let mut stack: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                stack.pop();
            }
            s => stack.push(s),
        }
    }
    format!("/{}", stack.join("/"))
}

/// The path as each kind of upstream routes on it.
fn upstream_views(forwarded: &str, fold_case: bool) -> Vec<(&'static str, String)> {
    let decode_all = |p: &str| {
        let decoded = String::from_utf8_lossy(&percent_decode(p)).into_owned();
        resolve_dots(&decoded)
    };
    let servlet: String = forwarded
        .split('/')
        .map(|seg| seg.split_once(';').map_or(seg, |(b, _)| b))
        .collect::<Vec<_>>()
        .join("/");
    let mut views = vec![
        ("decode-all", decode_all(forwarded)),
        ("servlet", decode_all(&servlet)),
        ("as-is", forwarded.to_owned()),
    ];
    if fold_case {
        for v in &mut views {
            v.1 = v.1.to_lowercase();
        }
    }
    views
}

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "v1", "admin", "Admin", "ADMIN", "users", "products", "secret", "a:b", "Mixed",
            "mixed", "report", "x", ".", "..", ";", ";x=1", "", "%2e", "%2E", "%2e%2e", "%61",
            "%41", "%2f", "%2F", "%3b", "%5c", "\\", "%00", "%25", "%2561", "%3a", "%3A", "%20",
            "%c5%bf", "%e2%84%aa", "%7e", "~", "%zz", "%",
        ])
        .prop_map(str::to_owned),
        1 => any::<u8>().prop_map(|b| format!("%{b:02x}")),
        1 => any::<u8>().prop_map(|b| format!("%{b:02X}")),
        1 => "[a-zA-Z0-9._~:@!$&'()*+,=-]{1,3}",
    ]
}

fn raw_path() -> impl Strategy<Value = String> {
    let segment = prop::collection::vec(piece(), 0..4).prop_map(|p| p.concat());
    (
        prop::sample::select(vec!["/", "/v1/", "/v1/admin/", "/v1/products/", "//v1/"]),
        prop::collection::vec(segment, 0..5),
        any::<bool>(),
    )
        .prop_map(|(start, segs, trailing)| {
            let mut p = format!("{start}{}", segs.join("/"));
            if trailing {
                p.push('/');
            }
            p
        })
}

fn check(routes: &Routes, raw: &str) -> Result<(), TestCaseError> {
    let ci = routes.case_insensitive();
    for method in [Method::GET, Method::POST] {
        match routes.resolve(&method, raw) {
            Ok((route, forwarded)) => {
                for (kind, seen) in upstream_views(&forwarded, ci) {
                    let theirs = routes.find(&method, &seen);
                    prop_assert!(
                        theirs.is_some_and(|r| std::ptr::eq(r, route)),
                        "{raw:?} forwarded as {forwarded:?}: the gateway checked {:?} but a {kind} upstream routes {seen:?} to {:?}",
                        route.scopes,
                        theirs.map(|r| &r.scopes)
                    );
                }
            }
            Err(Refusal::NoRoute | Refusal::Parameters | Refusal::Path(_)) => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn the_route_checked_is_the_route_the_upstream_serves(raw in raw_path()) {
        check(&Routes::new(table()), &raw)?;
    }

    #[test]
    fn with_case_insensitive_routes_case_changes_pick_no_other_route(raw in raw_path()) {
        check(&Routes::with_case(table(), true), &raw)?;
    }
}

/// The bypass strings, each refused or checked as the admin route.
#[test]
fn the_reported_bypasses_are_refused_or_checked_as_admin() {
    let cs = Routes::new(table());
    let ci = Routes::with_case(table(), true);
    let admin = |r: &Routes, p: &str| match r.resolve(&Method::GET, p) {
        Ok((route, fwd)) => Ok((route.scopes.join(" "), fwd.into_owned())),
        Err(e) => Err(e),
    };
    assert_eq!(
        admin(&cs, "/v1/%61dmin/users").unwrap(),
        ("users".into(), "/v1/admin/users".into())
    );
    assert_eq!(
        admin(&cs, "/v1//admin/users").unwrap(),
        ("users".into(), "/v1/admin/users".into())
    );
    assert_eq!(admin(&cs, "/v1/admin;x=1/users"), Err(Refusal::Parameters));
    assert_eq!(
        admin(&cs, "/v1/products/..;/admin"),
        Err(Refusal::Parameters)
    );
    assert_eq!(
        admin(&ci, "/v1/Admin/users").unwrap(),
        ("users".into(), "/v1/Admin/users".into())
    );
    // Case-sensitive: `/v1/Admin/users` is another path, forwarded as such.
    assert_eq!(
        admin(&cs, "/v1/Admin/users").unwrap(),
        ("b:read".into(), "/v1/Admin/users".into())
    );
}

/// Found by the `gateway_path` fuzz target: `%25%36%31` was forwarded as
/// `%2561`, checked as `/v1/*`, and a double-decoding upstream read `admin`.
#[test]
fn a_double_encoding_made_by_decoding_is_refused() {
    let cs = Routes::new(table());
    for raw in ["/v1/%25%36%31dmin/users", "/v1/%25%366%31dmin/users"] {
        assert_eq!(
            cs.resolve(&Method::GET, raw).err(),
            Some(Refusal::Path(
                gatehouse_gateway::path::PathError::DoubleEncoded
            )),
            "{raw}"
        );
    }
}
