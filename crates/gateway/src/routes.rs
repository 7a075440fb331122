//! The gateway's route table: which requests are let through and with which
//! scopes. Written `"METHOD /path/prefix/*=scope1 scope2"` on the command line or
//! as `[[route]]` tables in a TOML file. A trailing `/*` matches everything under
//! the prefix, otherwise the path must match exactly; the longest match wins;
//! `*` as the method matches any. No scopes: any valid token.

use axum::http::Method;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `None`: any method.
    pub method: Option<Method>,
    pub path: String,
    /// `path` is a prefix (written with a trailing `/*`).
    pub prefix: bool,
    pub scopes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("route `{0}`: expected \"METHOD /path[/*]=scope …\"")]
    Syntax(String),
    #[error(
        "route `{0}`: the path must start with `/` and contain no `..`, `%` or `*` except a trailing `/*`"
    )]
    Path(String),
    #[error("route `{0}`: unknown method")]
    Method(String),
    #[error("route file: {0}")]
    File(String),
}

impl Route {
    pub fn parse(spec: &str) -> Result<Route, RouteError> {
        let (lhs, scopes) = spec.split_once('=').unwrap_or((spec, ""));
        let mut parts = lhs.split_whitespace();
        let (Some(method), Some(path), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(RouteError::Syntax(spec.to_owned()));
        };
        Route::new(
            method,
            path,
            scopes.split_whitespace().map(str::to_owned).collect(),
        )
        .map_err(|e| match e {
            RouteError::Path(_) => RouteError::Path(spec.to_owned()),
            RouteError::Method(_) => RouteError::Method(spec.to_owned()),
            other => other,
        })
    }

    fn new(method: &str, path: &str, scopes: Vec<String>) -> Result<Route, RouteError> {
        let method = match method {
            "*" => None,
            m => Some(
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| RouteError::Method(m.to_owned()))?,
            ),
        };
        let (path, prefix) = match path.strip_suffix("/*") {
            Some(p) => (format!("{p}/"), true),
            None => (path.to_owned(), false),
        };
        if !path.starts_with('/') || path.contains("..") || path.contains(['%', '*', '?', '#']) {
            return Err(RouteError::Path(path));
        }
        Ok(Route {
            method,
            path,
            prefix,
            scopes,
        })
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m == method)
            && if self.prefix {
                path.starts_with(&self.path)
            } else {
                path == self.path
            }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
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
}

fn any_method() -> String {
    "*".into()
}

#[derive(Debug, Clone, Default)]
pub struct Routes(Vec<Route>);

impl Routes {
    pub fn new(mut routes: Vec<Route>) -> Self {
        // Longest (most specific) first; exact before prefix of the same length.
        routes.sort_by(|a, b| {
            b.path
                .len()
                .cmp(&a.path.len())
                .then(a.prefix.cmp(&b.prefix))
        });
        Routes(routes)
    }

    /// Parses a TOML route file:
    /// ```toml
    /// [[route]]
    /// method = "GET"
    /// path = "/v1/products/*"
    /// scopes = ["cfgateway"]
    /// ```
    pub fn parse_toml(text: &str) -> Result<Vec<Route>, RouteError> {
        let file: RouteFile = toml::from_str(text).map_err(|e| RouteError::File(e.to_string()))?;
        file.route
            .into_iter()
            .map(|r| Route::new(&r.method, &r.path, r.scopes))
            .collect()
    }

    pub fn find(&self, method: &Method, path: &str) -> Option<&Route> {
        self.0.iter().find(|r| r.matches(method, path))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A request path the route table can judge safely: no dot segments and no
/// encoded slashes or dots, which an upstream might resolve differently from us.
pub fn is_plain_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let encoded = ["%2e", "%2f", "%5c"].iter().any(|e| lower.contains(e));
    let dot_segment = path.split('/').any(|seg| seg == "." || seg == "..");
    !encoded && !dot_segment && !path.contains('\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_routes() {
        let r = Route::parse("GET /v1/products/*=cfgateway products:read").unwrap();
        assert_eq!(r.method, Some(Method::GET));
        assert_eq!(r.path, "/v1/products/");
        assert!(r.prefix);
        assert_eq!(r.scopes, ["cfgateway", "products:read"]);
        let any = Route::parse("* /ping").unwrap();
        assert!(any.method.is_none() && any.scopes.is_empty() && !any.prefix);
        for bad in [
            "GET",
            "/x=a",
            "GET x=a",
            "GET /a/../b",
            "GET /a b c",
            "G@T /a",
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
    fn toml_routes() {
        let r = Routes::parse_toml(
            "[[route]]\nmethod = \"GET\"\npath = \"/v1/products/*\"\nscopes = [\"cfgateway\"]\n\n[[route]]\npath = \"/open\"\n",
        )
        .unwrap();
        assert_eq!(
            r,
            vec![
                Route::parse("GET /v1/products/*=cfgateway").unwrap(),
                Route::parse("* /open").unwrap()
            ]
        );
        assert!(Routes::parse_toml("[[route]]\npath = \"/x\"\nscope = []\n").is_err());
    }

    #[test]
    fn dot_segments_and_encoded_separators_are_not_plain() {
        assert!(is_plain_path("/v1/products/get-status"));
        for p in [
            "/v1/products/../admin",
            "/v1/products/%2e%2e/admin",
            "/v1/products%2Fx",
            "/a/./b",
        ] {
            assert!(!is_plain_path(p), "{p}");
        }
    }
}
