//! The gateway's route table: which requests are let through and with which
//! scopes. Written `"METHOD /path/prefix/* [option …]=scope1 scope2"` on the command
//! line or as `[[route]]` tables in a TOML file. A trailing `/*` matches the prefix
//! itself and everything under it, otherwise the path must match exactly; a
//! trailing `/` on the request is ignored either way (upstreams commonly treat
//! `/x/` as `/x`); the longest match wins; `*` as the method matches any. No
//! scopes: any valid token.
//!
//! Routes are matched on the canonical path ([`crate::path`]) and are
//! case-sensitive, unless the set is `case_insensitive` (for upstreams that fold
//! case): then routes and paths are compared lower-cased, so a case change can
//! never pick a laxer route. Options:
//! - `forward_authorization`: pass the caller's `Authorization` header upstream
//!   (by default it is removed: the upstream gets the principal as headers).
//! - `path_params`: allow `;` path parameters (refused otherwise), provided the
//!   path with its parameters removed, as a servlet container routes, selects this
//!   same route.

use axum::http::Method;
use serde::Deserialize;

use std::borrow::Cow;

use crate::path::{PathError, canonical, is_literal, without_parameters};

/// Why a request path is not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("the path has `;` parameters, which this route does not allow")]
    Parameters,
    #[error("no route for this method and path")]
    NoRoute,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `None`: any method.
    pub method: Option<Method>,
    /// Exact routes: the path without a trailing `/`; prefix routes: the prefix
    /// with its trailing `/`.
    pub path: String,
    /// `path` is a prefix (written with a trailing `/*`).
    pub prefix: bool,
    pub scopes: Vec<String>,
    /// Forward the caller's `Authorization` header.
    pub forward_authorization: bool,
    /// Allow `;` path parameters.
    pub path_params: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error(
        "route `{0}`: expected \"METHOD /path[/*] [forward_authorization] [path_params]=scope …\""
    )]
    Syntax(String),
    #[error(
        "route `{0}`: the path must start with `/` and contain only letters, digits, `/` and -._~!$&'()+,=:@, with no empty or dot segments, and `*` only as a trailing `/*`"
    )]
    Path(String),
    #[error("route `{0}`: unknown method")]
    Method(String),
    #[error("route file: {0}")]
    File(String),
}

/// Per-route options, as written after the path or in the route file.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteOptions {
    pub forward_authorization: bool,
    pub path_params: bool,
}

impl Route {
    pub fn parse(spec: &str) -> Result<Route, RouteError> {
        let (lhs, scopes) = spec.split_once('=').unwrap_or((spec, ""));
        let mut parts = lhs.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            return Err(RouteError::Syntax(spec.to_owned()));
        };
        let mut opts = RouteOptions::default();
        for opt in parts {
            match opt {
                "forward_authorization" => opts.forward_authorization = true,
                "path_params" => opts.path_params = true,
                _ => return Err(RouteError::Syntax(spec.to_owned())),
            }
        }
        Route::new(
            method,
            path,
            scopes.split_whitespace().map(str::to_owned).collect(),
            opts,
        )
        .map_err(|e| match e {
            RouteError::Path(_) => RouteError::Path(spec.to_owned()),
            RouteError::Method(_) => RouteError::Method(spec.to_owned()),
            other => other,
        })
    }

    pub fn new(
        method: &str,
        path: &str,
        scopes: Vec<String>,
        opts: RouteOptions,
    ) -> Result<Route, RouteError> {
        let method = match method {
            "*" => None,
            m => Some(
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| RouteError::Method(m.to_owned()))?,
            ),
        };
        let (path, prefix) = match path.strip_suffix("/*") {
            Some(p) => (format!("{p}/"), true),
            None if path.len() > 1 => (path.trim_end_matches('/').to_owned(), false),
            None => (path.to_owned(), false),
        };
        if !is_route_path(&path) {
            return Err(RouteError::Path(path));
        }
        Ok(Route {
            method,
            path,
            prefix,
            scopes,
            forward_authorization: opts.forward_authorization,
            path_params: opts.path_params,
        })
    }

    /// `path` is canonical, lower-cased for a case-insensitive set, and without
    /// its trailing `/`.
    fn matches(&self, method: &Method, path: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m == method)
            && if self.prefix {
                path.starts_with(&self.path)
                    || path.len() + 1 == self.path.len() && self.path.starts_with(path)
            } else {
                path == self.path
            }
    }

    /// The length that decides precedence (a prefix without its `/`).
    fn specificity(&self) -> usize {
        self.path.len() - usize::from(self.prefix)
    }
}

/// Only characters a canonical path holds literally, no `;`, no empty or dot
/// segments: so a route can be matched byte for byte against a canonical path.
fn is_route_path(path: &str) -> bool {
    let b = path.as_bytes();
    b.first() == Some(&b'/')
        && b.iter()
            .all(|c| *c == b'/' || (is_literal(*c) && *c != b'*'))
        && (path == "/"
            || path
                .trim_end_matches('/')
                .split('/')
                .skip(1)
                .all(|s| !s.is_empty() && s != "." && s != ".."))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    #[serde(default)]
    case_insensitive: bool,
    #[serde(default)]
    route: Vec<FileRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRoute {
    #[serde(default = "any_method")]
    method: String,
    path: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    forward_authorization: bool,
    #[serde(default)]
    path_params: bool,
}

fn any_method() -> String {
    "*".into()
}

/// A parsed route file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteFileContents {
    pub case_insensitive: bool,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, Default)]
pub struct Routes {
    routes: Vec<Route>,
    case_insensitive: bool,
}

impl Routes {
    pub fn new(routes: Vec<Route>) -> Self {
        Self::with_case(routes, false)
    }

    /// `case_insensitive`: the upstream folds case, so match lower-cased.
    pub fn with_case(mut routes: Vec<Route>, case_insensitive: bool) -> Self {
        if case_insensitive {
            for r in &mut routes {
                r.path.make_ascii_lowercase();
            }
        }
        // Longest (most specific) first; exact before prefix of the same length.
        routes.sort_by(|a, b| {
            b.specificity()
                .cmp(&a.specificity())
                .then(a.prefix.cmp(&b.prefix))
        });
        Routes {
            routes,
            case_insensitive,
        }
    }

    /// Parses a TOML route file:
    /// ```toml
    /// case_insensitive = false
    /// [[route]]
    /// method = "GET"
    /// path = "/v1/products/*"
    /// scopes = ["cfgateway"]
    /// forward_authorization = false
    /// path_params = false
    /// ```
    pub fn parse_toml(text: &str) -> Result<RouteFileContents, RouteError> {
        let file: RouteFile = toml::from_str(text).map_err(|e| RouteError::File(e.to_string()))?;
        let routes = file
            .route
            .into_iter()
            .map(|r| {
                let opts = RouteOptions {
                    forward_authorization: r.forward_authorization,
                    path_params: r.path_params,
                };
                Route::new(&r.method, &r.path, r.scopes, opts)
            })
            .collect::<Result<_, _>>()?;
        Ok(RouteFileContents {
            case_insensitive: file.case_insensitive,
            routes,
        })
    }

    pub fn case_insensitive(&self) -> bool {
        self.case_insensitive
    }

    /// The route for a request's raw path, and the canonical path to forward
    /// (borrowed when the raw path already is canonical).
    pub fn resolve<'a, 'p>(
        &'a self,
        method: &Method,
        raw: &'p str,
    ) -> Result<(&'a Route, Cow<'p, str>), Refusal> {
        let path = canonical(raw, self.case_insensitive)?;
        let route = self.find(method, &path).ok_or(Refusal::NoRoute)?;
        if path.contains(';') {
            // A servlet container routes on the path without `;parameters`:
            // allowed only where the route says so and that path selects it too.
            let same = route.path_params
                && without_parameters(&path)
                    .and_then(|bare| self.find(method, &bare))
                    .is_some_and(|r| std::ptr::eq(r, route));
            if !same {
                return Err(Refusal::Parameters);
            }
        }
        Ok((route, path))
    }

    /// The route for a canonical path ([`crate::path::canonical`]).
    pub fn find(&self, method: &Method, path: &str) -> Option<&Route> {
        if self.case_insensitive && path.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.find_exact_case(method, &path.to_ascii_lowercase());
        }
        self.find_exact_case(method, path)
    }

    fn find_exact_case(&self, method: &Method, path: &str) -> Option<&Route> {
        let path = match path.strip_suffix('/') {
            Some(p) if !p.is_empty() => p,
            _ => path,
        };
        self.routes.iter().find(|r| r.matches(method, path))
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_routes() {
        let r = Route::parse("GET /v1/products/*=cfgateway products:read").unwrap();
        assert_eq!(r.method, Some(Method::GET));
        assert_eq!(r.path, "/v1/products/");
        assert!(r.prefix && !r.forward_authorization && !r.path_params);
        assert_eq!(r.scopes, ["cfgateway", "products:read"]);
        let any = Route::parse("* /ping").unwrap();
        assert!(any.method.is_none() && any.scopes.is_empty() && !any.prefix);
        let opts = Route::parse("GET /files/* forward_authorization path_params=a").unwrap();
        assert!(opts.forward_authorization && opts.path_params);
        for bad in [
            "GET",
            "/x=a",
            "GET x=a",
            "GET /a/../b",
            "GET /a b c",
            "G@T /a",
            "GET /a;b",
            "GET /a%2Fb",
            "GET //a",
            "GET /a/*/b",
        ] {
            assert!(Route::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_most_specific_route_wins() {
        let t = Routes::new(vec![
            Route::parse("GET /v1/*=a").unwrap(),
            Route::parse("GET /v1/products/*=b").unwrap(),
            Route::parse("* /v1/products/x=c").unwrap(),
        ]);
        assert_eq!(
            t.find(&Method::GET, "/v1/products/y").unwrap().scopes,
            ["b"]
        );
        assert_eq!(
            t.find(&Method::POST, "/v1/products/x").unwrap().scopes,
            ["c"]
        );
        assert_eq!(t.find(&Method::GET, "/v1/other").unwrap().scopes, ["a"]);
        assert!(t.find(&Method::POST, "/v1/other").is_none());
        assert!(t.find(&Method::GET, "/v2").is_none());
    }

    #[test]
    fn a_trailing_slash_never_picks_another_route() {
        let t = Routes::new(vec![
            Route::parse("GET /v1/*=a").unwrap(),
            Route::parse("GET /v1/admin/*=admin").unwrap(),
            Route::parse("GET /v1/report=report").unwrap(),
        ]);
        for p in ["/v1/admin", "/v1/admin/", "/v1/admin/users"] {
            assert_eq!(t.find(&Method::GET, p).unwrap().scopes, ["admin"], "{p}");
        }
        for p in ["/v1/report", "/v1/report/"] {
            assert_eq!(t.find(&Method::GET, p).unwrap().scopes, ["report"], "{p}");
        }
        assert_eq!(t.find(&Method::GET, "/v1/adminx").unwrap().scopes, ["a"]);
    }

    #[test]
    fn case_insensitive_sets_compare_lower_cased() {
        let routes = vec![
            Route::parse("GET /v1/*=a").unwrap(),
            Route::parse("GET /v1/Admin/*=admin").unwrap(),
        ];
        let ci = Routes::with_case(routes.clone(), true);
        assert_eq!(
            ci.find(&Method::GET, "/V1/ADMIN/x").unwrap().scopes,
            ["admin"]
        );
        let cs = Routes::new(routes);
        assert_eq!(cs.find(&Method::GET, "/v1/admin/x").unwrap().scopes, ["a"]);
    }

    #[test]
    fn toml_routes() {
        let r = Routes::parse_toml(
            "[[route]]\nmethod = \"GET\"\npath = \"/v1/products/*\"\nscopes = [\"cfgateway\"]\n\n[[route]]\npath = \"/open\"\nforward_authorization = true\n",
        )
        .unwrap();
        assert!(!r.case_insensitive);
        assert_eq!(
            r.routes,
            vec![
                Route::parse("GET /v1/products/*=cfgateway").unwrap(),
                Route::parse("* /open forward_authorization").unwrap()
            ]
        );
        assert!(Routes::parse_toml("[[route]]\npath = \"/x\"\nscope = []\n").is_err());
        let ci = Routes::parse_toml("case_insensitive = true\n[[route]]\npath = \"/x\"\n").unwrap();
        assert!(ci.case_insensitive);
    }
}
