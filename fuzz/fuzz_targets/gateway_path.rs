//! The gateway's path normaliser and route matcher, for any request path: an
//! accepted canonical path is a fixed point of the normaliser, holds no dot or
//! empty segment, no encoded `/`, no `\`, no NUL, and escapes only bytes no route
//! may hold literally (upper-case hex); and the route the gateway checked is the
//! route an upstream routes the forwarded path to, whether it decodes
//! everything and resolves dots, strips servlet `;parameters` first, or takes
//! the path as is (mirrors crates/gateway/tests/route_bypass.rs).
#![no_main]

use std::sync::LazyLock;

use gatehouse_gateway::path::{canonical, is_literal};
use gatehouse_gateway::{Route, Routes};
use http::Method;
use libfuzzer_sys::fuzz_target;

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
    .map(|r| Route::parse(r).expect("route"))
    .collect()
}

static SENSITIVE: LazyLock<Routes> = LazyLock::new(|| Routes::new(table()));
static INSENSITIVE: LazyLock<Routes> = LazyLock::new(|| Routes::with_case(table(), true));

fn percent_decode(s: &str) -> Vec<u8> {
    let hex = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
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
        (
            "decode-twice",
            decode_all(&String::from_utf8_lossy(&percent_decode(forwarded))),
        ),
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

fn check_canonical(raw: &str, p: &str, ascii_only: bool) {
    let again = canonical(p, ascii_only)
        .unwrap_or_else(|e| panic!("{raw:?} -> {p:?} refused on a second pass: {e}"));
    assert_eq!(again, p, "{raw:?}: not a fixed point");
    assert!(p.starts_with('/'), "{raw:?} -> {p:?}");
    assert!(!p.contains("//"), "{raw:?} -> {p:?} has an empty segment");
    assert!(!p.contains('\\') && !p.contains('\0'), "{raw:?} -> {p:?}");
    for seg in p.split('/') {
        assert!(
            seg != "." && seg != "..",
            "{raw:?} -> {p:?} has a dot segment"
        );
    }
    let b = p.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3).expect("truncated escape");
                assert!(
                    hex.iter()
                        .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c)),
                    "{raw:?} -> {p:?}: escape not upper-case hex"
                );
                let byte =
                    u8::from_str_radix(std::str::from_utf8(hex).expect("ascii"), 16).expect("hex");
                assert!(
                    !is_literal(byte) && !matches!(byte, b'/' | b'\\' | 0 | b';'),
                    "{raw:?} -> {p:?}: %{byte:02X} must be literal or refused"
                );
                assert!(
                    !ascii_only || byte.is_ascii(),
                    "{raw:?} -> {p:?}: non-ASCII kept"
                );
                i += 3;
            }
            c => {
                assert!(
                    c == b'/' || c == b';' || is_literal(c),
                    "{raw:?} -> {p:?}: raw byte {c:#04x}"
                );
                i += 1;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(rest) else {
        return;
    };
    let routes = if mode & 1 == 0 {
        &*SENSITIVE
    } else {
        &*INSENSITIVE
    };
    let ci = routes.case_insensitive();
    if let Ok(p) = canonical(raw, ci) {
        check_canonical(raw, &p, ci);
    }
    let method = if mode & 2 == 0 {
        Method::GET
    } else {
        Method::POST
    };
    if let Ok((route, forwarded)) = routes.resolve(&method, raw) {
        assert_eq!(
            Ok(forwarded.clone()),
            canonical(raw, ci),
            "forwarded path is not the canonical one"
        );
        for (kind, seen) in upstream_views(&forwarded, ci) {
            let theirs = routes.find(&method, &seen);
            assert!(
                theirs.is_some_and(|r| std::ptr::eq(r, route)),
                "{raw:?} forwarded as {forwarded:?}: the gateway checked {:?} but a {kind} upstream routes {seen:?} to {:?}",
                route.scopes,
                theirs.map(|r| &r.scopes)
            );
        }
    }
});
